/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag/chain.h"
#include "diag/proc.h"
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

/* A child that pauses (and, with grandchild, has a child that pauses). */
static pid_t pausing_child(bool grandchild, int *ret_ready) {
        int p[2];
        pid_t pid;

        if (pipe(p) < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                if (grandchild && fork() == 0) {
                        close(p[0]);
                        (void) !write(p[1], "g", 1);
                        pause();
                        _exit(0);
                }
                close(p[0]);
                (void) !write(p[1], "c", 1);
                pause();
                _exit(0);
        }
        close(p[1]);
        *ret_ready = p[0];
        return pid;
}

/* A lineage: self, ancestors, descendants; a sibling is not in it. */
static void test_lineage(void) {
        struct diag_lineage l, lc;
        int ready, ready2;
        char buf[2];
        pid_t child = pausing_child(true, &ready), sibling = pausing_child(false, &ready2), grand = 0;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        CHECK(child > 0 && sibling > 0);
        for (ssize_t got = 0, r = 1; got < 2 && r > 0; got += r)
                r = read(ready, buf, (size_t) (2 - got));
        CHECK_INT(read(ready2, buf, 1), 1);
        /* the grandchild: the one process whose parent is the child */
        CHECK_INT(diag_proc_list_pids(&pids, &n), 0);
        for (size_t i = 0; i < n; i++) {
                pid_t pp;
                if (diag_proc_read_ppid(pids[i], &pp) == 0 && pp == child)
                        grand = pids[i];
        }
        CHECK(grand > 0);

        CHECK_INT(diag_lineage_init(getpid(), &l), 0);
        CHECK(l.nup >= 1 && l.up[0] == getppid());
        CHECK(diag_lineage_has(&l, getpid()));
        CHECK(diag_lineage_has(&l, getppid()));
        CHECK(diag_lineage_has(&l, child));
        CHECK(diag_lineage_has(&l, grand));
        CHECK(!diag_lineage_has(&l, 0));

        /* the child's lineage: this process is its ancestor, its sibling is not in it */
        CHECK_INT(diag_lineage_init(child, &lc), 0);
        CHECK(diag_lineage_has(&lc, getpid()));
        CHECK(diag_lineage_has(&lc, grand));
        CHECK(!diag_lineage_has(&lc, sibling));

        kill(child, SIGKILL);
        kill(sibling, SIGKILL);
        kill(grand, SIGKILL);
        waitpid(child, NULL, 0);
        waitpid(sibling, NULL, 0);
        close(ready);
        close(ready2);
        CHECK(diag_lineage_init(child, &lc) < 0);     /* gone */
}

int main(void) {
        struct diag_waitgraph g = {};

        test_lineage();

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
