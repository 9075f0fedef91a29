/*
 * Shared by the fuzz targets: each defines LLVMFuzzerTestOneInput, is
 * linked with libFuzzer by "make fuzz" (build-fuzz/fuzz/fuzz-NAME) and
 * with replay.c by the normal build ($(BUILD)/fuzz/replay-NAME), which
 * "make check" runs over the committed corpus fuzz/corpus/NAME.
 *
 * A target reports a broken property with FUZZ_CHECK, which prints the
 * condition and aborts, so that libFuzzer saves the input as a crash.
 */
#ifndef AISTACK_FUZZ_H
#define AISTACK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: property failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* A NUL-terminated copy of data[0..size) (caller frees). */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

#endif
