/*
 * Monotonic time for timeouts, pauses and rates: CLOCK_MONOTONIC, which
 * wall-clock changes do not move.
 */
#ifndef AISTACK_CLOCK_H
#define AISTACK_CLOCK_H

#include <stdint.h>

/* Milliseconds on the monotonic clock (an arbitrary origin). */
uint64_t clock_mono_ms(void);

/* Microseconds on the monotonic clock. */
uint64_t clock_mono_us(void);

/* Sleep ms milliseconds, resuming after signals that do not end the process. */
void clock_sleep_ms(uint64_t ms);

#endif
