/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show --svg: a standalone SVG timeline (no script, nothing external):
 * stacked panels sharing the time axis (memory, PSI, disk IO, process counts of the
 * command lines that changed most), OOM kills and triggers as vertical lines with
 * tooltips, gaps shaded. Written to a temporary file, then renamed over the path.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "show-internal.h"

#define W 1200
#define X0 80.0
#define PW 1090.0               /* plot width */
#define PH 130.0                /* panel height */
#define GAPY 45.0
#define Y0 60.0

struct svg {
        FILE *f;
        int64_t t0, t1;
};

static double xof(const struct svg *g, int64_t t) {
        if (g->t1 <= g->t0)
                return X0;
        return X0 + (double) (t - g->t0) / (double) (g->t1 - g->t0) * PW;
}

/* Text as XML character data: markup escaped, control bytes and broken UTF-8 replaced. */
static void rs_svg_text(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        while (*p) {
                unsigned c = *p;
                int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
                bool ok = len > 0 && !(len == 2 && c < 0xc2);
                for (int i = 1; ok && i < len; i++)
                        ok = (p[i] & 0xc0) == 0x80;
                if (!ok) {
                        fputc('?', f);
                        p++;
                        continue;
                }
                if (len > 1) {
                        fwrite(p, 1, (size_t) len, f);
                        p += len;
                        continue;
                }
                if (c == '&')
                        fputs("&amp;", f);
                else if (c == '<')
                        fputs("&lt;", f);
                else if (c == '>')
                        fputs("&gt;", f);
                else if (c == '"')
                        fputs("&quot;", f);
                else if (c < 0x20 || c == 0x7f)
                        fputc(' ', f);
                else
                        fputc((int) c, f);
                p++;
        }
}

static const char *const colors[] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2" };

/* One series as polylines (broken where values are unknown), y from 0 to ymax. */
static void line(struct svg *g, const struct rs_buckets *b, const double *v, double ymax, double top,
                 const char *color, const char *cls) {
        bool open = false;
        for (size_t i = 0; i <= b->n; i++) {
                bool have = i < b->n && !isnan(v[i]);
                if (!have) {
                        if (open)
                                fprintf(g->f, "\"/>\n");
                        open = false;
                        continue;
                }
                double x = fmin(X0 + PW, fmax(X0, xof(g, b->b[i].from_ns + b->step_ns / 2))), y = top + PH - fmin(v[i], ymax) / ymax * PH;
                if (!open)
                        fprintf(g->f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                                cls, color);
                fprintf(g->f, "%s%.1f,%.1f", open ? " " : "", x, y);
                open = true;
        }
}

static double vmax(const double *v, size_t n, double floor) {
        double m = floor;
        for (size_t i = 0; i < n; i++)
                if (!isnan(v[i]) && v[i] > m)
                        m = v[i];
        return m;
}

static void panel(struct svg *g, double top, const char *title, double ymax, bool bytes) {
        char a[24];
        fprintf(g->f, "<text class=\"panel-title\" x=\"%.1f\" y=\"%.1f\">", X0, top - 8);
        rs_svg_text(g->f, title);
        fprintf(g->f, "</text>\n<rect class=\"panel\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                "stroke=\"#999\"/>\n", X0, top, PW, PH);
        for (int k = 0; k <= 2; k++) {
                double v = ymax * k / 2, y = top + PH - PH * k / 2;
                if (bytes)
                        rs_fmt_size(a, sizeof(a), v);
                else
                        snprintf(a, sizeof(a), "%.4g", v);
                fprintf(g->f, "<text class=\"ylabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", X0 - 4,
                        y + 4, a);
        }
}

static void legend(struct svg *g, double top, int k, const char *name, const char *color) {
        double y = top + 14 + 13 * k;
        fprintf(g->f, "<g class=\"legend\"><rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"3\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">", X0 + 8, y - 4, color, X0 + 22, y);
        char cut[80];
        snprintf(cut, sizeof(cut), "%.76s%s", name, strlen(name) > 76 ? "..." : "");
        rs_svg_text(g->f, cut);
        fprintf(g->f, "</text></g>\n");
}

static void axis(struct svg *g, double bottom) {
        static const int64_t nice[] = { 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
                                        43200, 86400 };
        int64_t span = g->t1 - g->t0, step = 86400;
        for (size_t i = 0; i < sizeof(nice) / sizeof(*nice); i++)
                if (nice[i] * 1000000000 * 8 >= span) {
                        step = nice[i];
                        break;
                }
        int64_t st = step * 1000000000, t = (g->t0 + st - 1) / st * st;
        char a[32];
        for (; t <= g->t1; t += st) {
                double x = xof(g, t);
                fprintf(g->f, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                        "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                        x, Y0, x, bottom + 4, x, bottom + 18, rs_fmt_time(a, sizeof(a), t));
        }
}

static void marks(struct svg *g, const struct rec_show *s, double bottom) {
        char a[32], r[24];
        for (size_t i = 0; i < s->ngaps; i++) {
                double x1 = fmax(X0, xof(g, s->gaps[i].from_ns)), x2 = fmin(X0 + PW, xof(g, s->gaps[i].to_ns));
                fprintf(g->f, "<rect class=\"gap\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#bbb\" "
                        "fill-opacity=\"0.5\"><title>gap %s", x1, Y0, fmax(x2 - x1, 1), bottom - Y0,
                        rs_fmt_time(a, sizeof(a), s->gaps[i].from_ns));
                fprintf(g->f, " .. %s: ", rs_fmt_time(a, sizeof(a), s->gaps[i].to_ns));
                rs_svg_text(g->f, rs_str(s, s->gaps[i].why));
                fprintf(g->f, "</title></rect>\n");
        }
        for (size_t i = 0; i < s->nevs; i++) {
                const struct rs_event *e = &s->evs[i];
                if (e->kind != RS_EV_OOM && e->kind != RS_EV_TRIGGER)
                        continue;
                double x = xof(g, e->time_ns);
                bool oom = e->kind == RS_EV_OOM;
                fprintf(g->f, "<line class=\"%s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                        "stroke-width=\"2\"><title>%s %s: ", oom ? "oom" : "trigger", x, Y0, x, bottom,
                        oom ? "red" : "orange", oom ? "OOM kill" : "trigger", rs_fmt_time(a, sizeof(a), e->time_ns));
                if (oom) {
                        fprintf(g->f, "pid %lld (", (long long) e->pid);
                        rs_svg_text(g->f, rs_str(s, e->comm));
                        fprintf(g->f, ") rss %s cgroup ", rs_fmt_size(r, sizeof(r), e->rss == DIAG_REC_NA ? NAN : (double) e->rss));
                        rs_svg_text(g->f, rs_str(s, e->path));
                } else {
                        rs_svg_text(g->f, rs_str(s, e->text));
                        fprintf(g->f, "; snapshot ");
                        rs_svg_text(g->f, rs_str(s, e->path));
                }
                fprintf(g->f, "</title></line>\n");
        }
}

static int draw(struct rec_show *s, const struct rs_buckets *b, FILE *f) {
        struct svg g = { .f = f, .t0 = s->pts[0].rt_ns, .t1 = s->pts[s->npts - 1].rt_ns };
        size_t n = b->n;
        double *v = calloc(n * 3 + 1, sizeof(double));
        if (!v)
                return -ENOMEM;
        double top[4], bottom = Y0 + 4 * (PH + GAPY) - GAPY;
        for (int k = 0; k < 4; k++)
                top[k] = Y0 + k * (PH + GAPY);
        char a[32], c[32];
        fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                "height=\"%.0f\" viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text id=\"title\" x=\"%.1f\" y=\"22\" "
                "font-size=\"15\">diag-record %s .. %s</text>\n", W, bottom + 40, W, bottom + 40, X0,
                rs_fmt_date(a, sizeof(a), g.t0), rs_fmt_date(c, sizeof(c), g.t1));
        axis(&g, bottom);
        /* memory: used and available % of the total */
        panel(&g, top[0], "memory (% of total)", 100, false);
        for (size_t i = 0; i < n; i++) {
                double p = b->b[i].mem_total > 0 ? b->b[i].mem_avail / b->b[i].mem_total * 100 : NAN;
                v[i] = p;
                v[n + i] = 100 - p;
        }
        line(&g, b, v, 100, top[0], colors[2], "mem-available");
        line(&g, b, v + n, 100, top[0], colors[1], "mem-used");
        legend(&g, top[0], 0, "available", colors[2]);
        legend(&g, top[0], 1, "used", colors[1]);
        /* PSI some */
        static const int psi[3] = { RS_PSI_MEM_SOME, RS_PSI_IO_SOME, RS_PSI_CPU_SOME };
        static const char *const psi_names[3] = { "memory some", "io some", "cpu some" };
        double m = 0;
        for (int k = 0; k < 3; k++) {
                for (size_t i = 0; i < n; i++)
                        v[i] = b->b[i].psi[psi[k]];
                m = fmax(m, vmax(v, n, 10));
        }
        panel(&g, top[1], "pressure stall (% of the time)", m, false);
        for (int k = 0; k < 3; k++) {
                for (size_t i = 0; i < n; i++)
                        v[i] = b->b[i].psi[psi[k]];
                line(&g, b, v, m, top[1], colors[k], "psi");
                legend(&g, top[1], k, psi_names[k], colors[k]);
        }
        /* disk IO */
        for (size_t i = 0; i < n; i++) {
                v[i] = b->b[i].rd_bps;
                v[n + i] = b->b[i].wr_bps;
        }
        m = fmax(vmax(v, n, 1024), vmax(v + n, n, 1024));
        panel(&g, top[2], "disk IO (bytes/s)", m, true);
        line(&g, b, v, m, top[2], colors[0], "disk-read");
        line(&g, b, v + n, m, top[2], colors[1], "disk-write");
        legend(&g, top[2], 0, "read", colors[0]);
        legend(&g, top[2], 1, "write", colors[1]);
        /* process counts of the command lines that changed most */
        uint32_t idx[5];
        size_t ng = rs_top_groups(s, idx, 5);
        m = 1;
        for (size_t k = 0; k < ng; k++)
                m = fmax(m, s->groups[idx[k]].max);
        panel(&g, top[3], "processes per command line", m, false);
        for (size_t k = 0; k < ng; k++) {
                rs_group_series(s, &s->groups[idx[k]], b, v);
                line(&g, b, v, m, top[3], colors[k], "procs");
                legend(&g, top[3], (int) k, rs_str(s, s->groups[idx[k]].cmd), colors[k]);
        }
        marks(&g, s, bottom);
        fprintf(f, "</svg>\n");
        free(v);
        return 0;
}

int rs_svg_write(struct rec_show *s, const struct rs_buckets *tb, const char *path) {
        if (!s->npts)
                return -ENODATA;
        /* finer buckets than the text's: about 600 across */
        struct rs_buckets b;
        unsigned keep = s->o.step_s;
        int64_t span = s->pts[s->npts - 1].rt_ns - s->pts[0].rt_ns;
        s->o.step_s = (unsigned) fmax(1, ceil((double) span / 600e9));
        if (s->interval_ms && s->o.step_s * 1000 < s->interval_ms)
                s->o.step_s = (s->interval_ms + 999) / 1000;
        int r = rs_buckets_make(s, &b);
        s->o.step_s = keep;
        if (r < 0)
                return r;
        char *tmp = NULL;
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
                rs_buckets_free(&b);
                return -ENOMEM;
        }
        int fd = mkstemp(tmp);
        FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
        if (!f) {
                r = -errno;
                if (fd >= 0) {
                        close(fd);
                        unlink(tmp);
                }
                goto out;
        }
        r = draw(s, &b, f);
        if ((fflush(f) != 0 || ferror(f) || fchmod(fd, 0644) < 0) && r >= 0)
                r = errno > 0 ? -errno : -EIO;
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
out:
        free(tmp);
        rs_buckets_free(&b);
        return r;
}
