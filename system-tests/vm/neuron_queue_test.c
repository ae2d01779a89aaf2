// SPDX-License-Identifier: GPL-2.0
/*
 * neuron_queue_test: NeuronCore reservation and job queues against the
 * real module (API 1.2). Runs inside scripts/vm-test as root, with
 * neuron.ko loaded with fake_devices=2 and 4 cores each; prints one
 * "PASS name" or "FAIL name: why" line per check.
 *
 *   neuron_queue_test
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "vm_queue.h"


/* --- tests ----------------------------------------------------------------- */

static void test_reserve(void)
{
	int a = open_dev(0), b = open_dev(0);
	struct neuron_core_reserve r = { 0 };
	struct neuron_queue_info qi = { .core = 1 };

	check(reserve(a, 0x3, &r) == 0 && r.held_mask == 0x3, "reserve.two_cores",
	      "held 0x%x", r.held_mask);
	check(reserve(a, 0x1, &r) == 0, "reserve.again_ok", "re-reserving failed");
	check(reserve(b, 0x6, &r) == -EBUSY && r.busy_mask == 0x2 && r.busy_pid == getpid() &&
	      r.held_mask == 0, "reserve.busy_names_holder",
	      "busy 0x%x pid %d held 0x%x", r.busy_mask, r.busy_pid, r.held_mask);
	check(reserve(b, 0x4, &r) == 0 && r.held_mask == 0x4, "reserve.other_core_free",
	      "held 0x%x", r.held_mask);
	check(reserve(b, 0, NULL) == -EINVAL && reserve(b, 0x10, NULL) == -EINVAL,
	      "reserve.bad_mask_einval", "empty or absent cores accepted");
	{
		struct neuron_core_reserve bad = { .core_mask = 1, .flags = 1 };
		struct neuron_core_reserve pad = { .core_mask = 1, .pad = 1 };

		check(xioctl(b, NEURON_IOCTL_CORE_RESERVE, &bad) == -EINVAL &&
		      xioctl(b, NEURON_IOCTL_CORE_RESERVE, &pad) == -EINVAL,
		      "reserve.flags_pad_einval", "nonzero flags or pad accepted");
	}
	check(release(b, 0x1) == -EINVAL, "release.not_held_einval", "released another's core");
	check(xioctl(b, NEURON_IOCTL_QUEUE_INFO, &qi) == 0 && qi.owner_pid == getpid(),
	      "queue_info.owner", "owner %d", qi.owner_pid);
	check(release(a, 0x2) == 0 && reserve(b, 0x2, NULL) == 0, "release.then_other_reserves",
	      "core 1 not handed over");
	close(a);
	check(reserve(b, 0x1, NULL) == 0, "release.on_close", "core 0 still held after close");
	close(b);
}

static void test_nop_and_seq(void)
{
	int fd = open_dev(0);
	struct neuron_job_wait w = { 0 };
	struct prog p;
	uint64_t s1 = 0, s2 = 0;
	long long jobs = sysfs_ll("neuron_core0/jobs_completed");

	reserve(fd, 0x1, NULL);
	prog_nop(&p);
	check(submit(fd, 0, &p, NULL, 0, &s1) == 0 && submit(fd, 0, &p, NULL, 0, &s2) == 0 &&
	      s2 == s1 + 1, "submit.seq_increments", "seqs %llu %llu",
	      (unsigned long long)s1, (unsigned long long)s2);
	check(wait_job(fd, 0, s2, 5000, &w) == 0 && w.status == NEURON_JOB_OK,
	      "wait.nop_ok", "status %u", w.status);
	check(wait_job(fd, 0, s1, 0, &w) == 0 && w.status == NEURON_JOB_OK,
	      "wait.earlier_job_kept", "status %u", w.status);
	check(wait_job(fd, 0, s2 + 1, 0, NULL) == -EINVAL && wait_job(fd, 0, 0, 0, NULL) == -EINVAL,
	      "wait.never_submitted_einval", "accepted");
	check(wait_job(fd, 1, 1, 0, NULL) == -EPERM, "wait.core_not_held_eperm", "accepted");
	check(sysfs_ll("neuron_core0/jobs_completed") == jobs + 2, "sysfs.jobs_completed",
	      "%lld, was %lld", sysfs_ll("neuron_core0/jobs_completed"), jobs);
	close(fd);
}

/* FILL a, FILL b, out = a * b + a: computed in the kernel. */
static void test_compute(void)
{
	int fd = open_dev(0);
	uint32_t h = alloc(fd, 4096), slots[1] = { h };
	struct neuron_job_wait w = { 0 };
	float out[256];
	struct prog p;
	uint64_t seq;
	uint32_t a, b, o, i, bad = 0;

	reserve(fd, 0x1, NULL);
	prog_init(&p);
	a = prog_vec(&p, 0, 0, 256, NEURON_DT_F32);
	b = prog_vec(&p, 0, 256, 256, NEURON_DT_F32);
	o = prog_vec(&p, 0, 512, 256, NEURON_DT_F32);
	prog_insn(&p, NEURON_OP_FILL, 0)->operand[0] = a;
	p.i[0].fparam[0] = 1.5f;
	prog_insn(&p, NEURON_OP_FILL, 0)->operand[0] = b;
	p.i[1].fparam[0] = 2.0f;
	prog_insn(&p, NEURON_OP_BINARY, NEURON_BIN_MUL);
	p.i[2].operand[0] = o; p.i[2].operand[1] = a; p.i[2].operand[2] = b;
	prog_insn(&p, NEURON_OP_BINARY, NEURON_BIN_ADD);
	p.i[3].operand[0] = o; p.i[3].operand[1] = o; p.i[3].operand[2] = a;
	check(submit(fd, 0, &p, slots, 1, &seq) == 0 && wait_job(fd, 0, seq, 5000, &w) == 0 &&
	      w.status == NEURON_JOB_OK, "compute.job_ok", "status %u", w.status);
	mem_rw(fd, h, 2048, out, sizeof(out), 0);
	for (i = 0; i < 256; i++)
		bad += out[i] != 4.5f;
	check(!bad, "compute.results", "%u wrong, out[0]=%g", bad, out[0]);
	close(fd);
}

static void test_refused(void)
{
	int fd = open_dev(0), other = open_dev(0);
	uint32_t h = alloc(fd, 4096), slots[2] = { h, 0 };
	uint32_t theirs = alloc(other, 4096);
	struct neuron_job_submit s;
	struct prog p;
	uint64_t seq;
	char junk[256];

	reserve(fd, 0x1, NULL);
	prog_init(&p);
	prog_vec(&p, 0, 1000, 100, NEURON_DT_F32);	/* ends past 4096 bytes */
	prog_insn(&p, NEURON_OP_FILL, 0);
	check(submit_dep(fd, 0, &p, slots, 1, NEURON_NO_DEP, 0, &seq, &s) == -EINVAL &&
	      s.error == NEURON_ISA_E_RANGE && s.error_index == 0,
	      "refuse.out_of_range", "error %u index %u", s.error, s.error_index);

	prog_init(&p);
	prog_vec(&p, 1, 0, 4, NEURON_DT_F32);		/* slot 1 unbound */
	prog_insn(&p, NEURON_OP_FILL, 0);
	check(submit_dep(fd, 0, &p, slots, 2, NEURON_NO_DEP, 0, &seq, &s) == -EINVAL &&
	      s.error == NEURON_ISA_E_SLOT, "refuse.unbound_slot", "error %u", s.error);

	prog_init(&p);
	prog_vec(&p, 0, 0, 4, NEURON_DT_F32);
	prog_insn(&p, NEURON_OP_NOP, 0);
	prog_insn(&p, NEURON_OP_NOP, 0);
	prog_insn(&p, 200, 0);
	check(submit_dep(fd, 0, &p, slots, 1, NEURON_NO_DEP, 0, &seq, &s) == -EINVAL &&
	      s.error == NEURON_ISA_E_OPCODE && s.error_index == 2,
	      "refuse.unknown_opcode_index", "error %u index %u", s.error, s.error_index);

	/* A truncated stream: the header promises more than is passed. */
	prog_nop(&p);
	prog_image(&p);
	{
		struct neuron_job_submit t = {
			.core = 0, .dep_core = NEURON_NO_DEP, .program = (uintptr_t)p.image,
			.program_size = p.size - 8,
		};

		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL &&
		      t.error == NEURON_ISA_E_HEADER, "refuse.truncated", "error %u", t.error);
	}
	memset(junk, 0xa5, sizeof(junk));
	{
		struct neuron_job_submit t = {
			.core = 0, .dep_core = NEURON_NO_DEP, .program = (uintptr_t)junk,
			.program_size = sizeof(junk),
		};

		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL &&
		      t.error == NEURON_ISA_E_HEADER, "refuse.garbage", "error %u", t.error);
		t.error = 0;
		t.program = 16;		/* an unmapped address */
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EFAULT, "refuse.bad_pointer",
		      "not EFAULT");
		t.program = (uintptr_t)junk;
		t.program_size = NEURON_MAX_PROGRAM_SIZE + 8;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "refuse.too_large",
		      "accepted");
		t.program_size = 8;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "refuse.too_small",
		      "accepted");
	}

	/* Another file's buffer: the handle does not exist here. */
	prog_init(&p);
	prog_vec(&p, 0, 0, 4, NEURON_DT_F32);
	prog_insn(&p, NEURON_OP_FILL, 0);
	slots[0] = theirs + 100;
	check(submit(fd, 0, &p, slots, 1, &seq) == -ENOENT, "refuse.foreign_buffer_enoent",
	      "accepted");
	slots[0] = h;
	check(submit(fd, 1, &p, slots, 1, &seq) == -EPERM, "refuse.core_not_held_eperm",
	      "accepted");
	check(submit(other, 0, &p, slots, 1, &seq) == -EPERM, "refuse.core_of_other_file",
	      "accepted");
	{
		struct neuron_job_submit t = { .core = 0, .dep_core = NEURON_NO_DEP, .flags = 2 };

		t.program = (uintptr_t)prog_image(&p);
		t.program_size = p.size;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "refuse.flags", "accepted");
		t.flags = 0;
		t.slots[5] = h;		/* past slot_count */
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "refuse.slot_past_count",
		      "accepted");
		t.slots[5] = 0;
		t.dep_core = 0;		/* a dependency on a job never submitted */
		t.dep_seq = 1000000;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "refuse.dep_future",
		      "accepted");
	}
	prog_nop(&p);
	check(submit(fd, 0, &p, NULL, 0, &seq) == 0 && wait_job(fd, 0, seq, 5000, NULL) == 0,
	      "refuse.core_still_works", "a good job after refused ones failed");
	close(other);
	close(fd);
}

/* One job blocks on a semaphore; the queue fills; poll() tells the story. */
static void test_depth_poll_sem(void)
{
	int fd = open_dev(0);
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	struct neuron_job_wait w = { 0 };
	struct prog p, sig;
	uint64_t seq = 0, first = 0, last = 0;
	int i, ok = 1, r;

	reserve(fd, 0x3, NULL);
	prog_init(&p);
	prog_sync(&p, NEURON_OP_SEM_WAIT, 3, 2);
	check(submit(fd, 0, &p, NULL, 0, &first) == 0, "sem.wait_job_submitted", "refused");
	prog_nop(&p);
	for (i = 1; i < NEURON_QUEUE_DEPTH; i++)
		ok &= submit(fd, 0, &p, NULL, 0, &last) == 0;
	check(ok, "queue.fills_to_depth", "a submit below the depth failed");
	r = submit(fd, 0, &p, NULL, 0, &seq);
	check(r == -EAGAIN, "queue.full_eagain", "got %d", r);
	check(wait_job(fd, 0, first, 100, NULL) == -ETIMEDOUT, "wait.timeout_etimedout",
	      "the blocked job ended");
	poll(&pfd, 1, 0);
	check(!(pfd.revents & POLLIN) && (pfd.revents & POLLOUT), "poll.nothing_ended",
	      "revents 0x%x (core 1 has room)", pfd.revents);

	/* Signal 1, then 1 more, from core 1: core 0 runs when both arrived. */
	prog_init(&sig);
	prog_sync(&sig, NEURON_OP_SEM_SIGNAL, 3, 1);
	submit(fd, 1, &sig, NULL, 0, &seq);
	wait_job(fd, 1, seq, 5000, NULL);
	check(wait_job(fd, 0, first, 200, NULL) == -ETIMEDOUT, "sem.one_signal_not_enough",
	      "ran after one of two signals");
	submit(fd, 1, &sig, NULL, 0, &seq);
	pfd.events = POLLIN;
	pfd.revents = 0;
	r = poll(&pfd, 1, 5000);
	check(r == 1 && (pfd.revents & POLLIN), "poll.reports_completion", "poll %d revents 0x%x",
	      r, pfd.revents);
	check(wait_job(fd, 0, last, 10000, &w) == 0 && w.status == NEURON_JOB_OK,
	      "sem.queue_drains", "status %u", w.status);
	/* Wait for the rest; then nothing is left to report. */
	for (seq = first; seq < last; seq++)
		wait_job(fd, 0, seq, 1000, NULL);
	{
		struct neuron_queue_info qi = { .core = 1 };

		xioctl(fd, NEURON_IOCTL_QUEUE_INFO, &qi);
		for (seq = 1; seq <= qi.submitted; seq++)
			wait_job(fd, 1, seq, 1000, NULL);
	}
	pfd.revents = 0;
	poll(&pfd, 1, 0);
	check(!(pfd.revents & POLLIN), "poll.all_waited_for", "revents 0x%x", pfd.revents);
	close(fd);
}

/* A job that never ends is stopped by job_timeout_ms; other cores go on. */
static void test_timeout(void)
{
	int fd = open_dev(0);
	long long resets = sysfs_ll("neuron_core0/resets");
	long long failed = sysfs_ll("neuron_core0/jobs_failed");
	struct neuron_job_wait w = { 0 };
	struct prog p, nop;
	uint64_t stuck, seq, other;
	double t0;

	set_timeout_ms(300);
	reserve(fd, 0x3, NULL);
	prog_init(&p);
	prog_sync(&p, NEURON_OP_SEM_WAIT, 0, 1);
	submit(fd, 0, &p, NULL, 0, &stuck);
	prog_nop(&nop);
	check(submit(fd, 1, &nop, NULL, 0, &other) == 0 && wait_job(fd, 1, other, 2000, &w) == 0 &&
	      w.status == NEURON_JOB_OK, "timeout.other_core_runs", "status %u", w.status);
	t0 = now_ms();
	check(wait_job(fd, 0, stuck, 10000, &w) == 0 && w.status == NEURON_JOB_TIMEOUT &&
	      w.error_index == 0, "timeout.status", "status %u index %u", w.status,
	      w.error_index);
	check(now_ms() - t0 < 5000, "timeout.prompt", "%.0f ms", now_ms() - t0);
	check(sysfs_ll("neuron_core0/resets") == resets + 1 &&
	      sysfs_ll("neuron_core0/jobs_failed") == failed + 1, "timeout.counters",
	      "resets %lld failed %lld", sysfs_ll("neuron_core0/resets"),
	      sysfs_ll("neuron_core0/jobs_failed"));
	check(submit(fd, 0, &nop, NULL, 0, &seq) == 0 && wait_job(fd, 0, seq, 2000, &w) == 0 &&
	      w.status == NEURON_JOB_OK, "timeout.core_usable_after_reset", "status %u", w.status);

	/* A runaway computation: matmuls of 256^3 in a long program. */
	{
		uint32_t h = alloc(fd, 3 * 256 * 256 * 4), slots[1] = { h };
		uint32_t a, b, o, i;

		prog_init(&p);
		a = prog_mat(&p, 0, 0, 256, 256);
		b = prog_mat(&p, 0, 65536, 256, 256);
		o = prog_mat(&p, 0, 131072, 256, 256);
		for (i = 0; i < 32; i++) {
			struct neuron_insn *in = prog_insn(&p, NEURON_OP_MATMUL, 0);

			in->operand[0] = o; in->operand[1] = a; in->operand[2] = b;
		}
		set_timeout_ms(50);
		submit(fd, 0, &p, slots, 1, &seq);
		check(submit(fd, 1, &nop, NULL, 0, &other) == 0 &&
		      wait_job(fd, 1, other, 5000, &w) == 0 && w.status == NEURON_JOB_OK,
		      "timeout.runaway.other_core_runs", "status %u", w.status);
		check(wait_job(fd, 0, seq, 20000, &w) == 0 && w.status == NEURON_JOB_TIMEOUT &&
		      w.error_index < 32, "timeout.runaway.status", "status %u index %u",
		      w.status, w.error_index);
	}
	/* One instruction of 2^36 broadcast elements into 4 bytes: sliced,
	 * so it stops at the timeout like any other job. */
	{
		uint32_t h = alloc(fd, 4096), slots[1] = { h };
		struct neuron_tensor_desc *d;

		prog_init(&p);
		d = &p.d[p.h.desc_count++];
		d->dtype = NEURON_DT_F32;
		d->rank = 6;
		d->dims[0] = 1;
		d->dims[1] = 64;
		d->dims[2] = d->dims[3] = d->dims[4] = 1024;
		d->dims[5] = 1;
		prog_insn(&p, NEURON_OP_FILL, 0);
		set_timeout_ms(100);
		t0 = now_ms();
		memset(&w, 0, sizeof(w));
		check(submit(fd, 0, &p, slots, 1, &seq) == 0 && wait_job(fd, 0, seq, 20000, &w) == 0 &&
		      w.status == NEURON_JOB_TIMEOUT && w.error_index == 0, "timeout.huge_instruction",
		      "status %u index %u", w.status, w.error_index);
		check(now_ms() - t0 < 5000, "timeout.huge_instruction_prompt", "%.0f ms", now_ms() - t0);
	}
	/* One section that ends past the timeout: the job ran past its time,
	 * though no section came after it (it used to end OK). */
	{
		uint32_t h = alloc(fd, 3 * 256 * 256 * 4), slots[1] = { h };
		struct neuron_insn *in;

		prog_init(&p);
		in = prog_insn(&p, NEURON_OP_MATMUL, 0);
		in->operand[1] = prog_mat(&p, 0, 0, 256, 256);
		in->operand[2] = prog_mat(&p, 0, 65536, 256, 256);
		in->operand[0] = prog_mat(&p, 0, 131072, 256, 256);
		set_timeout_ms(10);
		memset(&w, 0, sizeof(w));
		check(submit(fd, 0, &p, slots, 1, &seq) == 0 && wait_job(fd, 0, seq, 20000, &w) == 0 &&
		      w.status == NEURON_JOB_TIMEOUT && w.error_index == 0,
		      "timeout.last_section", "status %u index %u, %llu ns", w.status, w.error_index,
		      (unsigned long long)w.duration_ns);
	}
	/* Softmax over 2^27 broadcast elements (found by fuzzing: 30 s in one
	 * FPU section, then OK past the timeout): one row is refused, rows
	 * stop at the timeout. */
	{
		uint32_t h = alloc(fd, 4096), slots[1] = { h };
		struct neuron_job_submit out = { 0 };
		struct neuron_tensor_desc *d;
		int ret;

		prog_init(&p);
		d = &p.d[p.h.desc_count++];
		d->dtype = NEURON_DT_F32;
		d->rank = 1;
		d->dims[0] = 1u << 27;
		prog_insn(&p, NEURON_OP_SOFTMAX, 0);
		ret = submit_dep(fd, 0, &p, slots, 1, NEURON_NO_DEP, 0, NULL, &out);
		check(ret == -EINVAL && out.error == NEURON_ISA_E_OPERAND && out.error_index == 0,
		      "timeout.softmax_row_refused", "ret %d error %u", ret, out.error);
		d->rank = 2;
		d->dims[0] = 1u << 14;
		d->dims[1] = 1u << 13;
		set_timeout_ms(100);
		t0 = now_ms();
		memset(&w, 0, sizeof(w));
		check(submit(fd, 0, &p, slots, 1, &seq) == 0 && wait_job(fd, 0, seq, 20000, &w) == 0 &&
		      w.status == NEURON_JOB_TIMEOUT, "timeout.softmax_rows_stopped",
		      "status %u", w.status);
		check(now_ms() - t0 < 5000, "timeout.softmax_rows_prompt", "%.0f ms", now_ms() - t0);
	}
	set_timeout_ms(10000);
	close(fd);
}

static void test_fault_and_dependency(void)
{
	int fd = open_dev(0);
	uint32_t h = alloc(fd, 4096), slots[1] = { h };
	int32_t idx[2] = { 1, 7 };	/* the table has 4 rows */
	struct neuron_job_wait w = { 0 };
	struct prog p, c;
	uint64_t s0, s1;
	uint32_t t, ix, o;
	float got[4];
	int r;

	reserve(fd, 0x3, NULL);
	mem_rw(fd, h, 512, idx, sizeof(idx), 1);
	prog_init(&p);
	t = prog_mat(&p, 0, 0, 4, 2);
	ix = prog_vec(&p, 0, 128, 2, NEURON_DT_I32);
	o = prog_mat(&p, 0, 256, 2, 2);
	prog_insn(&p, NEURON_OP_NOP, 0);
	prog_insn(&p, NEURON_OP_GATHER, 0);
	p.i[1].operand[0] = o; p.i[1].operand[1] = t; p.i[1].operand[2] = ix;
	submit(fd, 0, &p, slots, 1, &s0);
	check(wait_job(fd, 0, s0, 5000, &w) == 0 && w.status == NEURON_JOB_FAULT &&
	      w.error == NEURON_ISA_FAULT_INDEX && w.error_index == 1, "fault.gather_index",
	      "status %u error %u index %u", w.status, w.error, w.error_index);

	/* A job after a failed dependency does not run. */
	prog_init(&c);
	prog_insn(&c, NEURON_OP_FILL, 0)->operand[0] = prog_vec(&c, 0, 900, 1, NEURON_DT_F32);
	c.i[0].fparam[0] = 7.0f;
	submit(fd, 0, &p, slots, 1, &s0);
	check(submit_dep(fd, 1, &c, slots, 1, 0, s0, &s1, NULL) == 0 &&
	      wait_job(fd, 1, s1, 5000, &w) == 0 && w.status == NEURON_JOB_ABORTED,
	      "dep.failed_dependency_aborts", "status %u", w.status);
	mem_rw(fd, h, 3600, got, 4, 0);
	check(got[0] == 0.0f, "dep.aborted_job_did_not_run", "wrote %g", got[0]);

	/* Ordering: core 1 copies what core 0 writes after a long wait. */
	{
		struct prog slow, copy;
		uint32_t i, x;

		prog_init(&slow);
		x = prog_vec(&slow, 0, 900, 1, NEURON_DT_F32);
		prog_sync(&slow, NEURON_OP_SEM_WAIT, 1, 1);
		prog_insn(&slow, NEURON_OP_FILL, 0)->operand[0] = x;
		slow.i[1].fparam[0] = 42.0f;
		submit(fd, 0, &slow, slots, 1, &s0);
		prog_init(&copy);
		copy.h.desc_count = 0;
		i = prog_vec(&copy, 0, 901, 1, NEURON_DT_F32);
		x = prog_vec(&copy, 0, 900, 1, NEURON_DT_F32);
		prog_insn(&copy, NEURON_OP_COPY, 0);
		copy.i[0].operand[0] = i; copy.i[0].operand[1] = x;
		check(submit_dep(fd, 1, &copy, slots, 1, 0, s0, &s1, NULL) == 0,
		      "dep.submitted", "refused");
		check(wait_job(fd, 1, s1, 200, NULL) == -ETIMEDOUT, "dep.waits_for_dependency",
		      "ran before its dependency");
		/* Core 1 is busy waiting: the signal comes from core 2. */
		prog_init(&c);
		prog_sync(&c, NEURON_OP_SEM_SIGNAL, 1, 1);
		reserve(fd, 0x4, NULL);
		submit(fd, 2, &c, NULL, 0, NULL);
		memset(&w, 0, sizeof(w));
		r = wait_job(fd, 1, s1, 5000, &w);
		check(r == 0 && w.status == NEURON_JOB_OK, "dep.runs_after", "wait %d status %u",
		      r, w.status);
		mem_rw(fd, h, 3600, got, 8, 0);
		check(got[0] == 42.0f && got[1] == 42.0f, "dep.sees_dependency_output",
		      "got %g %g", got[0], got[1]);
	}
	close(fd);
}

static void test_barrier(void)
{
	int fd = open_dev(0);
	struct neuron_job_wait w0 = { 0 }, w1 = { 0 };
	struct prog p;
	uint64_t s0, s1;

	reserve(fd, 0x3, NULL);
	prog_init(&p);
	prog_sync(&p, NEURON_OP_BARRIER, 2, 0x3);
	submit(fd, 0, &p, NULL, 0, &s0);
	check(wait_job(fd, 0, s0, 200, NULL) == -ETIMEDOUT, "barrier.waits_for_all",
	      "passed alone");
	submit(fd, 1, &p, NULL, 0, &s1);
	check(wait_job(fd, 0, s0, 5000, &w0) == 0 && wait_job(fd, 1, s1, 5000, &w1) == 0 &&
	      w0.status == NEURON_JOB_OK && w1.status == NEURON_JOB_OK, "barrier.all_pass",
	      "status %u %u", w0.status, w1.status);
	prog_init(&p);
	prog_sync(&p, NEURON_OP_BARRIER, 0, 0x5);	/* core 2 is not held */
	submit(fd, 0, &p, NULL, 0, &s0);
	check(wait_job(fd, 0, s0, 5000, &w0) == 0 && w0.status == NEURON_JOB_INVALID &&
	      w0.error_index == 0, "barrier.core_not_held_invalid", "status %u", w0.status);
	close(fd);
}

/* A buffer freed while its job is queued lives until the job ends. */
static void test_buffer_lifetime(void)
{
	int fd = open_dev(0);
	uint32_t h = alloc(fd, 1 << 20), slots[1] = { h };
	long long used = sysfs_ll("memory_used");
	struct neuron_job_wait w = { 0 };
	struct neuron_mem_free f = { .handle = h };
	struct prog p;
	uint64_t seq;
	int r;

	reserve(fd, 0x1, NULL);
	prog_init(&p);
	prog_sync(&p, NEURON_OP_SEM_WAIT, 0, 1);
	prog_insn(&p, NEURON_OP_FILL, 0)->operand[0] = prog_vec(&p, 0, 0, 262144, NEURON_DT_F32);
	submit(fd, 0, &p, slots, 1, &seq);
	check(xioctl(fd, NEURON_IOCTL_MEM_FREE, &f) == 0 && sysfs_ll("memory_used") == used,
	      "lifetime.freed_buffer_held_by_job", "used %lld, was %lld",
	      sysfs_ll("memory_used"), used);
	prog_init(&p);
	prog_sync(&p, NEURON_OP_SEM_SIGNAL, 0, 1);
	reserve(fd, 0x2, NULL);
	r = submit(fd, 1, &p, NULL, 0, NULL);
	check(r == 0, "lifetime.signal_submitted", "submit %d", r);
	r = wait_job(fd, 0, seq, 5000, &w);
	check(r == 0 && w.status == NEURON_JOB_OK, "lifetime.job_ok", "wait %d status %u", r,
	      w.status);
	check(sysfs_ll("memory_used") == used - (1 << 20), "lifetime.memory_returned",
	      "used %lld", sysfs_ll("memory_used"));
	close(fd);
}

/* A process killed with jobs queued and running leaves nothing behind. */
static void test_killed(void)
{
	long long used = sysfs_ll("memory_used");
	int fd, pipefd[2], st;
	double t0;
	pid_t pid;
	char c;

	if (pipe(pipefd))
		return;
	pid = fork();
	if (pid == 0) {
		int cfd = open_dev(0);
		uint32_t h = alloc(cfd, 8 << 20), slots[1] = { h };
		struct prog p;
		int i;

		reserve(cfd, 0xf, NULL);
		prog_init(&p);
		prog_sync(&p, NEURON_OP_SEM_WAIT, 0, 1);
		prog_insn(&p, NEURON_OP_FILL, 0)->operand[0] =
			prog_vec(&p, 0, 0, 2 << 20, NEURON_DT_F32);
		for (i = 0; i < 10; i++)
			submit(cfd, i % 4, &p, slots, 1, NULL);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1)
		c = 0;
	close(pipefd[0]);
	check(sysfs_ll("memory_used") >= used + (8 << 20), "killed.child_holds", "used %lld",
	      sysfs_ll("memory_used"));
	t0 = now_ms();
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	check(now_ms() - t0 < 3000, "killed.exit_prompt", "%.0f ms", now_ms() - t0);
	fd = open_dev(0);
	check(reserve(fd, 0xf, NULL) == 0, "killed.cores_free", "still held");
	check(sysfs_ll("memory_used") == used, "killed.memory_free", "used %lld, was %lld",
	      sysfs_ll("memory_used"), used);
	check(sysfs_ll("neuron_core0/jobs_queued") == 0, "killed.queue_empty", "%lld queued",
	      sysfs_ll("neuron_core0/jobs_queued"));
	close(fd);
}

/* Release with jobs queued: they are aborted and the core handed over. */
static void test_release_busy(void)
{
	int fd = open_dev(0), other = open_dev(0);
	struct prog p;
	int i;

	reserve(fd, 0x1, NULL);
	prog_init(&p);
	prog_sync(&p, NEURON_OP_SEM_WAIT, 0, 1);
	for (i = 0; i < 5; i++)
		submit(fd, 0, &p, NULL, 0, NULL);
	check(release(fd, 0x1) == 0 && reserve(other, 0x1, NULL) == 0,
	      "release.busy_core_handed_over", "not released");
	check(wait_job(other, 0, 1, 0, NULL) == -EINVAL, "release.old_jobs_not_visible",
	      "new owner sees old jobs");
	close(other);
	close(fd);
}

/* Many small jobs from two threads of work: all end, in order. */
static void test_round_trip(void)
{
	int fd = open_dev(0);
	struct neuron_job_wait w = { 0 };
	struct prog p;
	uint64_t seq;
	double t0;
	int i, ok = 1, n = 2000;

	reserve(fd, 0x1, NULL);
	prog_nop(&p);
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		ok &= submit(fd, 0, &p, NULL, 0, &seq) == 0;
		ok &= wait_job(fd, 0, seq, 5000, &w) == 0 && w.status == NEURON_JOB_OK;
	}
	check(ok, "roundtrip.all_ok", "a job failed");
	printf("# empty job round trip: %.1f us\n", (now_ms() - t0) * 1e3 / n);
	close(fd);
}

/* Traced jobs (API 1.8): the header and records, refusals, lifetimes. */
static void test_trace(void)
{
	int fd = open_dev(0), other = open_dev(0);
	uint32_t data = alloc(fd, 4096), tr = alloc(fd, 8192), theirs = alloc(other, 4096);
	struct neuron_trace_header h;
	struct neuron_trace_record r[3];
	struct neuron_job_wait w = { 0 };
	long long used;
	struct prog p;
	uint64_t seq = 0;
	int ret;

	reserve(fd, 0x3, NULL);
	prog_init(&p);
	prog_insn(&p, NEURON_OP_FILL, 0)->operand[0] = prog_vec(&p, 0, 0, 64, NEURON_DT_F32);
	prog_insn(&p, NEURON_OP_NOP, 0);
	prog_sync(&p, NEURON_OP_SEM_SIGNAL, 2, 1);
	prog_image(&p);
	{
		struct neuron_job_submit t = {
			.core = 0, .dep_core = NEURON_NO_DEP, .program = (uintptr_t)p.image,
			.program_size = p.size, .slot_count = 1, .slots = { data },
			.flags = NEURON_JOB_TRACE, .trace = tr,
		};

		ret = xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t);
		seq = t.seq;
		check(ret == 0 && wait_job(fd, 0, seq, 5000, &w) == 0 && w.status == NEURON_JOB_OK,
		      "trace.job_ok", "submit %d status %u", ret, w.status);
		mem_rw(fd, tr, 0, &h, sizeof(h), 0);
		mem_rw(fd, tr, sizeof(h), r, sizeof(r), 0);
		check(h.magic == NEURON_TRACE_MAGIC && h.version == NEURON_TRACE_VERSION &&
		      h.header_size == sizeof(h) && h.record_size == sizeof(r[0]) &&
		      h.capacity >= 3 && h.capacity <= (8192 - sizeof(h)) / sizeof(r[0]) &&
		      h.count == 3 && !h.dropped &&
		      h.core == 0 && h.seq == seq && h.status == NEURON_JOB_OK && h.insn_count == 3,
		      "trace.header", "magic 0x%x count %u capacity %u seq %llu", h.magic, h.count,
		      h.capacity, (unsigned long long)h.seq);
		check(h.submitted_ns && h.submitted_ns <= h.dequeued_ns &&
		      h.dequeued_ns <= h.started_ns && h.started_ns <= r[0].start_ns &&
		      r[2].end_ns <= h.finished_ns, "trace.times_ordered", "%llu %llu %llu %llu",
		      (unsigned long long)h.submitted_ns, (unsigned long long)h.dequeued_ns,
		      (unsigned long long)h.started_ns, (unsigned long long)h.finished_ns);
		check(r[0].index == 0 && r[0].opcode == NEURON_OP_FILL && r[0].kind == NEURON_TRACE_COMPUTE &&
		      r[0].work == 64 && r[0].bytes_written == 256 && r[0].part == 0 &&
		      r[0].part_count == r[0].parts &&
		      r[1].kind == NEURON_TRACE_NOP && r[2].opcode == NEURON_OP_SEM_SIGNAL &&
		      r[2].kind == NEURON_TRACE_SYNC, "trace.records", "op %u kind %u work %llu",
		      r[0].opcode, r[0].kind, (unsigned long long)r[0].work);

		t.flags = NEURON_JOB_TRACE;
		t.trace = 0;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "trace.refuse_no_buffer",
		      "accepted");
		t.flags = 0;
		t.trace = tr;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "trace.refuse_without_flag",
		      "accepted");
		t.flags = NEURON_JOB_TRACE;
		t.trace_pad = 1;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "trace.refuse_pad",
		      "accepted");
		t.trace_pad = 0;
		t.trace = theirs + 1000;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -ENOENT, "trace.refuse_foreign",
		      "accepted");
		t.flags = NEURON_JOB_TRACE | 0x80;
		t.trace = tr;
		check(xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t) == -EINVAL, "trace.refuse_unknown_flag",
		      "accepted");
	}

	/* A trace buffer freed while its job waits is written, then returned. */
	used = sysfs_ll("memory_used");
	prog_init(&p);
	prog_sync(&p, NEURON_OP_SEM_WAIT, 4, 1);
	prog_insn(&p, NEURON_OP_FILL, 0)->operand[0] = prog_vec(&p, 0, 0, 64, NEURON_DT_F32);
	prog_image(&p);
	{
		struct neuron_job_submit t = {
			.core = 0, .dep_core = NEURON_NO_DEP, .program = (uintptr_t)p.image,
			.program_size = p.size, .slot_count = 1, .slots = { data },
			.flags = NEURON_JOB_TRACE, .trace = tr,
		};
		struct neuron_mem_free f = { .handle = tr };

		ret = xioctl(fd, NEURON_IOCTL_JOB_SUBMIT, &t);
		seq = t.seq;
		check(ret == 0 && xioctl(fd, NEURON_IOCTL_MEM_FREE, &f) == 0 &&
		      sysfs_ll("memory_used") == used, "trace.freed_buffer_held", "submit %d", ret);
	}
	prog_init(&p);
	prog_sync(&p, NEURON_OP_SEM_SIGNAL, 4, 1);
	submit(fd, 1, &p, NULL, 0, NULL);
	ret = wait_job(fd, 0, seq, 5000, &w);
	check(ret == 0 && w.status == NEURON_JOB_OK &&
	      sysfs_ll("memory_used") == used - 8192, "trace.freed_buffer_returned",
	      "wait %d status %u used %lld", ret, w.status, sysfs_ll("memory_used"));
	close(other);
	close(fd);
}

int main(void)
{
	test_reserve();
	test_nop_and_seq();
	test_compute();
	test_refused();
	test_depth_poll_sem();
	test_timeout();
	test_fault_and_dependency();
	test_barrier();
	test_buffer_lifetime();
	test_killed();
	test_release_busy();
	test_round_trip();
	test_trace();
	return failures ? 1 : 0;
}
