/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parsers of /proc and cgroupfs statistics texts (see diag/kstat.h). Written to be
 * cheap: diag-record runs them every second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/kstat.h"
#include "diag/util.h"

bool diag_kstat_next_u64(const char **p, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        while (*s == ' ' || *s == '\t')
                s++;
        if (*s < '0' || *s > '9')
                return false;
        for (; *s >= '0' && *s <= '9'; s++)
                v = v * 10 + (uint64_t) (*s - '0');
        *ret = v;
        *p = s;
        return true;
}

int diag_kstat_keyed(const char *text, const char *key, int64_t *ret) {
        size_t kl = strlen(key);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == ':')) {
                        const char *v = p + kl + (p[kl] == ':');
                        uint64_t n;

                        if (!diag_kstat_next_u64(&v, &n))
                                return -ENOENT;
                        *ret = n > INT64_MAX ? INT64_MAX : (int64_t) n;
                        return 0;
                }
        return -ENOENT;
}

int diag_psi_parse(const char *text, struct diag_psi *ret) {
        memset(ret, 0, sizeof *ret);
        for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                int k = strncmp(line, "some ", 5) == 0 ? 0 : strncmp(line, "full ", 5) == 0 ? 1 : -1;
                const char *t = k >= 0 ? strstr(line, "total=") : NULL;
                const char *nl = strchr(line, '\n');

                if (!t || (nl && t > nl))
                        continue;
                t += 6;
                if (!diag_kstat_next_u64(&t, &ret->total[k]))
                        continue;
                for (int a = 0; a < 3; a++) {
                        static const char *const names[3] = { "avg10=", "avg60=", "avg300=" };
                        const char *v = strstr(line, names[a]);
                        ret->avg[k][a] = v && (!nl || v < nl) ? strtod(v + strlen(names[a]), NULL) : 0;
                }
                ret->have[k] = true;
        }
        return ret->have[0] || ret->have[1] ? 0 : -EINVAL;
}

/* The next blank-separated word into buf (cut to size). false when none. */
static bool next_word(const char **p, char *buf, size_t size) {
        const char *s = *p;
        size_t n = 0;

        while (*s == ' ' || *s == '\t')
                s++;
        if (!*s || *s == '\n')
                return false;
        for (; *s && *s != ' ' && *s != '\t' && *s != '\n'; s++)
                if (n + 1 < size)
                        buf[n++] = *s;
        buf[n] = 0;
        *p = s;
        return true;
}

int diag_diskstats_line(const char *line, struct diag_diskstat *ret) {
        uint64_t *f[] = { &ret->rd_ios, &ret->rd_merges, &ret->rd_sectors, &ret->rd_ms, &ret->wr_ios,
                          &ret->wr_merges, &ret->wr_sectors, &ret->wr_ms, &ret->in_flight, &ret->io_ticks,
                          &ret->weighted_ms };
        const char *p = line;
        uint64_t maj, min;

        memset(ret, 0, sizeof *ret);
        if (!diag_kstat_next_u64(&p, &maj) || !diag_kstat_next_u64(&p, &min) || !next_word(&p, ret->name, sizeof ret->name))
                return -EINVAL;
        ret->major = (unsigned) maj;
        ret->minor = (unsigned) min;
        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                if (!diag_kstat_next_u64(&p, f[i]))
                        return -EINVAL;
        return 0;
}

int diag_netdev_line(const char *line, struct diag_netdev *ret) {
        uint64_t v[12];
        const char *colon = strchr(line, ':'), *p = line;
        size_t n;

        memset(ret, 0, sizeof *ret);
        if (!colon)
                return -EINVAL;
        while (*p == ' ')
                p++;
        n = MIN((size_t) (colon - p), sizeof ret->name - 1);
        memcpy(ret->name, p, n);
        ret->name[n] = 0;
        p = colon + 1;
        for (size_t i = 0; i < ELEMENTSOF(v); i++)
                if (!diag_kstat_next_u64(&p, &v[i]))
                        return -EINVAL;
        /* rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop */
        ret->rx_bytes = v[0];
        ret->rx_packets = v[1];
        ret->rx_errs = v[2];
        ret->rx_drop = v[3];
        ret->tx_bytes = v[8];
        ret->tx_packets = v[9];
        ret->tx_errs = v[10];
        ret->tx_drop = v[11];
        return 0;
}

void diag_cgroup_iostat_each(const char *text, diag_io_fn fn, void *ctx) {
        static const char *const keys[DIAG_IO_N] = { "rbytes=", "wbytes=", "rios=", "wios=" };

        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                const char *p = l, *nl = strchr(l, '\n');
                char dev[16];

                if (!next_word(&p, dev, sizeof dev))
                        continue;
                for (int k = 0; k < DIAG_IO_N; k++) {
                        const char *v = strstr(p, keys[k]);
                        uint64_t n;

                        if (!v || (nl && v > nl))
                                continue;
                        v += strlen(keys[k]);
                        if (diag_kstat_next_u64(&v, &n))
                                fn(ctx, dev, k, n > INT64_MAX ? INT64_MAX : (int64_t) n);
                }
        }
}

void diag_cgroup_blkio_each(const char *text, int which_read, int which_write, diag_io_fn fn, void *ctx) {
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                const char *p = l;
                char dev[16], op[8];
                uint64_t n;

                if (!next_word(&p, dev, sizeof dev) || !next_word(&p, op, sizeof op) || !diag_kstat_next_u64(&p, &n))
                        continue;
                if (strcmp(op, "Read") == 0)
                        fn(ctx, dev, which_read, n > INT64_MAX ? INT64_MAX : (int64_t) n);
                else if (strcmp(op, "Write") == 0)
                        fn(ctx, dev, which_write, n > INT64_MAX ? INT64_MAX : (int64_t) n);
        }
}

/* "id parent maj:min root mountpoint opts [tags] - fstype source superopts" */
size_t diag_cgroup_mounts(char *mountinfo, struct diag_cgroup_mount *ret, size_t max) {
        char *save = NULL;
        unsigned seen = 0;
        bool seen_v2 = false;
        size_t n = 0;

        for (char *line = strtok_r(mountinfo, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
                char *f[6], *sep = strstr(line, " - "), *save2 = NULL, *fstype, *superopts;
                size_t nf = 0;
                unsigned ctrl = 0;
                bool v2;

                if (!sep)
                        continue;
                *sep = 0;
                for (char *t = strtok_r(line, " ", &save2); t && nf < ELEMENTSOF(f); t = strtok_r(NULL, " ", &save2))
                        f[nf++] = t;
                if (nf < 5)
                        continue;
                fstype = strtok_r(sep + 3, " ", &save2);
                (void) strtok_r(NULL, " ", &save2);
                superopts = strtok_r(NULL, " ", &save2);
                if (!fstype)
                        continue;
                v2 = strcmp(fstype, "cgroup2") == 0;
                if (v2) {
                        if (seen_v2)
                                continue;
                        ctrl = DIAG_CG_MEM | DIAG_CG_IO | DIAG_CG_CPU | DIAG_CG_PIDS;
                } else if (strcmp(fstype, "cgroup") == 0 && superopts) {
                        char *save3 = NULL;
                        for (char *o = strtok_r(superopts, ",", &save3); o; o = strtok_r(NULL, ",", &save3))
                                ctrl |= strcmp(o, "memory") == 0 ? DIAG_CG_MEM
                                        : strcmp(o, "blkio") == 0 || strcmp(o, "io") == 0 ? DIAG_CG_IO
                                        : strcmp(o, "cpu") == 0 ? DIAG_CG_CPU
                                        : strcmp(o, "cpuacct") == 0 ? DIAG_CG_CPUACCT
                                        : strcmp(o, "pids") == 0 ? DIAG_CG_PIDS : 0;
                        ctrl &= ~seen;
                        if (!ctrl)
                                continue;
                } else
                        continue;
                /* mountinfo escapes spaces as \040; such mount points are skipped */
                if (strchr(f[4], '\\') || strlen(f[4]) >= sizeof ret[n].path)
                        continue;
                if (v2)
                        seen_v2 = true;
                else
                        seen |= ctrl;
                snprintf(ret[n].path, sizeof ret[n].path, "%s", f[4]);
                ret[n].v2 = v2;
                ret[n].ctrl = ctrl;
                n++;
        }
        return n;
}
