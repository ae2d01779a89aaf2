// SPDX-License-Identifier: GPL-2.0
#include <sys/ioctl.h>

#include "neuron_uapi.h"

const unsigned long neuron_ioctl_driver_info = NEURON_IOCTL_DRIVER_INFO;
const unsigned long neuron_ioctl_device_info = NEURON_IOCTL_DEVICE_INFO;
const unsigned long neuron_ioctl_process_list = NEURON_IOCTL_PROCESS_LIST;

int neuron_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}
