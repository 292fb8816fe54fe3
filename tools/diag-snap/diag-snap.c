/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-snap: the whole incident in one bundle within seconds. Every part runs in a
 * child process of its own with a deadline; the bundle is built under a temporary
 * name and renamed only when complete (or streamed as a tar with -o -).
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "config.h"
#include "diag/proc.h"
#include "diag/log.h"
#include "diag/snap.h"
#include "diag/util.h"

#define DEFAULT_TIMEOUT_MS      5000
#define DEFAULT_MAX_CORE        (1ULL << 30)
/* Kept for writing the index and summary after the last part is stopped. */
#define RESERVE_MS              300
/* Window at the start over which the busiest processes are measured. */
#define CPU_WINDOW_MS           400
/* diag-sample runs 1 s; started only with this much time left. */
#define SAMPLE_NEEDS_MS         1800
#define CORE_NEEDS_MS           1500
#define TOP_CPU                 3
#define MAX_STACKS              8
#define MAX_JOBS                64
#define MAX_LINES               4096
/* A dead child that does not go within this after SIGKILL (stuck in the kernel) is left. */
#define REAP_WAIT_MS            500
/* A thread is stuck when blocked at least this long (diag-chain --min-blocked): a
 * shorter wait on a pipe or a lock is ordinary work (docs/diag-snap-thresholds.md). */
#define STUCK_MIN               "1s"
/* Budgets, so that on a host of 500 processes and 3,000 threads the bundle is done
 * in about 2 s (its 1 s rate window included) while --timeout stays the bound:
 * diag-chain stops walking after CHAIN_BUDGET_MS and writes what it found (the
 * stacks of its chains come after it); the other tools and each stack are killed
 * after theirs, their output then absent. Each within what is left of --timeout. */
#define CHAIN_BUDGET_MS         1300
#define AFTER_CHAINS_MS         500     /* kept after the chains for their stacks */
#define TOOL_BUDGET_MS          1500
#define STACK_BUDGET_MS         800


static const struct part_def {
        const char *name;
        int (*fn)(struct diag_snap *s);
} part_defs[] = {
        { "host",    diag_snap_host },
        { "procs",   diag_snap_procs },
        { "cgroups", diag_snap_cgroups },
        { "oom",     diag_snap_oom },
        { "dstate",  diag_snap_dstate },
};

/* What each file of a bundle is, for index.json, by its name without the extension
 * (a name ending in '/' covers a directory). The schema is read from the file. */
static const struct file_desc {
        const char *stem, *what;
} file_descs[] = {
        { "index",       "this index" },
        { "summary",     "the findings ranked by severity, what is missing" },
        { "host",        "host: load, CPU, memory, PSI, disks, network" },
        { "processes",   "every process" },
        { "top",         "the top processes by CPU, memory, IO, major faults" },
        { "groups",      "processes grouped by command line" },
        { "tree",        "the process tree" },
        { "cgroups",     "cgroups: memory, IO, CPU throttling, pressure" },
        { "oom",         "OOM kills still in the kernel log" },
        { "dstate",      "D-state threads: wchan, kernel stack" },
        { "chains",      "diag-chain --all: wait chains stuck at least " STUCK_MIN },
        { "locks",       "diag-locks: futex and file locks" },
        { "fds-summary", "diag-fds --summary: open files per process" },
        { "shm",         "shmdump: shared-memory segments" },
        { "stacks/",     "diag-stack of a process" },
        { "samples/",    "diag-sample -d 1s of a busy process" },
        { "cores/",      "diag-core: an ELF core" },
};

enum job_status { JOB_PENDING, JOB_RUNNING, JOB_OK, JOB_FAILED, JOB_TIMED_OUT, JOB_NOT_BUILT, JOB_SKIPPED };
static const char *const status_names[] = {
        [JOB_PENDING] = "skipped", [JOB_RUNNING] = "timed-out", [JOB_OK] = "ok",
        [JOB_FAILED] = "failed", [JOB_TIMED_OUT] = "timed-out", [JOB_NOT_BUILT] = "not-built",
        [JOB_SKIPPED] = "skipped",
};

struct job {
        char name[64];                  /* "host", "diag-chain", "diag-stack 1234" */
        int order;                      /* rank of the part, for the summary */
        const struct part_def *part;    /* a part, or a tool: */
        char *argv[12];
        char out[64];                   /* the tool's stdout in the bundle ("" : none) */
        char out2[64];                  /* a second file it writes (by the path of its .part name) */
        pid_t pid;
        int exit_status;                /* of a tool that ran to its end */
        pid_t target;                   /* the process a per-process tool looks at */
        int fd;                         /* the pipe: findings from a part, stderr of a tool */
        bool eof;
        enum job_status status;
        uint64_t start_ns, end_ns, deadline_ns;
        uint64_t killed_ns;             /* SIGKILL sent at its deadline */
        char why[256];
        char buf[4096];                 /* a partial line from the pipe */
        size_t len;
};

struct line {
        char kind;                      /* 'F' or 'M' */
        int sev, order;
        char *file, *text;
};

static struct {
        const char *out;
        uint64_t timeout_ms, max_core, keep_size;
        long long keep;
        bool json;
        pid_t *pids, *cores;
        size_t npids, ncores, pids_alloc, cores_alloc;
} arg = {
        .timeout_ms = DEFAULT_TIMEOUT_MS,
        .max_core = DEFAULT_MAX_CORE,
        .keep = -1,
};

static struct job jobs[MAX_JOBS];
static size_t njobs;
static struct line lines[MAX_LINES];
static size_t nlines;
static char tools_dir[PATH_MAX];
static char tmp_path[PATH_MAX];         /* the bundle under construction; "" once renamed */
static int tmp_dirfd = -1;
static volatile sig_atomic_t got_signal;
static json_object *index_doc, *summary_doc;    /* of the bundle, once written */
static uint64_t t_start;
/* diag-snap, the shell or cron waiting for it, its children: never stacked,
 * sampled or counted in a chain */
static struct diag_lineage lineage;
static char self_pid[16];

/* snprintf into an array, true when all of it fit: a cut path must never be used. */
#define FORMAT_FITS(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__) < (int) sizeof(buf))

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static void on_signal(int sig) {
        got_signal = sig;
}

/* ---- removing a directory tree we made (regular files and directories only) ---- */

/* A directory below dfd, never through a symlink; NULL with errno set. */
static DIR *open_dir_at(int dfd, const char *name) {
        int fd = openat(dfd, name[0] ? name : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d;

        if (fd < 0)
                return NULL;
        d = fdopendir(fd);
        if (!d)
                closep(&fd);
        return d;
}

static void remove_tree_at(int parent, const char *name, int depth) {
        DIR *d;
        struct dirent *de;

        if (depth > 8)
                return;
        d = open_dir_at(parent, name);
        if (!d) {
                if (errno == ENOTDIR || errno == ELOOP)
                        (void) unlinkat(parent, name, 0);
                return;
        }
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (de->d_type == DT_DIR)
                        remove_tree_at(dirfd(d), de->d_name, depth + 1);
                else
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
        (void) unlinkat(parent, name, AT_REMOVEDIR);
}

/* The .part files a part killed while writing left (diag_snap_open): removed, so
 * that what the bundle holds is complete or absent. */
static void remove_parts_at(int parent, const char *name, int depth) {
        DIR *d = depth <= 4 ? open_dir_at(parent, name) : NULL;
        struct dirent *de;
        size_t sl = strlen(DIAG_SNAP_PART_SUFFIX);

        if (!d)
                return;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (de->d_type == DT_DIR)
                        remove_parts_at(dirfd(d), de->d_name, depth + 1);
                else if (de->d_name[0] == '.' && l > sl && strcmp(de->d_name + l - sl, DIAG_SNAP_PART_SUFFIX) == 0)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
}

/* On the way out: every child killed and reaped, within a bound (a child stuck in
 * the kernel is left to init). */
static void kill_all_jobs(void) {
        uint64_t until = diag_now_ns(CLOCK_MONOTONIC) + REAP_WAIT_MS * 1000000ULL;
        bool left = true;

        for (size_t i = 0; i < njobs; i++)
                if (jobs[i].pid > 0) {
                        (void) kill(-jobs[i].pid, SIGKILL);
                        (void) kill(jobs[i].pid, SIGKILL);
                }
        while (left && diag_now_ns(CLOCK_MONOTONIC) < until) {
                left = false;
                for (size_t i = 0; i < njobs; i++)
                        if (jobs[i].pid > 0) {
                                pid_t r = waitpid(jobs[i].pid, NULL, WNOHANG);
                                if (r == jobs[i].pid || (r < 0 && errno == ECHILD))
                                        jobs[i].pid = 0;
                                else
                                        left = true;
                        }
                if (left)
                        (void) poll(NULL, 0, 5);
        }
}

static void remove_tmp(void) {
        if (!tmp_path[0])
                return;
        remove_tree_at(AT_FDCWD, tmp_path, 0);
        tmp_path[0] = 0;
}

/* ---- finding the other tools ---- */

static void find_tools_dir(void) {
        ssize_t n = readlink("/proc/self/exe", tools_dir, sizeof tools_dir - 1);
        char *slash;

        tools_dir[MAX(n, 0)] = 0;
        slash = strrchr(tools_dir, '/');
        if (slash)
                *slash = 0;
        else
                tools_dir[0] = 0;
}

/* The binary of a tool: next to diag-snap (installed), in the build tree, in libexec. */
static bool find_tool(const char *file, const char *builddir_sub, char *buf, size_t size) {
        int n;

        if (tools_dir[0]) {
                n = snprintf(buf, size, "%s/%s", tools_dir, file);
                if (n > 0 && (size_t) n < size && access(buf, X_OK) == 0)
                        return true;
                n = snprintf(buf, size, "%s/../%s/%s", tools_dir, builddir_sub, file);
                if (n > 0 && (size_t) n < size && access(buf, X_OK) == 0)
                        return true;
        }
        n = snprintf(buf, size, "%s/%s", DIAG_LIBEXECDIR, file);
        return n > 0 && (size_t) n < size && access(buf, X_OK) == 0;
}

/* ---- jobs ---- */

static struct job *job_new(const char *name, int order) {
        struct job *j;

        if (njobs >= MAX_JOBS)
                return NULL;
        j = &jobs[njobs++];
        memset(j, 0, sizeof *j);
        snprintf(j->name, sizeof j->name, "%s", name);
        j->order = order;
        j->fd = -1;
        j->status = JOB_PENDING;
        return j;
}

static uint64_t overall_deadline(void) {
        return t_start + (arg.timeout_ms > RESERVE_MS ? arg.timeout_ms - RESERVE_MS : arg.timeout_ms / 2) * 1000000ULL;
}

static unsigned left_ms(void) {
        uint64_t now = diag_now_ns(CLOCK_MONOTONIC), d = overall_deadline();
        return now >= d ? 0 : (unsigned) ((d - now) / 1000000ULL);
}

static int job_start(struct job *j) {
        int p[2];
        pid_t pid, parent;

        j->start_ns = diag_now_ns(CLOCK_MONOTONIC);
        if (!j->deadline_ns)
                j->deadline_ns = overall_deadline();
        if (j->out[0]) {
                char dir[sizeof j->out], *slash;
                snprintf(dir, sizeof dir, "%s", j->out);
                slash = strrchr(dir, '/');
                if (slash) {
                        *slash = 0;
                        (void) mkdirat(tmp_dirfd, dir, 0700);
                }
        }
        if (pipe2(p, O_CLOEXEC) < 0) {
                j->status = JOB_FAILED;
                snprintf(j->why, sizeof j->why, "pipe: %s", strerror(errno));
                return -errno;
        }
        parent = getpid();
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(p[0]);
                close(p[1]);
                j->status = JOB_FAILED;
                snprintf(j->why, sizeof j->why, "fork: %s", strerror(-r));
                return r;
        }
        if (pid == 0) {
                struct sigaction sa = { .sa_handler = SIG_DFL };

                /* a part never outlives the diag-snap that started it, even
                 * one killed outright: nothing of ours is left running */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                (void) setpgid(0, 0);
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGHUP, &sa, NULL);
                sigaction(SIGPIPE, &sa, NULL);
                close(p[0]);
                if (j->part) {
                        struct diag_snap s = {
                                .dirfd = tmp_dirfd,
                                .findings_fd = p[1],
                                .deadline_ns = j->deadline_ns,
                                .pids = arg.pids,
                                .npids = arg.npids,
                                .tools_dir = tools_dir,
                                .rate_ms = 1000,
                                .root = geteuid() == 0,
                        };
                        int r = j->part->fn(&s);
                        /* the errno in the exit status: 1 + errno (up to 120) */
                        _exit(r < 0 ? 1 + MIN(-r, 120) : 0);
                }
                if (j->out[0]) {
                        /* under its .part name, renamed when the tool has ended (job_outputs) */
                        char part[sizeof j->out + 16];
                        int fd = diag_snap_part_name(j->out, part, sizeof part) < 0 ? -1 :
                                openat(tmp_dirfd, part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                        if (fd < 0) {
                                dprintf(p[1], "cannot create %s: %s\n", j->out, strerror(errno));
                                _exit(127);
                        }
                        if (dup2(fd, STDOUT_FILENO) < 0)
                                _exit(127);
                } else {
                        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
                        if (fd >= 0)
                                (void) dup2(fd, STDOUT_FILENO);
                }
                if (dup2(p[1], STDERR_FILENO) < 0)
                        _exit(127);
                {
                        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                        if (fd >= 0)
                                (void) dup2(fd, STDIN_FILENO);
                }
                execv(j->argv[0], j->argv);
                dprintf(STDERR_FILENO, "cannot run %s: %s\n", j->argv[0], strerror(errno));
                _exit(127);
        }
        (void) setpgid(pid, pid);
        close(p[1]);
        j->pid = pid;
        j->fd = p[0];
        j->status = JOB_RUNNING;
        return 0;
}

static void add_line(const struct job *j, char *l) {
        char *f[4] = {};
        size_t n = 0;
        struct line *x;

        if (!j->part) {
                /* a tool's standard error: its last line says why it failed */
                if (*l)
                        snprintf(((struct job *) j)->why, sizeof j->why, "%.*s", (int) sizeof j->why - 1, l);
                return;
        }
        if (nlines >= MAX_LINES)
                return;
        for (char *s = l; n < 4; n++) {
                f[n] = s;
                s = (n < 3 && !(l[0] == 'M' && n == 2)) ? strchr(s, '\t') : NULL;
                if (!s)
                        break;
                *s++ = 0;
        }
        x = &lines[nlines];
        if (l[0] == 'F' && f[3]) {
                long long sev;
                if (diag_parse_ll(f[1], 10, 0, 3, &sev) < 0)
                        sev = 0;
                *x = (struct line) { .kind = 'F', .sev = (int) sev, .order = j->order,
                                     .file = strdup(f[2]), .text = strdup(f[3]) };
        } else if (l[0] == 'M' && f[2]) {
                *x = (struct line) { .kind = 'M', .order = j->order, .file = strdup(f[1]), .text = strdup(f[2]) };
        } else
                return;
        if (!x->file || !x->text) {
                free(x->file);
                free(x->text);
                return;
        }
        nlines++;
}

static void job_read(struct job *j) {
        ssize_t n;
        char *nl;

        n = read(j->fd, j->buf + j->len, sizeof j->buf - 1 - j->len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                if (j->len) {
                        j->buf[j->len] = 0;
                        add_line(j, j->buf);
                        j->len = 0;
                }
                j->eof = true;
                close(j->fd);
                j->fd = -1;
                return;
        }
        j->len += (size_t) n;
        j->buf[j->len] = 0;
        while ((nl = memchr(j->buf, '\n', j->len))) {
                size_t used = (size_t) (nl - j->buf) + 1;
                *nl = 0;
                add_line(j, j->buf);
                memmove(j->buf, j->buf + used, j->len - used);
                j->len -= used;
        }
        if (j->len == sizeof j->buf - 1) {
                j->buf[j->len] = 0;
                add_line(j, j->buf);
                j->len = 0;
        }
}

/* A tool's files, written under their .part names: renamed into the bundle when it
 * ran to its end (a tool that failed wrote its error document), removed when it was
 * killed at its deadline or abandoned (half written: absent, never looking complete). */
static void job_outputs(struct job *j, bool keep) {
        const char *outs[2] = { j->out, j->out2 };

        if (j->part)
                return;         /* a part renames each file itself (diag_snap_close) */
        for (size_t i = 0; i < ELEMENTSOF(outs); i++) {
                char part[sizeof j->out + 16];
                if (!outs[i][0] || diag_snap_part_name(outs[i], part, sizeof part) < 0)
                        continue;
                if (!keep || diag_snap_publish(tmp_dirfd, part, outs[i]) < 0)
                        (void) unlinkat(tmp_dirfd, part, 0);
        }
}

/* The child has gone: its status says how. */
static void job_reaped(struct job *j, int status) {
        j->end_ns = diag_now_ns(CLOCK_MONOTONIC);
        j->pid = 0;
        if (j->status != JOB_RUNNING)
                return;
        if (j->killed_ns)
                j->status = JOB_TIMED_OUT;
        /* the tools' exit statuses 3 (a deadlock), 4 (some data missing) and 5 (blocked
         * chains found) are answers, not failures */
        if (j->status == JOB_TIMED_OUT)
                ;
        else if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
                                  (!j->part && WEXITSTATUS(status) >= 3 && WEXITSTATUS(status) <= 5))) {
                j->status = JOB_OK;
                j->exit_status = WEXITSTATUS(status);
                if (WEXITSTATUS(status) != 4)
                        j->why[0] = 0;
        } else {
                j->status = JOB_FAILED;
                if (WIFSIGNALED(status))
                        snprintf(j->why, sizeof j->why, "killed by signal %d", WTERMSIG(status));
                else if (j->part && WEXITSTATUS(status) >= 2)
                        snprintf(j->why, sizeof j->why, "could do nothing: %s", strerror(WEXITSTATUS(status) - 1));
                else if (!j->why[0])
                        snprintf(j->why, sizeof j->why, "exit status %d", WEXITSTATUS(status));
                /* a process that exited meanwhile is no failure of the bundle */
                if (j->target > 0 && kill(j->target, 0) < 0 && errno == ESRCH) {
                        j->status = JOB_SKIPPED;
                        snprintf(j->why, sizeof j->why, "process %d exited meanwhile", j->target);
                }
        }
        job_outputs(j, j->status != JOB_TIMED_OUT);
        if (j->fd >= 0) {
                /* whatever it wrote before going */
                int fl = fcntl(j->fd, F_GETFL);
                if (fl >= 0)
                        (void) fcntl(j->fd, F_SETFL, fl | O_NONBLOCK);
                while (j->fd >= 0 && !j->eof) {
                        size_t before = j->len;
                        job_read(j);
                        if (j->fd >= 0 && j->len == before && errno == EAGAIN)
                                break;
                }
                if (j->fd >= 0) {
                        close(j->fd);
                        j->fd = -1;
                }
        }
}

/* SIGKILL to its process group; it is reaped by jobs_step(), or given up on. */
static void job_kill(struct job *j) {
        uint64_t now = diag_now_ns(CLOCK_MONOTONIC);

        (void) kill(-j->pid, SIGKILL);
        (void) kill(j->pid, SIGKILL);
        j->killed_ns = now;
        snprintf(j->why, sizeof j->why, "killed at its deadline after %" PRIu64 " ms",
                 (uint64_t) ((now - j->start_ns) / 1000000ULL));
}

/* Killed, but not gone (stuck in the kernel): left to init when diag-snap exits. */
static void job_abandon(struct job *j) {
        j->status = JOB_TIMED_OUT;
        snprintf(j->why, sizeof j->why, "killed at its deadline, but stuck in the kernel: not reaped");
        j->end_ns = diag_now_ns(CLOCK_MONOTONIC);
        job_outputs(j, false);
        if (j->fd >= 0) {
                close(j->fd);
                j->fd = -1;
        }
        j->pid = 0;
}

static size_t running_jobs(void) {
        size_t n = 0;
        for (size_t i = 0; i < njobs; i++)
                n += jobs[i].status == JOB_RUNNING;
        return n;
}

/* One round of waiting: read pipes, reap children, kill those past their deadline. */
static void jobs_step(unsigned max_wait_ms) {
        struct pollfd pfd[MAX_JOBS];
        size_t idx[MAX_JOBS], n = 0;
        uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
        unsigned wait = max_wait_ms;

        for (size_t i = 0; i < njobs; i++) {
                struct job *j = &jobs[i];
                if (j->status != JOB_RUNNING)
                        continue;
                if (j->deadline_ns > now)
                        wait = MIN(wait, (unsigned) ((j->deadline_ns - now) / 1000000ULL) + 1);
                else
                        wait = j->killed_ns ? MIN(wait, 10u) : 0;
                if (j->fd >= 0) {
                        pfd[n] = (struct pollfd) { .fd = j->fd, .events = POLLIN };
                        idx[n++] = i;
                } else
                        wait = MIN(wait, 20u);  /* pipe closed: waiting for the exit */
        }
        if (poll(pfd, n, (int) wait) > 0)
                for (size_t k = 0; k < n; k++)
                        if (pfd[k].revents)
                                job_read(&jobs[idx[k]]);
        now = diag_now_ns(CLOCK_MONOTONIC);
        for (size_t i = 0; i < njobs; i++) {
                struct job *j = &jobs[i];
                int status;

                if (j->status != JOB_RUNNING)
                        continue;
                if (waitpid(j->pid, &status, WNOHANG) == j->pid)
                        job_reaped(j, status);
                else if (!j->killed_ns && now >= j->deadline_ns)
                        job_kill(j);
                else if (j->killed_ns && now >= j->killed_ns + REAP_WAIT_MS * 1000000ULL)
                        job_abandon(j);
        }
}

/* ---- what to run ---- */

/* A tool's job, started now; killed after budget_ms (0: at the overall deadline). */
static struct job *add_tool(const char *name, const char *file, const char *builddir_sub, const char *out,
                            int order, const char *const *args, pid_t target, unsigned budget_ms) {
        static char paths[MAX_JOBS][PATH_MAX];
        struct job *j = job_new(name, order);
        size_t n = 0;

        if (!j)
                return NULL;
        if (!find_tool(file, builddir_sub, paths[j - jobs], sizeof paths[0])) {
                j->status = JOB_NOT_BUILT;
                snprintf(j->why, sizeof j->why, "%s not found next to diag-snap", file);
                return j;
        }
        j->argv[n++] = paths[j - jobs];
        for (; args && *args && n < ELEMENTSOF(j->argv) - 1; args++)
                j->argv[n++] = (char *) *args;
        j->argv[n] = NULL;
        snprintf(j->out, sizeof j->out, "%s", out ? out : "");
        j->target = target;
        if (budget_ms)
                j->deadline_ns = MIN(overall_deadline(), diag_now_ns(CLOCK_MONOTONIC) + budget_ms * 1000000ULL);
        (void) job_start(j);
        return j;
}

static char *pid_arg(pid_t pid) {
        static char bufs[MAX_JOBS][16];
        static size_t k;
        char *b = bufs[k++ % MAX_JOBS];
        snprintf(b, sizeof bufs[0], "%d", pid);
        return b;
}

static bool has_stack_job(pid_t pid) {
        char name[64];
        snprintf(name, sizeof name, "diag-stack %d", pid);
        for (size_t i = 0; i < njobs; i++)
                if (strcmp(jobs[i].name, name) == 0)
                        return true;
        return false;
}

static size_t nstacks;

static void add_stack(pid_t pid) {
        char name[64], out[64];

        if (nstacks >= MAX_STACKS || has_stack_job(pid) || left_ms() < 300)
                return;
        if (diag_lineage_has(&lineage, pid))
                return;
        nstacks++;
        snprintf(name, sizeof name, "diag-stack %d", pid);
        snprintf(out, sizeof out, "stacks/%d.json", pid);
        add_tool(name, "diag-stack", "diag-stack", out, 20, (const char *const[]) { "-J", pid_arg(pid), NULL }, pid, STACK_BUDGET_MS);
}

/* From the text after the ")" of a stat line: PF_KTHREAD in the flags. Not from
 * cmdline, whose read waits for the memory-map lock a stuck process may hold. */
static bool stat_is_kernel_thread(const struct diag_stat *st) {
        return DIAG_STAT_FIELD(st, 9) & 0x00200000UL;   /* PF_KTHREAD */
}

/* Processes with a thread in D state (bounded scan of /proc). */
static void stacks_of_dstate(void) {
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        struct dirent *de;
        size_t seen = 0;

        while (d && (de = readdir(d)) && seen++ < 100000 && nstacks < MAX_STACKS) {
                char path[64], buf[1024];
                _cleanup_(closedirp) DIR *t = NULL;
                struct dirent *te;
                pid_t pid;

                if (diag_parse_pid(de->d_name, &pid) < 0 || pid == getpid())
                        continue;
                snprintf(path, sizeof path, "/proc/%d/task", pid);
                t = opendir(path);
                while (t && (te = readdir(t))) {
                        struct diag_stat st;
                        if (te->d_name[0] == '.')
                                continue;
                        if (!FORMAT_FITS(path, "/proc/%d/task/%s/stat", pid, te->d_name) ||
                            diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                                continue;
                        if (diag_stat_parse(buf, &st) == 0 && st.state == 'D') {
                                if (!stat_is_kernel_thread(&st))
                                        add_stack(pid);
                                break;
                        }
                }
        }
}

/* Every "pid" in chains.json: the processes of stuck chains. */
static void collect_pids(json_object *o, pid_t *out, size_t *n, size_t max) {
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        collect_pids(json_object_array_get_idx(o, i), out, n, max);
        } else if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, key, val) {
                        if (strcmp(key, "pid") == 0 && json_object_is_type(val, json_type_int)) {
                                pid_t p = (pid_t) json_object_get_int(val);
                                bool dup = false;
                                for (size_t i = 0; i < *n; i++)
                                        dup |= out[i] == p;
                                if (!dup && p > 0 && *n < max)
                                        out[(*n)++] = p;
                        } else
                                collect_pids(val, out, n, max);
                }
        }
}

/* diag-chain stopped at its --time-limit: the chains it found are complete, the
 * rest were not followed; the index lists it as timed out, with its own words. */
static bool chains_cut;

/* diag-chain has ended: stacks of the processes of its chains. */
static void after_chains(struct job *j) {
        _cleanup_free_ char *text = NULL;
        json_object *o, *inc, *t;
        pid_t pids[MAX_STACKS];
        size_t n = 0;

        if (diag_read_file_at(tmp_dirfd, "chains.json", 16 << 20, &text, NULL) < 0)
                return;
        o = json_tokener_parse(text);
        if (!o)
                return;
        if (json_object_object_get_ex(o, "incomplete", &inc) && json_object_object_get_ex(inc, "text", &t)) {
                chains_cut = true;
                j->status = JOB_TIMED_OUT;
                snprintf(j->why, sizeof j->why, "%s", json_object_get_string(t));
        }
        collect_pids(json_object_object_get(o, "chains"), pids, &n, MAX_STACKS);
        json_object_put(o);
        for (size_t i = 0; i < n; i++)
                add_stack(pids[i]);
}

/* utime+stime of every process, to find the busiest over the first part of the window. */
struct cpu_reading {
        pid_t pid;
        unsigned long long ticks;
};

static size_t read_cpu(struct cpu_reading **ret) {
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        struct cpu_reading *r = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *de;

        while (d && (de = readdir(d)) && n < 100000) {
                char path[64], buf[1024];
                struct diag_stat st;
                pid_t pid;

                if (diag_parse_pid(de->d_name, &pid) < 0 || pid == getpid())
                        continue;
                snprintf(path, sizeof path, "/proc/%d/stat", pid);
                if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                        continue;
                if (diag_stat_parse(buf, &st) < 0 || st.n < 12)
                        continue;
                /* kernel threads have no user space to sample */
                if (stat_is_kernel_thread(&st))
                        continue;
                if (diag_grow((void **) &r, &alloc, n + 1, sizeof *r) < 0)
                        break;
                r[n++] = (struct cpu_reading) { pid, DIAG_STAT_FIELD(&st, 14) + DIAG_STAT_FIELD(&st, 15) };
        }
        *ret = r;
        return n;
}

static void add_samples(const struct cpu_reading *a, size_t na, const struct cpu_reading *b, size_t nb) {
        pid_t top[TOP_CPU] = {};
        unsigned long long topd[TOP_CPU] = {};
        const pid_t *pids = top;
        size_t n = 0;

        if (arg.npids) {
                pids = arg.pids;
                n = MIN(arg.npids, (size_t) TOP_CPU);
        } else {
                for (size_t i = 0, k = 0; i < nb; i++) {
                        unsigned long long d;
                        while (k < na && a[k].pid < b[i].pid)
                                k++;
                        if (k >= na || a[k].pid != b[i].pid || b[i].ticks <= a[k].ticks ||
                            diag_lineage_has(&lineage, b[i].pid))
                                continue;
                        d = b[i].ticks - a[k].ticks;
                        for (size_t t = 0; t < TOP_CPU; t++)
                                if (d > topd[t]) {
                                        memmove(&top[t + 1], &top[t], (TOP_CPU - 1 - t) * sizeof top[0]);
                                        memmove(&topd[t + 1], &topd[t], (TOP_CPU - 1 - t) * sizeof topd[0]);
                                        top[t] = b[i].pid;
                                        topd[t] = d;
                                        break;
                                }
                }
                while (n < TOP_CPU && top[n])
                        n++;
        }
        for (size_t i = 0; i < n; i++) {
                char name[64], out[64];
                if (left_ms() < SAMPLE_NEEDS_MS)
                        break;
                if (diag_lineage_has(&lineage, pids[i]))
                        continue;
                snprintf(name, sizeof name, "diag-sample %d", pids[i]);
                snprintf(out, sizeof out, "samples/%d.json", pids[i]);
                add_tool(name, "diag-sample", "diag-sample", out, 21,
                         (const char *const[]) { "-d", "1s", "-J", pid_arg(pids[i]), NULL }, pids[i], 0);
        }
}

static int cmp_cpu(const void *x, const void *y) {
        const struct cpu_reading *a = x, *b = y;
        return (a->pid > b->pid) - (a->pid < b->pid);
}

static void add_cores(void) {
        static char max[32];

        snprintf(max, sizeof max, "%" PRIu64, arg.max_core);
        for (size_t i = 0; i < arg.ncores; i++) {
                static char outs[MAX_JOBS][PATH_MAX];
                char name[64];
                struct job *j;

                snprintf(name, sizeof name, "diag-core %d", arg.cores[i]);
                if (left_ms() < CORE_NEEDS_MS) {
                        j = job_new(name, 22);
                        if (j) {
                                j->status = JOB_SKIPPED;
                                snprintf(j->why, sizeof j->why, "not enough time left in --timeout");
                        }
                        continue;
                }
                if (mkdirat(tmp_dirfd, "cores", 0700) < 0 && errno != EEXIST)
                        continue;
                if (!FORMAT_FITS(outs[i % MAX_JOBS], "%s/cores/", tmp_path))
                        continue;
                add_tool(name, "diag-core", "diag-core", NULL, 22,
                         (const char *const[]) { "-q", "--no-progress", "--max-size", max,
                                                 "-o", outs[i % MAX_JOBS], pid_arg(arg.cores[i]), NULL }, arg.cores[i], 0);
        }
}

static struct job *chain_job;

static void run_all(void) {
        _cleanup_free_ struct cpu_reading *a = NULL, *b = NULL;
        size_t na, nb;
        bool chains_done = false, samples_started = false;
        uint64_t window_end;

        na = read_cpu(&a);
        qsort(a, na, sizeof *a, cmp_cpu);
        window_end = diag_now_ns(CLOCK_MONOTONIC) + CPU_WINDOW_MS * 1000000ULL;

        for (size_t i = 0; i < ELEMENTSOF(part_defs); i++) {
                struct job *j = job_new(part_defs[i].name, (int) i);
                if (!j)
                        break;
                j->part = &part_defs[i];
                if (!part_defs[i].fn) {
                        j->status = JOB_NOT_BUILT;
                        snprintf(j->why, sizeof j->why, "this diag-snap was built without the part");
                        continue;
                }
                (void) job_start(j);
        }
        {
                /* one walk: the JSON on stdout, the text into chains.txt (its .part name) */
                static char limit[32], text[PATH_MAX];
                char part[64];
                unsigned left = left_ms();

                snprintf(limit, sizeof limit, "%ums",
                         MAX(MIN((unsigned) CHAIN_BUDGET_MS, left > AFTER_CHAINS_MS ? left - AFTER_CHAINS_MS : 0), 100u));
                if (diag_snap_part_name("chains.txt", part, sizeof part) == 0 && FORMAT_FITS(text, "%s/%s", tmp_path, part)) {
                        chain_job = add_tool("diag-chain", "diag-chain", "diag-chain", "chains.json", 10,
                                             (const char *const[]) { "--all", "--min-blocked", STUCK_MIN, "--exclude-lineage",
                                                                     self_pid, "--time-limit", limit, "--text", text, "-J", NULL },
                                             0, 0);
                        if (chain_job)
                                snprintf(chain_job->out2, sizeof chain_job->out2, "chains.txt");
                }
        }
        add_tool("diag-locks", "diag-locks", "diag-locks", "locks.json", 11, (const char *const[]) { "-J", NULL }, 0,
                 TOOL_BUDGET_MS);
        add_tool("diag-fds", "diag-fds", "diag-fds", "fds-summary.json", 12,
                 (const char *const[]) { "--summary", "-J", NULL }, 0, TOOL_BUDGET_MS);
        add_tool("shmdump", "shmdump", "../shmdump", "shm.json", 13, (const char *const[]) { "-J", NULL }, 0,
                 TOOL_BUDGET_MS);
        for (size_t i = 0; i < arg.npids; i++) {
                struct job *j;
                char name[64];

                if (!diag_lineage_has(&lineage, arg.pids[i])) {
                        add_stack(arg.pids[i]);
                        continue;
                }
                /* named: say why there is no stack of it */
                snprintf(name, sizeof name, "diag-stack %d", arg.pids[i]);
                j = job_new(name, 20);
                if (j) {
                        j->status = JOB_SKIPPED;
                        snprintf(j->why, sizeof j->why, "pid %d is diag-snap's own run (itself, a process waiting "
                                 "for it, or a child of it): not stopped", arg.pids[i]);
                }
        }
        stacks_of_dstate();
        add_cores();

        while (!got_signal) {
                if (!samples_started && diag_now_ns(CLOCK_MONOTONIC) >= window_end) {
                        samples_started = true;
                        nb = read_cpu(&b);
                        qsort(b, nb, sizeof *b, cmp_cpu);
                        add_samples(a, na, b, nb);
                }
                if (!chains_done && (!chain_job || chain_job->status != JOB_RUNNING)) {
                        chains_done = true;
                        if (chain_job && chain_job->status == JOB_OK)
                                after_chains(chain_job);
                }
                if (!running_jobs() && samples_started && chains_done)
                        break;
                jobs_step(samples_started ? 200 : 50);
        }
}

static void add_finding(int sev, int order, const char *file, const char *text) {
        if (nlines >= MAX_LINES)
                return;
        lines[nlines] = (struct line) { .kind = 'F', .sev = sev, .order = order,
                                        .file = strdup(file), .text = strdup(text) };
        if (!lines[nlines].file || !lines[nlines].text) {
                free(lines[nlines].file);
                free(lines[nlines].text);
                return;
        }
        nlines++;
}

/* How many chains chains.json holds, and what the first (the one diag-chain
 * ranks highest) says: its verdict and how many threads wait in it. */
static size_t count_chains(char *first, size_t size) {
        _cleanup_free_ char *text = NULL;
        json_object *o, *c, *v;
        size_t n = 0;

        first[0] = '\0';
        if (diag_read_file_at(tmp_dirfd, "chains.json", 16 << 20, &text, NULL) < 0)
                return 0;
        o = json_tokener_parse(text);
        if (o && json_object_object_get_ex(o, "chains", &c) && json_object_is_type(c, json_type_array)) {
                json_object *ch = json_object_array_get_idx(c, 0);

                n = json_object_array_length(c);
                if (ch && json_object_object_get_ex(ch, "verdict", &v) && json_object_is_type(v, json_type_string)) {
                        json_object *t;
                        size_t waiting = json_object_object_get_ex(ch, "threads", &t) &&
                                         json_object_is_type(t, json_type_array) ? json_object_array_length(t) : 0;
                        if (waiting > 1)
                                snprintf(first, size, "; %zu threads wait in the first, %s", waiting, json_object_get_string(v));
                        else
                                snprintf(first, size, "; the first, %s", json_object_get_string(v));
                }
        }
        json_object_put(o);
        return n;
}

/* What the tools' exit statuses say (their documents hold the evidence). */
static void tool_findings(void) {
        for (size_t i = 0; i < njobs; i++) {
                const struct job *j = &jobs[i];
                char text[1280], first[1024];

                if (j->status != JOB_OK && !(j == chain_job && chains_cut))
                        continue;
                if (j == chain_job && (j->exit_status == 3 || j->exit_status == 5)) {
                        size_t n = count_chains(first, sizeof first);
                        if (j->exit_status == 3)
                                snprintf(text, sizeof text, "wait chains: %zu chain%s of blocked threads, a deadlock among them%s",
                                         n, n == 1 ? "" : "s", first);
                        else
                                snprintf(text, sizeof text, "wait chains: %zu chain%s of blocked threads%s", n, n == 1 ? "" : "s", first);
                        add_finding(j->exit_status == 3 ? DIAG_SNAP_CRIT : DIAG_SNAP_NOTICE, j->order, "chains.txt", text);
                } else if (strcmp(j->name, "diag-locks") == 0 && j->exit_status == 3)
                        add_finding(DIAG_SNAP_CRIT, j->order, "locks.json", "locks: a deadlock was found");
        }
}

/* ---- index.json and summary.txt ---- */

static const char *describe(const char *name) {
        const char *dot = strchr(name, '.');
        size_t stem = dot ? (size_t) (dot - name) : strlen(name);

        for (size_t i = 0; i < ELEMENTSOF(file_descs); i++) {
                const char *p = file_descs[i].stem;
                size_t l = strlen(p);
                if (p[l - 1] == '/' ? strncmp(name, p, l) == 0 : (l == stem && strncmp(name, p, l) == 0))
                        return file_descs[i].what;
        }
        return "a file of a part";
}

/* The "schema" member of a JSON file of the bundle (NULL for text). */
static json_object *schema_of(int dfd, const char *name) {
        _cleanup_free_ char *text = NULL;
        json_object *o, *v, *ret = NULL;
        size_t len = strlen(name);

        if (len < 5 || strcmp(name + len - 5, ".json") != 0 ||
            diag_read_file_at(dfd, name, 64 << 20, &text, NULL) < 0)
                return NULL;
        o = json_tokener_parse(text);
        if (o && json_object_object_get_ex(o, "schema", &v) && json_object_is_type(v, json_type_string))
                ret = json_object_new_string(json_object_get_string(v));
        json_object_put(o);
        return ret;
}

static void list_files(int dfd, const char *prefix, json_object *arr, int depth, uint64_t *total) {
        DIR *d = depth <= 4 ? open_dir_at(dfd, prefix) : NULL;
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char name[PATH_MAX];
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "/" : "", de->d_name);
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        list_files(dfd, name, arr, depth + 1, total);
                } else if (S_ISREG(st.st_mode)) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "what", json_object_new_string(describe(name)));
                        json_object_object_add(o, "schema", schema_of(dfd, name));
                        json_object_object_add(o, "bytes", json_object_new_int64((int64_t) st.st_size));
                        json_object_array_add(arr, o);
                        *total += (uint64_t) st.st_size;
                }
        }
        closedir(d);
}

static const char *const sev_names[] = { "info", "notice", "warn", "crit" };

static int cmp_lines(const void *x, const void *y) {
        const struct line *a = x, *b = y;
        if (a->kind != b->kind)
                return a->kind - b->kind;
        if (a->sev != b->sev)
                return b->sev - a->sev;
        if (a->order != b->order)
                return a->order - b->order;
        return (a > b) - (a < b);
}

static char hostname[256];
static char stamp[32];
static time_t t_wall;

static json_object *summary_json(void) {
        json_object *o = json_object_new_object(), *f = json_object_new_array(), *m = json_object_new_array();

        for (size_t i = 0; i < nlines; i++) {
                json_object *e = json_object_new_object();
                if (lines[i].kind == 'F') {
                        json_object_object_add(e, "severity", json_object_new_string(sev_names[lines[i].sev]));
                        json_object_object_add(e, "file", json_object_new_string(lines[i].file));
                        json_object_object_add(e, "text", json_object_new_string(lines[i].text));
                        json_object_array_add(f, e);
                } else {
                        json_object_object_add(e, "what", json_object_new_string(lines[i].file));
                        json_object_object_add(e, "why", json_object_new_string(lines[i].text));
                        json_object_array_add(m, e);
                }
        }
        json_object_object_add(o, "findings", f);
        json_object_object_add(o, "missing", m);
        return o;
}

static json_object *index_json(int argc, char **argv, json_object **ret_summary) {
        json_object *o = json_object_new_object(), *a, *files = json_object_new_array();
        char tbuf[64];
        uint64_t total = 0;

        json_object_object_add(o, "schema", json_object_new_string("diag-snap/1"));
        json_object_object_add(o, "tool", json_object_new_string("diag-snap"));
        json_object_object_add(o, "version", json_object_new_string(DIAG_VERSION));
        json_object_object_add(o, "host", json_object_new_string(hostname));
        strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t_wall));
        json_object_object_add(o, "time", json_object_new_string(tbuf));
        json_object_object_add(o, "time_unix", json_object_new_int64((int64_t) t_wall));
        json_object_object_add(o, "timeout_ms", json_object_new_int64((int64_t) arg.timeout_ms));
        json_object_object_add(o, "elapsed_ms",
                               json_object_new_int64((int64_t) ((diag_now_ns(CLOCK_MONOTONIC) - t_start) / 1000000ULL)));
        a = json_object_new_array();
        for (int i = 0; i < argc; i++)
                json_object_array_add(a, json_object_new_string(argv[i]));
        json_object_object_add(o, "command_line", a);

        a = json_object_new_array();
        for (size_t i = 0; i < njobs; i++) {
                const struct job *j = &jobs[i];
                json_object *p = json_object_new_object();
                json_object_object_add(p, "name", json_object_new_string(j->name));
                json_object_object_add(p, "kind", json_object_new_string(j->part ? "part" : "tool"));
                json_object_object_add(p, "status", json_object_new_string(status_names[j->status]));
                json_object_object_add(p, "ms", json_object_new_int64(j->end_ns > j->start_ns ?
                                                (int64_t) ((j->end_ns - j->start_ns) / 1000000ULL) : 0));
                json_object_object_add(p, "output", j->out[0] ? json_object_new_string(j->out) : NULL);
                json_object_object_add(p, "why", j->why[0] ? json_object_new_string(j->why) : NULL);
                json_object_array_add(a, p);
        }
        json_object_object_add(o, "parts", a);

        *ret_summary = summary_json();
        json_object_object_add(o, "missing", json_object_get(json_object_object_get(*ret_summary, "missing")));

        /* the files, index.json and summary.txt included (their sizes as written) */
        list_files(tmp_dirfd, "", files, 0, &total);
        json_object_object_add(o, "files", files);
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t) total));
        return o;
}

static void write_summary(FILE *f) {
        bool any = false;
        size_t nmissing = 0;

        fprintf(f, "diag-snap %s of %s at %s\n\n", DIAG_VERSION, hostname, stamp);
        for (size_t i = 0; i < nlines; i++) {
                const struct line *l = &lines[i];
                if (l->kind != 'F')
                        continue;
                if (l->sev >= DIAG_SNAP_NOTICE)
                        any = true;
                fprintf(f, "%-6s %s", sev_names[l->sev], l->text);
                if (l->file[0])
                        fprintf(f, " (see %s)", l->file);
                fputc('\n', f);
        }
        if (!any)
                fprintf(f, "nothing stands out\n");
        for (size_t i = 0, n = 0; i < njobs; i++) {
                const struct job *j = &jobs[i];
                if (j->status == JOB_FAILED || j->status == JOB_TIMED_OUT)
                        fprintf(f, "%s%s %s: %s\n", n++ ? "" : "\n", j->name, status_names[j->status], j->why);
        }
        for (size_t i = 0; i < nlines; i++)
                if (lines[i].kind == 'M') {
                        if (!nmissing++)
                                fprintf(f, "\nMissing:\n");
                        fprintf(f, "  %s: %s\n", lines[i].file, lines[i].text);
                }
        for (size_t i = 0; i < njobs; i++)
                if (jobs[i].status == JOB_NOT_BUILT) {
                        if (!nmissing++)
                                fprintf(f, "\nMissing:\n");
                        fprintf(f, "  %s: not built (%s)\n", jobs[i].name, jobs[i].why);
                }
}

/* All of it, or negative errno; a signal to stop ends it with -EINTR. */
static int write_all(int fd, const void *p, size_t len) {
        for (const char *c = p, *end = c + len; c < end;) {
                ssize_t n = write(fd, c, (size_t) (end - c));

                if (n > 0)
                        c += n;
                else if (n == 0)
                        return -EIO;
                else if (errno != EINTR)
                        return negative_errno();
                else if (got_signal)
                        return -EINTR;
        }
        return 0;
}

static int write_bundle_file(const char *name, const char *data, size_t len) {
        _cleanup_close_ int fd = openat(tmp_dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        int r;

        if (fd < 0)
                return negative_errno();
        r = write_all(fd, data, len);
        if (r < 0)
                return r;
        if (fsync(fd) < 0 && errno != EINVAL)
                return negative_errno();
        return 0;
}

/* ---- tar (POSIX ustar) ---- */


static void octal(char *field, size_t size, uint64_t v) {
        snprintf(field, size, "%0*" PRIo64, (int) size - 1, v);
}

static int tar_header(int out, const char *name, bool dir, uint64_t size, mode_t mode, time_t mtime) {
        unsigned char h[512] = {};
        size_t len = strlen(name);
        unsigned sum = 0;

        if (size > 077777777777ULL)
                return -EFBIG;          /* past the 11 octal digits of ustar */
        if (len < 100)
                memcpy(h, name, len);
        else {
                const char *slash = strchr(name + len - 100 < name ? name : name + len - 100, '/');
                if (!slash || (size_t) (slash - name) > 155 || strlen(slash + 1) >= 100)
                        return -ENAMETOOLONG;
                memcpy(h + 345, name, (size_t) (slash - name));
                memcpy(h, slash + 1, strlen(slash + 1));
        }
        octal((char *) h + 100, 8, mode & 07777);
        octal((char *) h + 108, 8, 0);
        octal((char *) h + 116, 8, 0);
        octal((char *) h + 124, 12, dir ? 0 : size);
        octal((char *) h + 136, 12, (uint64_t) mtime);
        memset(h + 148, ' ', 8);
        h[156] = dir ? '5' : '0';
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        for (size_t i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *) h + 148, 8, "%06o", sum);
        h[155] = ' ';
        return write_all(out, h, 512);
}

static int tar_tree(int out, int dfd, const char *rel, const char *arcname, int depth) {
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (depth > 4)
                return 0;
        d = open_dir_at(dfd, rel);
        if (!d)
                return negative_errno();
        while (r == 0 && (de = readdir(d))) {
                char name[PATH_MAX], sub[PATH_MAX];
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(name, sizeof name, "%s/%s", arcname, de->d_name);
                snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        char dname[PATH_MAX];
                        if (!FORMAT_FITS(dname, "%s/", name))
                                continue;
                        r = tar_header(out, dname, true, 0, st.st_mode, st.st_mtime);
                        if (r == 0)
                                r = tar_tree(out, dfd, sub, name, depth + 1);
                } else if (S_ISREG(st.st_mode)) {
                        _cleanup_close_ int f = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        char buf[65536];
                        uint64_t left = (uint64_t) st.st_size;

                        if (f < 0)
                                continue;
                        r = tar_header(out, name, false, left, st.st_mode, st.st_mtime);
                        while (r == 0 && left) {
                                ssize_t n = read(f, buf, MIN(sizeof buf, left));
                                if (n <= 0) {
                                        /* shorter than it said: pad with zeros, the header is out */
                                        memset(buf, 0, sizeof buf);
                                        n = (ssize_t) MIN(sizeof buf, left);
                                }
                                r = write_all(out, buf, (size_t) n);
                                left -= (uint64_t) n;
                        }
                        if (r == 0 && st.st_size % 512) {
                                static const char zeros[512];
                                r = write_all(out, zeros, 512 - (size_t) (st.st_size % 512));
                        }
                }
        }
        closedir(d);
        return r;
}

static int tar_stream(int out, const char *arcname) {
        static const char zeros[1024];
        char dname[PATH_MAX];
        int r;

        snprintf(dname, sizeof dname, "%s/", arcname);
        r = tar_header(out, dname, true, 0, 0700, t_wall);
        if (r == 0)
                r = tar_tree(out, tmp_dirfd, "", arcname, 0);
        if (r == 0)
                r = write_all(out, zeros, sizeof zeros);
        return r;
}

/* ---- --show ---- */

static int show(const char *path) {
        struct stat st;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        if (stat(path, &st) < 0) {
                log_error_errno(-errno, "Cannot open %s: %m", path);
                return DIAG_EXIT_FAILURE;
        }
        if (S_ISDIR(st.st_mode)) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/summary.txt", path);
                r = diag_read_file_at(AT_FDCWD, p, 16 << 20, &text, &len);
                if (r < 0) {
                        log_error_errno(r, "Cannot read %s: %m", p);
                        return DIAG_EXIT_FAILURE;
                }
        } else {
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                unsigned char h[512];

                if (fd < 0) {
                        log_error_errno(-errno, "Cannot open %s: %m", path);
                        return DIAG_EXIT_FAILURE;
                }
                for (;;) {
                        unsigned long long size;
                        char sz[13], name[101], *slash;
                        ssize_t n = read(fd, h, sizeof h);

                        if (n != (ssize_t) sizeof h || h[0] == 0 || memcmp(h + 257, "ustar", 5) != 0) {
                                log_error("%s: no summary.txt in it (not a diag-snap bundle or tar of one)", path);
                                return DIAG_EXIT_FAILURE;
                        }
                        memcpy(sz, h + 124, 12);
                        sz[12] = 0;
                        memcpy(name, h, 100);
                        name[100] = 0;
                        if (diag_parse_ull(diag_strip(sz), 8, &size) < 0 || size > (1ULL << 40)) {
                                log_error("%s: a damaged tar header", path);
                                return DIAG_EXIT_FAILURE;
                        }
                        slash = strrchr(name, '/');
                        if (h[156] == '0' && strcmp(slash ? slash + 1 : name, "summary.txt") == 0 && size < (16 << 20)) {
                                text = malloc(size + 1);
                                if (!text || read(fd, text, size) != (ssize_t) size) {
                                        log_error("%s: summary.txt cut short", path);
                                        return DIAG_EXIT_FAILURE;
                                }
                                len = size;
                                break;
                        }
                        if (lseek(fd, (off_t) ((size + 511) / 512 * 512), SEEK_CUR) < 0) {
                                log_error_errno(-errno, "Cannot read %s: %m", path);
                                return DIAG_EXIT_FAILURE;
                        }
                }
        }
        fwrite(text, 1, len, stdout);
        return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : DIAG_EXIT_OK;
}

/* ---- retention ---- */

struct old_bundle {
        char name[NAME_MAX + 1];
        int64_t time;
        uint64_t bytes;
};

static int cmp_old(const void *x, const void *y) {
        const struct old_bundle *a = x, *b = y;
        if (a->time != b->time)
                return a->time < b->time ? -1 : 1;
        return strcmp(a->name, b->name);
}

/* Bundles of diag-snap in dir (their index.json says "tool": "diag-snap"), oldest first. */
static void retention(const char *dir, const char *keep_name) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ struct old_bundle *b = NULL;
        size_t n = 0, alloc = 0, count;
        uint64_t total = 0;
        DIR *d;
        struct dirent *de;

        if (dfd < 0)
                return;
        d = fdopendir(dup(dfd));
        if (!d)
                return;
        while ((de = readdir(d)) && n < 100000) {
                _cleanup_close_ int bfd = -1;
                _cleanup_free_ char *text = NULL;
                json_object *o, *v;
                bool ours;

                if (de->d_name[0] == '.')
                        continue;
                bfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (bfd < 0 || diag_read_file_at(bfd, "index.json", 16 << 20, &text, NULL) < 0)
                        continue;
                o = json_tokener_parse(text);
                ours = o && json_object_object_get_ex(o, "tool", &v) &&
                       strcmp(json_object_get_string(v), "diag-snap") == 0;
                if (ours && diag_grow((void **) &b, &alloc, n + 1, sizeof *b) == 0) {
                        snprintf(b[n].name, sizeof b[n].name, "%s", de->d_name);
                        b[n].time = json_object_object_get_ex(o, "time_unix", &v) ? json_object_get_int64(v) : 0;
                        b[n].bytes = json_object_object_get_ex(o, "bytes", &v) ? (uint64_t) json_object_get_int64(v) : 0;
                        total += b[n].bytes;
                        n++;
                }
                json_object_put(o);
        }
        closedir(d);
        qsort(b, n, sizeof *b, cmp_old);
        count = n;
        for (size_t i = 0; i < n; i++) {
                bool over = (arg.keep >= 0 && count > (size_t) arg.keep) || (arg.keep_size && total > arg.keep_size);
                if (!over)
                        break;
                if (strcmp(b[i].name, keep_name) == 0)
                        continue;
                remove_tree_at(dfd, b[i].name, 0);
                count--;
                total -= b[i].bytes;
        }
}

/* ---- main ---- */

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options] [PID...]\n"
               " %1$s --show BUNDLE\n"
               "\n"
               "Write one bundle of everything an incident needs: host, processes, cgroups,\n"
               "OOM kills, D-state threads, wait chains, locks, open files, shared memory,\n"
               "stacks and samples, within a few seconds, with summary.txt on top.\n"
               "\n"
               "Options:\n"
               " -o, --output DIR         the bundle directory (default diag-snap.HOST.YYYYMMDD-HHMMSS);\n"
               "                          - writes a tar stream of it to stdout\n"
               "     --timeout TIME       the whole bundle within TIME (default 5s)\n"
               "     --cores PID...       also an ELF core of each (comma-separated list)\n"
               "     --max-core-size SIZE at most SIZE of memory per core (default 1G)\n"
               "     --keep N             keep the N newest bundles of diag-snap next to DIR\n"
               "     --keep-size SIZE     remove the oldest bundles beyond SIZE in all\n"
               "     --show BUNDLE        print the summary of a bundle (directory or tar)\n"
               " -J, --json               also print the index and summary as JSON on stdout\n"
               " -v, --verbose            say more on stderr\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Exit status: 0 bundle written, 1 no bundle, 2 bad usage,\n"
               "4 bundle written, but some part failed, timed out or missed data.\n"
               "\n"
               "Examples:\n"
               " %1$s                       a bundle in the current directory\n"
               " ssh host %1$s -o - > host.tar\n"
               " %1$s --show host.tar\n",
               diag_progname());
}

enum { OPT_TIMEOUT = 0x100, OPT_CORES, OPT_MAX_CORE, OPT_KEEP, OPT_KEEP_SIZE, OPT_SHOW };

static int fail(int r, const char *fmt, ...) _printf_(2, 3);
static int fail(int r, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        kill_all_jobs();
        remove_tmp();
        json_object_put(index_doc);
        json_object_put(summary_doc);
        index_doc = summary_doc = NULL;
        if (r)
                log_error_errno(r, "%s: %m", msg);
        else
                log_error("%s", msg);
        return DIAG_EXIT_FAILURE;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { .name = "output",  .has_arg = required_argument, .val = 'o' },
                { .name = "json",    .val = 'J' },
                { .name = "timeout", .has_arg = required_argument, .val = OPT_TIMEOUT },
                { .name = "cores",   .has_arg = required_argument, .val = OPT_CORES },
                { .name = "max-core-size", .has_arg = required_argument, .val = OPT_MAX_CORE },
                { .name = "keep",    .has_arg = required_argument, .val = OPT_KEEP },
                { .name = "keep-size", .has_arg = required_argument, .val = OPT_KEEP_SIZE },
                { .name = "show",    .has_arg = required_argument, .val = OPT_SHOW },
                DIAG_STD_LONGOPTS,
                {}
        };
        const char *show_path = NULL;
        char default_name[512], parent[PATH_MAX], base[NAME_MAX + 1], arcname[NAME_MAX + 1];
        bool to_stdout;
        struct sigaction sa = { .sa_handler = on_signal };
        _cleanup_free_ char *sum_text = NULL;
        size_t sum_len = 0;
        FILE *mf;
        int c, r, exit_code = DIAG_EXIT_OK;
        bool cores_mode = false;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        while ((c = getopt_long(argc, argv, "o:J" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                long long v;
                uint64_t sz;

                switch (c) {
                case 'o':
                        arg.out = optarg;
                        if (!arg.out[0])
                                return diag_usage_error("%s", "empty output directory");
                        break;
                case OPT_TIMEOUT:
                        if (diag_parse_duration_ms(optarg, &sz) < 0 || sz < 500 || sz > 3600000)
                                return diag_usage_error("invalid timeout: '%s' (500ms to 1h)", optarg);
                        arg.timeout_ms = sz;
                        break;
                case OPT_CORES:
                        if (diag_parse_pid_list(optarg, &arg.cores, &arg.ncores, &arg.cores_alloc) < 0)
                                return diag_usage_error("invalid process list: '%s'", optarg);
                        cores_mode = true;
                        break;
                case OPT_MAX_CORE:
                        if (diag_parse_size(optarg, &sz) < 0 || sz < 4096)
                                return diag_usage_error("invalid size: '%s' (at least 4K)", optarg);
                        arg.max_core = sz;
                        break;
                case OPT_KEEP:
                        if (diag_parse_ll(optarg, 10, 1, 1000000, &v) < 0)
                                return diag_usage_error("invalid count: '%s' (at least 1)", optarg);
                        arg.keep = v;
                        break;
                case OPT_KEEP_SIZE:
                        if (diag_parse_size(optarg, &sz) < 0 || sz == 0)
                                return diag_usage_error("invalid size: '%s'", optarg);
                        arg.keep_size = sz;
                        break;
                case OPT_SHOW:
                        show_path = optarg;
                        break;
                case 'J':
                        arg.json = true;
                        break;
                default:
                        if (!diag_std_option(c, usage, &r))
                                return diag_usage_error("unexpected option");
                        if (r >= 0)
                                return r;
                }
        }
        (void) cores_mode;
        if (show_path) {
                if (optind < argc || arg.out || arg.json)
                        return diag_usage_error("%s", "--show takes a bundle and nothing else");
                return show(show_path);
        }
        for (int i = optind; i < argc; i++)
                if (diag_parse_pid_list(argv[i], &arg.pids, &arg.npids, &arg.pids_alloc) < 0)
                        return diag_usage_error("invalid process id: '%s'", argv[i]);
        to_stdout = arg.out && strcmp(arg.out, "-") == 0;
        if (to_stdout && arg.json)
                return diag_usage_error("%s", "-J prints on stdout, where the tar goes with -o -");
        if (to_stdout && (arg.keep >= 0 || arg.keep_size))
                return diag_usage_error("%s", "--keep and --keep-size need a directory (-o DIR)");
        if (to_stdout && isatty(STDOUT_FILENO))
                return diag_usage_error("%s", "refusing to write a tar stream to a terminal");

        t_start = diag_now_ns(CLOCK_MONOTONIC);
        t_wall = time(NULL);
        if (gethostname(hostname, sizeof hostname - 1) < 0)
                snprintf(hostname, sizeof hostname, "localhost");
        for (char *p = hostname; *p; p++)
                if (*p == '/')
                        *p = '_';
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&t_wall));
        snprintf(default_name, sizeof default_name, "diag-snap.%s.%s", hostname, stamp);
        snprintf(arcname, sizeof arcname, "%.200s", default_name);

        /* where the bundle is built: a temporary directory next to DIR */
        if (to_stdout) {
                const char *tmp = getenv("TMPDIR");
                snprintf(parent, sizeof parent, "%s", tmp && *tmp ? tmp : "/tmp");
                if (!FORMAT_FITS(base, "%s", default_name))
                        return fail(0, "the bundle's name is too long: %s", default_name);
        } else {
                const char *out = arg.out ? arg.out : default_name;
                const char *slash;
                size_t len = strlen(out);
                struct stat st;

                while (len > 1 && out[len - 1] == '/')
                        len--;
                if (len >= sizeof parent)
                        return diag_usage_error("%s", "output path too long");
                memcpy(parent, out, len);
                parent[len] = 0;
                slash = strrchr(parent, '/');
                if (slash) {
                        if (!FORMAT_FITS(base, "%s", slash + 1))
                                return diag_usage_error("%s", "output name too long");
                        if (slash == parent)
                                parent[1] = 0;
                        else
                                parent[slash - parent] = 0;
                } else {
                        if (!FORMAT_FITS(base, "%s", parent))
                                return diag_usage_error("%s", "output name too long");
                        snprintf(parent, sizeof parent, ".");
                }
                if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                        return diag_usage_error("invalid output directory: '%s'", out);
                snprintf(arcname, sizeof arcname, "%s", base);
                if (fstatat(AT_FDCWD, out, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        log_error("%s exists: diag-snap never replaces anything", out);
                        return DIAG_EXIT_FAILURE;
                }
        }
        if (snprintf(tmp_path, sizeof tmp_path, "%s/.%.200s.tmp-XXXXXX", parent, base) >= (int) sizeof tmp_path)
                return diag_usage_error("%s", "output path too long");

        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGPIPE, &sa, NULL);

        if (!mkdtemp(tmp_path)) {
                r = negative_errno();
                tmp_path[0] = 0;
                return fail(r, "Cannot create a directory in %s", parent);
        }
        tmp_dirfd = open(tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tmp_dirfd < 0)
                return fail(negative_errno(), "Cannot open %s", tmp_path);
        find_tools_dir();
        if (diag_lineage_init(getpid(), &lineage) < 0)
                lineage = (struct diag_lineage) { .self = getpid() };
        snprintf(self_pid, sizeof self_pid, "%d", (int) getpid());

        run_all();
        if (got_signal)
                return fail(0, "interrupted by signal %d: no bundle written", (int) got_signal);
        kill_all_jobs();        /* none is left; a stuck one is not waited for again */
        remove_parts_at(tmp_dirfd, "", 0);

        for (size_t i = 0; i < njobs; i++)
                log_debug("%s: %s in %" PRIu64 " ms%s%s", jobs[i].name, status_names[jobs[i].status],
                          (uint64_t) (jobs[i].end_ns > jobs[i].start_ns ? (jobs[i].end_ns - jobs[i].start_ns) / 1000000ULL : 0),
                          jobs[i].why[0] ? ": " : "", jobs[i].why);
        tool_findings();
        qsort(lines, nlines, sizeof *lines, cmp_lines);
        for (size_t i = 0; i < njobs; i++)
                if (jobs[i].status == JOB_FAILED || jobs[i].status == JOB_TIMED_OUT)
                        exit_code = DIAG_EXIT_PARTIAL;
        for (size_t i = 0; i < nlines; i++)
                if (lines[i].kind == 'M')
                        exit_code = DIAG_EXIT_PARTIAL;

        mf = open_memstream(&sum_text, &sum_len);
        if (!mf)
                return fail(-ENOMEM, "Cannot write the summary");
        write_summary(mf);
        if (fclose(mf) != 0)
                return fail(-ENOMEM, "Cannot write the summary");
        r = write_bundle_file("summary.txt", sum_text, sum_len);
        if (r < 0)
                return fail(r, "Cannot write summary.txt in %s", parent);
        {
                /* index.json lists itself: its size is that of the text written */
                const char *text;
                json_object *files, *self;

                index_doc = index_json(argc, argv, &summary_doc);
                files = json_object_object_get(index_doc, "files");
                self = json_object_new_object();
                json_object_object_add(self, "name", json_object_new_string("index.json"));
                json_object_object_add(self, "what", json_object_new_string(describe("index.json")));
                json_object_object_add(self, "schema", json_object_new_string("diag-snap/1"));
                json_object_object_add(self, "bytes", json_object_new_int64(0));
                json_object_array_add(files, self);
                text = json_object_to_json_string_ext(index_doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
                for (int k = 0; k < 3; k++) {
                        /* its own size, settled in a few rounds (the number's digits) */
                        size_t l = strlen(text) + 1;
                        json_object_object_add(self, "bytes", json_object_new_int64((int64_t) l));
                        text = json_object_to_json_string_ext(index_doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
                }
                {
                        _cleanup_free_ char *t = NULL;
                        if (asprintf(&t, "%s\n", text) < 0)
                                return fail(-ENOMEM, "Cannot write index.json");
                        r = write_bundle_file("index.json", t, strlen(t));
                }
                if (r < 0)
                        return fail(r, "Cannot write index.json in %s", parent);
        }
        if (got_signal)
                return fail(0, "interrupted by signal %d: no bundle written", (int) got_signal);

        if (to_stdout) {
                r = tar_stream(STDOUT_FILENO, arcname);
                if (r == -EPIPE)
                        return fail(0, "standard output closed before the bundle was written");
                if (r < 0)
                        return fail(r, "Cannot write the tar stream");
                remove_tmp();
        } else {
                char final[PATH_MAX];
                int pfd;

                if (!FORMAT_FITS(final, "%s/%s", parent, base))
                        return fail(0, "the bundle's path is too long: %s/%s", parent, base);
                pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (pfd >= 0) {
                        (void) fsync(pfd);
                        close(pfd);
                }
                if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
                        r = negative_errno();
                        if (r == -EEXIST)
                                return fail(0, "%s exists: diag-snap never replaces anything", final);
                        return fail(r, "Cannot rename the bundle to %s", final);
                }
                tmp_path[0] = 0;
                if (arg.keep >= 0 || arg.keep_size)
                        retention(parent, base);
                if (!arg.json) {
                        /* where the bundle is, as mktemp(1) says it; the bundle is
                         * there even when nobody reads this */
                        printf("%s\n", final);
                        (void) fflush(stdout);
                }
        }
        if (arg.json) {
                json_object *doc = json_object_new_object();
                json_object_object_add(doc, "index", json_object_get(index_doc));
                json_object_object_add(doc, "summary", json_object_get(summary_doc));
                puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(doc);
                if (diag_close_stdout() < 0)
                        exit_code = DIAG_EXIT_FAILURE;
        }
        json_object_put(index_doc);
        json_object_put(summary_doc);
        for (size_t i = 0; i < nlines; i++) {
                free(lines[i].file);
                free(lines[i].text);
        }
        free(arg.pids);
        free(arg.cores);
        return exit_code;
}
