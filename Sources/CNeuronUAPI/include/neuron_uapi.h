// SPDX-License-Identifier: GPL-2.0
// The driver's ABI for Swift: the uapi header itself, included from the
// driver's tree, plus what Swift cannot import from it directly.
#ifndef NEURON_SWIFT_UAPI_H
#define NEURON_SWIFT_UAPI_H

#include "../../../driver/include/uapi/neuron.h"

// The request codes, neuron_ioctl_<name>, one per command of the uapi's
// NEURON_IOCTL_LIST (function-like macros do not import into Swift), and
// the list's names and argument sizes, in its order, for the tests that
// tie Swift's typed requests to it.
#define NEURON_SWIFT_REQUEST(NAME, lower, type) extern const unsigned long neuron_ioctl_##lower;
NEURON_IOCTL_LIST(NEURON_SWIFT_REQUEST)
#undef NEURON_SWIFT_REQUEST
extern const unsigned int neuron_ioctl_count;
// Entry index < neuron_ioctl_count of the list; NULL or 0 past it.
const char *neuron_ioctl_list_name(unsigned int index);
unsigned long neuron_ioctl_list_code(unsigned int index);
unsigned int neuron_ioctl_list_size(unsigned int index);
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
