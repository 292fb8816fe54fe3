/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record's triggers: parsing --on SPEC, arming the kernel's PSI triggers, and
 * checking the other kinds against each interval the sampler reads. Firing, cooldown
 * and rate limiting are the recorder's: a condition that stays true is reported again
 * on every check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag/rectrigger.h"
#include "diag/util.h"

/* The kernel's documented PSI window range (older kernels refuse below it, all above it). */
#define PSI_WINDOW_MIN_US 500000ULL
#define PSI_WINDOW_MAX_US 10000000ULL
/* Unprivileged triggers (Linux 6.5+) share the 2 s averaging: windows in multiples of it. */
#define PSI_UNPRIV_STEP_US 2000000ULL
#define PSI_DEFAULT_WINDOW_US 1000000ULL

#define CPU_DEFAULT_DUR_US 10000000ULL
/* A process above this many percent of one CPU would need a million CPUs. */
#define CPU_PCT_MAX 100000000.0

/* fds: entries counted per process at most (fs.nr_open's default), processes read per check. */
#define FDS_COUNT_CAP 1048576L
#define FDS_MAX_PROCS 4096

/* The longest number a spec may carry ("12.5", "1048576"). */
#define NUMBER_MAX 32

enum psi_res { PSI_CPU, PSI_MEMORY, PSI_IO };
static const char *const psi_res_names[] = { "cpu", "memory", "io" };

struct cpu_track {
        pid_t pid;
        int64_t start;
        int64_t since_ns;               /* boottime since when it has been above */
        int64_t last_ns;                /* boottime of the interval that last saw it above */
        double pct;                     /* over the last interval */
};

struct match {
        pid_t pid;
        double value;                   /* what orders the pids: rss, threads, fds, cpu%, ... */
        size_t row;
        int64_t extra;                  /* cpu: how long above (ns) */
};

struct diag_rec_trigger {
        enum diag_rec_trigger_kind kind;
        char *spec;

        /* psi */
        enum psi_res res;
        bool full;
        uint64_t window_us, stall_us;
        bool window_given;              /* /DUR in the spec: the kernel's refusal is final */
        char *cgroup;
        char *psi_path;
        int fd;

        double pct;                     /* psi, memavail (P%), cpu */
        bool by_pct;                    /* memavail: pct, else size */
        uint64_t size;                  /* memavail, rss */
        double load;
        int64_t n;                      /* count, threads, fds, dstate */
        uint64_t dur_us;                /* cpu, dstate; 0 = one interval (dstate) */

        /* the pattern */
        char *pattern;
        pid_t pid;                      /* > 0: a pid pattern */
        regex_t re;
        bool have_re;

        /* cpu state: processes above the threshold, sorted by pid, start */
        struct cpu_track *track, *track_next;
        size_t ntrack, track_alloc, track_next_alloc;
        /* dstate state */
        bool ds_active;
        int64_t ds_since_ns, ds_last_ns;

        struct match *m;                /* scratch for a check */
        size_t m_alloc;
};

/* ---- parsing ---- */

_printf_(4, 5)
static int fail(char *err, size_t errsize, const char *spec, const char *fmt, ...) {
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        if (err && errsize)
                snprintf(err, errsize, "%s in '%s'", what, spec);
        return -EINVAL;
}

/* A decimal number ("12", "12.5") at s; *end after it. false when there is none. Read
 * by hand: strtod would follow the locale's decimal point. */
static bool scan_number(const char *s, double *ret, const char **end) {
        const char *p = s;
        double v = 0, scale = 1;

        for (; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
        if (p == s)
                return false;
        if (*p == '.') {
                const char *q = ++p;
                for (; *p >= '0' && *p <= '9'; p++)
                        v += (*p - '0') * (scale /= 10);
                if (p == q)
                        return false;
        }
        if ((size_t) (p - s) > NUMBER_MAX)
                return false;
        *ret = v;
        *end = p;
        return true;
}

/* "P%" making up all of s. */
static bool parse_pct(const char *s, double *ret) {
        const char *end;
        return scan_number(s, ret, &end) && end[0] == '%' && end[1] == 0;
}

/* "N" (digits only) making up all of s. */
static bool parse_count(const char *s, int64_t *ret) {
        long long v;
        if (!(*s >= '0' && *s <= '9') || diag_parse_ll(s, 10, 0, INT64_MAX, &v) < 0)
                return false;
        *ret = v;
        return true;
}

/* SIZE: a number, optionally K/M/G/T (powers of 1024), optionally "B" or "iB" after. */
static bool parse_size(const char *s, uint64_t *ret) {
        static const char units[] = "KMGT";
        const char *p;
        double v, mult = 1;

        if (!scan_number(s, &v, &p))
                return false;
        if (*p) {
                const char *u = strchr(units, *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
                if (u && *u) {
                        for (const char *q = units; q <= u; q++)
                                mult *= 1024;
                        p++;
                        if (*p == 'i' && p[1] == 'B')
                                p++;
                }
                if (*p == 'B')
                        p++;
        }
        if (*p)
                return false;
        v *= mult;
        if (v >= 18446744073709551615.0)
                return false;
        *ret = (uint64_t) (v + 0.5);
        return true;
}

/* Copy len bytes of s into buf and cut it at its first '/': the head stays in buf, the
 * tail after the '/' is returned in *ret_tail (NULL without one). false: too long. */
static bool split_slash(const char *s, size_t len, char *buf, size_t size, const char **ret_tail) {
        char *slash;

        if (len >= size)
                return false;
        memcpy(buf, s, len);
        buf[len] = 0;
        slash = strchr(buf, '/');
        if (slash)
                *slash++ = 0;
        *ret_tail = slash;
        return true;
}

/* DUR: a number with ms, s or m, making up all of s; microseconds. */
static bool parse_dur(const char *s, uint64_t *ret_us) {
        const char *p;
        double v, mult;

        if (!scan_number(s, &v, &p))
                return false;
        if (strcmp(p, "ms") == 0)
                mult = 1e3;
        else if (strcmp(p, "s") == 0)
                mult = 1e6;
        else if (strcmp(p, "m") == 0)
                mult = 60e6;
        else
                return false;
        v *= mult;
        if (v > 1e15)                   /* some 30 years: surely a typo */
                return false;
        *ret_us = (uint64_t) (v + 0.5);
        return true;
}

/* A duration the way a user would write it: "500ms", "1s", "1.5s", "2m". */
static const char *fmt_dur(uint64_t us, char *buf, size_t size) {
        if (us % 60000000 == 0 && us)
                snprintf(buf, size, "%" PRIu64 "m", us / 60000000);
        else if (us % 1000000 == 0 || us >= 60000000)
                snprintf(buf, size, "%.0fs", (double) us / 1e6);
        else if (us >= 1000000)
                snprintf(buf, size, "%.1fs", (double) us / 1e6);
        else
                snprintf(buf, size, "%" PRIu64 "ms", (us + 500) / 1000);
        return buf;
}

/* "512 B", "4.0 KiB", "1.3 GiB" */
static const char *fmt_size(int64_t bytes, char *buf, size_t size) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double) bytes;
        int u = -1;

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRId64 " B", bytes);
                return buf;
        }
        while (v >= 1024 && u < (int) ELEMENTSOF(units) - 1) {
                v /= 1024;
                u++;
        }
        snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}

/* The pattern: all digits = a pid, else an extended regular expression. */
static int parse_pattern(struct diag_rec_trigger *t, const char *name, const char *pat, size_t len,
                         const char *spec, char *err, size_t errsize) {
        bool digits = len > 0;

        if (len == 0)
                return fail(err, errsize, spec, "%s: expected a PATTERN after '%s:'", name, name);
        t->pattern = strndup(pat, len);
        if (!t->pattern)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                if (pat[i] < '0' || pat[i] > '9')
                        digits = false;
        if (digits) {
                if (diag_parse_pid(t->pattern, &t->pid) < 0)
                        return fail(err, errsize, spec, "%s: pid '%s' out of range", name, t->pattern);
                return 0;
        }
        int r = regcomp(&t->re, t->pattern, REG_EXTENDED | REG_NOSUB);
        if (r != 0) {
                char msg[128];
                regerror(r, &t->re, msg, sizeof msg);
                return fail(err, errsize, spec, "%s: bad regular expression '%s': %s", name, t->pattern, msg);
        }
        t->have_re = true;
        return 0;
}

static int parse_psi(struct diag_rec_trigger *t, const char *spec, char *err, size_t errsize) {
        const char *p = spec + strlen("psi:");
        const char *colon = strchr(p, ':');
        const char *at, *win;
        char num[2 * NUMBER_MAX + 8];
        size_t i;

        if (!colon)
                return fail(err, errsize, spec, "psi: expected psi:RES:some>P%% or psi:RES:full>P%%");
        for (i = 0; i < ELEMENTSOF(psi_res_names); i++)
                if (strlen(psi_res_names[i]) == (size_t) (colon - p) &&
                    strncmp(p, psi_res_names[i], (size_t) (colon - p)) == 0)
                        break;
        if (i == ELEMENTSOF(psi_res_names))
                return fail(err, errsize, spec, "psi: unknown resource '%.*s' (cpu, memory or io)",
                            (int) (colon - p), p);
        t->res = (enum psi_res) i;
        p = colon + 1;
        if (strncmp(p, "some", 4) == 0)
                t->full = false;
        else if (strncmp(p, "full", 4) == 0)
                t->full = true;
        else
                return fail(err, errsize, spec, "psi: expected 'some' or 'full' after '%s:'", psi_res_names[i]);
        p += 4;
        if (*p == '<')
                return fail(err, errsize, spec, "psi: only '>' is supported (a PSI trigger fires on stall above a share)");
        if (*p != '>')
                return fail(err, errsize, spec, "psi: expected '>' after '%s'", t->full ? "full" : "some");
        p++;

        at = strchr(p, '@');
        if (at) {
                if (!at[1])
                        return fail(err, errsize, spec, "psi: expected a cgroup v2 directory after '@'");
                t->cgroup = strdup(at + 1);
                if (!t->cgroup)
                        return -ENOMEM;
        } else
                at = p + strlen(p);
        if (!split_slash(p, (size_t) (at - p), num, sizeof num, &win))
                return fail(err, errsize, spec, "psi: expected P%% after '>'");
        if (!parse_pct(num, &t->pct))
                return fail(err, errsize, spec, "psi: expected P%% after '>'");
        if (t->pct <= 0 || t->pct > 100)
                return fail(err, errsize, spec, "psi: stall share %s must be above 0%% and at most 100%%", num);
        t->window_us = PSI_DEFAULT_WINDOW_US;
        if (win) {
                t->window_given = true;
                if (!parse_dur(win, &t->window_us))
                        return fail(err, errsize, spec, "psi: expected a window like 500ms, 1s or 10s after '/'");
                if (t->window_us < PSI_WINDOW_MIN_US || t->window_us > PSI_WINDOW_MAX_US)
                        return fail(err, errsize, spec, "psi: window %s outside the kernel's range 500ms..10s", win);
        }
        t->stall_us = (uint64_t) (t->pct / 100.0 * (double) t->window_us + 0.5);
        if (t->stall_us == 0)
                t->stall_us = 1;
        if (t->cgroup) {
                const char *dir = t->cgroup[0] == '/' ? "" : "/sys/fs/cgroup/";
                if (asprintf(&t->psi_path, "%s%s/%s.pressure", dir, t->cgroup, psi_res_names[t->res]) < 0)
                        return -ENOMEM;
        } else if (asprintf(&t->psi_path, "/proc/pressure/%s", psi_res_names[t->res]) < 0)
                return -ENOMEM;
        return 0;
}

/* "X[/DUR]": X into head, DUR (above 0) into *dur_us when given. what names X for the message. */
static int split_dur(const char *s, char *head, size_t size, uint64_t *dur_us, const char *name, const char *what,
                     const char *spec, char *err, size_t errsize) {
        const char *dur;

        if (!split_slash(s, strlen(s), head, size, &dur))
                return fail(err, errsize, spec, "%s: expected %s after '>'", name, what);
        if (dur && (!parse_dur(dur, dur_us) || *dur_us == 0))
                return fail(err, errsize, spec, "%s: expected a duration like 500ms, 30s or 2m after '/'", name);
        return 0;
}

/* memavail<..., load>..., dstate>...: NAME then the comparison. */
static int parse_plain(struct diag_rec_trigger *t, const char *name, const char *p, const char *spec,
                       char *err, size_t errsize) {
        const char want = t->kind == DIAG_TRIG_MEMAVAIL ? '<' : '>';

        if (*p != '<' && *p != '>')
                return fail(err, errsize, spec, "%s: expected '%c' after '%s'", name, want, name);
        if (*p != want)
                return fail(err, errsize, spec, "%s: only '%c' is supported", name, want);
        p++;
        switch (t->kind) {
        case DIAG_TRIG_MEMAVAIL:
                if (strchr(p, '%')) {
                        if (!parse_pct(p, &t->pct))
                                return fail(err, errsize, spec, "memavail: expected P%% or SIZE after '<'");
                        if (t->pct <= 0 || t->pct > 100)
                                return fail(err, errsize, spec, "memavail: share %s must be above 0%% and at most 100%%", p);
                        t->by_pct = true;
                } else if (!parse_size(p, &t->size) || t->size == 0)
                        return fail(err, errsize, spec, "memavail: expected P%% or SIZE (e.g. 10%% or 512M) after '<'");
                return 0;
        case DIAG_TRIG_LOAD: {
                const char *end;
                if (!scan_number(p, &t->load, &end) || *end)
                        return fail(err, errsize, spec, "load: expected a number after '>'");
                return 0;
        }
        case DIAG_TRIG_DSTATE: {
                char num[2 * NUMBER_MAX + 8];
                int r = split_dur(p, num, sizeof num, &t->dur_us, name, "a number of threads", spec, err, errsize);
                if (r < 0)
                        return r;
                if (!parse_count(num, &t->n))
                        return fail(err, errsize, spec, "dstate: expected a number of threads after '>'");
                return 0;
        }
        default:
                return -EINVAL;
        }
}

/* count:, rss:, cpu:, threads:, fds: PATTERN then the comparison, split at the last '>' or '<'. */
static int parse_proc_kind(struct diag_rec_trigger *t, const char *name, const char *p, const char *spec,
                           char *err, size_t errsize) {
        const char *gt = strrchr(p, '>'), *lt = strrchr(p, '<');
        const char *op = gt > lt ? gt : lt;
        const char *rhs;
        int r;

        if (!op)
                return fail(err, errsize, spec, "%s: expected '%s:PATTERN>...'", name, name);
        if (*op == '<')
                return fail(err, errsize, spec, "%s: only '>' is supported", name);
        r = parse_pattern(t, name, p, (size_t) (op - p), spec, err, errsize);
        if (r < 0)
                return r;
        rhs = op + 1;
        switch (t->kind) {
        case DIAG_TRIG_COUNT:
        case DIAG_TRIG_THREADS:
        case DIAG_TRIG_FDS:
                if (!parse_count(rhs, &t->n))
                        return fail(err, errsize, spec, "%s: expected a whole number after '>'", name);
                return 0;
        case DIAG_TRIG_RSS:
                if (!parse_size(rhs, &t->size))
                        return fail(err, errsize, spec, "rss: expected SIZE (e.g. 512M, 1.5G) after '>'");
                return 0;
        case DIAG_TRIG_CPU: {
                char num[2 * NUMBER_MAX + 8];
                t->dur_us = CPU_DEFAULT_DUR_US;
                r = split_dur(rhs, num, sizeof num, &t->dur_us, name, "P%", spec, err, errsize);
                if (r < 0)
                        return r;
                if (!parse_pct(num, &t->pct))
                        return fail(err, errsize, spec, "cpu: expected P%% after '>'");
                if (t->pct > CPU_PCT_MAX)
                        return fail(err, errsize, spec, "cpu: %s is more than any machine has", num);
                return 0;
        }
        default:
                return -EINVAL;
        }
}

static const struct {
        const char *name;
        enum diag_rec_trigger_kind kind;
        bool pattern;
} kinds[] = {
        { "psi", DIAG_TRIG_PSI, false },
        { "memavail", DIAG_TRIG_MEMAVAIL, false },
        { "load", DIAG_TRIG_LOAD, false },
        { "count", DIAG_TRIG_COUNT, true },
        { "rss", DIAG_TRIG_RSS, true },
        { "cpu", DIAG_TRIG_CPU, true },
        { "threads", DIAG_TRIG_THREADS, true },
        { "fds", DIAG_TRIG_FDS, true },
        { "dstate", DIAG_TRIG_DSTATE, false },
        { "oom", DIAG_TRIG_OOM, false },
};

int diag_rec_trigger_parse(const char *spec, struct diag_rec_trigger **ret, char *err, size_t errsize) {
        struct diag_rec_trigger *t;
        size_t nlen = 0, k;
        int r;

        if (err && errsize)
                err[0] = 0;
        if (!spec || !*spec)
                return fail(err, errsize, "", "empty trigger");
        while (spec[nlen] >= 'a' && spec[nlen] <= 'z')
                nlen++;
        for (k = 0; k < ELEMENTSOF(kinds); k++)
                if (strlen(kinds[k].name) == nlen && strncmp(spec, kinds[k].name, nlen) == 0)
                        break;
        if (k == ELEMENTSOF(kinds))
                return fail(err, errsize, spec, "unknown trigger '%.*s' (psi, memavail, load, count, rss, cpu, "
                            "threads, fds, dstate or oom)", (int) MIN(nlen ? nlen : strlen(spec), 64), spec);

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->kind = kinds[k].kind;
        t->fd = -1;
        t->spec = strdup(spec);
        if (!t->spec) {
                diag_rec_trigger_free(t);
                return -ENOMEM;
        }

        const char *p = spec + nlen;
        if (t->kind == DIAG_TRIG_OOM)
                r = *p ? fail(err, errsize, spec, "oom: takes no arguments") : 0;
        else if (t->kind == DIAG_TRIG_PSI)
                r = *p == ':' ? parse_psi(t, spec, err, errsize)
                              : fail(err, errsize, spec, "psi: expected psi:RES:some>P%% or psi:RES:full>P%%");
        else if (kinds[k].pattern)
                r = *p == ':' ? parse_proc_kind(t, kinds[k].name, p + 1, spec, err, errsize)
                              : fail(err, errsize, spec, "%s: expected '%s:PATTERN>...'", kinds[k].name, kinds[k].name);
        else
                r = parse_plain(t, kinds[k].name, p, spec, err, errsize);
        if (r < 0) {
                if (r == -ENOMEM && err && errsize)
                        snprintf(err, errsize, "out of memory parsing '%s'", spec);
                diag_rec_trigger_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

void diag_rec_trigger_free(struct diag_rec_trigger *t) {
        if (!t)
                return;
        if (t->fd >= 0)
                close(t->fd);
        if (t->have_re)
                regfree(&t->re);
        free(t->spec);
        free(t->cgroup);
        free(t->psi_path);
        free(t->pattern);
        free(t->track);
        free(t->track_next);
        free(t->m);
        free(t);
}

enum diag_rec_trigger_kind diag_rec_trigger_kind(const struct diag_rec_trigger *t) {
        return t->kind;
}

const char *diag_rec_trigger_spec(const struct diag_rec_trigger *t) {
        return t->spec;
}

/* ---- PSI ---- */

/* CAP_SYS_RESOURCE in the effective set: the kernel's test for "privileged" triggers. */
static bool have_cap_sys_resource(void) {
        char buf[4096];
        unsigned long long caps;
        const char *p;

        if (diag_read_small_at(AT_FDCWD, "/proc/self/status", buf, sizeof buf) < 0)
                return geteuid() == 0;
        p = strstr(buf, "\nCapEff:");
        if (!p || sscanf(p + 8, "%llx", &caps) != 1)
                return geteuid() == 0;
        return caps & (1ULL << 24);
}

int diag_rec_trigger_arm(struct diag_rec_trigger *t, char *err, size_t errsize) {
        char line[64], win[16];
        int fd, len;

        if (err && errsize)
                err[0] = 0;
        if (t->kind != DIAG_TRIG_PSI)
                return 0;
        if (t->fd >= 0) {
                close(t->fd);
                t->fd = -1;
        }
        fmt_dur(t->window_us, win, sizeof win);
        fd = open(t->psi_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                if (e == ENOENT || e == ENOTDIR) {
                        if (t->cgroup)
                                snprintf(err, errsize, "psi: %s does not exist (not a cgroup v2 directory, or "
                                         "PSI is off for cgroups)", t->psi_path);
                        else
                                snprintf(err, errsize, "psi: %s does not exist (a kernel without PSI, or booted "
                                         "without psi=1)", t->psi_path);
                        return -ENOENT;
                }
                if (e == EACCES || e == EPERM) {
                        snprintf(err, errsize, "psi: cannot open %s for writing: %s (needs root or "
                                 "CAP_SYS_RESOURCE; Linux 6.5+ lets others set triggers with a window that is a "
                                 "multiple of 2s)", t->psi_path, strerror(e));
                        return -EACCES;
                }
                snprintf(err, errsize, "psi: cannot open %s: %s", t->psi_path, strerror(e));
                return -e;
        }
        len = snprintf(line, sizeof line, "%s %" PRIu64 " %" PRIu64, t->full ? "full" : "some",
                       t->stall_us, t->window_us);
        /* The kernel takes the trigger with the terminating NUL. */
        if (write(fd, line, (size_t) len + 1) < 0) {
                int e = errno;
                close(fd);
                if (e == EINVAL && t->window_us % PSI_UNPRIV_STEP_US && !have_cap_sys_resource() &&
                    !t->window_given) {
                        /* the default window: take the nearest one the kernel allows, and say so */
                        uint64_t was = t->window_us;
                        t->window_us = (t->window_us / PSI_UNPRIV_STEP_US + 1) * PSI_UNPRIV_STEP_US;
                        t->stall_us = (uint64_t) (t->pct / 100.0 * (double) t->window_us + 0.5);
                        t->window_given = true;
                        int r = diag_rec_trigger_arm(t, err, errsize);
                        if (r < 0)
                                return r;
                        fmt_dur(t->window_us, win, sizeof win);
                        snprintf(err, errsize, "psi: without CAP_SYS_RESOURCE the kernel takes windows in "
                                 "multiples of 2s: armed with %s instead of the default %" PRIu64 "ms", win,
                                 was / 1000);
                        return 1;
                }
                if (e == EINVAL) {
                        if (t->window_us % PSI_UNPRIV_STEP_US && !have_cap_sys_resource())
                                snprintf(err, errsize, "psi: the kernel refused the window %s: without "
                                         "CAP_SYS_RESOURCE it must be a multiple of 2s (2s..10s)", win);
                        else if (t->res == PSI_CPU && t->full && !t->cgroup)
                                snprintf(err, errsize, "psi: the kernel refused 'full' for %s (kernels before "
                                         "5.13 have only cpu 'some' system-wide)", t->psi_path);
                        else
                                snprintf(err, errsize, "psi: the kernel refused '%s' for %s (the window must be "
                                         "500ms..10s, the stall above 0 and within the window)", line, t->psi_path);
                        return -EINVAL;
                }
                if (e == EACCES || e == EPERM) {
                        snprintf(err, errsize, "psi: the kernel refused a trigger on %s: %s (needs root or "
                                 "CAP_SYS_RESOURCE, or on Linux 6.5+ a window that is a multiple of 2s)",
                                 t->psi_path, strerror(e));
                        return -EACCES;
                }
                if (e == EOPNOTSUPP) {
                        snprintf(err, errsize, "psi: PSI is disabled in this kernel (boot with psi=1)");
                        return -EOPNOTSUPP;
                }
                snprintf(err, errsize, "psi: cannot set a trigger on %s: %s", t->psi_path, strerror(e));
                return -e;
        }
        t->fd = fd;
        return 0;
}

int diag_rec_trigger_fd(const struct diag_rec_trigger *t) {
        return t->kind == DIAG_TRIG_PSI ? t->fd : -1;
}

bool diag_rec_trigger_psi_event(struct diag_rec_trigger *t, short revents, char *why, size_t size) {
        char win[16], pct[32];

        if (why && size)
                why[0] = 0;
        if (t->kind != DIAG_TRIG_PSI || t->fd < 0)
                return false;
        if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
                close(t->fd);
                t->fd = -1;
                if (why && size)
                        snprintf(why, size, "%s is gone (%s); the trigger is disarmed", t->psi_path,
                                 t->cgroup ? "the cgroup was removed" : "PSI went away");
                return false;
        }
        if (!(revents & POLLPRI))
                return false;
        if (why && size) {
                snprintf(pct, sizeof pct, "%g%%", t->pct);
                fmt_dur(t->window_us, win, sizeof win);
                snprintf(why, size, "%s %s stall > %s of %s%s%s (PSI trigger)", psi_res_names[t->res],
                         t->full ? "full" : "some", pct, win, t->cgroup ? " in " : "", t->cgroup ? t->cgroup : "");
        }
        return true;
}

/* ---- checks ---- */

static bool proc_matches(const struct diag_rec_trigger *t, const struct diag_rec_interval *iv, size_t row) {
        int64_t pid = DIAG_REC_NUM(iv, DIAG_REC_PROC, row, PR_PID);
        const char *cmd;

        if (pid == getpid())
                return false;
        if (t->pid > 0)
                return pid == t->pid;
        cmd = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_PROC, row, PR_CMD));
        if (!*cmd)              /* kernel threads have no command line: their name stands for it */
                cmd = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_PROC, row, PR_COMM));
        return regexec(&t->re, cmd, 0, NULL, 0) == 0;
}

/* A process's short name for a message: comm, else the command line's first word. */
static void proc_name(const struct diag_rec_interval *iv, size_t row, char *buf, size_t size) {
        const char *s = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_PROC, row, PR_COMM));
        size_t l;

        if (!*s)
                s = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_PROC, row, PR_CMD));
        l = strcspn(s, " ");
        if (l >= size)
                l = size - 1;
        memcpy(buf, s, l);
        buf[l] = 0;
}

static void pattern_desc(const struct diag_rec_trigger *t, char *buf, size_t size) {
        if (t->pid > 0)
                snprintf(buf, size, "pid %d", (int) t->pid);
        else
                snprintf(buf, size, "'%s'", t->pattern);
}

static int add_match(struct diag_rec_trigger *t, size_t *n, pid_t pid, double value, size_t row, int64_t extra) {
        if (DIAG_GROW(t->m, t->m_alloc, *n + 1) < 0)
                return -ENOMEM;
        t->m[(*n)++] = (struct match) { .pid = pid, .value = value, .row = row, .extra = extra };
        return 0;
}

static int cmp_match_desc(const void *a, const void *b) {
        const struct match *x = a, *y = b;
        if (x->value != y->value)
                return x->value > y->value ? -1 : 1;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int cmp_match_pid(const void *a, const void *b) {
        const struct match *x = a, *y = b;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->row < y->row ? -1 : x->row > y->row;
}

/* Sort the matches largest first and hand out their pids. */
static void give_pids(struct diag_rec_trigger *t, size_t n, pid_t *pids, size_t *npids) {
        size_t cap = pids && npids ? *npids : 0, k = 0;

        if (n > 1)
                qsort(t->m, n, sizeof(*t->m), cmp_match_desc);
        for (size_t i = 0; i < n && k < cap; i++)
                pids[k++] = t->m[i].pid;
        if (npids)
                *npids = k;
}

#define MORE_MAX 48
static const char *more(size_t n, char *buf, size_t size) {
        if (n > 1)
                snprintf(buf, size, " (and %zu more)", n - 1);
        else
                buf[0] = 0;
        return buf;
}

/* Start time (stat field 22) of the process whose /proc directory is dfd. */
static int64_t proc_start(int dfd) {
        char buf[1024];
        const char *p;
        long long v;
        ssize_t n = diag_read_small_at(dfd, "stat", buf, sizeof buf);

        if (n <= 0 || !(p = strrchr(buf, ')')))
                return DIAG_REC_NA;
        p++;
        /* after the comm: field 3 (state) ... field 22 (starttime) */
        for (int f = 3; f < 22; f++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return DIAG_REC_NA;
        }
        if (sscanf(p, " %lld", &v) != 1)
                return DIAG_REC_NA;
        return v;
}

/* Entries of /proc/PID/fd, at most cap; negative errno when unreadable or no longer the same process. */
static long count_fds(pid_t pid, int64_t start, long cap) {
        char path[32], buf[16384] __attribute__((aligned(8)));
        _cleanup_close_ int dfd = -1, fd = -1;
        long count = 0;

        snprintf(path, sizeof path, "/proc/%d", (int) pid);
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        /* The directory fd pins this pid: the start time tells it is still the process sampled. */
        if (start != DIAG_REC_NA && proc_start(dfd) != start)
                return -ESRCH;
        fd = openat(dfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = getdents64(fd, buf, sizeof buf);
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        const struct dirent64 *d = (const struct dirent64 *) (buf + off);
                        if (d->d_reclen == 0)
                                return -EIO;
                        off += d->d_reclen;
                        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                                continue;
                        if (++count >= cap)
                                return count;
                }
        }
        return count;
}

static int64_t host(const struct diag_rec_interval *iv, int col) {
        if (iv->t[DIAG_REC_HOST].nrows < 1)
                return DIAG_REC_NA;
        return DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, col);
}

static bool check_memavail(struct diag_rec_trigger *t, const struct diag_rec_interval *cur, char *why, size_t size) {
        int64_t avail = host(cur, H_MEM_AVAIL), total = host(cur, H_MEM_TOTAL);
        char a[32], b[32];

        if (avail == DIAG_REC_NA || avail < 0)
                return false;
        if (t->by_pct) {
                if (total == DIAG_REC_NA || total <= 0)
                        return false;
                double share = 100.0 * (double) avail / (double) total;
                if (share >= t->pct)
                        return false;
                snprintf(why, size, "%s: MemAvailable %s is %.1f%% of MemTotal %s", t->spec,
                         fmt_size(avail, a, sizeof a), share, fmt_size(total, b, sizeof b));
                return true;
        }
        if ((uint64_t) avail >= t->size)
                return false;
        snprintf(why, size, "%s: MemAvailable %s", t->spec, fmt_size(avail, a, sizeof a));
        return true;
}

static bool check_load(struct diag_rec_trigger *t, const struct diag_rec_interval *cur, char *why, size_t size) {
        int64_t l = host(cur, H_LOAD1);

        if (l == DIAG_REC_NA || (double) l / 1000.0 <= t->load)
                return false;
        snprintf(why, size, "%s: 1-minute load average %.2f", t->spec, (double) l / 1000.0);
        return true;
}

static bool check_count(struct diag_rec_trigger *t, const struct diag_rec_interval *cur, char *why, size_t size,
                        pid_t *pids, size_t *npids) {
        size_t n = 0;
        char pat[128];

        for (size_t r = 0; r < cur->t[DIAG_REC_PROC].nrows; r++) {
                if (!proc_matches(t, cur, r))
                        continue;
                int64_t rss = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_RSS);
                if (add_match(t, &n, (pid_t) DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_PID),
                              rss == DIAG_REC_NA ? -1 : (double) rss, r, 0) < 0)
                        return false;
        }
        if ((int64_t) n <= t->n)
                return false;
        pattern_desc(t, pat, sizeof pat);
        snprintf(why, size, "%s: %zu process%s match%s %s", t->spec, n, n == 1 ? "" : "es", n == 1 ? "es" : "", pat);
        give_pids(t, n, pids, npids);
        return true;
}

/* rss, threads: any matching process above. */
static bool check_column(struct diag_rec_trigger *t, const struct diag_rec_interval *cur, char *why, size_t size,
                         pid_t *pids, size_t *npids) {
        int col = t->kind == DIAG_TRIG_RSS ? PR_RSS : PR_THREADS;
        int64_t limit = t->kind == DIAG_TRIG_RSS ? (int64_t) MIN(t->size, (uint64_t) INT64_MAX) : t->n;
        size_t n = 0;
        char name[64], val[32], m[MORE_MAX];

        for (size_t r = 0; r < cur->t[DIAG_REC_PROC].nrows; r++) {
                int64_t v = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, col);
                if (v == DIAG_REC_NA || v <= limit || !proc_matches(t, cur, r))
                        continue;
                if (add_match(t, &n, (pid_t) DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_PID), (double) v, r, 0) < 0)
                        return false;
        }
        if (n == 0)
                return false;
        give_pids(t, n, pids, npids);
        const struct match *top = &t->m[0];
        proc_name(cur, top->row, name, sizeof name);
        if (t->kind == DIAG_TRIG_RSS)
                snprintf(why, size, "%s: pid %d (%s) rss %s%s", t->spec, (int) top->pid, name,
                         fmt_size((int64_t) top->value, val, sizeof val), more(n, m, sizeof m));
        else
                snprintf(why, size, "%s: pid %d (%s) has %.0f threads%s", t->spec, (int) top->pid, name,
                         top->value, more(n, m, sizeof m));
        return true;
}

static bool check_fds(struct diag_rec_trigger *t, const struct diag_rec_interval *cur, char *why, size_t size,
                      pid_t *pids, size_t *npids) {
        long cap = t->n >= FDS_COUNT_CAP ? (long) MIN(t->n, (int64_t) LONG_MAX - 1) + 1 : FDS_COUNT_CAP;
        size_t n = 0, looked = 0;
        char name[64], m[MORE_MAX];

        for (size_t r = 0; r < cur->t[DIAG_REC_PROC].nrows && looked < FDS_MAX_PROCS; r++) {
                if (!proc_matches(t, cur, r))
                        continue;
                looked++;
                pid_t pid = (pid_t) DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_PID);
                long c = count_fds(pid, DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_START), cap);
                if (c < 0 || c <= t->n)         /* gone, or not ours to read (EACCES): not counted */
                        continue;
                if (add_match(t, &n, pid, (double) c, r, 0) < 0)
                        return false;
        }
        if (n == 0)
                return false;
        give_pids(t, n, pids, npids);
        proc_name(cur, t->m[0].row, name, sizeof name);
        snprintf(why, size, "%s: pid %d (%s) has %.0f%s open fds%s", t->spec, (int) t->m[0].pid, name,
                 t->m[0].value, t->m[0].value >= (double) cap ? "+" : "", more(n, m, sizeof m));
        return true;
}

static int cmp_track(const void *a, const void *b) {
        const struct cpu_track *x = a, *y = b;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

static const struct cpu_track *find_track(const struct diag_rec_trigger *t, pid_t pid, int64_t start) {
        struct cpu_track key = { .pid = pid, .start = start };
        if (t->ntrack == 0)
                return NULL;
        return bsearch(&key, t->track, t->ntrack, sizeof(*t->track), cmp_track);
}

static bool check_cpu(struct diag_rec_trigger *t, const struct diag_rec_interval *cur,
                      const struct diag_rec_interval *prev, char *why, size_t size, pid_t *pids, size_t *npids) {
        int64_t tck = host(cur, H_CLK_TCK);
        double hz = tck > 0 && tck != DIAG_REC_NA ? (double) tck : 100.0;
        int64_t elapsed_ns = prev ? cur->boottime_ns - prev->boottime_ns : 0;
        size_t nn = 0, n = 0;
        char name[64], m[MORE_MAX], d[16];

        if (!prev || elapsed_ns <= 0) {         /* no interval to measure over: a break */
                t->ntrack = 0;
                return false;
        }
        for (size_t r = 0; r < cur->t[DIAG_REC_PROC].nrows; r++) {
                pid_t pid = (pid_t) DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_PID);
                int64_t start = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_START);
                int64_t ut = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_UTIME);
                int64_t st = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_STIME);
                if (ut == DIAG_REC_NA || st == DIAG_REC_NA || !proc_matches(t, cur, r))
                        continue;
                ssize_t pr = diag_rec_find_proc(prev, pid, start);
                if (pr < 0)                     /* new: no interval to measure yet */
                        continue;
                int64_t put = DIAG_REC_NUM(prev, DIAG_REC_PROC, pr, PR_UTIME);
                int64_t pst = DIAG_REC_NUM(prev, DIAG_REC_PROC, pr, PR_STIME);
                if (put == DIAG_REC_NA || pst == DIAG_REC_NA || ut + st < put + pst)
                        continue;
                /* percent of one CPU: ticks * 100 / hz over the seconds elapsed, in that order so
                 * that whole figures stay exact */
                double pct = (double) (ut + st - put - pst) * 100.0 * 1e9 / (hz * (double) elapsed_ns);
                if (pct <= t->pct)
                        continue;
                const struct cpu_track *old = find_track(t, pid, start);
                int64_t since = old && old->last_ns == prev->boottime_ns ? old->since_ns : prev->boottime_ns;
                if (DIAG_GROW(t->track_next, t->track_next_alloc, nn + 1) < 0)
                        break;
                t->track_next[nn++] = (struct cpu_track) {
                        .pid = pid, .start = start, .since_ns = since, .last_ns = cur->boottime_ns, .pct = pct,
                };
                int64_t above_ns = cur->boottime_ns - since;
                if ((uint64_t) above_ns >= t->dur_us * 1000 && add_match(t, &n, pid, pct, r, above_ns) < 0)
                        break;
        }
        /* The processes not above now (or gone) drop out: the table holds only this interval's. */
        struct cpu_track *tmp = t->track;
        size_t tmp_alloc = t->track_alloc;
        t->track = t->track_next;
        t->track_alloc = t->track_next_alloc;
        t->track_next = tmp;
        t->track_next_alloc = tmp_alloc;
        t->ntrack = nn;
        if (nn > 1)
                qsort(t->track, nn, sizeof(*t->track), cmp_track);
        if (n == 0)
                return false;
        give_pids(t, n, pids, npids);
        proc_name(cur, t->m[0].row, name, sizeof name);
        snprintf(why, size, "%s: pid %d (%s) at %.1f%% of one CPU for %s%s", t->spec, (int) t->m[0].pid, name,
                 t->m[0].value, fmt_dur((uint64_t) t->m[0].extra / 1000, d, sizeof d), more(n, m, sizeof m));
        return true;
}

static bool check_dstate(struct diag_rec_trigger *t, const struct diag_rec_interval *cur,
                         const struct diag_rec_interval *prev, char *why, size_t size, pid_t *pids, size_t *npids) {
        const struct diag_rec_table *ds = &cur->t[DIAG_REC_DSTATE];
        size_t nthreads = ds->nrows, n = 0;
        char d[16], more_dur[32] = "";

        if ((int64_t) nthreads <= t->n) {
                t->ds_active = false;
                return false;
        }
        if (!t->ds_active || (prev && prev->boottime_ns != t->ds_last_ns))
                t->ds_since_ns = cur->boottime_ns;
        t->ds_active = true;
        t->ds_last_ns = cur->boottime_ns;
        int64_t above_ns = cur->boottime_ns - t->ds_since_ns;
        if (t->dur_us && (uint64_t) above_ns < t->dur_us * 1000)
                return false;

        /* The processes with D-state threads, the most such threads first. */
        size_t all = 0;
        for (size_t r = 0; r < nthreads; r++)
                if (add_match(t, &all, (pid_t) DIAG_REC_NUM(cur, DIAG_REC_DSTATE, r, DS_PID), 1, r, 0) < 0)
                        return false;
        qsort(t->m, all, sizeof(*t->m), cmp_match_pid);
        for (size_t i = 0; i < all; i++) {
                if (n > 0 && t->m[n - 1].pid == t->m[i].pid)
                        t->m[n - 1].value++;
                else
                        t->m[n++] = t->m[i];
        }
        give_pids(t, n, pids, npids);
        if (t->dur_us)
                snprintf(more_dur, sizeof more_dur, " for %s", fmt_dur((uint64_t) above_ns / 1000, d, sizeof d));
        const char *comm = diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_DSTATE, t->m[0].row, DS_COMM));
        const char *wchan = diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_DSTATE, t->m[0].row, DS_WCHAN));
        snprintf(why, size, "%s: %zu threads in D state%s; most in pid %d (%s): %.0f%s%s", t->spec, nthreads,
                 more_dur, (int) t->m[0].pid, comm, t->m[0].value, *wchan ? ", in " : "", wchan);
        return true;
}

static bool check_oom(struct diag_rec_trigger *t, const struct diag_rec_interval *cur, unsigned oom_kills,
                      char *why, size_t size) {
        const struct diag_rec_table *ev = cur ? &cur->t[DIAG_REC_EVENT] : NULL;
        char rss[32];

        if (oom_kills == 0)
                return false;
        /* Name the last victim when the interval holds its event. */
        for (size_t r = ev ? ev->nrows : 0; r-- > 0;) {
                if (strcmp(diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_EVENT, r, EV_KIND)),
                           DIAG_REC_EV_OOM) != 0)
                        continue;
                int64_t b = DIAG_REC_NUM(cur, DIAG_REC_EVENT, r, EV_RSS);
                snprintf(why, size, "%s: %u OOM kill%s, the last pid %" PRId64 " (%s)%s%s", t->spec, oom_kills,
                         oom_kills == 1 ? "" : "s", DIAG_REC_NUM(cur, DIAG_REC_EVENT, r, EV_PID),
                         diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_EVENT, r, EV_COMM)),
                         b > 0 ? " rss " : "", b > 0 ? fmt_size(b, rss, sizeof rss) : "");
                return true;
        }
        snprintf(why, size, "%s: %u OOM kill%s", t->spec, oom_kills, oom_kills == 1 ? "" : "s");
        return true;
}

bool diag_rec_trigger_check(struct diag_rec_trigger *t, const struct diag_rec_interval *cur,
                            const struct diag_rec_interval *prev, unsigned oom_kills,
                            char *why, size_t size, pid_t *pids, size_t *npids) {
        char dummy[1];
        size_t cap = npids ? *npids : 0;
        bool fired = false;

        if (!why || !size) {
                why = dummy;
                size = sizeof dummy;
        }
        why[0] = 0;
        if (npids)
                *npids = 0;
        if (t->kind == DIAG_TRIG_OOM)
                return check_oom(t, cur, oom_kills, why, size);
        if (!cur)
                return false;
        if (npids)
                *npids = cap;
        switch (t->kind) {
        case DIAG_TRIG_MEMAVAIL:
                fired = check_memavail(t, cur, why, size);
                break;
        case DIAG_TRIG_LOAD:
                fired = check_load(t, cur, why, size);
                break;
        case DIAG_TRIG_COUNT:
                fired = check_count(t, cur, why, size, pids, npids);
                break;
        case DIAG_TRIG_RSS:
        case DIAG_TRIG_THREADS:
                fired = check_column(t, cur, why, size, pids, npids);
                break;
        case DIAG_TRIG_FDS:
                fired = check_fds(t, cur, why, size, pids, npids);
                break;
        case DIAG_TRIG_CPU:
                fired = check_cpu(t, cur, prev, why, size, pids, npids);
                break;
        case DIAG_TRIG_DSTATE:
                fired = check_dstate(t, cur, prev, why, size, pids, npids);
                break;
        case DIAG_TRIG_PSI:             /* fires from its fd */
        case DIAG_TRIG_OOM:
                break;
        }
        if (!fired) {
                if (npids)
                        *npids = 0;
                why[0] = 0;
        } else if (npids && (t->kind == DIAG_TRIG_MEMAVAIL || t->kind == DIAG_TRIG_LOAD))
                *npids = 0;
        return fired;
}
