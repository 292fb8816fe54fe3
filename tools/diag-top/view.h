/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Between diag-top.c (options, the model, the refresh), view.c (the ncurses screen and
 * its keys) and drill.c (the drill-down pane's content). Private to diag-top.
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "top.h"

struct top_app {
        /* options */
        uint64_t delay_ms;
        bool color, ascii, mouse;
        const char *replay_dir;
        const char *at;                 /* --at TIME, NULL */
        FILE *timings;                  /* --timings FILE, NULL */

        /* the model and what is listed */
        struct top_model *model;
        struct top_replay *replay;      /* NULL live */
        struct top_wait *wait;
        struct top_rows rows;
        struct top_rows_opts ro;
        const struct top_frame *frame;  /* NULL before the first refresh */
        unsigned generation;            /* counts rows rebuilt: WAIT is to be filled again */
        char filter[128];               /* '/' text */
        uint64_t next_refresh_ns;       /* CLOCK_MONOTONIC */
        bool paused;
        int scan_err;                   /* the last refresh's error, 0 */
        unsigned stuck_chains;          /* from the last WAIT fill */
        char warning[160];              /* the last warning about a damaged recording, "" */
        unsigned nwarnings;
        int64_t span_first_ns, span_last_ns;    /* replay: the recording's span */

        /* the last refresh's timings, microseconds */
        uint64_t scan_us, rows_us, wait_us, draw_us;
        unsigned rows_on_screen;
};

extern volatile sig_atomic_t top_quit;

/* diag-top.c: read a new interval (live, not paused), then top_app_rows(). 0 or negative errno. */
int top_app_refresh(struct top_app *a);
/* Build the listed rows again from the frame shown (sort, filter, fold changed). */
int top_app_rows(struct top_app *a);
/* Fill BLOCKED/WAIT of rows [first, first+n) (and for every row first when sorting by BLOCKED). */
void top_app_fill_wait(struct top_app *a, size_t first, size_t n);
/* One JSON line of --timings; no-op without it. */
void top_app_timing_refresh(struct top_app *a);
void top_app_timing_key(struct top_app *a, const char *key, uint64_t us);
/* "17:15:50", "2026-12-04 17:15:50", "2026-12-04T17:15:50", "-10m" (before ref_ns), "+5m"
 * (after start_ns), "@EPOCH"; local time. 0 or -EINVAL. */
int top_parse_time(const char *s, int64_t start_ns, int64_t ref_ns, int64_t *ret_ns);
uint64_t top_now_us(void);

/* view.c: the interactive screen until q or a signal. Returns an exit status. */
int top_view_run(struct top_app *a);

/* ---- drill.c: the lower pane's content ---- */

enum drill_kind {
        DRILL_NONE = 0, DRILL_THREADS, DRILL_MAPS, DRILL_CHAIN, DRILL_FDS, DRILL_LOCKS,
        DRILL_SAMPLE, DRILL_STACK, DRILL_TEXT,
};

struct drill {
        enum drill_kind kind;
        pid_t pid;                      /* the process looked at */
        int64_t start;                  /* its start time (ticks), to notice a reused pid */
        char title[160];
        char **text;                    /* the pane's text, one line each */
        size_t n, alloc;
        size_t bytes;                   /* held in lines (a child's output is bounded) */
        char status[160];               /* "running diag-chain 1234...", "diag-chain exited with 3" */
        /* a tool run as a child */
        pid_t child;                    /* its pid (and process group), 0 none */
        int fd;                         /* its stdout+stderr, -1 */
        uint64_t started_ns, deadline_ns;       /* CLOCK_MONOTONIC */
        char partial[512];              /* a line not yet ended */
        size_t npartial;
};

void drill_init(struct drill *d);
/* Kill and reap a running child, free the text; the pane is then empty (DRILL_NONE). */
void drill_close(struct drill *d);
/* Threads of pid from /proc: tid, state, system call, wchan, blocked-for. 0 or negative errno. */
int drill_threads(struct drill *d, pid_t pid);
/* Memory map summary of pid: smaps_rollup, then mappings grouped, the 20 largest by RSS. */
int drill_maps(struct drill *d, pid_t pid);
/* Run diag-TOOL with args as a child (its own process group), its output into the pane. */
int drill_tool(struct drill *d, enum drill_kind kind, pid_t pid, unsigned width);
/* Replay: the D-state threads of pid recorded in the frame's interval. */
void drill_recorded_threads(struct drill *d, const struct top_frame *f, pid_t pid);
/* Replay: the trigger snapshot near the time shown (its path and summary.txt). */
void drill_recorded_snapshot(struct drill *d, const struct top_event_mark *m, pid_t pid);
/* A pane of one message ("not recorded in a replay"). */
void drill_message(struct drill *d, pid_t pid, const char *title, const char *text);
/* The fd to poll while a child runs (-1 none), and what to do when it is readable or the
 * deadline passed. Returns true when the pane's text changed. */
int drill_poll_fd(const struct drill *d);
bool drill_pump(struct drill *d);
/* Kill every child still running (on exit, from atexit too). */
void drill_kill_all(void);
