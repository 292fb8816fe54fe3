/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-fds: who holds what. Every fd of a process (or of the whole system) with
 * its endpoint on the other side — the process at the other end of a pipe, a
 * unix socket or a loopback TCP connection — the TCP state of sockets, and the
 * file locks held and waited for. Reads /proc and sock_diag only: never stops a
 * process and never touches the files themselves.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "config.h"
#include "diag/bounded.h"
#include "diag/log.h"
#include "diag/out.h"
#include "diag/proc.h"
#include "diag/scan.h"
#include "diag/syscall.h"
#include "diag/target.h"
#include "diag/util.h"

/* ---- columns and what they need ---- */

enum {
        NEED_STATX   = 1 << 0,
        NEED_NET     = 1 << 1,
        NEED_LOCKS   = 1 << 2,
        NEED_INDEX   = 1 << 3,  /* endpoints: every process must be scanned */
        NEED_FDINFO  = 1 << 4,
        NEED_ACCESS  = 1 << 5,
        NEED_BLOCKED = 1 << 6,
        NEED_EPOLL   = 1 << 7,
};

enum { COL_PID, COL_COMM, COL_USER, COL_FD, COL_MODE, COL_TYPE, COL_NAME, COL_ENDPOINT,
       COL_LOCKS, COL_POS, COL_FLAGS, COL_INODE, COL_DEV, COL_PROTO, COL_STATE, COL_LOCAL,
       COL_REMOTE, COL_RECVQ, COL_SENDQ, COL_RTT, COL_RETRANS, COL_UNACKED, COL_LASTRCV,
       COL_LASTSND, COL_BLOCKED };

static const struct diag_column columns[] = {
        [COL_PID]      = { "PID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "process id" },
        [COL_COMM]     = { "COMM", 12, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "process name" },
        [COL_USER]     = { "UID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "owner of the process" },
        [COL_FD]       = { "FD", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "file descriptor number" },
        [COL_MODE]     = { "MODE", 4, 0, DIAG_COL_STRING, NEED_ACCESS | NEED_LOCKS | NEED_STATX | NEED_BLOCKED,
                           "r/w access, lock (W/R held, w/r waited for), * a thread is blocked on it" },
        [COL_TYPE]     = { "TYPE", 5, 0, DIAG_COL_STRING, NEED_STATX, "REG DIR FIFO SOCK CHR BLK or anon kind" },
        [COL_NAME]     = { "NAME", 0.4, SCOLS_FL_TRUNC, DIAG_COL_STRING, NEED_NET | NEED_EPOLL, "path, or a description of the socket, pipe or anon fd" },
        [COL_ENDPOINT] = { "ENDPOINT", 0.3, SCOLS_FL_WRAP, DIAG_COL_ARRAY, NEED_INDEX | NEED_NET | NEED_STATX | NEED_EPOLL,
                           "the other end: PID,COMM,FD and access of each process there" },
        [COL_LOCKS]    = { "LOCKS", 0.2, SCOLS_FL_WRAP, DIAG_COL_ARRAY, NEED_LOCKS | NEED_STATX | NEED_INDEX, "file locks held or waited for through this fd, with the other side" },
        [COL_POS]      = { "POS", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_FDINFO, "file offset (fdinfo)" },
        [COL_FLAGS]    = { "FLAGS", 10, 0, DIAG_COL_STRING, NEED_FDINFO, "open flags (fdinfo)" },
        [COL_INODE]    = { "INODE", 8, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_STATX, "inode number" },
        [COL_DEV]      = { "DEV", 5, 0, DIAG_COL_STRING, NEED_STATX, "device MAJ:MIN of a path fd" },
        [COL_PROTO]    = { "PROTO", 5, 0, DIAG_COL_STRING, NEED_NET, "tcp tcp6 udp udp6 unix ..." },
        [COL_STATE]    = { "STATE", 10, 0, DIAG_COL_STRING, NEED_NET, "socket state" },
        [COL_LOCAL]    = { "LOCAL", 0.15, 0, DIAG_COL_STRING, NEED_NET, "local address (path for unix)" },
        [COL_REMOTE]   = { "REMOTE", 0.15, 0, DIAG_COL_STRING, NEED_NET, "remote address" },
        [COL_RECVQ]    = { "RECVQ", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_NET, "bytes received, not yet read" },
        [COL_SENDQ]    = { "SENDQ", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_NET, "bytes sent, not yet acknowledged" },
        [COL_RTT]      = { "RTT", 6, SCOLS_FL_RIGHT, DIAG_COL_STRING, NEED_NET, "TCP smoothed round-trip time" },
        [COL_RETRANS]  = { "RETRANS", 3, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_NET, "TCP retransmissions (total)" },
        [COL_UNACKED]  = { "UNACKED", 3, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_NET, "TCP segments sent and not acknowledged" },
        [COL_LASTRCV]  = { "LASTRCV", 6, SCOLS_FL_RIGHT, DIAG_COL_STRING, NEED_NET, "time since data was last received" },
        [COL_LASTSND]  = { "LASTSND", 6, SCOLS_FL_RIGHT, DIAG_COL_STRING, NEED_NET, "time since data was last sent" },
        [COL_BLOCKED]  = { "BLOCKED", 0.1, 0, DIAG_COL_STRING, NEED_BLOCKED, "threads blocked in a system call on this fd" },
};

/* MODE costs a stat of every fd: it is one "+MODE" away, not in the default. */
static const int default_columns[] = { COL_PID, COL_COMM, COL_FD, COL_TYPE, COL_NAME, COL_ENDPOINT };

/* --summary: one row per process */
enum { SUM_PID, SUM_COMM, SUM_FDS, SUM_LIMIT, SUM_USE, SUM_REG, SUM_DIR, SUM_FIFO, SUM_SOCK,
       SUM_CHR, SUM_ANON, SUM_DELETED };

static const struct diag_column sum_columns[] = {
        [SUM_PID]     = { "PID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "process id" },
        [SUM_COMM]    = { "COMM", 12, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "process name" },
        [SUM_FDS]     = { "FDS", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "open fds" },
        [SUM_LIMIT]   = { "LIMIT", 6, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "RLIMIT_NOFILE soft limit" },
        [SUM_USE]     = { "USE%", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "fds in use, percent of the limit" },
        [SUM_REG]     = { "REG", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_STATX, "regular files" },
        [SUM_DIR]     = { "DIR", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_STATX, "directories" },
        [SUM_FIFO]    = { "FIFO", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "pipes and FIFOs" },
        [SUM_SOCK]    = { "SOCK", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "sockets" },
        [SUM_CHR]     = { "CHR", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, NEED_STATX, "character devices" },
        [SUM_ANON]    = { "ANON", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "eventfd, epoll, timerfd and other anon fds" },
        [SUM_DELETED] = { "DELETED", 4, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "open files already deleted" },
};

static const int default_sum_columns[] = { SUM_PID, SUM_COMM, SUM_FDS, SUM_LIMIT, SUM_USE, SUM_REG,
                                           SUM_FIFO, SUM_SOCK, SUM_ANON, SUM_DELETED };

/* ---- options ---- */

enum sockmatch { SM_NONE, SM_LOCAL, SM_REMOTE };

static struct {
        pid_t *pids;
        size_t npids;
        const char *comm;
        const char *file;
        bool have_file;
        char *file_name;                /* FILE did not answer: match links by this text */
        dev_t file_dev;
        ino_t file_ino;
        long port;                      /* -1: not asked */
        uint64_t inode;
        enum sockmatch sockmatch;
        const char *sockaddr;
        bool summary;
        bool access_read;
        bool all_endpoints;             /* --all-endpoints: never summarize ENDPOINT */
        struct diag_outopts out;
        struct diag_columns cols;
} arg = { .port = -1 };

/* ---- per-fd annotations computed after the scan ---- */

struct lockmark {
        const struct diag_filelock *lock;
        bool waiting;                   /* this fd's process waits for it */
};

struct fdmark {
        struct lockmark *locks;
        size_t nlocks, alloc;
        pid_t *blocked;                 /* tids blocked on this fd */
        size_t nblocked, balloc;
};

struct view {
        struct diag_scan *scan;
        struct fdmark **marks;          /* [proc][fd], allocated lazily per proc */
};

static struct fdmark *mark_of(struct view *v, size_t p, size_t f) {
        const struct diag_scan_proc *pr = &v->scan->procs[p];

        if (!pr->fdt || f >= pr->fdt->n)
                return NULL;
        if (!v->marks[p]) {
                v->marks[p] = calloc(pr->fdt->n, sizeof **v->marks);
                if (!v->marks[p])
                        return NULL;
        }
        return &v->marks[p][f];
}

static void view_free(struct view *v) {
        for (size_t p = 0; v->scan && p < v->scan->n; p++) {
                const struct diag_scan_proc *pr = &v->scan->procs[p];
                for (size_t f = 0; v->marks[p] && f < pr->fdt->n; f++) {
                        free(v->marks[p][f].locks);
                        free(v->marks[p][f].blocked);
                }
                free(v->marks[p]);
        }
        free(v->marks);
        diag_scan_free(v->scan);
}

/* Which thread is blocked in a syscall on which fd, from /proc syscall: no stop. */
static void mark_blocked(struct view *v, size_t p) {
        const struct diag_scan_proc *pr = &v->scan->procs[p];
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (!pr->fdt || diag_proc_list_tids(pr->pid, &tids, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                struct diag_syscall_state sc;
                enum diag_sc_class cls;
                int fd;

                if (diag_task_read_syscall(pr->pid, tids[i], &sc) < 0 || sc.kind != DIAG_SC_IN)
                        continue;
                cls = diag_syscall_class(diag_arch_native(), &sc);
                fd = diag_syscall_fd(diag_arch_native(), &sc);
                if (fd < 0 && cls == DIAG_SCC_EPOLL)
                        fd = (int) sc.args[0];
                if (fd < 0)
                        continue;
                for (size_t f = 0; f < pr->fdt->n; f++)
                        if (pr->fdt->fds[f].fd == fd) {
                                struct fdmark *m = mark_of(v, p, f);
                                if (m && DIAG_GROW(m->blocked, m->balloc, m->nblocked + 1) == 0)
                                        m->blocked[m->nblocked++] = tids[i];
                        }
        }
}

static void add_lockmark(struct view *v, size_t p, size_t f, const struct diag_filelock *l, bool waiting) {
        struct fdmark *m = mark_of(v, p, f);

        if (!m || DIAG_GROW(m->locks, m->alloc, m->nlocks + 1) < 0)
                return;
        m->locks[m->nlocks++] = (struct lockmark) { .lock = l, .waiting = waiting };
}

static void lock_fd_found(size_t p, size_t f, const struct diag_filelock *l, void *ud) {
        add_lockmark(ud, p, f, l, l->waiter);
}

/* Attach each /proc/locks entry to the fds it goes through. */
static void mark_locks(struct view *v) {
        const struct diag_locktab *t = v->scan->locks;

        for (size_t i = 0; t && i < t->n; i++)
                diag_scan_lock_fds(v->scan, &t->locks[i], lock_fd_found, v);
}

/* ---- selection ---- */

static bool proc_selected(const struct diag_scan_proc *p) {
        if (arg.comm && strcmp(p->comm, arg.comm) != 0)
                return false;
        if (arg.pids) {
                for (size_t i = 0; i < arg.npids; i++)
                        if (arg.pids[i] == p->pid)
                                return true;
                return false;
        }
        return true;
}

static bool sock_port_matches(const struct diag_sock *s, long port) {
        const struct sockaddr_storage *a[2] = { &s->local, &s->remote };

        for (int i = 0; i < 2; i++) {
                if (a[i]->ss_family == AF_INET && ntohs(((const struct sockaddr_in *) a[i])->sin_port) == port)
                        return true;
                if (a[i]->ss_family == AF_INET6 && ntohs(((const struct sockaddr_in6 *) a[i])->sin6_port) == port)
                        return true;
        }
        return false;
}

static bool fd_selected(const struct view *v, const struct diag_scan_proc *p, const struct diag_fd *fd) {
        const struct diag_sock *s = NULL;

        if (arg.have_file &&
            !(fd->inode == arg.file_ino && fd->dev_major == major(arg.file_dev) && fd->dev_minor == minor(arg.file_dev)))
                return false;
        if (arg.file_name && strcmp(fd->link, arg.file_name) != 0)
                return false;
        if (arg.inode && fd->inode != arg.inode)
                return false;
        if (arg.port >= 0 || arg.sockmatch != SM_NONE) {
                s = diag_scan_sock(v->scan, p, fd);
                if (!s || (s->family != AF_INET && s->family != AF_INET6))
                        return false;
        }
        if (arg.port >= 0 && !sock_port_matches(s, arg.port))
                return false;
        if (arg.sockmatch != SM_NONE) {
                char buf[128];
                diag_sockaddr_format(arg.sockmatch == SM_LOCAL ? &s->local : &s->remote, buf, sizeof buf);
                if (strcmp(buf, arg.sockaddr) != 0)
                        return false;
        }
        return true;
}

/* ---- formatting helpers ---- */

static char *fmt_access(unsigned a, char *buf) {
        buf[0] = (a & DIAG_FD_R) ? 'r' : '-';
        buf[1] = (a & DIAG_FD_W) ? 'w' : '-';
        buf[2] = 0;
        return buf;
}

static char *fmt_mode(const struct diag_fd *fd, const struct fdmark *m, char *buf) {
        char lock = '-';

        fmt_access(fd->access, buf);
        for (size_t i = 0; m && i < m->nlocks; i++) {
                const struct diag_filelock *l = m->locks[i].lock;
                char c = l->mode == DIAG_LOCK_WRITE ? 'W' : 'R';
                if (m->locks[i].waiting)
                        c = (char) (c - 'A' + 'a');
                /* a held write lock says the most; then read; then waits */
                if (lock == '-' || c == 'W' || (c == 'R' && lock != 'W'))
                        lock = c;
        }
        buf[2] = lock;
        buf[3] = m && m->nblocked ? '*' : '-';
        buf[4] = 0;
        return buf;
}

/* A remote address of port 0 is no peer (an unconnected UDP socket). */
static bool sock_connected(const struct diag_sock *s) {
        if (s->remote.ss_family == AF_INET)
                return ((const struct sockaddr_in *) &s->remote)->sin_port != 0;
        if (s->remote.ss_family == AF_INET6)
                return ((const struct sockaddr_in6 *) &s->remote)->sin6_port != 0;
        return false;
}

static void fmt_sock_name(const struct diag_sock *s, char *buf, size_t size) {
        char l[128], r[128];

        if (s->family == AF_UNIX) {
                snprintf(buf, size, "%s %s%s%s", diag_sock_proto_name(s),
                         s->path ? s->path : (s->peer_inode ? "(connected)" : "(unbound)"),
                         s->state == 10 /* LISTEN */ ? " LISTEN" : "",
                         s->peer_inode ? "" : "");
                return;
        }
        diag_sockaddr_format(&s->local, l, sizeof l);
        if (s->state == 10 || !sock_connected(s)) {
                snprintf(buf, size, "%s %s %s", diag_sock_proto_name(s), l, diag_tcp_state_name(s->state));
                return;
        }
        diag_sockaddr_format(&s->remote, r, sizeof r);
        snprintf(buf, size, "%s %s -> %s %s", diag_sock_proto_name(s), l, r, diag_tcp_state_name(s->state));
}

static void fmt_name(const struct view *v, const struct diag_scan_proc *p, const struct diag_fd *fd,
                     char *buf, size_t size) {
        const struct diag_sock *s = diag_scan_sock(v->scan, p, fd);

        if (s) {
                fmt_sock_name(s, buf, size);
                return;
        }
        if (fd->type == DIAG_FD_EVENTPOLL && fd->have_fdinfo) {
                size_t o = (size_t) snprintf(buf, size, "eventpoll: %zu fd%s", fd->nepoll_tfds,
                                             fd->nepoll_tfds == 1 ? "" : "s");
                for (size_t i = 0; i < fd->nepoll_tfds && o < size; i++)
                        o += (size_t) snprintf(buf + o, size - o, "%s%d", i ? "," : " (", fd->epoll_tfds[i]);
                if (fd->nepoll_tfds && o < size)
                        snprintf(buf + o, size - o, ")");
                return;
        }
        if (fd->type == DIAG_FD_EVENTFD && fd->have_fdinfo) {
                snprintf(buf, size, "eventfd: count %" PRIu64, fd->eventfd_count);
                return;
        }
        snprintf(buf, size, "%s", fd->link);
}

struct strbuf { char *s; size_t len, alloc; };

static void sb_add(struct strbuf *b, const char *fmt, ...) _printf_(2, 3);
static void sb_add(struct strbuf *b, const char *fmt, ...) {
        va_list ap;
        char tmp[512];
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if (DIAG_GROW(b->s, b->alloc, b->len + (size_t) n + 2) < 0)
                return;
        if (b->len)
                b->s[b->len++] = '\n';
        memcpy(b->s + b->len, tmp, (size_t) n + 1);
        b->len += (size_t) n;
}

/* The processes at the other end of an fd, as "PID,COMM,FDaccess" entries. */
/* note: NULL for a plain endpoint, or how it is reached ("listen backlog": the
 * connection is queued on that listener and nobody accepted it yet). */
typedef void (*endpoint_fn)(const struct diag_scan_proc *p, const struct diag_fd *fd, const char *note, void *ud);

static void each_ref(const struct view *v, enum diag_ref_kind kind, uint64_t dev, uint64_t ino,
                     const struct diag_scan_proc *self_p, const struct diag_fd *self_fd,
                     const char *note, endpoint_fn fn, void *ud) {
        size_t first, n = diag_scan_refs(v->scan, kind, dev, ino, &first);

        for (size_t k = 0; k < n; k++) {
                const struct diag_fdref *ref = diag_scan_ref(v->scan, first + k);
                const struct diag_scan_proc *p = &v->scan->procs[ref->proc];
                const struct diag_fd *fd = &p->fdt->fds[ref->fd];
                if (p == self_p && fd == self_fd)
                        continue;
                fn(p, fd, note, ud);
        }
}

/* The listening socket a connection to s's remote address would queue on. */
static const struct diag_sock *listener_for(const struct diag_socktab *t, const struct diag_sock *s) {
        uint16_t port;

        if (s->remote.ss_family == AF_INET)
                port = ((const struct sockaddr_in *) &s->remote)->sin_port;
        else if (s->remote.ss_family == AF_INET6)
                port = ((const struct sockaddr_in6 *) &s->remote)->sin6_port;
        else
                return NULL;
        for (size_t i = 0; t && i < t->n; i++) {
                const struct diag_sock *l = &t->socks[i];
                if (l->protocol != IPPROTO_TCP || l->state != 10 /* LISTEN */ || !l->inode)
                        continue;
                if (l->local.ss_family == AF_INET && ((const struct sockaddr_in *) &l->local)->sin_port == port)
                        return l;
                if (l->local.ss_family == AF_INET6 && ((const struct sockaddr_in6 *) &l->local)->sin6_port == port)
                        return l;
        }
        return NULL;
}

static void each_endpoint(const struct view *v, const struct diag_scan_proc *p, const struct diag_fd *fd,
                          endpoint_fn fn, void *ud) {
        uint64_t dev, ino;
        enum diag_ref_kind kind = diag_scan_fd_key(fd, &dev, &ino);
        const struct diag_sock *s;

        if (fd->type == DIAG_FD_SOCK && (s = diag_scan_sock(v->scan, p, fd))) {
                const struct diag_sock *peer = NULL, *l;
                if (s->family == AF_UNIX && s->peer_inode)
                        each_ref(v, DIAG_REF_SOCK, 0, s->peer_inode, p, fd, NULL, fn, ud);
                else if (s->family == AF_INET || s->family == AF_INET6) {
                        peer = diag_socktab_inet_peer(p->socks, s);
                        if (peer && peer->inode)
                                each_ref(v, DIAG_REF_SOCK, 0, peer->inode, p, fd, NULL, fn, ud);
                        /* A connection nobody accepted has no file yet: its other end
                         * is the listener whose backlog holds it. */
                        else if (peer && s->protocol == IPPROTO_TCP && (l = listener_for(p->socks, s)))
                                each_ref(v, DIAG_REF_SOCK, 0, l->inode, p, fd, "listen backlog, not accepted", fn, ud);
                }
                return;
        }
        /* pipes, FIFOs, memfds, eventfds and shared files: the other holders */
        if (kind == DIAG_REF_PIPE || kind == DIAG_REF_EVENTFD ||
            (kind == DIAG_REF_FILE && (fd->type == DIAG_FD_FIFO || fd->type == DIAG_FD_MEMFD)))
                each_ref(v, kind, dev, ino, p, fd, NULL, fn, ud);
}

static void endpoint_text(const struct diag_scan_proc *p, const struct diag_fd *fd, const char *note, void *ud) {
        char a[4];
        /* access is known when MODE (or -J) had it read */
        sb_add(ud, "%d,%s,%d%s%s%s%s", p->pid, p->comm, fd->fd, arg.access_read ? fmt_access(fd->access, a) : "",
               note ? " (" : "", note ? note : "", note ? ")" : "");
}

/*
 * A pipe that 300 preforked workers inherited as stdout has 600 holders: listing
 * every other holder on every one of their fds is quadratic (the whole table
 * becomes endpoint lines). Past ENDPOINT_LIST_MAX other holders an endpoint is
 * one summary line, the holders grouped by name ("php-fpm x300, bash 1636");
 * --all-endpoints lists them all. -J gives a sample and the count.
 */
#define ENDPOINT_LIST_MAX 4
#define ENDPOINT_JSON_SAMPLE 8
#define ENDPOINT_GROUPS 8       /* names tracked; the rest count as "more" */
#define ENDPOINT_GROUPS_SHOWN 3

struct epgroup {
        const char *comm;
        pid_t pid;              /* the first process of this name */
        size_t nprocs;
};

struct epsummary {
        size_t nfds, nprocs, nother;    /* other holders' fds, their processes, processes in no group */
        const struct diag_scan_proc *last;
        struct epgroup g[ENDPOINT_GROUPS];
        size_t ng;
};

/* The fds of one object come in process order (the index is sorted by process),
 * so a process is new when it differs from the previous one. */
static void endpoint_count(const struct diag_scan_proc *p, const struct diag_fd *fd, const char *note, void *ud) {
        struct epsummary *e = ud;
        size_t i;

        e->nfds++;
        if (p == e->last)
                return;
        e->last = p;
        e->nprocs++;
        for (i = 0; i < e->ng; i++)
                if (strcmp(e->g[i].comm, p->comm) == 0) {
                        e->g[i].nprocs++;
                        return;
                }
        if (e->ng < ENDPOINT_GROUPS)
                e->g[e->ng++] = (struct epgroup) { .comm = p->comm, .pid = p->pid, .nprocs = 1 };
        else
                e->nother++;
}

static int cmp_epgroup(const void *a, const void *b) {
        const struct epgroup *x = a, *y = b;
        if (x->nprocs != y->nprocs)
                return x->nprocs < y->nprocs ? 1 : -1;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

/* "php-fpm x300, bash 1636, +2 more" (ASCII: the tools set no locale, and
 * libsmartcols would escape a multiplication sign in the C locale) */
static void endpoint_summary_text(struct epsummary *e, struct strbuf *b) {
        char line[512];
        size_t o = 0, more = e->nother;

        qsort(e->g, e->ng, sizeof *e->g, cmp_epgroup);
        for (size_t i = 0; i < e->ng; i++) {
                if (i >= ENDPOINT_GROUPS_SHOWN) {
                        more += e->g[i].nprocs;
                        continue;
                }
                if (e->g[i].nprocs == 1)
                        o += (size_t) snprintf(line + o, sizeof line - o, "%s%s %d", i ? ", " : "", e->g[i].comm, e->g[i].pid);
                else
                        o += (size_t) snprintf(line + o, sizeof line - o, "%s%s x%zu", i ? ", " : "", e->g[i].comm,
                                               e->g[i].nprocs);
                if (o >= sizeof line)
                        o = sizeof line - 1;
        }
        if (more)
                snprintf(line + o, sizeof line - o, ", +%zu more", more);
        sb_add(b, "%s", line);
}

/* The ENDPOINT cell: every other holder, or a summary when there are many. */
static void endpoint_cell(const struct view *v, const struct diag_scan_proc *p, const struct diag_fd *fd,
                          struct strbuf *b) {
        struct epsummary e = {};

        if (!arg.all_endpoints) {
                each_endpoint(v, p, fd, endpoint_count, &e);
                if (e.nfds > ENDPOINT_LIST_MAX) {
                        endpoint_summary_text(&e, b);
                        return;
                }
        }
        each_endpoint(v, p, fd, endpoint_text, b);
}

struct epjson {
        json_object *arr;
        size_t n;
};

static void endpoint_json(const struct diag_scan_proc *p, const struct diag_fd *fd, const char *note, void *ud) {
        struct epjson *e = ud;
        json_object *o;
        char a[4];

        e->n++;
        if (!arg.all_endpoints && e->n > ENDPOINT_JSON_SAMPLE)
                return;
        o = json_object_new_object();
        json_object_object_add(o, "pid", json_object_new_int(p->pid));
        json_object_object_add(o, "comm", json_object_new_string(p->comm));
        json_object_object_add(o, "fd", json_object_new_int(fd->fd));
        json_object_object_add(o, "access", json_object_new_string(fmt_access(fd->access, a)));
        json_object_object_add(o, "note", diag_json_str(note));
        json_object_array_add(e->arr, o);
}

static void first_pid_found(size_t p, size_t f, const struct diag_filelock *l, void *ud) {
        struct { struct view *v; pid_t pid; } *c = ud;
        if (!c->pid)
                c->pid = c->v->scan->procs[p].pid;
}

/* A lock entry's process: /proc/locks says, except for OFD locks (-1). */
static pid_t lock_pid(struct view *v, const struct diag_filelock *l) {
        struct { struct view *v; pid_t pid; } c = { v, 0 };
        if (l->pid > 0)
                return l->pid;
        diag_scan_lock_fds(v->scan, l, first_pid_found, &c);
        return c.pid;
}

/* "FLOCK WRITE held, waited for by 1235(php-fpm)" / "POSIX WRITE 0-EOF waits for 1105(php-fpm)" */
static void lock_text(struct view *v, const struct lockmark *lm, struct strbuf *b) {
        const struct diag_filelock *l = lm->lock;
        const struct diag_locktab *t = v->scan->locks;
        char range[64] = "";
        struct strbuf who = {};

        if (l->kind == DIAG_LOCK_POSIX || l->kind == DIAG_LOCK_OFD) {
                if (l->end == UINT64_MAX)
                        snprintf(range, sizeof range, " %" PRIu64 "-EOF", l->start);
                else
                        snprintf(range, sizeof range, " %" PRIu64 "-%" PRIu64, l->start, l->end);
        }
        if (lm->waiting) {
                const struct diag_filelock *h = diag_locks_blocker(t, l);
                pid_t hpid = h ? lock_pid(v, h) : 0;
                const struct diag_scan_proc *hp = hpid > 0 ? diag_scan_find(v->scan, hpid) : NULL;
                if (hpid > 0)
                        sb_add(b, "%s %s%s waits for %d(%s)", diag_lock_kind_name(l->kind), diag_lock_mode_name(l->mode),
                               range, hpid, hp ? hp->comm : "?");
                else
                        sb_add(b, "%s %s%s waits", diag_lock_kind_name(l->kind), diag_lock_mode_name(l->mode), range);
                return;
        }
        /* holders: list the waiters that follow this entry in /proc/locks */
        for (size_t i = (size_t) (l - t->locks) + 1; i < t->n && t->locks[i].waiter; i++) {
                const struct diag_filelock *w = &t->locks[i];
                pid_t wpid = lock_pid(v, w);
                const struct diag_scan_proc *wp = wpid > 0 ? diag_scan_find(v->scan, wpid) : NULL;
                if (diag_locks_blocker(t, w) != l)
                        continue;
                if (who.len < 400) {
                        char tmp[64];
                        snprintf(tmp, sizeof tmp, "%s%d(%s)", who.len ? " " : "", wpid, wp ? wp->comm : "?");
                        if (!DIAG_GROW(who.s, who.alloc, who.len + strlen(tmp) + 1)) {
                                memcpy(who.s + who.len, tmp, strlen(tmp) + 1);
                                who.len += strlen(tmp);
                        }
                }
        }
        if (who.len)
                sb_add(b, "%s %s%s held, waited for by %s", diag_lock_kind_name(l->kind), diag_lock_mode_name(l->mode), range, who.s);
        else
                sb_add(b, "%s %s%s held", diag_lock_kind_name(l->kind), diag_lock_mode_name(l->mode), range);
        free(who.s);
}

static char *fmt_ms(uint32_t ms, char *buf, size_t size) {
        return diag_format_duration(ms, buf, size);
}

static void fmt_flags(unsigned flags, char *buf, size_t size) {
        static const struct { unsigned bit; const char *name; } names[] = {
                { O_APPEND, "append" }, { O_NONBLOCK, "nonblock" }, { O_CLOEXEC, "cloexec" },
                { O_DIRECT, "direct" }, { O_SYNC, "sync" }, { O_DIRECTORY, "directory" },
                { O_NOATIME, "noatime" }, { O_PATH, "path" }, { O_LARGEFILE, "largefile" },
        };
        size_t o = 0;
        const char *acc = (flags & O_ACCMODE) == O_RDONLY ? "rdonly" : (flags & O_ACCMODE) == O_WRONLY ? "wronly" : "rdwr";

        o += (size_t) snprintf(buf, size, "%s", acc);
        for (size_t i = 0; i < ELEMENTSOF(names) && o < size; i++)
                if ((flags & names[i].bit) == names[i].bit && names[i].bit)
                        o += (size_t) snprintf(buf + o, size - o, ",%s", names[i].name);
}

/* ---- table ---- */

static void table_row(struct libscols_table *tb, struct view *v, size_t pi, size_t fi) {
        const struct diag_columns *c = &arg.cols;
        const struct diag_scan_proc *p = &v->scan->procs[pi];
        const struct diag_fd *fd = &p->fdt->fds[fi];
        const struct fdmark *m = v->marks[pi] ? &v->marks[pi][fi] : NULL;
        const struct diag_sock *s = diag_scan_sock(v->scan, p, fd);
        struct libscols_line *ln = scols_table_new_line(tb, NULL);
        char buf[1024];

        if (!ln)
                return;
        diag_table_set(ln, c, COL_PID, "%d", p->pid);
        diag_table_set(ln, c, COL_COMM, "%s", p->comm);
        diag_table_set(ln, c, COL_USER, "%u", (unsigned) p->uid);
        diag_table_set(ln, c, COL_FD, "%d", fd->fd);
        diag_table_set(ln, c, COL_MODE, "%s", fmt_mode(fd, m, buf));
        diag_table_set(ln, c, COL_TYPE, "%s", diag_fd_type_name(fd->type));
        if (diag_columns_pos(c, COL_NAME) >= 0) {
                fmt_name(v, p, fd, buf, sizeof buf);
                diag_table_set(ln, c, COL_NAME, "%s", buf);
        }
        if (diag_columns_pos(c, COL_ENDPOINT) >= 0) {
                struct strbuf b = {};
                endpoint_cell(v, p, fd, &b);
                if (b.s)
                        diag_table_set(ln, c, COL_ENDPOINT, "%s", b.s);
                free(b.s);
        }
        if (diag_columns_pos(c, COL_LOCKS) >= 0 && m && m->nlocks) {
                struct strbuf b = {};
                for (size_t i = 0; i < m->nlocks; i++)
                        lock_text(v, &m->locks[i], &b);
                diag_table_set(ln, c, COL_LOCKS, "%s", b.s ? b.s : "");
                free(b.s);
        }
        if (fd->have_fdinfo) {
                diag_table_set(ln, c, COL_POS, "%" PRIu64, fd->pos);
                fmt_flags(fd->flags, buf, sizeof buf);
                diag_table_set(ln, c, COL_FLAGS, "%s", buf);
        }
        if (fd->inode)
                diag_table_set(ln, c, COL_INODE, "%" PRIu64, fd->inode);
        if (fd->dev_major || fd->dev_minor)
                diag_table_set(ln, c, COL_DEV, "%u:%u", fd->dev_major, fd->dev_minor);
        if (s) {
                diag_table_set(ln, c, COL_PROTO, "%s", diag_sock_proto_name(s));
                diag_table_set(ln, c, COL_STATE, "%s", diag_tcp_state_name(s->state));
                if (s->family == AF_UNIX)
                        diag_table_set(ln, c, COL_LOCAL, "%s", s->path ? s->path : "");
                else {
                        diag_table_set(ln, c, COL_LOCAL, "%s", diag_sockaddr_format(&s->local, buf, sizeof buf));
                        if (sock_connected(s) && s->state != 10 /* LISTEN */)
                                diag_table_set(ln, c, COL_REMOTE, "%s", diag_sockaddr_format(&s->remote, buf, sizeof buf));
                }
                diag_table_set(ln, c, COL_RECVQ, "%u", s->rqueue);
                diag_table_set(ln, c, COL_SENDQ, "%u", s->wqueue);
                if (s->have_tcp_info && s->state != 10 /* LISTEN */) {
                        char d[DIAG_DURATION_MAX];
                        diag_table_set(ln, c, COL_RTT, "%.2fms", s->tcp.rtt_us / 1000.0);
                        diag_table_set(ln, c, COL_RETRANS, "%u", s->tcp.total_retrans);
                        diag_table_set(ln, c, COL_UNACKED, "%u", s->tcp.unacked);
                        diag_table_set(ln, c, COL_LASTRCV, "%s", fmt_ms(s->tcp.last_data_recv_ms, d, sizeof d));
                        diag_table_set(ln, c, COL_LASTSND, "%s", fmt_ms(s->tcp.last_data_sent_ms, d, sizeof d));
                }
        }
        if (m && m->nblocked) {
                struct strbuf b = {};
                for (size_t i = 0; i < m->nblocked; i++)
                        sb_add(&b, "%d", m->blocked[i]);
                for (size_t i = 0; b.s && i < b.len; i++)
                        if (b.s[i] == '\n')
                                b.s[i] = ',';
                diag_table_set(ln, c, COL_BLOCKED, "%s", b.s ? b.s : "");
                free(b.s);
        }
}

/*
 * Rows are printed STREAM_ROWS at a time, as they are made, instead of holding
 * every cell of the whole table (on a system with 100,000 fds that is most of
 * the memory). Each chunk is one libsmartcols print, the header with the first
 * only. So that the chunks line up, every column is at least its width from
 * the column table (a proportional hint counts as that share of 100 columns);
 * a longer value widens only its chunk.
 */
#define STREAM_ROWS 256

struct table_stream {
        struct libscols_table *tb;
        size_t rows;
        bool printed;
};

static int stream_start(struct table_stream *st, const char *name) {
        st->tb = diag_table_new(&arg.cols, &arg.out, name);
        if (!st->tb)
                return -ENOMEM;
        for (size_t i = 0; i < arg.cols.n; i++) {
                const struct diag_column *col = &arg.cols.all[arg.cols.ids[i]];
                double w = col->whint < 1 ? col->whint * 100 : col->whint;
                struct libscols_column *cl = scols_table_get_column(st->tb, i);

                if (cl && scols_column_set_whint(cl, MAX(w, (double) strlen(col->name))) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Print what is held (all of it when final; an empty table only then). */
static int stream_flush(struct table_stream *st, bool final) {
        int r;

        if (!st->rows && (st->printed || !final))
                return 0;
        r = diag_table_print(st->tb);
        scols_table_remove_lines(st->tb);
        st->rows = 0;
        if (!st->printed && scols_table_enable_noheadings(st->tb, 1) < 0 && r == 0)
                r = -ENOMEM;
        st->printed = true;
        return r;
}

static int stream_row(struct table_stream *st, struct view *v, size_t pi, size_t fi) {
        table_row(st->tb, v, pi, fi);
        return ++st->rows >= STREAM_ROWS ? stream_flush(st, false) : 0;
}

/* ---- JSON ---- */

static json_object *json_fd(struct view *v, size_t pi, size_t fi) {
        const struct diag_scan_proc *p = &v->scan->procs[pi];
        const struct diag_fd *fd = &p->fdt->fds[fi];
        const struct fdmark *m = v->marks[pi] ? &v->marks[pi][fi] : NULL;
        const struct diag_sock *s = diag_scan_sock(v->scan, p, fd);
        json_object *o = json_object_new_object(), *eps = json_object_new_array();
        char buf[1024];

        json_object_object_add(o, "fd", json_object_new_int(fd->fd));
        json_object_object_add(o, "mode", json_object_new_string(fmt_mode(fd, m, buf)));
        json_object_object_add(o, "type", json_object_new_string(diag_fd_type_name(fd->type)));
        fmt_name(v, p, fd, buf, sizeof buf);
        json_object_object_add(o, "name", json_object_new_string(buf));
        json_object_object_add(o, "link", json_object_new_string(fd->link));
        json_object_object_add(o, "deleted", json_object_new_boolean(fd->deleted));
        json_object_object_add(o, "inode", fd->inode ? json_object_new_int64((int64_t) fd->inode) : NULL);
        if (fd->dev_major || fd->dev_minor) {
                snprintf(buf, sizeof buf, "%u:%u", fd->dev_major, fd->dev_minor);
                json_object_object_add(o, "dev", json_object_new_string(buf));
        } else
                json_object_object_add(o, "dev", NULL);
        json_object_object_add(o, "pos", fd->have_fdinfo ? json_object_new_int64((int64_t) fd->pos) : NULL);
        if (fd->have_fdinfo) {
                fmt_flags(fd->flags, buf, sizeof buf);
                json_object_object_add(o, "flags", json_object_new_string(buf));
        } else
                json_object_object_add(o, "flags", NULL);
        if (s) {
                json_object *so = json_object_new_object();
                json_object_object_add(so, "proto", json_object_new_string(diag_sock_proto_name(s)));
                json_object_object_add(so, "state", json_object_new_string(diag_tcp_state_name(s->state)));
                if (s->family == AF_UNIX) {
                        json_object_object_add(so, "path", diag_json_str(s->path));
                        json_object_object_add(so, "peer_inode", s->peer_inode ? json_object_new_int64((int64_t) s->peer_inode) : NULL);
                } else {
                        json_object_object_add(so, "local", json_object_new_string(diag_sockaddr_format(&s->local, buf, sizeof buf)));
                        json_object_object_add(so, "remote", sock_connected(s) && s->state != 10 ?
                                               json_object_new_string(diag_sockaddr_format(&s->remote, buf, sizeof buf)) : NULL);
                }
                json_object_object_add(so, "recvq", json_object_new_int64(s->rqueue));
                json_object_object_add(so, "sendq", json_object_new_int64(s->wqueue));
                if (s->have_tcp_info && s->state != 10) {
                        json_object *t = json_object_new_object();
                        json_object_object_add(t, "rtt_us", json_object_new_int64(s->tcp.rtt_us));
                        json_object_object_add(t, "retransmits", json_object_new_int64(s->tcp.retransmits));
                        json_object_object_add(t, "total_retrans", json_object_new_int64(s->tcp.total_retrans));
                        json_object_object_add(t, "unacked", json_object_new_int64(s->tcp.unacked));
                        json_object_object_add(t, "last_data_recv_ms", json_object_new_int64(s->tcp.last_data_recv_ms));
                        json_object_object_add(t, "last_data_sent_ms", json_object_new_int64(s->tcp.last_data_sent_ms));
                        json_object_object_add(so, "tcp_info", t);
                } else
                        json_object_object_add(so, "tcp_info", NULL);
                json_object_object_add(o, "socket", so);
        } else
                json_object_object_add(o, "socket", NULL);
        {
                struct epjson e = { .arr = eps };
                each_endpoint(v, p, fd, endpoint_json, &e);
                json_object_object_add(o, "endpoints", eps);
                json_object_object_add(o, "endpoints_total", json_object_new_int64((int64_t) e.n));
        }
        if (fd->type == DIAG_FD_EVENTPOLL && fd->have_fdinfo) {
                json_object *w = json_object_new_array();
                for (size_t i = 0; i < fd->nepoll_tfds; i++)
                        json_object_array_add(w, json_object_new_int(fd->epoll_tfds[i]));
                json_object_object_add(o, "epoll_fds", w);
        }
        {
                json_object *la = json_object_new_array(), *ba = json_object_new_array();
                for (size_t i = 0; m && i < m->nlocks; i++) {
                        const struct diag_filelock *l = m->locks[i].lock;
                        json_object *lo = json_object_new_object(), *waiters = json_object_new_array();
                        const struct diag_locktab *t = v->scan->locks;
                        struct strbuf b = {};

                        json_object_object_add(lo, "kind", json_object_new_string(diag_lock_kind_name(l->kind)));
                        json_object_object_add(lo, "mode", json_object_new_string(diag_lock_mode_name(l->mode)));
                        json_object_object_add(lo, "start", json_object_new_int64((int64_t) l->start));
                        json_object_object_add(lo, "end", l->end == UINT64_MAX ? NULL : json_object_new_int64((int64_t) l->end));
                        json_object_object_add(lo, "waiting", json_object_new_boolean(m->locks[i].waiting));
                        if (m->locks[i].waiting) {
                                const struct diag_filelock *h = diag_locks_blocker(t, l);
                                pid_t hpid = h ? lock_pid(v, h) : 0;
                                json_object_object_add(lo, "holder_pid", hpid > 0 ? json_object_new_int(hpid) : NULL);
                        } else
                                for (size_t k = (size_t) (l - t->locks) + 1; k < t->n && t->locks[k].waiter; k++)
                                        if (diag_locks_blocker(t, &t->locks[k]) == l)
                                                json_object_array_add(waiters, json_object_new_int(lock_pid(v, &t->locks[k])));
                        json_object_object_add(lo, "waiters", waiters);
                        lock_text(v, &m->locks[i], &b);
                        json_object_object_add(lo, "text", diag_json_str(b.s));
                        free(b.s);
                        json_object_array_add(la, lo);
                }
                json_object_object_add(o, "locks", la);
                for (size_t i = 0; m && i < m->nblocked; i++)
                        json_object_array_add(ba, json_object_new_int(m->blocked[i]));
                json_object_object_add(o, "blocked_tids", ba);
        }
        return o;
}

/* ---- summary ---- */

static bool fd_selected(const struct view *v, const struct diag_scan_proc *p, const struct diag_fd *fd);

static void summary_counts(const struct view *v, const struct diag_scan_proc *p, unsigned counts[SUM_DELETED + 1]) {
        memset(counts, 0, sizeof(unsigned) * (SUM_DELETED + 1));
        for (size_t i = 0; p->fdt && i < p->fdt->n; i++) {
                const struct diag_fd *fd = &p->fdt->fds[i];
                if (!fd_selected(v, p, fd))
                        continue;
                counts[SUM_FDS]++;
                switch (fd->type) {
                case DIAG_FD_REG: case DIAG_FD_MEMFD: counts[SUM_REG]++; break;
                case DIAG_FD_DIR: counts[SUM_DIR]++; break;
                case DIAG_FD_FIFO: counts[SUM_FIFO]++; break;
                case DIAG_FD_SOCK: counts[SUM_SOCK]++; break;
                case DIAG_FD_CHR: case DIAG_FD_BLK: counts[SUM_CHR]++; break;
                case DIAG_FD_UNKNOWN: break;
                default: counts[SUM_ANON]++; break;
                }
                if (fd->deleted)
                        counts[SUM_DELETED]++;
        }
}

static int cmp_fdcount(const void *a, const void *b) {
        const struct diag_scan_proc *const *x = a, *const *y = b;
        size_t nx = (*x)->fdt ? (*x)->fdt->n : 0, ny = (*y)->fdt ? (*y)->fdt->n : 0;
        if (nx != ny)
                return nx < ny ? 1 : -1;
        return ((*x)->pid > (*y)->pid) - ((*x)->pid < (*y)->pid);
}

static bool filtering(void) {
        return arg.have_file || arg.file_name || arg.inode || arg.port >= 0 || arg.sockmatch != SM_NONE;
}

static int render_summary(struct view *v, size_t *ret_shown) {
        struct libscols_table *tb;
        _cleanup_free_ const struct diag_scan_proc **order = calloc(v->scan->n + 1, sizeof *order);
        size_t n = 0;
        int r;

        if (!order)
                return -ENOMEM;
        for (size_t i = 0; i < v->scan->n; i++)
                if (proc_selected(&v->scan->procs[i]) && v->scan->procs[i].fdt)
                        order[n++] = &v->scan->procs[i];
        qsort(order, n, sizeof *order, cmp_fdcount);
        tb = diag_table_new(&arg.cols, &arg.out, "processes");
        if (!tb)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct diag_scan_proc *p = order[i];
                struct libscols_line *ln;
                unsigned counts[SUM_DELETED + 1];
                uint64_t soft = 0;

                summary_counts(v, p, counts);
                if (filtering() && counts[SUM_FDS] == 0)
                        continue;
                ln = scols_table_new_line(tb, NULL);
                if (!ln)
                        break;
                (*ret_shown)++;
                diag_table_set(ln, &arg.cols, SUM_PID, "%d", p->pid);
                diag_table_set(ln, &arg.cols, SUM_COMM, "%s", p->comm);
                diag_table_set(ln, &arg.cols, SUM_FDS, "%u", counts[SUM_FDS]);
                if (diag_fd_nofile_limit(p->pid, &soft, NULL) == 0 && soft) {
                        diag_table_set(ln, &arg.cols, SUM_LIMIT, "%" PRIu64, soft);
                        diag_table_set(ln, &arg.cols, SUM_USE, "%.0f", 100.0 * counts[SUM_FDS] / (double) soft);
                }
                for (int k = SUM_REG; k <= SUM_DELETED; k++)
                        diag_table_set(ln, &arg.cols, k, "%u", counts[k]);
        }
        r = diag_table_print(tb);
        scols_unref_table(tb);
        return r;
}

/* ---- main ---- */

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options] [FILE]\n"
               "\n"
               "List open file descriptors with what is at the other end: the processes\n"
               "on the other side of a pipe, unix socket or loopback connection, TCP state,\n"
               "and the file locks held and waited for. Whole system unless -p or --comm.\n"
               "With FILE: who has it open, holds it locked or waits for its lock.\n"
               "\n"
               "Options:\n"
               " -p, --pid LIST           only these processes (comma-separated; a thread id\n"
               "                          stands for its process)\n"
               " -c, --comm NAME          only processes with this name\n"
               "     --port PORT          only sockets with this local or remote port\n"
               "     --inode N            only fds on this inode (socket, pipe or file)\n"
               "     --socket local|remote ADDR:PORT\n"
               "                          only sockets with this local (remote) address\n"
               " -s, --summary            fds per process and per type, against RLIMIT_NOFILE\n"
               "     --all-endpoints      list every holder at the other end, not a summary\n"
               "                          (more than 4) or a sample of 8 (-J)\n",
               diag_progname());
        diag_outopts_help(stdout);
        printf(" -v, --verbose            also say how many processes and fds went away\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\nColumns (-o):\n");
        diag_columns_list(stdout, columns, ELEMENTSOF(columns), false);
        printf("\nColumns with --summary:\n");
        diag_columns_list(stdout, sum_columns, ELEMENTSOF(sum_columns), false);
        printf("\n"
               "Exit status: 0 shown, 1 failure (nothing matched with FILE/--port/..., or a\n"
               "-p process gone, a zombie, a kernel thread or not readable), 2 bad usage,\n"
               "4 shown but some data missing, said on stderr (processes that could not be\n"
               "read, network namespaces not entered).\n"
               "\n"
               "Examples:\n"
               " %1$s -p 1234                     every fd of 1234, with endpoints\n"
               " %1$s /var/lib/php/sessions/sess_x  who has this file open or locked\n"
               " %1$s --port 6379 -o +STATE,RECVQ,LASTRCV\n"
               " %1$s -p 1234 -o FD,NAME,RTT,UNACKED,LASTRCV,LASTSND\n"
               " %1$s --summary                   fd counts per process (leaks)\n"
               "\n"
               "See diag-fds(1).\n", diag_progname());
}

/* The user named this file, so it may be stat()ed (the rule against stat is for
 * the targets' files) — but it may sit on the very mount that hangs. libdiag's
 * bounded child asks, holding none of our descriptors (a reader of our output
 * must not wait for it), and has two seconds; past that fds are matched by the
 * path text instead. */
static char *absolute_path(const char *f) {
        char cwd[4096];
        char *s;

        if (f[0] == '/' || !getcwd(cwd, sizeof cwd))
                return strdup(f);
        return asprintf(&s, "%s/%s", cwd, f) < 0 ? NULL : s;
}

struct file_id {
        dev_t dev;
        ino_t ino;
};

static int stat_file(void *file, void *shared, size_t size) {
        struct file_id *id = shared;
        struct stat st;

        if (size < sizeof *id)
                return -EINVAL;
        if (stat(file, &st) < 0)
                return negative_errno();
        *id = (struct file_id) { st.st_dev, st.st_ino };
        return 0;
}

#define LOOKUP_TIMEOUT_MS 2000

static int lookup_file(const char *file) {
        struct file_id *id = diag_bounded_alloc(sizeof *id);
        pid_t stuck = 0;
        int r;

        if (!id)
                return negative_errno();
        r = diag_bounded_run(stat_file, (void *) file, id, sizeof *id, LOOKUP_TIMEOUT_MS, &stuck);
        if (r == 0) {
                arg.have_file = true;
                arg.file_dev = id->dev;
                arg.file_ino = id->ino;
        }
        diag_bounded_free(id, sizeof *id);
        if (r != -ETIMEDOUT)
                return r;
        if (stuck)
                log_warn("the child process that stats %s is stuck (pid %d, in uninterruptible sleep): it is left "
                         "behind and ends when the file system answers or its connection is aborted",
                         file, (int) stuck);
        arg.file_name = absolute_path(file);
        return arg.file_name ? -ETIMEDOUT : -ENOMEM;
}

/* A failure of the whole run: its line on stderr and, with -J, the error object
 * on stdout. %m is strerror(-err). Returns DIAG_EXIT_FAILURE. */
static int run_failed(int err, const char *reason, pid_t pid, const char *fmt, ...) _printf_(4, 5);
static int run_failed(int err, const char *reason, pid_t pid, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        errno = err < 0 ? -err : err;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_error("%s", msg);
        if (arg.out.json)
                (void) diag_json_error(stdout, msg, reason, pid, DIAG_EXIT_FAILURE);
        (void) diag_close_stdout();
        return DIAG_EXIT_FAILURE;
}

/* A process named with -p whose fds cannot be shown, and why. */
struct target_fail {
        struct diag_target t;
        char message[256];
        const char *reason;
};

/*
 * The -p targets after the scan: each one that is gone, a zombie, a kernel
 * thread or not readable is said on stderr (the shared vocabulary), goes into
 * *ret_fails and out of arg.pids, so that the others are still shown.
 */
static int check_targets(const struct view *v, const struct diag_target *targets, struct target_fail **ret_fails,
                         size_t *ret_nfails) {
        struct target_fail *fails = calloc(arg.npids + 1, sizeof *fails);
        size_t nfails = 0, nok = 0;

        if (!fails)
                return -ENOMEM;
        for (size_t i = 0; i < arg.npids; i++) {
                struct diag_target t = targets[i];
                const struct diag_scan_proc *p = NULL;
                int err = 0;

                if (t.kind == DIAG_TARGET_LIVE) {
                        p = diag_scan_find(v->scan, t.pid);
                        if (!p) {
                                diag_target_resolve(t.pid, &t);         /* gone (or a zombie) since */
                                err = -ESRCH;
                        } else if (!p->fdt)
                                err = -EACCES;
                        else {
                                arg.pids[nok++] = t.pid;
                                continue;
                        }
                }
                fails[nfails].t = t;
                diag_target_message(&t, err, "read the fds of", fails[nfails].message, sizeof fails[nfails].message);
                fails[nfails].reason = diag_target_reason(&t, err);
                log_error("%s", fails[nfails].message);
                nfails++;
        }
        arg.npids = nok;
        *ret_fails = fails;
        *ret_nfails = nfails;
        return 0;
}

static int cmp_fail_pid(const void *a, const void *b) {
        const struct target_fail *x = a, *y = b;
        return (x->t.pid > y->t.pid) - (x->t.pid < y->t.pid);
}

/* The entry of a -p target that could not be read, in the -J document. */
static json_object *json_failed_target(const struct target_fail *f) {
        json_object *po = json_object_new_object(), *e = json_object_new_object();

        json_object_object_add(po, "pid", json_object_new_int(f->t.pid));
        json_object_object_add(po, "comm", f->t.comm[0] ? json_object_new_string(f->t.comm) : NULL);
        json_object_object_add(e, "message", json_object_new_string(f->message));
        json_object_object_add(e, "reason", diag_json_str(f->reason));
        json_object_object_add(po, "error", e);
        return po;
}

/*
 * The -J document is written one process at a time, as the table is, instead of
 * being built whole (a whole-system document held 10 times lsof's memory). It
 * reads as diag_json_print() would print it: two-space indent, "key": value.
 */
struct json_stream {
        size_t n;
};

static void json_stream_start(struct json_stream *js) {
        js->n = 0;
        fputs("{\n  \"schema\": \"diag-fds/1\",\n  \"processes\": [", stdout);
}

/* Print one process object, indented to its place, and free it. */
static void json_stream_process(struct json_stream *js, json_object *po) {
        const char *text = json_object_to_json_string_ext(po, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);

        fputs(js->n++ ? ",\n    " : "\n    ", stdout);
        for (const char *c = text; c && *c; c++) {
                putchar(*c);
                if (*c == '\n')
                        fputs("    ", stdout);
        }
        json_object_put(po);
}

static int json_stream_end(struct json_stream *js, const struct diag_scan *scan) {
        (void) js;
        printf("\n  ],\n  \"vanished\": {\n    \"processes\": %u,\n    \"fds\": %u\n  },\n"
               "  \"denied\": %u,\n  \"netns_skipped\": %u\n}\n",
               scan->vanished, scan->fds_vanished, scan->denied, scan->ns_skipped);
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -EIO;
}

/* The processes that could not be read at all, said once (rule: never tell
 * root to run as root). */
static void say_denied(unsigned n) {
        const char *why;

        if (geteuid() != 0)
                log_warn("%u process%s could not be read (not permitted: other users' processes); their fds are "
                         "not shown: run as root to see them", n, n == 1 ? "" : "es");
        else if ((why = diag_ptrace_denied_reason()))
                log_warn("%u process%s could not be read, not permitted even as root (%s); their fds are not shown",
                         n, n == 1 ? "" : "es", why);
        else
                log_warn("%u process%s could not be read, not permitted even as root (a security module refused); "
                         "their fds are not shown", n, n == 1 ? "" : "es");
}

static int parse_pid_list(const char *s) {
        static size_t alloc;
        return diag_parse_pid_list(s, &arg.pids, &arg.npids, &alloc);
}

enum { OPT_PORT = 0x100, OPT_INODE, OPT_SOCKET, OPT_ALL_ENDPOINTS };

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                DIAG_OUT_LONGOPTS,
                { "pid",     required_argument, NULL, 'p' },
                { "comm",    required_argument, NULL, 'c' },
                { "port",    required_argument, NULL, OPT_PORT },
                { "inode",   required_argument, NULL, OPT_INODE },
                { "socket",  required_argument, NULL, OPT_SOCKET },
                { "summary", no_argument,       NULL, 's' },
                { "all-endpoints", no_argument, NULL, OPT_ALL_ENDPOINTS },
                DIAG_STD_LONGOPTS,
                {}
        };
        const char *output = NULL;
        bool output_all = false, list_columns = false, filtered;
        _cleanup_free_ char *bad = NULL;
        struct view v = {};
        _cleanup_free_ struct diag_target *targets = NULL;
        _cleanup_free_ struct target_fail *fails = NULL;
        size_t nfails = 0;
        unsigned need, sflags = 0;
        size_t shown = 0;
        int c, r, status = DIAG_EXIT_OK;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();     /* getopt's messages name the tool, not its path */
        while ((c = getopt_long(argc, argv, DIAG_OUT_SHORTOPTS "p:c:s" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                long long n;
                unsigned long long u;

                if (diag_common_option(c, optarg, &arg.out, &output, &output_all, &list_columns, usage, &r)) {
                        if (r >= 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'p':
                        if (parse_pid_list(optarg) < 0)
                                return diag_usage_error("invalid process list: '%s'", optarg);
                        break;
                case 'c': arg.comm = optarg; break;
                case OPT_PORT:
                        if (diag_parse_ll(optarg, 10, 0, 65535, &n) < 0)
                                return diag_usage_error("invalid port: '%s'", optarg);
                        arg.port = (long) n;
                        break;
                case OPT_INODE:
                        if (diag_parse_ull(optarg, 10, &u) < 0 || u == 0)
                                return diag_usage_error("invalid inode: '%s'", optarg);
                        arg.inode = u;
                        break;
                case OPT_SOCKET:
                        if (strncmp(optarg, "local:", 6) == 0 || strncmp(optarg, "local=", 6) == 0) {
                                arg.sockmatch = SM_LOCAL;
                                arg.sockaddr = optarg + 6;
                        } else if (strncmp(optarg, "remote:", 7) == 0 || strncmp(optarg, "remote=", 7) == 0) {
                                arg.sockmatch = SM_REMOTE;
                                arg.sockaddr = optarg + 7;
                        } else if ((strcmp(optarg, "local") == 0 || strcmp(optarg, "remote") == 0) && optind < argc) {
                                arg.sockmatch = optarg[0] == 'l' ? SM_LOCAL : SM_REMOTE;
                                arg.sockaddr = argv[optind++];
                        } else
                                return diag_usage_error("invalid --socket: '%s' (local ADDR:PORT or remote ADDR:PORT)", optarg);
                        break;
                case 's': arg.summary = true; break;
                case OPT_ALL_ENDPOINTS: arg.all_endpoints = true; break;
                default:
                        return diag_usage_error("unexpected option");
                }
        }
        if (list_columns) {
                if (arg.summary)
                        diag_columns_list(stdout, sum_columns, ELEMENTSOF(sum_columns), arg.out.json);
                else
                        diag_columns_list(stdout, columns, ELEMENTSOF(columns), arg.out.json);
                return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : 0;
        }
        if (optind < argc)
                arg.file = argv[optind++];
        if (optind < argc)
                return diag_usage_error("unexpected argument: '%s'", argv[optind]);
        if (arg.file) {
                r = lookup_file(arg.file);
                if (r == -ETIMEDOUT)
                        log_warn("%s does not answer (a hung mount?): matching open files by name instead", arg.file);
                else if (r < 0)
                        return run_failed(r, "error", 0, "cannot stat %s: %m", arg.file);
        }
        /* -p: a thread id stands for its process; zombies and kernel threads are
         * told apart now (their fd tables are empty or unreadable) */
        if (arg.npids) {
                targets = calloc(arg.npids, sizeof *targets);
                if (!targets)
                        return run_failed(-ENOMEM, "error", 0, "out of memory");
                for (size_t i = 0; i < arg.npids; i++) {
                        diag_target_resolve(arg.pids[i], &targets[i]);
                        arg.pids[i] = targets[i].pid;
                }
        }

        if (arg.summary)
                r = diag_columns_select(&arg.cols, sum_columns, ELEMENTSOF(sum_columns), default_sum_columns,
                                        ELEMENTSOF(default_sum_columns), "DIAG_FDS_SUMMARY_COLUMNS", output, output_all, &bad);
        else
                r = diag_columns_select(&arg.cols, columns, ELEMENTSOF(columns), default_columns,
                                        ELEMENTSOF(default_columns), "DIAG_FDS_COLUMNS", output, output_all, &bad);
        if (r < 0)
                return diag_usage_error("unknown column: '%s'", bad ? bad : "?");

        need = diag_columns_need(&arg.cols);
        if (arg.out.json && !arg.summary)
                need |= NEED_STATX | NEED_NET | NEED_LOCKS | NEED_INDEX | NEED_ACCESS | NEED_BLOCKED | NEED_EPOLL;
        if (arg.have_file)
                need |= NEED_STATX | NEED_LOCKS | NEED_INDEX;
        if (arg.file_name)
                need |= NEED_LOCKS | NEED_INDEX;
        if (arg.port >= 0 || arg.sockmatch != SM_NONE)
                need |= NEED_NET;
        if (arg.inode)
                need |= NEED_STATX;     /* a regular file's inode comes from statx */
        arg.access_read = (need & NEED_ACCESS) != 0;
        if (need & NEED_STATX)
                sflags |= DIAG_SCAN_STATX;
        if (need & NEED_NET)
                sflags |= DIAG_SCAN_NET;
        if (need & NEED_LOCKS)
                sflags |= DIAG_SCAN_LOCKS | DIAG_SCAN_INDEX;
        if (need & NEED_INDEX)
                sflags |= DIAG_SCAN_INDEX;
        if (need & NEED_FDINFO)
                sflags |= DIAG_SCAN_FDINFO;
        if (need & NEED_EPOLL)
                sflags |= DIAG_SCAN_EPOLL;
        if (need & NEED_ACCESS)
                sflags |= DIAG_SCAN_ACCESS;

        /* Endpoints and locks need every process; otherwise only the asked ones. */
        diag_watchdog_arm(60);
        diag_watchdog_phase("scanning /proc");
        if ((sflags & DIAG_SCAN_INDEX) || !arg.pids)
                r = diag_scan_run(NULL, 0, sflags, &v.scan);
        else
                r = diag_scan_run(arg.pids, arg.npids, sflags, &v.scan);
        if (r < 0)
                return run_failed(r, "error", 0, "scan failed: %m");
        v.marks = calloc(v.scan->n + 1, sizeof *v.marks);
        if (!v.marks || (arg.pids && check_targets(&v, targets, &fails, &nfails) < 0)) {
                view_free(&v);
                return run_failed(-ENOMEM, "error", 0, "out of memory");
        }
        if (nfails) {
                status = DIAG_EXIT_FAILURE;
                /* -J and not one target shown: the run failed as a whole */
                if (arg.out.json && arg.npids == 0) {
                        bool same = true;
                        for (size_t i = 1; i < nfails; i++)
                                same &= fails[i].reason == fails[0].reason;
                        if (nfails == 1)
                                (void) diag_json_error(stdout, fails[0].message, fails[0].reason, fails[0].t.pid, status);
                        else
                                (void) diag_json_error(stdout, "none of the processes given could be read",
                                                       same ? fails[0].reason : "error", 0, status);
                        view_free(&v);
                        free(arg.pids);
                        free(arg.file_name);
                        (void) diag_close_stdout();
                        return status;
                }
        }
        if (need & NEED_LOCKS)
                mark_locks(&v);
        if (need & NEED_BLOCKED)
                for (size_t i = 0; i < v.scan->n; i++)
                        if (proc_selected(&v.scan->procs[i]))
                                mark_blocked(&v, i);

        diag_watchdog_phase("writing the output");
        filtered = filtering() || arg.comm;
        if (arg.summary) {
                r = render_summary(&v, &shown);
        } else if (arg.out.json) {
                struct json_stream js = {};
                size_t k = 0;           /* next failed target, in pid order */

                if (nfails)
                        qsort(fails, nfails, sizeof *fails, cmp_fail_pid);
                json_stream_start(&js);
                for (size_t i = 0; i < v.scan->n; i++) {
                        const struct diag_scan_proc *p = &v.scan->procs[i];
                        json_object *po, *fds;
                        uint64_t soft = 0, hard = 0;

                        if (!proc_selected(p) || !p->fdt)
                                continue;
                        fds = json_object_new_array();
                        for (size_t f = 0; f < p->fdt->n; f++)
                                if (fd_selected(&v, p, &p->fdt->fds[f])) {
                                        json_object_array_add(fds, json_fd(&v, i, f));
                                        shown++;
                                }
                        if (filtered && json_object_array_length(fds) == 0) {
                                json_object_put(fds);
                                continue;
                        }
                        for (; k < nfails && fails[k].t.pid < p->pid; k++)
                                json_stream_process(&js, json_failed_target(&fails[k]));
                        po = json_object_new_object();
                        json_object_object_add(po, "pid", json_object_new_int(p->pid));
                        json_object_object_add(po, "comm", json_object_new_string(p->comm));
                        json_object_object_add(po, "uid", json_object_new_int64(p->uid));
                        if (diag_fd_nofile_limit(p->pid, &soft, &hard) == 0) {
                                json_object_object_add(po, "nofile_soft", json_object_new_int64((int64_t) soft));
                                json_object_object_add(po, "nofile_hard", hard == UINT64_MAX ? NULL : json_object_new_int64((int64_t) hard));
                        }
                        json_object_object_add(po, "fds", fds);
                        json_stream_process(&js, po);
                }
                for (; k < nfails; k++)
                        json_stream_process(&js, json_failed_target(&fails[k]));
                r = json_stream_end(&js, v.scan);
        } else {
                struct table_stream st = {};
                r = stream_start(&st, "fds");
                for (size_t i = 0; r == 0 && i < v.scan->n; i++) {
                        const struct diag_scan_proc *p = &v.scan->procs[i];
                        if (!proc_selected(p) || !p->fdt)
                                continue;
                        for (size_t f = 0; r == 0 && f < p->fdt->n; f++)
                                if (fd_selected(&v, p, &p->fdt->fds[f])) {
                                        r = stream_row(&st, &v, i, f);
                                        shown++;
                                }
                }
                if (r == 0)
                        r = stream_flush(&st, true);
                scols_unref_table(st.tb);
        }
        if (r < 0)
                status = DIAG_EXIT_FAILURE;
        if (v.scan->ns_skipped) {
                log_warn("%u network namespace%s not entered (needs CAP_SYS_ADMIN): their sockets show without details",
                         v.scan->ns_skipped, v.scan->ns_skipped == 1 ? "" : "s");
                if (status == DIAG_EXIT_OK)
                        status = DIAG_EXIT_PARTIAL;
        }
        /* Without -p the whole system was asked for: what could not be read is
         * missing from it (with -p, only as endpoints: see diag-fds(1)). */
        if (v.scan->denied && !arg.pids) {
                say_denied(v.scan->denied);
                if (status == DIAG_EXIT_OK)
                        status = DIAG_EXIT_PARTIAL;
        }
        if (diag_log_verbose && (v.scan->vanished || v.scan->fds_vanished))
                log_warn("%u process%s and %u fd%s went away during the scan", v.scan->vanished,
                         v.scan->vanished == 1 ? "" : "es", v.scan->fds_vanished, v.scan->fds_vanished == 1 ? "" : "s");
        if (filtered && shown == 0 && status == DIAG_EXIT_OK)
                status = DIAG_EXIT_FAILURE;     /* like lsof: nothing matched */
        view_free(&v);
        free(arg.pids);
        free(arg.file_name);
        if (diag_close_stdout() < 0)
                return DIAG_EXIT_FAILURE;
        return status;
}
