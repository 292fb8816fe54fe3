/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <dwarf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include "diag/bounded.h"
#include "diag/mem.h"
#include "diag/proc.h"
#include "diag/shm.h"
#include "diag/util.h"

/* Segment bytes are untrusted and unaligned: every field is read by copy. */
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

const char *diag_shm_kind_name(enum diag_shm_kind k) {
        switch (k) {
        case DIAG_SHM_SYSV: return "sysv";
        case DIAG_SHM_POSIX: return "posix";
        case DIAG_SHM_MEMFD: return "memfd";
        case DIAG_SHM_ANON: return "anon";
        case DIAG_SHM_FILE: return "file";
        }
        return "?";
}

/* ---------------------------------------------------------------- MurmurHash3 x86_32 */

struct murmur {
        uint32_t h;
        uint8_t tail[4];
        size_t ntail, total;
};

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static inline uint32_t murmur_k(uint32_t k) {
        k *= 0xcc9e2d51u;
        k = rotl32(k, 15);
        return k * 0x1b873593u;
}

static inline void murmur_block(struct murmur *m, uint32_t k) {
        m->h ^= murmur_k(k);
        m->h = rotl32(m->h, 13);
        m->h = m->h * 5 + 0xe6546b64u;
}

/* Streaming, so that a payload that wraps round the ring is hashed in two pieces
 * exactly as the writer hashed it in one. */
static void murmur_feed(struct murmur *m, const uint8_t *p, size_t len) {
        m->total += len;
        while (m->ntail && m->ntail < sizeof m->tail && len) {
                m->tail[m->ntail++] = *p++;
                len--;
                if (m->ntail == 4) {
                        murmur_block(m, rd32(m->tail));
                        m->ntail = 0;
                }
        }
        for (; len >= 4; p += 4, len -= 4)
                murmur_block(m, rd32(p));
        /* (len < 4 and ntail 0 here; the bound says so to the compiler too) */
        while (len-- && m->ntail < sizeof m->tail)
                m->tail[m->ntail++] = *p++;
}

static uint32_t murmur_end(struct murmur *m) {
        uint32_t k = 0, h = m->h;

        switch (m->ntail) {
        case 3: k ^= (uint32_t) m->tail[2] << 16; /* fall through */
        case 2: k ^= (uint32_t) m->tail[1] << 8;  /* fall through */
        case 1: k ^= m->tail[0];
                h ^= murmur_k(k);
        }
        /* the library passes the length as an int */
        h ^= (uint32_t) m->total;
        h ^= h >> 16;
        h *= 0x85ebca6bu;
        h ^= h >> 13;
        h *= 0xc2b2ae35u;
        h ^= h >> 16;
        return h;
}

uint32_t diag_murmur3_x86_32(const void *data, size_t len, uint32_t seed) {
        struct murmur m = { .h = seed };

        murmur_feed(&m, data, len);
        return murmur_end(&m);
}

/* ---------------------------------------------------------------- libatbus channel */

/* channel_mem.cpp, struct mem_channel on a 64-bit host. Builds made it
 * __attribute__((packed)) for years (ATBUS_MACRO_PACK_ATTR), later ones lay it out
 * with natural alignment: the same fields, the same magic and version, two sets of
 * offsets. The first 22 bytes are the same in both. */
enum { AT_MAGIC = 0, AT_VERSION = 16, AT_ALIGN = 18, AT_HOST = 20 };

struct at_layout {
        const char *name;
        unsigned node_size, bin_power, node_count, read_cur, write_cur, first_failed, op_seq;
        unsigned conf;          /* protect nodes, protect bytes, send timeout, retries, receiver */
        unsigned area;          /* channel, head, data, end */
        unsigned stats;         /* eight size_t counters */
        unsigned end;
};

static const struct at_layout at_layouts[] = {
        { "aligned", 24, 32, 40, 48, 56, 64, 72, 80, 120, 152, 216 },
        { "packed",  22, 30, 38, 46, 54, 62, 70, 74, 114, 146, 210 },
};
#define AT_HEADER_MIN 210
#define AT_HEADER_MAX 216

#define ATBUS_MAGIC "ATBUSMEM"
#define ATBUS_VERSION 2

/* Garbage numbers are shown short ("9e18"), real ones exactly. */
static const char *num(uint64_t v, char *buf, size_t size) {
        if (v < 10000000000ULL)
                snprintf(buf, size, "%" PRIu64, v);
        else {
                int e = 0;
                uint64_t m = v;
                while (m >= 10) {
                        m /= 10;
                        e++;
                }
                snprintf(buf, size, "%" PRIu64 "e%d", m, e);
        }
        return buf;
}

const char *diag_shm_detect(const void *buf, size_t len) {
        /* the library compares the magic case-insensitively */
        if (len >= AT_HEADER_MIN && strncasecmp(buf, ATBUS_MAGIC, strlen(ATBUS_MAGIC)) == 0)
                return "libatbus";
        return NULL;
}

static int bad(char *err, size_t errlen, int r, const char *fmt, ...) _printf_(4, 5);
static int bad(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;

        if (err && errlen) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

static bool node_size_ok(uint64_t ns, uint64_t bp) {
        return ns >= 32 && ns <= (1u << 20) && !(ns & (ns - 1)) && bp < 64 && (1ULL << bp) == ns;
}

static uint64_t round_up(uint64_t v, uint64_t align) {
        return (v + align - 1) / align * align;
}

_Static_assert(AT_HEADER_MIN == DIAG_ATBUS_HEADER_MIN, "header size");

/* buf: the first avail bytes of a len-byte segment */
static int atbus_parse(const void *buf, size_t avail, uint64_t len, struct diag_atbus *ret, char *err, size_t errlen) {
        const uint8_t *p = buf;
        struct diag_atbus c = { .base = p, .len = avail };
        const struct at_layout *L = &at_layouts[0];
        char a[32], b[32];
        uint64_t per_node, fit, data_len;

        if (avail < AT_HEADER_MIN) {
                /* the magic, or as much of it as there is: a channel cut short */
                if (strncasecmp(buf, ATBUS_MAGIC, MIN(avail, strlen(ATBUS_MAGIC))) == 0)
                        return bad(err, errlen, -ENOMSG, "%zu bytes: too short for a channel header (at least %d bytes)",
                                   avail, AT_HEADER_MIN);
                return bad(err, errlen, -ENOMSG, "no ATBUSMEM magic at offset 0");
        }
        if (!diag_shm_detect(buf, avail))
                return bad(err, errlen, -ENOMSG, "no ATBUSMEM magic at offset 0");
        memcpy(c.magic, p, 16);
        c.version = rd16(p + AT_VERSION);
        c.align_size = rd16(p + AT_ALIGN);
        c.host_size = rd16(p + AT_HOST);
        if (c.version != ATBUS_VERSION)
                return bad(err, errlen, -EBADMSG, "channel version %u (this decoder reads version %d)",
                           c.version, ATBUS_VERSION);
        if (c.host_size != 8)
                return bad(err, errlen, -EBADMSG, "host size %u: written by a %u-bit process, this decoder reads 64-bit channels",
                           c.host_size, c.host_size * 8);
        if (c.align_size < 8 || c.align_size > 256 || (c.align_size & (c.align_size - 1)))
                return bad(err, errlen, -EBADMSG, "align size %u is not a power of two from 8 to 256", c.align_size);
        /* the layout whose node size and its power of two agree; a packed header's
         * node size sits where an aligned one has padding */
        for (size_t i = 0; i < ELEMENTSOF(at_layouts); i++)
                if (avail >= at_layouts[i].end &&
                    node_size_ok(rd64(p + at_layouts[i].node_size), rd64(p + at_layouts[i].bin_power))) {
                        L = &at_layouts[i];
                        break;
                }
        if (avail < L->end)
                return bad(err, errlen, -ENOMSG, "%zu bytes: too short for a %s channel header (%u bytes)",
                           avail, L->name, L->end);
        c.layout = L->name;
        c.node_size = rd64(p + L->node_size);
        c.node_size_bin_power = rd64(p + L->bin_power);
        c.node_count = rd64(p + L->node_count);
        c.read_cur = rd64(p + L->read_cur);
        c.write_cur = rd64(p + L->write_cur);
        c.first_failed_writing_time = rd64(p + L->first_failed);
        c.operation_seq = rd32(p + L->op_seq);
        c.protect_node_count = rd64(p + L->conf);
        c.protect_memory_size = rd64(p + L->conf + 8);
        c.send_timeout_ms = rd64(p + L->conf + 16);
        c.write_retry_times = rd64(p + L->conf + 24);
        c.receiver_identify = rd64(p + L->conf + 32);
        c.area_channel_offset = rd64(p + L->area);
        c.area_head_offset = rd64(p + L->area + 8);
        c.area_data_offset = rd64(p + L->area + 16);
        c.area_end_offset = rd64(p + L->area + 24);
        c.write_check_sequence_failed = rd64(p + L->stats);
        c.write_retry = rd64(p + L->stats + 8);
        c.read_bad_node = rd64(p + L->stats + 16);
        c.read_bad_block = rd64(p + L->stats + 24);
        c.read_write_timeout = rd64(p + L->stats + 32);
        c.read_check_block_size_failed = rd64(p + L->stats + 40);
        c.read_check_node_size_failed = rd64(p + L->stats + 48);
        c.read_check_hash_failed = rd64(p + L->stats + 56);
        /* node head {u32 flag, u32 seq} and block head {size_t, u64}, each padded to the align size */
        c.node_head_size = round_up(8, c.align_size);
        c.block_head_size = round_up(16, c.align_size);

        if (c.node_size < 32 || c.node_size > (1u << 20) || (c.node_size & (c.node_size - 1)))
                return bad(err, errlen, -EBADMSG, "node size %s is not a power of two from 32 to 1M",
                           num(c.node_size, a, sizeof a));
        if (c.node_size_bin_power >= 64 || (1ULL << c.node_size_bin_power) != c.node_size)
                return bad(err, errlen, -EBADMSG, "node size bin power %s does not match node size %s",
                           num(c.node_size_bin_power, a, sizeof a), num(c.node_size, b, sizeof b));
        if (c.node_size <= c.block_head_size)
                return bad(err, errlen, -EBADMSG, "node size %" PRIu64 " leaves no room after a %" PRIu64 "-byte block head",
                           c.node_size, c.block_head_size);
        if (c.area_channel_offset != 0)
                return bad(err, errlen, -EBADMSG, "channel offset %s: the header is not at the start of the segment",
                           num(c.area_channel_offset, a, sizeof a));
        if (c.area_head_offset < L->end || c.area_head_offset % c.align_size || c.area_head_offset >= len)
                return bad(err, errlen, -EBADMSG, "node head area offset %s is outside the %" PRIu64 "-byte segment",
                           num(c.area_head_offset, a, sizeof a), len);
        per_node = c.node_head_size + c.node_size;
        fit = (len - c.area_head_offset) / per_node;
        if (c.node_count > fit)
                return bad(err, errlen, -EBADMSG, "node count %s exceeds segment (at most %" PRIu64 " nodes of %" PRIu64
                           " bytes fit in %" PRIu64 " bytes)", num(c.node_count, a, sizeof a), fit, per_node, len);
        if (c.node_count < 2)
                return bad(err, errlen, -EBADMSG, "node count %" PRIu64 " (a channel has at least 2 nodes)", c.node_count);
        /* node_count fits: none of these products overflow */
        if (c.area_data_offset != c.area_head_offset + c.node_count * c.node_head_size)
                return bad(err, errlen, -EBADMSG, "data area offset %s does not follow the %" PRIu64 " node heads at %" PRIu64,
                           num(c.area_data_offset, a, sizeof a), c.node_count, c.area_head_offset);
        if (c.area_end_offset != c.area_data_offset + c.node_count * c.node_size)
                return bad(err, errlen, -EBADMSG, "end offset %s does not follow %" PRIu64 " nodes of %" PRIu64 " bytes",
                           num(c.area_end_offset, a, sizeof a), c.node_count, c.node_size);
        if (c.read_cur >= c.node_count)
                return bad(err, errlen, -EBADMSG, "read cursor %s outside the %" PRIu64 " nodes",
                           num(c.read_cur, a, sizeof a), c.node_count);
        if (c.write_cur >= c.node_count)
                return bad(err, errlen, -EBADMSG, "write cursor %s outside the %" PRIu64 " nodes",
                           num(c.write_cur, a, sizeof a), c.node_count);
        if (c.protect_node_count >= c.node_count)
                return bad(err, errlen, -EBADMSG, "protect node count %s is not below the node count %" PRIu64,
                           num(c.protect_node_count, a, sizeof a), c.node_count);
        data_len = c.node_count * c.node_size;
        if (c.protect_memory_size >= data_len)
                return bad(err, errlen, -EBADMSG, "protect memory size %s is not below the data area's %" PRIu64 " bytes",
                           num(c.protect_memory_size, a, sizeof a), data_len);

        c.used_nodes = (c.write_cur + c.node_count - c.read_cur) % c.node_count;
        c.free_nodes = c.node_count - 1 - c.used_nodes;
        c.writable_nodes = c.free_nodes > c.protect_node_count ? c.free_nodes - c.protect_node_count : 0;
        c.capacity_nodes = c.node_count - 1 - c.protect_node_count;
        c.fill_pct = c.capacity_nodes ? 100.0 * (double) c.used_nodes / (double) c.capacity_nodes : 100.0;
        if (c.fill_pct > 100.0)
                c.fill_pct = 100.0;
        if (avail < c.area_end_offset)
                c.base = NULL;  /* only the header was given */
        *ret = c;
        return 0;
}

int diag_atbus_parse(const void *buf, size_t len, struct diag_atbus *ret, char *err, size_t errlen) {
        return atbus_parse(buf, len, len, ret, err, errlen);
}

int diag_atbus_parse_header(const void *buf, size_t avail, uint64_t seglen, struct diag_atbus *ret,
                            char *err, size_t errlen) {
        return atbus_parse(buf, MIN((uint64_t) avail, seglen), seglen, ret, err, errlen);
}

static inline const uint8_t *node_head(const struct diag_atbus *c, uint64_t i) {
        return c->base + c->area_head_offset + i * c->node_head_size;
}

static inline const uint8_t *node_data(const struct diag_atbus *c, uint64_t i) {
        return c->base + c->area_data_offset + i * c->node_size;
}

void diag_atbus_node(const struct diag_atbus *c, uint64_t index, struct diag_atbus_node *ret) {
        const uint8_t *h = node_head(c, index);

        memset(ret, 0, sizeof *ret);
        ret->index = index;
        ret->flag = rd32(h);
        ret->seq = rd32(h + 4);
        ret->start = ret->flag & DIAG_ATBUS_FLAG_START;
        ret->written = ret->flag & DIAG_ATBUS_FLAG_WRITTEN;
        ret->data = node_data(c, index);
        if (ret->start) {
                ret->size = rd64(ret->data);
                ret->hash = rd64(ret->data + 8);
        }
}

bool diag_atbus_block_hash(const struct diag_atbus *c, uint64_t index, uint64_t size, uint32_t *ret) {
        uint64_t data_len = c->node_count * c->node_size;
        uint64_t start = c->area_data_offset + index * c->node_size + c->block_head_size;
        uint64_t avail = c->area_end_offset - start;
        struct murmur m = { .h = 0 };

        if (index >= c->node_count || size > data_len)
                return false;
        if (size <= avail)
                murmur_feed(&m, c->base + start, size);
        else {
                /* the writer continues at node 0's data, without a block head */
                murmur_feed(&m, c->base + start, avail);
                murmur_feed(&m, c->base + c->area_data_offset, size - avail);
        }
        *ret = murmur_end(&m);
        return true;
}

const char *diag_atbus_anomaly_name(enum diag_atbus_anomaly_kind k) {
        static const char *const names[] = {
                [DIAG_ATBUS_UNWRITTEN] = "unwritten",
                [DIAG_ATBUS_EMPTY] = "empty",
                [DIAG_ATBUS_ORPHAN] = "orphan",
                [DIAG_ATBUS_BAD_SIZE] = "bad_size",
                [DIAG_ATBUS_PAST_WRITE] = "past_write",
                [DIAG_ATBUS_OVERWRITTEN] = "overwritten",
                [DIAG_ATBUS_INCOMPLETE] = "incomplete",
                [DIAG_ATBUS_NODE_COUNT] = "node_count",
                [DIAG_ATBUS_BAD_HASH] = "bad_hash",
                [DIAG_ATBUS_SEQ_BACK] = "seq_back",
        };
        return (size_t) k < ELEMENTSOF(names) && names[k] ? names[k] : "?";
}

struct walk {
        struct diag_atbus_check *k;
        size_t max_report, alloc;
};

static void anomaly(struct walk *w, enum diag_atbus_anomaly_kind kind, uint64_t node, uint64_t block,
                    uint32_t seq, uint32_t block_seq, const char *fmt, ...) _printf_(7, 8);
static void anomaly(struct walk *w, enum diag_atbus_anomaly_kind kind, uint64_t node, uint64_t block,
                    uint32_t seq, uint32_t block_seq, const char *fmt, ...) {
        struct diag_atbus_anomaly *a;
        va_list ap;

        w->k->nanomalies++;
        if (w->k->nreported >= w->max_report || DIAG_GROW(w->k->anomalies, w->alloc, w->k->nreported + 1) < 0)
                return;
        a = &w->k->anomalies[w->k->nreported++];
        a->kind = kind;
        a->node = node;
        a->block = block;
        a->seq = seq;
        a->block_seq = block_seq;
        va_start(ap, fmt);
        vsnprintf(a->text, sizeof a->text, fmt, ap);
        va_end(ap);
}

static inline uint64_t nodes_for(const struct diag_atbus *c, uint64_t size) {
        return (size + c->block_head_size + c->node_size - 1) >> c->node_size_bin_power;
}

/* A block size the reader accepts (mem_recv's check). */
static inline bool size_ok(const struct diag_atbus *c, uint64_t size) {
        return size && size < c->node_count * c->node_size - c->protect_memory_size;
}

int diag_atbus_check(const struct diag_atbus *c, bool hash, size_t max_report, struct diag_atbus_check *ret) {
        struct diag_atbus_check k = { .min_size = UINT64_MAX };
        struct walk w = { .k = &k, .max_report = max_report };
        const uint64_t n = c->node_count, wr = c->write_cur;
        uint64_t i = c->read_cur, prev_block = 0;
        uint32_t prev_seq = 0;
        bool have_prev = false;

        k.nodes_walked = c->used_nodes;
        while (i != wr) {
                struct diag_atbus_node nd;
                uint64_t need, left, j, end, bad_at = UINT64_MAX;

                diag_atbus_node(c, i, &nd);
                if (!nd.written && nd.start) {
                        uint32_t s = nd.seq;
                        uint64_t span = 0;

                        /* the writer sets the size before it copies: if it is sane it
                         * says how far the unfinished block reaches */
                        if (size_ok(c, nd.size))
                                span = MIN(nodes_for(c, nd.size), (wr + n - i) % n);
                        if (span)
                                anomaly(&w, DIAG_ATBUS_UNWRITTEN, i, i, s, s,
                                        "node %" PRIu64 ": block seq %u of %" PRIu64 " bytes (%" PRIu64 " nodes) is not marked written — writer busy, or crashed mid-block",
                                        i, s, nd.size, nodes_for(c, nd.size));
                        else
                                anomaly(&w, DIAG_ATBUS_UNWRITTEN, i, i, s, s,
                                        "node %" PRIu64 ": block seq %u is not marked written and has no size yet — writer busy, or crashed mid-block", i, s);
                        i = (i + 1) % n;
                        if (span)
                                for (j = 1; j < span && i != wr; j++)
                                        i = (i + 1) % n;
                        else    /* those with its seq, as the reader's timeout path skips them */
                                for (; i != wr; i = (i + 1) % n) {
                                        diag_atbus_node(c, i, &nd);
                                        if (nd.seq != s || nd.start)
                                                break;
                                }
                        have_prev = false;
                        continue;
                }
                if (!nd.written) {
                        uint64_t first = i, count = 0;
                        /* a run of nodes with no flag: one anomaly */
                        while (i != wr) {
                                diag_atbus_node(c, i, &nd);
                                if (nd.flag & (DIAG_ATBUS_FLAG_WRITTEN | DIAG_ATBUS_FLAG_START))
                                        break;
                                count++;
                                i = (i + 1) % n;
                        }
                        if (count == 1)
                                anomaly(&w, DIAG_ATBUS_EMPTY, first, first, 0, 0,
                                        "node %" PRIu64 ": no flag set inside the live range — cursor moved, block never written", first);
                        else
                                anomaly(&w, DIAG_ATBUS_EMPTY, first, first, 0, 0,
                                        "nodes %" PRIu64 " to %" PRIu64 ": no flag set inside the live range — cursor moved, blocks never written",
                                        first, (first + count - 1) % n);
                        have_prev = false;
                        continue;
                }
                if (!nd.start) {
                        anomaly(&w, DIAG_ATBUS_ORPHAN, i, i, nd.seq, nd.seq,
                                "node %" PRIu64 ": written node seq %u starts no block", i, nd.seq);
                        i = (i + 1) % n;
                        continue;
                }
                k.blocks++;
                if (have_prev) {
                        int32_t d = (int32_t) (nd.seq - prev_seq);
                        if (d <= 0)
                                anomaly(&w, DIAG_ATBUS_SEQ_BACK, i, i, nd.seq, prev_seq,
                                        "node %" PRIu64 ": block seq %u follows block %" PRIu64 " seq %u — sequence goes back (stale block, or writers racing)",
                                        i, nd.seq, prev_block, prev_seq);
                        else if (d > 1)
                                k.seq_gaps++;
                }
                if (!k.first_seq && k.blocks == 1)
                        k.first_seq = nd.seq;
                k.last_seq = nd.seq;
                have_prev = true;
                prev_seq = nd.seq;
                prev_block = i;
                if (!size_ok(c, nd.size)) {
                        char a[32];
                        anomaly(&w, DIAG_ATBUS_BAD_SIZE, i, i, nd.seq, nd.seq,
                                "node %" PRIu64 ": block seq %u has size %s (0, or not below the %" PRIu64 " usable bytes)",
                                i, nd.seq, num(nd.size, a, sizeof a), c->node_count * c->node_size - c->protect_memory_size);
                        i = (i + 1) % n;
                        continue;
                }
                need = nodes_for(c, nd.size);
                left = (wr + n - i) % n;
                for (j = 1; j < need && j < left; j++) {
                        struct diag_atbus_node m;
                        uint64_t at = (i + j) % n;

                        diag_atbus_node(c, at, &m);
                        if (m.seq != nd.seq) {
                                anomaly(&w, DIAG_ATBUS_OVERWRITTEN, at, i, m.seq, nd.seq,
                                        "node %" PRIu64 ": %sseq %u inside block %" PRIu64 " seq %u — overwritten",
                                        at, m.start ? "block " : "", m.seq, i, nd.seq);
                                bad_at = at;
                                break;
                        }
                        if (m.start) {
                                anomaly(&w, DIAG_ATBUS_NODE_COUNT, at, i, m.seq, nd.seq,
                                        "node %" PRIu64 ": second block start with seq %u inside block %" PRIu64 " (needs %" PRIu64 " nodes)",
                                        at, m.seq, i, need);
                                bad_at = at;
                                break;
                        }
                        if (!m.written) {
                                anomaly(&w, DIAG_ATBUS_INCOMPLETE, at, i, m.seq, nd.seq,
                                        "node %" PRIu64 ": node %" PRIu64 " of block %" PRIu64 " seq %u is not written — writer crashed mid-block?",
                                        at, j, i, nd.seq);
                                bad_at = at;
                                break;
                        }
                }
                if (bad_at != UINT64_MAX) {
                        /* go on from the node that does not belong, like the reader */
                        i = bad_at;
                        have_prev = false;
                        continue;
                }
                if (need > left) {
                        anomaly(&w, DIAG_ATBUS_PAST_WRITE, i, i, nd.seq, nd.seq,
                                "node %" PRIu64 ": block seq %u of %" PRIu64 " bytes needs %" PRIu64 " nodes, only %" PRIu64 " are before the write cursor",
                                i, nd.seq, nd.size, need, left);
                        break;
                }
                end = (i + need) % n;
                if (end != wr) {
                        struct diag_atbus_node m;
                        diag_atbus_node(c, end, &m);
                        if (m.seq == nd.seq && !m.start) {
                                uint64_t extra = 0;
                                while (end != wr) {
                                        diag_atbus_node(c, end, &m);
                                        if (m.seq != nd.seq || m.start)
                                                break;
                                        extra++;
                                        end = (end + 1) % n;
                                }
                                anomaly(&w, DIAG_ATBUS_NODE_COUNT, i, i, nd.seq, nd.seq,
                                        "node %" PRIu64 ": block seq %u of %" PRIu64 " bytes needs %" PRIu64 " nodes, %" PRIu64 " carry its seq",
                                        i, nd.seq, nd.size, need, need + extra);
                                i = end;
                                continue;
                        }
                }
                if (hash) {
                        uint32_t h = 0;
                        (void) diag_atbus_block_hash(c, i, nd.size, &h);
                        if ((uint64_t) h != nd.hash) {
                                anomaly(&w, DIAG_ATBUS_BAD_HASH, i, i, nd.seq, nd.seq,
                                        "node %" PRIu64 ": block seq %u of %" PRIu64 " bytes: stored hash 0x%" PRIx64 ", payload hashes to 0x%08x",
                                        i, nd.seq, nd.size, nd.hash, h);
                                i = end;
                                continue;
                        }
                }
                k.good_blocks++;
                k.bytes += nd.size;
                k.min_size = MIN(k.min_size, nd.size);
                k.max_size = MAX(k.max_size, nd.size);
                i = end;
        }
        if (!k.good_blocks)
                k.min_size = 0;
        *ret = k;
        return 0;
}

void diag_atbus_check_clear(struct diag_atbus_check *k) {
        if (!k)
                return;
        free(k->anomalies);
        memset(k, 0, sizeof *k);
}

void diag_atbus_count_blocks(const struct diag_atbus *c, uint64_t from, uint64_t to,
                             uint64_t *ret_blocks, uint64_t *ret_bytes) {
        uint64_t blocks = 0, bytes = 0, n = c->node_count;
        uint64_t left = (to % n + n - from % n) % n, i = from % n;
        uint32_t prev = 0;

        /* A reader clears the flags of what it took but leaves the sequence numbers
         * and the block heads: a block is a run of nodes with one seq. */
        for (uint64_t k = 0; k < left; k++, i = (i + 1) % n) {
                struct diag_atbus_node nd;

                diag_atbus_node(c, i, &nd);
                if (k == 0 || nd.seq != prev) {
                        uint64_t size = rd64(nd.data);
                        blocks++;
                        if (size_ok(c, size))
                                bytes += size;
                }
                prev = nd.seq;
        }
        *ret_blocks = blocks;
        *ret_bytes = bytes;
}

/* ---------------------------------------------------------------- /proc/sysvipc/shm */

void diag_shm_seg_clear(struct diag_shm_seg *s) {
        if (!s)
                return;
        free(s->name);
        free(s->att);
        memset(s, 0, sizeof *s);
}

enum { SV_KEY, SV_SHMID, SV_PERMS, SV_SIZE, SV_CPID, SV_LPID, SV_NATTCH, SV_UID, SV_GID,
       SV_ATIME, SV_DTIME, SV_CTIME, SV_RSS, SV_SWAP, SV_N };

int diag_shm_parse_sysvipc(const char *text, struct diag_shm_seg **segs, size_t *n) {
        static const char *const names[SV_N] = {
                "key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid",
                "atime", "dtime", "ctime", "rss", "swap",
        };
        int col[SV_N];
        size_t alloc = *n, ncols = 0;
        const char *line = text, *nl;
        char word[64];

        for (int i = 0; i < SV_N; i++)
                col[i] = -1;
        if (!text)
                return -EINVAL;
        /* the header names the columns */
        nl = strchr(line, '\n');
        for (const char *p = line; p < (nl ? nl : line + strlen(line));) {
                size_t len;
                while (*p == ' ' || *p == '\t')
                        p++;
                len = strcspn(p, " \t\n");
                if (!len)
                        break;
                for (int i = 0; i < SV_N; i++)
                        if (strlen(names[i]) == len && strncmp(p, names[i], len) == 0)
                                col[i] = (int) ncols;
                ncols++;
                p += len;
        }
        if (col[SV_KEY] < 0 || col[SV_SHMID] < 0 || col[SV_SIZE] < 0 || col[SV_PERMS] < 0 || ncols > 64)
                return -EBADMSG;
        while (nl) {
                struct diag_shm_seg s = { .kind = DIAG_SHM_SYSV, .in_table = true };
                unsigned long long v[64];
                size_t k = 0;
                const char *p;

                line = nl + 1;
                nl = strchr(line, '\n');
                p = line;
                while (k < ncols) {
                        size_t len;
                        long long sv;
                        while (*p == ' ' || *p == '\t')
                                p++;
                        len = strcspn(p, " \t\n");
                        if (!len || len >= sizeof word)
                                break;
                        memcpy(word, p, len);
                        word[len] = 0;
                        p += len;
                        if ((int) k == col[SV_KEY]) {
                                if (diag_parse_ll(word, 10, INT32_MIN, INT32_MAX, &sv) < 0)
                                        break;
                                v[k] = (unsigned long long) sv;
                        } else if (diag_parse_ull(word, (int) k == col[SV_PERMS] ? 8 : 10, &v[k]) < 0)
                                break;
                        k++;
                }
                if (k == 0 && (!nl || *line == '\n' || *line == 0))
                        continue;
                if (k != ncols)
                        return -EBADMSG;
#define SV(i, dflt) (col[i] >= 0 ? v[col[i]] : (dflt))
                s.key = (int32_t) (long long) SV(SV_KEY, 0);
                if (SV(SV_SHMID, 0) > INT32_MAX)
                        return -EBADMSG;
                s.shmid = (int) SV(SV_SHMID, 0);
                s.mode = (unsigned) SV(SV_PERMS, 0) & 07777;
                s.size = SV(SV_SIZE, 0);
                s.cpid = (pid_t) SV(SV_CPID, 0);
                s.lpid = (pid_t) SV(SV_LPID, 0);
                s.nattch = SV(SV_NATTCH, 0);
                s.uid = (uid_t) SV(SV_UID, 0);
                s.gid = (gid_t) SV(SV_GID, 0);
                s.atime = (int64_t) SV(SV_ATIME, 0);
                s.dtime = (int64_t) SV(SV_DTIME, 0);
                s.ctime = (int64_t) SV(SV_CTIME, 0);
                s.rss = SV(SV_RSS, 0);
                s.swap = SV(SV_SWAP, 0);
#undef SV
                s.inode = (uint64_t) s.shmid;
                /* IPC_PRIVATE segments all have key 0: only the id names one */
                if ((s.key ? asprintf(&s.name, "key:0x%08x", (uint32_t) s.key) : asprintf(&s.name, "id:%d", s.shmid)) < 0)
                        return -ENOMEM;
                if (DIAG_GROW(*segs, alloc, *n + 1) < 0) {
                        free(s.name);
                        return -ENOMEM;
                }
                (*segs)[(*n)++] = s;
        }
        return 0;
}

bool diag_shm_classify_map(const char *path, enum diag_shm_kind *ret_kind, int32_t *ret_key) {
        unsigned key;
        int len = 0;

        if (!path)
                return false;
        if (sscanf(path, "/SYSV%8x%n", &key, &len) == 1 && len == 13 &&
            (path[13] == 0 || strcmp(path + 13, " (deleted)") == 0)) {
                *ret_kind = DIAG_SHM_SYSV;
                if (ret_key)
                        *ret_key = (int32_t) key;
                return true;
        }
        if (strncmp(path, "/dev/shm/", 9) == 0 && path[9]) {
                *ret_kind = DIAG_SHM_POSIX;
                return true;
        }
        if (strncmp(path, "/memfd:", 7) == 0) {
                *ret_kind = DIAG_SHM_MEMFD;
                return true;
        }
        if (strcmp(path, "/dev/zero (deleted)") == 0 || strcmp(path, "/dev/zero") == 0) {
                *ret_kind = DIAG_SHM_ANON;
                return true;
        }
        return false;
}

/* ---------------------------------------------------------------- the machine's segments */

void diag_shm_list_free(struct diag_shm_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                diag_shm_seg_clear(&l->segs[i]);
        free(l->segs);
        free(l);
}

struct list_ctx {
        struct diag_shm_list *l;
        size_t alloc;
};

static int list_add(struct list_ctx *x, const struct diag_shm_seg *s) {
        if (DIAG_GROW(x->l->segs, x->alloc, x->l->n + 1) < 0)
                return -ENOMEM;
        x->l->segs[x->l->n++] = *s;
        return 0;
}

static int list_sysv(struct list_ctx *x) {
        _cleanup_free_ char *text = NULL;
        int r = diag_read_file_at(AT_FDCWD, "/proc/sysvipc/shm", 64 << 20, &text, NULL);

        if (r == -ENOENT)
                return 0;       /* a kernel without SysV IPC */
        if (r < 0)
                return r;
        x->alloc = x->l->n;
        r = diag_shm_parse_sysvipc(text, &x->l->segs, &x->l->n);
        x->alloc = x->l->n;
        return r;
}

static int list_posix(struct list_ctx *x) {
        DIR *d = opendir("/dev/shm");
        struct dirent *de;
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d))) {
                struct diag_shm_seg s = { .kind = DIAG_SHM_POSIX, .shmid = -1, .in_dir = true };
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                /* tmpfs: a stat cannot hang */
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                s.size = (uint64_t) st.st_size;
                s.uid = st.st_uid;
                s.gid = st.st_gid;
                s.mode = st.st_mode & 07777;
                s.ctime = st.st_mtime;
                s.inode = st.st_ino;
                s.dev_major = major(st.st_dev);
                s.dev_minor = minor(st.st_dev);
                if (asprintf(&s.name, "/dev/shm/%s", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if ((r = list_add(x, &s)) < 0) {
                        free(s.name);
                        break;
                }
        }
        closedir(d);
        return r;
}

/* The IPC namespace of pid (its inode), 0 if unknown. */
static uint64_t ipc_ns_of(pid_t pid) {
        char path[64], link[64];
        unsigned long long ino;
        ssize_t k;

        snprintf(path, sizeof path, pid ? "/proc/%d/ns/ipc" : "/proc/self/ns/ipc", pid);
        k = readlink(path, link, sizeof link - 1);
        if (k <= 0)
                return 0;
        link[k] = 0;
        return sscanf(link, "ipc:[%llu]", &ino) == 1 ? ino : 0;
}

/* A SysV mapping names its segment by key (in the path) and shmid (the inode),
 * both within the IPC namespace of the process that maps it. */
static struct diag_shm_seg *find_seg(struct diag_shm_list *l, enum diag_shm_kind kind, const struct diag_map *m,
                                     int32_t key, uint64_t foreign_ns) {
        for (size_t i = 0; i < l->n; i++) {
                struct diag_shm_seg *s = &l->segs[i];
                if (kind == DIAG_SHM_SYSV) {
                        if (s->kind == DIAG_SHM_SYSV && s->ipc_ns == foreign_ns && s->inode == m->inode &&
                            s->key == key)
                                return s;
                } else if (s->kind == kind && s->inode == m->inode && s->dev_major == m->dev_major &&
                           s->dev_minor == m->dev_minor)
                        return s;
        }
        return NULL;
}

/* A segment only a mapping tells of: memfd, anonymous shared, an unlinked /dev/shm
 * file, a SysV segment of another IPC namespace (or removed since the table was read). */
static int seg_from_map(struct list_ctx *x, pid_t pid, enum diag_shm_kind kind, const struct diag_map *m, int32_t key,
                        uint64_t foreign_ns, struct diag_shm_seg **ret) {
        struct diag_shm_seg s = { .kind = kind, .shmid = -1, .inode = m->inode, .key = key, .ipc_ns = foreign_ns,
                                  .dev_major = m->dev_major, .dev_minor = m->dev_minor,
                                  .size = m->end - m->start + m->offset };
        const char *del = strstr(m->path, " (deleted)");
        int len = del ? (int) (del - m->path) : (int) strlen(m->path);
        int r;

        if (kind == DIAG_SHM_MEMFD)
                r = asprintf(&s.name, "%.*s", len - 1, m->path + 1);
        else if (kind == DIAG_SHM_ANON)
                r = asprintf(&s.name, "anon:%" PRIu64, m->inode);
        else if (kind == DIAG_SHM_SYSV && foreign_ns)
                r = asprintf(&s.name, "ipc:%" PRIu64 ":id:%" PRIu64, foreign_ns, m->inode);
        else if (kind == DIAG_SHM_SYSV)
                r = asprintf(&s.name, "id:%" PRIu64, m->inode);
        else if (del)
                r = asprintf(&s.name, "%s", m->path);
        else    /* a /dev/shm of another mount namespace: its path means another file here */
                r = asprintf(&s.name, "%s (pid %d's /dev/shm)", m->path, pid);
        if (r < 0)
                return -ENOMEM;
        /* our namespace's shmid: readable by id; another's only through its processes */
        if (kind == DIAG_SHM_SYSV && !foreign_ns)
                s.shmid = (int) m->inode;
        if ((r = list_add(x, &s)) < 0) {
                free(s.name);
                return r;
        }
        *ret = &x->l->segs[x->l->n - 1];
        return 0;
}

static int scan_maps(struct list_ctx *x, pid_t pid) {
        _cleanup_(diag_maps_freep) struct diag_maps *maps = NULL;
        char comm[17] = "";
        uint64_t ns = UINT64_MAX;       /* not read yet */
        int r = diag_maps_read(pid, &maps);

        if (r == -EACCES || r == -EPERM) {
                x->l->denied++;
                return 0;
        }
        if (r < 0)
                return 0;       /* gone */
        (void) diag_proc_read_comm(pid, comm, sizeof comm);
        for (size_t i = 0; i < maps->n; i++) {
                const struct diag_map *m = &maps->maps[i];
                struct diag_shm_seg *s;
                struct diag_shm_attacher *a;
                enum diag_shm_kind kind;
                int32_t key = 0;

                if (m->perms[3] != 's' || !diag_shm_classify_map(m->path, &kind, &key))
                        continue;
                if (kind == DIAG_SHM_SYSV && ns == UINT64_MAX) {
                        uint64_t mine = ipc_ns_of(0), theirs = ipc_ns_of(pid);
                        ns = mine && theirs && mine != theirs ? theirs : 0;
                }
                if (kind != DIAG_SHM_SYSV)
                        key = 0;
                s = find_seg(x->l, kind, m, key, kind == DIAG_SHM_SYSV ? ns : 0);
                if (!s && (r = seg_from_map(x, pid, kind, m, key, kind == DIAG_SHM_SYSV ? ns : 0, &s)) < 0)
                        return r;
                if (kind != DIAG_SHM_POSIX && (kind != DIAG_SHM_SYSV || s->shmid < 0 || s->ipc_ns))
                        s->size = MAX(s->size, m->end - m->start + m->offset);
                a = realloc(s->att, (s->natt + 1) * sizeof *a);
                if (!a)
                        return -ENOMEM;
                s->att = a;
                a = &s->att[s->natt++];
                memset(a, 0, sizeof *a);
                a->pid = pid;
                memcpy(a->comm, comm, sizeof a->comm);
                a->start = m->start;
                a->end = m->end;
                memcpy(a->perms, m->perms, sizeof a->perms);
        }
        return 0;
}

int diag_shm_seg_target(const struct diag_shm_seg *s, bool via_process, struct diag_shm_target *ret) {
        struct diag_shm_target t = { .kind = s->kind, .shmid = s->shmid };

        /* memfd, anonymous, unlinked or foreign POSIX segments have no name to open
         * here, nor a SysV segment of another IPC namespace */
        if (s->kind == DIAG_SHM_MEMFD || s->kind == DIAG_SHM_ANON ||
            (s->kind == DIAG_SHM_POSIX && !s->in_dir) ||
            (s->kind == DIAG_SHM_SYSV && (s->shmid < 0 || s->ipc_ns)))
                via_process = true;
        if (via_process) {
                if (!s->natt)
                        return -ENOENT;
                t.kind = s->kind == DIAG_SHM_MEMFD ? DIAG_SHM_MEMFD : DIAG_SHM_ANON;
                t.pid = s->att[0].pid;
                t.addr = s->att[0].start;
                t.len = s->att[0].end - s->att[0].start;
        } else if (s->kind != DIAG_SHM_SYSV && !(t.path = strdup(s->name)))
                return -ENOMEM;
        if (!(t.name = strdup(s->name))) {
                diag_shm_target_clear(&t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

static void detect_format(struct diag_shm_seg *s) {
        struct diag_shm_target t;
        uint8_t buf[AT_HEADER_MAX];
        size_t got = 0;
        bool ok = false;

        /* through a process that maps it where there is one: no trace on the segment */
        if (s->natt && diag_shm_seg_target(s, true, &t) == 0) {
                ok = diag_shm_peek(&t, buf, sizeof buf, &got) == 0;
                diag_shm_target_clear(&t);
        }
        if (!ok && diag_shm_seg_target(s, false, &t) == 0) {
                ok = diag_shm_peek(&t, buf, sizeof buf, &got) == 0;
                diag_shm_target_clear(&t);
        }
        if (ok)
                s->format = diag_shm_detect(buf, got);
}

static int cmp_pid(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return x < y ? -1 : x > y;
}

int diag_shm_list(pid_t pid, unsigned flags, struct diag_shm_list **ret) {
        struct list_ctx x = {};
        _cleanup_free_ pid_t *pids = NULL;
        size_t npids = 0;
        int r;

        x.l = calloc(1, sizeof *x.l);
        if (!x.l)
                return -ENOMEM;
        if ((r = list_sysv(&x)) < 0 || (r = list_posix(&x)) < 0)
                goto fail;
        if (pid > 0) {
                size_t k = 0;
                if (kill(pid, 0) < 0 && errno == ESRCH) {
                        r = -ESRCH;
                        goto fail;
                }
                if ((r = scan_maps(&x, pid)) < 0)
                        goto fail;
                if (x.l->denied) {
                        r = -EACCES;
                        goto fail;
                }
                for (size_t i = 0; i < x.l->n; i++) {
                        if (x.l->segs[i].natt)
                                x.l->segs[k++] = x.l->segs[i];
                        else
                                diag_shm_seg_clear(&x.l->segs[i]);
                }
                x.l->n = k;
        } else if (flags & DIAG_SHM_LIST_ATTACHERS) {
                if ((r = diag_proc_list_pids(&pids, &npids)) < 0)
                        goto fail;
                qsort(pids, npids, sizeof *pids, cmp_pid);
                for (size_t i = 0; i < npids; i++)
                        if (pids[i] != getpid() && (r = scan_maps(&x, pids[i])) < 0)
                                goto fail;
        }
        if (flags & DIAG_SHM_LIST_FORMAT)
                for (size_t i = 0; i < x.l->n; i++)
                        detect_format(&x.l->segs[i]);
        *ret = x.l;
        return 0;
fail:
        diag_shm_list_free(x.l);
        return r;
}

/* ---------------------------------------------------------------- message queues */

int diag_mqueue_parse(const char *text, struct diag_mqueue *ret) {
        static const char *const keys[] = { "QSIZE:", "NOTIFY:", "SIGNO:", "NOTIFY_PID:" };
        unsigned long long v[4];

        if (!text)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *p = strstr(text, keys[i]);
                char word[32];
                size_t len;

                if (!p || (p != text && p[-1] != ' ' && p[-1] != '\t'))
                        return -EBADMSG;
                p += strlen(keys[i]);
                len = strcspn(p, " \t\n");
                if (!len || len >= sizeof word)
                        return -EBADMSG;
                memcpy(word, p, len);
                word[len] = 0;
                if (diag_parse_ull(word, 10, &v[i]) < 0 || (i > 0 && v[i] > INT32_MAX))
                        return -EBADMSG;
        }
        ret->qsize = v[0];
        ret->notify = (int) v[1];
        ret->signo = (int) v[2];
        ret->notify_pid = (pid_t) v[3];
        return 0;
}

void diag_mqueue_free(struct diag_mqueue *q, size_t n) {
        for (size_t i = 0; q && i < n; i++)
                free(q[i].name);
        free(q);
}

/* /proc/self/mounts escapes blanks as \040 */
static void unescape_octal(char *s) {
        char *o = s;
        for (; *s; s++) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
                        *o++ = (char) (((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
                        s += 3;
                } else
                        *o++ = *s;
        }
        *o = 0;
}

static int mqueue_mount(char **ret) {
        _cleanup_free_ char *text = NULL;
        char *save = NULL;
        int r = diag_read_file_at(AT_FDCWD, "/proc/self/mounts", 16 << 20, &text, NULL);

        if (r < 0)
                return r;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char dev[256], dir[4096], type[64];
                if (sscanf(line, "%255s %4095s %63s", dev, dir, type) == 3 && strcmp(type, "mqueue") == 0) {
                        unescape_octal(dir);
                        *ret = strdup(dir);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOENT;
}

int diag_mqueue_list(struct diag_mqueue **ret, size_t *ret_n, char **ret_dir) {
        _cleanup_free_ char *dir = NULL;
        struct diag_mqueue *q = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *de;
        DIR *d;
        int r = mqueue_mount(&dir);

        if (r < 0)
                return r;
        d = opendir(dir);
        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                struct diag_mqueue m = {};
                struct stat st;
                char text[256];

                if (de->d_name[0] == '.')
                        continue;
                if (diag_read_small_at(dirfd(d), de->d_name, text, sizeof text) < 0 ||
                    diag_mqueue_parse(text, &m) < 0)
                        continue;       /* gone, or not readable */
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        m.uid = st.st_uid;
                        m.gid = st.st_gid;
                        m.mode = st.st_mode & 07777;
                }
                if (asprintf(&m.name, "/%s", de->d_name) < 0 || DIAG_GROW(q, alloc, n + 1) < 0) {
                        free(m.name);
                        r = -ENOMEM;
                        break;
                }
                q[n++] = m;
        }
        closedir(d);
        if (r < 0) {
                diag_mqueue_free(q, n);
                return r;
        }
        *ret = q;
        *ret_n = n;
        if (ret_dir)
                *ret_dir = TAKE_PTR(dir);
        return 0;
}

/* ---------------------------------------------------------------- naming and reading */

void diag_shm_target_clear(struct diag_shm_target *t) {
        if (!t)
                return;
        free(t->path);
        free(t->name);
        memset(t, 0, sizeof *t);
        t->shmid = -1;
}

static int sysv_find(bool by_key, long long want, int *ret_shmid) {
        _cleanup_free_ char *text = NULL;
        struct diag_shm_seg *segs = NULL;
        size_t n = 0;
        int r = diag_read_file_at(AT_FDCWD, "/proc/sysvipc/shm", 64 << 20, &text, NULL);

        if (r < 0)
                return r;
        r = diag_shm_parse_sysvipc(text, &segs, &n);
        if (r == 0) {
                r = -ENOENT;
                for (size_t i = 0; i < n; i++)
                        if (by_key ? segs[i].key == (int32_t) want : segs[i].shmid == want) {
                                *ret_shmid = segs[i].shmid;
                                r = 0;
                                break;
                        }
        }
        for (size_t i = 0; i < n; i++)
                diag_shm_seg_clear(&segs[i]);
        free(segs);
        return r;
}

void diag_shm_image_clear(struct diag_shm_image *im) {
        if (!im)
                return;
        free(im->copy);
        if (im->attached)
                shmdt(im->attached);
        diag_bounded_free(im->shared, im->shared_len);
        memset(im, 0, sizeof *im);
}

/* ---- files: every open, stat and read in a bounded child ----
 * A file the user named may sit on a FUSE or NFS mount whose server stopped
 * answering: a read of it would put this process in D state for ever. The child
 * reads into memory shared with us, a chunk at a time, each within the timeout. */

#define PATH_TIMEOUT_MS 4000      /* a loaded machine may take seconds to fork and read a local file */
#define PATH_HEAD 4096
#define PATH_CHUNK (32u << 20)

static pid_t stuck_helper;

pid_t diag_shm_stuck_helper(void) {
        return stuck_helper;
}

unsigned diag_shm_path_timeout_ms(void) {
        return PATH_TIMEOUT_MS;
}

struct path_job {
        const char *path;
        bool nofollow;
        bool same;              /* must still be the file dev/ino (read in chunks) */
        uint64_t dev, ino;
        uint64_t off;           /* file offset */
        size_t at, len;         /* read len bytes to data + at */
};

struct path_share {
        uint64_t size, dev, ino, got;
        uint32_t mode;
        uint8_t data[] __attribute__((aligned(16)));
};

static int path_child(void *arg, void *shared, size_t size) {
        const struct path_job *j = arg;
        struct path_share *s = shared;
        struct stat st;
        int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (j->nofollow ? O_NOFOLLOW : 0));

        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        s->size = (uint64_t) st.st_size;
        s->mode = st.st_mode;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->got = 0;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (j->same && (s->dev != j->dev || s->ino != j->ino))
                return -ESTALE;
        if (j->at > size - sizeof *s || j->len > size - sizeof *s - j->at)
                return -EINVAL;
        while (s->got < j->len) {
                ssize_t k = pread(fd, s->data + j->at + s->got, j->len - s->got, (off_t) (j->off + s->got));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                s->got += (size_t) k;
        }
        return 0;
}

static int path_run(const struct path_job *j, struct path_share *s, size_t size) {
        pid_t stuck = 0;
        int r = diag_bounded_run(path_child, (void *) j, s, size, PATH_TIMEOUT_MS, &stuck);

        if (r == -ETIMEDOUT)
                stuck_helper = stuck;
        return r;
}

static struct path_share *share_new(size_t len, size_t *ret_size) {
        if (len > SIZE_MAX - sizeof(struct path_share)) {
                errno = EFBIG;
                return NULL;
        }
        *ret_size = sizeof(struct path_share) + len;
        return diag_bounded_alloc(*ret_size);
}

/* The first want bytes (0: all, at most max) of a file: its head first, then the
 * rest in chunks, each checked to be the same file. */
static int read_path(const char *path, bool nofollow, size_t max, size_t want, struct diag_shm_image *ret) {
        struct path_job j = { .path = path, .nofollow = nofollow, .len = want && want < PATH_HEAD ? want : PATH_HEAD };
        struct path_share *h, *s;
        size_t hsize, size, total;
        uint64_t len;
        int r;

        if (!(h = share_new(j.len, &hsize)))
                return negative_errno();
        r = path_run(&j, h, hsize);
        if (r < 0)
                goto fail;
        len = want && want < h->size ? want : h->size;
        if (!want && h->size > max) {
                r = -EFBIG;
                goto fail;
        }
        if (h->got >= len || h->got < j.len) {
                *ret = (struct diag_shm_image) { .data = h->data, .len = (size_t) MIN(h->got, len), .size = h->size,
                                                 .shared = h, .shared_len = hsize };
                return 0;
        }
        if (len > SIZE_MAX || !(s = share_new((size_t) len, &size))) {
                r = -ENOMEM;
                goto fail;
        }
        memcpy(s->data, h->data, h->got);
        total = h->got;
        j = (struct path_job) { .path = path, .nofollow = nofollow, .same = true, .dev = h->dev, .ino = h->ino };
        while (total < len) {
                j.off = j.at = total;
                j.len = (size_t) MIN(len - total, (uint64_t) PATH_CHUNK);
                r = path_run(&j, s, size);
                if (r < 0) {
                        diag_bounded_free(s, size);
                        goto fail;
                }
                total += s->got;
                if (s->got < j.len)     /* it shrank */
                        break;
        }
        *ret = (struct diag_shm_image) { .data = s->data, .len = total, .size = h->size, .shared = s, .shared_len = size };
        diag_bounded_free(h, hsize);
        return 0;
fail:
        diag_bounded_free(h, hsize);
        return r;
}

int diag_shm_resolve(const char *name, struct diag_shm_target *ret) {
        struct diag_shm_target t = { .shmid = -1 };
        long long v;
        int r;

        if (!name || !*name)
                return -EINVAL;
        if (strncmp(name, "key:", 4) == 0 || strncmp(name, "id:", 3) == 0) {
                bool by_key = name[0] == 'k';
                const char *num_s = name + (by_key ? 4 : 3);
                int base = strncasecmp(num_s, "0x", 2) == 0 ? 16 : 10;

                if (base == 16)
                        num_s += 2;
                r = diag_parse_ll(num_s, base, by_key ? INT32_MIN : 0, by_key ? (long long) UINT32_MAX : INT32_MAX, &v);
                if (r < 0 || *num_s == '-' || *num_s == '+')
                        return -EINVAL;
                if (by_key && v > INT32_MAX)
                        v = (int32_t) (uint32_t) v;
                r = sysv_find(by_key, v, &t.shmid);
                if (r < 0)
                        return r;
                t.kind = DIAG_SHM_SYSV;
                if (asprintf(&t.name, "%s", name) < 0)
                        return -ENOMEM;
        } else {
                /* opened and stat'ed in a bounded child: it may be on a dead mount */
                struct path_job j = { .path = name, .nofollow = strncmp(name, "/dev/shm/", 9) == 0 };
                size_t size;
                struct path_share *s = share_new(0, &size);

                if (!s)
                        return negative_errno();
                r = path_run(&j, s, size);
                diag_bounded_free(s, size);
                if (r < 0)
                        return r;
                t.kind = j.nofollow ? DIAG_SHM_POSIX : DIAG_SHM_FILE;
                t.path = strdup(name);
                t.name = strdup(name);
                if (!t.path || !t.name) {
                        diag_shm_target_clear(&t);
                        return -ENOMEM;
                }
        }
        *ret = t;
        return 0;
}

/* ---- SysV segments and processes' mappings ---- */

/* A buffer for the first want bytes (0: all) of a segment of total bytes. */
static int new_copy(uint64_t total, size_t max, size_t want, uint8_t **ret, size_t *ret_len) {
        size_t len = (size_t) total;

        if (want && want < total)
                len = want;
        else if (total > max)
                return -EFBIG;
        /* A big copy in huge pages: faulting in 4 KiB pages one by one would cost
         * more than the copy itself (free() takes this memory back as any other). */
        if (len >= (4u << 20)) {
                void *p = NULL;
                if (posix_memalign(&p, 2u << 20, len) != 0)
                        return -ENOMEM;
                (void) madvise(p, len, MADV_HUGEPAGE);
                *ret = p;
        } else
                *ret = malloc(len ? len : 1);
        if (!*ret)
                return -ENOMEM;
        *ret_len = len;
        return 0;
}

static int read_sysv(int shmid, size_t max, size_t want, struct diag_shm_image *ret) {
        struct shmid_ds ds;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        void *p;
        int r;

        if (shmctl(shmid, IPC_STAT, &ds) < 0)
                return negative_errno();
        if ((r = new_copy(ds.shm_segsz, max, want, &buf, &len)) < 0)
                return r;
        p = shmat(shmid, NULL, SHM_RDONLY);
        if (p == (void *) -1)
                return negative_errno();
        memcpy(buf, p, len);
        shmdt(p);
        *ret = (struct diag_shm_image) { .data = buf, .len = len, .size = ds.shm_segsz, .copy = buf };
        TAKE_PTR(buf);
        return 0;
}

static int read_process(pid_t pid, uint64_t addr, uint64_t maplen, size_t max, size_t want,
                        struct diag_shm_image *ret) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        ssize_t k = new_copy(maplen, max, want, &buf, &len);

        if (k < 0)
                return (int) k;
        k = diag_mem_read(pid, addr, buf, len);
        if (k < 0)
                return (int) k;
        *ret = (struct diag_shm_image) { .data = buf, .len = (size_t) k, .size = maplen, .copy = buf };
        TAKE_PTR(buf);
        return 0;
}

static int target_read(const struct diag_shm_target *t, size_t max, size_t want, struct diag_shm_image *ret) {
        switch (t->kind) {
        case DIAG_SHM_SYSV:
                return read_sysv(t->shmid, max, want, ret);
        case DIAG_SHM_POSIX:    /* anyone may put a link in /dev/shm: not followed */
                return read_path(t->path, true, max, want, ret);
        case DIAG_SHM_FILE:
                return read_path(t->path, false, max, want, ret);
        case DIAG_SHM_MEMFD:
        case DIAG_SHM_ANON:
                return read_process(t->pid, t->addr, t->len, max, want, ret);
        }
        return -EINVAL;
}

int diag_shm_snapshot(const struct diag_shm_target *t, size_t max, struct diag_shm_image *ret) {
        return target_read(t, max, 0, ret);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

int diag_shm_view(const struct diag_shm_target *t, size_t max, size_t want, struct diag_shm_image *ret) {
        struct shmid_ds ds;
        void *p;

        if (t->kind != DIAG_SHM_SYSV)
                return target_read(t, max, want, ret);
        if (shmctl(t->shmid, IPC_STAT, &ds) < 0)
                return negative_errno();
        if (ds.shm_segsz > max && !(want && want <= max))
                return -EFBIG;
        p = shmat(t->shmid, NULL, SHM_RDONLY);
        if (p == (void *) -1)
                return negative_errno();
        /* one call fills the page tables: a fault per 4 KiB page costs more than
         * the whole check (Linux 5.14; older kernels fault page by page) */
        (void) madvise(p, ds.shm_segsz, MADV_POPULATE_READ);
        *ret = (struct diag_shm_image) { .data = p, .len = ds.shm_segsz, .size = ds.shm_segsz, .attached = p };
        return 0;
}

int diag_shm_peek(const struct diag_shm_target *t, void *buf, size_t len, size_t *ret_len) {
        struct diag_shm_image im = {};
        int r;

        if (!len)
                return -EINVAL;
        r = target_read(t, SIZE_MAX, len, &im);
        if (r < 0)
                return r;
        *ret_len = MIN(im.len, len);
        memcpy(buf, im.data, *ret_len);
        diag_shm_image_clear(&im);
        return 0;
}

/* ---- --save ---- */

static int write_all(int fd, const uint8_t *p, size_t len, const volatile sig_atomic_t *stop) {
        while (len > 0) {
                ssize_t k;

                if (stop && *stop)
                        return -ECANCELED;
                k = write(fd, p, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? negative_errno() : -EIO;
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

static int save_sysv(int shmid, int fd, const volatile sig_atomic_t *stop, uint64_t *total) {
        struct shmid_ds ds;
        const uint8_t *p;
        int r = 0;

        if (shmctl(shmid, IPC_STAT, &ds) < 0)
                return negative_errno();
        p = shmat(shmid, NULL, SHM_RDONLY);
        if (p == (void *) -1)
                return negative_errno();
        while (r == 0 && *total < ds.shm_segsz) {
                size_t n = (size_t) MIN((uint64_t) PATH_CHUNK, ds.shm_segsz - *total);
                if ((r = write_all(fd, p + *total, n, stop)) == 0)
                        *total += n;
        }
        shmdt(p);
        return r;
}

static int save_process(const struct diag_shm_target *t, int fd, const volatile sig_atomic_t *stop, uint64_t *total) {
        _cleanup_free_ uint8_t *buf = malloc(PATH_CHUNK);
        int r = 0;

        if (!buf)
                return -ENOMEM;
        while (r == 0 && *total < t->len) {
                size_t n = (size_t) MIN((uint64_t) PATH_CHUNK, t->len - *total);
                ssize_t k = diag_mem_read(t->pid, t->addr + *total, buf, n);
                if (k < 0)
                        return (int) k;
                if ((r = write_all(fd, buf, (size_t) k, stop)) == 0)
                        *total += (uint64_t) k;
                if ((size_t) k < n)
                        break;
        }
        return r;
}

static int save_path(const struct diag_shm_target *t, int fd, const volatile sig_atomic_t *stop, uint64_t *total) {
        struct path_job j = { .path = t->path, .nofollow = t->kind == DIAG_SHM_POSIX, .len = PATH_CHUNK };
        uint64_t limit = UINT64_MAX;
        size_t size;
        struct path_share *s = share_new(PATH_CHUNK, &size);
        int r = 0;

        if (!s)
                return negative_errno();
        while (r == 0 && *total < limit) {
                if (stop && *stop) {
                        r = -ECANCELED;
                        break;
                }
                j.off = *total;
                j.len = (size_t) MIN((uint64_t) PATH_CHUNK, limit - *total);
                if ((r = path_run(&j, s, size)) < 0)
                        break;
                if (!j.same) {  /* the first chunk: the size as of now, and this file only */
                        limit = s->size;
                        j.same = true;
                        j.dev = s->dev;
                        j.ino = s->ino;
                }
                s->got = MIN(s->got, limit - *total);
                if ((r = write_all(fd, s->data, (size_t) s->got, stop)) < 0)
                        break;
                *total += s->got;
                if (s->got < j.len)
                        break;
        }
        diag_bounded_free(s, size);
        return r;
}

int diag_shm_save(const struct diag_shm_target *t, const char *path, const volatile sig_atomic_t *stop,
                  uint64_t *ret_bytes) {
        struct diag_outfile of;
        uint64_t total = 0;
        int r = diag_outfile_open(&of, path);

        if (r == 0) {
                switch (t->kind) {
                case DIAG_SHM_SYSV:
                        r = save_sysv(t->shmid, of.fd, stop, &total);
                        break;
                case DIAG_SHM_POSIX:
                case DIAG_SHM_FILE:
                        r = save_path(t, of.fd, stop, &total);
                        break;
                case DIAG_SHM_MEMFD:
                case DIAG_SHM_ANON:
                        r = save_process(t, of.fd, stop, &total);
                        break;
                default:
                        r = -EINVAL;
                }
        }
        if (r == 0 && stop && *stop)
                r = -ECANCELED;
        if (r == 0 && fsync(of.fd) < 0 && errno != EINVAL)
                r = negative_errno();
        if (r == 0)
                r = diag_outfile_commit(&of);
        diag_outfile_discard(&of);
        if (r == 0 && ret_bytes)
                *ret_bytes = total;
        return r;
}

/* ---------------------------------------------------------------- C structs from DWARF */

void diag_struct_layout_free(struct diag_struct_layout *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->fields[i].name);
                free(l->fields[i].type);
                free(l->fields[i].value);
        }
        free(l->fields);
        free(l->name);
        free(l);
}

static bool is_aggregate_tag(int tag) {
        return tag == DW_TAG_structure_type || tag == DW_TAG_class_type || tag == DW_TAG_union_type;
}

/* Depth-first through namespaces for a defined aggregate (or typedef) called name. */
static bool find_type(Dwarf_Die *parent, const char *name, Dwarf_Die *ret, int depth) {
        Dwarf_Die child;

        if (depth > 8 || dwarf_child(parent, &child) != 0)
                return false;
        do {
                int tag = dwarf_tag(&child);
                const char *n = dwarf_diename(&child);

                if (n && strcmp(n, name) == 0 && !dwarf_hasattr(&child, DW_AT_declaration) &&
                    (is_aggregate_tag(tag) || tag == DW_TAG_typedef)) {
                        *ret = child;
                        return true;
                }
                if (tag == DW_TAG_namespace && find_type(&child, name, ret, depth + 1))
                        return true;
        } while (dwarf_siblingof(&child, &child) == 0);
        return false;
}

/* Strip typedefs and qualifiers. */
static bool peel(Dwarf_Die *t, Dwarf_Die *ret) {
        Dwarf_Attribute a;
        Dwarf_Die cur = *t;

        for (int i = 0; i < 16; i++) {
                int tag = dwarf_tag(&cur);
                if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
                    tag != DW_TAG_atomic_type && tag != DW_TAG_restrict_type) {
                        *ret = cur;
                        return true;
                }
                if (!dwarf_attr_integrate(&cur, DW_AT_type, &a) || !dwarf_formref_die(&a, &cur))
                        return false;   /* "const void" and the like */
        }
        return false;
}

static bool die_type(Dwarf_Die *d, Dwarf_Die *ret) {
        Dwarf_Attribute a;
        return dwarf_attr_integrate(d, DW_AT_type, &a) && dwarf_formref_die(&a, ret);
}

static char *type_name(Dwarf_Die *t, int depth) {
        Dwarf_Die sub;
        const char *n = dwarf_diename(t);
        char *s = NULL, *inner;
        int tag = dwarf_tag(t);

        if (depth > 8)
                return strdup("?");
        switch (tag) {
        case DW_TAG_pointer_type:
                inner = die_type(t, &sub) ? type_name(&sub, depth + 1) : strdup("void");
                if (inner && asprintf(&s, "%s *", inner) < 0)
                        s = NULL;
                free(inner);
                return s;
        case DW_TAG_const_type:
        case DW_TAG_volatile_type:
        case DW_TAG_atomic_type:
                inner = die_type(t, &sub) ? type_name(&sub, depth + 1) : strdup("void");
                if (inner && asprintf(&s, "%s %s", tag == DW_TAG_const_type ? "const" :
                                      tag == DW_TAG_volatile_type ? "volatile" : "_Atomic", inner) < 0)
                        s = NULL;
                free(inner);
                return s;
        case DW_TAG_array_type: {
                Dwarf_Word size = 0, esize = 0;
                Dwarf_Die el;
                inner = die_type(t, &sub) ? type_name(&sub, depth + 1) : strdup("?");
                if (dwarf_aggregate_size(t, &size) == 0 && die_type(t, &el) && dwarf_aggregate_size(&el, &esize) == 0 && esize)
                        size /= esize;
                if (inner && asprintf(&s, "%s[%" PRIu64 "]", inner, (uint64_t) size) < 0)
                        s = NULL;
                free(inner);
                return s;
        }
        case DW_TAG_structure_type:
        case DW_TAG_class_type:
        case DW_TAG_union_type:
        case DW_TAG_enumeration_type:
                if (asprintf(&s, "%s %s", tag == DW_TAG_union_type ? "union" : tag == DW_TAG_enumeration_type ? "enum" : "struct",
                             n ? n : "<anonymous>") < 0)
                        s = NULL;
                return s;
        default:
                return strdup(n ? n : "?");
        }
}

struct layout_ctx {
        struct diag_struct_layout *l;
        size_t alloc;
        const uint8_t *buf;
        size_t len;
};

static uint64_t rd_le(const uint8_t *p, size_t size) {
        uint64_t v = 0;
        memcpy(&v, p, MIN(size, sizeof v));
        return v;
}

static char *format_base(Dwarf_Die *bt, const uint8_t *p, uint64_t size) {
        Dwarf_Word enc = 0;
        Dwarf_Attribute a;
        uint64_t v = rd_le(p, size);
        char *s = NULL;

        if (dwarf_attr(bt, DW_AT_encoding, &a))
                dwarf_formudata(&a, &enc);
        if (size > 8)
                return NULL;
        switch (enc) {
        case DW_ATE_float:
                if (size == 4) {
                        float f;
                        memcpy(&f, p, 4);
                        return asprintf(&s, "%g", (double) f) < 0 ? NULL : s;
                }
                if (size == 8) {
                        double d;
                        memcpy(&d, p, 8);
                        return asprintf(&s, "%g", d) < 0 ? NULL : s;
                }
                break;
        case DW_ATE_boolean:
                return strdup(v ? "true" : "false");
        case DW_ATE_signed:
        case DW_ATE_signed_char: {
                int64_t sv = size < 8 && (v >> (size * 8 - 1)) & 1 ? (int64_t) (v | (~0ULL << (size * 8))) : (int64_t) v;
                return asprintf(&s, "%" PRId64, sv) < 0 ? NULL : s;
        }
        default:
                break;
        }
        return asprintf(&s, "%" PRIu64, v) < 0 ? NULL : s;
}

static char *format_chars(const uint8_t *p, uint64_t n) {
        char *s = malloc(n * 4 + 3), *o = s;

        if (!s)
                return NULL;
        *o++ = '"';
        for (uint64_t i = 0; i < n && p[i]; i++) {
                if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
                        *o++ = (char) p[i];
                else
                        o += sprintf(o, "\\x%02x", p[i]);
        }
        *o++ = '"';
        *o = 0;
        return s;
}

static char *format_hex(const uint8_t *p, uint64_t n) {
        uint64_t k = MIN(n, 32);
        char *s = malloc(k * 2 + 8), *o = s;

        if (!s)
                return NULL;
        for (uint64_t i = 0; i < k; i++)
                o += sprintf(o, "%02x", p[i]);
        if (k < n)
                strcpy(o, "...");
        return s;
}

static char *format_enum(Dwarf_Die *et, const uint8_t *p, uint64_t size) {
        Dwarf_Die e;
        uint64_t v = rd_le(p, size);
        char *s = NULL;

        if (dwarf_child(et, &e) == 0)
                do {
                        Dwarf_Attribute a;
                        Dwarf_Word ev;
                        if (dwarf_tag(&e) == DW_TAG_enumerator && dwarf_attr(&e, DW_AT_const_value, &a) &&
                            dwarf_formudata(&a, &ev) == 0 && ev == v)
                                return asprintf(&s, "%s (%" PRIu64 ")", dwarf_diename(&e) ?: "?", v) < 0 ? NULL : s;
                } while (dwarf_siblingof(&e, &e) == 0);
        return asprintf(&s, "%" PRIu64, v) < 0 ? NULL : s;
}

static int add_field(struct layout_ctx *x, const char *name, Dwarf_Die *type, uint64_t off, uint64_t size) {
        struct diag_struct_field *f;
        Dwarf_Die pt;

        if (DIAG_GROW(x->l->fields, x->alloc, x->l->n + 1) < 0)
                return -ENOMEM;
        f = &x->l->fields[x->l->n++];
        f->name = strdup(name);
        f->type = type_name(type, 0);
        f->offset = off;
        f->size = size;
        if (!f->name || !f->type)
                return -ENOMEM;
        if (off > x->len || size > x->len - off || !peel(type, &pt))
                return 0;
        switch (dwarf_tag(&pt)) {
        case DW_TAG_base_type:
                f->value = format_base(&pt, x->buf + off, size);
                break;
        case DW_TAG_pointer_type:
        case DW_TAG_reference_type:
                if (asprintf(&f->value, "0x%" PRIx64, rd_le(x->buf + off, size)) < 0)
                        f->value = NULL;
                break;
        case DW_TAG_enumeration_type:
                f->value = format_enum(&pt, x->buf + off, size);
                break;
        case DW_TAG_array_type: {
                Dwarf_Die el, pel;
                Dwarf_Word esize = 0;
                if (die_type(&pt, &el) && peel(&el, &pel) && dwarf_tag(&pel) == DW_TAG_base_type &&
                    dwarf_aggregate_size(&pel, &esize) == 0 && esize == 1)
                        f->value = format_chars(x->buf + off, size);
                else
                        f->value = format_hex(x->buf + off, size);
                break;
        }
        default:
                f->value = format_hex(x->buf + off, size);
        }
        return 0;
}

static int lay_members(struct layout_ctx *x, Dwarf_Die *agg, const char *prefix, uint64_t base, int depth) {
        Dwarf_Die m;
        int r;

        if (depth > 8 || dwarf_child(agg, &m) != 0)
                return 0;
        do {
                Dwarf_Attribute a;
                Dwarf_Word off = 0, size = 0;
                Dwarf_Die type, pt;
                const char *mn;
                _cleanup_free_ char *name = NULL;

                if (dwarf_tag(&m) != DW_TAG_member && dwarf_tag(&m) != DW_TAG_inheritance)
                        continue;
                if (dwarf_hasattr(&m, DW_AT_external) || !die_type(&m, &type))
                        continue;       /* static members have no place in the object */
                if (dwarf_attr_integrate(&m, DW_AT_data_member_location, &a) && dwarf_formudata(&a, &off) != 0) {
                        Dwarf_Op *ops;
                        size_t nops;
                        if (dwarf_getlocation(&a, &ops, &nops) == 0 && nops == 1 && ops[0].atom == DW_OP_plus_uconst)
                                off = ops[0].number;
                }
                mn = dwarf_diename(&m);
                if (dwarf_tag(&m) == DW_TAG_inheritance)
                        mn = NULL;
                if (asprintf(&name, "%s%s%s", prefix, *prefix && mn ? "." : "", mn ? mn : "") < 0) {
                        name = NULL;
                        return -ENOMEM;
                }
                if (!peel(&type, &pt))
                        continue;
                if (is_aggregate_tag(dwarf_tag(&pt))) {
                        r = lay_members(x, &pt, name, base + off, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (dwarf_aggregate_size(&type, &size) != 0)
                        continue;
                if (dwarf_hasattr(&m, DW_AT_bit_size))
                        continue;       /* bit fields: not worth a wrong value */
                r = add_field(x, name, &type, base + off, size);
                if (r < 0)
                        return r;
        } while (dwarf_siblingof(&m, &m) == 0);
        return 0;
}

static const Dwfl_Callbacks layout_callbacks = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .section_address = dwfl_offline_section_address,
};

int diag_struct_layout(const char *binary, const char *type, const void *buf, size_t len,
                       struct diag_struct_layout **ret) {
        struct layout_ctx x = { .buf = buf, .len = len };
        Dwfl *dwfl = dwfl_begin(&layout_callbacks);
        Dwfl_Module *mod;
        Dwarf *dw;
        Dwarf_Addr bias;
        Dwarf_Off off = 0, next;
        size_t hsize;
        Dwarf_Die found, agg;
        bool have = false;
        Dwarf_Word size = 0;
        int r = 0;

        if (!dwfl)
                return -ENOMEM;
        mod = dwfl_report_offline(dwfl, binary, binary, -1);
        dwfl_report_end(dwfl, NULL, NULL);
        if (!mod) {
                dwfl_end(dwfl);
                return access(binary, R_OK) < 0 ? negative_errno() : -ENOEXEC;
        }
        dw = dwfl_module_getdwarf(mod, &bias);
        if (!dw) {
                dwfl_end(dwfl);
                return -ENODATA;
        }
        while (!have && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
                Dwarf_Die cu;
                if (dwarf_offdie(dw, off + hsize, &cu))
                        have = find_type(&cu, type, &found, 0);
                off = next;
        }
        if (!have || !peel(&found, &agg) || !is_aggregate_tag(dwarf_tag(&agg))) {
                dwfl_end(dwfl);
                return -ENOENT;
        }
        x.l = calloc(1, sizeof *x.l);
        if (!x.l || !(x.l->name = type_name(&agg, 0))) {
                r = -ENOMEM;
                goto out;
        }
        if (dwarf_aggregate_size(&agg, &size) == 0)
                x.l->size = size;
        r = lay_members(&x, &agg, "", 0, 0);
out:
        dwfl_end(dwfl);
        if (r < 0) {
                diag_struct_layout_free(x.l);
                return r;
        }
        *ret = x.l;
        return 0;
}
