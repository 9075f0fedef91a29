/*
 * A small unit-test harness for lib/.  Each TEST registers itself at load
 * time; the runner forks for each test (a crash fails that test only),
 * runs it in a fresh temporary directory that is also AISTACK_STATE_DIR,
 * and prints "N passed, N failed" as its last line.
 */
#ifndef AISTACK_UNIT_H
#define AISTACK_UNIT_H

#include <stdint.h>
#include <string.h>

typedef void (*unit_fn)(void);

void unit_register(const char *name, unit_fn fn);
void unit_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The test's temporary directory (also the current directory). */
const char *unit_tmpdir(void);

#define TEST(name)							\
	static void test_##name(void);					\
	__attribute__((constructor)) static void reg_##name(void)	\
	{ unit_register(#name, test_##name); }				\
	static void test_##name(void)

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		unit_fail(__FILE__, __LINE__, "%s", #cond);		\
		return;							\
	}								\
} while (0)

#define CHECK_INT(a, b) do {						\
	long long a_ = (long long)(a), b_ = (long long)(b);		\
	if (a_ != b_) {							\
		unit_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", \
		    #a, #b, a_, b_);					\
		return;							\
	}								\
} while (0)

#define CHECK_U64(a, b) do {						\
	uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);		\
	if (a_ != b_) {							\
		unit_fail(__FILE__, __LINE__, "%s == %s (%llu != %llu)", \
		    #a, #b, (unsigned long long)a_, (unsigned long long)b_); \
		return;							\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *a_ = (a), *b_ = (b);				\
	if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {		\
		unit_fail(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", \
		    #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");	\
		return;							\
	}								\
} while (0)

#endif
