/*
 * Retention policy: which sealed segments (or rotated copies) to compress
 * and which to delete, decided from sizes, modification times and the
 * consumers' committed offsets only.  The plan never deletes out of the
 * middle: deletions are always a prefix of the oldest items, so what
 * remains is contiguous.
 */
#ifndef AISTACK_RETENTION_H
#define AISTACK_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#define RETAIN_NEVER UINT64_MAX

struct retain_item {
	/* inputs */
	uint64_t base;		/* logical offset of the first byte */
	uint64_t end;		/* logical offset just after the last byte */
	uint64_t disk;		/* bytes on disk */
	int64_t mtime_ms;	/* modification time, ms since the epoch */
	int gz;			/* already compressed */
	/* outputs */
	int compress;		/* compress it */
	int delete;		/* delete it */
	int kept;		/* due for deletion but unread by a consumer */
	uint64_t unread;	/* unread bytes a forced deletion drops */
};

struct retain_policy {
	int64_t now_ms;
	uint64_t compress_after_ms;	/* RETAIN_NEVER: never */
	uint64_t delete_after_ms;	/* RETAIN_NEVER: never */
	uint64_t max_total;		/* bytes; RETAIN_NEVER: no limit */
	uint64_t other_bytes;		/* counted in the total, never deleted */
	uint64_t min_committed;		/* lowest consumer offset; UINT64_MAX: none */
	int force;			/* delete unread items too */
};

struct retain_summary {
	size_t ndelete, ncompress, nkept;
	uint64_t deleted_bytes;		/* on disk */
	uint64_t unread;		/* unread bytes dropped (with force) */
};

/*
 * Plan v[0..n) (sorted oldest first) under p.  An item is due for
 * deletion when it is at least delete_after old, or while the total
 * (other_bytes plus every item's disk bytes not yet deleted) exceeds
 * max_total.  Deletion walks from the oldest item and stops at the first
 * one that is not due, or that a consumer has not fully read
 * (min_committed < end) unless force.  Items not deleted that are plain
 * and at least compress_after old are compressed.  Sets the outputs of
 * every item and fills s (when not NULL).
 */
void retain_plan(struct retain_item *v, size_t n, const struct retain_policy *p,
    struct retain_summary *s);

#endif
