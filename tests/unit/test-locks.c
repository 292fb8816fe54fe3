/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/locks.h"
#include "diag/syscall.h"
#include "diag/util.h"
#include "tap.h"

static void test_names(void) {
        CHECK_STR(diag_lock_kind_name(DIAG_LOCK_FLOCK), "FLOCK");
        CHECK_STR(diag_lock_kind_name(DIAG_LOCK_POSIX), "POSIX");
        CHECK_STR(diag_lock_kind_name(DIAG_LOCK_OFD), "OFDLCK");
        CHECK_STR(diag_lock_kind_name(DIAG_LOCK_LEASE), "LEASE");
        CHECK_STR(diag_lock_kind_name(DIAG_LOCK_DELEG), "DELEG");
        CHECK_STR(diag_lock_kind_name(DIAG_LOCK_OTHER), "OTHER");
        CHECK_STR(diag_lock_kind_name((enum diag_lock_kind) 99), "?");
        CHECK_STR(diag_lock_mode_name(DIAG_LOCK_READ), "READ");
        CHECK_STR(diag_lock_mode_name(DIAG_LOCK_WRITE), "WRITE");
        CHECK_STR(diag_lock_mode_name(DIAG_LOCK_NONE), "NONE");
        CHECK_STR(diag_lock_mode_name((enum diag_lock_mode) 99), "?");
}

static void test_parse_forms(void) {
        struct diag_filelock l;

        CHECK_INT(diag_lock_parse_line("1: POSIX  ADVISORY  WRITE 12345 08:01:1835123 0 EOF", &l), 0);
        CHECK_INT(l.id, 1);
        CHECK(!l.waiter);
        CHECK_INT(l.depth, 0);
        CHECK_INT(l.kind, DIAG_LOCK_POSIX);
        CHECK(!l.mandatory);
        CHECK_INT(l.mode, DIAG_LOCK_WRITE);
        CHECK(!l.breaking);
        CHECK_INT(l.pid, 12345);
        CHECK_INT(l.dev_major, 8);
        CHECK_INT(l.dev_minor, 1);
        CHECK_INT(l.inode, 1835123);
        CHECK_INT(l.start, 0);
        CHECK(l.end == UINT64_MAX);

        /* Depth 1: "N: -> ", the same on every kernel. */
        CHECK_INT(diag_lock_parse_line("1: -> POSIX  ADVISORY  WRITE 12346 08:01:1835123 0 EOF\n", &l), 0);
        CHECK_INT(l.id, 1);
        CHECK(l.waiter);
        CHECK_INT(l.depth, 1);
        CHECK_INT(l.pid, 12346);
        CHECK_INT(l.kind, DIAG_LOCK_POSIX);

        /* 5.12+: one more space before "->" per level ("%*s" of "-> "). */
        CHECK_INT(diag_lock_parse_line("7:  -> POSIX  ADVISORY  READ 300 fd:01:99 10 19", &l), 0);
        CHECK_INT(l.id, 7);
        CHECK(l.waiter);
        CHECK_INT(l.depth, 2);
        CHECK_INT(l.mode, DIAG_LOCK_READ);
        CHECK_INT(l.dev_major, 0xfd);
        CHECK_INT(l.dev_minor, 1);
        CHECK_INT(l.start, 10);
        CHECK_INT(l.end, 19);
        CHECK_INT(diag_lock_parse_line("7:   -> FLOCK  ADVISORY  WRITE 301 00:1a:5 0 EOF", &l), 0);
        CHECK_INT(l.depth, 3);
        /* Tolerated spelling with one arrow per level. */
        CHECK_INT(diag_lock_parse_line("7: -> -> FLOCK  ADVISORY  WRITE 301 00:1a:5 0 EOF", &l), 0);
        CHECK_INT(l.depth, 2);

        CHECK_INT(diag_lock_parse_line("2: FLOCK  ADVISORY  WRITE 2222 00:1a:777 0 EOF", &l), 0);
        CHECK_INT(l.kind, DIAG_LOCK_FLOCK);
        CHECK_INT(l.pid, 2222);
        CHECK_INT(l.dev_major, 0);
        CHECK_INT(l.dev_minor, 0x1a);
        CHECK_INT(l.inode, 777);

        CHECK_INT(diag_lock_parse_line("3: OFDLCK ADVISORY  READ  -1 fd:01:99 0 99", &l), 0);
        CHECK_INT(l.kind, DIAG_LOCK_OFD);
        CHECK_INT(l.pid, -1);
        CHECK_INT(l.mode, DIAG_LOCK_READ);
        CHECK_INT(l.end, 99);

        CHECK_INT(diag_lock_parse_line("4: LEASE  ACTIVE    READ  5555 08:01:12 0 EOF", &l), 0);
        CHECK_INT(l.kind, DIAG_LOCK_LEASE);
        CHECK(!l.breaking);
        CHECK_INT(l.mode, DIAG_LOCK_READ);
        CHECK_INT(l.pid, 5555);
        CHECK_INT(l.inode, 12);
        CHECK_INT(diag_lock_parse_line("4: LEASE  BREAKING  UNLCK 5555 08:01:12 0 EOF", &l), 0);
        CHECK(l.breaking);
        CHECK_INT(l.mode, DIAG_LOCK_NONE);
        /* The breaker has no file of its own: "<none>:0". */
        CHECK_INT(diag_lock_parse_line("4: -> LEASE  BREAKER   WRITE 6666 <none>:0 0 EOF", &l), 0);
        CHECK(l.waiter);
        CHECK(l.breaking);
        CHECK_INT(l.mode, DIAG_LOCK_WRITE);
        CHECK_INT(l.pid, 6666);
        CHECK_INT(l.inode, 0);
        CHECK_INT(l.dev_major, 0);
        CHECK_INT(diag_lock_parse_line("5: DELEG  ACTIVE    READ 777 00:2c:4242 0 EOF", &l), 0);
        CHECK_INT(l.kind, DIAG_LOCK_DELEG);
        CHECK_INT(l.pid, 777);

        /* fdinfo, with and without the prefix, and as fd.c passes it. */
        CHECK_INT(diag_lock_parse_line("lock:\t1: FLOCK  ADVISORY  WRITE 1234 08:01:1234 0 EOF", &l), 0);
        CHECK_INT(l.kind, DIAG_LOCK_FLOCK);
        CHECK_INT(l.pid, 1234);
        CHECK_INT(l.inode, 1234);
        CHECK_INT(diag_lock_parse_line("\t2: OFDLCK ADVISORY  WRITE -1 08:01:55 0 EOF\n", &l), 0);
        CHECK_INT(l.id, 2);
        CHECK_INT(l.kind, DIAG_LOCK_OFD);

        /* Older and odd forms. */
        CHECK_INT(diag_lock_parse_line("6: POSIX  MANDATORY WRITE 0 08:01:3 0 EOF", &l), 0);
        CHECK(l.mandatory);
        CHECK_INT(l.pid, 0);
        CHECK_INT(diag_lock_parse_line("6: FLOCK  MSNFS     RW    88 08:01:3 0 EOF", &l), 0);
        CHECK(l.mandatory);
        CHECK_INT(l.mode, DIAG_LOCK_WRITE);
        CHECK_INT(diag_lock_parse_line("8: POSIX  *NOINODE* WRITE 9 <none>:0 0 EOF", &l), 0);
        CHECK_INT(l.inode, 0);
        CHECK_INT(diag_lock_parse_line("8: LEASE  ACTIVE    READ 9 *NOINODE* 0 EOF", &l), 0);
        CHECK_INT(l.dev_major, 0);
        CHECK_INT(l.dev_minor, 0);
        CHECK_INT(l.inode, 0);
        CHECK_INT(diag_lock_parse_line("9: ACCESS ADVISORY  READ 1 08:01:3 0 EOF", &l), 0);
        CHECK_INT(l.kind, DIAG_LOCK_OTHER);
        CHECK_INT(diag_lock_parse_line("9: UNKNOWN UNKNOWN  READ 1 08:01:3 0 EOF", &l), 0);
        CHECK_INT(l.kind, DIAG_LOCK_OTHER);
        CHECK_INT(diag_lock_parse_line("10: POSIX  ADVISORY  WRITE 1 103:05:3 0 EOF", &l), 0);
        CHECK_INT(l.dev_major, 0x103);
        CHECK_INT(l.dev_minor, 5);
}

static void test_parse_malformed(void) {
        static const char *const bad[] = {
                "",
                "   ",
                "garbage",
                "1 POSIX  ADVISORY  WRITE 1 08:01:1 0 EOF",             /* no colon */
                "x: POSIX  ADVISORY  WRITE 1 08:01:1 0 EOF",            /* bad id */
                "-1: POSIX  ADVISORY  WRITE 1 08:01:1 0 EOF",
                "99999999999: POSIX  ADVISORY  WRITE 1 08:01:1 0 EOF",  /* id > UINT_MAX */
                "1: FOO  ADVISORY  WRITE 1 08:01:1 0 EOF",              /* kind */
                "1: POSIX  ACTIVE  WRITE 1 08:01:1 0 EOF",              /* lease word on a lock */
                "1: LEASE  ADVISORY  READ 1 08:01:1 0 EOF",             /* lock word on a lease */
                "1: POSIX  ADVISORY  BOTH 1 08:01:1 0 EOF",             /* mode */
                "1: POSIX  ADVISORY  WRITE x 08:01:1 0 EOF",            /* pid */
                "1: POSIX  ADVISORY  WRITE 99999999999 08:01:1 0 EOF",
                "1: POSIX  ADVISORY  WRITE 1 08:01 0 EOF",              /* dev without inode */
                "1: POSIX  ADVISORY  WRITE 1 0x8:01:1 0 EOF",
                "1: POSIX  ADVISORY  WRITE 1 zz:01:1 0 EOF",
                "1: POSIX  ADVISORY  WRITE 1 08:01:-1 0 EOF",
                "1: POSIX  ADVISORY  WRITE 1 08:01:1 -5 EOF",           /* start */
                "1: POSIX  ADVISORY  WRITE 1 08:01:1 0 eof",            /* end */
                "1: POSIX  ADVISORY  WRITE 1 08:01:1 0",                /* missing end */
                "1: POSIX  ADVISORY  WRITE 1 08:01:1 0 EOF extra",
                "1: ->POSIX  ADVISORY  WRITE 1 08:01:1 0 EOF",
                "1: POSIX  ADVISORY  WRITE 1 08:01:1 0 EOF\n2: FLOCK  ADVISORY  WRITE 1 08:01:1 0 EOF",
                "lock:",
        };
        struct diag_filelock l;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = diag_lock_parse_line(bad[i], &l);
                if (r != -EINVAL)
                        fprintf(stderr, "accepted or wrong error %d: \"%s\"\n", r, bad[i]);
                CHECK_INT(r, -EINVAL);
        }
        CHECK_INT(diag_lock_parse_line(NULL, &l), -EINVAL);

        /* Longer than any real line. */
        char longline[1024];
        memset(longline, ' ', sizeof longline - 1);
        longline[sizeof longline - 1] = 0;
        memcpy(longline, "1: POSIX", 8);
        CHECK_INT(diag_lock_parse_line(longline, &l), -EINVAL);
}

static void test_parse_text(void) {
        static const char text[] =
                "1: POSIX  ADVISORY  WRITE 100 08:01:500 0 EOF\n"
                "1: -> POSIX  ADVISORY  WRITE 101 08:01:500 0 EOF\n"
                "1:  -> POSIX  ADVISORY  WRITE 102 08:01:500 0 EOF\n"
                "1: -> POSIX  ADVISORY  READ 103 08:01:500 0 9\n"
                "2: FLOCK  ADVISORY  WRITE 200 00:1a:777 0 EOF\n"
                "3: OFDLCK ADVISORY  READ  -1 fd:01:99 0 99\n"
                "3: -> OFDLCK ADVISORY  WRITE -1 fd:01:99 0 EOF\n"
                "4: LEASE  BREAKING  READ  400 08:01:12 0 EOF\n"
                "4: -> LEASE  BREAKER   WRITE 401 <none>:0 0 EOF\n"
                "\n"
                "5: POSIX  ADVISORY  WRITE 500 08:01:501 0 EOF";        /* no final newline */
        _cleanup_(diag_locktab_freep) struct diag_locktab *t = NULL;
        const struct diag_filelock *b;

        CHECK_INT(diag_locks_parse(text, &t), 0);
        if (!t)
                return;
        CHECK_INT(t->n, 10);
        if (t->n != 10)
                return;
        CHECK_INT(t->locks[0].pid, 100);
        CHECK(!t->locks[0].waiter);
        CHECK_INT(t->locks[1].depth, 1);
        CHECK_INT(t->locks[2].depth, 2);
        CHECK_INT(t->locks[2].pid, 102);
        CHECK_INT(t->locks[3].end, 9);
        CHECK_INT(t->locks[5].pid, -1);
        CHECK_INT(t->locks[9].id, 5);
        CHECK_INT(t->locks[9].inode, 501);

        b = diag_locks_blocker(t, &t->locks[1]);
        CHECK(b == &t->locks[0]);
        b = diag_locks_blocker(t, &t->locks[2]);
        CHECK(b == &t->locks[0]);
        b = diag_locks_blocker(t, &t->locks[3]);
        CHECK(b == &t->locks[0]);
        b = diag_locks_blocker(t, &t->locks[6]);
        CHECK(b == &t->locks[5]);
        b = diag_locks_blocker(t, &t->locks[8]);
        CHECK(b == &t->locks[7]);
        CHECK(diag_locks_blocker(t, &t->locks[0]) == NULL);     /* not a waiter */
        CHECK(diag_locks_blocker(NULL, &t->locks[1]) == NULL);

        /* A copy outside the table, and a waiter whose holder is gone. */
        struct diag_filelock copy = t->locks[6];
        CHECK(diag_locks_blocker(t, &copy) == &t->locks[5]);
        copy.id = 42;
        CHECK(diag_locks_blocker(t, &copy) == NULL);

        CHECK(diag_lock_same_file(&t->locks[0], &t->locks[1]));
        CHECK(diag_lock_same_file(&t->locks[0], &t->locks[3]));
        CHECK(!diag_lock_same_file(&t->locks[0], &t->locks[4]));
        CHECK(!diag_lock_same_file(&t->locks[0], &t->locks[9]));        /* same dev, other inode */
        CHECK(!diag_lock_same_file(&t->locks[8], &t->locks[8]));        /* "<none>:0" */
        CHECK(!diag_lock_same_file(NULL, &t->locks[0]));

        t = diag_locktab_free(t);
        CHECK(t == NULL);

        /* Empty text: an empty table. */
        CHECK_INT(diag_locks_parse("", &t), 0);
        CHECK(t && t->n == 0);
        t = diag_locktab_free(t);

        /* One bad line fails the whole text, and nothing leaks. */
        CHECK_INT(diag_locks_parse("1: POSIX  ADVISORY  WRITE 100 08:01:500 0 EOF\nbogus\n", &t), -EINVAL);
        CHECK(t == NULL);
}

/* ---- live: our own locks as /proc/locks and fdinfo show them ---- */

static int make_temp(char *path, size_t size) {
        const char *dir = getenv("TMPDIR");
        int fd;

        if (!dir || !*dir)
                dir = "/tmp";
        snprintf(path, size, "%s/test-locks-XXXXXX", dir);
        fd = mkstemp(path);
        if (fd >= 0)
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
}

static const struct diag_filelock *find_lock(const struct diag_locktab *t, enum diag_lock_kind kind,
                                             const struct stat *st, bool waiter, pid_t pid) {
        for (size_t i = 0; i < t->n; i++) {
                const struct diag_filelock *l = &t->locks[i];
                if (l->kind == kind && l->waiter == waiter && l->pid == pid &&
                    l->inode == (uint64_t) st->st_ino &&
                    l->dev_major == major(st->st_dev) && l->dev_minor == minor(st->st_dev))
                        return l;
        }
        return NULL;
}

/* Poll /proc/locks until the child's blocked request shows, for at most 1 s. */
static struct diag_locktab *wait_for_waiter(const struct stat *st, pid_t child) {
        for (int i = 0; i < 100; i++) {
                struct diag_locktab *t = NULL;
                struct timespec ts = { 0, 10 * 1000 * 1000 };

                if (diag_locks_read(&t) == 0) {
                        if (find_lock(t, DIAG_LOCK_POSIX, st, true, child))
                                return t;
                        diag_locktab_free(t);
                }
                nanosleep(&ts, NULL);
        }
        return NULL;
}

/* A child that asks for a write lock on the whole file and waits for it: a
 * different process is a different POSIX owner, so it blocks behind us. */
static pid_t fork_blocked_writer(const char *path) {
        pid_t pid = fork();

        if (pid == 0) {
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                int fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        _exit(2);
                (void) fcntl(fd, F_SETLKW, &fl);
                _exit(0);
        }
        return pid;
}

static void kill_and_reap(pid_t pid) {
        int status;

        kill(pid, SIGKILL);
        CHECK_INT(waitpid(pid, &status, 0), pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_live(void) {
        char path_flock[256], path_posix[256], path_ofd[256];
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        struct stat st_flock, st_posix, st_ofd;
        int fd_flock, fd_posix, fd_ofd;
        struct diag_locktab *t = NULL;
        const struct diag_filelock *l, *w;
        pid_t child, child2 = -1, self = getpid();

        fd_flock = make_temp(path_flock, sizeof path_flock);
        fd_posix = make_temp(path_posix, sizeof path_posix);
        fd_ofd = make_temp(path_ofd, sizeof path_ofd);
        CHECK(fd_flock >= 0 && fd_posix >= 0 && fd_ofd >= 0);
        if (fd_flock < 0 || fd_posix < 0 || fd_ofd < 0)
                return;
        CHECK_INT(fstat(fd_flock, &st_flock), 0);
        CHECK_INT(fstat(fd_posix, &st_posix), 0);
        CHECK_INT(fstat(fd_ofd, &st_ofd), 0);

        CHECK_INT(flock(fd_flock, LOCK_EX), 0);
        CHECK_INT(fcntl(fd_posix, F_SETLK, &fl), 0);
        /* OFD locks need l_pid = 0. */
        CHECK_INT(fcntl(fd_ofd, F_OFD_SETLK, &fl), 0);

        child = fork_blocked_writer(path_posix);
        CHECK(child > 0);
        if (child <= 0)
                goto cleanup;
        t = wait_for_waiter(&st_posix, child);
        CHECK(t != NULL);
        if (!t)
                goto reap;
        t = diag_locktab_free(t);

        /* A second writer conflicts with the first one's request too, so the
         * kernel queues it behind that request: a waiter at depth 2. */
        child2 = fork_blocked_writer(path_posix);
        CHECK(child2 > 0);
        if (child2 <= 0)
                goto reap;
        t = wait_for_waiter(&st_posix, child2);
        CHECK(t != NULL);
        if (!t)
                goto reap;

        l = find_lock(t, DIAG_LOCK_FLOCK, &st_flock, false, self);
        CHECK(l != NULL);
        if (l) {
                CHECK_INT(l->mode, DIAG_LOCK_WRITE);
                CHECK_INT(l->depth, 0);
        }

        l = find_lock(t, DIAG_LOCK_POSIX, &st_posix, false, self);
        CHECK(l != NULL);
        w = find_lock(t, DIAG_LOCK_POSIX, &st_posix, true, child);
        CHECK(w != NULL);
        if (l && w) {
                CHECK_INT(w->depth, 1);
                CHECK_INT(w->id, l->id);
                CHECK(diag_locks_blocker(t, w) == l);
                CHECK(diag_lock_same_file(l, w));
                CHECK_INT(l->start, 0);
                CHECK(l->end == UINT64_MAX);
        }
        w = find_lock(t, DIAG_LOCK_POSIX, &st_posix, true, child2);
        CHECK(w != NULL);
        if (l && w) {
                CHECK_INT(w->depth, 2);
                CHECK_INT(w->id, l->id);
                CHECK(diag_locks_blocker(t, w) == l);
        }

        l = find_lock(t, DIAG_LOCK_OFD, &st_ofd, false, -1);
        CHECK(l != NULL);
        if (l)
                CHECK_INT(l->mode, DIAG_LOCK_WRITE);

        /* fdinfo is where an OFD lock's owner shows. */
        {
                char fdinfo[64];
                _cleanup_free_ char *text = NULL;
                const char *p;
                unsigned nlock = 0;

                snprintf(fdinfo, sizeof fdinfo, "/proc/self/fdinfo/%d", fd_ofd);
                CHECK_INT(diag_read_file_at(AT_FDCWD, fdinfo, 65536, &text, NULL), 0);
                for (p = text; p && *p; ) {
                        const char *nl = strchr(p, '\n');
                        size_t len = nl ? (size_t) (nl - p) : strlen(p);
                        char line[256];

                        snprintf(line, sizeof line, "%.*s", (int) MIN(len, sizeof line - 1), p);
                        if (strncmp(line, "lock:", 5) == 0) {
                                struct diag_filelock fl_info;
                                CHECK_INT(diag_lock_parse_line(line, &fl_info), 0);
                                CHECK_INT(fl_info.kind, DIAG_LOCK_OFD);
                                CHECK_INT(fl_info.inode, st_ofd.st_ino);
                                CHECK_INT(fl_info.dev_major, major(st_ofd.st_dev));
                                CHECK_INT(fl_info.dev_minor, minor(st_ofd.st_dev));
                                CHECK(!fl_info.waiter);
                                nlock++;
                        }
                        p = nl ? nl + 1 : NULL;
                }
                CHECK_INT(nlock, 1);
        }

reap:
        diag_locktab_free(t);
        kill_and_reap(child);
        if (child2 > 0)
                kill_and_reap(child2);
cleanup:
        unlink(path_flock);
        unlink(path_posix);
        unlink(path_ofd);
        close(fd_flock);
        close(fd_posix);
        close(fd_ofd);
}

/* Which system calls are a sleep, for the likely waits of retry loops. */
static void test_sleep_call(void) {
        enum diag_arch a = diag_arch_native();
        struct diag_syscall_state sc = { .kind = DIAG_SC_IN };

        if (a == DIAG_ARCH_UNKNOWN)
                return;
        sc.nr = diag_syscall_number(a, "clock_nanosleep");
        CHECK_STR(diag_lock_sleep_call(&sc), "clock_nanosleep");
        sc.nr = diag_syscall_number(a, "read");
        CHECK(diag_lock_sleep_call(&sc) == NULL);
        /* ppoll with no fds is a sleep, with fds it waits for them */
        sc.nr = diag_syscall_number(a, "ppoll");
        sc.args[0] = 0x1000;
        sc.args[1] = 0;
        CHECK_STR(diag_lock_sleep_call(&sc), "ppoll");
        sc.args[1] = 2;
        CHECK(diag_lock_sleep_call(&sc) == NULL);
        /* pselect6 with nfds 0 is a sleep */
        sc.nr = diag_syscall_number(a, "pselect6");
        sc.args[0] = 0;
        CHECK_STR(diag_lock_sleep_call(&sc), "pselect6");
        sc.args[0] = 4;
        CHECK(diag_lock_sleep_call(&sc) == NULL);
        sc.kind = DIAG_SC_RUNNING;
        CHECK(diag_lock_sleep_call(&sc) == NULL);
        CHECK(diag_lock_sleep_call(NULL) == NULL);
}

static void test_holders_format(void) {
        struct diag_lock_holders h = { .locker = 100 };
        char buf[256];

        h.h[0] = (struct diag_lock_holder) { .pid = 100, .fd = 3, .comm = "flock" };
        h.n = 1;
        CHECK_STR(diag_lock_holders_format(&h, buf, sizeof buf), "pid 100 \"flock\"");
        h.locker_exited = true;
        snprintf(h.locker_comm, sizeof h.locker_comm, "flock");
        h.h[0] = (struct diag_lock_holder) { .pid = 101, .fd = 3, .comm = "sleep" };
        h.h[1] = (struct diag_lock_holder) { .pid = 102, .fd = 3, .comm = "sleep" };
        h.n = 2;
        CHECK_STR(diag_lock_holders_format(&h, buf, sizeof buf),
                  "pid 101 \"sleep\" (and 1 more), which inherited it: the locker pid 100 (flock) exited");
        h.n = 0;
        h.locker_comm[0] = 0;
        CHECK_STR(diag_lock_holders_format(&h, buf, sizeof buf), "nobody alive: the locker pid 100 exited");
}

int main(void) {
        test_sleep_call();
        test_holders_format();
        test_names();
        test_parse_forms();
        test_parse_malformed();
        test_parse_text();
        test_live();
        return TAP_DONE();
}
