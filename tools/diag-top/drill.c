/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top's drill-downs, all read-only: a process's threads (read here, nothing
 * stopped), its memory map summary (read by a forked child: /proc/PID/smaps waits for
 * the target's memory-map lock, which a fault on a dead mount can hold for ever) and
 * the other tools (diag-chain, -fds, -locks, -sample, -stack) run as children in their
 * own process group, their output captured through a pipe while the screen goes on,
 * each with a timeout, killed and reaped when the pane closes or diag-top ends.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/proc.h"
#include "diag/syscall.h"
#include "diag/util.h"
#include "view.h"

#define MAX_LINES               20000
#define MAX_BYTES               (8u << 20)
#define TOOL_TIMEOUT_MS         10000
#define SAMPLE_TIMEOUT_MS       5000
#define MAX_CHILDREN            16

/* Children started and not yet reaped: killed at exit whatever the path. */
static pid_t children[MAX_CHILDREN];

static void child_add(pid_t p) {
        for (size_t i = 0; i < ELEMENTSOF(children); i++)
                if (!children[i]) {
                        children[i] = p;
                        return;
                }
}

/* Reap what has ended among the children (killed ones that took time to die),
 * but keep: the pane's running child, whose status its pump reads. */
static void children_reap(pid_t keep) {
        for (size_t i = 0; i < ELEMENTSOF(children); i++)
                if (children[i] && children[i] != keep && waitpid(children[i], NULL, WNOHANG) != 0)
                        children[i] = 0;
}

void drill_kill_all(void) {
        bool left = false;

        for (size_t i = 0; i < ELEMENTSOF(children); i++)
                if (children[i] > 0) {
                        kill(-children[i], SIGKILL);
                        kill(children[i], SIGKILL);
                        left = true;
                }
        /* reaped if they die soon (one in D state may not: it is left to init) */
        for (int tries = 0; left && tries < 20; tries++) {
                children_reap(0);
                left = false;
                for (size_t i = 0; i < ELEMENTSOF(children); i++)
                        left |= children[i] > 0;
                if (left)
                        usleep(10000);
        }
}

void drill_init(struct drill *d) {
        memset(d, 0, sizeof *d);
        d->fd = -1;
}

static void lines_free(struct drill *d) {
        for (size_t i = 0; i < d->n; i++)
                free(d->text[i]);
        free(d->text);
        d->text = NULL;
        d->n = d->alloc = d->bytes = 0;
}

void drill_close(struct drill *d) {
        if (d->child > 0) {
                kill(-d->child, SIGKILL);
                kill(d->child, SIGKILL);
                children_reap(0);
        }
        if (d->fd >= 0)
                close(d->fd);
        lines_free(d);
        drill_init(d);
        children_reap(0);
}

/* One line into the pane: tabs expanded, control characters shown as '?'. */
static void add_line(struct drill *d, const char *s, size_t len) {
        char buf[1024];
        size_t o = 0;

        if (d->n >= MAX_LINES || d->bytes >= MAX_BYTES) {
                if (d->n && strcmp(d->text[d->n - 1], "(output cut)") != 0 && DIAG_GROW(d->text, d->alloc, d->n + 1) == 0)
                        if ((d->text[d->n] = strdup("(output cut)")))
                                d->n++;
                return;
        }
        for (size_t i = 0; i < len && o < sizeof buf - 9; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == '\t') {
                        do
                                buf[o++] = ' ';
                        while (o % 8);
                } else if (c == '\r') {
                        continue;
                } else
                        buf[o++] = (char) (c < 0x20 || c == 0x7f ? '?' : c);
        }
        buf[o] = 0;
        if (DIAG_GROW(d->text, d->alloc, d->n + 1) < 0)
                return;
        d->text[d->n] = strdup(buf);
        if (d->text[d->n]) {
                d->bytes += o + 1;
                d->n++;
        }
}

_printf_(2, 3)
static void addf(struct drill *d, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        add_line(d, buf, MIN((size_t) n, sizeof buf - 1));
}

/* Every line of text (a file's content, a child's output). */
static void add_text(struct drill *d, const char *text) {
        while (*text) {
                size_t l = strcspn(text, "\n");
                add_line(d, text, l);
                text += l;
                if (*text)
                        text++;
        }
}

static void start(struct drill *d, enum drill_kind kind, pid_t pid, const char *fmt, ...) _printf_(4, 5);
static void start(struct drill *d, enum drill_kind kind, pid_t pid, const char *fmt, ...) {
        va_list ap;

        drill_close(d);
        d->kind = kind;
        d->pid = pid;
        va_start(ap, fmt);
        vsnprintf(d->title, sizeof d->title, fmt, ap);
        va_end(ap);
}

void drill_message(struct drill *d, pid_t pid, const char *title, const char *text) {
        start(d, DRILL_TEXT, pid, "%s", title);
        add_text(d, text);
}

/* ---- threads ---- */

static int cmp_task(const void *x, const void *y) {
        const struct diag_task *a = x, *b = y;

        /* in D first, then the longest off CPU, then by tid */
        if ((a->state == 'D') != (b->state == 'D'))
                return a->state == 'D' ? -1 : 1;
        if (a->offcpu_ms != b->offcpu_ms)
                return a->offcpu_ms > b->offcpu_ms ? -1 : 1;
        return a->tid < b->tid ? -1 : a->tid > b->tid;
}

int drill_threads(struct drill *d, pid_t pid) {
        _cleanup_proc_ struct diag_proc *p = NULL;
        enum diag_arch arch = diag_arch_native();
        bool denied = false;
        int r;

        r = diag_proc_load(pid, DIAG_PROC_SYSCALL | DIAG_PROC_WCHAN | DIAG_PROC_SCHED, &p);
        /* the pane stays when it is refreshed; only its text is read again */
        if (d->kind != DRILL_THREADS || d->pid != pid)
                start(d, DRILL_THREADS, pid, "threads of %d", pid);
        else
                lines_free(d);
        if (r < 0) {
                addf(d, "cannot read the threads of %d: %s", pid, r == -ESRCH ? "it is gone" : strerror(-r));
                return r;
        }
        snprintf(d->title, sizeof d->title, "threads of %d (%s): %zu", pid, p->comm, p->ntasks);
        qsort(p->tasks, p->ntasks, sizeof *p->tasks, cmp_task);
        addf(d, "%8s %-15s S %8s %-24.24s %s", "TID", "NAME", "BLOCKED", "WCHAN", "SYSCALL");
        for (size_t i = 0; i < p->ntasks; i++) {
                const struct diag_task *t = &p->tasks[i];
                char sc[256], blocked[16];

                if (t->sc_err == -EACCES || t->sc_err == -EPERM) {
                        denied = true;
                        snprintf(sc, sizeof sc, "?");
                } else
                        diag_syscall_format(arch, &t->sc, sc, sizeof sc);
                top_fmt_ms(blocked, sizeof blocked, t->state == 'R' ? -1 : t->offcpu_ms);
                addf(d, "%8d %-15s %c %8s %-24.24s %s", t->tid, t->comm, t->state, blocked,
                     t->wchan[0] ? t->wchan : "-", sc);
        }
        if (denied)
                addf(d, "(system calls need ptrace permission on %d: run as its user or root)", pid);
        return 0;
}

/* ---- children ---- */

static char self_dir[PATH_MAX];

static void find_self_dir(void) {
        ssize_t n;
        char *s;

        if (self_dir[0])
                return;
        n = readlink("/proc/self/exe", self_dir, sizeof self_dir - 1);
        if (n <= 0) {
                self_dir[0] = 0;
                return;
        }
        self_dir[n] = 0;
        s = strrchr(self_dir, '/');
        if (s)
                *s = 0;
}

/* The tool next to diag-top, then in the build tree (tools/diag-top/../diag-X/diag-X);
 * false to look on PATH. A path that does not fit is never run. */
static bool find_tool(const char *tool, char *buf, size_t size) {
        int n;

        find_self_dir();
        if (!self_dir[0])
                return false;
        n = snprintf(buf, size, "%s/%s", self_dir, tool);
        if (n > 0 && (size_t) n < size && access(buf, X_OK) == 0)
                return true;
        n = snprintf(buf, size, "%s/../%s/%s", self_dir, tool, tool);
        return n > 0 && (size_t) n < size && access(buf, X_OK) == 0;
}

/* In the child, before it runs anything: its own process group (killed as one), dead
 * with diag-top, the signals as a fresh program has them, output into the pipe. */
static void child_setup(int out) {
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU,
                                    SIGWINCH, SIGQUIT, SIGCHLD };
        sigset_t none;
        int null;

        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                signal(sigs[i], SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0)
                dup2(null, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
}

/* Fork a child writing into a pipe the pane reads. In the child, fn(pid, ud) runs and
 * its return is the exit status. 0 or negative errno. */
static int spawn(struct drill *d, uint64_t timeout_ms, int (*fn)(pid_t pid, void *ud), void *ud) {
        int p[2];
        pid_t c;

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return negative_errno();
        fflush(NULL);
        c = fork();
        if (c < 0) {
                int r = negative_errno();
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (c == 0) {
                close(p[0]);
                /* the write end blocking again: the child must not lose output */
                fcntl(p[1], F_SETFL, 0);
                child_setup(p[1]);
                if (getppid() == 1)
                        _exit(1);
                _exit(fn(d->pid, ud));
        }
        setpgid(c, c);
        close(p[1]);
        child_add(c);
        d->child = c;
        d->fd = p[0];
        d->started_ns = diag_now_ns(CLOCK_MONOTONIC);
        d->deadline_ns = d->started_ns + timeout_ms * 1000000;
        return 0;
}

struct tool_run {
        const char *tool;
        const char *const *args;        /* before the pid */
        unsigned width;
};

static int run_tool(pid_t pid, void *ud) {
        const struct tool_run *t = ud;
        char path[PATH_MAX], pidstr[16], cols[16];
        const char *argv[8];
        size_t n = 0;

        snprintf(pidstr, sizeof pidstr, "%d", pid);
        snprintf(cols, sizeof cols, "%u", t->width);
        setenv("COLUMNS", cols, 1);
        argv[n++] = t->tool;
        for (size_t i = 0; t->args[i] && n < ELEMENTSOF(argv) - 2; i++)
                argv[n++] = t->args[i];
        argv[n++] = pidstr;
        argv[n] = NULL;
        if (find_tool(t->tool, path, sizeof path))
                execv(path, (char *const *) argv);
        else
                execvp(t->tool, (char *const *) argv);
        printf("cannot run %s: %s (looked next to diag-top, in the build tree and on PATH)\n", t->tool,
               strerror(errno));
        fflush(stdout);
        return 127;
}

int drill_tool(struct drill *d, enum drill_kind kind, pid_t pid, unsigned width) {
        static const char *const none[] = { NULL };
        static const char *const sample[] = { "-d", "2", NULL };
        static const char *const by_pid[] = { "-p", NULL };
        struct tool_run t = { .args = none, .width = width ? width : 80 };
        uint64_t timeout = TOOL_TIMEOUT_MS;
        int r;

        switch (kind) {
        case DRILL_CHAIN:  t.tool = "diag-chain"; break;
        case DRILL_FDS:    t.tool = "diag-fds"; t.args = by_pid; break;
        case DRILL_LOCKS:  t.tool = "diag-locks"; t.args = by_pid; break;
        case DRILL_STACK:  t.tool = "diag-stack"; break;
        case DRILL_SAMPLE: t.tool = "diag-sample"; t.args = sample; timeout = SAMPLE_TIMEOUT_MS; break;
        default:
                return -EINVAL;
        }
        start(d, kind, pid, "%s %s%d", t.tool, kind == DRILL_SAMPLE ? "-d 2 " : t.args == by_pid ? "-p " : "", pid);
        snprintf(d->status, sizeof d->status, "running %s %d...", t.tool, pid);
        r = spawn(d, timeout, run_tool, &t);
        if (r < 0) {
                addf(d, "cannot start %s: %s", t.tool, strerror(-r));
                d->status[0] = 0;
        }
        return r;
}

int drill_poll_fd(const struct drill *d) {
        return d->fd;
}

static const char *tool_name(const struct drill *d) {
        switch (d->kind) {
        case DRILL_CHAIN:  return "diag-chain";
        case DRILL_FDS:    return "diag-fds";
        case DRILL_LOCKS:  return "diag-locks";
        case DRILL_STACK:  return "diag-stack";
        case DRILL_SAMPLE: return "diag-sample";
        case DRILL_MAPS:   return "memory map";
        default:           return "child";
        }
}

/* The child ended (st from waitpid) or was killed: the status line says how. */
static void child_done(struct drill *d, int st, bool timed_out) {
        double s = (double) (diag_now_ns(CLOCK_MONOTONIC) - d->started_ns) / 1e9;

        for (size_t i = 0; i < ELEMENTSOF(children); i++)
                if (children[i] == d->child)
                        children[i] = 0;
        if (timed_out)
                snprintf(d->status, sizeof d->status, "%s %d: stopped after %.0fs (timeout)", tool_name(d), d->pid, s);
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                snprintf(d->status, sizeof d->status, "%s %d: done in %.1fs", tool_name(d), d->pid, s);
        else if (WIFEXITED(st))
                snprintf(d->status, sizeof d->status, "%s %d: exit status %d after %.1fs", tool_name(d), d->pid,
                         WEXITSTATUS(st), s);
        else
                snprintf(d->status, sizeof d->status, "%s %d: killed by signal %d", tool_name(d), d->pid,
                         WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        d->child = 0;
}

bool drill_pump(struct drill *d) {
        bool changed = false;
        char buf[16384];
        int st;

        children_reap(d->child);        /* the ones killed when their pane closed */

        if (d->fd >= 0) {
                for (int rounds = 0; rounds < 16; rounds++) {
                        ssize_t k = read(d->fd, buf, sizeof buf);

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN)
                                break;
                        if (k <= 0) {
                                if (d->npartial)
                                        add_line(d, d->partial, d->npartial);
                                d->npartial = 0;
                                close(d->fd);
                                d->fd = -1;
                                changed = true;
                                break;
                        }
                        changed = true;
                        for (ssize_t i = 0; i < k; i++) {
                                if (buf[i] == '\n' || d->npartial == sizeof d->partial) {
                                        add_line(d, d->partial, d->npartial);
                                        d->npartial = 0;
                                        if (buf[i] == '\n')
                                                continue;
                                }
                                d->partial[d->npartial++] = buf[i];
                        }
                }
        }
        if (d->child > 0) {
                pid_t w = waitpid(d->child, &st, WNOHANG);

                if (w == d->child && d->fd < 0) {
                        child_done(d, st, false);
                        changed = true;
                } else if (w == d->child) {
                        /* ended, but its output may still be in the pipe: the next pump */
                        child_done(d, st, false);
                        changed = true;
                } else if (diag_now_ns(CLOCK_MONOTONIC) >= d->deadline_ns) {
                        kill(-d->child, SIGKILL);
                        kill(d->child, SIGKILL);
                        child_done(d, 0, true);
                        children_reap(0);
                        if (d->fd >= 0) {
                                close(d->fd);
                                d->fd = -1;
                        }
                        changed = true;
                }
        }
        if (!d->child && d->fd >= 0 && diag_now_ns(CLOCK_MONOTONIC) >= d->deadline_ns) {
                /* a grandchild kept the pipe open */
                close(d->fd);
                d->fd = -1;
        }
        return changed;
}

/* ---- memory map summary (in a child: see the top) ---- */

struct map_group {
        char name[256];
        uint64_t rss, pss, size, swap;
        unsigned count;
};

static int cmp_group(const void *x, const void *y) {
        const struct map_group *a = x, *b = y;

        return a->rss < b->rss ? 1 : a->rss > b->rss ? -1 : strcmp(a->name, b->name);
}

static struct map_group *group_of(struct map_group **g, size_t *n, size_t *alloc, const char *name) {
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*g)[i].name, name) == 0)
                        return &(*g)[i];
        if (DIAG_GROW(*g, *alloc, *n + 1) < 0)
                return NULL;
        memset(&(*g)[*n], 0, sizeof **g);
        snprintf((*g)[*n].name, sizeof (*g)[*n].name, "%s", name);
        return &(*g)[(*n)++];
}

static void print_kb(const char *label, uint64_t kb) {
        char b[16];

        top_fmt_bytes(b, sizeof b, (double) kb * 1024);
        printf("  %-16s %8s\n", label, b);
}

static int maps_child(pid_t pid, void *ud) {
        _cleanup_free_ char *rollup = NULL;
        _cleanup_free_ struct map_group *g = NULL;
        size_t ng = 0, galloc = 0, len = 0, cap = 0;
        struct map_group *cur = NULL;
        char path[64], *line = NULL;
        FILE *f;

        (void) ud;
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
        if (diag_read_file_at(AT_FDCWD, path, 1 << 16, &rollup, &len) < 0) {
                printf("cannot read %s: %m\n", path);
                return 1;
        }
        printf("totals (smaps_rollup):\n");
        for (char *s = strchr(rollup, '\n'); s && s[1]; s = strchr(s + 1, '\n')) {
                char key[64];
                unsigned long long kb;

                if (sscanf(s + 1, "%63[^:]: %llu kB", key, &kb) == 2 && kb > 0)
                        print_kb(key, kb);
        }
        snprintf(path, sizeof path, "/proc/%d/smaps", pid);
        f = fopen(path, "re");
        if (!f) {
                printf("cannot read %s: %m\n", path);
                return 1;
        }
        while (getline(&line, &cap, f) > 0) {
                char first[128], name[256] = "";
                unsigned long long a, b, kb;
                int k = 0;

                if (sscanf(line, "%127s", first) != 1)
                        continue;
                if (first[strlen(first) - 1] == ':') {
                        if (!cur || sscanf(line, "%*s %llu kB", &kb) != 1)
                                continue;
                        if (!strcmp(first, "Rss:"))
                                cur->rss += kb;
                        else if (!strcmp(first, "Pss:"))
                                cur->pss += kb;
                        else if (!strcmp(first, "Swap:"))
                                cur->swap += kb;
                        continue;
                }
                if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &a, &b, &k) < 2)
                        continue;
                if (k > 0)
                        snprintf(name, sizeof name, "%s", line + k);
                diag_strip(name);
                if (!name[0])
                        snprintf(name, sizeof name, "[anonymous]");
                else if (!strncmp(name, "[stack", 6))
                        snprintf(name, sizeof name, "[stack]");
                cur = group_of(&g, &ng, &galloc, name);
                if (cur) {
                        cur->size += (b - a) / 1024;
                        cur->count++;
                }
        }
        free(line);
        fclose(f);
        qsort(g, ng, sizeof *g, cmp_group);
        printf("\n%zu groups of mappings, the largest by RSS:\n", ng);
        printf("  %8s %8s %8s %8s %5s  %s\n", "RSS", "PSS", "SWAP", "SIZE", "MAPS", "WHAT");
        for (size_t i = 0; i < ng && i < 20; i++) {
                char r[16], p[16], s[16], z[16];

                top_fmt_bytes(r, sizeof r, (double) g[i].rss * 1024);
                top_fmt_bytes(p, sizeof p, (double) g[i].pss * 1024);
                top_fmt_bytes(s, sizeof s, (double) g[i].swap * 1024);
                top_fmt_bytes(z, sizeof z, (double) g[i].size * 1024);
                printf("  %8s %8s %8s %8s %5u  %s\n", r, p, s, z, g[i].count, g[i].name);
        }
        fflush(stdout);
        return 0;
}

int drill_maps(struct drill *d, pid_t pid) {
        int r;

        start(d, DRILL_MAPS, pid, "memory map of %d", pid);
        snprintf(d->status, sizeof d->status, "reading the memory map of %d...", pid);
        r = spawn(d, TOOL_TIMEOUT_MS, maps_child, NULL);
        if (r < 0) {
                addf(d, "cannot read the memory map: %s", strerror(-r));
                d->status[0] = 0;
        }
        return r;
}

/* ---- replay: what was recorded ---- */

void drill_recorded_threads(struct drill *d, const struct top_frame *f, pid_t pid) {
        const struct diag_rec_interval *iv = f ? f->iv : NULL;
        char when[32] = "?";
        unsigned n = 0;

        start(d, DRILL_THREADS, pid, "recorded threads of %d", pid);
        if (!iv) {
                addf(d, "nothing recorded at this moment");
                return;
        }
        {
                time_t t = (time_t) (iv->realtime_ns / 1000000000);
                struct tm tm;
                if (localtime_r(&t, &tm))
                        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        }
        addf(d, "recorded at %s", when);
        addf(d, "(a recording keeps the threads in D state only, with their wait channel)");
        addf(d, "%8s %-15s S %s", "TID", "NAME", "WCHAN");
        for (size_t i = 0; i < iv->t[DIAG_REC_DSTATE].nrows; i++) {
                if (DIAG_REC_NUM(iv, DIAG_REC_DSTATE, i, DS_PID) != pid)
                        continue;
                addf(d, "%8" PRId64 " %-15s D %s", DIAG_REC_NUM(iv, DIAG_REC_DSTATE, i, DS_TID),
                     diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_DSTATE, i, DS_COMM)),
                     diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_DSTATE, i, DS_WCHAN)));
                n++;
        }
        if (!n)
                addf(d, "(no thread of %d was in D state then)", pid);
}

void drill_recorded_snapshot(struct drill *d, const struct top_event_mark *m, pid_t pid) {
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX + 16];
        size_t len;
        int r;

        start(d, DRILL_TEXT, pid, "snapshot of the trigger");
        if (!m) {
                addf(d, "no trigger took a snapshot at or up to 5 minutes before this moment;");
                addf(d, "the wait chain of a replayed moment is only known from such a snapshot");
                return;
        }
        addf(d, "%s", m->text);
        if (!m->path[0]) {
                addf(d, "(the trigger took no snapshot)");
                return;
        }
        addf(d, "bundle: %s", m->path);
        addf(d, "%s", "");
        snprintf(path, sizeof path, "%s/summary.txt", m->path);
        r = diag_read_file_at(AT_FDCWD, path, 1 << 20, &text, &len);
        if (r < 0) {
                addf(d, "(no summary.txt there: %s)", strerror(-r));
                return;
        }
        add_text(d, text);
}
