/*
 * SipHash-2-4 of 16-byte keys (client addresses), for hash tables that
 * clients fill: with a random key, nobody can choose addresses that
 * collide.  No function prints or exits.
 */
#ifndef AISTACK_SIPHASH_H
#define AISTACK_SIPHASH_H

#include <stdint.h>

uint64_t siphash16(uint64_t k0, uint64_t k1, const unsigned char in[16]);

/* A random 64-bit key half (getrandom(2); a clock-based one without
 * entropy). */
uint64_t siphash_random_key(void);

#endif
