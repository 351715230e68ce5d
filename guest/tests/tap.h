/* SPDX-License-Identifier: MIT */
/* tap.h - a minimal TAP producer for the guest tests. */
#ifndef VGPU_TAP_H
#define VGPU_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static unsigned int tap_n, tap_failed;

__attribute__((format(printf, 2, 3)))
__attribute__((unused)) static bool tap_ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s %u - ", cond ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

__attribute__((format(printf, 1, 2)))
__attribute__((unused)) static void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Compare two integers; on mismatch print both. */
__attribute__((format(printf, 3, 4)))
__attribute__((unused)) static bool tap_eq(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	bool cond = got == want;

	printf("%s %u - ", cond ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		printf("#   got %lld, want %lld\n", got, want);
		tap_failed++;
	}
	fflush(stdout);
	return cond;
}

__attribute__((unused)) static int tap_done(void)
{
	printf("1..%u\n", tap_n);
	if (tap_failed)
		printf("# %u of %u failed\n", tap_failed, tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
