/*
 * The access log: one line a request (logline.h), held in its worker's
 * batch and written whole, one write(2) a batch (O_APPEND keeps the
 * workers' batches apart), to access_log or standard error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/exitcode.h"
#include "base/fsutil.h"

#include "logline.h"
#include "proxy.h"

#define LOG_BATCH		(64 * 1024)	/* access log bytes held at most */

int
accesslog_open(struct proxy *p, const char *path, struct error *e)
{
	p->logfd = STDERR_FILENO;
	if (path == NULL)
		return 0;
	if ((p->access_log = strdup(path)) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "%s", path);
	p->logfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (p->logfd == -1)
		return error_errno(e, error_code_for_errno(errno), "%s", path);
	return 0;
}

/* SIGHUP: reopen the access log in place (dup3: writers never see a
 * closed descriptor). */
void
accesslog_reopen(struct proxy *p)
{
	int fd;

	if (p->access_log == NULL)
		return;
	fd = open(p->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640);
	if (fd == -1) {
		warnmsg("%s: %s", p->access_log, strerror(errno));
		return;
	}
	if (dup3(fd, p->logfd, O_CLOEXEC) == -1)
		warnmsg("%s: %s", p->access_log, strerror(errno));
	close(fd);
}

void
accesslog_close(struct proxy *p)
{
	free(p->access_log);
	p->access_log = NULL;
	if (p->logfd > STDERR_FILENO)
		close(p->logfd);
	p->logfd = -1;
}

/* The access log's time, "27/Nov/2026:13:05:00 +0000", made once a
 * second a thread. */
static const char *
log_time(void)
{
	static __thread time_t last = -1;
	static __thread char when[64];
	time_t now = time(NULL);
	struct tm tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
		last = now;
	}
	return when;
}

void
accesslog_flush(struct worker *w)
{
	if (w->log.len > 0 && w->p->logfd >= 0)
		(void)write_all(w->p->logfd, w->log.data, w->log.len);
	w->log.len = 0;
}

void
accesslog_add(const struct request *rq, enum MHD_RequestTerminationCode toe)
{
	struct logline l;

	memset(&l, 0, sizeof(l));
	l.client = rq->client;
	l.when = log_time();
	l.method = rq->method;
	l.methodfull = rq->methodlen;
	l.target = rq->target;
	l.targetlen = strlen(rq->target);
	l.full = rq->len;
	l.status = rq->status;
	l.bytes = rq->bytes;
	l.seconds = (double)(clock_mono_us() - rq->start_us) / 1e6;
	l.route = route_label_name(rq->label);
	l.aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
	(void)logline_format(&rq->w->log, &l);
	if (rq->w->log.len >= LOG_BATCH)
		accesslog_flush(rq->w);
}
