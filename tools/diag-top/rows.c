/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top's rows: a frame's processes -> what is listed. Filtered, then folded by
 * command line or ordered as a tree, sorted by a column. No allocation when neither
 * groups nor a tree are asked for (the rows array is reused); grouping and the tree
 * take one scratch block per call.
 */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "diag/util.h"
#include "top.h"

/* ---- columns ---- */

static const char *const col_names[TOP_COL__N] = {
        [TOP_COL_PID] = "PID", [TOP_COL_USER] = "USER", [TOP_COL_STATE] = "S", [TOP_COL_CPU] = "CPU%",
        [TOP_COL_RSS] = "RSS", [TOP_COL_GROWTH] = "GROW/m", [TOP_COL_MAJFLT] = "MAJFLT/s",
        [TOP_COL_READ] = "READ/s", [TOP_COL_WRITE] = "WRITE/s", [TOP_COL_THREADS] = "THR",
        [TOP_COL_BLOCKED] = "BLOCKED", [TOP_COL_WAIT] = "WAIT", [TOP_COL_CMD] = "COMMAND",
};

const char *top_col_name(enum top_col c) {
        return (unsigned) c < TOP_COL__N ? col_names[c] : "?";
}

int top_col_parse(const char *name) {
        static const struct { const char *name; enum top_col col; } aliases[] = {
                { "cpu", TOP_COL_CPU }, { "rss", TOP_COL_RSS }, { "grow", TOP_COL_GROWTH },
                { "growth", TOP_COL_GROWTH }, { "majflt", TOP_COL_MAJFLT }, { "read", TOP_COL_READ },
                { "write", TOP_COL_WRITE }, { "threads", TOP_COL_THREADS }, { "thr", TOP_COL_THREADS },
                { "blocked", TOP_COL_BLOCKED }, { "cmd", TOP_COL_CMD }, { "command", TOP_COL_CMD },
                { "state", TOP_COL_STATE },
        };
        if (!name)
                return -1;
        for (int c = 0; c < TOP_COL__N; c++)
                if (strcasecmp(name, col_names[c]) == 0)
                        return c;
        for (size_t i = 0; i < ELEMENTSOF(aliases); i++)
                if (strcasecmp(name, aliases[i].name) == 0)
                        return (int) aliases[i].col;
        return -1;
}

/* ---- formatting ---- */

void top_fmt_bytes(char *buf, size_t size, double bytes) {
        static const char units[] = "BKMGTPE";
        if (!(bytes >= 0) || bytes == (double) DIAG_REC_NA) {
                snprintf(buf, size, "-");
                return;
        }
        double v = bytes;
        size_t u = 0;
        while (v >= 1024 && u + 2 < sizeof(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%.0fB", v);
        else if (v < 99.95)
                snprintf(buf, size, "%.1f%c", v, units[u]);
        else
                snprintf(buf, size, "%.0f%c", v, units[u]);
}

void top_fmt_ms(char *buf, size_t size, int64_t ms) {
        if (ms < 0) {
                snprintf(buf, size, "-");
                return;
        }
        int64_t s = ms / 1000;
        if (s < 60)
                snprintf(buf, size, "%" PRId64 ".%" PRId64 "s", s, ms % 1000 / 100);
        else if (s < 3600)
                snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
        else
                snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

/* ---- users: a small cache of getpwuid_r (the files in /etc are read once a uid) ---- */

#define USER_CACHE 128
static struct user_entry {
        uid_t uid;
        bool used;
        char name[33];
} user_cache[USER_CACHE];
static unsigned user_next, user_last;

const char *top_user_name(uid_t uid) {
        if (user_cache[user_last].used && user_cache[user_last].uid == uid)
                return user_cache[user_last].name;
        for (unsigned i = 0; i < USER_CACHE; i++)
                if (user_cache[i].used && user_cache[i].uid == uid) {
                        user_last = i;
                        return user_cache[i].name;
                }
        struct user_entry *e = &user_cache[user_next];
        user_last = user_next;
        user_next = (user_next + 1) % USER_CACHE;
        e->uid = uid;
        e->used = true;
        struct passwd pw, *res = NULL;
        char buf[1024];
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name && *res->pw_name)
                snprintf(e->name, sizeof(e->name), "%.32s", res->pw_name);
        else
                snprintf(e->name, sizeof(e->name), "%u", (unsigned) uid);
        return e->name;
}

int top_user_parse(const char *s, uid_t *ret) {
        if (!s || !*s)
                return -1;
        struct passwd pw, *res = NULL;
        char buf[1024];
        if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) == 0 && res) {
                *ret = res->pw_uid;
                return 0;
        }
        long long v;
        if (diag_parse_ll(s, 10, 0, (long long) UINT32_MAX - 1, &v) < 0)
                return -1;
        *ret = (uid_t) v;
        return 0;
}

/* ---- filter ---- */

struct pid_set {
        const pid_t *pids;
        size_t n;
        pid_t extra[32];                /* the processes of listed thread ids (D-state table) */
        size_t nextra;
};

static void pid_set_init(struct pid_set *s, const struct top_filter *fl, const struct top_frame *f) {
        s->pids = fl->pids;
        s->n = fl->npids;
        s->nextra = 0;
        const struct diag_rec_interval *iv = f->iv;
        if (!iv)
                return;
        for (size_t r = 0; r < iv->t[DIAG_REC_DSTATE].nrows && s->nextra < ELEMENTSOF(s->extra); r++) {
                int64_t tid = DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_TID);
                int64_t pid = DIAG_REC_NUM(iv, DIAG_REC_DSTATE, r, DS_PID);
                if (tid == pid)
                        continue;
                for (size_t i = 0; i < s->n; i++)
                        if (s->pids[i] == tid) {
                                s->extra[s->nextra++] = (pid_t) pid;
                                break;
                        }
        }
}

static bool pid_set_has(const struct pid_set *s, pid_t pid) {
        for (size_t i = 0; i < s->n; i++)
                if (s->pids[i] == pid)
                        return true;
        for (size_t i = 0; i < s->nextra; i++)
                if (s->extra[i] == pid)
                        return true;
        return false;
}

static bool passes(const struct top_filter *fl, const struct pid_set *ps, const struct top_proc *p) {
        if (fl->hide_kernel && (!p->cmd || !*p->cmd))
                return false;
        if (fl->have_uid && p->uid != fl->uid)
                return false;
        if (fl->pids && !pid_set_has(ps, p->pid))
                return false;
        if (fl->text && *fl->text && !strcasestr(p->comm ? p->comm : "", fl->text) &&
            !strcasestr(p->cmd ? p->cmd : "", fl->text))
                return false;
        return true;
}

static void row_of(struct top_row *r, const struct top_proc *p) {
        *r = (struct top_row) {
                .p = p, .count = 1,
                .cpu_pct = p->cpu_pct, .majflt_s = p->majflt_s, .read_s = p->read_s, .write_s = p->write_s,
                .rss_growth = p->rss_growth, .rss = p->rss, .threads = p->threads,
                .start_min = p->start, .start_max = p->start,
                .blocked_ms = -1, .pss = DIAG_REC_NA,
        };
}

/* ---- groups: rows folded by command line ---- */

static const char *group_key(const struct top_proc *p) {
        return p->cmd && *p->cmd ? p->cmd : p->comm ? p->comm : "";
}

static uint64_t str_hash(const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 0x100000001b3ULL;
        return h ^ (h >> 29);
}

/* Add a rate that may be unknown (-1) to a sum that may be unknown. */
static double add_rate(double sum, double v) {
        if (v < 0)
                return sum;
        return sum < 0 ? v : sum + v;
}

static int64_t add_count(int64_t sum, int64_t v) {
        if (v == DIAG_REC_NA || v < 0)
                return sum;
        return sum == DIAG_REC_NA ? v : sum + v;
}

static void fold(struct top_row *g, const struct top_proc *p) {
        g->count++;
        g->cpu_pct = add_rate(g->cpu_pct, p->cpu_pct);
        g->majflt_s = add_rate(g->majflt_s, p->majflt_s);
        g->read_s = add_rate(g->read_s, p->read_s);
        g->write_s = add_rate(g->write_s, p->write_s);
        g->rss_growth += p->rss_growth;
        g->rss = add_count(g->rss, p->rss);
        g->threads = add_count(g->threads, p->threads);
        g->start_min = MIN(g->start_min, p->start);
        g->start_max = MAX(g->start_max, p->start);
        if (p->start < g->p->start || (p->start == g->p->start && p->pid < g->p->pid))
                g->p = p;
}

static int build_groups(struct top_rows *rows, const struct top_frame *f, const struct top_filter *fl,
                        const struct pid_set *ps) {
        size_t nslots = 64;
        while (nslots < f->nprocs * 2)
                nslots *= 2;
        uint32_t *slots = malloc(nslots * sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        memset(slots, 0xff, nslots * sizeof(*slots));
        rows->n = 0;
        for (size_t i = 0; i < f->nprocs; i++) {
                const struct top_proc *p = &f->procs[i];
                if (!passes(fl, ps, p))
                        continue;
                const char *key = group_key(p);
                size_t s = str_hash(key) & (nslots - 1);
                for (; slots[s] != UINT32_MAX; s = (s + 1) & (nslots - 1)) {
                        const char *k = group_key(rows->rows[slots[s]].p);
                        if (k == key || strcmp(k, key) == 0)
                                break;
                }
                if (slots[s] != UINT32_MAX) {
                        fold(&rows->rows[slots[s]], p);
                        continue;
                }
                slots[s] = (uint32_t) rows->n;
                row_of(&rows->rows[rows->n++], p);
        }
        free(slots);
        return 0;
}

/* ---- sorting ---- */

static int cmp_num(double a, double b) {
        return a < b ? -1 : a > b;
}

static int cmp_i64(int64_t a, int64_t b) {
        return a < b ? -1 : a > b;
}

static int cmp_user(uid_t a, uid_t b) {
        if (a == b)
                return 0;
        char na[33];
        snprintf(na, sizeof(na), "%s", top_user_name(a));      /* the cache may reuse an entry */
        int c = strcmp(na, top_user_name(b));
        return c ? c : cmp_i64(a, b);
}

static int cmp_col(const struct top_row *a, const struct top_row *b, enum top_col col) {
        switch (col) {
        case TOP_COL_PID: return cmp_i64(a->p->pid, b->p->pid);
        case TOP_COL_USER: return cmp_user(a->p->uid, b->p->uid);
        case TOP_COL_STATE: return cmp_i64(a->p->state, b->p->state);
        case TOP_COL_CPU: return cmp_num(a->cpu_pct, b->cpu_pct);
        case TOP_COL_RSS: return cmp_i64(a->rss, b->rss);
        case TOP_COL_GROWTH: return cmp_num(a->rss_growth, b->rss_growth);
        case TOP_COL_MAJFLT: return cmp_num(a->majflt_s, b->majflt_s);
        case TOP_COL_READ: return cmp_num(a->read_s, b->read_s);
        case TOP_COL_WRITE: return cmp_num(a->write_s, b->write_s);
        case TOP_COL_THREADS: return cmp_i64(a->threads, b->threads);
        case TOP_COL_BLOCKED:
        case TOP_COL_WAIT: return cmp_i64(a->blocked_ms, b->blocked_ms);
        case TOP_COL_CMD: return strcmp(group_key(a->p), group_key(b->p));
        case TOP_COL__N: break;
        }
        return 0;
}

static int cmp_rows(const void *x, const void *y, void *ud) {
        const struct top_row *a = x, *b = y;
        const struct top_rows_opts *o = ud;
        if (o->sort == TOP_COL_WAIT && !a->wait != !b->wait)
                return a->wait ? -1 : 1;        /* rows with a WAIT first, either way */
        int c = cmp_col(a, b, o->sort);
        if (c)
                return o->ascending ? c : -c;
        c = cmp_i64(a->p->pid, b->p->pid);
        return c ? c : cmp_i64(a->p->start, b->p->start);
}

/* ---- tree: parents before children, siblings in sort order ---- */

#define NONE UINT32_MAX

static int tree_order(struct top_rows *rows) {
        size_t n = rows->n, nslots = 64;
        if (n < 2) {
                if (n)
                        rows->rows[0].depth = 0;
                return 0;
        }
        while (nslots < n * 2)
                nslots *= 2;
        /* parent, first child, last child, next sibling, depth (n + 1: the last is the
         * root of roots), the DFS stack, the pid hash, then the rows in their new order */
        size_t nidx = 5 * (n + 1) + 2 * n + 4 + nslots;
        size_t off = (nidx * sizeof(uint32_t) + 15) / 16 * 16;
        char *mem = malloc(off + n * sizeof(struct top_row));
        if (!mem)
                return -ENOMEM;
        uint32_t *parent = (uint32_t *) mem, *first = parent + n + 1, *last = first + n + 1,
                 *next = last + n + 1, *depth = next + n + 1, *stack = depth + n + 1,
                 *slots = stack + 2 * n + 4;
        struct top_row *out = (struct top_row *) (mem + off);
        memset(slots, 0xff, nslots * sizeof(*slots));
        for (size_t i = 0; i < n; i++) {
                size_t s = ((uint32_t) rows->rows[i].p->pid * 2654435761u) & (nslots - 1);
                while (slots[s] != NONE && rows->rows[slots[s]].p->pid != rows->rows[i].p->pid)
                        s = (s + 1) & (nslots - 1);
                if (slots[s] == NONE)
                        slots[s] = (uint32_t) i;
        }
        for (size_t i = 0; i <= n; i++)
                first[i] = last[i] = next[i] = depth[i] = NONE;
        for (size_t i = 0; i < n; i++) {
                pid_t pp = rows->rows[i].p->ppid;
                size_t s = ((uint32_t) pp * 2654435761u) & (nslots - 1);
                while (slots[s] != NONE && rows->rows[slots[s]].p->pid != pp)
                        s = (s + 1) & (nslots - 1);
                uint32_t par = slots[s] == NONE || slots[s] == i || pp <= 0 ? (uint32_t) n : slots[s];
                parent[i] = par;
                if (first[par] == NONE)
                        first[par] = (uint32_t) i;
                else
                        next[last[par]] = (uint32_t) i;
                last[par] = (uint32_t) i;
        }
        size_t nout = 0;
        /* the roots first; then anything a cycle of parents left unreached, as a root */
        for (size_t k = 0; k <= n && nout < n; k++) {
                size_t start = k == 0 ? n : k - 1;
                if (start < n) {
                        if (depth[start] != NONE)
                                continue;
                        parent[start] = (uint32_t) n;
                        next[start] = NONE;     /* its siblings are reached from elsewhere */
                }
                size_t sp = 0;
                stack[sp++] = start == n ? first[n] : (uint32_t) start;
                while (sp) {
                        uint32_t x = stack[--sp];
                        if (x == NONE)
                                continue;
                        if (depth[x] != NONE) {         /* seen: a cycle */
                                stack[sp++] = next[x];
                                continue;
                        }
                        depth[x] = parent[x] == n ? 0 : depth[parent[x]] + 1;
                        out[nout] = rows->rows[x];
                        out[nout++].depth = depth[x];
                        stack[sp++] = next[x];
                        stack[sp++] = first[x];
                }
        }
        memcpy(rows->rows, out, nout * sizeof(*out));
        free(mem);
        return 0;
}

static int sort_rows(struct top_rows *rows, const struct top_rows_opts *o) {
        if (rows->n > 1)
                qsort_r(rows->rows, rows->n, sizeof(*rows->rows), cmp_rows, (void *) o);
        for (size_t i = 0; i < rows->n; i++)
                rows->rows[i].depth = 0;
        if (o->tree && !o->group)
                return tree_order(rows);
        return 0;
}

void top_rows_sort(struct top_rows *rows, const struct top_rows_opts *o) {
        (void) sort_rows(rows, o);      /* without memory for the tree, the sorted list */
}

int top_rows_build(struct top_rows *rows, const struct top_frame *f, const struct top_rows_opts *o) {
        rows->n = 0;
        if (!f)
                return 0;
        if (DIAG_GROW(rows->rows, rows->alloc, MAX(f->nprocs, (size_t) 1)) < 0)
                return -ENOMEM;
        struct pid_set ps;
        pid_set_init(&ps, &o->filter, f);
        if (o->group) {
                int r = build_groups(rows, f, &o->filter, &ps);
                if (r < 0)
                        return r;
        } else {
                for (size_t i = 0; i < f->nprocs; i++)
                        if (passes(&o->filter, &ps, &f->procs[i]))
                                row_of(&rows->rows[rows->n++], &f->procs[i]);
        }
        return sort_rows(rows, o);
}

void top_rows_free(struct top_rows *rows) {
        free(rows->rows);
        rows->rows = NULL;
        rows->n = rows->alloc = 0;
}
