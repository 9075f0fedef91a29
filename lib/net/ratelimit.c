#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/siphash.h"
#include "ratelimit.h"

#define NIL		UINT32_MAX
#define MIN_SHADOW	1024
#define MAX_CLIENTS	(1u << 30)

struct bucket {
	unsigned char key[RATELIMIT_KEY_LEN];
	uint64_t tat;		/* theoretical arrival time, microseconds */
	uint32_t hash;		/* low bits of the table hash */
	uint32_t next;		/* hash chain */
	uint32_t newer, older;	/* use order */
};

struct ratelimit {
	pthread_mutex_t mu;
	struct ratelimit_settings set;
	uint64_t interval_us;	/* one token */
	uint64_t tau_us;	/* burst * interval */
	uint64_t k0, k1;	/* SipHash key of the table */
	uint64_t s0, s1;	/* SipHash key of the shadow */
	struct bucket *b;
	uint32_t nb;		/* buckets in use */
	uint32_t *heads;
	uint32_t nheads;	/* a power of two */
	uint32_t newest, oldest;
	uint64_t *shadow;	/* 2 * nshadow arrival times */
	uint32_t nshadow;	/* a power of two */
	size_t memory;
	uint64_t evicted, evicted_unrefilled, allowed, refused;
};

/* --- the table ----------------------------------------------------------- */

void
ratelimit_settings_init(struct ratelimit_settings *s)
{
	s->per_min = 60;
	s->burst = 0;
	s->max_clients = 65536;
	s->prefix6 = 64;
}

static uint32_t
pow2_at_least(size_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

struct ratelimit *
ratelimit_new(const struct ratelimit_settings *s)
{
	struct ratelimit *rl;
	uint32_t i;

	if (!(s->per_min > 0) || !isfinite(s->per_min) || s->max_clients == 0 ||
	    s->max_clients > MAX_CLIENTS || s->prefix6 > 128) {
		errno = EINVAL;
		return NULL;
	}
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return NULL;
	pthread_mutex_init(&rl->mu, NULL);
	rl->set = *s;
	if (rl->set.burst == 0)
		rl->set.burst = (uint64_t)ceil(s->per_min);
	rl->interval_us = (uint64_t)ceil(60e6 / s->per_min);
	if (rl->interval_us == 0)
		rl->interval_us = 1;
	if (rl->set.burst > UINT64_MAX / 4 / rl->interval_us) {
		ratelimit_free(rl);
		errno = EINVAL;
		return NULL;
	}
	rl->tau_us = rl->set.burst * rl->interval_us;
	rl->nheads = pow2_at_least(s->max_clients);
	rl->nshadow = pow2_at_least(s->max_clients / 2 > MIN_SHADOW ?
	    s->max_clients / 2 : MIN_SHADOW);
	rl->b = calloc(s->max_clients, sizeof(*rl->b));
	rl->heads = malloc(rl->nheads * sizeof(*rl->heads));
	rl->shadow = calloc(2 * (size_t)rl->nshadow, sizeof(*rl->shadow));
	if (rl->b == NULL || rl->heads == NULL || rl->shadow == NULL) {
		ratelimit_free(rl);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < rl->nheads; i++)
		rl->heads[i] = NIL;
	rl->newest = rl->oldest = NIL;
	rl->memory = sizeof(*rl) + s->max_clients * sizeof(*rl->b) +
	    rl->nheads * sizeof(*rl->heads) +
	    2 * (size_t)rl->nshadow * sizeof(*rl->shadow);
	rl->k0 = siphash_random_key();
	rl->k1 = siphash_random_key();
	rl->s0 = siphash_random_key();
	rl->s1 = siphash_random_key();
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl->b);
	free(rl->heads);
	free(rl->shadow);
	free(rl);
}

const struct ratelimit_settings *
ratelimit_settings(const struct ratelimit *rl)
{
	return &rl->set;
}

void
ratelimit_key(const struct sockaddr *sa, unsigned prefix6,
    unsigned char key[RATELIMIT_KEY_LEN])
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const struct sockaddr_in *in;
	const struct sockaddr_in6 *in6;
	unsigned i;

	memset(key, 0, RATELIMIT_KEY_LEN);
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		in = (const struct sockaddr_in *)(const void *)sa;
		memcpy(key, mapped, sizeof(mapped));
		memcpy(key + 12, &in->sin_addr, 4);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	in6 = (const struct sockaddr_in6 *)(const void *)sa;
	memcpy(key, &in6->sin6_addr, 16);
	if (memcmp(key, mapped, sizeof(mapped)) == 0)
		return;			/* an IPv4 client */
	for (i = 0; i < 128; i++)
		if (i >= prefix6)
			key[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
}

/* The two shadow slots of a key. */
static void
shadow_slots(const struct ratelimit *rl, const unsigned char *key,
    uint64_t **a, uint64_t **b)
{
	uint64_t h = siphash16(rl->s0, rl->s1, key);

	*a = &rl->shadow[h & (rl->nshadow - 1)];
	*b = &rl->shadow[rl->nshadow + ((h >> 32) & (rl->nshadow - 1))];
}

static void
unlink_use(struct ratelimit *rl, uint32_t i)
{
	struct bucket *e = &rl->b[i];

	if (e->newer != NIL)
		rl->b[e->newer].older = e->older;
	else
		rl->newest = e->older;
	if (e->older != NIL)
		rl->b[e->older].newer = e->newer;
	else
		rl->oldest = e->newer;
}

static void
push_newest(struct ratelimit *rl, uint32_t i)
{
	struct bucket *e = &rl->b[i];

	e->newer = NIL;
	e->older = rl->newest;
	if (rl->newest != NIL)
		rl->b[rl->newest].newer = i;
	rl->newest = i;
	if (rl->oldest == NIL)
		rl->oldest = i;
}

/* Evict the least recently used bucket, keeping its arrival time in the
 * shadow when it has not refilled; returns its index for reuse. */
static uint32_t
evict_oldest(struct ratelimit *rl, uint64_t now)
{
	uint32_t i = rl->oldest, *pp;
	struct bucket *e = &rl->b[i];
	uint64_t *a, *b;

	unlink_use(rl, i);
	for (pp = &rl->heads[e->hash & (rl->nheads - 1)]; *pp != i;
	    pp = &rl->b[*pp].next)
		;
	*pp = e->next;
	rl->evicted++;
	if (e->tat > now) {
		rl->evicted_unrefilled++;
		shadow_slots(rl, e->key, &a, &b);
		if (*a < e->tat)
			*a = e->tat;
		if (*b < e->tat)
			*b = e->tat;
	}
	return i;
}

static struct bucket *
lookup(struct ratelimit *rl, const unsigned char *key, uint64_t now)
{
	uint64_t h = siphash16(rl->k0, rl->k1, key);
	uint32_t head = (uint32_t)h & (rl->nheads - 1), i;
	uint64_t *a, *b;
	struct bucket *e;

	for (i = rl->heads[head]; i != NIL; i = rl->b[i].next)
		if (memcmp(rl->b[i].key, key, RATELIMIT_KEY_LEN) == 0) {
			if (rl->newest != i) {
				unlink_use(rl, i);
				push_newest(rl, i);
			}
			return &rl->b[i];
		}
	if (rl->nb < rl->set.max_clients)
		i = rl->nb++;
	else
		i = evict_oldest(rl, now);
	e = &rl->b[i];
	memcpy(e->key, key, RATELIMIT_KEY_LEN);
	e->hash = (uint32_t)h;
	shadow_slots(rl, key, &a, &b);
	e->tat = *a < *b ? *a : *b;
	e->next = rl->heads[head];
	rl->heads[head] = i;
	push_newest(rl, i);
	return e;
}

static uint64_t
ceil_s(uint64_t us)
{
	return (us + 999999) / 1000000;
}

void
ratelimit_take(struct ratelimit *rl, const unsigned char key[RATELIMIT_KEY_LEN],
    uint64_t now, struct ratelimit_verdict *v)
{
	struct bucket *e;
	uint64_t tat, next;

	pthread_mutex_lock(&rl->mu);
	e = lookup(rl, key, now);
	tat = e->tat > now ? e->tat : now;
	next = tat + rl->interval_us;
	if (next - now > rl->tau_us) {
		rl->refused++;
		v->allowed = 0;
		v->remaining = 0;
		v->retry_after_s = ceil_s(next - now - rl->tau_us);
		if (v->retry_after_s == 0)
			v->retry_after_s = 1;
		v->reset_s = ceil_s(tat - now);
	} else {
		rl->allowed++;
		e->tat = next;
		v->allowed = 1;
		v->remaining = (rl->tau_us - (next - now)) / rl->interval_us;
		v->retry_after_s = 0;
		v->reset_s = ceil_s(next - now);
	}
	pthread_mutex_unlock(&rl->mu);
}

void
ratelimit_take_addr(struct ratelimit *rl, const struct sockaddr *sa,
    uint64_t now_us, struct ratelimit_verdict *v)
{
	unsigned char key[RATELIMIT_KEY_LEN];

	ratelimit_key(sa, rl->set.prefix6, key);
	ratelimit_take(rl, key, now_us, v);
}

void
ratelimit_stats(struct ratelimit *rl, struct ratelimit_stats *st)
{
	pthread_mutex_lock(&rl->mu);
	st->clients = rl->nb;
	st->max_clients = rl->set.max_clients;
	st->memory = rl->memory;
	st->evicted = rl->evicted;
	st->evicted_unrefilled = rl->evicted_unrefilled;
	st->allowed = rl->allowed;
	st->refused = rl->refused;
	pthread_mutex_unlock(&rl->mu);
}
