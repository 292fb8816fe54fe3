/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "diag/fd.h"
#include "diag/util.h"

static const char *const type_names[] = {
        [DIAG_FD_UNKNOWN] = "?",
        [DIAG_FD_REG] = "REG",
        [DIAG_FD_DIR] = "DIR",
        [DIAG_FD_FIFO] = "FIFO",
        [DIAG_FD_SOCK] = "SOCK",
        [DIAG_FD_CHR] = "CHR",
        [DIAG_FD_BLK] = "BLK",
        [DIAG_FD_EVENTFD] = "eventfd",
        [DIAG_FD_EVENTPOLL] = "eventpoll",
        [DIAG_FD_TIMERFD] = "timerfd",
        [DIAG_FD_SIGNALFD] = "signalfd",
        [DIAG_FD_INOTIFY] = "inotify",
        [DIAG_FD_FANOTIFY] = "fanotify",
        [DIAG_FD_PIDFD] = "pidfd",
        [DIAG_FD_MEMFD] = "memfd",
        [DIAG_FD_IO_URING] = "io_uring",
        [DIAG_FD_BPF] = "bpf",
        [DIAG_FD_PERF] = "perf_event",
        [DIAG_FD_USERFAULTFD] = "userfaultfd",
        [DIAG_FD_ANON] = "anon",
};

const char *diag_fd_type_name(enum diag_fd_type t) {
        if ((size_t) t >= ELEMENTSOF(type_names) || !type_names[t])
                return "?";
        return type_names[t];
}

/* "pipe:[123]" -> 123 */
static bool bracket_inode(const char *s, const char *prefix, uint64_t *ret) {
        size_t l = strlen(prefix);
        char num[32];
        const char *end;
        unsigned long long v;

        if (strncmp(s, prefix, l) != 0 || s[l] != '[')
                return false;
        end = strchr(s + l + 1, ']');
        if (!end || end[1] || (size_t) (end - (s + l + 1)) >= sizeof num)
                return false;
        memcpy(num, s + l + 1, (size_t) (end - (s + l + 1)));
        num[end - (s + l + 1)] = 0;
        if (diag_parse_ull(num, 10, &v) < 0)
                return false;
        *ret = v;
        return true;
}

enum diag_fd_type diag_fd_classify(const char *link, uint64_t *ret_inode) {
        static const struct { const char *name; enum diag_fd_type t; } anon[] = {
                { "[eventfd]", DIAG_FD_EVENTFD },
                { "[eventpoll]", DIAG_FD_EVENTPOLL },
                { "[timerfd]", DIAG_FD_TIMERFD },
                { "[signalfd]", DIAG_FD_SIGNALFD },
                { "inotify", DIAG_FD_INOTIFY },
                { "[fanotify]", DIAG_FD_FANOTIFY },
                { "[pidfd]", DIAG_FD_PIDFD },
                { "[io_uring]", DIAG_FD_IO_URING },
                { "bpf-map", DIAG_FD_BPF },
                { "bpf-prog", DIAG_FD_BPF },
                { "bpf_link", DIAG_FD_BPF },
                { "bpf_iter", DIAG_FD_BPF },
                { "[perf_event]", DIAG_FD_PERF },
                { "[userfaultfd]", DIAG_FD_USERFAULTFD },
        };
        uint64_t ino = 0;

        *ret_inode = 0;
        if (bracket_inode(link, "pipe:", &ino)) {
                *ret_inode = ino;
                return DIAG_FD_FIFO;
        }
        if (bracket_inode(link, "socket:", &ino)) {
                *ret_inode = ino;
                return DIAG_FD_SOCK;
        }
        if (strncmp(link, "anon_inode:", 11) == 0) {
                for (size_t i = 0; i < ELEMENTSOF(anon); i++)
                        if (strcmp(link + 11, anon[i].name) == 0)
                                return anon[i].t;
                return DIAG_FD_ANON;
        }
        if (strncmp(link, "/memfd:", 7) == 0)
                return DIAG_FD_MEMFD;
        /* A path: REG, DIR, CHR, BLK or a named FIFO, which only statx can tell. */
        return DIAG_FD_UNKNOWN;
}

static int parse_field_ull(const char *v, int base, uint64_t *ret) {
        char num[32];
        size_t i = 0;
        unsigned long long x;

        while (*v == ' ' || *v == '\t')
                v++;
        while (v[i] && v[i] != '\n' && v[i] != ' ' && i < sizeof num - 1) {
                num[i] = v[i];
                i++;
        }
        num[i] = 0;
        if (diag_parse_ull(num, base, &x) < 0)
                return -EINVAL;
        *ret = x;
        return 0;
}

int diag_fd_parse_fdinfo(const char *text, struct diag_fd *fd) {
        size_t alloc_locks = 0, alloc_tfds = 0;
        const char *line = text;

        while (line && *line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                char buf[512];
                uint64_t v;

                snprintf(buf, sizeof buf, "%.*s", (int) MIN(len, sizeof buf - 1), line);
                if (strncmp(buf, "pos:", 4) == 0) {
                        if (parse_field_ull(buf + 4, 10, &v) == 0)
                                fd->pos = v;
                } else if (strncmp(buf, "flags:", 6) == 0) {
                        if (parse_field_ull(buf + 6, 8, &v) == 0)
                                fd->flags = (unsigned) v;
                } else if (strncmp(buf, "mnt_id:", 7) == 0) {
                        if (parse_field_ull(buf + 7, 10, &v) == 0)
                                fd->mnt_id = (int) v;
                } else if (strncmp(buf, "ino:", 4) == 0) {
                        if (parse_field_ull(buf + 4, 10, &v) == 0 && fd->inode == 0)
                                fd->inode = v;
                } else if (strncmp(buf, "lock:", 5) == 0) {
                        struct diag_filelock l;
                        if (diag_lock_parse_line(buf + 5, &l) == 0) {
                                if (DIAG_GROW(fd->locks, alloc_locks, fd->nlocks + 1) < 0)
                                        return -ENOMEM;
                                fd->locks[fd->nlocks++] = l;
                        }
                } else if (strncmp(buf, "tfd:", 4) == 0) {
                        if (parse_field_ull(buf + 4, 10, &v) == 0) {
                                if (DIAG_GROW(fd->epoll_tfds, alloc_tfds, fd->nepoll_tfds + 1) < 0)
                                        return -ENOMEM;
                                fd->epoll_tfds[fd->nepoll_tfds++] = (int) v;
                        }
                } else if (strncmp(buf, "eventfd-count:", 14) == 0) {
                        if (parse_field_ull(buf + 14, 16, &v) == 0)
                                fd->eventfd_count = v;
                } else if (strncmp(buf, "eventfd-id:", 11) == 0) {
                        if (parse_field_ull(buf + 11, 10, &v) == 0)
                                fd->eventfd_id = v;
                }
                line = nl ? nl + 1 : NULL;
        }
        fd->have_fdinfo = true;
        return 0;
}

static void fd_clear(struct diag_fd *f) {
        free(f->link);
        free(f->locks);
        free(f->epoll_tfds);
}

struct diag_fdtable *diag_fdtable_free(struct diag_fdtable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n; i++)
                fd_clear(&t->fds[i]);
        free(t->fds);
        free(t);
        return NULL;
}

static int cmp_fd(const void *a, const void *b) {
        const struct diag_fd *x = a, *y = b;
        return (x->fd > y->fd) - (x->fd < y->fd);
}

static enum diag_fd_type type_of_mode(mode_t m) {
        switch (m & S_IFMT) {
        case S_IFREG: return DIAG_FD_REG;
        case S_IFDIR: return DIAG_FD_DIR;
        case S_IFIFO: return DIAG_FD_FIFO;
        case S_IFSOCK: return DIAG_FD_SOCK;
        case S_IFCHR: return DIAG_FD_CHR;
        case S_IFBLK: return DIAG_FD_BLK;
        default: return DIAG_FD_UNKNOWN;
        }
}

/* One fd. 0, or -ENOENT when it closed under us. */
static int scan_one(int fddir, int infodir, const char *name, int num, unsigned flags, struct diag_fd *f) {
        char link[4096 + 64];
        ssize_t n;

        memset(f, 0, sizeof *f);
        f->fd = num;
        n = readlinkat(fddir, name, link, sizeof link - 1);
        if (n < 0)
                return errno == ENOENT ? -ENOENT : negative_errno();
        link[n] = 0;
        f->link = strdup(link);
        if (!f->link)
                return -ENOMEM;
        f->type = diag_fd_classify(link, &f->inode);
        f->deleted = n > 10 && strcmp(link + n - 10, " (deleted)") == 0;

        /* Only the inode cache: AT_STATX_DONT_SYNC keeps NFS and FUSE from asking
         * their server, so a dead mount cannot hang us here. */
        if ((flags & DIAG_FD_STATX) && (f->type == DIAG_FD_UNKNOWN || f->type == DIAG_FD_MEMFD)) {
                struct statx sx;
                if (statx(fddir, name, AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) == 0) {
                        if (f->type == DIAG_FD_UNKNOWN)
                                f->type = type_of_mode(sx.stx_mode);
                        f->inode = sx.stx_ino;
                        f->dev_major = sx.stx_dev_major;
                        f->dev_minor = sx.stx_dev_minor;
                }
        }
        /* The magic link's own mode says how the file is open (rwx for read,
         * -wx for write): procfs only, no trip to the target's file system. */
        if (flags & DIAG_FD_ACCESS) {
                struct stat st;
                if (fstatat(fddir, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        f->access = ((st.st_mode & S_IRUSR) ? DIAG_FD_R : 0) | ((st.st_mode & S_IWUSR) ? DIAG_FD_W : 0);
        }
        if ((flags & DIAG_FD_FDINFO) ||
            ((flags & DIAG_FD_FDINFO_SPECIAL) && (f->type == DIAG_FD_EVENTPOLL || f->type == DIAG_FD_EVENTFD))) {
                char info[16384];
                ssize_t k = diag_read_small_at(infodir, name, info, sizeof info);
                if (k >= 0) {
                        int r = diag_fd_parse_fdinfo(info, f);
                        if (r < 0)
                                return r;
                } else if (k == -ENOENT)
                        return -ENOENT;
        }
        return 0;
}

int diag_fd_scan(pid_t pid, unsigned flags, struct diag_fdtable **ret) {
        char path[64];
        _cleanup_close_ int fddir = -1, infodir = -1;
        struct diag_fdtable *t;
        size_t alloc = 0;
        DIR *d;
        struct dirent *de;
        int dfd;

        snprintf(path, sizeof path, "/proc/%d/fd", pid);
        fddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fddir < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        if (flags & (DIAG_FD_FDINFO | DIAG_FD_FDINFO_SPECIAL)) {
                snprintf(path, sizeof path, "/proc/%d/fdinfo", pid);
                infodir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (infodir < 0)
                        return errno == ENOENT ? -ESRCH : negative_errno();
        }
        dfd = dup(fddir);
        if (dfd < 0)
                return negative_errno();
        d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return negative_errno();
        }
        t = calloc(1, sizeof *t);
        if (!t) {
                closedir(d);
                return -ENOMEM;
        }
        t->pid = pid;
        for (;;) {
                long long num;
                int r;

                errno = 0;
                de = readdir(d);
                if (!de)
                        break;
                if (de->d_name[0] == '.' || diag_parse_ll(de->d_name, 10, 0, INT32_MAX, &num) < 0)
                        continue;
                if (DIAG_GROW(t->fds, alloc, t->n + 1) < 0) {
                        closedir(d);
                        diag_fdtable_free(t);
                        return -ENOMEM;
                }
                r = scan_one(fddir, infodir, de->d_name, (int) num, flags, &t->fds[t->n]);
                if (r == -ENOENT) {
                        fd_clear(&t->fds[t->n]);
                        t->vanished++;
                        continue;
                }
                if (r < 0) {
                        fd_clear(&t->fds[t->n]);
                        closedir(d);
                        diag_fdtable_free(t);
                        return r;
                }
                t->n++;
        }
        /* readdir of a process that just exited fails with ENOENT */
        if (!de && errno == ENOENT && t->n == 0) {
                closedir(d);
                diag_fdtable_free(t);
                return -ESRCH;
        }
        closedir(d);
        if (t->n) {
                /* a whole-system scan keeps every table: give back what growing left over */
                struct diag_fd *fit = alloc > t->n ? realloc(t->fds, t->n * sizeof *t->fds) : NULL;
                if (fit)
                        t->fds = fit;
                qsort(t->fds, t->n, sizeof *t->fds, cmp_fd);
        }
        *ret = t;
        return 0;
}

int diag_fd_read_fdinfo(pid_t pid, struct diag_fd *fd) {
        char path[64], info[16384];
        ssize_t k;

        snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", pid, fd->fd);
        k = diag_read_small_at(AT_FDCWD, path, info, sizeof info);
        if (k < 0)
                return k == -ENOENT ? -ESRCH : (int) k;
        free(fd->locks);
        fd->locks = NULL;
        fd->nlocks = 0;
        free(fd->epoll_tfds);
        fd->epoll_tfds = NULL;
        fd->nepoll_tfds = 0;
        return diag_fd_parse_fdinfo(info, fd);
}

int diag_fd_nofile_limit(pid_t pid, uint64_t *ret_soft, uint64_t *ret_hard) {
        char path[64], buf[4096];
        const char *p;
        char soft[32], hard[32];
        unsigned long long s, h;

        snprintf(path, sizeof path, "/proc/%d/limits", pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) < 0)
                return -ESRCH;
        p = strstr(buf, "Max open files");
        if (!p || sscanf(p + strlen("Max open files"), " %31s %31s", soft, hard) != 2)
                return -ENODATA;
        if (diag_parse_ull(soft, 10, &s) < 0)
                return -ENODATA;        /* "unlimited" */
        *ret_soft = s;
        if (ret_hard)
                *ret_hard = diag_parse_ull(hard, 10, &h) < 0 ? UINT64_MAX : h;
        return 0;
}
