/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-top -b: frames on stdout, as plain text like `top -b` (a header block, an empty
 * line, the column header, one line a row) or, with -J, one JSON object a line.
 * Every frame is flushed: a reader that went away is -EPIPE for the caller.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <string.h>
#include <time.h>

#include "top.h"

static const char *const psi_names[3] = { "cpu", "memory", "io" };
static const char *const cpu_names[6] = { "user", "system", "iowait", "steal", "other", "idle" };

/* Local time, ISO 8601 with the offset as +01:00. */
static void fmt_iso(char *buf, size_t size, int64_t ns) {
        time_t t = (time_t) (ns / 1000000000);
        struct tm tm;
        char tmp[48];
        size_t l = 0;

        if (localtime_r(&t, &tm))
                l = strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S%z", &tm);
        if (!l) {
                snprintf(buf, size, "?");
                return;
        }
        if (l > 5 && (tmp[l - 5] == '+' || tmp[l - 5] == '-'))
                snprintf(buf, size, "%.*s:%s", (int) (l - 2), tmp, tmp + l - 2);
        else
                snprintf(buf, size, "%s", tmp);
}

static void fmt_pct(char *buf, size_t size, double v) {
        if (v < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.1f", v);
}

static void fmt_growth(char *buf, size_t size, double g) {
        char b[16];

        if (g == 0) {
                snprintf(buf, size, "0");
                return;
        }
        top_fmt_bytes(b, sizeof b, g < 0 ? -g : g);
        snprintf(buf, size, "%c%s", g < 0 ? '-' : '+', b);
}

static void fmt_i64(char *buf, size_t size, int64_t v) {
        if (v == DIAG_REC_NA || v < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%" PRId64, v);
}

/* ---- text ---- */

static void text_header(FILE *out, const struct top_header *h) {
        char when[48], a[32], b[32], c[32], d[32];

        fmt_iso(when, sizeof when, h->realtime_ns);
        fprintf(out, "diag-top - %s, interval %.1fs, %u CPUs, %u processes, %u threads, %u running\n", when,
                h->interval_ms / 1000.0, h->ncpu, h->nprocs, h->nthreads, h->nrunning);
        if (h->cpu_idle < 0) {
                fprintf(out, "CPU: -\n");
        } else {
                fprintf(out, "CPU: %.1f user, %.1f system, %.1f iowait, %.1f steal, %.1f other, %.1f idle\n",
                        h->cpu_user, h->cpu_system, h->cpu_iowait, h->cpu_steal, h->cpu_other, h->cpu_idle);
        }
        top_fmt_bytes(a, sizeof a, h->mem_avail == DIAG_REC_NA ? -1 : (double) h->mem_avail);
        top_fmt_bytes(b, sizeof b, h->mem_total == DIAG_REC_NA ? -1 : (double) h->mem_total);
        top_fmt_bytes(c, sizeof c, h->swap_free == DIAG_REC_NA ? -1 : (double) h->swap_free);
        top_fmt_bytes(d, sizeof d, h->swap_total == DIAG_REC_NA ? -1 : (double) h->swap_total);
        fprintf(out, "Mem: %s available of %s, swap %s free of %s\n", a, b, c, d);
        fprintf(out, "PSI some/full %%:");
        for (int i = 0; i < 3; i++) {
                fmt_pct(a, sizeof a, h->psi[i][0]);
                fmt_pct(b, sizeof b, h->psi[i][1]);
                fprintf(out, " %s %s/%s", psi_names[i], a, b);
        }
        fputc('\n', out);
        if (h->load[0] < 0)
                fprintf(out, "Load: -\n");
        else
                fprintf(out, "Load: %.2f %.2f %.2f\n", h->load[0], h->load[1], h->load[2]);
        if (h->disk[0]) {
                fmt_pct(a, sizeof a, h->disk_busy_pct);
                fmt_pct(b, sizeof b, h->disk_iops);
                fprintf(out, "Disk: %s %s%% busy, %s IOPS\n", h->disk, a, b);
        } else {
                fprintf(out, "Disk: -\n");
        }
        fmt_i64(a, sizeof a, h->oom_kills);
        fmt_i64(b, sizeof b, h->oom_kills_seen);
        fmt_pct(c, sizeof c, h->majflt_s);
        fprintf(out, "OOM kills: %s since boot, %s seen; major faults %s/s\n", a, b, c);
        fprintf(out, "D-state threads: %u, stuck chains: %u\n", h->dstate_threads, h->stuck_chains);
}

/* One row's cells (all but WAIT and COMMAND) into cells[col]. */
static void row_cells(const struct top_row *row, char cells[TOP_COL__N][24]) {
        const struct top_proc *p = row->p;

        snprintf(cells[TOP_COL_PID], 24, "%d", (int) p->pid);
        snprintf(cells[TOP_COL_USER], 24, "%.12s", top_user_name(p->uid));
        snprintf(cells[TOP_COL_STATE], 24, "%c", p->state ? p->state : '?');
        fmt_pct(cells[TOP_COL_CPU], 24, row->cpu_pct);
        top_fmt_bytes(cells[TOP_COL_RSS], 24, row->rss == DIAG_REC_NA ? -1 : (double) row->rss);
        fmt_growth(cells[TOP_COL_GROWTH], 24, row->rss_growth);
        fmt_pct(cells[TOP_COL_MAJFLT], 24, row->majflt_s);
        top_fmt_bytes(cells[TOP_COL_READ], 24, row->read_s);
        top_fmt_bytes(cells[TOP_COL_WRITE], 24, row->write_s);
        fmt_i64(cells[TOP_COL_THREADS], 24, row->threads);
        if (row->blocked_ms < 0) {
                snprintf(cells[TOP_COL_BLOCKED], 24, "-");
        } else {
                char ms[16];
                top_fmt_ms(ms, sizeof ms, row->blocked_ms);
                if (row->blocked_state)
                        snprintf(cells[TOP_COL_BLOCKED], 24, "%s %c", ms, row->blocked_state);
                else
                        snprintf(cells[TOP_COL_BLOCKED], 24, "%s", ms);
        }
        cells[TOP_COL_WAIT][0] = cells[TOP_COL_CMD][0] = '\0';
}

static const int col_width[TOP_COL__N] = {
        [TOP_COL_PID] = 7, [TOP_COL_USER] = -9, [TOP_COL_STATE] = -1, [TOP_COL_CPU] = 6, [TOP_COL_RSS] = 6,
        [TOP_COL_GROWTH] = 7, [TOP_COL_MAJFLT] = 8, [TOP_COL_READ] = 7, [TOP_COL_WRITE] = 7,
        [TOP_COL_THREADS] = 5, [TOP_COL_BLOCKED] = 9,
};

static void text_rows(FILE *out, const struct top_rows *rows, const struct top_rows_opts *ro, size_t n) {
        int wait_w = (int) strlen(top_col_name(TOP_COL_WAIT));

        for (size_t i = 0; i < n; i++) {
                const char *w = rows->rows[i].wait;
                if (w && (int) strlen(w) > wait_w)
                        wait_w = (int) strlen(w);
        }
        for (int c = 0; c < TOP_COL_WAIT; c++)
                fprintf(out, "%*s ", col_width[c], top_col_name((enum top_col) c));
        fprintf(out, "%-*s %s\n", wait_w, top_col_name(TOP_COL_WAIT), top_col_name(TOP_COL_CMD));
        for (size_t i = 0; i < n; i++) {
                const struct top_row *row = &rows->rows[i];
                char cells[TOP_COL__N][24];

                row_cells(row, cells);
                for (int c = 0; c < TOP_COL_WAIT; c++)
                        fprintf(out, "%*s ", col_width[c], cells[c]);
                fprintf(out, "%-*s ", wait_w, row->wait ? row->wait : "-");
                if (row->count > 1)
                        fprintf(out, "x%u ", row->count);
                else if (ro && ro->tree && !ro->group)
                        fprintf(out, "%*s", (int) (2 * (row->depth > 20 ? 20 : row->depth)), "");
                if (row->p->cmd && row->p->cmd[0])
                        fprintf(out, "%s\n", row->p->cmd);
                else
                        fprintf(out, "[%s]\n", row->p->comm ? row->p->comm : "?");
        }
}

/* ---- JSON ---- */

/* A number written with at most 3 decimals (1.12, not 1.1200000000000001). */
static struct json_object *jdouble(double v) {
        char buf[64];
        size_t l = (size_t) snprintf(buf, sizeof buf, "%.3f", v);

        if (l >= sizeof buf || !(v > -1e15 && v < 1e15))
                return json_object_new_double(v);
        while (l > 1 && buf[l - 1] == '0')
                buf[--l] = 0;
        if (buf[l - 1] == '.')
                buf[--l] = 0;
        return json_object_new_double_s(v, buf);
}

/* A number, or null when unknown (negative). */
static struct json_object *jnum(double v) {
        return v < 0 ? NULL : jdouble(v);
}

static struct json_object *jint(int64_t v) {
        return v == DIAG_REC_NA || v < 0 ? NULL : json_object_new_int64(v);
}

static struct json_object *json_header(const struct top_header *h) {
        struct json_object *o = json_object_new_object(), *cpu, *psi, *load, *disk = NULL;

        if (!o)
                return NULL;
        const double cpu_v[] = { h->cpu_user, h->cpu_system, h->cpu_iowait, h->cpu_steal, h->cpu_other, h->cpu_idle };
        const struct { const char *name; int64_t v; } ints[] = {
                { "ncpu", h->ncpu }, { "mem_total", h->mem_total }, { "mem_avail", h->mem_avail },
                { "swap_total", h->swap_total }, { "swap_free", h->swap_free }, { "oom_kills", h->oom_kills },
                { "oom_kills_seen", h->oom_kills_seen }, { "nprocs", h->nprocs }, { "nthreads", h->nthreads },
                { "nrunning", h->nrunning }, { "dstate_threads", h->dstate_threads },
                { "stuck_chains", h->stuck_chains },
        };

        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
                json_object_object_add(o, ints[i].name, jint(ints[i].v));
        cpu = json_object_new_object();
        for (size_t i = 0; i < 6; i++)
                json_object_object_add(cpu, cpu_names[i], jnum(cpu_v[i]));
        json_object_object_add(o, "cpu_pct", cpu);
        psi = json_object_new_object();
        for (int i = 0; i < 3; i++) {
                struct json_object *r = json_object_new_object();
                json_object_object_add(r, "some", jnum(h->psi[i][0]));
                json_object_object_add(r, "full", jnum(h->psi[i][1]));
                json_object_object_add(psi, psi_names[i], r);
        }
        json_object_object_add(o, "psi_pct", psi);
        if (h->load[0] >= 0) {
                load = json_object_new_array();
                for (int i = 0; i < 3; i++)
                        json_object_array_add(load, jdouble(h->load[i]));
        } else {
                load = NULL;
        }
        json_object_object_add(o, "load", load);
        if (h->disk[0]) {
                disk = json_object_new_object();
                json_object_object_add(disk, "name", json_object_new_string(h->disk));
                json_object_object_add(disk, "busy_pct", jnum(h->disk_busy_pct));
                json_object_object_add(disk, "iops", jnum(h->disk_iops));
        }
        json_object_object_add(o, "disk", disk);
        json_object_object_add(o, "majflt_s", jnum(h->majflt_s));
        return o;
}

static struct json_object *json_row(const struct top_row *row) {
        const struct top_proc *p = row->p;
        struct json_object *o = json_object_new_object();
        char state[2] = { p->state ? p->state : '?', 0 };

        if (!o)
                return NULL;
        json_object_object_add(o, "pid", json_object_new_int64(p->pid));
        json_object_object_add(o, "user", json_object_new_string(top_user_name(p->uid)));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "cpu_pct", jnum(row->cpu_pct));
        json_object_object_add(o, "rss", jint(row->rss));
        json_object_object_add(o, "rss_growth_per_min", jdouble(row->rss_growth));
        json_object_object_add(o, "majflt_s", jnum(row->majflt_s));
        json_object_object_add(o, "read_bps", jnum(row->read_s));
        json_object_object_add(o, "write_bps", jnum(row->write_s));
        json_object_object_add(o, "threads", jint(row->threads));
        json_object_object_add(o, "blocked_ms", jint(row->blocked_ms));
        json_object_object_add(o, "wait", row->wait ? json_object_new_string(row->wait) : NULL);
        json_object_object_add(o, "count", json_object_new_int64(row->count));
        json_object_object_add(o, "pss", jint(row->pss));
        json_object_object_add(o, "cmd", json_object_new_string(p->cmd ? p->cmd : ""));
        json_object_object_add(o, "comm", json_object_new_string(p->comm ? p->comm : ""));
        return o;
}

static int json_frame(FILE *out, const struct top_frame *f, const struct top_rows *rows) {
        struct json_object *o = json_object_new_object(), *arr = json_object_new_array(), *h;
        char when[48];

        if (!o || !arr) {
                json_object_put(o);
                json_object_put(arr);
                return -ENOMEM;
        }
        fmt_iso(when, sizeof when, f->h.realtime_ns);
        json_object_object_add(o, "time", json_object_new_string(when));
        json_object_object_add(o, "time_ns", json_object_new_int64(f->h.realtime_ns));
        json_object_object_add(o, "interval_ms", json_object_new_int64(f->h.interval_ms));
        h = json_header(&f->h);
        json_object_object_add(o, "header", h);
        json_object_object_add(o, "rows", arr);
        for (size_t i = 0; rows && i < rows->n; i++) {
                struct json_object *r = json_row(&rows->rows[i]);
                if (!r || !h) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                json_object_array_add(arr, r);
        }
        fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), out);
        fputc('\n', out);
        json_object_put(o);
        return 0;
}

int top_batch_frame(const struct top_batch_opts *o, const struct top_frame *f, const struct top_rows *rows,
                    const struct top_rows_opts *ro) {
        FILE *out = o->out ? o->out : stdout;
        int k = 0;

        if (!f)
                return -EINVAL;
        if (o->json) {
                k = json_frame(out, f, rows);
        } else {
                size_t n = rows ? rows->n : 0;

                if (o->max_rows && n > o->max_rows)
                        n = o->max_rows;
                text_header(out, &f->h);
                fputc('\n', out);
                if (rows)
                        text_rows(out, rows, ro, n);
                fputc('\n', out);
        }
        errno = 0;
        if (fflush(out) != 0 || ferror(out)) {
                int e = errno ? errno : EIO;
                clearerr(out);
                return -e;
        }
        return k;
}
