/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-sample: what a spinning or slow process does over seconds, with no stop.
 *
 * Three measurements over one window, none of which stops or writes into the
 * target and none of which uses ptrace:
 *   - on-CPU stacks: perf samples with a copy of the user stack, unwound with
 *     libdw's CFI (diag/perf.h), CPython frames spliced in (diag/pyframes.h);
 *   - off-CPU reasons: every thread's state, system call and wchan from /proc
 *     at the same rate (the files are kept open and re-read with pread);
 *   - system calls: exact counts, errors and latency aggregated in the kernel
 *     (diag/syscount.h).
 * Then a verdict per process, tables, a merged stack tree, and on request the
 * collapsed stacks and a flame graph.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diag/fdname.h"
#include "diag/flame.h"
#include "diag/log.h"
#include "diag/mem.h"
#include "diag/out.h"
#include "diag/perf.h"
#include "diag/proc.h"
#include "diag/pyframes.h"
#include "diag/sym.h"
#include "diag/syscall.h"
#include "diag/syscount.h"
#include "diag/target.h"
#include "diag/unwind.h"
#include "diag/util.h"

/* Verdict thresholds (diag-sample(1) VERDICT lists them). */
#define BUSY_THREAD_PCT 80.0            /* a thread on a CPU this much of the window spins */
#define STORM_CALLS_PER_S 10000.0       /* this many system calls a second is a storm */
#define BUSY_FEW_CALLS_PER_S 1000.0     /* a busy thread with fewer calls loops in user space */
#define WAITING_PCT 90.0                /* threads off CPU this much of the window wait */
#define MAX_AUTO_PROCS 10               /* -a: processes reported */
#define PROC_RESCAN_MS 100              /* new threads: re-list /proc/PID/task this often */

static struct {
        pid_t *pids;
        size_t npids;
        bool all, json, python, syscalls, kernel;
        uint64_t duration_ms;
        unsigned hz, top, max_frames;
        const char *folded, *svg;
} arg = {
        .python = true, .syscalls = true, .kernel = true,
        .duration_ms = 5000, .hz = 99, .top = 5, .max_frames = 64,
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
        stop_requested = sig;
}

/* ---- what is collected ---- */

struct funcrec {
        char *func, *module;
        uint64_t samples;
};

struct waitcount {
        char *what;                     /* "futex in worker_wait" */
        const char *syscall;            /* static name, NULL if none */
        char state;
        char *wchan;
        char *function;
        unsigned ticks;
};

struct thread {
        pid_t tid;
        char name[17];
        bool started, exited;
        int fd_stat, fd_syscall, fd_wchan, fd_sched;
        uint64_t oncpu0, oncpu1;        /* schedstat ns at start and last reading */
        uint64_t ut0, st0, ut1, st1;    /* utime/stime ticks at start and last reading */
        bool have0;
        unsigned ticks;                 /* /proc readings */
        unsigned running_ticks;
        unsigned oncpu_samples, user_samples;
        struct funcrec *hot, *leaf;     /* per sample: the program's frame, the leaf */
        size_t nhot, ahot, nleaf, aleaf;
        struct waitcount *waits;
        size_t nwaits, await;
        char last_sc[160];              /* the syscall text of the last tick, and the */
        int last_wait;                  /* wait it was counted as (-1 none) */
};

/* A frame kept for the report: owns its strings. */
struct sframe {
        char *func, *file, *module;
        int line;
        uint64_t pc;
        bool inlined, python, kernel;
};

struct stackrec {
        char *key;
        struct sframe *frames;          /* innermost first */
        size_t n;
        uint64_t samples;
        pid_t tids[8];
        size_t ntids;
};

struct proc {
        pid_t pid;
        char comm[17];
        char *cmdline;
        bool started, exited, named;
        bool syscall_denied;            /* task/TID/syscall not readable (ptrace-read permission) */
        int dirfd;                      /* /proc/PID */
        struct thread *threads;
        size_t nthreads, athreads;
        uint64_t oncpu_samples, proc_ticks;
        uint64_t last_rescan_ns;
        struct diag_maps *maps;
        struct diag_pyreader *py;
        char *pyversion;
        bool py_tried;
        struct stackrec *stacks;
        size_t nstacks, astacks;
        struct funcrec *funcs, *mods;
        size_t nfuncs, afuncs, nmods, amods;
        struct diag_flame *flame;
        struct diag_syscount_entry *sc;
        size_t nsc;
        char verdict_kind[16];
        /* the arguments of the system calls its samples caught (x86-64: the user
         * registers of a sample taken in do_syscall_64), by first argument */
        struct scargs { uint64_t args[6]; uint64_t n; } scargs[8];
        uint64_t nscargs;
        char *verdict;
        uint64_t exited_ns;
};

static struct {
        struct proc *p;
        size_t n, alloc;
        enum diag_arch arch;
        struct diag_symcache *symcache;
        struct diag_perf_unwind *unw;
        struct diag_perf *perf;
        struct diag_syscount *sc;
        const char *perf_reason, *sc_reason;
        char *missing[8];
        const char *missing_part[8];
        size_t nmissing;
        uint64_t t0, t1;                /* window, CLOCK_MONOTONIC ns */
        uint64_t poll_until;            /* on_event stops a poll here (the next tick, the end), 0 never */
        uint64_t report_ns;
        uint64_t lost;
        struct diag_flame *flame;       /* every process, for --folded and --svg */
} S;

static void add_missing(const char *part, const char *fmt, ...) _printf_(2, 3);
static void add_missing(const char *part, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (S.nmissing >= ELEMENTSOF(S.missing))
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return;
        S.missing_part[S.nmissing] = part;
        S.missing[S.nmissing++] = s;
}

static struct proc *proc_find(pid_t pid) {
        for (size_t i = 0; i < S.n; i++)
                if (S.p[i].pid == pid)
                        return &S.p[i];
        return NULL;
}

static int open_task_file(int dirfd, pid_t tid, const char *name) {
        char path[64];
        snprintf(path, sizeof path, "task/%d/%s", (int) tid, name);
        return openat(dirfd, path, O_RDONLY | O_CLOEXEC);
}

static void thread_close(struct thread *t) {
        int *fds[] = { &t->fd_stat, &t->fd_syscall, &t->fd_wchan, &t->fd_sched };
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (*fds[i] >= 0) {
                        close(*fds[i]);
                        *fds[i] = -1;
                }
}

/* "S 1 2 ... utime stime": state, utime, stime from a stat text. */
static int parse_stat(const char *buf, char *state, uint64_t *ut, uint64_t *st) {
        struct diag_stat s;

        if (diag_stat_parse(buf, &s) < 0 || s.n < 12)
                return -EINVAL;
        *state = s.state;
        *ut = DIAG_STAT_FIELD(&s, 14);
        *st = DIAG_STAT_FIELD(&s, 15);
        return 0;
}

static ssize_t pread_text(int fd, char *buf, size_t size) {
        ssize_t n;
        if (fd < 0)
                return -EBADF;
        n = pread(fd, buf, size - 1, 0);
        if (n < 0)
                return negative_errno();
        buf[n] = 0;
        return n;
}

static int read_schedstat(int fd, uint64_t *ns) {
        char buf[128];
        unsigned long long v;
        if (pread_text(fd, buf, sizeof buf) <= 0 || sscanf(buf, "%llu", &v) != 1)
                return -EIO;
        *ns = v;
        return 0;
}

static struct thread *thread_find(struct proc *p, pid_t tid) {
        for (size_t i = 0; i < p->nthreads; i++)
                if (p->threads[i].tid == tid)
                        return &p->threads[i];
        return NULL;
}

static struct thread *thread_add(struct proc *p, pid_t tid, bool started) {
        struct thread *t = thread_find(p, tid);
        char buf[512], st;

        if (t)
                return t;
        if (DIAG_GROW(p->threads, p->athreads, p->nthreads + 1) < 0)
                return NULL;
        t = &p->threads[p->nthreads++];
        memset(t, 0, sizeof *t);
        t->tid = tid;
        t->started = started;
        t->last_wait = -1;
        t->fd_stat = t->fd_syscall = t->fd_wchan = t->fd_sched = -1;
        if (p->dirfd >= 0) {
                char path[64];
                snprintf(path, sizeof path, "task/%d/comm", (int) tid);
                if (diag_read_small_at(p->dirfd, path, t->name, sizeof t->name) > 0)
                        diag_strip(t->name);
        }
        if (p->dirfd >= 0 && !arg.all) {    /* -a: samples only, no /proc ticks */
                t->fd_stat = open_task_file(p->dirfd, tid, "stat");
                t->fd_syscall = open_task_file(p->dirfd, tid, "syscall");
                if (t->fd_syscall < 0 && (errno == EACCES || errno == EPERM))
                        p->syscall_denied = true;
                t->fd_wchan = open_task_file(p->dirfd, tid, "wchan");
                t->fd_sched = open_task_file(p->dirfd, tid, "schedstat");
                if (read_schedstat(t->fd_sched, &t->oncpu0) == 0 && pread_text(t->fd_stat, buf, sizeof buf) > 0 &&
                    parse_stat(buf, &st, &t->ut0, &t->st0) == 0) {
                        t->have0 = true;
                        t->oncpu1 = t->oncpu0;
                        t->ut1 = t->ut0;
                        t->st1 = t->st0;
                }
                /* a thread born in the window: its time so far is all in the window */
                if (started && t->have0)
                        t->oncpu0 = t->ut0 = t->st0 = 0;
        }
        return t;
}

static void proc_rescan(struct proc *p, bool started) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (p->exited || diag_proc_list_tids(p->pid, &tids, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                (void) thread_add(p, tids[i], started);
}

static struct proc *proc_add(pid_t pid, bool started, bool named) {
        struct proc *p = proc_find(pid);
        char path[32];

        if (p)
                return p;
        if (DIAG_GROW(S.p, S.alloc, S.n + 1) < 0)
                return NULL;
        p = &S.p[S.n++];
        memset(p, 0, sizeof *p);
        p->pid = pid;
        p->started = started;
        p->named = named;
        snprintf(path, sizeof path, "/proc/%d", (int) pid);
        p->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (diag_proc_read_comm(pid, p->comm, sizeof p->comm) < 0)
                snprintf(p->comm, sizeof p->comm, "?");
        p->cmdline = diag_proc_read_cmdline_at(p->dirfd, "cmdline", 4096);
        (void) diag_flame_new(&p->flame);
        proc_rescan(p, started);
        return p;
}

static void funcs_free(struct funcrec *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].func);
                free(v[i].module);
        }
        free(v);
}

static void sframes_free(struct sframe *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].func);
                free(v[i].file);
                free(v[i].module);
        }
        free(v);
}

static void proc_free(struct proc *p) {
        for (size_t i = 0; i < p->nthreads; i++) {
                struct thread *t = &p->threads[i];
                thread_close(t);
                for (size_t k = 0; k < t->nwaits; k++) {
                        free(t->waits[k].what);
                        free(t->waits[k].wchan);
                        free(t->waits[k].function);
                }
                free(t->waits);
                funcs_free(t->hot, t->nhot);
                funcs_free(t->leaf, t->nleaf);
        }
        free(p->threads);
        for (size_t i = 0; i < p->nstacks; i++) {
                struct stackrec *s = &p->stacks[i];
                sframes_free(s->frames, s->n);
                free(s->key);
        }
        free(p->stacks);
        funcs_free(p->funcs, p->nfuncs);
        funcs_free(p->mods, p->nmods);
        diag_flame_free(p->flame);
        diag_pyreader_free(p->py);
        diag_maps_free(p->maps);
        free(p->pyversion);
        free(p->cmdline);
        free(p->sc);
        free(p->verdict);
        if (p->dirfd >= 0)
                close(p->dirfd);
}

static struct diag_pyreader *proc_py(struct proc *p) {
        if (!arg.python || p->py_tried)
                return p->py;
        p->py_tried = true;
        int r = diag_pyreader_new(p->pid, &p->py, &p->pyversion);
        if (r < 0) {
                p->py = NULL;
                if (r == -EPROTONOSUPPORT)
                        add_missing("python", "pid %d: CPython %s is a version the frame reader does not know: native frames only",
                                    p->pid, p->pyversion ? p->pyversion : "(unknown)");
        }
        return p->py;
}

/* qsort that accepts an empty array with a NULL base */
static void sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        if (n > 1)
                qsort(base, n, size, cmp);
}

/* ---- the /proc ticks ---- */

static const char *base_name(const char *path) {
        const char *s = path ? strrchr(path, '/') : NULL;
        return s ? s + 1 : path;
}

/* A module of CPython's standard library (.../lib/python3.X/..., not a
 * site-packages or dist-packages directory under it). */
static bool py_stdlib(const char *file) {
        const char *l = file ? strstr(file, "/lib/python3") : NULL;
        return l && !strstr(l, "-packages/");
}

/* Where a thread blocked in a system call is, without stopping it: its innermost
 * Python frame, else the first native frame outside libc and the loader. */
static char *wait_function(struct proc *p, pid_t tid, const struct diag_syscall_state *sc) {
        struct diag_peek_frame fr[8];
        size_t n;

        if (proc_py(p)) {
                struct diag_pythread pt = { 0 };
                char *s = NULL;
                if (diag_pyreader_thread(p->py, tid, &pt) == 0 && pt.n) {
                        const struct diag_pyframe *in = &pt.frames[0], *from = NULL;
                        /* a wait inside the standard library (Condition.wait under
                         * Queue.get, Semaphore.acquire, ...): also the program's own
                         * frame that called into it */
                        if (py_stdlib(in->filename))
                                for (size_t i = 1; i < pt.n && !from; i++)
                                        if (!py_stdlib(pt.frames[i].filename))
                                                from = &pt.frames[i];
                        int r = from ? asprintf(&s, "%s (%s:%d) from %s (%s:%d)", in->qualname ? in->qualname : "?",
                                                base_name(in->filename ? in->filename : "?"), in->line,
                                                from->qualname ? from->qualname : "?",
                                                base_name(from->filename ? from->filename : "?"), from->line)
                                     : asprintf(&s, "%s (%s:%d)", in->qualname ? in->qualname : "?",
                                                base_name(in->filename ? in->filename : "?"), in->line);
                        if (r < 0)
                                s = NULL;
                }
                diag_pythread_clear(&pt);
                if (s)
                        return s;
        }
        if (sc->kind != DIAG_SC_IN)
                return NULL;
        if (!p->maps && diag_maps_read(p->pid, &p->maps) < 0)
                return NULL;
        n = diag_symcache_peek(S.symcache, p->pid, p->maps, sc->sp, sc->pc, fr, ELEMENTSOF(fr));
        for (size_t i = 0; i < n; i++) {
                const char *m = fr[i].module;
                if (fr[i].func && m && !strstr(m, "/libc.so") && !strstr(m, "/ld-linux") && !strstr(m, "/libpthread"))
                        return strdup(fr[i].func);
        }
        for (size_t i = n; i-- > 0;)
                if (fr[i].func)
                        return strdup(fr[i].func);
        return NULL;
}

/* "read(fd 5, socket)" for the calls that work on an fd, else the name. */
static void syscall_words(struct proc *p, const struct diag_syscall_state *sc, const char *name, char *buf, size_t size) {
        int fd = diag_fdname_syscall_fd(S.arch, sc);
        struct diag_fdname fn;

        if (fd >= 0 && diag_fdname_read(p->pid, fd, NULL, &fn) == 0) {
                const char *kind = fn.link ? fn.link : "?";
                char what[64];
                if (strncmp(kind, "socket:", 7) == 0)
                        kind = "socket";
                else if (strncmp(kind, "pipe:", 5) == 0)
                        kind = "pipe";
                else if (strncmp(kind, "anon_inode:", 11) == 0)
                        kind = kind + 11;
                snprintf(what, sizeof what, "%s", kind);
                snprintf(buf, size, "%s(fd %d, %s)", name, fd, what);
                diag_fdname_done(&fn);
        } else if (fd >= 0)
                snprintf(buf, size, "%s(fd %d)", name, fd);
        else
                snprintf(buf, size, "%s", name);
}

static int wait_add(struct thread *t, const char *what, const char *scname, char state, const char *wchan,
                    const char *func) {
        for (size_t i = 0; i < t->nwaits; i++)
                if (strcmp(t->waits[i].what, what) == 0) {
                        t->waits[i].ticks++;
                        return (int) i;
                }
        if (DIAG_GROW(t->waits, t->await, t->nwaits + 1) < 0)
                return -1;
        t->waits[t->nwaits] = (struct waitcount) {
                .what = strdup(what), .syscall = scname, .state = state,
                .wchan = wchan && *wchan ? strdup(wchan) : NULL, .function = func ? strdup(func) : NULL, .ticks = 1,
        };
        if (!t->waits[t->nwaits].what)
                return -1;
        return (int) t->nwaits++;
}

static void tick_thread(struct proc *p, struct thread *t) {
        char stat[512], scbuf[160], wchan[64] = "", what[256], call[128];
        struct diag_syscall_state sc;
        const char *scname = NULL;
        char state;
        uint64_t ut, st;

        if (t->exited)
                return;
        if (pread_text(t->fd_stat, stat, sizeof stat) <= 0 || parse_stat(stat, &state, &ut, &st) < 0 || state == 'Z' ||
            state == 'X') {
                t->exited = true;
                thread_close(t);
                return;
        }
        t->ut1 = ut;
        t->st1 = st;
        (void) read_schedstat(t->fd_sched, &t->oncpu1);
        t->ticks++;
        p->proc_ticks++;
        if (state == 'R') {
                t->running_ticks++;
                t->last_wait = -1;
                return;
        }
        if (pread_text(t->fd_syscall, scbuf, sizeof scbuf) <= 0)
                scbuf[0] = 0;
        /* the same call at the same place as the last tick: the same wait */
        if (t->last_wait >= 0 && strcmp(scbuf, t->last_sc) == 0 && t->waits[t->last_wait].state == state) {
                t->waits[t->last_wait].ticks++;
                return;
        }
        snprintf(t->last_sc, sizeof t->last_sc, "%s", scbuf);
        if (pread_text(t->fd_wchan, wchan, sizeof wchan) > 0 && strcmp(wchan, "0") == 0)
                wchan[0] = 0;
        if (scbuf[0] && diag_syscall_parse_proc(scbuf, &sc) == 0 && sc.kind == DIAG_SC_IN)
                scname = diag_syscall_name(S.arch, sc.nr);
        else
                sc.kind = DIAG_SC_UNKNOWN;
        {
                _cleanup_free_ char *func = wait_function(p, t->tid, &sc);
                if (scname)
                        syscall_words(p, &sc, scname, call, sizeof call);
                else if (wchan[0])
                        snprintf(call, sizeof call, "%s %s", state == 'D' ? "D in" : "in", wchan);
                else
                        snprintf(call, sizeof call, "state %c", state);
                snprintf(what, sizeof what, "%s%s%s", call, func ? " in " : "", func ? func : "");
                t->last_wait = wait_add(t, what, scname, state, wchan, func);
        }
}

static void tick_all(uint64_t now) {
        for (size_t i = 0; i < S.n; i++) {
                struct proc *p = &S.p[i];
                if (p->exited)
                        continue;
                if (now - p->last_rescan_ns >= PROC_RESCAN_MS * 1000000ULL) {
                        p->last_rescan_ns = now;
                        proc_rescan(p, true);
                }
                size_t live = 0;
                for (size_t k = 0; k < p->nthreads; k++) {
                        tick_thread(p, &p->threads[k]);
                        live += !p->threads[k].exited;
                }
                /* the process is gone when its directory is (ESRCH through the
                 * directory fd once it is reaped), or a zombie when no thread is left */
                if ((p->nthreads && !live) ||
                    (faccessat(p->dirfd, "stat", F_OK, 0) < 0 && (errno == ENOENT || errno == ESRCH))) {
                        p->exited = true;
                        p->exited_ns = now;
                }
        }
}

/* ---- samples ---- */

static const struct diag_module *frame_mod(pid_t pid, const struct diag_frame *f) {
        struct diag_unwinder *u;

        if (f->python || f->kernel || f->module < 0 || !(u = diag_perf_unwind_of(S.unw, pid)))
                return NULL;
        return diag_unwinder_module(u, (size_t) f->module);
}


/* The name a frame is shown and merged by. */
static const char *sframe_name(const struct sframe *f, char *buf, size_t size) {
        if (f->func)
                return f->func;
        snprintf(buf, size, "%s+0x%" PRIx64, f->module ? base_name(f->module) : (f->kernel ? "[kernel]" : "?"), f->pc);
        return buf;
}

/* "file.c:57 (libc.so.6)", "spinmod.py:12 [python]", "[kernel]". */
static const char *sframe_detail(const struct sframe *f, char *buf, size_t size) {
        char line[32] = "";

        if (f->line > 0)
                snprintf(line, sizeof line, ":%d", f->line);
        if (f->python)
                snprintf(buf, size, "%s%s [python]", f->file ? base_name(f->file) : "?", line);
        else if (f->kernel)
                snprintf(buf, size, "[kernel]");
        else if (f->file)
                snprintf(buf, size, "%s%s (%s)%s", base_name(f->file), line, f->module ? base_name(f->module) : "?",
                         f->inlined ? " inlined" : "");
        else
                snprintf(buf, size, "(%s)", f->module ? base_name(f->module) : "?");
        return buf;
}

static int func_count(struct funcrec **v, size_t *n, size_t *alloc, const char *func, const char *module) {
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*v)[i].func, func) == 0 && ((*v)[i].module == module ||
                                                        ((*v)[i].module && module && strcmp((*v)[i].module, module) == 0))) {
                        (*v)[i].samples++;
                        return 0;
                }
        if (DIAG_GROW(*v, *alloc, *n + 1) < 0)
                return -ENOMEM;
        (*v)[*n] = (struct funcrec) { .func = strdup(func), .module = module ? strdup(module) : NULL, .samples = 1 };
        if (!(*v)[*n].func)
                return -ENOMEM;
        (*n)++;
        return 0;
}

static int cmp_func(const void *x, const void *y) {
        const struct funcrec *a = x, *b = y;
        if (a->samples != b->samples)
                return a->samples > b->samples ? -1 : 1;
        return strcmp(a->func, b->func);
}

static bool system_module(const char *m) {
        return m && (strstr(m, "/libc.so") || strstr(m, "/ld-linux") || strstr(m, "/libpthread") || strstr(m, "/libm.so") ||
                     strstr(m, "/libstdc++") || strstr(m, "/libgcc_s"));
}

static int sframe_from(struct proc *p, const struct diag_frame *f, struct sframe *ret) {
        const struct diag_module *mod = frame_mod(p->pid, f);
        const char *m = mod ? mod->path : NULL;
        char *func = NULL;

        /* no symbol (a PLT stub, stripped code): the offset in its module, which
         * stays the same from run to run, unlike the address */
        if (f->func)
                func = strdup(f->func);
        else if (mod && f->pc >= mod->start && asprintf(&func, "%s+0x%" PRIx64, base_name(m), f->pc - mod->start) < 0)
                func = NULL;
        *ret = (struct sframe) {
                .func = func, .file = f->file ? strdup(f->file) : NULL,
                .module = m ? strdup(m) : NULL, .line = f->line, .pc = f->pc,
                .inlined = f->inlined, .python = f->python, .kernel = f->kernel,
        };
        return 0;
}

/* One unwound (and spliced) sample into the process's tables. */
static int sample_record(struct proc *p, struct thread *t, const struct diag_stack *st) {
        _cleanup_free_ char *key = NULL;
        struct sframe *fr;
        size_t n = 0, klen = 1;
        struct stackrec *r = NULL;
        char *k, nb[256], db[512], root[64], troot[64];
        struct diag_flame_frame *ff;
        int leaf = -1, hot = -1, pyhot = -1;

        fr = calloc(st->n + 1, sizeof *fr);
        ff = calloc(st->n + 3, sizeof *ff);
        if (!fr || !ff) {
                free(fr);
                free(ff);
                return -ENOMEM;
        }
        for (size_t i = 0; i < st->n; i++) {
                if (st->frames[i].kernel && !arg.kernel)
                        continue;
                sframe_from(p, &st->frames[i], &fr[n]);
                klen += 48 + (fr[n].func ? strlen(fr[n].func) : 0);
                n++;
        }
        key = k = malloc(klen);
        if (!key) {
                sframes_free(fr, n);
                free(ff);
                return -ENOMEM;
        }
        *k = 0;
        for (size_t i = 0; i < n; i++) {
                if (fr[i].python)
                        k += sprintf(k, "%s:%d;", fr[i].func ? fr[i].func : "?", fr[i].line);
                else
                        k += sprintf(k, "%" PRIx64 "%s;", fr[i].pc, fr[i].inlined ? "i" : "");
                if (leaf < 0 && !fr[i].kernel)
                        leaf = (int) i;
                if (pyhot < 0 && fr[i].python)
                        pyhot = (int) i;
                if (hot < 0 && !fr[i].kernel && fr[i].func && !system_module(fr[i].module))
                        hot = (int) i;
        }
        /* in an interpreter the program is the Python code, not the eval loop's helpers */
        if (pyhot >= 0)
                hot = pyhot;
        /* the merged tree and the flame graph: outermost first */
        snprintf(root, sizeof root, "%s-%d", p->comm, (int) p->pid);
        snprintf(troot, sizeof troot, "tid-%d-%s", (int) t->tid, t->name);
        ff[0] = (struct diag_flame_frame) { .name = root, .kind = DIAG_FLAME_ROOT };
        ff[1] = (struct diag_flame_frame) { .name = troot, .kind = DIAG_FLAME_ROOT };
        for (size_t i = 0; i < n; i++) {
                const struct sframe *f = &fr[n - 1 - i];
                char *nm = malloc(256), *dt = malloc(512);
                if (!nm || !dt) {
                        free(nm);
                        free(dt);
                        for (size_t j = 0; j < i; j++) {
                                free((char *) ff[2 + j].name);
                                free((char *) ff[2 + j].detail);
                        }
                        sframes_free(fr, n);
                        free(ff);
                        return -ENOMEM;
                }
                snprintf(nm, 256, "%s", sframe_name(f, nb, sizeof nb));
                snprintf(dt, 512, "%s", sframe_detail(f, db, sizeof db));
                ff[2 + i] = (struct diag_flame_frame) {
                        .name = nm, .detail = dt,
                        .kind = f->python ? DIAG_FLAME_PYTHON : f->kernel ? DIAG_FLAME_KERNEL : DIAG_FLAME_NATIVE,
                };
        }
        if (p->flame)
                (void) diag_flame_add(p->flame, ff + 2, n, 1);
        if (S.flame)
                (void) diag_flame_add(S.flame, ff, n + 2, 1);
        for (size_t i = 0; i < n; i++) {
                free((char *) ff[2 + i].name);
                free((char *) ff[2 + i].detail);
        }
        free(ff);

        /* self time by function and module; the program's hottest frame per thread */
        if (leaf >= 0) {
                const struct sframe *f = &fr[leaf];
                (void) func_count(&p->funcs, &p->nfuncs, &p->afuncs, sframe_name(f, nb, sizeof nb),
                                  f->python ? f->file : f->module ? base_name(f->module) : NULL);
                (void) func_count(&p->mods, &p->nmods, &p->amods,
                                  f->python ? "[python]" : f->module ? base_name(f->module) : "?", NULL);
                (void) func_count(&t->leaf, &t->nleaf, &t->aleaf, sframe_name(f, nb, sizeof nb), NULL);
        }
        if (hot >= 0) {
                const struct sframe *f = &fr[hot];
                char line[16] = "";
                if (f->line > 0)
                        snprintf(line, sizeof line, ":%d", f->line);
                snprintf(db, sizeof db, "%s (%s%s)", sframe_name(f, nb, sizeof nb),
                         f->file ? base_name(f->file) : f->module ? base_name(f->module) : "?", f->file ? line : "");
                (void) func_count(&t->hot, &t->nhot, &t->ahot, db, NULL);
        }

        for (size_t i = 0; i < p->nstacks; i++)
                if (strcmp(p->stacks[i].key, key) == 0) {
                        r = &p->stacks[i];
                        break;
                }
        if (r)
                sframes_free(fr, n);
        else {
                if (DIAG_GROW(p->stacks, p->astacks, p->nstacks + 1) < 0) {
                        sframes_free(fr, n);
                        return -ENOMEM;
                }
                r = &p->stacks[p->nstacks++];
                *r = (struct stackrec) { .key = TAKE_PTR(key), .frames = fr, .n = n };
        }
        r->samples++;
        for (size_t i = 0; i < r->ntids; i++)
                if (r->tids[i] == t->tid)
                        return 0;
        if (r->ntids < ELEMENTSOF(r->tids))
                r->tids[r->ntids++] = t->tid;
        return 0;
}

/* A sample inside a system call (its kernel frames pass through the syscall
 * entry): the user registers hold the call's arguments (x86-64 rdi, rsi, rdx, r10,
 * r8, r9; DWARF 5, 4, 1, 10, 8, 9). Kept by first argument, for the storm verdict. */
static void note_syscall_args(struct proc *p, const struct diag_perf_event *e, const struct diag_stack *st) {
        static const unsigned dwarf[6] = { 5, 4, 1, 10, 8, 9 };
        struct scargs *slot = NULL;
        bool in_call = false;

        if (e->user || S.arch != DIAG_ARCH_X86_64 || e->regs.ndwarf_regs <= 10)
                return;
        for (size_t i = 0; i < st->n && st->frames[i].kernel && !in_call; i++)
                in_call = st->frames[i].func && strcmp(st->frames[i].func, "do_syscall_64") == 0;
        if (!in_call)
                return;
        p->nscargs++;
        for (size_t i = 0; i < ELEMENTSOF(p->scargs) && !slot; i++)
                if (p->scargs[i].n && p->scargs[i].args[0] == e->regs.dwarf_regs[5])
                        slot = &p->scargs[i];
        for (size_t i = 0; i < ELEMENTSOF(p->scargs) && !slot; i++)
                if (!p->scargs[i].n)
                        slot = &p->scargs[i];
        if (!slot)
                return;
        for (size_t k = 0; k < 6; k++)
                slot->args[k] = e->regs.dwarf_regs[dwarf[k]];
        slot->n++;
}

static void sample_add(const struct diag_perf_event *e) {
        struct proc *p = proc_find(e->pid);
        struct thread *t;
        struct diag_stack st = { 0 }, sp = { 0 };
        const struct diag_stack *use = &st;
        struct diag_pythread pt = { 0 };

        if (e->pid == getpid() || e->pid <= 0)
                return;
        /* -a: every process; else one started by a target during the window (inherit) */
        if (!p && !(p = proc_add(e->pid, !arg.all, false)))
                return;
        if (!(t = thread_add(p, e->tid, true)))
                return;
        p->oncpu_samples++;
        t->oncpu_samples++;
        if (e->user)
                t->user_samples++;
        if (diag_perf_unwind_sample(S.unw, e, arg.max_frames, true, &st) < 0)
                return;
        note_syscall_args(p, e, &st);
        if (proc_py(p) && diag_pyreader_thread(p->py, e->tid, &pt) == 0 && pt.n && diag_py_splice(&st, &pt, &sp) == 0)
                use = &sp;
        (void) sample_record(p, t, use);
        free(sp.frames);
        diag_pythread_clear(&pt);
        diag_stack_clear(&st);
}

static int on_event(void *userdata, const struct diag_perf_event *e) {
        struct proc *p;
        struct thread *t;

        diag_perf_unwind_note(S.unw, e);
        switch (e->kind) {
        case DIAG_PERF_SAMPLE:
                sample_add(e);
                break;
        case DIAG_PERF_FORK:
                if (arg.all)
                        break;
                if (e->pid != e->ppid) {
                        if (proc_find(e->ppid))
                                (void) proc_add(e->pid, true, false);
                } else if ((p = proc_find(e->pid)))
                        (void) thread_add(p, e->tid, true);
                break;
        case DIAG_PERF_COMM:
                if (!(p = proc_find(e->pid)))
                        break;
                if ((t = thread_find(p, e->tid)) && e->comm)
                        snprintf(t->name, sizeof t->name, "%s", e->comm);
                if (e->exec) {
                        if (e->comm)
                                snprintf(p->comm, sizeof p->comm, "%s", e->comm);
                        free(p->cmdline);
                        p->cmdline = diag_proc_read_cmdline_at(p->dirfd, "cmdline", 4096);
                        p->maps = diag_maps_free(p->maps);
                        p->py = diag_pyreader_free(p->py);
                        p->py_tried = false;
                }
                break;
        default:
                break;
        }
        /* unwinding a burst of samples must not delay the next /proc tick or the
         * end of the window: what is left stays in the rings for the next poll */
        if (S.poll_until && diag_now_ns(CLOCK_MONOTONIC) >= S.poll_until)
                return -ETIME;
        return 0;
}

/* ---- the window ---- */

static bool all_exited(void) {
        for (size_t i = 0; i < S.n; i++)
                if (S.p[i].named && !S.p[i].exited)
                        return false;
        return S.n > 0 && !arg.all;
}

static void progress(uint64_t now, bool done) {
        static uint64_t last;
        uint64_t samples = 0;

        if (!isatty(STDERR_FILENO))
                return;
        if (done) {
                fprintf(stderr, "\r\033[K");
                return;
        }
        if (now - last < 250000000ULL)
                return;
        last = now;
        for (size_t i = 0; i < S.n; i++)
                samples += S.p[i].oncpu_samples;
        fprintf(stderr, "\rsampling: %.1f of %.1f s, %" PRIu64 " on-CPU samples (Ctrl-C ends early)\033[K",
                (double) (now - S.t0) / 1e9, (double) arg.duration_ms / 1e3, samples);
}

static void run_window(void) {
        uint64_t period = 1000000000ULL / arg.hz, now = diag_now_ns(CLOCK_MONOTONIC);
        uint64_t deadline = now + arg.duration_ms * 1000000ULL, next_tick = now;

        S.t0 = now;
        while (!stop_requested && !all_exited()) {
                uint64_t until;
                int timeout;

                now = diag_now_ns(CLOCK_MONOTONIC);
                if (now >= deadline)
                        break;
                if (now >= next_tick && !arg.all) {
                        tick_all(now);
                        next_tick += period;
                        if (next_tick <= now)
                                next_tick = now + period;       /* a late tick is not made up */
                }
                until = arg.all ? deadline : MIN(next_tick, deadline);
                now = diag_now_ns(CLOCK_MONOTONIC);
                timeout = until > now ? (int) ((until - now + 999999) / 1000000) : 0;
                S.poll_until = until;
                if (S.perf)
                        (void) diag_perf_poll(S.perf, timeout, on_event, NULL);
                else if (timeout > 0)
                        (void) poll(NULL, 0, timeout);
                progress(diag_now_ns(CLOCK_MONOTONIC), false);
        }
        S.t1 = diag_now_ns(CLOCK_MONOTONIC);
        S.poll_until = 0;
        progress(S.t1, true);
        if (S.perf) {
                diag_perf_disable(S.perf);
                (void) diag_perf_poll(S.perf, 0, on_event, NULL);
                S.lost = diag_perf_lost(S.perf);        /* the LOST records' sum */
        }
        if (S.sc)
                diag_syscount_stop(S.sc);
}

/* ---- analysis ---- */

static double proc_window_s(const struct proc *p) {
        uint64_t end = p->exited && p->exited_ns ? p->exited_ns : S.t1;
        return end > S.t0 ? (double) (end - S.t0) / 1e9 : 0;
}

/* Percent of the window on a CPU: schedstat when read, else from the samples. */
static double thread_cpu_pct(const struct proc *p, const struct thread *t) {
        double w = proc_window_s(p);
        if (w <= 0)
                return 0;
        if (t->have0 && t->oncpu1 >= t->oncpu0)
                return MIN(100.0, (double) (t->oncpu1 - t->oncpu0) / 1e9 / w * 100.0);
        return MIN(100.0, (double) t->oncpu_samples / ((double) arg.hz * w) * 100.0);
}

static void thread_user_sys(const struct proc *p, const struct thread *t, double *user, double *sys) {
        double cpu = thread_cpu_pct(p, t);
        uint64_t du = t->ut1 - t->ut0, ds = t->st1 - t->st0;

        if (t->have0 && du + ds > 0) {
                *user = cpu * (double) du / (double) (du + ds);
                *sys = cpu - *user;
        } else if (t->oncpu_samples) {
                *user = cpu * t->user_samples / t->oncpu_samples;
                *sys = cpu - *user;
        } else
                *user = *sys = 0;
}

/* Share of the /proc readings that found the thread runnable (on a CPU or
 * waiting for one). */
static double runnable_pct(const struct thread *t) {
        return t->ticks ? 100.0 * t->running_ticks / t->ticks : 0;
}

static const struct waitcount *top_wait(const struct thread *t) {
        const struct waitcount *w = NULL;
        for (size_t i = 0; i < t->nwaits; i++)
                if (!w || t->waits[i].ticks > w->ticks)
                        w = &t->waits[i];
        return w;
}

static uint64_t proc_calls(const struct proc *p, const struct diag_syscount_entry **top) {
        uint64_t calls = 0;
        *top = NULL;
        for (size_t i = 0; i < p->nsc; i++) {
                calls += p->sc[i].calls;
                if (!*top || p->sc[i].calls > (*top)->calls)
                        *top = &p->sc[i];
        }
        return calls;
}

static char *format_rate(double v, char *buf, size_t size) {
        if (v >= 1e6)
                snprintf(buf, size, "%.1fM", v / 1e6);
        else if (v >= 1e4)
                snprintf(buf, size, "%.0fk", v / 1e3);
        else
                snprintf(buf, size, "%.0f", v);
        return buf;
}

/* "f (x.py:12)" and "f (x.py:13)" are one function at two lines. */
static size_t stem_len(const char *s) {
        const char *colon = strrchr(s, ':');
        return colon && colon[1] >= '0' && colon[1] <= '9' ? (size_t) (colon - s) : strlen(s);
}

/* A thread's hottest function of the program (lines merged), shown at its most
 * frequent line; returns its samples. */
static uint64_t hot_of(const struct thread *t, char *buf, size_t size) {
        const struct funcrec *pick = NULL;
        uint64_t best = 0;

        for (size_t i = 0; i < t->nhot; i++) {
                const char *a = t->hot[i].func;
                size_t stem = stem_len(a);
                const struct funcrec *top = NULL;
                uint64_t sum = 0;
                for (size_t k = 0; k < t->nhot; k++)
                        if (stem_len(t->hot[k].func) == stem && strncmp(t->hot[k].func, a, stem) == 0) {
                                sum += t->hot[k].samples;
                                if (!top || t->hot[k].samples > top->samples)
                                        top = &t->hot[k];
                        }
                if (sum > best) {
                        best = sum;
                        pick = top;
                }
        }
        snprintf(buf, size, "%s", pick ? pick->func : "");
        return best;
}

static void verdict(struct proc *p) {
        const struct diag_syscount_entry *topsc;
        uint64_t calls = proc_calls(p, &topsc);
        double w = proc_window_s(p), rate = w > 0 ? (double) calls / w : 0, cpu_sum = 0;
        struct thread *busy = NULL;
        double busy_pct = 0, busy_run = 0;
        size_t live = 0, waiting = 0;
        char text[1024], r1[32], hot[300] = "", leafs[200] = "", exited[96] = "";
        const char *kind;

        for (size_t i = 0; i < p->nthreads; i++) {
                struct thread *t = &p->threads[i];
                double c = thread_cpu_pct(p, t), rn = runnable_pct(t);
                cpu_sum += c;
                live++;
                if (!busy || MAX(c, rn) > MAX(busy_pct, busy_run)) {
                        busy = t;
                        busy_pct = c;
                        busy_run = rn;
                }
                if (c < 100.0 - WAITING_PCT && t->nwaits)
                        waiting++;
        }
        if (busy && busy->oncpu_samples) {
                uint64_t h = hot_of(busy, hot, sizeof hot);
                size_t nl = busy->nleaf;
                if (h)
                        snprintf(hot + strlen(hot), sizeof hot - strlen(hot), " %.0f %% of its samples",
                                 100.0 * (double) h / busy->oncpu_samples);
                sort_n(busy->leaf, nl, sizeof *busy->leaf, cmp_func);
                for (size_t i = 0; i < nl && i < 2; i++)
                        if (100.0 * busy->leaf[i].samples / busy->oncpu_samples >= 10.0)
                                snprintf(leafs + strlen(leafs), sizeof leafs - strlen(leafs), "%s%s %.0f %%", i ? ", " : "",
                                         busy->leaf[i].func, 100.0 * busy->leaf[i].samples / busy->oncpu_samples);
        }
        if (p->exited)
                snprintf(exited, sizeof exited, "exited %.1f s into the window; before that: ", w);
        if (topsc && rate >= STORM_CALLS_PER_S) {
                const char *name = diag_syscall_name(S.arch, topsc->nr);
                char fdw[200] = "";
                /* the fd it works on, when a tick caught it in that call */
                for (size_t i = 0; i < p->nthreads && !fdw[0] && name; i++)
                        for (size_t k = 0; k < p->threads[i].nwaits; k++) {
                                const struct waitcount *wc = &p->threads[i].waits[k];
                                if (wc->syscall && strcmp(wc->syscall, name) == 0 && strchr(wc->what, '(')) {
                                        snprintf(fdw, sizeof fdw, "%s", wc->what);
                                        break;
                                }
                        }
                /* else from the samples taken inside system calls, when most
                 * of them had the same first argument */
                if (!fdw[0] && name && p->nscargs >= 4) {
                        const struct scargs *top = &p->scargs[0];
                        for (size_t i = 1; i < ELEMENTSOF(p->scargs); i++)
                                if (p->scargs[i].n > top->n)
                                        top = &p->scargs[i];
                        if (2 * top->n >= p->nscargs) {
                                struct diag_syscall_state sc = { .kind = DIAG_SC_IN, .nr = topsc->nr };
                                char call[160];
                                memcpy(sc.args, top->args, sizeof sc.args);
                                if (diag_fdname_syscall_fd(S.arch, &sc) >= 0) {
                                        syscall_words(p, &sc, name, call, sizeof call);
                                        snprintf(fdw, sizeof fdw, "%s", call);
                                }
                        }
                }
                kind = "syscall-storm";
                snprintf(text, sizeof text, "syscall storm: %s system calls/s, %.0f %% %s%s%s%s; tid %d on CPU %.0f %%",
                         format_rate(rate, r1, sizeof r1), 100.0 * (double) topsc->calls / (double) calls,
                         fdw[0] ? fdw : name ? name : "?", "", topsc->errors ? ", errors " : "",
                         topsc->errors ? format_rate((double) topsc->errors / w, r1, sizeof r1) : "",
                         busy ? busy->tid : 0, busy_pct);
                if (topsc->errors)
                        snprintf(text + strlen(text), sizeof text - strlen(text), " (errors per second above)");
        } else if (busy && MAX(busy_pct, busy_run) >= BUSY_THREAD_PCT && (!S.sc || rate < BUSY_FEW_CALLS_PER_S)) {
                double u, s;
                thread_user_sys(p, busy, &u, &s);
                kind = "busy-loop";
                snprintf(text, sizeof text, "busy loop: tid %d (%s) on CPU %.0f %% of %.1f s", busy->tid, busy->name,
                         busy_pct, w);
                /* on a saturated host a spinning thread waits for a CPU: runnable all along */
                if (busy_pct < BUSY_THREAD_PCT)
                        snprintf(text + strlen(text), sizeof text - strlen(text),
                                 " and runnable %.0f %% (waiting for a CPU the rest: the host is saturated)", busy_run);
                snprintf(text + strlen(text), sizeof text - strlen(text), ", ");
                if (S.sc)
                        snprintf(text + strlen(text), sizeof text - strlen(text), "%" PRIu64 " syscalls, ", calls);
                snprintf(text + strlen(text), sizeof text - strlen(text), "user %.0f %%", busy_pct > 0 ? 100.0 * u / busy_pct : 0);
                if (hot[0])
                        snprintf(text + strlen(text), sizeof text - strlen(text), "; hot: %s", hot);
                if (leafs[0])
                        snprintf(text + strlen(text), sizeof text - strlen(text), ", in %s", leafs);
        } else if (live && cpu_sum < 100.0 - WAITING_PCT && waiting) {
                /* the most common top wait among the threads */
                const char *best = NULL;
                size_t bestn = 0;
                for (size_t i = 0; i < p->nthreads; i++) {
                        const struct waitcount *a = top_wait(&p->threads[i]);
                        size_t cnt = 0;
                        if (!a)
                                continue;
                        for (size_t k = 0; k < p->nthreads; k++) {
                                const struct waitcount *b = top_wait(&p->threads[k]);
                                if (b && ((a->syscall && b->syscall && strcmp(a->syscall, b->syscall) == 0) ||
                                          strcmp(a->what, b->what) == 0))
                                        cnt++;
                        }
                        if (cnt > bestn) {
                                bestn = cnt;
                                best = a->syscall ? a->syscall : a->what;
                        }
                }
                kind = "waiting";
                snprintf(text, sizeof text, "mostly waiting: %zu of %zu threads off CPU, %zu of them mostly in %s; on CPU %.0f %% of one CPU in all",
                         waiting, live, bestn, best ? best : "?", cpu_sum);
        } else if (!p->oncpu_samples && cpu_sum < 1.0) {
                kind = "idle";
                snprintf(text, sizeof text, "idle: no thread ran during the window");
        } else {
                kind = "mixed";
                snprintf(text, sizeof text, "on CPU %.0f %% of one CPU in all, the busiest tid %d (%s) %.0f %%", cpu_sum,
                         busy ? busy->tid : 0, busy ? busy->name : "?", busy_pct);
                if (S.sc)
                        snprintf(text + strlen(text), sizeof text - strlen(text), "; %s system calls/s", format_rate(rate, r1, sizeof r1));
                if (hot[0])
                        snprintf(text + strlen(text), sizeof text - strlen(text), "; hot: %s", hot);
                if (leafs[0])
                        snprintf(text + strlen(text), sizeof text - strlen(text), ", in %s", leafs);
                if (waiting)
                        snprintf(text + strlen(text), sizeof text - strlen(text), "; %zu of %zu threads mostly waiting", waiting, live);
        }
        snprintf(p->verdict_kind, sizeof p->verdict_kind, "%s", p->exited ? "exited" : kind);
        free(p->verdict);
        if (asprintf(&p->verdict, "%s%s", exited, text) < 0)
                p->verdict = NULL;
}

/* ---- text ---- */

#define TREE_MIN_PCT 5.0
#define TREE_MAX_LINES 60

/* The only child of n, if n has one and every sample of n goes through it. */
static const struct diag_flame_node *sole_child(const struct diag_flame_node *n) {
        const struct diag_flame_node *c = n->children;
        return c && !c->next && c->total == n->total ? c : NULL;
}

static void print_tree_line(const struct diag_flame_node *c, uint64_t total, int indent) {
        printf("  %5.1f%%  %*s%s%s%s\n", 100.0 * (double) c->total / (double) total, indent * 2, "", c->name,
               c->detail ? "  " : "", c->detail ? c->detail : "");
}

/* The merged tree, outermost first: a frame per line, a column deeper wherever
 * not every sample of a frame goes on into the next one shown; branches under
 * TREE_MIN_PCT are left out. A long run of native frames
 * that every sample below goes through (thread start, the interpreter's call
 * machinery) shows its first frame and its last two, with a count of those left
 * out between; Python frames are always shown. */
static void print_tree(const struct diag_flame_node *n, uint64_t total, int indent, unsigned *lines) {
        for (const struct diag_flame_node *c = n->children; c && *lines < TREE_MAX_LINES; c = c->next) {
                const struct diag_flame_node *last = c, *k;
                size_t shown = 0, run = 1;
                if (100.0 * (double) c->total / (double) total < TREE_MIN_PCT)
                        continue;
                /* c ... last: a run of native frames each the sole child of the one before */
                while (c->kind != DIAG_FLAME_PYTHON && (k = sole_child(last)) && k->kind != DIAG_FLAME_PYTHON) {
                        last = k;
                        run++;
                }
                if (run >= 5) {
                        const struct diag_flame_node *prev = c;
                        print_tree_line(c, total, indent);
                        printf("  %5s   %*s... %zu frames ...\n", "", indent * 2, "", run - 3);
                        for (size_t i = 0; i < run - 2; i++)
                                prev = prev->children;
                        print_tree_line(prev, total, indent);
                        print_tree_line(last, total, indent);
                        *lines += 4;
                } else {
                        last = c;
                        print_tree_line(c, total, indent);
                        (*lines)++;
                }
                for (k = last->children; k; k = k->next)
                        if (100.0 * (double) k->total / (double) total >= TREE_MIN_PCT)
                                shown++;
                /* the next frame stays in this column only when every sample of
                 * this one goes on into it; a branch, or samples ending here or in
                 * frames left out, indents */
                print_tree(last, total, indent + (shown == 1 && sole_child(last) ? 0 : 1), lines);
        }
}

static int cmp_stack(const void *x, const void *y) {
        const struct stackrec *a = x, *b = y;
        return (a->samples < b->samples) - (a->samples > b->samples);
}

static int cmp_sc_time(const void *x, const void *y) {
        const struct diag_syscount_entry *a = x, *b = y;
        if (a->total_ns != b->total_ns)
                return a->total_ns > b->total_ns ? -1 : 1;
        return (a->calls < b->calls) - (a->calls > b->calls);
}

#define HOTTEST_MAX_FRAMES 16

/* -a: the hottest stack of a process, innermost first, and its busiest threads. */
static void print_hottest(const struct proc *p) {
        const struct stackrec *r = p->nstacks ? &p->stacks[0] : NULL;
        char nb[256];

        if (!r || !p->oncpu_samples) {
                printf("  (no on-CPU samples)\n");
                return;
        }
        printf("  hottest stack, %.1f %% of its %" PRIu64 " on-CPU samples, tid", 100.0 * (double) r->samples / (double) p->oncpu_samples,
               p->oncpu_samples);
        for (size_t k = 0; k < r->ntids && k < 8; k++)
                printf(" %d", r->tids[k]);
        printf("%s:\n", r->ntids > 8 ? " ..." : "");
        for (size_t k = 0; k < r->n && k < HOTTEST_MAX_FRAMES; k++) {
                const struct sframe *f = &r->frames[k];
                printf("    %s", sframe_name(f, nb, sizeof nb));
                if (f->file)
                        printf("  %s:%d", base_name(f->file), f->line);
                printf("  %s%s%s\n", f->python ? "[python]" : f->kernel ? "[kernel]" : "(",
                       f->python || f->kernel ? "" : f->module ? base_name(f->module) : "?",
                       f->python || f->kernel ? "" : ")");
        }
        if (r->n > HOTTEST_MAX_FRAMES)
                printf("    ... %zu more frames\n", r->n - HOTTEST_MAX_FRAMES);
}

static void print_proc(const struct proc *p) {
        uint64_t sc_total = 0;
        double w = proc_window_s(p);

        printf("\npid %d \"%s\"%s%s%s — %.1f s, %" PRIu64 " on-CPU samples, %" PRIu64 " /proc readings%s%s%s%s\n", p->pid, p->comm,
               p->cmdline ? " " : "", p->cmdline ? p->cmdline : "", p->started ? " (started during the window)" : "", w,
               p->oncpu_samples, p->proc_ticks, p->pyversion ? ", Python " : "", p->pyversion ? p->pyversion : "",
               p->pyversion && !p->py ? " (a version the frame reader does not know: native frames only)" : "",
               p->exited ? ", exited during the window" : "");
        if (arg.all) {
                print_hottest(p);
                return;
        }
        printf("THREADS\n  %-8s %-16s %6s %5s %5s %5s  %s\n", "TID", "NAME", "ON-CPU", "USER", "SYS", "RUN", "TOP WAIT (% of readings)");
        for (size_t i = 0; i < p->nthreads; i++) {
                const struct thread *t = &p->threads[i];
                const struct waitcount *wc = top_wait(t);
                double u, s;
                char flags[32] = "";
                thread_user_sys(p, t, &u, &s);
                if (t->started || t->exited)
                        snprintf(flags, sizeof flags, " [%s%s%s]", t->started ? "started" : "", t->started && t->exited ? ", " : "",
                                 t->exited ? "exited" : "");
                printf("  %-8d %-16s %5.1f%% %4.0f%% %4.0f%% %4.0f%%  ", t->tid, t->name, thread_cpu_pct(p, t), u, s,
                       runnable_pct(t));
                if (wc && t->ticks)
                        printf("%.0f %% %s%s\n", 100.0 * wc->ticks / t->ticks, wc->what, flags);
                else
                        printf("%s%s\n", t->ticks ? "-" : "", flags);
        }
        if (p->oncpu_samples) {
                unsigned lines = 0;
                printf("HOT STACKS (merged, outermost first; %% of %" PRIu64 " on-CPU samples; branches under %.0f %% left out)\n",
                       p->oncpu_samples, TREE_MIN_PCT);
                if (p->flame) {
                        diag_flame_sort(p->flame);
                        print_tree(diag_flame_root(p->flame), p->oncpu_samples, 0, &lines);
                }
                printf("FUNCTIONS (self time: the leaf frame of each sample)\n  %-40s %-24s %7s %6s\n", "FUNCTION", "MODULE", "SAMPLES", "%");
                for (size_t i = 0; i < p->nfuncs && i < 10; i++)
                        printf("  %-40s %-24s %7" PRIu64 " %5.1f%%\n", p->funcs[i].func,
                               p->funcs[i].module ? base_name(p->funcs[i].module) : "?", p->funcs[i].samples,
                               100.0 * (double) p->funcs[i].samples / (double) p->oncpu_samples);
                printf("MODULES\n");
                for (size_t i = 0; i < p->nmods && i < 6; i++)
                        printf("  %-40s %7" PRIu64 " %5.1f%%\n", p->mods[i].func, p->mods[i].samples,
                               100.0 * (double) p->mods[i].samples / (double) p->oncpu_samples);
        }
        if (S.sc && (p->named || arg.all)) {
                for (size_t i = 0; i < p->nsc; i++)
                        sc_total += p->sc[i].total_ns;
                printf("SYSCALLS (%s; exact counts)\n  %-20s %10s %8s %12s %10s %6s\n", diag_syscount_mechanism(S.sc),
                       "SYSCALL", "CALLS", "ERRORS", "TOTAL", "MAX", "%TIME");
                for (size_t i = 0; i < p->nsc && i < 20; i++) {
                        const char *name = diag_syscall_name(S.arch, p->sc[i].nr);
                        char nb[32];
                        if (!name) {
                                snprintf(nb, sizeof nb, "syscall_%ld", p->sc[i].nr);
                                name = nb;
                        }
                        printf("  %-20s %10" PRIu64 " %8" PRIu64 " %10.3fms %8.3fms %5.1f%%\n", name, p->sc[i].calls,
                               p->sc[i].errors, (double) p->sc[i].total_ns / 1e6, (double) p->sc[i].max_ns / 1e6,
                               sc_total ? 100.0 * (double) p->sc[i].total_ns / (double) sc_total : 0);
                }
                if (!p->nsc)
                        printf("  (none)\n");
        }
}

/* ---- JSON ---- */

/* A number printed with a fixed count of decimals ("5.011", not 5.0109999999999999). */
static json_object *jfixed(double v, int decimals) {
        char b[64];
        snprintf(b, sizeof b, "%.*f", decimals, v);
        return json_object_new_double_s(strtod(b, NULL), b);
}

static json_object *jnum1(double v) {
        return jfixed(v, 1);
}

static json_object *json_proc(const struct proc *p) {
        json_object *o = json_object_new_object(), *v = json_object_new_object(), *threads = json_object_new_array(),
                    *stacks = json_object_new_array(), *scs = json_object_new_array(), *funcs = json_object_new_array(),
                    *mods = json_object_new_array();
        uint64_t sc_total = 0;
        char nb[256];

        json_object_object_add(o, "pid", json_object_new_int(p->pid));
        json_object_object_add(o, "comm", json_object_new_string(p->comm));
        json_object_object_add(o, "cmdline", diag_json_str(p->cmdline));
        json_object_object_add(o, "started", json_object_new_boolean(p->started));
        json_object_object_add(o, "exited", json_object_new_boolean(p->exited));
        json_object_object_add(o, "python", diag_json_str(p->py ? p->pyversion : NULL));
        json_object_object_add(v, "kind", json_object_new_string(p->verdict_kind));
        json_object_object_add(v, "text", diag_json_str(p->verdict));
        json_object_object_add(o, "verdict", v);
        json_object_object_add(o, "window_s", jfixed(proc_window_s(p), 3));
        json_object_object_add(o, "oncpu_samples", json_object_new_int64((int64_t) p->oncpu_samples));
        json_object_object_add(o, "proc_samples", json_object_new_int64((int64_t) p->proc_ticks));
        for (size_t i = 0; i < p->nthreads; i++) {
                const struct thread *t = &p->threads[i];
                json_object *to = json_object_new_object(), *ws = json_object_new_array();
                double u, s;
                thread_user_sys(p, t, &u, &s);
                json_object_object_add(to, "tid", json_object_new_int(t->tid));
                json_object_object_add(to, "name", json_object_new_string(t->name));
                json_object_object_add(to, "started", json_object_new_boolean(t->started));
                json_object_object_add(to, "exited", json_object_new_boolean(t->exited));
                json_object_object_add(to, "oncpu_pct", jnum1(thread_cpu_pct(p, t)));
                json_object_object_add(to, "runnable_pct", t->ticks ? jnum1(runnable_pct(t)) : NULL);
                json_object_object_add(to, "user_pct", jnum1(u));
                json_object_object_add(to, "sys_pct", jnum1(s));
                json_object_object_add(to, "oncpu_samples", json_object_new_int((int) t->oncpu_samples));
                json_object_object_add(to, "proc_samples", json_object_new_int((int) t->ticks));
                for (size_t k = 0; k < t->nwaits; k++) {
                        const struct waitcount *wc = &t->waits[k];
                        json_object *wo = json_object_new_object();
                        char st[2] = { wc->state, 0 };
                        json_object_object_add(wo, "what", json_object_new_string(wc->what));
                        json_object_object_add(wo, "syscall", diag_json_str(wc->syscall));
                        json_object_object_add(wo, "state", json_object_new_string(st));
                        json_object_object_add(wo, "wchan", diag_json_str(wc->wchan));
                        json_object_object_add(wo, "function", diag_json_str(wc->function));
                        json_object_object_add(wo, "pct", jnum1(t->ticks ? 100.0 * wc->ticks / t->ticks : 0));
                        json_object_array_add(ws, wo);
                }
                json_object_object_add(to, "waits", ws);
                json_object_array_add(threads, to);
        }
        json_object_object_add(o, "threads", threads);
        for (size_t i = 0; i < p->nstacks && i < arg.top; i++) {
                const struct stackrec *r = &p->stacks[i];
                json_object *so = json_object_new_object(), *tids = json_object_new_array(), *fr = json_object_new_array();
                json_object_object_add(so, "samples", json_object_new_int64((int64_t) r->samples));
                json_object_object_add(so, "pct", jnum1(100.0 * (double) r->samples / (double) p->oncpu_samples));
                for (size_t k = 0; k < r->ntids; k++)
                        json_object_array_add(tids, json_object_new_int(r->tids[k]));
                json_object_object_add(so, "tids", tids);
                for (size_t k = 0; k < r->n; k++) {
                        const struct sframe *f = &r->frames[k];
                        json_object *fo = json_object_new_object();
                        json_object_object_add(fo, "function", json_object_new_string(sframe_name(f, nb, sizeof nb)));
                        json_object_object_add(fo, "module", diag_json_str(f->module));
                        json_object_object_add(fo, "file", diag_json_str(f->file));
                        json_object_object_add(fo, "line", f->line > 0 ? json_object_new_int(f->line) : NULL);
                        json_object_object_add(fo, "pc", f->python ? NULL : diag_json_hex(f->pc));
                        json_object_object_add(fo, "inlined", json_object_new_boolean(f->inlined));
                        json_object_object_add(fo, "python", json_object_new_boolean(f->python));
                        json_object_object_add(fo, "kernel", json_object_new_boolean(f->kernel));
                        json_object_array_add(fr, fo);
                }
                json_object_object_add(so, "frames", fr);
                json_object_array_add(stacks, so);
        }
        json_object_object_add(o, "stacks", stacks);
        for (size_t i = 0; i < p->nsc; i++)
                sc_total += p->sc[i].total_ns;
        for (size_t i = 0; i < p->nsc; i++) {
                json_object *so = json_object_new_object();
                json_object_object_add(so, "name", diag_json_str(diag_syscall_name(S.arch, p->sc[i].nr)));
                json_object_object_add(so, "nr", json_object_new_int64(p->sc[i].nr));
                json_object_object_add(so, "calls", json_object_new_int64((int64_t) p->sc[i].calls));
                json_object_object_add(so, "errors", json_object_new_int64((int64_t) p->sc[i].errors));
                json_object_object_add(so, "total_us", jfixed((double) p->sc[i].total_ns / 1e3, 1));
                json_object_object_add(so, "max_us", jfixed((double) p->sc[i].max_ns / 1e3, 1));
                json_object_object_add(so, "pct_time", jnum1(sc_total ? 100.0 * (double) p->sc[i].total_ns / (double) sc_total : 0));
                json_object_array_add(scs, so);
        }
        json_object_object_add(o, "syscalls", S.sc ? scs : (json_object_put(scs), NULL));
        for (size_t i = 0; i < p->nfuncs; i++) {
                json_object *fo = json_object_new_object();
                json_object_object_add(fo, "function", json_object_new_string(p->funcs[i].func));
                json_object_object_add(fo, "module", diag_json_str(p->funcs[i].module));
                json_object_object_add(fo, "samples", json_object_new_int64((int64_t) p->funcs[i].samples));
                json_object_object_add(fo, "pct", jnum1(100.0 * (double) p->funcs[i].samples / (double) p->oncpu_samples));
                json_object_array_add(funcs, fo);
        }
        json_object_object_add(o, "functions", funcs);
        for (size_t i = 0; i < p->nmods; i++) {
                json_object *mo = json_object_new_object();
                json_object_object_add(mo, "module", json_object_new_string(p->mods[i].func));
                json_object_object_add(mo, "samples", json_object_new_int64((int64_t) p->mods[i].samples));
                json_object_object_add(mo, "pct", jnum1(100.0 * (double) p->mods[i].samples / (double) p->oncpu_samples));
                json_object_array_add(mods, mo);
        }
        json_object_object_add(o, "modules", mods);
        return o;
}

/* ---- collapsed stacks and the flame graph ---- */

static int write_out(const char *path, bool svg) {
        struct diag_outfile f = { 0 };
        char title[128], sub[256];
        FILE *out = stdout;
        int r;

        if (strcmp(path, "-") != 0) {
                int fd;
                r = diag_outfile_open(&f, path);
                if (r < 0)
                        return log_error_errno(r, "cannot create %s: %m", path);
                fd = dup(f.fd);
                if (fd < 0 || !(out = fdopen(fd, "w"))) {
                        r = negative_errno();
                        if (fd >= 0)
                                close(fd);
                        diag_outfile_discard(&f);
                        return log_error_errno(r, "cannot write %s: %m", path);
                }
        }
        diag_flame_sort(S.flame);
        if (svg) {
                snprintf(title, sizeof title, "diag-sample: on-CPU stacks");
                snprintf(sub, sizeof sub, "%.1f s at %u Hz, %zu process%s", (double) (S.t1 - S.t0) / 1e9, arg.hz, S.n,
                         S.n == 1 ? "" : "es");
                r = diag_flame_write_svg(S.flame, title, sub, out);
        } else
                r = diag_flame_write_folded(S.flame, out);
        if (r >= 0 && fflush(out) != 0)
                r = negative_errno();
        if (out == stdout)
                return r < 0 ? log_error_errno(r, "cannot write: %m") : 0;
        if (fclose(out) != 0 && r >= 0)
                r = negative_errno();
        if (r >= 0)
                r = diag_outfile_commit(&f);
        diag_outfile_discard(&f);
        if (r < 0)
                return log_error_errno(r, "cannot write %s: %m", path);
        return 0;
}

/* ---- main ---- */

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options] PID...\n"
               " %1$s [options] -a\n"
               "\n"
               "Sample what processes do over a window — on-CPU stacks (native, kernel and\n"
               "CPython frames), where each thread waits, exact system call counts — and say\n"
               "in one line per process what that is: a busy loop, a syscall storm, waiting.\n"
               "Nothing is stopped, nothing is written into the target, no ptrace.\n"
               "\n"
               "Options:\n"
               " -d, --duration TIME      the window (default 5s; 500ms, 2s, 1m)\n"
               " -F, --frequency HZ       samples per second (default 99, 1 to 1000)\n"
               " -a, --all                the whole host: the busiest processes, each with its\n"
               "                          verdict and hottest stacks\n"
               " -n, --top N              hottest stacks in -J output per process (default 5)\n"
               "     --folded FILE        collapsed stacks for flamegraph.pl, speedscope, inferno\n"
               "                          (- for stdout)\n"
               "     --svg FILE           an interactive flame graph (self-contained SVG)\n"
               "     --no-python          no CPython frames\n"
               "     --no-syscalls        no system call counting\n"
               "     --no-kernel          no kernel frames in the stacks\n"
               "     --max-frames N       frames per stack (default 64)\n"
               " -J, --json               JSON output\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Ctrl-C ends the window early and still reports.\n"
               "\n"
               "Exit status: 0 done, 1 failure (no such process, nothing to sample),\n"
               "2 bad usage, 4 done but a part is missing (no perf events, no syscall\n"
               "counting, a process exited during the window: said on stderr).\n"
               "\n"
               "Examples:\n"
               " %1$s 1234                  what is 1234 doing (5 s)?\n"
               " %1$s -d 10s --svg f.svg 1234\n"
               " %1$s -a -d 2s              the busiest processes on the host\n"
               "\n"
               "See diag-sample(1).\n", diag_progname());
}

enum { OPT_FOLDED = 0x100, OPT_SVG, OPT_NO_PYTHON, OPT_NO_SYSCALLS, OPT_NO_KERNEL, OPT_MAX_FRAMES };

static int cmp_proc_samples(const void *x, const void *y) {
        const struct proc *a = x, *b = y;
        if (a->oncpu_samples != b->oncpu_samples)
                return a->oncpu_samples > b->oncpu_samples ? -1 : 1;
        return (a->pid > b->pid) - (a->pid < b->pid);
}

static void finish_proc(struct proc *p, const struct diag_syscount_entry *sc, size_t nsc) {
        size_t k = 0;

        for (size_t i = 0; i < nsc; i++)
                k += sc[i].pid == p->pid;
        p->sc = calloc(k + 1, sizeof *p->sc);
        for (size_t i = 0; i < nsc && p->sc; i++)
                if (sc[i].pid == p->pid && sc[i].calls)
                        p->sc[p->nsc++] = sc[i];
        if (p->sc)
                sort_n(p->sc, p->nsc, sizeof *p->sc, cmp_sc_time);
        sort_n(p->stacks, p->nstacks, sizeof *p->stacks, cmp_stack);
        sort_n(p->funcs, p->nfuncs, sizeof *p->funcs, cmp_func);
        sort_n(p->mods, p->nmods, sizeof *p->mods, cmp_func);
        verdict(p);
}

static int fail_run(const char *msg, const char *reason, pid_t pid) {
        log_error("%s", msg);
        if (arg.json) {
                (void) diag_json_error(stdout, msg, reason, pid, DIAG_EXIT_FAILURE);
                (void) diag_close_stdout();
        }
        return DIAG_EXIT_FAILURE;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                DIAG_STD_LONGOPTS,
                { "duration",    required_argument, NULL, 'd' },
                { "frequency",   required_argument, NULL, 'F' },
                { "all",         no_argument,       NULL, 'a' },
                { "top",         required_argument, NULL, 'n' },
                { "json",        no_argument,       NULL, 'J' },
                { "folded",      required_argument, NULL, OPT_FOLDED },
                { "svg",         required_argument, NULL, OPT_SVG },
                { "no-python",   no_argument,       NULL, OPT_NO_PYTHON },
                { "no-syscalls", no_argument,       NULL, OPT_NO_SYSCALLS },
                { "no-kernel",   no_argument,       NULL, OPT_NO_KERNEL },
                { "max-frames",  required_argument, NULL, OPT_MAX_FRAMES },
                {}
        };
        struct diag_perf_opts po = { 0 };
        _cleanup_free_ struct diag_syscount_entry *sce = NULL;
        _cleanup_free_ pid_t *named = NULL;
        size_t nsce = 0, alloc = 0, nnamed = 0, nshown;
        unsigned nfailed = 0;
        char msg[600];
        const char *reason = NULL;
        pid_t failed_pid = 0;
        int c, r, status = DIAG_EXIT_OK;
        long long v;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        while ((c = getopt_long(argc, argv, "d:F:an:J" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                if (diag_std_option(c, usage, &r)) {
                        if (r >= 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'd':
                        if (diag_parse_duration_ms(optarg, &arg.duration_ms) < 0 || arg.duration_ms == 0 ||
                            arg.duration_ms > 24ULL * 3600 * 1000)
                                return diag_usage_error("invalid duration: '%s' (e.g. 500ms, 5s, 1m)", optarg);
                        break;
                case 'F':
                        if (diag_parse_ll(optarg, 10, 1, 1000, &v) < 0)
                                return diag_usage_error("invalid frequency: '%s' (1 to 1000 Hz)", optarg);
                        arg.hz = (unsigned) v;
                        break;
                case 'a': arg.all = true; break;
                case 'n':
                        if (diag_parse_ll(optarg, 10, 1, 1000, &v) < 0)
                                return diag_usage_error("invalid number of stacks: '%s' (1 to 1000)", optarg);
                        arg.top = (unsigned) v;
                        break;
                case 'J': arg.json = true; break;
                case OPT_FOLDED: arg.folded = optarg; break;
                case OPT_SVG: arg.svg = optarg; break;
                case OPT_NO_PYTHON: arg.python = false; break;
                case OPT_NO_SYSCALLS: arg.syscalls = false; break;
                case OPT_NO_KERNEL: arg.kernel = false; break;
                case OPT_MAX_FRAMES:
                        if (diag_parse_ll(optarg, 10, 1, 1024, &v) < 0)
                                return diag_usage_error("invalid number of frames: '%s' (1 to 1024)", optarg);
                        arg.max_frames = (unsigned) v;
                        break;
                default:
                        return diag_usage_error("unexpected option");
                }
        }
        for (int i = optind; i < argc; i++)
                if (diag_parse_pid_list(argv[i], &arg.pids, &arg.npids, &alloc) < 0)
                        return diag_usage_error("invalid process id: '%s'", argv[i]);
        if (!arg.all && !arg.npids)
                return diag_usage_error("no process given (or -a)");
        if (arg.all && arg.npids)
                return diag_usage_error("-a and a process list exclude each other");
        if (arg.folded && arg.svg && strcmp(arg.folded, "-") == 0 && strcmp(arg.svg, "-") == 0)
                return diag_usage_error("--folded and --svg cannot both write to stdout");
        if (arg.json && ((arg.folded && strcmp(arg.folded, "-") == 0) || (arg.svg && strcmp(arg.svg, "-") == 0)))
                return diag_usage_error("-J and a graph on stdout exclude each other");

        /* a perf event per thread and CPU, and the /proc files of every thread,
         * are kept open over the window: as many fds as the hard limit allows */
        {
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                        rl.rlim_cur = rl.rlim_max;
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
        }
        S.arch = diag_arch_native();
        if (diag_symcache_new(&S.symcache) < 0 || diag_perf_unwind_new(&S.unw) < 0 || diag_flame_new(&S.flame) < 0)
                return fail_run("out of memory", "error", 0);

        /* the targets: a thread id means its process */
        named = calloc(arg.npids + 1, sizeof *named);
        if (!named)
                return fail_run("out of memory", "error", 0);
        for (size_t i = 0; i < arg.npids; i++) {
                struct diag_target t;
                diag_target_resolve(arg.pids[i], &t);
                if (t.kind != DIAG_TARGET_LIVE || t.pid == getpid()) {
                        diag_target_message(&t, t.pid == getpid() ? -EINVAL : 0, "sample", msg, sizeof msg);
                        if (t.pid == getpid())
                                snprintf(msg, sizeof msg, "pid %d is diag-sample itself", (int) t.pid);
                        reason = diag_target_reason(&t, 0);
                        failed_pid = arg.pids[i];
                        log_error("%s", msg);
                        nfailed++;
                        continue;
                }
                if (!proc_find(t.pid) && proc_add(t.pid, false, true))
                        named[nnamed++] = t.pid;
        }
        if (!arg.all && !nnamed) {
                if (nfailed > 1)
                        snprintf(msg, sizeof msg, "none of the %u processes can be sampled", nfailed);
                if (arg.json)
                        (void) diag_json_error(stdout, msg, reason ? reason : "error", nfailed > 1 ? 0 : failed_pid,
                                               DIAG_EXIT_FAILURE);
                (void) diag_close_stdout();
                return DIAG_EXIT_FAILURE;
        }
        if (nfailed)
                status = DIAG_EXIT_FAILURE;
        /* the thread files need ptrace-read permission (not a stop) */
        for (size_t i = 0; i < S.n && !arg.all; i++)
                if (S.p[i].syscall_denied)
                        add_missing("waits", "pid %d: its threads' system calls are not readable (not permitted): waits show states only",
                                    S.p[i].pid);

        /* end the window on Ctrl-C or SIGTERM, and still report */
        {
                struct sigaction sa = { .sa_handler = on_stop_signal }, old;
                int sigs[] = { SIGINT, SIGTERM, SIGHUP };
                sigemptyset(&sa.sa_mask);
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
                                (void) sigaction(sigs[i], &sa, NULL);
        }

        if (arg.syscalls) {
                r = diag_syscount_start(named, arg.all ? 0 : nnamed, &S.sc, &S.sc_reason);
                if (r < 0) {
                        S.sc = NULL;
                        add_missing("syscalls", "no system call counts: %s", S.sc_reason ? S.sc_reason : strerror(-r));
                }
        }
        po = (struct diag_perf_opts) {
                .pids = named, .npids = nnamed, .all = arg.all, .freq_hz = arg.hz, .kernel_callchain = arg.kernel,
        };
        r = diag_perf_open(&po, &S.perf, &S.perf_reason);
        if (r < 0 && arg.kernel) {
                /* kernel callchains may be what is not permitted: try without */
                po.kernel_callchain = false;
                if (diag_perf_open(&po, &S.perf, &S.perf_reason) == 0) {
                        r = 0;
                        add_missing("kernel", "no kernel frames: not permitted here (perf_event_paranoid %s)",
                                    "> 1, or no CAP_PERFMON");
                }
        }
        if (r < 0) {
                S.perf = NULL;
                if (arg.all) {
                        snprintf(msg, sizeof msg, "cannot sample the host: %s", S.perf_reason ? S.perf_reason : strerror(-r));
                        return fail_run(msg, "not-permitted", 0);
                }
                if (r == -EACCES || r == -EPERM) {
                        /* another user's process: ownership, not the sysctl, is why */
                        struct stat st;
                        for (size_t i = 0; i < S.n; i++)
                                if (fstat(S.p[i].dirfd, &st) == 0 && st.st_uid != geteuid() && geteuid() != 0) {
                                        add_missing("oncpu", "no on-CPU stacks: pid %d (%s) is owned by uid %u: sampling it "
                                                    "needs root (or CAP_PERFMON) or its owner",
                                                    S.p[i].pid, S.p[i].comm, (unsigned) st.st_uid);
                                        r = 0;
                                        break;
                                }
                }
                if (r < 0)
                        add_missing("oncpu", "no on-CPU stacks: %s", S.perf_reason ? S.perf_reason : strerror(-r));
        }

        run_window();

        /* what was counted, per process */
        if (S.sc && diag_syscount_read(S.sc, &sce, &nsce) < 0)
                nsce = 0;
        if (arg.all) {
                sort_n(S.p, S.n, sizeof *S.p, cmp_proc_samples);
                nshown = MIN(S.n, (size_t) MAX_AUTO_PROCS);
        } else
                nshown = S.n;
        for (size_t i = 0; i < nshown; i++)
                finish_proc(&S.p[i], sce, nsce);
        S.report_ns = diag_now_ns(CLOCK_MONOTONIC);
        for (size_t i = 0; i < S.n; i++)
                if (S.p[i].named && S.p[i].exited)
                        add_missing("exited", "pid %d exited %.1f s into the window: the report holds what was sampled before",
                                    S.p[i].pid, proc_window_s(&S.p[i]));
        if (S.lost)
                log_warn("%" PRIu64 " samples lost (the rings overflowed): percentages are of what was kept", S.lost);

        if (arg.json) {
                json_object *doc = json_object_new_object(), *mech = json_object_new_object(),
                            *miss = json_object_new_array(), *procs = json_object_new_array();
                json_object_object_add(doc, "schema", json_object_new_string("diag-sample/1"));
                json_object_object_add(doc, "tool", json_object_new_string("diag-sample"));
                json_object_object_add(doc, "version", json_object_new_string(DIAG_VERSION));
                json_object_object_add(doc, "duration_s", jfixed((double) (S.t1 - S.t0) / 1e9, 3));
                json_object_object_add(doc, "requested_duration_s", jfixed((double) arg.duration_ms / 1e3, 3));
                json_object_object_add(doc, "frequency_hz", json_object_new_int((int) arg.hz));
                json_object_object_add(doc, "interrupted", json_object_new_boolean(stop_requested != 0));
                json_object_object_add(mech, "oncpu", S.perf ? json_object_new_string(po.cycles ? "perf cycles" : "perf cpu-clock") : NULL);
                json_object_object_add(mech, "syscalls", S.sc ? json_object_new_string(diag_syscount_mechanism(S.sc)) : NULL);
                json_object_object_add(mech, "offcpu", arg.all ? NULL : json_object_new_string("/proc"));
                json_object_object_add(doc, "mechanisms", mech);
                for (size_t i = 0; i < S.nmissing; i++) {
                        json_object *m = json_object_new_object();
                        json_object_object_add(m, "part", json_object_new_string(S.missing_part[i]));
                        json_object_object_add(m, "reason", json_object_new_string(S.missing[i]));
                        json_object_array_add(miss, m);
                }
                json_object_object_add(doc, "missing", miss);
                json_object_object_add(doc, "lost_samples", json_object_new_int64((int64_t) S.lost));
                for (size_t i = 0; i < nshown; i++)
                        json_object_array_add(procs, json_proc(&S.p[i]));
                json_object_object_add(doc, "processes", procs);
                json_object_object_add(doc, "report_ms", jfixed((double) (diag_now_ns(CLOCK_MONOTONIC) - S.t1) / 1e6, 1));
                (void) diag_json_print(stdout, doc);
                json_object_put(doc);
        } else if ((arg.folded && strcmp(arg.folded, "-") == 0) || (arg.svg && strcmp(arg.svg, "-") == 0)) {
                /* the graph is standard output, and nothing else */
        } else {
                for (size_t i = 0; i < nshown; i++)
                        printf("pid %d %s: %s\n", S.p[i].pid, S.p[i].comm, S.p[i].verdict ? S.p[i].verdict : "?");
                printf("\n%.1f s at %u Hz%s; on-CPU stacks: %s; system calls: %s; waits: %s\n", (double) (S.t1 - S.t0) / 1e9,
                       arg.hz, stop_requested ? " (ended early)" : "",
                       S.perf ? "perf cpu-clock, unwound from stack copies" : "none",
                       S.sc ? diag_syscount_mechanism(S.sc) : "none", arg.all ? "not sampled with -a" : "/proc");
                for (size_t i = 0; i < nshown; i++)
                        print_proc(&S.p[i]);
        }
        if (arg.folded && write_out(arg.folded, false) < 0)
                status = DIAG_EXIT_FAILURE;
        if (arg.svg && write_out(arg.svg, true) < 0)
                status = DIAG_EXIT_FAILURE;
        for (size_t i = 0; i < S.nmissing; i++) {
                log_warn("%s", S.missing[i]);
                free(S.missing[i]);
                if (status == DIAG_EXIT_OK)
                        status = DIAG_EXIT_PARTIAL;
        }
        r = diag_close_stdout();
        if (r != 0 && status == DIAG_EXIT_OK)
                status = r;

        for (size_t i = 0; i < S.n; i++)
                proc_free(&S.p[i]);
        free(S.p);
        diag_syscount_free(S.sc);
        diag_perf_free(S.perf);
        diag_perf_unwind_free(S.unw);
        diag_symcache_free(S.symcache);
        diag_flame_free(S.flame);
        free(arg.pids);
        return status;
}
