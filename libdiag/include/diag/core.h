/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * ELF cores of live processes, as the kernel would write them at a crash:
 * NT_PRSTATUS and the register sets of every thread, NT_PRPSINFO, NT_SIGINFO,
 * NT_AUXV, NT_FILE, and one PT_LOAD per mapping, with contents chosen by the
 * kernel's coredump_filter rules. Zero and absent pages are holes.
 *
 * The target is stopped only to capture a consistent state: registers, and a
 * fork() it makes (see inject.h) whose copy-on-write child then holds its memory
 * while the target runs on. Where forking is impossible or unsafe, the memory is
 * copied while the target is stopped, and the result says why.
 */

enum diag_core_method {
        DIAG_CORE_FORK,
        DIAG_CORE_STOP,
};

/* coredump_filter bits (core(5)) */
#define DIAG_CORE_ANON_PRIVATE   (1UL << 0)
#define DIAG_CORE_ANON_SHARED    (1UL << 1)
#define DIAG_CORE_FILE_PRIVATE   (1UL << 2)
#define DIAG_CORE_FILE_SHARED    (1UL << 3)
#define DIAG_CORE_ELF_HEADERS    (1UL << 4)
#define DIAG_CORE_HUGE_PRIVATE   (1UL << 5)
#define DIAG_CORE_HUGE_SHARED    (1UL << 6)

struct diag_core_opts {
        enum diag_core_method method;
        bool filter_set;
        unsigned long filter;           /* else the target's /proc/PID/coredump_filter */
        unsigned long filter_add, filter_remove;        /* applied after */
        uint64_t max_size;              /* bytes of memory written at most; 0 = no cap */
        bool stacks_only;               /* registers, stacks, small writable data */
        unsigned timeout_ms;            /* for every thread to stop (0: 1 s) */
        /* Now and then while memory is written (done, total are estimates in
         * bytes). A non-zero return cancels the dump (-ECANCELED). */
        int (*progress)(void *userdata, uint64_t done, uint64_t total);
        void *userdata;
};

struct diag_core_result {
        enum diag_core_method method;   /* what was used */
        bool stopped;                   /* the process was stopped (else nothing was done to it) */
        bool not_stopped;               /* every thread in D state: written without a stop, from
                                         * what /proc gives (threads_partial says which) */
        const char *fallback;           /* why fork was not used, or NULL */
        bool stop_chosen;               /* --stacks-only: copying during the stop was estimated
                                         * shorter than the fork (no fallback) */
        uint64_t estimate;              /* then: the bytes estimated */
        bool mended;                    /* see struct diag_fork */
        const char *reap_error;         /* the fork child could not be reaped (it is left as a zombie) */
        unsigned threads;               /* thread notes written */
        unsigned threads_partial;       /* of which registers came from /proc only (D state) */
        unsigned segments;              /* PT_LOAD headers */
        unsigned capped;                /* mappings left out by --max-size */
        unsigned unreadable;            /* pages that could not be read */
        unsigned remote_skipped;        /* pages of files on NFS, FUSE... not in memory: not read */
        uint64_t bytes;                 /* memory bytes written (holes excluded) */
        uint64_t file_size;             /* apparent size of the core */
        uint64_t pause_ns;              /* how long the target was stopped */
        uint64_t fork_ns;               /* of which the fork itself */
        uint64_t regs_ns;               /* of which copying the register sets */
        uint64_t handover_ns;           /* child's fds closed, image handed over, child reaped */
        uint64_t write_ns;              /* planning and writing the file */
        uint64_t end_ns;                /* killing the image's holder */
};

/* Write a core of pid to fd: a regular file (written sparse, with pwrite) or a
 * pipe (written in order, holes as zeros). Returns 0, or negative errno; then
 * *ret->fallback or errno says what went wrong; the caller removes the file. */
int diag_core_write(pid_t pid, const struct diag_core_opts *o, int fd, struct diag_core_result *ret);
