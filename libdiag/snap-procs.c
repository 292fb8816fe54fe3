/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-snap part "procs": every process, from two readings rate_ms apart (CPU,
 * major faults, IO and RSS growth are their difference), with PSS split from
 * smaps_rollup; the top processes by CPU, memory, IO and major faults; groups by
 * command line (a fork explosion is one line); the process tree.
 * Reads /proc only, never a process's own files beyond /proc/PID; writes
 * processes.txt, processes.json, top.txt, groups.txt and tree.txt.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag/proc.h"
#include "diag/snap.h"
#include "diag/util.h"

/* A group of at least this many processes with one command line ... */
#define PROCS_GROUP_MIN_COUNT 8
/* ... holding more than this share of MemTotal (PSS) is the incident. */
#define PROCS_GROUP_MEM_PCT 20.0
/* ... or, all in one memory cgroup with a limit below MemTotal, more than this
 * share of that limit (PSS): the group is what fills its cgroup. */
#define PROCS_GROUP_LIMIT_PCT 75.0
/* One process holding more than this share of MemTotal (PSS, or RSS without it). */
#define PROCS_ONE_MEM_PCT 50.0
/* RSS grown by at least this much during the window. */
#define PROCS_GROW_BYTES (64ULL << 20)
/* Major faults per second of one process at or above this. */
#define PROCS_MAJFLT_PER_S 200.0
/* At most this many findings of each kind. */
#define PROCS_FINDINGS_MAX 5

/* Stop reading processes this long before the deadline: the files take time to write. */
#define PROCS_WRITE_RESERVE_MS 150

#define PROCS_MAX 65536                 /* processes looked at */
#define PROCS_CMD_MAX 256               /* bytes of a command line kept */
#define PROCS_TOP 20
#define PROCS_TREE_DEPTH 64
#define PROCS_TREE_LINES 20000

struct proc {
        pid_t pid, ppid;
        uid_t uid;
        char state;
        bool gone, reread, have_smaps, have_io, have_fds, kthread;
        unsigned long long start_ticks;
        uint64_t cpu_ticks[2], majflt[2], rss[2], rbytes[2], wbytes[2];
        uint64_t t_ns[2];               /* CLOCK_MONOTONIC of each reading of this process */
        uint64_t pss, pss_anon, pss_file, pss_shmem, priv, shared;
        long threads;
        unsigned fds;
        int oom_score;
        char cmd[PROCS_CMD_MAX];
        char cgroup[128];
        const char *memcg;              /* its memory cgroup (diag_snap_memcg()), NULL if unknown */
        int64_t memcg_limit;            /* that cgroup's limit, 0 none, -1 unknown */
        /* derived */
        double cpu_pct, majflt_s, rbytes_s, wbytes_s;
        size_t group;
};

struct group {
        const char *cmd;
        size_t count, first;
        uint64_t pss, priv, shared;
        unsigned long long start_min, start_max;
        pid_t parent;                   /* the parent of more than half of them, or 0 */
        const char *memcg;              /* the memory cgroup they all are in, or NULL */
        int64_t memcg_limit;
};

static long page_size, hz;

/* /proc/PID/stat after the comm: state, ppid, majflt, utime+stime, threads, start, rss. */
static int read_stat(int procfd, struct proc *p, int k) {
        char path[48], buf[1024];
        struct diag_stat st;
        ssize_t n;

        snprintf(path, sizeof path, "%d/stat", p->pid);
        p->t_ns[k] = diag_now_ns(CLOCK_MONOTONIC);
        n = diag_read_small_at(procfd, path, buf, sizeof buf);
        if (n <= 0)
                return n < 0 ? (int) n : -ENOENT;
        if (diag_stat_parse(buf, &st) < 0 || st.n < 21)
                return -EINVAL;
        p->state = st.state;
        p->ppid = (pid_t) DIAG_STAT_FIELD(&st, 4);
        p->majflt[k] = DIAG_STAT_FIELD(&st, 12);
        p->cpu_ticks[k] = DIAG_STAT_FIELD(&st, 14) + DIAG_STAT_FIELD(&st, 15);
        p->threads = (long) DIAG_STAT_FIELD(&st, 20);
        if (k == 0)
                p->start_ticks = DIAG_STAT_FIELD(&st, 22);
        else if (p->start_ticks != DIAG_STAT_FIELD(&st, 22))
                return -ESRCH;          /* the pid was reused */
        p->rss[k] = DIAG_STAT_FIELD(&st, 24) * (uint64_t) page_size;
        return 0;
}

static int read_io(int procfd, struct proc *p, int k) {
        char path[48], buf[512], *l;
        ssize_t n;

        snprintf(path, sizeof path, "%d/io", p->pid);
        n = diag_read_small_at(procfd, path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        l = strstr(buf, "\nread_bytes: ");
        if (l)
                p->rbytes[k] = strtoull(l + 13, NULL, 10);
        l = strstr(buf, "\nwrite_bytes: ");
        if (l)
                p->wbytes[k] = strtoull(l + 14, NULL, 10);
        return l ? 0 : -EINVAL;
}

static uint64_t kb_field(const char *buf, const char *key) {
        const char *l = strstr(buf, key);
        return l ? strtoull(l + strlen(key), NULL, 10) * 1024 : 0;
}

static void read_smaps(int procfd, struct proc *p) {
        char path[48], buf[2048];
        ssize_t n;

        snprintf(path, sizeof path, "%d/smaps_rollup", p->pid);
        n = diag_read_small_at(procfd, path, buf, sizeof buf);
        if (n <= 0)
                return;
        p->pss = kb_field(buf, "\nPss:");
        p->pss_anon = kb_field(buf, "\nPss_Anon:");
        p->pss_file = kb_field(buf, "\nPss_File:");
        p->pss_shmem = kb_field(buf, "\nPss_Shmem:");
        p->priv = kb_field(buf, "\nPrivate_Clean:") + kb_field(buf, "\nPrivate_Dirty:");
        p->shared = kb_field(buf, "\nShared_Clean:") + kb_field(buf, "\nShared_Dirty:");
        p->have_smaps = strstr(buf, "\nPss:") != NULL;
}

/* The figures read once, in the second reading. */
static void read_rest(int procfd, struct proc *p) {
        char path[48], buf[PROCS_CMD_MAX], cg[2048];
        struct stat st;
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "%d", p->pid);
        if (fstatat(procfd, path, &st, 0) == 0)
                p->uid = st.st_uid;
        snprintf(path, sizeof path, "%d/cmdline", p->pid);
        n = diag_read_small_at(procfd, path, p->cmd, sizeof p->cmd);
        if (n > 0) {
                for (ssize_t i = 0; i < n; i++)
                        if (p->cmd[i] == 0 || p->cmd[i] == '\n' || p->cmd[i] == '\t')
                                p->cmd[i] = ' ';
                p->cmd[MIN((size_t) n, sizeof p->cmd - 1)] = 0;
                diag_strip(p->cmd);
        }
        if (n <= 0 || !p->cmd[0]) {
                snprintf(path, sizeof path, "%d/comm", p->pid);
                if (diag_read_small_at(procfd, path, buf, sizeof buf) > 0)
                        snprintf(p->cmd, sizeof p->cmd, "[%s]", diag_strip(buf));
                p->kthread = true;
        }
        if (!p->kthread && p->rss[1])
                read_smaps(procfd, p);
        snprintf(path, sizeof path, "%d/fd", p->pid);
        fd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                DIR *d = fdopendir(fd);
                struct dirent *de;

                if (d) {
                        while ((de = readdir(d)))
                                if (de->d_name[0] != '.')
                                        p->fds++;
                        closedir(d);
                        p->have_fds = true;
                } else
                        close(fd);
        }
        snprintf(path, sizeof path, "%d/cgroup", p->pid);
        if (diag_read_small_at(procfd, path, cg, sizeof cg) > 0) {
                char *v2;

                p->memcg = diag_snap_memcg(cg, &p->memcg_limit);
                v2 = strstr(cg, "0::");
                char *line = v2 && (v2 == cg || v2[-1] == '\n') ? v2 : cg;
                line[strcspn(line, "\n")] = 0;
                snprintf(p->cgroup, sizeof p->cgroup, "%.127s", line);
        }
        snprintf(path, sizeof path, "%d/oom_score", p->pid);
        if (diag_read_small_at(procfd, path, buf, sizeof buf) > 0)
                p->oom_score = atoi(buf);
}

static bool out_of_time(const struct diag_snap *s) {
        return s->deadline_ns && diag_snap_left_ms(s) < PROCS_WRITE_RESERVE_MS;
}

static int cmp_pid(const void *a, const void *b) {
        const struct proc *x = a, *y = b;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

static struct proc *find_pid(struct proc *ps, size_t n, pid_t pid) {
        struct proc key = { .pid = pid };
        return bsearch(&key, ps, n, sizeof *ps, cmp_pid);
}

/* uid -> name, remembered: getpwuid may ask a directory service over the network. */
static const char *user_name(uid_t uid, char *buf, size_t size) {
        static struct {
                uid_t uid;
                char name[32];
        } cache[64];
        static size_t ncache;
        struct passwd *pw;

        for (size_t i = 0; i < ncache; i++)
                if (cache[i].uid == uid) {
                        snprintf(buf, size, "%s", cache[i].name);
                        return buf;
                }
        pw = getpwuid(uid);
        if (pw)
                snprintf(buf, size, "%.31s", pw->pw_name);
        else
                snprintf(buf, size, "%u", (unsigned) uid);
        if (ncache < ELEMENTSOF(cache)) {
                cache[ncache].uid = uid;
                snprintf(cache[ncache++].name, sizeof cache[0].name, "%.31s", buf);
        }
        return buf;
}

/* Wall clock of a start time in clock ticks after boot. */
static time_t start_wall(unsigned long long ticks) {
        uint64_t now_real = diag_now_ns(CLOCK_REALTIME), now_boot = diag_now_ns(CLOCK_BOOTTIME);
        uint64_t start_ns = ticks * (1000000000ULL / (uint64_t) hz);
        return (time_t) ((now_real - (now_boot - MIN(start_ns, now_boot))) / 1000000000ULL);
}

static const char *hms(time_t t, char *buf, size_t size) {
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, size, "%H:%M:%S", &tm);
        return buf;
}

static const char *iso(time_t t, char *buf, size_t size) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}

/* The memory figure of a process: PSS where read, RSS otherwise. */
static uint64_t mem_of(const struct proc *p) {
        return p->have_smaps ? p->pss : p->rss[1];
}

static int by_cpu(const void *a, const void *b) {
        const struct proc *x = *(const struct proc *const *) a, *y = *(const struct proc *const *) b;
        return (x->cpu_pct < y->cpu_pct) - (x->cpu_pct > y->cpu_pct);
}
static int by_mem(const void *a, const void *b) {
        uint64_t x = mem_of(*(const struct proc *const *) a), y = mem_of(*(const struct proc *const *) b);
        return (x < y) - (x > y);
}
static int by_io(const void *a, const void *b) {
        const struct proc *x = *(const struct proc *const *) a, *y = *(const struct proc *const *) b;
        double u = x->rbytes_s + x->wbytes_s, v = y->rbytes_s + y->wbytes_s;
        return (u < v) - (u > v);
}
static int by_majflt(const void *a, const void *b) {
        const struct proc *x = *(const struct proc *const *) a, *y = *(const struct proc *const *) b;
        return (x->majflt_s < y->majflt_s) - (x->majflt_s > y->majflt_s);
}
static int by_cmd(const void *a, const void *b) {
        const struct proc *x = *(const struct proc *const *) a, *y = *(const struct proc *const *) b;
        int c = strcmp(x->cmd, y->cmd);
        return c ? c : (x->pid > y->pid) - (x->pid < y->pid);
}
static int group_by_mem(const void *a, const void *b) {
        const struct group *x = a, *y = b;
        return (x->pss < y->pss) - (x->pss > y->pss);
}

static void json_putp(struct json_object **o) {
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static void fmt_size(FILE *f, int width, uint64_t v) {
        char b[DIAG_SIZE_MAX];
        fprintf(f, " %*s", width, diag_format_size(v, b, sizeof b));
}

static void print_header(FILE *f) {
        fprintf(f, "%7s %7s %-10s %1s %6s %7s %7s %7s %7s %7s %8s %8s %8s %4s %5s %-8s %4s %-24s %s\n", "PID", "PPID",
                "USER", "S", "CPU%", "RSS", "PSS", "ANON", "FILE", "SHMEM", "MAJFL/s", "RD/s", "WR/s", "THR", "FDS",
                "START", "OOM", "CGROUP", "COMMAND");
}

static void print_proc(FILE *f, const struct proc *p) {
        char user[32], t[16];

        fprintf(f, "%7d %7d %-10s %c %6.1f", p->pid, p->ppid, user_name(p->uid, user, sizeof user), p->state, p->cpu_pct);
        fmt_size(f, 7, p->rss[1]);
        if (p->have_smaps) {
                fmt_size(f, 7, p->pss);
                fmt_size(f, 7, p->pss_anon);
                fmt_size(f, 7, p->pss_file);
                fmt_size(f, 7, p->pss_shmem);
        } else
                fprintf(f, " %7s %7s %7s %7s", "-", "-", "-", "-");
        fprintf(f, " %8.0f", p->majflt_s);
        if (p->have_io) {
                fmt_size(f, 8, (uint64_t) p->rbytes_s);
                fmt_size(f, 8, (uint64_t) p->wbytes_s);
        } else
                fprintf(f, " %8s %8s", "-", "-");
        fprintf(f, " %4ld", p->threads);
        if (p->have_fds)
                fprintf(f, " %5u", p->fds);
        else
                fprintf(f, " %5s", "-");
        fprintf(f, " %-8s %4d %-24.24s %s\n", hms(start_wall(p->start_ticks), t, sizeof t), p->oom_score, p->cgroup, p->cmd);
}

static void tree_walk(FILE *f, struct proc **kids, const size_t *kid_first, const size_t *kid_n, struct proc *ps,
                      size_t i, int depth, unsigned *lines) {
        if (*lines >= PROCS_TREE_LINES)
                return;
        (*lines)++;
        fprintf(f, "%7d %*s%s\n", ps[i].pid, depth * 2, "", ps[i].cmd);
        if (depth >= PROCS_TREE_DEPTH)
                return;
        for (size_t k = 0; k < kid_n[i]; k++)
                tree_walk(f, kids, kid_first, kid_n, ps, (size_t) (kids[kid_first[i] + k] - ps), depth + 1, lines);
}

static void write_tree(struct diag_snap *s, struct proc *ps, size_t n) {
        _cleanup_free_ struct proc **kids = calloc(n + 1, sizeof *kids);
        _cleanup_free_ size_t *first = calloc(n + 1, sizeof *first), *cnt = calloc(n + 1, sizeof *cnt);
        size_t used = 0;
        unsigned lines = 0;
        FILE *f;

        if (!kids || !first || !cnt)
                return;
        /* children listed together per parent, in pid order: count, then place */
        for (size_t i = 0; i < n; i++) {
                struct proc *pp = ps[i].ppid && ps[i].ppid != ps[i].pid ? find_pid(ps, n, ps[i].ppid) : NULL;
                if (pp)
                        cnt[pp - ps]++;
        }
        for (size_t i = 0; i < n; i++) {
                first[i] = used;
                used += cnt[i];
                cnt[i] = 0;
        }
        for (size_t i = 0; i < n; i++) {
                struct proc *pp = ps[i].ppid && ps[i].ppid != ps[i].pid ? find_pid(ps, n, ps[i].ppid) : NULL;
                if (pp)
                        kids[first[pp - ps] + cnt[pp - ps]++] = &ps[i];
        }
        f = diag_snap_open(s, "tree.txt");
        if (!f) {
                diag_snap_missing(s, "tree.txt", "not written: %s", strerror(errno));
                return;
        }
        fprintf(f, "%7s %s\n", "PID", "COMMAND (children indented under their parent)");
        for (size_t i = 0; i < n; i++)
                if (!ps[i].ppid || ps[i].ppid == ps[i].pid || !find_pid(ps, n, ps[i].ppid))
                        tree_walk(f, kids, first, cnt, ps, i, 0, &lines);
        if (lines >= PROCS_TREE_LINES)
                fprintf(f, "... (cut at %d lines)\n", PROCS_TREE_LINES);
        (void) diag_snap_close(s, f, "tree.txt");
}

static void write_top(struct diag_snap *s, struct proc **order, size_t n) {
        static const struct {
                const char *title;
                int (*cmp)(const void *, const void *);
        } tops[] = {
                { "CPU", by_cpu }, { "memory (PSS, RSS where PSS was not read)", by_mem },
                { "IO (read + write bytes/s)", by_io }, { "major faults/s", by_majflt },
        };
        FILE *f = diag_snap_open(s, "top.txt");

        if (!f) {
                diag_snap_missing(s, "top.txt", "not written: %s", strerror(errno));
                return;
        }
        for (size_t t = 0; t < ELEMENTSOF(tops); t++) {
                qsort(order, n, sizeof *order, tops[t].cmp);
                fprintf(f, "%sTop %d by %s\n", t ? "\n" : "", PROCS_TOP, tops[t].title);
                print_header(f);
                for (size_t i = 0; i < n && i < PROCS_TOP; i++)
                        print_proc(f, order[i]);
        }
        (void) diag_snap_close(s, f, "top.txt");
}

static struct json_object *proc_json(const struct proc *p) {
        struct json_object *o = json_object_new_object();
        char user[32], t[32];

        json_object_object_add(o, "pid", json_object_new_int(p->pid));
        json_object_object_add(o, "ppid", json_object_new_int(p->ppid));
        json_object_object_add(o, "uid", json_object_new_int64(p->uid));
        json_object_object_add(o, "user", json_object_new_string(user_name(p->uid, user, sizeof user)));
        json_object_object_add(o, "state", json_object_new_string_len(&p->state, 1));
        json_object_object_add(o, "command", json_object_new_string(p->cmd));
        json_object_object_add(o, "cpu_pct", json_object_new_double((double) (long long) (p->cpu_pct * 10 + 0.5) / 10));
        json_object_object_add(o, "rss_bytes", json_object_new_uint64(p->rss[1]));
        json_object_object_add(o, "rss_growth_bytes", json_object_new_int64((int64_t) p->rss[1] - (int64_t) p->rss[0]));
        if (p->have_smaps) {
                json_object_object_add(o, "pss_bytes", json_object_new_uint64(p->pss));
                json_object_object_add(o, "pss_anon_bytes", json_object_new_uint64(p->pss_anon));
                json_object_object_add(o, "pss_file_bytes", json_object_new_uint64(p->pss_file));
                json_object_object_add(o, "pss_shmem_bytes", json_object_new_uint64(p->pss_shmem));
                json_object_object_add(o, "private_bytes", json_object_new_uint64(p->priv));
                json_object_object_add(o, "shared_bytes", json_object_new_uint64(p->shared));
        }
        json_object_object_add(o, "major_faults_per_s", json_object_new_double((double) (long long) (p->majflt_s + 0.5)));
        if (p->have_io) {
                json_object_object_add(o, "read_bytes_per_s", json_object_new_uint64((uint64_t) p->rbytes_s));
                json_object_object_add(o, "write_bytes_per_s", json_object_new_uint64((uint64_t) p->wbytes_s));
        }
        json_object_object_add(o, "threads", json_object_new_int64(p->threads));
        if (p->have_fds)
                json_object_object_add(o, "fds", json_object_new_int64(p->fds));
        json_object_object_add(o, "cgroup", json_object_new_string(p->cgroup));
        json_object_object_add(o, "start", json_object_new_string(iso(start_wall(p->start_ticks), t, sizeof t)));
        json_object_object_add(o, "oom_score", json_object_new_int(p->oom_score));
        return o;
}

int diag_snap_procs(struct diag_snap *s) {
        _cleanup_free_ struct proc *ps = NULL;
        _cleanup_free_ struct proc **order = NULL;
        _cleanup_free_ struct group *groups = NULL;
        _cleanup_json_ struct json_object *root = json_object_new_object();
        _cleanup_close_ int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        long votes = 0;
        size_t n = 0, alloc = 0, ngroups = 0, io_denied = 0, smaps_read = 0, smaps_denied = 0, not_reread = 0;
        uint64_t t0, t1, mem_total = 0, smaps_ns = 0;
        unsigned wait_ms;
        double secs;
        char buf[256], b1[DIAG_SIZE_MAX], b2[DIAG_SIZE_MAX], ta[16], tb[16];
        DIR *d;
        FILE *f;

        if (procfd < 0)
                return negative_errno();
        if (!root)
                return -ENOMEM;
        page_size = sysconf(_SC_PAGESIZE);
        hz = sysconf(_SC_CLK_TCK);
        if (hz <= 0)
                hz = 100;
        if (diag_read_small_at(procfd, "meminfo", buf, sizeof buf) > 0 && strncmp(buf, "MemTotal:", 9) == 0)
                mem_total = strtoull(buf + 9, NULL, 10) * 1024;

        /* first reading */
        t0 = diag_now_ns(CLOCK_MONOTONIC);
        d = opendir("/proc");
        if (!d)
                return negative_errno();
        for (struct dirent *de; (de = readdir(d)) && n < PROCS_MAX;) {
                pid_t pid;
                struct proc p = {};

                if (diag_parse_pid(de->d_name, &pid) < 0)
                        continue;
                if (out_of_time(s))
                        break;
                p.pid = pid;
                if (read_stat(procfd, &p, 0) < 0)
                        continue;
                p.have_io = read_io(procfd, &p, 0) >= 0;
                if (DIAG_GROW(ps, alloc, n + 1) < 0)
                        break;
                ps[n++] = p;
        }
        closedir(d);
        qsort(ps, n, sizeof *ps, cmp_pid);

        /* the window: at most a third of the time left, the second reading is the longer */
        wait_ms = s->rate_ms ? s->rate_ms : 1000;
        if (s->deadline_ns)
                wait_ms = MIN(wait_ms, diag_snap_left_ms(s) / 3);
        {
                uint64_t spent_ms = (diag_now_ns(CLOCK_MONOTONIC) - t0) / 1000000;
                struct timespec ts;
                wait_ms = wait_ms > spent_ms ? wait_ms - (unsigned) spent_ms : 0;
                ts = (struct timespec) { wait_ms / 1000, (long) (wait_ms % 1000) * 1000000L };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }

        /* second reading, and what is read once */
        t1 = diag_now_ns(CLOCK_MONOTONIC);
        secs = (double) (t1 - t0) / 1e9;
        for (size_t i = 0; i < n; i++) {
                struct proc *p = &ps[i];
                uint64_t a;

                if (out_of_time(s)) {
                        not_reread = n - i;
                        for (; i < n; i++)
                                ps[i].gone = true;
                        break;
                }
                if (read_stat(procfd, p, 1) < 0) {
                        p->gone = true;
                        continue;
                }
                p->reread = true;
                if (p->have_io)
                        p->have_io = read_io(procfd, p, 1) >= 0;
                else
                        io_denied++;
                a = diag_now_ns(CLOCK_MONOTONIC);
                read_rest(procfd, p);
                smaps_ns += diag_now_ns(CLOCK_MONOTONIC) - a;
                smaps_read += p->have_smaps;
                smaps_denied += !p->kthread && p->rss[1] && !p->have_smaps;
        }
        secs = (double) (diag_now_ns(CLOCK_MONOTONIC) - t0 + (t1 - t0)) / 2e9;
        if (secs <= 0)
                secs = 1e-3;

        /* keep the processes still there */
        {
                size_t k = 0;
                for (size_t i = 0; i < n; i++)
                        if (!ps[i].gone)
                                ps[k++] = ps[i];
                n = k;
        }
        if (io_denied)
                diag_snap_missing(s, "processes: IO bytes", "/proc/PID/io of %zu processes not readable%s", io_denied,
                                  s->root ? "" : " (needs root or CAP_SYS_PTRACE)");
        if (smaps_denied)
                diag_snap_missing(s, "processes: PSS", "/proc/PID/smaps_rollup of %zu processes not readable, RSS shown%s",
                                  smaps_denied, s->root ? "" : " (needs root or CAP_SYS_PTRACE)");
        if (not_reread)
                diag_snap_missing(s, "processes", "%zu processes not read a second time: deadline reached", not_reread);

        order = calloc(n + 1, sizeof *order);
        groups = calloc(n + 1, sizeof *groups);
        if (!order || !groups)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct proc *p = &ps[i];
                /* its own span: a reading of hundreds of processes takes a good part of the
                 * window, and the second (which reads more per process) longer than the first */
                double ps_secs = p->t_ns[1] > p->t_ns[0] ? (double) (p->t_ns[1] - p->t_ns[0]) / 1e9 : secs;
                p->cpu_pct = 100.0 * (double) (p->cpu_ticks[1] - MIN(p->cpu_ticks[0], p->cpu_ticks[1])) / (double) hz / ps_secs;
                p->majflt_s = (double) (p->majflt[1] - MIN(p->majflt[0], p->majflt[1])) / ps_secs;
                p->rbytes_s = (double) (p->rbytes[1] - MIN(p->rbytes[0], p->rbytes[1])) / ps_secs;
                p->wbytes_s = (double) (p->wbytes[1] - MIN(p->wbytes[0], p->wbytes[1])) / ps_secs;
                order[i] = p;
        }

        /* groups by command line (kernel threads have no memory of their own: left out) */
        qsort(order, n, sizeof *order, by_cmd);
        for (size_t i = 0; i < n;) {
                size_t j = i;
                struct group *g = &groups[ngroups];

                if (order[i]->kthread) {
                        i++;
                        continue;
                }
                *g = (struct group) { .cmd = order[i]->cmd, .first = i, .start_min = ULLONG_MAX, .parent = order[i]->ppid,
                                      .memcg = order[i]->memcg, .memcg_limit = order[i]->memcg_limit };
                for (; j < n && strcmp(order[j]->cmd, g->cmd) == 0; j++) {
                        const struct proc *p = order[j];
                        g->count++;
                        g->pss += mem_of(p);
                        g->priv += p->have_smaps ? p->priv : 0;
                        g->start_min = MIN(g->start_min, p->start_ticks);
                        g->start_max = MAX(g->start_max, p->start_ticks);
                        if (p->memcg != g->memcg)
                                g->memcg = NULL;
                        /* majority vote: a pool's parent is often one of the group itself */
                        if (votes == 0)
                                g->parent = p->ppid;
                        votes += g->parent == p->ppid ? 1 : -1;
                }
                votes = 0;
                for (size_t k = i; k < j; k++)
                        votes += order[k]->ppid == g->parent;
                if (votes * 2 <= (long) g->count)
                        g->parent = 0;
                votes = 0;
                g->shared = g->pss > g->priv ? g->pss - g->priv : 0;
                ngroups++;
                i = j;
        }
        qsort(groups, ngroups, sizeof *groups, group_by_mem);

        /* processes.txt */
        f = diag_snap_open(s, "processes.txt");
        if (f) {
                print_header(f);
                for (size_t i = 0; i < n; i++)
                        print_proc(f, &ps[i]);
                (void) diag_snap_close(s, f, "processes.txt");
        } else
                diag_snap_missing(s, "processes.txt", "not written: %s", strerror(errno));

        /* groups.txt: groups of two or more */
        f = diag_snap_open(s, "groups.txt");
        if (f) {
                fprintf(f, "%6s %9s %9s %9s %-8s %-8s %7s  %s\n", "COUNT", "PSS", "PRIVATE", "SHARED", "FIRST", "LAST",
                        "PARENT", "COMMAND");
                for (size_t i = 0; i < ngroups; i++) {
                        const struct group *g = &groups[i];
                        if (g->count < 2)
                                continue;
                        fprintf(f, "%6zu", g->count);
                        fmt_size(f, 9, g->pss);
                        fmt_size(f, 9, g->priv);
                        fmt_size(f, 9, g->shared);
                        fprintf(f, " %-8s %-8s %7d  %s\n", hms(start_wall(g->start_min), ta, sizeof ta),
                                hms(start_wall(g->start_max), tb, sizeof tb), g->parent, g->cmd);
                }
                (void) diag_snap_close(s, f, "groups.txt");
        } else
                diag_snap_missing(s, "groups.txt", "not written: %s", strerror(errno));

        write_tree(s, ps, n);

        /* processes.json */
        {
                struct json_object *arr = json_object_new_array(), *garr = json_object_new_array();
                char t[32];

                json_object_object_add(root, "schema", json_object_new_string("diag-snap/1"));
                json_object_object_add(root, "part", json_object_new_string("procs"));
                json_object_object_add(root, "window_ms", json_object_new_uint64((uint64_t) (secs * 1000 + 0.5)));
                json_object_object_add(root, "mem_total_bytes", json_object_new_uint64(mem_total));
                json_object_object_add(root, "smaps_rollup_read", json_object_new_uint64(smaps_read));
                json_object_object_add(root, "smaps_rollup_ms", json_object_new_uint64(smaps_ns / 1000000));
                for (size_t i = 0; i < n; i++)
                        json_object_array_add(arr, proc_json(&ps[i]));
                json_object_object_add(root, "processes", arr);
                for (size_t i = 0; i < ngroups; i++) {
                        const struct group *g = &groups[i];
                        struct json_object *o = json_object_new_object(), *pids = json_object_new_array();
                        for (size_t k = 0; k < g->count && k < 1000; k++)
                                json_object_array_add(pids, json_object_new_int(order[g->first + k]->pid));
                        json_object_object_add(o, "command", json_object_new_string(g->cmd));
                        json_object_object_add(o, "count", json_object_new_uint64(g->count));
                        json_object_object_add(o, "pss_bytes", json_object_new_uint64(g->pss));
                        json_object_object_add(o, "private_bytes", json_object_new_uint64(g->priv));
                        json_object_object_add(o, "shared_bytes", json_object_new_uint64(g->shared));
                        json_object_object_add(o, "first_start", json_object_new_string(iso(start_wall(g->start_min), t, sizeof t)));
                        json_object_object_add(o, "last_start", json_object_new_string(iso(start_wall(g->start_max), t, sizeof t)));
                        json_object_object_add(o, "start_spread_ms", json_object_new_uint64(
                                (g->start_max - g->start_min) * 1000 / (uint64_t) hz));
                        json_object_object_add(o, "parent", json_object_new_int(g->parent));
                        json_object_object_add(o, "memory_cgroup", g->memcg ? json_object_new_string(g->memcg) : NULL);
                        json_object_object_add(o, "memory_limit", g->memcg && g->memcg_limit > 0
                                               ? json_object_new_int64(g->memcg_limit) : NULL);
                        json_object_object_add(o, "pids", pids);
                        json_object_array_add(garr, o);
                }
                json_object_object_add(root, "groups", garr);
                const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
                (void) diag_snap_write(s, "processes.json", js, strlen(js));
        }

        /* findings */
        if (mem_total) {
                unsigned nf = 0;
                for (size_t i = 0; i < ngroups && nf < PROCS_FINDINGS_MAX; i++) {
                        const struct group *g = &groups[i];
                        double share = 100.0 * (double) g->pss / (double) mem_total;
                        bool limited = g->memcg && g->memcg_limit > 0 && (uint64_t) g->memcg_limit < mem_total;
                        double lshare = limited ? 100.0 * (double) g->pss / (double) g->memcg_limit : 0;
                        char b3[DIAG_SIZE_MAX];

                        if (g->count < PROCS_GROUP_MIN_COUNT)
                                continue;
                        if (share <= PROCS_GROUP_MEM_PCT && lshare > PROCS_GROUP_LIMIT_PCT) {
                                nf++;
                                diag_snap_finding(s, DIAG_SNAP_WARN, "groups.txt",
                                                  "%zu processes \"%.80s\" (parent %d) hold %s private (PSS %s, %.0f %% of the %s limit of memory cgroup %.80s); they started %s-%s",
                                                  g->count, g->cmd, g->parent, diag_format_size(g->priv, b1, sizeof b1),
                                                  diag_format_size(g->pss, b2, sizeof b2), lshare,
                                                  diag_format_size((uint64_t) g->memcg_limit, b3, sizeof b3), g->memcg,
                                                  hms(start_wall(g->start_min), ta, sizeof ta), hms(start_wall(g->start_max), tb, sizeof tb));
                                continue;
                        }
                        if (share <= PROCS_GROUP_MEM_PCT)
                                continue;
                        nf++;
                        diag_snap_finding(s, DIAG_SNAP_CRIT, "groups.txt",
                                          "%zu processes \"%.80s\" (parent %d) hold %s private (PSS %s, %.0f %% of memory); they started %s-%s",
                                          g->count, g->cmd, g->parent, diag_format_size(g->priv, b1, sizeof b1),
                                          diag_format_size(g->pss, b2, sizeof b2), share,
                                          hms(start_wall(g->start_min), ta, sizeof ta), hms(start_wall(g->start_max), tb, sizeof tb));
                }
        }
        {
                unsigned nbig = 0, ngrow = 0, nmaj = 0;
                for (size_t i = 0; i < n; i++) {
                        const struct proc *p = &ps[i];
                        uint64_t m = mem_of(p);
                        if (mem_total && 100.0 * (double) m / (double) mem_total > PROCS_ONE_MEM_PCT && nbig++ < PROCS_FINDINGS_MAX)
                                diag_snap_finding(s, DIAG_SNAP_WARN, "processes.txt", "pid %d \"%.80s\" holds %s (%s, %.0f %% of memory)",
                                                  p->pid, p->cmd, diag_format_size(m, b1, sizeof b1), p->have_smaps ? "PSS" : "RSS",
                                                  100.0 * (double) m / (double) mem_total);
                        if (p->rss[1] >= p->rss[0] + PROCS_GROW_BYTES && ngrow++ < PROCS_FINDINGS_MAX)
                                diag_snap_finding(s, DIAG_SNAP_NOTICE, "processes.txt", "pid %d \"%.80s\": RSS grew %s in %.1f s, now %s",
                                                  p->pid, p->cmd, diag_format_size(p->rss[1] - p->rss[0], b1, sizeof b1), secs,
                                                  diag_format_size(p->rss[1], b2, sizeof b2));
                        if (p->majflt_s >= PROCS_MAJFLT_PER_S && nmaj++ < PROCS_FINDINGS_MAX)
                                diag_snap_finding(s, DIAG_SNAP_WARN, "top.txt", "pid %d \"%.80s\": %.0f major faults/s (reads %s/s)",
                                                  p->pid, p->cmd, p->majflt_s, diag_format_size((uint64_t) p->rbytes_s, b1, sizeof b1));
                }
        }

        write_top(s, order, n);
        return 0;
}
