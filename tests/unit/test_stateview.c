/*
 * The read model (lib/state/stateview.h) and what it reads: the stream's
 * counters (their crash rule), the pause lock, breakers from their
 * first use and from the configuration, dedup states, and the
 * Prometheus rendering (lib/state/stateprom.h), checked by promtool.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/config.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/lock.h"
#include "base/metrics.h"
#include "breaker/breaker.h"
#include "dedup/keystore.h"
#include "state/stateprom.h"
#include "state/stateview.h"
#include "stream/consumer.h"
#include "stream/stream.h"
#include "unit.h"

/* Append text (whole records) under the lock, as a writer does. */
static int
append(struct stream *s, const char *text)
{
	struct error e;
	int rc;

	if (stream_lock(s, &e) == -1)
		return -1;
	rc = stream_append(s, text, strlen(text), NULL, &e);
	stream_unlock(s);
	return rc;
}

static int
counters(const char *dir, struct stream_counters *c)
{
	struct error e;

	return stream_counters_read(dir, c, &e);
}

/* The one stream of a view of "t". */
static int
view_t(struct stateview *v)
{
	struct error e;
	char t[] = "t", *names[] = { t };

	stateview_init(v);
	if (stateview_streams(v, names, 1, &e) == -1 || v->nstreams != 1)
		return -1;
	return 0;
}

TEST(stream_counters_count_appends_and_lines)
{
	struct stream s;
	struct stream_counters c;
	struct error e;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK_INT(counters(s.dir, &c), 1);	/* none before the first lock */
	CHECK(append(&s, "{\"a\":1}\n{\"b\":2}\n") == 0);
	CHECK(stream_lock(&s, &e) == 0);
	CHECK(stream_append_records(&s, "{\"c\":3}\n", 8, 1, NULL, &e) == 0);
	stream_count_lines(&s, 2, 5);
	stream_unlock(&s);
	CHECK_INT(counters(s.dir, &c), 0);
	CHECK_U64(c.records, 3);
	CHECK_U64(c.bytes, 24);
	CHECK_U64(c.head, 24);
	CHECK_U64(c.rejected, 2);
	CHECK_U64(c.empty, 5);
	CHECK(c.since > 0);
	/* a lock for the counters alone creates no segment and moves nothing */
	CHECK(stream_lock_counters(&s, &e) == 0);
	stream_unlock(&s);
	CHECK_INT(counters(s.dir, &c), 0);
	CHECK_U64(c.records, 3);
	stream_close(&s);
}

/*
 * The crash rule: a writer killed after its write and before the release
 * of the lock leaves the counters behind (never ahead); the next holder,
 * after cutting the torn tail, counts what it finds and they are exact.
 */
TEST(stream_counters_lag_then_become_exact_after_a_killed_writer)
{
	struct stream s;
	struct stream_counters c;
	struct error e;
	pid_t pid;
	int st;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	if ((pid = fork()) == 0) {
		struct stream w;
		if (stream_open(&w, "t", 1, &e) == -1 || stream_lock(&w, &e) == -1)
			_exit(1);
		/* two whole records and half of a third, then death */
		if (write(w.segfd, "{\"b\":2}\n{\"c\":3}\n{\"to", 20) != 20)
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
	CHECK_INT(counters(s.dir, &c), 0);
	CHECK_U64(c.records, 1);		/* lags, does not lead */
	CHECK(stream_lock(&s, &e) == 0);	/* cuts the torn tail, counts */
	stream_unlock(&s);
	CHECK_INT(counters(s.dir, &c), 0);
	CHECK_U64(c.records, 3);
	CHECK_U64(c.bytes, 24);
	CHECK_U64(c.head, 24);
	stream_close(&s);
}

/* Records that moved into a sealed segment before they were counted are
 * counted from it; a damaged counters file starts afresh at the head. */
TEST(stream_counters_count_across_a_seal_and_survive_damage)
{
	struct stream s, w;
	struct stream_counters c;
	struct error e;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	/* a writer appends, seals, appends, and dies before saving */
	CHECK(stream_open(&w, "t", 0, &e) == 0);
	CHECK(stream_lock(&w, &e) == 0);
	CHECK(stream_append(&w, "{\"b\":2}\n", 8, NULL, &e) == 0);
	CHECK_INT(stream_seal(&w, NULL, NULL, &e), 1);
	CHECK(stream_append(&w, "{\"c\":3}\n", 8, NULL, &e) == 0);
	w.ctr_dirty = 0;			/* as if killed now */
	stream_unlock(&w);
	stream_close(&w);
	CHECK_INT(counters(s.dir, &c), 0);
	CHECK_U64(c.records, 1);
	CHECK(append(&s, "{\"d\":4}\n") == 0);
	CHECK_INT(counters(s.dir, &c), 0);
	CHECK_U64(c.records, 4);
	CHECK_U64(c.bytes, 32);
	CHECK(atomic_replace("streams/t/.counters", "junk\n", 5, 0644, &e) == 0);
	CHECK_INT(counters(s.dir, &c), -1);
	CHECK(append(&s, "{\"e\":5}\n") == 0);
	CHECK_INT(counters(s.dir, &c), 0);
	CHECK_U64(c.records, 1);
	CHECK_U64(c.head, 40);
	stream_close(&s);
}

TEST(stateview_stream_live_values_from_sizes)
{
	struct stateview v;
	struct stream s;
	struct consumer_state cs;
	struct error e;
	const struct sv_stream *t;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n{\"b\":2}\n") == 0);
	CHECK(stream_lock(&s, &e) == 0);
	CHECK_INT(stream_seal(&s, NULL, NULL, &e), 1);
	stream_unlock(&s);
	CHECK(append(&s, "{\"c\":3}\n") == 0);
	memset(&cs, 0, sizeof(cs));
	cs.committed = cs.pending = 8;
	cs.records = 1;
	CHECK(consumer_save(s.dir, "slow", &cs, &e) == 0);
	cs.committed = cs.pending = 24;
	cs.records = 3;
	CHECK(consumer_note_failure(s.dir, "fast", &cs, &e) == 0);
	/* a torn tail is on disk but not in the head */
	CHECK(write(s.segfd, "{\"torn", 6) == 6);
	CHECK(view_t(&v) == 0);
	t = &v.streams[0];
	CHECK(t->ok);
	CHECK_U64(t->head, 24);
	CHECK_U64(t->first, 0);
	CHECK_U64(t->backlog, 16);
	CHECK_U64(t->disk_plain, 30);
	CHECK_U64(t->segments_plain, 2);
	CHECK_U64(t->segments_gz, 0);
	CHECK(t->have_counters);
	CHECK_U64(t->ctr.records, 3);
	CHECK(!t->paused);
	CHECK_U64(t->nconsumers, 2);
	CHECK_STR(t->consumers[0].name, "fast");
	CHECK_U64(t->consumers[0].lag, 0);
	CHECK_U64(t->consumers[0].st.batches_failed, 1);
	CHECK(t->consumers[0].updated > 0);
	CHECK_STR(t->consumers[1].name, "slow");
	CHECK_U64(t->consumers[1].lag, 16);
	stateview_release(&v);
	stream_close(&s);
}

/* Its cost does not grow with the data: a stream of a terabyte (sparse)
 * is read in the time of a small one, since no record is read. */
TEST(stateview_reads_no_records)
{
	struct stateview v;
	char name[64], path[128];
	uint64_t tb = 1ULL << 40;
	int fd;

	CHECK(mkdir("streams", 0700) == 0 && mkdir("streams/t", 0700) == 0);
	segment_name(name, sizeof(name), 0, 0);
	snprintf(path, sizeof(path), "streams/t/%s", name);
	CHECK((fd = open(path, O_WRONLY | O_CREAT, 0444)) != -1);
	CHECK(ftruncate(fd, (off_t)tb) == 0);	/* no newline in it at all */
	close(fd);
	segment_name(name, sizeof(name), tb, 0);
	snprintf(path, sizeof(path), "streams/t/%s", name);
	CHECK((fd = open(path, O_WRONLY | O_CREAT, 0644)) != -1);
	CHECK(write(fd, "{\"a\":1}\n", 8) == 8);
	close(fd);
	CHECK(view_t(&v) == 0);
	CHECK(v.streams[0].ok);
	CHECK_U64(v.streams[0].head, tb + 8);
	CHECK_U64(v.streams[0].disk_plain, tb + 8);
	CHECK(!v.streams[0].have_counters);
	stateview_release(&v);
}

TEST(stateview_missing_stream_is_kept_with_its_error)
{
	struct stateview v;
	struct error e;
	char nosuch[] = "nosuch", *names[] = { nosuch };

	stateview_init(&v);
	CHECK(stateview_streams(&v, names, 1, &e) == 0);
	CHECK_U64(v.nstreams, 1);
	CHECK(!v.streams[0].ok);
	CHECK_INT(v.streams[0].err.code, EXIT_NOINPUT);
	CHECK_STR(v.streams[0].err.msg, "nosuch: no such stream");
	stateview_release(&v);
}

/* paused: true while a process holds the pause, false the moment it
 * dies, however it dies; never a leftover. */
TEST(stateview_paused_only_while_the_holder_lives)
{
	struct stateview v;
	struct stream s;
	struct error e;
	int p[2], st;
	char c;
	pid_t pid;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	CHECK_INT(stream_paused(s.dir), 0);
	CHECK(stream_pause(&s, 1, &e) == 0);
	CHECK_INT(stream_paused(s.dir), 1);
	CHECK(stream_pause(&s, 0, &e) == 0);
	CHECK_INT(stream_paused(s.dir), 0);
	CHECK(pipe(p) == 0);
	if ((pid = fork()) == 0) {
		struct stream w;
		if (stream_open(&w, "t", 0, &e) == -1 ||
		    stream_pause(&w, 1, &e) == -1)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	CHECK(pid > 0);
	CHECK(read(p[0], &c, 1) == 1);
	CHECK_INT(stream_paused(s.dir), 1);
	CHECK(view_t(&v) == 0);
	CHECK(v.streams[0].paused);
	stateview_release(&v);
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK_INT(stream_paused(s.dir), 0);
	CHECK(view_t(&v) == 0);
	CHECK(!v.streams[0].paused);
	stateview_release(&v);
	close(p[0]);
	close(p[1]);
	stream_close(&s);
}

static int
call(const char *name, int outcome)
{
	struct breaker b;
	struct breaker_ticket t;
	struct error e;
	uint64_t retry;
	int rc;

	if (breaker_init(&b, name, NULL, &e) == -1)
		return -1;
	rc = breaker_acquire(&b, &t, &retry, &e);
	if (rc == BREAKER_ALLOWED) {
		if (outcome < 0)
			breaker_cancel(&t);
		else
			rc = breaker_record(&b, &t, outcome, &e);
	}
	breaker_fini(&b);
	return rc;
}

TEST(stateview_breakers_from_first_use_and_configuration)
{
	static const char conf[] = "[breaker]\nfailures = 3\n"
	    "[breaker postgres]\nopen_for = 1m\n[upstream qdrant]\n"
	    "url = http://127.0.0.1:1\n[breaker ok]\nfailures = 2\n";
	struct stateview v;
	struct config c;
	struct error e;
	int i;

	CHECK(config_parse(&c, "test.conf", conf, sizeof(conf) - 1, &e) == 0);
	for (i = 0; i < 3; i++)
		CHECK_INT(call("ok", 1), 0);
	CHECK_INT(call("ok", -1), BREAKER_ALLOWED);
	CHECK_INT(call("bad", 0), 0);
	stateview_init(&v);
	CHECK(stateview_breakers(&v, &c, NULL, 0, &e) == 0);
	CHECK_U64(v.nbreakers, 3);
	CHECK_STR(v.breakers[0].st.name, "bad");
	CHECK_U64(v.breakers[0].ctr.failure, 1);
	CHECK(v.breakers[0].ctr.last_failure > 0);
	CHECK_STR(v.breakers[1].st.name, "ok");
	CHECK(v.breakers[1].ok && v.breakers[1].stored && v.breakers[1].configured);
	CHECK_U64(v.breakers[1].ctr.success, 3);
	CHECK_U64(v.breakers[1].ctr.ignored, 1);
	CHECK(v.breakers[1].ctr.last_success > 0);
	CHECK_STR(v.breakers[2].st.name, "postgres");
	CHECK(v.breakers[2].ok && !v.breakers[2].stored && v.breakers[2].configured);
	CHECK_INT(v.breakers[2].st.state, BREAKER_CLOSED);
	CHECK_U64(v.breakers[2].ctr.success, 0);
	stateview_release(&v);
	config_release(&c);
}

TEST(stateview_dedup_states_and_indexes)
{
	struct stateview v;
	struct keystore ks;
	struct error e;
	unsigned char d[DIGEST_BYTES];
	int i;

	CHECK(mkdir("dedup", 0700) == 0);
	CHECK_INT(keystore_open(&ks, "dedup/_stream.dataset", 0, 0, &e), 1);
	for (i = 0; i < 5; i++) {
		memset(d, i + 1, sizeof(d));
		CHECK_INT(keystore_add(&ks, d, NULL), 1);
	}
	CHECK_INT(keystore_save(&ks, &e), 0);
	keystore_close(&ks);
	/* four processes add to the counters, 25 runs each, under the lock */
	for (i = 0; i < 4; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			int r, fd = lock_open("dedup/._stream.dataset.lock");
			for (r = 0; r < 25; r++) {
				if (fd == -1 || lock_take(fd, LOCK_KIND_FCNTL, 1,
				    -1) == -1 || keystore_open(&ks,
				    "dedup/_stream.dataset", 0, 0, &e) != 0)
					_exit(1);
				ks.ctr.seen += 10;
				ks.ctr.unique += 6;
				ks.ctr.duplicates += 4;
				ks.ctr.near += 1;
				if (keystore_save(&ks, &e) == -1)
					_exit(2);
				keystore_close(&ks);
				lock_release(fd, LOCK_KIND_FCNTL);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		int status;
		CHECK(wait(&status) > 0 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0);
	}
	CHECK(atomic_replace("dedup/.x.lock", "", 0, 0600, &e) == 0);
	stateview_init(&v);
	CHECK(stateview_dedup(&v, &e) == 0);
	CHECK_U64(v.ndedup, 1);
	CHECK(v.dedup[0].ok && v.dedup[0].index);
	CHECK_STR(v.dedup[0].label, "dataset");
	CHECK_U64(v.dedup[0].keys, 5);
	CHECK(v.dedup[0].disk_bytes >= 4096);
	CHECK(v.dedup[0].have_counters);
	CHECK_U64(v.dedup[0].seen, 1000);
	CHECK_U64(v.dedup[0].unique, 600);
	CHECK_U64(v.dedup[0].duplicates, 400);
	CHECK_U64(v.dedup[0].near, 100);
	stateview_release(&v);
}

/* Everything rendered passes promtool check metrics. */
TEST(stateprom_renders_valid_prometheus_text)
{
	struct stateview v;
	struct metrics m = METRICS_INIT;
	struct consumer_state cs;
	struct stream s;
	struct error e;
	int rc;

	CHECK(stream_open(&s, "t", 1, &e) == 0);
	CHECK(append(&s, "{\"a\":1}\n") == 0);
	memset(&cs, 0, sizeof(cs));
	CHECK(consumer_save(s.dir, "c", &cs, &e) == 0);
	CHECK(mkdir("streams/never", 0700) == 0);
	CHECK_INT(call("b", 1), 0);
	stateview_init(&v);
	CHECK(stateview_streams(&v, NULL, 0, &e) == 0);
	CHECK(stateview_breakers(&v, NULL, NULL, 0, &e) == 0);
	CHECK(stateview_dedup(&v, &e) == 0);
	CHECK(stateprom_render(&v, &m) == 0);
	CHECK(atomic_replace("out.prom", m.text.data, m.text.len, 0644, &e) == 0);
	CHECK(strstr(m.text.data, "\naistack_stream_backlog_bytes{stream=\"t\"} 8\n")
	    != NULL);
	CHECK(strstr(m.text.data, "\naistack_ingest_records_total{stream=\"t\","
	    "result=\"appended\"} 1\n") != NULL);
	CHECK(strstr(m.text.data, "\naistack_ingest_paused{stream=\"never\"} 0\n")
	    != NULL);
	CHECK(strstr(m.text.data, "ingest_records_total{stream=\"never\"") == NULL);
	CHECK(strstr(m.text.data, "\naistack_breaker_calls_total{breaker=\"b\","
	    "result=\"success\"} 1\n") != NULL);
	CHECK(strstr(m.text.data, "\naistack_consumer_lag_bytes{stream=\"t\","
	    "consumer=\"c\"} 8\n") != NULL);
	rc = system("promtool check metrics < out.prom");
	CHECK_INT(rc, 0);
	metrics_release(&m);
	stateview_release(&v);
	stream_close(&s);
}

/* A damaged counters file hides nothing and is started afresh by the
 * next call. */
TEST(breaker_damaged_counters_start_afresh)
{
	struct breaker_counters c;
	struct error e;

	CHECK_INT(call("b", 1), 0);
	CHECK_INT(breaker_counters_read("b", &c), 0);
	CHECK_U64(c.success, 1);
	CHECK(atomic_replace("breakers/.b.counters", "junk", 4, 0644, &e) == 0);
	CHECK_INT(breaker_counters_read("b", &c), -1);
	CHECK_INT(call("b", 1), 0);
	CHECK_INT(call("b", 0), 0);
	CHECK_INT(breaker_counters_read("b", &c), 0);
	CHECK_U64(c.success, 1);
	CHECK_U64(c.failure, 1);
}
