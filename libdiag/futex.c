/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "diag/futex.h"
#include "diag/locks.h"
#include "diag/mem.h"
#include "diag/proc.h"
#include "diag/syscall.h"
#include "diag/util.h"

#define TID_MASK 0x3fffffffu
#define OWNER_DIED 0x40000000u
#define WAITERS 0x80000000u

/* glibc 2.36 x86_64 layouts (bytes). */
#define MUTEX_LOCK 0
#define MUTEX_OWNER 8
#define MUTEX_KIND 16
#define MUTEX_SIZE 40
#define MUTEX_KIND_ROBUST 0x10
#define MUTEX_KIND_PI 0x20
#define MUTEX_KIND_BITS (0x3 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200)
#define RWLOCK_READERS 0
#define RWLOCK_WRPHASE_FUTEX 8
#define RWLOCK_WRITERS_FUTEX 12
#define RWLOCK_CUR_WRITER 24
#define RWLOCK_SHARED 28
#define RWLOCK_FLAGS 48
#define RWLOCK_SIZE 56
#define RWLOCK_READER_SHIFT 3

static const char *const kind_names[] = {
        [DIAG_FUTEX_UNKNOWN] = "unknown",
        [DIAG_FUTEX_MUTEX] = "mutex",
        [DIAG_FUTEX_MUTEX_ROBUST] = "robust mutex",
        [DIAG_FUTEX_MUTEX_PI] = "PI mutex",
        [DIAG_FUTEX_RWLOCK] = "rwlock",
        [DIAG_FUTEX_CONDVAR] = "condition variable",
        [DIAG_FUTEX_SEMAPHORE] = "semaphore",
        [DIAG_FUTEX_BARRIER] = "barrier",
        [DIAG_FUTEX_LIBC_LOCK] = "libc internal lock",
        [DIAG_FUTEX_JOIN] = "thread join",
        [DIAG_FUTEX_RAW] = "futex",
};

const char *diag_futex_kind_name(enum diag_futex_kind k) {
        return (size_t) k < ELEMENTSOF(kind_names) && kind_names[k] ? kind_names[k] : "?";
}

const char *diag_confidence_name(enum diag_confidence c) {
        switch (c) {
        case DIAG_CONF_CERTAIN: return "certain";
        case DIAG_CONF_LIKELY: return "likely";
        case DIAG_CONF_GUESS: return "guess";
        default: return "none";
        }
}

/* ---- per-process state during a scan ---- */

struct pctx {
        pid_t pid;
        bool denied_counted;
        struct diag_maps *maps;
        bool maps_tried;
};

static const struct diag_maps *pctx_maps(struct pctx *p) {
        if (!p->maps_tried) {
                p->maps_tried = true;
                (void) diag_maps_read(p->pid, &p->maps);
        }
        return p->maps;
}

/* ---- classification by the locking function ---- */

static const struct { const char *needle; enum diag_futex_kind kind; int writer; } callers[] = {
        /* most specific first: "lll_lock_wait_private" contains "lll_lock_wait" */
        { "lll_lock_wait_private", DIAG_FUTEX_LIBC_LOCK, 0 },
        { "rwlock_wrlock", DIAG_FUTEX_RWLOCK, 1 },
        { "rwlock_timedwrlock", DIAG_FUTEX_RWLOCK, 1 },
        { "rwlock_clockwrlock", DIAG_FUTEX_RWLOCK, 1 },
        { "rwlock_rdlock", DIAG_FUTEX_RWLOCK, 0 },
        { "rwlock_timedrdlock", DIAG_FUTEX_RWLOCK, 0 },
        { "rwlock_clockrdlock", DIAG_FUTEX_RWLOCK, 0 },
        { "cond_wait", DIAG_FUTEX_CONDVAR, 0 },
        { "cond_timedwait", DIAG_FUTEX_CONDVAR, 0 },
        { "cond_clockwait", DIAG_FUTEX_CONDVAR, 0 },
        { "sem_wait", DIAG_FUTEX_SEMAPHORE, 0 },
        { "sem_timedwait", DIAG_FUTEX_SEMAPHORE, 0 },
        { "sem_clockwait", DIAG_FUTEX_SEMAPHORE, 0 },
        { "barrier_wait", DIAG_FUTEX_BARRIER, 0 },
        { "pthread_join", DIAG_FUTEX_JOIN, 0 },
        { "pthread_clockjoin", DIAG_FUTEX_JOIN, 0 },
        { "pthread_timedjoin", DIAG_FUTEX_JOIN, 0 },
        { "mutex_lock", DIAG_FUTEX_MUTEX, 0 },
        { "mutex_timedlock", DIAG_FUTEX_MUTEX, 0 },
        { "mutex_clocklock", DIAG_FUTEX_MUTEX, 0 },
        { "lll_lock_wait", DIAG_FUTEX_MUTEX, 0 },
        { "lll_robust", DIAG_FUTEX_MUTEX, 0 },
};

static enum diag_futex_kind caller_kind(const struct diag_futex_waiter *w, const char **ret_func, bool *ret_writer) {
        for (size_t i = 0; i < w->nframes; i++) {
                const char *f = w->frames[i].func;
                if (!f)
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(callers); k++)
                        if (strstr(f, callers[k].needle)) {
                                *ret_func = f;
                                *ret_writer = callers[k].writer;
                                return callers[k].kind;
                        }
        }
        *ret_func = NULL;
        *ret_writer = false;
        return DIAG_FUTEX_UNKNOWN;
}

/* ---- owner checks ---- */

/* The process of a tid, or 0 if no such thread. */
static pid_t tid_process(pid_t tid) {
        pid_t p;
        if (tid <= 0 || diag_tid_to_pid(tid, &p) < 0)
                return 0;
        return p;
}

static void evidence(struct diag_futex_lock *l, const char *fmt, ...) _printf_(2, 3);
static void evidence(struct diag_futex_lock *l, const char *fmt, ...) {
        va_list ap;
        char *s = NULL, *joined = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return;
        if (!l->evidence) {
                l->evidence = s;
                return;
        }
        if (asprintf(&joined, "%s; %s", l->evidence, s) >= 0) {
                free(l->evidence);
                l->evidence = joined;
        }
        free(s);
}

/* Set the owner after checking the tid: it must exist, and for a private lock
 * live in the lock's process. */
static void set_owner(struct diag_futex_lock *l, pid_t tid, const char *source) {
        pid_t p;

        if (tid <= 0) {
                evidence(l, "%s is 0: no owner recorded", source);
                return;
        }
        p = tid_process(tid);
        if (!p) {
                l->owner_tid = tid;
                l->owner_gone = true;
                l->owner_died = true;
                evidence(l, "owner %d from %s no longer exists: it exited holding the lock", tid, source);
                return;
        }
        if (!l->shared && p != l->pid) {
                evidence(l, "%s = %d is a thread of another process (%d): not trusted", source, tid, p);
                if (l->confidence > DIAG_CONF_GUESS)
                        l->confidence = DIAG_CONF_GUESS;
                return;
        }
        l->owner_tid = tid;
        l->owner_pid = p;
        evidence(l, "owner %d from %s", tid, source);
}

static bool read_u32s(pid_t pid, uint64_t addr, uint32_t *buf, size_t n) {
        return diag_mem_read(pid, addr, buf, n * 4) == (ssize_t) (n * 4);
}

static bool mutex_plausible(const uint32_t *m) {
        uint32_t kind = m[MUTEX_KIND / 4];
        return (kind & ~(uint32_t) MUTEX_KIND_BITS) == 0;
}

static void infer_mutex(struct diag_futex_lock *l, enum diag_confidence conf) {
        uint32_t m[MUTEX_SIZE / 4];

        l->base = l->uaddr;
        if (!read_u32s(l->pid, l->base, m, ELEMENTSOF(m))) {
                evidence(l, "lock memory unreadable");
                return;
        }
        l->word = m[MUTEX_LOCK / 4];
        if (!mutex_plausible(m)) {
                evidence(l, "__kind 0x%x is not a mutex kind", m[MUTEX_KIND / 4]);
                l->kind = DIAG_FUTEX_UNKNOWN;
                l->confidence = DIAG_CONF_NONE;
                return;
        }
        l->confidence = conf;
        if (m[MUTEX_KIND / 4] & MUTEX_KIND_ROBUST) {
                l->kind = DIAG_FUTEX_MUTEX_ROBUST;
                l->owner_died = (l->word & OWNER_DIED) != 0;
                evidence(l, "robust mutex (__kind 0x%x)%s", m[MUTEX_KIND / 4],
                         l->owner_died ? "; OWNER_DIED set in the lock word" : "");
                set_owner(l, (pid_t) (l->word & TID_MASK), "the lock word");
                return;
        }
        l->kind = DIAG_FUTEX_MUTEX;
        set_owner(l, (pid_t) m[MUTEX_OWNER / 4], "__owner");
        evidence(l, "lock word %u%s; __kind %u", l->word,
                 l->word == 2 ? ": contended" : l->word == 1 ? ": locked" : "", m[MUTEX_KIND / 4]);
}

static bool rwlock_read(pid_t pid, uint64_t base, uint32_t *rw) {
        return read_u32s(pid, base, rw, RWLOCK_SIZE / 4);
}

/* How well the words at base fit a pthread_rwlock_t in its present state:
 * -1 not at all, higher is better. */
static int rwlock_fit(const uint32_t *rw) {
        uint32_t readers = rw[RWLOCK_READERS / 4], cw = rw[RWLOCK_CUR_WRITER / 4];

        if (rw[RWLOCK_SHARED / 4] > 1 || rw[RWLOCK_FLAGS / 4] > 2)
                return -1;
        if (cw && tid_process((pid_t) cw) && (readers & 0x2))          /* write-locked, writer recorded */
                return 2;
        if (!cw && (readers >> RWLOCK_READER_SHIFT))                     /* read-locked by some */
                return 2;
        return 0;
}

/* Readers sleep on __wrphase_futex (+8); writers on __writers_futex (+12), or on
 * +8 while readers drain. A data symbol that starts exactly at a candidate
 * settles it; otherwise the candidate whose state is consistent wins. */
static void infer_rwlock(struct diag_futex_lock *l, bool writer, struct diag_symcache *sc, const struct diag_maps *maps) {
        uint64_t cand[2] = { l->uaddr - RWLOCK_WRPHASE_FUTEX, l->uaddr - RWLOCK_WRITERS_FUTEX };
        size_t ncand = writer ? 2 : 1;
        uint32_t rw[RWLOCK_SIZE / 4], best_rw[RWLOCK_SIZE / 4];
        int best = -1, best_fit = -1;
        pid_t w;

        l->kind = DIAG_FUTEX_RWLOCK;
        for (size_t i = 0; i < ncand; i++) {
                const char *sym = NULL, *mod = NULL;
                uint64_t off = 1;
                int fit;

                if (!rwlock_read(l->pid, cand[i], rw) || (fit = rwlock_fit(rw)) < 0)
                        continue;
                if (sc && maps && diag_symcache_data_symbol(sc, maps, cand[i], &sym, &off, &mod) == 0 && off == 0)
                        fit += 10;
                if (fit > best_fit) {
                        best_fit = fit;
                        best = (int) i;
                        memcpy(best_rw, rw, sizeof rw);
                }
        }
        if (best < 0) {
                l->confidence = DIAG_CONF_GUESS;
                evidence(l, "rwlock layout did not check out: owner unknown");
                return;
        }
        l->base = cand[best];
        l->confidence = DIAG_CONF_LIKELY;
        w = (pid_t) best_rw[RWLOCK_CUR_WRITER / 4];
        if (w) {
                set_owner(l, w, "__cur_writer");
                evidence(l, "held for writing");
        } else {
                l->readers = best_rw[RWLOCK_READERS / 4] >> RWLOCK_READER_SHIFT;
                evidence(l, "held by %u reader%s: readers are not recorded", l->readers,
                         l->readers == 1 ? "" : "s");
        }
}

static void infer(struct diag_futex_lock *l, struct diag_symcache *sc, const struct diag_maps *maps) {
        const struct diag_futex_waiter *w = &l->waiters[0];
        const char *func = NULL;
        bool writer = false;
        enum diag_futex_kind ck = caller_kind(w, &func, &writer);

        /* each waiter's side of an rwlock, from its own caller */
        for (size_t k = 0; k < l->nwaiters; k++) {
                const char *f2;
                bool wr = false;
                if (caller_kind(&l->waiters[k], &f2, &wr) == DIAG_FUTEX_RWLOCK)
                        l->waiters[k].rw_writer = wr;
        }
        if (w->op == FUTEX_LOCK_PI || w->op == FUTEX_LOCK_PI2 || w->op == FUTEX_TRYLOCK_PI) {
                uint32_t word;
                l->kind = DIAG_FUTEX_MUTEX_PI;
                l->base = l->uaddr;
                if (!read_u32s(l->pid, l->uaddr, &word, 1)) {
                        evidence(l, "lock word unreadable");
                        return;
                }
                l->word = word;
                l->confidence = DIAG_CONF_CERTAIN;
                l->owner_died = (word & OWNER_DIED) != 0;
                evidence(l, "PI futex: the kernel keeps the owner in the lock word (0x%x)%s", word,
                         l->owner_died ? ", OWNER_DIED set" : "");
                set_owner(l, (pid_t) (word & TID_MASK), "the lock word");
                return;
        }
        if (w->op == FUTEX_WAIT_REQUEUE_PI) {
                l->kind = DIAG_FUTEX_CONDVAR;
                l->confidence = DIAG_CONF_CERTAIN;
                evidence(l, "FUTEX_WAIT_REQUEUE_PI: a condition variable with a PI mutex; no owner");
                return;
        }
        if (func)
                evidence(l, "waiter is in %s", func);
        switch (ck) {
        case DIAG_FUTEX_MUTEX:
                infer_mutex(l, DIAG_CONF_LIKELY);
                return;
        case DIAG_FUTEX_RWLOCK:
                infer_rwlock(l, writer, sc, maps);
                return;
        case DIAG_FUTEX_JOIN: {
                uint32_t word;
                l->kind = DIAG_FUTEX_JOIN;
                l->confidence = DIAG_CONF_LIKELY;
                if (read_u32s(l->pid, l->uaddr, &word, 1)) {
                        l->word = word;
                        set_owner(l, (pid_t) word, "the joined thread's tid word");
                }
                return;
        }
        case DIAG_FUTEX_CONDVAR:
        case DIAG_FUTEX_SEMAPHORE:
        case DIAG_FUTEX_BARRIER:
        case DIAG_FUTEX_LIBC_LOCK:
                l->kind = ck;
                l->confidence = DIAG_CONF_LIKELY;
                (void) read_u32s(l->pid, l->uaddr, &l->word, 1);
                evidence(l, ck == DIAG_FUTEX_LIBC_LOCK ? "glibc's internal locks do not record their owner" :
                            ck == DIAG_FUTEX_SEMAPHORE ? "no owner: waits for sem_post" :
                            ck == DIAG_FUTEX_BARRIER ? "no owner: waits for the other threads to arrive" :
                            "no owner: waits for a signal or broadcast");
                return;
        default:
                break;
        }
        /* No caller known: a mutex if its memory looks like one, else unknown. */
        {
                uint32_t m[MUTEX_SIZE / 4];
                if (read_u32s(l->pid, l->uaddr, m, ELEMENTSOF(m)) && mutex_plausible(m) &&
                    (m[0] == 2 || (m[MUTEX_KIND / 4] & MUTEX_KIND_ROBUST)) && tid_process((pid_t) m[MUTEX_OWNER / 4])) {
                        infer_mutex(l, DIAG_CONF_GUESS);
                        return;
                }
        }
        l->kind = DIAG_FUTEX_UNKNOWN;
        l->confidence = DIAG_CONF_NONE;
        (void) read_u32s(l->pid, l->uaddr, &l->word, 1);
        evidence(l, "caller unknown and the memory does not look like a mutex: owner unknown");
}

/* ---- naming ---- */

static void name_lock(struct diag_futex_lock *l, struct diag_symcache *sc, const struct diag_maps *maps) {
        const char *sym = NULL, *mod = NULL;
        uint64_t off = 0, addr = l->base ? l->base : l->uaddr;
        const struct diag_map *m = diag_maps_find(maps, addr);
        int r = -1;

        if (l->kind == DIAG_FUTEX_JOIN && l->owner_tid) {
                /* the futex is the joined thread's tid word inside its descriptor */
                if (asprintf(&l->name, "thread %d", l->owner_tid) < 0)
                        l->name = NULL;
                return;
        }
        if (sc && maps)
                r = diag_symcache_data_symbol(sc, maps, addr, &sym, &off, &mod);
        if (r == 0 && sym) {
                if (off)
                        r = asprintf(&l->name, "%s+0x%" PRIx64, sym, off);
                else
                        l->name = strdup(sym);
                return;
        }
        if (!m) {
                l->name = strdup("?");
                return;
        }
        if (strcmp(m->path, "[heap]") == 0)
                l->name = strdup("heap");
        else if (strcmp(m->path, "[stack]") == 0)
                l->name = strdup("main thread's stack");
        else if (m->path[0] == '/') {
                const char *base = strrchr(m->path, '/');
                /* a file mapping: data of a module, or shared memory */
                if (asprintf(&l->name, "%s+0x%" PRIx64, m->perms[3] == 's' ? m->path : base + 1,
                             addr - m->start + m->offset) < 0)
                        l->name = NULL;
        } else
                l->name = strdup(m->perms[3] == 's' ? "shared anonymous memory" : "anonymous memory");
}

/* Readers and writers of one rwlock sleep on two different futex words: one
 * lock, once its base is known. */
static void merge_rwlocks(struct diag_futex_scan *s, size_t from) {
        for (size_t i = from; i < s->n; i++) {
                struct diag_futex_lock *a = &s->locks[i];
                if (a->kind != DIAG_FUTEX_RWLOCK || !a->base)
                        continue;
                for (size_t j = i + 1; j < s->n; j++) {
                        struct diag_futex_lock *b = &s->locks[j];
                        struct diag_futex_waiter *nw;
                        if (b->kind != DIAG_FUTEX_RWLOCK || b->base != a->base || b->pid != a->pid)
                                continue;
                        nw = realloc(a->waiters, (a->nwaiters + b->nwaiters) * sizeof *nw);
                        if (!nw)
                                return;
                        memcpy(nw + a->nwaiters, b->waiters, b->nwaiters * sizeof *nw);
                        a->waiters = nw;
                        a->nwaiters += b->nwaiters;
                        if (!a->owner_tid && b->owner_tid) {
                                a->owner_tid = b->owner_tid;
                                a->owner_pid = b->owner_pid;
                        }
                        free(b->waiters);
                        free(b->evidence);
                        free(b->name);
                        memmove(b, b + 1, (s->n - j - 1) * sizeof *b);
                        s->n--;
                        j--;
                }
        }
}

/* ---- the scan ---- */

struct scan_state {
        struct diag_futex_scan *s;
        size_t alloc, asleepers;
        struct diag_symcache *sc;
        unsigned flags;
};

static struct diag_futex_lock *find_lock(struct scan_state *st, const struct diag_futex_lock *key) {
        for (size_t i = 0; i < st->s->n; i++) {
                struct diag_futex_lock *l = &st->s->locks[i];
                if (l->shared != key->shared)
                        continue;
                if (key->shared ? (l->inode == key->inode && l->offset == key->offset &&
                                   l->dev_major == key->dev_major && l->dev_minor == key->dev_minor)
                                : (l->pid == key->pid && l->uaddr == key->uaddr))
                        return l;
        }
        if (DIAG_GROW(st->s->locks, st->alloc, st->s->n + 1) < 0)
                return NULL;
        st->s->locks[st->s->n] = *key;
        return &st->s->locks[st->s->n++];
}

static int add_waiter(struct scan_state *st, struct pctx *pc, const struct diag_futex_waiter *w) {
        struct diag_futex_lock key = { .pid = w->pid, .uaddr = w->uaddr };
        struct diag_futex_lock *l;

        /* A shared futex on a shared file mapping is the same lock in every process
         * that maps the file: key it by the file. */
        if (!w->private_op) {
                const struct diag_maps *maps = pctx_maps(pc);
                const struct diag_map *m = diag_maps_find(maps, w->uaddr);
                if (m && m->inode && m->perms[3] == 's') {
                        key.shared = true;
                        key.dev_major = m->dev_major;
                        key.dev_minor = m->dev_minor;
                        key.inode = m->inode;
                        key.offset = w->uaddr - m->start + m->offset;
                }
        }
        l = find_lock(st, &key);
        if (!l)
                return -ENOMEM;
        {
                struct diag_futex_waiter *nw = realloc(l->waiters, (l->nwaiters + 1) * sizeof *nw);
                if (!nw)
                        return -ENOMEM;
                l->waiters = nw;
                l->waiters[l->nwaiters++] = *w;
        }
        return 0;
}

/* futex(2) ops that block waiting for the word or its owner. */
static bool waiting_op(int op) {
        return op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET || op == FUTEX_LOCK_PI ||
               op == FUTEX_LOCK_PI2 || op == FUTEX_WAIT_REQUEUE_PI;
}

static void scan_thread(struct scan_state *st, struct pctx *pc, pid_t tid) {
        enum diag_arch arch = diag_arch_native();
        struct diag_syscall_state sc;
        struct diag_futex_waiter w = { .pid = pc->pid, .tid = tid, .blocked_ms = -1 };
        const char *name;
        uint64_t addrs[16];
        size_t naddrs = 0;

        {
                int r = diag_task_read_syscall(pc->pid, tid, &sc);
                if (r == -EACCES || r == -EPERM) {
                        if (!pc->denied_counted) {
                                pc->denied_counted = true;
                                st->s->denied++;
                        }
                        return;
                }
                if (r < 0) {
                        st->s->vanished++;
                        return;
                }
        }
        st->s->threads_seen++;
        if (sc.kind != DIAG_SC_IN || !(name = diag_syscall_name(arch, sc.nr)))
                return;
        if ((st->flags & DIAG_FUTEX_SLEEPERS) && diag_lock_sleep_call(&sc)) {
                /* the syscall just read says it sleeps: no second read later */
                if (DIAG_GROW(st->s->sleepers, st->asleepers, st->s->nsleepers + 1) == 0)
                        st->s->sleepers[st->s->nsleepers++] = (struct diag_futex_sleeper) {
                                .pid = pc->pid, .tid = tid, .call = diag_lock_sleep_call(&sc) };
                return;
        }
        if (strcmp(name, "restart_syscall") == 0) {
                /* a timed wait a stop interrupted: the registers still hold its arguments */
                char wchan[64];
                const char *resumed = diag_task_read_wchan(pc->pid, tid, wchan, sizeof wchan) < 0 ? NULL :
                                      diag_syscall_resumed(wchan);
                if (resumed && strcmp(resumed, "futex") == 0)
                        name = resumed;
        }
        if (strcmp(name, "futex") == 0) {
                w.op = (int) (sc.args[1] & FUTEX_CMD_MASK);
                w.private_op = (sc.args[1] & FUTEX_PRIVATE_FLAG) != 0;
                w.val = (uint32_t) sc.args[2];
                if (!waiting_op(w.op))
                        return;
                addrs[naddrs++] = sc.args[0];
        } else if (strcmp(name, "futex_wait") == 0) {
                w.op = FUTEX_WAIT;
                w.private_op = (sc.args[3] & FUTEX_PRIVATE_FLAG) != 0;
                w.val = (uint32_t) sc.args[1];
                addrs[naddrs++] = sc.args[0];
        } else if (strcmp(name, "futex_waitv") == 0) {
                /* struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 reserved; } */
                uint64_t v[16 * 3];
                size_t nr = MIN((size_t) sc.args[1], (size_t) 16);
                w.op = FUTEX_WAIT;
                if (diag_mem_read(pc->pid, sc.args[0], v, nr * 24) != (ssize_t) (nr * 24))
                        return;
                for (size_t i = 0; i < nr; i++) {
                        addrs[naddrs++] = v[i * 3 + 1];
                        w.private_op = ((uint32_t) v[i * 3 + 2] & 128) != 0;
                }
        } else
                return;

        (void) diag_proc_read_comm(tid, w.comm, sizeof w.comm);
        (void) diag_task_read_offcpu_ms(pc->pid, tid, &w.blocked_ms);
        if ((st->flags & DIAG_FUTEX_PEEK) && st->sc && pctx_maps(pc))
                w.nframes = diag_symcache_peek(st->sc, pc->pid, pc->maps, sc.sp, sc.pc, w.frames, DIAG_PEEK_MAX);
        for (size_t i = 0; i < naddrs; i++) {
                w.uaddr = addrs[i];
                (void) add_waiter(st, pc, &w);
        }
}

int diag_futex_scan(const pid_t *pids, size_t npids, unsigned flags, struct diag_futex_scan **ret) {
        return diag_futex_scan_with(pids, npids, flags, NULL, ret);
}

int diag_futex_scan_with(const pid_t *pids, size_t npids, unsigned flags, struct diag_symcache *shared,
                         struct diag_futex_scan **ret) {
        _cleanup_free_ pid_t *all = NULL;
        struct scan_state st = { .flags = flags, .sc = shared };
        int r;

        if (!pids) {
                r = diag_proc_list_pids(&all, &npids);
                if (r < 0)
                        return r;
                pids = all;
        }
        st.s = calloc(1, sizeof *st.s);
        if (!st.s)
                return -ENOMEM;
        if ((flags & DIAG_FUTEX_PEEK) && !shared && diag_symcache_new(&st.sc) < 0) {
                free(st.s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < npids; i++) {
                struct pctx pc = { .pid = pids[i] };
                _cleanup_free_ pid_t *tids = NULL;
                size_t ntids = 0, before = st.s->n;

                r = diag_proc_list_tids(pc.pid, &tids, &ntids);
                if (r < 0) {
                        st.s->vanished++;
                        continue;
                }
                for (size_t k = 0; k < ntids; k++)
                        scan_thread(&st, &pc, tids[k]);
                /* infer and name while this process's maps are at hand */
                for (size_t k = before; k < st.s->n; k++) {
                        infer(&st.s->locks[k], st.sc, pctx_maps(&pc));
                        name_lock(&st.s->locks[k], st.sc, pctx_maps(&pc));
                }
                merge_rwlocks(st.s, before);
                diag_maps_free(pc.maps);
        }
        st.s->symcache = shared ? NULL : st.sc;
        *ret = st.s;
        return 0;
}

struct diag_futex_scan *diag_futex_scan_free(struct diag_futex_scan *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                free(s->locks[i].waiters);
                free(s->locks[i].evidence);
                free(s->locks[i].name);
        }
        free(s->locks);
        free(s->sleepers);
        diag_symcache_free(s->symcache);
        free(s);
        return NULL;
}

const struct diag_futex_lock *diag_futex_waited_by(const struct diag_futex_scan *s, pid_t tid) {
        for (size_t i = 0; i < s->n; i++)
                for (size_t k = 0; k < s->locks[i].nwaiters; k++)
                        if (s->locks[i].waiters[k].tid == tid)
                                return &s->locks[i];
        return NULL;
}
