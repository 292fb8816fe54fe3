/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Run one diag-snap part for a test, as diag-snap would: into a directory, with a
 * findings pipe and a deadline. */
#pragma once
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "diag/snap.h"
#include "diag/util.h"

/* The part's result; its findings and missing lines into buf (NUL-terminated), the
 * time it took into *ret_ms. -1 when the test could not set it up. */
static inline int snap_run(int (*part)(struct diag_snap *), const char *dir, unsigned rate_ms,
                           unsigned timeout_ms, char *buf, size_t size, uint64_t *ret_ms) {
        int pipefd[2], r;
        ssize_t n;
        uint64_t t0;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -1;
        struct diag_snap s = {
                .dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
                .findings_fd = pipefd[1],
                .deadline_ns = diag_now_ns(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * 1000000ULL,
                .rate_ms = rate_ms,
                .root = geteuid() == 0,
        };
        if (s.dirfd < 0)
                return -1;
        t0 = diag_now_ns(CLOCK_MONOTONIC);
        r = part(&s);
        *ret_ms = (diag_now_ns(CLOCK_MONOTONIC) - t0) / 1000000;
        close(pipefd[1]);
        close(s.dirfd);
        n = read(pipefd[0], buf, size - 1);
        buf[n > 0 ? n : 0] = 0;
        close(pipefd[0]);
        printf("%s took %llu ms; findings and missing:\n%s", dir, (unsigned long long) *ret_ms, buf);
        return r;
}
