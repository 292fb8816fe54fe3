/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

void log_debug(const char *fmt, ...) {
        va_list ap;

        if (!diag_log_verbose)
                return;
        va_start(ap, fmt);
        vlog(0, fmt, ap);
        va_end(ap);
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
