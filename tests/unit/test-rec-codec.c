/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's codec: randomized chains round-trip exactly (values, NA, extremes,
 * strings), an idle process costs a few bytes, a delta without its reference is
 * refused, a recording with other columns and tables maps by name, and truncated or
 * corrupted bytes give errors, never a crash (run it in the ASan build).
 * DIAG_TEST_SEED=N repeats a run; DIAG_TEST_BENCH_INTERVALS=N sizes the speed measure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag/record.h"
#include "diag/util.h"
#include "tap.h"

/* ---- random numbers and values ---- */

static uint64_t rng_state;

static uint64_t rnd(void) {
        uint64_t x = rng_state;         /* xorshift64* */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng_state = x;
        return x * 2685821657736338717ULL;
}

static uint64_t rnd_below(uint64_t n) {
        return n ? rnd() % n : 0;
}

static bool chance(unsigned percent) {
        return rnd_below(100) < percent;
}

static int64_t rnd_value(void) {
        switch (rnd_below(10)) {
        case 0: return DIAG_REC_NA;
        case 1: return INT64_MAX;
        case 2: return INT64_MIN + 1;
        case 3: return -(int64_t) rnd_below(1000);
        case 4: return (int64_t) rnd();
        case 5: return 0;
        default: return (int64_t) rnd_below(1u << 20);
        }
}

static int64_t wadd(int64_t a, int64_t b) {
        return (int64_t) ((uint64_t) a + (uint64_t) b);
}

static const char *const words[] = {
        "bash", "systemd", "postgres", "nginx", "java", "kworker/0:1", "sshd", "/", "/system.slice",
        "/user.slice/user-1000.slice", "v1", "v2", "sda", "nvme0n1", "eth0", "lo", "do_sys_poll",
        "io_schedule", "oom-kill", "hung-task",
};

/* Strings at most this long (the fuzz's chain is kept short). */
static size_t string_max = 200000;

/* A string id in s: mostly known words, sometimes new, long or very long. */
static uint32_t rnd_string(struct diag_rec_strings *s) {
        static unsigned counter;
        char buf[4096];
        size_t len;

        if (string_max > 100000 && chance(1)) {                /* past a frame's usual size */
                size_t n = 100000 + rnd_below(100000);
                char *big = malloc(n);
                if (!big)
                        abort();
                for (size_t i = 0; i < n; i++)
                        big[i] = (char) ('a' + (i + counter) % 26);
                counter++;
                uint32_t id = diag_rec_intern(s, big, n);
                free(big);
                return id;
        }
        switch (rnd_below(12)) {
        case 0:
                return 0;
        case 1:
                len = (size_t) snprintf(buf, sizeof buf, "new-%u-%" PRIu64, counter++, rnd());
                break;
        case 2:
                len = 1 + rnd_below(MIN(sizeof buf, string_max) - 1);
                for (size_t i = 0; i < len; i++)
                        buf[i] = (char) (' ' + rnd_below(95));
                break;
        default: {
                const char *w = words[rnd_below(ELEMENTSOF(words))];
                return diag_rec_intern(s, w, strlen(w));
        }
        }
        return diag_rec_intern(s, buf, len);
}

/* ---- random intervals ---- */

/* diag_rec_interval_copy() memcpy()s from and to tables that never had a row (NULL):
 * give every table room for a row first. */
static void warm(struct diag_rec_interval *iv) {
        for (int t = 0; t < DIAG_REC_NTABLES; t++)
                if (!iv->t[t].alloc) {
                        if (diag_rec_add_row(iv, t) < 0)
                                abort();
                        iv->t[t].nrows = 0;
                }
}

static void fill_row(struct diag_rec_interval *iv, enum diag_rec_table_id t, size_t r) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];

        for (unsigned c = 0; c < sc->nstr; c++)
                DIAG_REC_STR(iv, t, r, c) = rnd_string(iv->strings);
        for (unsigned c = 0; c < sc->nnum; c++)
                DIAG_REC_NUM(iv, t, r, c) = rnd_value();
}

static void drop_row(struct diag_rec_interval *iv, enum diag_rec_table_id t, size_t r) {
        const struct diag_rec_schema *sc = &diag_rec_schemas[t];
        struct diag_rec_table *tb = &iv->t[t];
        size_t last = --tb->nrows;

        if (r == last)
                return;
        if (sc->nstr)
                memcpy(tb->str + r * sc->nstr, tb->str + last * sc->nstr, sc->nstr * sizeof(*tb->str));
        memcpy(tb->num + r * sc->nnum, tb->num + last * sc->nnum, sc->nnum * sizeof(*tb->num));
}

/* The next interval of a world: rows go, come and change; events are new each time. */
static void next_interval(struct diag_rec_interval *iv) {
        iv->seq += 1 + rnd_below(3);
        iv->realtime_ns += chance(5) ? -(int64_t) rnd_below(1000000000) : 5000000000LL + (int64_t) rnd_below(100000000);
        iv->boottime_ns = chance(3) ? rnd_value() : wadd(iv->boottime_ns, 5000000000LL);
        iv->interval_ms = chance(3) ? UINT32_MAX : 5000;
        iv->took_us = (uint32_t) rnd_below(100000);
        iv->late_us = rnd_value();
        for (int t = 0; t < DIAG_REC_NTABLES; t++) {
                const struct diag_rec_schema *sc = &diag_rec_schemas[t];
                struct diag_rec_table *tb = &iv->t[t];
                if (t == DIAG_REC_EVENT || t == DIAG_REC_DSTATE || chance(3))
                        tb->nrows = 0;
                for (size_t r = 0; r < tb->nrows; r++)
                        if (t != DIAG_REC_HOST && chance(10))
                                drop_row(iv, t, r--);
                for (size_t r = 0; r < tb->nrows; r++) {
                        unsigned pct = chance(20) ? 100 : 15;
                        for (unsigned c = sc->key_str; c < sc->nstr; c++)
                                if (chance(pct / 3))
                                        DIAG_REC_STR(iv, t, r, c) = rnd_string(iv->strings);
                        for (unsigned c = sc->key_num; c < sc->nnum; c++)
                                if (chance(pct))
                                        DIAG_REC_NUM(iv, t, r, c) = chance(50) ? wadd(DIAG_REC_NUM(iv, t, r, c), 1 + (int64_t) rnd_below(100))
                                                                            : rnd_value();
                }
                size_t add = t == DIAG_REC_HOST ? !tb->nrows : rnd_below(chance(10) ? 40 : 6);
                for (size_t i = 0; i < add; i++) {
                        ssize_t r = diag_rec_add_row(iv, t);
                        if (r < 0)
                                abort();
                        fill_row(iv, t, (size_t) r);
                }
                diag_rec_sort(iv, t);
        }
}

/* What most tests use: the recorder's interner, an encoder, a decoder, the world's
 * interval, the decoded one and the bytes. */
struct fixture {
        struct diag_rec_strings *s;
        struct diag_rec_encoder *e;
        struct diag_rec_decoder *d;
        struct diag_rec_interval world, out;
        struct diag_rec_buf buf;
};

static void fixture_init(struct fixture *f) {
        *f = (struct fixture) { .s = diag_rec_strings_new(), .e = diag_rec_encoder_new(), .d = diag_rec_decoder_new() };
        if (!f->s || !f->e || !f->d)
                abort();
        diag_rec_interval_init(&f->world, f->s);
        warm(&f->world);
        diag_rec_interval_init(&f->out, NULL);
}

static void fixture_free(struct fixture *f) {
        diag_rec_interval_free(&f->world);
        diag_rec_interval_free(&f->out);
        diag_rec_buf_free(&f->buf);
        diag_rec_encoder_free(f->e);
        diag_rec_decoder_free(f->d);
        diag_rec_strings_free(f->s);
}

/* Differences between a (its strings) and b (its own), each printed; 0 when equal. */
static int compare(const struct diag_rec_interval *a, const struct diag_rec_interval *b, const char *what) {
        int diff = 0;

        if (a->seq != b->seq || a->realtime_ns != b->realtime_ns || a->boottime_ns != b->boottime_ns ||
            a->interval_ms != b->interval_ms || a->took_us != b->took_us || a->late_us != b->late_us) {
                fprintf(stderr, "%s: header differs (seq %" PRIu64 " vs %" PRIu64 ")\n", what, a->seq, b->seq);
                diff++;
        }
        for (int t = 0; t < DIAG_REC_NTABLES; t++) {
                const struct diag_rec_schema *sc = &diag_rec_schemas[t];
                if (a->t[t].nrows != b->t[t].nrows) {
                        fprintf(stderr, "%s: table %s has %zu rows, expected %zu\n", what, sc->name,
                                b->t[t].nrows, a->t[t].nrows);
                        diff++;
                        continue;
                }
                for (size_t r = 0; r < a->t[t].nrows && diff < 10; r++) {
                        for (unsigned c = 0; c < sc->nstr; c++) {
                                const char *x = diag_rec_str(a->strings, DIAG_REC_STR(a, t, r, c));
                                const char *y = diag_rec_str(b->strings, DIAG_REC_STR(b, t, r, c));
                                if (strcmp(x, y) != 0) {
                                        fprintf(stderr, "%s: %s row %zu %s: \"%.40s\" != \"%.40s\"\n", what,
                                                sc->name, r, sc->str_names[c], y, x);
                                        diff++;
                                }
                        }
                        for (unsigned c = 0; c < sc->nnum; c++)
                                if (DIAG_REC_NUM(a, t, r, c) != DIAG_REC_NUM(b, t, r, c)) {
                                        fprintf(stderr, "%s: %s row %zu %s: %" PRId64 " != %" PRId64 "\n", what,
                                                sc->name, r, sc->num_names[c], DIAG_REC_NUM(b, t, r, c),
                                                DIAG_REC_NUM(a, t, r, c));
                                        diff++;
                                }
                }
        }
        return diff;
}

/* ---- round trips ---- */

#define CHAIN 50
#define KEY_EVERY 10

static void test_round_trip(void) {
        struct fixture f;
        fixture_init(&f);
        struct diag_rec_interval *world = &f.world, *out = &f.out;
        struct diag_rec_buf *buf = &f.buf;
        struct diag_rec_interval orig[CHAIN];
        size_t off[CHAIN + 1];

        for (int i = 0; i < CHAIN; i++) {
                diag_rec_interval_init(&orig[i], f.s);
                warm(&orig[i]);
        }

        for (int round = 0; round < 6; round++) {
                buf->len = 0;
                for (int i = 0; i < CHAIN; i++) {
                        next_interval(world);
                        CHECK_INT(diag_rec_interval_copy(&orig[i], world), 0);
                        if (i % KEY_EVERY == 0)
                                diag_rec_encoder_key(f.e);
                        off[i] = buf->len;
                        CHECK_INT(diag_rec_encode(f.e, world, buf), 0);
                        CHECK_INT(buf->data[off[i]], i % KEY_EVERY == 0 ? 'K' : 'D');
                }
                off[CHAIN] = buf->len;

                /* The whole chain, in order. */
                const uint8_t *p = buf->data, *end = buf->data + buf->len;
                diag_rec_decoder_reset(f.d);
                for (int i = 0; i < CHAIN; i++) {
                        char what[32];
                        snprintf(what, sizeof what, "round %d interval %d", round, i);
                        CHECK_INT(diag_rec_decode(f.d, &p, end, out), 1);
                        CHECK(p == buf->data + off[i + 1]);
                        CHECK(out->strings == diag_rec_decoder_strings(f.d));
                        CHECK_INT(compare(&orig[i], out, what), 0);
                }
                CHECK_INT(diag_rec_decode(f.d, &p, end, out), 0);

                /* From the middle: the deltas before the next key are refused and skipped. */
                diag_rec_decoder_reset(f.d);
                p = buf->data + off[KEY_EVERY + 3];
                for (int i = KEY_EVERY + 3; i < 2 * KEY_EVERY; i++) {
                        CHECK_INT(diag_rec_decode(f.d, &p, end, out), -ENOENT);
                        CHECK(p == buf->data + off[i + 1]);
                }
                CHECK_INT(diag_rec_decode(f.d, &p, end, out), 1);
                CHECK_INT(compare(&orig[2 * KEY_EVERY], out, "after reset"), 0);
                CHECK_INT(diag_rec_decode(f.d, &p, end, out), 1);
                CHECK_INT(compare(&orig[2 * KEY_EVERY + 1], out, "after reset + 1"), 0);

                /* A fresh decoder starting at a key. */
                struct diag_rec_decoder *d2 = diag_rec_decoder_new();
                p = buf->data + off[3 * KEY_EVERY];
                for (int i = 3 * KEY_EVERY; i < CHAIN; i++) {
                        CHECK_INT(diag_rec_decode(d2, &p, end, out), 1);
                        CHECK_INT(compare(&orig[i], out, "fresh decoder"), 0);
                }
                diag_rec_decoder_free(d2);
        }

        /* Another interner: the encoder starts a key interval by itself. */
        {
                struct diag_rec_strings *s2 = diag_rec_strings_new();
                struct diag_rec_interval iv;
                diag_rec_interval_init(&iv, s2);
                warm(&iv);
                CHECK_INT(diag_rec_interval_copy(&iv, world), 0);
                buf->len = 0;
                CHECK_INT(diag_rec_encode(f.e, &iv, buf), 0);
                CHECK_INT(buf->data[0], 'K');
                const uint8_t *p = buf->data;
                diag_rec_decoder_reset(f.d);
                CHECK_INT(diag_rec_decode(f.d, &p, buf->data + buf->len, out), 1);
                CHECK_INT(compare(world, out, "other interner"), 0);
                diag_rec_interval_free(&iv);
                diag_rec_strings_free(s2);
        }

        for (int i = 0; i < CHAIN; i++)
                diag_rec_interval_free(&orig[i]);
        fixture_free(&f);
}

/* ---- size ---- */

static void add_proc(struct diag_rec_interval *iv, int64_t pid) {
        char cmd[128];
        ssize_t r = diag_rec_add_row(iv, DIAG_REC_PROC);

        if (r < 0)
                abort();
        int n = snprintf(cmd, sizeof cmd, "/usr/bin/worker --id=%" PRId64 " --config=/etc/worker.conf", pid);
        DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_COMM) = diag_rec_intern(iv->strings, "worker", 6);
        DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CMD) = diag_rec_intern(iv->strings, cmd, (size_t) n);
        DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CGROUP) = diag_rec_intern(iv->strings, "/system.slice/worker.service", 28);
        int64_t v[PR__N] = {
                [PR_PID] = pid, [PR_START] = 100000 + pid * 7, [PR_PPID] = 1, [PR_UID] = 1000, [PR_STATE] = 'S',
                [PR_UTIME] = 5000 + pid, [PR_STIME] = 300, [PR_RSS] = 50 << 20, [PR_VSZ] = 800 << 20,
                [PR_MINFLT] = 20000, [PR_MAJFLT] = 3, [PR_READ_BYTES] = DIAG_REC_NA,
                [PR_WRITE_BYTES] = DIAG_REC_NA, [PR_THREADS] = 4,
        };
        memcpy(&DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0), v, sizeof(v));
}

static void make_procs(struct diag_rec_interval *iv, size_t n) {
        ssize_t h = diag_rec_add_row(iv, DIAG_REC_HOST);

        if (h < 0)
                abort();
        for (unsigned c = 0; c < H__N; c++)
                DIAG_REC_NUM(iv, DIAG_REC_HOST, h, c) = 1000000 + c;
        for (size_t i = 0; i < n; i++)
                add_proc(iv, 300 + (int64_t) i * 3);
        iv->seq = 1;
        iv->realtime_ns = 1700000000000000000LL;
        iv->boottime_ns = 86400000000000LL;
        iv->interval_ms = 5000;
}

static void test_size(void) {
        struct diag_rec_strings *s = diag_rec_strings_new();
        struct diag_rec_encoder *e = diag_rec_encoder_new();
        struct diag_rec_interval iv;
        struct diag_rec_buf buf = {};

        diag_rec_interval_init(&iv, s);
        make_procs(&iv, 1000);
        CHECK_INT(diag_rec_encode(e, &iv, &buf), 0);
        size_t key = buf.len;
        iv.seq++;
        iv.realtime_ns += 5000000000LL;
        iv.boottime_ns += 5000000000LL;
        iv.took_us = 1234;
        CHECK_INT(diag_rec_encode(e, &iv, &buf), 0);
        size_t idle = buf.len - key;
        CHECK(idle < 5000);
        /* A tenth of them busy: four counters move. */
        for (size_t r = 0; r < iv.t[DIAG_REC_PROC].nrows; r += 10) {
                DIAG_REC_NUM(&iv, DIAG_REC_PROC, r, PR_UTIME) += 3;
                DIAG_REC_NUM(&iv, DIAG_REC_PROC, r, PR_STIME) += 1;
                DIAG_REC_NUM(&iv, DIAG_REC_PROC, r, PR_RSS) += 4096;
                DIAG_REC_NUM(&iv, DIAG_REC_PROC, r, PR_MINFLT) += 1;
        }
        size_t before = buf.len;
        CHECK_INT(diag_rec_encode(e, &iv, &buf), 0);
        printf("# 1,000 processes: key %zu bytes, idle delta %zu, a tenth busy %zu\n", key, idle, buf.len - before);

        diag_rec_interval_free(&iv);
        diag_rec_buf_free(&buf);
        diag_rec_encoder_free(e);
        diag_rec_strings_free(s);
}

/* ---- another writer's schema: columns and tables mapped by name ---- */

static void bput_u(struct diag_rec_buf *b, uint64_t v) {
        if (diag_rec_buf_reserve(b, 10) < 0)
                abort();
        while (v >= 0x80) {
                b->data[b->len++] = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        b->data[b->len++] = (uint8_t) v;
}

static void bput_z(struct diag_rec_buf *b, int64_t v) {
        bput_u(b, ((uint64_t) v << 1) ^ (0 - ((uint64_t) v >> 63)));
}

static void bput_s(struct diag_rec_buf *b, const char *s) {
        size_t n = strlen(s);
        bput_u(b, n);
        if (diag_rec_buf_reserve(b, n) < 0)
                abort();
        memcpy(b->data + b->len, s, n);
        b->len += n;
}

static void bput_interval(struct diag_rec_buf *out, char tag, const struct diag_rec_buf *body) {
        if (diag_rec_buf_reserve(out, 1) < 0)
                abort();
        out->data[out->len++] = (uint8_t) tag;
        bput_u(out, body->len);
        if (diag_rec_buf_reserve(out, body->len) < 0)
                abort();
        memcpy(out->data + out->len, body->data, body->len);
        out->len += body->len;
}

/* The delta after test_schema_mapping()'s key; first: the first proc row's gone/new varint. */
static void delta_body(struct diag_rec_buf *body, uint64_t first) {
        body->len = 0;
        bput_z(body, 1), bput_z(body, 5000), bput_z(body, 5000), bput_u(body, 5000), bput_u(body, 11), bput_z(body, 0);
        bput_u(body, 1), bput_s(body, "vim");
        bput_u(body, 2);
        /* row 0 gone; row 1 the same, comm, bogus and utime changed */
        bput_u(body, first), bput_u(body, 1 | 1 << 4 | 1 << 5), bput_u(body, 3), bput_z(body, 1), bput_z(body, 7);
        /* a new row after it: integers against the row above */
        bput_u(body, 0 << 1 | 1), bput_u(body, 0), bput_u(body, 0), bput_z(body, 1), bput_z(body, 1), bput_z(body, 0), bput_z(body, -7);
        bput_u(body, 1), bput_u(body, 1 << 1 | 1), bput_z(body, 43);      /* gpu: its row gone, a new one */
}

static void test_schema_mapping(void) {
        struct diag_rec_buf sch = {}, body = {}, all = {};
        struct diag_rec_decoder *d = diag_rec_decoder_new();
        struct diag_rec_interval out;
        const struct diag_rec_strings *ds = diag_rec_decoder_strings(d);

        diag_rec_interval_init(&out, NULL);
        /* "proc" with a column this reader does not know and most of its own missing;
         * a table it does not know. */
        bput_u(&sch, 2);
        bput_s(&sch, "proc"), bput_u(&sch, 1);
        bput_u(&sch, 2), bput_s(&sch, "comm"), bput_s(&sch, "extra");
        bput_u(&sch, 4), bput_s(&sch, "pid"), bput_s(&sch, "start"), bput_s(&sch, "bogus"), bput_s(&sch, "utime");
        bput_s(&sch, "gpu"), bput_u(&sch, 1), bput_u(&sch, 0), bput_u(&sch, 1), bput_s(&sch, "x");

        bput_u(&body, 1);                                       /* version */
        bput_u(&body, sch.len);
        if (diag_rec_buf_reserve(&body, sch.len) < 0)
                abort();
        memcpy(body.data + body.len, sch.data, sch.len);
        body.len += sch.len;
        bput_u(&body, 7), bput_z(&body, 1000), bput_z(&body, 500), bput_u(&body, 5000), bput_u(&body, 10), bput_z(&body, -3);
        bput_u(&body, 2), bput_s(&body, "bash"), bput_s(&body, "zzz");
        bput_u(&body, 2);                                       /* proc: 2 new rows */
        bput_u(&body, 1), bput_u(&body, 2), bput_z(&body, 100), bput_z(&body, 5), bput_z(&body, 9), bput_z(&body, 50);
        bput_u(&body, 1), bput_u(&body, 0), bput_z(&body, 1), bput_z(&body, 0), bput_z(&body, 0), bput_z(&body, -50);
        bput_u(&body, 1), bput_z(&body, 42);                    /* gpu */
        bput_interval(&all, 'K', &body);
        size_t key_end = all.len;

        delta_body(&body, 1 << 1 | 0);
        bput_interval(&all, 'D', &body);

        const uint8_t *p = all.data, *end = all.data + all.len;
        CHECK_INT(diag_rec_decode(d, &p, end, &out), 1);
        CHECK(p == all.data + key_end);
        CHECK_INT(out.seq, 7);
        CHECK_INT(out.realtime_ns, 1000);
        CHECK_INT(out.boottime_ns, 500);
        CHECK_INT(out.late_us, -3);
        CHECK_INT(out.t[DIAG_REC_HOST].nrows, 0);
        CHECK_INT(out.t[DIAG_REC_PROC].nrows, 2);
        CHECK_STR(diag_rec_str(ds, DIAG_REC_STR(&out, DIAG_REC_PROC, 0, PR_COMM)), "bash");
        CHECK_STR(diag_rec_str(ds, DIAG_REC_STR(&out, DIAG_REC_PROC, 0, PR_CMD)), "");
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 0, PR_PID), 100);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 0, PR_START), 5);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 0, PR_UTIME), 50);
        CHECK(DIAG_REC_NUM(&out, DIAG_REC_PROC, 0, PR_RSS) == DIAG_REC_NA);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 1, PR_PID), 101);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 1, PR_START), 5);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 1, PR_UTIME), 0);

        CHECK_INT(diag_rec_decode(d, &p, end, &out), 1);
        CHECK(p == end);
        CHECK_INT(out.seq, 8);
        CHECK_INT(out.realtime_ns, 6000);
        CHECK_INT(out.took_us, 11);
        CHECK_INT(out.t[DIAG_REC_PROC].nrows, 2);
        CHECK_STR(diag_rec_str(ds, DIAG_REC_STR(&out, DIAG_REC_PROC, 0, PR_COMM)), "vim");
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 0, PR_PID), 101);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 0, PR_UTIME), 7);
        CHECK(DIAG_REC_NUM(&out, DIAG_REC_PROC, 0, PR_PPID) == DIAG_REC_NA);
        CHECK_STR(diag_rec_str(ds, DIAG_REC_STR(&out, DIAG_REC_PROC, 1, PR_COMM)), "");
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 1, PR_PID), 102);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 1, PR_START), 6);
        CHECK_INT(DIAG_REC_NUM(&out, DIAG_REC_PROC, 1, PR_UTIME), 0);
        CHECK(DIAG_REC_NUM(&out, DIAG_REC_PROC, 1, PR_RSS) == DIAG_REC_NA);
        CHECK(diag_rec_decode(d, &p, end, &out) == 0);

        /* The unknown table's previous rows are counted: two gone of one is corrupt. */
        all.data[all.len - 2] = 2 << 1 | 1;
        diag_rec_decoder_reset(d);
        p = all.data;
        CHECK_INT(diag_rec_decode(d, &p, end, &out), 1);
        CHECK_INT(diag_rec_decode(d, &p, end, &out), -EBADMSG);
        /* and a corrupt interval ends the chain: the next delta has no reference */
        p = all.data + key_end;
        all.data[all.len - 2] = 1 << 1 | 1;
        CHECK_INT(diag_rec_decode(d, &p, end, &out), -ENOENT);
        CHECK(p == end);
        /* A same row past the previous ones (both gone), or more gone than there were. */
        static const uint64_t firsts[] = { 2 << 1 | 0, 3 << 1 | 0, 3 << 1 | 1 };
        for (size_t k = 0; k < ELEMENTSOF(firsts); k++) {
                all.len = key_end;
                delta_body(&body, firsts[k]);
                bput_interval(&all, 'D', &body);
                p = all.data;
                end = all.data + all.len;
                diag_rec_decoder_reset(d);
                CHECK_INT(diag_rec_decode(d, &p, end, &out), 1);
                CHECK_INT(diag_rec_decode(d, &p, end, &out), -EBADMSG);
        }
        /* An unknown payload version is refused. */
        size_t vpos = 1;
        while (all.data[vpos] & 0x80)
                vpos++;
        p = all.data;
        all.data[vpos + 1] = 2;
        CHECK_INT(diag_rec_decode(d, &p, end, &out), -EBADMSG);

        diag_rec_interval_free(&out);
        diag_rec_buf_free(&sch);
        diag_rec_buf_free(&body);
        diag_rec_buf_free(&all);
        diag_rec_decoder_free(d);
}

/* ---- truncation and corruption ---- */

/* Decode all of len bytes (a copy of exactly that size, so ASan sees overreads);
 * decoded intervals must only hold defined string ids. The last result. */
static int decode_all(struct diag_rec_decoder *d, const uint8_t *data, size_t len, struct diag_rec_interval *out,
                      int *ret_n) {
        uint8_t *copy = malloc(len ? len : 1);
        const uint8_t *p = copy;
        int r, n = 0;

        if (!copy)
                abort();
        memcpy(copy, data, len);
        diag_rec_decoder_reset(d);
        while ((r = diag_rec_decode(d, &p, copy + len, out)) == 1 || r == -ENOENT) {
                if (r < 0)
                        continue;
                n++;
                size_t nids = diag_rec_strings_count(diag_rec_decoder_strings(d));
                for (int t = 0; t < DIAG_REC_NTABLES; t++)
                        for (size_t i = 0; i < out->t[t].nrows * diag_rec_schemas[t].nstr; i++)
                                if (out->t[t].str[i] >= nids) {
                                        CHECK(out->t[t].str[i] < nids);
                                        break;
                                }
        }
        free(copy);
        *ret_n = n;
        return r;
}

static void test_fuzz(uint64_t seed) {
        struct fixture f;
        fixture_init(&f);
        struct diag_rec_interval *world = &f.world, *out = &f.out;
        struct diag_rec_buf *buf = &f.buf;
        struct diag_rec_interval orig[8];
        size_t off[9];
        int n, r;
        unsigned bad = 0, good = 0;

        string_max = 40;
        for (int i = 0; i < 8; i++) {
                diag_rec_interval_init(&orig[i], f.s);
                warm(&orig[i]);
                next_interval(world);
                /* small: the truncation loop decodes the chain once per byte */
                for (int t = 0; t < DIAG_REC_NTABLES; t++)
                        if (world->t[t].nrows > 4)
                                world->t[t].nrows = 4;
                for (size_t k = 0; k < world->t[DIAG_REC_EVENT].nrows; k++)
                        DIAG_REC_STR(world, DIAG_REC_EVENT, k, EV_TEXT) = diag_rec_intern(f.s, "text", 4);
                CHECK_INT(diag_rec_interval_copy(&orig[i], world), 0);
                if (i == 4)
                        diag_rec_encoder_key(f.e);
                off[i] = buf->len;
                CHECK_INT(diag_rec_encode(f.e, world, buf), 0);
        }
        off[8] = buf->len;
        printf("# fuzz: a chain of 8 intervals, %zu bytes, seed %" PRIu64 "\n", buf->len, seed);

        /* Cut at every byte: whole intervals decode, a torn one is corrupt. */
        for (size_t len = 0; len < buf->len; len++) {
                int whole = 0;
                while (whole < 8 && off[whole + 1] <= len)
                        whole++;
                r = decode_all(f.d, buf->data, len, out, &n);
                if (off[whole] == len) {
                        CHECK_INT(r, 0);
                } else {
                        CHECK_INT(r, -EBADMSG);
                }
                CHECK_INT(n, whole);
        }

        /* Flip bytes: any answer but a crash, and the decoder recovers afterwards. */
        rng_state = seed ? seed : 1;
        for (int round = 0; round < 4000; round++) {
                uint8_t *c = malloc(buf->len);
                if (!c)
                        abort();
                memcpy(c, buf->data, buf->len);
                int flips = 1 + (int) rnd_below(4);
                for (int k = 0; k < flips; k++)
                        c[rnd_below(buf->len)] ^= (uint8_t) (1 + rnd_below(255));
                r = decode_all(f.d, c, buf->len, out, &n);
                if (r < 0)
                        bad++;
                else
                        good++;
                free(c);
        }
        /* Garbage from the start. */
        for (int round = 0; round < 1000; round++) {
                uint8_t g[256];
                size_t len = rnd_below(sizeof g);
                for (size_t i = 0; i < len; i++)
                        g[i] = (uint8_t) rnd();
                if (len && chance(50))
                        g[0] = chance(50) ? 'K' : 'D';
                (void) decode_all(f.d, g, len, out, &n);
        }
        printf("# fuzz: 4000 corrupted chains: %u refused, %u decoded\n", bad, good);
        r = decode_all(f.d, buf->data, buf->len, out, &n);
        CHECK_INT(r, 0);
        CHECK_INT(n, 8);
        CHECK_INT(compare(&orig[7], out, "after the fuzz"), 0);

        for (int i = 0; i < 8; i++)
                diag_rec_interval_free(&orig[i]);
        fixture_free(&f);
}

/* ---- speed (printed, not checked) ---- */

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void test_speed(unsigned n) {
        struct fixture f;
        fixture_init(&f);
        struct diag_rec_interval *iv = &f.world;
        int64_t next_pid = 100000;
        int ok = 0;

        make_procs(iv, 1000);
        double t0 = now_s();
        for (unsigned i = 0; i < n; i++) {
                struct diag_rec_table *pt = &iv->t[DIAG_REC_PROC];
                for (size_t k = 0; k < 200; k++) {
                        size_t r = rnd_below(pt->nrows);
                        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_UTIME) += (int64_t) rnd_below(10);
                        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_RSS) += 4096 * (int64_t) rnd_below(5);
                        DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_MINFLT) += (int64_t) rnd_below(50);
                }
                drop_row(iv, DIAG_REC_PROC, rnd_below(pt->nrows));
                add_proc(iv, next_pid++);
                diag_rec_sort(iv, DIAG_REC_PROC);
                for (unsigned c = 0; c < H__N; c++)
                        DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, c) += (int64_t) rnd_below(1000);
                iv->seq++;
                iv->realtime_ns += 5000000000LL;
                iv->boottime_ns += 5000000000LL;
                if (i % 60 == 0)
                        diag_rec_encoder_key(f.e);
                if (diag_rec_encode(f.e, iv, &f.buf) < 0)
                        abort();
        }
        double t1 = now_s();
        const uint8_t *p = f.buf.data;
        while (diag_rec_decode(f.d, &p, f.buf.data + f.buf.len, &f.out) == 1)
                ok++;
        double t2 = now_s();
        CHECK_INT(ok, n);
        CHECK_INT(compare(iv, &f.out, "speed"), 0);
        printf("# speed: %u intervals of 1,000 processes, %.0f bytes each: encode %.3f s, decode %.3f s "
               "(%.2f s for 17,280)\n", n, (double) f.buf.len / n, t1 - t0, t2 - t1, (t2 - t1) * 17280 / n);

        fixture_free(&f);
}

/* A key interval whose schema block is empty, on a decoder that has seen no schema
 * (found by libFuzzer: the comparison with the last block read NULL). Either an error
 * or an interval; UBSan in the development build stops on the undefined call. */
static void test_empty_schema(void) {
        static const uint8_t key[] = { 'K', 2, 1, 0 };
        struct diag_rec_decoder *d = diag_rec_decoder_new();
        struct diag_rec_interval iv;
        const uint8_t *p = key;
        int r;

        CHECK(d != NULL);
        if (!d)
                return;
        diag_rec_interval_init(&iv, diag_rec_decoder_strings(d));
        r = diag_rec_decode(d, &p, key + sizeof key, &iv);
        CHECK(r == 1 || r == -EBADMSG);
        diag_rec_interval_free(&iv);
        diag_rec_decoder_free(d);
}

int main(void) {
        const char *env = getenv("DIAG_TEST_SEED");
        unsigned long long seed = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        long long bench = 720;

        if (env && diag_parse_ull(env, 0, &seed) < 0) {
                fprintf(stderr, "DIAG_TEST_SEED=%s: not a number\n", env);
                return 99;
        }
        if (!seed)
                seed = 1;
        printf("# seed %llu (DIAG_TEST_SEED=%llu repeats this run)\n", seed, seed);
        rng_state = seed;
        test_empty_schema();
        env = getenv("DIAG_TEST_BENCH_INTERVALS");
        if (env && diag_parse_ll(env, 10, 1, 10000000, &bench) < 0) {
                fprintf(stderr, "DIAG_TEST_BENCH_INTERVALS=%s: not a count\n", env);
                return 99;
        }

        test_round_trip();
        test_size();
        test_schema_mapping();
        test_fuzz(seed);
        test_speed((unsigned) bench);
        return TAP_DONE();
}
