/*
 * The state directory: $AISTACK_STATE_DIR, else $STATE_DIRECTORY (the
 * first of its colon-separated entries, as systemd sets it), else
 * $XDG_STATE_HOME/aistack, else $HOME/.local/state/aistack.  Created on
 * first use with mode 0700.
 */
#ifndef AISTACK_STATEDIR_H
#define AISTACK_STATEDIR_H

#include <stddef.h>

#include "err.h"

#define NAME_MAX_LEN 64

/* Write the state directory's path to buf, creating it if missing. */
int statedir_get(char *buf, size_t n, struct error *e);

/* Write statedir/sub to buf, creating both if missing (mode 0700). */
int statedir_sub(char *buf, size_t n, const char *sub, struct error *e);

/* Nonzero when s is a NAME: [a-z0-9][a-z0-9._-]{0,63}. */
int name_valid(const char *s);

/*
 * Resolve a NAME-or-path operand: a NAME becomes statedir/sub/NAME, an
 * operand containing '/' is used as it is.  The directory sub is created
 * when a NAME is given.  Anything else fails with EXIT_USAGE.
 */
int statedir_resolve(const char *arg, const char *sub, char *buf, size_t n,
    struct error *e);

enum names_kind {
	NAMES_DIRS,		/* directories only */
	NAMES_FILES		/* regular files only */
};

/*
 * List the entries of dir whose names are NAMEs (so never a temporary or
 * lock file, which start with '.'), of the given kind, sorted.  A missing
 * dir has none.  The caller frees the list with names_free.
 */
int names_list(const char *dir, enum names_kind kind, char ***names,
    size_t *n, struct error *e);
void names_free(char **names, size_t n);

#endif
