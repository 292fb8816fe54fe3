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
/* "prog: <message>\nTry 'prog --help' for more information." Returns DIAG_EXIT_USAGE. */
int diag_usage_error(const char *fmt, ...) _printf_(1, 2);
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

/*
 * Watchdog for tools: some kernel paths a tool cannot avoid (reading
 * /proc/PID/maps, process_vm_readv) sleep on the target's memory-map lock, and a
 * target stuck in a page fault on a dead NFS/FUSE mount can hold it for ever.
 * After `seconds` the tool prints "<prog>: timed out after Ns while <phase>" and
 * exits with DIAG_EXIT_FAILURE. Exiting is safe: the kernel detaches every
 * tracee and lets it run. 0 disarms.
 */
void diag_watchdog_arm(unsigned seconds);
/* What the tool is doing now, for the timeout message (a string literal). */
void diag_watchdog_phase(const char *phase);

/* The options every tool has, for getopt_long tables and their handling. */
#define DIAG_STD_SHORTOPTS "vhV"
#define DIAG_STD_LONGOPTS \
        { "verbose", no_argument, NULL, 'v' }, \
        { "help",    no_argument, NULL, 'h' }, \
        { "version", no_argument, NULL, 'V' }
/* -v, -h (calls usage(), which prints to stdout), -V, and getopt's '?' (a bad
 * option). Returns false when c is none of them. When it returns true, *ret_exit
 * is -1 to go on parsing, or the status the tool exits with now. */
bool diag_std_option(int c, void (*usage)(void), int *ret_exit);

/* Flush stdout and turn a failed write (EPIPE aside, ENOSPC...) into an error exit. */
int diag_close_stdout(void);
