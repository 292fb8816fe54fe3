/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the tests of diag-snap parts share: a bundle directory, a findings file,
 * and reading back what the part wrote. */
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "diag/snap.h"
#include "diag/util.h"

struct snap_test {
        char dir[64];
        char findings_path[96];
        struct diag_snap s;
};

static inline void snap_test_init(struct snap_test *t, unsigned rate_ms) {
        snprintf(t->dir, sizeof t->dir, "/tmp/test-snap-XXXXXX");
        if (!mkdtemp(t->dir)) {
                perror("mkdtemp");
                exit(99);
        }
        snprintf(t->findings_path, sizeof t->findings_path, "%s.findings", t->dir);
        memset(&t->s, 0, sizeof t->s);
        t->s.dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        t->s.findings_fd = open(t->findings_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (t->s.dirfd < 0 || t->s.findings_fd < 0) {
                perror("open");
                exit(99);
        }
        t->s.deadline_ns = diag_now_ns(CLOCK_MONOTONIC) + 20ULL * 1000000000ULL;
        t->s.rate_ms = rate_ms;
        t->s.root = geteuid() == 0;
}

/* The whole text of a file the part wrote (NULL if absent); free it. */
static inline char *snap_test_read(struct snap_test *t, const char *name) {
        char *text = NULL;

        if (diag_read_file_at(t->s.dirfd, name, 16 << 20, &text, NULL) < 0)
                return NULL;
        return text;
}

static inline char *snap_test_findings(struct snap_test *t) {
        char *text = NULL;

        if (diag_read_file_at(AT_FDCWD, t->findings_path, 1 << 20, &text, NULL) < 0)
                return NULL;
        return text;
}

static inline struct json_object *snap_test_json(struct snap_test *t, const char *name) {
        _cleanup_free_ char *text = snap_test_read(t, name);

        return text ? json_tokener_parse(text) : NULL;
}

/* Remove the bundle (flat) and the findings file. */
static inline void snap_test_done(struct snap_test *t) {
        char cmd[200];

        close(t->s.dirfd);
        close(t->s.findings_fd);
        if (getenv("SNAP_TEST_KEEP")) {
                fprintf(stderr, "kept %s and %s\n", t->dir, t->findings_path);
                return;
        }
        snprintf(cmd, sizeof cmd, "rm -rf -- '%s' '%s'", t->dir, t->findings_path);
        (void) !system(cmd);
}

/* Write val to dir/file (a cgroup's control file); 0 or negative errno. */
static inline int snap_test_put(const char *dir, const char *file, const char *val) {
        char path[256];
        int fd, r = 0;

        snprintf(path, sizeof path, "%s/%s", dir, file);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, val, strlen(val)) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* o[key] as a number, -1 when absent or null. */
static inline long long snap_test_jget(struct json_object *o, const char *key) {
        struct json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return -1;
        return json_object_get_int64(v);
}

/* Move the calling process into the cgroup directory cgdir. */
static inline int snap_test_join(const char *cgdir) {
        char me[16];

        snprintf(me, sizeof me, "%d", (int) getpid());
        return snap_test_put(cgdir, "cgroup.procs", me);
}

/* Map and touch mb MiB of anonymous memory; NULL on failure. */
static inline void *snap_test_touch(size_t mb) {
        char *m = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (m == MAP_FAILED)
                return NULL;
        memset(m, 0x5a, mb << 20);
        return m;
}
