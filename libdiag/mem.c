/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "diag/mem.h"
#include "diag/util.h"

static ssize_t mem_read_procfs(pid_t pid, uint64_t addr, void *buf, size_t len) {
        char path[64];
        _cleanup_close_ int fd = -1;
        size_t done = 0;

        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        while (done < len) {
                ssize_t k = pread(fd, (char *) buf + done, len - done, (off_t) (addr + done));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (done > 0)
                                break;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

ssize_t diag_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len) {
        struct iovec l = { .iov_base = buf, .iov_len = len };
        struct iovec r = { .iov_base = (void *) (uintptr_t) addr, .iov_len = len };
        ssize_t n;

        if (len == 0)
                return 0;
        n = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (n >= 0)
                return n;
        /* ENOSYS (old kernel, seccomp) or EPERM under some LSMs: the mem file may still work. */
        if (errno == ENOSYS || errno == EPERM)
                return mem_read_procfs(pid, addr, buf, len);
        return negative_errno();
}

int diag_mem_readv(pid_t pid, const struct iovec *local, const struct iovec *remote,
                   size_t n, size_t *done) {
        size_t i = 0, any = 0;
        int last_err = -EFAULT;

        for (size_t k = 0; k < n; k++)
                done[k] = 0;
        /* process_vm_readv stops at the first iovec it cannot read: account what it
         * did, then go on from the next pair. */
        while (i < n) {
                size_t batch = MIN(n - i, (size_t) IOV_MAX);
                ssize_t got = process_vm_readv(pid, local + i, batch, remote + i, batch, 0);

                if (got < 0) {
                        ssize_t one;

                        if (errno == ESRCH)
                                return -ESRCH;
                        last_err = negative_errno();
                        /* Fall back one pair at a time (also covers ENOSYS/EPERM). */
                        one = diag_mem_read(pid, (uint64_t) (uintptr_t) remote[i].iov_base,
                                            local[i].iov_base, MIN(local[i].iov_len, remote[i].iov_len));
                        if (one > 0) {
                                done[i] = (size_t) one;
                                any++;
                        } else if (one == -ESRCH)
                                return -ESRCH;
                        i++;
                        continue;
                }
                while (got > 0 && i < n) {
                        size_t take = MIN((size_t) got, remote[i].iov_len);
                        done[i] = take;
                        got -= (ssize_t) take;
                        any++;
                        if (take < remote[i].iov_len) {
                                /* short inside this pair: the rest of it is unmapped */
                                i++;
                                goto next;
                        }
                        i++;
                }
                /* got == 0 with pairs left in this batch: pair i failed outright */
                if (i < n && done[i] == 0) {
                        ssize_t one = diag_mem_read(pid, (uint64_t) (uintptr_t) remote[i].iov_base,
                                                    local[i].iov_base, remote[i].iov_len);
                        if (one > 0) {
                                done[i] = (size_t) one;
                                any++;
                        }
                        i++;
                }
        next:;
        }
        return any ? 0 : last_err;
}

int diag_maps_parse_line(const char *line, struct diag_map *ret) {
        unsigned long long start, end, off, ino;
        unsigned maj, min;
        char perms[5];
        int pos = 0;
        const char *path;
        char *p;

        if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu%n", &start, &end, perms, &off,
                   &maj, &min, &ino, &pos) != 7 || pos <= 0)
                return -EINVAL;
        if (end < start)
                return -EINVAL;
        path = line + pos;
        while (*path == ' ' || *path == '\t')
                path++;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        diag_strip(p);
        *ret = (struct diag_map) {
                .start = start, .end = end, .offset = off,
                .dev_major = maj, .dev_minor = min, .inode = ino, .path = p,
        };
        memcpy(ret->perms, perms, sizeof ret->perms);
        return 0;
}

int diag_maps_read(pid_t pid, struct diag_maps **ret) {
        char path[64];
        _cleanup_free_ char *text = NULL;
        struct diag_maps *m;
        size_t alloc = 0;
        char *line, *save = NULL;
        int r;

        snprintf(path, sizeof path, "/proc/%d/maps", pid);
        r = diag_read_file_at(AT_FDCWD, path, 256 << 20, &text, NULL);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->pid = pid;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (DIAG_GROW(m->maps, alloc, m->n + 1) < 0) {
                        diag_maps_free(m);
                        return -ENOMEM;
                }
                if (diag_maps_parse_line(line, &m->maps[m->n]) == 0)
                        m->n++;
        }
        *ret = m;
        return 0;
}

struct diag_maps *diag_maps_free(struct diag_maps *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                free(m->maps[i].path);
        free(m->maps);
        free(m);
        return NULL;
}

const struct diag_map *diag_maps_find(const struct diag_maps *m, uint64_t addr) {
        size_t lo = 0, hi = m ? m->n : 0;

        /* the kernel lists mappings in address order */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (addr < m->maps[mid].start)
                        hi = mid;
                else if (addr >= m->maps[mid].end)
                        lo = mid + 1;
                else
                        return &m->maps[mid];
        }
        return NULL;
}
