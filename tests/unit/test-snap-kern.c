/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag_snap_oom() and diag_snap_dstate() against the real kernel: a child is
 * OOM-killed in a tiny memory cgroup and must be listed as the victim, with the
 * kill count of /proc/vmstat; a process waiting in vfork() (state D until its
 * child exits) must be listed with its wchan and system call. Needs root.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snap-test.h"
#include "tap.h"

#define LIMIT_MB 24
#define ALLOC_MB 128

static long long vmstat_oom_kill(void) {
        _cleanup_free_ char *t = NULL;
        const char *p;

        if (diag_read_file_at(AT_FDCWD, "/proc/vmstat", 1 << 20, &t, NULL) < 0 || !(p = strstr(t, "\noom_kill ")))
                return -1;
        return atoll(p + 10);
}

static const char *jstr(struct json_object *o, const char *key) {
        struct json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return NULL;
        return json_object_get_string(v);
}

/* The entry of arr[key] == val. */
static struct json_object *find_by(struct json_object *doc, const char *arrkey, const char *key, long long val) {
        struct json_object *arr;

        if (!doc || !json_object_object_get_ex(doc, arrkey, &arr))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(arr); i++)
                if (snap_test_jget(json_object_array_get_idx(arr, i), key) == val)
                        return json_object_array_get_idx(arr, i);
        return NULL;
}

/* A child killed by the OOM killer of a memory cgroup; its pid, or -1 (skip) with why. */
static pid_t oom_victim(char *cgdir, size_t size, const char **why) {
        char val[32];
        bool v2 = false;
        pid_t child;
        int st;
        _cleanup_free_ char *ctl = NULL;

        if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0)
                snprintf(cgdir, size, "/sys/fs/cgroup/memory/diagkit-oom-%d", (int) getpid());
        else if (diag_read_file_at(AT_FDCWD, "/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, NULL) == 0 &&
                 strstr(ctl, "memory")) {
                v2 = true;
                (void) snap_test_put("/sys/fs/cgroup", "cgroup.subtree_control", "+memory");
                snprintf(cgdir, size, "/sys/fs/cgroup/diagkit-oom-%d", (int) getpid());
        } else {
                *why = "no memory cgroup controller at /sys/fs/cgroup";
                return -1;
        }
        if (mkdir(cgdir, 0755) < 0) {
                *why = "cannot make a memory cgroup";
                return -1;
        }
        snprintf(val, sizeof val, "%d", LIMIT_MB << 20);
        if (snap_test_put(cgdir, v2 ? "memory.max" : "memory.limit_in_bytes", val) < 0) {
                *why = "cannot set the memory limit";
                return -1;
        }
        /* no way out through swap */
        (void) snap_test_put(cgdir, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes", v2 ? "0" : val);
        child = fork();
        if (child == 0) {
                if (snap_test_join(cgdir) < 0 || !snap_test_touch(ALLOC_MB))
                        _exit(1);
                _exit(0);       /* not killed: the test fails below */
        }
        if (child < 0 || waitpid(child, &st, 0) != child) {
                *why = "fork/wait failed";
                return -1;
        }
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
                *why = "the child was not OOM-killed";
                return -2;
        }
        return child;
}

static void test_oom(void) {
        struct snap_test t;
        char cgdir[128] = "";
        const char *why = "";
        long long before = vmstat_oom_kill();
        pid_t victim = oom_victim(cgdir, sizeof cgdir, &why);
        long long after = vmstat_oom_kill();

        if (victim == -1) {
                printf("oom: skipped: %s\n", why);
                if (cgdir[0])
                        rmdir(cgdir);
                return;
        }
        CHECK(victim > 0);
        snap_test_init(&t, 100);
        CHECK_INT(diag_snap_oom(&t.s), 0);
        {
                struct json_object *doc = snap_test_json(&t, "oom.json"), *e;
                _cleanup_free_ char *txt = snap_test_read(&t, "oom.txt");
                _cleanup_free_ char *fnd = snap_test_findings(&t);
                char pid[16];

                CHECK(doc != NULL);
                CHECK_STR(jstr(doc, "schema"), "diag-snap/1");
                CHECK_STR(jstr(doc, "part"), "oom");
                CHECK(after > before);
                CHECK(snap_test_jget(doc, "vmstat_oom_kill") >= after);
                e = find_by(doc, "events", "pid", victim);
                CHECK(e != NULL);
                /* the process's own anon, sanitizers' share (charged elsewhere) included */
                CHECK(snap_test_jget(e, "anon_rss_kb") > 0 && snap_test_jget(e, "anon_rss_kb") <= (ALLOC_MB << 10));
                CHECK(jstr(e, "constraint") && strcmp(jstr(e, "constraint"), "CONSTRAINT_MEMCG") == 0);
                CHECK(json_object_get_boolean(json_object_object_get(e, "memcg_oom")));
                CHECK(json_object_array_length(json_object_object_get(e, "top_tasks")) >= 1);
                snprintf(pid, sizeof pid, "%d", (int) victim);
                CHECK(txt && strstr(txt, pid));
                CHECK(fnd && strstr(fnd, "F\t3\toom.txt\tOOM killer: "));
                if (txt)
                        fprintf(stderr, "%s", txt);
                if (fnd)
                        fprintf(stderr, "findings:\n%s", fnd);
                json_object_put(doc);
        }
        snap_test_done(&t);
        for (int i = 0; i < 50 && rmdir(cgdir) < 0 && errno == EBUSY; i++)
                usleep(20000);
}

static char proc_state(pid_t pid) {
        char path[64], buf[512], *p;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || !(p = strrchr(buf, ')')))
                return 0;
        return p[2];
}

static void test_dstate(void) {
        struct snap_test t;
        pid_t waiter = fork();
        char st = 0;

        if (waiter == 0) {
                /* the parent of a vfork() sleeps in D until the child exits or execs */
                if (vfork() == 0) {
                        struct timespec ts = { 2, 0 };
                        syscall(SYS_nanosleep, &ts, NULL);
                        _exit(0);
                }
                pause();
                _exit(0);
        }
        for (int i = 0; i < 200 && (st = proc_state(waiter)) != 'D'; i++)
                usleep(10000);
        CHECK(st == 'D');
        snap_test_init(&t, 100);
        CHECK_INT(diag_snap_dstate(&t.s), 0);
        {
                struct json_object *doc = snap_test_json(&t, "dstate.json"), *e, *arr = NULL;
                _cleanup_free_ char *txt = snap_test_read(&t, "dstate.txt");
                char pid[16];

                CHECK(doc != NULL);
                CHECK_STR(jstr(doc, "schema"), "diag-snap/1");
                CHECK_STR(jstr(doc, "part"), "dstate");
                CHECK(json_object_object_get_ex(doc, "threads", &arr));
                CHECK_INT(snap_test_jget(doc, "count"), (long long) json_object_array_length(arr) + snap_test_jget(doc, "not_listed"));
                e = find_by(doc, "threads", "tid", waiter);
                CHECK(e != NULL);
                CHECK_INT(snap_test_jget(e, "pid"), waiter);
                CHECK(jstr(e, "syscall") && strstr("vfork clone clone3", jstr(e, "syscall")));
                CHECK(snap_test_jget(e, "blocked_ms") >= 0 && snap_test_jget(e, "blocked_ms") < 10000);
                /* wchan is the top frame of the kernel stack */
                CHECK(jstr(e, "wchan"));
                if (t.s.root) {
                        char frame[80];
                        snprintf(frame, sizeof frame, "] %s+", jstr(e, "wchan") ? jstr(e, "wchan") : "?");
                        CHECK(jstr(e, "kstack") && strstr(jstr(e, "kstack"), "vfork") && strstr(jstr(e, "kstack"), frame));
                }
                snprintf(pid, sizeof pid, "%d", (int) waiter);
                CHECK(txt && strstr(txt, pid));
                if (txt)
                        fprintf(stderr, "%s", txt);
                json_object_put(doc);
        }
        snap_test_done(&t);
        kill(waiter, SIGKILL);
        waitpid(waiter, NULL, 0);
}

int main(void) {
        if (geteuid() != 0) {
                printf("skip: an OOM kill in a cgroup and kernel stacks need root\n");
                return 77;
        }
        test_oom();
        test_dstate();
        return TAP_DONE();
}
