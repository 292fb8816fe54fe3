/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/syscall.h"

/*
 * Processes and threads. The table comes from libproc2; what it lacks is read
 * directly from /proc/PID/task/TID (syscall, wchan, stack, sched). Nothing here
 * stops or signals the target.
 */

struct diag_task {
        pid_t tid;
        char comm[17];
        char state;                     /* R S D T t Z X I P, '?' if gone */
        double cpu_life_pct;            /* lifetime average (utime+stime)/elapsed, like ps: NOT top's rate */
        double cpu_rate_pct;            /* percent of one CPU over a short window (top's %CPU), -1 unknown:
                                         * filled only by diag_proc_measure_cpu_rate() */
        uint64_t cpu_ms;                /* utime + stime */
        struct diag_syscall_state sc;   /* /proc/PID/task/TID/syscall */
        int sc_err;                     /* 0, or negative errno why sc is unknown */
        char wchan[64];                 /* "" when 0 or unreadable */
        int64_t offcpu_ms;              /* now - se.exec_start for non-running tasks; -1 unknown */
        char *kstack;                   /* kernel stack text (root only), NULL if not read */
        int kstack_err;                 /* negative errno if asked for and failed */
};

struct diag_proc {
        pid_t pid;
        char comm[17];
        char state;
        uid_t uid;
        char *exe;                      /* readlink /proc/PID/exe, may be NULL */
        char *cmdline;                  /* spaces between args, may be NULL */
        char *argv0;                    /* the name it was started as (cmdline's first word), may be NULL */
        double cpu_rate_pct;            /* sum of the threads' short-window rates, -1 unknown */
        unsigned cpu_rate_window_ms;    /* the window those rates were measured over, 0 if not */
        size_t ntasks;
        struct diag_task *tasks;
};

enum {
        DIAG_PROC_SYSCALL = 1 << 0,
        DIAG_PROC_WCHAN   = 1 << 1,
        DIAG_PROC_KSTACK  = 1 << 2,
        DIAG_PROC_SCHED   = 1 << 3,
        DIAG_PROC_CMDLINE = 1 << 4,
        DIAG_PROC_ALL     = 0x1f,
};

/* A /proc/PID/stat or /proc/PID/task/TID/stat line: the comm (which may hold
 * spaces and parentheses), the state, and the numbers after it.
 * DIAG_STAT_FIELD(s, N) is field N as proc(5) numbers them: 4 ppid, 9 flags,
 * 12 majflt, 14 utime, 15 stime, 20 num_threads, 22 starttime, 24 rss. Signed
 * fields (priority, nice) wrap: cast to int64_t. 0 for a field not there. */
struct diag_stat {
        char comm[64];
        char state;
        size_t n;                       /* numbers read, from field 4 on */
        uint64_t f[52];
};
#define DIAG_STAT_FIELD(s, field) ((s)->f[(field) - 4])
int diag_stat_parse(const char *text, struct diag_stat *ret);

/* The command line at path (relative to dirfd), at most max bytes, its NULs
 * turned into spaces; NULL when empty (a kernel thread, a zombie) or unreadable. */
char *diag_proc_read_cmdline_at(int dirfd, const char *path, size_t max);

/* The cgroup path ("/system.slice/x.service") in the text of /proc/PID/cgroup:
 * of cgroup v1 controller ("memory"), the line whose controller list holds it;
 * with controller NULL, cgroup v2's "0::" line. -ENOENT when there is none,
 * -ENAMETOOLONG when it does not fit size. */
int diag_proc_cgroup_path(const char *text, const char *controller, char *buf, size_t size);

/* The name pid was started as (argv[0] from /proc/PID/cmdline; for a process
 * that rewrote its title into one string, "redis-server *:6379", its first
 * word). Does not follow symlinks: Debian's redis-server stays redis-server
 * though /proc/PID/exe is redis-check-rdb. -ENODATA when empty. */
int diag_proc_read_argv0(pid_t pid, char **ret);

/* Load a process and all its threads. -ESRCH if it does not exist. */
int diag_proc_load(pid_t pid, unsigned flags, struct diag_proc **ret);
struct diag_proc *diag_proc_free(struct diag_proc *p);
static inline void diag_proc_freep(struct diag_proc **p) { diag_proc_free(*p); }
#define _cleanup_proc_ _cleanup_(diag_proc_freep)

struct diag_task *diag_proc_find_task(struct diag_proc *p, pid_t tid);

/* Thread-group id of any tid (the pid of its process). -ESRCH if gone. */
int diag_tid_to_pid(pid_t tid, pid_t *ret_pid);

/* The number after "key:" on its own line of a /proc status text (base 10 or
 * 16; for "Uid:" and the like, the first). -ENODATA when there is no such line. */
int diag_status_field(const char *status, const char *key, int base, unsigned long long *ret);
/* The same from /proc/PID/status (tid 0) or /proc/PID/task/TID/status. */
int diag_task_status_field(pid_t pid, pid_t tid, const char *key, int base, unsigned long long *ret);

/* Is pid a kernel thread (no mm)? */
int diag_proc_is_kernel_thread(pid_t pid);

/* The parent of pid (field 4 of /proc/PID/stat); 0 for a process whose parent
 * is outside its pid namespace. */
int diag_proc_read_ppid(pid_t pid, pid_t *ret);

/*
 * A process's lineage: itself, its ancestors (the shell, cron or service that
 * started it waits for it) and its descendants (the children it runs). A tool
 * that looks at the whole host leaves its own lineage out: it is not a story.
 * The ancestors are read once; a descendant is recognised by its parents.
 */
#define DIAG_LINEAGE_MAX_UP 64
struct diag_lineage {
        pid_t self;
        pid_t up[DIAG_LINEAGE_MAX_UP];  /* parent first, pid 1 (or the namespace's top) last */
        size_t nup;
};
int diag_lineage_init(pid_t pid, struct diag_lineage *ret);
/* Is pid self, an ancestor or a descendant? A pid gone or unreadable is not. */
bool diag_lineage_has(const struct diag_lineage *l, pid_t pid);

/* Every process id, from /proc (a snapshot: some may be gone when read). */
int diag_proc_list_pids(pid_t **ret, size_t *ret_n);
/* /proc/PID/comm without the newline. */
int diag_proc_read_comm(pid_t pid, char *buf, size_t size);
/* Real uid of pid (owner of /proc/PID). */
int diag_proc_read_uid(pid_t pid, uid_t *ret);

/* Every thread id of pid, from /proc/PID/task. Caller frees *ret. */
int diag_proc_list_tids(pid_t pid, pid_t **ret, size_t *ret_n);

/* The first thread of pid blocked in a system call on fd (with locks_only: in
 * flock or a blocking fcntl lock on it), or 0. */
pid_t diag_proc_thread_on_fd(pid_t pid, int fd, bool locks_only);

/* The mount table of pid's mount namespace, from /proc/PID/mountinfo:
 * "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - TYPE SOURCE SUPEROPTS". */
struct diag_mount {
        int id;
        unsigned major, minor;
        char *point;                    /* unescaped ("\040" is a space) */
        char *fstype;                   /* "ext4", "fuse.sshfs", "nfs4" */
        char *source;                   /* "/dev/vda1", "server:/export", "none" */
};
struct diag_mounts {
        struct diag_mount *m;
        size_t n;
};
int diag_mounts_read(pid_t pid, struct diag_mounts *ret);
const struct diag_mount *diag_mounts_find(const struct diag_mounts *ms, int mnt_id);
void diag_mounts_done(struct diag_mounts *ms);
/* File systems whose server can stop answering (NFS, FUSE, CIFS, Ceph, ...). */
bool diag_fstype_may_hang(const char *fstype);

/* The devices (major, minor) of pid's mounts, in its own mount namespace, on
 * file systems whose server can stop answering (NFS, FUSE, CIFS, Ceph, ...): a
 * read of a page of such a file that is not in memory waits for that server,
 * for ever if it is dead. From /proc/PID/mountinfo; unreadable gives none. */
struct diag_remote_devs {
        unsigned (*dev)[2];
        size_t n, alloc;
};
int diag_proc_read_remote_devs(pid_t pid, struct diag_remote_devs *ret);
bool diag_remote_devs_has(const struct diag_remote_devs *d, unsigned major, unsigned minor);
void diag_remote_devs_done(struct diag_remote_devs *d);

/*
 * CPU rate over a short window, with top/pidstat semantics: two readings of
 * each thread's time on CPU (/proc/PID/task/TID/schedstat, first field, ns)
 * some time apart, as percent of one CPU. Take both before any stop: a stopped
 * thread does not run. begin() takes the first reading; end() waits until
 * window_ms have passed since then (the caller may do other work in between)
 * and takes the second. A thread seen only once has rate -1 (unknown).
 */
struct diag_cpu_rates {
        pid_t pid;
        size_t n;
        pid_t *tid;
        uint64_t *ns0, *at0;            /* first reading: time on CPU, CLOCK_MONOTONIC when read */
        double *pct;                    /* percent of one CPU, -1 unknown (after end()) */
        double proc_pct;                /* sum over the threads known in both readings; -1 if none */
        uint64_t began_ns;
        unsigned window_ms;             /* measured window (after end()) */
};
int diag_cpu_rates_begin(pid_t pid, struct diag_cpu_rates *ret);
int diag_cpu_rates_end(struct diag_cpu_rates *r, unsigned window_ms);
/* Both, sleeping window_ms in between. */
int diag_cpu_rates_measure(pid_t pid, unsigned window_ms, struct diag_cpu_rates *ret);
/* Rate of tid, -1 when unknown. */
double diag_cpu_rates_get(const struct diag_cpu_rates *r, pid_t tid);
void diag_cpu_rates_done(struct diag_cpu_rates *r);
/* Copy the rates into p (tasks' cpu_rate_pct, p->cpu_rate_pct, window). */
void diag_proc_set_cpu_rates(struct diag_proc *p, const struct diag_cpu_rates *r);
/* Time on CPU of one thread, ns (schedstat's first field; clock ticks where the
 * kernel keeps no schedstat). */
int diag_task_read_oncpu_ns(pid_t pid, pid_t tid, uint64_t *ret_ns);
/* schedstat's first field alone, exact: -EOPNOTSUPP where the kernel keeps none
 * (all zeros, as for a thread that has not run yet). */
int diag_task_read_schedstat_ns(pid_t pid, pid_t tid, uint64_t *ret_ns);

/* Per-task direct readers. pid may be the tid's process or 0 (use /proc/TID). */
int diag_task_read_syscall(pid_t pid, pid_t tid, struct diag_syscall_state *ret);
int diag_task_read_wchan(pid_t pid, pid_t tid, char *buf, size_t size);
int diag_task_read_kstack(pid_t pid, pid_t tid, char **ret);
int diag_task_read_offcpu_ms(pid_t pid, pid_t tid, int64_t *ret_ms);
/* The same when the CPU the thread last ran on is known (stat's field 39; -1: not). */
int diag_task_offcpu_ms_on(pid_t pid, pid_t tid, int cpu, int64_t *ret_ms);
int diag_task_read_state(pid_t pid, pid_t tid, char *ret_state);
/* State and the CPU it last ran on (-1 unknown), from one read of stat. */
int diag_task_read_state_cpu(pid_t pid, pid_t tid, char *ret_state, int *ret_cpu);
