/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's storage: segment files of checksummed zstd frames in a ring capped
 * in size. The layout is described in docs/diag-record-format.md; the constants and
 * the field offsets below are that document's tables.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "diag/record.h"
#include "diag/recstore.h"
#include "diag/util.h"

/* ---- CRC-32C, slice-by-8 ---- */

static uint32_t crc_table[8][256];

__attribute__((constructor)) static void crc_table_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
                crc_table[0][i] = c;
        }
        for (int t = 1; t < 8; t++)
                for (int i = 0; i < 256; i++)
                        crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static inline uint32_t get_le32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, 4);
        return le32toh(v);
}
static inline uint16_t get_le16(const uint8_t *p) {
        uint16_t v;
        memcpy(&v, p, 2);
        return le16toh(v);
}
static inline uint64_t get_le64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, 8);
        return le64toh(v);
}
static inline void put_le16(uint8_t *p, uint16_t v) {
        v = htole16(v);
        memcpy(p, &v, 2);
}
static inline void put_le32(uint8_t *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, 4);
}
static inline void put_le64(uint8_t *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, 8);
}

uint32_t diag_crc32c(uint32_t crc, const void *data, size_t len) {
        const uint8_t *p = data;

        crc = ~crc;
        for (; len && ((uintptr_t) p & 7); len--)
                crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
        for (; len >= 8; len -= 8, p += 8) {
                uint32_t lo = get_le32(p) ^ crc, hi = get_le32(p + 4);
                crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
                      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
                      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
                      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        }
        for (; len; len--)
                crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
        return ~crc;
}

/* ---- on-disk layout ---- */

#define SEG_MAGIC "DIAGREC1"
#define SEG_VERSION 1
#define SEG_HOSTNAME_LEN 64
#define SEG_BOOTID_LEN 36
/* magic 8, version 2, header length 2, flags 4, number 8, created 8, interval 4,
 * hostname 64, boot id 36, crc 4 */
#define SEG_HDR_LEN 140
#define SEG_HDR_MAX 4096

#define FRAME_MAGIC 0x31465244u         /* "DRF1" */
#define FRAME_HDR_LEN 64
#define FRAME_KEY 0x1u
#define FRAME_RAW_MAX (256u << 20)

#define SEG_NAME_LEN (sizeof(DIAG_REC_SEGMENT_PREFIX) - 1 + 16 + sizeof(DIAG_REC_SEGMENT_SUFFIX) - 1)

struct frame_hdr {
        uint32_t flags, nintervals;
        uint64_t seq, prev_seq;
        int64_t first_ns, last_ns;
        uint32_t raw_len, zlen, pcrc;
};

static void frame_hdr_put(uint8_t *p, const struct frame_hdr *h) {
        put_le32(p, FRAME_MAGIC);
        put_le32(p + 8, h->flags);
        put_le32(p + 12, h->nintervals);
        put_le64(p + 16, h->seq);
        put_le64(p + 24, h->prev_seq);
        put_le64(p + 32, (uint64_t) h->first_ns);
        put_le64(p + 40, (uint64_t) h->last_ns);
        put_le32(p + 48, h->raw_len);
        put_le32(p + 52, h->zlen);
        put_le32(p + 56, h->pcrc);
        put_le32(p + 60, 0);
        put_le32(p + 4, diag_crc32c(0, p + 8, FRAME_HDR_LEN - 8));
}

static void frame_hdr_get(const uint8_t *p, struct frame_hdr *h) {
        h->flags = get_le32(p + 8);
        h->nintervals = get_le32(p + 12);
        h->seq = get_le64(p + 16);
        h->prev_seq = get_le64(p + 24);
        h->first_ns = (int64_t) get_le64(p + 32);
        h->last_ns = (int64_t) get_le64(p + 40);
        h->raw_len = get_le32(p + 48);
        h->zlen = get_le32(p + 52);
        h->pcrc = get_le32(p + 56);
}

/* A header that can be trusted: magic, CRC and lengths that make sense. */
static bool frame_hdr_valid(const uint8_t *p, struct frame_hdr *h) {
        if (get_le32(p) != FRAME_MAGIC || get_le32(p + 4) != diag_crc32c(0, p + 8, FRAME_HDR_LEN - 8))
                return false;
        frame_hdr_get(p, h);
        return h->raw_len <= FRAME_RAW_MAX && h->zlen > 0 && h->zlen <= ZSTD_compressBound(h->raw_len);
}

static void seg_name(char buf[static SEG_NAME_LEN + 1], uint64_t num) {
        snprintf(buf, SEG_NAME_LEN + 1, DIAG_REC_SEGMENT_PREFIX "%016" PRIx64 DIAG_REC_SEGMENT_SUFFIX, num);
}

static bool seg_parse_name(const char *name, uint64_t *ret) {
        const char *hex = name + sizeof(DIAG_REC_SEGMENT_PREFIX) - 1;
        uint64_t v = 0;

        if (strlen(name) != SEG_NAME_LEN || strncmp(name, DIAG_REC_SEGMENT_PREFIX, hex - name) != 0 ||
            strcmp(hex + 16, DIAG_REC_SEGMENT_SUFFIX) != 0)
                return false;
        for (int i = 0; i < 16; i++) {
                char c = hex[i];
                if (c >= '0' && c <= '9')
                        v = v << 4 | (uint64_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v = v << 4 | (uint64_t) (c - 'a' + 10);
                else
                        return false;
        }
        *ret = v;
        return true;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* The segment numbers in d (rewound first), sorted. */
static int seg_list(DIR *d, uint64_t **nums, size_t *n, size_t *alloc) {
        struct dirent *de;

        *n = 0;
        rewinddir(d);
        for (;;) {
                uint64_t num;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno)
                                return negative_errno();
                        break;
                }
                if (!seg_parse_name(de->d_name, &num))
                        continue;
                if (DIAG_GROW(*nums, *alloc, *n + 1) < 0)
                        return -ENOMEM;
                (*nums)[(*n)++] = num;
        }
        if (*n > 1)
                qsort(*nums, *n, sizeof **nums, cmp_u64);
        return 0;
}

/* pread (write: pwrite) until len bytes or the end of the file; *ret the bytes done. */
static int pio(int fd, void *buf, size_t len, uint64_t off, bool write, size_t *ret) {
        *ret = 0;
        while (*ret < len) {
                uint8_t *p = (uint8_t *) buf + *ret;
                off_t at = (off_t) (off + *ret);
                ssize_t k = write ? pwrite(fd, p, len - *ret, at) : pread(fd, p, len - *ret, at);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        return write ? -EIO : 0;
                *ret += (size_t) k;
        }
        return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
        size_t done;

        return pio(fd, (void *) buf, len, off, true, &done);
}

/* Read a segment file from offset have to its end into *buf (grown). */
static int read_rest(int fd, uint8_t **buf, size_t *alloc, size_t *len) {
        struct stat st;
        size_t got;
        int r;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if ((uint64_t) st.st_size <= *len) {
                /* shrunk (a writer truncated a failed write): what is past the end is gone */
                if ((uint64_t) st.st_size < *len)
                        *len = (size_t) st.st_size;
                return 0;
        }
        if ((uint64_t) st.st_size > SIZE_MAX / 2)
                return -EFBIG;
        if ((size_t) st.st_size > *alloc) {
                /* exact, with a little room for a live segment to grow */
                size_t na = (size_t) st.st_size + (size_t) st.st_size / 8 + 4096;
                uint8_t *b = realloc(*buf, na);
                if (!b)
                        return -ENOMEM;
                *buf = b;
                *alloc = na;
        }
        r = pio(fd, *buf + *len, (size_t) st.st_size - *len, *len, false, &got);
        if (r < 0)
                return r;
        *len += got;
        return 0;
}

/*
 * What is at off in a segment's bytes: a good frame (header and payload checked),
 * a frame cut by the end of the bytes read, a header that cannot be trusted, or a
 * trusted header whose payload fails its CRC.
 */
enum frame_state { FRAME_END, FRAME_OK, FRAME_PARTIAL, FRAME_BAD, FRAME_BAD_PAYLOAD };

static enum frame_state frame_at(const uint8_t *buf, size_t len, size_t off, struct frame_hdr *h) {
        if (off >= len)
                return FRAME_END;
        if (len - off < FRAME_HDR_LEN) {
                uint8_t m[4];
                put_le32(m, FRAME_MAGIC);
                return memcmp(buf + off, m, MIN(len - off, sizeof m)) == 0 ? FRAME_PARTIAL : FRAME_BAD;
        }
        if (!frame_hdr_valid(buf + off, h))
                return FRAME_BAD;
        if (len - off - FRAME_HDR_LEN < h->zlen)
                return FRAME_PARTIAL;
        if (diag_crc32c(0, buf + off + FRAME_HDR_LEN, h->zlen) != h->pcrc)
                return FRAME_BAD_PAYLOAD;
        return FRAME_OK;
}

/* The next offset after off where a frame header verifies (or a header's beginning
 * is cut by the end), len when none. */
static size_t frame_resync(const uint8_t *buf, size_t len, size_t off) {
        uint8_t m[4];
        struct frame_hdr h;

        put_le32(m, FRAME_MAGIC);
        for (size_t p = off + 1; p < len; p++) {
                const uint8_t *q = memchr(buf + p, m[0], len - p);
                if (!q)
                        break;
                p = (size_t) (q - buf);
                if (len - p < FRAME_HDR_LEN) {
                        if (memcmp(q, m, MIN(len - p, sizeof m)) == 0)
                                return p;
                } else if (frame_hdr_valid(q, &h))
                        return p;
        }
        return len;
}

struct seg_hdr {
        uint16_t version, len;
        uint64_t num;
        int64_t created_ns;
        uint32_t interval_ms;
};

/* 1: valid, 0: too short yet, -EBADMSG: corrupt, -EPROTONOSUPPORT: other version. */
static int seg_hdr_parse(const uint8_t *p, size_t len, struct seg_hdr *h) {
        if (len == 0)
                return 0;
        if (len < SEG_HDR_LEN)
                return memcmp(p, SEG_MAGIC, MIN(len, strlen(SEG_MAGIC))) == 0 ? 0 : -EBADMSG;
        if (memcmp(p, SEG_MAGIC, strlen(SEG_MAGIC)) != 0)
                return -EBADMSG;
        h->version = get_le16(p + 8);
        h->len = get_le16(p + 10);
        if (h->len < SEG_HDR_LEN || h->len > SEG_HDR_MAX)
                return -EBADMSG;
        if (len < h->len)
                return 0;
        if (get_le32(p + h->len - 4) != diag_crc32c(0, p, h->len - 4u))
                return -EBADMSG;
        if (h->version != SEG_VERSION)
                return -EPROTONOSUPPORT;
        h->num = get_le64(p + 16);
        h->created_ns = (int64_t) get_le64(p + 24);
        h->interval_ms = get_le32(p + 32);
        return 1;
}

/* ---- writer ---- */

struct seg_entry {
        uint64_t num, size;
};

struct diag_rec_writer {
        DIR *dir;
        int dirfd;                      /* dir's */
        uint64_t max_size, segment_size;
        int zstd_level;
        uint32_t interval_ms;
        char hostname[SEG_HOSTNAME_LEN];
        char boot_id[SEG_BOOTID_LEN];

        struct seg_entry *segs;         /* oldest first; the last one is open when seg_fd >= 0 */
        size_t nsegs, segs_alloc;
        uint64_t next_seg;
        int seg_fd;
        uint64_t seg_off;               /* end of what was written to the open segment */
        uint64_t synced_off;            /* end of what is known to be on disk */

        uint64_t next_seq;
        bool chain_broken;
        bool tail_dropped;              /* the newest frame handed over was dropped */

        /* queued frames, header and payload each, between head and tail */
        uint8_t *q;
        size_t qsize, qhead, qtail;

        ZSTD_CCtx *cctx;
        uint8_t *zbuf;
        size_t zbuf_size;

        struct diag_rec_writer_stats st;
};

/* The highest seq of a good frame in the segment, 0 when none. */
static uint64_t seg_last_seq(int dirfd, uint64_t num) {
        char name[SEG_NAME_LEN + 1];
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t alloc = 0, len = 0, off;
        struct seg_hdr sh;
        struct frame_hdr h;
        uint64_t last = 0;

        seg_name(name, num);
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || read_rest(fd, &buf, &alloc, &len) < 0 || len == 0)
                return 0;
        off = seg_hdr_parse(buf, len, &sh) == 1 ? sh.len : 0;
        for (;;) {
                switch (frame_at(buf, len, off, &h)) {
                case FRAME_OK:
                        last = MAX(last, h.seq);
                        __attribute__((fallthrough));
                case FRAME_BAD_PAYLOAD:
                        off += FRAME_HDR_LEN + (size_t) h.zlen;
                        break;
                case FRAME_BAD:
                        off = frame_resync(buf, len, off);
                        break;
                default:
                        return last;
                }
        }
}

static void fill_host(struct diag_rec_writer *w) {
        char b[SEG_BOOTID_LEN + 2];
        char host[256] = "";

        gethostname(host, sizeof host - 1);
        memset(w->hostname, 0, sizeof w->hostname);
        memcpy(w->hostname, host, strnlen(host, sizeof w->hostname));
        memset(w->boot_id, 0, sizeof w->boot_id);
        if (diag_read_small_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", b, sizeof b) >= SEG_BOOTID_LEN)
                memcpy(w->boot_id, b, SEG_BOOTID_LEN);
}

int diag_rec_writer_open(struct diag_rec_writer **ret, const char *dir, const struct diag_rec_writer_opts *opts) {
        struct diag_rec_writer *w;
        struct diag_rec_writer_opts o = opts ? *opts : (struct diag_rec_writer_opts) {};
        _cleanup_free_ uint64_t *nums = NULL;
        size_t n = 0, nalloc = 0;
        int r;

        if (o.max_size == 0)
                o.max_size = 1ULL << 30;
        if (o.max_size < 8192)
                return -EINVAL;
        if (o.segment_size == 0)
                o.segment_size = MIN(MAX(o.max_size / 16, 1ULL << 20), 64ULL << 20);
        o.segment_size = MAX(MIN(o.segment_size, o.max_size / 2), 4096);
        if (o.queue_size == 0)
                o.queue_size = 16 << 20;
        o.queue_size = MAX(o.queue_size, 4096);
        if (o.zstd_level == 0)
                o.zstd_level = 3;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->seg_fd = -1;
        w->dirfd = -1;
        w->dir = opendir(dir);          /* O_CLOEXEC */
        if (!w->dir) {
                r = negative_errno();
                goto fail;
        }
        w->dirfd = dirfd(w->dir);
        /* one writer per directory */
        if (flock(w->dirfd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : negative_errno();
                goto fail;
        }
        w->max_size = o.max_size;
        w->segment_size = o.segment_size;
        w->zstd_level = o.zstd_level;
        w->interval_ms = o.interval_ms;
        w->qsize = o.queue_size;
        fill_host(w);

        w->q = malloc(w->qsize);
        w->cctx = ZSTD_createCCtx();
        if (!w->q || !w->cctx) {
                r = -ENOMEM;
                goto fail;
        }

        /* continue a recording already there */
        r = seg_list(w->dir, &nums, &n, &nalloc);
        if (r < 0)
                goto fail;
        w->next_seq = 1;
        for (size_t i = 0; i < n; i++) {
                char name[SEG_NAME_LEN + 1];
                struct stat st;

                seg_name(name, nums[i]);
                if (fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (DIAG_GROW(w->segs, w->segs_alloc, w->nsegs + 1) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                w->segs[w->nsegs++] = (struct seg_entry) { nums[i], (uint64_t) st.st_size };
        }
        if (n > 0)
                w->next_seg = nums[n - 1] + 1;
        for (size_t i = w->nsegs; i > 0; i--) {
                uint64_t s = seg_last_seq(w->dirfd, w->segs[i - 1].num);
                if (s > 0) {
                        w->next_seq = s + 1;
                        break;
                }
        }
        /* nothing handed over yet can be linked to a frame of an earlier run */
        w->tail_dropped = true;
        w->chain_broken = true;
        *ret = w;
        return 0;
fail:
        diag_rec_writer_close(w);
        return r;
}

/* Drop the oldest queued frame and the delta frames after it, which need it. */
static void queue_drop_oldest(struct diag_rec_writer *w) {
        bool first = true;

        while (w->qhead < w->qtail) {
                struct frame_hdr h;

                frame_hdr_get(w->q + w->qhead, &h);
                if (!first && (h.flags & FRAME_KEY))
                        return;
                first = false;
                w->st.frames_dropped++;
                w->st.intervals_dropped += h.nintervals;
                w->qhead += FRAME_HDR_LEN + (size_t) h.zlen;
                w->chain_broken = true;
        }
        /* the queue is empty: its newest frame, the one a delta frame would refer to, is gone */
        w->qhead = w->qtail = 0;
        w->tail_dropped = true;
}

static void frame_dropped(struct diag_rec_writer *w, uint32_t n) {
        w->st.frames_dropped++;
        w->st.intervals_dropped += n;
        w->chain_broken = true;
        w->tail_dropped = true;
}

int diag_rec_writer_add(struct diag_rec_writer *w, const void *raw, size_t len, uint32_t n, bool key,
                        int64_t first_ns, int64_t last_ns) {
        struct frame_hdr h = {
                .flags = key ? FRAME_KEY : 0, .nintervals = n,
                .first_ns = first_ns, .last_ns = last_ns, .raw_len = (uint32_t) len,
        };
        size_t bound, zlen, flen;

        if (len > FRAME_RAW_MAX) {
                frame_dropped(w, n);
                return -E2BIG;
        }
        /* a delta of a frame that was dropped cannot be decoded: dropped too */
        if (!key && w->tail_dropped) {
                frame_dropped(w, n);
                return 0;
        }
        bound = ZSTD_compressBound(len);
        if (bound > w->zbuf_size) {
                uint8_t *b = realloc(w->zbuf, bound);
                if (!b) {
                        frame_dropped(w, n);
                        return -ENOMEM;
                }
                w->zbuf = b;
                w->zbuf_size = bound;
        }
        zlen = ZSTD_compressCCtx(w->cctx, w->zbuf, w->zbuf_size, raw, len, w->zstd_level);
        if (ZSTD_isError(zlen)) {
                frame_dropped(w, n);
                return -EIO;
        }
        flen = FRAME_HDR_LEN + zlen;
        if (flen > w->qsize) {
                frame_dropped(w, n);
                return -E2BIG;
        }
        while (w->qtail - w->qhead + flen > w->qsize)
                queue_drop_oldest(w);
        if (!key && w->tail_dropped) {
                frame_dropped(w, n);
                return 0;
        }
        if (w->qtail + flen > w->qsize) {
                memmove(w->q, w->q + w->qhead, w->qtail - w->qhead);
                w->qtail -= w->qhead;
                w->qhead = 0;
        }
        h.seq = w->next_seq++;
        h.prev_seq = key ? 0 : h.seq - 1;
        h.zlen = (uint32_t) zlen;
        h.pcrc = diag_crc32c(0, w->zbuf, zlen);
        frame_hdr_put(w->q + w->qtail, &h);
        memcpy(w->q + w->qtail + FRAME_HDR_LEN, w->zbuf, zlen);
        w->qtail += flen;
        w->tail_dropped = false;
        return 0;
}

bool diag_rec_writer_chain_broken(struct diag_rec_writer *w) {
        bool b = w->chain_broken;

        w->chain_broken = false;
        return b;
}

static int seg_create(struct diag_rec_writer *w) {
        uint8_t hdr[SEG_HDR_LEN] = {};
        char name[SEG_NAME_LEN + 1];
        int fd, r;

        for (int tries = 0;; tries++) {
                seg_name(name, w->next_seg);
                fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || tries > 16)
                        return negative_errno();
                w->next_seg++;
        }
        memcpy(hdr, SEG_MAGIC, strlen(SEG_MAGIC));
        put_le16(hdr + 8, SEG_VERSION);
        put_le16(hdr + 10, SEG_HDR_LEN);
        put_le32(hdr + 12, 0);
        put_le64(hdr + 16, w->next_seg);
        put_le64(hdr + 24, diag_now_ns(CLOCK_REALTIME));
        put_le32(hdr + 32, w->interval_ms);
        memcpy(hdr + 36, w->hostname, SEG_HOSTNAME_LEN);
        memcpy(hdr + 36 + SEG_HOSTNAME_LEN, w->boot_id, SEG_BOOTID_LEN);
        put_le32(hdr + SEG_HDR_LEN - 4, diag_crc32c(0, hdr, SEG_HDR_LEN - 4));
        r = pwrite_all(fd, hdr, sizeof hdr, 0);
        if (r >= 0 && DIAG_GROW(w->segs, w->segs_alloc, w->nsegs + 1) < 0)
                r = -ENOMEM;
        if (r < 0) {
                close(fd);
                unlinkat(w->dirfd, name, 0);
                return r;
        }
        w->segs[w->nsegs++] = (struct seg_entry) { w->next_seg, SEG_HDR_LEN };
        w->next_seg++;
        w->seg_fd = fd;
        w->seg_off = w->synced_off = SEG_HDR_LEN;
        return 0;
}

/* Remove the oldest segments while the ring, with room for the open segment to
 * fill, would pass max_size. */
static void ring_trim(struct diag_rec_writer *w) {
        uint64_t closed = 0;
        size_t k = 0;

        for (size_t i = 0; i + 1 < w->nsegs; i++)
                closed += w->segs[i].size;
        while (k + 1 < w->nsegs && closed + w->segment_size > w->max_size) {
                char name[SEG_NAME_LEN + 1];

                seg_name(name, w->segs[k].num);
                if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
                        break;
                closed -= w->segs[k].size;
                w->st.segments_removed++;
                k++;
        }
        if (k > 0) {
                memmove(w->segs, w->segs + k, (w->nsegs - k) * sizeof *w->segs);
                w->nsegs -= k;
        }
}

/* Make what was written to the open segment durable; the frames up to pos are
 * then off the queue. */
static int seg_sync(struct diag_rec_writer *w, size_t pos) {
        if (w->seg_off != w->synced_off && fdatasync(w->seg_fd) < 0)
                return negative_errno();
        w->st.bytes_written += w->seg_off - w->synced_off;
        w->synced_off = w->seg_off;
        while (w->qhead < pos) {
                w->st.frames_written++;
                w->qhead += FRAME_HDR_LEN + (size_t) get_le32(w->q + w->qhead + 52);
        }
        if (w->qhead == w->qtail)
                w->qhead = w->qtail = 0;
        return 0;
}

int diag_rec_writer_flush(struct diag_rec_writer *w) {
        size_t pos = w->qhead;
        bool dir_changed = false;
        int r = 0;

        while (pos < w->qtail) {
                size_t run = 0;

                if (w->seg_fd >= 0) {
                        /* the frames that fit in the open segment, written at once */
                        while (pos + run < w->qtail) {
                                size_t flen = FRAME_HDR_LEN + (size_t) get_le32(w->q + pos + run + 52);
                                if (w->seg_off + run + flen > w->segment_size &&
                                    (run > 0 || w->seg_off > SEG_HDR_LEN))
                                        break;
                                run += flen;
                        }
                }
                if (run == 0) {
                        if (w->seg_fd >= 0) {
                                r = seg_sync(w, pos);
                                if (r < 0)
                                        goto fail;
                                close(w->seg_fd);
                                w->seg_fd = -1;
                        }
                        r = seg_create(w);
                        if (r < 0)
                                goto fail;
                        dir_changed = true;
                        ring_trim(w);
                        continue;
                }
                r = pwrite_all(w->seg_fd, w->q + pos, run, w->seg_off);
                if (r < 0)
                        goto fail;
                w->seg_off += run;
                w->segs[w->nsegs - 1].size = w->seg_off;
                pos += run;
        }
        if (w->seg_fd >= 0) {
                r = seg_sync(w, pos);
                if (r < 0)
                        goto fail;
        }
        if (dir_changed && fsync(w->dirfd) < 0)
                return w->st.last_error = negative_errno();
        w->st.last_error = 0;
        return 0;
fail:
        /* what was not made durable is written again from the queue next time */
        if (w->seg_fd >= 0) {
                (void) !ftruncate(w->seg_fd, (off_t) w->synced_off);
                w->seg_off = w->synced_off;
                w->segs[w->nsegs - 1].size = w->seg_off;
        }
        if (dir_changed)
                (void) fsync(w->dirfd);
        w->st.last_error = r;
        return r;
}

void diag_rec_writer_stats(const struct diag_rec_writer *w, struct diag_rec_writer_stats *st) {
        *st = w->st;
}

int diag_rec_writer_close(struct diag_rec_writer *w) {
        int r = 0;

        if (!w)
                return 0;
        if (w->dirfd >= 0 && w->q)
                r = diag_rec_writer_flush(w);
        if (w->seg_fd >= 0)
                close(w->seg_fd);
        if (w->dir)
                closedir(w->dir);
        ZSTD_freeCCtx(w->cctx);
        free(w->zbuf);
        free(w->q);
        free(w->segs);
        free(w);
        return r;
}

/* ---- reader ---- */

struct diag_rec_reader {
        DIR *dir;
        int dirfd;                      /* dir's */
        diag_rec_warn_fn warn;
        void *userdata;
        ZSTD_DCtx *dctx;

        uint64_t *nums;                 /* the segments listed last */
        size_t nnums, nums_alloc;

        bool have_seg;                  /* a segment is open */
        bool started;                   /* cur is the last segment opened */
        uint64_t cur;
        int seg_fd;
        char name[SEG_NAME_LEN + 1];
        uint8_t *buf;                   /* the open segment's bytes read so far */
        size_t buf_len, buf_alloc;
        bool hdr_checked;
        bool seg_done;                  /* nothing more to read in it */
        size_t off;                     /* of the next frame */
        size_t seek_off;                /* set by seek: the first frame to look at, 0 none */
        size_t torn_warned;             /* offset of a torn tail reported, SIZE_MAX none */

        bool have_last;                 /* a frame was handed out: deltas of it may follow */
        uint64_t last_seq;
        bool chain_warned;

        uint8_t *out;
        size_t out_alloc;

        struct diag_rec_reader_stats st;
};

_printf_(2, 3) static void rwarn(struct diag_rec_reader *r, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        if (!r->warn)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        r->warn(r->userdata, "%s: %s", r->name, msg);
}

static void seg_close(struct diag_rec_reader *r) {
        if (r->seg_fd >= 0)
                close(r->seg_fd);
        r->seg_fd = -1;
        r->have_seg = false;
        r->buf_len = 0;
}

/* Open the segment num and read it. -ENOENT when it is gone. */
static int seg_open(struct diag_rec_reader *r, uint64_t num) {
        int k;

        seg_close(r);
        seg_name(r->name, num);
        r->seg_fd = openat(r->dirfd, r->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (r->seg_fd < 0)
                return negative_errno();
        r->have_seg = true;
        r->started = true;
        r->cur = num;
        r->hdr_checked = false;
        r->seg_done = false;
        r->off = 0;
        r->torn_warned = SIZE_MAX;
        r->st.segments++;
        k = read_rest(r->seg_fd, &r->buf, &r->buf_alloc, &r->buf_len);
        if (k < 0)
                seg_close(r);
        return k;
}

/* The first listed segment after the current one: 1 (in *ret), 0 none. */
static int seg_following(struct diag_rec_reader *r, uint64_t *ret) {
        int k = seg_list(r->dir, &r->nums, &r->nnums, &r->nums_alloc);

        if (k < 0)
                return k;
        for (size_t i = 0; i < r->nnums; i++)
                if (!r->started || r->nums[i] > r->cur) {
                        *ret = r->nums[i];
                        return 1;
                }
        return 0;
}

int diag_rec_reader_open(struct diag_rec_reader **ret, const char *dir, diag_rec_warn_fn warn, void *userdata) {
        struct diag_rec_reader *r;
        int k;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->seg_fd = -1;
        r->dirfd = -1;
        r->warn = warn;
        r->userdata = userdata;
        r->dir = opendir(dir);          /* O_CLOEXEC */
        if (!r->dir) {
                k = negative_errno();
                goto fail;
        }
        r->dirfd = dirfd(r->dir);
        r->dctx = ZSTD_createDCtx();
        r->out = malloc(1);
        r->out_alloc = 1;
        if (!r->dctx || !r->out) {
                k = -ENOMEM;
                goto fail;
        }
        k = seg_list(r->dir, &r->nums, &r->nnums, &r->nums_alloc);
        if (k < 0)
                goto fail;
        if (r->nnums == 0) {
                k = -ENOENT;
                goto fail;
        }
        *ret = r;
        return 0;
fail:
        diag_rec_reader_close(r);
        return k;
}

/* Check the open segment's header and set off to its first frame: 1 done, 0 the
 * header is not all there yet. */
static int seg_check_header(struct diag_rec_reader *r, bool last) {
        struct seg_hdr sh;
        int k = seg_hdr_parse(r->buf, r->buf_len, &sh);

        if (k == 0 && last)
                return 0;
        r->hdr_checked = true;
        if (k == 1) {
                r->off = sh.len;
        } else if (k == -EPROTONOSUPPORT) {
                rwarn(r, "format version %u not supported, segment skipped", sh.version);
                r->st.bytes_skipped += r->buf_len;
                r->off = r->buf_len;
                r->seg_done = true;
                return 1;
        } else {
                /* frames are checked on their own: look for them */
                rwarn(r, "bad segment header, looking for frames");
                r->off = frame_resync(r->buf, r->buf_len, 0);
                r->st.bytes_skipped += r->off;
        }
        if (r->seek_off) {
                r->off = MAX(r->off, r->seek_off);
                r->seek_off = 0;
        }
        return 1;
}

int diag_rec_reader_next(struct diag_rec_reader *r, const uint8_t **raw, size_t *len,
                         struct diag_rec_frame_info *info) {
        for (;;) {
                struct frame_hdr h = {};
                enum frame_state fs;
                uint64_t next;
                size_t flen, res;
                int k;

                if (!r->have_seg) {
                        k = seg_following(r, &next);
                        if (k <= 0)
                                return k;
                        k = seg_open(r, next);
                        if (k == -ENOENT)
                                continue;       /* removed since listed */
                        if (k < 0)
                                return k;
                }
                if (!r->hdr_checked) {
                        /* a short header in the newest segment: it may be being created */
                        k = read_rest(r->seg_fd, &r->buf, &r->buf_alloc, &r->buf_len);
                        if (k < 0)
                                return k;
                        k = seg_following(r, &next);
                        if (k < 0)
                                return k;
                        if (seg_check_header(r, k == 0) == 0)
                                return 0;
                }

                fs = frame_at(r->buf, r->buf_len, r->off, &h);
                switch (fs) {
                case FRAME_END:
                case FRAME_PARTIAL:
                        if (!r->seg_done) {
                                size_t before = r->buf_len;
                                k = read_rest(r->seg_fd, &r->buf, &r->buf_alloc, &r->buf_len);
                                if (k < 0)
                                        return k;
                                if (r->buf_len != before)
                                        continue;       /* grown (or shrunk): look again */
                        }
                        if (fs == FRAME_PARTIAL && r->torn_warned != r->off) {
                                rwarn(r, "torn tail at offset %zu (%zu bytes) skipped", r->off, r->buf_len - r->off);
                                r->torn_warned = r->off;
                                r->st.torn_tails++;
                                r->st.bytes_skipped += r->buf_len - r->off;
                        }
                        k = seg_following(r, &next);
                        if (k <= 0)
                                return k;       /* a live recording may go on here */
                        seg_close(r);
                        continue;
                case FRAME_BAD:
                        res = frame_resync(r->buf, r->buf_len, r->off);
                        rwarn(r, "bad frame at offset %zu, skipped %zu bytes to the %s", r->off, res - r->off,
                              res < r->buf_len ? "next frame" : "end of the segment");
                        r->st.bad_frames++;
                        r->st.bytes_skipped += res - r->off;
                        r->off = res;
                        continue;
                default:
                        break;
                }

                flen = FRAME_HDR_LEN + (size_t) h.zlen;
                if (fs == FRAME_OK && !(h.flags & FRAME_KEY) &&
                    !(r->have_last && h.prev_seq == r->last_seq && h.seq == h.prev_seq + 1)) {
                        /* a delta of a frame not handed out: not decodable */
                        if (r->have_last && !r->chain_warned)
                                rwarn(r, "frame %" PRIu64 " at offset %zu refers to frame %" PRIu64
                                      ", which is missing: skipped up to the next key frame",
                                      h.seq, r->off, h.prev_seq);
                        r->chain_warned = true;
                        r->st.bytes_skipped += flen;
                        r->off += flen;
                        continue;
                }
                if (fs == FRAME_OK) {
                        if (h.raw_len > r->out_alloc) {
                                uint8_t *o = realloc(r->out, h.raw_len);
                                if (!o)
                                        return -ENOMEM;
                                r->out = o;
                                r->out_alloc = h.raw_len;
                        }
                        res = ZSTD_decompressDCtx(r->dctx, r->out, h.raw_len, r->buf + r->off + FRAME_HDR_LEN,
                                                  h.zlen);
                        if (ZSTD_isError(res) || res != h.raw_len ||
                            ZSTD_getFrameContentSize(r->buf + r->off + FRAME_HDR_LEN, h.zlen) != h.raw_len)
                                fs = FRAME_BAD_PAYLOAD;
                }
                if (fs == FRAME_BAD_PAYLOAD) {
                        rwarn(r, "bad frame at offset %zu, skipped %zu bytes to the next frame", r->off, flen);
                        r->st.bad_frames++;
                        r->st.bytes_skipped += flen;
                        r->off += flen;
                        continue;
                }

                *info = (struct diag_rec_frame_info) {
                        .seq = h.seq, .prev_seq = h.prev_seq, .key = h.flags & FRAME_KEY,
                        .nintervals = h.nintervals, .first_ns = h.first_ns, .last_ns = h.last_ns,
                        .segment = r->cur, .offset = r->off, .raw_len = h.raw_len, .zlen = h.zlen,
                };
                *raw = r->out;
                *len = h.raw_len;
                r->off += flen;
                r->have_last = true;
                r->last_seq = h.seq;
                r->chain_warned = false;
                r->st.frames++;
                return 1;
        }
}

int diag_rec_reader_seek(struct diag_rec_reader *r, int64_t realtime_ns) {
        bool found = false;
        uint64_t best_seg = 0, best_off = 0;
        int k;

        k = seg_list(r->dir, &r->nums, &r->nnums, &r->nums_alloc);
        if (k < 0)
                return k;
        /* frame headers only, read one by one */
        for (size_t i = 0; i < r->nnums; i++) {
                char name[SEG_NAME_LEN + 1];
                _cleanup_close_ int fd = -1;
                uint8_t b[MAX(SEG_HDR_MAX, FRAME_HDR_LEN)];
                struct seg_hdr sh;
                uint64_t off;
                size_t got;

                seg_name(name, r->nums[i]);
                fd = openat(r->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0)
                        continue;
                if (pio(fd, b, SEG_HDR_MAX, 0, false, &got) < 0 || seg_hdr_parse(b, got, &sh) != 1)
                        continue;
                off = sh.len;
                for (;;) {
                        struct frame_hdr h;

                        if (pio(fd, b, FRAME_HDR_LEN, off, false, &got) < 0 || got < FRAME_HDR_LEN ||
                            !frame_hdr_valid(b, &h))
                                break;
                        if ((h.flags & FRAME_KEY) && h.first_ns <= realtime_ns) {
                                found = true;
                                best_seg = r->nums[i];
                                best_off = off;
                        }
                        off += FRAME_HDR_LEN + (uint64_t) h.zlen;
                }
        }

        seg_close(r);
        r->have_last = false;
        r->chain_warned = false;
        r->seek_off = 0;
        if (!found) {
                r->started = false;     /* from the first segment */
                return 0;
        }
        k = seg_open(r, best_seg);
        if (k < 0) {
                r->started = false;
                return k == -ENOENT ? 0 : k;
        }
        r->seek_off = (size_t) best_off;
        return 0;
}

void diag_rec_reader_stats(const struct diag_rec_reader *r, struct diag_rec_reader_stats *st) {
        *st = r->st;
}

void diag_rec_reader_close(struct diag_rec_reader *r) {
        if (!r)
                return;
        seg_close(r);
        if (r->dir)
                closedir(r->dir);
        ZSTD_freeDCtx(r->dctx);
        free(r->nums);
        free(r->buf);
        free(r->out);
        free(r);
}
