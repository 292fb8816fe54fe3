/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show: time and size formats, time arguments, and what the views share:
 * buckets cut once the span is known, top lists through a small heap.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "show-internal.h"

const char *rs_fmt_size(char *buf, size_t n, double v) {
        static const char units[] = "KMGTPE";
        if (isnan(v)) {
                snprintf(buf, n, "-");
                return buf;
        }
        double a = fabs(v);
        int u = -1;
        while (a >= 1024 && u < 5) {
                a /= 1024;
                v /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, n, "%.0f", v);
        else if (a < 9.95)
                snprintf(buf, n, "%.1f%c", v, units[u]);
        else
                snprintf(buf, n, "%.0f%c", v, units[u]);
        return buf;
}

enum { F_TIME, F_DATE, F_ISO };

static const char *fmt_local(char *buf, size_t n, int64_t ns, int how) {
        time_t t = (time_t) (ns / 1000000000);
        struct tm tm;
        size_t l = 0;
        if (localtime_r(&t, &tm))
                l = how == F_TIME ? strftime(buf, n, "%H:%M:%S", &tm) :
                    how == F_DATE ? strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) :
                                    strftime(buf, n, "%Y-%m-%dT%H:%M:%S%z", &tm);
        if (!l)
                snprintf(buf, n, "?");
        return buf;
}

const char *rs_fmt_time(char *buf, size_t n, int64_t ns) {
        return fmt_local(buf, n, ns, F_TIME);
}

const char *rs_fmt_date(char *buf, size_t n, int64_t ns) {
        return fmt_local(buf, n, ns, F_DATE);
}

const char *rs_fmt_iso(char *buf, size_t n, int64_t ns) {
        char tmp[64];
        fmt_local(tmp, sizeof(tmp), ns, F_ISO);
        size_t l = strlen(tmp);
        /* +0100 -> +01:00 */
        if (l > 5 && (tmp[l - 5] == '+' || tmp[l - 5] == '-'))
                snprintf(buf, n, "%.*s:%s", (int) (l - 2), tmp, tmp + l - 2);
        else
                snprintf(buf, n, "%s", tmp);
        return buf;
}

const char *rs_fmt_dur(char *buf, size_t n, double s) {
        long long t = s < 0 ? 0 : (long long) (s + 0.5);
        snprintf(buf, n, "%02lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
        return buf;
}

/* ---- time arguments ---- */

static int parse_clock(const char *p, struct tm *tm, bool need_end) {
        int h, m, sec = 0, k = 0;
        if (sscanf(p, "%2d:%2d%n", &h, &m, &k) != 2)
                return -EINVAL;
        p += k;
        if (*p == ':') {
                k = 0;
                if (sscanf(p, ":%2d%n", &sec, &k) != 1)
                        return -EINVAL;
                p += k;
        }
        if ((need_end && *p) || h > 23 || m > 59 || sec > 60 || h < 0 || m < 0 || sec < 0)
                return -EINVAL;
        tm->tm_hour = h;
        tm->tm_min = m;
        tm->tm_sec = sec;
        return 0;
}

int rec_show_parse_time(const char *s, int64_t ref_ns, int64_t *ret_ns) {
        if (!s || !*s)
                return -EINVAL;
        if (!ref_ns) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ref_ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
        char *end;
        if (s[0] == '@' || s[0] == '-') {
                errno = 0;
                double v = strtod(s + 1, &end);
                if (errno || end == s + 1 || v < 0 || !isfinite(v))
                        return -EINVAL;
                if (s[0] == '@') {
                        if (*end)
                                return -EINVAL;
                        *ret_ns = (int64_t) (v * 1e9);
                        return 0;
                }
                double mult = 1;
                if (!strcmp(end, "m") || !strcmp(end, "min"))
                        mult = 60;
                else if (!strcmp(end, "h"))
                        mult = 3600;
                else if (!strcmp(end, "d"))
                        mult = 86400;
                else if (strcmp(end, "s") && *end)
                        return -EINVAL;
                *ret_ns = ref_ns - (int64_t) (v * mult * 1e9);
                return 0;
        }
        struct tm tm = { .tm_isdst = -1 };
        int y, mo, d, k = 0;
        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &k) == 3 && k == 10) {
                if ((s[10] != ' ' && s[10] != 'T') || mo < 1 || mo > 12 || d < 1 || d > 31)
                        return -EINVAL;
                if (parse_clock(s + 11, &tm, true) < 0)
                        return -EINVAL;
                tm.tm_year = y - 1900;
                tm.tm_mon = mo - 1;
                tm.tm_mday = d;
                time_t t = mktime(&tm);
                if (t == (time_t) -1)
                        return -EINVAL;
                *ret_ns = (int64_t) t * 1000000000;
                return 0;
        }
        if (parse_clock(s, &tm, true) < 0)
                return -EINVAL;
        /* the latest such instant not more than an hour after ref_ns */
        time_t ref = (time_t) (ref_ns / 1000000000);
        struct tm day;
        if (!localtime_r(&ref, &day))
                return -EINVAL;
        for (int back = -1; back < 3; back++) {
                struct tm c = day;
                c.tm_hour = tm.tm_hour;
                c.tm_min = tm.tm_min;
                c.tm_sec = tm.tm_sec;
                c.tm_mday -= back;
                c.tm_isdst = -1;
                time_t t = mktime(&c);
                if (t == (time_t) -1)
                        return -EINVAL;
                if ((int64_t) t <= (int64_t) ref + 3600) {
                        *ret_ns = (int64_t) t * 1000000000;
                        return 0;
                }
        }
        return -EINVAL;
}
