/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/ptrace.h"
#include "diag/syscall.h"
#include "diag/unwind.h"

/*
 * On-CPU sampling with perf_event_open, no ptrace, nothing stopped, nothing written
 * into the target. Each sample carries the kernel callchain, the user registers and
 * a copy of the top of the user stack (PERF_SAMPLE_REGS_USER + PERF_SAMPLE_STACK_USER),
 * unwound afterwards with libdw's CFI from the copy, as `perf record --call-graph
 * dwarf` does, so code built without frame pointers unwinds.
 *
 * For named processes: one event per existing thread with inherit set, so threads
 * and processes they start during the window are sampled too (their samples go to
 * the parent event's ring). For the whole host: one event per CPU.
 * Event: cpu-clock (software); hardware cycles when asked and available.
 */

struct diag_perf_opts {
        const pid_t *pids;              /* processes to sample (every thread); ignored with all */
        size_t npids;
        bool all;                       /* the whole host, one event per CPU (needs root or paranoid <= 0) */
        unsigned freq_hz;               /* samples per second per thread (per CPU with all); 0 = 99 */
        unsigned stack_bytes;           /* user stack copied per sample; 0 = 16384 */
        bool kernel_callchain;          /* also the kernel part (needs root or paranoid <= 1) */
        bool cycles;                    /* hardware cycles instead of cpu-clock, when the PMU has them */
};

enum diag_perf_event_kind {
        DIAG_PERF_SAMPLE,
        DIAG_PERF_COMM,                 /* a thread named itself, or exec'd (exec = true) */
        DIAG_PERF_FORK,                 /* a new thread or process (pid, tid; ppid, ptid) */
        DIAG_PERF_EXIT,                 /* a thread or process exited */
        DIAG_PERF_MMAP,                 /* an executable mapping appeared (dlopen, exec) */
        DIAG_PERF_LOST,                 /* the ring overflowed: lost samples */
};

/* Everything a sample or record holds. Pointers are valid only during the callback. */
struct diag_perf_event {
        enum diag_perf_event_kind kind;
        pid_t pid, tid;
        pid_t ppid, ptid;               /* FORK/EXIT */
        uint32_t cpu;
        uint64_t time_ns;               /* CLOCK_MONOTONIC */
        /* SAMPLE */
        uint64_t ip;
        bool user;                      /* the sample hit user mode */
        const uint64_t *kernel_chain;   /* kernel return addresses, innermost first (context markers removed) */
        size_t nkernel;
        struct diag_thread_capture regs;/* user registers in DWARF numbering (pc, sp too) and the
                                         * stack copy (stack_start = sp, stack/stack_len) */
        /* COMM */
        const char *comm;
        bool exec;
        /* MMAP */
        uint64_t addr, len, pgoff;
        const char *filename;
        /* LOST */
        uint64_t lost;
};

struct diag_perf;

/* 0, or negative errno with *reason set to one line saying what is missing and why
 * (perf_event_paranoid, no permission, not supported): the caller prints it and
 * goes on without on-CPU stacks. *reason is static or owned by nothing: do not free. */
int diag_perf_open(const struct diag_perf_opts *opts, struct diag_perf **ret, const char **reason);
struct diag_perf *diag_perf_free(struct diag_perf *p);
static inline void diag_perf_freep(struct diag_perf **p) { diag_perf_free(*p); }

/* Wait up to timeout_ms for data, then hand every record in the rings to cb (in
 * time order per ring). cb returning < 0 stops and returns that. Returns the
 * number of records handed, or negative errno. */
int diag_perf_poll(struct diag_perf *p, int timeout_ms,
                   int (*cb)(void *userdata, const struct diag_perf_event *e), void *userdata);
/* Stop sampling (the rings still hold what was taken: poll once more to read it). */
void diag_perf_disable(struct diag_perf *p);
/* Samples lost to full rings, and threads that could not be opened (gone). */
uint64_t diag_perf_lost(const struct diag_perf *p);
enum diag_arch diag_perf_arch(const struct diag_perf *p);

/*
 * Unwinding samples: one unwinder per process, made from /proc/PID/maps the first
 * time a sample of that process is unwound (during the window, while it lives) and
 * made again after it execs or maps new code. Reads never go outside the copy (the
 * live stack has moved on since the sample).
 */
struct diag_perf_unwind;
int diag_perf_unwind_new(struct diag_perf_unwind **ret);
struct diag_perf_unwind *diag_perf_unwind_free(struct diag_perf_unwind *w);
static inline void diag_perf_unwind_freep(struct diag_perf_unwind **w) { diag_perf_unwind_free(*w); }
/* Tell it about COMM(exec)/MMAP/EXIT events so it knows when maps changed. */
void diag_perf_unwind_note(struct diag_perf_unwind *w, const struct diag_perf_event *e);
/* Unwind and symbolize one SAMPLE: kernel frames first (kernel = true, from
 * /proc/kallsyms when readable) then user frames, innermost first. The frames'
 * strings live until diag_perf_unwind_free. -ESRCH if the process is gone and was
 * never seen. */
int diag_perf_unwind_sample(struct diag_perf_unwind *w, const struct diag_perf_event *e,
                            size_t max_frames, bool inlines, struct diag_stack *ret);
/* The unwinder used for pid (modules, debuginfo status), NULL if none was made. */
struct diag_unwinder *diag_perf_unwind_of(struct diag_perf_unwind *w, pid_t pid);
