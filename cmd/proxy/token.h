/*
 * The bearer token's rules, made from the bytes of its file or variable:
 * pure (no I/O, no state), so that tests/unit links it.
 *
 * A token is bytes, compared over its whole length: one trailing newline
 * (LF or CRLF) of the file is not part of it; an empty token, one with a
 * NUL or another control byte (0x00-0x1f, 0x7f), one of white space only,
 * and one that begins or ends with a space (a client's Authorization
 * header could never carry it: the credential's spaces are trimmed) are
 * refused.
 */
#ifndef AISTACK_PROXY_TOKEN_H
#define AISTACK_PROXY_TOKEN_H

#include <stddef.h>

/* The token in the n bytes at s: its length (s's first bytes), or -1 with
 * *why set to the reason it is refused ("empty", "a NUL byte at offset
 * 3", ...; why must hold 64 bytes).  nl nonzero: s is a file's content,
 * whose one trailing LF or CRLF is left out. */
long token_parse(const char *s, size_t n, int nl, char *why, size_t whylen);

#endif
