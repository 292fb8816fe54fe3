/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: a segment laid out as a C struct from DWARF (this program's
 * own), on any bytes of any length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag/shm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a header with one of each kind of member the formatter handles */
struct fuzz_shm_header {
        char magic[12];
        signed char sc;
        short s;
        int i;
        long long ll;
        unsigned long long ull;
        float f;
        double d;
        _Bool b;
        void *p;
        enum fuzz_kind { FUZZ_A = 1, FUZZ_B = 7 } e;
        struct { unsigned a : 3, b : 5; unsigned short arr[5]; } inner;
        union { uint32_t u; float uf; } un;
        _Atomic unsigned long at;
        const volatile int cv;
};
struct fuzz_shm_header fuzz_shm_header_instance;

static char self[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        (void) argc;
        (void) argv;
        self[k > 0 ? k : 0] = 0;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct diag_struct_layout *l = NULL;
        uint8_t *copy = malloc(size ? size : 1);

        if (!copy)
                return 0;
        memcpy(copy, data, size);
        if (!self[0])
                LLVMFuzzerInitialize(NULL, NULL);
        if (diag_struct_layout(self, "fuzz_shm_header", copy, size, &l) == 0)
                diag_struct_layout_free(l);
        free(copy);
        return 0;
}
