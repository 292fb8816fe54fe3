/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The built-in demo for `diag demo`: a small request server that hangs the way
 * real ones do. Worker threads serving requests all need the session lock; the
 * worker holding it is waiting for a backend that accepted the connection but
 * never answers. Nothing here spins: every thread is blocked, as in production.
 *
 * Prints "PID <pid>", one "worker <tid> ..." line per thread, then "READY".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N_WAITERS 4

static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t started;
static struct sockaddr_in backend_addr;

static pid_t gettid_(void) {
        return (pid_t) syscall(SYS_gettid);
}

/* Ask the backend for the session data: it never answers. */
__attribute__((noinline)) static ssize_t backend_fetch(int fd, char *buf, size_t len) {
        static const char req[] = "GET /session/42\r\n";

        if (send(fd, req, sizeof req - 1, 0) < 0)
                return -1;
        return recv(fd, buf, len, 0);
}

__attribute__((noinline)) static void *session_refresh(void *arg) {
        char buf[512];
        int fd;

        (void) arg;
        pthread_setname_np(pthread_self(), "refresh");
        pthread_mutex_lock(&session_lock);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &backend_addr, sizeof backend_addr) < 0) {
                perror("connect");
                exit(1);
        }
        printf("holder %d fd=%d port=%d\n", gettid_(), fd, ntohs(backend_addr.sin_port));
        pthread_barrier_wait(&started);
        backend_fetch(fd, buf, sizeof buf);
        pthread_mutex_unlock(&session_lock);
        return NULL;
}

__attribute__((noinline)) static void handle_request(int n) {
        pthread_mutex_lock(&session_lock);
        /* would read the session here */
        pthread_mutex_unlock(&session_lock);
        (void) n;
}

static void *request_worker(void *arg) {
        int n = (int) (long) arg;
        char name[16];

        snprintf(name, sizeof name, "worker-%d", n);
        pthread_setname_np(pthread_self(), name);
        printf("waiter %d lock=%p\n", gettid_(), (void *) &session_lock);
        pthread_barrier_wait(&started);
        handle_request(n);
        return NULL;
}

int main(void) {
        pthread_t holder, waiters[N_WAITERS];
        socklen_t alen = sizeof backend_addr;
        int lfd;
        sigset_t set;
        int sig;

        setvbuf(stdout, NULL, _IOLBF, 0);
        /* The "backend": a listening socket that nobody accepts from. The kernel
         * completes the handshake, so connect() works and recv() waits forever. */
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&backend_addr, 0, sizeof backend_addr);
        backend_addr.sin_family = AF_INET;
        backend_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &backend_addr, sizeof backend_addr) < 0 ||
            listen(lfd, 8) < 0 || getsockname(lfd, (struct sockaddr *) &backend_addr, &alen) < 0) {
                perror("backend socket");
                return 1;
        }
        printf("PID %d\n", (int) getpid());
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);

        pthread_barrier_init(&started, NULL, 2);
        pthread_create(&holder, NULL, session_refresh, NULL);
        pthread_barrier_wait(&started);
        pthread_barrier_destroy(&started);
        pthread_barrier_init(&started, NULL, N_WAITERS + 1);
        for (long i = 0; i < N_WAITERS; i++)
                pthread_create(&waiters[i], NULL, request_worker, (void *) (i + 1));
        pthread_barrier_wait(&started);
        /* let the waiters reach the lock */
        usleep(100 * 1000);
        printf("READY\n");
        sigwait(&set, &sig);
        return 0;
}
