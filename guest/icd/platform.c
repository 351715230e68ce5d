// SPDX-License-Identifier: MIT
/*
 * platform.c - the ICD's entry points, its one platform and its one device,
 * and what clGetDeviceInfo says of the device: the host device's own answers
 * (VGPU_QUERY_DEVICE_INFO), filtered to what this ICD implements, and the
 * memory sizes bounded by what the guest can register.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "icd.h"

pthread_mutex_t icd_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t icd_cond = PTHREAD_COND_INITIALIZER;

struct _cl_platform_id icd_platform = { &icd_dispatch, ICD_MAGIC_PLATFORM };
struct _cl_device_id icd_device = { .dispatch = &icd_dispatch, .magic = ICD_MAGIC_DEVICE };
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

cl_ulong icd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (cl_ulong)ts.tv_sec * 1000000000ull + (cl_ulong)ts.tv_nsec;
}

cl_int icd_info(size_t want, void *out, size_t *out_size, const void *value, size_t size)
{
	if (out) {
		if (want < size)
			return CL_INVALID_VALUE;
		if (size)
			memcpy(out, value, size);
	}
	if (out_size)
		*out_size = size;
	return CL_SUCCESS;
}

cl_int icd_errno_to_cl(int err)
{
	switch (err) {
	case 0:
		return CL_SUCCESS;
	case -ENOMEM:
		return CL_OUT_OF_HOST_MEMORY;
	case -EFAULT:
		return CL_INVALID_HOST_PTR;
	case -EINVAL:
		return CL_INVALID_VALUE;
	case -E2BIG:
	case -ENOSPC:
	case -ENOTRECOVERABLE:
	case -ETIME:
	case -ETIMEDOUT:
	case -ENOEXEC:
	case -ENODEV:
	default:
		return CL_OUT_OF_RESOURCES;
	}
}

bool icd_valid_device(cl_device_id d)
{
	return d == &icd_device && icd_device.present;
}

/* ---- the device ---------------------------------------------------------- */

const void *icd_device_record(uint32_t param, uint32_t *size)
{
	const unsigned char *p = icd_device.records;
	size_t left = icd_device.records_size;

	while (p && left >= sizeof(struct vgpu_info_record)) {
		struct vgpu_info_record r;
		size_t padded;

		memcpy(&r, p, sizeof(r));
		padded = VGPU_COMPUTE_PAYLOAD_PAD(r.size);
		if (padded > left - sizeof(r))
			break;
		if (r.param == param) {
			*size = r.size;
			return p + sizeof(r);
		}
		p += sizeof(r) + padded;
		left -= sizeof(r) + padded;
	}
	*size = 0;
	return NULL;
}

static cl_ulong rec_ulong(uint32_t param, cl_ulong dflt)
{
	uint32_t size;
	const void *v = icd_device_record(param, &size);
	cl_ulong u = 0;

	if (!v)
		return dflt;
	if (size == 8) {
		memcpy(&u, v, 8);
	} else if (size == 4) {
		cl_uint w;

		memcpy(&w, v, 4);
		u = w;
	} else {
		return dflt;
	}
	return u;
}

static void rec_string(uint32_t param, char *out, size_t room, const char *dflt)
{
	uint32_t size;
	const char *v = icd_device_record(param, &size);

	if (!v || !size) {
		snprintf(out, room, "%s", dflt);
		return;
	}
	snprintf(out, room, "%.*s", (int)(size < room ? size : room - 1), v);
}

/* Bytes the guest can register: its RAM, less a quarter for itself, and
 * RLIMIT_MEMLOCK unless the process may lock memory without a limit. */
static cl_ulong guest_pinnable(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	cl_ulong ram = pages > 0 && psz > 0 ? (cl_ulong)pages * (cl_ulong)psz : 1ull << 30;
	cl_ulong lim = ram / 4 * 3;
	struct rlimit rl;
	bool cap_ipc_lock = false;
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			unsigned long long eff;

			if (sscanf(line, "CapEff: %llx", &eff) == 1)
				cap_ipc_lock = eff & (1ull << 14);
		}
		fclose(f);
	}
	if (!cap_ipc_lock && !getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    (cl_ulong)rl.rlim_cur < lim)
		lim = rl.rlim_cur;
	return lim;
}

/* Extensions the device's compiler provides on its own: nothing in the API
 * behind them, so they hold through this ICD as they do natively. */
static const char *const pass_extensions[] = {
	"cl_khr_byte_addressable_store",
	"cl_khr_global_int32_base_atomics",
	"cl_khr_global_int32_extended_atomics",
	"cl_khr_local_int32_base_atomics",
	"cl_khr_local_int32_extended_atomics",
	"cl_khr_int64_base_atomics",
	"cl_khr_int64_extended_atomics",
	"cl_khr_fp64",
	"cl_khr_fp16",
};

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

static int open_node(struct vgpu_device **dev, char *path, size_t room)
{
	const char *env = getenv("VGPU_ICD_DEVICE");
	int ret = -ENODEV;

	if (env && *env) {
		snprintf(path, room, "%s", env);
		return vgpu_open(path, 0, dev);
	}
	for (int i = 128; i < 192; i++) {
		struct vgpu_info info = { .struct_size = sizeof(info) };

		snprintf(path, room, "/dev/dri/renderD%d", i);
		if (access(path, R_OK | W_OK))
			continue;
		ret = vgpu_open(path, 0, dev);
		if (ret)
			continue;
		if (!vgpu_get_info(*dev, &info) && (info.features & VGPU_FEATURE_PROGRAMS))
			return 0;
		vgpu_close(*dev);
		*dev = NULL;
		ret = -ENODEV;
	}
	return ret;
}

/* VGPU_ICD_DEBUG=1: say on stderr why no device is offered. */
static void debug(const char *what, int err)
{
	if (getenv("VGPU_ICD_DEBUG"))
		fprintf(stderr, "vgpu-icd: %s: %s\n", what, vgpu_strerror(err));
}

static void device_init(void)
{
	struct _cl_device_id *d = &icd_device;
	struct vgpu_device *dev = NULL;
	const char *hext;
	char ext[4096];
	uint32_t size;
	size_t pos = 0;
	cl_ulong pin;

	if (getenv("VGPU_ICD_DISABLE"))
		return;
	int ret = open_node(&dev, d->node, sizeof(d->node));

	if (ret) {
		debug("no render node whose device runs programs", ret);
		return;
	}
	d->info.struct_size = sizeof(d->info);
	ret = vgpu_get_info(dev, &d->info);
	if (!ret && !(d->info.features & VGPU_FEATURE_PROGRAMS))
		ret = -ENOEXEC;
	if (!ret)
		ret = vgpu_query_device_info(dev, &d->records, &d->records_size);
	if (ret) {
		debug(d->node, ret);
		vgpu_close(dev);
		return;
	}
	vgpu_close(dev);

	pin = guest_pinnable();
	d->global_mem = rec_ulong(CL_DEVICE_GLOBAL_MEM_SIZE, 1ull << 30);
	if (d->global_mem > pin)
		d->global_mem = pin;
	d->max_alloc = rec_ulong(CL_DEVICE_MAX_MEM_ALLOC_SIZE, d->global_mem / 4);
	if (d->max_alloc > d->global_mem / 4 && d->global_mem == pin)
		d->max_alloc = d->global_mem / 4 > (32u << 20) ? d->global_mem / 4 : d->global_mem;
	if (d->max_alloc > d->global_mem)
		d->max_alloc = d->global_mem;
	d->max_wg = rec_ulong(CL_DEVICE_MAX_WORK_GROUP_SIZE, 256);
	d->max_dims = (cl_uint)rec_ulong(CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, 3);
	if (d->max_dims > 3 || d->max_dims < 1)
		d->max_dims = 3;
	{
		const void *v = icd_device_record(CL_DEVICE_MAX_WORK_ITEM_SIZES, &size);

		for (int i = 0; i < 3; i++)
			d->max_items[i] = d->max_wg;
		if (v && size >= d->max_dims * sizeof(size_t))
			memcpy(d->max_items, v, d->max_dims * sizeof(size_t));
	}
	d->local_mem = rec_ulong(CL_DEVICE_LOCAL_MEM_SIZE, 32768);
	d->fp64 = d->info.features & VGPU_FEATURE_FP64;
	d->fp16 = d->info.features & VGPU_FEATURE_FP16;
	rec_string(CL_DEVICE_NAME, d->name, sizeof(d->name), "virtio-gpu compute");
	rec_string(CL_DEVICE_OPENCL_C_VERSION, d->c_version, sizeof(d->c_version),
		   "OpenCL C 1.2 ");
	/* OpenCL 3.0 with its optional features absent; the device's C
	 * version as it is. */
	snprintf(d->version, sizeof(d->version), "%s", ICD_VERSION_TEXT);
	rec_string(CL_DEVICE_EXTENSIONS, ext, sizeof(ext), "");
	hext = ext;
	d->extensions[0] = '\0';
	for (size_t i = 0; i < sizeof(pass_extensions) / sizeof(pass_extensions[0]); i++) {
		const char *e = pass_extensions[i];

		if (!*e || !has_word(hext, e))
			continue;
		if (!strcmp(e, "cl_khr_fp64") && !d->fp64)
			continue;
		if (!strcmp(e, "cl_khr_fp16") && !d->fp16)
			continue;
		pos += (size_t)snprintf(d->extensions + pos, sizeof(d->extensions) - pos, "%s%s",
					pos ? " " : "", e);
	}
	d->present = true;
}

void icd_device_init(void)
{
	pthread_once(&init_once, device_init);
}

/* ---- platform ------------------------------------------------------------ */

CL_API_ENTRY cl_int CL_API_CALL clGetPlatformIDs(cl_uint num_entries, cl_platform_id *platforms,
						  cl_uint *num_platforms)
{
	if ((!num_entries && platforms) || (!platforms && !num_platforms))
		return CL_INVALID_VALUE;
	icd_device_init();
	if (num_platforms)
		*num_platforms = 1;
	if (platforms)
		platforms[0] = &icd_platform;
	return CL_SUCCESS;
}

ICD_EXPORT CL_API_ENTRY cl_int CL_API_CALL clIcdGetPlatformIDsKHR(cl_uint num_entries,
								  cl_platform_id *platforms,
								  cl_uint *num_platforms)
{
	if ((!num_entries && platforms) || (!platforms && !num_platforms))
		return CL_INVALID_VALUE;
	icd_device_init();
	/* No device that runs programs: no platform, so that the loader
	 * offers the others alone. */
	if (!icd_device.present) {
		if (num_platforms)
			*num_platforms = 0;
		return CL_PLATFORM_NOT_FOUND_KHR;
	}
	return clGetPlatformIDs(num_entries, platforms, num_platforms);
}

static const cl_name_version platform_ext_ver[] = {
	{ CL_MAKE_VERSION(1, 0, 0), "cl_khr_icd" },
};

ICD_EXPORT CL_API_ENTRY cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id platform,
						   cl_platform_info param_name,
						   size_t param_value_size, void *param_value,
						   size_t *param_value_size_ret)
{
	if (platform != &icd_platform)
		return CL_INVALID_PLATFORM;
	switch (param_name) {
	case CL_PLATFORM_PROFILE:
		ICD_INFO_STR("FULL_PROFILE");
	case CL_PLATFORM_VERSION:
		ICD_INFO_STR(ICD_VERSION_TEXT);
	case CL_PLATFORM_NUMERIC_VERSION:
		ICD_INFO_VAL(cl_version, CL_MAKE_VERSION(3, 0, 0));
	case CL_PLATFORM_NAME:
		ICD_INFO_STR(ICD_PLATFORM_NAME);
	case CL_PLATFORM_VENDOR:
		ICD_INFO_STR(ICD_PLATFORM_VENDOR);
	case CL_PLATFORM_EXTENSIONS:
		ICD_INFO_STR("cl_khr_icd");
	case CL_PLATFORM_EXTENSIONS_WITH_VERSION:
		return icd_info(param_value_size, param_value, param_value_size_ret,
				platform_ext_ver, sizeof(platform_ext_ver));
	case CL_PLATFORM_ICD_SUFFIX_KHR:
		ICD_INFO_STR(ICD_SUFFIX);
	case CL_PLATFORM_HOST_TIMER_RESOLUTION:
		ICD_INFO_VAL(cl_ulong, 0);
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceIDs(cl_platform_id platform, cl_device_type type,
						cl_uint num_entries, cl_device_id *devices,
						cl_uint *num_devices)
{
	cl_device_type mine;

	if (platform && platform != &icd_platform)
		return CL_INVALID_PLATFORM;
	if ((!num_entries && devices) || (!devices && !num_devices))
		return CL_INVALID_VALUE;
	if (type & ~(cl_device_type)(CL_DEVICE_TYPE_DEFAULT | CL_DEVICE_TYPE_CPU |
				     CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR |
				     CL_DEVICE_TYPE_CUSTOM) &&
	    type != CL_DEVICE_TYPE_ALL)
		return CL_INVALID_DEVICE_TYPE;
	icd_device_init();
	mine = rec_ulong(CL_DEVICE_TYPE, CL_DEVICE_TYPE_GPU);
	if (!icd_device.present ||
	    !(type == CL_DEVICE_TYPE_ALL || (type & CL_DEVICE_TYPE_DEFAULT) || (type & mine))) {
		if (num_devices)
			*num_devices = 0;
		return CL_DEVICE_NOT_FOUND;
	}
	if (num_devices)
		*num_devices = 1;
	if (devices)
		devices[0] = &icd_device;
	return CL_SUCCESS;
}

/* Device params passed on as the device reported them. */
static const uint32_t passthrough[] = {
	CL_DEVICE_VENDOR_ID,
	CL_DEVICE_MAX_COMPUTE_UNITS,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_CHAR,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_SHORT,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_INT,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_LONG,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_CHAR,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_SHORT,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_INT,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_LONG,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT,
	CL_DEVICE_MAX_CLOCK_FREQUENCY,
	CL_DEVICE_MEM_BASE_ADDR_ALIGN,
	CL_DEVICE_SINGLE_FP_CONFIG,
	CL_DEVICE_GLOBAL_MEM_CACHE_TYPE,
	CL_DEVICE_GLOBAL_MEM_CACHELINE_SIZE,
	CL_DEVICE_GLOBAL_MEM_CACHE_SIZE,
	CL_DEVICE_MAX_CONSTANT_BUFFER_SIZE,
	CL_DEVICE_MAX_CONSTANT_ARGS,
	CL_DEVICE_LOCAL_MEM_TYPE,
	CL_DEVICE_ERROR_CORRECTION_SUPPORT,
	CL_DEVICE_ENDIAN_LITTLE,
	CL_DEVICE_VENDOR,
	CL_DEVICE_PROFILE,
};

/* The smallest step CLOCK_MONOTONIC is seen to take (clock_getres() says
 * a tick under User-Mode Linux, whose clock reads the host's finer one). */
static size_t timer_resolution(void)
{
	cl_ulong best = 0;

	for (int i = 0; i < 1000; i++) {
		cl_ulong a = icd_now_ns(), b;

		while ((b = icd_now_ns()) == a)
			;
		if (!best || b - a < best)
			best = b - a;
	}
	return best ? (size_t)best : 1;
}

static cl_int device_info(cl_device_info param, size_t param_value_size, void *param_value,
			  size_t *param_value_size_ret)
{
	struct _cl_device_id *d = &icd_device;
	uint32_t size;
	const void *v;

	for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++) {
		if (passthrough[i] != param)
			continue;
		v = icd_device_record(param, &size);
		if (!v)
			break;
		return icd_info(param_value_size, param_value, param_value_size_ret, v, size);
	}

	switch (param) {
	case CL_DEVICE_TYPE:
		ICD_INFO_VAL(cl_device_type, rec_ulong(CL_DEVICE_TYPE, CL_DEVICE_TYPE_GPU));
	case CL_DEVICE_NAME:
		ICD_INFO_STR(d->name);
	case CL_DEVICE_VENDOR:
		ICD_INFO_STR("virtgpu-userptr");
	case CL_DRIVER_VERSION:
		ICD_INFO_STR(ICD_DRIVER_VERSION);
	case CL_DEVICE_PROFILE:
		ICD_INFO_STR("FULL_PROFILE");
	case CL_DEVICE_VERSION:
		ICD_INFO_STR(d->version);
	case CL_DEVICE_NUMERIC_VERSION:
		ICD_INFO_VAL(cl_version, CL_MAKE_VERSION(3, 0, 0));
	case CL_DEVICE_OPENCL_C_VERSION:
		ICD_INFO_STR(d->c_version);
	case CL_DEVICE_OPENCL_C_ALL_VERSIONS: {
		static const cl_name_version cv[] = {
			{ CL_MAKE_VERSION(1, 0, 0), "OpenCL C" },
			{ CL_MAKE_VERSION(1, 1, 0), "OpenCL C" },
			{ CL_MAKE_VERSION(1, 2, 0), "OpenCL C" },
		};
		return icd_info(param_value_size, param_value, param_value_size_ret, cv,
				sizeof(cv));
	}
	case CL_DEVICE_OPENCL_C_FEATURES: {
		cl_name_version f[2];
		size_t n = 0;

		f[n].version = CL_MAKE_VERSION(3, 0, 0);
		snprintf(f[n++].name, CL_NAME_VERSION_MAX_NAME_SIZE, "__opencl_c_int64");
		if (d->fp64) {
			f[n].version = CL_MAKE_VERSION(3, 0, 0);
			snprintf(f[n++].name, CL_NAME_VERSION_MAX_NAME_SIZE, "__opencl_c_fp64");
		}
		return icd_info(param_value_size, param_value, param_value_size_ret, f,
				n * sizeof(f[0]));
	}
	case CL_DEVICE_EXTENSIONS:
		ICD_INFO_STR(d->extensions);
	case CL_DEVICE_EXTENSIONS_WITH_VERSION: {
		cl_name_version e[16];
		size_t n = 0;
		const char *p = d->extensions;

		while (*p && n < 16) {
			size_t len = strcspn(p, " ");

			e[n].version = CL_MAKE_VERSION(1, 0, 0);
			snprintf(e[n].name, CL_NAME_VERSION_MAX_NAME_SIZE, "%.*s", (int)len, p);
			n++;
			p += len;
			p += strspn(p, " ");
		}
		return icd_info(param_value_size, param_value, param_value_size_ret, e,
				n * sizeof(e[0]));
	}
	case CL_DEVICE_IL_VERSION:
		if (d->info.features & VGPU_FEATURE_IL) {
			char il[128];

			rec_string(CL_DEVICE_IL_VERSION, il, sizeof(il), "");
			ICD_INFO_STR(il);
		}
		ICD_INFO_STR("");
	case CL_DEVICE_ILS_WITH_VERSION:
	case CL_DEVICE_BUILT_IN_KERNELS_WITH_VERSION:
		return icd_info(param_value_size, param_value, param_value_size_ret, NULL, 0);
	case CL_DEVICE_BUILT_IN_KERNELS:
		ICD_INFO_STR("");
	case CL_DEVICE_PLATFORM:
		ICD_INFO_VAL(cl_platform_id, &icd_platform);
	case CL_DEVICE_AVAILABLE:
	case CL_DEVICE_COMPILER_AVAILABLE:
	case CL_DEVICE_LINKER_AVAILABLE:
	case CL_DEVICE_HOST_UNIFIED_MEMORY:
	case CL_DEVICE_PREFERRED_INTEROP_USER_SYNC:
		ICD_INFO_VAL(cl_bool, CL_TRUE);
	case CL_DEVICE_IMAGE_SUPPORT:
	case CL_DEVICE_NON_UNIFORM_WORK_GROUP_SUPPORT:
	case CL_DEVICE_WORK_GROUP_COLLECTIVE_FUNCTIONS_SUPPORT:
	case CL_DEVICE_GENERIC_ADDRESS_SPACE_SUPPORT:
	case CL_DEVICE_PIPE_SUPPORT:
	case CL_DEVICE_SUB_GROUP_INDEPENDENT_FORWARD_PROGRESS:
		ICD_INFO_VAL(cl_bool, CL_FALSE);
	case CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS:
		ICD_INFO_VAL(cl_uint, d->max_dims);
	case CL_DEVICE_MAX_WORK_ITEM_SIZES:
		return icd_info(param_value_size, param_value, param_value_size_ret,
				d->max_items, d->max_dims * sizeof(size_t));
	case CL_DEVICE_MAX_WORK_GROUP_SIZE:
		ICD_INFO_VAL(size_t, d->max_wg);
	case CL_DEVICE_PREFERRED_WORK_GROUP_SIZE_MULTIPLE:
		ICD_INFO_VAL(size_t, rec_ulong(CL_DEVICE_PREFERRED_WORK_GROUP_SIZE_MULTIPLE, 1));
	case CL_DEVICE_PREFERRED_VECTOR_WIDTH_DOUBLE:
	case CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE:
		ICD_INFO_VAL(cl_uint, d->fp64 ? (cl_uint)rec_ulong(param, 1) : 0);
	case CL_DEVICE_PREFERRED_VECTOR_WIDTH_HALF:
	case CL_DEVICE_NATIVE_VECTOR_WIDTH_HALF:
		ICD_INFO_VAL(cl_uint, d->fp16 ? (cl_uint)rec_ulong(param, 1) : 0);
	case CL_DEVICE_DOUBLE_FP_CONFIG:
		ICD_INFO_VAL(cl_device_fp_config,
			     d->fp64 ? rec_ulong(CL_DEVICE_DOUBLE_FP_CONFIG, 0) : 0);
	case CL_DEVICE_HALF_FP_CONFIG:
		ICD_INFO_VAL(cl_device_fp_config,
			     d->fp16 ? rec_ulong(CL_DEVICE_HALF_FP_CONFIG, 0) : 0);
	case CL_DEVICE_ADDRESS_BITS:
		ICD_INFO_VAL(cl_uint, 64);
	case CL_DEVICE_GLOBAL_MEM_SIZE:
		ICD_INFO_VAL(cl_ulong, d->global_mem);
	case CL_DEVICE_MAX_MEM_ALLOC_SIZE:
		ICD_INFO_VAL(cl_ulong, d->max_alloc);
	case CL_DEVICE_LOCAL_MEM_SIZE:
		ICD_INFO_VAL(cl_ulong, d->local_mem);
	case CL_DEVICE_MAX_PARAMETER_SIZE:
		ICD_INFO_VAL(size_t, rec_ulong(CL_DEVICE_MAX_PARAMETER_SIZE, 1024) > 1024 ?
					     1024 : rec_ulong(CL_DEVICE_MAX_PARAMETER_SIZE, 1024));
	case CL_DEVICE_PROFILING_TIMER_RESOLUTION:
		ICD_INFO_VAL(size_t, timer_resolution());
	case CL_DEVICE_MIN_DATA_TYPE_ALIGN_SIZE:
		/* the largest type, long16 */
		ICD_INFO_VAL(cl_uint, 128);
	case CL_DEVICE_EXECUTION_CAPABILITIES:
		ICD_INFO_VAL(cl_device_exec_capabilities, CL_EXEC_KERNEL);
	case CL_DEVICE_QUEUE_ON_HOST_PROPERTIES:
		ICD_INFO_VAL(cl_command_queue_properties,
			     CL_QUEUE_PROFILING_ENABLE | CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
	case CL_DEVICE_QUEUE_ON_DEVICE_PROPERTIES:
	case CL_DEVICE_DEVICE_ENQUEUE_CAPABILITIES:
		ICD_INFO_VAL(cl_ulong, 0);
	case CL_DEVICE_SVM_CAPABILITIES:
		ICD_INFO_VAL(cl_device_svm_capabilities, 0);
	case CL_DEVICE_ATOMIC_MEMORY_CAPABILITIES:
		ICD_INFO_VAL(cl_device_atomic_capabilities,
			     CL_DEVICE_ATOMIC_ORDER_RELAXED | CL_DEVICE_ATOMIC_SCOPE_WORK_GROUP);
	case CL_DEVICE_ATOMIC_FENCE_CAPABILITIES:
		ICD_INFO_VAL(cl_device_atomic_capabilities,
			     CL_DEVICE_ATOMIC_ORDER_RELAXED | CL_DEVICE_ATOMIC_ORDER_ACQ_REL |
				     CL_DEVICE_ATOMIC_SCOPE_WORK_GROUP);
	case CL_DEVICE_MAX_READ_IMAGE_ARGS:
	case CL_DEVICE_MAX_WRITE_IMAGE_ARGS:
	case CL_DEVICE_MAX_READ_WRITE_IMAGE_ARGS:
	case CL_DEVICE_MAX_SAMPLERS:
	case CL_DEVICE_IMAGE_PITCH_ALIGNMENT:
	case CL_DEVICE_IMAGE_BASE_ADDRESS_ALIGNMENT:
	case CL_DEVICE_MAX_PIPE_ARGS:
	case CL_DEVICE_PIPE_MAX_ACTIVE_RESERVATIONS:
	case CL_DEVICE_PIPE_MAX_PACKET_SIZE:
	case CL_DEVICE_MAX_ON_DEVICE_QUEUES:
	case CL_DEVICE_MAX_ON_DEVICE_EVENTS:
	case CL_DEVICE_QUEUE_ON_DEVICE_PREFERRED_SIZE:
	case CL_DEVICE_QUEUE_ON_DEVICE_MAX_SIZE:
	case CL_DEVICE_PARTITION_MAX_SUB_DEVICES:
	case CL_DEVICE_MAX_NUM_SUB_GROUPS:
	case CL_DEVICE_PREFERRED_PLATFORM_ATOMIC_ALIGNMENT:
	case CL_DEVICE_PREFERRED_GLOBAL_ATOMIC_ALIGNMENT:
	case CL_DEVICE_PREFERRED_LOCAL_ATOMIC_ALIGNMENT:
		ICD_INFO_VAL(cl_uint, 0);
	case CL_DEVICE_IMAGE2D_MAX_WIDTH:
	case CL_DEVICE_IMAGE2D_MAX_HEIGHT:
	case CL_DEVICE_IMAGE3D_MAX_WIDTH:
	case CL_DEVICE_IMAGE3D_MAX_HEIGHT:
	case CL_DEVICE_IMAGE3D_MAX_DEPTH:
	case CL_DEVICE_IMAGE_MAX_BUFFER_SIZE:
	case CL_DEVICE_IMAGE_MAX_ARRAY_SIZE:
	case CL_DEVICE_MAX_GLOBAL_VARIABLE_SIZE:
	case CL_DEVICE_GLOBAL_VARIABLE_PREFERRED_TOTAL_SIZE:
		ICD_INFO_VAL(size_t, 0);
	case CL_DEVICE_PRINTF_BUFFER_SIZE:
		/* printf's output stays on the host: say there is no room. */
		ICD_INFO_VAL(size_t, 0);
	case CL_DEVICE_PARENT_DEVICE:
		ICD_INFO_VAL(cl_device_id, NULL);
	case CL_DEVICE_PARTITION_PROPERTIES:
	case CL_DEVICE_PARTITION_TYPE:
		ICD_INFO_VAL(cl_device_partition_property, 0);
	case CL_DEVICE_PARTITION_AFFINITY_DOMAIN:
		ICD_INFO_VAL(cl_device_affinity_domain, 0);
	case CL_DEVICE_REFERENCE_COUNT:
		ICD_INFO_VAL(cl_uint, 1);
	case CL_DEVICE_LATEST_CONFORMANCE_VERSION_PASSED:
		ICD_INFO_STR("v0000-00-00-00");
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceInfo(cl_device_id device, cl_device_info param_name,
						 size_t param_value_size, void *param_value,
						 size_t *param_value_size_ret)
{
	if (!icd_valid_device(device))
		return CL_INVALID_DEVICE;
	return device_info(param_name, param_value_size, param_value, param_value_size_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clRetainDevice(cl_device_id device)
{
	return icd_valid_device(device) ? CL_SUCCESS : CL_INVALID_DEVICE;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseDevice(cl_device_id device)
{
	return icd_valid_device(device) ? CL_SUCCESS : CL_INVALID_DEVICE;
}

CL_API_ENTRY cl_int CL_API_CALL clCreateSubDevices(cl_device_id in_device,
						    const cl_device_partition_property *properties,
						    cl_uint num_devices, cl_device_id *out_devices,
						    cl_uint *num_devices_ret)
{
	(void)properties;
	(void)num_devices;
	(void)out_devices;
	(void)num_devices_ret;
	if (!icd_valid_device(in_device))
		return CL_INVALID_DEVICE;
	return CL_INVALID_VALUE;
}

CL_API_ENTRY cl_int CL_API_CALL clGetHostTimer(cl_device_id device, cl_ulong *host_timestamp)
{
	if (!icd_valid_device(device))
		return CL_INVALID_DEVICE;
	if (!host_timestamp)
		return CL_INVALID_VALUE;
	*host_timestamp = icd_now_ns();
	return CL_SUCCESS;
}

/* The device's profiling clock is the guest's CLOCK_MONOTONIC: one clock. */
CL_API_ENTRY cl_int CL_API_CALL clGetDeviceAndHostTimer(cl_device_id device,
							 cl_ulong *device_timestamp,
							 cl_ulong *host_timestamp)
{
	if (!icd_valid_device(device))
		return CL_INVALID_DEVICE;
	if (!device_timestamp || !host_timestamp)
		return CL_INVALID_VALUE;
	*device_timestamp = *host_timestamp = icd_now_ns();
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clUnloadCompiler(void)
{
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clUnloadPlatformCompiler(cl_platform_id platform)
{
	return platform == &icd_platform ? CL_SUCCESS : CL_INVALID_PLATFORM;
}

CL_API_ENTRY void *CL_API_CALL clGetExtensionFunctionAddressForPlatform(cl_platform_id platform,
									const char *func_name)
{
	if (platform != &icd_platform || !func_name)
		return NULL;
	return clGetExtensionFunctionAddress(func_name);
}

ICD_EXPORT CL_API_ENTRY void *CL_API_CALL clGetExtensionFunctionAddress(const char *func_name)
{
	if (func_name && !strcmp(func_name, "clIcdGetPlatformIDsKHR"))
		return (void *)clIcdGetPlatformIDsKHR;
	return NULL;
}
