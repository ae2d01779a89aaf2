// SPDX-License-Identifier: GPL-2.0
/*
 * What the VM suite's programs about NeuronCores and jobs share: sysfs
 * and parameters, a tiny ISA program builder, and the queue ioctls.
 */
#ifndef NEURON_VM_QUEUE_H
#define NEURON_VM_QUEUE_H

#include <time.h>

#include "uapi/neuron.h"
#include "uapi/neuron_isa.h"
#include "vm_test.h"

static inline long long sysfs_ll(const char *rel)
{
	char path[160], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/neuron_device/neuron0/%s", rel);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return atoll(buf);
}

static inline void set_timeout_ms(unsigned int ms)
{
	FILE *f = fopen("/sys/module/neuron/parameters/job_timeout_ms", "w");

	if (f) {
		fprintf(f, "%u\n", ms);
		fclose(f);
	}
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --- a tiny program builder ---------------------------------------------- */

struct prog {
	struct neuron_program_header h;
	struct neuron_tensor_desc d[8];
	struct neuron_insn i[32];
	uint64_t image[(32 + 8 * 88 + 32 * 64) / 8];
	uint32_t size;
};

static inline void prog_init(struct prog *p)
{
	memset(p, 0, sizeof(*p));
	p->h.magic = NEURON_ISA_MAGIC;
	p->h.version = NEURON_ISA_VERSION;
}

/* A contiguous f32 vector of @n elements at element @off of slot @slot. */
static inline uint32_t prog_vec(struct prog *p, uint16_t slot, uint64_t off, uint32_t n,
			 uint8_t dtype)
{
	struct neuron_tensor_desc *d = &p->d[p->h.desc_count];

	d->slot = slot;
	d->dtype = dtype;
	d->rank = 1;
	d->offset = off;
	d->dims[0] = n;
	d->strides[0] = 1;
	return p->h.desc_count++;
}

static inline uint32_t prog_mat(struct prog *p, uint16_t slot, uint64_t off, uint32_t r, uint32_t c)
{
	struct neuron_tensor_desc *d = &p->d[p->h.desc_count];

	d->slot = slot;
	d->dtype = NEURON_DT_F32;
	d->rank = 2;
	d->offset = off;
	d->dims[0] = r;
	d->dims[1] = c;
	d->strides[0] = c;
	d->strides[1] = 1;
	return p->h.desc_count++;
}

static inline struct neuron_insn *prog_insn(struct prog *p, uint8_t op, uint8_t sub)
{
	struct neuron_insn *in = &p->i[p->h.insn_count++];

	in->opcode = op;
	in->sub = sub;
	return in;
}

static inline void prog_sync(struct prog *p, uint8_t op, uint32_t a, uint32_t b)
{
	struct neuron_insn *in = prog_insn(p, op, 0);

	in->iparam[0] = a;
	in->iparam[1] = b;
}

static inline const void *prog_image(struct prog *p)
{
	char *o = (char *)p->image;

	memcpy(o, &p->h, sizeof(p->h));
	memcpy(o + sizeof(p->h), p->d, p->h.desc_count * sizeof(p->d[0]));
	memcpy(o + sizeof(p->h) + p->h.desc_count * sizeof(p->d[0]), p->i,
	       p->h.insn_count * sizeof(p->i[0]));
	p->size = sizeof(p->h) + p->h.desc_count * sizeof(p->d[0]) +
		  p->h.insn_count * sizeof(p->i[0]);
	return p->image;
}

/* --- ioctl helpers --------------------------------------------------------- */

static inline int reserve(int fd, uint32_t mask, struct neuron_core_reserve *out)
{
	struct neuron_core_reserve r = { .core_mask = mask };
	int ret = xioctl(fd, NEURON_IOCTL_CORE_RESERVE, &r);

	if (out)
		*out = r;
	return ret;
}

static inline int release(int fd, uint32_t mask)
{
	struct neuron_core_reserve r = { .core_mask = mask };

	return xioctl(fd, NEURON_IOCTL_CORE_RELEASE, &r);
}

static inline uint32_t alloc(int fd, uint64_t size)
{
	struct neuron_mem_alloc a = { .size = size, .core = NEURON_CORE_ANY };

	if (xioctl(fd, NEURON_IOCTL_MEM_ALLOC, &a))
		return 0;
	return a.handle;
}

static inline int mem_rw(int fd, uint32_t h, uint64_t off, void *p, uint64_t len, int write)
{
	struct neuron_mem_copy c = {
		.handle = h, .offset = off, .length = len, .user_addr = (uintptr_t)p,
	};

	return xioctl(fd, write ? NEURON_IOCTL_MEM_WRITE : NEURON_IOCTL_MEM_READ, &c);
}

/* Submit @p on @core with @slots; fills *@seq. Returns 0 or -errno. */
static inline int submit_dep(int fd, uint32_t core, struct prog *p, const uint32_t *slots,
		      uint32_t nslots, uint32_t dep_core, uint64_t dep_seq, uint64_t *seq,
		      struct neuron_job_submit *out)
{
	struct neuron_job_submit s = {
		.core = core, .slot_count = nslots, .dep_core = dep_core, .dep_seq = dep_seq,
	};
	int ret;

	s.program = (uintptr_t)prog_image(p);
	s.program_size = p->size;
	if (nslots)
		memcpy(s.slots, slots, nslots * sizeof(*slots));
	ret = xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &s);
	if (seq)
		*seq = s.seq;
	if (out)
		*out = s;
	return ret;
}

static inline int submit(int fd, uint32_t core, struct prog *p, const uint32_t *slots,
		  uint32_t nslots, uint64_t *seq)
{
	return submit_dep(fd, core, p, slots, nslots, NEURON_NO_DEP, 0, seq, NULL);
}

static inline int wait_job(int fd, uint32_t core, uint64_t seq, uint32_t timeout_ms,
		    struct neuron_job_wait *out)
{
	struct neuron_job_wait w = { .core = core, .seq = seq, .timeout_ms = timeout_ms };
	int ret = xioctl(fd, NEURON_IOCTL_JOB_WAIT, &w);

	if (out)
		*out = w;
	return ret;
}

/* A job that does nothing. */
static inline void prog_nop(struct prog *p)
{
	prog_init(p);
	prog_insn(p, NEURON_OP_NOP, 0);
}

#endif /* NEURON_VM_QUEUE_H */
