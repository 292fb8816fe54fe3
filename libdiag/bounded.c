/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/bounded.h"
#include "diag/util.h"

#define DEATH_GRACE_MS 100

void *diag_bounded_alloc(size_t size) {
        void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

void diag_bounded_free(void *shared, size_t size) {
        if (shared)
                munmap(shared, size ? size : 1);
}

static _Noreturn void child_main(int (*fn)(void *, void *, size_t), void *arg, void *shared, size_t size,
                                 int wfd, pid_t parent) {
        int dn, r;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(0);
        /* Hold nothing the caller's readers wait on. */
        dn = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; fd < 3; fd++)
                if (fd != wfd)
                        (void) (dn >= 0 ? dup2(dn, fd) : close(fd));
        if (dn > 2)
                close(dn);
        if (wfd > 3)
                (void) close_range(3, (unsigned) wfd - 1, 0);
        (void) close_range((unsigned) wfd + 1, ~0U, 0);
        r = fn(arg, shared, size);
        (void) !write(wfd, &r, sizeof r);
        _exit(0);
}

/* Reap pid if it is gone within ms; true if reaped. */
static bool reap_within(pid_t pid, unsigned ms) {
        uint64_t deadline = diag_now_ns(CLOCK_MONOTONIC) + (uint64_t) ms * 1000000ULL;

        for (;;) {
                pid_t w = waitpid(pid, NULL, WNOHANG);
                if (w == pid || (w < 0 && errno == ECHILD))
                        return true;
                if (diag_now_ns(CLOCK_MONOTONIC) > deadline)
                        return false;
                nanosleep(&(struct timespec) { .tv_nsec = 2 * 1000 * 1000 }, NULL);
        }
}

int diag_bounded_run(int (*fn)(void *arg, void *shared, size_t size), void *arg, void *shared, size_t size,
                     unsigned timeout_ms, pid_t *ret_stuck) {
        uint64_t deadline = diag_now_ns(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * 1000000ULL;
        pid_t parent = getpid(), child;
        int p[2], res = -EIO, r;

        if (ret_stuck)
                *ret_stuck = 0;
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        child = fork();
        if (child < 0) {
                r = negative_errno();
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (child == 0) {
                close(p[0]);
                child_main(fn, arg, shared, size, p[1], parent);
        }
        close(p[1]);
        for (;;) {
                uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };
                int left = now >= deadline ? 0 : (int) ((deadline - now + 999999) / 1000000);

                r = poll(&pfd, 1, left);
                if (r < 0 && errno == EINTR)
                        continue;
                break;
        }
        if (r == 1) {
                /* An answer, or EOF from a child that died before writing one. */
                if (read(p[0], &res, sizeof res) != (ssize_t) sizeof res)
                        res = -EIO;
                close(p[0]);
                (void) waitpid(child, NULL, 0);
                return res;
        }
        close(p[0]);
        (void) kill(child, SIGKILL);
        if (!reap_within(child, DEATH_GRACE_MS) && ret_stuck)
                *ret_stuck = child;
        return -ETIMEDOUT;
}
