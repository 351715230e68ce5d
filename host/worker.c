/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the daemon's side of a worker process (worker.h).
 *
 * Per worker three threads of the daemon: the reader (answers from the
 * control socket, matched to their callers by tag), the supervisor (the
 * worker's seccomp notifications: every mmap() of guest RAM, allowed only
 * inside the runs the daemon itself sent in WP_MAP), and the output reader
 * (what the worker prints, kernels' printf included, to the log, bounded).
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monotime.h"
#include "stats.h"

#define START_TIMEOUT_NS (30ll * 1000000000)
#define OUTPUT_LOG_MAX (8u * 1024u)

struct allowed {
	struct allowed *next;
	uint32_t res;
	uint32_t region;
	uint64_t off, len;
	bool writable;            /* may be mapped from the read-write file */
};

struct waiter {
	struct waiter *next;
	uint64_t tag;
	uint32_t type;            /* the answer's type expected */
	bool done;                /* answered, or the worker is lost */
	bool answered;
	struct worker_reply r;
};

struct worker {
	pid_t pid;
	int sock;                 /* control socket */
	int listener;             /* the worker's seccomp listener */
	int out;                  /* the worker's stdout and stderr */
	unsigned int nram;
	dev_t ram_dev[WP_MAX_REGIONS];
	ino_t ram_ino[WP_MAX_REGIONS];
	char name[64];
	pthread_mutex_t lock;     /* below */
	pthread_cond_t cv;
	bool lost;
	bool reaped;
	uint64_t next_tag;
	struct waiter *waiters;
	struct allowed *allowed;
	uint64_t refused;
	struct wp_hello hello;
	uint8_t *info;
	uint32_t info_len;
	bool have_hello, have_listener;
	pthread_mutex_t send_lock;
	pthread_t reader, supervisor, outreader;
	bool threads;
};

/* ---- spawning ---- */

/*
 * The worker's environment: PATH, and of the daemon's own environment (the
 * operator's, never the guest's) only what selects and sizes the OpenCL
 * device the worker uses: which ICDs the loader offers, and PoCL's memory
 * limit and thread count (a benchmark runs the native baseline under the
 * same limit). Built in the daemon before clone.
 */
static const char *const worker_env_pass[] = {
	"OCL_ICD_VENDORS=", "OCL_ICD_FILENAMES=", "POCL_MEMORY_LIMIT=", "POCL_MAX_PTHREAD_COUNT=",
};
static char *worker_envp[2 + sizeof(worker_env_pass) / sizeof(worker_env_pass[0])];
static pthread_once_t worker_env_once = PTHREAD_ONCE_INIT;

static void worker_env_init(void)
{
	extern char **environ;
	size_t n = 0;

	worker_envp[n++] = "PATH=/usr/bin:/bin";
	for (size_t i = 0; i < sizeof(worker_env_pass) / sizeof(worker_env_pass[0]); i++)
		for (char **e = environ; *e; e++)
			if (!strncmp(*e, worker_env_pass[i], strlen(worker_env_pass[i]))) {
				worker_envp[n++] = *e;
				break;
			}
	worker_envp[n] = NULL;
}

/* The child between clone and exec: PID 1 of its namespaces, still a copy
 * of the daemon: only system calls from here on. */
static void child_exec(const struct worker_config *c, int sock, int out, const int *ram,
		       const int *ram_ro, unsigned int nram, char *const argv[])
{
	char *const *envp = worker_envp;
	struct rlimit rl;
	int high = 100;

	/* Room for the memory files at their fixed numbers. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < WP_FD_RAM_RO + WP_MAX_REGIONS) {
		rl.rlim_cur = WP_FD_RAM_RO + WP_MAX_REGIONS;
		if (rl.rlim_max < rl.rlim_cur)
			_exit(125);
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Everything to high numbers first, then to the fixed ones. */
	if (dup2(sock, high) < 0 || dup2(out, high + 1) < 0)
		_exit(126);
	for (unsigned int i = 0; i < nram; i++)
		if (dup2(ram[i], high + 2 + (int)i) < 0 ||
		    dup2(ram_ro[i], high + 2 + (int)(WP_MAX_REGIONS + i)) < 0)
			_exit(126);
	if (dup2(high, WP_FD_CTL) < 0 || dup2(high + 1, 1) < 0 || dup2(high + 1, 2) < 0)
		_exit(126);
	for (unsigned int i = 0; i < nram; i++)
		if (dup2(high + 2 + (int)i, WP_FD_RAM + (int)i) < 0 ||
		    dup2(high + 2 + (int)(WP_MAX_REGIONS + i), WP_FD_RAM_RO + (int)i) < 0)
			_exit(126);
	{
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0)
			_exit(126);
	}
	syscall(SYS_close_range, 4, WP_FD_RAM - 1, 0);
	syscall(SYS_close_range, WP_FD_RAM + nram, WP_FD_RAM_RO - 1, 0);
	syscall(SYS_close_range, WP_FD_RAM_RO + nram, ~0u, 0);
	execve(c->path, argv, envp);
	_exit(127);
}

/* ---- the reader: answers ---- */

static void wake_all_lost(struct worker *w)
{
	w->lost = true;
	for (struct waiter *x = w->waiters; x; x = x->next)
		x->done = true;
	pthread_cond_broadcast(&w->cv);
}

static void *reader_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		struct wp_msg h;
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &h, sizeof(h) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		uint8_t *body = NULL;
		ssize_t r;
		int fd = -1;

		/* The header (with an fd only for WP_LISTENER), then the body. */
		r = recvmsg(w->sock, &m, MSG_WAITALL | MSG_CMSG_CLOEXEC);
		if (r == (ssize_t)sizeof(h) && m.msg_controllen >= CMSG_LEN(sizeof(int))) {
			struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

			if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		}
		if (r != (ssize_t)sizeof(h) || h.magic != WP_MAGIC || h.len > WP_MAX_MSG) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (h.len) {
			body = malloc(h.len);
			if (!body || wp_recv_all(w->sock, body, h.len)) {
				free(body);
				if (fd >= 0)
					close(fd);
				break;
			}
		}
		pthread_mutex_lock(&w->lock);
		if (h.type == WP_LISTENER && !w->have_listener && fd >= 0) {
			w->listener = fd;
			w->have_listener = true;
			fd = -1;
			pthread_cond_broadcast(&w->cv);
		} else if (h.type == WP_HELLO && !w->have_hello && h.len >= sizeof(w->hello)) {
			memcpy(&w->hello, body, sizeof(w->hello));
			w->hello.platform[sizeof(w->hello.platform) - 1] = 0;
			w->hello.device[sizeof(w->hello.device) - 1] = 0;
			if (w->hello.info_len <= h.len - sizeof(w->hello)) {
				w->info_len = w->hello.info_len;
				w->info = malloc(w->info_len ? w->info_len : 1);
				if (w->info)
					memcpy(w->info, body + sizeof(w->hello), w->info_len);
			}
			w->have_hello = true;
			pthread_cond_broadcast(&w->cv);
		} else if (h.type & WP_REPLY) {
			struct waiter *x;

			for (x = w->waiters; x && x->tag != h.tag; x = x->next)
				;
			if (x && !x->done && h.type == x->type) {
				x->answered = true;
				x->r.status = h.status;
				x->r.cl_error = h.cl_error;
				x->r.data = body;
				x->r.len = h.len;
				body = NULL;
				x->done = true;
				pthread_cond_broadcast(&w->cv);
			}
		}
		pthread_mutex_unlock(&w->lock);
		if (fd >= 0)
			close(fd);
		free(body);
	}
	pthread_mutex_lock(&w->lock);
	wake_all_lost(w);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- the supervisor: mappings of guest RAM ---- */

static bool allowed_locked(const struct worker *w, uint32_t region, uint64_t off, uint64_t len,
			   bool writable)
{
	if (len == 0 || off + len < off)
		return false;
	/* The range must lie inside one allowed run (runs of one window are
	 * mapped one by one, each with its own mmap). Regions are compared by
	 * their file: a front-end may cut several regions from one file, and
	 * the same pages are the same pages whichever fd maps them. */
	for (const struct allowed *a = w->allowed; a; a = a->next)
		if (a->region < w->nram && w->ram_ino[a->region] == w->ram_ino[region] &&
		    w->ram_dev[a->region] == w->ram_dev[region] && off >= a->off &&
		    off + len <= a->off + a->len && (a->writable || !writable))
			return true;
	return false;
}

static void *supervisor_main(void *arg)
{
	struct worker *w = arg;
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;
	int nr_mmap = seccomp_syscall_resolve_name("mmap");

	if (seccomp_notify_alloc(&req, &resp))
		return NULL;
	for (;;) {
		struct pollfd p = { .fd = w->listener, .events = POLLIN };
		uint64_t fd, len, off;
		bool ok = false;

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
			break;
		memset(req, 0, sizeof(*req));
		if (seccomp_notify_receive(w->listener, req)) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			break;
		}
		/* mmap(addr, len, prot, flags, fd, off): plain numbers, so the
		 * answer cannot be raced (CONTINUE runs the call as it was
		 * checked). */
		fd = (uint32_t)req->data.args[4]; /* the kernel's int */
		len = req->data.args[1];
		off = req->data.args[5];
		pthread_mutex_lock(&w->lock);
		/* The read-write file only for writable windows; the
		 * read-only one for any window. */
		if (req->data.nr == nr_mmap && fd >= WP_FD_RAM && fd < WP_FD_RAM + w->nram)
			ok = allowed_locked(w, (uint32_t)(fd - WP_FD_RAM), off, len, true);
		else if (req->data.nr == nr_mmap && fd >= WP_FD_RAM_RO &&
			 fd < WP_FD_RAM_RO + w->nram)
			ok = allowed_locked(w, (uint32_t)(fd - WP_FD_RAM_RO), off, len, false);
		if (!ok)
			w->refused++;
		pthread_mutex_unlock(&w->lock);
		memset(resp, 0, sizeof(*resp));
		resp->id = req->id;
		if (ok) {
			resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		} else {
			resp->error = -EPERM;
			STAT_ADD(worker_refused_maps, 1);
			hlog("%s: refused a mapping of guest RAM (fd %" PRIu64 ", offset %#" PRIx64
			     ", %" PRIu64 " bytes)", w->name, fd, off, len);
		}
		if (seccomp_notify_respond(w->listener, resp) && errno != ENOENT)
			break;
	}
	seccomp_notify_free(req, resp);
	return NULL;
}

/* ---- output ---- */

static void *outreader_main(void *arg)
{
	struct worker *w = arg;
	char buf[4096];
	size_t logged = 0, dropped = 0;
	ssize_t r;

	while ((r = read(w->out, buf, sizeof(buf) - 1)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (logged >= OUTPUT_LOG_MAX) {
			dropped += (size_t)r;
			continue;
		}
		buf[r] = 0;
		for (char *line = buf, *nl; line && *line; line = nl) {
			nl = strchr(line, '\n');
			if (nl)
				*nl++ = 0;
			hlog("%s: %s", w->name, line);
		}
		logged += (size_t)r;
	}
	if (dropped)
		hlog("%s: %zu more bytes of output not logged", w->name, dropped);
	return NULL;
}

/* ---- life cycle ---- */

static void reap(struct worker *w)
{
	int st;

	if (w->pid > 0 && !w->reaped) {
		while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
			;
		w->reaped = true;
	}
}

struct worker *worker_start(const struct worker_config *c, const struct guest_mem *gm,
			    char *err, size_t errlen)
{
	struct worker *w = calloc(1, sizeof(*w));
	int sv[2] = { -1, -1 }, op[2] = { -1, -1 }, ram[WP_MAX_REGIONS], ram_ro[WP_MAX_REGIONS];
	char path[64], nram[16], uid[16], gid[16], data[32], scratch[32], nofile[16];
	char *argv[16];
	unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
			      CLONE_NEWUTS;
	int64_t deadline;
	int a = 0;
	long pid;

	for (unsigned int i = 0; i < WP_MAX_REGIONS; i++)
		ram_ro[i] = -1;
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->send_lock, NULL);
	mono_cond_init(&w->cv);
	w->sock = w->listener = w->out = -1;
	snprintf(w->name, sizeof(w->name), "worker %s", c->name ? c->name : "?");
	for (unsigned int i = 0; i < gm->nregions && i < WP_MAX_REGIONS; i++) {
		struct stat st;

		if (gm->r[i].fd < 0 || fstat(gm->r[i].fd, &st)) {
			snprintf(err, errlen, "memory region %u has no file", i);
			goto fail;
		}
		ram[w->nram] = gm->r[i].fd;
		/* The same file read-only, reopened (an fd cannot lose its
		 * write access otherwise): read-only windows map it. */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", gm->r[i].fd);
		ram_ro[w->nram] = open(path, O_RDONLY | O_CLOEXEC);
		if (ram_ro[w->nram] < 0) {
			snprintf(err, errlen, "memory region %u cannot be opened read-only: %s", i,
				 strerror(errno));
			goto fail;
		}
		w->ram_dev[w->nram] = st.st_dev;
		w->ram_ino[w->nram] = st.st_ino;
		w->nram++;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || pipe2(op, O_CLOEXEC)) {
		snprintf(err, errlen, "socketpair/pipe: %s", strerror(errno));
		goto fail;
	}
	snprintf(nram, sizeof(nram), "%u", w->nram);
	snprintf(uid, sizeof(uid), "%u", (unsigned)c->uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)c->gid);
	argv[a++] = (char *)c->path;
	argv[a++] = "--ram";
	argv[a++] = nram;
	argv[a++] = "--uid";
	argv[a++] = uid;
	argv[a++] = "--gid";
	argv[a++] = gid;
	if (c->data_limit) {
		snprintf(data, sizeof(data), "%llu", (unsigned long long)c->data_limit);
		argv[a++] = "--data-limit";
		argv[a++] = data;
	}
	if (c->scratch_bytes) {
		snprintf(scratch, sizeof(scratch), "%llu", (unsigned long long)c->scratch_bytes);
		argv[a++] = "--scratch";
		argv[a++] = scratch;
	}
	if (c->nofile) {
		snprintf(nofile, sizeof(nofile), "%u", c->nofile);
		argv[a++] = "--nofile";
		argv[a++] = nofile;
	}
	if (c->host_root)
		argv[a++] = "--host-root";
	argv[a] = NULL;
	if (geteuid() != 0)
		flags |= CLONE_NEWUSER;
	/* Like fork(), in new namespaces: the child is PID 1 of its own. */
	pthread_once(&worker_env_once, worker_env_init);
	pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0) {
		snprintf(err, errlen, "clone into new namespaces: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(c, sv[1], op[1], ram, ram_ro, w->nram, argv);
	w->pid = (pid_t)pid;
	close(sv[1]);
	close(op[1]);
	sv[1] = op[1] = -1;
	for (unsigned int i = 0; i < w->nram; i++) {
		close(ram_ro[i]);
		ram_ro[i] = -1;
	}
	w->sock = sv[0];
	w->out = op[0];
	if (pthread_create(&w->reader, NULL, reader_main, w)) {
		snprintf(err, errlen, "reader thread");
		kill(w->pid, SIGKILL);
		goto fail;
	}
	if (pthread_create(&w->outreader, NULL, outreader_main, w)) {
		snprintf(err, errlen, "output thread");
		kill(w->pid, SIGKILL);
		pthread_join(w->reader, NULL);
		goto fail;
	}
	/* The listener first, then the hello. */
	deadline = mono_now_ns() + START_TIMEOUT_NS;
	pthread_mutex_lock(&w->lock);
	while (!w->lost && !w->have_listener && mono_now_ns() < deadline)
		mono_cond_wait_until(&w->cv, &w->lock, deadline);
	pthread_mutex_unlock(&w->lock);
	if (w->have_listener &&
	    pthread_create(&w->supervisor, NULL, supervisor_main, w) == 0) {
		w->threads = true;
		pthread_mutex_lock(&w->lock);
		while (!w->lost && !w->have_hello && mono_now_ns() < deadline)
			mono_cond_wait_until(&w->cv, &w->lock, deadline);
		pthread_mutex_unlock(&w->lock);
	}
	if (!w->have_hello) {
		snprintf(err, errlen, "the worker did not start (%s)",
			 w->have_listener ? "no hello: no OpenCL device, or it died" :
			 "no seccomp listener: it could not confine itself; see the log");
		if (!w->threads) {
			kill(w->pid, SIGKILL);
			shutdown(w->sock, SHUT_RDWR);
			pthread_join(w->reader, NULL);
			pthread_join(w->outreader, NULL);
			reap(w);
			close(w->sock);
			close(w->out);
			if (w->listener >= 0)
				close(w->listener);
			free(w->info);
			free(w);
			return NULL;
		}
		worker_free(w);
		return NULL;
	}
	hlog("%s: pid %d, %s / %s", w->name, (int)w->pid, w->hello.platform, w->hello.device);
	return w;
fail:
	for (unsigned int i = 0; i < WP_MAX_REGIONS; i++)
		if (ram_ro[i] >= 0)
			close(ram_ro[i]);
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (op[i] >= 0)
			close(op[i]);
	}
	reap(w);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->send_lock);
	pthread_cond_destroy(&w->cv);
	free(w);
	return NULL;
}

void worker_reap(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	reap(w);
	pthread_mutex_unlock(&w->lock);
}

const struct wp_hello *worker_hello(const struct worker *w, const uint8_t **info,
				    uint32_t *info_len)
{
	if (info)
		*info = w->info;
	if (info_len)
		*info_len = w->info_len;
	return &w->hello;
}

bool worker_lost(const struct worker *w)
{
	return __atomic_load_n(&w->lost, __ATOMIC_RELAXED);
}

pid_t worker_pid(const struct worker *w)
{
	return w->pid;
}

uint64_t worker_refused_maps(const struct worker *w)
{
	return __atomic_load_n(&w->refused, __ATOMIC_RELAXED);
}

void worker_kill(struct worker *w, const char *why)
{
	pthread_mutex_lock(&w->lock);
	if (!w->lost && why)
		hlog("%s: killed: %s", w->name, why);
	if (w->pid > 0 && !w->reaped)
		kill(w->pid, SIGKILL);
	wake_all_lost(w);
	pthread_mutex_unlock(&w->lock);
}

int worker_allow(struct worker *w, uint32_t res, const struct wp_run *runs, uint32_t n,
		 bool writable)
{
	struct allowed *list = NULL;

	for (uint32_t i = 0; i < n; i++) {
		struct allowed *a = calloc(1, sizeof(*a));

		if (!a || runs[i].region >= w->nram) {
			free(a);
			while (list) {
				struct allowed *x = list;

				list = x->next;
				free(x);
			}
			return -1;
		}
		a->res = res;
		a->region = runs[i].region;
		a->off = runs[i].file_off;
		a->len = runs[i].len;
		a->writable = writable;
		a->next = list;
		list = a;
	}
	pthread_mutex_lock(&w->lock);
	while (list) {
		struct allowed *x = list;

		list = x->next;
		x->next = w->allowed;
		w->allowed = x;
	}
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/*
 * Every mapping of a memory file the worker has must lie in what is
 * allowed. The worker has one address space (its filter allows no process
 * creation without CLONE_VM), so its maps file lists them all, and no new
 * mapping can appear but through the supervisor.
 */
static int check_maps(struct worker *w)
{
	char path[64], line[512];
	FILE *f;
	int bad = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)w->pid);
	f = fopen(path, "re");
	if (!f) {
		/* Gone: nothing left to check. Any other failure (no
		 * CAP_SYS_PTRACE over it, say) fails the check: the worker
		 * cannot be shown clean. */
		if (errno == ENOENT || errno == ESRCH)
			return 0;
		hlog("%s: cannot read %s: %s", w->name, path, strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		unsigned long long off;
		unsigned int maj, mnr;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s %llx %x:%x %lu", &lo, &hi, perms, &off, &maj, &mnr,
			   &ino) != 7)
			continue;
		for (unsigned int i = 0; i < w->nram; i++) {
			if (ino != w->ram_ino[i] || maj != major(w->ram_dev[i]) ||
			    mnr != minor(w->ram_dev[i]))
				continue;
			pthread_mutex_lock(&w->lock);
			if (!allowed_locked(w, i, off, hi - lo, perms[1] == 'w')) {
				hlog("%s: region %u [%#llx, +%#lx) is mapped and not allowed",
				     w->name, i, off, hi - lo);
				bad = 1;
			}
			pthread_mutex_unlock(&w->lock);
			break;  /* the file is known; other regions of it say the same */
		}
	}
	fclose(f);
	return bad;
}

int worker_forbid(struct worker *w, uint32_t res)
{
	pthread_mutex_lock(&w->lock);
	for (struct allowed **pp = &w->allowed; *pp;) {
		struct allowed *a = *pp;

		if (a->res == res) {
			*pp = a->next;
			free(a);
		} else {
			pp = &a->next;
		}
	}
	pthread_mutex_unlock(&w->lock);
	if (!worker_lost(w) && check_maps(w)) {
		worker_kill(w, "it kept a mapping of guest RAM past its window's unmap");
		return -1;
	}
	return 0;
}

int worker_call(struct worker *w, uint32_t type, uint32_t ring, const void *a, size_t alen,
		const void *b, size_t blen, int64_t deadline, struct worker_reply *r)
{
	struct waiter me = { 0 };
	struct wp_msg h = { .magic = WP_MAGIC, .type = type, .ring = ring,
			    .len = (uint32_t)(alen + blen) };
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (alen + blen > WP_MAX_MSG)
		return -EMSGSIZE;
	pthread_mutex_lock(&w->lock);
	if (w->lost) {
		pthread_mutex_unlock(&w->lock);
		return -EPIPE;
	}
	me.tag = h.tag = ++w->next_tag;
	me.type = type | WP_REPLY;
	me.next = w->waiters;
	w->waiters = &me;
	pthread_mutex_unlock(&w->lock);

	pthread_mutex_lock(&w->send_lock);
	if (wp_send_all(w->sock, &h, sizeof(h)) || (alen && wp_send_all(w->sock, a, alen)) ||
	    (blen && wp_send_all(w->sock, b, blen)))
		rc = -EPIPE;
	pthread_mutex_unlock(&w->send_lock);

	pthread_mutex_lock(&w->lock);
	while (!rc && !me.done) {
		if (deadline < 0) {
			pthread_cond_wait(&w->cv, &w->lock);
		} else {
			if (mono_now_ns() >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			mono_cond_wait_until(&w->cv, &w->lock, deadline);
		}
	}
	if (!rc && !me.answered)
		rc = -EPIPE;
	for (struct waiter **pp = &w->waiters; *pp; pp = &(*pp)->next)
		if (*pp == &me) {
			*pp = me.next;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	if (rc == -ETIMEDOUT)
		worker_kill(w, "a request ran past its deadline");
	if (rc) {
		free(me.r.data);
		return rc;
	}
	*r = me.r;
	return 0;
}

void worker_free(struct worker *w)
{
	struct allowed *a;

	if (!w)
		return;
	worker_kill(w, NULL);
	shutdown(w->sock, SHUT_RDWR);
	pthread_join(w->reader, NULL);
	pthread_join(w->outreader, NULL);
	reap(w);
	if (w->threads) {
		/* The listener hangs up once the worker is gone. */
		pthread_join(w->supervisor, NULL);
	}
	close(w->sock);
	close(w->out);
	if (w->listener >= 0)
		close(w->listener);
	while ((a = w->allowed)) {
		w->allowed = a->next;
		free(a);
	}
	free(w->info);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->send_lock);
	free(w);
}
