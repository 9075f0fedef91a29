/*
 * The dashboard's files inside the binary: the build assembles each file
 * of dashboard/ into the program (the assembler's .incbin, written by
 * cmd/proxy/embed.sh) and lists them here, ended by a NULL name.
 */
#ifndef AISTACK_PROXY_EMBED_H
#define AISTACK_PROXY_EMBED_H

struct embedded_file {
	const char *name;		/* "index.html" */
	const char *start, *end;	/* its bytes (static) */
};

extern const struct embedded_file dashboard_embedded[];

#endif
