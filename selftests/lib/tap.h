/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tap.h - minimal TAP 13 output for C tests, shaped like the kernel's
 * selftests: bool-returning ASSERT_* that print the failing values, one
 * "ok N - name" / "not ok N - name" per test, and a summary exit code.
 *
 *   static void test_x(void) { if (!ASSERT_EQ(a, b, "a is b")) return; ... }
 *   int main(void) { tap_plan(0); TAP_RUN(test_x); return tap_done(); }
 *
 * A test passes when it ran no failing ASSERT; tap_skip() marks it skipped.
 */
#ifndef __IDN_SELFTESTS_TAP_H
#define __IDN_SELFTESTS_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed, tap_cur_fail, tap_cur_skip;
static char tap_skip_why[256];

static inline void tap_plan(int n)
{
	printf("TAP version 13\n");
	if (n)
		printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_skip(const char *why)
{
	tap_cur_skip = 1;
	snprintf(tap_skip_why, sizeof(tap_skip_why), "%s", why);
}

static inline void tap_result(const char *name)
{
	tap_n++;
	if (tap_cur_fail) {
		tap_failed++;
		printf("not ok %d - %s\n", tap_n, name);
	} else if (tap_cur_skip) {
		printf("ok %d - %s # SKIP %s\n", tap_n, name, tap_skip_why);
	} else {
		printf("ok %d - %s\n", tap_n, name);
	}
	tap_cur_fail = tap_cur_skip = 0;
	fflush(stdout);
}

#define TAP_RUN(fn) do { fn(); tap_result(#fn); } while (0)

static inline int tap_done(void)
{
	printf("# %d tests, %d failed\n", tap_n, tap_failed);
	return tap_failed ? 1 : 0;
}

#define TAP_FAIL(fmt, ...) do {						\
	tap_cur_fail = 1;						\
	printf("# FAIL %s:%d: " fmt "\n", __func__, __LINE__, ##__VA_ARGS__); \
} while (0)

#define ASSERT_TRUE(c, tag) ({						\
	int __ok = !!(c);						\
	if (!__ok) TAP_FAIL("%s: expected true: %s", tag, #c);		\
	__ok; })

#define ASSERT_EQ(a, b, tag) ({						\
	long long __a = (long long)(a), __b = (long long)(b);		\
	int __ok = __a == __b;						\
	if (!__ok) TAP_FAIL("%s: %s == %lld, expected %lld", tag, #a, __a, __b); \
	__ok; })

#define ASSERT_NEQ(a, b, tag) ({					\
	long long __a = (long long)(a), __b = (long long)(b);		\
	int __ok = __a != __b;						\
	if (!__ok) TAP_FAIL("%s: %s == %lld, expected otherwise", tag, #a, __a); \
	__ok; })

#define ASSERT_OK(e, tag) ({						\
	long long __e = (long long)(e);					\
	int __ok = __e == 0;						\
	if (!__ok) TAP_FAIL("%s: %s returned %lld", tag, #e, __e);	\
	__ok; })

#define ASSERT_MEM(a, b, n, tag) ({					\
	int __ok = memcmp((a), (b), (n)) == 0;				\
	if (!__ok) TAP_FAIL("%s: %zu bytes differ", tag, (size_t)(n));	\
	__ok; })

#endif /* __IDN_SELFTESTS_TAP_H */
