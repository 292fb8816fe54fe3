/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The recording store: CRC-32C, a round trip through a ring of segments, continuing
 * a recording, torn tails at every byte, random corruption, write failures (a file
 * size limit; a full tmpfs when root), reading a live recording, seek, and a small
 * fuzz of the reader. Every frame's content starts with its own id (8 bytes), so what
 * the reader hands out is compared with what was written.
 * DIAG_TEST_SEED=N repeats a run's random choices.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diag/recstore.h"
#include "diag/util.h"
#include "tap.h"

#define MAXFRAMES 4096

static uint64_t rng_state;

static uint64_t rnd(void) {
        uint64_t x = rng_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return rng_state = x;
}

static uint64_t rnd_below(uint64_t n) {
        return n ? rnd() % n : 0;
}

struct orig {
        uint8_t *data;
        size_t len;
        bool key;
        uint32_t n;
        int64_t first_ns, last_ns;
};
static struct orig origs[MAXFRAMES];
static uint64_t norigs;

/* Frame content: its id, then runs of one byte and of random bytes (compressible
 * to a varying degree). */
static const struct orig *make_frame(size_t len, bool key) {
        struct orig *o;

        if (norigs >= MAXFRAMES)
                abort();
        o = &origs[norigs];
        len = MAX(len, 8);
        o->data = malloc(len);
        if (!o->data)
                abort();
        memcpy(o->data, &norigs, 8);
        for (size_t i = 8; i < len;) {
                size_t run = 1 + rnd_below(200);
                run = MIN(run, len - i);
                if (rnd() & 1)
                        memset(o->data + i, (int) rnd_below(4), run);
                else
                        for (size_t j = 0; j < run; j++)
                                o->data[i + j] = (uint8_t) rnd();
                i += run;
        }
        o->len = len;
        o->key = key;
        o->n = 1 + (uint32_t) rnd_below(5);
        o->first_ns = 1000000 * (int64_t) norigs;
        o->last_ns = o->first_ns + 999;
        norigs++;
        return o;
}

static unsigned nwarn;
static bool quiet;
/* Fuzzing: files with checksums made right may hold frames that differ from the
 * originals; duplicated ranges repeat frames. */
static bool lenient_content, lenient_order;

static int add(struct diag_rec_writer *w, const struct orig *o) {
        return diag_rec_writer_add(w, o->data, o->len, o->n, o->key, o->first_ns, o->last_ns);
}

/* The original a frame read back claims to be; NULL (and a failed check) when its
 * bytes or description differ from what was written. */
static const struct orig *match(const uint8_t *raw, size_t len, const struct diag_rec_frame_info *info) {
        uint64_t id;
        const struct orig *o;

        if (len < 8) {
                CHECK(lenient_content || len >= 8);
                return NULL;
        }
        memcpy(&id, raw, 8);
        if (id >= norigs) {
                CHECK(lenient_content || id < norigs);
                return NULL;
        }
        o = &origs[id];
        if (lenient_content)
                return o;
        if (o->len != len || memcmp(o->data, raw, len) != 0 || o->key != info->key || o->n != info->nintervals ||
            o->first_ns != info->first_ns || o->last_ns != info->last_ns || info->raw_len != len) {
                CHECK(!"frame read back differs from the one written");
                fprintf(stderr, "  frame id %" PRIu64 " seq %" PRIu64 " segment %" PRIu64 " offset %" PRIu64 "\n",
                        id, info->seq, info->segment, info->offset);
                return NULL;
        }
        return o;
}


_printf_(2, 3) static void warn_cb(void *userdata, const char *fmt, ...) {
        va_list ap;

        nwarn++;
        if (quiet)
                return;
        va_start(ap, fmt);
        fputs("  warn: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* Read everything; ids of the frames in order into ids (when not NULL). Checks
 * every frame against its original and the seq/prev_seq chain. */
struct readout {
        uint64_t ids[MAXFRAMES], seqs[MAXFRAMES];
        size_t n;
        bool have_last;
        uint64_t last_seq;              /* of the last frame handed out, matched or not */
        struct diag_rec_reader_stats st;
        int r;
};

static void read_frames(struct diag_rec_reader *rd, struct readout *out) {
        const uint8_t *raw;
        size_t len;
        struct diag_rec_frame_info info;
        int r;

        while ((r = diag_rec_reader_next(rd, &raw, &len, &info)) > 0) {
                const struct orig *o = match(raw, len, &info);
                if (!info.key) {
                        /* a delta is handed out only right after the frame it refers to */
                        CHECK_INT(info.prev_seq, info.seq - 1);
                        CHECK(out->have_last && out->last_seq == info.prev_seq);
                }
                out->have_last = true;
                out->last_seq = info.seq;
                if (!o)
                        continue;
                if (out->n > 0 && !lenient_order)
                        CHECK(info.seq > out->seqs[out->n - 1]);
                if (out->n < MAXFRAMES) {
                        out->ids[out->n] = (uint64_t) (o - origs);
                        out->seqs[out->n++] = info.seq;
                }
        }
        out->r = r;
        diag_rec_reader_stats(rd, &out->st);
}

static int read_dir(const char *dir, struct readout *out) {
        struct diag_rec_reader *rd = NULL;
        int r;

        memset(out, 0, sizeof *out);
        r = diag_rec_reader_open(&rd, dir, warn_cb, NULL);
        if (r < 0)
                return r;
        read_frames(rd, out);
        diag_rec_reader_close(rd);
        return out->r;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_tree(const char *path) {
        nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Segment files of dir, sorted: count, total size; names into names when not NULL. */
static size_t list_segs(const char *dir, uint64_t *total, char names[][64], size_t max) {
        struct dirent **de;
        int n = scandir(dir, &de, NULL, alphasort);
        size_t k = 0;

        *total = 0;
        for (int i = 0; i < n; i++) {
                struct stat st;
                char p[4096];

                if (strncmp(de[i]->d_name, DIAG_REC_SEGMENT_PREFIX, 4) == 0) {
                        snprintf(p, sizeof p, "%s/%s", dir, de[i]->d_name);
                        if (stat(p, &st) == 0)
                                *total += (uint64_t) st.st_size;
                        if (names && k < max)
                                snprintf(names[k], 64, "%.63s", de[i]->d_name);
                        k++;
                }
                free(de[i]);
        }
        free(de);
        return k;
}

static void *read_whole(const char *path, size_t *len) {
        char *buf = NULL;

        if (diag_read_file_at(AT_FDCWD, path, 256 << 20, &buf, len) < 0)
                return NULL;
        return buf;
}

static int write_whole(const char *path, const void *buf, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok;

        if (fd < 0)
                return -errno;
        ok = write(fd, buf, len) == (ssize_t) len;
        close(fd);
        return ok ? 0 : -EIO;
}

/* A recording of n frames of up to maxlen bytes, a key frame every key_every, in dir. */
static bool write_recording(const char *dir, const struct diag_rec_writer_opts *opts, int n, size_t maxlen,
                            int key_every) {
        struct diag_rec_writer *w = NULL;

        CHECK_INT(diag_rec_writer_open(&w, dir, opts), 0);
        if (!w)
                return false;
        for (int i = 0; i < n; i++)
                CHECK_INT(add(w, make_frame(rnd_below(maxlen), i % key_every == 0)), 0);
        CHECK_INT(diag_rec_writer_close(w), 0);
        return true;
}

static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len) {
        crc = ~crc;
        while (len--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
}

static void test_crc(void) {
        uint8_t buf[1100];

        CHECK_INT(diag_crc32c(0, "123456789", 9), 0xE3069283u);
        CHECK_INT(diag_crc32c(0, "", 0), 0);
        for (int round = 0; round < 200; round++) {
                size_t start = rnd_below(16), len = rnd_below(sizeof buf - 16), cut = rnd_below(len + 1);
                for (size_t i = 0; i < sizeof buf; i++)
                        buf[i] = (uint8_t) rnd();
                CHECK_INT(diag_crc32c(0, buf + start, len), crc32c_bitwise(0, buf + start, len));
                /* in pieces, as a running checksum */
                CHECK_INT(diag_crc32c(diag_crc32c(0, buf + start, cut), buf + start + cut, len - cut),
                          diag_crc32c(0, buf + start, len));
        }
}

/* Many frames across segments of a small ring; then the same directory continued. */
static void test_round_trip(const char *base) {
        char dir[4096];
        struct diag_rec_writer *w = NULL;
        struct diag_rec_writer_opts opts = { .max_size = 256 << 10, .segment_size = 32 << 10,
                                             .queue_size = 1 << 20, .interval_ms = 1000 };
        struct diag_rec_writer_stats ws;
        static struct readout out;
        uint64_t first_id = norigs, total, last_id;
        char names[64][64];
        size_t nsegs, nsegs2;

        snprintf(dir, sizeof dir, "%s/ring", base);
        CHECK_INT(diag_rec_writer_open(&w, dir, &opts), 0);
        if (!w)
                return;
        CHECK(diag_rec_writer_chain_broken(w));         /* nothing to link to yet */
        CHECK(!diag_rec_writer_chain_broken(w));
        for (int i = 0; i < 600; i++) {
                const struct orig *o = make_frame(rnd_below(8000), i % 10 == 0);
                CHECK_INT(add(w, o), 0);
                if (rnd_below(4) == 0)
                        CHECK_INT(diag_rec_writer_flush(w), 0);
        }
        last_id = norigs - 1;
        CHECK_INT(diag_rec_writer_close(w), 0);

        nsegs = list_segs(dir, &total, names, 64);
        CHECK(nsegs >= 3);
        CHECK(total <= opts.max_size + opts.segment_size);
        if (nsegs > 0) {
                char p[4200];
                struct stat st;
                snprintf(p, sizeof p, "%s/%s", dir, names[0]);
                CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
                CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
        }

        nwarn = 0;
        CHECK_INT(read_dir(dir, &out), 0);
        CHECK_INT(nwarn, 0);
        CHECK_INT(out.st.bad_frames, 0);
        CHECK_INT(out.st.torn_tails, 0);
        CHECK(out.n > 50);
        if (out.n > 0) {
                /* the oldest were removed with their segments, the newest are all there */
                CHECK(out.ids[0] > first_id);
                CHECK(origs[out.ids[0]].key);
                CHECK_INT(out.ids[out.n - 1], last_id);
                for (size_t i = 1; i < out.n; i++) {
                        CHECK_INT(out.ids[i], out.ids[i - 1] + 1);
                        CHECK_INT(out.seqs[i], out.seqs[i - 1] + 1);
                }
                CHECK_INT(out.seqs[out.n - 1], last_id - first_id + 1);
        }

        /* continued: a new segment after the newest, seq numbers go on */
        w = NULL;
        CHECK_INT(diag_rec_writer_open(&w, dir, &opts), 0);
        if (!w)
                return;
        {
                struct diag_rec_writer *w2 = NULL;
                CHECK_INT(diag_rec_writer_open(&w2, dir, &opts), -EBUSY);     /* one writer */
        }
        /* a delta first cannot refer to the last run's frames: dropped */
        CHECK_INT(add(w, make_frame(100, false)), 0);
        for (int i = 0; i < 20; i++)
                CHECK_INT(add(w, make_frame(rnd_below(3000), i == 0)), 0);
        diag_rec_writer_stats(w, &ws);
        CHECK_INT(ws.frames_dropped, 1);
        CHECK_INT(diag_rec_writer_close(w), 0);
        nsegs2 = list_segs(dir, &total, names, 64);
        CHECK(nsegs2 >= 1);
        nwarn = 0;
        CHECK_INT(read_dir(dir, &out), 0);
        CHECK_INT(nwarn, 0);
        if (out.n > 20) {
                CHECK_INT(out.ids[out.n - 1], norigs - 1);
                CHECK_INT(out.ids[out.n - 21], last_id);
                CHECK_INT(out.seqs[out.n - 20], out.seqs[out.n - 21] + 1);
        }
}

/* A recording in two segments (each written by one writer run): frames 0-4, then 5-6. */
static void make_two_segments(const char *dir, uint64_t *first_id) {
        struct diag_rec_writer *w = NULL;
        struct diag_rec_writer_opts opts = { .max_size = 1 << 20 };

        *first_id = norigs;
        for (int run = 0; run < 2; run++) {
                CHECK_INT(diag_rec_writer_open(&w, dir, &opts), 0);
                if (!w)
                        return;
                for (int i = 0; i < (run ? 2 : 5); i++)
                        CHECK_INT(add(w, make_frame(100 + rnd_below(400), i == 0)), 0);
                CHECK_INT(diag_rec_writer_close(w), 0);
        }
}

/* The first segment's last frame cut at every byte: the frames before it and the
 * second segment's read back, one torn tail reported. */
static void test_torn(const char *base) {
        char dir[4096], path[4200], names[4][64];
        static struct readout out;
        uint64_t first_id, total, frame_off = 0;
        _cleanup_free_ uint8_t *seg = NULL;
        size_t seglen = 0;
        struct diag_rec_reader *rd = NULL;
        const uint8_t *raw;
        size_t len;
        struct diag_rec_frame_info info;
        unsigned bad = 0;

        snprintf(dir, sizeof dir, "%s/torn", base);
        make_two_segments(dir, &first_id);
        CHECK_INT(list_segs(dir, &total, names, 4), 2);
        snprintf(path, sizeof path, "%s/%s", dir, names[0]);
        seg = read_whole(path, &seglen);
        CHECK(seg != NULL);
        if (!seg)
                return;
        CHECK_INT(diag_rec_reader_open(&rd, dir, warn_cb, NULL), 0);
        if (!rd)
                return;
        while (diag_rec_reader_next(rd, &raw, &len, &info) > 0)
                if (match(raw, len, &info) == &origs[first_id + 4])
                        frame_off = info.offset;
        diag_rec_reader_close(rd);
        CHECK(frame_off > 0 && frame_off < seglen);

        quiet = true;
        for (uint64_t cut = frame_off; cut < seglen; cut++) {
                bool ok;
                CHECK_INT(write_whole(path, seg, cut), 0);
                nwarn = 0;
                CHECK_INT(read_dir(dir, &out), 0);
                ok = out.n == 6 && out.st.torn_tails == (cut > frame_off) && out.st.bad_frames == 0 &&
                     nwarn == (cut > frame_off) && out.st.bytes_skipped == cut - frame_off;
                for (size_t i = 0; ok && i < 6; i++)
                        ok = out.ids[i] == first_id + (i < 4 ? i : i + 1);
                if (!ok && bad++ < 5)
                        fprintf(stderr, "cut at %" PRIu64 ": %zu frames, %" PRIu64 " torn, %" PRIu64 " bad\n",
                                cut, out.n, out.st.torn_tails, out.st.bad_frames);
        }
        quiet = false;
        CHECK_INT(bad, 0);
        CHECK_INT(write_whole(path, seg, seglen), 0);
}

/* Random bytes of a small recording flipped: never a frame that differs from the
 * one written, never a crash. */
static void test_flips(const char *base) {
        char dir[4096], names[8][64], paths[8][4200];
        struct diag_rec_writer_opts opts = { .max_size = 1 << 20, .segment_size = 16 << 10 };
        uint8_t *segs[8] = {};
        size_t lens[8] = {}, nsegs;
        uint64_t total, returned = 0;
        static struct readout out;

        snprintf(dir, sizeof dir, "%s/flips", base);
        if (!write_recording(dir, &opts, 80, 1500, 8))
                return;
        nsegs = list_segs(dir, &total, names, 8);
        CHECK(nsegs >= 2 && nsegs <= 8);
        nsegs = MIN(nsegs, 8);
        for (size_t i = 0; i < nsegs; i++) {
                snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
                segs[i] = read_whole(paths[i], &lens[i]);
                CHECK(segs[i] != NULL);
                if (!segs[i])
                        return;
        }

        quiet = true;
        for (int round = 0; round < 300; round++) {
                int nflips = 1 + (int) rnd_below(6);
                size_t which[6], at[6];

                for (int f = 0; f < nflips; f++) {
                        int fd;
                        uint8_t b;
                        which[f] = rnd_below(nsegs);
                        at[f] = rnd_below(lens[which[f]]);
                        fd = open(paths[which[f]], O_RDWR | O_CLOEXEC);
                        CHECK(fd >= 0);
                        b = segs[which[f]][at[f]] ^ (uint8_t) (1 + rnd_below(255));
                        CHECK(pwrite(fd, &b, 1, (off_t) at[f]) == 1);
                        close(fd);
                }
                CHECK_INT(read_dir(dir, &out), 0);     /* match() checks each frame */
                returned += out.n;
                for (int f = 0; f < nflips; f++)
                        CHECK_INT(write_whole(paths[which[f]], segs[which[f]], lens[which[f]]), 0);
        }
        quiet = false;
        CHECK(returned > 300 * 40);     /* a few flips lose a few frames, not most */
        for (size_t i = 0; i < nsegs; i++)
                free(segs[i]);
}

static const struct orig *make_noise_frame(bool key) {
        const struct orig *o = make_frame(4096 + rnd_below(64), key);

        for (size_t j = 8; j < o->len; j++)
                o->data[j] = (uint8_t) rnd();
        return o;
}

/* Frames that cannot be written stay queued; past the queue the oldest go. */
static void check_failure_recovery(const char *dir, int expect_err, void (*make_room)(const char *),
                                   const char *room_arg) {
        struct diag_rec_writer *w = NULL;
        struct diag_rec_writer_opts opts = { .max_size = 4 << 20, .segment_size = 1 << 20,
                                             .queue_size = 64 << 10 };
        struct diag_rec_writer_stats ws;
        static struct readout out;
        uint64_t first_id = norigs, fail_id = 0;
        int r = 0, i;

        CHECK_INT(diag_rec_writer_open(&w, dir, &opts), 0);
        if (!w)
                return;
        CHECK(diag_rec_writer_chain_broken(w));
        /* incompressible frames of 4 KiB, flushed one by one, until writes fail */
        for (i = 0; i < 1000 && r == 0; i++) {
                CHECK_INT(add(w, make_noise_frame(i % 4 == 0)), 0);
                r = diag_rec_writer_flush(w);
        }
        CHECK_INT(r, expect_err);
        fail_id = norigs - 1;
        diag_rec_writer_stats(w, &ws);
        CHECK_INT(ws.last_error, expect_err);
        CHECK_INT(ws.frames_dropped, 0);
        CHECK_INT(ws.frames_written, fail_id - first_id);
        CHECK(!diag_rec_writer_chain_broken(w));

        /* more while the disk is full: 64 KiB hold 15 frames. The oldest go, and
         * the delta frames after them, which could not be decoded without them. */
        for (i = 0; i < 18; i++) {
                CHECK_INT(add(w, make_noise_frame(i % 4 == 0)), 0);
                if (i % 5 == 0)
                        CHECK_INT(diag_rec_writer_flush(w), expect_err);
        }
        diag_rec_writer_stats(w, &ws);
        CHECK(ws.frames_dropped >= 4);
        CHECK(ws.intervals_dropped >= ws.frames_dropped);
        CHECK_INT(ws.last_error, expect_err);
        CHECK(diag_rec_writer_chain_broken(w));
        CHECK(!diag_rec_writer_chain_broken(w));

        make_room(room_arg);
        CHECK_INT(diag_rec_writer_flush(w), 0);
        diag_rec_writer_stats(w, &ws);
        CHECK_INT(ws.last_error, 0);
        CHECK_INT(ws.frames_written + ws.frames_dropped, norigs - first_id);
        CHECK_INT(diag_rec_writer_close(w), 0);

        nwarn = 0;
        CHECK_INT(read_dir(dir, &out), 0);
        CHECK_INT(out.st.torn_tails, 0);
        CHECK_INT(out.st.bad_frames, 0);
        CHECK_INT(out.n, ws.frames_written);
        if (out.n > 0) {
                /* all before the failure, then a gap, then the newest */
                CHECK_INT(out.ids[0], first_id);
                CHECK_INT(out.ids[fail_id - first_id - 1], fail_id - 1);
                CHECK(out.ids[fail_id - first_id] > fail_id);
                CHECK_INT(out.ids[out.n - 1], norigs - 1);
        }
}

static void raise_fsize(const char *unused) {
        struct rlimit rl;

        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = rl.rlim_max;
        CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
}

static void remove_file(const char *path) {
        CHECK(unlink(path) == 0);
}

static void test_write_failures(const char *base) {
        char dir[4096], mnt[2048], filler[2100];
        struct rlimit rl, saved;
        int fd;

        /* a file size limit: EFBIG past 100 KiB */
        snprintf(dir, sizeof dir, "%s/efbig", base);
        signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &saved);
        rl = saved;
        rl.rlim_cur = 100 << 10;
        CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
        check_failure_recovery(dir, -EFBIG, raise_fsize, NULL);
        setrlimit(RLIMIT_FSIZE, &saved);

        /* a full file system: a 256 KiB tmpfs with a 128 KiB file to remove */
        snprintf(mnt, sizeof mnt, "%s/tmpfs", base);
        CHECK(mkdir(mnt, 0700) == 0);
        if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,mode=0700") < 0) {
                printf("# ENOSPC part skipped: cannot mount a tmpfs (%s)\n", strerror(errno));
                return;
        }
        snprintf(filler, sizeof filler, "%s/filler", mnt);
        fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        {
                static uint8_t zero[128 << 10];
                memset(zero, 1, sizeof zero);
                CHECK(write(fd, zero, sizeof zero) == (ssize_t) sizeof zero);
        }
        close(fd);
        snprintf(dir, sizeof dir, "%s/rec", mnt);
        check_failure_recovery(dir, -ENOSPC, remove_file, filler);
        CHECK(umount2(mnt, MNT_DETACH) == 0);
}

/* A reader of a recording being written picks up what is flushed later, across
 * rotations and removal of segments under it. */
static void test_live(const char *base) {
        char dir[4096];
        struct diag_rec_writer *w = NULL;
        struct diag_rec_reader *rd = NULL;
        struct diag_rec_writer_opts opts = { .max_size = 64 << 10, .segment_size = 8 << 10 };
        static struct readout out;
        uint64_t expect;

        snprintf(dir, sizeof dir, "%s/live", base);
        CHECK_INT(diag_rec_writer_open(&w, dir, &opts), 0);
        if (!w)
                return;
        CHECK_INT(diag_rec_reader_open(&rd, dir, warn_cb, NULL), -ENOENT);
        CHECK_INT(add(w, make_frame(500, true)), 0);
        CHECK_INT(diag_rec_writer_flush(w), 0);
        CHECK_INT(diag_rec_reader_open(&rd, dir, warn_cb, NULL), 0);
        if (!rd) {
                diag_rec_writer_close(w);
                return;
        }
        memset(&out, 0, sizeof out);
        nwarn = 0;
        expect = norigs - 1;
        for (int round = 0; round < 150; round++) {
                read_frames(rd, &out);
                CHECK_INT(out.r, 0);
                CHECK(out.n > 0 && out.ids[out.n - 1] == expect);
                /* a few frames per round: the reader stays ahead of the ring's removal */
                for (int i = 0; i < 3; i++)
                        CHECK_INT(add(w, make_frame(rnd_below(900), i == 0 && round % 3 == 0)), 0);
                expect = norigs - 1;
                CHECK_INT(diag_rec_writer_flush(w), 0);
        }
        read_frames(rd, &out);
        CHECK(out.n > 0 && out.ids[out.n - 1] == expect);
        for (size_t i = 1; i < out.n; i++)
                CHECK_INT(out.ids[i], out.ids[i - 1] + 1);
        CHECK_INT(nwarn, 0);
        {
                struct diag_rec_writer_stats ws;
                diag_rec_writer_stats(w, &ws);
                CHECK(ws.segments_removed > 0);
        }

        /* a reader left behind: the segments after the one it has open are removed
         * meanwhile; it finishes that one and goes on with the oldest still there */
        {
                const uint8_t *raw;
                size_t len;
                struct diag_rec_frame_info info;
                struct diag_rec_writer_stats ws;
                uint64_t removed;

                CHECK_INT(add(w, make_frame(300, true)), 0);
                CHECK_INT(diag_rec_writer_flush(w), 0);
                CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 1);
                CHECK(match(raw, len, &info) == &origs[norigs - 1]);
                diag_rec_writer_stats(w, &ws);
                removed = ws.segments_removed;
                for (int i = 0; i < 300; i++)
                        CHECK_INT(add(w, make_frame(rnd_below(900), i % 7 == 0)), 0);
                CHECK_INT(diag_rec_writer_flush(w), 0);
                diag_rec_writer_stats(w, &ws);
                CHECK(ws.segments_removed > removed + 8);
                memset(&out, 0, sizeof out);
                read_frames(rd, &out);
                CHECK_INT(out.r, 0);
                CHECK(out.n > 10);
                CHECK(out.n < 300);
                if (out.n > 0) {
                        CHECK_INT(out.ids[out.n - 1], norigs - 1);
                        CHECK(origs[out.ids[0]].key);
                }
                /* one warning for the break in the chain, at most */
                CHECK(nwarn <= 1);
        }
        diag_rec_reader_close(rd);
        CHECK_INT(diag_rec_writer_close(w), 0);
}

static void test_seek(const char *base) {
        char dir[4096];
        struct diag_rec_reader *rd = NULL;
        struct diag_rec_writer_opts opts = { .max_size = 1 << 20, .segment_size = 8 << 10 };
        const uint8_t *raw;
        size_t len;
        struct diag_rec_frame_info info;
        uint64_t first = norigs;
        const struct orig *o;

        snprintf(dir, sizeof dir, "%s/seek", base);
        if (!write_recording(dir, &opts, 100, 600, 10))
                return;
        CHECK_INT(diag_rec_reader_open(&rd, dir, warn_cb, NULL), 0);
        if (!rd)
                return;
        /* at frame 57's time: from key frame 50 */
        CHECK_INT(diag_rec_reader_seek(rd, origs[first + 57].first_ns), 0);
        CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 1);
        o = match(raw, len, &info);
        CHECK(o == &origs[first + 50]);
        CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 1);
        CHECK(match(raw, len, &info) == &origs[first + 51]);
        /* exactly at a key frame's time, and after everything */
        CHECK_INT(diag_rec_reader_seek(rd, origs[first + 30].first_ns), 0);
        CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 1);
        CHECK(match(raw, len, &info) == &origs[first + 30]);
        CHECK_INT(diag_rec_reader_seek(rd, INT64_MAX), 0);
        CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 1);
        CHECK(match(raw, len, &info) == &origs[first + 90]);
        /* before everything: the first frame */
        CHECK_INT(diag_rec_reader_seek(rd, 0), 0);
        CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 1);
        CHECK(match(raw, len, &info) == &origs[first]);
        CHECK_INT(diag_rec_reader_seek(rd, origs[first + 99].first_ns), 0);
        for (int i = 90; i < 100; i++) {
                CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 1);
                CHECK(match(raw, len, &info) == &origs[first + i]);
        }
        CHECK_INT(diag_rec_reader_next(rd, &raw, &len, &info), 0);
        diag_rec_reader_close(rd);
}

/* Random and mutated segment files, some with their checksums made right again
 * (so lengths and payloads that lie are trusted as far as the checks go). */
static void fix_crcs(uint8_t *b, size_t len) {
        size_t off = 140;

        while (off + 64 <= len) {
                uint32_t zlen, c;
                if (memcmp(b + off, "DRF1", 4) != 0)
                        return;
                memcpy(&zlen, b + off + 52, 4);
                if (rnd_below(2) && off + 64 + zlen <= len) {
                        c = diag_crc32c(0, b + off + 64, zlen);
                        memcpy(b + off + 56, &c, 4);
                }
                c = diag_crc32c(0, b + off + 8, 56);
                memcpy(b + off + 4, &c, 4);
                if (zlen > len)
                        return;
                off += 64 + zlen;
        }
}

static void test_fuzz(const char *base) {
        char dir[4096], path[4200], names[2][64];
        _cleanup_free_ uint8_t *good = NULL, *buf = NULL;
        size_t goodlen = 0;
        uint64_t total, first = norigs;
        struct diag_rec_writer_opts opts = { .max_size = 1 << 20 };
        static struct readout out;

        snprintf(dir, sizeof dir, "%s/fuzz", base);
        if (!write_recording(dir, &opts, 12, 700, 3))
                return;
        CHECK_INT(list_segs(dir, &total, names, 2), 1);
        snprintf(path, sizeof path, "%s/%s", dir, names[0]);
        good = read_whole(path, &goodlen);
        CHECK(good != NULL);
        if (!good)
                return;
        CHECK_INT(read_dir(dir, &out), 0);
        CHECK_INT(out.n, 12);
        CHECK_INT(out.ids[0], first);

        buf = malloc(goodlen * 2 + 4096);
        if (!buf)
                abort();
        quiet = true;
        lenient_order = true;
        for (int round = 0; round < 2000; round++) {
                size_t len;

                lenient_content = false;

                switch (rnd_below(4)) {
                case 0:         /* random bytes after a good segment header */
                        len = rnd_below(goodlen);
                        memcpy(buf, good, MIN(len, 140));
                        for (size_t i = 140; i < len; i++)
                                buf[i] = (uint8_t) rnd();
                        break;
                case 1:         /* a few bytes changed, checksums made right */
                        len = goodlen;
                        memcpy(buf, good, len);
                        for (int k = 1 + (int) rnd_below(4); k > 0; k--) {
                                size_t at = rnd_below(len);
                                buf[at] = rnd_below(2) ? (uint8_t) rnd() : 0xff;
                        }
                        fix_crcs(buf, len);
                        lenient_content = true;
                        break;
                case 2: {       /* a range copied elsewhere (duplicated headers, overlaps), cut */
                        size_t from = rnd_below(goodlen), to = rnd_below(goodlen), n = rnd_below(goodlen / 2);
                        len = goodlen;
                        memcpy(buf, good, len);
                        n = MIN(n, MIN(goodlen - from, goodlen - to));
                        memmove(buf + to, good + from, n);
                        len = rnd_below(2) ? len : rnd_below(len);
                        break;
                }
                default: {      /* bytes inserted in the middle */
                        size_t at = rnd_below(goodlen), n = rnd_below(300);
                        memcpy(buf, good, at);
                        for (size_t i = 0; i < n; i++)
                                buf[at + i] = (uint8_t) rnd();
                        memcpy(buf + at + n, good + at, goodlen - at);
                        len = goodlen + n;
                        if (rnd_below(2)) {
                                fix_crcs(buf, len);
                                lenient_content = true;
                        }
                        break;
                }
                }
                CHECK_INT(write_whole(path, buf, len), 0);
                {
                        struct diag_rec_reader *rd = NULL;
                        int r = diag_rec_reader_open(&rd, dir, warn_cb, NULL);
                        CHECK_INT(r, 0);
                        if (r < 0)
                                continue;
                        memset(&out, 0, sizeof out);
                        read_frames(rd, &out);
                        CHECK_INT(out.r, 0);
                        diag_rec_reader_seek(rd, origs[first + rnd_below(12)].first_ns);
                        read_frames(rd, &out);
                        diag_rec_reader_close(rd);
                }
        }
        quiet = false;
        lenient_order = lenient_content = false;
}

int main(void) {
        char tmpl[4096];
        const char *tmp = getenv("TMPDIR");
        const char *seed_env = getenv("DIAG_TEST_SEED");
        uint64_t seed;
        char *base;

        seed = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        rng_state = seed | 1;
        printf("# seed %" PRIu64 " (DIAG_TEST_SEED to repeat)\n", seed);
        snprintf(tmpl, sizeof tmpl, "%s/diagkit-test-recstore-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        base = mkdtemp(tmpl);
        if (!base) {
                perror("mkdtemp");
                return 99;
        }

        test_crc();
        test_round_trip(base);
        test_torn(base);
        test_flips(base);
        test_write_failures(base);
        test_live(base);
        test_seek(base);
        test_fuzz(base);

        rm_tree(base);
        for (uint64_t i = 0; i < norigs; i++)
                free(origs[i].data);
        return TAP_DONE();
}
