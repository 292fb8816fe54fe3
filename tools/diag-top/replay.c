/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top -r: a diag-record recording fed into the model. The recording is read once
 * at open into an index (every interval's time, the events, the gaps); showing an
 * interval then means seeking the reader to the key frame before the minute that
 * precedes it and pushing that minute into a reset model, so that rates and growth are
 * what they were live. One step forward needs no seek: the next interval is decoded
 * where the reader stands.
 *
 * The store's reader seeks by reading every frame header and then the whole segment
 * (tens of MiB): too slow for a key press. So the frames read at open are kept in
 * memory, compressed again with zstd's fastest level (about the recording's size on
 * disk; the newest KEEP_MAX_BYTES of them), and a seek is a walk of that table; the
 * reader is used again only for frames older than what is kept.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "diag/recstore.h"
#include "diag/util.h"
#include "top.h"

#define NS_PER_S                1000000000LL
#define HISTORY_NS              (60 * NS_PER_S)         /* the model gets the minute before */
#define FORWARD_MAX_NS          (90 * NS_PER_S)         /* decode on rather than seek up to this far */
#define SNAPSHOT_NEAR_NS        (300 * NS_PER_S)
#define KEEP_MAX_BYTES          (256ULL << 20)          /* frames kept in memory, compressed */
#define KEEP_MAX_ENV            "DIAG_TOP_REPLAY_KEEP"  /* another cap in bytes (tests: the reader's path) */
#define KEEP_ZSTD_LEVEL         1

/* A frame handed out by the reader at open. */
struct frame {
        uint64_t seq, prev_seq;
        bool key;
        int64_t first_ns;
        uint32_t raw_len, zlen;
        uint8_t *z;                     /* its bytes compressed; NULL: no longer kept */
};

struct mark {
        struct top_event_mark m;
        size_t ivx;                     /* the interval holding it (for a gap: the one before) */
        size_t order;                   /* as read, to keep the sort stable */
};

struct top_replay {
        struct diag_rec_reader *rd;
        struct diag_rec_decoder *dec;
        struct diag_rec_interval iv;    /* the last decoded (the decoder's strings) */
        struct top_model *m;
        void (*warn)(void *ud, const char *line);
        void *ud;
        bool quiet;                     /* the reader's warnings were given at open */
        bool indexing;                  /* in top_replay_open: frames read are kept */

        int64_t *times;                 /* every interval, as read (increasing) */
        size_t ntimes, times_alloc;
        struct mark *marks;
        size_t nmarks, marks_alloc;
        struct top_event_mark *events;  /* marks[].m, for top_replay_events() */

        struct frame *frames;           /* in the order read */
        size_t nframes, frames_alloc;
        size_t kept_from;               /* frames[kept_from..] have their bytes */
        uint64_t kept_bytes, keep_max;
        ZSTD_CCtx *cctx;
        ZSTD_DCtx *dctx;
        uint8_t *zbuf, *rawbuf;         /* scratch: compressed, decompressed */
        size_t zbuf_alloc, rawbuf_alloc;

        /* where the reading stands: in the kept frames (next: frames[fi]) or the reader */
        bool from_memory;
        size_t fi;
        const uint8_t *p, *end;         /* the rest of the frame handed out last */
        uint64_t last_seq;
        bool have_seq;
        bool chain_lost;                /* frames skipped or undecodable since the last interval */

        bool shown;
        size_t cur;                     /* index in times of the interval shown */
        bool positioned;                /* the next decoded interval follows cur */
};

static void reader_warn(void *userdata, const char *fmt, ...) {
        struct top_replay *r = userdata;
        char line[512];
        va_list ap;

        r->chain_lost = true;
        if (r->quiet || !r->warn)
                return;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        r->warn(r->ud, line);
}

/* Room for one more element in *arr (n used of *alloc), doubling. 0 or -ENOMEM. */
static int room(void *arr, size_t *alloc, size_t n, size_t elem) {
        void **a = arr, *p;
        size_t want = *alloc ? *alloc * 2 : 256;

        if (n < *alloc)
                return 0;
        p = reallocarray(*a, want, elem);
        if (!p)
                return -ENOMEM;
        *a = p;
        *alloc = want;
        return 0;
}

static int grow(uint8_t **buf, size_t *alloc, size_t need) {
        uint8_t *p;

        if (need <= *alloc)
                return 0;
        p = realloc(*buf, need);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *alloc = need;
        return 0;
}

/* Keep a copy (compressed) of a frame read at open; forget the oldest past the cap. */
static int frame_keep(struct top_replay *r, const uint8_t *raw, size_t len, const struct diag_rec_frame_info *info) {
        struct frame *f;
        size_t zlen;
        int k;

        if ((k = room(&r->frames, &r->frames_alloc, r->nframes, sizeof *r->frames)) < 0)
                return k;
        f = &r->frames[r->nframes];
        *f = (struct frame) { .seq = info->seq, .prev_seq = info->prev_seq, .key = info->key,
                              .first_ns = info->first_ns, .raw_len = (uint32_t) len };
        if ((k = grow(&r->zbuf, &r->zbuf_alloc, ZSTD_compressBound(len))) < 0)
                return k;
        zlen = ZSTD_compressCCtx(r->cctx, r->zbuf, r->zbuf_alloc, raw, len, KEEP_ZSTD_LEVEL);
        if (ZSTD_isError(zlen))
                return -ENOMEM;
        f->z = malloc(zlen ? zlen : 1);
        if (!f->z)
                return -ENOMEM;
        memcpy(f->z, r->zbuf, zlen);
        f->zlen = (uint32_t) zlen;
        r->kept_bytes += zlen;
        r->nframes++;
        while (r->kept_bytes > r->keep_max && r->kept_from < r->nframes - 1) {
                struct frame *old = &r->frames[r->kept_from++];
                r->kept_bytes -= old->zlen;
                free(old->z);
                old->z = NULL;
        }
        return 0;
}

/* The next frame, from the kept ones or the reader: 1, 0 at the end, negative errno. */
static int next_frame(struct top_replay *r, const uint8_t **raw, size_t *len, struct diag_rec_frame_info *info) {
        const struct frame *f;
        size_t n;
        int k;

        if (!r->from_memory) {
                k = diag_rec_reader_next(r->rd, raw, len, info);
                if (k > 0 && r->indexing && (k = frame_keep(r, *raw, *len, info)) == 0)
                        k = 1;
                return k;
        }
        if (r->fi >= r->nframes)
                return 0;
        f = &r->frames[r->fi++];
        if ((k = grow(&r->rawbuf, &r->rawbuf_alloc, f->raw_len ? f->raw_len : 1)) < 0)
                return k;
        n = ZSTD_decompressDCtx(r->dctx, r->rawbuf, f->raw_len, f->z, f->zlen);
        if (ZSTD_isError(n) || n != f->raw_len)
                return -EIO;
        *info = (struct diag_rec_frame_info) { .seq = f->seq, .prev_seq = f->prev_seq, .key = f->key,
                                               .first_ns = f->first_ns };
        *raw = r->rawbuf;
        *len = n;
        return 1;
}

/* The next interval of the recording into r->iv: 1, 0 at the end, negative errno. */
static int next_interval(struct top_replay *r) {
        for (;;) {
                struct diag_rec_frame_info info;
                const uint8_t *raw;
                size_t len;
                int k;

                if (r->p && r->p < r->end) {
                        k = diag_rec_decode(r->dec, &r->p, r->end, &r->iv);
                        if (k == 1)
                                return 1;
                        if (k < 0) {
                                reader_warn(r, "a frame's records cannot be decoded (%s), skipped", strerror(-k));
                                diag_rec_decoder_reset(r->dec);
                                r->have_seq = false;
                        }
                        r->p = r->end = NULL;
                        continue;
                }
                k = next_frame(r, &raw, &len, &info);
                if (k <= 0)
                        return k;
                if (r->have_seq && info.seq != r->last_seq + 1)
                        r->chain_lost = true;   /* frames missing: damaged or dropped */
                if (!info.key && (!r->have_seq || info.prev_seq != r->last_seq)) {
                        /* its reference was lost: on to the next key frame */
                        diag_rec_decoder_reset(r->dec);
                        r->have_seq = false;
                        r->chain_lost = true;
                        continue;
                }
                r->last_seq = info.seq;
                r->have_seq = true;
                r->p = raw;
                r->end = raw + len;
        }
}

static int mark_add(struct top_replay *r, int64_t t, char kind, pid_t pid, size_t ivx, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int mark_add(struct top_replay *r, int64_t t, char kind, pid_t pid, size_t ivx, const char *path,
                    const char *fmt, ...) {
        struct mark *mk;
        va_list ap;

        if (room(&r->marks, &r->marks_alloc, r->nmarks, sizeof *r->marks) < 0)
                return -ENOMEM;
        mk = &r->marks[r->nmarks];
        *mk = (struct mark) { .m = { .realtime_ns = t, .kind = kind, .pid = pid }, .ivx = ivx, .order = r->nmarks };
        va_start(ap, fmt);
        vsnprintf(mk->m.text, sizeof mk->m.text, fmt, ap);
        va_end(ap);
        if (path && strlen(path) < sizeof mk->m.path)
                memcpy(mk->m.path, path, strlen(path) + 1);
        r->nmarks++;
        return 0;
}

static const char *base_name(const char *path) {
        const char *s = strrchr(path, '/');
        return s && s[1] ? s + 1 : path;
}

/* The events of r->iv (interval ivx) as marks. */
static int index_events(struct top_replay *r, size_t ivx) {
        const struct diag_rec_interval *iv = &r->iv;

        for (size_t e = 0; e < iv->t[DIAG_REC_EVENT].nrows; e++) {
                const char *kind = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_EVENT, e, EV_KIND));
                const char *comm = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_EVENT, e, EV_COMM));
                const char *text = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_EVENT, e, EV_TEXT));
                const char *path = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_EVENT, e, EV_PATH));
                int64_t t = DIAG_REC_NUM(iv, DIAG_REC_EVENT, e, EV_TIME_NS);
                int64_t pid = DIAG_REC_NUM(iv, DIAG_REC_EVENT, e, EV_PID);
                int64_t rss = DIAG_REC_NUM(iv, DIAG_REC_EVENT, e, EV_RSS);
                pid_t p = pid > 0 && pid <= INT32_MAX ? (pid_t) pid : 0;
                char size[16];
                int k = 0;

                if (t == DIAG_REC_NA || t <= 0)
                        t = iv->realtime_ns;
                if (strcmp(kind, DIAG_REC_EV_OOM) == 0) {
                        top_fmt_bytes(size, sizeof size, rss == DIAG_REC_NA ? -1 : (double) rss);
                        k = mark_add(r, t, 'O', p, ivx, NULL, "oom-kill %d (%s) rss %s", (int) p, comm, size);
                } else if (strcmp(kind, DIAG_REC_EV_TRIGGER) == 0) {
                        k = mark_add(r, t, 'T', p, ivx, path, "trigger %s%s%s", text, path[0] ? " -> " : "",
                                     path[0] ? base_name(path) : "");
                } else if (strcmp(kind, DIAG_REC_EV_HUNG) == 0) {
                        k = mark_add(r, t, 'H', p, ivx, NULL, "hung-task %d (%s) %s", (int) p, comm, text);
                } else if (strcmp(kind, DIAG_REC_EV_IOERR) == 0) {
                        k = mark_add(r, t, 'E', p, ivx, NULL, "io-error %s", text);
                }
                if (k < 0)
                        return k;
        }
        return 0;
}

static int mark_cmp(const void *a, const void *b) {
        const struct mark *x = a, *y = b;

        if (x->m.realtime_ns != y->m.realtime_ns)
                return x->m.realtime_ns < y->m.realtime_ns ? -1 : 1;
        return x->order < y->order ? -1 : x->order > y->order;
}

static void fmt_span(char *buf, size_t size, int64_t ns) {
        int64_t s = ns / NS_PER_S;

        if (s < 60)
                snprintf(buf, size, "%" PRId64 "s", s);
        else if (s < 3600)
                snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
        else
                snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
}

static int times_add(struct top_replay *r, int64_t t) {
        if (room(&r->times, &r->times_alloc, r->ntimes, sizeof *r->times) < 0)
                return -ENOMEM;
        r->times[r->ntimes++] = t;
        return 0;
}

/* Read the whole recording once: every interval's time, events, gaps. */
static int build_index(struct top_replay *r) {
        uint32_t nominal_ms = 0;
        int k;

        r->chain_lost = false;
        while ((k = next_interval(r)) > 0) {
                int64_t t = r->iv.realtime_ns;

                if (r->iv.interval_ms)
                        nominal_ms = r->iv.interval_ms;
                if (r->ntimes && t <= r->times[r->ntimes - 1])
                        continue;       /* the clock went back: not reachable by time */
                if (r->ntimes) {
                        int64_t last = r->times[r->ntimes - 1], hole = t - last;
                        bool long_hole = nominal_ms && hole * 2 > (int64_t) nominal_ms * 5000000;

                        if (r->chain_lost || long_hole) {
                                char span[32];

                                fmt_span(span, sizeof span, hole);
                                k = mark_add(r, last, 'G', 0, r->ntimes - 1, NULL, "gap %s: %s", span,
                                             r->chain_lost ? "records lost (damaged or dropped)"
                                                           : "no records (the recorder was not running or stalled)");
                                if (k < 0)
                                        return k;
                        }
                }
                r->chain_lost = false;
                if ((k = times_add(r, t)) < 0 || (k = index_events(r, r->ntimes - 1)) < 0)
                        return k;
        }
        return k;
}

/* The last interval at or before t; the first when t is before it. */
static size_t index_at(const struct top_replay *r, int64_t t) {
        size_t lo = 0, hi = r->ntimes;          /* times[lo - 1] <= t < times[hi] */

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (r->times[mid] <= t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo ? lo - 1 : 0;
}

/* The frame to start from for t: the last key frame whose first interval
 * is at or before t, else the first frame (as diag_rec_reader_seek() chooses). */
static size_t key_frame_before(const struct top_replay *r, int64_t t) {
        size_t lo = 0, hi = r->nframes;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (r->frames[mid].first_ns <= t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        while (lo > 0 && !r->frames[lo - 1].key)
                lo--;
        return lo ? lo - 1 : 0;
}

/* Show interval idx from scratch: seek, reset the model, push the minute before and it. */
static int show_index(struct top_replay *r, size_t idx) {
        int64_t target = r->times[idx], prev = INT64_MIN;
        size_t fk;
        int k;

        r->positioned = false;
        fk = key_frame_before(r, target - HISTORY_NS);
        r->from_memory = fk >= r->kept_from && fk < r->nframes;
        if (r->from_memory) {
                r->fi = fk;
        } else {
                k = diag_rec_reader_seek(r->rd, target - HISTORY_NS);
                if (k < 0)
                        return k;
        }
        diag_rec_decoder_reset(r->dec);
        r->p = r->end = NULL;
        r->have_seq = false;
        top_model_reset(r->m);
        for (;;) {
                int64_t t;

                k = next_interval(r);
                if (k < 0)
                        return k;
                if (k == 0)
                        break;
                t = r->iv.realtime_ns;
                if (t <= prev)
                        continue;
                if (t > target && prev != INT64_MIN)
                        break;          /* not found where it was at open (the recording changed) */
                if ((k = top_model_push(r->m, &r->iv)) < 0)
                        return k;
                prev = t;
                if (t >= target) {
                        r->positioned = t == target;
                        break;
                }
        }
        if (prev == INT64_MIN)
                return -ENODATA;
        r->cur = index_at(r, prev);
        r->shown = true;
        return 0;
}

/* Move on from cur to idx (> cur) decoding where the reader stands. */
static int decode_forward(struct top_replay *r, size_t idx) {
        while (r->cur < idx) {
                int k = next_interval(r);

                if (k <= 0 || r->cur + 1 >= r->ntimes)
                        return k < 0 ? k : show_index(r, idx);
                if (r->iv.realtime_ns <= r->times[r->cur])
                        continue;
                if (r->iv.realtime_ns != r->times[r->cur + 1])
                        return show_index(r, idx);
                if ((k = top_model_push(r->m, &r->iv)) < 0) {
                        r->positioned = false;
                        return k;
                }
                r->cur++;
        }
        return 0;
}

static int move_to(struct top_replay *r, size_t idx) {
        if (r->shown && idx == r->cur)
                return 0;
        if (r->shown && r->positioned && idx > r->cur &&
            (idx == r->cur + 1 || r->times[idx] - r->times[r->cur] <= FORWARD_MAX_NS))
                return decode_forward(r, idx);
        return show_index(r, idx);
}

void top_replay_close(struct top_replay *r) {
        if (!r)
                return;
        diag_rec_interval_free(&r->iv);
        diag_rec_decoder_free(r->dec);
        diag_rec_reader_close(r->rd);
        for (size_t i = 0; i < r->nframes; i++)
                free(r->frames[i].z);
        free(r->frames);
        ZSTD_freeCCtx(r->cctx);
        ZSTD_freeDCtx(r->dctx);
        free(r->zbuf);
        free(r->rawbuf);
        free(r->times);
        free(r->marks);
        free(r->events);
        free(r);
}

int top_replay_open(struct top_replay **ret, const char *dir, struct top_model *m,
                    void (*warn)(void *ud, const char *line), void *ud) {
        struct top_replay *r = calloc(1, sizeof *r);
        uint64_t keep;
        int k;

        if (!r)
                return -ENOMEM;
        diag_rec_interval_init(&r->iv, NULL);
        r->m = m;
        r->warn = warn;
        r->ud = ud;
        k = diag_rec_reader_open(&r->rd, dir, reader_warn, r);
        if (k < 0)
                goto fail;
        r->dec = diag_rec_decoder_new();
        if (!r->dec) {
                k = -ENOMEM;
                goto fail;
        }
        r->iv.strings = diag_rec_decoder_strings(r->dec);
        r->cctx = ZSTD_createCCtx();
        r->dctx = ZSTD_createDCtx();
        if (!r->cctx || !r->dctx) {
                k = -ENOMEM;
                goto fail;
        }
        r->keep_max = KEEP_MAX_BYTES;
        if (getenv(KEEP_MAX_ENV) && diag_parse_size(getenv(KEEP_MAX_ENV), &keep) == 0)
                r->keep_max = keep;
        r->indexing = true;
        k = build_index(r);
        r->indexing = false;
        if (k < 0)
                goto fail;
        if (!r->ntimes) {
                k = -ENODATA;
                goto fail;
        }
        if (r->nmarks) {
                qsort(r->marks, r->nmarks, sizeof *r->marks, mark_cmp);
                r->events = malloc(r->nmarks * sizeof *r->events);
                if (!r->events) {
                        k = -ENOMEM;
                        goto fail;
                }
                for (size_t i = 0; i < r->nmarks; i++)
                        r->events[i] = r->marks[i].m;
        }
        /* what was damaged has been said once */
        r->quiet = true;
        k = show_index(r, r->ntimes - 1);
        if (k < 0)
                goto fail;
        *ret = r;
        return 0;
fail:
        top_replay_close(r);
        return k;
}

void top_replay_span(const struct top_replay *r, int64_t *first_ns, int64_t *last_ns) {
        *first_ns = r->ntimes ? r->times[0] : 0;
        *last_ns = r->ntimes ? r->times[r->ntimes - 1] : 0;
}

int top_replay_seek(struct top_replay *r, int64_t realtime_ns) {
        if (!r->ntimes)
                return -ENODATA;
        return move_to(r, index_at(r, realtime_ns));
}

int top_replay_step(struct top_replay *r, int n) {
        size_t idx;
        int k;

        if (!r->ntimes || n == 0)
                return 0;
        if (n > 0)
                idx = (size_t) n >= r->ntimes - 1 - r->cur ? r->ntimes - 1 : r->cur + (size_t) n;
        else
                idx = (size_t) -(int64_t) n >= r->cur ? 0 : r->cur - (size_t) -(int64_t) n;
        if (idx == r->cur)
                return 0;
        k = move_to(r, idx);
        return k < 0 ? k : 1;
}

int64_t top_replay_now(const struct top_replay *r) {
        return r->ntimes ? r->times[r->cur] : 0;
}

const struct top_event_mark *top_replay_events(const struct top_replay *r, size_t *ret_n) {
        *ret_n = r->nmarks;
        return r->events;
}

int top_replay_jump_event(struct top_replay *r, int dir) {
        int k;

        if (dir == 0 || !r->ntimes)
                return 0;
        for (size_t i = 0; i < r->nmarks; i++) {
                const struct mark *mk = &r->marks[dir > 0 ? i : r->nmarks - 1 - i];

                if (dir > 0 ? mk->ivx > r->cur : mk->ivx < r->cur) {
                        k = move_to(r, mk->ivx);
                        return k < 0 ? k : 1;
                }
        }
        return 0;
}

const struct top_event_mark *top_replay_snapshot_near(const struct top_replay *r) {
        int64_t now = top_replay_now(r);

        for (size_t i = r->nmarks; i-- > 0;) {
                const struct mark *mk = &r->marks[i];

                if (mk->m.kind != 'T' || !mk->m.path[0] || mk->ivx > r->cur)
                        continue;
                if (now - mk->m.realtime_ns > SNAPSHOT_NEAR_NS)
                        break;
                return &r->events[i];
        }
        return NULL;
}
