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
