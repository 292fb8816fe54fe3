/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * shmdump: the shared-memory segments of the machine and who maps them, and the
 * channels inside them — libatbus mem/shm rings decoded, checked block by block,
 * watched — plus any segment header printed as a C struct from DWARF. Read-only:
 * segments are copied (SysV attached SHM_RDONLY), never created, locked or resized.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "diag/log.h"
#include "diag/out.h"
#include "diag/shm.h"
#include "diag/target.h"
#include "diag/util.h"

#define EXIT_ANOMALIES 3
#define EXIT_UNDECODABLE 5
#define MAX_SEGMENT (1ULL << 32)        /* a bigger "channel" is read only by --save */
#define NODE_DATA_BYTES 16

/* ---- columns: the segment list and the node dump ---- */

enum { COL_KIND, COL_NAME, COL_KEY, COL_ID, COL_SIZE, COL_OWNER, COL_PERMS, COL_CPID, COL_LPID,
       COL_NATTCH, COL_ATTACHED, COL_FORMAT, COL_STATUS, COL_ATIME, COL_DTIME, COL_CTIME, COL_RSS, COL_SWAP,
       COL_INODE };

static const struct diag_column seg_columns[] = {
        [COL_KIND]     = { "KIND", 5, 0, DIAG_COL_STRING, 0, "sysv, posix, memfd or anon" },
        [COL_NAME]     = { "NAME", 0.2, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "how to name it to shmdump: key:K, id:N, /dev/shm/NAME, memfd:NAME, anon:INODE, ipc:NS:id:N" },
        [COL_KEY]      = { "KEY", 10, 0, DIAG_COL_STRING, 0, "SysV key (hex)" },
        [COL_ID]       = { "ID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "SysV shmid" },
        [COL_SIZE]     = { "SIZE", 6, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "size in bytes (-J) or human-readable" },
        [COL_OWNER]    = { "OWNER", 8, 0, DIAG_COL_STRING, 0, "owner's user name" },
        [COL_PERMS]    = { "PERMS", 5, 0, DIAG_COL_STRING, 0, "permission bits (octal)" },
        [COL_CPID]     = { "CPID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "SysV: creator process" },
        [COL_LPID]     = { "LPID", 5, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "SysV: last process to attach or detach" },
        [COL_NATTCH]   = { "NATTCH", 3, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "SysV: attach count kept by the kernel; others: mappings seen" },
        [COL_ATTACHED] = { "ATTACHED", 0.2, 0, DIAG_COL_ARRAY, 0, "processes that map it: pid(comm) perms" },
        [COL_FORMAT]   = { "FORMAT", 8, 0, DIAG_COL_STRING, 0, "channel format detected in it (libatbus)" },
        [COL_STATUS]   = { "STATUS", 6, 0, DIAG_COL_STRING, 0, "SysV: dest (removed, freed at the last detach), locked" },
        [COL_ATIME]    = { "ATIME", 19, 0, DIAG_COL_STRING, 0, "SysV: last attach" },
        [COL_DTIME]    = { "DTIME", 19, 0, DIAG_COL_STRING, 0, "SysV: last detach" },
        [COL_CTIME]    = { "CTIME", 19, 0, DIAG_COL_STRING, 0, "SysV: last change; POSIX: last modification" },
        [COL_RSS]      = { "RSS", 6, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "SysV: resident bytes" },
        [COL_SWAP]     = { "SWAP", 6, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "SysV: swapped bytes" },
        [COL_INODE]    = { "INODE", 8, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "inode (for SysV: the shmid)" },
};
static const int seg_default[] = { COL_KIND, COL_NAME, COL_ID, COL_SIZE, COL_OWNER, COL_PERMS, COL_CPID,
                                   COL_LPID, COL_NATTCH, COL_ATTACHED, COL_FORMAT };

enum { NCOL_INDEX, NCOL_SEQ, NCOL_START, NCOL_WRITTEN, NCOL_FLAG, NCOL_SIZE, NCOL_HASH, NCOL_HASH_OK,
       NCOL_LIVE, NCOL_DATA };

static const struct diag_column node_columns[] = {
        [NCOL_INDEX]   = { "INDEX", 6, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "node index" },
        [NCOL_SEQ]     = { "SEQ", 10, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "operation sequence of the block it belongs to" },
        [NCOL_START]   = { "START", 1, 0, DIAG_COL_BOOLEAN, 0, "a block starts here" },
        [NCOL_WRITTEN] = { "WRITTEN", 1, 0, DIAG_COL_BOOLEAN, 0, "marked written" },
        [NCOL_FLAG]    = { "FLAG", 4, SCOLS_FL_RIGHT, DIAG_COL_STRING, 0, "the flag word (hex)" },
        [NCOL_SIZE]    = { "LENGTH", 6, SCOLS_FL_RIGHT, DIAG_COL_NUMBER, 0, "start node: payload bytes of the block" },
        [NCOL_HASH]    = { "HASH", 10, 0, DIAG_COL_STRING, 0, "start node: stored hash" },
        [NCOL_HASH_OK] = { "HASH_OK", 1, 0, DIAG_COL_BOOLEAN, 0, "start node: payload hashes to the stored hash" },
        [NCOL_LIVE]    = { "LIVE", 1, 0, DIAG_COL_BOOLEAN, 0, "between the read and the write cursor" },
        [NCOL_DATA]    = { "DATA", 0.3, SCOLS_FL_TRUNC, DIAG_COL_STRING, 0, "first payload bytes, hex" },
};
static const int node_default[] = { NCOL_INDEX, NCOL_SEQ, NCOL_START, NCOL_WRITTEN, NCOL_SIZE, NCOL_HASH,
                                    NCOL_LIVE, NCOL_DATA };

static struct {
        bool check, hash, watch, nodes, table;
        uint64_t node_from, node_to;    /* inclusive; to UINT64_MAX = the last */
        bool nodes_live;
        uint64_t interval_ms;
        uint64_t count;                 /* watch samples, 0 = until interrupted */
        size_t max_report;
        const char *save, *struct_type, *debug_file, *format;
        struct diag_outopts out;
        struct diag_columns cols;
} arg = { .hash = true, .interval_ms = 1000, .max_report = 20 };

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        interrupted = sig;
}

/* The first failure of the run: with -J, when it fails as a whole, printed as
 * the error object on stdout too. */
static struct {
        bool set;
        char message[512];
        const char *reason;
        pid_t pid;
} failure;

/* One line on stderr (no program name in fmt); returns DIAG_EXIT_FAILURE.
 * %m is strerror(-err). */
static int fail_errno(int err, const char *reason, pid_t pid, const char *fmt, ...) _printf_(4, 5);
static int fail_errno(int err, const char *reason, pid_t pid, const char *fmt, ...) {
        char buf[sizeof failure.message];
        va_list ap;

        errno = err < 0 ? -err : err;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        log_error("%s", buf);
        if (!failure.set) {
                failure.set = true;
                snprintf(failure.message, sizeof failure.message, "%s", buf);
                failure.reason = reason;
                failure.pid = pid;
        }
        return DIAG_EXIT_FAILURE;
}

/* A segment that could not be read; a file that did not answer in time is said
 * once, with the helper left stuck on it, if one was. */
static int read_failed(int r, const char *name, const char *what) {
        pid_t stuck = diag_shm_stuck_helper();
        char left[96] = "";

        if (r == -ETIMEDOUT) {
                if (stuck)
                        snprintf(left, sizeof left, "; helper process %d is left stuck on it", (int) stuck);
                return fail_errno(r, "timeout", 0, "%s: no answer within %u ms (on a mount that stopped answering?)%s",
                                  name, diag_shm_path_timeout_ms(), left);
        }
        if (r == -EFBIG)
                return fail_errno(r, "too-large", 0, "%s: larger than %llu bytes; --save it and decode the copy", name,
                                  MAX_SEGMENT);
        return fail_errno(r, "error", 0, "%s: cannot %s: %m", name, what);
}

/* ---- small formatters ---- */

static const char *user_name(uid_t uid, char *buf, size_t size) {
        struct passwd pw, *res = NULL;
        char tmp[1024];

        if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
                snprintf(buf, size, "%s", res->pw_name);
        else
                snprintf(buf, size, "%u", (unsigned) uid);
        return buf;
}

static const char *time_text(int64_t t, char *buf, size_t size) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (!t || !localtime_r(&tt, &tm))
                snprintf(buf, size, "never");
        else
                strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
        return buf;
}

static json_object *j_u64(uint64_t v) { return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t) v); }

static void hexbytes(const uint8_t *p, size_t n, char *buf) {
        for (size_t i = 0; i < n; i++)
                sprintf(buf + 2 * i, "%02x", p[i]);
        buf[2 * n] = 0;
}

/* ---- the list ---- */

/* SHM_DEST and SHM_LOCKED ride in the mode bits of /proc/sysvipc/shm, as ipcs shows them. */
static const char *seg_status(const struct diag_shm_seg *s) {
        bool dest = s->mode & 01000, locked = s->mode & 02000;
        return dest && locked ? "dest,locked" : dest ? "dest" : locked ? "locked" : NULL;
}

static json_object *json_attachers(const struct diag_shm_seg *s) {
        json_object *a = json_object_new_array();

        for (size_t k = 0; k < s->natt; k++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "pid", json_object_new_int(s->att[k].pid));
                json_object_object_add(o, "comm", json_object_new_string(s->att[k].comm));
                json_object_object_add(o, "start", diag_json_hex(s->att[k].start));
                json_object_object_add(o, "end", diag_json_hex(s->att[k].end));
                json_object_object_add(o, "perms", json_object_new_string(s->att[k].perms));
                json_object_array_add(a, o);
        }
        return a;
}

static json_object *json_segment(const struct diag_shm_seg *s) {
        json_object *o = json_object_new_object();
        char owner[64], key[16];
        /* what the kernel's table says; a SysV segment only a mapping told of has
         * its key and id, nothing more */
        bool sysv = s->kind == DIAG_SHM_SYSV && s->in_table, known = sysv || s->kind == DIAG_SHM_POSIX;

        snprintf(key, sizeof key, "0x%08x", (uint32_t) s->key);
        json_object_object_add(o, "kind", json_object_new_string(diag_shm_kind_name(s->kind)));
        json_object_object_add(o, "name", json_object_new_string(s->name));
        json_object_object_add(o, "key", s->kind == DIAG_SHM_SYSV ? json_object_new_string(key) : NULL);
        json_object_object_add(o, "id", s->kind == DIAG_SHM_SYSV ? j_u64(s->inode) : NULL);
        json_object_object_add(o, "ipc_ns", s->ipc_ns ? j_u64(s->ipc_ns) : NULL);
        json_object_object_add(o, "size", j_u64(s->size));
        /* memfd and anonymous mappings: only the maps were read, no owner or mode */
        json_object_object_add(o, "uid", known ? json_object_new_int64(s->uid) : NULL);
        json_object_object_add(o, "owner", known ? json_object_new_string(user_name(s->uid, owner, sizeof owner)) : NULL);
        json_object_object_add(o, "perms", known ? json_object_new_int((int) (s->mode & 0777)) : NULL);
        json_object_object_add(o, "status", sysv ? diag_json_str(seg_status(s)) : NULL);
        json_object_object_add(o, "cpid", sysv ? json_object_new_int(s->cpid) : NULL);
        json_object_object_add(o, "lpid", sysv ? json_object_new_int(s->lpid) : NULL);
        json_object_object_add(o, "nattch", sysv ? j_u64(s->nattch) : NULL);
        json_object_object_add(o, "atime", sysv ? json_object_new_int64(s->atime) : NULL);
        json_object_object_add(o, "dtime", sysv ? json_object_new_int64(s->dtime) : NULL);
        json_object_object_add(o, "ctime", s->ctime ? json_object_new_int64(s->ctime) : NULL);
        json_object_object_add(o, "rss", sysv ? j_u64(s->rss) : NULL);
        json_object_object_add(o, "swap", sysv ? j_u64(s->swap) : NULL);
        json_object_object_add(o, "inode", j_u64(s->inode));
        json_object_object_add(o, "attached", json_attachers(s));
        json_object_object_add(o, "format", diag_json_str(s->format));
        return o;
}

static json_object *json_mqueue(const struct diag_mqueue *q) {
        json_object *o = json_object_new_object();
        char owner[64];

        json_object_object_add(o, "name", json_object_new_string(q->name));
        json_object_object_add(o, "qsize", j_u64(q->qsize));
        json_object_object_add(o, "notify", json_object_new_int(q->notify));
        json_object_object_add(o, "signo", json_object_new_int(q->signo));
        json_object_object_add(o, "notify_pid", json_object_new_int(q->notify_pid));
        json_object_object_add(o, "uid", json_object_new_int64(q->uid));
        json_object_object_add(o, "owner", json_object_new_string(user_name(q->uid, owner, sizeof owner)));
        json_object_object_add(o, "perms", json_object_new_int((int) q->mode));
        return o;
}

static void seg_row(struct libscols_line *ln, const struct diag_shm_seg *s) {
        const struct diag_columns *c = &arg.cols;
        bool sysv = s->kind == DIAG_SHM_SYSV && s->in_table;
        char buf[64];
        char *att = NULL;
        size_t attlen = 0;
        FILE *f;

        diag_table_set(ln, c, COL_KIND, "%s", diag_shm_kind_name(s->kind));
        diag_table_set(ln, c, COL_NAME, "%s", s->name);
        if (s->kind == DIAG_SHM_SYSV) {
                diag_table_set(ln, c, COL_KEY, "0x%08x", (uint32_t) s->key);
                diag_table_set(ln, c, COL_ID, "%" PRIu64, s->inode);
        }
        if (sysv) {
                diag_table_set(ln, c, COL_CPID, "%d", s->cpid);
                diag_table_set(ln, c, COL_LPID, "%d", s->lpid);
                diag_table_set(ln, c, COL_ATIME, "%s", time_text(s->atime, buf, sizeof buf));
                diag_table_set(ln, c, COL_DTIME, "%s", time_text(s->dtime, buf, sizeof buf));
                diag_table_set(ln, c, COL_RSS, "%" PRIu64, s->rss);
                diag_table_set(ln, c, COL_SWAP, "%" PRIu64, s->swap);
        }
        diag_table_set(ln, c, COL_NATTCH, "%" PRIu64, sysv ? s->nattch : (uint64_t) s->natt);
        if (s->ctime)
                diag_table_set(ln, c, COL_CTIME, "%s", time_text(s->ctime, buf, sizeof buf));
        if (arg.out.json)
                diag_table_set(ln, c, COL_SIZE, "%" PRIu64, s->size);
        else
                diag_table_set(ln, c, COL_SIZE, "%s", diag_format_size(s->size, buf, sizeof buf));
        if (sysv || s->kind == DIAG_SHM_POSIX) {
                diag_table_set(ln, c, COL_OWNER, "%s", user_name(s->uid, buf, sizeof buf));
                diag_table_set(ln, c, COL_PERMS, "%04o", s->mode & 0777);
        }
        if (sysv && seg_status(s))
                diag_table_set(ln, c, COL_STATUS, "%s", seg_status(s));
        diag_table_set(ln, c, COL_INODE, "%" PRIu64, s->inode);
        diag_table_set(ln, c, COL_FORMAT, "%s", s->format ? s->format : "");
        f = open_memstream(&att, &attlen);
        if (f) {
                for (size_t k = 0; k < s->natt; k++)
                        fprintf(f, "%s%d(%s) %s", k ? "\n" : "", s->att[k].pid, s->att[k].comm, s->att[k].perms);
                fclose(f);
                if (s->natt)
                        diag_table_set(ln, c, COL_ATTACHED, "%s", att);
                free(att);
        }
}

static int render_list(const struct diag_shm_list *l, const struct diag_mqueue *q, size_t nq, const char *mqdir) {
        struct libscols_table *tb;
        int r;

        if (arg.out.json && !arg.table) {
                json_object *doc = json_object_new_object(), *segs = json_object_new_array();
                json_object *mqs = json_object_new_array();
                for (size_t i = 0; i < l->n; i++)
                        json_object_array_add(segs, json_segment(&l->segs[i]));
                for (size_t i = 0; i < nq; i++)
                        json_object_array_add(mqs, json_mqueue(&q[i]));
                json_object_object_add(doc, "schema", json_object_new_string("shmdump/1"));
                json_object_object_add(doc, "segments", segs);
                json_object_object_add(doc, "mqueues", mqs);
                json_object_object_add(doc, "mqueue_dir", diag_json_str(mqdir));
                r = diag_json_print(stdout, doc);
                json_object_put(doc);
                return r;
        }
        tb = diag_table_new(&arg.cols, &arg.out, "segments");
        if (!tb)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                if (!ln)
                        break;
                seg_row(ln, &l->segs[i]);
        }
        r = diag_table_print(tb);
        scols_unref_table(tb);
        /* the queues follow the default table only: -o names segment columns */
        if (r == 0 && nq && !arg.table) {
                printf("\nPOSIX message queues (%s):\n", mqdir);
                printf("%-24s %10s %6s %5s %10s %-8s %5s\n", "NAME", "QSIZE", "NOTIFY", "SIGNO", "NOTIFY_PID", "OWNER", "PERMS");
                for (size_t i = 0; i < nq; i++) {
                        char owner[64];
                        printf("%-24s %10" PRIu64 " %6d %5d %10d %-8s %04o\n", q[i].name, q[i].qsize, q[i].notify,
                               q[i].signo, q[i].notify_pid, user_name(q[i].uid, owner, sizeof owner), q[i].mode);
                }
        }
        return r;
}

static int do_list(void) {
        _cleanup_(diag_shm_list_freep) struct diag_shm_list *l = NULL;
        struct diag_mqueue *q = NULL;
        _cleanup_free_ char *mqdir = NULL;
        size_t nq = 0;
        unsigned flags = DIAG_SHM_LIST_ATTACHERS;
        int r;

        if (!arg.table || diag_columns_pos(&arg.cols, COL_FORMAT) >= 0)
                flags |= DIAG_SHM_LIST_FORMAT;
        diag_watchdog_arm(60);
        diag_watchdog_phase("reading the shared mappings of every process");
        r = diag_shm_list(0, flags, &l);
        if (r < 0)
                return fail_errno(r, "error", 0, "failed to list shared memory segments: %m");
        r = diag_mqueue_list(&q, &nq, &mqdir);
        if (r < 0 && r != -ENOENT)
                log_warn("message queues not listed: %s", strerror(-r));
        diag_watchdog_phase("writing the output");
        r = render_list(l, q, nq, mqdir);
        diag_mqueue_free(q, nq);
        diag_watchdog_arm(0);
        if (r < 0)
                return DIAG_EXIT_FAILURE;
        if (l->denied) {
                const char *why = diag_ptrace_denied_reason();
                /* never "run as root" to root: why root itself was refused, as every tool says it */
                log_warn("%u process%s not readable: their mappings are not shown (%s%s)", l->denied,
                         l->denied == 1 ? "" : "es",
                         geteuid() != 0 ? "run as root or as their owner" : "refused even to root: ",
                         geteuid() != 0 ? "" : why ? why : "another user namespace, or a protected process");
                return DIAG_EXIT_PARTIAL;
        }
        return 0;
}

/* ---- one segment: decode, check, nodes ---- */

struct decoded {
        json_object *obj;               /* -J: this segment's object */
        int status;
};

static void summary_text(const struct diag_atbus *c) {
        printf("Summary:\n"
               "\tchannel layout: %s header\n"
               "\tchannel version: %u\n"
               "\tchannel align size: %u\n"
               "\tchannel host size: %u\n"
               "\tchannel node size: %" PRIu64 "\n"
               "\tchannel node count: %" PRIu64 "\n"
               "\tchannel using memory size: %" PRIu64 "\n"
               "\tchannel buffer size: %" PRIu64 "\n"
               "\tchannel used nodes: %" PRIu64 " (%" PRIu64 " bytes)\n"
               "\tchannel free nodes: %" PRIu64 " (%" PRIu64 " bytes), writable %" PRIu64 " after %" PRIu64 " protected\n"
               "\tchannel fill level: %.1f%% of %" PRIu64 " usable nodes\n\n",
               c->layout, c->version, c->align_size, c->host_size, c->node_size, c->node_count,
               c->area_end_offset - c->area_channel_offset, c->node_size * c->node_count,
               c->used_nodes, c->used_nodes * c->node_size, c->free_nodes, c->free_nodes * c->node_size,
               c->writable_nodes, c->protect_node_count, c->fill_pct, c->capacity_nodes);
        printf("Configure:\n"
               "\tsend timeout(ms): %" PRIu64 "\n"
               "\tprotect memory size(Bytes): %" PRIu64 "\n"
               "\tprotect node number: %" PRIu64 "\n"
               "\twrite retry times: %" PRIu64 "\n\n",
               c->send_timeout_ms, c->protect_memory_size, c->protect_node_count, c->write_retry_times);
        printf("IO:\n"
               "\tfirst waiting time: %" PRIu64 "\n"
               "\tread index: %" PRIu64 "\n"
               "\twrite index: %" PRIu64 "\n"
               "\toperation sequence: %u\n\n",
               c->first_failed_writing_time, c->read_cur, c->write_cur, c->operation_seq);
        printf("Statistics:\n"
               "\twrite - check sequence failed: %" PRIu64 "\n"
               "\twrite - retry times: %" PRIu64 "\n"
               "\tread - bad node: %" PRIu64 "\n"
               "\tread - bad block: %" PRIu64 "\n"
               "\tread - write timeout: %" PRIu64 "\n"
               "\tread - check block size failed: %" PRIu64 "\n"
               "\tread - check node count failed: %" PRIu64 "\n"
               "\tread - check hash failed: %" PRIu64 "\n",
               c->write_check_sequence_failed, c->write_retry, c->read_bad_node, c->read_bad_block,
               c->read_write_timeout, c->read_check_block_size_failed, c->read_check_node_size_failed,
               c->read_check_hash_failed);
}

static json_object *summary_json(const struct diag_atbus *c) {
        json_object *o = json_object_new_object(), *s = json_object_new_object(), *cf = json_object_new_object();
        json_object *io = json_object_new_object(), *st = json_object_new_object();

        json_object_object_add(s, "layout", json_object_new_string(c->layout));
        json_object_object_add(s, "version", json_object_new_int(c->version));
        json_object_object_add(s, "align_size", json_object_new_int(c->align_size));
        json_object_object_add(s, "host_size", json_object_new_int(c->host_size));
        json_object_object_add(s, "node_size", j_u64(c->node_size));
        json_object_object_add(s, "node_count", j_u64(c->node_count));
        json_object_object_add(s, "memory_size", j_u64(c->area_end_offset - c->area_channel_offset));
        json_object_object_add(s, "buffer_size", j_u64(c->node_size * c->node_count));
        json_object_object_add(s, "used_nodes", j_u64(c->used_nodes));
        json_object_object_add(s, "used_bytes", j_u64(c->used_nodes * c->node_size));
        json_object_object_add(s, "free_nodes", j_u64(c->free_nodes));
        json_object_object_add(s, "writable_nodes", j_u64(c->writable_nodes));
        json_object_object_add(s, "capacity_nodes", j_u64(c->capacity_nodes));
        json_object_object_add(s, "fill_pct", json_object_new_double(c->fill_pct));
        json_object_object_add(cf, "send_timeout_ms", j_u64(c->send_timeout_ms));
        json_object_object_add(cf, "protect_memory_size", j_u64(c->protect_memory_size));
        json_object_object_add(cf, "protect_node_count", j_u64(c->protect_node_count));
        json_object_object_add(cf, "write_retry_times", j_u64(c->write_retry_times));
        json_object_object_add(io, "first_failed_writing_time", j_u64(c->first_failed_writing_time));
        json_object_object_add(io, "read_cur", j_u64(c->read_cur));
        json_object_object_add(io, "write_cur", j_u64(c->write_cur));
        json_object_object_add(io, "operation_seq", j_u64(c->operation_seq));
        json_object_object_add(st, "write_check_sequence_failed", j_u64(c->write_check_sequence_failed));
        json_object_object_add(st, "write_retry", j_u64(c->write_retry));
        json_object_object_add(st, "read_bad_node", j_u64(c->read_bad_node));
        json_object_object_add(st, "read_bad_block", j_u64(c->read_bad_block));
        json_object_object_add(st, "read_write_timeout", j_u64(c->read_write_timeout));
        json_object_object_add(st, "read_check_block_size_failed", j_u64(c->read_check_block_size_failed));
        json_object_object_add(st, "read_check_node_count_failed", j_u64(c->read_check_node_size_failed));
        json_object_object_add(st, "read_check_hash_failed", j_u64(c->read_check_hash_failed));
        json_object_object_add(o, "summary", s);
        json_object_object_add(o, "configure", cf);
        json_object_object_add(o, "io", io);
        json_object_object_add(o, "statistics", st);
        return o;
}

static void check_text(const struct diag_atbus *c, const struct diag_atbus_check *k) {
        printf("\nCheck: %" PRIu64 " nodes from read index %" PRIu64 " to write index %" PRIu64 ": %" PRIu64
               " blocks, %" PRIu64 " good, %" PRIu64 " bytes",
               k->nodes_walked, c->read_cur, c->write_cur, k->blocks, k->good_blocks, k->bytes);
        if (k->good_blocks)
                printf(" (%" PRIu64 " to %" PRIu64 " each)", k->min_size, k->max_size);
        if (k->blocks)
                printf(", seq %u to %u, %" PRIu64 " gap%s", k->first_seq, k->last_seq, k->seq_gaps,
                       k->seq_gaps == 1 ? "" : "s");
        printf("%s\n", arg.hash ? "" : " (hashes not checked)");
        for (size_t i = 0; i < k->nreported; i++)
                printf("%s\n", k->anomalies[i].text);
        if (k->nanomalies > k->nreported)
                printf("... and %zu more (--max-report)\n", k->nanomalies - k->nreported);
        printf("%s: %zu anomal%s\n", k->nanomalies ? "FAILED" : "OK", k->nanomalies, k->nanomalies == 1 ? "y" : "ies");
}

static json_object *check_json(const struct diag_atbus_check *k) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        json_object_object_add(o, "nodes_walked", j_u64(k->nodes_walked));
        json_object_object_add(o, "blocks", j_u64(k->blocks));
        json_object_object_add(o, "good_blocks", j_u64(k->good_blocks));
        json_object_object_add(o, "bytes", j_u64(k->bytes));
        json_object_object_add(o, "min_size", k->good_blocks ? j_u64(k->min_size) : NULL);
        json_object_object_add(o, "max_size", k->good_blocks ? j_u64(k->max_size) : NULL);
        json_object_object_add(o, "first_seq", k->blocks ? j_u64(k->first_seq) : NULL);
        json_object_object_add(o, "last_seq", k->blocks ? j_u64(k->last_seq) : NULL);
        json_object_object_add(o, "seq_gaps", j_u64(k->seq_gaps));
        json_object_object_add(o, "hashes_checked", json_object_new_boolean(arg.hash));
        json_object_object_add(o, "anomaly_count", j_u64(k->nanomalies));
        for (size_t i = 0; i < k->nreported; i++) {
                const struct diag_atbus_anomaly *an = &k->anomalies[i];
                json_object *x = json_object_new_object();
                json_object_object_add(x, "kind", json_object_new_string(diag_atbus_anomaly_name(an->kind)));
                json_object_object_add(x, "node", j_u64(an->node));
                json_object_object_add(x, "block", j_u64(an->block));
                json_object_object_add(x, "seq", j_u64(an->seq));
                json_object_object_add(x, "block_seq", j_u64(an->block_seq));
                json_object_object_add(x, "text", json_object_new_string(an->text));
                json_object_array_add(a, x);
        }
        json_object_object_add(o, "anomalies", a);
        return o;
}

static bool node_live(const struct diag_atbus *c, uint64_t i) {
        return (i + c->node_count - c->read_cur) % c->node_count < c->used_nodes;
}

static int nodes_out(const struct diag_atbus *c, json_object *parent) {
        uint64_t from = arg.nodes_live ? c->read_cur : arg.node_from;
        uint64_t count = arg.nodes_live ? c->used_nodes :
                         (arg.node_to == UINT64_MAX || arg.node_to >= c->node_count ? c->node_count - 1 : arg.node_to) + 1 - from;
        struct libscols_table *tb = NULL;
        json_object *arr = NULL;
        int r = 0;

        if (!arg.nodes_live && from >= c->node_count)
                return log_error_errno(-ERANGE, "node %" PRIu64 " is past the last node %" PRIu64, from, c->node_count - 1);
        if (parent)
                arr = json_object_new_array();
        else if (!(tb = diag_table_new(&arg.cols, &arg.out, "nodes")))
                return -ENOMEM;
        for (uint64_t k = 0; k < count; k++) {
                uint64_t i = (from + k) % c->node_count;
                struct diag_atbus_node nd;
                const uint8_t *d;
                size_t nb;
                char hex[2 * NODE_DATA_BYTES + 1];
                uint32_t h = 0;
                bool hok = false;

                diag_atbus_node(c, i, &nd);
                d = nd.data + (nd.start ? c->block_head_size : 0);
                nb = MIN((size_t) NODE_DATA_BYTES, (size_t) (c->node_size - (nd.start ? c->block_head_size : 0)));
                if (nd.start)
                        nb = (size_t) MIN((uint64_t) nb, nd.size);
                hexbytes(d, nb, hex);
                if (nd.start && diag_atbus_block_hash(c, i, nd.size, &h))
                        hok = (uint64_t) h == nd.hash;
                if (arr) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "index", j_u64(i));
                        json_object_object_add(o, "seq", j_u64(nd.seq));
                        json_object_object_add(o, "flag", j_u64(nd.flag));
                        json_object_object_add(o, "start", json_object_new_boolean(nd.start));
                        json_object_object_add(o, "written", json_object_new_boolean(nd.written));
                        json_object_object_add(o, "length", nd.start ? j_u64(nd.size) : NULL);
                        json_object_object_add(o, "hash", nd.start ? diag_json_hex(nd.hash) : NULL);
                        json_object_object_add(o, "hash_ok", nd.start ? json_object_new_boolean(hok) : NULL);
                        json_object_object_add(o, "live", json_object_new_boolean(node_live(c, i)));
                        json_object_object_add(o, "data", json_object_new_string(hex));
                        json_object_array_add(arr, o);
                } else {
                        struct libscols_line *ln = scols_table_new_line(tb, NULL);
                        const struct diag_columns *cl = &arg.cols;
                        if (!ln)
                                break;
                        diag_table_set(ln, cl, NCOL_INDEX, "%" PRIu64, i);
                        diag_table_set(ln, cl, NCOL_SEQ, "%u", nd.seq);
                        diag_table_set(ln, cl, NCOL_START, "%s", nd.start ? "true" : "false");
                        diag_table_set(ln, cl, NCOL_WRITTEN, "%s", nd.written ? "true" : "false");
                        diag_table_set(ln, cl, NCOL_FLAG, "0x%x", nd.flag);
                        diag_table_set(ln, cl, NCOL_LIVE, "%s", node_live(c, i) ? "true" : "false");
                        diag_table_set(ln, cl, NCOL_DATA, "%s", hex);
                        if (nd.start) {
                                diag_table_set(ln, cl, NCOL_SIZE, "%" PRIu64, nd.size);
                                diag_table_set(ln, cl, NCOL_HASH, "0x%" PRIx64, nd.hash);
                                diag_table_set(ln, cl, NCOL_HASH_OK, "%s", hok ? "true" : "false");
                        }
                }
        }
        if (arr)
                json_object_object_add(parent, "nodes", arr);
        else {
                r = diag_table_print(tb);
                scols_unref_table(tb);
        }
        return r;
}

static void target_header(const struct diag_shm_target *t, uint64_t size) {
        printf("%s: %s, %" PRIu64 " bytes", t->name, diag_shm_kind_name(t->kind), size);
        if (t->kind == DIAG_SHM_SYSV)
                printf(", shmid %d", t->shmid);
        if (t->pid)
                printf(", read through pid %d at 0x%" PRIx64, t->pid, t->addr);
        printf("\n");
}

static json_object *target_json(const struct diag_shm_target *t, uint64_t size) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(t->name));
        json_object_object_add(o, "kind", json_object_new_string(diag_shm_kind_name(t->kind)));
        json_object_object_add(o, "id", t->kind == DIAG_SHM_SYSV ? json_object_new_int(t->shmid) : NULL);
        json_object_object_add(o, "pid", t->pid ? json_object_new_int(t->pid) : NULL);
        json_object_object_add(o, "address", t->pid ? diag_json_hex(t->addr) : NULL);
        json_object_object_add(o, "size", j_u64(size));
        return o;
}

static int struct_out(const struct diag_shm_target *t, const struct diag_shm_image *im, json_object *parent) {
        struct diag_struct_layout *l = NULL;
        int r = diag_struct_layout(arg.debug_file, arg.struct_type, im->data, im->len, &l);

        if (r == -ENOENT)
                return fail_errno(r, "error", 0, "%s: no struct, class, union or typedef '%s' in its DWARF", arg.debug_file,
                                  arg.struct_type);
        if (r == -ENODATA)
                return fail_errno(r, "error", 0, "%s: no DWARF (build with -g, or install its debug info)", arg.debug_file);
        if (r < 0)
                return fail_errno(r, "error", 0, "%s: cannot read its DWARF: %m", arg.debug_file);
        if (parent) {
                json_object *o = json_object_new_object(), *fs = json_object_new_array();
                json_object_object_add(o, "type", json_object_new_string(l->name));
                json_object_object_add(o, "size", j_u64(l->size));
                for (size_t i = 0; i < l->n; i++) {
                        json_object *f = json_object_new_object();
                        json_object_object_add(f, "name", json_object_new_string(l->fields[i].name));
                        json_object_object_add(f, "type", json_object_new_string(l->fields[i].type));
                        json_object_object_add(f, "offset", j_u64(l->fields[i].offset));
                        json_object_object_add(f, "size", j_u64(l->fields[i].size));
                        json_object_object_add(f, "value", diag_json_str(l->fields[i].value));
                        json_object_array_add(fs, f);
                }
                json_object_object_add(o, "fields", fs);
                json_object_object_add(parent, "struct", o);
        } else {
                printf("%s (%" PRIu64 " bytes) at offset 0 of %s:\n", l->name, l->size, t->name);
                for (size_t i = 0; i < l->n; i++)
                        printf("  %6" PRIu64 " %4" PRIu64 "  %-24s %s = %s\n", l->fields[i].offset, l->fields[i].size,
                               l->fields[i].type, l->fields[i].name, l->fields[i].value ? l->fields[i].value : "<outside the segment>");
        }
        if (l->size > im->len)
                log_warn("%s: %zu bytes, shorter than %s (%" PRIu64 " bytes)", t->name, im->len, l->name, l->size);
        diag_struct_layout_free(l);
        return 0;
}

#define HEAD_BYTES 4096         /* what a header needs; more is read only for what it claims */

/* A segment whose read failed, in a document of several: its entry says why. */
static void failed_entry(const struct diag_shm_target *t, json_object *jarr) {
        json_object *o = json_object_new_object(), *s = json_object_new_object(), *e = json_object_new_object();

        json_object_object_add(s, "name", json_object_new_string(t->name));
        json_object_object_add(s, "kind", json_object_new_string(diag_shm_kind_name(t->kind)));
        json_object_object_add(o, "segment", s);
        json_object_object_add(e, "message", json_object_new_string(failure.message));
        json_object_object_add(e, "reason", diag_json_str(failure.reason));
        json_object_object_add(o, "error", e);
        json_object_array_add(jarr, o);
}

/* Decode one segment, t, reading its bytes from src (t itself, or the copy
 * --save just wrote); appends its JSON object to jarr with -J. Only the header
 * is read, then, for --check and --nodes, the bytes the header claims. */
static int decode_one(const struct diag_shm_target *t, const struct diag_shm_target *src, json_object *jarr,
                      bool first) {
        struct diag_shm_image im = {};
        struct diag_atbus c;
        char err[256] = "";
        const char *fmt;
        json_object *o = NULL;
        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC), t1, t2;
        int r, status = 0;

        diag_watchdog_phase("copying the segment");
        /* --struct: the struct may be as long as the segment */
        r = diag_shm_view(src, MAX_SEGMENT, arg.struct_type ? 0 : HEAD_BYTES, &im);
        if (r < 0) {
                status = read_failed(r, t->name, "read the segment");
                if (jarr)
                        failed_entry(t, jarr);
                return status;
        }
        fmt = arg.format ? arg.format : diag_shm_detect(im.data, im.len);
        r = -ENOMSG;
        if (fmt && strcmp(fmt, "libatbus") == 0) {
                r = diag_atbus_parse_header(im.data, im.len, im.size, &c, err, sizeof err);
                if (r == 0 && !c.base && (arg.check || arg.nodes)) {
                        uint64_t need = c.area_end_offset;
                        diag_shm_image_clear(&im);
                        if (need > MAX_SEGMENT)
                                r = -EFBIG;
                        else
                                r = diag_shm_view(src, MAX_SEGMENT, (size_t) need, &im);
                        if (r < 0) {
                                status = read_failed(r, t->name, "read the segment");
                                if (jarr)
                                        failed_entry(t, jarr);
                                return status;
                        }
                        r = diag_atbus_parse_header(im.data, im.len, im.size, &c, err, sizeof err);
                        if (r == 0 && !c.base) {
                                snprintf(err, sizeof err, "the segment changed while it was read (now %" PRIu64 " bytes)",
                                         im.size);
                                r = -EBADMSG;
                        }
                }
        } else      /* say why: no magic, or a channel too short for its header */
                (void) diag_atbus_parse_header(im.data, im.len, im.size, &c, err, sizeof err);
        t1 = diag_now_ns(CLOCK_MONOTONIC);
        if (jarr) {
                o = json_object_new_object();
                json_object_object_add(o, "segment", target_json(t, im.size));
                json_object_array_add(jarr, o);
        } else if (!arg.out.json && !arg.table) {
                if (!first)
                        printf("\n");
                target_header(t, im.size);
        }
        if (arg.struct_type) {
                status = struct_out(t, &im, o);
                if (!arg.check && !arg.nodes)
                        goto out;
        }
        if (o)
                json_object_object_add(o, "format", diag_json_str(fmt));
        if (r < 0) {
                log_error("%s: not a libatbus channel: %s%s", t->name, err,
                          strstr(err, "no ATBUSMEM") ? " (no format shmdump decodes)" : "");
                if (o)
                        json_object_object_add(o, "error", json_object_new_string(err));
                status = EXIT_UNDECODABLE;
                goto out;
        }
        if (o)
                json_object_object_add(o, "channel", summary_json(&c));
        else if (!arg.out.json && (!arg.nodes || arg.check))
                summary_text(&c);
        if (arg.check) {
                struct diag_atbus_check k;
                diag_watchdog_phase("checking the channel");
                r = diag_atbus_check(&c, arg.hash, arg.max_report, &k);
                if (r < 0) {
                        log_error_errno(r, "%s: check failed: %m", t->name);
                        status = DIAG_EXIT_FAILURE;
                        goto out;
                }
                t2 = diag_now_ns(CLOCK_MONOTONIC);
                log_debug("%s: %s %zu bytes in %.2f ms, decoded and checked %" PRIu64 " nodes in %.2f ms",
                          t->name, im.attached ? "attached" : "copied", im.len, (double) (t1 - t0) / 1e6, k.nodes_walked,
                          (double) (t2 - t1) / 1e6);
                if (o)
                        json_object_object_add(o, "check", check_json(&k));
                else
                        check_text(&c, &k);
                if (k.nanomalies)
                        status = EXIT_ANOMALIES;
                diag_atbus_check_clear(&k);
        }
        if (arg.nodes) {
                if (!o && arg.check)
                        printf("\n");
                r = nodes_out(&c, o);
                if (r < 0 && !status)
                        status = DIAG_EXIT_FAILURE;
        }
out:
        diag_shm_image_clear(&im);
        return status;
}

/* ---- --save ---- */

static int do_save(const struct diag_shm_target *t, json_object *jarr) {
        uint64_t bytes = 0;
        int r;

        diag_watchdog_phase("saving the segment");
        r = diag_shm_save(t, arg.save, &interrupted, &bytes);
        if (r == -ECANCELED) {
                int sig = interrupted ? interrupted : SIGINT;
                fail_errno(r, "interrupted", 0, "%s: interrupted by SIG%s: nothing saved", arg.save, sigabbrev_np(sig));
                return 128 + sig;
        }
        if (r == -ETIMEDOUT || r == -ESTALE)
                return read_failed(r, t->name, "read the segment");
        if (r < 0)
                return fail_errno(r, "error", 0, "failed to save %s to %s: %m", t->name, arg.save);
        if (jarr) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "segment", target_json(t, bytes));
                json_object_array_add(jarr, o);
        } else
                fprintf(stderr, "%s: %s: %" PRIu64 " bytes saved to %s\n", diag_progname(), t->name, bytes, arg.save);
        return 0;
}

/* ---- --watch ---- */

struct sample {
        bool ok;
        uint64_t t_ms;
        struct diag_shm_image im;
        struct diag_atbus c;
};

static void print_watch(const struct diag_shm_target *t, const struct sample *prev, const struct sample *cur,
                        uint64_t stuck_ms, bool writer_blocked) {
        const struct diag_atbus *c = &cur->c, *p = &prev->c;
        double dt = (double) (cur->t_ms - prev->t_ms) / 1000.0;
        uint64_t wb = 0, wbytes = 0, rb = 0, rbytes = 0, rb2 = 0, rbytes2 = 0;
        uint64_t n = c->node_count;
        uint64_t radv = (c->read_cur + n - p->read_cur) % n, pw = (p->write_cur + n - p->read_cur) % n;
        bool moving = c->read_cur != p->read_cur;
        char ts[16], s1[DIAG_SIZE_MAX], s2[DIAG_SIZE_MAX], state[160], dur[DIAG_DURATION_MAX];
        time_t now = time(NULL);
        struct tm tm;

        /* written: the blocks that start between the old and the new write cursor;
         * read: those the reader passed, from the snapshot that still held them */
        diag_atbus_count_blocks(c, p->write_cur, c->write_cur, &wb, &wbytes);
        if (radv <= pw)
                diag_atbus_count_blocks(p, p->read_cur, c->read_cur, &rb, &rbytes);
        else {
                diag_atbus_count_blocks(p, p->read_cur, p->write_cur, &rb, &rbytes);
                diag_atbus_count_blocks(c, p->write_cur, c->read_cur, &rb2, &rbytes2);
                rb += rb2;
                rbytes += rbytes2;
        }
        if (dt <= 0)
                dt = 1e-3;
        if (moving)
                snprintf(state, sizeof state, "reader moving");
        else if (!c->used_nodes)
                snprintf(state, sizeof state, "ring empty, reader waiting");
        else
                snprintf(state, sizeof state, "reader stuck for %s while writer %s",
                         diag_format_duration(stuck_ms, dur, sizeof dur),
                         writer_blocked ? "blocked" : c->write_cur != p->write_cur ? "writes" : "idle");
        if (arg.out.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "schema", json_object_new_string("shmdump/1"));
                json_object_object_add(o, "time", json_object_new_int64((int64_t) now));
                json_object_object_add(o, "segment", json_object_new_string(t->name));
                json_object_object_add(o, "interval_ms", j_u64(cur->t_ms - prev->t_ms));
                json_object_object_add(o, "write_msgs_per_s", json_object_new_double((double) wb / dt));
                json_object_object_add(o, "write_bytes_per_s", json_object_new_double((double) wbytes / dt));
                json_object_object_add(o, "read_msgs_per_s", json_object_new_double((double) rb / dt));
                json_object_object_add(o, "read_bytes_per_s", json_object_new_double((double) rbytes / dt));
                json_object_object_add(o, "fill_pct", json_object_new_double(c->fill_pct));
                json_object_object_add(o, "used_nodes", j_u64(c->used_nodes));
                json_object_object_add(o, "read_cur", j_u64(c->read_cur));
                json_object_object_add(o, "write_cur", j_u64(c->write_cur));
                json_object_object_add(o, "operation_seq", j_u64(c->operation_seq));
                json_object_object_add(o, "reader_moving", json_object_new_boolean(moving));
                json_object_object_add(o, "reader_stuck_ms", !moving && c->used_nodes ? j_u64(stuck_ms) : NULL);
                json_object_object_add(o, "writer_blocked", json_object_new_boolean(writer_blocked));
                json_object_object_add(o, "state", json_object_new_string(state));
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else {
                localtime_r(&now, &tm);
                strftime(ts, sizeof ts, "%H:%M:%S", &tm);
                printf("%s  write %.0f msg/s %s/s  read %.0f msg/s %s/s  fill %.1f%% (%" PRIu64 " nodes)  %s\n", ts,
                       (double) wb / dt, diag_format_size((uint64_t) ((double) wbytes / dt), s1, sizeof s1),
                       (double) rb / dt, diag_format_size((uint64_t) ((double) rbytes / dt), s2, sizeof s2),
                       c->fill_pct, c->used_nodes, state);
        }
        fflush(stdout);
}

static int take_sample(const struct diag_shm_target *t, struct sample *s) {
        char err[256];
        int r;

        diag_shm_image_clear(&s->im);
        s->ok = false;
        diag_watchdog_arm(60);
        diag_watchdog_phase("copying the segment");
        r = diag_shm_snapshot(t, MAX_SEGMENT, &s->im);
        diag_watchdog_arm(0);
        if (r < 0)
                return read_failed(r, t->name, "read the segment");
        s->t_ms = diag_now_ns(CLOCK_MONOTONIC) / 1000000;
        r = diag_atbus_parse(s->im.data, s->im.len, &s->c, err, sizeof err);
        if (r < 0) {
                log_error("%s: not a libatbus channel: %s", t->name, err);
                return EXIT_UNDECODABLE;
        }
        s->ok = true;
        return 0;
}

static int do_watch(const struct diag_shm_target *t) {
        struct sample a = {}, b = {}, *prev = &a, *cur = &b, *tmp;
        uint64_t stuck_since = 0, samples = 0;
        int r;

        r = take_sample(t, prev);
        stuck_since = prev->t_ms;
        while (r == 0 && !interrupted && (!arg.count || samples < arg.count)) {
                struct timespec ts = { .tv_sec = (time_t) (arg.interval_ms / 1000),
                                       .tv_nsec = (long) (arg.interval_ms % 1000) * 1000000L };
                bool blocked;

                while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !interrupted)
                        ;
                if (interrupted)
                        break;
                r = take_sample(t, cur);
                if (r)
                        break;
                if (cur->c.node_count != prev->c.node_count) {
                        log_error("%s: the channel was re-initialised (node count changed)", t->name);
                        r = EXIT_UNDECODABLE;
                        break;
                }
                if (cur->c.read_cur != prev->c.read_cur || !cur->c.used_nodes)
                        stuck_since = cur->t_ms;
                /* the writer tries and fails (each try takes a sequence number), or has no room */
                blocked = cur->c.write_cur == prev->c.write_cur &&
                          (cur->c.operation_seq != prev->c.operation_seq || cur->c.writable_nodes == 0);
                print_watch(t, prev, cur, cur->t_ms - stuck_since, blocked);
                samples++;
                tmp = prev;
                prev = cur;
                cur = tmp;
        }
        diag_shm_image_clear(&a.im);
        diag_shm_image_clear(&b.im);
        return r;
}

/* ---- main ---- */

static void usage(void) {
        printf("Usage:\n"
               " %1$s [options]                 every shared memory segment and message queue\n"
               " %1$s [options] SEGMENT...      decode the channel in each segment\n"
               "\n"
               "Shared memory segments (SysV, POSIX, memfd, anonymous shared), the processes\n"
               "that map them, and the libatbus channels inside them: summary, --check of every\n"
               "block, --nodes, --watch; any header as a C struct from DWARF. Read-only.\n"
               "\n"
               "SEGMENT is key:KEY (hex 0x3039 or decimal), id:SHMID, pid:PID (every shared\n"
               "mapping of that process), memfd:NAME, anon:INODE or ipc:NS:id:N (another IPC\n"
               "namespace), as the list names them, or a file: /dev/shm/NAME, a --save copy.\n"
               "\n"
               "Options:\n"
               " -c, --check              walk every block from the read to the write cursor:\n"
               "                          flags, sequence, size, node count, hash (exit 3 on anomalies)\n"
               "     --no-hash            --check without hashing the payloads\n"
               "     --max-report N       print at most N anomalies (default 20)\n"
               " -N, --nodes RANGE        dump nodes: N, N-M, N- (to the last) or 'live' (read to write)\n"
               " -w, --watch [INTERVAL]   every INTERVAL (default 1s): messages/s, bytes/s, fill,\n"
               "                          whether the reader moves\n"
               "     --count N            --watch: stop after N samples\n"
               "     --save FILE          write a copy of the segment to FILE (new, mode 0600; named\n"
               "                          only when complete: a kill or Ctrl-C leaves nothing)\n"
               "     --struct TYPE        print the segment's start as C struct TYPE ...\n"
               "     --debug-file BINARY  ... laid out by the DWARF of BINARY\n"
               "     --format NAME        decode as NAME (libatbus) whatever the magic says\n",
               diag_progname());
        diag_outopts_help(stdout);
        printf(" -v, --verbose            say how long the copy and the check took (stderr)\n"
               " -h, --help               display this help\n"
               " -V, --version            display version\n"
               "\nSegment list columns (-o):\n");
        diag_columns_list(stdout, seg_columns, ELEMENTSOF(seg_columns), false);
        printf("\nNode columns (-o with --nodes):\n");
        diag_columns_list(stdout, node_columns, ELEMENTSOF(node_columns), false);
        printf("\n"
               "Exit status: 0 ok, 1 failure, 2 bad usage, 3 --check found anomalies,\n"
               "4 some processes could not be read, 5 not a channel shmdump can decode,\n"
               "128+signal --save interrupted (nothing saved). A file that does not answer\n"
               "within 4 s (a dead NFS or FUSE mount) is a failure, said in one line.\n"
               "\n"
               "Examples:\n"
               " %1$s                                 every segment, who maps it, its format\n"
               " %1$s key:0x3039                      the channel's summary, configuration, IO, statistics\n"
               " %1$s --check key:0x3039              verify every live block\n"
               " %1$s --nodes 100-120 /dev/shm/bus    nodes 100 to 120\n"
               " %1$s --watch 2 key:0x3039            rates and a stuck reader, every 2 s\n"
               " %1$s --save /var/tmp/bus.shm key:0x3039 && %1$s --check /var/tmp/bus.shm\n"
               " %1$s --struct my_shm_header --debug-file /usr/bin/svc id:42\n"
               "\n"
               "See shmdump(1).\n", diag_progname());
}

static int parse_range(const char *s) {
        unsigned long long a, b;
        const char *dash;
        char left[32];

        if (strcmp(s, "live") == 0) {
                arg.nodes_live = true;
                return 0;
        }
        dash = strchr(s, '-');
        if (!dash)
                return diag_parse_ull(s, 10, &a) < 0 ? -EINVAL : (arg.node_from = arg.node_to = a, 0);
        if ((size_t) (dash - s) >= sizeof left || dash == s)
                return -EINVAL;
        memcpy(left, s, (size_t) (dash - s));
        left[dash - s] = 0;
        if (diag_parse_ull(left, 10, &a) < 0)
                return -EINVAL;
        if (!dash[1])
                b = UINT64_MAX;
        else if (diag_parse_ull(dash + 1, 10, &b) < 0 || b < a)
                return -EINVAL;
        arg.node_from = a;
        arg.node_to = b;
        return 0;
}

/* With several segments the worst outcome decides: failure, undecodable, anomalies. */
static int status_rank(int s) {
        switch (s) {
        case 0: return 0;
        case EXIT_ANOMALIES: return 1;
        case EXIT_UNDECODABLE: return 2;
        default: return 3;
        }
}

enum { OPT_NO_HASH = 0x100, OPT_MAX_REPORT, OPT_COUNT, OPT_SAVE, OPT_STRUCT, OPT_DEBUG_FILE, OPT_FORMAT };

static int push_target(struct diag_shm_target *t, struct diag_shm_target **ts, size_t *n, size_t *alloc) {
        if (DIAG_GROW(*ts, *alloc, *n + 1) < 0) {
                diag_shm_target_clear(t);
                return fail_errno(-ENOMEM, "error", 0, "out of memory");
        }
        (*ts)[(*n)++] = *t;
        return 0;
}

/* memfd:NAME, anon:INODE and ipc:NS:id:N (a SysV segment of another IPC namespace)
 * exist here only as mappings: find them in every process's maps. */
static int find_mapped(const char *name, struct diag_shm_target **ts, size_t *n, size_t *alloc) {
        _cleanup_(diag_shm_list_freep) struct diag_shm_list *l = NULL;
        const struct diag_shm_seg *found = NULL;
        size_t matches = 0;
        struct diag_shm_target t;
        int r = diag_shm_list(0, DIAG_SHM_LIST_ATTACHERS, &l);

        if (r < 0)
                return fail_errno(r, "error", 0, "failed to list shared memory segments: %m");
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->segs[i].name, name) == 0 && matches++ == 0)
                        found = &l->segs[i];
        if (!found)
                return fail_errno(-ENOENT, "error", 0, "no process maps %s%s", name,
                                  l->denied ? " (some processes could not be read)" : "");
        if (matches > 1)
                return fail_errno(-ENOTUNIQ, "error", 0, "%zu segments are called %s: name one with pid:PID", matches, name);
        r = diag_shm_seg_target(found, true, &t);
        if (r < 0)
                return fail_errno(r, "error", 0, "%s: %m", name);
        return push_target(&t, ts, n, alloc);
}

/* Segments named on the command line; pid:PID stands for every shared mapping of it. */
static int add_targets(const char *name, struct diag_shm_target **ts, size_t *n, size_t *alloc) {
        if (strncmp(name, "memfd:", 6) == 0 || strncmp(name, "anon:", 5) == 0 || strncmp(name, "ipc:", 4) == 0)
                return find_mapped(name, ts, n, alloc);
        if (strncmp(name, "pid:", 4) == 0) {
                _cleanup_(diag_shm_list_freep) struct diag_shm_list *l = NULL;
                pid_t pid;
                int r;
                struct diag_target tg;
                char msg[256];

                if (diag_parse_pid(name + 4, &pid) < 0)
                        return diag_usage_error("invalid process id: '%s'", name);
                /* a thread id names its process; gone, zombie, kernel thread: said as every tool says it */
                diag_target_resolve(pid, &tg);
                r = tg.kind == DIAG_TARGET_LIVE ? diag_shm_list(tg.pid, 0, &l) : 0;
                if (tg.kind != DIAG_TARGET_LIVE || r == -ESRCH || r == -EACCES || r == -EPERM)
                        return fail_errno(r, diag_target_reason(&tg, r), tg.pid, "%s",
                                          diag_target_message(&tg, r, "read the shared mappings of", msg, sizeof msg));
                pid = tg.pid;
                if (r < 0)
                        return fail_errno(r, "error", pid, "cannot read the mappings of %d: %m", pid);
                if (!l->n)
                        return fail_errno(-ENOENT, "no-shared-memory", pid, "process %d maps no shared memory", pid);
                for (size_t i = 0; i < l->n; i++) {
                        struct diag_shm_target t;
                        r = diag_shm_seg_target(&l->segs[i], false, &t);
                        if (r < 0)
                                return fail_errno(r, "error", 0, "%s: %m", l->segs[i].name);
                        if ((r = push_target(&t, ts, n, alloc)))
                                return r;
                }
                return 0;
        } else {
                struct diag_shm_target t;
                int r = diag_shm_resolve(name, &t);
                if (r == -EINVAL && (strncmp(name, "key:", 4) == 0 || strncmp(name, "id:", 3) == 0))
                        return diag_usage_error("invalid segment name: '%s'", name);
                if (r == -ENOENT && strncmp(name, "key:", 4) == 0)
                        return fail_errno(r, "error", 0, "no SysV segment with key %s", name + 4);
                if (r == -ENOENT && strncmp(name, "id:", 3) == 0)
                        return fail_errno(r, "error", 0, "no SysV segment with id %s", name + 3);
                if (r == -EINVAL)
                        return fail_errno(r, "error", 0, "%s: not a regular file", name);
                if (r == -ETIMEDOUT)
                        return read_failed(r, name, "open it");
                if (r < 0)
                        return fail_errno(r, "error", 0, "%s: %m", name);
                return push_target(&t, ts, n, alloc);
        }
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                DIAG_OUT_LONGOPTS,
                DIAG_STD_LONGOPTS,
                { "check",      no_argument,       NULL, 'c' },
                { "no-hash",    no_argument,       NULL, OPT_NO_HASH },
                { "max-report", required_argument, NULL, OPT_MAX_REPORT },
                { "nodes",      required_argument, NULL, 'N' },
                { "watch",      optional_argument, NULL, 'w' },
                { "count",      required_argument, NULL, OPT_COUNT },
                { "save",       required_argument, NULL, OPT_SAVE },
                { "struct",     required_argument, NULL, OPT_STRUCT },
                { "debug-file", required_argument, NULL, OPT_DEBUG_FILE },
                { "format",     required_argument, NULL, OPT_FORMAT },
                {}
        };
        const char *output = NULL;
        bool output_all = false, list_columns = false;
        _cleanup_free_ char *badcol = NULL;
        struct diag_shm_target *ts = NULL;
        size_t nts = 0, tsalloc = 0;
        json_object *doc = NULL, *jarr = NULL;
        long long v;
        int c, r, status = 0;

        diag_log_init(argv[0]);
        argv[0] = (char *) diag_progname();
        while ((c = getopt_long(argc, argv, DIAG_OUT_SHORTOPTS "cN:w::" DIAG_STD_SHORTOPTS, longopts, NULL)) != -1) {
                if (diag_common_option(c, optarg, &arg.out, &output, &output_all, &list_columns, usage, &r)) {
                        if (r >= 0)
                                return r;
                        continue;
                }
                switch (c) {
                case 'c': arg.check = true; break;
                case OPT_NO_HASH: arg.hash = false; break;
                case OPT_MAX_REPORT:
                        if (diag_parse_ll(optarg, 10, 0, 1000000, &v) < 0)
                                return diag_usage_error("invalid --max-report: '%s'", optarg);
                        arg.max_report = (size_t) v;
                        break;
                case 'N':
                        if (parse_range(optarg) < 0)
                                return diag_usage_error("invalid node range: '%s' (N, N-M, N- or live)", optarg);
                        arg.nodes = true;
                        break;
                case 'w':
                        arg.watch = true;
                        /* "--watch 2": the interval may also be the next word */
                        if (!optarg && optind < argc && diag_parse_duration_ms(argv[optind], &arg.interval_ms) == 0)
                                optind++;
                        else if (optarg && diag_parse_duration_ms(optarg, &arg.interval_ms) < 0)
                                return diag_usage_error("invalid interval: '%s'", optarg);
                        if (arg.interval_ms < 10)
                                return diag_usage_error("interval too short (at least 10ms)");
                        break;
                case OPT_COUNT:
                        if (diag_parse_ll(optarg, 10, 1, INT64_MAX, &v) < 0)
                                return diag_usage_error("invalid --count: '%s'", optarg);
                        arg.count = (uint64_t) v;
                        break;
                case OPT_SAVE: arg.save = optarg; break;
                case OPT_STRUCT: arg.struct_type = optarg; break;
                case OPT_DEBUG_FILE: arg.debug_file = optarg; break;
                case OPT_FORMAT:
                        if (strcmp(optarg, "libatbus") != 0)
                                return diag_usage_error("unknown format: '%s' (known: libatbus)", optarg);
                        arg.format = optarg;
                        break;
                default:
                        return diag_usage_error("unexpected option");
                }
        }
        if (list_columns) {
                if (arg.nodes)
                        diag_columns_list(stdout, node_columns, ELEMENTSOF(node_columns), arg.out.json);
                else
                        diag_columns_list(stdout, seg_columns, ELEMENTSOF(seg_columns), arg.out.json);
                return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : 0;
        }
        if (!!arg.struct_type != !!arg.debug_file)
                return diag_usage_error("--struct and --debug-file go together");
        if (arg.watch && (arg.check || arg.nodes || arg.save || arg.struct_type))
                return diag_usage_error("--watch goes with no --check, --nodes, --save or --struct");
        if (optind == argc && (arg.check || arg.nodes || arg.watch || arg.save || arg.struct_type || arg.format))
                return diag_usage_error("this option needs a SEGMENT");
        if (arg.save && argc - optind > 1)
                return diag_usage_error("--save takes one SEGMENT");
        if (arg.count && !arg.watch)
                return diag_usage_error("--count goes with --watch");
        arg.table = output || output_all || arg.out.raw || arg.out.noheadings;
        if (arg.nodes || optind == argc) {
                r = arg.nodes ? diag_columns_select(&arg.cols, node_columns, ELEMENTSOF(node_columns), node_default,
                                                    ELEMENTSOF(node_default), "SHMDUMP_NODE_COLUMNS", output, output_all, &badcol)
                              : diag_columns_select(&arg.cols, seg_columns, ELEMENTSOF(seg_columns), seg_default,
                                                    ELEMENTSOF(seg_default), "SHMDUMP_COLUMNS", output, output_all, &badcol);
                if (r < 0)
                        return diag_usage_error("unknown column: '%s'", badcol ? badcol : "?");
        } else if (arg.table)
                return diag_usage_error("-o, --output-all, -r and -n apply to the segment list and --nodes");

        if (optind == argc) {
                status = do_list();
                if (status == DIAG_EXIT_FAILURE && arg.out.json && failure.set)
                        (void) diag_json_error(stdout, failure.message, failure.reason, failure.pid, status);
                return diag_close_stdout() < 0 ? DIAG_EXIT_FAILURE : status;
        }
        for (int i = optind; i < argc; i++) {
                r = add_targets(argv[i], &ts, &nts, &tsalloc);
                if (r) {
                        status = r;
                        goto done;
                }
        }
        if (arg.save && nts != 1) {
                status = diag_usage_error("--save takes one segment (pid:%s names %zu)", argv[optind] + 4, nts);
                goto done;
        }
        /* --watch ends on these (exit 0), --save cleans up and exits 128+signal;
         * a plain decode simply dies: it leaves nothing */
        if (arg.watch || arg.save) {
                static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
                struct sigaction sa = { .sa_handler = on_signal }, old;    /* no SA_RESTART: a write returns */
                /* One ignored when we started stays ignored: nohup(1), a background job. */
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
                                sigaction(sigs[i], &sa, NULL);
        }
        if (arg.watch) {
                if (nts != 1) {
                        status = diag_usage_error("--watch takes one segment");
                        goto done;
                }
                status = do_watch(&ts[0]);
                goto done;
        }
        if (arg.out.json && !(arg.nodes && arg.table)) {
                doc = json_object_new_object();
                jarr = json_object_new_array();
                json_object_object_add(doc, "schema", json_object_new_string("shmdump/1"));
                json_object_object_add(doc, "decoded", jarr);
        }
        if (arg.save) {
                status = do_save(&ts[0], jarr);
                if (status || !(arg.check || arg.nodes || arg.struct_type))
                        goto print;
        }
        diag_watchdog_arm(60);
        for (size_t i = 0; i < nts; i++) {
                /* after --save, decode the copy: what was saved is what is checked */
                struct diag_shm_target copy = { .kind = DIAG_SHM_FILE, .shmid = -1, .path = (char *) arg.save };
                r = decode_one(&ts[i], arg.save ? &copy : &ts[i], jarr, i == 0);
                if (status_rank(r) > status_rank(status))
                        status = r;
        }
        diag_watchdog_arm(0);
print:
        /* a whole run that failed (one segment, unreadable): the error object, not a document */
        if (doc && nts == 1 && status != 0 && failure.set) {
                json_object_put(doc);
                doc = NULL;
        }
        if (doc && diag_json_print(stdout, doc) < 0)
                status = DIAG_EXIT_FAILURE;
done:
        if (arg.out.json && !doc && failure.set && status != 0)
                (void) diag_json_error(stdout, failure.message, failure.reason, failure.pid, status);
        json_object_put(doc);
        for (size_t i = 0; i < nts; i++)
                diag_shm_target_clear(&ts[i]);
        free(ts);
        if (diag_close_stdout() < 0)
                return DIAG_EXIT_FAILURE;
        return status;
}
