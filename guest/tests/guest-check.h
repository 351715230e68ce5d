/* SPDX-License-Identifier: MIT */
/*
 * guest-check.h - checks shared by the guest programs that run against the
 * device (vgpu-test, vgpu-stress, vgpu-load): test patterns, rd64, the
 * driver's debugfs accounting, VmPin, and dropping CAP_IPC_LOCK.
 * Header-only (static functions).
 */
#ifndef VGPU_GUEST_CHECK_H
#define VGPU_GUEST_CHECK_H

#include <endian.h>
#include <glob.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* Deterministic bytes from a seed. */
static inline void fill_pattern(void *p, size_t size, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	uint8_t *b = p;
	size_t off;

	for (off = 0; off + 8 <= size; off += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + off, &x, 8);
	}
	for (; off < size; off++)
		b[off] = (uint8_t)(x >> (off % 8));
}

/* A little-endian 64-bit value at p (any alignment). */
static inline uint64_t rd64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline bool all_bytes(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

static inline uint64_t gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * Fault in the pages of [p, p + size) in the order i * step mod n, step
 * coprime to n and far from 1: pages are allocated in fault order, so
 * neighbours get physical pages far apart (one mem entry a page).
 */
static inline void populate_scattered(uint8_t *p, size_t size, long page)
{
	uint64_t n = size / (uint64_t)page, step = n / 2 + 1 + (n / 7) * 2;

	while (gcd_u64(step, n) != 1)
		step++;
	for (uint64_t i = 0, k = 0; i < n; i++, k = (k + step) % n)
		p[k * (uint64_t)page] = 1;
}

/* ---- the driver's accounting ---- */

/* The debugfs file once found; empty before (or when there is none). */
static char debugfs_path[256];

/* Locate /sys/kernel/debug/dri/N/virtio-gpu-userptr; false when absent. */
static inline bool debugfs_find(void)
{
	glob_t g;

	if (debugfs_path[0])
		return true;
	if (glob("/sys/kernel/debug/dri/*/virtio-gpu-userptr", 0, NULL, &g) != 0)
		return false;
	snprintf(debugfs_path, sizeof(debugfs_path), "%s", g.gl_pathv[0]);
	globfree(&g);
	return true;
}

/* The debugfs file opened for reading; NULL when absent. */
static inline FILE *debugfs_open(void)
{
	return debugfs_find() ? fopen(debugfs_path, "re") : NULL;
}

/* total_pinned_pages and objects; -1 each when unreadable. */
static inline int debugfs_read(long *pages, long *objects)
{
	char line[256];
	FILE *f;

	*pages = *objects = -1;
	f = debugfs_open();
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "total_pinned_pages %ld", pages) == 1)
			continue;
		sscanf(line, "objects %ld", objects);
	}
	fclose(f);
	return (*pages >= 0 && *objects >= 0) ? 0 : -1;
}

/* Print the debugfs file as TAP comments (for a failed check). */
static inline void debugfs_dump(void)
{
	char line[256];
	int n = 0;
	FILE *f;

	f = debugfs_open();
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && n++ < 40)
		printf("#   | %s", line);
	fclose(f);
}

/* Count debugfs object lines of a pid (column 5). */
static inline long debugfs_objects_of(pid_t pid)
{
	char line[256];
	long n = 0;
	unsigned int id, ents;
	unsigned long pages;
	char acc[8];
	int p;
	FILE *f = debugfs_open();

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %lu %u %7s %d", &id, &pages, &ents, acc, &p) == 5 && p == pid)
			n++;
	fclose(f);
	return n;
}

/*
 * Releases complete when the device answers RESOURCE_UNREF, shortly after
 * the handle is gone: poll, bounded (timeout_ms).
 */
static inline bool debugfs_wait(long want_pages, long want_objects, int timeout_ms, long *pages,
				long *objects)
{
	for (int waited = 0;; waited += 10) {
		if (debugfs_read(pages, objects) == 0 && *pages == want_pages &&
		    *objects == want_objects)
			return true;
		if (waited >= timeout_ms) {
			debugfs_dump();
			return false;
		}
		usleep(10000);
	}
}

/* VmPin of a process in kB (0 = self), -1 when /proc does not say. */
static inline long vm_pin_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Poll this process's VmPin until it is want_kb, bounded (timeout_ms). */
static inline bool vm_pin_wait(long want_kb, int timeout_ms, long *got)
{
	for (int waited = 0;; waited += 10) {
		*got = vm_pin_kb(0);
		if (*got == want_kb)
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(10000);
	}
}

/* Drop CAP_IPC_LOCK (effective, permitted, inheritable): RLIMIT_MEMLOCK applies. */
static inline int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
	return (int)syscall(SYS_capset, &h, d);
}

#endif
