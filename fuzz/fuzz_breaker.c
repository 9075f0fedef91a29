/*
 * The breaker state file reader (lib/breaker/breaker.c), through the public API:
 * the input is written as breakers/fz in a private state directory and
 * read with breaker_status_get under a fixed clock.  Properties: no crash
 * or leak; a file that reads is in a known state and its retry time is
 * within its open period; and a breaker whose file reads can be tripped
 * and reset, each change being written in a form that reads back with
 * the counts it should have (trip: generation and opened plus one, the
 * failure history kept; reset: closed, counts cleared).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "breaker/breaker.h"
#include "fuzz.h"

static char statedir[64];
static char path[sizeof(statedir) + 32];

static void
fixed_clock(struct breaker_clock *now)
{
	memset(now, 0, sizeof(*now));
	now->boot_ms = 1000000;
	now->wall = 1700000000;
	snprintf(now->boot_id, sizeof(now->boot_id), "fuzz-boot");
}

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void
cleanup(void)
{
	nftw(statedir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* tmpfs when there is one: the state file is fsynced at each change */
	snprintf(statedir, sizeof(statedir), "%s/aistack-fuzz-breaker.XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(statedir) == NULL)
		abort();
	setenv("AISTACK_STATE_DIR", statedir, 1);
	snprintf(path, sizeof(path), "%s/breakers/fz", statedir);
	atexit(cleanup);
	return 0;
}

static int
small(uint64_t v)
{
	return v < (uint64_t)INT64_MAX - 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct breaker b;
	struct breaker_status st, st2;
	struct error e;
	int fd;

	memset(&e, 0, sizeof(e));
	FUZZ_CHECK(breaker_init(&b, "fz", NULL, &e) == 0);
	b.clock = fixed_clock;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd != -1);
	FUZZ_CHECK(write_all(fd, data, size) == (ssize_t)size);
	close(fd);

	if (breaker_status_get(&b, &st, &e) == -1) {
		FUZZ_CHECK(e.msg[0] != '\0' && e.code != 0);
		return 0;
	}
	FUZZ_CHECK(st.data.state == BREAKER_CLOSED ||
	    st.data.state == BREAKER_HALF_OPEN ||
	    st.data.state == BREAKER_OPEN);
	FUZZ_CHECK(memchr(st.data.boot_id, '\0', sizeof(st.data.boot_id)));
	if (st.data.state == BREAKER_OPEN) {
		FUZZ_CHECK(st.state == BREAKER_OPEN ||
		    st.state == BREAKER_HALF_OPEN);
		FUZZ_CHECK(st.retry_in_ms <= st.data.open_ms);
		FUZZ_CHECK((st.state == BREAKER_OPEN) == (st.retry_in_ms > 0));
	} else
		FUZZ_CHECK(st.state == st.data.state && st.retry_in_ms == 0);

	/* counts beyond jansson's int64 cannot be written back: skip them */
	if (!small(st.data.generation) || !small(st.data.opened) ||
	    !small(st.data.closed) || !small(st.data.half_opened) ||
	    !small(st.data.failures) || !small(st.data.streak) ||
	    !small(st.data.successes) || !small(st.data.open_ms) ||
	    !small(st.data.opened_at_ms))
		return 0;

	FUZZ_CHECK(breaker_trip(&b, &e) == 0);
	FUZZ_CHECK(breaker_status_get(&b, &st2, &e) == 0);
	FUZZ_CHECK(st2.data.state == BREAKER_OPEN && st2.state == BREAKER_OPEN);
	FUZZ_CHECK(st2.data.generation == st.data.generation + 1);
	FUZZ_CHECK(st2.data.opened == st.data.opened + 1);
	FUZZ_CHECK(st2.data.failures == st.data.failures);
	FUZZ_CHECK(st2.data.streak == st.data.streak);
	FUZZ_CHECK(st2.data.closed == st.data.closed);
	FUZZ_CHECK(st2.data.half_opened == st.data.half_opened);
	FUZZ_CHECK(st2.data.last_failure == st.data.last_failure);
	FUZZ_CHECK(st2.data.opened_at == 1700000000);
	FUZZ_CHECK(st2.data.open_ms == b.set.open_for_ms);
	FUZZ_CHECK(st2.retry_in_ms == b.set.open_for_ms);
	FUZZ_CHECK(strcmp(st2.data.boot_id, "fuzz-boot") == 0);

	FUZZ_CHECK(breaker_reset(&b, &e) == 0);
	FUZZ_CHECK(breaker_status_get(&b, &st2, &e) == 0);
	FUZZ_CHECK(st2.data.state == BREAKER_CLOSED);
	FUZZ_CHECK(st2.data.failures == 0 && st2.data.streak == 0);
	FUZZ_CHECK(st2.data.closed == st.data.closed + 1);
	FUZZ_CHECK(st2.data.last_failure == st.data.last_failure);
	return 0;
}
