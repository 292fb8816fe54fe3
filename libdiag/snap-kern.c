/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-snap parts that read the kernel's own account of trouble: OOM kills, hung
 * tasks and I/O errors still in the kernel log (read from /dev/kmsg without
 * consuming it), and the threads in uninterruptible sleep (state D) now.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag/kmsg.h"
#include "diag/proc.h"
#include "diag/snap.h"
#include "diag/syscall.h"
#include "diag/util.h"

/* A thread in D state longer than this is worth a finding (ms). */
#define DSTATE_LONG_MS 10000
/* At most this many D-state threads are recorded (the rest are counted). */
#define DSTATE_MAX 2000
/* Threads looked at, at most: bounds the scan of a huge /proc. */
#define DSTATE_SCAN_MAX 200000
/* OOM events kept (the newest), and commands kept per event's task list. */
#define OOM_EVENTS_MAX 64
#define OOM_TASKS_MAX 8
/* Lines of kernel.txt (hung tasks, I/O errors), the newest kept. */
#define KERNEL_LINES_MAX 200
/* Records read from /dev/kmsg at most. */
#define KMSG_RECORDS_MAX 200000

static void json_putp(struct json_object **o) {
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static int write_json(struct diag_snap *s, const char *name, struct json_object *o) {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t len = strlen(t);
        _cleanup_free_ char *buf = malloc(len + 2);

        if (!buf)
                return -ENOMEM;
        memcpy(buf, t, len);
        buf[len] = '\n';
        return diag_snap_write(s, name, buf, len + 1);
}

static struct json_object *json_doc(const char *part) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "schema", json_object_new_string("diag-snap/1"));
        json_object_object_add(o, "part", json_object_new_string(part));
        return o;
}

/* Wall clock of a time since boot (µs), as Unix seconds. */
static double boot_usec_to_wall(uint64_t usec) {
        return (double) diag_kmsg_realtime_ns(usec) / 1e9;
}

static char *format_wall(double t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!localtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "?");
        return buf;
}

/* ------------------------------------------------------------------ oom */

struct oom_task {
        char comm[32];
        unsigned count;
        uint64_t rss_kb;
};

struct oom_event {
        uint64_t usec;
        char invoker[32];
        char constraint[48];
        char task_memcg[160];
        bool memcg;                     /* "Memory cgroup out of memory" */
        bool killed;                    /* the "Killed process" line was seen */
        pid_t pid;
        char comm[32];
        uint64_t anon_kb, file_kb, shmem_kb, total_vm_kb;
        long uid;
        struct oom_task tasks[OOM_TASKS_MAX];
        size_t ntasks;
        unsigned tasks_seen;            /* task list lines */
};

struct kmsg_state {
        struct oom_event *ev;           /* ring of OOM_EVENTS_MAX */
        size_t nev;                     /* events seen in all */
        struct oom_event *cur;          /* the event being filled, NULL outside one */
        unsigned pending_tasks;         /* task list lines before any event (kept for the next) */
        struct oom_task tmp[64];        /* the task list being read, by command */
        size_t ntmp;
        unsigned tmp_lines;
        char (*klines)[320];            /* ring of KERNEL_LINES_MAX */
        size_t nklines;
        unsigned hung, ioerr;
        uint64_t last_hung_usec, last_ioerr_usec;
        char last_hung[200], last_ioerr[200];
};

static struct oom_event *new_event(struct kmsg_state *k, uint64_t usec) {
        struct oom_event *e = &k->ev[k->nev % OOM_EVENTS_MAX];

        memset(e, 0, sizeof *e);
        e->usec = usec;
        e->pid = -1;
        e->uid = -1;
        k->nev++;
        k->ntmp = 0;
        k->tmp_lines = 0;
        return e;
}

static int cmp_task_rss(const void *a, const void *b) {
        const struct oom_task *x = a, *y = b;

        return x->rss_kb < y->rss_kb ? 1 : x->rss_kb > y->rss_kb ? -1 : strcmp(x->comm, y->comm);
}

/* The task list ends at the oom-kill line: keep its biggest commands in the event. */
static void close_task_list(struct kmsg_state *k, struct oom_event *e) {
        if (!e || k->tmp_lines == 0)
                return;
        qsort(k->tmp, k->ntmp, sizeof k->tmp[0], cmp_task_rss);
        e->ntasks = MIN(k->ntmp, (size_t) OOM_TASKS_MAX);
        memcpy(e->tasks, k->tmp, e->ntasks * sizeof e->tasks[0]);
        e->tasks_seen = k->tmp_lines;
        k->ntmp = 0;
        k->tmp_lines = 0;
}

/* "[    412]     0   412     8553      512 ...  name": uid tgid total_vm rss ... name (rss in pages). */
static void task_line(struct kmsg_state *k, const char *text) {
        const char *p = strchr(text, ']');
        char *tok[32], buf[320], *save = NULL;
        size_t n = 0;
        unsigned long long rss;
        long page_kb = sysconf(_SC_PAGESIZE) / 1024;

        if (!p)
                return;
        snprintf(buf, sizeof buf, "%s", p + 1);
        for (char *t = strtok_r(buf, " \t\n", &save); t && n < ELEMENTSOF(tok); t = strtok_r(NULL, " \t\n", &save))
                tok[n++] = t;
        if (n < 5 || diag_parse_ull(tok[3], 10, &rss) < 0)
                return;
        k->tmp_lines++;
        for (size_t i = 0; i < k->ntmp; i++)
                if (strcmp(k->tmp[i].comm, tok[n - 1]) == 0) {
                        k->tmp[i].count++;
                        k->tmp[i].rss_kb += rss * (uint64_t) page_kb;
                        return;
                }
        if (k->ntmp < ELEMENTSOF(k->tmp)) {
                struct oom_task *t = &k->tmp[k->ntmp++];
                snprintf(t->comm, sizeof t->comm, "%s", tok[n - 1]);
                t->count = 1;
                t->rss_kb = rss * (uint64_t) page_kb;
        }
}

static void kernel_line(struct kmsg_state *k, uint64_t usec, const char *text) {
        double w = boot_usec_to_wall(usec);
        char when[32];

        snprintf(k->klines[k->nklines % KERNEL_LINES_MAX], sizeof k->klines[0], "%s  %s",
                 format_wall(w, when, sizeof when), text);
        k->nklines++;
}

static void kmsg_record(struct kmsg_state *k, uint64_t usec, const char *text) {
        struct diag_kmsg_line l;
        struct oom_event *e;

        switch (diag_kmsg_classify(text, &l)) {
        case DIAG_KMSG_OOM_INVOKED:
                e = new_event(k, usec);
                snprintf(e->invoker, sizeof e->invoker, "%s", l.comm);
                k->cur = e;
                break;
        case DIAG_KMSG_OOM_TASK:
                if (k->cur && !k->cur->killed && !strstr(text, "  pid  ]"))
                        task_line(k, text);
                break;
        case DIAG_KMSG_OOM_KILL:
                e = k->cur ? k->cur : new_event(k, usec);
                k->cur = e;
                close_task_list(k, e);
                snprintf(e->constraint, sizeof e->constraint, "%s", l.constraint);
                snprintf(e->task_memcg, sizeof e->task_memcg, "%.*s", (int) sizeof e->task_memcg - 1, l.task_memcg);
                if (!e->comm[0])
                        snprintf(e->comm, sizeof e->comm, "%s", l.comm);
                if (e->pid < 0)
                        e->pid = l.pid < 0 ? 0 : l.pid;
                if (e->uid < 0)
                        e->uid = l.uid < 0 ? 0 : l.uid;
                break;
        case DIAG_KMSG_OOM_KILLED:
                e = k->cur && !k->cur->killed ? k->cur : new_event(k, usec);
                e->memcg = l.memcg;
                e->killed = true;
                if (l.pid > 0)
                        e->pid = l.pid;
                if (l.comm[0])
                        snprintf(e->comm, sizeof e->comm, "%s", l.comm);
                e->total_vm_kb = l.total_vm_kb;
                e->anon_kb = l.anon_kb;
                e->file_kb = l.file_kb;
                e->shmem_kb = l.shmem_kb;
                if (l.uid >= 0)
                        e->uid = l.uid;
                k->cur = NULL;
                break;
        case DIAG_KMSG_HUNG:
                k->hung++;
                k->last_hung_usec = usec;
                snprintf(k->last_hung, sizeof k->last_hung, "%s", text);
                kernel_line(k, usec, text);
                break;
        case DIAG_KMSG_IOERR:
                k->ioerr++;
                k->last_ioerr_usec = usec;
                snprintf(k->last_ioerr, sizeof k->last_ioerr, "%s", text);
                kernel_line(k, usec, text);
                break;
        case DIAG_KMSG_OTHER:
                break;
        }
}

/* Read the whole ring from its oldest record, without consuming it (other readers
 * of /dev/kmsg, and dmesg, see the same). */
static int read_kmsg(struct kmsg_state *k, struct diag_snap *s, unsigned *ret_records) {
        _cleanup_close_ int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        char buf[8192];
        unsigned n = 0;

        if (fd < 0)
                return negative_errno();
        (void) lseek(fd, 0, SEEK_DATA);
        while (n < KMSG_RECORDS_MAX) {
                ssize_t len = read(fd, buf, sizeof buf - 1);
                struct diag_kmsg_record rec;

                if (len < 0) {
                        if (errno == EPIPE)     /* overwritten while we read: go on */
                                continue;
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                if (len == 0)
                        break;
                n++;
                if ((n & 1023) == 0 && diag_snap_expired(s))
                        break;
                buf[len] = 0;
                if (diag_kmsg_parse_record(buf, &rec) == 0)
                        kmsg_record(k, rec.usec, rec.text);
        }
        *ret_records = n;
        return 0;
}

static uint64_t vmstat_oom_kill(int *ret_err) {
        _cleanup_free_ char *text = NULL;
        const char *p;
        int r = diag_read_file_at(AT_FDCWD, "/proc/vmstat", 1 << 20, &text, NULL);

        *ret_err = r;
        if (r < 0)
                return 0;
        p = strstr(text, "\noom_kill ");
        if (!p) {
                *ret_err = -ENOENT;
                return 0;
        }
        return strtoull(p + 10, NULL, 10);
}

static void write_oom_files(struct diag_snap *s, struct kmsg_state *k, uint64_t vm_kills, int vm_err,
                            int kmsg_err, unsigned records) {
        _cleanup_json_ struct json_object *doc = json_doc("oom");
        struct json_object *arr = json_object_new_array();
        size_t first = k->nev > OOM_EVENTS_MAX ? k->nev - OOM_EVENTS_MAX : 0;
        char when[32], sz[DIAG_SIZE_MAX];
        FILE *f;

        json_object_object_add(doc, "kmsg_readable", json_object_new_boolean(kmsg_err == 0));
        json_object_object_add(doc, "kmsg_records", json_object_new_int64(records));
        json_object_object_add(doc, "vmstat_oom_kill", vm_err < 0 ? NULL : json_object_new_int64((int64_t) vm_kills));
        json_object_object_add(doc, "events_in_log", json_object_new_int64((int64_t) k->nev));
        json_object_object_add(doc, "events", arr);

        f = diag_snap_open(s, "oom.txt");
        if (!f)
                diag_snap_missing(s, "oom.txt", "not written: %m");
        if (f) {
                fprintf(f, "OOM kills since boot (/proc/vmstat oom_kill): ");
                if (vm_err < 0)
                        fprintf(f, "unknown (%s)\n", strerror(-vm_err));
                else
                        fprintf(f, "%" PRIu64 "\n", vm_kills);
                if (kmsg_err < 0)
                        fprintf(f, "kernel log: not readable (%s)\n", strerror(-kmsg_err));
                else
                        fprintf(f, "OOM events still in the kernel log: %zu%s\n", k->nev,
                                k->nev > OOM_EVENTS_MAX ? " (the newest kept)" : "");
                if (k->nev)
                        fprintf(f, "\n%-19s  %-7s  %-16s  %10s  %10s  %10s  %-20s  %-16s  %s\n", "TIME", "PID", "COMMAND",
                                "ANON", "FILE", "SHMEM", "CONSTRAINT", "INVOKER", "MEMCG");
        }
        for (size_t i = first; i < k->nev; i++) {
                struct oom_event *e = &k->ev[i % OOM_EVENTS_MAX];
                struct json_object *o = json_object_new_object(), *tl = json_object_new_array();
                double w = boot_usec_to_wall(e->usec);
                char a[DIAG_SIZE_MAX], b[DIAG_SIZE_MAX], c[DIAG_SIZE_MAX];

                json_object_object_add(o, "boot_usec", json_object_new_int64((int64_t) e->usec));
                json_object_object_add(o, "time", json_object_new_double(w));
                json_object_object_add(o, "time_text", json_object_new_string(format_wall(w, when, sizeof when)));
                json_object_object_add(o, "pid", e->pid > 0 ? json_object_new_int(e->pid) : NULL);
                json_object_object_add(o, "comm", json_object_new_string(e->comm));
                json_object_object_add(o, "uid", e->uid >= 0 ? json_object_new_int64(e->uid) : NULL);
                json_object_object_add(o, "killed", json_object_new_boolean(e->killed));
                json_object_object_add(o, "memcg_oom", json_object_new_boolean(e->memcg));
                json_object_object_add(o, "invoker", json_object_new_string(e->invoker));
                json_object_object_add(o, "constraint", json_object_new_string(e->constraint));
                json_object_object_add(o, "task_memcg", json_object_new_string(e->task_memcg));
                json_object_object_add(o, "total_vm_kb", json_object_new_int64((int64_t) e->total_vm_kb));
                json_object_object_add(o, "anon_rss_kb", json_object_new_int64((int64_t) e->anon_kb));
                json_object_object_add(o, "file_rss_kb", json_object_new_int64((int64_t) e->file_kb));
                json_object_object_add(o, "shmem_rss_kb", json_object_new_int64((int64_t) e->shmem_kb));
                json_object_object_add(o, "tasks_listed", json_object_new_int64(e->tasks_seen));
                for (size_t j = 0; j < e->ntasks; j++) {
                        struct json_object *t = json_object_new_object();
                        json_object_object_add(t, "comm", json_object_new_string(e->tasks[j].comm));
                        json_object_object_add(t, "count", json_object_new_int64(e->tasks[j].count));
                        json_object_object_add(t, "rss_kb", json_object_new_int64((int64_t) e->tasks[j].rss_kb));
                        json_object_array_add(tl, t);
                }
                json_object_object_add(o, "top_tasks", tl);
                json_object_array_add(arr, o);
                if (!f)
                        continue;
                fprintf(f, "%-19s  %-7d  %-16s  %10s  %10s  %10s  %-20s  %-16s  %s\n", when, e->pid, e->comm[0] ? e->comm : "?",
                        diag_format_size(e->anon_kb * 1024, a, sizeof a), diag_format_size(e->file_kb * 1024, b, sizeof b),
                        diag_format_size(e->shmem_kb * 1024, c, sizeof c), e->constraint[0] ? e->constraint : "-",
                        e->invoker[0] ? e->invoker : "-", e->task_memcg[0] ? e->task_memcg : "-");
                for (size_t j = 0; j < e->ntasks; j++)
                        fprintf(f, "%21s %-16s x%-5u rss %s\n", "", e->tasks[j].comm, e->tasks[j].count,
                                diag_format_size(e->tasks[j].rss_kb * 1024, sz, sizeof sz));
        }
        if (f)
                (void) diag_snap_close(s, f, "oom.txt");
        (void) write_json(s, "oom.json", doc);
}

static void write_kernel_files(struct diag_snap *s, struct kmsg_state *k) {
        size_t first = k->nklines > KERNEL_LINES_MAX ? k->nklines - KERNEL_LINES_MAX : 0;
        _cleanup_json_ struct json_object *doc = json_doc("oom");
        struct json_object *arr = json_object_new_array();
        FILE *f = diag_snap_open(s, "kernel.txt");

        json_object_object_add(doc, "hung_task_warnings", json_object_new_int64(k->hung));
        json_object_object_add(doc, "io_errors", json_object_new_int64(k->ioerr));
        json_object_object_add(doc, "lines", arr);
        if (!f)
                diag_snap_missing(s, "kernel.txt", "not written: %m");
        else
                fprintf(f, "hung-task warnings: %u, I/O errors: %u (in the kernel log)%s\n", k->hung, k->ioerr,
                        first ? "; the newest lines:" : "");
        for (size_t i = first; i < k->nklines; i++) {
                json_object_array_add(arr, json_object_new_string(k->klines[i % KERNEL_LINES_MAX]));
                if (f)
                        fprintf(f, "%s\n", k->klines[i % KERNEL_LINES_MAX]);
        }
        if (f)
                (void) diag_snap_close(s, f, "kernel.txt");
        (void) write_json(s, "kernel.json", doc);
}

int diag_snap_oom(struct diag_snap *s) {
        struct kmsg_state k = {};
        unsigned records = 0;
        uint64_t kills;
        int vm_err, kmsg_err;
        char when[32], sz[DIAG_SIZE_MAX];

        k.ev = calloc(OOM_EVENTS_MAX, sizeof *k.ev);
        k.klines = calloc(KERNEL_LINES_MAX, sizeof *k.klines);
        if (!k.ev || !k.klines) {
                free(k.ev);
                free(k.klines);
                return -ENOMEM;
        }
        kills = vmstat_oom_kill(&vm_err);
        if (vm_err < 0)
                diag_snap_missing(s, "/proc/vmstat oom_kill", "%s", strerror(-vm_err));
        kmsg_err = read_kmsg(&k, s, &records);
        if (kmsg_err < 0)
                diag_snap_missing(s, "/dev/kmsg", "OOM events, hung tasks and I/O errors not read: %s%s",
                                  strerror(-kmsg_err),
                                  kmsg_err == -EPERM || kmsg_err == -EACCES ? " (not root, or kernel.dmesg_restrict)" : "");
        write_oom_files(s, &k, kills, vm_err, kmsg_err, records);
        if (kmsg_err == 0)
                write_kernel_files(s, &k);

        if (k.nev > 0) {
                struct oom_event *e = &k.ev[(k.nev - 1) % OOM_EVENTS_MAX];
                diag_snap_finding(s, DIAG_SNAP_CRIT, "oom.txt",
                                  "OOM killer: %" PRIu64 " kills since boot, %zu in the kernel log, last %s %s (pid %d, %s anon)%s%s",
                                  kills, k.nev, format_wall(boot_usec_to_wall(e->usec), when, sizeof when),
                                  e->comm[0] ? e->comm : "?", e->pid, diag_format_size(e->anon_kb * 1024, sz, sizeof sz),
                                  e->memcg ? " in memory cgroup " : "", e->memcg ? e->task_memcg : "");
        } else if (vm_err == 0 && kills > 0) {
                diag_snap_finding(s, DIAG_SNAP_WARN, "oom.txt", "OOM killer: %" PRIu64 " kills since boot, %s", kills,
                                  kmsg_err < 0 ? "the kernel log not readable" : "none left in the kernel log");
        }
        if (k.hung)
                diag_snap_finding(s, DIAG_SNAP_WARN, "kernel.txt", "hung tasks: %u warnings in the kernel log, last %s: %s",
                                  k.hung, format_wall(boot_usec_to_wall(k.last_hung_usec), when, sizeof when), k.last_hung);
        if (k.ioerr)
                diag_snap_finding(s, DIAG_SNAP_WARN, "kernel.txt", "I/O errors: %u in the kernel log, last %s: %s",
                                  k.ioerr, format_wall(boot_usec_to_wall(k.last_ioerr_usec), when, sizeof when), k.last_ioerr);
        free(k.ev);
        free(k.klines);
        return 0;
}

/* --------------------------------------------------------------- dstate */

struct dthread {
        pid_t pid, tid;
        char comm[17];
        char wchan[64];
        char syscall[32];
        int64_t blocked_ms;
        char *kstack;
};

struct wchan_group {
        char wchan[64];
        unsigned n, nlong;
};

static int cmp_blocked(const void *a, const void *b) {
        const struct dthread *x = a, *y = b;

        return x->blocked_ms < y->blocked_ms ? 1 : x->blocked_ms > y->blocked_ms ? -1 : x->tid - y->tid;
}

static int cmp_group(const void *a, const void *b) {
        const struct wchan_group *x = a, *y = b;

        return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->wchan, y->wchan);
}

/* "pid (comm) S ...": state and comm of one thread. */
static bool read_stat(int taskfd, const char *tid, char *ret_state, char *comm, size_t size) {
        char path[64], buf[1024];
        struct diag_stat st;
        ssize_t n;

        if (snprintf(path, sizeof path, "%s/stat", tid) >= (int) sizeof path)
                return false;
        n = diag_read_small_at(taskfd, path, buf, sizeof buf);
        if (n <= 0 || diag_stat_parse(buf, &st) < 0)
                return false;
        *ret_state = st.state;
        size_t len = strnlen(st.comm, size - 1);

        memcpy(comm, st.comm, len);     /* as the kernel cuts it: 15 bytes */
        comm[len] = '\0';
        return true;
}

static bool is_pid(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

static void read_dthread(struct dthread *t, bool root) {
        struct diag_syscall_state sc;

        t->blocked_ms = -1;
        (void) diag_task_read_wchan(t->pid, t->tid, t->wchan, sizeof t->wchan);
        (void) diag_task_read_offcpu_ms(t->pid, t->tid, &t->blocked_ms);
        if (diag_task_read_syscall(t->pid, t->tid, &sc) == 0) {
                const char *name = sc.kind == DIAG_SC_IN ? diag_syscall_name(diag_arch_native(), sc.nr) : NULL;

                if (name)
                        snprintf(t->syscall, sizeof t->syscall, "%s", name);
                else if (sc.kind == DIAG_SC_IN)
                        snprintf(t->syscall, sizeof t->syscall, "#%ld", sc.nr);
                else
                        snprintf(t->syscall, sizeof t->syscall, "-");
        }
        if (root)
                (void) diag_task_read_kstack(t->pid, t->tid, &t->kstack);
}

int diag_snap_dstate(struct diag_snap *s) {
        _cleanup_json_ struct json_object *doc = json_doc("dstate");
        struct json_object *arr = json_object_new_array(), *groups = json_object_new_array();
        struct dthread *th = NULL;
        struct wchan_group *grp = NULL;
        size_t nth = 0, ath = 0, ngrp = 0, agrp = 0, skipped = 0, scanned = 0, nlong = 0;
        bool truncated = false;
        pid_t self = getpid();
        DIR *proc;
        FILE *f;
        char dur[DIAG_DURATION_MAX];

        proc = opendir("/proc");
        if (!proc) {
                json_object_put(arr);
                json_object_put(groups);
                return negative_errno();
        }
        for (struct dirent *de; (de = readdir(proc));) {
                _cleanup_close_ int taskfd = -1;
                char path[64];
                DIR *tasks;
                long long pid;

                if (!is_pid(de->d_name) || diag_parse_ll(de->d_name, 10, 1, INT32_MAX, &pid) < 0 || pid == self)
                        continue;
                if (scanned >= DSTATE_SCAN_MAX || diag_snap_expired(s)) {
                        truncated = true;
                        break;
                }
                snprintf(path, sizeof path, "/proc/%lld/task", pid);
                taskfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (taskfd < 0)
                        continue;       /* gone */
                tasks = fdopendir(dup(taskfd));
                if (!tasks)
                        continue;
                for (struct dirent *te; (te = readdir(tasks));) {
                        char state, comm[17];
                        long long tid;

                        if (!is_pid(te->d_name) || diag_parse_ll(te->d_name, 10, 1, INT32_MAX, &tid) < 0)
                                continue;
                        scanned++;
                        if (!read_stat(taskfd, te->d_name, &state, comm, sizeof comm) || state != 'D')
                                continue;
                        if (nth >= DSTATE_MAX) {
                                skipped++;
                                continue;
                        }
                        if (DIAG_GROW(th, ath, nth + 1) < 0) {
                                skipped++;
                                continue;
                        }
                        memset(&th[nth], 0, sizeof th[nth]);
                        th[nth].pid = (pid_t) pid;
                        th[nth].tid = (pid_t) tid;
                        snprintf(th[nth].comm, sizeof th[nth].comm, "%s", comm);
                        read_dthread(&th[nth], s->root);
                        nth++;
                }
                closedir(tasks);
        }
        closedir(proc);
        if (truncated)
                diag_snap_missing(s, "dstate.txt", "scan stopped after %zu threads (deadline or bound)", scanned);
        if (!s->root && nth)
                diag_snap_missing(s, "dstate kernel stacks", "/proc/PID/task/TID/stack needs root");

        if (nth)
                qsort(th, nth, sizeof *th, cmp_blocked);
        for (size_t i = 0; i < nth; i++) {
                const char *w = th[i].wchan[0] ? th[i].wchan : "?";
                size_t g;
                bool lng = th[i].blocked_ms >= DSTATE_LONG_MS;

                nlong += lng;
                for (g = 0; g < ngrp && strcmp(grp[g].wchan, w) != 0; g++)
                        ;
                if (g == ngrp) {
                        if (DIAG_GROW(grp, agrp, ngrp + 1) < 0)
                                continue;
                        memset(&grp[g], 0, sizeof grp[g]);
                        snprintf(grp[g].wchan, sizeof grp[g].wchan, "%s", w);
                        ngrp++;
                }
                grp[g].n++;
                grp[g].nlong += lng;
        }
        if (ngrp)
                qsort(grp, ngrp, sizeof *grp, cmp_group);

        json_object_object_add(doc, "threads_scanned", json_object_new_int64((int64_t) scanned));
        json_object_object_add(doc, "complete", json_object_new_boolean(!truncated));
        json_object_object_add(doc, "count", json_object_new_int64((int64_t) (nth + skipped)));
        json_object_object_add(doc, "not_listed", json_object_new_int64((int64_t) skipped));
        json_object_object_add(doc, "long_ms", json_object_new_int64(DSTATE_LONG_MS));
        json_object_object_add(doc, "count_long", json_object_new_int64((int64_t) nlong));
        json_object_object_add(doc, "threads", arr);
        json_object_object_add(doc, "by_wchan", groups);

        f = diag_snap_open(s, "dstate.txt");
        if (!f)
                diag_snap_missing(s, "dstate.txt", "not written: %m");
        if (f) {
                fprintf(f, "threads in D state: %zu (of %zu threads)%s\n", nth + skipped, scanned,
                        truncated ? ", scan incomplete" : "");
                if (ngrp) {
                        fprintf(f, "\n%6s  %6s  %s\n", "COUNT", ">10s", "WCHAN");
                        for (size_t g = 0; g < ngrp; g++)
                                fprintf(f, "%6u  %6u  %s\n", grp[g].n, grp[g].nlong, grp[g].wchan);
                        fprintf(f, "\n%7s  %7s  %-16s  %-10s  %-16s  %s\n", "PID", "TID", "COMMAND", "BLOCKED", "SYSCALL", "WCHAN");
                }
        }
        for (size_t g = 0; g < ngrp; g++) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "wchan", json_object_new_string(grp[g].wchan));
                json_object_object_add(o, "count", json_object_new_int64(grp[g].n));
                json_object_object_add(o, "count_long", json_object_new_int64(grp[g].nlong));
                json_object_array_add(groups, o);
        }
        for (size_t i = 0; i < nth; i++) {
                struct dthread *t = &th[i];
                struct json_object *o = json_object_new_object();

                json_object_object_add(o, "pid", json_object_new_int(t->pid));
                json_object_object_add(o, "tid", json_object_new_int(t->tid));
                json_object_object_add(o, "comm", json_object_new_string(t->comm));
                json_object_object_add(o, "wchan", json_object_new_string(t->wchan));
                json_object_object_add(o, "syscall", json_object_new_string(t->syscall));
                json_object_object_add(o, "blocked_ms", t->blocked_ms >= 0 ? json_object_new_int64(t->blocked_ms) : NULL);
                json_object_object_add(o, "kstack", t->kstack ? json_object_new_string(t->kstack) : NULL);
                json_object_array_add(arr, o);
                if (!f)
                        continue;
                fprintf(f, "%7d  %7d  %-16s  %-10s  %-16s  %s\n", t->pid, t->tid, t->comm,
                        t->blocked_ms >= 0 ? diag_format_duration((uint64_t) t->blocked_ms, dur, sizeof dur) : "?",
                        t->syscall[0] ? t->syscall : "?", t->wchan[0] ? t->wchan : "?");
                if (t->kstack) {
                        char *save = NULL, *copy = strdup(t->kstack);
                        for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
                                fprintf(f, "%20s%s\n", "", l);
                        free(copy);
                }
        }
        if (f)
                (void) diag_snap_close(s, f, "dstate.txt");
        (void) write_json(s, "dstate.json", doc);

        if (nlong > 0) {
                size_t top = 0;
                for (size_t g = 1; g < ngrp; g++)
                        if (grp[g].nlong > grp[top].nlong)
                                top = g;
                diag_snap_finding(s, nlong >= 5 ? DIAG_SNAP_CRIT : DIAG_SNAP_WARN, "dstate.txt",
                                  "%zu threads in D state for > %d s: %u in %s; longest pid %d (%s) %s",
                                  nlong, DSTATE_LONG_MS / 1000, grp[top].nlong, grp[top].wchan, th[0].pid, th[0].comm,
                                  diag_format_duration((uint64_t) th[0].blocked_ms, dur, sizeof dur));
        } else if (nth > 0) {
                diag_snap_finding(s, DIAG_SNAP_INFO, "dstate.txt", "%zu threads in D state, none for > %d s (most in %s)",
                                  nth, DSTATE_LONG_MS / 1000, grp ? grp[0].wchan : "?");
        }
        for (size_t i = 0; i < nth; i++)
                free(th[i].kstack);
        free(th);
        free(grp);
        return 0;
}
