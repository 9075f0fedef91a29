/*
 * Several Prometheus text expositions (version 0.0.4) merged into one
 * that a scraper takes whole and `promtool check metrics` accepts: the
 * proxy's /metrics (its own metrics, the live view of the state, the
 * files of metrics/).
 *
 * Every text is validated with lib/format/promtext's sample parser and these
 * rules; what breaks one is dropped, line by line or family by family,
 * and reported, and the rest is kept:
 *  - a line: not a sample, HELP or TYPE line; a bad metric or label name;
 *    a label name given twice, or reserved ("__name__", any "__" name);
 *    a label value or HELP text that is not UTF-8 or has a bad escape;
 *    a second HELP line; a series given already (in this text or an
 *    earlier one); a histogram bucket without "le"; an "le" or
 *    "quantile" that is not a number; a counter below zero;
 *  - a family: an unknown type, a second TYPE line or one after the
 *    family's samples, a type other than the one an earlier text gave,
 *    a name that would take a histogram's or summary's series (h_bucket
 *    beside the histogram h, or the reverse), and the names promtool's linter refuses (a counter without "_total",
 *    "_total" on another type, "_bucket", "_count", "_sum", "le" or
 *    "quantile" outside a histogram or summary, camelCase, ':', a type
 *    or an abbreviated or non-base unit in the name).
 *
 * A text added as closed (the authoritative ones: they come first) owns
 * every family it names, even one with no sample: a later text's samples
 * of it are left out, silently, as superseded rather than invalid.  A
 * family that reaches the output with no HELP line gets one naming where
 * it came from.  Families keep the order they first appeared in.
 */
#ifndef AISTACK_PROMMERGE_H
#define AISTACK_PROMMERGE_H

#include <stddef.h>

#include "base/buf.h"

struct prommerge;

/* Told of each line dropped: its number (from 1) and why. */
typedef void prommerge_reject_fn(void *arg, size_t line, const char *reason);

/* A merger, or NULL when out of memory. */
struct prommerge *prommerge_new(void);

/*
 * Add text (n bytes).  source names it in the HELP lines made for its
 * families ("metrics/x.prom").  closed: see above.  reject (may be NULL)
 * is called for each line dropped as invalid.  Returns the number of
 * lines dropped, or -1 when out of memory.
 */
long prommerge_add(struct prommerge *m, const char *text, size_t n,
    const char *source, int closed, prommerge_reject_fn *reject, void *arg);

/* Append the merged exposition to out: 0, or -1 when out of memory. */
int prommerge_write(const struct prommerge *m, struct buf *out);

void prommerge_free(struct prommerge *m);

#endif
