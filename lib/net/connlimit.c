#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/siphash.h"
#include "connlimit.h"
#include "ratelimit.h"

struct client {
	unsigned char key[RATELIMIT_KEY_LEN];
	unsigned n;			/* connections open */
	struct client *next;		/* hash chain */
};

struct connlimit {
	pthread_mutex_t mu;
	unsigned per_client;
	unsigned prefix6;		/* an IPv6 client: this many bits */
	uint64_t k0, k1;
	struct client **heads;
	size_t mask;			/* heads - 1, a power of two less 1 */
	size_t clients;
};

struct connlimit *
connlimit_new(size_t max_connections, unsigned per_client, unsigned prefix6)
{
	struct connlimit *cl;
	size_t n = 16;

	while (n < max_connections && n < ((size_t)1 << 24))
		n <<= 1;
	if ((cl = calloc(1, sizeof(*cl))) == NULL ||
	    (cl->heads = calloc(n, sizeof(struct client *))) == NULL) {
		free(cl);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&cl->mu, NULL);
	cl->per_client = per_client;
	cl->prefix6 = prefix6 < 1 ? 1 : prefix6 > 128 ? 128 : prefix6;
	cl->k0 = siphash_random_key();
	cl->k1 = siphash_random_key();
	cl->mask = n - 1;
	return cl;
}

void
connlimit_free(struct connlimit *cl)
{
	struct client *c;
	size_t i;

	if (cl == NULL)
		return;
	for (i = 0; i <= cl->mask; i++)
		while ((c = cl->heads[i]) != NULL) {
			cl->heads[i] = c->next;
			free(c);
		}
	free(cl->heads);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

/* The chain link that holds (or would hold) key. */
static struct client **
find(struct connlimit *cl, const unsigned char *key)
{
	struct client **pp;

	pp = &cl->heads[siphash16(cl->k0, cl->k1, key) & cl->mask];
	while (*pp != NULL && memcmp((*pp)->key, key, RATELIMIT_KEY_LEN) != 0)
		pp = &(*pp)->next;
	return pp;
}

int
connlimit_enter(struct connlimit *cl, const struct sockaddr *sa)
{
	unsigned char key[RATELIMIT_KEY_LEN];
	struct client **pp, *c;
	int rc;

	ratelimit_key(sa, cl->prefix6, key);
	pthread_mutex_lock(&cl->mu);
	pp = find(cl, key);
	if ((c = *pp) == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			pthread_mutex_unlock(&cl->mu);
			return -1;
		}
		memcpy(c->key, key, sizeof(key));
		*pp = c;
		cl->clients++;
	}
	c->n++;
	rc = c->n <= cl->per_client;
	pthread_mutex_unlock(&cl->mu);
	return rc;
}

void
connlimit_leave(struct connlimit *cl, const struct sockaddr *sa)
{
	unsigned char key[RATELIMIT_KEY_LEN];
	struct client **pp, *c;

	ratelimit_key(sa, cl->prefix6, key);
	pthread_mutex_lock(&cl->mu);
	pp = find(cl, key);
	if ((c = *pp) != NULL && --c->n == 0) {
		*pp = c->next;
		free(c);
		cl->clients--;
	}
	pthread_mutex_unlock(&cl->mu);
}

size_t
connlimit_clients(struct connlimit *cl)
{
	size_t n;

	pthread_mutex_lock(&cl->mu);
	n = cl->clients;
	pthread_mutex_unlock(&cl->mu);
	return n;
}
