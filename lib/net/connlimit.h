/*
 * Connections per client address, counted across every thread of a
 * server: a client may hold at most per_client connections at once.
 * A client is an IPv4 address (also when it comes IPv4-mapped in IPv6)
 * or an IPv6 prefix of prefix6 bits (64: a /64, what one host is
 * usually given; 128: the exact address), as the rate limit counts
 * them (ratelimit_key).  The table holds only clients with a
 * connection open, in a hash table keyed by SipHash with a random key.
 *
 * Thread-safe: one mutex per table.  No function prints or exits.
 */
#ifndef AISTACK_CONNLIMIT_H
#define AISTACK_CONNLIMIT_H

#include <stddef.h>
#include <sys/socket.h>

struct connlimit;

/* A table sized for max_connections open at once, IPv6 clients counted
 * per prefix6 bits (1..128; clamped); NULL with errno. */
struct connlimit *connlimit_new(size_t max_connections, unsigned per_client,
    unsigned prefix6);
void connlimit_free(struct connlimit *cl);

/*
 * Count a new connection from sa: 1 when its client now holds at most
 * per_client, 0 when it is over (counted all the same: the caller closes
 * it, and calls connlimit_leave as for any other), -1 without memory
 * (not counted).
 */
int connlimit_enter(struct connlimit *cl, const struct sockaddr *sa);

/* A connection counted by connlimit_enter has closed. */
void connlimit_leave(struct connlimit *cl, const struct sockaddr *sa);

/* Clients with a connection open. */
size_t connlimit_clients(struct connlimit *cl);

#endif
