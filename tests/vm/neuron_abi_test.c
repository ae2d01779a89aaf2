// SPDX-License-Identifier: GPL-2.0
/*
 * neuron_abi_test: exercises the neuron uapi against the real module.
 * Runs inside scripts/vm-test; prints one "PASS name" or "FAIL name: why"
 * line per check.
 *
 *   neuron_abi_test all DEVICES CORES MEMORY_MB
 *   neuron_abi_test unprivileged DEVICE     (as a member of group neuron)
 *   neuron_abi_test eacces DEVICE           (as a user outside the group)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uapi/neuron.h"

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

static int read_sysfs(unsigned int dev, const char *attr, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/neuron_device/neuron%u/%s", dev, attr);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int list_processes(int fd, struct neuron_process_info *out,
			  unsigned int cap, unsigned int *count)
{
	struct neuron_process_list req = {
		.entry_size = sizeof(*out), .capacity = cap,
		.entries = (uintptr_t)out,
	};
	int ret = xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &req);

	*count = req.count;
	return ret;
}

/* Entry of @pid in the device's process list, or -1. */
static int find_pid(int fd, pid_t pid, struct neuron_process_info *found)
{
	struct neuron_process_info e[64];
	unsigned int n, i;

	if (list_processes(fd, e, 64, &n))
		return -1;
	for (i = 0; i < n && i < 64; i++) {
		if (e[i].pid == pid) {
			if (found)
				*found = e[i];
			return (int)i;
		}
	}
	return -1;
}

static void test_driver_info(int fd, unsigned int devices)
{
	struct neuron_driver_info di;

	memset(&di, 0xa5, sizeof(di));
	di.flags = 0;
	memset(di.reserved, 0, sizeof(di.reserved));
	check(xioctl(fd, NEURON_IOCTL_DRIVER_INFO, &di) == 0,
	      "driver_info.ok", "%s", strerror(errno));
	check(di.api_major == NEURON_API_VERSION_MAJOR &&
	      di.api_minor == NEURON_API_VERSION_MINOR,
	      "driver_info.api_version", "got %u.%u", di.api_major, di.api_minor);
	check(di.device_count == devices, "driver_info.device_count",
	      "got %u, want %u", di.device_count, devices);
	check(memchr(di.version, 0, sizeof(di.version)) && di.version[0],
	      "driver_info.version", "version string not terminated or empty");
	check(!di.reserved[0] && !di.reserved[1] && !di.reserved[2] && !di.reserved[3],
	      "driver_info.reserved_zeroed", "reserved out fields not zero");
}

static void test_device_info(unsigned int devices, unsigned int cores,
			     unsigned long long memory_mb)
{
	unsigned int i;
	char buf[128], name[64];

	for (i = 0; i < devices; i++) {
		struct neuron_device_info info;
		int fd = open_dev(i), ok;
		unsigned int prev = (i + devices - 1) % devices;
		unsigned int next = (i + 1) % devices;

		memset(&info, 0x5a, sizeof(info));
		info.flags = 0;
		memset(info.reserved, 0, sizeof(info.reserved));
		snprintf(name, sizeof(name), "device_info.ioctl.neuron%u", i);
		ok = xioctl(fd, NEURON_IOCTL_DEVICE_INFO, &info) == 0;
		check(ok, name, "ioctl: %s", strerror(errno));
		snprintf(name, sizeof(name), "device_info.fields.neuron%u", i);
		if (!ok) {
			close(fd);
			continue;
		}
		check(info.index == i && info.core_count == cores &&
		      info.memory_size == memory_mb << 20 &&
		      info.platform == NEURON_PLATFORM_FAKE && info.pad == 0 &&
		      info.pci_bdf[0] == 0 && info.memory_used == 0,
		      name, "index %u cores %u memory %llu platform %u bdf '%s'",
		      info.index, info.core_count,
		      (unsigned long long)info.memory_size, info.platform,
		      info.pci_bdf);
		read_sysfs(i, "serial", buf, sizeof(buf));
		snprintf(name, sizeof(name), "device_info.serial_matches_sysfs.neuron%u", i);
		check(!strcmp(buf, info.serial) && info.serial[0], name,
		      "ioctl '%s' sysfs '%s'", info.serial, buf);
		read_sysfs(i, "numa_node", buf, sizeof(buf));
		snprintf(name, sizeof(name), "device_info.numa_matches_sysfs.neuron%u", i);
		check(atoi(buf) == info.numa_node, name, "ioctl %d sysfs %s",
		      info.numa_node, buf);
		snprintf(name, sizeof(name), "device_info.ring.neuron%u", i);
		if (devices == 1)
			check(info.connected_count == 0, name, "count %u",
			      info.connected_count);
		else if (devices == 2)
			check(info.connected_count == 1 && info.connected[0] == prev,
			      name, "count %u [%u]", info.connected_count,
			      info.connected[0]);
		else
			check(info.connected_count == 2 && info.connected[0] == prev &&
			      info.connected[1] == next, name, "count %u [%u %u]",
			      info.connected_count, info.connected[0],
			      info.connected[1]);
		close(fd);
	}
}

static void test_unknown_ioctls(int fd)
{
	char buf[4096] = { 0 };
	int ok = 1;
	unsigned long cmds[] = {
		_IOWR(NEURON_IOCTL_TYPE, 0xC0, struct neuron_device_info), /* wrong size */
		_IOR(NEURON_IOCTL_TYPE, 0xC0, struct neuron_driver_info),  /* wrong dir */
		_IOWR(NEURON_IOCTL_TYPE, 0xDF, struct neuron_driver_info), /* unused nr */
		_IOWR('X', 0xC0, struct neuron_driver_info),		   /* other type */
		_IO(NEURON_IOCTL_TYPE, 0xC1),				   /* no size */
		0, 0xffffffffUL, TCGETS,
	};
	unsigned int i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int r = xioctl(fd, cmds[i], buf);

		if (r != -ENOTTY) {
			printf("# cmd %#lx gave %d\n", cmds[i], r);
			ok = 0;
		}
	}
	check(ok, "unknown_ioctl.enotty", "some unknown command did not give ENOTTY");
}

static void test_flags_reserved(int fd)
{
	struct neuron_driver_info di = { 0 };
	struct neuron_device_info dv = { 0 };
	struct neuron_process_list pl = { 0 };
	unsigned int i;
	int ok = 1;

	di.flags = 1;
	check(xioctl(fd, NEURON_IOCTL_DRIVER_INFO, &di) == -EINVAL,
	      "flags.driver_info", "nonzero flags accepted");
	dv.flags = 0x80000000u;
	check(xioctl(fd, NEURON_IOCTL_DEVICE_INFO, &dv) == -EINVAL,
	      "flags.device_info", "nonzero flags accepted");
	pl.flags = 2;
	pl.entry_size = sizeof(struct neuron_process_info);
	check(xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl) == -EINVAL,
	      "flags.process_list", "nonzero flags accepted");

	for (i = 0; i < 4; i++) {
		memset(&di, 0, sizeof(di));
		di.reserved[i] = 1ULL << 63;
		ok &= xioctl(fd, NEURON_IOCTL_DRIVER_INFO, &di) == -EINVAL;
		memset(&dv, 0, sizeof(dv));
		dv.reserved[i] = 1;
		ok &= xioctl(fd, NEURON_IOCTL_DEVICE_INFO, &dv) == -EINVAL;
	}
	for (i = 0; i < 2; i++) {
		memset(&pl, 0, sizeof(pl));
		pl.reserved[i] = 7;
		ok &= xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl) == -EINVAL;
	}
	check(ok, "reserved.nonzero_einval", "nonzero reserved field accepted");

	/* Output-only fields carry no meaning on input. */
	memset(&dv, 0, sizeof(dv));
	dv.core_count = 99;
	dv.memory_used = ~0ULL;
	check(xioctl(fd, NEURON_IOCTL_DEVICE_INFO, &dv) == 0 && dv.core_count != 99,
	      "device_info.out_fields_ignored_on_input", "%s", strerror(errno));
}

static void test_bad_pointers(int fd)
{
	void *ro, *gone;
	void *ptrs[4];
	unsigned int i;
	int ok = 1;

	ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(gone, 4096);
	ptrs[0] = NULL;
	ptrs[1] = (void *)1;
	ptrs[2] = (void *)0xffff888000000000ULL;	/* kernel direct map */
	ptrs[3] = gone;

	for (i = 0; i < 4; i++) {
		ok &= xioctl(fd, NEURON_IOCTL_DRIVER_INFO, ptrs[i]) == -EFAULT;
		ok &= xioctl(fd, NEURON_IOCTL_DEVICE_INFO, ptrs[i]) == -EFAULT;
		ok &= xioctl(fd, NEURON_IOCTL_PROCESS_LIST, ptrs[i]) == -EFAULT;
	}
	check(ok, "bad_pointer.efault", "an unmapped or kernel pointer did not give EFAULT");

	/* Readable but not writable: the copy back must fail cleanly. */
	check(xioctl(fd, NEURON_IOCTL_DRIVER_INFO, ro) == -EFAULT &&
	      xioctl(fd, NEURON_IOCTL_DEVICE_INFO, ro) == -EFAULT,
	      "bad_pointer.readonly_efault", "write to a read-only page not refused");

	/* A valid request whose entries pointer is bad. */
	{
		struct neuron_process_list pl = {
			.entry_size = sizeof(struct neuron_process_info),
			.capacity = 4,
			.entries = (uintptr_t)ro,
		};
		int r1 = xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl);

		pl.entries = 0xffff888000000000ULL;
		check(r1 == -EFAULT && xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl) == -EFAULT,
		      "bad_pointer.process_entries_efault", "got %d", r1);
	}
	munmap(ro, 4096);
}

static void test_process_list(int fd)
{
	struct neuron_process_info e[8], me;
	struct neuron_process_list pl;
	unsigned char big[2 * sizeof(struct neuron_process_info)];
	unsigned int n;
	char comm[32] = { 0 };
	int fd2, idx;

	prctl(PR_GET_NAME, comm);
	idx = find_pid(fd, getpid(), &me);
	check(idx >= 0, "process_list.self_listed", "own pid %d not listed", getpid());
	check(idx >= 0 && !strncmp(me.command, comm, sizeof(me.command)),
	      "process_list.command", "got '%.16s' want '%s'", me.command, comm);

	fd2 = open_dev(0);
	find_pid(fd, getpid(), &me);
	check(me.open_files == 2, "process_list.merges_files_of_a_process",
	      "open_files %u, want 2", me.open_files);
	close(fd2);
	find_pid(fd, getpid(), &me);
	check(me.open_files == 1, "process_list.close_drops_file",
	      "open_files %u, want 1", me.open_files);

	/* capacity 0: only the count. */
	memset(&pl, 0, sizeof(pl));
	check(xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl) == 0 && pl.count >= 1,
	      "process_list.count_only", "count %u", pl.count);

	/* entry_size too small or absurd. */
	memset(&pl, 0, sizeof(pl));
	pl.capacity = 1;
	pl.entries = (uintptr_t)e;
	pl.entry_size = sizeof(e[0]) - 8;
	check(xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl) == -EINVAL,
	      "process_list.small_entry_size_einval", "accepted");
	pl.entry_size = 1u << 20;
	check(xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl) == -EINVAL,
	      "process_list.huge_entry_size_einval", "accepted");

	/* A larger entry (newer caller): the tail is zeroed. */
	memset(big, 0xee, sizeof(big));
	memset(&pl, 0, sizeof(pl));
	pl.capacity = 1;
	pl.entries = (uintptr_t)big;
	pl.entry_size = sizeof(big);
	n = xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &pl);
	{
		unsigned int i, tail_zero = 1;

		for (i = sizeof(struct neuron_process_info); i < sizeof(big); i++)
			tail_zero &= big[i] == 0;
		check(n == 0 && tail_zero, "process_list.larger_entry_tail_zeroed",
		      "ret %u", n);
	}
}

/* A child holding the device is listed; killed, it disappears. */
static void test_killed_process(int fd)
{
	int pipefd[2];
	pid_t child;
	char c;
	int status, listed, gone = 0, i;

	if (pipe(pipefd))
		return;
	child = fork();
	if (child == 0) {
		int cfd, cfd2;

		/* The command is recorded at open. */
		prctl(PR_SET_NAME, "neuron-victim");
		cfd = open_dev(0);
		cfd2 = open_dev(0);
		(void)cfd; (void)cfd2;
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(pipefd[0], &c, 1) != 1)
		c = 0;
	{
		struct neuron_process_info pi;

		listed = find_pid(fd, child, &pi) >= 0;
		check(listed && pi.open_files == 2,
		      "killed_process.listed_while_alive", "child %d listed %d",
		      child, listed);
		check(listed && !strcmp(pi.command, "neuron-victim"),
		      "killed_process.command_recorded", "got '%.16s'", pi.command);
	}
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	for (i = 0; i < 100 && !gone; i++) {
		gone = find_pid(fd, child, NULL) < 0;
		if (!gone)
			usleep(10000);
	}
	check(gone, "killed_process.released_on_kill", "child %d still listed", child);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* Several processes open and close while another lists: no crash, and
 * only the lister is left at the end. */
static void test_open_close_storm(int fd)
{
	pid_t kids[4];
	unsigned int i, n = 0;
	int j, status, ok = 1;

	for (i = 0; i < 4; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			for (j = 0; j < 300; j++) {
				int f = open_dev(0);
				struct neuron_device_info dv = { 0 };

				ioctl(f, NEURON_IOCTL_DEVICE_INFO, &dv);
				close(f);
			}
			_exit(0);
		}
	}
	for (j = 0; j < 300; j++) {
		struct neuron_process_info e[16];

		ok &= list_processes(fd, e, 16, &n) == 0;
	}
	for (i = 0; i < 4; i++) {
		waitpid(kids[i], &status, 0);
		ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	{
		struct neuron_process_info e[16];

		ok &= list_processes(fd, e, 16, &n) == 0 && n == 1 && e[0].pid == getpid();
	}
	check(ok, "storm.open_close_while_listing", "final count %u", n);
}

/* Closing a dup of the file keeps the context until the last close. */
static void test_dup_and_fork(int fd)
{
	int d = dup(fd);
	struct neuron_process_info pi;
	pid_t child;
	int status;

	close(d);
	check(find_pid(fd, getpid(), &pi) >= 0 && pi.open_files == 1,
	      "file.dup_close_keeps_context", "context lost after closing a dup");

	/* A forked child uses the inherited file; the file stays the parent's. */
	child = fork();
	if (child == 0) {
		struct neuron_device_info dv = { 0 };

		_exit(ioctl(fd, NEURON_IOCTL_DEVICE_INFO, &dv) == 0 ? 0 : 1);
	}
	waitpid(child, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	      find_pid(fd, getpid(), NULL) >= 0,
	      "file.inherited_by_fork", "status %d", status);
}

static int run_all(unsigned int devices, unsigned int cores, unsigned long long mb)
{
	int fd = open_dev(0);

	test_driver_info(fd, devices);
	test_device_info(devices, cores, mb);
	test_unknown_ioctls(fd);
	test_flags_reserved(fd);
	test_bad_pointers(fd);
	test_process_list(fd);
	test_killed_process(fd);
	test_open_close_storm(fd);
	test_dup_and_fork(fd);
	close(fd);
	return failures ? 1 : 0;
}

static int run_unprivileged(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct neuron_process_info pi;

	check(fd >= 0, "unprivileged.open", "%s: %s", path, strerror(errno));
	if (fd < 0)
		return 1;
	check(find_pid(fd, getpid(), &pi) >= 0 && pi.pid == getpid(),
	      "unprivileged.process_list", "not listed");
	close(fd);
	return failures ? 1 : 0;
}

static int run_eacces(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	check(fd < 0 && errno == EACCES, "outsider.open_eacces",
	      "open gave fd %d errno %d", fd, errno);
	if (fd >= 0)
		close(fd);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "all"))
		return run_all(atoi(argv[2]), atoi(argv[3]), strtoull(argv[4], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "unprivileged"))
		return run_unprivileged(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "eacces"))
		return run_eacces(argv[2]);
	fprintf(stderr, "usage: %s all DEVICES CORES MEMORY_MB | unprivileged DEV | eacces DEV\n",
		argv[0]);
	return 2;
}
