/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "diag/chain.h"
#include "diag/util.h"

int diag_waitgraph_add(struct diag_waitgraph *g, const struct diag_wait_edge *e) {
        if (DIAG_GROW(g->edges, g->alloc, g->n + 1) < 0)
                return -ENOMEM;
        g->edges[g->n] = *e;
        g->edges[g->n].resource = e->resource ? strdup(e->resource) : NULL;
        if (e->resource && !g->edges[g->n].resource)
                return -ENOMEM;
        g->n++;
        return 0;
}

void diag_waitgraph_clear(struct diag_waitgraph *g) {
        for (size_t i = 0; i < g->n; i++)
                free(g->edges[i].resource);
        free(g->edges);
        memset(g, 0, sizeof *g);
}

/* Does edge b start where edge a ends? */
static bool follows(const struct diag_wait_edge *a, const struct diag_wait_edge *b) {
        if (a->to_tid)
                return b->from_tid == a->to_tid;
        return b->from_pid == a->to_pid;
}

struct walk {
        const struct diag_waitgraph *g;
        size_t *path, depth, found, max;
        bool *on_path;
        diag_cycle_fn fn;
        void *ud;
};

/* A chord: some edge of the cycle already leads to a later one but the next.
 * "A waits for process P; P's thread 1 waits for P's thread 2; thread 2 waits
 * for A" holds the shorter cycle A -> thread 2 -> A, which is the deadlock. */
static bool chordless(const struct diag_waitgraph *g, const size_t *path, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                        if (j == i || j == (i + 1) % n)
                                continue;
                        if (follows(&g->edges[path[i]], &g->edges[path[j]]))
                                return false;
                }
        return true;
}

/* Simple cycles, each reported once: a cycle is found only from its lowest edge
 * index, and the walk never steps onto an edge below the start. The graphs are
 * small (blocked threads of a host), so a plain DFS does. */
static void dfs(struct walk *w, size_t start, size_t cur) {
        if (w->found >= w->max)
                return;
        for (size_t nx = start; nx < w->g->n; nx++) {
                if (!follows(&w->g->edges[cur], &w->g->edges[nx]))
                        continue;
                if (nx == start) {
                        if (!chordless(w->g, w->path, w->depth))
                                continue;
                        w->fn(w->g, w->path, w->depth, w->ud);
                        if (++w->found >= w->max)
                                return;
                        continue;
                }
                if (w->on_path[nx])
                        continue;
                /* one edge per thread on a path: a thread waits for one thing */
                {
                        bool same_thread = false;
                        for (size_t i = 0; i < w->depth; i++)
                                if (w->g->edges[w->path[i]].from_tid == w->g->edges[nx].from_tid)
                                        same_thread = true;
                        if (same_thread)
                                continue;
                }
                w->on_path[nx] = true;
                w->path[w->depth++] = nx;
                dfs(w, start, nx);
                w->depth--;
                w->on_path[nx] = false;
        }
}

size_t diag_waitgraph_cycles(const struct diag_waitgraph *g, size_t max, diag_cycle_fn fn, void *ud) {
        struct walk w = { .g = g, .max = max ? max : 100, .fn = fn, .ud = ud };

        if (!g->n)
                return 0;
        w.path = calloc(g->n, sizeof *w.path);
        w.on_path = calloc(g->n, sizeof *w.on_path);
        if (!w.path || !w.on_path) {
                free(w.path);
                free(w.on_path);
                return 0;
        }
        for (size_t s = 0; s < g->n && w.found < w.max; s++) {
                w.path[0] = s;
                w.depth = 1;
                w.on_path[s] = true;
                dfs(&w, s, s);
                w.on_path[s] = false;
        }
        free(w.path);
        free(w.on_path);
        return w.found;
}
