/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/ptrace.h"

/*
 * Unwinding from captured copies and symbolizing with libdw (Dwfl). The target is
 * running again by the time this runs; only its stack copies and mapped ELF files
 * are read (plus process_vm_readv for the rare read outside the copied stack).
 */

enum diag_debuginfo {
        DIAG_DEBUG_UNKNOWN = 0,         /* not looked at (module had no frames) */
        DIAG_DEBUG_FOUND,               /* DWARF found (in the file or a matching .debug) */
        DIAG_DEBUG_MISSING,             /* symbol table only, or nothing */
        DIAG_DEBUG_MISMATCH,            /* a .debug file exists but its build-id differs */
};
const char *diag_debuginfo_name(enum diag_debuginfo d);

struct diag_module {
        char *path;
        uint64_t start, end;
        char build_id[41];              /* hex, "" if none */
        enum diag_debuginfo debuginfo;
        char *debug_path;               /* where DWARF came from, or the mismatching file */
        char *debug_note;               /* e.g. "build-id 1a2b... expected 9f8e..." */
        bool used;                      /* some frame is in it */
};

/* A frame's strings belong to the unwinder and live until diag_unwinder_free(). */
struct diag_frame {
        uint64_t pc;                    /* address as unwound */
        bool activation;                /* pc is exact (innermost or signal frame), else a return address */
        int module;                     /* index into the unwinder's modules, -1 none */
        char *func;                     /* NULL if unknown */
        uint64_t func_off;
        char *file;                     /* source file when DWARF line info exists */
        int line;
        bool inlined;                   /* an inlined call, shown above its physical frame */
        bool python;                    /* a CPython frame read from the interpreter (diag/pyframes.h):
                                         * func is the qualified name, file:line the source line */
        bool kernel;                    /* a kernel frame (sampled callchains only) */
};

struct diag_stack {
        size_t n;
        struct diag_frame *frames;
        int err;                        /* 0, or negative errno of why unwinding stopped early */
        char *err_msg;                  /* libdw's word for it, NULL if none */
        bool truncated;                 /* hit max_frames */
};

struct diag_unwinder;

/* Report pid's modules (from /proc/PID/maps). Do this before the capture. */
int diag_unwinder_new(pid_t pid, struct diag_unwinder **ret);
struct diag_unwinder *diag_unwinder_free(struct diag_unwinder *u);
static inline void diag_unwinder_freep(struct diag_unwinder **u) { diag_unwinder_free(*u); }

/* Unwind one captured thread. inlines: expand inlined frames; source: file:line. */
int diag_unwind(struct diag_unwinder *u, const struct diag_capture *c, size_t thread_idx,
                size_t max_frames, bool inlines, struct diag_stack *ret);
void diag_stack_clear(struct diag_stack *s);
/* Same frames (by pc) — used to group threads. */
bool diag_stack_equal(const struct diag_stack *a, const struct diag_stack *b);

size_t diag_unwinder_n_modules(const struct diag_unwinder *u);
const struct diag_module *diag_unwinder_module(const struct diag_unwinder *u, size_t i);

/* Symbolize a single address in pid without a capture (used by diag-locks for lock
 * addresses in data). ret_func/ret_module may be NULL. */
int diag_unwinder_symbolize(struct diag_unwinder *u, uint64_t addr, char **ret_func,
                            uint64_t *ret_off, int *ret_module);

/* One thread's top frames as text ("func+0x12 (libc.so.6) file.c:57"), from a
 * capture that stops only that thread, for the instant of the copy. *ret is a
 * NULL-terminated array of strings, freed with diag_strv_free(). */
int diag_unwind_thread_lines(pid_t pid, pid_t tid, size_t max_frames, char ***ret);
void diag_strv_free(char **v);
