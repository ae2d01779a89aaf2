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

#define REQUEST(NAME, lower, type) const unsigned long neuron_ioctl_##lower = NEURON_IOCTL_##NAME;
NEURON_IOCTL_LIST(REQUEST)
#undef REQUEST

#define NAME_OF(NAME, lower, type) #NAME,
static const char *const names[] = { NEURON_IOCTL_LIST(NAME_OF) };
#undef NAME_OF
#define CODE_OF(NAME, lower, type) NEURON_IOCTL_##NAME,
static const unsigned long codes[] = { NEURON_IOCTL_LIST(CODE_OF) };
#undef CODE_OF
#define SIZE_OF(NAME, lower, type) (unsigned int)sizeof(struct type),
static const unsigned int sizes[] = { NEURON_IOCTL_LIST(SIZE_OF) };
#undef SIZE_OF
const unsigned int neuron_ioctl_count = sizeof(codes) / sizeof(codes[0]);

const char *neuron_ioctl_list_name(unsigned int index)
{
	return index < neuron_ioctl_count ? names[index] : NULL;
}

unsigned long neuron_ioctl_list_code(unsigned int index)
{
	return index < neuron_ioctl_count ? codes[index] : 0;
}

unsigned int neuron_ioctl_list_size(unsigned int index)
{
	return index < neuron_ioctl_count ? sizes[index] : 0;
}

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
