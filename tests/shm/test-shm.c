/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the shared-memory decoders: MurmurHash3 against published
 * vectors, libatbus headers built by hand (and broken one field at a time), the
 * block walk on rings laid out here, /proc text parsers, DWARF struct layout. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/shm.h"
#include "../unit/tap.h"

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* A channel header the way channel_mem.cpp's mem_init writes one. */
static uint8_t *make_channel(size_t len, uint64_t *ret_nodes) {
        uint8_t *b = calloc(1, len);
        uint64_t n = (len - 4096) / 272;

        memcpy(b, "ATBUSMEM", 8);
        put16(b + 16, 2);
        put16(b + 18, 16);
        put16(b + 20, 8);
        put64(b + 24, 256);
        put64(b + 32, 8);
        put64(b + 40, n);
        put64(b + 80, n >> 7);
        put64(b + 88, (n >> 7) * 256);
        put64(b + 96, 4);
        put64(b + 104, 4);
        put64(b + 120, 0);
        put64(b + 128, 4096);
        put64(b + 136, 4096 + n * 16);
        put64(b + 144, 4096 + n * 16 + n * 256);
        *ret_nodes = n;
        return b;
}

static uint8_t *head_of(uint8_t *b, uint64_t i) { return b + 4096 + i * 16; }
static uint8_t *data_of(uint8_t *b, uint64_t n, uint64_t i) { return b + 4096 + n * 16 + i * 256; }

/* Write one block at index i (payload byte k = fill + k), as mem_send does. */
static uint64_t put_block(uint8_t *b, uint64_t n, uint64_t i, uint32_t seq, size_t len, uint8_t fill) {
        uint64_t need = (len + 16 + 255) / 256;
        uint8_t *payload = malloc(len);
        uint8_t *dst = data_of(b, n, i) + 16;
        size_t avail = (size_t) (data_of(b, n, n) - dst);

        for (size_t k = 0; k < len; k++)
                payload[k] = (uint8_t) (fill + k);
        put32(head_of(b, i), 3);
        put32(head_of(b, i) + 4, seq);
        for (uint64_t k = 1; k < need; k++) {
                put32(head_of(b, (i + k) % n), 1);
                put32(head_of(b, (i + k) % n) + 4, seq);
        }
        put64(data_of(b, n, i), len);
        if (len <= avail)
                memcpy(dst, payload, len);
        else {
                memcpy(dst, payload, avail);
                memcpy(data_of(b, n, 0), payload + avail, len - avail);
        }
        put64(data_of(b, n, i) + 8, diag_murmur3_x86_32(payload, len, 0));
        free(payload);
        return (i + need) % n;
}

static void test_murmur(void) {
        static const uint8_t zeros[4];
        char big[1000];
        uint32_t one = diag_murmur3_x86_32(NULL, 0, 0);

        CHECK_INT(one, 0);
        CHECK_INT(diag_murmur3_x86_32("", 0, 1), 0x514E28B7u);
        CHECK_INT(diag_murmur3_x86_32("", 0, 0xffffffffu), 0x81F16F39u);
        CHECK_INT(diag_murmur3_x86_32(zeros, 4, 0), 0x2362F9DEu);
        CHECK_INT(diag_murmur3_x86_32("aaaa", 4, 0x9747b28cu), 0x5A97808Au);
        CHECK_INT(diag_murmur3_x86_32("Hello, world!", 13, 0x9747b28cu), 0x24884CBAu);
        CHECK_INT(diag_murmur3_x86_32("The quick brown fox jumps over the lazy dog", 43, 0x9747b28cu), 0x2FA826CDu);
        for (size_t i = 0; i < sizeof big; i++)
                big[i] = (char) (i * 7);
        /* the same hash whatever the tail length */
        CHECK(diag_murmur3_x86_32(big, 999, 0) != diag_murmur3_x86_32(big, 998, 0));
}

static int parse(uint8_t *b, size_t len, char *err) {
        struct diag_atbus c;
        return diag_atbus_parse(b, len, &c, err, 256);
}

static void test_header(void) {
        size_t len = 1 << 20;
        uint64_t n;
        uint8_t *b = make_channel(len, &n);
        struct diag_atbus c;
        char err[256];

        CHECK_INT(diag_atbus_parse(b, len, &c, err, sizeof err), 0);
        CHECK_STR(c.layout, "aligned");
        CHECK_INT(c.node_count, 3840);
        CHECK_INT(c.protect_node_count, 30);
        CHECK_INT(c.used_nodes, 0);
        CHECK_INT(c.free_nodes, 3839);
        CHECK_INT(c.writable_nodes, 3809);
        CHECK_STR(diag_shm_detect(b, len), "libatbus");

        /* every field broken on its own gives its own line, never a crash */
        put64(b + 40, 9000000000000000000ULL);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "node count 9e18 exceeds segment") != NULL);
        put64(b + 40, n + 1);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "node count 3841 exceeds segment (at most 3840 nodes") != NULL);
        put64(b + 40, n);
        put16(b + 16, 3);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "channel version 3") != NULL);
        put16(b + 16, 2);
        put16(b + 20, 4);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "host size 4") != NULL);
        put16(b + 20, 8);
        put64(b + 32, 7);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "bin power 7") != NULL);
        put64(b + 32, 8);
        put64(b + 24, 300);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "node size 300 is not a power of two") != NULL);
        put64(b + 24, 256);
        put64(b + 136, 4096);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "data area offset 4096") != NULL);
        put64(b + 136, 4096 + n * 16);
        put64(b + 48, n);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "read cursor 3840 outside") != NULL);
        put64(b + 48, 0);
        put64(b + 56, UINT64_MAX);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "write cursor 1e19 outside") != NULL);
        put64(b + 56, 0);
        put64(b + 128, UINT64_MAX - 100);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        put64(b + 128, 4096);
        put64(b + 80, n);
        CHECK_INT(parse(b, len, err), -EBADMSG);
        CHECK(strstr(err, "protect node count") != NULL);
        put64(b + 80, 30);
        CHECK_INT(parse(b, len, err), 0);
        /* a truncated copy: the header still says the whole size */
        CHECK_INT(parse(b, len / 2, err), -EBADMSG);
        CHECK(strstr(err, "exceeds segment") != NULL);
        CHECK_INT(parse(b, 100, err), -ENOMSG);
        CHECK(strstr(err, "100 bytes: too short for a channel header (at least 210 bytes)") != NULL);
        CHECK_INT(parse(b, 8, err), -ENOMSG);          /* the magic alone: too short, not "no magic" */
        CHECK(strstr(err, "8 bytes: too short") != NULL);
        CHECK_INT(parse((uint8_t *) "ATBU", 4, err), -ENOMSG);
        CHECK(strstr(err, "4 bytes: too short") != NULL);
        CHECK_INT(parse((uint8_t *) "XTBUSMEM", 8, err), -ENOMSG);
        CHECK(strstr(err, "no ATBUSMEM magic") != NULL);
        /* the header alone, judged against the whole size: base NULL until the
         * bytes it claims are there */
        CHECK_INT(diag_atbus_parse_header(b, 4096, len, &c, err, sizeof err), 0);
        CHECK(c.base == NULL);
        CHECK_INT(c.node_count, 3840);
        CHECK(c.area_end_offset <= len);
        CHECK_INT(diag_atbus_parse_header(b, (size_t) c.area_end_offset, len, &c, err, sizeof err), 0);
        CHECK(c.base == b);
        CHECK_INT(diag_atbus_parse_header(b, 4096, len / 2, &c, err, sizeof err), -EBADMSG);
        CHECK(strstr(err, "exceeds segment") != NULL);
        memcpy(b, "atbusmem", 8);      /* the library compares case-insensitively */
        CHECK_INT(parse(b, len, err), 0);
        memcpy(b, "ATBUSMEX", 8);
        CHECK_INT(parse(b, len, err), -ENOMSG);
        CHECK(diag_shm_detect(b, len) == NULL);
        free(b);
}

/* The header of builds with __attribute__((packed)), align size 8: the same
 * fields 2 bytes after the host size, and 8-byte node heads. */
static void test_packed(void) {
        size_t len = 1 << 20;
        uint64_t n = (len - 4096) / (256 + 8);
        uint8_t *b = calloc(1, len);
        struct diag_atbus c;
        struct diag_atbus_check k;
        struct diag_atbus_node nd;
        uint8_t payload[300];
        char err[256];

        memcpy(b, "ATBUSMEM", 8);
        put16(b + 16, 2);
        put16(b + 18, 8);
        put16(b + 20, 8);
        put64(b + 22, 256);
        put64(b + 30, 8);
        put64(b + 38, n);
        put64(b + 46, 10);              /* read */
        put64(b + 54, 12);              /* write */
        put32(b + 70, 77);              /* operation seq */
        put64(b + 74, 3);               /* protect nodes */
        put64(b + 82, 768);
        put64(b + 122, 4096);
        put64(b + 130, 4096 + n * 8);
        put64(b + 138, 4096 + n * 8 + n * 256);
        put64(b + 146 + 7 * 8, 5);      /* read_check_hash_failed */
        /* one block of 2 nodes at 10: heads 8 bytes apart */
        put32(b + 4096 + 10 * 8, 3);
        put32(b + 4096 + 10 * 8 + 4, 77);
        put32(b + 4096 + 11 * 8, 1);
        put32(b + 4096 + 11 * 8 + 4, 77);
        for (size_t i = 0; i < sizeof payload; i++)
                payload[i] = (uint8_t) i;
        put64(b + 4096 + n * 8 + 10 * 256, sizeof payload);
        put64(b + 4096 + n * 8 + 10 * 256 + 8, diag_murmur3_x86_32(payload, sizeof payload, 0));
        memcpy(b + 4096 + n * 8 + 10 * 256 + 16, payload, sizeof payload);
        CHECK_INT(diag_atbus_parse(b, len, &c, err, sizeof err), 0);
        CHECK_STR(c.layout, "packed");
        CHECK_INT(c.node_count, n);
        CHECK_INT(c.node_head_size, 8);
        CHECK_INT(c.block_head_size, 16);
        CHECK_INT(c.read_cur, 10);
        CHECK_INT(c.write_cur, 12);
        CHECK_INT(c.operation_seq, 77);
        CHECK_INT(c.protect_node_count, 3);
        CHECK_INT(c.read_check_hash_failed, 5);
        diag_atbus_node(&c, 11, &nd);
        CHECK_INT(nd.seq, 77);
        CHECK_INT(diag_atbus_check(&c, true, 4, &k), 0);
        CHECK_INT(k.good_blocks, 1);
        CHECK_INT(k.bytes, sizeof payload);
        CHECK_INT(k.nanomalies, 0);
        diag_atbus_check_clear(&k);
        /* a corrupt packed header is reported with the packed fields */
        put64(b + 38, UINT64_MAX / 3);
        CHECK_INT(diag_atbus_parse(b, len, &c, err, sizeof err), -EBADMSG);
        CHECK(strstr(err, "node count 6e18 exceeds segment (at most 3956 nodes of 264 bytes") != NULL);
        free(b);
}

static void test_walk(void) {
        size_t len = 64 * 1024;
        uint64_t n, w;
        uint8_t *b = make_channel(len, &n);
        struct diag_atbus c;
        struct diag_atbus_check k;
        char err[256];
        uint64_t blocks, bytes;

        /* three blocks, the middle one across the end of the ring (payload wraps) */
        CHECK_INT(n, 225);
        put64(b + 48, 220);
        w = put_block(b, n, 220, 7, 300, 1);            /* 2 nodes: 220, 221 */
        w = put_block(b, n, w, 8, 3 * 256 + 40, 2);     /* 4 nodes: 222..224, 0 */
        w = put_block(b, n, w, 9, 10, 3);               /* 1 node: 1 */
        put64(b + 56, w);
        CHECK_INT(w, 2);
        CHECK_INT(diag_atbus_parse(b, len, &c, err, sizeof err), 0);
        CHECK_INT(c.used_nodes, 7);
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK_INT(k.blocks, 3);
        CHECK_INT(k.good_blocks, 3);
        CHECK_INT(k.bytes, 300 + 808 + 10);
        CHECK_INT(k.nanomalies, 0);
        CHECK_INT(k.first_seq, 7);
        CHECK_INT(k.last_seq, 9);
        diag_atbus_check_clear(&k);
        diag_atbus_count_blocks(&c, 220, 2, &blocks, &bytes);
        CHECK_INT(blocks, 3);
        CHECK_INT(bytes, 1118);

        /* a bad byte in the wrapped part of the payload */
        data_of(b, n, 0)[5] ^= 1;
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK_INT(k.nanomalies, 1);
        CHECK_INT(k.anomalies[0].kind, DIAG_ATBUS_BAD_HASH);
        CHECK_INT(k.anomalies[0].node, 222);
        diag_atbus_check_clear(&k);
        CHECK_INT(diag_atbus_check(&c, false, 10, &k), 0);
        CHECK_INT(k.nanomalies, 0);
        diag_atbus_check_clear(&k);
        data_of(b, n, 0)[5] ^= 1;

        /* node 224 carries an older block's start: overwritten */
        put32(head_of(b, 224), 3);
        put32(head_of(b, 224) + 4, 5);
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK(k.nanomalies >= 1);
        CHECK_INT(k.anomalies[0].kind, DIAG_ATBUS_OVERWRITTEN);
        CHECK_INT(k.anomalies[0].node, 224);
        CHECK_STR(k.anomalies[0].text, "node 224: block seq 5 inside block 222 seq 8 — overwritten");
        diag_atbus_check_clear(&k);
        put32(head_of(b, 224), 1);
        put32(head_of(b, 224) + 4, 8);

        /* the last block's start never marked written */
        put32(head_of(b, 1), 2);
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK_INT(k.nanomalies, 1);
        CHECK_INT(k.anomalies[0].kind, DIAG_ATBUS_UNWRITTEN);
        diag_atbus_check_clear(&k);
        put32(head_of(b, 1), 3);

        /* a size that needs more nodes than carry the seq, and one past the cursor */
        put64(data_of(b, n, 220), 600);
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK(k.nanomalies >= 1);
        CHECK_INT(k.anomalies[0].kind, DIAG_ATBUS_OVERWRITTEN);
        diag_atbus_check_clear(&k);
        put64(data_of(b, n, 220), 100);
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK_INT(k.anomalies[0].kind, DIAG_ATBUS_NODE_COUNT);
        diag_atbus_check_clear(&k);
        put64(data_of(b, n, 220), 0);
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK_INT(k.anomalies[0].kind, DIAG_ATBUS_BAD_SIZE);
        diag_atbus_check_clear(&k);
        put64(data_of(b, n, 220), 300);
        put64(data_of(b, n, 1), 300);
        CHECK_INT(diag_atbus_check(&c, true, 10, &k), 0);
        CHECK_INT(k.anomalies[0].kind, DIAG_ATBUS_PAST_WRITE);
        diag_atbus_check_clear(&k);
        /* max_report caps what is kept, not what is counted */
        memset(b + 4096, 0, n * 16);
        CHECK_INT(diag_atbus_check(&c, true, 0, &k), 0);
        CHECK_INT(k.nanomalies, 1);
        CHECK_INT(k.nreported, 0);
        diag_atbus_check_clear(&k);
        free(b);
}

static void test_proc_text(void) {
        static const char sysv[] =
                "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n"
                "     12345          7  1666               1048576   100   101      2     0     0     0     0 1700000000          0 1700000001                  8192                     0\n"
                "        -1         8   600                  4096   200   200      0  1000  1000  1000  1000          0          0 1700000002                     0                     0\n"
                "         0         9  1600                  4096   300   300      1     0     0     0     0          0          0 1700000003                     0                     0\n";
        struct diag_shm_seg *segs = NULL;
        size_t n = 0;
        struct diag_mqueue q;
        enum diag_shm_kind kind;
        int32_t key;

        CHECK_INT(diag_shm_parse_sysvipc(sysv, &segs, &n), 0);
        CHECK_INT(n, 3);
        if (n == 3) {
                CHECK_INT(segs[0].key, 12345);
                CHECK_INT(segs[0].shmid, 7);
                CHECK_INT(segs[0].mode, 01666);
                CHECK_INT(segs[0].size, 1048576);
                CHECK_INT(segs[0].cpid, 100);
                CHECK_INT(segs[0].lpid, 101);
                CHECK_INT(segs[0].nattch, 2);
                CHECK_INT(segs[0].atime, 1700000000);
                CHECK_INT(segs[0].rss, 8192);
                CHECK_STR(segs[0].name, "key:0x00003039");
                CHECK_INT(segs[1].key, -1);
                CHECK_STR(segs[1].name, "key:0xffffffff");
                CHECK_INT(segs[1].uid, 1000);
                CHECK_STR(segs[2].name, "id:9");        /* IPC_PRIVATE: key 0 names nothing */
                CHECK_INT(segs[2].mode, 01600);
        }
        for (size_t i = 0; i < n; i++)
                diag_shm_seg_clear(&segs[i]);
        n = 0;
        CHECK_INT(diag_shm_parse_sysvipc("garbage\n1 2 3\n", &segs, &n), -EBADMSG);
        CHECK_INT(diag_shm_parse_sysvipc("key shmid perms size\n1 2 x 4\n", &segs, &n), -EBADMSG);
        CHECK_INT(diag_shm_parse_sysvipc("key shmid perms size\n1 2 600\n", &segs, &n), -EBADMSG);
        CHECK_INT(diag_shm_parse_sysvipc("key shmid perms size\n", &segs, &n), 0);
        CHECK_INT(n, 0);
        for (size_t i = 0; i < n; i++)
                diag_shm_seg_clear(&segs[i]);
        free(segs);

        CHECK_INT(diag_mqueue_parse("QSIZE:129        NOTIFY:2     SIGNO:0     NOTIFY_PID:4242 \n", &q), 0);
        CHECK_INT(q.qsize, 129);
        CHECK_INT(q.notify, 2);
        CHECK_INT(q.notify_pid, 4242);
        CHECK_INT(diag_mqueue_parse("QSIZE:x NOTIFY:0 SIGNO:0 NOTIFY_PID:0", &q), -EBADMSG);
        CHECK_INT(diag_mqueue_parse("QSIZE:1", &q), -EBADMSG);

        CHECK(diag_shm_classify_map("/SYSV00003039 (deleted)", &kind, &key));
        CHECK_INT(kind, DIAG_SHM_SYSV);
        CHECK_INT(key, 0x3039);
        CHECK(diag_shm_classify_map("/SYSV00000000", &kind, &key));
        CHECK(!diag_shm_classify_map("/SYSV0000303 (deleted)", &kind, &key));
        CHECK(!diag_shm_classify_map("/SYSV000030390", &kind, &key));
        CHECK(diag_shm_classify_map("/dev/shm/bus", &kind, NULL) && kind == DIAG_SHM_POSIX);
        CHECK(diag_shm_classify_map("/memfd:ring (deleted)", &kind, NULL) && kind == DIAG_SHM_MEMFD);
        CHECK(diag_shm_classify_map("/dev/zero (deleted)", &kind, NULL) && kind == DIAG_SHM_ANON);
        CHECK(!diag_shm_classify_map("/usr/lib/libc.so.6", &kind, NULL));
        CHECK(!diag_shm_classify_map("", &kind, NULL));
}

/* laid out from this program's own DWARF */
struct test_shm_header {
        char magic[8];
        unsigned short version;
        struct { unsigned long long a, b; } pair;
        int signed_field;
        double ratio;
        void *ptr;
        enum test_color { RED = 1, GREEN = 2 } color;
};
struct test_shm_header test_shm_header_instance;

static void test_struct(const char *self) {
        struct test_shm_header h = { "HDR1", 3, { 10, 20 }, -5, 0.5, (void *) 0x1234, GREEN };
        struct diag_struct_layout *l = NULL;
        int r = diag_struct_layout(self, "test_shm_header", &h, sizeof h, &l);

        test_shm_header_instance = h;
        CHECK_INT(r, 0);
        if (r == 0) {
                CHECK_INT(l->size, sizeof h);
                CHECK_INT(l->n, 8);
                if (l->n == 8) {
                        CHECK_STR(l->fields[0].name, "magic");
                        CHECK_STR(l->fields[0].value, "\"HDR1\"");
                        CHECK_STR(l->fields[1].value, "3");
                        CHECK_STR(l->fields[2].name, "pair.a");
                        CHECK_INT(l->fields[3].offset, offsetof(struct test_shm_header, pair.b));
                        CHECK_STR(l->fields[3].value, "20");
                        CHECK_STR(l->fields[4].value, "-5");
                        CHECK_STR(l->fields[5].value, "0.5");
                        CHECK_STR(l->fields[6].name, "ptr");
                        CHECK_STR(l->fields[6].value, "0x1234");
                        CHECK_STR(l->fields[7].value, "GREEN (2)");
                        CHECK_STR(l->fields[7].type, "enum test_color");
                }
                diag_struct_layout_free(l);
        }
        /* a short buffer: fields past its end have no value */
        CHECK_INT(diag_struct_layout(self, "test_shm_header", &h, 12, &l), 0);
        if (l) {
                CHECK(l->fields[0].value != NULL);
                CHECK(l->fields[2].value == NULL);
                diag_struct_layout_free(l);
        }
        CHECK_INT(diag_struct_layout(self, "no_such_type_here", &h, sizeof h, &l), -ENOENT);
        CHECK(diag_struct_layout("/nonexistent/binary", "x", &h, sizeof h, &l) < 0);
}

int main(int argc, char **argv) {
        (void) argc;
        test_murmur();
        test_header();
        test_walk();
        test_packed();
        test_proc_text();
        test_struct(argv[0]);
        return TAP_DONE();
}
