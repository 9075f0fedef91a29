#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "exitcode.h"
#include "fsutil.h"

#define CONFIG_MAX_BYTES (1024 * 1024)

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static int
add_entry(struct config *c, const char *section, const char *key,
    const char *value, int line)
{
	struct config_entry *ne, *en;

	ne = realloc(c->entries, (c->n + 1) * sizeof(*ne));
	if (ne == NULL)
		return -1;
	c->entries = ne;
	en = &ne[c->n];
	en->section = strdup(section);
	en->key = strdup(key);
	en->value = strdup(value);
	en->line = line;
	if (en->section == NULL || en->key == NULL || en->value == NULL) {
		free(en->section);
		free(en->key);
		free(en->value);
		return -1;
	}
	c->n++;
	return 0;
}

/* Normalise a section header's inside: trimmed, single spaces, lower-case kind. */
static int
parse_section(char *in, char *out, size_t n)
{
	size_t o = 0;
	int space = 0;

	in = trim(in);
	if (*in == '\0')
		return -1;
	for (; *in != '\0'; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch == ' ' || ch == '\t') {
			space = 1;
			continue;
		}
		if (ch < 0x21 || ch == '[' || ch == ']' || ch == '"')
			return -1;
		if (space && o + 1 < n)
			out[o++] = ' ';
		space = 0;
		if (o + 1 >= n)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

static int
key_valid(const char *k)
{
	if (*k == '\0')
		return 0;
	for (; *k != '\0'; k++)
		if (!(islower((unsigned char)*k) || isdigit((unsigned char)*k) ||
		    *k == '_' || *k == '-'))
			return 0;
	return 1;
}

int
config_load_file(struct config *c, const char *path, struct error *e)
{
	char *data;
	size_t len;
	int rc;

	memset(c, 0, sizeof(*c));
	if (read_file(path, CONFIG_MAX_BYTES, &data, &len) == -1)
		return error_errno(e, EXIT_CONFIG, "%s", path);
	rc = config_parse(c, path, data, len, e);
	free(data);
	return rc;
}

int
config_parse(struct config *c, const char *path, const char *text,
    size_t len, struct error *e)
{
	char section[256] = "";
	char *data, *line, *next;
	int lineno = 0;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (memchr(text, '\0', len) != NULL)
		return error_set(e, EXIT_CONFIG, "%s: NUL byte in file", path);
	if ((data = malloc(len + 1)) == NULL)
		return error_errno(e, EXIT_SOFTWARE, "%s", path);
	memcpy(data, text, len);
	data[len] = '\0';
	for (line = data; line != NULL && *line != '\0'; line = next) {
		char *p, *eq, *key, *value;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		p = trim(line);
		if (*p == '\0' || *p == '#' || *p == ';')
			continue;
		if (*p == '[') {
			char *close = strrchr(p, ']');
			if (close == NULL || close[1] != '\0') {
				error_set(e, EXIT_CONFIG, "%s:%d: unterminated "
				    "section header", path, lineno);
				goto fail;
			}
			*close = '\0';
			if (parse_section(p + 1, section, sizeof(section)) == -1) {
				error_set(e, EXIT_CONFIG, "%s:%d: invalid section "
				    "name", path, lineno);
				goto fail;
			}
			continue;
		}
		if ((eq = strchr(p, '=')) == NULL) {
			error_set(e, EXIT_CONFIG, "%s:%d: expected \"key = value\"",
			    path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(p);
		value = trim(eq + 1);
		if (!key_valid(key)) {
			error_set(e, EXIT_CONFIG, "%s:%d: invalid key \"%s\"",
			    path, lineno, key);
			goto fail;
		}
		if (section[0] == '\0') {
			error_set(e, EXIT_CONFIG, "%s:%d: \"%s\" outside any "
			    "section", path, lineno, key);
			goto fail;
		}
		if (value[0] == '"') {
			size_t vl = strlen(value);
			if (vl < 2 || value[vl - 1] != '"') {
				error_set(e, EXIT_CONFIG, "%s:%d: unterminated "
				    "quoted value", path, lineno);
				goto fail;
			}
			value[vl - 1] = '\0';
			value++;
		}
		if (add_entry(c, section, key, value, lineno) == -1) {
			error_errno(e, EXIT_SOFTWARE, "%s", path);
			goto fail;
		}
	}
	free(data);
	return 0;
fail:
	free(data);
	config_release(c);
	return -1;
}

int
config_load(struct config *c, struct error *e)
{
	char path[4096];
	const char *v;

	memset(c, 0, sizeof(*c));
	if ((v = getenv("AISTACK_CONFIG")) != NULL && v[0] != '\0')
		return config_load_file(c, v, e);
	if ((v = getenv("XDG_CONFIG_HOME")) != NULL && v[0] != '\0')
		snprintf(path, sizeof(path), "%s/aistack/aistack.conf", v);
	else if ((v = getenv("HOME")) != NULL && v[0] != '\0')
		snprintf(path, sizeof(path), "%s/.config/aistack/aistack.conf", v);
	else
		path[0] = '\0';
	if (path[0] != '\0' && access(path, F_OK) == 0)
		return config_load_file(c, path, e);
	if (access("/etc/aistack/aistack.conf", F_OK) == 0)
		return config_load_file(c, "/etc/aistack/aistack.conf", e);
	return 0;
}

const char *
config_lookup(const struct config *c, const char *section, const char *key,
    char *source)
{
	char env[512];
	const char *v;
	size_t i, o;
	int pass;

	o = (size_t)snprintf(env, sizeof(env), "AISTACK_");
	for (pass = 0; pass < 2; pass++) {
		const char *s = pass == 0 ? section : key;
		for (; *s != '\0' && o + 2 < sizeof(env); s++)
			env[o++] = isalnum((unsigned char)*s) ?
			    (char)toupper((unsigned char)*s) : '_';
		if (pass == 0)
			env[o++] = '_';
	}
	env[o] = '\0';
	if (source != NULL)
		source[0] = '\0';
	if ((v = getenv(env)) != NULL) {
		if (source != NULL)
			snprintf(source, CONFIG_SOURCE_MAX, "%s", env);
		return v;
	}
	if (c == NULL)
		return NULL;
	for (i = c->n; i-- > 0;) {
		if (strcmp(c->entries[i].section, section) != 0 ||
		    strcmp(c->entries[i].key, key) != 0)
			continue;
		if (source != NULL)
			snprintf(source, CONFIG_SOURCE_MAX, "%s:%d", c->path,
			    c->entries[i].line);
		return c->entries[i].value;
	}
	return NULL;
}

size_t
config_lookup_all(const struct config *c, const char *section,
    const char *key, const char ***values)
{
	size_t i, n = 0;

	*values = NULL;
	if (c == NULL || c->n == 0)
		return 0;
	if ((*values = calloc(c->n, sizeof(**values))) == NULL)
		return 0;
	for (i = 0; i < c->n; i++)
		if (strcmp(c->entries[i].section, section) == 0 &&
		    strcmp(c->entries[i].key, key) == 0)
			(*values)[n++] = c->entries[i].value;
	return n;
}

int
secret_file_read(const char *path, char *buf, size_t n, size_t *len,
    struct error *e)
{
	struct stat st;
	ssize_t r;
	int fd;

	*len = 0;
	/* O_NONBLOCK: a FIFO or a device must not hang the caller */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1 && errno == ELOOP)
		return error_set(e, EXIT_CONFIG, "%s: a symbolic link; a "
		    "secret file is never read through one", path);
	if (fd == -1)
		return error_errno(e, EXIT_CONFIG, "%s", path);
	if (fstat(fd, &st) == -1) {
		close(fd);
		return error_errno(e, EXIT_CONFIG, "%s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(e, EXIT_CONFIG, "%s: not a regular file",
		    path);
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		close(fd);
		return error_set(e, EXIT_CONFIG, "%s: owned by uid %u; a "
		    "secret file must be owned by the user reading it (uid %u) "
		    "or root", path, (unsigned)st.st_uid, (unsigned)geteuid());
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return error_set(e, EXIT_CONFIG, "%s: permissions %04o are too "
		    "open; a secret file must be mode 0600 or stricter", path,
		    (unsigned)(st.st_mode & 07777));
	}
	r = read_full(fd, buf, n);
	close(fd);
	if (r < 0) {
		explicit_bzero(buf, n);
		return error_errno(e, EXIT_CONFIG, "%s", path);
	}
	if ((size_t)r == n) {
		explicit_bzero(buf, n);
		return error_set(e, EXIT_CONFIG, "%s: secret too long (%zu "
		    "bytes at most)", path, n - 1);
	}
	*len = (size_t)r;
	return 0;
}

void
config_release(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->entries[i].section);
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	free(c->entries);
	c->entries = NULL;
	c->n = 0;
}

int
config_apply(const char *section, const struct config_option *opts,
    size_t n, int (*given)(void *arg, int opt),
    int (*set)(void *arg, int opt, const char *value, const char *source,
    struct error *e), void *arg, struct error *e)
{
	char src[CONFIG_SOURCE_MAX];
	struct config c;
	const char *v;
	size_t i;
	int rc = 0;

	if (config_load(&c, e) == -1)
		return -1;
	for (i = 0; i < n && rc == 0; i++) {
		if (given(arg, opts[i].opt))
			continue;
		if ((v = config_lookup(&c, section, opts[i].key, src)) != NULL)
			rc = set(arg, opts[i].opt, v, src, e);
	}
	config_release(&c);
	if (rc == -1)
		e->code = EXIT_CONFIG;
	return rc;
}
