// SPDX-License-Identifier: MIT
/* context.c - contexts (one device context each) and memory objects. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "icd.h"

bool icd_valid_context(cl_context c)
{
	return c && c->dispatch == &icd_dispatch && c->magic == ICD_MAGIC_CONTEXT;
}

bool icd_valid_mem(cl_mem m)
{
	return m && m->dispatch == &icd_dispatch && m->magic == ICD_MAGIC_MEM;
}

void icd_context_retain_locked(cl_context c)
{
	c->refs++;
}

/* At most this much (and an eighth of the device's memory), in at most
 * this many buffers, stays in a context's pool of released buffers. */
#define POOL_MAX_BYTES (256ull << 20)
#define POOL_MAX_COUNT 64

/* Destroy the pooled buffers; the caller holds no lock (a destroy is a
 * device command). */
static void pool_free(struct icd_pooled *e)
{
	while (e) {
		struct icd_pooled *next = e->next;

		vgpu_buffer_destroy(e->vbuf);
		munmap(e->alloc, e->alloc_size);
		free(e);
		e = next;
	}
}

/* Empty the context's pool: what it kept may be what RLIMIT_MEMLOCK lacks. */
static bool pool_flush(cl_context c)
{
	struct icd_pooled *e;
	bool had;

	pthread_mutex_lock(&icd_lock);
	e = c->pool;
	c->pool = NULL;
	c->pool_bytes = 0;
	c->pool_count = 0;
	pthread_mutex_unlock(&icd_lock);
	had = e != NULL;
	pool_free(e);
	return had;
}

/* A pooled buffer of exactly this size and access, taken out; or NULL. */
static struct icd_pooled *pool_take(cl_context c, size_t alloc_size, bool read_only)
{
	struct icd_pooled **pp, *e;

	pthread_mutex_lock(&icd_lock);
	for (pp = &c->pool; (e = *pp); pp = &e->next)
		if (e->alloc_size == alloc_size && e->read_only == read_only) {
			*pp = e->next;
			c->pool_bytes -= alloc_size;
			c->pool_count--;
			break;
		}
	pthread_mutex_unlock(&icd_lock);
	return e;
}

/* Keep a released buffer's pages and registration for the next buffer of
 * its size; false when the pool is full (the caller destroys it). Every
 * command that used the buffer held a reference to it until it completed,
 * so the device is done with its pages. */
static bool pool_put(cl_mem m)
{
	size_t cap = icd_device.global_mem / 8 < POOL_MAX_BYTES ? icd_device.global_mem / 8
								   : POOL_MAX_BYTES;
	struct icd_pooled *e;
	bool kept = false;

	if (m->ctx->lost || m->alloc_size > cap)
		return false;
	e = calloc(1, sizeof(*e));
	if (!e)
		return false;
	e->alloc = m->alloc;
	e->alloc_size = m->alloc_size;
	e->vbuf = m->vbuf;
	e->read_only = m->flags & CL_MEM_READ_ONLY;
	pthread_mutex_lock(&icd_lock);
	if (m->ctx->pool_bytes + m->alloc_size <= cap && m->ctx->pool_count < POOL_MAX_COUNT) {
		e->next = m->ctx->pool;
		m->ctx->pool = e;
		m->ctx->pool_bytes += m->alloc_size;
		m->ctx->pool_count++;
		kept = true;
	}
	pthread_mutex_unlock(&icd_lock);
	if (!kept)
		free(e);
	return kept;
}

void icd_context_release(cl_context c)
{
	struct icd_dtor_cb *cb;
	bool last;

	pthread_mutex_lock(&icd_lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&icd_lock);
	if (!last)
		return;
	while ((cb = c->dtors)) {
		c->dtors = cb->next;
		((void(CL_CALLBACK *)(cl_context, void *))cb->fn)(c, cb->data);
		free(cb);
	}
	pool_flush(c);
	vgpu_close(c->vdev);
	c->magic = ICD_MAGIC_DEAD;
	free(c);
}

static cl_int check_props(const cl_context_properties *props, cl_context ctx)
{
	size_t n = 0;

	if (!props)
		return CL_SUCCESS;
	while (props[n]) {
		if (props[n] == CL_CONTEXT_PLATFORM) {
			if ((cl_platform_id)props[n + 1] != &icd_platform)
				return CL_INVALID_PLATFORM;
		} else if (props[n] == CL_CONTEXT_INTEROP_USER_SYNC) {
			/* accepted: the ICD synchronizes nothing on its own anyway */
		} else {
			return CL_INVALID_PROPERTY;
		}
		for (size_t i = 0; i < n; i += 2)
			if (props[i] == props[n])
				return CL_INVALID_PROPERTY;
		n += 2;
		if (n + 1 > sizeof(ctx->props) / sizeof(ctx->props[0]))
			return CL_INVALID_PROPERTY;
	}
	memcpy(ctx->props, props, (n + 1) * sizeof(*props));
	ctx->num_props = n + 1;
	return CL_SUCCESS;
}

CL_API_ENTRY cl_context CL_API_CALL clCreateContext(
	const cl_context_properties *properties, cl_uint num_devices, const cl_device_id *devices,
	void(CL_CALLBACK *pfn_notify)(const char *, const void *, size_t, void *), void *user_data,
	cl_int *errcode_ret)
{
	cl_context ctx;
	cl_int err;
	int ret;

	if (!num_devices || !devices || (!pfn_notify && user_data)) {
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	for (cl_uint i = 0; i < num_devices; i++) {
		if (!icd_valid_device(devices[i])) {
			icd_set_err(errcode_ret, CL_INVALID_DEVICE);
			return NULL;
		}
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	ctx->dispatch = &icd_dispatch;
	err = check_props(properties, ctx);
	if (err) {
		free(ctx);
		icd_set_err(errcode_ret, err);
		return NULL;
	}
	ret = vgpu_open(icd_device.node, 0, &ctx->vdev);
	if (ret) {
		free(ctx);
		icd_set_err(errcode_ret, ret == -ENOMEM ? CL_OUT_OF_HOST_MEMORY
							: CL_DEVICE_NOT_AVAILABLE);
		return NULL;
	}
	ctx->magic = ICD_MAGIC_CONTEXT;
	ctx->refs = 1;
	ctx->notify = pfn_notify;
	ctx->notify_data = user_data;
	icd_set_err(errcode_ret, CL_SUCCESS);
	return ctx;
}

CL_API_ENTRY cl_context CL_API_CALL clCreateContextFromType(
	const cl_context_properties *properties, cl_device_type device_type,
	void(CL_CALLBACK *pfn_notify)(const char *, const void *, size_t, void *), void *user_data,
	cl_int *errcode_ret)
{
	cl_device_id dev;
	cl_int err = clGetDeviceIDs(&icd_platform, device_type, 1, &dev, NULL);

	if (err) {
		icd_set_err(errcode_ret, err);
		return NULL;
	}
	return clCreateContext(properties, 1, &dev, pfn_notify, user_data, errcode_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clRetainContext(cl_context context)
{
	if (!icd_valid_context(context))
		return CL_INVALID_CONTEXT;
	icd_ref_get(&context->refs);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseContext(cl_context context)
{
	if (!icd_valid_context(context))
		return CL_INVALID_CONTEXT;
	icd_context_release(context);
	return CL_SUCCESS;
}

cl_int icd_dtor_add(struct icd_dtor_cb **list, void(CL_CALLBACK *fn)(), void *data)
{
	struct icd_dtor_cb *cb;

	if (!fn)
		return CL_INVALID_VALUE;
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return CL_OUT_OF_HOST_MEMORY;
	cb->fn = fn;
	cb->data = data;
	pthread_mutex_lock(&icd_lock);
	cb->next = *list;
	*list = cb;
	pthread_mutex_unlock(&icd_lock);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clSetContextDestructorCallback(
	cl_context context, void(CL_CALLBACK *pfn_notify)(cl_context, void *), void *user_data)
{
	if (!icd_valid_context(context))
		return CL_INVALID_CONTEXT;
	return icd_dtor_add(&context->dtors, (void(CL_CALLBACK *)())pfn_notify, user_data);
}

CL_API_ENTRY cl_int CL_API_CALL clGetContextInfo(cl_context context, cl_context_info param_name,
						  size_t param_value_size, void *param_value,
						  size_t *param_value_size_ret)
{
	cl_device_id dev = &icd_device;

	if (!icd_valid_context(context))
		return CL_INVALID_CONTEXT;
	switch (param_name) {
	case CL_CONTEXT_REFERENCE_COUNT:
		ICD_INFO_VAL(cl_uint, context->refs);
	case CL_CONTEXT_NUM_DEVICES:
		ICD_INFO_VAL(cl_uint, 1);
	case CL_CONTEXT_DEVICES:
		return icd_info(param_value_size, param_value, param_value_size_ret, &dev,
				sizeof(dev));
	case CL_CONTEXT_PROPERTIES:
		return icd_info(param_value_size, param_value, param_value_size_ret,
				context->props, context->num_props * sizeof(context->props[0]));
	default:
		return CL_INVALID_VALUE;
	}
}

/* ---- memory objects ------------------------------------------------------ */

void icd_mem_retain_locked(cl_mem m)
{
	m->refs++;
}

void icd_mem_release(cl_mem m)
{
	struct icd_dtor_cb *cb;
	bool last;

	pthread_mutex_lock(&icd_lock);
	last = --m->refs == 0;
	pthread_mutex_unlock(&icd_lock);
	if (!last)
		return;
	while ((cb = m->dtors)) {
		m->dtors = cb->next;
		((void(CL_CALLBACK *)(cl_mem, void *))cb->fn)(m, cb->data);
		free(cb);
	}
	if (m->parent) {
		icd_mem_release(m->parent);
	} else if (!m->alloc || !pool_put(m)) {
		/* waits for every submit in flight that uses it */
		vgpu_buffer_destroy(m->vbuf);
		if (m->alloc)
			munmap(m->alloc, m->alloc_size);
	}
	icd_context_release(m->ctx);
	m->magic = ICD_MAGIC_DEAD;
	free(m);
}

#define MEM_ACCESS (CL_MEM_READ_WRITE | CL_MEM_WRITE_ONLY | CL_MEM_READ_ONLY)
#define MEM_HOST_ACCESS (CL_MEM_HOST_WRITE_ONLY | CL_MEM_HOST_READ_ONLY | CL_MEM_HOST_NO_ACCESS)

static bool one_bit_at_most(cl_mem_flags f)
{
	return !(f & (f - 1));
}

static cl_int check_flags(cl_mem_flags flags)
{
	cl_mem_flags known = MEM_ACCESS | MEM_HOST_ACCESS | CL_MEM_USE_HOST_PTR |
			     CL_MEM_ALLOC_HOST_PTR | CL_MEM_COPY_HOST_PTR;

	if ((flags & ~known) || !one_bit_at_most(flags & MEM_ACCESS) ||
	    !one_bit_at_most(flags & MEM_HOST_ACCESS) ||
	    ((flags & CL_MEM_USE_HOST_PTR) &&
	     (flags & (CL_MEM_ALLOC_HOST_PTR | CL_MEM_COPY_HOST_PTR))))
		return CL_INVALID_VALUE;
	return CL_SUCCESS;
}

static cl_mem mem_new(cl_context ctx, cl_mem_flags flags, size_t size)
{
	cl_mem m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->dispatch = &icd_dispatch;
	m->magic = ICD_MAGIC_MEM;
	m->refs = 1;
	m->ctx = ctx;
	m->flags = flags;
	m->size = size;
	pthread_mutex_lock(&icd_lock);
	icd_context_retain_locked(ctx);
	pthread_mutex_unlock(&icd_lock);
	return m;
}

/* Register [ptr, +size): userptr where the device and kernel have it, the
 * library's copy path otherwise, and the copy path also when the pages cannot
 * be pinned under RLIMIT_MEMLOCK. */
static int mem_register(cl_mem m, void *ptr, size_t size)
{
	unsigned int vflags = (m->flags & CL_MEM_READ_ONLY) ? VGPU_BUF_READ_ONLY : 0;
	int ret = vgpu_buffer_from_user(m->ctx->vdev, ptr, size, vflags, &m->vbuf);

	if (ret == -ENOMEM && pool_flush(m->ctx))
		ret = vgpu_buffer_from_user(m->ctx->vdev, ptr, size, vflags, &m->vbuf);
	if (ret == -ENOMEM)
		ret = vgpu_buffer_from_user(m->ctx->vdev, ptr, size, vflags | VGPU_BUF_COPY,
					    &m->vbuf);
	return ret;
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags,
						size_t size, void *host_ptr, cl_int *errcode_ret)
{
	cl_mem m;
	cl_int err;
	int ret;

	if (!icd_valid_context(context)) {
		icd_set_err(errcode_ret, CL_INVALID_CONTEXT);
		return NULL;
	}
	if (!flags)
		flags = CL_MEM_READ_WRITE;
	err = check_flags(flags);
	if (err) {
		icd_set_err(errcode_ret, err);
		return NULL;
	}
	if (!size || size > icd_device.max_alloc) {
		icd_set_err(errcode_ret, CL_INVALID_BUFFER_SIZE);
		return NULL;
	}
	if (!host_ptr != !(flags & (CL_MEM_USE_HOST_PTR | CL_MEM_COPY_HOST_PTR))) {
		icd_set_err(errcode_ret, CL_INVALID_HOST_PTR);
		return NULL;
	}
	m = mem_new(context, flags, size);
	if (!m) {
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	if (flags & CL_MEM_USE_HOST_PTR) {
		m->host_ptr = host_ptr;
		m->data = host_ptr;
		ret = mem_register(m, host_ptr, size);
		if (ret) {
			err = ret == -EFAULT ? CL_INVALID_HOST_PTR
					     : CL_MEM_OBJECT_ALLOCATION_FAILURE;
			goto fail;
		}
	} else {
		long psz = sysconf(_SC_PAGESIZE);
		struct icd_pooled *e;

		m->alloc_size = (size + (size_t)psz - 1) & ~((size_t)psz - 1);
		e = pool_take(context, m->alloc_size, flags & CL_MEM_READ_ONLY);
		if (e) {
			m->alloc = e->alloc;
			m->vbuf = e->vbuf;
			free(e);
		} else {
			m->alloc = mmap(NULL, m->alloc_size, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m->alloc == MAP_FAILED) {
				m->alloc = NULL;
				err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
				goto fail;
			}
		}
		m->data = m->alloc;
		if (flags & CL_MEM_COPY_HOST_PTR)
			memcpy(m->data, host_ptr, size);
		if (flags & CL_MEM_ALLOC_HOST_PTR)
			m->host_ptr = NULL;
		if (!m->vbuf) {
			ret = mem_register(m, m->alloc, m->alloc_size);
			if (ret) {
				err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
				goto fail;
			}
		}
	}
	icd_set_err(errcode_ret, CL_SUCCESS);
	return m;
fail:
	if (m->alloc)
		munmap(m->alloc, m->alloc_size);
	m->alloc = NULL;
	m->vbuf = NULL;
	icd_context_release(context);
	free(m);
	icd_set_err(errcode_ret, err);
	return NULL;
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBufferWithProperties(cl_context context,
							      const cl_mem_properties *properties,
							      cl_mem_flags flags, size_t size,
							      void *host_ptr, cl_int *errcode_ret)
{
	if (properties && properties[0]) {
		icd_set_err(errcode_ret, CL_INVALID_PROPERTY);
		return NULL;
	}
	return clCreateBuffer(context, flags, size, host_ptr, errcode_ret);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateSubBuffer(cl_mem buffer, cl_mem_flags flags,
						   cl_buffer_create_type type, const void *info,
						   cl_int *errcode_ret)
{
	const cl_buffer_region *r = info;
	cl_uint align = 128;
	cl_mem m;

	if (!icd_valid_mem(buffer) || buffer->parent) {
		icd_set_err(errcode_ret, CL_INVALID_MEM_OBJECT);
		return NULL;
	}
	if (type != CL_BUFFER_CREATE_TYPE_REGION || !r ||
	    (flags & ~(cl_mem_flags)(MEM_ACCESS | MEM_HOST_ACCESS)) ||
	    !one_bit_at_most(flags & MEM_ACCESS) || !one_bit_at_most(flags & MEM_HOST_ACCESS) ||
	    ((buffer->flags & CL_MEM_WRITE_ONLY) && (flags & (CL_MEM_READ_WRITE | CL_MEM_READ_ONLY))) ||
	    ((buffer->flags & CL_MEM_READ_ONLY) && (flags & (CL_MEM_READ_WRITE | CL_MEM_WRITE_ONLY)))) {
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	if (!r->size) {
		icd_set_err(errcode_ret, CL_INVALID_BUFFER_SIZE);
		return NULL;
	}
	if (r->origin > buffer->size || r->size > buffer->size - r->origin) {
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	{
		uint32_t sz;
		const void *v = icd_device_record(CL_DEVICE_MEM_BASE_ADDR_ALIGN, &sz);

		if (v && sz == 4)
			memcpy(&align, v, 4);
		align /= 8;
		if (!align)
			align = 1;
	}
	if (r->origin % align) {
		icd_set_err(errcode_ret, CL_MISALIGNED_SUB_BUFFER_OFFSET);
		return NULL;
	}
	if (!(flags & MEM_ACCESS))
		flags |= buffer->flags & MEM_ACCESS;
	if (!(flags & MEM_HOST_ACCESS))
		flags |= buffer->flags & MEM_HOST_ACCESS;
	flags |= buffer->flags & (CL_MEM_USE_HOST_PTR | CL_MEM_ALLOC_HOST_PTR | CL_MEM_COPY_HOST_PTR);
	m = mem_new(buffer->ctx, flags, r->size);
	if (!m) {
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	pthread_mutex_lock(&icd_lock);
	icd_mem_retain_locked(buffer);
	pthread_mutex_unlock(&icd_lock);
	m->parent = buffer;
	m->offset = r->origin;
	m->data = buffer->data + r->origin;
	m->vbuf = buffer->vbuf;
	if (buffer->host_ptr)
		m->host_ptr = (char *)buffer->host_ptr + r->origin;
	icd_set_err(errcode_ret, CL_SUCCESS);
	return m;
}

CL_API_ENTRY cl_int CL_API_CALL clRetainMemObject(cl_mem memobj)
{
	if (!icd_valid_mem(memobj))
		return CL_INVALID_MEM_OBJECT;
	icd_ref_get(&memobj->refs);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseMemObject(cl_mem memobj)
{
	if (!icd_valid_mem(memobj))
		return CL_INVALID_MEM_OBJECT;
	icd_mem_release(memobj);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clSetMemObjectDestructorCallback(
	cl_mem memobj, void(CL_CALLBACK *pfn_notify)(cl_mem, void *), void *user_data)
{
	if (!icd_valid_mem(memobj))
		return CL_INVALID_MEM_OBJECT;
	return icd_dtor_add(&memobj->dtors, (void(CL_CALLBACK *)())pfn_notify, user_data);
}

CL_API_ENTRY cl_int CL_API_CALL clGetMemObjectInfo(cl_mem memobj, cl_mem_info param_name,
						    size_t param_value_size, void *param_value,
						    size_t *param_value_size_ret)
{
	if (!icd_valid_mem(memobj))
		return CL_INVALID_MEM_OBJECT;
	switch (param_name) {
	case CL_MEM_TYPE:
		ICD_INFO_VAL(cl_mem_object_type, CL_MEM_OBJECT_BUFFER);
	case CL_MEM_FLAGS:
		ICD_INFO_VAL(cl_mem_flags, memobj->flags);
	case CL_MEM_SIZE:
		ICD_INFO_VAL(size_t, memobj->size);
	case CL_MEM_HOST_PTR:
		ICD_INFO_VAL(void *, (memobj->flags & CL_MEM_USE_HOST_PTR) ? memobj->host_ptr : NULL);
	case CL_MEM_MAP_COUNT:
		ICD_INFO_VAL(cl_uint, memobj->maps);
	case CL_MEM_REFERENCE_COUNT:
		ICD_INFO_VAL(cl_uint, memobj->refs);
	case CL_MEM_CONTEXT:
		ICD_INFO_VAL(cl_context, memobj->ctx);
	case CL_MEM_ASSOCIATED_MEMOBJECT:
		ICD_INFO_VAL(cl_mem, memobj->parent);
	case CL_MEM_OFFSET:
		ICD_INFO_VAL(size_t, memobj->offset);
	case CL_MEM_USES_SVM_POINTER:
		ICD_INFO_VAL(cl_bool, CL_FALSE);
	case CL_MEM_PROPERTIES:
		return icd_info(param_value_size, param_value, param_value_size_ret, NULL, 0);
	default:
		return CL_INVALID_VALUE;
	}
}
