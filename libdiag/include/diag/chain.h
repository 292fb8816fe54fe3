/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * The wait-for graph: a thread waits for a resource that a thread (or, for file
 * locks, a process) holds. Cycles in it are deadlocks.
 */

enum diag_wait_kind {
        DIAG_WAIT_FUTEX = 0,
        DIAG_WAIT_FILELOCK,
        DIAG_WAIT_PIPE,
        DIAG_WAIT_SOCKET,
        DIAG_WAIT_CHILD,
};

struct diag_wait_edge {
        pid_t from_pid, from_tid;
        pid_t to_pid, to_tid;           /* to_tid 0: any thread of to_pid (a file lock is held by a process) */
        enum diag_wait_kind kind;
        char *resource;                 /* "mutex cache_lock", "FLOCK WRITE /var/lib/x" (owned by the graph) */
        const void *data;               /* the collector's record for the resource */
};

struct diag_waitgraph {
        struct diag_wait_edge *edges;
        size_t n, alloc;
};

/* Copies e; resource is duplicated. */
int diag_waitgraph_add(struct diag_waitgraph *g, const struct diag_wait_edge *e);
void diag_waitgraph_clear(struct diag_waitgraph *g);

/* Calls fn once for every simple, chordless cycle with the indexes of its edges
 * in wait order (each edge's target is the next edge's source). A cycle with a
 * shortcut inside holds a shorter one, which is reported instead. At most max cycles;
 * returns how many were found. */
typedef void (*diag_cycle_fn)(const struct diag_waitgraph *g, const size_t *edges, size_t n, void *ud);
size_t diag_waitgraph_cycles(const struct diag_waitgraph *g, size_t max, diag_cycle_fn fn, void *ud);
