/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the /proc text decoders — /proc/sysvipc/shm, a message
 * queue's QSIZE line, and the shared-memory names of /proc/PID/maps paths. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag/shm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        struct diag_shm_seg *segs = NULL;
        struct diag_mqueue q;
        enum diag_shm_kind kind;
        int32_t key;
        size_t n = 0;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;
        (void) diag_shm_parse_sysvipc(text, &segs, &n);
        for (size_t i = 0; i < n; i++)
                diag_shm_seg_clear(&segs[i]);
        free(segs);
        (void) diag_mqueue_parse(text, &q);
        (void) diag_shm_classify_map(text, &kind, &key);
        free(text);
        return 0;
}
