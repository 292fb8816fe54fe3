/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * syscount-attach: count the system calls of processes with libdiag's syscount
 * for as long as its stdin stays open, for bench/syscount-bench.py.
 *
 *   syscount-attach [--no-latency] PID...
 *   syscount-attach [--no-latency] --all         (every process but this one)
 *
 * Prints "READY" once counting, then at end of input (or a line) stops and prints
 * one "COUNT PID NR CALLS ERRORS TOTAL_NS MAX_NS" line per (process, system call)
 * and "LOST N". Exit 77 with the reason on stderr when counting is not available.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diag/syscount.h"
#include "diag/util.h"

int main(int argc, char **argv) {
        _cleanup_(diag_syscount_freep) struct diag_syscount *sc = NULL;
        _cleanup_free_ struct diag_syscount_entry *e = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t npids = 0, n = 0;
        unsigned flags = 0;
        bool all = false;
        const char *reason = NULL;
        char c;
        int r;

        pids = calloc((size_t) argc, sizeof *pids);
        if (!pids)
                return 1;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--no-latency") == 0)
                        flags |= DIAG_SYSCOUNT_NO_LATENCY;
                else if (strcmp(argv[i], "--all") == 0)
                        all = true;
                else if (diag_parse_pid(argv[i], &pids[npids++]) < 0) {
                        fprintf(stderr, "syscount-attach: bad pid '%s'\n", argv[i]);
                        return 2;
                }
        }
        if ((npids == 0) == !all) {
                fprintf(stderr, "usage: syscount-attach [--no-latency] PID... | --all\n");
                return 2;
        }
        r = diag_syscount_start_flags(pids, npids, flags, &sc, &reason);
        if (r < 0) {
                fprintf(stderr, "syscount-attach: %s\n", reason ? reason : strerror(-r));
                return r == -EPERM || r == -EACCES || r == -ENOSYS || r == -EOPNOTSUPP ? 77 : 1;
        }
        printf("READY\n");
        fflush(stdout);
        while (read(STDIN_FILENO, &c, 1) == 1 && c != '\n')
                ;
        diag_syscount_stop(sc);
        r = diag_syscount_read(sc, &e, &n);
        if (r < 0) {
                fprintf(stderr, "syscount-attach: cannot read the counts: %s\n", strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < n; i++)
                printf("COUNT %d %ld %llu %llu %llu %llu\n", e[i].pid, e[i].nr, (unsigned long long) e[i].calls,
                       (unsigned long long) e[i].errors, (unsigned long long) e[i].total_ns,
                       (unsigned long long) e[i].max_ns);
        printf("LOST %llu\n", (unsigned long long) diag_syscount_lost(sc));
        return fflush(stdout) == 0 ? 0 : 1;
}
