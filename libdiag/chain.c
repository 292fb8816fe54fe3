/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "diag/chain.h"
#include "diag/futex.h"
#include "diag/locks.h"
#include "diag/mem.h"
#include "diag/proc.h"
#include "diag/pyframes.h"
#include "diag/scan.h"
#include "diag/util.h"

int diag_waitgraph_add(struct diag_waitgraph *g, const struct diag_wait_edge *e) {
        if (DIAG_GROW(g->edges, g->alloc, g->n + 1) < 0)
                return -ENOMEM;
        g->edges[g->n] = *e;
        g->edges[g->n].resource = e->resource ? strdup(e->resource) : NULL;
        if (e->resource && !g->edges[g->n].resource)
                return -ENOMEM;
        g->n++;
        return 0;
}

void diag_waitgraph_clear(struct diag_waitgraph *g) {
        for (size_t i = 0; i < g->n; i++)
                free(g->edges[i].resource);
        free(g->edges);
        memset(g, 0, sizeof *g);
}

/* Does edge b start where edge a ends? */
static bool follows(const struct diag_wait_edge *a, const struct diag_wait_edge *b) {
        if (a->to_tid)
                return b->from_tid == a->to_tid;
        return b->from_pid == a->to_pid;
}

struct walk {
        const struct diag_waitgraph *g;
        size_t *path, depth, found, max;
        bool *on_path;
        diag_cycle_fn fn;
        void *ud;
};

/* A chord: some edge of the cycle already leads to a later one but the next.
 * "A waits for process P; P's thread 1 waits for P's thread 2; thread 2 waits
 * for A" holds the shorter cycle A -> thread 2 -> A, which is the deadlock. */
static bool chordless(const struct diag_waitgraph *g, const size_t *path, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                        if (j == i || j == (i + 1) % n)
                                continue;
                        if (follows(&g->edges[path[i]], &g->edges[path[j]]))
                                return false;
                }
        return true;
}

/* Simple cycles, each reported once: a cycle is found only from its lowest edge
 * index, and the walk never steps onto an edge below the start. The graphs are
 * small (blocked threads of a host), so a plain DFS does. */
static void dfs(struct walk *w, size_t start, size_t cur) {
        if (w->found >= w->max)
                return;
        for (size_t nx = start; nx < w->g->n; nx++) {
                if (!follows(&w->g->edges[cur], &w->g->edges[nx]))
                        continue;
                if (nx == start) {
                        if (!chordless(w->g, w->path, w->depth))
                                continue;
                        w->fn(w->g, w->path, w->depth, w->ud);
                        if (++w->found >= w->max)
                                return;
                        continue;
                }
                if (w->on_path[nx])
                        continue;
                /* one edge per thread on a path: a thread waits for one thing */
                {
                        bool same_thread = false;
                        for (size_t i = 0; i < w->depth; i++)
                                if (w->g->edges[w->path[i]].from_tid == w->g->edges[nx].from_tid)
                                        same_thread = true;
                        if (same_thread)
                                continue;
                }
                w->on_path[nx] = true;
                w->path[w->depth++] = nx;
                dfs(w, start, nx);
                w->depth--;
                w->on_path[nx] = false;
        }
}

size_t diag_waitgraph_cycles(const struct diag_waitgraph *g, size_t max, diag_cycle_fn fn, void *ud) {
        struct walk w = { .g = g, .max = max ? max : 100, .fn = fn, .ud = ud };

        if (!g->n)
                return 0;
        w.path = calloc(g->n, sizeof *w.path);
        w.on_path = calloc(g->n, sizeof *w.on_path);
        if (!w.path || !w.on_path) {
                free(w.path);
                free(w.on_path);
                return 0;
        }
        for (size_t s = 0; s < g->n && w.found < w.max; s++) {
                w.path[0] = s;
                w.depth = 1;
                w.on_path[s] = true;
                dfs(&w, s, s);
                w.on_path[s] = false;
        }
        free(w.path);
        free(w.on_path);
        return w.found;
}

/* ======================================================================
 * Following a wait chain
 * ====================================================================== */


static const char *const end_names[] = {
        [DIAG_END_NONE] = "none", [DIAG_END_REMOTE] = "remote", [DIAG_END_DSTATE] = "uninterruptible",
        [DIAG_END_ONCPU] = "on-cpu", [DIAG_END_SLEEP] = "sleeping", [DIAG_END_NO_OWNER] = "no-owner",
        [DIAG_END_NO_PEER] = "no-peer", [DIAG_END_FILE] = "file", [DIAG_END_CYCLE] = "deadlock",
        [DIAG_END_CAPPED] = "capped", [DIAG_END_OTHER] = "other", [DIAG_END_NOT_BLOCKED] = "not-blocked",
        [DIAG_END_GONE] = "gone", [DIAG_END_SEEN] = "seen", [DIAG_END_IDLE] = "idle",
};

const char *diag_end_name(enum diag_end e) {
        return (size_t) e < ELEMENTSOF(end_names) && end_names[e] ? end_names[e] : "?";
}

/* A table of records keyed by a pid or tid, the first member of each (0: a
 * free slot); open addressing, grown at half full. */
struct idtab {
        unsigned char *v;
        size_t n, alloc, size;
};

static pid_t idtab_key(const struct idtab *t, size_t i) {
        pid_t k;
        memcpy(&k, t->v + i * t->size, sizeof k);
        return k;
}

static size_t idtab_home(pid_t key, size_t alloc) {
        return (size_t) key * 2654435761u & (alloc - 1);
}

/* The record of key, or NULL. */
static void *idtab_find(const struct idtab *t, pid_t key) {
        for (size_t h = t->alloc && key > 0 ? idtab_home(key, t->alloc) : 0; t->alloc && key > 0; h = (h + 1) & (t->alloc - 1)) {
                pid_t k = idtab_key(t, h);
                if (k == key)
                        return t->v + h * t->size;
                if (!k)
                        break;
        }
        return NULL;
}

/* The record of key, made (zeroed but for the key, *ret_made set) on first use;
 * NULL when out of memory. The pointer holds until the next call. */
static void *idtab_get(struct idtab *t, pid_t key, bool *ret_made) {
        size_t h;

        if (ret_made)
                *ret_made = false;
        if (key <= 0)
                return NULL;
        if (t->n * 2 >= t->alloc) {
                struct idtab g = { .alloc = t->alloc ? t->alloc * 2 : 256, .size = t->size, .n = t->n };
                if (!(g.v = calloc(g.alloc, g.size)))
                        return NULL;
                for (size_t i = 0; i < t->alloc; i++) {
                        pid_t k = idtab_key(t, i);
                        if (!k)
                                continue;
                        for (h = idtab_home(k, g.alloc); idtab_key(&g, h); h = (h + 1) & (g.alloc - 1))
                                ;
                        memcpy(g.v + h * g.size, t->v + i * t->size, t->size);
                }
                free(t->v);
                *t = g;
        }
        for (h = idtab_home(key, t->alloc);; h = (h + 1) & (t->alloc - 1)) {
                pid_t k = idtab_key(t, h);
                if (k == key)
                        return t->v + h * t->size;
                if (!k) {
                        memcpy(t->v + h * t->size, &key, sizeof key);
                        t->n++;
                        if (ret_made)
                                *ret_made = true;
                        return t->v + h * t->size;
                }
        }
}

struct pcache {
        pid_t pid;                      /* the key */
        signed char excluded;           /* 0 not known yet, 1 no, 2 yes (diag_chain_ctx_exclude) */
        struct diag_maps *maps;
        bool maps_tried;
        struct diag_futex_scan *fx;
        bool fx_tried;
        struct diag_pyreader *py;       /* a CPython process: its threads' Python frames */
        bool py_tried;
};

/* What /proc said about a thread, kept for the whole run: with --all the same
 * threads come up in many walks. */
struct tmemo {
        pid_t tid;
        struct diag_chain_node node;    /* filled part only: comm, state, times, syscall, frames */
        struct diag_syscall_state sc;
};

/* A thread's state and system call as first read in this run. */
struct scmemo {
        pid_t tid;                      /* the key */
        char state;
        int r;
        struct diag_syscall_state sc;
};

/* A process's threads as first listed in this run. */
struct tidlist {
        pid_t pid;                      /* the key */
        int r;
        pid_t *tids;
        size_t n;
};

struct diag_chain_ctx {
        struct idtab memo;              /* struct tmemo by tid */
        struct idtab scm;               /* struct scmemo by tid */
        struct idtab tl;                /* struct tidlist by pid */
        unsigned flags;
        struct diag_scan *scan;
        struct diag_symcache *sc;
        struct idtab pc;                /* struct pcache by pid */
        pid_t self;                     /* this process: no part of any story */
        const struct diag_lineage *lineage;     /* left out with it (diag_chain_ctx_exclude) */
        char **pywhere;                 /* "Qualname (file.py:line)" strings frames point to */
        size_t npywhere, apywhere;
};

int diag_chain_ctx_new(unsigned flags, struct diag_chain_ctx **ret) {
        struct diag_chain_ctx *c = calloc(1, sizeof *c);
        int r;

        if (!c)
                return -ENOMEM;
        c->flags = flags;
        c->self = getpid();
        c->pc.size = sizeof(struct pcache);
        c->scm.size = sizeof(struct scmemo);
        c->memo.size = sizeof(struct tmemo);
        c->tl.size = sizeof(struct tidlist);
        r = diag_scan_run(NULL, 0, DIAG_SCAN_STATX | DIAG_SCAN_NET | DIAG_SCAN_LOCKS | DIAG_SCAN_INDEX |
                          DIAG_SCAN_EPOLL | DIAG_SCAN_ACCESS, &c->scan);
        if (r >= 0)
                r = diag_symcache_new(&c->sc);
        if (r < 0) {
                diag_chain_ctx_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

struct diag_chain_ctx *diag_chain_ctx_free(struct diag_chain_ctx *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->pc.alloc; i++) {
                struct pcache *p = (struct pcache *) c->pc.v + i;
                if (!p->pid)
                        continue;
                diag_maps_free(p->maps);
                diag_futex_scan_free(p->fx);
                diag_pyreader_free(p->py);
        }
        free(c->pc.v);
        for (size_t i = 0; i < c->npywhere; i++)
                free(c->pywhere[i]);
        free(c->pywhere);
        free(c->memo.v);
        for (size_t i = 0; i < c->tl.alloc; i++)
                free(((struct tidlist *) c->tl.v + i)->tids);
        free(c->tl.v);
        free(c->scm.v);
        diag_scan_free(c->scan);
        diag_symcache_free(c->sc);
        free(c);
        return NULL;
}

/* The run's record of pid, made on first use. The pointer holds until the next
 * call (the table may grow). */
static struct pcache *pcache_of(struct diag_chain_ctx *c, pid_t pid) {
        return idtab_get(&c->pc, pid, NULL);
}

void diag_chain_ctx_exclude(struct diag_chain_ctx *c, const struct diag_lineage *l) {
        c->lineage = l;
}

bool diag_chain_ctx_excluded(struct diag_chain_ctx *c, pid_t pid) {
        struct pcache *p;

        if (pid == c->self)
                return true;
        if (!c->lineage)
                return false;
        p = pcache_of(c, pid);
        if (!p)
                return diag_lineage_has(c->lineage, pid);
        if (!p->excluded)
                p->excluded = diag_lineage_has(c->lineage, pid) ? 2 : 1;
        return p->excluded == 2;
}

static const struct diag_maps *maps_of(struct diag_chain_ctx *c, pid_t pid) {
        struct pcache *p = pcache_of(c, pid);
        if (!p)
                return NULL;
        if (!p->maps_tried) {
                p->maps_tried = true;
                (void) diag_maps_read(pid, &p->maps);
        }
        return p->maps;
}

static bool interpreter_module(const char *path) {
        const char *b = path ? strrchr(path, '/') : NULL;
        b = b ? b + 1 : path;
        return b && (strncmp(b, "python", 6) == 0 || strncmp(b, "libpython", 9) == 0);
}

/* A thread whose first frame outside libc and the loader is in the CPython
 * interpreter: put its innermost Python frame there instead, as
 * "Qualname (file.py:line)" with the .py file as the module. The thread sleeps in
 * a system call, its frames hold still; read without stopping it. */
static void python_where(struct diag_chain_ctx *c, pid_t pid, pid_t tid, struct diag_chain_node *n) {
        struct pcache *p;
        struct diag_pythread pt = { 0 };
        const char *file, *base;
        size_t i;
        char *s = NULL;

        for (i = 0; i < n->nframes; i++) {
                const char *m = n->frames[i].module;
                if (n->frames[i].func && m && !strstr(m, "/libc.so") && !strstr(m, "/ld-linux"))
                        break;
        }
        if (i == n->nframes || !interpreter_module(n->frames[i].module) || !(p = pcache_of(c, pid)))
                return;
        if (!p->py_tried) {
                p->py_tried = true;
                (void) diag_pyreader_new(pid, &p->py, NULL);
        }
        if (!p->py || diag_pyreader_thread(p->py, tid, &pt) < 0 || pt.n == 0) {
                diag_pythread_clear(&pt);
                return;
        }
        /* Both strings are kept with the context: the reader's cache may drop its own. */
        file = pt.frames[0].filename ? pt.frames[0].filename : "?";
        base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        if (DIAG_GROW(c->pywhere, c->apywhere, c->npywhere + 2) == 0 &&
            asprintf(&s, "%s (%s:%d)", pt.frames[0].qualname ? pt.frames[0].qualname : "?", base, pt.frames[0].line) >= 0) {
                c->pywhere[c->npywhere++] = s;
                if ((s = strdup(file))) {
                        c->pywhere[c->npywhere++] = s;
                        n->frames[i] = (struct diag_peek_frame) { .func = c->pywhere[c->npywhere - 2], .module = s };
                }
        }
        diag_pythread_clear(&pt);
}

static const struct diag_futex_lock *futex_of(struct diag_chain_ctx *c, pid_t pid, pid_t tid) {
        struct pcache *p = pcache_of(c, pid);
        if (!p)
                return NULL;
        if (!p->fx_tried) {
                p->fx_tried = true;
                (void) diag_futex_scan_with(&pid, 1, DIAG_FUTEX_PEEK, c->sc, &p->fx);
        }
        return p->fx ? diag_futex_waited_by(p->fx, tid) : NULL;
}

static struct scmemo *scm_get(struct diag_chain_ctx *c, pid_t pid, pid_t tid) {
        bool made;
        struct scmemo *m = idtab_get(&c->scm, tid, &made);

        if (m && made) {
                m->state = '?';
                (void) diag_task_read_state(pid, tid, &m->state);
                m->r = diag_task_read_syscall(pid, tid, &m->sc);
        }
        return m;
}

/* The threads of pid, listed once per run (the array holds for the run). */
static int tids_of(struct diag_chain_ctx *c, pid_t pid, const pid_t **ret, size_t *ret_n) {
        bool made;
        struct tidlist *t = idtab_get(&c->tl, pid, &made);

        if (!t) {
                *ret = NULL;
                *ret_n = 0;
                return -ENOMEM;
        }
        if (made)
                t->r = diag_proc_list_tids(pid, &t->tids, &t->n);
        *ret = t->tids;
        *ret_n = t->r < 0 ? 0 : t->n;
        return t->r < 0 ? t->r : 0;
}

/* The syscall of a thread, read once per run. */
static int cached_syscall(struct diag_chain_ctx *c, pid_t pid, pid_t tid, struct diag_syscall_state *ret) {
        struct scmemo *m = scm_get(c, pid, tid);
        if (!m)
                return diag_task_read_syscall(pid, tid, ret);
        *ret = m->sc;
        return m->r;
}

static char cached_state(struct diag_chain_ctx *c, pid_t pid, pid_t tid) {
        struct scmemo *m = scm_get(c, pid, tid);
        char st = '?';
        if (!m) {
                (void) diag_task_read_state(pid, tid, &st);
                return st;
        }
        return m->state;
}

int diag_chain_blocked_threads(pid_t pid, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0, k = 0;
        int r = diag_proc_list_tids(pid, &tids, &n);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char st = '?';
                if (diag_task_read_state(pid, tids[i], &st) < 0)
                        continue;
                if (st == 'S' || st == 'D')
                        tids[k++] = tids[i];
        }
        *ret = TAKE_PTR(tids);
        *ret_n = k;
        return 0;
}

/* ---- nodes ---- */

static char *xasprintf(const char *fmt, ...) _printf_(1, 2);
static char *xasprintf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

static int add_node(struct diag_chain *ch, int parent, enum diag_node_kind kind, enum diag_wait_kind via_kind,
                    char *via) {
        struct diag_chain_node *n;

        if (DIAG_GROW(ch->nodes, ch->alloc, ch->n + 1) < 0) {
                free(via);
                return -ENOMEM;
        }
        n = &ch->nodes[ch->n];
        memset(n, 0, sizeof *n);
        n->kind = kind;
        n->parent = parent;
        n->depth = parent >= 0 ? ch->nodes[parent].depth + 1 : 0;
        n->via_kind = via_kind;
        n->via = via;
        n->blocked_ms = -1;
        n->state = '?';
        return (int) ch->n++;
}

static void set_end(struct diag_chain *ch, int idx, enum diag_end e, char *text) {
        ch->nodes[idx].end = e;
        free(ch->nodes[idx].end_text);
        ch->nodes[idx].end_text = text;
}

struct walk_ctx {
        struct diag_chain_ctx *c;
        struct diag_chain *ch;
        const struct diag_chain_opts *o;
        struct diag_syscall_state *sc;  /* per node, parallel to ch->nodes */
        size_t asc;
};

/* restart_syscall resuming poll or a timed futex wait: the registers still
 * hold the call's arguments, so the node is that call, shown as
 * "poll(0x7ffd..., 1, -1), resumed after a stop" and followed as one. */
static void resume_call(const struct diag_syscall_state *sc, struct diag_chain_node *n) {
        const char *resumed = diag_syscall_resumed(n->wchan);
        struct diag_syscall_state call = *sc;
        char text[200];                 /* and the words after it fit a node's 256 */

        if (!resumed || strcmp(resumed, "nanosleep") == 0)
                return;
        call.nr = diag_syscall_number(diag_arch_native(), resumed);
        if (call.nr < 0)
                return;
        diag_syscall_format(diag_arch_native(), &call, text, sizeof text);
        snprintf(n->syscall, sizeof n->syscall, "%s, resumed after a stop", text);
        n->syscall_name = diag_syscall_name(diag_arch_native(), call.nr);
        n->cls = diag_syscall_class(diag_arch_native(), &call);
}

static void fill_thread(struct walk_ctx *w, int idx, pid_t pid, pid_t tid) {
        struct diag_chain_ctx *c = w->c;
        struct diag_chain_node *n = &w->ch->nodes[idx];
        struct diag_syscall_state sc = {};
        const struct diag_maps *maps;
        const struct tmemo *tm = idtab_find(&c->memo, tid);

        if (tm) {
                const struct diag_chain_node *m = &tm->node;
                n->pid = pid;
                n->tid = tid;
                memcpy(n->comm, m->comm, sizeof n->comm);
                n->state = m->state;
                n->blocked_ms = m->blocked_ms;
                n->cls = m->cls;
                memcpy(n->syscall, m->syscall, sizeof n->syscall);
                n->syscall_name = m->syscall_name;
                memcpy(n->frames, m->frames, sizeof n->frames);
                n->nframes = m->nframes;
                memcpy(n->wchan, m->wchan, sizeof n->wchan);
                if (DIAG_GROW(w->sc, w->asc, (size_t) idx + 1) == 0)
                        w->sc[idx] = tm->sc;
                return;
        }
        n->pid = pid;
        n->tid = tid;
        (void) diag_proc_read_comm(tid, n->comm, sizeof n->comm);
        if (diag_task_read_state(pid, tid, &n->state) < 0) {
                set_end(w->ch, idx, DIAG_END_GONE, xasprintf("thread %d is gone", tid));
                return;
        }
        if (diag_task_read_syscall(pid, tid, &sc) < 0)
                sc.kind = DIAG_SC_UNKNOWN;
        if (DIAG_GROW(w->sc, w->asc, (size_t) idx + 1) == 0)
                w->sc[idx] = sc;
        diag_syscall_format(diag_arch_native(), &sc, n->syscall, sizeof n->syscall);
        n->cls = sc.kind == DIAG_SC_IN ? diag_syscall_class(diag_arch_native(), &sc) : DIAG_SCC_OTHER;
        n->syscall_name = sc.kind == DIAG_SC_IN ? diag_syscall_name(diag_arch_native(), sc.nr) : NULL;
        if (n->state != 'R')
                (void) diag_task_read_offcpu_ms(pid, tid, &n->blocked_ms);
        (void) diag_task_read_wchan(pid, tid, n->wchan, sizeof n->wchan);
        if (n->syscall_name && strcmp(n->syscall_name, "restart_syscall") == 0)
                resume_call(&sc, n);
        maps = maps_of(c, pid);
        n = &w->ch->nodes[idx];
        if (sc.kind == DIAG_SC_IN && maps)
                n->nframes = diag_symcache_peek(c->sc, pid, maps, sc.sp, sc.pc, n->frames, DIAG_CHAIN_FRAMES);
        if (sc.kind == DIAG_SC_IN && n->nframes)
                python_where(c, pid, tid, n);
        {
                struct tmemo *m = idtab_get(&c->memo, tid, NULL);
                if (!m)
                        return;
                m->sc = sc;
                memcpy(m->node.comm, n->comm, sizeof n->comm);
                m->node.state = n->state;
                m->node.blocked_ms = n->blocked_ms;
                m->node.cls = n->cls;
                memcpy(m->node.syscall, n->syscall, sizeof n->syscall);
                m->node.syscall_name = n->syscall_name;
                memcpy(m->node.frames, n->frames, sizeof n->frames);
                m->node.nframes = n->nframes;
                memcpy(m->node.wchan, n->wchan, sizeof n->wchan);
        }
}

void diag_chain_ctx_unseen(const struct diag_chain_ctx *c, unsigned *ret_denied, unsigned *ret_netns_skipped) {
        *ret_denied = c->scan ? c->scan->denied : 0;
        *ret_netns_skipped = c->scan ? c->scan->ns_skipped : 0;
}

/* Is tid on the path from the start to idx? Returns the node index or -1. */
static int on_path(const struct diag_chain *ch, int idx, pid_t tid) {
        for (int i = idx; i >= 0; i = ch->nodes[i].parent)
                if (ch->nodes[i].kind == DIAG_NODE_THREAD && ch->nodes[i].tid == tid)
                        return i;
        return -1;
}

static bool seen_elsewhere(const struct diag_chain *ch, pid_t tid, int except_from) {
        for (size_t i = 0; i < ch->n; i++)
                if ((int) i != except_from && ch->nodes[i].kind == DIAG_NODE_THREAD && ch->nodes[i].tid == tid &&
                    ch->nodes[i].end != DIAG_END_SEEN && ch->nodes[i].end != DIAG_END_CYCLE)
                        return true;
        return false;
}

static void walk_thread(struct walk_ctx *w, int idx);
static size_t poll_fds(pid_t pid, const struct diag_syscall_state *sc, const char *name, int *fds, size_t max);

/* Step from parent into thread tid of pid. */
/* Is any hop between node from (exclusive) and idx (inclusive) a guess? */
static bool guess_between(const struct diag_chain *ch, int idx, int from) {
        for (int i = idx; i >= 0 && i != from; i = ch->nodes[i].parent)
                if (ch->nodes[i].guessed)
                        return true;
        return false;
}

/* Is one of those guessed hops a likely file lock wait (follow_lock_guess)? */
static bool lock_guess_between(const struct diag_chain *ch, int idx, int from) {
        for (int i = idx; i >= 0 && i != from; i = ch->nodes[i].parent)
                if (ch->nodes[i].guessed && ch->nodes[i].via_kind == DIAG_WAIT_FILELOCK)
                        return true;
        return false;
}

static void step_into(struct walk_ctx *w, int parent, pid_t pid, pid_t tid, enum diag_wait_kind kind, char *via,
                      bool guessed) {
        int k = on_path(w->ch, parent, tid);
        int idx = add_node(w->ch, parent, DIAG_NODE_THREAD, kind, via);

        if (idx < 0)
                return;
        w->ch->nodes[idx].pid = pid;
        w->ch->nodes[idx].tid = tid;
        w->ch->nodes[idx].guessed = guessed;
        if (k >= 0) {
                (void) diag_proc_read_comm(tid, w->ch->nodes[idx].comm, sizeof w->ch->nodes[idx].comm);
                /* a loop is a deadlock only if every hop in it is known, not guessed;
                 * through a likely lock wait (diag_lock_guess_wait) it is a possible one */
                if (guess_between(w->ch, idx, k)) {
                        set_end(w->ch, idx, DIAG_END_SEEN,
                                xasprintf(lock_guess_between(w->ch, idx, k) ?
                                          "tid %d again, through an inferred lock wait: a possible deadlock, not a proven one" :
                                          "tid %d again, through a guessed hop: not a proven deadlock", tid));
                        return;
                }
                set_end(w->ch, idx, DIAG_END_CYCLE, xasprintf("tid %d again: a deadlock", tid));
                w->ch->deadlock = true;
                return;
        }
        if (seen_elsewhere(w->ch, tid, idx)) {
                (void) diag_proc_read_comm(tid, w->ch->nodes[idx].comm, sizeof w->ch->nodes[idx].comm);
                set_end(w->ch, idx, DIAG_END_SEEN, xasprintf("tid %d: shown above", tid));
                return;
        }
        fill_thread(w, idx, pid, tid);
        if (w->ch->nodes[idx].end == DIAG_END_NONE)
                walk_thread(w, idx);
}

static const struct diag_fd *find_fd(const struct diag_scan_proc *p, int fd) {
        for (size_t i = 0; p && p->fdt && i < p->fdt->n; i++)
                if (p->fdt->fds[i].fd == fd)
                        return &p->fdt->fds[i];
        return NULL;
}

/* Does thread tid of pid wait in epoll, poll or select with fd in its set?
 * The epoll fd it waits on (or -1 for poll and select) goes to *ret_epfd. */
static bool polls_fd(struct diag_chain_ctx *c, pid_t pid, pid_t tid, int fd, int *ret_epfd) {
        struct diag_syscall_state sc;
        const char *name;

        if (cached_syscall(c, pid, tid, &sc) < 0 || sc.kind != DIAG_SC_IN)
                return false;
        name = diag_syscall_name(diag_arch_native(), sc.nr);
        switch (diag_syscall_class(diag_arch_native(), &sc)) {
        case DIAG_SCC_EPOLL: {
                const struct diag_fd *ep = find_fd(diag_scan_find(c->scan, pid), (int) sc.args[0]);
                for (size_t i = 0; ep && i < ep->nepoll_tfds; i++)
                        if (ep->epoll_tfds[i] == fd) {
                                *ret_epfd = ep->fd;
                                return true;
                        }
                return false;
        }
        case DIAG_SCC_POLL: {
                int fds[64];
                size_t nf = name ? poll_fds(pid, &sc, name, fds, ELEMENTSOF(fds)) : 0;
                for (size_t i = 0; i < nf; i++)
                        if (fds[i] == fd) {
                                *ret_epfd = -1;
                                return true;
                        }
                return false;
        }
        default:
                return false;
        }
}

/* No thread of pid is in a call on fd, but one may poll it: an event loop.
 * Idle there (asleep in the poll), it has nothing to answer yet: the other
 * side waits for something the application has not got to do (a blocking
 * command, a subscription, a long poll). Say so and stop there: its helper
 * threads and its self-pipe are not on the path. Returns whether it did. */
static bool step_into_idle_poller(struct walk_ctx *w, int parent, pid_t pid, const pid_t *tids, size_t n, int fd,
                                  enum diag_wait_kind kind, const char *via) {
        for (size_t i = 0; i < n; i++) {
                int epfd = -1, idx;
                struct diag_chain_node *nd;

                if (cached_state(w->c, pid, tids[i]) != 'S' || !polls_fd(w->c, pid, tids[i], fd, &epfd))
                        continue;
                if (on_path(w->ch, parent, tids[i]) >= 0 || seen_elsewhere(w->ch, tids[i], -1)) {
                        step_into(w, parent, pid, tids[i], kind, via ? strdup(via) : NULL, false);
                        return true;
                }
                idx = add_node(w->ch, parent, DIAG_NODE_THREAD, kind, via ? strdup(via) : NULL);
                if (idx < 0)
                        return true;
                fill_thread(w, idx, pid, tids[i]);
                nd = &w->ch->nodes[idx];
                if (nd->end != DIAG_END_NONE)
                        return true;
                if (epfd >= 0)
                        set_end(w->ch, idx, DIAG_END_IDLE,
                                xasprintf("idle in %s() with fd %d in its epoll interest set (epoll fd %d): it owes "
                                          "no reply yet; an application-level wait (a blocking command, a "
                                          "subscription, a long poll), not a stuck thread",
                                          nd->syscall_name ? nd->syscall_name : "epoll_wait", fd, epfd));
                else
                        set_end(w->ch, idx, DIAG_END_IDLE,
                                xasprintf("idle in %s() with fd %d in its set: it owes no reply yet; an "
                                          "application-level wait (a blocking command, a subscription, a long "
                                          "poll), not a stuck thread", nd->syscall_name ? nd->syscall_name : "poll", fd));
                return true;
        }
        return false;
}

/* The threads of pid worth following: those blocked on fd (when given), else
 * every thread not simply waiting for the same thing, busiest first. */
static void step_into_process(struct walk_ctx *w, int parent, pid_t pid, int fd_hint, enum diag_wait_kind kind,
                              const char *via, bool guess_may_cycle) {
        const pid_t *tids = NULL;
        size_t n = 0, taken = 0, max = w->o->max_fanout ? w->o->max_fanout : 8;
        pid_t pick[64];
        bool guessed;

        if (diag_chain_ctx_excluded(w->c, pid))
                return;         /* the tool itself (and its lineage) is no part of any story */
        if (tids_of(w->c, pid, &tids, &n) < 0) {
                int idx = add_node(w->ch, parent, DIAG_NODE_THREAD, kind, via ? strdup(via) : NULL);
                if (idx >= 0) {
                        w->ch->nodes[idx].pid = pid;
                        set_end(w->ch, idx, DIAG_END_GONE, xasprintf("pid %d is gone", pid));
                }
                return;
        }
        if (fd_hint >= 0)
                for (size_t i = 0; i < n && taken < ELEMENTSOF(pick); i++) {
                        struct diag_syscall_state sc;
                        if (cached_syscall(w->c, pid, tids[i], &sc) == 0 && sc.kind == DIAG_SC_IN &&
                            diag_syscall_fd(diag_arch_native(), &sc) == fd_hint)
                                pick[taken++] = tids[i];
                }
        if (!taken && fd_hint >= 0 && step_into_idle_poller(w, parent, pid, tids, n, fd_hint, kind, via))
                return;
        guessed = !taken && fd_hint >= 0;
        if (!taken) {
                /* No thread is on that fd: any of them might be the one. Running
                 * threads first (a busy holder), then the rest in tid order. A guess
                 * never closes a cycle through the threads already on this path,
                 * except for a file lock, which the whole process holds. */
                for (int pass = 0; pass < 2; pass++)
                        for (size_t i = 0; i < n && taken < ELEMENTSOF(pick); i++) {
                                char st;
                                if (!guess_may_cycle && on_path(w->ch, parent, tids[i]) >= 0)
                                        continue;
                                st = cached_state(w->c, pid, tids[i]);
                                if ((pass == 0) == (st == 'R'))
                                        pick[taken++] = tids[i];
                        }
                if (!taken) {
                        int idx = add_node(w->ch, parent, DIAG_NODE_ENDPOINT, kind, via ? strdup(via) : NULL);
                        if (idx >= 0)
                                set_end(w->ch, idx, DIAG_END_NO_PEER,
                                        xasprintf("pid %d has no other thread that could do it", pid));
                        return;
                }
        }
        for (size_t i = 0; i < taken; i++) {
                if (i >= max) {
                        int idx = add_node(w->ch, parent, DIAG_NODE_THREAD, kind, via ? strdup(via) : NULL);
                        if (idx >= 0) {
                                w->ch->nodes[idx].pid = pid;
                                set_end(w->ch, idx, DIAG_END_CAPPED,
                                        xasprintf("%zu more threads of pid %d not followed (fan-out limit %zu)",
                                                  taken - max, pid, max));
                        }
                        w->ch->capped = true;
                        break;
                }
                step_into(w, parent, pid, pick[i], kind, via ? strdup(via) : NULL, guessed);
        }
}

static void sock_describe(const struct diag_sock *s, char *buf, size_t size) {
        char l[128], r[128];

        if (s->family == AF_UNIX) {
                snprintf(buf, size, "%s %s", diag_sock_proto_name(s), s->path ? s->path : "(unnamed)");
                return;
        }
        diag_sockaddr_format(&s->local, l, sizeof l);
        diag_sockaddr_format(&s->remote, r, sizeof r);
        if (s->state == 10)
                snprintf(buf, size, "%s %s LISTEN", diag_sock_proto_name(s), l);
        else
                snprintf(buf, size, "%s %s -> %s %s", diag_sock_proto_name(s), l, r, diag_tcp_state_name(s->state));
}

static void endpoint(struct walk_ctx *w, int parent, enum diag_wait_kind kind, char *via, enum diag_end e,
                     char *text, const struct diag_sock *s) {
        int idx = add_node(w->ch, parent, DIAG_NODE_ENDPOINT, kind, via);

        if (idx < 0) {
                free(text);
                return;
        }
        set_end(w->ch, idx, e, text);
        if (s) {
                char buf[300];
                w->ch->nodes[idx].have_sock = true;
                w->ch->nodes[idx].sock = *s;
                w->ch->nodes[idx].sock.path = NULL;
                sock_describe(s, buf, sizeof buf);
                w->ch->nodes[idx].sock_text = strdup(buf);
        }
}

/* diag_proc_thread_on_fd, through the run's memo of each thread's syscall. */
static bool process_blocked_on(struct diag_chain_ctx *c, pid_t pid, int fd) {
        const pid_t *tids = NULL;
        size_t n = 0;

        if (tids_of(c, pid, &tids, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                struct diag_syscall_state sc;
                if (cached_syscall(c, pid, tids[i], &sc) == 0 && sc.kind == DIAG_SC_IN &&
                    diag_syscall_fd(diag_arch_native(), &sc) == fd)
                        return true;
        }
        return false;
}

/* Every holder of (kind, ino) other than pid's own fd: continue into them.
 * One holder: into it, guessing its thread if none is on the fd. Several (a
 * pipe end every child of a shell inherited): only into those with a thread
 * on the fd, else say who holds it and stop — guessing into all of them
 * would follow every unrelated process. */
static size_t step_into_holders(struct walk_ctx *w, int parent, enum diag_ref_kind rk, uint64_t dev, uint64_t ino,
                                pid_t self_pid, int self_fd, unsigned want_access, enum diag_wait_kind kind,
                                const char *what) {
        struct diag_scan *s = w->c->scan;
        size_t first, n = diag_scan_refs(s, rk, dev, ino, &first), followed = 0;
        size_t max = w->o->max_fanout ? w->o->max_fanout : 8;
        struct { pid_t pid; int fd; const char *comm; } cand[64];
        size_t ncand = 0, nheld = 0, nexcl = 0;
        uint32_t last = UINT32_MAX;     /* the refs of one process are next to each other */
        pid_t excl = 0;

        for (size_t k = 0; k < n; k++) {
                const struct diag_fdref *ref = diag_scan_ref(s, first + k);
                const struct diag_scan_proc *p = &s->procs[ref->proc];
                const struct diag_fd *fd = &p->fdt->fds[ref->fd];

                if (ref->proc == last || (p->pid == self_pid && fd->fd == self_fd))
                        continue;
                if (want_access && !(fd->access & want_access))
                        continue;
                last = ref->proc;
                if (diag_chain_ctx_excluded(w->c, p->pid)) {
                        /* the tool's own run holds it (diag-snap's pipes, its shell's) */
                        excl = excl ? excl : p->pid;
                        nexcl++;
                        continue;
                }
                nheld++;
                if (ncand < ELEMENTSOF(cand))
                        cand[ncand++] = (typeof(cand[0])) { p->pid, fd->fd, p->comm };
        }
        if (!ncand && nexcl) {
                endpoint(w, parent, kind, strdup(what), DIAG_END_OTHER,
                         xasprintf("held only by this tool's own run (pid %d%s): not followed", excl,
                                   nexcl > 1 ? " and others" : ""), NULL);
                return 1;
        }
        for (size_t i = 0; i < ncand; i++) {
                char *via;
                if (ncand > 1 && !process_blocked_on(w->c, cand[i].pid, cand[i].fd))
                        continue;
                if (followed >= max) {
                        w->ch->capped = true;
                        endpoint(w, parent, kind, strdup(what), DIAG_END_CAPPED,
                                 xasprintf("more processes hold it, not followed (fan-out limit %zu)", max), NULL);
                        break;
                }
                via = xasprintf("%s, other end fd %d of pid %d (%s)", what, cand[i].fd, cand[i].pid, cand[i].comm);
                step_into_process(w, parent, cand[i].pid, cand[i].fd, kind, via, false);
                free(via);
                followed++;
        }
        if (ncand > 1 && !followed) {
                char list[256] = "";
                size_t o = 0;
                for (size_t i = 0; i < ncand && i < 8 && o < sizeof list; i++)
                        o += (size_t) snprintf(list + o, sizeof list - o, "%s%d", i ? "," : "", cand[i].pid);
                endpoint(w, parent, kind, strdup(what), DIAG_END_NO_PEER,
                         xasprintf("the other end is held by %zu processes (%s%s), none of them blocked on it",
                                   nheld, list, nheld > 8 ? ",..." : ""), NULL);
                return 1;
        }
        return followed;
}

/* "tcp A -> B" becomes "fd 7: tcp A -> B" */
static void fd_prefix(char *desc, size_t size, int fdnum) {
        char num[24];
        size_t l = (size_t) snprintf(num, sizeof num, "fd %d: ", fdnum), d = strlen(desc);

        if (l + d + 1 > size)
                d = size - l - 1;
        memmove(desc + l, desc, d);
        memcpy(desc, num, l);
        desc[l + d] = 0;
}

static void follow_fd(struct walk_ctx *w, int idx, int fdnum, bool writing) {
        struct diag_scan *s = w->c->scan;
        struct diag_chain_node *n = &w->ch->nodes[idx];
        pid_t pid = n->pid;
        const struct diag_scan_proc *p = diag_scan_find(s, pid);
        const struct diag_fd *fd = find_fd(p, fdnum);
        const struct diag_sock *so;
        char desc[400];
        uint64_t dev, ino;
        enum diag_ref_kind rk;

        if (!fd) {
                endpoint(w, idx, DIAG_WAIT_SOCKET, xasprintf("fd %d", fdnum), DIAG_END_OTHER,
                         xasprintf("fd %d was not seen in the scan (opened since?)", fdnum), NULL);
                return;
        }
        so = diag_scan_sock(s, p, fd);
        if (so) {
                const struct diag_sock *peer = NULL;
                sock_describe(so, desc, sizeof desc);
                if (so->family == AF_UNIX) {
                        if (!so->peer_inode) {
                                endpoint(w, idx, DIAG_WAIT_SOCKET, xasprintf("fd %d: %s", fdnum, desc),
                                         so->state == 10 ? DIAG_END_OTHER : DIAG_END_NO_PEER,
                                         xasprintf(so->state == 10 ? "listening: waits for a client" : "no peer"), so);
                                return;
                        }
                        fd_prefix(desc, sizeof desc, fdnum);
                        if (!step_into_holders(w, idx, DIAG_REF_SOCK, 0, so->peer_inode, pid, fdnum, 0, DIAG_WAIT_SOCKET, desc))
                                endpoint(w, idx, DIAG_WAIT_SOCKET, strdup(desc), DIAG_END_NO_PEER,
                                         xasprintf("the peer socket is held by no process we can see"), so);
                        return;
                }
                if (so->state == 10) {
                        endpoint(w, idx, DIAG_WAIT_SOCKET, xasprintf("fd %d: %s", fdnum, desc), DIAG_END_OTHER,
                                 xasprintf("listening: waits for a client"), so);
                        return;
                }
                peer = diag_socktab_inet_peer(p->socks, so);
                fd_prefix(desc, sizeof desc, fdnum);
                if (peer && peer->inode) {
                        if (step_into_holders(w, idx, DIAG_REF_SOCK, 0, peer->inode, pid, fdnum, 0, DIAG_WAIT_SOCKET, desc))
                                return;
                } else if (peer && so->protocol == IPPROTO_TCP) {
                        /* the connection sits in a listener's backlog: nobody accepted it */
                        uint16_t port = so->remote.ss_family == AF_INET ?
                                ((const struct sockaddr_in *) &so->remote)->sin_port :
                                ((const struct sockaddr_in6 *) &so->remote)->sin6_port;
                        for (size_t i = 0; p->socks && i < p->socks->n; i++) {
                                const struct diag_sock *l = &p->socks->socks[i];
                                uint16_t lport = l->local.ss_family == AF_INET ?
                                        ((const struct sockaddr_in *) &l->local)->sin_port :
                                        ((const struct sockaddr_in6 *) &l->local)->sin6_port;
                                size_t first, nref;
                                if (l->state != 10 || l->protocol != IPPROTO_TCP || !l->inode || lport != port)
                                        continue;
                                nref = diag_scan_refs(s, DIAG_REF_SOCK, 0, l->inode, &first);
                                if (nref) {
                                        const struct diag_fdref *ref = diag_scan_ref(s, first);
                                        const struct diag_scan_proc *lp = &s->procs[ref->proc];
                                        endpoint(w, idx, DIAG_WAIT_SOCKET, strdup(desc), DIAG_END_NO_PEER,
                                                 xasprintf("never accepted: the connection waits in the backlog of pid %d (%s) fd %d, "
                                                           "listening on port %u with %u queued; no thread accepts",
                                                           lp->pid, lp->comm, lp->fdt->fds[ref->fd].fd, ntohs(lport), l->rqueue), so);
                                        return;
                                }
                        }
                }
                /* not on this host (or its owner is out of sight): the chain leaves here */
                {
                        char d1[DIAG_DURATION_MAX], d2[DIAG_DURATION_MAX];
                        char *text;
                        if (so->have_tcp_info)
                                text = xasprintf("%s: nothing received for %s, nothing sent for %s; %u unread, %u unsent, "
                                                 "%u unacked, %u retransmits, rtt %.1f ms", peer ? "peer on this host, owner not visible" : "remote peer",
                                                 diag_format_duration(so->tcp.last_data_recv_ms, d1, sizeof d1),
                                                 diag_format_duration(so->tcp.last_data_sent_ms, d2, sizeof d2),
                                                 so->rqueue, so->wqueue, so->tcp.unacked, so->tcp.total_retrans,
                                                 so->tcp.rtt_us / 1000.0);
                        else
                                text = xasprintf("%s; %u unread, %u unsent", peer ? "peer on this host, owner not visible" : "remote peer",
                                                 so->rqueue, so->wqueue);
                        endpoint(w, idx, DIAG_WAIT_SOCKET, strdup(desc), DIAG_END_REMOTE, text, so);
                }
                return;
        }
        rk = diag_scan_fd_key(fd, &dev, &ino);
        if (rk == DIAG_REF_PIPE || (fd->type == DIAG_FD_FIFO && rk) || rk == DIAG_REF_EVENTFD) {
                snprintf(desc, sizeof desc, "fd %d: %s", fdnum, fd->link);
                /* a reader waits for writers, a writer for readers */
                if (!step_into_holders(w, idx, rk, dev, ino, pid, fdnum,
                                       rk == DIAG_REF_EVENTFD ? 0 : (writing ? DIAG_FD_R : DIAG_FD_W), DIAG_WAIT_PIPE, desc))
                        endpoint(w, idx, DIAG_WAIT_PIPE, strdup(desc), DIAG_END_NO_PEER,
                                 xasprintf("no other process in sight holds the %s end (it may be outside this pid "
                                           "namespace or unreadable)", writing ? "read" : "write"), NULL);
                return;
        }
        endpoint(w, idx, DIAG_WAIT_SOCKET, xasprintf("fd %d: %s", fdnum, fd->link),
                 fd->type == DIAG_FD_REG || fd->type == DIAG_FD_CHR || fd->type == DIAG_FD_BLK ? DIAG_END_FILE : DIAG_END_OTHER,
                 xasprintf("%s %s", writing ? "writing" : "reading", fd->link), NULL);
}

/* The fds a poll or select call waits on, read from the caller's memory. */
static size_t poll_fds(pid_t pid, const struct diag_syscall_state *sc, const char *name, int *fds, size_t max) {
        size_t n = 0;

        if (strcmp(name, "poll") == 0 || strcmp(name, "ppoll") == 0) {
                struct { int fd; short events, revents; } pf[64];
                size_t nfds = MIN((size_t) sc->args[1], ELEMENTSOF(pf));
                if (nfds && diag_mem_read(pid, sc->args[0], pf, nfds * sizeof pf[0]) == (ssize_t) (nfds * sizeof pf[0]))
                        for (size_t i = 0; i < nfds && n < max; i++)
                                if (pf[i].fd >= 0)
                                        fds[n++] = pf[i].fd;
        } else if (strcmp(name, "select") == 0 || strcmp(name, "pselect6") == 0) {
                uint64_t set[16];
                size_t nfds = MIN((size_t) sc->args[0], sizeof set * 8);
                for (int which = 1; which <= 2; which++) {
                        size_t bytes = (nfds + 63) / 64 * 8;
                        if (!sc->args[which] || !bytes ||
                            diag_mem_read(pid, sc->args[which], set, bytes) != (ssize_t) bytes)
                                continue;
                        for (size_t b = 0; b < nfds && n < max; b++)
                                if (set[b / 64] & (1ULL << (b % 64)))
                                        fds[n++] = (int) b;
                }
        }
        return n;
}

static void follow_filelock(struct walk_ctx *w, int idx, int fdnum) {
        struct diag_scan *s = w->c->scan;
        pid_t pid = w->ch->nodes[idx].pid;
        const struct diag_scan_proc *p = diag_scan_find(s, pid);
        const struct diag_fd *fd = find_fd(p, fdnum);
        const struct diag_locktab *t = s->locks;
        const struct diag_filelock *waiter = NULL, *holder;
        struct diag_lock_holders holders;

        if (!fd || !t) {
                set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("waits for a file lock on fd %d (not found)", fdnum));
                return;
        }
        for (size_t i = 0; i < t->n && !waiter; i++) {
                const struct diag_filelock *l = &t->locks[i];
                if (l->waiter && l->inode == fd->inode && l->dev_major == fd->dev_major &&
                    l->dev_minor == fd->dev_minor && (l->pid == pid || l->pid <= 0))
                        waiter = l;
        }
        holder = waiter ? diag_locks_blocker(t, waiter) : NULL;
        if (!holder) {
                set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("waits for a lock on %s; its holder is not in /proc/locks", fd->link));
                return;
        }
        /* the live holders: an OFD lock's, or a flock whose locker exited, are
         * the processes that share its open file description */
        (void) diag_lock_holders_find(s, holder, &holders);
        if (!holders.n) {
                set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("%s lock on %s: holder not found%s",
                                                              diag_lock_kind_name(holder->kind), fd->link,
                                                              holders.locker_exited ? " (its locker exited)" : ""));
                return;
        }
        for (size_t k = 0; k < holders.n; k++) {
                char *via = holders.locker_exited ?
                        xasprintf("%s %s %s, inherited from pid %d (exited)", diag_lock_kind_name(holder->kind),
                                  diag_lock_mode_name(holder->mode), fd->link, holders.locker) :
                        xasprintf("%s %s %s", diag_lock_kind_name(holder->kind), diag_lock_mode_name(holder->mode), fd->link);
                step_into_process(w, idx, holders.h[k].pid, -1, DIAG_WAIT_FILELOCK, via, true);
                free(via);
        }
}

static void follow_children(struct walk_ctx *w, int idx, pid_t want) {
        pid_t pid = w->ch->nodes[idx].pid;
        const pid_t *tids = NULL;
        size_t n = 0, found = 0;
        pid_t own = 0;

        if (tids_of(w->c, pid, &tids, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                char path[96], buf[4096];
                char *tok, *save = NULL;
                snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, tids[i]);
                if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                        continue;
                for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
                        pid_t child;
                        char *via;
                        if (diag_parse_pid(tok, &child) < 0 || (want > 0 && child != want))
                                continue;
                        if (diag_chain_ctx_excluded(w->c, child)) {
                                own = child;
                                continue;
                        }
                        via = xasprintf("child pid %d", child);
                        step_into_process(w, idx, child, -1, DIAG_WAIT_CHILD, via, true);
                        free(via);
                        found++;
                }
        }
        if (!found && own)
                set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("waits for its child pid %d, this tool's own run: "
                                                              "not followed", own));
        else if (!found)
                set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("waits for a child, none found"));
}

/* A sleeper in a retry loop around a non-blocking lock call: a likely wait for
 * a lock another process holds on a file it has open (diag_lock_guess_wait),
 * followed into the holder's threads as a guessed hop, labelled with its
 * evidence; a cycle through it is a possible deadlock, never a proven one. */
static bool follow_lock_guess(struct walk_ctx *w, int idx, const char *call) {
        size_t max = w->o->max_fanout ? w->o->max_fanout : 8;
        pid_t pid = w->ch->nodes[idx].pid, tid = w->ch->nodes[idx].tid;
        struct diag_lock_guess g;
        _cleanup_free_ char *via = NULL;
        char text[1024];

        if (diag_lock_guess_wait(w->c->scan, pid, tid, call, &g) <= 0)
                return false;
        via = xasprintf("%s %s %s, likely waited for (inferred: %s)", diag_lock_kind_name(g.lock->kind),
                        diag_lock_mode_name(g.lock->mode), g.path ? g.path : "?",
                        diag_lock_guess_evidence(&g, text, sizeof text));
        for (size_t k = 0; k < g.holders.n; k++) {
                const pid_t *tids = NULL;
                size_t nt = 0;
                if (tids_of(w->c, g.holders.h[k].pid, &tids, &nt) < 0)
                        continue;
                for (size_t i = 0; i < nt && i < max; i++)
                        step_into(w, idx, g.holders.h[k].pid, tids[i], DIAG_WAIT_FILELOCK, via ? strdup(via) : NULL, true);
        }
        return true;
}

/* A thread in a futex wait: into the lock's owner, or why not. */
static void follow_futex(struct walk_ctx *w, int idx) {
        struct diag_chain_node *n = &w->ch->nodes[idx];
        const struct diag_futex_lock *l = futex_of(w->c, n->pid, n->tid);
        char *via;

        if (!l) {
                set_end(w->ch, idx, DIAG_END_NO_OWNER, xasprintf("futex wait, lock not identified"));
                return;
        }
        via = xasprintf("%s %s", diag_futex_kind_name(l->kind), l->name ? l->name : "?");
        if (l->owner_tid && !l->owner_gone) {
                step_into(w, idx, l->owner_pid, l->owner_tid, DIAG_WAIT_FUTEX, via, false);
                return;
        }
        if (l->owner_gone)
                set_end(w->ch, idx, DIAG_END_NO_OWNER,
                        xasprintf("waits for %s, whose owner tid %d exited holding it", via, l->owner_tid));
        else if (l->readers)
                set_end(w->ch, idx, DIAG_END_NO_OWNER,
                        xasprintf("waits for %s, held by %u readers (not recorded which)", via, l->readers));
        else
                set_end(w->ch, idx, DIAG_END_NO_OWNER,
                        xasprintf("waits on %s: %s", via, l->kind == DIAG_FUTEX_CONDVAR ? "no owner, waits for a signal" :
                                  l->kind == DIAG_FUTEX_SEMAPHORE ? "no owner, waits for a post" :
                                  l->kind == DIAG_FUTEX_LIBC_LOCK ? "its owner is not recorded" : "owner unknown"));
        free(via);
}

/* Each of the fds a thread waits on, up to the fan-out limit; the rest
 * counted in one capped end. */
static void follow_fds(struct walk_ctx *w, int idx, const int *fds, size_t n, const char *where) {
        size_t max = w->o->max_fanout ? w->o->max_fanout : 8;

        for (size_t i = 0; i < n && i < max; i++)
                follow_fd(w, idx, fds[i], false);
        if (n > max) {
                w->ch->capped = true;
                endpoint(w, idx, DIAG_WAIT_SOCKET, NULL, DIAG_END_CAPPED,
                         xasprintf("%zu more fds%s not followed (fan-out limit %zu)", n - max, where, max), NULL);
        }
}

/* A thread in poll, ppoll, select or pselect6: each fd it waits on. */
static void follow_poll(struct walk_ctx *w, int idx, const struct diag_syscall_state *sc, const char *name) {
        int fds[64];
        size_t nf = poll_fds(w->ch->nodes[idx].pid, sc, name, fds, ELEMENTSOF(fds));

        if (!nf) {
                set_end(w->ch, idx, DIAG_END_SLEEP, xasprintf("%s with no fds: a sleep", name));
                return;
        }
        follow_fds(w, idx, fds, nf, "");
}

static void walk_thread(struct walk_ctx *w, int idx) {
        struct diag_chain_node *n = &w->ch->nodes[idx];
        unsigned max_depth = w->o->max_depth ? w->o->max_depth : 12;
        struct diag_syscall_state sc = (size_t) idx < w->asc ? w->sc[idx] : (struct diag_syscall_state) {};
        const char *name = n->syscall_name;

        if (n->depth >= max_depth) {
                w->ch->capped = true;
                set_end(w->ch, idx, DIAG_END_CAPPED, xasprintf("depth limit %u reached", max_depth));
                return;
        }
        switch (n->state) {
        case 'D': {
                char what[600] = "";
                if (w->c->flags & DIAG_CHAIN_KSTACK)
                        (void) diag_task_read_kstack(n->pid, n->tid, &w->ch->nodes[idx].kstack);
                /* a read or write stuck on an fd: what that fd is, from the fd
                 * table and the mount table, without touching the file */
                if (sc.kind == DIAG_SC_IN && diag_syscall_fd(diag_arch_native(), &sc) >= 0 &&
                    diag_fdname_read(n->pid, diag_syscall_fd(diag_arch_native(), &sc), NULL, &n->fdname) >= 0) {
                        char buf[512];
                        n->have_fdname = true;
                        snprintf(what, sizeof what, " on fd %d, %s", n->fdname.fd,
                                 diag_fdname_format(&n->fdname, buf, sizeof buf));
                }
                set_end(w->ch, idx, DIAG_END_DSTATE, xasprintf("uninterruptible sleep in %s%s",
                                                               n->wchan[0] ? n->wchan : "the kernel", what));
                return;
        }
        case 'R':
                set_end(w->ch, idx, DIAG_END_ONCPU, xasprintf("running: busy on a CPU, not waiting"));
                return;
        case 'T': case 't':
                set_end(w->ch, idx, DIAG_END_NOT_BLOCKED, xasprintf("stopped (%c)", n->state));
                return;
        case 'Z': case 'X':
                set_end(w->ch, idx, DIAG_END_GONE, xasprintf("exited"));
                return;
        default:
                break;
        }
        if (sc.kind == DIAG_SC_UNKNOWN) {
                /* the syscall file needs ptrace-read permission: nothing says
                 * the thread is outside a system call */
                set_end(w->ch, idx, DIAG_END_OTHER,
                        xasprintf("not permitted to read what it waits for (/proc/%d/task/%d/syscall)", n->pid, n->tid));
                return;
        }
        if (sc.kind != DIAG_SC_IN || !name) {
                set_end(w->ch, idx, DIAG_END_NOT_BLOCKED, xasprintf(sc.kind == DIAG_SC_RUNNING ? "running" : "not in a system call"));
                return;
        }
        /* A sleep or wait with a timeout that a stop interrupted (any tracer's,
         * SIGSTOP) resumes as restart_syscall. Poll and a timed futex wait are
         * followed as themselves (resume_call); for the rest the arguments are
         * gone, and the wait channel and the innermost frame say what it was. */
        if (strcmp(name, "restart_syscall") == 0) {
                const char *f = n->nframes ? n->frames[0].func : NULL;
                int flen = f ? (int) strcspn(f, "@") : 0;       /* clock_nanosleep, not clock_nanosleep@GLIBC_2.2.5 */
                const char *resumed = diag_syscall_resumed(n->wchan);
                bool asleep = (resumed && strcmp(resumed, "nanosleep") == 0) || (f && strstr(f, "sleep"));

                if (asleep && follow_lock_guess(w, idx, "nanosleep"))
                        return;
                if (asleep)
                        set_end(w->ch, idx, DIAG_END_SLEEP,
                                xasprintf("sleeping by choice (a %.*s resumed after a stop)", f ? flen : 5, f ? f : "sleep"));
                else
                        set_end(w->ch, idx, DIAG_END_OTHER,
                                xasprintf("a call resumed after a stop (restart_syscall), waiting in %s%s%.*s; its arguments "
                                          "are gone, so what it waits for is not known", n->wchan[0] ? n->wchan : "the kernel",
                                          f ? " under " : "", flen, f ? f : ""));
                return;
        }
        switch (n->cls) {
        case DIAG_SCC_FUTEX:
                follow_futex(w, idx);
                return;
        case DIAG_SCC_FLOCK:
        case DIAG_SCC_FCNTL_LOCK:
                follow_filelock(w, idx, diag_syscall_fd(diag_arch_native(), &sc));
                return;
        case DIAG_SCC_FD_READ:
        case DIAG_SCC_ACCEPT:
                follow_fd(w, idx, diag_syscall_fd(diag_arch_native(), &sc), false);
                return;
        case DIAG_SCC_FD_WRITE:
        case DIAG_SCC_CONNECT:
                follow_fd(w, idx, diag_syscall_fd(diag_arch_native(), &sc), true);
                return;
        case DIAG_SCC_POLL:
                follow_poll(w, idx, &sc, name);
                return;
        case DIAG_SCC_EPOLL: {
                const struct diag_scan_proc *p = diag_scan_find(w->c->scan, n->pid);
                const struct diag_fd *ep = find_fd(p, (int) sc.args[0]);
                size_t nt;
                int tfds[64];
                if (!ep || !ep->have_fdinfo || !ep->nepoll_tfds) {
                        set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("epoll set of fd %d unknown or empty", (int) sc.args[0]));
                        return;
                }
                nt = MIN(ep->nepoll_tfds, ELEMENTSOF(tfds));
                memcpy(tfds, ep->epoll_tfds, nt * sizeof *tfds);
                follow_fds(w, idx, tfds, nt, " in the epoll set");
                return;
        }
        case DIAG_SCC_WAIT_CHILD:
                follow_children(w, idx, strcmp(name, "wait4") == 0 ? (pid_t) (int) sc.args[0] : 0);
                return;
        case DIAG_SCC_SLEEP:
        case DIAG_SCC_PAUSE:
        case DIAG_SCC_SIGWAIT:
                if (n->cls == DIAG_SCC_SLEEP && follow_lock_guess(w, idx, name))
                        return;
                set_end(w->ch, idx, DIAG_END_SLEEP, xasprintf("sleeping by choice in %s()", name));
                return;
        case DIAG_SCC_AIO:
                set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("waits for asynchronous I/O in %s()", name));
                return;
        default:
                set_end(w->ch, idx, DIAG_END_OTHER, xasprintf("in %s()", name));
                return;
        }
}

/* ---- where running threads are: sampled pcs ---- */

#define PC_SAMPLE_MAX_THREADS 256
#define PC_SAMPLE_RING_PAGES 2          /* the header page and one data page: ~250 samples */

struct pc_sampler {
        pid_t pid, tid;
        int fd;
        void *ring;
};

struct diag_pc_samples {
        struct pc_sampler *t;
        size_t n;
        size_t ring_size;
};

struct diag_pc_samples *diag_chain_pc_sample_free(struct diag_pc_samples *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                if (s->t[i].ring)
                        munmap(s->t[i].ring, s->ring_size);
                close(s->t[i].fd);
        }
        free(s->t);
        free(s);
        return NULL;
}

int diag_chain_pc_sample_begin(const pid_t *pids, size_t npids, struct diag_pc_samples **ret) {
        struct diag_pc_samples *s = calloc(1, sizeof *s);
        size_t alloc = 0;

        *ret = NULL;
        if (!s)
                return -ENOMEM;
        s->ring_size = (size_t) PC_SAMPLE_RING_PAGES * (size_t) sysconf(_SC_PAGESIZE);
        for (size_t i = 0; i < npids && s->n < PC_SAMPLE_MAX_THREADS; i++) {
                _cleanup_free_ pid_t *tids = NULL;
                size_t nt = 0;
                if (diag_proc_list_tids(pids[i], &tids, &nt) < 0)
                        continue;
                for (size_t j = 0; j < nt && s->n < PC_SAMPLE_MAX_THREADS; j++) {
                        struct perf_event_attr a = {
                                .type = PERF_TYPE_SOFTWARE,
                                .size = sizeof a,
                                .config = PERF_COUNT_SW_TASK_CLOCK,
                                .sample_period = 1000000,       /* ns of the thread's own CPU time */
                                .sample_type = PERF_SAMPLE_IP,
                                .exclude_kernel = 1,
                                .exclude_hv = 1,
                        };
                        int fd = (int) syscall(SYS_perf_event_open, &a, tids[j], -1, -1, PERF_FLAG_FD_CLOEXEC);
                        void *ring;
                        if (fd < 0) {
                                if (errno == ESRCH)
                                        continue;
                                /* not permitted or not supported here: no samples at all */
                                *ret = diag_chain_pc_sample_free(s);
                                return 0;
                        }
                        ring = mmap(NULL, s->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                        if (ring == MAP_FAILED || DIAG_GROW(s->t, alloc, s->n + 1) < 0) {
                                if (ring != MAP_FAILED)
                                        munmap(ring, s->ring_size);
                                close(fd);
                                continue;
                        }
                        s->t[s->n++] = (struct pc_sampler) { .pid = pids[i], .tid = tids[j], .fd = fd, .ring = ring };
                }
        }
        *ret = s;
        return 0;
}

void diag_chain_pc_sample_stop(struct diag_pc_samples *s) {
        for (size_t i = 0; s && i < s->n; i++)
                (void) ioctl(s->t[i].fd, PERF_EVENT_IOC_DISABLE, 0);
}

/* The most frequent sampled pc of one thread's ring. */
static uint64_t hottest_pc(const struct diag_pc_samples *s, const struct pc_sampler *t, unsigned *ret_hits,
                           unsigned *ret_samples) {
        const struct perf_event_mmap_page *mp = t->ring;
        const unsigned char *data = (const unsigned char *) t->ring + mp->data_offset;
        uint64_t size = mp->data_size, head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE), pos = 0;
        uint64_t pcs[256], best = 0;
        unsigned counts[256], npcs = 0, total = 0, hits = 0;

        if (!size)
                size = s->ring_size - (size_t) sysconf(_SC_PAGESIZE);
        if (head > size)
                pos = head - size;      /* wrapped: the oldest samples are gone */
        while (pos + sizeof(struct perf_event_header) <= head) {
                struct perf_event_header h;
                uint64_t ip;
                for (size_t b = 0; b < sizeof h; b++)
                        ((unsigned char *) &h)[b] = data[(pos + b) % size];
                if (h.size < sizeof h || pos + h.size > head)
                        break;
                if (h.type == PERF_RECORD_SAMPLE && h.size >= sizeof h + sizeof ip) {
                        size_t k;
                        for (size_t b = 0; b < sizeof ip; b++)
                                ((unsigned char *) &ip)[b] = data[(pos + sizeof h + b) % size];
                        total++;
                        for (k = 0; k < npcs && pcs[k] != ip; k++)
                                ;
                        if (k == npcs && npcs < ELEMENTSOF(pcs)) {
                                pcs[npcs] = ip;
                                counts[npcs++] = 0;
                        }
                        if (k < npcs && ++counts[k] > hits) {
                                hits = counts[k];
                                best = ip;
                        }
                }
                pos += h.size;
        }
        *ret_hits = hits;
        *ret_samples = total;
        return best;
}

void diag_chain_place_running(struct diag_chain_ctx *c, struct diag_chain *ch, const struct diag_pc_samples *s) {
        for (size_t i = 0; s && i < ch->n; i++) {
                struct diag_chain_node *n = &ch->nodes[i];
                if (n->kind != DIAG_NODE_THREAD || n->end != DIAG_END_ONCPU || n->nframes)
                        continue;
                for (size_t k = 0; k < s->n; k++) {
                        const struct diag_maps *maps;
                        unsigned hits, total;
                        uint64_t pc;
                        if (s->t[k].tid != n->tid)
                                continue;
                        pc = hottest_pc(s, &s->t[k], &hits, &total);
                        maps = maps_of(c, n->pid);
                        /* one frame: the stack has moved on since the sample */
                        if (pc && maps && diag_symcache_peek(c->sc, n->pid, maps, 0, pc, n->frames, 1) == 1) {
                                n->nframes = 1;
                                n->pc_hits = hits;
                                n->pc_samples = total;
                        }
                        break;
                }
        }
}

/* ---- the verdict ---- */

static int end_rank(enum diag_end e) {
        switch (e) {
        case DIAG_END_CYCLE: return 10;
        case DIAG_END_REMOTE: return 9;
        case DIAG_END_DSTATE: return 8;
        case DIAG_END_NO_OWNER: return 7;
        case DIAG_END_ONCPU: return 6;
        case DIAG_END_IDLE: return 6;
        case DIAG_END_NO_PEER: return 5;
        case DIAG_END_FILE: return 4;
        case DIAG_END_SLEEP: return 3;
        case DIAG_END_OTHER: return 2;
        case DIAG_END_NOT_BLOCKED: case DIAG_END_GONE: case DIAG_END_CAPPED: return 1;
        default: return 0;
        }
}

/* The thread a node belongs to (itself, or an endpoint's parent). */
static const struct diag_chain_node *thread_of(const struct diag_chain *ch, int idx) {
        while (idx >= 0 && ch->nodes[idx].kind != DIAG_NODE_THREAD)
                idx = ch->nodes[idx].parent;
        return idx >= 0 ? &ch->nodes[idx] : NULL;
}

static void verdict(struct diag_chain *ch) {
        int best = -1;
        const struct diag_chain_node *t, *e;
        char dur[DIAG_DURATION_MAX], d2[DIAG_DURATION_MAX];
        char *holds = NULL;

        for (size_t i = 0; i < ch->n; i++) {
                int r = end_rank(ch->nodes[i].end);
                if (r && (best < 0 || r > end_rank(ch->nodes[best].end) ||
                          (r == end_rank(ch->nodes[best].end) && ch->nodes[i].depth > ch->nodes[best].depth)))
                        best = (int) i;
        }
        ch->root = best;
        if (best < 0) {
                /* every branch ended where the tree was already shown, or looped
                 * back through a guess: nothing to blame with confidence */
                if (ch->n > 1)
                        ch->verdict = xasprintf("root: not determined: every path from tid %d loops back through a "
                                                "guessed hop or joins one shown above (see the tree)", ch->nodes[0].tid);
                return;
        }
        e = &ch->nodes[best];
        t = thread_of(ch, best);
        if (!t)
                return;
        if (e->end == DIAG_END_CYCLE) {
                FILE *f;
                size_t len = 0;
                f = open_memstream(&ch->verdict, &len);
                if (!f)
                        return;
                fprintf(f, "root: deadlock:");
                /* from the repeated thread's first appearance down to the repeat */
                {
                        int first = on_path(ch, e->parent, e->tid), chain[64], nc = 0;
                        for (int i = best; i >= 0 && nc < 64; i = ch->nodes[i].parent) {
                                chain[nc++] = i;
                                if (i == first)
                                        break;
                        }
                        for (int i = nc - 1; i > 0; i--) {
                                const struct diag_chain_node *a = &ch->nodes[chain[i]], *b = &ch->nodes[chain[i - 1]];
                                fprintf(f, "%s tid %d (pid %d %s) waits for %s held by tid %d", i == nc - 1 ? "" : ";",
                                        a->tid, a->pid, a->comm, b->via ? b->via : "?", b->tid);
                        }
                }
                fclose(f);
                return;
        }
        if (t->via && (t->via_kind == DIAG_WAIT_FILELOCK || t->via_kind == DIAG_WAIT_FUTEX))
                holds = xasprintf(" holds %s%s%s%s", t->via, t->blocked_ms >= 0 ? " and has been blocked for " : "",
                                  t->blocked_ms >= 0 ? diag_format_duration((uint64_t) t->blocked_ms, dur, sizeof dur) : "",
                                  t->blocked_ms >= 0 ? "," : "");
        switch (e->end) {
        case DIAG_END_REMOTE: {
                char peer[128] = "?";
                if (e->have_sock)
                        diag_sockaddr_format(&e->sock.remote, peer, sizeof peer);
                if (e->have_sock && e->sock.have_tcp_info)
                        ch->verdict = xasprintf("root: pid %d (%s) tid %d%s%s waiting in %s() on %s, which has sent nothing for %s "
                                                "(this end sent %" PRIu64 " bytes and received %" PRIu64 "; %u unsent, %u unacked)",
                                                t->pid, t->comm, t->tid, holds ? holds : "", holds ? "" : " is",
                                                t->syscall_name ? t->syscall_name : "?", peer,
                                                diag_format_duration(e->sock.tcp.last_data_recv_ms, d2, sizeof d2),
                                                e->sock.tcp.bytes_acked, e->sock.tcp.bytes_received,
                                                e->sock.wqueue, e->sock.tcp.unacked);
                else
                        ch->verdict = xasprintf("root: pid %d (%s) tid %d%s%s waiting in %s() on %s",
                                                t->pid, t->comm, t->tid, holds ? holds : "", holds ? "" : " is",
                                                t->syscall_name ? t->syscall_name : "?", peer);
                break;
        }
        case DIAG_END_DSTATE: {
                char buf[512] = "";
                if (t->have_fdname)
                        diag_fdname_format(&t->fdname, buf, sizeof buf);
                ch->verdict = xasprintf("root: pid %d (%s) tid %d%s%s in uninterruptible sleep in %s (disk, network file system or driver)%s%s%s%s",
                                        t->pid, t->comm, t->tid, holds ? holds : "", holds ? "" : " is",
                                        t->wchan[0] ? t->wchan : "the kernel",
                                        t->have_fdname ? ", in " : "", t->have_fdname ? (t->syscall_name ? t->syscall_name : "?") : "",
                                        t->have_fdname ? "() on " : "", buf);
                break;
        }
        case DIAG_END_CAPPED:
                ch->verdict = xasprintf("root: not reached: the walk stopped at pid %d (%s) tid %d in %s (%s); raise --depth or --fanout",
                                        t->pid, t->comm, t->tid, t->syscall_name ? t->syscall_name : "?",
                                        e->end_text ? e->end_text : "capped");
                break;
        case DIAG_END_IDLE:
                ch->verdict = xasprintf("root: pid %d (%s) tid %d%s is %s", t->pid, t->comm, t->tid, holds ? holds : "",
                                        e->end_text ? e->end_text : "idle");
                break;
        case DIAG_END_ONCPU:
                ch->verdict = xasprintf("root: pid %d (%s) tid %d%s%s running on a CPU: busy, not blocked",
                                        t->pid, t->comm, t->tid, holds ? holds : "", holds ? " and is" : " is");
                break;
        default:
                /* holds ends in a comma for the forms above that go on with a verb */
                if (holds && *holds && holds[strlen(holds) - 1] == ',')
                        holds[strlen(holds) - 1] = 0;
                ch->verdict = xasprintf("root: pid %d (%s) tid %d%s: %s", t->pid, t->comm, t->tid,
                                        holds ? holds : "", e->end_text ? e->end_text : diag_end_name(e->end));
                break;
        }
        free(holds);
        /* The root lies beyond a lock holder: name the holder too, it is what the
         * waiters at the start wait for. */
        {
                const struct diag_chain_node *l = NULL;
                for (int i = (int) (t - ch->nodes); i >= 0; i = ch->nodes[i].parent)
                        if (&ch->nodes[i] != t && ch->nodes[i].kind == DIAG_NODE_THREAD && ch->nodes[i].via &&
                            (ch->nodes[i].via_kind == DIAG_WAIT_FILELOCK || ch->nodes[i].via_kind == DIAG_WAIT_FUTEX)) {
                                l = &ch->nodes[i];
                                break;
                        }
                if (l && ch->verdict) {
                        char *v = xasprintf("%s; pid %d (%s) tid %d holds %s and waits for it in %s()%s%s", ch->verdict,
                                            l->pid, l->comm, l->tid, l->via, l->syscall_name ? l->syscall_name : "?",
                                            l->blocked_ms >= 0 ? ", blocked for " : "",
                                            l->blocked_ms >= 0 ? diag_format_duration((uint64_t) l->blocked_ms, dur, sizeof dur) : "");
                        if (v) {
                                free(ch->verdict);
                                ch->verdict = v;
                        }
                }
        }
}

int diag_chain_walk(struct diag_chain_ctx *c, pid_t pid, pid_t tid, const struct diag_chain_opts *o,
                    struct diag_chain *ret) {
        struct diag_chain_opts dflt = {};
        struct walk_ctx w = { .c = c, .ch = ret, .o = o ? o : &dflt };
        int idx;

        memset(ret, 0, sizeof *ret);
        ret->root = -1;
        idx = add_node(ret, -1, DIAG_NODE_THREAD, DIAG_WAIT_FUTEX, NULL);
        if (idx < 0)
                return idx;
        fill_thread(&w, idx, pid, tid);
        if (ret->nodes[idx].end == DIAG_END_GONE) {
                free(w.sc);
                diag_chain_clear(ret);
                return -ESRCH;
        }
        walk_thread(&w, idx);
        free(w.sc);
        verdict(ret);
        return 0;
}

void diag_chain_clear(struct diag_chain *ch) {
        for (size_t i = 0; i < ch->n; i++) {
                free(ch->nodes[i].via);
                free(ch->nodes[i].end_text);
                free(ch->nodes[i].kstack);
                if (ch->nodes[i].have_fdname)
                        diag_fdname_done(&ch->nodes[i].fdname);
                free(ch->nodes[i].sock_text);
        }
        free(ch->nodes);
        free(ch->verdict);
        memset(ch, 0, sizeof *ch);
        ch->root = -1;
}
