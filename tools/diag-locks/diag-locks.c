/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-locks: who waits for which lock, who holds it, and what the holder is
 * doing — futexes (mutexes, rwlocks, condition variables, semaphores) and file
 * locks (flock, POSIX, OFD), across processes, with every deadlock cycle named.
 * Nothing is stopped unless --stacks asks for the owners' full stacks.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "diag/chain.h"
#include "diag/futex.h"
#include "diag/log.h"
#include "diag/out.h"
#include "diag/proc.h"
#include "diag/ptrace.h"
#include "diag/scan.h"
#include "diag/syscall.h"
#include "diag/target.h"
#include "diag/unwind.h"
#include "diag/util.h"

#define DIAG_EXIT_DEADLOCK 3
#define STACK_FRAMES 6

enum { COL_TYPE, COL_LOCK, COL_PID, COL_TID, COL_COMM, COL_BLOCKED, COL_WAITS, COL_OWNER,
       COL_OWNER_COMM, COL_OWNER_STATE, COL_OWNER_SYSCALL, COL_CONFIDENCE, COL_EVIDENCE, COL_WHERE };

static const struct diag_column columns[] = {
        [COL_TYPE]          = { "TYPE", 8, 0, DIAG_COL_STRING, 0, "mutex, rwlock, condition variable, FLOCK, POSIX, OFDLCK ..." },
        [COL_LOCK]          = { "LOCK", 0.2, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "the lock: symbol, module+offset, memory kind or file path" },
        [COL_PID]           = { "PID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "waiter's process" },
        [COL_TID]           = { "TID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "waiting thread" },
        [COL_COMM]          = { "COMM", 10, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "waiting thread's name" },
        [COL_BLOCKED]       = { "BLOCKED", 6, SCOLS_FL_RIGHT, DIAG_COL_STRING, 0, "how long the waiter has been blocked" },
        [COL_WAITS]         = { "WAITS", 6, 0, DIAG_COL_STRING, 0, "what the waiter asks: lock, read, write, signal, post ..." },
        [COL_OWNER]         = { "OWNER", 5, SCOLS_FL_RIGHT, DIAG_COL_STRING, 0, "owner thread (futex) or holder process (file lock)" },
        [COL_OWNER_COMM]    = { "OWNER_COMM", 10, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "owner's name" },
        [COL_OWNER_STATE]   = { "OWNER_STATE", 1, 0, DIAG_COL_STRING, 0, "owner's scheduler state" },
        [COL_OWNER_SYSCALL] = { "OWNER_SYSCALL", 0.25, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "what the owner is doing now" },
        [COL_CONFIDENCE]    = { "CONFIDENCE", 7, 0, DIAG_COL_STRING, 0, "certain, likely, guess or none" },
        [COL_EVIDENCE]      = { "EVIDENCE", 0.3, SCOLS_FL_WRAP, DIAG_COL_STRING, 0, "how the owner and kind were inferred" },
        [COL_WHERE]         = { "WHERE", 0.2, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "the waiter's calling function outside libc" },
};

static const int default_columns[] = { COL_TYPE, COL_LOCK, COL_PID, COL_TID, COL_COMM, COL_BLOCKED, COL_OWNER,
                                       COL_OWNER_STATE, COL_OWNER_SYSCALL };

static struct {
        pid_t *pids;
        size_t npids;
        bool cycles_only, all, stacks, table;
        struct diag_outopts out;
        struct diag_columns cols;
} arg;

/* A -p target that could not be read, for -J. */
struct target_error {
        pid_t pid;
        int err;
        struct diag_target target;
};

/* ---- file locks joined with their fds ---- */

struct flock_waiter {
        pid_t pid, tid;                 /* tid 0 if no thread was seen blocked on it */
        char comm[17];
        int64_t blocked_ms;
        const struct diag_filelock *entry;      /* its /proc/locks line; inferred: the holder's */
        bool inferred;                  /* not in /proc/locks: a sleeper likely retrying (diag_lock_guess_wait) */
        char *evidence;                 /* inferred: why */
};

struct flock_group {
        const struct diag_filelock *holder;
        struct diag_lock_holders holders;       /* the live processes holding it */
        pid_t holder_pid;               /* the first of them; 0 unknown */
        int holder_fd;
        char holder_comm[17];
        const char *path;               /* a holder's or waiter's fd link */
        struct flock_waiter *waiters;
        size_t nwaiters;
};

struct state {
        struct diag_futex_scan *fx;
        size_t ngroups_alloc;
        struct diag_scan *scan;
        struct flock_group *groups;
        size_t ngroups;
        struct diag_waitgraph graph;
        json_object *deadlocks;         /* JSON array: proven cycles */
        json_object *possible;          /* JSON array: cycles through an inferred wait */
        size_t ndeadlocks;              /* both kinds, in deadlock_text */
        size_t nproven;
        char **deadlock_text;
};

static bool pid_selected(pid_t pid) {
        if (!arg.pids)
                return true;
        for (size_t i = 0; i < arg.npids; i++)
                if (arg.pids[i] == pid)
                        return true;
        return false;
}

struct holder_find {
        pid_t pid;
        int fd;
        const char *path;
        struct diag_scan *scan;
        const struct flock_group *taken;        /* waiters already placed: skip their pids */
};

static void holder_fd_found(size_t p, size_t f, const struct diag_filelock *l, void *ud) {
        struct holder_find *h = ud;
        const struct diag_scan_proc *pr = &h->scan->procs[p];

        if (h->pid)
                return;
        /* identical OFD waiter lines: each goes to a process not yet placed */
        for (size_t k = 0; h->taken && k < h->taken->nwaiters; k++)
                if (h->taken->waiters[k].pid == pr->pid && h->taken->waiters[k].entry->pid <= 0)
                        return;
        h->pid = pr->pid;
        h->fd = pr->fdt->fds[f].fd;
        h->path = pr->fdt->fds[f].link;
}

/* The thread of pid blocked in flock/fcntl lock on a file: the waiter in person. */
static pid_t blocked_lock_thread(pid_t pid, struct diag_scan *scan, const struct diag_filelock *l) {
        const struct diag_scan_proc *p = diag_scan_find(scan, pid);
        pid_t tid;

        for (size_t k = 0; p && p->fdt && k < p->fdt->n; k++)
                if (p->fdt->fds[k].inode == l->inode &&
                    (tid = diag_proc_thread_on_fd(pid, p->fdt->fds[k].fd, true)))
                        return tid;
        return 0;
}

/* Add p to the list unless it is there. */
static int pid_add(pid_t **pids, size_t *alloc, size_t *n, pid_t p) {
        for (size_t k = 0; k < *n; k++)
                if ((*pids)[k] == p)
                        return 0;
        if (DIAG_GROW(*pids, *alloc, *n + 1) < 0)
                return -ENOMEM;
        (*pids)[(*n)++] = p;
        return 0;
}

/* The fds needed to name locked files, find their holders and the sleepers that
 * likely wait for them: the processes /proc/locks names, the ones with a thread
 * asleep (from the futex scan) and the ones given with -p; every process when an
 * OFD lock (pid -1) or a lock whose locker exited must be found in the fds of
 * others; nothing at all when there is no file lock. */
static int scan_for_filelocks(const struct diag_futex_scan *fx, struct diag_scan **ret) {
        static const pid_t nobody;
        _cleanup_(diag_locktab_freep) struct diag_locktab *t = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0, alloc = 0;
        bool everyone = false;
        int r = diag_locks_read(&t);

        if (r < 0)
                return r;
        if (!t->n)      /* (a NULL list would mean every process) */
                return diag_scan_run(&nobody, 0, DIAG_SCAN_LOCKS, ret);
        for (size_t i = 0; i < t->n && !everyone; i++) {
                char st = '?';
                everyone = t->locks[i].pid <= 0 || diag_task_read_state(t->locks[i].pid, t->locks[i].pid, &st) < 0 ||
                           st == 'Z' || st == 'X';
                if (!everyone && pid_add(&pids, &alloc, &n, t->locks[i].pid) < 0)
                        return -ENOMEM;
        }
        if (everyone)
                return diag_scan_run(NULL, 0, DIAG_SCAN_STATX | DIAG_SCAN_INDEX | DIAG_SCAN_LOCKS, ret);
        for (size_t i = 0; i < arg.npids; i++)
                if (pid_add(&pids, &alloc, &n, arg.pids[i]) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < fx->nsleepers; i++)
                if (pid_add(&pids, &alloc, &n, fx->sleepers[i].pid) < 0)
                        return -ENOMEM;
        return diag_scan_run(pids, n, DIAG_SCAN_STATX | DIAG_SCAN_INDEX | DIAG_SCAN_LOCKS, ret);
}

static void group_done(struct flock_group *g) {
        for (size_t k = 0; k < g->nwaiters; k++)
                free(g->waiters[k].evidence);
        free(g->waiters);
}

/* A new group for the held lock h, its live holders found. */
static struct flock_group *group_new(struct state *st, size_t *alloc, const struct diag_filelock *h) {
        struct flock_group *g;

        if (DIAG_GROW(st->groups, *alloc, st->ngroups + 1) < 0)
                return NULL;
        g = &st->groups[st->ngroups++];
        memset(g, 0, sizeof *g);
        g->holder = h;
        g->holder_fd = -1;
        (void) diag_lock_holders_find(st->scan, h, &g->holders);
        if (g->holders.n) {
                g->holder_pid = g->holders.h[0].pid;
                g->holder_fd = g->holders.h[0].fd;
                g->path = g->holders.h[0].path;
                snprintf(g->holder_comm, sizeof g->holder_comm, "%s", g->holders.h[0].comm);
        }
        return g;
}

static int collect_filelocks(struct state *st, size_t *alloc) {
        const struct diag_locktab *t = st->scan->locks;

        for (size_t i = 0; t && i < t->n; i++) {
                const struct diag_filelock *h = &t->locks[i];
                struct flock_group *g;
                bool has_waiters = i + 1 < t->n && t->locks[i + 1].waiter;

                if (h->waiter || (!has_waiters && !arg.all))
                        continue;
                g = group_new(st, alloc, h);
                if (!g)
                        return -ENOMEM;
                for (size_t k = i + 1; k < t->n && t->locks[k].waiter; k++) {
                        const struct diag_filelock *w = &t->locks[k];
                        struct holder_find wf = { .scan = st->scan, .taken = g };
                        struct flock_waiter *fw;
                        struct flock_waiter *nw = realloc(g->waiters, (g->nwaiters + 1) * sizeof *nw);

                        if (!nw)
                                return -ENOMEM;
                        g->waiters = nw;
                        fw = &g->waiters[g->nwaiters];
                        memset(fw, 0, sizeof *fw);
                        if (w->pid > 0)
                                fw->pid = w->pid;
                        else {
                                diag_scan_lock_fds(st->scan, w, holder_fd_found, &wf);
                                fw->pid = wf.pid;
                        }
                        fw->entry = w;
                        fw->blocked_ms = -1;
                        g->nwaiters++;
                        if (!g->path && wf.path)
                                g->path = wf.path;
                        if (fw->pid) {
                                (void) diag_proc_read_comm(fw->pid, fw->comm, sizeof fw->comm);
                                fw->tid = blocked_lock_thread(fw->pid, st->scan, w);
                                if (fw->tid)
                                        (void) diag_task_read_offcpu_ms(fw->pid, fw->tid, &fw->blocked_ms);
                        }
                }
        }
        return 0;
}

/* The sleeping threads the futex scan saw (the processes given, or all) whose
 * process has a locked file open: the likely waits of retry loops, added to
 * their lock's group as inferred waiters. */
static int collect_guesses(struct state *st, size_t *alloc) {
        for (size_t i = 0; st->scan->locks && st->scan->locks->n && i < st->fx->nsleepers; i++) {
                const struct diag_futex_sleeper *sl = &st->fx->sleepers[i];
                struct diag_lock_guess gs;
                struct flock_group *g = NULL;
                struct flock_waiter *fw;
                char text[1024];

                if (sl->pid == getpid() || diag_lock_guess_wait(st->scan, sl->pid, sl->tid, sl->call, &gs) <= 0)
                        continue;
                for (size_t m = 0; m < st->ngroups && !g; m++)
                        if (st->groups[m].holder == gs.lock)
                                g = &st->groups[m];
                if (!g && !(g = group_new(st, alloc, gs.lock)))
                        return -ENOMEM;
                if (!g->path)
                        g->path = gs.path;
                fw = realloc(g->waiters, (g->nwaiters + 1) * sizeof *fw);
                if (!fw)
                        return -ENOMEM;
                g->waiters = fw;
                fw = &g->waiters[g->nwaiters++];
                /* blocked_ms stays unknown: the sleep is one of many tries */
                *fw = (struct flock_waiter) { .pid = sl->pid, .tid = sl->tid, .blocked_ms = -1, .entry = gs.lock,
                                              .inferred = true,
                                              .evidence = strdup(diag_lock_guess_format(&gs, text, sizeof text)) };
                snprintf(fw->comm, sizeof fw->comm, "%s", gs.comm);
        }
        return 0;
}

/* ---- the wait-for graph and its cycles ---- */

static void lock_label(const struct diag_futex_lock *l, char *buf, size_t size) {
        snprintf(buf, size, "%s %s", diag_futex_kind_name(l->kind), l->name ? l->name : "?");
}

static void flock_label(const struct flock_group *g, char *buf, size_t size) {
        snprintf(buf, size, "%s %s %s", diag_lock_kind_name(g->holder->kind), diag_lock_mode_name(g->holder->mode),
                 g->path ? g->path : "?");
}

static int build_graph(struct state *st) {
        char label[512];

        for (size_t i = 0; i < st->fx->n; i++) {
                const struct diag_futex_lock *l = &st->fx->locks[i];
                if (!l->owner_tid || l->owner_gone)
                        continue;
                lock_label(l, label, sizeof label);
                for (size_t k = 0; k < l->nwaiters; k++) {
                        struct diag_wait_edge e = {
                                .from_pid = l->waiters[k].pid, .from_tid = l->waiters[k].tid,
                                .to_pid = l->owner_pid, .to_tid = l->owner_tid,
                                .kind = DIAG_WAIT_FUTEX, .resource = label, .data = l,
                        };
                        if (diag_waitgraph_add(&st->graph, &e) < 0)
                                return -ENOMEM;
                }
        }
        for (size_t i = 0; i < st->ngroups; i++) {
                const struct flock_group *g = &st->groups[i];
                if (!g->holder_pid)
                        continue;
                flock_label(g, label, sizeof label);
                for (size_t k = 0; k < g->nwaiters; k++) {
                        const struct flock_waiter *w = &g->waiters[k];
                        struct diag_wait_edge e = {
                                .from_pid = w->pid, .from_tid = w->tid ? w->tid : w->pid,
                                .to_pid = g->holder_pid, .to_tid = 0,
                                .kind = DIAG_WAIT_FILELOCK, .resource = label, .data = w,
                        };
                        if (!w->pid || diag_waitgraph_add(&st->graph, &e) < 0)
                                continue;
                }
        }
        return 0;
}

static bool edge_inferred(const struct diag_wait_edge *e) {
        return e->kind == DIAG_WAIT_FILELOCK && ((const struct flock_waiter *) e->data)->inferred;
}

static void on_cycle(const struct diag_waitgraph *g, const size_t *edges, size_t n, void *ud) {
        struct state *st = ud;
        json_object *c = json_object_new_array();
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        bool possible = false;

        if (!f) {
                json_object_put(c);
                return;
        }
        /* a cycle through an inferred wait is not proven: a possible deadlock */
        for (size_t i = 0; i < n; i++)
                possible = possible || edge_inferred(&g->edges[edges[i]]);
        fprintf(f, "%s", possible ? "POSSIBLE DEADLOCK (through an inferred lock wait, not proven):" : "DEADLOCK:");
        for (size_t i = 0; i < n; i++) {
                const struct diag_wait_edge *e = &g->edges[edges[i]];
                const struct diag_wait_edge *prev = &g->edges[edges[(i + n - 1) % n]];
                json_object *o = json_object_new_object();

                /* what this thread holds is what the previous one waits for */
                fprintf(f, "%s tid %d (pid %d) holds %s, waits for %s", i ? ";" : "", e->from_tid, e->from_pid,
                        prev->resource, e->resource);
                json_object_object_add(o, "pid", json_object_new_int(e->from_pid));
                json_object_object_add(o, "tid", json_object_new_int(e->from_tid));
                json_object_object_add(o, "holds", json_object_new_string(prev->resource));
                json_object_object_add(o, "waits_for", json_object_new_string(e->resource));
                json_object_object_add(o, "inferred", json_object_new_boolean(edge_inferred(e)));
                json_object_array_add(c, o);
        }
        fclose(f);
        json_object_array_add(possible ? st->possible : st->deadlocks, c);
        {
                char **nt = realloc(st->deadlock_text, (st->ndeadlocks + 1) * sizeof *nt);
                if (nt) {
                        st->deadlock_text = nt;
                        st->deadlock_text[st->ndeadlocks++] = text;
                        if (!possible)
                                st->nproven++;
                        return;
                }
        }
        free(text);
}

/* ---- owners: what are they doing ---- */

struct who {
        char comm[17];
        char state;
        char syscall[256];
};

static void who_is(pid_t pid, pid_t tid, struct who *w) {
        struct diag_syscall_state sc;

        memset(w, 0, sizeof *w);
        w->state = '?';
        (void) diag_proc_read_comm(tid ? tid : pid, w->comm, sizeof w->comm);
        (void) diag_task_read_state(pid, tid ? tid : pid, &w->state);
        if (diag_task_read_syscall(pid, tid ? tid : pid, &sc) == 0)
                diag_syscall_format(diag_arch_native(), &sc, w->syscall, sizeof w->syscall);
        else
                snprintf(w->syscall, sizeof w->syscall, "?");
}

/* The first frame outside libc and the dynamic loader: where the program is. */
static const struct diag_peek_frame *program_frame(const struct diag_futex_waiter *w) {
        for (size_t i = 0; i < w->nframes; i++) {
                const char *m = w->frames[i].module;
                if (w->frames[i].func && m && !strstr(m, "/libc.so") && !strstr(m, "/libpthread") && !strstr(m, "/ld-linux"))
                        return &w->frames[i];
        }
        return NULL;
}

static const char *waits_for(const struct diag_futex_lock *l, const struct diag_futex_waiter *w) {
        switch (l->kind) {
        case DIAG_FUTEX_RWLOCK: return w->rw_writer ? "write" : "read";
        case DIAG_FUTEX_CONDVAR: return "signal";
        case DIAG_FUTEX_SEMAPHORE: return "post";
        case DIAG_FUTEX_BARRIER: return "others";
        case DIAG_FUTEX_JOIN: return "exit";
        case DIAG_FUTEX_UNKNOWN: case DIAG_FUTEX_RAW: return "wake-up";
        default: return "lock";
        }
}

/* Locks with someone to blame: an owner, or an owner that should be there. */
static bool ownable(const struct diag_futex_lock *l) {
        return l->kind == DIAG_FUTEX_MUTEX || l->kind == DIAG_FUTEX_MUTEX_ROBUST || l->kind == DIAG_FUTEX_MUTEX_PI ||
               l->kind == DIAG_FUTEX_RWLOCK || l->kind == DIAG_FUTEX_LIBC_LOCK || l->owner_tid;
}

static int64_t longest_wait(const struct diag_futex_lock *l) {
        int64_t m = -1;
        for (size_t k = 0; k < l->nwaiters; k++)
                m = MAX(m, l->waiters[k].blocked_ms);
        return m;
}

/* Ownable locks first, then by the longest wait. */
static int cmp_lock(const void *a, const void *b) {
        const struct diag_futex_lock *x = a, *y = b;
        int64_t wx = longest_wait(x), wy = longest_wait(y);
        if (ownable(x) != ownable(y))
                return ownable(x) ? -1 : 1;
        return (wx < wy) - (wx > wy);
}

/* ---- --stacks: the owners' stacks, with a short stop ---- */

static void print_stack(FILE *f, pid_t pid, pid_t tid, const char *indent) {
        char **lines = NULL;

        if (diag_unwind_thread_lines(pid, tid, STACK_FRAMES, &lines) < 0) {
                fprintf(f, "%s(stack not captured)\n", indent);
                return;
        }
        for (size_t i = 0; lines[i]; i++)
                fprintf(f, "%s#%zu %s\n", indent, i, lines[i]);
        diag_strv_free(lines);
}

/* ---- rendering ---- */

/* Waits with no owner by design: pool threads idle on a condition variable,
 * a semaphore or a barrier. Folded into one line unless -v or --all. */
static bool idle_wait(const struct diag_futex_lock *l) {
        return !l->owner_tid && (l->kind == DIAG_FUTEX_CONDVAR || l->kind == DIAG_FUTEX_SEMAPHORE ||
                                 l->kind == DIAG_FUTEX_BARRIER);
}

static bool folded(const struct diag_futex_lock *l) {
        return idle_wait(l) && !arg.all && !diag_log_verbose;
}

/* "5 threads idle on condition variables, 1 on a semaphore" */
static bool print_idle_summary(const struct state *st) {
        static const struct { enum diag_futex_kind kind; const char *one, *many; } kinds[] = {
                { DIAG_FUTEX_CONDVAR, "a condition variable", "condition variables" },
                { DIAG_FUTEX_SEMAPHORE, "a semaphore", "semaphores" },
                { DIAG_FUTEX_BARRIER, "a barrier", "barriers" },
        };
        bool any = false;

        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                size_t nthreads = 0, nlocks = 0;
                for (size_t i = 0; i < st->fx->n; i++)
                        if (folded(&st->fx->locks[i]) && st->fx->locks[i].kind == kinds[k].kind) {
                                nthreads += st->fx->locks[i].nwaiters;
                                nlocks++;
                        }
                if (!nlocks)
                        continue;
                printf("%s%zu%s on %s", any ? ", " : "", nthreads, any ? "" : nthreads == 1 ? " thread idle" : " threads idle",
                       nlocks == 1 ? kinds[k].one : kinds[k].many);
                any = true;
        }
        if (any)
                printf(" (no owner by design; -v lists them)\n");
        return any;
}

static void text_futex(const struct diag_futex_lock *l) {
        char dur[DIAG_DURATION_MAX], label[512];
        struct diag_tree *root;
        struct who ow;

        lock_label(l, label, sizeof label);
        if (!ownable(l) && !arg.all) {
                /* nobody to blame: one line, unless --all */
                printf("%s in pid %d — %s, %zu waiter%s (tid", label, l->pid,
                       l->kind == DIAG_FUTEX_UNKNOWN ? "owner unknown" : "no owner", l->nwaiters,
                       l->nwaiters == 1 ? "" : "s");
                for (size_t k = 0; k < l->nwaiters && k < 8; k++)
                        printf(" %d", l->waiters[k].tid);
                printf("%s)\n", l->nwaiters > 8 ? " ..." : "");
                return;
        }
        if (l->owner_tid && !l->owner_gone) {
                who_is(l->owner_pid, l->owner_tid, &ow);
                root = diag_tree_new("%s in pid %d — owner tid %d \"%s\" %c, in %s", label, l->pid,
                                     l->owner_tid, ow.comm, ow.state, ow.syscall);
        } else if (l->owner_gone)
                root = diag_tree_new("%s in pid %d — owner tid %d is gone: it exited holding the lock", label,
                                     l->pid, l->owner_tid);
        else if (l->readers)
                root = diag_tree_new("%s in pid %d — held by %u reader%s", label, l->pid, l->readers,
                                     l->readers == 1 ? "" : "s");
        else
                root = diag_tree_new("%s in pid %d — %s", label, l->pid,
                                     l->kind == DIAG_FUTEX_CONDVAR || l->kind == DIAG_FUTEX_SEMAPHORE ||
                                     l->kind == DIAG_FUTEX_BARRIER ? "no owner" : "owner unknown");
        if (!root)
                return;
        diag_tree_add(root, "[%s] %s", diag_confidence_name(l->confidence), l->evidence ? l->evidence : "");
        for (size_t k = 0; k < l->nwaiters; k++) {
                const struct diag_futex_waiter *w = &l->waiters[k];
                const struct diag_peek_frame *pf = program_frame(w);
                diag_tree_add(root, "waiter tid %d \"%s\" (pid %d) waits for %s%s%s%s%s", w->tid, w->comm, w->pid,
                              waits_for(l, w), w->blocked_ms >= 0 ? ", blocked " : "",
                              w->blocked_ms >= 0 ? diag_format_duration((uint64_t) w->blocked_ms, dur, sizeof dur) : "",
                              pf ? ", in " : "", pf ? pf->func : "");
        }
        diag_tree_print(stdout, root, false);
        diag_tree_free(root);
        if (arg.stacks && l->owner_tid && !l->owner_gone) {
                printf("  owner %d's stack:\n", l->owner_tid);
                print_stack(stdout, l->owner_pid, l->owner_tid, "    ");
        }
}

static void render_text(struct state *st) {
        char dur[DIAG_DURATION_MAX], label[512], holders[256];
        size_t shown = 0;

        for (size_t i = 0; i < st->ndeadlocks; i++)
                printf("%s\n", st->deadlock_text[i]);
        if (arg.cycles_only)
                return;
        if (st->ndeadlocks)
                putchar('\n');
        /* locks with someone to blame first, then file locks, then the waits
         * nobody owns; idle waits last, folded */
        for (size_t i = 0; i < st->fx->n; i++)
                if ((ownable(&st->fx->locks[i]) || arg.all) && !folded(&st->fx->locks[i])) {
                        text_futex(&st->fx->locks[i]);
                        shown++;
                }
        for (size_t i = 0; i < st->ngroups; i++) {
                const struct flock_group *g = &st->groups[i];
                struct diag_tree *root;
                struct who ow;

                flock_label(g, label, sizeof label);
                if (g->holder_pid) {
                        who_is(g->holder_pid, 0, &ow);
                        root = diag_tree_new("%s — held by pid %d \"%s\" (fd %d), main thread %c in %s", label,
                                             g->holder_pid, g->holder_comm, g->holder_fd, ow.state, ow.syscall);
                } else if (g->holders.locker_exited)
                        root = diag_tree_new("%s — %s", label, diag_lock_holders_format(&g->holders, holders, sizeof holders));
                else
                        root = diag_tree_new("%s — holder unknown", label);
                if (!root)
                        continue;
                if (g->holder_pid && g->holders.locker_exited)
                        diag_tree_add(root, "held by %s; a flock or OFD lock belongs to the open file description, "
                                      "not to the process that took it",
                                      diag_lock_holders_format(&g->holders, holders, sizeof holders));
                for (size_t k = 0; k < g->nwaiters; k++) {
                        const struct flock_waiter *w = &g->waiters[k];
                        if (w->inferred) {
                                diag_tree_add(root, "[inferred] pid %d \"%s\" tid %d %s", w->pid, w->comm, w->tid,
                                              w->evidence ? w->evidence : "likely waits");
                                continue;
                        }
                        diag_tree_add(root, "waiter pid %d \"%s\"%s%.0d%s%s", w->pid, w->comm, w->tid ? " tid " : "",
                                      w->tid, w->blocked_ms >= 0 ? ", blocked " : "",
                                      w->blocked_ms >= 0 ? diag_format_duration((uint64_t) w->blocked_ms, dur, sizeof dur) : "");
                }
                diag_tree_print(stdout, root, false);
                diag_tree_free(root);
                shown++;
        }
        for (size_t i = 0; i < st->fx->n; i++)
                if (!ownable(&st->fx->locks[i]) && !arg.all && !folded(&st->fx->locks[i])) {
                        text_futex(&st->fx->locks[i]);
                        shown++;
                }
        if (print_idle_summary(st))
                shown++;
        if (!shown && !st->ndeadlocks)
                printf("No thread is waiting for a lock%s.\n", arg.pids ? " in the processes given" : "");
}

static json_object *json_futex(const struct diag_futex_lock *l) {
        json_object *o = json_object_new_object(), *ws = json_object_new_array();
        char buf[64];

        json_object_object_add(o, "kind", json_object_new_string(diag_futex_kind_name(l->kind)));
        json_object_object_add(o, "name", diag_json_str(l->name));
        json_object_object_add(o, "pid", json_object_new_int(l->pid));
        json_object_object_add(o, "address", diag_json_hex(l->base ? l->base : l->uaddr));
        json_object_object_add(o, "futex", diag_json_hex(l->uaddr));
        json_object_object_add(o, "shared", json_object_new_boolean(l->shared));
        if (l->shared) {
                snprintf(buf, sizeof buf, "%u:%u", l->dev_major, l->dev_minor);
                json_object_object_add(o, "dev", json_object_new_string(buf));
                json_object_object_add(o, "inode", json_object_new_int64((int64_t) l->inode));
                json_object_object_add(o, "offset", json_object_new_int64((int64_t) l->offset));
        }
        json_object_object_add(o, "word", json_object_new_int64(l->word));
        json_object_object_add(o, "owner_tid", l->owner_tid ? json_object_new_int(l->owner_tid) : NULL);
        json_object_object_add(o, "owner_pid", l->owner_pid ? json_object_new_int(l->owner_pid) : NULL);
        json_object_object_add(o, "owner_died", json_object_new_boolean(l->owner_died));
        json_object_object_add(o, "owner_gone", json_object_new_boolean(l->owner_gone));
        json_object_object_add(o, "readers", l->kind == DIAG_FUTEX_RWLOCK ? json_object_new_int((int) l->readers) : NULL);
        if (l->owner_tid && !l->owner_gone) {
                struct who ow;
                json_object *oo = json_object_new_object();
                who_is(l->owner_pid, l->owner_tid, &ow);
                snprintf(buf, sizeof buf, "%c", ow.state);
                json_object_object_add(oo, "comm", json_object_new_string(ow.comm));
                json_object_object_add(oo, "state", json_object_new_string(buf));
                json_object_object_add(oo, "syscall", json_object_new_string(ow.syscall));
                json_object_object_add(o, "owner", oo);
        } else
                json_object_object_add(o, "owner", NULL);
        json_object_object_add(o, "confidence", json_object_new_string(diag_confidence_name(l->confidence)));
        json_object_object_add(o, "evidence", diag_json_str(l->evidence));
        for (size_t k = 0; k < l->nwaiters; k++) {
                const struct diag_futex_waiter *w = &l->waiters[k];
                json_object *wo = json_object_new_object(), *fr = json_object_new_array();
                json_object_object_add(wo, "pid", json_object_new_int(w->pid));
                json_object_object_add(wo, "tid", json_object_new_int(w->tid));
                json_object_object_add(wo, "comm", json_object_new_string(w->comm));
                json_object_object_add(wo, "waits_for", json_object_new_string(waits_for(l, w)));
                json_object_object_add(wo, "blocked_ms", w->blocked_ms >= 0 ? json_object_new_int64(w->blocked_ms) : NULL);
                for (size_t i = 0; i < w->nframes; i++) {
                        json_object *f = json_object_new_object();
                        json_object_object_add(f, "pc", diag_json_hex(w->frames[i].pc));
                        json_object_object_add(f, "function", diag_json_str(w->frames[i].func));
                        json_object_object_add(f, "module", diag_json_str(w->frames[i].module));
                        json_object_array_add(fr, f);
                }
                json_object_object_add(wo, "frames", fr);
                json_object_array_add(ws, wo);
        }
        json_object_object_add(o, "waiters", ws);
        return o;
}

static json_object *json_flock(const struct flock_group *g) {
        json_object *o = json_object_new_object(), *ws = json_object_new_array(), *hs = json_object_new_array();
        const struct diag_filelock *h = g->holder;
        char buf[64];

        json_object_object_add(o, "kind", json_object_new_string(diag_lock_kind_name(h->kind)));
        json_object_object_add(o, "mode", json_object_new_string(diag_lock_mode_name(h->mode)));
        json_object_object_add(o, "path", diag_json_str(g->path));
        snprintf(buf, sizeof buf, "%u:%u", h->dev_major, h->dev_minor);
        json_object_object_add(o, "dev", json_object_new_string(buf));
        json_object_object_add(o, "inode", json_object_new_int64((int64_t) h->inode));
        json_object_object_add(o, "start", json_object_new_int64((int64_t) h->start));
        json_object_object_add(o, "end", h->end == UINT64_MAX ? NULL : json_object_new_int64((int64_t) h->end));
        json_object_object_add(o, "holder_pid", g->holder_pid ? json_object_new_int(g->holder_pid) : NULL);
        json_object_object_add(o, "holder_fd", g->holder_fd >= 0 ? json_object_new_int(g->holder_fd) : NULL);
        json_object_object_add(o, "holder_comm", g->holder_pid ? json_object_new_string(g->holder_comm) : NULL);
        json_object_object_add(o, "locker_pid", g->holders.locker > 0 ? json_object_new_int(g->holders.locker) : NULL);
        json_object_object_add(o, "locker_exited", json_object_new_boolean(g->holders.locker_exited));
        for (size_t k = 0; k < g->holders.n; k++) {
                json_object *ho = json_object_new_object();
                json_object_object_add(ho, "pid", json_object_new_int(g->holders.h[k].pid));
                json_object_object_add(ho, "fd", g->holders.h[k].fd >= 0 ? json_object_new_int(g->holders.h[k].fd) : NULL);
                json_object_object_add(ho, "comm", json_object_new_string(g->holders.h[k].comm));
                json_object_array_add(hs, ho);
        }
        json_object_object_add(o, "holders", hs);
        json_object_object_add(o, "holders_more", json_object_new_int((int) g->holders.more));
        for (size_t k = 0; k < g->nwaiters; k++) {
                const struct flock_waiter *w = &g->waiters[k];
                json_object *wo = json_object_new_object();
                json_object_object_add(wo, "pid", w->pid ? json_object_new_int(w->pid) : NULL);
                json_object_object_add(wo, "tid", w->tid ? json_object_new_int(w->tid) : NULL);
                json_object_object_add(wo, "comm", json_object_new_string(w->comm));
                json_object_object_add(wo, "inferred", json_object_new_boolean(w->inferred));
                json_object_object_add(wo, "evidence", diag_json_str(w->evidence));
                json_object_object_add(wo, "mode", w->inferred ? NULL : json_object_new_string(diag_lock_mode_name(w->entry->mode)));
                json_object_object_add(wo, "blocked_ms", w->blocked_ms >= 0 ? json_object_new_int64(w->blocked_ms) : NULL);
                json_object_array_add(ws, wo);
        }
        json_object_object_add(o, "waiters", ws);
        return o;
}

static int render_json(struct state *st, const struct target_error *errors, size_t nerrors) {
        json_object *doc = json_object_new_object(), *fx = json_object_new_array(), *fl = json_object_new_array();
        json_object *errs = json_object_new_array();
        char msg[512];
        int r;

        /* the -p targets that could not be read: one entry each */
        for (size_t i = 0; i < nerrors; i++) {
                json_object *o = json_object_new_object(), *e = json_object_new_object();
                json_object_object_add(e, "message", json_object_new_string(diag_target_message(
                        &errors[i].target, errors[i].err, "read the lock waits of", msg, sizeof msg)));
                json_object_object_add(e, "reason", diag_json_str(diag_target_reason(&errors[i].target, errors[i].err)));
                json_object_object_add(o, "pid", json_object_new_int(errors[i].pid));
                json_object_object_add(o, "error", e);
                json_object_array_add(errs, o);
        }

        json_object_object_add(doc, "schema", json_object_new_string("diag-locks/1"));
        json_object_object_add(doc, "errors", errs);
        json_object_object_add(doc, "deadlocks", json_object_get(st->deadlocks));
        json_object_object_add(doc, "possible_deadlocks", json_object_get(st->possible));
        for (size_t i = 0; i < st->fx->n && !arg.cycles_only; i++) {
                json_object *o = json_futex(&st->fx->locks[i]);
                json_object_object_add(o, "idle", json_object_new_boolean(idle_wait(&st->fx->locks[i])));
                json_object_array_add(fx, o);
        }
        for (size_t i = 0; i < st->ngroups && !arg.cycles_only; i++)
                json_object_array_add(fl, json_flock(&st->groups[i]));
        json_object_object_add(doc, "futex_locks", fx);
        json_object_object_add(doc, "file_locks", fl);
        json_object_object_add(doc, "threads_seen", json_object_new_int((int) st->fx->threads_seen));
        r = diag_json_print(stdout, doc);
        json_object_put(doc);
        return r;
}

static int render_table(struct state *st) {
        struct libscols_table *tb = diag_table_new(&arg.cols, &arg.out, "locks");
        const struct diag_columns *c = &arg.cols;
        char buf[512], dur[DIAG_DURATION_MAX];
        int r;

        if (!tb)
                return -ENOMEM;
        for (size_t i = 0; i < st->fx->n; i++) {
                const struct diag_futex_lock *l = &st->fx->locks[i];
                struct who ow = {};
                if (l->owner_tid && !l->owner_gone)
                        who_is(l->owner_pid, l->owner_tid, &ow);
                for (size_t k = 0; k < l->nwaiters; k++) {
                        const struct diag_futex_waiter *w = &l->waiters[k];
                        const struct diag_peek_frame *pf = program_frame(w);
                        struct libscols_line *ln = scols_table_new_line(tb, NULL);
                        if (!ln)
                                break;
                        diag_table_set(ln, c, COL_TYPE, "%s", diag_futex_kind_name(l->kind));
                        diag_table_set(ln, c, COL_LOCK, "%s", l->name ? l->name : "?");
                        diag_table_set(ln, c, COL_PID, "%d", w->pid);
                        diag_table_set(ln, c, COL_TID, "%d", w->tid);
                        diag_table_set(ln, c, COL_COMM, "%s", w->comm);
                        if (w->blocked_ms >= 0)
                                diag_table_set(ln, c, COL_BLOCKED, "%s", diag_format_duration((uint64_t) w->blocked_ms, dur, sizeof dur));
                        diag_table_set(ln, c, COL_WAITS, "%s", waits_for(l, w));
                        if (l->owner_tid)
                                diag_table_set(ln, c, COL_OWNER, "%d%s", l->owner_tid, l->owner_gone ? " (gone)" : "");
                        if (l->owner_tid && !l->owner_gone) {
                                diag_table_set(ln, c, COL_OWNER_COMM, "%s", ow.comm);
                                diag_table_set(ln, c, COL_OWNER_STATE, "%c", ow.state);
                                diag_table_set(ln, c, COL_OWNER_SYSCALL, "%s", ow.syscall);
                        }
                        diag_table_set(ln, c, COL_CONFIDENCE, "%s", diag_confidence_name(l->confidence));
                        diag_table_set(ln, c, COL_EVIDENCE, "%s", l->evidence ? l->evidence : "");
                        if (pf)
                                diag_table_set(ln, c, COL_WHERE, "%s", pf->func);
                }
        }
        for (size_t i = 0; i < st->ngroups; i++) {
                const struct flock_group *g = &st->groups[i];
                struct who ow = {};
                if (g->holder_pid)
                        who_is(g->holder_pid, 0, &ow);
                for (size_t k = 0; k < g->nwaiters; k++) {
                        const struct flock_waiter *w = &g->waiters[k];
                        struct libscols_line *ln = scols_table_new_line(tb, NULL);
                        if (!ln)
                                break;
                        diag_table_set(ln, c, COL_TYPE, "%s", diag_lock_kind_name(g->holder->kind));
                        diag_table_set(ln, c, COL_LOCK, "%s", g->path ? g->path : "?");
                        diag_table_set(ln, c, COL_PID, "%d", w->pid);
                        if (w->tid)
                                diag_table_set(ln, c, COL_TID, "%d", w->tid);
                        diag_table_set(ln, c, COL_COMM, "%s", w->comm);
                        if (w->blocked_ms >= 0)
                                diag_table_set(ln, c, COL_BLOCKED, "%s", diag_format_duration((uint64_t) w->blocked_ms, dur, sizeof dur));
                        diag_table_set(ln, c, COL_WAITS, "%s", w->inferred ? "?" : diag_lock_mode_name(w->entry->mode));
                        if (g->holder_pid) {
                                diag_table_set(ln, c, COL_OWNER, "%d", g->holder_pid);
                                diag_table_set(ln, c, COL_OWNER_COMM, "%s", g->holder_comm);
                                diag_table_set(ln, c, COL_OWNER_STATE, "%c", ow.state);
                                diag_table_set(ln, c, COL_OWNER_SYSCALL, "%s", ow.syscall);
                        }
                        diag_table_set(ln, c, COL_CONFIDENCE, "%s", w->inferred ? "likely" : "certain");
                        if (w->inferred)
                                snprintf(buf, sizeof buf, "inferred: %s", w->evidence ? w->evidence : "");
                        else if (g->holders.locker_exited)
                                snprintf(buf, sizeof buf, "from /proc/locks and fdinfo: the locker pid %d exited, the lock "
                                         "lives on in the open file description", g->holders.locker);
                        else
                                snprintf(buf, sizeof buf, "from /proc/locks%s", g->holder->pid < 0 ? " and fdinfo (OFD)" : "");
                        diag_table_set(ln, c, COL_EVIDENCE, "%s", buf);
                }
        }
        r = diag_table_print(tb);
        scols_unref_table(tb);
        return r;
}

/* ---- main ---- */

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options]\n"
               "\n"
               "Who is waiting for which lock, who holds it, and what the holder is doing:\n"
               "futexes (mutexes, rwlocks, condition variables, semaphores) and file locks\n"
               "(flock, POSIX, OFD), across processes, with deadlock cycles. A file lock whose\n"
               "locker exited is shown with the processes that still hold it; a thread sleeping\n"
               "in a retry loop on a locked file is shown as a likely waiter, marked inferred.\n"
               "Reads /proc and the locks' memory; stops nothing unless --stacks.\n"
               "\n"
               "Options:\n"
               " -p, --pid LIST           only locks with a waiter (or, for file locks, the\n"
               "                          holder) in these processes; a thread id names its process\n"
               "     --cycles-only        print only deadlocks (as text, or in -J)\n"
               " -a, --all                also file locks nobody waits for, and waits\n"
               "                          with no owner (condition variables...) in full\n"
               "     --stacks             the owners' stacks in the text output (stops each\n"
               "                          owner briefly)\n",
               diag_progname());
        diag_outopts_help(stdout);
        printf(" -v, --verbose            list idle waits (condition variables, semaphores,\n"
               "                          barriers) one line per lock instead of one summary\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\nColumns (-o):\n");
        diag_columns_list(stdout, columns, ELEMENTSOF(columns), false);
        printf("\n"
               "Exit status: 0 no deadlock, 1 failure (no process given could be looked at),\n"
               "2 bad usage, 3 a deadlock was found (a possible one, through an inferred wait,\n"
               "does not count), 4 some processes given could not be looked at.\n"
               "\n"
               "Examples:\n"
               " %1$s                        every lock someone waits for\n"
               " %1$s -p 1234 --stacks       waiters in 1234, with their owners' stacks\n"
               " %1$s --cycles-only          deadlocks only (cron: exit status 3)\n"
               " %1$s -o TYPE,LOCK,TID,OWNER,CONFIDENCE,EVIDENCE\n"
               "\n"
               "See diag-locks(1).\n", diag_progname());
}

enum { OPT_CYCLES = 0x100, OPT_STACKS };

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                DIAG_OUT_LONGOPTS,
                DIAG_STD_LONGOPTS,
                { "pid",         required_argument, NULL, 'p' },
                { "cycles-only", no_argument,       NULL, OPT_CYCLES },
                { "all",         no_argument,       NULL, 'a' },
                { "stacks",      no_argument,       NULL, OPT_STACKS },
                {}
        };
        const char *output = NULL;
        bool output_all = false, list_columns = false;
        _cleanup_free_ char *bad = NULL;
        struct state st = {};
        size_t pidalloc = 0, nerrors = 0, aerrors = 0;
        struct target_error *errors = NULL;
        int c, r, status = DIAG_EXIT_OK;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        while ((c = getopt_long(argc, argv, DIAG_OUT_SHORTOPTS "p:a" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                if (diag_common_option(c, optarg, &arg.out, &output, &output_all, &list_columns, usage, &r)) {
                        if (r >= 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'p':
                        if (diag_parse_pid_list(optarg, &arg.pids, &arg.npids, &pidalloc) < 0)
                                return diag_usage_error("invalid process list: '%s'", optarg);
                        break;
                case OPT_CYCLES: arg.cycles_only = true; break;
                case 'a': arg.all = true; break;
                case OPT_STACKS: arg.stacks = true; break;
                default:
                        return diag_usage_error("unexpected option");
                }
        }
        if (list_columns) {
                diag_columns_list(stdout, columns, ELEMENTSOF(columns), arg.out.json);
                return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : 0;
        }
        if (optind < argc)
                return diag_usage_error("unexpected argument: '%s'", argv[optind]);
        arg.table = (output || output_all || arg.out.raw || arg.out.noheadings) && !arg.cycles_only;
        if (arg.table) {
                r = diag_columns_select(&arg.cols, columns, ELEMENTSOF(columns), default_columns,
                                        ELEMENTSOF(default_columns), "DIAG_LOCKS_COLUMNS", output, output_all, &bad);
                if (r < 0)
                        return diag_usage_error("unknown column: '%s'", bad ? bad : "?");
        }
        /* a thread id names its process; each process once; the ones we cannot
         * read (gone, zombie, kernel thread, not permitted) said in one line each */
        {
                size_t k = 0, nbad = 0;
                char msg[512];
                struct diag_target t = {};
                int err = 0;

                for (size_t i = 0; i < arg.npids; i++) {
                        struct diag_syscall_state sc;
                        bool dup = false;
                        int e = 0;

                        diag_target_resolve(arg.pids[i], &t);
                        if (t.kind == DIAG_TARGET_LIVE && (e = diag_task_read_syscall(t.pid, t.pid, &sc)) != -EACCES &&
                            e != -EPERM)
                                e = 0;
                        if (t.kind != DIAG_TARGET_LIVE || e) {
                                log_error("%s", diag_target_message(&t, e, "read the lock waits of", msg, sizeof msg));
                                if (DIAG_GROW(errors, aerrors, nerrors + 1) == 0)
                                        errors[nerrors++] = (struct target_error) { t.pid, e, t };
                                err = e;
                                nbad++;
                                continue;
                        }
                        for (size_t j = 0; j < k; j++)
                                dup = dup || arg.pids[j] == t.pid;
                        if (!dup)
                                arg.pids[k++] = t.pid;
                }
                arg.npids = k;
                if (nbad && !k) {
                        /* nothing left to look at: the run failed */
                        if (arg.out.json)
                                (void) diag_json_error(stdout, diag_target_message(&t, err, "read the lock waits of", msg,
                                                                                   sizeof msg),
                                                       diag_target_reason(&t, err), t.pid, DIAG_EXIT_FAILURE);
                        free(errors);
                        free(arg.pids);
                        (void) diag_close_stdout();
                        return DIAG_EXIT_FAILURE;
                }
        }
        /* deadlocks only is a list of cycles, not a table */
        if (arg.cycles_only)
                arg.table = false;

        diag_watchdog_arm(60);
        diag_watchdog_phase("scanning futex waiters");
        r = diag_futex_scan(arg.pids, arg.npids, DIAG_FUTEX_PEEK | DIAG_FUTEX_SLEEPERS, &st.fx);
        if (r < 0)
                return log_error_errno(r, "futex scan failed: %m"), DIAG_EXIT_FAILURE;
        diag_watchdog_phase("reading file locks");
        r = scan_for_filelocks(st.fx, &st.scan);
        if (r < 0 || (r = collect_filelocks(&st, &st.ngroups_alloc)) < 0 ||
            (r = collect_guesses(&st, &st.ngroups_alloc)) < 0) {
                diag_futex_scan_free(st.fx);
                diag_scan_free(st.scan);
                return log_error_errno(r, "reading file locks failed: %m"), DIAG_EXIT_FAILURE;
        }
        /* -p: keep the file locks that involve the processes asked about */
        if (arg.pids) {
                size_t k = 0;
                for (size_t i = 0; i < st.ngroups; i++) {
                        bool keep = pid_selected(st.groups[i].holder_pid);
                        for (size_t h = 0; h < st.groups[i].holders.n; h++)
                                keep = keep || pid_selected(st.groups[i].holders.h[h].pid);
                        for (size_t w = 0; w < st.groups[i].nwaiters; w++)
                                keep = keep || pid_selected(st.groups[i].waiters[w].pid);
                        if (keep)
                                st.groups[k++] = st.groups[i];
                        else
                                group_done(&st.groups[i]);
                }
                st.ngroups = k;
        }
        if (st.fx->n)
                qsort(st.fx->locks, st.fx->n, sizeof *st.fx->locks, cmp_lock);
        st.deadlocks = json_object_new_array();
        st.possible = json_object_new_array();
        if (build_graph(&st) < 0)
                status = DIAG_EXIT_FAILURE;
        diag_waitgraph_cycles(&st.graph, 100, on_cycle, &st);

        if (st.fx->denied) {
                const char *why = geteuid() == 0 ? diag_ptrace_denied_reason() : NULL;
                /* root is not told to run as root */
                log_warn("%u process%s not readable%s%s%s: their lock waits are not shown%s", st.fx->denied,
                         st.fx->denied == 1 ? "" : "es", geteuid() == 0 ? " even as root" : "", why ? " (" : "",
                         why ? why : "", why ? ")" : geteuid() == 0 ? "" : " (run as root)");
        }
        diag_watchdog_phase("writing the output");
        if (arg.out.json && !arg.table)
                r = render_json(&st, errors, nerrors);
        else if (arg.table)
                r = render_table(&st);
        else {
                render_text(&st);
                r = 0;
        }
        if (r < 0)
                status = DIAG_EXIT_FAILURE;
        else if (st.nproven)
                status = DIAG_EXIT_DEADLOCK;
        else if (nerrors)
                status = DIAG_EXIT_PARTIAL;

        for (size_t i = 0; i < st.ndeadlocks; i++)
                free(st.deadlock_text[i]);
        free(st.deadlock_text);
        json_object_put(st.deadlocks);
        json_object_put(st.possible);
        for (size_t i = 0; i < st.ngroups; i++)
                group_done(&st.groups[i]);
        free(st.groups);
        diag_waitgraph_clear(&st.graph);
        diag_futex_scan_free(st.fx);
        diag_scan_free(st.scan);
        free(arg.pids);
        free(errors);
        if (diag_close_stdout() < 0)
                return DIAG_EXIT_FAILURE;
        return status;
}
