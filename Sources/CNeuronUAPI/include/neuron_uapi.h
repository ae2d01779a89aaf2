// SPDX-License-Identifier: GPL-2.0
// The driver's ABI for Swift: the uapi header itself, included from the
// driver's tree, plus what Swift cannot import from it directly.
#ifndef NEURON_SWIFT_UAPI_H
#define NEURON_SWIFT_UAPI_H

#include "../../../driver/include/uapi/neuron.h"

// The request codes (function-like macros do not import into Swift).
extern const unsigned long neuron_ioctl_driver_info;
extern const unsigned long neuron_ioctl_device_info;
extern const unsigned long neuron_ioctl_process_list;
extern const unsigned long neuron_ioctl_mem_alloc;
extern const unsigned long neuron_ioctl_mem_free;
extern const unsigned long neuron_ioctl_mem_info;
extern const unsigned long neuron_ioctl_mem_write;
extern const unsigned long neuron_ioctl_mem_read;
extern const unsigned long neuron_ioctl_mem_set;
extern const unsigned long neuron_ioctl_core_reserve;
extern const unsigned long neuron_ioctl_core_release;
extern const unsigned long neuron_ioctl_job_submit;
extern const unsigned long neuron_ioctl_job_wait;
extern const unsigned long neuron_ioctl_queue_info;
// NEURON_MAX_PROGRAM_SIZE (an expression Swift does not import).
extern const unsigned int neuron_max_program_size;

// An eventfd to interrupt neuron_poll_jobs from another thread.
int neuron_wake_fd(void);
void neuron_wake(int wake_fd);
// poll(2) for a finished job on fd (bit 0) or a wake-up (bit 1, consumed);
// 0 on timeout or EINTR, -1 on error.
int neuron_poll_jobs(int fd, int wake_fd, int timeout_ms);

// mmap(2) with a 64-bit offset; MAP_FAILED is returned as NULL.
void *neuron_mmap(int fd, unsigned long long length, unsigned long long offset);

// ioctl(2) without varargs. Returns -1 and sets errno on failure.
int neuron_ioctl(int fd, unsigned long request, void *arg);

#endif
