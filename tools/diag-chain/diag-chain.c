/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-chain: follow a hung thread's wait chain — the lock it waits for, who
 * holds that, what the holder waits for, across threads and processes, pipes,
 * sockets and file locks — down to the socket, disk or peer that never answered,
 * and name the root cause. Stops nothing unless --stacks.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "diag/chain.h"
#include "diag/log.h"
#include "diag/out.h"
#include "diag/proc.h"
#include "diag/target.h"
#include "diag/unwind.h"
#include "diag/util.h"

enum {
        DIAG_EXIT_DEADLOCK = 3,
        DIAG_EXIT_STUCK = 5,
};

static struct {
        pid_t *ids;
        size_t nids;
        bool all, stacks, json, ascii;
        uint64_t min_blocked_ms;
        pid_t lineage_of;               /* --exclude-lineage */
        uint64_t time_limit_ms;         /* --time-limit: 0 none */
        const char *text_path;          /* --text */
        struct diag_chain_opts o;
} arg;

struct start {
        pid_t pid, tid;
};

/* A thread on a CPU for at least this share of the window leads its process's
 * output: the answer is often the busy thread, not the idle ones. */
#define RUNNING_PCT 10.0
#define CPU_WINDOW_MS 100

/* A process the user named that could not be followed (-J: its entry's "error"). */
struct failed {
        pid_t pid;
        char message[512];
        const char *reason;
};

struct group {
        struct diag_chain ch;
        struct start *starts;           /* every thread whose chain this is */
        size_t nstarts;
        int64_t worst_ms;
};

/* ---- grouping: threads with the same chain are one story ---- */

/* A thread measured on a CPU: 10% of the window, or runnable now (on an
 * overloaded host a spinning thread may get little or nothing of 100 ms). */
static bool on_cpu(const struct diag_chain_node *n) {
        return n->have_cpu_window && (n->cpu_window_pct >= RUNNING_PCT || n->state == 'R');
}

static bool running_start(const struct diag_chain *ch) {
        return on_cpu(&ch->nodes[0]);
}

/* The CPU rate of the thread on a CPU the chain starts or ends at, -1 if none. */
static double busy_pct(const struct diag_chain *ch) {
        const struct diag_chain_node *r = ch->root >= 0 ? &ch->nodes[ch->root] : NULL;

        if (running_start(ch))
                return ch->nodes[0].cpu_window_pct;
        if (r && r->end == DIAG_END_ONCPU && on_cpu(r))
                return r->cpu_window_pct;
        return -1;
}

static bool same_chain(const struct diag_chain *a, const struct diag_chain *b) {
        if (a->n != b->n || a->deadlock != b->deadlock || running_start(a) || running_start(b))
                return false;
        /* same path below the start: same tids, same ends */
        for (size_t i = 1; i < a->n; i++)
                if (a->nodes[i].tid != b->nodes[i].tid || a->nodes[i].end != b->nodes[i].end ||
                    a->nodes[i].kind != b->nodes[i].kind)
                        return false;
        /* and the starts wait the same way: same program, same kind of wait
         * (threads of one pool, or worker processes of one pool) */
        return a->nodes[0].cls == b->nodes[0].cls && a->nodes[0].end == b->nodes[0].end &&
               strcmp(a->nodes[0].comm, b->nodes[0].comm) == 0 &&
               (a->n > 1 || a->nodes[0].pid == b->nodes[0].pid);
}

/* Does a's chain pass through one of b's starting threads? */
static bool passes_through(const struct group *a, const struct group *b) {
        for (size_t j = 1; j < a->ch.n; j++)
                for (size_t s = 0; s < b->nstarts; s++)
                        if (a->ch.nodes[j].kind == DIAG_NODE_THREAD && a->ch.nodes[j].tid == b->starts[s].tid &&
                            a->ch.nodes[j].end != DIAG_END_SEEN)
                                return true;
        return false;
}

static bool chain_matters(const struct diag_chain *ch) {
        for (size_t i = 1; i < ch->n; i++)
                if (ch->nodes[i].kind == DIAG_NODE_THREAD)
                        return true;
        if (ch->root < 0)
                return false;
        switch (ch->nodes[ch->root].end) {
        case DIAG_END_CYCLE: case DIAG_END_REMOTE: case DIAG_END_DSTATE: case DIAG_END_NO_PEER:
                return true;
        default:
                return false;
        }
}

static int cmp_group(const void *x, const void *y) {
        const struct group *a = x, *b = y;
        if (a->ch.deadlock != b->ch.deadlock)
                return a->ch.deadlock ? -1 : 1;
        /* the threads on a CPU before the waits, the busiest first */
        if (busy_pct(&a->ch) != busy_pct(&b->ch))
                return busy_pct(&a->ch) > busy_pct(&b->ch) ? -1 : 1;
        if (a->worst_ms != b->worst_ms)
                return a->worst_ms > b->worst_ms ? -1 : 1;
        return (a->nstarts < b->nstarts) - (a->nstarts > b->nstarts);
}

/* ---- text ---- */

static char *node_text(const struct diag_chain_node *n, char *buf, size_t size) {
        char dur[DIAG_DURATION_MAX];
        const char *arrow = arg.ascii ? " -> " : " → ", *dash = arg.ascii ? " - " : " — ";

        if (n->kind == DIAG_NODE_ENDPOINT) {
                snprintf(buf, size, "%s%s%s", n->via ? n->via : "", n->via ? dash : "", n->end_text ? n->end_text : "");
                return buf;
        }
        if (n->end == DIAG_END_CYCLE || n->end == DIAG_END_SEEN || n->end == DIAG_END_CAPPED || n->end == DIAG_END_GONE)
                snprintf(buf, size, "%s%spid %d tid %d \"%s\"%s%s", n->via ? n->via : "", n->via ? arrow : "",
                         n->pid, n->tid, n->comm, dash, n->end_text ? n->end_text : "");
        else {
                char cpu[64] = "";
                if (on_cpu(n))
                        snprintf(cpu, sizeof cpu, ", %.0f%% CPU over the last %u ms", n->cpu_window_pct, n->cpu_window_ms);
                snprintf(buf, size, "%s%spid %d tid %d \"%s\" %c%s%s%s%s%s", n->via ? n->via : "", n->via ? arrow : "",
                         n->pid, n->tid, n->comm, n->state, cpu, n->blocked_ms >= 0 ? " blocked " : "",
                         n->blocked_ms >= 0 ? diag_format_duration((uint64_t) n->blocked_ms, dur, sizeof dur) : "",
                         dash, n->syscall);
        }
        return buf;
}

/* Where in its code a thread is: the first frame outside libc and the loader. */
static const char *where(const struct diag_chain_node *n) {
        for (size_t i = 0; i < n->nframes; i++) {
                const char *m = n->frames[i].module;
                if (n->frames[i].func && m && !strstr(m, "/libc.so") && !strstr(m, "/ld-linux"))
                        return n->frames[i].func;
        }
        return NULL;
}

static void add_subtree(struct diag_tree *t, const struct diag_chain *ch, int idx) {
        const struct diag_chain_node *n = &ch->nodes[idx];
        char buf[1024];
        struct diag_tree *me = t;

        if (idx > 0)
                me = diag_tree_add(t, "%s", node_text(n, buf, sizeof buf));
        if (!me)
                return;
        if (n->kind == DIAG_NODE_THREAD && n->end != DIAG_END_CYCLE && n->end != DIAG_END_SEEN && n->end != DIAG_END_CAPPED) {
                const char *w = where(n);
                if (n->pc_samples)
                        diag_tree_add(me, "in %s (%u of %u samples of where it ran in the last %u ms)",
                                      n->frames[0].func ? n->frames[0].func : "?", n->pc_hits, n->pc_samples,
                                      n->cpu_window_ms ? n->cpu_window_ms : CPU_WINDOW_MS);
                else if (w)
                        diag_tree_add(me, "in %s", w);
                else if (n->end == DIAG_END_ONCPU && !n->nframes && !arg.stacks)
                        diag_tree_add(me, "in user space: where is not readable without stopping it here "
                                      "(no perf sampling; --stacks does)");
                if (n->end != DIAG_END_NONE && n->end_text)
                        diag_tree_add(me, "%s", n->end_text);
                if (n->kstack) {
                        const char *k = n->kstack;
                        while (*k) {
                                const char *nl = strchr(k, '\n');
                                size_t len = nl ? (size_t) (nl - k) : strlen(k);
                                const char *sp = memchr(k, ' ', len);
                                if (sp) {
                                        len -= (size_t) (sp + 1 - k);
                                        k = sp + 1;
                                }
                                diag_tree_add(me, "kernel %.*s", (int) len, k);
                                k = nl ? nl + 1 : k + len;
                        }
                }
                if (arg.stacks) {
                        char **lines = NULL;
                        if (diag_unwind_thread_lines(n->pid, n->tid, 8, &lines) == 0) {
                                for (size_t i = 0; lines[i]; i++)
                                        diag_tree_add(me, "#%zu %s", i, lines[i]);
                                diag_strv_free(lines);
                        }
                }
        }
        for (size_t i = (size_t) idx + 1; i < ch->n; i++)
                if (ch->nodes[i].parent == idx)
                        add_subtree(me, ch, (int) i);
}

static void render_text(FILE *f, const struct group *g, size_t gi) {
        const struct diag_chain *ch = &g->ch;
        const struct diag_chain_node *s = &ch->nodes[0];
        char buf[1024], dur[DIAG_DURATION_MAX];
        struct diag_tree *root;

        if (gi)
                fputc('\n', f);
        if (g->nstarts > 1) {
                bool one_pid = true;
                for (size_t i = 1; i < g->nstarts; i++)
                        one_pid = one_pid && g->starts[i].pid == g->starts[0].pid;
                if (one_pid)
                        fprintf(f, "%zu threads of pid %d (%s) wait the same way, the longest for %s: tids", g->nstarts, s->pid,
                                s->comm, g->worst_ms >= 0 ? diag_format_duration((uint64_t) g->worst_ms, dur, sizeof dur) : "?");
                else
                        fprintf(f, "%zu threads of %s processes wait the same way, the longest for %s: pid/tid", g->nstarts,
                                s->comm, g->worst_ms >= 0 ? diag_format_duration((uint64_t) g->worst_ms, dur, sizeof dur) : "?");
                for (size_t i = 0; i < g->nstarts && i < 12; i++) {
                        if (one_pid)
                                fprintf(f, " %d", g->starts[i].tid);
                        else
                                fprintf(f, " %d/%d", g->starts[i].pid, g->starts[i].tid);
                }
                fprintf(f, "%s\n", g->nstarts > 12 ? " ..." : "");
        }
        root = diag_tree_new("%s", node_text(s, buf, sizeof buf));
        if (!root)
                return;
        add_subtree(root, ch, 0);
        diag_tree_print(f, root, arg.ascii);
        diag_tree_free(root);
        if (ch->capped)
                fprintf(f, "(the walk was capped: see the capped nodes; --depth and --fanout raise the limits)\n");
        if (ch->verdict)
                fprintf(f, "%s\n", ch->verdict);
}

/* A walk stopped at --time-limit: the starts it did not follow. */
static struct {
        bool stopped;
        size_t followed, total;
} cut;

static void cut_text(char *buf, size_t size) {
        char d[DIAG_DURATION_MAX];
        snprintf(buf, size, "stopped at the time limit of %s: %zu of %zu blocked threads followed, the rest not shown",
                 diag_format_duration(arg.time_limit_ms, d, sizeof d), cut.followed, cut.total);
}

static void render_all_text(FILE *f, const struct group *groups, size_t ngroups, int status) {
        char buf[256];

        for (size_t i = 0; i < ngroups; i++)
                render_text(f, &groups[i], i);
        if (!ngroups && status == DIAG_EXIT_OK && !cut.stopped)
                fprintf(f, "No blocked thread%s.\n", arg.min_blocked_ms ? " blocked that long" : "");
        if (cut.stopped) {
                cut_text(buf, sizeof buf);
                fprintf(f, "(%s)\n", buf);
        }
}

/* ---- JSON ---- */

static json_object *json_group(const struct group *g) {
        const struct diag_chain *ch = &g->ch;
        json_object *o = json_object_new_object(), *starts = json_object_new_array(),
                    *nodes = json_object_new_array(), *edges = json_object_new_array();
        char buf[16];

        for (size_t i = 0; i < g->nstarts; i++) {
                json_object *s = json_object_new_object();
                json_object_object_add(s, "pid", json_object_new_int(g->starts[i].pid));
                json_object_object_add(s, "tid", json_object_new_int(g->starts[i].tid));
                json_object_array_add(starts, s);
        }
        for (size_t i = 0; i < ch->n; i++) {
                const struct diag_chain_node *n = &ch->nodes[i];
                json_object *no = json_object_new_object();

                json_object_object_add(no, "id", json_object_new_int((int) i));
                json_object_object_add(no, "kind", json_object_new_string(n->kind == DIAG_NODE_THREAD ? "thread" : "endpoint"));
                if (n->kind == DIAG_NODE_THREAD) {
                        json_object *fr = json_object_new_array();
                        json_object_object_add(no, "pid", json_object_new_int(n->pid));
                        json_object_object_add(no, "tid", json_object_new_int(n->tid));
                        json_object_object_add(no, "comm", json_object_new_string(n->comm));
                        snprintf(buf, sizeof buf, "%c", n->state);
                        json_object_object_add(no, "state", json_object_new_string(buf));
                        json_object_object_add(no, "blocked_ms", n->blocked_ms >= 0 ? json_object_new_int64(n->blocked_ms) : NULL);
                        if (n->pc_samples) {
                                json_object_object_add(no, "pc_samples", json_object_new_int((int) n->pc_samples));
                                json_object_object_add(no, "pc_hits", json_object_new_int((int) n->pc_hits));
                        }
                        if (n->have_cpu_window) {
                                json_object_object_add(no, "cpu_window_pct",
                                                       json_object_new_double((double) (int64_t) (n->cpu_window_pct * 10 + 0.5) / 10));
                                json_object_object_add(no, "cpu_window_ms", json_object_new_int((int) n->cpu_window_ms));
                        }
                        json_object_object_add(no, "syscall", json_object_new_string(n->syscall));
                        json_object_object_add(no, "wchan", n->wchan[0] ? json_object_new_string(n->wchan) : NULL);
                        for (size_t k = 0; k < n->nframes; k++) {
                                json_object *f = json_object_new_object();
                                json_object_object_add(f, "function", diag_json_str(n->frames[k].func));
                                json_object_object_add(f, "module", diag_json_str(n->frames[k].module));
                                json_object_object_add(f, "pc", diag_json_hex(n->frames[k].pc));
                                json_object_array_add(fr, f);
                        }
                        json_object_object_add(no, "frames", fr);
                        if (n->have_fdname) {
                                const struct diag_fdname *f = &n->fdname;
                                json_object *fo = json_object_new_object();
                                char dev[32];
                                json_object_object_add(fo, "fd", json_object_new_int(f->fd));
                                json_object_object_add(fo, "path", diag_json_str(f->link));
                                json_object_object_add(fo, "mnt_id", f->mnt_id >= 0 ? json_object_new_int(f->mnt_id) : NULL);
                                snprintf(dev, sizeof dev, "%u:%u", f->dev_major, f->dev_minor);
                                json_object_object_add(fo, "device", f->have_mount ? json_object_new_string(dev) : NULL);
                                json_object_object_add(fo, "device_name", diag_json_str(f->have_mount ? f->dev_name : NULL));
                                json_object_object_add(fo, "mount_point", diag_json_str(f->have_mount ? f->mount_point : NULL));
                                json_object_object_add(fo, "fstype", diag_json_str(f->have_mount ? f->fstype : NULL));
                                json_object_object_add(fo, "may_hang", json_object_new_boolean(f->have_mount && f->may_hang));
                                json_object_object_add(no, "fd", fo);
                        }
                }
                json_object_object_add(no, "end", json_object_new_string(diag_end_name(n->end)));
                json_object_object_add(no, "end_text", diag_json_str(n->end_text));
                if (n->have_sock) {
                        json_object *so = json_object_new_object();
                        char a[128];
                        json_object_object_add(so, "text", diag_json_str(n->sock_text));
                        json_object_object_add(so, "state", json_object_new_string(diag_tcp_state_name(n->sock.state)));
                        if (n->sock.family != AF_UNIX) {
                                json_object_object_add(so, "local", json_object_new_string(diag_sockaddr_format(&n->sock.local, a, sizeof a)));
                                json_object_object_add(so, "remote", json_object_new_string(diag_sockaddr_format(&n->sock.remote, a, sizeof a)));
                        }
                        json_object_object_add(so, "recvq", json_object_new_int64(n->sock.rqueue));
                        json_object_object_add(so, "sendq", json_object_new_int64(n->sock.wqueue));
                        if (n->sock.have_tcp_info) {
                                json_object_object_add(so, "last_data_recv_ms", json_object_new_int64(n->sock.tcp.last_data_recv_ms));
                                json_object_object_add(so, "last_data_sent_ms", json_object_new_int64(n->sock.tcp.last_data_sent_ms));
                                json_object_object_add(so, "unacked", json_object_new_int64(n->sock.tcp.unacked));
                                json_object_object_add(so, "retransmits", json_object_new_int64(n->sock.tcp.total_retrans));
                                json_object_object_add(so, "rtt_us", json_object_new_int64(n->sock.tcp.rtt_us));
                        }
                        json_object_object_add(no, "socket", so);
                }
                json_object_array_add(nodes, no);
                if (n->parent >= 0) {
                        json_object *e = json_object_new_object();
                        static const char *const kinds[] = { "futex", "file-lock", "pipe", "socket", "child" };
                        json_object_object_add(e, "from", json_object_new_int(n->parent));
                        json_object_object_add(e, "to", json_object_new_int((int) i));
                        json_object_object_add(e, "kind", json_object_new_string((size_t) n->via_kind < ELEMENTSOF(kinds) ? kinds[n->via_kind] : "?"));
                        json_object_object_add(e, "resource", diag_json_str(n->via));
                        json_object_array_add(edges, e);
                }
        }
        json_object_object_add(o, "threads", starts);
        json_object_object_add(o, "deadlock", json_object_new_boolean(ch->deadlock));
        json_object_object_add(o, "capped", json_object_new_boolean(ch->capped));
        json_object_object_add(o, "blocked_ms", g->worst_ms >= 0 ? json_object_new_int64(g->worst_ms) : NULL);
        json_object_object_add(o, "nodes", nodes);
        json_object_object_add(o, "edges", edges);
        json_object_object_add(o, "root", ch->root >= 0 ? json_object_new_int(ch->root) : NULL);
        json_object_object_add(o, "verdict", diag_json_str(ch->verdict));
        return o;
}

/* ---- failures ---- */

static struct failed *failed;
static size_t nfailed, afailed;
static struct diag_cpu_rates *rates;    /* one per process named, before anything else */
static size_t nrates;
static struct diag_pc_samples *pcs;     /* where their running threads run, over the same window */

/* A target that cannot be followed: its one line now, its entry's "error" in -J. */
static int target_failed(const struct diag_target *t, int err) {
        struct failed *f;

        if (DIAG_GROW(failed, afailed, nfailed + 1) < 0)
                return -ENOMEM;
        f = &failed[nfailed++];
        f->pid = t->tid ? t->tid : t->pid;
        diag_target_message(t, err, "follow", f->message, sizeof f->message);
        f->reason = diag_target_reason(t, err);
        log_error("%s", f->message);
        return 0;
}

/* The whole run failed: the line on stderr (unless a target's line said it
 * already) and, with -J, the error object on stdout. */
static int fail_run(int err, const char *what) {
        char msg[600];
        const char *reason = "error";
        pid_t pid = 0;

        if (what) {
                snprintf(msg, sizeof msg, "%s: %s", what, strerror(-err));
                log_error("%s", msg);
        } else if (nfailed == 1) {
                snprintf(msg, sizeof msg, "%s", failed[0].message);
                reason = failed[0].reason;
                pid = failed[0].pid;
        } else
                snprintf(msg, sizeof msg, "none of the %zu processes could be followed", nfailed);
        if (arg.json) {
                (void) diag_json_error(stdout, msg, reason, pid, DIAG_EXIT_FAILURE);
                (void) diag_close_stdout();
        }
        return DIAG_EXIT_FAILURE;
}

/* ---- main ---- */

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options] PID|TID...\n"
               " %1$s [options] --all\n"
               "\n"
               "Follow what a blocked thread waits for, who holds that, and what the holder\n"
               "waits for — futex locks, file locks, pipes, unix and loopback sockets, child\n"
               "processes — across processes, down to the remote peer, disk or sleep at the\n"
               "end, and name the likely root cause. A PID means its threads on a CPU first\n"
               "(with their CPU rate over the last 100 ms and, from perf samples, where they\n"
               "run), then each of its blocked threads.\n"
               "Reads /proc, sock_diag and the locks' memory: stops nothing unless --stacks.\n"
               "\n"
               "Options:\n"
               " -a, --all                every blocked thread on the host whose chain crosses\n"
               "                          to another thread or ends at a deadlock, a remote\n"
               "                          peer, a disk or a missing peer; grouped, worst first\n"
               " -m, --min-blocked TIME   only threads blocked at least TIME (e.g. 30s, 5m)\n"
               "     --exclude-lineage PID  leave out PID, its ancestors and its descendants\n"
               "                          (a tool's own run: diag-snap passes itself)\n"
               "     --time-limit TIME    follow chains for at most TIME from the start; the\n"
               "                          output says how many blocked threads were left\n"
               "     --text FILE          also write the text output to FILE (a new file):\n"
               "                          with -J, one walk gives both\n"
               "     --stacks             up to 8 frames of each thread on a chain, with source\n"
               "                          lines (text output; stops each one for the copy)\n"
               "     --depth N            follow at most N hops (default 12)\n"
               "     --fanout N           follow at most N branches per hop (default 8)\n"
               "     --ascii              draw the tree with ASCII characters\n"
               " -J, --json               JSON output\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Exit status: 0 nothing blocked (or nothing matched), 1 failure (no such\n"
               "process, a zombie, a kernel thread, not permitted), 2 bad usage,\n"
               "3 a deadlock was found, 5 blocked threads' chains were found (and shown).\n"
               "\n"
               "Examples:\n"
               " %1$s 1234                 why is every blocked thread of 1234 blocked?\n"
               " %1$s --all -m 30s         every chain on the host blocked for 30s or more\n"
               " %1$s -J 1234 | jq -r '.chains[].verdict'\n"
               "\n"
               "See diag-chain(1).\n", diag_progname());
}

enum { OPT_STACKS = 0x100, OPT_DEPTH, OPT_FANOUT, OPT_ASCII, OPT_EXCLUDE_LINEAGE, OPT_TIME_LIMIT, OPT_TEXT };

static int add_start(struct start **v, size_t *n, size_t *alloc, pid_t pid, pid_t tid) {
        for (size_t i = 0; i < *n; i++)
                if ((*v)[i].tid == tid)
                        return 0;
        if (DIAG_GROW(*v, *alloc, *n + 1) < 0)
                return -ENOMEM;
        (*v)[(*n)++] = (struct start) { pid, tid };
        return 0;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                DIAG_STD_LONGOPTS,
                { "all",         no_argument,       NULL, 'a' },
                { "min-blocked", required_argument, NULL, 'm' },
                { "stacks",      no_argument,       NULL, OPT_STACKS },
                { "depth",       required_argument, NULL, OPT_DEPTH },
                { "fanout",      required_argument, NULL, OPT_FANOUT },
                { "ascii",       no_argument,       NULL, OPT_ASCII },
                { "exclude-lineage", required_argument, NULL, OPT_EXCLUDE_LINEAGE },
                { "time-limit",  required_argument, NULL, OPT_TIME_LIMIT },
                { "text",        required_argument, NULL, OPT_TEXT },
                { "json",        no_argument,       NULL, 'J' },
                {}
        };
        _cleanup_(diag_chain_ctx_freep) struct diag_chain_ctx *ctx = NULL;
        _cleanup_free_ struct start *starts = NULL;
        struct diag_lineage lineage;
        struct group *groups = NULL;
        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC);
        FILE *text = NULL;
        size_t nstarts = 0, astarts = 0, ngroups = 0, agroups = 0, idalloc = 0;
        int c, r, status = DIAG_EXIT_OK;
        long long v;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        while ((c = getopt_long(argc, argv, "am:J" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                if (diag_std_option(c, usage, &r)) {
                        if (r >= 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'a': arg.all = true; break;
                case 'm':
                        if (diag_parse_duration_ms(optarg, &arg.min_blocked_ms) < 0)
                                return diag_usage_error("invalid duration: '%s'", optarg);
                        break;
                case OPT_STACKS: arg.stacks = true; break;
                case OPT_DEPTH:
                        if (diag_parse_ll(optarg, 10, 1, 100, &v) < 0)
                                return diag_usage_error("invalid depth: '%s' (1 to 100)", optarg);
                        arg.o.max_depth = (unsigned) v;
                        break;
                case OPT_FANOUT:
                        if (diag_parse_ll(optarg, 10, 1, 64, &v) < 0)
                                return diag_usage_error("invalid fan-out: '%s' (1 to 64)", optarg);
                        arg.o.max_fanout = (unsigned) v;
                        break;
                case OPT_ASCII: arg.ascii = true; break;
                case OPT_TIME_LIMIT:
                        if (diag_parse_duration_ms(optarg, &arg.time_limit_ms) < 0 || !arg.time_limit_ms)
                                return diag_usage_error("invalid duration: '%s'", optarg);
                        break;
                case OPT_TEXT:
                        arg.text_path = optarg;
                        break;
                case OPT_EXCLUDE_LINEAGE:
                        if (diag_parse_pid(optarg, &arg.lineage_of) < 0)
                                return diag_usage_error("invalid process id: '%s'", optarg);
                        break;
                case 'J': arg.json = true; break;
                default:
                        return diag_usage_error("unexpected option");
                }
        }
        for (int i = optind; i < argc; i++)
                if (diag_parse_pid_list(argv[i], &arg.ids, &arg.nids, &idalloc) < 0)
                        return diag_usage_error("invalid process or thread id: '%s'", argv[i]);
        if (!arg.all && !arg.nids)
                return diag_usage_error("no process given (or --all)");
        if (arg.all && arg.nids)
                return diag_usage_error("--all and a process list exclude each other");
        if (arg.text_path && arg.stacks)
                return diag_usage_error("%s", "--text and --stacks exclude each other (a stack is taken once)");
        if (arg.text_path) {
                /* created now, before the work: an existing file is an error, never replaced */
                int fd = open(arg.text_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 || !(text = fdopen(fd, "w"))) {
                        log_error_errno(-errno, "Cannot create %s: %m", arg.text_path);
                        if (fd >= 0)
                                close(fd);
                        return DIAG_EXIT_FAILURE;
                }
        }
        /* gone already: nothing of it to leave out but what has no parent left */
        if (arg.lineage_of && diag_lineage_init(arg.lineage_of, &lineage) < 0)
                lineage = (struct diag_lineage) { .self = arg.lineage_of };

        /* The threads to start from. */
        {
                _cleanup_free_ pid_t *pids = NULL, *procs = NULL;
                size_t npids = 0, nprocs = 0;

                if (arg.all) {
                        r = diag_proc_list_pids(&pids, &npids);
                        if (r < 0)
                                return fail_run(r, "cannot list processes");
                } else {
                        pids = TAKE_PTR(arg.ids);
                        npids = arg.nids;
                }
                procs = calloc(npids + 1, sizeof *procs);
                if (!procs)
                        return fail_run(-ENOMEM, "out of memory");
                for (size_t i = 0; i < npids; i++) {
                        struct diag_target t;
                        struct diag_syscall_state sc;

                        if (pids[i] == getpid() || (arg.lineage_of && diag_lineage_has(&lineage, pids[i])))
                                continue;
                        if (arg.all) {
                                pid_t owner = 0;
                                if (diag_tid_to_pid(pids[i], &owner) == 0 && owner == pids[i] &&
                                    diag_proc_is_kernel_thread(owner) <= 0)
                                        procs[nprocs++] = pids[i];
                                continue;
                        }
                        diag_target_resolve(pids[i], &t);
                        r = 0;
                        /* what a thread waits for is in its syscall file, which needs
                         * ptrace-read permission: without it there is nothing to follow */
                        if (t.kind == DIAG_TARGET_LIVE && (r = diag_task_read_syscall(t.pid, t.tid ? t.tid : t.pid, &sc)) != -EACCES &&
                            r != -EPERM)
                                r = 0;
                        if (t.kind != DIAG_TARGET_LIVE || r < 0) {
                                if (target_failed(&t, r) < 0)
                                        return fail_run(-ENOMEM, "out of memory");
                                continue;
                        }
                        if (t.tid) {    /* a thread id: just that thread */
                                if (add_start(&starts, &nstarts, &astarts, t.pid, t.tid) < 0)
                                        return fail_run(-ENOMEM, "out of memory");
                                continue;
                        }
                        procs[nprocs++] = t.pid;
                }
                /* Before anything else (the scan takes time and CPU): which
                 * threads are on a CPU now, over a short window. */
                if (!arg.all && nprocs) {
                        rates = calloc(nprocs, sizeof *rates);
                        if (!rates)
                                return fail_run(-ENOMEM, "out of memory");
                        if (diag_chain_pc_sample_begin(procs, nprocs, &pcs) < 0)
                                return fail_run(-ENOMEM, "out of memory");
                        for (size_t i = 0; i < nprocs; i++)
                                if (diag_cpu_rates_begin(procs[i], &rates[nrates]) == 0)
                                        nrates++;
                        for (size_t i = 0; i < nrates; i++)
                                (void) diag_cpu_rates_end(&rates[i], CPU_WINDOW_MS);
                        diag_chain_pc_sample_stop(pcs);
                }
                for (size_t i = 0; i < nprocs; i++) {
                        pid_t id = procs[i];
                        _cleanup_free_ pid_t *tids = NULL;
                        size_t nt = 0, before = nstarts;

                        for (size_t k = 0; k < nrates; k++)
                                for (size_t j = 0; rates[k].pid == id && j < rates[k].n; j++) {
                                        char st = '?';
                                        (void) diag_task_read_state(id, rates[k].tid[j], &st);
                                        if ((rates[k].pct[j] >= RUNNING_PCT || st == 'R') &&
                                            add_start(&starts, &nstarts, &astarts, id, rates[k].tid[j]) < 0)
                                                return fail_run(-ENOMEM, "out of memory");
                                }
                        if (diag_chain_blocked_threads(id, &tids, &nt) < 0)
                                continue;
                        for (size_t k = 0; k < nt; k++)
                                if (add_start(&starts, &nstarts, &astarts, id, tids[k]) < 0)
                                        return fail_run(-ENOMEM, "out of memory");
                        if (nstarts == before && !arg.all) {
                                /* nothing blocked: show the main thread, whatever it does */
                                if (add_start(&starts, &nstarts, &astarts, id, id) < 0)
                                        return fail_run(-ENOMEM, "out of memory");
                        }
                }
        }
        if (!arg.all && !nstarts && nfailed)
                return fail_run(0, NULL);
        if (nfailed)
                status = DIAG_EXIT_FAILURE;

        diag_watchdog_arm(120);
        diag_watchdog_phase("scanning processes, fds and sockets");
        r = diag_chain_ctx_new(geteuid() == 0 ? DIAG_CHAIN_KSTACK : 0, &ctx);
        if (r < 0)
                return fail_run(r, "scan failed");
        if (arg.lineage_of)
                diag_chain_ctx_exclude(ctx, &lineage);

        {
                unsigned denied, netns;
                diag_chain_ctx_unseen(ctx, &denied, &netns);
                /* as root, an unreadable process is an oddity of the host (an LSM, a
                 * sandbox's init), not something a rerun would fix */
                if (denied && geteuid() != 0)
                        log_warn("%u process%s not readable: chains through them stop there (run as root to follow them)",
                                 denied, denied == 1 ? "" : "es");
                else if (denied) {
                        const char *why = diag_ptrace_denied_reason();
                        log_warn("%u process%s not readable even as root%s%s%s: chains through them stop there",
                                 denied, denied == 1 ? "" : "es", why ? " (" : "", why ? why : "", why ? ")" : "");
                }
                if (netns)
                        log_warn("%u network namespace%s not entered: their sockets end chains as remote",
                                 netns, netns == 1 ? "" : "s");
        }
        diag_watchdog_phase("following the chains");
        for (size_t i = 0; i < nstarts; i++) {
                struct diag_chain ch;
                int64_t b;

                if (arg.time_limit_ms && diag_now_ns(CLOCK_MONOTONIC) - t0 >= arg.time_limit_ms * 1000000ULL) {
                        cut.stopped = true;
                        cut.followed = i;
                        cut.total = nstarts;
                        break;
                }
                /* not blocked that long: not walked at all (on a host of thousands of
                 * threads most are not) */
                if (arg.min_blocked_ms && (diag_task_read_offcpu_ms(starts[i].pid, starts[i].tid, &b) < 0 ||
                                           b < 0 || (uint64_t) b < arg.min_blocked_ms))
                        continue;
                if (diag_chain_walk(ctx, starts[i].pid, starts[i].tid, &arg.o, &ch) < 0)
                        continue;       /* gone meanwhile */
                b = ch.nodes[0].blocked_ms;
                diag_chain_place_running(ctx, &ch, pcs);
                /* every thread of a measured process on the chain: a busy lock
                 * holder shows its rate where a waiter's chain reaches it */
                for (size_t j = 0; j < ch.n; j++)
                        for (size_t k = 0; k < nrates && ch.nodes[j].kind == DIAG_NODE_THREAD; k++)
                                if (rates[k].pid == ch.nodes[j].pid && diag_cpu_rates_get(&rates[k], ch.nodes[j].tid) >= 0) {
                                        ch.nodes[j].have_cpu_window = true;
                                        ch.nodes[j].cpu_window_pct = diag_cpu_rates_get(&rates[k], ch.nodes[j].tid);
                                        ch.nodes[j].cpu_window_ms = rates[k].window_ms;
                                }
                if (arg.min_blocked_ms && (b < 0 || (uint64_t) b < arg.min_blocked_ms)) {
                        diag_chain_clear(&ch);
                        continue;
                }
                /* With --all, an idle thread is not a story: keep chains that cross
                 * to another thread, or end in a deadlock, a remote peer, a disk or a
                 * missing peer. */
                if (arg.all && !chain_matters(&ch)) {
                        diag_chain_clear(&ch);
                        continue;
                }
                {
                        struct group *g = NULL;
                        for (size_t k = 0; k < ngroups && !g; k++)
                                if (same_chain(&groups[k].ch, &ch))
                                        g = &groups[k];
                        if (g) {
                                diag_chain_clear(&ch);
                        } else {
                                if (DIAG_GROW(groups, agroups, ngroups + 1) < 0) {
                                        diag_chain_clear(&ch);
                                        break;
                                }
                                g = &groups[ngroups++];
                                memset(g, 0, sizeof *g);
                                g->ch = ch;
                                g->worst_ms = -1;
                        }
                        {
                                struct start *ns = realloc(g->starts, (g->nstarts + 1) * sizeof *ns);
                                if (ns) {
                                        g->starts = ns;
                                        g->starts[g->nstarts++] = starts[i];
                                }
                        }
                        g->worst_ms = MAX(g->worst_ms, b);
                }
        }
        if (ngroups)
                qsort(groups, ngroups, sizeof *groups, cmp_group);
        /* A chain that starts at a thread another chain passes through is part of
         * that story: fold it in, whatever the order. Chains that pass through
         * each other's starts (a deadlock) keep the first. */
        {
                bool *fold = calloc(ngroups + 1, sizeof *fold);
                size_t kept = 0;
                for (size_t i = 0; fold && i < ngroups; i++)
                        for (size_t k = 0; k < ngroups && !fold[i]; k++)
                                if (k != i && passes_through(&groups[k], &groups[i]) &&
                                    (!passes_through(&groups[i], &groups[k]) || k < i))
                                        fold[i] = true;
                for (size_t i = 0; i < ngroups; i++) {
                        if (fold && fold[i]) {
                                diag_chain_clear(&groups[i].ch);
                                free(groups[i].starts);
                                continue;
                        }
                        groups[kept++] = groups[i];
                }
                ngroups = kept;
                free(fold);
        }

        diag_watchdog_phase("writing the output");
        if (arg.json) {
                json_object *doc = json_object_new_object(), *a = json_object_new_array();
                json_object_object_add(doc, "schema", json_object_new_string("diag-chain/1"));
                for (size_t i = 0; i < ngroups; i++)
                        json_object_array_add(a, json_group(&groups[i]));
                json_object_object_add(doc, "chains", a);
                if (cut.stopped) {
                        json_object *o = json_object_new_object();
                        char buf[256];
                        cut_text(buf, sizeof buf);
                        json_object_object_add(o, "reason", json_object_new_string("time-limit"));
                        json_object_object_add(o, "time_limit_ms", json_object_new_int64((int64_t) arg.time_limit_ms));
                        json_object_object_add(o, "threads_followed", json_object_new_int64((int64_t) cut.followed));
                        json_object_object_add(o, "threads", json_object_new_int64((int64_t) cut.total));
                        json_object_object_add(o, "text", json_object_new_string(buf));
                        json_object_object_add(doc, "incomplete", o);
                }
                if (nfailed) {
                        json_object *fa = json_object_new_array();
                        for (size_t i = 0; i < nfailed; i++) {
                                json_object *t = json_object_new_object(), *e = json_object_new_object();
                                json_object_object_add(e, "message", json_object_new_string(failed[i].message));
                                json_object_object_add(e, "reason", diag_json_str(failed[i].reason));
                                json_object_object_add(t, "pid", json_object_new_int(failed[i].pid));
                                json_object_object_add(t, "error", e);
                                json_object_array_add(fa, t);
                        }
                        json_object_object_add(doc, "failed", fa);
                }
                if (diag_json_print(stdout, doc) < 0)
                        status = DIAG_EXIT_FAILURE;
                json_object_put(doc);
        } else
                render_all_text(stdout, groups, ngroups, status);
        if (text) {
                render_all_text(text, groups, ngroups, status);
                if (fflush(text) != 0 || ferror(text)) {
                        log_error_errno(-errno, "Cannot write %s: %m", arg.text_path);
                        status = DIAG_EXIT_FAILURE;
                }
                if (fclose(text) != 0 && status != DIAG_EXIT_FAILURE) {
                        log_error_errno(-errno, "Cannot write %s: %m", arg.text_path);
                        status = DIAG_EXIT_FAILURE;
                }
        }
        if (cut.stopped) {
                char buf[256];
                cut_text(buf, sizeof buf);
                log_warn("%s", buf);
        }
        if (status == DIAG_EXIT_OK) {
                for (size_t i = 0; i < ngroups; i++) {
                        char st = groups[i].ch.nodes[0].state;
                        if (groups[i].ch.deadlock)
                                status = DIAG_EXIT_DEADLOCK;
                        else if ((st == 'S' || st == 'D') && status == DIAG_EXIT_OK)
                                status = DIAG_EXIT_STUCK;
                }
        }
        for (size_t i = 0; i < ngroups; i++) {
                diag_chain_clear(&groups[i].ch);
                free(groups[i].starts);
        }
        free(groups);
        for (size_t i = 0; i < nrates; i++)
                diag_cpu_rates_done(&rates[i]);
        free(rates);
        diag_chain_pc_sample_free(pcs);
        free(failed);
        if (diag_close_stdout() < 0)
                return DIAG_EXIT_FAILURE;
        return status;
}
