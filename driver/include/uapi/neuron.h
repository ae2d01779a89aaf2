/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * neuron.h - userspace ABI of the neuron driver (Inferentia-class
 * NeuronCore accelerators, real or software-backed "fake" devices).
 *
 * This file is the single source of truth for the ABI: the kernel module
 * compiles it and the Swift userspace imports this very file through a C
 * module. See docs/abi.md for the rules it follows:
 *
 *  - every structure has fixed-width fields, explicit padding and a size
 *    that is a multiple of 8; pointers travel as __u64;
 *  - every field is documented as [in], [out] or [in/out];
 *  - every @flags and @reserved field must be zero on input, else the
 *    ioctl fails with -EINVAL, so that later versions can give them meaning;
 *  - an unknown command (including a known number with another size)
 *    fails with -ENOTTY.
 *
 * The ioctl type is 'N', numbers 0xC0-0xDF.
 */
#ifndef _UAPI_NEURON_H
#define _UAPI_NEURON_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * API version reported by NEURON_IOCTL_DRIVER_INFO. The major number
 * changes only on an incompatible change (never, we hope); the minor
 * number grows when ioctls or fields are added.
 */
#define NEURON_API_VERSION_MAJOR	1
#define NEURON_API_VERSION_MINOR	1

#define NEURON_IOCTL_TYPE		'N'

/* Sizes of fixed strings, including the terminating NUL. */
#define NEURON_VERSION_LEN		32
#define NEURON_SERIAL_LEN		32
#define NEURON_BDF_LEN			16
#define NEURON_COMM_LEN			16

/* Most links a device reports in struct neuron_device_info. */
#define NEURON_MAX_CONNECTED		4
/* Most NeuronCores one device may have. */
#define NEURON_MAX_CORES		8
/* Most devices the driver manages. */
#define NEURON_MAX_DEVICES		64

/* Value of struct neuron_device_info.platform. */
enum neuron_platform {
	NEURON_PLATFORM_FAKE = 1,	/* software-backed NeuronCores */
	NEURON_PLATFORM_INF1 = 2,	/* Inferentia (Inf1) PCI device */
};

/* Value of numa_node when the device has no NUMA affinity. */
#define NEURON_NUMA_NONE		(-1)

/**
 * struct neuron_driver_info - NEURON_IOCTL_DRIVER_INFO
 * @flags:        [in]  must be 0
 * @api_major:    [out] NEURON_API_VERSION_MAJOR of the running driver
 * @api_minor:    [out] NEURON_API_VERSION_MINOR of the running driver
 * @device_count: [out] number of devices the driver currently manages
 * @version:      [out] module version string, NUL-terminated
 * @reserved:     [in]  must be 0
 */
struct neuron_driver_info {
	__u32 flags;
	__u32 api_major;
	__u32 api_minor;
	__u32 device_count;
	char version[NEURON_VERSION_LEN];
	__u64 reserved[4];
};

/**
 * struct neuron_device_info - NEURON_IOCTL_DEVICE_INFO, for the opened device
 * @flags:           [in]  must be 0
 * @platform:        [out] enum neuron_platform
 * @index:           [out] N of /dev/neuronN
 * @core_count:      [out] number of NeuronCores
 * @memory_size:     [out] device memory in bytes
 * @memory_used:     [out] device memory currently allocated, in bytes
 * @numa_node:       [out] NUMA node of the device, or NEURON_NUMA_NONE
 * @connected_count: [out] valid entries in @connected
 * @connected:       [out] indices of the devices this one links to
 * @serial:          [out] serial number, stable across loads, NUL-terminated
 * @pci_bdf:         [out] PCI address "dddd:bb:dd.f", or "" for a fake device
 * @job_timeout_ms:  [out] job timeout in force on this device
 * @pad:             [out] always 0
 * @reserved:        [in]  must be 0
 */
struct neuron_device_info {
	__u32 flags;
	__u32 platform;
	__u32 index;
	__u32 core_count;
	__u64 memory_size;
	__u64 memory_used;
	__s32 numa_node;
	__u32 connected_count;
	__u32 connected[NEURON_MAX_CONNECTED];
	char serial[NEURON_SERIAL_LEN];
	char pci_bdf[NEURON_BDF_LEN];
	__u32 job_timeout_ms;
	__u32 pad;
	__u64 reserved[4];
};

/**
 * struct neuron_process_info - one process attached to a device
 * @pid:                process id (thread group id) in the caller's PID
 *                      namespace, or 0 when it is not visible there
 * @open_files:         number of open files the process holds on the device
 * @cores_held:         bit mask of the NeuronCores the process has reserved
 * @pad:                always 0
 * @host_memory:        host-placed buffer bytes the process holds
 * @device_memory:      device buffer bytes the process holds
 * @command:            command name (as in /proc/PID/comm), NUL-terminated
 * @host_memory_peak:   highest @host_memory since each file was opened,
 *                      summed over the process's files (API 1.1)
 * @device_memory_peak: likewise for @device_memory (API 1.1)
 */
struct neuron_process_info {
	__s32 pid;
	__u32 open_files;
	__u32 cores_held;
	__u32 pad;
	__u64 host_memory;
	__u64 device_memory;
	char command[NEURON_COMM_LEN];
	__u64 host_memory_peak;
	__u64 device_memory_peak;
};

/**
 * struct neuron_process_list - NEURON_IOCTL_PROCESS_LIST
 *
 * Lists the processes that hold the device open, one entry per process,
 * ordered by the time the process first opened the device. Any user who
 * can open the device may call it.
 *
 * @flags:      [in]  must be 0
 * @entry_size: [in]  sizeof(struct neuron_process_info) as the caller knows it
 * @capacity:   [in]  number of entries the array at @entries can hold
 * @count:      [out] number of attached processes; may exceed @capacity, in
 *                    which case only the first @capacity were written
 * @entries:    [in]  user pointer to an array of struct neuron_process_info;
 *                    may be 0 when @capacity is 0
 * @reserved:   [in]  must be 0
 */
struct neuron_process_list {
	__u32 flags;
	__u32 entry_size;
	__u32 capacity;
	__u32 count;
	__u64 entries;
	__u64 reserved[2];
};

/* Value of struct neuron_mem_alloc.placement. */
enum neuron_mem_placement {
	NEURON_MEM_DEVICE = 0,	/* device memory, counted against its capacity */
	NEURON_MEM_HOST = 1,	/* host memory the device can reach (staging) */
};

/* struct neuron_mem_alloc.core: no NeuronCore affinity. */
#define NEURON_CORE_ANY			0xffffffffu

/*
 * Device memory (API 1.1). A buffer is named by a handle that is valid
 * only on the file that allocated it. Its bytes are zero until written.
 * mmap(fd, len, PROT_*, MAP_SHARED, mmap_offset + off) maps it, with off
 * and len multiples of the page size inside the buffer. A buffer freed
 * while mapped lives until the last mapping goes away; memory is counted
 * as used until then. Sizes are rounded up to the page size.
 */

/**
 * struct neuron_mem_alloc - NEURON_IOCTL_MEM_ALLOC
 * @size:        [in]  bytes, 1 up to the device's memory size
 * @placement:   [in]  enum neuron_mem_placement
 * @core:        [in]  NeuronCore the buffer is meant for, or NEURON_CORE_ANY
 * @flags:       [in]  must be 0
 * @handle:      [out] the buffer's handle on this file, never 0
 * @device_addr: [out] the buffer's address in the device's address space
 * @mmap_offset: [out] offset to pass to mmap for this buffer
 * @reserved:    [in]  must be 0
 */
struct neuron_mem_alloc {
	__u64 size;
	__u32 placement;
	__u32 core;
	__u32 flags;
	__u32 handle;
	__u64 device_addr;
	__u64 mmap_offset;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_free - NEURON_IOCTL_MEM_FREE
 * @handle:   [in] the buffer to free
 * @flags:    [in] must be 0
 * @reserved: [in] must be 0
 */
struct neuron_mem_free {
	__u32 handle;
	__u32 flags;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_info - NEURON_IOCTL_MEM_INFO
 * @handle:         [in]  the buffer
 * @flags:          [in]  must be 0
 * @size:           [out] bytes, as allocated (a multiple of the page size)
 * @placement:      [out] enum neuron_mem_placement
 * @core:           [out] NeuronCore affinity, or NEURON_CORE_ANY
 * @device_addr:    [out] as from MEM_ALLOC
 * @mmap_offset:    [out] as from MEM_ALLOC
 * @resident_bytes: [out] host memory the buffer's written pages take
 * @reserved:       [in]  must be 0
 */
struct neuron_mem_info {
	__u32 handle;
	__u32 flags;
	__u64 size;
	__u32 placement;
	__u32 core;
	__u64 device_addr;
	__u64 mmap_offset;
	__u64 resident_bytes;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_copy - NEURON_IOCTL_MEM_WRITE and NEURON_IOCTL_MEM_READ
 *
 * WRITE copies @length bytes from @user_addr into the buffer at @offset;
 * READ copies them out of the buffer to @user_addr.
 *
 * @handle:    [in] the buffer
 * @flags:     [in] must be 0
 * @offset:    [in] byte offset in the buffer
 * @length:    [in] bytes; @offset + @length must not pass the buffer's end
 * @user_addr: [in] user memory to copy from (WRITE) or to (READ)
 * @reserved:  [in] must be 0
 */
struct neuron_mem_copy {
	__u32 handle;
	__u32 flags;
	__u64 offset;
	__u64 length;
	__u64 user_addr;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_set - NEURON_IOCTL_MEM_SET: fill bytes with a value
 * @handle:   [in] the buffer
 * @flags:    [in] must be 0
 * @offset:   [in] byte offset in the buffer
 * @length:   [in] bytes; @offset + @length must not pass the buffer's end
 * @value:    [in] the byte to store, 0-255
 * @pad:      [in] must be 0
 * @reserved: [in] must be 0
 */
struct neuron_mem_set {
	__u32 handle;
	__u32 flags;
	__u64 offset;
	__u64 length;
	__u32 value;
	__u32 pad;
	__u64 reserved[2];
};

#define NEURON_IOCTL_DRIVER_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC0, struct neuron_driver_info)
#define NEURON_IOCTL_DEVICE_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC1, struct neuron_device_info)
#define NEURON_IOCTL_PROCESS_LIST \
	_IOWR(NEURON_IOCTL_TYPE, 0xC2, struct neuron_process_list)
#define NEURON_IOCTL_MEM_ALLOC \
	_IOWR(NEURON_IOCTL_TYPE, 0xC3, struct neuron_mem_alloc)
#define NEURON_IOCTL_MEM_FREE \
	_IOW(NEURON_IOCTL_TYPE, 0xC4, struct neuron_mem_free)
#define NEURON_IOCTL_MEM_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC5, struct neuron_mem_info)
#define NEURON_IOCTL_MEM_WRITE \
	_IOW(NEURON_IOCTL_TYPE, 0xC6, struct neuron_mem_copy)
#define NEURON_IOCTL_MEM_READ \
	_IOW(NEURON_IOCTL_TYPE, 0xC7, struct neuron_mem_copy)
#define NEURON_IOCTL_MEM_SET \
	_IOW(NEURON_IOCTL_TYPE, 0xC8, struct neuron_mem_set)

#endif /* _UAPI_NEURON_H */
