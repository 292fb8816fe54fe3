/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Reads of target memory: process_vm_readv, /proc/PID/mem as fallback. Never writes. */

/* Read len bytes at addr. Returns bytes read (may be short at an unmapped
 * boundary) or negative errno. */
ssize_t diag_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);

/* Batch: local[i] <- remote[i] for n pairs, as few syscalls as possible.
 * Fills done[i] with bytes read for each pair (0 on failure). Returns 0, or
 * negative errno if nothing at all could be read. */
int diag_mem_readv(pid_t pid, const struct iovec *local, const struct iovec *remote,
                   size_t n, size_t *done);

/* /proc/PID/maps */
struct diag_map {
        uint64_t start, end, offset;
        unsigned dev_major, dev_minor;
        uint64_t inode;
        char perms[5];          /* "r-xp" */
        char *path;             /* "" for anonymous, "[stack]", "/usr/lib/... (deleted)" */
};

struct diag_maps {
        pid_t pid;
        size_t n;
        struct diag_map *maps;  /* sorted by start */
};

int diag_maps_read(pid_t pid, struct diag_maps **ret);
struct diag_maps *diag_maps_free(struct diag_maps *m);
static inline void diag_maps_freep(struct diag_maps **m) { diag_maps_free(*m); }
/* Mapping that contains addr, or NULL. */
const struct diag_map *diag_maps_find(const struct diag_maps *m, uint64_t addr);
/* Parse one maps line (exposed for tests). path points into a malloc'd copy. */
int diag_maps_parse_line(const char *line, struct diag_map *ret);
