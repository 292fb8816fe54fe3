/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * File locks: /proc/locks (every lock and waiter on the system) and the "lock:"
 * lines of /proc/PID/fdinfo/N (the locks that go with one open file; the only
 * place an OFD lock's process shows, as /proc/locks gives it pid -1).
 */

enum diag_lock_kind {
        DIAG_LOCK_FLOCK = 0,
        DIAG_LOCK_POSIX,
        DIAG_LOCK_OFD,          /* "OFDLCK" */
        DIAG_LOCK_LEASE,
        DIAG_LOCK_DELEG,
        DIAG_LOCK_OTHER,
};

enum diag_lock_mode {
        DIAG_LOCK_READ = 0,
        DIAG_LOCK_WRITE,
        DIAG_LOCK_NONE,         /* lease being broken to none, "UNLCK" */
};

struct diag_filelock {
        unsigned id;                    /* the "N:" ordinal; waiters repeat their blocker's */
        bool waiter;                    /* a "->" line: waiting for lock `id` */
        unsigned depth;                 /* nesting of "->" (1 = waits on a holder) */
        enum diag_lock_kind kind;
        bool mandatory;
        enum diag_lock_mode mode;
        bool breaking;                  /* lease: "BREAKING"/"BREAKER" */
        pid_t pid;                      /* -1 for OFD locks (and some leases) */
        unsigned dev_major, dev_minor;  /* hex in the file */
        uint64_t inode;
        uint64_t start;
        uint64_t end;                   /* UINT64_MAX for "EOF" */
};

struct diag_locktab {
        size_t n;
        struct diag_filelock *locks;    /* in file order: a holder, then its waiters */
};

const char *diag_lock_kind_name(enum diag_lock_kind k);   /* FLOCK POSIX OFDLCK LEASE DELEG */
const char *diag_lock_mode_name(enum diag_lock_mode m);   /* READ WRITE NONE */

/* Parse one line of /proc/locks or one fdinfo "lock:" line (the "lock:\t" prefix
 * stripped or not). -EINVAL if malformed. */
int diag_lock_parse_line(const char *line, struct diag_filelock *ret);

/* Parse a whole /proc/locks text / read /proc/locks. */
int diag_locks_parse(const char *text, struct diag_locktab **ret);
int diag_locks_read(struct diag_locktab **ret);
struct diag_locktab *diag_locktab_free(struct diag_locktab *t);
static inline void diag_locktab_freep(struct diag_locktab **t) { diag_locktab_free(*t); }

/* The holder entry a waiter waits for (same id, not a waiter), or NULL. */
const struct diag_filelock *diag_locks_blocker(const struct diag_locktab *t,
                                               const struct diag_filelock *waiter);
/* Do two locks cover the same file (dev and inode)? */
bool diag_lock_same_file(const struct diag_filelock *a, const struct diag_filelock *b);

/*
 * Who holds a lock now, and which sleeping threads likely wait for one. Both
 * need a system scan (diag/scan.h) made with DIAG_SCAN_STATX | DIAG_SCAN_INDEX
 * and /proc/locks (DIAG_SCAN_LOCKS); they read fdinfo of the fds on the locked
 * file only, never the file itself.
 */
struct diag_scan;

#define DIAG_LOCK_HOLDERS_MAX 8

struct diag_lock_holder {
        pid_t pid;
        int fd;                         /* its fd that carries the lock, -1 unknown */
        const char *path;               /* that fd's link (owned by the scan), NULL unknown */
        char comm[17];
};

/*
 * A flock or OFD lock belongs to the open file description, not to the process
 * that took it: when that process exits, the lock stays held by every process
 * that inherited the description (flock(1)'s child, a forked worker), and
 * /proc/locks keeps naming the dead pid. POSIX locks die with their process.
 */
struct diag_lock_holders {
        pid_t locker;                   /* the pid /proc/locks names; <= 0 for OFD locks */
        bool locker_exited;             /* it is gone, a zombie, or no longer has the file open */
        char locker_comm[17];           /* "" when gone */
        size_t n;                       /* live holders in h[] */
        struct diag_lock_holder h[DIAG_LOCK_HOLDERS_MAX];
        size_t more;                    /* live holders beyond h[] */
};

/* The live processes holding l (a held entry of s->locks, not a waiter). */
int diag_lock_holders_find(struct diag_scan *s, const struct diag_filelock *l, struct diag_lock_holders *ret);

/*
 * A thread asleep in a retry loop around a non-blocking lock call (sqlite's busy
 * handler sleeping between fcntl(F_SETLK) tries, flock(LOCK_NB) loops) is not in
 * /proc/locks. What can be seen: it sleeps, and its process has a file open on
 * which another process holds a lock that its own fds do not hold. That is
 * reported as an inference, with its evidence, never as a fact. A READ lock
 * of its own over the range another process reads does not rule it out: it
 * may wait to upgrade (sqlite's writer waits so for the readers).
 */
struct diag_lock_guess {
        pid_t pid, tid;                 /* the sleeping thread */
        char comm[17];                  /* its process */
        const char *call;               /* the sleep: "nanosleep", "clock_nanosleep", "select" ... */
        int fd;                         /* its fd on the locked file */
        const char *path;               /* that fd's link (owned by the scan) */
        const struct diag_filelock *lock;       /* the held entry in s->locks */
        bool reads_too;                 /* it holds a READ lock over the same range itself (an upgrade) */
        struct diag_lock_holders holders;
};

/* The sleep call a thread is in (nanosleep, clock_nanosleep, or poll/select
 * with nothing to watch), or NULL when it is not sleeping. */
struct diag_syscall_state;
const char *diag_lock_sleep_call(const struct diag_syscall_state *sc);

/* Does thread tid of pid, asleep in `call`, likely wait for a file lock another
 * process holds? 1 and *ret filled, 0 if nothing suggests it, negative errno. */
int diag_lock_guess_wait(struct diag_scan *s, pid_t pid, pid_t tid, const char *call, struct diag_lock_guess *ret);

/* "likely waits for FLOCK WRITE on /x.db held by pid 123 (sqlite3): it sleeps in
 * nanosleep and has /x.db open (fd 3), which it does not lock". Returns buf. */
char *diag_lock_guess_format(const struct diag_lock_guess *g, char *buf, size_t size);

/* The evidence alone, for a hop that names the lock itself: "pid 456 sleeps in
 * nanosleep and has /x.db open (fd 3), which it does not lock, while pid 123
 * (sqlite3) holds a POSIX WRITE lock on it". Returns buf. */
char *diag_lock_guess_evidence(const struct diag_lock_guess *g, char *buf, size_t size);

/* "pid 123 \"sqlite3\"" or, when the locker exited, "pid 456 \"sleep\" (and 1
 * more), which inherited it: the locker pid 123 (flock) exited". Returns buf. */
char *diag_lock_holders_format(const struct diag_lock_holders *h, char *buf, size_t size);
