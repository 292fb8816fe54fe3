/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every diag-snap part shares: files of the bundle created 0600 and never
 * replacing anything, written under a temporary name and renamed when complete
 * (a part killed half-way leaves no half file that looks complete), findings and
 * missing entries as single lines on a pipe that survives the part being killed,
 * and the part's deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag/snap.h"
#include "diag/util.h"

/* Make the parent directories of name under dirfd (0700). */
static int make_parents(int dirfd, const char *name) {
        char path[4096];
        size_t len = strlen(name);

        if (len >= sizeof path)
                return -ENAMETOOLONG;
        memcpy(path, name, len + 1);
        for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
                *p = 0;
                if (path[0] && mkdirat(dirfd, path, 0700) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        return 0;
}

int diag_snap_part_name(const char *name, char *buf, size_t size) {
        const char *slash = strrchr(name, '/');
        int dir = slash ? (int) (slash - name + 1) : 0;
        int n = snprintf(buf, size, "%.*s." "%s" DIAG_SNAP_PART_SUFFIX, dir, name, name + dir);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int diag_snap_publish(int dirfd, const char *part, const char *name) {
        if (renameat2(dirfd, part, dirfd, name, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return negative_errno();
        /* a file system without RENAME_NOREPLACE: a link fails just as well on EEXIST */
        if (linkat(dirfd, part, dirfd, name, 0) < 0)
                return negative_errno();
        (void) unlinkat(dirfd, part, 0);
        return 0;
}

FILE *diag_snap_open(struct diag_snap *s, const char *name) {
        char part[4096];
        struct stat st;
        FILE *f;
        int fd, r;

        if (!name || !*name || name[0] == '/' || strstr(name, "..")) {
                errno = EINVAL;
                return NULL;
        }
        r = make_parents(s->dirfd, name);
        if (r == 0)
                r = diag_snap_part_name(name, part, sizeof part);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        /* never replacing anything: the name is checked now, and again by the rename */
        if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                errno = EEXIST;
                return NULL;
        }
        fd = openat(s->dirfd, part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return NULL;
        f = fdopen(fd, "w");
        if (!f) {
                r = errno;
                close(fd);
                (void) unlinkat(s->dirfd, part, 0);
                errno = r;
        }
        return f;
}

int diag_snap_close(struct diag_snap *s, FILE *f, const char *name) {
        char part[4096];
        int r = 0;

        if (!f)
                return -EINVAL;
        if (fflush(f) != 0 || ferror(f))
                r = errno ? -errno : -EIO;
        if (fclose(f) != 0 && r == 0)
                r = errno ? -errno : -EIO;
        if (diag_snap_part_name(name, part, sizeof part) < 0)
                return -ENAMETOOLONG;   /* diag_snap_open() refused it: nothing was written */
        if (r == 0)
                r = diag_snap_publish(s->dirfd, part, name);
        if (r < 0) {
                (void) unlinkat(s->dirfd, part, 0);
                diag_snap_missing(s, name, "not written: %s", strerror(-r));
        }
        return r;
}

int diag_snap_write(struct diag_snap *s, const char *name, const char *data, size_t len) {
        FILE *f = diag_snap_open(s, name);

        if (!f) {
                int r = negative_errno();
                diag_snap_missing(s, name, "not written: %s", strerror(-r));
                return r;
        }
        if (len && fwrite(data, 1, len, f) != len) {
                /* the error is kept by the stream and reported by close */
        }
        return diag_snap_close(s, f, name);
}

/* One line to findings_fd in one write(), tabs and newlines of the text made spaces. */
static void put_line(struct diag_snap *s, const char *head, const char *fmt, va_list ap) {
        char text[1024], line[1200];
        int n;

        if (s->findings_fd < 0)
                return;
        (void) vsnprintf(text, sizeof text, fmt, ap);
        for (char *p = text; *p; p++)
                if (*p == '\t' || *p == '\n' || *p == '\r')
                        *p = ' ';
        n = snprintf(line, sizeof line, "%s\t%s\n", head, text);
        if (n < 0)
                return;
        if ((size_t) n >= sizeof line) {
                n = sizeof line - 1;
                line[n - 1] = '\n';
        }
        (void) !write(s->findings_fd, line, (size_t) n);
}

void diag_snap_finding(struct diag_snap *s, enum diag_snap_severity sev, const char *file, const char *fmt, ...) {
        char head[300];
        va_list ap;

        snprintf(head, sizeof head, "F\t%d\t%s", (int) sev, file ? file : "");
        for (char *p = head; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        va_start(ap, fmt);
        put_line(s, head, fmt, ap);
        va_end(ap);
}

void diag_snap_missing(struct diag_snap *s, const char *what, const char *fmt, ...) {
        char head[300];
        va_list ap;

        snprintf(head, sizeof head, "M\t%s", what ? what : "");
        for (char *p = head; *p; p++)
                if (*p == '\t' && p > head + 1)
                        *p = ' ';
                else if (*p == '\n')
                        *p = ' ';
        va_start(ap, fmt);
        put_line(s, head, fmt, ap);
        va_end(ap);
}

unsigned diag_snap_left_ms(const struct diag_snap *s) {
        uint64_t now = diag_now_ns(CLOCK_MONOTONIC);

        if (!s->deadline_ns)
                return UINT32_MAX;
        return now >= s->deadline_ns ? 0 : (unsigned) ((s->deadline_ns - now) / 1000000ULL);
}
