// SPDX-License-Identifier: GPL-2.0
/*
 * What the C test programs of the VM suite share: PASS/FAIL reporting,
 * ioctl with -errno, and opening a device.
 */
#ifndef NEURON_VM_TEST_H
#define NEURON_VM_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int failures;

static void check(int cond, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (cond) {
		printf("PASS %s\n", name);
	} else {
		failures++;
		printf("FAIL %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	fflush(stdout);
}

/* ioctl returning -errno, or 0. */
static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static int open_dev(unsigned int i)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/neuron%u", i);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("FAIL open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

#endif /* NEURON_VM_TEST_H */
