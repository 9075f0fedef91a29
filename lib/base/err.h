/*
 * Error reporting.  Library functions return 0 or -1 and describe the
 * failure in a struct error: a message naming the failing thing first and
 * the exit code a command should use for it.  Only cmd/ prints and exits.
 */
#ifndef AISTACK_ERR_H
#define AISTACK_ERR_H

#include <stdarg.h>

#define ERROR_MSG_MAX 1024

struct error {
	int code;			/* an EXIT_* value, 0 when unset */
	int errnum;			/* errno of the failure, 0 when none */
	char msg[ERROR_MSG_MAX];	/* "context: reason", no newline */
};

/* The program name used as the prefix of every message ("aistack-ingest"). */
extern const char *progname;

/* Set *e to code and the formatted message; returns -1 for tail calls. */
int error_set(struct error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like error_set, appending ": strerror(errno)" and recording errno. */
int error_errno(struct error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the existing message with "context: ", keeping the code. */
int error_wrap(struct error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append the formatted text to the existing message, keeping the code. */
int error_append(struct error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The exit code for an I/O failure with errno errnum: 74, or 73 for EACCES-like. */
int error_code_for_errno(int errnum);

/* Print "progname: fmt\n" to stderr. */
void warnmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error: the message (unless fmt is NULL or ""), as warnmsg
 * prints it, then usage, on standard error.  Returns EXIT_USAGE (64). */
int usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The single exit path of a command: flush and close standard output,
 * and turn a failure there (a full disk, a closed pipe) into EXIT_IOERR
 * when status was EXIT_OK.  Returns the status to exit with.
 */
int exit_flush(int status);

/* Print "progname: msg\n" for e and return e->code (EXIT_SOFTWARE if unset). */
int error_report(const struct error *e);

#endif
