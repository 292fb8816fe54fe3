/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-core: an ELF core of a running process, as gdb reads a crash core, with
 * the process stopped for milliseconds instead of the whole dump.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "diag/core.h"
#include "diag/log.h"
#include "diag/out.h"
#include "diag/proc.h"
#include "diag/ptrace.h"
#include "diag/target.h"
#include "diag/util.h"

/* How long to wait for another tracer (a second diag-core) to let the process go. */
#define TRACED_WAIT_MS 2000

static struct {
        const char *prefix;
        bool json, quiet, progress;
        unsigned timeout_s;
        struct diag_core_opts core;
} arg = {
        .prefix = "core",
        .progress = true,
};

static volatile sig_atomic_t cancelled;
static uint64_t progress_t0;
static bool progress_shown;

static void on_signal(int sig) {
        cancelled = sig;
}

/* A line on a terminal, redrawn in place: done/total, rate, time left. */
static int show_progress(void *userdata, uint64_t done, uint64_t total) {
        char a[DIAG_SIZE_MAX], b[DIAG_SIZE_MAX], rate[DIAG_SIZE_MAX], eta[DIAG_DURATION_MAX] = "?";
        uint64_t el = diag_now_ns(CLOCK_MONOTONIC) - progress_t0;
        uint64_t bps = el ? (uint64_t) ((double) done * 1e9 / (double) el) : 0;

        if (cancelled)
                return 1;
        if (!arg.progress)
                return 0;
        if (total < done)
                total = done;
        /* Before the first percent the rate is mostly setup time: no guess yet. */
        if (bps && done * 100 >= total)
                diag_format_duration((total - done) * 1000 / bps, eta, sizeof eta);
        fprintf(stderr, "\r%s: %3u%% %s of %s  %s/s  %s left   ", diag_progname(),
                total ? (unsigned) (done * 100 / total) : 100, diag_format_size(done, a, sizeof a),
                diag_format_size(total, b, sizeof b), diag_format_size(bps, rate, sizeof rate), eta);
        progress_shown = true;
        return 0;
}

static void progress_clear(void) {
        if (progress_shown)
                fprintf(stderr, "\r\033[K");
        progress_shown = false;
}

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options] PID\n"
               "\n"
               "Write an ELF core of a running process, readable by gdb, eu-stack and\n"
               "eu-readelf like a kernel core. The process is stopped only to take its\n"
               "registers and make a fork() whose copy-on-write child holds the memory\n"
               "image; it runs on while the core is written.\n"
               "\n"
               "Options:\n"
               " -o, --output PREFIX      write PREFIX.PID (default core.PID); DIR/ writes DIR/core.PID;\n"
               "                          - streams to stdout\n"
               "     --method METHOD      fork (default) or stop (stopped for the whole copy)\n"
               "     --filter MASK        coredump_filter bits (hex; default the process's own)\n"
               "     --file-backed        also dump file-backed mappings (bits 2 and 3)\n"
               "     --no-file-backed     not file-backed mappings, ELF headers aside\n"
               "     --shared             also dump shared mappings (bits 1, 3 and 6)\n"
               "     --no-shared          no shared mappings\n"
               "     --max-size SIZE      write at most SIZE of memory: stacks first, shared last\n"
               "     --stacks-only        registers, thread stacks and small writable data\n"
               "     --no-progress        no progress line (it shows only on a terminal)\n"
               " -q, --quiet              no summary line\n"
               " -J, --json               print a JSON summary on stdout\n"
               "     --timeout TIME       give up after TIME (e.g. 30s, 5m; default none)\n"
               " -v, --verbose            say more on stderr\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Exit status: 0 core written, 1 no core written, 2 bad usage,\n"
               "4 core written, but some registers or pages are missing (said on stderr).\n"
               "\n"
               "Examples:\n"
               " %1$s 1234                       ./core.1234\n"
               " %1$s -o /var/tmp/worker 1234    /var/tmp/worker.1234\n"
               " %1$s -o - 1234 | zstd > core.1234.zst\n"
               " %1$s --stacks-only 1234         a few MB, still every thread's backtrace\n"
               " gdb /proc/1234/exe core.1234\n"
               "\n"
               "See diag-core(1).\n", diag_progname());
}

/* A failure of the whole run: one line on stderr and, with -J, the error
 * object on stdout. Exit status 1. */
static int fail_run(const char *message, const char *reason, pid_t pid) {
        log_error("%s", message);
        if (arg.json)
                (void) diag_json_error(stdout, message, reason, pid, DIAG_EXIT_FAILURE);
        (void) diag_close_stdout();
        return DIAG_EXIT_FAILURE;
}

/* The process cannot be dumped (gone, a zombie, a kernel thread, not
 * permitted, traced): in the words every tool uses, decided now. */
static int fail_target(pid_t pid, int err) {
        struct diag_target t;
        char msg[256];

        diag_target_resolve(pid, &t);
        return fail_run(diag_target_message(&t, err, "dump", msg, sizeof msg), diag_target_reason(&t, err), pid);
}

/* -o PREFIX: PREFIX.PID; a PREFIX ending in '/', or naming an existing
 * directory, is that directory: DIR/core.PID. */
static int output_path(const char *prefix, pid_t pid, char **ret) {
        size_t len = strlen(prefix);
        struct stat st;
        int r;

        if (prefix[len - 1] == '/')
                r = asprintf(ret, "%score.%d", prefix, pid);
        else if (stat(prefix, &st) == 0 && S_ISDIR(st.st_mode))
                r = asprintf(ret, "%s/core.%d", prefix, pid);
        else
                r = asprintf(ret, "%s.%d", prefix, pid);
        if (r < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

static const char *error_text(int r, pid_t pid) {
        static char buf[160];

        switch (r) {
        case -ETIMEDOUT:
                snprintf(buf, sizeof buf, "process %d did not stop within the time allowed", pid);
                return buf;
        case -ENOSPC:
                return "no space left on device";
        case -EDQUOT:
                return "disk quota exceeded";
        case -ECANCELED:
                return "interrupted";
        default:
                return NULL;
        }
}

enum { OPT_METHOD = 0x100, OPT_FILTER, OPT_FILE_BACKED, OPT_NO_FILE_BACKED, OPT_SHARED, OPT_NO_SHARED,
       OPT_MAX_SIZE, OPT_STACKS_ONLY, OPT_NO_PROGRESS, OPT_TIMEOUT };

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "output",         required_argument, NULL, 'o' },
                { "method",         required_argument, NULL, OPT_METHOD },
                { "filter",         required_argument, NULL, OPT_FILTER },
                { "file-backed",    no_argument,       NULL, OPT_FILE_BACKED },
                { "no-file-backed", no_argument,       NULL, OPT_NO_FILE_BACKED },
                { "shared",         no_argument,       NULL, OPT_SHARED },
                { "no-shared",      no_argument,       NULL, OPT_NO_SHARED },
                { "max-size",       required_argument, NULL, OPT_MAX_SIZE },
                { "stacks-only",    no_argument,       NULL, OPT_STACKS_ONLY },
                { "no-progress",    no_argument,       NULL, OPT_NO_PROGRESS },
                { "quiet",          no_argument,       NULL, 'q' },
                { "json",           no_argument,       NULL, 'J' },
                { "timeout",        required_argument, NULL, OPT_TIMEOUT },
                DIAG_STD_LONGOPTS,
                {}
        };
        struct diag_core_result res;
        struct diag_outfile of = { .fd = -1 };
        _cleanup_free_ char *path = NULL;
        bool to_stdout;
        pid_t pid;
        int c, r, fd;
        uint64_t t0, retry_until;
        pid_t held_by = 0;
        const char *msg;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        while ((c = getopt_long(argc, argv, "o:qJ" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                unsigned long long v;
                uint64_t sz;

                if (diag_std_option(c, usage, &r)) {
                        if (r >= 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'o':
                        if (!*optarg)
                                return diag_usage_error("%s", "empty output prefix");
                        arg.prefix = optarg;
                        break;
                case OPT_METHOD:
                        if (strcmp(optarg, "fork") == 0)
                                arg.core.method = DIAG_CORE_FORK;
                        else if (strcmp(optarg, "stop") == 0)
                                arg.core.method = DIAG_CORE_STOP;
                        else
                                return diag_usage_error("invalid method: '%s' (fork or stop)", optarg);
                        break;
                case OPT_FILTER:
                        if (diag_parse_ull(optarg, 16, &v) < 0 || v > 0x1ff)
                                return diag_usage_error("invalid filter: '%s' (hex, 0 to 1ff)", optarg);
                        arg.core.filter = (unsigned long) v;
                        arg.core.filter_set = true;
                        break;
                case OPT_FILE_BACKED:
                        arg.core.filter_add |= DIAG_CORE_FILE_PRIVATE | DIAG_CORE_FILE_SHARED;
                        arg.core.filter_remove &= ~(DIAG_CORE_FILE_PRIVATE | DIAG_CORE_FILE_SHARED);
                        break;
                case OPT_NO_FILE_BACKED:
                        arg.core.filter_remove |= DIAG_CORE_FILE_PRIVATE | DIAG_CORE_FILE_SHARED;
                        arg.core.filter_add &= ~(DIAG_CORE_FILE_PRIVATE | DIAG_CORE_FILE_SHARED);
                        break;
                case OPT_SHARED:
                        arg.core.filter_add |= DIAG_CORE_ANON_SHARED | DIAG_CORE_FILE_SHARED | DIAG_CORE_HUGE_SHARED;
                        arg.core.filter_remove &= ~(DIAG_CORE_ANON_SHARED | DIAG_CORE_FILE_SHARED | DIAG_CORE_HUGE_SHARED);
                        break;
                case OPT_NO_SHARED:
                        arg.core.filter_remove |= DIAG_CORE_ANON_SHARED | DIAG_CORE_FILE_SHARED | DIAG_CORE_HUGE_SHARED;
                        arg.core.filter_add &= ~(DIAG_CORE_ANON_SHARED | DIAG_CORE_FILE_SHARED | DIAG_CORE_HUGE_SHARED);
                        break;
                case OPT_MAX_SIZE:
                        if (diag_parse_size(optarg, &sz) < 0 || sz < 4096)
                                return diag_usage_error("invalid size: '%s' (at least 4K)", optarg);
                        arg.core.max_size = sz;
                        break;
                case OPT_STACKS_ONLY:
                        arg.core.stacks_only = true;
                        break;
                case OPT_NO_PROGRESS:
                        arg.progress = false;
                        break;
                case 'q':
                        arg.quiet = true;
                        break;
                case 'J':
                        arg.json = true;
                        break;
                case OPT_TIMEOUT:
                        if (diag_parse_duration_ms(optarg, &sz) < 0 || sz < 1000 || sz > 86400000)
                                return diag_usage_error("invalid timeout: '%s' (1s to 24h)", optarg);
                        arg.timeout_s = (unsigned) (sz / 1000);
                        break;
                default:
                        return diag_usage_error("unexpected option");
                }
        }
        if (optind >= argc)
                return diag_usage_error("%s", "no process given");
        if (optind + 1 < argc)
                return diag_usage_error("%s", "one process at a time");
        if (diag_parse_pid(argv[optind], &pid) < 0)
                return diag_usage_error("invalid process id: '%s'", argv[optind]);
        to_stdout = strcmp(arg.prefix, "-") == 0;
        if (to_stdout && arg.json)
                return diag_usage_error("%s", "--json prints on stdout, where the core goes with -o -");
        if (to_stdout && isatty(STDOUT_FILENO))
                return diag_usage_error("%s", "refusing to write a core to a terminal");
        {
                struct diag_target t;
                diag_target_resolve(pid, &t);
                if (t.kind == DIAG_TARGET_LIVE && t.tid)
                        return diag_usage_error("%d is a thread of process %d: give the process", pid, t.pid);
                if (t.kind != DIAG_TARGET_LIVE)
                        return fail_target(pid, 0);
        }

        if (!isatty(STDERR_FILENO) || arg.quiet)
                arg.progress = false;
        arg.core.progress = show_progress;
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (to_stdout)
                fd = STDOUT_FILENO;
        else {
                if (output_path(arg.prefix, pid, &path) < 0)
                        return fail_run("out of memory", "error", pid);
                r = diag_outfile_open(&of, path);
                if (r < 0) {
                        char m[PATH_MAX + 64];
                        if (r == -EEXIST)
                                snprintf(m, sizeof m, "%s already exists; not overwriting it", path);
                        else
                                snprintf(m, sizeof m, "cannot create %s: %s", path, strerror(-r));
                        diag_outfile_discard(&of);
                        return fail_run(m, "error", pid);
                }
                fd = of.fd;
        }

        diag_watchdog_arm(arg.timeout_s);
        diag_watchdog_phase("dumping");
        t0 = progress_t0 = diag_now_ns(CLOCK_MONOTONIC);
        r = diag_core_write(pid, &arg.core, fd, &res);
        /* Refused because another tracer holds it (a second diag-core, a
         * debugger): nothing was done. Wait a little for it to let go and try
         * again; a refusal with nobody tracing it, three times, is a real one. */
        retry_until = diag_now_ns(CLOCK_MONOTONIC) + TRACED_WAIT_MS * 1000000ULL;
        for (unsigned refusals = 0; (r == -EPERM || r == -EBUSY) && !res.stopped && !cancelled &&
                                    diag_now_ns(CLOCK_MONOTONIC) < retry_until;) {
                pid_t tracer = -1;
                if (diag_ptrace_tracer_of(pid, &tracer) < 0)
                        break;
                if (tracer > 0 && tracer != getpid()) {
                        held_by = tracer;
                        nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000000L }, NULL);
                        continue;
                }
                if (++refusals > 3)
                        break;
                r = diag_core_write(pid, &arg.core, fd, &res);
        }
        /* Someone held it when we asked: say that, even if they let go since. */
        if ((r == -EPERM || r == -EBUSY) && held_by > 0)
                r = -EBUSY;
        progress_clear();
        if (r == 0 && cancelled)
                r = -ECANCELED;
        if (r == 0 && !to_stdout) {
                r = diag_outfile_commit(&of);
                if (r == -EEXIST) {
                        char m[PATH_MAX + 64];
                        snprintf(m, sizeof m, "%s appeared meanwhile; not overwriting it", path);
                        diag_outfile_discard(&of);
                        return fail_run(m, "error", pid);
                }
        }
        if (!to_stdout)
                diag_outfile_discard(&of);
        /* Only about a process that was stopped: a zombie, a kernel thread or a
         * traced process was not, whatever the method would have been. */
        if (res.fallback && res.stopped && !res.not_stopped && !arg.quiet)
                log_warn("fork not used (%s): the process was stopped for the whole copy", res.fallback);
        log_debug("stopped %.1f ms: registers %.1f ms, fork %.1f ms; handover %.1f ms, write %.1f ms, end %.1f ms",
                  (double) res.pause_ns / 1e6, (double) res.regs_ns / 1e6, (double) res.fork_ns / 1e6,
                  (double) res.handover_ns / 1e6, (double) res.write_ns / 1e6, (double) res.end_ns / 1e6);
        if (res.stop_chosen)
                log_debug("--stacks-only: about %" PRIu64 " KiB to copy, less time stopped than a fork: copied "
                          "during the stop", res.estimate / 1024);
        if (res.mended)
                log_debug("a thread's registers needed setting back after the injected fork");
        if (res.reap_error)
                log_warn("the forked copy could not be reaped from process %d at once (%s): the guard process "
                         "reaps it as soon as it can", pid, res.reap_error);
        if (r < 0) {
                char m[PATH_MAX + 256];
                if (r == -ESRCH || r == -EPERM || r == -EACCES || r == -EBUSY)
                        return fail_target(pid, r);
                msg = error_text(r, pid);
                snprintf(m, sizeof m, "%s%s%s%s", to_stdout ? "" : path, to_stdout ? "" : ": ",
                         msg ? msg : strerror(-r), to_stdout ? " (the stream on stdout is incomplete)" : "");
                return fail_run(m, "error", pid);
        }

        {
                double pause_ms = (double) res.pause_ns / 1e6, el_ms = (double) (diag_now_ns(CLOCK_MONOTONIC) - t0) / 1e6;
                char sz[DIAG_SIZE_MAX];

                if (res.not_stopped)
                        log_warn("process %d was not stopped: every thread is in uninterruptible sleep (D), which "
                                 "no ptrace stop reaches, or in a wait an interrupt would end; the core has its "
                                 "memory, and of each thread only the program counter, stack pointer and system "
                                 "call arguments", pid);
                else if (res.threads_partial)
                        log_warn("%u thread%s not stopped (D state, or a wait an interrupt would end): only pc, sp "
                                 "and system call arguments", res.threads_partial, res.threads_partial == 1 ? "" : "s");
                if (res.unreadable)
                        log_warn("%u page%s could not be read (holes in the core)", res.unreadable,
                                 res.unreadable == 1 ? "" : "s");
                if (res.remote_skipped)
                        log_warn("%u page%s of files on NFS, FUSE or other network file systems were not in "
                                 "memory and were left out (reading them could wait for ever)",
                                 res.remote_skipped, res.remote_skipped == 1 ? "" : "s");
                if (res.capped)
                        log_warn("%u mapping%s left out by --max-size", res.capped, res.capped == 1 ? "" : "s");
                if (arg.json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "pid", json_object_new_int(pid));
                        json_object_object_add(o, "file", json_object_new_string(path));
                        json_object_object_add(o, "method", json_object_new_string(
                                                       res.not_stopped ? "none" :
                                                       res.method == DIAG_CORE_FORK ? "fork" : "stop"));
                        json_object_object_add(o, "threads", json_object_new_int((int) res.threads));
                        json_object_object_add(o, "threads_partial", json_object_new_int((int) res.threads_partial));
                        json_object_object_add(o, "segments", json_object_new_int((int) res.segments));
                        json_object_object_add(o, "bytes", json_object_new_int64((int64_t) res.bytes));
                        json_object_object_add(o, "file_size", json_object_new_int64((int64_t) res.file_size));
                        json_object_object_add(o, "pause_ms", json_object_new_double(pause_ms));
                        json_object_object_add(o, "fork_ms", json_object_new_double((double) res.fork_ns / 1e6));
                        json_object_object_add(o, "elapsed_ms", json_object_new_double(el_ms));
                        json_object_object_add(o, "fallback", res.fallback ? json_object_new_string(res.fallback) : NULL);
                        json_object_object_add(o, "capped", json_object_new_int((int) res.capped));
                        json_object_object_add(o, "unreadable_pages", json_object_new_int((int) res.unreadable));
                        json_object_object_add(o, "remote_pages_left_out", json_object_new_int((int) res.remote_skipped));
                        json_object_object_add(o, "registers_mended", json_object_new_boolean(res.mended));
                        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                        json_object_put(o);
                } else if (!arg.quiet && res.not_stopped)
                        fprintf(stderr, "%s: %s: %u thread%s, %u segments, %s of memory; process not stopped, "
                                "%.2f s in all\n", diag_progname(), to_stdout ? "stdout" : path, res.threads,
                                res.threads == 1 ? "" : "s", res.segments, diag_format_size(res.bytes, sz, sizeof sz),
                                el_ms / 1000);
                else if (!arg.quiet)
                        fprintf(stderr, "%s: %s: %u thread%s, %u segments, %s of memory; process stopped %.1f ms (%s), "
                                "%.2f s in all\n", diag_progname(), to_stdout ? "stdout" : path, res.threads,
                                res.threads == 1 ? "" : "s", res.segments, diag_format_size(res.bytes, sz, sizeof sz),
                                pause_ms, res.method == DIAG_CORE_FORK ? "fork" : "stop", el_ms / 1000);
        }
        if (diag_close_stdout() < 0)
                return DIAG_EXIT_FAILURE;
        return res.threads_partial || res.unreadable || res.remote_skipped ? DIAG_EXIT_PARTIAL : DIAG_EXIT_OK;
}
