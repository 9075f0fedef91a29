/*
 * Time.  Monotonic time for timeouts, pauses and rates: CLOCK_MONOTONIC,
 * which wall-clock changes do not move.  Wall-clock time only for what is
 * written down or shown: Unix milliseconds, and RFC 3339 in UTC
 * ("2026-11-27T07:18:37Z"), the one form aistack writes times in.
 */
#ifndef AISTACK_CLOCK_H
#define AISTACK_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock (an arbitrary origin). */
uint64_t clock_mono_ms(void);

/* Microseconds on the monotonic clock. */
uint64_t clock_mono_us(void);

/* Sleep ms milliseconds, resuming after signals that do not end the process. */
void clock_sleep_ms(uint64_t ms);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

/* Room for an RFC 3339 time and its NUL. */
#define CLOCK_RFC3339_SIZE	32

/*
 * t (Unix seconds) as "2026-11-27T07:18:37Z" in buf (n bytes, at least
 * CLOCK_RFC3339_SIZE); -1 and buf "" when t has no such form.
 */
int clock_rfc3339(char *buf, size_t n, int64_t t);

/* The current time as clock_rfc3339 writes it. */
void clock_rfc3339_now(char *buf, size_t n);

/* The reverse of clock_rfc3339: *t, or -1 when s is not exactly that form. */
int clock_rfc3339_parse(const char *s, int64_t *t);

#endif
