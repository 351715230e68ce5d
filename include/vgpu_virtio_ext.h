/* SPDX-License-Identifier: MIT */
/*
 * vgpu_virtio_ext.h - the userptr extension of the virtio-gpu wire format.
 *
 * The wire structures come from the kernel's <linux/virtio_gpu.h>. The
 * bits this project adds (kernel/patches: "virtio_gpu: add the
 * RESOURCE_USERPTR feature") are taken from the patched kernel's exported
 * headers when the build is given them; otherwise the fallback values
 * below are used. When both exist they must agree: the #error lines make
 * a mismatch a build failure rather than a silent protocol split.
 */
#ifndef VGPU_VIRTIO_EXT_H
#define VGPU_VIRTIO_EXT_H

#include <linux/virtio_gpu.h>

/*
 * Chosen to collide with no known implementation: crosvm and libkrun use
 * feature bits 5 (RESOURCE_SYNC / FENCE_PASSING) and 6
 * (CREATE_GUEST_HANDLE) and blob flag 0x0008 (CREATE_GUEST_HANDLE).
 */
#define VGPU_FALLBACK_F_RESOURCE_USERPTR 16
#define VGPU_FALLBACK_BLOB_FLAG_USE_USERPTR 0x0100
#define VGPU_FALLBACK_BLOB_FLAG_USERPTR_RDONLY 0x0200

#ifdef VIRTIO_GPU_F_RESOURCE_USERPTR
#if VIRTIO_GPU_F_RESOURCE_USERPTR != VGPU_FALLBACK_F_RESOURCE_USERPTR
#error "VIRTIO_GPU_F_RESOURCE_USERPTR disagrees with the kernel headers"
#endif
#else
#define VIRTIO_GPU_F_RESOURCE_USERPTR VGPU_FALLBACK_F_RESOURCE_USERPTR
#endif

#ifdef VIRTIO_GPU_BLOB_FLAG_USE_USERPTR
#if VIRTIO_GPU_BLOB_FLAG_USE_USERPTR != VGPU_FALLBACK_BLOB_FLAG_USE_USERPTR
#error "VIRTIO_GPU_BLOB_FLAG_USE_USERPTR disagrees with the kernel headers"
#endif
#else
#define VIRTIO_GPU_BLOB_FLAG_USE_USERPTR VGPU_FALLBACK_BLOB_FLAG_USE_USERPTR
#endif

#ifdef VIRTIO_GPU_BLOB_FLAG_USERPTR_RDONLY
#if VIRTIO_GPU_BLOB_FLAG_USERPTR_RDONLY != VGPU_FALLBACK_BLOB_FLAG_USERPTR_RDONLY
#error "VIRTIO_GPU_BLOB_FLAG_USERPTR_RDONLY disagrees with the kernel headers"
#endif
#else
#define VIRTIO_GPU_BLOB_FLAG_USERPTR_RDONLY VGPU_FALLBACK_BLOB_FLAG_USERPTR_RDONLY
#endif

#endif /* VGPU_VIRTIO_EXT_H */
