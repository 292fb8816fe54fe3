/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the libatbus channel decoder on any bytes — header checks,
 * the block walk with hashes, node and block reads, the rate counter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag/shm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct diag_atbus c;
        struct diag_atbus_check k;
        char err[256];
        uint8_t *copy;

        (void) diag_shm_detect(data, size);
        /* a private copy: reads past the end are caught exactly */
        copy = malloc(size ? size : 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        if (diag_atbus_parse(copy, size, &c, err, sizeof err) == 0) {
                struct diag_atbus_node nd;
                uint64_t blocks, bytes;
                uint32_t h;

                if (diag_atbus_check(&c, true, 8, &k) == 0)
                        diag_atbus_check_clear(&k);
                for (uint64_t i = 0; i < c.node_count && i < 64; i++) {
                        diag_atbus_node(&c, (c.read_cur + i) % c.node_count, &nd);
                        if (nd.start)
                                (void) diag_atbus_block_hash(&c, nd.index, nd.size, &h);
                }
                diag_atbus_count_blocks(&c, c.read_cur, c.write_cur, &blocks, &bytes);
                diag_atbus_count_blocks(&c, c.write_cur, c.read_cur, &blocks, &bytes);
        }
        free(copy);
        return 0;
}
