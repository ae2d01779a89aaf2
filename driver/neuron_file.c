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
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "neuron_drv.h"

static atomic64_t neuron_open_seq = ATOMIC64_INIT(0);

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
