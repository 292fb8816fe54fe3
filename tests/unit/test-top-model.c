/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top's model and rows. Hand-built intervals pushed into the model give exact
 * figures (CPU split, PSI, disk busy %, rates, growth over a minute, OOM kills, reset);
 * then real children read live with /proc as the oracle: a spinner, a toucher whose RSS
 * grows, a writer of a known number of bytes, five identical sleepers (one group row),
 * a child of a child (the tree). Sorting, filtering and the formatters.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/record.h"
#include "diag/util.h"
#include "tap.h"
#include "top.h"

#define NEAR(a, b, tol) (fabs((double) (a) - (double) (b)) <= (tol))
#define CHECK_NEAR(a, b, tol) do { double _x = (a), _y = (b); tap_run++; if (!NEAR(_x, _y, tol)) { \
        tap_failed++; fprintf(stderr, "%s:%d: %s == %g, expected %g\n", __FILE__, __LINE__, #a, _x, _y); } } while (0)

/* ---- hand-built intervals ---- */

struct hproc {
        pid_t pid, ppid;
        int64_t start, uid, utime, stime, rss, majflt, rd, wr, threads;
        char state;
        const char *comm, *cmd;
};

static struct diag_rec_strings *hs;

static void set_host(struct diag_rec_interval *iv, int col, int64_t v) {
        DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, col) = v;
}

/* An interval at t seconds (boottime; realtime 1e9 s later unless boot is false). */
static void mkiv(struct diag_rec_interval *iv, double t, bool boot) {
        diag_rec_interval_clear(iv);
        iv->boottime_ns = boot ? (int64_t) (t * 1e9) : 0;
        iv->realtime_ns = (int64_t) ((t + 1e9) * 1e9);
        if (diag_rec_add_row(iv, DIAG_REC_HOST) < 0)
                abort();
        for (int c = 0; c < H__N; c++)
                set_host(iv, c, 0);
        set_host(iv, H_NCPU, 2);
        set_host(iv, H_CLK_TCK, 100);
}

static void add_proc(struct diag_rec_interval *iv, const struct hproc *p) {
        ssize_t r = diag_rec_add_row(iv, DIAG_REC_PROC);
        if (r < 0)
                abort();
        DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_COMM) = diag_rec_intern(iv->strings, p->comm, strlen(p->comm));
        DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CMD) = diag_rec_intern(iv->strings, p->cmd, strlen(p->cmd));
        int64_t v[PR__N] = {
                [PR_PID] = p->pid, [PR_START] = p->start, [PR_PPID] = p->ppid, [PR_UID] = p->uid,
                [PR_STATE] = p->state ? p->state : 'S', [PR_UTIME] = p->utime, [PR_STIME] = p->stime,
                [PR_RSS] = p->rss, [PR_VSZ] = p->rss * 2, [PR_MINFLT] = 0, [PR_MAJFLT] = p->majflt,
                [PR_READ_BYTES] = p->rd, [PR_WRITE_BYTES] = p->wr, [PR_THREADS] = p->threads ? p->threads : 1,
        };
        memcpy(&DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0), v, sizeof(v));
}

static void add_disk(struct diag_rec_interval *iv, const char *name, int64_t io_ms, int64_t rd, int64_t wr) {
        ssize_t r = diag_rec_add_row(iv, DIAG_REC_DISK);
        if (r < 0)
                abort();
        DIAG_REC_STR(iv, DIAG_REC_DISK, r, DK_NAME) = diag_rec_intern(iv->strings, name, strlen(name));
        DIAG_REC_NUM(iv, DIAG_REC_DISK, r, DK_IO_MS) = io_ms;
        DIAG_REC_NUM(iv, DIAG_REC_DISK, r, DK_RD_IOS) = rd;
        DIAG_REC_NUM(iv, DIAG_REC_DISK, r, DK_WR_IOS) = wr;
}

static void add_oom_event(struct diag_rec_interval *iv) {
        ssize_t r = diag_rec_add_row(iv, DIAG_REC_EVENT);
        if (r < 0)
                abort();
        DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_KIND) = diag_rec_intern(iv->strings, DIAG_REC_EV_OOM,
                                                                       strlen(DIAG_REC_EV_OOM));
}

static const struct top_proc *find(const struct top_frame *f, pid_t pid) {
        for (size_t i = 0; f && i < f->nprocs; i++)
                if (f->procs[i].pid == pid)
                        return &f->procs[i];
        return NULL;
}

/* A model fed by top_model_push, and an interval of the test's interner to build. */
static struct top_model *replay_model(struct diag_rec_interval *iv) {
        struct top_model *m = NULL;
        struct top_model_opts o = { .live = false };
        diag_rec_interval_init(iv, hs);
        CHECK_INT(top_model_new(&m, &o), 0);
        if (!m)
                exit(99);
        return m;
}

static void test_host(void) {
        struct diag_rec_interval iv;
        struct top_model *m = replay_model(&iv);
        CHECK(top_model_frame(m) == NULL);
        CHECK(top_model_kmsg_fd(m) == -1);
        CHECK_INT(top_model_sample(m), -EINVAL);

        /* first interval: no rates */
        mkiv(&iv, 100, true);
        int64_t c0[] = { 1000, 0, 500, 8000, 100, 10, 10, 0 };
        for (int c = H_CPU_USER; c <= H_CPU_STEAL; c++)
                set_host(&iv, c, c0[c]);
        set_host(&iv, H_OOM_KILL, 3);
        set_host(&iv, H_LOAD1, 1500);
        set_host(&iv, H_MEM_TOTAL, 1 << 30);
        set_host(&iv, H_PSI_CPU_SOME, 5000000);
        set_host(&iv, H_PSI_MEM_FULL, 7000000);
        set_host(&iv, H_PGMAJFAULT, 40);
        add_disk(&iv, "sda", 1000, 100, 50);
        add_disk(&iv, "sdb", 0, 0, 0);
        add_proc(&iv, &(struct hproc) { .pid = 10, .start = 5, .utime = 100, .stime = 50, .rss = 100 << 20,
                                        .rd = 1000, .wr = 2000, .majflt = 7, .comm = "a", .cmd = "a -x" });
        add_proc(&iv, &(struct hproc) { .pid = 20, .start = 7, .rd = DIAG_REC_NA, .wr = 0, .comm = "b", .cmd = "" });
        add_oom_event(&iv);     /* before the model's time: not counted */
        CHECK_INT(top_model_push(m, &iv), 0);
        const struct top_frame *f = top_model_frame(m);
        CHECK(f != NULL);
        if (!f)
                goto out;
        CHECK_INT(f->h.interval_ms, 0);
        CHECK_NEAR(f->h.cpu_user, -1, 0);
        CHECK_NEAR(f->h.psi[0][0], -1, 0);
        CHECK_NEAR(f->h.disk_busy_pct, -1, 0);
        CHECK_NEAR(f->h.load[0], 1.5, 1e-9);
        CHECK_INT(f->h.oom_kills, 3);
        CHECK_INT(f->h.oom_kills_seen, 0);
        CHECK_INT(f->h.nprocs, 2);
        CHECK_INT(f->nprocs, 2);
        CHECK_NEAR(f->procs[0].cpu_pct, -1, 0);
        CHECK(!f->procs[0].is_new);
        CHECK_NEAR(f->procs[0].rss_growth, 0, 0);
        CHECK_STR(f->procs[0].cmd, "a -x");
        CHECK_STR(f->procs[1].comm, "b");

        /* 2 s later */
        mkiv(&iv, 102, true);
        int64_t c1[] = { 1100, 20, 540, 9800, 120, 20, 20, 0 };
        for (int c = H_CPU_USER; c <= H_CPU_STEAL; c++)
                set_host(&iv, c, c1[c]);
        set_host(&iv, H_OOM_KILL, 4);
        set_host(&iv, H_PSI_CPU_SOME, 5200000);
        set_host(&iv, H_PSI_MEM_FULL, 8000000);
        set_host(&iv, H_PGMAJFAULT, 240);
        set_host(&iv, H_PROCS_RUNNING, 2);
        set_host(&iv, H_NR_THREADS, 9);
        add_disk(&iv, "sda", 2000, 160, 90);
        add_disk(&iv, "sdb", 1500, 30, 10);
        add_proc(&iv, &(struct hproc) { .pid = 10, .start = 5, .utime = 250, .stime = 100, .rss = 130 << 20,
                                        .rd = 3000, .wr = 2000, .majflt = 27, .comm = "a", .cmd = "a -x" });
        add_proc(&iv, &(struct hproc) { .pid = 20, .start = 7, .rd = 500, .wr = 4000, .comm = "b", .cmd = "" });
        add_proc(&iv, &(struct hproc) { .pid = 30, .start = 190, .utime = 50, .comm = "c", .cmd = "c" });
        add_oom_event(&iv);
        if (diag_rec_add_row(&iv, DIAG_REC_DSTATE) < 0)
                abort();
        CHECK_INT(top_model_push(m, &iv), 0);
        f = top_model_frame(m);
        CHECK_INT(f->h.interval_ms, 2000);
        CHECK_NEAR(f->h.cpu_user, 6, 1e-9);
        CHECK_NEAR(f->h.cpu_system, 2, 1e-9);
        CHECK_NEAR(f->h.cpu_iowait, 1, 1e-9);
        CHECK_NEAR(f->h.cpu_other, 1, 1e-9);
        CHECK_NEAR(f->h.cpu_idle, 90, 1e-9);
        CHECK_NEAR(f->h.cpu_steal, 0, 1e-9);
        CHECK_NEAR(f->h.psi[0][0], 10, 1e-9);
        CHECK_NEAR(f->h.psi[1][1], 50, 1e-9);
        CHECK_NEAR(f->h.psi[2][0], 0, 1e-9);
        CHECK_STR(f->h.disk, "sdb");
        CHECK_NEAR(f->h.disk_busy_pct, 75, 1e-9);
        CHECK_NEAR(f->h.disk_iops, 20, 1e-9);
        CHECK_NEAR(f->h.majflt_s, 100, 1e-9);
        CHECK_INT(f->h.oom_kills_seen, 1);
        CHECK_INT(f->h.nthreads, 9);
        CHECK_INT(f->h.nrunning, 2);
        CHECK_INT(f->h.dstate_threads, 1);
        CHECK_INT(f->nprocs, 3);
        const struct top_proc *p = find(f, 10);
        CHECK(p && NEAR(p->cpu_pct, 100, 1e-9));
        CHECK(p && NEAR(p->read_s, 1000, 1e-9) && NEAR(p->write_s, 0, 1e-9) && NEAR(p->majflt_s, 10, 1e-9));
        CHECK(p && NEAR(p->rss_growth, (double) (30 << 20) / 2 * 60, 1));
        CHECK(p && !p->is_new);
        p = find(f, 20);
        CHECK(p && p->read_s == -1 && NEAR(p->write_s, 2000, 1e-9));
        p = find(f, 30);
        CHECK(p && p->is_new && p->cpu_pct == -1 && p->rss_growth == 0);

        /* more OOM events than the counter says: the larger */
        mkiv(&iv, 104, true);
        set_host(&iv, H_OOM_KILL, 4);
        add_oom_event(&iv);
        add_oom_event(&iv);
        CHECK_INT(top_model_push(m, &iv), 0);
        CHECK_INT(top_model_frame(m)->h.oom_kills_seen, 3);
        CHECK_NEAR(top_model_frame(m)->h.cpu_user, -1, 0);     /* counters went back */

        /* reset: rates and OOM counts start again */
        top_model_reset(m);
        CHECK(top_model_frame(m) == NULL);
        mkiv(&iv, 50, false);
        set_host(&iv, H_OOM_KILL, 9);
        add_proc(&iv, &(struct hproc) { .pid = 10, .start = 5, .utime = 0, .comm = "a", .cmd = "a -x" });
        CHECK_INT(top_model_push(m, &iv), 0);
        f = top_model_frame(m);
        CHECK_INT(f->h.oom_kills_seen, 0);
        CHECK_INT(f->h.interval_ms, 0);
        /* realtime only (boottime 0): the interval from realtime */
        mkiv(&iv, 55, false);
        set_host(&iv, H_OOM_KILL, 11);
        add_proc(&iv, &(struct hproc) { .pid = 10, .start = 5, .utime = 250, .comm = "a", .cmd = "a -x" });
        CHECK_INT(top_model_push(m, &iv), 0);
        f = top_model_frame(m);
        CHECK_INT(f->h.interval_ms, 5000);
        CHECK_INT(f->h.oom_kills_seen, 2);
        CHECK(f->nprocs == 1 && NEAR(f->procs[0].cpu_pct, 50, 1e-9));
        CHECK(f->iv && f->iv->t[DIAG_REC_PROC].nrows == 1);
        CHECK(f->replay);
out:
        top_model_free(m);
        diag_rec_interval_free(&iv);
}

/* Growth against the oldest interval of the last minute that has the process. */
static void test_growth(void) {
        struct diag_rec_interval iv;
        struct top_model *m = replay_model(&iv);
        const struct top_frame *f = NULL;
        for (int i = 0; i <= 14; i++) {
                mkiv(&iv, 5.0 * i, true);
                add_proc(&iv, &(struct hproc) { .pid = 10, .start = 1, .rss = (100 + i) << 20, .comm = "g", .cmd = "g" });
                if (i == 12 || i == 14)
                        add_proc(&iv, &(struct hproc) { .pid = 77, .start = 9, .rss = (int64_t) i << 20,
                                                        .comm = "n", .cmd = "n" });
                for (int k = 0; k < 200; k++)
                        add_proc(&iv, &(struct hproc) { .pid = 1000 + k, .start = 2, .rss = 1 << 20,
                                                        .comm = "s", .cmd = "s" });
                if (i >= 10)
                        add_proc(&iv, &(struct hproc) { .pid = 5000, .start = 3, .rss = (10 + 2 * (i - 10)) << 20,
                                                        .comm = "l", .cmd = "l" });
                if (i == 14)
                        add_proc(&iv, &(struct hproc) { .pid = 6000, .start = 4, .rss = 50 << 20, .comm = "o", .cmd = "o" });
                diag_rec_sort(&iv, DIAG_REC_PROC);
                CHECK_INT(top_model_push(m, &iv), 0);
                f = top_model_frame(m);
        }
        const struct top_proc *p = find(f, 10);
        CHECK(p && NEAR(p->rss_growth, 12 << 20, 1));          /* t=10 .. t=70 */
        p = find(f, 5000);
        CHECK(p && NEAR(p->rss_growth, (8 << 20) * 3, 1));     /* 8 MiB in 20 s */
        p = find(f, 77);
        CHECK(p && NEAR(p->rss_growth, (2 << 20) * 6, 1));     /* 2 MiB in 10 s, found by search */
        p = find(f, 6000);
        CHECK(p && p->rss_growth == 0 && p->is_new);
        p = find(f, 1100);
        CHECK(p && p->rss_growth == 0 && !p->is_new);

        /* 1 s steps past the ring's 64: still a minute */
        top_model_reset(m);
        for (int i = 0; i < 150; i++) {
                mkiv(&iv, 1000 + i, true);
                add_proc(&iv, &(struct hproc) { .pid = 10, .start = 1, .rss = (int64_t) (100 + i) << 20,
                                                .comm = "g", .cmd = "g" });
                CHECK_INT(top_model_push(m, &iv), 0);
        }
        f = top_model_frame(m);
        p = find(f, 10);
        CHECK(p && NEAR(p->rss_growth, 60 << 20, 1));
        top_model_free(m);
        diag_rec_interval_free(&iv);
}

/* Processes come and go with command lines of their own: the interner is rebuilt from
 * the ring rather than growing for ever, and the ring's figures survive it. */
static void test_compact(void) {
        struct diag_rec_interval iv;
        struct top_model *m = replay_model(&iv);
        char cmd[64];
        for (int i = 0; i < 260; i++) {
                mkiv(&iv, i, true);
                add_proc(&iv, &(struct hproc) { .pid = 10, .start = 1, .rss = (int64_t) (100 + i) << 20,
                                                .utime = 50 * i, .comm = "stable", .cmd = "stable --keep" });
                for (int k = 0; k < 300; k++) {
                        snprintf(cmd, sizeof(cmd), "job %d of %d", k, i);
                        add_proc(&iv, &(struct hproc) { .pid = 1000 + k, .start = 10 + i, .comm = "job", .cmd = cmd });
                }
                CHECK_INT(top_model_push(m, &iv), 0);
                diag_rec_strings_reset(hs);     /* the test's own interner stays small */
        }
        const struct top_frame *f = top_model_frame(m);
        size_t count = diag_rec_strings_count(f->iv->strings);
        printf("interner after 78,000 command lines: %zu strings\n", count);
        CHECK(count < 65536);
        const struct top_proc *p = find(f, 10);
        CHECK(p && NEAR(p->rss_growth, 60 << 20, 1) && NEAR(p->cpu_pct, 50, 1e-9));
        CHECK_STR(p ? p->cmd : NULL, "stable --keep");
        p = find(f, 1299);
        CHECK_STR(p ? p->cmd : NULL, "job 299 of 259");
        CHECK(p && p->is_new);
        top_model_free(m);
        diag_rec_interval_free(&iv);
}

static void check_order(const struct top_rows *rows, const pid_t *want, size_t n, const char *what) {
        bool ok = rows->n == n;
        for (size_t i = 0; ok && i < n; i++)
                ok = rows->rows[i].p->pid == want[i];
        CHECK(ok);
        if (!ok) {
                fprintf(stderr, "  %s: got", what);
                for (size_t i = 0; i < rows->n; i++)
                        fprintf(stderr, " %d/%u", (int) rows->rows[i].p->pid, rows->rows[i].depth);
                fprintf(stderr, "\n");
        }
}

#define ORDER(rows, what, ...) do { static const pid_t _w[] = { __VA_ARGS__ }; \
        check_order(rows, _w, ELEMENTSOF(_w), what); } while (0)

static void test_rows(void) {
        static const struct hproc ps[] = {
                { .pid = 1, .ppid = 0, .start = 1, .uid = 0, .comm = "systemd", .cmd = "/sbin/init", .rss = 9 << 20 },
                { .pid = 2, .ppid = 0, .start = 1, .uid = 0, .comm = "kthreadd", .cmd = "" },
                { .pid = 3, .ppid = 2, .start = 2, .uid = 0, .comm = "kworker/0:1", .cmd = "" },
                { .pid = 100, .ppid = 1, .start = 50, .uid = 1000, .comm = "bash", .cmd = "bash", .rss = 5 << 20 },
                { .pid = 200, .ppid = 100, .start = 300, .uid = 1000, .comm = "python3", .cmd = "python3 worker.py",
                  .rss = 40 << 20, .threads = 4 },
                { .pid = 201, .ppid = 100, .start = 250, .uid = 1000, .comm = "python3", .cmd = "python3 worker.py",
                  .rss = 50 << 20, .threads = 2 },
                { .pid = 202, .ppid = 100, .start = 300, .uid = 1000, .comm = "python3", .cmd = "python3 worker.py",
                  .rss = 30 << 20, .threads = 1 },
                { .pid = 300, .ppid = 201, .start = 400, .uid = 1000, .comm = "sh", .cmd = "sh -c x", .rss = 1 << 20 },
                { .pid = 400, .ppid = 999, .start = 500, .uid = 1000, .comm = "orphan", .cmd = "orphan", .rss = 2 << 20 },
        };
        static const int64_t cpu[] = { 0, 0, 0, 50, 10, 30, 5, 20, 1 };   /* ticks in 1 s at 100 Hz: % */
        struct diag_rec_interval iv;
        struct top_model *m = replay_model(&iv);
        for (int k = 0; k < 2; k++) {
                mkiv(&iv, 10 + k, true);
                for (size_t i = 0; i < ELEMENTSOF(ps); i++) {
                        struct hproc p = ps[i];
                        p.utime = k * cpu[i];
                        p.wr = k * cpu[i] * 100;
                        add_proc(&iv, &p);
                }
                CHECK_INT(top_model_push(m, &iv), 0);
        }
        const struct top_frame *f = top_model_frame(m);
        struct top_rows rows = { 0 };
        struct top_rows_opts ro = { .sort = TOP_COL_CPU };

        static const struct {
                enum top_col col;
                bool asc;
                pid_t want[9];
        } sorts[] = {
                { TOP_COL_CPU, false, { 100, 201, 300, 200, 202, 400, 1, 2, 3 } },
                { TOP_COL_CPU, true, { 1, 2, 3, 400, 202, 200, 300, 201, 100 } },
                { TOP_COL_WRITE, false, { 100, 201, 300, 200, 202, 400, 1, 2, 3 } },
                { TOP_COL_RSS, false, { 201, 200, 202, 1, 100, 400, 300, 2, 3 } },
                { TOP_COL_RSS, true, { 2, 3, 300, 400, 100, 1, 202, 200, 201 } },
                { TOP_COL_THREADS, false, { 200, 201, 1, 2, 3, 100, 202, 300, 400 } },
                { TOP_COL_PID, true, { 1, 2, 3, 100, 200, 201, 202, 300, 400 } },
                { TOP_COL_PID, false, { 400, 300, 202, 201, 200, 100, 3, 2, 1 } },
                { TOP_COL_CMD, true, { 1, 100, 2, 3, 400, 200, 201, 202, 300 } },
                { TOP_COL_CMD, false, { 300, 200, 201, 202, 400, 3, 2, 100, 1 } },
        };
        for (size_t i = 0; i < ELEMENTSOF(sorts); i++) {
                ro = (struct top_rows_opts) { .sort = sorts[i].col, .ascending = sorts[i].asc };
                CHECK_INT(top_rows_build(&rows, f, &ro), 0);
                check_order(&rows, sorts[i].want, 9, top_col_name(sorts[i].col));
        }
        ro = (struct top_rows_opts) { .sort = TOP_COL_CPU };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK(rows.n && rows.rows[0].blocked_ms == -1 && rows.rows[0].pss == DIAG_REC_NA && !rows.rows[0].wait);
        CHECK(rows.n && rows.rows[0].count == 1 && NEAR(rows.rows[0].cpu_pct, 50, 1e-9));
        ro.sort = TOP_COL_USER;
        ro.ascending = true;
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        bool sorted = rows.n == 9;
        for (size_t i = 1; i < rows.n; i++) {
                char a[64];
                snprintf(a, sizeof(a), "%s", top_user_name(rows.rows[i - 1].p->uid));
                int c = strcmp(a, top_user_name(rows.rows[i].p->uid));
                sorted = sorted && (c < 0 || (c == 0 && rows.rows[i - 1].p->pid < rows.rows[i].p->pid));
        }
        CHECK(sorted);

        /* filters */
        ro = (struct top_rows_opts) { .sort = TOP_COL_PID, .ascending = true };
        ro.filter.hide_kernel = true;
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ORDER(&rows, "no kernel", 1, 100, 200, 201, 202, 300, 400);
        ro.filter = (struct top_filter) { .text = "WORKER" };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ORDER(&rows, "text", 3, 200, 201, 202);
        ro.filter = (struct top_filter) { .have_uid = true, .uid = 1000 };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ORDER(&rows, "uid", 100, 200, 201, 202, 300, 400);
        static const pid_t some[] = { 3, 201, 12345 };
        ro.filter = (struct top_filter) { .pids = some, .npids = 3 };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ORDER(&rows, "pids", 3, 201);
        ro.filter = (struct top_filter) { .text = "no such thing" };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK_INT(rows.n, 0);

        /* groups */
        ro = (struct top_rows_opts) { .sort = TOP_COL_CPU, .group = true, .tree = true };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ORDER(&rows, "groups", 100, 201, 300, 400, 1, 2, 3);
        const struct top_row *g = rows.n > 1 ? &rows.rows[1] : NULL;
        CHECK(g && g->count == 3 && NEAR(g->cpu_pct, 45, 1e-9) && g->rss == 120 << 20 && g->threads == 7);
        CHECK(g && g->start_min == 250 && g->start_max == 300 && NEAR(g->write_s, 4500, 1e-9) && g->depth == 0);
        ro.sort = TOP_COL_RSS;
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK(rows.n == 7 && rows.rows[0].count == 3);

        /* tree, siblings by CPU */
        ro = (struct top_rows_opts) { .sort = TOP_COL_CPU, .tree = true };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ORDER(&rows, "tree", 400, 1, 100, 201, 300, 200, 202, 2, 3);
        static const unsigned depth[] = { 0, 0, 1, 2, 3, 2, 2, 0, 1 };
        bool dok = rows.n == 9;
        for (size_t i = 0; dok && i < rows.n; i++)
                dok = rows.rows[i].depth == depth[i];
        CHECK(dok);
        ro.filter = (struct top_filter) { .have_uid = true, .uid = 1000 };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ORDER(&rows, "tree uid", 100, 201, 300, 200, 202, 400);
        CHECK(rows.n == 6 && rows.rows[0].depth == 0 && rows.rows[2].depth == 2 && rows.rows[5].depth == 0);

        /* WAIT and BLOCKED as wait.c fills them, then sorted again */
        ro = (struct top_rows_opts) { .sort = TOP_COL_WAIT };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        for (size_t i = 0; i < rows.n; i++) {
                struct top_row *r = &rows.rows[i];
                if (r->p->pid == 200)
                        r->blocked_ms = 1000, r->wait = "futex <- held by 201";
                if (r->p->pid == 300)
                        r->blocked_ms = 5000, r->wait = "read pipe";
                if (r->p->pid == 202)
                        r->blocked_ms = 9000;
        }
        top_rows_sort(&rows, &ro);
        ORDER(&rows, "wait", 300, 200, 202, 1, 2, 3, 100, 201, 400);
        ro.sort = TOP_COL_BLOCKED;
        top_rows_sort(&rows, &ro);
        ORDER(&rows, "blocked", 202, 300, 200, 1, 2, 3, 100, 201, 400);
        ro.ascending = true;
        top_rows_sort(&rows, &ro);
        ORDER(&rows, "blocked asc", 1, 2, 3, 100, 201, 400, 200, 300, 202);
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK(rows.n == 9 && rows.rows[8].blocked_ms == -1 && !rows.rows[8].wait);

        CHECK_INT(top_rows_build(&rows, NULL, &ro), 0);
        CHECK_INT(rows.n, 0);
        top_rows_free(&rows);
        top_model_free(m);
        diag_rec_interval_free(&iv);
}

static void test_fmt(void) {
        char b[16];
        top_fmt_bytes(b, sizeof(b), 812 * 1024);
        CHECK_STR(b, "812K");
        top_fmt_bytes(b, sizeof(b), 1.2 * 1024 * 1024);
        CHECK_STR(b, "1.2M");
        top_fmt_bytes(b, sizeof(b), 3.4 * 1024 * 1024 * 1024);
        CHECK_STR(b, "3.4G");
        top_fmt_bytes(b, sizeof(b), 500);
        CHECK_STR(b, "500B");
        top_fmt_bytes(b, sizeof(b), 1023.99 * 1024 * 1024);
        CHECK(strlen(b) <= 6);
        top_fmt_bytes(b, sizeof(b), -1);
        CHECK_STR(b, "-");
        top_fmt_bytes(b, sizeof(b), (double) DIAG_REC_NA);
        CHECK_STR(b, "-");
        top_fmt_bytes(b, sizeof(b), NAN);
        CHECK_STR(b, "-");
        top_fmt_ms(b, sizeof(b), 4000);
        CHECK_STR(b, "4.0s");
        top_fmt_ms(b, sizeof(b), 350);
        CHECK_STR(b, "0.3s");
        top_fmt_ms(b, sizeof(b), 123000);
        CHECK_STR(b, "2m03s");
        top_fmt_ms(b, sizeof(b), 3720000);
        CHECK_STR(b, "1h02m");
        top_fmt_ms(b, sizeof(b), (3 * 86400 + 4 * 3600) * 1000LL);
        CHECK_STR(b, "3d04h");
        top_fmt_ms(b, sizeof(b), -1);
        CHECK_STR(b, "-");
        char small[3];
        top_fmt_ms(small, sizeof(small), 123000);       /* truncated, not overrun */
        CHECK_INT(strlen(small), 2);

        CHECK_STR(top_col_name(TOP_COL_CPU), "CPU%");
        CHECK_STR(top_col_name(TOP_COL_GROWTH), "GROW/m");
        for (int c = 0; c < TOP_COL__N; c++)
                CHECK_INT(top_col_parse(top_col_name(c)), c);
        CHECK_INT(top_col_parse("cpu"), TOP_COL_CPU);
        CHECK_INT(top_col_parse("Command"), TOP_COL_CMD);
        CHECK_INT(top_col_parse("threads"), TOP_COL_THREADS);
        CHECK_INT(top_col_parse("majflt"), TOP_COL_MAJFLT);
        CHECK_INT(top_col_parse("nonsense"), -1);
        CHECK_INT(top_col_parse(""), -1);

        CHECK_STR(top_user_name(0), "root");
        CHECK_STR(top_user_name(3999999), "3999999");
        CHECK_STR(top_user_name(0), "root");
        uid_t u = 77;
        CHECK_INT(top_user_parse("root", &u), 0);
        CHECK_INT(u, 0);
        CHECK_INT(top_user_parse("4242", &u), 0);
        CHECK_INT(u, 4242);
        CHECK_INT(top_user_parse("no-such-user-here", &u), -1);
        CHECK_INT(top_user_parse("", &u), -1);
        CHECK_INT(top_user_parse("-3", &u), -1);
}

/* 1,000 processes: a frame, then rows (plain, grouped, tree): well under a millisecond
 * each in a release build; the bound here is loose for the sanitizers. */
static void test_speed(void) {
        struct diag_rec_interval iv;
        struct top_model *m = replay_model(&iv);
        char cmd[64];
        uint64_t push_ns = 0;
        for (int k = 0; k < 3; k++) {
                mkiv(&iv, 2.0 * k, true);
                for (int i = 0; i < 1000; i++) {
                        snprintf(cmd, sizeof(cmd), "worker --id %d", i % 40);
                        add_proc(&iv, &(struct hproc) { .pid = 100 + i, .ppid = i ? 100 + (i - 1) / 3 : 1, .start = i,
                                                        .utime = k * (i % 17), .rss = (int64_t) (i + k) << 16,
                                                        .comm = "worker", .cmd = cmd });
                }
                uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC);
                CHECK_INT(top_model_push(m, &iv), 0);
                push_ns = diag_now_ns(CLOCK_MONOTONIC) - t0;
        }
        const struct top_frame *f = top_model_frame(m);
        struct top_rows rows = { 0 };
        struct top_rows_opts ro[] = {
                { .sort = TOP_COL_CPU }, { .sort = TOP_COL_CMD, .group = true }, { .sort = TOP_COL_RSS, .tree = true },
        };
        uint64_t best[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
        for (int rep = 0; rep < 5; rep++)
                for (int i = 0; i < 3; i++) {
                        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC);
                        CHECK_INT(top_rows_build(&rows, f, &ro[i]), 0);
                        best[i] = MIN(best[i], diag_now_ns(CLOCK_MONOTONIC) - t0);
                }
        CHECK_INT(rows.n, 1000);
        CHECK(rows.n == 1000 && rows.rows[0].p->pid == 100 && rows.rows[1].depth == 1);
        CHECK_INT(top_rows_build(&rows, f, &ro[1]), 0);
        CHECK(rows.n == 40 && rows.rows[0].count == 25);
        printf("1000 processes: push+frame %.0f us, rows %.0f us, grouped %.0f us, tree %.0f us\n",
               push_ns / 1e3, best[0] / 1e3, best[1] / 1e3, best[2] / 1e3);
        CHECK(push_ns < 50000000 && best[0] < 20000000 && best[1] < 20000000 && best[2] < 20000000);
        top_rows_free(&rows);
        top_model_free(m);
        diag_rec_interval_free(&iv);
}

/* ---- live, against real children ---- */

#define NSLEEP 5
#define TOUCH_STEPS 12
#define WRITE_BYTES (8 << 20)

static pid_t kids[16];
static size_t nkids;

static void kill_kids(void) {
        for (size_t i = 0; i < nkids; i++)
                if (kids[i] > 0)
                        kill(kids[i], SIGKILL);
        /* this process is a subreaper: the grandchild comes back here too */
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
        nkids = 0;
}

static void on_alarm(int sig) {
        (void) sig;
        for (size_t i = 0; i < nkids; i++)
                if (kids[i] > 0)
                        kill(kids[i], SIGKILL);
        static const char msg[] = "test-top-model: timed out\n";
        (void) !write(2, msg, sizeof(msg) - 1);
        _exit(99);
}

static pid_t spawn(void) {
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                kill_kids();
                exit(99);
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                return 0;
        }
        kids[nkids++] = pid;
        return pid;
}

static void wait_byte(int fd) {
        char c;
        while (read(fd, &c, 1) < 0 && errno == EINTR)
                ;
}

static void put_byte(int fd) {
        (void) !write(fd, "x", 1);
}

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* A field of /proc/PID/status in bytes ("VmRSS"), -1 when unreadable. */
static long long status_kb(pid_t pid, const char *key) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        FILE *f = fopen(path, "re");
        long long v = -1;
        size_t kl = strlen(key);
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, key, kl) == 0 && line[kl] == ':')
                        v = strtoll(line + kl + 1, NULL, 10) * 1024;
        if (f)
                fclose(f);
        return v;
}

/* write_bytes of /proc/PID/io, -1 when unreadable. */
static long long io_write_bytes(pid_t pid) {
        char path[64], line[128];
        snprintf(path, sizeof(path), "/proc/%d/io", (int) pid);
        FILE *f = fopen(path, "re");
        long long v = -1;
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "write_bytes:", 12) == 0)
                        v = strtoll(line + 12, NULL, 10);
        if (f)
                fclose(f);
        return v;
}

static void spinner(void) {
        volatile unsigned long x = 0;
        for (;;)
                x++;
}

static char *volatile touched[TOUCH_STEPS];      /* kept: the stores are not dead */

static void toucher(int go, int done) {
        wait_byte(go);
        for (int i = 0; i < TOUCH_STEPS; i++) {
                touched[i] = malloc(8 << 20);
                if (!touched[i])
                        _exit(1);
                memset(touched[i], i + 1, 8 << 20);
                sleep_ms(100);
        }
        put_byte(done);
        pause();
        _exit(0);
}

static void writer(int go, int done, const char *path) {
        static char buf[1 << 16];
        memset(buf, 'w', sizeof(buf));
        wait_byte(go);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        for (size_t n = 0; fd >= 0 && n < WRITE_BYTES; n += sizeof(buf))
                if (write(fd, buf, sizeof(buf)) != (ssize_t) sizeof(buf))
                        break;
        /* the sampler reads /proc/PID/io again only for a process that used CPU since
         * (or every few intervals): make sure this one shows at least a tick */
        uint64_t c0 = diag_now_ns(CLOCK_THREAD_CPUTIME_ID);
        while (diag_now_ns(CLOCK_THREAD_CPUTIME_ID) - c0 < 50000000)
                ;
        put_byte(done);
        pause();
        _exit(0);
}

static long long meminfo_total(void) {
        char line[128];
        long long v = -1;
        FILE *f = fopen("/proc/meminfo", "re");
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "MemTotal:", 9) == 0)
                        v = strtoll(line + 9, NULL, 10) * 1024;
        if (f)
                fclose(f);
        return v;
}

static size_t count_rows(const struct top_rows *rows, pid_t pid) {
        size_t n = 0;
        for (size_t i = 0; i < rows->n; i++)
                n += rows->rows[i].p->pid == pid;
        return n;
}

static ssize_t row_index(const struct top_rows *rows, pid_t pid) {
        for (size_t i = 0; i < rows->n; i++)
                if (rows->rows[i].p->pid == pid)
                        return (ssize_t) i;
        return -1;
}

/* utime + stime of /proc/PID/stat, -1 when unreadable. */
static long long cpu_ticks(pid_t pid) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        ssize_t n = diag_read_small_at(AT_FDCWD, path, buf, sizeof(buf));
        char *p = n > 0 ? strrchr(buf, ')') : NULL;
        long long ut = -1, st = -1;
        for (int field = 2; p && *p && field <= 15; field++) {
                if (field == 14)
                        ut = strtoll(p, NULL, 10);
                if (field == 15)
                        st = strtoll(p, NULL, 10);
                p = strchr(p + 1, ' ');
        }
        return ut >= 0 && st >= 0 ? ut + st : -1;
}

static bool cmdline_is(pid_t pid, const char *want) {
        char path[64], buf[256];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        ssize_t n = diag_read_small_at(AT_FDCWD, path, buf, sizeof(buf));
        for (ssize_t i = 0; i + 1 < n; i++)
                if (!buf[i])
                        buf[i] = ' ';
        return n > 0 && strncmp(buf, want, strlen(want)) == 0;
}

static uint64_t ms_since(uint64_t t0) {
        return (diag_now_ns(CLOCK_BOOTTIME) - t0) / 1000000;
}

static void test_live(void) {
        int tgo[2], tdone[2], wgo[2], wdone[2], gp[2];
        char dir[] = "top-model-XXXXXX", path[64], arg[32], cmd[64];
        if (pipe(tgo) < 0 || pipe(tdone) < 0 || pipe(wgo) < 0 || pipe(wdone) < 0 || pipe(gp) < 0 || !mkdtemp(dir)) {
                perror("setup");
                exit(99);
        }
        snprintf(path, sizeof(path), "%s/written", dir);
        snprintf(arg, sizeof(arg), "9%06d", (int) getpid() % 1000000);
        snprintf(cmd, sizeof(cmd), "sleep %s", arg);

        pid_t spin = spawn();
        if (!spin)
                spinner();
        pid_t touch = spawn();
        if (!touch)
                toucher(tgo[0], tdone[1]);
        pid_t wr = spawn();
        if (!wr)
                writer(wgo[0], wdone[1], path);
        pid_t sleepers[NSLEEP];
        for (int i = 0; i < NSLEEP; i++) {
                sleepers[i] = spawn();
                if (!sleepers[i]) {
                        execlp("sleep", "sleep", arg, (char *) NULL);
                        _exit(127);
                }
        }
        pid_t mid = spawn();
        if (!mid) {
                pid_t g = fork();
                if (g == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        pause();
                        _exit(0);
                }
                (void) !write(gp[1], &g, sizeof(g));
                pause();
                _exit(0);
        }
        pid_t grand = -1;
        if (read(gp[0], &grand, sizeof(grand)) != sizeof(grand) || grand <= 0) {
                fprintf(stderr, "no grandchild\n");
                kill_kids();
                exit(99);
        }
        kids[nkids++] = grand;
        for (int i = 0; i < NSLEEP; i++)
                for (int k = 0; k < 200 && !cmdline_is(sleepers[i], cmd); k++)
                        sleep_ms(10);

        struct top_model *m = NULL;
        struct top_model_opts o = { .live = true };
        CHECK_INT(top_model_new(&m, &o), 0);
        if (!m)
                goto out;
        CHECK(top_model_kmsg_fd(m) == -1);
        uint64_t t0 = diag_now_ns(CLOCK_BOOTTIME);
        CHECK_INT(top_model_sample(m), 0);
        const struct top_frame *f = top_model_frame(m);
        CHECK(f && f->h.cpu_user == -1 && !f->replay);
        const struct top_proc *p = f ? find(f, spin) : NULL;
        CHECK(p && p->cpu_pct == -1);
        put_byte(tgo[1]);
        sleep_ms(1000);
        uint64_t t1 = diag_now_ns(CLOCK_BOOTTIME);
        CHECK_INT(top_model_sample(m), 0);
        long long spin0 = cpu_ticks(spin);
        long long io0 = io_write_bytes(wr);
        put_byte(wgo[1]);
        wait_byte(wdone[0]);
        long long io1 = io_write_bytes(wr);
        wait_byte(tdone[0]);    /* its RSS stays put from now on */
        uint64_t el = ms_since(t1);
        sleep_ms(el < 1000 ? (long) (1000 - el) : 0);
        uint64_t ts = diag_now_ns(CLOCK_MONOTONIC);
        CHECK_INT(top_model_sample(m), 0);
        long long spin1 = cpu_ticks(spin);
        uint64_t sample_us = (diag_now_ns(CLOCK_MONOTONIC) - ts) / 1000;
        long long vmrss = status_kb(touch, "VmRSS");
        f = top_model_frame(m);
        if (!f)
                goto out;
        printf("live: %zu processes, sample+frame %" PRIu64 " us, interval %u ms, %" PRIu64 " ms in all\n",
               f->nprocs, sample_us, f->h.interval_ms, ms_since(t0));

        /* header */
        CHECK(f->h.interval_ms >= 900 && f->h.interval_ms < 5000);
        double sum = f->h.cpu_user + f->h.cpu_system + f->h.cpu_iowait + f->h.cpu_steal + f->h.cpu_other +
                     f->h.cpu_idle;
        CHECK_NEAR(sum, 100, 0.5);
        CHECK(f->h.cpu_user > 0);
        CHECK_INT(f->h.mem_total, meminfo_total());
        CHECK(f->h.nprocs >= nkids && f->h.nprocs == f->nprocs && f->h.ncpu >= 1);
        CHECK(f->h.psi[0][0] == -1 || (f->h.psi[0][0] >= 0 && f->h.psi[0][0] <= 100));
        CHECK(find(f, getpid()) != NULL);

        /* the spinner, the toucher, the writer */
        p = find(f, spin);
        CHECK(p && p->cpu_pct >= 0 && p->cpu_pct < 120 && !p->is_new && p->state == 'R');
        /* the oracle: its ticks read by the test beside the samples; a spinner that got less
         * than a third of a CPU means a machine too busy for the absolute bound */
        double oracle = spin0 >= 0 && spin1 >= spin0 ?
                        (double) (spin1 - spin0) / (double) sysconf(_SC_CLK_TCK) / (f->h.interval_ms / 1000.0) * 100 : -1;
        if (p)
                printf("spinner: %.1f%% CPU, /proc says %.1f%%\n", p->cpu_pct, oracle);
        CHECK(p && oracle >= 0 && NEAR(p->cpu_pct, oracle, 10));
        if (oracle >= 35)
                CHECK(p && p->cpu_pct > 30);
        else
                printf("# the spinner got %.1f%% of a CPU: the machine is busy, no absolute check\n", oracle);
        p = find(f, touch);
        CHECK(p && p->rss_growth > 0);
        CHECK(p && vmrss > 0 && NEAR(p->rss, vmrss, MAX(vmrss / 20, 4 << 20)));
        if (p)
                printf("toucher: rss %lld (VmRSS %lld), growth %.0f/min\n", (long long) p->rss, vmrss, p->rss_growth);
        p = find(f, wr);
        if (io0 < 0 || io1 < 0) {
                printf("# skipped the write check: /proc/%d/io not readable\n", (int) wr);
        } else if (io1 - io0 < WRITE_BYTES) {
                printf("# skipped the write check: %lld of %d bytes accounted (a file system without it)\n",
                       io1 - io0, WRITE_BYTES);
        } else {
                double want = (double) (io1 - io0) / (f->h.interval_ms / 1000.0);
                CHECK(p && NEAR(p->write_s, want, want / 10));
                if (p)
                        printf("writer: %.0f B/s, expected %.0f\n", p->write_s, want);
        }

        /* the sleepers: filtered by text, folded into one group, by pid, by uid */
        struct top_rows rows = { 0 };
        char upper[64];
        snprintf(upper, sizeof(upper), "SLEEP %s", arg);
        struct top_rows_opts ro = { .sort = TOP_COL_PID, .ascending = true, .filter = { .text = upper } };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK_INT(rows.n, NSLEEP);
        for (int i = 0; i < NSLEEP; i++)
                CHECK_INT(count_rows(&rows, sleepers[i]), 1);
        ro.group = true;
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK_INT(rows.n, 1);
        if (rows.n == 1) {
                const struct top_row *g = &rows.rows[0];
                CHECK_INT(g->count, NSLEEP);
                CHECK_STR(g->p->cmd, cmd);
                CHECK(g->start_min <= g->start_max && g->p->start == g->start_min);
                CHECK(g->rss > 0 && g->threads == NSLEEP);
        }
        ro = (struct top_rows_opts) { .sort = TOP_COL_CPU, .filter = { .pids = &sleepers[2], .npids = 1 } };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK(rows.n == 1 && rows.rows[0].p->pid == sleepers[2]);
        ro = (struct top_rows_opts) { .sort = TOP_COL_CPU, .filter = { .have_uid = true, .uid = getuid() } };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        bool all = true;
        for (size_t i = 0; i < nkids; i++)
                all = all && count_rows(&rows, kids[i]) == 1;
        CHECK(all);
        for (size_t i = 0; i < rows.n; i++)
                all = all && rows.rows[i].p->uid == getuid();
        CHECK(all);
        CHECK(rows.n && rows.rows[0].cpu_pct >= rows.rows[rows.n - 1].cpu_pct);
        ro.filter.uid = getuid() + 12345;
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK(count_rows(&rows, spin) == 0 && count_rows(&rows, sleepers[0]) == 0);

        /* the child of a child */
        pid_t pair[] = { mid, grand };
        ro = (struct top_rows_opts) { .sort = TOP_COL_PID, .tree = true, .filter = { .pids = pair, .npids = 2 } };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        CHECK(rows.n == 2 && rows.rows[0].p->pid == mid && rows.rows[0].depth == 0 &&
              rows.rows[1].p->pid == grand && rows.rows[1].depth == 1);
        ro.filter = (struct top_filter) { 0 };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        ssize_t im = row_index(&rows, mid), ig = row_index(&rows, grand), is = row_index(&rows, getpid());
        CHECK(im >= 0 && ig == im + 1 && rows.rows[ig].depth == rows.rows[im].depth + 1);
        CHECK(is >= 0 && is < im && rows.rows[im].depth == rows.rows[is].depth + 1);
        CHECK_INT(rows.n, f->nprocs);

        ts = diag_now_ns(CLOCK_MONOTONIC);
        ro = (struct top_rows_opts) { .sort = TOP_COL_CPU };
        CHECK_INT(top_rows_build(&rows, f, &ro), 0);
        printf("live rows: %" PRIu64 " us\n", (diag_now_ns(CLOCK_MONOTONIC) - ts) / 1000);
        top_rows_free(&rows);
out:
        top_model_free(m);
        kill_kids();
        unlink(path);
        rmdir(dir);
}

int main(void) {
        hs = diag_rec_strings_new();
        if (!hs)
                return 99;
        test_fmt();
        test_host();
        test_growth();
        test_compact();
        test_rows();
        test_speed();
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                perror("PR_SET_CHILD_SUBREAPER");
        signal(SIGALRM, on_alarm);
        alarm(50);
        test_live();
        alarm(0);
        diag_rec_strings_free(hs);
        return TAP_DONE();
}
