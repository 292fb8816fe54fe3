/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shmwriter: writes channels in the layout of libatbus's mem/shm channel
 * (channel_mem.cpp, version 2) into a SysV segment, a POSIX segment, a memfd, an
 * anonymous shared mapping or a file, in a known state (empty, partly full,
 * wrapped, full, a writer crashed mid-block, an overwritten block, bad hashes,
 * corrupt headers), prints what it wrote, and stays attached until SIGTERM or
 * SIGINT; then removes the segment (unless --keep or --exit; --rmid removes a
 * SysV segment at once, so that it lives on only while attached).
 *
 *   SEGMENT kind=sysv key=0x00003039 id=5 size=1048576
 *   ATTACHED pid=123 role=writer
 *   CHANNEL nodes=3840 read=0 write=412 used=412 protect=30 seq=100
 *   BLOCKS count=100 bytes=93712 first_seq=1 last_seq=100
 *   ANOMALY kind=bad_hash node=57 block=57 seq=12
 *   READY
 *
 * --packed writes the header as builds with __attribute__((packed)) did; --align
 * sets the align size (16; 8 in old builds), which pads node and block heads.
 *
 * With --live a writer thread keeps sending (--rate messages/s) and, unless
 * --reader stop, a reader (a thread, or with --reader-proc a child process
 * attached to the same segment) keeps receiving.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/shm.h"

/* The header as the library lays it out on a 64-bit host; --struct reads it from
 * this program's DWARF. */
struct fixture_channel_conf {
        size_t protect_node_count;
        size_t protect_memory_size;
        uint64_t conf_send_timeout_ms;
        size_t write_retry_times;
        size_t receiver_identify;
};

struct fixture_channel_header {
        char node_magic[16];
        uint16_t channel_version;
        uint16_t channel_align_size;
        uint16_t channel_host_size;
        size_t node_size;
        size_t node_size_bin_power;
        size_t node_count;
        size_t read_cur;
        size_t write_cur;
        uint64_t first_failed_writing_time;
        uint32_t operation_seq;
        struct fixture_channel_conf conf;
        size_t area_channel_offset;
        size_t area_head_offset;
        size_t area_data_offset;
        size_t area_end_offset;
        size_t write_check_sequence_failed_count;
        size_t write_retry_count;
        size_t read_bad_node_count;
        size_t read_bad_block_count;
        size_t read_write_timeout_count;
        size_t read_check_block_size_failed_count;
        size_t read_check_node_size_failed_count;
        size_t read_check_hash_failed_count;
};
_Static_assert(sizeof(struct fixture_channel_header) == 216, "layout of a 64-bit host");

/* The same header as builds with ATBUS_MACRO_PACK_ATTR __attribute__((packed))
 * laid it out (--packed): written once the case is made. */
struct fixture_channel_header_packed {
        char node_magic[16];
        uint16_t channel_version, channel_align_size, channel_host_size;
        size_t node_size, node_size_bin_power, node_count, read_cur, write_cur;
        uint64_t first_failed_writing_time;
        uint32_t operation_seq;
        struct __attribute__((packed)) {
                size_t protect_node_count, protect_memory_size;
                uint64_t conf_send_timeout_ms;
                size_t write_retry_times, receiver_identify;
        } conf;
        size_t area_channel_offset, area_head_offset, area_data_offset, area_end_offset;
        size_t stats[8];
} __attribute__((packed));
_Static_assert(sizeof(struct fixture_channel_header_packed) == 210, "the packed layout");

enum { HEAD = 4096, NODE = 256, BIN = 8, WRITTEN = 1, START = 2 };
/* node head {flag, seq} and block head {size, hash}, each padded to the align size */
static size_t align_size = 16, NODE_HEAD = 16, BLOCK_HEAD = 16;

static struct fixture_channel_header *ch;
static uint8_t *base;
static size_t seg_len;

/* live blocks in ring order, for what the fixture prints */
struct blk { size_t index; uint32_t seq; size_t size; };
static struct blk *blocks;
static size_t nblocks, blocks_head, blocks_cap;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop;

static uint8_t *node_head(size_t i) { return base + ch->area_head_offset + i * NODE_HEAD; }
static uint8_t *node_data(size_t i) { return base + ch->area_data_offset + i * NODE; }
static void set_head(size_t i, uint32_t flag, uint32_t seq) {
        memcpy(node_head(i), &flag, 4);
        memcpy(node_head(i) + 4, &seq, 4);
}
static uint32_t head_flag(size_t i) { uint32_t v; memcpy(&v, node_head(i), 4); return v; }

static size_t rd_cur(void) { return __atomic_load_n(&ch->read_cur, __ATOMIC_ACQUIRE); }
static size_t wr_cur(void) { return __atomic_load_n(&ch->write_cur, __ATOMIC_ACQUIRE); }

static void channel_init(size_t len) {
        memset(base, 0, len);
        ch->node_size = NODE;
        ch->node_size_bin_power = BIN;
        ch->node_count = (len - HEAD) / (NODE + NODE_HEAD);
        ch->area_channel_offset = 0;
        ch->area_head_offset = HEAD;
        ch->area_data_offset = HEAD + ch->node_count * NODE_HEAD;
        ch->area_end_offset = ch->area_data_offset + ch->node_count * NODE;
        ch->conf.conf_send_timeout_ms = 4;
        ch->conf.write_retry_times = 4;
        ch->conf.protect_node_count = ch->node_count >> 7;
        if (ch->conf.protect_node_count > 16384 / NODE)
                ch->conf.protect_node_count = 16384 / NODE;
        ch->conf.protect_memory_size = ch->conf.protect_node_count * NODE;
        memcpy(ch->node_magic, "ATBUSMEM", 8);
        ch->channel_version = 2;
        ch->channel_align_size = (uint16_t) align_size;
        ch->channel_host_size = 8;
}

static size_t nodes_for(size_t len) { return (len + BLOCK_HEAD + NODE - 1) >> BIN; }

/* The payload of message seq: a pattern anyone can recompute. */
static void payload(uint32_t seq, uint8_t *p, size_t len) {
        uint32_t x = seq * 2654435761u + 1;
        for (size_t i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                p[i] = (uint8_t) x;
        }
}

static void copy_in(size_t index, const uint8_t *p, size_t len) {
        uint8_t *dst = node_data(index) + BLOCK_HEAD;
        size_t avail = (size_t) (base + ch->area_end_offset - dst);

        if (len <= avail)
                memcpy(dst, p, len);
        else {
                memcpy(dst, p, avail);
                memcpy(node_data(0), p + avail, len - avail);
        }
}

/* mem_send: crash_after_nodes > 0 stops like a writer killed while copying: the
 * start node is never marked written and only that many nodes got their head. */
static int channel_send(size_t len, size_t crash_after_nodes, uint32_t *ret_seq, size_t *ret_index) {
        size_t n = ch->node_count, need = nodes_for(len), r, w, avail, nw;
        uint32_t seq;
        uint64_t hash;
        uint8_t *buf;

        if (need >= n - ch->conf.protect_node_count)
                return -ENOSPC;
        seq = __atomic_add_fetch(&ch->operation_seq, 1, __ATOMIC_SEQ_CST);
        while (!seq)
                seq = __atomic_add_fetch(&ch->operation_seq, 1, __ATOMIC_SEQ_CST);
        r = rd_cur();
        w = wr_cur();
        avail = (r + n - w - 1) % n;
        avail = avail >= ch->conf.protect_node_count ? avail - ch->conf.protect_node_count : 0;
        if (need > avail)
                return -ENOSPC;
        nw = (w + need) % n;
        __atomic_store_n(&ch->write_cur, nw, __ATOMIC_RELEASE);
        memset(node_data(w), 0, BLOCK_HEAD);
        set_head(w, START, seq);
        for (size_t k = 1, i = (w + 1) % n; i != nw; k++, i = (i + 1) % n) {
                if (crash_after_nodes && k >= crash_after_nodes)
                        break;
                set_head(i, WRITTEN, seq);
        }
        memcpy(node_data(w), &len, 8);
        buf = malloc(len);
        payload(seq, buf, len);
        copy_in(w, buf, len);
        hash = diag_murmur3_x86_32(buf, len, 0);
        free(buf);
        if (crash_after_nodes)
                return 0;
        memcpy(node_data(w) + 8, &hash, 8);
        __atomic_thread_fence(__ATOMIC_ACQ_REL);
        set_head(w, START | WRITTEN, seq);
        pthread_mutex_lock(&lock);
        if (nblocks == blocks_cap) {
                struct blk *nb = malloc((blocks_cap ? blocks_cap * 2 : 1024) * sizeof *nb);
                for (size_t k = 0; k < nblocks; k++)
                        nb[k] = blocks[(blocks_head + k) % (blocks_cap ? blocks_cap : 1)];
                free(blocks);
                blocks = nb;
                blocks_head = 0;
                blocks_cap = blocks_cap ? blocks_cap * 2 : 1024;
        }
        blocks[(blocks_head + nblocks) % blocks_cap] = (struct blk) { w, seq, len };
        nblocks++;
        pthread_mutex_unlock(&lock);
        if (ret_seq)
                *ret_seq = seq;
        if (ret_index)
                *ret_index = w;
        return 0;
}

/* mem_recv on well-formed data: the block at the read cursor, flags cleared. */
static int channel_recv(void) {
        size_t n = ch->node_count, r = rd_cur(), len, need;

        if (r == wr_cur() || !(head_flag(r) & WRITTEN))
                return -EAGAIN;
        memcpy(&len, node_data(r), 8);
        need = nodes_for(len);
        /* the library clears the flags and leaves operation_seq */
        for (size_t k = 0; k < need; k++) {
                uint32_t zero = 0;
                memcpy(node_head((r + k) % n), &zero, 4);
        }
        __atomic_store_n(&ch->read_cur, (r + need) % n, __ATOMIC_RELEASE);
        pthread_mutex_lock(&lock);
        if (nblocks) {
                blocks_head = (blocks_head + 1) % blocks_cap;
                nblocks--;
        }
        pthread_mutex_unlock(&lock);
        return 0;
}

static uint32_t rng = 12345;
static size_t rnd(size_t lo, size_t hi) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        return lo + rng % (hi - lo + 1);
}

static size_t used(void) { return (wr_cur() + ch->node_count - rd_cur()) % ch->node_count; }

static void fill_until(double frac, size_t lo, size_t hi) {
        while ((double) used() < frac * (double) ch->node_count && channel_send(rnd(lo, hi), 0, NULL, NULL) == 0)
                ;
}

static void drain_until(double frac) {
        while ((double) used() > frac * (double) ch->node_count && channel_recv() == 0)
                ;
}

static struct blk block_at(size_t k) { return blocks[(blocks_head + k) % blocks_cap]; }

static void print_anomaly(const char *kind, size_t node, size_t block, uint32_t seq, uint32_t block_seq) {
        printf("ANOMALY kind=%s node=%zu block=%zu seq=%u block_seq=%u\n", kind, node, block, seq, block_seq);
}

/* Remove block k from the list of good blocks the fixture reports. */
static void forget_block(size_t k) {
        for (size_t j = k; j + 1 < nblocks; j++)
                blocks[(blocks_head + j) % blocks_cap] = blocks[(blocks_head + j + 1) % blocks_cap];
        nblocks--;
}

static int make_case(const char *c, size_t msgs, size_t lo, size_t hi, uint32_t seq_start) {
        channel_init(seg_len);
        ch->operation_seq = seq_start;
        if (strcmp(c, "empty") == 0)
                return 0;
        if (strcmp(c, "partial") == 0) {
                for (size_t i = 0; i < msgs; i++)
                        if (channel_send(rnd(lo, hi), 0, NULL, NULL) < 0)
                                break;
                return 0;
        }
        if (strcmp(c, "wrapped") == 0) {
                /* until the live range runs across the end of the ring */
                for (int round = 0; round < 1000; round++) {
                        fill_until(0.6, lo, hi);
                        drain_until(0.2);
                        if (wr_cur() < rd_cur() && used() > 0 && round >= 2)
                                return 0;
                }
                return -1;
        }
        if (strcmp(c, "full") == 0) {
                /* a wrapped ring, then as many messages as fit, then single nodes */
                fill_until(0.5, lo, hi);
                drain_until(0.3);
                while (channel_send(rnd(lo, hi), 0, NULL, NULL) == 0)
                        ;
                while (channel_send(1, 0, NULL, NULL) == 0)
                        ;
                return 0;
        }
        if (strcmp(c, "crashed") == 0) {
                uint32_t seq;
                for (size_t i = 0; i < msgs; i++)
                        channel_send(rnd(lo, hi), 0, NULL, NULL);
                /* a writer killed after 2 nodes of a 5-node block: the seq is taken,
                 * the cursor moved, the start node never marked written */
                channel_send(4 * NODE + 10, 2, NULL, NULL);
                seq = ch->operation_seq;
                print_anomaly("unwritten", (wr_cur() + ch->node_count - 5) % ch->node_count,
                              (wr_cur() + ch->node_count - 5) % ch->node_count, seq, seq);
                return 0;
        }
        if (strcmp(c, "overwritten") == 0) {
                /* blocks of 4 nodes; in the middle one, nodes 2 and 3 carry an older
                 * block of 2 nodes (a stale start inside a newer block) */
                struct blk b;
                size_t k, at, stale_len = NODE + 10;
                uint32_t old;
                uint64_t h;
                uint8_t *buf;

                for (size_t i = 0; i < msgs; i++)
                        channel_send(3 * NODE + 100, 0, NULL, NULL);
                k = nblocks / 2;
                b = block_at(k);
                at = (b.index + 2) % ch->node_count;
                old = b.seq - 14353;
                set_head(at, START | WRITTEN, old);
                set_head((at + 1) % ch->node_count, WRITTEN, old);
                memcpy(node_data(at), &stale_len, 8);
                buf = malloc(stale_len);
                payload(old, buf, stale_len);
                copy_in(at, buf, stale_len);
                h = diag_murmur3_x86_32(buf, stale_len, 0);
                memcpy(node_data(at) + 8, &h, 8);
                free(buf);
                print_anomaly("overwritten", at, b.index, old, b.seq);
                /* the stale block itself is whole: it counts as a block */
                blocks[(blocks_head + k) % blocks_cap] = (struct blk) { at, old, stale_len };
                return 0;
        }
        if (strcmp(c, "badhash") == 0) {
                size_t bad[2];
                for (size_t i = 0; i < msgs; i++)
                        channel_send(rnd(lo, hi), 0, NULL, NULL);
                if (nblocks < 10)
                        return -1;
                bad[0] = 3;
                bad[1] = 7;
                for (int j = 1; j >= 0; j--) {
                        struct blk b = block_at(bad[j]);
                        node_data(b.index)[BLOCK_HEAD] ^= 0x5a;
                        print_anomaly("bad_hash", b.index, b.index, b.seq, b.seq);
                        forget_block(bad[j]);
                }
                return 0;
        }
        if (strcmp(c, "bad-nodecount") == 0) {
                ch->node_count = 9000000000000000000ULL;
                return 0;
        }
        if (strcmp(c, "bad-magic") == 0) {
                memcpy(ch->node_magic, "NOTATBUS", 8);
                return 0;
        }
        if (strcmp(c, "bad-version") == 0) {
                ch->channel_version = 3;
                return 0;
        }
        if (strcmp(c, "bad-cursor") == 0) {
                ch->read_cur = ch->node_count + 7;
                return 0;
        }
        return -1;
}

/* ---- live mode ---- */

static double rate = 1000;
static size_t live_lo = 50, live_hi = 400;

static void sleep_ns(long ns) {
        struct timespec ts = { ns / 1000000000L, ns % 1000000000L };
        nanosleep(&ts, NULL);
}

static void *writer_thread(void *unused) {
        long gap = (long) (1e9 / rate);
        (void) unused;
        while (!stop) {
                channel_send(rnd(live_lo, live_hi), 0, NULL, NULL);
                sleep_ns(gap);
        }
        return NULL;
}

static void *reader_thread(void *unused) {
        (void) unused;
        while (!stop)
                if (channel_recv() < 0)
                        sleep_ns(200000);
        return NULL;
}

static void on_term(int sig) {
        (void) sig;
        stop = 1;
}

static void write_packed(void) {
        struct fixture_channel_header h = *ch;
        struct fixture_channel_header_packed pk;

        memset(&pk, 0, sizeof pk);
        memcpy(pk.node_magic, h.node_magic, sizeof pk.node_magic);
        pk.channel_version = h.channel_version;
        pk.channel_align_size = h.channel_align_size;
        pk.channel_host_size = h.channel_host_size;
        pk.node_size = h.node_size;
        pk.node_size_bin_power = h.node_size_bin_power;
        pk.node_count = h.node_count;
        pk.read_cur = h.read_cur;
        pk.write_cur = h.write_cur;
        pk.first_failed_writing_time = h.first_failed_writing_time;
        pk.operation_seq = h.operation_seq;
        pk.conf.protect_node_count = h.conf.protect_node_count;
        pk.conf.protect_memory_size = h.conf.protect_memory_size;
        pk.conf.conf_send_timeout_ms = h.conf.conf_send_timeout_ms;
        pk.conf.write_retry_times = h.conf.write_retry_times;
        pk.conf.receiver_identify = h.conf.receiver_identify;
        pk.area_channel_offset = h.area_channel_offset;
        pk.area_head_offset = h.area_head_offset;
        pk.area_data_offset = h.area_data_offset;
        pk.area_end_offset = h.area_end_offset;
        memcpy(pk.stats, &h.write_check_sequence_failed_count, sizeof pk.stats);
        memset(base, 0, sizeof h);
        memcpy(base, &pk, sizeof pk);
}

static void remove_segment(const char *kind, const char *where, int shmid) {
        if (shmid >= 0)
                shmctl(shmid, IPC_RMID, NULL);
        if (!strcmp(kind, "posix"))
                shm_unlink(where);
        if (!strcmp(kind, "file"))
                unlink(where);
}

static void usage(void) {
        fprintf(stderr, "usage: shmwriter (--sysv KEY | --posix NAME | --file PATH | --memfd NAME | --anon) [--size N]\n"
                        "       [--case C] [--msgs N] [--min N] [--max N] [--seed N] [--live [--rate R] [--reader run|stop]]\n"
                        "       [--reader-proc] [--keep | --exit] [--rmid] [--seq-start N] [--packed] [--align N]\n");
        exit(2);
}

int main(int argc, char **argv) {
        const char *kind = NULL, *where = NULL, *cs = "partial", *reader = "run";
        size_t size = 1 << 20, msgs = 100, lo = 1, hi = 2000;
        uint32_t seq_start = 0;
        bool rmid = false, packed = false;
        bool live = false, keep = false, exit_now = false, reader_proc = false;
        int shmid = -1, fd = -1;
        key_t key = 0;
        pthread_t wt, rt;
        pid_t child = 0;
        sigset_t sigs;
        int sig;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG() ({ if (!v) usage(); i++; v; })
                if (!strcmp(a, "--sysv")) kind = "sysv", key = (key_t) strtoll(ARG(), NULL, 0);
                else if (!strcmp(a, "--posix")) kind = "posix", where = ARG();
                else if (!strcmp(a, "--file")) kind = "file", where = ARG();
                else if (!strcmp(a, "--memfd")) kind = "memfd", where = ARG();
                else if (!strcmp(a, "--anon")) kind = "anon";
                else if (!strcmp(a, "--size")) size = strtoull(ARG(), NULL, 0);
                else if (!strcmp(a, "--case")) cs = ARG();
                else if (!strcmp(a, "--msgs")) msgs = strtoull(ARG(), NULL, 0);
                else if (!strcmp(a, "--min")) lo = strtoull(ARG(), NULL, 0);
                else if (!strcmp(a, "--max")) hi = strtoull(ARG(), NULL, 0);
                else if (!strcmp(a, "--seq-start")) seq_start = (uint32_t) strtoul(ARG(), NULL, 0);
                else if (!strcmp(a, "--seed")) rng = (uint32_t) strtoul(ARG(), NULL, 0) | 1;
                else if (!strcmp(a, "--live")) live = true;
                else if (!strcmp(a, "--rate")) rate = strtod(ARG(), NULL);
                else if (!strcmp(a, "--reader")) reader = ARG();
                else if (!strcmp(a, "--reader-proc")) reader_proc = true;
                else if (!strcmp(a, "--keep")) keep = true;
                else if (!strcmp(a, "--rmid")) rmid = true;
                else if (!strcmp(a, "--packed")) packed = true;
                else if (!strcmp(a, "--align")) align_size = strtoull(ARG(), NULL, 0);
                else if (!strcmp(a, "--exit")) exit_now = true;
                else usage();
#undef ARG
        }
        if (align_size < 8 || align_size > 64 || (align_size & (align_size - 1)) || (packed && live))
                usage();
        NODE_HEAD = (8 + align_size - 1) / align_size * align_size;
        BLOCK_HEAD = (16 + align_size - 1) / align_size * align_size;
        if (!kind || size < HEAD + 2 * (NODE + NODE_HEAD) || lo < 1 || hi < lo || rate <= 0)
                usage();
        /* SIGTERM when the test dies, so that the segment is removed; it is
         * blocked here and taken by sigwait() below */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (!strcmp(kind, "sysv")) {
                shmid = shmget(key ? key : IPC_PRIVATE, size, IPC_CREAT | IPC_EXCL | 0600);
                if (shmid < 0) {
                        perror("shmget");
                        return 1;
                }
                base = shmat(shmid, NULL, 0);
                if (base == (void *) -1) {
                        perror("shmat");
                        shmctl(shmid, IPC_RMID, NULL);
                        return 1;
                }
                /* removed at once: it lives on while attached, as "dest" */
                if (rmid)
                        shmctl(shmid, IPC_RMID, NULL);
        } else {
                if (!strcmp(kind, "posix"))
                        fd = shm_open(where, O_RDWR | O_CREAT | O_EXCL, 0600);
                else if (!strcmp(kind, "file"))
                        fd = open(where, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                else if (!strcmp(kind, "memfd"))
                        fd = memfd_create(where, MFD_CLOEXEC);
                if (strcmp(kind, "anon") && (fd < 0 || ftruncate(fd, (off_t) size) < 0)) {
                        perror(where);
                        return 1;
                }
                base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
                if (base == MAP_FAILED) {
                        perror("mmap");
                        return 1;
                }
        }
        ch = (struct fixture_channel_header *) base;
        seg_len = size;
        if (!strcmp(kind, "sysv"))
                printf("SEGMENT kind=sysv key=0x%08x id=%d size=%zu\n", (unsigned) key, shmid, size);
        else
                printf("SEGMENT kind=%s name=%s size=%zu addr=0x%lx\n", kind, where ? where : "-", size,
                       (unsigned long) base);
        printf("ATTACHED pid=%d role=writer\n", getpid());
        if (make_case(cs, msgs, lo, hi, seq_start) < 0) {
                fprintf(stderr, "shmwriter: case %s could not be made\n", cs);
                remove_segment(kind, where, shmid);
                return 1;
        }
        if (strncmp(cs, "bad-", 4) != 0) {
                size_t bytes = 0;
                uint32_t first = nblocks ? block_at(0).seq : 0, last = nblocks ? block_at(nblocks - 1).seq : 0;
                for (size_t k = 0; k < nblocks; k++)
                        bytes += block_at(k).size;
                printf("CHANNEL nodes=%zu read=%zu write=%zu used=%zu protect=%zu seq=%u\n", ch->node_count,
                       rd_cur(), wr_cur(), used(), ch->conf.protect_node_count, ch->operation_seq);
                printf("BLOCKS count=%zu bytes=%zu first_seq=%u last_seq=%u\n", nblocks, bytes, first, last);
        }
        if (packed)
                write_packed();
        if (reader_proc) {
                child = fork();
                if (child == 0) {
                        /* the mapping is inherited: one more attach of the segment */
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        signal(SIGTERM, on_term);
                        pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
                        if (live && strcmp(reader, "stop") != 0)
                                reader_thread(NULL);
                        else
                                while (!stop)
                                        pause();
                        _exit(0);
                }
                printf("ATTACHED pid=%d role=reader\n", child);
        }
        printf("READY\n");
        fflush(stdout);
        if (exit_now)
                return 0;
        if (live) {
                pthread_create(&wt, NULL, writer_thread, NULL);
                if (!reader_proc && strcmp(reader, "stop") != 0)
                        pthread_create(&rt, NULL, reader_thread, NULL);
        }
        /* until SIGTERM or SIGINT */
        sigwait(&sigs, &sig);
        stop = 1;
        if (live) {
                pthread_join(wt, NULL);
                if (!reader_proc && strcmp(reader, "stop") != 0)
                        pthread_join(rt, NULL);
        }
        if (child > 0) {
                kill(child, SIGTERM);
                waitpid(child, NULL, 0);
        }
        if (!keep)
                remove_segment(kind, where, shmid);
        return 0;
}
