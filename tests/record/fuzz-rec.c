/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target of diag-record's readers. The first byte picks the reader:
 *   even: the rest is a segment file, read by the store's reader (frames checked,
 *         decompressed) and every frame's payload by the codec's decoder;
 *   odd:  the rest is a frame payload, decoded interval by interval.
 * Built with libFuzzer (tests/record/fuzz.py) or with fuzz-replay.c's main.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag/record.h"
#include "diag/recstore.h"

static void quiet(void *userdata, const char *fmt, ...) {
        (void) userdata;
        (void) fmt;
}

static void decode_all(struct diag_rec_decoder *d, const uint8_t *p, const uint8_t *end) {
        struct diag_rec_interval iv;

        diag_rec_interval_init(&iv, diag_rec_decoder_strings(d));
        for (int n = 0; n < 100000; n++) {
                int r = diag_rec_decode(d, &p, end, &iv);
                if (r == 0 || r == -EBADMSG || r == -ENOMEM)
                        break;
                if (r == 1) {
                        /* every string id a row holds must be defined */
                        for (int t = 0; t < DIAG_REC_NTABLES; t++)
                                for (size_t i = 0; i < iv.t[t].nrows * diag_rec_schemas[t].nstr; i++)
                                        (void) strlen(diag_rec_str(iv.strings, iv.t[t].str[i]));
                }
        }
        diag_rec_interval_free(&iv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void remove_dir(void) {
        if (dir[0])
                rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct diag_rec_decoder *d;

        if (size < 1)
                return 0;
        d = diag_rec_decoder_new();
        if (!d)
                return 0;
        if (data[0] & 1) {
                decode_all(d, data + 1, data + size);
        } else {
                char path[128];
                struct diag_rec_reader *r;
                struct diag_rec_frame_info info;
                const uint8_t *raw;
                size_t len;
                int fd;

                if (!dir[0]) {
                        snprintf(dir, sizeof dir, "/tmp/diag-rec-fuzz-XXXXXX");
                        if (!mkdtemp(dir)) {
                                dir[0] = 0;
                                diag_rec_decoder_free(d);
                                return 0;
                        }
                        atexit(remove_dir);
                }
                snprintf(path, sizeof path, "%s/" DIAG_REC_SEGMENT_PREFIX "0000000000000000" DIAG_REC_SEGMENT_SUFFIX,
                         dir);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        if (write(fd, data + 1, size - 1) == (ssize_t) (size - 1) &&
                            diag_rec_reader_open(&r, dir, quiet, NULL) == 0) {
                                for (int n = 0; n < 100000 && diag_rec_reader_next(r, &raw, &len, &info) > 0; n++) {
                                        if (info.key)
                                                diag_rec_decoder_reset(d);
                                        decode_all(d, raw, raw + len);
                                }
                                diag_rec_reader_close(r);
                        }
                        close(fd);
                        unlink(path);
                }
        }
        diag_rec_decoder_free(d);
        return 0;
}
