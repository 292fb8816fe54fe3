/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p) { free(*(void **) p); }
static inline void closep(int *fd) { if (*fd >= 0) { int e = errno; close(*fd); errno = e; } }
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define TAKE_FD(fd) ({ int _t = (fd); (fd) = -1; _t; })

/* Negative errno from the last failed libc call, never 0. */
static inline int negative_errno(void) { return errno > 0 ? -errno : -EIO; }

/* The one checked number parser: whole string, no sign surprises, range checked.
 * Returns 0 or -EINVAL / -ERANGE. */
int diag_parse_ll(const char *s, int base, long long min, long long max, long long *ret);
int diag_parse_ull(const char *s, int base, unsigned long long *ret);
int diag_parse_pid(const char *s, pid_t *ret);
/* "12,34,56": append each to *arr (grown with DIAG_GROW semantics, *alloc its
 * capacity). -EINVAL on a bad or empty list. */
int diag_parse_pid_list(const char *s, pid_t **arr, size_t *n, size_t *alloc);
/* "30s", "5m", "1h30m", "250ms", plain number = seconds. */
int diag_parse_duration_ms(const char *s, uint64_t *ret_ms);
/* "64k", "1M", "512" (bytes). */
int diag_parse_size(const char *s, uint64_t *ret);

/* Read a whole (small, /proc-like) file relative to dirfd (AT_FDCWD ok) into a
 * NUL-terminated buffer. Fails with -EFBIG past max bytes. */
int diag_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len);
/* Same, into a caller buffer; returns length or negative errno. Truncates silently. */
ssize_t diag_read_small_at(int dirfd, const char *path, char *buf, size_t size);

uint64_t diag_now_ns(clockid_t clock);

/* "850ms", "12s", "3m12s", "3h12m", "2d4h" — for human output. */
char *diag_format_duration(uint64_t ms, char *buf, size_t size);
#define DIAG_DURATION_MAX 24
/* "4.0K", "1.2M", "3.5G" */
char *diag_format_size(uint64_t bytes, char *buf, size_t size);
#define DIAG_SIZE_MAX 16

/* Grow-by-doubling array helper: ensure *arr has room for need elements. */
int diag_grow(void **arr, size_t *alloc, size_t need, size_t elem);
#define DIAG_GROW(arr, alloc, need) diag_grow((void **) &(arr), &(alloc), (need), sizeof(*(arr)))

/* Strip trailing whitespace in place, return s. */
char *diag_strip(char *s);

/* An output file that appears under its name only when complete: an unnamed
 * O_TMPFILE (0600) in the target directory, linked with linkat() at the end,
 * never replacing anything (a symlink at the name counts as a file: -EEXIST).
 * Where O_TMPFILE is not supported, a hidden ".NAME.partial-XXXXXX" renamed
 * with RENAME_NOREPLACE. A process killed before the commit leaves nothing under
 * the name (and, with O_TMPFILE, nothing at all). discard() after commit() only
 * closes. */
struct diag_outfile {
        char *path, *tmp;
        int fd;
};
int diag_outfile_open(struct diag_outfile *f, const char *path);
int diag_outfile_commit(struct diag_outfile *f);
void diag_outfile_discard(struct diag_outfile *f);
