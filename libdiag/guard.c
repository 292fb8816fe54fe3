/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag/guard.h"
#include "diag/util.h"

/*
 * Why a process and not a thread: a stop signal stops every thread of the
 * process, so only another process can act while the tool is stopped. Why
 * SIGCONT first and SIGKILL only after GUARD_KILL_MS: a user who suspends the
 * tool (kill -STOP) wants it suspended, not dead; it is, a moment later, with
 * the target running. A stop that SIGCONT cannot end (the tool is in a ptrace
 * stop of its own, under a debugger) ends with the kill, and the kernel's
 * detach on tracer exit releases the target.
 */

#define GUARD_POLL_US 1000              /* how often the watchdog looks while a window is open */
#define GUARD_KILL_MS 50                /* a tool stopped this long in a window is killed */
#define GUARD_IDLE_MS 100               /* how often an idle watchdog checks its parent */
#define GUARD_REAP_MS 200
#define GUARD_READY_MS 5000             /* for the watchdog to be scheduled and set up */
#define GUARD_NICE -10
/* A window still open after this long means the tool is stuck (running, not
 * stopped: in a wait that should have timed out). The target matters more than
 * the tool: kill it. A stop that is meant to last (diag-core copying a whole
 * process while it is stopped) says so with diag_guard_window_unbounded(). */
#define GUARD_WINDOW_MAX_MS 60000

/* The futex word: window generation << 2 | flags. */
#define W_OPEN 1u
#define W_CONTINUED 2u                  /* the watchdog continued the tool: stop at close */

struct guard_page {
        _Atomic uint32_t state;
        _Atomic uint32_t quit;
        _Atomic uint32_t ready;          /* the watchdog is set up and watching */
        _Atomic int32_t tid;            /* the thread holding the target stopped */
        _Atomic uint64_t continued_ns;  /* when it last continued the tool (for tests) */
        _Atomic uint64_t open_ns;       /* when the window opened (CLOCK_MONOTONIC) */
        _Atomic uint64_t limit_ms;      /* how long it may stay open; 0: no limit */
};

static const int stop_sigs[] = { SIGTSTP, SIGTTIN, SIGTTOU };

static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guard_page *page;
static pid_t owner, watcher;
static bool watcher_stopped, exit_registered;
static unsigned depth;
static struct sigaction saved[ELEMENTSOF(stop_sigs)];
static bool swapped[ELEMENTSOF(stop_sigs)];
static volatile sig_atomic_t caught_sig;
static long hold_ms = -1;
static uint64_t window_max_ms = GUARD_WINDOW_MAX_MS;
static int hold_fd = 2;

static bool watcher_ok(void);

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
        return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static char task_state(int fd) {
        char buf[512];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        const char *p;

        if (n <= 0)
                return '?';
        buf[n] = 0;
        p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : '?';
}

static _Noreturn void watcher_main(struct guard_page *pg, pid_t tool, bool deathsig) {
        static const int ignored[] = { SIGTSTP, SIGTTIN, SIGTTOU, SIGINT, SIGHUP, SIGQUIT, SIGPIPE };
        sigset_t none;
        uint64_t since = 0;
        pid_t fd_tid = 0;
        int fd = -1;

        for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
                signal(ignored[i], SIG_IGN);
        (void) setpgid(0, 0);
        if (deathsig)
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != tool)
                _exit(0);
        (void) prctl(PR_SET_NAME, "diag-guard");
        /* On a loaded machine it must get the CPU soon after a stop: ahead of
         * ordinary processes when allowed (root, CAP_SYS_NICE). */
        (void) setpriority(PRIO_PROCESS, 0, GUARD_NICE);
        /* Hold nothing the tool's readers wait on (a pipe on its stdout). */
        (void) close_range(0, ~0U, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        atomic_store(&pg->ready, 1);
        (void) futex(&pg->ready, FUTEX_WAKE, 1, NULL);

        for (;;) {
                uint32_t s = atomic_load(&pg->state);
                uint64_t limit;
                pid_t tid;
                char c;

                if (atomic_load(&pg->quit) || getppid() != tool)
                        _exit(0);
                if (!(s & W_OPEN)) {
                        since = 0;
                        (void) futex(&pg->state, FUTEX_WAIT, s,
                                     &(struct timespec) { .tv_nsec = GUARD_IDLE_MS * 1000000L });
                        continue;
                }
                tid = atomic_load(&pg->tid);
                if (tid != fd_tid) {
                        char path[64];
                        if (fd >= 0)
                                close(fd);
                        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", tool, tid);
                        fd = open(path, O_RDONLY | O_CLOEXEC);
                        fd_tid = tid;
                }
                c = fd >= 0 ? task_state(fd) : '?';
                limit = atomic_load(&pg->limit_ms);
                if (limit && diag_now_ns(CLOCK_MONOTONIC) - atomic_load(&pg->open_ns) > limit * 1000000ULL) {
                        (void) kill(tool, SIGKILL);
                        _exit(0);
                }
                if (c == 'T' || c == 't') {
                        uint64_t now = diag_now_ns(CLOCK_MONOTONIC);
                        if (!since)
                                since = now;
                        /* Flag first, then continue: the tool, once running, closes
                         * the window and sees the flag. The generation in the word
                         * keeps a late flag off the next window. */
                        if (c == 'T' && (s & W_CONTINUED ||
                                         atomic_compare_exchange_strong(&pg->state, &s, s | W_CONTINUED))) {
                                atomic_store(&pg->continued_ns, now);
                                (void) kill(tool, SIGCONT);
                        }
                        if (now - since > GUARD_KILL_MS * 1000000ULL) {
                                (void) kill(tool, SIGKILL);
                                _exit(0);
                        }
                } else
                        since = 0;
                nanosleep(&(struct timespec) { .tv_nsec = GUARD_POLL_US * 1000L }, NULL);
        }
}

static void guard_stop_at_exit(void) {
        uint64_t deadline;

        if (!page || owner != getpid() || watcher <= 0)
                return;
        atomic_store(&page->quit, 1);
        (void) futex(&page->state, FUTEX_WAKE, 1, NULL);
        deadline = diag_now_ns(CLOCK_MONOTONIC) + GUARD_REAP_MS * 1000000ULL;
        for (;;) {
                int st;
                pid_t w = waitpid(watcher, &st, WNOHANG);
                if (w < 0 || (w == watcher && (WIFEXITED(st) || WIFSIGNALED(st))))
                        break;
                if (diag_now_ns(CLOCK_MONOTONIC) > deadline) {
                        /* Stopped, say: it cannot be told, so end it. */
                        (void) kill(watcher, SIGKILL);
                        (void) waitpid(watcher, NULL, 0);
                        break;
                }
                nanosleep(&(struct timespec) { .tv_nsec = 1000000L }, NULL);
        }
        watcher = 0;
}

static void read_test_env(void) {
        const char *v = getenv("DIAG_TEST_WINDOW_HOLD_MS");
        long long n;

        if (v && diag_parse_ll(v, 10, 0, 600000, &n) == 0)
                hold_ms = (long) n;
        v = getenv("DIAG_TEST_WINDOW_MAX_MS");
        if (v && diag_parse_ll(v, 10, 1, 600000, &n) == 0)
                window_max_ms = (uint64_t) n;
        v = getenv("DIAG_TEST_WINDOW_FD");
        if (v && diag_parse_ll(v, 10, 0, INT32_MAX, &n) == 0)
                hold_fd = (int) n;
}

/* Watching (named, reniced) before the first stop, or no stop. */
static int wait_ready(void) {
        uint64_t deadline = diag_now_ns(CLOCK_MONOTONIC) + GUARD_READY_MS * 1000000ULL;

        while (!atomic_load(&page->ready)) {
                if (!watcher_ok() || diag_now_ns(CLOCK_MONOTONIC) > deadline)
                        return -ECHILD;
                (void) futex(&page->ready, FUTEX_WAIT, 0, &(struct timespec) { .tv_nsec = 10 * 1000000L });
        }
        return 0;
}

int diag_guard_start(void) {
        struct guard_page *pg;
        sigset_t all, old;
        bool main_thread = gettid() == getpid();
        pid_t self = getpid(), w;
        int r = 0;

        pthread_mutex_lock(&guard_lock);
        if (page && owner == self && watcher_ok()) {
                r = wait_ready();
                goto out;
        }
        if (page && owner == self && watcher > 0) {
                /* Stopped: replace it, leaving no child behind. */
                (void) kill(watcher, SIGKILL);
                (void) waitpid(watcher, NULL, 0);
                watcher = 0;
        }
        if (page && owner != self) {
                /* A forked copy of a guarded process: its watchdog is not ours. */
                munmap(page, sizeof *page);
                page = NULL;
                depth = 0;
        }
        if (!page) {
                pg = mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                if (pg == MAP_FAILED) {
                        r = negative_errno();
                        goto out;
                }
                page = pg;
        }
        atomic_store(&page->quit, 0);
        atomic_store(&page->ready, 0);
        read_test_env();
        /* Signals blocked until the child has ignored what it must. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        w = fork();
        if (w == 0)
                watcher_main(page, self, main_thread);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (w < 0) {
                r = negative_errno();
                goto out;
        }
        /* Out of our process group before anyone can Ctrl-Z it with us. */
        (void) setpgid(w, w);
        owner = self;
        watcher = w;
        watcher_stopped = false;
        r = wait_ready();
        if (!exit_registered && atexit(guard_stop_at_exit) == 0)
                exit_registered = true;
out:
        pthread_mutex_unlock(&guard_lock);
        return r;
}

/* Alive and not stopped, as far as our wait status says: no /proc read. */
static bool watcher_ok(void) {
        int st;
        pid_t w = 0;

        while (watcher > 0 && (w = waitpid(watcher, &st, WNOHANG | WUNTRACED | WCONTINUED)) == watcher) {
                if (WIFEXITED(st) || WIFSIGNALED(st))
                        watcher = 0;
                else
                        watcher_stopped = WIFSTOPPED(st);
        }
        if (watcher > 0 && w < 0)
                watcher = 0;            /* reaped by someone else */
        return watcher > 0 && !watcher_stopped;
}

static void on_stop_signal(int sig) {
        caught_sig = sig;
}

int diag_guard_window_open(void) {
        struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
        uint32_t s;

        if (!page || owner != getpid())
                return 0;
        pthread_mutex_lock(&guard_lock);
        if (depth > 0) {
                depth++;
                pthread_mutex_unlock(&guard_lock);
                return 0;
        }
        if (!watcher_ok()) {
                pthread_mutex_unlock(&guard_lock);
                return -ECHILD;
        }
        depth = 1;
        sigfillset(&sa.sa_mask);
        caught_sig = 0;
        for (size_t i = 0; i < ELEMENTSOF(stop_sigs); i++) {
                swapped[i] = sigaction(stop_sigs[i], &sa, &saved[i]) == 0;
                /* The tool handles or ignores it itself: leave that be. */
                if (swapped[i] && saved[i].sa_handler != SIG_DFL) {
                        (void) sigaction(stop_sigs[i], &saved[i], NULL);
                        swapped[i] = false;
                }
        }
        atomic_store(&page->tid, (int32_t) gettid());
        atomic_store(&page->open_ns, diag_now_ns(CLOCK_MONOTONIC));
        atomic_store(&page->limit_ms, window_max_ms);
        s = atomic_load(&page->state);
        atomic_store(&page->state, (((s >> 2) + 1) << 2) | W_OPEN);
        (void) futex(&page->state, FUTEX_WAKE, 1, NULL);
        pthread_mutex_unlock(&guard_lock);
        return 0;
}

void diag_guard_window_close(void) {
        uint32_t s;
        int sig;

        if (!page || owner != getpid())
                return;
        pthread_mutex_lock(&guard_lock);
        if (depth == 0 || --depth > 0) {
                pthread_mutex_unlock(&guard_lock);
                return;
        }
        s = atomic_fetch_and(&page->state, ~(W_OPEN | W_CONTINUED));
        for (size_t i = 0; i < ELEMENTSOF(stop_sigs); i++)
                if (swapped[i])
                        (void) sigaction(stop_sigs[i], &saved[i], NULL);
        sig = caught_sig;
        caught_sig = 0;
        pthread_mutex_unlock(&guard_lock);
        /* The suspension the user asked for, now that the target runs. */
        if (s & W_CONTINUED)
                (void) kill(getpid(), SIGSTOP);
        else if (sig)
                (void) kill(getpid(), sig);
}

void diag_guard_test_hold(int pid) {
        struct timespec ts;
        int r;

        if (hold_ms < 0)
                return;
        dprintf(hold_fd, "diag-test-window: stopped %d watchdog %d\n", pid, (int) watcher);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += hold_ms / 1000;
        ts.tv_nsec += (hold_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        do
                r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        while (r == EINTR);
}

void diag_guard_test_release(int pid) {
        if (hold_ms < 0)
                return;
        if (page && atomic_load(&page->state) & W_CONTINUED)
                dprintf(hold_fd, "diag-test-window: release %d continued %" PRIu64 "\n", pid,
                        atomic_load(&page->continued_ns));
        else
                dprintf(hold_fd, "diag-test-window: release %d\n", pid);
}

void diag_guard_window_unbounded(void) {
        if (page && owner == getpid() && depth > 0)
                atomic_store(&page->limit_ms, 0);
}
