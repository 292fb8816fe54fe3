/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/fd.h"
#include "diag/proc.h"
#include "diag/syscall.h"

/*
 * What one fd of a process is, for a thread blocked on it: the file's path
 * (readlink /proc/PID/fd/N), the device and the mount it lives on (fdinfo's
 * mnt_id joined with /proc/PID/mountinfo), so that a thread stuck in
 * write(1, ...) reads "write(1, ...) on /var/log/x (vda1 ext4 mounted at /)".
 * Never stat()s or open()s the file itself: it may be on a mount that hangs.
 */
struct diag_fdname {
        int fd;
        char *link;                     /* readlink text: a path, "pipe:[123]", "socket:[9]", ... */
        enum diag_fd_type type;         /* from the link text; DIAG_FD_UNKNOWN for paths */
        bool deleted;                   /* path ends in " (deleted)" */
        bool have_fdinfo;
        uint64_t pos;                   /* file offset */
        unsigned flags;                 /* open flags (O_*) */
        int mnt_id;                     /* -1 unknown */
        bool have_mount;                /* the fields below are known */
        unsigned dev_major, dev_minor;  /* the mount's device (st_dev of its files) */
        char *dev_name;                 /* "vda1" (block device), else the mount source; may be NULL */
        char *mount_point;              /* "/" */
        char *fstype;                   /* "ext4", "fuse.sshfs", "nfs4" */
        bool may_hang;                  /* on a network or FUSE file system */
};

/* Name fd of pid. mounts may be NULL (then read here; pass them when naming
 * several fds of one process). -ESRCH: the process or the fd is gone;
 * -EACCES: not permitted. Fields that cannot be read stay unknown. */
int diag_fdname_read(pid_t pid, int fd, const struct diag_mounts *mounts, struct diag_fdname *ret);
void diag_fdname_done(struct diag_fdname *n);

/* "/var/log/x (vda1 ext4 mounted at /)", "pipe:[123]", "/x (deleted) (vda1 ...)". */
char *diag_fdname_format(const struct diag_fdname *n, char *buf, size_t size);

/* The fd a system call in progress works on, for naming: the read, write,
 * accept, connect and lock families (diag_syscall_fd), and the calls that can
 * sit in D on a file: fsync, fdatasync, sync_file_range, fallocate, ftruncate,
 * preadv/pwritev(2), sendfile (its out fd), splice, copy_file_range,
 * getdents64, ioctl. -1 when none. */
int diag_fdname_syscall_fd(enum diag_arch arch, const struct diag_syscall_state *sc);
