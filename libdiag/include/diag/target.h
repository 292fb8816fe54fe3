/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * The process a user named, and one vocabulary for why a tool cannot do its
 * job on it. Every tool resolves its targets here, so that the same case reads
 * the same and exits with the same status in every tool:
 *
 *   gone          "pid 123: no such process"
 *   zombie        "pid 123 (worker) has exited: a zombie its parent 45 (php-fpm) has not reaped"
 *   kernel        "pid 2 (kthreadd) is a kernel thread: it has no user space to <what>"
 *   not permitted "not permitted to <what> pid 123 (worker), owned by uid 1000: run as root or as its owner"
 *                 (as root: "... even as root: <the reason the kernel refused>")
 *   traced        "pid 123 (worker) is already traced by pid 456 (gdb)"
 *   no watchdog   "did not <what> pid 123 (worker): the watchdog ... is not running, so nothing was stopped"
 *
 * Each of these is DIAG_EXIT_FAILURE for that target. With -J a tool that fails
 * as a whole prints a JSON error object (diag_json_error) on stdout as well as
 * the line on stderr, and exits with the same status.
 */

enum diag_target_kind {
        DIAG_TARGET_LIVE = 0,           /* a user-space process (it may still refuse us) */
        DIAG_TARGET_GONE,               /* no such process */
        DIAG_TARGET_ZOMBIE,             /* exited, not reaped yet */
        DIAG_TARGET_KERNEL,             /* a kernel thread: no user space */
};

struct diag_target {
        pid_t pid;                      /* the process; a thread id given is resolved to it */
        pid_t tid;                      /* the thread named, when not the main thread; else 0 */
        enum diag_target_kind kind;
        char state;                     /* of the process, '?' when gone */
        char comm[17];
        uid_t uid;                      /* owner (effective uid), when known */
        pid_t ppid;                     /* parent (the one who must reap a zombie) */
        char parent_comm[17];
};

/* Resolve id (a pid, or a thread id of any process) and say what it is. Never
 * fails: a process that cannot be read is GONE. */
void diag_target_resolve(pid_t id, struct diag_target *ret);

/*
 * One line (no program name, no newline) saying why `what` ("trace", "read
 * the fds of", "unwind", "dump") could not be done to t: from t's kind, or
 * from err when t is LIVE (-EPERM, -EBUSY, -ESRCH, other errno). For -EPERM and
 * -EBUSY the tracer is looked up now, after the failure: a process someone else
 * attached to in between is named as "already traced by". Returns buf.
 */
char *diag_target_message(const struct diag_target *t, int err, const char *what, char *buf, size_t size);

/* A stable word for the same case, for JSON ("gone", "zombie", "kernel-thread",
 * "not-permitted", "traced", "error"); NULL when t is LIVE and err is 0. */
const char *diag_target_reason(const struct diag_target *t, int err);

/* Why root itself may be refused ptrace here ("kernel.yama.ptrace_scope is 3",
 * "this root lacks CAP_SYS_PTRACE", ...), or NULL if nothing known explains it. */
const char *diag_ptrace_denied_reason(void);

/* The error object of every tool's -J on a failure of the whole run:
 * {"error": {"message": ..., "reason": ..., "pid": ..., "status": N}}
 * reason and pid may be NULL / 0 (then left out). Returns 0 or negative errno. */
int diag_json_error(FILE *f, const char *message, const char *reason, pid_t pid, int status);
