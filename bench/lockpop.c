/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lockpop: a population of blocked threads for bench/locks-bench.py.
 *
 *   lockpop [--procs N] [--threads T] [--contended-every K] [--flock-waiters F]
 *   lockpop --one [--threads T] [--mutexes M] [--waiters W]
 *
 * System mode (default): N worker processes (default 350) with T threads in all
 * (default 3000, main threads included). Most threads idle, half of them in
 * pthread_cond_wait() on their process's condition variable lp_work_cond (function
 * lp_idle_cond), half in read() on a pipe nobody writes (lp_idle_read). Every K-th worker (default 10) is
 * "contended": one thread (lp_holder) locks the process's mutex lp_lock and blocks in
 * read(), two more (lp_waiter) block in pthread_mutex_lock() on it. Besides, lockpop
 * takes flock(LOCK_EX) on a file of its own and F more processes (default 5) block in
 * flock(LOCK_EX) on it.
 *
 * One-process mode (--one): one process with T threads (default 1000, main thread
 * included): M mutexes (default 10, the array lp_locks) each held by a thread blocked
 * in read(), W threads (default 500) blocked on them (W/M each), the rest idle as above;
 * no flock waiters unless --flock-waiters is given.
 *
 * It prints, line-buffered, then READY once /proc shows every thread blocked:
 *
 *   PID <lockpop's pid>
 *   TARGET <pid of the --one process>                        (--one)
 *   EXPECT mutexes <n> waiters <n> flock_waiters <n> lockfile <path>
 *
 * It exits on end of stdin, SIGTERM or SIGINT, killing every process it started
 * (they also get SIGKILL if lockpop dies: PR_SET_PDEATHSIG).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)
#define MAX_MUTEXES 1000

/* Named so that the output can be checked: the lock's symbol is what diag-locks shows. */
pthread_mutex_t lp_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t lp_locks[MAX_MUTEXES];
pthread_mutex_t lp_idle_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t lp_work_cond = PTHREAD_COND_INITIALIZER;

static int idle_pipe[2];
static pid_t *children;
static size_t nchildren;

static void die(const char *what) {
        perror(what);
        exit(1);
}

static long parse_num(const char *s, long min, long max) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                fprintf(stderr, "lockpop: invalid number '%s' (%ld..%ld)\n", s, min, max);
                exit(2);
        }
        return v;
}

static void block_in_read(void) {
        char c;
        for (;;)
                if (read(idle_pipe[0], &c, 1) <= 0 && errno != EINTR)
                        pause();
}

static __attribute__((noinline)) void *lp_idle_read(void *unused) {
        block_in_read();
        return unused;
}

static __attribute__((noinline)) void *lp_idle_cond(void *unused) {
        pthread_mutex_lock(&lp_idle_mutex);
        for (;;)
                pthread_cond_wait(&lp_work_cond, &lp_idle_mutex);
        return unused;
}

struct held { pthread_mutex_t *m; pthread_mutex_t *taken; };

static __attribute__((noinline)) void *lp_holder(void *arg) {
        struct held *h = arg;
        pthread_mutex_lock(h->m);
        pthread_mutex_unlock(h->taken);    /* tell the creator the lock is held */
        block_in_read();
        return NULL;
}

static __attribute__((noinline)) void *lp_waiter(void *arg) {
        pthread_mutex_lock(arg);
        return NULL;
}

static void spawn(void *(*fn)(void *), void *arg) {
        pthread_attr_t a;
        pthread_t t;
        int r;

        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, STACK_SIZE);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &a, fn, arg);
        if (r) {
                errno = r;
                die("pthread_create");
        }
        pthread_attr_destroy(&a);
}

/* Lock m from a new thread that then blocks in read(); return once it holds it. */
static void hold_from_thread(pthread_mutex_t *m) {
        static struct held hs[MAX_MUTEXES + 1];
        static size_t n;
        pthread_mutex_t taken = PTHREAD_MUTEX_INITIALIZER;

        pthread_mutex_lock(&taken);
        hs[n] = (struct held) { m, &taken };
        spawn(lp_holder, &hs[n++]);
        pthread_mutex_lock(&taken);        /* unlocked by the holder: it has m */
        pthread_mutex_unlock(&taken);
}

static void idle_threads(long n) {
        for (long i = 0; i < n; i++)
                spawn(i % 2 ? lp_idle_read : lp_idle_cond, NULL);
}

/* A worker: nthreads threads in all, the main one blocked in read() on ctl. */
static void worker(long nthreads, bool contended, int ctl) {
        char c;

        if (contended && nthreads >= 4) {
                hold_from_thread(&lp_lock);
                spawn(lp_waiter, &lp_lock);
                spawn(lp_waiter, &lp_lock);
                nthreads -= 3;
        }
        idle_threads(nthreads - 1);
        while (read(ctl, &c, 1) != 0)
                ;
        _exit(0);
}

static void one_process(long nthreads, long nmutexes, long nwaiters, int ctl) {
        char c;

        for (long i = 0; i < nmutexes; i++) {
                pthread_mutex_init(&lp_locks[i], NULL);
                hold_from_thread(&lp_locks[i]);
        }
        for (long i = 0; i < nwaiters; i++)
                spawn(lp_waiter, &lp_locks[i % nmutexes]);
        idle_threads(nthreads - 1 - nmutexes - nwaiters);
        while (read(ctl, &c, 1) != 0)
                ;
        _exit(0);
}

static void flock_waiter(const char *path, int ctl) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX) < 0)
                _exit(1);
        /* got it: lockpop is ending */
        (void) ctl;
        _exit(0);
}

static pid_t start_child(int ctl_read, int ctl_write, void (*fn)(void *), void *arg) {
        pid_t pid = fork();

        if (pid < 0)
                die("fork");
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() == 1)
                        _exit(1);
                close(ctl_write);
                (void) ctl_read;
                fn(arg);
                _exit(0);
        }
        children[nchildren++] = pid;
        return pid;
}

/* Arguments for the children, passed through static storage (fork copies it). */
static struct { long nthreads, nmutexes, nwaiters; bool contended; int ctl; const char *path; } job;

static void run_worker(void *unused) { (void) unused; worker(job.nthreads, job.contended, job.ctl); }
static void run_one(void *unused) { (void) unused; one_process(job.nthreads, job.nmutexes, job.nwaiters, job.ctl); }
static void run_flock(void *unused) { (void) unused; flock_waiter(job.path, job.ctl); }

/* Is every thread of pid blocked in read, futex or flock (and not on a CPU)? */
static bool all_blocked(pid_t pid, long want_threads) {
        char path[64], buf[256];
        long n = 0, blocked = 0;
        struct dirent *e;
        DIR *dir;
        FILE *d;

        snprintf(path, sizeof path, "/proc/%d/status", pid);
        d = fopen(path, "re");
        if (!d)
                return false;
        while (fgets(buf, sizeof buf, d))
                if (strncmp(buf, "Threads:", 8) == 0)
                        n = strtol(buf + 8, NULL, 10);
        fclose(d);
        if (n < want_threads)
                return false;
        snprintf(path, sizeof path, "/proc/%d/task", pid);
        dir = opendir(path);
        if (!dir)
                return false;
        while ((e = readdir(dir))) {
                FILE *f;
                long nr;

                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "/proc/%d/task/%.16s/syscall", pid, e->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                if (fscanf(f, "%ld", &nr) == 1 && (nr == SYS_read || nr == SYS_futex || nr == SYS_flock))
                        blocked++;
                fclose(f);
        }
        closedir(dir);
        return blocked >= want_threads;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void) sig; stop = 1; }

int main(int argc, char **argv) {
        long nprocs = 350, nthreads = -1, every = 10, nflock = -1, nmutexes = 10, nwaiters = 500;
        bool one = false;
        int ctl[2];
        char dir[] = "/tmp/lockpop.XXXXXX", lockfile[64];
        long *want;
        long nmutex_expected = 0, nwaiter_expected = 0;
        int lockfd;
        char c;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(a, "--one") == 0) { one = true; continue; }
                if (!v) {
                        fprintf(stderr, "usage: lockpop [--procs N] [--threads T] [--contended-every K] [--flock-waiters F]\n"
                                        "       lockpop --one [--threads T] [--mutexes M] [--waiters W]\n");
                        return 2;
                }
                if (strcmp(a, "--procs") == 0) nprocs = parse_num(v, 1, 100000);
                else if (strcmp(a, "--threads") == 0) nthreads = parse_num(v, 1, 1000000);
                else if (strcmp(a, "--contended-every") == 0) every = parse_num(v, 0, 100000);
                else if (strcmp(a, "--flock-waiters") == 0) nflock = parse_num(v, 0, 10000);
                else if (strcmp(a, "--mutexes") == 0) nmutexes = parse_num(v, 1, MAX_MUTEXES);
                else if (strcmp(a, "--waiters") == 0) nwaiters = parse_num(v, 0, 1000000);
                else {
                        fprintf(stderr, "lockpop: unknown option '%s'\n", a);
                        return 2;
                }
                i++;
        }
        if (nthreads < 0)
                nthreads = one ? 1000 : 3000;
        if (nflock < 0)
                nflock = one ? 0 : 5;
        if (one && nthreads < 1 + nmutexes + nwaiters) {
                fprintf(stderr, "lockpop: --threads must be at least 1 + mutexes + waiters\n");
                return 2;
        }
        if (!one && nthreads < nprocs) {
                fprintf(stderr, "lockpop: --threads must be at least --procs\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        {
                /* no SA_RESTART: a signal must end the read(0) below */
                struct sigaction sa = { .sa_handler = on_signal };
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGINT, &sa, NULL);
        }
        signal(SIGPIPE, SIG_IGN);
        if (pipe2(idle_pipe, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0)
                die("pipe");
        if (!mkdtemp(dir))
                die("mkdtemp");
        snprintf(lockfile, sizeof lockfile, "%s/pop.lock", dir);
        lockfd = open(lockfile, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
                die(lockfile);

        children = calloc((size_t) (one ? 1 : nprocs) + (size_t) nflock, sizeof *children);
        want = calloc((size_t) (one ? 1 : nprocs) + (size_t) nflock, sizeof *want);
        if (!children || !want)
                die("calloc");
        job.ctl = ctl[0];
        job.path = lockfile;
        printf("PID %d\n", getpid());
        if (one) {
                job.nthreads = nthreads;
                job.nmutexes = nmutexes;
                job.nwaiters = nwaiters;
                want[0] = nthreads;
                printf("TARGET %d\n", start_child(ctl[0], ctl[1], run_one, NULL));
                nmutex_expected = nmutexes;
                nwaiter_expected = nwaiters;
        } else {
                for (long i = 0; i < nprocs; i++) {
                        /* spread the threads evenly, the remainder over the first ones */
                        job.nthreads = nthreads / nprocs + (i < nthreads % nprocs);
                        job.contended = every && i % every == 0 && job.nthreads >= 4;
                        want[nchildren] = job.nthreads;
                        if (job.contended) {
                                nmutex_expected++;
                                nwaiter_expected += 2;
                        }
                        start_child(ctl[0], ctl[1], run_worker, NULL);
                }
        }
        for (long i = 0; i < nflock; i++) {
                want[nchildren] = 1;
                start_child(ctl[0], ctl[1], run_flock, NULL);
        }
        close(ctl[0]);
        printf("EXPECT mutexes %ld waiters %ld flock_waiters %ld lockfile %s\n", nmutex_expected, nwaiter_expected,
               nflock, lockfile);

        for (size_t i = 0; i < nchildren && !stop; i++) {
                struct timespec ts = { 0, 2 * 1000 * 1000 };
                while (!stop && !all_blocked(children[i], want[i]))
                        nanosleep(&ts, NULL);
        }
        if (!stop)
                printf("READY\n");
        while (!stop && read(0, &c, 1) > 0)
                ;

        for (size_t i = 0; i < nchildren; i++)
                kill(children[i], SIGKILL);
        for (size_t i = 0; i < nchildren; i++)
                while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        close(lockfd);
        unlink(lockfile);
        rmdir(dir);
        return 0;
}
