/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show: the figures of one process, or of all that --cmd matched, per
 * bucket, from the samples kept of the selected processes.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "show-internal.h"

static int state_rank(char c) {
        return c == 'D' ? 3 : c == 'R' ? 2 : c && c != ' ' ? 1 : 0;
}

void rs_pseries_free(struct rs_pseries *p) {
        free(p->cpu);
        free(p->rss);
        free(p->majflt_s);
        free(p->rd_bps);
        free(p->wr_bps);
        free(p->threads);
        free(p->state);
        memset(p, 0, sizeof(*p));
}

int rs_pseries_make(const struct rec_show *s, const struct rs_buckets *b, uint32_t proc, struct rs_pseries *ret) {
        size_t n = b->n ? b->n : 1;
        memset(ret, 0, sizeof(*ret));
        double **arr[] = { &ret->cpu, &ret->rss, &ret->majflt_s, &ret->rd_bps, &ret->wr_bps, &ret->threads };
        double *dt = calloc(n, sizeof(double));
        ret->state = calloc(n, 1);
        bool bad = !dt || !ret->state;
        for (size_t i = 0; i < sizeof(arr) / sizeof(*arr); i++) {
                *arr[i] = calloc(n, sizeof(double));
                bad = bad || !*arr[i];
        }
        if (bad) {
                free(dt);
                rs_pseries_free(ret);
                return -ENOMEM;
        }
        for (size_t i = 0; i < b->n; i++) {
                ret->state[i] = ' ';
                ret->rss[i] = ret->threads[i] = NAN;
        }
        /* samples are in interval order: sum RSS and threads per interval, keep the bucket's highest */
        double rss = 0, thr = 0;
        uint32_t cur = RS_NOID;
        for (size_t i = 0; i <= s->nps; i++) {
                const struct rs_psample *p = i < s->nps ? &s->ps[i] : NULL;
                if (p && proc != RS_NOID && p->proc != proc)
                        continue;
                if (cur != RS_NOID && (!p || p->iv != cur)) {
                        size_t bi = b->of_pt[cur];
                        ret->rss[bi] = isnan(ret->rss[bi]) || rss > ret->rss[bi] ? rss : ret->rss[bi];
                        ret->threads[bi] = isnan(ret->threads[bi]) || thr > ret->threads[bi] ? thr : ret->threads[bi];
                        rss = thr = 0;
                        /* the time base: one process's own, or the bucket's for several */
                        if (proc == RS_NOID)
                                dt[bi] += s->pts[cur].dt_s;
                }
                if (!p)
                        break;
                cur = p->iv;
                size_t bi = b->of_pt[p->iv];
                rss += p->rss == DIAG_REC_NA ? 0 : (double) p->rss;
                thr += p->threads == DIAG_REC_NA ? 0 : (double) p->threads;
                if (state_rank(p->state) > state_rank(ret->state[bi]))
                        ret->state[bi] = p->state;
                if (proc != RS_NOID)
                        dt[bi] += p->dt_s;
                ret->cpu[bi] += isnan(p->cpu_ticks) ? 0 : p->cpu_ticks;
                ret->majflt_s[bi] += isnan(p->majflt) ? 0 : p->majflt;
                ret->rd_bps[bi] += isnan(p->rd) ? 0 : p->rd;
                ret->wr_bps[bi] += isnan(p->wr) ? 0 : p->wr;
        }
        for (size_t i = 0; i < b->n; i++) {
                bool seen = !isnan(ret->rss[i]);
                double d = dt[i];
                ret->cpu[i] = seen && d > 0 ? ret->cpu[i] / s->clk_tck / d * 100 : NAN;
                ret->majflt_s[i] = seen && d > 0 ? ret->majflt_s[i] / d : NAN;
                ret->rd_bps[i] = seen && d > 0 ? ret->rd_bps[i] / d : NAN;
                ret->wr_bps[i] = seen && d > 0 ? ret->wr_bps[i] / d : NAN;
        }
        free(dt);
        return 0;
}

size_t rs_sampled_procs(const struct rec_show *s, uint32_t *ret, size_t n) {
        size_t k = 0;
        for (size_t i = 0; i < s->nprocs && k < n; i++)
                if (s->procs[i].selected && s->procs[i].last_rt)
                        ret[k++] = (uint32_t) i;
        return k;
}
