/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

#include "diag/guard.h"
#include "diag/proc.h"
#include "diag/ptrace.h"
#include "diag/util.h"

/*
 * How a capture keeps the target safe:
 *  - PTRACE_SEIZE never stops anything; PTRACE_INTERRUPT makes a ptrace-stop that
 *    the kernel undoes if the tracer goes away.
 *  - The ptrace work runs in a short-lived thread of our own. Tracees belong to the
 *    tracing thread, so when it exits the kernel detaches whatever is still attached
 *    (a thread that did not stop in time, say) and clears the pending interrupt.
 *  - Threads in uninterruptible sleep (D) are not interrupted: they could not stop
 *    before they wake, and waiting for them would lengthen everyone's pause.
 *  - Nor are threads asleep in a call that an interrupt would change (see
 *    interrupt_changes): what a stop could tell about them is read while they
 *    sleep instead (peek).
 *  - A tracer that is itself stopped (SIGSTOP, Ctrl-Z) would keep its tracees
 *    stopped: the stop window is marked for the watchdog of guard.c, which
 *    continues or kills a stopped tool, and no stop is made without it.
 */

#define DEFAULT_STACK_MAX (256 * 1024)
#define DEFAULT_TIMEOUT_MS 1000
#define RED_ZONE 128
#define NO_MAPPING_STACK (64 * 1024)

enum tstate { T_NEW, T_SKIPPED, T_SEIZED, T_STOPPED, T_GONE, T_FAILED };

struct tslot {
        pid_t tid;
        enum tstate st;
        int err;
        int pending_sig;        /* a signal we caught in a signal-delivery-stop: give it back */
        /* T_SKIPPED and read while asleep: */
        bool peeked;
        struct diag_syscall_state sc;
        uint64_t stack_start;
        size_t stack_len;
        uint8_t *stack;         /* owned; moved into the capture */
        char why[96];
};

struct job {
        pid_t pid;
        int *index;             /* open-addressing tid -> slot+1, size nindex (power of 2) */
        bool window;            /* the guard's stop window is open (guard.h) */
        size_t nindex;
        const struct diag_capture_opts *opts;
        struct diag_capture *cap;
        struct tslot *slots;
        size_t nslots, alloc;
        int result;
};

/* A thread list can be thousands long and is searched on every stop: hash it. */
static struct tslot *job_find(struct job *j, pid_t tid) {
        if (!j->nindex)
                return NULL;
        for (size_t h = ((size_t) tid * 2654435761u) & (j->nindex - 1);; h = (h + 1) & (j->nindex - 1)) {
                int v = j->index[h];
                if (v == 0)
                        return NULL;
                if (j->slots[v - 1].tid == tid)
                        return &j->slots[v - 1];
        }
}

static int job_index_rebuild(struct job *j, size_t want) {
        size_t n = 64;

        while (n < want * 2)
                n *= 2;
        if (n != j->nindex) {
                int *ni = calloc(n, sizeof *ni);
                if (!ni)
                        return -ENOMEM;
                free(j->index);
                j->index = ni;
                j->nindex = n;
        } else
                memset(j->index, 0, n * sizeof *j->index);
        for (size_t i = 0; i < j->nslots; i++) {
                size_t h = ((size_t) j->slots[i].tid * 2654435761u) & (n - 1);
                while (j->index[h])
                        h = (h + 1) & (n - 1);
                j->index[h] = (int) i + 1;
        }
        return 0;
}

static bool job_wanted(const struct job *j, pid_t tid) {
        if (!j->opts->tids)
                return true;
        for (size_t i = 0; i < j->opts->ntids; i++)
                if (j->opts->tids[i] == tid)
                        return true;
        return false;
}

int diag_ptrace_tracer_of(pid_t pid, pid_t *ret) {
        unsigned long long v;
        int r = diag_task_status_field(pid, 0, "TracerPid", 10, &v);

        if (r < 0)
                return r;
        if (v > INT32_MAX)
                return -EINVAL;
        *ret = (pid_t) v;
        return 0;
}

/* Calls whose sleep an interrupt ends with a restart the thread never notices
 * (-ERESTARTSYS, -ERESTARTNOHAND, a restart block), for any fd but a socket's.
 * Not the epoll_wait family: it returns EINTR to the program, as after SIGSTOP. */
static bool restarts_unnoticed(long nr) {
        static const long calls[] = {
                SYS_futex, SYS_nanosleep, SYS_clock_nanosleep, SYS_ppoll, SYS_pselect6,
                SYS_rt_sigsuspend, SYS_wait4, SYS_waitid, SYS_flock, SYS_fcntl, SYS_msgrcv, SYS_mq_timedreceive,
                SYS_read, SYS_readv, SYS_pread64, SYS_preadv, SYS_preadv2, SYS_openat,
                SYS_restart_syscall,    /* a sleep an earlier interrupt restarted */
#ifdef SYS_poll
                SYS_poll, SYS_select, SYS_pause, SYS_open,
#endif
#ifdef SYS_futex_waitv
                SYS_futex_waitv,
#endif
        };
        for (size_t i = 0; i < ELEMENTSOF(calls); i++)
                if (calls[i] == nr)
                        return true;
        return false;
}

static bool fd_is_socket(pid_t pid, uint64_t fd) {
        char path[64], link[32];
        ssize_t n;

        if (fd > INT32_MAX)
                return false;
        snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, (int) fd);
        n = readlink(path, link, sizeof link - 1);
        return n > 7 && memcmp(link, "socket:", 7) == 0;
}

/* Would PTRACE_INTERRUPT change what tid, asleep (S), gets from the kernel?
 * Writes the reason into why and returns true if so. A FUSE request that sees
 * a signal tells its server (which may abort it) and then waits uninterruptibly
 * for the answer; recv with SO_RCVTIMEO, sigtimedwait, semop, io_getevents fail
 * with EINTR; writes return what they wrote so far. Unknown calls count as
 * changed: a thread left running costs only its registers. */
static bool interrupt_changes(pid_t pid, pid_t tid, const struct diag_syscall_state *sc, char *why, size_t size) {
        char wchan[64] = "";
        const char *name;

        if (diag_task_read_wchan(pid, tid, wchan, sizeof wchan) == 0 &&
            (strncmp(wchan, "fuse_", 5) == 0 || strcmp(wchan, "request_wait_answer") == 0)) {
                snprintf(why, size, "waits for a FUSE server (%s), which an interrupt would reach", wchan);
                return true;
        }
        if (sc->kind != DIAG_SC_IN)
                return false;
        name = diag_syscall_name(diag_arch_native(), sc->nr);
        if (!restarts_unnoticed(sc->nr)) {
                snprintf(why, size, "asleep in %s, which an interrupt could end early", name ? name : "a system call");
                return true;
        }
        if ((sc->nr == SYS_read || sc->nr == SYS_readv || sc->nr == SYS_pread64 || sc->nr == SYS_preadv ||
             sc->nr == SYS_preadv2) && fd_is_socket(pid, sc->args[0])) {
                snprintf(why, size, "asleep in %s on a socket, whose timeout would turn an interrupt into EINTR",
                         name ? name : "read");
                return true;
        }
        return false;
}

/* Stack bytes to copy for a thread whose stack pointer is sp. */
static void stack_range(const struct diag_capture_opts *o, uint64_t sp, uint64_t *lo, uint64_t *hi) {
        size_t stack_max = o->stack_max ? o->stack_max : DEFAULT_STACK_MAX;
        const struct diag_map *m = diag_maps_find(o->maps, sp);

        *lo = sp > RED_ZONE ? sp - RED_ZONE : 0;
        *hi = m ? MIN(m->end, sp + stack_max) : sp + MIN(stack_max, (size_t) NO_MAPPING_STACK);
        if (m && *lo < m->start)
                *lo = m->start;
}

/* Read what a stop would have of a sleeping thread, without stopping it: pc, sp
 * and the call from /proc, the stack by process_vm_readv. The thread sleeps in
 * the kernel, so its user stack holds still; the syscall file read again after
 * the copy says whether it still slept throughout. */
static void slot_peek(struct job *j, struct tslot *s) {
        struct diag_syscall_state again;
        uint64_t lo, hi;

        if (s->sc.kind != DIAG_SC_IN && s->sc.kind != DIAG_SC_USER)
                return;
        if (!j->opts->no_stacks && s->sc.sp) {
                stack_range(j->opts, s->sc.sp, &lo, &hi);
                s->stack = malloc(hi - lo ? hi - lo : 1);
                if (!s->stack)
                        return;
                s->stack_start = lo;
                s->stack_len = 0;
                {
                        struct iovec l = { s->stack, hi - lo }, r = { (void *) (uintptr_t) lo, hi - lo };
                        size_t done = 0;
                        (void) diag_mem_readv(j->pid, &l, &r, 1, &done);
                        s->stack_len = done;
                }
        }
        if (diag_task_read_syscall(j->pid, s->tid, &again) < 0 || again.kind != s->sc.kind || again.nr != s->sc.nr ||
            again.sp != s->sc.sp || again.pc != s->sc.pc) {
                free(s->stack);
                s->stack = NULL;
                s->stack_len = 0;
                return;
        }
        s->peeked = true;
}

static void slot_to_capture(struct tslot *s, struct diag_thread_capture *t) {
        t->peeked = true;
        t->pc = s->sc.pc;
        t->sp = s->sc.sp;
        t->syscall_nr = s->sc.kind == DIAG_SC_IN ? s->sc.nr : -1;
        t->stack = TAKE_PTR(s->stack);
        t->stack_start = s->stack_start;
        t->stack_len = s->stack_len;
}

/* Seize and interrupt every wanted thread not yet known. Returns how many new.
 * The slow part (reading each thread's state) comes before the first interrupt,
 * and the interrupts go out back to back: the pause starts with the first one. */
static int job_seize_new(struct job *j, uint64_t *first_interrupt_ns) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0, first_new = j->nslots;
        int added = 0, r;

        r = diag_proc_list_tids(j->pid, &tids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct tslot *s;
                char state = '?';

                if (job_find(j, tids[i]) || !job_wanted(j, tids[i]))
                        continue;
                if (DIAG_GROW(j->slots, j->alloc, j->nslots + 1) < 0)
                        return -ENOMEM;
                s = &j->slots[j->nslots++];
                *s = (struct tslot) { .tid = tids[i], .st = T_NEW };
                added++;
                if (diag_task_read_state(j->pid, s->tid, &state) < 0) {
                        s->st = T_GONE;
                        s->err = -ESRCH;
                } else if (state == 'Z' || state == 'X') {
                        s->st = T_SKIPPED;
                        s->err = -ESRCH;
                } else if (state == 'D' || state == 'S') {
                        if (diag_task_read_syscall(j->pid, s->tid, &s->sc) < 0)
                                s->sc.kind = DIAG_SC_UNKNOWN;
                        if (state == 'D')
                                snprintf(s->why, sizeof s->why, "in uninterruptible sleep (D)");
                        else if (!interrupt_changes(j->pid, s->tid, &s->sc, s->why, sizeof s->why))
                                continue;
                        s->st = T_SKIPPED;
                        s->err = state == 'D' ? -EDEADLK : -EINTR;
                        slot_peek(j, s);
                }
        }
        if (added && job_index_rebuild(j, j->nslots) < 0)
                return -ENOMEM;
        for (size_t i = first_new; i < j->nslots; i++) {
                struct tslot *s = &j->slots[i];
                if (s->st != T_NEW)
                        continue;
                if (ptrace(PTRACE_SEIZE, s->tid, 0, 0) < 0) {
                        s->err = negative_errno();
                        s->st = s->err == -ESRCH ? T_GONE : T_FAILED;
                }
        }
        for (size_t i = first_new; i < j->nslots; i++) {
                struct tslot *s = &j->slots[i];
                if (s->st != T_NEW)
                        continue;
                if (*first_interrupt_ns == 0)
                        *first_interrupt_ns = diag_now_ns(CLOCK_MONOTONIC);
                if (ptrace(PTRACE_INTERRUPT, s->tid, 0, 0) < 0) {
                        s->err = negative_errno();
                        s->st = T_GONE;
                        continue;
                }
                s->st = T_SEIZED;
        }
        return added;
}

static void slot_status(struct tslot *s, int status) {
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
                s->st = T_GONE;
                s->err = -ESRCH;
        } else if (WIFSTOPPED(status)) {
                int event = status >> 16;
                int sig = WSTOPSIG(status);
                /* A signal-delivery-stop holds a real signal: hand it back on
                 * detach. Group stops and our interrupt carry none to give. */
                if (event == 0 && sig != SIGTRAP)
                        s->pending_sig = sig;
                s->st = T_STOPPED;
        }
}

/* Reap stop notifications until every seized thread stopped or the deadline
 * passed. waitpid on each tid: waitpid(-1) makes the kernel walk every tracee
 * on each call, quadratic with thousands of threads. */
static void job_wait_stops(struct job *j, uint64_t deadline_ns) {
        unsigned idle_passes = 0;

        for (;;) {
                size_t waiting = 0, progress = 0;

                for (size_t i = 0; i < j->nslots; i++) {
                        struct tslot *s = &j->slots[i];
                        int status;
                        pid_t w;

                        if (s->st != T_SEIZED)
                                continue;
                        w = waitpid(s->tid, &status, __WALL | WNOHANG);
                        if (w == s->tid) {
                                slot_status(s, status);
                                progress++;
                        } else if (w < 0 && errno == ECHILD) {
                                s->st = T_GONE;
                                s->err = -ESRCH;
                                progress++;
                        } else
                                waiting++;
                }
                if (!waiting)
                        return;
                if (diag_now_ns(CLOCK_MONOTONIC) >= deadline_ns)
                        return;
                /* Stops arrive within microseconds; yield first, then sleep a little. */
                if (progress)
                        idle_passes = 0;
                else if (++idle_passes < 64)
                        sched_yield();
                else
                        nanosleep(&(struct timespec) { .tv_nsec = 50 * 1000 }, NULL);
        }
}

#if defined(__x86_64__)
static void regs_to_capture(const struct user_regs_struct *r, struct diag_thread_capture *t) {
        /* DWARF numbering for x86_64: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip */
        const uint64_t d[17] = {
                r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi, r->rbp, r->rsp,
                r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip,
        };
        memcpy(t->dwarf_regs, d, sizeof d);
        t->ndwarf_regs = 17;
        t->pc = r->rip;
        t->sp = r->rsp;
        t->fp = r->rbp;
        t->syscall_nr = (long) r->orig_rax;
}
typedef struct user_regs_struct diag_user_regs;
#elif defined(__aarch64__)
static void regs_to_capture(const struct user_regs_struct *r, struct diag_thread_capture *t) {
        /* DWARF numbering for aarch64: x0..x30, sp = 31; pc is passed separately */
        for (int i = 0; i < 31; i++)
                t->dwarf_regs[i] = r->regs[i];
        t->dwarf_regs[31] = r->sp;
        t->ndwarf_regs = 32;
        t->pc = r->pc;
        t->sp = r->sp;
        t->fp = r->regs[29];
        t->syscall_nr = -1;
}
typedef struct user_regs_struct diag_user_regs;
#else
#error "diagkit supports x86_64 and aarch64"
#endif

static int read_regs(pid_t tid, struct diag_thread_capture *t) {
        diag_user_regs regs;
        struct iovec iov = { .iov_base = &regs, .iov_len = sizeof regs };

        if (ptrace(PTRACE_GETREGSET, tid, (void *) NT_PRSTATUS, &iov) < 0)
                return negative_errno();
        regs_to_capture(&regs, t);
#if defined(__aarch64__)
        {
                int nr;
                struct iovec siov = { .iov_base = &nr, .iov_len = sizeof nr };
                if (ptrace(PTRACE_GETREGSET, tid, (void *) NT_ARM_SYSTEM_CALL, &siov) == 0)
                        t->syscall_nr = nr;
        }
#endif
        return 0;
}

static void job_detach_all(struct job *j) {
        for (size_t i = 0; i < j->nslots; i++) {
                struct tslot *s = &j->slots[i];
                if (s->st == T_STOPPED)
                        (void) ptrace(PTRACE_DETACH, s->tid, 0, (void *) (long) s->pending_sig);
        }
}

static void *capture_thread(void *arg) {
        struct job *j = arg;
        const struct diag_capture_opts *o = j->opts;
        struct diag_capture *c = j->cap;
        unsigned timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
        uint64_t t0 = 0, t_stopped, t_end, deadline;
        size_t nstopped = 0, npeeked = 0, k = 0, total = 0, first_round;
        _cleanup_free_ struct iovec *liov = NULL;
        _cleanup_free_ struct iovec *riov = NULL;
        _cleanup_free_ size_t *done = NULL;
        uint8_t *arena = NULL;
        int r, hook = 0;

        r = diag_guard_window_open();
        if (r < 0) {
                j->result = r;
                return NULL;
        }
        j->window = true;
        r = job_seize_new(j, &t0);
        if (r < 0) {
                j->result = r;
                return NULL;
        }
        first_round = j->nslots;
        if (first_round == 0) {
                j->result = -ESRCH;
                return NULL;
        }
        deadline = diag_now_ns(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * 1000000ULL;
        /* Threads born while we were stopping the others: catch them too, until the
         * set is closed (a stopped thread cannot clone). */
        for (;;) {
                job_wait_stops(j, deadline);
                r = job_seize_new(j, &t0);
                if (r <= 0)
                        break;
                c->appeared += (unsigned) r;
        }
        t_stopped = diag_now_ns(CLOCK_MONOTONIC);
        diag_guard_test_hold(j->pid);

        /* While stopped: registers, then every stack in as few reads as possible. */
        c->threads = calloc(j->nslots, sizeof *c->threads);
        liov = calloc(j->nslots, sizeof *liov);
        riov = calloc(j->nslots, sizeof *riov);
        done = calloc(j->nslots, sizeof *done);
        if (!c->threads || !liov || !riov || !done) {
                job_detach_all(j);
                j->result = -ENOMEM;
                return NULL;
        }
        for (size_t i = 0; i < j->nslots; i++) {
                struct tslot *s = &j->slots[i];
                struct diag_thread_capture *t = &c->threads[c->n++];
                uint64_t lo, hi;

                t->tid = s->tid;
                t->syscall_nr = -1;
                if (s->st != T_STOPPED) {
                        t->err = s->st == T_SEIZED ? -ETIMEDOUT : (s->err ? s->err : -ESRCH);
                        if (t->err == -ESRCH)
                                c->vanished++;
                        memcpy(t->not_stopped, s->why, sizeof t->not_stopped);
                        if (s->peeked) {
                                npeeked++;
                                slot_to_capture(s, t);
                        }
                        continue;
                }
                nstopped++;
                r = read_regs(s->tid, t);
                if (r < 0) {
                        t->err = r;
                        continue;
                }
                if (o->no_stacks)
                        continue;
                stack_range(o, t->sp, &lo, &hi);
                t->stack_start = lo;
                t->stack_len = hi - lo;
                total += t->stack_len;
        }
        arena = malloc(total ? total : 1);
        if (!arena) {
                job_detach_all(j);
                j->result = -ENOMEM;
                return NULL;
        }
        for (size_t i = 0, off = 0; i < c->n; i++) {
                struct diag_thread_capture *t = &c->threads[i];
                if (t->err || t->peeked || !t->stack_len)
                        continue;
                t->stack = arena + off;
                liov[k] = (struct iovec) { t->stack, t->stack_len };
                riov[k] = (struct iovec) { (void *) (uintptr_t) t->stack_start, t->stack_len };
                k++;
                off += t->stack_len;
        }
        (void) diag_mem_readv(j->pid, liov, riov, k, done);
        c->stack_arena = arena;
        if (o->stopped && nstopped > 0)
                hook = o->stopped(o->userdata, c);
        diag_guard_test_release(j->pid);
        job_detach_all(j);
        t_end = diag_now_ns(CLOCK_MONOTONIC);
        /* Tracees the stopped hook made (a forked copy) are not the target. */
        diag_guard_window_close();
        j->window = false;

        for (size_t i = 0, kk = 0; i < c->n; i++) {
                struct diag_thread_capture *t = &c->threads[i];
                if (t->err || t->peeked || !t->stack_len)
                        continue;
                t->stack_len = done[kk++];      /* only what was really read */
        }
        c->pause_ns = t0 ? t_end - t0 : 0;
        c->freeze_ns = t0 ? t_stopped - t0 : 0;
        if (hook >= 0 && o->released && nstopped > 0)
                hook = o->released(o->userdata, c);
        j->result = hook;
        if (nstopped == 0 && npeeked == 0) {
                /* Nothing stopped: report the first reason (the leader's when it has one). */
                j->result = -ESRCH;
                for (size_t i = 0; i < j->nslots; i++)
                        if (j->slots[i].err && j->slots[i].err != -ESRCH) {
                                j->result = j->slots[i].err == -EINTR ? -EDEADLK : j->slots[i].err;
                                break;
                        }
        }
        return NULL;
}

int diag_capture_take(pid_t pid, const struct diag_capture_opts *opts, struct diag_capture **ret) {
        struct diag_capture_opts dflt = {};
        struct diag_capture *c;
        struct job j = { .pid = pid, .opts = opts ? opts : &dflt };
        pthread_t th;
        pid_t tracer = 0;
        int r;

        r = diag_ptrace_tracer_of(pid, &tracer);
        if (r < 0)
                return r;
        if (tracer > 0)
                return -EBUSY;
        /* Before any stop, on a thread that lives on: the watchdog dies with it. */
        r = diag_guard_start();
        if (r < 0)
                return r;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->pid = pid;
        c->arch = diag_arch_native();
        j.cap = c;
        /* The tracer thread's exit is what guarantees every tracee is released. */
        r = -pthread_create(&th, NULL, capture_thread, &j);
        if (r == 0)
                r = -pthread_join(th, NULL);
        /* Early returns: whatever was still attached was released when the
         * tracer thread exited. */
        if (j.window)
                diag_guard_window_close();
        for (size_t i = 0; i < j.nslots; i++)
                free(j.slots[i].stack);
        free(j.slots);
        free(j.index);
        if (r == 0)
                r = j.result;
        if (r < 0) {
                diag_capture_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

struct diag_capture *diag_capture_free(struct diag_capture *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n; i++)
                if (c->threads[i].peeked)
                        free(c->threads[i].stack);
        free(c->stack_arena);
        free(c->threads);
        free(c);
        return NULL;
}
