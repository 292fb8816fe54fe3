/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top's wait.c against real waits (tests/fixtures/topwaitfix): a flock held
 * by a process stuck in recv() on a local listener that never replies and a
 * process waiting for that flock, a mutex held by another thread, sleepers (one,
 * and a group of three), with /proc and diag-chain as oracles; the cache (a
 * second fill makes no scan); nothing stopped; a replay frame's D-state table.
 *
 *   test-top-wait TOPWAITFIX DIAG-CHAIN
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag/proc.h"
#include "diag/record.h"
#include "diag/util.h"
#include "tap.h"
#include "top.h"

static const char *fixture, *chain_tool;

/* ---- children: every one killed and reaped on every path ---- */

static pid_t kids[16];
static size_t nkids;

static void kill_kid(pid_t pid) {
        for (size_t i = 0; i < nkids; i++)
                if (kids[i] == pid) {
                        long deadline = (long) (diag_now_ns(CLOCK_MONOTONIC) / 1000000) + 3000;
                        kill(pid, SIGTERM);
                        while (waitpid(pid, NULL, WNOHANG) == 0) {
                                if ((long) (diag_now_ns(CLOCK_MONOTONIC) / 1000000) > deadline) {
                                        kill(pid, SIGKILL);
                                        (void) waitpid(pid, NULL, 0);
                                        break;
                                }
                                usleep(5000);
                        }
                        kids[i] = kids[--nkids];
                        return;
                }
}

static void kill_all(void) {
        while (nkids)
                kill_kid(kids[nkids - 1]);
}

static void on_signal(int sig) {
        /* async-signal-safe: SIGKILL each child; the fixture's own children die
         * with it (PR_SET_PDEATHSIG) */
        for (size_t i = 0; i < nkids; i++)
                kill(kids[i], SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Run the fixture with arg; its lines up to READY go to out (NUL-separated
 * "key=value" words). The pid, or -1 (a line explains), or 0 on SKIP. */
static pid_t start_fixture(const char *arg, char *out, size_t size) {
        int p[2];
        pid_t pid;
        FILE *f;
        char line[512];
        size_t o = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                dup2(p[1], 1);
                execl(fixture, fixture, arg, (char *) NULL);
                _exit(127);
        }
        kids[nkids++] = pid;
        close(p[1]);
        f = fdopen(p[0], "r");
        if (!f)
                return -1;
        out[0] = 0;
        while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = 0;
                if (strcmp(line, "READY") == 0) {
                        fclose(f);
                        return pid;
                }
                if (strncmp(line, "SKIP", 4) == 0) {
                        fclose(f);
                        kill_kid(pid);
                        return 0;
                }
                if (o + strlen(line) + 2 < size) {
                        memcpy(out + o, line, strlen(line));
                        o += strlen(line);
                        out[o++] = ' ';
                        out[o] = 0;
                }
        }
        fclose(f);
        fprintf(stderr, "fixture %s %s ended before READY\n", fixture, arg);
        kill_kid(pid);
        return -1;
}

/* The number after "key=" in the fixture's lines, -1 when none. */
static long field(const char *out, const char *key) {
        char k[64];
        const char *p;

        snprintf(k, sizeof k, "%s=", key);
        for (p = strstr(out, k); p && p != out && p[-1] != ' '; p = strstr(p + 1, k))
                ;
        return p ? strtol(p + strlen(k), NULL, 10) : -1;
}

/* ---- frames built by hand from /proc ---- */

static char *owned[64];
static size_t nowned;

static const char *keep(char *s) {
        if (s && nowned < 64)
                owned[nowned++] = s;
        return s ? s : "";
}

static int read_proc(pid_t pid, struct top_proc *p) {
        char path[64], buf[1024];
        struct diag_stat st;

        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || diag_stat_parse(buf, &st) < 0)
                return -1;
        memset(p, 0, sizeof *p);
        p->pid = pid;
        p->ppid = (pid_t) DIAG_STAT_FIELD(&st, 4);
        p->start = (int64_t) DIAG_STAT_FIELD(&st, 22);
        p->state = st.state;
        p->comm = keep(strdup(st.comm));
        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        p->cmd = keep(diag_proc_read_cmdline_at(AT_FDCWD, path, 4096));
        p->cgroup = "";
        p->threads = 1;
        p->cpu_pct = -1;
        return 0;
}

static int cmp_proc(const void *a, const void *b) {
        const struct top_proc *x = a, *y = b;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

/* A frame of these processes (sorted by pid) and one row each. */
static void make_frame(struct top_frame *f, struct top_proc *procs, const pid_t *pids, size_t n, struct top_row *rows) {
        memset(f, 0, sizeof *f);
        for (size_t i = 0; i < n; i++)
                CHECK_INT(read_proc(pids[i], &procs[i]), 0);
        qsort(procs, n, sizeof *procs, cmp_proc);
        f->procs = procs;
        f->nprocs = n;
        for (size_t i = 0; i < n; i++)
                rows[i] = (struct top_row) { .p = &procs[i], .count = 1, .blocked_ms = -1, .pss = DIAG_REC_NA };
}

static struct top_row *row_of(struct top_row *rows, size_t n, pid_t pid) {
        for (size_t i = 0; i < n; i++)
                if (rows[i].p->pid == pid)
                        return &rows[i];
        return NULL;
}

/* ---- nothing stopped: every task's state watched while the fills run ---- */

static pid_t watched[16];
static size_t nwatched;
static volatile int watching;
static int stops_seen, states_read;

static void *watch(void *arg) {
        (void) arg;
        while (__atomic_load_n(&watching, __ATOMIC_SEQ_CST)) {
                for (size_t i = 0; i < nwatched; i++) {
                        _cleanup_free_ pid_t *tids = NULL;
                        size_t nt = 0;
                        if (diag_proc_list_tids(watched[i], &tids, &nt) < 0)
                                continue;
                        for (size_t k = 0; k < nt; k++) {
                                char st = '?';
                                if (diag_task_read_state(watched[i], tids[k], &st) < 0)
                                        continue;
                                __atomic_add_fetch(&states_read, 1, __ATOMIC_SEQ_CST);
                                if (st == 't' || st == 'T')
                                        __atomic_add_fetch(&stops_seen, 1, __ATOMIC_SEQ_CST);
                        }
                }
        }
        return NULL;
}

/* diag-chain's text about pid (the oracle): does it hold every word? */
static bool chain_says(pid_t pid, const char *const *words, size_t n) {
        char cmd[512], buf[8192];
        size_t len = 0, got;
        FILE *p;
        bool all = true;

        snprintf(cmd, sizeof cmd, "'%s' --ascii %d 2>&1", chain_tool, pid);
        p = popen(cmd, "r");
        if (!p)
                return false;
        while (len < sizeof buf - 1 && (got = fread(buf + len, 1, sizeof buf - 1 - len, p)) > 0)
                len += got;
        buf[len] = 0;
        pclose(p);
        for (size_t i = 0; i < n; i++)
                if (!strstr(buf, words[i])) {
                        fprintf(stderr, "diag-chain's output on %d lacks \"%s\":\n%s\n", pid, words[i], buf);
                        all = false;
                }
        return all;
}

static bool has(const char *s, const char *word) {
        if (s && strstr(s, word))
                return true;
        fprintf(stderr, "\"%s\" does not hold \"%s\"\n", s ? s : "(null)", word);
        return false;
}

/* ---- the scenes ---- */

/* The walking thread's signal mask, from /proc: every signal blocked (they are
 * the main thread's, whose poll() must return for them). */
static bool other_threads_block_all(void) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t nt = 0;
        int others = 0;
        bool all = true;

        if (diag_proc_list_tids(getpid(), &tids, &nt) < 0)
                return false;
        for (size_t k = 0; k < nt; k++) {
                char path[64], buf[4096];
                unsigned long long blk = 0;
                if (tids[k] == getpid())
                        continue;
                snprintf(path, sizeof path, "/proc/self/task/%d/status", tids[k]);
                if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 ||
                    diag_status_field(buf, "SigBlk", 16, &blk) < 0)
                        continue;
                /* the watcher thread of this test blocks nothing; the walker blocks SIGINT..SIGWINCH at least */
                if ((blk & (1ULL << (SIGINT - 1))) && (blk & (1ULL << (SIGTERM - 1))) &&
                    (blk & (1ULL << (SIGHUP - 1))) && (blk & (1ULL << (SIGWINCH - 1))))
                        others++;
        }
        if (others != 1) {
                fprintf(stderr, "%d threads block SIGINT, SIGHUP, SIGTERM and SIGWINCH, want 1 (the walker)\n", others);
                all = false;
        }
        return all;
}

/* The live screen's mode: walks on a thread of their own. A fill posts and never
 * waits; the fd wakes the caller; the next fill shows what the synchronous fill
 * said; freeing while a walk runs returns. */
static void test_background(const struct top_frame *f, struct top_row *rows, const pid_t *pids,
                            const char *sync_wait, const char *holder_word) {
        struct top_wait *w = NULL;
        struct pollfd p;
        unsigned stuck = 99;
        struct top_row *wr, *h;
        uint64_t batches = 0;
        int n;

        CHECK_INT(top_wait_new(&w, &(struct top_wait_opts) { .chains = true, .ascii = true, .background = true }), 0);
        CHECK(top_wait_fd(w) >= 0);
        CHECK(other_threads_block_all());
        top_wait_fill(w, f, rows, 3, &stuck);
        wr = row_of(rows, 3, pids[2]);
        /* posted, not walked in the fill: no WAIT yet (nothing cached of this call) */
        CHECK(wr->wait == NULL);
        CHECK_INT(top_wait_scans(w), 1);
        p = (struct pollfd) { .fd = top_wait_fd(w), .events = POLLIN };
        n = poll(&p, 1, 20000);
        CHECK_INT(n, 1);
        CHECK(top_wait_answers(w));
        CHECK(top_wait_walk_us(w, &batches) > 0);
        CHECK_INT(batches, 1);
        top_wait_fill(w, f, rows, 3, &stuck);
        wr = row_of(rows, 3, pids[2]);
        h = row_of(rows, 3, pids[1]);
        printf("background: waiter: %s\n", wr->wait ? wr->wait : "-");
        CHECK_STR(wr->wait ? wr->wait : "", sync_wait);
        CHECK(has(h->wait, holder_word));
        /* answered from the cache: no second scan, the fd stays quiet */
        CHECK_INT(top_wait_scans(w), 1);
        CHECK_INT(poll(&p, 1, 0), 0);
        CHECK(!top_wait_answers(w));
        top_wait_free(w);

        /* freed with a walk posted (max_age 1 ms: every fill walks again) */
        CHECK_INT(top_wait_new(&w, &(struct top_wait_opts) { .chains = true, .max_age_ms = 1, .background = true }), 0);
        top_wait_fill(w, f, rows, 3, &stuck);
        top_wait_free(w);
}

static void test_flock(void) {
        char out[1024], word[3][64];
        pid_t fx = start_fixture("flock", out, sizeof out), pids[3];
        long port;
        struct top_wait *w = NULL, *wu = NULL;
        struct top_frame f;
        struct top_proc procs[3];
        struct top_row rows[3], *h, *wr, *l;
        unsigned stuck = 99;
        uint64_t first_us, scans;
        char first_wait[256] = "";
        pthread_t th;

        CHECK(fx > 0);
        if (fx <= 0)
                return;
        pids[0] = (pid_t) field(out, "listener");
        pids[1] = (pid_t) field(out, "holder");
        pids[2] = (pid_t) field(out, "waiter");
        port = field(out, "port");
        CHECK(pids[0] > 0 && pids[1] > 0 && pids[2] > 0 && port > 0);
        memcpy(watched, pids, sizeof pids);
        nwatched = 3;
        watching = 1;
        CHECK_INT(pthread_create(&th, NULL, watch, NULL), 0);

        make_frame(&f, procs, pids, 3, rows);
        CHECK_INT(top_wait_new(&w, &(struct top_wait_opts) { .chains = true, .ascii = true }), 0);
        /* blocked under a second: not walked yet (it may be gone by the next refresh) */
        top_wait_fill(w, &f, rows, 3, &stuck);
        for (size_t i = 0; i < 3; i++)
                CHECK(rows[i].blocked_ms >= 1000 || rows[i].wait == NULL);
        usleep(1100000);
        top_wait_fill(w, &f, rows, 3, &stuck);
        first_us = top_wait_last_us(w);
        scans = top_wait_scans(w);
        CHECK(scans == 1 || scans == 2);
        h = row_of(rows, 3, pids[1]);
        wr = row_of(rows, 3, pids[2]);
        l = row_of(rows, 3, pids[0]);
        printf("holder: %s\nwaiter: %s\nlistener: %s\n", h->wait ? h->wait : "-", wr->wait ? wr->wait : "-",
               l->wait ? l->wait : "-");
        /* the waiter: the lock, its holder's pid, the listener's port */
        snprintf(word[0], sizeof word[0], "held by %d", pids[1]);
        snprintf(word[1], sizeof word[1], ":%ld", port);
        CHECK(has(wr->wait, "flock sess_42 <- "));
        CHECK(has(wr->wait, word[0]));
        CHECK(has(wr->wait, word[1]));
        /* the holder: the socket it waits on */
        snprintf(word[2], sizeof word[2], "recv tcp 127.0.0.1:%ld", port);
        CHECK(has(h->wait, word[2]));
        /* the listener sleeps by choice */
        CHECK(l->wait == NULL);
        for (size_t i = 0; i < 3; i++) {
                CHECK_INT(rows[i].blocked_state, 'S');
                CHECK(rows[i].blocked_ms >= 0 && rows[i].blocked_ms < 60000);
        }
        /* a listener asleep: nothing stuck (a sleep, under 5 s anyway) */
        CHECK_INT(stuck, 0);
        /* diag-chain says the same of the waiter */
        {
                char a[64], b[64];
                const char *ws[] = { a, b };
                snprintf(a, sizeof a, "pid %d", pids[1]);
                snprintf(b, sizeof b, ":%ld", port);
                CHECK(chain_says(pids[2], ws, 2));
        }
        snprintf(first_wait, sizeof first_wait, "%s", wr->wait ? wr->wait : "");

        /* nothing changed: the cache answers, no scan */
        for (size_t i = 0; i < 3; i++)
                rows[i].wait = NULL;
        {
                uint64_t reads0, hits0 = top_wait_thread_hits(w, &reads0), reads1, hits1;
                top_wait_fill(w, &f, rows, 3, &stuck);
                hits1 = top_wait_thread_hits(w, &reads1);
                /* none of the fixture's threads ran: each is taken as read before */
                printf("threads: %llu read again, %llu from the last reading\n",
                       (unsigned long long) (reads1 - reads0), (unsigned long long) (hits1 - hits0));
                CHECK(hits1 - hits0 >= 3);
        }
        CHECK_INT(top_wait_scans(w), scans);
        printf("fill: first %llu us, second %llu us\n", (unsigned long long) first_us,
               (unsigned long long) top_wait_last_us(w));
        CHECK(top_wait_last_us(w) < first_us);
        CHECK_STR(wr->wait, first_wait);
        CHECK(has(h->wait, word[2]));

        /* max_age 1 ms: the answer is walked again */
        CHECK_INT(top_wait_new(&wu, &(struct top_wait_opts) { .chains = true, .max_age_ms = 1 }), 0);
        top_wait_fill(wu, &f, rows, 3, &stuck);
        usleep(20000);
        top_wait_fill(wu, &f, rows, 3, &stuck);
        CHECK_INT(top_wait_scans(wu), 2);
        /* the arrow, without ascii */
        CHECK(has(wr->wait, "flock sess_42 \u2190 held by"));

        /* BLOCKED only: no WAIT, no scan */
        {
                struct top_wait *wb = NULL;
                CHECK_INT(top_wait_new(&wb, &(struct top_wait_opts) { .chains = false }), 0);
                top_wait_fill(wb, &f, rows, 3, &stuck);
                CHECK(rows[0].wait == NULL && rows[1].wait == NULL && rows[2].wait == NULL);
                CHECK(rows[0].blocked_ms >= 0);
                CHECK_INT(top_wait_scans(wb), 0);
                top_wait_free(wb);
        }
        top_wait_free(wu);
        top_wait_free(w);

        test_background(&f, rows, pids, first_wait, word[2]);

        __atomic_store_n(&watching, 0, __ATOMIC_SEQ_CST);
        pthread_join(th, NULL);
        CHECK(states_read > 0);
        CHECK_INT(stops_seen, 0);
        kill_kid(fx);
}

static void test_mutex(void) {
        char out[512], a[32], b[32];
        pid_t fx = start_fixture("mutex", out, sizeof out), pid;
        long holder;
        struct top_wait *w = NULL;
        struct top_frame f;
        struct top_proc procs[1];
        struct top_row rows[1];
        unsigned stuck = 99;

        CHECK(fx > 0);
        if (fx <= 0)
                return;
        pid = (pid_t) field(out, "mutex");
        holder = field(out, "holder");
        CHECK(pid == fx && holder > 0);
        make_frame(&f, procs, &pid, 1, rows);
        usleep(1100000);
        CHECK_INT(top_wait_new(&w, &(struct top_wait_opts) { .chains = true, .ascii = true }), 0);
        top_wait_fill(w, &f, rows, 1, &stuck);
        printf("mutex: %s\n", rows[0].wait ? rows[0].wait : "-");
        /* the holder thread is named, and what it does */
        snprintf(a, sizeof a, "held by tid %ld", holder);
        CHECK(has(rows[0].wait, "futex mutex"));
        CHECK(has(rows[0].wait, a));
        CHECK(has(rows[0].wait, "which sleeps"));
        CHECK_INT(rows[0].blocked_state, 'S');
        CHECK_INT(stuck, 0);
        snprintf(b, sizeof b, "tid %ld", holder);
        {
                const char *ws[] = { b };
                CHECK(chain_says(pid, ws, 1));
        }
        top_wait_free(w);
        for (size_t i = 0; i < 1; i++) {
                char st = '?';
                CHECK_INT(diag_task_read_state(pid, (pid_t) holder, &st), 0);
                CHECK(st != 't' && st != 'T');
        }
        kill_kid(fx);
}

/* Two processes each waiting for the other's flock: one stuck chain, however
 * many of its rows are walked. */
static void test_cycle(void) {
        unsigned stuck = 99;
        struct top_proc procs[2];
        struct top_row rows[2];
        struct top_frame f;
        struct top_wait *w = NULL;
        char out[256], a[32], b[32];
        pid_t pids[2], fx = start_fixture("cycle", out, sizeof out);

        if (fx <= 0) {
                CHECK(fx > 0);
                return;
        }
        pids[0] = (pid_t) field(out, "p1");
        pids[1] = (pid_t) field(out, "p2");
        CHECK(pids[0] > 0 && pids[1] > 0);
        make_frame(&f, procs, pids, 2, rows);
        usleep(1100000);
        CHECK_INT(top_wait_new(&w, &(struct top_wait_opts) { .chains = true, .ascii = true }), 0);
        top_wait_fill(w, &f, rows, 2, &stuck);
        printf("cycle: %s | %s\n", rows[0].wait ? rows[0].wait : "-", rows[1].wait ? rows[1].wait : "-");
        snprintf(a, sizeof a, "held by %d", rows[1].p->pid);
        snprintf(b, sizeof b, "held by %d", rows[0].p->pid);
        CHECK(has(rows[0].wait, a));
        CHECK(has(rows[0].wait, "(deadlock)"));
        CHECK(has(rows[1].wait, b));
        CHECK(has(rows[1].wait, "(deadlock)"));
        CHECK_INT(stuck, 1);
        /* one row alone: the same one */
        top_wait_fill(w, &f, rows + 1, 1, &stuck);
        CHECK_INT(stuck, 1);
        top_wait_free(w);
        kill_kid(fx);
}

static int64_t pss_of(pid_t pid) {
        char path[64], buf[4096];
        unsigned long long kb;

        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || diag_status_field(buf, "Pss", 10, &kb) < 0)
                return -1;
        return (int64_t) kb * 1024;
}

static void test_sleepers(void) {
        char out[256];
        pid_t pids[3];
        struct top_wait *w = NULL;
        struct top_frame f;
        struct top_proc procs[3];
        struct top_row rows[3], g;
        int64_t b1, b2, longest0 = -1, longest1 = -1, pss = 0;
        unsigned stuck = 99;

        for (size_t i = 0; i < 3; i++) {
                pids[i] = start_fixture("sleep", out, sizeof out);
                CHECK(pids[i] > 0);
                if (pids[i] <= 0)
                        return;
                usleep(100000);         /* the first sleeps longest */
        }
        make_frame(&f, procs, pids, 3, rows);
        CHECK_INT(top_wait_new(&w, &(struct top_wait_opts) { .chains = true }), 0);

        /* one sleeper: no WAIT; BLOCKED grows with the time slept */
        top_wait_fill(w, &f, rows, 1, &stuck);
        b1 = rows[0].blocked_ms;
        CHECK(rows[0].wait == NULL);
        CHECK_INT(rows[0].blocked_state, 'S');
        usleep(300000);
        top_wait_fill(w, &f, rows, 1, &stuck);
        b2 = rows[0].blocked_ms;
        printf("sleeper: blocked %lld then %lld ms\n", (long long) b1, (long long) b2);
        CHECK(b1 >= 150);
        CHECK(b2 - b1 >= 250 && b2 - b1 <= 1000);
        CHECK(rows[0].wait == NULL);
        CHECK_INT(top_wait_scans(w), 0);        /* a sleep needs no scan */

        /* the three as one group row: BLOCKED the longest, PSS the sum */
        for (size_t i = 0; i < 3; i++) {
                int64_t ms = -1;
                CHECK_INT(diag_task_read_offcpu_ms(pids[i], pids[i], &ms), 0);
                longest0 = ms > longest0 ? ms : longest0;
                pss += pss_of(pids[i]);
        }
        /* a copy of the command line: members are found by its text, not its pointer */
        procs[2].cmd = keep(strdup(procs[2].cmd));
        CHECK_STR(procs[2].cmd, procs[0].cmd);
        g = (struct top_row) { .p = &procs[0], .count = 3, .blocked_ms = -1, .pss = DIAG_REC_NA };
        top_wait_fill(w, &f, &g, 1, &stuck);
        for (size_t i = 0; i < 3; i++) {
                int64_t ms = -1;
                CHECK_INT(diag_task_read_offcpu_ms(pids[i], pids[i], &ms), 0);
                longest1 = ms > longest1 ? ms : longest1;
        }
        printf("group: blocked %lld ms (oracle %lld..%lld), pss %lld (oracle %lld)\n", (long long) g.blocked_ms,
               (long long) longest0, (long long) longest1, (long long) g.pss, (long long) pss);
        /* A thread that has not run since the last fill is taken from it, its time
         * carried forward by CLOCK_MONOTONIC; the oracle reads the CPU's task clock,
         * which leaves out IRQ and steal time: on a busy VM they part by a few ms
         * over a second (4 ms seen). */
        CHECK(g.blocked_ms >= longest0 - 50 && g.blocked_ms <= longest1 + 50);
        CHECK_INT(g.blocked_state, 'S');
        CHECK(g.wait == NULL);
        CHECK(g.pss > 0);
        CHECK(g.pss >= pss * 9 / 10 && g.pss <= pss * 11 / 10);

        /* BLOCKED for every row (sorting by it) */
        top_wait_fill_blocked(w, &f, rows, 3);
        for (size_t i = 0; i < 3; i++)
                CHECK(rows[i].blocked_ms >= 100 && rows[i].blocked_state == 'S');
        {
                /* the oldest (first started) has slept longest */
                size_t o = 0, y = 0;
                for (size_t i = 1; i < 3; i++) {
                        o = rows[i].p->start < rows[o].p->start ? i : o;
                        y = rows[i].p->start > rows[y].p->start ? i : y;
                }
                CHECK(rows[o].blocked_ms > rows[y].blocked_ms);
        }
        top_wait_free(w);
        for (size_t i = 0; i < 3; i++)
                kill_kid(pids[i]);
}

/* A recorded interval with a thread in D: BLOCKED and WAIT from it, no /proc. */
static void test_replay(void) {
        struct diag_rec_strings *strs = diag_rec_strings_new();
        struct diag_rec_interval iv;
        struct top_proc procs[4] = {
                /* pids no process has: any read of /proc would find nothing */
                { .pid = 4000001, .start = 10, .comm = "reader", .cmd = "reader /mnt/x" },
                { .pid = 4000002, .start = 11, .comm = "idle", .cmd = "idle" },
                { .pid = 4000003, .start = 12, .comm = "pool", .cmd = "pool -w" },
                { .pid = 4000004, .start = 13, .comm = "pool", .cmd = "pool -w" },
        };
        struct top_frame f = { .procs = procs, .nprocs = 4, .iv = &iv, .replay = true };
        struct top_row rows[3] = {
                { .p = &procs[0], .count = 1 },
                { .p = &procs[1], .count = 1 },
                { .p = &procs[2], .count = 2 },
        };
        struct top_wait *w = NULL;
        unsigned stuck = 99;
        const struct { pid_t tid, pid; const char *wchan; } ds[] = {
                { 4000001, 4000001, "fuse_wait_answer" },
                { 4000009, 4000004, "io_schedule" },
        };

        CHECK(strs != NULL);
        if (!strs)
                return;
        diag_rec_interval_init(&iv, strs);
        for (size_t i = 0; i < 2; i++) {
                ssize_t r = diag_rec_add_row(&iv, DIAG_REC_DSTATE);
                CHECK(r >= 0);
                if (r < 0)
                        break;
                DIAG_REC_NUM(&iv, DIAG_REC_DSTATE, r, DS_TID) = ds[i].tid;
                DIAG_REC_NUM(&iv, DIAG_REC_DSTATE, r, DS_PID) = ds[i].pid;
                DIAG_REC_STR(&iv, DIAG_REC_DSTATE, r, DS_WCHAN) = diag_rec_intern(strs, ds[i].wchan, strlen(ds[i].wchan));
                DIAG_REC_STR(&iv, DIAG_REC_DSTATE, r, DS_COMM) = diag_rec_intern(strs, "x", 1);
        }
        diag_rec_sort(&iv, DIAG_REC_DSTATE);
        for (size_t i = 0; i < 3; i++) {
                rows[i].blocked_ms = -1;
                rows[i].pss = 12345;    /* replay: unknown */
                rows[i].wait = "stale";
        }
        CHECK_INT(top_wait_new(&w, NULL), 0);
        top_wait_fill(w, &f, rows, 3, &stuck);
        CHECK_INT(rows[0].blocked_state, 'D');
        CHECK_INT(rows[0].blocked_ms, -1);
        CHECK_STR(rows[0].wait, "D: fuse_wait_answer (tid 4000001)");
        CHECK(rows[0].pss == DIAG_REC_NA);
        CHECK_INT(rows[1].blocked_state, 0);
        CHECK(rows[1].wait == NULL);
        /* the group: its second member's thread */
        CHECK_INT(rows[2].blocked_state, 'D');
        CHECK_STR(rows[2].wait, "D: io_schedule (tid 4000009)");
        CHECK(rows[2].pss == DIAG_REC_NA);
        CHECK_INT(stuck, 2);
        CHECK_INT(top_wait_scans(w), 0);
        /* BLOCKED only */
        rows[0].blocked_state = 0;
        top_wait_fill_blocked(w, &f, rows, 3);
        CHECK_INT(rows[0].blocked_state, 'D');
        CHECK_INT(rows[1].blocked_state, 0);
        top_wait_free(w);
        diag_rec_interval_free(&iv);
        diag_rec_strings_free(strs);
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: test-top-wait TOPWAITFIX DIAG-CHAIN\n");
                return 99;
        }
        fixture = argv[1];
        chain_tool = argv[2];
        atexit(kill_all);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGALRM, on_signal);
        alarm(50);

        test_replay();
        test_flock();
        test_mutex();
        test_cycle();
        test_sleepers();
        kill_all();
        for (size_t i = 0; i < nowned; i++)
                free(owned[i]);
        return TAP_DONE();
}
