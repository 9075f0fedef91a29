/* The circuit breaker: its state machine with the time injected, and the
 * shared state file, trial slots and settings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "breaker/breaker.h"
#include "unit.h"

#define BOOT_A "11111111-1111-1111-1111-111111111111"
#define BOOT_B "22222222-2222-2222-2222-222222222222"

static void
settings(struct breaker_settings *s)
{
	breaker_settings_init(s);
	s->open_for_ms = 30000;
	s->max_open_for_ms = 300000;
}

static struct breaker_clock
at(uint64_t boot_ms, int64_t wall, const char *boot_id)
{
	struct breaker_clock c;

	memset(&c, 0, sizeof(c));
	c.boot_ms = boot_ms;
	c.wall = wall;
	snprintf(c.boot_id, sizeof(c.boot_id), "%s", boot_id);
	return c;
}

/* Fail n times at now with the current generation. */
static void
fail_n(struct breaker_data *d, const struct breaker_settings *s,
    const struct breaker_clock *now, int n)
{
	while (n-- > 0)
		breaker_sm_record(d, s, now, d->generation, 0, 0);
}

TEST(breaker_defaults)
{
	struct breaker_settings s;

	breaker_settings_init(&s);
	CHECK_U64(s.failures, 5);
	CHECK_U64(s.successes, 2);
	CHECK_U64(s.half_open, 1);
	CHECK_U64(s.open_for_ms, 30000);
	CHECK_U64(s.max_open_for_ms, 300000);
	CHECK_U64(s.timeout_ms, 0);
	CHECK_STR(breaker_state_name(BREAKER_CLOSED), "closed");
	CHECK_STR(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
	CHECK_STR(breaker_state_name(BREAKER_OPEN), "open");
}

TEST(breaker_sm_failures_open_it)
{
	struct breaker_settings s;
	struct breaker_data d;
	struct breaker_clock now = at(1000, 1700000000, BOOT_A);
	enum breaker_state dec;
	uint64_t retry;

	settings(&s);
	memset(&d, 0, sizeof(d));
	fail_n(&d, &s, &now, 4);
	CHECK_INT(d.state, BREAKER_CLOSED);
	CHECK_U64(d.failures, 4);
	CHECK_INT(d.last_failure, 1700000000);
	CHECK_INT(breaker_sm_acquire(&d, &s, &now, &dec, &retry), 0);
	CHECK_INT(dec, BREAKER_CLOSED);
	fail_n(&d, &s, &now, 1);
	CHECK_INT(d.state, BREAKER_OPEN);
	CHECK_U64(d.opened, 1);
	CHECK_U64(d.open_ms, 30000);
	CHECK_U64(d.opened_at_ms, 1000);
	CHECK_STR(d.boot_id, BOOT_A);
	CHECK_INT(breaker_sm_acquire(&d, &s, &now, &dec, &retry), 0);
	CHECK_INT(dec, BREAKER_OPEN);
	CHECK_U64(retry, 30000);
	now.boot_ms = 21000;
	CHECK_INT(breaker_sm_acquire(&d, &s, &now, &dec, &retry), 0);
	CHECK_INT(dec, BREAKER_OPEN);
	CHECK_U64(retry, 10000);
}

TEST(breaker_sm_success_resets_count)
{
	struct breaker_settings s;
	struct breaker_data d;
	struct breaker_clock now = at(1000, 1, BOOT_A);

	settings(&s);
	memset(&d, 0, sizeof(d));
	fail_n(&d, &s, &now, 4);
	CHECK_INT(breaker_sm_record(&d, &s, &now, d.generation, 1, 0), 1);
	CHECK_U64(d.failures, 0);
	/* a success with nothing to clear changes nothing: no write */
	CHECK_INT(breaker_sm_record(&d, &s, &now, d.generation, 1, 0), 0);
	fail_n(&d, &s, &now, 4);
	CHECK_INT(d.state, BREAKER_CLOSED);
	fail_n(&d, &s, &now, 1);
	CHECK_INT(d.state, BREAKER_OPEN);
}

TEST(breaker_sm_half_open_then_close)
{
	struct breaker_settings s;
	struct breaker_data d;
	struct breaker_clock now = at(1000, 1, BOOT_A);
	enum breaker_state dec;
	uint64_t retry, gen;

	settings(&s);
	memset(&d, 0, sizeof(d));
	fail_n(&d, &s, &now, 5);
	now.boot_ms = 1000 + 30000;
	CHECK_INT(breaker_sm_acquire(&d, &s, &now, &dec, &retry), 1);
	CHECK_INT(dec, BREAKER_HALF_OPEN);
	CHECK_INT(d.state, BREAKER_HALF_OPEN);
	CHECK_U64(d.half_opened, 1);
	gen = d.generation;
	/* a second caller sees half-open without another change */
	CHECK_INT(breaker_sm_acquire(&d, &s, &now, &dec, &retry), 0);
	CHECK_INT(dec, BREAKER_HALF_OPEN);
	CHECK_INT(breaker_sm_record(&d, &s, &now, gen, 1, 0), 1);
	CHECK_INT(d.state, BREAKER_HALF_OPEN);
	CHECK_U64(d.successes, 1);
	CHECK_INT(breaker_sm_record(&d, &s, &now, gen, 1, 0), 1);
	CHECK_INT(d.state, BREAKER_CLOSED);
	CHECK_U64(d.closed, 1);
	CHECK_U64(d.failures, 0);
	CHECK_U64(d.successes, 0);
	CHECK_U64(d.streak, 0);
}

TEST(breaker_sm_trial_failure_reopens_longer)
{
	struct breaker_settings s;
	struct breaker_data d;
	struct breaker_clock now = at(1000, 1, BOOT_A);
	enum breaker_state dec;
	uint64_t retry;

	settings(&s);
	memset(&d, 0, sizeof(d));
	fail_n(&d, &s, &now, 5);
	now.boot_ms += 30000;
	breaker_sm_acquire(&d, &s, &now, &dec, &retry);
	CHECK_INT(breaker_sm_record(&d, &s, &now, d.generation, 0, 0), 1);
	CHECK_INT(d.state, BREAKER_OPEN);
	CHECK_U64(d.streak, 1);
	CHECK_U64(d.open_ms, 60000);		/* rnd 0: no jitter */
	CHECK_U64(d.opened, 2);
	/* still open 59 s later, half-open at 60 s */
	now.boot_ms += 59000;
	breaker_sm_acquire(&d, &s, &now, &dec, &retry);
	CHECK_INT(dec, BREAKER_OPEN);
	CHECK_U64(retry, 1000);
	now.boot_ms += 1000;
	breaker_sm_acquire(&d, &s, &now, &dec, &retry);
	CHECK_INT(dec, BREAKER_HALF_OPEN);
	breaker_sm_record(&d, &s, &now, d.generation, 0, 0);
	CHECK_U64(d.open_ms, 120000);
	/* closing forgets the streak: the next opening is open_for again */
	now.boot_ms += 120000;
	breaker_sm_acquire(&d, &s, &now, &dec, &retry);
	breaker_sm_record(&d, &s, &now, d.generation, 1, 0);
	breaker_sm_record(&d, &s, &now, d.generation, 1, 0);
	CHECK_INT(d.state, BREAKER_CLOSED);
	fail_n(&d, &s, &now, 5);
	CHECK_U64(d.open_ms, 30000);
}

TEST(breaker_open_period_growth_cap_jitter)
{
	struct breaker_settings s;
	uint64_t p;
	uint32_t r;

	settings(&s);
	CHECK_U64(breaker_open_period(&s, 0, 0xffffffffu), 30000);
	CHECK_U64(breaker_open_period(&s, 1, 0), 60000);
	CHECK_U64(breaker_open_period(&s, 2, 0), 120000);
	CHECK_U64(breaker_open_period(&s, 3, 0), 240000);
	CHECK_U64(breaker_open_period(&s, 4, 0), 300000);
	CHECK_U64(breaker_open_period(&s, 1000, 0), 300000);
	/* the jitter stays in [0.8 p, p] */
	p = breaker_open_period(&s, 1, 0xffffffffu);
	CHECK(p > 48000 && p <= 60000);
	p = breaker_open_period(&s, 1000, 0x80000000u);
	CHECK_U64(p, 300000 - 30000);
	for (r = 1; r < 0xfff00000u; r += 0x0f0f0f0fu) {
		p = breaker_open_period(&s, 7, r);
		CHECK(p >= 240000 && p <= 300000);
	}
	/* a cap below open_for: never grows, never jitters */
	s.max_open_for_ms = 1000;
	CHECK_U64(breaker_open_period(&s, 5, 0x12345678u), 30000);
	/* never below open_for, even at the smallest growth */
	s.open_for_ms = 1000;
	s.max_open_for_ms = 1100;
	CHECK_U64(breaker_open_period(&s, 1, 0xffffffffu), 1000);
	/* no overflow near the top */
	s.open_for_ms = UINT64_MAX / 3;
	s.max_open_for_ms = UINT64_MAX;
	CHECK_U64(breaker_open_period(&s, 64, 0), UINT64_MAX);
}

TEST(breaker_sm_stale_outcomes_ignored)
{
	struct breaker_settings s;
	struct breaker_data d;
	struct breaker_clock now = at(1000, 1, BOOT_A);
	uint64_t old;

	settings(&s);
	memset(&d, 0, sizeof(d));
	old = d.generation;
	fail_n(&d, &s, &now, 5);
	/* calls let through before it opened report late */
	CHECK_INT(breaker_sm_record(&d, &s, &now, old, 0, 0), 0);
	CHECK_INT(breaker_sm_record(&d, &s, &now, old, 1, 0), 0);
	CHECK_INT(d.state, BREAKER_OPEN);
	/* a trial from before a reset */
	old = d.generation;
	breaker_sm_reset(&d);
	CHECK_INT(breaker_sm_record(&d, &s, &now, old, 0, 0), 0);
	CHECK_U64(d.failures, 0);
}

TEST(breaker_sm_clock_jumps_and_reboots)
{
	struct breaker_settings s;
	struct breaker_data d;
	struct breaker_clock now = at(5000000, 1700000000, BOOT_A);

	settings(&s);
	memset(&d, 0, sizeof(d));
	fail_n(&d, &s, &now, 5);
	/* the wall clock jumps a day either way: nothing changes */
	now.wall += 86400;
	CHECK_U64(breaker_sm_remaining(&d, &now), 30000);
	now.wall -= 2 * 86400;
	CHECK_U64(breaker_sm_remaining(&d, &now), 30000);
	now.boot_ms += 10000;
	CHECK_U64(breaker_sm_remaining(&d, &now), 20000);
	/* another boot: the period is over */
	now = at(5000000 + 1000, 1700000000, BOOT_B);
	CHECK_U64(breaker_sm_remaining(&d, &now), 0);
	/* the same boot id but an earlier boot time (unknown ids) */
	now = at(100, 1700000000, "");
	CHECK_U64(breaker_sm_remaining(&d, &now), 0);
	now = at(5000000 + 100, 1700000000, "");
	CHECK_U64(breaker_sm_remaining(&d, &now), 29900);
}

TEST(breaker_sm_trip_and_reset)
{
	struct breaker_settings s;
	struct breaker_data d;
	struct breaker_clock now = at(1000, 1, BOOT_A);
	uint64_t g;

	settings(&s);
	s.open_for_ms = 3600000;
	memset(&d, 0, sizeof(d));
	g = d.generation;
	CHECK_INT(breaker_sm_trip(&d, &s, &now), 1);
	CHECK_INT(d.state, BREAKER_OPEN);
	CHECK(d.generation != g);
	CHECK_U64(breaker_sm_remaining(&d, &now), 3600000);
	CHECK_INT(breaker_sm_reset(&d), 1);
	CHECK_INT(d.state, BREAKER_CLOSED);
	CHECK_U64(d.closed, 1);
	CHECK_U64(d.opened, 1);
	/* resetting a closed breaker is no transition */
	breaker_sm_reset(&d);
	CHECK_U64(d.closed, 1);
}

/* --- the state file ----------------------------------------------------- */

static struct breaker_clock fake;

static void
fake_clock(struct breaker_clock *now)
{
	*now = fake;
}

static int
init(struct breaker *b, const char *name, struct breaker_settings *s)
{
	struct error e;

	if (breaker_init(b, name, s, &e) == -1)
		return -1;
	b->clock = fake_clock;
	return 0;
}

TEST(breaker_file_round_trip)
{
	struct breaker_settings s;
	struct breaker b;
	struct breaker_ticket t;
	struct breaker_status st;
	struct error e;
	uint64_t retry;
	int i;

	settings(&s);
	s.failures = 3;
	fake = at(1000, 1700000000, BOOT_A);
	CHECK(init(&b, "pg", &s) == 0);
	CHECK_INT(breaker_status_get(&b, &st, &e), 0);
	CHECK_INT(st.state, BREAKER_CLOSED);
	CHECK_STR(st.name, "pg");
	for (i = 0; i < 3; i++) {
		CHECK_INT(breaker_acquire(&b, &t, &retry, &e), BREAKER_ALLOWED);
		CHECK_INT(t.state, BREAKER_CLOSED);
		CHECK_INT(t.slot_fd, -1);
		CHECK_INT(breaker_record(&b, &t, 0, &e), 0);
	}
	CHECK_INT(t.after, BREAKER_OPEN);
	CHECK_INT(t.transition, 1);
	CHECK_INT(breaker_acquire(&b, &t, &retry, &e), BREAKER_REFUSED);
	CHECK_U64(retry, 30000);
	fake.boot_ms += 12345;
	CHECK_INT(breaker_status_get(&b, &st, &e), 0);
	CHECK_INT(st.state, BREAKER_OPEN);
	CHECK_U64(st.retry_in_ms, 30000 - 12345);
	CHECK_U64(st.data.opened, 1);
	CHECK_U64(st.data.failures, 3);
	CHECK_INT(st.data.last_failure, 1700000000);
	CHECK_INT(st.data.opened_at, 1700000000);
	CHECK_STR(st.data.boot_id, BOOT_A);
	/* past the period status says half-open before anyone calls */
	fake.boot_ms += 30000;
	CHECK_INT(breaker_status_get(&b, &st, &e), 0);
	CHECK_INT(st.state, BREAKER_HALF_OPEN);
	CHECK_INT(st.data.state, BREAKER_OPEN);
	CHECK_U64(st.retry_in_ms, 0);
	/* the metrics file follows every change */
	{
		char *text;
		size_t len;
		CHECK_INT(read_file("metrics/breaker-pg.prom", 65536, &text,
		    &len), 0);
		CHECK(strstr(text, "aistack_breaker_state{breaker=\"pg\"} 2\n")
		    != NULL);
		CHECK(strstr(text, "aistack_breaker_transitions_total{breaker="
		    "\"pg\",to=\"open\"} 1\n") != NULL);
		free(text);
	}
}

TEST(breaker_file_counts_after_reset)
{
	struct breaker_settings s;
	struct breaker b;
	struct breaker_ticket t;
	struct breaker_status st;
	struct error e;
	uint64_t retry;

	settings(&s);
	fake = at(1000, 1, BOOT_A);
	CHECK(init(&b, "r", &s) == 0);
	CHECK_INT(breaker_trip(&b, &e), 0);
	CHECK_INT(breaker_reset(&b, &e), 0);
	/* the closed fast path hands out the current generation */
	CHECK_INT(breaker_acquire(&b, &t, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(breaker_record(&b, &t, 0, &e), 0);
	CHECK_INT(breaker_status_get(&b, &st, &e), 0);
	CHECK_U64(st.data.failures, 1);
	CHECK_INT(breaker_acquire(&b, &t, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(breaker_record(&b, &t, 1, &e), 0);
	CHECK_INT(breaker_status_get(&b, &st, &e), 0);
	CHECK_U64(st.data.failures, 0);
}

/* Past the cache's trust window (1 ms): another process's change shows. */
static void
past_trust_window(void)
{
	struct timespec ts = { 0, 3 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* A cached handle (the proxy's) sees every change another process makes,
 * even rewrites of the same size in quick succession: at once when it
 * checks (status, decisions under the lock), within its trust window
 * for the decisions taken without the lock; and its own at once. */
TEST(breaker_file_cache_follows_other_writers)
{
	struct breaker_settings s;
	struct breaker cached, other;
	struct breaker_ticket t;
	struct breaker_status st;
	struct error e;
	uint64_t retry, i;

	settings(&s);
	s.failures = 50;
	fake = at(1000, 1, BOOT_A);
	CHECK(init(&cached, "c", &s) == 0);
	CHECK(init(&other, "c", &s) == 0);
	CHECK_INT(access("breakers/c", F_OK), -1);
	CHECK_INT(breaker_cache_enable(&cached, &e), 0);
	CHECK_INT(access("breakers/c", F_OK), 0);	/* a file to hold */
	CHECK_INT(breaker_acquire(&cached, &t, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(breaker_record(&cached, &t, 1, &e), 0);
	for (i = 1; i <= 20; i++) {
		CHECK_INT(breaker_acquire(&other, &t, &retry, &e),
		    BREAKER_ALLOWED);
		CHECK_INT(breaker_record(&other, &t, 0, &e), 0);
		CHECK_INT(breaker_status_get(&cached, &st, &e), 0);
		CHECK_U64(st.data.failures, i);
	}
	CHECK_INT(breaker_trip(&other, &e), 0);
	past_trust_window();
	CHECK_INT(breaker_acquire(&cached, &t, &retry, &e), BREAKER_REFUSED);
	CHECK_INT(breaker_reset(&other, &e), 0);
	past_trust_window();
	CHECK_INT(breaker_acquire(&cached, &t, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(breaker_record(&cached, &t, 0, &e), 0);
	CHECK_INT(breaker_status_get(&other, &st, &e), 0);
	CHECK_U64(st.data.failures, 1);
	/* its own change: at once, within the window */
	CHECK_INT(breaker_trip(&cached, &e), 0);
	CHECK_INT(breaker_acquire(&cached, &t, &retry, &e), BREAKER_REFUSED);
	CHECK_INT(breaker_reset(&cached, &e), 0);
	CHECK_INT(breaker_acquire(&cached, &t, &retry, &e), BREAKER_ALLOWED);
	breaker_cancel(&t);
	/* a removed file is a closed breaker with no history */
	CHECK_INT(unlink("breakers/c"), 0);
	CHECK_INT(breaker_status_get(&cached, &st, &e), 0);
	CHECK_U64(st.data.failures, 0);
	breaker_fini(&cached);
	breaker_fini(&cached);
	CHECK(cached.cache == NULL);
}

TEST(breaker_file_one_trial_at_a_time)
{
	struct breaker_settings s;
	struct breaker b;
	struct breaker_ticket t1, t2;
	struct error e;
	uint64_t retry;

	settings(&s);
	fake = at(1000, 1, BOOT_A);
	CHECK(init(&b, "q", &s) == 0);
	CHECK_INT(breaker_trip(&b, &e), 0);
	fake.boot_ms += 30000;
	CHECK_INT(breaker_acquire(&b, &t1, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(t1.state, BREAKER_HALF_OPEN);
	CHECK(t1.slot_fd >= 0);
	/* the same process, another descriptor: the slot is taken */
	CHECK_INT(breaker_acquire(&b, &t2, &retry, &e), BREAKER_REFUSED);
	CHECK_U64(retry, 1000);
	/* a success frees the slot; it takes two to close */
	CHECK_INT(breaker_record(&b, &t1, 1, &e), 0);
	CHECK_INT(t1.slot_fd, -1);
	CHECK_INT(t1.after, BREAKER_HALF_OPEN);
	CHECK_INT(breaker_acquire(&b, &t2, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(t2.state, BREAKER_HALF_OPEN);
	CHECK_INT(breaker_record(&b, &t2, 1, &e), 0);
	CHECK_INT(t2.after, BREAKER_CLOSED);
	CHECK_INT(t2.transition, 1);
	/* two slots when half_open is 2 */
	b.set.half_open = 2;
	CHECK_INT(breaker_trip(&b, &e), 0);
	fake.boot_ms += 30000;
	CHECK_INT(breaker_acquire(&b, &t1, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(breaker_acquire(&b, &t2, &retry, &e), BREAKER_ALLOWED);
	{
		struct breaker_ticket t3;
		CHECK_INT(breaker_acquire(&b, &t3, &retry, &e),
		    BREAKER_REFUSED);
	}
	/* a cancelled trial counts nothing and frees its slot */
	breaker_cancel(&t1);
	breaker_cancel(&t1);
	CHECK_INT(breaker_acquire(&b, &t1, &retry, &e), BREAKER_ALLOWED);
	/* one failure reopens; the other trial's late success is stale */
	CHECK_INT(breaker_record(&b, &t1, 0, &e), 0);
	CHECK_INT(t1.after, BREAKER_OPEN);
	CHECK_INT(breaker_record(&b, &t2, 1, &e), 0);
	CHECK_INT(t2.after, BREAKER_OPEN);
	CHECK_INT(t2.transition, 0);
}

TEST(breaker_file_dead_holder_slot_reclaimed)
{
	struct breaker_settings s;
	struct breaker b;
	struct breaker_ticket t;
	struct error e;
	uint64_t retry;
	int status, p[2];
	char c;
	pid_t pid;

	settings(&s);
	fake = at(1000, 1, BOOT_A);
	CHECK(init(&b, "dead", &s) == 0);
	CHECK_INT(breaker_trip(&b, &e), 0);
	fake.boot_ms += 30000;
	CHECK(pipe(p) == 0);
	if ((pid = fork()) == 0) {
		/* take the trial, say so, then die holding it */
		if (breaker_acquire(&b, &t, &retry, &e) != BREAKER_ALLOWED)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	CHECK(read(p[0], &c, 1) == 1);
	CHECK_INT(breaker_acquire(&b, &t, &retry, &e), BREAKER_REFUSED);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	CHECK_INT(breaker_acquire(&b, &t, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(t.state, BREAKER_HALF_OPEN);
	breaker_cancel(&t);
}

TEST(breaker_file_damaged_state)
{
	struct breaker_settings s;
	struct breaker b;
	struct breaker_ticket t;
	struct error e;
	uint64_t retry;
	FILE *f;

	settings(&s);
	fake = at(1000, 1, BOOT_A);
	CHECK(init(&b, "bad", &s) == 0);
	CHECK((f = fopen("breakers/bad", "w")) != NULL);
	fputs("{\"state\":\"sideways\"}\n", f);
	fclose(f);
	CHECK_INT(breaker_acquire(&b, &t, &retry, &e), -1);
	CHECK_INT(e.code, EXIT_DATAERR);
	CHECK(strstr(e.msg, "breakers/bad: invalid breaker state") != NULL);
	CHECK_INT(breaker_reset(&b, &e), 0);
	CHECK_INT(breaker_acquire(&b, &t, &retry, &e), BREAKER_ALLOWED);
	CHECK_INT(breaker_record(&b, &t, 1, &e), 0);
}

TEST(breaker_file_list_and_names)
{
	struct breaker_settings s;
	struct breaker b;
	struct error e;
	char **names;
	size_t n, i;

	settings(&s);
	fake = at(1000, 1, BOOT_A);
	CHECK_INT(breaker_init(&b, "Bad", &s, &e), -1);
	CHECK_INT(e.code, EXIT_USAGE);
	CHECK_INT(breaker_init(&b, "../x", &s, &e), -1);
	CHECK(init(&b, "zeta", &s) == 0);
	CHECK_INT(breaker_trip(&b, &e), 0);
	CHECK(init(&b, "alpha", &s) == 0);
	CHECK_INT(breaker_reset(&b, &e), 0);
	CHECK_INT(breaker_list(&names, &n, &e), 0);
	CHECK_U64(n, 2);
	CHECK_STR(names[0], "alpha");
	CHECK_STR(names[1], "zeta");
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

TEST(breaker_settings_from_config)
{
	struct breaker_settings s;
	struct config c;
	struct error e;
	FILE *f;

	CHECK((f = fopen("c.conf", "w")) != NULL);
	fputs("[breaker]\nfailures = 7\nopen_for = 10s\n"
	    "[breaker pg]\nfailures = 3\nmax_open_for = 1h\nhalf_open = 2\n"
	    "timeout = 500ms\n[breaker bad]\nsuccesses = 0\n", f);
	fclose(f);
	CHECK_INT(config_load_file(&c, "c.conf", &e), 0);
	breaker_settings_init(&s);
	CHECK_INT(breaker_settings_load(&s, &c, "pg", &e), 0);
	CHECK_U64(s.failures, 3);
	CHECK_U64(s.open_for_ms, 10000);
	CHECK_U64(s.max_open_for_ms, 3600000);
	CHECK_U64(s.half_open, 2);
	CHECK_U64(s.timeout_ms, 500);
	CHECK_U64(s.successes, 2);
	breaker_settings_init(&s);
	CHECK_INT(breaker_settings_load(&s, &c, "other", &e), 0);
	CHECK_U64(s.failures, 7);
	/* the environment beats the file */
	setenv("AISTACK_BREAKER_PG_FAILURES", "9", 1);
	breaker_settings_init(&s);
	CHECK_INT(breaker_settings_load(&s, &c, "pg", &e), 0);
	CHECK_U64(s.failures, 9);
	setenv("AISTACK_BREAKER_PG_OPEN_FOR", "soon", 1);
	CHECK_INT(breaker_settings_load(&s, &c, "pg", &e), -1);
	CHECK_INT(e.code, EXIT_CONFIG);
	CHECK(strstr(e.msg, "AISTACK_BREAKER_PG_OPEN_FOR") != NULL);
	unsetenv("AISTACK_BREAKER_PG_OPEN_FOR");
	CHECK_INT(breaker_settings_load(&s, &c, "bad", &e), -1);
	CHECK(strstr(e.msg, "c.conf:10") != NULL);
	config_release(&c);
	breaker_settings_init(&s);
	s.half_open = 0;
	CHECK_INT(breaker_settings_check(&s, &e), -1);
	CHECK_INT(e.code, EXIT_USAGE);
}

TEST(breaker_boot_id_forms)
{
	char id[BREAKER_BOOT_ID_SIZE];

	CHECK_INT(sizeof(((struct breaker_clock *)0)->boot_id), sizeof(id));
	/* the kernel's form, and systemd's %b form of the same id */
	CHECK_INT(breaker_boot_id_parse("5d917f09-bc4d-414d-b362-0edcee58e0ea", id), 0);
	CHECK_STR(id, "5d917f09-bc4d-414d-b362-0edcee58e0ea");
	CHECK_INT(breaker_boot_id_parse("5d917f09bc4d414db3620edcee58e0ea", id), 0);
	CHECK_STR(id, "5d917f09-bc4d-414d-b362-0edcee58e0ea");
	CHECK_INT(breaker_boot_id_parse("", id), -1);
	CHECK_INT(breaker_boot_id_parse("5d917f09bc4d414db3620edcee58e0e", id), -1);
	CHECK_INT(breaker_boot_id_parse("5d917f09bc4d414db3620edcee58e0eaa", id), -1);
	CHECK_INT(breaker_boot_id_parse("5D917F09BC4D414DB3620EDCEE58E0EA", id), -1);
	CHECK_INT(breaker_boot_id_parse("5d917f09-bc4d-414d-b362+0edcee58e0ea", id), -1);
	CHECK_INT(breaker_boot_id_parse("5d917f09-bc4d-414db-362-0edcee58e0ea", id), -1);
	CHECK_INT(breaker_boot_id_parse("%b", id), -1);
}

/* Where /proc/sys cannot be read, the clock takes AISTACK_BOOT_ID; where
 * it can, the kernel's id wins over a wrong one in the environment. */
TEST(breaker_clock_boot_id_source)
{
	struct breaker_clock c;
	char kernel[BREAKER_BOOT_ID_SIZE] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	if (f != NULL) {
		if (fgets(kernel, sizeof(kernel), f) == NULL)
			kernel[0] = '\0';
		fclose(f);
		kernel[strcspn(kernel, "\n")] = '\0';
	}
	setenv("AISTACK_BOOT_ID", "00000000000000000000000000000001", 1);
	breaker_clock_now(&c);
	if (kernel[0] != '\0')
		CHECK_STR(c.boot_id, kernel);
	else
		CHECK_STR(c.boot_id, "00000000-0000-0000-0000-000000000001");
	unsetenv("AISTACK_BOOT_ID");
}
