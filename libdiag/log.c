/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "diag/log.h"

static const char *progname = "diag";
int diag_log_verbose;

void diag_log_init(const char *argv0) {
        const char *s;

        if (!argv0)
                return;
        s = strrchr(argv0, '/');
        progname = s ? s + 1 : argv0;
}

const char *diag_progname(void) {
        return progname;
}

static void vlog(int err, const char *fmt, va_list ap) {
        fprintf(stderr, "%s: ", progname);
        if (err)
                errno = err < 0 ? -err : err;   /* for %m */
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

int log_error_errno(int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog(err ? err : EIO, fmt, ap);
        va_end(ap);
        return err > 0 ? -err : (err ? err : -EIO);
}

void log_error(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog(0, fmt, ap);
        va_end(ap);
}

void log_warn(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog(0, fmt, ap);
        va_end(ap);
}

int diag_usage_error(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog(0, fmt, ap);
        va_end(ap);
        fprintf(stderr, "Try '%s --help' for more information.\n", progname);
        return DIAG_EXIT_USAGE;
}

void log_debug(const char *fmt, ...) {
        va_list ap;

        if (!diag_log_verbose)
                return;
        va_start(ap, fmt);
        vlog(0, fmt, ap);
        va_end(ap);
}

bool diag_std_option(int c, void (*usage)(void), int *ret_exit) {
        *ret_exit = -1;
        switch (c) {
        case 'v':
                diag_log_verbose++;
                return true;
        case 'h':
                usage();
                *ret_exit = diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : DIAG_EXIT_OK;
                return true;
        case 'V':
                printf("%s from diagkit %s\n", progname, DIAG_VERSION);
                *ret_exit = diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : DIAG_EXIT_OK;
                return true;
        case '?':
                fprintf(stderr, "Try '%s --help' for more information.\n", progname);
                *ret_exit = DIAG_EXIT_USAGE;
                return true;
        default:
                return false;
        }
}

int diag_close_stdout(void) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                int r = errno ? -errno : -EIO;
                if (r == -EPIPE)
                        return 0;
                return log_error_errno(r, "write error on standard output: %m");
        }
        return 0;
}

static volatile sig_atomic_t watchdog_seconds;
static const char *volatile watchdog_phase_text = "starting";

void diag_watchdog_phase(const char *phase) {
        watchdog_phase_text = phase;
}

static void write_all(const char *s) {
        size_t len = strlen(s);
        while (len > 0) {
                ssize_t k = write(STDERR_FILENO, s, len);
                if (k <= 0)
                        return;
                s += k;
                len -= (size_t) k;
        }
}

/* Async-signal-safe: write(2) and _exit(2) only. */
static void watchdog_fired(int sig) {
        char num[16];
        int n = watchdog_seconds, i = (int) sizeof num - 1;

        (void) sig;
        num[i] = 0;
        do {
                num[--i] = (char) ('0' + n % 10);
                n /= 10;
        } while (n > 0 && i > 0);
        write_all(progname);
        write_all(": timed out after ");
        write_all(num + i);
        write_all("s while ");
        write_all(watchdog_phase_text);
        write_all(" (is the target stuck on a dead mount? its threads were left running)\n");
        _exit(DIAG_EXIT_FAILURE);
}

void diag_watchdog_arm(unsigned seconds) {
        struct sigaction sa = { .sa_handler = watchdog_fired };

        watchdog_seconds = (sig_atomic_t) seconds;
        if (seconds) {
                sigemptyset(&sa.sa_mask);
                sigaction(SIGALRM, &sa, NULL);
        }
        alarm(seconds);
}
