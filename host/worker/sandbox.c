/* SPDX-License-Identifier: MIT */
/*
 * sandbox.c - a worker confines itself before anything of the guest's
 * reaches it.
 *
 * The worker runs the guest's OpenCL kernels, and on a CPU device those
 * are native code in this process: everything this process may do, a
 * kernel may do (PoCL even takes inline assembly). So the process keeps
 * only what compiling and running kernels needs:
 *
 *  - a root of its own (a tmpfs): read-only binds of /usr, the dynamic
 *    loader's files and the OpenCL vendor list, /sys/devices/system/cpu,
 *    /dev/null, /dev/zero, /dev/urandom; copies (plain files) of the few
 *    /proc files PoCL reads, so that there is no procfs, whose
 *    /proc/self/fd links would reopen guest RAM behind the filter's back;
 *    private, size-limited /tmp and compiler cache;
 *  - an unprivileged uid, no capabilities, no new privileges, resource
 *    limits (RLIMIT_DATA rather than RLIMIT_AS, which would count the
 *    windows over guest RAM);
 *  - Landlock, where the kernel has it: read beneath the new root, write
 *    only in /tmp and the cache, execute only the linker PoCL starts;
 *  - a seccomp filter: every mmap() of guest RAM goes to the daemon to be
 *    allowed, every other way to read, write, reopen, resize or duplicate
 *    guest RAM is denied, and so are the calls that reach other processes,
 *    the network, or the kernel's administrative interfaces.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <linux/sched.h>
#include <limits.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../worker_proto.h"

#define NEWROOT "/tmp/root"

static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	if (e) {
		size_t l = strlen(err);

		snprintf(err + l, n - l, ": %s", strerror(e));
	}
	return -1;
}

/* ---- the new root ---- */

static int make_parent_dirs(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return 0;
}

/* Bind src read-only at the same path under NEWROOT; a missing src is
 * skipped (optional) or an error. */
static int bind_ro(const char *src, bool optional, char *err, size_t n)
{
	char dst[PATH_MAX];
	struct stat st;

	if (lstat(src, &st)) {
		if (optional)
			return 0;
		return fail(err, n, "sandbox: %s", src);
	}
	snprintf(dst, sizeof(dst), NEWROOT "%s", src);
	if (make_parent_dirs(dst))
		return fail(err, n, "sandbox: parents of %s", dst);
	if (S_ISLNK(st.st_mode)) {
		/* usrmerge: /lib and friends are links into /usr. */
		char target[PATH_MAX];
		ssize_t l = readlink(src, target, sizeof(target) - 1);

		if (l < 0)
			return fail(err, n, "sandbox: readlink %s", src);
		target[l] = 0;
		if (symlink(target, dst) && errno != EEXIST)
			return fail(err, n, "sandbox: symlink %s", dst);
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(dst, 0755) && errno != EEXIST)
			return fail(err, n, "sandbox: mkdir %s", dst);
	} else {
		int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

		if (fd < 0)
			return fail(err, n, "sandbox: create %s", dst);
		close(fd);
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL))
		return fail(err, n, "sandbox: bind %s", src);
	if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) &&
	    !S_ISCHR(st.st_mode))
		return fail(err, n, "sandbox: read-only %s", dst);
	return 0;
}

/* A plain-file copy of a /proc file (at most 1 MiB). */
static int copy_proc(const char *src, char *err, size_t n)
{
	char dst[PATH_MAX], buf[65536];
	int in, out;
	ssize_t r;
	size_t total = 0;

	snprintf(dst, sizeof(dst), NEWROOT "%s", src);
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return 0; /* the kernel has no such file: the runtime copes */
	out = open(dst, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0444);
	if (out < 0) {
		close(in);
		return fail(err, n, "sandbox: create %s", dst);
	}
	while ((r = read(in, buf, sizeof(buf))) > 0 && total < (1u << 20)) {
		if (write(out, buf, (size_t)r) != r) {
			close(in);
			close(out);
			return fail(err, n, "sandbox: write %s", dst);
		}
		total += (size_t)r;
	}
	close(in);
	close(out);
	return 0;
}

static int build_root(const struct sandbox_config *c, char *err, size_t n)
{
	static const char *const ro[] = {
		"/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
		"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
		"/etc/OpenCL", "/etc/alternatives", "/sys/devices/system/cpu",
		"/dev/null", "/dev/zero", "/dev/urandom",
	};
	static const char *const procs[] = { "/proc/meminfo", "/proc/cpuinfo", "/proc/stat" };
	char opts[64];

	/* Mounts made here stay here (the daemon put us in a new mount
	 * namespace): private from now on. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return fail(err, n, "sandbox: make / private");
	/* A place for the new root's mount point (pivot_root wants one),
	 * over /tmp in this namespace only. */
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755"))
		return fail(err, n, "sandbox: tmpfs over /tmp");
	if (mkdir(NEWROOT, 0755))
		return fail(err, n, "sandbox: mkdir " NEWROOT);
	if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755"))
		return fail(err, n, "sandbox: tmpfs for the new root");
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		if (bind_ro(ro[i], i > 0, err, n))
			return -1;
	if (mkdir(NEWROOT "/proc", 0555) && errno != EEXIST)
		return fail(err, n, "sandbox: mkdir /proc");
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
		if (copy_proc(procs[i], err, n))
			return -1;
	if (mkdir(NEWROOT "/tmp", 01777) || mkdir(NEWROOT "/cache", 0755) ||
	    mkdir(NEWROOT "/old", 0755))
		return fail(err, n, "sandbox: scratch directories");
	snprintf(opts, sizeof(opts), "size=%llu,mode=01777",
		 (unsigned long long)(c->scratch_bytes ? c->scratch_bytes : (256ull << 20)));
	if (mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) ||
	    mount("tmpfs", NEWROOT "/cache", "tmpfs", MS_NOSUID | MS_NODEV, opts))
		return fail(err, n, "sandbox: scratch tmpfs");
	if (syscall(SYS_pivot_root, NEWROOT, NEWROOT "/old"))
		return fail(err, n, "sandbox: pivot_root");
	if (chdir("/"))
		return fail(err, n, "sandbox: chdir /");
	if (umount2("/old", MNT_DETACH))
		return fail(err, n, "sandbox: detach the old root");
	rmdir("/old");
	/* The root itself (a tmpfs of directories and mount points) is read-only. */
	if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
		return fail(err, n, "sandbox: read-only root");
	return 0;
}

/* ---- privileges and limits ---- */

static int drop_privileges(const struct sandbox_config *c, char *err, size_t n)
{
	/* The bounding set first, while CAP_SETPCAP is still there. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL && errno != EPERM)
			return fail(err, n, "sandbox: drop capability %d", cap);
	errno = 0;
	if (geteuid() == 0) {
		if (setgroups(0, NULL) || setresgid(c->gid, c->gid, c->gid) ||
		    setresuid(c->uid, c->uid, c->uid))
			return fail(err, n, "sandbox: switch to uid %u gid %u", (unsigned)c->uid,
				    (unsigned)c->gid);
		if (setuid(0) == 0)
			return fail(err, n, "sandbox: uid 0 could be regained");
	}
	/* A uid change from 0 clears the capability sets; the ambient set
	 * goes too, for a worker that was never root. */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return fail(err, n, "sandbox: no new privileges");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		return fail(err, n, "sandbox: not dumpable");
	return 0;
}

static int limit(int res, uint64_t v, const char *name, char *err, size_t n)
{
	struct rlimit rl = { .rlim_cur = v, .rlim_max = v };

	if (setrlimit(res, &rl))
		return fail(err, n, "sandbox: %s %llu", name, (unsigned long long)v);
	return 0;
}

/*
 * RLIMIT_DATA counts private writable mappings, and a sanitizer's shadow
 * is one (ASan reserves terabytes with MAP_NORESERVE): a worker built with
 * a sanitizer, which only the tests build, runs without it.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANDBOX_DATA_LIMIT 0
#else
#define SANDBOX_DATA_LIMIT 1
#endif

static int set_limits(const struct sandbox_config *c, char *err, size_t n)
{
	if ((SANDBOX_DATA_LIMIT && c->data_limit &&
	     limit(RLIMIT_DATA, c->data_limit, "RLIMIT_DATA", err, n)) ||
	    (c->cpu_seconds && limit(RLIMIT_CPU, c->cpu_seconds, "RLIMIT_CPU", err, n)) ||
	    /* Below the memory files' numbers: no new file can take one. */
	    limit(RLIMIT_NOFILE, c->nofile && c->nofile < WP_NOFILE ? c->nofile : WP_NOFILE,
		  "RLIMIT_NOFILE", err, n) ||
	    limit(RLIMIT_CORE, 0, "RLIMIT_CORE", err, n) ||
	    limit(RLIMIT_FSIZE, c->scratch_bytes ? c->scratch_bytes : (256ull << 20),
		  "RLIMIT_FSIZE", err, n))
		return -1;
	return 0;
}

/* ---- Landlock ---- */

int sandbox_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

/* The access rights of Landlock ABI 1 and 2 (the headers this is built
 * with know no later ones). */
#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_WRITE (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
		  LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
		  LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SYM)
#define LL_ALL (LL_READ | LL_WRITE | LANDLOCK_ACCESS_FS_EXECUTE | \
		LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
		LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK)

static int ll_rule(int rs, const char *path, uint64_t access, char *err, size_t n)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = access };
	int r;

	pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0)
		return errno == ENOENT ? 0 : fail(err, n, "sandbox: landlock %s", path);
	r = (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	close(pb.parent_fd);
	return r ? fail(err, n, "sandbox: landlock rule %s", path) : 0;
}

/* The linker PoCL starts for each kernel it compiles, and its loader, are
 * all that may be executed. */
static int landlock(char *err, size_t n)
{
	struct landlock_ruleset_attr ra = { .handled_access_fs = LL_ALL };
	static const char *const exe[] = { "/usr/bin/ld", "/usr/bin/ld.bfd", "/usr/bin/ld.lld",
					   "/usr/bin/ld.gold", "/lib64/ld-linux-x86-64.so.2" };
	int abi = sandbox_landlock_abi(), rs, r = 0;

	if (abi < 1)
		return 0; /* the mount namespace alone confines the files */
	if (abi >= 2)
		ra.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	if (rs < 0)
		return fail(err, n, "sandbox: landlock ruleset");
	r |= ll_rule(rs, "/", LL_READ, err, n);
	r |= ll_rule(rs, "/tmp", LL_READ | LL_WRITE | (abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0),
		     err, n);
	r |= ll_rule(rs, "/cache", LL_READ | LL_WRITE | (abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0),
		     err, n);
	r |= ll_rule(rs, "/dev/null", LANDLOCK_ACCESS_FS_WRITE_FILE, err, n);
	for (size_t i = 0; i < sizeof(exe) / sizeof(exe[0]) && !r; i++) {
		char real[PATH_MAX];

		if (realpath(exe[i], real))
			r |= ll_rule(rs, real, LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE,
				     err, n);
	}
	if (!r && syscall(SYS_landlock_restrict_self, rs, 0))
		r = fail(err, n, "sandbox: landlock restrict");
	close(rs);
	return r;
}

/* ---- seccomp ---- */

static int seccomp_filter(const struct sandbox_config *c, char *err, size_t n)
{
	/* Calls that reach other processes, the network, or the kernel's
	 * administration: a kernel needs none of them. */
	static const int deny[] = {
		SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
		SCMP_SYS(kcmp), SCMP_SYS(pidfd_open), SCMP_SYS(pidfd_getfd),
		SCMP_SYS(pidfd_send_signal), SCMP_SYS(process_madvise),
		SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
		SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd),
		SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
		SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(keyctl), SCMP_SYS(add_key),
		SCMP_SYS(request_key), SCMP_SYS(init_module), SCMP_SYS(finit_module),
		SCMP_SYS(delete_module), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load),
		SCMP_SYS(reboot), SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(sethostname),
		SCMP_SYS(setdomainname), SCMP_SYS(settimeofday), SCMP_SYS(clock_settime),
		SCMP_SYS(adjtimex), SCMP_SYS(clock_adjtime), SCMP_SYS(acct), SCMP_SYS(quotactl),
		SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at),
		SCMP_SYS(fanotify_init), SCMP_SYS(move_pages), SCMP_SYS(migrate_pages),
		SCMP_SYS(remap_file_pages), SCMP_SYS(fork),
		SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect), SCMP_SYS(bind),
		SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4),
		SCMP_SYS(fsopen), SCMP_SYS(fsmount), SCMP_SYS(fsconfig), SCMP_SYS(fspick),
		SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(mount_setattr),
		SCMP_SYS(memfd_secret), SCMP_SYS(personality), SCMP_SYS(modify_ldt),
		SCMP_SYS(vhangup), SCMP_SYS(iopl), SCMP_SYS(ioperm),
	};
	/* Calls on a descriptor that could read, write, resize, duplicate or
	 * re-seal guest RAM without a supervised mmap: arg index of the fd. */
	static const struct { int nr; unsigned arg; } on_fd[] = {
		{ SCMP_SYS(read), 0 }, { SCMP_SYS(readv), 0 }, { SCMP_SYS(pread64), 0 },
		{ SCMP_SYS(preadv), 0 }, { SCMP_SYS(preadv2), 0 }, { SCMP_SYS(write), 0 },
		{ SCMP_SYS(writev), 0 }, { SCMP_SYS(pwrite64), 0 }, { SCMP_SYS(pwritev), 0 },
		{ SCMP_SYS(pwritev2), 0 }, { SCMP_SYS(sendfile), 1 }, { SCMP_SYS(splice), 0 },
		{ SCMP_SYS(splice), 2 }, { SCMP_SYS(copy_file_range), 0 },
		{ SCMP_SYS(copy_file_range), 2 }, { SCMP_SYS(fallocate), 0 },
		{ SCMP_SYS(ftruncate), 0 }, { SCMP_SYS(fchmod), 0 }, { SCMP_SYS(fchown), 0 },
		{ SCMP_SYS(fsetxattr), 0 }, { SCMP_SYS(fremovexattr), 0 }, { SCMP_SYS(ioctl), 0 },
		{ SCMP_SYS(fcntl), 0 }, { SCMP_SYS(dup), 0 }, { SCMP_SYS(dup2), 0 },
		{ SCMP_SYS(dup3), 0 }, { SCMP_SYS(dup2), 1 }, { SCMP_SYS(dup3), 1 },
		{ SCMP_SYS(readahead), 0 }, { SCMP_SYS(sync_file_range), 0 },
		{ SCMP_SYS(vmsplice), 0 }, { SCMP_SYS(tee), 0 }, { SCMP_SYS(tee), 1 },
		{ SCMP_SYS(execveat), 0 }, { SCMP_SYS(fchdir), 0 },
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = 0, listener;

	if (!ctx)
		return fail(err, n, "sandbox: seccomp_init");
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), deny[i], 0);
	/* mremap could grow a window over more of guest RAM, and it cannot
	 * be told apart from an allocator's: glibc falls back to copying. */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOMEM), SCMP_SYS(mremap), 0);
	/* Threads, and posix_spawn's vfork-style children, share this address
	 * space; a process of its own could keep a window past its unmap.
	 * clone3's flags are out of the filter's reach: glibc falls back to
	 * clone on ENOSYS. */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
			      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM, 0));
	/* At least one rule notifies, so that there is a listener to hand
	 * the daemon even when no RAM is passed (the probe); that fd number
	 * cannot be opened under RLIMIT_NOFILE. */
	for (unsigned int f = 0; f < 2 * (c->nram ? c->nram : 1); f++) {
		unsigned int nr = c->nram ? c->nram : 1;
		int fd = f < nr ? WP_FD_RAM + (int)f : WP_FD_RAM_RO + (int)(f - nr);

		/* A mapping of guest RAM is the daemon's to allow. The
		 * kernel reads an fd argument as an int: the rules compare
		 * the low 32 bits only (masked), or fd | 1 << 32 would pass
		 * them (libseccomp's SCMP_CMP32 only casts the datum). */
		r |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(mmap), 1,
				      SCMP_A4(SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t)fd));
		for (size_t i = 0; i < sizeof(on_fd) / sizeof(on_fd[0]); i++)
			r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), on_fd[i].nr, 1,
					      SCMP_CMP(on_fd[i].arg, SCMP_CMP_MASKED_EQ,
						       0xffffffffu, (scmp_datum_t)fd));
	}
	if (r) {
		seccomp_release(ctx);
		errno = -r;
		return fail(err, n, "sandbox: seccomp rules");
	}
	r = seccomp_load(ctx);
	if (r) {
		seccomp_release(ctx);
		errno = -r;
		return fail(err, n, "sandbox: seccomp_load");
	}
	listener = seccomp_notify_fd(ctx);
	seccomp_release(ctx);
	if (listener < 0) {
		errno = -listener;
		return fail(err, n, "sandbox: seccomp listener");
	}
	return listener;
}

int sandbox_enter(const struct sandbox_config *c, char *err, size_t errlen)
{
	err[0] = 0;
	errno = 0;
	if (!c->allow_root_fs && build_root(c, err, errlen))
		return -1;
	if (set_limits(c, err, errlen) || drop_privileges(c, err, errlen) ||
	    landlock(err, errlen))
		return -1;
	return seccomp_filter(c, err, errlen);
}
