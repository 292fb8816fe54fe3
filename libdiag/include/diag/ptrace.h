/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/mem.h"
#include "diag/syscall.h"

/*
 * The only module that stops a target. PTRACE_SEIZE + PTRACE_INTERRUPT on every
 * thread (never SIGSTOP: if the tool dies, the kernel detaches and the target runs
 * on), copy registers and stack bytes while stopped, detach at once. Everything
 * slow happens on the copies afterwards.
 *
 * A thread asleep in a system call sees an interrupt as it sees a signal. Most
 * calls restart as if nothing happened; some do not (recv on a socket with a
 * timeout and sigtimedwait fail with EINTR, a pipe write returns a short count,
 * a FUSE request tells its server and turns into an uninterruptible wait). Such
 * threads, and threads in D state, are never interrupted: they are peeked, their
 * pc, sp and system call read from /proc and their stack copied while they
 * sleep, which needs no stop.
 */

#define DIAG_MAX_DWARF_REGS 34

struct diag_thread_capture {
        pid_t tid;
        int err;                        /* 0 stopped, or negative errno (-ESRCH gone, -ETIMEDOUT,
                                         * -EPERM; -EDEADLK in D state and -EINTR asleep in a call an
                                         * interrupt would change: not stopped, see not_stopped) */
        /* Not stopped (err -EDEADLK or -EINTR) but read while it slept: pc, sp,
         * syscall_nr and the stack are there; of the registers only pc and sp. */
        bool peeked;
        char not_stopped[96];           /* why it was not stopped, in words; "" when it was */
        uint64_t pc, sp, fp;
        long syscall_nr;                /* syscall the thread was in when stopped, -1 if none */
        /* Registers in DWARF numbering, as the unwinder wants them. */
        uint64_t dwarf_regs[DIAG_MAX_DWARF_REGS];
        unsigned ndwarf_regs;
        /* Copy of the stack from stack_start (at or below sp) upward. */
        uint64_t stack_start;
        size_t stack_len;
        uint8_t *stack;
};

struct diag_capture {
        pid_t pid;
        enum diag_arch arch;
        size_t n;
        struct diag_thread_capture *threads;
        uint64_t pause_ns;              /* first stop to last resume: how long the target was frozen */
        uint64_t freeze_ns;             /* first stop to last thread stopped */
        unsigned appeared;              /* threads that were born during the stop (caught too) */
        unsigned vanished;              /* threads that exited before we could stop them */
        uint8_t *stack_arena;           /* backing store of every thread's stack copy */
};

struct diag_capture_opts {
        size_t stack_max;               /* bytes of stack copied per thread; 0 = default (256 KiB) */
        unsigned timeout_ms;            /* for all threads to stop; 0 = default (1000) */
        const pid_t *tids;              /* only these threads (NULL = all) */
        size_t ntids;
        const struct diag_maps *maps;   /* to bound stack copies at the end of their mapping */
        bool no_stacks;                 /* registers only: copy no stack bytes */
        /* Called on the tracer thread while every thread is stopped, after the
         * registers (and stacks) were copied: anything else that needs the target
         * still (raw register sets, a fork injected by diag_inject_fork). Its
         * negative return fails the capture; the target is released either way. */
        int (*stopped)(void *userdata, const struct diag_capture *c);
        /* Called on the tracer thread once the target runs again. Tracees the
         * stopped hook made itself (a forked child) are still attached here, and
         * are released, or killed if so marked, when it returns. */
        int (*released)(void *userdata, const struct diag_capture *c);
        void *userdata;
};

/* -ESRCH no such process (or every thread vanished); -EPERM not permitted to
 * trace; -EBUSY already traced by another process (see diag_ptrace_tracer_of);
 * -ECHILD the watchdog that keeps a suspended tool from holding the target
 * could not be started or is gone (diag/guard.h): nothing was stopped.
 * Threads in D state are not stopped: their entry has err -EDEADLK; threads
 * asleep in a call an interrupt would change have -EINTR. Both are peeked when
 * they sleep in the kernel (see peeked). A thread that did not stop within the
 * timeout has -ETIMEDOUT. The capture is returned when at least one thread was
 * stopped or peeked; -EDEADLK when none was (every thread in D, say). The
 * stopped hook runs only when at least one thread stopped. */
int diag_capture_take(pid_t pid, const struct diag_capture_opts *opts, struct diag_capture **ret);
struct diag_capture *diag_capture_free(struct diag_capture *c);
static inline void diag_capture_freep(struct diag_capture **c) { diag_capture_free(*c); }

/* Pid of the process tracing pid (TracerPid in status), 0 if none. */
int diag_ptrace_tracer_of(pid_t pid, pid_t *ret);
