/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * diag-record's triggers (--on SPEC). Grammar (PATTERN: an extended regular
 * expression matched against the command line, or a decimal pid; SIZE: bytes with an
 * optional K/M/G/T suffix, powers of 1024; DUR: 500ms, 10s, 2m):
 *
 *   psi:RES:some>P%[/DUR][@CGROUP]   RES cpu|memory|io, kind some|full; the kernel's PSI
 *   psi:RES:full>P%[/DUR][@CGROUP]   trigger (stall P% of the window DUR, default 1s,
 *                                    kernel range 500ms..10s) on /proc/pressure/RES or
 *                                    CGROUP/RES.pressure (cgroup v2 directory)
 *   memavail<P%  memavail<SIZE       MemAvailable below a share of MemTotal or a size
 *   load>N                           1-minute load average (N may have decimals)
 *   count:PATTERN>N                  more than N processes match
 *   rss:PATTERN>SIZE                 a matching process's RSS above SIZE
 *   cpu:PATTERN>P%[/DUR]             a matching process above P% of one CPU for DUR
 *                                    (default 10s) without a break
 *   threads:PATTERN>N                a matching process with more than N threads
 *   fds:PATTERN>N                    a matching process with more than N open fds
 *   dstate>N[/DUR]                   more than N D-state threads for DUR (default: one interval)
 *   oom                              a kernel OOM kill
 *
 * PSI triggers fire from their fd (POLLPRI), between intervals; oom fires from the
 * kernel log (the recorder polls it); the others are checked against each interval.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "diag/record.h"

enum diag_rec_trigger_kind {
        DIAG_TRIG_PSI, DIAG_TRIG_MEMAVAIL, DIAG_TRIG_LOAD, DIAG_TRIG_COUNT, DIAG_TRIG_RSS,
        DIAG_TRIG_CPU, DIAG_TRIG_THREADS, DIAG_TRIG_FDS, DIAG_TRIG_DSTATE, DIAG_TRIG_OOM,
};

struct diag_rec_trigger;

/* Parse SPEC. 0, or -EINVAL with a one-line reason in err. */
int diag_rec_trigger_parse(const char *spec, struct diag_rec_trigger **ret, char *err, size_t errsize);
void diag_rec_trigger_free(struct diag_rec_trigger *t);
enum diag_rec_trigger_kind diag_rec_trigger_kind(const struct diag_rec_trigger *t);
const char *diag_rec_trigger_spec(const struct diag_rec_trigger *t);   /* as given */

/* PSI: open the pressure file and write the threshold. 0, or negative errno with a
 * one-line reason in err (-ENOENT: no PSI / no such cgroup file, -EACCES, -EINVAL: the
 * kernel refused the window). 1: armed with another window than the default 1s (a
 * caller without CAP_SYS_RESOURCE gets 2s), err says so. Other kinds: 0, nothing to do. */
int diag_rec_trigger_arm(struct diag_rec_trigger *t, char *err, size_t errsize);
/* The fd to poll for POLLPRI (PSI), else -1. */
int diag_rec_trigger_fd(const struct diag_rec_trigger *t);
/* Called when the fd polled POLLPRI (or POLLERR: the cgroup went away, then false and
 * the fd is closed). true: the trigger fired; why says so in one line. */
bool diag_rec_trigger_psi_event(struct diag_rec_trigger *t, short revents, char *why, size_t size);

/* Check an interval-evaluated trigger against cur (and prev, the interval before, or
 * NULL), oom_kills: the OOM kills the kernel log showed since the last check. true:
 * fired; why: one line (what crossed what, for which process); pids (capacity
 * *npids on entry): the processes that matched, for --cores. Triggers with state
 * (cpu, dstate with a duration) keep it between calls. */
bool diag_rec_trigger_check(struct diag_rec_trigger *t, const struct diag_rec_interval *cur,
                            const struct diag_rec_interval *prev, unsigned oom_kills,
                            char *why, size_t size, pid_t *pids, size_t *npids);
