/* SPDX-License-Identifier: MIT */
/* error.c - error codes and messages. */
#include "vgpu_private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[256];

int vgpu_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return err;
}

VGPU_EXPORT const char *vgpu_error_detail(void)
{
	return detail;
}

VGPU_EXPORT uint32_t vgpu_get_version(void)
{
	return VGPU_VERSION;
}

VGPU_EXPORT int vgpu_result_to_errno(uint32_t device_result)
{
	switch (device_result) {
	case VGPU_COMPUTE_OK:
		return 0;
	case VGPU_COMPUTE_E_MALFORMED:
		return -EPROTO;
	case VGPU_COMPUTE_E_OPCODE:
		return -EOPNOTSUPP;
	case VGPU_COMPUTE_E_RESOURCE:
		return -ENOENT;
	case VGPU_COMPUTE_E_RANGE:
		return -ERANGE;
	case VGPU_COMPUTE_E_READONLY:
		return -EACCES;
	case VGPU_COMPUTE_E_ALIGN:
	case VGPU_COMPUTE_E_OVERLAP:
		return -EINVAL;
	case VGPU_COMPUTE_E_NOBACKING:
		return -ENXIO;
	case VGPU_COMPUTE_E_NOWINDOW:
		return -ENOSPC;
	case VGPU_COMPUTE_E_DEVICE:
		return -EREMOTEIO;
	case VGPU_COMPUTE_E_OBJECT:
		return -EBADF;
	case VGPU_COMPUTE_E_ARGS:
		return -EINVAL;
	case VGPU_COMPUTE_E_WORKSIZE:
		return -EDOM;
	case VGPU_COMPUTE_E_TIMEOUT:
		return -ETIME;
	case VGPU_COMPUTE_E_LOST:
		return -ENOTRECOVERABLE;
	case VGPU_COMPUTE_E_NOPROGRAMS:
		return -ENOEXEC;
	default:
		return -EIO;
	}
}

VGPU_EXPORT const char *vgpu_result_str(uint32_t device_result)
{
	switch (device_result) {
	case VGPU_COMPUTE_OK:
		return "success";
	case VGPU_COMPUTE_E_MALFORMED:
		return "malformed command stream";
	case VGPU_COMPUTE_E_OPCODE:
		return "unknown opcode or op flags";
	case VGPU_COMPUTE_E_RESOURCE:
		return "resource unknown or not attached to the context";
	case VGPU_COMPUTE_E_RANGE:
		return "offset or length outside the resource";
	case VGPU_COMPUTE_E_READONLY:
		return "write into a read-only resource";
	case VGPU_COMPUTE_E_ALIGN:
		return "length or offset not aligned as the op requires";
	case VGPU_COMPUTE_E_OVERLAP:
		return "copy ranges overlap";
	case VGPU_COMPUTE_E_NOBACKING:
		return "resource has no backing pages";
	case VGPU_COMPUTE_E_NOWINDOW:
		return "the device has no zero-copy window for a resource (mapping budget "
		       "spent, or mem entries not page aligned)";
	case VGPU_COMPUTE_E_DEVICE:
		return "the host's compute device failed while running the submit";
	case VGPU_COMPUTE_E_OBJECT:
		return "program or kernel id unknown to the device";
	case VGPU_COMPUTE_E_ARGS:
		return "dispatch arguments do not fit the kernel";
	case VGPU_COMPUTE_E_WORKSIZE:
		return "work sizes, offsets or local memory out of the device's bounds";
	case VGPU_COMPUTE_E_TIMEOUT:
		return "an op ran past the device's time budget (the context's programs are lost)";
	case VGPU_COMPUTE_E_LOST:
		return "the context's programs are lost (a program timed out or crashed its "
		       "worker): open the device again";
	case VGPU_COMPUTE_E_NOPROGRAMS:
		return "the device runs no programs";
	default:
		return "unknown device result";
	}
}

VGPU_EXPORT const char *vgpu_strerror(int err)
{
	if (err >= 0)
		return "success";
	switch (-err) {
	case EINVAL:
		return "invalid argument (vgpu_error_detail() names the rule)";
	case ENODEV:
		return "no virtio-gpu render node (driver virtio_gpu) found, or the device is gone";
	case ECHILD:
		return "the object belongs to the parent process: after fork() a child must "
		       "open its own device";
	case EOPNOTSUPP:
		return "not supported by this device or kernel (blob resources, context "
		       "init, the compute capset, userptr, or the op)";
	case EFAULT:
		return "memory range not mapped, or not writable (use VGPU_BUF_READ_ONLY "
		       "for read-only memory)";
	case ENOMEM:
		return "out of memory, or the locked-memory limit (RLIMIT_MEMLOCK) reached";
	case EPERM:
		return "operation not permitted on this buffer";
	case EBUSY:
		return "the DRM file already has a context";
	case EAGAIN:
		return "every in-flight submit slot is held by a submit being made right now "
		       "(try again)";
	case ENOSPC:
		return "the device has no zero-copy window for a buffer (its mapping budget is "
		       "spent, or the buffer's pages are not page aligned in guest memory)";
	case EREMOTEIO:
		return "the host's compute device failed while running the submit";
	case E2BIG:
		return "too many ops in one batch, or memory too fragmented for one device "
		       "request";
	case ERANGE:
		return "offset or length outside the buffer";
	case EACCES:
		return "write into a read-only buffer";
	case EPROTO:
		return "the device rejected the command stream as malformed";
	case ENOENT:
		return "the device does not know a buffer of the submit";
	case ENXIO:
		return "a buffer of the submit has no backing pages";
	case ETIMEDOUT:
		return "the device did not complete the submit in time (it is still in "
		       "flight: wait again)";
	case EIO:
		return "the device returned no status for the submit";
	case ECANCELED:
		return "the submit was abandoned before it completed";
	case EBADF:
		return "the device does not know a program or kernel of the submit";
	case EDOM:
		return "work sizes, offsets or local memory out of the device's bounds";
	case ETIME:
		return "a program ran past the device's time budget: the context's programs "
		       "are lost";
	case ENOTRECOVERABLE:
		return "the context's programs are lost (a program timed out or crashed the "
		       "device's worker): open the device again";
	case ENOEXEC:
		return "the device runs no programs (capset version 3 without "
		       "VGPU_FEATURE_PROGRAMS)";
	default:
		return strerror(-err);
	}
}
