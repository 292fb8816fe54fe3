/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "diag/out.h"
#include "diag/proc.h"
#include "diag/ptrace.h"
#include "diag/target.h"
#include "diag/util.h"

#define CAP_SYS_PTRACE_BIT 19

/* comm, state and ppid from /proc/PID/stat; false if it cannot be read. */
static bool read_stat(pid_t pid, char *comm, size_t comm_size, char *state, pid_t *ppid) {
        char path[64], buf[1024];
        const char *open, *close;
        int pp = 0;

        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                return false;
        open = strchr(buf, '(');
        close = strrchr(buf, ')');
        if (!open || !close || close < open || close[1] != ' ' || !close[2])
                return false;
        if (comm) {
                size_t n = MIN((size_t) (close - open - 1), comm_size - 1);
                memcpy(comm, open + 1, n);
                comm[n] = 0;
        }
        *state = close[2];
        if (ppid) {
                if (sscanf(close + 3, " %d", &pp) != 1)
                        return false;
                *ppid = pp;
        }
        return true;
}

void diag_target_resolve(pid_t id, struct diag_target *ret) {
        struct diag_target t = { .pid = id, .kind = DIAG_TARGET_GONE, .state = '?' };
        pid_t tgid = 0;
        char st;

        if (id <= 0 || diag_tid_to_pid(id, &tgid) < 0) {
                *ret = t;
                return;
        }
        if (tgid != id) {
                t.pid = tgid;
                t.tid = id;
        }
        if (!read_stat(t.pid, t.comm, sizeof t.comm, &t.state, &t.ppid)) {
                *ret = t;
                return;
        }
        (void) diag_proc_read_uid(t.pid, &t.uid);
        if (t.state == 'Z' || t.state == 'X') {
                t.kind = DIAG_TARGET_ZOMBIE;
                if (!read_stat(t.ppid, t.parent_comm, sizeof t.parent_comm, &st, NULL))
                        t.parent_comm[0] = 0;
        } else if (diag_proc_is_kernel_thread(t.pid) > 0)
                t.kind = DIAG_TARGET_KERNEL;
        else
                t.kind = DIAG_TARGET_LIVE;
        *ret = t;
}

static bool cap_effective(unsigned bit) {
        unsigned long long caps;

        if (diag_task_status_field(getpid(), 0, "CapEff", 16, &caps) < 0)
                return false;
        return bit < 64 && (caps >> bit) & 1;
}

const char *diag_ptrace_denied_reason(void) {
        char buf[16];
        long long scope = -1;

        if (diag_read_small_at(AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", buf, sizeof buf) > 0 &&
            diag_parse_ll(diag_strip(buf), 10, 0, 3, &scope) == 0 && scope == 3)
                return "kernel.yama.ptrace_scope is 3, which forbids every attach";
        if (!cap_effective(CAP_SYS_PTRACE_BIT))
                return "this process lacks CAP_SYS_PTRACE (a container or a capability bounding set took it)";
        if (scope == 2)
                return "kernel.yama.ptrace_scope is 2 and a security module refused";
        return NULL;
}

static const char *name_of(const struct diag_target *t, char *buf, size_t size) {
        if (t->tid)
                snprintf(buf, size, "thread %d of pid %d (%s)", t->tid, t->pid, t->comm);
        else if (t->comm[0])
                snprintf(buf, size, "pid %d (%s)", t->pid, t->comm);
        else
                snprintf(buf, size, "pid %d", t->pid);
        return buf;
}

char *diag_target_message(const struct diag_target *t, int err, const char *what, char *buf, size_t size) {
        char who[96], tcomm[17] = "";
        pid_t tracer = 0;
        const char *why;

        name_of(t, who, sizeof who);
        switch (t->kind) {
        case DIAG_TARGET_GONE:
                snprintf(buf, size, "pid %d: no such process", t->tid ? t->tid : t->pid);
                return buf;
        case DIAG_TARGET_ZOMBIE:
                if (t->parent_comm[0])
                        snprintf(buf, size, "%s has exited: a zombie its parent %d (%s) has not reaped", who,
                                 t->ppid, t->parent_comm);
                else
                        snprintf(buf, size, "%s has exited: a zombie its parent %d has not reaped", who, t->ppid);
                return buf;
        case DIAG_TARGET_KERNEL:
                snprintf(buf, size, "%s is a kernel thread: it has no user space to %s", who, what);
                return buf;
        case DIAG_TARGET_LIVE:
                break;
        }
        if (err == -EPERM || err == -EACCES || err == -EBUSY) {
                /* Decided now, after the failure: someone may have attached in between. */
                if (diag_ptrace_tracer_of(t->pid, &tracer) == 0 && tracer > 0 && tracer != getpid()) {
                        char st;
                        if (read_stat(tracer, tcomm, sizeof tcomm, &st, NULL))
                                snprintf(buf, size, "%s is already traced by pid %d (%s)", who, tracer, tcomm);
                        else
                                snprintf(buf, size, "%s is already traced by pid %d", who, tracer);
                        return buf;
                }
                if (err == -EBUSY) {
                        snprintf(buf, size, "%s is already traced by another process", who);
                        return buf;
                }
                if (geteuid() != 0)
                        snprintf(buf, size, "not permitted to %s %s, owned by uid %u: run as root or as its owner",
                                 what, who, (unsigned) t->uid);
                else if ((why = diag_ptrace_denied_reason()))
                        snprintf(buf, size, "not permitted to %s %s even as root: %s", what, who, why);
                else
                        snprintf(buf, size, "not permitted to %s %s even as root (a security module refused)",
                                 what, who);
                return buf;
        }
        if (err == -ESRCH) {
                snprintf(buf, size, "%s exited while being read", who);
                return buf;
        }
        if (err == -ECHILD) {
                /* diag_guard_window_open(): no stop without the watchdog */
                snprintf(buf, size,
                         "did not %s %s: the watchdog that releases it if this tool is suspended is not "
                         "running, so nothing was stopped", what, who);
                return buf;
        }
        snprintf(buf, size, "cannot %s %s: %s", what, who, strerror(err < 0 ? -err : err));
        return buf;
}

const char *diag_target_reason(const struct diag_target *t, int err) {
        pid_t tracer = 0;

        switch (t->kind) {
        case DIAG_TARGET_GONE:
                return "gone";
        case DIAG_TARGET_ZOMBIE:
                return "zombie";
        case DIAG_TARGET_KERNEL:
                return "kernel-thread";
        case DIAG_TARGET_LIVE:
                break;
        }
        if (err == 0)
                return NULL;
        if (err == -EBUSY ||
            ((err == -EPERM || err == -EACCES) && diag_ptrace_tracer_of(t->pid, &tracer) == 0 && tracer > 0 &&
             tracer != getpid()))
                return "traced";
        if (err == -EPERM || err == -EACCES)
                return "not-permitted";
        if (err == -ESRCH)
                return "gone";
        return "error";
}

int diag_json_error(FILE *f, const char *message, const char *reason, pid_t pid, int status) {
        struct json_object *root = json_object_new_object(), *e = json_object_new_object();
        int r;

        if (!root || !e) {
                json_object_put(root);
                json_object_put(e);
                return -ENOMEM;
        }
        json_object_object_add(e, "message", diag_json_str(message));
        if (reason)
                json_object_object_add(e, "reason", json_object_new_string(reason));
        if (pid > 0)
                json_object_object_add(e, "pid", json_object_new_int(pid));
        json_object_object_add(e, "status", json_object_new_int(status));
        json_object_object_add(root, "error", e);
        r = diag_json_print(f, root);
        json_object_put(root);
        return r;
}
