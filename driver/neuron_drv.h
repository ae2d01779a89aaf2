/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal structures of the neuron driver.
 *
 * Lock ordering (outermost first):
 *   neuron_devices_lock (neuron_device.c: the device list and indices)
 *     -> neuron_device.lock (one device: its open files and their counters,
 *        and which file holds each NeuronCore)
 *       -> neuron_core.lock (spinlock: one core's queue, sequence numbers,
 *          job history and abort flag)
 *   neuron_buffer.map_lock (the buffer's kernel mapping) and
 *   neuron_file.sync_lock (spinlock: semaphores and barriers) are leaves.
 * No lock is held across copy_to_user/copy_from_user, and no spinlock
 * across anything that sleeps.
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
#include <linux/spinlock.h>
#include <linux/wait.h>

#include "include/uapi/neuron.h"
#include "include/uapi/neuron_isa.h"
#include "neuron_engine.h"

#define NEURON_DRV_NAME		"neuron"
#define NEURON_CLASS_NAME	"neuron_device"
#define NEURON_DRV_VERSION	"0.1.0"

struct neuron_device;
struct neuron_file;
struct neuron_kmap;

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
	struct dev_ext_attribute attrs[6];
	struct attribute *attr_list[7];
	struct attribute_group group;
};

/* How a finished job ended, kept for JOB_WAIT (neuron_job.c). */
struct neuron_job_result {
	u64 seq;
	u64 duration_ns;
	struct neuron_file *nf;		/* the submitter; NULL once waited for */
	u32 status;			/* enum neuron_job_status */
	u32 error;
	u32 error_index;
};

struct neuron_job;

/* One NeuronCore of a device, with its queue and its thread. */
struct neuron_core {
	struct neuron_device *nd;
	unsigned int index;
	enum neuron_core_state state;
	atomic64_t jobs_completed;	/* every job that ended */
	atomic64_t jobs_failed;		/* ... and did not end OK */
	atomic64_t resets;		/* after a timeout */
	atomic64_t busy_ns;
	struct neuron_core_sysfs sysfs;

	/* Written under nd->lock and @lock; read under either. */
	struct neuron_file *owner;
	spinlock_t lock;
	struct list_head queue;		/* waiting jobs, in order */
	struct neuron_job *running;	/* until its resources are freed */
	unsigned int queued;		/* jobs not yet ended */
	u64 submitted;			/* last sequence number handed out */
	u64 completed;			/* every job up to it has ended */
	u64 first_seq;			/* first job of the current owner */
	bool abort;			/* end every job now: cores released */
	struct neuron_job_result history[NEURON_JOB_HISTORY];

	wait_queue_head_t work_wq;	/* the thread waits for jobs */
	wait_queue_head_t done_wq;	/* jobs ended: waiters, dependents */
	struct task_struct *thread;
	void *scratch;			/* NEURON_GEMM_SCRATCH bytes */
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
	struct file *filp;		/* the open file this context belongs to */
	/*
	 * The process that holds the file, and its command, under nd->lock:
	 * the opener, until it exits while another process (a forked child,
	 * or one it was passed to) keeps the file; then that process
	 * (neuron_file_holder()).
	 */
	struct pid *tgid;
	char comm[NEURON_COMM_LEN];
	/* When a search of every process for a holder last found none
	 * (jiffies; 0: never), under nd->lock: searched again a second on. */
	unsigned long holder_searched;
	u64 open_seq;			/* orders files by open time */
	u32 cores_held;			/* NeuronCores reserved by this file */
	/* Memory of this file's live buffers, under nd->lock. */
	u64 host_memory;
	u64 host_memory_peak;
	u64 device_memory;
	u64 device_memory_peak;
	/* Buffers by handle; each entry holds a reference (neuron_mem.c). */
	struct xarray buffers;

	/* Jobs (neuron_job.c). */
	wait_queue_head_t poll_wq;	/* a job ended, or a queue has room */
	atomic_t unwaited;		/* ended jobs not yet waited for */
	spinlock_t sync_lock;		/* the semaphores and barriers */
	wait_queue_head_t sync_wq;
	struct neuron_sync_state sync;	/* under sync_lock */
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

	/* Kernel mapping of the first @kmap_bytes, for the engine; earlier,
	 * smaller mappings stay until release (jobs may still use them). */
	struct mutex map_lock;
	void *kaddr;
	u64 kmap_bytes;
	struct neuron_kmap *old_maps;
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
struct pid *neuron_file_holder(struct neuron_file *nf);
void neuron_file_touch(struct neuron_file *nf);

/* neuron_mem.c */
void neuron_mem_file_init(struct neuron_file *nf);
void neuron_mem_file_release(struct neuron_file *nf);
int neuron_mmap(struct file *filp, struct vm_area_struct *vma);
struct neuron_buffer *neuron_buffer_get(struct neuron_file *nf, u32 handle);
void neuron_buffer_put(struct neuron_buffer *buf);
void *neuron_buffer_kmap(struct neuron_buffer *buf, u64 bytes);

/* neuron_core.c */
void neuron_core_init(struct neuron_core *core);
void neuron_core_stop(struct neuron_core *core);
void neuron_queue_file_init(struct neuron_file *nf);
void neuron_queue_file_release(struct neuron_file *nf);
__poll_t neuron_poll(struct file *filp, struct poll_table_struct *wait);
bool neuron_core_usable(struct neuron_file *nf, struct neuron_core *core);

/* neuron_job.c */
int neuron_core_thread(void *data);

/* neuron_ioctl.c */
bool neuron_all_zero(const void *p, size_t len);
long neuron_ioctl(struct file *filp, unsigned int cmd, unsigned long arg);

/*
 * What an ioctl handler may tell the dispatcher besides its result: the
 * argument is copied back to the caller when the handler succeeds, or
 * when it sets @reply (a refusal that explains itself in the argument);
 * @undo reverses a success whose result could not be copied back.
 */
struct neuron_ioctl_ctx {
	bool reply;
	void (*undo)(struct neuron_file *nf, const void *arg);
};

/*
 * One handler per command of NEURON_IOCTL_LIST, neuron_ioctl_<name>(),
 * over the argument copied in, its flags and reserved fields already
 * checked to be zero (neuron_ioctl.c).
 */
#define NEURON_IOCTL_HANDLER(NAME, lower, type) \
	int neuron_ioctl_##lower(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx);
NEURON_IOCTL_LIST(NEURON_IOCTL_HANDLER)
#undef NEURON_IOCTL_HANDLER

/* neuron_fake.c */
int neuron_fake_init(void);
void neuron_fake_exit(void);

#endif /* _NEURON_DRV_H */
