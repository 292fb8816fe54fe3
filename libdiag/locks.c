/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "diag/locks.h"
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
