/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's sampler against real processes, with /proc read by the test as the
 * oracle: children with a known command line, 64 MiB touched, 8 MiB written; host
 * figures against /proc/meminfo and /proc/loadavg; counters that never go down;
 * a reused pid (clone3 set_tid, root) seen as another process; a memory cgroup
 * made here (root); an OOM kill and a hung task written to /dev/kmsg (root).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/kmsg.h"
#include "diag/kstat.h"
#include "diag/proc.h"
#include "diag/record.h"
#include "snap-test.h"
#include "tap.h"

#define TOUCH_MB 64
#define WRITE_MB 8
#define CG_LIMIT_MB 256

static struct diag_rec_strings *strs;

static const char *str(const struct diag_rec_interval *iv, enum diag_rec_table_id t, size_t row, int col) {
        return diag_rec_str(iv->strings, DIAG_REC_STR(iv, t, row, col));
}

static int64_t num(const struct diag_rec_interval *iv, enum diag_rec_table_id t, size_t row, int col) {
        return DIAG_REC_NUM(iv, t, row, col);
}

/* Field 22 (start) of /proc/PID/stat; -1 when unreadable. */
static long long proc_start(pid_t pid) {
        char path[64], buf[1024];
        struct diag_stat st;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || diag_stat_parse(buf, &st) < 0 || st.n < 19)
                return -1;
        return (long long) DIAG_STAT_FIELD(&st, 22);
}

static bool comm_is(pid_t pid, const char *comm) {
        char c[32];

        return diag_proc_read_comm(pid, c, sizeof c) == 0 && strcmp(c, comm) == 0;
}

/* A child that runs /bin/sleep arg; waits until it has exec'd. */
static pid_t spawn_sleep(const char *arg) {
        pid_t pid = fork();

        if (pid == 0) {
                execl("/bin/sleep", "/bin/sleep", arg, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 500 && pid > 0 && !comm_is(pid, "sleep"); i++)
                usleep(2000);
        return pid;
}

/* A forked child that runs fn, tells the parent a number through a pipe, then waits to be killed. */
static pid_t spawn(long long (*fn)(void *), void *arg, long long *ret) {
        pid_t pid;
        int p[2];

        if (pipe(p) < 0 || (pid = fork()) < 0)
                return -1;
        if (pid == 0) {
                long long v = fn(arg);
                close(p[0]);
                if (write(p[1], &v, sizeof v) != sizeof v)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(p[1]);
        if (read(p[0], ret, sizeof *ret) != sizeof *ret) {
                close(p[0]);
                return -1;
        }
        close(p[0]);
        return pid;
}

static void reap(pid_t pid) {
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

static long long child_rss(pid_t pid) {
        char path[64], buf[256];
        unsigned long long size, rss;

        snprintf(path, sizeof path, "/proc/%d/statm", (int) pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || sscanf(buf, "%llu %llu", &size, &rss) != 2)
                return -1;
        return (long long) rss * sysconf(_SC_PAGESIZE);
}

/* Touch TOUCH_MB; returns the RSS before. A cgroup directory as arg: join it first. */
static long long toucher(void *arg) {
        long long before;

        if (arg && snap_test_join(arg) < 0)
                return -1;
        before = child_rss(getpid());
        return snap_test_touch(TOUCH_MB) ? before : -1;
}

/* Write WRITE_MB to a file here, fsync'd (write_bytes counts what reaches the disk layer). */
static long long writer(void *arg) {
        char name[64], block[65536];
        int fd;

        (void) arg;
        snprintf(name, sizeof name, "test-rec-sample-%d.tmp", (int) getpid());
        fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -1;
        unlink(name);
        memset(block, 'x', sizeof block);
        for (int i = 0; i < (WRITE_MB << 20) / (int) sizeof block; i++)
                if (write(fd, block, sizeof block) != (ssize_t) sizeof block)
                        return -1;
        if (fsync(fd) < 0)
                return -1;
        return 0;
}

static ssize_t find_proc(const struct diag_rec_interval *iv, pid_t pid) {
        for (size_t r = 0; r < iv->t[DIAG_REC_PROC].nrows; r++)
                if (num(iv, DIAG_REC_PROC, r, PR_PID) == pid)
                        return (ssize_t) r;
        return -1;
}

static long long meminfo_kb(const char *key) {
        char buf[8192];
        int64_t v;

        if (diag_read_small_at(AT_FDCWD, "/proc/meminfo", buf, sizeof buf) <= 0 || diag_kstat_keyed(buf, key, &v) < 0)
                return -1;
        return v;
}

static bool near(long long a, long long b, double frac) {
        long long d = a > b ? a - b : b - a;

        return (double) d <= frac * (double) (b > 0 ? b : -b);
}

static void check_host(const struct diag_rec_interval *iv) {
        char buf[256];
        double l1;
        int running, threads;

        CHECK_INT(iv->t[DIAG_REC_HOST].nrows, 1);
        if (iv->t[DIAG_REC_HOST].nrows != 1)
                return;
        CHECK_INT(num(iv, DIAG_REC_HOST, 0, H_MEM_TOTAL), meminfo_kb("MemTotal") * 1024);
        CHECK(near(num(iv, DIAG_REC_HOST, 0, H_MEM_AVAIL), meminfo_kb("MemAvailable") * 1024, 0.2));
        CHECK_INT(num(iv, DIAG_REC_HOST, 0, H_SWAP_TOTAL), meminfo_kb("SwapTotal") * 1024);
        CHECK_INT(num(iv, DIAG_REC_HOST, 0, H_NCPU), sysconf(_SC_NPROCESSORS_ONLN));
        CHECK_INT(num(iv, DIAG_REC_HOST, 0, H_CLK_TCK), sysconf(_SC_CLK_TCK));
        CHECK(diag_read_small_at(AT_FDCWD, "/proc/loadavg", buf, sizeof buf) > 0 &&
              sscanf(buf, "%lf %*f %*f %d/%d", &l1, &running, &threads) == 3);
        CHECK(num(iv, DIAG_REC_HOST, 0, H_LOAD1) >= 0 && llabs(num(iv, DIAG_REC_HOST, 0, H_LOAD1) - (long long) (l1 * 1000)) <= 1000);
        CHECK(near(num(iv, DIAG_REC_HOST, 0, H_NR_THREADS), threads, 0.2));
        CHECK_INT(num(iv, DIAG_REC_HOST, 0, H_NR_PROCS), iv->t[DIAG_REC_PROC].nrows);
        for (int c = H_CPU_USER; c <= H_CPU_STEAL; c++)
                CHECK(num(iv, DIAG_REC_HOST, 0, c) >= 0);
        CHECK(num(iv, DIAG_REC_HOST, 0, H_CTXT) > 0 && num(iv, DIAG_REC_HOST, 0, H_FORKS) > 0);
        CHECK(num(iv, DIAG_REC_HOST, 0, H_PROCS_RUNNING) >= 1);
        CHECK(num(iv, DIAG_REC_HOST, 0, H_PGFAULT) > 0);
        if (access("/proc/pressure/memory", F_OK) == 0)
                CHECK(num(iv, DIAG_REC_HOST, 0, H_PSI_MEM_SOME) >= 0);
        else
                CHECK(num(iv, DIAG_REC_HOST, 0, H_PSI_MEM_SOME) == DIAG_REC_NA);
}

static void check_sorted(const struct diag_rec_interval *iv) {
        for (int t = 0; t < DIAG_REC_EVENT; t++)
                for (size_t r = 1; r < iv->t[t].nrows; r++)
                        if (diag_rec_key_cmp(iv, r - 1, iv, r, t) >= 0) {
                                CHECK(!"rows in key order, keys distinct");
                                fprintf(stderr, "table %s rows %zu, %zu\n", diag_rec_schemas[t].name, r - 1, r);
                                return;
                        }
}

/* Counters of a and b (a taken first) never go down: host, and each process in both. */
static void check_monotonic(const struct diag_rec_interval *a, const struct diag_rec_interval *b) {
        static const int host[] = { H_CPU_USER, H_CPU_SYSTEM, H_CPU_IDLE, H_CTXT, H_FORKS, H_PGFAULT, H_PGMAJFAULT };
        static const int proc[] = { PR_UTIME, PR_STIME, PR_MINFLT, PR_MAJFLT, PR_READ_BYTES, PR_WRITE_BYTES };
        size_t common = 0;

        for (size_t i = 0; i < ELEMENTSOF(host); i++)
                CHECK(num(b, DIAG_REC_HOST, 0, host[i]) >= num(a, DIAG_REC_HOST, 0, host[i]));
        for (size_t r = 0; r < a->t[DIAG_REC_PROC].nrows; r++) {
                ssize_t q = diag_rec_find_proc(b, (pid_t) num(a, DIAG_REC_PROC, r, PR_PID), num(a, DIAG_REC_PROC, r, PR_START));
                if (q < 0)
                        continue;
                common++;
                for (size_t i = 0; i < ELEMENTSOF(proc); i++)
                        if (num(b, DIAG_REC_PROC, q, proc[i]) < num(a, DIAG_REC_PROC, r, proc[i])) {
                                CHECK(!"a process counter went down");
                                fprintf(stderr, "pid %lld column %s\n", (long long) num(a, DIAG_REC_PROC, r, PR_PID),
                                        diag_rec_schemas[DIAG_REC_PROC].num_names[proc[i]]);
                        }
        }
        CHECK(common > 0);
        for (size_t r = 0; r < a->t[DIAG_REC_DISK].nrows && r < b->t[DIAG_REC_DISK].nrows; r++)
                CHECK(num(b, DIAG_REC_DISK, r, DK_RD_IOS) >= num(a, DIAG_REC_DISK, r, DK_RD_IOS));
}

/* A process made with the pid of one just reaped (clone3 set_tid, needs root): a new
 * (pid, start) whose command line must be read again. */
static void test_pid_reuse(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        pid_t old = spawn_sleep("41.5"), pid;
        long long start_old = proc_start(old);
        struct clone_args args = { .exit_signal = SIGCHLD };
        ssize_t r;

        CHECK_INT(diag_rec_sample(s, iv), 0);
        r = diag_rec_find_proc(iv, old, start_old);
        CHECK(r >= 0 && strcmp(str(iv, DIAG_REC_PROC, r, PR_CMD), "/bin/sleep 41.5") == 0);
        reap(old);
        usleep(30000);          /* a later start tick */
        args.set_tid = (uint64_t) (uintptr_t) &old;
        args.set_tid_size = 1;
        pid = (pid_t) syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) {
                execl("/bin/sleep", "/bin/sleep", "42.5", (char *) NULL);
                _exit(127);
        }
        if (pid < 0) {
                printf("pid reuse: skipped: clone3 with set_tid: %s\n", strerror(errno));
                return;
        }
        CHECK_INT(pid, old);
        for (int i = 0; i < 500 && !comm_is(pid, "sleep"); i++)
                usleep(2000);
        CHECK_INT(diag_rec_sample(s, iv), 0);
        CHECK(proc_start(pid) != start_old);
        CHECK(diag_rec_find_proc(iv, pid, start_old) < 0);
        r = diag_rec_find_proc(iv, pid, proc_start(pid));
        CHECK(r >= 0);
        if (r >= 0)
                CHECK_STR(str(iv, DIAG_REC_PROC, r, PR_CMD), "/bin/sleep 42.5");
        reap(pid);
}

static ssize_t find_cgroup(const struct diag_rec_interval *iv, const char *path, const char *version) {
        for (size_t r = 0; r < iv->t[DIAG_REC_CGROUP].nrows; r++)
                if (strcmp(str(iv, DIAG_REC_CGROUP, r, CG_PATH), path) == 0 &&
                    strcmp(str(iv, DIAG_REC_CGROUP, r, CG_VERSION), version) == 0)
                        return (ssize_t) r;
        return -1;
}

/* A memory cgroup with a limit and a child that touched TOUCH_MB in it (root). */
static void test_cgroup(void) {
        char dir[128], rel[64], val[32];
        _cleanup_free_ char *ctl = NULL;
        struct diag_rec_sampler *s = NULL;
        struct diag_rec_interval iv;
        const char *version = "v1";
        long long before;
        pid_t child;
        ssize_t r;

        if (geteuid() != 0) {
                printf("cgroup: skipped: not root\n");
                return;
        }
        snprintf(rel, sizeof rel, "/diagkit-rec-%d", (int) getpid());
        if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0)
                snprintf(dir, sizeof dir, "/sys/fs/cgroup/memory%s", rel);
        else if (diag_read_file_at(AT_FDCWD, "/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, NULL) == 0 &&
                 strstr(ctl, "memory")) {
                version = "v2";
                (void) snap_test_put("/sys/fs/cgroup", "cgroup.subtree_control", "+memory");
                snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", rel);
        } else {
                printf("cgroup: skipped: no memory controller at /sys/fs/cgroup\n");
                return;
        }
        if (mkdir(dir, 0755) < 0) {
                printf("cgroup: skipped: mkdir %s: %s\n", dir, strerror(errno));
                return;
        }
        snprintf(val, sizeof val, "%d", CG_LIMIT_MB << 20);
        CHECK_INT(snap_test_put(dir, strcmp(version, "v2") == 0 ? "memory.max" : "memory.limit_in_bytes", val), 0);
        child = spawn(toucher, dir, &before);
        CHECK(child > 0 && before >= 0);
        diag_rec_interval_init(&iv, strs);
        CHECK_INT(diag_rec_sampler_new(&s, &(struct diag_rec_sampler_opts) { .cgroups = true }), 0);
        CHECK_INT(diag_rec_sample(s, &iv), 0);
        r = find_cgroup(&iv, rel, version);
        CHECK(r >= 0);
        if (r >= 0) {
                long long cur = num(&iv, DIAG_REC_CGROUP, r, CG_MEM_CURRENT);
                CHECK_INT(num(&iv, DIAG_REC_CGROUP, r, CG_MEM_LIMIT), (long long) CG_LIMIT_MB << 20);
                CHECK(near(cur, (long long) TOUCH_MB << 20, 0.2));
                CHECK_INT(num(&iv, DIAG_REC_CGROUP, r, CG_NPROCS), 1);
                printf("cgroup %s %s: current %lld, limit %lld, procs %lld\n", version, rel, cur,
                       (long long) num(&iv, DIAG_REC_CGROUP, r, CG_MEM_LIMIT), (long long) num(&iv, DIAG_REC_CGROUP, r, CG_NPROCS));
        }
        r = find_proc(&iv, child);
        CHECK(r >= 0 && strcmp(str(&iv, DIAG_REC_PROC, r, PR_CGROUP), rel) == 0);
        r = find_cgroup(&iv, "/", version);
        CHECK(r >= 0 && num(&iv, DIAG_REC_CGROUP, r, CG_NPROCS) > 0);
        reap(child);
        for (int i = 0; i < 50 && rmdir(dir) < 0 && errno == EBUSY; i++)
                usleep(20000);
        /* a cgroup gone is left out at once */
        CHECK_INT(diag_rec_sample(s, &iv), 0);
        CHECK(find_cgroup(&iv, rel, version) < 0);
        CHECK(find_cgroup(&iv, "/", version) >= 0);
        diag_rec_sampler_free(s);
        diag_rec_interval_free(&iv);
}

static int kmsg_put(int fd, const char *line) {
        return write(fd, line, strlen(line)) == (ssize_t) strlen(line) ? 0 : -errno;
}

static ssize_t find_event(const struct diag_rec_interval *iv, const char *kind, pid_t pid) {
        for (size_t r = 0; r < iv->t[DIAG_REC_EVENT].nrows; r++)
                if (strcmp(str(iv, DIAG_REC_EVENT, r, EV_KIND), kind) == 0 && num(iv, DIAG_REC_EVENT, r, EV_PID) == pid)
                        return (ssize_t) r;
        return -1;
}

/* An OOM kill and a hung task as the kernel writes them, written to /dev/kmsg (root).
 * Each line ends in a newline: the kernel holds an unterminated one back. */
static void test_kmsg(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        _cleanup_close_ int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
        int fake = 4000000 + (int) getpid() % 100000;
        char line[512];
        int64_t now = (int64_t) diag_now_ns(CLOCK_REALTIME);
        ssize_t r;

        if (fd < 0 || diag_rec_sampler_kmsg_fd(s) < 0) {
                printf("kmsg: skipped: /dev/kmsg not writable or not readable (%s)\n", strerror(errno));
                return;
        }
        snprintf(line, sizeof line, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
                 "oom_memcg=/diagkit-test,task_memcg=/diagkit-test/x,task=sleep,pid=%d,uid=0\n", fake);
        CHECK_INT(kmsg_put(fd, line), 0);
        snprintf(line, sizeof line, "Memory cgroup out of memory: Killed process %d (sleep) total-vm:1000kB, "
                 "anon-rss:2048kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0\n", fake);
        CHECK_INT(kmsg_put(fd, line), 0);
        snprintf(line, sizeof line, "INFO: task diag:test:%d blocked for more than 122 seconds.\n", fake + 1);
        CHECK_INT(kmsg_put(fd, line), 0);
        CHECK_INT(diag_rec_sampler_poll_kmsg(s), 1);
        CHECK(diag_rec_sampler_pending(s)->t[DIAG_REC_EVENT].nrows >= 2);
        CHECK_INT(diag_rec_sample(s, iv), 0);
        CHECK_INT(diag_rec_sampler_pending(s)->t[DIAG_REC_EVENT].nrows, 0);
        r = find_event(iv, DIAG_REC_EV_OOM, fake);
        CHECK(r >= 0);
        if (r >= 0) {
                CHECK_STR(str(iv, DIAG_REC_EVENT, r, EV_COMM), "sleep");
                CHECK_STR(str(iv, DIAG_REC_EVENT, r, EV_PATH), "/diagkit-test");
                CHECK_INT(num(iv, DIAG_REC_EVENT, r, EV_RSS), (2048 + 4) * 1024);
                CHECK(strstr(str(iv, DIAG_REC_EVENT, r, EV_TEXT), "Killed process") != NULL);
                CHECK(llabs(num(iv, DIAG_REC_EVENT, r, EV_TIME_NS) - now) < 10LL * 1000000000);
        }
        r = find_event(iv, DIAG_REC_EV_HUNG, fake + 1);
        CHECK(r >= 0);
        if (r >= 0)
                CHECK_STR(str(iv, DIAG_REC_EVENT, r, EV_COMM), "diag:test");
        /* nothing twice */
        CHECK_INT(diag_rec_sample(s, iv), 0);
        CHECK(find_event(iv, DIAG_REC_EV_OOM, fake) < 0);
}

static int open_fds(void) {
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        closedir(d);
        return n - 1;   /* opendir's own */
}

/* The stat files kept open between samples: one per process seen, closed when it is
 * gone (and the values read through them are the process's current ones). */
static void test_statfds(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        enum { N = 20 };
        pid_t kids[N];
        int n1, n2, n3;
        long r1, r2, r3;

        CHECK_INT(diag_rec_sample(s, iv), 0);
        n1 = open_fds();
        r1 = (long) iv->t[DIAG_REC_PROC].nrows;
        for (int i = 0; i < N; i++) {
                kids[i] = fork();
                if (kids[i] == 0) {
                        pause();
                        _exit(0);
                }
        }
        CHECK_INT(diag_rec_sample(s, iv), 0);
        n2 = open_fds();
        r2 = (long) iv->t[DIAG_REC_PROC].nrows;
        for (int i = 0; i < N; i++) {
                kill(kids[i], SIGKILL);
                waitpid(kids[i], NULL, 0);
        }
        CHECK_INT(diag_rec_sample(s, iv), 0);
        n3 = open_fds();
        r3 = (long) iv->t[DIAG_REC_PROC].nrows;
        printf("stat files: %d fds open for %ld processes, %d for %ld (%d children more), %d for %ld (they are gone)\n",
               n1, r1, n2, r2, N, n3, r3);
        /* one file per process seen (other processes come and go meanwhile: compare
         * with the rows of the same scan; a process may vanish between the two) */
        CHECK(r2 >= r1 + N - 5);
        CHECK(labs((n2 - r2) - (n1 - r1)) <= 2);
        CHECK(labs((n3 - r3) - (n1 - r1)) <= 2);
        for (int i = 0; i < N; i++)
                CHECK(diag_rec_find_proc(iv, kids[i], -1) < 0);
}

static void test_timing(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        struct timespec a, b;
        int n = 20;

        (void) diag_rec_sample(s, iv);          /* warm */
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        for (int i = 0; i < n; i++)
                (void) diag_rec_sample(s, iv);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        printf("one sample: %.3f ms of CPU for %zu processes, %zu cgroups, %zu disks (took_us %u)\n",
               ((double) (b.tv_sec - a.tv_sec) * 1e3 + (double) (b.tv_nsec - a.tv_nsec) / 1e6) / n,
               iv->t[DIAG_REC_PROC].nrows, iv->t[DIAG_REC_CGROUP].nrows, iv->t[DIAG_REC_DISK].nrows, iv->took_us);
}

int main(void) {
        struct diag_rec_sampler *s = NULL;
        struct diag_rec_interval iv, iv2;
        long long rss_before = -1, wrote = -1, start;
        pid_t sl, big, wr;
        ssize_t r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        strs = diag_rec_strings_new();
        CHECK(strs != NULL);
        diag_rec_interval_init(&iv, strs);
        diag_rec_interval_init(&iv2, strs);
        CHECK_INT(diag_rec_sampler_new(&s, &(struct diag_rec_sampler_opts) { .kmsg = true, .cgroups = true, .dstate = true }), 0);
        CHECK_INT(diag_rec_sampler_new(&(struct diag_rec_sampler *) { NULL }, &(struct diag_rec_sampler_opts) { .proc = "/nonexistent" }),
                  -ENOENT);

        sl = spawn_sleep("30.25");
        big = spawn(toucher, NULL, &rss_before);
        wr = spawn(writer, NULL, &wrote);
        CHECK(sl > 0 && big > 0 && wr > 0);
        CHECK(rss_before >= 0);
        CHECK_INT(wrote, 0);

        CHECK_INT(diag_rec_sample(s, &iv), 0);
        check_host(&iv);
        check_sorted(&iv);
        CHECK(iv.took_us > 0);
        CHECK(iv.t[DIAG_REC_NET].nrows >= 1);
        /* every interface is one of /sys/class/net (header lines are not), lo among them */
        {
                bool lo = false;
                for (size_t k = 0; k < iv.t[DIAG_REC_NET].nrows; k++) {
                        const char *name = str(&iv, DIAG_REC_NET, k, NT_NAME);
                        char path[300];
                        snprintf(path, sizeof path, "/sys/class/net/%s", name);
                        if (access(path, F_OK) < 0)
                                fprintf(stderr, "interface '%s' is not in /sys/class/net\n", name);
                        CHECK(access(path, F_OK) == 0);
                        lo |= strcmp(name, "lo") == 0;
                }
                CHECK(lo);
        }

        start = proc_start(sl);
        r = diag_rec_find_proc(&iv, sl, start);
        CHECK(r >= 0);
        if (r >= 0) {
                CHECK_STR(str(&iv, DIAG_REC_PROC, r, PR_CMD), "/bin/sleep 30.25");
                CHECK_STR(str(&iv, DIAG_REC_PROC, r, PR_COMM), "sleep");
                CHECK_INT(num(&iv, DIAG_REC_PROC, r, PR_PPID), getpid());
                CHECK_INT(num(&iv, DIAG_REC_PROC, r, PR_UID), geteuid());
                CHECK_INT(num(&iv, DIAG_REC_PROC, r, PR_THREADS), 1);
                CHECK(num(&iv, DIAG_REC_PROC, r, PR_STATE) == 'S');
                CHECK(num(&iv, DIAG_REC_PROC, r, PR_VSZ) > 0);
        }
        /* a small idle process's RSS is exact (stat's rss field lags by the per-CPU
         * counters' batches, a fifth of a process this size) */
        r = find_proc(&iv, sl);
        if (r >= 0) {
                long long rss = num(&iv, DIAG_REC_PROC, r, PR_RSS), oracle = child_rss(sl);
                printf("sleeper: rss %lld, statm %lld\n", rss, oracle);
                CHECK_INT(rss, oracle);
        }
        r = find_proc(&iv, big);
        CHECK(r >= 0);
        if (r >= 0) {
                long long rss = num(&iv, DIAG_REC_PROC, r, PR_RSS);
                long long oracle = child_rss(big);
                printf("toucher: rss %lld, before touching %lld, statm %lld\n", rss, rss_before, oracle);
                /* the sanitizers' own pages come on top of what the child touched */
                CHECK(near(rss, oracle, 0.1));
                CHECK(rss - rss_before >= (long long) (0.9 * (TOUCH_MB << 20)));
                CHECK(num(&iv, DIAG_REC_PROC, r, PR_MINFLT) >= (TOUCH_MB << 20) / sysconf(_SC_PAGESIZE));
        }
        r = find_proc(&iv, wr);
        CHECK(r >= 0);
        if (r >= 0) {
                printf("writer: write_bytes %lld\n", (long long) num(&iv, DIAG_REC_PROC, r, PR_WRITE_BYTES));
                CHECK(num(&iv, DIAG_REC_PROC, r, PR_WRITE_BYTES) >= (long long) WRITE_MB << 20);
        }
        /* a kernel thread: its command is "[comm]" */
        r = find_proc(&iv, 2);
        CHECK(r >= 0);
        if (r >= 0)
                CHECK_STR(str(&iv, DIAG_REC_PROC, r, PR_CMD), "[kthreadd]");
        r = find_proc(&iv, getpid());
        CHECK(r >= 0 && strstr(str(&iv, DIAG_REC_PROC, r, PR_CMD), "test-rec-sample") != NULL);
        CHECK(r >= 0 && str(&iv, DIAG_REC_PROC, r, PR_CGROUP)[0] == '/');

        usleep(50000);
        CHECK_INT(diag_rec_sample(s, &iv2), 0);
        check_monotonic(&iv, &iv2);
        check_sorted(&iv2);
        /* the command line comes from the cache: the same id */
        r = diag_rec_find_proc(&iv2, sl, start);
        CHECK(r >= 0 && strcmp(str(&iv2, DIAG_REC_PROC, r, PR_CMD), "/bin/sleep 30.25") == 0);
        /* forgetting (after an interner reset) reads everything again */
        diag_rec_strings_reset(strs);
        diag_rec_sampler_forget(s);
        CHECK_INT(diag_rec_sample(s, &iv2), 0);
        r = diag_rec_find_proc(&iv2, sl, start);
        CHECK(r >= 0 && strcmp(str(&iv2, DIAG_REC_PROC, r, PR_CMD), "/bin/sleep 30.25") == 0);

        if (geteuid() == 0)
                test_pid_reuse(s, &iv);
        else
                printf("pid reuse: skipped: not root\n");
        test_cgroup();
        if (geteuid() == 0)
                test_kmsg(s, &iv);
        else
                printf("kmsg: skipped: not root\n");
        test_statfds(s, &iv);
        test_timing(s, &iv);

        reap(sl);
        reap(big);
        reap(wr);
        diag_rec_sampler_free(s);
        diag_rec_interval_free(&iv);
        diag_rec_interval_free(&iv2);
        diag_rec_strings_free(strs);
        return TAP_DONE();
}
