/*
 * Exit codes shared by every aistack command (sysexits values).
 * Append only: scripts and systemd units depend on these numbers.
 */
#ifndef AISTACK_EXITCODE_H
#define AISTACK_EXITCODE_H

enum {
	EXIT_OK = 0,		/* success */
	EXIT_NO = 1,		/* a "no" answer from a predicate, never an error */
	EXIT_USAGE = 64,	/* bad command line */
	EXIT_DATAERR = 65,	/* bad data (a record, an offset, lost data) */
	EXIT_NOINPUT = 66,	/* an input file is missing or unreadable */
	EXIT_UNAVAILABLE = 69,	/* a dependency (database, upstream) is unavailable */
	EXIT_SOFTWARE = 70,	/* internal error */
	EXIT_CANTCREAT = 73,	/* cannot create an output file or directory */
	EXIT_IOERR = 74,	/* input/output error, ENOSPC included */
	EXIT_TEMPFAIL = 75,	/* temporary: retry later (breaker open, backlog full) */
	EXIT_CONFIG = 78,	/* bad configuration */
	EXIT_TIMEOUT = 124,	/* a wrapped command was killed by --timeout */
	EXIT_CANTEXEC = 126,	/* a wrapped command could not be executed */
	EXIT_NOTFOUND = 127	/* a wrapped command was not found */
};

#endif
