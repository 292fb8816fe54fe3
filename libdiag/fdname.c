/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "diag/fdname.h"
#include "diag/util.h"

void diag_fdname_done(struct diag_fdname *n) {
        free(n->link);
        free(n->dev_name);
        free(n->mount_point);
        free(n->fstype);
        *n = (struct diag_fdname) { .fd = -1, .mnt_id = -1 };
}

/* The kernel's name of a block device ("vda1"), from sysfs: a link under
 * /sys/dev/block, read without touching the device. NULL if not a block device. */
static char *block_dev_name(unsigned major, unsigned minor) {
        char path[64], buf[512];
        const char *b;
        ssize_t k;

        snprintf(path, sizeof path, "/sys/dev/block/%u:%u", major, minor);
        k = readlink(path, buf, sizeof buf - 1);
        if (k <= 0)
                return NULL;
        buf[k] = 0;
        b = strrchr(buf, '/');
        return strdup(b ? b + 1 : buf);
}

static int fill_mount(struct diag_fdname *n, const struct diag_mount *m) {
        n->dev_major = m->major;
        n->dev_minor = m->minor;
        n->dev_name = block_dev_name(m->major, m->minor);
        if (!n->dev_name && m->source && strcmp(m->source, "none") != 0)
                n->dev_name = strdup(m->source);
        n->mount_point = strdup(m->point);
        n->fstype = strdup(m->fstype);
        if (!n->mount_point || !n->fstype)
                return -ENOMEM;
        n->may_hang = diag_fstype_may_hang(m->fstype);
        n->have_mount = true;
        return 0;
}

int diag_fdname_read(pid_t pid, int fd, const struct diag_mounts *mounts, struct diag_fdname *ret) {
        _cleanup_(diag_mounts_done) struct diag_mounts own = {};
        struct diag_fd info = { .fd = fd, .mnt_id = -1 };
        char path[64], buf[4096];
        uint64_t ino;
        ssize_t k;
        int r;

        *ret = (struct diag_fdname) { .fd = fd, .mnt_id = -1 };
        snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
        k = readlink(path, buf, sizeof buf - 1);
        if (k < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        buf[k] = 0;
        ret->link = strdup(buf);
        if (!ret->link)
                return -ENOMEM;
        ret->type = diag_fd_classify(buf, &ino);
        ret->deleted = k > 10 && strcmp(buf + k - 10, " (deleted)") == 0;

        /* fdinfo: pos, flags, mnt_id (reading it does not touch the file) */
        if (diag_fd_read_fdinfo(pid, &info) >= 0) {
                ret->have_fdinfo = true;
                ret->pos = info.pos;
                ret->flags = info.flags;
                ret->mnt_id = info.mnt_id;
        }
        free(info.locks);
        free(info.epoll_tfds);
        if (ret->mnt_id < 0)
                return 0;
        if (!mounts) {
                if (diag_mounts_read(pid, &own) < 0)
                        return 0;
                mounts = &own;
        }
        {
                const struct diag_mount *m = diag_mounts_find(mounts, ret->mnt_id);
                if (m && (r = fill_mount(ret, m)) < 0) {
                        diag_fdname_done(ret);
                        return r;
                }
        }
        return 0;
}

char *diag_fdname_format(const struct diag_fdname *n, char *buf, size_t size) {
        if (!n->link) {
                snprintf(buf, size, "fd %d", n->fd);
                return buf;
        }
        /* pipes, sockets and anon inodes live on internal mounts: the name is enough */
        if (!n->have_mount || n->link[0] != '/')
                snprintf(buf, size, "%s", n->link);
        else if (n->dev_name)
                snprintf(buf, size, "%s (%s %s mounted at %s)", n->link, n->dev_name, n->fstype, n->mount_point);
        else
                snprintf(buf, size, "%s (%u:%u %s mounted at %s)", n->link, n->dev_major, n->dev_minor, n->fstype,
                         n->mount_point);
        return buf;
}

int diag_fdname_syscall_fd(enum diag_arch arch, const struct diag_syscall_state *sc) {
        static const char *const first_arg[] = {
                "fsync", "fdatasync", "sync_file_range", "fallocate", "ftruncate", "preadv", "pwritev",
                "preadv2", "pwritev2", "sendfile", "splice", "copy_file_range", "getdents64", "ioctl",
                "syncfs",
        };
        const char *name;
        int fd;

        if (!sc || sc->kind != DIAG_SC_IN)
                return -1;
        fd = diag_syscall_fd(arch, sc);
        if (fd >= 0)
                return fd;
        name = diag_syscall_name(arch, sc->nr);
        for (size_t i = 0; name && i < ELEMENTSOF(first_arg); i++)
                if (strcmp(name, first_arg[i]) == 0)
                        return (int) sc->args[0] >= 0 ? (int) sc->args[0] : -1;
        return -1;
}
