/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "diag/chain.h"
#include "diag/util.h"
#include "tap.h"

static size_t ncycles, lens[8];
static pid_t firsts[8];

static void on_cycle(const struct diag_waitgraph *g, const size_t *e, size_t n, void *ud) {
        (void) ud;
        if (ncycles < 8) {
                lens[ncycles] = n;
                firsts[ncycles] = g->edges[e[0]].from_tid;
        }
        ncycles++;
        /* each edge's target is the next edge's source */
        for (size_t i = 0; i < n; i++) {
                const struct diag_wait_edge *a = &g->edges[e[i]], *b = &g->edges[e[(i + 1) % n]];
                CHECK(a->to_tid ? a->to_tid == b->from_tid : a->to_pid == b->from_pid);
        }
}

static void edge(struct diag_waitgraph *g, pid_t fp, pid_t ft, pid_t tp, pid_t tt, const char *res) {
        struct diag_wait_edge e = { .from_pid = fp, .from_tid = ft, .to_pid = tp, .to_tid = tt, .resource = (char *) res };
        CHECK_INT(diag_waitgraph_add(g, &e), 0);
}

int main(void) {
        struct diag_waitgraph g = {};

        /* no cycle: a chain */
        edge(&g, 1, 11, 1, 12, "m1");
        edge(&g, 1, 12, 2, 0, "flock a");
        CHECK_INT(diag_waitgraph_cycles(&g, 10, on_cycle, NULL), 0);
        diag_waitgraph_clear(&g);

        /* ABBA between two threads: one cycle of two, reported once */
        ncycles = 0;
        edge(&g, 1, 11, 1, 12, "m2");
        edge(&g, 1, 12, 1, 11, "m1");
        CHECK_INT(diag_waitgraph_cycles(&g, 10, on_cycle, NULL), 1);
        CHECK_INT(ncycles, 1);
        CHECK_INT(lens[0], 2);
        CHECK_STR(g.edges[0].resource, "m2");
        diag_waitgraph_clear(&g);

        /* across processes through file locks (held by a process: to_tid 0) and a mutex */
        ncycles = 0;
        edge(&g, 10, 10, 20, 0, "flock B");     /* pid 10 waits for B, held by process 20 */
        edge(&g, 20, 21, 20, 22, "mutex m");    /* thread 21 of 20 waits for mutex owned by 22 */
        edge(&g, 20, 22, 10, 0, "flock A");     /* thread 22 waits for A, held by process 10 */
        edge(&g, 30, 30, 10, 0, "flock A");     /* a bystander waiting into the cycle: not in it */
        /* 10 -> 21 -> 22 -> 10 has a shortcut (10 -> 22 directly): only 10 <-> 22 is the deadlock */
        CHECK_INT(diag_waitgraph_cycles(&g, 10, on_cycle, NULL), 1);
        CHECK_INT(lens[0], 2);
        CHECK(firsts[0] == 10);
        diag_waitgraph_clear(&g);

        /* max caps the search */
        ncycles = 0;
        edge(&g, 1, 1, 1, 2, "a");
        edge(&g, 1, 2, 1, 1, "b");
        edge(&g, 1, 3, 1, 4, "c");
        edge(&g, 1, 4, 1, 3, "d");
        CHECK_INT(diag_waitgraph_cycles(&g, 1, on_cycle, NULL), 1);
        diag_waitgraph_clear(&g);
        CHECK_INT(diag_waitgraph_cycles(&g, 10, on_cycle, NULL), 0);

        /* every end has its stable JSON word */
        for (int e = DIAG_END_NONE; e <= DIAG_END_IDLE; e++)
                CHECK(strcmp(diag_end_name((enum diag_end) e), "?") != 0);
        CHECK_STR(diag_end_name(DIAG_END_IDLE), "idle");
        CHECK_STR(diag_end_name(DIAG_END_ONCPU), "on-cpu");
        return TAP_DONE();
}
