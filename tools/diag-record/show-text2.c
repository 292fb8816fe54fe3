/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show as text: one process's timeline (--pid, --cmd), cgroups, events
 * and warnings, and one interval as a snapshot (--at).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "show-internal.h"

static void series_table(struct rec_show *s, const struct rs_buckets *b, const struct rs_pseries *p) {
        FILE *f = s->out;
        char t[32], x[6][24];
        fprintf(f, "%-8s %6s %8s %8s %8s %8s %7s %s\n", "TIME", "CPU%", "RSS", "MAJFLT/S", "READ/S", "WRITE/S", "THREADS",
                "STATE");
        for (size_t i = 0; i < b->n; i++) {
                if (isnan(p->rss[i]))
                        continue;
                fprintf(f, "%-8s %6s %8s %8s %8s %8s %7s %c\n", rs_fmt_time(t, sizeof(t), b->b[i].from_ns),
                        rs_fmt_num(x[0], 24, p->cpu[i], 1), rs_fmt_size(x[1], 24, p->rss[i]),
                        rs_fmt_num(x[2], 24, p->majflt_s[i], 1), rs_fmt_size(x[3], 24, p->rd_bps[i]),
                        rs_fmt_size(x[4], 24, p->wr_bps[i]), rs_fmt_num(x[5], 24, p->threads[i], 0), p->state[i]);
        }
}

int rs_text_procs(struct rec_show *s, const struct rs_buckets *b) {
        FILE *f = s->out;
        struct rs_pseries p;
        char a[32], c[32];
        if (!s->o.pid && !s->have_re)
                return 0;
        uint32_t idx[64];
        size_t n = rs_sampled_procs(s, idx, 64);
        if (!s->o.pid) {
                fprintf(f, "\nPROCESSES MATCHING '%s': %zu%s, together\n", s->o.cmd_pattern, n, n == 64 ? " or more" : "");
                if (!n || rs_pseries_make(s, b, RS_NOID, &p) < 0)
                        return n ? -ENOMEM : 0;
                series_table(s, b, &p);
                rs_pseries_free(&p);
                return 0;
        }
        if (!n)
                fprintf(f, "\nPROCESS %lld: not recorded\n", (long long) s->o.pid);
        for (size_t i = 0; i < n; i++) {
                const struct rs_proc *q = &s->procs[idx[i]];
                fprintf(f, "\nPROCESS %lld (%s), start %lld, seen %s .. %s: ", (long long) q->pid, rs_str(s, q->comm),
                        (long long) q->start, rs_fmt_time(a, sizeof(a), q->first_rt), rs_fmt_time(c, sizeof(c), q->last_rt));
                rs_put_cut(f, rs_proc_cmd(s, q), 60);
                if (rs_pseries_make(s, b, idx[i], &p) < 0)
                        return -ENOMEM;
                series_table(s, b, &p);
                rs_pseries_free(&p);
        }
        return 0;
}

/* Worth showing: a memory limit, or something happened in it. */
double rs_cg_score(const struct rec_show *s, const struct rs_cg *c) {
        if (!c->active)
                return 0;
        double oom = c->first_oom_kill == DIAG_REC_NA ? 0 : (double) (c->last_oom_kill - c->first_oom_kill);
        double mem = c->mem_limit > 0 && c->mem_current != DIAG_REC_NA ? (double) c->mem_current / (double) c->mem_limit : 0;
        double act = c->io_bytes > 0 || c->throttled_us > 0 ? 0.001 : 0;
        return oom * 1000 + mem + act + (c->mem_limit > 0 ? 0.0001 : 0);
}

int rs_text_cgroups(struct rec_show *s) {
        FILE *f = s->out;
        double *v = malloc((s->ncgs ? s->ncgs : 1) * sizeof(double));
        uint32_t idx[32];
        char x[6][24];
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < s->ncgs; i++)
                v[i] = rs_cg_score(s, &s->cgs[i]);
        size_t n = rs_top_values(v, s->ncgs, idx, 30);
        free(v);
        fprintf(f, "\nCGROUPS (with a memory limit or activity)\n");
        if (!n) {
                fprintf(f, "(none)\n");
                return 0;
        }
        fprintf(f, "%8s %8s %6s %8s %7s %8s %9s %s\n", "MEM", "LIMIT", "MEM%", "MAXMEM", "OOMKILL", "IO/S", "THROTTLED",
                "PATH");
        for (size_t i = 0; i < n; i++) {
                const struct rs_cg *c = &s->cgs[idx[i]];
                double lim = c->mem_limit > 0 ? (double) c->mem_limit : NAN;
                double cur = c->mem_current == DIAG_REC_NA ? NAN : (double) c->mem_current;
                fprintf(f, "%8s %8s %6s %8s %7lld %8s %8.1fs %s (%s)\n", rs_fmt_size(x[0], 24, cur), rs_fmt_size(x[1], 24, lim),
                        rs_fmt_num(x[2], 24, cur / lim * 100, 1), rs_fmt_size(x[3], 24, (double) c->mem_max),
                        c->first_oom_kill == DIAG_REC_NA ? 0LL : (long long) (c->last_oom_kill - c->first_oom_kill),
                        rs_fmt_size(x[4], 24, c->elapsed_s > 0 ? c->io_bytes / c->elapsed_s : NAN), c->throttled_us / 1e6,
                        rs_str(s, c->path), rs_str(s, c->version));
        }
        return 0;
}

void rs_text_event(struct rec_show *s, const struct rs_event *e) {
        FILE *f = s->out;
        char t[32], r[24];
        fprintf(f, "%-8s %-10s ", rs_fmt_time(t, sizeof(t), e->time_ns), rs_str(s, e->kind_str));
        char line[1200];
        switch (e->kind) {
        case RS_EV_OOM:
                snprintf(line, sizeof(line), "pid %lld (%s) rss %s cgroup %s", (long long) e->pid, rs_str(s, e->comm),
                         rs_fmt_size(r, sizeof(r), e->rss == DIAG_REC_NA ? NAN : (double) e->rss), rs_str(s, e->path));
                break;
        case RS_EV_HUNG:
                snprintf(line, sizeof(line), "pid %lld (%s) %s", (long long) e->pid, rs_str(s, e->comm), rs_str(s, e->text));
                break;
        case RS_EV_TRIGGER:
                snprintf(line, sizeof(line), "%s; snapshot %s", rs_str(s, e->text),
                         *rs_str(s, e->path) ? rs_str(s, e->path) : "(none)");
                break;
        case RS_EV_DROPS:
                snprintf(line, sizeof(line), "%lld records dropped: %s", (long long) e->count, rs_str(s, e->text));
                break;
        default:
                snprintf(line, sizeof(line), "%s", rs_str(s, e->text));
        }
        rs_put_cut(f, line, 20);
}

bool rs_event_shown(const struct rec_show *s, const struct rs_event *e) {
        if (!s->o.at_ns)
                return true;
        int64_t at = s->snap.have ? s->snap.iv.realtime_ns : s->o.at_ns;
        int64_t w = (int64_t) (s->interval_ms ? s->interval_ms : 5000) * 1000000;
        return e->time_ns >= at - w && e->time_ns <= at + w;
}

void rs_text_events(struct rec_show *s, bool around_at) {
        FILE *f = s->out;
        char a[32], b[32], d[32];
        size_t n = 0;
        fprintf(f, "\nEVENTS%s\n", around_at ? " (within one interval)" : "");
        for (size_t i = 0; i < s->nevs; i++)
                if (s->evs[i].kind != RS_EV_START && rs_event_shown(s, &s->evs[i])) {
                        rs_text_event(s, &s->evs[i]);
                        n++;
                }
        if (!n)
                fprintf(f, "(none)\n");
        if (s->ngaps && !around_at) {
                fprintf(f, "\nGAPS\n");
                for (size_t i = 0; i < s->ngaps; i++)
                        fprintf(f, "%s .. %s (%s) %s\n", rs_fmt_date(a, sizeof(a), s->gaps[i].from_ns),
                                rs_fmt_time(b, sizeof(b), s->gaps[i].to_ns),
                                rs_fmt_dur(d, sizeof(d), (double) (s->gaps[i].to_ns - s->gaps[i].from_ns) / 1e9),
                                rs_str(s, s->gaps[i].why));
        }
        if (s->nwarnings) {
                fprintf(f, "\nWARNINGS (damaged recording)\n");
                for (size_t i = 0; i < s->nwarnings; i++)
                        fprintf(f, "%s\n", s->warnings[i]);
        }
}
