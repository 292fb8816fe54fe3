/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top's model: a ring of recent intervals (read by diag-record's sampler when
 * live, pushed by the replay) and the frame of the newest one: the header's figures
 * and one row per process with its rates against the interval before and its RSS
 * growth over the last minute.
 *
 * The ring keeps what the frame needs: the interval before (rates) and those of the
 * last 60 s (growth); an interval older than that is reused for the next reading, so a
 * 2 s delay holds about 31 intervals. Tables keep their memory: once warm, a refresh
 * allocates nothing. The model's interner is rebuilt from the ring when it has grown
 * far past what the ring still refers to (command lines of processes long gone).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag/util.h"
#include "top.h"

#define RING 64
#define GROWTH_WINDOW_NS (60LL * 1000000000)
#define GROWTH_SLOP_NS (250LL * 1000000)        /* a reading 60.1 s back still counts as a minute */
#define COMPACT_MIN_STRINGS 65536

struct top_model {
        struct top_model_opts o;
        struct diag_rec_strings *strings;
        struct diag_rec_sampler *sampler;
        struct diag_rec_interval pool[RING];
        struct diag_rec_interval *ring[RING];   /* positions first..first+n-1: oldest to newest */
        size_t first, n;
        uint32_t oom_id;                        /* "oom-kill" in strings */
        int64_t oom_base;                       /* H_OOM_KILL of the first interval seen, NA */
        int64_t oom_events;                     /* oom-kill events seen after it */
        bool seen_first;
        struct top_frame frame;
        bool have_frame;
        size_t procs_alloc;
        size_t *open;                           /* growth: rows still looking for an older reading */
        size_t compact_at;                      /* interner size at which to look at compacting */
        size_t open_alloc;
};

static struct diag_rec_interval *at(const struct top_model *m, size_t i) {
        return m->ring[(m->first + i) % RING];
}

static int64_t iv_time(const struct diag_rec_interval *iv, bool boot) {
        return boot ? iv->boottime_ns : iv->realtime_ns;
}

/* Nanoseconds from a to b: boottime when both have it, else realtime (old recordings). */
static int64_t iv_dt(const struct diag_rec_interval *a, const struct diag_rec_interval *b) {
        bool boot = a->boottime_ns && b->boottime_ns;
        return iv_time(b, boot) - iv_time(a, boot);
}

static int64_t host(const struct diag_rec_interval *iv, int col) {
        return iv->t[DIAG_REC_HOST].nrows ? DIAG_REC_NUM(iv, DIAG_REC_HOST, 0, col) : DIAG_REC_NA;
}

static double na_delta(int64_t cur, int64_t prev) {
        if (cur == DIAG_REC_NA || prev == DIAG_REC_NA || cur < prev)
                return -1;
        return (double) (cur - prev);
}

static double clamp_pct(double v) {
        return v < 0 ? 0 : v > 100 ? 100 : v;
}

static void intern_names(struct top_model *m) {
        m->oom_id = diag_rec_intern(m->strings, DIAG_REC_EV_OOM, strlen(DIAG_REC_EV_OOM));
}

int top_model_new(struct top_model **ret, const struct top_model_opts *o) {
        struct top_model *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->o = *o;
        m->strings = diag_rec_strings_new();
        if (!m->strings) {
                free(m);
                return -ENOMEM;
        }
        for (size_t i = 0; i < RING; i++) {
                diag_rec_interval_init(&m->pool[i], m->strings);
                m->ring[i] = &m->pool[i];
        }
        intern_names(m);
        m->oom_base = DIAG_REC_NA;
        m->compact_at = COMPACT_MIN_STRINGS;
        m->frame.replay = !o->live;
        if (o->live) {
                struct diag_rec_sampler_opts so = {
                        .proc = o->proc, .kmsg = o->kmsg, .cgroups = false, .dstate = true,
                };
                int r = diag_rec_sampler_new(&m->sampler, &so);
                if (r < 0) {
                        top_model_free(m);
                        return r;
                }
        }
        *ret = m;
        return 0;
}

void top_model_free(struct top_model *m) {
        if (!m)
                return;
        diag_rec_sampler_free(m->sampler);
        for (size_t i = 0; i < RING; i++)
                diag_rec_interval_free(&m->pool[i]);
        diag_rec_strings_free(m->strings);
        free(m->frame.procs);
        free(m->open);
        free(m);
}

void top_model_reset(struct top_model *m) {
        m->n = 0;
        m->have_frame = false;
        m->seen_first = false;
        m->oom_base = DIAG_REC_NA;
        m->oom_events = 0;
        /* nothing refers to the strings any more: start the interner again */
        diag_rec_strings_reset(m->strings);
        if (m->sampler)
                diag_rec_sampler_forget(m->sampler);
        intern_names(m);
        m->compact_at = COMPACT_MIN_STRINGS;
}

const struct top_frame *top_model_frame(const struct top_model *m) {
        return m->have_frame ? &m->frame : NULL;
}

int top_model_kmsg_fd(const struct top_model *m) {
        return m->sampler ? diag_rec_sampler_kmsg_fd(m->sampler) : -1;
}

/* The slot for the next interval, taken at time now_ns (boottime, or realtime when
 * boot is false). Intervals no longer needed are dropped: the oldest while it lies
 * outside the minute before now and is not the interval before. A dropped interval's
 * memory is reused for the new one. */
static struct diag_rec_interval *next_slot(struct top_model *m, int64_t now_ns, bool boot) {
        bool popped = false;
        size_t popped_pos = 0;
        while (m->n == RING ||
               (m->n >= 2 && now_ns - iv_time(at(m, 0), boot) > GROWTH_WINDOW_NS + GROWTH_SLOP_NS)) {
                if (!popped) {
                        popped = true;
                        popped_pos = m->first;
                }
                m->first = (m->first + 1) % RING;
                m->n--;
        }
        size_t pos = (m->first + m->n) % RING;
        if (popped && popped_pos != pos) {      /* the warm one in place of one maybe never used */
                struct diag_rec_interval *t = m->ring[pos];
                m->ring[pos] = m->ring[popped_pos];
                m->ring[popped_pos] = t;
        }
        m->n++;
        return m->ring[pos];
}

/* Undo next_slot's taking of a slot (a failed reading). */
static void drop_newest(struct top_model *m) {
        if (m->n)
                m->n--;
}

/* Rebuild the interner from the ring when most of its strings are of processes gone:
 * every interval is copied into a new one (ids re-interned). Checked when the interner
 * has grown past compact_at; optional: on ENOMEM the old interner stays. */
static void maybe_compact(struct top_model *m) {
        size_t count = diag_rec_strings_count(m->strings);
        if (count < m->compact_at)
                return;
        uint64_t *seen = calloc((count + 63) / 64, sizeof(*seen));
        if (!seen)
                return;
        size_t live = 0;
        for (size_t i = 0; i < m->n; i++) {
                const struct diag_rec_interval *iv = at(m, i);
                for (int t = 0; t < DIAG_REC_NTABLES; t++)
                        for (size_t c = 0; c < iv->t[t].nrows * diag_rec_schemas[t].nstr; c++) {
                                uint32_t id = iv->t[t].str[c];
                                if (id < count && !(seen[id / 64] & (1ULL << (id % 64)))) {
                                        seen[id / 64] |= 1ULL << (id % 64);
                                        live++;
                                }
                        }
        }
        free(seen);
        if (live * 2 > count) {                 /* mostly alive: look again when it has doubled */
                m->compact_at = count * 2;
                return;
        }
        struct diag_rec_strings *ns = diag_rec_strings_new();
        struct diag_rec_interval *tmp = calloc(m->n, sizeof(*tmp));
        size_t done = 0;
        bool ok = ns && tmp;
        for (; ok && done < m->n; done++) {
                diag_rec_interval_init(&tmp[done], ns);
                if (diag_rec_interval_copy(&tmp[done], at(m, done)) < 0)
                        ok = false;     /* the loop's done++ still counts it, to be freed */
        }
        if (!ok) {
                for (size_t i = 0; i < done; i++)
                        diag_rec_interval_free(&tmp[i]);
                free(tmp);
                diag_rec_strings_free(ns);
                return;
        }
        for (size_t i = 0; i < m->n; i++) {
                diag_rec_interval_free(at(m, i));
                *at(m, i) = tmp[i];
        }
        free(tmp);
        for (size_t i = 0; i < RING; i++)
                m->pool[i].strings = ns;
        diag_rec_strings_free(m->strings);
        m->strings = ns;
        if (m->sampler)
                diag_rec_sampler_forget(m->sampler);    /* its cached ids are of the old interner */
        intern_names(m);
        m->compact_at = MAX(COMPACT_MIN_STRINGS, 4 * diag_rec_strings_count(ns));
}

static void build_header(struct top_model *m, const struct diag_rec_interval *cur,
                         const struct diag_rec_interval *prev, double dt_s) {
        struct top_header *h = &m->frame.h;
        memset(h, 0, sizeof(*h));
        h->realtime_ns = cur->realtime_ns;
        h->interval_ms = prev ? (uint32_t) MIN(dt_s * 1000 + 0.5, (double) UINT32_MAX) : 0;
        int64_t ncpu = host(cur, H_NCPU);
        h->ncpu = ncpu > 0 ? (unsigned) ncpu : 0;
        h->mem_total = host(cur, H_MEM_TOTAL);
        h->mem_avail = host(cur, H_MEM_AVAIL);
        h->swap_total = host(cur, H_SWAP_TOTAL);
        h->swap_free = host(cur, H_SWAP_FREE);
        static const int load_col[3] = { H_LOAD1, H_LOAD5, H_LOAD15 };
        for (int i = 0; i < 3; i++) {
                int64_t l = host(cur, load_col[i]);
                h->load[i] = l == DIAG_REC_NA ? -1 : (double) l / 1000;
        }
        h->oom_kills = host(cur, H_OOM_KILL);
        int64_t seen = 0;
        if (h->oom_kills != DIAG_REC_NA && m->oom_base != DIAG_REC_NA && h->oom_kills >= m->oom_base)
                seen = h->oom_kills - m->oom_base;
        h->oom_kills_seen = MAX(seen, m->oom_events);
        h->nprocs = (unsigned) cur->t[DIAG_REC_PROC].nrows;
        int64_t v = host(cur, H_NR_THREADS);
        if (v == DIAG_REC_NA) {
                v = 0;
                for (size_t r = 0; r < cur->t[DIAG_REC_PROC].nrows; r++) {
                        int64_t t = DIAG_REC_NUM(cur, DIAG_REC_PROC, r, PR_THREADS);
                        v += t > 0 ? t : 0;
                }
        }
        h->nthreads = (unsigned) MIN(MAX(v, 0), (int64_t) UINT32_MAX);
        v = host(cur, H_PROCS_RUNNING);
        h->nrunning = v > 0 ? (unsigned) MIN(v, (int64_t) UINT32_MAX) : 0;
        h->dstate_threads = (unsigned) cur->t[DIAG_REC_DSTATE].nrows;

        double *cpu[] = { &h->cpu_user, &h->cpu_system, &h->cpu_iowait, &h->cpu_steal, &h->cpu_other, &h->cpu_idle };
        for (size_t i = 0; i < ELEMENTSOF(cpu); i++)
                *cpu[i] = -1;
        for (int i = 0; i < 3; i++)
                h->psi[i][0] = h->psi[i][1] = -1;
        h->disk_busy_pct = h->disk_iops = h->majflt_s = -1;
        if (!prev)
                return;

        double d[H_CPU_STEAL + 1], total = 0;
        bool known = true;
        for (int i = H_CPU_USER; i <= H_CPU_STEAL; i++) {
                d[i] = na_delta(host(cur, i), host(prev, i));
                known = known && d[i] >= 0;
                total += d[i];
        }
        if (known && total > 0) {
                h->cpu_user = (d[H_CPU_USER] + d[H_CPU_NICE]) / total * 100;
                h->cpu_system = d[H_CPU_SYSTEM] / total * 100;
                h->cpu_iowait = d[H_CPU_IOWAIT] / total * 100;
                h->cpu_steal = d[H_CPU_STEAL] / total * 100;
                h->cpu_other = (d[H_CPU_IRQ] + d[H_CPU_SOFTIRQ]) / total * 100;
                h->cpu_idle = d[H_CPU_IDLE] / total * 100;
        }
        static const int psi_col[3][2] = {
                { H_PSI_CPU_SOME, H_PSI_CPU_FULL }, { H_PSI_MEM_SOME, H_PSI_MEM_FULL },
                { H_PSI_IO_SOME, H_PSI_IO_FULL },
        };
        for (int i = 0; i < 3; i++)
                for (int j = 0; j < 2; j++) {
                        double us = na_delta(host(cur, psi_col[i][j]), host(prev, psi_col[i][j]));
                        if (us >= 0)
                                h->psi[i][j] = clamp_pct(us / (dt_s * 1e6) * 100);
                }
        double mf = na_delta(host(cur, H_PGMAJFAULT), host(prev, H_PGMAJFAULT));
        if (mf >= 0)
                h->majflt_s = mf / dt_s;

        /* disks: few, both sorted by name */
        const struct diag_rec_table *dc = &cur->t[DIAG_REC_DISK], *dp = &prev->t[DIAG_REC_DISK];
        size_t a = 0, b = 0;
        double best = -1;
        while (a < dc->nrows && b < dp->nrows) {
                int c = diag_rec_key_cmp(cur, a, prev, b, DIAG_REC_DISK);
                if (c < 0) {
                        a++;
                        continue;
                }
                if (c > 0) {
                        b++;
                        continue;
                }
                double io = na_delta(DIAG_REC_NUM(cur, DIAG_REC_DISK, a, DK_IO_MS),
                                     DIAG_REC_NUM(prev, DIAG_REC_DISK, b, DK_IO_MS));
                if (io > best) {
                        best = io;
                        const char *name = diag_rec_str(cur->strings, DIAG_REC_STR(cur, DIAG_REC_DISK, a, DK_NAME));
                        snprintf(h->disk, sizeof(h->disk), "%.31s", name);
                        h->disk_busy_pct = clamp_pct(io / (dt_s * 1000) * 100);
                        double rd = na_delta(DIAG_REC_NUM(cur, DIAG_REC_DISK, a, DK_RD_IOS),
                                             DIAG_REC_NUM(prev, DIAG_REC_DISK, b, DK_RD_IOS));
                        double wr = na_delta(DIAG_REC_NUM(cur, DIAG_REC_DISK, a, DK_WR_IOS),
                                             DIAG_REC_NUM(prev, DIAG_REC_DISK, b, DK_WR_IOS));
                        h->disk_iops = rd >= 0 && wr >= 0 ? (rd + wr) / dt_s : -1;
                }
                a++;
                b++;
        }
}

#define PNUM(iv, r, c) ((iv)->t[DIAG_REC_PROC].num[(size_t) (r) * PR__N + (c)])

static int proc_cmp(const struct diag_rec_interval *x, size_t a, const struct diag_rec_interval *y, size_t b) {
        int64_t pa = PNUM(x, a, PR_PID), pb = PNUM(y, b, PR_PID);
        if (pa != pb)
                return pa < pb ? -1 : 1;
        int64_t sa = PNUM(x, a, PR_START), sb = PNUM(y, b, PR_START);
        return sa < sb ? -1 : sa > sb;
}

static double rate(int64_t cur, int64_t prev, double dt_s) {
        double d = na_delta(cur, prev);
        return d < 0 ? -1 : d / dt_s;
}

/* Rates of row a of cur against row b of prev. */
static void proc_rates(struct top_proc *p, const struct diag_rec_interval *cur, size_t a,
                       const struct diag_rec_interval *prev, size_t b, double dt_s, double clk_tck) {
        double u = na_delta(PNUM(cur, a, PR_UTIME), PNUM(prev, b, PR_UTIME));
        double s = na_delta(PNUM(cur, a, PR_STIME), PNUM(prev, b, PR_STIME));
        p->cpu_pct = u >= 0 && s >= 0 ? (u + s) / clk_tck / dt_s * 100 : -1;
        p->majflt_s = rate(PNUM(cur, a, PR_MAJFLT), PNUM(prev, b, PR_MAJFLT), dt_s);
        p->read_s = rate(PNUM(cur, a, PR_READ_BYTES), PNUM(prev, b, PR_READ_BYTES), dt_s);
        p->write_s = rate(PNUM(cur, a, PR_WRITE_BYTES), PNUM(prev, b, PR_WRITE_BYTES), dt_s);
}

static void set_growth(struct top_proc *p, int64_t rss_old, int64_t dt_ns) {
        if (p->rss != DIAG_REC_NA && rss_old != DIAG_REC_NA && dt_ns > 0)
                p->rss_growth = (double) (p->rss - rss_old) / ((double) dt_ns / 1e9) * 60;
}

/* Growth: each process against the oldest interval of the last minute that has it.
 * From the oldest on, the rows not yet matched are merge-joined with the interval,
 * or looked up one by one when few are left. */
static void build_growth(struct top_model *m, const struct diag_rec_interval *cur) {
        size_t n = cur->t[DIAG_REC_PROC].nrows, nopen = n;
        for (size_t i = 0; i < n; i++)
                m->open[i] = i;
        int64_t bound = GROWTH_WINDOW_NS + GROWTH_SLOP_NS;
        for (size_t k = 0; k + 1 < m->n && nopen; k++) {
                const struct diag_rec_interval *old = at(m, k);
                int64_t dt = iv_dt(old, cur);
                if (dt <= 0 || dt > bound)
                        continue;
                size_t rows = old->t[DIAG_REC_PROC].nrows, keep = 0;
                bool few = nopen * 16 < rows;
                size_t b = 0;
                for (size_t i = 0; i < nopen; i++) {
                        size_t a = m->open[i];
                        ssize_t found = -1;
                        if (few) {
                                found = diag_rec_find_proc(old, (pid_t) PNUM(cur, a, PR_PID), PNUM(cur, a, PR_START));
                        } else {
                                while (b < rows && proc_cmp(old, b, cur, a) < 0)
                                        b++;
                                if (b < rows && proc_cmp(old, b, cur, a) == 0)
                                        found = (ssize_t) b;
                        }
                        if (found < 0)
                                m->open[keep++] = a;
                        else
                                set_growth(&m->frame.procs[a], PNUM(old, found, PR_RSS), dt);
                }
                nopen = keep;
        }
}

static int build_frame(struct top_model *m) {
        const struct diag_rec_interval *cur = at(m, m->n - 1), *prev = NULL;
        double dt_s = 0;
        if (m->n >= 2) {
                prev = at(m, m->n - 2);
                dt_s = (double) iv_dt(prev, cur) / 1e9;
                if (dt_s <= 0)          /* time went back (a replay not reset): no rates */
                        prev = NULL;
        }
        /* OOM kills since the first interval */
        if (!m->seen_first) {
                m->seen_first = true;
                m->oom_base = host(cur, H_OOM_KILL);
        } else {
                if (m->oom_base == DIAG_REC_NA)
                        m->oom_base = host(cur, H_OOM_KILL);
                for (size_t r = 0; r < cur->t[DIAG_REC_EVENT].nrows; r++)
                        if (DIAG_REC_STR(cur, DIAG_REC_EVENT, r, EV_KIND) == m->oom_id)
                                m->oom_events++;
        }
        build_header(m, cur, prev, dt_s);

        size_t n = cur->t[DIAG_REC_PROC].nrows;
        if (n > m->procs_alloc) {
                size_t a = MAX(n + n / 4, 256);
                struct top_proc *p = realloc(m->frame.procs, a * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                m->frame.procs = p;
                size_t *o = realloc(m->open, a * sizeof(*o));
                if (!o)
                        return -ENOMEM;
                m->open = o;
                m->procs_alloc = a;
        }
        int64_t tck = host(cur, H_CLK_TCK);
        double clk_tck = tck > 0 ? (double) tck : 100;
        const struct diag_rec_strings *st = cur->strings;
        size_t pn = prev ? prev->t[DIAG_REC_PROC].nrows : 0, b = 0;
        for (size_t a = 0; a < n; a++) {
                struct top_proc *p = &m->frame.procs[a];
                int64_t uid = PNUM(cur, a, PR_UID), state = PNUM(cur, a, PR_STATE);
                *p = (struct top_proc) {
                        .pid = (pid_t) PNUM(cur, a, PR_PID),
                        .ppid = (pid_t) PNUM(cur, a, PR_PPID),
                        .start = PNUM(cur, a, PR_START),
                        .uid = uid < 0 || uid > UINT32_MAX ? (uid_t) -1 : (uid_t) uid,
                        .state = state > 32 && state < 127 ? (char) state : '?',
                        .comm = diag_rec_str(st, DIAG_REC_STR(cur, DIAG_REC_PROC, a, PR_COMM)),
                        .cmd = diag_rec_str(st, DIAG_REC_STR(cur, DIAG_REC_PROC, a, PR_CMD)),
                        .cgroup = diag_rec_str(st, DIAG_REC_STR(cur, DIAG_REC_PROC, a, PR_CGROUP)),
                        .cpu_pct = -1, .majflt_s = -1, .read_s = -1, .write_s = -1,
                        .rss = PNUM(cur, a, PR_RSS),
                        .vsz = PNUM(cur, a, PR_VSZ),
                        .threads = PNUM(cur, a, PR_THREADS),
                };
                if (!prev)
                        continue;
                while (b < pn && proc_cmp(prev, b, cur, a) < 0)
                        b++;
                if (b < pn && proc_cmp(prev, b, cur, a) == 0)
                        proc_rates(p, cur, a, prev, b, dt_s, clk_tck);
                else
                        p->is_new = true;
        }
        m->frame.nprocs = n;
        m->frame.iv = cur;
        build_growth(m, cur);
        m->have_frame = true;
        return 0;
}

/* The newest interval is in the ring: tidy its tables, build its frame. */
static int took(struct top_model *m) {
        struct diag_rec_interval *cur = at(m, m->n - 1);
        diag_rec_sort(cur, DIAG_REC_PROC);      /* the sampler and the codec keep them sorted: a check */
        diag_rec_sort(cur, DIAG_REC_DISK);
        maybe_compact(m);
        int r = build_frame(m);
        if (r < 0) {
                drop_newest(m);
                m->have_frame = false;
        }
        return r;
}

int top_model_sample(struct top_model *m) {
        if (!m->sampler)
                return -EINVAL;
        struct diag_rec_interval *iv = next_slot(m, (int64_t) diag_now_ns(CLOCK_BOOTTIME), true);
        int r = diag_rec_sample(m->sampler, iv);
        if (r < 0) {
                drop_newest(m);
                return r;
        }
        return took(m);
}

int top_model_push(struct top_model *m, const struct diag_rec_interval *iv) {
        bool boot = iv->boottime_ns && (m->n == 0 || at(m, 0)->boottime_ns);
        struct diag_rec_interval *slot = next_slot(m, iv_time(iv, boot), boot);
        int r = diag_rec_interval_copy(slot, iv);
        if (r < 0) {
                drop_newest(m);
                return r;
        }
        return took(m);
}
