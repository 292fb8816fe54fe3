/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "diag/util.h"

/* Tools log once, where an error reaches them; libdiag never prints. */

void diag_log_init(const char *argv0);
const char *diag_progname(void);

/* "prog: <message>\n" on stderr. %m expands to strerror(|err|). Returns -|err|. */
int log_error_errno(int err, const char *fmt, ...) _printf_(2, 3);
void log_error(const char *fmt, ...) _printf_(1, 2);
void log_warn(const char *fmt, ...) _printf_(1, 2);
/* Only printed when diag_log_verbose was raised (-v). */
void log_debug(const char *fmt, ...) _printf_(1, 2);
extern int diag_log_verbose;

/* Exit codes shared by every tool (documented in each man page). */
enum {
        DIAG_EXIT_OK = 0,
        DIAG_EXIT_FAILURE = 1,  /* could not do the job (no such process, no permission...) */
        DIAG_EXIT_USAGE = 2,    /* bad command line */
        DIAG_EXIT_PARTIAL = 4,  /* did the job, but some of the data is missing (see stderr) */
};

/* Flush stdout and turn a failed write (EPIPE aside, ENOSPC...) into an error exit. */
int diag_close_stdout(void);
