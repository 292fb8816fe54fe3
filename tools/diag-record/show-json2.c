/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show -J: one process's timeline, events, gaps, cgroups, warnings, and
 * the --at snapshot.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "show-internal.h"

#define ADD(o, k, v) json_object_object_add(o, k, v)

static struct json_object *jint(int64_t v) {
        return v == DIAG_REC_NA ? NULL : json_object_new_int64(v);
}

static struct json_object *jstr(const struct rec_show *s, uint32_t id) {
        return json_object_new_string(rs_str(s, id));
}

struct json_object *rs_jevent(const struct rec_show *s, const struct rs_event *e) {
        struct json_object *o = json_object_new_object();
        rs_jtime(o, "time", e->time_ns);
        ADD(o, "kind", jstr(s, e->kind_str));
        ADD(o, "pid", jint(e->pid));
        ADD(o, "comm", jstr(s, e->comm));
        ADD(o, "text", jstr(s, e->text));
        ADD(o, e->kind == RS_EV_OOM ? "cgroup" : e->kind == RS_EV_TRIGGER ? "snapshot" : "path", jstr(s, e->path));
        ADD(o, "rss_bytes", jint(e->rss));
        ADD(o, "count", jint(e->count));
        return o;
}

static struct json_object *series(const struct rec_show *s, const struct rs_buckets *b, uint32_t proc) {
        struct rs_pseries p;
        struct json_object *a = json_object_new_array();
        if (rs_pseries_make(s, b, proc, &p) < 0)
                return a;
        for (size_t i = 0; i < b->n; i++) {
                if (isnan(p.rss[i]))
                        continue;
                struct json_object *o = json_object_new_object();
                char st[2] = { p.state[i], 0 };
                rs_jtime(o, "time", b->b[i].from_ns);
                ADD(o, "cpu_pct", rs_jnum(p.cpu[i]));
                ADD(o, "rss_bytes", rs_jnum(p.rss[i]));
                ADD(o, "major_faults_per_s", rs_jnum(p.majflt_s[i]));
                ADD(o, "read_bytes_per_s", rs_jnum(p.rd_bps[i]));
                ADD(o, "write_bytes_per_s", rs_jnum(p.wr_bps[i]));
                ADD(o, "threads", rs_jnum(p.threads[i]));
                ADD(o, "state", json_object_new_string(st));
                json_object_array_add(a, o);
        }
        rs_pseries_free(&p);
        return a;
}

static void processes(const struct rec_show *s, const struct rs_buckets *b, struct json_object *root) {
        uint32_t idx[64];
        size_t n = rs_sampled_procs(s, idx, 64);
        struct json_object *a = json_object_new_array();
        if (!s->o.pid) {
                struct json_object *o = json_object_new_object();
                ADD(o, "pattern", json_object_new_string(s->o.cmd_pattern));
                ADD(o, "processes", json_object_new_int64((int64_t) n));
                ADD(o, "timeline", series(s, b, RS_NOID));
                ADD(root, "matching", o);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const struct rs_proc *p = &s->procs[idx[i]];
                struct json_object *o = json_object_new_object();
                ADD(o, "pid", json_object_new_int64(p->pid));
                ADD(o, "start", json_object_new_int64(p->start));
                ADD(o, "comm", jstr(s, p->comm));
                ADD(o, "command", jstr(s, p->cmd));
                rs_jtime(o, "first_seen", p->first_rt);
                rs_jtime(o, "last_seen", p->last_rt);
                ADD(o, "timeline", series(s, b, idx[i]));
                json_object_array_add(a, o);
        }
        ADD(root, "processes", a);
}

static void cgroups(const struct rec_show *s, struct json_object *root) {
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < s->ncgs; i++) {
                const struct rs_cg *c = &s->cgs[i];
                if (rs_cg_score(s, c) <= 0)
                        continue;
                struct json_object *o = json_object_new_object();
                double cur = c->mem_current == DIAG_REC_NA ? NAN : (double) c->mem_current;
                ADD(o, "path", jstr(s, c->path));
                ADD(o, "version", jstr(s, c->version));
                ADD(o, "mem_current_bytes", jint(c->mem_current));
                ADD(o, "mem_limit_bytes", c->mem_limit > 0 ? jint(c->mem_limit) : NULL);
                ADD(o, "mem_pct", c->mem_limit > 0 ? rs_jnum(cur / (double) c->mem_limit * 100) : NULL);
                ADD(o, "mem_max_bytes", json_object_new_int64(c->mem_max));
                ADD(o, "oom_kills", json_object_new_int64(c->first_oom_kill == DIAG_REC_NA ? 0 :
                                                          c->last_oom_kill - c->first_oom_kill));
                ADD(o, "io_bytes_per_s", rs_jnum(c->elapsed_s > 0 ? c->io_bytes / c->elapsed_s : NAN));
                ADD(o, "cpu_throttled_s", rs_jnum(c->throttled_us / 1e6));
                json_object_array_add(a, o);
        }
        ADD(root, "cgroups", a);
}

static struct json_object *at_procs(const struct rec_show *s, enum rs_top_kind k) {
        const struct diag_rec_interval *iv = &s->snap.iv;
        struct json_object *a = json_object_new_array();
        uint32_t idx[64];
        size_t n = rs_at_top(s, k, idx, 20);
        for (size_t i = 0; i < n; i++) {
                size_t r = idx[i];
                const int64_t *v = &DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0);
                struct json_object *o = json_object_new_object();
                char st[2] = { v[PR_STATE] > 32 && v[PR_STATE] < 127 ? (char) v[PR_STATE] : '?', 0 };
                ADD(o, "pid", json_object_new_int64(v[PR_PID]));
                ADD(o, "start", json_object_new_int64(v[PR_START]));
                ADD(o, "ppid", jint(v[PR_PPID]));
                ADD(o, "uid", jint(v[PR_UID]));
                ADD(o, "state", json_object_new_string(st));
                ADD(o, "comm", jstr(s, DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_COMM)));
                ADD(o, "command", jstr(s, DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CMD)));
                ADD(o, "cpu_pct", rs_jnum(s->snap.cpu[r]));
                ADD(o, "rss_bytes", jint(v[PR_RSS]));
                ADD(o, "major_faults_per_s", rs_jnum(s->snap.majflt[r]));
                ADD(o, "io_bytes_per_s", rs_jnum(s->snap.io[r]));
                ADD(o, "threads", jint(v[PR_THREADS]));
                json_object_array_add(a, o);
        }
        return a;
}

static void at(const struct rec_show *s, struct json_object *root) {
        const struct diag_rec_interval *iv = &s->snap.iv;
        struct json_object *o = json_object_new_object(), *d = json_object_new_array(), *c = json_object_new_array();
        rs_jtime(o, "requested", s->o.at_ns);
        ADD(root, "at", o);
        if (!s->snap.have)
                return;
        rs_jtime(o, "time", iv->realtime_ns);
        const struct rs_pt *p = rs_at_pt(s);
        if (p) {
                struct json_object *h = rs_jpt(p);
                const struct rs_pt *g = &s->pts[s->snap.pt];     /* the chosen interval's own gauges */
                rs_jtime(h, "time", g->rt_ns);
                ADD(h, "mem_available_bytes", rs_jnum(g->mem_avail));
                ADD(h, "mem_available_pct", rs_jnum(g->mem_total > 0 ? g->mem_avail / g->mem_total * 100 : NAN));
                ADD(h, "processes", json_object_new_int64(g->nprocs));
                ADD(h, "dstate_threads", json_object_new_int64(g->ndstate));
                ADD(o, "host", h);
        }
        ADD(o, "top_cpu", at_procs(s, RS_TOP_CPU));
        ADD(o, "top_rss", at_procs(s, RS_TOP_RSS));
        for (size_t r = 0; r < iv->t[DIAG_REC_DSTATE].nrows; r++) {
                struct json_object *t = json_object_new_object();
                ADD(t, "tid", json_object_new_int64(DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_TID)));
                ADD(t, "pid", json_object_new_int64(DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_PID)));
                ADD(t, "comm", jstr(s, DIAG_REC_STR(iv, DIAG_REC_DSTATE, r, DS_COMM)));
                ADD(t, "wchan", jstr(s, DIAG_REC_STR(iv, DIAG_REC_DSTATE, r, DS_WCHAN)));
                json_object_array_add(d, t);
        }
        ADD(o, "dstate", d);
        for (size_t r = 0; r < iv->t[DIAG_REC_CGROUP].nrows; r++) {
                int64_t cur = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_MEM_CURRENT);
                int64_t lim = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_MEM_LIMIT);
                if (lim <= 0 || cur == DIAG_REC_NA || (double) cur <= 0.8 * (double) lim)
                        continue;
                struct json_object *t = json_object_new_object();
                ADD(t, "path", jstr(s, DIAG_REC_STR(iv, DIAG_REC_CGROUP, r, CG_PATH)));
                ADD(t, "mem_current_bytes", json_object_new_int64(cur));
                ADD(t, "mem_limit_bytes", json_object_new_int64(lim));
                ADD(t, "mem_pct", rs_jnum((double) cur / (double) lim * 100));
                json_object_array_add(c, t);
        }
        ADD(o, "cgroups_near_limit", c);
}

int rs_json_rest(struct rec_show *s, const struct rs_buckets *b, struct json_object *root) {
        if (s->o.at_ns)
                at(s, root);
        else {
                if (s->o.pid || s->have_re)
                        processes(s, b, root);
                cgroups(s, root);
        }
        struct json_object *ev = json_object_new_array(), *gaps = json_object_new_array(), *w = json_object_new_array();
        for (size_t i = 0; i < s->nevs; i++)
                if (rs_event_shown(s, &s->evs[i]))
                        json_object_array_add(ev, rs_jevent(s, &s->evs[i]));
        ADD(root, "events", ev);
        for (size_t i = 0; i < s->ngaps; i++) {
                struct json_object *g = json_object_new_object();
                rs_jtime(g, "from", s->gaps[i].from_ns);
                rs_jtime(g, "to", s->gaps[i].to_ns);
                ADD(g, "duration_s", rs_jnum((double) (s->gaps[i].to_ns - s->gaps[i].from_ns) / 1e9));
                ADD(g, "why", jstr(s, s->gaps[i].why));
                json_object_array_add(gaps, g);
        }
        ADD(root, "gaps", gaps);
        for (size_t i = 0; i < s->nwarnings; i++)
                json_object_array_add(w, json_object_new_string(s->warnings[i]));
        ADD(root, "warnings", w);
        return 0;
}
