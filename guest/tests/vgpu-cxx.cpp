// SPDX-License-Identifier: MIT
// vgpu-cxx - the public header compiled as C++ (-std=c++11 -Wall -Wextra
// -Werror -pedantic), its inline wrappers and struct layouts used from C++,
// linked against the C library. Runs without a device. Prints TAP.
#include <vgpu/vgpu.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

static unsigned n, failed;

static void ok(bool c, const char *what)
{
	std::printf("%s %u - %s\n", c ? "ok" : "not ok", ++n, what);
	if (!c)
		failed++;
}

int main()
{
	vgpu_info info;
	vgpu_submit_result res;
	vgpu_submit_info si = {};

	std::memset(&info, 0, sizeof(info));
	std::memset(&res, 0, sizeof(res));
	ok(vgpu_get_version() == VGPU_VERSION, "vgpu_get_version() from C++");
	ok(offsetof(vgpu_info, struct_size) == 0 && offsetof(vgpu_submit_result, struct_size) == 0 &&
	   offsetof(vgpu_submit_info, struct_size) == 0, "struct_size leads every ABI struct");
	ok(vgpu_get_info(nullptr, &info) == -EINVAL && info.struct_size == sizeof(info),
	   "the inline vgpu_get_info sets struct_size and calls the library");
	ok(vgpu_batch_submit(nullptr, &res) == -EINVAL &&
	   res.device_result == VGPU_RESULT_NOT_EXECUTED,
	   "vgpu_batch_submit(NULL): -EINVAL, not executed");
	ok(std::strlen(vgpu_error_detail()) > 0, "vgpu_error_detail() says why");
	si.struct_size = sizeof(si);
	vgpu_fence *f = nullptr;
	ok(vgpu_batch_submit_async(nullptr, &si, &f) == -EINVAL && f == nullptr,
	   "vgpu_batch_submit_async(NULL batch) = -EINVAL");
	ok(std::strcmp(vgpu_strerror(-ECHILD), std::strerror(ECHILD)) != 0,
	   "-ECHILD (fork guard) has its own message");
	std::printf("1..%u\n", n);
	return failed ? 1 : 0;
}
