/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

#include "diag/guard.h"
#include "diag/inject.h"
#include "diag/proc.h"
#include "diag/util.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <linux/ptrace.h>

#define PAGE 4096ULL
#define RED_ZONE 128
#define XSTATE_MAX (64 * 1024)
#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FIX_EFLAGS 0x50dd5ULL           /* the flags rt_sigreturn restores */
#define USER_CS 0x33                    /* 64-bit user code segment */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516
#define STEP_MS 2000                    /* a stop that should come in microseconds */
#define FORK_MS 5000                    /* a fork, a process's exit: base time */

/*
 * No code is written into the target. Two instruction sequences every x86_64
 * process has in its C library are used where they are:
 *
 *   syscall; ret                       0f 05 c3
 *   mov $15,%rax; syscall              48 c7 c0 0f 00 00 00 0f 05   (rt_sigreturn,
 *                                      glibc's and musl's __restore_rt)
 *
 * A thread is sent to the first with rsp on a signal frame whose return address
 * is the second: after its system call it returns into rt_sigreturn, which puts
 * back every register, the signal mask and the FPU state. For clone, the child's
 * stack (newsp) is a second frame that "returns" to syscall with rax =
 * exit_group: a child nobody caught exits at once.
 */
static const uint8_t pat_syscall_ret[] = { 0x0f, 0x05, 0xc3 };
static const uint8_t pat_sigreturn[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };
static const uint8_t pat_sigreturn2[] = { 0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };

/* The kernel's x86_64 rt_sigframe, as rt_sigreturn reads it. */
struct k_sigcontext {
        uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
        uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
        uint16_t cs, gs, fs, ss;
        uint64_t err, trapno, oldmask, cr2, fpstate;
        uint64_t reserved1[8];
};
struct k_ucontext {
        uint64_t uc_flags, uc_link;
        struct {
                uint64_t ss_sp;
                int32_t ss_flags, pad;
                uint64_t ss_size;
        } uc_stack;
        struct k_sigcontext uc_mcontext;
        uint64_t uc_sigmask;
};
struct k_rt_sigframe {
        uint64_t pretcode;
        struct k_ucontext uc;
        uint8_t info[128];
};
_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext layout");
_Static_assert(sizeof(struct k_ucontext) == 304, "ucontext layout");
_Static_assert(sizeof(struct k_rt_sigframe) == 440, "rt_sigframe layout");

/* One injected system call in one stopped thread. */
struct inj {
        pid_t pid, tid;
        int memfd;                      /* /proc/PID/mem, read-write */
        struct user_regs_struct orig;   /* as stopped */
        struct user_regs_struct resume; /* as it must continue (restart applied) */
        uint8_t *xstate;
        size_t xstate_len;
        struct diag_gadgets g;
        /* Written below the thread's red zone, lowest first: the exit frame a
         * clone child starts on, then the frame that returns the thread to where
         * it was, then its FPU state. */
        uint64_t area, child_frame, frame;
        uint8_t *area_saved;
        size_t area_len;
        bool area_written;
        int pending_sig;                /* a signal that arrived meanwhile: give it back */
        bool mended;                    /* rt_sigreturn left something to put right */
};

static int mem_open(pid_t pid) {
        char path[64];
        int fd;

        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        return fd;
}

static int mem_pread(int fd, uint64_t addr, void *buf, size_t len) {
        ssize_t n = pread(fd, buf, len, (off_t) addr);
        if (n < 0)
                return negative_errno();
        return (size_t) n == len ? 0 : -EFAULT;
}

static int mem_pwrite(int fd, uint64_t addr, const void *buf, size_t len) {
        ssize_t n = pwrite(fd, buf, len, (off_t) addr);
        if (n < 0)
                return negative_errno();
        return (size_t) n == len ? 0 : -EFAULT;
}

/* The first address of pat in [start, end) of the process behind memfd, or 0. */
static uint64_t mem_find(int memfd, uint64_t start, uint64_t end, const uint8_t *pat, size_t len,
                         uint8_t *buf, size_t bufsize) {
        for (uint64_t a = start; a + len <= end; a += bufsize - len + 1) {
                size_t n = (size_t) MIN((uint64_t) bufsize, end - a);
                ssize_t got = pread(memfd, buf, n, (off_t) a);
                const uint8_t *hit;

                if (got < (ssize_t) len)
                        return 0;
                hit = memmem(buf, (size_t) got, pat, len);
                if (hit)
                        return a + (uint64_t) (hit - buf);
        }
        return 0;
}

static bool is_libc(const char *path) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0 ||
               strncmp(base, "ld-musl", 7) == 0 || strncmp(base, "libc.musl", 9) == 0;
}

/* The two sequences, in the executable file mappings of pid: the C library's
 * first (small, and surely in memory), then the others, up to a bound. Only
 * file-backed code, never a JIT's anonymous pages, which change. */
int diag_inject_find_gadgets(pid_t pid, const struct diag_maps *maps, const struct diag_remote_devs *remote,
                             struct diag_gadgets *ret) {
        enum { SCAN_MAX = 64 << 20, BUF = 256 << 10 };
        struct diag_remote_devs own = {};
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        struct diag_gadgets g = {};
        uint64_t scanned = 0;
        char path[64];

        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        buf = malloc(BUF);
        if (!buf)
                return -ENOMEM;
        if (!remote && diag_proc_read_remote_devs(pid, &own) == 0)
                remote = &own;
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < maps->n && scanned < SCAN_MAX && !(g.syscall_ret && g.sigreturn); i++) {
                        const struct diag_map *m = &maps->maps[i];

                        if (m->perms[0] != 'r' || m->perms[2] != 'x' || m->path[0] != '/' ||
                            (pass == 0) != is_libc(m->path))
                                continue;
                        /* A page of a binary on NFS or FUSE that is not in memory would
                         * be read from the server, which may not answer. */
                        if (diag_remote_devs_has(remote, m->dev_major, m->dev_minor))
                                continue;
                        if (!g.syscall_ret)
                                g.syscall_ret = mem_find(fd, m->start, m->end, pat_syscall_ret,
                                                         sizeof pat_syscall_ret, buf, BUF);
                        if (!g.sigreturn)
                                g.sigreturn = mem_find(fd, m->start, m->end, pat_sigreturn,
                                                       sizeof pat_sigreturn, buf, BUF);
                        if (!g.sigreturn)
                                g.sigreturn = mem_find(fd, m->start, m->end, pat_sigreturn2,
                                                       sizeof pat_sigreturn2, buf, BUF);
                        scanned += m->end - m->start;
                }
        diag_remote_devs_done(&own);
        if (!g.syscall_ret || !g.sigreturn)
                return -ENOENT;
        *ret = g;
        return 0;
}

/* The sequences are still there (checked while the thread is stopped). */
static bool gadgets_intact(int memfd, const struct diag_gadgets *g) {
        uint8_t a[sizeof pat_syscall_ret], b[sizeof pat_sigreturn];

        if (mem_pread(memfd, g->syscall_ret, a, sizeof a) < 0 || memcmp(a, pat_syscall_ret, sizeof a) != 0)
                return false;
        if (mem_pread(memfd, g->sigreturn, b, sizeof pat_sigreturn2) == 0 &&
            memcmp(b, pat_sigreturn2, sizeof pat_sigreturn2) == 0)
                return true;
        return mem_pread(memfd, g->sigreturn, b, sizeof b) == 0 && memcmp(b, pat_sigreturn, sizeof b) == 0;
}

/* Where the thread goes on from: a system call interrupted by our stop is
 * restarted the way the kernel would when no handler runs. */
static void resume_regs(const struct user_regs_struct *o, struct user_regs_struct *r) {
        *r = *o;
        if ((long) o->orig_rax >= 0) {
                switch ((long) o->rax) {
                case -ERESTARTSYS:
                case -ERESTARTNOINTR:
                case -ERESTARTNOHAND:
                        r->rax = o->orig_rax;
                        r->rip -= 2;
                        break;
                case -ERESTART_RESTARTBLOCK:
                        r->rax = SYS_restart_syscall;
                        r->rip -= 2;
                        break;
                }
        }
        r->orig_rax = (unsigned long long) -1;
}

/* The stack this thread may have a frame put on: its own mapping, writable, with
 * room below the red zone. Only the process stack or a thread stack (a guard page
 * right below): below sp on anything else could be someone else's memory. */
static bool frame_fits(const struct diag_maps *maps, uint64_t sp, uint64_t lo) {
        const struct diag_map *m = diag_maps_find(maps, sp - 1);

        if (!m || m->perms[1] != 'w' || lo < m->start + PAGE)
                return false;
        if (strcmp(m->path, "[stack]") == 0)
                return true;
        if (m > maps->maps && m[-1].end == m->start && strncmp(m[-1].perms, "---", 3) == 0)
                return true;
        return false;
}

#define XFEATURE_TILE_DATA (1ULL << 18)

bool diag_xsave_component(unsigned bit, uint32_t *ret_off, uint32_t *ret_size) {
        /* CPUID traps to the hypervisor in a VM (tens of microseconds): once each. */
        static struct { bool known, ok; uint32_t off, size; } cache[64];

        if (bit >= 64)
                return false;
        if (!cache[bit].known) {
                unsigned a = 0, b = 0, c, d;
                cache[bit].ok = __get_cpuid_count(0xd, bit, &a, &b, &c, &d) && a > 0;
                cache[bit].size = a;
                cache[bit].off = b;
                cache[bit].known = true;
        }
        *ret_off = cache[bit].off;
        *ret_size = cache[bit].size;
        return cache[bit].ok;
}

/* The end of the last XSAVE component in features (standard format). */
static uint32_t sigframe_xstate_size(uint64_t features) {
        uint32_t size = 576;

        for (unsigned bit = 2; bit < 64; bit++) {
                uint32_t off, len;
                if ((features & (1ULL << bit)) && diag_xsave_component(bit, &off, &len))
                        size = MAX(size, off + len);
        }
        return size;
}

static int build_frame(struct inj *ij, const struct diag_maps *maps, uint64_t sigblk, uint8_t **ret) {
        const struct user_regs_struct *r = &ij->resume;
        struct k_rt_sigframe fr = {}, cf = {};
        struct k_sigcontext *sc = &fr.uc.uc_mcontext, *cc = &cf.uc.uc_mcontext;
        uint32_t magic1 = 0, xsize = (uint32_t) ij->xstate_len, magic2 = FP_XSTATE_MAGIC2;
        size_t need = ij->xstate_len;
        uint64_t fp, frame, child, sp0 = ij->orig.rsp - RED_ZONE, xcr0 = 0;
        uint8_t *buf;

        /* ptrace puts XCR0 in the first word of the FXSAVE area's software bytes;
         * a signal frame wants struct _fpx_sw_bytes there, and a second magic
         * after the XSAVE area, or the kernel restores x87 and SSE only. */
        if (ij->xstate_len >= 576)
                memcpy(&xcr0, ij->xstate + 464, 8);
        if (xcr0 & ~3ULL) {
                /* Only the features a signal frame of this thread holds: not AMX
                 * tile data (enabled per process on demand), or the kernel finds the
                 * frame larger than its own and restores x87 and SSE only. */
                xcr0 &= ~XFEATURE_TILE_DATA;
                xsize = MIN(xsize, sigframe_xstate_size(xcr0));
                need = xsize + 4;
                magic1 = FP_XSTATE_MAGIC1;
        }
        fp = (sp0 - need) & ~63ULL;
        frame = ((fp - sizeof fr) & ~15ULL) - 8;
        child = ((frame - sizeof cf) & ~15ULL) - 8;
        if (!frame_fits(maps, ij->orig.rsp, child))
                return -ENOSPC;

        /* The way back: "syscall; ret" returns into rt_sigreturn, which reads this. */
        fr.pretcode = ij->g.sigreturn;
        fr.uc.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | (magic1 ? UC_FP_XSTATE : 0);
        /* An invalid mode: the kernel ignores the altstack restore, the thread's
         * sigaltstack (which we cannot read) stays as it is. */
        fr.uc.uc_stack.ss_flags = 7;
        sc->r8 = r->r8; sc->r9 = r->r9; sc->r10 = r->r10; sc->r11 = r->r11;
        sc->r12 = r->r12; sc->r13 = r->r13; sc->r14 = r->r14; sc->r15 = r->r15;
        sc->rdi = r->rdi; sc->rsi = r->rsi; sc->rbp = r->rbp; sc->rbx = r->rbx;
        sc->rdx = r->rdx; sc->rax = r->rax; sc->rcx = r->rcx; sc->rsp = r->rsp;
        sc->rip = r->rip; sc->eflags = r->eflags;
        sc->cs = (uint16_t) r->cs;
        sc->ss = (uint16_t) r->ss;
        sc->fpstate = fp;
        fr.uc.uc_sigmask = sigblk;

        /* A clone child's stack: the same return into rt_sigreturn, to
         * exit_group(0) with every signal blocked. Caught children never get
         * there; one whose tracer died does, at once. */
        cf.pretcode = ij->g.sigreturn;
        cf.uc.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
        cf.uc.uc_stack.ss_flags = 7;
        cc->rip = ij->g.syscall_ret;
        cc->rax = SYS_exit_group;
        cc->rsp = child + 8;
        cc->eflags = 0x202;
        cc->cs = (uint16_t) r->cs;
        cc->ss = (uint16_t) r->ss;
        cf.uc.uc_sigmask = ~0ULL;

        ij->area = child;
        ij->child_frame = child;
        ij->frame = frame;
        ij->area_len = fp + need - child;
        buf = calloc(1, ij->area_len);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, &cf, sizeof cf);
        memcpy(buf + (frame - child), &fr, sizeof fr);
        memcpy(buf + (fp - child), ij->xstate, magic1 ? xsize : ij->xstate_len);
        if (magic1) {
                uint64_t bv;
                memcpy(&bv, buf + (fp - child) + 512, 8);
                bv &= xcr0;
                memcpy(buf + (fp - child) + 512, &bv, 8);
                uint8_t *sw = buf + (fp - child) + 464;
                const uint32_t ext = xsize + 4;
                memset(sw, 0, 48);
                memcpy(sw, &magic1, 4);
                memcpy(sw + 4, &ext, 4);
                memcpy(sw + 8, &xcr0, 8);
                memcpy(sw + 16, &xsize, 4);
                memcpy(buf + (fp - child) + xsize, &magic2, 4);
        }
        *ret = buf;
        return 0;
}

static void inj_put_back(struct inj *ij) {
        if (ij->area_written && mem_pwrite(ij->memfd, ij->area, ij->area_saved, ij->area_len) == 0)
                ij->area_written = false;
}

static void inj_done(struct inj *ij) {
        inj_put_back(ij);
        free(ij->xstate);
        free(ij->area_saved);
        if (ij->memfd >= 0)
                close(ij->memfd);
        ij->xstate = ij->area_saved = NULL;
        ij->memfd = -1;
}

/* Everything up to the register switch: read the thread, write its frames on its
 * stack below the red zone (memory no code of the thread's owns; a signal
 * delivered there would overwrite it just the same). Nothing here changes how
 * the thread runs; a failure leaves it as it was. */
static int inj_prepare(struct inj *ij, const struct diag_maps *maps, const struct diag_gadgets *g) {
        struct iovec iov;
        unsigned long long sigblk;
        _cleanup_free_ uint8_t *frame = NULL;
        int r;

        ij->memfd = -1;
        ij->g = *g;
        if (ptrace(PTRACE_GETREGS, ij->tid, 0, &ij->orig) < 0)
                return negative_errno();
        if (ij->orig.cs != USER_CS)
                return -EPROTONOSUPPORT;        /* a 32-bit process */
        resume_regs(&ij->orig, &ij->resume);
        ij->xstate = malloc(XSTATE_MAX);
        if (!ij->xstate)
                return -ENOMEM;
        iov = (struct iovec) { ij->xstate, XSTATE_MAX };
        if (ptrace(PTRACE_GETREGSET, ij->tid, (void *) NT_X86_XSTATE, &iov) < 0) {
                iov = (struct iovec) { ij->xstate, 512 };
                if (ptrace(PTRACE_GETREGSET, ij->tid, (void *) NT_PRFPREG, &iov) < 0)
                        return negative_errno();
        }
        ij->xstate_len = iov.iov_len;
        r = diag_task_status_field(ij->pid, ij->tid, "SigBlk", 16, &sigblk);
        if (r < 0)
                return r;
        r = build_frame(ij, maps, sigblk, &frame);
        if (r < 0)
                return r;
        ij->memfd = mem_open(ij->pid);
        if (ij->memfd < 0)
                return ij->memfd;
        if (!gadgets_intact(ij->memfd, g))
                return -ENOENT;
        ij->area_saved = malloc(ij->area_len);
        if (!ij->area_saved)
                return -ENOMEM;
        r = mem_pread(ij->memfd, ij->area, ij->area_saved, ij->area_len);
        if (r < 0)
                return r;
        ij->area_written = true;
        return mem_pwrite(ij->memfd, ij->area, frame, ij->area_len);
}

/* waitpid for one tracee, until deadline: a tracee that does not stop (a fork
 * stuck behind a lock, a thread gone into D state) must not hang us. Polled
 * with sleeps that double from 5 us to 200 us: no CPU taken from the tracee,
 * which on a busy machine needs one to get to its stop. */
static int wait_tracee(pid_t tid, int *st, uint64_t deadline) {
        static __thread bool slack_set;
        long us = 5;

        if (!slack_set) {
                (void) prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);       /* this thread's sleeps: 1 us late at most */
                slack_set = true;
        }
        for (;;) {
                pid_t w = waitpid(tid, st, __WALL | WNOHANG);

                if (w == tid)
                        return 0;
                if (w < 0 && errno != EINTR)
                        return negative_errno();
                if (diag_now_ns(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                nanosleep(&(struct timespec) { .tv_nsec = us * 1000 }, NULL);
                us = MIN(us * 2, 200L);
        }
}

static uint64_t deadline_in(unsigned ms) {
        return diag_now_ns(CLOCK_MONOTONIC) + (uint64_t) ms * 1000000ULL;
}

/* Resume to the next system-call or event stop, within ms. A signal that
 * arrives meanwhile is kept to be handed back on detach. */
static int step(pid_t tid, int *pending_sig, int *ret_status, unsigned ms) {
        uint64_t deadline = deadline_in(ms);

        for (;;) {
                int st, sig, r;

                /* A tracee that keeps stopping for signals (a storm of them, a
                 * job-control stop) must not keep us, and it, here for ever. */
                if (diag_now_ns(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0)
                        return negative_errno();
                r = wait_tracee(tid, &st, deadline);
                if (r < 0)
                        return r;
                if (WIFEXITED(st) || WIFSIGNALED(st))
                        return -ESRCH;
                sig = WSTOPSIG(st);
                if (sig == (SIGTRAP | 0x80) || (st >> 16) == PTRACE_EVENT_CLONE) {
                        *ret_status = st;
                        return 0;
                }
                if ((st >> 16) == 0 && sig != SIGTRAP && pending_sig && !*pending_sig)
                        *pending_sig = sig;
        }
}

static bool regs_restored(const struct user_regs_struct *a, const struct user_regs_struct *b) {
        return a->r15 == b->r15 && a->r14 == b->r14 && a->r13 == b->r13 && a->r12 == b->r12 &&
               a->rbp == b->rbp && a->rbx == b->rbx && a->r11 == b->r11 && a->r10 == b->r10 &&
               a->r9 == b->r9 && a->r8 == b->r8 && a->rax == b->rax && a->rcx == b->rcx &&
               a->rdx == b->rdx && a->rsi == b->rsi && a->rdi == b->rdi && a->rip == b->rip &&
               a->rsp == b->rsp && (a->eflags & FIX_EFLAGS) == (b->eflags & FIX_EFLAGS) &&
               a->fs_base == b->fs_base && a->gs_base == b->gs_base;
}

/* A new tracee made by clone: wait for its first stop and mark it to die with us. */
static pid_t catch_child(pid_t parent) {
        unsigned long msg = 0;
        int st;

        if (ptrace(PTRACE_GETEVENTMSG, parent, 0, &msg) < 0 || msg == 0)
                return 0;
        if (wait_tracee((pid_t) msg, &st, deadline_in(STEP_MS)) < 0 || !WIFSTOPPED(st))
                return (pid_t) msg;
        (void) ptrace(PTRACE_SETOPTIONS, (pid_t) msg, 0, (void *) (long) (PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD));
        return (pid_t) msg;
}

/* Run syscall nr(args) in the prepared thread, through rt_sigreturn back to where
 * it was; the system call itself may take call_ms. For clone (child not NULL),
 * args[1] is set to the child's exit frame and *child gets the new process (our
 * namespace), caught. */
static int inj_run(struct inj *ij, long nr, const uint64_t args[4], unsigned call_ms, long *ret_result,
                   pid_t *child, uint64_t *ret_ns) {
        struct user_regs_struct rg = ij->orig, now;
        int st, r;
        uint64_t t0;

        rg.rip = ij->g.syscall_ret;
        rg.rax = (unsigned long long) nr;
        rg.orig_rax = (unsigned long long) -1;
        rg.rdi = args[0];
        rg.rsi = child ? ij->child_frame : args[1];
        rg.rdx = args[2];
        rg.r10 = args[3];
        rg.r8 = rg.r9 = 0;
        rg.rsp = ij->frame;             /* the return address into rt_sigreturn */
        if (ptrace(PTRACE_SETOPTIONS, ij->tid, 0,
                   (void *) (long) (PTRACE_O_TRACESYSGOOD | (child ? PTRACE_O_TRACECLONE : 0))) < 0)
                return negative_errno();
        if (ptrace(PTRACE_SETREGS, ij->tid, 0, &rg) < 0)
                return negative_errno();
        /* From here the thread is on its way: whatever happens to us, it ends in
         * rt_sigreturn. */
        t0 = diag_now_ns(CLOCK_MONOTONIC);
        r = step(ij->tid, &ij->pending_sig, &st, STEP_MS);             /* entry */
        if (r < 0)
                return r;
        r = step(ij->tid, &ij->pending_sig, &st, call_ms);             /* event or exit */
        if (r < 0)
                return r;
        if ((st >> 16) == PTRACE_EVENT_CLONE && child) {
                *child = catch_child(ij->tid);
                r = step(ij->tid, &ij->pending_sig, &st, STEP_MS);     /* exit */
                if (r < 0)
                        return r;
        }
        if (ret_ns)
                *ret_ns = diag_now_ns(CLOCK_MONOTONIC) - t0;
        if (ptrace(PTRACE_GETREGS, ij->tid, 0, &now) < 0)
                return negative_errno();
        *ret_result = (long) now.rax;
        r = step(ij->tid, &ij->pending_sig, &st, STEP_MS);             /* rt_sigreturn entry */
        if (r < 0)
                return r;
        r = step(ij->tid, &ij->pending_sig, &st, STEP_MS);             /* rt_sigreturn exit */
        if (r < 0)
                return r;
        (void) ptrace(PTRACE_SETOPTIONS, ij->tid, 0, (void *) 0L);
        /* Check, and mend if the kernel restored anything differently. */
        if (ptrace(PTRACE_GETREGS, ij->tid, 0, &now) < 0)
                return negative_errno();
        if (!regs_restored(&now, &ij->resume)) {
                ij->mended = true;
                if (ptrace(PTRACE_SETREGS, ij->tid, 0, &ij->resume) < 0)
                        return negative_errno();
        }
        {
                _cleanup_free_ uint8_t *xs = malloc(XSTATE_MAX);
                struct iovec iov = { xs, XSTATE_MAX };
                if (xs && ptrace(PTRACE_GETREGSET, ij->tid, (void *) NT_X86_XSTATE, &iov) == 0 &&
                    (iov.iov_len != ij->xstate_len || memcmp(xs, ij->xstate, iov.iov_len) != 0)) {
                        ij->mended = true;
                        iov = (struct iovec) { ij->xstate, ij->xstate_len };
                        (void) ptrace(PTRACE_SETREGSET, ij->tid, (void *) NT_X86_XSTATE, &iov);
                }
        }
        return 0;
}

/* Bytes a memory cgroup can still grow by: its limit file less its usage file,
 * under root; -ENOENT when there is no limit ("max", or v1's huge number). */
static int memcg_room_at(const char *root, const char *cg, const char *limit, const char *usage,
                         unsigned long long *ret) {
        char path[PATH_MAX], buf[64];
        unsigned long long max, cur;

        snprintf(path, sizeof path, "%s%s/%s", root, cg, limit);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 ||
            diag_parse_ull(diag_strip(buf), 10, &max) < 0 || max >= (1ULL << 62))
                return -ENOENT;
        snprintf(path, sizeof path, "%s%s/%s", root, cg, usage);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 ||
            diag_parse_ull(diag_strip(buf), 10, &cur) < 0)
                return -ENOENT;
        *ret = max > cur ? max - cur : 0;
        return 0;
}

/* Bytes the memory cgroup of pid can still grow by (cgroup v1 or v2); -ENOENT
 * when there is no limit or no memory controller. */
static int memcg_room(pid_t pid, unsigned long long *ret) {
        char path[PATH_MAX], cg[PATH_MAX / 2];
        _cleanup_free_ char *text = NULL;

        snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
        if (diag_read_file_at(AT_FDCWD, path, 1 << 16, &text, NULL) < 0)
                return -ENOENT;
        if (diag_proc_cgroup_path(text, "memory", cg, sizeof cg) == 0 &&
            memcg_room_at("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes", "memory.usage_in_bytes", ret) == 0)
                return 0;
        if (diag_proc_cgroup_path(text, NULL, cg, sizeof cg) == 0 &&
            memcg_room_at("/sys/fs/cgroup", cg, "memory.max", "memory.current", ret) == 0)
                return 0;
        return -ENOENT;
}

/* A thread in D state inside a page fault or a memory-map call may hold the
 * mmap lock that fork() must take for writing: the fork would wait as long as
 * that thread does (forever, on a dead mount), with every thread stopped. The
 * kernel stack says where it sleeps (root only); else the wait channel. Only
 * the threads the capture could not stop are looked at. */
static bool dstate_holds_mm(const struct diag_capture *c, pid_t *ret_tid) {
        static const char *const risky[] = {
                "fault", "mmap", "munmap", "mprotect", "madvise", "mremap", "brk", "rwsem_down", "mlock",
                "get_user_pages", "populate",
        };

        for (size_t i = 0; i < c->n; i++) {
                pid_t tid = c->threads[i].tid;
                _cleanup_free_ char *stack = NULL;
                char wchan[128];
                bool risk = false;

                if (!c->threads[i].err || c->threads[i].err == -ESRCH)
                        continue;
                if (diag_task_read_kstack(c->pid, tid, &stack) == 0 && stack[0]) {
                        for (size_t k = 0; k < ELEMENTSOF(risky) && !risk; k++)
                                risk = strstr(stack, risky[k]);
                } else
                        risk = diag_task_read_wchan(c->pid, tid, wchan, sizeof wchan) < 0 ||
                               strstr(wchan, "rwsem") || strstr(wchan, "fault");
                if (risk) {
                        *ret_tid = tid;
                        return true;
                }
        }
        return false;
}

const char *diag_inject_fork_unsuitable(pid_t pid) {
        char path[64], buf[8192];
        unsigned long long seccomp = 0;
        const char *p;
        ssize_t n;

        snprintf(path, sizeof path, "/proc/%d/status", pid);
        n = diag_read_small_at(AT_FDCWD, path, buf, sizeof buf);
        if (n < 0)
                return NULL;    /* the capture will say what is wrong */
        if (diag_status_field(buf, "Seccomp", 10, &seccomp) == 0 && seccomp != 0)
                return "the target runs under a seccomp filter, which may forbid or punish fork";
        p = strstr(buf, "\nx86_Thread_features:");
        if (p) {
                const char *e = strchr(p + 1, '\n');
                const char *s = strstr(p, "shstk");
                if (s && (!e || s < e))
                        return "the target uses a shadow stack";
        }
        p = strstr(buf, "\nState:");
        if (p) {
                p += strlen("\nState:");
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p == 'T' || *p == 't')
                        return "the target is already stopped";
        }
        {
                unsigned long long anon_kb = 0, room;
                if (diag_status_field(buf, "RssAnon", 10, &anon_kb) == 0 &&
                    memcg_room(pid, &room) == 0 && room < anon_kb * 1024)
                        return "its memory cgroup has less room left than the process's memory, and "
                               "copy-on-write could reach the limit";
        }
        return NULL;
}

/* How long the fork itself may take: copying the page tables of a large
 * process takes tens of milliseconds per GiB; past this, something holds it. */
static unsigned fork_ms(pid_t pid) {
        unsigned long long rss_kb = 0;
        (void) diag_task_status_field(pid, 0, "VmRSS", 10, &rss_kb);
        return FORK_MS + (unsigned) MIN(rss_kb / (1024 * 1024) * 200, 600000ULL);
}

int diag_inject_fork(const struct diag_capture *c, const struct diag_maps *maps, const struct diag_gadgets *g,
                     struct diag_fork *f, const char **ret_why) {
        unsigned call_ms = fork_ms(c->pid);
        int r = -ESRCH;

        static __thread char why[160];
        pid_t dtid = 0;

        *f = (struct diag_fork) { .pid = c->pid, .guard_fd = -1 };
        *ret_why = "no thread could fork safely";
        if (dstate_holds_mm(c, &dtid)) {
                snprintf(why, sizeof why, "thread %d is in uninterruptible sleep (D) in a memory-map or "
                         "page-fault path, and fork would wait for it", dtid);
                *ret_why = why;
                return -EDEADLK;
        }
        f->g = *g;
        /* The main thread first, then any stopped thread whose stack can take a frame. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < c->n; i++) {
                        const struct diag_thread_capture *t = &c->threads[i];
                        struct inj ij = { .pid = c->pid, .tid = t->tid };
                        /* Exit signal 0: the target gets no SIGCHLD. CLONE_FILES: the copy
                         * shares the fd table rather than holding a reference to every
                         * file (whose close at its exit could block: a FUSE or NFS flush). */
                        const uint64_t args[4] = { CLONE_FILES, 0, 0, 0 };
                        long res = 0;
                        pid_t child = 0;

                        if (t->err || (pass == 0) != (t->tid == c->pid))
                                continue;
                        r = inj_prepare(&ij, maps, g);
                        if (r < 0) {
                                inj_done(&ij);  /* puts back whatever was written */
                                if (r == -ENOSPC || r == -EPROTONOSUPPORT)
                                        continue;
                                *ret_why = r == -ENOENT ? "its C library's code changed"
                                                        : "the target's memory could not be prepared";
                                return r;
                        }
                        f->ran = true;
                        r = inj_run(&ij, SYS_clone, args, call_ms, &res, &child, &f->fork_ns);
                        /* The frames go back only once the thread is past them. If it is
                         * not, they stay below its stack pointer, where nothing else
                         * looks, and the thread finishes the sequence when released. */
                        if (r == 0)
                                inj_put_back(&ij);
                        else {
                                ij.area_written = false;
                                f->unfinished = ij.tid;
                        }
                        f->tid = ij.tid;
                        f->mended = ij.mended;
                        f->frame = ij.area;
                        f->frame_len = ij.area_len;
                        f->child_frame = ij.child_frame;
                        f->frame_saved = TAKE_PTR(ij.area_saved);
                        /* A signal caught while we ran: back on the detach. */
                        if (ij.pending_sig)
                                (void) syscall(SYS_tgkill, c->pid, ij.tid, ij.pending_sig);
                        inj_done(&ij);
                        if (r < 0) {
                                *ret_why = r == -ETIMEDOUT ? "the injected fork did not return in time"
                                                           : "the injected fork did not complete";
                                if (child > 0)
                                        (void) kill(child, SIGKILL);
                                return r;
                        }
                        if (res < 0 || child <= 0) {
                                *ret_why = res == -ENOMEM ? "fork failed: not enough memory"
                                         : res == -EAGAIN ? "fork failed: process or thread limit"
                                         : "fork failed in the target";
                                if (child > 0)
                                        (void) kill(child, SIGKILL);
                                return res < 0 ? (int) res : -ECHILD;
                        }
                        f->child = child;
                        f->child_ns = (pid_t) res;
                        return 0;
                }
        return r < 0 ? r : -ESRCH;
}

/* Run syscall nr(a0, a1) in a stopped process of ours (the child), to its exit
 * stop; for clone, catch the new process. No way back is needed: these processes
 * are disposable. Their stack is the exit frame, so that one left running by our
 * death (or a grandchild not caught yet) ends at once. */
static int run_in_child(const struct diag_fork *f, pid_t pid, long nr, uint64_t a0, uint64_t a1, long *ret,
                        pid_t *ret_child) {
        struct user_regs_struct rg;
        int st, r;

        if (ptrace(PTRACE_GETREGS, pid, 0, &rg) < 0)
                return negative_errno();
        rg.rip = f->g.syscall_ret;
        rg.rsp = f->child_frame;
        rg.rax = (unsigned long long) nr;
        rg.orig_rax = (unsigned long long) -1;
        rg.rdi = a0;
        rg.rsi = a1;
        rg.rdx = rg.r10 = rg.r8 = 0;
        if (ptrace(PTRACE_SETOPTIONS, pid, 0, (void *) (long) (PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD |
                                                             (ret_child ? PTRACE_O_TRACECLONE : 0))) < 0)
                return negative_errno();
        if (ptrace(PTRACE_SETREGS, pid, 0, &rg) < 0)
                return negative_errno();
        r = step(pid, NULL, &st, STEP_MS);                      /* entry */
        if (r == 0)
                r = step(pid, NULL, &st, FORK_MS);              /* exit, or the clone event */
        if (r == 0 && ret_child && (st >> 16) == PTRACE_EVENT_CLONE) {
                *ret_child = catch_child(pid);
                r = step(pid, NULL, &st, STEP_MS);              /* exit */
        }
        if (r < 0)
                return r;
        if (ptrace(PTRACE_GETREGS, pid, 0, &rg) < 0)
                return negative_errno();
        *ret = (long) rg.rax;
        return 0;
}

static void kill_and_wait(pid_t pid) {
        uint64_t deadline = deadline_in(FORK_MS);

        (void) kill(pid, SIGKILL);
        for (;;) {
                int st;
                if (wait_tracee(pid, &st, deadline) < 0 || WIFEXITED(st) || WIFSIGNALED(st))
                        break;
        }
}

static int reap_from_target(struct diag_fork *f, pid_t child_ns);

/* The pid of pid in its own (innermost) pid namespace: the last NSpid value. */
static int nspid_innermost(pid_t pid, unsigned long long *ret) {
        char path[64], buf[4096];
        const char *q, *e, *last = NULL;

        snprintf(path, sizeof path, "/proc/%d/status", pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || !(q = strstr(buf, "\nNSpid:")))
                return -ENOENT;
        e = strchr(q + 1, '\n');
        for (const char *t = q + 7; *t && (!e || t < e); t++)
                if ((*t == '\t' || *t == ' ') && t[1] >= '0' && t[1] <= '9')
                        last = t + 1;
        if (!last)
                return -ENOENT;
        *ret = strtoull(last, NULL, 10);
        return 0;
}

/* Tell the guard of a process of ours that the target has adopted: if we die,
 * it reaps it from the target, whatever its exit signal. */
static void guard_tell(int fd, char what, pid_t pid) {
        char msg[1 + sizeof pid] = { what };

        if (fd < 0)
                return;
        memcpy(msg + 1, &pid, sizeof pid);
        (void) !write(fd, msg, sizeof msg);
}

int diag_inject_fork_prepare_child(struct diag_fork *f) {
        _cleanup_close_ int fd = -1;
        unsigned long long self_ns = 0;
        pid_t holder = 0;
        long res = 0;
        char path[64], buf[512];
        const char *p;
        int r;

        /* The init of a pid namespace (a container's first process) adopts
         * every orphan in it: a grandchild would be its child all the same,
         * with exit signal SIGCHLD, a zombie it may never reap if we die. The
         * child (exit signal 0, no SIGCHLD) keeps the image then, and is reaped
         * from the target at the end, or by the guard. */
        if (nspid_innermost(f->pid, &self_ns) == 0 && self_ns == 1) {
                f->kept_child = true;
                holder = f->child;
        } else {
                /* The image moves to a grandchild, and the child is reaped by the
                 * target right away: the grandchild is an orphan, adopted (with
                 * exit signal SIGCHLD) by init or the nearest subreaper above the
                 * target. Whenever it dies, even with us, its new parent reaps it;
                 * the target never has a zombie to reap, except in the
                 * microseconds of this handover. It shares the target's fd table
                 * too: it opens, holds and closes nothing. */
                r = run_in_child(f, f->child, SYS_clone, CLONE_FILES, f->child_frame, &res, &holder);
                if (r < 0 || holder <= 0)
                        return r < 0 ? r : (res < 0 ? (int) res : -ECHILD);
                kill_and_wait(f->child);
                f->child = holder;
                r = reap_from_target(f, f->child_ns);
                f->child_ns = 0;
                if (r < 0)
                        f->reap_error = r;
                /* Unless the target is itself a subreaper: then it adopted the
                 * grandchild, and must reap it at the end as well (and the guard,
                 * if we die first). */
                snprintf(path, sizeof path, "/proc/%d/stat", holder);
                if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) > 0 && (p = strrchr(buf, ')')) &&
                    strtol(p + 4, NULL, 10) == f->pid) {
                        f->child_ns = (pid_t) res;
                        guard_tell(f->guard_fd, 'o', holder);
                }
        }
        /* The frames the fork was made with are in the copy: put back what the
         * stack held there, so that the image is the target's. */
        fd = mem_open(holder);
        if (fd < 0)
                return fd;
        return f->frame_saved ? mem_pwrite(fd, f->frame, f->frame_saved, f->frame_len) : 0;
}

/* Stop one thread of the target for the reap. Opens the guard's stop window
 * (diag/guard.h): the caller closes it after the detach, whatever this returns
 * (a failed open leaves none, and closing then is a no-op). */
static int seize_one(pid_t pid, pid_t tid) {
        uint64_t deadline = diag_now_ns(CLOCK_MONOTONIC) + 1000000000ULL;
        char state = '?';
        int r;

        r = diag_guard_window_open();
        if (r < 0)
                return r;
        if (diag_task_read_state(pid, tid, &state) < 0 || state == 'D' || state == 'Z' || state == 'T' ||
            state == 't')
                return -EBUSY;
        if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
                return negative_errno();
        if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
                return negative_errno();
        for (;;) {
                int st;
                pid_t w = waitpid(tid, &st, __WALL | WNOHANG);
                if (w == tid)
                        return WIFSTOPPED(st) ? ((st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP ? WSTOPSIG(st) : 0)
                                              : -ESRCH;
                if (w < 0)
                        return negative_errno();
                if (diag_now_ns(CLOCK_MONOTONIC) > deadline)
                        return -ETIMEDOUT;
                nanosleep(&(struct timespec) { .tv_nsec = 100 * 1000 }, NULL);
        }
}

int diag_inject_fork_end(struct diag_fork *f) {
        /* Killed, it is reaped by its parent (init or a subreaper) once our
         * tracer thread, which hears of its death first, has exited: no need to
         * wait for the exit itself (the unmapping of its memory takes about 10 ms
         * per GiB), unless the target is that subreaper and we reap it there. */
        if (f->child > 0 && f->child_ns > 0)
                kill_and_wait(f->child);
        else if (f->child > 0)
                (void) kill(f->child, SIGKILL);
        f->child = 0;
        free(f->frame_saved);
        f->frame_saved = NULL;
        if (f->child_ns <= 0)
                return 0;
        return reap_from_target(f, f->child_ns);
}

static int reap_from_target(struct diag_fork *f, pid_t child_ns) {
        _cleanup_free_ pid_t *tids = NULL;
        _cleanup_(diag_maps_freep) struct diag_maps *maps = NULL;
        struct diag_gadgets g = f->g;
        size_t n = 0;
        int r;

        r = diag_maps_read(f->pid, &maps);
        if (r < 0)
                return r == -ENOENT || r == -ESRCH ? 0 : r;  /* the target is gone: its reaper has the child */
        if (!g.syscall_ret && diag_inject_find_gadgets(f->pid, maps, NULL, &g) < 0)
                return -ENOENT;
        r = diag_proc_list_tids(f->pid, &tids, &n);
        if (r < 0)
                return r;
        /* The thread that forked first: it is the child's parent thread. Any
         * other can reap it too. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        struct inj ij = { .pid = f->pid, .tid = tids[i] };
                        const uint64_t args[4] = { (uint64_t) child_ns, 0, __WALL, 0 };
                        long res = 0;
                        int sig;

                        if ((pass == 0) != (tids[i] == f->tid))
                                continue;
                        sig = seize_one(f->pid, tids[i]);
                        if (sig < 0) {
                                (void) ptrace(PTRACE_DETACH, tids[i], 0, 0);
                                diag_guard_window_close();
                                continue;
                        }
                        r = inj_prepare(&ij, maps, &g);
                        if (r == 0) {
                                r = inj_run(&ij, SYS_wait4, args, STEP_MS, &res, NULL, NULL);
                                if (r < 0)
                                        ij.area_written = false;
                        }
                        if (!sig)
                                sig = ij.pending_sig;
                        inj_done(&ij);
                        (void) ptrace(PTRACE_DETACH, tids[i], 0, (void *) (long) sig);
                        diag_guard_window_close();
                        f->mended |= ij.mended;
                        if (r == 0)
                                return res == child_ns || res == -ECHILD ? 0 : (int) (res < 0 ? res : -EIO);
                        if (r != -ENOSPC)
                                return r;
                }
        return -ESRCH;
}

/* Fields of /proc/PID/stat after the command name: state, starttime, exit signal. */
static int child_stat(pid_t pid, char *state, unsigned long long *start, int *exit_signal) {
        char path[64], buf[2048];
        const char *p;
        int i = 0;

        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) <= 0 || !(p = strrchr(buf, ')')))
                return -ESRCH;
        *state = p[2];
        for (p += 2; *p; p++)
                if (*p == ' ') {
                        i++;
                        if (i == 19)            /* field 22 */
                                *start = strtoull(p + 1, NULL, 10);
                        else if (i == 35) {     /* field 38 */
                                *exit_signal = (int) strtol(p + 1, NULL, 10);
                                return 0;
                        }
                }
        return -EINVAL;
}

/* The guard: if we die before the handover's reap, it reaps what we left. Our
 * children of the target are the ones with exit signal 0 started after it. */
static _Noreturn void guard_main(pid_t pid, int rfd, int ready) {
        unsigned long long since = 0;
        uint64_t deadline, settle;
        char c, st;
        int es = -1;
        bool done = false;
        pid_t watch = 0, ours[8] = {};
        size_t nours = 0;

        /* Out of the tool's session (signals are blocked since the fork): now
         * the tool may go on. */
        (void) setsid();
        (void) !write(ready, "r", 1);
        close(ready);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
                        signal(sig, SIG_IGN);
        (void) child_stat(getpid(), &st, &since, &es);
        if (dup2(rfd, 3) < 0)
                _exit(1);
        (void) syscall(SYS_close_range, 4, ~0U, 0);
        while (read(3, &c, 1) > 0) {
                if (c == 'd')
                        done = true;
                else if (c == 'w' && read(3, &watch, sizeof watch) != (ssize_t) sizeof watch)
                        watch = 0;
                else if (c == 'o' && nours < ELEMENTSOF(ours) &&
                         read(3, &ours[nours], sizeof ours[0]) == (ssize_t) sizeof ours[0])
                        nours++;
        }
        if (done)
                _exit(0);
        /* A fork we started may still be copying page tables when we die: keep
         * looking for half a second at least, and while some child is not dead
         * yet, or the thread we left in a fork is still in it (at most 10 min). */
        settle = diag_now_ns(CLOCK_MONOTONIC) + 500000000ULL;
        deadline = settle + 2500000000ULL;
        for (;;) {
                _cleanup_free_ pid_t *tids = NULL;
                size_t n = 0, pending = 0;

                if (diag_proc_list_tids(pid, &tids, &n) < 0)
                        _exit(0);
                if (watch > 0) {
                        char path[96], sc[256];
                        snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, watch);
                        if (diag_read_small_at(AT_FDCWD, path, sc, sizeof sc) > 0 &&
                            strncmp(sc, "56 ", 3) == 0 && diag_now_ns(CLOCK_MONOTONIC) < settle + 600000000000ULL) {
                                pending++;
                                deadline = diag_now_ns(CLOCK_MONOTONIC) + 2500000000ULL;
                        }
                }
                for (size_t i = 0; i < n; i++) {
                        char path[96], list[4096], *save = NULL;
                        snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, tids[i]);
                        if (diag_read_small_at(AT_FDCWD, path, list, sizeof list) <= 0)
                                continue;
                        for (char *w = strtok_r(list, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
                                unsigned long long start = 0, nspid = 0;
                                pid_t cp;
                                char cs;
                                int sig = -1;
                                bool adopted = false;
                                if (diag_parse_pid(w, &cp) < 0 || child_stat(cp, &cs, &start, &sig) < 0)
                                        continue;
                                for (size_t o = 0; o < nours; o++)
                                        adopted |= ours[o] == cp;
                                if (!adopted && (sig != 0 || start < since))
                                        continue;
                                if (cs != 'Z') {
                                        pending++;
                                        continue;
                                }
                                if (nspid_innermost(cp, &nspid) < 0)
                                        nspid = (unsigned long long) cp;
                                {
                                        struct diag_fork f = { .pid = pid, .tid = tids[i] };
                                        (void) reap_from_target(&f, (pid_t) nspid);
                                }
                        }
                }
                if ((!pending && diag_now_ns(CLOCK_MONOTONIC) > settle) || diag_now_ns(CLOCK_MONOTONIC) > deadline)
                        _exit(0);
                nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
}

int diag_inject_guard_start(pid_t pid) {
        int p[2], q[2];
        pid_t g;
        char c;

        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        if (pipe2(q, O_CLOEXEC) < 0) {
                int r = negative_errno();
                close(p[0]);
                close(p[1]);
                return r;
        }
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        g = fork();
        if (g != 0)
                pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (g == 0) {
                close(p[1]);
                close(q[0]);
                guard_main(pid, p[0], q[1]);
        }
        close(p[0]);
        close(q[1]);
        /* Wait until it is out of our session: a kill of our process group in
         * between would take it with us. */
        if (g < 0 || read(q[0], &c, 1) != 1) {
                int r = g < 0 ? negative_errno() : -ECHILD;
                close(q[0]);
                close(p[1]);
                return r;
        }
        close(q[0]);
        return p[1];
}

void diag_inject_guard_stop(int fd, bool done, pid_t watch) {
        if (fd < 0)
                return;
        if (done)
                (void) !write(fd, "d", 1);
        else if (watch > 0)
                guard_tell(fd, 'w', watch);
        close(fd);
}

#else /* !__x86_64__ */

bool diag_xsave_component(unsigned bit, uint32_t *ret_off, uint32_t *ret_size) {
        return false;
}

int diag_inject_find_gadgets(pid_t pid, const struct diag_maps *maps, const struct diag_remote_devs *remote,
                             struct diag_gadgets *ret) {
        return -EOPNOTSUPP;
}

const char *diag_inject_fork_unsuitable(pid_t pid) {
        return "fork injection is implemented for x86_64 only";
}

int diag_inject_fork(const struct diag_capture *c, const struct diag_maps *maps, const struct diag_gadgets *g,
                     struct diag_fork *f, const char **ret_why) {
        *ret_why = "fork injection is implemented for x86_64 only";
        return -EOPNOTSUPP;
}

int diag_inject_fork_prepare_child(struct diag_fork *f) {
        return -EOPNOTSUPP;
}

int diag_inject_fork_end(struct diag_fork *f) {
        return 0;
}

int diag_inject_guard_start(pid_t pid) {
        return -EOPNOTSUPP;
}

void diag_inject_guard_stop(int fd, bool done, pid_t watch) {
}

#endif
