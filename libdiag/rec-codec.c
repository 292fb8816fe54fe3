/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's codec: intervals to bytes and back, each interval of a chain coded
 * against the one before. The byte format is the section "Frame payload" of
 * docs/diag-record-format.md; in short:
 *
 *   interval = tag ('K' key, 'D' delta), varint body length, body
 *   key body = version, schema block, header, string definitions, tables
 *   delta body = header, string definitions, tables
 *
 * Strings travel as chain-local "wire" ids, dense from 1 in the order of their first
 * use since the key interval, each defined inline (in the interval that first uses
 * it). The decoder then never sees an id it has no definition for, and its memory is
 * bounded by the bytes it read, whatever ids the recorder's interner hands out.
 *
 * Rows of a delta table are merge-walked against the previous interval's (both sorted
 * by key): each row says how many previous rows are gone before it and whether it is
 * new or the same row as the next previous one, then which columns changed. The
 * decoder matches previous rows by position, never by key: no string compares.
 *
 * The encoder relies on the recorder's ids being stable within a chain: a recorder that
 * resets its interner calls diag_rec_encoder_key() (a reset is also noticed when the
 * interner has fewer ids than before, or when another interner is used).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diag/record.h"
#include "diag/util.h"

#define PAYLOAD_VERSION 1
#define TAG_KEY 0x4b                    /* 'K' */
#define TAG_DELTA 0x44                  /* 'D' */
#define TABLE_FLAG_DELTA 1u

/* The decoder's bounds: anything past them is a corrupt payload. */
#define MAX_TABLES 64
#define MAX_COLUMNS 64                  /* string and integer columns of a table together */
#define MAX_NAME 255                    /* table and column names */
#define MAX_ROWS 10000000
#define MAX_STRING (1u << 20)           /* longer strings are cut to this by the encoder */

#define VARINT_MAX 10
/* The most bytes one row can take: gone/new varint, mask varint, every column. */
#define ROW_MAX(ncols) ((size_t) VARINT_MAX * (2 + (ncols)))

/* ---- varints and zigzag ---- */

static inline uint8_t *put_varint(uint8_t *q, uint64_t v) {
        while (v >= 0x80) {
                *q++ = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        *q++ = (uint8_t) v;
        return q;
}

static inline bool get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *ret) {
        const uint8_t *p = *pp;

        if (p < end && *p < 0x80) {
                *ret = *p;
                *pp = p + 1;
                return true;
        }
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (p >= end)
                        return false;
                uint8_t b = *p++;
                if (shift == 63 && b > 1)
                        return false;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        *pp = p;
                        return true;
                }
        }
        return false;
}

/* Differences are taken in uint64_t (wrapping), so that any two values, DIAG_REC_NA
 * included, give a difference that adds back exactly. */
static inline uint64_t zigzag_diff(int64_t v, int64_t base) {
        uint64_t d = (uint64_t) v - (uint64_t) base;
        return (d << 1) ^ (0 - (d >> 63));
}

static inline uint64_t unzigzag(uint64_t z) {
        return (z >> 1) ^ (0 - (z & 1));
}

static inline int64_t add_wrap(int64_t base, uint64_t d) {
        return (int64_t) ((uint64_t) base + d);
}

static int put_bytes(struct diag_rec_buf *b, const void *data, size_t len) {
        if (diag_rec_buf_reserve(b, VARINT_MAX + len) < 0)
                return -ENOMEM;
        uint8_t *q = put_varint(b->data + b->len, len);
        if (len)
                memcpy(q, data, len);
        b->len = (size_t) (q - b->data) + len;
        return 0;
}

static int put_u(struct diag_rec_buf *b, uint64_t v) {
        if (diag_rec_buf_reserve(b, VARINT_MAX) < 0)
                return -ENOMEM;
        b->len = (size_t) (put_varint(b->data + b->len, v) - b->data);
        return 0;
}

/* Set a table's row count, its room grown (rows are all written by the caller). */
static int table_rows(struct diag_rec_interval *iv, enum diag_rec_table_id t, size_t n) {
        struct diag_rec_table *tb = &iv->t[t];

        if (n == 0) {
                tb->nrows = 0;
                return 0;
        }
        tb->nrows = n - 1;
        if (diag_rec_add_row(iv, t) < 0) {     /* grows the room to n rows */
                tb->nrows = 0;
                return -ENOMEM;
        }
        return 0;
}

/* Copy an interval of the same interner (ids as they are). Not diag_rec_interval_copy():
 * that one memcpy()s from tables never grown (NULL, which UBSan refuses) and copies
 * string ids one by one. */
static int copy_same_strings(struct diag_rec_interval *dst, const struct diag_rec_interval *src) {
        struct diag_rec_table tables[DIAG_REC_NTABLES];

        memcpy(tables, dst->t, sizeof(tables));         /* the header as a whole, dst's rows kept */
        *dst = *src;
        memcpy(dst->t, tables, sizeof(tables));
        for (int t = 0; t < DIAG_REC_NTABLES; t++) {
                const struct diag_rec_schema *sc = &diag_rec_schemas[t];
                size_t n = src->t[t].nrows;
                if (table_rows(dst, t, n) < 0)
                        return -ENOMEM;
                if (!n)
                        continue;
                if (sc->nstr)
                        memcpy(dst->t[t].str, src->t[t].str, n * sc->nstr * sizeof(*src->t[t].str));
                memcpy(dst->t[t].num, src->t[t].num, n * sc->nnum * sizeof(*src->t[t].num));
        }
        return 0;
}

/* ---- encoder ---- */

struct diag_rec_encoder {
        bool key;                               /* the next interval is a key interval */
        struct diag_rec_interval prev;          /* the last one encoded (its strings: the recorder's) */
        size_t prev_nids;                       /* its interner's id count then */
        size_t nids;                            /* the interner's id count now */
        uint32_t *wire;                         /* recorder's id -> wire id; 0: not defined in this chain */
        size_t wire_alloc;
        uint32_t next_wire;
        uint32_t *defs;                         /* recorder's ids first used by this interval, in wire id order */
        size_t ndefs, defs_alloc;
        struct diag_rec_buf schema;             /* the schema block (fixed: the compiled schemas) */
        struct diag_rec_buf head, body;         /* this interval's header and definitions, its tables */
};

static int put_schema(struct diag_rec_buf *b) {
        int r = put_u(b, DIAG_REC_NTABLES);
        for (int t = 0; r == 0 && t < DIAG_REC_NTABLES; t++) {
                const struct diag_rec_schema *sc = &diag_rec_schemas[t];
                r = put_bytes(b, sc->name, strlen(sc->name));
                if (r == 0)
                        r = put_u(b, sc->delta ? TABLE_FLAG_DELTA : 0);
                if (r == 0)
                        r = put_u(b, sc->nstr);
                for (unsigned c = 0; r == 0 && c < sc->nstr; c++)
                        r = put_bytes(b, sc->str_names[c], strlen(sc->str_names[c]));
                if (r == 0)
                        r = put_u(b, sc->nnum);
                for (unsigned c = 0; r == 0 && c < sc->nnum; c++)
                        r = put_bytes(b, sc->num_names[c], strlen(sc->num_names[c]));
        }
        return r;
}

struct diag_rec_encoder *diag_rec_encoder_new(void) {
        struct diag_rec_encoder *e = calloc(1, sizeof(*e));

        if (!e)
                return NULL;
        diag_rec_interval_init(&e->prev, NULL);
        e->key = true;
        if (put_schema(&e->schema) < 0) {
                diag_rec_encoder_free(e);
                return NULL;
        }
        return e;
}

void diag_rec_encoder_free(struct diag_rec_encoder *e) {
        if (!e)
                return;
        diag_rec_interval_free(&e->prev);
        free(e->wire);
        free(e->defs);
        diag_rec_buf_free(&e->schema);
        diag_rec_buf_free(&e->head);
        diag_rec_buf_free(&e->body);
        free(e);
}

void diag_rec_encoder_key(struct diag_rec_encoder *e) {
        e->key = true;
}

/* The wire id of the recorder's string id, defining it when this chain has not yet.
 * Ids the interner does not know read as "" (diag_rec_str): they travel as 0.
 * UINT32_MAX on ENOMEM. */
static uint32_t wire_id(struct diag_rec_encoder *e, uint32_t id) {
        if (id == 0 || id >= e->nids)
                return 0;
        if (e->wire[id])
                return e->wire[id];
        if (DIAG_GROW(e->defs, e->defs_alloc, e->ndefs + 1) < 0)
                return UINT32_MAX;
        e->defs[e->ndefs++] = id;
        e->wire[id] = e->next_wire++;
        return e->wire[id];
}

static int wire_room(struct diag_rec_encoder *e) {
        size_t old = e->wire_alloc;

        if (DIAG_GROW(e->wire, e->wire_alloc, e->nids) < 0)
                return -ENOMEM;
        memset(e->wire + old, 0, (e->wire_alloc - old) * sizeof(*e->wire));
        return 0;
}

/* A whole row: string ids, then integers as differences from the row above (0 for the
 * first row). q has room for ROW_MAX. */
static int encode_new_row(struct diag_rec_encoder *e, const struct diag_rec_interval *iv,
                          enum diag_rec_table_id t, size_t row, uint8_t **qq) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];
        const struct diag_rec_table *tb = &iv->t[t];
        uint8_t *q = *qq;

        for (unsigned c = 0; c < sc->nstr; c++) {
                uint32_t w = wire_id(e, tb->str[row * sc->nstr + c]);
                if (w == UINT32_MAX)
                        return -ENOMEM;
                q = put_varint(q, w);
        }
        const int64_t *num = tb->num + row * sc->nnum, *above = row ? num - sc->nnum : NULL;
        for (unsigned c = 0; c < sc->nnum; c++)
                q = put_varint(q, zigzag_diff(num[c], above ? above[c] : 0));
        *qq = q;
        return 0;
}

/* The same row as previous row prow: a mask of the columns that changed (strings
 * first), then their new string ids and integer differences. */
static int encode_same_row(struct diag_rec_encoder *e, const struct diag_rec_interval *iv,
                           enum diag_rec_table_id t, size_t row, size_t prow, uint8_t **qq) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];
        const uint32_t *str = sc->nstr ? iv->t[t].str + row * sc->nstr : NULL;
        const uint32_t *pstr = sc->nstr ? e->prev.t[t].str + prow * sc->nstr : NULL;
        const int64_t *num = iv->t[t].num + row * sc->nnum;
        const int64_t *pnum = e->prev.t[t].num + prow * sc->nnum;
        uint64_t mask = 0;
        uint8_t *q = *qq;

        for (unsigned c = 0; c < sc->nstr; c++)
                if (str[c] != pstr[c])
                        mask |= 1ULL << c;
        for (unsigned c = 0; c < sc->nnum; c++)
                if (num[c] != pnum[c])
                        mask |= 1ULL << (sc->nstr + c);
        q = put_varint(q, mask);
        for (unsigned c = 0; c < sc->nstr; c++)
                if (mask & (1ULL << c)) {
                        uint32_t w = wire_id(e, str[c]);
                        if (w == UINT32_MAX)
                                return -ENOMEM;
                        q = put_varint(q, w);
                }
        for (unsigned c = 0; c < sc->nnum; c++)
                if (mask & (1ULL << (sc->nstr + c)))
                        q = put_varint(q, zigzag_diff(num[c], pnum[c]));
        *qq = q;
        return 0;
}

static int encode_table(struct diag_rec_encoder *e, const struct diag_rec_interval *iv,
                        enum diag_rec_table_id t, bool key) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];
        const struct diag_rec_table *tb = &iv->t[t];
        size_t pn = e->prev.t[t].nrows, j = 0;
        bool coded = sc->delta && !key;
        struct diag_rec_buf *b = &e->body;

        if (put_u(b, tb->nrows) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < tb->nrows; i++) {
                if (diag_rec_buf_reserve(b, ROW_MAX(sc->nstr + sc->nnum)) < 0)
                        return -ENOMEM;
                uint8_t *q = b->data + b->len;
                int r;
                if (coded) {
                        /* Rows out of order still encode correctly, just not compactly. */
                        size_t gone = 0;
                        int c = 1;
                        while (j < pn && (c = diag_rec_key_cmp(iv, i, &e->prev, j, t)) > 0) {
                                j++;
                                gone++;
                        }
                        bool same = j < pn && c == 0;
                        q = put_varint(q, (uint64_t) gone << 1 | !same);
                        if (same)
                                r = encode_same_row(e, iv, t, i, j++, &q);
                        else
                                r = encode_new_row(e, iv, t, i, &q);
                } else
                        r = encode_new_row(e, iv, t, i, &q);
                if (r < 0)
                        return r;
                b->len = (size_t) (q - b->data);
        }
        return 0;
}

static int encode_head(struct diag_rec_encoder *e, const struct diag_rec_interval *iv, bool key) {
        struct diag_rec_buf *b = &e->head;
        const struct diag_rec_interval *pv = &e->prev;
        uint8_t *q;

        if (key) {
                if (put_u(b, PAYLOAD_VERSION) < 0 || put_bytes(b, e->schema.data, e->schema.len) < 0)
                        return -ENOMEM;
        }
        if (diag_rec_buf_reserve(b, 7 * VARINT_MAX) < 0)
                return -ENOMEM;
        q = b->data + b->len;
        if (key) {
                q = put_varint(q, iv->seq);
                q = put_varint(q, zigzag_diff(iv->realtime_ns, 0));
                q = put_varint(q, zigzag_diff(iv->boottime_ns, 0));
        } else {
                q = put_varint(q, zigzag_diff((int64_t) iv->seq, (int64_t) pv->seq));
                q = put_varint(q, zigzag_diff(iv->realtime_ns, pv->realtime_ns));
                q = put_varint(q, zigzag_diff(iv->boottime_ns, pv->boottime_ns));
        }
        q = put_varint(q, iv->interval_ms);
        q = put_varint(q, iv->took_us);
        q = put_varint(q, zigzag_diff(iv->late_us, 0));
        q = put_varint(q, e->ndefs);
        b->len = (size_t) (q - b->data);
        for (size_t i = 0; i < e->ndefs; i++) {
                const char *s = diag_rec_str(iv->strings, e->defs[i]);
                if (put_bytes(b, s, strnlen(s, MAX_STRING)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int diag_rec_encode(struct diag_rec_encoder *e, const struct diag_rec_interval *iv, struct diag_rec_buf *out) {
        size_t out_len = out->len;
        int r;

        e->nids = diag_rec_strings_count(iv->strings);
        /* Another interner, or this one reset (fewer ids): the ids of the chain are void. */
        bool key = e->key || iv->strings != e->prev.strings || e->nids < e->prev_nids;
        if (key) {
                if (e->wire_alloc)
                        memset(e->wire, 0, e->wire_alloc * sizeof(*e->wire));
                e->next_wire = 1;
                diag_rec_interval_clear(&e->prev);
        }
        e->key = true;          /* until this interval is out whole */
        e->ndefs = 0;
        e->head.len = e->body.len = 0;
        r = wire_room(e);
        for (int t = 0; r == 0 && t < DIAG_REC_NTABLES; t++)
                r = encode_table(e, iv, t, key);
        if (r == 0)
                r = encode_head(e, iv, key);
        if (r == 0)
                r = diag_rec_buf_reserve(out, 1 + VARINT_MAX + e->head.len + e->body.len);
        if (r < 0)
                return r;

        uint8_t *q = out->data + out->len;
        *q++ = key ? TAG_KEY : TAG_DELTA;
        q = put_varint(q, e->head.len + e->body.len);
        memcpy(q, e->head.data, e->head.len);
        q += e->head.len;
        if (e->body.len)
                memcpy(q, e->body.data, e->body.len);
        q += e->body.len;
        out->len = (size_t) (q - out->data);

        r = copy_same_strings(&e->prev, iv);
        if (r < 0) {
                out->len = out_len;
                return r;
        }
        e->prev_nids = e->nids;
        e->key = false;
        return 0;
}

/* ---- decoder ---- */

struct wire_table {
        int id;                                 /* the compiled table; -1: unknown, skipped */
        bool delta;                             /* rows coded against the previous interval's */
        bool complete;                          /* every compiled column is on the wire */
        unsigned nstr, nnum;
        int8_t smap[MAX_COLUMNS], nmap[MAX_COLUMNS];    /* wire column -> compiled; -1: skipped */
        size_t prev_nrows;                      /* unknown tables: rows in the previous interval */
};

struct diag_rec_decoder {
        struct diag_rec_strings *strings;
        size_t nstrings;                        /* wire ids defined in this chain: 0 .. nstrings - 1 */
        bool chain;                             /* schema, strings and prev are good for a delta */
        struct wire_table wt[MAX_TABLES];
        unsigned ntables;
        struct diag_rec_buf schema;             /* the schema block wt was built from; len 0: none */
        struct diag_rec_interval prev;
};

struct diag_rec_decoder *diag_rec_decoder_new(void) {
        struct diag_rec_decoder *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->strings = diag_rec_strings_new();
        if (!d->strings) {
                free(d);
                return NULL;
        }
        diag_rec_interval_init(&d->prev, d->strings);
        d->nstrings = 1;
        return d;
}

void diag_rec_decoder_free(struct diag_rec_decoder *d) {
        if (!d)
                return;
        diag_rec_interval_free(&d->prev);
        diag_rec_buf_free(&d->schema);
        diag_rec_strings_free(d->strings);
        free(d);
}

void diag_rec_decoder_reset(struct diag_rec_decoder *d) {
        d->chain = false;
}

struct diag_rec_strings *diag_rec_decoder_strings(struct diag_rec_decoder *d) {
        return d->strings;
}

static bool get_bytes(const uint8_t **pp, const uint8_t *end, size_t max, const uint8_t **ret, size_t *ret_len) {
        uint64_t len;

        if (!get_varint(pp, end, &len) || len > max || len > (size_t) (end - *pp))
                return false;
        *ret = *pp;
        *ret_len = (size_t) len;
        *pp += len;
        return true;
}

static bool name_is(const uint8_t *name, size_t len, const char *s) {
        return strlen(s) == len && memcmp(name, s, len) == 0;
}

/* Read a table's column names, mapping each onto the compiled names (or -1). */
static bool parse_columns(const uint8_t **pp, const uint8_t *end, const struct diag_rec_schema *sc, bool strs,
                          unsigned n, int8_t *map, bool *complete) {
        unsigned ncomp = sc ? (strs ? sc->nstr : sc->nnum) : 0;
        const char *const *names = sc ? (strs ? sc->str_names : sc->num_names) : NULL;
        uint64_t seen = 0;

        for (unsigned c = 0; c < n; c++) {
                const uint8_t *name;
                size_t len;
                if (!get_bytes(pp, end, MAX_NAME, &name, &len))
                        return false;
                map[c] = -1;
                for (unsigned k = 0; k < ncomp; k++)
                        if (name_is(name, len, names[k])) {
                                if (seen & (1ULL << k))
                                        return false;   /* a column twice */
                                seen |= 1ULL << k;
                                map[c] = (int8_t) k;
                                break;
                        }
        }
        if (ncomp && seen != (ncomp == 64 ? UINT64_MAX : (1ULL << ncomp) - 1))
                *complete = false;
        return true;
}

static int parse_schema(struct diag_rec_decoder *d, const uint8_t *p, const uint8_t *end) {
        uint64_t n, flags, nstr, nnum;
        unsigned seen = 0;

        d->ntables = 0;
        if (!get_varint(&p, end, &n) || n > MAX_TABLES)
                return -EBADMSG;
        for (unsigned k = 0; k < n; k++) {
                struct wire_table *w = &d->wt[k];
                const uint8_t *name;
                size_t len;
                if (!get_bytes(&p, end, MAX_NAME, &name, &len) || !get_varint(&p, end, &flags) ||
                    (flags & ~(uint64_t) TABLE_FLAG_DELTA))
                        return -EBADMSG;
                *w = (struct wire_table) { .id = -1, .delta = flags & TABLE_FLAG_DELTA, .complete = true };
                for (int t = 0; t < DIAG_REC_NTABLES; t++)
                        if (name_is(name, len, diag_rec_schemas[t].name)) {
                                if (seen & (1u << t))
                                        return -EBADMSG;        /* a table twice */
                                seen |= 1u << t;
                                w->id = t;
                        }
                const struct diag_rec_schema *sc = w->id >= 0 ? &diag_rec_schemas[w->id] : NULL;
                if (!get_varint(&p, end, &nstr) || nstr > MAX_COLUMNS ||
                    !parse_columns(&p, end, sc, true, (unsigned) nstr, w->smap, &w->complete) ||
                    !get_varint(&p, end, &nnum) || nnum > MAX_COLUMNS - nstr || nstr + nnum == 0 ||
                    !parse_columns(&p, end, sc, false, (unsigned) nnum, w->nmap, &w->complete))
                        return -EBADMSG;
                w->nstr = (unsigned) nstr;
                w->nnum = (unsigned) nnum;
        }
        if (p != end)
                return -EBADMSG;
        d->ntables = (unsigned) n;
        return 0;
}

/* The rows of one table, into out (NULL for an unknown table: read and dropped). */
static int decode_rows(struct diag_rec_decoder *d, struct wire_table *w, bool key, const uint8_t **pp,
                       const uint8_t *end, struct diag_rec_interval *out) {
        const struct diag_rec_schema *sc = w->id >= 0 ? &diag_rec_schemas[w->id] : NULL;
        const struct diag_rec_table *pt = sc ? &d->prev.t[w->id] : NULL;
        struct diag_rec_table *tb = sc ? &out->t[w->id] : NULL;
        unsigned ns = sc ? sc->nstr : 0, nn = sc ? sc->nnum : 0, wcols = w->nstr + w->nnum;
        bool coded = w->delta && !key;
        size_t prevn = key ? 0 : sc ? pt->nrows : w->prev_nrows;
        const uint8_t *p = *pp;
        uint64_t nrows, v;
        size_t j = 0;
        int r;

        /* Every row takes a byte at least (a gone/new varint, or a column). */
        if (!get_varint(&p, end, &nrows) || nrows > MAX_ROWS || nrows > (size_t) (end - p))
                return -EBADMSG;
        if (sc) {
                r = table_rows(out, w->id, nrows);
                if (r < 0)
                        return r;
        } else
                w->prev_nrows = nrows;

        for (size_t i = 0; i < nrows; i++) {
                uint32_t *srow = ns ? tb->str + i * ns : NULL;
                int64_t *nrow = nn ? tb->num + i * nn : NULL;
                if (coded) {
                        if (!get_varint(&p, end, &v) || (v >> 1) > prevn - j)
                                return -EBADMSG;
                        j += v >> 1;
                        if (!(v & 1)) {
                                /* The same row as previous row j: changed columns only. */
                                uint64_t mask;
                                if (j >= prevn || !get_varint(&p, end, &mask) || (wcols < 64 && mask >> wcols))
                                        return -EBADMSG;
                                if (ns)
                                        memcpy(srow, pt->str + j * ns, ns * sizeof(*srow));
                                if (nn)
                                        memcpy(nrow, pt->num + j * nn, nn * sizeof(*nrow));
                                j++;
                                while (mask) {
                                        unsigned c = (unsigned) __builtin_ctzll(mask);
                                        mask &= mask - 1;
                                        if (!get_varint(&p, end, &v))
                                                return -EBADMSG;
                                        if (c < w->nstr) {
                                                if (v >= d->nstrings)
                                                        return -EBADMSG;
                                                if (w->smap[c] >= 0)
                                                        srow[w->smap[c]] = (uint32_t) v;
                                        } else if (w->nmap[c - w->nstr] >= 0) {
                                                int64_t *x = &nrow[w->nmap[c - w->nstr]];
                                                *x = add_wrap(*x, unzigzag(v));
                                        }
                                }
                                continue;
                        }
                }
                /* A new row: every column, integers against the row above. */
                if (sc && !w->complete) {
                        if (ns)
                                memset(srow, 0, ns * sizeof(*srow));
                        for (unsigned c = 0; c < nn; c++)
                                nrow[c] = DIAG_REC_NA;
                }
                for (unsigned c = 0; c < w->nstr; c++) {
                        if (!get_varint(&p, end, &v) || v >= d->nstrings)
                                return -EBADMSG;
                        if (w->smap[c] >= 0)
                                srow[w->smap[c]] = (uint32_t) v;
                }
                for (unsigned c = 0; c < w->nnum; c++) {
                        if (!get_varint(&p, end, &v))
                                return -EBADMSG;
                        int k = w->nmap[c];
                        if (k >= 0)
                                nrow[k] = add_wrap(i ? (nrow - nn)[k] : 0, unzigzag(v));
                }
        }
        *pp = p;
        return 0;
}

static int decode_body(struct diag_rec_decoder *d, const uint8_t *p, const uint8_t *end, bool key,
                       struct diag_rec_interval *out) {
        const struct diag_rec_interval *pv = &d->prev;
        uint64_t v, seq, rt, bt, ims, took, late, ndefs;
        int r;

        if (key) {
                const uint8_t *schema;
                size_t len;
                if (!get_varint(&p, end, &v) || v != PAYLOAD_VERSION || !get_bytes(&p, end, SIZE_MAX, &schema, &len))
                        return -EBADMSG;
                /* Mostly the same block as the last key's: map the names only when it changed. */
                /* (an empty block compared with none: memcmp of NULL is undefined even for 0 bytes) */
                if (len != d->schema.len || (len && memcmp(schema, d->schema.data, len) != 0)) {
                        d->schema.len = 0;
                        r = parse_schema(d, schema, schema + len);
                        if (r < 0)
                                return r;
                        if (diag_rec_buf_reserve(&d->schema, len) < 0)
                                return -ENOMEM;
                        if (len)
                                memcpy(d->schema.data, schema, len);
                        d->schema.len = len;
                }
                diag_rec_strings_reset(d->strings);
                d->nstrings = 1;
        }
        if (!get_varint(&p, end, &seq) || !get_varint(&p, end, &rt) || !get_varint(&p, end, &bt) ||
            !get_varint(&p, end, &ims) || ims > UINT32_MAX || !get_varint(&p, end, &took) || took > UINT32_MAX ||
            !get_varint(&p, end, &late) || !get_varint(&p, end, &ndefs) || ndefs > (size_t) (end - p) ||
            ndefs > UINT32_MAX - 1 - d->nstrings)
                return -EBADMSG;
        diag_rec_interval_clear(out);
        out->strings = d->strings;
        out->seq = key ? seq : (uint64_t) add_wrap((int64_t) pv->seq, unzigzag(seq));
        out->realtime_ns = add_wrap(key ? 0 : pv->realtime_ns, unzigzag(rt));
        out->boottime_ns = add_wrap(key ? 0 : pv->boottime_ns, unzigzag(bt));
        out->interval_ms = (uint32_t) ims;
        out->took_us = (uint32_t) took;
        out->late_us = add_wrap(0, unzigzag(late));

        for (uint64_t i = 0; i < ndefs; i++) {
                const uint8_t *s;
                size_t len;
                if (!get_bytes(&p, end, MAX_STRING, &s, &len))
                        return -EBADMSG;
                r = diag_rec_strings_set(d->strings, (uint32_t) d->nstrings, (const char *) s, len);
                if (r < 0)
                        return r == -EINVAL ? -EBADMSG : r;     /* EINVAL: a NUL inside */
                d->nstrings++;
        }
        for (unsigned k = 0; k < d->ntables; k++) {
                r = decode_rows(d, &d->wt[k], key, &p, end, out);
                if (r < 0)
                        return r;
        }
        return p == end ? 0 : -EBADMSG;
}

int diag_rec_decode(struct diag_rec_decoder *d, const uint8_t **p, const uint8_t *end, struct diag_rec_interval *out) {
        const uint8_t *q = *p;
        uint64_t len;
        int r;

        if (q >= end)
                return 0;
        uint8_t tag = *q++;
        if ((tag != TAG_KEY && tag != TAG_DELTA) || !get_varint(&q, end, &len) || len > (size_t) (end - q)) {
                d->chain = false;
                return -EBADMSG;
        }
        if (tag == TAG_DELTA && !d->chain) {
                *p = q + len;           /* skipped: the caller may go on to the next interval */
                return -ENOENT;
        }
        d->chain = false;               /* until this one is decoded whole */
        r = decode_body(d, q, q + len, tag == TAG_KEY, out);
        if (r < 0)
                return r;
        r = copy_same_strings(&d->prev, out);
        if (r < 0)
                return r;
        d->chain = true;
        *p = q + len;
        return 1;
}
