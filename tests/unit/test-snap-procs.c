/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-snap part "procs" against processes of ours: ten children with one command
 * line and a known private allocation (together more than a fifth of memory when
 * the machine has room) must be one group with their PSS, and one child that grows
 * during the window must be named; a child's ppid, threads and fds against /proc.
 */
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/snap.h"
#include "diag/util.h"
#include "snap-run.h"
#include "tap.h"

#define NKIDS 10

static unsigned long long kb_of(const char *path, const char *key) {
        char buf[8192], *p;
        size_t klen = strlen(key);

        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
                return 0;
        for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, key, klen) == 0 && p[klen] == ':')
                        return strtoull(p + klen + 1, NULL, 10);
        return 0;
}

/* A child: touch MiB of private memory, say so on fd, (grow: as much again every
 * 20 ms for 2 s once SIGUSR1 comes), then wait to be killed. */
static int child(const char *mib_s, const char *fd_s, bool grow) {
        size_t len = strtoull(mib_s, NULL, 10) << 20;
        char *m = malloc(len);
        sigset_t usr1;
        int sig;

        if (!m)
                return 1;
        memset(m, 0x5a, len);
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        sigprocmask(SIG_BLOCK, &usr1, NULL);
        (void) !write(atoi(fd_s), "x", 1);
        if (grow && sigwait(&usr1, &sig) == 0)
                /* told the window began: grow by as much every 20 ms, for 2 s at most */
                for (int i = 0; i < 100; i++) {
                        char *more = malloc(len);
                        if (more)
                                memset(more, 0x5b, len);
                        usleep(20 * 1000);
                }
        for (;;)
                pause();
}

/* A child re-reading a file through a mapping whose pages are dropped after every
 * pass, without readahead: a major fault per page. */
static int faulter(const char *path, int fd_ready) {
        size_t len = 16 << 20;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        volatile char sum = 0;

        if (fd < 0)
                return 1;
        (void) !write(fd_ready, "x", 1);
        for (;;) {
                char *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
                if (m == MAP_FAILED)
                        return 1;
                madvise(m, len, MADV_RANDOM);
                for (size_t o = 0; o < len; o += 4096)
                        sum += m[o];
                munmap(m, len);
                posix_fadvise(fd, 0, (off_t) len, POSIX_FADV_DONTNEED);
        }
}

static pid_t spawn(const char *self, const char *mode, unsigned mib, int fd) {
        char mib_s[16], fd_s[16];
        pid_t pid;

        snprintf(mib_s, sizeof mib_s, "%u", mib);
        snprintf(fd_s, sizeof fd_s, "%d", fd);
        pid = fork();
        if (pid == 0) {
                execl(self, self, mode, mib_s, fd_s, (char *) NULL);
                _exit(127);
        }
        return pid;
}

static unsigned count_fds(pid_t pid) {
        char path[64];
        unsigned n = 0;
        DIR *d;
        struct dirent *de;

        snprintf(path, sizeof path, "/proc/%d/fd", pid);
        d = opendir(path);
        if (!d)
                return 0;
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

static struct json_object *find_pid(struct json_object *procs, pid_t pid) {
        for (size_t i = 0; i < json_object_array_length(procs); i++) {
                struct json_object *p = json_object_array_get_idx(procs, i);
                if (json_object_get_int(json_object_object_get(p, "pid")) == pid)
                        return p;
        }
        return NULL;
}

int main(int argc, char **argv) {
        char dir[] = "/tmp/test-snap-procs.XXXXXX", buf[1 << 16], path[512], cmd[256], c;
        unsigned long long total_kb = kb_of("/proc/meminfo", "MemTotal"), avail_kb = kb_of("/proc/meminfo", "MemAvailable");
        unsigned mib = 32;
        bool big = false;
        pid_t kids[NKIDS], grower, faulter_pid;
        int ready[2];
        struct stat st;

        if (argc == 4 && strcmp(argv[1], "--fault") == 0)
                return faulter(argv[2], atoi(argv[3]));
        if (argc == 4 && (strcmp(argv[1], "--child") == 0 || strcmp(argv[1], "--grow") == 0))
                return child(argv[2], argv[3], strcmp(argv[1], "--grow") == 0);

        /* a fifth of memory and some, when that is at most 40 % of what is available
         * and small enough to touch quickly (2 GiB in all): a small machine */
        if (avail_kb > total_kb / 100 * 60 && total_kb / 1024 * 23 / 100 <= 2048) {
                mib = (unsigned) (total_kb / 1024 * 23 / 100 / NKIDS);
                big = true;
        }
        if (!mkdtemp(dir) || pipe(ready) < 0) {
                perror("setup");
                return 99;
        }
        /* the faulter's file, on disk next to the bundle (a tmpfs has no major faults) */
        char ffile[600], fd_s[16];
        snprintf(ffile, sizeof ffile, "%s.faults", dir);
        {
                int ffd = open(ffile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                static char blk[1 << 20];
                memset(blk, 0x44, sizeof blk);
                for (int i = 0; ffd >= 0 && i < 16; i++)
                        (void) !write(ffd, blk, sizeof blk);
                if (ffd >= 0) {
                        fsync(ffd);
                        close(ffd);
                }
        }
        for (int i = 0; i < NKIDS; i++)
                kids[i] = spawn(argv[0], "--child", mib, ready[1]);
        grower = spawn(argv[0], "--grow", 32, ready[1]);
        snprintf(fd_s, sizeof fd_s, "%d", ready[1]);
        faulter_pid = fork();
        if (faulter_pid == 0) {
                execl(argv[0], argv[0], "--fault", ffile, fd_s, (char *) NULL);
                _exit(127);
        }
        close(ready[1]);
        for (int i = 0; i < NKIDS + 2; i++)
                if (read(ready[0], &c, 1) != 1) {
                        fprintf(stderr, "a child did not start\n");
                        return 99;
                }

        uint64_t took_ms;
        kill(grower, SIGUSR1);
        CHECK_INT(snap_run(diag_snap_procs, dir, 1000, 10000, buf, sizeof buf, &took_ms), 0);

        /* the oracle: the children's own smaps_rollup, read after the part */
        unsigned long long pss_kb = 0, priv_kb = 0;
        for (int i = 0; i < NKIDS; i++) {
                snprintf(path, sizeof path, "/proc/%d/smaps_rollup", kids[i]);
                pss_kb += kb_of(path, "Pss");
                priv_kb += kb_of(path, "Private_Clean") + kb_of(path, "Private_Dirty");
        }
        CHECK(pss_kb >= (unsigned long long) NKIDS * mib * 1024 * 9 / 10);

        snprintf(cmd, sizeof cmd, "%s --child %u %d", argv[0], mib, ready[1]);
        snprintf(path, sizeof path, "%s/processes.json", dir);
        struct json_object *root = json_object_from_file(path), *groups, *procs, *g = NULL, *p;
        CHECK(root != NULL);
        if (!root)
                goto out;
        CHECK_STR(json_object_get_string(json_object_object_get(root, "schema")), "diag-snap/1");
        CHECK_STR(json_object_get_string(json_object_object_get(root, "part")), "procs");
        groups = json_object_object_get(root, "groups");
        for (size_t i = 0; i < json_object_array_length(groups); i++)
                if (strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(groups, i), "command")), cmd) == 0)
                        g = json_object_array_get_idx(groups, i);
        CHECK(g != NULL);
        if (g) {
                double gpss = (double) json_object_get_uint64(json_object_object_get(g, "pss_bytes")) / 1024;
                double gpriv = (double) json_object_get_uint64(json_object_object_get(g, "private_bytes")) / 1024;
                CHECK_INT(json_object_get_int(json_object_object_get(g, "count")), NKIDS);
                CHECK_INT(json_object_get_int(json_object_object_get(g, "parent")), getpid());
                printf("group PSS %.0f kB (oracle %llu), private %.0f kB (oracle %llu)\n", gpss, pss_kb, gpriv, priv_kb);
                CHECK(gpss > (double) pss_kb * 0.9 && gpss < (double) pss_kb * 1.1);
                CHECK(gpriv > (double) priv_kb * 0.9 && gpriv < (double) priv_kb * 1.1);
        }

        /* one child against /proc */
        procs = json_object_object_get(root, "processes");
        p = find_pid(procs, kids[0]);
        CHECK(p != NULL);
        if (p) {
                char stat[1024];
                snprintf(path, sizeof path, "/proc/%d/stat", kids[0]);
                diag_read_small_at(AT_FDCWD, path, stat, sizeof stat);
                long threads = 0;
                sscanf(strrchr(stat, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld", &threads);
                CHECK_INT(json_object_get_int(json_object_object_get(p, "ppid")), getpid());
                CHECK_INT(json_object_get_int(json_object_object_get(p, "threads")), threads);
                CHECK_INT(json_object_get_int(json_object_object_get(p, "fds")), count_fds(kids[0]));
                CHECK_STR(json_object_get_string(json_object_object_get(p, "command")), cmd);
                CHECK_STR(json_object_get_string(json_object_object_get(p, "state")), "S");
                /* the cgroup: the 0:: line where there is one, else the first */
                char cg[2048], *line;
                snprintf(path, sizeof path, "/proc/%d/cgroup", kids[0]);
                diag_read_small_at(AT_FDCWD, path, cg, sizeof cg);
                line = strncmp(cg, "0::", 3) == 0 ? cg : strstr(cg, "\n0::") ? strstr(cg, "\n0::") + 1 : cg;
                line[strcspn(line, "\n")] = 0;
                CHECK_STR(json_object_get_string(json_object_object_get(p, "cgroup")), line);
                struct passwd *pw = getpwuid(getuid());
                if (pw)
                        CHECK_STR(json_object_get_string(json_object_object_get(p, "user")), pw->pw_name);
                snprintf(path, sizeof path, "/proc/%d/oom_score", kids[0]);
                diag_read_small_at(AT_FDCWD, path, stat, sizeof stat);
                CHECK_INT(json_object_get_int(json_object_object_get(p, "oom_score")), atoi(stat));
        }
        p = find_pid(procs, getpid());
        CHECK(p != NULL && json_object_get_int(json_object_object_get(p, "ppid")) == getppid());

        /* findings: the grower (how much it grows in the window depends on how busy the
         * machine is: it grew, and the finding is there exactly when it grew 64 MiB),
         * and the group when it holds more than a fifth */
        p = find_pid(procs, grower);
        CHECK(p != NULL);
        if (p) {
                int64_t grew = json_object_get_int64(json_object_object_get(p, "rss_growth_bytes"));
                printf("grower grew %lld bytes\n", (long long) grew);
                CHECK(grew >= 32 << 20);
                snprintf(path, sizeof path, "F\t1\tprocesses.txt\tpid %d ", grower);
                CHECK((strstr(buf, path) != NULL) == (grew >= 64 << 20));
        }
        p = find_pid(procs, faulter_pid);
        CHECK(p != NULL);
        bool tmpfs_like = p && json_object_get_double(json_object_object_get(p, "major_faults_per_s")) == 0;
        if (p)
                printf("faulter %d: %.0f major faults/s\n", faulter_pid,
                       json_object_get_double(json_object_object_get(p, "major_faults_per_s")));
        if (!tmpfs_like) {
                CHECK(json_object_get_double(json_object_object_get(p, "major_faults_per_s")) >= 200);
                snprintf(path, sizeof path, "F\t2\ttop.txt\tpid %d ", faulter_pid);
                CHECK(strstr(buf, path) != NULL);
        } else
                printf("no major faults from %s (a file system without them?): not checked\n", ffile);
        if (big) {
                snprintf(path, sizeof path, "F\t3\tgroups.txt\t%d processes \"", NKIDS);
                CHECK(strstr(buf, path) != NULL);
        } else
                printf("not enough memory available for the group finding: not checked\n");

        /* the text files, private and bounded */
        const char *files[] = { "processes.txt", "top.txt", "groups.txt", "tree.txt", "processes.json" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof path, "%s/%s", dir, files[i]);
                CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size > 0 && st.st_size < (2 << 20));
        }
        snprintf(path, sizeof path, "%s/groups.txt", dir);
        {
                _cleanup_free_ char *text = NULL;
                char line[64];
                diag_read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL);
                snprintf(line, sizeof line, "\n%6d ", NKIDS);
                CHECK(text && strstr(text, line) && strstr(text, cmd));
        }
        json_object_put(root);

        /* a deadline shorter than the window: the part shortens the window, and what it
         * read is written */
        {
                char dir2[] = "/tmp/test-snap-procs-short.XXXXXX", out2[1 << 14];
                uint64_t ms;
                CHECK(mkdtemp(dir2) != NULL);
                CHECK_INT(snap_run(diag_snap_procs, dir2, 1000, 600, out2, sizeof out2, &ms), 0);
                CHECK(ms < 1000);       /* shorter than the 1 s window asked for */
                snprintf(path, sizeof path, "%s/processes.json", dir2);
                root = json_object_from_file(path);
                CHECK(root && json_object_array_length(json_object_object_get(root, "processes")) > NKIDS);
                json_object_put(root);
                snprintf(out2, sizeof out2, "rm -rf '%s'", dir2);
                if (system(out2) != 0)
                        fprintf(stderr, "could not remove %s\n", dir2);
        }
out:
        for (int i = 0; i < NKIDS; i++)
                kill(kids[i], SIGKILL);
        kill(grower, SIGKILL);
        kill(faulter_pid, SIGKILL);
        unlink(ffile);
        while (wait(NULL) > 0)
                ;
        snprintf(buf, sizeof buf, "rm -rf '%s'", dir);
        if (system(buf) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        return TAP_DONE();
}
