/* SPDX-License-Identifier: MIT */
/* stats.c - counters and logging. */
#include "stats.h"

#include <stdarg.h>
#include <time.h>

#include "window.h"

struct hostd_stats hostd_stats;
int hostd_verbose;

static const char *const op_names[VGPU_OP_COUNT] = {
	"nop", "copy", "fill", "checksum", "saxpy", "sum_f32", "sgemm", "reduce_f32",
	"program_build", "program_binary", "program_release", "kernel_create",
	"kernel_release", "dispatch", "query",
};
_Static_assert(WIN_NREASONS == sizeof(hostd_stats.win_fallback) / sizeof(hostd_stats.win_fallback[0]),
	       "one fallback counter per reason");

void stats_print(FILE *f)
{
	static const char *const zc[3] = { "-", "yes", "no" };

	fprintf(f, "virtgpu-hostd stats:\n");
	fprintf(f, "  connections      %llu\n", (unsigned long long)STAT_GET(connections));
	fprintf(f, "  vhost_user_msgs  %llu\n", (unsigned long long)STAT_GET(vu_msgs));
	fprintf(f, "  vhost_user_errs  %llu\n", (unsigned long long)STAT_GET(vu_errors));
	fprintf(f, "  commands         %llu\n", (unsigned long long)STAT_GET(cmds));
	fprintf(f, "  command_errors   %llu\n", (unsigned long long)STAT_GET(cmd_errors));
	fprintf(f, "  bad_chains       %llu\n", (unsigned long long)STAT_GET(bad_chains));
	fprintf(f, "  cursor_commands  %llu\n", (unsigned long long)STAT_GET(cursor_cmds));
	fprintf(f, "  fences           %llu\n", (unsigned long long)STAT_GET(fences));
	fprintf(f, "  resources        %llu\n", (unsigned long long)STAT_GET(resources));
	fprintf(f, "  resource_bytes   %llu\n", (unsigned long long)STAT_GET(resource_bytes));
	fprintf(f, "  backings         %llu\n", (unsigned long long)STAT_GET(backings));
	fprintf(f, "  backing_walks    %llu\n", (unsigned long long)STAT_GET(backing_walks));
	fprintf(f, "  contexts         %llu\n", (unsigned long long)STAT_GET(contexts));
	fprintf(f, "  bytes_mapped     %llu\n", (unsigned long long)STAT_GET(mapped_bytes));
	fprintf(f, "  submits          %llu\n", (unsigned long long)STAT_GET(submits));
	fprintf(f, "  submit_errors    %llu\n", (unsigned long long)STAT_GET(submit_errors));
	fprintf(f, "  regions_sealed   %llu\n", (unsigned long long)STAT_GET(regions_sealed));
	fprintf(f, "  windows          %llu (%llu bytes, %llu of %llu mappings)\n",
		(unsigned long long)STAT_GET(win_live), (unsigned long long)STAT_GET(win_bytes),
		(unsigned long long)STAT_GET(win_maps), (unsigned long long)win_budget());
	for (unsigned i = 1; i < WIN_NREASONS; i++)
		fprintf(f, "  no_window_%-9s %llu\n", win_reason_name(i),
			(unsigned long long)STAT_GET(win_fallback[i]));
	fprintf(f, "  op_timeouts      %llu\n", (unsigned long long)STAT_GET(op_timeouts));
	fprintf(f, "  op_aborts        %llu\n", (unsigned long long)STAT_GET(op_aborts));
	fprintf(f, "  cl_zero_copy     %s\n", zc[STAT_GET(cl_zero_copy) % 3]);
	fprintf(f, "  cl_copied_bytes  %llu\n", (unsigned long long)STAT_GET(cl_copied_bytes));
	fprintf(f, "  cl_buffers       %llu (%llu live)\n", (unsigned long long)STAT_GET(cl_buffers),
		(unsigned long long)STAT_GET(cl_buffers_live));
	fprintf(f, "  cl_threads       %llu\n", (unsigned long long)STAT_GET(cl_threads));
	fprintf(f, "  cl_no_window     %llu\n", (unsigned long long)STAT_GET(cl_nowindow));
	fprintf(f, "  cl_errors        %llu\n", (unsigned long long)STAT_GET(cl_errors));
	fprintf(f, "  workers          %llu (%llu started, %llu lost, %llu mappings refused)\n",
		(unsigned long long)STAT_GET(workers), (unsigned long long)STAT_GET(workers_started),
		(unsigned long long)STAT_GET(workers_lost),
		(unsigned long long)STAT_GET(worker_refused_maps));
	fprintf(f, "  worker_windows   %llu (%llu dispatches)\n",
		(unsigned long long)STAT_GET(worker_windows), (unsigned long long)STAT_GET(dispatches));
	for (unsigned i = 0; i < VGPU_OP_COUNT; i++)
		fprintf(f, "  op_%-15s %llu ops %llu bytes\n", op_names[i],
			(unsigned long long)STAT_GET(op_count[i]),
			(unsigned long long)STAT_GET(op_bytes[i]));
	fflush(f);
}

void hlog(const char *fmt, ...)
{
	struct timespec ts;
	char buf[1024];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "virtgpu-hostd[%lld.%03ld]: %s\n", (long long)ts.tv_sec,
		ts.tv_nsec / 1000000, buf);
}
