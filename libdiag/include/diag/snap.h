/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "diag/util.h"

/*
 * diag-snap's parts: each collects one kind of evidence into files of a bundle
 * directory, within a deadline, and reports summary lines ("findings") and what it
 * could not read ("missing"). diag-snap runs each part in a child process of its
 * own, so a part stuck on a dead mount or a crawling /proc is killed at its
 * deadline without holding up the others; a part must therefore leave its files
 * complete after every snap_close() (a killed part's index entry says so).
 *
 * Findings and missing entries are written as one line each to findings_fd (a pipe
 * or file of diag-snap's), so that a part killed half-way keeps what it said:
 *   "F\t<severity>\t<file in the bundle>\t<text>\n"
 *   "M\t<what>\t<text>\n"
 * Tabs and newlines in the text are replaced by spaces.
 */

enum diag_snap_severity {
        DIAG_SNAP_INFO = 0,             /* worth a line when nothing is worse */
        DIAG_SNAP_NOTICE = 1,           /* unusual */
        DIAG_SNAP_WARN = 2,             /* likely part of the incident */
        DIAG_SNAP_CRIT = 3,             /* the incident: memory gone, OOM kills, a stuck chain */
};

struct diag_snap {
        int dirfd;                      /* the bundle's directory (still under its temporary name) */
        int findings_fd;                /* see above; -1: findings are dropped */
        uint64_t deadline_ns;           /* CLOCK_MONOTONIC: the part is killed then */
        const pid_t *pids;              /* processes named on the command line (stacks, samples) */
        size_t npids;
        const char *tools_dir;          /* where diag-chain, diag-stack, ... are (the dir of diag-snap) */
        unsigned rate_ms;               /* the window between two readings for rates (default 1000) */
        bool root;                      /* geteuid() == 0 */
};

/* Open NAME (relative; parent directories made 0700) in the bundle for writing:
 * 0600, never replacing a file. It is written as DIR/.BASE.part and renamed to
 * NAME by diag_snap_close(): a part killed while writing leaves only the .part
 * file, which diag-snap removes. NULL with errno set on failure. */
FILE *diag_snap_open(struct diag_snap *s, const char *name);
/* Flush and close; 0, or negative errno (a full disk: -ENOSPC), in which case the
 * file is removed and a missing entry says why. */
int diag_snap_close(struct diag_snap *s, FILE *f, const char *name);
#define DIAG_SNAP_PART_SUFFIX ".part"
/* The temporary name NAME is written under ("stacks/1.json" -> "stacks/.1.json.part"). */
int diag_snap_part_name(const char *name, char *buf, size_t size);
/* Rename part to name under dirfd, never replacing anything (-EEXIST). */
int diag_snap_publish(int dirfd, const char *part, const char *name);
/* Write a whole small file (JSON text, say) at once: open, write, close. */
int diag_snap_write(struct diag_snap *s, const char *name, const char *data, size_t len);

void diag_snap_finding(struct diag_snap *s, enum diag_snap_severity sev, const char *file, const char *fmt, ...)
        _printf_(4, 5);
void diag_snap_missing(struct diag_snap *s, const char *what, const char *fmt, ...) _printf_(3, 4);

/* Time left before the deadline, in ms (0 when past it). */
unsigned diag_snap_left_ms(const struct diag_snap *s);
static inline bool diag_snap_expired(const struct diag_snap *s) { return diag_snap_left_ms(s) == 0; }

/*
 * The parts. Each returns 0, or negative errno when it could do nothing at all;
 * partial results are files written plus missing entries. The files each one
 * writes, and their JSON, are in docs/diag-snap-json.md.
 */
int diag_snap_host(struct diag_snap *s);        /* host.txt, host.json: two readings rate_ms apart */
int diag_snap_procs(struct diag_snap *s);       /* processes.txt/.json, top.txt, groups.txt, tree.txt */
int diag_snap_cgroups(struct diag_snap *s);     /* cgroups.txt, cgroups.json (v1 and v2) */
int diag_snap_oom(struct diag_snap *s);         /* oom.txt, oom.json: OOM kills still in the kernel log */
int diag_snap_dstate(struct diag_snap *s);      /* dstate.txt, dstate.json: D-state threads, wchan, kernel stack */

/* The memory cgroup of a process, from its /proc/PID/cgroup text (v1: the line whose
 * controllers include memory, when that controller is mounted; else the v2 "0::"
 * line), as a path kept for the life of the process, NULL when none is found; and in
 * *ret_limit the memory limit that applies to it (the smallest of its own and its
 * ancestors'; v1 hierarchical_memory_limit), 0 for none, -1 when not readable. */
const char *diag_snap_memcg(const char *proc_cgroup, int64_t *ret_limit);
