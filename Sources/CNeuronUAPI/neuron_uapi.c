// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "neuron_uapi.h"

const unsigned long neuron_ioctl_driver_info = NEURON_IOCTL_DRIVER_INFO;
const unsigned long neuron_ioctl_device_info = NEURON_IOCTL_DEVICE_INFO;
const unsigned long neuron_ioctl_process_list = NEURON_IOCTL_PROCESS_LIST;
const unsigned long neuron_ioctl_mem_alloc = NEURON_IOCTL_MEM_ALLOC;
const unsigned long neuron_ioctl_mem_free = NEURON_IOCTL_MEM_FREE;
const unsigned long neuron_ioctl_mem_info = NEURON_IOCTL_MEM_INFO;
const unsigned long neuron_ioctl_mem_write = NEURON_IOCTL_MEM_WRITE;
const unsigned long neuron_ioctl_mem_read = NEURON_IOCTL_MEM_READ;
const unsigned long neuron_ioctl_mem_set = NEURON_IOCTL_MEM_SET;
const unsigned long neuron_ioctl_core_reserve = NEURON_IOCTL_CORE_RESERVE;
const unsigned long neuron_ioctl_core_release = NEURON_IOCTL_CORE_RELEASE;
const unsigned long neuron_ioctl_job_submit = NEURON_IOCTL_JOB_SUBMIT;
const unsigned long neuron_ioctl_job_wait = NEURON_IOCTL_JOB_WAIT;
const unsigned long neuron_ioctl_queue_info = NEURON_IOCTL_QUEUE_INFO;

void *neuron_mmap(int fd, unsigned long long length, unsigned long long offset)
{
	void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);

	return p == MAP_FAILED ? NULL : p;
}

int neuron_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}

int neuron_wake_fd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void neuron_wake(int wake_fd)
{
	uint64_t one = 1;

	while (write(wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

int neuron_poll_jobs(int fd, int wake_fd, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN }, { .fd = wake_fd, .events = POLLIN },
	};
	uint64_t count;
	int n = poll(p, 2, timeout_ms), ready = 0;

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (p[0].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
		ready |= 1;
	if (p[1].revents & POLLIN) {
		ready |= 2;
		while (read(wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
			;
	}
	return ready;
}
const unsigned int neuron_max_program_size = NEURON_MAX_PROGRAM_SIZE;
