/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag: run diag-VERB. `diag stack 1234` is `diag-stack 1234`; `diag shm` (or
 * `diag shmdump`) is `shmdump`. The tools are looked up next to this binary,
 * then in the build tree layout (tools/diag/diag -> tools/diag-VERB/diag-VERB,
 * shmdump/shmdump), then in the package's libexec directory, then on PATH.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "config.h"
#include "diag/log.h"
#include "diag/util.h"

/* A verb runs diag-NAME, found in the build tree in tools/diag-NAME, unless the
 * table names its program (and that program's build directory, relative to
 * tools/) and maybe a second name for the verb. */
static const struct verb {
        const char *name;
        const char *help;
        const char *file;
        const char *build_dir;
        const char *alias;
} verbs[] = {
        { "stack", "every thread's state, system call and stack, from one snapshot" },
        { "fds",   "open files, sockets with their peers and TCP state, locks" },
        { "locks", "futex and file locks: owners, waiters, deadlocks" },
        { "chain", "follow a hung thread's wait chain to what it really waits for" },
        { "core",  "a gdb-ready core of a live process, with a short stop" },
        { "shm",   "shared memory segments, who maps them, the channels inside (shmdump)",
          "shmdump", "../shmdump", "shmdump" },
        { "sample", "what a spinning or slow process does over seconds: hot stacks, waits, system calls" },
        { "snap",  "a snapshot of everything, before the evidence is gone" },
        { "record", "a flight recorder: the host and every process every few seconds, snapshots on triggers" },
        { "top",   "the live incident screen: who spins, grows, thrashes or waits, and on what; replays a recording" },
};

static char self_dir[PATH_MAX];

static void find_self_dir(void) {
        ssize_t n = readlink("/proc/self/exe", self_dir, sizeof self_dir - 1);
        char *s;

        if (n <= 0) {
                self_dir[0] = 0;
                return;
        }
        self_dir[n] = 0;
        s = strrchr(self_dir, '/');
        if (s)
                *s = 0;
}

/* snprintf that says whether all of it fit: a cut path must never be run. */
_printf_(3, 4)
static bool format_fits(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return n >= 0 && (size_t) n < size;
}

static bool executable_at(char *buf, size_t size, const char *dir, const char *sub, const char *file) {
        if (sub ? !format_fits(buf, size, "%s/../%s/%s", dir, sub, file)
                : !format_fits(buf, size, "%s/%s", dir, file))
                return false;
        return access(buf, X_OK) == 0;
}

/* Full path of a tool (or of a helper) by file name; false to try PATH. */
static bool find_tool(const char *file, const char *builddir_sub, char *buf, size_t size) {
        if (self_dir[0] && (executable_at(buf, size, self_dir, NULL, file) ||
                            executable_at(buf, size, self_dir, builddir_sub, file)))
                return true;
        return executable_at(buf, size, DIAG_LIBEXECDIR, NULL, file);
}

static const struct verb *verb_lookup(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0 || (verbs[i].alias && strcmp(verbs[i].alias, name) == 0))
                        return &verbs[i];
        return NULL;
}

/* The program a verb runs: the table's, or diag-VERB. False if the name is too long. */
static bool verb_file(const char *verb, char *buf, size_t size) {
        const struct verb *v = verb_lookup(verb);

        if (v && v->file)
                return format_fits(buf, size, "%s", v->file);
        return format_fits(buf, size, "diag-%s", v ? v->name : verb);
}

static bool find_verb(const char *verb, char *buf, size_t size) {
        const struct verb *v = verb_lookup(verb);
        char file[NAME_MAX + 1];

        if (!verb_file(verb, file, sizeof file))
                return false;
        return find_tool(file, v && v->build_dir ? v->build_dir : file, buf, size);
}

static bool on_path(const char *file) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = path ? strdup(path) : NULL;
        char *dir, *save = NULL, buf[PATH_MAX];

        if (!copy)
                return false;
        for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
                if (executable_at(buf, sizeof buf, dir, NULL, file))
                        return true;
        return false;
}

static void usage(FILE *f) {
        char buf[PATH_MAX];
        int shown = 0;

        fprintf(f, "Usage:\n"
                   " diag VERB [ARGS...]     run diag-VERB ARGS...\n"
                   " diag demo               diagnose a built-in hung worker\n"
                   "\n"
                   "Verbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char file[NAME_MAX + 1];

                if (!verb_file(verbs[i].name, file, sizeof file))
                        continue;
                if (find_verb(verbs[i].name, buf, sizeof buf) || on_path(file)) {
                        fprintf(f, " %-8s %s\n", verbs[i].name, verbs[i].help);
                        shown++;
                }
        }
        if (!shown)
                fprintf(f, " (no diag-* tool found next to diag, in %s or on PATH)\n", DIAG_LIBEXECDIR);
        fprintf(f, "\n"
                   "Options:\n"
                   " -h, --help     display this help\n"
                   " -V, --version  display version\n"
                   "\n"
                   "'diag VERB --help' describes each verb. See diag(1).\n");
}

static int run_verb(const char *verb, char **args) {
        char path[PATH_MAX], name[NAME_MAX + 1];

        if (!verb_file(verb, name, sizeof name)) {
                log_error("unknown verb '%s'\nTry 'diag --help' for the list.", verb);
                return DIAG_EXIT_USAGE;
        }
        args[0] = name;
        if (find_verb(verb, path, sizeof path))
                execv(path, args);
        else
                execvp(name, args);
        if (errno == ENOENT) {
                log_error("unknown verb '%s'\nTry 'diag --help' for the list.", verb);
                return DIAG_EXIT_USAGE;
        }
        log_error_errno(errno, "cannot run %s: %m", name);
        return 127;
}

/* ---- demo: start the hung worker, diagnose it, stop it ---- */

static pid_t demo_start(int *ret_fd) {
        /* the demo is one program: a pool of workers, a session file, a backend */
        char path[PATH_MAX];
        int p[2];
        pid_t pid;

        if (!find_tool("diag-demo-worker", "../demo", path, sizeof path)) {
                log_error("cannot find diag-demo-worker (looked next to diag, in the build tree and in %s)", DIAG_LIBEXECDIR);
                return -ENOENT;
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                return log_error_errno(errno, "pipe: %m");
        pid = fork();
        if (pid < 0)
                return log_error_errno(errno, "fork: %m");
        if (pid == 0) {
                dup2(p[1], STDOUT_FILENO);
                execl(path, "diag-demo-worker", (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        *ret_fd = p[0];
        return pid;
}

/* Read the demo's report until READY (5 s at most). */
static int demo_wait_ready(int fd, char *buf, size_t size) {
        size_t len = 0;
        uint64_t deadline = diag_now_ns(CLOCK_MONOTONIC) + 5000000000ULL;

        while (diag_now_ns(CLOCK_MONOTONIC) < deadline && len < size - 1) {
                ssize_t k = read(fd, buf + len, size - 1 - len);
                if (k <= 0)
                        return -EIO;
                len += (size_t) k;
                buf[len] = 0;
                if (strstr(buf, "READY\n"))
                        return 0;
        }
        return -ETIMEDOUT;
}

/* The value after "key " on a line of the demo's report, or 0. */
static pid_t report_pid(const char *report, const char *key) {
        const char *p = strstr(report, key);
        char num[16];
        size_t i = 0;
        pid_t v;

        if (!p)
                return 0;
        p += strlen(key);
        while (p[i] >= '0' && p[i] <= '9' && i < sizeof num - 1) {
                num[i] = p[i];
                i++;
        }
        num[i] = 0;
        return diag_parse_pid(num, &v) == 0 ? v : 0;
}

static int run_demo(void) {
        char report[4096], tool[PATH_MAX], pidstr[16];
        int fd = -1, status = 0, r;
        pid_t demo, waiter, child;

        demo = demo_start(&fd);
        if (demo < 0)
                return DIAG_EXIT_FAILURE;
        r = demo_wait_ready(fd, report, sizeof report);
        close(fd);
        waiter = report_pid(report, "\nwaiter ");
        if (r < 0 || !waiter) {
                kill(demo, SIGTERM);
                waitpid(demo, NULL, 0);
                log_error("the demo did not start");
                return DIAG_EXIT_FAILURE;
        }
        snprintf(pidstr, sizeof pidstr, "%d", waiter);
        /* let the pile-up age a little, as it would before anyone looks */
        nanosleep(&(struct timespec) { .tv_sec = 2 }, NULL);
        printf("A demo worker pool is running. Its workers serve requests for one user's\n"
               "session and hang: worker %d, like its siblings, has been stuck for a while.\n"
               "Why?\n\n"
               "$ diag chain %d\n", waiter, waiter);
        fflush(stdout);

        child = fork();
        if (child == 0) {
                char *args[] = { (char *) "diag-chain", pidstr, NULL };
                if (find_verb("chain", tool, sizeof tool))
                        execv(tool, args);
                else
                        execvp("diag-chain", args);
                _exit(127);
        }
        if (child > 0)
                waitpid(child, &status, 0);
        kill(demo, SIGTERM);
        waitpid(demo, NULL, 0);
        if (child < 0 || !WIFEXITED(status))
                return DIAG_EXIT_FAILURE;
        /* diag-chain says 5 when it found the stuck chain: that is the demo working */
        return WEXITSTATUS(status) == 5 ? 0 : WEXITSTATUS(status);
}

int main(int argc, char **argv) {
        diag_log_init(argv[0]);
        find_self_dir();
        if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                usage(stdout);
                return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : DIAG_EXIT_OK;
        }
        if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
                printf("diag from diagkit %s\n", DIAG_VERSION);
                return DIAG_EXIT_OK;
        }
        if (argv[1][0] == '-') {
                log_error("unknown option '%s'\nTry 'diag --help' for more information.", argv[1]);
                return DIAG_EXIT_USAGE;
        }
        if (strcmp(argv[1], "demo") == 0) {
                if (argc > 2 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0)) {
                        printf("Usage:\n"
                               " diag demo\n\n"
                               "Start a built-in worker pool that hangs (its workers pile up on one\n"
                               "session file's flock, whose holder waits on a backend that never\n"
                               "answers), run diag-chain on a stuck worker, and stop the pool.\n");
                        return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : DIAG_EXIT_OK;
                }
                if (argc > 2) {
                        log_error("demo takes no arguments: '%s'\nTry 'diag demo --help' for more information.", argv[2]);
                        return DIAG_EXIT_USAGE;
                }
                return run_demo();
        }
        if (strchr(argv[1], '/')) {
                log_error("invalid verb '%s'", argv[1]);
                return DIAG_EXIT_USAGE;
        }
        return run_verb(argv[1], argv + 1);
}
