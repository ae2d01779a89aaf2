// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: jobs on a NeuronCore's queue.
 *
 * Each NeuronCore has an in-order queue of at most NEURON_QUEUE_DEPTH jobs
 * and a kernel thread that runs them with the engine's job runner
 * (engine/engine_run.c), to which this file supplies FPU sections, the
 * clock, rescheduling and waits. A job is validated completely when it is
 * submitted; the thread then runs it in FPU sections of bounded work
 * (large instructions in slices, small ones grouped), rescheduling and
 * checking for an abort or the job timeout between sections, so that no
 * job stalls the machine and a runaway job ends at the next boundary.
 *
 * Job lifetime: the submitter allocates it and takes references on its
 * buffers; the core thread owns it from the queue on, drops the buffers
 * and frees it, then records how it ended in the core's history and
 * wakes waiters. A file's release (neuron_core.c) aborts its cores' jobs
 * and waits until the threads let go of them, so a job never outlives
 * its file.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <asm/fpu/api.h>

#include "neuron_drv.h"
#include "neuron_engine.h"

struct neuron_job {
	struct list_head node;		/* in core->queue */
	struct neuron_file *nf;
	u64 seq;
	u32 dep_core;
	u64 dep_seq;
	void *image;
	struct neuron_engine_program prog;
	struct neuron_buffer *bufs[NEURON_MAX_SLOTS];
	struct neuron_engine_slot slots[NEURON_MAX_SLOTS];
	struct neuron_buffer *trace_buf;	/* NEURON_JOB_TRACE's, or NULL */
	struct neuron_engine_trace trace;
};

static void neuron_job_free(struct neuron_job *job)
{
	unsigned int i;

	for (i = 0; i < NEURON_MAX_SLOTS; i++)
		if (job->bufs[i])
			neuron_buffer_put(job->bufs[i]);
	if (job->trace_buf)
		neuron_buffer_put(job->trace_buf);
	kvfree(job->image);
	kfree(job);
}

/* Has the running job to stop? */
static bool neuron_core_aborting(struct neuron_core *core)
{
	return READ_ONCE(core->abort) || kthread_should_stop();
}

static void neuron_core_reset(struct neuron_core *core, u64 seq)
{
	WRITE_ONCE(core->state, NEURON_CORE_RESET);
	memset(core->scratch, 0, NEURON_GEMM_SCRATCH);
	atomic64_inc(&core->resets);
	dev_warn_ratelimited(&core->nd->dev,
			     "NeuronCore %u: job %llu ran past job_timeout_ms; core reset\n",
			     core->index, seq);
}

/*
 * The engine's job runner (engine/engine_run.c) runs a job; the driver
 * supplies the FPU sections, the clock, rescheduling and the waits.
 */
struct neuron_run_ctx {
	struct neuron_core *core;
	struct neuron_file *nf;
};

static void neuron_run_fpu_begin(void *ctx)
{
	kernel_fpu_begin();
}

static void neuron_run_fpu_end(void *ctx)
{
	kernel_fpu_end();
}

static void neuron_run_yield(void *ctx)
{
	cond_resched();
}

static u64 neuron_run_now_ns(void *ctx)
{
	return ktime_get_ns();
}

static int neuron_run_aborting(void *ctx)
{
	return neuron_core_aborting(((struct neuron_run_ctx *)ctx)->core);
}

static u32 neuron_run_cores_held(void *ctx)
{
	return READ_ONCE(((struct neuron_run_ctx *)ctx)->nf->cores_held);
}

static void neuron_run_sync_lock(void *ctx)
	__acquires(&((struct neuron_run_ctx *)ctx)->nf->sync_lock)
{
	spin_lock(&((struct neuron_run_ctx *)ctx)->nf->sync_lock);
}

static void neuron_run_sync_unlock(void *ctx)
	__releases(&((struct neuron_run_ctx *)ctx)->nf->sync_lock)
{
	spin_unlock(&((struct neuron_run_ctx *)ctx)->nf->sync_lock);
}

static void neuron_run_sync_wait(void *ctx, u64 seen, u64 ns)
{
	struct neuron_run_ctx *run = ctx;
	struct neuron_file *nf = run->nf;

	wait_event_interruptible_timeout(nf->sync_wq, READ_ONCE(nf->sync.events) != seen ||
					 neuron_core_aborting(run->core),
					 min_t(long, HZ, nsecs_to_jiffies(ns) + 1));
}

static void neuron_run_sync_wake(void *ctx)
{
	wake_up_all(&((struct neuron_run_ctx *)ctx)->nf->sync_wq);
}

static const struct neuron_run_host neuron_run_host = {
	.fpu_begin = neuron_run_fpu_begin,
	.fpu_end = neuron_run_fpu_end,
	.yield = neuron_run_yield,
	.now_ns = neuron_run_now_ns,
	.aborting = neuron_run_aborting,
	.cores_held = neuron_run_cores_held,
	.sync_lock = neuron_run_sync_lock,
	.sync_unlock = neuron_run_sync_unlock,
	.sync_wait = neuron_run_sync_wait,
	.sync_wake = neuron_run_sync_wake,
};

/* Wait for the job's dependency; 0, or the status that ends this job. */
static u32 neuron_job_dependency(struct neuron_core *core, struct neuron_job *job)
{
	struct neuron_core *dep = &core->nd->cores[job->dep_core];
	struct neuron_job_result *h;
	u32 status;

	for (;;) {
		if (READ_ONCE(dep->completed) >= job->dep_seq)
			break;
		if (neuron_core_aborting(core))
			return NEURON_JOB_ABORTED;
		wait_event_interruptible_timeout(dep->done_wq,
						 READ_ONCE(dep->completed) >= job->dep_seq ||
						 neuron_core_aborting(core), HZ);
	}
	spin_lock(&dep->lock);
	h = &dep->history[job->dep_seq % NEURON_JOB_HISTORY];
	/* A status no longer kept ended long ago, without stopping us then. */
	status = h->seq == job->dep_seq ? h->status : NEURON_JOB_OK;
	spin_unlock(&dep->lock);
	return status == NEURON_JOB_OK ? 0 : NEURON_JOB_ABORTED;
}

static void neuron_job_run(struct neuron_core *core, struct neuron_job *job,
			   struct neuron_job_result *res)
{
	struct neuron_engine_slot scratch = {
		.base = core->scratch, .size = NEURON_GEMM_SCRATCH,
	};
	struct neuron_run_ctx ctx = { .core = core, .nf = job->nf };
	struct neuron_run_job run = {
		.prog = &job->prog, .slots = job->slots, .scratch = &scratch,
		.sync = &job->nf->sync, .core = core->index,
		.section_work = NEURON_SECTION_WORK_KERNEL,
		.trace = job->trace_buf ? &job->trace : NULL,
	};
	struct neuron_run_result result;
	u64 start;
	u32 st;

	res->status = NEURON_JOB_OK;
	if (job->dep_core != NEURON_NO_DEP) {
		st = neuron_job_dependency(core, job);
		if (st) {
			res->status = st;
			return;
		}
	}
	if (neuron_core_aborting(core)) {
		res->status = NEURON_JOB_ABORTED;
		return;
	}

	WRITE_ONCE(core->state, NEURON_CORE_BUSY);
	start = ktime_get_ns();
	run.deadline_ns = start + (u64)neuron_job_timeout_ms() * NSEC_PER_MSEC;
	neuron_engine_run(&neuron_run_host, &ctx, &run, &result);
	res->status = result.status;
	res->error = result.error;
	res->error_index = result.error_index;
	res->duration_ns = ktime_get_ns() - start;
	atomic64_add(res->duration_ns, &core->busy_ns);
	if (res->status == NEURON_JOB_TIMEOUT)
		neuron_core_reset(core, job->seq);
	WRITE_ONCE(core->state, NEURON_CORE_IDLE);
}

/*
 * Let go of @job's buffers and program, then record how it ended and wake
 * whoever waits: when a waiter sees the job ended, the memory of buffers
 * freed under it is already returned. The file outlives all of this: its
 * release waits until @core->running is cleared, last.
 */
static void neuron_job_finish(struct neuron_core *core, struct neuron_job *job,
			      struct neuron_job_result *res)
{
	struct neuron_file *nf = job->nf;
	struct neuron_job_result *h;
	u64 seq = job->seq;

	res->seq = seq;
	res->nf = nf;
	neuron_job_free(job);

	spin_lock(&core->lock);
	h = &core->history[seq % NEURON_JOB_HISTORY];
	if (h->nf)			/* never waited for, now forgotten */
		atomic_dec(&h->nf->unwaited);
	*h = *res;
	atomic_inc(&nf->unwaited);
	core->completed = seq;
	core->queued--;
	spin_unlock(&core->lock);

	atomic64_inc(&core->jobs_completed);
	if (res->status != NEURON_JOB_OK)
		atomic64_inc(&core->jobs_failed);
	wake_up_all(&core->done_wq);
	wake_up_interruptible_all(&nf->poll_wq);

	spin_lock(&core->lock);
	core->running = NULL;
	spin_unlock(&core->lock);
	wake_up_all(&core->done_wq);
}

int neuron_core_thread(void *data)
{
	struct neuron_core *core = data;

	while (!kthread_should_stop()) {
		struct neuron_job_result res = { 0 };
		struct neuron_job *job = NULL;

		wait_event_interruptible_timeout(core->work_wq, kthread_should_stop() ||
						 !list_empty(&core->queue), HZ);
		spin_lock(&core->lock);
		if (!list_empty(&core->queue)) {
			job = list_first_entry(&core->queue, struct neuron_job, node);
			list_del(&job->node);
			core->running = job;
		}
		spin_unlock(&core->lock);
		if (!job)
			continue;
		if (job->trace_buf)
			job->trace.dequeued_ns = ktime_get_ns();
		neuron_job_run(core, job, &res);
		if (job->trace_buf)
			neuron_engine_trace_close(&job->trace, core->index, job->seq,
						  job->prog.insn_count, res.status, ktime_get_ns());
		neuron_job_finish(core, job, &res);
	}
	return 0;
}

static int neuron_job_prepare(struct neuron_file *nf, struct neuron_job_submit *req,
			      struct neuron_job *job)
{
	struct neuron_engine_status status;
	u64 extent[NEURON_MAX_SLOTS];
	unsigned int i;

	job->image = kvmalloc(req->program_size, GFP_KERNEL_ACCOUNT);
	if (!job->image)
		return -ENOMEM;
	if (copy_from_user(job->image, u64_to_user_ptr(req->program), req->program_size))
		return -EFAULT;
	for (i = 0; i < req->slot_count; i++) {
		if (!req->slots[i])
			continue;
		job->bufs[i] = neuron_buffer_get(nf, req->slots[i]);
		if (!job->bufs[i]) {
			dev_dbg(&nf->nd->dev, "JOB_SUBMIT: slots[%u] = %u is no buffer of this file\n",
				i, req->slots[i]);
			return -ENOENT;
		}
		/* Validation sees a page-aligned placeholder: the mapping is
		 * made only for programs that pass, as far as they reach. */
		job->slots[i].base = (void *)PAGE_SIZE;
		job->slots[i].size = job->bufs[i]->size;
	}
	if (neuron_engine_validate(job->image, req->program_size, job->slots,
				   req->slot_count, &job->prog, &status)) {
		req->error = status.error;
		req->error_index = status.index;
		dev_dbg(&nf->nd->dev, "JOB_SUBMIT: program refused, error %u at %u\n",
			status.error, status.index);
		return -EINVAL;
	}
	if (req->flags & NEURON_JOB_TRACE) {
		u64 bytes;
		void *addr;

		job->trace_buf = neuron_buffer_get(nf, req->trace);
		if (!job->trace_buf) {
			dev_dbg(&nf->nd->dev, "JOB_SUBMIT: trace = %u is no buffer of this file\n",
				req->trace);
			return -ENOENT;
		}
		if (job->trace_buf->size < sizeof(struct neuron_trace_header)) {
			dev_dbg(&nf->nd->dev, "JOB_SUBMIT: trace buffer of %llu bytes, less than a header (%zu)\n",
				job->trace_buf->size, sizeof(struct neuron_trace_header));
			return -EINVAL;
		}
		/* Only what the program can fill is mapped (and so committed). */
		bytes = min(job->trace_buf->size, neuron_engine_trace_extent(&job->prog));
		addr = neuron_buffer_kmap(job->trace_buf, bytes);
		if (IS_ERR(addr))
			return PTR_ERR(addr);
		job->trace.buf.base = addr;
		job->trace.buf.size = bytes;
	}
	neuron_engine_slot_extents(&job->prog, extent);
	for (i = 0; i < NEURON_MAX_SLOTS; i++) {
		void *addr;

		job->slots[i].base = NULL;
		if (!job->bufs[i] || !extent[i])
			continue;
		addr = neuron_buffer_kmap(job->bufs[i], extent[i]);
		if (IS_ERR(addr))
			return PTR_ERR(addr);
		job->slots[i].base = addr;
	}
	return 0;
}

/* Does @core name a NeuronCore of the device? Says which when not. */
static bool neuron_core_arg_ok(struct neuron_device *nd, const char *name, u32 core)
{
	if (core < nd->core_count)
		return true;
	dev_dbg(&nd->dev, "%s: core %u, the device has %u\n", name, core, nd->core_count);
	return false;
}

int neuron_ioctl_job_submit(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_device *nd = nf->nd;
	struct neuron_job_submit *req = arg;
	struct neuron_core *core;
	struct neuron_job *job;
	unsigned int i;
	u64 seq = 0;
	int ret;

	BUILD_BUG_ON(ARRAY_SIZE(req->slots) != NEURON_MAX_SLOTS);
	if (req->pad || req->trace_pad) {
		dev_dbg(&nd->dev, "JOB_SUBMIT: pad 0x%x and trace_pad 0x%x must be 0\n", req->pad,
			req->trace_pad);
		return -EINVAL;
	}
	if (!(req->flags & NEURON_JOB_TRACE) != !req->trace) {
		dev_dbg(&nd->dev, "JOB_SUBMIT: trace %u with flags 0x%x: a trace buffer goes with NEURON_JOB_TRACE\n",
			req->trace, req->flags);
		return -EINVAL;
	}
	req->error = 0;
	req->error_index = 0;
	if (!neuron_core_arg_ok(nd, "JOB_SUBMIT", req->core))
		return -EINVAL;
	if (req->slot_count > NEURON_MAX_SLOTS) {
		dev_dbg(&nd->dev, "JOB_SUBMIT: slot_count %u past %u\n", req->slot_count,
			NEURON_MAX_SLOTS);
		return -EINVAL;
	}
	if (req->program_size < sizeof(struct neuron_program_header) ||
	    req->program_size > NEURON_MAX_PROGRAM_SIZE) {
		dev_dbg(&nd->dev, "JOB_SUBMIT: program_size %u is not %zu..%u\n", req->program_size,
			sizeof(struct neuron_program_header), NEURON_MAX_PROGRAM_SIZE);
		return -EINVAL;
	}
	for (i = req->slot_count; i < NEURON_MAX_SLOTS; i++) {
		if (req->slots[i]) {
			dev_dbg(&nd->dev, "JOB_SUBMIT: slots[%u] = %u past slot_count %u\n", i,
				req->slots[i], req->slot_count);
			return -EINVAL;
		}
	}
	if (req->dep_core == NEURON_NO_DEP ? req->dep_seq != 0 :
	    req->dep_core >= nd->core_count || !req->dep_seq) {
		dev_dbg(&nd->dev, "JOB_SUBMIT: dep_core %u with dep_seq %llu\n", req->dep_core,
			req->dep_seq);
		return -EINVAL;
	}
	core = &nd->cores[req->core];

	/* Cheap checks first: the core and the dependency. */
	mutex_lock(&nd->lock);
	ret = neuron_core_usable(nf, core) ? 0 : -EPERM;
	if (ret) {
		dev_dbg(&nd->dev, "JOB_SUBMIT: core %u is not reserved by this file\n", req->core);
	} else if (req->dep_core != NEURON_NO_DEP) {
		struct neuron_core *dep = &nd->cores[req->dep_core];

		if (!neuron_core_usable(nf, dep) || req->dep_seq < dep->first_seq ||
		    req->dep_seq > READ_ONCE(dep->submitted)) {
			dev_dbg(&nd->dev, "JOB_SUBMIT: dep_seq %llu is no job of this file on core %u\n",
				req->dep_seq, req->dep_core);
			ret = -EINVAL;
		}
	}
	mutex_unlock(&nd->lock);
	if (ret)
		return ret;

	job = kzalloc(sizeof(*job), GFP_KERNEL_ACCOUNT);
	if (!job)
		return -ENOMEM;
	job->nf = nf;
	job->dep_core = req->dep_core;
	job->dep_seq = req->dep_seq;
	ret = neuron_job_prepare(nf, req, job);
	if (ret) {
		neuron_job_free(job);
		/* A refused program says where, in the argument. */
		ctx->reply = ret == -EINVAL && req->error;
		return ret;
	}

	mutex_lock(&nd->lock);
	spin_lock(&core->lock);
	if (!neuron_core_usable(nf, core)) {
		ret = -EPERM;
	} else if (core->queued >= NEURON_QUEUE_DEPTH) {
		ret = -EAGAIN;
	} else {
		seq = ++core->submitted;
		job->seq = seq;
		job->trace.submitted_ns = ktime_get_ns();
		core->queued++;
		list_add_tail(&job->node, &core->queue);
	}
	spin_unlock(&core->lock);
	mutex_unlock(&nd->lock);
	if (ret) {
		dev_dbg(&nd->dev, "JOB_SUBMIT: core %u %s\n", req->core,
			ret == -EPERM ? "was released meanwhile" : "has a full queue");
		neuron_job_free(job);
		return ret;
	}
	/*
	 * @job belongs to the core thread once it is queued: it may have run
	 * and been freed already, so nothing here reads it (KASAN caught a
	 * read of job->seq here under the ioctl fuzzer).
	 */
	req->seq = seq;
	wake_up(&core->work_wq);
	return 0;
}

int neuron_ioctl_job_wait(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_device *nd = nf->nd;
	struct neuron_job_wait *req = arg;
	struct neuron_job_result *h;
	struct neuron_core *core;
	long left;
	int ret = 0;

	/* Output fields are not inputs: whatever they hold is ignored. */
	if (!neuron_core_arg_ok(nd, "JOB_WAIT", req->core))
		return -EINVAL;
	core = &nd->cores[req->core];
	mutex_lock(&nd->lock);
	if (core->owner != nf)
		ret = -EPERM;
	else if (req->seq < core->first_seq || req->seq > core->submitted)
		ret = -EINVAL;
	mutex_unlock(&nd->lock);
	if (ret) {
		dev_dbg(&nd->dev, "JOB_WAIT: %s\n", ret == -EPERM ?
			"the core is not reserved by this file" : "seq names no job of this file");
		return ret;
	}

	left = wait_event_interruptible_timeout(core->done_wq,
						READ_ONCE(core->completed) >= req->seq,
						msecs_to_jiffies(req->timeout_ms));
	if (left < 0)
		return -EINTR;
	if (READ_ONCE(core->completed) < req->seq)
		return -ETIMEDOUT;

	spin_lock(&core->lock);
	h = &core->history[req->seq % NEURON_JOB_HISTORY];
	if (h->seq != req->seq) {
		ret = -ENODATA;
	} else {
		req->status = h->status;
		req->error = h->error;
		req->error_index = h->error_index;
		req->duration_ns = h->duration_ns;
		if (h->nf) {
			atomic_dec(&h->nf->unwaited);
			h->nf = NULL;
		}
	}
	spin_unlock(&core->lock);
	return ret;
}

int neuron_ioctl_queue_info(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_device *nd = nf->nd;
	struct neuron_queue_info *req = arg;
	struct neuron_core *core;

	if (!neuron_core_arg_ok(nd, "QUEUE_INFO", req->core))
		return -EINVAL;
	core = &nd->cores[req->core];
	mutex_lock(&nd->lock);
	req->owner_pid = core->owner ? pid_vnr(neuron_file_holder(core->owner)) : 0;
	spin_lock(&core->lock);
	req->submitted = core->submitted;
	req->completed = core->completed;
	req->queued = core->queued;
	spin_unlock(&core->lock);
	mutex_unlock(&nd->lock);
	return 0;
}
