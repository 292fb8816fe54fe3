/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Shared memory: the segments of the machine (SysV, POSIX in /dev/shm, memfd
 * and anonymous shared mappings), the processes that map them, POSIX message
 * queues, read-only snapshots of a segment, and decoders of the channel formats
 * found in them. Nothing here creates, locks, resizes or writes a segment.
 *
 * The decoders take a plain buffer (a snapshot) and trust none of its bytes:
 * every offset and length is checked before it is used.
 */

/* ---- segments and who maps them ---- */

enum diag_shm_kind {
        DIAG_SHM_SYSV,
        DIAG_SHM_POSIX,         /* a file in /dev/shm */
        DIAG_SHM_MEMFD,
        DIAG_SHM_ANON,          /* MAP_SHARED|MAP_ANONYMOUS: "/dev/zero (deleted)" */
        DIAG_SHM_FILE,          /* any other file (a saved copy) */
};
const char *diag_shm_kind_name(enum diag_shm_kind k);

struct diag_shm_attacher {
        pid_t pid;
        char comm[17];
        uint64_t start, end;    /* one mapping of the segment in pid */
        char perms[5];
};

struct diag_shm_seg {
        enum diag_shm_kind kind;
        char *name;             /* "/dev/shm/x", "memfd:x", "key:0x00003039"... */
        int32_t key;            /* SysV */
        int shmid;              /* SysV; -1 otherwise */
        uint64_t size;
        uid_t uid;
        gid_t gid;
        unsigned mode;          /* permission bits */
        pid_t cpid, lpid;       /* SysV */
        uint64_t nattch;        /* SysV: the kernel's count */
        int64_t atime, dtime, ctime;    /* SysV (0 = never); POSIX: ctime = mtime of the file */
        uint64_t rss, swap;     /* SysV, bytes */
        unsigned dev_major, dev_minor;
        uint64_t inode;         /* SysV: the shmid; POSIX/memfd/anon: the file's inode */
        uint64_t ipc_ns;        /* SysV of another IPC namespace (its inode): seen only in maps */
        bool in_table;          /* SysV: from /proc/sysvipc/shm (else only a mapping told of it) */
        bool in_dir;            /* POSIX: a file of our /dev/shm (else unlinked, or another mount namespace's) */
        struct diag_shm_attacher *att;
        size_t natt;
        const char *format;     /* a detected channel format ("libatbus") or NULL */
};

struct diag_shm_list {
        struct diag_shm_seg *segs;
        size_t n;
        unsigned denied;        /* processes whose maps could not be read */
};

enum {
        DIAG_SHM_LIST_ATTACHERS = 1 << 0,       /* scan every /proc/PID/maps */
        DIAG_SHM_LIST_FORMAT    = 1 << 1,       /* read each segment's first bytes */
};

/* Every segment of the machine. pid > 0: only the shared mappings of that process
 * (with their segments' details). */
int diag_shm_list(pid_t pid, unsigned flags, struct diag_shm_list **ret);
void diag_shm_list_free(struct diag_shm_list *l);
static inline void diag_shm_list_freep(struct diag_shm_list **l) { diag_shm_list_free(*l); }

/* /proc/sysvipc/shm text -> segments (appended to *segs); columns found by the
 * header line's names. -EBADMSG on text that is not that table. */
int diag_shm_parse_sysvipc(const char *text, struct diag_shm_seg **segs, size_t *n);
void diag_shm_seg_clear(struct diag_shm_seg *s);

/* What a /proc/PID/maps path says of a shared mapping: kind and, for SysV, the
 * key. Returns false for a path that is not shared memory. */
bool diag_shm_classify_map(const char *path, enum diag_shm_kind *ret_kind, int32_t *ret_key);

/* ---- POSIX message queues ---- */

struct diag_mqueue {
        char *name;             /* "/name" */
        uint64_t qsize;         /* bytes queued */
        int notify;             /* NOTIFY: 0 SIGEV_SIGNAL, 1 SIGEV_NONE, 2 SIGEV_THREAD */
        int signo;
        pid_t notify_pid;       /* 0 = nobody registered */
        uid_t uid;
        gid_t gid;
        unsigned mode;
};

/* "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0" */
int diag_mqueue_parse(const char *text, struct diag_mqueue *ret);
/* Every queue of the mqueue file system mounted first in /proc/self/mounts
 * (-ENOENT when none is mounted). *ret_dir gets its mount point. */
int diag_mqueue_list(struct diag_mqueue **ret, size_t *ret_n, char **ret_dir);
void diag_mqueue_free(struct diag_mqueue *q, size_t n);

/* ---- naming and reading a segment ---- */

struct diag_shm_target {
        enum diag_shm_kind kind;
        int shmid;              /* SysV */
        char *path;             /* POSIX / file */
        pid_t pid;              /* memfd / anon: read through this process */
        uint64_t addr, len;     /* ... at this mapping */
        char *name;             /* as shown */
};
void diag_shm_target_clear(struct diag_shm_target *t);

/* "key:0x3039" "key:12345" "id:N" "/dev/shm/x" "./copy.bin". -ENOENT no such
 * segment, -EINVAL not a name. "pid:PID", "memfd:NAME" and "anon:INODE" are
 * found with diag_shm_list() and diag_shm_seg_target(). */
int diag_shm_resolve(const char *name, struct diag_shm_target *ret);
/* How to read a listed segment: through its first mapping's process
 * (via_process, and always for memfd, anonymous and unlinked POSIX segments:
 * that leaves no trace on the segment), or by its id or path. */
int diag_shm_seg_target(const struct diag_shm_seg *s, bool via_process, struct diag_shm_target *ret);

/* A private copy of a segment: SysV attached with SHM_RDONLY and detached after
 * the copy, a process's mapping with process_vm_readv, a file (POSIX segment or
 * a copy) with pread in a bounded child (diag/bounded.h): a file on a mount
 * that stopped answering fails with -ETIMEDOUT instead of hanging us (see
 * diag_shm_stuck_helper()). max: refuse a larger segment (-EFBIG). */
struct diag_shm_image {
        const uint8_t *data;
        size_t len;             /* bytes in data */
        uint64_t size;          /* the whole segment's size (len is less when only a part was read) */
        uint8_t *copy;          /* what diag_shm_snapshot() allocated */
        void *attached;         /* what diag_shm_view() attached */
        void *shared;           /* memory the bounded child read a file into */
        size_t shared_len;
};
int diag_shm_snapshot(const struct diag_shm_target *t, size_t max, struct diag_shm_image *ret);
/* The first want bytes (0: all; a larger want than the segment: all), without a
 * copy for a SysV segment: the image is then the whole segment attached
 * SHM_RDONLY (its page tables filled at once), detached by
 * diag_shm_image_clear(). Still read-only and safe to decode (a segment cannot
 * shrink while attached, and decoders copy every field before checking it), but
 * live: two views are the same bytes, so --watch takes copies. */
int diag_shm_view(const struct diag_shm_target *t, size_t max, size_t want, struct diag_shm_image *ret);
/* Only the first len bytes (format detection, --watch headers). */
int diag_shm_peek(const struct diag_shm_target *t, void *buf, size_t len, size_t *ret_len);
void diag_shm_image_clear(struct diag_shm_image *im);

/* After -ETIMEDOUT from a read of a file: the pid of the child left stuck in
 * the kernel (it dies when the mount answers or is aborted), or 0. */
pid_t diag_shm_stuck_helper(void);
/* How long a file is given to answer each open, stat or read (ms). */
unsigned diag_shm_path_timeout_ms(void);

/* Copy the whole segment to a new file path (0600), a chunk at a time (the
 * memory used stays small), into an unnamed temporary linked under path only
 * when complete: never over an existing file or through a symlink; a failure,
 * a kill or *stop (checked between chunks and on EINTR: -ECANCELED) leaves
 * nothing under path. *ret_bytes: the bytes saved. */
int diag_shm_save(const struct diag_shm_target *t, const char *path, const volatile sig_atomic_t *stop,
                  uint64_t *ret_bytes);

/* ---- decoders ---- */

uint32_t diag_murmur3_x86_32(const void *data, size_t len, uint32_t seed);

/* Which known channel format a buffer starts with, or NULL. */
const char *diag_shm_detect(const void *buf, size_t len);

/* libatbus mem/shm channel (channel_mem.cpp, channel version 2), its header
 * packed (older builds) or naturally aligned (later ones). */
#define DIAG_ATBUS_FLAG_WRITTEN 0x1u
#define DIAG_ATBUS_FLAG_START 0x2u

struct diag_atbus {
        const uint8_t *base;
        size_t len;
        const char *layout;             /* "aligned" or "packed" */
        uint64_t node_head_size, block_head_size;      /* 8 and 16 rounded up to the align size */
        /* the header, as stored */
        char magic[17];
        uint16_t version, align_size, host_size;
        uint64_t node_size, node_size_bin_power, node_count;
        uint64_t read_cur, write_cur;
        uint64_t first_failed_writing_time;
        uint32_t operation_seq;
        uint64_t protect_node_count, protect_memory_size, send_timeout_ms, write_retry_times;
        uint64_t receiver_identify;
        uint64_t area_channel_offset, area_head_offset, area_data_offset, area_end_offset;
        uint64_t write_check_sequence_failed, write_retry, read_bad_node, read_bad_block,
                 read_write_timeout, read_check_block_size_failed, read_check_node_size_failed,
                 read_check_hash_failed;
        /* derived, right */
        uint64_t used_nodes;            /* [read, write) */
        uint64_t free_nodes;            /* node_count - used - 1 (the hole at write) */
        uint64_t writable_nodes;        /* free minus the protected nodes: what a writer may take */
        uint64_t capacity_nodes;        /* node_count - 1 - protect: writable when empty */
        double fill_pct;                /* used / capacity */
};

/* Parse and check a header. On a buffer that is no channel or a corrupt header,
 * returns -EBADMSG (no magic: -ENOMSG) and writes one line to err:
 * "node count 9e18 exceeds segment (at most 61665 nodes of 272 bytes fit)". */
int diag_atbus_parse(const void *buf, size_t len, struct diag_atbus *ret, char *err, size_t errlen);
/* The same checks when buf holds only the first avail bytes of a segment of
 * seglen bytes: the header is judged against seglen. On success ret->base is
 * NULL when the channel (area_end_offset bytes) is not all in buf: only the
 * header fields are set; read area_end_offset bytes and parse those. */
int diag_atbus_parse_header(const void *buf, size_t avail, uint64_t seglen, struct diag_atbus *ret,
                            char *err, size_t errlen);
/* The fewest bytes that hold a channel header (shorter: "too short"). */
#define DIAG_ATBUS_HEADER_MIN 210

struct diag_atbus_node {
        uint64_t index;
        uint32_t flag, seq;
        bool start, written;
        uint64_t size, hash;            /* block head, for a start node */
        const uint8_t *data;            /* its 256 (node_size) bytes */
};
void diag_atbus_node(const struct diag_atbus *c, uint64_t index, struct diag_atbus_node *ret);

/* Hash of block payload starting at node index (wrapping like the writer);
 * false when size does not fit in the data area. */
bool diag_atbus_block_hash(const struct diag_atbus *c, uint64_t index, uint64_t size, uint32_t *ret);

enum diag_atbus_anomaly_kind {
        DIAG_ATBUS_UNWRITTEN,           /* start node not marked written: writer busy or crashed */
        DIAG_ATBUS_EMPTY,               /* node in the live range with no flag at all */
        DIAG_ATBUS_ORPHAN,              /* written node that starts no block and is in none */
        DIAG_ATBUS_BAD_SIZE,            /* block size 0 or larger than the channel */
        DIAG_ATBUS_PAST_WRITE,          /* block runs past the write cursor */
        DIAG_ATBUS_OVERWRITTEN,         /* a node of the block carries another block's seq */
        DIAG_ATBUS_INCOMPLETE,          /* a node of the block is not written */
        DIAG_ATBUS_NODE_COUNT,          /* more nodes carry the block's seq than its size needs */
        DIAG_ATBUS_BAD_HASH,
        DIAG_ATBUS_SEQ_BACK,            /* seq lower than the block before */
};
const char *diag_atbus_anomaly_name(enum diag_atbus_anomaly_kind k);

struct diag_atbus_anomaly {
        enum diag_atbus_anomaly_kind kind;
        uint64_t node;                  /* where it was seen */
        uint64_t block;                 /* start node of the block it belongs to */
        uint32_t seq, block_seq;
        char text[200];                 /* "node 101403: block seq ... — overwritten" */
};

struct diag_atbus_check {
        uint64_t nodes_walked, blocks, good_blocks, bytes;
        uint64_t min_size, max_size;
        uint32_t first_seq, last_seq;
        uint64_t seq_gaps;              /* jumps forward: failed sends use numbers too */
        size_t nanomalies;              /* all found */
        struct diag_atbus_anomaly *anomalies;   /* the first max_report */
        size_t nreported;
};

/* Walk every node from the read to the write cursor, verifying each block's
 * start flag, seq continuity, size and node count, and hash. hash: false skips
 * the hash (faster). Keeps the first max_report anomalies. */
int diag_atbus_check(const struct diag_atbus *c, bool hash, size_t max_report, struct diag_atbus_check *ret);
void diag_atbus_check_clear(struct diag_atbus_check *k);

/* Blocks and payload bytes in the nodes [from, to), read or not (for rates). */
void diag_atbus_count_blocks(const struct diag_atbus *c, uint64_t from, uint64_t to,
                             uint64_t *ret_blocks, uint64_t *ret_bytes);

/* ---- a header read as a C struct from DWARF ---- */

struct diag_struct_field {
        char *name;             /* "conf.protect_node_count", "node_magic" */
        char *type;             /* "size_t", "char[16]" */
        uint64_t offset, size;
        char *value;            /* formatted from the buffer; NULL if outside it */
};

struct diag_struct_layout {
        char *name;
        uint64_t size;
        struct diag_struct_field *fields;
        size_t n;
};

/* Find struct/class/union (or typedef of one) TYPE in the DWARF of binary (its
 * own or, through .gnu_debuglink/build-id, under /usr/lib/debug) and lay it out
 * over buf: every member, nested structs flattened. -ENOENT: no such type. */
int diag_struct_layout(const char *binary, const char *type, const void *buf, size_t len,
                       struct diag_struct_layout **ret);
void diag_struct_layout_free(struct diag_struct_layout *l);
