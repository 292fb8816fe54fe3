/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "diag/proc.h"
#include "diag/scan.h"
#include "diag/syscall.h"
#include "diag/target.h"
#include "diag/util.h"

struct scan_key {
        uint8_t kind;
        uint64_t dev, ino;
        struct diag_fdref ref;
};

enum diag_ref_kind diag_scan_fd_key(const struct diag_fd *fd, uint64_t *ret_dev, uint64_t *ret_ino) {
        *ret_dev = 0;
        *ret_ino = 0;
        switch (fd->type) {
        case DIAG_FD_SOCK:
                *ret_ino = fd->inode;
                return fd->inode ? DIAG_REF_SOCK : 0;
        case DIAG_FD_FIFO:
                if (strncmp(fd->link, "pipe:", 5) == 0) {
                        *ret_ino = fd->inode;
                        return DIAG_REF_PIPE;
                }
                break;
        case DIAG_FD_EVENTFD:
                /* every eventfd shares one anon inode; the id tells them apart */
                if (fd->eventfd_id) {
                        *ret_ino = fd->eventfd_id;
                        return DIAG_REF_EVENTFD;
                }
                return 0;
        default:
                break;
        }
        if (fd->inode && (fd->dev_major || fd->dev_minor)) {
                *ret_dev = makedev(fd->dev_major, fd->dev_minor);
                *ret_ino = fd->inode;
                return DIAG_REF_FILE;
        }
        return 0;
}

static int cmp_key(const void *a, const void *b) {
        const struct scan_key *x = a, *y = b;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ref.proc != y->ref.proc)
                return x->ref.proc < y->ref.proc ? -1 : 1;
        return (x->ref.fd > y->ref.fd) - (x->ref.fd < y->ref.fd);
}

static int build_index(struct diag_scan *s) {
        size_t total = 0, k = 0;

        for (size_t i = 0; i < s->n; i++)
                total += s->procs[i].fdt ? s->procs[i].fdt->n : 0;
        s->index = calloc(total ? total : 1, sizeof *s->index);
        if (!s->index)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++) {
                const struct diag_fdtable *t = s->procs[i].fdt;
                for (size_t j = 0; t && j < t->n; j++) {
                        uint64_t dev, ino;
                        enum diag_ref_kind kind = diag_scan_fd_key(&t->fds[j], &dev, &ino);
                        if (!kind)
                                continue;
                        s->index[k++] = (struct scan_key) {
                                .kind = (uint8_t) kind, .dev = dev, .ino = ino,
                                .ref = { (uint32_t) i, (uint32_t) j },
                        };
                }
        }
        qsort(s->index, k, sizeof *s->index, cmp_key);
        s->nindex = k;
        return 0;
}

const struct diag_fdref *diag_scan_ref(const struct diag_scan *s, size_t i) {
        return i < s->nindex ? &s->index[i].ref : NULL;
}

size_t diag_scan_refs(const struct diag_scan *s, enum diag_ref_kind kind, uint64_t dev,
                      uint64_t ino, size_t *ret_first) {
        size_t lo = 0, hi = s->nindex, first, n = 0;
        struct scan_key probe = { .kind = (uint8_t) kind, .dev = dev, .ino = ino };

        /* lower bound of (kind, ino, dev) ignoring the ref */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct scan_key *k = &s->index[mid];
                int c = k->kind != probe.kind ? (k->kind < probe.kind ? -1 : 1) :
                        k->ino != probe.ino ? (k->ino < probe.ino ? -1 : 1) :
                        k->dev != probe.dev ? (k->dev < probe.dev ? -1 : 1) : 0;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        first = lo;
        while (first + n < s->nindex && s->index[first + n].kind == probe.kind &&
               s->index[first + n].ino == ino && s->index[first + n].dev == dev)
                n++;
        *ret_first = first;
        return n;
}

static bool fd_on_file(const struct diag_fd *fd, const struct diag_filelock *l) {
        return fd->inode == l->inode && fd->dev_major == l->dev_major && fd->dev_minor == l->dev_minor;
}

static bool same_lock(const struct diag_filelock *a, const struct diag_filelock *b) {
        return a->kind == b->kind && a->mode == b->mode && a->start == b->start && a->end == b->end &&
               a->inode == b->inode && a->waiter == b->waiter;
}

void diag_scan_lock_fds(struct diag_scan *s, const struct diag_filelock *l, diag_scan_lock_fn fn, void *ud) {
        size_t first, nref;

        nref = diag_scan_refs(s, DIAG_REF_FILE, makedev(l->dev_major, l->dev_minor), l->inode, &first);
        for (size_t k = 0; k < nref; k++) {
                const struct diag_fdref *ref = diag_scan_ref(s, first + k);
                struct diag_scan_proc *p = &s->procs[ref->proc];
                struct diag_fd *fd = &p->fdt->fds[ref->fd];

                if (!fd_on_file(fd, l))
                        continue;
                if (l->pid > 0) {
                        if (p->pid == l->pid)
                                fn(ref->proc, ref->fd, l, ud);
                        continue;
                }
                /* pid -1, a waiter: fdinfo lists only held locks; the waiter is the
                 * fd a thread is blocked on in a lock call */
                if (l->waiter) {
                        if (diag_proc_thread_on_fd(p->pid, fd->fd, true))
                                fn(ref->proc, ref->fd, l, ud);
                        continue;
                }
                /* pid -1, held: this fd's fdinfo says whether the lock is its */
                if (!fd->have_fdinfo && diag_fd_read_fdinfo(p->pid, fd) < 0)
                        continue;
                for (size_t j = 0; j < fd->nlocks; j++)
                        if (same_lock(&fd->locks[j], l)) {
                                fn(ref->proc, ref->fd, l, ud);
                                break;
                        }
        }
}

static int cmp_pid(const void *a, const void *b) {
        const struct diag_scan_proc *x = a, *y = b;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

const struct diag_scan_proc *diag_scan_find(const struct diag_scan *s, pid_t pid) {
        struct diag_scan_proc key = { .pid = pid };
        return bsearch(&key, s->procs, s->n, sizeof *s->procs, cmp_pid);
}

const struct diag_sock *diag_scan_sock(const struct diag_scan *s, const struct diag_scan_proc *p,
                                       const struct diag_fd *fd) {
        if (fd->type != DIAG_FD_SOCK || !p->socks)
                return NULL;
        return diag_socktab_find(p->socks, fd->inode);
}

/* Sockets of every namespace the scanned processes live in. */
static int dump_namespaces(struct diag_scan *s) {
        uint64_t self_ns = 0;

        (void) diag_net_ns_of(getpid(), &self_ns);
        for (size_t i = 0; i < s->n; i++) {
                struct diag_scan_proc *p = &s->procs[i];
                size_t k;
                bool has_sock = false;

                for (size_t j = 0; p->fdt && j < p->fdt->n; j++)
                        if (p->fdt->fds[j].type == DIAG_FD_SOCK)
                                has_sock = true;
                if (!has_sock)
                        continue;
                if (diag_net_ns_of(p->pid, &p->netns) < 0)
                        p->netns = self_ns;
                for (k = 0; k < s->nns; k++)
                        if (s->ns_ids[k] == p->netns)
                                break;
                if (k == s->nns) {
                        struct diag_socktab *t = NULL;
                        uint64_t *ni;
                        struct diag_socktab **nt;
                        int r = p->netns == self_ns ? diag_net_dump(DIAG_NET_ALL, &t)
                                                    : diag_net_dump_pid_ns(p->pid, DIAG_NET_ALL, &t);
                        ni = realloc(s->ns_ids, (s->nns + 1) * sizeof *ni);
                        if (!ni) {
                                diag_socktab_free(t);
                                return -ENOMEM;
                        }
                        s->ns_ids = ni;
                        nt = realloc(s->ns_tabs, (s->nns + 1) * sizeof *nt);
                        if (!nt) {
                                diag_socktab_free(t);
                                return -ENOMEM;
                        }
                        s->ns_tabs = nt;
                        s->ns_ids[s->nns] = p->netns;
                        s->ns_tabs[s->nns] = r < 0 ? NULL : t;
                        if (r < 0)
                                s->ns_skipped++;
                        s->nns++;
                }
                p->socks = s->ns_tabs[k];
        }
        return 0;
}

/* One process: its name, owner and fd table. Returns 1 if it is to be kept. */
static int scan_proc(struct diag_scan_proc *p, pid_t pid, unsigned fdflags, unsigned *vanished, unsigned *denied) {
        int r;

        memset(p, 0, sizeof *p);
        p->pid = pid;
        if (diag_proc_read_comm(pid, p->comm, sizeof p->comm) < 0) {
                (*vanished)++;
                return 0;
        }
        (void) diag_proc_read_uid(pid, &p->uid);
        r = diag_fd_scan(pid, fdflags, &p->fdt);
        if (r == -ESRCH) {
                (*vanished)++;
                return 0;
        }
        /* not permitted, or a kernel thread (no fd table): keep it, without fds.
         * A kernel thread or a zombie has no fds to miss: not counted as denied. */
        if (r < 0 && r != -ENOENT) {
                struct diag_target t;
                diag_target_resolve(pid, &t);
                if (t.kind == DIAG_TARGET_LIVE)
                        (*denied)++;
        }
        return 1;
}

struct scan_part {
        const pid_t *pids;
        size_t npids;
        unsigned fdflags;
        struct diag_scan_proc *out;     /* room for npids */
        size_t n;
        unsigned vanished, denied;
};

static void *scan_part_run(void *arg) {
        struct scan_part *sp = arg;

        for (size_t i = 0; i < sp->npids; i++)
                if (scan_proc(&sp->out[sp->n], sp->pids[i], sp->fdflags, &sp->vanished, &sp->denied))
                        sp->n++;
        return NULL;
}

/* /proc reads are system calls that scale across CPUs: split the processes
 * among up to 4 threads (interleaved, so big and small processes mix). */
static int scan_parallel(struct diag_scan *s, const pid_t *pids, size_t npids, unsigned fdflags) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        size_t nth = (size_t) MAX(1, MIN(ncpu, 4L));
        struct scan_part parts[4] = {};
        pthread_t th[4];
        bool started[4] = {};
        _cleanup_free_ pid_t *split = NULL;

        if (npids < 64)
                nth = 1;
        split = malloc((npids ? npids : 1) * sizeof *split);
        if (!split)
                return -ENOMEM;
        for (size_t t = 0, k = 0; t < nth; t++) {
                parts[t].pids = split + k;
                parts[t].fdflags = fdflags;
                for (size_t i = t; i < npids; i += nth)
                        split[k++] = pids[i];
                parts[t].npids = (size_t) (split + k - parts[t].pids);
                parts[t].out = s->procs + (parts[t].pids - split);
        }
        for (size_t t = 1; t < nth; t++)
                started[t] = pthread_create(&th[t], NULL, scan_part_run, &parts[t]) == 0;
        scan_part_run(&parts[0]);
        for (size_t t = 1; t < nth; t++) {
                if (started[t])
                        pthread_join(th[t], NULL);
                else
                        scan_part_run(&parts[t]);
        }
        /* compact the parts into procs[0..n) */
        for (size_t t = 0; t < nth; t++) {
                memmove(s->procs + s->n, parts[t].out, parts[t].n * sizeof *s->procs);
                s->n += parts[t].n;
                s->vanished += parts[t].vanished;
                s->denied += parts[t].denied;
        }
        for (size_t i = 0; i < s->n; i++)
                if (s->procs[i].fdt)
                        s->fds_vanished += s->procs[i].fdt->vanished;
        return 0;
}

int diag_scan_run(const pid_t *pids, size_t npids, unsigned flags, struct diag_scan **ret) {
        _cleanup_free_ pid_t *all = NULL;
        struct diag_scan *s;
        unsigned fdflags = 0;
        int r;

        if (!pids) {
                r = diag_proc_list_pids(&all, &npids);
                if (r < 0)
                        return r;
                pids = all;
        }
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->procs = calloc(npids ? npids : 1, sizeof *s->procs);
        if (!s->procs) {
                free(s);
                return -ENOMEM;
        }
        if (flags & DIAG_SCAN_STATX)
                fdflags |= DIAG_FD_STATX;
        if (flags & DIAG_SCAN_FDINFO)
                fdflags |= DIAG_FD_FDINFO;
        if (flags & DIAG_SCAN_EPOLL)
                fdflags |= DIAG_FD_FDINFO_SPECIAL;
        if (flags & DIAG_SCAN_ACCESS)
                fdflags |= DIAG_FD_ACCESS;
        r = scan_parallel(s, pids, npids, fdflags);
        if (r < 0)
                goto fail;
        qsort(s->procs, s->n, sizeof *s->procs, cmp_pid);
        if (flags & DIAG_SCAN_NET) {
                r = dump_namespaces(s);
                if (r < 0)
                        goto fail;
        }
        if (flags & DIAG_SCAN_LOCKS) {
                r = diag_locks_read(&s->locks);
                if (r < 0)
                        goto fail;
        }
        if (flags & DIAG_SCAN_INDEX) {
                r = build_index(s);
                if (r < 0)
                        goto fail;
        }
        *ret = s;
        return 0;
fail:
        diag_scan_free(s);
        return r;
}

struct diag_scan *diag_scan_free(struct diag_scan *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                diag_fdtable_free(s->procs[i].fdt);
        free(s->procs);
        for (size_t i = 0; i < s->nns; i++)
                diag_socktab_free(s->ns_tabs[i]);
        free(s->ns_tabs);
        free(s->ns_ids);
        free(s->index);
        diag_locktab_free(s->locks);
        free(s);
        return NULL;
}
