/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fdpop: a population of processes holding many file descriptors, for benchmarking
 * fd listers (diag-fds, lsof, lsfd), and the floors they are measured against.
 *
 *   fdpop [-n PROCS] [-m FDS] [-d DIR] [--shared]
 *
 * Forks PROCS processes (default 350), each holding exactly FDS descriptors (default
 * 57, at least MIN_FDS), so that the population holds PROCS * FDS of them (19,950 with
 * the defaults). The processes are taken in pairs, and each one holds:
 *
 *   0-2      /dev/null (stdin, stdout, stderr)
 *   1        /dev/null, read-write
 *   1        the temporary directory (O_DIRECTORY)
 *   8        pipe ends: 8 pipes between the two processes of its pair, 4 each way
 *   12       unix stream sockets: one end of each of 12 socketpairs with its partner
 *   8        loopback TCP sockets: one end of each of 8 connections with its partner
 *   4        eventfds, shared with its partner
 *   1        an epoll fd watching its pipes, sockets and eventfds
 *   the rest regular files in the temporary directory (FILES_SHARED files, shared by
 *            all), read-only or read-write
 *
 * --shared adds the shape of a prefork server: every process inherited one pipe as its
 * stdout and stderr (fds 1 and 2, in place of /dev/null), whose read end fdpop keeps (a
 * logger), and one end of a unix socketpair (in place of one regular file), whose other
 * end fdpop keeps. Each of those fds has every other process at its other end.
 *
 * One unix socket and one TCP connection per pair carry 64 unread bytes, so receive
 * queues are not all empty. With an odd PROCS the last process has no partner: it
 * holds one end of each of its pair objects, the other ends are closed. The temporary directory is made with mkdtemp
 * under DIR (default $TMPDIR or /tmp), named fdpop.XXXXXX.
 *
 * It prints "PID <pid>", then "READY <procs> <fds>" once every process holds its
 * descriptors (fds: the population's total), and stays until SIGTERM, SIGINT or SIGHUP:
 * then it kills every child, waits for them, removes its temporary
 * directory and exits 0. The children die with it if it is killed (PR_SET_PDEATHSIG).
 *
 * The floors, each a bare system-wide loop over /proc/[0-9]*, printing what it saw as
 * "procs <n> fds <n>":
 *
 *   fdpop --floor readlink   opendir /proc/PID/fd, readlinkat every entry; nothing else
 *   fdpop --floor fdinfo     the same, and also read /proc/PID/fdinfo/N of every fd
 *
 * They stand for the least work any fd lister must do (readlink) and the least work of
 * one that also reads fdinfo for every fd.
 *
 *   fdpop --run CMD [ARG...]
 *
 * runs CMD with fdpop's stdin, stdout and stderr, waits for it, and then prints on stderr
 *
 *   fdpop-run: status S maxrss_kb K wall_us W
 *
 * S being CMD's exit status (128 + signal number if killed), K its peak resident set
 * (ru_maxrss of wait4) and W the time from before fork to after wait4. It exists for the
 * peak RSS: Linux keeps ru_maxrss across execve, so a command forked straight from a
 * large process (the Python benchmark script) would be charged that process's resident
 * set; forked from this small one, it is charged at most fdpop's own, a few hundred KiB.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_PIPES 8               /* per pair; each process holds one end of each */
#define N_UNIX 12               /* socketpairs per pair */
#define N_TCP 8                 /* TCP connections per pair */
#define N_EVENTFD 4             /* eventfds per pair, held by both */
#define FILES_SHARED 20         /* regular files in the temporary directory */
#define FIXED_FDS (3 + 1 + 1 + N_PIPES + N_UNIX + N_TCP + N_EVENTFD + 1)
#define MIN_FDS (FIXED_FDS + 1)
#define MAX_PROCS 20000
#define MAX_FDS 10000
#define UNREAD_BYTES 64

static char tmpdir[PATH_MAX];
static int nfiles_made;
static int shared_pipe[2] = { -1, -1 };         /* --shared: [1] is every child's stdout */
static int shared_sock[2] = { -1, -1 };         /* --shared: [0] is held by every child */

static void die(const char *what) {
        fprintf(stderr, "fdpop: %s: %s\n", what, strerror(errno));
        exit(1);
}

static void remove_tmpdir(void) {
        char path[PATH_MAX + 32];

        if (!tmpdir[0])
                return;
        for (int i = 0; i < nfiles_made; i++) {
                snprintf(path, sizeof path, "%s/file%02d", tmpdir, i);
                (void) unlink(path);
        }
        (void) rmdir(tmpdir);
        tmpdir[0] = 0;
}

static bool parse_num(const char *s, long min, long max, long *ret) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

/* ---- floors ---- */

static int floor_run(bool fdinfo) {
        DIR *proc = opendir("/proc");
        struct dirent *pe;
        unsigned long nprocs = 0, nfds = 0;
        char link[PATH_MAX], info[4096];

        if (!proc)
                die("opendir /proc");
        while ((pe = readdir(proc))) {
                char sub[300];
                int fddir, infodir = -1;
                DIR *d;
                struct dirent *de;

                if (pe->d_name[0] < '1' || pe->d_name[0] > '9')
                        continue;
                snprintf(sub, sizeof sub, "%s/fd", pe->d_name);
                fddir = openat(dirfd(proc), sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fddir < 0)
                        continue;
                if (fdinfo) {
                        snprintf(sub, sizeof sub, "%s/fdinfo", pe->d_name);
                        infodir = openat(dirfd(proc), sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                }
                d = fdopendir(fddir);
                if (!d) {
                        close(fddir);
                        if (infodir >= 0)
                                close(infodir);
                        continue;
                }
                nprocs++;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        if (readlinkat(fddir, de->d_name, link, sizeof link) < 0)
                                continue;
                        nfds++;
                        if (infodir >= 0) {
                                int f = openat(infodir, de->d_name, O_RDONLY | O_CLOEXEC);
                                if (f >= 0) {
                                        (void) !read(f, info, sizeof info);
                                        close(f);
                                }
                        }
                }
                closedir(d);
                if (infodir >= 0)
                        close(infodir);
        }
        closedir(proc);
        printf("procs %lu fds %lu\n", nprocs, nfds);
        return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- the launcher ---- */

static int run_measured(char **argv) {
        struct timespec t0, t1;
        struct rusage ru;
        int status;
        pid_t pid;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                execvp(argv[0], argv);
                fprintf(stderr, "fdpop: cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        die("wait4");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr, "fdpop-run: status %d maxrss_kb %ld wall_us %lld\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ru.ru_maxrss,
                (long long) (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
        return 0;
}

/* ---- the population ---- */

struct pair_objs {
        int pipes[N_PIPES][2];
        int usock[N_UNIX][2];
        int tcp[N_TCP][2];      /* [0] client end, [1] accepted end */
        int efd[N_EVENTFD];
};

static int tcp_connect(int lfd, const struct sockaddr_in *addr, int ret[2]) {
        ret[0] = socket(AF_INET, SOCK_STREAM, 0);
        if (ret[0] < 0)
                return -1;
        if (connect(ret[0], (const struct sockaddr *) addr, sizeof *addr) < 0)
                return -1;
        ret[1] = accept(lfd, NULL, NULL);
        return ret[1] < 0 ? -1 : 0;
}

static void make_pair_objs(int lfd, const struct sockaddr_in *addr, struct pair_objs *o) {
        for (int i = 0; i < N_PIPES; i++)
                if (pipe(o->pipes[i]) < 0)
                        die("pipe");
        for (int i = 0; i < N_UNIX; i++)
                if (socketpair(AF_UNIX, SOCK_STREAM, 0, o->usock[i]) < 0)
                        die("socketpair");
        for (int i = 0; i < N_TCP; i++)
                if (tcp_connect(lfd, addr, o->tcp[i]) < 0)
                        die("loopback TCP connection");
        for (int i = 0; i < N_EVENTFD; i++)
                if ((o->efd[i] = eventfd(0, 0)) < 0)
                        die("eventfd");
}

static void close_pair_objs(struct pair_objs *o) {
        for (int i = 0; i < N_PIPES; i++) {
                close(o->pipes[i][0]);
                close(o->pipes[i][1]);
        }
        for (int i = 0; i < N_UNIX; i++) {
                close(o->usock[i][0]);
                close(o->usock[i][1]);
        }
        for (int i = 0; i < N_TCP; i++) {
                close(o->tcp[i][0]);
                close(o->tcp[i][1]);
        }
        for (int i = 0; i < N_EVENTFD; i++)
                close(o->efd[i]);
}

static bool in_list(int fd, const int *keep, int nkeep) {
        for (int i = 0; i < nkeep; i++)
                if (keep[i] == fd)
                        return true;
        return false;
}

static volatile sig_atomic_t child_stop;

static void on_child_signal(int sig) {
        (void) sig;
        child_stop = 1;
}

/* In the child: keep side `side` (0 or 1) of the pair's objects, close everything
 * else the parent had open, then open the rest. Never returns. */
static void child_main(struct pair_objs *o, int side, bool alone, int nfds, int readyfd, int maxfd) {
        int keep[N_PIPES + N_UNIX + N_TCP + N_EVENTFD + 2];
        int nkeep = 0, ep, have, devnull;
        struct sigaction sa = { .sa_handler = on_child_signal };
        sigset_t none;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(1);
        if (getppid() == 1)
                _exit(1);
        /* half the pipes carry data from side 0 to 1, half the other way */
        for (int i = 0; i < N_PIPES; i++) {
                int end = (i < N_PIPES / 2) ? side : !side;
                keep[nkeep++] = o->pipes[i][alone ? i % 2 : end];
        }
        for (int i = 0; i < N_UNIX; i++)
                keep[nkeep++] = o->usock[i][alone ? i % 2 : side];
        for (int i = 0; i < N_TCP; i++)
                keep[nkeep++] = o->tcp[i][alone ? i % 2 : side];
        for (int i = 0; i < N_EVENTFD; i++)
                keep[nkeep++] = o->efd[i];
        if (shared_sock[0] >= 0)
                keep[nkeep++] = shared_sock[0];
        keep[nkeep++] = readyfd;        /* last: closed once ready */
        for (int fd = 3; fd <= maxfd; fd++)
                if (!in_list(fd, keep, nkeep))
                        close(fd);
        /* and whatever fdpop itself inherited above them */
        if (close_range((unsigned) maxfd + 1, ~0u, 0) < 0)
                _exit(1);

        /* unread bytes: side 0 writes to its partner on one unix socket and one TCP
         * connection, and nobody reads them */
        if (side == 0 && !alone) {
                char buf[UNREAD_BYTES];
                memset(buf, 'x', sizeof buf);
                if (write(keep[N_PIPES], buf, sizeof buf) < 0 ||
                    write(keep[N_PIPES + N_UNIX], buf, sizeof buf) < 0)
                        _exit(1);
        }

        devnull = open("/dev/null", O_RDWR);
        if (devnull < 0)
                _exit(1);
        ep = epoll_create1(0);
        if (ep < 0)
                _exit(1);
        for (int i = 0; i < nkeep - 1; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.fd = keep[i] };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, keep[i], &ev) < 0 && errno != EPERM)
                        _exit(1);
        }
        if (open(tmpdir, O_RDONLY | O_DIRECTORY) < 0)
                _exit(1);
        /* stdio (3) + devnull + epoll + directory + the pair objects */
        have = 3 + 1 + 1 + 1 + (nkeep - 1);
        for (int i = 0; have < nfds; i++, have++) {
                char path[PATH_MAX + 32];
                snprintf(path, sizeof path, "%s/file%02d", tmpdir, i % FILES_SHARED);
                if (open(path, (i % 3 == 0) ? O_RDWR : O_RDONLY) < 0)
                        _exit(1);
        }
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        if (write(readyfd, "r", 1) != 1)
                _exit(1);
        close(readyfd);         /* now exactly nfds are open */
        sigemptyset(&none);
        while (!child_stop)
                sigsuspend(&none);
        _exit(0);
}

static int null_stdio(void) {
        int fd = open("/dev/null", O_RDWR);

        if (fd < 0)
                return -1;
        for (int i = 0; i < 3; i++)
                if (fd != i && dup2(fd, i) < 0)
                        return -1;
        if (fd > 2)
                close(fd);
        return 0;
}

static volatile sig_atomic_t parent_stop;

static void on_parent_signal(int sig) {
        (void) sig;
        parent_stop = 1;
}

static int usage(FILE *f, int status) {
        fprintf(f, "Usage: fdpop [-n PROCS] [-m FDS] [-d DIR] [--shared]\n"
                   "       fdpop --floor readlink|fdinfo\n"
                   "       fdpop --run CMD [ARG...]\n"
                   "Defaults: 350 processes, 57 fds each (at least %d), DIR $TMPDIR or /tmp.\n",
                MIN_FDS);
        return status;
}

int main(int argc, char **argv) {
        long nprocs = 350, nfds = 57;
        const char *base = getenv("TMPDIR");
        pid_t *kids;
        int lfd, ready[2], maxfd;
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof addr;
        struct sigaction sa = { .sa_handler = on_parent_signal };
        sigset_t block, old;
        long started = 0;
        char c;

        if (argc >= 3 && strcmp(argv[1], "--run") == 0)
                return run_measured(argv + 2);
        if (argc == 3 && strcmp(argv[1], "--floor") == 0) {
                if (strcmp(argv[2], "readlink") == 0)
                        return floor_run(false);
                if (strcmp(argv[2], "fdinfo") == 0)
                        return floor_run(true);
                return usage(stderr, 2);
        }
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
                        return usage(stdout, 0);
                if (strcmp(argv[i], "--shared") == 0) {
                        if (shared_pipe[0] < 0 && (pipe(shared_pipe) < 0 ||
                                                   socketpair(AF_UNIX, SOCK_STREAM, 0, shared_sock) < 0))
                                die("--shared: pipe or socketpair");
                        continue;
                }
                if (i + 1 >= argc)
                        return usage(stderr, 2);
                if (strcmp(argv[i], "-n") == 0) {
                        if (!parse_num(argv[++i], 1, MAX_PROCS, &nprocs))
                                return usage(stderr, 2);
                } else if (strcmp(argv[i], "-m") == 0) {
                        if (!parse_num(argv[++i], MIN_FDS, MAX_FDS, &nfds))
                                return usage(stderr, 2);
                } else if (strcmp(argv[i], "-d") == 0)
                        base = argv[++i];
                else
                        return usage(stderr, 2);
        }
        if (!base || !*base)
                base = "/tmp";

        snprintf(tmpdir, sizeof tmpdir, "%s/fdpop.XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                tmpdir[0] = 0;
                die("mkdtemp");
        }
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        for (nfiles_made = 0; nfiles_made < FILES_SHARED; nfiles_made++) {
                char path[PATH_MAX + 32];
                int fd;
                snprintf(path, sizeof path, "%s/file%02d", tmpdir, nfiles_made);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        goto fail;
                close(fd);
        }

        kids = calloc((size_t) nprocs, sizeof *kids);
        if (!kids)
                goto fail;
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen(lfd, 64) < 0 ||
            getsockname(lfd, (struct sockaddr *) &addr, &alen) < 0)
                goto fail;
        if (pipe(ready) < 0)
                goto fail;
        printf("PID %d\n", (int) getpid());
        fflush(stdout);

        /* children get the signals only after they set their handlers */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        for (long i = 0; i < nprocs && !parent_stop; i += 2) {
                struct pair_objs o;
                bool alone = i + 1 >= nprocs;

                make_pair_objs(lfd, &addr, &o);
                maxfd = 0;
                for (int k = 0; k < N_EVENTFD; k++)
                        maxfd = o.efd[k] > maxfd ? o.efd[k] : maxfd;
                maxfd += 16;
                for (int side = 0; side < (alone ? 1 : 2); side++) {
                        pid_t pid;
                        sigprocmask(SIG_BLOCK, &block, &old);
                        pid = fork();
                        if (pid == 0) {
                                sigprocmask(SIG_SETMASK, &old, NULL);
                                close(ready[0]);
                                close(lfd);
                                if (null_stdio() < 0)
                                        _exit(1);
                                if (shared_pipe[1] >= 0 &&
                                    (dup2(shared_pipe[1], 1) < 0 || dup2(shared_pipe[1], 2) < 0))
                                        _exit(1);
                                child_main(&o, side, alone, (int) nfds, ready[1], maxfd);
                        }
                        sigprocmask(SIG_SETMASK, &old, NULL);
                        if (pid < 0) {
                                perror("fdpop: fork");
                                goto stop;
                        }
                        kids[started++] = pid;
                }
                close_pair_objs(&o);
        }
        close(ready[1]);
        if (shared_pipe[1] >= 0) {
                /* fdpop stays the logger: the read end and the socket's other end */
                close(shared_pipe[1]);
                close(shared_sock[0]);
        }
        for (long got = 0; got < started && !parent_stop;) {
                ssize_t k = read(ready[0], &c, 1);
                if (k == 1)
                        got++;
                else if (k == 0 || (k < 0 && errno != EINTR)) {
                        fprintf(stderr, "fdpop: a child failed to set up\n");
                        goto stop;
                }
        }
        if (!parent_stop) {
                printf("READY %ld %ld\n", started, started * nfds);
                fflush(stdout);
        }
        /* until a signal */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGHUP);
        sigprocmask(SIG_BLOCK, &block, &old);
        while (!parent_stop)
                sigsuspend(&old);
        sigprocmask(SIG_SETMASK, &old, NULL);
stop:
        for (long i = 0; i < started; i++)
                kill(kids[i], SIGKILL);
        for (long i = 0; i < started; i++)
                while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        remove_tmpdir();
        free(kids);
        return 0;
fail:
        fprintf(stderr, "fdpop: setup failed: %s\n", strerror(errno));
        remove_tmpdir();
        return 1;
}
