/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show --at: one recorded interval as a snapshot, as text.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "show-internal.h"

const struct rs_pt *rs_at_pt(const struct rec_show *s) {
        uint32_t i = s->snap.pt;
        if (!s->snap.have || i == RS_NOID || i >= s->npts)
                return NULL;
        if (s->pts[i].dt_s <= 0 && i + 1 < s->npts)
                return &s->pts[i + 1];
        return &s->pts[i];
}

size_t rs_at_top(const struct rec_show *s, enum rs_top_kind k, uint32_t *ret, size_t n) {
        const struct diag_rec_interval *iv = &s->snap.iv;
        size_t nr = iv->t[DIAG_REC_PROC].nrows;
        if (k == RS_TOP_CPU)
                return rs_top_values(s->snap.cpu, nr, ret, n);
        double *v = malloc((nr ? nr : 1) * sizeof(double));
        if (!v)
                return 0;
        for (size_t r = 0; r < nr; r++) {
                int64_t rss = DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_RSS);
                v[r] = rss == DIAG_REC_NA ? 0 : (double) rss;
        }
        n = rs_top_values(v, nr, ret, n);
        free(v);
        return n;
}

static void at_procs(struct rec_show *s, enum rs_top_kind k) {
        FILE *f = s->out;
        const struct diag_rec_interval *iv = &s->snap.iv;
        uint32_t idx[64];
        char x[5][24];
        size_t n = rs_at_top(s, k, idx, 20);
        fprintf(f, "\nTOP 20 PROCESSES BY %s\n", k == RS_TOP_CPU ? "CPU" : "RSS");
        if (!n) {
                fprintf(f, "(none)\n");
                return;
        }
        fprintf(f, "%8s %8s %6s %s %6s %7s %8s %7s %4s %s\n", "PID", "PPID", "UID", "S", "CPU%", "RSS", "MAJFLT/S", "IO/S",
                "THR", "COMMAND");
        for (size_t i = 0; i < n; i++) {
                size_t r = idx[i];
                const int64_t *v = &DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0);
                const char *cmd = rs_str(s, DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CMD));
                fprintf(f, "%8lld %8lld %6lld %c %6s %7s %8s %7s %4lld ", (long long) v[PR_PID], (long long) v[PR_PPID],
                        (long long) v[PR_UID], v[PR_STATE] > 32 && v[PR_STATE] < 127 ? (char) v[PR_STATE] : '?',
                        rs_fmt_num(x[0], 24, s->snap.cpu[r], 1),
                        rs_fmt_size(x[1], 24, v[PR_RSS] == DIAG_REC_NA ? NAN : (double) v[PR_RSS]),
                        rs_fmt_num(x[2], 24, s->snap.majflt[r], 1), rs_fmt_size(x[3], 24, s->snap.io[r]),
                        (long long) v[PR_THREADS]);
                rs_put_cut(f, *cmd ? cmd : rs_str(s, DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_COMM)), 75);
        }
}

int rs_text_at(struct rec_show *s) {
        FILE *f = s->out;
        const struct diag_rec_interval *iv = &s->snap.iv;
        char a[32], ld[24], x[12][24];
        if (!s->snap.have) {
                fprintf(f, "\nNo interval recorded at or before %s.\n", rs_fmt_date(a, sizeof(a), s->o.at_ns));
                return 0;
        }
        fprintf(f, "\nAT %s (the interval at or before %s)\n", rs_fmt_date(a, sizeof(a), iv->realtime_ns),
                rs_fmt_time(x[11], 24, s->o.at_ns));
        const struct rs_pt *p = rs_at_pt(s);
        if (p)
                fprintf(f, "Host: CPU %s%% busy, iowait %s%%, memory available %s (%s%%), swap used %s, "
                        "PSI mem %s/%s io %s/%s cpu %s %%, majflt %s/s, disk read %s/s write %s/s, load1 %s, "
                        "%u processes, %u D-state threads\n",
                        rs_fmt_num(x[0], 24, p->cpu_busy, 1), rs_fmt_num(x[1], 24, p->iowait, 1),
                        rs_fmt_size(x[2], 24, s->pts[s->snap.pt].mem_avail),
                        rs_fmt_num(x[3], 24, s->pts[s->snap.pt].mem_avail / s->pts[s->snap.pt].mem_total * 100, 1),
                        rs_fmt_size(x[4], 24, s->pts[s->snap.pt].swap_used), rs_fmt_num(x[5], 24, p->psi[0], 2),
                        rs_fmt_num(x[6], 24, p->psi[1], 2), rs_fmt_num(x[7], 24, p->psi[2], 2),
                        rs_fmt_num(x[8], 24, p->psi[3], 2), rs_fmt_num(x[9], 24, p->psi[4], 2),
                        rs_fmt_num(x[10], 24, p->majflt_s, 1), rs_fmt_size(a, sizeof(a), p->rd_bps),
                        rs_fmt_size(x[11], 24, p->wr_bps), rs_fmt_num(ld, sizeof(ld), s->pts[s->snap.pt].load1, 2),
                        s->pts[s->snap.pt].nprocs, s->pts[s->snap.pt].ndstate);
        at_procs(s, RS_TOP_CPU);
        at_procs(s, RS_TOP_RSS);
        fprintf(f, "\nD-STATE THREADS\n");
        if (!iv->t[DIAG_REC_DSTATE].nrows)
                fprintf(f, "(none)\n");
        else
                fprintf(f, "%8s %8s %-15s %s\n", "TID", "PID", "COMM", "WCHAN");
        for (size_t r = 0; r < iv->t[DIAG_REC_DSTATE].nrows; r++)
                fprintf(f, "%8lld %8lld %-15.15s %s\n", (long long) DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_TID),
                        (long long) DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_PID),
                        rs_str(s, DIAG_REC_STR(iv, DIAG_REC_DSTATE, r, DS_COMM)),
                        rs_str(s, DIAG_REC_STR(iv, DIAG_REC_DSTATE, r, DS_WCHAN)));
        fprintf(f, "\nCGROUPS NEAR THEIR MEMORY LIMIT (> 80 %%)\n");
        size_t n = 0;
        for (size_t r = 0; r < iv->t[DIAG_REC_CGROUP].nrows; r++) {
                int64_t cur = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_MEM_CURRENT);
                int64_t lim = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_MEM_LIMIT);
                if (lim <= 0 || cur == DIAG_REC_NA || (double) cur <= 0.8 * (double) lim)
                        continue;
                fprintf(f, "%8s of %8s %5.1f %% %s\n", rs_fmt_size(x[0], 24, (double) cur), rs_fmt_size(x[1], 24, (double) lim),
                        (double) cur / (double) lim * 100, rs_str(s, DIAG_REC_STR(iv, DIAG_REC_CGROUP, r, CG_PATH)));
                n++;
        }
        if (!n)
                fprintf(f, "(none)\n");
        return 0;
}
