/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's model: the tables' schemas, the string interner and row operations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diag/record.h"
#include "diag/util.h"

#define NAMES(...) (const char *const[]) { __VA_ARGS__ }

const struct diag_rec_schema diag_rec_schemas[DIAG_REC_NTABLES] = {
        [DIAG_REC_HOST] = {
                .name = "host", .nstr = 0, .nnum = H__N, .delta = true,
                .str_names = NAMES(NULL),
                .num_names = NAMES("cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_iowait", "cpu_irq",
                                   "cpu_softirq", "cpu_steal", "ncpu", "clk_tck", "load1", "load5", "load15",
                                   "procs_running", "procs_blocked", "nr_threads", "nr_procs", "mem_total",
                                   "mem_free", "mem_avail", "buffers", "cached", "swap_total", "swap_free",
                                   "dirty", "writeback", "shmem", "anon", "pgfault", "pgmajfault", "pgscan",
                                   "pgsteal", "pswpin", "pswpout", "oom_kill", "ctxt", "forks",
                                   "psi_cpu_some", "psi_cpu_full", "psi_mem_some", "psi_mem_full",
                                   "psi_io_some", "psi_io_full"),
        },
        [DIAG_REC_DISK] = {
                .name = "disk", .nstr = DK__NS, .nnum = DK__N, .key_str = 1, .delta = true,
                .str_names = NAMES("name"),
                .num_names = NAMES("rd_ios", "rd_sectors", "wr_ios", "wr_sectors", "io_ms", "inflight",
                                   "weighted_ms"),
        },
        [DIAG_REC_NET] = {
                .name = "net", .nstr = NT__NS, .nnum = NT__N, .key_str = 1, .delta = true,
                .str_names = NAMES("name"),
                .num_names = NAMES("rx_bytes", "rx_packets", "rx_errs", "rx_drop", "tx_bytes", "tx_packets",
                                   "tx_errs", "tx_drop"),
        },
        [DIAG_REC_CGROUP] = {
                .name = "cgroup", .nstr = CG__NS, .nnum = CG__N, .key_str = 2, .delta = true,
                .str_names = NAMES("path", "version"),
                .num_names = NAMES("mem_current", "mem_limit", "mem_failcnt", "mem_high_events",
                                   "mem_max_events", "mem_oom", "mem_oom_kill", "io_rbytes", "io_wbytes",
                                   "io_rios", "io_wios", "cpu_usage_us", "cpu_periods", "cpu_throttled",
                                   "cpu_throttled_us", "psi_cpu_some", "psi_mem_some", "psi_mem_full",
                                   "psi_io_some", "psi_io_full", "nprocs"),
        },
        [DIAG_REC_PROC] = {
                .name = "proc", .nstr = PR__NS, .nnum = PR__N, .key_num = 2, .delta = true,
                .str_names = NAMES("comm", "cmd", "cgroup"),
                .num_names = NAMES("pid", "start", "ppid", "uid", "state", "utime", "stime", "rss", "vsz",
                                   "minflt", "majflt", "read_bytes", "write_bytes", "threads"),
        },
        [DIAG_REC_DSTATE] = {
                .name = "dstate", .nstr = DS__NS, .nnum = DS__N, .key_num = 1, .delta = false,
                .str_names = NAMES("comm", "wchan"),
                .num_names = NAMES("tid", "pid"),
        },
        [DIAG_REC_EVENT] = {
                .name = "event", .nstr = EV__NS, .nnum = EV__N, .delta = false,
                .str_names = NAMES("kind", "comm", "text", "path"),
                .num_names = NAMES("time_ns", "pid", "rss", "count"),
        },
};

/* ---- the interner: open addressing over ids, strings in one pool ---- */

struct diag_rec_strings {
        char *pool;                     /* NUL-terminated strings */
        size_t pool_len, pool_alloc;
        size_t *off;                    /* by id; SIZE_MAX: undefined */
        size_t nids, ids_alloc;
        uint32_t *hash;                 /* slots: id + 1, 0 empty */
        size_t hash_size;               /* power of two */
};

static uint64_t hash_bytes(const char *s, size_t len) {
        uint64_t h = 1469598103934665603ULL;          /* FNV-1a */
        for (size_t i = 0; i < len; i++) {
                h ^= (unsigned char) s[i];
                h *= 1099511628211ULL;
        }
        return h;
}

static int pool_add(struct diag_rec_strings *s, const char *str, size_t len, size_t *ret_off) {
        if (s->pool_len + len + 1 > s->pool_alloc) {
                size_t n = s->pool_alloc ? s->pool_alloc : 4096;
                while (n < s->pool_len + len + 1)
                        n *= 2;
                char *p = realloc(s->pool, n);
                if (!p)
                        return -ENOMEM;
                s->pool = p;
                s->pool_alloc = n;
        }
        memcpy(s->pool + s->pool_len, str, len);
        s->pool[s->pool_len + len] = 0;
        *ret_off = s->pool_len;
        s->pool_len += len + 1;
        return 0;
}

static int ids_room(struct diag_rec_strings *s, size_t n) {
        if (n <= s->ids_alloc)
                return 0;
        size_t a = s->ids_alloc ? s->ids_alloc : 256;
        while (a < n)
                a *= 2;
        size_t *o = realloc(s->off, a * sizeof(*o));
        if (!o)
                return -ENOMEM;
        for (size_t i = s->ids_alloc; i < a; i++)
                o[i] = SIZE_MAX;
        s->off = o;
        s->ids_alloc = a;
        return 0;
}

static void hash_insert(struct diag_rec_strings *s, uint32_t id) {
        const char *str = s->pool + s->off[id];
        size_t m = s->hash_size - 1;
        for (size_t i = hash_bytes(str, strlen(str)) & m;; i = (i + 1) & m)
                if (!s->hash[i]) {
                        s->hash[i] = id + 1;
                        return;
                }
}

static int hash_room(struct diag_rec_strings *s) {
        if (s->nids * 2 < s->hash_size)
                return 0;
        size_t n = s->hash_size ? s->hash_size * 2 : 1024;
        uint32_t *h = calloc(n, sizeof(*h));
        if (!h)
                return -ENOMEM;
        free(s->hash);
        s->hash = h;
        s->hash_size = n;
        for (size_t id = 0; id < s->nids; id++)
                if (s->off[id] != SIZE_MAX)
                        hash_insert(s, (uint32_t) id);
        return 0;
}

struct diag_rec_strings *diag_rec_strings_new(void) {
        struct diag_rec_strings *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        if (diag_rec_intern(s, "", 0) != 0) {
                diag_rec_strings_free(s);
                return NULL;
        }
        return s;
}

void diag_rec_strings_free(struct diag_rec_strings *s) {
        if (!s)
                return;
        free(s->pool);
        free(s->off);
        free(s->hash);
        free(s);
}

void diag_rec_strings_reset(struct diag_rec_strings *s) {
        for (size_t i = 0; i < s->nids; i++)
                s->off[i] = SIZE_MAX;
        if (s->hash)
                memset(s->hash, 0, s->hash_size * sizeof(*s->hash));
        s->nids = 0;
        s->pool_len = 0;
        (void) diag_rec_intern(s, "", 0);       /* fits: the pool and tables are kept */
}

uint32_t diag_rec_intern(struct diag_rec_strings *s, const char *str, size_t len) {
        if (memchr(str, 0, len))
                len = strlen(str);
        if (s->hash_size) {
                size_t m = s->hash_size - 1;
                for (size_t i = hash_bytes(str, len) & m; s->hash[i]; i = (i + 1) & m) {
                        uint32_t id = s->hash[i] - 1;
                        const char *c = s->pool + s->off[id];
                        if (strncmp(c, str, len) == 0 && c[len] == 0)
                                return id;
                }
        }
        if (s->nids >= UINT32_MAX - 1 || ids_room(s, s->nids + 1) < 0)
                return UINT32_MAX;
        size_t off;
        if (pool_add(s, str, len, &off) < 0)
                return UINT32_MAX;
        uint32_t id = (uint32_t) s->nids++;
        s->off[id] = off;
        if (hash_room(s) < 0) {
                s->nids--;
                s->off[id] = SIZE_MAX;
                s->pool_len = off;
                return UINT32_MAX;
        }
        hash_insert(s, id);
        return id;
}

int diag_rec_strings_set(struct diag_rec_strings *s, uint32_t id, const char *str, size_t len) {
        if (id == UINT32_MAX || memchr(str, 0, len))
                return -EINVAL;
        int r = ids_room(s, (size_t) id + 1);
        if (r < 0)
                return r;
        size_t off;
        r = pool_add(s, str, len, &off);
        if (r < 0)
                return r;
        s->off[id] = off;               /* lookups by id only: the hash is the encoder's */
        if (id >= s->nids)
                s->nids = (size_t) id + 1;
        return 0;
}

const char *diag_rec_str(const struct diag_rec_strings *s, uint32_t id) {
        if (!s || id >= s->nids || s->off[id] == SIZE_MAX)
                return "";
        return s->pool + s->off[id];
}

size_t diag_rec_strings_count(const struct diag_rec_strings *s) {
        return s->nids;
}

size_t diag_rec_strings_bytes(const struct diag_rec_strings *s) {
        return s->pool_alloc + s->ids_alloc * sizeof(size_t) + s->hash_size * sizeof(uint32_t);
}

/* ---- intervals and rows ---- */

void diag_rec_interval_init(struct diag_rec_interval *iv, struct diag_rec_strings *strings) {
        memset(iv, 0, sizeof(*iv));
        iv->strings = strings;
}

void diag_rec_interval_free(struct diag_rec_interval *iv) {
        for (int t = 0; t < DIAG_REC_NTABLES; t++) {
                free(iv->t[t].str);
                free(iv->t[t].num);
        }
        memset(iv->t, 0, sizeof(iv->t));
}

void diag_rec_interval_clear(struct diag_rec_interval *iv) {
        for (int t = 0; t < DIAG_REC_NTABLES; t++)
                iv->t[t].nrows = 0;
        iv->seq = 0;
        iv->realtime_ns = iv->boottime_ns = 0;
        iv->interval_ms = iv->took_us = 0;
        iv->late_us = 0;
}

static int table_room(struct diag_rec_table *tb, const struct diag_rec_schema *sc, size_t rows) {
        if (rows <= tb->alloc)
                return 0;
        size_t a = tb->alloc ? tb->alloc : 16;
        while (a < rows)
                a *= 2;
        if (sc->nstr) {
                uint32_t *s = realloc(tb->str, a * sc->nstr * sizeof(*s));
                if (!s)
                        return -ENOMEM;
                tb->str = s;
        }
        int64_t *n = realloc(tb->num, a * sc->nnum * sizeof(*n));
        if (!n)
                return -ENOMEM;
        tb->num = n;
        tb->alloc = a;
        return 0;
}

ssize_t diag_rec_add_row(struct diag_rec_interval *iv, enum diag_rec_table_id t) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];
        struct diag_rec_table *tb = &iv->t[t];
        if (table_room(tb, sc, tb->nrows + 1) < 0)
                return -1;
        size_t r = tb->nrows++;
        if (sc->nstr)
                memset(tb->str + r * sc->nstr, 0, sc->nstr * sizeof(*tb->str));
        memset(tb->num + r * sc->nnum, 0, sc->nnum * sizeof(*tb->num));
        return (ssize_t) r;
}

static int key_cmp(const struct diag_rec_interval *x, size_t a, const struct diag_rec_interval *y, size_t b,
                   enum diag_rec_table_id t) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];
        for (unsigned i = 0; i < sc->key_str; i++) {
                uint32_t ia = x->t[t].str[a * sc->nstr + i], ib = y->t[t].str[b * sc->nstr + i];
                if (ia == ib && x->strings == y->strings)
                        continue;
                int c = strcmp(diag_rec_str(x->strings, ia), diag_rec_str(y->strings, ib));
                if (c)
                        return c;
        }
        for (unsigned i = 0; i < sc->key_num; i++) {
                int64_t va = x->t[t].num[a * sc->nnum + i], vb = y->t[t].num[b * sc->nnum + i];
                if (va != vb)
                        return va < vb ? -1 : 1;
        }
        return 0;
}

int diag_rec_key_cmp(const struct diag_rec_interval *x, size_t a, const struct diag_rec_interval *y, size_t b,
                     enum diag_rec_table_id t) {
        return key_cmp(x, a, y, b, t);
}

/* qsort has no context argument in C11; sort an index array with a file-scope context
 * (the recorder is single-threaded), then permute the rows in place. */
static const struct diag_rec_interval *sort_iv;
static enum diag_rec_table_id sort_t;

static int cmp_index(const void *pa, const void *pb) {
        size_t a = *(const size_t *) pa, b = *(const size_t *) pb;
        int c = key_cmp(sort_iv, a, sort_iv, b, sort_t);
        return c ? c : (a < b ? -1 : a > b);
}

static bool sorted(const struct diag_rec_interval *iv, enum diag_rec_table_id t) {
        for (size_t r = 1; r < iv->t[t].nrows; r++)
                if (key_cmp(iv, r - 1, iv, r, t) > 0)
                        return false;
        return true;
}

void diag_rec_sort(struct diag_rec_interval *iv, enum diag_rec_table_id t) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];
        struct diag_rec_table *tb = &iv->t[t];
        if (t == DIAG_REC_EVENT || tb->nrows < 2 || sorted(iv, t))
                return;
        static size_t *idx;
        static size_t idx_alloc;
        static uint32_t *tmp_s;
        static int64_t *tmp_n;
        static size_t tmp_alloc;
        if (tb->nrows > idx_alloc) {
                size_t a = tb->alloc;
                size_t *i2 = realloc(idx, a * sizeof(*idx));
                if (!i2)
                        return;
                idx = i2;
                idx_alloc = a;
        }
        size_t need = tb->nrows * (sc->nstr > sc->nnum ? sc->nstr : sc->nnum);
        if (need > tmp_alloc) {
                uint32_t *s2 = realloc(tmp_s, need * sizeof(*tmp_s));
                if (!s2)
                        return;
                tmp_s = s2;
                int64_t *n2 = realloc(tmp_n, need * sizeof(*tmp_n));
                if (!n2)
                        return;
                tmp_n = n2;
                tmp_alloc = need;
        }
        for (size_t r = 0; r < tb->nrows; r++)
                idx[r] = r;
        sort_iv = iv;
        sort_t = t;
        qsort(idx, tb->nrows, sizeof(*idx), cmp_index);
        for (size_t r = 0; r < tb->nrows; r++) {
                if (sc->nstr)
                        memcpy(tmp_s + r * sc->nstr, tb->str + idx[r] * sc->nstr, sc->nstr * sizeof(*tmp_s));
                memcpy(tmp_n + r * sc->nnum, tb->num + idx[r] * sc->nnum, sc->nnum * sizeof(*tmp_n));
        }
        if (sc->nstr)
                memcpy(tb->str, tmp_s, tb->nrows * sc->nstr * sizeof(*tmp_s));
        memcpy(tb->num, tmp_n, tb->nrows * sc->nnum * sizeof(*tmp_n));
}

ssize_t diag_rec_find_proc(const struct diag_rec_interval *iv, pid_t pid, int64_t start) {
        const struct diag_rec_table *tb = &iv->t[DIAG_REC_PROC];
        size_t lo = 0, hi = tb->nrows;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int64_t p = tb->num[mid * PR__N + PR_PID], s = tb->num[mid * PR__N + PR_START];
                if (p < pid || (p == pid && s < start))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < tb->nrows && tb->num[lo * PR__N + PR_PID] == pid && tb->num[lo * PR__N + PR_START] == start)
                return (ssize_t) lo;
        return -1;
}

int diag_rec_interval_copy(struct diag_rec_interval *dst, const struct diag_rec_interval *src) {
        dst->seq = src->seq;
        dst->realtime_ns = src->realtime_ns;
        dst->boottime_ns = src->boottime_ns;
        dst->interval_ms = src->interval_ms;
        dst->took_us = src->took_us;
        dst->late_us = src->late_us;
        bool same = dst->strings == src->strings;
        for (int t = 0; t < DIAG_REC_NTABLES; t++) {
                const struct diag_rec_schema *sc = &diag_rec_schemas[t];
                const struct diag_rec_table *s = &src->t[t];
                struct diag_rec_table *d = &dst->t[t];
                if (table_room(d, sc, s->nrows) < 0)
                        return -ENOMEM;
                d->nrows = s->nrows;
                if (!s->nrows)
                        continue;
                memcpy(d->num, s->num, s->nrows * sc->nnum * sizeof(*d->num));
                for (size_t i = 0; i < s->nrows * sc->nstr; i++) {
                        if (same) {
                                d->str[i] = s->str[i];
                                continue;
                        }
                        const char *str = diag_rec_str(src->strings, s->str[i]);
                        uint32_t id = diag_rec_intern(dst->strings, str, strlen(str));
                        if (id == UINT32_MAX)
                                return -ENOMEM;
                        d->str[i] = id;
                }
        }
        return 0;
}

/* ---- byte buffers ---- */

int diag_rec_buf_reserve(struct diag_rec_buf *b, size_t more) {
        if (b->len + more <= b->alloc)
                return 0;
        size_t a = b->alloc ? b->alloc : 65536;
        while (a < b->len + more)
                a *= 2;
        uint8_t *d = realloc(b->data, a);
        if (!d)
                return -ENOMEM;
        b->data = d;
        b->alloc = a;
        return 0;
}

void diag_rec_buf_free(struct diag_rec_buf *b) {
        free(b->data);
        b->data = NULL;
        b->len = b->alloc = 0;
}
