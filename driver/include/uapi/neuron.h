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
#define NEURON_API_VERSION_MINOR	0

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
 * @pid:           process id (thread group id) in the caller's PID
 *                 namespace, or 0 when it is not visible there
 * @open_files:    number of open files the process holds on the device
 * @cores_held:    bit mask of the NeuronCores the process has reserved
 * @pad:           always 0
 * @host_memory:   host memory the process holds for the device, in bytes
 * @device_memory: device memory the process holds, in bytes
 * @command:       command name (as in /proc/PID/comm), NUL-terminated
 */
struct neuron_process_info {
	__s32 pid;
	__u32 open_files;
	__u32 cores_held;
	__u32 pad;
	__u64 host_memory;
	__u64 device_memory;
	char command[NEURON_COMM_LEN];
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

#define NEURON_IOCTL_DRIVER_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC0, struct neuron_driver_info)
#define NEURON_IOCTL_DEVICE_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC1, struct neuron_device_info)
#define NEURON_IOCTL_PROCESS_LIST \
	_IOWR(NEURON_IOCTL_TYPE, 0xC2, struct neuron_process_list)

#endif /* _UAPI_NEURON_H */
