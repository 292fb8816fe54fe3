/* SPDX-License-Identifier: GPL-2.0-or-later */
/* diag_syscount against sysloop, which says how many write() calls it made and
 * how many failed: exact counts per process, threads under their process, other
 * processes left out, latency, counts kept after stop, the whole host. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag/syscount.h"
#include "diag/util.h"
#include "tap.h"

struct loop {
        pid_t pid;
        int in;                         /* its stdin */
        FILE *out;                      /* its stdout */
};

static const char *sysloop;

static void loop_start(struct loop *l) {
        int to[2], from[2];
        char line[128];

        if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
                perror("pipe2");
                exit(99);
        }
        l->pid = fork();
        if (l->pid < 0) {
                perror("fork");
                exit(99);
        }
        if (l->pid == 0) {
                dup2(to[0], 0);
                dup2(from[1], 1);
                execl(sysloop, "sysloop", (char *) NULL);
                _exit(127);
        }
        close(to[0]);
        close(from[1]);
        l->in = to[1];
        l->out = fdopen(from[0], "r");
        if (!l->out || !fgets(line, sizeof line, l->out) || strncmp(line, "READY pid=", 10) != 0) {
                fprintf(stderr, "%s did not start\n", sysloop);
                exit(99);
        }
}

/* Send a command, return its answer (static buffer). */
static const char *loop_cmd(struct loop *l, const char *cmd) {
        static char line[256];

        if (write(l->in, cmd, strlen(cmd)) != (ssize_t) strlen(cmd) || !fgets(line, sizeof line, l->out)) {
                fprintf(stderr, "sysloop %d did not answer '%s'\n", l->pid, cmd);
                exit(99);
        }
        return line;
}

/* The loop's duration in an answer ("ns=T"), 0 when missing. */
static uint64_t answer_ns(const char *answer) {
        const char *p = strstr(answer, " ns=");
        return p ? strtoull(p + 4, NULL, 10) : 0;
}

static void loop_stop(struct loop *l) {
        close(l->in);
        fclose(l->out);
        waitpid(l->pid, NULL, 0);
}

static const struct diag_syscount_entry *find(const struct diag_syscount_entry *e, size_t n, pid_t pid, long nr) {
        for (size_t i = 0; i < n; i++)
                if (e[i].pid == pid && e[i].nr == nr)
                        return &e[i];
        return NULL;
}

static size_t count_pid(const struct diag_syscount_entry *e, size_t n, pid_t pid) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += e[i].pid == pid;
        return k;
}

/* The write and writev figures of pid; 0 when absent. */
static void figures(struct diag_syscount *sc, pid_t pid, struct diag_syscount_entry *w, struct diag_syscount_entry *wv) {
        _cleanup_free_ struct diag_syscount_entry *e = NULL;
        const struct diag_syscount_entry *x;
        size_t n = 0;

        CHECK_INT(diag_syscount_read(sc, &e, &n), 0);
        x = find(e, n, pid, SYS_write);
        *w = x ? *x : (struct diag_syscount_entry) {};
        x = find(e, n, pid, SYS_writev);
        *wv = x ? *x : (struct diag_syscount_entry) {};
}

static void check_mode(unsigned flags, size_t extra_pids) {
        _cleanup_free_ struct diag_syscount_entry *e = NULL;
        struct diag_syscount_entry w, wv, w2, wv2;
        struct diag_syscount *sc = NULL;
        struct loop target, other;
        const char *reason = NULL, *a;
        pid_t pids[16];
        size_t n = 0, np = 0;
        uint64_t loops_ns = 0;
        bool latency = !(flags & DIAG_SYSCOUNT_NO_LATENCY);

        fprintf(stderr, "mode: %s, %zu other pids in the list\n", latency ? "latency" : "no latency", extra_pids);
        loop_start(&target);
        loop_start(&other);
        /* pids that do not run: with more than a few the filter is a table */
        for (size_t i = 0; i < extra_pids; i++)
                pids[np++] = 4000000 + (pid_t) i;
        pids[np++] = target.pid;
        CHECK_INT(diag_syscount_start_flags(pids, np, flags, &sc, &reason), 0);
        if (!sc)
                return;

        a = loop_cmd(&target, "GO 1000 5\n");
        CHECK(strncmp(a, "DONE 1000 writes=1000 errors=5 ", 31) == 0);
        loops_ns = answer_ns(a);
        a = loop_cmd(&target, "THREAD 500 3\n");
        CHECK(strstr(a, "writes=500 errors=3 ") && strstr(a, " tid="));
        loops_ns += answer_ns(a);
        CHECK(atoi(strstr(a, " tid=") + 5) != target.pid);
        a = loop_cmd(&other, "GO 300 7\n");
        CHECK(strncmp(a, "DONE 300 writes=300 errors=7 ", 29) == 0);

        figures(sc, target.pid, &w, &wv);
        CHECK_INT(w.calls, 1000 + 5 + 500 + 3);
        CHECK_INT(w.errors, 5 + 3);
        CHECK_INT(wv.calls, 2);         /* the two answers */
        CHECK_INT(wv.errors, 0);
        if (latency) {
                CHECK(w.total_ns > 0);
                CHECK(w.max_ns > 0 && w.max_ns <= w.total_ns);
                /* the calls were made inside the loops, which sysloop timed */
                CHECK(w.total_ns < loops_ns);
                CHECK(wv.max_ns <= wv.total_ns);
        } else
                CHECK(w.total_ns == 0 && w.max_ns == 0);

        CHECK_INT(diag_syscount_read(sc, &e, &n), 0);
        CHECK_INT(count_pid(e, n, other.pid), 0);
        CHECK_INT(count_pid(e, n, getpid()), 0);
        /* read() was waiting when counting started: its return is counted, once per command */
        CHECK(find(e, n, target.pid, SYS_read) && find(e, n, target.pid, SYS_read)->calls == 2);
        CHECK_INT(diag_syscount_lost(sc), 0);
        CHECK_STR(diag_syscount_mechanism(sc), "bpf raw_tracepoint");

        /* stopped: what was counted stays, nothing more is */
        diag_syscount_stop(sc);
        (void) loop_cmd(&target, "GO 100\n");
        figures(sc, target.pid, &w2, &wv2);
        CHECK_INT(w2.calls, w.calls);
        CHECK_INT(w2.errors, w.errors);
        CHECK_INT(w2.total_ns, w.total_ns);
        CHECK_INT(wv2.calls, wv.calls);

        diag_syscount_free(sc);
        loop_stop(&target);
        loop_stop(&other);
}

static void check_host(void) {
        _cleanup_free_ struct diag_syscount_entry *e = NULL;
        struct diag_syscount *sc = NULL;
        struct diag_syscount_entry w, wv;
        const char *reason = NULL;
        struct loop other;
        size_t n = 0;

        loop_start(&other);
        CHECK_INT(diag_syscount_start(NULL, 0, &sc, &reason), 0);
        if (!sc)
                return;
        (void) loop_cmd(&other, "GO 200 2\n");
        figures(sc, other.pid, &w, &wv);
        CHECK_INT(w.calls, 202);
        CHECK_INT(w.errors, 2);
        CHECK_INT(wv.calls, 1);
        diag_syscount_stop(sc);
        CHECK_INT(diag_syscount_read(sc, &e, &n), 0);
        CHECK(n > 3);
        CHECK_INT(count_pid(e, n, getpid()), 0);        /* our own calls are left out */
        diag_syscount_free(sc);
        loop_stop(&other);
}

static int count_fds(void) {
        char path[64];
        int n = 0;

        for (int fd = 0; fd < 1024; fd++) {
                snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
                n += access(path, F_OK) == 0;
        }
        return n;
}

int main(int argc, char **argv) {
        struct diag_syscount *sc = NULL;
        const char *reason = NULL;
        pid_t self = getpid();
        int r, nfds;

        if (argc != 2) {
                fprintf(stderr, "usage: test-syscount SYSLOOP\n");
                return 99;
        }
        sysloop = argv[1];
        alarm(50);

        r = diag_syscount_start(&self, 1, &sc, &reason);
        if (r == -EPERM || r == -EACCES || r == -ENOSYS || r == -EOPNOTSUPP) {
                printf("SKIP system call counting not available: %s\n", reason ? reason : strerror(-r));
                return 77;
        }
        if (r < 0) {
                fprintf(stderr, "diag_syscount_start: %s\n", reason ? reason : strerror(-r));
                return 1;
        }
        diag_syscount_free(sc);

        nfds = count_fds();
        check_mode(0, 0);
        check_mode(DIAG_SYSCOUNT_NO_LATENCY, 0);
        check_mode(0, 12);
        check_mode(DIAG_SYSCOUNT_NO_LATENCY, 12);
        check_host();
        CHECK_INT(count_fds(), nfds);   /* maps, programs and links all closed */
        return TAP_DONE();
}
