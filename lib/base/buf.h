/*
 * A growable byte buffer.  The buffer owns data; buf_release frees it and
 * leaves an empty buffer that can be reused.  Functions that grow the
 * buffer return -1 with errno ENOMEM and leave the contents unchanged.
 */
#ifndef AISTACK_BUF_H
#define AISTACK_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

/* Make room for at least extra more bytes. */
int buf_reserve(struct buf *b, size_t extra);

int buf_append(struct buf *b, const void *p, size_t n);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append n bytes as the inside of a JSON string (escaped, no quotes).
 * The bytes must be valid UTF-8 (checked by the caller). */
int buf_json_escape(struct buf *b, const char *p, size_t n);

/* Append n bytes as standard base64 with padding. */
int buf_base64(struct buf *b, const unsigned char *p, size_t n);

/* Drop the first n bytes, moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* NUL-terminate without counting the NUL in len; returns data or NULL. */
char *buf_cstr(struct buf *b);

void buf_release(struct buf *b);

#endif
