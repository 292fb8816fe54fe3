/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-snap part "host" on this machine: its files against /proc, and the CPU
 * finding while children of ours keep every CPU busy.
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/snap.h"
#include "diag/util.h"
#include "snap-run.h"
#include "tap.h"

static unsigned long long meminfo_kb(const char *key) {
        char buf[8192], *p;
        size_t klen = strlen(key);

        if (diag_read_small_at(AT_FDCWD, "/proc/meminfo", buf, sizeof buf) <= 0)
                return 0;
        for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, key, klen) == 0 && p[klen] == ':')
                        return strtoull(p + klen + 1, NULL, 10);
        return 0;
}

int main(void) {
        char dir[] = "/tmp/test-snap-host.XXXXXX", buf[1 << 16], path[512], hostname[256] = "", bootid[64] = "";
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        pid_t kids[64];
        struct stat st;

        if (!mkdtemp(dir)) {
                perror("setup");
                return 99;
        }
        /* keep every CPU busy for the window: the CPU finding must come */
        for (long i = 0; i < ncpu && i < 64; i++) {
                kids[i] = fork();
                if (kids[i] == 0)
                        for (volatile unsigned long x = 0;; x++)
                                ;
        }
        /* and a writer with O_DIRECT next to the bundle: its disk must show the writes */
        char iofile[600], disk[64] = "";
        snprintf(iofile, sizeof iofile, "%s.io", dir);
        int iofd = open(iofile, O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
        pid_t writer = -1;
        if (iofd >= 0) {
                struct stat ist;
                char link[PATH_MAX], *base;
                ssize_t ln;

                fstat(iofd, &ist);
                snprintf(path, sizeof path, "/sys/dev/block/%u:%u/partition", major(ist.st_dev), minor(ist.st_dev));
                bool part = access(path, F_OK) == 0;
                snprintf(path, sizeof path, "/sys/dev/block/%u:%u%s", major(ist.st_dev), minor(ist.st_dev), part ? "/.." : "");
                ln = readlink(path, link, sizeof link - 1);
                if (part) {
                        /* the parent's name: realpath of the directory above */
                        char *rp = realpath(path, NULL);
                        if (rp)
                                snprintf(disk, sizeof disk, "%.63s", strrchr(rp, '/') + 1);
                        free(rp);
                } else if (ln > 0) {
                        link[ln] = 0;
                        base = strrchr(link, '/');
                        snprintf(disk, sizeof disk, "%.63s", base ? base + 1 : link);
                }
                writer = fork();
                if (writer == 0) {
                        void *blk;
                        if (posix_memalign(&blk, 4096, 1 << 20) != 0)
                                _exit(1);
                        memset(blk, 0x33, 1 << 20);
                        for (unsigned i = 0;; i++)
                                if (pwrite(iofd, blk, 1 << 20, (off_t) (i % 16) << 20) < 0)
                                        _exit(1);
                }
                close(iofd);
        } else
                printf("no O_DIRECT next to %s: disk writes not checked\n", dir);
        uint64_t took_ms;
        CHECK_INT(snap_run(diag_snap_host, dir, 500, 5000, buf, sizeof buf, &took_ms), 0);
        for (long i = 0; i < ncpu && i < 64; i++) {
                kill(kids[i], SIGKILL);
                waitpid(kids[i], NULL, 0);
        }
        if (writer > 0) {
                kill(writer, SIGKILL);
                waitpid(writer, NULL, 0);
        }
        unlink(iofile);
        CHECK(took_ms >= 500 && took_ms < 3000);
        CHECK(strstr(buf, "F\t2\thost.txt\tCPU ") != NULL);
        if (access("/proc/pressure/memory", R_OK) < 0)
                CHECK(strstr(buf, "M\thost: PSI\t") != NULL);

        snprintf(path, sizeof path, "%s/host.txt", dir);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(st.st_size > 500 && st.st_size < 64 * 1024);
        snprintf(path, sizeof path, "%s/host.json", dir);
        struct json_object *root = json_object_from_file(path), *o, *v;
        CHECK(root != NULL);
        if (!root)
                return TAP_DONE();
        CHECK_STR(json_object_get_string(json_object_object_get(root, "schema")), "diag-snap/1");
        CHECK_STR(json_object_get_string(json_object_object_get(root, "part")), "host");
        gethostname(hostname, sizeof hostname - 1);
        CHECK_STR(json_object_get_string(json_object_object_get(root, "hostname")), hostname);
        diag_read_small_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", bootid, sizeof bootid);
        diag_strip(bootid);
        CHECK_STR(json_object_get_string(json_object_object_get(root, "boot_id")), bootid);
        int64_t win = json_object_get_int64(json_object_object_get(root, "window_ms"));
        CHECK(win >= 495 && win < 1200);

        /* MemTotal is exact; the CPU split adds up to 100 and is mostly busy */
        o = json_object_object_get(root, "meminfo_bytes");
        CHECK_INT(json_object_get_uint64(json_object_object_get(o, "MemTotal")), meminfo_kb("MemTotal") * 1024);
        CHECK(json_object_object_get(o, "MemAvailable") != NULL);
        o = json_object_object_get(root, "cpu_pct");
        double sum = 0;
        const char *fields[] = { "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal" };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                sum += json_object_get_double(json_object_object_get(o, fields[i]));
        CHECK(sum > 99.0 && sum < 101.0);
        CHECK(json_object_get_double(json_object_object_get(o, "busy")) > 90.0);

        /* counters are totals read after ours: at least what /proc said before */
        o = json_object_object_get(root, "vmstat");
        CHECK(json_object_object_get(o, "pgmajfault") != NULL);
        v = json_object_object_get(root, "tcp");
        CHECK(json_object_object_get(v, "TcpExt:ListenOverflows") != NULL);
        CHECK(json_object_object_get(v, "Tcp:RetransSegs") != NULL);

        /* an interface "lo" always; every disk listed has had IO and is not a partition */
        o = json_object_object_get(root, "interfaces");
        bool lo = false;
        for (size_t i = 0; i < json_object_array_length(o); i++)
                lo |= strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(o, i), "name")), "lo") == 0;
        CHECK(lo);
        o = json_object_object_get(root, "disks");
        for (size_t i = 0; i < json_object_array_length(o); i++) {
                const char *name = json_object_get_string(json_object_object_get(json_object_array_get_idx(o, i), "name"));
                snprintf(path, sizeof path, "/sys/block/%s", name);
                CHECK(access(path, F_OK) == 0);
                CHECK(strncmp(name, "loop", 4) != 0 || json_object_get_uint64(json_object_object_get(
                        json_object_array_get_idx(o, i), "read_ios_total")) > 0);
        }
        bool seen = !disk[0] || writer < 0;
        for (size_t i = 0; i < json_object_array_length(o); i++) {
                struct json_object *d = json_object_array_get_idx(o, i);
                if (strcmp(json_object_get_string(json_object_object_get(d, "name")), disk) != 0)
                        continue;
                printf("disk %s: %.1f writes/s, %.0f bytes/s\n", disk,
                       json_object_get_double(json_object_object_get(d, "write_iops")),
                       json_object_get_double(json_object_object_get(d, "write_bytes_per_s")));
                seen = json_object_get_double(json_object_object_get(d, "write_iops")) >= 4 &&
                       json_object_get_double(json_object_object_get(d, "write_bytes_per_s")) >= 4 << 20;
        }
        CHECK(seen);
        if (access("/proc/pressure/io", R_OK) == 0) {
                o = json_object_object_get(json_object_object_get(root, "psi"), "io");
                CHECK(json_object_object_get(json_object_object_get(o, "some"), "avg10") != NULL);
        }
        json_object_put(root);

        /* a second run into the same directory never replaces a file: it says so */
        char again[4096];
        CHECK_INT(snap_run(diag_snap_host, dir, 10, 5000, again, sizeof again, &took_ms), 0);
        CHECK(strstr(again, "M\thost.txt\tnot written: File exists") != NULL);
        CHECK(strstr(again, "M\thost.json\tnot written: File exists") != NULL);

        snprintf(buf, sizeof buf, "rm -rf '%s'", dir);
        if (system(buf) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        return TAP_DONE();
}
