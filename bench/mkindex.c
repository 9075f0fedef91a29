/*
 * mkindex PATH N: add N random keys to the aistack-dedup index or state
 * at PATH (made first by a real aistack-dedup run, so that its key
 * definition and mark are the real ones), through lib/dedup/keystore.c itself,
 * committing a million at a time.  bench/flow.sh uses it to make indexes
 * of 1M and 10M keys in seconds instead of deduplicating a 10M-record
 * dataset first: a lookup costs the same whatever keys the table holds,
 * since digests are uniformly distributed either way.
 *
 * Built by bench/flow.sh: cc -O2 -Ilib bench/mkindex.c lib/dedup/keystore.c ...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/keystore.h"

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int
main(int argc, char **argv)
{
	struct keystore ks;
	struct error e;
	uint64_t n, i, seed = 7, a, b;
	unsigned char d[DIGEST_BYTES];

	if (argc != 3) {
		fprintf(stderr, "usage: mkindex PATH N\n");
		return 64;
	}
	n = strtoull(argv[2], NULL, 10);
	memset(&e, 0, sizeof(e));
	if (keystore_open(&ks, argv[1], 0, 0, &e) != 0) {
		fprintf(stderr, "mkindex: %s: %s\n", argv[1],
		    e.msg[0] ? e.msg : "no such index (run aistack-dedup -a first)");
		return 66;
	}
	for (i = 0; i < n; i++) {
		a = splitmix(&seed);
		b = splitmix(&seed);
		memcpy(d, &a, 8);
		memcpy(d + 8, &b, 8);
		if (keystore_add(&ks, d, NULL) == -1) {
			perror("mkindex");
			return 70;
		}
		if ((i + 1) % 1000000 == 0 && keystore_save(&ks, &e) == -1) {
			fprintf(stderr, "mkindex: %s\n", e.msg);
			return 74;
		}
	}
	if (keystore_save(&ks, &e) == -1) {
		fprintf(stderr, "mkindex: %s\n", e.msg);
		return 74;
	}
	keystore_close(&ks);
	return 0;
}
