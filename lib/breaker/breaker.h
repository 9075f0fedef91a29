/*
 * Circuit breakers shared by every process of the machine and by every
 * thread of a process.  Breaker NAME lives in statedir/breakers/NAME, a
 * one-line JSON object replaced atomically (temporary file, fsync,
 * rename) under an exclusive OFD lock on statedir/breakers/.NAME.lock.
 * A missing file is a closed breaker with no history.
 *
 * States: CLOSED lets every call through; settings.failures consecutive
 * failures open it.  OPEN refuses every call for the open period.  When
 * the period is over the next call turns it HALF_OPEN and becomes a
 * trial: at most settings.half_open trials run at once across all
 * processes (others are refused as if open), settings.successes
 * successful trials close it, a failed trial opens it again.
 *
 * Open period: the first is settings.open_for_ms.  Each reopening from
 * HALF_OPEN without closing in between doubles it, up to
 * settings.max_open_for_ms, and draws it at random from the upper fifth
 * of that value ([0.8 p, p]) so that breakers of many machines do not
 * probe in step; it is never shorter than open_for_ms nor longer than
 * max_open_for_ms (when max <= open_for it never grows).
 *
 * Trial slots are OFD locks on statedir/breakers/.NAME.trial.K (K <
 * half_open), held by the ticket: the kernel releases the slot of a
 * holder that dies, however it dies, so a slot is never leaked.
 *
 * Clock: the open period is measured on CLOCK_BOOTTIME (monotonic, counts
 * suspend), stored with the kernel's boot id
 * (/proc/sys/kernel/random/boot_id, else $AISTACK_BOOT_ID, which the
 * systemd units, whose ProcSubset=pid hides /proc/sys, set from %b).
 * Wall-clock jumps therefore neither
 * keep a breaker open nor close it early.  After a reboot (another boot
 * id, or a boot time earlier than the opening) an open breaker's period
 * counts as over: the next call is a half-open trial.  Wall time is only
 * recorded for display (last_failure, opened_at).
 *
 * Outcomes count only for the state they were allowed in: every state
 * change bumps a generation number, and breaker_record ignores a ticket
 * of an older generation (a call that began before the breaker opened,
 * or before a reset, changes nothing).
 *
 * The usual call sequence (aistack-breaker run, aistack-proxy upstream):
 *
 *	struct breaker b;		set up once: breaker_init()
 *	struct breaker_ticket t;
 *	uint64_t retry_ms;
 *
 *	switch (breaker_acquire(&b, &t, &retry_ms, &e)) {
 *	case BREAKER_REFUSED:		fail fast; retry in retry_ms
 *	case BREAKER_ALLOWED:		ok = call();
 *		breaker_record(&b, &t, ok, &e);	   (or breaker_cancel(&t))
 *	case -1:			e says why (state file unreadable...)
 *	}
 *
 * Every allowed ticket ends in exactly one breaker_record or
 * breaker_cancel, which release its trial slot.
 *
 * Threads: a struct breaker is read-only after breaker_init (its cache,
 * when enabled, has its own mutex; its counters pointer is set once,
 * atomically) and may be shared by any number of threads; each operation
 * opens its own descriptors.  Tickets belong to one thread at a time.  No
 * function prints, exits or keeps global state.
 *
 * First use: the first call of a breaker that has no state file writes
 * its closed state (once, under the lock), so that a breaker that has
 * only ever succeeded is seen by status, /health and /metrics.
 *
 * Counters: every call is counted in statedir/breakers/.NAME.counters
 * (see breaker_counters_read) by its result: success, failure, ignored
 * (breaker_cancel: it says nothing of the dependency) or refused, with
 * atomic increments of a shared mapping, so that counting writes no file.
 * A call is counted when its outcome is known (a holder killed during
 * its call is never counted); transitions are counted in the state file.
 *
 * Metrics: whenever the state file changes, statedir/metrics/breaker-NAME.prom
 * is rewritten (aistack_breaker_state, aistack_breaker_failures,
 * aistack_breaker_transitions_total{to=...}: what the state file says;
 * the live state and the call counters are read through lib/state/stateview.h);
 * a failure to write it is ignored.
 */
#ifndef AISTACK_BREAKER_H
#define AISTACK_BREAKER_H

#include <limits.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/statedir.h"

/* The values are those of the metric aistack_breaker_state. */
enum breaker_state {
	BREAKER_CLOSED = 0,
	BREAKER_HALF_OPEN = 1,
	BREAKER_OPEN = 2
};

/* breaker_acquire's answers (-1 is an error). */
enum {
	BREAKER_ALLOWED = 0,
	BREAKER_REFUSED = 1
};

struct breaker_settings {
	uint64_t failures;		/* consecutive failures that open (5) */
	uint64_t successes;		/* half-open successes that close (2) */
	uint64_t half_open;		/* trials at once, all processes (1) */
	uint64_t open_for_ms;		/* first open period (30 s) */
	uint64_t max_open_for_ms;	/* cap of the growing period (5 min) */
	uint64_t timeout_ms;		/* for callers that run the call: 0 none */
};

/* A reading of the clocks (breaker_clock_now, or injected by tests). */
struct breaker_clock {
	uint64_t boot_ms;		/* CLOCK_BOOTTIME, milliseconds */
	int64_t wall;			/* CLOCK_REALTIME, Unix seconds */
	char boot_id[40];		/* "" when unknown */
};

/* The content of breakers/NAME. */
struct breaker_data {
	enum breaker_state state;	/* as stored (see breaker_status) */
	uint64_t generation;		/* bumped by every state change */
	uint64_t failures;		/* consecutive failures while closed */
	uint64_t successes;		/* successful trials while half-open */
	uint64_t streak;		/* reopenings since it last closed */
	uint64_t open_ms;		/* length of the current open period */
	uint64_t opened_at_ms;		/* CLOCK_BOOTTIME when it opened */
	char boot_id[40];		/* the boot opened_at_ms belongs to */
	int64_t opened_at;		/* wall time it opened, 0 never */
	int64_t last_failure;		/* wall time of the last failure, 0 never */
	uint64_t opened;		/* transitions to open, ever */
	uint64_t half_opened;		/* transitions to half-open, ever */
	uint64_t closed;		/* transitions to closed, ever */
};

/* A breaker handle; fill with breaker_init, release with breaker_fini. */
struct breaker {
	char name[NAME_MAX_LEN + 1];
	char dir[PATH_MAX];		/* statedir/breakers */
	struct breaker_settings set;
	/* The clock; NULL is breaker_clock_now.  Tests inject their own. */
	void (*clock)(struct breaker_clock *now);
	/* NULL, or what breaker_cache_enable set up (lib/breaker/breaker.c). */
	struct breaker_cache *cache;
	/* The call counters, mapped at the first call (set once, atomically);
	 * unmapped by breaker_fini. */
	uint64_t *counters;
};

/* What breakers/.NAME.counters holds. */
struct breaker_counters {
	uint64_t success;		/* calls that succeeded */
	uint64_t failure;		/* calls that failed (or timed out) */
	uint64_t ignored;		/* calls whose outcome said nothing */
	uint64_t refused;		/* calls refused while open */
	int64_t last_success;		/* Unix time of the last success, 0 never */
	int64_t last_failure;		/* of the last failure, 0 never */
};

/* One allowed call. */
struct breaker_ticket {
	uint64_t generation;		/* the state it was allowed in */
	enum breaker_state state;	/* CLOSED, or HALF_OPEN for a trial */
	int slot_fd;			/* the held trial slot, -1 none */
	uint64_t *counters;		/* the breaker's, until the outcome */
	/* Filled by breaker_record: the state after it and whether the
	 * outcome changed the state (for messages such as -v). */
	enum breaker_state after;
	int transition;
};

/* What "status" shows. */
struct breaker_status {
	char name[NAME_MAX_LEN + 1];
	enum breaker_state state;	/* effective: open past its period is half-open */
	uint64_t retry_in_ms;		/* time left when open, else 0 */
	struct breaker_data data;	/* the stored state */
};

/* "closed", "half_open" or "open". */
const char *breaker_state_name(enum breaker_state s);

/* The built-in defaults (see struct breaker_settings). */
void breaker_settings_init(struct breaker_settings *s);

/*
 * Apply the configuration to s: the section [breaker] for every breaker,
 * then [breaker NAME], each key with its environment override
 * (AISTACK_BREAKER_FAILURES, AISTACK_BREAKER_<NAME>_FAILURES).  Keys:
 * failures, successes, half_open, open_for, max_open_for, timeout.  A bad
 * value fails with EXIT_CONFIG naming its source.  c may be NULL.
 */
int breaker_settings_load(struct breaker_settings *s, const struct config *c,
    const char *name, struct error *e);

/* Check the settings (every count at least 1, open_for at least 1 ms). */
int breaker_settings_check(const struct breaker_settings *s, struct error *e);

/*
 * Set up b for breaker name (a NAME, see name_valid) with settings s
 * (copied), creating statedir/breakers if missing.  EXIT_USAGE for a bad
 * name.
 */
int breaker_init(struct breaker *b, const char *name,
    const struct breaker_settings *s, struct error *e);

/*
 * For long-lived processes that call through a breaker many times (the
 * proxy): keep the state file last read open and its parsed content in
 * memory, so that a call costs at most one fstat(2) of the held file
 * instead of looking up, reading and parsing it.  The file is only ever
 * replaced whole (rename), which leaves the held one without a link: a
 * held file that still has a link, with the size and times it was read
 * with, is the current state.  Decisions taken without the lock trust a
 * state checked in the last millisecond without checking again, so a
 * change made by another process is seen up to 1 ms late; under the
 * lock, and after this process writes, the file is always checked.  A
 * breaker without a file gets one (its closed state) so that there is a
 * file to hold.  The boot id is read once, here (it cannot change while
 * the process runs), and the handle's clock (when it has none of its
 * own) reads only the clocks.  The handle may then be used by several
 * threads at once.
 * Without it, every call reads the file (one-shot commands).
 */
int breaker_cache_enable(struct breaker *b, struct error *e);

/* Release what breaker_cache_enable holds; the handle may be inited
 * again.  Accepts a handle without a cache. */
void breaker_fini(struct breaker *b);

/*
 * Ask to make a call.  Returns BREAKER_ALLOWED with *t filled (a trial
 * when t->state is BREAKER_HALF_OPEN), BREAKER_REFUSED with *retry_in_ms
 * the time until it may be tried again (at least 1000 when all trial
 * slots are busy), or -1.  Closed and open breakers are answered from one
 * read of the state file without taking the lock; a state change takes
 * the lock and re-reads.
 */
int breaker_acquire(const struct breaker *b, struct breaker_ticket *t,
    uint64_t *retry_in_ms, struct error *e);

/*
 * Record the outcome of an allowed call (success nonzero for a success)
 * and release the ticket, even when it fails.  Changes are made under the
 * lock; an outcome that changes nothing (a success while closed with no
 * failures, a stale ticket) does not write.
 */
int breaker_record(const struct breaker *b, struct breaker_ticket *t,
    int success, struct error *e);

/* Release a ticket without recording anything (an outcome that says
 * nothing about the dependency).  Accepts a released ticket and any ticket
 * that breaker_acquire filled, whatever it answered. */
void breaker_cancel(struct breaker_ticket *t);

/* Close the breaker, clearing its counts (reset), or open it now for
 * b->set.open_for_ms (trip).  Either bumps the generation. */
int breaker_reset(const struct breaker *b, struct error *e);
int breaker_trip(const struct breaker *b, struct error *e);

/* Read breaker name's status (closed and empty when it has no file). */
int breaker_status_read(const char *name, struct breaker_status *st,
    struct error *e);

/* The same through a handle (its clock). */
int breaker_status_get(const struct breaker *b, struct breaker_status *st,
    struct error *e);

/*
 * The names of every breaker in the state directory, sorted.  The caller
 * frees them with names_free (statedir.h); *n is the count.
 */
int breaker_list(char ***names, size_t *n, struct error *e);

/*
 * The names of every breaker in the state directory and of every
 * "[breaker NAME]" section of c (c may be NULL), sorted, each once: a
 * configured breaker is listed before its first call.  The caller frees
 * them with names_free.
 */
int breaker_list_all(const struct config *c, char ***names, size_t *n,
    struct error *e);

/* Whether c has a "[breaker NAME]" section. */
int breaker_configured(const struct config *c, const char *name);

/* Read breaker name's call counters: 0, 1 when it has none yet (never
 * called: c zeroed), -1 when they cannot be read (a damaged file, which
 * the next call replaces with a fresh one). */
int breaker_counters_read(const char *name, struct breaker_counters *c);

/* Read the real clocks. */
void breaker_clock_now(struct breaker_clock *now);

/*
 * A boot id as /proc/sys/kernel/random/boot_id writes it (36 characters,
 * lower-case hex and dashes) from that form or from systemd's (%b: the 32
 * hex digits alone) into id; -1 when s is neither.
 */
#define BREAKER_BOOT_ID_SIZE 40	/* the boot_id fields' size */
int breaker_boot_id_parse(const char *s, char id[BREAKER_BOOT_ID_SIZE]);

/*
 * The state machine itself, without files, locks or clocks of its own;
 * breaker_acquire and breaker_record are these under the lock.  Exposed
 * for tests and for callers that keep a breaker in memory.
 *
 * breaker_sm_acquire: *decision becomes BREAKER_CLOSED (call allowed),
 * BREAKER_HALF_OPEN (allowed as a trial if a slot is free) or
 * BREAKER_OPEN (refused, *retry_in_ms set).  breaker_sm_record applies
 * an outcome of a call allowed at generation gen; rnd (uniform 32 bits)
 * draws the jitter of a grown open period.  breaker_sm_reset and
 * breaker_sm_trip are the manual changes.  Each returns 1 when d changed
 * (and must be written), else 0.
 */
int breaker_sm_acquire(struct breaker_data *d,
    const struct breaker_settings *s, const struct breaker_clock *now,
    enum breaker_state *decision, uint64_t *retry_in_ms);
int breaker_sm_record(struct breaker_data *d,
    const struct breaker_settings *s, const struct breaker_clock *now,
    uint64_t gen, int success, uint32_t rnd);
int breaker_sm_reset(struct breaker_data *d);
int breaker_sm_trip(struct breaker_data *d, const struct breaker_settings *s,
    const struct breaker_clock *now);

/* Time left in d's open period at now (0 when over or not open). */
uint64_t breaker_sm_remaining(const struct breaker_data *d,
    const struct breaker_clock *now);

/* The open period after streak reopenings (streak 0: open_for). */
uint64_t breaker_open_period(const struct breaker_settings *s,
    uint64_t streak, uint32_t rnd);

#endif
