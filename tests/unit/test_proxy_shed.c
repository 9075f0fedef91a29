/* aistack-proxy's choice of the connection a full table sheds, and when
 * a connection's wait runs out (cmd/proxy/shed.c, a pure room). */
#include "proxy/shed.h"
#include "unit.h"

TEST(shed_takes_the_longest_head)
{
	struct conn_state busy = { PHASE_BUSY, 1 };
	struct conn_state closing = { PHASE_CLOSING, 2 };
	struct conn_state idle = { PHASE_IDLE, 3 };
	struct conn_state head_new = { PHASE_HEAD, 900 };
	struct conn_state head_old = { PHASE_HEAD, 100 };
	struct conn_state head_old2 = { PHASE_HEAD, 100 };
	const struct conn_state *t[] = { &busy, &closing, &idle, &head_new,
	    &head_old, &head_old2 };

	/* the head waiting longest, before any idle one; ties: the first */
	CHECK_INT(shed_choose(t, 6), 4);
	CHECK_INT(shed_choose(t, 4), 3);
	/* no head: the longest idle */
	CHECK_INT(shed_choose(t, 3), 2);
	/* only busy or closing ones: none */
	CHECK_INT(shed_choose(t, 2), 2);
	CHECK_INT(shed_choose(t, 0), 0);
}

TEST(shed_idle_longest_when_no_head)
{
	struct conn_state a = { PHASE_IDLE, 50 };
	struct conn_state b = { PHASE_IDLE, 20 };
	struct conn_state c = { PHASE_BUSY, 0 };
	const struct conn_state *t[] = { &a, &c, &b };

	CHECK_INT(shed_choose(t, 3), 2);
}

TEST(shed_deadlines)
{
	struct conn_state head = { PHASE_HEAD, 1000 };
	struct conn_state idle = { PHASE_IDLE, 1000 };
	struct conn_state busy = { PHASE_BUSY, 1000 };
	struct conn_state closing = { PHASE_CLOSING, 1000 };

	CHECK_U64(shed_deadline(&head, 10, 30), 1010);
	CHECK_U64(shed_deadline(&idle, 10, 30), 1030);
	CHECK_U64(shed_deadline(&busy, 10, 30), 0);
	CHECK_U64(shed_deadline(&closing, 10, 30), 0);
}
