/*
 * Parsers for the values written on command lines and in the config file:
 * durations ("500ms", "30s", "5m", "2h", "7d"; a bare number is seconds),
 * sizes ("512", "64k", "100M", "1G", "2T"; powers of 1024, an optional
 * trailing "B" or "iB") and unsigned integers.  All are strict: no sign,
 * no white space, no trailing characters, no overflow.
 */
#ifndef AISTACK_PARSE_H
#define AISTACK_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Parse a duration into milliseconds; 0 on success, -1 (EINVAL/ERANGE). */
int parse_duration_ms(const char *s, uint64_t *ms);

/* Parse a size into bytes; 0 on success, -1 (EINVAL/ERANGE). */
int parse_size(const char *s, uint64_t *bytes);

/* Parse a decimal unsigned 64-bit integer; 0 on success, -1. */
int parse_u64(const char *s, uint64_t *v);

/* Parse "N/min", "N/s" or "N/h" into a rate per minute (rates below one
 * per minute are refused); 0 on success, -1. */
int parse_rate_per_min(const char *s, double *per_min);

/* Write a duration in the largest exact unit ("1500ms", "90s", "2h"). */
void format_duration(char *buf, size_t n, uint64_t ms);

/* Write a size in the largest exact unit ("512", "64k", "100M"). */
void format_size(char *buf, size_t n, uint64_t bytes);

#endif
