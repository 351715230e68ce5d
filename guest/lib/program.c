/* SPDX-License-Identifier: MIT */
/*
 * program.c - the guest's own programs (capset version 3): building them,
 * their kernels, dispatches, and the device's OpenCL description.
 *
 * Programs and kernels are objects of the context named by ids the
 * library hands out (1 .. the device's max_programs / max_kernels). A
 * build, a kernel's creation and a release each run as a submit of their
 * own and are waited for; a dispatch is an op of a batch like any other,
 * its buffers bound to it so that the copy path and the ordering of
 * submits know what it touches.
 */
#include "vgpu_private.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a build's outcome: the record and the first part of its log. */
#define BUILD_OUT_BYTES (256u * 1024u)
#define MAX_VALUE_BYTES 4096u

struct vgpu_program {
	struct vgpu_device *dev;
	uint32_t id;
	uint32_t num_kernels;
	uint64_t binary_size;
};

struct vgpu_kernel {
	struct vgpu_device *dev;
	uint32_t id;
	struct vgpu_kernel_info info;      /* host byte order */
	struct vgpu_kernel_arg_info *args; /* info.num_args */
	char name[VGPU_KERNEL_NAME_MAX];
};

/* ---- ids ---- */

static int id_alloc(struct vgpu_device *dev, uint64_t **map, uint32_t max, uint32_t *id)
{
	int err = -ENOSPC;

	pthread_mutex_lock(&dev->lock);
	if (!*map)
		*map = calloc((max + 63) / 64, sizeof(**map));
	if (!*map) {
		err = -ENOMEM;
	} else {
		for (uint32_t w = 0; w < (max + 63) / 64 && err; w++) {
			unsigned int bit;

			if ((*map)[w] == ~0ull)
				continue;
			bit = (unsigned int)__builtin_ctzll(~(*map)[w]);
			if (w * 64 + bit >= max)
				break;
			(*map)[w] |= 1ull << bit;
			*id = w * 64 + bit + 1;
			err = 0;
		}
	}
	pthread_mutex_unlock(&dev->lock);
	return err;
}

static void id_free(struct vgpu_device *dev, uint64_t *map, uint32_t id)
{
	pthread_mutex_lock(&dev->lock);
	if (map && id)
		map[(id - 1) / 64] &= ~(1ull << ((id - 1) % 64));
	pthread_mutex_unlock(&dev->lock);
}

/* ---- one op, waited for ---- */

static int programs_check(struct vgpu_device *dev, const char *fn)
{
	int err;

	if (!dev)
		return vgpu_fail(-EINVAL, "%s: dev is NULL", fn);
	err = vgpu_dev_check(dev, fn);
	if (err)
		return err;
	if (!(dev->info.features & VGPU_FEATURE_PROGRAMS))
		return vgpu_fail(-ENOEXEC, "%s: the device runs no programs (capset version %u, "
				 "features 0x%x)", fn, dev->info.caps.version, dev->info.features);
	return 0;
}

/* Long enough for any op the device lets run: its budget, and more. */
static int op_timeout_ms(const struct vgpu_device *dev)
{
	uint64_t ms = dev->info.time_budget_ns / 1000000 + 10000;

	if (ms < VGPU_DEFAULT_TIMEOUT_MS)
		ms = VGPU_DEFAULT_TIMEOUT_MS;
	return ms > 3600000 ? 3600000 : (int)ms;
}

static int run_op(struct vgpu_device *dev, const char *fn, const struct vgpu_compute_op *op,
		  struct vgpu_buffer *dst, struct vgpu_buffer *src, const void *payload,
		  uint32_t plen)
{
	struct vgpu_submit_result r;
	struct vgpu_batch *b;
	int err = vgpu_batch_create(dev, &b);

	if (err)
		return err;
	vgpu_batch_set_timeout(b, op_timeout_ms(dev));
	err = vgpu_batch_add_op(b, op, dst, src, payload, plen, NULL, 0);
	if (!err) {
		err = vgpu_batch_submit(b, &r);
		if (err && r.device_result != VGPU_RESULT_NOT_EXECUTED)
			vgpu_fail(err, "%s: the device said: %s", fn,
				  vgpu_result_str(r.device_result));
	}
	vgpu_batch_destroy(b);
	return err;
}

/* ---- programs ---- */

VGPU_EXPORT int vgpu_program_build(struct vgpu_device *dev, uint32_t kind, const void *data,
				   size_t size, const char *options, struct vgpu_program **out,
				   struct vgpu_build_log *log)
{
	static const char fn[] = "vgpu_program_build";
	size_t olen = options ? strlen(options) : 0;
	struct vgpu_compute_op op = { .opcode = VGPU_OP_PROGRAM_BUILD };
	struct vgpu_buffer *in = NULL, *res = NULL;
	struct vgpu_program_input pi;
	struct vgpu_build_result br;
	struct vgpu_program *p;
	uint32_t id = 0;
	uint8_t *q;
	int err;

	if (!out)
		return vgpu_fail(-EINVAL, "%s: out is NULL", fn);
	*out = NULL;
	if (log && log->struct_size < offsetof(struct vgpu_build_log, log) + sizeof(log->log))
		return vgpu_fail(-EINVAL, "%s: log->struct_size %zu is smaller than any struct "
				 "vgpu_build_log", fn, log->struct_size);
	if (log) {
		log->status = 0;
		log->num_kernels = 0;
		log->binary_size = 0;
		log->log = NULL;
	}
	err = programs_check(dev, fn);
	if (err)
		return err;
	if (!data || !size)
		return vgpu_fail(-EINVAL, "%s: no program (data NULL or size 0)", fn);
	if (kind != VGPU_PROGRAM_SOURCE && kind != VGPU_PROGRAM_BINARY && kind != VGPU_PROGRAM_IL)
		return vgpu_fail(-EINVAL, "%s: kind %u is none of VGPU_PROGRAM_SOURCE, _BINARY, "
				 "_IL", fn, kind);
	if (kind == VGPU_PROGRAM_IL && !(dev->info.features & VGPU_FEATURE_IL))
		return vgpu_fail(-EOPNOTSUPP, "%s: the device takes no SPIR-V", fn);
	if (size > dev->info.max_program_bytes)
		return vgpu_fail(-E2BIG, "%s: %zu bytes of program, the device takes %u", fn,
				 size, dev->info.max_program_bytes);
	if (olen >= 4096)
		return vgpu_fail(-EINVAL, "%s: options of %zu bytes (at most 4095)", fn, olen);
	p = calloc(1, sizeof(*p));
	if (!p)
		return vgpu_fail(-ENOMEM, "%s: out of memory", fn);
	err = id_alloc(dev, &dev->prog_ids, dev->info.max_programs, &id);
	if (err) {
		free(p);
		return vgpu_fail(err, "%s: %s", fn, err == -ENOSPC ?
				 "every program id of the context is in use" : "out of memory");
	}
	err = vgpu_buffer_alloc(dev, sizeof(pi) + olen + size, 0, &in);
	if (!err)
		err = vgpu_buffer_alloc(dev, BUILD_OUT_BYTES, 0, &res);
	if (err)
		goto out;
	pi.kind = htole32(kind);
	pi.options_len = htole32((uint32_t)olen);
	pi.data_len = htole64(size);
	q = vgpu_buffer_data(in);
	memcpy(q, &pi, sizeof(pi));
	if (olen)
		memcpy(q + sizeof(pi), options, olen);
	memcpy(q + sizeof(pi) + olen, data, size);
	op.arg0 = id;
	op.arg1 = sizeof(pi) + olen + size;
	op.arg2 = BUILD_OUT_BYTES;
	err = run_op(dev, fn, &op, res, in, NULL, 0);
	if (err)
		goto out;
	memcpy(&br, vgpu_buffer_data(res), sizeof(br));
	br.status = (int32_t)le32toh((uint32_t)br.status);
	br.log_written = le64toh(br.log_written);
	if (br.log_written > BUILD_OUT_BYTES - sizeof(br))
		br.log_written = BUILD_OUT_BYTES - sizeof(br);
	if (log) {
		log->status = br.status;
		log->num_kernels = le32toh(br.num_kernels);
		log->binary_size = le64toh(br.binary_size);
		if (br.log_written) {
			log->log = malloc(br.log_written + 1);
			if (log->log) {
				memcpy(log->log, (uint8_t *)vgpu_buffer_data(res) + sizeof(br),
				       br.log_written);
				log->log[br.log_written] = 0;
			}
		}
	}
	if (br.status == 0) {
		p->dev = dev;
		p->id = id;
		p->num_kernels = le32toh(br.num_kernels);
		p->binary_size = le64toh(br.binary_size);
		*out = p;
		p = NULL;
		id = 0;
	}
out:
	vgpu_buffer_destroy(in);
	vgpu_buffer_destroy(res);
	/* A failed build leaves no program on the device. */
	if (id)
		id_free(dev, dev->prog_ids, id);
	free(p);
	return err;
}

VGPU_EXPORT uint32_t vgpu_program_num_kernels(const struct vgpu_program *p)
{
	return p ? p->num_kernels : 0;
}

VGPU_EXPORT int vgpu_program_binary(struct vgpu_program *p, void **data, size_t *size)
{
	static const char fn[] = "vgpu_program_binary";
	struct vgpu_compute_op op = { .opcode = VGPU_OP_PROGRAM_BINARY };
	struct vgpu_buffer *res = NULL;
	struct vgpu_blob_header bh;
	uint64_t room;
	int err;

	if (!p || !data || !size)
		return vgpu_fail(-EINVAL, "%s: program, data or size is NULL", fn);
	*data = NULL;
	*size = 0;
	err = programs_check(p->dev, fn);
	if (err)
		return err;
	room = sizeof(bh) + (p->binary_size ? p->binary_size : 1u << 20);
	for (int tries = 0; tries < 2; tries++) {
		err = vgpu_buffer_alloc(p->dev, room, 0, &res);
		if (err)
			return err;
		op.arg0 = p->id;
		op.arg2 = room;
		err = run_op(p->dev, fn, &op, res, NULL, NULL, 0);
		if (err)
			break;
		memcpy(&bh, vgpu_buffer_data(res), sizeof(bh));
		bh.size = le64toh(bh.size);
		bh.written = le64toh(bh.written);
		if (bh.written == bh.size && bh.size <= room - sizeof(bh)) {
			*data = malloc(bh.size ? bh.size : 1);
			if (!*data) {
				err = vgpu_fail(-ENOMEM, "%s: out of memory", fn);
				break;
			}
			memcpy(*data, (uint8_t *)vgpu_buffer_data(res) + sizeof(bh), bh.size);
			*size = bh.size;
			break;
		}
		/* Larger than the build said: once more with room for it. */
		vgpu_buffer_destroy(res);
		res = NULL;
		if (bh.size > (1ull << 30))
			return vgpu_fail(-E2BIG, "%s: a binary of %llu bytes", fn,
					 (unsigned long long)bh.size);
		room = sizeof(bh) + bh.size;
		err = vgpu_fail(-EPROTO, "%s: the binary's size changed between two asks", fn);
	}
	vgpu_buffer_destroy(res);
	return err;
}

static void release(struct vgpu_device *dev, uint32_t opcode, uint32_t id, const char *fn)
{
	struct vgpu_compute_op op = { .opcode = opcode, .arg0 = id };

	/* A lost context or device has nothing left to release. */
	if (!vgpu_dev_check(dev, fn))
		(void)run_op(dev, fn, &op, NULL, NULL, NULL, 0);
}

VGPU_EXPORT void vgpu_program_destroy(struct vgpu_program *p)
{
	if (!p)
		return;
	release(p->dev, VGPU_OP_PROGRAM_RELEASE, p->id, "vgpu_program_destroy");
	id_free(p->dev, p->dev->prog_ids, p->id);
	free(p);
}

/* ---- kernels ---- */

VGPU_EXPORT int vgpu_kernel_create(struct vgpu_program *p, const char *name,
				   struct vgpu_kernel **out)
{
	static const char fn[] = "vgpu_kernel_create";
	struct vgpu_compute_op op = { .opcode = VGPU_OP_KERNEL_CREATE };
	struct vgpu_buffer *res = NULL;
	struct vgpu_device *dev;
	struct vgpu_kernel *k;
	size_t nlen, room;
	uint32_t id = 0;
	const uint8_t *q;
	int err;

	if (!out)
		return vgpu_fail(-EINVAL, "%s: out is NULL", fn);
	*out = NULL;
	if (!p || !name)
		return vgpu_fail(-EINVAL, "%s: program or name is NULL", fn);
	dev = p->dev;
	err = programs_check(dev, fn);
	if (err)
		return err;
	nlen = strlen(name);
	if (nlen == 0 || nlen >= VGPU_KERNEL_NAME_MAX)
		return vgpu_fail(-EINVAL, "%s: a name of %zu characters (1 to %u)", fn, nlen,
				 VGPU_KERNEL_NAME_MAX - 1);
	k = calloc(1, sizeof(*k));
	if (!k)
		return vgpu_fail(-ENOMEM, "%s: out of memory", fn);
	err = id_alloc(dev, &dev->kernel_ids, dev->info.max_kernels, &id);
	if (err) {
		free(k);
		return vgpu_fail(err, "%s: %s", fn, err == -ENOSPC ?
				 "every kernel id of the context is in use" : "out of memory");
	}
	room = sizeof(struct vgpu_kernel_info) +
	       (size_t)dev->info.max_kernel_args * sizeof(struct vgpu_kernel_arg_info);
	err = vgpu_buffer_alloc(dev, room, 0, &res);
	if (err)
		goto out;
	op.arg0 = id;
	op.arg1 = p->id;
	op.arg2 = room;
	op.len = nlen + 1;
	err = run_op(dev, fn, &op, res, NULL, name, (uint32_t)nlen + 1);
	if (err)
		goto out;
	q = vgpu_buffer_data(res);
	memcpy(&k->info, q, sizeof(k->info));
	k->info.num_args = le32toh(k->info.num_args);
	k->info.status = (int32_t)le32toh((uint32_t)k->info.status);
	k->info.work_group_size = le64toh(k->info.work_group_size);
	for (int d = 0; d < 3; d++)
		k->info.compile_work_group_size[d] = le64toh(k->info.compile_work_group_size[d]);
	k->info.preferred_multiple = le64toh(k->info.preferred_multiple);
	k->info.local_mem_size = le64toh(k->info.local_mem_size);
	k->info.private_mem_size = le64toh(k->info.private_mem_size);
	if (k->info.status) {
		err = vgpu_fail(-ENOENT, "%s: no kernel '%s' in the program (OpenCL error %d)", fn,
				name, k->info.status);
		goto out;
	}
	if (k->info.num_args > dev->info.max_kernel_args) {
		/* The device made it, but says more than it may: let it go. */
		struct vgpu_compute_op rel = { .opcode = VGPU_OP_KERNEL_RELEASE, .arg0 = id };

		(void)run_op(dev, fn, &rel, NULL, NULL, NULL, 0);
		err = vgpu_fail(-EPROTO, "%s: the device says %u arguments, more than its %u", fn,
				k->info.num_args, dev->info.max_kernel_args);
		goto out;
	}
	k->args = calloc(k->info.num_args ? k->info.num_args : 1, sizeof(*k->args));
	if (!k->args) {
		struct vgpu_compute_op rel = { .opcode = VGPU_OP_KERNEL_RELEASE, .arg0 = id };

		(void)run_op(dev, fn, &rel, NULL, NULL, NULL, 0);
		err = vgpu_fail(-ENOMEM, "%s: out of memory", fn);
		goto out;
	}
	memcpy(k->args, q + sizeof(k->info), k->info.num_args * sizeof(*k->args));
	for (uint32_t i = 0; i < k->info.num_args; i++) {
		k->args[i].space = le32toh(k->args[i].space);
		k->args[i].access = le32toh(k->args[i].access);
		k->args[i].type_qualifier = le32toh(k->args[i].type_qualifier);
		k->args[i].type_name[VGPU_ARG_NAME_MAX - 1] = 0;
		k->args[i].name[VGPU_ARG_NAME_MAX - 1] = 0;
	}
	memcpy(k->name, name, nlen + 1);
	k->dev = dev;
	k->id = id;
	*out = k;
	k = NULL;
	id = 0;
out:
	vgpu_buffer_destroy(res);
	if (id)
		id_free(dev, dev->kernel_ids, id);
	if (k)
		free(k->args);
	free(k);
	return err;
}

VGPU_EXPORT const struct vgpu_kernel_info *vgpu_kernel_get_info(const struct vgpu_kernel *k)
{
	return k ? &k->info : NULL;
}

VGPU_EXPORT const struct vgpu_kernel_arg_info *vgpu_kernel_get_args(const struct vgpu_kernel *k,
								    uint32_t *num_args)
{
	if (num_args)
		*num_args = k ? k->info.num_args : 0;
	return k ? k->args : NULL;
}

VGPU_EXPORT const char *vgpu_kernel_name(const struct vgpu_kernel *k)
{
	return k ? k->name : NULL;
}

VGPU_EXPORT void vgpu_kernel_destroy(struct vgpu_kernel *k)
{
	if (!k)
		return;
	release(k->dev, VGPU_OP_KERNEL_RELEASE, k->id, "vgpu_kernel_destroy");
	id_free(k->dev, k->dev->kernel_ids, k->id);
	free(k->args);
	free(k);
}

/* ---- dispatch ---- */

static const char *space_name(uint32_t space)
{
	switch (space) {
	case VGPU_ARG_SPACE_GLOBAL:
		return "global";
	case VGPU_ARG_SPACE_CONSTANT:
		return "constant";
	case VGPU_ARG_SPACE_LOCAL:
		return "local";
	case VGPU_ARG_SPACE_UNKNOWN:
		return "unknown";
	default:
		return "private";
	}
}

VGPU_EXPORT int vgpu_batch_dispatch(struct vgpu_batch *b, struct vgpu_kernel *k,
				    const struct vgpu_ndrange *range,
				    const struct vgpu_kernel_arg *args, uint32_t num_args)
{
	static const char fn[] = "vgpu_batch_dispatch";
	struct vgpu_compute_op op = { .opcode = VGPU_OP_DISPATCH };
	struct vgpu_dispatch d;
	struct vgpu_device *dev;
	struct vgpu_bind *bind;
	uint64_t values = 0;
	size_t plen;
	uint8_t *payload;
	int err;

	if (!b || !k || !range || (num_args && !args))
		return vgpu_fail(-EINVAL, "%s: batch, kernel, range or args is NULL", fn);
	dev = vgpu_batch_device(b);
	if (k->dev != dev)
		return vgpu_fail(-EINVAL, "%s: the kernel belongs to another device", fn);
	err = programs_check(dev, fn);
	if (err)
		return err;
	if (num_args != k->info.num_args)
		return vgpu_fail(-EINVAL, "%s: %u arguments for kernel '%s', which takes %u", fn,
				 num_args, k->name, k->info.num_args);
	if (range->work_dim < 1 || range->work_dim > 3)
		return vgpu_fail(-EINVAL, "%s: work_dim %u (1 to 3)", fn, range->work_dim);
	for (uint32_t i = 0; i < 3; i++) {
		if (i >= range->work_dim) {
			if (range->offset[i] || range->global[i] || range->local[i])
				return vgpu_fail(-EINVAL, "%s: dimension %u is past work_dim %u but "
						 "not 0", fn, i, range->work_dim);
			continue;
		}
		if (!range->global[i])
			return vgpu_fail(-EINVAL, "%s: global size 0 in dimension %u", fn, i);
		if (range->offset[i] > UINT64_MAX - range->global[i])
			return vgpu_fail(-EINVAL, "%s: offset and global size overflow in "
					 "dimension %u", fn, i);
		if ((range->local[i] == 0) != (range->local[0] == 0))
			return vgpu_fail(-EINVAL, "%s: local sizes must be all 0 or none", fn);
	}
	for (uint32_t i = 0; i < num_args; i++) {
		const struct vgpu_kernel_arg *a = &args[i];
		uint32_t space = k->args[i].space;
		bool unknown = space == VGPU_ARG_SPACE_UNKNOWN;
		bool pointer = unknown || space == VGPU_ARG_SPACE_GLOBAL ||
			       space == VGPU_ARG_SPACE_CONSTANT;
		bool ok;

		switch (a->kind) {
		case VGPU_DARG_BUFFER:
			ok = pointer;
			if (ok && (!a->buf || a->buf->dev != dev))
				return vgpu_fail(-EINVAL, "%s: argument %u: no buffer, or one of "
						 "another device", fn, i);
			if (ok && (!a->access || (a->access & ~(VGPU_OP_READ | VGPU_OP_WRITE))))
				return vgpu_fail(-EINVAL, "%s: argument %u: access 0x%x is not "
						 "VGPU_OP_READ and/or VGPU_OP_WRITE", fn, i,
						 a->access);
			if (ok && (!a->size || a->offset > a->buf->size ||
				   a->size > a->buf->size - a->offset))
				return vgpu_fail(-ERANGE, "%s: argument %u: [%llu, +%llu) is not "
						 "inside the buffer's %zu bytes", fn, i,
						 (unsigned long long)a->offset,
						 (unsigned long long)a->size, a->buf->size);
			if (ok && (a->access & VGPU_OP_WRITE) && a->buf->read_only)
				return vgpu_fail(-EACCES, "%s: argument %u: write access to a "
						 "read-only buffer", fn, i);
			break;
		case VGPU_DARG_NULL:
			ok = pointer;
			break;
		case VGPU_DARG_VALUE:
			ok = unknown || space == VGPU_ARG_SPACE_PRIVATE;
			if (ok && (!a->value || !a->size || a->size > MAX_VALUE_BYTES))
				return vgpu_fail(-EINVAL, "%s: argument %u: a value of %llu bytes "
						 "(1 to %u)", fn, i, (unsigned long long)a->size,
						 MAX_VALUE_BYTES);
			values += (a->size + 7) & ~7ull;
			break;
		case VGPU_DARG_LOCAL:
			ok = unknown || space == VGPU_ARG_SPACE_LOCAL;
			if (ok && !a->size)
				return vgpu_fail(-EINVAL, "%s: argument %u: 0 bytes of local memory",
						 fn, i);
			break;
		default:
			return vgpu_fail(-EINVAL, "%s: argument %u: kind %u is none of "
					 "VGPU_DARG_*", fn, i, a->kind);
		}
		if (!ok)
			return vgpu_fail(-EINVAL, "%s: argument %u ('%s') is a %s %s: not one "
					 "of kind %u", fn, i, k->args[i].name,
					 space_name(space), pointer ? "pointer" : "argument",
					 a->kind);
	}
	plen = sizeof(d) + (size_t)num_args * sizeof(struct vgpu_dispatch_arg) + values;
	if (plen > dev->info.max_payload_bytes)
		return vgpu_fail(-E2BIG, "%s: %zu bytes of arguments, the device takes %u", fn,
				 plen, dev->info.max_payload_bytes);
	payload = calloc(1, plen);
	bind = calloc(num_args ? num_args : 1, sizeof(*bind));
	if (!payload || !bind) {
		free(payload);
		free(bind);
		return vgpu_fail(-ENOMEM, "%s: out of memory", fn);
	}
	memset(&d, 0, sizeof(d));
	d.work_dim = htole32(range->work_dim);
	d.num_args = htole32(num_args);
	for (uint32_t i = 0; i < range->work_dim; i++) {
		d.global_offset[i] = htole64(range->offset[i]);
		d.global_size[i] = htole64(range->global[i]);
		d.local_size[i] = htole64(range->local[i]);
	}
	memcpy(payload, &d, sizeof(d));
	values = 0;
	for (uint32_t i = 0; i < num_args; i++) {
		const struct vgpu_kernel_arg *a = &args[i];
		struct vgpu_dispatch_arg w = { .kind = htole32(a->kind) };
		uint8_t *vals = payload + sizeof(d) + (size_t)num_args * sizeof(w);

		switch (a->kind) {
		case VGPU_DARG_BUFFER:
			/* res and offset are the buffer's, at submit. */
			w.access = htole32(a->access);
			w.size = htole64(a->size);
			bind[i] = (struct vgpu_bind){ .buf = a->buf, .off = a->offset,
						      .len = a->size, .access = a->access };
			break;
		case VGPU_DARG_VALUE:
			w.offset = htole64(values);
			w.size = htole64(a->size);
			memcpy(vals + values, a->value, a->size);
			values += (a->size + 7) & ~7ull;
			break;
		case VGPU_DARG_LOCAL:
			w.size = htole64(a->size);
			break;
		default:
			break;
		}
		memcpy(payload + sizeof(d) + (size_t)i * sizeof(w), &w, sizeof(w));
	}
	op.arg0 = k->id;
	op.len = plen;
	err = vgpu_batch_add_op(b, &op, NULL, NULL, payload, (uint32_t)plen, bind, num_args);
	free(payload);
	return err;
}

/* ---- the device's description ---- */

VGPU_EXPORT int vgpu_query_device_info(struct vgpu_device *dev, void **data, size_t *size)
{
	static const char fn[] = "vgpu_query_device_info";
	struct vgpu_compute_op op = { .opcode = VGPU_OP_QUERY, .arg0 = VGPU_QUERY_DEVICE_INFO };
	struct vgpu_buffer *res = NULL;
	struct vgpu_blob_header bh;
	uint64_t room = 64 * 1024;
	int err;

	if (!data || !size)
		return vgpu_fail(-EINVAL, "%s: data or size is NULL", fn);
	*data = NULL;
	*size = 0;
	err = programs_check(dev, fn);
	if (err)
		return err;
	err = vgpu_buffer_alloc(dev, room, 0, &res);
	if (err)
		return err;
	op.arg2 = room;
	err = run_op(dev, fn, &op, res, NULL, NULL, 0);
	if (!err) {
		memcpy(&bh, vgpu_buffer_data(res), sizeof(bh));
		bh.size = le64toh(bh.size);
		bh.written = le64toh(bh.written);
		if (bh.written != bh.size || bh.size > room - sizeof(bh)) {
			err = vgpu_fail(-E2BIG, "%s: %llu bytes of device info, more than %llu", fn,
					(unsigned long long)bh.size,
					(unsigned long long)(room - sizeof(bh)));
		} else {
			*data = malloc(bh.size ? bh.size : 1);
			if (!*data) {
				err = vgpu_fail(-ENOMEM, "%s: out of memory", fn);
			} else {
				memcpy(*data, (uint8_t *)vgpu_buffer_data(res) + sizeof(bh),
				       bh.size);
				*size = bh.size;
			}
		}
	}
	vgpu_buffer_destroy(res);
	return err;
}
