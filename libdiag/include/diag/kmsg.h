/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The kernel log as /dev/kmsg gives it, one record per read(): the record's
 * header, and the lines that tell of trouble (the OOM killer's, hung tasks',
 * I/O errors'). Shared by diag-snap (the whole log) and diag-record (as it comes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct diag_kmsg_record {
        unsigned prio;                  /* facility << 3 | level */
        uint64_t seq;
        uint64_t usec;                  /* CLOCK_BOOTTIME when logged, µs */
        char *text;                     /* the first line, NUL-terminated (inside the buffer) */
};

/* Parse "prio,seq,usec,flags[,...];text\n[ KEY=VALUE\n...]" in buf (NUL-terminated,
 * cut in place after the first text line). 0 or -EINVAL. */
int diag_kmsg_parse_record(char *buf, struct diag_kmsg_record *ret);

enum diag_kmsg_kind {
        DIAG_KMSG_OTHER,
        DIAG_KMSG_OOM_INVOKED,          /* "COMM invoked oom-killer: ...": comm */
        DIAG_KMSG_OOM_TASK,             /* a line of the OOM killer's task list: "[  pid  ] ..." */
        DIAG_KMSG_OOM_KILL,             /* "oom-kill:constraint=...,oom_memcg=...,task_memcg=...,task=...,pid=...,uid=..." */
        DIAG_KMSG_OOM_KILLED,           /* "[Memory cgroup ]Out of memory: Killed process PID (COMM) total-vm:..kB, anon-rss:..kB, ..." */
        DIAG_KMSG_HUNG,                 /* "INFO: task COMM:PID blocked for more than N seconds." */
        DIAG_KMSG_IOERR,                /* "I/O error, dev ..." or "Buffer I/O error on dev ..." */
};

/* What one line says; fields not in the line are empty, -1 (pid, uid) or 0 (sizes). */
struct diag_kmsg_line {
        enum diag_kmsg_kind kind;
        char comm[32];                  /* invoker, oom-kill's task=, the killed or hung task */
        pid_t pid;
        long uid;
        char constraint[48];
        char oom_memcg[256], task_memcg[256];
        bool memcg;                     /* "Memory cgroup out of memory" */
        uint64_t total_vm_kb, anon_kb, file_kb, shmem_kb;
        unsigned hung_secs;
};

enum diag_kmsg_kind diag_kmsg_classify(const char *text, struct diag_kmsg_line *ret);

/* A record's time (µs since boot) as CLOCK_REALTIME nanoseconds (the clocks' offset now). */
int64_t diag_kmsg_realtime_ns(uint64_t usec);
