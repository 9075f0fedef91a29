/*
 * Typed members of a jansson object, for the state files aistack reads
 * back (consumer offsets, breakers, follow positions): a counter or offset
 * is a non-negative integer, and anything else makes the file damaged.
 */
#ifndef AISTACK_JSONGET_H
#define AISTACK_JSONGET_H

#include <jansson.h>
#include <stdint.h>

/* o's member key as *v; -1 when it is missing or not an integer >= 0. */
int jsonget_u64(const json_t *o, const char *key, uint64_t *v);

/* The same, except that a missing or null member is 0, *v unchanged. */
int jsonget_u64_opt(const json_t *o, const char *key, uint64_t *v);

#endif
