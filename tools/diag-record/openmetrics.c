/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The latest figures as an OpenMetrics text file, for node_exporter's textfile
 * collector (which reads the .prom files of its directory): host, cgroups with a limit or processes, and the
 * top processes by CPU and RSS. Rates are over the last interval. Written into a
 * fixed buffer (nothing allocated per interval) and renamed over the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diag/log.h"
#include "diag/record.h"
#include "record.h"

#define OM_BUF          (512 * 1024)
#define OM_TOP          10
#define OM_CGROUPS      200

static char buf[OM_BUF];
static size_t len;
static bool overflow, warned;

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...) {
        va_list ap;
        int n;

        if (overflow)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf + len, sizeof buf - len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof buf - len) {
                overflow = true;
                return;
        }
        len += (size_t) n;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(const char *s) {
        for (; *s && !overflow; s++) {
                if (len + 3 >= sizeof buf) {
                        overflow = true;
                        return;
                }
                if (*s == '\\' || *s == '"') {
                        buf[len++] = '\\';
                        buf[len++] = *s;
                } else if (*s == '\n') {
                        buf[len++] = '\\';
                        buf[len++] = 'n';
                } else {
                        buf[len++] = *s;
                }
        }
}

static void family(const char *name, const char *type, const char *help) {
        put("# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static bool na(int64_t v) {
        return v == DIAG_REC_NA;
}

static double secs_between(const struct diag_rec_interval *cur, const struct diag_rec_interval *prev) {
        if (!prev || cur->boottime_ns <= prev->boottime_ns)
                return 0;
        return (double) (cur->boottime_ns - prev->boottime_ns) / 1e9;
}

static int64_t host(const struct diag_rec_interval *iv, int col) {
        return iv->t[DIAG_REC_HOST].nrows ? DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, col) : DIAG_REC_NA;
}

/* Counter delta of the host column over the interval, or -1. */
static double host_delta(const struct diag_rec_interval *cur, const struct diag_rec_interval *prev, int col) {
        int64_t a, b;

        if (!prev)
                return -1;
        a = host(prev, col);
        b = host(cur, col);
        if (na(a) || na(b) || b < a)
                return -1;
        return (double) (b - a);
}

static void host_metrics(const struct diag_rec_interval *cur, const struct diag_rec_interval *prev) {
        static const struct { int col; const char *name, *help; } gauges[] = {
                { H_MEM_TOTAL, "diagkit_memory_total_bytes", "MemTotal" },
                { H_MEM_AVAIL, "diagkit_memory_available_bytes", "MemAvailable" },
                { H_SWAP_TOTAL, "diagkit_swap_total_bytes", "SwapTotal" },
                { H_SWAP_FREE, "diagkit_swap_free_bytes", "SwapFree" },
                { H_PROCS_RUNNING, "diagkit_procs_running", "runnable tasks" },
                { H_PROCS_BLOCKED, "diagkit_procs_blocked", "tasks blocked on I/O" },
                { H_NR_PROCS, "diagkit_processes", "processes" },
        };
        static const struct { int col; const char *name, *help; } counters[] = {
                { H_OOM_KILL, "diagkit_oom_kills", "OOM kills since boot" },
                { H_PGMAJFAULT, "diagkit_major_faults", "major page faults since boot" },
                { H_FORKS, "diagkit_forks", "processes created since boot" },
        };
        static const struct { int col; const char *res, *kind; } psi[] = {
                { H_PSI_CPU_SOME, "cpu", "some" }, { H_PSI_CPU_FULL, "cpu", "full" },
                { H_PSI_MEM_SOME, "memory", "some" }, { H_PSI_MEM_FULL, "memory", "full" },
                { H_PSI_IO_SOME, "io", "some" }, { H_PSI_IO_FULL, "io", "full" },
        };
        double secs = secs_between(cur, prev);
        int64_t v;

        for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++) {
                v = host(cur, gauges[i].col);
                if (na(v))
                        continue;
                family(gauges[i].name, "gauge", gauges[i].help);
                put("%s %" PRId64 "\n", gauges[i].name, v);
        }
        v = host(cur, H_LOAD1);
        if (!na(v)) {
                family("diagkit_load1", "gauge", "1-minute load average");
                put("diagkit_load1 %.2f\n", (double) v / 1000);
        }
        for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
                v = host(cur, counters[i].col);
                if (na(v))
                        continue;
                family(counters[i].name, "counter", counters[i].help);
                put("%s_total %" PRId64 "\n", counters[i].name, v);
        }
        if (secs > 0) {
                double total = 0, idle = 0, iowait = 0, d;
                for (int c = H_CPU_USER; c <= H_CPU_STEAL; c++) {
                        d = host_delta(cur, prev, c);
                        if (d > 0)
                                total += d;
                }
                idle = host_delta(cur, prev, H_CPU_IDLE);
                iowait = host_delta(cur, prev, H_CPU_IOWAIT);
                if (total > 0 && idle >= 0 && iowait >= 0) {
                        family("diagkit_cpu_busy_ratio", "gauge", "share of CPU time not idle over the last interval");
                        put("diagkit_cpu_busy_ratio %.4f\n", (total - idle - iowait) / total);
                        family("diagkit_cpu_iowait_ratio", "gauge", "share of CPU time in iowait over the last interval");
                        put("diagkit_cpu_iowait_ratio %.4f\n", iowait / total);
                }
                family("diagkit_pressure_ratio", "gauge", "PSI stall share over the last interval");
                for (size_t i = 0; i < sizeof psi / sizeof psi[0]; i++) {
                        d = host_delta(cur, prev, psi[i].col);
                        if (d < 0)
                                continue;
                        put("diagkit_pressure_ratio{resource=\"%s\",kind=\"%s\"} %.4f\n", psi[i].res, psi[i].kind,
                            d / 1e6 / secs);
                }
                d = host_delta(cur, prev, H_PGMAJFAULT);
                if (d >= 0) {
                        family("diagkit_major_faults_per_second", "gauge", "major faults per second, last interval");
                        put("diagkit_major_faults_per_second %.1f\n", d / secs);
                }
        }
        family("diagkit_dstate_threads", "gauge", "threads in uninterruptible sleep");
        put("diagkit_dstate_threads %zu\n", cur->t[DIAG_REC_DSTATE].nrows);
}

static void disk_metrics(const struct diag_rec_interval *cur, const struct diag_rec_interval *prev) {
        double secs = secs_between(cur, prev);
        const struct diag_rec_table *t = &cur->t[DIAG_REC_DISK];

        if (secs <= 0 || !t->nrows)
                return;
        family("diagkit_disk_read_bytes_per_second", "gauge", "disk reads, last interval");
        family("diagkit_disk_write_bytes_per_second", "gauge", "disk writes, last interval");
        for (size_t r = 0; r < t->nrows; r++) {
                ssize_t p = -1;
                for (size_t q = 0; q < prev->t[DIAG_REC_DISK].nrows; q++)
                        if (diag_rec_key_cmp(cur, r, prev, q, DIAG_REC_DISK) == 0) {
                                p = (ssize_t) q;
                                break;
                        }
                if (p < 0)
                        continue;
                const char *name = diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_DISK, r, DK_NAME));
                int64_t rd = DIAG_REC_NUM(cur, DIAG_REC_DISK, r, DK_RD_SECTORS) - DIAG_REC_NUM(prev, DIAG_REC_DISK, p, DK_RD_SECTORS);
                int64_t wr = DIAG_REC_NUM(cur, DIAG_REC_DISK, r, DK_WR_SECTORS) - DIAG_REC_NUM(prev, DIAG_REC_DISK, p, DK_WR_SECTORS);
                if (rd < 0 || wr < 0)
                        continue;
                put("diagkit_disk_read_bytes_per_second{disk=\"");
                put_label(name);
                put("\"} %.0f\n", (double) rd * 512 / secs);
                put("diagkit_disk_write_bytes_per_second{disk=\"");
                put_label(name);
                put("\"} %.0f\n", (double) wr * 512 / secs);
        }
}

static void cgroup_metrics(const struct diag_rec_interval *cur) {
        const struct diag_rec_table *t = &cur->t[DIAG_REC_CGROUP];
        unsigned n = 0;

        if (!t->nrows)
                return;
        family("diagkit_cgroup_memory_bytes", "gauge", "memory charged to the cgroup");
        family("diagkit_cgroup_memory_limit_bytes", "gauge", "the cgroup's memory limit (0: none)");
        family("diagkit_cgroup_oom_kills", "counter", "OOM kills in the cgroup");
        for (size_t r = 0; r < t->nrows && n < OM_CGROUPS; r++) {
                int64_t limit = DIAG_REC_NUM(cur, DIAG_REC_CGROUP, r, CG_MEM_LIMIT);
                int64_t procs = DIAG_REC_NUM(cur, DIAG_REC_CGROUP, r, CG_NPROCS);
                int64_t mem = DIAG_REC_NUM(cur, DIAG_REC_CGROUP, r, CG_MEM_CURRENT);
                int64_t kills = DIAG_REC_NUM(cur, DIAG_REC_CGROUP, r, CG_MEM_OOM_KILL);
                const char *path = diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_CGROUP, r, CG_PATH));
                const char *ver = diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_CGROUP, r, CG_VERSION));

                if (na(mem) || ((na(limit) || limit <= 0) && (na(procs) || procs <= 0)))
                        continue;
                n++;
                put("diagkit_cgroup_memory_bytes{cgroup=\"");
                put_label(path);
                put("\",version=\"%s\"} %" PRId64 "\n", ver, mem);
                if (!na(limit)) {
                        put("diagkit_cgroup_memory_limit_bytes{cgroup=\"");
                        put_label(path);
                        put("\",version=\"%s\"} %" PRId64 "\n", ver, limit);
                }
                if (!na(kills)) {
                        put("diagkit_cgroup_oom_kills_total{cgroup=\"");
                        put_label(path);
                        put("\",version=\"%s\"} %" PRId64 "\n", ver, kills);
                }
        }
}

/* The OM_TOP largest of value[] (indices into rows), largest first. */
static size_t top_n(const double *value, size_t nrows, size_t *idx) {
        size_t n = 0;

        for (size_t r = 0; r < nrows; r++) {
                size_t k;
                if (value[r] <= 0)
                        continue;
                if (n < OM_TOP)
                        n++;
                else if (value[r] <= value[idx[n - 1]])
                        continue;
                for (k = n - 1; k > 0 && value[idx[k - 1]] < value[r]; k--)
                        idx[k] = idx[k - 1];
                idx[k] = r;
        }
        return n;
}

static void proc_metrics(const struct diag_rec_interval *cur, const struct diag_rec_interval *prev) {
        static double *value;
        static size_t value_alloc;
        const struct diag_rec_table *t = &cur->t[DIAG_REC_PROC];
        double secs = secs_between(cur, prev), hz;
        size_t idx[OM_TOP], n;

        if (!t->nrows)
                return;
        if (t->nrows > value_alloc) {
                /* grows with the process count, then stays */
                if (DIAG_GROW(value, value_alloc, t->alloc) < 0)
                        return;
        }
        hz = (double) host(cur, H_CLK_TCK);
        if (secs > 0 && hz > 0) {
                for (size_t r = 0; r < t->nrows; r++) {
                        ssize_t p = diag_rec_find_proc(prev, (pid_t) DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_PID),
                                                       DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_START));
                        value[r] = 0;
                        if (p < 0)
                                continue;
                        int64_t d = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_UTIME) + DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_STIME) -
                                    DIAG_REC_NUM(prev, DIAG_REC_PROC, p, PR_UTIME) - DIAG_REC_NUM(prev, DIAG_REC_PROC, p, PR_STIME);
                        value[r] = d > 0 ? (double) d / hz / secs : 0;
                }
                n = top_n(value, t->nrows, idx);
                family("diagkit_process_cpu_ratio", "gauge", "CPU time per second of the busiest processes (1 = one CPU)");
                for (size_t i = 0; i < n; i++) {
                        put("diagkit_process_cpu_ratio{pid=\"%" PRId64 "\",comm=\"", DIAG_REC_NUM(cur, DIAG_REC_PROC, idx[i], PR_PID));
                        put_label(diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_PROC, idx[i], PR_COMM)));
                        put("\"} %.3f\n", value[idx[i]]);
                }
        }
        for (size_t r = 0; r < t->nrows; r++) {
                int64_t rss = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_RSS);
                value[r] = na(rss) ? 0 : (double) rss;
        }
        n = top_n(value, t->nrows, idx);
        family("diagkit_process_rss_bytes", "gauge", "resident memory of the largest processes");
        for (size_t i = 0; i < n; i++) {
                put("diagkit_process_rss_bytes{pid=\"%" PRId64 "\",comm=\"", DIAG_REC_NUM(cur, DIAG_REC_PROC, idx[i], PR_PID));
                put_label(diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_PROC, idx[i], PR_COMM)));
                put("\"} %.0f\n", value[idx[i]]);
        }
}

void openmetrics_write(const char *path, const struct diag_rec_interval *cur, const struct diag_rec_interval *prev) {
        char tmp[PATH_MAX];
        const char *slash = strrchr(path, '/');
        size_t dirlen = slash ? (size_t) (slash - path + 1) : 0;
        int fd, n;

        len = 0;
        overflow = false;
        family("diagkit_record_timestamp_seconds", "gauge", "when these figures were read");
        put("diagkit_record_timestamp_seconds %.3f\n", (double) cur->realtime_ns / 1e9);
        host_metrics(cur, prev);
        if (prev)
                disk_metrics(cur, prev);
        cgroup_metrics(cur);
        proc_metrics(cur, prev);
        if (overflow)
                len = 0;        /* never a cut file: the whole text or nothing new */
        put("# EOF\n");
        if (overflow)
                return;

        n = snprintf(tmp, sizeof tmp, "%.*s.%s.tmp", (int) dirlen, path, path + dirlen);
        if (n < 0 || (size_t) n >= sizeof tmp)
                return;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0) {
                bool ok = write(fd, buf, len) == (ssize_t) len;
                if (close(fd) < 0)
                        ok = false;
                if (ok && rename(tmp, path) == 0) {
                        warned = false;
                        return;
                }
                unlink(tmp);
        }
        if (!warned)
                log_warn("cannot write %s: %m (the recording goes on)", path);
        warned = true;
}
