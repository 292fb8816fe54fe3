/* SPDX-License-Identifier: GPL-2.0-or-later */
/* diag_target_*: real processes of each kind (this one, a thread of it, a zombie
 * child, a kernel thread, a pid that does not exist) resolved and worded. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag/log.h"
#include "diag/proc.h"
#include "diag/target.h"
#include "tap.h"

static int pipefd[2];

static void *thread_main(void *arg) {
        pid_t tid = (pid_t) syscall(SYS_gettid);
        (void) arg;
        (void) !write(pipefd[1], &tid, sizeof tid);
        pause();
        return NULL;
}

/* A pid no process has: past pid_max, or one just reaped. */
static pid_t free_pid(void) {
        pid_t p = fork();
        if (p == 0)
                _exit(0);
        waitpid(p, NULL, 0);
        return p;
}

int main(void) {
        struct diag_target t;
        pthread_t th;
        pid_t tid = 0, z, gone;
        char buf[256];
        char *json = NULL;
        size_t len = 0;
        FILE *mem;

        prctl(PR_SET_NAME, "tgt-test");
        diag_target_resolve(getpid(), &t);
        CHECK_INT(t.kind, DIAG_TARGET_LIVE);
        CHECK_INT(t.pid, getpid());
        CHECK_INT(t.tid, 0);
        CHECK_STR(t.comm, "tgt-test");
        CHECK_INT(t.ppid, getppid());
        CHECK(diag_target_reason(&t, 0) == NULL);

        /* A thread id names its process. */
        CHECK_INT(pipe(pipefd), 0);
        CHECK_INT(pthread_create(&th, NULL, thread_main, NULL), 0);
        CHECK_INT(read(pipefd[0], &tid, sizeof tid), (long long) sizeof tid);
        diag_target_resolve(tid, &t);
        CHECK_INT(t.kind, DIAG_TARGET_LIVE);
        CHECK_INT(t.pid, getpid());
        CHECK_INT(t.tid, tid);
        diag_target_message(&t, -EPERM, "trace", buf, sizeof buf);
        CHECK(strstr(buf, "thread ") && strstr(buf, "of pid"));

        /* A zombie names the parent that has not reaped it. */
        z = fork();
        if (z == 0)
                _exit(0);
        for (int i = 0; i < 2000; i++) {
                char st = '?';
                if (diag_task_read_state(z, z, &st) == 0 && st == 'Z')
                        break;
                usleep(1000);
        }
        diag_target_resolve(z, &t);
        CHECK_INT(t.kind, DIAG_TARGET_ZOMBIE);
        CHECK_INT(t.ppid, getpid());
        CHECK_STR(t.parent_comm, "tgt-test");
        diag_target_message(&t, 0, "trace", buf, sizeof buf);
        snprintf(buf + 200, 56, "its parent %d (tgt-test)", getpid());
        CHECK(strstr(buf, "has exited: a zombie") && strstr(buf, buf + 200));
        CHECK_STR(diag_target_reason(&t, 0), "zombie");
        waitpid(z, NULL, 0);

        /* Gone. */
        gone = free_pid();
        diag_target_resolve(gone, &t);
        CHECK_INT(t.kind, DIAG_TARGET_GONE);
        diag_target_message(&t, 0, "trace", buf, sizeof buf);
        snprintf(buf + 200, 56, "pid %d: no such process", gone);
        CHECK_STR(buf, buf + 200);
        CHECK_STR(diag_target_reason(&t, 0), "gone");

        /* kthreadd is pid 2 where this runs in the init pid namespace. */
        diag_target_resolve(2, &t);
        if (t.kind != DIAG_TARGET_GONE && strcmp(t.comm, "kthreadd") == 0) {
                CHECK_INT(t.kind, DIAG_TARGET_KERNEL);
                diag_target_message(&t, 0, "unwind", buf, sizeof buf);
                CHECK_STR(buf, "pid 2 (kthreadd) is a kernel thread: it has no user space to unwind");
                CHECK_STR(diag_target_reason(&t, 0), "kernel-thread");
        } else
                printf("# pid 2 is not kthreadd here (a pid namespace): kernel-thread case not checked\n");

        /* Not permitted: worded for who we are. */
        diag_target_resolve(getpid(), &t);
        diag_target_message(&t, -EPERM, "trace", buf, sizeof buf);
        if (geteuid() == 0)
                CHECK(strstr(buf, "even as root") && !strstr(buf, "run as root"));
        else
                CHECK(strstr(buf, "run as root or as its owner"));
        CHECK_STR(diag_target_reason(&t, -EPERM), "not-permitted");
        CHECK_STR(diag_target_reason(&t, -EBUSY), "traced");

        /* The JSON error object. */
        mem = open_memstream(&json, &len);
        CHECK_INT(diag_json_error(mem, "pid 9: no such process", "gone", 9, DIAG_EXIT_FAILURE), 0);
        fclose(mem);
        CHECK(json && strstr(json, "\"error\"") && strstr(json, "\"reason\": \"gone\"") &&
              strstr(json, "\"pid\": 9") && strstr(json, "\"status\": 1"));
        free(json);
        return TAP_DONE();
}
