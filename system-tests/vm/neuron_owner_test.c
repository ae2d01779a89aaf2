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
 *     system may give to another process);
 *   - a descriptor passed over a socket (SCM_RIGHTS) by an opener that
 *     exits: while in flight no live process holds the file, and pid 0
 *     is named (the dead opener's pid was; the search of every process
 *     is then repeated at most once a second); once received, the
 *     receiver is named.
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
#include <sys/socket.h>
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

/* @fd over the socket @sock (SCM_RIGHTS). */
static int send_fd(int sock, int fd)
{
	char byte = 'f', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec io = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec io = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	int fd = -1;

	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static pid_t core_owner(int fd, uint32_t core)
{
	struct neuron_queue_info qi = { .core = core };

	return xioctl(fd, NEURON_IOCTL_QUEUE_INFO, &qi) ? -1 : (pid_t)qi.owner_pid;
}

/*
 * A process opens the device, reserves core 3, passes the descriptor to
 * a receiver over a socket and exits before it is received. In flight,
 * no process is named (pid 0); once the receiver took the descriptor, it
 * is (within the second a fruitless search waits), and holds the core
 * until killed.
 */
static void test_passed_file(void)
{
	int sv[2], go[2], fd, st, named = 0;
	pid_t receiver, opener;
	double t0;
	char b = 0;

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || pipe(go)) {
		check(0, "owner.passed.setup", "socketpair or pipe: %s", strerror(errno));
		return;
	}
	receiver = fork();
	if (receiver == 0) {
		close(go[1]);
		if (read(go[0], &b, 1) != 1 || recv_fd(sv[1]) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	opener = fork();
	if (opener == 0) {
		int cfd = open_dev(0);

		if (reserve(cfd, 0x8, NULL) || send_fd(sv[0], cfd))
			_exit(1);
		_exit(0);
	}
	close(go[0]);
	waitpid(opener, &st, 0);
	fd = open_dev(0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "owner.passed.sent", "opener status 0x%x", st);
	/* Asked twice in flight: the second within the second of the first. */
	check(core_owner(fd, 3) == 0 && core_owner(fd, 3) == 0, "owner.passed.in_flight_no_holder",
	      "owner %d (opener %d, receiver %d): a live process named, or the dead opener",
	      core_owner(fd, 3), opener, receiver);
	check(list_has(fd, 0) == 1 && list_has(fd, opener) == 0, "owner.passed.in_flight_listed_as_0",
	      "pid 0 listed %d, opener listed %d", list_has(fd, 0), list_has(fd, opener));
	if (write(go[1], &b, 1) != 1)
		check(0, "owner.passed.go", "%s", strerror(errno));
	t0 = now_ms();
	while (!named && now_ms() - t0 < 5000) {
		named = core_owner(fd, 3) == receiver;
		if (!named)
			usleep(20000);
	}
	check(named, "owner.passed.receiver_named", "owner %d, receiver %d, opener %d after %.0f ms",
	      core_owner(fd, 3), receiver, opener, now_ms() - t0);
	printf("# the receiver named %.0f ms after it was let receive\n", now_ms() - t0);
	check(list_has(fd, receiver) == 1 && list_has(fd, opener) == 0, "owner.passed.process_list",
	      "receiver listed %d, opener listed %d", list_has(fd, receiver), list_has(fd, opener));
	kill(receiver, SIGKILL);
	waitpid(receiver, &st, 0);
	check(reserve(fd, 0x8, NULL) == 0, "owner.passed.cores_free_after_kill", "still held");
	close(fd);
	close(go[1]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	test_release_twice();
	test_release_race();
	test_child_keeps_file();
	test_passed_file();
	return failures ? 1 : 0;
}
