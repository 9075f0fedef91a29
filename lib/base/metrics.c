#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exitcode.h"
#include "fsutil.h"
#include "metrics.h"
#include "statedir.h"

int
metrics_family(struct metrics *m, const char *name, const char *type,
    const char *help)
{
	return buf_printf(&m->text, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static int
label_value(struct buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		int rc;
		if (*v == '\\')
			rc = buf_append(b, "\\\\", 2);
		else if (*v == '"')
			rc = buf_append(b, "\\\"", 2);
		else if (*v == '\n')
			rc = buf_append(b, "\\n", 2);
		else
			rc = buf_putc(b, *v);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* Append name{k1="v1",...} for the label pairs of ap. */
static int
series(struct buf *b, const char *name, va_list ap)
{
	const char *k, *v;
	int first = 1, rc = 0;

	rc |= buf_printf(b, "%s", name);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		rc |= buf_printf(b, "%s%s=\"", first ? "{" : ",", k);
		rc |= label_value(b, v != NULL ? v : "");
		rc |= buf_putc(b, '"');
		first = 0;
	}
	if (!first)
		rc |= buf_putc(b, '}');
	return rc != 0 ? -1 : 0;
}

static int
value_text(struct buf *b, double value)
{
	int rc = 0;

	if (isnan(value))
		rc |= buf_printf(b, " NaN\n");
	else if (isinf(value))
		rc |= buf_printf(b, " %s\n", value > 0 ? "+Inf" : "-Inf");
	else if (fabs(value) < 1e18 && value == (double)(long long)value)
		rc |= buf_printf(b, " %lld\n", (long long)value);
	else
		rc |= buf_printf(b, " %.17g\n", value);
	return rc != 0 ? -1 : 0;
}

int
metrics_sample(struct metrics *m, const char *name, double value, ...)
{
	va_list ap;
	int rc;

	va_start(ap, value);
	rc = series(&m->text, name, ap);
	va_end(ap);
	if (value_text(&m->text, value) == -1)
		rc = -1;
	return rc;
}

/* statedir/metrics/CMD-FILE.prom, FILE cleaned as metrics_write cleans it. */
static int
metrics_path(char *path, size_t n, const char *cmd, const char *name,
    struct error *e)
{
	char dir[PATH_MAX], clean[128];
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < sizeof(clean); i++) {
		char c = name[i];
		clean[i] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-') ? c : '_';
	}
	clean[i] = '\0';
	if (statedir_sub(dir, sizeof(dir), "metrics", e) == -1)
		return -1;
	if ((size_t)snprintf(path, n, "%s/%s-%s.prom", dir, cmd, clean) >= n)
		return error_set(e, EXIT_CANTCREAT, "%s: path too long", dir);
	return 0;
}

/* The value of the sample whose series text is key[0..klen) in text. */
static double
find_value(const char *text, size_t n, const char *key, size_t klen)
{
	const char *p = text, *end = text + n, *nl;
	char *stop;
	double v;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((size_t)(nl - p) <= klen || memcmp(p, key, klen) != 0 ||
		    p[klen] != ' ')
			continue;
		v = strtod(p + klen + 1, &stop);
		if (stop != p + klen + 1)
			return v;
	}
	return NAN;
}

static double
previous(const char *cmd, const char *file, const char *name, va_list ap)
{
	char path[PATH_MAX + 160], *text;
	struct buf key = BUF_INIT;
	struct error e;
	double v = NAN;
	size_t n;

	if (metrics_path(path, sizeof(path), cmd, file, &e) == 0 &&
	    series(&key, name, ap) == 0 &&
	    read_file(path, 1 << 20, &text, &n) == 0) {
		v = find_value(text, n, key.data, key.len);
		free(text);
	}
	buf_release(&key);
	return v;
}

double
metrics_previous(const char *cmd, const char *file, const char *name, ...)
{
	va_list ap;
	double v;

	va_start(ap, name);
	v = previous(cmd, file, name, ap);
	va_end(ap);
	return v;
}

int
metrics_last_success(struct metrics *m, const char *cmd, const char *file,
    int success, const char *name, const char *help, ...)
{
	struct timespec ts;
	va_list ap;
	double v;
	int rc;

	if (success) {
		clock_gettime(CLOCK_REALTIME, &ts);
		v = (double)ts.tv_sec;
	} else {
		va_start(ap, help);
		v = previous(cmd, file, name, ap);
		va_end(ap);
		if (isnan(v))
			return 0;
	}
	rc = metrics_family(m, name, "gauge", help);
	va_start(ap, help);
	if (series(&m->text, name, ap) == -1)
		rc = -1;
	va_end(ap);
	if (value_text(&m->text, v) == -1)
		rc = -1;
	return rc;
}

int
metrics_write(const struct metrics *m, const char *cmd, const char *name,
    struct error *e)
{
	char path[PATH_MAX + 160];

	if (metrics_path(path, sizeof(path), cmd, name, e) == -1)
		return -1;
	return atomic_replace_volatile(path, m->text.data != NULL ? m->text.data : "",
	    m->text.len, 0644, e);
}

void
metrics_release(struct metrics *m)
{
	if (m != NULL)
		buf_release(&m->text);
}
