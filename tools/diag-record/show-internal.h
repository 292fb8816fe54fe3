/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * diag-record show, inside: what rec_show_interval() keeps (show-feed.c) and what the
 * views (show-text.c, show-json.c, show-svg.c) read at the end.
 *
 * Per interval the host's figures go to a compact array (pts); processes are
 * aggregated per (pid, start) over the whole span (procs, found through a hash);
 * process counts per command line are kept as run-length changes per interval;
 * buckets are only cut at the end, once the span is known.
 */

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "show.h"

#define RS_NOID UINT32_MAX

/* The host at one interval: rates against the interval before (NAN: unknown). */
struct rs_pt {
        int64_t rt_ns;
        double dt_s;                    /* since the previous interval; 0: no rates */
        double cpu_busy, iowait;        /* % */
        double mem_avail, mem_total, swap_used;         /* bytes */
        double psi[5];                  /* % : mem some, mem full, io some, io full, cpu some */
        double majflt_s, rd_bps, wr_bps;
        double load1;
        uint32_t nprocs, ndstate;
        uint8_t marks;                  /* RS_MARK_* */
};
enum { RS_PSI_MEM_SOME, RS_PSI_MEM_FULL, RS_PSI_IO_SOME, RS_PSI_IO_FULL, RS_PSI_CPU_SOME, RS_NPSI };
enum { RS_MARK_OOM = 1, RS_MARK_TRIG = 2, RS_MARK_GAP = 4 };

struct rs_proc {
        int64_t pid, start, ppid, uid;
        uint32_t comm, cmd, cgroup;     /* ids in rec_show.str */
        uint32_t group;                 /* index in groups */
        bool selected;                  /* matches --pid / --cmd (all when neither) */
        char state;
        int64_t threads;
        int64_t first_rt, last_rt;      /* seen within the window */
        int64_t first_rss, last_rss, max_rss;
        int64_t l_cpu, l_majflt, l_rd, l_wr, l_bt;      /* the last raw counters */
        double cpu_ticks, majflt, rd, wr;               /* sums of deltas in the window */
        double alive_s;                 /* time covered by those deltas */
};

/* A count of processes of a command line that held from interval index iv on. */
struct rs_run {
        uint32_t iv, count;
};
struct rs_group {
        uint32_t cmd;                   /* id in rec_show.str */
        uint32_t count, last;           /* this interval's count, the previous interval's */
        uint32_t stamp;                 /* interval index + 1 when count is this interval's */
        struct rs_run *runs;
        size_t nruns, aruns;
        uint32_t min, max;              /* filled at the end */
};

struct rs_cg {
        uint32_t path, version;
        int64_t mem_current, mem_limit, mem_max;
        int64_t first_oom_kill, last_oom_kill;
        int64_t l_io, l_thr_us, l_bt;
        double io_bytes, throttled_us, elapsed_s;
        bool active;
};

enum rs_ev_kind { RS_EV_OOM, RS_EV_HUNG, RS_EV_IOERR, RS_EV_TRIGGER, RS_EV_DROPS, RS_EV_START, RS_EV_OTHER };
struct rs_event {
        int64_t time_ns;
        enum rs_ev_kind kind;
        uint32_t kind_str, comm, text, path;
        int64_t pid, rss, count;
};

struct rs_gap {
        int64_t from_ns, to_ns;
        uint32_t why;
};

/* One interval of a selected process (--pid / --cmd). */
struct rs_psample {
        uint32_t iv, proc;
        double dt_s, cpu_ticks, majflt, rd, wr;
        int64_t rss, threads;
        char state;
};

/* --at: the chosen interval, copied (own strings), with per-process rates. */
struct rs_snap {
        bool have, rates;
        struct diag_rec_interval iv;
        double *cpu, *majflt, *io;      /* by PROC row */
        size_t arates;
        uint32_t pt;                    /* index in pts, or RS_NOID */
        double clk_tck;
};

struct rs_disk {
        char name[32];
        int64_t rd, wr;
};

struct rec_show {
        struct rec_show_opts o;
        FILE *out;
        unsigned top;
        regex_t re;
        bool have_re;
        struct diag_rec_strings *str;

        struct rs_pt *pts;
        size_t npts, apts;
        bool have_prev;
        int64_t prev_rt, prev_bt, prev_host[H__N];
        struct rs_disk disks[64];
        unsigned ndisks;
        uint32_t interval_ms;
        double clk_tck;
        int64_t first_rt, last_rt;      /* all intervals fed, window or not */
        size_t nfed;

        struct rs_proc *procs;
        size_t nprocs, aprocs;
        uint32_t *phash;                /* slots: index + 1, 0 empty */
        size_t phash_size;

        struct rs_group *groups;
        size_t ngroups, agroups;
        uint32_t *group_of;             /* by string id: index + 1 */
        size_t agroup_of;
        uint32_t *active, *touched;     /* group indices with a count in the previous / this interval */
        size_t nactive, ntouched, aactive, atouched;

        struct rs_cg *cgs;
        size_t ncgs, acgs;
        uint32_t *cg_pos;               /* cgroup row -> index in cgs (a guess checked by name) */
        size_t ncg_pos, acg_pos;

        struct rs_event *evs;
        size_t nevs, aevs;
        struct rs_gap *gaps;
        size_t ngaps, agaps;
        char **warnings;
        size_t nwarnings, awarnings;

        struct rs_psample *ps;
        size_t nps, aps;

        struct rs_snap snap;
        uint32_t *row_proc;             /* this interval's PROC row -> index in procs */
        double *row_cpu;                /* this interval's PROC row -> CPU % (NAN: unknown) */
        size_t arow_proc, arow_cpu;
        size_t ev_first;                /* the first event of the interval being fed */
        double win_s;                   /* the window's length (set at the end) */
};

/* show.c */
int rs_grow(void *pp, size_t *alloc, size_t need, size_t size);
uint32_t rs_intern(struct rec_show *s, const char *str);
const char *rs_str(const struct rec_show *s, uint32_t id);
int rs_add_gap(struct rec_show *s, int64_t from_ns, int64_t to_ns, const char *why);
double rs_window_s(const struct rec_show *s);

struct rs_buckets;

/* show-feed.c */
int rs_feed(struct rec_show *s, const struct diag_rec_interval *iv);

/* the views */
int rs_text_print(struct rec_show *s, const struct rs_buckets *b);
int rs_json_print(struct rec_show *s, const struct rs_buckets *b);
int rs_svg_write(struct rec_show *s, const struct rs_buckets *b, const char *path);
/* --follow -J: the line of the interval just fed (pts[s->npts - 1]). */
int rs_json_follow(struct rec_show *s, const struct diag_rec_interval *iv);

/* show-fmt.c: formatting; show-agg.c: buckets and top lists for the views */
const char *rs_fmt_size(char *buf, size_t n, double bytes);     /* "1.5G", "812K", "0" */
const char *rs_fmt_time(char *buf, size_t n, int64_t ns);       /* "17:15:50" */
const char *rs_fmt_date(char *buf, size_t n, int64_t ns);       /* "2026-12-04 17:15:50" */
const char *rs_fmt_iso(char *buf, size_t n, int64_t ns);        /* "2026-12-04T17:15:50+01:00" */
const char *rs_fmt_dur(char *buf, size_t n, double s);          /* "01:02:03" */

struct rs_bucket {
        int64_t from_ns, to_ns;
        size_t first, n;                /* pts[first .. first + n) */
        double cpu_busy, iowait, mem_avail, mem_total, swap_used, psi[RS_NPSI];
        double majflt_s, rd_bps, wr_bps, load1;
        uint32_t nprocs, ndstate;
        uint8_t marks;
};
struct rs_buckets {
        int64_t step_ns;
        struct rs_bucket *b;
        size_t n;
        uint32_t *of_pt;                /* pts index -> bucket */
};
int rs_buckets_make(const struct rec_show *s, struct rs_buckets *ret);
void rs_buckets_free(struct rs_buckets *b);

enum rs_top_kind { RS_TOP_CPU, RS_TOP_RSS, RS_TOP_MAJFLT, RS_TOP_IO, RS_NTOP };
extern const char *const rs_top_names[RS_NTOP];
double rs_proc_value(const struct rec_show *s, const struct rs_proc *p, enum rs_top_kind k);
/* The top n selected processes by k (value > 0), best first; how many. */
size_t rs_top(const struct rec_show *s, enum rs_top_kind k, uint32_t *ret, size_t n);
/* Groups' min/max filled; the top n groups by max - min (> 0), best first; how many. */
size_t rs_top_groups(struct rec_show *s, uint32_t *ret, size_t n);
/* Per bucket, the group's highest count. */
size_t rs_top_values(const double *v, size_t nv, uint32_t *ret, size_t n);
void rs_group_series(const struct rec_show *s, const struct rs_group *g, const struct rs_buckets *b, double *ret);
const char *rs_proc_cmd(const struct rec_show *s, const struct rs_proc *p);

/* show-proc.c: a process's (or the matching processes') own figures per bucket */
struct rs_pseries {
        double *cpu, *rss, *majflt_s, *rd_bps, *wr_bps, *threads;     /* NAN: not seen in the bucket */
        char *state;                    /* the worst seen: D, R, other, ' ' */
};
/* proc: an index in procs, or RS_NOID for all selected processes together. */
int rs_pseries_make(const struct rec_show *s, const struct rs_buckets *b, uint32_t proc, struct rs_pseries *ret);
void rs_pseries_free(struct rs_pseries *p);
/* Selected processes with samples (--pid: each of them), in order of start; how many. */
size_t rs_sampled_procs(const struct rec_show *s, uint32_t *ret, size_t n);

/* show-text.c, show-text2.c, show-at.c */
const char *rs_fmt_num(char *buf, size_t n, double v, int decimals);   /* "-" when NAN */
const char *rs_fmt_value(char *buf, size_t n, enum rs_top_kind k, double v);
void rs_put_cut(FILE *f, const char *text, int col);           /* cut to the 100 columns, newline */
void rs_sparkline(char *out, const double *v, size_t n, double max);
int rs_text_procs(struct rec_show *s, const struct rs_buckets *b);
double rs_cg_score(const struct rec_show *s, const struct rs_cg *c);
int rs_text_cgroups(struct rec_show *s);
void rs_text_event(struct rec_show *s, const struct rs_event *e);
bool rs_event_shown(const struct rec_show *s, const struct rs_event *e);
void rs_text_events(struct rec_show *s, bool around_at);
int rs_text_at(struct rec_show *s);
/* --at: the host point with rates (the one after when the chosen one has none); NULL when none. */
const struct rs_pt *rs_at_pt(const struct rec_show *s);
/* --at: PROC rows of the copy, top n by CPU (kind RS_TOP_CPU) or RSS (RS_TOP_RSS). */
size_t rs_at_top(const struct rec_show *s, enum rs_top_kind k, uint32_t *ret, size_t n);

/* show-json.c, show-json2.c */
struct json_object;
struct json_object *rs_jnum(double v);                 /* null when NAN */
void rs_jtime(struct json_object *o, const char *key, int64_t ns);     /* key: ISO 8601, key_ns: epoch ns */
struct json_object *rs_jpt(const struct rs_pt *p);      /* the host figures of one interval */
struct json_object *rs_jevent(const struct rec_show *s, const struct rs_event *e);
int rs_json_rest(struct rec_show *s, const struct rs_buckets *b, struct json_object *root);
