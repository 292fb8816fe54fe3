/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Parsers of the kernel's statistics texts shared by diag-snap and diag-record:
 * "key value" files, pressure (PSI) files, /proc/diskstats and /proc/net/dev
 * lines, cgroup IO files, and the cgroup mounts of /proc/self/mountinfo. They
 * read the text they are given and allocate nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The number at *p (skipping blanks), *p moved past it. false when there is none. */
bool diag_kstat_next_u64(const char **p, uint64_t *ret);

/* "key value" or "key: value" lines (vmstat, cpu.stat, memory.events, /proc/PID/io):
 * the value of key. 0, or -ENOENT when there is no such line. */
int diag_kstat_keyed(const char *text, const char *key, int64_t *ret);

/* "some avg10=.. avg60=.. avg300=.. total=N" and "full ..." lines. */
struct diag_psi {
        bool have[2];                   /* some, full */
        double avg[2][3];               /* avg10, avg60, avg300 (percent) */
        uint64_t total[2];              /* µs */
};
int diag_psi_parse(const char *text, struct diag_psi *ret);   /* 0, or -EINVAL when no line parsed */

/* One line of /proc/diskstats. */
struct diag_diskstat {
        unsigned major, minor;
        char name[32];
        uint64_t rd_ios, rd_merges, rd_sectors, rd_ms, wr_ios, wr_merges, wr_sectors, wr_ms;
        uint64_t in_flight, io_ticks, weighted_ms;
};
int diag_diskstats_line(const char *line, struct diag_diskstat *ret);  /* 0 or -EINVAL */

/* One interface line of /proc/net/dev ("  eth0: rx_bytes rx_packets ..."). */
struct diag_netdev {
        char name[32];
        uint64_t rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop;
};
int diag_netdev_line(const char *line, struct diag_netdev *ret);      /* 0 or -EINVAL (a header) */

/* Cgroup IO counters, per device: fn(ctx, "MAJ:MIN", DIAG_IO_*, value). */
enum { DIAG_IO_RBYTES, DIAG_IO_WBYTES, DIAG_IO_RIOS, DIAG_IO_WIOS, DIAG_IO_N };
typedef void (*diag_io_fn)(void *ctx, const char *dev, int which, int64_t v);
/* cgroup2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." */
void diag_cgroup_iostat_each(const char *text, diag_io_fn fn, void *ctx);
/* cgroup v1 blkio.*: "MAJ:MIN Read N" and "MAJ:MIN Write N" lines, reported as
 * which_read and which_write (the totals and other operations are left out). */
void diag_cgroup_blkio_each(const char *text, int which_read, int which_write, diag_io_fn fn, void *ctx);

/* The cgroup hierarchies in the text of /proc/self/mountinfo (changed in place):
 * the cgroup2 mount and the v1 mounts of the controllers below, each controller's
 * first mount only (bind mounts repeat it). Mount points with escapes are skipped. */
enum {
        DIAG_CG_MEM = 1 << 0,
        DIAG_CG_IO = 1 << 1,            /* v1 blkio */
        DIAG_CG_CPU = 1 << 2,
        DIAG_CG_PIDS = 1 << 3,
        DIAG_CG_CPUACCT = 1 << 4,       /* v1 only */
};
struct diag_cgroup_mount {
        char path[256];
        bool v2;
        unsigned ctrl;                  /* DIAG_CG_*; cgroup2: all but CPUACCT */
};
size_t diag_cgroup_mounts(char *mountinfo, struct diag_cgroup_mount *ret, size_t max);
