/*
 * jq-style paths into a JSON value, evaluated on its text without
 * building a tree.  A list of paths, as given to "aistack-dedup -k":
 *
 *   list   = path *( "," path )
 *   path   = "." / 1*step              "." alone is the whole value
 *   step   = "." name / "." string / ["."] "[" index "]" / ["."] "[" string "]"
 *   name   = ( ALPHA / "_" ) *( ALPHA / DIGIT / "_" )
 *   string = a JSON string literal: "odd key", "a\"b", "caf\u00e9"
 *   index  = [ "-" ] 1*DIGIT           negative counts from the end
 *
 * No white space is allowed; a comma inside a string literal belongs to
 * the name.  Examples: .prompt   .task.prompt   .messages[1].content
 * .messages[-1]   ."odd key"   .a["b c"][0]   .prompt,.response
 *
 * A path's value is "absent" (distinct from null) when a step finds no
 * such member, an index out of range, or a value of another type (where
 * jq would fail: .a.b when .a is a string).  When an object repeats a
 * name, the last member wins, as in lib/format/canon.h.
 *
 * Evaluating a path reads the text once per step at most, skipping values
 * (strings eight bytes at a time, lib/format/json.h) without decoding them: the
 * cost is linear in the text, whatever its escapes.
 */
#ifndef AISTACK_KEYPATH_H
#define AISTACK_KEYPATH_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

enum keypath_step_type { KEYPATH_NAME, KEYPATH_INDEX };

struct keypath_step {
	enum keypath_step_type type;
	char *name;		/* KEYPATH_NAME: decoded UTF-8, owned */
	size_t len;
	long long index;	/* KEYPATH_INDEX */
};

struct keypath {
	struct keypath_step *steps;	/* owned; none for "." */
	size_t n;
};

struct keypath_list {
	struct keypath *v;		/* owned */
	size_t n;
};

/*
 * Parse a list of paths into l (release with keypath_list_release).  A
 * syntax error fails with EXIT_USAGE and a message naming the list and
 * the character (".a.: expected a name, a string or '[' at character 4").
 */
int keypath_parse(const char *s, struct keypath_list *l, struct error *e);

void keypath_list_release(struct keypath_list *l);

/*
 * Find the value of path kp in the valid JSON text p[0..n).  Returns 1
 * with *vp and *vn set to the value's text (borrowed from p, without
 * surrounding white space), or 0 when the path is absent.  Invalid text
 * never makes it read outside p[0..n).
 */
int keypath_get(const struct keypath *kp, const char *p, size_t n,
    const char **vp, size_t *vn);

/*
 * Append the list in one canonical spelling to out (".a.b,.c[1],.\"x y\""),
 * the same for every way of writing the same paths.
 */
int keypath_list_str(const struct keypath_list *l, struct buf *out);

#endif
