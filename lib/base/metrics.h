/*
 * Prometheus textfile metrics.  A command collects families and samples
 * in a struct metrics and writes them atomically (temp, rename; no fsync:
 * metrics cost nothing to lose in a crash) to
 * statedir/metrics/CMD-NAME.prom, where the proxy and node_exporter's
 * textfile collector read them.  Names are prefixed "aistack_".
 */
#ifndef AISTACK_METRICS_H
#define AISTACK_METRICS_H

#include "buf.h"
#include "err.h"

struct metrics {
	struct buf text;
};

#define METRICS_INIT { BUF_INIT }

/* Add "# HELP" and "# TYPE" lines; type is "counter" or "gauge" etc. */
int metrics_family(struct metrics *m, const char *name, const char *type,
    const char *help);

/*
 * Add one sample: name{k1="v1",...} value.  The variadic arguments are
 * label name/value string pairs ended by NULL; values are escaped.
 */
int metrics_sample(struct metrics *m, const char *name, double value, ...)
    __attribute__((sentinel));

/* Write the collected text to statedir/metrics/CMD-NAME.prom atomically.
 * NAME is sanitised to [a-z0-9._-]. */
int metrics_write(const struct metrics *m, const char *cmd, const char *name,
    struct error *e);

/*
 * The value of the sample name{labels} (label name/value pairs ended by
 * NULL, as for metrics_sample) in statedir/metrics/CMD-NAME.prom as it
 * was last written; NAN when the file or the sample is missing.  For a
 * gauge a run keeps from the run before, such as
 * aistack_CMD_last_success_timestamp_seconds after a failed run.
 */
double metrics_previous(const char *cmd, const char *file, const char *name,
    ...) __attribute__((sentinel));

/*
 * Add the family name (a gauge, help text help) with one sample: now when
 * success is nonzero, else the value the last metrics/CMD-FILE.prom held
 * (nothing when it held none).  The labels follow as for metrics_sample.
 */
int metrics_last_success(struct metrics *m, const char *cmd, const char *file,
    int success, const char *name, const char *help, ...)
    __attribute__((sentinel));

void metrics_release(struct metrics *m);

#endif
