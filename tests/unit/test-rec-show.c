/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show over synthetic intervals with known rates: a process at exactly
 * 50 % CPU, one growing 1 MiB an interval, a command line whose count rises 1..60, an
 * OOM kill, a trigger, a gap, a pid reused by another command line.
 *
 *   test-rec-show                 the checks, and the time of 17,280 x 1,000 rows
 *   test-rec-show --svg PATH      write the SVG of the synthetic recording to PATH
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "show.h"
#include "tap.h"

#define N 120                   /* intervals of 5 s */
#define GAP_FROM 80             /* intervals 80..83 missing */
#define GAP_TO 84
#define OOM_AT 70
#define TRIG_AT 90
#define REUSE_AT 60
#define T0 ((int64_t) 1796400000 * 1000000000)  /* realtime of interval 0 */
#define BT0 ((int64_t) 1000 * 1000000000)       /* boottime of interval 0 */
#define MiB (1024LL * 1024)

static int64_t rt_of(int i) {
        return T0 + (int64_t) i * 5000000000LL;
}

static void str(struct diag_rec_interval *iv, enum diag_rec_table_id t, size_t r, unsigned c, const char *v) {
        DIAG_REC_STR(iv, t, r, c) = diag_rec_intern(iv->strings, v, strlen(v));
}

static size_t proc(struct diag_rec_interval *iv, int64_t pid, int64_t start, const char *comm, const char *cmd,
                   int64_t cpu, int64_t rss, int64_t majflt, int64_t io) {
        size_t r = (size_t) diag_rec_add_row(iv, DIAG_REC_PROC);
        int64_t *n = &DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0);
        n[PR_PID] = pid;
        n[PR_START] = start;
        n[PR_PPID] = 1;
        n[PR_UID] = 1000;
        n[PR_STATE] = 'S';
        n[PR_UTIME] = cpu;
        n[PR_RSS] = rss;
        n[PR_VSZ] = rss * 2;
        n[PR_MAJFLT] = majflt;
        n[PR_READ_BYTES] = io;
        n[PR_WRITE_BYTES] = 0;
        n[PR_THREADS] = 1;
        str(iv, DIAG_REC_PROC, r, PR_COMM, comm);
        str(iv, DIAG_REC_PROC, r, PR_CMD, cmd);
        str(iv, DIAG_REC_PROC, r, PR_CGROUP, "/system.slice/x.service");
        return r;
}

static void event(struct diag_rec_interval *iv, const char *kind, int64_t t, int64_t pid, const char *comm,
                  const char *text, const char *path, int64_t rss) {
        size_t r = (size_t) diag_rec_add_row(iv, DIAG_REC_EVENT);
        str(iv, DIAG_REC_EVENT, r, EV_KIND, kind);
        str(iv, DIAG_REC_EVENT, r, EV_COMM, comm);
        str(iv, DIAG_REC_EVENT, r, EV_TEXT, text);
        str(iv, DIAG_REC_EVENT, r, EV_PATH, path);
        DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_TIME_NS) = t;
        DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_PID) = pid;
        DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_RSS) = rss;
}

/* Interval i of the synthetic recording. */
static void build(struct diag_rec_interval *iv, int i) {
        diag_rec_interval_clear(iv);
        iv->seq = (uint64_t) i;
        iv->realtime_ns = rt_of(i);
        iv->boottime_ns = BT0 + (int64_t) i * 5000000000LL;
        iv->interval_ms = 5000;
        diag_rec_add_row(iv, DIAG_REC_HOST);
        int64_t *h = &DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, 0);
        /* 8 CPUs x 5 s x 100 ticks = 4000 ticks an interval: 50 % busy, 2.5 % iowait */
        h[H_CPU_USER] = 2000LL * i;
        h[H_CPU_IDLE] = 1900LL * i;
        h[H_CPU_IOWAIT] = 100LL * i;
        h[H_NCPU] = 8;
        h[H_CLK_TCK] = 100;
        h[H_LOAD1] = 2500;
        h[H_MEM_TOTAL] = 8192 * MiB;
        h[H_MEM_AVAIL] = 4096 * MiB - (int64_t) i * 10 * MiB;
        h[H_SWAP_TOTAL] = 1024 * MiB;
        h[H_SWAP_FREE] = 1024 * MiB;
        h[H_PGMAJFAULT] = 100LL * i;                    /* 20/s */
        h[H_PSI_MEM_SOME] = 250000LL * i;               /* 5 % */
        h[H_PSI_IO_SOME] = 500000LL * i;                /* 10 % */
        h[H_PSI_CPU_SOME] = 1000000LL * i;              /* 20 % */
        h[H_OOM_KILL] = i >= OOM_AT;
        size_t d = (size_t) diag_rec_add_row(iv, DIAG_REC_DISK);
        str(iv, DIAG_REC_DISK, d, DK_NAME, "sda");
        DIAG_REC_NUM(iv, DIAG_REC_DISK, d, DK_RD_SECTORS) = 2048LL * i;   /* 1 MiB an interval */
        DIAG_REC_NUM(iv, DIAG_REC_DISK, d, DK_WR_SECTORS) = 4096LL * i;

        proc(iv, 100, 10, "spin", "/usr/bin/spin --busy", 250LL * i, 10 * MiB, 0, 0);     /* 50 % */
        proc(iv, 200, 20, "leak", "/usr/bin/leak", 5LL * i, 100 * MiB + (int64_t) i * MiB, 10LL * i, 5 * MiB * i);
        if (i < OOM_AT)
                proc(iv, 250, 25, "hog", "/usr/bin/hog", 0, 500 * MiB, 0, 0);
        if (i < REUSE_AT)
                proc(iv, 300, 30, "old-daemon", "/bin/old-daemon -f", 0, 5 * MiB, 0, 0);
        else
                proc(iv, 300, 129900, "new-daemon", "/bin/new-daemon --reused", 0, 6 * MiB, 0, 0);
        int workers = 1 + i / 2 > 60 ? 60 : 1 + i / 2;
        for (int k = 0; k < workers; k++)
                proc(iv, 1000 + k, 40 + k, "worker", "worker --fork", 0, MiB, 0, 0);
        diag_rec_sort(iv, DIAG_REC_PROC);

        size_t c = (size_t) diag_rec_add_row(iv, DIAG_REC_CGROUP);
        str(iv, DIAG_REC_CGROUP, c, CG_PATH, "/system.slice/leak.service");
        str(iv, DIAG_REC_CGROUP, c, CG_VERSION, "v2");
        DIAG_REC_NUM(iv, DIAG_REC_CGROUP, c, CG_MEM_CURRENT) = 200 * MiB + (int64_t) i * MiB / 3;
        DIAG_REC_NUM(iv, DIAG_REC_CGROUP, c, CG_MEM_LIMIT) = 256 * MiB;
        DIAG_REC_NUM(iv, DIAG_REC_CGROUP, c, CG_MEM_OOM_KILL) = i >= OOM_AT;
        DIAG_REC_NUM(iv, DIAG_REC_CGROUP, c, CG_IO_RBYTES) = 5 * MiB * i;

        if (i >= OOM_AT && i < OOM_AT + 5) {
                size_t r = (size_t) diag_rec_add_row(iv, DIAG_REC_DSTATE);
                DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_TID) = 201;
                DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_PID) = 200;
                str(iv, DIAG_REC_DSTATE, r, DS_COMM, "leak");
                str(iv, DIAG_REC_DSTATE, r, DS_WCHAN, "folio_wait_bit");
        }
        if (i == OOM_AT)
                event(iv, DIAG_REC_EV_OOM, rt_of(i) - 1000000000, 250, "hog", "Out of memory: Killed process 250 (hog)",
                      "/system.slice/hog.service", 500 * MiB);
        if (i == TRIG_AT)
                event(iv, DIAG_REC_EV_TRIGGER, rt_of(i), 0, "", "psi-mem>4 for 10s", "/var/lib/diag/snap-1", 0);
}

/* Feed the synthetic recording; the output in *ret (freed by the caller). */
static int run(struct rec_show_opts o, char **ret) {
        size_t len;
        FILE *f = open_memstream(ret, &len);
        o.out = f;
        struct rec_show *s = rec_show_new(&o);
        struct diag_rec_strings *strs = diag_rec_strings_new();
        struct diag_rec_interval iv;
        diag_rec_interval_init(&iv, strs);
        int r = s ? 0 : -errno;
        for (int i = 0; i < N && r >= 0; i++) {
                if (i >= GAP_FROM && i < GAP_TO) {
                        if (i == GAP_FROM)
                                rec_show_gap(s, rt_of(GAP_FROM - 1), rt_of(GAP_TO), "frames lost");
                        continue;
                }
                build(&iv, i);
                r = rec_show_interval(s, &iv);
        }
        if (s)
                rec_show_warning(s, "segment 3: torn tail, 2 frames lost");
        if (r >= 0)
                r = rec_show_finish(s);
        rec_show_free(s);
        diag_rec_interval_free(&iv);
        diag_rec_strings_free(strs);
        fclose(f);
        return r;
}

/* The line of out that contains all of the words, or NULL. */
static const char *line_with(const char *out, const char *a, const char *b) {
        static char line[1024];
        for (const char *p = out; p && *p;) {
                const char *e = strchr(p, '\n');
                size_t l = e ? (size_t) (e - p) : strlen(p);
                snprintf(line, sizeof(line), "%.*s", (int) (l < sizeof(line) - 1 ? l : sizeof(line) - 1), p);
                if (strstr(line, a) && (!b || strstr(line, b)))
                        return line;
                p = e ? e + 1 : NULL;
        }
        return NULL;
}

static int count_of(const char *out, const char *needle) {
        int n = 0;
        for (const char *p = out; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

static void test_text(void) {
        char *out = NULL;
        CHECK_INT(run((struct rec_show_opts) { 0 }, &out), 0);
        if (getenv("SHOW"))
                fputs(out, stdout);
        CHECK(line_with(out, "116 intervals", "gaps 1 (longest 00:00:25)") != NULL);
        CHECK(line_with(out, "Recording", "interval 5s") != NULL);
        /* the first of the top by CPU: spin at exactly 50 % */
        const char *l = strstr(out, "TOP PROCESSES BY CPU");
        CHECK(l && strncmp(strchr(strchr(l, '\n') + 1, '\n') + 1, "     100 spin                 50.0 /usr/bin/spin --busy\n", 55) == 0);
        /* leak: 1 MiB every 5 s = 12 MiB a minute */
        l = strstr(out, "TOP PROCESSES BY RSS GROWTH");
        CHECK(l && line_with(l, "     200 leak", "12M /usr/bin/leak"));
        l = strstr(out, "TOP PROCESSES BY MAJOR FAULTS");
        CHECK(l && line_with(l, "     200 leak", "2.0 /usr/bin/leak"));
        l = strstr(out, "TOP PROCESSES BY IO");
        CHECK(l && line_with(l, "     200 leak", "1.0M /usr/bin/leak"));
        /* the fork explosion: one line rising from 1 to 60 */
        l = strstr(out, "PROCESS COUNT PER COMMAND LINE");
        CHECK(l && line_with(l, "    1    60 |", "| worker --fork"));
        CHECK(l && line_with(l, "@", "worker --fork"));
        /* timeline: rates as built */
        CHECK(line_with(out, "  50.0   2.5 ", "  5.00   0.00  10.00   0.00  20.00     20.0") != NULL);
        CHECK(line_with(out, " OOM", NULL) != NULL);
        CHECK(line_with(out, "TRIG", NULL) != NULL);
        CHECK(line_with(out, "GAP", NULL) != NULL);
        /* events, gaps, warnings */
        CHECK(line_with(out, "oom-kill", "pid 250 (hog) rss 500M cgroup /system.slice/hog.service") != NULL);
        CHECK(line_with(out, "trigger", "psi-mem>4 for 10s; snapshot /var/lib/diag/snap-1") != NULL);
        CHECK(line_with(out, "(00:00:25) frames lost", NULL) != NULL);
        CHECK(line_with(out, "segment 3: torn tail", NULL) != NULL);
        CHECK(line_with(out, "256M", "/system.slice/leak.service (v2)") != NULL);
        CHECK(line_with(out, "      1 ", "/system.slice/leak.service") != NULL);
        free(out);
}

static void test_pid(void) {
        char *out = NULL;
        CHECK_INT(run((struct rec_show_opts) { .pid = 300 }, &out), 0);
        if (getenv("SHOW"))
                fputs(out, stdout);
        CHECK_INT(count_of(out, "\nPROCESS 300 "), 2);
        CHECK(line_with(out, "PROCESS 300 (old-daemon)", "/bin/old-daemon -f") != NULL);
        CHECK(line_with(out, "PROCESS 300 (new-daemon)", "/bin/new-daemon --reused") != NULL);
        CHECK(!strstr(out, "/usr/bin/spin"));
        free(out);
        CHECK_INT(run((struct rec_show_opts) { .cmd_pattern = "^/usr/bin/spin" }, &out), 0);
        if (getenv("SHOW"))
                fputs(out, stdout);
        CHECK(line_with(out, "PROCESSES MATCHING '^/usr/bin/spin': 1", NULL) != NULL);
        CHECK(line_with(out, "   50.0      10M      0.0", NULL) != NULL);
        CHECK(!strstr(out, "/usr/bin/leak"));
        free(out);
        struct rec_show_opts bad = { .cmd_pattern = "(unclosed" };
        CHECK(rec_show_new(&bad) == NULL && errno == EINVAL);
}

static void test_at(void) {
        char *out = NULL, want[64];
        /* 2 s after interval 70: that interval, hog gone, the D-state thread */
        CHECK_INT(run((struct rec_show_opts) { .at_ns = rt_of(OOM_AT) + 2000000000 }, &out), 0);
        if (getenv("SHOW"))
                fputs(out, stdout);
        time_t t = (time_t) (rt_of(OOM_AT) / 1000000000);
        strftime(want, sizeof(want), "AT %Y-%m-%d %H:%M:%S", localtime(&t));
        CHECK(line_with(out, want, NULL) != NULL);
        CHECK(line_with(out, "     100        1   1000 S   50.0     10M", "/usr/bin/spin --busy") != NULL);
        CHECK(!strstr(out, "/usr/bin/hog"));
        CHECK(line_with(out, "     201      200 leak", "folio_wait_bit") != NULL);
        CHECK(line_with(out, "% /system.slice/leak.service", NULL) != NULL);
        CHECK(line_with(out, "oom-kill", "pid 250") != NULL);
        CHECK(!line_with(out, "trigger", NULL));
        CHECK(line_with(out, "Host: CPU 50.0% busy", "load1 2.50, 39 processes, 1 D-state threads") != NULL);
        free(out);
        /* the first interval: rates from the one after it */
        CHECK_INT(run((struct rec_show_opts) { .at_ns = rt_of(0) }, &out), 0);
        CHECK(line_with(out, "     100        1   1000 S   50.0", NULL) != NULL);
        free(out);
}

static struct json_object *get(struct json_object *o, const char *path) {
        char buf[256], *save = NULL;
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
                char *end;
                long i = strtol(k, &end, 10);
                if (!*end && json_object_is_type(o, json_type_array))
                        o = json_object_array_get_idx(o, (size_t) i);
                else if (!json_object_object_get_ex(o, k, &o))
                        return NULL;
        }
        return o;
}

static double dbl(struct json_object *o, const char *path) {
        struct json_object *v = get(o, path);
        return v ? json_object_get_double(v) : NAN;
}

static const char *jstr(struct json_object *o, const char *path) {
        struct json_object *v = get(o, path);
        return v ? json_object_get_string(v) : NULL;
}

static void test_json(void) {
        char *out = NULL;
        CHECK_INT(run((struct rec_show_opts) { .json = true }, &out), 0);
        struct json_object *j = json_tokener_parse(out);
        CHECK(j != NULL);
        CHECK_INT(dbl(j, "span.intervals"), 116);
        CHECK_INT(dbl(j, "span.gaps"), 1);
        CHECK_INT(dbl(j, "span.from_ns"), rt_of(0));
        CHECK_STR(jstr(j, "span.from"), "2026-12-04T16:00:00+00:00");
        CHECK_INT(dbl(j, "top.cpu.0.pid"), 100);
        CHECK(fabs(dbl(j, "top.cpu.0.cpu_pct") - 50) < 1e-6);
        CHECK_INT(dbl(j, "top.rss_growth.0.pid"), 200);
        CHECK(fabs(dbl(j, "top.rss_growth.0.rss_growth_bytes_per_min") - 12 * MiB) < 1);
        CHECK(fabs(dbl(j, "top.majflt.0.major_faults_per_s") - 2) < 1e-6);
        CHECK(fabs(dbl(j, "top.io.0.io_bytes_per_s") - MiB) < 1);
        CHECK_STR(jstr(j, "command_lines.0.command"), "worker --fork");
        CHECK_INT(dbl(j, "command_lines.0.min"), 1);
        CHECK_INT(dbl(j, "command_lines.0.max"), 60);
        CHECK(fabs(dbl(j, "timeline.buckets.1.psi_io_some_pct") - 10) < 1e-6);
        CHECK(fabs(dbl(j, "timeline.buckets.1.disk_read_bytes_per_s") - MiB / 5.0) < 1);
        CHECK(fabs(dbl(j, "timeline.buckets.1.cpu_busy_pct") - 50) < 1e-6);
        CHECK_STR(jstr(j, "events.0.kind"), "oom-kill");
        CHECK_INT(dbl(j, "events.0.pid"), 250);
        CHECK_INT(dbl(j, "events.0.rss_bytes"), 500 * MiB);
        CHECK_STR(jstr(j, "events.1.snapshot"), "/var/lib/diag/snap-1");
        CHECK_STR(jstr(j, "gaps.0.why"), "frames lost");
        CHECK_INT(dbl(j, "cgroups.0.oom_kills"), 1);
        CHECK_STR(jstr(j, "warnings.0"), "segment 3: torn tail, 2 frames lost");
        json_object_put(j);
        free(out);

        CHECK_INT(run((struct rec_show_opts) { .json = true, .pid = 300 }, &out), 0);
        j = json_tokener_parse(out);
        CHECK_STR(jstr(j, "processes.0.command"), "/bin/old-daemon -f");
        CHECK_STR(jstr(j, "processes.1.command"), "/bin/new-daemon --reused");
        CHECK(get(j, "processes.2") == NULL);
        CHECK_STR(jstr(j, "processes.0.timeline.0.state"), "S");
        json_object_put(j);
        free(out);

        CHECK_INT(run((struct rec_show_opts) { .json = true, .at_ns = rt_of(OOM_AT) + 2000000000 }, &out), 0);
        j = json_tokener_parse(out);
        CHECK_INT(dbl(j, "at.time_ns"), rt_of(OOM_AT));
        CHECK_INT(dbl(j, "at.top_cpu.0.pid"), 100);
        CHECK(fabs(dbl(j, "at.top_cpu.0.cpu_pct") - 50) < 1e-6);
        CHECK_INT(dbl(j, "at.top_rss.0.pid"), 200);
        CHECK_STR(jstr(j, "at.dstate.0.wchan"), "folio_wait_bit");
        CHECK_STR(jstr(j, "at.cgroups_near_limit.0.path"), "/system.slice/leak.service");
        CHECK_INT(dbl(j, "at.host.processes"), 39);
        CHECK_STR(jstr(j, "events.0.kind"), "oom-kill");
        CHECK(get(j, "events.1") == NULL);
        json_object_put(j);
        free(out);
}

static void test_follow(void) {
        char *out = NULL;
        CHECK_INT(run((struct rec_show_opts) { .json = true, .follow = true }, &out), 0);
        int lines = 0, bad = 0, ooms = 0;
        for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                struct json_object *j = json_tokener_parse(l);
                lines++;
                if (!j || !get(j, "time_ns") || !get(j, "top_cpu")) {
                        bad++;
                        continue;
                }
                if (lines > 1 && (dbl(j, "top_cpu.0.pid") != 100 || fabs(dbl(j, "cpu_busy_pct") - 50) > 1e-6))
                        bad++;
                const char *k = jstr(j, "events.0.kind");
                ooms += k && !strcmp(k, "oom-kill");
                json_object_put(j);
        }
        CHECK_INT(lines, 116);
        CHECK_INT(bad, 0);
        CHECK_INT(ooms, 1);
        free(out);
}

static void test_parse_time(void) {
        int64_t t, ref = rt_of(0) + 600LL * 1000000000;    /* 16:10:00 UTC */
        CHECK_INT(rec_show_parse_time("16:05:00", ref, &t), 0);
        CHECK_INT(t, rt_of(60));
        CHECK_INT(rec_show_parse_time("17:00", ref, &t), 0);            /* within the hour after */
        CHECK_INT(t, rt_of(0) + 3600LL * 1000000000);
        CHECK_INT(rec_show_parse_time("17:20:00", ref, &t), 0);         /* the day before */
        CHECK_INT(t, rt_of(0) + (3600LL + 1200 - 86400) * 1000000000);
        CHECK_INT(rec_show_parse_time("2026-12-04 16:00:05", ref, &t), 0);
        CHECK_INT(t, rt_of(1));
        CHECK_INT(rec_show_parse_time("2026-12-04T16:00:10", ref, &t), 0);
        CHECK_INT(t, rt_of(2));
        CHECK_INT(rec_show_parse_time("-10m", ref, &t), 0);
        CHECK_INT(t, rt_of(0));
        CHECK_INT(rec_show_parse_time("-30s", ref, &t), 0);
        CHECK_INT(t, ref - 30000000000LL);
        CHECK_INT(rec_show_parse_time("@1796400000", ref, &t), 0);
        CHECK_INT(t, rt_of(0));
        const char *bad[] = { "", "25:00", "16:61", "-10x", "@", "@12x", "2026-13-01 10:00", "yesterday", "10:00:00x" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                CHECK_INT(rec_show_parse_time(bad[i], ref, &t), -EINVAL);
}

static void test_svg(const char *path) {
        char *out = NULL, *svg = NULL;
        size_t len = 0;
        CHECK_INT(run((struct rec_show_opts) { .svg_path = path }, &out), 0);
        CHECK(strstr(out, "TOP PROCESSES BY CPU") != NULL);    /* text still printed */
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        if (f) {
                CHECK(getdelim(&svg, &len, 0, f) > 0);
                fclose(f);
        }
        if (svg) {
                CHECK(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
                CHECK(strstr(svg, "</svg>\n") != NULL);
                CHECK(!strstr(svg, "<script"));
                CHECK_INT(count_of(svg, "<line class=\"oom\""), 1);
                CHECK_INT(count_of(svg, "<line class=\"trigger\""), 1);
                CHECK_INT(count_of(svg, "<rect class=\"gap\""), 1);
                CHECK(strstr(svg, "OOM kill 16:05:49: pid 250 (hog)") != NULL);
                CHECK(strstr(svg, ">worker --fork</text>") != NULL);
        }
        free(svg);
        free(out);
        /* -J with --svg: only the JSON on the output */
        CHECK_INT(run((struct rec_show_opts) { .svg_path = path, .json = true }, &out), 0);
        struct json_object *j = json_tokener_parse(out);
        CHECK(j != NULL);
        json_object_put(j);
        free(out);
        /* a directory that does not exist: an error, no file */
        CHECK_INT(run((struct rec_show_opts) { .svg_path = "/nonexistent-dir/x.svg" }, &out), -ENOENT);
        free(out);
}

/* 24 h at 5 s of 1,000 processes (and 50 cgroups): the time it takes, printed, not asserted. */
static void test_perf(void) {
        struct diag_rec_strings *strs = diag_rec_strings_new();
        struct diag_rec_interval iv;
        diag_rec_interval_init(&iv, strs);
        diag_rec_add_row(&iv, DIAG_REC_HOST);
        char cmd[64];
        for (int k = 0; k < 1000; k++) {
                snprintf(cmd, sizeof(cmd), "/usr/bin/daemon-%d --serve", k % 200);
                proc(&iv, 1000 + k, k, "daemon", cmd, 0, 10 * MiB, 0, 0);
        }
        for (int k = 0; k < 50; k++) {
                size_t c = (size_t) diag_rec_add_row(&iv, DIAG_REC_CGROUP);
                snprintf(cmd, sizeof(cmd), "/system.slice/unit-%02d.service", k);
                str(&iv, DIAG_REC_CGROUP, c, CG_PATH, cmd);
                str(&iv, DIAG_REC_CGROUP, c, CG_VERSION, "v2");
        }
        char *out = NULL;
        size_t len;
        FILE *f = open_memstream(&out, &len);
        struct rec_show *s = rec_show_new(&(struct rec_show_opts) { .out = f });
        struct timespec a, b, ca, cb;
        clock_gettime(CLOCK_MONOTONIC, &a);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
        int r = 0;
        for (int i = 0; i < 17280 && r >= 0; i++) {
                iv.realtime_ns = rt_of(i);
                iv.boottime_ns = BT0 + (int64_t) i * 5000000000LL;
                iv.interval_ms = 5000;
                int64_t *h = &DIAG_REC_NUM(&iv, DIAG_REC_HOST, 0, 0);
                h[H_CPU_USER] = 2000LL * i;
                h[H_CPU_IDLE] = 2000LL * i;
                h[H_MEM_TOTAL] = 8192 * MiB;
                h[H_MEM_AVAIL] = 4096 * MiB;
                for (size_t k = 0; k < iv.t[DIAG_REC_PROC].nrows; k++) {
                        int64_t *n = &DIAG_REC_NUM(&iv, DIAG_REC_PROC, k, 0);
                        n[PR_UTIME] += (int64_t) (k % 7);
                        n[PR_RSS] += (int64_t) (k % 3) * 4096;
                        n[PR_READ_BYTES] += (int64_t) k * 16;
                }
                r = rec_show_interval(s, &iv);
        }
        if (r >= 0)
                r = rec_show_finish(s);
        clock_gettime(CLOCK_MONOTONIC, &b);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
        CHECK_INT(r, 0);
        fclose(f);
        printf("17280 intervals x 1000 processes: %.3f s (%.3f s of CPU)\n",
               (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9,
               (double) (cb.tv_sec - ca.tv_sec) + (double) (cb.tv_nsec - ca.tv_nsec) / 1e9);
        free(out);
        rec_show_free(s);
        diag_rec_interval_free(&iv);
        diag_rec_strings_free(strs);
}

int main(int argc, char **argv) {
        setenv("TZ", "UTC", 1);
        tzset();
        if (argc == 3 && !strcmp(argv[1], "--svg")) {
                char *out = NULL;
                int r = run((struct rec_show_opts) { .svg_path = argv[2] }, &out);
                free(out);
                if (r < 0)
                        fprintf(stderr, "writing %s: %s\n", argv[2], strerror(-r));
                return r < 0;
        }
        test_text();
        test_pid();
        test_at();
        test_json();
        test_follow();
        test_parse_time();
        test_perf();
        char tmp[] = "/tmp/test-rec-show-XXXXXX";
        if (mkdtemp(tmp)) {
                char path[64];
                snprintf(path, sizeof(path), "%s/chart.svg", tmp);
                test_svg(path);
                unlink(path);
                rmdir(tmp);
        }
        return TAP_DONE();
}
