/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * diag-top: a live (or replayed) incident screen. As in htop, scanning and drawing
 * are apart:
 *
 *   model.c    a ring of recent intervals (diag-record's model, read by its sampler
 *              when live, decoded from a recording when replaying) -> one *frame*:
 *              the header's figures and one row per process with rates
 *   rows.c     the frame's rows -> what is listed: filtered (-p, -u, '/'), folded by
 *              command line ('g'), as a tree ('t'), sorted by a column
 *   wait.c     for the rows on screen only (live): BLOCKED (longest blocked-for of the
 *              process's threads), WAIT (the chain analysis, nothing stopped), PSS of
 *              folded groups; cached per refresh
 *   replay.c   a diag-record recording -> intervals pushed into the model, stepping
 *              by interval or minute, jumping to a time or to an event
 *   batch.c    frames as plain text (-b) or JSON lines (-J) on stdout
 *   view.c     ncurses: header, list, drill-down pane, keys; only reads the frame
 *   drill.c    drill-downs: threads, and the other tools run as children (read-only),
 *              their output paged
 *   diag-top.c options, the loop
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "diag/record.h"

/* ---- the model: intervals -> a frame ---- */

/* The header's figures; a value not known is negative (percentages, rates) or DIAG_REC_NA. */
struct top_header {
        int64_t realtime_ns;            /* of the interval shown */
        uint32_t interval_ms;           /* measured between this interval and the one before (0: the first) */
        unsigned ncpu;
        double cpu_user, cpu_system, cpu_iowait, cpu_steal, cpu_other, cpu_idle;  /* % of all CPUs; user includes nice */
        int64_t mem_total, mem_avail, swap_total, swap_free;                      /* bytes */
        double psi[3][2];               /* [cpu, memory, io][some, full]: % of the interval stalled */
        double load[3];
        char disk[32];                  /* the busiest whole disk over the interval, "" when none */
        double disk_busy_pct, disk_iops;
        int64_t oom_kills;              /* since boot (vmstat oom_kill) */
        int64_t oom_kills_seen;         /* since diag-top started (or since the recording began) */
        unsigned nprocs, nthreads, nrunning;
        unsigned dstate_threads;        /* threads in D state now */
        unsigned stuck_chains;          /* filled by wait.c: distinct chains among the rows walked that are stuck */
        double majflt_s;                /* host major faults per second */
};

/* One process of the frame. Strings point into the model's interner (valid until the next
 * push or sample). Rates over the interval before; growth over the last minute. */
struct top_proc {
        pid_t pid, ppid;
        int64_t start;                  /* ticks after boot: (pid, start) names a process */
        uid_t uid;
        char state;                     /* 'R', 'S', 'D', 'Z', ... */
        const char *comm, *cmd;         /* cmd "" for kernel threads */
        const char *cgroup;
        double cpu_pct;                 /* 100 = one CPU; -1 on the first interval */
        int64_t rss, vsz;               /* bytes */
        double rss_growth;              /* bytes per minute over up to the last 60 s seen; 0 when seen once */
        double majflt_s, read_s, write_s;   /* per second; read/write in bytes; -1 unknown (io not readable, first interval) */
        int64_t threads;
        bool is_new;                    /* not in the interval before */
};

struct top_frame {
        struct top_header h;
        struct top_proc *procs;         /* sorted by pid, then start */
        size_t nprocs;
        /* D-state threads of this interval (tid, pid, wchan): BLOCKED and WAIT in replay */
        const struct diag_rec_interval *iv;     /* the interval the frame was built from (strings: iv->strings) */
        bool replay;
};

struct top_model;
struct top_model_opts {
        bool live;                      /* read /proc with the sampler (false: intervals are pushed) */
        const char *proc;               /* NULL = "/proc" */
        bool kmsg;                      /* live: count OOM kills from /dev/kmsg as they happen */
};
int top_model_new(struct top_model **ret, const struct top_model_opts *o);
void top_model_free(struct top_model *m);
/* Live: read an interval now and build the frame. 0 or negative errno. */
int top_model_sample(struct top_model *m);
/* Replay: add an interval (copied) after the ones pushed before, build the frame. */
int top_model_push(struct top_model *m, const struct diag_rec_interval *iv);
/* Forget the intervals before (a jump in a replay): rates start again. */
void top_model_reset(struct top_model *m);
/* The frame of the latest interval (NULL before the first). Valid until the next sample/push/reset. */
const struct top_frame *top_model_frame(const struct top_model *m);
/* The kmsg fd of the live sampler, -1 when none (to poll for OOM kills between refreshes). */
int top_model_kmsg_fd(const struct top_model *m);

/* ---- rows: what is listed ---- */

enum top_col {
        TOP_COL_PID = 0, TOP_COL_USER, TOP_COL_STATE, TOP_COL_CPU, TOP_COL_RSS, TOP_COL_GROWTH,
        TOP_COL_MAJFLT, TOP_COL_READ, TOP_COL_WRITE, TOP_COL_THREADS, TOP_COL_BLOCKED,
        TOP_COL_WAIT, TOP_COL_CMD,
        TOP_COL__N
};
/* "PID", "USER", "S", "CPU%", "RSS", "GROW/m", "MAJFLT/s", "READ/s", "WRITE/s", "THR",
 * "BLOCKED", "WAIT", "COMMAND" */
const char *top_col_name(enum top_col c);
/* A column by name (case-insensitive; also "cpu", "rss", "grow", "majflt", "read", "write",
 * "threads", "blocked", "cmd", "command"); -1 when none. */
int top_col_parse(const char *name);

struct top_row {
        const struct top_proc *p;       /* the process (a group: its first member, the oldest) */
        unsigned count;                 /* 1, or the group's member count */
        unsigned depth;                 /* tree: 0 for a root */
        /* a group's totals (a process: its own figures) */
        double cpu_pct, majflt_s, read_s, write_s, rss_growth;
        int64_t rss, threads;
        int64_t start_min, start_max;   /* ticks: the group's start-time spread */
        /* filled for rows on screen by wait.c (live) or from the recording (replay) */
        int64_t blocked_ms;             /* longest blocked-for of its threads; -1 unknown or none blocked */
        char blocked_state;             /* 'D' or 'S' for that thread, 0 */
        int64_t pss;                    /* a group: total PSS (bytes) of its members; DIAG_REC_NA unknown */
        const char *wait;               /* one line: what it waits for; NULL: nothing known (owned by wait.c) */
};

struct top_filter {
        const pid_t *pids;              /* -p: only these (and their threads' process); NULL = all */
        size_t npids;
        bool have_uid;                  /* -u */
        uid_t uid;
        const char *text;               /* '/': substring of comm or command line, case-insensitive; NULL/"" = none */
        bool hide_kernel;               /* kernel threads (empty command line) left out */
};

struct top_rows_opts {
        struct top_filter filter;
        bool group;                     /* fold by command line (comm for kernel threads) */
        bool tree;                      /* parents before children, depth set (ignored with group) */
        enum top_col sort;
        bool ascending;                 /* false: largest first (PID, USER, CMD default to ascending in the view) */
};

struct top_rows {
        struct top_row *rows;
        size_t n, alloc;
};
/* Build the listed rows of f (rows->rows reused), sorted. 0 or -ENOMEM. blocked_ms/pss/wait
 * are reset (-1, NA, NULL): wait.c fills them afterwards for the rows on screen (for every
 * row when sorting by BLOCKED, then top_rows_sort again); sorting by WAIT puts rows with a
 * WAIT first, then by BLOCKED. */
int top_rows_build(struct top_rows *rows, const struct top_frame *f, const struct top_rows_opts *o);
/* Sort again (after wait.c filled BLOCKED and WAIT). */
void top_rows_sort(struct top_rows *rows, const struct top_rows_opts *o);
void top_rows_free(struct top_rows *rows);

/* ---- wait.c: BLOCKED, WAIT and PSS for the rows on screen ---- */

struct top_wait;
struct top_wait_opts {
        bool chains;                    /* compute WAIT (false: BLOCKED only) */
        unsigned max_age_ms;            /* reuse a cached WAIT at most this long while the thread's
                                           system call is unchanged (default 10000) */
        bool ascii;                     /* "<-" instead of the arrow U+2190 in WAIT */
        bool background;                /* walk on a thread of its own: a fill never waits for a
                                           walk, its answers show at a later fill (top_wait_fd) */
};
int top_wait_new(struct top_wait **ret, const struct top_wait_opts *o);
void top_wait_free(struct top_wait *w);
/* Fill blocked_ms/blocked_state/wait (and pss for groups) of rows[first..first+n) of f.
 * Live frames: from /proc, nothing stopped. Replay frames: BLOCKED and WAIT from the
 * interval's D-state table (wchan), PSS unknown. Sets f's header stuck_chains through
 * *ret_stuck. Never fails: what cannot be read stays unknown. */
void top_wait_fill(struct top_wait *w, const struct top_frame *f, struct top_row *rows, size_t n,
                   unsigned *ret_stuck);
/* BLOCKED only (no WAIT, no PSS), for sorting every row by BLOCKED. */
void top_wait_fill_blocked(struct top_wait *w, const struct top_frame *f, struct top_row *rows, size_t n);
/* How long the last fill took, microseconds (for -v and the benchmark). */
uint64_t top_wait_last_us(const struct top_wait *w);
/* How many times the fills made the chain scan (every process's fds and sockets). */
uint64_t top_wait_scans(const struct top_wait *w);
/* Threads' looks answered by what was read at an earlier fill (the thread had not
 * run since), and those read in full. */
uint64_t top_wait_thread_hits(const struct top_wait *w, uint64_t *ret_reads);
/* Background walks: how long the last batch (its scan and walks) took, microseconds,
 * and how many batches were done. */
uint64_t top_wait_walk_us(struct top_wait *w, uint64_t *ret_batches);
/* Readable when the walking thread has answers for the next fill; -1 without the thread. */
int top_wait_fd(const struct top_wait *w);
/* Clear top_wait_fd; true when answers wait (fill the rows on screen again to show them). */
bool top_wait_answers(struct top_wait *w);

/* ---- replay.c ---- */

struct top_replay;
/* Open a recording (diag_rec_reader) and index it (key frames, events, span). 0 or
 * negative errno (-ENOENT no recording); warnings about damage go to warn. */
int top_replay_open(struct top_replay **ret, const char *dir, struct top_model *m,
                    void (*warn)(void *ud, const char *line), void *ud);
void top_replay_close(struct top_replay *r);
/* First and last interval's time. */
void top_replay_span(const struct top_replay *r, int64_t *first_ns, int64_t *last_ns);
/* Show the last interval at or before t (the first when t is before it): the model is
 * fed the intervals of the minute before, for rates and growth. 0 or negative errno. */
int top_replay_seek(struct top_replay *r, int64_t realtime_ns);
/* Step by n intervals (negative: back); stops at the ends. 1 moved, 0 at an end. */
int top_replay_step(struct top_replay *r, int n);
/* The time shown now. */
int64_t top_replay_now(const struct top_replay *r);
struct top_event_mark {
        int64_t realtime_ns;
        char kind;                      /* 'O' OOM kill, 'T' trigger, 'H' hung task, 'E' I/O error, 'G' gap start */
        pid_t pid;
        char text[160];                 /* "oom-kill 4242 (python3) rss 1.2G", "trigger count:worker>50 -> snap-..." */
        char path[256];                 /* a trigger's snapshot bundle, "" when none */
};
/* Events of the whole recording, in time order (for the timeline bar and jumps). */
const struct top_event_mark *top_replay_events(const struct top_replay *r, size_t *ret_n);
/* Jump to the next (dir > 0) or previous event after/before the time shown: 1, 0 none. */
int top_replay_jump_event(struct top_replay *r, int dir);
/* The newest trigger snapshot taken at or before the time shown, within 5 minutes; NULL. */
const struct top_event_mark *top_replay_snapshot_near(const struct top_replay *r);

/* ---- batch.c ---- */

struct top_batch_opts {
        bool json;                      /* JSON lines, one per frame */
        unsigned max_rows;              /* text: rows per frame (0 = all) */
        FILE *out;
};
/* One frame: the header and the rows (with WAIT/BLOCKED as filled). 0 or negative errno (EPIPE). */
int top_batch_frame(const struct top_batch_opts *o, const struct top_frame *f, const struct top_rows *rows,
                    const struct top_rows_opts *ro);

/* ---- shared formatting (rows.c) ---- */

/* "812K", "1.2M", "3.4G" (1024-based), width <= 6; "-" for NA/negative. */
void top_fmt_bytes(char *buf, size_t size, double bytes);
/* "4.0s", "2m03s", "1h02m", "3d04h"; "-" for negative. */
void top_fmt_ms(char *buf, size_t size, int64_t ms);
/* The user name of uid (cached), or the number. */
const char *top_user_name(uid_t uid);
/* uid of a name or a number; -1 when none. */
int top_user_parse(const char *s, uid_t *ret);
