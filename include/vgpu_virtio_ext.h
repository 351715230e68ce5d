/* SPDX-License-Identifier: MIT */
/*
 * vgpu_virtio_ext.h - the read-only blob extension of the virtio-gpu wire
 * format (userptr, version 3).
 *
 * A read-write userptr resource is an ordinary guest blob on the wire and
 * needs no definition here. What this project adds is read-only: a
 * feature bit, by which the device promises never to write the pages of
 * a blob created with the RDONLY blob flag, and that flag.
 *
 * The wire structures come from the kernel's <linux/virtio_gpu.h>. The
 * bits this project adds (kernel/patches) are taken from the patched
 * kernel's exported headers when the build is given them; otherwise the
 * fallback values below are used. When both exist they must agree: the
 * #error lines make a mismatch a build failure rather than a silent
 * protocol split.
 */
#ifndef VGPU_VIRTIO_EXT_H
#define VGPU_VIRTIO_EXT_H

#include <linux/virtio_gpu.h>

/*
 * Chosen to collide with no known implementation: crosvm and libkrun use
 * feature bits 5 (RESOURCE_SYNC / FENCE_PASSING) and 6
 * (CREATE_GUEST_HANDLE) and blob flag 0x0008 (CREATE_GUEST_HANDLE).
 * Blob flag 0x0100 was the userptr flag of the previous version of the
 * extension; it is not defined any more, and a device treats it as any
 * unknown flag.
 */
#define VGPU_FALLBACK_F_BLOB_RDONLY 16
#define VGPU_FALLBACK_BLOB_FLAG_RDONLY 0x0200

#ifdef VIRTIO_GPU_F_BLOB_RDONLY
#if VIRTIO_GPU_F_BLOB_RDONLY != VGPU_FALLBACK_F_BLOB_RDONLY
#error "VIRTIO_GPU_F_BLOB_RDONLY disagrees with the kernel headers"
#endif
#else
#define VIRTIO_GPU_F_BLOB_RDONLY VGPU_FALLBACK_F_BLOB_RDONLY
#endif

#ifdef VIRTIO_GPU_BLOB_FLAG_RDONLY
#if VIRTIO_GPU_BLOB_FLAG_RDONLY != VGPU_FALLBACK_BLOB_FLAG_RDONLY
#error "VIRTIO_GPU_BLOB_FLAG_RDONLY disagrees with the kernel headers"
#endif
#else
#define VIRTIO_GPU_BLOB_FLAG_RDONLY VGPU_FALLBACK_BLOB_FLAG_RDONLY
#endif

#endif /* VGPU_VIRTIO_EXT_H */
