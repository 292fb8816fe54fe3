/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The built-in demo for `diag demo`: a worker pool that hangs the way PHP-FPM
 * pools do. Each worker serves a request by taking an exclusive flock on the
 * user's session file. The first one, holding it, asks a backend for data over
 * a loopback TCP connection and waits in poll(); the backend accepted the
 * connection but never answers (it is stuck in a sleep). The other workers pile
 * up on the session lock.
 *
 * Prints "PID <pid>", "session <path>", "backend <pid> port=<port>",
 * "holder <pid>", "waiter <pid>" lines, then "READY". SIGTERM ends it all.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_WAITERS 3

static char dir[] = "/tmp/diag-demo-XXXXXX";
static char session[64];
static pid_t children[N_WAITERS + 2];
static int nchildren;

static pid_t spawn(const char *name, void (*fn)(void *), void *arg) {
        pid_t p = fork();

        if (p < 0) {
                perror("fork");
                exit(1);
        }
        if (p == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                sigset_t none;

                prctl(PR_SET_NAME, name);
                /* the parent blocks SIGTERM for sigwait(); its children must not */
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                fn(arg);
                _exit(0);
        }
        children[nchildren++] = p;
        return p;
}

/* The backend: accepts, reads the request, then "thinks" for ever. */
__attribute__((noinline)) static void backend_process_request(int c) {
        char buf[256];
        (void) !read(c, buf, sizeof buf);
        for (;;)
                sleep(3600);
}

static void backend(void *arg) {
        int lfd = *(int *) arg;
        int c = accept(lfd, NULL, NULL);
        if (c >= 0)
                backend_process_request(c);
}

/* A worker: lock the session, fetch from the backend, unlock. */
__attribute__((noinline)) static int fetch_session_data(int port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        static const char req[] = "GET session 42\r\n";
        struct pollfd p;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) < 0)
                return -1;
        (void) !write(fd, req, sizeof req - 1);
        p = (struct pollfd) { .fd = fd, .events = POLLIN };
        return poll(&p, 1, -1);         /* the answer never comes */
}

__attribute__((noinline)) static void handle_request(int port) {
        int fd = open(session, O_RDWR | O_CLOEXEC);

        if (fd < 0 || flock(fd, LOCK_EX) < 0)
                _exit(1);
        fetch_session_data(port);
        flock(fd, LOCK_UN);
}

static void worker(void *arg) {
        handle_request(*(int *) arg);
}

static void cleanup(void) {
        for (int i = 0; i < nchildren; i++)
                kill(children[i], SIGKILL);
        for (int i = 0; i < nchildren; i++)
                waitpid(children[i], NULL, 0);
        unlink(session);
        rmdir(dir);
}

/* Until /proc/PID/wchan (or syscall) shows the process asleep: the scene is set. */
static void wait_asleep(pid_t pid) {
        char path[64], buf[64];
        for (int i = 0; i < 500; i++) {
                FILE *f;
                snprintf(path, sizeof path, "/proc/%d/stat", pid);
                if ((f = fopen(path, "re"))) {
                        char *p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
                        fclose(f);
                        if (p && p[2] == 'S')
                                return;
                }
                nanosleep(&(struct timespec) { .tv_nsec = 2000000 }, NULL);
        }
}

int main(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof a;
        int lfd, port, fd;
        pid_t holder;
        sigset_t set;
        int sig;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(session, sizeof session, "%s/sess_42", dir);
        fd = open(session, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) {
                perror(session);
                return 1;
        }
        close(fd);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &a, sizeof a) < 0 || listen(lfd, 8) < 0 ||
            getsockname(lfd, (struct sockaddr *) &a, &alen) < 0) {
                perror("backend socket");
                return 1;
        }
        port = ntohs(a.sin_port);
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        atexit(cleanup);

        printf("PID %d\nsession %s\n", (int) getpid(), session);
        printf("backend %d port=%d\n", (int) spawn("demo-backend", backend, &lfd), port);
        close(lfd);
        holder = spawn("demo-worker", worker, &port);
        wait_asleep(holder);
        printf("holder %d\n", (int) holder);
        for (int i = 0; i < N_WAITERS; i++) {
                pid_t w = spawn("demo-worker", worker, &port);
                wait_asleep(w);
                printf("waiter %d\n", (int) w);
        }
        printf("READY\n");
        sigwait(&set, &sig);
        return 0;
}
