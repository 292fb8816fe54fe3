/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Per-syscall counts, errors and latency, without ptrace: what `strace -c` gives,
 * aggregated in the kernel (see syscount.c for the mechanism and why it was chosen,
 * with the measured overhead). Exact counts: every call that entered and returned
 * while counting. Removed when closed or when the tool dies (fds).
 */

struct diag_syscount_entry {
        pid_t pid;                      /* process (tgid) */
        long nr;                        /* native syscall number */
        uint64_t calls;                 /* returned while counting */
        uint64_t errors;                /* returned -errno */
        uint64_t total_ns, max_ns;      /* time from entry to return */
};

struct diag_syscount;

/* pids: the processes (every thread, threads started later too) to count; npids 0
 * = the whole host. 0, or negative errno with *reason set to one line saying what
 * is missing and why (not root / no CAP_BPF+CAP_PERFMON, kernel without BPF or
 * raw tracepoints): the caller prints it and falls back to /proc sampling. */
int diag_syscount_start(const pid_t *pids, size_t npids, struct diag_syscount **ret, const char **reason);
/* Stop counting (detach) without losing what was counted. */
void diag_syscount_stop(struct diag_syscount *s);
/* Everything counted so far, one entry per (pid, syscall), malloc'd array. */
int diag_syscount_read(struct diag_syscount *s, struct diag_syscount_entry **ret, size_t *n);
struct diag_syscount *diag_syscount_free(struct diag_syscount *s);
static inline void diag_syscount_freep(struct diag_syscount **s) { diag_syscount_free(*s); }
/* One word for the mechanism in use ("bpf raw_tracepoint"), for the report. */
const char *diag_syscount_mechanism(const struct diag_syscount *s);

/* Options for diag_syscount_start_flags(). NO_LATENCY counts calls and errors
 * only (total_ns and max_ns stay 0): one program on sys_exit, no clock reads, no
 * per-thread state; the cheapest mode. In either mode a call already in progress
 * when counting starts is counted when it returns, without its latency. */
#define DIAG_SYSCOUNT_NO_LATENCY 0x1u
int diag_syscount_start_flags(const pid_t *pids, size_t npids, unsigned flags, struct diag_syscount **ret,
                              const char **reason);
/* Returns not counted because the table was full (one per lost return). */
uint64_t diag_syscount_lost(const struct diag_syscount *s);
