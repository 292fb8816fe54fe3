/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top's screen (ncurses): the header, the process list, the drill-down pane and
 * the key line. It only reads the frame and the rows; the refresh is diag-top.c's.
 * Only what changed reaches the terminal: every draw erases and redraws into the
 * virtual screen and doupdate() sends the difference; clear() is for a resize or ^L.
 * The loop waits in poll() on the keyboard, a drill-down child's pipe and the kernel
 * log until the next refresh is due.
 */
#include <ctype.h>
#include <curses.h>
#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <wchar.h>

#include "diag/log.h"
#include "diag/util.h"
#include "view.h"

#define MIN_W           40
#define MIN_H           10
#define ESC_KEY         27
#define CTRL_KEY(c)     ((c) & 0x1f)

enum {
        PAIR_LABEL = 1, PAIR_COLHEAD, PAIR_SORTED, PAIR_SELECTED, PAIR_DSTATE, PAIR_RUNNING,
        PAIR_FULL, PAIR_SOME, PAIR_NEW, PAIR_PANE, PAIR_EVENT, PAIR_KEY, PAIR_WAIT, PAIR_GROUP,
};

enum mode {
        MODE_LIST, MODE_FILTER, MODE_TIME, MODE_ASK_STACK, MODE_HELP,
};

/* The columns as shown: their width, alignment, and in which order they are dropped when
 * the screen is narrow (0: never; WAIT and COMMAND share what is left). */
static const struct colspec {
        enum top_col col;
        int width;
        bool left;
        int drop;                       /* higher is dropped first */
} colspecs[] = {
        { TOP_COL_PID,      7, false, 0 },
        { TOP_COL_USER,     8, true,  3 },
        { TOP_COL_STATE,    1, true,  0 },
        { TOP_COL_CPU,      5, false, 0 },
        { TOP_COL_RSS,      6, false, 2 },
        { TOP_COL_GROWTH,   7, false, 4 },
        { TOP_COL_MAJFLT,   8, false, 5 },
        { TOP_COL_READ,     7, false, 6 },
        { TOP_COL_WRITE,    7, false, 7 },
        { TOP_COL_THREADS,  4, false, 8 },
        { TOP_COL_BLOCKED,  7, false, 1 },
        { TOP_COL_WAIT,     0, true,  0 },
        { TOP_COL_CMD,      0, true,  0 },
};
#define NCOLS ELEMENTSOF(colspecs)
/* Room wanted by WAIT and COMMAND together before a dropped column comes back. */
#define FLEX_WANT       48

static struct view {
        struct top_app *a;
        bool utf8, color, mouse;
        enum mode mode;
        char input[128];
        size_t ninput;
        char msg[200];                  /* one line on the key line until the next key */

        size_t sel, top;                /* the selected row, the first row shown */
        pid_t sel_pid;                  /* the selection follows its process across refreshes */
        int64_t sel_start;

        struct drill d;                 /* the pane (DRILL_NONE: closed) */
        bool pane_full;
        size_t pane_top, pane_left;
        bool stack_asked;               /* "s" asked once and was answered yes */
        pid_t ask_pid;

        size_t help_top;

        /* the layout of the last draw */
        int width[NCOLS];               /* 0: not shown */
        int list_y, list_h;             /* rows of the list */
        int pane_y, pane_h;
        unsigned waited_gen;            /* WAIT filled for these rows */
        size_t waited_first, waited_n;
        bool filled_now;                /* this draw filled WAIT (its time is not the draw's) */
} V;

/* ---- text that fits ---- */

/* Put s at (y, x) in at most w columns, padded with spaces to w when pad; characters
 * the terminal cannot show become '?'. Returns the columns used. */
static int put(int y, int x, int w, const char *s, bool pad) {
        mbstate_t st;
        int used = 0;

        if (w <= 0)
                return 0;
        move(y, x);
        memset(&st, 0, sizeof st);
        while (*s && used < w) {
                if (!V.utf8 || (unsigned char) *s < 0x80) {
                        unsigned char c = (unsigned char) *s++;
                        addch(c >= 0x20 && c < 0x7f ? c : '?');
                        used++;
                        continue;
                }
                {
                        wchar_t wc;
                        size_t k = mbrtowc(&wc, s, MB_CUR_MAX, &st);
                        int cw;

                        if (k == (size_t) -1 || k == (size_t) -2 || k == 0) {
                                memset(&st, 0, sizeof st);
                                addch('?');
                                s++;
                                used++;
                                continue;
                        }
                        cw = wcwidth(wc);
                        if (cw < 0) {
                                addch('?');
                                cw = 1;
                        } else if (used + cw > w) {
                                break;
                        } else
                                addnstr(s, (int) k);
                        s += k;
                        used += cw;
                }
        }
        while (pad && used < w) {
                addch(' ');
                used++;
        }
        return used;
}

_printf_(4, 5)
static int putf(int y, int x, int w, const char *fmt, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return put(y, x, w, buf, false);
}

static void attr(int pair, attr_t mono) {
        if (V.color && pair)
                attron(COLOR_PAIR(pair));
        else
                attron(mono);
}

static void unattr(int pair, attr_t mono) {
        if (V.color && pair)
                attroff(COLOR_PAIR(pair));
        else
                attroff(mono);
}

static void colors_init(void) {
        short bg = -1;

        start_color();
        if (use_default_colors() == ERR)
                bg = COLOR_BLACK;
        init_pair(PAIR_LABEL, COLOR_CYAN, bg);
        init_pair(PAIR_COLHEAD, COLOR_BLACK, COLOR_GREEN);
        init_pair(PAIR_SORTED, COLOR_BLACK, COLOR_CYAN);
        init_pair(PAIR_SELECTED, COLOR_BLACK, COLOR_CYAN);
        init_pair(PAIR_DSTATE, COLOR_RED, bg);
        init_pair(PAIR_RUNNING, COLOR_GREEN, bg);
        init_pair(PAIR_FULL, COLOR_RED, bg);
        init_pair(PAIR_SOME, COLOR_YELLOW, bg);
        init_pair(PAIR_NEW, COLOR_GREEN, bg);
        init_pair(PAIR_PANE, COLOR_WHITE, COLOR_BLUE);
        init_pair(PAIR_EVENT, COLOR_RED, bg);
        init_pair(PAIR_KEY, COLOR_BLACK, COLOR_CYAN);
        init_pair(PAIR_WAIT, COLOR_YELLOW, bg);
        init_pair(PAIR_GROUP, COLOR_MAGENTA, bg);
}

/* Which columns fit in width w: the droppable ones go, highest drop rank first, until
 * WAIT and COMMAND have FLEX_WANT columns (or nothing is left to drop). The column
 * sorted by stays. */
static void layout(int w, bool any_wait) {
        int fixed = 0, flex, wait_w;

        for (size_t i = 0; i < NCOLS; i++) {
                V.width[i] = colspecs[i].width;
                fixed += colspecs[i].width ? colspecs[i].width + 1 : 0;
        }
        for (int rank = 8; rank >= 1 && w - fixed < FLEX_WANT; rank--)
                for (size_t i = 0; i < NCOLS; i++)
                        if (colspecs[i].drop == rank && V.width[i] && colspecs[i].col != V.a->ro.sort) {
                                fixed -= V.width[i] + 1;
                                V.width[i] = 0;
                        }
        flex = MAX(w - fixed, 2);
        /* WAIT says what the process waits for: the larger share when a row on screen
         * has one, else just its name */
        wait_w = any_wait ? MAX(flex - MAX(flex * 3 / 10, 16) - 1, 4) : 4;
        if (wait_w > 70)
                wait_w = 70;
        V.width[NCOLS - 2] = wait_w;
        V.width[NCOLS - 1] = MAX(flex - wait_w - 1, 1);
}

/* ---- the header ---- */

/* Line drawing and arrows only in a UTF-8 locale and without --ascii. */
static const char *glyph(const char *fancy, const char *plain) {
        return V.utf8 && !V.a->ascii ? fancy : plain;
}

static void fmt_pct(char *buf, size_t size, double v) {
        if (v < 0)
                snprintf(buf, size, "-");
        else if (v >= 99.95)
                snprintf(buf, size, "%.0f", v);
        else
                snprintf(buf, size, "%.1f", v);
}

static void fmt_clock(char *buf, size_t size, int64_t ns, bool date) {
        time_t t = (time_t) (ns / 1000000000);
        struct tm tm;

        if (ns <= 0 || !localtime_r(&t, &tm))
                snprintf(buf, size, "--:--:--");
        else
                strftime(buf, size, date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
}

/* A label in the label colour, then the text: the columns used. */
static int label(int y, int x, int w, const char *l) {
        int n;

        attr(PAIR_LABEL, A_BOLD);
        n = put(y, x, w, l, false);
        unattr(PAIR_LABEL, A_BOLD);
        return n;
}

/* A PSI bar: the full part, then the some-but-not-full part, then empty. */
static int psi_bar(int y, int x, int w, double some, double full) {
        int nfull, nsome;

        if (w < 3)
                return 0;
        w -= 2;
        some = some < 0 ? 0 : MIN(some, 100);
        full = full < 0 ? 0 : MIN(full, some);
        nfull = (int) (full * w / 100 + 0.5);
        nsome = (int) (some * w / 100 + 0.5) - nfull;
        if (some > 0 && nfull + nsome == 0)
                nsome = 1;              /* a stall shows, however small */
        mvaddch(y, x, '[');
        attr(PAIR_FULL, A_BOLD);
        for (int i = 0; i < nfull; i++)
                addstr(glyph("\u2588", "#"));
        unattr(PAIR_FULL, A_BOLD);
        attr(PAIR_SOME, A_NORMAL);
        for (int i = 0; i < nsome; i++)
                addstr(glyph("\u2592", "="));
        unattr(PAIR_SOME, A_NORMAL);
        for (int i = nfull + nsome; i < w; i++)
                addch(' ');
        addch(']');
        return w + 2;
}

static int header_title(int y, int w) {
        const struct top_app *a = V.a;
        const struct top_header *h = &a->frame->h;
        char t[40];
        int x = 0;

        attr(PAIR_LABEL, A_BOLD);
        x += put(y, x, w - x, a->replay ? "diag-top replay " : "diag-top ", false);
        unattr(PAIR_LABEL, A_BOLD);
        fmt_clock(t, sizeof t, h->realtime_ns, a->replay != NULL);
        x += putf(y, x, w - x, "%s", t);
        if (a->paused)
                x += putf(y, x, w - x, " [paused]");
        x += 2;
        if (h->dstate_threads)
                attr(PAIR_DSTATE, A_BOLD);
        x += putf(y, x, w - x, "D %u", h->dstate_threads);
        if (h->dstate_threads)
                unattr(PAIR_DSTATE, A_BOLD);
        x += 2;
        if (a->stuck_chains)
                attr(PAIR_DSTATE, A_BOLD);
        x += putf(y, x, w - x, "stuck %u", a->stuck_chains);
        if (a->stuck_chains)
                unattr(PAIR_DSTATE, A_BOLD);
        /* what matters most first: a narrow screen cuts the rest */
        x += putf(y, x, w - x, "  load %.2f %.2f %.2f", h->load[0], h->load[1], h->load[2]);
        x += putf(y, x, w - x, "  %u procs %u thr %u run", h->nprocs, h->nthreads, h->nrunning);
        return x;
}

static void header_cpu_mem(int y, int w) {
        const struct top_header *h = &V.a->frame->h;
        char us[8], sy[8], io[8], st[8], id[8], av[16], tot[16];
        int x = 0;

        fmt_pct(us, sizeof us, h->cpu_user);
        fmt_pct(sy, sizeof sy, h->cpu_system);
        fmt_pct(io, sizeof io, h->cpu_iowait);
        fmt_pct(st, sizeof st, h->cpu_steal);
        fmt_pct(id, sizeof id, h->cpu_idle);
        x += label(y, x, w - x, "CPU");
        x += putf(y, x, w - x, " %su %ss %sio %sst %sidle", us, sy, io, st, id);
        x += 3;
        x += label(y, x, w - x, "Mem");
        top_fmt_bytes(av, sizeof av, h->mem_avail == DIAG_REC_NA ? -1 : (double) h->mem_avail);
        top_fmt_bytes(tot, sizeof tot, h->mem_total == DIAG_REC_NA ? -1 : (double) h->mem_total);
        x += putf(y, x, w - x, " avail %s of %s", av, tot);
        if (h->mem_total > 0 && h->mem_avail >= 0)
                x += putf(y, x, w - x, " (%.0f%%)", 100.0 * (double) h->mem_avail / (double) h->mem_total);
        if (h->swap_total > 0 && h->swap_free >= 0) {
                top_fmt_bytes(av, sizeof av, (double) (h->swap_total - h->swap_free));
                x += putf(y, x, w - x, "  swap %s used", av);
        }
}

static void header_psi(int y, int w) {
        static const char *const names[] = { "cpu", "mem", "io" };
        const struct top_header *h = &V.a->frame->h;
        int x = 0, group = (w - 4) / 3, bw;

        x += label(y, x, w, "PSI");
        /* each: "cpu [bar] 12/3 " */
        bw = MIN(group - 14, 22);
        for (int i = 0; i < 3 && x < w; i++) {
                char s[8], f[8];

                fmt_pct(s, sizeof s, h->psi[i][0]);
                fmt_pct(f, sizeof f, h->psi[i][1]);
                x += 1 + put(y, x + 1, w - x - 1, names[i], false) + 1;
                if (bw >= 3)
                        x += psi_bar(y, x, MIN(bw, w - x), h->psi[i][0], h->psi[i][1]);
                x += putf(y, x, w - x, " %s/%s ", s, f);
        }
}

static void header_disk_oom(int y, int w) {
        const struct top_header *h = &V.a->frame->h;
        int x = 0;

        x += label(y, x, w, "Disk");
        if (h->disk[0])
                x += putf(y, x, w - x, " %s %.0f%% busy %.0f IOPS", h->disk, h->disk_busy_pct, h->disk_iops);
        else
                x += putf(y, x, w - x, " -");
        x += 3;
        x += label(y, x, w - x, "OOM kills");
        x += putf(y, x, w - x, " %" PRId64, h->oom_kills == DIAG_REC_NA ? (int64_t) 0 : h->oom_kills);
        if (h->oom_kills_seen > 0) {
                attr(PAIR_EVENT, A_BOLD | A_REVERSE);
                x += putf(y, x + 1, w - x - 1, "+%" PRId64 " since %s", h->oom_kills_seen,
                          V.a->replay ? "the recording began" : "start") + 1;
                unattr(PAIR_EVENT, A_BOLD | A_REVERSE);
        }
        if (h->majflt_s >= 0) {
                x += 3;
                x += label(y, x, w - x, "majflt");
                putf(y, x, w - x, " %.0f/s", h->majflt_s);
        }
}

/* Replay: the recording's span as a bar, its events marked (OOM kills 'O', triggers 'T',
 * others by their letter) and the moment shown. */
static void header_timeline(int y, int w) {
        const struct top_app *a = V.a;
        const struct top_event_mark *ev;
        int64_t first = a->span_first_ns, last = a->span_last_ns, now = top_replay_now(a->replay);
        char l[24], r[24], marks[512];
        bool days = last - first > 86400LL * 1000000000;
        int bw, x = 0, pos;
        size_t nev = 0;

        fmt_clock(l, sizeof l, first, days);
        fmt_clock(r, sizeof r, last, days);
        bw = w - (int) strlen(l) - (int) strlen(r) - 4;
        if (bw < 8 || last <= first) {
                putf(y, 0, w, "recording %s .. %s", l, r);
                return;
        }
        bw = MIN(bw, (int) sizeof marks - 1);
        memset(marks, 0, sizeof marks);
        ev = top_replay_events(a->replay, &nev);
        for (size_t i = 0; i < nev; i++) {
                int c = (int) ((double) (ev[i].realtime_ns - first) / (double) (last - first) * (bw - 1) + 0.5);
                char k = ev[i].kind;

                if (c < 0 || c >= bw)
                        continue;
                /* an OOM kill outranks a trigger, which outranks the rest */
                if (marks[c] == 'O' || (marks[c] == 'T' && k != 'O'))
                        continue;
                marks[c] = k;
        }
        pos = (int) ((double) (now - first) / (double) (last - first) * (bw - 1) + 0.5);
        pos = MAX(0, MIN(pos, bw - 1));
        x += put(y, x, w, l, false);
        x += put(y, x, w - x, " [", false);
        for (int i = 0; i < bw; i++) {
                char m[2] = { marks[i], 0 };

                if (i == pos)
                        attron(A_REVERSE | A_BOLD);
                if (marks[i]) {
                        if (i != pos)
                                attr(PAIR_EVENT, A_BOLD);
                        addstr(m);
                        if (i != pos)
                                unattr(PAIR_EVENT, A_BOLD);
                } else if (i == pos)
                        addstr(glyph("\u2502", "|"));
                else
                        addstr(glyph("\u2500", "-"));
                if (i == pos)
                        attroff(A_REVERSE | A_BOLD);
        }
        x += bw;
        x += put(y, x, w - x, "] ", false);
        put(y, x, w - x, r, false);
}

/* The lines of the header at this size: the full one from 60x16, else two lines. */
static int header(int w, int h) {
        int y = 0;

        if (!V.a->frame) {
                put(0, 0, w, "diag-top: reading...", false);
                return 1;
        }
        header_title(y++, w);
        if (w >= 60 && h >= 16) {
                header_cpu_mem(y++, w);
                header_psi(y++, w);
                header_disk_oom(y++, w);
        } else {
                /* the reduced layout: what says most in one line */
                const struct top_header *hd = &V.a->frame->h;
                char c[8], io[8], av[16];
                int x = 0;

                fmt_pct(c, sizeof c, hd->cpu_idle < 0 ? -1 : 100 - hd->cpu_idle);
                fmt_pct(io, sizeof io, hd->psi[2][0]);
                top_fmt_bytes(av, sizeof av, hd->mem_avail == DIAG_REC_NA ? -1 : (double) hd->mem_avail);
                x += label(y, x, w, "CPU");
                x += putf(y, x, w - x, " %s%%  ", c);
                x += label(y, x, w - x, "avail");
                x += putf(y, x, w - x, " %s  ", av);
                x += label(y, x, w - x, "io");
                x += putf(y, x, w - x, " %s%%", io);
                if (hd->oom_kills_seen > 0)
                        putf(y, x, w - x, "  OOM +%" PRId64, hd->oom_kills_seen);
                y++;
        }
        if (V.a->replay)
                header_timeline(y++, w);
        return y;
}

/* ---- the list ---- */

static void fmt_rate(char *buf, size_t size, double v) {
        if (v < 0)
                snprintf(buf, size, "-");
        else if (v < 10 && v != 0)
                snprintf(buf, size, "%.1f", v);
        else
                snprintf(buf, size, "%.0f", v);
}

static void cell(const struct top_row *r, enum top_col c, char *buf, size_t size) {
        const struct top_proc *p = r->p;
        char b[24];

        buf[0] = 0;
        switch (c) {
        case TOP_COL_PID:
                if (r->count > 1)
                        snprintf(buf, size, "x%u", r->count);
                else
                        snprintf(buf, size, "%d", p->pid);
                break;
        case TOP_COL_USER:
                snprintf(buf, size, "%s", top_user_name(p->uid));
                break;
        case TOP_COL_STATE:
                snprintf(buf, size, "%c", p->state ? p->state : '?');
                break;
        case TOP_COL_CPU:
                fmt_pct(buf, size, r->cpu_pct);
                break;
        case TOP_COL_RSS:
                /* a group: the total PSS when known (RSS counts shared pages once per member) */
                if (r->count > 1 && r->pss != DIAG_REC_NA && r->pss >= 0)
                        top_fmt_bytes(buf, size, (double) r->pss);
                else
                        top_fmt_bytes(buf, size, r->rss == DIAG_REC_NA ? -1 : (double) r->rss);
                break;
        case TOP_COL_GROWTH:
                if (r->rss_growth == 0) {
                        snprintf(buf, size, "0");
                        break;
                }
                top_fmt_bytes(b, sizeof b, r->rss_growth < 0 ? -r->rss_growth : r->rss_growth);
                snprintf(buf, size, "%c%s", r->rss_growth < 0 ? '-' : '+', b);
                break;
        case TOP_COL_MAJFLT:
                fmt_rate(buf, size, r->majflt_s);
                break;
        case TOP_COL_READ:
                top_fmt_bytes(buf, size, r->read_s);
                break;
        case TOP_COL_WRITE:
                top_fmt_bytes(buf, size, r->write_s);
                break;
        case TOP_COL_THREADS:
                snprintf(buf, size, "%" PRId64, r->threads);
                break;
        case TOP_COL_BLOCKED:
                top_fmt_ms(buf, size, r->blocked_ms);
                break;
        case TOP_COL_WAIT:
                snprintf(buf, size, "%s", r->wait ? r->wait : "");
                break;
        case TOP_COL_CMD: {
                size_t o = 0;

                if (V.a->ro.tree && !V.a->ro.group && r->depth > 0) {
                        for (unsigned d = 1; d < r->depth && o + 2 < size && d < 32; d++)
                                o += (size_t) snprintf(buf + o, size - o, "  ");
                        o += (size_t) snprintf(buf + o, size - o, "%s", glyph("\u2514\u2500", "`-"));
                }
                if (o < size) {
                        const char *cmd = p->cmd && p->cmd[0] ? p->cmd : NULL;
                        /* a command line cut by its column loses the program's directory
                         * first: "/srv/app/releases/42/bin/worker -c x" is "worker -c x" */
                        if (cmd && cmd[0] == '/' && strlen(cmd) + o > (size_t) V.width[NCOLS - 1]) {
                                const char *sp = strchr(cmd, ' '), *sl = cmd;
                                for (const char *q = cmd; *q && (!sp || q < sp); q++)
                                        if (*q == '/')
                                                sl = q + 1;
                                if (*sl && sl != sp)
                                        cmd = sl;
                        }
                        snprintf(buf + o, size - o, cmd ? "%s" : "[%s]", cmd ? cmd : p->comm);
                }
                break;
        }
        default:
                break;
        }
}

static void column_header(int y, int w) {
        int x = 0;

        attr(PAIR_COLHEAD, A_REVERSE);
        mvhline(y, 0, ' ', w);
        for (size_t i = 0; i < NCOLS && x < w; i++) {
                const char *name = top_col_name(colspecs[i].col);
                int cw = V.width[i];
                bool sorted = colspecs[i].col == V.a->ro.sort;
                char buf[96];

                if (!cw)
                        continue;
                cw = MIN(cw, w - x);
                if (sorted) {
                        unattr(PAIR_COLHEAD, A_REVERSE);
                        attr(PAIR_SORTED, A_BOLD | A_UNDERLINE | A_REVERSE);
                }
                if (colspecs[i].left || (int) strlen(name) >= cw)
                        snprintf(buf, sizeof buf, "%-*s", cw, name);
                else
                        snprintf(buf, sizeof buf, "%*s", cw, name);
                put(y, x, cw, buf, true);
                if (sorted) {
                        unattr(PAIR_SORTED, A_BOLD | A_UNDERLINE | A_REVERSE);
                        attr(PAIR_COLHEAD, A_REVERSE);
                }
                x += cw + 1;
        }
        unattr(PAIR_COLHEAD, A_REVERSE);
}

static void list_row(int y, int w, const struct top_row *r, bool selected) {
        int x = 0;

        if (selected) {
                attr(PAIR_SELECTED, A_REVERSE);
                mvhline(y, 0, ' ', w);
        }
        for (size_t i = 0; i < NCOLS && x < w; i++) {
                enum top_col c = colspecs[i].col;
                int cw = MIN(V.width[i], w - x), pair = 0;
                attr_t mono = A_NORMAL;
                char buf[1024], al[1100];

                if (!V.width[i])
                        continue;
                cell(r, c, buf, sizeof buf);
                if (!selected) {
                        if (c == TOP_COL_STATE && r->p->state == 'D')
                                pair = PAIR_DSTATE, mono = A_BOLD;
                        else if (c == TOP_COL_STATE && r->p->state == 'R')
                                pair = PAIR_RUNNING;
                        else if (c == TOP_COL_BLOCKED && r->blocked_state == 'D')
                                pair = PAIR_DSTATE, mono = A_BOLD;
                        else if (c == TOP_COL_WAIT && r->wait)
                                pair = PAIR_WAIT;
                        else if (c == TOP_COL_PID && r->count > 1)
                                pair = PAIR_GROUP, mono = A_BOLD;
                        else if (c == TOP_COL_PID && r->p->is_new)
                                pair = PAIR_NEW, mono = A_BOLD;
                        if (pair)
                                attr(pair, mono);
                }
                if (colspecs[i].left)
                        put(y, x, cw, buf, true);
                else {
                        snprintf(al, sizeof al, "%*s", cw, buf);
                        put(y, x, cw, al, true);
                }
                if (pair)
                        unattr(pair, mono);
                x += cw + 1;
        }
        if (selected)
                unattr(PAIR_SELECTED, A_REVERSE);
}

/* WAIT and BLOCKED of the rows on screen, once per rows built or scroll. */
static void fill_wait(size_t first, size_t n) {
        struct top_app *a = V.a;

        if (a->generation == V.waited_gen && first == V.waited_first && n == V.waited_n)
                return;
        top_app_fill_wait(a, first, n);
        V.filled_now = true;
        V.waited_gen = a->generation;
        V.waited_first = first;
        V.waited_n = n;
}

/* The column header at y, then h rows. */
static void list(int y, int h, int w) {
        struct top_app *a = V.a;
        size_t n = a->rows.n, shown;
        bool any_wait = false;

        V.list_y = y + 1;
        V.list_h = h;
        if (h < 0)
                return;
        if (V.sel >= n)
                V.sel = n ? n - 1 : 0;
        if (V.sel < V.top)
                V.top = V.sel;
        if (h > 0 && V.sel >= V.top + (size_t) h)
                V.top = V.sel - (size_t) h + 1;
        if (V.top + (size_t) h > n)
                V.top = n > (size_t) h ? n - (size_t) h : 0;
        shown = MIN((size_t) h, n - V.top);
        fill_wait(V.top, shown);
        a->rows_on_screen = (unsigned) shown;
        for (size_t i = 0; i < shown; i++)
                any_wait |= a->rows.rows[V.top + i].wait != NULL;
        layout(w, any_wait);
        column_header(y, w);
        for (size_t i = 0; i < shown; i++)
                list_row(y + 1 + (int) i, w, &a->rows.rows[V.top + i], V.top + i == V.sel);
        if (!n && h > 0)
                put(y + 1, 0, w, a->filter[0] ? "  (no process matches the filter)" : "  (no process)", false);
}

/* ---- the drill-down pane ---- */

static void pane(int y, int h, int w) {
        struct drill *d = &V.d;
        int x = 0, body = h - 1;
        char t[64] = "";

        if (body < 1)
                return;
        if (V.pane_top + (size_t) body > d->n)
                V.pane_top = d->n > (size_t) body ? d->n - (size_t) body : 0;
        attr(PAIR_PANE, A_REVERSE);
        mvhline(y, 0, ' ', w);
        x += put(y, x, w, d->title, false);
        if (d->child > 0 || d->status[0]) {
                if (d->child > 0)
                        snprintf(t, sizeof t, " %.0fs",
                                 (double) (diag_now_ns(CLOCK_MONOTONIC) - d->started_ns) / 1e9);
                x += putf(y, x, w - x, "  %s%s", d->status, t);
        }
        if (d->n > (size_t) body)
                snprintf(t, sizeof t, "%zu-%zu of %zu  ", V.pane_top + 1,
                         MIN(V.pane_top + (size_t) body, d->n), d->n);
        else
                t[0] = 0;
        {
                char right[96];
                int rl;

                snprintf(right, sizeof right, "  %sEsc close, z %s", t, V.pane_full ? "half" : "full");
                rl = (int) strlen(right);
                if (w - x > rl)
                        put(y, w - rl, rl, right, false);
        }
        unattr(PAIR_PANE, A_REVERSE);
        for (int i = 0; i < body && V.pane_top + (size_t) i < d->n; i++) {
                const char *l = d->text[V.pane_top + (size_t) i];
                size_t len = strlen(l), skip = MIN(V.pane_left, len);

                /* scrolled right: never start inside a UTF-8 sequence */
                while (skip < len && ((unsigned char) l[skip] & 0xc0) == 0x80)
                        skip++;
                put(y + 1 + i, 0, w, l + skip, false);
        }
        if (!d->n && d->child > 0)
                put(y + 1, 0, w, "  ...", false);
}

/* ---- the key line ---- */

static void key_line(int y, int w) {
        static const char *const live_keys[][2] = {
                { "h", "Help" }, { "/", "Filter" }, { "<>", "Sort" }, { "t", "Tree" }, { "g", "Group" },
                { "Enter", "Threads" }, { "c", "Chain" }, { "s", "Stack" }, { "f", "Fds" }, { "l", "Locks" },
                { "p", "Sample" }, { "m", "Map" }, { "space", "Pause" }, { "q", "Quit" },
        };
        static const char *const replay_keys[][2] = {
                { "h", "Help" }, { "[]", "Step" }, { "{}", "Minute" }, { "T", "Time" }, { "oO", "Event" },
                { "/", "Filter" }, { "<>", "Sort" }, { "g", "Group" }, { "Enter", "Threads" },
                { "c", "Snapshot" }, { "q", "Quit" },
        };
        const char *const (*keys)[2] = V.a->replay ? replay_keys : live_keys;
        size_t nkeys = V.a->replay ? ELEMENTSOF(replay_keys) : ELEMENTSOF(live_keys);
        int x = 0;

        move(y, 0);
        clrtoeol();
        switch (V.mode) {
        case MODE_FILTER:
                x += label(y, 0, w, "Filter: ");
                x += put(y, x, w - x, V.input, false);
                put(y, x + 1, w - x - 1, "(Enter keeps it, Esc clears it)", false);
                move(y, x);
                return;
        case MODE_TIME:
                x += label(y, 0, w, "Go to time: ");
                x += put(y, x, w - x, V.input, false);
                put(y, x + 1, w - x - 1, "(17:15:50, 2026-12-04 17:15:50, -10m, +5m, @EPOCH; Esc)", false);
                move(y, x);
                return;
        case MODE_ASK_STACK:
        {
                static const char q1[] = "diag-stack stops the process for a few milliseconds to read its stacks.";
                static const char q2[] = "Continue? [y/N] ";

                attr(PAIR_EVENT, A_BOLD);
                if (w >= (int) (sizeof q1 + sizeof q2 - 1))
                        x = putf(y, 0, w, "%s %s", q1, q2);
                else {
                        /* two lines rather than a question cut short */
                        move(y - 1, 0);
                        clrtoeol();
                        put(y - 1, 0, w, q1, false);
                        x = put(y, 0, w, q2, false);
                }
                unattr(PAIR_EVENT, A_BOLD);
                move(y, x);
                return;
        }
        default:
                break;
        }
        if (V.msg[0]) {
                put(y, 0, w, V.msg, false);
                return;
        }
        /* the selected row's WAIT in full when its column cut it */
        {
                const struct top_row *r = V.sel < V.a->rows.n ? &V.a->rows.rows[V.sel] : NULL;
                int ww = V.width[NCOLS - 2];

                if (r && r->wait && V.d.kind == DRILL_NONE && (int) strlen(r->wait) > ww) {
                        attr(PAIR_WAIT, A_BOLD);
                        x += putf(y, 0, w, "%d waits: ", r->p->pid);
                        unattr(PAIR_WAIT, A_BOLD);
                        put(y, x, w - x, r->wait, false);
                        return;
                }
        }
        for (size_t i = 0; i < nkeys && x < w; i++) {
                attr(PAIR_KEY, A_REVERSE);
                x += put(y, x, w - x, keys[i][0], false);
                unattr(PAIR_KEY, A_REVERSE);
                x += put(y, x, w - x, keys[i][1], false);
                x += put(y, x, w - x, " ", false);
        }
}

/* ---- help ---- */

static const char *const help_text[] = {
        "diag-top keys",
        "",
        "  q F10 ^C     quit                        h ? F1   this help",
        "  Up Down PgUp PgDn Home End   select a row (in a pane: scroll, Left Right too)",
        "  < >          sort by the column left/right     I   invert the order",
        "  P CPU%  M RSS  G GROW/m  F MAJFLT/s  B BLOCKED  W WAIT  N PID",
        "  /            filter by command line or name (Enter keeps, Esc clears)",
        "  t            tree (parents before children)    g   fold by command line",
        "  space        pause the refresh                 ^L  redraw the screen",
        "  K            show or hide kernel threads (hidden at the start)",
        "",
        "Drill-down on the selected process, in a pane (z: full screen, Esc: close):",
        "  Enter        threads: state, system call, wait channel, blocked for",
        "  c  chain     what it waits for, behind whom (diag-chain)",
        "  s  stacks    (diag-stack; stops the process for milliseconds: asks first)",
        "  f  fds       open files and sockets (diag-fds)",
        "  l  locks     futex and file locks (diag-locks)",
        "  p  sample    2 seconds of what it does (diag-sample)",
        "  m  map       memory map summary: totals, heap, stacks, files by RSS",
        "",
        "Replay (-r DIR):  [ ] step   { } a minute   T go to a time   o O next/previous",
        "  event (OOM kill, trigger); Enter shows the threads recorded in D state and",
        "  c the snapshot a trigger took near that moment.",
        "",
        "diag-top never signals, kills or renices anything: there is no such key. A tool",
        "you reach for in an incident must not be able to make it worse by a stray key.",
        "Everything it shows is read from /proc (or the recording); only `s` stops a",
        "process, for milliseconds, and only after asking.",
        "",
        "Columns: GROW/m RSS growth per minute; MAJFLT/s major faults; BLOCKED the",
        "longest time one of its threads has been blocked; WAIT what it waits for.",
        "A folded row shows its member count (x65) in PID and its total PSS in RSS.",
        "",
        "Press any key to return.",
};

static void help(int w, int h) {
        size_t n = ELEMENTSOF(help_text);

        if (n > (size_t) h && h > 2) {
                /* the last line says there is more */
                h--;
                attron(A_REVERSE);
                put(h, 0, w, V.help_top + (size_t) h < n ? " more: Down, PgDn; any other key returns "
                                                         : " Up, PgUp: back; any other key returns ", false);
                attroff(A_REVERSE);
        }

        if (V.help_top + (size_t) h > n)
                V.help_top = n > (size_t) h ? n - (size_t) h : 0;
        for (int i = 0; i < h && V.help_top + (size_t) i < n; i++) {
                if (V.help_top + (size_t) i == 0)
                        attr(PAIR_LABEL, A_BOLD);
                put(i, 0, w, help_text[V.help_top + (size_t) i], false);
                if (V.help_top + (size_t) i == 0)
                        unattr(PAIR_LABEL, A_BOLD);
        }
}

/* ---- one draw ---- */

static void draw(void) {
        struct top_app *a = V.a;
        uint64_t t0 = top_now_us();
        int w = COLS, h = LINES, y, body, pane_h = 0;

        V.filled_now = false;
        V.list_h = 0;
        erase();
        if (w < MIN_W || h < MIN_H) {
                char m[80];

                int l = 0;

                snprintf(m, sizeof m, "terminal too small (%dx%d, need %dx%d)", w, h, MIN_W, MIN_H);
                if ((int) strlen(m) <= w)
                        put(l++, 0, w, m, false);
                else {
                        /* in two lines rather than cut */
                        put(l++, 0, w, "terminal too small", false);
                        if (h > l)
                                putf(l++, 0, w, "(%dx%d, need %dx%d)", w, h, MIN_W, MIN_H);
                }
                if (h > l)
                        put(l, 0, w, "q quits", false);
                a->rows_on_screen = 0;
                goto out;
        }
        if (V.mode == MODE_HELP) {
                help(w, h);
                goto out;
        }
        y = header(w, h);
        body = h - y - 2;       /* the column header and the key line */
        if (V.d.kind != DRILL_NONE) {
                pane_h = V.pane_full ? body + 1 : MAX((body + 1) / 2, 3);
                body -= pane_h;
        }
        if (body >= 0 && !(V.pane_full && V.d.kind != DRILL_NONE)) {
                list(y, body, w);
                y += 1 + body;
        } else {
                a->rows_on_screen = 0;
                y = h - 1 - pane_h;
        }
        V.pane_y = y;
        V.pane_h = pane_h;
        if (pane_h)
                pane(y, pane_h, w);
        key_line(h - 1, w);
out:
        if (V.mode == MODE_FILTER || V.mode == MODE_TIME || V.mode == MODE_ASK_STACK)
                curs_set(1);
        else
                curs_set(0);
        wnoutrefresh(stdscr);
        doupdate();
        a->draw_us = top_now_us() - t0;
        if (V.filled_now && a->draw_us >= a->wait_us)
                a->draw_us -= a->wait_us;
}

/* ---- keys ---- */

static const struct top_row *selected(void) {
        const struct top_app *a = V.a;

        return V.sel < a->rows.n ? &a->rows.rows[V.sel] : NULL;
}

static void remember_selection(void) {
        const struct top_row *r = selected();

        if (r) {
                V.sel_pid = r->p->pid;
                V.sel_start = r->p->start;
        }
}

/* After the rows were built again: the same process stays selected where it is listed. */
static void restore_selection(void) {
        const struct top_app *a = V.a;

        for (size_t i = 0; i < a->rows.n; i++)
                if (a->rows.rows[i].p->pid == V.sel_pid && a->rows.rows[i].p->start == V.sel_start) {
                        V.sel = i;
                        return;
                }
        if (V.sel >= a->rows.n)
                V.sel = a->rows.n ? a->rows.n - 1 : 0;
        remember_selection();
}

static void rebuild(void) {
        int r = top_app_rows(V.a);

        if (r < 0)
                snprintf(V.msg, sizeof V.msg, "cannot list the processes: %s", strerror(-r));
        restore_selection();
}

/* The order or the set changed by a key: the list is shown from its top again (a
 * refresh keeps the selected process instead). */
static void rebuild_top(void) {
        top_app_rows(V.a);
        V.sel = V.top = 0;
        remember_selection();
}

static void move_selection(long delta) {
        size_t n = V.a->rows.n;
        long s = (long) V.sel + delta;

        if (!n)
                return;
        if (s < 0)
                s = 0;
        if ((size_t) s >= n)
                s = (long) n - 1;
        V.sel = (size_t) s;
        remember_selection();
}

static void scroll_pane(long delta) {
        long t = (long) V.pane_top + delta;

        V.pane_top = t < 0 ? 0 : (size_t) t;   /* the end is clamped when drawn */
}

static void set_sort(enum top_col c) {
        struct top_rows_opts *ro = &V.a->ro;

        ro->sort = c;
        ro->ascending = c == TOP_COL_PID || c == TOP_COL_USER || c == TOP_COL_CMD;
        snprintf(V.msg, sizeof V.msg, "sorted by %s%s", top_col_name(c), ro->ascending ? ", ascending" : "");
        rebuild_top();
}

/* The replay moved: the frame, the rows and a pane of recorded threads follow. */
static void replay_moved(int moved, const char *at_end) {
        struct top_app *a = V.a;
        int r;

        if (moved <= 0) {
                snprintf(V.msg, sizeof V.msg, "%s", moved < 0 ? "cannot read the recording there" : at_end);
                return;
        }
        r = top_app_refresh(a);
        if (r < 0)
                snprintf(V.msg, sizeof V.msg, "cannot read the recording: %s", strerror(-r));
        restore_selection();
        if (V.d.kind == DRILL_THREADS)
                drill_recorded_threads(&V.d, a->frame, V.d.pid);
}

static void replay_seek_rel(int64_t delta_ns) {
        struct top_replay *rp = V.a->replay;
        int64_t before = top_replay_now(rp);
        int r = top_replay_seek(rp, before + delta_ns);

        replay_moved(r < 0 ? r : top_replay_now(rp) != before, delta_ns > 0 ? "at the end of the recording"
                                                                             : "at the start of the recording");
}

static void open_drill(int key) {
        struct top_app *a = V.a;
        const struct top_row *r = selected();
        enum drill_kind k;
        pid_t pid;

        if (!r) {
                snprintf(V.msg, sizeof V.msg, "no process selected");
                return;
        }
        pid = r->p->pid;
        switch (key) {
        case 'c': k = DRILL_CHAIN; break;
        case 'f': k = DRILL_FDS; break;
        case 'l': k = DRILL_LOCKS; break;
        case 'p': k = DRILL_SAMPLE; break;
        case 's': k = DRILL_STACK; break;
        case 'm': k = DRILL_MAPS; break;
        default:  k = DRILL_THREADS; break;
        }
        V.pane_top = V.pane_left = 0;
        if (a->replay) {
                if (k == DRILL_THREADS)
                        drill_recorded_threads(&V.d, a->frame, pid);
                else if (k == DRILL_CHAIN)
                        drill_recorded_snapshot(&V.d, top_replay_snapshot_near(a->replay), pid);
                else
                        drill_message(&V.d, pid, "not in a replay",
                                      "This drill-down reads the running process: it is not available in a replay.\n"
                                      "A recording keeps per process its figures and its threads in D state (Enter);\n"
                                      "`c` shows the snapshot a trigger took near this moment.");
                return;
        }
        if (k == DRILL_THREADS) {
                drill_threads(&V.d, pid);
                return;
        }
        if (k == DRILL_MAPS) {
                drill_maps(&V.d, pid);
                return;
        }
        if (k == DRILL_STACK && !V.stack_asked) {
                V.mode = MODE_ASK_STACK;
                V.ask_pid = pid;
                return;
        }
        drill_tool(&V.d, k, pid, (unsigned) COLS);
}

static void mouse(void) {
        MEVENT ev;

        if (getmouse(&ev) != OK)
                return;
        if (V.pane_h && ev.y >= V.pane_y) {
                if (ev.bstate & BUTTON4_PRESSED)
                        scroll_pane(-3);
                else if (ev.bstate & BUTTON5_PRESSED)
                        scroll_pane(3);
                return;
        }
        if (ev.bstate & BUTTON4_PRESSED)
                move_selection(-3);
        else if (ev.bstate & BUTTON5_PRESSED)
                move_selection(3);
        else if ((ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_RELEASED)) &&
                 ev.y >= V.list_y && ev.y < V.list_y + V.list_h && V.top + (size_t) (ev.y - V.list_y) < V.a->rows.n) {
                V.sel = V.top + (size_t) (ev.y - V.list_y);
                remember_selection();
        }
}

/* A line being typed (filter, time): false when the key ended it. */
static bool edit_input(int ch) {
        if (ch == KEY_BACKSPACE || ch == 127 || ch == CTRL_KEY('h')) {
                if (V.ninput)
                        V.input[--V.ninput] = 0;
        } else if (ch == CTRL_KEY('u')) {
                V.ninput = 0;
                V.input[0] = 0;
        } else if (ch >= 0x20 && ch < 0x100 && ch != 0x7f && V.ninput + 1 < sizeof V.input) {
                V.input[V.ninput++] = (char) ch;
                V.input[V.ninput] = 0;
        } else
                return false;
        return true;
}

static void key_filter(int ch) {
        struct top_app *a = V.a;

        if (ch == ESC_KEY) {
                V.ninput = 0;
                V.input[0] = 0;
                V.mode = MODE_LIST;
        } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
                V.mode = MODE_LIST;
                return;
        } else if (!edit_input(ch))
                return;
        snprintf(a->filter, sizeof a->filter, "%s", V.input);
        rebuild_top();
}

static void key_time(int ch) {
        struct top_app *a = V.a;
        int64_t t;

        if (ch == ESC_KEY) {
                V.mode = MODE_LIST;
        } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
                V.mode = MODE_LIST;
                if (top_parse_time(V.input, a->span_first_ns, a->span_last_ns, &t) < 0) {
                        snprintf(V.msg, sizeof V.msg, "not a time: '%s'", V.input);
                        return;
                }
                {
                        int r = top_replay_seek(a->replay, t);
                        replay_moved(r < 0 ? r : 1, "");
                }
        } else
                edit_input(ch);
}

/* One key in the list (or with the pane open). False: quit. */
static bool key_list(int ch) {
        struct top_app *a = V.a;
        bool pane = V.d.kind != DRILL_NONE;
        long page = MAX(pane ? V.pane_h - 2 : V.list_h - 1, 1);

        switch (ch) {
        case 'q':
        case KEY_F(10):
                return false;
        case KEY_UP:
                pane ? scroll_pane(-1) : move_selection(-1);
                break;
        case KEY_DOWN:
                pane ? scroll_pane(1) : move_selection(1);
                break;
        case KEY_PPAGE:
                pane ? scroll_pane(-page) : move_selection(-page);
                break;
        case KEY_NPAGE:
                pane ? scroll_pane(page) : move_selection(page);
                break;
        case KEY_LEFT:
        case KEY_RIGHT:
                if (pane)
                        V.pane_left = ch == KEY_LEFT ? V.pane_left - MIN(V.pane_left, 20u) : MIN(V.pane_left + 20, 4000u);
                break;
        case KEY_HOME:
                pane ? (void) (V.pane_top = 0) : move_selection(-(long) a->rows.n);
                break;
        case KEY_END:
                pane ? scroll_pane(1000000) : move_selection((long) a->rows.n);
                break;
        case '<':
                set_sort(a->ro.sort == 0 ? TOP_COL__N - 1 : a->ro.sort - 1);
                break;
        case '>':
                set_sort(a->ro.sort + 1 >= TOP_COL__N ? 0 : a->ro.sort + 1);
                break;
        case 'P': set_sort(TOP_COL_CPU); break;
        case 'M': set_sort(TOP_COL_RSS); break;
        case 'G': set_sort(TOP_COL_GROWTH); break;
        case 'F': set_sort(TOP_COL_MAJFLT); break;
        case 'B': set_sort(TOP_COL_BLOCKED); break;
        case 'W': set_sort(TOP_COL_WAIT); break;
        case 'N': set_sort(TOP_COL_PID); break;
        case 'I':
                a->ro.ascending = !a->ro.ascending;
                snprintf(V.msg, sizeof V.msg, "sorted by %s, %s", top_col_name(a->ro.sort),
                         a->ro.ascending ? "ascending" : "descending");
                rebuild_top();
                break;
        case '/':
                V.mode = MODE_FILTER;
                snprintf(V.input, sizeof V.input, "%s", a->filter);
                V.ninput = strlen(V.input);
                break;
        case 't':
                a->ro.tree = !a->ro.tree;
                snprintf(V.msg, sizeof V.msg, "tree %s%s", a->ro.tree ? "on" : "off",
                         a->ro.tree && a->ro.group ? " (after g: folded rows have no tree)" : "");
                rebuild_top();
                break;
        case 'K':
                a->ro.filter.hide_kernel = !a->ro.filter.hide_kernel;
                snprintf(V.msg, sizeof V.msg, "%s", a->ro.filter.hide_kernel ? "kernel threads hidden" : "kernel threads shown");
                rebuild_top();
                break;
        case 'g':
                a->ro.group = !a->ro.group;
                snprintf(V.msg, sizeof V.msg, "%s", a->ro.group ? "folded by command line: xN is the count, RSS the total PSS"
                                                                : "one row per process");
                rebuild_top();
                break;
        case ' ':
                if (a->replay) {
                        snprintf(V.msg, sizeof V.msg, "a replay moves only with [ ] { } T o O");
                        break;
                }
                a->paused = !a->paused;
                if (!a->paused)
                        a->next_refresh_ns = diag_now_ns(CLOCK_MONOTONIC);
                snprintf(V.msg, sizeof V.msg, "%s", a->paused ? "paused (space resumes)" : "resumed");
                break;
        case 'h':
        case '?':
        case KEY_F(1):
                V.mode = MODE_HELP;
                V.help_top = 0;
                break;
        case '\n':
        case '\r':
        case KEY_ENTER:
        case 'c': case 's': case 'f': case 'l': case 'p': case 'm':
                open_drill(ch);
                break;
        case 'z':
                if (pane)
                        V.pane_full = !V.pane_full;
                break;
        case ESC_KEY:
                if (pane)
                        drill_close(&V.d);
                else if (a->filter[0]) {
                        a->filter[0] = 0;
                        rebuild();
                }
                break;
        case CTRL_KEY('l'):
                clear();
                break;
        case KEY_RESIZE:
                clear();
                break;
        case KEY_MOUSE:
                mouse();
                break;
        case '[': case ']': case '{': case '}': case 'T': case 'o': case 'O':
                if (!a->replay) {
                        snprintf(V.msg, sizeof V.msg, "'%c' moves in a replay (diag-top -r DIR)", ch);
                        break;
                }
                if (ch == '[' || ch == ']')
                        replay_moved(top_replay_step(a->replay, ch == ']' ? 1 : -1),
                                     ch == ']' ? "at the end of the recording" : "at the start of the recording");
                else if (ch == '{' || ch == '}')
                        replay_seek_rel((ch == '}' ? 60 : -60) * 1000000000LL);
                else if (ch == 'T') {
                        V.mode = MODE_TIME;
                        V.input[0] = 0;
                        V.ninput = 0;
                } else
                        replay_moved(top_replay_jump_event(a->replay, ch == 'o' ? 1 : -1),
                                     ch == 'o' ? "no event after this moment" : "no event before this moment");
                break;
        default:
                break;
        }
        return true;
}

static bool key(int ch) {
        struct top_app *a = V.a;

        if (ch != KEY_RESIZE && ch != KEY_MOUSE)
                V.msg[0] = 0;
        switch (V.mode) {
        case MODE_HELP:
                if (ch == KEY_DOWN || ch == KEY_NPAGE)
                        V.help_top += ch == KEY_DOWN ? 1 : 10;
                else if (ch == KEY_UP || ch == KEY_PPAGE)
                        V.help_top -= MIN(V.help_top, ch == KEY_UP ? 1u : 10u);
                else if (ch == KEY_RESIZE)
                        clear();
                else if (ch != KEY_MOUSE)
                        V.mode = MODE_LIST;
                return true;
        case MODE_FILTER:
                if (ch == KEY_RESIZE)
                        clear();
                else
                        key_filter(ch);
                return true;
        case MODE_TIME:
                if (ch == KEY_RESIZE)
                        clear();
                else
                        key_time(ch);
                return true;
        case MODE_ASK_STACK:
                if (ch == KEY_RESIZE) {
                        clear();
                        return true;
                }
                V.mode = MODE_LIST;
                if (ch == 'y' || ch == 'Y') {
                        V.stack_asked = true;
                        V.pane_top = V.pane_left = 0;
                        drill_tool(&V.d, DRILL_STACK, V.ask_pid, (unsigned) COLS);
                } else
                        snprintf(V.msg, sizeof V.msg, "diag-stack not run");
                return true;
        default:
                break;
        }
        (void) a;
        return key_list(ch);
}

/* ---- the terminal ---- */

/* Last: its capability macros (lines, columns...) would rename fields above. */
#include <term.h>

static SCREEN *screen;

/* Home and End as terminals send them whatever their TERM says: PuTTY, rxvt, screen
 * and tmux send ESC [ 1 ~ and ESC [ 4 ~ under TERM=xterm, whose terminfo has ESC O H
 * and ESC O F; unmatched, the ESC would close the pane and the rest be keys of their
 * own. Each is defined only where terminfo left it free. */
static void keys_extra(void) {
        static const struct { const char *seq; int key; } extra[] = {
                { "\033[1~", KEY_HOME }, { "\033[7~", KEY_HOME }, { "\033[H", KEY_HOME }, { "\033OH", KEY_HOME },
                { "\033[4~", KEY_END }, { "\033[8~", KEY_END }, { "\033[F", KEY_END }, { "\033OF", KEY_END },
        };

        for (size_t i = 0; i < ELEMENTSOF(extra); i++)
                if (key_defined(extra[i].seq) == 0)
                        define_key(extra[i].seq, extra[i].key);
}

static void screen_end(void) {
        drill_kill_all();
        if (screen && !isendwin())
                endwin();
}

/* A terminal unknown to terminfo gets one line saying so, before anything is drawn on
 * it; one that cannot address the cursor (dumb) -EOPNOTSUPP, said by the caller. */
int top_view_terminal(void) {
        const char *term = getenv("TERM");
        char *cup;
        int err = 0;

        if (!term || !term[0]) {
                log_error("TERM is not set: set it (TERM=xterm, TERM=vt100) or use -b for text frames");
                return -EINVAL;
        }
        if (setupterm(NULL, STDOUT_FILENO, &err) != OK) {
                log_error("terminal type '%s' is unknown here: set TERM (TERM=xterm, TERM=vt100) or use -b", term);
                return -EINVAL;
        }
        cup = tigetstr("cup");
        del_curterm(cur_term);
        if (!cup || cup == (char *) -1)
                return -EOPNOTSUPP;
        return 0;
}

static int screen_begin(struct top_app *a) {
        const char *cs = nl_langinfo(CODESET);

        if (top_view_terminal() < 0)
                return -EINVAL;
        screen = newterm(NULL, stdout, stdin);
        if (!screen) {
                log_error("cannot set up the terminal (TERM=%s)", getenv("TERM"));
                return -EINVAL;
        }
        set_term(screen);
        atexit(screen_end);
        V.utf8 = cs && (!strcasecmp(cs, "UTF-8") || !strcasecmp(cs, "utf8"));
        V.color = a->color && has_colors() && !getenv("NO_COLOR") && strcmp(getenv("TERM") ?: "dumb", "dumb") != 0;
        cbreak();
        noecho();
        nonl();
        intrflush(stdscr, FALSE);
        keypad(stdscr, TRUE);
        keys_extra();
        nodelay(stdscr, TRUE);
        set_escdelay(25);
        if (V.color)
                colors_init();
        if (a->mouse && mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL))
                mouseinterval(0);
        curs_set(0);
        return 0;
}

/* How long poll() may wait: until the next refresh (live, not paused), or a little
 * while a child runs (its pane shows the seconds), else for a key. */
static int poll_timeout(const struct top_app *a) {
        uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
        int64_t t = -1;

        if (!a->replay && !a->paused)
                t = a->next_refresh_ns > now ? (int64_t) ((a->next_refresh_ns - now) / 1000000) + 1 : 0;
        if (V.d.child > 0 || V.d.fd >= 0)
                t = t < 0 ? 500 : MIN(t, 500);
        return (int) t;
}

static void refresh_now(struct top_app *a) {
        uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
        int r;

        remember_selection();
        r = top_app_refresh(a);
        if (r < 0)
                snprintf(V.msg, sizeof V.msg, "cannot read /proc: %s", strerror(-r));
        restore_selection();
        a->next_refresh_ns += a->delay_ms * 1000000;
        if (a->next_refresh_ns <= now)
                a->next_refresh_ns = now + a->delay_ms * 1000000;
        /* an open pane of threads is read again with the rest */
        if (V.d.kind == DRILL_THREADS && !a->replay && V.d.pid)
                drill_threads(&V.d, V.d.pid);
}

int top_view_run(struct top_app *a) {
        uint64_t last_refresh = 0;
        bool dirty = true, is_refresh = false;

        V.a = a;
        drill_init(&V.d);
        remember_selection();
        if (screen_begin(a) < 0)
                return DIAG_EXIT_FAILURE;
        if (a->nwarnings)
                snprintf(V.msg, sizeof V.msg, "recording damaged: %s", a->warning);
        while (!top_quit) {
                struct pollfd p[4] = { { .fd = STDIN_FILENO, .events = POLLIN } };
                nfds_t np = 1;
                int kmsg = a->replay ? -1 : top_model_kmsg_fd(a->model), ch;
                uint64_t now;

                if (dirty) {
                        draw();
                        if (is_refresh)
                                top_app_timing_refresh(a);
                        dirty = is_refresh = false;
                }
                if (drill_poll_fd(&V.d) >= 0)
                        p[np++] = (struct pollfd) { .fd = drill_poll_fd(&V.d), .events = POLLIN };
                /* an OOM kill in the kernel log brings the refresh forward, at most twice a second */
                if (kmsg >= 0 && !a->paused && diag_now_ns(CLOCK_MONOTONIC) >= last_refresh + 500000000)
                        p[np++] = (struct pollfd) { .fd = kmsg, .events = POLLIN };
                /* the walking thread's answers: the rows on screen are filled again */
                if (top_wait_fd(a->wait) >= 0)
                        p[np++] = (struct pollfd) { .fd = top_wait_fd(a->wait), .events = POLLIN };
                if (poll(p, np, poll_timeout(a)) < 0 && errno != EINTR)
                        break;
                if (top_quit)
                        break;
                /* keys (ncurses may hold some already read: read until it has none) */
                while ((ch = getch()) != ERR) {
                        uint64_t t0 = top_now_us();
                        const char *name = keyname(ch);

                        if (!key(ch))
                                goto out;
                        draw();
                        top_app_timing_key(a, name ? name : "?", top_now_us() - t0);
                }
                if (drill_pump(&V.d) || V.d.child > 0)
                        dirty = true;
                now = diag_now_ns(CLOCK_MONOTONIC);
                for (nfds_t i = 1; i < np; i++) {
                        if (p[i].fd == kmsg && (p[i].revents & POLLIN))
                                a->next_refresh_ns = now;
                        if (p[i].fd == top_wait_fd(a->wait) && (p[i].revents & POLLIN) && top_wait_answers(a->wait)) {
                                V.waited_gen = 0;       /* fill again at the next draw */
                                dirty = true;
                        }
                }
                if (!a->replay && !a->paused && now >= a->next_refresh_ns) {
                        refresh_now(a);
                        last_refresh = now;
                        dirty = is_refresh = true;
                }
        }
out:
        drill_close(&V.d);
        screen_end();
        return DIAG_EXIT_OK;
}
