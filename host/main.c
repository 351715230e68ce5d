/* SPDX-License-Identifier: MIT */
/* main.c - options, signals and the accept loop of virtgpu-hostd. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "gpu_device.h"
#include "programs.h"
#include "stats.h"
#include "vhost_user.h"
#include "window.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: virtgpu-hostd --socket PATH [--no-userptr] [--access-platform]\n"
		"                     [--threads N] [--backend cpu|opencl] [--map-budget N]\n"
		"                     [--worker PATH | --no-programs] [--worker-user UID:GID]\n"
		"                     [--op-timeout MS] [--scanouts N] [--verbose]\n"
		"\n"
		"A virtio-gpu device (compute capset %u) served as a vhost-user back-end.\n"
		"It listens on a Unix socket and serves one front-end at a time; after a\n"
		"disconnect every resource, context and mapping of that front-end is freed\n"
		"and the next front-end is accepted.\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   Unix socket to listen on (a stale file is replaced)\n"
		"  -n, --no-userptr    act as a device that knows nothing of userptr: do not\n"
		"                      offer VIRTIO_GPU_F_BLOB_RDONLY (bit %d), so that blobs\n"
		"                      with the RDONLY flag are refused; read-write userptr\n"
		"                      memory still works (it is an ordinary guest blob)\n"
		"  -a, --access-platform\n"
		"                      offer VIRTIO_F_ACCESS_PLATFORM, so that the guest maps\n"
		"                      through its DMA API (a guest without a vIOMMU: the\n"
		"                      addresses stay guest-physical)\n"
		"  -t, --threads N     compute worker threads, 1..%d\n"
		"                      (default: the number of online CPUs)\n"
		"  -b, --backend NAME  what runs the compute ops: cpu (C loops on the worker\n"
		"                      threads, the default) or opencl (OpenCL kernels on the\n"
		"                      guest's pages through zero-copy windows; falls back to\n"
		"                      cpu, and says so, when there is no OpenCL device)\n"
		"  -m, --map-budget N  mappings all zero-copy windows may hold together\n"
		"                      (default: half of vm.max_map_count)\n"
		"  -w, --worker PATH   the worker that builds and runs the guest's own OpenCL\n"
		"                      programs, one sandboxed process per context (default:\n"
		"                      virtgpu-worker beside this program); without a usable\n"
		"                      worker the device offers no programs, and says why\n"
		"  -P, --no-programs   offer no programs (capset version 3 features 0)\n"
		"  -u, --worker-user UID:GID\n"
		"                      what workers run as when the daemon is root\n"
		"                      (default: 65534:65534, nobody)\n"
		"  -T, --op-timeout MS time budget of one compute op in milliseconds, 0 for\n"
		"                      none (default %u): an op still running then stops,\n"
		"                      and its submit ends with E_TIMEOUT; a program op\n"
		"                      past it also loses its context (with 0, program ops\n"
		"                      get the default)\n"
		"  -S, --scanouts N    scanouts in the config space, 0..%d (default 0): the\n"
		"                      driver then sets up KMS (connectors, CRTCs, and\n"
		"                      framebuffers of its objects); no display is connected\n"
		"                      and the commands that show images are refused\n"
		"  -v, --verbose       log every vhost-user message and command with its result\n"
		"  -h, --help          show this text and exit\n"
		"\n"
		"Signals: SIGTERM/SIGINT exit cleanly and print statistics; SIGUSR1 prints\n"
		"statistics (resources, bytes mapped, per-op counters, commands, errors).\n"
		"Exit status: 0 on a signal, 1 on a runtime error, 2 on bad usage.\n",
		VGPU_COMPUTE_CAPSET_ID, VIRTIO_GPU_F_BLOB_RDONLY, 256,
		(unsigned)(ENGINE_DEFAULT_OP_BUDGET_NS / 1000000u), VIRTIO_GPU_MAX_SCANOUTS);
}

static int make_listener(const char *path)
{
	struct sockaddr_un a;
	char tmp[sizeof(a.sun_path) + 32];
	struct stat st;
	bool bound;
	int fd, n;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "virtgpu-hostd: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	/* Replace a stale socket, never any other kind of file. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "virtgpu-hostd: %s exists and is not a socket\n", path);
			return -1;
		}
		unlink(path);
	}
	/* Bind under a temporary name and rename once listening: whoever
	 * waits for the path to appear (a VMM, a test) can connect at once
	 * instead of racing listen() (ECONNREFUSED). RENAME_NOREPLACE: a
	 * file that appeared at the path meanwhile is left alone. */
	n = snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		tmp[0] = '\0';        /* no room: bind the path itself */
	else
		strcpy(a.sun_path, tmp);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bound = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (!bound || listen(fd, 1) < 0 || (tmp[0] && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)) {
		fprintf(stderr, "virtgpu-hostd: %s: %s\n", path, strerror(errno));
		if (bound && tmp[0])
			unlink(tmp);    /* only what this bind made */
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* 1: keep going, 0: exit requested. */
static int handle_signal(int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return 1;
	if (si.ssi_signo == SIGUSR1) {
		stats_print(stderr);
		return 1;
	}
	hlog("signal %u: exiting", si.ssi_signo);
	return 0;
}

/* Seconds a front-end may take to finish sending a message it started, or
 * to make room for a reply. */
#define HOSTD_IO_TIMEOUT_S 5

/* Serve one front-end until it goes away (1) or a signal ends us (0). */
static int serve(int cfd, int sfd, const struct vu_options *opt, struct engine *eng,
		 struct programs *progs)
{
	struct gpu_device *gpu = gpu_device_new(eng, NULL);
	struct vu_conn c;
	int running = 1;

	if (gpu)
		gpu_device_set_programs(gpu, progs);
	if (!gpu || vu_conn_init(&c, cfd, opt, gpu)) {
		hlog("cannot set up the device: out of memory");
		gpu_device_free(gpu);
		return 1;
	}
	for (;;) {
		struct pollfd p[2] = { { cfd, POLLIN, 0 }, { sfd, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents & POLLIN) {
			running = handle_signal(sfd);
			if (!running)
				break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (vu_handle_one(&c))
				break;
		}
	}
	vu_conn_fini(&c);
	gpu_device_free(gpu);
	return running;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "no-userptr", no_argument, NULL, 'n' },
		{ "access-platform", no_argument, NULL, 'a' },
		{ "threads", required_argument, NULL, 't' },
		{ "backend", required_argument, NULL, 'b' },
		{ "map-budget", required_argument, NULL, 'm' },
		{ "worker", required_argument, NULL, 'w' },
		{ "no-programs", no_argument, NULL, 'P' },
		{ "worker-user", required_argument, NULL, 'u' },
		{ "op-timeout", required_argument, NULL, 'T' },
		{ "scanouts", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vu_options opt = { .blob_rdonly = true };
	const char *path = NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = ncpu > 0 ? (unsigned)(ncpu > 256 ? 256 : ncpu) : 1;
	uint32_t backend = VGPU_BACKEND_CPU;
	uint64_t op_budget_ns = ENGINE_DEFAULT_OP_BUDGET_NS;
	char budget[32];
	struct programs_config pcfg = { .uid = 65534, .gid = 65534 };
	char worker_path[PATH_MAX];
	bool programs = true;
	struct programs *progs;
	struct engine *eng;
	sigset_t sigs;
	int lfd, sfd, o, running = 1;

	while ((o = getopt_long(argc, argv, "s:nat:b:m:w:Pu:T:S:vh", longopts, NULL)) != -1) {
		switch (o) {
		case 's':
			path = optarg;
			break;
		case 'n':
			opt.blob_rdonly = false;
			break;
		case 'a':
			opt.access_platform = true;
			break;
		case 't': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *optarg == '\0' || *end || v < 1 || v > 256) {
				fprintf(stderr, "virtgpu-hostd: --threads needs a number from 1 to 256, not '%s'\n", optarg);
				return 2;
			}
			threads = (unsigned)v;
			break;
		}
		case 'b':
			if (strcmp(optarg, "cpu") == 0) {
				backend = VGPU_BACKEND_CPU;
			} else if (strcmp(optarg, "opencl") == 0) {
				backend = VGPU_BACKEND_OPENCL;
			} else {
				fprintf(stderr, "virtgpu-hostd: --backend is cpu or opencl, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'm': {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *optarg < '0' || *optarg > '9' || *end || v < 1 || v > 1ull << 30) {
				fprintf(stderr, "virtgpu-hostd: --map-budget needs a number from 1 to 2^30, not '%s'\n", optarg);
				return 2;
			}
			win_set_budget(v);
			break;
		}
		case 'w':
			pcfg.worker_path = optarg;
			break;
		case 'P':
			programs = false;
			break;
		case 'u': {
			unsigned long u, g;
			char *end, *end2;

			errno = 0;
			u = strtoul(optarg, &end, 10);
			g = *end == ':' ? strtoul(end + 1, &end2, 10) : 0;
			if (errno || *optarg < '0' || *optarg > '9' || *end != ':' || end[1] < '0' ||
			    end[1] > '9' || *end2 || u == 0 || g == 0 || u >= UINT32_MAX ||
			    g >= UINT32_MAX) {
				fprintf(stderr, "virtgpu-hostd: --worker-user needs UID:GID, neither 0, not '%s'\n", optarg);
				return 2;
			}
			pcfg.uid = (uid_t)u;
			pcfg.gid = (gid_t)g;
			break;
		}
		case 'T': {
			char *end;
			unsigned long long v;

			/* Up to a day: more is no bound at all (0 says so). */
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *optarg < '0' || *optarg > '9' || *end || v > 86400000ull) {
				fprintf(stderr, "virtgpu-hostd: --op-timeout needs milliseconds from 0 to 86400000, not '%s'\n", optarg);
				return 2;
			}
			op_budget_ns = v * 1000000ull;
			break;
		}
		case 'S': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *optarg < '0' || *optarg > '9' || *end || v > VIRTIO_GPU_MAX_SCANOUTS) {
				fprintf(stderr, "virtgpu-hostd: --scanouts needs a number from 0 to %d, not '%s'\n",
					VIRTIO_GPU_MAX_SCANOUTS, optarg);
				return 2;
			}
			opt.num_scanouts = (uint32_t)v;
			break;
		}
		case 'v':
			hostd_verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'virtgpu-hostd --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "virtgpu-hostd: unexpected argument '%s'\n"
			"Try 'virtgpu-hostd --help' for more information.\n", argv[optind]);
		return 2;
	}
	if (!path) {
		fprintf(stderr, "virtgpu-hostd: --socket PATH is required\n"
			"Try 'virtgpu-hostd --help' for more information.\n");
		return 2;
	}

	/* Signals arrive through a signalfd; every thread has them blocked. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sigdelset(&sigs, SIGPIPE);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("virtgpu-hostd: signalfd");
		return 1;
	}
	eng = engine_new_backend(threads, backend);
	if (!eng) {
		fprintf(stderr, "virtgpu-hostd: cannot start %u worker threads\n", threads);
		return 1;
	}
	engine_set_op_budget(eng, op_budget_ns);
	/* One budget for every op; program ops need one (0: the default). */
	pcfg.op_budget_ns = op_budget_ns;
	if (programs && !pcfg.worker_path) {
		/* Beside this program, wherever it was installed. */
		ssize_t n = readlink("/proc/self/exe", worker_path, sizeof(worker_path) - 16);
		char *slash;

		if (n > 0) {
			worker_path[n] = '\0';
			slash = strrchr(worker_path, '/');
			if (slash) {
				strcpy(slash + 1, "virtgpu-worker");
				pcfg.worker_path = worker_path;
			}
		}
		if (!pcfg.worker_path)
			hlog("programs: off: cannot find virtgpu-worker beside this program");
	}
	if (!programs) {
		pcfg.worker_path = NULL;
		hlog("programs: off (--no-programs)");
	}
	/* The probe worker starts now and answers before the first caps. */
	progs = programs_new(&pcfg);
	if (!progs) {
		engine_free(eng);
		fprintf(stderr, "virtgpu-hostd: out of memory\n");
		return 1;
	}
	engine_set_programs(eng, progs);
	lfd = make_listener(path);
	if (lfd < 0) {
		programs_free(progs);
		engine_free(eng);
		return 1;
	}
	if (op_budget_ns)
		snprintf(budget, sizeof(budget), "%llu ms",
			 (unsigned long long)(op_budget_ns / 1000000u));
	else
		snprintf(budget, sizeof(budget), "none");
	hlog("listening on %s (read-only blobs %s%s, %u threads, backend %s, zero-copy windows %s, budget %llu mappings, op budget %s)",
	     path, opt.blob_rdonly ? "offered" : "not offered",
	     opt.access_platform ? ", access platform" : "", threads, engine_backend_name(eng),
	     win_enabled() ? "on" : "off", (unsigned long long)win_budget(), budget);

	while (running) {
		struct pollfd p[2] = { { lfd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		int cfd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			hlog("poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents & POLLIN) {
			running = handle_signal(sfd);
			continue;
		}
		if (!(p[0].revents & POLLIN))
			continue;
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				hlog("accept: %s", strerror(errno));
			continue;
		}
		/* A message must arrive whole, and a reply must be taken, within
		 * a few seconds: a front-end that stalls half-way through one
		 * would otherwise hold the socket thread, and with it SIGTERM. */
		{
			struct timeval tv = { HOSTD_IO_TIMEOUT_S, 0 };

			if (setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
			    setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
				hlog("socket timeouts: %s", strerror(errno));
		}
		STAT_ADD(connections, 1);
		hlog("front-end connected");
		running = serve(cfd, sfd, &opt, eng, progs);
		close(cfd);
		hlog("front-end gone: %llu resources, %llu contexts, %llu bytes mapped remain",
		     (unsigned long long)STAT_GET(resources),
		     (unsigned long long)STAT_GET(contexts),
		     (unsigned long long)STAT_GET(mapped_bytes));
	}
	close(lfd);
	unlink(path);
	engine_free(eng);
	programs_free(progs);
	stats_print(stderr);
	return 0;
}
