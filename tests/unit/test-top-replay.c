/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top's replay and batch output over a recording written with the recorder's own
 * codec and store: synthetic intervals with known values (a process at exactly 50 %
 * CPU, one growing 1 MiB an interval with 2 major faults a second), an OOM kill, a
 * trigger with a snapshot, a gap; the same recording with a byte flipped.
 *
 *   test-top-replay                  the checks
 *   test-top-replay --bench DIR      time each key over the recording in DIR (bench/recgen)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag/recstore.h"
#include "tap.h"
#include "top.h"

#define N 120                   /* intervals of 5 s: ten minutes */
#define GAP_FROM 80             /* intervals 80..83 not recorded */
#define GAP_TO 84
#define OOM_AT 20
#define TRIG_AT 30
#define KEY_EVERY 12            /* a key interval a minute, as the recorder does */
#define PER_FRAME 2             /* intervals a frame (the recorder's flush every 10 s) */
#define T0 ((int64_t) 1796400000 * 1000000000)
#define BT0 ((int64_t) 1000 * 1000000000)
#define S (1000000000LL)
#define MiB (1024LL * 1024)
#define SNAP_PATH "/var/lib/diagkit/record/snap-20261204-171550"

static int64_t rt_of(int i) {
        return T0 + (int64_t) i * 5 * S;
}

/* The index (in the recording) of interval i: those of the gap are missing. */
static int index_of(int i) {
        return i < GAP_FROM ? i : i - (GAP_TO - GAP_FROM);
}

static void str(struct diag_rec_interval *iv, enum diag_rec_table_id t, size_t r, unsigned c, const char *v) {
        DIAG_REC_STR(iv, t, r, c) = diag_rec_intern(iv->strings, v, strlen(v));
}

static void proc(struct diag_rec_interval *iv, int64_t pid, const char *comm, const char *cmd, int64_t cpu,
                 int64_t rss, int64_t majflt) {
        size_t r = (size_t) diag_rec_add_row(iv, DIAG_REC_PROC);
        int64_t *n = &DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0);

        const int64_t v[PR__N] = {
                [PR_PID] = pid, [PR_START] = pid * 10, [PR_PPID] = 1, [PR_UID] = 1000, [PR_STATE] = 'S',
                [PR_UTIME] = cpu, [PR_RSS] = rss, [PR_VSZ] = rss * 2, [PR_MAJFLT] = majflt, [PR_THREADS] = 3,
        };

        memcpy(n, v, sizeof v);
        str(iv, DIAG_REC_PROC, r, PR_COMM, comm);
        str(iv, DIAG_REC_PROC, r, PR_CMD, cmd);
        str(iv, DIAG_REC_PROC, r, PR_CGROUP, "/system.slice/x.service");
}

/* An event row: the strings in EV_KIND..EV_PATH order, then time, pid and rss. */
static void event(struct diag_rec_interval *iv, const char *const strs[EV__NS], const int64_t nums[3]) {
        size_t r = (size_t) diag_rec_add_row(iv, DIAG_REC_EVENT);

        for (unsigned c = 0; c < EV__NS; c++)
                str(iv, DIAG_REC_EVENT, r, c, strs[c]);
        DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_TIME_NS) = nums[0];
        DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_PID) = nums[1];
        DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_RSS) = nums[2];
}

/* Interval i: "spin" (pid 100) 250 ticks an interval = 50 % of a CPU at 100 Hz; "leak"
 * (pid 200) 100 MiB + i MiB (12 MiB a minute), 10 major faults an interval (2/s). */
static void build(struct diag_rec_interval *iv, int i) {
        diag_rec_interval_clear(iv);
        iv->seq = (uint64_t) i;
        iv->realtime_ns = rt_of(i);
        iv->boottime_ns = BT0 + (int64_t) i * 5 * S;
        iv->interval_ms = 5000;
        diag_rec_add_row(iv, DIAG_REC_HOST);
        {
                /* 8 CPUs at 100 Hz: 4000 ticks an interval, half of them busy */
                const int64_t v[H__N] = {
                        [H_CPU_USER] = 2000LL * i, [H_CPU_IDLE] = 2000LL * i, [H_NCPU] = 8, [H_CLK_TCK] = 100,
                        [H_LOAD1] = 2500, [H_MEM_TOTAL] = 8192 * MiB, [H_MEM_AVAIL] = 4096 * MiB,
                        [H_OOM_KILL] = i >= OOM_AT,
                };
                memcpy(&DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, 0), v, sizeof v);
        }
        proc(iv, 100, "spin", "/usr/bin/spin --busy", 250LL * i, 10 * MiB, 0);
        proc(iv, 200, "leak", "/usr/bin/leak", 0, 100 * MiB + (int64_t) i * MiB, 10LL * i);
        if (i < OOM_AT)
                proc(iv, 250, "hog", "/usr/bin/hog", 0, 500 * MiB, 0);
        diag_rec_sort(iv, DIAG_REC_PROC);
        if (i == OOM_AT)
                event(iv, (const char *[]) { DIAG_REC_EV_OOM, "hog", "Out of memory: Killed process 250 (hog)",
                                             "/system.slice/hog.service" },
                      (const int64_t[]) { rt_of(i) - S, 250, 500 * MiB });
        if (i == TRIG_AT)
                event(iv, (const char *[]) { DIAG_REC_EV_TRIGGER, "", "memavail<5%", SNAP_PATH },
                      (const int64_t[]) { rt_of(i), 0, 0 });
}

static int add_frame(struct diag_rec_writer *w, struct diag_rec_buf *raw, uint32_t n, bool key, int64_t first,
                     int64_t last) {
        int r = diag_rec_writer_add(w, raw->data, raw->len, n, key, first, last);

        raw->len = 0;
        return r < 0 ? r : diag_rec_writer_flush(w);
}

/* The synthetic recording into dir, as diag-record writes: a key interval a minute,
 * frames of PER_FRAME intervals. */
static int write_recording(const char *dir) {
        struct diag_rec_strings *strings = diag_rec_strings_new();
        struct diag_rec_encoder *enc = diag_rec_encoder_new();
        struct diag_rec_writer_opts wo = { .interval_ms = 5000 };
        struct diag_rec_writer *w = NULL;
        struct diag_rec_buf raw = { 0 };
        struct diag_rec_interval iv;
        uint32_t in_frame = 0;
        bool frame_key = false;
        int64_t first = 0, last = 0;
        int r;

        diag_rec_interval_init(&iv, strings);
        r = !strings || !enc ? -ENOMEM : diag_rec_writer_open(&w, dir, &wo);
        for (int i = 0; r >= 0 && i < N; i++) {
                if (i >= GAP_FROM && i < GAP_TO)
                        continue;
                build(&iv, i);
                if (i % KEY_EVERY == 0 || i == GAP_TO) {
                        if (in_frame && (r = add_frame(w, &raw, in_frame, frame_key, first, last)) < 0)
                                break;
                        in_frame = 0;
                        diag_rec_encoder_key(enc);
                        frame_key = true;
                }
                if (!in_frame)
                        first = rt_of(i);
                if ((r = diag_rec_encode(enc, &iv, &raw)) < 0)
                        break;
                last = rt_of(i);
                if (++in_frame == PER_FRAME) {
                        r = add_frame(w, &raw, in_frame, frame_key, first, last);
                        in_frame = 0;
                        frame_key = false;
                }
        }
        if (r >= 0 && in_frame)
                r = add_frame(w, &raw, in_frame, frame_key, first, last);
        if (w) {
                int k = diag_rec_writer_close(w);
                if (r >= 0)
                        r = k;
        }
        diag_rec_interval_free(&iv);
        diag_rec_encoder_free(enc);
        diag_rec_strings_free(strings);
        diag_rec_buf_free(&raw);
        return r;
}

static unsigned nwarn;

static void warn_cb(void *ud, const char *line) {
        (void) ud;
        nwarn++;
        fprintf(stderr, "warning: %s\n", line);
}

static const struct top_proc *find(const struct top_frame *f, pid_t pid) {
        for (size_t i = 0; f && i < f->nprocs; i++)
                if (f->procs[i].pid == pid)
                        return &f->procs[i];
        return NULL;
}

/* The frame shows interval i with the figures written (rates when history allows). */
static void check_at(struct top_model *m, struct top_replay *r, int i, int line) {
        const struct top_frame *f = top_model_frame(m);
        const struct top_proc *spin = find(f, 100), *leak = find(f, 200);
        int bad = tap_failed;

        CHECK_INT(top_replay_now(r), rt_of(i));
        CHECK(f && f->h.realtime_ns == rt_of(i));
        CHECK(f && f->iv && f->iv->realtime_ns == rt_of(i));
        CHECK(spin && leak);
        if (spin && leak) {
                CHECK_INT(leak->rss, 100 * MiB + (int64_t) i * MiB);
                CHECK_INT(spin->threads, 3);
                CHECK(!find(f, 250) == (i >= OOM_AT));
                if (i == 0) {
                        CHECK(spin->cpu_pct < 0);
                        CHECK(leak->rss_growth == 0);
                } else {
                        /* the interval before is pushed: 250 ticks / 100 Hz / 5 s (25 s across the gap) */
                        CHECK(fabs(spin->cpu_pct - 50.0) < 1e-9);
                        CHECK(fabs(leak->majflt_s - 2.0) < 1e-9);
                        CHECK(fabs(leak->rss_growth - 12.0 * MiB) < 1.0);
                }
        }
        if (tap_failed != bad)
                fprintf(stderr, "  (interval %d, checked from line %d)\n", i, line);
}
#define CHECK_AT(i) check_at(m, r, (i), __LINE__)

static void test_replay(const char *dir) {
        struct top_model_opts mo = { .live = false };
        struct top_model *m = NULL;
        struct top_replay *r = NULL;
        const struct top_event_mark *ev, *snap;
        int64_t first, last;
        size_t nev = 0;
        int k;

        CHECK_INT(top_model_new(&m, &mo), 0);
        nwarn = 0;
        k = top_replay_open(&r, dir, m, warn_cb, NULL);
        CHECK_INT(k, 0);
        if (k < 0) {
                top_model_free(m);
                return;
        }
        CHECK_INT(nwarn, 0);
        top_replay_span(r, &first, &last);
        CHECK_INT(first, rt_of(0));
        CHECK_INT(last, rt_of(N - 1));
        /* open shows the last interval */
        CHECK_AT(N - 1);

        ev = top_replay_events(r, &nev);
        CHECK_INT(nev, 3);
        if (nev == 3) {
                CHECK_INT(ev[0].kind, 'O');
                CHECK_INT(ev[0].realtime_ns, rt_of(OOM_AT) - S);
                CHECK_INT(ev[0].pid, 250);
                CHECK(strncmp(ev[0].text, "oom-kill 250 (hog) rss ", 23) == 0);
                CHECK_STR(ev[0].path, "");
                CHECK_INT(ev[1].kind, 'T');
                CHECK_INT(ev[1].realtime_ns, rt_of(TRIG_AT));
                CHECK_STR(ev[1].path, SNAP_PATH);
                CHECK_STR(ev[1].text, "trigger memavail<5% -> snap-20261204-171550");
                CHECK_INT(ev[2].kind, 'G');
                CHECK_INT(ev[2].realtime_ns, rt_of(GAP_FROM - 1));
                CHECK_STR(ev[2].text, "gap 25s: no records (the recorder was not running or stalled)");
        }

        /* seeks land on the recorded interval: the one at or before the time asked */
        CHECK_INT(top_replay_seek(r, rt_of(25) + 2 * S), 0);
        CHECK_AT(25);
        CHECK_INT(top_replay_seek(r, rt_of(2)), 0);
        CHECK_AT(2);
        CHECK_INT(top_replay_seek(r, rt_of(0) - 3600 * S), 0);
        CHECK_AT(0);
        CHECK_INT(top_replay_seek(r, rt_of(GAP_FROM + 1)), 0);     /* in the gap: the one before */
        CHECK_AT(GAP_FROM - 1);
        CHECK_INT(top_replay_seek(r, rt_of(GAP_TO)), 0);           /* after it: rates across the 25 s */
        CHECK_AT(GAP_TO);
        CHECK_INT(top_replay_seek(r, INT64_MAX), 0);
        CHECK_AT(N - 1);

        /* steps: by one, by many, across the gap, stopping at the ends */
        top_replay_seek(r, rt_of(25));
        CHECK_INT(top_replay_step(r, 1), 1);
        CHECK_AT(26);
        CHECK_INT(top_replay_step(r, -1), 1);
        CHECK_AT(25);
        CHECK_INT(top_replay_step(r, 10), 1);
        CHECK_AT(35);
        CHECK_INT(top_replay_step(r, -7), 1);
        CHECK_AT(28);
        top_replay_seek(r, rt_of(GAP_FROM - 3));
        CHECK_INT(top_replay_step(r, 5), 1);
        CHECK_AT(GAP_TO + 2);
        CHECK_INT(top_replay_step(r, -3), 1);
        CHECK_AT(GAP_FROM - 1);
        CHECK_INT(top_replay_step(r, -1000), 1);
        CHECK_AT(0);
        CHECK_INT(top_replay_step(r, -1), 0);
        CHECK_AT(0);
        CHECK_INT(top_replay_step(r, 1000), 1);
        CHECK_AT(N - 1);
        CHECK_INT(top_replay_step(r, 1), 0);
        CHECK_AT(N - 1);
        /* every interval in turn, forward one by one, then back */
        top_replay_seek(r, rt_of(0));
        for (int i = 1; i < N; i++) {
                if (i >= GAP_FROM && i < GAP_TO)
                        continue;
                CHECK_INT(top_replay_step(r, 1), 1);
                CHECK_AT(i);
        }
        for (int i = N - 2; i >= N - 30; i--) {
                if (i >= GAP_FROM && i < GAP_TO)
                        continue;
                CHECK_INT(top_replay_step(r, -1), 1);
                CHECK_AT(i);
        }
        /* a minute on and back, as '}' and '{' do */
        top_replay_seek(r, rt_of(50));
        CHECK_INT(top_replay_seek(r, top_replay_now(r) + 60 * S), 0);
        CHECK_AT(62);
        CHECK_INT(top_replay_seek(r, top_replay_now(r) - 60 * S), 0);
        CHECK_AT(50);

        /* events: next and previous from where we are */
        top_replay_seek(r, rt_of(0));
        CHECK_INT(top_replay_jump_event(r, -1), 0);
        CHECK_INT(top_replay_jump_event(r, 1), 1);
        CHECK_AT(OOM_AT);                       /* the interval holding the kill */
        CHECK_INT(top_replay_jump_event(r, 1), 1);
        CHECK_AT(TRIG_AT);
        CHECK_INT(top_replay_jump_event(r, 1), 1);
        CHECK_AT(GAP_FROM - 1);
        CHECK_INT(top_replay_jump_event(r, 1), 0);
        CHECK_AT(GAP_FROM - 1);
        CHECK_INT(top_replay_jump_event(r, -1), 1);
        CHECK_AT(TRIG_AT);
        CHECK_INT(top_replay_jump_event(r, -1), 1);
        CHECK_AT(OOM_AT);
        CHECK_INT(top_replay_jump_event(r, -1), 0);

        /* the snapshot near: the trigger's, from its interval up to 5 minutes later */
        top_replay_seek(r, rt_of(TRIG_AT - 1));
        CHECK(top_replay_snapshot_near(r) == NULL);
        top_replay_seek(r, rt_of(TRIG_AT));
        snap = top_replay_snapshot_near(r);
        CHECK(snap && snap->kind == 'T' && strcmp(snap->path, SNAP_PATH) == 0);
        top_replay_seek(r, rt_of(TRIG_AT + 60));
        CHECK(top_replay_snapshot_near(r) == snap);
        top_replay_seek(r, rt_of(TRIG_AT + 61));
        CHECK(top_replay_snapshot_near(r) == NULL);

        top_replay_close(r);
        top_model_free(m);
}

/* A byte flipped in the middle of the segment: opened with a warning, the lost
 * records are a gap, and the intervals left are still reached exactly. */
static void test_damaged(const char *dir) {
        struct top_model_opts mo = { .live = false };
        struct top_model *m = NULL;
        struct top_replay *r = NULL;
        const struct top_event_mark *ev;
        char path[4200];
        struct dirent *de;
        DIR *d = opendir(dir);
        size_t nev = 0, lost = 0;
        int fd, k;
        struct stat st;
        unsigned char b;

        path[0] = 0;
        while (d && (de = readdir(d)))
                if (strncmp(de->d_name, DIAG_REC_SEGMENT_PREFIX, 4) == 0 &&
                    (size_t) snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path)
                        path[0] = 0;
        if (d)
                closedir(d);
        fd = open(path, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0 && fstat(fd, &st) == 0);
        if (fd < 0)
                return;
        CHECK(pread(fd, &b, 1, st.st_size / 2) == 1);
        b ^= 0x5a;
        CHECK(pwrite(fd, &b, 1, st.st_size / 2) == 1);
        close(fd);

        CHECK_INT(top_model_new(&m, &mo), 0);
        nwarn = 0;
        k = top_replay_open(&r, dir, m, warn_cb, NULL);
        CHECK_INT(k, 0);
        CHECK(nwarn >= 1);
        if (k == 0) {
                int64_t first, last, prev = 0;
                size_t n = 0;

                top_replay_span(r, &first, &last);
                CHECK_INT(first, rt_of(0));
                CHECK_INT(last, rt_of(N - 1));
                ev = top_replay_events(r, &nev);
                for (size_t i = 0; i < nev; i++)
                        if (ev[i].kind == 'G' && strstr(ev[i].text, "records lost"))
                                lost++;
                CHECK_INT(lost, 1);
                /* every interval left, from the start: each seek lands where it was */
                top_replay_seek(r, rt_of(0));
                do {
                        int64_t now = top_replay_now(r);
                        int i = (int) ((now - T0) / (5 * S));
                        CHECK(now > prev || n == 0);
                        CHECK_AT(i);
                        prev = now;
                        n++;
                } while (top_replay_step(r, 1) == 1);
                CHECK(n > N / 2 && n < (size_t) index_of(N));
                fprintf(stderr, "damaged: %zu of %d intervals left\n", n, index_of(N));
                top_replay_close(r);
        }
        top_model_free(m);
}

/* ---- batch ---- */

#define LONG_CMD "/usr/bin/python3 -m worker --queue=incoming --concurrency=8 --log-level=debug " \
        "--config=/etc/worker/worker.conf --state-dir=/var/lib/worker --pidfile=/run/worker.pid --x=1"

static struct top_proc procs[2] = {
        { .pid = 4242, .ppid = 1, .uid = 0, .state = 'D', .comm = "python3", .cmd = LONG_CMD, .cgroup = "/",
          .cpu_pct = 12.5, .rss = 300 * MiB, .rss_growth = 6 * MiB, .majflt_s = 4, .read_s = 1 * MiB,
          .write_s = -1, .threads = 9 },
        { .pid = 5000, .ppid = 1, .uid = 0, .state = 'S', .comm = "php-fpm", .cmd = "php-fpm: pool www",
          .cgroup = "/", .cpu_pct = -1, .rss = 64 * MiB, .majflt_s = -1, .read_s = -1, .write_s = -1, .threads = 1 },
};

static void make_frame(struct top_frame *f, struct top_rows *rows, struct top_row rr[2]) {
        memset(f, 0, sizeof *f);
        f->h = (struct top_header) {
                .realtime_ns = rt_of(7), .interval_ms = 5000, .ncpu = 8, .cpu_user = 40, .cpu_system = 10,
                .cpu_iowait = 2.5, .cpu_idle = 47.5, .mem_total = 8192 * MiB, .mem_avail = 1024 * MiB,
                .swap_total = 0, .swap_free = 0, .psi = { { 20, -1 }, { 5, 1 }, { 10, 2 } },
                .load = { 2.5, 1.25, 0.5 }, .disk = "sda", .disk_busy_pct = 30, .disk_iops = 120,
                .oom_kills = 3, .oom_kills_seen = 1, .nprocs = 66, .nthreads = 74, .nrunning = 2,
                .dstate_threads = 1, .stuck_chains = 1, .majflt_s = 20,
        };
        f->procs = procs;
        f->nprocs = 2;
        rr[0] = (struct top_row) { .p = &procs[0], .count = 1, .cpu_pct = 12.5, .majflt_s = 4, .read_s = 1 * MiB,
                                   .write_s = -1, .rss_growth = 6 * MiB, .rss = 300 * MiB, .threads = 9,
                                   .blocked_ms = 4000, .blocked_state = 'D', .pss = DIAG_REC_NA,
                                   .wait = "flock sess_42 <- held by 2433, which polls 127.0.0.1:9400" };
        rr[1] = (struct top_row) { .p = &procs[1], .count = 65, .cpu_pct = -1, .majflt_s = -1, .read_s = -1,
                                   .write_s = -1, .rss = 65 * 64 * MiB, .threads = 65, .blocked_ms = -1,
                                   .pss = 65 * 20 * MiB };
        rows->rows = rr;
        rows->n = rows->alloc = 2;
}

static char *render(const struct top_batch_opts *bo, const struct top_frame *f, const struct top_rows *rows,
                    int *ret) {
        struct top_batch_opts o = *bo;
        struct top_rows_opts ro = { .sort = TOP_COL_CPU };
        char *buf = NULL;
        size_t len = 0;

        o.out = open_memstream(&buf, &len);
        *ret = top_batch_frame(&o, f, rows, &ro);
        fclose(o.out);
        return buf;
}

static void test_batch(void) {
        struct top_batch_opts bo = { 0 };
        struct top_frame f;
        struct top_rows rows;
        struct top_row rr[2];
        char *text, *line, *save = NULL, *hdr = NULL, *row0 = NULL, *row1 = NULL;
        struct json_object *o, *v, *row;
        int k;

        make_frame(&f, &rows, rr);
        text = render(&bo, &f, &rows, &k);
        CHECK_INT(k, 0);
        CHECK(text && strncmp(text, "diag-top - ", 11) == 0);
        CHECK(text && strstr(text, "\nCPU: 40.0 user, 10.0 system, 2.5 iowait"));
        CHECK(text && strstr(text, "PSI some/full %: cpu 20.0/- memory 5.0/1.0 io 10.0/2.0\n"));
        CHECK(text && strstr(text, "\nLoad: 2.50 1.25 0.50\n"));
        CHECK(text && strstr(text, "\nDisk: sda 30.0% busy, 120.0 IOPS\n"));
        CHECK(text && strstr(text, "\nOOM kills: 3 since boot, 1 seen"));
        CHECK(text && strstr(text, "\nD-state threads: 1, stuck chains: 1\n"));
        /* an empty line between the header block and the column header */
        CHECK(text && strstr(text, "\n\n    PID "));
        for (line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "    PID ", 8) == 0)
                        hdr = line;
                else if (hdr && !row0)
                        row0 = line;
                else if (row0 && !row1)
                        row1 = line;
        }
        CHECK(hdr != NULL);
        if (hdr) {
                const char *names[] = { "PID", "USER", "S", "CPU%", "RSS", "GROW/m", "MAJFLT/s", "READ/s",
                                        "WRITE/s", "THR", "BLOCKED", "WAIT", "COMMAND" };
                const char *at = hdr;
                for (size_t i = 0; i < 13; i++) {
                        const char *p = strstr(at, names[i]);
                        CHECK(p != NULL);
                        at = p ? p + strlen(names[i]) : at;
                }
                CHECK_STR(at, "");              /* COMMAND last */
        }
        CHECK(row0 && strstr(row0, "   4242 ") == row0);
        CHECK(row0 && strstr(row0, " D "));
        CHECK(row0 && strstr(row0, " 12.5 "));
        CHECK(row0 && strstr(row0, " flock sess_42 <- held by 2433, which polls 127.0.0.1:9400 " LONG_CMD));
        CHECK(row0 && strlen(row0) >= strlen(LONG_CMD) && strcmp(row0 + strlen(row0) - strlen(LONG_CMD), LONG_CMD) == 0);
        CHECK(row1 && strstr(row1, "   5000 ") == row1);
        CHECK(row1 && strstr(row1, " x65 php-fpm: pool www"));
        CHECK(row1 && strstr(row1, " - "));
        /* COMMAND starts in the same column on both rows (WAIT padded) */
        if (row0 && row1)
                CHECK_INT(strstr(row0, "/usr/bin/python3") - row0, strstr(row1, "x65") - row1);
        free(text);

        /* max_rows */
        bo.max_rows = 1;
        text = render(&bo, &f, &rows, &k);
        CHECK(text && strstr(text, "   4242 ") && !strstr(text, "   5000 "));
        free(text);

        /* JSON: one line, parsed back */
        bo = (struct top_batch_opts) { .json = true };
        text = render(&bo, &f, &rows, &k);
        CHECK_INT(k, 0);
        CHECK(text && strchr(text, '\n') == text + strlen(text) - 1);
        o = text ? json_tokener_parse(text) : NULL;
        CHECK(o != NULL);
        if (o) {
                struct json_object *h = NULL, *a = NULL;
                CHECK(json_object_object_get_ex(o, "time_ns", &v) && json_object_get_int64(v) == rt_of(7));
                CHECK(json_object_object_get_ex(o, "interval_ms", &v) && json_object_get_int64(v) == 5000);
                CHECK(json_object_object_get_ex(o, "time", &v) && strlen(json_object_get_string(v)) >= 19 &&
                      json_object_get_string(v)[10] == 'T');
                CHECK(json_object_object_get_ex(o, "header", &h));
                CHECK(json_object_object_get_ex(h, "nprocs", &v) && json_object_get_int64(v) == 66);
                CHECK(json_object_object_get_ex(h, "mem_avail", &v) && json_object_get_int64(v) == 1024 * MiB);
                CHECK(json_object_object_get_ex(h, "dstate_threads", &v) && json_object_get_int64(v) == 1);
                CHECK(json_object_object_get_ex(h, "disk", &v) && json_object_object_get_ex(v, "iops", &v) &&
                      json_object_get_double(v) == 120);
                CHECK(json_object_object_get_ex(h, "psi_pct", &v) && json_object_object_get_ex(v, "cpu", &v) &&
                      json_object_object_get_ex(v, "full", &v) && v == NULL);
                CHECK(json_object_object_get_ex(o, "rows", &a) && json_object_array_length(a) == 2);
                row = a ? json_object_array_get_idx(a, 0) : NULL;
                CHECK(json_object_object_get_ex(row, "pid", &v) && json_object_get_int64(v) == 4242);
                CHECK(json_object_object_get_ex(row, "state", &v) && strcmp(json_object_get_string(v), "D") == 0);
                CHECK(json_object_object_get_ex(row, "cpu_pct", &v) && json_object_get_double(v) == 12.5);
                CHECK(json_object_object_get_ex(row, "rss", &v) && json_object_get_int64(v) == 300 * MiB);
                CHECK(json_object_object_get_ex(row, "rss_growth_per_min", &v) && json_object_get_double(v) == 6 * MiB);
                CHECK(json_object_object_get_ex(row, "read_bps", &v) && json_object_get_double(v) == MiB);
                CHECK(json_object_object_get_ex(row, "write_bps", &v) && v == NULL);
                CHECK(json_object_object_get_ex(row, "blocked_ms", &v) && json_object_get_int64(v) == 4000);
                CHECK(json_object_object_get_ex(row, "wait", &v) && strstr(json_object_get_string(v), "held by 2433"));
                CHECK(json_object_object_get_ex(row, "pss", &v) && v == NULL);
                CHECK(json_object_object_get_ex(row, "cmd", &v) && strcmp(json_object_get_string(v), LONG_CMD) == 0);
                CHECK(json_object_object_get_ex(row, "comm", &v) && strcmp(json_object_get_string(v), "python3") == 0);
                row = a ? json_object_array_get_idx(a, 1) : NULL;
                CHECK(json_object_object_get_ex(row, "count", &v) && json_object_get_int64(v) == 65);
                CHECK(json_object_object_get_ex(row, "pss", &v) && json_object_get_int64(v) == 65 * 20 * MiB);
                CHECK(json_object_object_get_ex(row, "cpu_pct", &v) && v == NULL);
                CHECK(json_object_object_get_ex(row, "wait", &v) && v == NULL);
                CHECK(json_object_object_get_ex(row, "blocked_ms", &v) && v == NULL);
                json_object_put(o);
        }
        free(text);
}

/* The reader of the pipe went away: -EPIPE, not a signal. */
static void test_epipe(void) {
        struct top_frame f;
        struct top_rows rows;
        struct top_row rr[2];
        struct top_batch_opts bo = { 0 };
        int p[2], k;

        make_frame(&f, &rows, rr);
        signal(SIGPIPE, SIG_IGN);
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        close(p[0]);
        bo.out = fdopen(p[1], "w");
        CHECK(bo.out != NULL);
        if (!bo.out)
                return;
        k = top_batch_frame(&bo, &f, &rows, NULL);
        CHECK_INT(k, -EPIPE);
        bo.json = true;
        k = top_batch_frame(&bo, &f, &rows, NULL);
        CHECK_INT(k, -EPIPE);
        fclose(bo.out);
}

/* ---- --bench DIR ---- */

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

#define PRESSES 200

static int bench(const char *dir) {
        static const char keys[] = "][}{T";
        struct top_model_opts mo = { .live = false };
        struct top_model *m;
        struct top_replay *r;
        int64_t first, last;
        double t, ms[PRESSES];
        int k;

        if ((k = top_model_new(&m, &mo)) < 0)
                return fprintf(stderr, "model: %s\n", strerror(-k)), 1;
        t = now_ms();
        k = top_replay_open(&r, dir, m, warn_cb, NULL);
        if (k < 0)
                return fprintf(stderr, "%s: %s\n", dir, strerror(-k)), 1;
        printf("open (index and show the last interval): %.0f ms\n", now_ms() - t);
        top_replay_span(r, &first, &last);
        for (const char *key = keys; *key; key++) {
                for (int i = 0; i < PRESSES; i++) {
                        int64_t at;

                        /* a run of 20 presses from a random place */
                        if (i % 20 == 0)
                                top_replay_seek(r, first + (int64_t) (rnd() % (uint64_t) (last - first + 1)));
                        at = top_replay_now(r);
                        t = now_ms();
                        switch (*key) {
                        case ']': k = top_replay_step(r, 1); break;
                        case '[': k = top_replay_step(r, -1); break;
                        case '}': k = top_replay_seek(r, at + 60 * S); break;
                        case '{': k = top_replay_seek(r, at - 60 * S); break;
                        default:
                                k = top_replay_seek(r, first + (int64_t) (rnd() % (uint64_t) (last - first + 1)));
                                break;
                        }
                        ms[i] = now_ms() - t;
                        if (k < 0 || !top_model_frame(m))
                                return fprintf(stderr, "key %c: %s\n", *key, strerror(-k)), 1;
                }
                qsort(ms, PRESSES, sizeof ms[0], cmp_double);
                printf("%-6s median %6.2f ms, 90%% %6.2f ms, worst %6.2f ms (%d presses)\n",
                       *key == 'T' ? "random" : (char[]) { *key, 0 }, ms[PRESSES / 2], ms[PRESSES * 9 / 10],
                       ms[PRESSES - 1], PRESSES);
        }
        {
                char line[256];
                FILE *f = fopen("/proc/self/status", "re");
                while (f && fgets(line, sizeof line, f))
                        if (strncmp(line, "VmHWM:", 6) == 0)
                                printf("peak RSS: %s", line + 6);
                if (f)
                        fclose(f);
        }
        top_replay_close(r);
        top_model_free(m);
        return 0;
}

static int rm_rf(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        char path[4200];

        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if ((size_t) snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < sizeof path)
                        unlink(path);
        }
        if (d)
                closedir(d);
        return rmdir(dir);
}

int main(int argc, char **argv) {
        const char *tmp = getenv("TMPDIR");
        char base[4096], good[4200], bad[4200], bad2[4200];
        int k;

        setenv("TZ", "UTC", 1);
        tzset();
        if (argc == 3 && strcmp(argv[1], "--bench") == 0)
                return bench(argv[2]);
        snprintf(base, sizeof base, "%s/test-top-replay-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (!mkdtemp(base)) {
                perror("mkdtemp");
                return 99;
        }
        snprintf(good, sizeof good, "%s/good", base);
        snprintf(bad, sizeof bad, "%s/bad", base);
        snprintf(bad2, sizeof bad2, "%s/bad2", base);
        k = write_recording(good);
        CHECK_INT(k, 0);
        k = write_recording(bad);
        CHECK_INT(k, 0);
        test_replay(good);
        /* again with only the newest frame kept in memory: seeks go through the reader */
        setenv("DIAG_TOP_REPLAY_KEEP", "1", 1);
        test_replay(good);
        test_damaged(bad);
        unsetenv("DIAG_TOP_REPLAY_KEEP");
        k = write_recording(bad2);
        CHECK_INT(k, 0);
        test_damaged(bad2);
        test_batch();
        test_epipe();
        rm_rf(good);
        rm_rf(bad);
        rm_rf(bad2);
        rmdir(base);
        return TAP_DONE();
}
