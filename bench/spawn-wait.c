/*
 * The floor for any wrapper process (bench/breaker.sh): run ARGV[1..] with
 * posix_spawnp, wait, exit with its status.  Nothing else: no state, no
 * lock, no parsing.  aistack-breaker run does this plus the breaker.
 */
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int
main(int argc, char **argv)
{
	pid_t pid;
	int status;

	if (argc < 2 || posix_spawnp(&pid, argv[1], NULL, NULL, argv + 1,
	    environ) != 0)
		return 127;
	if (waitpid(pid, &status, 0) == -1)
		return 127;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
