/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's sampler: one interval's tables from /proc, the cgroup file
 * systems and /dev/kmsg. It runs every second on a machine in trouble, so it is
 * made cheap: files are read with openat() on directory fds opened once, into
 * fixed buffers (or buffers that grow once and stay); command lines and cgroups
 * are read once per process; the cgroup trees are walked again only now and then.
 * Nothing else is read (no mount that could hang).
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "diag/kmsg.h"
#include "diag/kstat.h"
#include "diag/proc.h"
#include "diag/record.h"
#include "diag/util.h"

/* Bounds of the cgroup walk: depth below a hierarchy's root, cgroups per hierarchy. */
#define CG_DEPTH_MAX 16
#define CG_WALK_MAX 4096
/* The cgroup trees are walked again every this many intervals (or when one is gone). */
#define CG_REWALK_EVERY 10
#define CG_HIER_MAX 8
/* Kernel log events kept between intervals; past it the oldest are dropped. */
#define EV_QUEUE_MAX 256
/* Whole-file buffers (/proc/stat, vmstat, mountinfo, ...) grow up to this. */
#define BIG_MAX (16u << 20)
#define DENTS_SIZE 16384

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

struct bigbuf {
        char *p;
        size_t size;
};

/* A process's strings read once: keyed by pid and start, sorted. */
struct pcache {
        pid_t pid;
        int64_t start;
        uint32_t comm, cmd, cgroup;
        /* what an idle process keeps: read again only when it ran, did IO last time,
         * sleeps in D, or its turn comes (every REFRESH_EVERY intervals) */
        uid_t uid;
        int64_t cpu, rd, wr;
        int64_t rss;                    /* statm's resident pages, bytes; NA when unread */
        int64_t stat_rss;               /* stat's rss field when statm was read (pages) */
        bool io_moved;
        bool had_dstate;                /* a thread of it was in D at the last look */
        /* /proc/PID/stat kept open and read again with pread: an open, a read and a
         * close per process and interval are most of the sampler's cost. The open
         * file is the process's: once it is gone (or its pid reused) reads fail. */
        int statfd;
};
#define REFRESH_EVERY 5
/* The threads of a multi-threaded process are read every interval while the kernel
 * counts tasks blocked on IO or one of them was in D; else every DSCAN_EVERY intervals
 * (a D-state wait that is not IO, a hung FUSE read, is not counted by procs_blocked). */
#define DSCAN_EVERY 5
enum { DSTATE_NONE, DSTATE_SOME, DSTATE_ALL };

/* The cgroup files read; an entry remembers those found missing until the next walk. */
enum {
        F_MEM_CURRENT, F_MEM_MAX, F_MEM_EVENTS, F_IO_STAT, F_CPU_STAT, F_CPU_PRESSURE, F_MEM_PRESSURE,
        F_IO_PRESSURE, F_V1_USAGE, F_V1_LIMIT, F_V1_FAILCNT, F_V1_OOM_CONTROL, F_V1_BLKIO_BYTES,
        F_V1_BLKIO_IOS, F_V1_CPUACCT, F__N
};
static const char *const cg_files[F__N] = {
        "memory.current", "memory.max", "memory.events", "io.stat", "cpu.stat", "cpu.pressure",
        "memory.pressure", "io.pressure", "memory.usage_in_bytes", "memory.limit_in_bytes", "memory.failcnt",
        "memory.oom_control", "blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced", "cpuacct.usage",
};

struct hier {
        int fd;
        bool v2;
        unsigned ctrl;                  /* DIAG_CG_* */
};

/* One cgroup directory of one hierarchy; its row merges the v1 hierarchies by path. */
struct cgent {
        unsigned hier;
        size_t path;                    /* offset in cg_pool: "/" or "/a/b" */
        size_t row;
        uint32_t missing;               /* 1 << F_*: absent at the last try */
};

struct cgrow {
        size_t path;
        bool v2, gone;
        uint32_t id;                    /* the path's string id this interval */
        int64_t v[CG__N];
};

struct diag_rec_sampler {
        int procfd;                     /* O_RDONLY|O_DIRECTORY: openat() and getdents */
        bool want_cgroups, want_dstate;
        long page_size;
        int64_t ncpu, clk_tck;
        char dents[DENTS_SIZE], tdents[DENTS_SIZE];
        struct bigbuf big;

        /* processes */
        struct diag_rec_strings *strings;       /* the interner the cache's ids are of */
        struct pcache *cache, *next;
        size_t ncache, nnext, acache, anext;
        uint64_t round;                 /* counts process scans */
        size_t nstatfds, statfd_budget; /* stat files held open, and how many may be */

        /* cgroups */
        struct hier hier[CG_HIER_MAX];
        size_t nhier;
        bool memcg_v1;                  /* processes' cgroup: the v1 memory line */
        struct cgent *ent;
        size_t nent, aent;
        struct cgrow *rows;
        size_t nrows, arows;
        char *cg_pool;
        size_t pool_len, pool_alloc;
        unsigned since_walk;
        bool rewalk;
        uint32_t *cg_hash;              /* path id -> row + 1 */
        size_t cg_hash_size;

        /* kernel log */
        int kmsg_fd;
        struct diag_rec_interval pend;
        struct diag_rec_strings *pend_strings;
        uint64_t dropped;
        bool oom_kill_seen;             /* the "oom-kill:" line before "Killed process" */
        pid_t oom_pid;
        char oom_path[256];
};

/* ------------------------------------------------------------- reading */

/* One read() of a small file: /proc and cgroup files give all in one. */
static ssize_t read_at(int dirfd, const char *path, char *buf, size_t size) {
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        do
                n = read(fd, buf, size - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                n = negative_errno();
        close(fd);
        if (n >= 0)
                buf[n] = 0;
        return n;
}

/* A whole file into s->big, which grows (and stays) when the file is larger. */
static ssize_t read_big(struct diag_rec_sampler *s, int dirfd, const char *path) {
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        size_t len = 0;

        if (fd < 0)
                return negative_errno();
        for (;;) {
                ssize_t n;

                if (len + 1 >= s->big.size) {
                        size_t a = s->big.size ? s->big.size * 2 : 65536;
                        char *p = a <= BIG_MAX ? realloc(s->big.p, a) : NULL;
                        if (!p)
                                break;          /* what fits */
                        s->big.p = p;
                        s->big.size = a;
                }
                n = read(fd, s->big.p + len, s->big.size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = negative_errno();
                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        close(fd);
        s->big.p[len] = 0;
        return (ssize_t) len;
}

static const char *next_line(const char *p) {
        p = strchr(p, '\n');
        return p ? p + 1 : NULL;
}

static int64_t sat(uint64_t v) {
        return v > INT64_MAX ? INT64_MAX : (int64_t) v;
}

/* ---------------------------------------------------------------- host */

static void host_stat(struct diag_rec_sampler *s, int64_t *h) {
        if (read_big(s, s->procfd, "stat") <= 0)
                return;
        for (const char *l = s->big.p; l && *l; l = next_line(l)) {
                static const struct { const char *key; int col; } keys[] = {
                        { "ctxt ", H_CTXT }, { "processes ", H_FORKS },
                        { "procs_running ", H_PROCS_RUNNING }, { "procs_blocked ", H_PROCS_BLOCKED },
                };
                const char *p;
                uint64_t v;

                if (strncmp(l, "cpu ", 4) == 0) {
                        p = l + 4;
                        for (int i = H_CPU_USER; i <= H_CPU_STEAL && diag_kstat_next_u64(&p, &v); i++)
                                h[i] = sat(v);
                        continue;
                }
                if (l[0] == 'c' && l[1] == 'p')         /* cpuN */
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                        if (strncmp(l, keys[k].key, strlen(keys[k].key)) == 0) {
                                p = l + strlen(keys[k].key);
                                if (diag_kstat_next_u64(&p, &v))
                                        h[keys[k].col] = sat(v);
                        }
        }
}

/* "0.52" -> 520 */
static bool parse_milli(const char **p, int64_t *ret) {
        uint64_t ip, frac = 0;
        int digits = 0;

        if (!diag_kstat_next_u64(p, &ip))
                return false;
        if (**p == '.')
                for ((*p)++; **p >= '0' && **p <= '9'; (*p)++)
                        if (digits < 3) {
                                frac = frac * 10 + (uint64_t) (**p - '0');
                                digits++;
                        }
        for (; digits < 3; digits++)
                frac *= 10;
        *ret = sat(ip * 1000 + frac);
        return true;
}

static void host_loadavg(struct diag_rec_sampler *s, int64_t *h) {
        char buf[256];
        const char *p = buf;
        uint64_t run, total;

        if (read_at(s->procfd, "loadavg", buf, sizeof buf) <= 0)
                return;
        if (!parse_milli(&p, &h[H_LOAD1]) || !parse_milli(&p, &h[H_LOAD5]) || !parse_milli(&p, &h[H_LOAD15]))
                return;
        if (diag_kstat_next_u64(&p, &run) && *p == '/' && (p++, diag_kstat_next_u64(&p, &total)))
                h[H_NR_THREADS] = sat(total);
}

static void host_meminfo(struct diag_rec_sampler *s, int64_t *h) {
        static const struct { const char *key; int col; } keys[] = {
                { "MemTotal", H_MEM_TOTAL }, { "MemFree", H_MEM_FREE }, { "MemAvailable", H_MEM_AVAIL },
                { "Buffers", H_BUFFERS }, { "Cached", H_CACHED }, { "SwapTotal", H_SWAP_TOTAL },
                { "SwapFree", H_SWAP_FREE }, { "Dirty", H_DIRTY }, { "Writeback", H_WRITEBACK },
                { "Shmem", H_SHMEM }, { "AnonPages", H_ANON },
        };

        if (read_big(s, s->procfd, "meminfo") <= 0)
                return;
        for (const char *l = s->big.p; l && *l; l = next_line(l))
                for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                        size_t kl = strlen(keys[k].key);
                        const char *p = l + kl + 1;
                        uint64_t v;

                        if (strncmp(l, keys[k].key, kl) == 0 && l[kl] == ':' && diag_kstat_next_u64(&p, &v)) {
                                h[keys[k].col] = sat(v * 1024);
                                break;
                        }
                }
}

/* pgscan/pgsteal: the kswapd, direct and khugepaged counters (and their old per-zone
 * forms); not pgscan_anon/_file (the same pages again) nor pgscan_direct_throttle. */
static bool reclaim_counter(const char *l, const char *prefix) {
        size_t n = strlen(prefix);

        if (strncmp(l, prefix, n) != 0)
                return false;
        l += n;
        if (strncmp(l, "direct_throttle", 15) == 0)
                return false;
        return strncmp(l, "kswapd", 6) == 0 || strncmp(l, "direct", 6) == 0 || strncmp(l, "khugepaged", 10) == 0;
}

static void host_vmstat(struct diag_rec_sampler *s, int64_t *h) {
        static const struct { const char *key; int col; } keys[] = {
                { "pgfault ", H_PGFAULT }, { "pgmajfault ", H_PGMAJFAULT }, { "pswpin ", H_PSWPIN },
                { "pswpout ", H_PSWPOUT }, { "oom_kill ", H_OOM_KILL },
        };
        uint64_t scan = 0, steal = 0;
        bool have_scan = false, have_steal = false;

        if (read_big(s, s->procfd, "vmstat") <= 0)
                return;
        for (const char *l = s->big.p; l && *l; l = next_line(l)) {
                const char *sp = strchr(l, ' ');
                uint64_t v;

                if (!sp)
                        continue;
                if (l[0] == 'p' && l[1] == 'g' && l[2] == 's') {
                        const char *p = sp;
                        if (reclaim_counter(l, "pgscan_") && diag_kstat_next_u64(&p, &v)) {
                                scan += v;
                                have_scan = true;
                        } else if (reclaim_counter(l, "pgsteal_") && diag_kstat_next_u64(&p, &v)) {
                                steal += v;
                                have_steal = true;
                        }
                        continue;
                }
                for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                        if (strncmp(l, keys[k].key, (size_t) (sp - l) + 1) == 0) {
                                const char *p = sp;
                                if (diag_kstat_next_u64(&p, &v))
                                        h[keys[k].col] = sat(v);
                                break;
                        }
        }
        if (have_scan)
                h[H_PGSCAN] = sat(scan);
        if (have_steal)
                h[H_PGSTEAL] = sat(steal);
}

/* PSI totals of a pressure file's text into some/full (left alone when absent). */
static void psi_totals(const char *text, int64_t *some, int64_t *full) {
        struct diag_psi psi;

        if (diag_psi_parse(text, &psi) < 0)
                return;
        if (some && psi.have[0])
                *some = sat(psi.total[0]);
        if (full && psi.have[1])
                *full = sat(psi.total[1]);
}

static void read_pressure(int dirfd, const char *path, int64_t *some, int64_t *full) {
        char buf[512];

        if (read_at(dirfd, path, buf, sizeof buf) > 0)
                psi_totals(buf, some, full);
}

static int sample_host(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        ssize_t row = diag_rec_add_row(iv, DIAG_REC_HOST);
        int64_t *h;

        if (row < 0)
                return -ENOMEM;
        h = &DIAG_REC_NUM(iv, DIAG_REC_HOST, row, 0);
        for (int i = 0; i < H__N; i++)
                h[i] = DIAG_REC_NA;
        h[H_NCPU] = s->ncpu;
        h[H_CLK_TCK] = s->clk_tck;
        host_stat(s, h);
        host_loadavg(s, h);
        host_meminfo(s, h);
        host_vmstat(s, h);
        read_pressure(s->procfd, "pressure/cpu", &h[H_PSI_CPU_SOME], &h[H_PSI_CPU_FULL]);
        read_pressure(s->procfd, "pressure/memory", &h[H_PSI_MEM_SOME], &h[H_PSI_MEM_FULL]);
        read_pressure(s->procfd, "pressure/io", &h[H_PSI_IO_SOME], &h[H_PSI_IO_FULL]);
        return h[H_CPU_USER] == DIAG_REC_NA ? -ENOENT : 0;
}

/* ------------------------------------------------------- disks, network */

/* A row of a table keyed by name (disks, interfaces): its integers, NULL on ENOMEM. */
static int64_t *add_named_row(struct diag_rec_interval *iv, enum diag_rec_table_id t, const char *name) {
        ssize_t row = diag_rec_add_row(iv, t);

        if (row < 0)
                return NULL;
        DIAG_REC_STR(iv, t, row, 0) = diag_rec_intern(iv->strings, name, strlen(name));
        return &DIAG_REC_NUM(iv, t, row, 0);
}

/* A partition follows its disk in /proc/diskstats and is named after it: the disk's
 * name and a number, with a "p" between when the disk's name ends in a digit. */
static bool is_partition(const char *disk, const char *name) {
        size_t n = strlen(disk);

        if (!n || strncmp(name, disk, n) != 0)
                return false;
        name += n;
        if (disk[n - 1] >= '0' && disk[n - 1] <= '9') {
                if (*name != 'p')
                        return false;
                name++;
        }
        if (!*name)
                return false;
        for (; *name; name++)
                if (*name < '0' || *name > '9')
                        return false;
        return true;
}

/* One line of a /proc table as a string of its own (the parsers look for ':' and
 * numbers up to the string's end, not the line's). */
static const char *line_copy(const char *l, char *buf, size_t size) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t) (nl - l) : strlen(l);

        if (n >= size)
                n = size - 1;
        memcpy(buf, l, n);
        buf[n] = 0;
        return buf;
}

static void sample_disks(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        char disk[32] = "";

        if (read_big(s, s->procfd, "diskstats") <= 0)
                return;
        for (const char *l = s->big.p; l && *l; l = next_line(l)) {
                struct diag_diskstat d;
                int64_t *v;
                char line[512];


                if (diag_diskstats_line(line_copy(l, line, sizeof line), &d) < 0 || is_partition(disk, d.name))
                        continue;
                snprintf(disk, sizeof disk, "%s", d.name);
                if ((strncmp(d.name, "loop", 4) == 0 || strncmp(d.name, "ram", 3) == 0) && d.rd_ios + d.wr_ios == 0)
                        continue;
                if (!(v = add_named_row(iv, DIAG_REC_DISK, d.name)))
                        return;
                v[DK_RD_IOS] = sat(d.rd_ios);
                v[DK_RD_SECTORS] = sat(d.rd_sectors);
                v[DK_WR_IOS] = sat(d.wr_ios);
                v[DK_WR_SECTORS] = sat(d.wr_sectors);
                v[DK_IO_MS] = sat(d.io_ticks);
                v[DK_INFLIGHT] = sat(d.in_flight);
                v[DK_WEIGHTED_MS] = sat(d.weighted_ms);
        }
        diag_rec_sort(iv, DIAG_REC_DISK);
}

static void sample_net(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        if (read_big(s, s->procfd, "net/dev") <= 0)
                return;
        for (const char *l = s->big.p; l && *l; l = next_line(l)) {
                struct diag_netdev d;
                int64_t *v;
                char line[512];


                if (diag_netdev_line(line_copy(l, line, sizeof line), &d) < 0)
                        continue;
                if (!(v = add_named_row(iv, DIAG_REC_NET, d.name)))
                        return;
                v[NT_RX_BYTES] = sat(d.rx_bytes);
                v[NT_RX_PACKETS] = sat(d.rx_packets);
                v[NT_RX_ERRS] = sat(d.rx_errs);
                v[NT_RX_DROP] = sat(d.rx_drop);
                v[NT_TX_BYTES] = sat(d.tx_bytes);
                v[NT_TX_PACKETS] = sat(d.tx_packets);
                v[NT_TX_ERRS] = sat(d.tx_errs);
                v[NT_TX_DROP] = sat(d.tx_drop);
        }
        diag_rec_sort(iv, DIAG_REC_NET);
}

/* ------------------------------------------------------------- cgroups */

static void cg_find_hierarchies(struct diag_rec_sampler *s) {
        struct diag_cgroup_mount m[CG_HIER_MAX];
        size_t n;

        if (read_big(s, s->procfd, "self/mountinfo") <= 0)
                return;
        n = diag_cgroup_mounts(s->big.p, m, ELEMENTSOF(m));
        for (size_t i = 0; i < n && s->nhier < CG_HIER_MAX; i++) {
                unsigned want = m[i].v2 ? m[i].ctrl : m[i].ctrl & (DIAG_CG_MEM | DIAG_CG_IO | DIAG_CG_CPU | DIAG_CG_CPUACCT);
                int fd;

                if (!want || (fd = open(m[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                        continue;
                s->hier[s->nhier++] = (struct hier) { .fd = fd, .v2 = m[i].v2, .ctrl = want };
                if (!m[i].v2 && (want & DIAG_CG_MEM))
                        s->memcg_v1 = true;
        }
}

static int pool_add(struct diag_rec_sampler *s, const char *str, size_t len, size_t *ret_off) {
        if (DIAG_GROW(s->cg_pool, s->pool_alloc, s->pool_len + len + 1) < 0)
                return -ENOMEM;
        memcpy(s->cg_pool + s->pool_len, str, len);
        s->cg_pool[s->pool_len + len] = 0;
        *ret_off = s->pool_len;
        s->pool_len += len + 1;
        return 0;
}

/* The relative path for openat() under a hierarchy: "." for "/". */
static const char *cg_rel(const struct diag_rec_sampler *s, size_t path) {
        const char *p = s->cg_pool + path;

        return p[1] ? p + 1 : ".";
}

/* path: "/" or "/a/b" (len bytes); walks below it. */
static void cg_walk(struct diag_rec_sampler *s, unsigned hi, char *path, size_t len, unsigned depth, size_t *count) {
        char dents[4096];
        size_t off;
        int fd;

        if (*count >= CG_WALK_MAX || DIAG_GROW(s->ent, s->aent, s->nent + 1) < 0 || pool_add(s, path, len, &off) < 0)
                return;
        s->ent[s->nent++] = (struct cgent) { .hier = hi, .path = off };
        (*count)++;
        if (depth >= CG_DEPTH_MAX)
                return;
        fd = openat(s->hier[hi].fd, len > 1 ? path + 1 : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        for (;;) {
                long n = syscall(SYS_getdents64, fd, dents, sizeof dents);

                if (n <= 0)
                        break;
                for (long i = 0; i < n;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *) (dents + i);
                        size_t nl = strlen(de->d_name);

                        i += de->d_reclen;
                        if (de->d_type != DT_DIR || de->d_name[0] == '.' || len + 1 + nl >= 4096)
                                continue;
                        if (len > 1)
                                path[len] = '/';
                        memcpy(path + (len > 1 ? len + 1 : 1), de->d_name, nl + 1);
                        cg_walk(s, hi, path, (len > 1 ? len + 1 : 1) + nl, depth + 1, count);
                        path[len] = 0;
                }
        }
        close(fd);
}

static const struct diag_rec_sampler *cmp_sampler;

static int cmp_ent(const void *a, const void *b) {
        const struct cgent *x = a, *y = b;
        int c = strcmp(cmp_sampler->cg_pool + x->path, cmp_sampler->cg_pool + y->path);
        bool vx = cmp_sampler->hier[x->hier].v2, vy = cmp_sampler->hier[y->hier].v2;

        if (c)
                return c;
        if (vx != vy)
                return vx ? 1 : -1;             /* "v1" < "v2" */
        return x->hier < y->hier ? -1 : x->hier > y->hier;
}

/* Walk every hierarchy; entries sorted by (path, version), one row per (path, version). */
static void cg_rewalk(struct diag_rec_sampler *s) {
        char path[4096];

        s->nent = s->nrows = s->pool_len = 0;
        for (unsigned hi = 0; hi < s->nhier; hi++) {
                size_t count = 0;
                strcpy(path, "/");
                cg_walk(s, hi, path, 1, 0, &count);
        }
        cmp_sampler = s;
        qsort(s->ent, s->nent, sizeof *s->ent, cmp_ent);
        for (size_t i = 0; i < s->nent; i++) {
                struct cgent *e = &s->ent[i];
                bool v2 = s->hier[e->hier].v2;

                if (s->nrows == 0 || s->rows[s->nrows - 1].v2 != v2 ||
                    strcmp(s->cg_pool + s->rows[s->nrows - 1].path, s->cg_pool + e->path) != 0) {
                        if (DIAG_GROW(s->rows, s->arows, s->nrows + 1) < 0)
                                break;
                        s->rows[s->nrows++] = (struct cgrow) { .path = e->path, .v2 = v2 };
                }
                e->row = s->nrows - 1;
        }
        s->since_walk = 0;
        s->rewalk = false;
}

/* Read file f of entry e into buf; NULL when absent (remembered) or gone (the row then is). */
static const char *cg_read(struct diag_rec_sampler *s, struct cgent *e, int f, char *buf, size_t size) {
        char path[4200];
        const char *rel = cg_rel(s, e->path);
        ssize_t n;
        struct stat st;

        if (e->missing & (1u << f) || s->rows[e->row].gone)
                return NULL;
        snprintf(path, sizeof path, "%s/%s", rel, cg_files[f]);
        n = read_at(s->hier[e->hier].fd, path, buf, size);
        if (n >= 0)
                return buf;
        if (n == -ENOENT || n == -ENODEV) {
                if (fstatat(s->hier[e->hier].fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        s->rows[e->row].gone = true;
                        s->rewalk = true;
                } else
                        e->missing |= 1u << f;
        }
        return NULL;
}

static int64_t cg_num(struct diag_rec_sampler *s, struct cgent *e, int f) {
        char buf[64];
        const char *t = cg_read(s, e, f, buf, sizeof buf);
        const char *p = t;
        uint64_t v;

        if (!t)
                return DIAG_REC_NA;
        if (strncmp(t, "max", 3) == 0)
                return 0;
        return diag_kstat_next_u64(&p, &v) ? sat(v) : DIAG_REC_NA;
}

static int64_t keyed_na(const char *text, const char *key) {
        int64_t v;

        return text && diag_kstat_keyed(text, key, &v) == 0 ? v : DIAG_REC_NA;
}

static void io_sum(void *ctx, const char *dev, int which, int64_t v) {
        int64_t *r = ctx;
        static const int col[DIAG_IO_N] = { CG_IO_RBYTES, CG_IO_WBYTES, CG_IO_RIOS, CG_IO_WIOS };

        (void) dev;
        r[col[which]] += v;
}

static void cg_read_v2(struct diag_rec_sampler *s, struct cgent *e, int64_t *v) {
        char buf[4096];
        const char *t;

        v[CG_MEM_CURRENT] = cg_num(s, e, F_MEM_CURRENT);
        v[CG_MEM_LIMIT] = cg_num(s, e, F_MEM_MAX);
        if ((t = cg_read(s, e, F_MEM_EVENTS, buf, sizeof buf))) {
                v[CG_MEM_HIGH_EVENTS] = keyed_na(t, "high");
                v[CG_MEM_MAX_EVENTS] = keyed_na(t, "max");
                v[CG_MEM_OOM] = keyed_na(t, "oom");
                v[CG_MEM_OOM_KILL] = keyed_na(t, "oom_kill");
        }
        if ((t = cg_read(s, e, F_IO_STAT, buf, sizeof buf))) {
                v[CG_IO_RBYTES] = v[CG_IO_WBYTES] = v[CG_IO_RIOS] = v[CG_IO_WIOS] = 0;
                diag_cgroup_iostat_each(t, io_sum, v);
        }
        if ((t = cg_read(s, e, F_CPU_STAT, buf, sizeof buf))) {
                v[CG_CPU_USAGE_US] = keyed_na(t, "usage_usec");
                v[CG_CPU_PERIODS] = keyed_na(t, "nr_periods");
                v[CG_CPU_THROTTLED] = keyed_na(t, "nr_throttled");
                v[CG_CPU_THROTTLED_US] = keyed_na(t, "throttled_usec");
        }
        if ((t = cg_read(s, e, F_CPU_PRESSURE, buf, sizeof buf)))
                psi_totals(t, &v[CG_PSI_CPU_SOME], NULL);
        if ((t = cg_read(s, e, F_MEM_PRESSURE, buf, sizeof buf)))
                psi_totals(t, &v[CG_PSI_MEM_SOME], &v[CG_PSI_MEM_FULL]);
        if ((t = cg_read(s, e, F_IO_PRESSURE, buf, sizeof buf)))
                psi_totals(t, &v[CG_PSI_IO_SOME], &v[CG_PSI_IO_FULL]);
}

static void cg_read_v1(struct diag_rec_sampler *s, struct cgent *e, int64_t *v) {
        unsigned ctrl = s->hier[e->hier].ctrl;
        char buf[8192];
        const char *t;
        int64_t x;

        if (ctrl & DIAG_CG_MEM) {
                v[CG_MEM_CURRENT] = cg_num(s, e, F_V1_USAGE);
                x = cg_num(s, e, F_V1_LIMIT);
                /* v1 says "no limit" with a number near 2^63 */
                v[CG_MEM_LIMIT] = x != DIAG_REC_NA && x >= (INT64_C(1) << 62) ? 0 : x;
                v[CG_MEM_FAILCNT] = cg_num(s, e, F_V1_FAILCNT);
                if ((t = cg_read(s, e, F_V1_OOM_CONTROL, buf, sizeof buf)))
                        v[CG_MEM_OOM_KILL] = keyed_na(t, "oom_kill");
        }
        if (ctrl & DIAG_CG_IO) {
                if ((t = cg_read(s, e, F_V1_BLKIO_BYTES, buf, sizeof buf))) {
                        v[CG_IO_RBYTES] = v[CG_IO_WBYTES] = 0;
                        diag_cgroup_blkio_each(t, DIAG_IO_RBYTES, DIAG_IO_WBYTES, io_sum, v);
                }
                if ((t = cg_read(s, e, F_V1_BLKIO_IOS, buf, sizeof buf))) {
                        v[CG_IO_RIOS] = v[CG_IO_WIOS] = 0;
                        diag_cgroup_blkio_each(t, DIAG_IO_RIOS, DIAG_IO_WIOS, io_sum, v);
                }
        }
        if (ctrl & DIAG_CG_CPU && (t = cg_read(s, e, F_CPU_STAT, buf, sizeof buf))) {
                v[CG_CPU_PERIODS] = keyed_na(t, "nr_periods");
                v[CG_CPU_THROTTLED] = keyed_na(t, "nr_throttled");
                x = keyed_na(t, "throttled_time");
                v[CG_CPU_THROTTLED_US] = x == DIAG_REC_NA ? x : x / 1000;
        }
        if (ctrl & DIAG_CG_CPUACCT) {
                x = cg_num(s, e, F_V1_CPUACCT);
                v[CG_CPU_USAGE_US] = x == DIAG_REC_NA ? x : x / 1000;
        }
}

static void sample_cgroups(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        if (s->nhier == 0)
                return;
        if (s->rewalk || s->since_walk >= CG_REWALK_EVERY || s->nrows == 0)
                cg_rewalk(s);
        s->since_walk++;
        for (size_t r = 0; r < s->nrows; r++) {
                s->rows[r].gone = false;
                for (int i = 0; i < CG__N; i++)
                        s->rows[r].v[i] = DIAG_REC_NA;
        }
        for (size_t i = 0; i < s->nent; i++) {
                struct cgent *e = &s->ent[i];

                if (s->hier[e->hier].v2)
                        cg_read_v2(s, e, s->rows[e->row].v);
                else
                        cg_read_v1(s, e, s->rows[e->row].v);
        }
        for (size_t r = 0; r < s->nrows; r++) {
                const char *path = s->cg_pool + s->rows[r].path;
                ssize_t row;

                if (s->rows[r].gone || (row = diag_rec_add_row(iv, DIAG_REC_CGROUP)) < 0)
                        continue;
                s->rows[r].id = diag_rec_intern(iv->strings, path, strlen(path));
                DIAG_REC_STR(iv, DIAG_REC_CGROUP, row, CG_PATH) = s->rows[r].id;
                DIAG_REC_STR(iv, DIAG_REC_CGROUP, row, CG_VERSION) = diag_rec_intern(iv->strings, s->rows[r].v2 ? "v2" : "v1", 2);
                memcpy(&DIAG_REC_NUM(iv, DIAG_REC_CGROUP, row, 0), s->rows[r].v, sizeof s->rows[r].v);
        }
        diag_rec_sort(iv, DIAG_REC_CGROUP);
}

/* CG_NPROCS: processes whose PR_CGROUP is the row's path, for the rows of the
 * version PR_CGROUP comes from (the v1 memory hierarchy, else cgroup2); NA for others. */
static void cg_count_procs(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        struct diag_rec_table *cg = &iv->t[DIAG_REC_CGROUP];
        uint32_t v1 = diag_rec_intern(iv->strings, "v1", 2);
        size_t need = 16, mask;

        while (need < cg->nrows * 2)
                need *= 2;
        if (need > s->cg_hash_size) {
                uint32_t *h = realloc(s->cg_hash, need * sizeof(*h));
                if (!h)
                        return;
                s->cg_hash = h;
                s->cg_hash_size = need;
        }
        mask = s->cg_hash_size - 1;
        memset(s->cg_hash, 0, s->cg_hash_size * sizeof(*s->cg_hash));
        for (size_t r = 0; r < cg->nrows; r++) {
                uint32_t id = DIAG_REC_STR(iv, DIAG_REC_CGROUP, r, CG_PATH);
                bool is_v1 = DIAG_REC_STR(iv, DIAG_REC_CGROUP, r, CG_VERSION) == v1;

                if (is_v1 != s->memcg_v1) {
                        DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_NPROCS) = DIAG_REC_NA;
                        continue;
                }
                DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_NPROCS) = 0;
                for (size_t i = (id * 2654435761u) & mask;; i = (i + 1) & mask)
                        if (!s->cg_hash[i]) {
                                s->cg_hash[i] = (uint32_t) r + 1;
                                break;
                        }
        }
        for (size_t p = 0; p < iv->t[DIAG_REC_PROC].nrows; p++) {
                uint32_t id = DIAG_REC_STR(iv, DIAG_REC_PROC, p, PR_CGROUP);

                if (!id)
                        continue;
                for (size_t i = (id * 2654435761u) & mask; s->cg_hash[i]; i = (i + 1) & mask)
                        if (DIAG_REC_STR(iv, DIAG_REC_CGROUP, s->cg_hash[i] - 1, CG_PATH) == id) {
                                DIAG_REC_NUM(iv, DIAG_REC_CGROUP, s->cg_hash[i] - 1, CG_NPROCS)++;
                                break;
                        }
        }
}

/* ----------------------------------------------------------- processes */

static int cmp_pcache(const void *a, const void *b) {
        const struct pcache *x = a, *y = b;

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

static const struct pcache *cache_find(const struct diag_rec_sampler *s, pid_t pid, int64_t start) {
        size_t lo = 0, hi = s->ncache;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct pcache *c = &s->cache[mid];
                if (c->pid == pid && c->start == start)
                        return c;
                if (c->pid < pid || (c->pid == pid && c->start < start))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

/* The cached entry of pid (whatever its start), to take its open stat file. */
static struct pcache *cache_find_pid(struct diag_rec_sampler *s, pid_t pid) {
        size_t lo = 0, hi = s->ncache;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (s->cache[mid].pid < pid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < s->ncache && s->cache[lo].pid == pid ? &s->cache[lo] : NULL;
}

static void close_statfd(struct diag_rec_sampler *s, int *fd) {
        if (*fd < 0)
                return;
        close(*fd);
        *fd = -1;
        s->nstatfds--;
}

static void close_cache_fds(struct diag_rec_sampler *s, struct pcache *c, size_t n) {
        for (size_t i = 0; i < n; i++)
                close_statfd(s, &c[i].statfd);
}

/* Read /proc/PID/stat through the file kept open for pid, else a new one (kept when
 * the budget allows: *fd then holds it, counted). Bytes read, or -ESRCH. */
static ssize_t read_stat(struct diag_rec_sampler *s, const char *name, pid_t pid, char *buf, size_t size, int *fd) {
        struct pcache *old = cache_find_pid(s, pid);
        char path[48];
        ssize_t n;

        *fd = -1;
        if (old && old->statfd >= 0) {
                *fd = old->statfd;
                old->statfd = -1;
                do
                        n = pread(*fd, buf, size - 1, 0);
                while (n < 0 && errno == EINTR);
                if (n > 0) {
                        buf[n] = 0;
                        return n;
                }
                close_statfd(s, fd);    /* gone, or its pid is another process's now */
        }
        snprintf(path, sizeof path, "%s/stat", name);
        *fd = openat(s->procfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (*fd < 0)
                return -ESRCH;
        do
                n = read(*fd, buf, size - 1);
        while (n < 0 && errno == EINTR);
        if (n <= 0 || s->nstatfds >= s->statfd_budget) {
                close(*fd);
                *fd = -1;
        } else {
                s->nstatfds++;
        }
        if (n <= 0)
                return -ESRCH;
        buf[n] = 0;
        return n;
}

/* The command line, NULs as spaces, at most DIAG_REC_CMD_MAX bytes; "[comm]" when empty. */
static int read_cmd(struct diag_rec_sampler *s, const char *pid, const char *comm, struct diag_rec_strings *strings,
                    uint32_t *ret) {
        char path[48], buf[DIAG_REC_CMD_MAX + 1];
        ssize_t n;

        snprintf(path, sizeof path, "%s/cmdline", pid);
        n = read_at(s->procfd, path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == 0 || buf[i] == '\n')
                        buf[i] = ' ';
        while (n > 0 && buf[n - 1] == ' ')
                n--;
        if (n == 0)
                n = snprintf(buf, sizeof buf, "[%.*s]", DIAG_REC_CMD_MAX - 2, comm);
        *ret = diag_rec_intern(strings, buf, (size_t) n);
        return *ret == UINT32_MAX ? -ENOMEM : 0;
}

static int read_cgroup(struct diag_rec_sampler *s, const char *pid, struct diag_rec_strings *strings, uint32_t *ret) {
        char path[48], buf[4096], cg[1024];
        ssize_t n;

        snprintf(path, sizeof path, "%s/cgroup", pid);
        n = read_at(s->procfd, path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        *ret = 0;
        if (diag_proc_cgroup_path(buf, s->memcg_v1 ? "memory" : NULL, cg, sizeof cg) == 0)
                *ret = diag_rec_intern(strings, cg, strlen(cg));
        return *ret == UINT32_MAX ? -ENOMEM : 0;
}

static bool gone(int r) {
        return r == -ENOENT || r == -ESRCH;
}

/* "TID (comm) S ...": state and comm without parsing the numbers. */
static bool stat_state(const char *buf, char *ret_state, const char **ret_comm, size_t *ret_len) {
        const char *l = strchr(buf, '('), *r = strrchr(buf, ')');

        if (!l || !r || r < l || r[1] != ' ' || !r[2])
                return false;
        *ret_state = r[2];
        *ret_comm = l + 1;
        *ret_len = (size_t) (r - l - 1);
        return true;
}

static void add_dstate(struct diag_rec_sampler *s, struct diag_rec_interval *iv, pid_t pid, pid_t tid,
                       const char *comm, size_t comm_len) {
        char path[64], wchan[128];
        ssize_t row = diag_rec_add_row(iv, DIAG_REC_DSTATE);
        ssize_t n;

        if (row < 0)
                return;
        snprintf(path, sizeof path, "%d/task/%d/wchan", pid, tid);
        n = read_at(s->procfd, path, wchan, sizeof wchan);
        if (n < 0 || (n == 1 && wchan[0] == '0'))
                n = 0;
        DIAG_REC_NUM(iv, DIAG_REC_DSTATE, row, DS_TID) = tid;
        DIAG_REC_NUM(iv, DIAG_REC_DSTATE, row, DS_PID) = pid;
        DIAG_REC_STR(iv, DIAG_REC_DSTATE, row, DS_COMM) = diag_rec_intern(iv->strings, comm, comm_len);
        DIAG_REC_STR(iv, DIAG_REC_DSTATE, row, DS_WCHAN) = diag_rec_intern(iv->strings, wchan, (size_t) n);
}

/* The threads of pid in state D. */
static void scan_tasks(struct diag_rec_sampler *s, struct diag_rec_interval *iv, pid_t pid) {
        char path[48];
        int fd;

        snprintf(path, sizeof path, "%d/task", pid);
        fd = openat(s->procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        for (;;) {
                long n = syscall(SYS_getdents64, fd, s->tdents, sizeof s->tdents);

                if (n <= 0)
                        break;
                for (long i = 0; i < n;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *) (s->tdents + i);
                        char buf[512], state;
                        const char *comm;
                        size_t len;
                        pid_t tid;

                        i += de->d_reclen;
                        if (diag_parse_pid(de->d_name, &tid) < 0)
                                continue;
                        snprintf(path, sizeof path, "%s/stat", de->d_name);
                        if (read_at(fd, path, buf, sizeof buf) > 0 && stat_state(buf, &state, &comm, &len) && state == 'D')
                                add_dstate(s, iv, pid, tid, comm, len);
                }
        }
        close(fd);
}

static int cache_room(struct diag_rec_sampler *s) {
        return DIAG_GROW(s->next, s->anext, s->nnext + 1);
}

/* One process; -ESRCH when it went away while read (left out). */
static int sample_proc_fd(struct diag_rec_sampler *s, struct diag_rec_interval *iv, const char *name, pid_t pid,
                          int dstate, int *statfd) {
        char path[48], buf[1024];
        struct diag_stat st;
        struct stat sb;
        const struct pcache *c;
        struct pcache e;
        int64_t rd = DIAG_REC_NA, wr = DIAG_REC_NA, *v;
        ssize_t n, row;
        int r;

        n = read_stat(s, name, pid, buf, sizeof buf, statfd);
        if (n <= 0)
                return -ESRCH;
        if (diag_stat_parse(buf, &st) < 0 || st.n < 21)
                return -EINVAL;
        e = (struct pcache) { .pid = pid, .start = sat(DIAG_STAT_FIELD(&st, 22)), .statfd = -1 };
        e.cpu = sat(DIAG_STAT_FIELD(&st, 14)) + sat(DIAG_STAT_FIELD(&st, 15));
        e.comm = diag_rec_intern(iv->strings, st.comm, strlen(st.comm));
        c = cache_find(s, pid, e.start);
        /* exec() keeps pid and start but changes comm: read again then */
        if (c && c->comm == e.comm) {
                e.cmd = c->cmd;
                e.cgroup = c->cgroup;
        } else {
                c = NULL;
                if ((r = read_cmd(s, name, st.comm, iv->strings, &e.cmd)) < 0 ||
                    (r = read_cgroup(s, name, iv->strings, &e.cgroup)) < 0)
                        return gone(r) ? -ESRCH : r;
        }
        /* /proc/PID/io, statm and the owner cost as much as stat: an idle process's are
         * kept (while stat's rss, which lags but moves, stays the same) */
        e.stat_rss = sat(DIAG_STAT_FIELD(&st, 24));
        if (c && c->cpu == e.cpu && !c->io_moved && st.state != 'D' && c->stat_rss == e.stat_rss &&
            (s->round + (uint64_t) pid) % REFRESH_EVERY != 0) {
                e.uid = c->uid;
                e.rd = c->rd;
                e.wr = c->wr;
                e.rss = c->rss;
        } else {
                if (fstatat(s->procfd, name, &sb, 0) < 0)
                        return -ESRCH;
                e.uid = sb.st_uid;
                snprintf(path, sizeof path, "%s/io", name);
                n = read_at(s->procfd, path, buf, sizeof buf);
                if (n >= 0) {
                        int64_t x;
                        if (diag_kstat_keyed(buf, "read_bytes", &x) == 0)
                                rd = x;
                        if (diag_kstat_keyed(buf, "write_bytes", &x) == 0)
                                wr = x;
                } else if (gone((int) n))
                        return -ESRCH;
                e.rd = rd;
                e.wr = wr;
                e.io_moved = c && (c->rd != rd || c->wr != wr);
                /* stat's rss lags by the per-CPU counters' batches (hundreds of KiB, a
                 * fifth of a small process); statm sums them, as VmRSS does */
                e.rss = DIAG_REC_NA;
                snprintf(path, sizeof path, "%s/statm", name);
                n = read_at(s->procfd, path, buf, sizeof buf);
                if (n > 0) {
                        unsigned long long size, resident;
                        if (sscanf(buf, "%llu %llu", &size, &resident) == 2)
                                e.rss = sat(resident * (uint64_t) s->page_size);
                } else if (gone((int) n))
                        return -ESRCH;
        }
        rd = e.rd;
        wr = e.wr;
        if (cache_room(s) < 0 || (row = diag_rec_add_row(iv, DIAG_REC_PROC)) < 0)
                return -ENOMEM;
        e.statfd = *statfd;             /* the entry holds it now */
        *statfd = -1;
        s->next[s->nnext++] = e;
        DIAG_REC_STR(iv, DIAG_REC_PROC, row, PR_COMM) = e.comm;
        DIAG_REC_STR(iv, DIAG_REC_PROC, row, PR_CMD) = e.cmd;
        DIAG_REC_STR(iv, DIAG_REC_PROC, row, PR_CGROUP) = e.cgroup;
        v = &DIAG_REC_NUM(iv, DIAG_REC_PROC, row, 0);
        v[PR_PID] = pid;
        v[PR_START] = e.start;
        v[PR_PPID] = sat(DIAG_STAT_FIELD(&st, 4));
        v[PR_UID] = e.uid;
        v[PR_STATE] = st.state;
        v[PR_UTIME] = sat(DIAG_STAT_FIELD(&st, 14));
        v[PR_STIME] = sat(DIAG_STAT_FIELD(&st, 15));
        v[PR_MINFLT] = sat(DIAG_STAT_FIELD(&st, 10));
        v[PR_MAJFLT] = sat(DIAG_STAT_FIELD(&st, 12));
        v[PR_THREADS] = sat(DIAG_STAT_FIELD(&st, 20));
        v[PR_VSZ] = sat(DIAG_STAT_FIELD(&st, 23));
        v[PR_RSS] = e.rss != DIAG_REC_NA ? e.rss : sat(DIAG_STAT_FIELD(&st, 24) * (uint64_t) s->page_size);
        v[PR_READ_BYTES] = rd;
        v[PR_WRITE_BYTES] = wr;
        if (dstate != DSTATE_NONE) {
                size_t before = iv->t[DIAG_REC_DSTATE].nrows;
                const struct pcache *was = cache_find(s, pid, e.start);

                if (v[PR_THREADS] <= 1) {
                        if (st.state == 'D')
                                add_dstate(s, iv, pid, pid, st.comm, strlen(st.comm));
                } else if (dstate == DSTATE_ALL || st.state == 'D' || (was && was->had_dstate) ||
                           (s->round + (uint64_t) pid) % DSCAN_EVERY == 0) {
                        scan_tasks(s, iv, pid);
                } else if (was) {
                        s->next[s->nnext - 1].had_dstate = was->had_dstate;
                        return 0;
                }
                s->next[s->nnext - 1].had_dstate = iv->t[DIAG_REC_DSTATE].nrows > before;
        }
        return 0;
}

static int sample_proc(struct diag_rec_sampler *s, struct diag_rec_interval *iv, const char *name, pid_t pid,
                       int dstate) {
        int fd = -1, r = sample_proc_fd(s, iv, name, pid, dstate, &fd);

        close_statfd(s, &fd);           /* left out: its file is not kept */
        return r;
}

static int sample_procs(struct diag_rec_sampler *s, struct diag_rec_interval *iv, int dstate) {
        struct pcache *t;
        size_t tn;

        if (s->strings != iv->strings) {        /* ids of another interner mean nothing */
                s->strings = iv->strings;
                close_cache_fds(s, s->cache, s->ncache);
                s->ncache = 0;
        }
        s->nnext = 0;
        s->round++;
        if (lseek(s->procfd, 0, SEEK_SET) < 0)
                return negative_errno();
        for (;;) {
                long n = syscall(SYS_getdents64, s->procfd, s->dents, sizeof s->dents);

                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                for (long i = 0; i < n;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *) (s->dents + i);
                        pid_t pid;

                        i += de->d_reclen;
                        if (de->d_name[0] < '1' || de->d_name[0] > '9' || diag_parse_pid(de->d_name, &pid) < 0)
                                continue;
                        if (sample_proc(s, iv, de->d_name, pid, dstate) == -ENOMEM)
                                return -ENOMEM;
                }
        }
        diag_rec_sort(iv, DIAG_REC_PROC);
        diag_rec_sort(iv, DIAG_REC_DSTATE);
        /* the next interval looks up this one's processes (in pid order already, as /proc lists them) */
        for (size_t i = 1; i < s->nnext; i++)
                if (cmp_pcache(&s->next[i - 1], &s->next[i]) > 0) {
                        qsort(s->next, s->nnext, sizeof *s->next, cmp_pcache);
                        break;
                }
        /* the stat files of processes gone (not taken by this scan) */
        close_cache_fds(s, s->cache, s->ncache);
        t = s->cache;
        s->cache = s->next;
        s->next = t;
        tn = s->acache;
        s->acache = s->anext;
        s->anext = tn;
        s->ncache = s->nnext;
        return 0;
}

/* ------------------------------------------------------------ kmsg */

static void queue_event(struct diag_rec_sampler *s, const char *kind, uint64_t usec, pid_t pid, const char *comm,
                        int64_t rss, const char *path, const char *text) {
        struct diag_rec_interval *q = &s->pend;
        struct diag_rec_strings *st = s->pend_strings;
        ssize_t row;

        if (q->t[DIAG_REC_EVENT].nrows >= EV_QUEUE_MAX) {
                struct diag_rec_table *tb = &q->t[DIAG_REC_EVENT];
                memmove(tb->str, tb->str + EV__NS, (tb->nrows - 1) * EV__NS * sizeof(*tb->str));
                memmove(tb->num, tb->num + EV__N, (tb->nrows - 1) * EV__N * sizeof(*tb->num));
                tb->nrows--;
                s->dropped++;
        }
        if ((row = diag_rec_add_row(q, DIAG_REC_EVENT)) < 0) {
                s->dropped++;
                return;
        }
        DIAG_REC_STR(q, DIAG_REC_EVENT, row, EV_KIND) = diag_rec_intern(st, kind, strlen(kind));
        DIAG_REC_STR(q, DIAG_REC_EVENT, row, EV_COMM) = comm ? diag_rec_intern(st, comm, strlen(comm)) : 0;
        DIAG_REC_STR(q, DIAG_REC_EVENT, row, EV_TEXT) = diag_rec_intern(st, text, strlen(text));
        DIAG_REC_STR(q, DIAG_REC_EVENT, row, EV_PATH) = path ? diag_rec_intern(st, path, strlen(path)) : 0;
        DIAG_REC_NUM(q, DIAG_REC_EVENT, row, EV_TIME_NS) = diag_kmsg_realtime_ns(usec);
        DIAG_REC_NUM(q, DIAG_REC_EVENT, row, EV_PID) = pid > 0 ? pid : DIAG_REC_NA;
        DIAG_REC_NUM(q, DIAG_REC_EVENT, row, EV_RSS) = rss;
        DIAG_REC_NUM(q, DIAG_REC_EVENT, row, EV_COUNT) = 1;
}

/* One record; 1 when it was an OOM kill. */
static int kmsg_line(struct diag_rec_sampler *s, uint64_t usec, const char *text) {
        struct diag_kmsg_line l;

        switch (diag_kmsg_classify(text, &l)) {
        case DIAG_KMSG_OOM_KILL:
                s->oom_kill_seen = true;
                s->oom_pid = l.pid;
                snprintf(s->oom_path, sizeof s->oom_path, "%s", l.oom_memcg[0] ? l.oom_memcg : l.task_memcg);
                return 0;
        case DIAG_KMSG_OOM_KILLED: {
                bool same = s->oom_kill_seen && (s->oom_pid <= 0 || s->oom_pid == l.pid);
                uint64_t kb = l.anon_kb + l.file_kb + l.shmem_kb;

                queue_event(s, DIAG_REC_EV_OOM, usec, l.pid, l.comm, sat(kb * 1024), same ? s->oom_path : NULL, text);
                s->oom_kill_seen = false;
                return 1;
        }
        case DIAG_KMSG_HUNG:
                queue_event(s, DIAG_REC_EV_HUNG, usec, l.pid, l.comm, DIAG_REC_NA, NULL, text);
                return 0;
        case DIAG_KMSG_IOERR:
                queue_event(s, DIAG_REC_EV_IOERR, usec, -1, NULL, DIAG_REC_NA, NULL, text);
                return 0;
        default:
                return 0;
        }
}

int diag_rec_sampler_poll_kmsg(struct diag_rec_sampler *s) {
        char buf[8192];
        int kills = 0;

        if (!s || s->kmsg_fd < 0)
                return 0;
        for (unsigned i = 0; i < 100000; i++) {
                struct diag_kmsg_record rec;
                ssize_t n = read(s->kmsg_fd, buf, sizeof buf - 1);

                if (n < 0 && (errno == EPIPE || errno == EINTR))
                        continue;       /* EPIPE: records overwritten before we read them */
                if (n <= 0)
                        break;
                buf[n] = 0;
                if (diag_kmsg_parse_record(buf, &rec) == 0)
                        kills += kmsg_line(s, rec.usec, rec.text);
        }
        return kills;
}

const struct diag_rec_interval *diag_rec_sampler_pending(const struct diag_rec_sampler *s) {
        return &s->pend;
}

int diag_rec_sampler_kmsg_fd(const struct diag_rec_sampler *s) {
        return s ? s->kmsg_fd : -1;
}

/* The queue's events into iv (strings interned again into iv's). */
static void take_events(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        const struct diag_rec_interval *q = &s->pend;

        for (size_t r = 0; r < q->t[DIAG_REC_EVENT].nrows; r++) {
                ssize_t row = diag_rec_add_row(iv, DIAG_REC_EVENT);

                if (row < 0)
                        break;
                for (int c = 0; c < EV__NS; c++) {
                        const char *str = diag_rec_str(s->pend_strings, DIAG_REC_STR(q, DIAG_REC_EVENT, r, c));
                        DIAG_REC_STR(iv, DIAG_REC_EVENT, row, c) = diag_rec_intern(iv->strings, str, strlen(str));
                }
                memcpy(&DIAG_REC_NUM(iv, DIAG_REC_EVENT, row, 0), &DIAG_REC_NUM(q, DIAG_REC_EVENT, r, 0),
                       EV__N * sizeof(int64_t));
        }
        if (s->dropped) {
                ssize_t row = diag_rec_add_row(iv, DIAG_REC_EVENT);
                char text[96];

                if (row >= 0) {
                        int n = snprintf(text, sizeof text, "kernel log events not kept: more than %d between intervals",
                                         EV_QUEUE_MAX);
                        DIAG_REC_STR(iv, DIAG_REC_EVENT, row, EV_KIND) = diag_rec_intern(iv->strings, DIAG_REC_EV_DROPS,
                                                                                         strlen(DIAG_REC_EV_DROPS));
                        DIAG_REC_STR(iv, DIAG_REC_EVENT, row, EV_TEXT) = diag_rec_intern(iv->strings, text, (size_t) n);
                        DIAG_REC_NUM(iv, DIAG_REC_EVENT, row, EV_TIME_NS) = iv->realtime_ns;
                        DIAG_REC_NUM(iv, DIAG_REC_EVENT, row, EV_PID) = DIAG_REC_NA;
                        DIAG_REC_NUM(iv, DIAG_REC_EVENT, row, EV_RSS) = DIAG_REC_NA;
                        DIAG_REC_NUM(iv, DIAG_REC_EVENT, row, EV_COUNT) = sat(s->dropped);
                }
                s->dropped = 0;
        }
        diag_rec_interval_clear(&s->pend);
        diag_rec_strings_reset(s->pend_strings);
}

/* ------------------------------------------------------------ sampler */

int diag_rec_sampler_new(struct diag_rec_sampler **ret, const struct diag_rec_sampler_opts *opts) {
        struct diag_rec_sampler *s = calloc(1, sizeof(*s));
        const char *proc = opts && opts->proc ? opts->proc : "/proc";

        if (!s)
                return -ENOMEM;
        s->kmsg_fd = -1;
        s->want_cgroups = !opts || opts->cgroups;
        s->want_dstate = !opts || opts->dstate;
        s->procfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->procfd < 0) {
                int r = negative_errno();
                free(s);
                return r;
        }
        s->pend_strings = diag_rec_strings_new();
        if (!s->pend_strings) {
                diag_rec_sampler_free(s);
                return -ENOMEM;
        }
        diag_rec_interval_init(&s->pend, s->pend_strings);
        s->page_size = sysconf(_SC_PAGESIZE);
        /* stat files kept open: room for them under the fd limit (raised to the hard
         * limit, at most 65536), with 256 left for everything else */
        {
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
                        if (rl.rlim_cur < want) {
                                rl.rlim_cur = want;
                                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                        (void) getrlimit(RLIMIT_NOFILE, &rl);
                        }
                        s->statfd_budget = rl.rlim_cur > 512 && rl.rlim_cur != RLIM_INFINITY ? (size_t) rl.rlim_cur - 256 : 0;
                }
        }
        s->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        s->clk_tck = sysconf(_SC_CLK_TCK);
        if (s->ncpu <= 0)
                s->ncpu = DIAG_REC_NA;
        if (s->clk_tck <= 0)
                s->clk_tck = DIAG_REC_NA;
        if (s->want_cgroups)
                cg_find_hierarchies(s);
        else if (read_big(s, s->procfd, "self/mountinfo") > 0) {
                /* the processes' cgroup still follows the v1 memory hierarchy when there is one */
                struct diag_cgroup_mount m[CG_HIER_MAX];
                size_t n = diag_cgroup_mounts(s->big.p, m, ELEMENTSOF(m));
                for (size_t i = 0; i < n; i++)
                        if (!m[i].v2 && (m[i].ctrl & DIAG_CG_MEM))
                                s->memcg_v1 = true;
        }
        if (!opts || opts->kmsg) {
                /* unreadable (not root, dmesg_restrict): no events */
                s->kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                if (s->kmsg_fd >= 0)
                        (void) lseek(s->kmsg_fd, 0, SEEK_END);
        }
        *ret = s;
        return 0;
}

void diag_rec_sampler_free(struct diag_rec_sampler *s) {
        if (!s)
                return;
        if (s->procfd >= 0)
                close(s->procfd);
        if (s->kmsg_fd >= 0)
                close(s->kmsg_fd);
        for (size_t i = 0; i < s->nhier; i++)
                close(s->hier[i].fd);
        diag_rec_interval_free(&s->pend);
        diag_rec_strings_free(s->pend_strings);
        free(s->big.p);
        close_cache_fds(s, s->cache, s->ncache);
        free(s->cache);
        free(s->next);
        free(s->ent);
        free(s->rows);
        free(s->cg_pool);
        free(s->cg_hash);
        free(s);
}

void diag_rec_sampler_forget(struct diag_rec_sampler *s) {
        close_cache_fds(s, s->cache, s->ncache);
        s->ncache = 0;
        s->strings = NULL;
}

int diag_rec_sample(struct diag_rec_sampler *s, struct diag_rec_interval *iv) {
        uint64_t t0 = diag_now_ns(CLOCK_BOOTTIME);
        int64_t blocked;
        int rh, rp;

        diag_rec_interval_clear(iv);
        iv->realtime_ns = (int64_t) diag_now_ns(CLOCK_REALTIME);
        iv->boottime_ns = (int64_t) t0;
        rh = sample_host(s, iv);
        sample_disks(s, iv);
        sample_net(s, iv);
        if (s->want_cgroups)
                sample_cgroups(s, iv);
        /* every thread is looked at when the kernel counts some blocked on IO */
        blocked = iv->t[DIAG_REC_HOST].nrows ? DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, H_PROCS_BLOCKED) : DIAG_REC_NA;
        rp = sample_procs(s, iv, !s->want_dstate ? DSTATE_NONE :
                                 blocked == DIAG_REC_NA || blocked > 0 ? DSTATE_ALL : DSTATE_SOME);
        if (iv->t[DIAG_REC_HOST].nrows)
                DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, H_NR_PROCS) = (int64_t) iv->t[DIAG_REC_PROC].nrows;
        if (s->want_cgroups)
                cg_count_procs(s, iv);
        (void) diag_rec_sampler_poll_kmsg(s);
        take_events(s, iv);
        iv->took_us = (uint32_t) MIN((diag_now_ns(CLOCK_BOOTTIME) - t0) / 1000, UINT32_MAX);
        if (rp == -ENOMEM)
                return rp;
        return rh < 0 && rp < 0 ? rp : 0;
}
