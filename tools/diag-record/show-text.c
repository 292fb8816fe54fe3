/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show as text: the header, the timeline, the top processes and the
 * process counts per command line (show-text2.c: events, cgroups, one process, --at).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "show-internal.h"

#define WIDTH 140

/* A percentage or a plain figure: "-" when unknown. */
const char *rs_fmt_num(char *buf, size_t n, double v, int decimals) {
        if (isnan(v))
                snprintf(buf, n, "-");
        else
                snprintf(buf, n, "%.*f", decimals, v);
        return buf;
}

/* Print text cut to what is left of the line after col columns. */
void rs_put_cut(FILE *f, const char *text, int col) {
        int room = WIDTH - col;
        if (room < 10)
                room = 10;
        int len = (int) strlen(text);
        for (int i = 0; i < len; i++)   /* control characters would break the columns */
                if ((unsigned char) text[i] < 0x20) {
                        len = i;
                        break;
                }
        if (len <= room)
                fprintf(f, "%.*s\n", len, text);
        else
                fprintf(f, "%.*s...\n", room - 3, text);
}

static void header(struct rec_show *s) {
        char a[32], b[32], d[32], g[32];
        FILE *f = s->out;
        if (!s->npts) {
                fprintf(f, "No intervals recorded%s.\n", s->o.from_ns || s->o.to_ns ? " in the window" : "");
                return;
        }
        double longest = 0;
        for (size_t i = 0; i < s->ngaps; i++)
                if ((double) (s->gaps[i].to_ns - s->gaps[i].from_ns) / 1e9 > longest)
                        longest = (double) (s->gaps[i].to_ns - s->gaps[i].from_ns) / 1e9;
        int64_t t0 = s->pts[0].rt_ns, t1 = s->pts[s->npts - 1].rt_ns;
        fprintf(f, "Recording %s .. %s (%s), interval %.3gs, %zu intervals, gaps %zu",
                rs_fmt_date(a, sizeof(a), t0), rs_fmt_date(b, sizeof(b), t1), rs_fmt_dur(d, sizeof(d), (double) (t1 - t0) / 1e9),
                s->interval_ms / 1000.0, s->npts, s->ngaps);
        if (s->ngaps)
                fprintf(f, " (longest %s)", rs_fmt_dur(g, sizeof(g), longest));
        fprintf(f, "\n");
}

static const char *marks(char *buf, size_t n, uint8_t m) {
        snprintf(buf, n, "%s%s%s%s%s", m & RS_MARK_OOM ? "OOM" : "", (m & RS_MARK_OOM) && (m & ~RS_MARK_OOM) ? "," : "",
                 m & RS_MARK_TRIG ? "TRIG" : "", (m & RS_MARK_TRIG) && (m & RS_MARK_GAP) ? "," : "",
                 m & RS_MARK_GAP ? "GAP" : "");
        return buf;
}

static void timeline(struct rec_show *s, const struct rs_buckets *b) {
        FILE *f = s->out;
        char t[32], st[32], x[15][24];
        if (!b->n)
                return;
        fprintf(f, "\nTIMELINE (step %s; PSI: %% of the time stalled)\n", rs_fmt_dur(st, sizeof(st), (double) b->step_ns / 1e9));
        fprintf(f, "%-8s %5s %5s %8s %5s %6s %6s %6s %6s %6s %6s %8s %7s %7s %6s %6s %6s %s\n", "TIME", "CPU%", "IOW%",
                "MEMAVL", "AVL%", "SWAP", "MEMSM", "MEMFU", "IOSM", "IOFU", "CPUSM", "MAJFLT/S", "READ/S",
                "WRITE/S", "LOAD1", "PROCS", "DSTATE", "MARK");
        for (size_t i = 0; i < b->n; i++) {
                const struct rs_bucket *k = &b->b[i];
                if (!k->n) {
                        size_t j = i;
                        while (j + 1 < b->n && !b->b[j + 1].n)
                                j++;
                        fprintf(f, "%-8s no intervals until %s%*s%s\n", rs_fmt_time(t, sizeof(t), k->from_ns),
                                rs_fmt_time(st, sizeof(st), b->b[j].to_ns), 74, "", marks(x[0], sizeof(x[0]), k->marks | RS_MARK_GAP));
                        i = j;
                        continue;
                }
                double mp = k->mem_total > 0 ? k->mem_avail / k->mem_total * 100 : NAN;
                marks(x[14], 24, k->marks);
                fprintf(f, "%-8s %5s %5s %8s %5s %6s %6s %6s %6s %6s %6s %8s %7s %7s %6s %6u %6u%s%s\n",
                        rs_fmt_time(t, sizeof(t), k->from_ns), rs_fmt_num(x[0], 24, k->cpu_busy, 1),
                        rs_fmt_num(x[1], 24, k->iowait, 1), rs_fmt_size(x[2], 24, k->mem_avail), rs_fmt_num(x[3], 24, mp, 1),
                        rs_fmt_size(x[4], 24, k->swap_used), rs_fmt_num(x[5], 24, k->psi[RS_PSI_MEM_SOME], 2),
                        rs_fmt_num(x[6], 24, k->psi[RS_PSI_MEM_FULL], 2), rs_fmt_num(x[7], 24, k->psi[RS_PSI_IO_SOME], 2),
                        rs_fmt_num(x[8], 24, k->psi[RS_PSI_IO_FULL], 2), rs_fmt_num(x[9], 24, k->psi[RS_PSI_CPU_SOME], 2),
                        rs_fmt_num(x[10], 24, k->majflt_s, 1), rs_fmt_size(x[12], 24, k->rd_bps),
                        rs_fmt_size(x[13], 24, k->wr_bps), rs_fmt_num(x[11], 24, k->load1, 2), k->nprocs, k->ndstate,
                        x[14][0] ? " " : "", x[14]);       /* no blank at the end of a line without a mark */
        }
}

static const char *const top_titles[RS_NTOP] = { "BY CPU", "BY RSS GROWTH", "BY MAJOR FAULTS", "BY IO" };
static const char *const top_heads[RS_NTOP] = { "CPU%", "RSS/MIN", "MAJFLT/S", "IO/S" };

const char *rs_fmt_value(char *buf, size_t n, enum rs_top_kind k, double v) {
        if (k == RS_TOP_CPU)
                return rs_fmt_num(buf, n, v, 1);
        if (k == RS_TOP_MAJFLT)
                return rs_fmt_num(buf, n, v, 1);
        return rs_fmt_size(buf, n, v);
}

static void tops(struct rec_show *s) {
        FILE *f = s->out;
        uint32_t idx[64];
        char v[32];
        for (int k = 0; k < RS_NTOP; k++) {
                size_t n = rs_top(s, k, idx, s->top);
                fprintf(f, "\nTOP PROCESSES %s\n", top_titles[k]);
                if (!n) {
                        fprintf(f, "(none)\n");
                        continue;
                }
                fprintf(f, "%8s %-15s %9s %s\n", "PID", "COMM", top_heads[k], "COMMAND");
                for (size_t i = 0; i < n; i++) {
                        const struct rs_proc *p = &s->procs[idx[i]];
                        fprintf(f, "%8lld %-15.15s %9s ", (long long) p->pid, rs_str(s, p->comm),
                                rs_fmt_value(v, sizeof(v), k, rs_proc_value(s, p, k)));
                        rs_put_cut(f, rs_proc_cmd(s, p), 35);
                }
        }
}

/* " .:-=+*#%@": the bucket's highest count against the group's highest. */
void rs_sparkline(char *out, const double *v, size_t n, double max) {
        static const char levels[] = " .:-=+*#%@";
        for (size_t i = 0; i < n; i++) {
                if (isnan(v[i]))
                        out[i] = '_';
                else if (v[i] <= 0 || max <= 0)
                        out[i] = ' ';
                else {
                        int l = (int) ceil(v[i] / max * 9);
                        out[i] = levels[l < 1 ? 1 : l > 9 ? 9 : l];
                }
        }
        out[n] = 0;
}

static int groups(struct rec_show *s, const struct rs_buckets *b) {
        FILE *f = s->out;
        uint32_t idx[64];
        size_t n = rs_top_groups(s, idx, s->top);
        fprintf(f, "\nPROCESS COUNT PER COMMAND LINE (the largest changes; one character a bucket, _ no intervals)\n");
        if (!n) {
                fprintf(f, "(no changes)\n");
                return 0;
        }
        double *v = malloc((b->n ? b->n : 1) * sizeof(double));
        char *line = malloc(b->n + 1);
        if (!v || !line) {
                free(v);
                free(line);
                return -ENOMEM;
        }
        fprintf(f, "%5s %5s %-*s %s\n", "MIN", "MAX", (int) b->n + 2, "COUNTS", "COMMAND");
        for (size_t i = 0; i < n; i++) {
                const struct rs_group *g = &s->groups[idx[i]];
                rs_group_series(s, g, b, v);
                rs_sparkline(line, v, b->n, g->max);
                fprintf(f, "%5u %5u |%s| ", g->min, g->max, line);
                rs_put_cut(f, rs_str(s, g->cmd), 14 + (int) b->n);
        }
        free(v);
        free(line);
        return 0;
}

int rs_text_print(struct rec_show *s, const struct rs_buckets *b) {
        int r;
        header(s);
        if (s->o.at_ns)
                r = rs_text_at(s);
        else {
                timeline(s, b);
                r = rs_text_procs(s, b);
                if (r >= 0) {
                        tops(s);
                        r = groups(s, b);
                }
                if (r >= 0)
                        rs_text_cgroups(s);
        }
        rs_text_events(s, s->o.at_ns);
        if (r >= 0 && (fflush(s->out) != 0 || ferror(s->out)))
                r = -EIO;
        return r;
}
