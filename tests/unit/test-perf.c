/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sampling a real process (tests/fixtures/spinfix, its path the argument): spin_a and
 * spin_b in their 70/30 ratio, stacks unwound from the copies through frames
 * without frame pointers down to the thread's start, a thread and a child born
 * during the window sampled through inheritance, FORK/COMM/EXIT records, kernel
 * frames for a thread that lives in read(2). Skips (77) where perf events are not
 * permitted.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "diag/perf.h"
#include "diag/unwind.h"
#include "diag/util.h"
#include "tap.h"

static struct {
        struct diag_perf_unwind *unw;
        pid_t pid, spinner, thread2, child, sys, zspin;
        uint64_t zspin_samples, zspin_libz, sys_read_path, lost_records;
        uint64_t samples, spinner_samples, spinner_a, spinner_b, spinner_full, spinner_err;
        uint64_t thread2_samples, child_samples, sys_samples, sys_kernel, kernel_named;
        uint64_t kernel_order_bad, unwind_fail, user_frames, other_pid;
        bool host;                      /* sampling the whole host: unwind only spinfix */
        /* one sample of the child and its FORK record, kept to unwind again once the
         * child has exited (a zombie: spinfix reaps it only at its next command) */
        struct diag_perf_event child_sample, child_fork;
        uint8_t *child_stack;
        bool have_child_sample, have_child_fork;
        bool fork_thread, fork_child, comm_thread, comm_child, exit_child;
        uint64_t unwind_ns;
        uint64_t each_ns[8192];         /* per sample, for the median (the warm cost) */
        size_t neach;
        unsigned incomplete_shown;
        uint64_t last_time[1024];
} T;

static bool has_frame(const struct diag_stack *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (s->frames[i].func && strcmp(s->frames[i].func, name) == 0)
                        return true;
        return false;
}

static uint64_t thread_cpu_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static void on_sample(const struct diag_perf_event *e) {
        struct diag_stack s;
        const struct diag_frame *leaf = NULL;
        uint64_t t0;
        size_t k = 0;
        int r;

        T.samples++;
        if (e->pid != T.pid && e->pid != T.child)
                T.other_pid++;
        /* per CPU ring, records come in time order */
        if (e->cpu < ELEMENTSOF(T.last_time)) {
                CHECK(e->time_ns >= T.last_time[e->cpu]);
                T.last_time[e->cpu] = e->time_ns;
        }
        t0 = thread_cpu_ns();
        r = diag_perf_unwind_sample(T.unw, e, 64, false, &s);
        t0 = thread_cpu_ns() - t0;
        T.unwind_ns += t0;
        if (T.neach < ELEMENTSOF(T.each_ns))
                T.each_ns[T.neach++] = t0;
        if (r < 0) {
                T.unwind_fail++;
                return;
        }
        /* kernel frames first, then user frames */
        while (k < s.n && s.frames[k].kernel)
                k++;
        for (size_t i = k; i < s.n; i++)
                if (s.frames[i].kernel)
                        T.kernel_order_bad++;
        if (k > 0 && s.frames[0].func)
                T.kernel_named++;
        if (k < s.n)
                leaf = &s.frames[k];
        T.user_frames += s.n - k;
        if (e->tid == T.spinner) {
                T.spinner_samples++;
                if (leaf && leaf->func && strcmp(leaf->func, "spin_a") == 0)
                        T.spinner_a++;
                else if (leaf && leaf->func && strcmp(leaf->func, "spin_b") == 0)
                        T.spinner_b++;
                if (has_frame(&s, "spin_loop") && has_frame(&s, "spin_thread") &&
                    (has_frame(&s, "start_thread") || has_frame(&s, "clone3") || has_frame(&s, "clone")))
                        T.spinner_full++;
                else if (T.incomplete_shown++ < 3) {
                        fprintf(stderr, "incomplete stack (%zu frames, err %d %s):", s.n, s.err,
                                s.err_msg ? s.err_msg : "");
                        for (size_t i = 0; i < s.n; i++)
                                fprintf(stderr, " %s", s.frames[i].func ? s.frames[i].func : "?");
                        fprintf(stderr, "\n");
                }
                if (s.err)
                        T.spinner_err++;
        }
        if (T.thread2 && e->tid == T.thread2)
                T.thread2_samples++;
        if (T.child && e->pid == T.child && has_frame(&s, "spin_loop")) {
                T.child_samples++;
                if (!T.have_child_sample && e->regs.stack_len && (T.child_stack = malloc(e->regs.stack_len))) {
                        T.child_sample = *e;
                        T.child_sample.kernel_chain = NULL;
                        T.child_sample.nkernel = 0;
                        memcpy(T.child_stack, e->regs.stack, e->regs.stack_len);
                        T.child_sample.regs.stack = T.child_stack;
                        T.have_child_sample = true;
                }
        }
        if (T.zspin && e->tid == T.zspin) {
                /* libz was mapped after the process's unwinder was made: its frames
                 * resolve only if the MMAP record made the unwinder again */
                struct diag_unwinder *u = diag_perf_unwind_of(T.unw, e->pid);
                const struct diag_module *m = u && leaf && leaf->module >= 0 ?
                        diag_unwinder_module(u, (size_t) leaf->module) : NULL;
                T.zspin_samples++;
                if (m && m->path && strstr(m->path, "libz"))
                        T.zspin_libz++;
        }
        if (T.sys && e->tid == T.sys) {
                T.sys_samples++;
                if (k > 0)
                        T.sys_kernel++;
                /* it lives in read(2): the kernel frames name the read path */
                if (has_frame(&s, "ksys_read") || has_frame(&s, "vfs_read"))
                        T.sys_read_path++;
        }
        diag_stack_clear(&s);
}

static int on_event(void *userdata, const struct diag_perf_event *e) {
        (void) userdata;
        if (T.host && e->pid != T.pid)
                return 0;
        diag_perf_unwind_note(T.unw, e);
        switch (e->kind) {
        case DIAG_PERF_SAMPLE:
                on_sample(e);
                break;
        case DIAG_PERF_FORK:
                if (T.thread2 && e->tid == T.thread2 && e->pid == T.pid)
                        T.fork_thread = true;
                if (T.child && e->pid == T.child && e->ppid == T.pid) {
                        T.fork_child = true;
                        T.child_fork = *e;
                        T.have_child_fork = true;
                }
                break;
        case DIAG_PERF_COMM:
                if (e->comm && strcmp(e->comm, "spinner2") == 0)
                        T.comm_thread = true;
                if (e->comm && strcmp(e->comm, "spinchild") == 0 && e->pid == T.child)
                        T.comm_child = true;
                break;
        case DIAG_PERF_LOST:
                T.lost_records += e->lost;
                break;
        case DIAG_PERF_EXIT:
                if (T.child && e->pid == T.child && e->tid == T.child)
                        T.exit_child = true;
                break;
        default:
                break;
        }
        return 0;
}

/* Send a command, read "WORD key=N" back. */
static pid_t command(FILE *in, FILE *out, const char *cmd, const char *key) {
        char line[128];
        const char *p;
        long long v;

        fprintf(in, "%s\n", cmd);
        fflush(in);
        if (!fgets(line, sizeof line, out) || !(p = strstr(line, key)))
                return 0;
        return diag_parse_ll(diag_strip((char *) p + strlen(key)), 10, 1, INT32_MAX, &v) == 0 ? (pid_t) v : 0;
}

static void run_window(struct diag_perf *p, uint64_t ms) {
        uint64_t end = diag_now_ns(CLOCK_MONOTONIC) + ms * 1000000ULL;

        while (diag_now_ns(CLOCK_MONOTONIC) < end)
                CHECK(diag_perf_poll(p, 100, on_event, NULL) >= 0);
}

/* Sample for 300 ms with o: did the spinning thread get samples? */
static bool sample_briefly(const struct diag_perf_opts *o) {
        struct diag_perf *p = NULL;
        const char *reason = NULL;
        uint64_t before = T.spinner_samples;
        int r = diag_perf_open(o, &p, &reason);

        if (r < 0) {
                fprintf(stderr, "diag_perf_open: %s\n", reason ? reason : strerror(-r));
                return false;
        }
        run_window(p, 300);
        diag_perf_disable(p);
        CHECK(diag_perf_poll(p, 0, on_event, NULL) >= 0);
        diag_perf_free(p);
        return T.spinner_samples > before;
}

int main(int argc, char **argv) {
        const char *spinfix = argc > 1 ? argv[1] : getenv("SPINFIX");
        int to[2], from[2];
        FILE *in, *out;
        char line[128];
        struct diag_perf *p = NULL;
        const char *reason = NULL;
        pid_t pid;
        int r, status;
        bool no_kernel = false;

        if (!spinfix) {
                fprintf(stderr, "usage: test-perf SPINFIX\n");
                return 99;
        }
        if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
                return 99;
        pid = fork();
        if (pid < 0)
                return 99;
        if (pid == 0) {
                dup2(to[0], 0);
                dup2(from[1], 1);
                execl(spinfix, spinfix, (char *) NULL);
                _exit(127);
        }
        close(to[0]);
        close(from[1]);
        in = fdopen(to[1], "w");
        out = fdopen(from[0], "r");
        if (!in || !out || !fgets(line, sizeof line, out) ||
            sscanf(line, "READY pid=%d tid=%d", &T.pid, &T.spinner) != 2) {
                fprintf(stderr, "spinfix did not start\n");
                kill(pid, SIGKILL);
                return 99;
        }

        r = diag_perf_open(&(struct diag_perf_opts) { .pids = &T.pid, .npids = 1, .freq_hz = 499,
                                                      .kernel_callchain = true },
                           &p, &reason);
        if (r == -EACCES || r == -EPERM) {
                /* kernel callchains need more privilege than user stacks: without them */
                printf("no kernel frames: %s\n", reason ? reason : strerror(-r));
                no_kernel = true;
                r = diag_perf_open(&(struct diag_perf_opts) { .pids = &T.pid, .npids = 1, .freq_hz = 499 },
                                   &p, &reason);
        }
        if (r == -EACCES || r == -EPERM || r == -ENOENT || r == -ENODEV || r == -ENOSYS) {
                printf("SKIP %s\n", reason ? reason : strerror(-r));
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return 77;
        }
        CHECK_INT(r, 0);
        if (r < 0) {
                fprintf(stderr, "diag_perf_open: %s\n", reason ? reason : strerror(-r));
                kill(pid, SIGKILL);
                return TAP_DONE();
        }
        CHECK(diag_perf_arch(p) == diag_arch_native());
        CHECK_INT(diag_perf_unwind_new(&T.unw), 0);

        run_window(p, 300);
        /* born during the window: sampled through the inherited events */
        T.thread2 = command(in, out, "thread", "tid=");
        T.child = command(in, out, "fork", "pid=");
        T.sys = command(in, out, "sys", "tid=");
        T.zspin = command(in, out, "dlopen", "tid=");
        CHECK(T.thread2 > 0 && T.child > 0 && T.sys > 0);
        run_window(p, 1000);
        diag_perf_disable(p);
        CHECK(diag_perf_poll(p, 0, on_event, NULL) >= 0);

        printf("samples %" PRIu64 " (other pids %" PRIu64 "), spinner %" PRIu64 ": spin_a %" PRIu64
               " spin_b %" PRIu64 ", full stacks %" PRIu64 ", unwind errors %" PRIu64 "\n",
               T.samples, T.other_pid, T.spinner_samples, T.spinner_a, T.spinner_b, T.spinner_full, T.spinner_err);
        printf("thread2 %" PRIu64 ", child %" PRIu64 ", sysloop %" PRIu64 " (with kernel frames %" PRIu64
               "), kernel leaf named %" PRIu64 ", unwind failures %" PRIu64 ", lost %" PRIu64 "\n",
               T.thread2_samples, T.child_samples, T.sys_samples, T.sys_kernel, T.kernel_named, T.unwind_fail,
               diag_perf_lost(p));
        qsort(T.each_ns, T.neach, sizeof *T.each_ns, cmp_u64);
        printf("unwind+symbolize CPU per sample (this build): mean %.1f us (first samples of each process\n"
               "  load its modules and debug info, the first kernel frame the symbol table), median %.1f us\n",
               T.samples ? (double) T.unwind_ns / (double) T.samples / 1e3 : 0.0,
               T.neach ? (double) T.each_ns[T.neach / 2] / 1e3 : 0.0);

        /* ~499 Hz on 2..4 busy threads over 1.3 s, but the machine may be shared and
         * this build unwinds slowly: floors well below that */
        CHECK(T.samples >= 100);
        CHECK_INT(T.other_pid, 0);
        CHECK(T.spinner_samples >= 50);
        CHECK(T.spinner_a + T.spinner_b >= T.spinner_samples * 9 / 10);
        if (T.spinner_a + T.spinner_b > 0) {
                double ra = (double) T.spinner_a / (double) (T.spinner_a + T.spinner_b);
                printf("spin_a share %.2f (expected ~0.70)\n", ra);
                CHECK(ra > 0.55 && ra < 0.85);
        }
        CHECK(T.spinner_full >= T.spinner_samples * 9 / 10);
        CHECK(T.thread2_samples >= 10);
        printf("zspin %" PRIu64 " (leaf in libz %" PRIu64 "), sysloop through ksys_read or vfs_read %" PRIu64 "\n",
               T.zspin_samples, T.zspin_libz, T.sys_read_path);
        if (T.zspin) {
                CHECK(T.zspin_samples >= 10);
                CHECK(T.zspin_libz >= T.zspin_samples * 9 / 10);
        } else
                printf("libz.so.1 could not be loaded: mapping new code not checked\n");
        CHECK(T.child_samples >= 3);       /* it spins 0.5 s among four busy threads */
        if (no_kernel)
                CHECK_INT(T.sys_kernel, 0);
        else {
                /* without kernel samples a thread that lives in read(2) is seldom seen */
                CHECK(T.sys_samples >= 10);
                CHECK(T.sys_kernel >= T.sys_samples / 2);
                CHECK(T.sys_read_path >= T.sys_kernel / 2);
                CHECK(T.kernel_named > 0);
        }
        CHECK_INT(T.kernel_order_bad, 0);
        CHECK(T.fork_thread);
        CHECK(T.fork_child);
        CHECK(T.comm_thread);
        CHECK(T.comm_child);
        CHECK(T.exit_child);
        CHECK(T.unwind_fail == 0);
        CHECK(diag_perf_lost(p) < T.samples);
        /* the process is known to the unwinder, and its modules are there */
        CHECK(diag_perf_unwind_of(T.unw, T.pid) != NULL);
        CHECK(diag_perf_unwind_of(T.unw, T.pid) && diag_unwinder_n_modules(diag_perf_unwind_of(T.unw, T.pid)) > 0);

        diag_perf_free(p);
        p = NULL;

        /* The child exited 0.5 s after it started and is a zombie now, its maps
         * empty: a fresh unwinder cannot unwind its sample, unless it was told of
         * the fork, and then unwinds it with the parent's maps. */
        CHECK(T.have_child_sample && T.have_child_fork);
        if (T.have_child_sample && T.have_child_fork) {
                struct diag_perf_unwind *w = NULL;
                struct diag_stack st;
                char path[64], stat[256] = "";
                FILE *f;

                snprintf(path, sizeof path, "/proc/%d/stat", (int) T.child);
                if ((f = fopen(path, "re"))) {
                        if (!fgets(stat, sizeof stat, f))
                                stat[0] = 0;
                        fclose(f);
                }
                CHECK(strstr(stat, ") Z ") != NULL);
                CHECK_INT(diag_perf_unwind_new(&w), 0);
                CHECK_INT(diag_perf_unwind_sample(w, &T.child_sample, 64, false, &st), -ESRCH);
                diag_perf_unwind_free(w);
                w = NULL;
                CHECK_INT(diag_perf_unwind_new(&w), 0);
                diag_perf_unwind_note(w, &T.child_fork);
                CHECK_INT(diag_perf_unwind_sample(w, &T.child_sample, 64, false, &st), 0);
                CHECK(has_frame(&st, "spin_loop") && has_frame(&st, "main"));
                diag_stack_clear(&st);
                diag_perf_unwind_free(w);
        }
        free(T.child_stack);

        /* hardware cycles when the machine has them, else cpu-clock: samples either way */
        CHECK(sample_briefly(&(struct diag_perf_opts) { .pids = &T.pid, .npids = 1, .freq_hz = 199, .cycles = true }));
        /* rings left unread while they overflow: LOST records, counted */
        {
                uint64_t before = T.samples;
                T.lost_records = 0;
                r = diag_perf_open(&(struct diag_perf_opts) { .pids = &T.pid, .npids = 1, .freq_hz = 4999 },
                                   &p, &reason);
                CHECK_INT(r, 0);
                if (r == 0) {
                        nanosleep(&(struct timespec) { .tv_nsec = 600000000 }, NULL);
                        CHECK(diag_perf_poll(p, 0, on_event, NULL) > 0);
                        /* the kernel writes the LOST record once there is room again */
                        run_window(p, 100);
                        diag_perf_disable(p);
                        CHECK(diag_perf_poll(p, 0, on_event, NULL) >= 0);
                        printf("overflow: %" PRIu64 " samples read, %" PRIu64 " lost\n", T.samples - before,
                               diag_perf_lost(p));
                        CHECK(T.samples > before);
                        CHECK(T.lost_records > 0);
                        CHECK(diag_perf_lost(p) >= T.lost_records);
                        diag_perf_free(p);
                        p = NULL;
                }
        }

        /* the whole host: one event per CPU; spinfix's samples are among them */
        if (!no_kernel) {
                T.host = true;
                CHECK(sample_briefly(&(struct diag_perf_opts) { .all = true, .freq_hz = 199 }));
        }

        fclose(in);             /* spinfix exits when stdin closes */
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fclose(out);

        /* a process that is gone: an error with its reason, not a crash */
        reason = NULL;
        CHECK_INT(diag_perf_open(&(struct diag_perf_opts) { .pids = &pid, .npids = 1 }, &p, &reason), -ESRCH);
        CHECK(reason != NULL);
        diag_perf_unwind_free(T.unw);
        return TAP_DONE();
}
