// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: per-open-file contexts.
 *
 * Each open() of /dev/neuronN gets a struct neuron_file that records the
 * opening process and owns everything that file acquires (NeuronCores,
 * memory, jobs). neuron_release() is the one ordered
 * path that gives all of it back; the kernel calls it on close() and when
 * the process exits or is killed.
 */
#include <linux/atomic.h>
#include <linux/compat.h>
#include <linux/fdtable.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>

#include "neuron_drv.h"

static atomic64_t neuron_open_seq = ATOMIC64_INIT(0);

/*
 * Does @pid name a process that has not begun to exit? A process that
 * exits gives up its files, so it holds nothing that it did not pass on.
 */
static bool neuron_pid_alive(struct pid *pid)
{
	struct task_struct *t;
	bool alive;

	rcu_read_lock();
	t = pid_task(pid, PIDTYPE_TGID);
	alive = t && !(t->flags & PF_EXITING);
	rcu_read_unlock();
	return alive;
}

static int neuron_fd_is(const void *filp, struct file *file, unsigned int fd)
{
	return file == filp;
}

/*
 * A live process with @filp in its file table (referenced), or NULL;
 * its command in @comm.
 */
static struct pid *neuron_find_holder(struct file *filp, char (*comm)[TASK_COMM_LEN])
{
	struct task_struct *p;
	struct pid *found = NULL;

	rcu_read_lock();
	for_each_process(p) {
		bool holds;

		if (p->flags & (PF_EXITING | PF_KTHREAD))
			continue;
		task_lock(p);
		holds = p->files && iterate_fd(p->files, 0, neuron_fd_is, filp);
		task_unlock(p);
		if (holds) {
			found = get_task_pid(p, PIDTYPE_TGID);
			get_task_comm(*comm, p);
			break;
		}
	}
	rcu_read_unlock();
	return found;
}

/*
 * The process that holds @nf now, for the process list and for naming
 * the holder of a NeuronCore: the recorded one while it lives; once it
 * has exited, a live process that still has the file open (a child that
 * inherited the descriptor), recorded in its place; NULL when none has
 * (the descriptor in flight over a socket, or only mappings left).
 * Never a pid number that a dead process left behind, as that may name
 * another process now. Under nd->lock.
 */
struct pid *neuron_file_holder(struct neuron_file *nf)
{
	char comm[TASK_COMM_LEN];
	struct pid *found;

	BUILD_BUG_ON(sizeof(comm) != sizeof(nf->comm));
	lockdep_assert_held(&nf->nd->lock);
	if (neuron_pid_alive(nf->tgid))
		return nf->tgid;
	/*
	 * The search walks every process's file table under RCU: with no
	 * holder (a file kept by a mapping, or in flight over a socket),
	 * a process list a second must not repeat it for each such file.
	 */
	if (nf->holder_searched && time_before(jiffies, nf->holder_searched + HZ))
		return NULL;
	found = neuron_find_holder(nf->filp, &comm);
	if (!found) {
		nf->holder_searched = jiffies ?: 1;
		return NULL;
	}
	nf->holder_searched = 0;
	put_pid(nf->tgid);
	nf->tgid = found;
	memcpy(nf->comm, comm, sizeof(nf->comm));
	return found;
}

/*
 * The calling process uses @nf: when the recorded holder has exited, the
 * caller holds the file from now on.
 */
void neuron_file_touch(struct neuron_file *nf)
{
	struct pid *self = task_tgid(current);

	if (likely(READ_ONCE(nf->tgid) == self))
		return;
	mutex_lock(&nf->nd->lock);
	if (nf->tgid != self && !neuron_pid_alive(nf->tgid)) {
		put_pid(nf->tgid);
		nf->tgid = get_pid(self);
		get_task_comm(nf->comm, current->group_leader);
	}
	mutex_unlock(&nf->nd->lock);
}

static int neuron_open(struct inode *inode, struct file *filp)
{
	struct neuron_device *nd =
		container_of(inode->i_cdev, struct neuron_device, cdev);
	struct neuron_file *nf;

	nf = kzalloc(sizeof(*nf), GFP_KERNEL);
	if (!nf)
		return -ENOMEM;

	get_device(&nd->dev);
	nf->nd = nd;
	nf->filp = filp;
	nf->tgid = get_task_pid(current, PIDTYPE_TGID);
	get_task_comm(nf->comm, current->group_leader);
	nf->open_seq = atomic64_inc_return(&neuron_open_seq);
	neuron_mem_file_init(nf);
	neuron_queue_file_init(nf);

	mutex_lock(&nd->lock);
	list_add_tail(&nf->node, &nd->files);
	mutex_unlock(&nd->lock);

	filp->private_data = nf;
	return nonseekable_open(inode, filp);
}

static int neuron_release(struct inode *inode, struct file *filp)
{
	struct neuron_file *nf = filp->private_data;
	struct neuron_device *nd = nf->nd;

	/* What the file holds is returned here: its NeuronCores (aborting
	 * their jobs, which hold buffers), its memory, then its place on
	 * the device. */
	neuron_queue_file_release(nf);
	neuron_mem_file_release(nf);

	mutex_lock(&nd->lock);
	list_del(&nf->node);
	mutex_unlock(&nd->lock);

	put_pid(nf->tgid);
	kfree(nf);
	put_device(&nd->dev);
	return 0;
}

const struct file_operations neuron_fops = {
	.owner = THIS_MODULE,
	.open = neuron_open,
	.release = neuron_release,
	.unlocked_ioctl = neuron_ioctl,
	.mmap = neuron_mmap,
	.poll = neuron_poll,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};
