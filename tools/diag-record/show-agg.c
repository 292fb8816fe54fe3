/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show: buckets over the host's points (cut once the span is known),
 * top lists of processes and command lines through a small heap.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "show-internal.h"

static int64_t auto_step(int64_t span_ns, uint32_t interval_ms) {
        static const int64_t nice[] = { 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
                                        10800, 21600, 43200, 86400 };
        int64_t want = span_ns / 40, min = (int64_t) interval_ms * 1000000;
        if (want < min)
                want = min;
        for (size_t i = 0; i < sizeof(nice) / sizeof(*nice); i++)
                if (nice[i] * 1000000000 >= want)
                        return nice[i] * 1000000000;
        return (want / 86400000000000 + 1) * 86400000000000;
}

enum { W_CPU, W_IOW, W_PSI, W_MAJ = W_PSI + RS_NPSI, W_RD, W_WR, W_N };

static void add_w(double *sum, double *w, int k, double v, double dt) {
        if (isnan(v) || dt <= 0)
                return;
        sum[k] += v * dt;
        w[k] += dt;
}

static double maxn(double a, double b) {
        return isnan(a) ? b : isnan(b) ? a : a > b ? a : b;
}

int rs_buckets_make(const struct rec_show *s, struct rs_buckets *ret) {
        memset(ret, 0, sizeof(*ret));
        ((struct rec_show *) s)->win_s = rs_window_s(s);
        if (!s->npts)
                return 0;
        int64_t t0 = s->pts[0].rt_ns, t1 = s->pts[s->npts - 1].rt_ns;
        int64_t step = s->o.step_s ? (int64_t) s->o.step_s * 1000000000 : auto_step(t1 - t0, s->interval_ms);
        int64_t b0 = t0 / step * step;
        size_t nb = (size_t) ((t1 - b0) / step) + 1;
        ret->step_ns = step;
        ret->b = calloc(nb, sizeof(*ret->b));
        ret->of_pt = calloc(s->npts, sizeof(*ret->of_pt));
        double *sum = calloc(nb * W_N * 2, sizeof(double));
        if (!ret->b || !ret->of_pt || !sum) {
                free(sum);
                rs_buckets_free(ret);
                return -ENOMEM;
        }
        ret->n = nb;
        for (size_t i = 0; i < nb; i++) {
                struct rs_bucket *b = &ret->b[i];
                b->from_ns = b0 + (int64_t) i * step;
                b->to_ns = b->from_ns + step;
                b->mem_avail = b->mem_total = b->swap_used = b->load1 = NAN;
        }
        for (size_t i = 0; i < s->npts; i++) {
                const struct rs_pt *p = &s->pts[i];
                size_t bi = (size_t) ((p->rt_ns - b0) / step);
                struct rs_bucket *b = &ret->b[bi];
                double *su = sum + bi * W_N * 2, *w = su + W_N;
                ret->of_pt[i] = (uint32_t) bi;
                if (!b->n++)
                        b->first = i;
                add_w(su, w, W_CPU, p->cpu_busy, p->dt_s);
                add_w(su, w, W_IOW, p->iowait, p->dt_s);
                for (int k = 0; k < RS_NPSI; k++)
                        add_w(su, w, W_PSI + k, p->psi[k], p->dt_s);
                add_w(su, w, W_MAJ, p->majflt_s, p->dt_s);
                add_w(su, w, W_RD, p->rd_bps, p->dt_s);
                add_w(su, w, W_WR, p->wr_bps, p->dt_s);
                /* memory: the lowest available in the bucket, the rest its highest */
                if (isnan(b->mem_avail) || p->mem_avail < b->mem_avail) {
                        b->mem_avail = p->mem_avail;
                        b->mem_total = p->mem_total;
                }
                b->swap_used = maxn(b->swap_used, p->swap_used);
                b->load1 = maxn(b->load1, p->load1);
                b->nprocs = p->nprocs > b->nprocs ? p->nprocs : b->nprocs;
                b->ndstate = p->ndstate > b->ndstate ? p->ndstate : b->ndstate;
                b->marks |= p->marks & (RS_MARK_OOM | RS_MARK_TRIG);
        }
        for (size_t i = 0; i < nb; i++) {
                struct rs_bucket *b = &ret->b[i];
                const double *su = sum + i * W_N * 2, *w = su + W_N;
#define AVG(k) (w[k] > 0 ? su[k] / w[k] : NAN)
                b->cpu_busy = AVG(W_CPU);
                b->iowait = AVG(W_IOW);
                for (int k = 0; k < RS_NPSI; k++)
                        b->psi[k] = AVG(W_PSI + k);
                b->majflt_s = AVG(W_MAJ);
                b->rd_bps = AVG(W_RD);
                b->wr_bps = AVG(W_WR);
#undef AVG
        }
        for (size_t g = 0; g < s->ngaps; g++)
                for (size_t i = 0; i < nb; i++)
                        if (ret->b[i].from_ns < s->gaps[g].to_ns && ret->b[i].to_ns > s->gaps[g].from_ns)
                                ret->b[i].marks |= RS_MARK_GAP;
        free(sum);
        return 0;
}

void rs_buckets_free(struct rs_buckets *b) {
        free(b->b);
        free(b->of_pt);
        memset(b, 0, sizeof(*b));
}

const char *const rs_top_names[RS_NTOP] = { "cpu", "rss_growth", "majflt", "io" };

double rs_proc_value(const struct rec_show *s, const struct rs_proc *p, enum rs_top_kind k) {
        double w = s->win_s;
        switch (k) {
        case RS_TOP_CPU:
                return w > 0 ? p->cpu_ticks / s->clk_tck / w * 100 : 0;
        case RS_TOP_RSS:
                if (p->first_rss == DIAG_REC_NA || p->last_rt <= p->first_rt)
                        return 0;
                return (double) (p->last_rss - p->first_rss) / ((double) (p->last_rt - p->first_rt) / 60e9);
        case RS_TOP_MAJFLT:
                return w > 0 ? p->majflt / w : 0;
        default:
                return w > 0 ? (p->rd + p->wr) / w : 0;
        }
}

/* A min-heap of the best n so far: the root is the first to go. */
struct heap_item {
        double v;
        uint32_t idx;
};

static bool worse(const struct heap_item *a, const struct heap_item *b) {
        return a->v < b->v || (a->v == b->v && a->idx > b->idx);
}

static void heap_push(struct heap_item *h, size_t *n, size_t cap, struct heap_item it) {
        size_t i;
        if (*n < cap) {
                i = (*n)++;
                while (i && worse(&it, &h[(i - 1) / 2])) {
                        h[i] = h[(i - 1) / 2];
                        i = (i - 1) / 2;
                }
                h[i] = it;
                return;
        }
        if (!cap || !worse(&h[0], &it))
                return;
        i = 0;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= *n)
                        break;
                if (c + 1 < *n && worse(&h[c + 1], &h[c]))
                        c++;
                if (!worse(&h[c], &it))
                        break;
                h[i] = h[c];
                i = c;
        }
        h[i] = it;
}

/* Empty the heap best first into ret. */
static size_t heap_drain(struct heap_item *h, size_t n, uint32_t *ret) {
        for (size_t i = 1; i < n; i++)          /* n is small: insertion sort, best first */
                for (size_t j = i; j && worse(&h[j - 1], &h[j]); j--) {
                        struct heap_item t = h[j];
                        h[j] = h[j - 1];
                        h[j - 1] = t;
                }
        for (size_t i = 0; i < n; i++)
                ret[i] = h[i].idx;
        return n;
}

size_t rs_top(const struct rec_show *s, enum rs_top_kind k, uint32_t *ret, size_t n) {
        struct heap_item h[64];
        size_t nh = 0, cap = n < 64 ? n : 64;
        for (size_t i = 0; i < s->nprocs; i++) {
                const struct rs_proc *p = &s->procs[i];
                if (!p->selected || !p->last_rt)
                        continue;
                double v = rs_proc_value(s, p, k);
                if (v > 0)
                        heap_push(h, &nh, cap, (struct heap_item) { v, (uint32_t) i });
        }
        return heap_drain(h, nh, ret);
}

/* The top n of values v[0..nv) that are > 0, best first. */
size_t rs_top_values(const double *v, size_t nv, uint32_t *ret, size_t n) {
        struct heap_item h[64];
        size_t nh = 0, cap = n < 64 ? n : 64;
        for (size_t i = 0; i < nv; i++)
                if (v[i] > 0)
                        heap_push(h, &nh, cap, (struct heap_item) { v[i], (uint32_t) i });
        return heap_drain(h, nh, ret);
}

size_t rs_top_groups(struct rec_show *s, uint32_t *ret, size_t n) {
        struct heap_item h[64];
        size_t nh = 0, cap = n < 64 ? n : 64;
        for (size_t i = 0; i < s->ngroups; i++) {
                struct rs_group *g = &s->groups[i];
                if (!g->nruns)
                        continue;
                g->min = g->runs[0].iv > 0 ? 0 : g->runs[0].count;
                g->max = 0;
                for (size_t k = 0; k < g->nruns; k++) {
                        g->min = g->runs[k].count < g->min ? g->runs[k].count : g->min;
                        g->max = g->runs[k].count > g->max ? g->runs[k].count : g->max;
                }
                /* the change first, then the size: a tie-break inside one value */
                double v = (double) (g->max - g->min) + (double) g->max / 1e7;
                if (g->max > g->min)
                        heap_push(h, &nh, cap, (struct heap_item) { v, (uint32_t) i });
        }
        return heap_drain(h, nh, ret);
}

void rs_group_series(const struct rec_show *s, const struct rs_group *g, const struct rs_buckets *b, double *ret) {
        for (size_t i = 0; i < b->n; i++)
                ret[i] = b->b[i].n ? 0 : NAN;
        for (size_t k = 0; k < g->nruns; k++) {
                size_t from = g->runs[k].iv, to = k + 1 < g->nruns ? g->runs[k + 1].iv : s->npts;
                if (to <= from || !g->runs[k].count)
                        continue;
                for (size_t bi = b->of_pt[from]; bi <= b->of_pt[to - 1]; bi++)
                        if (b->b[bi].n && ret[bi] < g->runs[k].count)
                                ret[bi] = g->runs[k].count;
        }
}

const char *rs_proc_cmd(const struct rec_show *s, const struct rs_proc *p) {
        const char *c = rs_str(s, p->cmd);
        return *c ? c : rs_str(s, p->comm);
}
