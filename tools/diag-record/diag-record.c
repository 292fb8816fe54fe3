/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record: a flight recorder. Every interval it reads the host, the cgroups, every
 * process, the D-state threads and the kernel log into one interval, delta-codes it
 * against the one before and appends it to a ring of segment files; triggers fire
 * diag-snap bundles. `diag-record show` reads a recording back.
 *
 * It must keep running while the box thrashes: its memory is locked (mlockall with
 * MCL_ONFAULT, so nothing is populated that is never used), nothing is allocated per
 * interval once warm, its files are in one directory opened once, it never reads a
 * network file system, and its schedule is absolute (a late interval is recorded as
 * late, missed ones as a gap, never bunched).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diag/log.h"
#include "diag/record.h"
#include "diag/recstore.h"
#include "diag/rectrigger.h"
#include "diag/util.h"
#include "record.h"

#define DEFAULT_DIR_ROOT        "/var/lib/diagkit/record"
#define DEFAULT_INTERVAL_MS     5000
#define DEFAULT_FLUSH_MS        10000
#define DEFAULT_COOLDOWN_MS     (5 * 60 * 1000)
#define DEFAULT_KEEP_SNAPS      20
#define DEFAULT_MAX_SIZE        (1ULL << 30)
#define DEFAULT_QUEUE_SIZE      (16ULL << 20)
#define DEFAULT_CORES_BUDGET    (1ULL << 30)
#define DEFAULT_OOM_SCORE_ADJ   (-900)
/* A key interval (decodable alone) at least this often. */
#define KEY_EVERY_MS            60000
/* The interner is started afresh at the next key interval past this many bytes. */
#define STRINGS_MAX_BYTES       (8u << 20)
#define MAX_TRIGGERS            32
#define MAX_OWN_EVENTS          64
#define MAX_CORE_PIDS           4
#define SNAP_TIMEOUT            "3s"
#define SNAP_TIMEOUT_CORES      "30s"

struct trig {
        struct diag_rec_trigger *t;
        bool cores;
        uint64_t cores_budget;
        int64_t last_fire_ns;           /* CLOCK_BOOTTIME */
        unsigned fired;
};

struct own_event {
        char kind[16];
        char text[512];
        char path[PATH_MAX];
        int64_t time_ns, pid, count;
};

static struct {
        const char *dir;
        uint32_t interval_ms;
        uint64_t flush_ms, cooldown_ms, duration_ms;
        uint64_t max_size, queue_size;
        const char *snap_dir;
        long long keep_snaps;
        bool cores;
        uint64_t cores_budget;
        const char *openmetrics;
        int oom_score_adj;
        bool no_mlock;
        bool quiet;
} arg = {
        .interval_ms = DEFAULT_INTERVAL_MS,
        .flush_ms = DEFAULT_FLUSH_MS,
        .cooldown_ms = DEFAULT_COOLDOWN_MS,
        .max_size = DEFAULT_MAX_SIZE,
        .queue_size = DEFAULT_QUEUE_SIZE,
        .keep_snaps = DEFAULT_KEEP_SNAPS,
        .cores_budget = DEFAULT_CORES_BUDGET,
        .oom_score_adj = DEFAULT_OOM_SCORE_ADJ,
};

static struct trig trigs[MAX_TRIGGERS];
static size_t ntrigs;
static struct own_event own_events[MAX_OWN_EVENTS];
static size_t nown;
static char snap_dir_buf[PATH_MAX], dir_buf[PATH_MAX];
static pid_t snap_child;
static char snap_child_path[PATH_MAX];
static pid_t my_pid;

/* ---- options ---- */

static void usage(void) {
        printf("Usage:\n"
               " diag-record [options]\n"
               " diag-record show [options] [DIR]\n"
               "\n"
               "Record the host, its cgroups and every process every INTERVAL into a ring of\n"
               "files that survives a freeze; take diag-snap bundles when a trigger fires.\n"
               "\n"
               "Options:\n"
               " -i, --interval TIME      one record every TIME (default 5s, at least 1s)\n"
               " -D, --dir DIR            the recording (default " DEFAULT_DIR_ROOT ",\n"
               "                          or ~/.local/state/diagkit/record when not root)\n"
               "     --max-size SIZE      the ring's size: oldest files removed past it (default 1G)\n"
               "     --flush TIME         written to disk at least every TIME (default 10s)\n"
               "     --queue-size SIZE    records kept in memory while the disk is full (default 16M)\n"
               "     --on TRIGGER         take a snapshot when TRIGGER fires (repeatable);\n"
               "                          TRIGGER,cores[=SIZE] also writes cores of what matched\n"
               "     --snap-dir DIR       where snapshots go (default DIR/snaps)\n"
               "     --cooldown TIME      at most one snapshot per trigger per TIME (default 5m)\n"
               "     --keep-snaps N       keep the N newest snapshots (default 20)\n"
               "     --cores              write cores of the matched processes for every trigger\n"
               "     --cores-budget SIZE  at most SIZE of memory per core (default 1G)\n"
               "     --openmetrics FILE   keep FILE with the latest figures (node_exporter textfile)\n"
               "     --oom-score-adj N    the recorder's oom_score_adj (default -900)\n"
               "     --no-mlock           do not lock the recorder's memory\n"
               "     --duration TIME      stop after TIME\n"
               " -q, --quiet              no start and end lines on stderr\n"
               " -v, --verbose            say more on stderr\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\n"
               "Triggers: psi:memory:full>10%%  psi:io:some>50%%/2s@/sys/fs/cgroup/db.slice\n"
               "  memavail<5%%  load>16  count:php-fpm>64  rss:worker>2G  cpu:worker>90%%/30s\n"
               "  threads:java>2000  fds:nginx>10000  dstate>5/10s  oom   (SIGUSR1: one by hand)\n"
               "\n"
               "Exit status: 0 stopped by a signal or --duration, 1 could not record, 2 bad usage.\n"
               "\n"
               "See diag-record(1); `diag-record show --help` for reading a recording.\n");
}

static int add_trigger(const char *spec_in) {
        char spec[1024], err[256];
        struct trig *tr;
        char *comma;
        int r;

        if (ntrigs >= MAX_TRIGGERS)
                return diag_usage_error("too many triggers (at most %d)", MAX_TRIGGERS);
        if (strlen(spec_in) >= sizeof spec)
                return diag_usage_error("trigger too long: '%.40s...'", spec_in);
        strcpy(spec, spec_in);
        tr = &trigs[ntrigs];
        memset(tr, 0, sizeof *tr);
        tr->cores_budget = 0;
        comma = strrchr(spec, ',');
        if (comma && (strcmp(comma, ",cores") == 0 || strncmp(comma, ",cores=", 7) == 0)) {
                tr->cores = true;
                if (comma[6] == '=' && (diag_parse_size(comma + 7, &tr->cores_budget) < 0 ||
                                        tr->cores_budget < 4096))
                        return diag_usage_error("invalid core budget in '%s'", spec_in);
                *comma = 0;
        }
        r = diag_rec_trigger_parse(spec, &tr->t, err, sizeof err);
        if (r < 0)
                return diag_usage_error("invalid trigger '%s': %s", spec, err);
        tr->last_fire_ns = INT64_MIN / 2;
        ntrigs++;
        return 0;
}

static int default_dir(void) {
        const char *home;

        if (geteuid() == 0) {
                arg.dir = DEFAULT_DIR_ROOT;
                return 0;
        }
        home = getenv("HOME");
        if (!home || !home[0])
                return diag_usage_error("%s", "no HOME: name the recording with -D DIR");
        if ((size_t) snprintf(dir_buf, sizeof dir_buf, "%s/.local/state/diagkit/record", home) >= sizeof dir_buf)
                return diag_usage_error("%s", "HOME too long: name the recording with -D DIR");
        arg.dir = dir_buf;
        return 0;
}

/* mkdir -p, 0700 for what it creates. */
static int mkdir_parents(const char *path) {
        char buf[PATH_MAX];
        size_t n = strlen(path);

        if (n >= sizeof buf)
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* ---- finding diag-snap ---- */

static char snap_bin[PATH_MAX];

static bool find_snap(void) {
        char self[PATH_MAX], *slash;
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        int k;

        if (n > 0) {
                self[n] = 0;
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        k = snprintf(snap_bin, sizeof snap_bin, "%s/diag-snap", self);
                        if (k > 0 && (size_t) k < sizeof snap_bin && access(snap_bin, X_OK) == 0)
                                return true;
                        k = snprintf(snap_bin, sizeof snap_bin, "%s/../diag-snap/diag-snap", self);
                        if (k > 0 && (size_t) k < sizeof snap_bin && access(snap_bin, X_OK) == 0)
                                return true;
                }
        }
        k = snprintf(snap_bin, sizeof snap_bin, "%s/diag-snap", DIAG_LIBEXECDIR);
        if (k > 0 && (size_t) k < sizeof snap_bin && access(snap_bin, X_OK) == 0)
                return true;
        snap_bin[0] = 0;
        return false;
}

/* ---- own events ---- */

static struct own_event *own_event(const char *kind) {
        struct own_event *e;

        if (nown >= MAX_OWN_EVENTS) {           /* keep the newest: drop the oldest */
                memmove(own_events, own_events + 1, sizeof own_events[0] * (MAX_OWN_EVENTS - 1));
                nown--;
        }
        e = &own_events[nown++];
        memset(e, 0, sizeof *e);
        snprintf(e->kind, sizeof e->kind, "%s", kind);
        e->time_ns = (int64_t) diag_now_ns(CLOCK_REALTIME);
        return e;
}

static void own_events_into(struct diag_rec_interval *iv) {
        for (size_t i = 0; i < nown; i++) {
                struct own_event *e = &own_events[i];
                ssize_t r = diag_rec_add_row(iv, DIAG_REC_EVENT);

                if (r < 0)
                        break;
                DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_KIND) = diag_rec_intern(iv->strings, e->kind, strlen(e->kind));
                DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_TEXT) = diag_rec_intern(iv->strings, e->text, strlen(e->text));
                DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_PATH) = diag_rec_intern(iv->strings, e->path, strlen(e->path));
                DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_TIME_NS) = e->time_ns;
                DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_PID) = e->pid;
                DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_RSS) = DIAG_REC_NA;
                DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_COUNT) = e->count;
        }
        nown = 0;
}

/* ---- snapshots ---- */

static void reap_snapshot(void) {
        int status;
        pid_t p;

        if (snap_child <= 0)
                return;
        p = waitpid(snap_child, &status, WNOHANG);
        if (p != snap_child)
                return;
        snap_child = 0;
        if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == DIAG_EXIT_PARTIAL))
                return;
        struct own_event *e = own_event(DIAG_REC_EV_TRIGGER);
        if (WIFEXITED(status))
                snprintf(e->text, sizeof e->text, "snapshot failed: diag-snap exited with status %d",
                         WEXITSTATUS(status));
        else
                snprintf(e->text, sizeof e->text, "snapshot failed: diag-snap killed by signal %d",
                         WTERMSIG(status));
        snprintf(e->path, sizeof e->path, "%s", snap_child_path);
        log_warn("%s (%s)", e->text, snap_child_path);
}

static void snapshot_name(char *buf, size_t size) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        struct stat st;

        localtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        for (int i = 0; i < 100; i++) {
                if (i == 0)
                        snprintf(buf, size, "%s/snap-%s", arg.snap_dir, stamp);
                else
                        snprintf(buf, size, "%s/snap-%s.%d", arg.snap_dir, stamp, i);
                if (lstat(buf, &st) < 0)
                        return;
        }
}

/* Fire: record the event and start diag-snap unless one is running. */
static void fire(struct trig *tr, const char *spec, const char *why, const pid_t *pids, size_t npids) {
        struct own_event *e = own_event(DIAG_REC_EV_TRIGGER);
        char keep[32], timeout[16], budget[32], corelist[256] = "";
        const char *argv[16];
        size_t na = 0;
        bool cores = tr ? (tr->cores || arg.cores) : false;
        uint64_t cbudget = tr && tr->cores_budget ? tr->cores_budget : arg.cores_budget;
        sigset_t all;
        pid_t p;

        snprintf(e->text, sizeof e->text, "%s: %s", spec, why);
        e->pid = npids ? pids[0] : 0;
        e->count = 1;
        if (tr)
                tr->fired++;
        if (!arg.quiet)
                log_warn("trigger %s", e->text);
        reap_snapshot();
        if (snap_child > 0) {
                snprintf(e->path, sizeof e->path, "%s", "");
                strncat(e->text, "; no snapshot: the previous one is still being taken",
                        sizeof e->text - strlen(e->text) - 1);
                return;
        }
        if (!snap_bin[0]) {
                strncat(e->text, "; no snapshot: diag-snap not found", sizeof e->text - strlen(e->text) - 1);
                return;
        }
        if (mkdir_parents(arg.snap_dir) < 0) {
                strncat(e->text, "; no snapshot: cannot create the snapshot directory",
                        sizeof e->text - strlen(e->text) - 1);
                return;
        }
        snapshot_name(e->path, sizeof e->path);
        snprintf(keep, sizeof keep, "%lld", arg.keep_snaps);
        snprintf(timeout, sizeof timeout, "%s", cores && npids ? SNAP_TIMEOUT_CORES : SNAP_TIMEOUT);
        argv[na++] = "diag-snap";
        argv[na++] = "-o";
        argv[na++] = e->path;
        argv[na++] = "--keep";
        argv[na++] = keep;
        argv[na++] = "--timeout";
        argv[na++] = timeout;
        if (cores && npids) {
                size_t len = 0;
                for (size_t i = 0; i < npids && i < MAX_CORE_PIDS; i++)
                        len += (size_t) snprintf(corelist + len, sizeof corelist - len, "%s%d", i ? "," : "",
                                                 (int) pids[i]);
                snprintf(budget, sizeof budget, "%" PRIu64, cbudget);
                argv[na++] = "--cores";
                argv[na++] = corelist;
                argv[na++] = "--max-core-size";
                argv[na++] = budget;
        }
        argv[na] = NULL;

        p = fork();
        if (p < 0) {
                strncat(e->text, "; no snapshot: fork failed", sizeof e->text - strlen(e->text) - 1);
                return;
        }
        if (p == 0) {
                int devnull;

                /* the snapshot dies with the recorder (it cleans its partial bundle on SIGTERM) */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != my_pid)
                        _exit(127);
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                munlockall();
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull >= 0) {
                        dup2(devnull, 0);
                        dup2(devnull, 1);
                }
                execv(snap_bin, (char *const *) argv);
                _exit(127);
        }
        snap_child = p;
        snprintf(snap_child_path, sizeof snap_child_path, "%s", e->path);
        if (tr)
                tr->last_fire_ns = (int64_t) diag_now_ns(CLOCK_BOOTTIME);
}

/* ---- the loop ---- */

struct recorder {
        struct diag_rec_writer *w;
        struct diag_rec_sampler *s;
        struct diag_rec_encoder *enc;
        struct diag_rec_strings *strings;
        struct diag_rec_interval iv[2];         /* current and previous, alternating */
        int cur;
        bool have_prev;
        struct diag_rec_buf raw;
        uint32_t frame_n;
        bool frame_key;
        int64_t frame_first_ns, frame_last_ns;
        int64_t last_key_ns, last_flush_ns;     /* CLOCK_BOOTTIME */
        bool want_key, flush_now;
        uint64_t intervals, late, drops_reported;
        int lockfd;
};

static int cut_frame(struct recorder *rc) {
        int r;

        if (!rc->frame_n)
                return 0;
        r = diag_rec_writer_add(rc->w, rc->raw.data, rc->raw.len, rc->frame_n, rc->frame_key, rc->frame_first_ns,
                                rc->frame_last_ns);
        rc->raw.len = 0;
        rc->frame_n = 0;
        if (r < 0)
                log_warn("a frame was lost: %s", strerror(-r));
        return r;
}

static void flush(struct recorder *rc) {
        struct diag_rec_writer_stats st;
        int r;

        cut_frame(rc);
        r = diag_rec_writer_flush(rc->w);
        rc->last_flush_ns = (int64_t) diag_now_ns(CLOCK_BOOTTIME);
        rc->flush_now = false;
        diag_rec_writer_stats(rc->w, &st);
        if (diag_rec_writer_chain_broken(rc->w))
                rc->want_key = true;
        if (st.intervals_dropped > rc->drops_reported) {
                struct own_event *e = own_event(DIAG_REC_EV_DROPS);
                e->count = (int64_t) (st.intervals_dropped - rc->drops_reported);
                snprintf(e->text, sizeof e->text, "%" PRIu64 " intervals dropped: could not write (%s)",
                         st.intervals_dropped - rc->drops_reported, strerror(-st.last_error));
                rc->drops_reported = st.intervals_dropped;
                log_warn("%s", e->text);
        }
        (void) r;
}

static void check_triggers(struct recorder *rc, const struct diag_rec_interval *cur, const struct diag_rec_interval *prev,
                           unsigned oom_kills) {
        int64_t now = (int64_t) diag_now_ns(CLOCK_BOOTTIME);

        for (size_t i = 0; i < ntrigs; i++) {
                struct trig *tr = &trigs[i];
                char why[512];
                pid_t pids[MAX_CORE_PIDS];
                size_t npids = MAX_CORE_PIDS;

                if (diag_rec_trigger_kind(tr->t) == DIAG_TRIG_PSI)
                        continue;
                if (!diag_rec_trigger_check(tr->t, cur, prev, oom_kills, why, sizeof why, pids, &npids))
                        continue;
                if (now - tr->last_fire_ns < (int64_t) arg.cooldown_ms * 1000000)
                        continue;
                fire(tr, diag_rec_trigger_spec(tr->t), why, pids, npids);
                rc->flush_now = true;
        }
}

static int one_interval(struct recorder *rc, int64_t scheduled_boot_ns) {
        struct diag_rec_interval *iv = &rc->iv[rc->cur], *prev = rc->have_prev ? &rc->iv[!rc->cur] : NULL;
        int64_t t0 = (int64_t) diag_now_ns(CLOCK_BOOTTIME);
        int r;

        if (rc->want_key || t0 - rc->last_key_ns >= (int64_t) KEY_EVERY_MS * 1000000 ||
            diag_rec_strings_bytes(rc->strings) > STRINGS_MAX_BYTES) {
                /* start the chain afresh: the frame so far is cut first */
                cut_frame(rc);
                if (diag_rec_strings_bytes(rc->strings) > STRINGS_MAX_BYTES) {
                        diag_rec_strings_reset(rc->strings);
                        diag_rec_sampler_forget(rc->s);
                        prev = NULL;
                        rc->have_prev = false;
                }
                diag_rec_encoder_key(rc->enc);
                rc->frame_key = true;
                rc->last_key_ns = t0;
                rc->want_key = false;
        }
        r = diag_rec_sample(rc->s, iv);
        if (r < 0)
                return log_error_errno(r, "cannot read the host: %m");
        own_events_into(iv);
        iv->seq = rc->intervals++;
        iv->realtime_ns = (int64_t) diag_now_ns(CLOCK_REALTIME) - ((int64_t) diag_now_ns(CLOCK_BOOTTIME) - t0);
        iv->boottime_ns = t0;
        iv->interval_ms = arg.interval_ms;
        iv->late_us = (t0 - scheduled_boot_ns) / 1000;
        iv->took_us = (uint32_t) (((int64_t) diag_now_ns(CLOCK_BOOTTIME) - t0) / 1000);
        if (iv->late_us * 2 > (int64_t) arg.interval_ms * 1000)
                rc->late++;

        if (!rc->frame_n) {
                rc->frame_first_ns = iv->realtime_ns;
                if (rc->raw.len == 0 && !rc->frame_key)
                        rc->frame_key = false;
        }
        r = diag_rec_encode(rc->enc, iv, &rc->raw);
        if (r < 0) {
                log_warn("an interval was lost: %s", strerror(-r));
                rc->want_key = true;
        } else {
                rc->frame_n++;
                rc->frame_last_ns = iv->realtime_ns;
        }

        check_triggers(rc, iv, prev, 0);
        if (arg.openmetrics)
                openmetrics_write(arg.openmetrics, iv, prev);

        if (rc->flush_now || t0 - rc->last_flush_ns >= (int64_t) arg.flush_ms * 1000000)
                flush(rc);
        if (rc->frame_n == 0)
                rc->frame_key = false;
        rc->cur = !rc->cur;
        rc->have_prev = true;
        return 0;
}

static int record_main(void) {
        struct recorder rc = { .lockfd = -1 };
        struct diag_rec_writer_opts wo = { .max_size = arg.max_size, .interval_ms = arg.interval_ms,
                                           .queue_size = arg.queue_size };
        struct diag_rec_sampler_opts so = { .kmsg = true, .cgroups = true, .dstate = true };
        struct pollfd pfd[3 + MAX_TRIGGERS];
        struct itimerspec its = { 0 };
        sigset_t mask;
        int sfd, tfd, r, exit_code = DIAG_EXIT_OK;
        int64_t start_ns, next_ns, end_ns = 0;
        char lockpath[PATH_MAX], err[256];

        my_pid = getpid();
        if (!arg.dir && default_dir() != 0)
                return DIAG_EXIT_USAGE;
        if (!arg.snap_dir) {
                if ((size_t) snprintf(snap_dir_buf, sizeof snap_dir_buf, "%s/snaps", arg.dir) >= sizeof snap_dir_buf)
                        return diag_usage_error("%s", "directory name too long");
                arg.snap_dir = snap_dir_buf;
        }
        r = mkdir_parents(arg.dir);
        if (r < 0) {
                log_error_errno(r, "cannot create %s: %m", arg.dir);
                return DIAG_EXIT_FAILURE;
        }
        /* one recorder per directory */
        if ((size_t) snprintf(lockpath, sizeof lockpath, "%s/.lock", arg.dir) >= sizeof lockpath)
                return diag_usage_error("%s", "directory name too long");
        rc.lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (rc.lockfd < 0) {
                log_error_errno(-errno, "cannot open %s: %m", lockpath);
                return DIAG_EXIT_FAILURE;
        }
        if (flock(rc.lockfd, LOCK_EX | LOCK_NB) < 0) {
                char other[32] = "";
                ssize_t n = pread(rc.lockfd, other, sizeof other - 1, 0);
                other[MAX(n, 0)] = 0;
                log_error("another diag-record is recording into %s (pid %s)", arg.dir,
                          other[0] ? diag_strip(other) : "?");
                close(rc.lockfd);
                return DIAG_EXIT_FAILURE;
        }
        if (ftruncate(rc.lockfd, 0) == 0) {
                char pidtext[32];
                int n = snprintf(pidtext, sizeof pidtext, "%d\n", (int) my_pid);
                if (pwrite(rc.lockfd, pidtext, (size_t) n, 0) < 0)
                        log_debug("cannot write the lock file: %m");
        }

        for (size_t i = 0; i < ntrigs; i++) {
                r = diag_rec_trigger_arm(trigs[i].t, err, sizeof err);
                if (r > 0)
                        log_warn("trigger %s: %s", diag_rec_trigger_spec(trigs[i].t), err);
                if (r < 0) {
                        log_error("trigger %s: %s", diag_rec_trigger_spec(trigs[i].t), err);
                        exit_code = DIAG_EXIT_FAILURE;
                        goto out;
                }
        }
        if (ntrigs && !find_snap())
                log_warn("%s", "diag-snap not found: triggers are recorded, but no snapshot is taken");
        find_snap();

        r = diag_rec_writer_open(&rc.w, arg.dir, &wo);
        if (r < 0) {
                log_error_errno(r, "cannot open the recording %s: %m", arg.dir);
                exit_code = DIAG_EXIT_FAILURE;
                goto out;
        }
        if (geteuid() != 0)
                so.kmsg = true;         /* the sampler says nothing when it cannot read it */
        r = diag_rec_sampler_new(&rc.s, &so);
        if (r < 0) {
                log_error_errno(r, "cannot start reading the host: %m");
                exit_code = DIAG_EXIT_FAILURE;
                goto out;
        }
        rc.strings = diag_rec_strings_new();
        rc.enc = diag_rec_encoder_new();
        if (!rc.strings || !rc.enc) {
                log_error("%s", "out of memory");
                exit_code = DIAG_EXIT_FAILURE;
                goto out;
        }
        diag_rec_interval_init(&rc.iv[0], rc.strings);
        diag_rec_interval_init(&rc.iv[1], rc.strings);
        if (diag_rec_buf_reserve(&rc.raw, 1 << 20) < 0) {
                log_error("%s", "out of memory");
                exit_code = DIAG_EXIT_FAILURE;
                goto out;
        }

        /* the recorder is the last thing the OOM killer should pick */
        {
                char v[16];
                int n = snprintf(v, sizeof v, "%d\n", arg.oom_score_adj);
                _cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, v, (size_t) n) != n)
                        log_warn("cannot set oom_score_adj to %d: %m", arg.oom_score_adj);
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        tfd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
        if (sfd < 0 || tfd < 0) {
                log_error_errno(-errno, "cannot set up signals and the timer: %m");
                exit_code = DIAG_EXIT_FAILURE;
                goto out;
        }

        {
                struct own_event *e = own_event(DIAG_REC_EV_START);
                snprintf(e->text, sizeof e->text, "diag-record %s, every %ums, %zu triggers", DIAG_VERSION,
                         arg.interval_ms, ntrigs);
                e->pid = my_pid;
        }
        if (!arg.quiet) {
                char sz[32];
                fprintf(stderr, "diag-record: recording into %s every %s, ring %s, %zu trigger%s\n", arg.dir,
                        diag_format_duration(arg.interval_ms, err, sizeof err),
                        diag_format_size(arg.max_size, sz, sizeof sz), ntrigs, ntrigs == 1 ? "" : "s");
        }

        start_ns = (int64_t) diag_now_ns(CLOCK_BOOTTIME);
        rc.last_flush_ns = start_ns;
        rc.last_key_ns = INT64_MIN / 2;
        if (arg.duration_ms)
                end_ns = start_ns + (int64_t) arg.duration_ms * 1000000;
        next_ns = start_ns;
        r = one_interval(&rc, next_ns);         /* warm: every path taken once before locking */
        if (r < 0) {
                exit_code = DIAG_EXIT_FAILURE;
                goto out;
        }
        if (!arg.no_mlock && mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
                log_warn("cannot lock the recorder's memory: %m");

        for (;;) {
                int n = 0, kfd, pr;
                unsigned oom_kills = 0;
                int64_t now;
                bool stop = false;

                next_ns += (int64_t) arg.interval_ms * 1000000;
                now = (int64_t) diag_now_ns(CLOCK_BOOTTIME);
                if (next_ns <= now) {
                        /* stalled past whole intervals: skip them (show reports the gap) */
                        int64_t behind = (now - next_ns) / ((int64_t) arg.interval_ms * 1000000);
                        next_ns += behind * (int64_t) arg.interval_ms * 1000000;
                }
                if (end_ns && next_ns > end_ns)
                        break;
                its.it_value.tv_sec = next_ns / 1000000000;
                its.it_value.tv_nsec = next_ns % 1000000000;
                timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);

                for (;;) {
                        n = 0;
                        pfd[n++] = (struct pollfd) { .fd = tfd, .events = POLLIN };
                        pfd[n++] = (struct pollfd) { .fd = sfd, .events = POLLIN };
                        kfd = diag_rec_sampler_kmsg_fd(rc.s);
                        pfd[n++] = (struct pollfd) { .fd = kfd, .events = POLLIN };
                        for (size_t i = 0; i < ntrigs; i++)
                                pfd[n++] = (struct pollfd) { .fd = diag_rec_trigger_fd(trigs[i].t), .events = POLLPRI };
                        pr = poll(pfd, (nfds_t) n, -1);
                        if (pr < 0 && errno == EINTR)
                                continue;
                        if (pr < 0) {
                                log_error_errno(-errno, "poll: %m");
                                stop = true;
                                exit_code = DIAG_EXIT_FAILURE;
                                break;
                        }
                        if (pfd[1].revents & POLLIN) {
                                struct signalfd_siginfo si;
                                while (read(sfd, &si, sizeof si) == sizeof si) {
                                        if (si.ssi_signo == SIGUSR1) {
                                                fire(NULL, "SIGUSR1", "a snapshot by hand", NULL, 0);
                                                rc.flush_now = true;
                                        } else if (si.ssi_signo == SIGCHLD) {
                                                reap_snapshot();
                                        } else {
                                                stop = true;
                                        }
                                }
                                if (rc.flush_now)
                                        flush(&rc);
                        }
                        if (stop)
                                break;
                        if (pfd[2].fd >= 0 && (pfd[2].revents & POLLIN)) {
                                int k = diag_rec_sampler_poll_kmsg(rc.s);
                                if (k > 0)
                                        oom_kills += (unsigned) k;
                        }
                        if (oom_kills) {
                                /* the oom trigger fires now, not at the next interval */
                                const struct diag_rec_interval *pend = diag_rec_sampler_pending(rc.s);
                                for (size_t i = 0; i < ntrigs; i++) {
                                        char why[512];
                                        pid_t pids[MAX_CORE_PIDS];
                                        size_t np = MAX_CORE_PIDS;
                                        if (diag_rec_trigger_kind(trigs[i].t) != DIAG_TRIG_OOM)
                                                continue;
                                        if (!diag_rec_trigger_check(trigs[i].t, pend, NULL, oom_kills, why, sizeof why,
                                                                    pids, &np))
                                                continue;
                                        if ((int64_t) diag_now_ns(CLOCK_BOOTTIME) - trigs[i].last_fire_ns <
                                            (int64_t) arg.cooldown_ms * 1000000)
                                                continue;
                                        fire(&trigs[i], diag_rec_trigger_spec(trigs[i].t), why, pids, np);
                                        flush(&rc);
                                }
                                oom_kills = 0;
                        }
                        for (size_t i = 0; i < ntrigs; i++) {
                                struct pollfd *p = &pfd[3 + i];
                                char why[512];
                                if (p->fd < 0 || !p->revents)
                                        continue;
                                if (!diag_rec_trigger_psi_event(trigs[i].t, p->revents, why, sizeof why))
                                        continue;
                                if ((int64_t) diag_now_ns(CLOCK_BOOTTIME) - trigs[i].last_fire_ns <
                                    (int64_t) arg.cooldown_ms * 1000000)
                                        continue;
                                fire(&trigs[i], diag_rec_trigger_spec(trigs[i].t), why, NULL, 0);
                                flush(&rc);
                        }
                        if (pfd[0].revents & POLLIN) {
                                uint64_t ticks;
                                if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                                        log_debug("timerfd: %m");
                                break;
                        }
                }
                if (stop)
                        break;
                if (one_interval(&rc, next_ns) < 0) {
                        exit_code = DIAG_EXIT_FAILURE;
                        break;
                }
        }
        flush(&rc);

out:
        if (rc.w) {
                struct diag_rec_writer_stats st;
                r = diag_rec_writer_close(rc.w);
                rc.w = NULL;
                (void) r;
                if (!arg.quiet) {
                        char sz[32];
                        (void) st;
                        fprintf(stderr, "diag-record: %" PRIu64 " intervals, %" PRIu64 " late\n", rc.intervals, rc.late);
                        (void) sz;
                }
        }
        if (snap_child > 0) {
                /* a snapshot still being taken is finished, not abandoned (it is bounded by its --timeout) */
                waitpid(snap_child, NULL, 0);
        }
        diag_rec_sampler_free(rc.s);
        diag_rec_encoder_free(rc.enc);
        diag_rec_interval_free(&rc.iv[0]);
        diag_rec_interval_free(&rc.iv[1]);
        diag_rec_strings_free(rc.strings);
        diag_rec_buf_free(&rc.raw);
        for (size_t i = 0; i < ntrigs; i++)
                diag_rec_trigger_free(trigs[i].t);
        if (rc.lockfd >= 0)
                close(rc.lockfd);
        return exit_code;
}

enum {
        OPT_MAX_SIZE = 0x100, OPT_FLUSH, OPT_QUEUE_SIZE, OPT_ON, OPT_SNAP_DIR, OPT_COOLDOWN, OPT_KEEP_SNAPS, OPT_CORES,
        OPT_CORES_BUDGET, OPT_OPENMETRICS, OPT_OOM_ADJ, OPT_NO_MLOCK, OPT_DURATION,
};

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "interval",      required_argument, NULL, 'i' },
                { "dir",           required_argument, NULL, 'D' },
                { "max-size",      required_argument, NULL, OPT_MAX_SIZE },
                { "flush",         required_argument, NULL, OPT_FLUSH },
                { "queue-size",    required_argument, NULL, OPT_QUEUE_SIZE },
                { "on",            required_argument, NULL, OPT_ON },
                { "snap-dir",      required_argument, NULL, OPT_SNAP_DIR },
                { "cooldown",      required_argument, NULL, OPT_COOLDOWN },
                { "keep-snaps",    required_argument, NULL, OPT_KEEP_SNAPS },
                { "cores",         no_argument,       NULL, OPT_CORES },
                { "cores-budget",  required_argument, NULL, OPT_CORES_BUDGET },
                { "openmetrics",   required_argument, NULL, OPT_OPENMETRICS },
                { "oom-score-adj", required_argument, NULL, OPT_OOM_ADJ },
                { "no-mlock",      no_argument,       NULL, OPT_NO_MLOCK },
                { "duration",      required_argument, NULL, OPT_DURATION },
                { "quiet",         no_argument,       NULL, 'q' },
                DIAG_STD_LONGOPTS,
                {}
        };
        int c, ex;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        if (argc > 1 && strcmp(argv[1], "show") == 0)
                return show_main(argc - 1, argv + 1);

        while ((c = getopt_long(argc, argv, "i:D:q" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                uint64_t v;
                long long ll;

                switch (c) {
                case 'i':
                        if (diag_parse_duration_ms(optarg, &v) < 0 || v < 1000 || v > 3600000)
                                return diag_usage_error("invalid interval: '%s' (1s to 1h)", optarg);
                        arg.interval_ms = (uint32_t) v;
                        break;
                case 'D':
                        if (!optarg[0])
                                return diag_usage_error("%s", "empty directory");
                        arg.dir = optarg;
                        break;
                case OPT_MAX_SIZE:
                        if (diag_parse_size(optarg, &v) < 0 || v < (4ULL << 20))
                                return diag_usage_error("invalid size: '%s' (at least 4M)", optarg);
                        arg.max_size = v;
                        break;
                case OPT_FLUSH:
                        if (diag_parse_duration_ms(optarg, &v) < 0 || v < 1000 || v > 3600000)
                                return diag_usage_error("invalid flush time: '%s' (1s to 1h)", optarg);
                        arg.flush_ms = v;
                        break;
                case OPT_QUEUE_SIZE:
                        if (diag_parse_size(optarg, &v) < 0 || v < (64ULL << 10) || v > (1ULL << 30))
                                return diag_usage_error("invalid size: '%s' (64K to 1G)", optarg);
                        arg.queue_size = v;
                        break;
                case OPT_ON:
                        if ((ex = add_trigger(optarg)) != 0)
                                return ex;
                        break;
                case OPT_SNAP_DIR:
                        if (!optarg[0])
                                return diag_usage_error("%s", "empty snapshot directory");
                        arg.snap_dir = optarg;
                        break;
                case OPT_COOLDOWN:
                        if (diag_parse_duration_ms(optarg, &v) < 0)
                                return diag_usage_error("invalid cooldown: '%s'", optarg);
                        arg.cooldown_ms = v;
                        break;
                case OPT_KEEP_SNAPS:
                        if (diag_parse_ll(optarg, 10, 1, 1000000, &ll) < 0)
                                return diag_usage_error("invalid count: '%s' (at least 1)", optarg);
                        arg.keep_snaps = ll;
                        break;
                case OPT_CORES:
                        arg.cores = true;
                        break;
                case OPT_CORES_BUDGET:
                        if (diag_parse_size(optarg, &v) < 0 || v < 4096)
                                return diag_usage_error("invalid size: '%s' (at least 4K)", optarg);
                        arg.cores_budget = v;
                        break;
                case OPT_OPENMETRICS:
                        if (!optarg[0])
                                return diag_usage_error("%s", "empty file name");
                        arg.openmetrics = optarg;
                        break;
                case OPT_OOM_ADJ:
                        if (diag_parse_ll(optarg, 10, -1000, 1000, &ll) < 0)
                                return diag_usage_error("invalid oom_score_adj: '%s' (-1000 to 1000)", optarg);
                        arg.oom_score_adj = (int) ll;
                        break;
                case OPT_NO_MLOCK:
                        arg.no_mlock = true;
                        break;
                case OPT_DURATION:
                        if (diag_parse_duration_ms(optarg, &v) < 0 || v == 0)
                                return diag_usage_error("invalid duration: '%s'", optarg);
                        arg.duration_ms = v;
                        break;
                case 'q':
                        arg.quiet = true;
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
        return record_main();
}
