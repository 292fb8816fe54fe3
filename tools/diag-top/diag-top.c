/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top: a live incident screen (who is spinning, growing, thrashing or stuck, and
 * why), or the same screen over a diag-record recording (-r DIR). Here: the options,
 * the refresh (model -> rows -> WAIT of what is shown) and the batch loop (-b). The
 * screen is view.c's, the drill-downs drill.c's.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "diag/log.h"
#include "diag/util.h"
#include "view.h"

#define DEFAULT_DELAY_MS        2000
#define MIN_DELAY_MS            200

volatile sig_atomic_t top_quit;

static struct {
        struct top_app app;
        pid_t *pids;
        size_t npids, pids_alloc;
        bool batch, json;
        unsigned long long count;       /* -n, 0 = for ever */
        const char *timings_path;
} arg = {
        .app = {
                .delay_ms = DEFAULT_DELAY_MS,
                .color = true,
                .mouse = true,
                .ro = { .sort = TOP_COL_CPU, .filter = { .hide_kernel = true } },
        },
};

static void usage(void) {
        printf("Usage:\n"
               " diag-top [options]\n"
               " diag-top -r DIR [--at TIME] [options]\n"
               "\n"
               "A live incident screen: who is spinning, growing, thrashing or stuck, and on\n"
               "what (WAIT), one key from threads, chains, stacks, fds and locks. With -r, the\n"
               "same screen over a diag-record recording. Nothing is ever signalled or reniced.\n"
               "\n"
               "Options:\n"
               " -d, --delay TIME         refresh every TIME (default 2s; 0.5, 2s, 500ms; at least 0.2s)\n"
               " -p, --pid PID,...        only these processes\n"
               " -u, --user USER          only the processes of USER (name or uid)\n"
               " -s, --sort COLUMN        sort by COLUMN (cpu, rss, grow, majflt, read, write,\n"
               "                          threads, blocked, wait, pid, user, command; default cpu)\n"
               " -b, --batch              frames as plain text on stdout, every TIME, until -n\n"
               " -n, --iterations COUNT   with -b: COUNT frames, then exit\n"
               " -J, --json               with -b: one JSON line per frame\n"
               " -r, --replay DIR         replay the recording in DIR\n"
               "     --at TIME            with -r: start at TIME (17:15:50, 2026-12-04 17:15:50,\n"
               "                          -10m before the end, +5m after the start, @EPOCH)\n"
               "     --no-color           no colours\n"
               "     --ascii              ASCII only (no line drawing or arrows)\n"
               "     --no-mouse           do not take the mouse\n"
               "     --timings FILE       one JSON line per refresh and per key (what took how long)\n"
               " -v, --verbose            say more on stderr\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Keys: q quit, h help, arrows select, < > sort, / filter, t tree, g fold by command\n"
               "line, K kernel threads, space pause; Enter threads, c chain, s stacks, f fds,\n"
               "l locks, p sample, m memory map; replay: [ ] step, { } a minute, T time,\n"
               "o O next/previous event.\n"
               "\n"
               "Exit status: 0 ok, 1 failure (no recording, /proc unreadable, no terminal),\n"
               "2 bad usage.\n"
               "\n"
               "Examples:\n"
               " diag-top                         the live screen\n"
               " diag-top -u www-data -s blocked  one user's processes, the longest stuck first\n"
               " diag-top -b -n 3 -J > frames     three frames as JSON lines\n"
               " diag-top -r /var/lib/diagkit/record --at 03:12\n"
               "\n"
               "See diag-top(1).\n");
}

uint64_t top_now_us(void) {
        return diag_now_ns(CLOCK_MONOTONIC) / 1000;
}

/* "2", "0.5", "2s", "0.5s", "500ms", "1m". */
static int parse_delay(const char *s, uint64_t *ret_ms) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (end != s && !errno && isfinite(v) && v >= 0 && (!*end || !strcmp(end, "s"))) {
                if (v > 86400)
                        return -ERANGE;
                *ret_ms = (uint64_t) llround(v * 1000);
                return 0;
        }
        return diag_parse_duration_ms(s, ret_ms);
}

/* HH:MM[:SS] from s; the end of what was read, NULL when not a time. */
static const char *parse_clock(const char *s, int *h, int *m, int *sec) {
        int k = 0;

        *sec = 0;
        if (sscanf(s, "%2d:%2d%n", h, m, &k) != 2 || k < 4)
                return NULL;
        s += k;
        if (*s == ':') {
                k = 0;
                if (sscanf(s, ":%2d%n", sec, &k) != 1 || k != 3)
                        return NULL;
                s += k;
        }
        if (*h < 0 || *h > 23 || *m < 0 || *m > 59 || *sec < 0 || *sec > 60)
                return NULL;
        return s;
}

/* "10m", "90s", "1h", "2" (seconds): ms; -1 when not a duration. */
static int64_t parse_offset_ms(const char *s) {
        uint64_t ms;

        if (parse_delay(s, &ms) < 0 || ms > (uint64_t) INT64_MAX / 1000000)
                return -1;
        return (int64_t) ms;
}

int top_parse_time(const char *s, int64_t start_ns, int64_t ref_ns, int64_t *ret_ns) {
        int h, m, sec, y, mo, d, k = 0;
        struct tm tm = { .tm_isdst = -1 };
        const char *e;
        time_t t;

        if (!s || !*s)
                return -EINVAL;
        if (!ref_ns)
                ref_ns = (int64_t) diag_now_ns(CLOCK_REALTIME);
        if (s[0] == '-' || s[0] == '+') {
                int64_t off = parse_offset_ms(s + 1);
                if (off < 0)
                        return -EINVAL;
                *ret_ns = s[0] == '-' ? ref_ns - off * 1000000 : (start_ns ? start_ns : ref_ns) + off * 1000000;
                return 0;
        }
        if (s[0] == '@') {
                long long v;
                if (diag_parse_ll(s + 1, 10, 0, INT64_MAX / 1000000000, &v) < 0)
                        return -EINVAL;
                *ret_ns = (int64_t) v * 1000000000;
                return 0;
        }
        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &k) == 3 && k == 10) {
                if ((s[10] != ' ' && s[10] != 'T') || mo < 1 || mo > 12 || d < 1 || d > 31)
                        return -EINVAL;
                e = parse_clock(s + 11, &h, &m, &sec);
                if (!e || *e)
                        return -EINVAL;
                tm.tm_year = y - 1900;
                tm.tm_mon = mo - 1;
                tm.tm_mday = d;
                tm.tm_hour = h;
                tm.tm_min = m;
                tm.tm_sec = sec;
                t = mktime(&tm);
                if (t == (time_t) -1)
                        return -EINVAL;
                *ret_ns = (int64_t) t * 1000000000;
                return 0;
        }
        e = parse_clock(s, &h, &m, &sec);
        if (!e || *e)
                return -EINVAL;
        /* that clock time on the day of ref_ns; the day before when it would be more
         * than an hour after ref_ns (a recording that ran past midnight) */
        t = (time_t) (ref_ns / 1000000000);
        if (!localtime_r(&t, &tm))
                return -EINVAL;
        for (int back = 0; back < 3; back++) {
                struct tm c = tm;
                time_t u;

                c.tm_hour = h;
                c.tm_min = m;
                c.tm_sec = sec;
                c.tm_mday -= back;
                c.tm_isdst = -1;
                u = mktime(&c);
                if (u == (time_t) -1)
                        return -EINVAL;
                if ((int64_t) u <= (int64_t) t + 3600) {
                        *ret_ns = (int64_t) u * 1000000000;
                        return 0;
                }
        }
        return -EINVAL;
}

/* ---- the refresh: model -> rows -> WAIT of what is shown ---- */

int top_app_rows(struct top_app *a) {
        uint64_t t0 = top_now_us();
        int r;

        if (!a->frame)
                return 0;
        a->ro.filter.text = a->filter[0] ? a->filter : NULL;
        r = top_rows_build(&a->rows, a->frame, &a->ro);
        if (r < 0)
                return r;
        a->generation++;
        /* BLOCKED for every row only when the order depends on it */
        if (a->ro.sort == TOP_COL_BLOCKED || a->ro.sort == TOP_COL_WAIT) {
                top_wait_fill_blocked(a->wait, a->frame, a->rows.rows, a->rows.n);
                top_rows_sort(&a->rows, &a->ro);
        }
        a->rows_us = top_now_us() - t0;
        return 0;
}

int top_app_refresh(struct top_app *a) {
        uint64_t t0 = top_now_us();
        int r = 0;

        if (!a->replay && !a->paused) {
                r = top_model_sample(a->model);
                a->scan_err = r < 0 ? r : 0;
        }
        a->frame = top_model_frame(a->model);
        a->scan_us = top_now_us() - t0;
        if (r < 0 && !a->frame)
                return r;
        return top_app_rows(a);
}

void top_app_fill_wait(struct top_app *a, size_t first, size_t n) {
        uint64_t t0 = top_now_us();
        unsigned stuck = 0;

        if (!a->frame || first >= a->rows.n) {
                a->wait_us = 0;
                return;
        }
        n = MIN(n, a->rows.n - first);
        top_wait_fill(a->wait, a->frame, a->rows.rows + first, n, &stuck);
        a->stuck_chains = stuck;
        /* the header's count (the model's frame, const only to the drawing) for batch frames */
        ((struct top_frame *) a->frame)->h.stuck_chains = stuck;
        a->wait_us = top_now_us() - t0;
}

void top_app_timing_refresh(struct top_app *a) {
        uint64_t batches, walk_us = top_wait_walk_us(a->wait, &batches);

        if (!a->timings)
                return;
        /* walk_us: the last batch of the walking thread (not part of the refresh), and
         * walks: batches done so far, so that each batch is counted once */
        fprintf(a->timings, "{\"scan_us\":%" PRIu64 ",\"rows_us\":%" PRIu64 ",\"wait_us\":%" PRIu64
                ",\"draw_us\":%" PRIu64 ",\"walk_us\":%" PRIu64 ",\"walks\":%" PRIu64
                ",\"nprocs\":%zu,\"rows_on_screen\":%u}\n",
                a->scan_us, a->rows_us, a->wait_us, a->draw_us, walk_us, batches,
                a->frame ? a->frame->nprocs : (size_t) 0, a->rows_on_screen);
}

void top_app_timing_key(struct top_app *a, const char *key, uint64_t us) {
        if (!a->timings)
                return;
        fputs("{\"key\":\"", a->timings);
        for (const char *p = key; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fputc('\\', a->timings);
                if ((unsigned char) *p >= 0x20)
                        fputc(*p, a->timings);
        }
        fprintf(a->timings, "\",\"us\":%" PRIu64 "}\n", us);
}

/* ---- batch ---- */

/* On a terminal that cannot draw the screen, stdin is read for a line "q" (or its end). */
static bool dumb_keys;

static void read_quit_line(void) {
        char buf[256];
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);

        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                top_quit = 1;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == 'q' || buf[i] == 'Q')
                        top_quit = 1;
}

/* Sleep until end (CLOCK_MONOTONIC), or less when a signal asks to quit. */
static void nap_until(uint64_t end) {
        while (!top_quit) {
                uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
                struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
                if (now >= end)
                        break;
                if (poll(&p, dumb_keys ? 1 : 0, (int) MIN((end - now) / 1000000 + 1, 1000)) > 0 && p.revents)
                        read_quit_line();
        }
}

/* One frame into a buffer, then written with every line cut at width columns (bytes:
 * the terminal that needs this is an ASCII one). */
static int frame_cut(struct top_batch_opts *bo, struct top_app *a, unsigned width) {
        char *buf = NULL, *line, *save = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        int r;

        if (!mem)
                return -ENOMEM;
        bo->out = mem;
        r = top_batch_frame(bo, a->frame, &a->rows, &a->ro);
        bo->out = stdout;
        if (fclose(mem) != 0 && r == 0)
                r = -ENOMEM;
        for (line = r == 0 ? strtok_r(buf, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
                printf("%.*s\n", (int) width, line);
        free(buf);
        if (r == 0 && (fflush(stdout) != 0 || ferror(stdout)))
                r = errno == EPIPE ? -EPIPE : -EIO;
        return r;
}

/* Frames every DELAY (max_rows, width: the dumb terminal's size, else 0). */
static int batch_run(struct top_app *a, unsigned max_rows, unsigned width) {
        struct top_batch_opts bo = { .json = arg.json, .out = stdout, .max_rows = max_rows };
        unsigned long long done = 0;
        uint64_t next = diag_now_ns(CLOCK_MONOTONIC);
        int r;

        if (!a->replay) {
                /* a first reading, so that the first frame has rates */
                r = top_app_refresh(a);
                if (r < 0)
                        return log_error_errno(r, "cannot read /proc: %m"), DIAG_EXIT_FAILURE;
                next = diag_now_ns(CLOCK_MONOTONIC) + MIN(a->delay_ms, 1000) * 1000000;
                nap_until(next);
        }
        while (!top_quit) {
                if (!a->replay || done > 0) {
                        if (a->replay && top_replay_step(a->replay, 1) <= 0)
                                break;
                        r = top_app_refresh(a);
                        if (r < 0)
                                return log_error_errno(r, "cannot read /proc: %m"), DIAG_EXIT_FAILURE;
                } else if ((r = top_app_refresh(a)) < 0)
                        return log_error_errno(r, "cannot read the recording: %m"), DIAG_EXIT_FAILURE;
                top_app_fill_wait(a, 0, a->rows.n);
                r = width ? frame_cut(&bo, a, width) : top_batch_frame(&bo, a->frame, &a->rows, &a->ro);
                if (r == -EPIPE)
                        return DIAG_EXIT_OK;
                if (r < 0)
                        return log_error_errno(r, "write error on standard output: %m"), DIAG_EXIT_FAILURE;
                if (++done == arg.count)
                        break;
                /* frames on an absolute schedule: the time a frame took (WAIT of every
                 * row) does not stretch the interval; one that overran starts the next now */
                if (!a->replay) {
                        uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
                        next += a->delay_ms * 1000000;
                        if (next < now)
                                next = now;
                        nap_until(next);
                }
        }
        return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : DIAG_EXIT_OK;
}

/* ---- main ---- */

static void on_signal(int sig) {
        (void) sig;
        top_quit = 1;
}

static void replay_warn(void *ud, const char *line) {
        struct top_app *a = ud;

        if (arg.batch)
                log_warn("%s", line);
        snprintf(a->warning, sizeof a->warning, "%s", line);
        a->nwarnings++;
}

static int open_replay(struct top_app *a) {
        int64_t t;
        int r;

        r = top_replay_open(&a->replay, a->replay_dir, a->model, replay_warn, a);
        if (r == -ENOENT)
                return log_error("no recording in %s", a->replay_dir), DIAG_EXIT_FAILURE;
        if (r < 0)
                return log_error_errno(r, "cannot read the recording in %s: %m", a->replay_dir), DIAG_EXIT_FAILURE;
        top_replay_span(a->replay, &a->span_first_ns, &a->span_last_ns);
        /* the screen opens at the end (the moment before the recorder stopped, or
         * now); batch frames run forward from the start */
        t = arg.batch ? a->span_first_ns : a->span_last_ns;
        if (a->at && top_parse_time(a->at, a->span_first_ns, a->span_last_ns, &t) < 0)
                return diag_usage_error("invalid time: '%s'", a->at);
        r = top_replay_seek(a->replay, t);
        if (r < 0)
                return log_error_errno(r, "cannot read the recording in %s: %m", a->replay_dir), DIAG_EXIT_FAILURE;
        return -1;
}

static int run(void) {
        struct top_app *a = &arg.app;
        struct top_model_opts mo = { .live = !a->replay_dir, .kmsg = !a->replay_dir };
        const char *cs = nl_langinfo(CODESET);
        /* the arrow in WAIT only where the locale can show it (and in batch frames, which
         * go to a file or a pipe, likewise by the locale) */
        struct top_wait_opts wo = {
                .chains = true, .max_age_ms = 10000,
                /* the screen never waits for a walk; batch frames do, so each says it all;
                 * a replay walks nothing */
                .background = !arg.batch && !a->replay_dir,
                .ascii = a->ascii || !cs || (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "utf8") != 0),
        };
        int r, ex, term = 0;

        if (!arg.batch && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
                term = top_view_terminal();
                if (term == -EINVAL)
                        return DIAG_EXIT_FAILURE;
                /* a terminal that cannot move the cursor is not trusted with more than ASCII */
                if (term == -EOPNOTSUPP)
                        wo.ascii = true;
        }
        r = top_model_new(&a->model, &mo);
        if (r < 0)
                return log_error_errno(r, a->replay_dir ? "cannot set up the model: %m" : "cannot read /proc: %m"),
                       DIAG_EXIT_FAILURE;
        r = top_wait_new(&a->wait, &wo);
        if (r < 0)
                return log_error_errno(r, "cannot set up WAIT: %m"), DIAG_EXIT_FAILURE;
        if (a->replay_dir && (ex = open_replay(a)) >= 0)
                return ex;
        if (arg.batch)
                return batch_run(a, 0, 0);
        if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
                log_error("standard input and output must be a terminal (use -b for text frames)");
                return DIAG_EXIT_FAILURE;
        }
        if (term == -EOPNOTSUPP) {
                /* TERM=dumb (an editor's shell, a serial console): no screen to draw on,
                 * but frames as text, as many rows as fit, until Ctrl-C */
                struct winsize ws = {};
                bool sized = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0;
                unsigned rows = sized && ws.ws_row > 12 ? ws.ws_row - 11u : 13u;
                unsigned cols = sized && ws.ws_col >= 40 ? ws.ws_col : 80u;
                log_warn("terminal type '%s' cannot move the cursor: printing frames as -b does (q Enter or Ctrl-C quits)",
                         getenv("TERM"));
                dumb_keys = true;
                return batch_run(a, rows, cols);
        }

        if (!a->replay) {
                r = top_app_refresh(a);
                if (r < 0)
                        return log_error_errno(r, "cannot read /proc: %m"), DIAG_EXIT_FAILURE;
                /* the first rates soon, then every DELAY */
                a->next_refresh_ns = diag_now_ns(CLOCK_MONOTONIC) + MIN(a->delay_ms, 1000) * 1000000;
        } else if ((r = top_app_refresh(a)) < 0)
                return log_error_errno(r, "cannot read the recording: %m"), DIAG_EXIT_FAILURE;
        return top_view_run(a);
}

static void cleanup(void) {
        struct top_app *a = &arg.app;

        if (a->replay)
                top_replay_close(a->replay);
        top_rows_free(&a->rows);
        if (a->wait)
                top_wait_free(a->wait);
        if (a->model)
                top_model_free(a->model);
        if (a->timings)
                fclose(a->timings);
        free(arg.pids);
}

enum {
        OPT_AT = 0x100, OPT_NO_COLOR, OPT_ASCII, OPT_NO_MOUSE, OPT_TIMINGS,
};

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "delay",      required_argument, NULL, 'd' },
                { "pid",        required_argument, NULL, 'p' },
                { "user",       required_argument, NULL, 'u' },
                { "sort",       required_argument, NULL, 's' },
                { "batch",      no_argument,       NULL, 'b' },
                { "iterations", required_argument, NULL, 'n' },
                { "json",       no_argument,       NULL, 'J' },
                { "replay",     required_argument, NULL, 'r' },
                { "at",         required_argument, NULL, OPT_AT },
                { "no-color",   no_argument,       NULL, OPT_NO_COLOR },
                { "no-colour",  no_argument,       NULL, OPT_NO_COLOR },
                { "ascii",      no_argument,       NULL, OPT_ASCII },
                { "no-mouse",   no_argument,       NULL, OPT_NO_MOUSE },
                { "timings",    required_argument, NULL, OPT_TIMINGS },
                DIAG_STD_LONGOPTS,
                {}
        };
        struct top_app *a = &arg.app;
        struct sigaction sa = { .sa_handler = on_signal };
        bool have_n = false;
        int c, ex, col;

        setlocale(LC_ALL, "");
        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        atexit(cleanup);

        while ((c = getopt_long(argc, argv, "d:p:u:s:bn:Jr:" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        if (parse_delay(optarg, &a->delay_ms) < 0 || a->delay_ms < MIN_DELAY_MS ||
                            a->delay_ms > 3600000)
                                return diag_usage_error("invalid delay: '%s' (0.2s to 1h)", optarg);
                        break;
                case 'p':
                        if (diag_parse_pid_list(optarg, &arg.pids, &arg.npids, &arg.pids_alloc) < 0)
                                return diag_usage_error("invalid pid list: '%s'", optarg);
                        break;
                case 'u':
                        if (top_user_parse(optarg, &a->ro.filter.uid) < 0)
                                return diag_usage_error("no such user: '%s'", optarg);
                        a->ro.filter.have_uid = true;
                        break;
                case 's':
                        col = top_col_parse(optarg);
                        if (col < 0)
                                return diag_usage_error("no such column: '%s'", optarg);
                        a->ro.sort = (enum top_col) col;
                        a->ro.ascending = col == TOP_COL_PID || col == TOP_COL_USER || col == TOP_COL_CMD;
                        break;
                case 'b':
                        arg.batch = true;
                        break;
                case 'n':
                        if (diag_parse_ull(optarg, 10, &arg.count) < 0 || arg.count == 0)
                                return diag_usage_error("invalid count: '%s' (at least 1)", optarg);
                        have_n = true;
                        break;
                case 'J':
                        arg.json = true;
                        break;
                case 'r':
                        if (!optarg[0])
                                return diag_usage_error("%s", "empty recording directory");
                        a->replay_dir = optarg;
                        break;
                case OPT_AT:
                        a->at = optarg;
                        break;
                case OPT_NO_COLOR:
                        a->color = false;
                        break;
                case OPT_ASCII:
                        a->ascii = true;
                        break;
                case OPT_NO_MOUSE:
                        a->mouse = false;
                        break;
                case OPT_TIMINGS:
                        if (!optarg[0])
                                return diag_usage_error("%s", "empty timings file name");
                        arg.timings_path = optarg;
                        break;
                default:
                        if (!diag_std_option(c, usage, &ex))
                                return DIAG_EXIT_USAGE;
                        if (ex >= 0)
                                return ex;
                        break;
                }
        }
        if (optind < argc)
                return diag_usage_error("unexpected argument '%s'", argv[optind]);
        if ((have_n || arg.json) && !arg.batch)
                return diag_usage_error("%s", have_n ? "-n goes with -b" : "-J goes with -b");
        if (a->at && !a->replay_dir)
                return diag_usage_error("%s", "--at goes with -r DIR");
        if (arg.npids) {
                a->ro.filter.pids = arg.pids;
                a->ro.filter.npids = arg.npids;
                a->ro.filter.hide_kernel = false;
        }
        if (arg.timings_path) {
                a->timings = fopen(arg.timings_path, "we");
                if (!a->timings)
                        return log_error_errno(-errno, "cannot open %s: %m", arg.timings_path), DIAG_EXIT_FAILURE;
                setvbuf(a->timings, NULL, _IOLBF, 0);
        }

        /* a flag, no SA_RESTART: poll() returns and the loop ends, restoring the terminal */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        return run();
}
