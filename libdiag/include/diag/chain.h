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

/* ---- following one thread's wait chain ---- */

#include <stdbool.h>
#include <stdint.h>

#include "diag/fdname.h"
#include "diag/net.h"
#include "diag/sym.h"
#include "diag/syscall.h"

struct diag_chain_ctx;

enum diag_node_kind {
        DIAG_NODE_THREAD = 0,   /* a thread, with what it does */
        DIAG_NODE_ENDPOINT,     /* where a chain leaves the host or the process model: remote socket, file */
};

/* Why a chain stops at a node (DIAG_END_NONE: it goes on, into the children). */
enum diag_end {
        DIAG_END_NONE = 0,
        DIAG_END_REMOTE,        /* a socket whose peer is not on this host */
        DIAG_END_DSTATE,        /* uninterruptible sleep: disk, NFS, ... */
        DIAG_END_ONCPU,         /* running: busy, not blocked */
        DIAG_END_SLEEP,         /* nanosleep, pause, sigwait: sleeping by choice */
        DIAG_END_NO_OWNER,      /* a futex without an owner (condvar, semaphore) or an unknown one */
        DIAG_END_NO_PEER,       /* nobody holds the other end (of a pipe, a socket) */
        DIAG_END_FILE,          /* reading or writing a file */
        DIAG_END_CYCLE,         /* a thread already on this path: deadlock */
        DIAG_END_CAPPED,        /* depth or fan-out limit */
        DIAG_END_OTHER,         /* a system call diag-chain does not follow */
        DIAG_END_NOT_BLOCKED,   /* in user space, or stopped */
        DIAG_END_GONE,          /* vanished during the walk */
        DIAG_END_SEEN,          /* this thread's chain is shown elsewhere in the tree */
        DIAG_END_IDLE,          /* an event loop asleep in epoll/poll with the connection in its set: owes no reply yet */
};
const char *diag_end_name(enum diag_end e);

#define DIAG_CHAIN_FRAMES 6

struct diag_chain_node {
        enum diag_node_kind kind;
        int parent;                     /* node index, -1 for the start */
        unsigned depth;
        enum diag_wait_kind via_kind;   /* how the parent waits for this node */
        bool guessed;                   /* picked among its process's threads: none was on the fd */
        char *via;                      /* "FLOCK WRITE /var/lib/x (fd 5)", "mutex cache_lock", "fd 7: tcp A -> B" */
        /* thread */
        pid_t pid, tid;
        char comm[17];
        char state;
        int64_t blocked_ms;             /* -1 unknown or running */
        enum diag_sc_class cls;
        char syscall[256];
        const char *syscall_name;
        struct diag_peek_frame frames[DIAG_CHAIN_FRAMES];
        size_t nframes;
        char wchan[64];
        char *kstack;                   /* D state, when readable */
        bool have_fdname;               /* D state in a call on an fd: what the fd is (file, device, mount) */
        struct diag_fdname fdname;
        /* a start whose CPU rate over a short window was measured (diag_cpu_rates) */
        unsigned pc_hits, pc_samples;   /* on-cpu thread: frames[0] is its hottest sampled pc, seen hits of samples times */
        bool have_cpu_window;
        double cpu_window_pct;          /* 100 = one CPU all the time */
        unsigned cpu_window_ms;
        /* how it ends */
        enum diag_end end;
        char *end_text;
        /* endpoint: a socket's view */
        bool have_sock;
        struct diag_sock sock;          /* path not kept */
        char *sock_text;                /* "tcp A -> B ESTABLISHED" */
};

struct diag_chain {
        struct diag_chain_node *nodes;
        size_t n, alloc;
        bool deadlock;
        bool capped;
        int root;                       /* the node the verdict blames, -1 */
        char *verdict;
};

struct diag_chain_opts {
        unsigned max_depth;             /* default 12 */
        unsigned max_fanout;            /* default 8 */
};

enum {
        DIAG_CHAIN_KSTACK = 1 << 0,     /* read kernel stacks of D-state threads (root) */
};

/* What the scan could not see, for the one line that says so. */
void diag_chain_ctx_unseen(const struct diag_chain_ctx *c, unsigned *ret_denied, unsigned *ret_netns_skipped);

/* The scan behind the walks (every process's fds and sockets, /proc/locks). */
int diag_chain_ctx_new(unsigned flags, struct diag_chain_ctx **ret);
struct diag_chain_ctx *diag_chain_ctx_free(struct diag_chain_ctx *c);
static inline void diag_chain_ctx_freep(struct diag_chain_ctx **c) { diag_chain_ctx_free(*c); }

/* Leave a lineage out (diag_lineage_init: a tool's own run, the shell that
 * waits for it, its children): no walk steps into its processes; a wait whose
 * other end only they hold ends there ("this tool's own run: not followed").
 * The tool's own process is always left out. l must outlive the context. */
struct diag_lineage;
void diag_chain_ctx_exclude(struct diag_chain_ctx *c, const struct diag_lineage *l);
bool diag_chain_ctx_excluded(struct diag_chain_ctx *c, pid_t pid);

/* Blocked threads of pid (state S or D, in a system call), in tid order. */
int diag_chain_blocked_threads(pid_t pid, pid_t **ret, size_t *ret_n);

/*
 * Where threads on a CPU are, without stopping them: a sampling perf event on
 * each thread of pids (user-space instruction pointers, every 1 ms of the
 * thread's CPU time), opened before a measuring window and disabled after it.
 * Threads in no system call have no stack pointer to peek from; this is the
 * only way to say where they run short of a stop. Not available (NULL set,
 * 0 returned) where perf events are not permitted. At most 256 threads.
 */
struct diag_pc_samples;
int diag_chain_pc_sample_begin(const pid_t *pids, size_t npids, struct diag_pc_samples **ret);
void diag_chain_pc_sample_stop(struct diag_pc_samples *s);
struct diag_pc_samples *diag_chain_pc_sample_free(struct diag_pc_samples *s);
/* Put the hottest sampled pc of each on-cpu thread of ch that has no frames
 * into its frames[0] (pc_hits, pc_samples). */
void diag_chain_place_running(struct diag_chain_ctx *c, struct diag_chain *ch, const struct diag_pc_samples *s);

int diag_chain_walk(struct diag_chain_ctx *c, pid_t pid, pid_t tid, const struct diag_chain_opts *o,
                    struct diag_chain *ret);
void diag_chain_clear(struct diag_chain *ch);
