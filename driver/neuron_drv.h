/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal structures of the neuron driver.
 *
 * Lock ordering (outermost first):
 *   neuron_devices_lock (neuron_device.c: the device list and indices)
 *     -> neuron_device.lock (one device: its open files and their counters)
 * No lock is held across copy_to_user/copy_from_user.
 */
#ifndef _NEURON_DRV_H
#define _NEURON_DRV_H

#include <linux/atomic.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/sysfs.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include <linux/kref.h>

#include "include/uapi/neuron.h"

#define NEURON_DRV_NAME		"neuron"
#define NEURON_CLASS_NAME	"neuron_device"
#define NEURON_DRV_VERSION	"0.1.0"

struct neuron_device;
struct neuron_file;

/* Module parameters, validated when set (neuron_main.c). */
extern unsigned int neuron_fake_devices;
extern unsigned int neuron_fake_cores;
extern unsigned int neuron_fake_memory_mb;
unsigned int neuron_job_timeout_ms(void);

enum neuron_core_state {
	NEURON_CORE_IDLE,
	NEURON_CORE_BUSY,
	NEURON_CORE_RESET,
};

/* Per-core sysfs group: a directory neuron_coreN below the device. */
struct neuron_core_sysfs {
	char name[16];
	struct dev_ext_attribute attrs[3];
	struct attribute *attr_list[4];
	struct attribute_group group;
};

/* One NeuronCore of a device. */
struct neuron_core {
	struct neuron_device *nd;
	unsigned int index;
	enum neuron_core_state state;
	atomic64_t jobs_completed;
	atomic64_t busy_ns;
	struct neuron_core_sysfs sysfs;
};

/*
 * What a backend (fake, later Inf1 PCI) provides. The char device, sysfs,
 * per-file contexts and ioctls are shared; the backend describes the
 * hardware and owns its private state.
 */
struct neuron_device_ops {
	enum neuron_platform platform;
	/*
	 * Free the backend's private state; called once, on the last put.
	 * nd->priv is NULL when neuron_device_create() failed: the backend
	 * then still owns what it passed in.
	 */
	void (*release)(struct neuron_device *nd);
};

/* Everything a backend describes when it creates a device. */
struct neuron_device_desc {
	const struct neuron_device_ops *ops;
	struct device *parent;		/* PCI device, or NULL */
	void *priv;			/* backend private data */
	unsigned int core_count;	/* 1..NEURON_MAX_CORES */
	u64 memory_size;		/* bytes */
	int numa_node;			/* or NUMA_NO_NODE */
	char serial[NEURON_SERIAL_LEN];
	char pci_bdf[NEURON_BDF_LEN];	/* "" when not on PCI */
	unsigned int connected_count;
	u32 connected[NEURON_MAX_CONNECTED];
};

struct neuron_device {
	struct device dev;		/* lifetime: put_device() frees */
	struct cdev cdev;
	unsigned int index;
	const struct neuron_device_ops *ops;
	void *priv;
	struct list_head node;		/* in neuron_devices, under its lock */

	/* Immutable after creation. */
	unsigned int core_count;
	u64 memory_size;
	int numa_node;
	char serial[NEURON_SERIAL_LEN];
	char pci_bdf[NEURON_BDF_LEN];
	unsigned int connected_count;
	u32 connected[NEURON_MAX_CONNECTED];

	/* Protects @files and the memory accounting, the device's and each
	 * file's. */
	struct mutex lock;
	struct list_head files;
	u64 memory_used;		/* device-placed bytes, live buffers */
	u64 memory_peak;
	u64 host_memory_used;		/* host-placed bytes, live buffers */
	u64 host_memory_peak;

	struct neuron_core cores[NEURON_MAX_CORES];
	const struct attribute_group *groups[NEURON_MAX_CORES + 2];
};

/* Per open file: one per open() of /dev/neuronN. */
struct neuron_file {
	struct neuron_device *nd;
	struct list_head node;		/* in nd->files, under nd->lock */
	struct pid *tgid;		/* process that opened the file */
	char comm[NEURON_COMM_LEN];
	u64 open_seq;			/* orders files by open time */
	u32 cores_held;			/* NeuronCores reserved by this file */
	/* Memory of this file's live buffers, under nd->lock. */
	u64 host_memory;
	u64 host_memory_peak;
	u64 device_memory;
	u64 device_memory_peak;
	/* Buffers by handle; each entry holds a reference (neuron_mem.c). */
	struct xarray buffers;
};

/*
 * A buffer of device (or host-placed) memory. Fake devices back it with
 * host pages allocated when first written or mapped, kept in @pages, so
 * an untouched buffer costs a few bytes whatever its size.
 *
 * References: the owning file's handle table, each VMA mapping it, and
 * each ioctl using it. The owning file outlives every reference: a
 * mapping pins the file, and the file's release drops the table's
 * references last.
 */
struct neuron_buffer {
	struct kref ref;
	struct neuron_file *owner;
	u64 size;			/* bytes, a multiple of PAGE_SIZE */
	u32 handle;
	u32 placement;
	u32 core;
	u64 device_addr;
	u64 mmap_offset;
	atomic_long_t resident;		/* pages allocated */
	struct xarray pages;		/* page index -> struct page */
};

static inline struct neuron_device *to_neuron_device(struct device *dev)
{
	return container_of(dev, struct neuron_device, dev);
}

/* neuron_device.c */
int neuron_class_init(void);
void neuron_class_exit(void);
struct neuron_device *neuron_device_create(const struct neuron_device_desc *desc);
void neuron_device_destroy(struct neuron_device *nd);
unsigned int neuron_device_count(void);

/* neuron_sysfs.c */
extern const struct attribute_group neuron_device_group;
void neuron_sysfs_init_core(struct neuron_core *core);

/* neuron_file.c */
extern const struct file_operations neuron_fops;

/* neuron_mem.c */
void neuron_mem_file_init(struct neuron_file *nf);
void neuron_mem_file_release(struct neuron_file *nf);
int neuron_mmap(struct file *filp, struct vm_area_struct *vma);
long neuron_ioctl_mem(struct neuron_file *nf, unsigned int cmd, void __user *uarg);

/* neuron_ioctl.c */
bool neuron_all_zero(const void *p, size_t len);
long neuron_ioctl(struct file *filp, unsigned int cmd, unsigned long arg);

/* neuron_fake.c */
int neuron_fake_init(void);
void neuron_fake_exit(void);

#endif /* _NEURON_DRV_H */
