/*
 * Which connection a full table sheds, and when a connection's wait
 * runs out (shed.h).
 */
#include "shed.h"

uint64_t
shed_deadline(const struct conn_state *c, uint64_t header_us,
    uint64_t idle_us)
{
	if (c->phase == PHASE_HEAD)
		return c->since_us + header_us;
	if (c->phase == PHASE_IDLE)
		return c->since_us + idle_us;
	return 0;
}

size_t
shed_choose(const struct conn_state *const *c, size_t n)
{
	size_t i, head = n, idle = n;

	for (i = 0; i < n; i++) {
		if (c[i]->phase == PHASE_HEAD && (head == n ||
		    c[i]->since_us < c[head]->since_us))
			head = i;
		else if (c[i]->phase == PHASE_IDLE && (idle == n ||
		    c[i]->since_us < c[idle]->since_us))
			idle = i;
	}
	return head < n ? head : idle;
}
