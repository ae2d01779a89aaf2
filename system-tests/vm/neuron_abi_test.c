// SPDX-License-Identifier: GPL-2.0
/*
 * neuron_abi_test: exercises the neuron uapi against the real module.
 * Runs inside scripts/vm-test; prints one "PASS name" or "FAIL name: why"
 * line per check.
 *
 *   neuron_abi_test all DEVICES CORES MEMORY_MB
 *   neuron_abi_test unprivileged DEVICE     (as a member of group neuron)
 *   neuron_abi_test eacces DEVICE           (as a user outside the group)
 *   neuron_abi_test lazy DEVICES MEMORY_MB  (fill every device, touch nothing)
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
#include <time.h>
#include <unistd.h>

#include "uapi/neuron.h"
#include "vm_test.h"


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


/* ---- device memory ---------------------------------------------------- */

static int mem_alloc(int fd, uint64_t size, uint32_t placement, uint32_t *handle,
		     uint64_t *offset)
{
	struct neuron_mem_alloc a = { .size = size, .placement = placement,
				      .core = NEURON_CORE_ANY };
	int r = xioctl(fd, NEURON_IOCTL_MEM_ALLOC, &a);

	if (!r) {
		*handle = a.handle;
		if (offset)
			*offset = a.mmap_offset;
	}
	return r;
}

static int mem_free(int fd, uint32_t handle)
{
	struct neuron_mem_free f = { .handle = handle };

	return xioctl(fd, NEURON_IOCTL_MEM_FREE, &f);
}

static int mem_copy(int fd, unsigned long cmd, uint32_t handle, uint64_t offset,
		    uint64_t length, void *user)
{
	struct neuron_mem_copy c = { .handle = handle, .offset = offset,
				     .length = length, .user_addr = (uintptr_t)user };

	return xioctl(fd, cmd, &c);
}

static int mem_info(int fd, uint32_t handle, struct neuron_mem_info *out)
{
	memset(out, 0, sizeof(*out));
	out->handle = handle;
	return xioctl(fd, NEURON_IOCTL_MEM_INFO, out);
}

static uint64_t device_used(int fd)
{
	struct neuron_device_info dv = { 0 };

	xioctl(fd, NEURON_IOCTL_DEVICE_INFO, &dv);
	return dv.memory_used;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 12));
}

static void test_mem_roundtrip(int fd)
{
	const size_t n = 3 * 4096 + 123;
	uint8_t *in = malloc(n), *out = malloc(n);
	struct neuron_mem_info mi;
	uint32_t h;
	uint64_t off;
	size_t i;
	int zero = 1, setok = 1;

	check(mem_alloc(fd, 5 * 4096, NEURON_MEM_DEVICE, &h, &off) == 0 && h != 0,
	      "mem.alloc", "%s", strerror(errno));
	check(mem_info(fd, h, &mi) == 0 && mi.size == 5 * 4096 && mi.resident_bytes == 0 &&
	      mi.mmap_offset == off && mi.core == NEURON_CORE_ANY,
	      "mem.info_lazy", "size %llu resident %llu", (unsigned long long)mi.size,
	      (unsigned long long)mi.resident_bytes);
	fill_pattern(in, n, 1);
	check(mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, 77, n, in) == 0,
	      "mem.write", "%s", strerror(errno));
	memset(out, 0xee, n);
	check(mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 77, n, out) == 0 && !memcmp(in, out, n),
	      "mem.read_back", "data differs");
	/* Untouched bytes read as zero; only written pages are resident. */
	memset(out, 0xee, 4096);
	mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 4 * 4096, 4096, out);
	for (i = 0; i < 4096; i++)
		zero &= out[i] == 0;
	mem_info(fd, h, &mi);
	check(zero && mi.resident_bytes == 4 * 4096, "mem.untouched_reads_zero",
	      "zero %d resident %llu", zero, (unsigned long long)mi.resident_bytes);

	{
		struct neuron_mem_set ms = { .handle = h, .offset = 4000, .length = 200, .value = 0xab };

		check(xioctl(fd, NEURON_IOCTL_MEM_SET, &ms) == 0, "mem.set", "%s", strerror(errno));
		mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 3990, 220, out);
		for (i = 0; i < 220; i++)
			setok &= out[i] == ((i >= 10 && i < 210) ? 0xab :
					    (3990 + i >= 77 ? in[3990 + i - 77] : 0));
		check(setok, "mem.set_exact_range", "bytes outside the range changed or inside not set");
	}
	check(mem_free(fd, h) == 0, "mem.free", "%s", strerror(errno));
	free(in);
	free(out);
}

static void test_mem_mmap(int fd)
{
	const size_t size = 8 * 4096;
	uint8_t *map, buf[4096];
	uint32_t h;
	uint64_t off;
	int ok;

	mem_alloc(fd, size, NEURON_MEM_DEVICE, &h, &off);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	check(map != MAP_FAILED, "mmap.map", "%s", strerror(errno));
	if (map == MAP_FAILED)
		return;
	fill_pattern(map + 4096, 4096, 9);
	mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 4096, 4096, buf);
	check(!memcmp(buf, map + 4096, 4096), "mmap.write_visible_to_read", "differs");
	fill_pattern(buf, 4096, 3);
	mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, 6 * 4096, 4096, buf);
	check(!memcmp(buf, map + 6 * 4096, 4096), "mmap.write_visible_to_map", "differs");

	/* A second mapping of an inner page range sees the same bytes. */
	{
		uint8_t *inner = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)(off + 6 * 4096));

		ok = inner != MAP_FAILED && !memcmp(inner, buf, 4096);
		check(ok, "mmap.inner_offset", "%s", inner == MAP_FAILED ? strerror(errno) : "differs");
		if (inner != MAP_FAILED)
			munmap(inner, 4096);
	}

	/* Bad maps. */
	errno = 0;
	ok = mmap(NULL, size + 4096, PROT_READ, MAP_SHARED, fd, (off_t)off) == MAP_FAILED &&
	     errno == EINVAL;
	check(ok, "mmap.past_end_einval", "errno %d", errno);
	errno = 0;
	ok = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)(off + size)) == MAP_FAILED &&
	     errno == EINVAL;
	check(ok, "mmap.offset_past_end_einval", "errno %d", errno);
	errno = 0;
	ok = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)(off + 100)) == MAP_FAILED &&
	     errno == EINVAL;
	check(ok, "mmap.unaligned_einval", "errno %d", errno);
	errno = 0;
	ok = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, (off_t)off) == MAP_FAILED &&
	     errno == EINVAL;
	check(ok, "mmap.private_einval", "errno %d", errno);
	errno = 0;
	ok = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)(off + (1ULL << 40))) == MAP_FAILED &&
	     errno == EINVAL;
	check(ok, "mmap.unknown_handle_einval", "errno %d", errno);
	errno = 0;
	ok = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL;
	check(ok, "mmap.handle_zero_einval", "errno %d", errno);

	/* Freed while mapped: the handle is gone, the bytes stay until munmap. */
	{
		uint64_t before = device_used(fd);
		struct neuron_mem_info mi;

		check(mem_free(fd, h) == 0 && mem_info(fd, h, &mi) == -ENOENT,
		      "mmap.free_while_mapped", "free or lookup");
		check(!memcmp(buf, map + 6 * 4096, 4096), "mmap.mapped_after_free_readable", "differs");
		memset(map, 0x5a, 4096);
		check(map[4095] == 0x5a && device_used(fd) == before,
		      "mmap.mapped_after_free_counted", "used %llu, before %llu",
		      (unsigned long long)device_used(fd), (unsigned long long)before);
		munmap(map, size);
		check(device_used(fd) == before - size, "mmap.munmap_releases",
		      "used %llu", (unsigned long long)device_used(fd));
	}
}

static void test_mem_bad_input(int fd, unsigned long long memory_mb)
{
	uint64_t capacity = memory_mb << 20;
	struct neuron_mem_alloc a;
	struct neuron_mem_set ms;
	struct neuron_mem_info mi;
	uint8_t byte = 0;
	uint32_t h, h2;
	int fd2, ok = 1;
	unsigned int i;

	check(mem_alloc(fd, 0, NEURON_MEM_DEVICE, &h, NULL) == -EINVAL, "mem.size_zero_einval", "");
	check(mem_alloc(fd, capacity + 1, NEURON_MEM_DEVICE, &h, NULL) == -ENOMEM,
	      "mem.past_capacity_enomem", "");
	check(mem_alloc(fd, ~0ULL, NEURON_MEM_DEVICE, &h, NULL) == -ENOMEM,
	      "mem.size_max_enomem", "");
	check(mem_alloc(fd, ~0ULL - 100, NEURON_MEM_HOST, &h, NULL) == -ENOMEM,
	      "mem.host_size_max_enomem", "");

	/* Flags, reserved, placement, core, value, pad. */
	memset(&a, 0, sizeof(a));
	a.size = 4096; a.flags = 1;
	ok &= xioctl(fd, NEURON_IOCTL_MEM_ALLOC, &a) == -EINVAL;
	memset(&a, 0, sizeof(a));
	a.size = 4096; a.reserved[1] = 1;
	ok &= xioctl(fd, NEURON_IOCTL_MEM_ALLOC, &a) == -EINVAL;
	memset(&a, 0, sizeof(a));
	a.size = 4096; a.placement = 7;
	ok &= xioctl(fd, NEURON_IOCTL_MEM_ALLOC, &a) == -EINVAL;
	memset(&a, 0, sizeof(a));
	a.size = 4096; a.core = 8;
	ok &= xioctl(fd, NEURON_IOCTL_MEM_ALLOC, &a) == -EINVAL;
	check(ok, "mem.alloc_bad_fields_einval", "");

	mem_alloc(fd, 2 * 4096, NEURON_MEM_DEVICE, &h, NULL);
	ok = 1;
	{
		struct neuron_mem_free f = { .handle = h, .flags = 2 };
		struct neuron_mem_copy c = { .handle = h, .length = 1, .user_addr = (uintptr_t)&byte,
					     .flags = 1 };

		ok &= xioctl(fd, NEURON_IOCTL_MEM_FREE, &f) == -EINVAL;
		ok &= xioctl(fd, NEURON_IOCTL_MEM_WRITE, &c) == -EINVAL;
		ok &= xioctl(fd, NEURON_IOCTL_MEM_READ, &c) == -EINVAL;
		c.flags = 0; c.reserved[0] = 3;
		ok &= xioctl(fd, NEURON_IOCTL_MEM_READ, &c) == -EINVAL;
		memset(&mi, 0, sizeof(mi));
		mi.handle = h; mi.flags = 1;
		ok &= xioctl(fd, NEURON_IOCTL_MEM_INFO, &mi) == -EINVAL;
		memset(&ms, 0, sizeof(ms));
		ms.handle = h; ms.length = 1; ms.value = 256;
		ok &= xioctl(fd, NEURON_IOCTL_MEM_SET, &ms) == -EINVAL;
		ms.value = 1; ms.pad = 1;
		ok &= xioctl(fd, NEURON_IOCTL_MEM_SET, &ms) == -EINVAL;
		ms.pad = 0; ms.flags = 1;
		ok &= xioctl(fd, NEURON_IOCTL_MEM_SET, &ms) == -EINVAL;
	}
	check(ok, "mem.nonzero_flags_einval", "");

	/* Ranges: overflow, past the end; an empty range at the end is fine. */
	ok = mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, ~0ULL - 10, 20, &byte) == -EINVAL &&
	     mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 2 * 4096, 1, &byte) == -EINVAL &&
	     mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 1, 2 * 4096, &byte) == -EINVAL &&
	     mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 0, ~0ULL, &byte) == -EINVAL &&
	     mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 2 * 4096, 0, &byte) == 0;
	memset(&ms, 0, sizeof(ms));
	ms.handle = h; ms.offset = 1ULL << 63; ms.length = 1ULL << 63; ms.value = 1;
	ok &= xioctl(fd, NEURON_IOCTL_MEM_SET, &ms) == -EINVAL;
	check(ok, "mem.range_overflow_einval", "");

	/* Bad user pointers. */
	ok = mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, 0, 4096, NULL) == -EFAULT &&
	     mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 0, 4096, (void *)0xffff888000000000ULL) == -EFAULT;
	{
		/* The second page of the source is unmapped. */
		uint8_t *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		munmap(two + 4096, 4096);
		ok &= mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, 0, 8192, two) == -EFAULT;
		munmap(two, 4096);
	}
	check(ok, "mem.bad_user_pointer_efault", "");

	/* Freed handles, double free, handles never allocated. */
	check(mem_free(fd, h) == 0 && mem_free(fd, h) == -ENOENT, "mem.double_free_enoent", "");
	ok = mem_info(fd, h, &mi) == -ENOENT &&
	     mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 0, 1, &byte) == -ENOENT &&
	     mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, 0, 1, &byte) == -ENOENT &&
	     mem_free(fd, 0) == -ENOENT && mem_free(fd, 0xffffffff) == -ENOENT;
	check(ok, "mem.freed_handle_enoent", "");

	/* Another file's handle is not ours, even with its number. */
	fd2 = open_dev(0);
	ok = mem_alloc(fd2, 4096, NEURON_MEM_DEVICE, &h2, NULL) == 0;
	for (i = 0; i < 4; i++)
		ok &= mem_info(fd, h2 + i, &mi) == -ENOENT;
	{
		uint64_t off2 = (uint64_t)h2 << 40;

		errno = 0;
		ok &= mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)off2) == MAP_FAILED;
		ok &= mem_free(fd, h2) == -ENOENT && mem_info(fd2, h2, &mi) == 0;
	}
	check(ok, "mem.other_files_handle_enoent", "");
	close(fd2);
}

static void test_mem_capacity(int fd, unsigned long long memory_mb)
{
	uint64_t capacity = memory_mb << 20, chunk = capacity / 64;
	uint32_t h[64], big = 0, extra;
	unsigned int i, n = 0;
	int ok = 1;

	for (i = 0; i < 64; i++)
		if (mem_alloc(fd, chunk, NEURON_MEM_DEVICE, &h[n], NULL) == 0)
			n++;
	check(n == 64 && device_used(fd) == capacity, "capacity.fill",
	      "%u of 64 chunks, used %llu", n, (unsigned long long)device_used(fd));
	check(mem_alloc(fd, 4096, NEURON_MEM_DEVICE, &extra, NULL) == -ENOMEM,
	      "capacity.full_enomem", "allocated past capacity");
	/* Host-placed buffers do not take device capacity. */
	ok = mem_alloc(fd, 4096, NEURON_MEM_HOST, &extra, NULL) == 0 && mem_free(fd, extra) == 0;
	check(ok, "capacity.host_placement_separate", "");
	/* Free every other chunk: half the device is free, in 32 pieces. */
	for (i = 0; i < n; i += 2)
		ok &= mem_free(fd, h[i]) == 0;
	check(ok && mem_alloc(fd, capacity / 2, NEURON_MEM_DEVICE, &big, NULL) == 0,
	      "capacity.no_fragmentation", "a buffer of all free bytes failed");
	mem_free(fd, big);
	for (i = 1; i < n; i += 2)
		mem_free(fd, h[i]);
	check(device_used(fd) == 0, "capacity.all_returned", "used %llu",
	      (unsigned long long)device_used(fd));
}

static void test_mem_accounting(int fd)
{
	struct neuron_process_info pi;
	struct neuron_device_info dv = { 0 };
	uint32_t d1, d2, h1;
	char buf[64];
	uint64_t peak;

	mem_alloc(fd, 3 * 4096, NEURON_MEM_DEVICE, &d1, NULL);
	mem_alloc(fd, 5 * 4096, NEURON_MEM_DEVICE, &d2, NULL);
	mem_alloc(fd, 7 * 4096, NEURON_MEM_HOST, &h1, NULL);
	find_pid(fd, getpid(), &pi);
	check(pi.device_memory == 8 * 4096 && pi.host_memory == 7 * 4096,
	      "accounting.process", "device %llu host %llu",
	      (unsigned long long)pi.device_memory, (unsigned long long)pi.host_memory);
	xioctl(fd, NEURON_IOCTL_DEVICE_INFO, &dv);
	read_sysfs(0, "memory_used", buf, sizeof(buf));
	check(dv.memory_used == 8 * 4096 && strtoull(buf, NULL, 10) == 8 * 4096,
	      "accounting.device_and_sysfs", "ioctl %llu sysfs %s",
	      (unsigned long long)dv.memory_used, buf);
	read_sysfs(0, "host_memory_used", buf, sizeof(buf));
	check(strtoull(buf, NULL, 10) == 7 * 4096, "accounting.sysfs_host", "sysfs %s", buf);
	mem_free(fd, d2);
	mem_free(fd, h1);
	find_pid(fd, getpid(), &pi);
	read_sysfs(0, "memory_peak", buf, sizeof(buf));
	peak = strtoull(buf, NULL, 10);
	check(pi.device_memory == 3 * 4096 && pi.host_memory == 0 &&
	      pi.device_memory_peak >= 8 * 4096 && pi.host_memory_peak >= 7 * 4096 &&
	      peak >= 8 * 4096, "accounting.current_and_peak",
	      "device %llu peak %llu host %llu peak %llu sysfs peak %llu",
	      (unsigned long long)pi.device_memory, (unsigned long long)pi.device_memory_peak,
	      (unsigned long long)pi.host_memory, (unsigned long long)pi.host_memory_peak,
	      (unsigned long long)peak);
	mem_free(fd, d1);
}

/* A process holding memory (mapped and not) is killed: all of it returns. */
static void test_mem_killed(int fd)
{
	uint64_t before = device_used(fd);
	int pipefd[2], status, gone = 0, i;
	pid_t child;
	char c;

	if (pipe(pipefd))
		return;
	child = fork();
	if (child == 0) {
		int cfd = open_dev(0);
		uint32_t h;
		uint64_t off;
		uint8_t *map;

		mem_alloc(cfd, 1 << 20, NEURON_MEM_DEVICE, &h, NULL);
		mem_alloc(cfd, 64 * 4096, NEURON_MEM_DEVICE, &h, &off);
		map = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, (off_t)off);
		if (map != MAP_FAILED)
			memset(map, 1, 64 * 4096);
		mem_alloc(cfd, 4096, NEURON_MEM_HOST, &h, NULL);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(pipefd[0], &c, 1) != 1)
		c = 0;
	check(device_used(fd) == before + (1 << 20) + 64 * 4096, "mem_killed.counted",
	      "used %llu", (unsigned long long)device_used(fd));
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	for (i = 0; i < 100 && !gone; i++) {
		gone = device_used(fd) == before;
		if (!gone)
			usleep(10000);
	}
	check(gone, "mem_killed.all_returned", "used %llu, before %llu",
	      (unsigned long long)device_used(fd), (unsigned long long)before);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* A mapping inherited by fork keeps the buffer after the parent lets go. */
static void test_mem_fork_mapping(int fd)
{
	uint64_t before = device_used(fd);
	uint32_t h;
	uint64_t off;
	uint8_t *map;
	int status, sync_pipe[2];
	pid_t child;
	char c;

	mem_alloc(fd, 4 * 4096, NEURON_MEM_DEVICE, &h, &off);
	map = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (map == MAP_FAILED || pipe(sync_pipe))
		return;
	memset(map, 0x42, 4 * 4096);
	child = fork();
	if (child == 0) {
		if (read(sync_pipe[0], &c, 1) != 1)
			_exit(2);
		_exit(map[3 * 4096 + 5] == 0x42 ? 0 : 1);
	}
	mem_free(fd, h);
	munmap(map, 4 * 4096);
	if (write(sync_pipe[1], "x", 1) != 1)
		c = 0;
	waitpid(child, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "mem_fork.child_mapping_survives",
	      "status %d", status);
	check(device_used(fd) == before, "mem_fork.returned_after_child", "used %llu",
	      (unsigned long long)device_used(fd));
	close(sync_pipe[0]);
	close(sync_pipe[1]);
}

/* Copies of 64 KiB and more take the pinned SIMD path: odd offsets on both
 * sides, zeros from unwritten pages, faults part way. */
static void test_mem_large(int fd)
{
	const size_t n = (1 << 20) + 4099;
	uint8_t *in = malloc(n + 64), *out = malloc(n + 64), *two;
	uint32_t h;
	size_t i;
	int zero = 1;

	check(mem_alloc(fd, 3 << 20, NEURON_MEM_DEVICE, &h, NULL) == 0, "mem_large.alloc", "");
	fill_pattern(in + 3, n, 5);
	check(mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, 1234567, n, in + 3) == 0,
	      "mem_large.write_unaligned", "%s", strerror(errno));
	memset(out, 0xcc, n + 64);
	check(mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 1234567, n, out + 7) == 0 &&
	      !memcmp(in + 3, out + 7, n) && out[6] == 0xcc && out[7 + n] == 0xcc,
	      "mem_large.read_unaligned_exact", "data differs or bytes outside written");
	/* Small reads agree with the large write, byte for byte. */
	check(mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 1234567 + 70000, 100, out) == 0 &&
	      !memcmp(out, in + 3 + 70000, 100), "mem_large.small_read_agrees", "differs");
	/* The first MiB was never written: a large read gives zeros. */
	memset(out, 0xcc, 1 << 20);
	mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 0, 1 << 20, out);
	for (i = 0; i < 1234567 && i < (1 << 20); i++)
		zero &= out[i] == 0;
	check(zero, "mem_large.unwritten_reads_zero", "nonzero byte");
	/* A source that ends in an unmapped page faults cleanly. */
	two = mmap(NULL, 256 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(two + 192 * 1024, 64 * 1024);
	check(mem_copy(fd, NEURON_IOCTL_MEM_WRITE, h, 0, 256 * 1024, two) == -EFAULT &&
	      mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 0, 256 * 1024, two) == -EFAULT,
	      "mem_large.partial_fault_efault", "");
	/* Into a read-only destination: EFAULT, never a write. */
	mprotect(two, 192 * 1024, PROT_READ);
	check(mem_copy(fd, NEURON_IOCTL_MEM_READ, h, 0, 128 * 1024, two) == -EFAULT,
	      "mem_large.readonly_destination_efault", "");
	munmap(two, 192 * 1024);
	mem_free(fd, h);
	free(in);
	free(out);
}

static void test_memory(int fd, unsigned long long memory_mb)
{
	test_mem_roundtrip(fd);
	test_mem_large(fd);
	test_mem_mmap(fd);
	test_mem_bad_input(fd, memory_mb);
	test_mem_capacity(fd, memory_mb);
	test_mem_accounting(fd);
	test_mem_killed(fd);
	test_mem_fork_mapping(fd);
}

static long meminfo_kb(const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

/* Fill every device with one buffer of its whole size, touching nothing. */
static int run_lazy(unsigned int devices, unsigned long long memory_mb)
{
	long before, after;
	unsigned int i, ok = 0;
	int fds[16];

	before = meminfo_kb("MemAvailable:");
	for (i = 0; i < devices && i < 16; i++) {
		uint32_t h;

		fds[i] = open_dev(i);
		ok += mem_alloc(fds[i], memory_mb << 20, NEURON_MEM_DEVICE, &h, NULL) == 0;
	}
	after = meminfo_kb("MemAvailable:");
	printf("# %u x %llu MiB allocated, MemAvailable %ld -> %ld kB\n", ok, memory_mb,
	       before, after);
	check(ok == devices, "lazy.all_allocated", "%u of %u", ok, devices);
	check(before - after < 64 * 1024, "lazy.host_cost_under_64mib",
	      "host memory fell by %ld kB", before - after);
	for (i = 0; i < devices && i < 16; i++)
		close(fds[i]);
	return failures ? 1 : 0;
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
	test_memory(fd, mb);
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

static long long mem_available_kb(void)
{
	char line[128];
	long long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/*
 * Run as a member of group neuron: commit twice the host's memory of a
 * device that has it (found by fuzzing: MEM_SET over 2 GiB pushed a
 * 1 GiB host into a global OOM that killed root's udevd first). The
 * commit is refused with ENOMEM, a mapping that goes on faults with
 * SIGBUS, nobody is killed, and everything comes back.
 */
static int run_overcommit(const char *path)
{
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE), size = 2 * ram;
	long long before = mem_available_kb();
	int fd = open(path, O_RDWR | O_CLOEXEC), st = 0;
	uint32_t h = 0;
	uint64_t off = 0;
	pid_t pid;

	if (fd < 0) {
		check(0, "overcommit.open", "%s", strerror(errno));
		return 1;
	}
	check(mem_alloc(fd, size, NEURON_MEM_DEVICE, &h, &off) == 0, "overcommit.alloc",
	      "a buffer of %llu MiB refused", (unsigned long long)(size >> 20));
	{
		struct neuron_mem_set m = { .handle = h, .length = size, .value = 1 };

		check(xioctl(fd, NEURON_IOCTL_MEM_SET, &m) == -ENOMEM, "overcommit.mem_set_enomem",
		      "a memset of twice the host's memory did not fail with ENOMEM");
	}
	check(mem_available_kb() > before / 32, "overcommit.reserve_kept", "MemAvailable %lld kB",
	      mem_available_kb());
	pid = fork();
	if (pid == 0) {
		volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
		uint64_t i;

		if (p == MAP_FAILED)
			_exit(3);
		for (i = 0; i < size; i += 4096)
			p[i] = 1;
		_exit(0);
	}
	waitpid(pid, &st, 0);
	check(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "overcommit.mapping_sigbus",
	      "the child ended with status 0x%x", st);
	{
		struct timespec t0, t1;
		int freed;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		freed = mem_free(fd, h);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		check(freed == 0, "overcommit.free", "free failed");
		printf("# returning the committed pages took %.1f s\n",
		       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	close(fd);
	check(mem_available_kb() > before - 65536, "overcommit.memory_back",
	      "MemAvailable %lld kB, was %lld", mem_available_kb(), before);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "overcommit"))
		return run_overcommit(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "all"))
		return run_all(atoi(argv[2]), atoi(argv[3]), strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "lazy"))
		return run_lazy(atoi(argv[2]), strtoull(argv[3], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "unprivileged"))
		return run_unprivileged(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "eacces"))
		return run_eacces(argv[2]);
	fprintf(stderr, "usage: %s all DEVICES CORES MEMORY_MB | unprivileged DEV | eacces DEV | overcommit DEV\n",
		argv[0]);
	return 2;
}
