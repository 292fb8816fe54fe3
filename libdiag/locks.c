/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "diag/locks.h"
#include "diag/proc.h"
#include "diag/scan.h"
#include "diag/syscall.h"
#include "diag/util.h"

/*
 * The line format is fs/locks.c lock_get_status():
 *
 *   "%lld: " [depth-1 spaces "-> "] KIND " " COLUMN2 " " MODE " " PID " "
 *   (MAJ:MIN:INO | "<none>:0") " " START " " (END | "EOF")
 *
 * with fixed-width padding inside the words (e.g. "POSIX  ADVISORY  WRITE"),
 * so fields are split on runs of blanks. Waiters follow their holder and repeat
 * its id; kernels before 5.12 printed every waiter as "N: -> ", newer ones add
 * one space before "->" per extra level of nesting.
 */

/* Longest line we accept; real ones are under 100 characters. */
#define LOCK_LINE_MAX 512
#define LOCK_FIELDS_MAX 8

static const char *const kind_names[] = {
        [DIAG_LOCK_FLOCK] = "FLOCK",
        [DIAG_LOCK_POSIX] = "POSIX",
        [DIAG_LOCK_OFD] = "OFDLCK",
        [DIAG_LOCK_LEASE] = "LEASE",
        [DIAG_LOCK_DELEG] = "DELEG",
        [DIAG_LOCK_OTHER] = "OTHER",
};

static const char *const mode_names[] = {
        [DIAG_LOCK_READ] = "READ",
        [DIAG_LOCK_WRITE] = "WRITE",
        [DIAG_LOCK_NONE] = "NONE",
};

const char *diag_lock_kind_name(enum diag_lock_kind k) {
        if ((size_t) k >= ELEMENTSOF(kind_names))
                return "?";
        return kind_names[k];
}

const char *diag_lock_mode_name(enum diag_lock_mode m) {
        if ((size_t) m >= ELEMENTSOF(mode_names))
                return "?";
        return mode_names[m];
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static char *skip_blanks(char *p) {
        while (is_blank(*p))
                p++;
        return p;
}

/* Split p in place on runs of blanks; more than max fields is malformed. */
static int split_fields(char *p, char **fields, size_t max, size_t *ret_n) {
        size_t n = 0;

        for (;;) {
                p = skip_blanks(p);
                if (!*p)
                        break;
                if (n >= max)
                        return -EINVAL;
                fields[n++] = p;
                while (*p && !is_blank(*p))
                        p++;
                if (*p)
                        *p++ = 0;
        }
        *ret_n = n;
        return 0;
}

static int parse_kind(const char *s, enum diag_lock_kind *ret) {
        static const struct {
                const char *name;
                enum diag_lock_kind kind;
        } table[] = {
                { "POSIX", DIAG_LOCK_POSIX },
                { "FLOCK", DIAG_LOCK_FLOCK },
                { "OFDLCK", DIAG_LOCK_OFD },
                { "LEASE", DIAG_LOCK_LEASE },
                { "DELEG", DIAG_LOCK_DELEG },
                /* FL_ACCESS: a transient POSIX probe of old mandatory locking. */
                { "ACCESS", DIAG_LOCK_OTHER },
                { "UNKNOWN", DIAG_LOCK_OTHER },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcmp(s, table[i].name) == 0) {
                        *ret = table[i].kind;
                        return 0;
                }
        return -EINVAL;
}

/* The second column: advisory/mandatory for locks, the state for leases. */
static int parse_column2(const char *s, enum diag_lock_kind kind, struct diag_filelock *l) {
        if (kind == DIAG_LOCK_LEASE || kind == DIAG_LOCK_DELEG) {
                if (strcmp(s, "ACTIVE") == 0)
                        return 0;
                if (strcmp(s, "BREAKING") == 0 || strcmp(s, "BREAKER") == 0) {
                        l->breaking = true;
                        return 0;
                }
                return -EINVAL;
        }
        if (strcmp(s, "ADVISORY") == 0 || strcmp(s, "*NOINODE*") == 0 ||
            strcmp(s, "UNKNOWN") == 0)
                return 0;
        /* "MSNFS" was the flock(LOCK_MAND) share mode, removed in 5.19. */
        if (strcmp(s, "MANDATORY") == 0 || strcmp(s, "MSNFS") == 0) {
                l->mandatory = true;
                return 0;
        }
        return -EINVAL;
}

static int parse_mode(const char *s, enum diag_lock_mode *ret) {
        if (strcmp(s, "READ") == 0)
                *ret = DIAG_LOCK_READ;
        /* "RW" is the old LOCK_MAND read+write share mode: it excludes writers. */
        else if (strcmp(s, "WRITE") == 0 || strcmp(s, "RW") == 0)
                *ret = DIAG_LOCK_WRITE;
        else if (strcmp(s, "UNLCK") == 0 || strcmp(s, "NONE") == 0)
                *ret = DIAG_LOCK_NONE;
        else
                return -EINVAL;
        return 0;
}

static bool is_hex(const char *s) {
        return s[strspn(s, "0123456789abcdefABCDEF")] == 0;
}

/* "MAJ:MIN:INO" (hex, hex, decimal), or the no-inode forms "<none>:0" and "*NOINODE*". */
static int parse_file_id(char *s, struct diag_filelock *l) {
        unsigned long long major, minor, ino;
        char *c1, *c2;
        int r;

        if (strcmp(s, "<none>:0") == 0 || strcmp(s, "*NOINODE*") == 0) {
                l->dev_major = l->dev_minor = 0;
                l->inode = 0;
                return 0;
        }
        c1 = strchr(s, ':');
        if (!c1)
                return -EINVAL;
        c2 = strchr(c1 + 1, ':');
        if (!c2)
                return -EINVAL;
        *c1 = *c2 = 0;
        /* Hex digits only: strtoull would also take a "0x" prefix. */
        if (!is_hex(s) || !is_hex(c1 + 1))
                return -EINVAL;
        r = diag_parse_ull(s, 16, &major);
        if (r < 0)
                return r;
        r = diag_parse_ull(c1 + 1, 16, &minor);
        if (r < 0)
                return r;
        r = diag_parse_ull(c2 + 1, 10, &ino);
        if (r < 0)
                return r;
        if (major > UINT_MAX || minor > UINT_MAX)
                return -ERANGE;
        l->dev_major = (unsigned) major;
        l->dev_minor = (unsigned) minor;
        l->inode = ino;
        return 0;
}

/* Parse a NUL-terminated, writable copy of one line. */
static int parse_line_in_place(char *p, struct diag_filelock *ret) {
        struct diag_filelock l = {};
        char *fields[LOCK_FIELDS_MAX];
        unsigned long long ull;
        long long ll;
        size_t n, spaces = 0;
        char *colon;

        p = skip_blanks(p);
        /* fdinfo: "lock:\t1: FLOCK ..." */
        if (strncmp(p, "lock:", 5) == 0)
                p = skip_blanks(p + 5);

        colon = strchr(p, ':');
        if (!colon)
                return -EINVAL;
        *colon = 0;
        if (diag_parse_ull(p, 10, &ull) < 0 || ull > UINT_MAX)
                return -EINVAL;
        l.id = (unsigned) ull;

        /* Waiter marker: the blanks before the first "->" give the nesting
         * depth; further "->" words (not printed by any kernel we know of)
         * count one level each. */
        p = colon + 1;
        while (is_blank(p[spaces]))
                spaces++;
        if (strncmp(p + spaces, "->", 2) == 0) {
                l.waiter = true;
                l.depth = (unsigned) MAX(spaces, (size_t) 1);
                p += spaces + 2;
                for (;;) {
                        char *q = skip_blanks(p);
                        if (q == p || strncmp(q, "->", 2) != 0)
                                break;
                        l.depth++;
                        p = q + 2;
                }
                if (!is_blank(*p))
                        return -EINVAL;
        }

        if (split_fields(p, fields, ELEMENTSOF(fields), &n) < 0 || n != 7)
                return -EINVAL;

        if (parse_kind(fields[0], &l.kind) < 0)
                return -EINVAL;
        if (parse_column2(fields[1], l.kind, &l) < 0)
                return -EINVAL;
        if (parse_mode(fields[2], &l.mode) < 0)
                return -EINVAL;
        /* Any int: -1 for OFD locks, 0 or a translated pid across pid namespaces. */
        if (diag_parse_ll(fields[3], 10, INT_MIN, INT_MAX, &ll) < 0)
                return -EINVAL;
        l.pid = (pid_t) ll;
        if (parse_file_id(fields[4], &l) < 0)
                return -EINVAL;
        if (diag_parse_ull(fields[5], 10, &ull) < 0)
                return -EINVAL;
        l.start = ull;
        if (strcmp(fields[6], "EOF") == 0)
                l.end = UINT64_MAX;
        else {
                if (diag_parse_ull(fields[6], 10, &ull) < 0)
                        return -EINVAL;
                l.end = ull;
        }

        *ret = l;
        return 0;
}

/* Copy [line, line+len) into buf, as parse_line_in_place() splits in place. */
static int parse_span(const char *line, size_t len, struct diag_filelock *ret) {
        char buf[LOCK_LINE_MAX];

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
        if (len >= sizeof buf)
                return -EINVAL;
        memcpy(buf, line, len);
        buf[len] = 0;
        return parse_line_in_place(buf, ret);
}

int diag_lock_parse_line(const char *line, struct diag_filelock *ret) {
        const char *nl;

        if (!line || !ret)
                return -EINVAL;
        nl = strchr(line, '\n');
        /* One line only: text after the newline is not ours to ignore. */
        if (nl && nl[1 + strspn(nl + 1, " \t\r\n")])
                return -EINVAL;
        return parse_span(line, strlen(line), ret);
}

static bool line_is_blank(const char *line, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (!is_blank(line[i]) && line[i] != '\r')
                        return false;
        return true;
}

struct diag_locktab *diag_locktab_free(struct diag_locktab *t) {
        if (!t)
                return NULL;
        free(t->locks);
        free(t);
        return NULL;
}

/* A line we cannot parse fails the whole text: it means the format is not the
 * one we know, and a table with silent holes would misstate who blocks whom. */
int diag_locks_parse(const char *text, struct diag_locktab **ret) {
        _cleanup_(diag_locktab_freep) struct diag_locktab *t = NULL;
        size_t alloc = 0;
        const char *line = text;

        if (!text || !ret)
                return -EINVAL;
        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        while (*line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                struct diag_filelock l;
                int r;

                if (!line_is_blank(line, len)) {
                        r = parse_span(line, len, &l);
                        if (r < 0)
                                return r;
                        if (DIAG_GROW(t->locks, alloc, t->n + 1) < 0)
                                return -ENOMEM;
                        t->locks[t->n++] = l;
                }
                if (!nl)
                        break;
                line = nl + 1;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

int diag_locks_read(struct diag_locktab **ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        /* A busy NFS server can hold hundreds of thousands of locks. */
        r = diag_read_file_at(AT_FDCWD, "/proc/locks", 64u << 20, &text, NULL);
        if (r < 0)
                return r;
        return diag_locks_parse(text, ret);
}

const struct diag_filelock *diag_locks_blocker(const struct diag_locktab *t,
                                               const struct diag_filelock *waiter) {
        size_t i;

        if (!t || !waiter || !waiter->waiter || t->n == 0)
                return NULL;
        /* Waiters follow their holder, so search backwards from the waiter when
         * it is one of ours; a copy held elsewhere is looked up from the end. */
        if (waiter >= t->locks && waiter < t->locks + t->n)
                i = (size_t) (waiter - t->locks);
        else
                i = t->n;
        while (i-- > 0) {
                const struct diag_filelock *l = &t->locks[i];
                if (l->id == waiter->id && !l->waiter)
                        return l;
        }
        return NULL;
}

bool diag_lock_same_file(const struct diag_filelock *a, const struct diag_filelock *b) {
        if (!a || !b)
                return false;
        /* "<none>:0" says nothing about which file: never equal. */
        if (a->inode == 0 && a->dev_major == 0 && a->dev_minor == 0)
                return false;
        return a->dev_major == b->dev_major && a->dev_minor == b->dev_minor &&
                a->inode == b->inode;
}

/* ---- who holds a lock now ---- */

static bool fd_on_lock_file(const struct diag_fd *fd, const struct diag_filelock *l) {
        return fd->inode == l->inode && fd->dev_major == l->dev_major && fd->dev_minor == l->dev_minor;
}

/* The same held lock as seen in an fdinfo "lock:" line (which repeats the pid
 * /proc/locks gives, -1 for OFD locks). */
static bool fdinfo_carries(const struct diag_filelock *line, const struct diag_filelock *l) {
        return !line->waiter && line->kind == l->kind && line->mode == l->mode && line->start == l->start &&
               line->end == l->end && line->inode == l->inode && line->pid == l->pid;
}

static void holders_add(struct diag_lock_holders *h, pid_t pid, const struct diag_fd *fd, const char *comm) {
        for (size_t i = 0; i < h->n; i++)
                if (h->h[i].pid == pid)
                        return;
        if (h->n >= ELEMENTSOF(h->h)) {
                h->more++;
                return;
        }
        h->h[h->n] = (struct diag_lock_holder) { .pid = pid, .fd = fd ? fd->fd : -1, .path = fd ? fd->link : NULL };
        if (comm && *comm)
                snprintf(h->h[h->n].comm, sizeof h->h[h->n].comm, "%s", comm);
        else
                (void) diag_proc_read_comm(pid, h->h[h->n].comm, sizeof h->h[h->n].comm);
        h->n++;
}

/* pid's first fd on l's file in the scan, or NULL. */
static const struct diag_fd *proc_fd_on(const struct diag_scan_proc *p, const struct diag_filelock *l) {
        for (size_t i = 0; p && p->fdt && i < p->fdt->n; i++)
                if (fd_on_lock_file(&p->fdt->fds[i], l))
                        return &p->fdt->fds[i];
        return NULL;
}

int diag_lock_holders_find(struct diag_scan *s, const struct diag_filelock *l, struct diag_lock_holders *ret) {
        size_t first, nref;

        if (!s || !l || !ret || l->waiter)
                return -EINVAL;
        memset(ret, 0, sizeof *ret);
        ret->locker = l->pid;
        if (l->pid > 0) {
                const struct diag_scan_proc *p = diag_scan_find(s, l->pid);
                const struct diag_fd *fd = proc_fd_on(p, l);
                char st = '?';
                bool alive = diag_task_read_state(l->pid, l->pid, &st) >= 0 && st != 'Z' && st != 'X';

                /* alive, and (when its fds were read) still on the file: a reused
                 * pid has no fd there, but a POSIX lock is its process's anyway */
                if (alive && (fd || !p || !p->fdt || l->kind == DIAG_LOCK_POSIX)) {
                        holders_add(ret, l->pid, fd, p ? p->comm : NULL);
                        return 0;
                }
                ret->locker_exited = true;
                if (st == 'Z' || st == 'X')
                        (void) diag_proc_read_comm(l->pid, ret->locker_comm, sizeof ret->locker_comm);
                if (l->kind != DIAG_LOCK_FLOCK && l->kind != DIAG_LOCK_OFD)
                        return 0;       /* a POSIX lock dies with its process */
        }
        /* the processes whose fd on the file carries the lock in its fdinfo */
        nref = diag_scan_refs(s, DIAG_REF_FILE, makedev(l->dev_major, l->dev_minor), l->inode, &first);
        for (size_t k = 0; k < nref; k++) {
                const struct diag_fdref *ref = diag_scan_ref(s, first + k);
                struct diag_scan_proc *p = &s->procs[ref->proc];
                struct diag_fd *fd = &p->fdt->fds[ref->fd];

                if (!fd_on_lock_file(fd, l) || (!fd->have_fdinfo && diag_fd_read_fdinfo(p->pid, fd) < 0))
                        continue;
                for (size_t j = 0; j < fd->nlocks; j++)
                        if (fdinfo_carries(&fd->locks[j], l)) {
                                holders_add(ret, p->pid, fd, p->comm);
                                break;
                        }
        }
        return 0;
}

char *diag_lock_holders_format(const struct diag_lock_holders *h, char *buf, size_t size) {
        char more[48] = "", locker[48] = "";

        if (h->n > 1 || h->more)
                snprintf(more, sizeof more, " (and %zu more)", h->n - 1 + h->more);
        if (h->locker_comm[0])
                snprintf(locker, sizeof locker, " (%s)", h->locker_comm);
        if (!h->n && h->locker_exited)
                snprintf(buf, size, "nobody alive: the locker pid %d%s exited", h->locker, locker);
        else if (!h->n)
                snprintf(buf, size, "a process not found");
        else if (h->locker_exited)
                snprintf(buf, size, "pid %d \"%s\"%s, which inherited it: the locker pid %d%s exited", h->h[0].pid,
                         h->h[0].comm, more, h->locker, locker);
        else
                snprintf(buf, size, "pid %d \"%s\"%s", h->h[0].pid, h->h[0].comm, more);
        return buf;
}

/* ---- likely waits of sleeping threads ---- */

const char *diag_lock_sleep_call(const struct diag_syscall_state *sc) {
        enum diag_arch arch = diag_arch_native();
        enum diag_sc_class c;
        const char *name;

        if (!sc || sc->kind != DIAG_SC_IN)
                return NULL;
        c = diag_syscall_class(arch, sc);
        name = diag_syscall_name(arch, sc->nr);
        if (!name)
                return NULL;
        if (c == DIAG_SCC_SLEEP)
                return name;
        /* poll(NULL, 0, ms), select(0, NULL, NULL, NULL, &tv): a sleep too */
        if (c == DIAG_SCC_POLL) {
                bool nofds = strstr(name, "select") ? sc->args[0] == 0 : sc->args[1] == 0;
                return nofds ? name : NULL;
        }
        return NULL;
}

enum { MINE_NONE, MINE_READ, MINE_COVERS };

/* What a lock of the sleeper's own says about l, held by another: nothing
 * (another kind, another byte range), MINE_COVERS when it is l itself (a shared
 * open file description) or overlaps it with a WRITE side (the same owner, then),
 * or MINE_READ when both only read the same byte range (record locks): the sleeper may be waiting
 * to upgrade (sqlite's writer holds its SHARED range for reading and waits for
 * the readers' to go before it can write it). */
static int mine_vs(const struct diag_filelock *mine, const struct diag_filelock *l) {
        bool flock = l->kind == DIAG_LOCK_FLOCK;

        if (mine->waiter || (mine->kind == DIAG_LOCK_FLOCK) != flock)
                return MINE_NONE;
        if (!flock && !(mine->start <= l->end && l->start <= mine->end))
                return MINE_NONE;
        /* two shared flocks are the common case of readers, not an upgrade */
        if (flock || fdinfo_carries(mine, l) || mine->mode == DIAG_LOCK_WRITE || l->mode == DIAG_LOCK_WRITE)
                return MINE_COVERS;
        return MINE_READ;
}

/* The most the process's own locks say about l (mine_vs): its /proc/locks
 * entries, and the fdinfo of its fds on the file. */
static int proc_locks_file(struct diag_scan *s, struct diag_scan_proc *p, const struct diag_filelock *l) {
        const struct diag_locktab *t = s->locks;
        int m = MINE_NONE;

        for (size_t i = 0; i < t->n && m != MINE_COVERS; i++)
                if (t->locks[i].pid == p->pid && diag_lock_same_file(&t->locks[i], l))
                        m = MAX(m, mine_vs(&t->locks[i], l));
        for (size_t i = 0; p->fdt && i < p->fdt->n && m != MINE_COVERS; i++) {
                struct diag_fd *fd = &p->fdt->fds[i];
                if (!fd_on_lock_file(fd, l) || (!fd->have_fdinfo && diag_fd_read_fdinfo(p->pid, fd) < 0))
                        continue;
                for (size_t j = 0; j < fd->nlocks; j++)
                        m = MAX(m, mine_vs(&fd->locks[j], l));
        }
        return m;
}

int diag_lock_guess_wait(struct diag_scan *s, pid_t pid, pid_t tid, const char *call, struct diag_lock_guess *ret) {
        const struct diag_locktab *t;
        struct diag_scan_proc *p;

        if (!s || !ret)
                return -EINVAL;
        t = s->locks;
        p = (struct diag_scan_proc *) diag_scan_find(s, pid);
        if (!t || !p || !p->fdt)
                return 0;
        /* a WRITE lock first: it excludes every request; a READ lock only writers */
        for (int want = DIAG_LOCK_WRITE; want >= (int) DIAG_LOCK_READ; want--)
                for (size_t i = 0; i < t->n; i++) {
                        const struct diag_filelock *l = &t->locks[i];
                        const struct diag_fd *fd;
                        bool self = false;
                        int mine;

                        if (l->waiter || (int) l->mode != want || l->pid == pid ||
                            (l->kind != DIAG_LOCK_FLOCK && l->kind != DIAG_LOCK_POSIX && l->kind != DIAG_LOCK_OFD) ||
                            (l->dev_major == 0 && l->dev_minor == 0 && l->inode == 0))
                                continue;
                        fd = proc_fd_on(p, l);
                        if (!fd || (mine = proc_locks_file(s, p, l)) == MINE_COVERS)
                                continue;
                        memset(ret, 0, sizeof *ret);
                        if (diag_lock_holders_find(s, l, &ret->holders) < 0 || !ret->holders.n)
                                continue;
                        for (size_t k = 0; k < ret->holders.n; k++)
                                self = self || ret->holders.h[k].pid == pid;
                        if (self)
                                continue;
                        ret->pid = pid;
                        ret->tid = tid;
                        snprintf(ret->comm, sizeof ret->comm, "%s", p->comm);
                        ret->call = call;
                        ret->fd = fd->fd;
                        ret->path = fd->link;
                        ret->lock = l;
                        ret->reads_too = mine == MINE_READ;
                        return 1;
                }
        return 0;
}

static const char *own_lock(const struct diag_lock_guess *g) {
        return g->reads_too ? "on which it holds the same range only for reading (to write it, it must wait)" :
                              "which it does not lock";
}

char *diag_lock_guess_evidence(const struct diag_lock_guess *g, char *buf, size_t size) {
        const char *path = g->path ? g->path : "?";

        snprintf(buf, size, "pid %d sleeps in %s and has %s open (fd %d), %s, while pid %d (%s) holds a %s %s lock on "
                 "it", g->pid, g->call ? g->call : "a sleep", path, g->fd, own_lock(g), g->holders.h[0].pid,
                 g->holders.h[0].comm, diag_lock_kind_name(g->lock->kind), diag_lock_mode_name(g->lock->mode));
        return buf;
}

char *diag_lock_guess_format(const struct diag_lock_guess *g, char *buf, size_t size) {
        const char *path = g->path ? g->path : "?";

        snprintf(buf, size, "likely waits for %s %s on %s held by pid %d (%s): it sleeps in %s and has %s open (fd %d), %s",
                 diag_lock_kind_name(g->lock->kind), diag_lock_mode_name(g->lock->mode), path, g->holders.h[0].pid,
                 g->holders.h[0].comm, g->call ? g->call : "a sleep", path, g->fd, own_lock(g));
        return buf;
}
