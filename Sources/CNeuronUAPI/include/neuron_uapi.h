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

// ioctl(2) without varargs. Returns -1 and sets errno on failure.
int neuron_ioctl(int fd, unsigned long request, void *arg);

#endif
