#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "exitcode.h"

const char *progname = "aistack";

static void
vset(struct error *e, int code, int errnum, const char *fmt, va_list ap)
{
	int n;

	e->code = code;
	e->errnum = errnum;
	n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	if (n < 0)
		n = 0;
	if (errnum != 0 && (size_t)n < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s",
		    strerror(errnum));
}

int
error_set(struct error *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(e, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int
error_errno(struct error *e, int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vset(e, code, saved, fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

int
error_wrap(struct error *e, const char *fmt, ...)
{
	char old[ERROR_MSG_MAX];
	va_list ap;
	size_t n;

	memcpy(old, e->msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	if (n + 2 < sizeof(e->msg)) {
		memcpy(e->msg + n, ": ", 2);
		n += 2;
		old[sizeof(old) - 1 - n] = '\0';
		memcpy(e->msg + n, old, strlen(old) + 1);
	}
	return -1;
}

int
error_append(struct error *e, const char *fmt, ...)
{
	size_t n = strnlen(e->msg, sizeof(e->msg) - 1);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	va_end(ap);
	return -1;
}

int
error_code_for_errno(int errnum)
{
	switch (errnum) {
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOTDIR:
	case EEXIST:
	case ENOENT:
		return EXIT_CANTCREAT;
	default:
		return EXIT_IOERR;
	}
}

void
warnmsg(const char *fmt, ...)
{
	char buf[ERROR_MSG_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", progname, buf);
}

int
usage_error(const char *usage, const char *fmt, ...)
{
	char buf[ERROR_MSG_MAX + 64];
	va_list ap;

	if (fmt != NULL && fmt[0] != '\0') {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		fprintf(stderr, "%s: %s\n", progname, buf);
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}

int
error_report(const struct error *e)
{
	fprintf(stderr, "%s: %s\n", progname,
	    e->msg[0] != '\0' ? e->msg : "internal error");
	return e->code != 0 ? e->code : EXIT_SOFTWARE;
}

int
exit_flush(int status)
{
	if (fflush(stdout) == EOF || ferror(stdout) || fclose(stdout) == EOF) {
		if (status == EXIT_OK) {
			warnmsg("standard output: %s", strerror(errno));
			status = EXIT_IOERR;
		}
	}
	return status;
}
