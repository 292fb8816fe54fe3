/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * perfsample: libdiag's sampling as diag-sample uses it, for bench/perf-bench.py.
 * Samples PID at HZ for SECONDS (diag/perf.h, 16 KiB stack copies, kernel
 * callchains), unwinds and symbolizes every sample as it arrives (inlines, file
 * and line), counts the leaf functions, and prints one JSON object: samples,
 * lost, this process's CPU time, the unwind CPU time and its median per sample,
 * the leaf counts of the busiest functions.
 *
 *   perfsample PID HZ SECONDS
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "diag/perf.h"
#include "diag/unwind.h"
#include "diag/util.h"

#define MAX_LEAVES 64
#define MAX_EACH (1 << 20)

static struct {
        struct diag_perf_unwind *unw;
        uint64_t samples, unwound, unwind_ns, full;
        uint64_t *each;
        size_t neach;
        struct { const char *func; uint64_t n; } leaf[MAX_LEAVES];
        size_t nleaf;
} S;

static uint64_t thread_cpu_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void count_leaf(const char *func) {
        for (size_t i = 0; i < S.nleaf; i++)
                if (strcmp(S.leaf[i].func, func) == 0) {
                        S.leaf[i].n++;
                        return;
                }
        if (S.nleaf < MAX_LEAVES)
                S.leaf[S.nleaf++] = (typeof(S.leaf[0])) { func, 1 };
}

static int on_event(void *userdata, const struct diag_perf_event *e) {
        struct diag_stack s;
        uint64_t t0;

        (void) userdata;
        diag_perf_unwind_note(S.unw, e);
        if (e->kind != DIAG_PERF_SAMPLE)
                return 0;
        S.samples++;
        t0 = thread_cpu_ns();
        if (diag_perf_unwind_sample(S.unw, e, 64, true, &s) == 0) {
                S.unwound++;
                if (s.n && s.frames[0].func)
                        count_leaf(s.frames[0].func);   /* strings live until the unwinder is freed */
                if (s.n >= 3 && !s.err)
                        S.full++;
                diag_stack_clear(&s);
        }
        t0 = thread_cpu_ns() - t0;
        S.unwind_ns += t0;
        if (S.neach < MAX_EACH)
                S.each[S.neach++] = t0;
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double tv_us(struct timeval tv) {
        return (double) tv.tv_sec * 1e6 + (double) tv.tv_usec;
}

int main(int argc, char **argv) {
        _cleanup_(diag_perf_freep) struct diag_perf *p = NULL;
        long long pid, hz, secs;
        const char *reason = NULL;
        struct rusage ru;
        uint64_t end;
        pid_t tp;
        int r;

        if (argc != 4 || diag_parse_ll(argv[1], 10, 1, INT32_MAX, &pid) < 0 ||
            diag_parse_ll(argv[2], 10, 1, 100000, &hz) < 0 || diag_parse_ll(argv[3], 10, 1, 3600, &secs) < 0) {
                fprintf(stderr, "usage: perfsample PID HZ SECONDS\n");
                return 2;
        }
        tp = (pid_t) pid;
        S.each = malloc(MAX_EACH * sizeof *S.each);
        if (!S.each || diag_perf_unwind_new(&S.unw) < 0)
                return 1;
        r = diag_perf_open(&(struct diag_perf_opts) { .pids = &tp, .npids = 1, .freq_hz = (unsigned) hz,
                                                      .kernel_callchain = true },
                           &p, &reason);
        if (r < 0) {
                fprintf(stderr, "perfsample: %s\n", reason ? reason : strerror(-r));
                return r == -EACCES || r == -EPERM ? 77 : 1;
        }
        end = diag_now_ns(CLOCK_MONOTONIC) + (uint64_t) secs * 1000000000ULL;
        while (diag_now_ns(CLOCK_MONOTONIC) < end)
                if (diag_perf_poll(p, 100, on_event, NULL) < 0)
                        return 1;
        diag_perf_disable(p);
        if (diag_perf_poll(p, 0, on_event, NULL) < 0)
                return 1;
        getrusage(RUSAGE_SELF, &ru);
        qsort(S.each, S.neach, sizeof *S.each, cmp_u64);
        printf("{\"samples\": %" PRIu64 ", \"unwound\": %" PRIu64 ", \"full\": %" PRIu64 ", \"lost\": %" PRIu64
               ", \"user_us\": %.0f, \"sys_us\": %.0f, \"unwind_us\": %.0f, \"unwind_median_ns\": %" PRIu64
               ", \"leaves\": {",
               S.samples, S.unwound, S.full, diag_perf_lost(p), tv_us(ru.ru_utime), tv_us(ru.ru_stime),
               (double) S.unwind_ns / 1e3, S.neach ? S.each[S.neach / 2] : 0);
        for (size_t i = 0; i < S.nleaf; i++)
                printf("%s\"%s\": %" PRIu64, i ? ", " : "", S.leaf[i].func, S.leaf[i].n);
        printf("}}\n");
        diag_perf_unwind_free(S.unw);
        free(S.each);
        return 0;
}
