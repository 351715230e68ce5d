/* SPDX-License-Identifier: MIT */
/*
 * vgpu-unit - libvgpu checks that need no device: argument validation,
 * error codes and messages. Runs on any machine; prints TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "vgpu.h"

static void test_strerror(void)
{
	static const int errs[] = {
		EINVAL, ENODEV, EOPNOTSUPP, EFAULT, ENOMEM, EPERM, EBUSY, E2BIG,
		ERANGE, EACCES, EPROTO, ENOENT, ENXIO, ETIMEDOUT, EIO,
	};

	tap_ok(strcmp(vgpu_strerror(0), "success") == 0, "vgpu_strerror(0) is success");
	tap_ok(strcmp(vgpu_strerror(5), "success") == 0, "vgpu_strerror(positive) is success");
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *m = vgpu_strerror(-errs[i]);

		tap_ok(m && *m && strcmp(m, "success") != 0, "vgpu_strerror(-%s) = \"%s\"",
		       strerrorname_np(errs[i]) ? strerrorname_np(errs[i]) : "?", m ? m : "(null)");
	}
	tap_ok(strcmp(vgpu_strerror(-EMLINK), strerror(EMLINK)) == 0,
	       "vgpu_strerror falls back to strerror");
	tap_ok(vgpu_strerror(-100000) != NULL, "vgpu_strerror of an unknown errno is not NULL");
}

static void test_results(void)
{
	static const struct {
		uint32_t r;
		int e;
	} map[] = {
		{ VGPU_COMPUTE_OK, 0 },
		{ VGPU_COMPUTE_E_MALFORMED, -EPROTO },
		{ VGPU_COMPUTE_E_OPCODE, -EOPNOTSUPP },
		{ VGPU_COMPUTE_E_RESOURCE, -ENOENT },
		{ VGPU_COMPUTE_E_RANGE, -ERANGE },
		{ VGPU_COMPUTE_E_READONLY, -EACCES },
		{ VGPU_COMPUTE_E_ALIGN, -EINVAL },
		{ VGPU_COMPUTE_E_OVERLAP, -EINVAL },
		{ VGPU_COMPUTE_E_NOBACKING, -ENXIO },
		{ VGPU_COMPUTE_E_NOWINDOW, -ENOSPC },
		{ VGPU_COMPUTE_E_DEVICE, -EREMOTEIO },
		{ VGPU_COMPUTE_E_OBJECT, -EBADF },
		{ VGPU_COMPUTE_E_ARGS, -EINVAL },
		{ VGPU_COMPUTE_E_WORKSIZE, -EDOM },
		{ VGPU_COMPUTE_E_TIMEOUT, -ETIME },
		{ VGPU_COMPUTE_E_LOST, -ENOTRECOVERABLE },
		{ VGPU_COMPUTE_E_NOPROGRAMS, -ENOEXEC },
		{ 17, -EIO },
		{ 0xffffffffu, -EIO },
	};
	const char *unknown = vgpu_result_str(0xfffffffeu);
	bool distinct = true;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		tap_eq(vgpu_result_to_errno(map[i].r), map[i].e, "device result %u -> errno %d",
		       map[i].r, map[i].e);
		tap_ok(vgpu_result_str(map[i].r) && *vgpu_result_str(map[i].r),
		       "device result %u has a message (\"%s\")", map[i].r,
		       vgpu_result_str(map[i].r));
	}
	/* Every result code the device defines has a message of its own, and
	 * every errno they map to a text of its own too. */
	for (uint32_t r = VGPU_COMPUTE_OK; r <= VGPU_COMPUTE_E_NOPROGRAMS; r++) {
		if (strcmp(vgpu_result_str(r), unknown) == 0)
			distinct = false;
		for (uint32_t q = VGPU_COMPUTE_E_MALFORMED; q < r; q++)
			if (r != VGPU_COMPUTE_OK && vgpu_result_to_errno(q) != vgpu_result_to_errno(r) &&
			    strcmp(vgpu_strerror(vgpu_result_to_errno(q)),
				   vgpu_strerror(vgpu_result_to_errno(r))) == 0)
				distinct = false;
	}
	tap_ok(distinct, "every device result code has its own message and errno text");
	tap_ok(strcmp(vgpu_strerror(-EBUSY), vgpu_strerror(-EAGAIN)) != 0 &&
	       strstr(vgpu_strerror(-EAGAIN), "slot") != NULL,
	       "full submit slots (-EAGAIN) have a message of their own (\"%s\")",
	       vgpu_strerror(-EAGAIN));
}

static void test_null_args(void)
{
	struct vgpu_device *dev = (struct vgpu_device *)1;
	struct vgpu_buffer *buf = (struct vgpu_buffer *)1;
	struct vgpu_batch *b = (struct vgpu_batch *)1;
	struct vgpu_info info;
	struct vgpu_submit_result res;
	uint64_t v;
	char page[1] = { 0 };

	tap_eq(vgpu_open(NULL, 0, NULL), -EINVAL, "vgpu_open(out NULL) = -EINVAL");
	tap_eq(vgpu_open(NULL, 0x80, &dev), -EINVAL, "vgpu_open(bad flags) = -EINVAL");
	tap_eq(vgpu_open_fd(-1, 0, &dev), -EINVAL, "vgpu_open_fd(-1) = -EINVAL");
	tap_eq(vgpu_open_fd(0, 0x80, &dev), -EINVAL, "vgpu_open_fd(bad flags) = -EINVAL");
	tap_eq(vgpu_open("/nonexistent/renderD128", 0, &dev), -ENOENT,
	       "vgpu_open(missing path) = -ENOENT");
	tap_ok(dev == NULL, "a failed vgpu_open sets *out to NULL");
	tap_eq(vgpu_open("/dev/null", 0, &dev), -ENODEV, "vgpu_open(/dev/null) = -ENODEV");
	{
		int fd = open("/dev/null", O_RDWR);

		tap_eq(vgpu_open_fd(fd, 0, &dev), -ENODEV, "vgpu_open_fd(/dev/null) = -ENODEV");
		tap_ok(fcntl(fd, F_GETFD) == 0 || fcntl(fd, F_GETFD) == FD_CLOEXEC,
		       "vgpu_open_fd leaves the caller's fd open");
		close(fd);
	}
	tap_eq(vgpu_get_info(NULL, &info), -EINVAL, "vgpu_get_info(NULL) = -EINVAL");
	tap_eq(vgpu_get_param(NULL, 1, &v), -EINVAL, "vgpu_get_param(NULL) = -EINVAL");
	tap_ok(!vgpu_has_userptr(NULL), "vgpu_has_userptr(NULL) is false");
	tap_eq(vgpu_device_fd(NULL), -EINVAL, "vgpu_device_fd(NULL) = -EINVAL");
	tap_eq(vgpu_buffer_from_user(NULL, page, 4096, 0, &buf), -EINVAL,
	       "vgpu_buffer_from_user(dev NULL) = -EINVAL");
	tap_ok(buf == NULL, "a failed vgpu_buffer_from_user sets *out to NULL");
	tap_eq(vgpu_buffer_from_user(NULL, page, 4096, 0, NULL), -EINVAL,
	       "vgpu_buffer_from_user(out NULL) = -EINVAL");
	tap_eq(vgpu_buffer_alloc(NULL, 4096, 0, &buf), -EINVAL, "vgpu_buffer_alloc(dev NULL) = -EINVAL");
	tap_eq(vgpu_batch_create(NULL, &b), -EINVAL, "vgpu_batch_create(dev NULL) = -EINVAL");
	tap_ok(b == NULL, "a failed vgpu_batch_create sets *out to NULL");
	tap_eq(vgpu_batch_create(NULL, NULL), -EINVAL, "vgpu_batch_create(out NULL) = -EINVAL");
	tap_eq(vgpu_batch_copy(NULL, NULL, 0, NULL, 0, 4), -EINVAL, "vgpu_batch_copy(NULL) = -EINVAL");
	tap_eq(vgpu_batch_fill(NULL, NULL, 0, 4, 0), -EINVAL, "vgpu_batch_fill(NULL) = -EINVAL");
	tap_eq(vgpu_batch_checksum(NULL, NULL, 0, NULL, 0, 4, 0), -EINVAL,
	       "vgpu_batch_checksum(NULL) = -EINVAL");
	tap_eq(vgpu_batch_saxpy(NULL, NULL, 0, NULL, 0, 4, 1.0f), -EINVAL,
	       "vgpu_batch_saxpy(NULL) = -EINVAL");
	tap_eq(vgpu_batch_sum_f32(NULL, NULL, 0, NULL, 0, 4), -EINVAL,
	       "vgpu_batch_sum_f32(NULL) = -EINVAL");
	tap_eq(vgpu_batch_nop(NULL), -EINVAL, "vgpu_batch_nop(NULL) = -EINVAL");
	tap_eq(vgpu_batch_add_raw(NULL, 0, 0, NULL, 0, NULL, 0, 0, 0, 0), -EINVAL,
	       "vgpu_batch_add_raw(NULL) = -EINVAL");
	tap_eq(vgpu_batch_submit(NULL, &res), -EINVAL, "vgpu_batch_submit(NULL) = -EINVAL");
	tap_eq(vgpu_batch_num_ops(NULL), 0, "vgpu_batch_num_ops(NULL) = 0");
	tap_ok(!vgpu_buffer_is_zero_copy(NULL) && !vgpu_buffer_is_read_only(NULL) &&
	       vgpu_buffer_size(NULL) == 0 && vgpu_buffer_data(NULL) == NULL &&
	       vgpu_buffer_res_id(NULL) == 0 && vgpu_buffer_handle(NULL) == 0,
	       "buffer getters accept NULL");
	vgpu_buffer_destroy(NULL);
	vgpu_batch_destroy(NULL);
	vgpu_batch_reset(NULL);
	vgpu_batch_set_timeout(NULL, 5);
	vgpu_close(NULL);
	tap_ok(1, "destroy/close functions accept NULL");
}

int main(void)
{
	test_strerror();
	test_results();
	test_null_args();
	return tap_done();
}
