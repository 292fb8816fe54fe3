/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-record show: one interval in. The host's figures become one compact point;
 * processes are found by (pid, start) in an open-addressing hash reused across
 * intervals; counts per command line change run-length; no allocation per row once
 * the arrays have grown.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "show-internal.h"

static double delta(int64_t cur, int64_t prev) {
        if (cur == DIAG_REC_NA || prev == DIAG_REC_NA || cur < prev)
                return NAN;
        return (double) (cur - prev);
}

static double na(int64_t v) {
        return v == DIAG_REC_NA ? NAN : (double) v;
}

static double pct(double part, double whole) {
        if (isnan(part) || isnan(whole) || whole <= 0)
                return NAN;
        double p = part / whole * 100;
        return p < 0 ? 0 : p > 100 ? 100 : p;
}

static void host_point(struct rec_show *s, const struct diag_rec_interval *iv, struct rs_pt *pt, double dt) {
        const int64_t *h = iv->t[DIAG_REC_HOST].num, *ph = s->prev_host;
        if (h[H_CLK_TCK] > 0 && h[H_CLK_TCK] != DIAG_REC_NA)
                s->clk_tck = (double) h[H_CLK_TCK];
        pt->mem_avail = na(h[H_MEM_AVAIL]);
        pt->mem_total = na(h[H_MEM_TOTAL]);
        pt->swap_used = na(h[H_SWAP_TOTAL]) - na(h[H_SWAP_FREE]);
        pt->load1 = na(h[H_LOAD1]) / 1000;
        pt->nprocs = (uint32_t) iv->t[DIAG_REC_PROC].nrows;
        pt->ndstate = (uint32_t) iv->t[DIAG_REC_DSTATE].nrows;
        pt->cpu_busy = pt->iowait = pt->majflt_s = pt->rd_bps = pt->wr_bps = NAN;
        for (int i = 0; i < RS_NPSI; i++)
                pt->psi[i] = NAN;
        pt->dt_s = dt;
        if (dt <= 0)
                return;
        double total = 0;
        for (int i = H_CPU_USER; i <= H_CPU_STEAL; i++)
                total += delta(h[i], ph[i]);
        double idle = delta(h[H_CPU_IDLE], ph[H_CPU_IDLE]), iow = delta(h[H_CPU_IOWAIT], ph[H_CPU_IOWAIT]);
        pt->cpu_busy = pct(total - idle - iow, total);
        pt->iowait = pct(iow, total);
        static const int psi_col[RS_NPSI] = { H_PSI_MEM_SOME, H_PSI_MEM_FULL, H_PSI_IO_SOME, H_PSI_IO_FULL,
                                              H_PSI_CPU_SOME };
        for (int i = 0; i < RS_NPSI; i++)
                pt->psi[i] = pct(delta(h[psi_col[i]], ph[psi_col[i]]), dt * 1e6);
        pt->majflt_s = delta(h[H_PGMAJFAULT], ph[H_PGMAJFAULT]) / dt;
}

/* Disks are few: matched by name against the previous interval's. */
static void disks(struct rec_show *s, const struct diag_rec_interval *iv, struct rs_pt *pt, double dt) {
        const struct diag_rec_table *tb = &iv->t[DIAG_REC_DISK];
        double rd = 0, wr = 0;
        bool known = dt > 0;
        struct rs_disk now[64];
        unsigned n = 0;
        for (size_t r = 0; r < tb->nrows && n < 64; r++) {
                const char *name = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_DISK, r, DK_NAME));
                struct rs_disk *d = &now[n++];
                snprintf(d->name, sizeof(d->name), "%.31s", name);
                d->rd = DIAG_REC_NUM(iv, DIAG_REC_DISK, r, DK_RD_SECTORS);
                d->wr = DIAG_REC_NUM(iv, DIAG_REC_DISK, r, DK_WR_SECTORS);
                const struct rs_disk *p = NULL;
                for (unsigned i = 0; i < s->ndisks && !p; i++)
                        if (strcmp(s->disks[i].name, d->name) == 0)
                                p = &s->disks[i];
                if (!p)
                        continue;       /* a new disk: counted from the next interval */
                double a = delta(d->rd, p->rd), b = delta(d->wr, p->wr);
                if (isnan(a) || isnan(b))
                        known = false;
                rd += a;
                wr += b;
        }
        if (known && s->ndisks) {
                pt->rd_bps = rd * 512 / dt;
                pt->wr_bps = wr * 512 / dt;
        }
        memcpy(s->disks, now, n * sizeof(*now));
        s->ndisks = n;
}

static enum rs_ev_kind ev_kind(const char *k) {
        static const char *const names[] = {
                [RS_EV_OOM] = DIAG_REC_EV_OOM, [RS_EV_HUNG] = DIAG_REC_EV_HUNG, [RS_EV_IOERR] = DIAG_REC_EV_IOERR,
                [RS_EV_TRIGGER] = DIAG_REC_EV_TRIGGER, [RS_EV_DROPS] = DIAG_REC_EV_DROPS,
                [RS_EV_START] = DIAG_REC_EV_START,
        };
        for (int i = 0; i < RS_EV_OTHER; i++)
                if (strcmp(k, names[i]) == 0)
                        return i;
        return RS_EV_OTHER;
}

static uint32_t intern_dec(struct rec_show *s, const struct diag_rec_interval *iv, uint32_t id) {
        uint32_t r = rs_intern(s, diag_rec_str(iv->strings, id));
        return r == RS_NOID ? 0 : r;
}

static int events(struct rec_show *s, const struct diag_rec_interval *iv, struct rs_pt *pt) {
        const struct diag_rec_table *tb = &iv->t[DIAG_REC_EVENT];
        if (rs_grow(&s->evs, &s->aevs, s->nevs + tb->nrows, sizeof(*s->evs)) < 0)
                return -ENOMEM;
        for (size_t r = 0; r < tb->nrows; r++) {
                struct rs_event *e = &s->evs[s->nevs++];
                uint32_t k = DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_KIND);
                e->kind = ev_kind(diag_rec_str(iv->strings, k));
                e->kind_str = intern_dec(s, iv, k);
                e->comm = intern_dec(s, iv, DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_COMM));
                e->text = intern_dec(s, iv, DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_TEXT));
                e->path = intern_dec(s, iv, DIAG_REC_STR(iv, DIAG_REC_EVENT, r, EV_PATH));
                int64_t t = DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_TIME_NS);
                e->time_ns = t > 0 ? t : iv->realtime_ns;
                e->pid = DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_PID);
                e->rss = DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_RSS);
                e->count = DIAG_REC_NUM(iv, DIAG_REC_EVENT, r, EV_COUNT);
                if (e->kind == RS_EV_OOM)
                        pt->marks |= RS_MARK_OOM;
                else if (e->kind == RS_EV_TRIGGER)
                        pt->marks |= RS_MARK_TRIG;
        }
        return 0;
}

static int cgroups(struct rec_show *s, const struct diag_rec_interval *iv, bool win) {
        const struct diag_rec_table *tb = &iv->t[DIAG_REC_CGROUP];
        if (rs_grow(&s->cg_pos, &s->acg_pos, tb->nrows, sizeof(*s->cg_pos)) < 0)
                return -ENOMEM;
        int64_t bt = iv->boottime_ns;
        for (size_t r = 0; r < tb->nrows; r++) {
                const char *path = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_CGROUP, r, CG_PATH));
                const char *ver = diag_rec_str(iv->strings, DIAG_REC_STR(iv, DIAG_REC_CGROUP, r, CG_VERSION));
                struct rs_cg *c = NULL;
                uint32_t g = s->cg_pos[r];
                if (r < s->ncg_pos && g < s->ncgs && strcmp(rs_str(s, s->cgs[g].path), path) == 0 &&
                    strcmp(rs_str(s, s->cgs[g].version), ver) == 0)
                        c = &s->cgs[g];
                if (!c) {
                        uint32_t pid = rs_intern(s, path), vid = rs_intern(s, ver);
                        if (pid == RS_NOID || vid == RS_NOID)
                                return -ENOMEM;
                        for (size_t i = 0; i < s->ncgs && !c; i++)
                                if (s->cgs[i].path == pid && s->cgs[i].version == vid)
                                        c = &s->cgs[i];
                        if (!c) {
                                if (rs_grow(&s->cgs, &s->acgs, s->ncgs + 1, sizeof(*s->cgs)) < 0)
                                        return -ENOMEM;
                                c = &s->cgs[s->ncgs++];
                                *c = (struct rs_cg) { .path = pid, .version = vid, .first_oom_kill = DIAG_REC_NA,
                                                      .l_io = DIAG_REC_NA, .l_thr_us = DIAG_REC_NA };
                        }
                }
                s->cg_pos[r] = (uint32_t) (c - s->cgs);
                int64_t io = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_IO_RBYTES);
                int64_t w = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_IO_WBYTES);
                io = io == DIAG_REC_NA || w == DIAG_REC_NA ? DIAG_REC_NA : io + w;
                int64_t thr = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_CPU_THROTTLED_US);
                int64_t ok = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_MEM_OOM_KILL);
                if (win) {
                        c->active = true;
                        c->mem_current = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_MEM_CURRENT);
                        c->mem_limit = DIAG_REC_NUM(iv, DIAG_REC_CGROUP, r, CG_MEM_LIMIT);
                        if (c->mem_current != DIAG_REC_NA && c->mem_current > c->mem_max)
                                c->mem_max = c->mem_current;
                        if (ok != DIAG_REC_NA) {
                                if (c->first_oom_kill == DIAG_REC_NA)
                                        c->first_oom_kill = ok;
                                c->last_oom_kill = ok;
                        }
                        if (c->l_bt && bt > c->l_bt) {
                                double a = delta(io, c->l_io), b = delta(thr, c->l_thr_us);
                                c->io_bytes += isnan(a) ? 0 : a;
                                c->throttled_us += isnan(b) ? 0 : b;
                                c->elapsed_s += (double) (bt - c->l_bt) / 1e9;
                        }
                }
                c->l_io = io;
                c->l_thr_us = thr;
                c->l_bt = bt;
        }
        s->ncg_pos = tb->nrows;
        return 0;
}

/* ---- processes ---- */

static uint64_t proc_hash(int64_t pid, int64_t start) {
        uint64_t h = (uint64_t) pid * 0x9E3779B97F4A7C15ULL ^ (uint64_t) start * 0xC2B2AE3D27D4EB4FULL;
        return h ^ (h >> 31);
}

static void proc_insert(struct rec_show *s, uint32_t idx) {
        size_t m = s->phash_size - 1;
        for (size_t i = proc_hash(s->procs[idx].pid, s->procs[idx].start) & m;; i = (i + 1) & m)
                if (!s->phash[i]) {
                        s->phash[i] = idx + 1;
                        return;
                }
}

static int proc_hash_room(struct rec_show *s) {
        if ((s->nprocs + 1) * 2 <= s->phash_size)
                return 0;
        size_t n = s->phash_size ? s->phash_size * 2 : 1024;
        uint32_t *h = calloc(n, sizeof(*h));
        if (!h)
                return -ENOMEM;
        free(s->phash);
        s->phash = h;
        s->phash_size = n;
        for (size_t i = 0; i < s->nprocs; i++)
                proc_insert(s, (uint32_t) i);
        return 0;
}

static bool proc_matches(struct rec_show *s, const struct rs_proc *p) {
        if (s->o.pid && p->pid != s->o.pid)
                return false;
        if (s->have_re) {
                const char *c = rs_str(s, p->cmd);
                if (regexec(&s->re, *c ? c : rs_str(s, p->comm), 0, NULL, 0) != 0)
                        return false;
        }
        return true;
}

static int proc_group(struct rec_show *s, struct rs_proc *p) {
        uint32_t key = p->cmd;
        if (!*rs_str(s, key)) {
                char buf[64];
                snprintf(buf, sizeof(buf), "[%.60s]", rs_str(s, p->comm));
                key = rs_intern(s, buf);
                if (key == RS_NOID)
                        return -ENOMEM;
        }
        if (key >= s->agroup_of) {
                size_t old = s->agroup_of;
                if (rs_grow(&s->group_of, &s->agroup_of, (size_t) key + 1, sizeof(*s->group_of)) < 0)
                        return -ENOMEM;
                memset(s->group_of + old, 0, (s->agroup_of - old) * sizeof(*s->group_of));
        }
        if (!s->group_of[key]) {
                if (rs_grow(&s->groups, &s->agroups, s->ngroups + 1, sizeof(*s->groups)) < 0)
                        return -ENOMEM;
                s->groups[s->ngroups] = (struct rs_group) { .cmd = key };
                s->group_of[key] = (uint32_t) ++s->ngroups;
        }
        p->group = s->group_of[key] - 1;
        return 0;
}

static int proc_get(struct rec_show *s, const struct diag_rec_interval *iv, size_t r, uint32_t *ret) {
        int64_t pid = DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_PID), start = DIAG_REC_NUM(iv, DIAG_REC_PROC, r, PR_START);
        if (s->phash_size) {
                size_t m = s->phash_size - 1;
                for (size_t i = proc_hash(pid, start) & m; s->phash[i]; i = (i + 1) & m) {
                        const struct rs_proc *p = &s->procs[s->phash[i] - 1];
                        if (p->pid == pid && p->start == start) {
                                *ret = s->phash[i] - 1;
                                return 0;
                        }
                }
        }
        if (proc_hash_room(s) < 0 || rs_grow(&s->procs, &s->aprocs, s->nprocs + 1, sizeof(*s->procs)) < 0)
                return -ENOMEM;
        struct rs_proc *p = &s->procs[s->nprocs];
        *p = (struct rs_proc) {
                .pid = pid, .start = start, .group = RS_NOID,
                .comm = intern_dec(s, iv, DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_COMM)),
                .cmd = intern_dec(s, iv, DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CMD)),
                .cgroup = intern_dec(s, iv, DIAG_REC_STR(iv, DIAG_REC_PROC, r, PR_CGROUP)),
                .first_rss = DIAG_REC_NA, .last_rss = DIAG_REC_NA, .max_rss = DIAG_REC_NA,
        };
        p->selected = proc_matches(s, p);
        if (p->selected && proc_group(s, p) < 0)
                return -ENOMEM;
        *ret = (uint32_t) s->nprocs++;
        proc_insert(s, *ret);
        return 0;
}

static double rate(double d, double dt) {
        return dt > 0 && !isnan(d) ? d / dt : NAN;
}

static double nz(double v) {
        return isnan(v) ? 0 : v;
}

static int procs(struct rec_show *s, const struct diag_rec_interval *iv, bool win, bool snap_now) {
        const struct diag_rec_table *tb = &iv->t[DIAG_REC_PROC];
        int64_t bt = iv->boottime_ns, rt = iv->realtime_ns;
        uint32_t ivx = (uint32_t) s->npts;      /* the point's index + 1 */
        double iv_dt = s->have_prev && bt > s->prev_bt ? (double) (bt - s->prev_bt) * 1e-9 : 0;
        double iv_inv = iv_dt > 0 ? 1 / iv_dt : 0, cpu_pct = 100 / s->clk_tck;
        if (rs_grow(&s->row_proc, &s->arow_proc, tb->nrows, sizeof(*s->row_proc)) < 0 ||
            rs_grow(&s->row_cpu, &s->arow_cpu, tb->nrows, sizeof(*s->row_cpu)) < 0)
                return -ENOMEM;
        for (size_t r = 0; r < tb->nrows; r++) {
                uint32_t idx;
                if (proc_get(s, iv, r, &idx) < 0)
                        return -ENOMEM;
                struct rs_proc *p = &s->procs[idx];
                const int64_t *n = &DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0);
                int64_t cpu = n[PR_UTIME] == DIAG_REC_NA || n[PR_STIME] == DIAG_REC_NA ? DIAG_REC_NA :
                              n[PR_UTIME] + n[PR_STIME];
                double dtp = 0, inv = 0, dc = NAN, dm = NAN, drd = NAN, dwr = NAN;
                if (p->l_bt && bt > p->l_bt) {
                        /* mostly seen in the previous interval too: no division per row */
                        if (p->l_bt == s->prev_bt) {
                                dtp = iv_dt;
                                inv = iv_inv;
                        } else {
                                dtp = (double) (bt - p->l_bt) * 1e-9;
                                inv = 1 / dtp;
                        }
                        dc = delta(cpu, p->l_cpu);
                        dm = delta(n[PR_MAJFLT], p->l_majflt);
                        drd = delta(n[PR_READ_BYTES], p->l_rd);
                        dwr = delta(n[PR_WRITE_BYTES], p->l_wr);
                } else if (!p->l_bt && s->have_prev && (double) p->start * 1e9 / s->clk_tck >= (double) s->prev_bt &&
                           (double) bt > (double) p->start * 1e9 / s->clk_tck) {
                        /* started since the previous interval: all it did is new */
                        dtp = ((double) bt - (double) p->start * 1e9 / s->clk_tck) * 1e-9;
                        inv = 1 / dtp;
                        dc = na(cpu);
                        dm = na(n[PR_MAJFLT]);
                        drd = na(n[PR_READ_BYTES]);
                        dwr = na(n[PR_WRITE_BYTES]);
                }
                s->row_proc[r] = idx;
                s->row_cpu[r] = dtp > 0 ? dc * inv * cpu_pct : NAN;
                if (snap_now) {
                        s->snap.cpu[r] = s->row_cpu[r];
                        s->snap.majflt[r] = rate(dm, dtp);
                        s->snap.io[r] = rate(drd + dwr, dtp);
                }
                if (win) {
                        if (dtp > 0) {
                                p->cpu_ticks += nz(dc);
                                p->majflt += nz(dm);
                                p->rd += nz(drd);
                                p->wr += nz(dwr);
                                p->alive_s += dtp;
                        }
                        int64_t rss = n[PR_RSS];
                        if (rss != DIAG_REC_NA) {
                                if (p->first_rss == DIAG_REC_NA) {
                                        p->first_rss = rss;
                                        p->first_rt = rt;
                                }
                                p->last_rss = rss;
                                p->last_rt = rt;
                                if (p->max_rss == DIAG_REC_NA || rss > p->max_rss)
                                        p->max_rss = rss;
                        }
                        p->state = (char) n[PR_STATE];
                        p->threads = n[PR_THREADS];
                        p->ppid = n[PR_PPID];
                        p->uid = n[PR_UID];
                        if (p->selected) {
                                struct rs_group *g = &s->groups[p->group];
                                if (g->stamp != ivx) {
                                        if (rs_grow(&s->touched, &s->atouched, s->ntouched + 1, sizeof(*s->touched)) < 0)
                                                return -ENOMEM;
                                        s->touched[s->ntouched++] = p->group;
                                        g->stamp = ivx;
                                        g->count = 0;
                                }
                                g->count++;
                        }
                        if (p->selected && (s->o.pid || s->have_re)) {
                                if (rs_grow(&s->ps, &s->aps, s->nps + 1, sizeof(*s->ps)) < 0)
                                        return -ENOMEM;
                                s->ps[s->nps++] = (struct rs_psample) {
                                        .iv = ivx - 1, .proc = idx, .dt_s = dtp, .cpu_ticks = dc, .majflt = dm,
                                        .rd = drd, .wr = dwr, .rss = n[PR_RSS], .threads = n[PR_THREADS],
                                        .state = (char) n[PR_STATE],
                                };
                        }
                }
                p->l_cpu = cpu;
                p->l_majflt = n[PR_MAJFLT];
                p->l_rd = n[PR_READ_BYTES];
                p->l_wr = n[PR_WRITE_BYTES];
                p->l_bt = bt;
        }
        return 0;
}

/* Record the counts that changed: groups counted now, and those counted before but not now. */
static int groups_close(struct rec_show *s) {
        uint32_t ivx = (uint32_t) s->npts;
        for (size_t i = 0; i < s->nactive; i++) {
                struct rs_group *g = &s->groups[s->active[i]];
                if (g->stamp != ivx) {
                        g->stamp = ivx;
                        g->count = 0;
                        if (rs_grow(&s->touched, &s->atouched, s->ntouched + 1, sizeof(*s->touched)) < 0)
                                return -ENOMEM;
                        s->touched[s->ntouched++] = s->active[i];
                }
        }
        size_t keep = 0;
        for (size_t i = 0; i < s->ntouched; i++) {
                struct rs_group *g = &s->groups[s->touched[i]];
                if (g->count != g->last) {
                        if (rs_grow(&g->runs, &g->aruns, g->nruns + 1, sizeof(*g->runs)) < 0)
                                return -ENOMEM;
                        g->runs[g->nruns++] = (struct rs_run) { ivx - 1, g->count };
                        g->last = g->count;
                }
                if (g->count)
                        s->touched[keep++] = s->touched[i];
        }
        uint32_t *t = s->active;
        size_t a = s->aactive;
        s->active = s->touched;
        s->aactive = s->atouched;
        s->nactive = keep;
        s->touched = t;
        s->atouched = a;
        s->ntouched = 0;
        return 0;
}

/* --at: a copy of the interval, PROC strings from the processes already interned. */
static int snap_copy(struct rec_show *s, const struct diag_rec_interval *iv) {
        struct diag_rec_interval *d = &s->snap.iv;
        diag_rec_interval_clear(d);
        d->seq = iv->seq;
        d->realtime_ns = iv->realtime_ns;
        d->boottime_ns = iv->boottime_ns;
        d->interval_ms = iv->interval_ms;
        for (int t = 0; t < DIAG_REC_NTABLES; t++) {
                const struct diag_rec_schema *sc = &diag_rec_schemas[t];
                for (size_t r = 0; r < iv->t[t].nrows; r++) {
                        ssize_t k = diag_rec_add_row(d, t);
                        if (k < 0)
                                return -ENOMEM;
                        memcpy(&DIAG_REC_NUM(d, t, k, 0), &DIAG_REC_NUM(iv, t, r, 0), sc->nnum * sizeof(int64_t));
                        if (t == DIAG_REC_PROC) {
                                const struct rs_proc *p = &s->procs[s->row_proc[r]];
                                DIAG_REC_STR(d, t, k, PR_COMM) = p->comm;
                                DIAG_REC_STR(d, t, k, PR_CMD) = p->cmd;
                                DIAG_REC_STR(d, t, k, PR_CGROUP) = p->cgroup;
                                continue;
                        }
                        for (unsigned c = 0; c < sc->nstr; c++)
                                DIAG_REC_STR(d, t, k, c) = intern_dec(s, iv, DIAG_REC_STR(iv, t, r, c));
                }
        }
        s->snap.have = true;
        s->snap.clk_tck = s->clk_tck;
        return 0;
}

static int snap_room(struct rs_snap *sn, size_t n) {
        if (n <= sn->arates)
                return 0;
        double **arr[] = { &sn->cpu, &sn->majflt, &sn->io };
        for (int i = 0; i < 3; i++) {
                double *p = realloc(*arr[i], n * sizeof(double));
                if (!p)
                        return -ENOMEM;
                *arr[i] = p;
        }
        sn->arates = n;
        return 0;
}

/* The chosen interval was the first: its rates from the one after it. */
static void snap_rates_after(struct rec_show *s, const struct diag_rec_interval *iv) {
        struct rs_snap *sn = &s->snap;
        const struct diag_rec_interval *a = &sn->iv;
        sn->rates = true;
        if (iv->boottime_ns <= a->boottime_ns)
                return;
        double dt = (double) (iv->boottime_ns - a->boottime_ns) / 1e9;
        for (size_t r = 0; r < iv->t[DIAG_REC_PROC].nrows; r++) {
                const int64_t *n = &DIAG_REC_NUM(iv, DIAG_REC_PROC, r, 0);
                ssize_t k = diag_rec_find_proc(a, (pid_t) n[PR_PID], n[PR_START]);
                if (k < 0)
                        continue;
                const int64_t *o = &DIAG_REC_NUM(a, DIAG_REC_PROC, k, 0);
                sn->cpu[k] = rate(delta(n[PR_UTIME], o[PR_UTIME]) + delta(n[PR_STIME], o[PR_STIME]), dt) /
                             sn->clk_tck * 100;
                sn->majflt[k] = rate(delta(n[PR_MAJFLT], o[PR_MAJFLT]), dt);
                sn->io[k] = rate(delta(n[PR_READ_BYTES], o[PR_READ_BYTES]) + delta(n[PR_WRITE_BYTES], o[PR_WRITE_BYTES]), dt);
        }
}

int rs_feed(struct rec_show *s, const struct diag_rec_interval *iv) {
        int64_t rt = iv->realtime_ns, bt = iv->boottime_ns;
        struct rs_snap *sn = &s->snap;
        if (s->o.to_ns && rt > s->o.to_ns && !(s->o.at_ns && sn->have && !sn->rates))
                return 0;
        bool win = !(s->o.from_ns && rt < s->o.from_ns) && !(s->o.to_ns && rt > s->o.to_ns);
        bool snap_now = s->o.at_ns && rt <= s->o.at_ns;
        double dt = s->have_prev && bt > s->prev_bt ? (double) (bt - s->prev_bt) / 1e9 : 0;
        int r;
        if (iv->interval_ms)
                s->interval_ms = iv->interval_ms;
        if (!s->nfed++)
                s->first_rt = rt;
        s->last_rt = rt;
        struct rs_pt pt = { .rt_ns = rt };
        if (s->have_prev && s->interval_ms && rt - s->prev_rt > (int64_t) s->interval_ms * 2500000) {
                if (rs_add_gap(s, s->prev_rt, rt, "no intervals recorded") < 0)
                        return -ENOMEM;
                pt.marks |= RS_MARK_GAP;
        }
        host_point(s, iv, &pt, dt);
        disks(s, iv, &pt, dt);
        s->ev_first = s->nevs;
        if (win) {
                if (events(s, iv, &pt) < 0 || rs_grow(&s->pts, &s->apts, s->npts + 1, sizeof(*s->pts)) < 0)
                        return -ENOMEM;
                s->pts[s->npts++] = pt;
        }
        size_t nrows = iv->t[DIAG_REC_PROC].nrows;
        if (snap_now && snap_room(sn, nrows) < 0)
                return -ENOMEM;
        r = procs(s, iv, win, snap_now);
        if (r >= 0)
                r = cgroups(s, iv, win);
        if (r >= 0 && win)
                r = groups_close(s);
        if (r >= 0 && snap_now) {
                r = snap_copy(s, iv);
                sn->rates = dt > 0;
                sn->pt = win ? (uint32_t) (s->npts - 1) : RS_NOID;
        } else if (r >= 0 && sn->have && !sn->rates)
                snap_rates_after(s, iv);
        if (r < 0)
                return r;
        memcpy(s->prev_host, iv->t[DIAG_REC_HOST].num, sizeof(s->prev_host));
        s->prev_rt = rt;
        s->prev_bt = bt;
        s->have_prev = true;
        if (win && s->o.follow && s->o.json)
                return rs_json_follow(s, iv);
        return 0;
}
