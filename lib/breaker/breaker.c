#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/exitcode.h"
#include "base/fsutil.h"
#include "base/lock.h"
#include "base/metricnames.h"
#include "base/metrics.h"
#include "base/parse.h"
#include "format/jsonget.h"
#include "breaker.h"

#define STATE_MAX_BYTES	8192		/* a state file is about 400 */
#define BUSY_RETRY_MS	1000
#define DEF_FAILURES	5
#define DEF_SUCCESSES	2
#define DEF_HALF_OPEN	1
#define DEF_OPEN_FOR	30000
#define DEF_MAX_OPEN	300000
#define MAX_HALF_OPEN	1024

const char *
breaker_state_name(enum breaker_state s)
{
	switch (s) {
	case BREAKER_CLOSED:
		return "closed";
	case BREAKER_HALF_OPEN:
		return "half_open";
	case BREAKER_OPEN:
		return "open";
	}
	return "unknown";
}

static int
state_parse(const char *s, enum breaker_state *st)
{
	if (strcmp(s, "closed") == 0)
		*st = BREAKER_CLOSED;
	else if (strcmp(s, "half_open") == 0)
		*st = BREAKER_HALF_OPEN;
	else if (strcmp(s, "open") == 0)
		*st = BREAKER_OPEN;
	else
		return -1;
	return 0;
}

void
breaker_settings_init(struct breaker_settings *s)
{
	s->failures = DEF_FAILURES;
	s->successes = DEF_SUCCESSES;
	s->half_open = DEF_HALF_OPEN;
	s->open_for_ms = DEF_OPEN_FOR;
	s->max_open_for_ms = DEF_MAX_OPEN;
	s->timeout_ms = 0;
}

static int
load_section(struct breaker_settings *s, const struct config *c,
    const char *section, struct error *e)
{
	static const struct {
		const char *key;
		int duration;
		size_t off;
	} keys[] = {
		{ "failures", 0, offsetof(struct breaker_settings, failures) },
		{ "half_open", 0, offsetof(struct breaker_settings, half_open) },
		{ "max_open_for", 1,
		    offsetof(struct breaker_settings, max_open_for_ms) },
		{ "open_for", 1, offsetof(struct breaker_settings, open_for_ms) },
		{ "successes", 0, offsetof(struct breaker_settings, successes) },
		{ "timeout", 1, offsetof(struct breaker_settings, timeout_ms) },
	};
	char src[CONFIG_SOURCE_MAX];
	const char *v;
	uint64_t val;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if ((v = config_lookup(c, section, keys[i].key, src)) == NULL)
			continue;
		if ((keys[i].duration ? parse_duration_ms(v, &val) :
		    parse_u64(v, &val)) == -1 ||
		    (!keys[i].duration && val == 0) ||
		    (keys[i].duration && val == 0 &&
		    strcmp(keys[i].key, "timeout") != 0))
			return error_set(e, EXIT_CONFIG, "%s: %s: invalid %s "
			    "\"%s\"", src, keys[i].key, keys[i].duration ?
			    "duration" : "count", v);
		*(uint64_t *)(void *)((char *)s + keys[i].off) = val;
	}
	return 0;
}

int
breaker_settings_load(struct breaker_settings *s, const struct config *c,
    const char *name, struct error *e)
{
	char section[16 + NAME_MAX_LEN];

	if (load_section(s, c, "breaker", e) == -1)
		return -1;
	snprintf(section, sizeof(section), "breaker %s", name);
	return load_section(s, c, section, e);
}

int
breaker_settings_check(const struct breaker_settings *s, struct error *e)
{
	if (s->failures == 0 || s->successes == 0 || s->half_open == 0)
		return error_set(e, EXIT_USAGE, "failures, successes and "
		    "half-open must be at least 1");
	if (s->half_open > MAX_HALF_OPEN)
		return error_set(e, EXIT_USAGE, "half-open: at most %d trials",
		    MAX_HALF_OPEN);
	if (s->open_for_ms == 0)
		return error_set(e, EXIT_USAGE, "open-for must be positive");
	return 0;
}

int
breaker_boot_id_parse(const char *s, char id[BREAKER_BOOT_ID_SIZE])
{
	size_t len = strlen(s), i, k = 0;

	if (len != 32 && len != 36)
		return -1;
	for (i = 0; i < len; i++) {
		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
			if (s[i] != '-')
				return -1;
			continue;
		}
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
		if (k == 8 || k == 13 || k == 18 || k == 23)
			id[k++] = '-';
		id[k++] = s[i];
	}
	id[k] = '\0';
	return 0;
}

/*
 * The kernel's boot id.  A systemd unit with ProcSubset=pid has no
 * /proc/sys: there it comes from AISTACK_BOOT_ID, which aistack's units
 * set from the specifier %b (the same id, written without dashes), so
 * that breakers opened there and elsewhere name the same boot.
 */
static void
boot_id_read(char id[BREAKER_BOOT_ID_SIZE])
{
	char buf[BREAKER_BOOT_ID_SIZE];
	const char *env;
	ssize_t r;
	int fd;

	id[0] = '\0';
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd != -1) {
		r = read_full(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r < 0)
			r = 0;
		buf[r] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (breaker_boot_id_parse(buf, id) == 0)
			return;
	}
	if ((env = getenv("AISTACK_BOOT_ID")) == NULL ||
	    breaker_boot_id_parse(env, id) == -1)
		id[0] = '\0';
}

/* See breaker_cache_enable. */
struct breaker_cache {
	pthread_mutex_t mu;
	int fd;				/* the file d was read from, -1 none */
	struct stat st;			/* its identity when read */
	uint64_t checked_us;		/* when last found current, 0 never */
	struct breaker_data d;
	char boot_id[BREAKER_BOOT_ID_SIZE];	/* read once, at enable */
};

/* The clocks without the boot id. */
static void
clock_times(struct breaker_clock *now)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts) == -1)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	now->boot_ms = (uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000;
	now->wall = (int64_t)time(NULL);
}

void
breaker_clock_now(struct breaker_clock *now)
{
	clock_times(now);
	boot_id_read(now->boot_id);
}

static void
clock_read(const struct breaker *b, struct breaker_clock *now)
{
	if (b->clock != NULL)
		b->clock(now);
	else if (b->cache != NULL) {
		/* the boot id cannot change while the process runs: read
		 * once, by breaker_cache_enable */
		clock_times(now);
		memcpy(now->boot_id, b->cache->boot_id, sizeof(now->boot_id));
	} else
		breaker_clock_now(now);
}

static uint32_t
random32(void)
{
	uint32_t r;
	struct timespec ts;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() * 2654435761u;
	return r;
}

/* --- the state machine -------------------------------------------------- */

uint64_t
breaker_open_period(const struct breaker_settings *s, uint64_t streak,
    uint32_t rnd)
{
	uint64_t p = s->open_for_ms, max = s->max_open_for_ms, cut;

	if (streak == 0 || max <= p)
		return p;
	while (streak-- > 0 && p < max)
		p = p > max / 2 ? max : p * 2;
	if (p > max)
		p = max;
	/* jitter: somewhere in [0.8 p, p] */
	cut = (uint64_t)((unsigned __int128)(p / 5) * rnd >> 32);
	p -= cut;
	return p < s->open_for_ms ? s->open_for_ms : p;
}

uint64_t
breaker_sm_remaining(const struct breaker_data *d,
    const struct breaker_clock *now)
{
	uint64_t elapsed;

	if (d->state != BREAKER_OPEN)
		return 0;
	/* another boot: the period is over (see breaker.h) */
	if (d->boot_id[0] != '\0' && now->boot_id[0] != '\0' &&
	    strcmp(d->boot_id, now->boot_id) != 0)
		return 0;
	if (now->boot_ms < d->opened_at_ms)
		return 0;
	elapsed = now->boot_ms - d->opened_at_ms;
	return elapsed >= d->open_ms ? 0 : d->open_ms - elapsed;
}

static void
to_open(struct breaker_data *d, uint64_t period,
    const struct breaker_clock *now)
{
	d->state = BREAKER_OPEN;
	d->generation++;
	d->successes = 0;
	d->open_ms = period;
	d->opened_at_ms = now->boot_ms;
	snprintf(d->boot_id, sizeof(d->boot_id), "%s", now->boot_id);
	d->opened_at = now->wall;
	d->opened++;
}

static void
to_closed(struct breaker_data *d)
{
	if (d->state != BREAKER_CLOSED)
		d->closed++;
	d->state = BREAKER_CLOSED;
	d->generation++;
	d->failures = 0;
	d->successes = 0;
	d->streak = 0;
}

int
breaker_sm_acquire(struct breaker_data *d, const struct breaker_settings *s,
    const struct breaker_clock *now, enum breaker_state *decision,
    uint64_t *retry_in_ms)
{
	uint64_t left;

	(void)s;
	*retry_in_ms = 0;
	switch (d->state) {
	case BREAKER_CLOSED:
		*decision = BREAKER_CLOSED;
		return 0;
	case BREAKER_HALF_OPEN:
		*decision = BREAKER_HALF_OPEN;
		return 0;
	case BREAKER_OPEN:
		break;
	}
	if ((left = breaker_sm_remaining(d, now)) > 0) {
		*decision = BREAKER_OPEN;
		*retry_in_ms = left;
		return 0;
	}
	d->state = BREAKER_HALF_OPEN;
	d->generation++;
	d->successes = 0;
	d->half_opened++;
	*decision = BREAKER_HALF_OPEN;
	return 1;
}

int
breaker_sm_record(struct breaker_data *d, const struct breaker_settings *s,
    const struct breaker_clock *now, uint64_t gen, int success, uint32_t rnd)
{
	if (gen != d->generation)
		return 0;	/* allowed in a state that has since changed */
	switch (d->state) {
	case BREAKER_CLOSED:
		if (success) {
			if (d->failures == 0)
				return 0;
			d->failures = 0;
			return 1;
		}
		d->last_failure = now->wall;
		if (++d->failures >= s->failures)
			to_open(d, breaker_open_period(s, d->streak, rnd), now);
		return 1;
	case BREAKER_HALF_OPEN:
		if (success) {
			if (++d->successes >= s->successes)
				to_closed(d);
			return 1;
		}
		d->last_failure = now->wall;
		d->streak++;
		to_open(d, breaker_open_period(s, d->streak, rnd), now);
		return 1;
	case BREAKER_OPEN:
		break;
	}
	return 0;
}

int
breaker_sm_reset(struct breaker_data *d)
{
	to_closed(d);
	return 1;
}

int
breaker_sm_trip(struct breaker_data *d, const struct breaker_settings *s,
    const struct breaker_clock *now)
{
	to_open(d, s->open_for_ms, now);
	return 1;
}

/* --- the state file ----------------------------------------------------- */

static void
data_init(struct breaker_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = BREAKER_CLOSED;
}

static int
data_format(const struct breaker_data *d, struct buf *b)
{
	char opened[32] = "", failed[32] = "";
	int rc;

	if (d->opened_at != 0)
		(void)clock_rfc3339(opened, sizeof(opened), d->opened_at);
	if (d->last_failure != 0)
		(void)clock_rfc3339(failed, sizeof(failed), d->last_failure);
	rc = buf_printf(b, "{\"state\":\"%s\",\"generation\":%llu,"
	    "\"failures\":%llu,\"successes\":%llu,\"streak\":%llu,"
	    "\"open_ms\":%llu,\"opened_at_ms\":%llu,\"boot_id\":\"",
	    breaker_state_name(d->state), (unsigned long long)d->generation,
	    (unsigned long long)d->failures, (unsigned long long)d->successes,
	    (unsigned long long)d->streak, (unsigned long long)d->open_ms,
	    (unsigned long long)d->opened_at_ms);
	rc |= buf_json_escape(b, d->boot_id, strlen(d->boot_id));
	rc |= buf_printf(b, "\",\"opened_at\":");
	rc |= buf_printf(b, opened[0] ? "\"%s\"" : "null", opened);
	rc |= buf_printf(b, ",\"last_failure\":");
	rc |= buf_printf(b, failed[0] ? "\"%s\"" : "null", failed);
	rc |= buf_printf(b, ",\"opened\":%llu,\"half_opened\":%llu,"
	    "\"closed\":%llu}\n", (unsigned long long)d->opened,
	    (unsigned long long)d->half_opened, (unsigned long long)d->closed);
	return rc != 0 ? -1 : 0;
}

static int
get_time(json_t *o, const char *key, int64_t *t)
{
	json_t *j = json_object_get(o, key);

	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_string(j))
		return -1;
	return clock_rfc3339_parse(json_string_value(j), t);
}

static int
data_parse(const char *text, size_t len, struct breaker_data *d)
{
	json_error_t jerr;
	json_t *o, *j;
	int bad = 0;

	data_init(d);
	if ((o = json_loadb(text, len, 0, &jerr)) == NULL)
		return -1;
	if (!json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	j = json_object_get(o, "state");
	if (!json_is_string(j) || state_parse(json_string_value(j),
	    &d->state) == -1)
		bad = 1;
	bad |= jsonget_u64_opt(o, "generation", &d->generation);
	bad |= jsonget_u64_opt(o, "failures", &d->failures);
	bad |= jsonget_u64_opt(o, "successes", &d->successes);
	bad |= jsonget_u64_opt(o, "streak", &d->streak);
	bad |= jsonget_u64_opt(o, "open_ms", &d->open_ms);
	bad |= jsonget_u64_opt(o, "opened_at_ms", &d->opened_at_ms);
	bad |= jsonget_u64_opt(o, "opened", &d->opened);
	bad |= jsonget_u64_opt(o, "half_opened", &d->half_opened);
	bad |= jsonget_u64_opt(o, "closed", &d->closed);
	bad |= get_time(o, "opened_at", &d->opened_at);
	bad |= get_time(o, "last_failure", &d->last_failure);
	j = json_object_get(o, "boot_id");
	if (json_is_string(j))
		snprintf(d->boot_id, sizeof(d->boot_id), "%s",
		    json_string_value(j));
	json_decref(o);
	return bad ? -1 : 0;
}

static void
state_path(const struct breaker *b, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", b->dir, b->name);
}

/*
 * How long a cached state found current is trusted without another
 * fstat, for the decisions taken without the lock: a change made by
 * another process is seen at most this late, as if the call had come
 * that much earlier.  Under the lock, and after this process writes,
 * the file is always checked.
 */
#define CACHE_TRUST_US	1000


static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int
read_error(const char *path, struct error *e)
{
	return error_errno(e, error_code_for_errno(errno) == EXIT_IOERR ?
	    EXIT_IOERR : EXIT_NOINPUT, "%s", path);
}

static int
parse_error(const char *path, struct error *e)
{
	return error_set(e, EXIT_DATAERR, "%s: invalid breaker state", path);
}

/* Read the state file open at fd; 0, -1 with errno, or -2 unparsable. */
static int
data_read_fd(int fd, struct breaker_data *d)
{
	char text[STATE_MAX_BYTES + 1];
	ssize_t n;

	if ((n = read_full(fd, text, sizeof(text))) < 0)
		return -1;
	if ((size_t)n == sizeof(text)) {
		errno = EFBIG;
		return -1;
	}
	text[n] = '\0';
	return data_parse(text, (size_t)n, d) == -1 ? -2 : 0;
}

/*
 * data_read through the cache.  The state file is only ever replaced
 * whole (rename) and never removed by aistack, and the old file's link
 * count drops to 0 when it is replaced or removed: so while the held file
 * still has a link and its size and times are as read, it is the current
 * state, found with one fstat(2) and no path lookup.
 */
static int
data_read_cached(const struct breaker *b, const char *path,
    struct breaker_data *d, int trust, struct error *e)
{
	struct breaker_cache *c = b->cache;
	uint64_t now = clock_mono_us();
	struct stat st;
	int fd, rc;

	pthread_mutex_lock(&c->mu);
	if (c->fd != -1) {
		int current = trust && c->checked_us != 0 &&
		    now - c->checked_us < CACHE_TRUST_US;
		if (!current && fstat(c->fd, &st) == 0 && st.st_nlink > 0 &&
		    same_file(&st, &c->st)) {
			c->checked_us = now;
			current = 1;
		}
		if (current) {
			*d = c->d;
			pthread_mutex_unlock(&c->mu);
			return 0;
		}
	}
	pthread_mutex_unlock(&c->mu);

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			return read_error(path, e);
		data_init(d);
		return 1;
	}
	if (fstat(fd, &st) == -1 || (rc = data_read_fd(fd, d)) == -1) {
		read_error(path, e);
		close(fd);
		return -1;
	}
	if (rc == -2) {
		close(fd);
		return parse_error(path, e);
	}
	pthread_mutex_lock(&c->mu);
	if (c->fd != -1)
		close(c->fd);
	c->fd = fd;
	c->st = st;
	c->checked_us = now;
	c->d = *d;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/*
 * Read breakers/NAME into d; a missing file is a closed breaker (and
 * returns 1, else 0 or -1).  trust: a cached state checked in the last
 * CACHE_TRUST_US will do (for decisions taken without the lock).
 */
static int
data_read(const struct breaker *b, struct breaker_data *d, int trust,
    struct error *e)
{
	char path[PATH_MAX + NAME_MAX_LEN + 2];
	int fd, rc;

	state_path(b, path, sizeof(path));
	if (b->cache != NULL)
		return data_read_cached(b, path, d, trust, e);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			return read_error(path, e);
		data_init(d);
		return 1;
	}
	rc = data_read_fd(fd, d);
	if (rc == -1)
		read_error(path, e);
	close(fd);
	if (rc == -2)
		return parse_error(path, e);
	return rc;
}

static void
metrics_update(const struct breaker *b, const struct breaker_data *d)
{
	struct metrics m = METRICS_INIT;
	struct error ignored;
	static const enum breaker_state states[] = { BREAKER_CLOSED,
	    BREAKER_HALF_OPEN, BREAKER_OPEN };
	const uint64_t *counts[] = { &d->closed, &d->half_opened, &d->opened };
	int rc = 0;
	size_t i;

	rc |= metrics_family(&m, MN_BREAKER_STATE, "gauge", MH_BREAKER_STATE);
	rc |= metrics_sample(&m, MN_BREAKER_STATE, (double)d->state,
	    "breaker", b->name, NULL);
	rc |= metrics_family(&m, MN_BREAKER_FAILURES, "gauge",
	    MH_BREAKER_FAILURES);
	rc |= metrics_sample(&m, MN_BREAKER_FAILURES, (double)d->failures,
	    "breaker", b->name, NULL);
	rc |= metrics_family(&m, MN_BREAKER_TRANSITIONS, "counter",
	    MH_BREAKER_TRANSITIONS);
	for (i = 0; i < 3; i++)
		rc |= metrics_sample(&m, MN_BREAKER_TRANSITIONS,
		    (double)*counts[i], "breaker", b->name, "to",
		    breaker_state_name(states[i]), NULL);
	if (rc == 0)
		(void)metrics_write(&m, "breaker", b->name, &ignored);
	metrics_release(&m);
}

/* Replace breakers/NAME with d (under the lock), then the metrics file. */
static int
data_write(const struct breaker *b, const struct breaker_data *d,
    struct error *e)
{
	char path[PATH_MAX + NAME_MAX_LEN + 2];
	struct buf text = BUF_INIT;
	int rc;

	state_path(b, path, sizeof(path));
	if (data_format(d, &text) == -1) {
		buf_release(&text);
		return error_errno(e, EXIT_SOFTWARE, "%s", path);
	}
	rc = atomic_replace(path, text.data, text.len, 0644, e);
	buf_release(&text);
	if (b->cache != NULL) {
		/* the held file is the old one now: check before trusting */
		pthread_mutex_lock(&b->cache->mu);
		b->cache->checked_us = 0;
		pthread_mutex_unlock(&b->cache->mu);
	}
	if (rc == 0)
		metrics_update(b, d);
	return rc;
}

/* --- the call counters ---------------------------------------------------- */

/*
 * breakers/.NAME.counters: CTR_WORDS 64-bit words in the machine's byte
 * order, mapped shared by every process that counts, and incremented
 * with atomic operations: counting a call costs no system call once
 * mapped, and no write of the state file.  Word 0 is the magic; the
 * others are indexed by enum ctr_word.  The file is created whole
 * (counters_file_map), so it is never seen short.  Like
 * the page cache it lives in, it survives any process's death; a machine
 * crash may take back what was counted since the kernel last wrote it.
 */
#define CTR_MAGIC	0x3143524254534941ULL	/* "AISTBRC1" */
#define CTR_WORDS	16
#define CTR_BYTES	(CTR_WORDS * 8)

enum ctr_word {
	CTR_SUCCESS = 1, CTR_FAILURE, CTR_IGNORED, CTR_REFUSED,
	CTR_LAST_SUCCESS, CTR_LAST_FAILURE
};

static void
counters_path(const struct breaker *b, char *buf, size_t n)
{
	snprintf(buf, n, "%s/.%s.counters", b->dir, b->name);
}

/*
 * The breaker's counters, mapped on first use (creating the file) and
 * kept until breaker_fini; NULL when they cannot be, and then calls are
 * simply not counted.  Threads may race here: one mapping wins.
 */
static uint64_t *
counters_get(const struct breaker *b)
{
	struct breaker *mb = (struct breaker *)(uintptr_t)b;
	char path[PATH_MAX + NAME_MAX_LEN + 16];
	uint64_t *p, *expected = NULL;

	if ((p = __atomic_load_n(&mb->counters, __ATOMIC_ACQUIRE)) != NULL)
		return p;
	counters_path(b, path, sizeof(path));
	/* missing: created; damaged: started afresh, which Prometheus reads
	 * as a counter reset */
	if ((p = counters_file_map(path, CTR_BYTES, CTR_MAGIC, 1, 1,
	    NULL)) == NULL)
		return NULL;
	if (!__atomic_compare_exchange_n(&mb->counters, &expected, p, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		munmap(p, CTR_BYTES);
		return expected;
	}
	return p;
}

static void
count_call(uint64_t *ctr, enum ctr_word w)
{
	if (ctr == NULL)
		return;
	__atomic_fetch_add(&ctr[w], 1, __ATOMIC_RELAXED);
	if (w == CTR_SUCCESS || w == CTR_FAILURE)
		__atomic_store_n(&ctr[w == CTR_SUCCESS ? CTR_LAST_SUCCESS :
		    CTR_LAST_FAILURE], (uint64_t)time(NULL), __ATOMIC_RELAXED);
}

int
breaker_counters_read(const char *name, struct breaker_counters *c)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX_LEN + 16];
	struct error ignored;
	uint64_t *p;

	memset(c, 0, sizeof(*c));
	if (!name_valid(name) ||
	    statedir_sub(dir, sizeof(dir), "breakers", &ignored) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/.%s.counters", dir, name);
	if ((p = counters_file_map(path, CTR_BYTES, CTR_MAGIC, 0, 0,
	    NULL)) == NULL)
		return errno == ENOENT ? 1 : -1;
	c->success = __atomic_load_n(&p[CTR_SUCCESS], __ATOMIC_RELAXED);
	c->failure = __atomic_load_n(&p[CTR_FAILURE], __ATOMIC_RELAXED);
	c->ignored = __atomic_load_n(&p[CTR_IGNORED], __ATOMIC_RELAXED);
	c->refused = __atomic_load_n(&p[CTR_REFUSED], __ATOMIC_RELAXED);
	c->last_success = (int64_t)__atomic_load_n(&p[CTR_LAST_SUCCESS],
	    __ATOMIC_RELAXED);
	c->last_failure = (int64_t)__atomic_load_n(&p[CTR_LAST_FAILURE],
	    __ATOMIC_RELAXED);
	munmap(p, CTR_BYTES);
	return 0;
}

/* Take the breaker's lock; returns the descriptor to close, or -1. */
static int
lock_breaker(const struct breaker *b, struct error *e)
{
	char path[PATH_MAX + NAME_MAX_LEN + 16];
	int fd;

	snprintf(path, sizeof(path), "%s/.%s.lock", b->dir, b->name);
	if ((fd = lock_open(path)) == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", path);
	if (lock_take(fd, LOCK_KIND_FCNTL, 1, -1) == -1) {
		error_errno(e, EXIT_IOERR, "%s: lock", path);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Take a free trial slot: an OFD lock on one of .NAME.trial.0..N-1, tried
 * without waiting.  Returns the descriptor holding it, -2 when every slot
 * is busy, -1 on error.
 */
static int
slot_take(const struct breaker *b, struct error *e)
{
	char path[PATH_MAX + NAME_MAX_LEN + 40];
	uint64_t k;
	int fd;

	for (k = 0; k < b->set.half_open; k++) {
		snprintf(path, sizeof(path), "%s/.%s.trial.%llu", b->dir,
		    b->name, (unsigned long long)k);
		if ((fd = lock_open(path)) == -1)
			return error_errno(e, error_code_for_errno(errno), "%s",
			    path);
		if (lock_take(fd, LOCK_KIND_FCNTL, 1, 0) == 0)
			return fd;
		if (errno != EWOULDBLOCK) {
			error_errno(e, EXIT_IOERR, "%s: lock", path);
			close(fd);
			return -1;
		}
		close(fd);
	}
	return -2;
}

int
breaker_init(struct breaker *b, const char *name,
    const struct breaker_settings *s, struct error *e)
{
	memset(b, 0, sizeof(*b));
	if (!name_valid(name))
		return error_set(e, EXIT_USAGE, "%s: invalid breaker name "
		    "(expected [a-z0-9][a-z0-9._-]{0,63})", name);
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (s != NULL)
		b->set = *s;
	else
		breaker_settings_init(&b->set);
	return statedir_sub(b->dir, sizeof(b->dir), "breakers", e);
}

int
breaker_cache_enable(struct breaker *b, struct error *e)
{
	char path[PATH_MAX + NAME_MAX_LEN + 2];
	struct breaker_cache *c;
	struct breaker_data d;
	struct error ignored;
	int lfd;

	if (b->cache != NULL)
		return 0;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "breaker %s", b->name);
	pthread_mutex_init(&c->mu, NULL);
	c->fd = -1;
	boot_id_read(c->boot_id);
	b->cache = c;
	state_path(b, path, sizeof(path));
	/*
	 * A breaker that never failed has no file, and a missing file
	 * cannot be held: write its (closed) state now, so that the cache
	 * has a file to hold.  When that fails (a read-only state
	 * directory) every call looks the file up, which is only slower.
	 */
	if (access(path, F_OK) == -1 && errno == ENOENT &&
	    (lfd = lock_breaker(b, &ignored)) != -1) {
		if (access(path, F_OK) == -1 && errno == ENOENT) {
			data_init(&d);
			(void)data_write(b, &d, &ignored);
		}
		close(lfd);
	}
	return 0;
}

void
breaker_fini(struct breaker *b)
{
	struct breaker_cache *c = b->cache;

	if (b->counters != NULL)
		munmap(b->counters, CTR_BYTES);
	b->counters = NULL;
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	pthread_mutex_destroy(&c->mu);
	free(c);
	b->cache = NULL;
}

static void
ticket_init(struct breaker_ticket *t)
{
	memset(t, 0, sizeof(*t));
	t->slot_fd = -1;
}

/* Decide on d; for a trial take a slot.  1 allowed, 0 refused, -1 error. */
static int
decide(const struct breaker *b, enum breaker_state decision,
    const struct breaker_data *d, struct breaker_ticket *t,
    uint64_t *retry_in_ms, struct error *e)
{
	int fd;

	switch (decision) {
	case BREAKER_CLOSED:
		t->state = BREAKER_CLOSED;
		t->generation = d->generation;
		t->counters = counters_get(b);
		return 1;
	case BREAKER_HALF_OPEN:
		if ((fd = slot_take(b, e)) == -1)
			return -1;
		if (fd == -2) {
			*retry_in_ms = BUSY_RETRY_MS;
			return 0;
		}
		t->state = BREAKER_HALF_OPEN;
		t->generation = d->generation;
		t->slot_fd = fd;
		t->counters = counters_get(b);
		return 1;
	case BREAKER_OPEN:
		break;
	}
	return 0;
}

int
breaker_acquire(const struct breaker *b, struct breaker_ticket *t,
    uint64_t *retry_in_ms, struct error *e)
{
	struct breaker_clock now;
	struct breaker_data d;
	enum breaker_state decision = BREAKER_OPEN;
	int lfd, rc;

	ticket_init(t);
	*retry_in_ms = 0;
	clock_read(b, &now);
	if ((rc = data_read(b, &d, 1, e)) == -1)
		return -1;
	/* the fast path: no change, no lock (the file is replaced whole) */
	if (rc == 0 && breaker_sm_acquire(&d, &b->set, &now, &decision,
	    retry_in_ms) == 0 && decision != BREAKER_HALF_OPEN)
		goto decided;

	/* a change, or the first use: the closed state is written once,
	 * so that the breaker is seen from its first call */
	if ((lfd = lock_breaker(b, e)) == -1)
		return -1;
	clock_read(b, &now);
	rc = data_read(b, &d, 0, e);
	if (rc >= 0 && (breaker_sm_acquire(&d, &b->set, &now, &decision,
	    retry_in_ms) == 1 || rc == 1))
		rc = data_write(b, &d, e);
	close(lfd);
	if (rc == -1)
		return -1;
decided:
	if ((rc = decide(b, decision, &d, t, retry_in_ms, e)) == -1)
		return -1;
	if (rc == 0)
		count_call(counters_get(b), CTR_REFUSED);
	return rc == 1 ? BREAKER_ALLOWED : BREAKER_REFUSED;
}

void
breaker_cancel(struct breaker_ticket *t)
{
	if (t == NULL)
		return;
	if (t->counters != NULL)	/* allowed, and no outcome recorded */
		count_call(t->counters, CTR_IGNORED);
	t->counters = NULL;
	if (t->slot_fd >= 0)
		close(t->slot_fd);
	t->slot_fd = -1;
}

int
breaker_record(const struct breaker *b, struct breaker_ticket *t, int success,
    struct error *e)
{
	struct breaker_clock now;
	struct breaker_data d, probe;
	int lfd, rc;

	t->transition = 0;
	/* the call was made and ended so, whatever the state does with it */
	count_call(t->counters, success ? CTR_SUCCESS : CTR_FAILURE);
	t->counters = NULL;
	clock_read(b, &now);
	if (data_read(b, &d, 1, e) == -1)
		goto fail;
	t->after = d.state;
	/* nothing to change: answer without the lock */
	probe = d;
	if (breaker_sm_record(&probe, &b->set, &now, t->generation, success,
	    0) == 0)
		goto done;

	if ((lfd = lock_breaker(b, e)) == -1)
		goto fail;
	clock_read(b, &now);
	rc = data_read(b, &d, 0, e);
	if (rc >= 0) {
		enum breaker_state before = d.state;
		rc = 0;
		if (breaker_sm_record(&d, &b->set, &now, t->generation,
		    success, random32()) == 1)
			rc = data_write(b, &d, e);
		t->after = d.state;
		t->transition = rc == 0 && d.state != before;
	}
	close(lfd);
	if (rc == -1)
		goto fail;
done:
	breaker_cancel(t);
	return 0;
fail:
	breaker_cancel(t);
	return -1;
}

static int
manual(const struct breaker *b, int trip, struct error *e)
{
	struct breaker_clock now;
	struct breaker_data d;
	int lfd, rc;

	if ((lfd = lock_breaker(b, e)) == -1)
		return -1;
	clock_read(b, &now);
	/* a damaged file is what reset is for: start afresh */
	if ((rc = data_read(b, &d, 0, e)) == -1 && e->code == EXIT_DATAERR) {
		data_init(&d);
		rc = 0;
	}
	if (rc >= 0) {
		if (trip)
			breaker_sm_trip(&d, &b->set, &now);
		else
			breaker_sm_reset(&d);
		rc = data_write(b, &d, e);
	}
	close(lfd);
	return rc;
}

int
breaker_reset(const struct breaker *b, struct error *e)
{
	return manual(b, 0, e);
}

int
breaker_trip(const struct breaker *b, struct error *e)
{
	return manual(b, 1, e);
}

int
breaker_status_get(const struct breaker *b, struct breaker_status *st,
    struct error *e)
{
	struct breaker_clock now;

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", b->name);
	if (data_read(b, &st->data, 0, e) == -1)
		return -1;
	clock_read(b, &now);
	st->state = st->data.state;
	if (st->state == BREAKER_OPEN) {
		st->retry_in_ms = breaker_sm_remaining(&st->data, &now);
		if (st->retry_in_ms == 0)
			st->state = BREAKER_HALF_OPEN;
	}
	return 0;
}

int
breaker_status_read(const char *name, struct breaker_status *st,
    struct error *e)
{
	struct breaker b;

	if (breaker_init(&b, name, NULL, e) == -1)
		return -1;
	return breaker_status_get(&b, st, e);
}

int
breaker_configured(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; c != NULL && i < c->n; i++)
		if (strncmp(c->entries[i].section, "breaker ", 8) == 0 &&
		    strcmp(c->entries[i].section + 8, name) == 0)
			return 1;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
breaker_list_all(const struct config *c, char ***names, size_t *n,
    struct error *e)
{
	char **v, **nv;
	size_t i, j, m;

	if (breaker_list(names, n, e) == -1)
		return -1;
	v = *names;
	m = *n;
	for (i = 0; c != NULL && i < c->n; i++) {
		const char *sec = c->entries[i].section;
		if (strncmp(sec, "breaker ", 8) != 0 || !name_valid(sec + 8))
			continue;
		for (j = 0; j < m && strcmp(v[j], sec + 8) != 0; j++)
			;
		if (j < m)
			continue;
		if ((nv = realloc(v, (m + 1) * sizeof(*v))) == NULL ||
		    (nv[m] = strdup(sec + 8)) == NULL) {
			if (nv != NULL)
				v = nv;
			names_free(v, m);
			*names = NULL;
			*n = 0;
			return error_errno(e, EXIT_SOFTWARE, "breakers");
		}
		v = nv;
		m++;
	}
	if (m > 1)
		qsort(v, m, sizeof(*v), name_cmp);
	*names = v;
	*n = m;
	return 0;
}

int
breaker_list(char ***names, size_t *n, struct error *e)
{
	char dir[PATH_MAX];

	*names = NULL;
	*n = 0;
	if (statedir_sub(dir, sizeof(dir), "breakers", e) == -1)
		return -1;
	return names_list(dir, NAMES_FILES, names, n, e);
}
