/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <inttypes.h>
#include <libgen.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "diag/util.h"

int diag_parse_ll(const char *s, int base, long long min, long long max, long long *ret) {
        char *end;
        long long v;

        if (!s || !*s || isspace((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno || end == s || *end)
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int diag_parse_ull(const char *s, int base, unsigned long long *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || isspace((unsigned char) *s) || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno || end == s || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int diag_parse_pid(const char *s, pid_t *ret) {
        long long v;
        int r = diag_parse_ll(s, 10, 1, INT_MAX, &v);
        if (r < 0)
                return r;
        *ret = (pid_t) v;
        return 0;
}

int diag_parse_pid_list(const char *s, pid_t **arr, size_t *n, size_t *alloc) {
        _cleanup_free_ char *copy = strdup(s);
        char *tok, *save = NULL;
        size_t before = *n;

        if (!copy)
                return -ENOMEM;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                pid_t p;
                if (diag_parse_pid(tok, &p) < 0)
                        return -EINVAL;
                if (diag_grow((void **) arr, alloc, *n + 1, sizeof **arr) < 0)
                        return -ENOMEM;
                (*arr)[(*n)++] = p;
        }
        return *n > before ? 0 : -EINVAL;
}

/* Parse "<number><unit>" pairs; units maps suffix -> multiplier. */
struct unit { const char *suffix; uint64_t mult; };

static int parse_with_units(const char *s, const struct unit *units, size_t nunits,
                            uint64_t plain_mult, bool repeat, uint64_t *ret) {
        uint64_t total = 0;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;
        while (*p) {
                char *end;
                unsigned long long v;
                size_t best = 0, bestlen = 0;

                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                v = strtoull(p, &end, 10);
                if (errno)
                        return -ERANGE;
                p = end;
                if (!*p) {
                        if (p != s && total == 0 && end == s + strlen(s) && plain_mult) {
                                if (v > UINT64_MAX / plain_mult)
                                        return -ERANGE;
                                total += v * plain_mult;
                                break;
                        }
                        return -EINVAL;
                }
                for (size_t i = 0; i < nunits; i++) {
                        size_t l = strlen(units[i].suffix);
                        if (l > bestlen && strncasecmp(p, units[i].suffix, l) == 0) {
                                best = i;
                                bestlen = l;
                        }
                }
                if (!bestlen)
                        return -EINVAL;
                if (v > (UINT64_MAX - total) / units[best].mult)
                        return -ERANGE;
                total += v * units[best].mult;
                p += bestlen;
                if (!repeat && *p)
                        return -EINVAL;
        }
        *ret = total;
        return 0;
}

int diag_parse_duration_ms(const char *s, uint64_t *ret_ms) {
        static const struct unit units[] = {
                { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "min", 60000 },
                { "h", 3600000 }, { "d", 86400000 },
        };
        return parse_with_units(s, units, ELEMENTSOF(units), 1000, true, ret_ms);
}

int diag_parse_size(const char *s, uint64_t *ret) {
        static const struct unit units[] = {
                { "k", 1ULL << 10 }, { "K", 1ULL << 10 }, { "KiB", 1ULL << 10 },
                { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
                { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
        };
        return parse_with_units(s, units, ELEMENTSOF(units), 1, false, ret);
}

ssize_t diag_read_small_at(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -1;
        size_t len = 0;

        if (size == 0)
                return -EINVAL;
        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        while (len < size - 1) {
                ssize_t k = read(fd, buf + len, size - 1 - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = 0;
        return (ssize_t) len;
}

int diag_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        for (;;) {
                ssize_t k;

                if (len + 1 >= alloc) {
                        size_t na = alloc ? alloc * 2 : 4096;
                        char *nb;
                        if (alloc >= max + 1)
                                return -EFBIG;
                        if (na > max + 1)
                                na = max + 1;
                        nb = realloc(buf, na);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        alloc = na;
                        if (len + 1 >= alloc)
                                return -EFBIG;
                }
                k = read(fd, buf + len, alloc - 1 - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (!buf && !(buf = malloc(1)))
                return -ENOMEM;
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

uint64_t diag_now_ns(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

char *diag_format_duration(uint64_t ms, char *buf, size_t size) {
        uint64_t s = ms / 1000;

        if (ms < 1000)
                snprintf(buf, size, "%" PRIu64 "ms", ms);
        else if (s < 60)
                snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "s", s, (ms % 1000) / 100);
        else if (s < 3600)
                snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
        else
                snprintf(buf, size, "%" PRIu64 "d%" PRIu64 "h", s / 86400, (s % 86400) / 3600);
        return buf;
}

char *diag_format_size(uint64_t bytes, char *buf, size_t size) {
        static const char units[] = "BKMGTPE";
        double v = (double) bytes;
        size_t u = 0;

        while (v >= 1024 && u < sizeof(units) - 2) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%" PRIu64 "B", bytes);
        else
                snprintf(buf, size, "%.1f%c", v, units[u]);
        return buf;
}

int diag_grow(void **arr, size_t *alloc, size_t need, size_t elem) {
        size_t na;
        void *n;

        if (need <= *alloc)
                return 0;
        na = *alloc ? *alloc : 8;
        while (na < need) {
                if (na > SIZE_MAX / 2 / elem)
                        return -ENOMEM;
                na *= 2;
        }
        n = realloc(*arr, na * elem);
        if (!n)
                return -ENOMEM;
        memset((char *) n + *alloc * elem, 0, (na - *alloc) * elem);
        *arr = n;
        *alloc = na;
        return 0;
}

char *diag_strip(char *s) {
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char) s[l - 1]))
                s[--l] = 0;
        return s;
}

/* ---- an output file that appears only when complete ---- */


int diag_outfile_open(struct diag_outfile *f, const char *path) {
        _cleanup_free_ char *dircopy = strdup(path), *base = strdup(path);
        struct stat st;
        const char *dir;

        *f = (struct diag_outfile) { .fd = -1 };
        if (!dircopy || !base)
                return -ENOMEM;
        f->path = strdup(path);
        if (!f->path)
                return -ENOMEM;
        /* fail before the work, not after it; linkat checks again */
        if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return -EEXIST;
        dir = dirname(dircopy);
        f->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (f->fd >= 0)
                return 0;
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                return negative_errno();
        if (asprintf(&f->tmp, "%s/.%s.partial-XXXXXX", dir, basename(base)) < 0) {
                f->tmp = NULL;
                return -ENOMEM;
        }
        f->fd = mkostemp(f->tmp, O_CLOEXEC);
        if (f->fd < 0) {
                free(f->tmp);
                f->tmp = NULL;
                return negative_errno();
        }
        return fchmod(f->fd, 0600) < 0 ? negative_errno() : 0;
}

int diag_outfile_commit(struct diag_outfile *f) {
        char proc[64];

        if (f->tmp) {
                if (renameat2(AT_FDCWD, f->tmp, AT_FDCWD, f->path, RENAME_NOREPLACE) < 0)
                        return negative_errno();
                free(f->tmp);
                f->tmp = NULL;
                return 0;
        }
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, f->path, AT_SYMLINK_FOLLOW) < 0)
                return negative_errno();
        return 0;
}

void diag_outfile_discard(struct diag_outfile *f) {
        if (!f)
                return;
        if (f->tmp)
                (void) unlink(f->tmp);
        if (f->fd >= 0)
                close(f->fd);
        free(f->tmp);
        free(f->path);
        *f = (struct diag_outfile) { .fd = -1 };
}
