/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the tests of diag-snap parts share: a bundle directory, a findings file,
 * and reading back what the part wrote. */
#pragma once
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
