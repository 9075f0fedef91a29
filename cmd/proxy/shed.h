/*
 * A connection's phases, when each one runs out, and which connection a
 * full table sheds: pure (no I/O, no state), so that tests/unit links it
 * (see README, "The tree").
 *
 * A connection waits for a request head (PHASE_HEAD) from its opening
 * until the head of its first request is in, and again from the request
 * line of each later request on it until that head is in; kept alive
 * between requests it is idle (PHASE_IDLE), from the end of an answer
 * until the next request line; in between it is busy (a request read,
 * its answer made or sent), and once refused, shed or timed out it is
 * closing (its end awaited).
 */
#ifndef AISTACK_PROXY_SHED_H
#define AISTACK_PROXY_SHED_H

#include <stddef.h>
#include <stdint.h>

enum conn_phase { PHASE_HEAD, PHASE_IDLE, PHASE_BUSY, PHASE_CLOSING };

struct conn_state {
	enum conn_phase phase;
	uint64_t since_us;	/* the phase began (clock_mono_us) */
};

/* When c's phase runs out (a clock_mono_us time): a head header_us after
 * it began, an idle connection idle_us after; 0: never. */
uint64_t shed_deadline(const struct conn_state *c, uint64_t header_us,
    uint64_t idle_us);

/*
 * The connection of c[0..n) that a full table sheds: of those waiting
 * for a request head, the one waiting longest; when none is, the one
 * idle longest; n when every one is busy or closing.  Ties: the first.
 */
size_t shed_choose(const struct conn_state *const *c, size_t n);

#endif
