// SPDX-License-Identifier: GPL-2.0
/*
 * neuron_ioctl_fuzz: random operation sequences against /dev/neuronN, the
 * way syzkaller works: mostly-valid arguments built from earlier results
 * (handles, sizes, offsets, cores, sequence numbers), boundary values and
 * random bytes; mmaps and munmaps at random offsets and protections;
 * files closed and reopened; forked children that share the files and are
 * killed at random points; generated and mutated ISA programs over every
 * opcode, with dependencies and semaphores. Compute jobs the driver
 * accepts are run again by the engine in this process (the same C
 * source, built for user space) on copies of their buffers, and every
 * bound buffer must come back with the same bits; a program the driver
 * refuses must be refused here with the same error and index.
 *
 *   neuron_ioctl_fuzz [--seed N] [--seconds N] [--devices N]
 *
 * Deterministic for a seed (up to the kernel's scheduling of children and
 * jobs). Prints "PASS ioctl_fuzz..." with operation counts, or "FAIL
 * ioctl_fuzz..." with the seed and the last operations. The kernel side
 * (oops, WARN, lockdep, KASAN) is judged by whoever runs it (vm-run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uapi/neuron.h"
#include "uapi/neuron_isa.h"
#include "neuron_engine.h"

/* --- randomness and the record of what was done ------------------------- */

static uint64_t rng_state, seed;

static uint64_t rnd64(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint32_t rnd(uint32_t n)
{
	return n ? (uint32_t)(rnd64() % n) : 0;
}

static int chance(int percent)
{
	return (int)rnd(100) < percent;
}

#define LOG_LINES 48
static char oplog[LOG_LINES][160];
static unsigned long ops;

static void logop(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(oplog[ops % LOG_LINES], sizeof(oplog[0]), fmt, ap);
	va_end(ap);
	ops++;
}

static void fail(const char *fmt, ...)
{
	unsigned long i, first = ops > LOG_LINES ? ops - LOG_LINES : 0;
	va_list ap;

	printf("FAIL ioctl_fuzz: seed %llu, operation %lu: ", (unsigned long long)seed, ops);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n# the last operations:\n");
	for (i = first; i < ops; i++)
		printf("#  %6lu %s\n", i, oplog[i % LOG_LINES]);
	fflush(stdout);
	exit(1);
}

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* --- what the files hold ---------------------------------------------- */

#define NFILES	3
#define NBUFS	12
#define NCORES	8

struct buf {
	uint32_t handle;
	uint64_t size;
	uint64_t mmap_offset;
};

struct file {
	int fd;
	struct buf bufs[NBUFS];
	int nbufs;
	uint32_t held;
	uint64_t seq[NCORES];
	int shared;		/* a child had it: its records may be stale */
};

static struct file files[NFILES];
static int devices = 1;
static unsigned int cores = 4;

static struct {
	unsigned long opened, ioctls, refused, mapped, sigbus, submitted, refused_programs,
		compared, faulted, forks, killed, garbage;
} count;

static uint8_t scratch_io[1 << 16];
static sigjmp_buf fault_jump;
static volatile sig_atomic_t in_touch;

static void on_alarm(int sig)
{
	(void)sig;
	fail("no progress: an operation has not returned for two minutes");
}

static void on_sigbus(int sig)
{
	if (in_touch)
		siglongjmp(fault_jump, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static struct file *pick_file(void)
{
	return &files[rnd(NFILES)];
}

static struct buf *pick_buf(struct file *f)
{
	return f->nbufs ? &f->bufs[rnd(f->nbufs)] : NULL;
}

static void file_reset(struct file *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

static void op_open(struct file *f)
{
	char path[32];

	if (f->fd >= 0) {
		logop("close fd %d", f->fd);
		close(f->fd);
		file_reset(f);
		return;
	}
	snprintf(path, sizeof(path), "/dev/neuron%u", rnd(devices));
	f->fd = open(path, O_RDWR | O_CLOEXEC);
	logop("open %s = %d", path, f->fd);
	if (f->fd < 0)
		fail("open %s: %s", path, strerror(errno));
	count.opened++;
}

/* A size: small, page-sized, odd, huge or zero. */
static uint64_t pick_size(void)
{
	switch (rnd(8)) {
	case 0: return 1 + rnd(64);
	case 1: return 4096ull * (1 + rnd(16));
	case 2: return 1 + rnd(1 << 16);
	case 3: return rnd(3) ? 65536 : 0;
	case 4: return 1ull << (30 + rnd(14));	/* past capacity, lazily */
	default: return 256 + rnd(16384);
	}
}

static void op_alloc(struct file *f)
{
	struct neuron_mem_alloc a = {
		.size = pick_size(),
		.placement = chance(85) ? NEURON_MEM_DEVICE : chance(80) ? NEURON_MEM_HOST : rnd64(),
		.core = chance(80) ? NEURON_CORE_ANY : rnd(10),
		.flags = chance(95) ? 0 : rnd64(),
	};
	int ret = xioctl(f->fd, NEURON_IOCTL_MEM_ALLOC, &a);

	logop("alloc fd %d size %llu placement %u core %u = %d handle %u", f->fd,
	      (unsigned long long)a.size, a.placement, a.core, ret, a.handle);
	count.ioctls++;
	if (ret) {
		count.refused++;
		return;
	}
	if (f->nbufs < NBUFS) {
		f->bufs[f->nbufs++] = (struct buf){ a.handle, (a.size + 4095) & ~4095ull,
						    a.mmap_offset };
	} else {
		struct neuron_mem_free fr = { .handle = a.handle };

		xioctl(f->fd, NEURON_IOCTL_MEM_FREE, &fr);
	}
}

static void op_free(struct file *f)
{
	struct buf *b = pick_buf(f);
	struct neuron_mem_free fr = { .handle = b && chance(90) ? b->handle : (uint32_t)rnd64() };
	int ret = xioctl(f->fd, NEURON_IOCTL_MEM_FREE, &fr);

	logop("free fd %d handle %u = %d", f->fd, fr.handle, ret);
	count.ioctls++;
	if (b && fr.handle == b->handle) {
		if (ret && !f->shared)
			fail("freeing live handle %u: %d", b->handle, ret);
		*b = f->bufs[--f->nbufs];
	}
}

/* An offset and length mostly inside @size, sometimes across or past it. */
static void pick_range(uint64_t size, uint64_t *off, uint64_t *len)
{
	uint64_t max = sizeof(scratch_io);

	*off = size ? rnd64() % size : 0;
	*len = 1 + rnd64() % max;
	if (chance(10))
		*off = size - rnd(64);
	if (chance(5))
		*off = rnd64();
	if (chance(5))
		*len = rnd64();
}

static void op_copy(struct file *f)
{
	struct buf *b = pick_buf(f);
	unsigned long cmd = rnd(3) == 0 ? NEURON_IOCTL_MEM_WRITE : rnd(2) ?
			    NEURON_IOCTL_MEM_READ : NEURON_IOCTL_MEM_SET;
	uint64_t off, len;
	int ret;

	pick_range(b ? b->size : 4096, &off, &len);
	if (cmd == NEURON_IOCTL_MEM_SET) {
		struct neuron_mem_set s = {
			.handle = b ? b->handle : rnd(4), .offset = off, .length = len,
			.value = chance(95) ? rnd(256) : rnd64(),
		};

		ret = xioctl(f->fd, cmd, &s);
	} else {
		struct neuron_mem_copy c = {
			.handle = b ? b->handle : rnd(4), .offset = off,
			.length = len > sizeof(scratch_io) && chance(90) ? sizeof(scratch_io) : len,
			.user_addr = chance(95) ? (uintptr_t)scratch_io : rnd(3) ? 0 : rnd64(),
		};

		if (cmd == NEURON_IOCTL_MEM_WRITE)
			for (size_t i = 0; i < 64; i++)
				scratch_io[rnd(sizeof(scratch_io))] = (uint8_t)rnd64();
		ret = xioctl(f->fd, cmd, &c);
	}
	logop("%s fd %d handle %u off %llu len %llu = %d", cmd == NEURON_IOCTL_MEM_SET ? "set" :
	      cmd == NEURON_IOCTL_MEM_WRITE ? "write" : "read", f->fd, b ? b->handle : 0,
	      (unsigned long long)off, (unsigned long long)len, ret);
	count.ioctls++;
	if (ret)
		count.refused++;
}

static void op_mmap(struct file *f)
{
	struct buf *b = pick_buf(f);
	uint64_t pages = b ? b->size / 4096 : 1, first = rnd64() % (pages + 2);
	size_t len = 4096 * (1 + rnd(8));
	volatile int prot = rnd(4) == 0 ? PROT_READ : rnd(4) == 0 ? PROT_WRITE : PROT_READ | PROT_WRITE;
	int flags = chance(90) ? MAP_SHARED : MAP_PRIVATE;
	off_t off = (off_t)((b ? b->mmap_offset : rnd64() & ~4095ull) + first * 4096);
	volatile uint8_t *p;

	if (chance(5))
		off = (off_t)(rnd64() & ~4095ull);
	p = mmap(NULL, len, prot, flags, f->fd, off);
	logop("mmap fd %d off 0x%llx len %zu prot %d flags %d = %p", f->fd,
	      (unsigned long long)off, len, prot, flags, (void *)p);
	if (p == MAP_FAILED)
		return;
	count.mapped++;
	in_touch = 1;
	if (!sigsetjmp(fault_jump, 1)) {
		size_t at = rnd(len);

		if (prot & PROT_WRITE)
			p[at] = (uint8_t)rnd64();
		else
			(void)p[at];
	} else {
		count.sigbus++;
	}
	in_touch = 0;
	munmap((void *)p, len);
}

static void op_cores(struct file *f)
{
	struct neuron_core_reserve r = {
		.core_mask = chance(90) ? 1u << rnd(cores) | (chance(30) ? 1u << rnd(cores) : 0) :
			     (uint32_t)rnd64(),
		.flags = chance(97) ? 0 : 1,
	};
	int release = chance(30), ret;

	ret = xioctl(f->fd, release ? NEURON_IOCTL_CORE_RELEASE : NEURON_IOCTL_CORE_RESERVE, &r);
	logop("%s fd %d mask 0x%x = %d held 0x%x", release ? "release" : "reserve", f->fd,
	      r.core_mask, ret, r.held_mask);
	count.ioctls++;
	if (ret == 0 || ret == -EBUSY || ret == -EINVAL)
		f->held = r.held_mask;
	if (ret)
		count.refused++;
	if (ret == 0 && release)
		memset(f->seq, 0, sizeof(f->seq));
}

static void op_info(struct file *f)
{
	struct neuron_process_info e[4];
	union {
		struct neuron_driver_info d;
		struct neuron_device_info v;
		struct neuron_queue_info q;
		struct neuron_process_list l;
	} u;
	int which = rnd(5), ret;

	memset(&u, 0, sizeof(u));
	switch (which) {
	case 0:
		ret = xioctl(f->fd, NEURON_IOCTL_DRIVER_INFO, &u.d);
		if (ret)
			fail("DRIVER_INFO: %d", ret);
		break;
	case 1:
		ret = xioctl(f->fd, NEURON_IOCTL_DEVICE_INFO, &u.v);
		break;
	case 2:
		u.q.core = chance(90) ? rnd(cores) : (uint32_t)rnd64();
		ret = xioctl(f->fd, NEURON_IOCTL_QUEUE_INFO, &u.q);
		break;
	case 3:
		u.l.capacity = rnd(6);
		u.l.entry_size = chance(85) ? sizeof(e[0]) : rnd(512);
		u.l.entries = chance(95) ? (uintptr_t)e : rnd64();
		if (u.l.capacity > 4 && u.l.entry_size <= sizeof(e[0]))
			u.l.capacity = 4;
		if ((uint64_t)u.l.capacity * u.l.entry_size > sizeof(e))
			u.l.entries = (uintptr_t)scratch_io;
		ret = xioctl(f->fd, NEURON_IOCTL_PROCESS_LIST, &u.l);
		break;
	default: {
		struct pollfd p = { .fd = f->fd, .events = POLLIN | POLLOUT };

		ret = poll(&p, 1, 0) < 0 ? -errno : 0;
	}
	}
	logop("info %d fd %d = %d", which, f->fd, ret);
	count.ioctls++;
}

/* Any command number, any bytes: never a crash, never a hang. */
static void op_garbage(struct file *f)
{
	uint8_t arg[512];
	unsigned long cmd;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(arg); i++)
		arg[i] = (uint8_t)rnd64();
	switch (rnd(3)) {
	case 0:
		cmd = (uint32_t)rnd64();
		break;
	case 1:	/* the driver's type, any number, size and direction */
		cmd = _IOC(rnd(4), NEURON_IOCTL_TYPE, rnd(64), rnd(600));
		break;
	default: /* a real command with random bytes */
		cmd = (unsigned long[]){ NEURON_IOCTL_MEM_ALLOC, NEURON_IOCTL_MEM_WRITE,
			NEURON_IOCTL_MEM_SET, NEURON_IOCTL_CORE_RESERVE, NEURON_IOCTL_JOB_WAIT,
			NEURON_IOCTL_PROCESS_LIST, NEURON_IOCTL_QUEUE_INFO }[rnd(7)];
		if (cmd == NEURON_IOCTL_JOB_WAIT)	/* keep its wait short */
			((struct neuron_job_wait *)arg)->timeout_ms = rnd(20);
		if (cmd == NEURON_IOCTL_MEM_SET || cmd == NEURON_IOCTL_MEM_WRITE)
			((struct neuron_mem_copy *)arg)->length &= 0xfffff;
		break;
	}
	ret = xioctl(f->fd, cmd, chance(90) ? arg : (void *)(uintptr_t)rnd64());
	logop("garbage fd %d cmd 0x%lx = %d", f->fd, cmd, ret);
	count.garbage++;
}

/* --- programs ------------------------------------------------------------ */

struct prog {
	struct neuron_program_header h;
	struct neuron_tensor_desc d[16];
	struct neuron_insn i[8];
};

static uint64_t image[(sizeof(struct prog) + 7) / 8 + 1];

static size_t prog_image(const struct prog *p)
{
	size_t dn = p->h.desc_count * sizeof(p->d[0]), in = p->h.insn_count * sizeof(p->i[0]);

	memcpy(image, &p->h, sizeof(p->h));
	memcpy((char *)image + sizeof(p->h), p->d, dn);
	memcpy((char *)image + sizeof(p->h) + dn, p->i, in);
	return sizeof(p->h) + dn + in;
}

/* Any element type, and now and then one the ISA has not. */
static uint8_t any_dtype(void)
{
	return (uint8_t)(chance(98) ? 1 + rnd(NEURON_DT_COUNT - 1) : rnd(256));
}

/* A tensor of @rank dims in slot @slot of @bytes bytes, mostly inside it. */
static uint32_t gen_desc(struct prog *p, uint32_t slot, uint64_t bytes, uint32_t rank,
			 const uint32_t *dims, uint8_t dtype)
{
	struct neuron_tensor_desc *d = &p->d[p->h.desc_count];
	/* 4 bytes for a dtype the ISA has not */
	uint64_t stride = 1, elems = 1, esize = neuron_dtype_size(dtype) ? neuron_dtype_size(dtype) : 4;
	int i;

	memset(d, 0, sizeof(*d));
	d->slot = (uint16_t)slot;
	d->dtype = dtype;
	d->rank = (uint8_t)rank;
	for (i = (int)rank - 1; i >= 0; i--) {
		d->dims[i] = dims[i];
		d->strides[i] = chance(8) ? 0 : stride;
		stride *= dims[i];
		elems *= dims[i];
	}
	if (bytes / esize > elems)
		d->offset = rnd64() % (bytes / esize - elems + 1);
	return p->h.desc_count++;
}

/* The same in a random one of the @nslots bound slots. */
static uint32_t gen_op(struct prog *p, uint32_t nslots, const uint64_t *sizes, uint32_t rank,
		       const uint32_t *dims, uint8_t dtype)
{
	uint32_t slot = rnd(nslots);

	return gen_desc(p, slot, sizes[slot], rank, dims, dtype);
}

static uint32_t dim(void)
{
	return chance(97) ? 1 + rnd(chance(80) ? 6 : 40) : (uint32_t)rnd64();
}

/*
 * One random instruction with operands over the bound slots. Shapes are
 * made to agree most of the time, so that most programs get past the
 * validator and run.
 */
static void gen_insn(struct prog *p, uint32_t nslots, const uint64_t *sizes, int sync)
{
	struct neuron_insn *in = &p->i[p->h.insn_count++];
	uint32_t op = sync && chance(20) ? NEURON_OP_SEM_SIGNAL + rnd(3) :
		      chance(90) ? rnd(NEURON_OP_SEM_SIGNAL) :
		      chance(70) ? NEURON_OP_COMPARE + rnd(NEURON_OP_COUNT - NEURON_OP_COMPARE) : rnd(256);
	uint32_t r = 1 + rnd(chance(80) ? 3 : 4), dims[NEURON_MAX_RANK], i;
	uint32_t m = dim(), n = dim(), k = dim();
	uint8_t dt = chance(80) ? NEURON_DT_F32 : any_dtype();

	memset(in, 0, sizeof(*in));
	in->opcode = (uint8_t)op;
	for (i = 0; i < NEURON_MAX_RANK; i++)
		dims[i] = dim();
	switch (op) {
	case NEURON_OP_FILL:
		in->operand[0] = gen_op(p, nslots, sizes, r, dims, dt);
		in->fparam[0] = (float)(int)rnd(200) / 7.0f;
		break;
	case NEURON_OP_COPY:
	case NEURON_OP_UNARY:
	case NEURON_OP_CAST:
	case NEURON_OP_SOFTMAX:
	case NEURON_OP_REDUCE:
		in->sub = (uint8_t)(op == NEURON_OP_UNARY ? rnd(NEURON_UN_COUNT) :
				    op == NEURON_OP_REDUCE ? rnd(NEURON_RED_COUNT) : 0);
		if (op == NEURON_OP_UNARY && in->sub == NEURON_UN_LEAKY_RELU)
			in->fparam[0] = 0.125f;
		in->operand[1] = gen_op(p, nslots, sizes, r, dims, dt);
		if (op == NEURON_OP_REDUCE)
			dims[r - 1] = 1;
		if (op == NEURON_OP_REDUCE && (in->sub == NEURON_RED_ARGMAX ||
					       in->sub == NEURON_RED_ARGMIN)) {
			in->flags = rnd(2) ? NEURON_REDUCE_LAST_INDEX : 0;
			in->operand[0] = gen_op(p, nslots, sizes, r, dims, NEURON_DT_I64);
			break;
		}
		if (op == NEURON_OP_CAST)
			/* WRAP; NO_SATURATE, E8M0_UP and _DOWN, valid or not */
			in->flags = (uint16_t)(chance(75) ? (rnd(2) ? NEURON_CAST_WRAP : 0) : rnd(16));
		in->operand[0] = gen_op(p, nslots, sizes, r, dims,
					  op == NEURON_OP_CAST ? any_dtype() : dt);
		break;
	case NEURON_OP_COMPARE:
		in->sub = (uint8_t)rnd(NEURON_CMP_COUNT);
		in->operand[1] = gen_op(p, nslots, sizes, r, dims, dt);
		in->operand[2] = gen_op(p, nslots, sizes, r, dims, dt);
		in->operand[0] = gen_op(p, nslots, sizes, r, dims, NEURON_DT_BOOL);
		break;
	case NEURON_OP_SCATTER: {
		uint32_t len[1] = { m }, count[1] = { k };

		in->sub = (uint8_t)rnd(NEURON_SCATTER_COUNT);
		in->operand[1] = gen_op(p, nslots, sizes, 1, count, rnd(2) ? NEURON_DT_I32 : NEURON_DT_I64);
		in->operand[2] = gen_op(p, nslots, sizes, 1, count, dt);
		in->operand[0] = gen_op(p, nslots, sizes, 1, len, dt);
		break;
	}
	case NEURON_OP_TOPK:
		/* k up to the row's length, sometimes past it */
		in->sub = (uint8_t)rnd(chance(95) ? NEURON_TOPK_COUNT : 256);
		in->operand[1] = gen_op(p, nslots, sizes, r, dims, dt);
		dims[r - 1] = chance(90) ? 1 + rnd(dims[r - 1] ? dims[r - 1] : 1) : dim();
		in->operand[0] = gen_op(p, nslots, sizes, r, dims, chance(90) ? NEURON_DT_I64 : any_dtype());
		break;
	case NEURON_OP_SELECT:
		in->operand[1] = gen_op(p, nslots, sizes, r, dims, NEURON_DT_BOOL);
		in->operand[2] = gen_op(p, nslots, sizes, r, dims, dt);
		in->operand[3] = gen_op(p, nslots, sizes, r, dims, dt);
		in->operand[0] = gen_op(p, nslots, sizes, r, dims, dt);
		break;
	case NEURON_OP_BINARY:
		in->sub = (uint8_t)rnd(NEURON_BIN_COUNT);
		in->operand[1] = gen_op(p, nslots, sizes, r, dims, dt);
		in->operand[2] = gen_op(p, nslots, sizes, r, dims, dt);
		in->operand[0] = gen_op(p, nslots, sizes, r, dims, dt);
		break;
	case NEURON_OP_MATMUL: {
		uint32_t a[2] = { m, k }, b[2] = { k, n }, o[2] = { m, n }, bias[1] = { n };

		/* int32 (ISA 1.5) or f32 out */
		uint8_t odt = dt == NEURON_DT_I32 ? NEURON_DT_I32 : NEURON_DT_F32;

		in->flags = chance(30) ? NEURON_MATMUL_BIAS : 0;
		if (rnd(4) == 0) {	/* ISA 1.13: relu, an upper bound (NaN, or without its flag, now and then) */
			in->flags |= rnd(2) ? NEURON_MATMUL_RELU : 0;
			in->flags |= rnd(2) ? NEURON_MATMUL_CLAMP : 0;
			if ((in->flags & NEURON_MATMUL_CLAMP) || chance(5))
				in->fparam[0] = chance(95) ? 6.0f : __builtin_nanf("");
		}
		in->operand[1] = gen_op(p, nslots, sizes, 2, a, dt);
		if (rnd(8) == 0) {
			/* ISA 1.14: bf16 pairs in panels [ceil(N / 32), ceil(K / 2), 64] */
			uint32_t pp[3] = { (n + 31) / 32, (k + 1) / 2, 64 };

			in->flags |= NEURON_MATMUL_BF16_PAIRS | NEURON_MATMUL_B_PANELS;
			in->operand[2] = gen_op(p, nslots, sizes, 3, pp, NEURON_DT_BF16);
			odt = NEURON_DT_F32;
		} else {
			in->operand[2] = gen_op(p, nslots, sizes, 2, b, dt);
		}
		in->operand[0] = gen_op(p, nslots, sizes, 2, o, odt);
		if (in->flags & NEURON_MATMUL_BIAS)
			in->operand[3] = gen_op(p, nslots, sizes, 1, bias, odt);
		break;
	}
	case NEURON_OP_GATHER: {
		uint32_t t[2] = { m, n }, idx[1] = { k }, o[2] = { k, n };

		in->operand[1] = gen_op(p, nslots, sizes, 2, t, dt);
		in->operand[2] = gen_op(p, nslots, sizes, 1, idx, NEURON_DT_I32);
		in->operand[0] = gen_op(p, nslots, sizes, 2, o, dt);
		break;
	}
	case NEURON_OP_LAYERNORM: {
		uint32_t v[1];

		in->fparam[0] = 1e-5f;
		in->operand[1] = gen_op(p, nslots, sizes, r, dims, NEURON_DT_F32);
		in->operand[0] = gen_op(p, nslots, sizes, r, dims, NEURON_DT_F32);
		v[0] = dims[r - 1];
		in->operand[2] = gen_op(p, nslots, sizes, 1, v, NEURON_DT_F32);
		in->operand[3] = gen_op(p, nslots, sizes, 1, v, NEURON_DT_F32);
		break;
	}
	case NEURON_OP_CONV2D:
	case NEURON_OP_POOL2D: {
		uint32_t kh = 1 + rnd(3), kw = 1 + rnd(3), sh = 1 + rnd(2), sw = 1 + rnd(2);
		uint32_t pt = rnd(kh), pl = rnd(kw), pb = rnd(kh), pr = rnd(kw), dh = 1, dw = 1;
		uint32_t c = 1 + rnd(8), co = op == NEURON_OP_POOL2D ? c : 1 + rnd(13);
		uint32_t h = kh + rnd(9), w = kw + rnd(20), x[4] = { 1 + rnd(2), c, h, w };
		uint32_t ho = (h + pt + pb - kh) / sh + 1, wo = (w + pl + pr - kw) / sw + 1;
		uint32_t o[4] = { x[0], co, ho, wo }, wt[4] = { co, c, kh, kw }, bias[1] = { co };

		in->iparam[NEURON_WIN_STRIDE_H] = sh;
		in->iparam[NEURON_WIN_STRIDE_W] = sw;
		in->iparam[NEURON_WIN_PAD_TOP] = pt;
		in->iparam[NEURON_WIN_PAD_LEFT] = pl;
		in->iparam[NEURON_WIN_PAD_BOTTOM] = pb;
		in->iparam[NEURON_WIN_PAD_RIGHT] = pr;
		in->operand[1] = gen_op(p, nslots, sizes, 4, x, NEURON_DT_F32);
		in->operand[0] = gen_op(p, nslots, sizes, 4, o, NEURON_DT_F32);
		if (op == NEURON_OP_POOL2D) {
			in->sub = (uint8_t)rnd(NEURON_POOL_COUNT);
			in->flags = rnd(2) ? NEURON_POOL_COUNT_PAD : 0;
			in->iparam[NEURON_WIN_KERNEL_H] = kh;
			in->iparam[NEURON_WIN_KERNEL_W] = kw;
			break;
		}
		in->iparam[NEURON_WIN_DILATION_H] = dh;
		in->iparam[NEURON_WIN_DILATION_W] = dw;
		in->flags = (uint16_t)(rnd(2) ? NEURON_CONV_BIAS | (rnd(2) ? NEURON_CONV_RELU : 0) : 0);
		if (rnd(4) == 0) {	/* ISA 1.12: an upper bound, now and then a NaN one */
			in->flags |= NEURON_CONV_CLAMP;
			in->fparam[0] = chance(95) ? 6.0f : __builtin_nanf("");
		}
		in->operand[2] = gen_op(p, nslots, sizes, 4, wt, NEURON_DT_F32);
		if (in->flags & NEURON_CONV_BIAS)
			in->operand[3] = gen_op(p, nslots, sizes, 1, bias, NEURON_DT_F32);
		break;
	}
	case NEURON_OP_SEM_SIGNAL:
	case NEURON_OP_SEM_WAIT:
		in->iparam[0] = rnd(chance(95) ? 4 : 64);
		in->iparam[1] = rnd(3);
		break;
	case NEURON_OP_BARRIER:
		in->iparam[0] = rnd(chance(95) ? 2 : 16);
		in->iparam[1] = 1u << rnd(cores);
		break;
	default:
		break;
	}
	/* Now and then, one field anywhere in the instruction. */
	if (chance(10))
		((uint8_t *)in)[rnd(sizeof(*in))] = (uint8_t)rnd64();
}

static void gen_program(struct prog *p, uint32_t nslots, const uint64_t *sizes, int sync)
{
	uint32_t n = 1 + rnd(sync ? 4 : 2), i;

	memset(p, 0, sizeof(*p));
	p->h.magic = NEURON_ISA_MAGIC;
	p->h.version = NEURON_ISA_VERSION;
	for (i = 0; i < n && p->h.desc_count + 4 <= 16; i++)
		gen_insn(p, nslots, sizes, sync);
	if (!p->h.insn_count) {
		p->h.insn_count = 1;
		memset(&p->i[0], 0, sizeof(p->i[0]));
	}
}

/* Bind up to three of @f's buffers; their handles and sizes. */
static uint32_t bind(struct file *f, uint32_t *slots, uint64_t *sizes)
{
	uint32_t n = f->nbufs ? 1 + rnd(f->nbufs < 3 ? f->nbufs : 3) : 0, i;

	for (i = 0; i < n; i++) {
		struct buf *b = &f->bufs[rnd(f->nbufs)];

		slots[i] = b->handle;
		sizes[i] = b->size < (1 << 16) ? b->size : 1 << 16;
	}
	return n;
}

static void op_submit(struct file *f)
{
	struct neuron_job_submit s = { 0 };
	uint64_t sizes[3] = { 4096, 4096, 4096 };
	struct neuron_job_wait w = { 0 };
	struct prog p;
	uint32_t core = rnd(cores);
	size_t size;
	int ret;

	s.slot_count = bind(f, s.slots, sizes);
	gen_program(&p, s.slot_count ?: 1, sizes, 1);
	size = prog_image(&p);
	if (chance(10))
		((uint8_t *)image)[rnd(size)] ^= (uint8_t)(1u << rnd(8));
	if (chance(3))
		size -= rnd(size);
	s.core = core;
	s.program = (uintptr_t)image;
	s.program_size = size;
	s.dep_core = NEURON_NO_DEP;
	if (chance(15) && f->seq[rnd(cores)]) {
		s.dep_core = rnd(cores);
		s.dep_seq = f->seq[s.dep_core] ?: 1;
	}
	/* Traced (API 1.8): into any buffer of the file, a bound one too, or a bad handle. */
	if (chance(25)) {
		s.flags = NEURON_JOB_TRACE;
		s.trace = f->nbufs && chance(90) ? f->bufs[rnd(f->nbufs)].handle : (uint32_t)rnd64();
		if (chance(3))
			s.trace_pad = 1;
	}
	ret = xioctl(f->fd, NEURON_IOCTL_JOB_SUBMIT, &s);
	logop("submit fd %d core %u insns %u size %zu dep %u/%llu trace %u = %d seq %llu error %u@%u",
	      f->fd, core, p.h.insn_count, size, s.dep_core, (unsigned long long)s.dep_seq, s.trace,
	      ret, (unsigned long long)s.seq, s.error, s.error_index);
	count.submitted++;
	if (ret) {
		count.refused_programs++;
		return;
	}
	f->seq[core] = s.seq;
	if (chance(40)) {
		w.core = core;
		w.seq = s.seq;
		w.timeout_ms = rnd(30);
		ret = xioctl(f->fd, NEURON_IOCTL_JOB_WAIT, &w);
		logop("wait fd %d core %u seq %llu = %d status %u", f->fd, core,
		      (unsigned long long)s.seq, ret, w.status);
	}
}

/*
 * @core of @f with nothing of @f running anywhere, or -1: every core @f
 * holds released (its queued jobs, which may wait on semaphores until
 * their timeout or write to the same buffers, aborted), @core reserved
 * again.
 */
static int fresh_core(struct file *f, uint32_t core)
{
	/* What the file holds now: a child sharing it may have reserved more. */
	struct neuron_core_reserve r = { .core_mask = 1u << core };
	int ret = xioctl(f->fd, NEURON_IOCTL_CORE_RESERVE, &r);

	if (ret)
		return -1;
	r = (struct neuron_core_reserve){ .core_mask = r.held_mask };
	ret = xioctl(f->fd, NEURON_IOCTL_CORE_RELEASE, &r);

	memset(f->seq, 0, sizeof(f->seq));

	logop("release fd %d core %u for a compare = %d", f->fd, core, ret);
	r = (struct neuron_core_reserve){ .core_mask = 1u << core };
	ret = xioctl(f->fd, NEURON_IOCTL_CORE_RESERVE, &r);
	f->held = r.held_mask;
	return ret ? -1 : 0;
}

/*
 * A compute job run by the driver and again here: the same verdict from
 * the validators, and, when it runs, the same bits in every bound buffer.
 */
static void op_compare(struct file *f)
{
	static uint8_t before[3][1 << 16], after[3][1 << 16];
	static uint8_t scratch_mem[NEURON_GEMM_SCRATCH] __attribute__((aligned(64)));
	struct neuron_engine_slot slots[3], scratch = { scratch_mem, sizeof(scratch_mem) };
	struct neuron_engine_program prog;
	struct neuron_engine_status st = { 0 };
	struct neuron_job_submit s = { 0 };
	struct neuron_job_wait w = { 0 };
	uint64_t sizes[3];
	struct prog p;
	uint32_t core, i, fault = 0, at = 0;
	size_t size;
	int ret, valid;

	if (!f->held || !f->nbufs)
		return;
	for (core = rnd(cores); !(f->held & (1u << core)); core = (core + 1) % cores)
		;
	if (fresh_core(f, core))
		return;
	f->seq[core] = 0;
	s.slot_count = bind(f, s.slots, sizes);
	for (i = 0; i < s.slot_count; i++) {
		struct neuron_mem_copy c = { .handle = s.slots[i], .length = sizes[i],
					     .user_addr = (uintptr_t)before[i] };
		struct neuron_mem_info mi = { .handle = s.slots[i] };

		/* The buffer as it is now (a child may have replaced it), whole. */
		if (xioctl(f->fd, NEURON_IOCTL_MEM_INFO, &mi) || mi.size > sizeof(before[i]))
			return;
		sizes[i] = c.length = mi.size;
		if (xioctl(f->fd, NEURON_IOCTL_MEM_READ, &c))
			return;
		slots[i].base = before[i];
		slots[i].size = sizes[i];
	}
	/* The same buffer bound twice shares one copy here too. */
	for (i = 0; i < s.slot_count; i++)
		for (uint32_t j = 0; j < i; j++)
			if (s.slots[j] == s.slots[i])
				slots[i] = slots[j];
	gen_program(&p, s.slot_count, sizes, 0);
	size = prog_image(&p);
	valid = neuron_engine_validate(image, size, slots, s.slot_count, &prog, &st) == 0;
	s.core = core;
	s.program = (uintptr_t)image;
	s.program_size = size;
	s.dep_core = NEURON_NO_DEP;
	ret = xioctl(f->fd, NEURON_IOCTL_JOB_SUBMIT, &s);
	logop("compare fd %d core %u insns %u op %u = %d (here %s, error %u@%u)", f->fd, core,
	      p.h.insn_count, p.i[0].opcode, ret, valid ? "valid" : "refused", st.error, st.index);
	if (!valid) {
		if (ret != -EINVAL || s.error != st.error || s.error_index != st.index)
			fail("the driver answered %d (error %u at %u) to a program refused here with %u at %u",
			     ret, s.error, s.error_index, st.error, st.index);
		return;
	}
	/* Committing the buffers' pages may meet the host's reserve. */
	if (ret == -ENOMEM)
		return;
	if (ret)
		fail("the driver refused (%d, error %u at %u) a program valid here", ret, s.error,
		     s.error_index);
	/*
	 * Huge broadcasts are the timeout's business, not a comparison's; and
	 * semaphores and barriers (a mutated opcode) are the queue's, which
	 * the engine here does not run.
	 */
	{
		uint64_t work = 0;
		int sync = 0;

		for (i = 0; i < prog.insn_count; i++) {
			work += neuron_engine_insn_cost(&prog, i);
			sync |= prog.insns[i].opcode == NEURON_OP_SEM_SIGNAL ||
				prog.insns[i].opcode == NEURON_OP_SEM_WAIT ||
				prog.insns[i].opcode == NEURON_OP_BARRIER;
		}
		if (work > (1u << 22) || sync) {
			struct neuron_core_reserve r = { .core_mask = 1u << core };

			xioctl(f->fd, NEURON_IOCTL_CORE_RELEASE, &r);
			f->held &= ~(1u << core);
			logop("compare: %llu operations%s, not compared", (unsigned long long)work,
			      sync ? " and synchronisation" : "");
			return;
		}
	}
	for (i = 0; i < prog.insn_count && !fault; i++) {
		fault = neuron_engine_step(&prog, i, slots, &scratch);
		at = i;
	}
	w.core = core;
	w.seq = s.seq;
	w.timeout_ms = 60000;
	ret = xioctl(f->fd, NEURON_IOCTL_JOB_WAIT, &w);
	if (ret || (fault ? w.status != NEURON_JOB_FAULT || w.error != fault || w.error_index != at :
		    w.status != NEURON_JOB_OK))
		fail("job %llu: wait %d status %u error %u@%u, here fault %u@%u",
		     (unsigned long long)s.seq, ret, w.status, w.error, w.error_index, fault, at);
	count.compared++;
	count.faulted += !!fault;
	for (i = 0; i < s.slot_count; i++) {
		struct neuron_mem_copy c = { .handle = s.slots[i], .length = sizes[i],
					     .user_addr = (uintptr_t)after[i] };

		if (xioctl(f->fd, NEURON_IOCTL_MEM_READ, &c))
			fail("reading back slot %u: %d", i, -errno);
		if (memcmp(after[i], slots[i].base, sizes[i])) {
			size_t b = 0;

			while (after[i][b] == ((uint8_t *)slots[i].base)[b])
				b++;
			fail("job %llu: slot %u differs from this process's run at byte %zu",
			     (unsigned long long)s.seq, i, b);
		}
	}
}

/* --- processes ----------------------------------------------------------- */

static void run_ops(unsigned long n, int child);

/*
 * A child that shares the files runs a few operations; it exits, or is
 * killed at a random point (with jobs queued and buffers mapped).
 */
static void op_fork(void)
{
	pid_t pid;
	int st;

	count.forks++;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		rng_state ^= 0x9e3779b97f4a7c15ull * (uint64_t)getpid();
		run_ops(20 + rnd(200), 1);
		_exit(0);
	}
	logop("fork = %d", pid);
	if (pid < 0)
		return;
	for (int i = 0; i < NFILES; i++)
		files[i].shared = files[i].fd >= 0;
	if (chance(60)) {
		usleep(rnd(20000));
		kill(pid, SIGKILL);
		count.killed++;
	}
	if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st))
		fail("a child failed (exit %d)", WEXITSTATUS(st));
	if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
		fail("a child died of signal %d", WTERMSIG(st));
}

static void run_ops(unsigned long n, int child)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		struct file *f = pick_file();
		uint32_t r = rnd(100);

		if (f->fd < 0 || r < 3) {
			op_open(f);
			continue;
		}
		if (r < 15)
			op_alloc(f);
		else if (r < 20)
			op_free(f);
		else if (r < 33)
			op_copy(f);
		else if (r < 41)
			op_mmap(f);
		else if (r < 50)
			op_cores(f);
		else if (r < 58)
			op_info(f);
		else if (r < 64)
			op_garbage(f);
		else if (r < 84)
			op_submit(f);
		else if (r < 99 && !child)
			op_compare(f);
		else if (!child)
			op_fork();
	}
}

int main(int argc, char **argv)
{
	unsigned long seconds = 30;
	time_t end;
	int i;

	seed = (uint64_t)time(NULL);
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--devices"))
			devices = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--cores"))
			cores = (unsigned int)atoi(argv[i + 1]);
	}
	if (devices < 1 || cores < 1 || cores > NCORES) {
		fprintf(stderr, "usage: %s [--seed N] [--seconds N] [--devices N] [--cores 1-8]\n",
			argv[0]);
		return 2;
	}
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	for (i = 0; i < NFILES; i++)
		file_reset(&files[i]);
	signal(SIGBUS, on_sigbus);
	signal(SIGSEGV, on_sigbus);
	/* A hang is a failure too. */
	signal(SIGALRM, on_alarm);
	printf("# ioctl fuzz: seed %llu, %lu s\n", (unsigned long long)seed, seconds);
	fflush(stdout);
	end = time(NULL) + (time_t)seconds;
	while (time(NULL) < end) {
		alarm(120);
		run_ops(20, 0);
	}
	alarm(0);
	for (i = 0; i < NFILES; i++)
		if (files[i].fd >= 0)
			close(files[i].fd);
	printf("PASS ioctl_fuzz: seed %llu, %lu operations: %lu opens, %lu ioctls (%lu refused), "
	       "%lu garbage ioctls, %lu mmaps (%lu SIGBUS), %lu submits (%lu refused), "
	       "%lu jobs compared bit for bit (%lu faulted alike), %lu forks (%lu killed)\n",
	       (unsigned long long)seed, ops, count.opened, count.ioctls, count.refused,
	       count.garbage, count.mapped, count.sigbus, count.submitted, count.refused_programs,
	       count.compared, count.faulted, count.forks, count.killed);
	return 0;
}
