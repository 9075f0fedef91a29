/* The per-client token bucket: burst then refusal, refill, retry times,
 * clients apart, IPv6 prefixes, the bounded table and what an evicted
 * client gets back. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/ratelimit.h"
#include "unit.h"

#define SEC 1000000ULL

static void
key4(unsigned char key[RATELIMIT_KEY_LEN], const char *ip)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sa.sin_addr);
	ratelimit_key((struct sockaddr *)&sa, 64, key);
}

static struct ratelimit *
table(double per_min, uint64_t burst, size_t max)
{
	struct ratelimit_settings s;

	ratelimit_settings_init(&s);
	s.per_min = per_min;
	s.burst = burst;
	s.max_clients = max;
	return ratelimit_new(&s);
}

/* Requests allowed at instant now for key, up to limit. */
static int
drain(struct ratelimit *rl, const unsigned char *key, uint64_t now, int limit)
{
	struct ratelimit_verdict v;
	int n = 0;

	while (n < limit) {
		ratelimit_take(rl, key, now, &v);
		if (!v.allowed)
			break;
		n++;
	}
	return n;
}

TEST(ratelimit_burst_then_refused)
{
	struct ratelimit *rl = table(5, 0, 16);
	struct ratelimit_verdict v;
	unsigned char k[RATELIMIT_KEY_LEN];
	int i;

	CHECK(rl != NULL);
	CHECK_U64(ratelimit_settings(rl)->burst, 5);
	key4(k, "127.0.0.1");
	for (i = 0; i < 5; i++) {
		ratelimit_take(rl, k, 1000 * SEC, &v);
		CHECK_INT(v.allowed, 1);
		CHECK_U64(v.remaining, (uint64_t)(4 - i));
	}
	ratelimit_take(rl, k, 1000 * SEC, &v);
	CHECK_INT(v.allowed, 0);
	CHECK_U64(v.remaining, 0);
	CHECK_U64(v.retry_after_s, 12);		/* one token: 60 s / 5 */
	CHECK_U64(v.reset_s, 60);
	/* 11.9 s later: still refused, retry in 1 s (rounded up) */
	ratelimit_take(rl, k, 1000 * SEC + 11900000, &v);
	CHECK_INT(v.allowed, 0);
	CHECK_U64(v.retry_after_s, 1);
	ratelimit_take(rl, k, 1012 * SEC, &v);
	CHECK_INT(v.allowed, 1);
	CHECK_U64(v.remaining, 0);
	ratelimit_free(rl);
}

TEST(ratelimit_refill)
{
	struct ratelimit *rl = table(120, 4, 16);	/* 2/s, burst 4 */
	unsigned char k[RATELIMIT_KEY_LEN];

	key4(k, "10.0.0.1");
	CHECK_INT(drain(rl, k, 50 * SEC, 100), 4);
	CHECK_INT(drain(rl, k, 50 * SEC, 100), 0);
	CHECK_INT(drain(rl, k, 51 * SEC, 100), 2);	/* 1 s: 2 tokens */
	CHECK_INT(drain(rl, k, 100 * SEC, 100), 4);	/* never above burst */
	ratelimit_free(rl);
}

TEST(ratelimit_clients_apart_and_retry_at_least_one)
{
	struct ratelimit *rl = table(6000, 1, 16);	/* 100/s, burst 1 */
	struct ratelimit_verdict v;
	unsigned char a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];

	key4(a, "127.0.0.1");
	key4(b, "127.0.0.2");
	CHECK_INT(drain(rl, a, 7 * SEC, 10), 1);
	CHECK_INT(drain(rl, b, 7 * SEC, 10), 1);
	ratelimit_take(rl, a, 7 * SEC, &v);
	CHECK_INT(v.allowed, 0);
	CHECK_U64(v.retry_after_s, 1);		/* 10 ms, but never 0 */
	ratelimit_free(rl);
}

TEST(ratelimit_keys)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	unsigned char a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", &s6.sin6_addr);
	ratelimit_key((struct sockaddr *)&s6, 64, a);
	inet_pton(AF_INET6, "2001:db8:1:2:bbbb::9", &s6.sin6_addr);
	ratelimit_key((struct sockaddr *)&s6, 64, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);	/* one /64, one client */
	ratelimit_key((struct sockaddr *)&s6, 128, b);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &s6.sin6_addr);
	ratelimit_key((struct sockaddr *)&s6, 64, b);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	/* IPv4 and IPv4-mapped IPv6 are the same client, never masked */
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr);
	ratelimit_key((struct sockaddr *)&s4, 64, a);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr);
	ratelimit_key((struct sockaddr *)&s6, 64, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	inet_pton(AF_INET, "192.0.2.8", &s4.sin_addr);
	ratelimit_key((struct sockaddr *)&s4, 64, b);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
}

TEST(ratelimit_table_is_bounded)
{
	struct ratelimit *rl = table(60, 0, 100);
	struct ratelimit_stats st;
	unsigned char k[RATELIMIT_KEY_LEN];
	char ip[32];
	size_t before;
	int i;

	ratelimit_stats(rl, &st);
	before = st.memory;
	CHECK(before > 0);
	for (i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255,
		    i & 255);
		key4(k, ip);
		drain(rl, k, 10 * SEC, 1);
	}
	ratelimit_stats(rl, &st);
	CHECK_U64(st.clients, 100);
	CHECK_U64(st.memory, before);
	CHECK_U64(st.evicted, 4900);
	CHECK_U64(st.evicted_unrefilled, 4900);
	ratelimit_free(rl);
}

/* A client evicted before its bucket refilled comes back no fuller than
 * its own bucket would be: flooding the table with other addresses does
 * not reset it. */
TEST(ratelimit_eviction_gains_nothing)
{
	struct ratelimit *rl = table(60, 10, 64);	/* 1/s, burst 10 */
	struct ratelimit_verdict v;
	unsigned char me[RATELIMIT_KEY_LEN], k[RATELIMIT_KEY_LEN];
	char ip[32];
	int i;

	key4(me, "127.0.0.1");
	CHECK_INT(drain(rl, me, 100 * SEC, 100), 10);
	for (i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "127.1.%d.%d", i >> 8, i & 255);
		key4(k, ip);
		drain(rl, k, 100 * SEC, 1);
	}
	/* evicted: still empty at once, 3 tokens after 3 s, not 10 */
	ratelimit_take(rl, me, 100 * SEC, &v);
	CHECK_INT(v.allowed, 0);
	CHECK_U64(v.retry_after_s, 1);
	for (i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "127.2.%d.%d", i >> 8, i & 255);
		key4(k, ip);
		drain(rl, k, 100 * SEC, 1);
	}
	CHECK(drain(rl, me, 103 * SEC, 100) <= 3);
	ratelimit_free(rl);
}

/* An idle client evicted after refilling is simply full again. */
TEST(ratelimit_idle_eviction_is_full)
{
	struct ratelimit *rl = table(60, 5, 8);
	unsigned char me[RATELIMIT_KEY_LEN], k[RATELIMIT_KEY_LEN];
	char ip[32];
	int i;

	key4(me, "10.9.9.9");
	CHECK_INT(drain(rl, me, 10 * SEC, 100), 5);
	for (i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.8.0.%d", i);
		key4(k, ip);
		drain(rl, k, 20 * SEC, 1);
	}
	/*
	 * At 22 s: the evicted others' shadow times (21 s at the most), which
	 * "me" may share both slots with (the hash key is random), are past,
	 * so only its own eviction could hold it back.
	 */
	CHECK_INT(drain(rl, me, 22 * SEC, 100), 5);
	ratelimit_free(rl);
}

TEST(ratelimit_bad_settings)
{
	struct ratelimit_settings s;

	ratelimit_settings_init(&s);
	s.per_min = 0;
	CHECK(ratelimit_new(&s) == NULL);
	ratelimit_settings_init(&s);
	s.max_clients = 0;
	CHECK(ratelimit_new(&s) == NULL);
	ratelimit_settings_init(&s);
	s.prefix6 = 129;
	CHECK(ratelimit_new(&s) == NULL);
}
