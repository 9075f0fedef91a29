/*
 * Reading Prometheus text exposition files (version 0.0.4): one sample
 * line parser, and a merger that turns several files into one valid
 * exposition.  Plain concatenation is not one: two files may both declare
 * a family (a second "# TYPE" line is an error) or repeat a series.  The
 * merger emits each family once, in order of first appearance, with the
 * first HELP and TYPE seen for it and every sample of it from every
 * file, dropping a series already emitted, samples that contradict the
 * family's type, and lines that do not parse.
 */
#ifndef AISTACK_PROMTEXT_H
#define AISTACK_PROMTEXT_H

#include <stddef.h>

#include "base/buf.h"

struct prom_sample {
	const char *name;	/* borrowed from the line */
	size_t namelen;
	const char *labels;	/* inside the braces, "" when none */
	size_t labelslen;
	double value;
};

/*
 * Parse one line (without its newline) as a sample: name, optional
 * {labels}, value, optional timestamp.  Returns 0, or -1 when the line
 * is not a valid sample line.
 */
int prom_parse_sample(const char *line, size_t n, struct prom_sample *s);

/* Copy the value of label key in s (unescaped) to buf; 0, or -1 when
 * absent or too long. */
int prom_label(const struct prom_sample *s, const char *key, char *buf,
    size_t n);

/* Call fn for every sample line of text; stops when fn returns nonzero. */
void prom_each_sample(const char *text, size_t n,
    int (*fn)(const struct prom_sample *s, void *arg), void *arg);

/* Merge n texts (text[i] of len[i] bytes) into out (appended). */
int prom_merge(const char *const *text, const size_t *len, size_t n,
    struct buf *out);

#endif
