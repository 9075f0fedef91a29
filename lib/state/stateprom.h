/*
 * The read model (lib/state/stateview.h) as Prometheus text: every family of
 * lib/base/metricnames.h that the state holds, live values and the counters
 * the state keeps, for /metrics.  Items that could not be read (ok == 0)
 * are left out; a counter a state does not keep yet is left out, never
 * shown as 0.
 */
#ifndef AISTACK_STATEPROM_H
#define AISTACK_STATEPROM_H

#include "base/metrics.h"
#include "stateview.h"

/* Append v's families to m.  Returns 0, or -1 when out of memory. */
int stateprom_render(const struct stateview *v, struct metrics *m);

#endif
