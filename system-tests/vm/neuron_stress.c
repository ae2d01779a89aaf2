// SPDX-License-Identifier: GPL-2.0
/*
 * neuron_stress: many processes using the driver at once, killed at
 * random points, the way a busy host runs it. Two modes:
 *
 *   neuron_stress run [--seconds N] [--seed N] [--workers N]
 *	Workers start neuron-run on random models (MLPs of several sizes),
 *	random NeuronCores (NEURON_RT_VISIBLE_CORES), replicas and requests
 *	in flight, as root or as neuron-user; most are killed at a random
 *	point (SIGKILL, SIGTERM or SIGINT), the rest run to the end, where
 *	they must succeed or be refused because another holds the cores.
 *	Meanwhile neuron-ls lists the devices and this process reads every
 *	sysfs attribute. Afterwards all device and host memory is returned,
 *	every core is idle with nothing queued, no process is listed, and
 *	every core of every device runs a model again.
 *
 *   neuron_stress cycles --module PATH [--cycles N] [--seed N]
 *	Loads and unloads the module (finit_module, delete_module) while
 *	other processes open the devices, allocate, map and touch buffers,
 *	reserve cores and close, and others read sysfs. Unload is refused
 *	(EBUSY) while a file is open and must succeed once they are closed.
 *	The module must not be loaded at the start; it is not at the end.
 *
 * Deterministic choices per seed (timing is not). Prints PASS/FAIL lines
 * and "# " summaries; exits 1 on any failure. A kernel splat fails the
 * run through vm-run.
 */
#include "vm_test.h"

#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "../../driver/include/uapi/neuron.h"

#define SYS_CLASS "/sys/class/neuron_device"
#define MAX_WORKERS 32
#define MODELS 3

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	/* xorshift64*: the same choices for the same seed. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return n ? (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32) % n : 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6) };

	nanosleep(&ts, NULL);
}

/* The uid and gid of a user, from /etc/passwd (no NSS in a static binary). */
static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	char line[512];
	FILE *f = fopen("/etc/passwd", "r");
	size_t len = strlen(name);
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned int u, g;

		if (strncmp(line, name, len) || line[len] != ':')
			continue;
		if (sscanf(line + len, ":%*[^:]:%u:%u:", &u, &g) == 2) {
			*uid = u;
			*gid = g;
			found = 1;
		}
	}
	fclose(f);
	return found;
}

static long read_number(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static int read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/*
 * Read every regular attribute of a device and of its cores. Returns the
 * number read; *errors counts reads that failed for a reason other than
 * the device going away (ENOENT, ENODEV while the module unloads).
 */
static int read_sysfs_device(unsigned int dev, int *errors)
{
	char dir[128], path[512], buf[4096];
	int count = 0;
	unsigned int pass;

	for (pass = 0; pass < 9; pass++) {
		struct dirent *e;
		DIR *d;

		if (pass == 0)
			snprintf(dir, sizeof(dir), SYS_CLASS "/neuron%u", dev);
		else
			snprintf(dir, sizeof(dir), SYS_CLASS "/neuron%u/neuron_core%u", dev, pass - 1);
		d = opendir(dir);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			struct stat st;
			int r;

			if (e->d_name[0] == '.' || !strcmp(e->d_name, "uevent"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (lstat(path, &st) || !S_ISREG(st.st_mode) || !(st.st_mode & 0444))
				continue;
			r = read_text(path, buf, sizeof(buf));
			if (r == -ENOENT || r == -ENODEV)
				continue;
			if (r) {
				printf("# read %s: %s\n", path, strerror(-r));
				(*errors)++;
			}
			count++;
		}
		closedir(d);
	}
	return count;
}

/* ------------------------------------------------------------------------
 * run: neuron-run workers killed at random, listers and sysfs readers.
 */

enum fate { FATE_FINISH, FATE_KILL, FATE_TERM, FATE_INT };

struct worker {
	pid_t pid;
	int lister;		/* neuron-ls, not neuron-run */
	enum fate fate;
	double started, kill_at;
	int signalled;
	char log[64];
	char what[256];
};

struct run_stats {
	int started, ok, busy, killed, interrupted, listed, failed;
	long sysfs_reads;
	int sysfs_errors;
};

static unsigned int devices = 2, cores_per_device = 4;
static uid_t user_uid;
static gid_t user_gid;
static int have_user;

static pid_t spawn(const char *log, const char *visible, int as_user, char *const argv[])
{
	pid_t pid = fork();

	if (pid)
		return pid;
	{
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
	}
	if (visible)
		setenv("NEURON_RT_VISIBLE_CORES", visible, 1);
	else
		unsetenv("NEURON_RT_VISIBLE_CORES");
	if (as_user && have_user) {
		/* neuron-user's supplementary group is neuron: take it from
		 * /dev/neuron0's group, as udev set it. */
		gid_t groups[1];
		struct stat st;

		groups[0] = stat("/dev/neuron0", &st) == 0 ? st.st_gid : user_gid;
		if (setgroups(1, groups) || setgid(user_gid) || setuid(user_uid))
			_exit(126);
	}
	execvp(argv[0], argv);
	_exit(127);
}

static const char *model_path(unsigned int m)
{
	static char path[MODELS][48];

	snprintf(path[m], sizeof(path[m]), "/tmp/stress-mlp%u.neff", m);
	return path[m];
}

static int prepare_models(void)
{
	static const char *const width[MODELS] = { "64", "256", "512" };
	static const char *const batch[MODELS] = { "1", "8", "32" };
	unsigned int m;

	for (m = 0; m < MODELS; m++) {
		char *argv[] = { "neuron-run", (char *)model_path(m), "--example-mlp",
				 "--example-width", (char *)width[m], "--example-batch",
				 (char *)batch[m], "--iterations", "1", NULL };
		int status;
		pid_t pid = spawn("/tmp/stress-prepare.log", NULL, 0, argv);

		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			char buf[2048] = "";

			read_text("/tmp/stress-prepare.log", buf, sizeof(buf));
			printf("# neuron-run --example-mlp failed:\n%s\n", buf);
			return -1;
		}
		chmod(model_path(m), 0644);
	}
	return 0;
}

static void start_worker(struct worker *w, unsigned int slot, double now)
{
	char iters[16], replicas[16], inflight[16], visible[32];
	unsigned int m = rnd(MODELS), first, count, replicas_n, total = devices * cores_per_device;
	int as_user = rnd(2);

	memset(w, 0, sizeof(*w));
	snprintf(w->log, sizeof(w->log), "/tmp/stress-%u.log", slot);
	w->started = now;
	if (rnd(8) == 0) {
		/* A lister: neuron-ls as an operator or a group member runs it. */
		static const char *const flags[] = { "--wide", "--json-output", "--topology" };
		const char *flag = flags[rnd(3)];
		char *argv[] = { "neuron-ls", (char *)flag, NULL };

		w->lister = 1;
		w->fate = FATE_FINISH;
		snprintf(w->what, sizeof(w->what), "neuron-ls %s%s", flag, as_user ? " (neuron-user)" : "");
		w->pid = spawn(w->log, NULL, as_user, argv);
		return;
	}
	/* Cores of one device mostly; sometimes a range across both. */
	count = 1 + rnd(cores_per_device);
	first = rnd(2) ? rnd(devices) * cores_per_device + rnd(cores_per_device - count + 1)
		       : rnd(total - count + 1);
	replicas_n = 1 + rnd(count < 3 ? count : 3);
	if (count < replicas_n)
		replicas_n = count;
	snprintf(visible, sizeof(visible), count == 1 ? "%u" : "%u-%u", first, first + count - 1);
	snprintf(replicas, sizeof(replicas), "%u", replicas_n);
	snprintf(inflight, sizeof(inflight), "%u", 1 + rnd(8));
	{
		char *argv[] = { "neuron-run", (char *)model_path(m), "--iterations", iters,
				 "--cores", replicas, "--concurrency", inflight, NULL };
		static int first = 1;
		uint32_t f = rnd(10);

		w->fate = f < 3 ? FATE_FINISH : f < 7 ? FATE_KILL : f < 9 ? FATE_TERM : FATE_INT;
		/* The first runs to its end, so that every run has one that
		 * does, however slow the machine. */
		if (first)
			w->fate = FATE_FINISH;
		first = 0;
		/* Those that run to the end stay short, whatever the emulator's
		 * speed; those killed may have asked for far more. */
		snprintf(iters, sizeof(iters), "%u",
			 1 + rnd(w->fate == FATE_FINISH ? 12 : rnd(4) ? 400 : 20000));
		/* Killed anywhere from before the runtime opens the device to
		 * well into its requests. */
		w->kill_at = now + rnd(rnd(2) ? 400 : 3000);
		snprintf(w->what, sizeof(w->what),
			 "NEURON_RT_VISIBLE_CORES=%s neuron-run mlp%u --iterations %s --cores %s --concurrency %s%s",
			 visible, m, iters, replicas, inflight, as_user ? " (neuron-user)" : "");
		w->pid = spawn(w->log, visible, as_user, argv);
	}
}

static int log_has(const char *log, const char *text)
{
	char buf[8192];

	return read_text(log, buf, sizeof(buf)) == 0 && strstr(buf, text);
}

static void report_failure(struct worker *w, const char *why, struct run_stats *s)
{
	char buf[4096] = "";

	s->failed++;
	read_text(w->log, buf, sizeof(buf));
	printf("FAIL stress.worker: %s: %s\n# its output:\n%s\n", w->what, why, buf);
	fflush(stdout);
}

/* A worker ended: count it, or report it. */
static void finish_worker(struct worker *w, int status, struct run_stats *s)
{
	char why[96];

	if (w->signalled) {
		/* Killed at a random point, or it finished just before. */
		if (WIFSIGNALED(status)) {
			if (w->fate == FATE_KILL)
				s->killed++;
			else
				s->interrupted++;
			return;
		}
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, sizeof(why), "died of signal %d that nobody sent", WTERMSIG(status));
		report_failure(w, why, s);
		return;
	}
	if (WEXITSTATUS(status) == 0) {
		if (w->lister)
			s->listed++;
		else if (w->signalled)
			s->interrupted++;	/* handled SIGTERM/SIGINT and exited cleanly */
		else
			s->ok++;
		return;
	}
	/* The only refusal expected: another process holds the cores. */
	if (!w->lister && log_has(w->log, " are held by ")) {
		s->busy++;
		return;
	}
	snprintf(why, sizeof(why), "exited with %d", WEXITSTATUS(status));
	report_failure(w, why, s);
}

static int quiet_devices(char *why, size_t size)
{
	unsigned int d, c;

	for (d = 0; d < devices; d++) {
		char path[128], status[32];

		snprintf(path, sizeof(path), SYS_CLASS "/neuron%u/memory_used", d);
		if (read_number(path) != 0) {
			snprintf(why, size, "neuron%u memory_used %ld", d, read_number(path));
			return 0;
		}
		snprintf(path, sizeof(path), SYS_CLASS "/neuron%u/host_memory_used", d);
		if (read_number(path) > 0) {
			snprintf(why, size, "neuron%u host_memory_used %ld", d, read_number(path));
			return 0;
		}
		for (c = 0; c < cores_per_device; c++) {
			snprintf(path, sizeof(path), SYS_CLASS "/neuron%u/neuron_core%u/jobs_queued", d, c);
			if (read_number(path) != 0) {
				snprintf(why, size, "neuron%u core %u jobs_queued %ld", d, c, read_number(path));
				return 0;
			}
			snprintf(path, sizeof(path), SYS_CLASS "/neuron%u/neuron_core%u/status", d, c);
			if (read_text(path, status, sizeof(status)) || strcmp(status, "idle\n")) {
				snprintf(why, size, "neuron%u core %u status %s", d, c, status);
				return 0;
			}
		}
	}
	return 1;
}

static int process_count(unsigned int dev)
{
	struct neuron_process_info e[8];
	struct neuron_process_list l = {
		.entry_size = sizeof(e[0]), .capacity = 8, .entries = (uintptr_t)e,
	};
	int fd = open_dev(dev), r = xioctl(fd, NEURON_IOCTL_PROCESS_LIST, &l);

	close(fd);
	/* This process is attached while it asks. */
	return r ? -1 : (int)l.count - 1;
}

static int run_everywhere(void)
{
	unsigned int d;
	int ok = 1;

	for (d = 0; d < devices; d++) {
		char visible[32], replicas[16], log[64];
		char *argv[] = { "neuron-run", (char *)model_path(1), "--iterations", "40",
				 "--cores", replicas, "--concurrency", "8", NULL };
		int status;
		pid_t pid;

		snprintf(visible, sizeof(visible), "%u-%u", d * cores_per_device,
			 (d + 1) * cores_per_device - 1);
		snprintf(replicas, sizeof(replicas), "%u", cores_per_device);
		snprintf(log, sizeof(log), "/tmp/stress-after%u.log", d);
		pid = spawn(log, visible, 0, argv);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			char buf[2048] = "";

			read_text(log, buf, sizeof(buf));
			printf("# neuron-run on all cores of neuron%u:\n%s\n", d, buf);
			ok = 0;
		}
	}
	return ok;
}

static int mode_run(unsigned int seconds, unsigned int nworkers)
{
	struct worker w[MAX_WORKERS] = { 0 };
	struct run_stats s = { 0 };
	double t0 = now_ms(), deadline, hang_ms = 180000;
	char why[128] = "";
	unsigned int i, d, running = 0;
	int quiet = 0;

	if (prepare_models()) {
		check(0, "stress.prepare", "the example models could not be written");
		return 1;
	}
	/* The run's time starts once the models exist: writing them can take
	 * longer than the whole run on a debug kernel under emulation. */
	printf("# stress: the %d example models written in %.1f s\n", MODELS, (now_ms() - t0) / 1000);
	deadline = now_ms() + seconds * 1000.0;
	for (;;) {
		double now = now_ms();
		int status;
		pid_t pid;

		for (i = 0; i < nworkers && now < deadline; i++) {
			if (!w[i].pid) {
				start_worker(&w[i], i, now);
				s.started += !w[i].lister;
				running++;
			}
		}
		for (i = 0; i < nworkers; i++) {
			int sig;

			if (!w[i].pid || w[i].signalled)
				continue;
			if (now >= deadline && !w[i].lister && w[i].fate != FATE_FINISH)
				sig = SIGKILL;		/* the end: what was to be killed anyway */
			else if (w[i].fate == FATE_FINISH && now - w[i].started > hang_ms)
				sig = SIGKILL;
			else if (w[i].fate != FATE_FINISH && now >= w[i].kill_at)
				sig = w[i].fate == FATE_KILL ? SIGKILL : w[i].fate == FATE_TERM ? SIGTERM : SIGINT;
			else
				continue;
			if (w[i].fate == FATE_FINISH && now - w[i].started > hang_ms)
				report_failure(&w[i], "still running after 180 s", &s);
			kill(w[i].pid, sig);
			w[i].signalled = 1;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < nworkers; i++) {
				if (w[i].pid == pid) {
					finish_worker(&w[i], status, &s);
					w[i].pid = 0;
					running--;
				}
			}
		}
		if (now >= deadline && !running)
			break;
		/* Between polls: sysfs, as neuron-top and neuron-monitor read it. */
		s.sysfs_reads += read_sysfs_device(rnd(devices), &s.sysfs_errors);
		sleep_ms(5 + rnd(20));
	}
	printf("# stress: %d neuron-run started in %u s: %d ran to the end, %d refused (cores held), "
	       "%d killed, %d stopped by SIGTERM or SIGINT; %d neuron-ls; %ld sysfs reads\n",
	       s.started, seconds, s.ok, s.busy, s.killed, s.interrupted, s.listed, s.sysfs_reads);
	check(s.started > 0 && !s.failed, "stress.workers", "%d started, %d failed (above)",
	      s.started, s.failed);
	check(s.sysfs_reads > 0 && !s.sysfs_errors, "stress.sysfs_reads", "%ld reads, %d failed",
	      s.sysfs_reads, s.sysfs_errors);
	check(s.ok + s.busy > 0 && s.killed + s.interrupted > 0, "stress.mix",
	      "%d ran to the end, %d refused, %d killed or stopped", s.ok, s.busy, s.killed + s.interrupted);
	/* Everything the dead held is returned (a file's release may still be
	 * draining a job when its process is reaped: give it a few seconds). */
	for (i = 0; i < 100 && !(quiet = quiet_devices(why, sizeof(why))); i++)
		sleep_ms(100);
	check(quiet, "stress.all_returned", "%s", why);
	for (d = 0; d < devices; d++) {
		char name[64];
		int n = process_count(d);

		snprintf(name, sizeof(name), "stress.neuron%u.no_process", d);
		check(n == 0, name, "%d processes still attached", n);
	}
	check(run_everywhere(), "stress.cores_free_again", "a model did not run on every core");
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * cycles: load and unload racing open files and sysfs readers.
 */

struct opener_stats {
	long reader, opens, absent, ops, errors;
};

static volatile sig_atomic_t stop;
/*
 * Shared with the openers (an anonymous shared page): set while the cycle
 * loop waits for an unload that stayed refused. Openers then finish the
 * file they hold and open no other, so the unload must go through. On a
 * slow guest (the debug kernel under TCG) four openers are seldom all
 * between files at once, and the loop once gave up after 20 s of refusals
 * that were all correct.
 */
static volatile int *hold_off;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * One open file's life: info, a buffer mapped and touched, a core. The
 * mapping is left in *map for the caller to unmap after it closes the
 * file half the time, so that the file's release comes with the munmap.
 */
static int use_device(int fd, struct opener_stats *s, void **map, size_t *map_len)
{
	struct neuron_device_info info = { 0 };
	struct neuron_mem_alloc a = { .size = 4096 << rnd(5), .placement = rnd(2),
				      .core = NEURON_CORE_ANY };
	struct neuron_core_reserve r = { 0 };
	int e;

	e = xioctl(fd, NEURON_IOCTL_DEVICE_INFO, &info);
	if (e)
		return e;
	s->ops++;
	e = xioctl(fd, NEURON_IOCTL_MEM_ALLOC, &a);
	if (e && e != -ENOMEM)
		return e;
	if (!e) {
		void *p = mmap(NULL, a.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.mmap_offset);

		if (p == MAP_FAILED)
			return -errno;
		memset(p, 0x5a, a.size);
		s->ops++;
		*map = p;
		*map_len = a.size;
	}
	r.core_mask = 1u << rnd(info.core_count ? info.core_count : 1);
	e = xioctl(fd, NEURON_IOCTL_CORE_RESERVE, &r);
	if (e && e != -EBUSY)
		return e;
	s->ops++;
	return 0;
}

static void opener(unsigned int id, int pipe_fd)
{
	struct opener_stats s = { 0 };

	rng ^= id * 0x9E3779B97F4A7C15ull;
	while (!stop) {
		char path[32];
		void *map = NULL;
		size_t map_len = 0;
		int fd, e, unmap_first = rnd(2);

		if (hold_off && *hold_off) {
			sleep_ms(1);
			continue;
		}

		snprintf(path, sizeof(path), "/dev/neuron%u", rnd(2));
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			/* Between unload and load: no node, or no driver. */
			if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
				s.absent++;
			else
				s.errors++;
			sleep_ms(rnd(3));
			continue;
		}
		s.opens++;
		e = use_device(fd, &s, &map, &map_len);
		if (e) {
			printf("# %s: unexpected %s\n", path, strerror(-e));
			s.errors++;
		}
		sleep_ms(rnd(4));
		if (map && unmap_first)
			munmap(map, map_len);
		close(fd);
		if (map && !unmap_first)
			munmap(map, map_len);	/* the file's last reference */
		/* Idle for a while: an unload succeeds only when every opener
		 * is between files at once. */
		sleep_ms(rnd(12));
	}
	if (write(pipe_fd, &s, sizeof(s)) != sizeof(s))
		_exit(1);
	_exit(0);
}

static void sysfs_reader(unsigned int id, int pipe_fd)
{
	struct opener_stats s = { 0 };
	int errors = 0;

	rng ^= id * 0xD1B54A32D192ED03ull;
	s.reader = 1;
	while (!stop) {
		s.ops += read_sysfs_device(rnd(4), &errors);
		sleep_ms(rnd(2));
	}
	s.errors = errors;
	if (write(pipe_fd, &s, sizeof(s)) != sizeof(s))
		_exit(1);
	_exit(0);
}

static int module_loaded(void)
{
	char line[256];
	FILE *f = fopen("/proc/modules", "r");
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "neuron ", 7);
	fclose(f);
	return found;
}

static int mode_cycles(const char *module, unsigned int cycles)
{
	unsigned int nopeners = 4, nreaders = 2, i, done = 0;
	pid_t kids[8];
	int fds[2], mod_fd, load_errors = 0, stuck = 0;
	long refused = 0, held = 0;
	struct opener_stats total = { 0 }, readers = { 0 };
	double t0 = now_ms();
	void *page;

	if (module_loaded() != 0) {
		check(0, "stress.cycles.start", "the module is loaded already: unload it first");
		return 1;
	}
	mod_fd = open(module, O_RDONLY | O_CLOEXEC);
	if (mod_fd < 0 || pipe(fds)) {
		check(0, "stress.cycles.start", "%s: %s", module, strerror(errno));
		return 1;
	}
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		check(0, "stress.cycles.start", "mmap: %s", strerror(errno));
		return 1;
	}
	hold_off = page;
	signal(SIGTERM, on_term);
	for (i = 0; i < nopeners + nreaders; i++) {
		kids[i] = fork();
		if (kids[i] < 0) {
			/* Never kill(-1): only the children that exist. */
			check(0, "stress.cycles.start", "fork: %s", strerror(errno));
			while (i--)
				kill(kids[i], SIGKILL);
			return 1;
		}
		if (kids[i] == 0) {
			close(fds[0]);
			if (i < nopeners)
				opener(i, fds[1]);
			sysfs_reader(i, fds[1]);
		}
	}
	close(fds[1]);
	for (i = 0; i < cycles; i++) {
		double t;

		if (syscall(SYS_finit_module, mod_fd, "fake_devices=2 fake_cores=4 fake_memory_mb=256", 0)) {
			printf("# cycle %u: finit_module: %s\n", i, strerror(errno));
			load_errors++;
			break;
		}
		sleep_ms(rnd(rnd(4) ? 30 : 300));
		/*
		 * Unload: refused while a file is open, never forever. After
		 * 2 s of refusals the openers hold off; once their files are
		 * closed the unload must succeed within 20 s.
		 */
		t = now_ms();
		while (syscall(SYS_delete_module, "neuron", O_NONBLOCK)) {
			if (errno != EBUSY && errno != EAGAIN) {
				printf("# cycle %u: delete_module: %s\n", i, strerror(errno));
				load_errors++;
				break;
			}
			refused++;
			if (!*hold_off && now_ms() - t > 2000) {
				*hold_off = 1;
				held++;
				t = now_ms();
			} else if (*hold_off && now_ms() - t > 20000) {
				stuck = 1;
				break;
			}
			sleep_ms(rnd(3));
		}
		*hold_off = 0;
		if (stuck || load_errors)
			break;
		done++;
	}
	for (i = 0; i < nopeners + nreaders; i++)
		kill(kids[i], SIGTERM);
	for (i = 0; i < nopeners + nreaders; i++) {
		struct opener_stats s;

		if (read(fds[0], &s, sizeof(s)) == sizeof(s)) {
			if (!s.reader) {
				total.opens += s.opens;
				total.absent += s.absent;
				total.ops += s.ops;
				total.errors += s.errors;
			} else {
				readers.ops += s.ops;
				readers.errors += s.errors;
			}
		}
	}
	for (i = 0; i < nopeners + nreaders; i++)
		waitpid(kids[i], NULL, 0);
	close(fds[0]);
	if (stuck) {
		/* Openers are gone now: the unload must succeed. */
		stuck = syscall(SYS_delete_module, "neuron", O_NONBLOCK) != 0;
	}
	printf("# cycles: %u loads and unloads in %.1f s, %ld unloads refused while in use "
	       "(the openers held off in %ld of the cycles); %ld opens (%ld ops), %ld absent; "
	       "%ld sysfs reads\n",
	       done, (now_ms() - t0) / 1000, refused, held, total.opens, total.ops, total.absent,
	       readers.ops);
	check(done == cycles, "stress.cycles.completed", "%u of %u (%d errors)", done, cycles, load_errors);
	check(!stuck, "stress.cycles.unload_not_stuck",
	      "unload refused for 20 s after the openers stopped opening");
	check(total.opens > 0 && total.absent > 0, "stress.cycles.raced",
	      "%ld opens, %ld absent: the openers never met a load or an unload", total.opens, total.absent);
	check(!total.errors, "stress.cycles.opener_errors", "%ld unexpected errors", total.errors);
	check(!readers.errors, "stress.cycles.sysfs_errors", "%ld reads failed", readers.errors);
	check(module_loaded() == 0, "stress.cycles.unloaded", "the module is still loaded");
	return failures ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: neuron_stress run [--seconds N] [--seed N] [--workers N]\n"
			"       neuron_stress cycles --module PATH [--cycles N] [--seed N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned int seconds = 30, workers = 6, cycles = 40;
	unsigned long long seed = 1;
	const char *module = NULL;
	int i;

	if (argc < 2)
		usage();
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			workers = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--cycles") && i + 1 < argc)
			cycles = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--module") && i + 1 < argc)
			module = argv[++i];
		else
			usage();
	}
	if (!workers || workers > MAX_WORKERS)
		usage();
	rng = seed * 0x9E3779B97F4A7C15ull + 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# neuron_stress %s, seed %llu\n", argv[1], seed);
	have_user = lookup_user("neuron-user", &user_uid, &user_gid);
	if (!strcmp(argv[1], "run")) {
		long n = read_number(SYS_CLASS "/neuron0/core_count");
		char path[64];

		if (n > 0)
			cores_per_device = n;
		for (devices = 0; devices < 16; devices++) {
			snprintf(path, sizeof(path), "/dev/neuron%u", devices);
			if (access(path, F_OK))
				break;
		}
		if (devices < 1) {
			check(0, "stress.devices", "no /dev/neuron0");
			return 1;
		}
		return mode_run(seconds, workers);
	}
	if (!strcmp(argv[1], "cycles") && module)
		return mode_cycles(module, cycles);
	usage();
	return 2;
}
