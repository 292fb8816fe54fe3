/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show: read a recording (the store's frames, the codec's intervals) and
 * feed the views of show.c, reporting gaps and damage on the way.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag/log.h"
#include "diag/record.h"
#include "diag/recstore.h"
#include "diag/util.h"
#include "record.h"
#include "show.h"

#define DEFAULT_DIR_ROOT        "/var/lib/diagkit/record"
#define FOLLOW_POLL_MS          500

static void show_usage(void) {
        printf("Usage:\n"
               " diag-record show [options] [DIR]\n"
               "\n"
               "Read a recording of diag-record (also one copied off another machine): the\n"
               "host's timeline, the top processes, process counts per command line, OOM kills,\n"
               "triggers and their snapshots, gaps.\n"
               "\n"
               "Options:\n"
               "     --from TIME          from TIME (17:15:50, 2026-12-04 17:15:50, -10m, @EPOCH)\n"
               "     --to TIME            up to TIME\n"
               "     --at TIME            that instant, like a snapshot\n"
               " -p, --pid PID            that process's own timeline\n"
               " -c, --cmd PATTERN        processes whose command line matches PATTERN (ERE)\n"
               "     --top N              rows per list (default 5)\n"
               "     --step TIME          one timeline line per TIME (default: about 40 lines)\n"
               "     --svg FILE           draw the timeline as an SVG chart into FILE\n"
               " -J, --json               one JSON document\n"
               " -f, --follow             with -J: one JSON line per interval, as they are recorded\n"
               "     --dump               every interval as recorded, one JSON line each\n"
               " -v, --verbose            say more on stderr\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Exit status: 0 shown, 1 no recording, 2 bad usage, 4 shown, but part of the\n"
               "recording was damaged or missing (stderr says which).\n");
}

/* --dump: every interval as one JSON line, every table and column as recorded
 * (names from the schema, DIAG_REC_NA as null): for scripts and tests. */
static int dump_interval(const struct diag_rec_interval *iv) {
        struct json_object *o = json_object_new_object();
        const char *text;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "seq", json_object_new_int64((int64_t) iv->seq));
        json_object_object_add(o, "time_ns", json_object_new_int64(iv->realtime_ns));
        json_object_object_add(o, "boottime_ns", json_object_new_int64(iv->boottime_ns));
        json_object_object_add(o, "interval_ms", json_object_new_int64(iv->interval_ms));
        json_object_object_add(o, "late_us", json_object_new_int64(iv->late_us));
        json_object_object_add(o, "took_us", json_object_new_int64(iv->took_us));
        for (int t = 0; t < DIAG_REC_NTABLES; t++) {
                const struct diag_rec_schema *sc = &diag_rec_schemas[t];
                struct json_object *rows = json_object_new_array();

                for (size_t r = 0; r < iv->t[t].nrows; r++) {
                        struct json_object *row = json_object_new_object();
                        for (unsigned c = 0; c < sc->nstr; c++)
                                json_object_object_add(row, sc->str_names[c], json_object_new_string(
                                        diag_rec_str(iv->strings, iv->t[t].str[r * sc->nstr + c])));
                        for (unsigned c = 0; c < sc->nnum; c++) {
                                int64_t v = iv->t[t].num[r * sc->nnum + c];
                                json_object_object_add(row, sc->num_names[c],
                                                       v == DIAG_REC_NA ? NULL : json_object_new_int64(v));
                        }
                        json_object_array_add(rows, row);
                }
                if (t == DIAG_REC_HOST) {
                        json_object_object_add(o, sc->name, iv->t[t].nrows ?
                                               json_object_get(json_object_array_get_idx(rows, 0)) : NULL);
                        json_object_put(rows);
                } else {
                        json_object_object_add(o, sc->name, rows);
                }
        }
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        fputs(text, stdout);
        fputc('\n', stdout);
        json_object_put(o);
        return 0;
}

struct warn_ctx {
        struct rec_show *show;
        unsigned n;
};

static void warn_cb(void *userdata, const char *fmt, ...) {
        struct warn_ctx *w = userdata;
        char line[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        w->n++;
        log_warn("%s", line);
        if (w->show)
                rec_show_warning(w->show, line);
}

/* The realtime of the recording's last interval (for times given as 17:15:50). From
 * the last key frame; from the start when nothing can be read from there (that key
 * frame is damaged). */
static int64_t recording_end(struct diag_rec_reader *r) {
        struct diag_rec_frame_info info;
        const uint8_t *raw;
        size_t len;
        int64_t last = 0;

        for (int pass = 0; pass < 2 && !last; pass++) {
                if (diag_rec_reader_seek(r, pass ? INT64_MIN : INT64_MAX) < 0)
                        return 0;
                while (diag_rec_reader_next(r, &raw, &len, &info) > 0)
                        if (info.last_ns > last)
                                last = info.last_ns;
        }
        return last;
}

int show_main(int argc, char **argv) {
        enum { OPT_FROM = 0x100, OPT_TO, OPT_AT, OPT_TOP, OPT_STEP, OPT_SVG, OPT_DUMP };
        static const struct option longopts[] = {
                { "from",    required_argument, NULL, OPT_FROM },
                { "to",      required_argument, NULL, OPT_TO },
                { "at",      required_argument, NULL, OPT_AT },
                { "pid",     required_argument, NULL, 'p' },
                { "cmd",     required_argument, NULL, 'c' },
                { "top",     required_argument, NULL, OPT_TOP },
                { "step",    required_argument, NULL, OPT_STEP },
                { "svg",     required_argument, NULL, OPT_SVG },
                { "json",    no_argument,       NULL, 'J' },
                { "follow",  no_argument,       NULL, 'f' },
                { "dump",    no_argument,       NULL, OPT_DUMP },
                DIAG_STD_LONGOPTS,
                {}
        };
        struct rec_show_opts o = { .top = 5, .out = stdout };
        const char *from = NULL, *to = NULL, *at = NULL, *dir = NULL;
        char dirbuf[PATH_MAX];
        struct diag_rec_reader *rd = NULL;
        struct diag_rec_decoder *dec = NULL;
        struct diag_rec_interval iv;
        struct diag_rec_frame_info info;
        struct warn_ctx wc = { 0 };
        struct rec_show *show = NULL;
        uint64_t last_seq = 0;
        bool have_seq = false, chain_lost = false, dump = false;
        int64_t last_ns = 0, end_ns;
        uint32_t interval_ms = 0;
        int c, r, ex;

        diag_rec_interval_init(&iv, NULL);
        optind = 1;
        while ((c = getopt_long(argc, argv, "p:c:Jf" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                long long v;
                uint64_t ms;

                switch (c) {
                case OPT_FROM: from = optarg; break;
                case OPT_TO:   to = optarg; break;
                case OPT_AT:   at = optarg; break;
                case 'p':
                        if (diag_parse_pid(optarg, &o.pid) < 0)
                                return diag_usage_error("invalid pid: '%s'", optarg);
                        break;
                case 'c':
                        o.cmd_pattern = optarg;
                        break;
                case OPT_TOP:
                        if (diag_parse_ll(optarg, 10, 1, 1000, &v) < 0)
                                return diag_usage_error("invalid count: '%s' (1 to 1000)", optarg);
                        o.top = (unsigned) v;
                        break;
                case OPT_STEP:
                        if (diag_parse_duration_ms(optarg, &ms) < 0 || ms < 1000)
                                return diag_usage_error("invalid step: '%s' (at least 1s)", optarg);
                        o.step_s = (unsigned) (ms / 1000);
                        break;
                case OPT_SVG:
                        if (!optarg[0])
                                return diag_usage_error("%s", "empty file name");
                        o.svg_path = optarg;
                        break;
                case 'J': o.json = true; break;
                case 'f': o.follow = true; break;
                case OPT_DUMP: dump = true; break;
                default:
                        if (!diag_std_option(c, show_usage, &ex))
                                return DIAG_EXIT_USAGE;
                        if (ex >= 0)
                                return ex;
                        break;
                }
        }
        if (optind < argc)
                dir = argv[optind++];
        if (optind < argc)
                return diag_usage_error("unexpected argument '%s'", argv[optind]);
        if (dump && (o.json || o.svg_path || o.at_ns || at))
                return diag_usage_error("%s", "--dump prints every interval as recorded: not with -J, --svg or --at");
        if (o.follow && !o.json && !dump)
                return diag_usage_error("%s", "--follow prints JSON lines: use it with -J");
        if (o.follow && (at || to || o.svg_path))
                return diag_usage_error("%s", "--follow goes on for ever: not with --at, --to or --svg");
        if (at && (from || to))
                return diag_usage_error("%s", "--at is one instant: not with --from or --to");
        if (!dir) {
                const char *home = getenv("HOME");
                if (geteuid() == 0 || !home)
                        dir = DEFAULT_DIR_ROOT;
                else if ((size_t) snprintf(dirbuf, sizeof dirbuf, "%s/.local/state/diagkit/record", home) < sizeof dirbuf)
                        dir = dirbuf;
                else
                        dir = DEFAULT_DIR_ROOT;
        }

        r = diag_rec_reader_open(&rd, dir, warn_cb, &wc);
        if (r == -ENOENT) {
                log_error("no recording in %s", dir);
                return DIAG_EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "cannot read the recording %s: %m", dir);
                return DIAG_EXIT_FAILURE;
        }
        end_ns = recording_end(rd);
        if (!end_ns && !o.follow) {
                log_error("no readable record in %s", dir);
                diag_rec_reader_close(rd);
                return DIAG_EXIT_FAILURE;
        }
        if (!end_ns)
                end_ns = (int64_t) diag_now_ns(CLOCK_REALTIME);
        {
                const struct { const char *s; int64_t *dst; } t[] = {
                        { from, &o.from_ns }, { to, &o.to_ns }, { at, &o.at_ns },
                };
                for (size_t i = 0; i < 3; i++)
                        if (t[i].s && rec_show_parse_time(t[i].s, end_ns, t[i].dst) < 0) {
                                diag_rec_reader_close(rd);
                                return diag_usage_error("invalid time: '%s'", t[i].s);
                        }
        }
        if (o.from_ns && o.to_ns && o.to_ns < o.from_ns) {
                diag_rec_reader_close(rd);
                return diag_usage_error("%s", "--to is before --from");
        }

        show = rec_show_new(&o);
        dec = diag_rec_decoder_new();
        if (!show || !dec) {
                log_error("%s", "out of memory");
                ex = DIAG_EXIT_FAILURE;
                goto out;
        }
        wc.show = show;
        iv.strings = diag_rec_decoder_strings(dec);

        /* from the last key frame before what is asked for */
        r = diag_rec_reader_seek(rd, o.at_ns ? o.at_ns - 60LL * 1000000000 : o.from_ns ? o.from_ns : INT64_MIN);
        if (r < 0) {
                log_error_errno(r, "cannot read the recording %s: %m", dir);
                ex = DIAG_EXIT_FAILURE;
                goto out;
        }
        for (;;) {
                const uint8_t *raw, *p, *end;
                size_t len;

                r = diag_rec_reader_next(rd, &raw, &len, &info);
                if (r < 0) {
                        log_error_errno(r, "cannot read the recording %s: %m", dir);
                        break;
                }
                if (r == 0) {
                        if (!o.follow)
                                break;
                        fflush(stdout);
                        struct timespec ts = { 0, FOLLOW_POLL_MS * 1000000L };
                        nanosleep(&ts, NULL);
                        continue;
                }
                if (o.to_ns && info.first_ns > o.to_ns)
                        break;
                if (o.at_ns && info.first_ns > o.at_ns + (int64_t) (interval_ms ? interval_ms : 60000) * 2000000)
                        break;
                if (!info.key && (!have_seq || info.prev_seq != last_seq)) {
                        /* its reference was lost (dropped or damaged): skip to the next key frame */
                        if (have_seq)
                                chain_lost = true;
                        diag_rec_decoder_reset(dec);
                        have_seq = false;
                        continue;
                }
                last_seq = info.seq;
                have_seq = true;
                p = raw;
                end = raw + len;
                for (;;) {
                        r = diag_rec_decode(dec, &p, end, &iv);
                        if (r == 0)
                                break;
                        if (r < 0) {
                                warn_cb(&wc, "frame %" PRIu64 " (segment %" PRIu64 ", offset %" PRIu64
                                        "): its records cannot be decoded (%s), skipped",
                                        info.seq, info.segment, info.offset, strerror(-r));
                                diag_rec_decoder_reset(dec);
                                have_seq = false;
                                break;
                        }
                        if (o.from_ns && iv.realtime_ns < o.from_ns && !o.at_ns)
                                continue;
                        if (o.to_ns && iv.realtime_ns > o.to_ns)
                                break;
                        if (iv.interval_ms)
                                interval_ms = iv.interval_ms;
                        if (last_ns && iv.realtime_ns - last_ns > (int64_t) iv.interval_ms * 2500000 + 1000000000LL)
                                rec_show_gap(show, last_ns, iv.realtime_ns,
                                             chain_lost ? "records lost (damaged or dropped)"
                                                        : "no records (the recorder was not running or stalled)");
                        chain_lost = false;
                        last_ns = iv.realtime_ns;
                        if (dump ? dump_interval(&iv) < 0 : rec_show_interval(show, &iv) < 0) {
                                log_error("%s", "out of memory");
                                ex = DIAG_EXIT_FAILURE;
                                goto out;
                        }
                }
        }
        r = dump ? 0 : rec_show_finish(show);
        if (r < 0) {
                log_error_errno(r, "cannot write the output: %m");
                ex = DIAG_EXIT_FAILURE;
                goto out;
        }
        ex = wc.n ? DIAG_EXIT_PARTIAL : DIAG_EXIT_OK;
        if (diag_close_stdout() < 0)
                ex = DIAG_EXIT_FAILURE;
out:
        diag_rec_interval_free(&iv);
        diag_rec_decoder_free(dec);
        rec_show_free(show);
        diag_rec_reader_close(rd);
        return ex;
}
