/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * System call counting in the kernel, with no ptrace and nothing stopped.
 *
 * Mechanism: two small BPF programs, assembled here as instruction arrays (no
 * libbpf, no compiler at build or run time), attached with BPF_RAW_TRACEPOINT_OPEN
 * to the raw tracepoints sys_enter and sys_exit. Raw tracepoints need no tracefs
 * and no tracepoint id; their arguments are the probe's own: sys_enter (regs, id),
 * sys_exit (regs, ret).
 *
 *   sys_enter  target thread? -> threads[tid % slots] = { tid, nr, now }
 *   sys_exit   target thread? -> nr and entry time from its slot (when the slot is
 *              still its own), else nr from the saved registers (orig_ax);
 *              counts[tgid, nr] += { 1, ret in [-4095, -1], now - entry, max }
 *
 * Every call that returns while counting is counted; its latency when its entry
 * was seen too (not for a call already in progress at the start).
 *
 * The target test comes first and is a handful of compares against constants
 * baked into the program (a hash lookup past INLINE_PIDS pids), so that the
 * other processes of the host pay only for the tracepoints themselves: no clock
 * read, no map access. What a target's call costs is kept to array accesses,
 * which the verifier inlines (no helper call): threads is an array indexed by
 * tid modulo its size (two threads sharing a slot at once lose one call's
 * latency, never a count), and with up to INLINE_PIDS pids the counts of system
 * calls 0..NR_SLOTS-1 are a per-CPU array indexed by (pid index, nr). The rest,
 * and the whole host, go to a per-CPU hash keyed (tgid, nr). Per-CPU: no cache
 * line is shared between CPUs; the values are summed on read.
 * With DIAG_SYSCOUNT_NO_LATENCY only sys_exit is attached: no clock reads, no
 * per-thread state.
 *
 * Why this and not the alternatives: strace -c stops the target twice per call,
 * perf trace copies every call through a ring buffer to a reader; aggregating in
 * the kernel costs the tracepoints (the system call slow path, taken by every
 * thread of the host while attached), two clock reads and a few array accesses
 * per call of a target. The figures are in docs/benchmarks.md
 * (bench/syscount-bench.py).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diag/syscount.h"
#include "diag/util.h"

#if defined(__x86_64__)
#define REGS_NR_OFFSET 120              /* struct pt_regs: orig_ax */
#elif defined(__aarch64__)
#define REGS_NR_OFFSET 280              /* struct pt_regs: syscallno (s32) */
#else
#define REGS_NR_OFFSET -1
#endif

#define INLINE_PIDS 8                   /* pids compared in the program; more: a hash */
enum { L_OUT, L_MATCH, L_NOENTRY, L_COUNT, L_HASH, L_FOUND, L_NOERR, L_FIRST_FREE };
#define MAX_INSNS 256
#define MAX_LABELS 32
#define NR_SLOTS 512                    /* system calls 0..511 of inline pids: an array, no hash */
#define VALUE_BUDGET (16u << 20)        /* bytes of per-CPU counters, all CPUs */
#define LOG_SIZE (256u << 10)

struct count_key {
        uint32_t tgid;
        uint32_t nr;                    /* s32 in the kernel's view: -1 when skipped */
};

struct count_value {
        uint64_t calls, errors, total_ns, max_ns;
};

/* One slot per tid modulo the array's size: two threads in one slot at once lose
 * the latency of a call (it is still counted), never a count. */
struct thread_value {
        uint32_t tid;
        uint32_t nr;
        uint64_t entry_ns;              /* 0: no call in progress (or already counted) */
};

struct diag_syscount {
        unsigned flags;
        unsigned ncpus;                 /* possible CPUs: per-CPU values come in this many */
        int counts_fd, threads_fd, pids_fd, lost_fd;
        int slots_fd;                   /* per-CPU array [pid index][nr], with inline pids */
        pid_t slot_pids[INLINE_PIDS];
        size_t nslot_pids;
        uint32_t thread_slots;          /* a power of two */
        int enter_prog, exit_prog;
        int enter_link, exit_link;
};

static _Thread_local char reason_buf[512];

static int sys_bpf(int cmd, union bpf_attr *attr) {
        return (int) syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* ---- a tiny assembler ---- */

struct prog {
        struct bpf_insn insn[MAX_INSNS];
        int target[MAX_INSNS];          /* label a jump goes to, -1 for none */
        int label[MAX_LABELS];          /* instruction index of each label */
        unsigned n;
        bool overflow;
};

enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP };

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm, int label) {
        if (p->n >= MAX_INSNS) {
                p->overflow = true;
                return;
        }
        p->insn[p->n] = (struct bpf_insn) { .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
        p->target[p->n++] = label;
}

static void place(struct prog *p, int label) {
        p->label[label] = (int) p->n;
}

#define MOV(p, d, s)            emit(p, BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0, -1)
#define MOVI(p, d, k)           emit(p, BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, k, -1)
#define ADDI(p, d, k)           emit(p, BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, k, -1)
#define SUB(p, d, s)            emit(p, BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0, -1)
#define RSHI(p, d, k)           emit(p, BPF_ALU64 | BPF_RSH | BPF_K, d, 0, 0, k, -1)
#define LDX(p, sz, d, s, o)     emit(p, BPF_LDX | BPF_MEM | (sz), d, s, o, 0, -1)
#define STX(p, sz, d, o, s)     emit(p, BPF_STX | BPF_MEM | (sz), d, s, o, 0, -1)
#define STI(p, sz, d, o, k)     emit(p, BPF_ST | BPF_MEM | (sz), d, 0, o, k, -1)
#define XADD(p, d, o, s)        emit(p, BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD, -1)
#define CALL(p, f)              emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, f, -1)
#define JMPI(p, op, d, k, l)    emit(p, BPF_JMP | (op) | BPF_K, d, 0, 0, k, l)
#define JMPX(p, op, d, s, l)    emit(p, BPF_JMP | (op) | BPF_X, d, s, 0, 0, l)
#define JMP32X(p, op, d, s, l)  emit(p, BPF_JMP32 | (op) | BPF_X, d, s, 0, 0, l)
#define ANDI(p, d, k)           emit(p, BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, k, -1)
#define ADD(p, d, s)            emit(p, BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0, -1)
#define JA(p, l)                emit(p, BPF_JMP | BPF_JA, 0, 0, 0, 0, l)
#define EXIT(p)                 emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0, -1)

static void ld_map(struct prog *p, uint8_t dst, int fd) {
        emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd, -1);
        emit(p, 0, 0, 0, 0, 0, -1);
}

/* dst = fp + off, for a helper's pointer argument */
static void fp_ptr(struct prog *p, uint8_t dst, int16_t off) {
        MOV(p, dst, FP);
        ADDI(p, dst, off);
}

static int resolve(struct prog *p) {
        if (p->overflow)
                return -E2BIG;
        for (unsigned i = 0; i < p->n; i++)
                if (p->target[i] >= 0) {
                        if (p->label[p->target[i]] < 0)
                                return -EINVAL;         /* a jump to a label never placed */
                        p->insn[i].off = (int16_t) (p->label[p->target[i]] - (int) i - 1);
                }
        return 0;
}

/* Jump to out unless the tgid in r8 is one of the targets (or, for the whole host,
 * unless it is our own). With inline pids and slots set, the matching pid's first
 * slot index goes to fp-72. Uses fp-32. Clobbers r0-r5. */
static void filter(struct prog *p, const struct diag_syscount *s, const pid_t *pids, size_t npids, bool slots,
                   int out, int match) {
        if (npids == 0) {
                JMPI(p, BPF_JEQ, R8, getpid(), out);
        } else if (npids <= INLINE_PIDS) {
                for (size_t i = 0; i < npids; i++) {
                        int next = L_FIRST_FREE + (int) i;
                        JMPI(p, BPF_JNE, R8, pids[i], next);
                        if (slots)
                                STI(p, BPF_DW, FP, -72, (int32_t) (i * NR_SLOTS));
                        JA(p, match);
                        place(p, next);
                }
                JA(p, out);
        } else {
                STX(p, BPF_W, FP, -32, R8);
                ld_map(p, R1, s->pids_fd);
                fp_ptr(p, R2, -32);
                CALL(p, BPF_FUNC_map_lookup_elem);
                JMPI(p, BPF_JEQ, R0, 0, out);
        }
        place(p, match);
}

/* r6 = ctx, r7 = pid_tgid, r8 = tgid */
static void prologue(struct prog *p) {
        MOV(p, R6, R1);
        CALL(p, BPF_FUNC_get_current_pid_tgid);
        MOV(p, R7, R0);
        MOV(p, R8, R0);
        RSHI(p, R8, 32);
}


/* The thread's slot: r0 = &threads[tid % slots], key at fp+off; or jump to none. */
static void thread_slot(struct prog *p, const struct diag_syscount *s, int16_t off, int none) {
        MOV(p, R1, R7);
        ANDI(p, R1, (int32_t) (s->thread_slots - 1));
        STX(p, BPF_W, FP, off, R1);
        ld_map(p, R1, s->threads_fd);
        fp_ptr(p, R2, off);
        CALL(p, BPF_FUNC_map_lookup_elem);      /* an array: inlined, no call */
        JMPI(p, BPF_JEQ, R0, 0, none);
}

static void build_enter(struct prog *p, const struct diag_syscount *s, const pid_t *pids, size_t npids) {
        prologue(p);
        filter(p, s, pids, npids, false, L_OUT, L_MATCH);
        thread_slot(p, s, -4, L_OUT);
        MOV(p, R8, R0);
        STX(p, BPF_W, R8, offsetof(struct thread_value, tid), R7);
        LDX(p, BPF_DW, R1, R6, 8);                      /* args[1]: id */
        STX(p, BPF_W, R8, offsetof(struct thread_value, nr), R1);
        CALL(p, BPF_FUNC_ktime_get_ns);
        STX(p, BPF_DW, R8, offsetof(struct thread_value, entry_ns), R0);
        place(p, L_OUT);
        MOVI(p, R0, 0);
        EXIT(p);
}

/*
 * Stack: fp-8 count key (tgid, nr), fp-16 thread slot / count slot / lost key,
 * fp-48 zero value, fp-64 ret, fp-72 first count slot of the pid. r9: the
 * latency, or -1 when unknown.
 */
static void build_exit(struct prog *p, const struct diag_syscount *s, const pid_t *pids, size_t npids) {
        bool latency = !(s->flags & DIAG_SYSCOUNT_NO_LATENCY);

        prologue(p);
        filter(p, s, pids, npids, s->slots_fd >= 0, L_OUT, L_MATCH);
        LDX(p, BPF_DW, R1, R6, 8);                      /* args[1]: ret */
        STX(p, BPF_DW, FP, -64, R1);
        STX(p, BPF_W, FP, -8, R8);
        MOVI(p, R9, -1);
        if (latency) {
                thread_slot(p, s, -16, L_NOENTRY);
                LDX(p, BPF_W, R1, R0, offsetof(struct thread_value, tid));
                JMP32X(p, BPF_JNE, R1, R7, L_NOENTRY);  /* another thread took the slot */
                LDX(p, BPF_DW, R1, R0, offsetof(struct thread_value, entry_ns));
                JMPI(p, BPF_JEQ, R1, 0, L_NOENTRY);
                LDX(p, BPF_W, R2, R0, offsetof(struct thread_value, nr));
                STX(p, BPF_W, FP, -4, R2);
                STI(p, BPF_DW, R0, offsetof(struct thread_value, entry_ns), 0); /* a stray exit will not reuse it */
                MOV(p, R9, R1);
                CALL(p, BPF_FUNC_ktime_get_ns);
                SUB(p, R0, R9);
                MOV(p, R9, R0);
                JA(p, L_COUNT);
        }
        /* the call entered before counting started (or no entry is kept): nr from regs */
        place(p, L_NOENTRY);
        fp_ptr(p, R1, -4);
        MOVI(p, R2, 4);
        LDX(p, BPF_DW, R3, R6, 0);                      /* args[0]: struct pt_regs * */
        ADDI(p, R3, REGS_NR_OFFSET);
        CALL(p, BPF_FUNC_probe_read_kernel);
        JMPI(p, BPF_JNE, R0, 0, L_OUT);

        place(p, L_COUNT);
        if (s->slots_fd >= 0) {
                LDX(p, BPF_W, R1, FP, -4);
                JMPI(p, BPF_JGT, R1, NR_SLOTS - 1, L_HASH);     /* also nr -1 */
                LDX(p, BPF_DW, R2, FP, -72);
                ADD(p, R2, R1);
                STX(p, BPF_W, FP, -16, R2);
                ld_map(p, R1, s->slots_fd);
                fp_ptr(p, R2, -16);
                CALL(p, BPF_FUNC_map_lookup_elem);      /* an array: inlined */
                JMPI(p, BPF_JNE, R0, 0, L_FOUND);
        }
        place(p, L_HASH);
        ld_map(p, R1, s->counts_fd);
        fp_ptr(p, R2, -8);
        CALL(p, BPF_FUNC_map_lookup_elem);
        JMPI(p, BPF_JNE, R0, 0, L_FOUND);
        for (int16_t off = -48; off < -16; off += 8)
                STI(p, BPF_DW, FP, off, 0);
        ld_map(p, R1, s->counts_fd);
        fp_ptr(p, R2, -8);
        fp_ptr(p, R3, -48);
        MOVI(p, R4, BPF_NOEXIST);
        CALL(p, BPF_FUNC_map_update_elem);              /* fails when another CPU was first: fine */
        ld_map(p, R1, s->counts_fd);
        fp_ptr(p, R2, -8);
        CALL(p, BPF_FUNC_map_lookup_elem);
        JMPI(p, BPF_JNE, R0, 0, L_FOUND);
        /* the table is full */
        STI(p, BPF_W, FP, -16, 0);
        ld_map(p, R1, s->lost_fd);
        fp_ptr(p, R2, -16);
        CALL(p, BPF_FUNC_map_lookup_elem);
        JMPI(p, BPF_JEQ, R0, 0, L_OUT);
        MOVI(p, R1, 1);
        XADD(p, R0, 0, R1);
        JA(p, L_OUT);

        place(p, L_FOUND);
        MOVI(p, R1, 1);
        XADD(p, R0, offsetof(struct count_value, calls), R1);
        LDX(p, BPF_DW, R2, FP, -64);
        ADDI(p, R2, 4095);                              /* ret in [-4095, -1] <=> ret + 4095 in [0, 4094] */
        JMPI(p, BPF_JGT, R2, 4094, L_NOERR);
        XADD(p, R0, offsetof(struct count_value, errors), R1);
        place(p, L_NOERR);
        if (latency) {
                JMPI(p, BPF_JEQ, R9, -1, L_OUT);
                XADD(p, R0, offsetof(struct count_value, total_ns), R9);
                LDX(p, BPF_DW, R1, R0, offsetof(struct count_value, max_ns));
                JMPX(p, BPF_JGE, R1, R9, L_OUT);
                STX(p, BPF_DW, R0, offsetof(struct count_value, max_ns), R9);
        }
        place(p, L_OUT);
        MOVI(p, R0, 0);
        EXIT(p);
}

/* ---- loading ---- */

static int map_create(enum bpf_map_type type, const char *name, uint32_t key_size, uint32_t value_size,
                      uint32_t max_entries) {
        union bpf_attr a = {
                .map_type = type, .key_size = key_size, .value_size = value_size, .max_entries = max_entries,
                .map_flags = BPF_F_NO_PREALLOC * (type == BPF_MAP_TYPE_HASH),
        };
        int fd;

        snprintf(a.map_name, sizeof a.map_name, "%s", name);
        fd = sys_bpf(BPF_MAP_CREATE, &a);
        return fd < 0 ? negative_errno() : fd;
}

/* Load; on failure the verifier's first lines go to reason_buf. */
static int prog_load(struct prog *p, const char *name) {
        union bpf_attr a = {
                .prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT,
                .insns = (uintptr_t) p->insn,
                .insn_cnt = p->n,
                .license = (uintptr_t) "GPL",
        };
        _cleanup_free_ char *log = NULL;
        int fd, r;

        r = resolve(p);
        if (r < 0) {
                snprintf(reason_buf, sizeof reason_buf, "BPF program %s: %s", name,
                         r == -E2BIG ? "too long" : "a jump to nowhere");
                return r;
        }
        snprintf(a.prog_name, sizeof a.prog_name, "%s", name);
        fd = sys_bpf(BPF_PROG_LOAD, &a);
        if (fd >= 0)
                return fd;
        r = negative_errno();
        if (r == -EPERM || r == -ENOSYS)
                return r;
        /* again with the verifier's log, to say why */
        log = calloc(1, LOG_SIZE);
        if (log) {
                a.log_buf = (uintptr_t) log;
                a.log_size = LOG_SIZE;
                a.log_level = 1;
                fd = sys_bpf(BPF_PROG_LOAD, &a);
                if (fd >= 0)
                        return fd;
                /* the verifier's verdict is the last lines before its statistics
                 * ("processed N insns"): keep two, on one line */
                char *end = strstr(log, "\nprocessed ");
                const char *from = log;
                unsigned nl = 0;
                if (end)
                        *end = 0;
                diag_strip(log);
                for (size_t i = strlen(log); i > 0; i--)
                        if (log[i - 1] == '\n' && ++nl == 2) {
                                from = log + i;
                                break;
                        }
                snprintf(reason_buf, sizeof reason_buf, "the kernel refused BPF program %s: %.*s", name,
                         (int) (sizeof reason_buf - 64), from);
                for (char *c = reason_buf; *c; c++)
                        if (*c == '\n')
                                *c = ' ';
                /* the verifier says EACCES for a refused access: not a permission problem */
                r = -EINVAL;
        } else
                snprintf(reason_buf, sizeof reason_buf, "the kernel refused BPF program %s: %s", name, strerror(-r));
        return r;
}

static int attach(int prog, const char *tp) {
        union bpf_attr a = { .raw_tracepoint = { .name = (uintptr_t) tp, .prog_fd = (uint32_t) prog } };
        int fd = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
        return fd < 0 ? negative_errno() : fd;
}

/* Possible CPUs ("0-3,5"), as the kernel lays out per-CPU values. */
static unsigned possible_cpus(void) {
        char buf[256], *p = buf;
        unsigned n = 0;

        if (diag_read_small_at(AT_FDCWD, "/sys/devices/system/cpu/possible", buf, sizeof buf) <= 0)
                return 0;
        while (*p >= '0' && *p <= '9') {
                unsigned long a = strtoul(p, &p, 10), b = a;
                if (*p == '-')
                        b = strtoul(p + 1, &p, 10);
                if (b >= a)
                        n += (unsigned) (b - a + 1);
                if (*p != ',')
                        break;
                p++;
        }
        return n;
}

static bool have_cap(unsigned cap) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0 || cap >= 64)
                return false;
        return d[cap / 32].effective & (1u << (cap % 32));
}

static void explain(int r, const char *what) {
        char sysctl[16] = "";

        if (reason_buf[0])
                return;
        if (r == -EPERM || r == -EACCES) {
                (void) diag_read_small_at(AT_FDCWD, "/proc/sys/kernel/unprivileged_bpf_disabled", sysctl, sizeof sysctl);
                diag_strip(sysctl);
                if (!have_cap(CAP_SYS_ADMIN) && !(have_cap(39 /* CAP_BPF */) && have_cap(38 /* CAP_PERFMON */)))
                        snprintf(reason_buf, sizeof reason_buf,
                                 "not permitted: BPF tracing needs root, or CAP_BPF and CAP_PERFMON%s%s%s",
                                 sysctl[0] ? " (kernel.unprivileged_bpf_disabled = " : "", sysctl,
                                 sysctl[0] ? ")" : "");
                else
                        snprintf(reason_buf, sizeof reason_buf,
                                 "not permitted to %s although privileged (kernel lockdown, an LSM policy, or RLIMIT_MEMLOCK on kernels before 5.11)",
                                 what);
        } else if (r == -ENOSYS)
                snprintf(reason_buf, sizeof reason_buf, "this kernel has no bpf() system call (CONFIG_BPF_SYSCALL)");
        else if (r == -ENOENT && strncmp(what, "attach", 6) == 0)
                snprintf(reason_buf, sizeof reason_buf, "this kernel has no raw tracepoints sys_enter/sys_exit");
        else
                snprintf(reason_buf, sizeof reason_buf, "cannot %s: %s", what, strerror(-r));
}

static int make_map(enum bpf_map_type type, const char *name, uint32_t key_size, uint32_t value_size,
                    uint32_t max_entries, int *ret_fd) {
        int r = map_create(type, name, key_size, value_size, max_entries);
        if (r < 0) {
                explain(r, "create BPF maps");
                return r;
        }
        *ret_fd = r;
        return 0;
}

static int load_attach(const struct diag_syscount *s, const pid_t *pids, size_t npids,
                       void (*build)(struct prog *, const struct diag_syscount *, const pid_t *, size_t),
                       const char *name, const char *tracepoint, int *ret_prog, int *ret_link) {
        _cleanup_free_ struct prog *p = calloc(1, sizeof *p);
        int r;

        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < MAX_LABELS; i++)
                p->label[i] = -1;
        build(p, s, pids, npids);
        r = prog_load(p, name);
        if (r < 0) {
                explain(r, "load BPF programs");
                return r;
        }
        *ret_prog = r;
        r = attach(r, tracepoint);
        if (r < 0) {
                explain(r, "attach to the raw tracepoints");
                return r;
        }
        *ret_link = r;
        return 0;
}

/* Maps, programs, then the attachment; reason_buf says why when it fails. */
static int setup(struct diag_syscount *s, const pid_t *pids, size_t npids) {
        bool latency = !(s->flags & DIAG_SYSCOUNT_NO_LATENCY);
        uint32_t want, cap;
        int r;

        /* room for every system call of every target, within a memory budget */
        want = npids ? (uint32_t) MIN(npids * 512, (size_t) 65536) : 65536;
        cap = VALUE_BUDGET / (s->ncpus * (uint32_t) sizeof(struct count_value));
        r = make_map(BPF_MAP_TYPE_PERCPU_HASH, "diag_sc_counts", sizeof(struct count_key), sizeof(struct count_value),
                     MAX(MIN(want, cap), 1024u), &s->counts_fd);
        if (r < 0)
                return r;
        r = make_map(BPF_MAP_TYPE_PERCPU_ARRAY, "diag_sc_lost", sizeof(uint32_t), sizeof(uint64_t), 1, &s->lost_fd);
        if (r < 0)
                return r;
        if (latency) {
                s->thread_slots = npids ? 1u << 16 : 1u << 18;
                r = make_map(BPF_MAP_TYPE_ARRAY, "diag_sc_threads", sizeof(uint32_t), sizeof(struct thread_value),
                             s->thread_slots, &s->threads_fd);
                if (r < 0)
                        return r;
        }
        if (npids > 0 && npids <= INLINE_PIDS &&
            (uint64_t) npids * NR_SLOTS * s->ncpus * sizeof(struct count_value) <= VALUE_BUDGET) {
                r = make_map(BPF_MAP_TYPE_PERCPU_ARRAY, "diag_sc_slots", sizeof(uint32_t), sizeof(struct count_value),
                             (uint32_t) (npids * NR_SLOTS), &s->slots_fd);
                if (r < 0)
                        return r;
                memcpy(s->slot_pids, pids, npids * sizeof *pids);
                s->nslot_pids = npids;
        }
        if (npids > INLINE_PIDS) {
                r = make_map(BPF_MAP_TYPE_HASH, "diag_sc_pids", sizeof(uint32_t), sizeof(uint8_t), (uint32_t) npids,
                             &s->pids_fd);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < npids; i++) {
                        uint32_t k = (uint32_t) pids[i];
                        uint8_t v = 1;
                        union bpf_attr a = { .map_fd = (uint32_t) s->pids_fd, .key = (uintptr_t) &k,
                                             .value = (uintptr_t) &v, .flags = BPF_ANY };
                        if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a) < 0) {
                                r = negative_errno();
                                explain(r, "fill the BPF pid table");
                                return r;
                        }
                }
        }

        /* exit first: a call whose entry was seen is always counted */
        r = load_attach(s, pids, npids, build_exit, "diag_sc_exit", "sys_exit", &s->exit_prog, &s->exit_link);
        if (r < 0 || !latency)
                return r;
        return load_attach(s, pids, npids, build_enter, "diag_sc_enter", "sys_enter", &s->enter_prog, &s->enter_link);
}

int diag_syscount_start_flags(const pid_t *pids, size_t npids, unsigned flags, struct diag_syscount **ret,
                              const char **reason) {
        _cleanup_(diag_syscount_freep) struct diag_syscount *s = NULL;
        int r;

        reason_buf[0] = 0;
        if (reason)
                *reason = NULL;
        if (REGS_NR_OFFSET < 0) {
                if (reason)
                        *reason = "system call counting is not implemented for this architecture";
                return -EOPNOTSUPP;
        }
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        *s = (struct diag_syscount) {
                .flags = flags, .counts_fd = -1, .threads_fd = -1, .pids_fd = -1, .lost_fd = -1, .slots_fd = -1,
                .enter_prog = -1, .exit_prog = -1, .enter_link = -1, .exit_link = -1,
        };
        s->ncpus = possible_cpus();
        if (s->ncpus == 0)
                s->ncpus = (unsigned) MAX(sysconf(_SC_NPROCESSORS_CONF), 1L);
        r = setup(s, pids, npids);
        if (r < 0) {
                if (reason)
                        *reason = reason_buf[0] ? reason_buf : NULL;
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int diag_syscount_start(const pid_t *pids, size_t npids, struct diag_syscount **ret, const char **reason) {
        return diag_syscount_start_flags(pids, npids, 0, ret, reason);
}

static void close_fd(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

void diag_syscount_stop(struct diag_syscount *s) {
        if (!s)
                return;
        /* detaching is synchronous: no program runs after these */
        close_fd(&s->enter_link);
        close_fd(&s->exit_link);
}

/* Sum one key's per-CPU values into a new entry (none when nothing returned). */
static int add_entry(struct diag_syscount_entry **out, size_t *alloc, size_t *nout, pid_t pid, long nr,
                     const struct count_value *vals, unsigned ncpus) {
        struct diag_syscount_entry e = { .pid = pid, .nr = nr };

        for (unsigned c = 0; c < ncpus; c++) {
                e.calls += vals[c].calls;
                e.errors += vals[c].errors;
                e.total_ns += vals[c].total_ns;
                e.max_ns = MAX(e.max_ns, vals[c].max_ns);
        }
        if (!e.calls)
                return 0;
        if (DIAG_GROW(*out, *alloc, *nout + 1) < 0)
                return -ENOMEM;
        (*out)[(*nout)++] = e;
        return 0;
}

static int lookup(int fd, const void *key, void *value) {
        union bpf_attr a = { .map_fd = (uint32_t) fd, .key = (uintptr_t) key, .value = (uintptr_t) value };
        return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0 ? negative_errno() : 0;
}

int diag_syscount_read(struct diag_syscount *s, struct diag_syscount_entry **ret, size_t *n) {
        _cleanup_free_ struct diag_syscount_entry *out = NULL;
        _cleanup_free_ struct count_value *vals = NULL;
        struct count_key key, next;
        size_t nout = 0, alloc = 0;
        void *prev = NULL;
        int r;

        *ret = NULL;
        *n = 0;
        vals = calloc(s->ncpus, sizeof *vals);
        if (!vals)
                return -ENOMEM;
        for (uint32_t i = 0; s->slots_fd >= 0 && i < s->nslot_pids * NR_SLOTS; i++) {
                r = lookup(s->slots_fd, &i, vals);
                if (r < 0)
                        return r;
                r = add_entry(&out, &alloc, &nout, s->slot_pids[i / NR_SLOTS], (long) (i % NR_SLOTS), vals, s->ncpus);
                if (r < 0)
                        return r;
        }
        for (;;) {
                union bpf_attr a = { .map_fd = (uint32_t) s->counts_fd, .key = (uintptr_t) prev,
                                     .next_key = (uintptr_t) &next };

                if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &a) < 0) {
                        if (errno == ENOENT)
                                break;
                        return negative_errno();
                }
                key = next;
                prev = &key;
                r = lookup(s->counts_fd, &key, vals);
                if (r == -ENOENT)               /* cannot happen: nothing deletes */
                        continue;
                if (r < 0)
                        return r;
                r = add_entry(&out, &alloc, &nout, (pid_t) key.tgid, (int32_t) key.nr, vals, s->ncpus);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(out);
        *n = nout;
        return 0;
}

uint64_t diag_syscount_lost(const struct diag_syscount *s) {
        _cleanup_free_ uint64_t *vals = NULL;
        uint32_t key = 0;
        uint64_t sum = 0;

        if (!s || s->lost_fd < 0)
                return 0;
        vals = calloc(s->ncpus, sizeof *vals);
        if (!vals || lookup(s->lost_fd, &key, vals) < 0)
                return 0;
        for (unsigned c = 0; c < s->ncpus; c++)
                sum += vals[c];
        return sum;
}

struct diag_syscount *diag_syscount_free(struct diag_syscount *s) {
        if (!s)
                return NULL;
        diag_syscount_stop(s);
        close_fd(&s->enter_prog);
        close_fd(&s->exit_prog);
        close_fd(&s->counts_fd);
        close_fd(&s->threads_fd);
        close_fd(&s->pids_fd);
        close_fd(&s->lost_fd);
        close_fd(&s->slots_fd);
        free(s);
        return NULL;
}

const char *diag_syscount_mechanism(const struct diag_syscount *s) {
        return "bpf raw_tracepoint";
}
