/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * diag-record's model: one *interval* is a set of tables read at one instant
 * (host, disks, network interfaces, cgroups, processes, D-state threads, events).
 * Every table is rows of string and integer columns; a table's schema names its
 * columns and which of them form the row's key. Rows are kept sorted by key
 * (strings compared with strcmp, then integers), which the codec relies on.
 *
 *   sampler (rec-sample.c)   /proc, cgroupfs, /dev/kmsg -> interval
 *   codec   (rec-codec.c)    interval <-> bytes, deltas against the previous interval
 *   store   (recstore.c)     bytes -> zstd frames in a ring of segment files, and back
 *   trigger (rec-trigger.c)  trigger specs, PSI trigger fds, checks against intervals
 *
 * Integers are int64_t. A value that could not be read is DIAG_REC_NA. Counters are
 * stored as read (cumulative since boot or since the process started); deltas are the
 * codec's business, rates the reader's.
 *
 * Strings are interned (struct diag_rec_strings): a row holds uint32_t ids. Id 0 is
 * always the empty string. The recorder's interner lives as long as the recording
 * chain; the decoder's is rebuilt from the frames it reads.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DIAG_REC_NA INT64_MIN

enum diag_rec_table_id {
        DIAG_REC_HOST = 0,      /* exactly one row */
        DIAG_REC_DISK,
        DIAG_REC_NET,
        DIAG_REC_CGROUP,
        DIAG_REC_PROC,
        DIAG_REC_DSTATE,
        DIAG_REC_EVENT,         /* what happened since the previous interval; never delta-coded */
        DIAG_REC_NTABLES,
};

/* Host: /proc/stat, /proc/loadavg, /proc/meminfo, /proc/vmstat, /proc/pressure/ (all
 * cumulative counters as read; PSI "total=" in microseconds). */
enum {
        H_CPU_USER, H_CPU_NICE, H_CPU_SYSTEM, H_CPU_IDLE, H_CPU_IOWAIT, H_CPU_IRQ,
        H_CPU_SOFTIRQ, H_CPU_STEAL,                     /* USER_HZ ticks, all CPUs */
        H_NCPU, H_CLK_TCK,
        H_LOAD1, H_LOAD5, H_LOAD15,                     /* loadavg x 1000 */
        H_PROCS_RUNNING, H_PROCS_BLOCKED, H_NR_THREADS, H_NR_PROCS,
        H_MEM_TOTAL, H_MEM_FREE, H_MEM_AVAIL, H_BUFFERS, H_CACHED, H_SWAP_TOTAL,
        H_SWAP_FREE, H_DIRTY, H_WRITEBACK, H_SHMEM, H_ANON,       /* bytes */
        H_PGFAULT, H_PGMAJFAULT, H_PGSCAN, H_PGSTEAL, H_PSWPIN, H_PSWPOUT, H_OOM_KILL,
        H_CTXT, H_FORKS,
        H_PSI_CPU_SOME, H_PSI_CPU_FULL, H_PSI_MEM_SOME, H_PSI_MEM_FULL,
        H_PSI_IO_SOME, H_PSI_IO_FULL,                   /* total= microseconds */
        H__N
};
/* Disks (whole disks of /proc/diskstats). Key: name. */
enum { DK_NAME, DK__NS };
enum { DK_RD_IOS, DK_RD_SECTORS, DK_WR_IOS, DK_WR_SECTORS, DK_IO_MS, DK_INFLIGHT, DK_WEIGHTED_MS, DK__N };
/* Network interfaces (/proc/net/dev). Key: name. */
enum { NT_NAME, NT__NS };
enum { NT_RX_BYTES, NT_RX_PACKETS, NT_RX_ERRS, NT_RX_DROP, NT_TX_BYTES, NT_TX_PACKETS, NT_TX_ERRS,
       NT_TX_DROP, NT__N };
/* Cgroups, v1 and v2. Key: path (relative to the hierarchy's root, "/" for the root)
 * then version ("v1" or "v2"). In v1 the controllers' hierarchies are merged by path. */
enum { CG_PATH, CG_VERSION, CG__NS };
enum {
        CG_MEM_CURRENT, CG_MEM_LIMIT,                   /* bytes; limit 0 = none */
        CG_MEM_FAILCNT,                                 /* v1 memory.failcnt */
        CG_MEM_HIGH_EVENTS, CG_MEM_MAX_EVENTS, CG_MEM_OOM, CG_MEM_OOM_KILL,  /* memory.events (v1: oom_control) */
        CG_IO_RBYTES, CG_IO_WBYTES, CG_IO_RIOS, CG_IO_WIOS,
        CG_CPU_USAGE_US, CG_CPU_PERIODS, CG_CPU_THROTTLED, CG_CPU_THROTTLED_US,
        CG_PSI_CPU_SOME, CG_PSI_MEM_SOME, CG_PSI_MEM_FULL, CG_PSI_IO_SOME, CG_PSI_IO_FULL,  /* v2 only */
        CG_NPROCS,                                      /* processes of the recording in it */
        CG__N
};
/* Processes. Key: pid, start (so that a reused pid is another row). CMD is the
 * command line, arguments joined by spaces, at most DIAG_REC_CMD_MAX bytes; CGROUP
 * the path of the process's memory cgroup (v1 memory line, else the v2 "0::" line). */
enum { PR_COMM, PR_CMD, PR_CGROUP, PR__NS };
enum {
        PR_PID, PR_START,                               /* start: ticks after boot (stat field 22) */
        PR_PPID, PR_UID, PR_STATE,                      /* state: the letter as a number */
        PR_UTIME, PR_STIME,                             /* ticks */
        PR_RSS, PR_VSZ,                                 /* bytes */
        PR_MINFLT, PR_MAJFLT,
        PR_READ_BYTES, PR_WRITE_BYTES,                  /* /proc/PID/io; NA when not readable */
        PR_THREADS,
        PR__N
};
#define DIAG_REC_CMD_MAX 512
/* D-state threads. Key: tid. */
enum { DS_COMM, DS_WCHAN, DS__NS };
enum { DS_TID, DS_PID, DS__N };
/* Events: kernel log lines (OOM kill, hung task, I/O error) and the recorder's own
 * (trigger fired, records dropped, started). No key; rows in the order they happened. */
enum { EV_KIND, EV_COMM, EV_TEXT, EV_PATH, EV__NS };
enum { EV_TIME_NS, EV_PID, EV_RSS, EV_COUNT, EV__N };
/* EV_KIND values */
#define DIAG_REC_EV_OOM      "oom-kill"      /* pid, comm, rss (bytes), path: the OOM's memory cgroup, text: kernel line */
#define DIAG_REC_EV_HUNG     "hung-task"     /* pid, comm, text */
#define DIAG_REC_EV_IOERR    "io-error"      /* text */
#define DIAG_REC_EV_TRIGGER  "trigger"       /* text: the trigger spec and why, path: the snapshot, pid: a matched process */
#define DIAG_REC_EV_DROPS    "drops"         /* count: records dropped (disk full), text: why */
#define DIAG_REC_EV_START    "start"         /* the recorder started; text: its options */

struct diag_rec_schema {
        const char *name;                       /* "host", "disk", ... */
        unsigned nstr, nnum;
        unsigned key_str, key_num;              /* the first key_str strings, then the first key_num integers */
        bool delta;                             /* integers delta-coded against the previous interval */
        const char *const *str_names;
        const char *const *num_names;
};
extern const struct diag_rec_schema diag_rec_schemas[DIAG_REC_NTABLES];

/* A string interner: ids are dense, from 0 (""), stable until reset. */
struct diag_rec_strings;
struct diag_rec_strings *diag_rec_strings_new(void);
void diag_rec_strings_free(struct diag_rec_strings *s);
void diag_rec_strings_reset(struct diag_rec_strings *s);       /* back to just "" (keeps its memory) */
/* The id of s (len bytes, no NUL needed; NULs inside are not allowed), adding it. UINT32_MAX on ENOMEM. */
uint32_t diag_rec_intern(struct diag_rec_strings *s, const char *str, size_t len);
/* Define id explicitly (decoder): id may leave holes; redefinition replaces. 0 or -ENOMEM/-EINVAL. */
int diag_rec_strings_set(struct diag_rec_strings *s, uint32_t id, const char *str, size_t len);
const char *diag_rec_str(const struct diag_rec_strings *s, uint32_t id);   /* "" for an unknown id */
size_t diag_rec_strings_count(const struct diag_rec_strings *s);        /* ids in use (highest + 1) */
size_t diag_rec_strings_bytes(const struct diag_rec_strings *s);        /* memory held */

struct diag_rec_table {
        size_t nrows, alloc;                    /* alloc: rows of room in str and num */
        uint32_t *str;                          /* nrows * schema.nstr */
        int64_t *num;                           /* nrows * schema.nnum */
};
#define DIAG_REC_STR(iv, tab, row, col) ((iv)->t[tab].str[(size_t)(row) * diag_rec_schemas[tab].nstr + (col)])
#define DIAG_REC_NUM(iv, tab, row, col) ((iv)->t[tab].num[(size_t)(row) * diag_rec_schemas[tab].nnum + (col)])

struct diag_rec_interval {
        uint64_t seq;                           /* counts intervals since the recorder started */
        int64_t realtime_ns;                    /* CLOCK_REALTIME when the reading began */
        int64_t boottime_ns;                    /* CLOCK_BOOTTIME, same instant */
        uint32_t interval_ms;                   /* the nominal interval */
        uint32_t took_us;                       /* how long the reading took */
        int64_t late_us;                        /* how late it began against its schedule */
        struct diag_rec_table t[DIAG_REC_NTABLES];
        struct diag_rec_strings *strings;       /* not owned */
};

void diag_rec_interval_init(struct diag_rec_interval *iv, struct diag_rec_strings *strings);
void diag_rec_interval_free(struct diag_rec_interval *iv);
void diag_rec_interval_clear(struct diag_rec_interval *iv);    /* nrows = 0 everywhere, memory kept */
/* Append a row (zeroed: string id 0, integers 0) to table t; its index, or -1 on ENOMEM. */
ssize_t diag_rec_add_row(struct diag_rec_interval *iv, enum diag_rec_table_id t);
/* Sort a table's rows by key (stable for events: they are not sorted). */
void diag_rec_sort(struct diag_rec_interval *iv, enum diag_rec_table_id t);
/* Compare row a of table t in x with row b of table t in y by key (strings by content). */
int diag_rec_key_cmp(const struct diag_rec_interval *x, size_t a, const struct diag_rec_interval *y, size_t b,
                     enum diag_rec_table_id t);
/* Row of table t with the given pid and start (PROC) by binary search; -1 when absent. */
ssize_t diag_rec_find_proc(const struct diag_rec_interval *iv, pid_t pid, int64_t start);
/* Copy src into dst (dst's own strings: ids re-interned when dst->strings != src->strings). */
int diag_rec_interval_copy(struct diag_rec_interval *dst, const struct diag_rec_interval *src);

/*
 * Codec (rec-codec.c). A *chain* is a run of intervals encoded each against the one
 * before; it starts at a key interval, encoded whole. The encoder appends to a byte
 * buffer; the store cuts the bytes into frames (see recstore.h). A frame's first
 * interval may depend on the previous frame's last one: the frame header says so.
 */
struct diag_rec_buf {
        uint8_t *data;
        size_t len, alloc;
};
int diag_rec_buf_reserve(struct diag_rec_buf *b, size_t more);        /* 0 or -ENOMEM */
void diag_rec_buf_free(struct diag_rec_buf *b);

struct diag_rec_encoder;
struct diag_rec_encoder *diag_rec_encoder_new(void);
void diag_rec_encoder_free(struct diag_rec_encoder *e);
/* The next interval is encoded whole (and strings defined again). */
void diag_rec_encoder_key(struct diag_rec_encoder *e);
/* Append iv to out. The encoder keeps a copy of iv for the next delta. 0 or -ENOMEM. */
int diag_rec_encode(struct diag_rec_encoder *e, const struct diag_rec_interval *iv, struct diag_rec_buf *out);

struct diag_rec_decoder;
struct diag_rec_decoder *diag_rec_decoder_new(void);
void diag_rec_decoder_free(struct diag_rec_decoder *d);
/* Forget the previous interval: the next one must be a key interval. */
void diag_rec_decoder_reset(struct diag_rec_decoder *d);
/* Decode one interval from *p (advanced past it) into out, whose strings are the
 * decoder's. 1: one decoded; 0: nothing left; -EBADMSG: corrupt (out is then not to
 * be used); -ENOENT: a delta interval without its reference (after a reset). */
int diag_rec_decode(struct diag_rec_decoder *d, const uint8_t **p, const uint8_t *end, struct diag_rec_interval *out);
struct diag_rec_strings *diag_rec_decoder_strings(struct diag_rec_decoder *d);

/*
 * Sampler (rec-sample.c). Reads everything into iv (cleared first), without
 * allocating once warm (its caches grow with the number of processes and cgroups,
 * then stay). Command lines and cgroups are read once per process (pid + start).
 */
struct diag_rec_sampler_opts {
        const char *proc;               /* "/proc" (tests may point elsewhere); NULL = "/proc" */
        bool kmsg;                      /* read /dev/kmsg for events */
        bool cgroups;
        bool dstate;
};
struct diag_rec_sampler;
int diag_rec_sampler_new(struct diag_rec_sampler **ret, const struct diag_rec_sampler_opts *opts);
void diag_rec_sampler_free(struct diag_rec_sampler *s);
/* Forget cached command lines and cgroups (after the interner was reset). */
void diag_rec_sampler_forget(struct diag_rec_sampler *s);
/* 0, or negative errno when nothing could be read. Events from /dev/kmsg that arrived
 * since the previous call are added to the EVENT table. */
int diag_rec_sample(struct diag_rec_sampler *s, struct diag_rec_interval *iv);
/* The kmsg fd (nonblocking), for the caller to poll for OOM kills between intervals; -1 when none. */
int diag_rec_sampler_kmsg_fd(const struct diag_rec_sampler *s);
/* Read what /dev/kmsg has now into the sampler's queue of events (bounded; the oldest
 * are dropped past it), which the next diag_rec_sample() moves into its interval.
 * Returns the number of OOM kills among the events read now (0 when none). */
int diag_rec_sampler_poll_kmsg(struct diag_rec_sampler *s);
/* The queued events (for a trigger that fires before the next interval). */
const struct diag_rec_interval *diag_rec_sampler_pending(const struct diag_rec_sampler *s);
