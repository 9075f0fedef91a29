#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

int
metrics_sample(struct metrics *m, const char *name, double value, ...)
{
	const char *k, *v;
	va_list ap;
	int first = 1, rc = 0;

	rc |= buf_printf(&m->text, "%s", name);
	va_start(ap, value);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		rc |= buf_printf(&m->text, "%s%s=\"", first ? "{" : ",", k);
		rc |= label_value(&m->text, v != NULL ? v : "");
		rc |= buf_putc(&m->text, '"');
		first = 0;
	}
	va_end(ap);
	if (!first)
		rc |= buf_putc(&m->text, '}');
	if (isnan(value))
		rc |= buf_printf(&m->text, " NaN\n");
	else if (isinf(value))
		rc |= buf_printf(&m->text, " %s\n", value > 0 ? "+Inf" : "-Inf");
	else if (value == (double)(long long)value && fabs(value) < 1e18)
		rc |= buf_printf(&m->text, " %lld\n", (long long)value);
	else
		rc |= buf_printf(&m->text, " %.17g\n", value);
	return rc != 0 ? -1 : 0;
}

int
metrics_write(const struct metrics *m, const char *cmd, const char *name,
    struct error *e)
{
	char dir[PATH_MAX], path[PATH_MAX + 160], clean[128];
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < sizeof(clean); i++) {
		char c = name[i];
		clean[i] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-') ? c : '_';
	}
	clean[i] = '\0';
	if (statedir_sub(dir, sizeof(dir), "metrics", e) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/%s-%s.prom", dir, cmd, clean);
	return atomic_replace_volatile(path, m->text.data != NULL ? m->text.data : "",
	    m->text.len, 0644, e);
}

void
metrics_release(struct metrics *m)
{
	if (m != NULL)
		buf_release(&m->text);
}
