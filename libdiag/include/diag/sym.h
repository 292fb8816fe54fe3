/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/mem.h"

/*
 * Symbols across processes, and a peek at the stack of a thread blocked in a
 * system call without stopping it.
 *
 * Every ELF file is loaded once (keyed by device and inode from the maps), so a
 * scan of hundreds of processes that share libc symbolizes against one copy.
 * Only symbol tables and .eh_frame are read, never DWARF.
 *
 * The peek: a thread blocked in a system call sits still, and /proc gives its
 * stack pointer and pc. From there CFI finds each caller as long as the frame
 * address is the stack pointer plus a constant, which holds for the libc frames
 * between the syscall and the locking function that called it. It stops at the
 * first frame that needs another register (a frame pointer) — a few frames, with
 * no stop of the thread. x86_64 only (aarch64 keeps the return address in a
 * register the peek cannot see: one frame there).
 */

struct diag_symcache;

struct diag_peek_frame {
        uint64_t pc;
        const char *func;       /* owned by the cache; NULL if unknown */
        uint64_t off;
        const char *module;     /* path from the maps, owned by the cache */
};

int diag_symcache_new(struct diag_symcache **ret);
struct diag_symcache *diag_symcache_free(struct diag_symcache *c);
static inline void diag_symcache_freep(struct diag_symcache **c) { diag_symcache_free(*c); }

/* Function containing addr in a process with these maps. -ENOENT if not in a
 * file-backed mapping or no symbol covers it. */
int diag_symcache_lookup(struct diag_symcache *c, const struct diag_maps *maps, uint64_t addr,
                         const char **ret_func, uint64_t *ret_off, const char **ret_module);

/* Up to max frames of pid's thread blocked with this sp and pc (from
 * /proc/PID/task/TID/syscall). Returns the number of frames (>= 1 when pc is
 * known), never stops anything. */
size_t diag_symcache_peek(struct diag_symcache *c, pid_t pid, const struct diag_maps *maps,
                          uint64_t sp, uint64_t pc, struct diag_peek_frame *frames, size_t max);

/* The data symbol at addr ("cache_lock", with its offset), for naming locks. */
int diag_symcache_data_symbol(struct diag_symcache *c, const struct diag_maps *maps, uint64_t addr,
                              const char **ret_name, uint64_t *ret_off, const char **ret_module);
