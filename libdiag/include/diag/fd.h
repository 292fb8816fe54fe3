/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/locks.h"

/*
 * File descriptor tables from /proc/PID/fd (readlink) and /proc/PID/fdinfo.
 * Never stat()s or open()s the target's files: a hung NFS or FUSE mount must not
 * hang us. The one exception is statx(AT_STATX_DONT_SYNC) on the /proc magic link
 * for the file type, device and inode of path-named fds (DIAG_FD_STATX): it
 * answers from the inode cache without asking the file system's server.
 */

enum diag_fd_type {
        DIAG_FD_UNKNOWN = 0,
        DIAG_FD_REG,
        DIAG_FD_DIR,
        DIAG_FD_FIFO,           /* named FIFOs and anonymous pipes ("pipe:[ino]") */
        DIAG_FD_SOCK,
        DIAG_FD_CHR,
        DIAG_FD_BLK,
        DIAG_FD_EVENTFD,
        DIAG_FD_EVENTPOLL,
        DIAG_FD_TIMERFD,
        DIAG_FD_SIGNALFD,
        DIAG_FD_INOTIFY,
        DIAG_FD_FANOTIFY,
        DIAG_FD_PIDFD,
        DIAG_FD_MEMFD,
        DIAG_FD_IO_URING,
        DIAG_FD_BPF,            /* bpf-map, bpf-prog, bpf_link */
        DIAG_FD_PERF,
        DIAG_FD_USERFAULTFD,
        DIAG_FD_ANON,           /* any other anon_inode */
};

/* "REG", "DIR", "FIFO", "SOCK", "CHR", "BLK", "eventfd", "eventpoll", ... */
const char *diag_fd_type_name(enum diag_fd_type t);

/* Classify a /proc/PID/fd/N link text; sets *ret_inode for "pipe:[N]", "socket:[N]"
 * and "anon_inode:..." has none (0). Paths give DIAG_FD_UNKNOWN until statx says. */
enum diag_fd_type diag_fd_classify(const char *link, uint64_t *ret_inode);

struct diag_fd {
        int fd;
        enum diag_fd_type type;
        char *link;                     /* readlink text: path, "pipe:[123]", "socket:[456]", ... */
        bool deleted;                   /* path ends in " (deleted)" */
        uint64_t inode;                 /* pipe/socket inode, or statx/fdinfo ino */
        unsigned dev_major, dev_minor;  /* from statx, when read (0:0 otherwise) */
        /* from fdinfo (DIAG_FD_FDINFO) */
        bool have_fdinfo;
        uint64_t pos;
        unsigned flags;                 /* open flags (O_*), octal in fdinfo */
        int mnt_id;
        struct diag_filelock *locks;    /* "lock:" lines: locks this fd's file holds or waits for */
        size_t nlocks;
        int *epoll_tfds;                /* eventpoll: the fds it watches ("tfd:" lines) */
        size_t nepoll_tfds;
        uint64_t eventfd_count;         /* eventfd: "eventfd-count:" */
        uint64_t eventfd_id;            /* eventfd: "eventfd-id:" (unique per eventfd) */
        unsigned access;                /* DIAG_FD_ACCESS: DIAG_FD_R | DIAG_FD_W */
};

enum { DIAG_FD_R = 1, DIAG_FD_W = 2 };

struct diag_fdtable {
        pid_t pid;
        size_t n;
        struct diag_fd *fds;            /* sorted by fd */
        unsigned vanished;              /* fds that closed during the scan */
};

enum {
        DIAG_FD_FDINFO = 1 << 0,        /* pos, flags, locks, epoll targets */
        DIAG_FD_STATX  = 1 << 1,        /* type/dev/ino of path fds, via statx DONT_SYNC */
        DIAG_FD_FDINFO_SPECIAL = 1 << 2, /* fdinfo of eventpoll and eventfd fds only */
        DIAG_FD_ACCESS = 1 << 3,        /* r/w from the mode of the /proc magic link (lstat) */
};

/* -ESRCH: the process is gone; -EACCES: not permitted. */
int diag_fd_scan(pid_t pid, unsigned flags, struct diag_fdtable **ret);
struct diag_fdtable *diag_fdtable_free(struct diag_fdtable *t);
static inline void diag_fdtable_freep(struct diag_fdtable **t) { diag_fdtable_free(*t); }

/* Read /proc/PID/fdinfo/N into an fd already scanned (for a few chosen fds). */
int diag_fd_read_fdinfo(pid_t pid, struct diag_fd *fd);

/* Parse the text of /proc/PID/fdinfo/N into fd (exposed for tests). */
int diag_fd_parse_fdinfo(const char *text, struct diag_fd *fd);

/* Soft RLIMIT_NOFILE of pid from /proc/PID/limits; -ENODATA if unlimited/absent. */
int diag_fd_nofile_limit(pid_t pid, uint64_t *ret_soft, uint64_t *ret_hard);
