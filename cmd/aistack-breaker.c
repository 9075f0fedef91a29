/*
 * aistack-breaker: a circuit breaker that every process shares.  Wraps a
 * command (run) or makes a probe call (probe) under the breaker NAME of
 * the state directory; reports (status), closes (reset) and opens (trip)
 * breakers.  The state machine and its file are lib/breaker/breaker.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/exitcode.h"
#include "base/parse.h"
#include "breaker/breaker.h"
#include "breaker/probe.h"
#include "state/stateview.h"

#define PROBE_TIMEOUT_MS	5000
#define KILL_GRACE_MS		2000

extern char **environ;

enum sub { SUB_RUN, SUB_PROBE, SUB_STATUS, SUB_RESET, SUB_TRIP };

enum {
	OPT_FAILURES = 256,
	OPT_HALF_OPEN,
	OPT_JSON,
	OPT_MAX_OPEN_FOR,
	OPT_OPEN_FOR,
	OPT_SUCCESSES,
	OPT_TIMEOUT,
	OPT_VERSION,
	OPT_END
};

struct breaker_opts {
	enum sub sub;
	int verbose;
	int json;
	struct breaker_settings set;	/* the flags' values */
	int given[OPT_END - OPT_FAILURES];	/* which flags were given */
	const char *name;
	const char *url;
	char **command;
	char **names;
	int nnames;
};

static const struct option longopts[] = {
	{ "failures", required_argument, NULL, OPT_FAILURES },
	{ "half-open", required_argument, NULL, OPT_HALF_OPEN },
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "max-open-for", required_argument, NULL, OPT_MAX_OPEN_FOR },
	{ "open-for", required_argument, NULL, OPT_OPEN_FOR },
	{ "successes", required_argument, NULL, OPT_SUCCESSES },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

static const char usage_text[] =
"usage: aistack-breaker run [-v] [--failures N] [--open-for DUR] [--successes N] [--half-open N]\n"
"                           [--max-open-for DUR] [--timeout DUR] NAME -- COMMAND [ARG...]\n"
"       aistack-breaker probe [-v] [--failures N] [--open-for DUR] [--successes N] [--half-open N]\n"
"                             [--max-open-for DUR] [--timeout DUR] NAME URL\n"
"       aistack-breaker status [--json] [NAME...]\n"
"       aistack-breaker reset [-v] NAME\n"
"       aistack-breaker trip [-v] [--open-for DUR] NAME\n"
"       aistack-breaker -h | --help | --version\n"
"\n"
"A circuit breaker shared by every process through the state directory.\n"
"run executes COMMAND when the breaker NAME allows it and counts its exit\n"
"status; an open breaker refuses at once (exit 75).  probe makes the call\n"
"itself: an HTTP(S) GET or a PostgreSQL connection.\n"
"\n"
"  -v, --verbose            report trials and state changes on standard error\n"
"      --failures N         consecutive failures that open it (default 5)\n"
"      --open-for DUR       first open period (default 30s)\n"
"      --successes N        half-open successes that close it (default 2)\n"
"      --half-open N        trial calls at once, across all processes (default 1)\n"
"      --max-open-for DUR   cap of the open period, doubled on each failed trial (default 5m)\n"
"      --timeout DUR        kill COMMAND's process group after DUR, exit 124 (probe: 5s)\n"
"      --json               status as JSON Lines\n"
"  -h, --help               show this help\n"
"      --version            show the version\n";

static uint64_t
ceil_s(uint64_t ms)
{
	return (ms + 999) / 1000;
}

/* Settings: defaults, then [breaker] and [breaker NAME], then the flags. */
static int
settings_for(const struct breaker_opts *o, struct breaker_settings *s)
{
	struct config c;
	struct error e;
	int rc;

	breaker_settings_init(s);
	if (o->sub == SUB_PROBE)
		s->timeout_ms = PROBE_TIMEOUT_MS;
	if (config_load(&c, &e) == -1)
		return error_report(&e);
	rc = breaker_settings_load(s, &c, o->name, &e);
	config_release(&c);
	if (rc == -1)
		return error_report(&e);
	if (o->given[OPT_FAILURES - OPT_FAILURES])
		s->failures = o->set.failures;
	if (o->given[OPT_HALF_OPEN - OPT_FAILURES])
		s->half_open = o->set.half_open;
	if (o->given[OPT_MAX_OPEN_FOR - OPT_FAILURES])
		s->max_open_for_ms = o->set.max_open_for_ms;
	if (o->given[OPT_OPEN_FOR - OPT_FAILURES])
		s->open_for_ms = o->set.open_for_ms;
	if (o->given[OPT_SUCCESSES - OPT_FAILURES])
		s->successes = o->set.successes;
	if (o->given[OPT_TIMEOUT - OPT_FAILURES])
		s->timeout_ms = o->set.timeout_ms;
	if (breaker_settings_check(s, &e) == -1)
		return error_report(&e);
	return 0;
}

static int
open_breaker(const struct breaker_opts *o, struct breaker *b)
{
	struct breaker_settings s;
	struct error e;
	int rc;

	if ((rc = settings_for(o, &s)) != 0)
		return rc;
	if (breaker_init(b, o->name, &s, &e) == -1)
		return error_report(&e);
	return 0;
}

/* A damaged state file (EXIT_DATAERR from lib/breaker): say how to mend it. */
static void
reset_hint(struct error *e, const char *name)
{
	if (e->code == EXIT_DATAERR)
		error_append(e, " (aistack-breaker reset %s starts it afresh)",
		    name);
}

/* Ask the breaker; 0 when allowed, else the exit status (75: refused). */
static int
admit(const struct breaker_opts *o, const struct breaker *b,
    struct breaker_ticket *t)
{
	uint64_t retry_ms;
	struct error e;
	int rc;

	rc = breaker_acquire(b, t, &retry_ms, &e);
	if (rc == -1) {
		reset_hint(&e, b->name);
		return error_report(&e);
	}
	if (rc == BREAKER_REFUSED) {
		warnmsg("%s is open; retry in %llus", b->name,
		    (unsigned long long)(ceil_s(retry_ms) > 0 ?
		    ceil_s(retry_ms) : 1));
		return EXIT_TEMPFAIL;
	}
	if (o->verbose && t->state == BREAKER_HALF_OPEN)
		warnmsg("%s: half-open: trial call", b->name);
	return 0;
}

static void
record(const struct breaker_opts *o, const struct breaker *b,
    struct breaker_ticket *t, int success)
{
	struct error e;

	if (breaker_record(b, t, success, &e) == -1) {
		reset_hint(&e, b->name);
		warnmsg("%s: outcome not recorded: %s", b->name, e.msg);
		return;
	}
	if (o->verbose)
		warnmsg("%s: %s%s%s", b->name, success ? "success" : "failure",
		    t->transition ? "; now " : "", t->transition ?
		    breaker_state_name(t->after) : "");
}

/* --- run ---------------------------------------------------------------- */

struct child {
	pid_t pid;
	int own_group;		/* in its own process group (--timeout) */
	int timed_out;
	int interrupted;	/* the signal passed on to it, 0 none */
	int status;		/* waitpid status */
};

static const int passed_on[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM };

/*
 * Wait for the child, passing on the signals we receive and enforcing the
 * timeout: SIGTERM to its process group, SIGKILL after KILL_GRACE_MS, and
 * SIGKILL to whatever is left of the group once the child has exited (the
 * unreaped child keeps the group id from being reused meanwhile).
 */
static void
child_wait(struct child *c, const sigset_t *set, uint64_t timeout_ms)
{
	uint64_t deadline = timeout_ms > 0 ? clock_mono_ms() + timeout_ms : 0;
	uint64_t now, left;
	struct timespec ts;
	siginfo_t si;
	int sig, killed = 0;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) == 0 && si.si_pid == c->pid)
			break;
		if (deadline != 0) {
			now = clock_mono_ms();
			left = deadline > now ? deadline - now : 0;
			ts.tv_sec = (time_t)(left / 1000);
			ts.tv_nsec = (long)(left % 1000) * 1000000;
			sig = sigtimedwait(set, &si, &ts);
		} else
			sig = sigwaitinfo(set, &si);
		if (sig == -1) {
			if (errno != EAGAIN)
				continue;
			if (!c->timed_out) {
				c->timed_out = 1;
				kill(-c->pid, SIGTERM);
				kill(-c->pid, SIGCONT);
				deadline = clock_mono_ms() + KILL_GRACE_MS;
			} else if (!killed) {
				killed = 1;
				kill(-c->pid, SIGKILL);
				deadline = 0;
			}
			continue;
		}
		if (sig == SIGCHLD)
			continue;
		/* the terminal signals the whole foreground group itself */
		if (c->own_group || si.si_code != SI_KERNEL)
			kill(c->own_group ? -c->pid : c->pid, sig);
		c->interrupted = sig;
	}
	if (c->timed_out)
		kill(-c->pid, SIGKILL);
	while (waitpid(c->pid, &c->status, 0) == -1 && errno == EINTR)
		;
}

static int
run_command(const struct breaker_opts *o)
{
	struct breaker b;
	struct breaker_ticket t;
	struct child c;
	posix_spawnattr_t attr;
	sigset_t set, old;
	size_t i;
	int rc, err, status;

	if ((rc = open_breaker(o, &b)) != 0)
		return rc;
	if ((rc = admit(o, &b, &t)) != 0)
		return rc;

	memset(&c, 0, sizeof(c));
	c.own_group = b.set.timeout_ms > 0;
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (i = 0; i < sizeof(passed_on) / sizeof(passed_on[0]); i++) {
		struct sigaction sa;
		/* an ignored signal stays ignored (nohup) */
		if (sigaction(passed_on[i], NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_IGN)
			sigaddset(&set, passed_on[i]);
	}
	sigprocmask(SIG_BLOCK, &set, &old);

	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &old);
	if (c.own_group)
		posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    (c.own_group ? POSIX_SPAWN_SETPGROUP : 0));
	err = posix_spawnp(&c.pid, o->command[0], NULL, &attr, o->command,
	    environ);
	posix_spawnattr_destroy(&attr);
	if (err != 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* not the dependency's fault: not counted */
		breaker_cancel(&t);
		warnmsg("%s: %s", o->command[0], strerror(err));
		return err == ENOENT ? EXIT_NOTFOUND : EXIT_CANTEXEC;
	}
	child_wait(&c, &set, b.set.timeout_ms);
	sigprocmask(SIG_SETMASK, &old, NULL);

	if (c.timed_out) {
		if (o->verbose)
			warnmsg("%s: %s: timed out", b.name, o->command[0]);
		record(o, &b, &t, 0);
		return EXIT_TIMEOUT;
	}
	if (WIFEXITED(c.status))
		status = WEXITSTATUS(c.status);
	else if (WIFSIGNALED(c.status))
		status = 128 + WTERMSIG(c.status);
	else
		status = EXIT_SOFTWARE;
	if (c.interrupted)
		breaker_cancel(&t);	/* stopped by us: says nothing */
	else
		record(o, &b, &t, status == 0);
	return status;
}

/* --- probe -------------------------------------------------------------- */

static int
run_probe(const struct breaker_opts *o)
{
	struct breaker b;
	struct breaker_ticket t;
	enum probe_kind kind;
	struct error e;
	int rc, timed_out;

	if (probe_check(o->url, &kind, &e) == -1)
		return error_report(&e);
	if ((rc = open_breaker(o, &b)) != 0)
		return rc;
	if ((rc = admit(o, &b, &t)) != 0)
		return rc;
	if (probe_run(o->url, b.set.timeout_ms,
	    "aistack-breaker/" AISTACK_VERSION, &timed_out, &e) == -1) {
		if (e.code != EXIT_UNAVAILABLE) {
			breaker_cancel(&t);
			return error_report(&e);
		}
		record(o, &b, &t, 0);
		error_wrap(&e, "%s: probe", b.name);
		return error_report(&e);
	}
	record(o, &b, &t, 1);
	return EXIT_OK;
}

/* --- status, reset, trip ------------------------------------------------ */

static void
when(char *buf, size_t n, int64_t t)
{
	buf[0] = '\0';
	if (t != 0)
		(void)clock_rfc3339(buf, n, t);
}

static void
print_status(const struct breaker_opts *o, const struct sv_breaker *b,
    int first, int width)
{
	const struct breaker_status *st = &b->st;
	const struct breaker_data *d = &st->data;
	const struct breaker_counters *c = &b->ctr;
	char failed[32], succeeded[32], retry[32];

	when(failed, sizeof(failed), d->last_failure);
	when(succeeded, sizeof(succeeded), c->last_success);
	if (o->json) {
		printf("{\"name\":\"%s\",\"state\":\"%s\",\"failures\":%llu,"
		    "\"successes\":%llu,\"retry_in\":%llu,\"last_failure\":",
		    st->name, breaker_state_name(st->state),
		    (unsigned long long)d->failures,
		    (unsigned long long)d->successes,
		    (unsigned long long)ceil_s(st->retry_in_ms));
		printf(failed[0] ? "\"%s\"" : "null", failed);
		printf(",\"opened\":%llu,\"half_opened\":%llu,\"closed\":%llu,"
		    "\"calls\":{\"success\":%llu,\"failure\":%llu,"
		    "\"ignored\":%llu,\"refused\":%llu},\"last_success\":",
		    (unsigned long long)d->opened,
		    (unsigned long long)d->half_opened,
		    (unsigned long long)d->closed,
		    (unsigned long long)c->success,
		    (unsigned long long)c->failure,
		    (unsigned long long)c->ignored,
		    (unsigned long long)c->refused);
		printf(succeeded[0] ? "\"%s\"" : "null", succeeded);
		printf(",\"configured\":%s}\n", b->configured ? "true" : "false");
		return;
	}
	if (first)
		printf("%-*s  %-9s %8s %9s %8s %6s %8s %8s %8s  %s\n", width,
		    "NAME", "STATE", "FAILURES", "SUCCESSES", "RETRY_IN",
		    "OPENED", "CALLS", "FAILED", "REFUSED", "LAST_FAILURE");
	if (st->state == BREAKER_OPEN)
		snprintf(retry, sizeof(retry), "%llus",
		    (unsigned long long)ceil_s(st->retry_in_ms));
	else
		snprintf(retry, sizeof(retry), "-");
	printf("%-*s  %-9s %8llu %9llu %8s %6llu %8llu %8llu %8llu  %s\n", width,
	    st->name, breaker_state_name(st->state),
	    (unsigned long long)d->failures, (unsigned long long)d->successes,
	    retry, (unsigned long long)d->opened,
	    (unsigned long long)(c->success + c->failure + c->ignored),
	    (unsigned long long)c->failure, (unsigned long long)c->refused,
	    failed[0] ? failed : "-");
}

/* status: every breaker with a state file or a [breaker NAME] section,
 * or those named, through the read model (lib/state/stateview.h). */
static int
run_status(const struct breaker_opts *o)
{
	struct stateview v;
	struct config c;
	struct error e;
	size_t i;
	int status = EXIT_OK, width = 4, printed = 0;

	signal(SIGPIPE, SIG_IGN);
	if (config_load(&c, &e) == -1)
		return error_report(&e);
	stateview_init(&v);
	if (stateview_breakers(&v, &c, o->names, (size_t)o->nnames, &e) == -1)
		status = error_report(&e);
	config_release(&c);
	for (i = 0; i < v.nbreakers; i++) {
		size_t len = strlen(v.breakers[i].st.name);
		if (len > (size_t)width && len <= NAME_MAX_LEN)
			width = (int)len;
	}
	for (i = 0; i < v.nbreakers; i++) {
		if (!v.breakers[i].ok) {
			reset_hint(&v.breakers[i].err, v.breakers[i].st.name);
			status = error_report(&v.breakers[i].err);
			continue;
		}
		print_status(o, &v.breakers[i], !printed, width);
		printed = 1;
	}
	stateview_release(&v);
	return status;
}

static int
run_manual(const struct breaker_opts *o)
{
	struct breaker b;
	struct error e;
	char dur[32];
	int rc;

	if ((rc = open_breaker(o, &b)) != 0)
		return rc;
	if ((o->sub == SUB_TRIP ? breaker_trip(&b, &e) :
	    breaker_reset(&b, &e)) == -1)
		return error_report(&e);
	if (o->verbose) {
		format_duration(dur, sizeof(dur), b.set.open_for_ms);
		if (o->sub == SUB_TRIP)
			warnmsg("%s: open for %s", b.name, dur);
		else
			warnmsg("%s: closed", b.name);
	}
	return EXIT_OK;
}

static int
run(const struct breaker_opts *o)
{
	switch (o->sub) {
	case SUB_RUN:
		return run_command(o);
	case SUB_PROBE:
		return run_probe(o);
	case SUB_STATUS:
		return run_status(o);
	case SUB_RESET:
	case SUB_TRIP:
		return run_manual(o);
	}
	return EXIT_SOFTWARE;
}

/* --- options ------------------------------------------------------------ */

static int
parse_sub(const char *s, enum sub *sub)
{
	static const struct {
		const char *name;
		enum sub sub;
	} subs[] = {
		{ "probe", SUB_PROBE }, { "reset", SUB_RESET }, { "run", SUB_RUN },
		{ "status", SUB_STATUS }, { "trip", SUB_TRIP },
	};
	size_t i;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(s, subs[i].name) == 0) {
			*sub = subs[i].sub;
			return 0;
		}
	return -1;
}

/* Whether option opt belongs to subcommand sub. */
static int
option_fits(enum sub sub, int opt)
{
	switch (opt) {
	case OPT_FAILURES:
	case OPT_HALF_OPEN:
	case OPT_MAX_OPEN_FOR:
	case OPT_SUCCESSES:
	case OPT_TIMEOUT:
		return sub == SUB_RUN || sub == SUB_PROBE;
	case OPT_JSON:
		return sub == SUB_STATUS;
	case OPT_OPEN_FOR:
		return sub == SUB_RUN || sub == SUB_PROBE || sub == SUB_TRIP;
	case 'v':
		return sub != SUB_STATUS;
	}
	return 1;
}

static int
set_value(struct breaker_opts *o, int opt, const char *v)
{
	uint64_t n;
	int ok;

	switch (opt) {
	case OPT_FAILURES:
	case OPT_HALF_OPEN:
	case OPT_SUCCESSES:
		ok = parse_u64(v, &n) == 0 && n > 0;
		if (opt == OPT_FAILURES)
			o->set.failures = n;
		else if (opt == OPT_HALF_OPEN)
			o->set.half_open = n;
		else
			o->set.successes = n;
		break;
	case OPT_MAX_OPEN_FOR:
		ok = parse_duration_ms(v, &o->set.max_open_for_ms) == 0;
		break;
	case OPT_OPEN_FOR:
		ok = parse_duration_ms(v, &o->set.open_for_ms) == 0 &&
		    o->set.open_for_ms > 0;
		break;
	case OPT_TIMEOUT:
		ok = parse_duration_ms(v, &o->set.timeout_ms) == 0 &&
		    o->set.timeout_ms > 0;
		break;
	default:
		return 0;
	}
	if (!ok)
		return -1;
	o->given[opt - OPT_FAILURES] = 1;
	return 0;
}

/* The operands of o's subcommand (nops of them at ops); 0 or 64. */
static int
take_operands(struct breaker_opts *o, char **ops, int nops)
{
	switch (o->sub) {
	case SUB_RUN:
		if (nops < 1)
			return usage_error(usage_text, "run: missing NAME");
		o->name = ops[0];
		ops++;
		nops--;
		/* getopt took the "--"; accept it once more after NAME */
		if (nops > 0 && strcmp(ops[0], "--") == 0) {
			ops++;
			nops--;
		}
		if (nops < 1)
			return usage_error(usage_text, "run: missing COMMAND");
		o->command = ops;
		break;
	case SUB_PROBE:
		if (nops != 2)
			return usage_error(usage_text, "probe: expected NAME URL");
		o->name = ops[0];
		o->url = ops[1];
		break;
	case SUB_STATUS:
		o->names = ops;
		o->nnames = nops;
		break;
	case SUB_RESET:
	case SUB_TRIP:
		if (nops != 1)
			return usage_error(usage_text, "%s: expected one NAME",
			    o->sub == SUB_TRIP ? "trip" : "reset");
		o->name = ops[0];
		break;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct breaker_opts o;
	int ch, status, idx;

	progname = "aistack-breaker";
	memset(&o, 0, sizeof(o));

	if (argc < 2)
		return usage_error(usage_text, "missing subcommand");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_text, stdout);
		status = EXIT_OK;
		goto out;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("aistack-breaker %s\n", AISTACK_VERSION);
		status = EXIT_OK;
		goto out;
	}
	if (parse_sub(argv[1], &o.sub) == -1)
		return usage_error(usage_text, "%s: unknown subcommand", argv[1]);

	argc--;
	argv++;
	while ((idx = -1, ch = getopt_long(argc, argv, "hv", longopts,
	    &idx)) != -1) {
		switch (ch) {
		case 'h':
			fputs(usage_text, stdout);
			status = EXIT_OK;
			goto out;
		case OPT_VERSION:
			printf("aistack-breaker %s\n", AISTACK_VERSION);
			status = EXIT_OK;
			goto out;
		case '?':
			return usage_error(usage_text, NULL);
		}
		if (!option_fits(o.sub, ch))
			return usage_error(usage_text, "%s%s: not an option of this "
			    "subcommand", idx >= 0 ? "--" : "-", idx >= 0 ?
			    longopts[idx].name : (ch == 'v' ? "v" : "?"));
		switch (ch) {
		case 'v':
			o.verbose = 1;
			break;
		case OPT_JSON:
			o.json = 1;
			break;
		default:
			if (set_value(&o, ch, optarg) == -1)
				return usage_error(usage_text, "--%s: invalid "
				    "value \"%s\"", longopts[idx].name, optarg);
			break;
		}
	}
	if ((status = take_operands(&o, argv + optind, argc - optind)) != 0)
		return status;
	status = run(&o);
	/* run and probe write nothing: a closed stdout is the command's business */
	if (o.sub == SUB_RUN || o.sub == SUB_PROBE)
		return status;
out:
	return exit_flush(status);
}
