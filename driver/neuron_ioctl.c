// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: ioctl dispatch and the information ioctls.
 *
 * Every command is matched with its full number, so a known command
 * number with another size or direction is unknown (-ENOTTY). Arguments
 * are copied in whole, flags and reserved fields checked for zero, and
 * results copied out whole; no lock is held across a user copy.
 */
#include <linux/fs.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "neuron_drv.h"

/* Most bytes a caller may declare per process entry (forward compatibility). */
#define NEURON_MAX_ENTRY_SIZE	4096

bool neuron_all_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

static int neuron_ioctl_driver_info(void __user *uarg)
{
	struct neuron_driver_info info;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.flags || !neuron_all_zero(info.reserved, sizeof(info.reserved)))
		return -EINVAL;

	memset(&info, 0, sizeof(info));
	info.api_major = NEURON_API_VERSION_MAJOR;
	info.api_minor = NEURON_API_VERSION_MINOR;
	info.device_count = neuron_device_count();
	strscpy(info.version, NEURON_DRV_VERSION, sizeof(info.version));

	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static int neuron_ioctl_device_info(struct neuron_device *nd,
				    void __user *uarg)
{
	struct neuron_device_info info;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.flags || !neuron_all_zero(info.reserved, sizeof(info.reserved)))
		return -EINVAL;

	memset(&info, 0, sizeof(info));
	info.platform = nd->ops->platform;
	info.index = nd->index;
	info.core_count = nd->core_count;
	info.memory_size = nd->memory_size;
	mutex_lock(&nd->lock);
	info.memory_used = nd->memory_used;
	mutex_unlock(&nd->lock);
	info.numa_node = nd->numa_node;
	info.connected_count = nd->connected_count;
	memcpy(info.connected, nd->connected, sizeof(info.connected));
	strscpy(info.serial, nd->serial, sizeof(info.serial));
	strscpy(info.pci_bdf, nd->pci_bdf, sizeof(info.pci_bdf));
	info.job_timeout_ms = neuron_job_timeout_ms();

	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* One attached process while the list is built. */
struct neuron_proc_entry {
	const struct pid *key;		/* compared, never dereferenced */
	u64 first_seq;
	struct neuron_process_info info;
};

static int cmp_by_key(const void *a, const void *b)
{
	const struct neuron_proc_entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->first_seq != y->first_seq)
		return x->first_seq < y->first_seq ? -1 : 1;
	return 0;
}

static int cmp_by_seq(const void *a, const void *b)
{
	const struct neuron_proc_entry *x = a, *y = b;

	if (x->first_seq != y->first_seq)
		return x->first_seq < y->first_seq ? -1 : 1;
	return 0;
}

/*
 * Snapshot the open files of @nd as one entry per process, ordered by
 * first open. Returns the number of entries in *@out (kvfree it) or a
 * negative errno.
 */
static int neuron_collect_processes(struct neuron_device *nd,
				    struct neuron_proc_entry **out)
{
	struct neuron_proc_entry *e;
	struct neuron_file *nf;
	size_t n = 0, i, merged;

	mutex_lock(&nd->lock);
	list_for_each_entry(nf, &nd->files, node)
		n++;
	e = kvcalloc(n ?: 1, sizeof(*e), GFP_KERNEL);
	if (!e) {
		mutex_unlock(&nd->lock);
		return -ENOMEM;
	}
	i = 0;
	list_for_each_entry(nf, &nd->files, node) {
		struct pid *holder = neuron_file_holder(nf);

		e[i].key = holder;
		e[i].first_seq = nf->open_seq;
		e[i].info.pid = pid_vnr(holder);
		e[i].info.open_files = 1;
		e[i].info.cores_held = nf->cores_held;
		e[i].info.host_memory = nf->host_memory;
		e[i].info.device_memory = nf->device_memory;
		e[i].info.host_memory_peak = nf->host_memory_peak;
		e[i].info.device_memory_peak = nf->device_memory_peak;
		memcpy(e[i].info.command, nf->comm, sizeof(e[i].info.command));
		i++;
	}
	mutex_unlock(&nd->lock);

	/* Merge the files of one process into its earliest entry. */
	sort(e, n, sizeof(*e), cmp_by_key, NULL);
	merged = 0;
	for (i = 0; i < n; i++) {
		struct neuron_proc_entry *m;

		if (merged && e[merged - 1].key == e[i].key) {
			m = &e[merged - 1];
			m->info.open_files++;
			m->info.cores_held |= e[i].info.cores_held;
			m->info.host_memory += e[i].info.host_memory;
			m->info.device_memory += e[i].info.device_memory;
			m->info.host_memory_peak += e[i].info.host_memory_peak;
			m->info.device_memory_peak += e[i].info.device_memory_peak;
		} else {
			e[merged++] = e[i];
		}
	}
	sort(e, merged, sizeof(*e), cmp_by_seq, NULL);

	*out = e;
	return merged;
}

static int neuron_ioctl_process_list(struct neuron_device *nd,
				     void __user *uarg)
{
	struct neuron_process_list req;
	struct neuron_proc_entry *e;
	u8 __user *dst;
	u32 i, n;
	int count;
	int ret = 0;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags ||
	    !neuron_all_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;
	if (req.capacity &&
	    (req.entry_size < sizeof(struct neuron_process_info) ||
	     req.entry_size > NEURON_MAX_ENTRY_SIZE))
		return -EINVAL;

	count = neuron_collect_processes(nd, &e);
	if (count < 0)
		return count;

	n = min_t(u32, count, req.capacity);
	dst = u64_to_user_ptr(req.entries);
	for (i = 0; i < n; i++) {
		u8 __user *slot = dst + (size_t)i * req.entry_size;

		if (copy_to_user(slot, &e[i].info, sizeof(e[i].info)) ||
		    clear_user(slot + sizeof(e[i].info),
			       req.entry_size - sizeof(e[i].info))) {
			ret = -EFAULT;
			break;
		}
	}
	kvfree(e);
	if (ret)
		return ret;

	req.count = count;
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

long neuron_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct neuron_file *nf = filp->private_data;
	void __user *uarg = (void __user *)arg;

	neuron_file_touch(nf);
	switch (cmd) {
	case NEURON_IOCTL_DRIVER_INFO:
		return neuron_ioctl_driver_info(uarg);
	case NEURON_IOCTL_DEVICE_INFO:
		return neuron_ioctl_device_info(nf->nd, uarg);
	case NEURON_IOCTL_PROCESS_LIST:
		return neuron_ioctl_process_list(nf->nd, uarg);
	case NEURON_IOCTL_MEM_ALLOC:
	case NEURON_IOCTL_MEM_FREE:
	case NEURON_IOCTL_MEM_INFO:
	case NEURON_IOCTL_MEM_WRITE:
	case NEURON_IOCTL_MEM_READ:
	case NEURON_IOCTL_MEM_SET:
		return neuron_ioctl_mem(nf, cmd, uarg);
	case NEURON_IOCTL_CORE_RESERVE:
	case NEURON_IOCTL_CORE_RELEASE:
	case NEURON_IOCTL_JOB_SUBMIT:
	case NEURON_IOCTL_JOB_WAIT:
	case NEURON_IOCTL_QUEUE_INFO:
		return neuron_ioctl_queue(nf, cmd, uarg);
	default:
		return -ENOTTY;
	}
}
