/* The unit-test runner: see unit.h.  Usage: unit-tests [NAME-SUBSTRING...] */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#define MAX_TESTS 1024

static struct {
	const char *name;
	unit_fn fn;
} tests[MAX_TESTS];
static int ntests;
static int failed_here;
static char tmpdir[4096];

void
unit_register(const char *name, unit_fn fn)
{
	if (ntests < MAX_TESTS) {
		tests[ntests].name = name;
		tests[ntests].fn = fn;
		ntests++;
	}
}

void
unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "    %s:%d: check failed: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failed_here = 1;
}

const char *
unit_tmpdir(void)
{
	return tmpdir;
}

static int
selected(const char *name, int argc, char **argv)
{
	int i;

	if (argc < 2)
		return 1;
	for (i = 1; i < argc; i++)
		if (strstr(name, argv[i]) != NULL)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	int i, passed = 0, failed = 0;
	const char *base = getenv("TMPDIR");

	for (i = 0; i < ntests; i++) {
		pid_t pid;
		int status;

		if (!selected(tests[i].name, argc, argv))
			continue;
		snprintf(tmpdir, sizeof(tmpdir), "%s/aistack-unit.XXXXXX",
		    base != NULL && base[0] != '\0' ? base : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			return 70;
		}
		fflush(NULL);
		if ((pid = fork()) == -1) {
			perror("fork");
			return 70;
		}
		if (pid == 0) {
			if (chdir(tmpdir) == -1)
				_exit(99);
			setenv("AISTACK_STATE_DIR", tmpdir, 1);
			setenv("AISTACK_CONFIG", "/dev/null", 1);
			tests[i].fn();
			fflush(NULL);
			_exit(failed_here ? 1 : 0);
		}
		while (waitpid(pid, &status, 0) == -1)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			printf("ok %s\n", tests[i].name);
			passed++;
		} else {
			if (WIFSIGNALED(status))
				printf("not ok %s (signal %d)\n", tests[i].name,
				    WTERMSIG(status));
			else
				printf("not ok %s\n", tests[i].name);
			failed++;
		}
		{
			char cmd[4200];
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
			if (system(cmd) != 0)
				fprintf(stderr, "cannot remove %s\n", tmpdir);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
