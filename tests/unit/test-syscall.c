/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag/syscall.h"
#include "diag/util.h"
#include "tap.h"

#define X86 DIAG_ARCH_X86_64
#define A64 DIAG_ARCH_AARCH64

static struct diag_syscall_state in_sc(long nr, const uint64_t a[6]) {
        struct diag_syscall_state sc = { .kind = DIAG_SC_IN, .nr = nr };

        memcpy(sc.args, a, sizeof(sc.args));
        return sc;
}

/* Format syscall `name` with args a on arch, looked up by name so one expectation
 * covers both numberings. */
static const char *fmt_by_name(enum diag_arch arch, const char *name, const uint64_t a[6]) {
        static char buf[512];
        long nr = diag_syscall_number(arch, name);
        struct diag_syscall_state sc;

        if (nr < 0)
                return "(no such syscall)";
        sc = in_sc(nr, a);
        return diag_syscall_format(arch, &sc, buf, sizeof(buf));
}

/* Check on x86_64, and on aarch64 too when the syscall exists there. */
#define CHECK_FMT(expected, name, ...) do { \
        const uint64_t _args[6] = { __VA_ARGS__ }; \
        CHECK_STR(fmt_by_name(X86, name, _args), expected); \
        if (diag_syscall_number(A64, name) >= 0) \
                CHECK_STR(fmt_by_name(A64, name, _args), expected); \
} while (0)

static void test_arch(void) {
#if defined(__x86_64__)
        CHECK_INT(diag_arch_native(), X86);
#elif defined(__aarch64__)
        CHECK_INT(diag_arch_native(), A64);
#endif
        CHECK_STR(diag_arch_name(X86), "x86_64");
        CHECK_STR(diag_arch_name(A64), "aarch64");
        CHECK_STR(diag_arch_name(DIAG_ARCH_UNKNOWN), "unknown");
}

static void test_parse(void) {
        struct diag_syscall_state sc;

        CHECK_INT(diag_syscall_parse_proc("running\n", &sc), 0);
        CHECK_INT(sc.kind, DIAG_SC_RUNNING);

        CHECK_INT(diag_syscall_parse_proc("-1 0x7ffc12345670 0x7f0011223344\n", &sc), 0);
        CHECK_INT(sc.kind, DIAG_SC_USER);
        CHECK_INT(sc.nr, -1);
        CHECK(sc.sp == 0x7ffc12345670);
        CHECK(sc.pc == 0x7f0011223344);

        CHECK_INT(diag_syscall_parse_proc("202 0x55d1c0 0x80 0x2 0x0 0x0 0x0 0x7ffd10 0x7f20\n", &sc), 0);
        CHECK_INT(sc.kind, DIAG_SC_IN);
        CHECK_INT(sc.nr, 202);
        CHECK(sc.args[0] == 0x55d1c0);
        CHECK(sc.args[1] == 0x80);
        CHECK(sc.args[2] == 2);
        CHECK(sc.args[3] == 0 && sc.args[4] == 0 && sc.args[5] == 0);
        CHECK(sc.sp == 0x7ffd10);
        CHECK(sc.pc == 0x7f20);

        /* Full 64-bit values and no trailing newline. */
        CHECK_INT(diag_syscall_parse_proc("0 0xffffffffffffffff 0xABCDEF 0x1 0x2 0x3 0x4 0x5 0x6", &sc), 0);
        CHECK(sc.args[0] == UINT64_MAX);
        CHECK(sc.args[1] == 0xabcdef);
        CHECK(sc.pc == 6);

        CHECK_INT(diag_syscall_parse_proc(NULL, &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("garbage\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("running now\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("-1 0x7ffc\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("-1 0x7ffc 0x1 0x2\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("-2 0x7ffc 0x1\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 0x1 0x2\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 0x1 0x2 0x3 0x4 0x5 0x6 0x7\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8 0x9\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 1 2 3 4 5 6 7 8\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 0x1 0xg 0x3 0x4 0x5 0x6 0x7 0x8\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 0x1 0x 0x3 0x4 0x5 0x6 0x7 0x8\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 0x1 0x-2 0x3 0x4 0x5 0x6 0x7 0x8\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("202 0x1 0x10000000000000000 0x3 0x4 0x5 0x6 0x7 0x8\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("2o2 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8\n", &sc), -EINVAL);
        CHECK_INT(diag_syscall_parse_proc("0x10 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8\n", &sc), -EINVAL);
}

struct nr_case {
        const char *name;
        long nr;
};

static void test_names(void) {
        static const struct nr_case x86[] = {
                { "read", 0 }, { "write", 1 }, { "open", 2 }, { "poll", 7 }, { "pread64", 17 },
                { "readv", 19 }, { "select", 23 }, { "pause", 34 }, { "nanosleep", 35 },
                { "connect", 42 }, { "accept", 43 }, { "sendto", 44 }, { "recvfrom", 45 },
                { "sendmsg", 46 }, { "recvmsg", 47 }, { "wait4", 61 }, { "semop", 65 },
                { "msgsnd", 69 }, { "msgrcv", 70 }, { "fcntl", 72 }, { "flock", 73 },
                { "rt_sigtimedwait", 128 }, { "rt_sigsuspend", 130 }, { "futex", 202 },
                { "io_getevents", 208 }, { "semtimedop", 220 }, { "clock_nanosleep", 230 },
                { "epoll_wait", 232 }, { "waitid", 247 }, { "pselect6", 270 }, { "ppoll", 271 },
                { "epoll_pwait", 281 }, { "accept4", 288 }, { "recvmmsg", 299 },
                { "sendmmsg", 307 }, { "rseq", 334 }, { "io_uring_enter", 426 },
                { "close_range", 436 }, { "epoll_pwait2", 441 }, { "futex_waitv", 449 },
                { "futex_wait", 455 }, { "mseal", 462 },
        };
        static const struct nr_case a64[] = {
                { "io_getevents", 4 }, { "epoll_pwait", 22 }, { "fcntl", 25 }, { "flock", 32 },
                { "openat", 56 }, { "read", 63 }, { "write", 64 }, { "readv", 65 },
                { "pread64", 67 }, { "pselect6", 72 }, { "ppoll", 73 }, { "newfstatat", 79 },
                { "waitid", 95 }, { "futex", 98 }, { "nanosleep", 101 },
                { "clock_nanosleep", 115 }, { "rt_sigsuspend", 133 }, { "rt_sigtimedwait", 137 },
                { "msgrcv", 188 }, { "msgsnd", 189 }, { "semtimedop", 192 }, { "semop", 193 },
                { "accept", 202 }, { "connect", 203 }, { "sendto", 206 }, { "recvfrom", 207 },
                { "sendmsg", 211 }, { "recvmsg", 212 }, { "clone", 220 }, { "accept4", 242 },
                { "recvmmsg", 243 }, { "wait4", 260 }, { "sendmmsg", 269 }, { "rseq", 293 },
                { "io_uring_enter", 426 }, { "close_range", 436 }, { "epoll_pwait2", 441 },
                { "futex_waitv", 449 }, { "futex_wait", 455 }, { "mseal", 462 },
        };
        static const char *const not_on_a64[] = {
                "open", "stat", "poll", "select", "pause", "epoll_wait", "fork", "accept_", "dup2",
        };

        for (size_t i = 0; i < ELEMENTSOF(x86); i++) {
                CHECK_STR(diag_syscall_name(X86, x86[i].nr), x86[i].name);
                CHECK_INT(diag_syscall_number(X86, x86[i].name), x86[i].nr);
        }
        for (size_t i = 0; i < ELEMENTSOF(a64); i++) {
                CHECK_STR(diag_syscall_name(A64, a64[i].nr), a64[i].name);
                CHECK_INT(diag_syscall_number(A64, a64[i].name), a64[i].nr);
        }
        for (size_t i = 0; i < ELEMENTSOF(not_on_a64); i++)
                CHECK_INT(diag_syscall_number(A64, not_on_a64[i]), -1);

        /* Every number up to 462 is named on both, except the known holes. */
        for (long nr = 0; nr <= 462; nr++) {
                bool x86_hole = (nr >= 335 && nr <= 423);
                bool a64_hole = (nr >= 244 && nr <= 259) || (nr >= 295 && nr <= 423);

                CHECK((diag_syscall_name(X86, nr) != NULL) == !x86_hole);
                CHECK((diag_syscall_name(A64, nr) != NULL) == !a64_hole);
        }

        CHECK(diag_syscall_name(X86, -1) == NULL);
        CHECK(diag_syscall_name(X86, 100000) == NULL);
        CHECK(diag_syscall_name(DIAG_ARCH_UNKNOWN, 0) == NULL);
        CHECK_INT(diag_syscall_number(X86, "no_such_call"), -1);
        CHECK_INT(diag_syscall_number(X86, NULL), -1);
        CHECK_INT(diag_syscall_number(DIAG_ARCH_UNKNOWN, "read"), -1);
}

static void check_class(enum diag_arch arch, const char *name, uint64_t a0, uint64_t a1,
                        enum diag_sc_class want, int want_fd, int line) {
        const uint64_t a[6] = { a0, a1 };
        long nr = diag_syscall_number(arch, name);
        struct diag_syscall_state sc = in_sc(nr, a);
        enum diag_sc_class c = diag_syscall_class(arch, &sc);
        int fd = diag_syscall_fd(arch, &sc);

        tap_run++;
        if (nr < 0 || c != want || fd != want_fd) {
                tap_failed++;
                fprintf(stderr, "%s:%d: %s on %s: class %s fd %d, expected %s fd %d\n",
                        __FILE__, line, name, diag_arch_name(arch), diag_sc_class_name(c), fd,
                        diag_sc_class_name(want), want_fd);
        }
}
#define CHECK_CLASS(arch, name, a0, a1, want, fd) check_class(arch, name, a0, a1, want, fd, __LINE__)

static void test_class(void) {
        struct diag_syscall_state sc = {};

        for (int i = 0; i < 2; i++) {
                enum diag_arch arch = i ? A64 : X86;

                CHECK_CLASS(arch, "futex", 0x1000, 0x80, DIAG_SCC_FUTEX, -1);
                CHECK_CLASS(arch, "futex_waitv", 0x1000, 2, DIAG_SCC_FUTEX, -1);
                CHECK_CLASS(arch, "futex_wait", 0x1000, 0, DIAG_SCC_FUTEX, -1);
                CHECK_CLASS(arch, "read", 5, 0x1000, DIAG_SCC_FD_READ, 5);
                CHECK_CLASS(arch, "read", UINT64_MAX, 0, DIAG_SCC_FD_READ, -1);
                CHECK_CLASS(arch, "readv", 6, 0x1000, DIAG_SCC_FD_READ, 6);
                CHECK_CLASS(arch, "pread64", 6, 0x1000, DIAG_SCC_FD_READ, 6);
                CHECK_CLASS(arch, "recvfrom", 7, 0x1000, DIAG_SCC_FD_READ, 7);
                CHECK_CLASS(arch, "recvmsg", 7, 0x1000, DIAG_SCC_FD_READ, 7);
                CHECK_CLASS(arch, "recvmmsg", 7, 0x1000, DIAG_SCC_FD_READ, 7);
                CHECK_CLASS(arch, "write", 1, 0x1000, DIAG_SCC_FD_WRITE, 1);
                CHECK_CLASS(arch, "sendto", 8, 0x1000, DIAG_SCC_FD_WRITE, 8);
                CHECK_CLASS(arch, "sendmsg", 8, 0x1000, DIAG_SCC_FD_WRITE, 8);
                CHECK_CLASS(arch, "sendmmsg", 8, 0x1000, DIAG_SCC_FD_WRITE, 8);
                CHECK_CLASS(arch, "ppoll", 0x1000, 2, DIAG_SCC_POLL, -1);
                CHECK_CLASS(arch, "pselect6", 4, 0x1000, DIAG_SCC_POLL, -1);
                CHECK_CLASS(arch, "epoll_pwait", 4, 0x1000, DIAG_SCC_EPOLL, -1);
                CHECK_CLASS(arch, "epoll_pwait2", 4, 0x1000, DIAG_SCC_EPOLL, -1);
                CHECK_CLASS(arch, "accept", 3, 0, DIAG_SCC_ACCEPT, 3);
                CHECK_CLASS(arch, "accept4", 3, 0, DIAG_SCC_ACCEPT, 3);
                CHECK_CLASS(arch, "connect", 9, 0x1000, DIAG_SCC_CONNECT, 9);
                CHECK_CLASS(arch, "flock", 10, 2, DIAG_SCC_FLOCK, 10);
                CHECK_CLASS(arch, "fcntl", 11, 7, DIAG_SCC_FCNTL_LOCK, 11);
                CHECK_CLASS(arch, "fcntl", 11, 38, DIAG_SCC_FCNTL_LOCK, 11);
                CHECK_CLASS(arch, "fcntl", 11, 6, DIAG_SCC_OTHER, -1);
                CHECK_CLASS(arch, "fcntl", 11, 37, DIAG_SCC_OTHER, -1);
                CHECK_CLASS(arch, "fcntl", 11, 3, DIAG_SCC_OTHER, -1);
                CHECK_CLASS(arch, "wait4", UINT64_MAX, 0, DIAG_SCC_WAIT_CHILD, -1);
                CHECK_CLASS(arch, "waitid", 0, 0, DIAG_SCC_WAIT_CHILD, -1);
                CHECK_CLASS(arch, "nanosleep", 0x1000, 0, DIAG_SCC_SLEEP, -1);
                CHECK_CLASS(arch, "clock_nanosleep", 1, 0, DIAG_SCC_SLEEP, -1);
                CHECK_CLASS(arch, "rt_sigsuspend", 0x1000, 8, DIAG_SCC_PAUSE, -1);
                CHECK_CLASS(arch, "rt_sigtimedwait", 0x1000, 0, DIAG_SCC_SIGWAIT, -1);
                CHECK_CLASS(arch, "io_getevents", 0x1000, 1, DIAG_SCC_AIO, -1);
                CHECK_CLASS(arch, "io_pgetevents", 0x1000, 1, DIAG_SCC_AIO, -1);
                CHECK_CLASS(arch, "io_uring_enter", 5, 0, DIAG_SCC_AIO, -1);
                CHECK_CLASS(arch, "msgrcv", 1, 0x1000, DIAG_SCC_IPC, -1);
                CHECK_CLASS(arch, "msgsnd", 1, 0x1000, DIAG_SCC_IPC, -1);
                CHECK_CLASS(arch, "semop", 1, 0x1000, DIAG_SCC_IPC, -1);
                CHECK_CLASS(arch, "semtimedop", 1, 0x1000, DIAG_SCC_IPC, -1);
                CHECK_CLASS(arch, "mq_timedreceive", 1, 0x1000, DIAG_SCC_IPC, -1);
                CHECK_CLASS(arch, "getpid", 0, 0, DIAG_SCC_OTHER, -1);
                CHECK_CLASS(arch, "ioctl", 3, 0x5401, DIAG_SCC_OTHER, -1);
        }
        CHECK_CLASS(X86, "poll", 0x1000, 2, DIAG_SCC_POLL, -1);
        CHECK_CLASS(X86, "select", 4, 0x1000, DIAG_SCC_POLL, -1);
        CHECK_CLASS(X86, "epoll_wait", 4, 0x1000, DIAG_SCC_EPOLL, -1);
        CHECK_CLASS(X86, "pause", 0, 0, DIAG_SCC_PAUSE, -1);

        /* The same number means different calls on the two arches. */
        sc = (struct diag_syscall_state) { .kind = DIAG_SC_IN, .nr = 202, .args = { 3 } };
        CHECK_INT(diag_syscall_class(X86, &sc), DIAG_SCC_FUTEX);
        CHECK_INT(diag_syscall_class(A64, &sc), DIAG_SCC_ACCEPT);
        CHECK_INT(diag_syscall_fd(X86, &sc), -1);
        CHECK_INT(diag_syscall_fd(A64, &sc), 3);

        /* Only a thread inside a syscall has a class. */
        sc.kind = DIAG_SC_USER;
        CHECK_INT(diag_syscall_class(X86, &sc), DIAG_SCC_OTHER);
        CHECK_INT(diag_syscall_fd(A64, &sc), -1);
        sc.kind = DIAG_SC_RUNNING;
        CHECK_INT(diag_syscall_class(X86, &sc), DIAG_SCC_OTHER);
        sc.kind = DIAG_SC_IN;
        CHECK_INT(diag_syscall_class(DIAG_ARCH_UNKNOWN, &sc), DIAG_SCC_OTHER);
        CHECK_INT(diag_syscall_class(X86, NULL), DIAG_SCC_OTHER);

        CHECK_STR(diag_sc_class_name(DIAG_SCC_OTHER), "other");
        CHECK_STR(diag_sc_class_name(DIAG_SCC_FD_READ), "fd_read");
        CHECK_STR(diag_sc_class_name(DIAG_SCC_FCNTL_LOCK), "fcntl_lock");
        CHECK_STR(diag_sc_class_name(DIAG_SCC_IPC), "ipc");
        CHECK_STR(diag_sc_class_name((enum diag_sc_class) 99), "unknown");
}

static void test_format_futex(void) {
        CHECK_FMT("futex(0x55c1d2a0b200, FUTEX_WAIT_PRIVATE, 2, NULL)", "futex",
                  0x55c1d2a0b200, 0x80, 2, 0, 0, 0);
        CHECK_FMT("futex(0x1000, FUTEX_WAIT, 2147483650, 0x7ffd0000)", "futex",
                  0x1000, 0, 0x80000002, 0x7ffd0000, 0, 0);
        /* val is a u32 even when the register holds more. */
        CHECK_FMT("futex(0x1000, FUTEX_WAIT_PRIVATE, 4294967295, NULL)", "futex",
                  0x1000, 0x80, UINT64_MAX, 0, 0, 0);
        CHECK_FMT("futex(0x7f0000001000, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, "
                  "0x7ffd00001000, FUTEX_BITSET_MATCH_ANY)", "futex",
                  0x7f0000001000, 0x189, 0, 0x7ffd00001000, 0, 0xffffffff);
        CHECK_FMT("futex(0x1000, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, 0x4)", "futex",
                  0x1000, 0x89, 0, 0, 0, 4);
        CHECK_FMT("futex(0x1000, FUTEX_WAKE_PRIVATE, 1)", "futex", 0x1000, 0x81, 1, 0, 0, 0);
        CHECK_FMT("futex(0x1000, FUTEX_WAKE_BITSET, 1, FUTEX_BITSET_MATCH_ANY)", "futex",
                  0x1000, 10, 1, 0, 0, 0xffffffff);
        CHECK_FMT("futex(0x1000, FUTEX_LOCK_PI, NULL)", "futex", 0x1000, 6, 0, 0, 0, 0);
        CHECK_FMT("futex(0x1000, FUTEX_LOCK_PI_PRIVATE, 0x7ffd0000)", "futex",
                  0x1000, 0x86, 0, 0x7ffd0000, 0, 0);
        CHECK_FMT("futex(0x1000, FUTEX_LOCK_PI2_PRIVATE|FUTEX_CLOCK_REALTIME, 0x7ffd0000)", "futex",
                  0x1000, 0x18d, 0, 0x7ffd0000, 0, 0);
        CHECK_FMT("futex(0x1000, FUTEX_UNLOCK_PI_PRIVATE)", "futex", 0x1000, 0x87, 0, 0, 0, 0);
        CHECK_FMT("futex(0x1000, FUTEX_TRYLOCK_PI)", "futex", 0x1000, 8, 0, 0, 0, 0);
        CHECK_FMT("futex(0x1000, FUTEX_WAIT_REQUEUE_PI_PRIVATE, 3, NULL, 0x2000)", "futex",
                  0x1000, 0x8b, 3, 0, 0x2000, 0);
        CHECK_FMT("futex(0x1000, FUTEX_CMP_REQUEUE_PRIVATE, 1, 2147483647, 0x2000, 5)", "futex",
                  0x1000, 0x84, 1, 0x7fffffff, 0x2000, 5);
        CHECK_FMT("futex(0x1000, FUTEX_CMP_REQUEUE_PI, 1, 0, 0x2000, 7)", "futex",
                  0x1000, 12, 1, 0, 0x2000, 7);
        CHECK_FMT("futex(0x1000, FUTEX_REQUEUE, 1, 10, 0x2000)", "futex", 0x1000, 3, 1, 10, 0x2000, 0);
        CHECK_FMT("futex(0x1000, FUTEX_WAKE_OP_PRIVATE, 1, 1, 0x2000, "
                  "FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1)", "futex",
                  0x1000, 0x85, 1, 1, 0x2000, 0x04000001);
        CHECK_FMT("futex(0x1000, FUTEX_WAIT_PRIVATE|0x200, 0, NULL)", "futex", 0x1000, 0x280, 0, 0, 0, 0);
        CHECK_FMT("futex(0x1000, 0xe, 1, 0x2, 0x3, 0x4)", "futex", 0x1000, 14, 1, 2, 3, 4);
        CHECK_FMT("futex(NULL, FUTEX_WAIT, 0, NULL)", "futex", 0, 0, 0, 0, 0, 0);

        CHECK_FMT("futex_waitv(0x7f0000002000, 2, 0, NULL, CLOCK_MONOTONIC)", "futex_waitv",
                  0x7f0000002000, 2, 0, 0, 1, 0);
        CHECK_FMT("futex_waitv(0x7f0000002000, 1, 0, 0x7ffd0000, CLOCK_REALTIME)", "futex_waitv",
                  0x7f0000002000, 1, 0, 0x7ffd0000, 0, 0);
        CHECK_FMT("futex_wait(0x1000, 0, FUTEX_BITSET_MATCH_ANY, FUTEX2_SIZE_U32|FUTEX2_PRIVATE, "
                  "NULL, CLOCK_MONOTONIC)", "futex_wait", 0x1000, 0, 0xffffffff, 0x82, 0, 1);
        CHECK_FMT("futex_wait(0x1000, 7, 0x3, FUTEX2_SIZE_U64, 0x7ffd0000, CLOCK_REALTIME)",
                  "futex_wait", 0x1000, 7, 3, 3, 0x7ffd0000, 0);
}

static void test_format_fd(void) {
        CHECK_FMT("read(3, 0x7ffd5c8e0a10, 4096)", "read", 3, 0x7ffd5c8e0a10, 4096, 0, 0, 0);
        /* An int -1 may arrive sign-extended or not. */
        CHECK_FMT("read(-1, NULL, 0)", "read", UINT64_MAX, 0, 0, 0, 0, 0);
        CHECK_FMT("read(-1, NULL, 0)", "read", 0xffffffff, 0, 0, 0, 0, 0);
        CHECK_FMT("write(1, 0x5600, 12)", "write", 1, 0x5600, 12, 0, 0, 0);
        CHECK_FMT("pread64(5, 0x7f00, 512, 8192)", "pread64", 5, 0x7f00, 512, 8192, 0, 0);
        CHECK_FMT("pwrite64(5, 0x7f00, 512, 0)", "pwrite64", 5, 0x7f00, 512, 0, 0, 0);
        CHECK_FMT("readv(4, 0x7ffd00, 2)", "readv", 4, 0x7ffd00, 2, 0, 0, 0);
        CHECK_FMT("writev(4, 0x7ffd00, 3)", "writev", 4, 0x7ffd00, 3, 0, 0, 0);

        CHECK_FMT("recvfrom(7, 0x7f10, 65536, MSG_DONTWAIT, NULL, NULL)", "recvfrom",
                  7, 0x7f10, 65536, 0x40, 0, 0);
        CHECK_FMT("recvfrom(7, 0x7f10, 65536, 0, 0x7ffd10, 0x7ffd20)", "recvfrom",
                  7, 0x7f10, 65536, 0, 0x7ffd10, 0x7ffd20);
        CHECK_FMT("recvfrom(7, 0x7f10, 1, MSG_PEEK|MSG_DONTWAIT|0x100000, NULL, NULL)", "recvfrom",
                  7, 0x7f10, 1, 0x100042, 0, 0);
        CHECK_FMT("sendto(7, 0x7f10, 100, MSG_NOSIGNAL, 0x7ffd10, 16)", "sendto",
                  7, 0x7f10, 100, 0x4000, 0x7ffd10, 16);
        CHECK_FMT("recvmsg(9, 0x7ffd20, MSG_CMSG_CLOEXEC)", "recvmsg", 9, 0x7ffd20, 0x40000000, 0, 0, 0);
        CHECK_FMT("sendmsg(9, 0x7ffd20, 0)", "sendmsg", 9, 0x7ffd20, 0, 0, 0, 0);
        CHECK_FMT("recvmmsg(9, 0x7ffd20, 8, MSG_WAITFORONE, NULL)", "recvmmsg",
                  9, 0x7ffd20, 8, 0x10000, 0, 0);
        CHECK_FMT("sendmmsg(9, 0x7ffd20, 8, MSG_DONTWAIT|MSG_NOSIGNAL)", "sendmmsg",
                  9, 0x7ffd20, 8, 0x4040, 0, 0);

        CHECK_FMT("poll(0x7ffd30, 2, -1)", "poll", 0x7ffd30, 2, 0xffffffff, 0, 0, 0);
        CHECK_FMT("poll(0x7ffd30, 1, 5000)", "poll", 0x7ffd30, 1, 5000, 0, 0, 0);
        CHECK_FMT("ppoll(0x7ffd30, 2, 0x7ffd40, NULL, 8)", "ppoll", 0x7ffd30, 2, 0x7ffd40, 0, 8, 0);
        CHECK_FMT("ppoll(0x7ffd30, 1, NULL, 0x7ffd50, 8)", "ppoll", 0x7ffd30, 1, 0, 0x7ffd50, 8, 0);
        CHECK_FMT("select(5, 0x7ffd50, NULL, NULL, NULL)", "select", 5, 0x7ffd50, 0, 0, 0, 0);
        CHECK_FMT("pselect6(5, 0x7ffd50, 0x7ffd58, NULL, 0x7ffd60, 0x7ffd70)", "pselect6",
                  5, 0x7ffd50, 0x7ffd58, 0, 0x7ffd60, 0x7ffd70);

        CHECK_FMT("epoll_wait(4, 0x7ffd80, 64, -1)", "epoll_wait", 4, 0x7ffd80, 64, UINT64_MAX, 0, 0);
        CHECK_FMT("epoll_pwait(4, 0x7ffd80, 64, 100, NULL, 8)", "epoll_pwait",
                  4, 0x7ffd80, 64, 100, 0, 8);
        CHECK_FMT("epoll_pwait(4, 0x7ffd80, 1, -1, NULL, 8)", "epoll_pwait",
                  4, 0x7ffd80, 1, 0xffffffff, 0, 8);
        CHECK_FMT("epoll_pwait2(4, 0x7ffd80, 64, 0x7ffd90, NULL, 0)", "epoll_pwait2",
                  4, 0x7ffd80, 64, 0x7ffd90, 0, 0);

        CHECK_FMT("accept(3, NULL, NULL)", "accept", 3, 0, 0, 0, 0, 0);
        CHECK_FMT("accept4(3, 0x7ffda0, 0x7ffdb0, SOCK_CLOEXEC|SOCK_NONBLOCK)", "accept4",
                  3, 0x7ffda0, 0x7ffdb0, 0x80800, 0, 0);
        CHECK_FMT("accept4(3, NULL, NULL, SOCK_CLOEXEC)", "accept4", 3, 0, 0, 0x80000, 0, 0);
        CHECK_FMT("accept4(3, NULL, NULL, 0)", "accept4", 3, 0, 0, 0, 0, 0);
        CHECK_FMT("connect(6, 0x7ffdc0, 16)", "connect", 6, 0x7ffdc0, 16, 0, 0, 0);

        CHECK_FMT("flock(5, LOCK_EX|LOCK_NB)", "flock", 5, 6, 0, 0, 0, 0);
        CHECK_FMT("flock(5, LOCK_SH)", "flock", 5, 1, 0, 0, 0, 0);
        CHECK_FMT("flock(5, LOCK_UN)", "flock", 5, 8, 0, 0, 0, 0);
        CHECK_FMT("flock(5, LOCK_EX|0x100)", "flock", 5, 0x102, 0, 0, 0, 0);

        CHECK_FMT("fcntl(5, F_SETLKW, 0x7ffdd0)", "fcntl", 5, 7, 0x7ffdd0, 0, 0, 0);
        CHECK_FMT("fcntl(5, F_OFD_SETLKW, 0x7ffdd0)", "fcntl", 5, 38, 0x7ffdd0, 0, 0, 0);
        CHECK_FMT("fcntl(5, F_SETLK, 0x7ffdd0)", "fcntl", 5, 6, 0x7ffdd0, 0, 0, 0);
        CHECK_FMT("fcntl(5, F_GETLK, NULL)", "fcntl", 5, 5, 0, 0, 0, 0);
        CHECK_FMT("fcntl(5, F_GETFL)", "fcntl", 5, 3, 0, 0, 0, 0);
        CHECK_FMT("fcntl(5, F_SETFD, FD_CLOEXEC)", "fcntl", 5, 2, 1, 0, 0, 0);
        CHECK_FMT("fcntl(5, F_DUPFD_CLOEXEC, 10)", "fcntl", 5, 1030, 10, 0, 0, 0);
        CHECK_FMT("fcntl(5, F_SETLEASE, F_WRLCK)", "fcntl", 5, 1024, 1, 0, 0, 0);
        CHECK_FMT("fcntl(5, 0x63, 0x1)", "fcntl", 5, 99, 1, 0, 0, 0);
}

static void test_format_wait(void) {
        CHECK_FMT("wait4(-1, 0x7ffde0, WNOHANG|__WALL, NULL)", "wait4",
                  UINT64_MAX, 0x7ffde0, 0x40000001, 0, 0, 0);
        CHECK_FMT("wait4(-1, NULL, 0, NULL)", "wait4", 0xffffffff, 0, 0, 0, 0, 0);
        CHECK_FMT("wait4(1234, NULL, WUNTRACED|WCONTINUED, 0x7ffe00)", "wait4",
                  1234, 0, 0xa, 0x7ffe00, 0, 0);
        CHECK_FMT("waitid(P_ALL, 0, 0x7ffdf0, WEXITED, NULL)", "waitid", 0, 0, 0x7ffdf0, 4, 0, 0);
        CHECK_FMT("waitid(P_PIDFD, 7, 0x7ffdf0, WEXITED|WSTOPPED|WNOWAIT, NULL)", "waitid",
                  3, 7, 0x7ffdf0, 0x1000006, 0, 0);
        CHECK_FMT("waitid(P_PID, 42, 0x7ffdf0, WEXITED|__WCLONE, 0x7ffe00)", "waitid",
                  1, 42, 0x7ffdf0, 0x80000004, 0x7ffe00, 0);
        CHECK_FMT("waitid(P_PGID, 0, NULL, WNOHANG|WEXITED, NULL)", "waitid", 2, 0, 0, 5, 0, 0);
        CHECK_FMT("waitid(9, 0, NULL, 0, NULL)", "waitid", 9, 0, 0, 0, 0, 0);

        CHECK_FMT("nanosleep(0x7ffe00, NULL)", "nanosleep", 0x7ffe00, 0, 0, 0, 0, 0);
        CHECK_FMT("nanosleep(0x7ffe00, 0x7ffe10)", "nanosleep", 0x7ffe00, 0x7ffe10, 0, 0, 0, 0);
        CHECK_FMT("clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, 0x7ffe00, NULL)", "clock_nanosleep",
                  1, 1, 0x7ffe00, 0, 0, 0);
        CHECK_FMT("clock_nanosleep(CLOCK_REALTIME, 0, 0x7ffe00, 0x7ffe10)", "clock_nanosleep",
                  0, 0, 0x7ffe00, 0x7ffe10, 0, 0);
        CHECK_FMT("clock_nanosleep(CLOCK_BOOTTIME, 0, 0x7ffe00, NULL)", "clock_nanosleep",
                  7, 0, 0x7ffe00, 0, 0, 0);
        /* Negative clock ids are CPU-time clocks of a process or thread. */
        CHECK_FMT("clock_nanosleep(-6, 0, 0x7ffe00, NULL)", "clock_nanosleep",
                  0xfffffffa, 0, 0x7ffe00, 0, 0, 0);

        CHECK_FMT("pause()", "pause", 0, 0, 0, 0, 0, 0);
        CHECK_FMT("rt_sigsuspend(0x7ffe20, 8)", "rt_sigsuspend", 0x7ffe20, 8, 0, 0, 0, 0);
        CHECK_FMT("rt_sigtimedwait(0x7ffe20, NULL, 0x7ffe30, 8)", "rt_sigtimedwait",
                  0x7ffe20, 0, 0x7ffe30, 8, 0, 0);

        CHECK_FMT("io_getevents(0x7f1234560000, 1, 32, 0x7ffe40, NULL)", "io_getevents",
                  0x7f1234560000, 1, 32, 0x7ffe40, 0, 0);
        CHECK_FMT("io_pgetevents(0x7f1234560000, 1, 32, 0x7ffe40, 0x7ffe50, NULL)", "io_pgetevents",
                  0x7f1234560000, 1, 32, 0x7ffe40, 0x7ffe50, 0);
        CHECK_FMT("io_uring_enter(5, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0)", "io_uring_enter",
                  5, 0, 1, 1, 0, 0);
        CHECK_FMT("io_uring_enter(5, 2, 1, IORING_ENTER_GETEVENTS|IORING_ENTER_EXT_ARG, 0x7ffe50, 24)",
                  "io_uring_enter", 5, 2, 1, 9, 0x7ffe50, 24);
        CHECK_FMT("io_uring_enter(5, 0, 0, IORING_ENTER_SQ_WAKEUP|0x100, NULL, 0)", "io_uring_enter",
                  5, 0, 0, 0x102, 0, 0);

        CHECK_FMT("msgrcv(3, 0x7ffe60, 256, 0, IPC_NOWAIT)", "msgrcv", 3, 0x7ffe60, 256, 0, 0x800, 0);
        CHECK_FMT("msgrcv(3, 0x7ffe60, 256, -5, MSG_NOERROR|MSG_EXCEPT)", "msgrcv",
                  3, 0x7ffe60, 256, (uint64_t) -5, 0x3000, 0);
        CHECK_FMT("msgsnd(3, 0x7ffe60, 256, 0)", "msgsnd", 3, 0x7ffe60, 256, 0, 0, 0);
        CHECK_FMT("semop(4, 0x7ffe70, 1)", "semop", 4, 0x7ffe70, 1, 0, 0, 0);
        CHECK_FMT("semtimedop(4, 0x7ffe70, 2, 0x7ffe80)", "semtimedop", 4, 0x7ffe70, 2, 0x7ffe80, 0, 0);
        CHECK_FMT("mq_timedreceive(3, 0x7ffe90, 8192, NULL, 0x7ffea0)", "mq_timedreceive",
                  3, 0x7ffe90, 8192, 0, 0x7ffea0, 0);
}

static void test_format_other(void) {
        struct diag_syscall_state sc = { .kind = DIAG_SC_IN, .nr = 16, .args = { 3, 0x5401, 0x7ffe90 } };
        char buf[256];

        CHECK_STR(diag_syscall_format(X86, &sc, buf, sizeof(buf)),
                  "ioctl(0x3, 0x5401, 0x7ffe90, 0x0, 0x0, 0x0)");
        sc.nr = 29;
        CHECK_STR(diag_syscall_format(A64, &sc, buf, sizeof(buf)),
                  "ioctl(0x3, 0x5401, 0x7ffe90, 0x0, 0x0, 0x0)");
        sc.nr = 999;
        CHECK_STR(diag_syscall_format(X86, &sc, buf, sizeof(buf)),
                  "syscall_999(0x3, 0x5401, 0x7ffe90, 0x0, 0x0, 0x0)");
        sc.nr = 400;    /* a hole on both */
        CHECK_STR(diag_syscall_format(A64, &sc, buf, sizeof(buf)),
                  "syscall_400(0x3, 0x5401, 0x7ffe90, 0x0, 0x0, 0x0)");
        sc.nr = 202;
        CHECK_STR(diag_syscall_format(DIAG_ARCH_UNKNOWN, &sc, buf, sizeof(buf)),
                  "syscall_202(0x3, 0x5401, 0x7ffe90, 0x0, 0x0, 0x0)");
        /* 202 is accept on aarch64: the arch picks the decoder. */
        CHECK_STR(diag_syscall_format(A64, &sc, buf, sizeof(buf)), "accept(3, 0x5401, 0x7ffe90)");

        sc.kind = DIAG_SC_RUNNING;
        CHECK_STR(diag_syscall_format(X86, &sc, buf, sizeof(buf)), "running");
        sc.kind = DIAG_SC_USER;
        CHECK_STR(diag_syscall_format(X86, &sc, buf, sizeof(buf)), "-");
        sc.kind = DIAG_SC_UNKNOWN;
        CHECK_STR(diag_syscall_format(X86, &sc, buf, sizeof(buf)), "?");
        CHECK_STR(diag_syscall_format(X86, NULL, buf, sizeof(buf)), "?");
}

static void test_truncation(void) {
        struct diag_syscall_state sc = { .kind = DIAG_SC_IN, .nr = 202,
                                         .args = { 0x55c1d2a0b200, 0x80, 2 } };
        char buf[32];

        memset(buf, 'X', sizeof(buf));
        CHECK(diag_syscall_format(X86, &sc, buf, 8) == buf);
        CHECK_STR(buf, "futex(0");
        CHECK(buf[8] == 'X');

        memset(buf, 'X', sizeof(buf));
        diag_syscall_format(X86, &sc, buf, 1);
        CHECK_STR(buf, "");
        CHECK(buf[1] == 'X');

        /* Size 0: nothing may be written at all. */
        memset(buf, 'X', sizeof(buf));
        diag_syscall_format(X86, &sc, buf, 0);
        CHECK(buf[0] == 'X');

        /* Every cut of a long line stays terminated and is a prefix of the full one. */
        {
                char full[256], part[256];
                bool ok = true;

                sc.args[1] = 0x189;
                sc.args[3] = 0x7ffd00001000;
                sc.args[5] = 0xffffffff;
                diag_syscall_format(X86, &sc, full, sizeof(full));
                for (size_t n = 1; n <= strlen(full) + 1; n++) {
                        memset(part, 'X', sizeof(part));
                        diag_syscall_format(X86, &sc, part, n);
                        if (strlen(part) != MIN(n - 1, strlen(full)) ||
                            strncmp(part, full, strlen(part)) != 0 || part[n] != 'X')
                                ok = false;
                }
                CHECK(ok);
                sc.nr = 16;
                diag_syscall_format(X86, &sc, full, sizeof(full));
                memset(part, 'X', sizeof(part));
                diag_syscall_format(X86, &sc, part, 20);
                CHECK_INT(strlen(part), 19);
                CHECK(strncmp(part, full, 19) == 0);
        }
}

/* Live check: a thread blocked in read() on a pipe, seen through /proc. */
struct reader {
        int fd;
        pid_t tid;
        char byte;
        ssize_t n;
};

static void *reader_main(void *arg) {
        struct reader *r = arg;

        __atomic_store_n(&r->tid, gettid(), __ATOMIC_SEQ_CST);
        r->n = read(r->fd, &r->byte, 1);
        return NULL;
}

static void test_live(void) {
        struct reader r = {};
        struct diag_syscall_state sc = {};
        enum diag_arch arch = diag_arch_native();
        pthread_t th;
        int pfd[2];
        char path[64], text[256], line[256], prefix[32];
        bool seen = false;

        if (arch == DIAG_ARCH_UNKNOWN) {
                printf("# live check skipped: unknown native arch\n");
                return;
        }
        CHECK(pipe2(pfd, O_CLOEXEC) == 0);
        r.fd = pfd[0];
        CHECK(pthread_create(&th, NULL, reader_main, &r) == 0);

        for (int i = 0; i < 200 && !seen; i++) {
                pid_t tid = __atomic_load_n(&r.tid, __ATOMIC_SEQ_CST);
                ssize_t n;

                if (tid > 0) {
                        snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int) tid);
                        n = diag_read_small_at(AT_FDCWD, path, text, sizeof(text));
                        if (n > 0 && diag_syscall_parse_proc(text, &sc) == 0 && sc.kind == DIAG_SC_IN &&
                            sc.nr == diag_syscall_number(arch, "read"))
                                seen = true;
                }
                if (!seen)
                        nanosleep(&(struct timespec) { .tv_nsec = 5 * 1000 * 1000 }, NULL);
        }
        CHECK(seen);
        if (seen) {
                CHECK_INT(diag_syscall_class(arch, &sc), DIAG_SCC_FD_READ);
                CHECK_INT(diag_syscall_fd(arch, &sc), pfd[0]);
                diag_syscall_format(arch, &sc, line, sizeof(line));
                snprintf(prefix, sizeof(prefix), "read(%d, 0x", pfd[0]);
                CHECK(strncmp(line, prefix, strlen(prefix)) == 0);
                CHECK(sc.args[0] == (uint64_t) pfd[0]);
                CHECK(sc.args[1] == (uintptr_t) &r.byte);
                CHECK_INT(sc.args[2], 1);
                printf("# live: %s\n", line);
        }

        CHECK(write(pfd[1], "x", 1) == 1);
        CHECK(pthread_join(th, NULL) == 0);
        CHECK_INT(r.n, 1);
        close(pfd[0]);
        close(pfd[1]);
}

int main(void) {
        test_arch();
        test_parse();
        test_names();
        test_class();
        test_format_futex();
        test_format_fd();
        test_format_wait();
        test_format_other();
        test_truncation();
        test_live();
        {
                struct diag_syscall_state rs = { .kind = DIAG_SC_IN, .nr = 219 };
                char rb[128];
                CHECK_STR(diag_syscall_format(DIAG_ARCH_X86_64, &rs, rb, sizeof rb),
                          "restart_syscall(<... resuming interrupted call ...>)");
        }
        return TAP_DONE();
}
