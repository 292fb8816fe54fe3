/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wait.c: BLOCKED, WAIT and PSS for the rows on screen.
 *
 * BLOCKED reads each thread's stat and sched (off-CPU time) of the row's
 * processes. WAIT follows the chain (libdiag's chain walk: /proc, sock_diag and
 * the lock words' memory; never ptrace, never a signal) from the process's most
 * telling blocked thread and says it in one line. The walk needs a scan of every
 * process's fds and sockets, the expensive part: its answer is cached per
 * (pid, start, tid, the thread's /proc syscall line) and the scan is made again
 * only for rows whose waiting thread's call changed or whose answer is older
 * than max_age_ms, at most once per quarter of max_age_ms, and only for threads
 * blocked for a second or more. A thread in D state, or in a call that waits
 * for nothing another process holds (a sleep, pause, a child), gets its answer
 * without it.
 *
 * On the live screen (opts.background) the scan and the walks run on a thread
 * of their own: a fill posts the rows it needs walked and draws what the cache
 * has; the thread's answers go into the cache at the next fill, and top_wait_fd
 * wakes the screen to make that fill at once. A refresh (or a key) never waits
 * for a scan. Batch frames walk in the fill itself, so that every frame says
 * what its rows wait for. The thread shares nothing with the rest but the queue
 * under w->mu: rows' strings are made by it and owned by the cache once taken.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "diag/chain.h"
#include "diag/fdname.h"
#include "diag/proc.h"
#include "diag/syscall.h"
#include "diag/util.h"
#include "top.h"

#define STUCK_MS 5000                   /* a chain blocked this long at a dead end is stuck */
#define MAX_THREADS 4096                /* threads read per process */
#define WAIT_MAX 200                    /* bytes of a WAIT line */
/* A thread blocked for less than this is not walked: it comes and goes with
 * the work (a shell reading a pipe, a build), and each walk of a new call
 * would need the scan again. A stuck thread passes this by the next refresh. */
#define MIN_WALK_MS 1000

/* What a row's threads do, as read now. */
struct thr {
        pid_t pid, tid;
        int64_t start;
        char state;
        int64_t off_ms;                 /* -1 unknown */
        bool have_sc;
        struct diag_syscall_state sc;
        enum diag_sc_class cls;
        char line[128];
};

/* A thread as last read. One that has not run since (the same time on CPU in
 * schedstat) is in the same state and the same call: only its off-CPU time has
 * grown, by the time since. A full read at least every REUSE_MAX+1 fills keeps
 * that time from drifting (CPUs' scheduler clocks leave out IRQ and steal time). */
#define REUSE_MAX 9
struct tcached {
        pid_t tid;                      /* 0: empty slot */
        bool with_sc;                   /* t.line and t.sc were read */
        uint8_t reuses;
        uint64_t run_ns;                /* schedstat's first field */
        uint64_t read_ns;               /* CLOCK_MONOTONIC when t was read */
        uint64_t seen;                  /* the fill that last looked it up */
        struct thr t;
};

/* A rendered WAIT, kept while the thread stays in the same call. */
struct wentry {
        pid_t pid, tid;
        int64_t start;
        char line[128];                 /* the thread's /proc syscall line, as read */
        char *wait;                     /* NULL: nothing to say */
        uint64_t stuck;                 /* the root of a chain that ends where it cannot go on, else 0 */
        bool deadlock;                  /* stuck whatever the time */
        uint64_t made_ns;               /* CLOCK_MONOTONIC when walked */
        uint64_t used;                  /* the fill that last used it */
};

struct top_wait {
        struct top_wait_opts o;
        struct wentry *e;
        size_t n, alloc;
        /* WAIT strings replaced or dropped: rows of the fill before may still
         * point to them, freed one fill later */
        char **old, **older;
        size_t nold, aold, nolder, aolder;
        uint64_t fill;                  /* fills so far */
        struct tcached *tc;             /* threads as last read, open addressing by tid */
        size_t tc_cap, tc_n;
        uint64_t tc_hits, tc_reads;     /* lookups answered from it / read in full */
        uint64_t scans;                 /* chain scans made */
        uint64_t last_scan_ns;          /* CLOCK_MONOTONIC of the last one */
        uint64_t last_us;
        /* the walking thread (opts.background) */
        pthread_t th;
        bool th_started;
        int efd;                        /* eventfd: answers are waiting; -1 none */
        pthread_mutex_t mu;
        pthread_cond_t cv;
        /* under mu */
        struct thr *req;                /* posted, not yet taken; NULL none */
        size_t nreq;
        bool busy;                      /* a batch posted or being walked */
        bool quit;
        struct answer *ans;             /* walked, not yet taken by a fill */
        size_t nans, aans;
        uint64_t walk_us, walk_batches; /* the last batch's time (scan + walks), batches done */
};

/* What a walk of one thread said. */
struct answer {
        struct thr t;
        bool ok;                        /* walked (else: gone or unreadable, nothing to say) */
        char *wait;
        uint64_t stuck;
        bool deadlock;
};

struct pick {
        int64_t blocked_ms;             /* the longest, -1 none */
        char blocked_state;
        bool any_d;
        bool have_best;
        struct thr best;                /* the thread WAIT follows */
};

static int walker_start(struct top_wait *w);

int top_wait_new(struct top_wait **ret, const struct top_wait_opts *o) {
        struct top_wait *w = calloc(1, sizeof *w);

        if (!w)
                return -ENOMEM;
        if (o)
                w->o = *o;
        else
                w->o.chains = true;
        if (!w->o.max_age_ms)
                w->o.max_age_ms = 10000;
        w->efd = -1;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        /* without the thread, fills walk for themselves */
        if (w->o.background && w->o.chains)
                (void) walker_start(w);
        *ret = w;
        return 0;
}

static void strv_drop(char **v, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                free(v[i]);
        *n = 0;
}

static void answers_drop(struct answer *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(a[i].wait);
}

void top_wait_free(struct top_wait *w) {
        if (!w)
                return;
        if (w->th_started) {
                /* it ends after the walk it is in (a scan is not cut short) */
                pthread_mutex_lock(&w->mu);
                w->quit = true;
                pthread_cond_signal(&w->cv);
                pthread_mutex_unlock(&w->mu);
                pthread_join(w->th, NULL);
        }
        free(w->req);
        answers_drop(w->ans, w->nans);
        free(w->ans);
        if (w->efd >= 0)
                close(w->efd);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w->tc);
        for (size_t i = 0; i < w->n; i++)
                free(w->e[i].wait);
        free(w->e);
        strv_drop(w->old, &w->nold);
        strv_drop(w->older, &w->nolder);
        free(w->old);
        free(w->older);
        free(w);
}

uint64_t top_wait_last_us(const struct top_wait *w) {
        return w ? w->last_us : 0;
}

uint64_t top_wait_scans(const struct top_wait *w) {
        return w ? w->scans : 0;
}

uint64_t top_wait_thread_hits(const struct top_wait *w, uint64_t *ret_reads) {
        *ret_reads = w ? w->tc_reads : 0;
        return w ? w->tc_hits : 0;
}

uint64_t top_wait_walk_us(struct top_wait *w, uint64_t *ret_batches) {
        uint64_t us, b;

        if (!w)
                return *ret_batches = 0, 0;
        pthread_mutex_lock(&w->mu);
        us = w->walk_us;
        b = w->walk_batches;
        pthread_mutex_unlock(&w->mu);
        *ret_batches = b;
        return us;
}

int top_wait_fd(const struct top_wait *w) {
        return w ? w->efd : -1;
}

bool top_wait_answers(struct top_wait *w) {
        uint64_t v;
        bool any;

        if (!w || w->efd < 0)
                return false;
        (void) !read(w->efd, &v, sizeof v);
        pthread_mutex_lock(&w->mu);
        any = w->nans > 0;
        pthread_mutex_unlock(&w->mu);
        return any;
}

/* A string rows may still point to: freed after the next fill. */
static void retire(struct top_wait *w, char *s) {
        if (!s)
                return;
        if (DIAG_GROW(w->old, w->aold, w->nold + 1) < 0) {
                /* cannot keep it: leak rather than leave a row pointing to freed memory */
                return;
        }
        w->old[w->nold++] = s;
}

static void fill_begin(struct top_wait *w) {
        char **t;
        size_t a;

        w->fill++;
        strv_drop(w->older, &w->nolder);
        t = w->older, w->older = w->old, w->old = t;
        a = w->aolder, w->aolder = w->aold, w->aold = a;
        w->nolder = w->nold;
        w->nold = 0;
}

/* ---- threads ---- */

static bool same_group(const struct top_proc *a, const struct top_proc *b) {
        const char *x = a->cmd ? a->cmd : "", *y = b->cmd ? b->cmd : "";

        if (x != y && strcmp(x, y) != 0)
                return false;
        if (*x)
                return true;
        /* kernel threads fold by name */
        return a->comm == b->comm || (a->comm && b->comm && strcmp(a->comm, b->comm) == 0);
}

/* The raw syscall line of a thread (its first line, without the newline). */
static int read_syscall_line(pid_t pid, pid_t tid, char *buf, size_t size) {
        char path[64];
        ssize_t n;

        snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
        n = diag_read_small_at(AT_FDCWD, path, buf, size);
        if (n < 0)
                return (int) n;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

/* Follow-worthy: a call whose other end the chain walk can find. */
static bool followed_class(enum diag_sc_class c) {
        switch (c) {
        case DIAG_SCC_FUTEX: case DIAG_SCC_FD_READ: case DIAG_SCC_FD_WRITE: case DIAG_SCC_POLL:
        case DIAG_SCC_EPOLL: case DIAG_SCC_ACCEPT: case DIAG_SCC_CONNECT: case DIAG_SCC_FLOCK:
        case DIAG_SCC_FCNTL_LOCK:
                return true;
        default:
                return false;
        }
}

/* Is t a better thread to follow than the one picked so far? A D thread first
 * (the longest in D), then the longest blocked in a call the walk follows, then
 * any other blocked thread (its WAIT needs no scan). */
static int thread_rank(const struct thr *t) {
        if (t->state == 'D')
                return 3;
        if (t->have_sc && t->sc.kind == DIAG_SC_IN && followed_class(t->cls))
                return 2;
        return 1;
}

static void consider(struct pick *pk, const struct thr *t) {
        int r = thread_rank(t), br = pk->have_best ? thread_rank(&pk->best) : 0;

        if (r > br || (r == br && t->off_ms > pk->best.off_ms)) {
                pk->best = *t;
                pk->have_best = true;
        }
}

/* ---- threads as last read ---- */

static size_t tc_slot(const struct tcached *v, size_t cap, pid_t tid) {
        size_t i = ((size_t) (uint32_t) tid * 2654435761u) & (cap - 1);

        while (v[i].tid && v[i].tid != tid)
                i = (i + 1) & (cap - 1);
        return i;
}

/* Rebuild the table with room for more, keeping the threads looked up in the
 * last two fills. -ENOMEM leaves it as it was. */
static int tc_rehash(struct top_wait *w, size_t want) {
        size_t cap = 64, n = 0;
        struct tcached *v;

        for (size_t i = 0; i < w->tc_cap; i++)
                if (w->tc[i].tid && w->tc[i].seen + 2 >= w->fill)
                        want++;
        while (cap < 2 * want)
                cap *= 2;
        v = calloc(cap, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < w->tc_cap; i++)
                if (w->tc[i].tid && w->tc[i].seen + 2 >= w->fill) {
                        v[tc_slot(v, cap, w->tc[i].tid)] = w->tc[i];
                        n++;
                }
        free(w->tc);
        w->tc = v;
        w->tc_cap = cap;
        w->tc_n = n;
        return 0;
}

static struct tcached *tc_find(struct top_wait *w, pid_t tid) {
        struct tcached *c;

        if (!w->tc_cap)
                return NULL;
        c = &w->tc[tc_slot(w->tc, w->tc_cap, tid)];
        return c->tid ? c : NULL;
}

static struct tcached *tc_add(struct top_wait *w, pid_t tid) {
        struct tcached *c;

        if ((w->tc_n + 1) * 2 > w->tc_cap && tc_rehash(w, w->tc_n + 1) < 0)
                return NULL;
        c = &w->tc[tc_slot(w->tc, w->tc_cap, tid)];
        if (!c->tid)
                w->tc_n++;
        *c = (struct tcached) { .tid = tid };
        return c;
}

/* One thread in full: state, off-CPU time (S and D), the system call (want_sc). */
static void read_thread(struct thr *t, bool want_sc) {
        int cpu;

        if (diag_task_read_state_cpu(t->pid, t->tid, &t->state, &cpu) < 0) {
                t->state = 0;
                return;
        }
        if (t->state != 'S' && t->state != 'D')
                return;
        if (diag_task_offcpu_ms_on(t->pid, t->tid, cpu, &t->off_ms) < 0)
                t->off_ms = -1;
        if (want_sc && read_syscall_line(t->pid, t->tid, t->line, sizeof t->line) == 0 &&
            diag_syscall_parse_proc(t->line, &t->sc) == 0) {
                t->have_sc = true;
                t->cls = t->sc.kind == DIAG_SC_IN ? diag_syscall_class(diag_arch_native(), &t->sc) : DIAG_SCC_OTHER;
        }
}

/* A thread now: from the cache when it has not run since it was read there,
 * else read in full (and kept). */
static void get_thread(struct top_wait *w, struct thr *t, bool want_sc) {
        uint64_t run = 0, now = diag_now_ns(CLOCK_MONOTONIC);
        struct tcached *c = tc_find(w, t->tid);

        /* unknown (no schedstat, or gone): 0, and read in full */
        (void) diag_task_read_schedstat_ns(t->pid, t->tid, &run);

        if (c && run && c->run_ns == run && c->t.pid == t->pid && c->t.start == t->start &&
            (c->with_sc || !want_sc) && c->reuses < REUSE_MAX) {
                *t = c->t;
                if (t->off_ms >= 0)
                        t->off_ms += (int64_t) ((now - c->read_ns) / 1000000);
                c->seen = w->fill;
                c->reuses++;
                w->tc_hits++;
                return;
        }
        read_thread(t, want_sc);
        w->tc_reads++;
        if (!run || !t->state || !(c = c ? c : tc_add(w, t->tid)))
                return;
        *c = (struct tcached) { .tid = t->tid, .with_sc = want_sc, .run_ns = run, .read_ns = now, .seen = w->fill,
                                .t = *t };
}

/* Read the threads of one process into pk: state and off-CPU time (and the
 * system call when want_sc). Nothing is stopped: stat, sched, schedstat and
 * syscall are plain reads. */
static void read_proc_threads(struct top_wait *w, const struct top_proc *p, bool want_sc, struct pick *pk) {
        char path[48];
        DIR *d;
        struct dirent *de;
        unsigned n = 0;

        snprintf(path, sizeof path, "/proc/%d/task", p->pid);
        d = opendir(path);
        if (!d)
                return;
        while ((de = readdir(d)) && n < MAX_THREADS) {
                struct thr t = { .pid = p->pid, .start = p->start, .off_ms = -1 };

                if (diag_parse_pid(de->d_name, &t.tid) < 0)
                        continue;
                n++;
                get_thread(w, &t, want_sc);
                if (t.state != 'S' && t.state != 'D')
                        continue;
                if (t.off_ms > pk->blocked_ms || (t.off_ms == pk->blocked_ms && t.state == 'D') || !pk->blocked_state) {
                        pk->blocked_ms = t.off_ms;
                        pk->blocked_state = t.state;
                }
                if (t.state == 'D')
                        pk->any_d = true;
                if (want_sc)
                        consider(pk, &t);
        }
        closedir(d);
}

/* ---- one line from a chain ---- */

struct line {
        char s[WAIT_MAX];
        size_t len;
};

static void add(struct line *l, const char *fmt, ...) _printf_(2, 3);
static void add(struct line *l, const char *fmt, ...) {
        va_list ap;
        int r;

        if (l->len >= sizeof l->s - 1)
                return;
        va_start(ap, fmt);
        r = vsnprintf(l->s + l->len, sizeof l->s - l->len, fmt, ap);
        va_end(ap);
        if (r > 0)
                l->len = MIN(l->len + (size_t) r, sizeof l->s - 1);
        if (l->len == sizeof l->s - 1)
                memcpy(l->s + sizeof l->s - 4, "...", 4);      /* cut: say so */
}

static const char *arrow(const struct top_wait *w) {
        return w->o.ascii ? "<-" : "\u2190";
}

/* The short name of what a hop waits on: "flock sess_42", "futex mutex m",
 * "tcp 127.0.0.1:9400", "pipe", "child 1234". */
static void resource(const struct diag_chain_node *x, char *buf, size_t size) {
        const char *v = x->via ? x->via : "";

        switch (x->via_kind) {
        case DIAG_WAIT_FUTEX: {
                size_t vl = strlen(v);
                if (vl >= 2 && strcmp(v + vl - 2, " ?") == 0)
                        vl -= 2;
                if (strncmp(v, "futex", 5) == 0)
                        snprintf(buf, size, "%.*s", (int) vl, v);
                else
                        snprintf(buf, size, "futex %.*s", (int) vl, v);
                return;
        }
        case DIAG_WAIT_FILELOCK: {
                /* "FLOCK WRITE /dir/file[, ...]" */
                char kind[16] = "";
                const char *path = strchr(v, ' '), *base, *end;
                size_t i;
                for (i = 0; v[i] && v[i] != ' ' && i < sizeof kind - 1; i++)
                        kind[i] = (char) (v[i] >= 'A' && v[i] <= 'Z' ? v[i] - 'A' + 'a' : v[i]);
                kind[i] = 0;
                path = path ? strchr(path + 1, ' ') : NULL;
                path = path ? path + 1 : "?";
                end = strstr(path, ", ");
                end = end ? end : path + strlen(path);
                base = path;
                for (const char *p = path; p < end; p++)
                        if (*p == '/' && p + 1 < end)
                                base = p + 1;
                snprintf(buf, size, "%s %.*s%s", kind, (int) (end - base), base, strstr(v, "inferred") ? "?" : "");
                return;
        }
        case DIAG_WAIT_CHILD:
                snprintf(buf, size, "child %d", x->pid);
                return;
        default:
                break;
        }
        if (x->kind == DIAG_NODE_ENDPOINT && x->have_sock && x->sock.family != AF_UNIX) {
                char a[128];
                diag_sockaddr_format(x->sock.state == 10 ? &x->sock.local : &x->sock.remote, a, sizeof a);
                snprintf(buf, size, "%s %s", diag_sock_proto_name(&x->sock), a);
                return;
        }
        /* "fd 7: tcp A -> B ESTABLISHED, other end fd 4 of pid 9 (x)", "fd 3: pipe:[12]" */
        if (strncmp(v, "fd ", 3) == 0 && strstr(v, ": "))
                v = strstr(v, ": ") + 2;
        {
                const char *to = strstr(v, " -> "), *cut = strstr(v, ", other end");
                size_t vl = cut ? (size_t) (cut - v) : strlen(v);
                if (to && (!cut || to < cut)) {
                        size_t pl = strcspn(v, " ");
                        snprintf(buf, size, "%.*s %.*s", (int) pl, v, (int) strcspn(to + 4, " ,"), to + 4);
                } else if (strncmp(v, "pipe:", 5) == 0)
                        snprintf(buf, size, "pipe");
                else if (strncmp(v, "unix (unnamed)", 14) == 0)
                        snprintf(buf, size, "unix");
                else
                        snprintf(buf, size, "%.*s", (int) MIN(vl, (size_t) 60), v);
        }
}

/* What the start thread does, before the resource: "recv", "poll"; "" for locks. */
static const char *verb0(const struct diag_chain_node *n) {
        const char *s = n->syscall_name ? n->syscall_name : "";

        switch (n->cls) {
        case DIAG_SCC_FD_READ: return strncmp(s, "recv", 4) == 0 ? "recv" : "read";
        case DIAG_SCC_FD_WRITE: return strncmp(s, "send", 4) == 0 ? "send" : "write";
        case DIAG_SCC_POLL: return strstr(s, "select") ? "select" : "poll";
        case DIAG_SCC_EPOLL: return "epoll";
        case DIAG_SCC_ACCEPT: return "accept";
        case DIAG_SCC_CONNECT: return "connect";
        case DIAG_SCC_WAIT_CHILD: return "wait";
        default: return "";
        }
}

/* The same said of a holder further on: ", which polls tcp ...". */
static const char *verb3(const struct diag_chain_node *n) {
        switch (n->cls) {
        case DIAG_SCC_FD_READ: return "reads";
        case DIAG_SCC_FD_WRITE: return "writes";
        case DIAG_SCC_POLL: case DIAG_SCC_EPOLL: return "polls";
        case DIAG_SCC_ACCEPT: return "accepts on";
        case DIAG_SCC_CONNECT: return "connects to";
        default: return "waits for";
        }
}

static void who(const struct diag_chain_node *start, const struct diag_chain_node *x, struct line *l) {
        /* a lock word is held by a thread, a file lock or an fd by a process */
        if (x->via_kind == DIAG_WAIT_FUTEX && x->tid && (x->pid == start->pid || x->tid != x->pid))
                add(l, "tid %d", x->tid);
        else
                add(l, "%d", x->pid);
}

#define STUCK_KEY(end, id) (((uint64_t) (end) << 32) | (uint32_t) (id))

/* Is a chain worth a WAIT: it crosses to another thread, or ends where the
 * thread cannot go on by itself (as diag-chain --all keeps chains). */
static bool chain_says(const struct diag_chain *ch) {
        const struct diag_chain_node *r;

        for (size_t i = 1; i < ch->n; i++)
                if (ch->nodes[i].kind == DIAG_NODE_THREAD)
                        return true;
        if (ch->root < 0)
                return false;
        r = &ch->nodes[ch->root];
        switch (r->end) {
        case DIAG_END_CYCLE: case DIAG_END_REMOTE: case DIAG_END_DSTATE: case DIAG_END_NO_PEER:
                return true;
        case DIAG_END_NO_OWNER:
                return r->end_text && strstr(r->end_text, "exited holding");
        default:
                return false;
        }
}

/* The tail of a line at the chain's root. */
static void say_end(const struct top_wait *w, const struct diag_chain *ch, int idx, struct line *l) {
        const struct diag_chain_node *r = &ch->nodes[idx], *s = &ch->nodes[0];
        char d[DIAG_DURATION_MAX];

        switch (r->end) {
        case DIAG_END_REMOTE: {
                int64_t ms = r->have_sock && r->sock.have_tcp_info ? (int64_t) r->sock.tcp.last_data_recv_ms : s->blocked_ms;
                if (ms >= 0)
                        add(l, " (remote, %s)", diag_format_duration((uint64_t) ms, d, sizeof d));
                else
                        add(l, " (remote)");
                return;
        }
        case DIAG_END_NO_PEER:
                add(l, " (%s)", r->end_text && strncmp(r->end_text, "never accepted", 14) == 0 ? "never accepted" : "no peer");
                return;
        case DIAG_END_DSTATE:
                add(l, ", which is in D: %s", r->wchan[0] ? r->wchan : "?");
                return;
        case DIAG_END_SLEEP:
                if (idx > 0)
                        add(l, ", which sleeps");
                return;
        case DIAG_END_ONCPU:
                add(l, ", which runs");
                return;
        case DIAG_END_IDLE:
                add(l, ", idle in %s", r->syscall_name ? r->syscall_name : "poll");
                return;
        case DIAG_END_NO_OWNER:
                add(l, idx > 0 ? ", which waits on a futex (no owner)" : " (%s)",
                    r->end_text && strstr(r->end_text, "exited holding") ? "owner exited" : "no owner");
                return;
        case DIAG_END_CYCLE:
                add(l, " (deadlock)");
                return;
        case DIAG_END_CAPPED:
                add(l, " ...");
                return;
        case DIAG_END_OTHER:
                if (r->kind == DIAG_NODE_THREAD && idx > 0 && r->syscall_name)
                        add(l, ", which is in %s", r->syscall_name);
                return;
        case DIAG_END_GONE:
                add(l, " (gone)");
                return;
        default:
                (void) w;
                return;
        }
}

/* "flock sess_42 <- held by 2433, which polls tcp 127.0.0.1:9400 (remote, 12s)". */
static void render(const struct top_wait *w, const struct diag_chain *ch, struct line *l) {
        int path[64], np = 0;
        const struct diag_chain_node *s = &ch->nodes[0];

        for (int i = ch->root; i >= 0 && np < (int) ELEMENTSOF(path); i = ch->nodes[i].parent)
                path[np++] = i;
        /* path[np-1] is the start */
        for (int k = np - 1; k >= 0; k--) {
                const struct diag_chain_node *n = &ch->nodes[path[k]];
                bool first = k == np - 1;
                char res[160];

                if (n->kind != DIAG_NODE_THREAD) {
                        say_end(w, ch, path[k], l);
                        break;
                }
                if (!first && n->via_kind != DIAG_WAIT_CHILD) {
                        add(l, " %s %s", arrow(w), n->via_kind == DIAG_WAIT_FUTEX || n->via_kind == DIAG_WAIT_FILELOCK ?
                            "held by " : "");
                        who(s, n, l);
                }
                if (k == 0) {
                        if (first) {
                                const char *v = verb0(n);
                                add(l, "%s", *v ? v : n->cls == DIAG_SCC_FUTEX ? "futex" :
                                    n->syscall_name ? n->syscall_name : "?");
                        }
                        say_end(w, ch, path[k], l);
                        break;
                }
                resource(&ch->nodes[path[k - 1]], res, sizeof res);
                if (first) {
                        const char *v = verb0(n);
                        add(l, "%s%s%s", v, *v ? " " : "", res);
                } else
                        add(l, ", which %s %s", verb3(n), res);
        }
}

/* The key of the root of a chain that cannot go on by itself (0: none): a
 * deadlock by its lowest tid, so that each of its threads' rows counts it once.
 * Stuck is a deadlock, or such a chain blocked STUCK_MS or more (told at each
 * fill: the answer is cached); so is a wait behind another thread that is itself
 * blocked (not idle in an event loop that owes no reply), counted by that thread. */
static uint64_t stuck_key(const struct diag_chain *ch) {
        const struct diag_chain_node *r, *t;

        if (ch->root < 0)
                return 0;
        r = &ch->nodes[ch->root];
        if (r->end == DIAG_END_CYCLE) {
                pid_t lo = r->tid;
                for (int i = r->parent; i >= 0; i = ch->nodes[i].parent) {
                        if (ch->nodes[i].kind == DIAG_NODE_THREAD && ch->nodes[i].tid < lo)
                                lo = ch->nodes[i].tid;
                        if (ch->nodes[i].tid == r->tid)
                                break;
                }
                return STUCK_KEY(DIAG_END_CYCLE, lo);
        }
        t = r;
        while (t->kind != DIAG_NODE_THREAD && t->parent >= 0)
                t = &ch->nodes[t->parent];
        switch (r->end) {
        case DIAG_END_REMOTE: case DIAG_END_DSTATE: case DIAG_END_NO_PEER: case DIAG_END_NO_OWNER:
                return STUCK_KEY(r->end, t->tid);
        case DIAG_END_IDLE: case DIAG_END_NOT_BLOCKED: case DIAG_END_GONE:
                return 0;
        default:
                /* waiting on another thread that waits itself (a lock holder polling a
                 * backend that never answers): stuck behind that one */
                return r->depth > 0 ? STUCK_KEY(r->end, t->tid) : 0;
        }
}

/* ---- walking: one scan, then each thread's chain ---- */

static bool quitting(struct top_wait *w) {
        bool q;

        pthread_mutex_lock(&w->mu);
        q = w->quit;
        pthread_mutex_unlock(&w->mu);
        return q;
}

/* Walk the chains of t[0..n) with one scan; what each said in out[0..n). On the
 * walking thread (bg) it stops early when told to quit. */
static void walk_batch(struct top_wait *w, const struct thr *t, size_t n, struct answer *out, bool bg) {
        struct diag_chain_ctx *ctx = NULL;

        for (size_t k = 0; k < n; k++)
                out[k] = (struct answer) { .t = t[k] };
        /* the scan of every process's fds and sockets, once for all the walks */
        if (diag_chain_ctx_new(0, &ctx) < 0)
                return;
        for (size_t k = 0; k < n && !(bg && quitting(w)); k++) {
                struct diag_chain ch;
                struct line l = {};

                if (diag_chain_walk(ctx, t[k].pid, t[k].tid, NULL, &ch) < 0)
                        continue;
                out[k].ok = true;
                if (ch.n && chain_says(&ch)) {
                        render(w, &ch, &l);
                        out[k].wait = l.len ? strdup(l.s) : NULL;
                        out[k].stuck = stuck_key(&ch);
                }
                out[k].deadlock = ch.deadlock;
                diag_chain_clear(&ch);
        }
        diag_chain_ctx_free(ctx);
}

static void *walker(void *arg) {
        struct top_wait *w = arg;

        pthread_mutex_lock(&w->mu);
        for (;;) {
                struct thr *req;
                struct answer *out;
                size_t n;
                uint64_t t0;

                while (!w->quit && !w->req)
                        pthread_cond_wait(&w->cv, &w->mu);
                if (w->quit)
                        break;
                req = w->req, n = w->nreq;
                w->req = NULL, w->nreq = 0;
                pthread_mutex_unlock(&w->mu);

                t0 = diag_now_ns(CLOCK_MONOTONIC);
                out = calloc(n, sizeof *out);
                if (out)
                        walk_batch(w, req, n, out, true);
                free(req);

                pthread_mutex_lock(&w->mu);
                if (out && DIAG_GROW(w->ans, w->aans, w->nans + n) >= 0) {
                        memcpy(w->ans + w->nans, out, n * sizeof *out);
                        w->nans += n;
                } else if (out)
                        answers_drop(out, n);
                free(out);
                w->busy = false;
                w->walk_us = (diag_now_ns(CLOCK_MONOTONIC) - t0) / 1000;
                w->walk_batches++;
                if (w->efd >= 0) {
                        uint64_t one = 1;
                        (void) !write(w->efd, &one, sizeof one);
                }
        }
        pthread_mutex_unlock(&w->mu);
        return NULL;
}

/* The walking thread, with every signal blocked: they are the main thread's (its
 * poll() must return for SIGINT, SIGHUP, SIGTERM and SIGWINCH). */
static int walker_start(struct top_wait *w) {
        sigset_t all, old;
        int r;

        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0)
                return -errno;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&w->th, NULL, walker, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
                close(w->efd);
                w->efd = -1;
                return -r;
        }
        w->th_started = true;
        return 0;
}

/* Hand the idle thread a batch (walker_busy() said false: only this thread sets
 * busy); it owns t from here. */
static void walker_post(struct top_wait *w, struct thr *t, size_t n) {
        pthread_mutex_lock(&w->mu);
        w->req = t, w->nreq = n;
        w->busy = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
}

static bool walker_busy(struct top_wait *w) {
        bool b;

        if (!w->th_started)
                return false;
        pthread_mutex_lock(&w->mu);
        b = w->busy;
        pthread_mutex_unlock(&w->mu);
        return b;
}

/* A thread in D state: what the kernel waits in and on which file, without the
 * scan: "D: nfs_wait_bit_killable (read /mnt/x)". */
static char *render_dstate(const struct thr *t) {
        char wchan[64] = "", what[256] = "";
        const char *name = t->have_sc && t->sc.kind == DIAG_SC_IN ? diag_syscall_name(diag_arch_native(), t->sc.nr) : NULL;
        int fd = t->have_sc && t->sc.kind == DIAG_SC_IN ? diag_fdname_syscall_fd(diag_arch_native(), &t->sc) : -1;
        struct diag_fdname fn;
        char *s = NULL;

        (void) diag_task_read_wchan(t->pid, t->tid, wchan, sizeof wchan);
        if (fd >= 0 && diag_fdname_read(t->pid, fd, NULL, &fn) >= 0) {
                snprintf(what, sizeof what, " (%s %.200s)", name ? name : "?", fn.link ? fn.link : "?");
                diag_fdname_done(&fn);
        } else if (name)
                snprintf(what, sizeof what, " (in %s)", name);
        if (asprintf(&s, "D: %s%s", wchan[0] ? wchan : "?", what) < 0)
                return NULL;
        return s;
}

/* ---- filling rows ---- */

static int64_t read_pss(pid_t pid) {
        char path[48], buf[4096];
        unsigned long long kb;

        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || diag_status_field(buf, "Pss", 10, &kb) < 0)
                return DIAG_REC_NA;
        return (int64_t) kb * 1024;
}

/* BLOCKED of a row (and, with want_sc, the thread WAIT follows; with pss, the
 * group's PSS): each member's threads. */
static void read_row(struct top_wait *w, const struct top_frame *f, struct top_row *r, bool want_sc, bool pss,
                     struct pick *pk) {
        size_t nmem = 0;

        *pk = (struct pick) { .blocked_ms = -1 };
        if (pss && r->count > 1)
                r->pss = DIAG_REC_NA;
        for (size_t i = 0; i < (r->count > 1 ? f->nprocs : 1); i++) {
                const struct top_proc *p = r->count > 1 ? &f->procs[i] : r->p;
                struct pick m = { .blocked_ms = -1 };

                if (r->count > 1 && !same_group(p, r->p))
                        continue;
                nmem++;
                read_proc_threads(w, p, want_sc, &m);
                if (m.blocked_state && (m.blocked_ms > pk->blocked_ms || !pk->blocked_state)) {
                        pk->blocked_ms = m.blocked_ms;
                        pk->blocked_state = m.blocked_state;
                }
                pk->any_d = pk->any_d || m.any_d;
                if (m.have_best)
                        consider(pk, &m.best);
                /* smaps_rollup takes the target's mmap lock: not of a process with
                 * a thread in D, which may hold it for ever */
                if (pss && r->count > 1 && !m.any_d) {
                        int64_t v = read_pss(p->pid);
                        if (v != DIAG_REC_NA)
                                r->pss = (r->pss == DIAG_REC_NA ? 0 : r->pss) + v;
                }
        }
        r->blocked_ms = pk->blocked_ms;
        r->blocked_state = pk->any_d ? 'D' : pk->blocked_state;
        (void) nmem;
}

static struct wentry *entry_find(struct top_wait *w, pid_t pid, int64_t start) {
        for (size_t i = 0; i < w->n; i++)
                if (w->e[i].pid == pid && w->e[i].start == start)
                        return &w->e[i];
        return NULL;
}

static struct wentry *entry_get(struct top_wait *w, const struct thr *t) {
        struct wentry *e = entry_find(w, t->pid, t->start);

        if (e)
                return e;
        if (DIAG_GROW(w->e, w->alloc, w->n + 1) < 0)
                return NULL;
        e = &w->e[w->n++];
        *e = (struct wentry) { .pid = t->pid, .start = t->start };
        return e;
}

static void entry_set(struct top_wait *w, struct wentry *e, const struct thr *t, char *wait, uint64_t stuck) {
        retire(w, e->wait);
        e->tid = t->tid;
        snprintf(e->line, sizeof e->line, "%s", t->line);
        e->wait = wait;
        e->stuck = stuck;
        e->deadlock = false;
        e->made_ns = diag_now_ns(CLOCK_MONOTONIC);
}

static bool entry_fresh(const struct top_wait *w, const struct wentry *e, const struct thr *t, uint64_t now) {
        return e->made_ns && e->tid == t->tid && strcmp(e->line, t->line) == 0 &&
               now - e->made_ns < (uint64_t) w->o.max_age_ms * 1000000ULL;
}

/* Entries no row used in the last two fills go. */
static void entries_prune(struct top_wait *w) {
        size_t k = 0;

        for (size_t i = 0; i < w->n; i++) {
                if (w->e[i].used + 2 < w->fill) {
                        retire(w, w->e[i].wait);
                        continue;
                }
                w->e[k++] = w->e[i];
        }
        w->n = k;
}

/* Walked answers into the cache (those of entries pruned meanwhile go). */
static void apply(struct top_wait *w, struct answer *a, size_t n) {
        for (size_t k = 0; k < n; k++) {
                struct wentry *e = a[k].ok ? entry_find(w, a[k].t.pid, a[k].t.start) : NULL;

                if (!e) {
                        free(a[k].wait);
                        continue;
                }
                entry_set(w, e, &a[k].t, a[k].wait, a[k].stuck);
                e->deadlock = a[k].deadlock;
        }
}

/* What the walking thread has answered since the last fill. */
static void collect(struct top_wait *w) {
        struct answer *a;
        size_t n;

        if (!w->th_started)
                return;
        pthread_mutex_lock(&w->mu);
        a = w->ans, n = w->nans;
        w->ans = NULL, w->nans = w->aans = 0;
        pthread_mutex_unlock(&w->mu);
        apply(w, a, n);
        free(a);
}

static void add_key(uint64_t *keys, size_t *n, uint64_t k) {
        if (!k)
                return;
        for (size_t i = 0; i < *n; i++)
                if (keys[i] == k)
                        return;
        keys[(*n)++] = k;
}

/* Replay: the interval's D-state threads are all there is. */
static void fill_replay(struct top_wait *w, const struct top_frame *f, struct top_row *rows, size_t n, bool want_wait,
                        uint64_t *keys, size_t *nkeys) {
        const struct diag_rec_interval *iv = f->iv;
        size_t nd = iv ? iv->t[DIAG_REC_DSTATE].nrows : 0;

        for (size_t i = 0; i < n; i++) {
                struct top_row *r = &rows[i];
                pid_t tid = 0;
                const char *wchan = "";

                r->blocked_ms = -1;
                r->blocked_state = 0;
                if (want_wait) {
                        r->wait = NULL;
                        r->pss = DIAG_REC_NA;
                }
                for (size_t k = 0; k < nd && !tid; k++) {
                        pid_t pid = (pid_t) DIAG_REC_NUM(iv, DIAG_REC_DSTATE, k, DS_PID);
                        bool member = pid == r->p->pid;
                        for (size_t j = 0; !member && r->count > 1 && j < f->nprocs; j++)
                                member = f->procs[j].pid == pid && same_group(&f->procs[j], r->p);
                        if (!member)
                                continue;
                        tid = (pid_t) DIAG_REC_NUM(iv, DIAG_REC_DSTATE, k, DS_TID);
                        wchan = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_DSTATE, k, DS_WCHAN));
                }
                if (!tid)
                        continue;
                r->blocked_state = 'D';
                if (!want_wait)
                        continue;
                {
                        char *s = NULL;
                        if (asprintf(&s, "D: %s (tid %d)", wchan && *wchan ? wchan : "?", tid) < 0)
                                s = NULL;
                        retire(w, s);
                        r->wait = s;
                }
                add_key(keys, nkeys, STUCK_KEY(DIAG_END_DSTATE, tid));
        }
}

/* A row whose WAIT needs the walk: its thread, and where the answer goes. */
struct pending {
        size_t row;
        struct thr t;
};

void top_wait_fill(struct top_wait *w, const struct top_frame *f, struct top_row *rows, size_t n,
                   unsigned *ret_stuck) {
        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC), now;
        uint64_t *keys = calloc(n + 1, sizeof *keys);
        struct pending *pend = calloc(n + 1, sizeof *pend);
        struct { pid_t pid; int64_t start; } *used = calloc(n + 1, sizeof *used);
        struct thr *best = calloc(n + 1, sizeof *best);
        size_t nkeys = 0, npend = 0;

        if (!w || !f) {
                if (ret_stuck)
                        *ret_stuck = 0;
                free(keys);
                free(pend);
                free(used);
                free(best);
                return;
        }
        fill_begin(w);
        collect(w);
        if (!keys || !pend || !used || !best)
                goto done;
        if (f->replay) {
                fill_replay(w, f, rows, n, true, keys, &nkeys);
                goto done;
        }
        now = diag_now_ns(CLOCK_MONOTONIC);
        for (size_t i = 0; i < n; i++) {
                struct top_row *r = &rows[i];
                struct pick pk;
                struct wentry *e;

                r->wait = NULL;
                read_row(w, f, r, w->o.chains, true, &pk);
                if (!w->o.chains || !pk.have_best || thread_rank(&pk.best) < 2)
                        continue;       /* nothing blocked, or asleep by choice (a sleep, a child, pause) */
                e = entry_get(w, &pk.best);
                if (!e)
                        continue;
                e->used = w->fill;
                best[i] = pk.best;
                used[i].pid = e->pid;
                used[i].start = e->start;
                if (entry_fresh(w, e, &pk.best, now))
                        continue;
                if (pk.best.state != 'D' && pk.best.off_ms < MIN_WALK_MS) {
                        used[i].pid = 0;        /* not yet: no WAIT */
                        continue;
                }
                if (pk.best.state == 'D')
                        entry_set(w, e, &pk.best, render_dstate(&pk.best), STUCK_KEY(DIAG_END_DSTATE, pk.best.tid));
                else
                        pend[npend++] = (struct pending) { .row = i, .t = pk.best };
        }
        /* Processes whose calls change every few seconds would have a scan each
         * refresh: at most one per quarter of max_age_ms (the first at once);
         * until then their rows have no WAIT rather than one about a call they
         * left. */
        if (npend && w->scans && now - w->last_scan_ns < (uint64_t) w->o.max_age_ms * 250000ULL) {
                for (size_t k = 0; k < npend; k++)
                        used[pend[k].row].pid = 0;
                npend = 0;
        }
        /* one batch at a time on the walking thread: rows that need a walk while it
         * is busy wait for the next */
        if (npend && walker_busy(w)) {
                for (size_t k = 0; k < npend; k++)
                        used[pend[k].row].pid = 0;
                npend = 0;
        }
        if (npend) {
                size_t nnew = npend;
                struct thr *t;

                w->scans++;
                w->last_scan_ns = now;
                /* answers half their age old are walked again with this scan: their
                 * next one is then not a scan of its own */
                for (size_t i = 0; i < n; i++) {
                        struct wentry *e = used[i].pid ? entry_find(w, used[i].pid, used[i].start) : NULL;
                        bool queued = false;
                        if (!e || !e->made_ns || now - e->made_ns < (uint64_t) w->o.max_age_ms * 500000ULL)
                                continue;
                        for (size_t k = 0; k < npend && !queued; k++)
                                queued = pend[k].row == i;
                        if (!queued && best[i].tid == e->tid && best[i].state != 'D')
                                pend[npend++] = (struct pending) { .row = i, .t = best[i] };
                }
                t = calloc(npend, sizeof *t);
                for (size_t k = 0; t && k < npend; k++)
                        t[k] = pend[k].t;
                if (t && w->th_started) {
                        /* answered at a later fill; until then the rows whose call
                         * changed have no WAIT, those walked again keep theirs */
                        walker_post(w, TAKE_PTR(t), npend);
                        for (size_t k = 0; k < nnew; k++)
                                used[pend[k].row].pid = 0;
                } else if (t) {
                        struct answer *a = calloc(npend, sizeof *a);
                        if (a) {
                                walk_batch(w, t, npend, a, false);
                                apply(w, a, npend);
                        }
                        free(a);
                }
                free(t);
        }
        /* every row's answer, from the cache (walked now or before) */
        for (size_t i = 0; i < n; i++) {
                const struct wentry *e = used[i].pid ? entry_find(w, used[i].pid, used[i].start) : NULL;
                if (!e)
                        continue;
                rows[i].wait = e->wait;
                if (e->wait && (e->deadlock || best[i].off_ms >= STUCK_MS))
                        add_key(keys, &nkeys, e->stuck);
        }
        entries_prune(w);
done:
        if (ret_stuck)
                *ret_stuck = (unsigned) nkeys;
        free(keys);
        free(pend);
        free(used);
        free(best);
        w->last_us = (diag_now_ns(CLOCK_MONOTONIC) - t0) / 1000;
}

void top_wait_fill_blocked(struct top_wait *w, const struct top_frame *f, struct top_row *rows, size_t n) {
        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC);

        if (!w || !f)
                return;
        if (f->replay)
                fill_replay(w, f, rows, n, false, NULL, NULL);
        else
                for (size_t i = 0; i < n; i++) {
                        struct pick pk;
                        read_row(w, f, &rows[i], false, false, &pk);
                }
        w->last_us = (diag_now_ns(CLOCK_MONOTONIC) - t0) / 1000;
}
