// SPDX-License-Identifier: MIT
/*
 * queue.c - command queues, events and every clEnqueue* call.
 *
 * Each queue has a worker thread that starts its commands in order. A
 * dispatch is submitted to the queue's ring and left in flight: the ring
 * keeps later dispatches behind it on the device. A host command (read,
 * write, copy, fill, map, marker) first retires every dispatch in flight,
 * so that it sees the device's writes, and then runs as a memcpy in the
 * guest. An out-of-order queue runs in order, which OpenCL allows.
 *
 * Profiling uses one clock, the guest's CLOCK_MONOTONIC: QUEUED at the
 * enqueue call, SUBMIT and START when the worker starts the command, END
 * when it sees the command complete.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "icd.h"

bool icd_valid_queue(cl_command_queue q)
{
	return q && q->dispatch == &icd_dispatch && q->magic == ICD_MAGIC_QUEUE;
}

bool icd_valid_event(cl_event e)
{
	return e && e->dispatch == &icd_dispatch && e->magic == ICD_MAGIC_EVENT;
}

/* ---- events --------------------------------------------------------------- */

cl_event icd_event_new(cl_context ctx, cl_command_queue q, cl_command_type type)
{
	cl_event e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->dispatch = &icd_dispatch;
	e->magic = ICD_MAGIC_EVENT;
	e->refs = 1;
	e->ctx = ctx;
	e->queue = q;
	e->type = type;
	e->status = q ? CL_QUEUED : CL_SUBMITTED;
	/* A clock read is a system call in some guests (UML's is 25 us):
	 * only a profiled queue's events read it. */
	if (q && (q->props & CL_QUEUE_PROFILING_ENABLE))
		e->t_queued = icd_now_ns();
	pthread_mutex_lock(&icd_lock);
	icd_context_retain_locked(ctx);
	pthread_mutex_unlock(&icd_lock);
	return e;
}

void icd_event_release(cl_event e)
{
	struct icd_callback *cb;
	bool last;

	pthread_mutex_lock(&icd_lock);
	last = --e->refs == 0;
	pthread_mutex_unlock(&icd_lock);
	if (!last)
		return;
	while ((cb = e->callbacks)) {
		e->callbacks = cb->next;
		free(cb);
	}
	icd_context_release(e->ctx);
	e->magic = ICD_MAGIC_DEAD;
	free(e);
}

void icd_event_set_status(cl_event e, cl_int status)
{
	struct icd_callback *run = NULL, **pp, *cb;
	cl_ulong now = e->queue && (e->queue->props & CL_QUEUE_PROFILING_ENABLE) ? icd_now_ns() : 0;

	pthread_mutex_lock(&icd_lock);
	if (e->status <= CL_COMPLETE) {
		pthread_mutex_unlock(&icd_lock);
		return;
	}
	if (status < CL_COMPLETE || status < e->status) {
		if (status <= CL_SUBMITTED && !e->t_submit)
			e->t_submit = now;
		if (status <= CL_RUNNING && !e->t_start)
			e->t_start = now;
		if (status <= CL_COMPLETE)
			e->t_end = now;
		e->status = status;
	}
	/* the callbacks whose status is reached run once, outside the lock */
	for (pp = &e->callbacks; (cb = *pp);) {
		if (e->status <= cb->type) {
			*pp = cb->next;
			cb->next = run;
			run = cb;
		} else {
			pp = &cb->next;
		}
	}
	if (run || e->status <= CL_COMPLETE)
		e->refs++;
	/* Every waiter waits for an end: complete, or an error. */
	if (e->status <= CL_COMPLETE)
		pthread_cond_broadcast(&icd_cond);
	status = e->status;
	pthread_mutex_unlock(&icd_lock);
	while ((cb = run)) {
		run = cb->next;
		cb->fn(e, status < 0 ? status : cb->type, cb->data);
		free(cb);
	}
	if (status <= CL_COMPLETE)
		icd_event_release(e);
}

cl_int icd_check_wait_list(cl_context ctx, cl_uint n, const cl_event *list)
{
	if (!n != !list)
		return CL_INVALID_EVENT_WAIT_LIST;
	for (cl_uint i = 0; i < n; i++) {
		if (!icd_valid_event(list[i]))
			return CL_INVALID_EVENT_WAIT_LIST;
		if (ctx && list[i]->ctx != ctx)
			return CL_INVALID_CONTEXT;
	}
	return CL_SUCCESS;
}

CL_API_ENTRY cl_event CL_API_CALL clCreateUserEvent(cl_context context, cl_int *errcode_ret)
{
	cl_event e;

	if (!icd_valid_context(context)) {
		icd_set_err(errcode_ret, CL_INVALID_CONTEXT);
		return NULL;
	}
	e = icd_event_new(context, NULL, CL_COMMAND_USER);
	icd_set_err(errcode_ret, e ? CL_SUCCESS : CL_OUT_OF_HOST_MEMORY);
	return e;
}

CL_API_ENTRY cl_int CL_API_CALL clSetUserEventStatus(cl_event event, cl_int execution_status)
{
	if (!icd_valid_event(event) || event->queue)
		return CL_INVALID_EVENT;
	if (execution_status > CL_COMPLETE)
		return CL_INVALID_VALUE;
	pthread_mutex_lock(&icd_lock);
	if (event->status <= CL_COMPLETE) {
		pthread_mutex_unlock(&icd_lock);
		return CL_INVALID_OPERATION;
	}
	event->refs++;
	pthread_mutex_unlock(&icd_lock);
	icd_event_set_status(event, execution_status);
	icd_event_release(event);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clWaitForEvents(cl_uint num_events, const cl_event *event_list)
{
	cl_int err = CL_SUCCESS;

	if (!num_events || !event_list)
		return CL_INVALID_VALUE;
	for (cl_uint i = 0; i < num_events; i++) {
		if (!icd_valid_event(event_list[i]))
			return CL_INVALID_EVENT;
		if (event_list[i]->ctx != event_list[0]->ctx)
			return CL_INVALID_CONTEXT;
	}
	pthread_mutex_lock(&icd_lock);
	for (cl_uint i = 0; i < num_events; i++) {
		while (event_list[i]->status > CL_COMPLETE)
			pthread_cond_wait(&icd_cond, &icd_lock);
		if (event_list[i]->status < 0)
			err = CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST;
	}
	pthread_mutex_unlock(&icd_lock);
	return err;
}

CL_API_ENTRY cl_int CL_API_CALL clGetEventInfo(cl_event event, cl_event_info param_name,
						size_t param_value_size, void *param_value,
						size_t *param_value_size_ret)
{
	if (!icd_valid_event(event))
		return CL_INVALID_EVENT;
	switch (param_name) {
	case CL_EVENT_COMMAND_QUEUE:
		ICD_INFO_VAL(cl_command_queue, event->queue);
	case CL_EVENT_CONTEXT:
		ICD_INFO_VAL(cl_context, event->ctx);
	case CL_EVENT_COMMAND_TYPE:
		ICD_INFO_VAL(cl_command_type, event->type);
	case CL_EVENT_COMMAND_EXECUTION_STATUS: {
		cl_int s;

		pthread_mutex_lock(&icd_lock);
		s = event->status;
		pthread_mutex_unlock(&icd_lock);
		ICD_INFO_VAL(cl_int, s);
	}
	case CL_EVENT_REFERENCE_COUNT:
		ICD_INFO_VAL(cl_uint, event->refs);
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clGetEventProfilingInfo(cl_event event,
							 cl_profiling_info param_name,
							 size_t param_value_size, void *param_value,
							 size_t *param_value_size_ret)
{
	cl_ulong v;

	if (!icd_valid_event(event))
		return CL_INVALID_EVENT;
	pthread_mutex_lock(&icd_lock);
	if (!event->queue || !(event->queue->props & CL_QUEUE_PROFILING_ENABLE) ||
	    event->status != CL_COMPLETE) {
		pthread_mutex_unlock(&icd_lock);
		return CL_PROFILING_INFO_NOT_AVAILABLE;
	}
	switch (param_name) {
	case CL_PROFILING_COMMAND_QUEUED:
		v = event->t_queued;
		break;
	case CL_PROFILING_COMMAND_SUBMIT:
		v = event->t_submit;
		break;
	case CL_PROFILING_COMMAND_START:
		v = event->t_start;
		break;
	case CL_PROFILING_COMMAND_END:
	case CL_PROFILING_COMMAND_COMPLETE:
		v = event->t_end;
		break;
	default:
		pthread_mutex_unlock(&icd_lock);
		return CL_INVALID_VALUE;
	}
	pthread_mutex_unlock(&icd_lock);
	return icd_info(param_value_size, param_value, param_value_size_ret, &v, sizeof(v));
}

CL_API_ENTRY cl_int CL_API_CALL clRetainEvent(cl_event event)
{
	if (!icd_valid_event(event))
		return CL_INVALID_EVENT;
	icd_ref_get(&event->refs);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseEvent(cl_event event)
{
	if (!icd_valid_event(event))
		return CL_INVALID_EVENT;
	icd_event_release(event);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clSetEventCallback(cl_event event, cl_int type,
						    void(CL_CALLBACK *pfn_notify)(cl_event, cl_int,
										  void *),
						    void *user_data)
{
	struct icd_callback *cb;

	if (!icd_valid_event(event))
		return CL_INVALID_EVENT;
	if (!pfn_notify ||
	    (type != CL_SUBMITTED && type != CL_RUNNING && type != CL_COMPLETE))
		return CL_INVALID_VALUE;
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return CL_OUT_OF_HOST_MEMORY;
	cb->type = type;
	cb->fn = pfn_notify;
	cb->data = user_data;
	pthread_mutex_lock(&icd_lock);
	if (event->status <= type) {
		cl_int s = event->status;

		pthread_mutex_unlock(&icd_lock);
		pfn_notify(event, s < 0 ? s : type, user_data);
		free(cb);
		return CL_SUCCESS;
	}
	cb->next = event->callbacks;
	event->callbacks = cb;
	pthread_mutex_unlock(&icd_lock);
	return CL_SUCCESS;
}

/* ---- commands ------------------------------------------------------------- */

void icd_command_free(struct icd_command *cmd)
{
	for (cl_uint i = 0; i < cmd->num_waits; i++)
		icd_event_release(cmd->waits[i]);
	free(cmd->waits);
	for (unsigned int i = 0; i < cmd->num_mems; i++)
		icd_mem_release(cmd->mems[i]);
	free(cmd->mems);
	if (cmd->kernel)
		icd_kernel_release(cmd->kernel);
	free(cmd->vargs);
	free(cmd->values);
	free(cmd->pattern);
	vgpu_fence_destroy(cmd->fence);
	if (cmd->ev)
		icd_event_release(cmd->ev);
	free(cmd);
}

static cl_int status_of_errno(int ret)
{
	/* a lost device context, a timeout, a crashed kernel: the device's
	 * resources for it are gone */
	return ret == -ENOMEM ? CL_OUT_OF_HOST_MEMORY : CL_OUT_OF_RESOURCES;
}

/* The command's event ends, then what it held is let go, then clFinish may
 * return: after it, every buffer of a finished command that the
 * application released is released (its pages idle, pooled or gone). */
static void complete(cl_command_queue q, struct icd_command *cmd, cl_int status)
{
	icd_event_set_status(cmd->ev, status);
	icd_command_free(cmd);
	pthread_mutex_lock(&icd_lock);
	q->pending--;
	pthread_cond_broadcast(&icd_cond);
	pthread_mutex_unlock(&icd_lock);
}

/* Wait for the oldest dispatch in flight and complete it; icd_lock not held. */
static void retire_oldest(cl_command_queue q)
{
	struct icd_command *cmd;
	int ret;

	pthread_mutex_lock(&icd_lock);
	cmd = q->inflight_head;
	q->inflight_head = cmd->next;
	if (!q->inflight_head)
		q->inflight_tail = NULL;
	pthread_mutex_unlock(&icd_lock);
	ret = vgpu_fence_wait(cmd->fence, VGPU_TIMEOUT_INFINITE, NULL);
	/* past the time budget or crashed: the device context is gone */
	if (ret == -ENOTRECOVERABLE || ret == -ETIME)
		q->ctx->lost = true;
	complete(q, cmd, ret ? status_of_errno(ret) : CL_COMPLETE);
}

static void run_host(struct icd_command *cmd)
{
	switch (cmd->kind) {
	case ICD_CMD_READ:
	case ICD_CMD_WRITE:
	case ICD_CMD_COPY:
		memmove(cmd->dst, cmd->src, cmd->len);
		break;
	case ICD_CMD_FILL:
		for (size_t off = 0; off < cmd->len; off += cmd->pattern_len)
			memcpy(cmd->dst + off, cmd->pattern, cmd->pattern_len);
		break;
	case ICD_CMD_RECT:
		for (size_t z = 0; z < cmd->slices; z++)
			for (size_t y = 0; y < cmd->rows; y++)
				memmove(cmd->dst + z * cmd->dst_slice + y * cmd->dst_row,
					cmd->src + z * cmd->src_slice + y * cmd->src_row, cmd->len);
		break;
	default:
		break;
	}
}

static cl_int submit_dispatch(cl_command_queue q, struct icd_command *cmd)
{
	struct vgpu_submit_info si = { .struct_size = sizeof(si), .ring = q->ring };
	int ret;

	vgpu_batch_reset(q->batch);
	ret = vgpu_batch_dispatch(q->batch, cmd->kernel->vk, &cmd->range, cmd->vargs,
				  cmd->num_vargs);
	if (!ret)
		ret = vgpu_batch_submit_async(q->batch, &si, &cmd->fence);
	vgpu_batch_reset(q->batch);
	/* past the time budget or crashed: the device context is gone */
	if (ret == -ENOTRECOVERABLE || ret == -ETIME)
		q->ctx->lost = true;
	return ret ? status_of_errno(ret) : CL_SUCCESS;
}

/* Whether cmd may start: each event it waits for is complete, or is a
 * dispatch of this queue's ring already submitted (the ring orders it) while
 * cmd is a dispatch too. *failed: one of them failed. */
static bool deps_ready(cl_command_queue q, struct icd_command *cmd, bool *failed)
{
	*failed = false;
	for (cl_uint i = 0; i < cmd->num_waits; i++) {
		cl_event e = cmd->waits[i];

		if (e->status < 0)
			*failed = true;
		else if (e->status == CL_COMPLETE)
			continue;
		else if (!(cmd->kind == ICD_CMD_DISPATCH && e->queue == q && e->submitted_to_ring))
			return false;
	}
	return true;
}

static void *worker(void *arg)
{
	cl_command_queue q = arg;

	pthread_mutex_lock(&icd_lock);
	for (;;) {
		struct icd_command *cmd = q->head;
		bool failed;

		if (!cmd) {
			if (q->inflight_head) {
				pthread_mutex_unlock(&icd_lock);
				retire_oldest(q);
				pthread_mutex_lock(&icd_lock);
				continue;
			}
			if (q->stop)
				break;
			pthread_cond_wait(&q->work_cv, &icd_lock);
			continue;
		}
		if (!deps_ready(q, cmd, &failed)) {
			if (q->inflight_head) {
				pthread_mutex_unlock(&icd_lock);
				retire_oldest(q);
				pthread_mutex_lock(&icd_lock);
			} else {
				pthread_cond_wait(&icd_cond, &icd_lock);
			}
			continue;
		}
		if (cmd->kind != ICD_CMD_DISPATCH && q->inflight_head && !failed) {
			pthread_mutex_unlock(&icd_lock);
			retire_oldest(q);
			pthread_mutex_lock(&icd_lock);
			continue;
		}
		q->head = cmd->next;
		if (!q->head)
			q->tail = NULL;
		cmd->next = NULL;
		pthread_mutex_unlock(&icd_lock);

		if (failed) {
			complete(q, cmd, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
		} else if (cmd->kind == ICD_CMD_DISPATCH) {
			cl_int err;

			icd_event_set_status(cmd->ev, CL_RUNNING);
			err = submit_dispatch(q, cmd);
			if (err) {
				complete(q, cmd, err);
			} else {
				pthread_mutex_lock(&icd_lock);
				cmd->ev->submitted_to_ring = true;
				if (q->inflight_tail)
					q->inflight_tail->next = cmd;
				else
					q->inflight_head = cmd;
				q->inflight_tail = cmd;
				pthread_mutex_unlock(&icd_lock);
			}
		} else {
			icd_event_set_status(cmd->ev, CL_RUNNING);
			run_host(cmd);
			complete(q, cmd, CL_COMPLETE);
		}
		pthread_mutex_lock(&icd_lock);
	}
	pthread_mutex_unlock(&icd_lock);
	return NULL;
}

cl_int icd_enqueue(cl_command_queue q, struct icd_command *cmd, cl_command_type type,
		   cl_uint num_waits, const cl_event *waits, cl_event *event_out, bool blocking)
{
	cl_event ev;
	cl_int status = CL_COMPLETE;

	ev = icd_event_new(q->ctx, q, type);
	if (!ev) {
		icd_command_free(cmd);
		return CL_OUT_OF_HOST_MEMORY;
	}
	cmd->ev = ev;
	if (num_waits) {
		cmd->waits = malloc(num_waits * sizeof(*cmd->waits));
		if (!cmd->waits) {
			icd_command_free(cmd);
			return CL_OUT_OF_HOST_MEMORY;
		}
	}
	pthread_mutex_lock(&icd_lock);
	for (cl_uint i = 0; i < num_waits; i++) {
		cmd->waits[i] = waits[i];
		waits[i]->refs++;
	}
	cmd->num_waits = num_waits;
	/* the first reference is the command's; then the caller's, and this
	 * call's while it blocks */
	ev->refs += (event_out ? 1 : 0) + (blocking ? 1 : 0);
	q->pending++;
	if (q->tail)
		q->tail->next = cmd;
	else
		q->head = cmd;
	q->tail = cmd;
	pthread_cond_signal(&q->work_cv);
	if (blocking) {
		while (ev->status > CL_COMPLETE)
			pthread_cond_wait(&icd_cond, &icd_lock);
		status = ev->status;
	}
	pthread_mutex_unlock(&icd_lock);
	if (blocking)
		icd_event_release(ev);
	if (event_out)
		*event_out = ev;
	return status < 0 ? CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST : CL_SUCCESS;
}

/* ---- queues -------------------------------------------------------------- */

static cl_command_queue queue_create(cl_context context, cl_device_id device,
				     cl_command_queue_properties props, cl_int *errcode_ret)
{
	cl_command_queue q;
	struct vgpu_info info = { .struct_size = sizeof(info) };

	if (!icd_valid_context(context)) {
		icd_set_err(errcode_ret, CL_INVALID_CONTEXT);
		return NULL;
	}
	if (!icd_valid_device(device)) {
		icd_set_err(errcode_ret, CL_INVALID_DEVICE);
		return NULL;
	}
	if (props & ~(cl_command_queue_properties)(CL_QUEUE_PROFILING_ENABLE |
						   CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)) {
		icd_set_err(errcode_ret, CL_INVALID_QUEUE_PROPERTIES);
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q || vgpu_batch_create(context->vdev, &q->batch)) {
		free(q);
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	vgpu_batch_set_timeout(q->batch, VGPU_TIMEOUT_INFINITE);
	q->dispatch = &icd_dispatch;
	q->magic = ICD_MAGIC_QUEUE;
	q->refs = 1;
	q->ctx = context;
	q->props = props;
	pthread_cond_init(&q->work_cv, NULL);
	vgpu_get_info(context->vdev, &info);
	pthread_mutex_lock(&icd_lock);
	q->ring = info.num_rings ? context->next_ring++ % info.num_rings : 0;
	icd_context_retain_locked(context);
	pthread_mutex_unlock(&icd_lock);
	if (pthread_create(&q->worker, NULL, worker, q)) {
		pthread_cond_destroy(&q->work_cv);
		vgpu_batch_destroy(q->batch);
		icd_context_release(context);
		free(q);
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	icd_set_err(errcode_ret, CL_SUCCESS);
	return q;
}

CL_API_ENTRY cl_command_queue CL_API_CALL clCreateCommandQueue(cl_context context,
								cl_device_id device,
								cl_command_queue_properties properties,
								cl_int *errcode_ret)
{
	return queue_create(context, device, properties, errcode_ret);
}

CL_API_ENTRY cl_command_queue CL_API_CALL clCreateCommandQueueWithProperties(
	cl_context context, cl_device_id device, const cl_queue_properties *properties,
	cl_int *errcode_ret)
{
	cl_command_queue_properties props = 0;

	for (size_t i = 0; properties && properties[i]; i += 2) {
		if (properties[i] == CL_QUEUE_PROPERTIES) {
			props = properties[i + 1];
			if (props & (CL_QUEUE_ON_DEVICE | CL_QUEUE_ON_DEVICE_DEFAULT)) {
				icd_set_err(errcode_ret, CL_INVALID_QUEUE_PROPERTIES);
				return NULL;
			}
		} else {
			icd_set_err(errcode_ret, CL_INVALID_VALUE);
			return NULL;
		}
	}
	return queue_create(context, device, props, errcode_ret);
}

CL_API_ENTRY cl_int CL_API_CALL clFinish(cl_command_queue command_queue)
{
	if (!icd_valid_queue(command_queue))
		return CL_INVALID_COMMAND_QUEUE;
	pthread_mutex_lock(&icd_lock);
	while (command_queue->pending)
		pthread_cond_wait(&icd_cond, &icd_lock);
	pthread_mutex_unlock(&icd_lock);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clFlush(cl_command_queue command_queue)
{
	/* the worker starts every command as soon as it may */
	return icd_valid_queue(command_queue) ? CL_SUCCESS : CL_INVALID_COMMAND_QUEUE;
}

CL_API_ENTRY cl_int CL_API_CALL clRetainCommandQueue(cl_command_queue command_queue)
{
	if (!icd_valid_queue(command_queue))
		return CL_INVALID_COMMAND_QUEUE;
	icd_ref_get(&command_queue->refs);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseCommandQueue(cl_command_queue q)
{
	bool last;

	if (!icd_valid_queue(q))
		return CL_INVALID_COMMAND_QUEUE;
	pthread_mutex_lock(&icd_lock);
	last = --q->refs == 0;
	if (last) {
		/* an implicit flush; the commands run to their end */
		q->stop = true;
		pthread_cond_signal(&q->work_cv);
	}
	pthread_mutex_unlock(&icd_lock);
	if (!last)
		return CL_SUCCESS;
	pthread_mutex_lock(&icd_lock);
	while (q->pending)
		pthread_cond_wait(&icd_cond, &icd_lock);
	pthread_mutex_unlock(&icd_lock);
	pthread_join(q->worker, NULL);
	pthread_cond_destroy(&q->work_cv);
	vgpu_batch_destroy(q->batch);
	icd_context_release(q->ctx);
	q->magic = ICD_MAGIC_DEAD;
	free(q);
	return CL_SUCCESS;
}

CL_API_ENTRY cl_int CL_API_CALL clGetCommandQueueInfo(cl_command_queue q,
						       cl_command_queue_info param_name,
						       size_t param_value_size, void *param_value,
						       size_t *param_value_size_ret)
{
	if (!icd_valid_queue(q))
		return CL_INVALID_COMMAND_QUEUE;
	switch (param_name) {
	case CL_QUEUE_CONTEXT:
		ICD_INFO_VAL(cl_context, q->ctx);
	case CL_QUEUE_DEVICE:
		ICD_INFO_VAL(cl_device_id, &icd_device);
	case CL_QUEUE_REFERENCE_COUNT:
		ICD_INFO_VAL(cl_uint, q->refs);
	case CL_QUEUE_PROPERTIES:
		ICD_INFO_VAL(cl_command_queue_properties, q->props);
	case CL_QUEUE_SIZE:
		return CL_INVALID_COMMAND_QUEUE;
	case CL_QUEUE_DEVICE_DEFAULT:
		ICD_INFO_VAL(cl_command_queue, NULL);
	case CL_QUEUE_PROPERTIES_ARRAY:
		return icd_info(param_value_size, param_value, param_value_size_ret, NULL, 0);
	default:
		return CL_INVALID_VALUE;
	}
}

CL_API_ENTRY cl_int CL_API_CALL clSetCommandQueueProperty(cl_command_queue q,
							   cl_command_queue_properties properties,
							   cl_bool enable,
							   cl_command_queue_properties *old_properties)
{
	(void)properties;
	(void)enable;
	(void)old_properties;
	return icd_valid_queue(q) ? CL_INVALID_OPERATION : CL_INVALID_COMMAND_QUEUE;
}

/* ---- enqueue calls ------------------------------------------------------- */

static struct icd_command *cmd_new(enum icd_cmd_kind kind)
{
	struct icd_command *c = calloc(1, sizeof(*c));

	if (c)
		c->kind = kind;
	return c;
}

static cl_int cmd_hold(struct icd_command *c, cl_mem a, cl_mem b)
{
	c->mems = calloc(2, sizeof(cl_mem));
	if (!c->mems)
		return CL_OUT_OF_HOST_MEMORY;
	pthread_mutex_lock(&icd_lock);
	if (a) {
		icd_mem_retain_locked(a);
		c->mems[c->num_mems++] = a;
	}
	if (b) {
		icd_mem_retain_locked(b);
		c->mems[c->num_mems++] = b;
	}
	pthread_mutex_unlock(&icd_lock);
	return CL_SUCCESS;
}

static cl_int check_common(cl_command_queue q, cl_mem m, cl_uint nw, const cl_event *wl)
{
	if (!icd_valid_queue(q))
		return CL_INVALID_COMMAND_QUEUE;
	if (m && !icd_valid_mem(m))
		return CL_INVALID_MEM_OBJECT;
	if (m && m->ctx != q->ctx)
		return CL_INVALID_CONTEXT;
	return icd_check_wait_list(q->ctx, nw, wl);
}

static bool out_of(size_t off, size_t len, size_t size)
{
	return off > size || len > size - off;
}

static cl_int host_xfer(cl_command_queue q, enum icd_cmd_kind kind, cl_command_type type,
			char *dst, const char *src, size_t len, cl_mem a, cl_mem b, cl_bool blocking,
			cl_uint nw, const cl_event *wl, cl_event *ev)
{
	struct icd_command *c = cmd_new(kind);

	if (!c || cmd_hold(c, a, b)) {
		free(c);
		return CL_OUT_OF_HOST_MEMORY;
	}
	c->dst = dst;
	c->src = src;
	c->len = len;
	return icd_enqueue(q, c, type, nw, wl, ev, blocking);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue q, cl_mem buffer,
						     cl_bool blocking_read, size_t offset,
						     size_t size, void *ptr, cl_uint nw,
						     const cl_event *wl, cl_event *event)
{
	cl_int err = check_common(q, buffer, nw, wl);

	if (err)
		return err;
	if (!ptr || !size || out_of(offset, size, buffer->size))
		return CL_INVALID_VALUE;
	if (buffer->flags & (CL_MEM_HOST_WRITE_ONLY | CL_MEM_HOST_NO_ACCESS))
		return CL_INVALID_OPERATION;
	return host_xfer(q, ICD_CMD_READ, CL_COMMAND_READ_BUFFER, ptr, buffer->data + offset, size,
			 buffer, NULL, blocking_read, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue q, cl_mem buffer,
						      cl_bool blocking_write, size_t offset,
						      size_t size, const void *ptr, cl_uint nw,
						      const cl_event *wl, cl_event *event)
{
	cl_int err = check_common(q, buffer, nw, wl);

	if (err)
		return err;
	if (!ptr || !size || out_of(offset, size, buffer->size))
		return CL_INVALID_VALUE;
	if (buffer->flags & (CL_MEM_HOST_READ_ONLY | CL_MEM_HOST_NO_ACCESS))
		return CL_INVALID_OPERATION;
	return host_xfer(q, ICD_CMD_WRITE, CL_COMMAND_WRITE_BUFFER, buffer->data + offset, ptr,
			 size, buffer, NULL, blocking_write, nw, wl, event);
}

static bool overlap(cl_mem a, size_t ao, cl_mem b, size_t bo, size_t len)
{
	const char *x = a->data + ao, *y = b->data + bo;

	return x < y + len && y < x + len;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyBuffer(cl_command_queue q, cl_mem src, cl_mem dst,
						     size_t src_offset, size_t dst_offset,
						     size_t size, cl_uint nw, const cl_event *wl,
						     cl_event *event)
{
	cl_int err = check_common(q, src, nw, wl);

	if (err)
		return err;
	err = check_common(q, dst, 0, NULL);
	if (err)
		return err;
	if (!size || out_of(src_offset, size, src->size) || out_of(dst_offset, size, dst->size))
		return CL_INVALID_VALUE;
	if (overlap(src, src_offset, dst, dst_offset, size))
		return CL_MEM_COPY_OVERLAP;
	return host_xfer(q, ICD_CMD_COPY, CL_COMMAND_COPY_BUFFER, dst->data + dst_offset,
			 src->data + src_offset, size, src, dst, CL_FALSE, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueFillBuffer(cl_command_queue q, cl_mem buffer,
						     const void *pattern, size_t pattern_size,
						     size_t offset, size_t size, cl_uint nw,
						     const cl_event *wl, cl_event *event)
{
	struct icd_command *c;
	cl_int err = check_common(q, buffer, nw, wl);

	if (err)
		return err;
	if (!pattern || !pattern_size || pattern_size > 128 ||
	    (pattern_size & (pattern_size - 1)) || offset % pattern_size || size % pattern_size ||
	    out_of(offset, size, buffer->size))
		return CL_INVALID_VALUE;
	c = cmd_new(ICD_CMD_FILL);
	if (!c || cmd_hold(c, buffer, NULL) || !(c->pattern = malloc(pattern_size))) {
		if (c)
			icd_command_free(c);
		return CL_OUT_OF_HOST_MEMORY;
	}
	memcpy(c->pattern, pattern, pattern_size);
	c->pattern_len = pattern_size;
	c->dst = buffer->data + offset;
	c->len = size;
	return icd_enqueue(q, c, CL_COMMAND_FILL_BUFFER, nw, wl, event, false);
}

/* Rect transfers: origin and region in bytes (x), rows (y), slices (z). */
static cl_int rect_args(const size_t *origin, const size_t *region, size_t *row, size_t *slice,
			size_t size, size_t *off)
{
	if (!origin || !region || !region[0] || !region[1] || !region[2])
		return CL_INVALID_VALUE;
	if (!*row)
		*row = region[0];
	if (!*slice)
		*slice = region[1] * *row;
	if (*row < region[0] || *slice < region[1] * *row || *slice % *row)
		return CL_INVALID_VALUE;
	*off = origin[2] * *slice + origin[1] * *row + origin[0];
	/* the last byte touched must lie inside */
	if ((region[2] - 1) > (SIZE_MAX / 2) / *slice || (region[1] - 1) > (SIZE_MAX / 2) / *row)
		return CL_INVALID_VALUE;
	if (out_of(*off, (region[2] - 1) * *slice + (region[1] - 1) * *row + region[0], size))
		return CL_INVALID_VALUE;
	return CL_SUCCESS;
}

static cl_int rect_cmd(cl_command_queue q, cl_command_type type, char *dst, size_t drow,
		       size_t dslice, const char *src, size_t srow, size_t sslice,
		       const size_t *region, cl_mem a, cl_mem b, cl_bool blocking, cl_uint nw,
		       const cl_event *wl, cl_event *event)
{
	struct icd_command *c = cmd_new(ICD_CMD_RECT);

	if (!c || cmd_hold(c, a, b)) {
		free(c);
		return CL_OUT_OF_HOST_MEMORY;
	}
	c->dst = dst;
	c->src = src;
	c->len = region[0];
	c->rows = region[1];
	c->slices = region[2];
	c->dst_row = drow;
	c->dst_slice = dslice;
	c->src_row = srow;
	c->src_slice = sslice;
	return icd_enqueue(q, c, type, nw, wl, event, blocking);
}

/* Read (to_host) or write a rect between a buffer and host memory. */
static cl_int host_rect(cl_command_queue q, cl_command_type type, bool to_host, cl_mem buffer,
			cl_bool blocking, const size_t *buffer_origin, const size_t *host_origin,
			const size_t *region, size_t brow, size_t bslice, size_t hrow, size_t hslice,
			char *ptr, cl_uint nw, const cl_event *wl, cl_event *event)
{
	size_t boff, hoff;
	cl_int err = check_common(q, buffer, nw, wl);

	if (err)
		return err;
	if (!ptr)
		return CL_INVALID_VALUE;
	err = rect_args(buffer_origin, region, &brow, &bslice, buffer->size, &boff);
	if (!err)
		err = rect_args(host_origin, region, &hrow, &hslice, SIZE_MAX / 2, &hoff);
	if (err)
		return err;
	if (to_host)
		return rect_cmd(q, type, ptr + hoff, hrow, hslice, buffer->data + boff, brow, bslice,
				region, buffer, NULL, blocking, nw, wl, event);
	return rect_cmd(q, type, buffer->data + boff, brow, bslice, ptr + hoff, hrow, hslice,
			region, buffer, NULL, blocking, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBufferRect(
	cl_command_queue q, cl_mem buffer, cl_bool blocking_read, const size_t *buffer_origin,
	const size_t *host_origin, const size_t *region, size_t buffer_row_pitch,
	size_t buffer_slice_pitch, size_t host_row_pitch, size_t host_slice_pitch, void *ptr,
	cl_uint nw, const cl_event *wl, cl_event *event)
{
	return host_rect(q, CL_COMMAND_READ_BUFFER_RECT, true, buffer, blocking_read,
			 buffer_origin, host_origin, region, buffer_row_pitch, buffer_slice_pitch,
			 host_row_pitch, host_slice_pitch, ptr, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBufferRect(
	cl_command_queue q, cl_mem buffer, cl_bool blocking_write, const size_t *buffer_origin,
	const size_t *host_origin, const size_t *region, size_t buffer_row_pitch,
	size_t buffer_slice_pitch, size_t host_row_pitch, size_t host_slice_pitch,
	const void *ptr, cl_uint nw, const cl_event *wl, cl_event *event)
{
	/* the host memory is only read: rect_cmd's src */
	return host_rect(q, CL_COMMAND_WRITE_BUFFER_RECT, false, buffer, blocking_write,
			 buffer_origin, host_origin, region, buffer_row_pitch, buffer_slice_pitch,
			 host_row_pitch, host_slice_pitch, (char *)(uintptr_t)ptr, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyBufferRect(
	cl_command_queue q, cl_mem src, cl_mem dst, const size_t *src_origin,
	const size_t *dst_origin, const size_t *region, size_t src_row_pitch,
	size_t src_slice_pitch, size_t dst_row_pitch, size_t dst_slice_pitch, cl_uint nw,
	const cl_event *wl, cl_event *event)
{
	size_t soff, doff;
	cl_int err = check_common(q, src, nw, wl);

	if (!err)
		err = check_common(q, dst, 0, NULL);
	if (err)
		return err;
	err = rect_args(src_origin, region, &src_row_pitch, &src_slice_pitch, src->size, &soff);
	if (!err)
		err = rect_args(dst_origin, region, &dst_row_pitch, &dst_slice_pitch, dst->size,
				&doff);
	if (err)
		return err;
	return rect_cmd(q, CL_COMMAND_COPY_BUFFER_RECT, dst->data + doff, dst_row_pitch,
			dst_slice_pitch, src->data + soff, src_row_pitch, src_slice_pitch, region,
			src, dst, CL_FALSE, nw, wl, event);
}

/* Mapping copies nothing: the buffer's bytes are guest memory already (the
 * application's own with CL_MEM_USE_HOST_PTR). */
CL_API_ENTRY void *CL_API_CALL clEnqueueMapBuffer(cl_command_queue q, cl_mem buffer,
						   cl_bool blocking_map, cl_map_flags map_flags,
						   size_t offset, size_t size, cl_uint nw,
						   const cl_event *wl, cl_event *event,
						   cl_int *errcode_ret)
{
	struct icd_command *c;
	cl_int err = check_common(q, buffer, nw, wl);

	if (!err && (!size || out_of(offset, size, buffer->size) ||
		     (map_flags & ~(cl_map_flags)(CL_MAP_READ | CL_MAP_WRITE |
						  CL_MAP_WRITE_INVALIDATE_REGION)) ||
		     ((map_flags & CL_MAP_WRITE_INVALIDATE_REGION) &&
		      (map_flags & (CL_MAP_READ | CL_MAP_WRITE)))))
		err = CL_INVALID_VALUE;
	if (!err && (((map_flags & CL_MAP_READ) &&
		      (buffer->flags & (CL_MEM_HOST_WRITE_ONLY | CL_MEM_HOST_NO_ACCESS))) ||
		     ((map_flags & (CL_MAP_WRITE | CL_MAP_WRITE_INVALIDATE_REGION)) &&
		      (buffer->flags & (CL_MEM_HOST_READ_ONLY | CL_MEM_HOST_NO_ACCESS)))))
		err = CL_INVALID_OPERATION;
	if (err) {
		icd_set_err(errcode_ret, err);
		return NULL;
	}
	c = cmd_new(ICD_CMD_MAP);
	if (!c || cmd_hold(c, buffer, NULL)) {
		free(c);
		icd_set_err(errcode_ret, CL_OUT_OF_HOST_MEMORY);
		return NULL;
	}
	err = icd_enqueue(q, c, CL_COMMAND_MAP_BUFFER, nw, wl, event, blocking_map);
	if (err && err != CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) {
		icd_set_err(errcode_ret, err);
		return NULL;
	}
	pthread_mutex_lock(&icd_lock);
	buffer->maps++;
	pthread_mutex_unlock(&icd_lock);
	icd_set_err(errcode_ret, err);
	return buffer->data + offset;
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueUnmapMemObject(cl_command_queue q, cl_mem memobj,
							 void *mapped_ptr, cl_uint nw,
							 const cl_event *wl, cl_event *event)
{
	struct icd_command *c;
	cl_int err = check_common(q, memobj, nw, wl);

	if (err)
		return err;
	if ((char *)mapped_ptr < memobj->data || (char *)mapped_ptr >= memobj->data + memobj->size)
		return CL_INVALID_VALUE;
	pthread_mutex_lock(&icd_lock);
	if (!memobj->maps) {
		pthread_mutex_unlock(&icd_lock);
		return CL_INVALID_VALUE;
	}
	memobj->maps--;
	pthread_mutex_unlock(&icd_lock);
	c = cmd_new(ICD_CMD_UNMAP);
	if (!c || cmd_hold(c, memobj, NULL)) {
		free(c);
		return CL_OUT_OF_HOST_MEMORY;
	}
	return icd_enqueue(q, c, CL_COMMAND_UNMAP_MEM_OBJECT, nw, wl, event, false);
}

static cl_int marker(cl_command_queue q, cl_command_type type, cl_uint nw, const cl_event *wl,
		     cl_event *event)
{
	struct icd_command *c;
	cl_int err = check_common(q, NULL, nw, wl);

	if (err)
		return err;
	c = cmd_new(ICD_CMD_MARKER);
	if (!c)
		return CL_OUT_OF_HOST_MEMORY;
	return icd_enqueue(q, c, type, nw, wl, event, false);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueMarkerWithWaitList(cl_command_queue q, cl_uint nw,
							     const cl_event *wl, cl_event *event)
{
	return marker(q, CL_COMMAND_MARKER, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueBarrierWithWaitList(cl_command_queue q, cl_uint nw,
							      const cl_event *wl, cl_event *event)
{
	return marker(q, CL_COMMAND_BARRIER, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueMarker(cl_command_queue q, cl_event *event)
{
	if (!event)
		return CL_INVALID_VALUE;
	return marker(q, CL_COMMAND_MARKER, 0, NULL, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueBarrier(cl_command_queue q)
{
	return marker(q, CL_COMMAND_BARRIER, 0, NULL, NULL);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWaitForEvents(cl_command_queue q, cl_uint num_events,
							const cl_event *event_list)
{
	if (!num_events || !event_list)
		return CL_INVALID_VALUE;
	return marker(q, CL_COMMAND_MARKER, num_events, event_list, NULL);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueMigrateMemObjects(cl_command_queue q,
							    cl_uint num_mem_objects,
							    const cl_mem *mem_objects,
							    cl_mem_migration_flags flags,
							    cl_uint nw, const cl_event *wl,
							    cl_event *event)
{
	if (!icd_valid_queue(q))
		return CL_INVALID_COMMAND_QUEUE;
	if (!num_mem_objects || !mem_objects ||
	    (flags & ~(cl_mem_migration_flags)(CL_MIGRATE_MEM_OBJECT_HOST |
					       CL_MIGRATE_MEM_OBJECT_CONTENT_UNDEFINED)))
		return CL_INVALID_VALUE;
	for (cl_uint i = 0; i < num_mem_objects; i++)
		if (!icd_valid_mem(mem_objects[i]))
			return CL_INVALID_MEM_OBJECT;
	/* one memory for guest and device: nothing moves */
	return marker(q, CL_COMMAND_MIGRATE_MEM_OBJECTS, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel kernel,
							cl_uint work_dim,
							const size_t *global_work_offset,
							const size_t *global_work_size,
							const size_t *local_work_size, cl_uint nw,
							const cl_event *wl, cl_event *event)
{
	struct icd_command *c;
	size_t values = 0, wg = 1, vpos = 0;
	cl_int err;

	if (!icd_valid_queue(q))
		return CL_INVALID_COMMAND_QUEUE;
	if (!icd_valid_kernel(kernel))
		return CL_INVALID_KERNEL;
	if (kernel->prog->ctx != q->ctx)
		return CL_INVALID_CONTEXT;
	err = icd_check_wait_list(q->ctx, nw, wl);
	if (err)
		return err;
	if (work_dim < 1 || work_dim > icd_device.max_dims)
		return CL_INVALID_WORK_DIMENSION;
	if (!global_work_size)
		return CL_INVALID_GLOBAL_WORK_SIZE;
	for (cl_uint i = 0; i < kernel->num_args; i++)
		if (!kernel->args[i].set)
			return CL_INVALID_KERNEL_ARGS;
	for (cl_uint d = 0; d < work_dim; d++) {
		size_t off = global_work_offset ? global_work_offset[d] : 0;

		if (global_work_size[d] > SIZE_MAX - off)
			return CL_INVALID_GLOBAL_OFFSET;
		if (local_work_size) {
			const uint64_t *req = kernel->kinfo->compile_work_group_size;

			if (!local_work_size[d] || local_work_size[d] > icd_device.max_items[d])
				return CL_INVALID_WORK_ITEM_SIZE;
			if (global_work_size[d] && global_work_size[d] % local_work_size[d])
				return CL_INVALID_WORK_GROUP_SIZE;
			if (req[0] && req[d] != local_work_size[d])
				return CL_INVALID_WORK_GROUP_SIZE;
			wg *= local_work_size[d];
		}
	}
	if (local_work_size && (wg > icd_device.max_wg ||
				(kernel->kinfo->work_group_size && wg > kernel->kinfo->work_group_size)))
		return CL_INVALID_WORK_GROUP_SIZE;
	for (cl_uint d = 0; d < work_dim; d++)
		if (!global_work_size[d])
			return marker(q, CL_COMMAND_NDRANGE_KERNEL, nw, wl, event);
	if (q->ctx->lost)
		return CL_OUT_OF_RESOURCES;

	c = cmd_new(ICD_CMD_DISPATCH);
	if (!c)
		return CL_OUT_OF_HOST_MEMORY;
	for (cl_uint i = 0; i < kernel->num_args; i++)
		if (kernel->args[i].kind == VGPU_DARG_VALUE)
			values += kernel->args[i].size;
	c->vargs = calloc(kernel->num_args ? kernel->num_args : 1, sizeof(*c->vargs));
	c->values = malloc(values ? values : 1);
	c->mems = calloc(kernel->num_args ? kernel->num_args : 1, sizeof(cl_mem));
	if (!c->vargs || !c->values || !c->mems) {
		icd_command_free(c);
		return CL_OUT_OF_HOST_MEMORY;
	}
	c->range.work_dim = work_dim;
	for (cl_uint d = 0; d < work_dim; d++) {
		c->range.offset[d] = global_work_offset ? global_work_offset[d] : 0;
		c->range.global[d] = global_work_size[d];
		c->range.local[d] = local_work_size ? local_work_size[d] : 0;
	}
	pthread_mutex_lock(&icd_lock);
	kernel->refs++;
	c->kernel = kernel;
	for (cl_uint i = 0; i < kernel->num_args; i++) {
		const struct icd_arg *a = &kernel->args[i];
		struct vgpu_kernel_arg *v = &c->vargs[i];

		v->kind = a->kind;
		v->size = a->size;
		if (a->kind == VGPU_DARG_BUFFER) {
			icd_mem_retain_locked(a->mem);
			c->mems[c->num_mems++] = a->mem;
			v->buf = a->mem->vbuf;
			v->offset = a->mem->offset;
			v->access = (a->mem->flags & CL_MEM_READ_ONLY) ? VGPU_OP_READ
								       : VGPU_OP_READ | VGPU_OP_WRITE;
		} else if (a->kind == VGPU_DARG_VALUE) {
			memcpy(c->values + vpos, a->big ? a->big : a->value, a->size);
			v->value = c->values + vpos;
			vpos += a->size;
		}
	}
	c->num_vargs = kernel->num_args;
	pthread_mutex_unlock(&icd_lock);
	return icd_enqueue(q, c, CL_COMMAND_NDRANGE_KERNEL, nw, wl, event, false);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueTask(cl_command_queue q, cl_kernel kernel, cl_uint nw,
					       const cl_event *wl, cl_event *event)
{
	size_t one = 1;

	return clEnqueueNDRangeKernel(q, kernel, 1, NULL, &one, &one, nw, wl, event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNativeKernel(cl_command_queue q,
						       void(CL_CALLBACK *user_func)(void *),
						       void *args, size_t cb_args,
						       cl_uint num_mem_objects, const cl_mem *mem_list,
						       const void **args_mem_loc, cl_uint nw,
						       const cl_event *wl, cl_event *event)
{
	(void)user_func;
	(void)args;
	(void)cb_args;
	(void)num_mem_objects;
	(void)mem_list;
	(void)args_mem_loc;
	(void)nw;
	(void)wl;
	(void)event;
	/* CL_DEVICE_EXECUTION_CAPABILITIES says CL_EXEC_KERNEL only */
	return icd_valid_queue(q) ? CL_INVALID_OPERATION : CL_INVALID_COMMAND_QUEUE;
}
