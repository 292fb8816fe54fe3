/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * recgen: write a long recording quickly, for bench/record-bench.py's `show` timing:
 * one real reading of this host (its processes padded with copies up to --procs),
 * then --hours of intervals every --interval, as diag-record would have written
 * them had the host lived that long: a tenth of the processes use CPU each interval,
 * a few grow, one in 200 is replaced by a new one every minute, a command line
 * multiplies for an hour, OOM kills and a trigger now and then. The recorder's own
 * path (sampler aside) is used: codec, frames every --flush, key intervals every minute.
 *
 *   recgen DIR [--hours H] [--interval S] [--procs N] [--flush S] [--raw-dir RAW]
 *
 * --raw-dir: also the first 20 frames' payloads (the codec's bytes), each as a file
 * RAW/frame-N whose first byte is 1: seeds for tests/record/fuzz-rec.c's decoder.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag/record.h"
#include "diag/recstore.h"
#include "diag/util.h"

static unsigned long long rng = 88172645463325252ULL;

static unsigned rnd(unsigned n) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (unsigned) (rng % n);
}

static const char *raw_dir;
static unsigned raw_n;

static void save_raw(const struct diag_rec_buf *raw) {
        char path[4096];
        FILE *f;

        if (!raw_dir || raw_n >= 20)
                return;
        snprintf(path, sizeof path, "%s/frame-%u", raw_dir, raw_n++);
        f = fopen(path, "we");
        if (!f)
                return;
        fputc(1, f);
        fwrite(raw->data, 1, raw->len, f);
        fclose(f);
}

static void fail(const char *what, int r) {
        fprintf(stderr, "recgen: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

int main(int argc, char **argv) {
        const char *dir = NULL;
        double hours = 24;
        unsigned interval_s = 5, procs = 1000, flush_s = 10;
        struct diag_rec_sampler *smp;
        struct diag_rec_sampler_opts so = { .cgroups = true, .dstate = true };
        struct diag_rec_strings *strings = diag_rec_strings_new();
        struct diag_rec_interval base, iv;
        struct diag_rec_encoder *enc = diag_rec_encoder_new();
        struct diag_rec_writer *w;
        struct diag_rec_writer_opts wo = { .max_size = 8ULL << 30 };
        struct diag_rec_buf raw = { 0 };
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--hours") == 0 && i + 1 < argc)
                        hours = atof(argv[++i]);
                else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc)
                        interval_s = (unsigned) atoi(argv[++i]);
                else if (strcmp(argv[i], "--procs") == 0 && i + 1 < argc)
                        procs = (unsigned) atoi(argv[++i]);
                else if (strcmp(argv[i], "--raw-dir") == 0 && i + 1 < argc)
                        raw_dir = argv[++i];
                else if (strcmp(argv[i], "--flush") == 0 && i + 1 < argc)
                        flush_s = (unsigned) atoi(argv[++i]);
                else if (!dir && argv[i][0] != '-')
                        dir = argv[i];
                else {
                        fprintf(stderr, "usage: recgen DIR [--hours H] [--interval S] [--procs N] [--flush S]\n");
                        return 2;
                }
        }
        if (!dir || !strings || !enc || interval_s == 0 || procs == 0 || flush_s < interval_s) {
                fprintf(stderr, "usage: recgen DIR [--hours H] [--interval S] [--procs N] [--flush S]\n");
                return 2;
        }
        wo.interval_ms = interval_s * 1000;
        if ((r = diag_rec_sampler_new(&smp, &so)) < 0)
                fail("sampler", r);
        diag_rec_interval_init(&base, strings);
        diag_rec_interval_init(&iv, strings);
        if ((r = diag_rec_sample(smp, &base)) < 0)
                fail("reading the host", r);
        diag_rec_sampler_free(smp);

        /* pad the process table with copies (new pids) up to procs */
        {
                size_t real = base.t[DIAG_REC_PROC].nrows;
                int64_t next_pid = 4000000;
                for (size_t k = 0; real && base.t[DIAG_REC_PROC].nrows < procs; k++) {
                        ssize_t row = diag_rec_add_row(&base, DIAG_REC_PROC);
                        if (row < 0)
                                fail("memory", ENOMEM);
                        size_t src = k % real;
                        for (unsigned c = 0; c < PR__NS; c++)
                                DIAG_REC_STR(&base, DIAG_REC_PROC, row, c) = DIAG_REC_STR(&base, DIAG_REC_PROC, src, c);
                        for (unsigned c = 0; c < PR__N; c++)
                                DIAG_REC_NUM(&base, DIAG_REC_PROC, row, c) = DIAG_REC_NUM(&base, DIAG_REC_PROC, src, c);
                        DIAG_REC_NUM(&base, DIAG_REC_PROC, row, PR_PID) = next_pid++;
                }
                diag_rec_sort(&base, DIAG_REC_PROC);
        }

        if ((r = diag_rec_writer_open(&w, dir, &wo)) < 0)
                fail(dir, r);
        {
                uint64_t n = (uint64_t) (hours * 3600 / interval_s);
                int64_t t0 = (int64_t) diag_now_ns(CLOCK_REALTIME) - (int64_t) n * interval_s * 1000000000LL;
                int64_t b0 = (int64_t) diag_now_ns(CLOCK_BOOTTIME);
                int64_t next_pid = 5000000;
                uint32_t in_frame = 0;
                bool frame_key = false;
                int64_t frame_first = 0, frame_last = 0;
                uint32_t boom = diag_rec_intern(strings, "php-fpm: pool www", 17);

                for (uint64_t k = 0; k < n; k++) {
                        struct diag_rec_table *pt = &base.t[DIAG_REC_PROC];
                        int64_t tk = t0 + (int64_t) k * interval_s * 1000000000LL;
                        bool key = k % (60 / interval_s ? 60 / interval_s : 1) == 0;

                        /* the host moves */
                        for (int c = H_CPU_USER; c <= H_CPU_STEAL; c++)
                                DIAG_REC_NUM(&base, DIAG_REC_HOST, 0, c) += rnd(100 * interval_s);
                        DIAG_REC_NUM(&base, DIAG_REC_HOST, 0, H_MEM_AVAIL) += (int64_t) rnd(1 << 20) - (1 << 19);
                        DIAG_REC_NUM(&base, DIAG_REC_HOST, 0, H_PGMAJFAULT) += rnd(50);
                        DIAG_REC_NUM(&base, DIAG_REC_HOST, 0, H_PSI_MEM_SOME) += rnd(20000);
                        DIAG_REC_NUM(&base, DIAG_REC_HOST, 0, H_PSI_IO_SOME) += rnd(50000);
                        for (size_t d = 0; d < base.t[DIAG_REC_DISK].nrows; d++) {
                                DIAG_REC_NUM(&base, DIAG_REC_DISK, d, DK_RD_SECTORS) += rnd(20000);
                                DIAG_REC_NUM(&base, DIAG_REC_DISK, d, DK_WR_SECTORS) += rnd(20000);
                        }
                        /* a tenth of the processes run, a few grow */
                        for (size_t p = 0; p < pt->nrows; p++) {
                                if (rnd(10) == 0) {
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, p, PR_UTIME) += rnd(100 * interval_s);
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, p, PR_STIME) += rnd(10 * interval_s);
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, p, PR_MINFLT) += rnd(1000);
                                }
                                if (rnd(50) == 0)
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, p, PR_RSS) += 4096 * rnd(256);
                                if (rnd(100) == 0)
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, p, PR_READ_BYTES) += 4096 * rnd(1024);
                        }
                        /* churn: one in 200 replaced every minute */
                        if (key)
                                for (size_t p = 0; p < pt->nrows; p++)
                                        if (rnd(200) == 0)
                                                DIAG_REC_NUM(&base, DIAG_REC_PROC, p, PR_PID) = next_pid++;
                        /* a fork explosion in the 12th hour: up to 60 more workers */
                        if (k * interval_s / 3600 == 11 && pt->nrows < procs + 60 && rnd(2) == 0) {
                                ssize_t row = diag_rec_add_row(&base, DIAG_REC_PROC);
                                if (row >= 0) {
                                        DIAG_REC_STR(&base, DIAG_REC_PROC, row, PR_CMD) = boom;
                                        DIAG_REC_STR(&base, DIAG_REC_PROC, row, PR_COMM) = boom;
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, row, PR_PID) = next_pid++;
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, row, PR_RSS) = 64 << 20;
                                        DIAG_REC_NUM(&base, DIAG_REC_PROC, row, PR_STATE) = 'S';
                                }
                        } else if (k * interval_s / 3600 == 12 && pt->nrows > procs) {
                                pt->nrows = procs;      /* killed: the extra rows were sorted last (high pids) */
                        }
                        diag_rec_sort(&base, DIAG_REC_PROC);

                        if ((r = diag_rec_interval_copy(&iv, &base)) < 0)
                                fail("memory", r);
                        iv.t[DIAG_REC_EVENT].nrows = 0;
                        if (k % 2000 == 1999) {
                                ssize_t e = diag_rec_add_row(&iv, DIAG_REC_EVENT);
                                if (e >= 0) {
                                        DIAG_REC_STR(&iv, DIAG_REC_EVENT, e, EV_KIND) = diag_rec_intern(strings, DIAG_REC_EV_OOM, strlen(DIAG_REC_EV_OOM));
                                        DIAG_REC_STR(&iv, DIAG_REC_EVENT, e, EV_COMM) = boom;
                                        DIAG_REC_NUM(&iv, DIAG_REC_EVENT, e, EV_TIME_NS) = tk;
                                        DIAG_REC_NUM(&iv, DIAG_REC_EVENT, e, EV_PID) = next_pid - 1;
                                        DIAG_REC_NUM(&iv, DIAG_REC_EVENT, e, EV_RSS) = 64 << 20;
                                }
                        }
                        iv.seq = k;
                        iv.realtime_ns = tk;
                        iv.boottime_ns = b0 + (int64_t) k * interval_s * 1000000000LL;
                        iv.interval_ms = interval_s * 1000;
                        iv.took_us = 3000;
                        iv.late_us = 100;
                        if (key) {
                                if (in_frame) {
                                        save_raw(&raw);
                                        r = diag_rec_writer_add(w, raw.data, raw.len, in_frame, frame_key, frame_first, frame_last);
                                        if (r < 0)
                                                fail("frame", r);
                                        raw.len = 0;
                                        in_frame = 0;
                                }
                                diag_rec_encoder_key(enc);
                                frame_key = true;
                        }
                        if (!in_frame)
                                frame_first = tk;
                        if ((r = diag_rec_encode(enc, &iv, &raw)) < 0)
                                fail("encode", r);
                        in_frame++;
                        frame_last = tk;
                        if (in_frame * interval_s >= flush_s) {
                                save_raw(&raw);
                                r = diag_rec_writer_add(w, raw.data, raw.len, in_frame, frame_key, frame_first, frame_last);
                                if (r < 0)
                                        fail("frame", r);
                                raw.len = 0;
                                in_frame = 0;
                                frame_key = false;
                                if ((r = diag_rec_writer_flush(w)) < 0)
                                        fail("write", r);
                        }
                }
                if (in_frame && (r = diag_rec_writer_add(w, raw.data, raw.len, in_frame, frame_key, frame_first, frame_last)) < 0)
                        fail("frame", r);
                printf("%llu intervals of %zu processes\n", (unsigned long long) n, base.t[DIAG_REC_PROC].nrows);
        }
        if ((r = diag_rec_writer_close(w)) < 0)
                fail("write", r);
        diag_rec_interval_free(&base);
        diag_rec_interval_free(&iv);
        diag_rec_encoder_free(enc);
        diag_rec_strings_free(strings);
        diag_rec_buf_free(&raw);
        return 0;
}
