/*
 * aistack-proxy: the stack's front door.  Serves the dashboard, /health,
 * /metrics and /api/stats from the state directory, and passes GET and
 * HEAD requests for allow-listed paths to the configured upstreams
 * through their circuit breakers, rate limited per client address.
 *
 * The rooms, in the order a request meets them:
 *	main.c		options, run()
 *	setup.c		the configuration made into a struct proxy (token.c:
 *			the bearer token's rules, pure)
 *	server.c	sockets, workers and their event loops, signals
 *	request.c	a request: admit, rate limit, route, auth, dispatch
 *	respond.c	answers: the headers every answer carries, errors
 *	dashboard.c	GET / and the dashboard's files
 *	status.c	GET /health and /api/stats
 *	metrics.c	GET /metrics
 *	upstream.c	GET /upstream/NAME/PATH, through its breaker
 *	accesslog.c	the access log (logline.c: its line, pure)
 *	files.c		listing the directories the proxy reads
 *	shed.c		which connection a full table sheds (pure)
 *	proxy.h		the shared structs
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/exitcode.h"

#include "proxy.h"

static const char usage_text[] =
"usage: aistack-proxy [-v] [-c CONFIG] [-l ADDR:PORT] [--rate N/min] [--burst N]\n"
"                     [--dashboard DIR] [--access-log FILE]\n"
"\n"
"Serve the dashboard, /health, /metrics and /api/stats, and pass GET and\n"
"HEAD requests for allow-listed paths to the configured upstreams through\n"
"their circuit breakers, rate limited per client address.\n"
"\n"
"  -v, --verbose            report the address and upstream failures on standard error\n"
"  -c, --config CONFIG      read CONFIG instead of the usual configuration file\n"
"  -l, --listen ADDR:PORT   listen there (default 127.0.0.1:8888; port 0: any free one)\n"
"      --rate N/min         requests a client may make (default 60/min; also N/s, N/h)\n"
"      --burst N            requests a client may make at once (default: the rate a minute)\n"
"      --dashboard DIR      serve the dashboard from DIR, not the built-in copy\n"
"      --access-log FILE    append one line a request to FILE (default standard error)\n"
"  -h, --help               show this help\n"
"      --version            show the version\n";

/* Set up, serve until SIGTERM or SIGINT, stop.  Returns the exit status. */
static int
run(const struct proxy_opts *o)
{
	struct proxy *p;
	struct error e;
	int rc = EXIT_OK;

	if ((p = proxy_new(o, &e)) == NULL)
		return error_report(&e);
	if (server_start(p, &e) == 0)
		server_wait(p);
	else
		rc = error_report(&e);
	proxy_free(p);
	return rc;
}

enum {
	OPT_ACCESS_LOG = 256, OPT_BURST, OPT_DASHBOARD, OPT_RATE, OPT_VERSION
};

static const struct option longopts[] = {
	{ "access-log",		required_argument,	NULL, OPT_ACCESS_LOG },
	{ "burst",		required_argument,	NULL, OPT_BURST },
	{ "config",		required_argument,	NULL, 'c' },
	{ "dashboard",		required_argument,	NULL, OPT_DASHBOARD },
	{ "help",		no_argument,		NULL, 'h' },
	{ "listen",		required_argument,	NULL, 'l' },
	{ "rate",		required_argument,	NULL, OPT_RATE },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ NULL,			0,			NULL, 0 }
};

int
main(int argc, char **argv)
{
	struct proxy_opts o;
	int ch, status;

	progname = "aistack-proxy";
	memset(&o, 0, sizeof(o));
	signal(SIGPIPE, SIG_IGN);

	while ((ch = getopt_long(argc, argv, "c:hl:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return exit_flush(EXIT_OK);
		case 'l':
			o.listen = optarg;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case OPT_ACCESS_LOG:
			o.access_log = optarg;
			break;
		case OPT_BURST:
			o.burst = optarg;
			break;
		case OPT_DASHBOARD:
			o.dashboard = optarg;
			break;
		case OPT_RATE:
			o.rate = optarg;
			break;
		case OPT_VERSION:
			printf("aistack-proxy %s\n", AISTACK_VERSION);
			return exit_flush(EXIT_OK);
		default:
			return usage_error(usage_text, NULL);
		}
	}
	if (optind < argc)
		return usage_error(usage_text, "%s: unexpected operand",
		    argv[optind]);
	status = run(&o);
	return exit_flush(status);
}
