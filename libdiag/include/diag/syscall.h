/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Syscall names and strace-like argument decoding for x86_64 and aarch64.
 * Pure functions: nothing here touches /proc or the target.
 */

enum diag_arch {
        DIAG_ARCH_UNKNOWN = 0,
        DIAG_ARCH_X86_64,
        DIAG_ARCH_AARCH64,
};

enum diag_arch diag_arch_native(void);
const char *diag_arch_name(enum diag_arch arch);

/* What /proc/PID/task/TID/syscall said. */
enum diag_sc_kind {
        DIAG_SC_UNKNOWN = 0,    /* not read / unreadable */
        DIAG_SC_RUNNING,        /* "running": on a CPU right now */
        DIAG_SC_USER,           /* "-1 sp pc": stopped outside any syscall (user space, or a trap) */
        DIAG_SC_IN,             /* "nr a0..a5 sp pc": blocked in syscall nr */
};

struct diag_syscall_state {
        enum diag_sc_kind kind;
        long nr;
        uint64_t args[6];
        uint64_t sp, pc;
};

/* Parse the text of /proc/PID/task/TID/syscall. -EINVAL if malformed. */
int diag_syscall_parse_proc(const char *text, struct diag_syscall_state *ret);

/* Name for nr on arch, or NULL when unknown. */
const char *diag_syscall_name(enum diag_arch arch, long nr);
/* The call a thread shown in restart_syscall resumes, told by its wait
 * channel: "poll" (poll's restart, do_restart_poll) or "futex" (a FUTEX_WAIT
 * with a timeout), whose arguments the registers /proc/PID/task/TID/syscall
 * shows still hold, as the program passed them; "nanosleep" for a resumed
 * sleep; NULL when the wait channel does not tell. A thread gets there when a
 * stop (any tracer's, SIGSTOP) interrupted its call. */
const char *diag_syscall_resumed(const char *wchan);
/* Number for name on arch, or -1. */
long diag_syscall_number(enum diag_arch arch, const char *name);

/* What a blocked thread in this syscall is waiting for, for grouping and chains. */
enum diag_sc_class {
        DIAG_SCC_OTHER = 0,
        DIAG_SCC_FUTEX,         /* futex, futex_waitv, futex_wait */
        DIAG_SCC_FD_READ,       /* read, readv, pread64, recvfrom, recvmsg, recvmmsg */
        DIAG_SCC_FD_WRITE,      /* write, writev, pwrite64, sendto, sendmsg, sendmmsg */
        DIAG_SCC_POLL,          /* poll, ppoll, select, pselect6 */
        DIAG_SCC_EPOLL,         /* epoll_wait, epoll_pwait, epoll_pwait2 */
        DIAG_SCC_ACCEPT,        /* accept, accept4 */
        DIAG_SCC_CONNECT,
        DIAG_SCC_FLOCK,
        DIAG_SCC_FCNTL_LOCK,    /* fcntl with F_SETLKW / F_OFD_SETLKW */
        DIAG_SCC_WAIT_CHILD,    /* wait4, waitid */
        DIAG_SCC_SLEEP,         /* nanosleep, clock_nanosleep */
        DIAG_SCC_PAUSE,         /* pause, rt_sigsuspend */
        DIAG_SCC_SIGWAIT,       /* rt_sigtimedwait */
        DIAG_SCC_AIO,           /* io_getevents, io_pgetevents, io_uring_enter */
        DIAG_SCC_IPC,           /* msgrcv, msgsnd, semop, semtimedop, mq_timedreceive/send */
};
enum diag_sc_class diag_syscall_class(enum diag_arch arch, const struct diag_syscall_state *sc);
const char *diag_sc_class_name(enum diag_sc_class c);

/* For FD_READ/FD_WRITE/ACCEPT/CONNECT/FLOCK/FCNTL_LOCK: the fd argument, else -1. */
int diag_syscall_fd(enum diag_arch arch, const struct diag_syscall_state *sc);

/*
 * strace-like one-liner: "futex(0x55c1d2a0b200, FUTEX_WAIT_PRIVATE, 2, NULL)",
 * "read(3, 0x7ffd5c8e0a10, 4096)", "nanosleep(0x7ffd..., NULL)", "poll(0x7f..., 2, -1)".
 * Only the blocking syscalls named in diag_sc_class get decoded arguments (ops and
 * flags symbolic, fds decimal, pointers hex, NULL for 0, timeouts decimal); any other
 * known syscall prints its name with six hex arguments; unknown ones print
 * "syscall_NNN(...)". Also handles kind RUNNING ("running") and USER ("-" ).
 * Always NUL-terminates; returns buf.
 */
char *diag_syscall_format(enum diag_arch arch, const struct diag_syscall_state *sc,
                          char *buf, size_t size);
