/*
 * Following a plain JSONL file that other programs append to, for
 * aistack-ingest --follow: only whole lines are handed out, each read is
 * made under the writers' lock, and the position survives restarts and
 * the file being rotated by rename or truncated.
 *
 * The position lives in streams/NAME/sources/KEY (KEY: the file's base
 * name and a hash of its absolute path), replaced atomically: the file's
 * identity (device, inode, and a fingerprint of its first bytes, so that a
 * reused inode is not taken for the same file), the committed byte offset
 * and line count, and, while a batch is being appended, an intent: where
 * the stream's and the rejects stream's heads were, and the length and
 * CRC-32 of what is appended to each.
 *
 * The protocol, per batch: follow_read hands out whole lines; the caller
 * validates them, calls follow_intent, appends and syncs, then calls
 * follow_commit.  After a crash follow_open looks for the intended bytes
 * in the streams: when they landed the batch is committed, when they did
 * not it is read again; when the records landed but the rejects did not,
 * the batch is replayed with its records dropped (FOLLOW_REPLAY).  So a
 * restart neither loses nor duplicates a line, whatever instant the
 * process died at, except that a kill inside the very write(2) of a batch
 * can leave part of it in the stream, which is then appended again.
 *
 * The chain: the position file also lists every file of the source that
 * is not finished, and the finished ones still on disk, each by its
 * identity (device, inode, and the fingerprint of its first bytes), its
 * committed offset and the size last seen.  A file is recognised by its
 * content first (the fingerprint, and a size that holds the offset), its
 * inode second, never by its name: a renamed file, a copy of it, and the
 * gzip form of either (read through zlib) are the same file.  A file that
 * was empty when it joined is known by its inode until a scan sees its
 * first bytes (under a copy name at once; at the path after that scan's
 * new files are decided, and not while a copy being made starts alike),
 * so that its gzip form is known even when it is renamed and compressed
 * between two scans.  On open,
 * when the directory changes, when the path names another file, when the
 * file shrinks or its first bytes change, and on follow_scan (called
 * while paused), the directory is scanned for the rotated siblings of
 * FILE (FILE.N, FILE-YYYYMMDD..., FILE.YYYYMMDDTHHMMSSZ and the ".gz" of
 * any: follow_chain_name): a sibling that holds a listed file takes its
 * place; one that starts with a listed file's first bytes but is shorter
 * than what was read of it (a copy made without the writers' lock while
 * the file was read past it, or a gzip form made while it was still
 * written to) is another form of that file, never a new one; one that is none of
 * them, appeared after the last scan, and comes with a rotation (the
 * content last seen at the path is no longer there) is an unread member
 * of the chain, queued oldest first (by modification time) before the
 * file now at the path.  A sibling present at the first scan, older than
 * the last scan, or new while the path still holds what it held, is not
 * ours and is only remembered (so that rotation may expire it).
 * Files are read in chain order; a rotated file is finished once it has
 * not been written to for half a second (late writers), its unterminated
 * last line handed out as FOLLOW_FINAL; a finished file that grows later
 * (a writer that kept it open) is read on from its end at the next scan.
 *
 * Loss: a listed file that is not finished and is found nowhere (expired
 * or deleted before it was read, or truncated in place with no copy) is
 * never skipped silently: its unread bytes (the size last seen less the
 * offset) are added to lost_bytes_total in the position file and queued
 * as a follow_loss for the caller to report (follow_loss_next).
 */
#ifndef AISTACK_FOLLOW_H
#define AISTACK_FOLLOW_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/lock.h"

#define FOLLOW_FP_MAX 256	/* bytes of a file's start in its fingerprint */

/* Flags of follow_read */
#define FOLLOW_FINAL	0x1	/* ends with the unterminated last line of a finished file */
#define FOLLOW_LONG	0x2	/* part of a line longer than the buffer (no newline) */
#define FOLLOW_REPLAY	0x4	/* these lines' records are already in the stream */

/* What is appended for one batch (see follow_intent). */
struct follow_batch {
	uint64_t lines;		/* lines of the batch (records, rejects, empty) */
	const char *records;	/* the records appended to the stream */
	size_t nrecords;
	const char *rejects;	/* the reject records appended to the rejects stream */
	size_t nrejects;
};

struct follow_intent {
	int active;
	uint64_t offset, lines;		/* the position once the batch is in */
	uint64_t at, len;		/* stream head before, bytes appended */
	uint32_t crc, first_crc;	/* of the bytes; of their first record */
	uint64_t first_len;
	uint64_t rat, rlen;		/* the same for the rejects stream */
	uint32_t rcrc, rfirst_crc;
	uint64_t rfirst_len;
};

struct follow {
	char path[PATH_MAX];	/* the followed file, absolute */
	char given[PATH_MAX];	/* as given, for messages */
	char dir[PATH_MAX];	/* its directory */
	const char *base;	/* its base name (in path) */
	char state[PATH_MAX];	/* the position file */
	char streamdir[PATH_MAX];
	char rejdir[PATH_MAX];	/* the rejects stream ("" when none) */
	char source[PATH_MAX];	/* the file being read now, for messages */
	enum lock_kind lock;
	int fd;			/* the file being read; -1 while there is none */
	uint64_t dev, ino;	/* its identity */
	uint64_t fp_hash;	/* FNV-1a of its first fp_len bytes */
	size_t fp_len;
	uint64_t offset;	/* committed: every line before it is in */
	uint64_t lines;		/* lines committed in this file */
	uint64_t rpos;		/* handed out up to here */
	uint64_t replay_until;	/* [offset, replay_until): records already in */
	uint64_t last_size;	/* the size seen by the last read */
	int draining;		/* rotated away: finish it, then switch */
	struct follow_intent pending;
	int ifd;		/* inotify, or -1 (poll) */
	char note[PATH_MAX + 128];	/* what happened, for -v ("" none) */
	int warn;		/* note is a warning (lines were lost) */
	/* the chain (lib/stream/follow.c) */
	struct follow_file *files;	/* oldest first; files[cur] is the one read */
	size_t nfiles, cap, cur;
	int rescan;		/* look for siblings before the next read */
	int64_t seen_ms;	/* when the directory was last scanned */
	uint64_t lines_total, lost_total;	/* cumulative, kept in the state */
	struct follow_loss *losses;	/* not yet reported */
	size_t nlosses;
	void *gz;		/* gzFile of the file read, when it is a .gz */
	uint64_t gz_dev, gz_ino;	/* that .gz file's identity */
	char *carry;		/* read from the .gz past the last newline */
	size_t ncarry;
	int gz_eof;
};

/* A file of the chain, as the position file keeps it. */
struct follow_file {
	char name[PATH_MAX];	/* where it was last seen */
	uint64_t dev, ino;
	uint64_t fp_hash;
	size_t fp_len;
	uint64_t offset, lines;	/* committed */
	uint64_t size;		/* as last seen (uncompressed) */
	int64_t mtime_ms;
	int done;		/* finished, or not ours */
	int finished;		/* done: read to its end (ours) */
	int gz;			/* last seen in its gzip form */
};

/* Data found gone before it was read. */
struct follow_loss {
	char file[PATH_MAX];
	uint64_t bytes;
};

/*
 * Start following path into the stream directory streamdir, whose
 * rejects go to the stream directory rejdir (NULL: none), reading under
 * the writers' lock of kind k.  Resumes from the saved position,
 * finishing interrupted batches and rotated files as described above; a
 * file never followed before is read from its start.  The file may not
 * exist yet; its directory must.  Release with follow_close.
 */
int follow_open(struct follow *f, const char *streamdir, const char *rejdir,
    const char *path, enum lock_kind k, struct error *e);

/*
 * Hand out the next whole lines, at most room bytes, into buf.  Returns
 * the byte count, 0 when there is nothing new yet (wait with
 * follow_wait), -1 on error; *flags receives FOLLOW_* flags.  The caller
 * processes everything handed out before the next call, and commits it
 * (follow_commit) before reading further, except for FOLLOW_LONG pieces,
 * which are committed with the end of their line.
 */
ssize_t follow_read(struct follow *f, char *buf, size_t room, int *flags,
    struct error *e);

/* Record durably what the batch handed out since the last commit is
 * about to append (call before appending). */
int follow_intent(struct follow *f, const struct follow_batch *b,
    struct error *e);

/*
 * The batch handed out since the last commit is appended and synced:
 * make the position durable.  lines is the number of lines of the file
 * processed so far (the line number of the last one).
 */
int follow_commit(struct follow *f, uint64_t lines, struct error *e);

/* Wait up to timeout_ms for the file or its directory to change (inotify,
 * or a short sleep); returns early on a signal. */
void follow_wait(struct follow *f, int timeout_ms);

void follow_close(struct follow *f);

/*
 * Scan the directory for the siblings of the file now, recording what it
 * finds in the position file (called while the caller is paused, so that
 * what rotation does meanwhile is known).
 */
int follow_scan(struct follow *f, struct error *e);

/*
 * The next loss not yet reported, copied into *l: 1, or 0 when none.
 * Call follow_loss_done once it is reported durably.
 */
int follow_loss_next(struct follow *f, struct follow_loss *l);
int follow_loss_done(struct follow *f, struct error *e);

/* Lines of the file being read committed so far (its line number). */
uint64_t follow_lines(const struct follow *f);

/*
 * Nonzero when name is a rotated sibling of the file named base: base
 * then ".N", ".YYYYMMDDTHHMMSSZ" (aistack-rotate) or "-" or "." and a
 * date of 8 digits with more digits, "T", "Z", "-" or "_" after it
 * (logrotate's dateext), each optionally with ".gz" (then *gz is 1).
 */
int follow_chain_name(const char *base, const char *name, int *gz);

/* A rotated sibling (or the file itself) that a follower has not
 * finished, as follow_holds finds it. */
struct follow_hold {
	char name[NAME_MAX + 1];	/* its base name, as in the directory */
	char stream[NAME_MAX + 1];	/* the follower's stream */
	uint64_t unread;		/* bytes not yet read (may be 0) */
};

/*
 * The files of path's chain that its followers (the position files
 * under streamsdir/STREAM/sources/) have not finished, as they would see
 * them at their next scan: a file that holds an unfinished entry's
 * content, or a sibling that appeared since the follower's last scan and
 * holds none of its entries (then all its bytes are unread).  Fills *v
 * (caller frees) with one entry per file and follower.  Returns 0, or -1
 * (a position file that cannot be read or parsed).
 */
int follow_holds(const char *streamsdir, const char *path,
    struct follow_hold **v, size_t *n, struct error *e);

/* Write the position file's path for path into buf (for tests). */
int follow_state_path(const char *streamdir, const char *path, char *buf,
    size_t n, struct error *e);

#endif
