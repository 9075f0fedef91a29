#include <string.h>

#include "retention.h"

static int
older(int64_t now, int64_t t, uint64_t after)
{
	if (after == RETAIN_NEVER)
		return 0;
	if (now < t)
		return after == 0;
	return (uint64_t)(now - t) >= after;
}

void
retain_plan(struct retain_item *v, size_t n, const struct retain_policy *p,
    struct retain_summary *s)
{
	struct retain_summary sum;
	uint64_t total = p->other_bytes;
	int blocked = 0;
	size_t i;

	memset(&sum, 0, sizeof(sum));
	for (i = 0; i < n; i++) {
		v[i].compress = v[i].delete = v[i].kept = 0;
		v[i].unread = 0;
		total += v[i].disk;
	}
	for (i = 0; i < n; i++) {
		int due = older(p->now_ms, v[i].mtime_ms, p->delete_after_ms) ||
		    (p->max_total != RETAIN_NEVER && total > p->max_total);
		if (!due)
			break;
		if (!blocked && p->min_committed != UINT64_MAX &&
		    p->min_committed < v[i].end) {
			uint64_t from = p->min_committed > v[i].base ?
			    p->min_committed : v[i].base;
			if (p->force)
				v[i].unread = v[i].end - from;
			else
				blocked = 1;
		}
		if (blocked) {
			/* due, but a consumer has not read it (nor what follows) */
			v[i].kept = 1;
			sum.nkept++;
			continue;
		}
		sum.unread += v[i].unread;
		v[i].delete = 1;
		sum.ndelete++;
		sum.deleted_bytes += v[i].disk;
		total -= v[i].disk;
	}
	for (i = 0; i < n; i++) {
		if (v[i].delete || v[i].gz)
			continue;
		if (older(p->now_ms, v[i].mtime_ms, p->compress_after_ms)) {
			v[i].compress = 1;
			sum.ncompress++;
		}
	}
	if (s != NULL)
		*s = sum;
}
