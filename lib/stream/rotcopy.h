/*
 * The rotated copies of plain JSONL files, by name: what aistack-rotate
 * makes, keeps and expires, and --follow reads.
 *
 * The copies of FILE live beside it as FILE.YYYYMMDDTHHMMSSZ (UTC) and,
 * once compressed, FILE.YYYYMMDDTHHMMSSZ.gz.  Nothing else is ever
 * treated as a copy: a name that does not follow these rules exactly is
 * not touched.  Stamps only increase, so name order is content order.
 */
#ifndef AISTACK_ROTCOPY_H
#define AISTACK_ROTCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define ROTCOPY_STAMP_LEN 16	/* "YYYYMMDDTHHMMSSZ" */

struct rotcopy {
	char *name;		/* the plain name, FILE.STAMP (owned) */
	int64_t stamp;		/* seconds since the epoch */
	int plain;		/* FILE.STAMP exists */
	int gz;			/* FILE.STAMP.gz exists */
	uint64_t disk;		/* bytes on disk (the gzip form when there is one) */
	int64_t mtime_ms;	/* modification time of that form */
};

/* Parse name as a copy of the file named base; 0 with *stamp and *gz. */
int rotcopy_parse(const char *base, const char *name, int64_t *stamp,
    int *gz);

/* Write the name of base's copy stamped stamp (".gz" when gz). */
int rotcopy_name(char *buf, size_t n, const char *base, int64_t stamp,
    int gz);

/* Nonzero when name is a temporary file left by the rotation of base:
 * ".BASE.STAMP.tmpXXXXXX" or ".BASE.STAMP.gz.tmpXXXXXX". */
int rotcopy_is_temp(const char *base, const char *name);

/*
 * List the copies of base in dir, oldest stamp first (caller frees with
 * rotcopy_list_free).  A stamp present in both forms is one entry with
 * plain and gz set.
 */
int rotcopy_list(const char *dir, const char *base, struct rotcopy **v,
    size_t *n, struct error *e);
void rotcopy_list_free(struct rotcopy *v, size_t n);

/*
 * The plain files of a directory that rotation looks after: every
 * "*.jsonl" regular file (not a symbolic link, not a dot file), and every
 * "*.jsonl" base that only has copies left.  Sorted; caller frees with
 * rotdir_free.
 */
int rotdir_bases(const char *dir, char ***bases, size_t *n, struct error *e);
void rotdir_free(char **bases, size_t n);

#endif
