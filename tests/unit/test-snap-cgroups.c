/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag_snap_cgroups() against a real memory cgroup (v1 or v2, whichever this
 * machine has) holding one child that touched a known amount of memory: the
 * part's figures are checked against the cgroup's own files and the amount, and
 * the near-limit finding must name the cgroup. Needs root (skips otherwise).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap-test.h"
#include "tap.h"

#define ALLOC_MB 64

static char cgdir[128];
static bool v2;

static long long get(const char *file) {
        char path[256], buf[64];

        snprintf(path, sizeof path, "%s/%s", cgdir, file);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                return -1;
        return atoll(buf);
}

static struct json_object *find_cgroup(struct json_object *doc, const char *path, int version) {
        struct json_object *arr;

        if (!json_object_object_get_ex(doc, "cgroups", &arr))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                struct json_object *o = json_object_array_get_idx(arr, i), *p, *v;
                if (json_object_object_get_ex(o, "path", &p) && json_object_object_get_ex(o, "version", &v) &&
                    strcmp(json_object_get_string(p), path) == 0 && json_object_get_int(v) == version)
                        return o;
        }
        return NULL;
}

/* A child spinning under a CPU quota of 10 %: the part must see it throttled. */
static void test_throttle(void) {
        char dir[128], path[80];
        _cleanup_free_ char *ctl = NULL;
        bool cv2 = false;
        struct snap_test t;
        pid_t child;

        if (access("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", F_OK) == 0)
                snprintf(dir, sizeof dir, "/sys/fs/cgroup/cpu/diagkit-thr-%d", (int) getpid());
        else if (diag_read_file_at(AT_FDCWD, "/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, NULL) == 0 &&
                 strstr(ctl, "cpu")) {
                cv2 = true;
                (void) snap_test_put("/sys/fs/cgroup", "cgroup.subtree_control", "+cpu");
                snprintf(dir, sizeof dir, "/sys/fs/cgroup/diagkit-thr-%d", (int) getpid());
        } else {
                printf("throttling: skipped, no cpu controller at /sys/fs/cgroup\n");
                return;
        }
        CHECK(mkdir(dir, 0755) == 0);
        CHECK(cv2 ? snap_test_put(dir, "cpu.max", "10000 100000") == 0
                  : snap_test_put(dir, "cpu.cfs_quota_us", "10000") == 0);
        child = fork();
        if (child == 0) {
                if (snap_test_join(dir) < 0)
                        _exit(1);
                for (volatile unsigned long n = 0;; n++)
                        ;
        }
        usleep(300000);
        snap_test_init(&t, 500);
        CHECK_INT(diag_snap_cgroups(&t.s), 0);
        {
                struct json_object *doc = snap_test_json(&t, "cgroups.json");
                struct json_object *o;
                _cleanup_free_ char *fnd = snap_test_findings(&t);

                snprintf(path, sizeof path, "/diagkit-thr-%d", (int) getpid());
                o = find_cgroup(doc, path, cv2 ? 2 : 1);
                CHECK(o != NULL);
                fprintf(stderr, "cgroup %s: nr_throttled %lld, throttled_pct %lld\n", path,
                        snap_test_jget(o, "nr_throttled"), snap_test_jget(o, "throttled_pct"));
                CHECK(snap_test_jget(o, "nr_throttled") > 0);
                /* 10 % allowed of a CPU it would use whole: throttled most of the time */
                CHECK(snap_test_jget(o, "throttled_pct") > 30 && snap_test_jget(o, "throttled_pct") <= 100);
                CHECK(fnd && strstr(fnd, "CPU throttled") && strstr(fnd, path));
                json_object_put(doc);
        }
        snap_test_done(&t);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        for (int i = 0; i < 50 && rmdir(dir) < 0 && errno == EBUSY; i++)
                usleep(20000);
}

int main(void) {
        struct snap_test t;
        char name[64], val[32], buf[1];
        int pfd[2], gfd[2];
        long long baseline = -1, expect, used;
        int r;
        pid_t child;
        _cleanup_free_ char *ctl = NULL;

        if (geteuid() != 0) {
                printf("skip: making a cgroup needs root\n");
                return 77;
        }
        snprintf(name, sizeof name, "diagkit-test-%d", (int) getpid());
        if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0) {
                snprintf(cgdir, sizeof cgdir, "/sys/fs/cgroup/memory/%s", name);
        } else if (diag_read_file_at(AT_FDCWD, "/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, NULL) == 0 &&
                   strstr(ctl, "memory")) {
                v2 = true;
                (void) snap_test_put("/sys/fs/cgroup", "cgroup.subtree_control", "+memory");
                snprintf(cgdir, sizeof cgdir, "/sys/fs/cgroup/%s", name);
        } else {
                printf("skip: no memory cgroup controller at /sys/fs/cgroup\n");
                return 77;
        }
        if (mkdir(cgdir, 0755) < 0) {
                perror(cgdir);
                return 99;
        }
        if (pipe(pfd) < 0 || pipe(gfd) < 0)
                return 99;
        child = fork();
        if (child == 0) {
                char go;

                if (snap_test_join(cgdir) < 0)
                        _exit(1);
                (void) !write(pfd[1], "j", 1);
                if (read(gfd[0], &go, 1) != 1 || !snap_test_touch(ALLOC_MB))
                        _exit(1);
                (void) !write(pfd[1], "x", 1);
                pause();
                _exit(0);
        }
        close(pfd[1]);
        close(gfd[0]);
        /* what the child holds before allocating (the sanitizers' share is large) */
        if (read(pfd[0], buf, 1) == 1) {
                baseline = get(v2 ? "memory.current" : "memory.usage_in_bytes");
                (void) !write(gfd[1], "g", 1);
        }
        if (read(pfd[0], buf, 1) != 1 || baseline < 0) {
                fprintf(stderr, "child did not get ready\n");
                waitpid(child, NULL, 0);
                rmdir(cgdir);
                return 99;
        }

        /* a limit the usage is close to: the near-limit finding must name the cgroup */
        expect = baseline + ((long long) ALLOC_MB << 20);
        used = get(v2 ? "memory.current" : "memory.usage_in_bytes");
        snprintf(val, sizeof val, "%lld", (long long) (MAX(used, expect) / 0.95) & ~4095LL);
        if ((r = snap_test_put(cgdir, v2 ? "memory.max" : "memory.limit_in_bytes", val)) < 0) {
                fprintf(stderr, "cannot set the limit %s: %s (baseline %lld)\n", val, strerror(-r), baseline);
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
                rmdir(cgdir);
                return 99;
        }
        snap_test_init(&t, 300);
        CHECK_INT(diag_snap_cgroups(&t.s), 0);
        {
                long long oracle = get(v2 ? "memory.current" : "memory.usage_in_bytes");
                char path[80];
                struct json_object *doc = snap_test_json(&t, "cgroups.json"), *o, *v;
                _cleanup_free_ char *txt = snap_test_read(&t, "cgroups.txt");
                _cleanup_free_ char *fnd = snap_test_findings(&t);
                long long cur;

                snprintf(path, sizeof path, "/%s", name);
                CHECK(doc != NULL);
                CHECK(json_object_object_get_ex(doc, "schema", &v) && strcmp(json_object_get_string(v), "diag-snap/1") == 0);
                CHECK(json_object_object_get_ex(doc, "part", &v) && strcmp(json_object_get_string(v), "cgroups") == 0);
                o = find_cgroup(doc, path, v2 ? 2 : 1);
                CHECK(o != NULL);
                cur = snap_test_jget(o, "memory_current");
                fprintf(stderr, "cgroup %s: part says %lld bytes, the cgroup %lld, expected %lld (%lld + %d MiB)\n", path,
                        cur, oracle, expect, baseline, ALLOC_MB);
                /* the sanitizers' shadow of the pages may be charged too */
                CHECK(cur > expect * 0.9 && cur < expect * 1.25);
                CHECK(oracle > 0 && cur > oracle * 0.9 && cur < oracle * 1.1);
                CHECK_INT(snap_test_jget(o, "memory_limit"), atoll(val));
                CHECK_INT(snap_test_jget(o, "procs"), 1);
                CHECK_INT(snap_test_jget(o, "oom_kill"), 0);
                CHECK(txt && strstr(txt, path));
                CHECK(fnd && strstr(fnd, "F\t2\tcgroups.txt\tcgroup ") && strstr(fnd, path));
                /* its memory is anonymous and resident: near the limit, but no thrash */
                CHECK(fnd && !strstr(fnd, "thrash"));
                if (fnd)
                        fprintf(stderr, "findings:\n%s", fnd);
                json_object_put(doc);
        }
        snap_test_done(&t);

        /* the child's memory cgroup and the limit that applies to it, as the procs part
         * reads them; a cgroup that does not exist has none that can be read */
        {
                char path[80], file[64];
                _cleanup_free_ char *text = NULL;
                const char *got;
                int64_t lim;

                snprintf(path, sizeof path, "/%s", name);
                snprintf(file, sizeof file, "/proc/%d/cgroup", (int) child);
                CHECK(diag_read_file_at(AT_FDCWD, file, 1 << 16, &text, NULL) == 0);
                got = text ? diag_snap_memcg(text, &lim) : NULL;
                CHECK(got && strcmp(got, path) == 0);
                CHECK_INT(got ? lim : -2, atoll(val));
                CHECK(diag_snap_memcg(text, &lim) == got);      /* kept: the same string */
                got = diag_snap_memcg(v2 ? "0::/diagkit-none-such\n" : "4:memory:/diagkit-none-such\n0::/\n", &lim);
                CHECK(got && strcmp(got, "/diagkit-none-such") == 0);
                CHECK_INT(lim, -1);
                CHECK(diag_snap_memcg("garbage", &lim) == NULL);
        }

        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        for (int i = 0; i < 50 && rmdir(cgdir) < 0 && errno == EBUSY; i++)
                usleep(20000);
        test_throttle();
        return TAP_DONE();
}
