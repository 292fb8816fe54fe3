/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "diag/mem.h"
#include "diag/util.h"
#include "tap.h"

static int stack_var_probe(void) { return 7; }

int main(void) {
        struct diag_map mp;
        struct diag_maps *m = NULL;
        const struct diag_map *f;
        char secret[64] = "diagkit memory read check";
        char buf[64] = "";
        struct iovec l[3], r[3];
        size_t done[3];
        char a[16], b[16], c[16];
        void *hole;

        CHECK_INT(diag_maps_parse_line("7f3a2c800000-7f3a2c828000 r--p 00000000 fe:01 1835123    /usr/lib/x86_64-linux-gnu/libc.so.6", &mp), 0);
        CHECK_INT(mp.start, 0x7f3a2c800000ULL);
        CHECK_INT(mp.end, 0x7f3a2c828000ULL);
        CHECK_INT(mp.dev_major, 0xfe); CHECK_INT(mp.dev_minor, 1);
        CHECK_INT(mp.inode, 1835123);
        CHECK_STR(mp.perms, "r--p");
        CHECK_STR(mp.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        free(mp.path);
        CHECK_INT(diag_maps_parse_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ", &mp), 0);
        CHECK_STR(mp.path, "");
        free(mp.path);
        CHECK_INT(diag_maps_parse_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 /tmp/a file (deleted)", &mp), 0);
        CHECK_STR(mp.path, "/tmp/a file (deleted)");
        free(mp.path);
        CHECK_INT(diag_maps_parse_line("garbage", &mp), -EINVAL);
        CHECK_INT(diag_maps_parse_line("2000-1000 rw-p 00000000 00:00 0", &mp), -EINVAL);

        CHECK_INT(diag_maps_read(getpid(), &m), 0);
        CHECK(m && m->n > 5);
        f = diag_maps_find(m, (uint64_t) (uintptr_t) &stack_var_probe);
        CHECK(f && f->perms[2] == 'x');
        f = diag_maps_find(m, (uint64_t) (uintptr_t) buf);
        CHECK(f && strcmp(f->path, "[stack]") == 0);
        CHECK(diag_maps_find(m, 0) == NULL);
        diag_maps_free(m);
        CHECK_INT(diag_maps_read(999999999, &m), -ESRCH);

        CHECK_INT(diag_mem_read(getpid(), (uint64_t) (uintptr_t) secret, buf, sizeof secret), sizeof secret);
        CHECK_STR(buf, secret);

        /* a batch with an unreadable pair in the middle: its neighbours still come through */
        hole = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(hole != MAP_FAILED);
        memcpy(a, "first", 6); memcpy(c, "third", 6);
        l[0] = (struct iovec) { b, 6 }; r[0] = (struct iovec) { a, 6 };
        l[1] = (struct iovec) { buf, 6 }; r[1] = (struct iovec) { hole, 6 };
        l[2] = (struct iovec) { a, 6 }; r[2] = (struct iovec) { c, 6 };
        CHECK_INT(diag_mem_readv(getpid(), l, r, 3, done), 0);
        CHECK_INT(done[0], 6); CHECK_INT(done[1], 0); CHECK_INT(done[2], 6);
        CHECK_STR(b, "first");
        CHECK_STR(a, "third");
        munmap(hole, 4096);
        return TAP_DONE() + stack_var_probe() * 0;
}
