/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * diag-record show: views over a sequence of decoded intervals (fed in time order):
 * a header, a timeline, the top processes, process counts per command line, events,
 * cgroups; or one interval as a snapshot (--at); as text, one JSON document, JSON
 * lines as intervals arrive (--follow -J), or an SVG chart.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "diag/record.h"

struct rec_show_opts {
        bool json;
        bool follow;
        int64_t from_ns, to_ns, at_ns;          /* CLOCK_REALTIME; 0 = unset */
        pid_t pid;                              /* 0 = all */
        const char *cmd_pattern;                /* ERE, matched against command lines (comm when empty) */
        const char *svg_path;                   /* also write an SVG chart there (the text still printed unless json) */
        unsigned top;                           /* rows per list, 0 = 5 */
        unsigned step_s;                        /* timeline bucket, 0 = auto (about 40 lines) */
        FILE *out;                              /* NULL = stdout */
};

struct rec_show;
/* NULL on ENOMEM or a bad cmd_pattern (errno is then EINVAL). */
struct rec_show *rec_show_new(const struct rec_show_opts *opts);
/* iv->strings need only be valid during the call. 0 or negative errno. */
int rec_show_interval(struct rec_show *s, const struct diag_rec_interval *iv);
/* Intervals missing between from_ns and to_ns (frames lost, the recorder not running). */
void rec_show_gap(struct rec_show *s, int64_t from_ns, int64_t to_ns, const char *why);
/* A line about a damaged recording (torn tail, corrupt frame), shown at the end. */
void rec_show_warning(struct rec_show *s, const char *line);
/* Print the views (or write the SVG). 0 or negative errno. */
int rec_show_finish(struct rec_show *s);
void rec_show_free(struct rec_show *s);

/* "17:15:50" (the recording's day: the latest such instant not more than one hour
 * after ref_ns), "2026-12-04 17:15:50", "2026-12-04T17:15:50", "-10m" (before ref_ns),
 * "@EPOCH" (seconds); local time. ref_ns: the recording's last interval (0: now).
 * 0 or -EINVAL. */
int rec_show_parse_time(const char *s, int64_t ref_ns, int64_t *ret_ns);
