// SPDX-License-Identifier: MIT
/*
 * program.c - programs and kernels: built by the device, in the context's
 * own sandboxed worker.
 *
 * CL_PROGRAM_BINARIES returns the device's binary wrapped with what the
 * device said of each kernel's arguments when it built the source: OpenCL
 * keeps no argument information for programs built from binaries, and
 * without it a by-value argument of 8 zero bytes could not be told from a
 * NULL buffer. A binary without the wrapper is passed to the device as it is,
 * and its kernels' arguments are then told apart by what clSetKernelArg gets.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icd.h"

#define BIN_MAGIC "VGPUCLB1"

bool icd_valid_program(cl_program p)
{
	return p && p->dispatch == &icd_dispatch && p->magic == ICD_MAGIC_PROGRAM;
}

bool icd_valid_kernel(cl_kernel k)
{
	return k && k->dispatch == &icd_dispatch && k->magic == ICD_MAGIC_KERNEL;
}

static cl_program program_new(cl_context ctx)
{
	cl_program p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->dispatch = &icd_dispatch;
	p->magic = ICD_MAGIC_PROGRAM;
	pthread_mutex_init(&p->vk_lock, NULL);
	p->refs = 1;
	p->ctx = ctx;
	p->status = CL_BUILD_NONE;
	pthread_mutex_lock(&icd_lock);
	icd_context_retain_locked(ctx);
	pthread_mutex_unlock(&icd_lock);
	return p;
}

static void descs_free(cl_program p)
{
	for (uint32_t i = 0; i < p->num_descs; i++) {
		free(p->descs[i].name);
		free(p->descs[i].args);
	}
	free(p->descs);
	p->descs = NULL;
	p->num_descs = 0;
	p->descs_done = false;
}

/* The program's device kernel called name, made on its first use. */
static int vkernel_get(cl_program p, const char *name, struct vgpu_kernel **out)
{
	struct icd_vkernel *e;
	int ret = 0;

	pthread_mutex_lock(&p->vk_lock);
	for (e = p->vkernels; e; e = e->next)
		if (!strcmp(vgpu_kernel_name(e->vk), name))
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		ret = e ? vgpu_kernel_create(p->vprog, name, &e->vk) : -ENOMEM;
		if (ret) {
			free(e);
			e = NULL;
		} else {
			e->next = p->vkernels;
			p->vkernels = e;
		}
	}
	if (e)
		*out = e->vk;
	pthread_mutex_unlock(&p->vk_lock);
	return ret;
}

static void vkernels_free(cl_program p)
{
	while (p->vkernels) {
		struct icd_vkernel *e = p->vkernels;

		p->vkernels = e->next;
		vgpu_kernel_destroy(e->vk);
		free(e);
	}
}

static void program_free(cl_program p)
{
	vkernels_free(p);
	pthread_mutex_destroy(&p->vk_lock);
	vgpu_program_destroy(p->vprog);
	descs_free(p);
	free(p->source);
	free(p->il);
	free(p->binary);
	free(p->options);
	free(p->log);
	icd_context_release(p->ctx);
	p->magic = ICD_MAGIC_DEAD;
	free(p);
}

static void program_release(cl_program p)
{
	bool last;

	pthread_mutex_lock(&icd_lock);
	last = --p->refs == 0 && !p->kernels;
	pthread_mutex_unlock(&icd_lock);
	if (last)
		program_free(p);
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithSource(cl_context context, cl_uint count,
							       const char **strings,
							       const size_t *lengths,
							       cl_int *errcode_ret)
{
	size_t total = 0, pos = 0;
	cl_program p;

	if (!icd_valid_context(context)) {
		icd_set_err(errcode_ret, CL_INVALID_CONTEXT);
		return NULL;
	}
	if (!count || !strings) {
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	for (cl_uint i = 0; i < count; i++) {
		size_t n;

		if (!strings[i]) {
			icd_set_err(errcode_ret, CL_INVALID_VALUE);
			return NULL;
		}
		n = lengths && lengths[i] ? lengths[i] : strlen(strings[i]);
		if (n > icd_device.info.max_program_bytes - total) {
			icd_set_err(errcode_ret, CL_OUT_OF_RESOURCES);
			return NULL;
		}
		total += n;
	}
	p = program_new(context);
	if (!p || !(p->source = malloc(total + 1))) {
		if (p)
			program_free(p);
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	for (cl_uint i = 0; i < count; i++) {
		size_t n = lengths && lengths[i] ? lengths[i] : strlen(strings[i]);

		memcpy(p->source + pos, strings[i], n);
		pos += n;
	}
	p->source[total] = '\0';
	p->source_len = total;
	icd_set_err(errcode_ret, CL_SUCCESS);
	return p;
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithIL(cl_context context, const void *il,
							   size_t length, cl_int *errcode_ret)
{
	cl_program p;

	if (!icd_valid_context(context)) {
		icd_set_err(errcode_ret, CL_INVALID_CONTEXT);
		return NULL;
	}
	if (!il || !length) {
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	if (!(icd_device.info.features & VGPU_FEATURE_IL)) {
		icd_set_err(errcode_ret, CL_INVALID_OPERATION);
		return NULL;
	}
	if (length > icd_device.info.max_program_bytes) {
		icd_set_err(errcode_ret, CL_OUT_OF_RESOURCES);
		return NULL;
	}
	p = program_new(context);
	if (!p || !(p->il = malloc(length))) {
		if (p)
			program_free(p);
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	memcpy(p->il, il, length);
	p->il_len = length;
	icd_set_err(errcode_ret, CL_SUCCESS);
	return p;
}

/* The wrapper: magic, u32 count, then per kernel u32 name length, name,
 * u32 num_args, num_args struct vgpu_kernel_arg_info; then the device's
 * binary. */
static bool rd(const unsigned char **p, size_t *left, void *out, size_t n)
{
	if (*left < n)
		return false;
	memcpy(out, *p, n);
	*p += n;
	*left -= n;
	return true;
}

static bool unwrap_binary(cl_program p, const unsigned char *b, size_t n,
			  const unsigned char **dev, size_t *dev_len)
{
	uint32_t count;

	if (n < 8 || memcmp(b, BIN_MAGIC, 8))
		return false;
	b += 8;
	n -= 8;
	if (!rd(&b, &n, &count, 4) || count > icd_device.info.max_kernels)
		return false;
	p->descs = calloc(count ? count : 1, sizeof(*p->descs));
	if (!p->descs)
		return false;
	for (uint32_t i = 0; i < count; i++) {
		struct icd_kernel_desc *d = &p->descs[i];
		uint32_t len;

		p->num_descs = i + 1;
		if (!rd(&b, &n, &len, 4) || !len || len >= VGPU_KERNEL_NAME_MAX || n < len)
			return false;
		d->name = strndup((const char *)b, len);
		b += len;
		n -= len;
		if (!d->name || !rd(&b, &n, &d->num_args, 4) ||
		    d->num_args > icd_device.info.max_kernel_args)
			return false;
		d->args = calloc(d->num_args ? d->num_args : 1, sizeof(*d->args));
		if (!d->args || !rd(&b, &n, d->args, d->num_args * sizeof(*d->args)))
			return false;
		for (uint32_t a = 0; a < d->num_args; a++) {
			d->args[a].type_name[VGPU_ARG_NAME_MAX - 1] = '\0';
			d->args[a].name[VGPU_ARG_NAME_MAX - 1] = '\0';
		}
	}
	p->descs_done = true;
	*dev = b;
	*dev_len = n;
	return n > 0;
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithBinary(
	cl_context context, cl_uint num_devices, const cl_device_id *device_list,
	const size_t *lengths, const unsigned char **binaries, cl_int *binary_status,
	cl_int *errcode_ret)
{
	const unsigned char *dev;
	size_t dev_len;
	cl_program p;

	if (!icd_valid_context(context)) {
		icd_set_err(errcode_ret, CL_INVALID_CONTEXT);
		return NULL;
	}
	if (num_devices != 1 || !device_list || !lengths || !binaries) {
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	if (!icd_valid_device(device_list[0])) {
		icd_set_err(errcode_ret, CL_INVALID_DEVICE);
		return NULL;
	}
	if (!lengths[0] || !binaries[0]) {
		if (binary_status)
			binary_status[0] = CL_INVALID_VALUE;
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	if (lengths[0] > icd_device.info.max_program_bytes + (size_t)(1u << 20)) {
		if (binary_status)
			binary_status[0] = CL_INVALID_BINARY;
		icd_set_err(errcode_ret, CL_INVALID_BINARY);
		return NULL;
	}
	p = program_new(context);
	if (!p) {
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	if (!memcmp(binaries[0], BIN_MAGIC, lengths[0] < 8 ? lengths[0] : 8) && lengths[0] >= 8) {
		if (!unwrap_binary(p, binaries[0], lengths[0], &dev, &dev_len)) {
			program_free(p);
			if (binary_status)
				binary_status[0] = CL_INVALID_BINARY;
			icd_set_err(errcode_ret, CL_INVALID_BINARY);
			return NULL;
		}
	} else {
		dev = binaries[0];
		dev_len = lengths[0];
	}
	p->il = malloc(dev_len);
	p->binary = malloc(lengths[0]);
	if (!p->il || !p->binary) {
		program_free(p);
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	memcpy(p->il, dev, dev_len);
	p->il_len = dev_len;
	memcpy(p->binary, binaries[0], lengths[0]);
	p->binary_len = lengths[0];
	p->from_binary = true;
	p->bin_type = CL_PROGRAM_BINARY_TYPE_EXECUTABLE;
	if (binary_status)
		binary_status[0] = CL_SUCCESS;
	icd_set_err(errcode_ret, CL_SUCCESS);
	return p;
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithBuiltInKernels(
	cl_context context, cl_uint num_devices, const cl_device_id *device_list,
	const char *kernel_names, cl_int *errcode_ret)
{
	(void)num_devices;
	(void)device_list;
	(void)kernel_names;
	icd_set_err(errcode_ret, icd_valid_context(context) ? CL_INVALID_VALUE : CL_INVALID_CONTEXT);
	return NULL;
}

CL_API_ENTRY cl_int CL_API_CALL clRetainProgram(cl_program program)
{
	if (!icd_valid_program(program))
		return CL_INVALID_PROGRAM;
	icd_ref_get(&program->refs);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseProgram(cl_program program)
{
	if (!icd_valid_program(program))
		return CL_INVALID_PROGRAM;
	program_release(program);
	return CL_SUCCESS;
}

static cl_int check_devices(cl_uint num_devices, const cl_device_id *device_list)
{
	if (!device_list != !num_devices)
		return CL_INVALID_VALUE;
	for (cl_uint i = 0; i < num_devices; i++)
		if (!icd_valid_device(device_list[i]))
			return CL_INVALID_DEVICE;
	return CL_SUCCESS;
}

static cl_int do_build(cl_program p, const char *options)
{
	struct vgpu_build_log log = { .struct_size = sizeof(log) };
	uint32_t kind = VGPU_PROGRAM_SOURCE;
	const void *data = p->source;
	size_t len = p->source_len;
	int ret;

	pthread_mutex_lock(&icd_lock);
	if (p->kernels) {
		pthread_mutex_unlock(&icd_lock);
		return CL_INVALID_OPERATION;
	}
	if (p->status == CL_BUILD_IN_PROGRESS) {
		pthread_mutex_unlock(&icd_lock);
		return CL_INVALID_OPERATION;
	}
	p->status = CL_BUILD_IN_PROGRESS;
	pthread_mutex_unlock(&icd_lock);

	if (p->from_binary) {
		kind = VGPU_PROGRAM_BINARY;
		data = p->il;
		len = p->il_len;
	} else if (!p->source) {
		kind = VGPU_PROGRAM_IL;
		data = p->il;
		len = p->il_len;
	}
	vkernels_free(p);
	vgpu_program_destroy(p->vprog);
	p->vprog = NULL;
	free(p->log);
	p->log = NULL;
	free(p->options);
	p->options = options ? strdup(options) : NULL;
	if (!p->from_binary) {
		descs_free(p);
		free(p->binary);
		p->binary = NULL;
		p->binary_len = 0;
	}
	ret = vgpu_program_build(p->ctx->vdev, kind, data, len, options, &p->vprog, &log);
	p->log = log.log;
	if (ret) {
		p->status = CL_BUILD_ERROR;
		if (ret == -ENOTRECOVERABLE)
			p->ctx->lost = true;
		return ret == -ENOMEM ? CL_OUT_OF_HOST_MEMORY : CL_OUT_OF_RESOURCES;
	}
	if (log.status) {
		p->status = CL_BUILD_ERROR;
		if (log.status == CL_INVALID_BUILD_OPTIONS || log.status == CL_INVALID_BINARY)
			return log.status;
		return CL_BUILD_PROGRAM_FAILURE;
	}
	p->status = CL_BUILD_SUCCESS;
	if (!p->from_binary)
		p->bin_type = CL_PROGRAM_BINARY_TYPE_EXECUTABLE;
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clBuildProgram(cl_program program, cl_uint num_devices,
						const cl_device_id *device_list, const char *options,
						void(CL_CALLBACK *pfn_notify)(cl_program, void *),
						void *user_data)
{
	cl_int err;

	if (!icd_valid_program(program))
		return CL_INVALID_PROGRAM;
	if (!pfn_notify && user_data)
		return CL_INVALID_VALUE;
	err = check_devices(num_devices, device_list);
	if (err)
		return err;
	if (options && strlen(options) >= 4096)
		return CL_INVALID_BUILD_OPTIONS;
	err = do_build(program, options);
	if (pfn_notify && err != CL_INVALID_OPERATION)
		pfn_notify(program, user_data);
	return err;
}

/* Compile and link: the device builds whole programs, so compiling keeps the
 * options and linking one compiled program builds it. */
CL_API_ENTRY cl_int CL_API_CALL clCompileProgram(cl_program program, cl_uint num_devices,
						  const cl_device_id *device_list,
						  const char *options, cl_uint num_input_headers,
						  const cl_program *input_headers,
						  const char **header_include_names,
						  void(CL_CALLBACK *pfn_notify)(cl_program, void *),
						  void *user_data)
{
	cl_int err;

	(void)header_include_names;
	if (!icd_valid_program(program))
		return CL_INVALID_PROGRAM;
	err = check_devices(num_devices, device_list);
	if (err)
		return err;
	if ((!pfn_notify && user_data) || (!num_input_headers != !input_headers))
		return CL_INVALID_VALUE;
	if (num_input_headers || !program->source)
		return CL_INVALID_OPERATION;
	free(program->options);
	program->options = options ? strdup(options) : NULL;
	program->compiled_only = true;
	program->status = CL_BUILD_SUCCESS;
	program->bin_type = CL_PROGRAM_BINARY_TYPE_COMPILED_OBJECT;
	if (pfn_notify)
		pfn_notify(program, user_data);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_program CL_API_CALL clLinkProgram(cl_context context, cl_uint num_devices,
						   const cl_device_id *device_list,
						   const char *options, cl_uint num_input_programs,
						   const cl_program *input_programs,
						   void(CL_CALLBACK *pfn_notify)(cl_program, void *),
						   void *user_data, cl_int *errcode_ret)
{
	cl_program in, p;
	cl_int err;
	char *opts = NULL;

	if (!icd_valid_context(context)) {
		icd_set_err(errcode_ret, CL_INVALID_CONTEXT);
		return NULL;
	}
	err = check_devices(num_devices, device_list);
	if (err || !num_input_programs || !input_programs || (!pfn_notify && user_data)) {
		icd_set_err(errcode_ret, err ? err : CL_INVALID_VALUE);
		return NULL;
	}
	in = input_programs[0];
	if (!icd_valid_program(in)) {
		icd_set_err(errcode_ret, CL_INVALID_PROGRAM);
		return NULL;
	}
	if (num_input_programs != 1 || !in->compiled_only) {
		icd_set_err(errcode_ret, CL_INVALID_OPERATION);
		return NULL;
	}
	{
		const char *srcs[1] = { in->source };

		p = clCreateProgramWithSource(context, 1, srcs, &in->source_len, &err);
	}
	if (!p) {
		icd_set_err(errcode_ret, err);
		return NULL;
	}
	if (in->options || options) {
		size_t n = (in->options ? strlen(in->options) : 0) + (options ? strlen(options) : 0) + 2;

		opts = malloc(n);
		if (opts)
			snprintf(opts, n, "%s %s", in->options ? in->options : "",
				 options ? options : "");
	}
	err = do_build(p, opts);
	free(opts);
	if (pfn_notify)
		pfn_notify(p, user_data);
	if (err) {
		icd_set_err(errcode_ret, err == CL_BUILD_PROGRAM_FAILURE ? CL_LINK_PROGRAM_FAILURE : err);
		return p;
	}
	icd_set_err(errcode_ret, CL_SUCCESS);
	return p;
}

/* ---- the kernels a program holds ---------------------------------------- */

/* Names after "kernel" or "__kernel" in the source, skipping comments and
 * attributes; the device says which of them are kernels really (a name
 * inside an #if the build left out is not). */
static int scan_names(const char *s, char ***out, uint32_t *count)
{
	char **names = NULL;
	uint32_t n = 0, cap = 0;

	while (*s) {
		if (s[0] == '/' && s[1] == '/') {
			s += strcspn(s, "\n");
			continue;
		}
		if (s[0] == '/' && s[1] == '*') {
			const char *e = strstr(s + 2, "*/");

			s = e ? e + 2 : s + strlen(s);
			continue;
		}
		if (isalpha((unsigned char)*s) || *s == '_') {
			const char *w = s;
			size_t len;

			while (isalnum((unsigned char)*s) || *s == '_')
				s++;
			len = (size_t)(s - w);
			if (!((len == 6 && !memcmp(w, "kernel", 6)) ||
			      (len == 8 && !memcmp(w, "__kernel", 8))))
				continue;
			/* the identifier right before '(' that is no attribute */
			for (;;) {
				while (isspace((unsigned char)*s))
					s++;
				if (!(isalpha((unsigned char)*s) || *s == '_'))
					break;
				w = s;
				while (isalnum((unsigned char)*s) || *s == '_')
					s++;
				len = (size_t)(s - w);
				while (isspace((unsigned char)*s))
					s++;
				if ((len == 13 && !memcmp(w, "__attribute__", 13)) ||
				    (len == 9 && !memcmp(w, "attribute", 9))) {
					int depth = 0;

					do {
						if (*s == '(')
							depth++;
						else if (*s == ')')
							depth--;
						else if (!*s)
							break;
						s++;
					} while (depth > 0);
					continue;
				}
				if (*s == '(') {
					if (len && len < VGPU_KERNEL_NAME_MAX) {
						if (n == cap) {
							char **nn = realloc(names, (cap ? cap * 2 : 16) *
										    sizeof(*names));

							if (!nn)
								goto oom;
							names = nn;
							cap = cap ? cap * 2 : 16;
						}
						names[n] = strndup(w, len);
						if (!names[n])
							goto oom;
						n++;
					}
					break;
				}
			}
			continue;
		}
		s++;
	}
	*out = names;
	*count = n;
	return 0;
oom:
	for (uint32_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return -ENOMEM;
}

/* Learn the program's kernels and their arguments (once): every name the
 * scan found that the device makes a kernel of. */
cl_int icd_program_descs(cl_program p)
{
	char **names;
	uint32_t n;

	if (p->descs_done)
		return CL_SUCCESS;
	if (!p->source || !p->vprog) {
		p->descs_done = true;
		return CL_SUCCESS;
	}
	if (scan_names(p->source, &names, &n))
		return CL_OUT_OF_HOST_MEMORY;
	p->descs = calloc(n ? n : 1, sizeof(*p->descs));
	if (!p->descs) {
		for (uint32_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return CL_OUT_OF_HOST_MEMORY;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct vgpu_kernel *k;
		const struct vgpu_kernel_arg_info *ai;
		struct icd_kernel_desc *d;
		uint32_t na;
		bool dup = false;

		for (uint32_t j = 0; j < p->num_descs; j++)
			dup |= !strcmp(p->descs[j].name, names[i]);
		if (dup || vkernel_get(p, names[i], &k)) {
			free(names[i]);
			continue;
		}
		ai = vgpu_kernel_get_args(k, &na);
		d = &p->descs[p->num_descs];
		d->args = calloc(na ? na : 1, sizeof(*d->args));
		if (!d->args) {
			free(names[i]);
			continue;
		}
		memcpy(d->args, ai, na * sizeof(*ai));
		d->num_args = na;
		d->name = names[i];
		p->num_descs++;
	}
	free(names);
	p->descs_done = true;
	return CL_SUCCESS;
}

static cl_int make_binary(cl_program p)
{
	void *dev = NULL;
	size_t dev_len = 0, total;
	unsigned char *b;
	cl_int err;
	int ret;

	if (p->binary || !p->vprog)
		return CL_SUCCESS;
	err = icd_program_descs(p);
	if (err)
		return err;
	ret = vgpu_program_binary(p->vprog, &dev, &dev_len);
	if (ret)
		return icd_errno_to_cl(ret);
	total = 8 + 4 + dev_len;
	for (uint32_t i = 0; i < p->num_descs; i++)
		total += 8 + strlen(p->descs[i].name) +
			 p->descs[i].num_args * sizeof(struct vgpu_kernel_arg_info);
	b = malloc(total);
	if (!b) {
		free(dev);
		return CL_OUT_OF_HOST_MEMORY;
	}
	p->binary = b;
	p->binary_len = total;
	memcpy(b, BIN_MAGIC, 8);
	b += 8;
	memcpy(b, &p->num_descs, 4);
	b += 4;
	for (uint32_t i = 0; i < p->num_descs; i++) {
		uint32_t len = (uint32_t)strlen(p->descs[i].name);
		size_t asz = p->descs[i].num_args * sizeof(struct vgpu_kernel_arg_info);

		memcpy(b, &len, 4);
		memcpy(b + 4, p->descs[i].name, len);
		b += 4 + len;
		memcpy(b, &p->descs[i].num_args, 4);
		memcpy(b + 4, p->descs[i].args, asz);
		b += 4 + asz;
	}
	memcpy(b, dev, dev_len);
	free(dev);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clGetProgramInfo(cl_program program, cl_program_info param_name,
						  size_t param_value_size, void *param_value,
						  size_t *param_value_size_ret)
{
	cl_device_id dev = &icd_device;
	cl_int err;

	if (!icd_valid_program(program))
		return CL_INVALID_PROGRAM;
	switch (param_name) {
	case CL_PROGRAM_REFERENCE_COUNT:
		ICD_INFO_VAL(cl_uint, program->refs);
	case CL_PROGRAM_CONTEXT:
		ICD_INFO_VAL(cl_context, program->ctx);
	case CL_PROGRAM_NUM_DEVICES:
		ICD_INFO_VAL(cl_uint, 1);
	case CL_PROGRAM_DEVICES:
		return icd_info(param_value_size, param_value, param_value_size_ret, &dev,
				sizeof(dev));
	case CL_PROGRAM_SOURCE:
		return icd_info(param_value_size, param_value, param_value_size_ret,
				program->source ? program->source : "",
				program->source ? program->source_len + 1 : 1);
	case CL_PROGRAM_IL:
		if (program->source || program->from_binary)
			return icd_info(param_value_size, param_value, param_value_size_ret, NULL, 0);
		return icd_info(param_value_size, param_value, param_value_size_ret, program->il,
				program->il_len);
	case CL_PROGRAM_BINARY_SIZES:
	case CL_PROGRAM_BINARIES:
		if (program->status == CL_BUILD_SUCCESS && !program->compiled_only) {
			err = make_binary(program);
			if (err)
				return err;
		}
		if (param_name == CL_PROGRAM_BINARY_SIZES)
			ICD_INFO_VAL(size_t, program->binary ? program->binary_len : 0);
		if (param_value) {
			unsigned char **bins = param_value;

			if (param_value_size < sizeof(*bins))
				return CL_INVALID_VALUE;
			if (bins[0] && program->binary)
				memcpy(bins[0], program->binary, program->binary_len);
		}
		if (param_value_size_ret)
			*param_value_size_ret = sizeof(unsigned char *);
		return CL_SUCCESS;
	case CL_PROGRAM_NUM_KERNELS:
	case CL_PROGRAM_KERNEL_NAMES:
		if (program->status != CL_BUILD_SUCCESS || !program->vprog)
			return CL_INVALID_PROGRAM_EXECUTABLE;
		err = icd_program_descs(program);
		if (err)
			return err;
		if (param_name == CL_PROGRAM_NUM_KERNELS)
			ICD_INFO_VAL(size_t, program->num_descs ? program->num_descs
								 : vgpu_program_num_kernels(program->vprog));
		{
			size_t len = 1, pos = 0;
			char *s;

			for (uint32_t i = 0; i < program->num_descs; i++)
				len += strlen(program->descs[i].name) + 1;
			s = malloc(len);
			if (!s)
				return CL_OUT_OF_HOST_MEMORY;
			s[0] = '\0';
			for (uint32_t i = 0; i < program->num_descs; i++)
				pos += (size_t)snprintf(s + pos, len - pos, "%s%s", i ? ";" : "",
							program->descs[i].name);
			err = icd_info(param_value_size, param_value, param_value_size_ret, s,
				       pos + 1);
			free(s);
			return err;
		}
	case CL_PROGRAM_SCOPE_GLOBAL_CTORS_PRESENT:
	case CL_PROGRAM_SCOPE_GLOBAL_DTORS_PRESENT:
		ICD_INFO_VAL(cl_bool, CL_FALSE);
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clGetProgramBuildInfo(cl_program program, cl_device_id device,
						       cl_program_build_info param_name,
						       size_t param_value_size, void *param_value,
						       size_t *param_value_size_ret)
{
	if (!icd_valid_program(program))
		return CL_INVALID_PROGRAM;
	if (!icd_valid_device(device))
		return CL_INVALID_DEVICE;
	switch (param_name) {
	case CL_PROGRAM_BUILD_STATUS:
		ICD_INFO_VAL(cl_build_status, program->status);
	case CL_PROGRAM_BUILD_OPTIONS:
		ICD_INFO_STR(program->options ? program->options : "");
	case CL_PROGRAM_BUILD_LOG:
		ICD_INFO_STR(program->log ? program->log : "");
	case CL_PROGRAM_BINARY_TYPE:
		ICD_INFO_VAL(cl_program_binary_type, program->bin_type);
	case CL_PROGRAM_BUILD_GLOBAL_VARIABLE_TOTAL_SIZE:
		ICD_INFO_VAL(size_t, 0);
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clSetProgramReleaseCallback(
	cl_program program, void(CL_CALLBACK *pfn_notify)(cl_program, void *), void *user_data)
{
	(void)pfn_notify;
	(void)user_data;
	return icd_valid_program(program) ? CL_INVALID_OPERATION : CL_INVALID_PROGRAM;
}

CL_API_ENTRY cl_int CL_API_CALL clSetProgramSpecializationConstant(cl_program program,
								    cl_uint spec_id,
								    size_t spec_size,
								    const void *spec_value)
{
	(void)spec_id;
	(void)spec_size;
	(void)spec_value;
	return icd_valid_program(program) ? CL_INVALID_OPERATION : CL_INVALID_PROGRAM;
}

/* ---- kernels ----------------------------------------------------------- */

CL_API_ENTRY cl_kernel CL_API_CALL clCreateKernel(cl_program program, const char *kernel_name,
						   cl_int *errcode_ret)
{
	const struct icd_kernel_desc *desc = NULL;
	cl_kernel k;
	int ret;

	if (!icd_valid_program(program)) {
		icd_set_err(errcode_ret, CL_INVALID_PROGRAM);
		return NULL;
	}
	if (!kernel_name) {
		icd_set_err(errcode_ret, CL_INVALID_VALUE);
		return NULL;
	}
	if (program->status != CL_BUILD_SUCCESS || !program->vprog) {
		icd_set_err(errcode_ret, CL_INVALID_PROGRAM_EXECUTABLE);
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	ret = vkernel_get(program, kernel_name, &k->vk);
	if (ret) {
		free(k);
		icd_set_err(errcode_ret, ret == -ENOENT ? CL_INVALID_KERNEL_NAME
			    : ret == -ENOMEM	    ? CL_OUT_OF_HOST_MEMORY
						    : CL_OUT_OF_RESOURCES);
		return NULL;
	}
	k->kinfo = vgpu_kernel_get_info(k->vk);
	k->ainfo = vgpu_kernel_get_args(k->vk, &k->num_args);
	k->ainfo_known = true;
	for (uint32_t i = 0; i < k->num_args; i++)
		if (k->ainfo[i].space == VGPU_ARG_SPACE_UNKNOWN)
			k->ainfo_known = false;
	if (!k->ainfo_known) {
		for (uint32_t i = 0; i < program->num_descs; i++)
			if (!strcmp(program->descs[i].name, kernel_name))
				desc = &program->descs[i];
		if (desc && desc->num_args == k->num_args) {
			k->ainfo = desc->args;
			k->ainfo_known = true;
		}
	}
	k->args = calloc(k->num_args ? k->num_args : 1, sizeof(*k->args));
	if (!k->args) {
		free(k);
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	k->dispatch = &icd_dispatch;
	k->magic = ICD_MAGIC_KERNEL;
	k->refs = 1;
	k->prog = program;
	pthread_mutex_lock(&icd_lock);
	program->kernels++;
	pthread_mutex_unlock(&icd_lock);
	icd_set_err(errcode_ret, CL_SUCCESS);
	return k;
}

CL_API_ENTRY cl_int CL_API_CALL clCreateKernelsInProgram(cl_program program, cl_uint num_kernels,
							  cl_kernel *kernels,
							  cl_uint *num_kernels_ret)
{
	cl_int err;

	if (!icd_valid_program(program))
		return CL_INVALID_PROGRAM;
	if (program->status != CL_BUILD_SUCCESS || !program->vprog)
		return CL_INVALID_PROGRAM_EXECUTABLE;
	err = icd_program_descs(program);
	if (err)
		return err;
	if (kernels && num_kernels < program->num_descs)
		return CL_INVALID_VALUE;
	for (uint32_t i = 0; kernels && i < program->num_descs; i++) {
		kernels[i] = clCreateKernel(program, program->descs[i].name, &err);
		if (!kernels[i]) {
			while (i--)
				clReleaseKernel(kernels[i]);
			return err;
		}
	}
	if (num_kernels_ret)
		*num_kernels_ret = program->num_descs;
	return CL_SUCCESS;
}

static void arg_clear(struct icd_arg *a)
{
	if (a->mem)
		icd_mem_release(a->mem);
	free(a->big);
	memset(a, 0, sizeof(*a));
}

void icd_kernel_release(cl_kernel k)
{
	cl_program p = k->prog;
	bool last, prog_last;

	pthread_mutex_lock(&icd_lock);
	last = --k->refs == 0;
	pthread_mutex_unlock(&icd_lock);
	if (!last)
		return;
	for (uint32_t i = 0; i < k->num_args; i++)
		arg_clear(&k->args[i]);
	free(k->args);
	k->magic = ICD_MAGIC_DEAD;
	free(k);
	pthread_mutex_lock(&icd_lock);
	prog_last = --p->kernels == 0 && !p->refs;
	pthread_mutex_unlock(&icd_lock);
	if (prog_last)
		program_free(p);
}

CL_API_ENTRY cl_int CL_API_CALL clRetainKernel(cl_kernel kernel)
{
	if (!icd_valid_kernel(kernel))
		return CL_INVALID_KERNEL;
	icd_ref_get(&kernel->refs);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseKernel(cl_kernel kernel)
{
	if (!icd_valid_kernel(kernel))
		return CL_INVALID_KERNEL;
	icd_kernel_release(kernel);
	return CL_SUCCESS;
}

/* Bytes of a scalar or vector type by name; 0 when the name says nothing
 * this can check (structs, typedefs, unknown). */
static size_t type_size(const char *t)
{
	static const struct {
		const char *name;
		size_t size;
	} base[] = {
		{ "char", 1 },	{ "uchar", 1 }, { "bool", 1 },	 { "short", 2 },  { "ushort", 2 },
		{ "half", 2 },	{ "int", 4 },	{ "uint", 4 },	 { "float", 4 },  { "long", 8 },
		{ "ulong", 8 }, { "double", 8 }, { "size_t", 8 }, { "ptrdiff_t", 8 },
		{ "intptr_t", 8 }, { "uintptr_t", 8 },
	};
	char name[VGPU_ARG_NAME_MAX];
	size_t len = strlen(t), n = 1;

	if (!len || len >= sizeof(name) || strchr(t, '*'))
		return 0;
	memcpy(name, t, len + 1);
	while (len && isdigit((unsigned char)name[len - 1]))
		len--;
	if (name[len]) {
		n = strtoul(name + len, NULL, 10);
		if (n == 3)
			n = 4;
		if (n != 2 && n != 4 && n != 8 && n != 16)
			return 0;
		name[len] = '\0';
	}
	if (!strncmp(name, "unsigned ", 9)) {
		memmove(name + 1, name + 9, strlen(name + 9) + 1);
		name[0] = 'u';
	}
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		if (!strcmp(name, base[i].name))
			return base[i].size * n;
	return 0;
}

CL_API_ENTRY cl_int CL_API_CALL clSetKernelArg(cl_kernel kernel, cl_uint arg_index,
						size_t arg_size, const void *arg_value)
{
	struct icd_arg a = { .set = true };
	uint32_t space = VGPU_ARG_SPACE_UNKNOWN;

	if (!icd_valid_kernel(kernel))
		return CL_INVALID_KERNEL;
	if (arg_index >= kernel->num_args)
		return CL_INVALID_ARG_INDEX;
	if (kernel->ainfo_known)
		space = kernel->ainfo[arg_index].space;
	if (space == VGPU_ARG_SPACE_UNKNOWN) {
		/* what the call says: no value is local memory, a handle of ours
		 * a buffer, anything else a value */
		if (!arg_value)
			space = VGPU_ARG_SPACE_LOCAL;
		else if (arg_size == sizeof(cl_mem) && icd_valid_mem(*(const cl_mem *)arg_value))
			space = VGPU_ARG_SPACE_GLOBAL;
		else
			space = VGPU_ARG_SPACE_PRIVATE;
	}
	switch (space) {
	case VGPU_ARG_SPACE_GLOBAL:
	case VGPU_ARG_SPACE_CONSTANT:
		if (arg_size != sizeof(cl_mem))
			return CL_INVALID_ARG_SIZE;
		if (!arg_value || !*(const cl_mem *)arg_value) {
			a.kind = VGPU_DARG_NULL;
			break;
		}
		a.mem = *(const cl_mem *)arg_value;
		if (!icd_valid_mem(a.mem) || a.mem->ctx != kernel->prog->ctx)
			return CL_INVALID_MEM_OBJECT;
		a.kind = VGPU_DARG_BUFFER;
		a.size = a.mem->size;
		pthread_mutex_lock(&icd_lock);
		icd_mem_retain_locked(a.mem);
		pthread_mutex_unlock(&icd_lock);
		break;
	case VGPU_ARG_SPACE_LOCAL:
		if (arg_value)
			return CL_INVALID_ARG_VALUE;
		if (!arg_size || arg_size > icd_device.local_mem)
			return CL_INVALID_ARG_SIZE;
		a.kind = VGPU_DARG_LOCAL;
		a.size = arg_size;
		break;
	default: {
		size_t want = kernel->ainfo_known ? type_size(kernel->ainfo[arg_index].type_name) : 0;

		if (!arg_value)
			return CL_INVALID_ARG_VALUE;
		if (!arg_size || arg_size > 4096 || (want && want != arg_size))
			return CL_INVALID_ARG_SIZE;
		a.kind = VGPU_DARG_VALUE;
		a.size = arg_size;
		if (arg_size > sizeof(a.value)) {
			a.big = malloc(arg_size);
			if (!a.big)
				return CL_OUT_OF_HOST_MEMORY;
			memcpy(a.big, arg_value, arg_size);
		} else {
			memcpy(a.value, arg_value, arg_size);
		}
	}
	}
	arg_clear(&kernel->args[arg_index]);
	kernel->args[arg_index] = a;
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clGetKernelInfo(cl_kernel kernel, cl_kernel_info param_name,
						 size_t param_value_size, void *param_value,
						 size_t *param_value_size_ret)
{
	if (!icd_valid_kernel(kernel))
		return CL_INVALID_KERNEL;
	switch (param_name) {
	case CL_KERNEL_FUNCTION_NAME:
		ICD_INFO_STR(vgpu_kernel_name(kernel->vk));
	case CL_KERNEL_NUM_ARGS:
		ICD_INFO_VAL(cl_uint, kernel->num_args);
	case CL_KERNEL_REFERENCE_COUNT:
		ICD_INFO_VAL(cl_uint, kernel->refs);
	case CL_KERNEL_CONTEXT:
		ICD_INFO_VAL(cl_context, kernel->prog->ctx);
	case CL_KERNEL_PROGRAM:
		ICD_INFO_VAL(cl_program, kernel->prog);
	case CL_KERNEL_ATTRIBUTES:
		ICD_INFO_STR("");
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clGetKernelArgInfo(cl_kernel kernel, cl_uint arg_indx,
						    cl_kernel_arg_info param_name,
						    size_t param_value_size, void *param_value,
						    size_t *param_value_size_ret)
{
	const struct vgpu_kernel_arg_info *a;

	if (!icd_valid_kernel(kernel))
		return CL_INVALID_KERNEL;
	if (arg_indx >= kernel->num_args)
		return CL_INVALID_ARG_INDEX;
	if (!kernel->ainfo_known || kernel->prog->from_binary)
		return CL_KERNEL_ARG_INFO_NOT_AVAILABLE;
	a = &kernel->ainfo[arg_indx];
	switch (param_name) {
	case CL_KERNEL_ARG_ADDRESS_QUALIFIER: {
		static const cl_kernel_arg_address_qualifier q[] = {
			CL_KERNEL_ARG_ADDRESS_PRIVATE, CL_KERNEL_ARG_ADDRESS_GLOBAL,
			CL_KERNEL_ARG_ADDRESS_CONSTANT, CL_KERNEL_ARG_ADDRESS_LOCAL,
		};

		ICD_INFO_VAL(cl_kernel_arg_address_qualifier,
			     a->space < 4 ? q[a->space] : CL_KERNEL_ARG_ADDRESS_PRIVATE);
	}
	case CL_KERNEL_ARG_ACCESS_QUALIFIER:
		ICD_INFO_VAL(cl_kernel_arg_access_qualifier,
			     a->access ? a->access : CL_KERNEL_ARG_ACCESS_NONE);
	case CL_KERNEL_ARG_TYPE_QUALIFIER:
		ICD_INFO_VAL(cl_kernel_arg_type_qualifier, a->type_qualifier);
	case CL_KERNEL_ARG_TYPE_NAME:
		ICD_INFO_STR(a->type_name);
	case CL_KERNEL_ARG_NAME:
		ICD_INFO_STR(a->name);
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clGetKernelWorkGroupInfo(cl_kernel kernel, cl_device_id device,
							  cl_kernel_work_group_info param_name,
							  size_t param_value_size, void *param_value,
							  size_t *param_value_size_ret)
{
	const struct vgpu_kernel_info *ki;

	if (!icd_valid_kernel(kernel))
		return CL_INVALID_KERNEL;
	if (device && !icd_valid_device(device))
		return CL_INVALID_DEVICE;
	ki = kernel->kinfo;
	switch (param_name) {
	case CL_KERNEL_WORK_GROUP_SIZE:
		ICD_INFO_VAL(size_t, ki->work_group_size ? ki->work_group_size : icd_device.max_wg);
	case CL_KERNEL_COMPILE_WORK_GROUP_SIZE: {
		size_t v[3] = { ki->compile_work_group_size[0], ki->compile_work_group_size[1],
				ki->compile_work_group_size[2] };

		return icd_info(param_value_size, param_value, param_value_size_ret, v,
				sizeof(v));
	}
	case CL_KERNEL_LOCAL_MEM_SIZE: {
		cl_ulong local = ki->local_mem_size;

		for (uint32_t i = 0; i < kernel->num_args; i++)
			if (kernel->args[i].set && kernel->args[i].kind == VGPU_DARG_LOCAL)
				local += kernel->args[i].size;
		ICD_INFO_VAL(cl_ulong, local);
	}
	case CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE:
		ICD_INFO_VAL(size_t, ki->preferred_multiple ? ki->preferred_multiple : 1);
	case CL_KERNEL_PRIVATE_MEM_SIZE:
		ICD_INFO_VAL(cl_ulong, ki->private_mem_size);
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_kernel CL_API_CALL clCloneKernel(cl_kernel source_kernel, cl_int *errcode_ret)
{
	cl_kernel k;
	cl_int err;

	if (!icd_valid_kernel(source_kernel)) {
		icd_set_err(errcode_ret, CL_INVALID_KERNEL);
		return NULL;
	}
	k = clCreateKernel(source_kernel->prog, vgpu_kernel_name(source_kernel->vk), &err);
	if (!k) {
		icd_set_err(errcode_ret, err);
		return NULL;
	}
	for (uint32_t i = 0; i < k->num_args; i++) {
		struct icd_arg *s = &source_kernel->args[i];

		if (!s->set)
			continue;
		if (s->kind == VGPU_DARG_BUFFER || s->kind == VGPU_DARG_NULL)
			err = clSetKernelArg(k, i, sizeof(cl_mem), &s->mem);
		else if (s->kind == VGPU_DARG_LOCAL)
			err = clSetKernelArg(k, i, s->size, NULL);
		else
			err = clSetKernelArg(k, i, s->size, s->big ? s->big : s->value);
		if (err) {
			icd_kernel_release(k);
			icd_set_err(errcode_ret, err);
			return NULL;
		}
	}
	icd_set_err(errcode_ret, CL_SUCCESS);
	return k;
}
