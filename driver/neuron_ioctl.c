// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: ioctl dispatch and the information ioctls.
 *
 * One table, built from the uapi's NEURON_IOCTL_LIST, names each
 * command's handler and argument. Every command is matched with its full
 * number, so a known command number with another size or direction is
 * unknown (-ENOTTY). Here, once for all: the argument is copied in whole,
 * its flags and reserved fields checked to be zero (with a debug line
 * naming the command and the field; a command's flags may hold only the
 * bits it knows), and for commands that return data
 * copied out whole after the handler; no lock is held across a user copy.
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

int neuron_ioctl_driver_info(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_driver_info *info = arg;

	memset(info, 0, sizeof(*info));
	info->api_major = NEURON_API_VERSION_MAJOR;
	info->api_minor = NEURON_API_VERSION_MINOR;
	info->device_count = neuron_device_count();
	strscpy(info->version, NEURON_DRV_VERSION, sizeof(info->version));
	return 0;
}

int neuron_ioctl_device_info(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_device *nd = nf->nd;
	struct neuron_device_info *info = arg;

	memset(info, 0, sizeof(*info));
	info->platform = nd->ops->platform;
	info->index = nd->index;
	info->core_count = nd->core_count;
	info->memory_size = nd->memory_size;
	mutex_lock(&nd->lock);
	info->memory_used = nd->memory_used;
	mutex_unlock(&nd->lock);
	info->numa_node = nd->numa_node;
	info->connected_count = nd->connected_count;
	memcpy(info->connected, nd->connected, sizeof(info->connected));
	strscpy(info->serial, nd->serial, sizeof(info->serial));
	strscpy(info->pci_bdf, nd->pci_bdf, sizeof(info->pci_bdf));
	info->job_timeout_ms = neuron_job_timeout_ms();
	return 0;
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

int neuron_ioctl_process_list(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_device *nd = nf->nd;
	struct neuron_process_list *req = arg;
	struct neuron_proc_entry *e;
	u8 __user *dst;
	u32 i, n;
	int count;
	int ret = 0;

	if (req->capacity &&
	    (req->entry_size < sizeof(struct neuron_process_info) ||
	     req->entry_size > NEURON_MAX_ENTRY_SIZE)) {
		dev_dbg(&nd->dev, "PROCESS_LIST: entry_size %u is not %zu..%u\n", req->entry_size,
			sizeof(struct neuron_process_info), NEURON_MAX_ENTRY_SIZE);
		return -EINVAL;
	}

	count = neuron_collect_processes(nd, &e);
	if (count < 0)
		return count;

	n = min_t(u32, count, req->capacity);
	dst = u64_to_user_ptr(req->entries);
	for (i = 0; i < n; i++) {
		u8 __user *slot = dst + (size_t)i * req->entry_size;

		if (copy_to_user(slot, &e[i].info, sizeof(e[i].info)) ||
		    clear_user(slot + sizeof(e[i].info),
			       req->entry_size - sizeof(e[i].info))) {
			ret = -EFAULT;
			break;
		}
	}
	kvfree(e);
	if (ret)
		return ret;
	req->count = count;
	return 0;
}

/* A command: its handler, and where its must-be-zero fields lie. */
struct neuron_ioctl_desc {
	unsigned int cmd;
	const char *name;
	int (*handler)(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx);
	size_t flags_offset;
	size_t reserved_offset;
	size_t reserved_size;
};

/* The first command's number; the rest follow it without gaps. */
#define NEURON_IOCTL_FIRST	_IOC_NR(NEURON_IOCTL_DRIVER_INFO)

#define NEURON_IOCTL_DESC(NAME, lower, type)					\
	[_IOC_NR(NEURON_IOCTL_##NAME) - NEURON_IOCTL_FIRST] = {			\
		.cmd = NEURON_IOCTL_##NAME,					\
		.name = #NAME,							\
		.handler = neuron_ioctl_##lower,				\
		.flags_offset = offsetof(struct type, flags),			\
		.reserved_offset = offsetof(struct type, reserved),		\
		.reserved_size = sizeof_field(struct type, reserved),		\
	},

static const struct neuron_ioctl_desc neuron_ioctls[] = {
	NEURON_IOCTL_LIST(NEURON_IOCTL_DESC)
};

/* Room for any command's argument. */
#define NEURON_IOCTL_ARG(NAME, lower, type)	struct type lower;
union neuron_ioctl_arg {
	NEURON_IOCTL_LIST(NEURON_IOCTL_ARG)
};

#define NEURON_IOCTL_CHECK(NAME, lower, type)					\
	BUILD_BUG_ON(_IOC_SIZE(NEURON_IOCTL_##NAME) != sizeof(struct type));	\
	BUILD_BUG_ON(sizeof_field(struct type, flags) != sizeof(u32));

/* The flags a command knows; the other commands take none. */
static u32 neuron_ioctl_known_flags(unsigned int cmd)
{
	switch (cmd) {
	case NEURON_IOCTL_JOB_SUBMIT:
		return NEURON_JOB_SUBMIT_FLAGS;
	}
	return 0;
}

long neuron_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct neuron_file *nf = filp->private_data;
	struct device *dev = &nf->nd->dev;
	void __user *uarg = (void __user *)arg;
	const struct neuron_ioctl_desc *desc;
	struct neuron_ioctl_ctx ctx = { 0 };
	union neuron_ioctl_arg buf;
	unsigned int nr = _IOC_NR(cmd);
	u32 flags;
	int ret;

	NEURON_IOCTL_LIST(NEURON_IOCTL_CHECK)
	neuron_file_touch(nf);
	if (_IOC_TYPE(cmd) != NEURON_IOCTL_TYPE || nr < NEURON_IOCTL_FIRST ||
	    nr - NEURON_IOCTL_FIRST >= ARRAY_SIZE(neuron_ioctls) ||
	    neuron_ioctls[nr - NEURON_IOCTL_FIRST].cmd != cmd) {
		dev_dbg(dev, "ioctl 0x%x: not a command of this driver\n", cmd);
		return -ENOTTY;
	}
	desc = &neuron_ioctls[nr - NEURON_IOCTL_FIRST];
	if (copy_from_user(&buf, uarg, _IOC_SIZE(cmd)))
		return -EFAULT;
	memcpy(&flags, (u8 *)&buf + desc->flags_offset, sizeof(flags));
	if (flags & ~neuron_ioctl_known_flags(cmd)) {
		dev_dbg(dev, "%s: flags 0x%x has unknown bits 0x%x\n", desc->name, flags,
			flags & ~neuron_ioctl_known_flags(cmd));
		return -EINVAL;
	}
	if (!neuron_all_zero((u8 *)&buf + desc->reserved_offset, desc->reserved_size)) {
		dev_dbg(dev, "%s: reserved fields must be 0\n", desc->name);
		return -EINVAL;
	}
	ret = desc->handler(nf, &buf, &ctx);
	if ((_IOC_DIR(cmd) & _IOC_READ) && (!ret || ctx.reply) &&
	    copy_to_user(uarg, &buf, _IOC_SIZE(cmd))) {
		if (!ret && ctx.undo)
			ctx.undo(nf, &buf);
		return -EFAULT;
	}
	return ret;
}
