// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: NeuronCore reservation.
 *
 * A file reserves NeuronCores exclusively; a core's thread and scratch
 * memory come with its first reservation. Releasing cores (an ioctl, or
 * the file's release) aborts their jobs, waits until the threads let go
 * of them and gives the cores up, so nothing of the file is left on them.
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
void neuron_core_init(struct neuron_core *core)
{
	spin_lock_init(&core->lock);
	INIT_LIST_HEAD(&core->queue);
	init_waitqueue_head(&core->work_wq);
	init_waitqueue_head(&core->done_wq);
}

/*
 * The thread and scratch memory of a core come with its first
 * reservation, so that cores never used cost nothing. Under nd->lock.
 */
static int neuron_core_start(struct neuron_core *core)
{
	struct task_struct *t;

	lockdep_assert_held(&core->nd->lock);
	if (core->thread)
		return 0;
	core->scratch = vzalloc(NEURON_GEMM_SCRATCH);
	if (!core->scratch)
		return -ENOMEM;
	t = kthread_create_on_node(neuron_core_thread, core, core->nd->numa_node,
				   "neuron%u/nc%u", core->nd->index, core->index);
	if (IS_ERR(t)) {
		vfree(core->scratch);
		core->scratch = NULL;
		return PTR_ERR(t);
	}
	core->thread = t;
	wake_up_process(t);
	return 0;
}

/* When no file is open: the queue is empty. */
void neuron_core_stop(struct neuron_core *core)
{
	if (core->thread)
		kthread_stop(core->thread);
	core->thread = NULL;
	WARN_ON_ONCE(!list_empty(&core->queue) || core->running);
	vfree(core->scratch);
	core->scratch = NULL;
}

void neuron_queue_file_init(struct neuron_file *nf)
{
	init_waitqueue_head(&nf->poll_wq);
	atomic_set(&nf->unwaited, 0);
	spin_lock_init(&nf->sync_lock);
	init_waitqueue_head(&nf->sync_wq);
}

static bool neuron_core_drained(struct neuron_core *core)
{
	bool idle;

	spin_lock(&core->lock);
	idle = list_empty(&core->queue) && !core->running && !core->queued;
	spin_unlock(&core->lock);
	return idle;
}

/* Is @core held by @nf and not being released? Under nd->lock. */
bool neuron_core_usable(struct neuron_file *nf, struct neuron_core *core)
{
	lockdep_assert_held(&nf->nd->lock);
	return core->owner == nf && !core->abort;
}

/*
 * Release the cores of @mask, which @nf holds: abort their jobs, wait
 * until their threads let go of them, give the cores up. Claiming the
 * cores (abort set, under nd->lock) and giving them up (owner and abort
 * cleared together, under nd->lock) bracket the wait: a second release of
 * a core being released (another thread, or a process sharing the file)
 * is refused, a reservation of it is busy, and no job is queued on it in
 * between, so the release ends with nothing of @nf left on its cores.
 */
static int neuron_cores_release(struct neuron_file *nf, u32 mask)
{
	struct neuron_device *nd = nf->nd;
	unsigned int c, i;

	mutex_lock(&nd->lock);
	for (c = 0; c < nd->core_count; c++) {
		if ((mask & BIT(c)) && !neuron_core_usable(nf, &nd->cores[c])) {
			mutex_unlock(&nd->lock);
			dev_dbg(&nd->dev, "release: NeuronCore %u is not held by this file%s\n", c,
				nd->cores[c].owner == nf ? " (being released)" : "");
			return -EINVAL;
		}
	}
	for (c = 0; c < nd->core_count; c++) {
		if (!(mask & BIT(c)))
			continue;
		spin_lock(&nd->cores[c].lock);
		nd->cores[c].abort = true;
		spin_unlock(&nd->cores[c].lock);
	}
	mutex_unlock(&nd->lock);

	/* Jobs may wait on any core of the device, or on a semaphore. */
	for (c = 0; c < nd->core_count; c++) {
		wake_up_all(&nd->cores[c].work_wq);
		wake_up_all(&nd->cores[c].done_wq);
	}
	wake_up_all(&nf->sync_wq);
	for (c = 0; c < nd->core_count; c++) {
		struct neuron_core *core = &nd->cores[c];
		unsigned int waited = 0;

		if (!(mask & BIT(c)))
			continue;
		/* Queued jobs end at once; the running one at its next section. */
		while (!wait_event_timeout(core->done_wq, neuron_core_drained(core), HZ))
			if (++waited % 10 == 0)
				dev_warn(&nd->dev, "NeuronCore %u: still stopping its jobs\n", c);
	}

	mutex_lock(&nd->lock);
	for (c = 0; c < nd->core_count; c++) {
		struct neuron_core *core = &nd->cores[c];

		if (!(mask & BIT(c)))
			continue;
		spin_lock(&core->lock);
		for (i = 0; i < NEURON_JOB_HISTORY; i++) {
			if (core->history[i].nf == nf) {
				core->history[i].nf = NULL;
				atomic_dec(&nf->unwaited);
			}
		}
		core->owner = NULL;
		core->abort = false;
		spin_unlock(&core->lock);
	}
	nf->cores_held &= ~mask;
	if (!nf->cores_held) {
		/* A new reservation starts with clear semaphores and barriers. */
		spin_lock(&nf->sync_lock);
		memset(nf->sync.sem, 0, sizeof(nf->sync.sem));
		memset(nf->sync.barrier_arrived, 0, sizeof(nf->sync.barrier_arrived));
		spin_unlock(&nf->sync_lock);
	}
	mutex_unlock(&nd->lock);
	wake_up_interruptible_all(&nf->poll_wq);
	return 0;
}

void neuron_queue_file_release(struct neuron_file *nf)
{
	u32 held;

	/* No ioctl of this file runs any more: none is releasing its cores. */
	mutex_lock(&nf->nd->lock);
	held = nf->cores_held;
	mutex_unlock(&nf->nd->lock);
	if (held)
		neuron_cores_release(nf, held);
}

__poll_t neuron_poll(struct file *filp, struct poll_table_struct *wait)
{
	struct neuron_file *nf = filp->private_data;
	struct neuron_device *nd = nf->nd;
	__poll_t mask = 0;
	unsigned int c;
	u32 held;

	poll_wait(filp, &nf->poll_wq, wait);
	if (atomic_read(&nf->unwaited) > 0)
		mask |= EPOLLIN | EPOLLRDNORM;
	held = READ_ONCE(nf->cores_held);
	for (c = 0; c < nd->core_count; c++)
		if ((held & BIT(c)) && READ_ONCE(nd->cores[c].queued) < NEURON_QUEUE_DEPTH)
			mask |= EPOLLOUT | EPOLLWRNORM;
	return mask;
}

static u32 neuron_all_cores(struct neuron_device *nd)
{
	return (u32)(BIT(nd->core_count) - 1);
}

/* CORE_RESERVE and CORE_RELEASE's argument, checked; 0 or -errno. */
static int neuron_core_request(struct neuron_file *nf, const char *name,
			       struct neuron_core_reserve *req)
{
	struct neuron_device *nd = nf->nd;

	if (req->pad) {
		dev_dbg(&nd->dev, "%s: pad 0x%x must be 0\n", name, req->pad);
		return -EINVAL;
	}
	if (!req->core_mask || (req->core_mask & ~neuron_all_cores(nd))) {
		dev_dbg(&nd->dev, "%s: core_mask 0x%x names no core or one past %u\n",
			name, req->core_mask, nd->core_count);
		return -EINVAL;
	}
	req->busy_mask = 0;
	req->busy_pid = 0;
	return 0;
}

/* Tell the caller what it holds now, whatever the result. */
static void neuron_core_reply(struct neuron_file *nf, struct neuron_core_reserve *req,
			      struct neuron_ioctl_ctx *ctx)
{
	mutex_lock(&nf->nd->lock);
	req->held_mask = nf->cores_held;
	mutex_unlock(&nf->nd->lock);
	ctx->reply = true;
}

int neuron_ioctl_core_release(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_core_reserve *req = arg;
	int ret = neuron_core_request(nf, "CORE_RELEASE", req);

	if (ret)
		return ret;
	ret = neuron_cores_release(nf, req->core_mask);
	neuron_core_reply(nf, req, ctx);
	return ret;
}

/*
 * Reserve every core of the mask or none: a core another file holds, or
 * one this file is releasing, is busy, and the first such holder named.
 */
int neuron_ioctl_core_reserve(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_device *nd = nf->nd;
	struct neuron_core_reserve *req = arg;
	unsigned int c;
	int ret = neuron_core_request(nf, "CORE_RESERVE", req);

	if (ret)
		return ret;
	mutex_lock(&nd->lock);
	for (c = 0; c < nd->core_count; c++) {
		struct neuron_core *core = &nd->cores[c];

		if (!(req->core_mask & BIT(c)) || !core->owner || neuron_core_usable(nf, core))
			continue;
		if (!req->busy_mask)
			req->busy_pid = pid_vnr(neuron_file_holder(core->owner));
		req->busy_mask |= BIT(c);
	}
	for (c = 0; !req->busy_mask && !ret && c < nd->core_count; c++)
		if (req->core_mask & BIT(c))
			ret = neuron_core_start(&nd->cores[c]);
	if (req->busy_mask) {
		dev_dbg(&nd->dev, "CORE_RESERVE: NeuronCores 0x%x are held (pid %d)\n",
			req->busy_mask, req->busy_pid);
		ret = -EBUSY;
	} else if (!ret) {
		for (c = 0; c < nd->core_count; c++) {
			if (!(req->core_mask & BIT(c)))
				continue;
			spin_lock(&nd->cores[c].lock);
			if (nd->cores[c].owner != nf)
				nd->cores[c].first_seq = nd->cores[c].submitted + 1;
			nd->cores[c].owner = nf;
			spin_unlock(&nd->cores[c].lock);
		}
		nf->cores_held |= req->core_mask;
	}
	mutex_unlock(&nd->lock);
	neuron_core_reply(nf, req, ctx);
	return ret;
}
