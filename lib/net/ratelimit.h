/*
 * Rate limiting per client address: a token bucket of burst tokens that
 * refills at rate tokens a minute, kept as GCRA (one "theoretical arrival
 * time" per client: the bucket is full when it is not after now).
 *
 * Clients are keyed by address: an IPv4 address (also when it comes
 * IPv4-mapped in IPv6), an IPv6 address cut to its first prefix6 bits
 * (64 by default: one host's /64 is one client).  Loopback is a client
 * like any other.
 *
 * The table is bounded: at most max_clients buckets, allocated once (the
 * kernel backs pages only as they are touched), in a hash table keyed by
 * SipHash with a random key (no hash flooding), ordered by last use.  A
 * new client when the table is full evicts the least recently used
 * bucket.  A bucket that has refilled (idle) is equivalent to a new one,
 * so its eviction loses nothing.  A bucket evicted before it has refilled
 * leaves its arrival time in a "shadow": two arrays of arrival times
 * indexed by two independent hashes of the key, each slot keeping the
 * latest time written to it.  A client that is not in the table starts
 * from the earlier of its two shadow slots (or full when that is past).
 * Both slots are at least its own evicted time, so an evicted client
 * never gets tokens sooner than its own bucket would have refilled.  The
 * price is paid by innocent clients that share both slots with a
 * throttled one: they start with that client's bucket (no fuller than it
 * was), never longer than burst / rate.
 *
 * Thread-safe: one mutex per table.  No function prints or exits.
 */
#ifndef AISTACK_RATELIMIT_H
#define AISTACK_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_KEY_LEN 16

struct ratelimit_settings {
	double per_min;		/* tokens a minute (60) */
	uint64_t burst;		/* bucket size (per_min rounded up) */
	size_t max_clients;	/* buckets kept (65536) */
	unsigned prefix6;	/* IPv6 prefix length that is one client (64) */
};

struct ratelimit_verdict {
	int allowed;
	uint64_t remaining;	/* whole tokens left after this request */
	uint64_t retry_after_s;	/* refused: seconds until allowed (>= 1) */
	uint64_t reset_s;	/* seconds until the bucket is full again */
};

struct ratelimit_stats {
	size_t clients;		/* buckets in the table */
	size_t max_clients;
	size_t memory;		/* bytes allocated for the table */
	uint64_t evicted;	/* buckets evicted so far */
	uint64_t evicted_unrefilled;	/* of which not yet refilled (to shadow) */
	uint64_t allowed, refused;
};

struct ratelimit;

/* Fill s with the defaults. */
void ratelimit_settings_init(struct ratelimit_settings *s);

/* A new table (NULL with errno: EINVAL for bad settings, ENOMEM).  The
 * caller frees it with ratelimit_free. */
struct ratelimit *ratelimit_new(const struct ratelimit_settings *s);
void ratelimit_free(struct ratelimit *rl);

/* The client key of a socket address (unknown families share one key). */
void ratelimit_key(const struct sockaddr *sa, unsigned prefix6,
    unsigned char key[RATELIMIT_KEY_LEN]);

/* Take a token for the client with key at now_us (any monotonic clock
 * in microseconds); fills *v. */
void ratelimit_take(struct ratelimit *rl,
    const unsigned char key[RATELIMIT_KEY_LEN], uint64_t now_us,
    struct ratelimit_verdict *v);

/* The same for a socket address. */
void ratelimit_take_addr(struct ratelimit *rl, const struct sockaddr *sa,
    uint64_t now_us, struct ratelimit_verdict *v);

void ratelimit_stats(struct ratelimit *rl, struct ratelimit_stats *st);

/* The settings in use (the burst filled in). */
const struct ratelimit_settings *ratelimit_settings(const struct ratelimit *rl);

#endif
