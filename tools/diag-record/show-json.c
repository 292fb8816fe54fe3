/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show -J: the views as one JSON document (keys in docs/diag-record-json.md),
 * and --follow -J's line per interval. Sizes in bytes, rates per second, times as
 * ISO 8601 local strings and epoch nanoseconds.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diag/out.h"
#include "show-internal.h"

#define ADD(o, k, v) json_object_object_add(o, k, v)

struct json_object *rs_jnum(double v) {
        if (isnan(v) || isinf(v))
                return NULL;
        char text[40];
        double r = round(v * 1000) / 1000;

        /* as the rounded number reads (json-c would print 17 digits: 74.757000000000005) */
        snprintf(text, sizeof text, "%.15g", r);
        return json_object_new_double_s(r, text);
}

void rs_jtime(struct json_object *o, const char *key, int64_t ns) {
        char buf[64], k[64];
        ADD(o, key, json_object_new_string(rs_fmt_iso(buf, sizeof(buf), ns)));
        snprintf(k, sizeof(k), "%s_ns", key);
        ADD(o, k, json_object_new_int64(ns));
}

static void host_fields(struct json_object *o, double cpu, double iow, double avail, double total, double swap,
                        const double *psi, double maj, double rd, double wr, double load, uint32_t procs, uint32_t dstate) {
        ADD(o, "cpu_busy_pct", rs_jnum(cpu));
        ADD(o, "iowait_pct", rs_jnum(iow));
        ADD(o, "mem_available_bytes", rs_jnum(avail));
        ADD(o, "mem_available_pct", rs_jnum(total > 0 ? avail / total * 100 : NAN));
        ADD(o, "swap_used_bytes", rs_jnum(swap));
        static const char *const names[RS_NPSI] = { "psi_memory_some_pct", "psi_memory_full_pct", "psi_io_some_pct",
                                                    "psi_io_full_pct", "psi_cpu_some_pct" };
        for (int i = 0; i < RS_NPSI; i++)
                ADD(o, names[i], rs_jnum(psi[i]));
        ADD(o, "major_faults_per_s", rs_jnum(maj));
        ADD(o, "disk_read_bytes_per_s", rs_jnum(rd));
        ADD(o, "disk_write_bytes_per_s", rs_jnum(wr));
        ADD(o, "load1", rs_jnum(load));
        ADD(o, "processes", json_object_new_int64(procs));
        ADD(o, "dstate_threads", json_object_new_int64(dstate));
}

struct json_object *rs_jpt(const struct rs_pt *p) {
        struct json_object *o = json_object_new_object();
        rs_jtime(o, "time", p->rt_ns);
        host_fields(o, p->cpu_busy, p->iowait, p->mem_avail, p->mem_total, p->swap_used, p->psi, p->majflt_s, p->rd_bps,
                    p->wr_bps, p->load1, p->nprocs, p->ndstate);
        return o;
}

static struct json_object *marks(uint8_t m) {
        struct json_object *a = json_object_new_array();
        if (m & RS_MARK_OOM)
                json_object_array_add(a, json_object_new_string("OOM"));
        if (m & RS_MARK_TRIG)
                json_object_array_add(a, json_object_new_string("TRIG"));
        if (m & RS_MARK_GAP)
                json_object_array_add(a, json_object_new_string("GAP"));
        return a;
}

static struct json_object *timeline(const struct rs_buckets *b) {
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        ADD(o, "step_s", rs_jnum((double) b->step_ns / 1e9));
        for (size_t i = 0; i < b->n; i++) {
                const struct rs_bucket *k = &b->b[i];
                struct json_object *e = json_object_new_object();
                rs_jtime(e, "time", k->from_ns);
                ADD(e, "intervals", json_object_new_int64((int64_t) k->n));
                host_fields(e, k->cpu_busy, k->iowait, k->mem_avail, k->mem_total, k->swap_used, k->psi, k->majflt_s,
                            k->rd_bps, k->wr_bps, k->load1, k->nprocs, k->ndstate);
                ADD(e, "marks", marks(k->marks | (k->n ? 0 : RS_MARK_GAP)));
                json_object_array_add(a, e);
        }
        ADD(o, "buckets", a);
        return o;
}

static struct json_object *proc_obj(const struct rec_show *s, const struct rs_proc *p) {
        struct json_object *o = json_object_new_object();
        ADD(o, "pid", json_object_new_int64(p->pid));
        ADD(o, "start", json_object_new_int64(p->start));
        ADD(o, "comm", json_object_new_string(rs_str(s, p->comm)));
        ADD(o, "command", json_object_new_string(rs_str(s, p->cmd)));
        return o;
}

static const char *const value_keys[RS_NTOP] = { "cpu_pct", "rss_growth_bytes_per_min", "major_faults_per_s",
                                                 "io_bytes_per_s" };

static struct json_object *tops(const struct rec_show *s) {
        struct json_object *o = json_object_new_object();
        uint32_t idx[64];
        for (int k = 0; k < RS_NTOP; k++) {
                struct json_object *a = json_object_new_array();
                size_t n = rs_top(s, k, idx, s->top);
                for (size_t i = 0; i < n; i++) {
                        struct json_object *p = proc_obj(s, &s->procs[idx[i]]);
                        ADD(p, value_keys[k], rs_jnum(rs_proc_value(s, &s->procs[idx[i]], k)));
                        json_object_array_add(a, p);
                }
                ADD(o, rs_top_names[k], a);
        }
        return o;
}

static int groups(struct rec_show *s, const struct rs_buckets *b, struct json_object *root) {
        uint32_t idx[64];
        size_t n = rs_top_groups(s, idx, s->top);
        double *v = malloc((b->n ? b->n : 1) * sizeof(double));
        if (!v)
                return -ENOMEM;
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                const struct rs_group *g = &s->groups[idx[i]];
                struct json_object *o = json_object_new_object(), *c = json_object_new_array();
                rs_group_series(s, g, b, v);
                ADD(o, "command", json_object_new_string(rs_str(s, g->cmd)));
                ADD(o, "min", json_object_new_int64(g->min));
                ADD(o, "max", json_object_new_int64(g->max));
                for (size_t k = 0; k < b->n; k++)
                        json_object_array_add(c, rs_jnum(v[k]));
                ADD(o, "counts", c);
                json_object_array_add(a, o);
        }
        free(v);
        ADD(root, "command_lines", a);
        return 0;
}

int rs_json_print(struct rec_show *s, const struct rs_buckets *b) {
        struct json_object *root = json_object_new_object(), *span = json_object_new_object();
        if (!root || !span)
                return -ENOMEM;
        double longest = 0;
        for (size_t i = 0; i < s->ngaps; i++)
                longest = fmax(longest, (double) (s->gaps[i].to_ns - s->gaps[i].from_ns) / 1e9);
        if (s->npts) {
                rs_jtime(span, "from", s->pts[0].rt_ns);
                rs_jtime(span, "to", s->pts[s->npts - 1].rt_ns);
        }
        ADD(span, "interval_ms", json_object_new_int64(s->interval_ms));
        ADD(span, "intervals", json_object_new_int64((int64_t) s->npts));
        ADD(span, "gaps", json_object_new_int64((int64_t) s->ngaps));
        ADD(span, "longest_gap_s", rs_jnum(longest));
        ADD(root, "span", span);
        int r = 0;
        if (!s->o.at_ns) {
                ADD(root, "timeline", timeline(b));
                ADD(root, "top", tops(s));
                r = groups(s, b, root);
        }
        if (r >= 0)
                r = rs_json_rest(s, b, root);
        if (r >= 0)
                r = diag_json_print(s->out, root);
        json_object_put(root);
        return r;
}

int rs_json_follow(struct rec_show *s, const struct diag_rec_interval *iv) {
        struct json_object *o = rs_jpt(&s->pts[s->npts - 1]), *ev = json_object_new_array(), *top = json_object_new_array();
        if (!o || !ev || !top)
                return -ENOMEM;
        for (size_t i = s->ev_first; i < s->nevs; i++)
                json_object_array_add(ev, rs_jevent(s, &s->evs[i]));
        ADD(o, "events", ev);
        uint32_t idx[5];
        size_t n = rs_top_values(s->row_cpu, iv->t[DIAG_REC_PROC].nrows, idx, 5);
        for (size_t i = 0; i < n; i++) {
                struct json_object *p = proc_obj(s, &s->procs[s->row_proc[idx[i]]]);
                ADD(p, "cpu_pct", rs_jnum(s->row_cpu[idx[i]]));
                json_object_array_add(top, p);
        }
        ADD(o, "top_cpu", top);
        const char *line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        int r = fprintf(s->out, "%s\n", line) < 0 || fflush(s->out) != 0 ? -EIO : 0;
        json_object_put(o);
        return r;
}
