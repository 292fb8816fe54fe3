/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pause meter of bench/pausemeter.c and tests/fixtures/corefix.c: a thread that
 * spins on CLOCK_MONOTONIC sees a gap between two reads only when it did not run,
 * stopped (by a tracer) or preempted. Over a window, stopped = window - CPU time -
 * run delay (schedstat) tells the two apart.
 */
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct meter_stats {
        uint64_t maxgap_ns;
        uint64_t stall_ns;              /* time in gaps longer than the stall bound */
        uint64_t stalls;
        uint64_t window_ns;
        int64_t stopped_ns;             /* -1: unknown */
};

static inline uint64_t meter_now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);    /* vDSO: no system call in the loop */
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static inline uint64_t meter_thread_cpu_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* The second field of schedstat: ns spent runnable on a run queue, not running. */
static inline int64_t meter_run_delay_ns(int fd) {
        char buf[128];
        unsigned long long exec, delay;
        ssize_t n;

        if (fd < 0)
                return -1;
        n = pread(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        if (sscanf(buf, "%llu %llu", &exec, &delay) != 2)
                return -1;
        return (int64_t) delay;
}

/* Spin for ever in the calling thread. When *request is set: publish the window
 * since the last one in *out, start a new one, clear *request and post done. */
static inline void meter_run(atomic_int *request, struct meter_stats *out, sem_t *done, uint64_t stall_ns) {
        struct meter_stats s = { 0 };
        char path[64];
        uint64_t start, prev, cpu0;
        int64_t delay0;
        int fd;

        snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int) gettid());
        fd = open(path, O_RDONLY | O_CLOEXEC);
        delay0 = meter_run_delay_ns(fd);
        cpu0 = meter_thread_cpu_ns();
        start = prev = meter_now_ns();
        for (;;) {
                uint64_t t = meter_now_ns(), gap = t - prev;

                if (gap > s.maxgap_ns)
                        s.maxgap_ns = gap;
                if (gap > stall_ns) {
                        s.stall_ns += gap;
                        s.stalls++;
                }
                prev = t;
                if (atomic_load_explicit(request, memory_order_acquire)) {
                        uint64_t cpu = meter_thread_cpu_ns();
                        int64_t delay = meter_run_delay_ns(fd);

                        s.window_ns = t - start;
                        s.stopped_ns = -1;
                        if (delay >= 0 && delay0 >= 0) {
                                s.stopped_ns = (int64_t) s.window_ns - (int64_t) (cpu - cpu0) - (delay - delay0);
                                if (s.stopped_ns < 0)
                                        s.stopped_ns = 0;
                        }
                        *out = s;
                        memset(&s, 0, sizeof s);
                        delay0 = delay;
                        cpu0 = cpu;
                        start = prev = t;
                        atomic_store_explicit(request, 0, memory_order_release);
                        sem_post(done);
                }
        }
}

/* A detached thread with a stack of stack_size bytes, pinned to cpu unless cpu < 0
 * (the meter and the tool under test kept apart). 0 or an errno. */
static inline int meter_thread_start(void *(*fn)(void *), void *arg, size_t stack_size, int cpu) {
        pthread_attr_t attr;
        pthread_t t;
        int r;

        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, stack_size);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (cpu >= 0) {
                cpu_set_t set;

                CPU_ZERO(&set);
                CPU_SET(cpu, &set);
                r = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
                if (r) {
                        pthread_attr_destroy(&attr);
                        return r;
                }
        }
        r = pthread_create(&t, &attr, fn, arg);
        pthread_attr_destroy(&attr);
        return r;
}
