// SPDX-License-Identifier: GPL-2.0
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

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

void *neuron_mmap(int fd, unsigned long long length, unsigned long long offset)
{
	void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);

	return p == MAP_FAILED ? NULL : p;
}

int neuron_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}
