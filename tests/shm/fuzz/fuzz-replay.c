/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Without libFuzzer: run a target once on each file named (the seed corpus and
 * any crash found), with whatever sanitizers the build has. */
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "diag/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
        int bad = 0;

        for (int i = 1; i < argc; i++) {
                char *buf = NULL;
                size_t len = 0;

                if (diag_read_file_at(AT_FDCWD, argv[i], 64 << 20, &buf, &len) < 0) {
                        fprintf(stderr, "%s: cannot read\n", argv[i]);
                        bad = 1;
                        continue;
                }
                LLVMFuzzerTestOneInput((const uint8_t *) buf, len);
                free(buf);
        }
        printf("%d inputs replayed\n", argc - 1);
        return bad;
}
