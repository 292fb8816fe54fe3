/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's triggers: parsing (good specs, bad specs and their messages), checks
 * against synthetic intervals for every kind, fds against a real child, and PSI
 * triggers armed on this kernel (with CPU pressure the test makes itself).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/rectrigger.h"
#include "diag/util.h"
#include "tap.h"

#define SEC 1000000000LL
#define GiB (1024LL * 1024 * 1024)
#define MiB (1024LL * 1024)

static struct diag_rec_strings *strs;

#define CHECK_HAS(s, sub) do { const char *_s = (s), *_sub = (sub); tap_run++; \
        if (!strstr(_s, _sub)) { tap_failed++; \
        fprintf(stderr, "%s:%d: \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, _s, _sub); } } while (0)

/* ---- parsing ---- */

static void good(const char *spec, enum diag_rec_trigger_kind kind) {
        struct diag_rec_trigger *t = NULL;
        char err[256];
        int r = diag_rec_trigger_parse(spec, &t, err, sizeof err);

        CHECK_INT(r, 0);
        if (r < 0) {
                fprintf(stderr, "  %s: %s\n", spec, err);
                return;
        }
        CHECK_INT(diag_rec_trigger_kind(t), kind);
        CHECK_STR(diag_rec_trigger_spec(t), spec);
        CHECK_INT(diag_rec_trigger_fd(t), -1);
        diag_rec_trigger_free(t);
}

static void bad(const char *spec, const char *word) {
        struct diag_rec_trigger *t = NULL;
        char err[256] = "";
        int r = diag_rec_trigger_parse(spec, &t, err, sizeof err);

        CHECK_INT(r, -EINVAL);
        CHECK(t == NULL);
        CHECK(strchr(err, '\n') == NULL);
        CHECK_HAS(err, word);
        if (r == 0)
                diag_rec_trigger_free(t);
}

static void test_parse(void) {
        good("psi:memory:some>10%", DIAG_TRIG_PSI);
        good("psi:cpu:full>5.5%/2s", DIAG_TRIG_PSI);
        good("psi:io:some>20%/500ms@/sys/fs/cgroup/x", DIAG_TRIG_PSI);
        good("psi:memory:full>10%/10s@system.slice/user@1000.service", DIAG_TRIG_PSI);
        good("memavail<10%", DIAG_TRIG_MEMAVAIL);
        good("memavail<2.5%", DIAG_TRIG_MEMAVAIL);
        good("memavail<512M", DIAG_TRIG_MEMAVAIL);
        good("memavail<1.5GiB", DIAG_TRIG_MEMAVAIL);
        good("memavail<2GB", DIAG_TRIG_MEMAVAIL);
        good("memavail<1048576", DIAG_TRIG_MEMAVAIL);
        good("load>8", DIAG_TRIG_LOAD);
        good("load>12.5", DIAG_TRIG_LOAD);
        good("count:php-fpm>64", DIAG_TRIG_COUNT);
        good("count:^/usr/bin/(a|b) --x=1:2>y>3", DIAG_TRIG_COUNT);
        good("count:1234>0", DIAG_TRIG_COUNT);
        good("rss:worker>1G", DIAG_TRIG_RSS);
        good("rss:worker>1024", DIAG_TRIG_RSS);
        good("rss:worker>1.5T", DIAG_TRIG_RSS);
        good("rss:worker>300KiB", DIAG_TRIG_RSS);
        good("cpu:php>90%", DIAG_TRIG_CPU);
        good("cpu:php>150.5%/30s", DIAG_TRIG_CPU);
        good("cpu:php>90%/2m", DIAG_TRIG_CPU);
        good("threads:java>500", DIAG_TRIG_THREADS);
        good("fds:nginx>10000", DIAG_TRIG_FDS);
        good("dstate>4", DIAG_TRIG_DSTATE);
        good("dstate>0/30s", DIAG_TRIG_DSTATE);
        good("oom", DIAG_TRIG_OOM);

        /* the exact message */
        struct diag_rec_trigger *t = NULL;
        char err[256];
        CHECK_INT(diag_rec_trigger_parse("cpu:php>x", &t, err, sizeof err), -EINVAL);
        CHECK_STR(err, "cpu: expected P% after '>' in 'cpu:php>x'");

        bad("", "empty");
        bad("foo>1", "unknown trigger 'foo'");
        bad(">1", "unknown trigger");
        bad("cpu:php>90", "P%");
        bad("cpu:php>90%/10", "duration");
        bad("cpu:php>90%/0s", "duration");
        bad("cpu:php>90%/5h", "duration");
        bad("cpu:>90%", "PATTERN");
        bad("cpu:php", "PATTERN>");
        bad("cpu>90%", "PATTERN");
        bad("count:(a>3", "regular expression");
        bad("count:a<3", "only '>'");
        bad("count:a>-1", "whole number");
        bad("count:a>1.5", "whole number");
        bad("count:a>", "whole number");
        bad("count:99999999999>1", "out of range");
        bad("threads:a>x", "whole number");
        bad("fds:a>1k", "whole number");
        bad("rss:a>1X", "SIZE");
        bad("rss:a>G", "SIZE");
        bad("rss:a>1.G", "SIZE");
        bad("memavail>10%", "only '<'");
        bad("memavail<0%", "above 0%");
        bad("memavail<101%", "at most 100%");
        bad("memavail<abc", "SIZE");
        bad("memavail<10%%", "P%");
        bad("memavail", "expected '<'");
        bad("load>", "number");
        bad("load>1e3", "number");
        bad("load<3", "only '>'");
        bad("dstate>x", "number of threads");
        bad("dstate>3/5", "duration");
        bad("oom:1", "no arguments");
        bad("psi", "psi:RES");
        bad("psi:disk:some>1%", "unknown resource 'disk'");
        bad("psi:memory:most>1%", "'some' or 'full'");
        bad("psi:memory:some>10", "P%");
        bad("psi:memory:some<10%", "only '>'");
        bad("psi:memory:some>10%/100ms", "500ms..10s");
        bad("psi:memory:some>10%/11s", "500ms..10s");
        bad("psi:memory:some>10%/1", "window");
        bad("psi:memory:some>0%", "above 0%");
        bad("psi:memory:some>100.5%", "at most 100%");
        bad("psi:memory:some>10%@", "cgroup");
}

/* ---- synthetic intervals ---- */

static void iv_new(struct diag_rec_interval *iv, int64_t t_ns) {
        diag_rec_interval_init(iv, strs);
        iv->boottime_ns = t_ns;
        iv->realtime_ns = 1700000000 * SEC + t_ns;
        iv->interval_ms = 1000;
        ssize_t h = diag_rec_add_row(iv, DIAG_REC_HOST);
        CHECK_INT(h, 0);
        DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, H_CLK_TCK) = 100;
        DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, H_NCPU) = 2;
        DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, H_MEM_TOTAL) = 16 * GiB;
        DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, H_MEM_AVAIL) = 8 * GiB;
        DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, H_LOAD1) = 500;
}

static uint32_t S(const char *s) {
        return diag_rec_intern(strs, s, strlen(s));
}

static void add_proc(struct diag_rec_interval *iv, pid_t pid, int64_t start, const char *comm, const char *cmd,
                     int64_t ticks, int64_t rss, int64_t threads) {
        ssize_t r = diag_rec_add_row(iv, DIAG_REC_PROC);
        CHECK(r >= 0);
        DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_COMM) = S(comm);
        DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CMD) = S(cmd);
        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_PID) = pid;
        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_START) = start;
        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_UTIME) = ticks - ticks / 4;
        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_STIME) = ticks / 4;
        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_RSS) = rss;
        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_THREADS) = threads;
        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_STATE) = 'S';
}

static void add_dstate(struct diag_rec_interval *iv, pid_t tid, pid_t pid, const char *comm, const char *wchan) {
        ssize_t r = diag_rec_add_row(iv, DIAG_REC_DSTATE);
        CHECK(r >= 0);
        DIAG_REC_STR(iv, DIAG_REC_DSTATE, r, DS_COMM) = S(comm);
        DIAG_REC_STR(iv, DIAG_REC_DSTATE, r, DS_WCHAN) = S(wchan);
        DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_TID) = tid;
        DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_PID) = pid;
}

static void sort_all(struct diag_rec_interval *iv) {
        diag_rec_sort(iv, DIAG_REC_PROC);
        diag_rec_sort(iv, DIAG_REC_DSTATE);
}

static struct diag_rec_trigger *parse_ok(const char *spec) {
        struct diag_rec_trigger *t = NULL;
        char err[256];
        if (diag_rec_trigger_parse(spec, &t, err, sizeof err) < 0) {
                fprintf(stderr, "cannot parse %s: %s\n", spec, err);
                exit(99);
        }
        return t;
}

/* One check; *n gets the pids' count. */
static bool check(struct diag_rec_trigger *t, const struct diag_rec_interval *cur, const struct diag_rec_interval *prev,
                  char *why, pid_t *pids, size_t *n, size_t cap) {
        *n = cap;
        return diag_rec_trigger_check(t, cur, prev, 0, why, 256, pids, n);
}

static void test_host(void) {
        struct diag_rec_interval iv;
        struct diag_rec_trigger *t;
        char why[256];
        pid_t pids[8];
        size_t n;

        iv_new(&iv, 100 * SEC);
        t = parse_ok("memavail<10%");
        CHECK(!check(t, &iv, NULL, why, pids, &n, 8));
        CHECK_STR(why, "");
        DIAG_REC_NUM(&iv, DIAG_REC_HOST, 0, H_MEM_AVAIL) = 800 * MiB;
        CHECK(check(t, &iv, NULL, why, pids, &n, 8));
        CHECK_STR(why, "memavail<10%: MemAvailable 800.0 MiB is 4.9% of MemTotal 16.0 GiB");
        CHECK_INT(n, 0);
        DIAG_REC_NUM(&iv, DIAG_REC_HOST, 0, H_MEM_AVAIL) = DIAG_REC_NA;
        CHECK(!check(t, &iv, NULL, why, pids, &n, 8));
        diag_rec_trigger_free(t);

        t = parse_ok("memavail<512M");
        DIAG_REC_NUM(&iv, DIAG_REC_HOST, 0, H_MEM_AVAIL) = 600 * MiB;
        CHECK(!check(t, &iv, NULL, why, pids, &n, 8));
        DIAG_REC_NUM(&iv, DIAG_REC_HOST, 0, H_MEM_AVAIL) = 400 * MiB;
        CHECK(check(t, &iv, NULL, why, pids, &n, 8));
        CHECK_STR(why, "memavail<512M: MemAvailable 400.0 MiB");
        diag_rec_trigger_free(t);

        t = parse_ok("load>8");
        DIAG_REC_NUM(&iv, DIAG_REC_HOST, 0, H_LOAD1) = 8000;
        CHECK(!check(t, &iv, NULL, why, pids, &n, 8));                 /* above, not at */
        DIAG_REC_NUM(&iv, DIAG_REC_HOST, 0, H_LOAD1) = 9420;
        CHECK(check(t, &iv, NULL, why, pids, &n, 8));
        CHECK_STR(why, "load>8: 1-minute load average 9.42");
        diag_rec_trigger_free(t);
        t = parse_ok("load>9.5");
        CHECK(!check(t, &iv, NULL, why, pids, &n, 8));
        diag_rec_trigger_free(t);

        /* an interval without a host row */
        struct diag_rec_interval empty;
        diag_rec_interval_init(&empty, strs);
        t = parse_ok("load>0");
        CHECK(!check(t, &empty, NULL, why, pids, &n, 8));
        diag_rec_trigger_free(t);
        diag_rec_interval_free(&empty);

        /* oom: the count from the kernel log, the victim when the interval holds its event */
        t = parse_ok("oom");
        n = 8;
        CHECK(!diag_rec_trigger_check(t, &iv, NULL, 0, why, sizeof why, pids, &n));
        CHECK(diag_rec_trigger_check(t, NULL, NULL, 2, why, sizeof why, pids, &n));
        CHECK_STR(why, "oom: 2 OOM kills");
        CHECK_INT(n, 0);
        ssize_t e = diag_rec_add_row(&iv, DIAG_REC_EVENT);
        DIAG_REC_STR(&iv, DIAG_REC_EVENT, e, EV_KIND) = S(DIAG_REC_EV_OOM);
        DIAG_REC_STR(&iv, DIAG_REC_EVENT, e, EV_COMM) = S("java");
        DIAG_REC_NUM(&iv, DIAG_REC_EVENT, e, EV_PID) = 777;
        DIAG_REC_NUM(&iv, DIAG_REC_EVENT, e, EV_RSS) = 3 * GiB;
        CHECK(diag_rec_trigger_check(t, &iv, NULL, 1, why, sizeof why, pids, &n));
        CHECK_STR(why, "oom: 1 OOM kill, the last pid 777 (java) rss 3.0 GiB");
        diag_rec_trigger_free(t);

        /* psi fires from its fd, never from a check */
        t = parse_ok("psi:memory:some>10%");
        CHECK(!diag_rec_trigger_check(t, &iv, NULL, 3, why, sizeof why, pids, &n));
        CHECK(!diag_rec_trigger_psi_event(t, POLLPRI, why, sizeof why));      /* not armed */
        diag_rec_trigger_free(t);
        diag_rec_interval_free(&iv);
}

/* SPEC fires on iv, with why (when not NULL) and exactly the pids want (0-terminated, largest first). */
static void expect_fire(const char *spec, const struct diag_rec_interval *iv, const char *why_want, const pid_t *want) {
        struct diag_rec_trigger *t = parse_ok(spec);
        char why[256];
        pid_t pids[8];
        size_t n, k = 0;

        CHECK(check(t, iv, NULL, why, pids, &n, 8));
        if (why_want)
                CHECK_STR(why, why_want);
        while (want[k])
                k++;
        CHECK_INT(n, k);
        for (size_t i = 0; i < k && i < n; i++)
                CHECK_INT(pids[i], want[i]);
        diag_rec_trigger_free(t);
}

static void expect_quiet(const char *spec, const struct diag_rec_interval *iv) {
        struct diag_rec_trigger *t = parse_ok(spec);
        char why[256];
        pid_t pids[8];
        size_t n;

        CHECK(!check(t, iv, NULL, why, pids, &n, 8));
        CHECK_INT(n, 0);
        CHECK_STR(why, "");
        diag_rec_trigger_free(t);
}

/* The pids' capacity is respected; no out-parameters at all is fine. */
static void test_pid_capacity(const struct diag_rec_interval *iv) {
        struct diag_rec_trigger *t = parse_ok("rss:^worker>1G");
        char why[256];
        pid_t pids[8];
        size_t n;

        CHECK(check(t, iv, NULL, why, pids, &n, 1));
        CHECK_INT(n, 1);
        CHECK_INT(pids[0], 4243);
        CHECK(diag_rec_trigger_check(t, iv, NULL, 0, NULL, 0, NULL, NULL));
        diag_rec_trigger_free(t);
}

static void test_procs(void) {
        struct diag_rec_interval iv;

        iv_new(&iv, 100 * SEC);
        add_proc(&iv, 4243, 500, "worker", "worker --queue=b", 0, 2 * GiB, 40);
        add_proc(&iv, 4242, 400, "worker", "worker --queue=a", 0, 1300 * MiB, 812);
        add_proc(&iv, 5000, 300, "other", "other --big", 0, 5 * GiB, 900);
        add_proc(&iv, 6000, 300, "php-fpm", "php-fpm: pool www", 0, 30 * MiB, 1);
        add_proc(&iv, 6001, 300, "php-fpm", "php-fpm: pool www", 0, 50 * MiB, 1);
        add_proc(&iv, 6002, 300, "php-fpm", "php-fpm: pool www", 0, 40 * MiB, 1);
        add_proc(&iv, getpid(), 1, "diag-record", "diag-record --on count:php-fpm>2", 0, 10 * MiB, 1);
        add_proc(&iv, 7000, 300, "php", "php worker: queue=>high --x", 0, 1 * MiB, 1);
        add_proc(&iv, 8, 2, "kworker/0:1", "", 0, 0, 1);
        sort_all(&iv);

        /* count: the recorder's own pid (whose command line names the pattern) is not
         * counted; the pids largest rss first */
        expect_fire("count:php-fpm>2", &iv, "count:php-fpm>2: 3 processes match 'php-fpm'",
                    (const pid_t[]) { 6001, 6002, 6000, 0 });
        expect_quiet("count:php-fpm>3", &iv);

        /* a pid pattern */
        expect_fire("count:4242>0", &iv, "count:4242>0: 1 process matches pid 4242", (const pid_t[]) { 4242, 0 });
        expect_fire("rss:4242>1G", &iv, "rss:4242>1G: pid 4242 (worker) rss 1.3 GiB", (const pid_t[]) { 4242, 0 });

        /* regexes with ':' and '>' in them, split at the last '>' */
        expect_fire("count:worker: queue=>high>0", &iv,
                    "count:worker: queue=>high>0: 1 process matches 'worker: queue=>high'", (const pid_t[]) { 7000, 0 });
        expect_fire("count:^php-fpm: pool (www|api)$>2", &iv, NULL, (const pid_t[]) { 6001, 6002, 6000, 0 });
        /* kernel threads: matched by their name */
        expect_fire("count:^kworker/>0", &iv, NULL, (const pid_t[]) { 8, 0 });

        /* rss: any matching process above, the largest first */
        expect_fire("rss:^worker>1G", &iv, "rss:^worker>1G: pid 4243 (worker) rss 2.0 GiB (and 1 more)",
                    (const pid_t[]) { 4243, 4242, 0 });
        expect_quiet("rss:^worker>2G", &iv);
        expect_quiet("rss:nomatch>0", &iv);

        test_pid_capacity(&iv);

        /* threads */
        expect_fire("threads:worker>500", &iv, "threads:worker>500: pid 4242 (worker) has 812 threads",
                    (const pid_t[]) { 4242, 0 });
        expect_quiet("threads:worker>812", &iv);
        diag_rec_interval_free(&iv);
}

/* CPU: spin (pid 300) uses pct[i] percent of one CPU over the interval ending at second i. */
static void cpu_series(struct diag_rec_trigger *t, const int *pct, size_t count, const bool *expect) {
        struct diag_rec_interval iv[2];
        int64_t ticks = 1000;
        char why[256];
        pid_t pids[4];
        size_t n;

        iv_new(&iv[0], 50 * SEC);
        diag_rec_interval_init(&iv[1], strs);
        add_proc(&iv[0], 300, 77, "spin", "spin --hard", ticks, MiB, 1);
        add_proc(&iv[0], 301, 78, "spin", "spin --idle", 0, MiB, 1);
        sort_all(&iv[0]);
        CHECK(!check(t, &iv[0], NULL, why, pids, &n, 4));
        for (size_t i = 0; i < count; i++) {
                struct diag_rec_interval *cur = &iv[(i + 1) % 2], *prev = &iv[i % 2];
                diag_rec_interval_free(cur);
                iv_new(cur, (int64_t) (51 + i) * SEC);
                ticks += pct[i];                        /* clk_tck 100: ticks per second = percent */
                add_proc(cur, 301, 78, "spin", "spin --idle", 0, MiB, 1);
                add_proc(cur, 300, 77, "spin", "spin --hard", ticks, MiB, 1);
                sort_all(cur);
                bool fired = check(t, cur, prev, why, pids, &n, 4);
                if (fired != expect[i])
                        fprintf(stderr, "cpu series step %zu: fired %d, expected %d (%s)\n", i, fired, expect[i], why);
                CHECK(fired == expect[i]);
                if (fired) {
                        CHECK_INT(n, 1);
                        CHECK_INT(pids[0], 300);
                        CHECK_HAS(why, "pid 300 (spin) at ");
                }
        }
        diag_rec_interval_free(&iv[0]);
        diag_rec_interval_free(&iv[1]);
}

static void test_cpu(void) {
        struct diag_rec_trigger *t;

        /* above 50% for 3 s: fires at the third interval above, and on every one after */
        t = parse_ok("cpu:spin>50%/3s");
        cpu_series(t, (const int[]) { 90, 90, 90, 90 }, 4, (const bool[]) { false, false, true, true });
        diag_rec_trigger_free(t);

        /* a break (one interval at 10%) restarts the count: no firing within 3 s of it */
        t = parse_ok("cpu:spin>50%/3s");
        cpu_series(t, (const int[]) { 90, 90, 10, 90, 90, 90 }, 6,
                   (const bool[]) { false, false, false, false, false, true });
        diag_rec_trigger_free(t);

        /* at the threshold is not above it */
        t = parse_ok("cpu:spin>90%/1s");
        cpu_series(t, (const int[]) { 90, 90, 91 }, 3, (const bool[]) { false, false, true });
        diag_rec_trigger_free(t);

        /* the default duration is 10 s */
        t = parse_ok("cpu:spin>50%");
        int p[11];
        bool e[11];
        for (int i = 0; i < 11; i++) {
                p[i] = 99;
                e[i] = i >= 9;
        }
        cpu_series(t, p, 11, e);
        diag_rec_trigger_free(t);

        /* more than one CPU: 150% */
        t = parse_ok("cpu:hard>120%/1s");
        cpu_series(t, (const int[]) { 150 }, 1, (const bool[]) { true });
        diag_rec_trigger_free(t);

        /* the why, and a restart (same pid, another start time) or a missing prev resets */
        struct diag_rec_interval a, b, c;
        char why[256];
        pid_t pids[4];
        size_t n;
        t = parse_ok("cpu:spin>50%/2s");
        iv_new(&a, 10 * SEC);
        add_proc(&a, 300, 77, "spin", "spin", 100, MiB, 1);
        iv_new(&b, 11 * SEC);
        add_proc(&b, 300, 77, "spin", "spin", 180, MiB, 1);
        iv_new(&c, 12 * SEC);
        add_proc(&c, 300, 77, "spin", "spin", 260, MiB, 1);
        CHECK(!check(t, &b, &a, why, pids, &n, 4));
        CHECK(check(t, &c, &b, why, pids, &n, 4));
        CHECK_STR(why, "cpu:spin>50%/2s: pid 300 (spin) at 80.0% of one CPU for 2s");
        CHECK(!check(t, &c, NULL, why, pids, &n, 4));                  /* no prev: a break */
        CHECK(!check(t, &c, &b, why, pids, &n, 4));                    /* counting again from b */
        struct diag_rec_interval d;
        iv_new(&d, 12 * SEC);
        add_proc(&d, 300, 99, "spin", "spin", 260, MiB, 1);            /* pid reused */
        CHECK(!check(t, &d, &b, why, pids, &n, 4));
        diag_rec_interval_free(&d);
        /* a skipped interval (prev is not the interval last checked) is a break too:
         * above since a, checked at b, not at c, then at d against c */
        CHECK(!check(t, &b, &a, why, pids, &n, 4));
        iv_new(&d, 13 * SEC);
        add_proc(&d, 300, 77, "spin", "spin", 340, MiB, 1);
        CHECK(!check(t, &d, &c, why, pids, &n, 4));
        /* the same without the skip fires: the gap, not the figures, kept it quiet */
        CHECK(check(t, &c, &b, why, pids, &n, 4) || check(t, &d, &c, why, pids, &n, 4));
        diag_rec_interval_free(&d);
        diag_rec_interval_free(&a);
        diag_rec_interval_free(&b);
        diag_rec_interval_free(&c);
        diag_rec_trigger_free(t);
}

static void dstate_iv(struct diag_rec_interval *iv, int64_t sec, int nthreads) {
        iv_new(iv, sec * SEC);
        for (int i = 0; i < nthreads; i++)
                add_dstate(iv, 1000 + i, i < 2 ? 10 : 20 + i, i < 2 ? "nfsd" : "dd", i < 2 ? "rpc_wait_bit_killable" : "");
        sort_all(iv);
}

static void test_dstate(void) {
        struct diag_rec_interval iv[8];
        struct diag_rec_trigger *t;
        char why[256];
        pid_t pids[8];
        size_t n;

        /* no duration: one interval is enough; pids: the most D threads first */
        t = parse_ok("dstate>2");
        dstate_iv(&iv[0], 1, 2);
        dstate_iv(&iv[1], 2, 4);
        CHECK(!check(t, &iv[0], NULL, why, pids, &n, 8));
        CHECK(check(t, &iv[1], &iv[0], why, pids, &n, 8));
        CHECK_STR(why, "dstate>2: 4 threads in D state; most in pid 10 (nfsd): 2, in rpc_wait_bit_killable");
        CHECK_INT(n, 3);
        CHECK_INT(pids[0], 10);
        CHECK_INT(pids[1], 22);
        CHECK_INT(pids[2], 23);
        diag_rec_trigger_free(t);
        diag_rec_interval_free(&iv[0]);
        diag_rec_interval_free(&iv[1]);

        /* above 2 for 3 s, counted from the first interval that showed it; a break restarts */
        static const int counts[8] = { 3, 3, 3, 3, 1, 3, 3, 3 };
        static const bool expect[8] = { false, false, false, true, false, false, false, false };
        t = parse_ok("dstate>2/3s");
        for (int i = 0; i < 8; i++) {
                dstate_iv(&iv[i], 100 + i, counts[i]);
                bool fired = check(t, &iv[i], i ? &iv[i - 1] : NULL, why, pids, &n, 8);
                if (fired != expect[i])
                        fprintf(stderr, "dstate step %d: fired %d (%s)\n", i, fired, why);
                CHECK(fired == expect[i]);
                if (i == 3)
                        CHECK_STR(why, "dstate>2/3s: 3 threads in D state for 3s; most in pid 10 (nfsd): 2, "
                                  "in rpc_wait_bit_killable");
        }
        struct diag_rec_interval last;
        dstate_iv(&last, 108, 3);
        CHECK(check(t, &last, &iv[7], why, pids, &n, 8));               /* 3 s after the break */
        diag_rec_interval_free(&last);
        for (int i = 0; i < 8; i++)
                diag_rec_interval_free(&iv[i]);
        diag_rec_trigger_free(t);
}

/* ---- fds against a real process ---- */

static int64_t read_start(pid_t pid) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                return -1;
        const char *p = strrchr(buf, ')');
        for (int f = 2; p && f < 22; f++)
                p = strchr(p + 1, ' ');
        return p ? strtoll(p + 1, NULL, 10) : -1;
}

static void test_fds(void) {
        int ready[2], hold[2];
        char why[256], spec[64];
        pid_t pids[4];
        size_t n;

        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
                perror("pipe2");
                exit(99);
        }
        pid_t child = fork();
        if (child < 0) {
                perror("fork");
                exit(99);
        }
        if (child == 0) {
                char c = 0;
                /* Only its two pipe ends (100, 101) and 50 of /dev/null (0-49): 52 fds,
                 * whatever the test inherited. */
                if (dup2(ready[1], 100) < 0 || dup2(hold[0], 101) < 0)
                        _exit(1);
                ready[1] = 100;
                hold[0] = 101;
                close_range(0, 99, 0);
                close_range(102, ~0U, 0);
                for (int i = 0; i < 50; i++)
                        if (open("/dev/null", O_RDONLY) < 0)
                                _exit(1);
                if (write(ready[1], &c, 1) != 1)
                        _exit(1);
                while (read(hold[0], &c, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        char c;
        CHECK_INT(read(ready[0], &c, 1), 1);
        int64_t start = read_start(child);
        CHECK(start > 0);

        struct diag_rec_interval iv;
        iv_new(&iv, 5 * SEC);
        add_proc(&iv, child, start, "fdchild", "fdchild --open 50", 0, MiB, 1);
        add_proc(&iv, getpid(), read_start(getpid()), "fdchild", "fdchild (the test itself)", 0, MiB, 1);
        sort_all(&iv);

        struct diag_rec_trigger *t = parse_ok("fds:^fdchild>50");
        CHECK(check(t, &iv, NULL, why, pids, &n, 4));
        snprintf(spec, sizeof spec, "fds:^fdchild>50: pid %d (fdchild) has 52 open fds", (int) child);
        CHECK_STR(why, spec);
        CHECK_INT(n, 1);
        CHECK_INT(pids[0], child);
        diag_rec_trigger_free(t);
        t = parse_ok("fds:^fdchild>52");
        CHECK(!check(t, &iv, NULL, why, pids, &n, 4));
        diag_rec_trigger_free(t);
        snprintf(spec, sizeof spec, "fds:%d>40", (int) child);
        t = parse_ok(spec);
        CHECK(check(t, &iv, NULL, why, pids, &n, 4));
        /* another process under that pid (another start time) is not counted */
        DIAG_REC_NUM(&iv, DIAG_REC_PROC, diag_rec_find_proc(&iv, child, start), PR_START) = start + 1;
        CHECK(!check(t, &iv, NULL, why, pids, &n, 4));
        diag_rec_trigger_free(t);

        /* Another user's fds cannot be read (EACCES): not counted, no error. */
        if (geteuid() == 0) {
                pid_t u = fork();
                if (u == 0) {
                        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(3);
                        t = parse_ok("fds:^fdchild>0");
                        _exit(check(t, &iv, NULL, why, pids, &n, 4) ? 1 : 0);
                }
                int ust = -1;
                waitpid(u, &ust, 0);
                if (WIFEXITED(ust) && WEXITSTATUS(ust) == 3)
                        printf("# skipped the unreadable fds check: could not drop root\n");
                else
                        CHECK(WIFEXITED(ust) && WEXITSTATUS(ust) == 0);
        }

        close(hold[1]);
        close(ready[0]);
        int st;
        CHECK_INT(waitpid(child, &st, 0), child);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* gone: not counted, no error */
        DIAG_REC_NUM(&iv, DIAG_REC_PROC, diag_rec_find_proc(&iv, child, start + 1), PR_START) = start;
        t = parse_ok("fds:^fdchild>0");
        CHECK(!check(t, &iv, NULL, why, pids, &n, 4));
        diag_rec_trigger_free(t);
        diag_rec_interval_free(&iv);
}

/* ---- PSI on this kernel ---- */

static struct diag_rec_trigger *arm(const char *spec, int *ret, char *err, size_t size) {
        struct diag_rec_trigger *t = parse_ok(spec);
        *ret = diag_rec_trigger_arm(t, err, size);
        return t;
}

static int online_cpus(void) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) < 0)
                return (int) sysconf(_SC_NPROCESSORS_ONLN);
        return CPU_COUNT(&set);
}

static void test_psi(void) {
        struct diag_rec_trigger *t;
        char err[512], why[256];
        int r;

        /* a missing cgroup directory: -ENOENT and a reason, on any kernel */
        t = arm("psi:memory:some>5%@/nonexistent/cgroup", &r, err, sizeof err);
        CHECK_INT(r, -ENOENT);
        CHECK_HAS(err, "/nonexistent/cgroup/memory.pressure does not exist");
        CHECK_INT(diag_rec_trigger_fd(t), -1);
        diag_rec_trigger_free(t);

        if (access("/proc/pressure/memory", F_OK) < 0) {
                printf("# skipped the PSI checks: no /proc/pressure (a kernel without PSI)\n");
                t = arm("psi:memory:some>1%/1s", &r, err, sizeof err);
                CHECK_INT(r, -ENOENT);
                CHECK_HAS(err, "does not exist");
                diag_rec_trigger_free(t);
                return;
        }

        /* other kinds have nothing to arm */
        t = arm("load>1", &r, err, sizeof err);
        CHECK_INT(r, 0);
        CHECK_INT(diag_rec_trigger_fd(t), -1);
        diag_rec_trigger_free(t);

        t = arm("psi:memory:some>1%/1s", &r, err, sizeof err);
        if (r == -EACCES || r == -EINVAL) {
                /* unprivileged: refused, with the reason */
                printf("# psi:memory:some>1%%/1s refused here: %s\n", err);
                CHECK(strstr(err, "CAP_SYS_RESOURCE") || strstr(err, "2s"));
                diag_rec_trigger_free(t);
                t = arm("psi:memory:some>1%/2s", &r, err, sizeof err);
        }
        CHECK_INT(r, 0);
        if (r < 0)
                fprintf(stderr, "arm: %s\n", err);
        CHECK(diag_rec_trigger_fd(t) >= 0);
        /* a non-event and a vanished file */
        CHECK(!diag_rec_trigger_psi_event(t, POLLIN, why, sizeof why));
        CHECK(diag_rec_trigger_fd(t) >= 0);
        CHECK(!diag_rec_trigger_psi_event(t, POLLERR | POLLPRI, why, sizeof why));
        CHECK_INT(diag_rec_trigger_fd(t), -1);
        CHECK_HAS(why, "gone");
        CHECK_INT(diag_rec_trigger_arm(t, err, sizeof err), 0);         /* armed again */
        CHECK(diag_rec_trigger_fd(t) >= 0);
        diag_rec_trigger_free(t);

        /* the default window: 1s, or 2s (said) where the kernel takes only multiples of 2s */
        t = arm("psi:memory:some>1%", &r, err, sizeof err);
        CHECK(r == 0 || r == 1);
        if (r == 1) {
                printf("# psi:memory:some>1%% armed: %s\n", err);
                CHECK_HAS(err, "armed with 2s");
        }
        CHECK(diag_rec_trigger_fd(t) >= 0);
        diag_rec_trigger_free(t);

        /* Unprivileged, a 1 s window is refused by Linux 6.5+ (before: no write access at all). */
        if (geteuid() == 0) {
                int pfd[2];
                if (pipe(pfd) == 0) {
                        pid_t p = fork();
                        if (p == 0) {
                                close(pfd[0]);
                                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                                        _exit(3);
                                t = arm("psi:memory:some>5%/1s", &r, err, sizeof err);
                                dprintf(pfd[1], "%d %s", r, err);
                                _exit(0);
                        }
                        close(pfd[1]);
                        char msg[600] = "";
                        ssize_t k = read(pfd[0], msg, sizeof msg - 1);
                        msg[k > 0 ? k : 0] = 0;
                        close(pfd[0]);
                        waitpid(p, NULL, 0);
                        printf("# unprivileged psi:memory:some>5%%/1s: %s\n", *msg ? msg : "could not drop root");
                        if (*msg)
                                CHECK(strncmp(msg, "-22 ", 4) == 0 || strncmp(msg, "-13 ", 4) == 0);
                        if (strncmp(msg, "-22 ", 4) == 0)
                                CHECK_HAS(msg, "multiple of 2s");
                }
        }

        /* cpu full: refused system-wide by kernels before 5.13 (then said so) */
        t = arm("psi:cpu:full>5%/2s", &r, err, sizeof err);
        if (r < 0) {
                printf("# psi:cpu:full>5%%/2s refused: %s\n", err);
                CHECK(r != -EINVAL || strstr(err, "'full'"));
        }
        diag_rec_trigger_free(t);

        /* Make CPU pressure: twice as many spinners as CPUs; the trigger must fire within 5 s. */
        int ncpu = online_cpus();
        if (ncpu > 32) {
                printf("# skipped the CPU pressure event: %d CPUs are too many to load\n", ncpu);
                return;
        }
        const char *cpu_spec = "psi:cpu:some>5%/1s";
        t = arm(cpu_spec, &r, err, sizeof err);
        if (r == -EINVAL && strstr(err, "multiple of 2s")) {
                diag_rec_trigger_free(t);
                cpu_spec = "psi:cpu:some>5%/2s";
                t = arm(cpu_spec, &r, err, sizeof err);
        }
        if (r < 0) {
                printf("# skipped the CPU pressure event: %s\n", err);
                CHECK(r == -EACCES);
                diag_rec_trigger_free(t);
                return;
        }
        int nspin = MAX(4, 2 * ncpu);
        pid_t spin[64];
        for (int i = 0; i < nspin; i++) {
                spin[i] = fork();
                if (spin[i] == 0) {
                        alarm(30);              /* never outlive a crashed test */
                        for (volatile unsigned long x = 0;; x++)
                                ;
                }
        }
        bool fired = false;
        uint64_t deadline = diag_now_ns(CLOCK_MONOTONIC) + 5 * (uint64_t) SEC;
        while (!fired) {
                uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
                if (now >= deadline)
                        break;
                struct pollfd p = { .fd = diag_rec_trigger_fd(t), .events = POLLPRI };
                int k = poll(&p, 1, (int) ((deadline - now) / 1000000) + 1);
                if (k > 0)
                        fired = diag_rec_trigger_psi_event(t, p.revents, why, sizeof why);
                else if (k < 0 && errno != EINTR)
                        break;
        }
        for (int i = 0; i < nspin; i++)
                if (spin[i] > 0)
                        kill(spin[i], SIGKILL);
        for (int i = 0; i < nspin; i++)
                if (spin[i] > 0)
                        waitpid(spin[i], NULL, 0);
        CHECK(fired);
        if (fired)
                CHECK_STR(why, strstr(cpu_spec, "/2s") ? "cpu some stall > 5% of 2s (PSI trigger)"
                                                       : "cpu some stall > 5% of 1s (PSI trigger)");
        else
                fprintf(stderr, "%s: no POLLPRI within 5 s with %d spinners on %d CPUs\n", cpu_spec, nspin, ncpu);
        printf("# %s: %s\n", cpu_spec, fired ? why : "no event");
        diag_rec_trigger_free(t);
}

int main(void) {
        strs = diag_rec_strings_new();
        if (!strs)
                return 99;
        test_parse();
        test_host();
        test_procs();
        test_cpu();
        test_dstate();
        test_fds();
        test_psi();
        diag_rec_strings_free(strs);
        return TAP_DONE();
}
