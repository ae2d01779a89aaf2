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

// mmap(2) with a 64-bit offset; MAP_FAILED is returned as NULL.
void *neuron_mmap(int fd, unsigned long long length, unsigned long long offset);

// ioctl(2) without varargs. Returns -1 and sets errno on failure.
int neuron_ioctl(int fd, unsigned long request, void *arg);

#endif
