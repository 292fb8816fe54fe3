/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show: the state kept over the intervals, gaps and warnings, time
 * arguments, and the choice of view at the end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag/util.h"
#include "show-internal.h"

int rs_grow(void *pp, size_t *alloc, size_t need, size_t size) {
        void **p = pp;
        if (need <= *alloc)
                return 0;
        size_t a = *alloc ? *alloc : 16;
        while (a < need)
                a *= 2;
        void *n = realloc(*p, a * size);
        if (!n)
                return -ENOMEM;
        *p = n;
        *alloc = a;
        return 0;
}

uint32_t rs_intern(struct rec_show *s, const char *str) {
        return diag_rec_intern(s->str, str, strlen(str));
}

const char *rs_str(const struct rec_show *s, uint32_t id) {
        return diag_rec_str(s->str, id);
}

struct rec_show *rec_show_new(const struct rec_show_opts *opts) {
        struct rec_show *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->o = *opts;
        s->out = opts->out ? opts->out : stdout;
        s->top = opts->top ? opts->top : 5;
        s->clk_tck = 100;
        s->snap.pt = RS_NOID;
        if (opts->cmd_pattern) {
                if (regcomp(&s->re, opts->cmd_pattern, REG_EXTENDED | REG_NOSUB) != 0) {
                        free(s);
                        errno = EINVAL;
                        return NULL;
                }
                s->have_re = true;
        }
        s->str = diag_rec_strings_new();
        if (!s->str) {
                rec_show_free(s);
                errno = ENOMEM;
                return NULL;
        }
        diag_rec_interval_init(&s->snap.iv, s->str);
        return s;
}

void rec_show_free(struct rec_show *s) {
        if (!s)
                return;
        if (s->have_re)
                regfree(&s->re);
        for (size_t i = 0; i < s->ngroups; i++)
                free(s->groups[i].runs);
        for (size_t i = 0; i < s->nwarnings; i++)
                free(s->warnings[i]);
        free(s->warnings);
        free(s->groups);
        free(s->group_of);
        free(s->active);
        free(s->touched);
        free(s->pts);
        free(s->procs);
        free(s->phash);
        free(s->cgs);
        free(s->cg_pos);
        free(s->evs);
        free(s->gaps);
        free(s->ps);
        free(s->row_proc);
        free(s->row_cpu);
        diag_rec_interval_free(&s->snap.iv);
        free(s->snap.cpu);
        free(s->snap.majflt);
        free(s->snap.io);
        diag_rec_strings_free(s->str);
        free(s);
}

/* Gaps come from the reader and from the intervals' own times: overlapping ones merge. */
int rs_add_gap(struct rec_show *s, int64_t from_ns, int64_t to_ns, const char *why) {
        if (to_ns <= from_ns)
                return 0;
        if ((s->o.to_ns && from_ns > s->o.to_ns) || (s->o.from_ns && to_ns < s->o.from_ns))
                return 0;
        for (size_t i = 0; i < s->ngaps; i++) {
                struct rs_gap *g = &s->gaps[i];
                if (from_ns <= g->to_ns && to_ns >= g->from_ns) {
                        g->from_ns = from_ns < g->from_ns ? from_ns : g->from_ns;
                        g->to_ns = to_ns > g->to_ns ? to_ns : g->to_ns;
                        return 0;
                }
        }
        if (rs_grow(&s->gaps, &s->agaps, s->ngaps + 1, sizeof(*s->gaps)) < 0)
                return -ENOMEM;
        uint32_t w = rs_intern(s, why ? why : "");
        s->gaps[s->ngaps++] = (struct rs_gap) { from_ns, to_ns, w == RS_NOID ? 0 : w };
        return 0;
}

void rec_show_gap(struct rec_show *s, int64_t from_ns, int64_t to_ns, const char *why) {
        (void) rs_add_gap(s, from_ns, to_ns, why);
}

void rec_show_warning(struct rec_show *s, const char *line) {
        if (rs_grow(&s->warnings, &s->awarnings, s->nwarnings + 1, sizeof(*s->warnings)) < 0)
                return;
        char *d = strdup(line ? line : "");
        if (d)
                s->warnings[s->nwarnings++] = d;
}

int rec_show_interval(struct rec_show *s, const struct diag_rec_interval *iv) {
        if (!iv || !iv->t[DIAG_REC_HOST].nrows)
                return -EINVAL;
        return rs_feed(s, iv);
}

double rs_window_s(const struct rec_show *s) {
        double t = 0;
        for (size_t i = 0; i < s->npts; i++)
                t += s->pts[i].dt_s;
        return t;
}

int rec_show_finish(struct rec_show *s) {
        if (s->o.follow && s->o.json)
                return 0;
        struct rs_buckets b = { 0 };
        int r = rs_buckets_make(s, &b);
        if (r < 0)
                return r;
        if (s->o.svg_path) {
                r = rs_svg_write(s, &b, s->o.svg_path);
                if (r < 0)
                        goto out;
        }
        if (s->o.json)
                r = rs_json_print(s, &b);
        else
                r = rs_text_print(s, &b);
out:
        rs_buckets_free(&b);
        return r;
}
