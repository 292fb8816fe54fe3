/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pausemeter: a benchmark target that measures how long it was kept from running.
 *
 *   pausemeter [--meter-cpu CPU] N
 *
 * It starts N idle threads, each blocked in read() on a pipe that is never written (in
 * pm_idle), and one meter thread (pm_meter) that spins reading CLOCK_MONOTONIC and keeps
 * the largest gap between two consecutive reads. A spinning thread only sees a gap when it
 * was not running: stopped by a tracer, or preempted. It prints, line-buffered:
 *
 *   PID <pid>
 *   READY
 *
 * Control is on stdin, answers on stdout. Each line read from stdin is a request: the
 * reply covers the window since the previous request (or since READY), and a new window
 * starts:
 *
 *   maxgap_us <n> stall_us <n> stalls <n> window_us <n> stopped_us <n>
 *
 * maxgap_us is the longest gap; stall_us and stalls are the sum and count of the gaps of
 * more than STALL_NS. A gap cannot tell a stop from a preemption, so the meter also
 * reads, at each window boundary, its own CPU time (CLOCK_THREAD_CPUTIME_ID) and the time
 * it spent runnable but waiting for a CPU (run_delay, /proc/self/task/TID/schedstat):
 * a thread that never sleeps is either running, waiting for a CPU, or stopped, so
 * stopped_us = window - cpu - run_delay is the time it was stopped (by a tracer). It is
 * -1 when schedstat cannot be read. The main thread waits for requests in read(0), so the process has
 * N + 2 threads. READY comes once every idle thread is blocked in read(). It exits with status 0 on end of stdin, SIGTERM or SIGINT.
 *
 * --meter-cpu pins the meter thread to one CPU, so that a benchmark can keep the tool
 * it runs off that CPU and the meter is not preempted by the very tool it watches.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "meter.h"

#define PM_FN __attribute__((noipa))

#define THREAD_STACK_SIZE (256 * 1024)
#define STALL_NS (100 * 1000)   /* a gap longer than this counts as a stall */
#define MAX_IDLE 100000
#define READY_TIMEOUT_MS 60000

static atomic_int meter_request;         /* 1: publish and reset, set by the main thread */
static struct meter_stats meter_published;
static sem_t meter_done;

static _Noreturn void die(const char *what) {
        fprintf(stderr, "pausemeter: %s: %s\n", what, strerror(errno));
        exit(1);
}

static int parse_int(const char *s, int min, int max, const char *what) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                fprintf(stderr, "pausemeter: bad %s '%s' (%d..%d)\n", what, s, min, max);
                exit(2);
        }
        return (int) v;
}

#define now_ns meter_now_ns

struct idle_arg {
        int fd;
        _Atomic pid_t tid;
};

PM_FN static void *pm_idle(void *p) {
        struct idle_arg *a = p;
        int fd = a->fd;
        char c;

        atomic_store(&a->tid, gettid());
        for (;;)
                if (read(fd, &c, 1) >= 0 || errno != EINTR)
                        break;
        return NULL;
}

PM_FN static void *pm_meter(void *p) {
        (void) p;
        meter_run(&meter_request, &meter_published, &meter_done, STALL_NS);
        return NULL;
}

static void start_thread(void *(*fn)(void *), void *arg, int cpu) {
        int r = meter_thread_start(fn, arg, THREAD_STACK_SIZE, cpu);
        if (r) {
                errno = r;
                die("pthread_create");
        }
}

/* True once the thread is blocked in read(): /proc/self/task/TID/syscall names it. */
static int in_read(pid_t tid) {
        char path[64], buf[64];
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int) tid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        return strtol(buf, NULL, 10) == SYS_read && strncmp(buf, "running", 7) != 0;
}

/* READY means every idle thread's stack is in pm_idle, not still in thread start-up. */
static void wait_idle(struct idle_arg *args, int n) {
        uint64_t deadline = now_ns() + (uint64_t) READY_TIMEOUT_MS * 1000000u;

        for (int i = 0; i < n; i++)
                while (!atomic_load(&args[i].tid) || !in_read(atomic_load(&args[i].tid))) {
                        if (now_ns() > deadline) {
                                fprintf(stderr, "pausemeter: idle threads not blocked in time\n");
                                exit(1);
                        }
                        usleep(1000);
                }
}

static void on_term(int sig) {
        (void) sig;
        _exit(0);
}

int main(int argc, char **argv) {
        struct sigaction sa = { .sa_handler = on_term };
        struct idle_arg *idle;
        int meter_cpu = -1, nidle, quiet[2];
        char line[256];
        FILE *in;

        if (argc == 4 && strcmp(argv[1], "--meter-cpu") == 0) {
                meter_cpu = parse_int(argv[2], 0, CPU_SETSIZE - 1, "CPU");
                argv += 2;
                argc -= 2;
        }
        if (argc != 2) {
                fprintf(stderr, "Usage: pausemeter [--meter-cpu CPU] NTHREADS\n");
                return 2;
        }
        nidle = parse_int(argv[1], 0, MAX_IDLE, "thread count");

        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (sem_init(&meter_done, 0, 0) < 0)
                die("sem_init");
        /* The write end stays open and is never written: every read() blocks forever. */
        if (pipe2(quiet, O_CLOEXEC) < 0)
                die("pipe2");

        printf("PID %d\n", (int) getpid());
        idle = calloc(nidle ? nidle : 1, sizeof *idle);
        if (!idle)
                die("calloc");
        for (int i = 0; i < nidle; i++) {
                idle[i].fd = quiet[0];
                start_thread(pm_idle, &idle[i], -1);
        }
        start_thread(pm_meter, NULL, meter_cpu);
        wait_idle(idle, nidle);

        /* Reset once so the first window does not include thread creation. */
        atomic_store(&meter_request, 1);
        while (sem_wait(&meter_done) < 0 && errno == EINTR)
                ;
        printf("READY\n");

        in = fdopen(0, "r");
        if (!in)
                die("fdopen");
        while (fgets(line, sizeof line, in)) {
                struct meter_stats s;

                atomic_store_explicit(&meter_request, 1, memory_order_release);
                while (sem_wait(&meter_done) < 0 && errno == EINTR)
                        ;
                s = meter_published;
                printf("maxgap_us %llu stall_us %llu stalls %llu window_us %llu stopped_us %lld\n",
                       (unsigned long long) (s.maxgap_ns / 1000),
                       (unsigned long long) (s.stall_ns / 1000),
                       (unsigned long long) s.stalls,
                       (unsigned long long) (s.window_ns / 1000),
                       s.stopped_ns < 0 ? -1LL : (long long) (s.stopped_ns / 1000));
        }
        return 0;
}
