/* SPDX-License-Identifier: GPL-2.0-or-later */
/* diag_bounded_run: answers come back, a child that never answers is killed in
 * time, and the child holds none of the caller's descriptors. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/bounded.h"
#include "diag/util.h"
#include "tap.h"

static int answer(void *arg, void *shared, size_t size) {
        snprintf(shared, size, "hello %s", (const char *) arg);
        return -ENOENT;
}

static int never(void *arg, void *shared, size_t size) {
        for (;;)
                pause();
        return 0;
}

/* What fds 1 and 3 of the child are: /dev/null's inode, and closed. */
static int fds(void *arg, void *shared, size_t size) {
        struct stat a, b;
        int *out = shared;
        out[0] = fstat(1, &a) == 0 && stat("/dev/null", &b) == 0 && a.st_rdev == b.st_rdev;
        out[1] = fcntl(*(int *) arg, F_GETFD) < 0 && errno == EBADF;
        return 0;
}

static int die(void *arg, void *shared, size_t size) {
        _exit(3);
}

int main(void) {
        char *sh = diag_bounded_alloc(64);
        int *ints = diag_bounded_alloc(2 * sizeof(int));
        uint64_t t0;
        pid_t stuck = -1;
        int p[2];

        CHECK(sh && ints);
        static char world[] = "world";
        CHECK_INT(diag_bounded_run(answer, world, sh, 64, 2000, &stuck), -ENOENT);
        CHECK_STR(sh, "hello world");
        CHECK_INT(stuck, 0);

        t0 = diag_now_ns(CLOCK_MONOTONIC);
        CHECK_INT(diag_bounded_run(never, NULL, NULL, 0, 200, &stuck), -ETIMEDOUT);
        CHECK(diag_now_ns(CLOCK_MONOTONIC) - t0 < 2000000000ULL);
        CHECK_INT(stuck, 0);            /* pause() is killable: reaped */
        CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);

        CHECK_INT(pipe(p), 0);
        CHECK_INT(diag_bounded_run(fds, &p[1], ints, 2 * sizeof(int), 2000, NULL), 0);
        CHECK_INT(ints[0], 1);
        CHECK_INT(ints[1], 1);

        CHECK_INT(diag_bounded_run(die, NULL, NULL, 0, 2000, NULL), -EIO);
        diag_bounded_free(sh, 64);
        diag_bounded_free(ints, 2 * sizeof(int));
        return TAP_DONE();
}
