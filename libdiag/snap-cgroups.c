/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-snap part: the cgroups of both hierarchies (cgroup2, and the v1 memory,
 * blkio, cpu and pids controllers), with memory against its limit, OOM events,
 * IO and CPU throttling as rates over two readings rate_ms apart, and pressure.
 * A v1 cgroup's controllers are merged into one row per path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag/kstat.h"
#include "diag/proc.h"
#include "diag/snap.h"
#include "diag/util.h"

/* Memory use above this share of the cgroup's limit is a finding (percent). */
#define CG_MEM_NEAR_LIMIT_PCT 90.0
/* Near its limit with at least this many major faults per second (its memory.stat
 * pgmajfault), a cgroup is read as thrashing: its file pages are dropped to stay
 * under the limit and read back from disk as soon as they are used again. */
#define CG_THRASH_MAJFLT_PER_S 200.0
/* Time throttled above this share of the window is a finding (percent of one CPU). */
#define CG_THROTTLED_PCT 10.0
/* The cgroup with the highest IO rate is named when it moves at least this (bytes/s)... */
#define CG_IO_BYTES_RATE_MIN (1024.0 * 1024.0)
/* ... or this many IOPS. */
#define CG_IO_IOPS_MIN 100.0
/* Bounds on the walk: depth below each hierarchy's root, and cgroups in all. */
#define CG_DEPTH_MAX 8
#define CG_MAX 1500
/* Devices of a cgroup's IO figures kept, at most (the totals count them all). */
#define CG_DEV_MAX 8
/* Hierarchies (mounts) looked at, at most. */
#define CG_HIER_MAX 8

enum {
        CTRL_MEM = DIAG_CG_MEM,
        CTRL_IO = DIAG_CG_IO,
        CTRL_CPU = DIAG_CG_CPU,
        CTRL_PIDS = DIAG_CG_PIDS,
        CTRL_ALL = CTRL_MEM | CTRL_IO | CTRL_CPU | CTRL_PIDS,
};

struct hier {
        char mnt[256];
        bool v2;
        unsigned ctrl;
        int fd;
};

enum { IO_RBYTES = DIAG_IO_RBYTES, IO_WBYTES = DIAG_IO_WBYTES, IO_RIOS = DIAG_IO_RIOS, IO_WIOS = DIAG_IO_WIOS, IO_N = DIAG_IO_N };

struct cgdev {
        char dev[16];                   /* "MAJ:MIN" */
        int64_t v[IO_N][2];             /* the two readings */
};

/* -1: unknown (absent file, or the controller is not there). */
struct cg {
        bool v2;
        char *path;                     /* "/" or "/a/b" */
        int64_t procs;
        int64_t mem_current, mem_limit; /* limit 0: none */
        int64_t mem_failcnt, ev_oom, ev_oom_kill, ev_high, ev_max;
        int64_t anon, file, pgmajfault[2];
        int64_t rbytes[2], wbytes[2], rios[2], wios[2];
        int64_t nr_periods[2], nr_throttled[2], throttled_usec[2];
        int64_t pids_current;
        /* CLOCK_MONOTONIC of each reading of its memory.stat, IO and cpu.stat files: the
         * rates are over these spans, not the walk's (a long walk would dilute them) */
        uint64_t t_mem[2], t_io[2], t_cpu[2];
        double psi_mem_some, psi_mem_full, psi_io_some, psi_io_full, psi_cpu_some;
        /* rates */
        double rbps, wbps, iops, throttled_pct, majflt_ps;
        struct cgdev dev[CG_DEV_MAX];
        size_t ndev;
};

struct entry {
        unsigned hier;
        size_t cg;
        char *rel;                      /* "." or "a/b" under the hierarchy */
};

struct walk {
        struct diag_snap *s;
        struct hier hier[CG_HIER_MAX];
        size_t nhier;
        struct cg *cg;
        size_t ncg, acg;
        struct entry *ent;
        size_t nent, aent;
        bool capped;
};

static void json_putp(struct json_object **o) {
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static void cg_init(struct cg *c) {
        int64_t *f = &c->procs;

        /* every int64_t from procs to pids_current */
        for (; f <= &c->pids_current; f++)
                *f = -1;
        c->psi_mem_some = c->psi_mem_full = c->psi_io_some = c->psi_io_full = c->psi_cpu_some = -1;
        c->rbps = c->wbps = c->iops = c->throttled_pct = c->majflt_ps = -1;
}

static int find_hierarchies(struct walk *w) {
        struct diag_cgroup_mount m[CG_HIER_MAX];
        _cleanup_free_ char *text = NULL;
        size_t n;
        int r = diag_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 4 << 20, &text, NULL);

        if (r < 0)
                return r;
        n = diag_cgroup_mounts(text, m, ELEMENTSOF(m));
        for (size_t i = 0; i < n; i++) {
                struct hier *h = &w->hier[w->nhier];

                if (!(m[i].ctrl & CTRL_ALL))
                        continue;
                memcpy(h->mnt, m[i].path, MIN(sizeof h->mnt, sizeof m[i].path));
                h->mnt[sizeof h->mnt - 1] = 0;
                h->v2 = m[i].v2;
                h->ctrl = m[i].ctrl & CTRL_ALL;
                h->fd = open(h->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (h->fd < 0)
                        continue;
                w->nhier++;
        }
        return 0;
}

static ssize_t find_cg(struct walk *w, bool v2, const char *path) {
        for (size_t i = 0; i < w->ncg; i++)
                if (w->cg[i].v2 == v2 && strcmp(w->cg[i].path, path) == 0)
                        return (ssize_t) i;
        return -1;
}

static void add_entry(struct walk *w, unsigned hi, const char *rel) {
        char path[4096];
        ssize_t ci;

        if (w->ncg >= CG_MAX) {
                w->capped = true;
                return;
        }
        snprintf(path, sizeof path, "%s%s", strcmp(rel, ".") == 0 ? "/" : "/", strcmp(rel, ".") == 0 ? "" : rel);
        ci = find_cg(w, w->hier[hi].v2, path);
        if (ci < 0) {
                if (DIAG_GROW(w->cg, w->acg, w->ncg + 1) < 0)
                        return;
                cg_init(&w->cg[w->ncg]);
                w->cg[w->ncg].v2 = w->hier[hi].v2;
                w->cg[w->ncg].path = strdup(path);
                if (!w->cg[w->ncg].path)
                        return;
                ci = (ssize_t) w->ncg++;
        }
        if (DIAG_GROW(w->ent, w->aent, w->nent + 1) < 0)
                return;
        w->ent[w->nent].hier = hi;
        w->ent[w->nent].cg = (size_t) ci;
        w->ent[w->nent].rel = strdup(rel);
        if (w->ent[w->nent].rel)
                w->nent++;
}

static void walk_dir(struct walk *w, unsigned hi, const char *rel, unsigned depth) {
        DIR *d;
        int fd;

        add_entry(w, hi, rel);
        if (depth >= CG_DEPTH_MAX || w->capped || diag_snap_expired(w->s))
                return;
        fd = openat(w->hier[hi].fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        for (struct dirent *de; (de = readdir(d)) && !w->capped;) {
                char sub[4096];

                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                if (strcmp(rel, ".") == 0)
                        snprintf(sub, sizeof sub, "%s", de->d_name);
                else if ((size_t) snprintf(sub, sizeof sub, "%s/%s", rel, de->d_name) >= sizeof sub)
                        continue;
                walk_dir(w, hi, sub, depth + 1);
        }
        closedir(d);
}

/* Read rel/name under the hierarchy. */
static char *read_cg_file(struct walk *w, const struct entry *e, const char *name) {
        char path[4200];
        char *text = NULL;

        snprintf(path, sizeof path, "%s/%s", e->rel, name);
        if (diag_read_file_at(w->hier[e->hier].fd, path, 1 << 22, &text, NULL) < 0)
                return NULL;
        return text;
}

static int64_t read_cg_num(struct walk *w, const struct entry *e, const char *name) {
        _cleanup_free_ char *t = read_cg_file(w, e, name);
        unsigned long long v;

        if (!t)
                return -1;
        diag_strip(t);
        if (strcmp(t, "max") == 0)
                return 0;
        if (diag_parse_ull(t, 10, &v) < 0)
                return -1;
        return v > INT64_MAX ? INT64_MAX : (int64_t) v;
}

/* "key value" lines: the value of key, -1 when absent. */
static int64_t keyed(const char *text, const char *key) {
        int64_t v;

        return diag_kstat_keyed(text, key, &v) == 0 ? v : -1;
}

/* "some avg10=1.23 ..." / "full avg10=..." (which: 0 some, 1 full) */
static double psi_avg10(const char *text, int which) {
        struct diag_psi psi;

        if (!text || diag_psi_parse(text, &psi) < 0 || !psi.have[which])
                return -1;
        return psi.avg[which][0];
}

static struct cgdev *dev_slot(struct cg *c, const char *dev) {
        for (size_t i = 0; i < c->ndev; i++)
                if (strcmp(c->dev[i].dev, dev) == 0)
                        return &c->dev[i];
        if (c->ndev >= CG_DEV_MAX)
                return NULL;
        snprintf(c->dev[c->ndev].dev, sizeof c->dev[0].dev, "%s", dev);
        for (int k = 0; k < IO_N; k++)
                c->dev[c->ndev].v[k][0] = c->dev[c->ndev].v[k][1] = -1;
        return &c->dev[c->ndev++];
}

/* One device's counter k in this reading; the cgroup's total too. */
static void io_add(struct cg *c, const char *dev, int k, int pass, int64_t v) {
        struct cgdev *d = dev_slot(c, dev);
        int64_t *tot = k == IO_RBYTES ? c->rbytes : k == IO_WBYTES ? c->wbytes : k == IO_RIOS ? c->rios : c->wios;

        if (d)
                d->v[k][pass] = MAX(d->v[k][pass], 0) + v;
        tot[pass] = MAX(tot[pass], 0) + v;
}

struct io_ctx {
        struct cg *c;
        int pass;
};

static void io_one(void *ctx, const char *dev, int which, int64_t v) {
        struct io_ctx *x = ctx;

        io_add(x->c, dev, which, x->pass, v);
}

/* v1 blkio "MAJ:MIN Read N" / "MAJ:MIN Write N" lines; kr, kw: which counters. */
static void blkio_parse(const char *text, struct cg *c, int pass, int kr, int kw) {
        struct io_ctx x = { c, pass };
        int64_t *tr = kr == IO_RBYTES ? c->rbytes : c->rios, *tw = kw == IO_WBYTES ? c->wbytes : c->wios;

        tr[pass] = tw[pass] = 0;
        diag_cgroup_blkio_each(text, kr, kw, io_one, &x);
}

/* v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." per line. */
static void iostat_parse(const char *text, struct cg *c, int pass) {
        struct io_ctx x = { c, pass };

        c->rbytes[pass] = c->wbytes[pass] = c->rios[pass] = c->wios[pass] = 0;
        diag_cgroup_iostat_each(text, io_one, &x);
}

static void read_entry(struct walk *w, const struct entry *e, int pass) {
        struct cg *c = &w->cg[e->cg];
        const struct hier *h = &w->hier[e->hier];
        char *t;

        if (pass == 1 && c->procs < 0 && (t = read_cg_file(w, e, "cgroup.procs"))) {
                int64_t n = 0;
                for (const char *p = t; (p = strchr(p, '\n')); p++)
                        n++;
                c->procs = n;
                free(t);
        }
        if (h->ctrl & CTRL_MEM) {
                if (h->v2) {
                        if (pass == 1) {
                                c->mem_current = read_cg_num(w, e, "memory.current");
                                c->mem_limit = read_cg_num(w, e, "memory.max");
                                if ((t = read_cg_file(w, e, "memory.events"))) {
                                        c->ev_oom = keyed(t, "oom");
                                        c->ev_oom_kill = keyed(t, "oom_kill");
                                        c->ev_high = keyed(t, "high");
                                        c->ev_max = keyed(t, "max");
                                        free(t);
                                }
                                t = read_cg_file(w, e, "memory.pressure");
                                c->psi_mem_some = psi_avg10(t, 0);
                                c->psi_mem_full = psi_avg10(t, 1);
                                free(t);
                        }
                        c->t_mem[pass] = diag_now_ns(CLOCK_MONOTONIC);
                        if ((t = read_cg_file(w, e, "memory.stat"))) {
                                c->anon = keyed(t, "anon");
                                c->file = keyed(t, "file");
                                c->pgmajfault[pass] = keyed(t, "pgmajfault");
                                free(t);
                        }
                } else {
                        if (pass == 1) {
                                c->mem_current = read_cg_num(w, e, "memory.usage_in_bytes");
                                c->mem_limit = read_cg_num(w, e, "memory.limit_in_bytes");
                                /* v1 says "no limit" with a number near 2^63 */
                                if (c->mem_limit >= (INT64_C(1) << 62))
                                        c->mem_limit = 0;
                                c->mem_failcnt = read_cg_num(w, e, "memory.failcnt");
                                if ((t = read_cg_file(w, e, "memory.oom_control"))) {
                                        c->ev_oom_kill = keyed(t, "oom_kill");
                                        free(t);
                                }
                        }
                        c->t_mem[pass] = diag_now_ns(CLOCK_MONOTONIC);
                        if ((t = read_cg_file(w, e, "memory.stat"))) {
                                c->anon = keyed(t, "rss");
                                c->file = keyed(t, "cache");
                                c->pgmajfault[pass] = keyed(t, "pgmajfault");
                                free(t);
                        }
                }
        }
        if (h->ctrl & CTRL_IO) {
                c->t_io[pass] = diag_now_ns(CLOCK_MONOTONIC);
                if (h->v2) {
                        if ((t = read_cg_file(w, e, "io.stat"))) {
                                iostat_parse(t, c, pass);
                                free(t);
                        }
                        if (pass == 1 && (t = read_cg_file(w, e, "io.pressure"))) {
                                c->psi_io_some = psi_avg10(t, 0);
                                c->psi_io_full = psi_avg10(t, 1);
                                free(t);
                        }
                } else {
                        if ((t = read_cg_file(w, e, "blkio.throttle.io_service_bytes"))) {
                                blkio_parse(t, c, pass, IO_RBYTES, IO_WBYTES);
                                free(t);
                        }
                        if ((t = read_cg_file(w, e, "blkio.throttle.io_serviced"))) {
                                blkio_parse(t, c, pass, IO_RIOS, IO_WIOS);
                                free(t);
                        }
                }
        }
        if (h->ctrl & CTRL_CPU) {
                c->t_cpu[pass] = diag_now_ns(CLOCK_MONOTONIC);
                if ((t = read_cg_file(w, e, "cpu.stat"))) {
                        int64_t ns;
                        c->nr_periods[pass] = keyed(t, "nr_periods");
                        c->nr_throttled[pass] = keyed(t, "nr_throttled");
                        if (h->v2)
                                c->throttled_usec[pass] = keyed(t, "throttled_usec");
                        else if ((ns = keyed(t, "throttled_time")) >= 0)
                                c->throttled_usec[pass] = ns / 1000;
                        free(t);
                }
                if (h->v2 && pass == 1 && (t = read_cg_file(w, e, "cpu.pressure"))) {
                        c->psi_cpu_some = psi_avg10(t, 0);
                        free(t);
                }
        }
        if ((h->ctrl & CTRL_PIDS) && pass == 1) {
                int64_t v = read_cg_num(w, e, "pids.current");
                if (v >= 0)
                        c->pids_current = v;
        }
}

static double rate(const int64_t v[2], double secs) {
        if (v[0] < 0 || v[1] < 0 || secs <= 0)
                return -1;
        return v[1] >= v[0] ? (double) (v[1] - v[0]) / secs : 0;
}

/* The span between the two readings of one kind of file, or secs when not known. */
static double span(const uint64_t t[2], double secs) {
        return t[0] && t[1] > t[0] ? (double) (t[1] - t[0]) / 1e9 : secs;
}

static void compute_rates(struct cg *c, double secs) {
        double io = span(c->t_io, secs), cpu = span(c->t_cpu, secs);
        double rios = rate(c->rios, io), wios = rate(c->wios, io), thr = rate(c->throttled_usec, cpu);

        c->rbps = rate(c->rbytes, io);
        c->wbps = rate(c->wbytes, io);
        c->iops = rios < 0 || wios < 0 ? -1 : rios + wios;
        c->throttled_pct = thr < 0 ? -1 : thr / 1e4;    /* µs per s -> % */
        c->majflt_ps = rate(c->pgmajfault, span(c->t_mem, secs));
}

static bool cg_empty(const struct cg *c) {
        return c->procs <= 0 && c->mem_current <= 0 && c->rbytes[1] <= 0 && c->wbytes[1] <= 0 && c->pids_current <= 0;
}

static double mem_pct(const struct cg *c) {
        return c->mem_limit > 0 && c->mem_current >= 0 ? 100.0 * (double) c->mem_current / (double) c->mem_limit : -1;
}

static struct json_object *jnum(int64_t v) {
        return v < 0 ? NULL : json_object_new_int64(v);
}

static struct json_object *jdbl(double v) {
        return v < 0 ? NULL : json_object_new_double((double) (int64_t) (v * 100 + 0.5) / 100);
}

static const char *fmt_size(int64_t v, char *buf, size_t size) {
        if (v < 0)
                return "-";
        return diag_format_size((uint64_t) v, buf, size);
}

static const char *fmt_dbl(double v, int decimals, char *buf, size_t size) {
        if (v < 0)
                return "-";
        snprintf(buf, size, "%.*f", decimals, v);
        return buf;
}

static struct json_object *devices_json(const struct cg *c, double secs) {
        static const char *const names[IO_N] = { "read_bytes", "write_bytes", "read_ios", "write_ios" };
        struct json_object *arr = json_object_new_array();

        for (size_t i = 0; i < c->ndev; i++) {
                const struct cgdev *d = &c->dev[i];
                struct json_object *o;
                double r[IO_N];

                if (d->v[IO_RBYTES][1] <= 0 && d->v[IO_WBYTES][1] <= 0)
                        continue;
                o = json_object_new_object();
                json_object_object_add(o, "dev", json_object_new_string(d->dev));
                for (int k = 0; k < IO_N; k++) {
                        json_object_object_add(o, names[k], jnum(d->v[k][1]));
                        r[k] = rate(d->v[k], secs);
                }
                json_object_object_add(o, "read_bytes_per_s", jdbl(r[IO_RBYTES]));
                json_object_object_add(o, "write_bytes_per_s", jdbl(r[IO_WBYTES]));
                json_object_object_add(o, "iops", jdbl(r[IO_RIOS] < 0 || r[IO_WIOS] < 0 ? -1 : r[IO_RIOS] + r[IO_WIOS]));
                json_object_array_add(arr, o);
        }
        return arr;
}

static void write_files(struct walk *w, double secs) {
        _cleanup_json_ struct json_object *doc = json_object_new_object();
        struct json_object *hs = json_object_new_array(), *arr = json_object_new_array();
        FILE *f = diag_snap_open(w->s, "cgroups.txt");

        json_object_object_add(doc, "schema", json_object_new_string("diag-snap/1"));
        json_object_object_add(doc, "part", json_object_new_string("cgroups"));
        json_object_object_add(doc, "window_ms", json_object_new_int64((int64_t) (secs * 1000 + 0.5)));
        json_object_object_add(doc, "complete", json_object_new_boolean(!w->capped));
        for (size_t i = 0; i < w->nhier; i++) {
                struct json_object *o = json_object_new_object(), *cs = json_object_new_array();
                json_object_object_add(o, "mount", json_object_new_string(w->hier[i].mnt));
                json_object_object_add(o, "version", json_object_new_int(w->hier[i].v2 ? 2 : 1));
                if (w->hier[i].ctrl & CTRL_MEM)
                        json_object_array_add(cs, json_object_new_string("memory"));
                if (w->hier[i].ctrl & CTRL_IO)
                        json_object_array_add(cs, json_object_new_string("io"));
                if (w->hier[i].ctrl & CTRL_CPU)
                        json_object_array_add(cs, json_object_new_string("cpu"));
                if (w->hier[i].ctrl & CTRL_PIDS)
                        json_object_array_add(cs, json_object_new_string("pids"));
                json_object_object_add(o, "controllers", cs);
                json_object_array_add(hs, o);
        }
        json_object_object_add(doc, "hierarchies", hs);
        json_object_object_add(doc, "cgroups", arr);
        if (!f)
                diag_snap_missing(w->s, "cgroups.txt", "not written: %m");
        else {
                fprintf(f, "cgroups: rates over %.2f s; hierarchies:", secs);
                for (size_t i = 0; i < w->nhier; i++)
                        fprintf(f, " %s (v%d)", w->hier[i].mnt, w->hier[i].v2 ? 2 : 1);
                fprintf(f, "%s\n\n%-2s  %6s  %9s  %9s  %5s  %7s  %9s  %9s  %7s  %6s  %6s  %6s  %6s  %s\n",
                        w->capped ? " (walk capped)" : "", "V", "PROCS", "MEM", "LIMIT", "USE%", "OOMKILL", "READ/s",
                        "WRITE/s", "IOPS", "THR%", "PSIMEM", "PSIIO", "PSICPU", "CGROUP");
        }
        for (size_t i = 0; i < w->ncg; i++) {
                struct cg *c = &w->cg[i];
                struct json_object *o;
                char b[10][32];

                if (cg_empty(c))
                        continue;
                o = json_object_new_object();
                json_object_object_add(o, "path", json_object_new_string(c->path));
                json_object_object_add(o, "version", json_object_new_int(c->v2 ? 2 : 1));
                json_object_object_add(o, "procs", jnum(c->procs));
                json_object_object_add(o, "memory_current", jnum(c->mem_current));
                json_object_object_add(o, "memory_limit", c->mem_limit > 0 ? json_object_new_int64(c->mem_limit) : NULL);
                json_object_object_add(o, "memory_pct", jdbl(mem_pct(c)));
                json_object_object_add(o, "memory_failcnt", jnum(c->mem_failcnt));
                json_object_object_add(o, "oom", jnum(c->ev_oom));
                json_object_object_add(o, "oom_kill", jnum(c->ev_oom_kill));
                json_object_object_add(o, "memory_high_events", jnum(c->ev_high));
                json_object_object_add(o, "memory_max_events", jnum(c->ev_max));
                json_object_object_add(o, "anon", jnum(c->anon));
                json_object_object_add(o, "file", jnum(c->file));
                json_object_object_add(o, "pgmajfault", jnum(c->pgmajfault[1]));
                json_object_object_add(o, "pgmajfault_per_s", jdbl(c->majflt_ps));
                json_object_object_add(o, "read_bytes", jnum(c->rbytes[1]));
                json_object_object_add(o, "write_bytes", jnum(c->wbytes[1]));
                json_object_object_add(o, "read_ios", jnum(c->rios[1]));
                json_object_object_add(o, "write_ios", jnum(c->wios[1]));
                json_object_object_add(o, "read_bytes_per_s", jdbl(c->rbps));
                json_object_object_add(o, "write_bytes_per_s", jdbl(c->wbps));
                json_object_object_add(o, "iops", jdbl(c->iops));
                json_object_object_add(o, "devices", devices_json(c, span(c->t_io, secs)));
                json_object_object_add(o, "nr_periods", jnum(c->nr_periods[1]));
                json_object_object_add(o, "nr_throttled", jnum(c->nr_throttled[1]));
                json_object_object_add(o, "throttled_usec", jnum(c->throttled_usec[1]));
                json_object_object_add(o, "throttled_pct", jdbl(c->throttled_pct));
                json_object_object_add(o, "pids_current", jnum(c->pids_current));
                json_object_object_add(o, "psi_memory_some_avg10", jdbl(c->psi_mem_some));
                json_object_object_add(o, "psi_memory_full_avg10", jdbl(c->psi_mem_full));
                json_object_object_add(o, "psi_io_some_avg10", jdbl(c->psi_io_some));
                json_object_object_add(o, "psi_io_full_avg10", jdbl(c->psi_io_full));
                json_object_object_add(o, "psi_cpu_some_avg10", jdbl(c->psi_cpu_some));
                json_object_array_add(arr, o);
                if (f) {
                        char procs[24], ook[24];
                        snprintf(procs, sizeof procs, "%" PRId64, c->procs);
                        snprintf(ook, sizeof ook, "%" PRId64, c->ev_oom_kill);
                        fprintf(f, "%-2d  %6s  %9s  %9s  %5s  %7s  %9s  %9s  %7s  %6s  %6s  %6s  %6s  %s\n", c->v2 ? 2 : 1,
                                c->procs < 0 ? "-" : procs, fmt_size(c->mem_current, b[0], sizeof b[0]),
                                c->mem_limit > 0 ? fmt_size(c->mem_limit, b[1], sizeof b[1]) : "-",
                                fmt_dbl(mem_pct(c), 0, b[2], sizeof b[2]), c->ev_oom_kill < 0 ? "-" : ook,
                                c->rbps < 0 ? "-" : fmt_size((int64_t) c->rbps, b[3], sizeof b[3]),
                                c->wbps < 0 ? "-" : fmt_size((int64_t) c->wbps, b[4], sizeof b[4]),
                                fmt_dbl(c->iops, 0, b[5], sizeof b[5]), fmt_dbl(c->throttled_pct, 1, b[6], sizeof b[6]),
                                fmt_dbl(c->psi_mem_some, 1, b[7], sizeof b[7]), fmt_dbl(c->psi_io_some, 1, b[8], sizeof b[8]),
                                fmt_dbl(c->psi_cpu_some, 1, b[9], sizeof b[9]), c->path);
                }
        }
        if (f)
                (void) diag_snap_close(w->s, f, "cgroups.txt");
        {
                const char *t = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
                (void) diag_snap_write(w->s, "cgroups.json", t, strlen(t));
        }
}

static void findings(struct walk *w) {
        struct cg *top = NULL;
        char a[DIAG_SIZE_MAX], b[DIAG_SIZE_MAX];

        for (size_t i = 0; i < w->ncg; i++) {
                struct cg *c = &w->cg[i];
                double pct = mem_pct(c);

                if (pct > CG_MEM_NEAR_LIMIT_PCT) {
                        char faults[64] = "";

                        if (c->majflt_ps >= CG_THRASH_MAJFLT_PER_S)
                                snprintf(faults, sizeof faults, ", %.0f major faults/s -> page-cache thrash", c->majflt_ps);
                        else if (c->majflt_ps > 0)
                                snprintf(faults, sizeof faults, ", %.0f major faults/s", c->majflt_ps);
                        diag_snap_finding(w->s, DIAG_SNAP_WARN, "cgroups.txt", "cgroup %s: memory %s of its %s limit (%.0f %%)%s",
                                          c->path, diag_format_size((uint64_t) c->mem_current, a, sizeof a),
                                          diag_format_size((uint64_t) c->mem_limit, b, sizeof b), pct, faults);
                }
                if (c->ev_oom_kill > 0)
                        diag_snap_finding(w->s, DIAG_SNAP_CRIT, "cgroups.txt", "cgroup %s: %" PRId64 " OOM kills (memory limit %s)",
                                          c->path, c->ev_oom_kill,
                                          c->mem_limit > 0 ? diag_format_size((uint64_t) c->mem_limit, b, sizeof b) : "none");
                if (c->throttled_pct > CG_THROTTLED_PCT)
                        diag_snap_finding(w->s, DIAG_SNAP_WARN, "cgroups.txt",
                                          "cgroup %s: CPU throttled %.0f %% of the time (%" PRId64 " periods throttled since creation)",
                                          c->path, c->throttled_pct, c->nr_throttled[1]);
                /* the root sums everything: name a real cgroup */
                if (strcmp(c->path, "/") != 0 && c->rbps >= 0 && c->wbps >= 0 &&
                    (!top || c->rbps + c->wbps > top->rbps + top->wbps))
                        top = c;
        }
        if (top && (top->rbps + top->wbps >= CG_IO_BYTES_RATE_MIN || top->iops >= CG_IO_IOPS_MIN))
                diag_snap_finding(w->s, DIAG_SNAP_NOTICE, "cgroups.txt", "cgroup %s: %s/s read, %s/s written, %.0f IOPS (the most IO)",
                                  top->path, diag_format_size((uint64_t) top->rbps, a, sizeof a),
                                  diag_format_size((uint64_t) top->wbps, b, sizeof b), top->iops);
}

/* The hierarchies, found once for diag_snap_memcg(); the cache of the cgroups it was
 * asked about, kept for the life of the part's process. */
static struct walk memcg_w;
static bool memcg_w_found;
static struct memcg_entry {
        char *path;
        int64_t limit;
} *memcg_cache;
static size_t memcg_n, memcg_alloc;

/* The limit that applies to cgroup rel of hierarchy h: v1 memory.stat's
 * hierarchical_memory_limit; v2 the smallest memory.max of it and its ancestors. */
static int64_t memcg_limit(const struct hier *h, const char *path) {
        char rel[4096], file[4200];
        int64_t lim = 0;

        snprintf(rel, sizeof rel, "%s", path[1] ? path + 1 : ".");
        if (!h->v2) {
                _cleanup_free_ char *t = NULL;
                int64_t v;

                snprintf(file, sizeof file, "%s/memory.stat", rel);
                if (diag_read_file_at(h->fd, file, 1 << 20, &t, NULL) < 0)
                        return -1;
                v = keyed(t, "hierarchical_memory_limit");
                /* v1 says "no limit" with a number near 2^63 */
                return v < 0 ? -1 : v >= (INT64_C(1) << 62) ? 0 : v;
        }
        /* the root has no memory.max: stop below it */
        while (strcmp(rel, ".") != 0) {
                struct entry e = { .hier = (unsigned) (h - memcg_w.hier), .rel = rel };
                int64_t v = read_cg_num(&memcg_w, &e, "memory.max");
                char *slash = strrchr(rel, '/');

                if (v < 0 && strcmp(rel, path + 1) == 0)
                        return -1;      /* the cgroup itself: gone, or no memory controller */
                if (v > 0 && (lim == 0 || v < lim))
                        lim = v;
                if (slash)
                        *slash = 0;
                else
                        snprintf(rel, sizeof rel, ".");
        }
        return lim;
}

const char *diag_snap_memcg(const char *proc_cgroup, int64_t *ret_limit) {
        const struct hier *h = NULL;
        char path[4096] = "";
        bool v1_line = false;

        *ret_limit = -1;
        if (!memcg_w_found) {
                memcg_w_found = true;
                (void) find_hierarchies(&memcg_w);
        }
        /* the v1 memory controller's hierarchy if mounted, else cgroup2's */
        for (size_t i = 0; i < memcg_w.nhier && !h; i++)
                if (!memcg_w.hier[i].v2 && (memcg_w.hier[i].ctrl & CTRL_MEM))
                        h = &memcg_w.hier[i];
        v1_line = h != NULL;
        for (size_t i = 0; i < memcg_w.nhier && !h; i++)
                if (memcg_w.hier[i].v2)
                        h = &memcg_w.hier[i];
        if (!h)
                return NULL;
        if (diag_proc_cgroup_path(proc_cgroup, v1_line ? "memory" : NULL, path, sizeof path) < 0)
                return NULL;
        if (path[0] != '/')
                return NULL;
        for (size_t i = 0; i < memcg_n; i++)
                if (strcmp(memcg_cache[i].path, path) == 0) {
                        *ret_limit = memcg_cache[i].limit;
                        return memcg_cache[i].path;
                }
        if (DIAG_GROW(memcg_cache, memcg_alloc, memcg_n + 1) < 0)
                return NULL;
        memcg_cache[memcg_n].path = strdup(path);
        if (!memcg_cache[memcg_n].path)
                return NULL;
        memcg_cache[memcg_n].limit = memcg_limit(h, path);
        *ret_limit = memcg_cache[memcg_n].limit;
        return memcg_cache[memcg_n++].path;
}

int diag_snap_cgroups(struct diag_snap *s) {
        struct walk w = { .s = s };
        uint64_t t0, t1;
        unsigned sleep_ms;
        int r;

        r = find_hierarchies(&w);
        if (r < 0) {
                diag_snap_missing(s, "cgroups", "/proc/self/mountinfo: %s", strerror(-r));
                return r;
        }
        if (w.nhier == 0)
                diag_snap_missing(s, "cgroups", "no cgroup hierarchy mounted");
        for (unsigned i = 0; i < w.nhier; i++)
                walk_dir(&w, i, ".", 0);
        if (w.capped)
                diag_snap_missing(s, "cgroups.txt", "more than %d cgroups: the rest not listed", CG_MAX);

        t0 = diag_now_ns(CLOCK_MONOTONIC);
        for (size_t i = 0; i < w.nent; i++)
                read_entry(&w, &w.ent[i], 0);
        /* sleep the window, leaving time to read everything again and write */
        sleep_ms = s->rate_ms ? s->rate_ms : 1000;
        if (diag_snap_left_ms(s) < UINT32_MAX && sleep_ms > diag_snap_left_ms(s) / 2)
                sleep_ms = diag_snap_left_ms(s) / 2;
        {
                struct timespec ts = { sleep_ms / 1000, (long) (sleep_ms % 1000) * 1000000L };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
        for (size_t i = 0; i < w.nent; i++)
                read_entry(&w, &w.ent[i], 1);
        t1 = diag_now_ns(CLOCK_MONOTONIC);
        for (size_t i = 0; i < w.ncg; i++)
                compute_rates(&w.cg[i], (double) (t1 - t0) / 1e9);
        write_files(&w, (double) (t1 - t0) / 1e9);
        findings(&w);

        for (size_t i = 0; i < w.nent; i++)
                free(w.ent[i].rel);
        for (size_t i = 0; i < w.ncg; i++)
                free(w.cg[i].path);
        for (size_t i = 0; i < w.nhier; i++)
                close(w.hier[i].fd);
        free(w.ent);
        free(w.cg);
        return 0;
}
