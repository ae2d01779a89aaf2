// SPDX-License-Identifier: GPL-2.0
/*
 * neuron_fault_test: every allocation, page and user copy the driver makes
 * on its open, ioctl, mmap and job paths fails once. For each operation,
 * /proc/thread-self/fail-nth makes its 1st, 2nd, 3rd, ... fault-injectable
 * call fail (slab, page allocator, user copies: failslab, fail_page_alloc
 * and fail_usercopy of the debug kernel), until the operation runs
 * through without reaching the next one. Each time the caller must get a
 * clean error or a success, the device's memory accounting must come back,
 * and the same operation must then work. Leaks are kmemleak's to find
 * (vm-run scans when the guest stops).
 *
 * Needs CONFIG_FAULT_INJECTION (scripts/vm-run --debug-kernel); prints
 * "SKIP" elsewhere. Runs as root with fake_devices=2.
 *
 *   neuron_fault_test
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "vm_queue.h"

static int fail_nth_fd = -1;
static int jobs_broken;

static void write_file(const char *path, const char *value)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(value, f);
		fclose(f);
	}
}

/* The next @n-th fault-injectable call of this thread fails (0: none). */
static void arm(int n)
{
	char s[16];
	int len = snprintf(s, sizeof(s), "%d", n);

	if (pwrite(fail_nth_fd, s, (size_t)len, 0) != len &&
	    pwrite(fail_nth_fd, s, (size_t)len, 0) != len) {
		printf("FAIL fault.arm: writing %s to fail-nth: %s\n", s, strerror(errno));
		exit(1);
	}
}

/*
 * Was the armed fault injected in the operation? Then the counter reads 0.
 * When the operation reached fewer fault sites than armed, this read's own
 * copy to user space may be the one that fails: not the operation's.
 */
static int injected(void)
{
	char s[16] = "";
	int hit;

	if (pread(fail_nth_fd, s, sizeof(s) - 1, 0) < 0) {
		arm(0);
		return 0;
	}
	hit = atoi(s) == 0;
	arm(0);
	return hit;
}

static sigjmp_buf bus;
static volatile sig_atomic_t in_touch;

static void on_sigbus(int sig)
{
	if (in_touch)
		siglongjmp(bus, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Each operation: its setup (never injected), the operation, cleanup. */
struct ctx {
	int fd;
	uint32_t h;
	uint64_t seq;
	void *map;		/* unmapped in the cleanup, where nothing fails */
};

static int op_open(struct ctx *c, int phase)
{
	if (phase == 1) {
		c->fd = open("/dev/neuron0", O_RDWR | O_CLOEXEC);
		return c->fd < 0 ? -errno : 0;
	}
	if (phase == 2 && c->fd >= 0)
		close(c->fd);
	return 0;
}

static int op_alloc(struct ctx *c, int phase)
{
	struct neuron_mem_alloc a = { .size = 3 * 4096 + 5, .core = NEURON_CORE_ANY };
	int ret;

	if (phase == 0) {
		c->fd = open_dev(0);
		return 0;
	}
	if (phase == 1) {
		ret = xioctl(c->fd, NEURON_IOCTL_MEM_ALLOC, &a);
		c->h = a.handle;
		return ret;
	}
	close(c->fd);
	return 0;
}

/* A file with a buffer of 4 pages; phase 1 runs @op on it. */
static int with_buffer(struct ctx *c, int phase, int (*op)(struct ctx *))
{
	if (phase == 0) {
		c->fd = open_dev(0);
		c->h = alloc(c->fd, 4 * 4096);
		reserve(c->fd, 0x1, NULL);
		return 0;
	}
	if (phase == 1)
		return op(c);
	if (c->map)
		munmap(c->map, 4 * 4096);
	if (c->seq) {
		struct neuron_job_wait w = { 0 };

		/* A job the driver took runs, whatever failed on the way. */
		if (wait_job(c->fd, 0, c->seq, 20000, &w) || w.status != NEURON_JOB_OK) {
			printf("# a job submitted under fault injection ended with status %u\n",
			       w.status);
			jobs_broken++;
		}
	}
	close(c->fd);
	return 0;
}

static int do_write(struct ctx *c)
{
	static uint8_t data[3 * 4096];

	return mem_rw(c->fd, c->h, 100, data, sizeof(data), 1);
}

static int do_read(struct ctx *c)
{
	static uint8_t data[3 * 4096];

	return mem_rw(c->fd, c->h, 100, data, sizeof(data), 0);
}

static int do_set(struct ctx *c)
{
	struct neuron_mem_set s = { .handle = c->h, .length = 4 * 4096, .value = 7 };

	return xioctl(c->fd, NEURON_IOCTL_MEM_SET, &s);
}

static int do_free(struct ctx *c)
{
	struct neuron_mem_free f = { .handle = c->h };

	return xioctl(c->fd, NEURON_IOCTL_MEM_FREE, &f);
}

static int do_mmap(struct ctx *c)
{
	struct neuron_mem_info i = { .handle = c->h };
	volatile uint8_t *p;
	int ret = 0;

	if (xioctl(c->fd, NEURON_IOCTL_MEM_INFO, &i))
		return -errno;
	p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, (off_t)i.mmap_offset);
	if (p == MAP_FAILED)
		return -errno;
	c->map = (void *)p;
	in_touch = 1;
	if (!sigsetjmp(bus, 1)) {
		p[0] = 1;
		p[3 * 4096] = 2;
	} else {
		ret = -EFAULT;
	}
	in_touch = 0;
	return ret;
}

static int do_process_list(struct ctx *c)
{
	struct neuron_process_info e[4];
	struct neuron_process_list l = {
		.entry_size = sizeof(e[0]), .capacity = 4, .entries = (uintptr_t)e,
	};

	return xioctl(c->fd, NEURON_IOCTL_PROCESS_LIST, &l);
}

static int do_reserve(struct ctx *c)
{
	/* A core never reserved before on this load: the thread and scratch. */
	return reserve(c->fd, 0x8, NULL);
}

/* A job over the buffer: the program's copy, the job, the kernel mapping. */
static int do_submit(struct ctx *c)
{
	uint32_t slots[1] = { c->h };
	struct prog p;
	uint64_t seq = 0;
	int ret;

	prog_init(&p);
	prog_insn(&p, NEURON_OP_FILL, 0)->operand[0] = prog_vec(&p, 0, 0, 4096, NEURON_DT_F32);
	p.i[0].fparam[0] = 2.0f;
	ret = submit(c->fd, 0, &p, slots, 1, &seq);
	if (!ret)
		c->seq = seq;
	return ret;
}

struct op {
	const char *name;
	int (*plain)(struct ctx *, int);
	int (*inner)(struct ctx *);
};

static int run_phase(const struct op *o, struct ctx *c, int phase)
{
	return o->plain ? o->plain(c, phase) : with_buffer(c, phase, o->inner);
}

int main(void)
{
	static const struct op opsv[] = {
		{ "open", op_open, NULL },
		{ "mem_alloc", op_alloc, NULL },
		{ "mem_write", NULL, do_write },
		{ "mem_read", NULL, do_read },
		{ "mem_set", NULL, do_set },
		{ "mem_free", NULL, do_free },
		{ "mmap_fault", NULL, do_mmap },
		{ "process_list", NULL, do_process_list },
		{ "core_reserve_first", NULL, do_reserve },
		{ "job_submit", NULL, do_submit },
	};
	long long used0 = sysfs_ll("memory_used");
	unsigned int i, total = 0;

	fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (fail_nth_fd < 0) {
		printf("SKIP fault injection: no /proc/thread-self/fail-nth (not the debug kernel)\n");
		return 0;
	}
	/* Sleeping and highmem allocations too, and no stack dump per fault. */
	write_file("/sys/kernel/debug/failslab/ignore-gfp-wait", "N");
	write_file("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N");
	write_file("/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N");
	write_file("/sys/kernel/debug/fail_page_alloc/min-order", "0");
	write_file("/sys/kernel/debug/failslab/verbose", "0");
	write_file("/sys/kernel/debug/fail_page_alloc/verbose", "0");
	write_file("/sys/kernel/debug/fail_usercopy/verbose", "0");
	signal(SIGBUS, on_sigbus);
	/* This process's own pages are all there before any fault is armed:
	 * the failures are the driver's paths', not this test's page faults. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		printf("# mlockall: %s\n", strerror(errno));

	for (i = 0; i < sizeof(opsv) / sizeof(opsv[0]); i++) {
		const struct op *o = &opsv[i];
		int n, sites = 0, errors = 0, broken = 0, ret;

		for (n = 1; n < 500; n++) {
			struct ctx c = { .fd = -1 };
			int hit;

			run_phase(o, &c, 0);
			arm(n);
			ret = run_phase(o, &c, 1);
			hit = injected();
			run_phase(o, &c, 2);
			if (!hit)
				break;
			sites++;
			if (ret)
				errors++;
			if (ret && ret != -ENOMEM && ret != -EFAULT && ret != -EIO && ret != -ENOSPC &&
			    ret != -EAGAIN && ret != -EINTR) {
				printf("# %s: fault %d gave %d (%s)\n", o->name, n, ret, strerror(-ret));
				broken++;
			}
			if (sysfs_ll("memory_used") != used0) {
				printf("# %s: fault %d left memory_used %lld, was %lld\n", o->name, n,
				       sysfs_ll("memory_used"), used0);
				broken++;
			}
		}
		{
			struct ctx c = { .fd = -1 };

			run_phase(o, &c, 0);
			ret = run_phase(o, &c, 1);
			run_phase(o, &c, 2);
		}
		char name[64];

		snprintf(name, sizeof(name), "fault.%s", o->name);
		check(!broken && !ret && n < 500, name, "%d faults mishandled, then %d", broken, ret);
		printf("# fault injection: %s: %d sites failed (%d reported an error)\n", o->name, sites,
		       errors);
		total += (unsigned int)sites;
	}
	check(!jobs_broken, "fault.jobs_run", "%d jobs the driver took did not run", jobs_broken);
	printf("# fault injection: %u failure sites reached\n", total);
	check(total > 0, "fault.sites_reached", "no fault was injected");
	return failures ? 1 : 0;
}
