/* SPDX-License-Identifier: MIT */
/* frontend.c - the test front-end (see frontend.h). */
#include "frontend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define RAM_SIZE (4u << 20)
#define SCRATCH_SIZE 0x80000u

static void *dev_thread(void *arg)
{
	struct fe *f = arg;

	while (vu_handle_one(&f->conn) == 0)
		;
	__atomic_store_n(&f->exited, 1, __ATOMIC_RELEASE);
	return NULL;
}

void *fe_ptr(struct fe *f, uint64_t gpa)
{
	for (int i = 0; i < FE_NREG; i++)
		if (gpa >= f->reg[i].gpa && gpa < f->reg[i].gpa + f->reg[i].size)
			return f->ram + f->reg[i].off + (gpa - f->reg[i].gpa);
	fail_msg("gpa %#llx not in test RAM", (unsigned long long)gpa);
	return NULL;
}

uint64_t fe_alloc(struct fe *f, int region, uint64_t size, uint64_t align)
{
	int h = region == 2 ? 1 : 0;
	uint64_t end = region == 2 ? FE_R2 + f->reg[2].size : FE_R1 + f->reg[1].size;
	uint64_t a;

	if (!align)
		align = 4096;
	a = (f->heap[h] + align - 1) & ~(align - 1);
	assert_true(a + size <= end);
	f->heap[h] = a + size;
	return a;
}

/* Scratch space for requests and responses, reused round-robin. */
static uint64_t scratch_next;

static uint64_t scratch(uint64_t size)
{
	uint64_t a = (scratch_next + 63) & ~63ull;

	if (a < FE_R1 || a + size > FE_R1 + SCRATCH_SIZE)
		a = FE_R1;
	assert_true(a + size <= FE_R1 + SCRATCH_SIZE);
	scratch_next = a + size;
	return a;
}

int fe_send(struct fe *f, uint32_t req, uint32_t flags, const void *p, uint32_t size,
	    const int *fds, unsigned nfds)
{
	uint8_t buf[12 + 4096];
	uint32_t h[3] = { req, flags, size };
	union {
		char b[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr a;
	} ctl;
	struct iovec iov = { buf, 12 + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert_true(size <= 4096);
	memcpy(buf, h, 12);
	if (size)
		memcpy(buf + 12, p, size);
	if (nfds) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	return sendmsg(f->sock, &mh, MSG_NOSIGNAL) == (ssize_t)(12 + size) ? 0 : -1;
}

int fe_recv(struct fe *f, uint32_t *req, uint32_t *flags, void *p, uint32_t cap,
	    uint32_t *size)
{
	struct pollfd pf = { f->sock, POLLIN, 0 };
	uint32_t h[3];

	if (poll(&pf, 1, 3000) != 1)
		return -1;
	if (recv(f->sock, h, 12, MSG_WAITALL) != 12)
		return -1;
	*req = h[0];
	*flags = h[1];
	*size = h[2];
	if (h[2] > cap)
		return -1;
	if (h[2] && recv(f->sock, p, h[2], MSG_WAITALL) != (ssize_t)h[2])
		return -1;
	return 0;
}

int64_t fe_ack(struct fe *f, uint32_t req, const void *p, uint32_t size,
	       const int *fds, unsigned nfds)
{
	uint32_t r, fl, sz;
	uint64_t v;

	if (fe_send(f, req, VU_VERSION | VU_FLAG_NEED_REPLY, p, size, fds, nfds))
		return -1;
	if (fe_recv(f, &r, &fl, &v, sizeof(v), &sz) || r != req || sz != 8 ||
	    fl != (VU_VERSION | VU_FLAG_REPLY))
		return -1;
	return (int64_t)v;
}

uint64_t fe_get_u64(struct fe *f, uint32_t req)
{
	uint32_t r, fl, sz;
	uint64_t v;

	if (fe_send(f, req, VU_VERSION, NULL, 0, NULL, 0) ||
	    fe_recv(f, &r, &fl, &v, sizeof(v), &sz) || r != req || sz != 8)
		return UINT64_MAX;
	return v;
}

static void setup_ring(struct fe *f, int q, uint16_t num, uint64_t base_gpa, uint16_t base)
{
	struct fe_ring *r = &f->ring[q];
	struct vhost_vring_state st = { (unsigned)q, num };
	struct vhost_vring_addr a;
	uint64_t v;

	r->num = num;
	r->desc_gpa = base_gpa;
	r->avail_gpa = base_gpa + 0x1000;
	r->used_gpa = base_gpa + 0x2000;
	r->desc = fe_ptr(f, r->desc_gpa);
	r->avail = fe_ptr(f, r->avail_gpa);
	r->used = fe_ptr(f, r->used_gpa);
	memset(r->desc, 0, 0x1000);
	memset(r->avail, 0, 0x1000);
	memset(r->used, 0, 0x2000);
	r->avail_idx = base;
	r->avail->idx = base;
	r->used->idx = base;
	r->next_desc = 0;

	assert_int_equal(fe_ack(f, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 0);
	memset(&a, 0, sizeof(a));
	a.index = (unsigned)q;
	a.desc_user_addr = r->desc_gpa + FE_QVA_BIAS;
	a.used_user_addr = r->used_gpa + FE_QVA_BIAS;
	a.avail_user_addr = r->avail_gpa + FE_QVA_BIAS;
	assert_int_equal(fe_ack(f, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	st.num = base;
	assert_int_equal(fe_ack(f, VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 0);
	r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(r->call >= 0 && r->kick >= 0);
	v = (uint64_t)q;
	assert_int_equal(fe_ack(f, VU_SET_VRING_CALL, &v, 8, &r->call, 1), 0);
	assert_int_equal(fe_ack(f, VU_SET_VRING_KICK, &v, 8, &r->kick, 1), 0);
	st.num = 1;
	assert_int_equal(fe_ack(f, VU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0), 0);
}

void fe_set_mem_table(struct fe *f)
{
	struct vu_mem_region regs[FE_NREG];
	uint8_t mt[8 + sizeof(regs)];
	int fds[FE_NREG];

	memset(mt, 0, sizeof(mt));
	mt[0] = FE_NREG;
	for (int i = 0; i < FE_NREG; i++) {
		regs[i].guest_addr = f->reg[i].gpa;
		regs[i].size = f->reg[i].size;
		regs[i].user_addr = f->reg[i].gpa + FE_QVA_BIAS;
		regs[i].mmap_offset = f->reg[i].off;
		fds[i] = f->memfd;
	}
	memcpy(mt + 8, regs, sizeof(regs));
	assert_int_equal(fe_ack(f, VU_SET_MEM_TABLE, mt, sizeof(mt), fds, FE_NREG), 0);
}

void fe_start(struct fe *f, const struct fe_opts *o)
{
	struct fe_opts def = { 0 };
	struct vu_options vo = { 0 };
	int sv[2], bp[2];
	uint64_t feat, pf;

	if (!o)
		o = &def;
	memset(f, 0, sizeof(*f));
	f->memfd = memfd_create("guest-ram", MFD_CLOEXEC | (o->seal ? MFD_ALLOW_SEALING : 0));
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, RAM_SIZE), 0);
	if (o->seal)
		assert_int_equal(fcntl(f->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	f->ram_size = RAM_SIZE;
	f->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->ram != MAP_FAILED);
	f->reg[0].gpa = FE_R0; f->reg[0].size = 0x100000; f->reg[0].off = 0;
	f->reg[1].gpa = FE_R1; f->reg[1].size = 0x100000; f->reg[1].off = 0x100000;
	f->reg[2].gpa = FE_R2; f->reg[2].size = 0x1ff000; f->reg[2].off = 0x200800;
	f->heap[0] = FE_R1 + SCRATCH_SIZE;
	f->heap[1] = FE_R2;
	scratch_next = FE_R1;

	if (o->socket_path) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int tries;

		strncpy(a.sun_path, o->socket_path, sizeof(a.sun_path) - 1);
		f->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(f->sock >= 0);
		for (tries = 0; tries < 500; tries++) {
			if (connect(f->sock, (struct sockaddr *)&a, sizeof(a)) == 0)
				break;
			usleep(10000);
		}
		assert_true(tries < 500);
	} else {
		f->eng = engine_new_backend(o->threads ? o->threads : 2, o->backend);
		assert_non_null(f->eng);
		f->gpu = gpu_device_new(f->eng, o->limits);
		assert_non_null(f->gpu);
		if (o->progs) {
			engine_set_programs(f->eng, o->progs);
			gpu_device_set_programs(f->gpu, o->progs);
		}
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		f->sock = sv[0];
		vo.blob_rdonly = !o->no_userptr;
		vo.num_scanouts = o->num_scanouts;
		assert_int_equal(vu_conn_init(&f->conn, sv[1], &vo, f->gpu), 0);
		assert_int_equal(pthread_create(&f->th, NULL, dev_thread, f), 0);
		f->running = true;
	}

	/* The handshake, in the order UML's front-end uses. */
	assert_int_equal(fe_send(f, VU_SET_OWNER, VU_VERSION, NULL, 0, NULL, 0), 0);
	feat = fe_get_u64(f, VU_GET_FEATURES);
	assert_true(feat != UINT64_MAX);
	pf = fe_get_u64(f, VU_GET_PROTOCOL_FEATURES);
	assert_true(pf & (1ull << VU_PROTOCOL_F_REPLY_ACK));
	pf = (1ull << VU_PROTOCOL_F_REPLY_ACK) | (1ull << VU_PROTOCOL_F_CONFIG) |
	     (1ull << VU_PROTOCOL_F_BACKEND_REQ);
	/* NEED_REPLY on the message that negotiates REPLY_ACK, as UML does. */
	assert_int_equal(fe_ack(f, VU_SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, bp), 0);
	assert_int_equal(fe_ack(f, VU_SET_BACKEND_REQ_FD, NULL, 0, &bp[1], 1), 0);
	close(bp[1]);
	f->backend_peer = bp[0];
	f->features = feat;
	assert_int_equal(fe_ack(f, VU_SET_FEATURES, &feat, 8, NULL, 0), 0);

	fe_set_mem_table(f);
	setup_ring(f, 0, o->ctrl_num ? o->ctrl_num : 16, FE_R0, o->base);
	setup_ring(f, 1, 8, FE_R0 + 0x10000, 0);
}

void fe_stop(struct fe *f)
{
	if (f->running) {
		shutdown(f->sock, SHUT_RDWR);
		close(f->sock);
		pthread_join(f->th, NULL);
		vu_conn_fini(&f->conn);
		close(f->conn.fd);
		gpu_device_free(f->gpu);
		engine_free(f->eng);
		f->running = false;
	} else if (f->sock > 0) {
		close(f->sock);
	}
	for (int q = 0; q < 2; q++) {
		if (f->ring[q].kick > 0)
			close(f->ring[q].kick);
		if (f->ring[q].call > 0)
			close(f->ring[q].call);
	}
	if (f->backend_peer > 0)
		close(f->backend_peer);
	munmap(f->ram, f->ram_size);
	close(f->memfd);
	memset(f, 0, sizeof(*f));
}

static void publish(struct fe_ring *r, uint16_t head)
{
	r->avail->ring[r->avail_idx % r->num] = head;
	r->avail_idx++;
	__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
}

uint64_t fe_post(struct fe *f, int q, const void *req, size_t len, size_t resp_cap,
		 unsigned split)
{
	struct fe_ring *r = &f->ring[q];
	uint64_t req_gpa = scratch(len ? len : 1);
	uint64_t resp_gpa = resp_cap ? scratch(resp_cap) : 0;
	unsigned n = split + (resp_cap ? 1 : 0);
	uint16_t head = r->next_desc % r->num, d = head;
	size_t off = 0;

	assert_true(split >= 1 && n <= r->num);
	memcpy(fe_ptr(f, req_gpa), req, len);
	if (resp_cap)
		memset(fe_ptr(f, resp_gpa), 0xee, resp_cap);
	for (unsigned i = 0; i < n; i++) {
		struct vring_desc *x = &r->desc[d];
		uint16_t next = (uint16_t)((d + 1) % r->num);

		if (i < split) {
			size_t piece = i + 1 == split ? len - off : len / split;

			x->addr = req_gpa + off;
			x->len = (uint32_t)piece;
			x->flags = 0;
			off += piece;
		} else {
			x->addr = resp_gpa;
			x->len = (uint32_t)resp_cap;
			x->flags = VRING_DESC_F_WRITE;
		}
		if (i + 1 < n) {
			x->flags |= VRING_DESC_F_NEXT;
			x->next = next;
		}
		d = next;
	}
	r->next_desc = d;
	publish(r, head);
	return resp_gpa;
}

void fe_post_raw(struct fe *f, int q, const struct vring_desc *dd, unsigned n)
{
	struct fe_ring *r = &f->ring[q];

	/* The caller's descriptors go to slots 0..n-1 as given. */
	for (unsigned i = 0; i < n; i++)
		r->desc[i] = dd[i];
	r->next_desc = (uint16_t)n;
	publish(r, 0);
}

void fe_kick(struct fe *f, int q)
{
	uint64_t one = 1;

	assert_int_equal(write(f->ring[q].kick, &one, 8), 8);
}

int fe_wait_used(struct fe *f, int q, uint16_t target, int timeout_ms)
{
	struct fe_ring *r = &f->ring[q];

	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		struct pollfd pf = { r->call, POLLIN, 0 };
		uint64_t v;

		if (__atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE) == target)
			return 0;
		if (poll(&pf, 1, 10) == 1 && read(r->call, &v, 8) < 0)
			return -1;
	}
	return __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE) == target ? 0 : -1;
}

void fe_used_elem(struct fe *f, int q, uint16_t idx, uint32_t *id, uint32_t *len)
{
	struct fe_ring *r = &f->ring[q];

	*id = r->used->ring[idx % r->num].id;
	*len = r->used->ring[idx % r->num].len;
}

int fe_cmd(struct fe *f, int q, const void *req, size_t len, void *resp,
	   size_t resp_cap, unsigned split)
{
	uint16_t target = (uint16_t)(f->ring[q].avail_idx + 1);
	uint64_t rg = fe_post(f, q, req, len, resp_cap, split);
	uint32_t id, ulen;

	fe_kick(f, q);
	if (fe_wait_used(f, q, target, 60000))
		return -1;
	fe_used_elem(f, q, (uint16_t)(target - 1), &id, &ulen);
	if (resp_cap)
		memcpy(resp, fe_ptr(f, rg), resp_cap);
	return (int)ulen;
}

uint32_t fe_cmd_simple(struct fe *f, const void *req, size_t len)
{
	struct virtio_gpu_ctrl_hdr h;

	if (fe_cmd(f, 0, req, len, &h, sizeof(h), 1) != (int)sizeof(h))
		return 0;
	return h.type;
}

int daemon_files_make(struct daemon_files *d, const char *name)
{
	int n = snprintf(d->dir, sizeof(d->dir), "/tmp/%s-XXXXXX", name);

	if (n < 0 || (size_t)n >= sizeof(d->dir) || !mkdtemp(d->dir))
		return -1;
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
	return 0;
}

void daemon_files_remove(const struct daemon_files *d)
{
	unlink(d->sock);
	unlink(d->log);
	rmdir(d->dir);
}

pid_t daemon_spawn(char *const *args, const char *log_path)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		execv(args[0], args);
		_exit(127);
	}
	return pid;
}

int daemon_wait(pid_t pid, int ms)
{
	int st;

	for (int i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

char *daemon_log(const char *log_path)
{
	static char buf[1 << 16];
	FILE *f = fopen(log_path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}
