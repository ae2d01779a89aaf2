// SPDX-License-Identifier: GPL-2.0
/*
 * neuron_owner_test: who holds a NeuronCore when threads and processes
 * share a file. Regression tests of what fuzzing the ioctls found:
 *
 *   - two threads of one file releasing the same core at once: one
 *     release, the other refused, and a reservation another file makes
 *     in between is never undone (it was, and queued jobs then drained
 *     one job timeout at a time, in an unkillable release);
 *   - the opener exits while a forked child keeps the descriptor: the
 *     child is named as the holder (the dead opener's pid was, which the
 *     system may give to another process).
 *
 * Runs inside scripts/vm-test as root, with neuron.ko loaded with
 * fake_devices=2 and 4 cores each; prints one "PASS name" or
 * "FAIL name: why" line per check.
 *
 *   neuron_owner_test
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "vm_queue.h"

struct racer {
	int fd;
	uint32_t mask;
	pthread_barrier_t *start;
	int ret;
};

static void *release_thread(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->start);
	r->ret = release(r->fd, r->mask);
	return NULL;
}

/*
 * File A holds core 0 with jobs queued behind one that waits forever;
 * two of its threads release core 0 at once while file B reserves it as
 * soon as it can. B must keep what it got.
 */
static void test_release_race(void)
{
	int rounds = 100, round, both = 0, neither = 0, stolen = 0, lost = 0;
	double t0 = now_ms(), slowest = 0;
	struct prog stuck, nop;

	prog_init(&stuck);
	prog_sync(&stuck, NEURON_OP_SEM_WAIT, 0, 1);
	prog_nop(&nop);
	for (round = 0; round < rounds; round++) {
		int a = open_dev(0), b = open_dev(0), i, got = -1;
		struct racer r[2];
		pthread_barrier_t start;
		pthread_t t[2];
		struct neuron_job_wait w = { 0 };
		uint64_t seq;
		double r0;

		reserve(a, 0x1, NULL);
		for (i = 0; i < 8; i++)
			submit(a, 0, &stuck, NULL, 0, NULL);
		pthread_barrier_init(&start, NULL, 3);
		for (i = 0; i < 2; i++) {
			r[i] = (struct racer){ .fd = a, .mask = 0x1, .start = &start };
			pthread_create(&t[i], NULL, release_thread, &r[i]);
		}
		pthread_barrier_wait(&start);
		r0 = now_ms();
		while (now_ms() - r0 < 5000 && (got = reserve(b, 0x1, NULL)) == -EBUSY)
			;
		for (i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		if (now_ms() - r0 > slowest)
			slowest = now_ms() - r0;
		pthread_barrier_destroy(&start);
		if (!r[0].ret && !r[1].ret)
			both++;
		if (r[0].ret && r[1].ret)
			neither++;
		if (got) {
			lost++;
		} else if (submit(b, 0, &nop, NULL, 0, &seq) ||
			   wait_job(b, 0, seq, 5000, &w) || w.status != NEURON_JOB_OK) {
			stolen++;
		}
		close(a);
		close(b);
	}
	check(!both && !neither, "owner.release_race.one_release",
	      "both released %d times, neither %d times in %d rounds", both, neither, rounds);
	check(!lost, "owner.release_race.core_handed_over", "B never got the core %d times", lost);
	check(!stolen, "owner.release_race.reservation_kept",
	      "B's reservation undone %d times in %d rounds", stolen, rounds);
	check(slowest < 3000, "owner.release_race.prompt", "slowest round %.0f ms", slowest);
	printf("# %d racing releases in %.0f ms\n", rounds, now_ms() - t0);
}

/* Releasing a core this file is already releasing, then reserving it. */
static void test_release_twice(void)
{
	int fd = open_dev(0);

	check(reserve(fd, 0x2, NULL) == 0 && release(fd, 0x2) == 0 && release(fd, 0x2) == -EINVAL,
	      "owner.release_twice_einval", "a released core released again");
	check(reserve(fd, 0x2, NULL) == 0, "owner.reserve_after_release", "not reserved");
	close(fd);
}

static int list_has(int fd, pid_t pid)
{
	struct neuron_process_info e[64];
	struct neuron_process_list l = {
		.entry_size = sizeof(e[0]), .capacity = 64, .entries = (uintptr_t)e,
	};
	uint32_t i;

	if (xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &l))
		return -1;
	for (i = 0; i < l.count && i < 64; i++)
		if (e[i].pid == pid)
			return 1;
	return 0;
}

/*
 * A process opens the device, reserves core 2, forks a child that keeps
 * the descriptor, and exits. The child holds the core now: it is named.
 */
static void test_child_keeps_file(void)
{
	struct neuron_core_reserve r = { 0 };
	struct neuron_queue_info qi = { .core = 2 };
	int pipefd[2], fd, st;
	pid_t opener, child = 0;

	/* The child, orphaned, is reparented to this process. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(pipefd))
		return;
	opener = fork();
	if (opener == 0) {
		int cfd = open_dev(0);
		pid_t kid;

		alloc(cfd, 1 << 20);
		if (reserve(cfd, 0x4, NULL))
			_exit(1);
		kid = fork();
		if (kid == 0) {
			close(pipefd[1]);
			pause();
			_exit(0);
		}
		if (write(pipefd[1], &kid, sizeof(kid)) != sizeof(kid))
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &child, sizeof(child)) != sizeof(child))
		child = 0;
	close(pipefd[0]);
	waitpid(opener, &st, 0);
	if (!child) {
		check(0, "owner.child.setup", "no child");
		return;
	}

	fd = open_dev(0);
	check(xioctl(fd, NEURON_IOCTL_QUEUE_INFO, &qi) == 0 && qi.owner_pid == child,
	      "owner.child.queue_info_names_child", "owner %d, child %d, opener %d",
	      qi.owner_pid, child, opener);
	check(reserve(fd, 0x4, &r) == -EBUSY && r.busy_pid == child, "owner.child.busy_names_child",
	      "busy pid %d, child %d, opener %d", r.busy_pid, child, opener);
	check(list_has(fd, child) == 1 && list_has(fd, opener) == 0,
	      "owner.child.process_list", "child listed %d, opener listed %d",
	      list_has(fd, child), list_has(fd, opener));
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	check(reserve(fd, 0x4, NULL) == 0, "owner.child.cores_free_after_kill", "still held");
	check(list_has(fd, child) == 0, "owner.child.gone_from_list", "still listed");
	close(fd);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(void)
{
	test_release_twice();
	test_release_race();
	test_child_keeps_file();
	return failures ? 1 : 0;
}
