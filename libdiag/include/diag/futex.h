/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/sym.h"

/*
 * Futex waiters and what they wait for, without stopping anything: the waiters
 * come from /proc/PID/task/TID/syscall (futex, futex_waitv, futex_wait), the
 * lock's kind from the locking function found by a stack peek (diag/sym.h), and
 * the owner from reading the lock itself (process_vm_readv) with glibc 2.36's
 * layouts. Every inference is sanity-checked and says how it was made; where
 * nothing can be known it says "unknown" rather than guess.
 */

enum diag_futex_kind {
        DIAG_FUTEX_UNKNOWN = 0,
        DIAG_FUTEX_MUTEX,       /* normal, recursive, errorcheck, adaptive: owner in __owner */
        DIAG_FUTEX_MUTEX_ROBUST,/* owner TID in the lock word */
        DIAG_FUTEX_MUTEX_PI,    /* owner TID in the lock word, kept by the kernel */
        DIAG_FUTEX_RWLOCK,      /* writer in __cur_writer; readers are not recorded */
        DIAG_FUTEX_CONDVAR,     /* no owner: waits for a signal */
        DIAG_FUTEX_SEMAPHORE,   /* no owner: waits for a post */
        DIAG_FUTEX_BARRIER,     /* no owner: waits for the other parties */
        DIAG_FUTEX_LIBC_LOCK,   /* glibc's internal low-level lock (malloc, stdio...): owner not recorded */
        DIAG_FUTEX_JOIN,        /* pthread_join: the "owner" is the thread being waited for */
        DIAG_FUTEX_RAW,         /* a futex used directly */
};
const char *diag_futex_kind_name(enum diag_futex_kind k);

enum diag_confidence {
        DIAG_CONF_NONE = 0,     /* nothing known */
        DIAG_CONF_GUESS,        /* from memory contents that fit, unconfirmed by a caller */
        DIAG_CONF_LIKELY,       /* caller function and memory contents agree */
        DIAG_CONF_CERTAIN,      /* kernel-maintained (PI futex word) */
};
const char *diag_confidence_name(enum diag_confidence c);

#define DIAG_PEEK_MAX 8

struct diag_futex_waiter {
        pid_t pid, tid;
        char comm[17];
        uint64_t uaddr;                 /* in pid's address space */
        int op;                         /* FUTEX_* command, flags stripped */
        bool private_op;                /* FUTEX_PRIVATE_FLAG */
        uint32_t val;
        int64_t blocked_ms;             /* -1 unknown */
        bool rw_writer;                 /* rwlock: waits to write (else to read) */
        struct diag_peek_frame frames[DIAG_PEEK_MAX];
        size_t nframes;
};

struct diag_futex_lock {
        /* identity: private locks by (pid, uaddr); shared ones by the backing file */
        bool shared;
        pid_t pid;                      /* the first waiter's process */
        uint64_t uaddr;                 /* in that process */
        unsigned dev_major, dev_minor;  /* shared: the mapping's file */
        uint64_t inode, offset;
        /* what the lock is */
        enum diag_futex_kind kind;
        enum diag_confidence confidence;
        uint64_t base;                  /* start of the pthread object, in pid's space */
        uint32_t word;                  /* the futex word */
        pid_t owner_tid;                /* 0 unknown / none */
        pid_t owner_pid;
        bool owner_died;                /* FUTEX_OWNER_DIED set, or the owner no longer exists */
        bool owner_gone;                /* the recorded owner tid does not exist */
        unsigned readers;               /* rwlock held by readers: how many */
        char *evidence;                 /* "owner from __owner; lock word 2: contended" */
        char *name;                     /* "cache_lock", "libfoo.so+0x4010", "heap", "stack of 1234", "/dev/shm/x+0x40" */
        struct diag_futex_waiter *waiters;
        size_t nwaiters;
};

/* A thread asleep (nanosleep, clock_nanosleep, poll/select with nothing to
 * watch: diag_lock_sleep_call), seen by the scan with DIAG_FUTEX_SLEEPERS. */
struct diag_futex_sleeper {
        pid_t pid, tid;
        const char *call;               /* static: the system call's name */
};

struct diag_futex_scan {
        struct diag_futex_lock *locks;
        size_t n;
        struct diag_futex_sleeper *sleepers;
        size_t nsleepers;
        unsigned threads_seen;
        unsigned vanished;              /* processes or threads gone during the scan */
        unsigned denied;                /* processes we may not read */
        struct diag_symcache *symcache; /* owns the waiters' frame strings (NULL: the caller's) */
};

enum {
        DIAG_FUTEX_PEEK = 1 << 0,       /* stack peeks for callers (kind) and where waiters are */
        DIAG_FUTEX_SLEEPERS = 1 << 1,   /* also list the sleeping threads (for diag_lock_guess_wait) */
};

/* pids: only these processes (NULL: all). */
int diag_futex_scan(const pid_t *pids, size_t npids, unsigned flags, struct diag_futex_scan **ret);
/* Same, peeking with a symbol cache the caller keeps (and frees after the scan). */
int diag_futex_scan_with(const pid_t *pids, size_t npids, unsigned flags, struct diag_symcache *sc,
                         struct diag_futex_scan **ret);
struct diag_futex_scan *diag_futex_scan_free(struct diag_futex_scan *s);
static inline void diag_futex_scan_freep(struct diag_futex_scan **s) { diag_futex_scan_free(*s); }

/* The lock a thread waits for, or NULL. */
const struct diag_futex_lock *diag_futex_waited_by(const struct diag_futex_scan *s, pid_t tid);
