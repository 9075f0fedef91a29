#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "format/canon.h"
#include "dedupkey.h"

void
dedupkey_def_release(struct dedupkey_def *def)
{
	if (def == NULL)
		return;
	keypath_list_release(&def->paths);
}

int
dedupkey_def_str(const struct dedupkey_def *def, struct buf *out)
{
	char norm[32];

	switch (def->mode) {
	case DEDUPKEY_CANON:
		if (buf_printf(out, "key canonical") == -1)
			return -1;
		break;
	case DEDUPKEY_EXACT:
		if (buf_printf(out, "key exact") == -1)
			return -1;
		break;
	case DEDUPKEY_PATHS:
		if (buf_printf(out, "key paths ") == -1 ||
		    keypath_list_str(&def->paths, out) == -1)
			return -1;
		break;
	}
	canon_flags_str(def->norm, norm, sizeof(norm));
	return buf_printf(out, "\nnormalize %s\n", def->norm ? norm : "none");
}

int
dedupkey_init(struct dedupkey *k)
{
	memset(k, 0, sizeof(*k));
	if ((k->canon = canon_new()) == NULL ||
	    (k->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (k->md_ctx = EVP_MD_CTX_new()) == NULL) {
		dedupkey_release(k);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
dedupkey_release(struct dedupkey *k)
{
	if (k == NULL)
		return;
	canon_free(k->canon);
	EVP_MD_CTX_free(k->md_ctx);
	EVP_MD_free(k->md);
	buf_release(&k->key);
	memset(k, 0, sizeof(*k));
}

static int
sha256(struct dedupkey *k, const void *p, size_t n,
    unsigned char d[DEDUPKEY_DIGEST])
{
	unsigned len;

	if (!EVP_DigestInit_ex(k->md_ctx, k->md, NULL) ||
	    !EVP_DigestUpdate(k->md_ctx, p, n) ||
	    !EVP_DigestFinal_ex(k->md_ctx, d, &len) || len != DEDUPKEY_DIGEST) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* The key bytes of p[0..n) into k->key (and its text). */
static int
key_bytes(struct dedupkey *k, const struct dedupkey_def *def, const char *p,
    size_t n, struct buf *text)
{
	const char *vp;
	size_t vn, i;

	k->key.len = 0;
	if (def->mode == DEDUPKEY_CANON)
		return canon_value_text(k->canon, p, n, def->norm, &k->key, text);
	for (i = 0; i < def->paths.n; i++) {
		if (keypath_get(&def->paths.v[i], p, n, &vp, &vn)) {
			if (canon_value_text(k->canon, vp, vn, def->norm, &k->key,
			    text) == -1)
				return -1;
		} else if (buf_putc(&k->key, '\x01') == -1)
			return -1;
		if (buf_putc(&k->key, '\n') == -1)
			return -1;
	}
	return 0;
}

int
dedupkey_digest(struct dedupkey *k, const struct dedupkey_def *def,
    const char *p, size_t n, unsigned char d[DEDUPKEY_DIGEST],
    struct buf *text)
{
	if (def->mode == DEDUPKEY_EXACT) {
		if (text != NULL && buf_append(text, p, n) == -1)
			return -1;
		return sha256(k, p, n, d);
	}
	if (key_bytes(k, def, p, n, text) == -1)
		return -1;
	return sha256(k, k->key.data, k->key.len, d);
}
