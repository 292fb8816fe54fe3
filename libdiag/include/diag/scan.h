/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/fd.h"
#include "diag/locks.h"
#include "diag/net.h"

/*
 * A system scan: processes, their fd tables, the sockets of each network
 * namespace they live in, /proc/locks, and an index from what an fd refers to
 * (pipe, socket, file) to every fd that refers to it. diag-fds renders it;
 * diag-locks and diag-chain walk it. Processes that vanish or may not be read
 * are counted, never an error.
 */

struct diag_scan_proc {
        pid_t pid;
        char comm[17];
        uid_t uid;
        uint64_t netns;                 /* /proc/PID/ns/net inode, 0 unknown */
        struct diag_fdtable *fdt;
        const struct diag_socktab *socks;       /* its namespace's sockets, NULL if not dumped */
};

/* What an fd refers to, for finding the other ends. */
enum diag_ref_kind {
        DIAG_REF_PIPE = 1,      /* anonymous pipe inode */
        DIAG_REF_SOCK,          /* socket inode (per namespace, but inodes are global) */
        DIAG_REF_FILE,          /* (dev, inode) of a path fd, memfd or named FIFO; needs statx */
        DIAG_REF_EVENTFD,       /* eventfd-id from fdinfo, when read */
};

struct diag_fdref {
        uint32_t proc;          /* index in procs */
        uint32_t fd;            /* index in procs[proc].fdt->fds */
};

struct diag_scan {
        size_t n;
        struct diag_scan_proc *procs;   /* sorted by pid */
        unsigned vanished;              /* processes gone before we read them */
        unsigned denied;                /* processes whose fds we may not read (kernel threads and zombies not counted) */
        unsigned fds_vanished;
        unsigned ns_skipped;            /* network namespaces not entered (no permission) */
        struct diag_locktab *locks;     /* /proc/locks, when asked */
        /* private */
        size_t nns;
        uint64_t *ns_ids;
        struct diag_socktab **ns_tabs;
        struct scan_key *index;
        size_t nindex;
};

enum {
        DIAG_SCAN_STATX  = 1 << 0,      /* type/dev/ino of path fds (statx, inode cache only) */
        DIAG_SCAN_FDINFO = 1 << 1,      /* fdinfo of every fd (slow: pos, flags, lock lines) */
        DIAG_SCAN_NET    = 1 << 2,      /* sock_diag dumps per network namespace */
        DIAG_SCAN_LOCKS  = 1 << 3,      /* /proc/locks */
        DIAG_SCAN_INDEX  = 1 << 4,      /* the endpoint index */
        DIAG_SCAN_EPOLL  = 1 << 5,      /* fdinfo of eventpoll and eventfd fds only */
        DIAG_SCAN_ACCESS = 1 << 6,      /* r/w access of each fd */
};

/* pids: scan these only (NULL: every process). */
int diag_scan_run(const pid_t *pids, size_t npids, unsigned flags, struct diag_scan **ret);
struct diag_scan *diag_scan_free(struct diag_scan *s);
static inline void diag_scan_freep(struct diag_scan **s) { diag_scan_free(*s); }

const struct diag_scan_proc *diag_scan_find(const struct diag_scan *s, pid_t pid);
/* The socket an fd is, from its process's namespace table; NULL if unknown. */
const struct diag_sock *diag_scan_sock(const struct diag_scan *s, const struct diag_scan_proc *p,
                                       const struct diag_fd *fd);
/* Every fd referring to (kind, dev, ino): returns how many, and the index
 * position of the first in *ret_first; diag_scan_ref(s, *ret_first + i) is each. */
size_t diag_scan_refs(const struct diag_scan *s, enum diag_ref_kind kind, uint64_t dev,
                      uint64_t ino, size_t *ret_first);
const struct diag_fdref *diag_scan_ref(const struct diag_scan *s, size_t i);
/* Every fd a /proc/locks entry goes through: for flock and POSIX entries the
 * fds of its pid on that file; for OFD locks (pid -1 in /proc/locks) the fds
 * whose fdinfo "lock:" lines carry the same lock. Needs DIAG_SCAN_STATX and
 * DIAG_SCAN_INDEX; may read fdinfo of the candidate fds. */
typedef void (*diag_scan_lock_fn)(size_t proc, size_t fd, const struct diag_filelock *l, void *ud);
void diag_scan_lock_fds(struct diag_scan *s, const struct diag_filelock *l, diag_scan_lock_fn fn, void *ud);

/* The key of an fd (0 kind if it has none). */
enum diag_ref_kind diag_scan_fd_key(const struct diag_fd *fd, uint64_t *ret_dev, uint64_t *ret_ino);
