// SPDX-License-Identifier: MIT
/*
 * dispatch.c - the loader's dispatch table, and the calls of what this ICD
 * reports absent (images, samplers, pipes, SVM): each returns the error the
 * specification gives for a device without the feature, so that no entry of
 * the table is NULL for a program to call.
 */
#include "icd.h"

#define UNUSED(x) (void)(x)

CL_API_ENTRY cl_int CL_API_CALL clGetSupportedImageFormats(cl_context context, cl_mem_flags flags,
							    cl_mem_object_type image_type,
							    cl_uint num_entries,
							    cl_image_format *image_formats,
							    cl_uint *num_image_formats)
{
	UNUSED(flags);
	UNUSED(image_type);
	UNUSED(num_entries);
	UNUSED(image_formats);
	if (!icd_valid_context(context))
		return CL_INVALID_CONTEXT;
	if (num_image_formats)
		*num_image_formats = 0;
	return CL_SUCCESS;
}

static cl_mem no_image(cl_context context, cl_int *errcode_ret)
{
	icd_set_err(errcode_ret, icd_valid_context(context) ? CL_INVALID_OPERATION
							    : CL_INVALID_CONTEXT);
	return NULL;
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateImage(cl_context context, cl_mem_flags flags,
					       const cl_image_format *image_format,
					       const cl_image_desc *image_desc, void *host_ptr,
					       cl_int *errcode_ret)
{
	UNUSED(flags);
	UNUSED(image_format);
	UNUSED(image_desc);
	UNUSED(host_ptr);
	return no_image(context, errcode_ret);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateImageWithProperties(
	cl_context context, const cl_mem_properties *properties, cl_mem_flags flags,
	const cl_image_format *image_format, const cl_image_desc *image_desc, void *host_ptr,
	cl_int *errcode_ret)
{
	UNUSED(properties);
	UNUSED(flags);
	UNUSED(image_format);
	UNUSED(image_desc);
	UNUSED(host_ptr);
	return no_image(context, errcode_ret);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateImage2D(cl_context context, cl_mem_flags flags,
						 const cl_image_format *image_format,
						 size_t image_width, size_t image_height,
						 size_t image_row_pitch, void *host_ptr,
						 cl_int *errcode_ret)
{
	UNUSED(flags);
	UNUSED(image_format);
	UNUSED(image_width);
	UNUSED(image_height);
	UNUSED(image_row_pitch);
	UNUSED(host_ptr);
	return no_image(context, errcode_ret);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateImage3D(cl_context context, cl_mem_flags flags,
						 const cl_image_format *image_format,
						 size_t image_width, size_t image_height,
						 size_t image_depth, size_t image_row_pitch,
						 size_t image_slice_pitch, void *host_ptr,
						 cl_int *errcode_ret)
{
	UNUSED(flags);
	UNUSED(image_format);
	UNUSED(image_width);
	UNUSED(image_height);
	UNUSED(image_depth);
	UNUSED(image_row_pitch);
	UNUSED(image_slice_pitch);
	UNUSED(host_ptr);
	return no_image(context, errcode_ret);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreatePipe(cl_context context, cl_mem_flags flags,
					      cl_uint pipe_packet_size, cl_uint pipe_max_packets,
					      const cl_pipe_properties *properties,
					      cl_int *errcode_ret)
{
	UNUSED(flags);
	UNUSED(pipe_packet_size);
	UNUSED(pipe_max_packets);
	UNUSED(properties);
	return no_image(context, errcode_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clGetImageInfo(cl_mem image, cl_image_info param_name,
						size_t param_value_size, void *param_value,
						size_t *param_value_size_ret)
{
	UNUSED(image);
	UNUSED(param_name);
	UNUSED(param_value_size);
	UNUSED(param_value);
	UNUSED(param_value_size_ret);
	return CL_INVALID_MEM_OBJECT;
}

CL_API_ENTRY cl_int CL_API_CALL clGetPipeInfo(cl_mem pipe, cl_pipe_info param_name,
					       size_t param_value_size, void *param_value,
					       size_t *param_value_size_ret)
{
	UNUSED(pipe);
	UNUSED(param_name);
	UNUSED(param_value_size);
	UNUSED(param_value);
	UNUSED(param_value_size_ret);
	return CL_INVALID_MEM_OBJECT;
}

CL_API_ENTRY cl_sampler CL_API_CALL clCreateSampler(cl_context context, cl_bool normalized_coords,
						     cl_addressing_mode addressing_mode,
						     cl_filter_mode filter_mode,
						     cl_int *errcode_ret)
{
	UNUSED(normalized_coords);
	UNUSED(addressing_mode);
	UNUSED(filter_mode);
	no_image(context, errcode_ret);
	return NULL;
}

CL_API_ENTRY cl_sampler CL_API_CALL clCreateSamplerWithProperties(
	cl_context context, const cl_sampler_properties *sampler_properties, cl_int *errcode_ret)
{
	UNUSED(sampler_properties);
	no_image(context, errcode_ret);
	return NULL;
}

CL_API_ENTRY cl_int CL_API_CALL clRetainSampler(cl_sampler sampler)
{
	UNUSED(sampler);
	return CL_INVALID_SAMPLER;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseSampler(cl_sampler sampler)
{
	UNUSED(sampler);
	return CL_INVALID_SAMPLER;
}

CL_API_ENTRY cl_int CL_API_CALL clGetSamplerInfo(cl_sampler sampler, cl_sampler_info param_name,
						  size_t param_value_size, void *param_value,
						  size_t *param_value_size_ret)
{
	UNUSED(sampler);
	UNUSED(param_name);
	UNUSED(param_value_size);
	UNUSED(param_value);
	UNUSED(param_value_size_ret);
	return CL_INVALID_SAMPLER;
}

static cl_int no_image_cmd(cl_command_queue q)
{
	return icd_valid_queue(q) ? CL_INVALID_MEM_OBJECT : CL_INVALID_COMMAND_QUEUE;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadImage(cl_command_queue q, cl_mem image,
						    cl_bool blocking_read, const size_t *origin,
						    const size_t *region, size_t row_pitch,
						    size_t slice_pitch, void *ptr, cl_uint nw,
						    const cl_event *wl, cl_event *event)
{
	UNUSED(image);
	UNUSED(blocking_read);
	UNUSED(origin);
	UNUSED(region);
	UNUSED(row_pitch);
	UNUSED(slice_pitch);
	UNUSED(ptr);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	return no_image_cmd(q);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteImage(cl_command_queue q, cl_mem image,
						     cl_bool blocking_write, const size_t *origin,
						     const size_t *region, size_t input_row_pitch,
						     size_t input_slice_pitch, const void *ptr,
						     cl_uint nw, const cl_event *wl, cl_event *event)
{
	UNUSED(image);
	UNUSED(blocking_write);
	UNUSED(origin);
	UNUSED(region);
	UNUSED(input_row_pitch);
	UNUSED(input_slice_pitch);
	UNUSED(ptr);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	return no_image_cmd(q);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyImage(cl_command_queue q, cl_mem src_image,
						    cl_mem dst_image, const size_t *src_origin,
						    const size_t *dst_origin, const size_t *region,
						    cl_uint nw, const cl_event *wl, cl_event *event)
{
	UNUSED(src_image);
	UNUSED(dst_image);
	UNUSED(src_origin);
	UNUSED(dst_origin);
	UNUSED(region);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	return no_image_cmd(q);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueFillImage(cl_command_queue q, cl_mem image,
						    const void *fill_color, const size_t *origin,
						    const size_t *region, cl_uint nw,
						    const cl_event *wl, cl_event *event)
{
	UNUSED(image);
	UNUSED(fill_color);
	UNUSED(origin);
	UNUSED(region);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	return no_image_cmd(q);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyImageToBuffer(cl_command_queue q, cl_mem src_image,
							    cl_mem dst_buffer,
							    const size_t *src_origin,
							    const size_t *region, size_t dst_offset,
							    cl_uint nw, const cl_event *wl,
							    cl_event *event)
{
	UNUSED(src_image);
	UNUSED(dst_buffer);
	UNUSED(src_origin);
	UNUSED(region);
	UNUSED(dst_offset);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	return no_image_cmd(q);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyBufferToImage(cl_command_queue q, cl_mem src_buffer,
							    cl_mem dst_image, size_t src_offset,
							    const size_t *dst_origin,
							    const size_t *region, cl_uint nw,
							    const cl_event *wl, cl_event *event)
{
	UNUSED(src_buffer);
	UNUSED(dst_image);
	UNUSED(src_offset);
	UNUSED(dst_origin);
	UNUSED(region);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	return no_image_cmd(q);
}

CL_API_ENTRY void *CL_API_CALL clEnqueueMapImage(cl_command_queue q, cl_mem image,
						  cl_bool blocking_map, cl_map_flags map_flags,
						  const size_t *origin, const size_t *region,
						  size_t *image_row_pitch, size_t *image_slice_pitch,
						  cl_uint nw, const cl_event *wl, cl_event *event,
						  cl_int *errcode_ret)
{
	UNUSED(image);
	UNUSED(blocking_map);
	UNUSED(map_flags);
	UNUSED(origin);
	UNUSED(region);
	UNUSED(image_row_pitch);
	UNUSED(image_slice_pitch);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	icd_set_err(errcode_ret, no_image_cmd(q));
	return NULL;
}

/* SVM: CL_DEVICE_SVM_CAPABILITIES is 0. */
CL_API_ENTRY void *CL_API_CALL clSVMAlloc(cl_context context, cl_svm_mem_flags flags, size_t size,
					   cl_uint alignment)
{
	UNUSED(context);
	UNUSED(flags);
	UNUSED(size);
	UNUSED(alignment);
	return NULL;
}

CL_API_ENTRY void CL_API_CALL clSVMFree(cl_context context, void *svm_pointer)
{
	UNUSED(context);
	UNUSED(svm_pointer);
}

#define SVM_CMD_BODY return icd_valid_queue(q) ? CL_INVALID_OPERATION : CL_INVALID_COMMAND_QUEUE

CL_API_ENTRY cl_int CL_API_CALL clEnqueueSVMFree(cl_command_queue q, cl_uint n, void *ptrs[],
						  void(CL_CALLBACK *fn)(cl_command_queue, cl_uint,
									void *[], void *),
						  void *data, cl_uint nw, const cl_event *wl,
						  cl_event *event)
{
	UNUSED(n);
	UNUSED(ptrs);
	UNUSED(fn);
	UNUSED(data);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	SVM_CMD_BODY;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueSVMMemcpy(cl_command_queue q, cl_bool blocking,
						    void *dst, const void *src, size_t size,
						    cl_uint nw, const cl_event *wl, cl_event *event)
{
	UNUSED(blocking);
	UNUSED(dst);
	UNUSED(src);
	UNUSED(size);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	SVM_CMD_BODY;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueSVMMemFill(cl_command_queue q, void *svm_ptr,
						     const void *pattern, size_t pattern_size,
						     size_t size, cl_uint nw, const cl_event *wl,
						     cl_event *event)
{
	UNUSED(svm_ptr);
	UNUSED(pattern);
	UNUSED(pattern_size);
	UNUSED(size);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	SVM_CMD_BODY;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueSVMMap(cl_command_queue q, cl_bool blocking,
						 cl_map_flags flags, void *svm_ptr, size_t size,
						 cl_uint nw, const cl_event *wl, cl_event *event)
{
	UNUSED(blocking);
	UNUSED(flags);
	UNUSED(svm_ptr);
	UNUSED(size);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	SVM_CMD_BODY;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueSVMUnmap(cl_command_queue q, void *svm_ptr, cl_uint nw,
						   const cl_event *wl, cl_event *event)
{
	UNUSED(svm_ptr);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	SVM_CMD_BODY;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueSVMMigrateMem(cl_command_queue q, cl_uint n,
							const void **ptrs, const size_t *sizes,
							cl_mem_migration_flags flags, cl_uint nw,
							const cl_event *wl, cl_event *event)
{
	UNUSED(n);
	UNUSED(ptrs);
	UNUSED(sizes);
	UNUSED(flags);
	UNUSED(nw);
	UNUSED(wl);
	UNUSED(event);
	SVM_CMD_BODY;
}

CL_API_ENTRY cl_int CL_API_CALL clSetKernelArgSVMPointer(cl_kernel kernel, cl_uint arg_index,
							  const void *arg_value)
{
	UNUSED(arg_index);
	UNUSED(arg_value);
	return icd_valid_kernel(kernel) ? CL_INVALID_OPERATION : CL_INVALID_KERNEL;
}

CL_API_ENTRY cl_int CL_API_CALL clSetKernelExecInfo(cl_kernel kernel,
						     cl_kernel_exec_info param_name,
						     size_t param_value_size,
						     const void *param_value)
{
	UNUSED(param_name);
	UNUSED(param_value_size);
	UNUSED(param_value);
	return icd_valid_kernel(kernel) ? CL_INVALID_OPERATION : CL_INVALID_KERNEL;
}

CL_API_ENTRY cl_int CL_API_CALL clGetKernelSubGroupInfo(cl_kernel kernel, cl_device_id device,
							 cl_kernel_sub_group_info param_name,
							 size_t input_value_size,
							 const void *input_value,
							 size_t param_value_size, void *param_value,
							 size_t *param_value_size_ret)
{
	UNUSED(device);
	UNUSED(param_name);
	UNUSED(input_value_size);
	UNUSED(input_value);
	UNUSED(param_value_size);
	UNUSED(param_value);
	UNUSED(param_value_size_ret);
	/* CL_DEVICE_MAX_NUM_SUB_GROUPS is 0 */
	return icd_valid_kernel(kernel) ? CL_INVALID_OPERATION : CL_INVALID_KERNEL;
}

CL_API_ENTRY cl_int CL_API_CALL clSetDefaultDeviceCommandQueue(cl_context context,
								cl_device_id device,
								cl_command_queue q)
{
	UNUSED(device);
	UNUSED(q);
	return icd_valid_context(context) ? CL_INVALID_OPERATION : CL_INVALID_CONTEXT;
}

#define E(name) .name = name

cl_icd_dispatch icd_dispatch = {
	E(clGetPlatformIDs), E(clGetPlatformInfo), E(clGetDeviceIDs), E(clGetDeviceInfo),
	E(clCreateContext), E(clCreateContextFromType), E(clRetainContext), E(clReleaseContext),
	E(clGetContextInfo), E(clCreateCommandQueue), E(clRetainCommandQueue),
	E(clReleaseCommandQueue), E(clGetCommandQueueInfo), E(clSetCommandQueueProperty),
	E(clCreateBuffer), E(clCreateImage2D), E(clCreateImage3D), E(clRetainMemObject),
	E(clReleaseMemObject), E(clGetSupportedImageFormats), E(clGetMemObjectInfo),
	E(clGetImageInfo), E(clCreateSampler), E(clRetainSampler), E(clReleaseSampler),
	E(clGetSamplerInfo), E(clCreateProgramWithSource), E(clCreateProgramWithBinary),
	E(clRetainProgram), E(clReleaseProgram), E(clBuildProgram), E(clUnloadCompiler),
	E(clGetProgramInfo), E(clGetProgramBuildInfo), E(clCreateKernel),
	E(clCreateKernelsInProgram), E(clRetainKernel), E(clReleaseKernel), E(clSetKernelArg),
	E(clGetKernelInfo), E(clGetKernelWorkGroupInfo), E(clWaitForEvents), E(clGetEventInfo),
	E(clRetainEvent), E(clReleaseEvent), E(clGetEventProfilingInfo), E(clFlush), E(clFinish),
	E(clEnqueueReadBuffer), E(clEnqueueWriteBuffer), E(clEnqueueCopyBuffer),
	E(clEnqueueReadImage), E(clEnqueueWriteImage), E(clEnqueueCopyImage),
	E(clEnqueueCopyImageToBuffer), E(clEnqueueCopyBufferToImage), E(clEnqueueMapBuffer),
	E(clEnqueueMapImage), E(clEnqueueUnmapMemObject), E(clEnqueueNDRangeKernel),
	E(clEnqueueTask), E(clEnqueueNativeKernel), E(clEnqueueMarker), E(clEnqueueWaitForEvents),
	E(clEnqueueBarrier), E(clGetExtensionFunctionAddress), E(clSetEventCallback),
	E(clCreateSubBuffer), E(clSetMemObjectDestructorCallback), E(clCreateUserEvent),
	E(clSetUserEventStatus), E(clEnqueueReadBufferRect), E(clEnqueueWriteBufferRect),
	E(clEnqueueCopyBufferRect), E(clCreateSubDevices), E(clRetainDevice), E(clReleaseDevice),
	E(clCreateImage), E(clCreateProgramWithBuiltInKernels), E(clCompileProgram),
	E(clLinkProgram), E(clUnloadPlatformCompiler), E(clGetKernelArgInfo),
	E(clEnqueueFillBuffer), E(clEnqueueFillImage), E(clEnqueueMigrateMemObjects),
	E(clEnqueueMarkerWithWaitList), E(clEnqueueBarrierWithWaitList),
	E(clGetExtensionFunctionAddressForPlatform), E(clCreateCommandQueueWithProperties),
	E(clCreatePipe), E(clGetPipeInfo), E(clSVMAlloc), E(clSVMFree), E(clEnqueueSVMFree),
	E(clEnqueueSVMMemcpy), E(clEnqueueSVMMemFill), E(clEnqueueSVMMap), E(clEnqueueSVMUnmap),
	E(clCreateSamplerWithProperties), E(clSetKernelArgSVMPointer), E(clSetKernelExecInfo),
	E(clCloneKernel), E(clCreateProgramWithIL), E(clEnqueueSVMMigrateMem),
	E(clGetDeviceAndHostTimer), E(clGetHostTimer), E(clGetKernelSubGroupInfo),
	E(clSetDefaultDeviceCommandQueue), E(clSetProgramReleaseCallback),
	E(clSetProgramSpecializationConstant), E(clCreateBufferWithProperties),
	E(clCreateImageWithProperties), E(clSetContextDestructorCallback),
};
