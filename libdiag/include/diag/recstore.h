/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * diag-record's storage: a directory of segment files forming a ring capped in size
 * (the oldest segment is removed first). A segment is a header and a sequence of
 * frames; a frame is one zstd-compressed run of the codec's bytes (one or more
 * intervals), framed with its length and CRC-32C checksums of header and payload.
 * On-disk layout: docs/diag-record-format.md.
 *
 * Writer: frames are compressed as they are handed over and kept in a bounded
 * in-memory queue until written; diag_rec_writer_flush() writes the queue and
 * fdatasync()s. When a write fails (disk full, EIO) the frames stay queued; past the
 * queue's size the oldest queued frames are dropped and counted. Nothing is allocated
 * per frame once the queue and the compression context exist.
 *
 * Reader: walks the segments oldest first and hands out each frame's decompressed
 * bytes. A torn or corrupt frame is reported through the warn callback (one line:
 * segment, offset, bytes skipped, why) and skipped; the reader then looks for the
 * next frame header in that segment. Never a crash, never a frame whose checksum fails.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIAG_REC_SEGMENT_PREFIX "seg-"
#define DIAG_REC_SEGMENT_SUFFIX ".drec"

struct diag_rec_frame_info {
        uint64_t seq;                   /* frame sequence number, +1 per frame of a recording */
        uint64_t prev_seq;              /* the frame the first interval is a delta of (== seq - 1), or 0 */
        bool key;                       /* starts with a key interval: decodable alone */
        uint32_t nintervals;
        int64_t first_ns, last_ns;      /* CLOCK_REALTIME of the first and last interval */
        uint64_t segment;               /* the segment's number */
        uint64_t offset;                /* of the frame's header in the segment file */
        uint32_t raw_len, zlen;         /* decompressed and compressed sizes */
};

struct diag_rec_writer_opts {
        uint64_t max_size;              /* the ring's cap in bytes (default 1 GiB) */
        uint64_t segment_size;          /* 0: max_size / 16, within [1 MiB, 64 MiB] (and <= max_size / 2) */
        size_t queue_size;              /* bytes of compressed frames kept while writes fail (default 16 MiB) */
        int zstd_level;                 /* default 3 */
        uint32_t interval_ms;           /* written in each segment header */
};

struct diag_rec_writer_stats {
        uint64_t frames_written, bytes_written;
        uint64_t frames_dropped, intervals_dropped;     /* dropped from the queue (disk full) */
        uint64_t segments_removed;
        int last_error;                 /* negative errno of the last failed write, 0 when none */
};

struct diag_rec_writer;
/* Open (create, 0700) dir; a recording already there is continued (a new segment is
 * started after the newest; frame seq numbers continue). 0 or negative errno. */
int diag_rec_writer_open(struct diag_rec_writer **ret, const char *dir, const struct diag_rec_writer_opts *opts);
/* Compress raw (the codec's bytes of n intervals) into a frame and queue it. key: the
 * first interval is a key interval. 0 or negative errno (-ENOMEM, -E2BIG for a frame
 * larger than the queue). The frame is on disk only after a flush. */
int diag_rec_writer_add(struct diag_rec_writer *w, const void *raw, size_t len, uint32_t n, bool key,
                        int64_t first_ns, int64_t last_ns);
/* The next frame will not be linked to the previous one (after a drop the codec
 * must start a key interval): true when a frame was dropped since the last call. */
bool diag_rec_writer_chain_broken(struct diag_rec_writer *w);
/* Write queued frames, rotating segments and removing the oldest past max_size,
 * then fdatasync. 0, or negative errno (frames still queued). */
int diag_rec_writer_flush(struct diag_rec_writer *w);
void diag_rec_writer_stats(const struct diag_rec_writer *w, struct diag_rec_writer_stats *st);
/* Flush and close. Returns the flush's status. */
int diag_rec_writer_close(struct diag_rec_writer *w);

typedef void (*diag_rec_warn_fn)(void *userdata, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct diag_rec_reader;
/* Open a recording directory for reading (a live one too). 0 or negative errno
 * (-ENOENT: no segment there). */
int diag_rec_reader_open(struct diag_rec_reader **ret, const char *dir, diag_rec_warn_fn warn, void *userdata);
/* The next good frame: 1 with *raw and *len valid until the next call, 0 at the end
 * (a live recording may grow: call again later), negative errno on I/O errors. */
int diag_rec_reader_next(struct diag_rec_reader *r, const uint8_t **raw, size_t *len,
                         struct diag_rec_frame_info *info);
/* Position before the last key frame whose first interval is <= t (or the first
 * frame), for --at and --from without decoding everything before. */
int diag_rec_reader_seek(struct diag_rec_reader *r, int64_t realtime_ns);
/* What was skipped so far: frames with bad checksums, torn tails, bytes. */
struct diag_rec_reader_stats {
        uint64_t frames, bad_frames, torn_tails, bytes_skipped, segments;
};
void diag_rec_reader_stats(const struct diag_rec_reader *r, struct diag_rec_reader_stats *st);
void diag_rec_reader_close(struct diag_rec_reader *r);

/* CRC-32C (Castagnoli), as in the frame headers. */
uint32_t diag_crc32c(uint32_t crc, const void *data, size_t len);
