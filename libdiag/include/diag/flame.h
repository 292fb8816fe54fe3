/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * A merged stack tree (a flame graph's model): add stacks of frame names with a
 * count, then write it as collapsed stacks (flamegraph.pl / speedscope / inferno
 * input), as a self-contained interactive SVG, or walk it for a text tree.
 */

enum diag_flame_kind {
        DIAG_FLAME_NATIVE = 0,
        DIAG_FLAME_PYTHON,
        DIAG_FLAME_KERNEL,
        DIAG_FLAME_ROOT,                /* process / thread roots added by the caller */
};

struct diag_flame_frame {
        const char *name;               /* "func", copied */
        const char *detail;             /* "file.c:57 (libc.so.6)" for hover, copied, may be NULL */
        enum diag_flame_kind kind;
};

struct diag_flame_node {
        char *name, *detail;
        enum diag_flame_kind kind;
        uint64_t total;                 /* samples in this node and below */
        uint64_t self;                  /* samples whose leaf is this node */
        struct diag_flame_node *children;       /* first child (sorted by total, descending, after diag_flame_sort) */
        struct diag_flame_node *next;           /* next sibling */
};

struct diag_flame;

int diag_flame_new(struct diag_flame **ret);
struct diag_flame *diag_flame_free(struct diag_flame *f);
static inline void diag_flame_freep(struct diag_flame **f) { diag_flame_free(*f); }
/* frames[0] is the root-most (outermost) frame, frames[n-1] the leaf. Frames merge
 * by name and kind; a node keeps the first non-NULL detail. n == 0 counts in the
 * root's self; more than 10000 frames: -E2BIG. */
int diag_flame_add(struct diag_flame *f, const struct diag_flame_frame *frames, size_t n, uint64_t count);
/* Sort every level by total, descending (ties by name). */
void diag_flame_sort(struct diag_flame *f);
const struct diag_flame_node *diag_flame_root(const struct diag_flame *f);   /* name "all" */
/* Nodes in the tree, the root not counted. */
size_t diag_flame_node_count(const struct diag_flame *f);
/* "a;b;c 12\n" per leaf path, as flamegraph.pl reads; ';' and newlines in names
 * replaced. */
int diag_flame_write_folded(const struct diag_flame *f, FILE *out);
/* Self-contained SVG: hover shows name, detail, samples and percent; click zooms
 * into a frame; a search box highlights matches; no network. Frames under 0.1 %
 * of the whole are left out (counted on the root). The URL hash
 * "#zoom=NAME&search=REGEX" (URL-encoded) is applied at load: the widest frame of
 * that name is zoomed into. */
int diag_flame_write_svg(const struct diag_flame *f, const char *title, const char *subtitle, FILE *out);
