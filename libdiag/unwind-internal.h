/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <elfutils/libdwfl.h>

#include "diag/unwind.h"

/* Dwfl_Callbacks.find_debuginfo for every Dwfl of libdiag: Debian's compressed
 * debug files through their decompressed copy; then libdw's standard search,
 * only where it can find something (without DEBUGINFOD_URLS its debuginfod
 * fallback would load libcurl and its TLS libraries for nothing). */
int diag_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                        const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                        char **debuginfo_file_name);

/*
 * For sampled stacks (perf.c): unwind one thread's registers and stack copy taken
 * at a sample. Memory outside the copy is never read from the process, whose stack
 * has moved on since; the ELF files of its modules are. Frames are appended to
 * ret (which may already hold kernel frames); max_frames counts them all. An
 * unwinder used this way is not used with diag_unwind().
 */
int diag_unwind_copy(struct diag_unwinder *u, const struct diag_thread_capture *t,
                     size_t max_frames, bool inlines, struct diag_stack *ret);

/* Whether some module reported for the unwinder holds addr. */
bool diag_unwinder_covers(struct diag_unwinder *u, uint64_t addr);

/* Whether /proc/PID/maps gave any module at all (empty once an exiting process
 * has released its memory). */
bool diag_unwinder_has_modules(struct diag_unwinder *u);
