/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <sched.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libproc2/pids.h>

#include "config.h"
#include "diag/proc.h"
#include "diag/util.h"

/* procps-ng 4.0.5 dropped the unused fourth argument of PIDS_VAL. */
#if HAVE_PROCPS_PIDS_VAL_3ARGS
#define DIAG_PIDS_VAL(item, type, stack) PIDS_VAL(item, type, stack)
#else
#define DIAG_PIDS_VAL(item, type, stack) PIDS_VAL(item, type, stack, NULL)
#endif

#define PF_KTHREAD 0x00200000

static void pids_unrefp(struct pids_info **info) {
        if (*info)
                procps_pids_unref(info);
}

static int open_task_dir(pid_t pid, pid_t tid) {
        char path[64];
        int fd;

        if (pid > 0)
                snprintf(path, sizeof path, "/proc/%d/task/%d", pid, tid);
        else
                snprintf(path, sizeof path, "/proc/%d", tid);
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        return fd;
}

/* One open per read: these run for every thread of every process scanned. */
static int task_read_small(pid_t pid, pid_t tid, const char *name, char *buf, size_t size) {
        char path[96];
        ssize_t n;

        if (pid > 0)
                snprintf(path, sizeof path, "/proc/%d/task/%d/%s", pid, tid, name);
        else
                snprintf(path, sizeof path, "/proc/%d/%s", tid, name);
        n = diag_read_small_at(AT_FDCWD, path, buf, size);
        if (n == -ENOENT)
                return -ESRCH;
        return n < 0 ? (int) n : 0;
}

int diag_task_read_syscall(pid_t pid, pid_t tid, struct diag_syscall_state *ret) {
        char buf[256];
        int r = task_read_small(pid, tid, "syscall", buf, sizeof buf);

        if (r < 0)
                return r;
        return diag_syscall_parse_proc(buf, ret);
}

int diag_task_read_wchan(pid_t pid, pid_t tid, char *buf, size_t size) {
        int r = task_read_small(pid, tid, "wchan", buf, size);

        if (r < 0)
                return r;
        diag_strip(buf);
        if (strcmp(buf, "0") == 0)
                buf[0] = 0;
        return 0;
}

int diag_task_read_kstack(pid_t pid, pid_t tid, char **ret) {
        _cleanup_close_ int dfd = open_task_dir(pid, tid);

        if (dfd < 0)
                return dfd;
        return diag_read_file_at(dfd, "stack", 64 * 1024, ret, NULL);
}

static int sched_exec_start_ms(int dirfd, const char *path, double *ret) {
        char buf[8192];
        const char *p;
        ssize_t n = diag_read_small_at(dirfd, path, buf, sizeof buf);

        if (n < 0)
                return n == -ENOENT ? -ESRCH : (int) n;
        p = strstr(buf, "se.exec_start");
        if (!p || !(p = strchr(p, ':')))
                return -ENODATA;
        if (sscanf(p + 1, "%lf", ret) != 1)
                return -EINVAL;
        return 0;
}

/*
 * se.exec_start (ms) is read from the clock_task of the CPU the task last ran
 * on. Each CPU's clock_task leaves out that CPU's IRQ and steal time, so CPUs
 * drift apart (by seconds on a busy VM) and none matches CLOCK_MONOTONIC. The
 * reference "now" must come from the same CPU: pin our own thread there for an
 * instant (migrating sets our exec_start to that CPU's clock), read it, and
 * carry it forward with CLOCK_MONOTONIC for a while.
 */
#define SCHED_REF_TTL_NS (200 * 1000000ULL)

struct sched_ref {
        bool valid;
        double ms;              /* that CPU's clock, as our exec_start read it */
        uint64_t mono_ns;       /* CLOCK_MONOTONIC when read */
};

/* The cache is shared by the threads of a program (diag-top walks chains on a
 * thread of its own while its main thread reads BLOCKED): under a lock. Pinning
 * moves only the calling thread. */
static pthread_mutex_t sched_refs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sched_ref *sched_refs;
static int n_sched_refs;

static int last_cpu_of(pid_t pid, pid_t tid) {
        char state;
        int cpu;

        return diag_task_read_state_cpu(pid, tid, &state, &cpu) < 0 ? -1 : cpu;
}

static int sched_now_ms_locked(int cpu, double *ret) {
        uint64_t mono = diag_now_ns(CLOCK_MONOTONIC);
        cpu_set_t old, one;
        bool pinned = false;
        double now;
        int r;

        if (cpu >= 0 && cpu < CPU_SETSIZE) {
                if (cpu >= n_sched_refs) {
                        struct sched_ref *n = realloc(sched_refs, (size_t) (cpu + 1) * sizeof *n);
                        if (!n)
                                return -ENOMEM;
                        memset(n + n_sched_refs, 0, (size_t) (cpu + 1 - n_sched_refs) * sizeof *n);
                        sched_refs = n;
                        n_sched_refs = cpu + 1;
                }
                if (sched_refs[cpu].valid && mono - sched_refs[cpu].mono_ns < SCHED_REF_TTL_NS) {
                        *ret = sched_refs[cpu].ms + (double) (mono - sched_refs[cpu].mono_ns) / 1e6;
                        return 0;
                }
                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                if (sched_getaffinity(0, sizeof old, &old) == 0 && sched_setaffinity(0, sizeof one, &one) == 0)
                        pinned = true;
        }
        r = sched_exec_start_ms(AT_FDCWD, "/proc/thread-self/sched", &now);
        mono = diag_now_ns(CLOCK_MONOTONIC);
        if (pinned)
                (void) sched_setaffinity(0, sizeof old, &old);
        if (r < 0)
                return r;
        if (pinned)
                sched_refs[cpu] = (struct sched_ref) { .valid = true, .ms = now, .mono_ns = mono };
        *ret = now;
        return 0;
}

static int sched_now_ms(int cpu, double *ret) {
        int r;

        pthread_mutex_lock(&sched_refs_lock);
        r = sched_now_ms_locked(cpu, ret);
        pthread_mutex_unlock(&sched_refs_lock);
        return r;
}

int diag_task_read_offcpu_ms(pid_t pid, pid_t tid, int64_t *ret_ms) {
        return diag_task_offcpu_ms_on(pid, tid, last_cpu_of(pid, tid), ret_ms);
}

int diag_task_offcpu_ms_on(pid_t pid, pid_t tid, int cpu, int64_t *ret_ms) {
        char path[96];
        double start, now;
        int r;

        if (pid > 0)
                snprintf(path, sizeof path, "/proc/%d/task/%d/sched", pid, tid);
        else
                snprintf(path, sizeof path, "/proc/%d/sched", tid);
        r = sched_exec_start_ms(AT_FDCWD, path, &start);
        if (r < 0)
                return r;
        r = sched_now_ms(cpu, &now);
        if (r < 0)
                return r;
        *ret_ms = now > start ? (int64_t) (now - start) : 0;
        return 0;
}

/* "pid (comm) S ..." where comm may hold spaces and parens: the last ')' ends it. */
int diag_stat_parse(const char *text, struct diag_stat *ret) {
        const char *l = strchr(text, '('), *r = strrchr(text, ')');
        const char *p;

        memset(ret, 0, sizeof *ret);
        if (!l || !r || r < l || r[1] != ' ' || !r[2] || r[2] == ' ')
                return -EINVAL;
        snprintf(ret->comm, sizeof ret->comm, "%.*s", (int) MIN((size_t) (r - l - 1), sizeof ret->comm - 1), l + 1);
        ret->state = r[2];
        p = r + 3;
        while (ret->n < ELEMENTSOF(ret->f)) {
                char *end;
                uint64_t v;

                while (*p == ' ')
                        p++;
                if (!*p || *p == '\n')
                        break;
                errno = 0;
                v = strtoull(p, &end, 10);
                if (end == p || errno)
                        return -EINVAL;
                ret->f[ret->n++] = v;
                p = end;
        }
        return 0;
}

int diag_task_read_state(pid_t pid, pid_t tid, char *ret_state) {
        int cpu;

        return diag_task_read_state_cpu(pid, tid, ret_state, &cpu);
}

int diag_task_read_state_cpu(pid_t pid, pid_t tid, char *ret_state, int *ret_cpu) {
        char buf[1024];
        struct diag_stat st;
        int r = task_read_small(pid, tid, "stat", buf, sizeof buf);

        if (r < 0)
                return r;
        if (diag_stat_parse(buf, &st) < 0)
                return -EINVAL;
        *ret_state = st.state;
        *ret_cpu = st.n > 39 - 4 && DIAG_STAT_FIELD(&st, 39) < CPU_SETSIZE ? (int) DIAG_STAT_FIELD(&st, 39) : -1;
        return 0;
}

int diag_status_field(const char *status, const char *key, int base, unsigned long long *ret) {
        size_t kl = strlen(key), i = 0;
        const char *p;
        char num[32];

        for (p = status; (p = strstr(p, key)); p += kl)
                if ((p == status || p[-1] == '\n') && p[kl] == ':')
                        break;
        if (!p)
                return -ENODATA;
        p += kl + 1;
        while (*p == ' ' || *p == '\t')
                p++;
        while (i < sizeof num - 1 && ((*p >= '0' && *p <= '9') || (base == 16 && ((*p >= 'a' && *p <= 'f') ||
                                                                                 (*p >= 'A' && *p <= 'F')))))
                num[i++] = *p++;
        num[i] = 0;
        return diag_parse_ull(num, base, ret);
}

int diag_task_status_field(pid_t pid, pid_t tid, const char *key, int base, unsigned long long *ret) {
        char buf[8192];
        int r = tid > 0 ? task_read_small(pid, tid, "status", buf, sizeof buf)
                        : task_read_small(0, pid, "status", buf, sizeof buf);

        return r < 0 ? r : diag_status_field(buf, key, base, ret);
}

int diag_tid_to_pid(pid_t tid, pid_t *ret_pid) {
        unsigned long long v;
        int r = diag_task_status_field(tid, 0, "Tgid", 10, &v);

        if (r < 0)
                return r == -ENODATA ? -EINVAL : r;
        if (v < 1 || v > INT32_MAX)
                return -EINVAL;
        *ret_pid = (pid_t) v;
        return 0;
}

static int list_numeric_dir(const char *path, pid_t **ret, size_t *ret_n) {
        DIR *d;
        struct dirent *de;
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0, alloc = 0;

        d = opendir(path);
        if (!d)
                return errno == ENOENT ? -ESRCH : negative_errno();
        while ((de = readdir(d))) {
                pid_t tid;

                if (diag_parse_pid(de->d_name, &tid) < 0)
                        continue;
                if (DIAG_GROW(tids, alloc, n + 1) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                tids[n++] = tid;
        }
        closedir(d);
        *ret = TAKE_PTR(tids);
        *ret_n = n;
        return 0;
}

int diag_proc_list_tids(pid_t pid, pid_t **ret, size_t *ret_n) {
        char path[64];

        snprintf(path, sizeof path, "/proc/%d/task", pid);
        return list_numeric_dir(path, ret, ret_n);
}

int diag_proc_list_pids(pid_t **ret, size_t *ret_n) {
        return list_numeric_dir("/proc", ret, ret_n);
}

int diag_proc_read_comm(pid_t pid, char *buf, size_t size) {
        int r = task_read_small(0, pid, "comm", buf, size);

        if (r < 0)
                return r;
        diag_strip(buf);
        return 0;
}

int diag_proc_read_uid(pid_t pid, uid_t *ret) {
        char path[64];
        struct stat st;

        /* /proc/PID is owned by the process's effective uid (unless undumpable) */
        snprintf(path, sizeof path, "/proc/%d", pid);
        if (stat(path, &st) < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        *ret = st.st_uid;
        return 0;
}

/* /proc/PID/stat parsed, with at least min_fields numbers after the comm. */
static int proc_read_stat(pid_t pid, size_t min_fields, struct diag_stat *ret) {
        char buf[1024];
        int r = task_read_small(0, pid, "stat", buf, sizeof buf);

        if (r < 0)
                return r;
        if (diag_stat_parse(buf, ret) < 0 || ret->n < min_fields)
                return -EINVAL;
        return 0;
}

int diag_proc_is_kernel_thread(pid_t pid) {
        struct diag_stat st;
        int r = proc_read_stat(pid, 6, &st);

        if (r < 0)
                return r;
        return (DIAG_STAT_FIELD(&st, 9) & PF_KTHREAD) != 0;
}

int diag_proc_read_ppid(pid_t pid, pid_t *ret) {
        struct diag_stat st;
        int r = proc_read_stat(pid, 1, &st);

        if (r < 0)
                return r;
        *ret = (pid_t) DIAG_STAT_FIELD(&st, 4);
        return 0;
}

int diag_lineage_init(pid_t pid, struct diag_lineage *ret) {
        pid_t p = pid;

        *ret = (struct diag_lineage) { .self = pid };
        while (ret->nup < DIAG_LINEAGE_MAX_UP) {
                pid_t pp;
                int r = diag_proc_read_ppid(p, &pp);
                if (r < 0)
                        return p == pid ? r : 0;
                if (pp <= 0 || pp == p)
                        break;
                ret->up[ret->nup++] = pp;
                p = pp;
        }
        return 0;
}

static bool lineage_is_ancestor(const struct diag_lineage *l, pid_t pid) {
        for (size_t i = 0; i < l->nup; i++)
                if (l->up[i] == pid)
                        return true;
        return false;
}

bool diag_lineage_has(const struct diag_lineage *l, pid_t pid) {
        pid_t p = pid;

        if (pid <= 0)
                return false;
        if (pid == l->self || lineage_is_ancestor(l, pid))
                return true;
        /* a descendant: its parents lead to self before reaching an ancestor */
        for (unsigned depth = 0; depth < 64; depth++) {
                pid_t pp;
                if (diag_proc_read_ppid(p, &pp) < 0 || pp <= 0 || pp == p)
                        return false;
                if (pp == l->self)
                        return true;
                if (lineage_is_ancestor(l, pp))
                        return false;
                p = pp;
        }
        return false;
}

/* libproc2 4.0.x fills the leader's entry of a PID_THREADS selection from
 * /proc/PID/stat, which sums every thread: read the leader's own task stat. */
static int task_read_cpu(pid_t pid, pid_t tid, uint64_t *ret_ms, double *ret_life_pct) {
        char buf[1024], up[128];
        struct diag_stat s;
        unsigned long long ut, st, start;
        double uptime;
        long hz = sysconf(_SC_CLK_TCK);
        int r = task_read_small(pid, tid, "stat", buf, sizeof buf);

        if (r < 0)
                return r;
        if (hz <= 0)
                hz = 100;
        if (diag_stat_parse(buf, &s) < 0 || s.n < 19)
                return -EINVAL;
        ut = DIAG_STAT_FIELD(&s, 14);
        st = DIAG_STAT_FIELD(&s, 15);
        start = DIAG_STAT_FIELD(&s, 22);
        if (diag_read_small_at(AT_FDCWD, "/proc/uptime", up, sizeof up) < 0 || sscanf(up, "%lf", &uptime) != 1)
                return -EINVAL;
        *ret_ms = (ut + st) * 1000 / (unsigned long long) hz;
        {
                double life = uptime - (double) start / (double) hz;
                *ret_life_pct = life > 0 ? (double) (ut + st) / (double) hz / life * 100.0 : 0;
        }
        return 0;
}

int diag_task_read_schedstat_ns(pid_t pid, pid_t tid, uint64_t *ret_ns) {
        char buf[128];
        unsigned long long ns;
        int r = task_read_small(pid, tid, "schedstat", buf, sizeof buf);

        if (r < 0)
                return r;
        if (sscanf(buf, "%llu", &ns) != 1)
                return -EINVAL;
        /* "0 0 0": the kernel keeps no scheduler statistics */
        if (ns == 0)
                return -EOPNOTSUPP;
        *ret_ns = ns;
        return 0;
}

int diag_task_read_oncpu_ns(pid_t pid, pid_t tid, uint64_t *ret_ns) {
        int r = diag_task_read_schedstat_ns(pid, tid, ret_ns);

        if (r == -ENOENT || r == -ESRCH) {
                /* no schedstat (CONFIG_SCHED_INFO off) or gone: tell which */
                char state;
                if (diag_task_read_state(pid, tid, &state) < 0)
                        return -ESRCH;
                r = -EOPNOTSUPP;
        }
        if (r == -EOPNOTSUPP) {
                /* clock ticks are coarse but still a rate */
                uint64_t ms;
                double life;
                r = task_read_cpu(pid, tid, &ms, &life);
                if (r < 0)
                        return r;
                *ret_ns = ms * 1000000ULL;
                return 0;
        }
        return r;
}

void diag_cpu_rates_done(struct diag_cpu_rates *r) {
        free(r->tid);
        free(r->ns0);
        free(r->at0);
        free(r->pct);
        *r = (struct diag_cpu_rates) { .proc_pct = -1 };
}

int diag_cpu_rates_begin(pid_t pid, struct diag_cpu_rates *ret) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;
        int r;

        *ret = (struct diag_cpu_rates) { .pid = pid, .proc_pct = -1 };
        r = diag_proc_list_tids(pid, &tids, &n);
        if (r < 0)
                return r;
        ret->began_ns = diag_now_ns(CLOCK_MONOTONIC);
        ret->ns0 = calloc(n ? n : 1, sizeof *ret->ns0);
        ret->at0 = calloc(n ? n : 1, sizeof *ret->at0);
        ret->pct = calloc(n ? n : 1, sizeof *ret->pct);
        if (!ret->ns0 || !ret->at0 || !ret->pct) {
                diag_cpu_rates_done(ret);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                ret->pct[i] = -1;
                if (diag_task_read_oncpu_ns(pid, tids[i], &ret->ns0[i]) < 0)
                        continue;       /* gone already: stays unknown */
                ret->at0[i] = diag_now_ns(CLOCK_MONOTONIC);
        }
        ret->tid = TAKE_PTR(tids);
        ret->n = n;
        return 0;
}

int diag_cpu_rates_end(struct diag_cpu_rates *r, unsigned window_ms) {
        uint64_t now = diag_now_ns(CLOCK_MONOTONIC), want = r->began_ns + (uint64_t) window_ms * 1000000ULL;
        bool any = false;
        double sum = 0;

        if (!r->tid)
                return -EINVAL;
        while (now < want) {
                struct timespec ts = { .tv_sec = (time_t) ((want - now) / 1000000000ULL),
                                       .tv_nsec = (long) ((want - now) % 1000000000ULL) };
                (void) nanosleep(&ts, NULL);
                now = diag_now_ns(CLOCK_MONOTONIC);
        }
        r->window_ms = (unsigned) ((now - r->began_ns) / 1000000ULL);
        for (size_t i = 0; i < r->n; i++) {
                uint64_t ns, at;
                if (!r->at0[i] || diag_task_read_oncpu_ns(r->pid, r->tid[i], &ns) < 0)
                        continue;
                at = diag_now_ns(CLOCK_MONOTONIC);
                if (at <= r->at0[i])
                        continue;
                r->pct[i] = ns > r->ns0[i] ? (double) (ns - r->ns0[i]) / (double) (at - r->at0[i]) * 100.0 : 0;
                /* one thread cannot use more than one CPU: what is above is read jitter */
                if (r->pct[i] > 100)
                        r->pct[i] = 100;
                sum += r->pct[i];
                any = true;
        }
        r->proc_pct = any ? sum : -1;
        return 0;
}

int diag_cpu_rates_measure(pid_t pid, unsigned window_ms, struct diag_cpu_rates *ret) {
        int r = diag_cpu_rates_begin(pid, ret);

        if (r < 0)
                return r;
        r = diag_cpu_rates_end(ret, window_ms);
        if (r < 0)
                diag_cpu_rates_done(ret);
        return r;
}

double diag_cpu_rates_get(const struct diag_cpu_rates *r, pid_t tid) {
        for (size_t i = 0; r && r->pct && i < r->n; i++)
                if (r->tid[i] == tid)
                        return r->pct[i];
        return -1;
}

void diag_proc_set_cpu_rates(struct diag_proc *p, const struct diag_cpu_rates *r) {
        for (size_t i = 0; i < p->ntasks; i++)
                p->tasks[i].cpu_rate_pct = diag_cpu_rates_get(r, p->tasks[i].tid);
        p->cpu_rate_pct = r->proc_pct;
        p->cpu_rate_window_ms = r->window_ms;
}

char *diag_proc_read_cmdline_at(int dirfd, const char *path, size_t max) {
        char *buf = NULL;
        size_t len = 0;

        if (diag_read_file_at(dirfd, path, max, &buf, &len) < 0 || len == 0) {
                free(buf);
                return NULL;
        }
        for (size_t i = 0; i + 1 < len; i++)
                if (buf[i] == 0)
                        buf[i] = ' ';
        return buf;
}

int diag_proc_read_argv0(pid_t pid, char **ret) {
        char path[64], buf[4096];
        ssize_t n;
        size_t len;

        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        n = diag_read_small_at(AT_FDCWD, path, buf, sizeof buf);
        if (n < 0)
                return n == -ENOENT ? -ESRCH : (int) n;
        len = strnlen(buf, (size_t) n);
        {
                /* one string holding spaces and only padding after it: a rewritten title */
                bool alone = true;
                for (size_t i = len; i < (size_t) n; i++)
                        if (buf[i])
                                alone = false;
                if (alone)
                        len = strcspn(buf, " ");
        }
        if (len == 0)
                return -ENODATA;
        *ret = strndup(buf, len);
        return *ret ? 0 : -ENOMEM;
}

static char *read_link(const char *path) {
        char buf[4096];
        ssize_t n = readlink(path, buf, sizeof buf - 1);

        if (n < 0)
                return NULL;
        buf[n] = 0;
        return strdup(buf);
}

static void task_fill_direct(pid_t pid, struct diag_task *t, unsigned flags) {
        if (flags & DIAG_PROC_SYSCALL) {
                t->sc_err = diag_task_read_syscall(pid, t->tid, &t->sc);
                if (t->sc_err < 0)
                        t->sc.kind = DIAG_SC_UNKNOWN;
        }
        if (flags & DIAG_PROC_WCHAN)
                (void) diag_task_read_wchan(pid, t->tid, t->wchan, sizeof t->wchan);
        t->offcpu_ms = -1;
        if ((flags & DIAG_PROC_SCHED) && t->state != 'R')
                (void) diag_task_read_offcpu_ms(pid, t->tid, &t->offcpu_ms);
        if (flags & DIAG_PROC_KSTACK)
                t->kstack_err = diag_task_read_kstack(pid, t->tid, &t->kstack);
}

int diag_proc_load(pid_t pid, unsigned flags, struct diag_proc **ret) {
        enum pids_item items[] = {
                PIDS_ID_PID, PIDS_ID_TGID, PIDS_CMD, PIDS_STATE, PIDS_TICS_ALL,
                PIDS_UTILIZATION, PIDS_ID_RUID,
        };
        enum { I_TID, I_TGID, I_CMD, I_STATE, I_TICS, I_UTIL, I_RUID };
        _cleanup_(pids_unrefp) struct pids_info *info = NULL;
        struct pids_fetch *f;
        unsigned sel = (unsigned) pid;
        struct diag_proc *p;
        long hz = sysconf(_SC_CLK_TCK);
        size_t alloc = 0;
        int r;

        r = procps_pids_new(&info, items, (int) ELEMENTSOF(items));
        if (r < 0)
                return r;
        f = procps_pids_select(info, &sel, 1, PIDS_SELECT_PID_THREADS);
        if (!f)
                return -errno ?: -ENOMEM;
        if (f->counts->total <= 0)
                return -ESRCH;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->pid = pid;
        p->state = '?';
        p->cpu_rate_pct = -1;
        for (int i = 0; i < f->counts->total; i++) {
                struct pids_stack *s = f->stacks[i];
                struct diag_task *t;
                pid_t tid = DIAG_PIDS_VAL(I_TID, s_int, s);

                if (DIAG_PIDS_VAL(I_TGID, s_int, s) != pid)
                        continue;
                /* The selection holds the process (its stat sums every thread)
                 * and then each task, the leader's included: keep the task. */
                t = diag_proc_find_task(p, tid);
                if (!t) {
                        if (DIAG_GROW(p->tasks, alloc, p->ntasks + 1) < 0) {
                                diag_proc_free(p);
                                return -ENOMEM;
                        }
                        t = &p->tasks[p->ntasks++];
                }
                t->tid = tid;
                snprintf(t->comm, sizeof t->comm, "%s", DIAG_PIDS_VAL(I_CMD, str, s));
                t->state = DIAG_PIDS_VAL(I_STATE, s_ch, s);
                t->cpu_ms = DIAG_PIDS_VAL(I_TICS, ull_int, s) * 1000 / (unsigned long long) (hz > 0 ? hz : 100);
                t->cpu_life_pct = DIAG_PIDS_VAL(I_UTIL, real, s);
                t->cpu_rate_pct = -1;
                if (tid == pid) {
                        (void) task_read_cpu(pid, tid, &t->cpu_ms, &t->cpu_life_pct);
                        snprintf(p->comm, sizeof p->comm, "%s", t->comm);
                        p->state = t->state;
                        p->uid = DIAG_PIDS_VAL(I_RUID, u_int, s);
                }
        }
        if (p->ntasks == 0) {
                diag_proc_free(p);
                return -ESRCH;
        }
        /* A zombie leader keeps live threads; the main task's state is the process's. */
        for (size_t i = 0; i < p->ntasks; i++)
                task_fill_direct(pid, &p->tasks[i], flags);
        {
                char path[64];
                snprintf(path, sizeof path, "/proc/%d/exe", pid);
                p->exe = read_link(path);
        }
        if (flags & DIAG_PROC_CMDLINE) {
                char path[64];
                snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
                p->cmdline = diag_proc_read_cmdline_at(AT_FDCWD, path, 64 * 1024);
                (void) diag_proc_read_argv0(pid, &p->argv0);
        }
        *ret = p;
        return 0;
}

struct diag_proc *diag_proc_free(struct diag_proc *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->ntasks; i++)
                free(p->tasks[i].kstack);
        free(p->tasks);
        free(p->exe);
        free(p->cmdline);
        free(p->argv0);
        free(p);
        return NULL;
}

struct diag_task *diag_proc_find_task(struct diag_proc *p, pid_t tid) {
        for (size_t i = 0; i < p->ntasks; i++)
                if (p->tasks[i].tid == tid)
                        return &p->tasks[i];
        return NULL;
}

pid_t diag_proc_thread_on_fd(pid_t pid, int fd, bool locks_only) {
        enum diag_arch arch = diag_arch_native();
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (diag_proc_list_tids(pid, &tids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                struct diag_syscall_state sc;
                enum diag_sc_class c;

                if (diag_task_read_syscall(pid, tids[i], &sc) < 0 || sc.kind != DIAG_SC_IN ||
                    diag_syscall_fd(arch, &sc) != fd)
                        continue;
                c = diag_syscall_class(arch, &sc);
                if (!locks_only || c == DIAG_SCC_FLOCK || c == DIAG_SCC_FCNTL_LOCK)
                        return tids[i];
        }
        return 0;
}

bool diag_fstype_may_hang(const char *t) {
        static const char *const prefixes[] = {
                "fuse", "nfs", "cifs", "smb", "9p", "ceph", "afs", "lustre", "glusterfs", "gfs2", "ocfs2",
                "orangefs", "virtiofs", "sshfs", "davfs", "coda", "ncpfs",
        };
        for (size_t i = 0; t && i < ELEMENTSOF(prefixes); i++)
                if (strncmp(t, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *mountinfo_unescape(const char *s, size_t len) {
        char *out = malloc(len + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
                    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
                        *o++ = (char) ((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
                        i += 3;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return out;
}

static char *word_dup(const char **p) {
        const char *s = *p, *e;

        while (*s == ' ')
                s++;
        e = s + strcspn(s, " ");
        *p = e;
        return e > s ? mountinfo_unescape(s, (size_t) (e - s)) : NULL;
}

void diag_mounts_done(struct diag_mounts *ms) {
        for (size_t i = 0; i < ms->n; i++) {
                free(ms->m[i].point);
                free(ms->m[i].fstype);
                free(ms->m[i].source);
        }
        free(ms->m);
        *ms = (struct diag_mounts) {};
}

int diag_mounts_read(pid_t pid, struct diag_mounts *ret) {
        char path[64], *save = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len, alloc = 0;
        int r;

        *ret = (struct diag_mounts) {};
        snprintf(path, sizeof path, "/proc/%d/mountinfo", pid);
        r = diag_read_file_at(AT_FDCWD, path, 16 << 20, &text, &len);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                struct diag_mount m = {};
                const char *sep = strstr(l, " - "), *p = l;
                int n = 0;

                if (!sep || sscanf(l, "%d %*u %u:%u %n", &m.id, &m.major, &m.minor, &n) != 3 || n == 0)
                        continue;
                p = l + n;
                free(word_dup(&p));                     /* root */
                m.point = word_dup(&p);
                p = sep + 3;
                m.fstype = word_dup(&p);
                m.source = word_dup(&p);
                if (!m.point || !m.fstype || DIAG_GROW(ret->m, alloc, ret->n + 1) < 0) {
                        free(m.point);
                        free(m.fstype);
                        free(m.source);
                        if (!m.point || !m.fstype)
                                continue;
                        diag_mounts_done(ret);
                        return -ENOMEM;
                }
                ret->m[ret->n++] = m;
        }
        return 0;
}

const struct diag_mount *diag_mounts_find(const struct diag_mounts *ms, int mnt_id) {
        for (size_t i = 0; ms && i < ms->n; i++)
                if (ms->m[i].id == mnt_id)
                        return &ms->m[i];
        return NULL;
}

int diag_proc_read_remote_devs(pid_t pid, struct diag_remote_devs *ret) {
        _cleanup_(diag_mounts_done) struct diag_mounts ms = {};

        *ret = (struct diag_remote_devs) {};
        if (diag_mounts_read(pid, &ms) < 0)
                return 0;
        for (size_t i = 0; i < ms.n; i++) {
                if (!diag_fstype_may_hang(ms.m[i].fstype))
                        continue;
                if (DIAG_GROW(ret->dev, ret->alloc, ret->n + 1) < 0) {
                        diag_remote_devs_done(ret);
                        return -ENOMEM;
                }
                ret->dev[ret->n][0] = ms.m[i].major;
                ret->dev[ret->n][1] = ms.m[i].minor;
                ret->n++;
        }
        return 0;
}

bool diag_remote_devs_has(const struct diag_remote_devs *d, unsigned major, unsigned minor) {
        for (size_t i = 0; d && i < d->n; i++)
                if (d->dev[i][0] == major && d->dev[i][1] == minor)
                        return true;
        return false;
}

void diag_remote_devs_done(struct diag_remote_devs *d) {
        free(d->dev);
        *d = (struct diag_remote_devs) {};
}

int diag_proc_cgroup_path(const char *text, const char *controller, char *buf, size_t size) {
        /* "ID:controllers:path" lines */
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                const char *c = strchr(l, ':'), *p = c ? strchr(c + 1, ':') : NULL;
                const char *nl = strchr(l, '\n');
                size_t len;

                if (!p || (nl && p > nl))
                        continue;
                if (controller) {
                        size_t cl = strlen(controller);
                        bool found = false;

                        for (const char *t = c + 1; t < p && !found; t = memchr(t, ',', (size_t) (p - t)), t = t ? t + 1 : p)
                                found = strncmp(t, controller, cl) == 0 && (t[cl] == ',' || t + cl == p);
                        if (!found)
                                continue;
                } else if (strncmp(l, "0::", 3) != 0)
                        continue;
                len = strcspn(p + 1, "\n");
                if (len >= size)
                        return -ENAMETOOLONG;
                memcpy(buf, p + 1, len);
                buf[len] = '\0';
                return 0;
        }
        return -ENOENT;
}
