/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-stack: every thread of a process, what it is doing and how it got there,
 * from one consistent snapshot taken with a pause of a millisecond or so.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "diag/fdname.h"
#include "diag/log.h"
#include "diag/mem.h"
#include "diag/out.h"
#include "diag/proc.h"
#include "diag/ptrace.h"
#include "diag/pyframes.h"
#include "diag/syscall.h"
#include "diag/target.h"
#include "diag/unwind.h"
#include "diag/util.h"

#define DEFAULT_FRAMES 64
#define DEFAULT_CPU_WINDOW_MS 100
#define MAX_NOTES 8

/* ---- what to collect ---- */

enum {
        NEED_STACK   = 1 << 0,  /* stop the target: user stacks */
        NEED_KSTACK  = 1 << 1,
        NEED_WCHAN   = 1 << 2,
        NEED_SCHED   = 1 << 3,
        NEED_SYSCALL = 1 << 4,
        NEED_CPURATE = 1 << 5,  /* two schedstat readings, --cpu-window apart */
};

enum { COL_PID, COL_TID, COL_COMM, COL_STATE, COL_CPU, COL_CPULIFE, COL_BLOCKED, COL_SYSCALL, COL_WCHAN,
       COL_FILE, COL_FUNC, COL_FRAMES, COL_KSTACK, COL_GROUP };

static const struct diag_column columns[] = {
        [COL_PID]     = { "PID",     5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "process id" },
        [COL_TID]     = { "TID",     5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "thread id" },
        [COL_COMM]    = { "COMM",   15, 0, DIAG_COL_STRING, 0, "thread name" },
        [COL_STATE]   = { "STATE",   1, 0, DIAG_COL_STRING, 0, "scheduler state (R S D T t Z I)" },
        [COL_CPU]     = { "CPU",     5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_CPURATE, "percent of one CPU over the --cpu-window before the stop (top's %CPU)" },
        [COL_CPULIFE] = { "CPULIFE", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "CPU share over the thread's whole life, percent (ps's %CPU)" },
        [COL_BLOCKED] = { "BLOCKED", 7, SCOLS_FL_RIGHT, DIAG_COL_STRING, NEED_SCHED, "time since the thread last ran" },
        [COL_SYSCALL] = { "SYSCALL", 0.4, SCOLS_FL_TRUNC, DIAG_COL_STRING, NEED_SYSCALL, "current system call, decoded" },
        [COL_FILE]    = { "FILE",   0.2, SCOLS_FL_TRUNC, DIAG_COL_STRING, NEED_SYSCALL, "what the fd of the system call is: path (device fstype mounted at point), pipe, socket" },
        [COL_WCHAN]   = { "WCHAN",  12, SCOLS_FL_TRUNC, DIAG_COL_STRING, NEED_WCHAN, "kernel function the thread sleeps in" },
        [COL_FUNC]    = { "FUNC",   0.2, SCOLS_FL_TRUNC, DIAG_COL_STRING, NEED_STACK, "innermost user function (stops the target)" },
        [COL_FRAMES]  = { "FRAMES", 0.3, SCOLS_FL_WRAP, DIAG_COL_ARRAY, NEED_STACK, "user stack, one frame per line (stops the target)" },
        [COL_KSTACK]  = { "KSTACK", 0.3, SCOLS_FL_WRAP, DIAG_COL_ARRAY, NEED_KSTACK, "kernel stack (root)" },
        [COL_GROUP]   = { "GROUP",   3, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_STACK, "number of the group of threads with the same stack" },
};

static const int default_columns[] = { COL_TID, COL_COMM, COL_STATE, COL_CPU, COL_BLOCKED, COL_SYSCALL, COL_FUNC };

/* ---- options ---- */

static struct {
        size_t frames;
        bool kernel, group, inlines, source, stop, table, verbose, python;
        uint64_t stack_size;
        unsigned timeout_s;
        unsigned cpu_window_ms;
        pid_t *tids;
        size_t ntids;
        struct diag_outopts out;
        struct diag_columns cols;
} arg = {
        .frames = DEFAULT_FRAMES,
        .kernel = true, .group = true, .inlines = true, .stop = true, .python = true,
        .timeout_s = 30, .cpu_window_ms = DEFAULT_CPU_WINDOW_MS,
};

/* ---- collected data ---- */

struct thread_view {
        pid_t tid;
        const struct diag_task *task;           /* NULL: born during the stop */
        const struct diag_thread_capture *cap;  /* NULL: not captured */
        struct diag_stack stack;
        int group;
};

struct report {
        pid_t pid;
        struct diag_target target;      /* what was asked for, resolved */
        char *err_msg;                  /* why it cannot be shown (the one stderr line) */
        const char *err_reason;         /* diag_target_reason() */
        struct diag_proc *proc;
        struct diag_fdname *fdn;        /* per proc->tasks[i]: the fd its system call is on (fd -1: none) */
        struct diag_capture *cap;
        struct diag_unwinder *unw;
        struct thread_view *tv;
        size_t ntv;
        size_t *order;          /* tv indexes, grouped */
        size_t ngroups;
        size_t *group_start;    /* ngroups + 1 offsets into order */
        bool stopped;
        struct diag_pyreader *py;       /* a CPython target: its frames */
        char *pyversion;
        struct diag_pythread *pyth;     /* per capture thread, read while stopped */
        size_t npyth;
        uint64_t py_ns;                 /* of the stop, spent reading Python frames */
        int exit;               /* DIAG_EXIT_* this process contributes */
        char *notes[MAX_NOTES]; /* what is missing, and why */
        size_t nnotes;
};

static void report_note(struct report *rp, const char *fmt, ...) _printf_(2, 3);
static void report_note(struct report *rp, const char *fmt, ...) {
        va_list ap;
        char *s;

        if (rp->nnotes >= MAX_NOTES)
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) >= 0)
                rp->notes[rp->nnotes++] = s;
        va_end(ap);
}

static void report_free(struct report *rp) {
        for (size_t i = 0; i < rp->ntv; i++)
                diag_stack_clear(&rp->tv[i].stack);
        for (size_t i = 0; i < rp->nnotes; i++)
                free(rp->notes[i]);
        free(rp->err_msg);
        free(rp->tv);
        free(rp->order);
        free(rp->group_start);
        for (size_t i = 0; rp->fdn && i < rp->proc->ntasks; i++)
                diag_fdname_done(&rp->fdn[i]);
        free(rp->fdn);
        diag_unwinder_free(rp->unw);
        diag_capture_free(rp->cap);
        for (size_t i = 0; i < rp->npyth; i++)
                diag_pythread_clear(&rp->pyth[i]);
        free(rp->pyth);
        diag_pyreader_free(rp->py);
        free(rp->pyversion);
        diag_proc_free(rp->proc);
}

static bool tid_selected(pid_t tid);

/* What the fd of each thread's system call is, from /proc only. */
static void name_syscall_fds(struct report *rp) {
        enum diag_arch arch = diag_arch_native();

        rp->fdn = calloc(rp->proc->ntasks ? rp->proc->ntasks : 1, sizeof *rp->fdn);
        if (!rp->fdn)
                return;
        for (size_t i = 0; i < rp->proc->ntasks; i++) {
                const struct diag_task *t = &rp->proc->tasks[i];
                int fd = diag_fdname_syscall_fd(arch, &t->sc);

                rp->fdn[i] = (struct diag_fdname) { .fd = -1, .mnt_id = -1 };
                if (fd < 0 || !tid_selected(t->tid))
                        continue;
                /* idle pools: many threads in read() on one fd, read it once */
                for (size_t j = 0; j < i; j++)
                        if (rp->fdn[j].fd == fd && rp->fdn[j].link) {
                                (void) diag_fdname_copy(&rp->fdn[j], &rp->fdn[i]);
                                break;
                        }
                if (!rp->fdn[i].link && diag_fdname_read(rp->pid, fd, NULL, &rp->fdn[i]) < 0)
                        diag_fdname_done(&rp->fdn[i]);
        }
}

static const struct diag_fdname *fdname_of(const struct report *rp, const struct thread_view *v) {
        const struct diag_fdname *n;

        if (!v->task || !rp->fdn)
                return NULL;
        n = &rp->fdn[v->task - rp->proc->tasks];
        return n->link ? n : NULL;
}

static bool tid_selected(pid_t tid) {
        if (!arg.tids)
                return true;
        for (size_t i = 0; i < arg.ntids; i++)
                if (arg.tids[i] == tid)
                        return true;
        return false;
}

static bool kstack_equal(const struct thread_view *a, const struct thread_view *b) {
        const char *x = a->task ? a->task->kstack : NULL, *y = b->task ? b->task->kstack : NULL;
        if (!x || !y)
                return x == y;
        return strcmp(x, y) == 0;
}

/* Python frames have no pc: diag_stack_equal sees only where they are. */
static bool pyframes_equal(const struct diag_stack *a, const struct diag_stack *b) {
        for (size_t i = 0; i < a->n && i < b->n; i++) {
                const struct diag_frame *x = &a->frames[i], *y = &b->frames[i];
                if (x->python != y->python)
                        return false;
                if (x->python && (x->line != y->line || !x->func != !y->func || !x->file != !y->file ||
                                  (x->func && strcmp(x->func, y->func) != 0) ||
                                  (x->file && strcmp(x->file, y->file) != 0)))
                        return false;
        }
        return true;
}

/* Stopped, or read while it slept: it has registers and a stack. */
static bool cap_has_stack(const struct diag_thread_capture *c) {
        return c && (!c->err || c->peeked);
}

/* Read while every thread is stopped, so that the Python frames match the
 * native stacks copied in the same stop. Threads not stopped sleep in the
 * kernel: their frames hold still too. */
static int read_python(void *userdata, const struct diag_capture *c) {
        struct report *rp = userdata;
        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC);

        rp->pyth = calloc(c->n ? c->n : 1, sizeof *rp->pyth);
        if (!rp->pyth)
                return 0;
        rp->npyth = c->n;
        for (size_t i = 0; i < c->n; i++)
                if (cap_has_stack(&c->threads[i]))
                        (void) diag_pyreader_thread(rp->py, c->threads[i].tid, &rp->pyth[i]);
        rp->py_ns = diag_now_ns(CLOCK_MONOTONIC) - t0;
        return 0;
}

/* Threads with the same user and kernel stacks form a group; biggest group first. */
static int report_group(struct report *rp) {
        size_t *gid_size;
        size_t ng = 0;

        rp->order = calloc(rp->ntv, sizeof *rp->order);
        rp->group_start = calloc(rp->ntv + 1, sizeof *rp->group_start);
        gid_size = calloc(rp->ntv + 1, sizeof *gid_size);
        if (!rp->order || !rp->group_start || !gid_size) {
                free(gid_size);
                return -ENOMEM;
        }
        for (size_t i = 0; i < rp->ntv; i++) {
                struct thread_view *t = &rp->tv[i];
                t->group = -1;
                if (arg.group && cap_has_stack(t->cap) && t->stack.n > 0)
                        for (size_t j = 0; j < i; j++) {
                                struct thread_view *o = &rp->tv[j];
                                if (cap_has_stack(o->cap) && o->stack.n > 0 && o->cap->peeked == t->cap->peeked &&
                                    diag_stack_equal(&t->stack, &o->stack) && pyframes_equal(&t->stack, &o->stack) &&
                                    kstack_equal(t, o)) {
                                        t->group = o->group;
                                        break;
                                }
                        }
                if (t->group < 0)
                        t->group = (int) ng++;
                gid_size[t->group]++;
        }
        /* order groups by size (desc), then by first tid (the view is in tid order) */
        {
                size_t *gorder = calloc(ng ? ng : 1, sizeof *gorder), k = 0;
                if (!gorder) {
                        free(gid_size);
                        return -ENOMEM;
                }
                for (size_t g = 0; g < ng; g++)
                        gorder[g] = g;
                for (size_t a = 1; a < ng; a++)
                        for (size_t b = a; b > 0 && gid_size[gorder[b]] > gid_size[gorder[b - 1]]; b--) {
                                size_t tmp = gorder[b];
                                gorder[b] = gorder[b - 1];
                                gorder[b - 1] = tmp;
                        }
                for (size_t g = 0; g < ng; g++) {
                        rp->group_start[g] = k;
                        for (size_t i = 0; i < rp->ntv; i++)
                                if ((size_t) rp->tv[i].group == gorder[g])
                                        rp->order[k++] = i;
                }
                rp->group_start[ng] = k;
                /* renumber so that group numbers follow the display order */
                for (size_t g = 0; g < ng; g++)
                        for (size_t k2 = rp->group_start[g]; k2 < rp->group_start[g + 1]; k2++)
                                rp->tv[rp->order[k2]].group = (int) g;
                free(gorder);
        }
        rp->ngroups = ng;
        free(gid_size);
        return 0;
}

static int cmp_tid(const void *a, const void *b) {
        const struct thread_view *x = a, *y = b;
        return (x->tid > y->tid) - (x->tid < y->tid);
}

#define WHAT "show the stacks of"

/* The target cannot be shown: log the one line of the shared vocabulary
 * (diag/target.h), keep it and its reason for -J. Returns a negative errno. */
static int target_failed(struct report *rp, int err) {
        char buf[512];

        diag_target_message(&rp->target, err, WHAT, buf, sizeof buf);
        rp->err_reason = diag_target_reason(&rp->target, err);
        free(rp->err_msg);
        rp->err_msg = strdup(buf);
        log_error_errno(err ? err : -EINVAL, "%s", buf);
        return err < 0 ? err : -EINVAL;
}

/* Collect one process. Returns 0 when something can be shown (rp->exit says how
 * complete), or a negative errno after logging the one line that says why not. */
static int collect(const struct diag_target *target, unsigned need, struct report *rp) {
        pid_t pid = target->pid;
        unsigned flags = 0;
        _cleanup_(diag_maps_freep) struct diag_maps *maps = NULL;
        _cleanup_(diag_cpu_rates_done) struct diag_cpu_rates rates = { .proc_pct = -1 };
        bool rating = false;
        int r;

        rp->pid = pid;
        rp->target = *target;
        diag_watchdog_phase("reading /proc");
        /* a zombie leader may still have live threads: judged from them below */
        if (target->kind == DIAG_TARGET_GONE || target->kind == DIAG_TARGET_KERNEL)
                return target_failed(rp, 0);

        /* The first CPU reading now, the second just before the stop: the
         * window overlaps the reads in between. */
        if ((need & NEED_CPURATE) && arg.cpu_window_ms > 0)
                rating = diag_cpu_rates_begin(pid, &rates) >= 0;

        if (need & NEED_SYSCALL)
                flags |= DIAG_PROC_SYSCALL;
        if (need & NEED_WCHAN)
                flags |= DIAG_PROC_WCHAN;
        if (need & NEED_SCHED)
                flags |= DIAG_PROC_SCHED;
        if ((need & NEED_KSTACK) && arg.kernel)
                flags |= DIAG_PROC_KSTACK;
        flags |= DIAG_PROC_CMDLINE;     /* the name it was started as */
        r = diag_proc_load(pid, flags, &rp->proc);
        if (r == -ESRCH) {
                rp->target.kind = DIAG_TARGET_GONE;
                return target_failed(rp, 0);
        }
        if (r < 0)
                return target_failed(rp, r);
        {
                bool all_zombie = true;
                for (size_t i = 0; i < rp->proc->ntasks; i++)
                        if (rp->proc->tasks[i].state != 'Z' && rp->proc->tasks[i].state != 'X')
                                all_zombie = false;
                if (all_zombie) {
                        rp->target.kind = DIAG_TARGET_ZOMBIE;
                        return target_failed(rp, 0);
                }
        }

        /* What /proc would not tell us. */
        {
                size_t denied_sc = 0, denied_k = 0, selected = 0;
                for (size_t i = 0; i < rp->proc->ntasks; i++) {
                        const struct diag_task *t = &rp->proc->tasks[i];
                        if (!tid_selected(t->tid))
                                continue;
                        selected++;
                        if (t->sc_err == -EACCES || t->sc_err == -EPERM)
                                denied_sc++;
                        if (t->kstack_err == -EACCES || t->kstack_err == -EPERM)
                                denied_k++;
                }
                if (selected == 0)
                        return log_error_errno(-ESRCH, "process %d has none of the threads asked for", pid);
                if (denied_sc == selected && (flags & DIAG_PROC_SYSCALL))
                        return target_failed(rp, -EPERM);
                if (denied_k)
                        report_note(rp, "kernel stacks: reading /proc/PID/task/TID/stack needs root (CAP_SYS_ADMIN)");
        }
        if (flags & DIAG_PROC_SYSCALL)
                name_syscall_fds(rp);

        if (need & NEED_STACK) {
                struct diag_capture_opts co = {
                        .stack_max = arg.stack_size, .tids = arg.tids, .ntids = arg.ntids,
                };
                diag_watchdog_phase("reading the memory map");
                r = diag_maps_read(pid, &maps);
                if (r >= 0)
                        r = diag_unwinder_new(pid, &rp->unw);
                if (rating) {
                        diag_watchdog_phase("measuring the CPU rate");
                        if (diag_cpu_rates_end(&rates, arg.cpu_window_ms) >= 0)
                                diag_proc_set_cpu_rates(rp->proc, &rates);
                        rating = false;
                }
                if (r >= 0 && arg.python) {
                        int k = diag_pyreader_new(pid, &rp->py, &rp->pyversion);
                        if (k == -EPROTONOSUPPORT)
                                report_note(rp, "Python frames: CPython %s is not supported; native frames only",
                                            rp->pyversion ? rp->pyversion : "(unknown version)");
                        else if (k < 0 && k != -ENOENT)
                                report_note(rp, "Python frames: cannot read the interpreter: %s", strerror(-k));
                        if (rp->py) {
                                /* A first pass while the threads run finds their thread
                                 * states and reads most code objects: inside the stop,
                                 * what is left is the frame chains. */
                                for (size_t i = 0; i < rp->proc->ntasks; i++) {
                                        struct diag_pythread pt = { 0 };
                                        if (tid_selected(rp->proc->tasks[i].tid))
                                                (void) diag_pyreader_thread(rp->py, rp->proc->tasks[i].tid, &pt);
                                        diag_pythread_clear(&pt);
                                }
                                co.stopped = read_python;
                                co.userdata = rp;
                        }
                }
                if (r >= 0) {
                        co.maps = maps;
                        diag_watchdog_phase("capturing the threads");
                        r = diag_capture_take(pid, &co, &rp->cap);
                }
                diag_watchdog_phase("unwinding");
                if (r == -EBUSY || r == -EPERM || r == -EACCES || r == -ECHILD) {
                        char buf[512];
                        pid_t tracer = 0;
                        /* a thread traced by someone else refuses us too: name them */
                        for (size_t i = 0; r != -EBUSY && i < rp->proc->ntasks && !tracer; i++)
                                if (tid_selected(rp->proc->tasks[i].tid))
                                        (void) diag_ptrace_tracer_of(rp->proc->tasks[i].tid, &tracer);
                        if (tracer > 0)
                                report_note(rp, "user stacks: the threads are traced by pid %d; showing /proc data only", tracer);
                        else
                                report_note(rp, "user stacks: %s; showing /proc data only",
                                            diag_target_message(&rp->target, r == -EACCES ? -EPERM : r, "trace", buf,
                                                                sizeof buf));
                        rp->exit = DIAG_EXIT_PARTIAL;
                } else if (r == -EDEADLK) {
                        report_note(rp, "user stacks: no thread could be stopped without changing what it waits for "
                                        "(D state, or a wait an interrupt would end), nor read while it slept");
                } else if (r == -ESRCH) {
                        return target_failed(rp, -ESRCH);
                } else if (r < 0) {
                        report_note(rp, "user stacks: capture failed: %s", strerror(-r));
                        rp->exit = DIAG_EXIT_PARTIAL;
                } else
                        rp->stopped = true;
        }

        if (rating && diag_cpu_rates_end(&rates, arg.cpu_window_ms) >= 0)
                diag_proc_set_cpu_rates(rp->proc, &rates);

        /* One view per selected thread: the /proc table joined with the capture. */
        rp->tv = calloc(rp->proc->ntasks + (rp->cap ? rp->cap->n : 0), sizeof *rp->tv);
        if (!rp->tv)
                return log_error_errno(-ENOMEM, "out of memory");
        for (size_t i = 0; i < rp->proc->ntasks; i++) {
                const struct diag_task *t = &rp->proc->tasks[i];
                if (!tid_selected(t->tid))
                        continue;
                rp->tv[rp->ntv++] = (struct thread_view) { .tid = t->tid, .task = t };
        }
        for (size_t i = 0; rp->cap && i < rp->cap->n; i++) {
                const struct diag_thread_capture *c = &rp->cap->threads[i];
                struct thread_view *v = NULL;
                for (size_t j = 0; j < rp->ntv; j++)
                        if (rp->tv[j].tid == c->tid)
                                v = &rp->tv[j];
                if (!v) {
                        v = &rp->tv[rp->ntv++];
                        *v = (struct thread_view) { .tid = c->tid };
                }
                v->cap = c;
                if (c->err == -EPERM) {
                        pid_t tracer = 0;
                        rp->exit = DIAG_EXIT_PARTIAL;
                        if (diag_ptrace_tracer_of(c->tid, &tracer) == 0 && tracer > 0)
                                report_note(rp, "thread %d is traced by pid %d: its user stack is missing", c->tid, tracer);
                        else
                                report_note(rp, "thread %d may not be traced: its user stack is missing", c->tid);
                }
                if (c->err == -ETIMEDOUT) {
                        rp->exit = DIAG_EXIT_PARTIAL;
                        report_note(rp, "thread %d did not stop in time: its user stack is missing", c->tid);
                }
                if (cap_has_stack(c))
                        (void) diag_unwind(rp->unw, rp->cap, i, arg.frames, arg.inlines, &v->stack);
                if (cap_has_stack(c) && i < rp->npyth && rp->pyth[i].n) {
                        struct diag_stack sp;
                        if (diag_py_splice(&v->stack, &rp->pyth[i], &sp) >= 0) {
                                free(v->stack.frames);
                                v->stack.frames = sp.frames;
                                v->stack.n = sp.n;
                        }
                }
        }
        qsort(rp->tv, rp->ntv, sizeof *rp->tv, cmp_tid);
        return report_group(rp);
}

/* ---- rendering helpers ---- */

static const char *basename_of(const char *p) {
        const char *s = p ? strrchr(p, '/') : NULL;
        return s ? s + 1 : (p ? p : "?");
}

/* The name the process was started as, when it is not the file's: Debian's
 * redis-server is a symlink to redis-check-rdb, python3 to python3.11. */
static const char *started_as(const struct report *rp) {
        const struct diag_proc *p = rp->proc;

        if (!p->argv0 || !p->exe || strcmp(basename_of(p->argv0), basename_of(p->exe)) == 0)
                return NULL;
        return p->argv0;
}

/* A module's short name; the main executable goes by the name it was started as. */
static const char *module_name(const struct report *rp, const struct diag_module *m) {
        if (started_as(rp) && m->path && strcmp(m->path, rp->proc->exe) == 0)
                return basename_of(started_as(rp));
        return basename_of(m->path);
}

static const char *thread_error(const struct report *rp, const struct thread_view *v) {
        if (!rp->stopped)
                return NULL;
        if (!v->cap)
                return "not captured";
        if (v->cap->peeked)
                return NULL;
        switch (v->cap->err) {
        case 0: return NULL;
        case -ESRCH: return "exited during the capture";
        case -EDEADLK: return "in uninterruptible sleep (D): not stopped, user stack not captured";
        case -EINTR: return "woke while it was read without stopping: user stack not captured";
        case -ETIMEDOUT: return "did not stop in time: user stack not captured";
        default: return strerror(-v->cap->err);
        }
}

static char *format_frame(const struct report *rp, const struct diag_frame *f, size_t idx, char *buf, size_t size) {
        const struct diag_module *m = f->module >= 0 ? diag_unwinder_module(rp->unw, (size_t) f->module) : NULL;
        char where[512] = "";
        size_t o;

        if (f->python) {
                snprintf(buf, size, "#%-2zu [python]           in %s (%s:%d)", idx, f->func ? f->func : "??",
                         f->file ? f->file : "?", f->line);
                return buf;
        }
        if (f->inlined)
                o = (size_t) snprintf(buf, size, "#%-2zu [inlined]          in ", idx);
        else
                o = (size_t) snprintf(buf, size, "#%-2zu 0x%016" PRIx64 " in ", idx, f->pc);
        if (o >= size)
                return buf;
        if (f->func && f->inlined)
                o += (size_t) snprintf(buf + o, size - o, "%s", f->func);
        else if (f->func)
                o += (size_t) snprintf(buf + o, size - o, "%s+0x%" PRIx64, f->func, f->func_off);
        else if (m)
                o += (size_t) snprintf(buf + o, size - o, "?? (%s+0x%" PRIx64 ")", module_name(rp, m), f->pc - m->start);
        else
                o += (size_t) snprintf(buf + o, size - o, "??");
        if (o >= size)
                return buf;
        if (m && f->func)
                snprintf(where, sizeof where, " (%s)", module_name(rp, m));
        if (f->file)
                snprintf(where + strlen(where), sizeof where - strlen(where), " %s:%d", f->file, f->line);
        snprintf(buf + o, size - o, "%s", where);
        return buf;
}

static void print_source_line(const char *file, int line) {
        FILE *f;
        char buf[512];
        int n = 0;

        if (!file || line <= 0 || !(f = fopen(file, "re")))
                return;
        while (fgets(buf, sizeof buf, f))
                if (++n == line) {
                        const char *s = buf;
                        while (*s == ' ' || *s == '\t')
                                s++;
                        printf("          %d\t%s", line, s);
                        if (!strchr(s, '\n'))
                                putchar('\n');
                        break;
                }
        fclose(f);
}

static void kstack_lines(const char *k, void (*emit)(const char *line, size_t len, void *ud), void *ud) {
        while (k && *k) {
                const char *nl = strchr(k, '\n');
                size_t len = nl ? (size_t) (nl - k) : strlen(k);
                /* "[<0>] futex_wait_queue+0x60/0x90": drop the address column (zeroed anyway) */
                if (len > 0 && k[0] == '[') {
                        const char *e = memchr(k, ']', len);
                        if (e && (size_t) (e - k) + 2 <= len) {
                                len -= (size_t) (e - k) + 2;
                                k = e + 2;
                        }
                }
                if (len)
                        emit(k, len, ud);
                k = nl ? nl + 1 : k + len;
        }
}

static char *syscall_text(const struct report *rp, const struct thread_view *v, char *buf, size_t size) {
        if (!v->task || v->task->sc.kind == DIAG_SC_UNKNOWN) {
                snprintf(buf, size, "%s", "?");
                return buf;
        }
        return diag_syscall_format(diag_arch_native(), &v->task->sc, buf, size);
}

/* "cpu 85.2% (0.1s)": the rate over the window; without one, the lifetime
 * average, said so. */
static char *cpu_text(const struct report *rp, double rate, double life, char *buf, size_t size) {
        if (rate >= 0)
                snprintf(buf, size, "cpu %.1f%% (%.1fs)", rate, rp->proc->cpu_rate_window_ms / 1000.0);
        else if (life >= 0)
                snprintf(buf, size, "cpu %.1f%% (lifetime)", life);
        else
                snprintf(buf, size, "cpu ?");
        return buf;
}

/* Threads whose blocked-for clock the stop reset: stopped, and asleep before it
 * (whether or not their blocked time was asked for). Their se.exec_start is now
 * the stop's instant. */
static size_t clocks_reset(const struct report *rp) {
        size_t n = 0;

        for (size_t i = 0; rp->stopped && i < rp->ntv; i++) {
                const struct thread_view *v = &rp->tv[i];
                if (v->cap && !v->cap->err && v->task && v->task->state != 'R')
                        n++;
        }
        return n;
}

/* ---- text ---- */

static void emit_kline(const char *line, size_t len, void *ud) {
        int *first = ud;
        printf("  %s %.*s\n", *first ? "kernel " : "       ", (int) len, line);
        *first = 0;
}

static void text_thread_line(const struct report *rp, const struct thread_view *v) {
        char sc[512], dur[DIAG_DURATION_MAX], cpu[64];
        const struct diag_task *t = v->task;

        printf("  %d \"%s\" %c", v->tid, t ? t->comm : "?", t ? t->state : '?');
        if (t) {
                printf("  %s", cpu_text(rp, t->cpu_rate_pct, t->cpu_life_pct, cpu, sizeof cpu));
                if (t->offcpu_ms >= 0)
                        printf("  blocked %s", diag_format_duration((uint64_t) t->offcpu_ms, dur, sizeof dur));
        }
        printf("  %s", syscall_text(rp, v, sc, sizeof sc));
        if (fdname_of(rp, v))
                printf(" on %s", diag_fdname_format(fdname_of(rp, v), sc, sizeof sc));
        if (t && t->wchan[0])
                printf("  [%s]", t->wchan);
        putchar('\n');
        if (thread_error(rp, v))
                printf("     (%s)\n", thread_error(rp, v));
        else if (v->cap && v->cap->peeked)
                printf("     (not stopped: %s; its stack was read while it slept, unwound from pc and sp alone)\n",
                       v->cap->not_stopped);
}

static void text_frames(const struct report *rp, const struct thread_view *v) {
        char buf[1024];

        for (size_t i = 0; i < v->stack.n; i++) {
                const struct diag_frame *f = &v->stack.frames[i];
                printf("  %s\n", format_frame(rp, f, i, buf, sizeof buf));
                if (arg.source)
                        print_source_line(f->file, f->line);
        }
        if (v->stack.truncated)
                printf("  ... (more frames: --frames %zu shows more)\n", arg.frames * 4);
        else if (v->stack.err_msg && diag_log_verbose)
                printf("  (unwinding stopped: %s)\n", v->stack.err_msg);
}

static void render_text(const struct report *rp) {
        const struct diag_proc *p = rp->proc;
        char dur[32];

        printf("PID %d (%s) %s", p->pid, p->comm, p->exe ? p->exe : "?");
        if (started_as(rp))
                printf(" (started as %s)", started_as(rp));
        if (rp->pyth)
                printf(", Python %s", rp->pyversion ? rp->pyversion : "?");
        printf(" — %zu thread%s", p->ntasks, p->ntasks == 1 ? "" : "s");
        if (p->cpu_rate_pct >= 0)
                printf(", %s", cpu_text(rp, p->cpu_rate_pct, -1, dur, sizeof dur));
        if (rp->stopped) {
                snprintf(dur, sizeof dur, "%.2f ms", (double) rp->cap->pause_ns / 1e6);
                printf(", stopped for %s\n", dur);
        } else
                printf(", not stopped\n");
        for (size_t g = 0; g < rp->ngroups; g++) {
                size_t a = rp->group_start[g], b = rp->group_start[g + 1];
                const struct thread_view *first = &rp->tv[rp->order[a]];

                putchar('\n');
                if (b - a > 1) {
                        printf("%zu threads with the same stack:", b - a);
                        for (size_t k = a; k < b; k++)
                                printf(" %d", rp->tv[rp->order[k]].tid);
                        putchar('\n');
                } else
                        printf("Thread %d:\n", first->tid);
                for (size_t k = a; k < b; k++)
                        text_thread_line(rp, &rp->tv[rp->order[k]]);
                if (first->task && first->task->kstack) {
                        int firstline = 1;
                        kstack_lines(first->task->kstack, emit_kline, &firstline);
                }
                text_frames(rp, first);
        }
        if (clocks_reset(rp))
                printf("\nThe stop reset the kernel's blocked-for clock of %zu thread%s: the blocked times above were "
                       "read before it; later readings (diag-stack, diag-chain, /proc/PID/sched) will show short times.\n",
                       clocks_reset(rp), clocks_reset(rp) == 1 ? "" : "s");
        /* Modules whose debuginfo is a problem: say so, it changes what frames mean. */
        for (size_t i = 0; rp->unw && i < diag_unwinder_n_modules(rp->unw); i++) {
                const struct diag_module *m = diag_unwinder_module(rp->unw, i);
                if (m->debuginfo == DIAG_DEBUG_MISMATCH)
                        printf("\ndebuginfo MISMATCH for %s: %s; file:line not shown for it\n",
                               m->path, m->debug_note ? m->debug_note : "build-ids differ");
                else if (m->debuginfo == DIAG_DEBUG_MISSING && diag_log_verbose)
                        printf("\ndebuginfo missing for %s (build-id %s)\n", m->path,
                               m->build_id[0] ? m->build_id : "none");
        }
}

/* ---- JSON ---- */

static void emit_kjson(const char *line, size_t len, void *ud) {
        json_object_array_add(ud, json_object_new_string_len(line, (int) len));
}

/* {"fd", "name" (the readlink text), "text", "device" "MAJ:MIN", "device_name",
 * "mount_point", "fstype", "may_hang", "pos"}, or null. */
static json_object *json_fdname(const struct diag_fdname *n) {
        json_object *o;
        char buf[1024];

        if (!n)
                return NULL;
        o = json_object_new_object();
        json_object_object_add(o, "fd", json_object_new_int(n->fd));
        json_object_object_add(o, "name", diag_json_str(n->link));
        json_object_object_add(o, "text", json_object_new_string(diag_fdname_format(n, buf, sizeof buf)));
        json_object_object_add(o, "deleted", json_object_new_boolean(n->deleted));
        snprintf(buf, sizeof buf, "%u:%u", n->dev_major, n->dev_minor);
        json_object_object_add(o, "device", n->have_mount ? json_object_new_string(buf) : NULL);
        json_object_object_add(o, "device_name", diag_json_str(n->have_mount ? n->dev_name : NULL));
        json_object_object_add(o, "mount_point", diag_json_str(n->have_mount ? n->mount_point : NULL));
        json_object_object_add(o, "fstype", diag_json_str(n->have_mount ? n->fstype : NULL));
        json_object_object_add(o, "may_hang", n->have_mount ? json_object_new_boolean(n->may_hang) : NULL);
        json_object_object_add(o, "pos", n->have_fdinfo ? json_object_new_int64((int64_t) n->pos) : NULL);
        return o;
}

static json_object *json_thread(const struct report *rp, const struct thread_view *v) {
        const struct diag_task *t = v->task;
        json_object *o = json_object_new_object();
        char buf[512];

        json_object_object_add(o, "tid", json_object_new_int(v->tid));
        json_object_object_add(o, "comm", diag_json_str(t ? t->comm : NULL));
        snprintf(buf, sizeof buf, "%c", t ? t->state : '?');
        json_object_object_add(o, "state", json_object_new_string(buf));
        json_object_object_add(o, "cpu_rate_pct", t && t->cpu_rate_pct >= 0 ? json_object_new_double(t->cpu_rate_pct) : NULL);
        json_object_object_add(o, "cpu_lifetime_pct", t ? json_object_new_double(t->cpu_life_pct) : NULL);
        if (t && t->sc.kind == DIAG_SC_IN) {
                json_object *sc = json_object_new_object(), *args = json_object_new_array();
                json_object_object_add(sc, "nr", json_object_new_int64(t->sc.nr));
                json_object_object_add(sc, "name", diag_json_str(diag_syscall_name(diag_arch_native(), t->sc.nr)));
                for (int i = 0; i < 6; i++)
                        json_object_array_add(args, diag_json_hex(t->sc.args[i]));
                json_object_object_add(sc, "args", args);
                json_object_object_add(sc, "text", json_object_new_string(syscall_text(rp, v, buf, sizeof buf)));
                json_object_object_add(sc, "file", json_fdname(fdname_of(rp, v)));
                json_object_object_add(o, "syscall", sc);
        } else
                json_object_object_add(o, "syscall", NULL);
        json_object_object_add(o, "running", json_object_new_boolean(t && (t->sc.kind == DIAG_SC_RUNNING || t->state == 'R')));
        json_object_object_add(o, "wchan", t && t->wchan[0] ? json_object_new_string(t->wchan) : NULL);
        json_object_object_add(o, "blocked_ms", t && t->offcpu_ms >= 0 ? json_object_new_int64(t->offcpu_ms) : NULL);
        if (t && t->kstack) {
                json_object *k = json_object_new_array();
                kstack_lines(t->kstack, emit_kjson, k);
                json_object_object_add(o, "kernel_stack", k);
        } else
                json_object_object_add(o, "kernel_stack", NULL);
        json_object_object_add(o, "error", diag_json_str(thread_error(rp, v)));
        json_object_object_add(o, "stopped", json_object_new_boolean(v->cap && !v->cap->err));
        json_object_object_add(o, "not_stopped",
                               v->cap && v->cap->not_stopped[0] ? json_object_new_string(v->cap->not_stopped) : NULL);
        return o;
}

static json_object *json_frames(const struct report *rp, const struct diag_stack *s) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < s->n; i++) {
                const struct diag_frame *f = &s->frames[i];
                const struct diag_module *m = f->module >= 0 ? diag_unwinder_module(rp->unw, (size_t) f->module) : NULL;
                json_object *o = json_object_new_object();

                json_object_object_add(o, "index", json_object_new_int((int) i));
                json_object_object_add(o, "pc", f->python ? NULL : diag_json_hex(f->pc));
                json_object_object_add(o, "function", diag_json_str(f->func));
                json_object_object_add(o, "offset", f->func && !f->inlined && !f->python ? json_object_new_int64((int64_t) f->func_off) : NULL);
                json_object_object_add(o, "module", diag_json_str(m ? m->path : NULL));
                json_object_object_add(o, "file", diag_json_str(f->file));
                json_object_object_add(o, "line", f->file ? json_object_new_int(f->line) : NULL);
                json_object_object_add(o, "inlined", json_object_new_boolean(f->inlined));
                json_object_object_add(o, "python", json_object_new_boolean(f->python));
                json_object_array_add(a, o);
        }
        return a;
}

static json_object *json_report(const struct report *rp) {
        const struct diag_proc *p = rp->proc;
        json_object *o = json_object_new_object(), *groups = json_object_new_array(),
                    *mods = json_object_new_array(), *missing = json_object_new_array();

        json_object_object_add(o, "pid", json_object_new_int(p->pid));
        json_object_object_add(o, "comm", json_object_new_string(p->comm));
        json_object_object_add(o, "exe", diag_json_str(p->exe));
        json_object_object_add(o, "argv0", diag_json_str(p->argv0));
        json_object_object_add(o, "arch", json_object_new_string(diag_arch_name(diag_arch_native())));
        json_object_object_add(o, "threads_total", json_object_new_int((int) p->ntasks));
        json_object_object_add(o, "cpu_rate_pct", p->cpu_rate_pct >= 0 ? json_object_new_double(p->cpu_rate_pct) : NULL);
        json_object_object_add(o, "cpu_window_ms", p->cpu_rate_window_ms ? json_object_new_int((int) p->cpu_rate_window_ms) : NULL);
        json_object_object_add(o, "stopped", json_object_new_boolean(rp->stopped));
        json_object_object_add(o, "stopped_us", rp->stopped ? json_object_new_int64((int64_t) (rp->cap->pause_ns / 1000)) : NULL);
        json_object_object_add(o, "vanished", json_object_new_int(rp->cap ? (int) rp->cap->vanished : 0));
        json_object_object_add(o, "python", diag_json_str(rp->pyth ? rp->pyversion : NULL));
        json_object_object_add(o, "python_us", rp->pyth ? json_object_new_int64((int64_t) (rp->py_ns / 1000)) : NULL);
        json_object_object_add(o, "blocked_clocks_reset", json_object_new_int((int) clocks_reset(rp)));
        for (size_t i = 0; i < rp->nnotes; i++)
                json_object_array_add(missing, json_object_new_string(rp->notes[i]));
        json_object_object_add(o, "missing", missing);
        json_object_object_add(o, "error", NULL);      /* set only in the entry of a target not shown */
        for (size_t g = 0; g < rp->ngroups; g++) {
                size_t a = rp->group_start[g], b = rp->group_start[g + 1];
                const struct thread_view *first = &rp->tv[rp->order[a]];
                json_object *go = json_object_new_object(), *tids = json_object_new_array(),
                            *threads = json_object_new_array();

                for (size_t k = a; k < b; k++) {
                        json_object_array_add(tids, json_object_new_int(rp->tv[rp->order[k]].tid));
                        json_object_array_add(threads, json_thread(rp, &rp->tv[rp->order[k]]));
                }
                json_object_object_add(go, "count", json_object_new_int((int) (b - a)));
                json_object_object_add(go, "tids", tids);
                json_object_object_add(go, "threads", threads);
                json_object_object_add(go, "frames", json_frames(rp, &first->stack));
                json_object_object_add(go, "truncated", json_object_new_boolean(first->stack.truncated));
                json_object_object_add(go, "unwind_error", diag_json_str(first->stack.err_msg));
                json_object_array_add(groups, go);
        }
        json_object_object_add(o, "groups", groups);
        for (size_t i = 0; rp->unw && i < diag_unwinder_n_modules(rp->unw); i++) {
                const struct diag_module *m = diag_unwinder_module(rp->unw, i);
                json_object *mo = json_object_new_object();
                json_object_object_add(mo, "path", diag_json_str(m->path));
                json_object_object_add(mo, "build_id", m->build_id[0] ? json_object_new_string(m->build_id) : NULL);
                json_object_object_add(mo, "debuginfo", json_object_new_string(diag_debuginfo_name(m->debuginfo)));
                json_object_object_add(mo, "debug_file", diag_json_str(m->debug_path));
                json_object_object_add(mo, "note", diag_json_str(m->debug_note));
                json_object_array_add(mods, mo);
        }
        json_object_object_add(o, "modules", mods);
        return o;
}

/* ---- table ---- */

struct kcell { char *buf; size_t len, alloc; };

static void emit_kcell(const char *line, size_t len, void *ud) {
        struct kcell *c = ud;
        if (DIAG_GROW(c->buf, c->alloc, c->len + len + 2) < 0)
                return;
        if (c->len)
                c->buf[c->len++] = '\n';
        memcpy(c->buf + c->len, line, len);
        c->len += len;
        c->buf[c->len] = 0;
}

static void table_rows(struct libscols_table *tb, const struct report *rp) {
        const struct diag_columns *c = &arg.cols;
        char buf[1024], dur[DIAG_DURATION_MAX];

        for (size_t i = 0; i < rp->ntv; i++) {
                const struct thread_view *v = &rp->tv[i];
                const struct diag_task *t = v->task;
                struct libscols_line *ln = scols_table_new_line(tb, NULL);

                if (!ln)
                        return;
                diag_table_set(ln, c, COL_PID, "%d", rp->pid);
                diag_table_set(ln, c, COL_TID, "%d", v->tid);
                diag_table_set(ln, c, COL_COMM, "%s", t ? t->comm : "?");
                diag_table_set(ln, c, COL_STATE, "%c", t ? t->state : '?');
                if (t && t->cpu_rate_pct >= 0)
                        diag_table_set(ln, c, COL_CPU, "%.1f", t->cpu_rate_pct);
                if (t)
                        diag_table_set(ln, c, COL_CPULIFE, "%.1f", t->cpu_life_pct);
                if (t && t->offcpu_ms >= 0)
                        diag_table_set(ln, c, COL_BLOCKED, "%s", diag_format_duration((uint64_t) t->offcpu_ms, dur, sizeof dur));
                diag_table_set(ln, c, COL_SYSCALL, "%s", syscall_text(rp, v, buf, sizeof buf));
                if (fdname_of(rp, v))
                        diag_table_set(ln, c, COL_FILE, "%s", diag_fdname_format(fdname_of(rp, v), buf, sizeof buf));
                if (t && t->wchan[0])
                        diag_table_set(ln, c, COL_WCHAN, "%s", t->wchan);
                if (v->stack.n) {
                        const struct diag_frame *f = &v->stack.frames[0];
                        diag_table_set(ln, c, COL_FUNC, "%s", f->func ? f->func : "??");
                }
                if (diag_columns_pos(c, COL_FRAMES) >= 0) {
                        struct kcell cell = {};
                        for (size_t k = 0; k < v->stack.n; k++) {
                                const struct diag_frame *f = &v->stack.frames[k];
                                emit_kcell(f->func ? f->func : "??", strlen(f->func ? f->func : "??"), &cell);
                        }
                        diag_table_set(ln, c, COL_FRAMES, "%s", cell.buf ? cell.buf : "");
                        free(cell.buf);
                }
                if (t && t->kstack && diag_columns_pos(c, COL_KSTACK) >= 0) {
                        struct kcell cell = {};
                        kstack_lines(t->kstack, emit_kcell, &cell);
                        diag_table_set(ln, c, COL_KSTACK, "%s", cell.buf ? cell.buf : "");
                        free(cell.buf);
                }
                if (rp->stopped)
                        diag_table_set(ln, c, COL_GROUP, "%d", v->group + 1);
        }
}

/* ---- main ---- */

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options] PID|TID...\n"
               "\n"
               "Show every thread of a process: its state, system call, wait channel, how long\n"
               "it has been blocked, its kernel stack and its user stack. The threads are\n"
               "stopped together for the instant it takes to copy their registers and stacks;\n"
               "unwinding and symbols come after they run again.\n"
               "\n"
               "Options:\n"
               " -t, --tid LIST           only these threads (comma-separated tids)\n"
               "     --frames N           at most N frames per thread (default %2$d)\n"
               "     --no-kernel          do not read kernel stacks\n"
               "     --no-group           one entry per thread, even when stacks are the same\n"
               "     --no-inline          do not expand inlined functions\n"
               "     --source             print the source line under each frame\n"
               "     --no-python          no CPython frames (read from the interpreter's memory)\n"
               "     --no-stop            never stop the target: /proc data only, no user stacks\n"
               "     --stack-size SIZE    stack bytes copied per thread (default 256K)\n"
               "     --timeout TIME       give up after TIME (default 30s; e.g. 5s, 1m)\n"
               "     --cpu-window TIME    measure the CPU rate over TIME before the stop\n"
               "                            (default 100ms; 0: show only the lifetime average)\n",
               diag_progname(), DEFAULT_FRAMES);
        diag_outopts_help(stdout);
        printf(" -v, --verbose            also list modules without debuginfo, unwinding stops\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Table columns (-o; the default output is a report, -o selects a table):\n");
        diag_columns_list(stdout, columns, ELEMENTSOF(columns), false);
        printf("\n"
               "Exit status: 0 all shown, 1 nothing could be shown (with -J also an error\n"
               "object on stdout), 2 bad usage,\n"
               "4 shown, but user stacks are missing for some threads (said on stderr).\n"
               "\n"
               "Examples:\n"
               " %1$s 1234                   every thread of process 1234\n"
               " %1$s -t 1240 1234           only thread 1240\n"
               " %1$s --no-stop 1234         what /proc knows, without stopping anything\n"
               " %1$s -o TID,STATE,SYSCALL,FUNC 1234\n"
               " %1$s -J 1234 | jq '.processes[0].groups[0]'\n"
               "\n"
               "See diag-stack(1).\n", diag_progname());
}

static int parse_tid_list(const char *s) {
        static size_t alloc;
        return diag_parse_pid_list(s, &arg.tids, &arg.ntids, &alloc);
}

enum { OPT_FRAMES = 0x100, OPT_NO_KERNEL, OPT_NO_GROUP, OPT_NO_INLINE, OPT_SOURCE, OPT_NO_STOP, OPT_STACK_SIZE,
       OPT_TIMEOUT, OPT_CPU_WINDOW, OPT_NO_PYTHON };

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                DIAG_OUT_LONGOPTS,
                { "tid",        required_argument, NULL, 't' },
                { "frames",     required_argument, NULL, OPT_FRAMES },
                { "no-kernel",  no_argument,       NULL, OPT_NO_KERNEL },
                { "no-group",   no_argument,       NULL, OPT_NO_GROUP },
                { "no-inline",  no_argument,       NULL, OPT_NO_INLINE },
                { "source",     no_argument,       NULL, OPT_SOURCE },
                { "no-stop",    no_argument,       NULL, OPT_NO_STOP },
                { "no-python",  no_argument,       NULL, OPT_NO_PYTHON },
                { "stack-size", required_argument, NULL, OPT_STACK_SIZE },
                { "timeout",    required_argument, NULL, OPT_TIMEOUT },
                { "cpu-window", required_argument, NULL, OPT_CPU_WINDOW },
                DIAG_STD_LONGOPTS,
                {}
        };
        const char *output = NULL;
        bool output_all = false, list_columns = false;
        struct diag_target *targets = NULL;
        size_t npids = 0, pidalloc = 0;
        char *fail_msg = NULL;
        const char *fail_reason = NULL;
        pid_t fail_pid = 0;
        json_object *doc = NULL, *procs = NULL;
        struct libscols_table *tb = NULL;
        unsigned need;
        int c, worst = DIAG_EXIT_OK, shown = 0, r;
        _cleanup_free_ char *bad = NULL;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();     /* getopt's messages name the tool, not its path */
        while ((c = getopt_long(argc, argv, DIAG_OUT_SHORTOPTS "t:" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                long long v;
                uint64_t sz;

                if (diag_common_option(c, optarg, &arg.out, &output, &output_all, &list_columns, usage, &r)) {
                        if (r >= 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 't':
                        if (parse_tid_list(optarg) < 0)
                                return diag_usage_error("invalid thread list: '%s'", optarg);
                        break;
                case OPT_FRAMES:
                        if (diag_parse_ll(optarg, 10, 1, 100000, &v) < 0)
                                return diag_usage_error("invalid frame count: '%s'", optarg);
                        arg.frames = (size_t) v;
                        break;
                case OPT_NO_KERNEL: arg.kernel = false; break;
                case OPT_NO_GROUP: arg.group = false; break;
                case OPT_NO_INLINE: arg.inlines = false; break;
                case OPT_SOURCE: arg.source = true; break;
                case OPT_NO_STOP: arg.stop = false; break;
                case OPT_NO_PYTHON: arg.python = false; break;
                case OPT_STACK_SIZE:
                        if (diag_parse_size(optarg, &sz) < 0 || sz < 4096 || sz > (1ULL << 30))
                                return diag_usage_error("invalid stack size: '%s' (4K to 1G)", optarg);
                        arg.stack_size = sz;
                        break;
                case OPT_TIMEOUT:
                        if (diag_parse_duration_ms(optarg, &sz) < 0 || sz < 1000 || sz > 3600000)
                                return diag_usage_error("invalid timeout: '%s' (1s to 1h)", optarg);
                        arg.timeout_s = (unsigned) (sz / 1000);
                        break;
                case OPT_CPU_WINDOW:
                        if (diag_parse_duration_ms(optarg, &sz) < 0 || sz > 10000)
                                return diag_usage_error("invalid CPU window: '%s' (0 to 10s)", optarg);
                        arg.cpu_window_ms = (unsigned) sz;
                        break;
                default:
                        return diag_usage_error("unexpected option");
                }
        }
        if (list_columns) {
                diag_columns_list(stdout, columns, ELEMENTSOF(columns), arg.out.json);
                return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : 0;
        }
        arg.table = output || output_all || arg.out.raw || arg.out.noheadings;
        if (arg.table) {
                r = diag_columns_select(&arg.cols, columns, ELEMENTSOF(columns), default_columns,
                                        ELEMENTSOF(default_columns), "DIAG_STACK_COLUMNS", output, output_all, &bad);
                if (r < 0)
                        return diag_usage_error("unknown column: '%s'", bad ? bad : "?");
                need = diag_columns_need(&arg.cols) | NEED_SYSCALL;
        } else
                need = NEED_STACK | NEED_KSTACK | NEED_WCHAN | NEED_SCHED | NEED_SYSCALL | NEED_CPURATE;
        if (!arg.stop)
                need &= ~(unsigned) NEED_STACK;
        if (optind >= argc)
                return diag_usage_error("%s", "no process given");

        /* PID or TID: a tid names its process, restricted to that thread. */
        for (int i = optind; i < argc; i++) {
                pid_t id;
                if (diag_parse_pid(argv[i], &id) < 0)
                        return diag_usage_error("invalid process id: '%s'", argv[i]);
                if (DIAG_GROW(targets, pidalloc, npids + 1) < 0)
                        return log_error_errno(-ENOMEM, "out of memory"), DIAG_EXIT_FAILURE;
                diag_target_resolve(id, &targets[npids]);
                if (targets[npids].tid) {
                        char s[16];
                        snprintf(s, sizeof s, "%d", targets[npids].tid);
                        if (parse_tid_list(s) < 0)
                                return log_error_errno(-ENOMEM, "out of memory"), DIAG_EXIT_FAILURE;
                }
                npids++;
        }

        diag_watchdog_arm(arg.timeout_s);
        if (arg.out.json && !arg.table) {
                doc = json_object_new_object();
                procs = json_object_new_array();
                json_object_object_add(doc, "schema", json_object_new_string("diag-stack/2"));
                json_object_object_add(doc, "processes", procs);
        }
        if (arg.table && !(tb = diag_table_new(&arg.cols, &arg.out, "threads")))
                return log_error_errno(-ENOMEM, "failed to set up the table"), DIAG_EXIT_FAILURE;

        for (size_t i = 0; i < npids; i++) {
                struct report rp = {};

                r = collect(&targets[i], need, &rp);
                if (r < 0) {
                        worst = MAX(worst, DIAG_EXIT_FAILURE);
                        if (doc) {
                                /* this target's entry says why, in the same words */
                                json_object *o = json_object_new_object(), *e = json_object_new_object();
                                json_object_object_add(o, "pid", json_object_new_int(targets[i].tid ? targets[i].tid
                                                                                                   : targets[i].pid));
                                json_object_object_add(e, "message", diag_json_str(rp.err_msg));
                                json_object_object_add(e, "reason", diag_json_str(rp.err_reason));
                                json_object_object_add(o, "error", e);
                                json_object_array_add(procs, o);
                        }
                        if (!fail_msg) {
                                fail_msg = TAKE_PTR(rp.err_msg);
                                fail_reason = rp.err_reason;
                                fail_pid = targets[i].tid ? targets[i].tid : targets[i].pid;
                        }
                        report_free(&rp);
                        continue;
                }
                shown++;
                for (size_t k = 0; k < rp.nnotes; k++)
                        fprintf(stderr, "%s: pid %d: %s\n", diag_progname(), rp.pid, rp.notes[k]);
                if (rp.exit == DIAG_EXIT_PARTIAL && worst == DIAG_EXIT_OK)
                        worst = DIAG_EXIT_PARTIAL;
                if (tb && clocks_reset(&rp))
                        fprintf(stderr, "%s: pid %d: the stop reset the kernel's blocked-for clock of %zu thread%s: "
                                "later readings will show short times\n", diag_progname(), rp.pid, clocks_reset(&rp),
                                clocks_reset(&rp) == 1 ? "" : "s");
                if (tb)
                        table_rows(tb, &rp);
                else if (doc)
                        json_object_array_add(procs, json_report(&rp));
                else {
                        if (i > 0)
                                putchar('\n');
                        render_text(&rp);
                }
                report_free(&rp);
        }
        if (tb) {
                if (shown && diag_table_print(tb) < 0)
                        worst = DIAG_EXIT_FAILURE;
                scols_unref_table(tb);
        }
        if (doc) {
                if (shown && diag_json_print(stdout, doc) < 0)
                        worst = DIAG_EXIT_FAILURE;
                json_object_put(doc);
        }
        /* -J and nothing shown: the error object, so that a script reads why */
        if (arg.out.json && !shown && fail_msg)
                (void) diag_json_error(stdout, fail_msg, fail_reason, fail_pid, DIAG_EXIT_FAILURE);
        free(fail_msg);
        free(targets);
        free(arg.tids);
        if (diag_close_stdout() < 0)
                return DIAG_EXIT_FAILURE;
        /* Some shown and some not: partial. */
        if (worst == DIAG_EXIT_FAILURE && shown)
                return DIAG_EXIT_PARTIAL;
        return worst;
}
