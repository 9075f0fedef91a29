/* Unit tests of lib/stream/consumerlock.c. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/exitcode.h"
#include "stream/consumer.h"
#include "stream/consumerlock.h"
#include "unit.h"

TEST(consumerlock_is_exclusive_and_released_on_close)
{
	struct error e;
	struct stat st;
	int a, b;

	CHECK((a = consumer_lock("s", "c", -1, &e)) >= 0);
	CHECK(stat("s/consumers/.c.lock", &st) == 0);
	/* another open file description of the same file is refused */
	CHECK_INT(consumer_lock("s", "c", 0, &e), -1);
	CHECK_INT(e.code, EXIT_TEMPFAIL);
	CHECK_INT(consumer_lock("s", "c", 30, &e), -1);
	CHECK_INT(e.code, EXIT_TEMPFAIL);
	/* other consumers are independent */
	CHECK((b = consumer_lock("s", "d", 0, &e)) >= 0);
	consumer_unlock(b);
	consumer_unlock(a);
	CHECK((a = consumer_lock("s", "c", 0, &e)) >= 0);
	consumer_unlock(a);
	consumer_unlock(-1);
}

TEST(consumerlock_refuses_bad_names)
{
	struct error e;

	CHECK_INT(consumer_lock("s", "Bad", 0, &e), -1);
	CHECK_INT(e.code, EXIT_USAGE);
	CHECK_INT(consumer_lock("s", "../x", 0, &e), -1);
	CHECK_INT(e.code, EXIT_USAGE);
}

/* A child holding a copy of the descriptor keeps the consumer locked. */
TEST(consumerlock_is_kept_by_a_child_that_inherits_it)
{
	struct error e;
	int a, p[2], status;
	pid_t pid;
	char c;

	CHECK((a = consumer_lock("s", "c", -1, &e)) >= 0);
	CHECK(pipe(p) == 0);
	if ((pid = fork()) == 0) {
		close(p[1]);
		/* until the parent closes its end */
		_exit(read(p[0], &c, 1) < 0 ? 1 : 0);
	}
	CHECK(pid > 0);
	close(p[0]);
	consumer_unlock(a);		/* the child still holds it */
	CHECK_INT(consumer_lock("s", "c", 0, &e), -1);
	CHECK_INT(e.code, EXIT_TEMPFAIL);
	close(p[1]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK((a = consumer_lock("s", "c", 0, &e)) >= 0);
	consumer_unlock(a);
}

/*
 * A process waiting on a lock file that consumer_remove unlinks must not
 * believe it holds the consumer while another process holds the new file.
 */
TEST(consumerlock_survives_removal_of_the_lock_file)
{
	struct consumer_state st = { 0, 0, 0, "", 0 };
	struct pollfd pfd;
	struct error e;
	int a, c2, p[2], status;
	pid_t pid;
	char ch;

	CHECK((a = consumer_lock("s", "c", -1, &e)) >= 0);
	CHECK(consumer_save("s", "c", &st, &e) == 0);
	CHECK(pipe(p) == 0);
	if ((pid = fork()) == 0) {
		int fd;
		close(p[0]);
		close(a);
		fd = consumer_lock("s", "c", -1, &e);
		_exit(write(p[1], fd >= 0 ? "y" : "n", 1) == 1 ? 0 : 1);
	}
	CHECK(pid > 0);
	close(p[1]);
	usleep(100000);		/* the child waits on the old file */
	CHECK(consumer_remove("s", "c", &e) == 0);
	/* a new file; then the child gets the old one, which is not enough */
	CHECK((c2 = consumer_lock("s", "c", 0, &e)) >= 0);
	consumer_unlock(a);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	CHECK_INT(poll(&pfd, 1, 300), 0);
	consumer_unlock(c2);
	CHECK_INT(poll(&pfd, 1, 20000), 1);
	CHECK_INT(read(p[0], &ch, 1), 1);
	CHECK(ch == 'y');
	CHECK(waitpid(pid, &status, 0) == pid);
	close(p[0]);
}
