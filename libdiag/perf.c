/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "diag/perf.h"
#include "diag/proc.h"
#include "diag/util.h"
#include "unwind-internal.h"

/*
 * The kernel refuses to mmap an inherited event that follows a task on every CPU
 * (inherit with cpu -1), so a named process gets one event per (thread, online
 * CPU), inherit set, and each CPU one ring: the first event opened on a CPU owns
 * the mmap, the others write into it (PERF_EVENT_IOC_SET_OUTPUT).
 */

#define DEFAULT_FREQ 99
#define DEFAULT_STACK 16384
#define RING_BYTES_MAX (4u << 20)       /* data bytes per CPU ring */
#define RING_BYTES_MIN (64u << 10)
/* A ring holds this long of samples at the full rate: the reader's first sample of a
 * process waits for its maps and debug info (tens to hundreds of ms, more for a
 * large binary, with -a for every new process), and nothing is lost meanwhile. */
#define RING_HOLD_MS 1000

#if defined(__x86_64__)
/* perf_regs order: ax bx cx dx si di bp sp ip flags cs ss ds es fs gs r8..r15 */
#define USER_REGS_MASK 0xff01ffULL      /* ax..ip and r8..r15: 17 registers */
/* The n-th register present in the sample, as a DWARF register number (16 = rip). */
static const uint8_t perf_to_dwarf[17] = { 0, 3, 2, 1, 4, 5, 6, 7, 16, 8, 9, 10, 11, 12, 13, 14, 15 };
#define NDWARF 17
#define DWARF_SP 7
#define DWARF_PC 16
#define DWARF_FP 6
#elif defined(__aarch64__)
/* perf_regs order: x0..x30 sp pc; DWARF: x0..x30, sp = 31, pc passed apart */
#define USER_REGS_MASK ((1ULL << 33) - 1)
#define NDWARF 32
#define DWARF_SP 31
#define DWARF_PC 32             /* not a DWARF register: kept in pc only */
#define DWARF_FP 29
#else
#define USER_REGS_MASK 0ULL
#define NDWARF 0
#endif

struct ring {
        int fd;
        void *base;
        size_t mmap_len, data_len;      /* data_len: a power of two */
        uint8_t *copy;                  /* a record that crosses the end of the ring */
        size_t copy_len;
};

struct diag_perf {
        int *fds;
        size_t nfds, allocfds;
        struct ring *rings;             /* one per online CPU */
        size_t nrings;
        uint64_t lost;                  /* LOST records' sum plus threads that vanished */
        uint64_t kchain[PERF_MAX_STACK_DEPTH];
        unsigned stack_bytes;
        size_t ring_bytes;              /* wanted; a smaller one when over the mlock limit */
};

static int perf_event_open(struct perf_event_attr *a, pid_t pid, int cpu, int group, unsigned long flags) {
        return (int) syscall(SYS_perf_event_open, a, pid, cpu, group, flags);
}

static int paranoid_level(void) {
        char buf[32];
        long long v;

        if (diag_read_small_at(AT_FDCWD, "/proc/sys/kernel/perf_event_paranoid", buf, sizeof buf) <= 0 ||
            diag_parse_ll(diag_strip(buf), 10, -10, 10, &v) < 0)
                return 2;
        return (int) v;
}

static const char *open_reason(int err) {
        static char buf[160];

        switch (err) {
        case -EACCES:
        case -EPERM:
                snprintf(buf, sizeof buf,
                         "perf_event_open: not permitted (kernel.perf_event_paranoid=%d; needs root or CAP_PERFMON)",
                         paranoid_level());
                return buf;
        case -ENOENT:
        case -ENODEV:
        case -EOPNOTSUPP:
                return "perf_event_open: the event is not supported on this kernel or machine";
        case -ENOSYS:
                return "perf_event_open: not available (kernel built without perf events)";
        case -EMFILE:
        case -ENFILE:
                return "perf_event_open: out of file descriptors (one per thread and CPU)";
        case -ESRCH:
                return "perf_event_open: no such process";
        default:
                snprintf(buf, sizeof buf, "perf_event_open: %s", strerror(-err));
                return buf;
        }
}

/* The online CPUs, from "0-3,5,7-8". */
static int online_cpus(int **ret, size_t *ret_n) {
        char buf[1024];
        _cleanup_free_ int *cpus = NULL;
        size_t n = 0, alloc = 0;
        char *save = NULL;

        if (diag_read_small_at(AT_FDCWD, "/sys/devices/system/cpu/online", buf, sizeof buf) <= 0) {
                long c = sysconf(_SC_NPROCESSORS_ONLN);
                snprintf(buf, sizeof buf, "0-%ld", c > 0 ? c - 1 : 0);
        }
        for (char *tok = strtok_r(diag_strip(buf), ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *dash = strchr(tok, '-');
                long long lo, hi;

                if (dash)
                        *dash = 0;
                if (diag_parse_ll(tok, 10, 0, 1 << 20, &lo) < 0 ||
                    diag_parse_ll(dash ? dash + 1 : tok, 10, lo, 1 << 20, &hi) < 0)
                        return -EINVAL;
                for (long long c = lo; c <= hi; c++) {
                        if (DIAG_GROW(cpus, alloc, n + 1) < 0)
                                return -ENOMEM;
                        cpus[n++] = (int) c;
                }
        }
        if (n == 0)
                return -EINVAL;
        *ret = TAKE_PTR(cpus);
        *ret_n = n;
        return 0;
}

static void attr_init(struct perf_event_attr *a, const struct diag_perf_opts *o, bool cycles,
                      bool inherit, unsigned stack_bytes, size_t ring_bytes) {
        memset(a, 0, sizeof *a);
        a->size = sizeof *a;
        if (cycles) {
                a->type = PERF_TYPE_HARDWARE;
                a->config = PERF_COUNT_HW_CPU_CYCLES;
        } else {
                a->type = PERF_TYPE_SOFTWARE;
                a->config = PERF_COUNT_SW_CPU_CLOCK;
        }
        a->freq = 1;
        a->sample_freq = o->freq_hz ? o->freq_hz : DEFAULT_FREQ;
        a->sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU |
                         PERF_SAMPLE_CALLCHAIN;
        if (USER_REGS_MASK) {
                a->sample_type |= PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
                a->sample_regs_user = USER_REGS_MASK;
                a->sample_stack_user = stack_bytes;
        }
        a->exclude_callchain_user = 1;  /* the user part is unwound from the stack copy */
        a->exclude_kernel = !o->kernel_callchain;
        a->exclude_hv = 1;
        a->exclude_guest = 1;
        a->inherit = inherit;
        a->comm = 1;
        a->comm_exec = 1;
        a->task = 1;
        a->mmap = 1;
        a->sample_id_all = 1;
        a->use_clockid = 1;
        a->clockid = CLOCK_MONOTONIC;
        a->disabled = 1;
        /* wake poll() when a quarter of the ring is used (the kernel caps it for a
         * smaller ring); the caller polls at least every 100 ms anyway */
        a->watermark = 1;
        a->wakeup_watermark = (uint32_t) (ring_bytes / 4);
}

static int push_fd(struct diag_perf *p, int fd) {
        if (DIAG_GROW(p->fds, p->allocfds, p->nfds + 1) < 0) {
                close(fd);
                return -ENOMEM;
        }
        p->fds[p->nfds++] = fd;
        return 0;
}

/* The ring of a CPU: the first event there gets the mmap, later ones write into it. */
static int attach_ring(struct ring *r, int fd, size_t ring_bytes) {
        long page = sysconf(_SC_PAGESIZE);

        if (r->fd >= 0)
                return ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, r->fd) < 0 ? negative_errno() : 0;
        for (size_t pages = ring_bytes / (size_t) page; pages >= RING_BYTES_MIN / (size_t) page; pages /= 2) {
                size_t len = (pages + 1) * (size_t) page;
                void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (m == MAP_FAILED) {
                        if (errno == EPERM || errno == ENOMEM)
                                continue;       /* over perf_event_mlock_kb: a smaller ring */
                        return negative_errno();
                }
                r->fd = fd;
                r->base = m;
                r->mmap_len = len;
                r->data_len = pages * (size_t) page;
                return 0;
        }
        return -ENOMEM;
}

/* Events for one thread (tid -1: every task) on every CPU. 1 opened, 0 the thread
 * is gone (counted as lost), or negative errno with *reason. */
static int open_thread(struct diag_perf *p, const struct diag_perf_opts *opts, bool *cycles, pid_t tid,
                       const int *cpus, size_t ncpus, const char **reason) {
        int r;

        for (size_t c = 0; c < ncpus; c++) {
                struct perf_event_attr a;
                int fd;

                attr_init(&a, opts, *cycles, tid >= 0, p->stack_bytes, p->ring_bytes);
                fd = perf_event_open(&a, tid, cpus[c], -1, PERF_FLAG_FD_CLOEXEC);
                if (fd < 0 && *cycles && (errno == ENOENT || errno == ENODEV || errno == EOPNOTSUPP)) {
                        *cycles = false;        /* no hardware PMU (a VM): cpu-clock */
                        attr_init(&a, opts, *cycles, tid >= 0, p->stack_bytes, p->ring_bytes);
                        fd = perf_event_open(&a, tid, cpus[c], -1, PERF_FLAG_FD_CLOEXEC);
                }
                if (fd < 0) {
                        if (errno == ESRCH) {
                                p->lost++;      /* the thread ended meanwhile */
                                return 0;
                        }
                        r = negative_errno();
                        *reason = open_reason(r);
                        return r;
                }
                if ((r = push_fd(p, fd)) < 0)
                        return r;
                if ((r = attach_ring(&p->rings[c], fd, p->ring_bytes)) < 0) {
                        *reason = r == -ENOMEM ? "perf ring buffer: over the locked-memory limit"
                                               : "perf ring buffer: cannot map";
                        return r;
                }
        }
        return 1;
}

int diag_perf_open(const struct diag_perf_opts *opts, struct diag_perf **ret, const char **reason) {
        _cleanup_(diag_perf_freep) struct diag_perf *p = NULL;
        _cleanup_free_ int *cpus = NULL;
        size_t ncpus = 0, opened = 0;
        bool cycles = opts->cycles;
        unsigned stack = opts->stack_bytes ? opts->stack_bytes : DEFAULT_STACK;
        int r;

        *reason = NULL;
        stack = (stack + 7) & ~7u;
        if (stack > 65528)
                stack = 65528;          /* the kernel's limit (a u16 record size) */
        if (!opts->all && opts->npids == 0) {
                *reason = "no process to sample";
                return -EINVAL;
        }
        r = online_cpus(&cpus, &ncpus);
        if (r < 0) {
                *reason = "cannot read the online CPUs";
                return r;
        }
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->stack_bytes = stack;
        /* One CPU runs one sampled thread at a time: a ring fills at about freq_hz
         * records of the stack copy plus a few hundred bytes. Sized to hold
         * RING_HOLD_MS of that, a power of two. */
        {
                uint64_t want = (uint64_t) (opts->freq_hz ? opts->freq_hz : DEFAULT_FREQ) * (stack + 512) *
                                RING_HOLD_MS / 1000;
                p->ring_bytes = RING_BYTES_MIN;
                while (p->ring_bytes < want && p->ring_bytes < RING_BYTES_MAX)
                        p->ring_bytes *= 2;
        }
        p->rings = calloc(ncpus, sizeof *p->rings);
        if (!p->rings)
                return -ENOMEM;
        p->nrings = ncpus;
        for (size_t c = 0; c < ncpus; c++)
                p->rings[c].fd = -1;

        for (size_t i = 0; i < (opts->all ? 1 : opts->npids); i++) {
                _cleanup_free_ pid_t *done = NULL;
                size_t ndone = 0, allocdone = 0;

                if (opts->all) {
                        r = open_thread(p, opts, &cycles, -1, cpus, ncpus, reason);
                        if (r < 0)
                                return r;
                        opened += (size_t) r;
                        continue;
                }
                /* A thread started after the listing by a thread not yet opened is not
                 * inherited: list again until no new thread shows (a few rounds). */
                for (int round = 0; round < 4; round++) {
                        _cleanup_free_ pid_t *tids = NULL;
                        size_t ntids = 0, fresh = 0;

                        if (diag_proc_list_tids(opts->pids[i], &tids, &ntids) < 0) {
                                if (round == 0)
                                        p->lost++;      /* gone before we looked */
                                break;
                        }
                        for (size_t t = 0; t < ntids; t++) {
                                bool seen = false;

                                for (size_t k = 0; k < ndone && !seen; k++)
                                        seen = done[k] == tids[t];
                                if (seen)
                                        continue;
                                if (DIAG_GROW(done, allocdone, ndone + 1) < 0)
                                        return -ENOMEM;
                                done[ndone++] = tids[t];
                                fresh++;
                                r = open_thread(p, opts, &cycles, tids[t], cpus, ncpus, reason);
                                if (r < 0)
                                        return r;
                                opened += (size_t) r;
                        }
                        if (fresh == 0)
                                break;
                }
        }
        if (opened == 0) {
                *reason = "no such process (every thread ended before sampling started)";
                return -ESRCH;
        }
        for (size_t i = 0; i < p->nfds; i++)
                (void) ioctl(p->fds[i], PERF_EVENT_IOC_ENABLE, 0);
        *ret = TAKE_PTR(p);
        return 0;
}

struct diag_perf *diag_perf_free(struct diag_perf *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->nrings; i++) {
                if (p->rings[i].base)
                        munmap(p->rings[i].base, p->rings[i].mmap_len);
                free(p->rings[i].copy);
        }
        free(p->rings);
        for (size_t i = 0; i < p->nfds; i++)
                close(p->fds[i]);
        free(p->fds);
        free(p);
        return NULL;
}

void diag_perf_disable(struct diag_perf *p) {
        /* on an inherited event this disables its children too */
        for (size_t i = 0; i < p->nfds; i++)
                (void) ioctl(p->fds[i], PERF_EVENT_IOC_DISABLE, 0);
}

uint64_t diag_perf_lost(const struct diag_perf *p) {
        return p->lost;
}

enum diag_arch diag_perf_arch(const struct diag_perf *p) {
        (void) p;
        return diag_arch_native();
}

/* ---- records ---- */

struct cursor {
        const uint8_t *p, *end;
        bool bad;
};

static uint64_t take_u64(struct cursor *c) {
        uint64_t v;

        if (c->bad || (size_t) (c->end - c->p) < sizeof v) {
                c->bad = true;
                return 0;
        }
        memcpy(&v, c->p, sizeof v);
        c->p += sizeof v;
        return v;
}

static void take_u32x2(struct cursor *c, uint32_t *a, uint32_t *b) {
        uint64_t v = take_u64(c);
        /* two u32 fields in memory order */
        uint32_t w[2];
        memcpy(w, &v, sizeof w);
        *a = w[0];
        *b = w[1];
}

/* The sample_id trailer of a non-sample record: pid, tid, time, cpu (sample_type order). */
static void take_sample_id(const struct perf_event_header *h, struct diag_perf_event *e) {
        struct cursor c = { .p = (const uint8_t *) h + h->size - 24, .end = (const uint8_t *) h + h->size };
        uint32_t pid, tid, cpu, res;

        if (h->size < sizeof *h + 24)
                return;
        take_u32x2(&c, &pid, &tid);
        e->time_ns = take_u64(&c);
        take_u32x2(&c, &cpu, &res);
        e->cpu = cpu;
        if (!e->pid)
                e->pid = (pid_t) pid, e->tid = (pid_t) tid;
}

/* A NUL-terminated string inside the record, before the 24-byte trailer. */
static const char *take_string(struct cursor *c, const struct perf_event_header *h) {
        const char *s = (const char *) c->p;
        const uint8_t *lim = (const uint8_t *) h + h->size - 24;

        if (c->bad || c->p >= lim || !memchr(c->p, 0, (size_t) (lim - c->p)))
                return NULL;
        return s;
}

static int parse_sample(struct diag_perf *p, const struct perf_event_header *h, struct diag_perf_event *e) {
        struct cursor c = { .p = (const uint8_t *) (h + 1), .end = (const uint8_t *) h + h->size };
        uint32_t pid, tid, cpu, res;
        uint64_t nr, abi;

        e->kind = DIAG_PERF_SAMPLE;
        e->ip = take_u64(&c);
        take_u32x2(&c, &pid, &tid);
        e->pid = (pid_t) pid;
        e->tid = (pid_t) tid;
        e->time_ns = take_u64(&c);
        take_u32x2(&c, &cpu, &res);
        e->cpu = cpu;
        e->user = (h->misc & PERF_RECORD_MISC_CPUMODE_MASK) == PERF_RECORD_MISC_USER;
        nr = take_u64(&c);
        if (c.bad || nr > (size_t) (c.end - c.p) / 8)
                return -EBADMSG;
        e->nkernel = 0;
        for (uint64_t i = 0; i < nr; i++) {
                uint64_t ip = take_u64(&c);
                if (ip >= (uint64_t) PERF_CONTEXT_MAX)
                        continue;       /* a PERF_CONTEXT_* marker */
                if (e->nkernel < ELEMENTSOF(p->kchain))
                        p->kchain[e->nkernel++] = ip;
        }
        e->kernel_chain = p->kchain;
        if (!USER_REGS_MASK)
                return c.bad ? -EBADMSG : 0;
        abi = take_u64(&c);
        e->regs.tid = e->tid;
        e->regs.syscall_nr = -1;
        if (abi != PERF_SAMPLE_REGS_ABI_NONE) {
                uint64_t v[64];
                unsigned n = (unsigned) __builtin_popcountll(USER_REGS_MASK);
                for (unsigned i = 0; i < n; i++)
                        v[i] = take_u64(&c);
#if defined(__x86_64__)
                for (unsigned i = 0; i < n; i++)
                        e->regs.dwarf_regs[perf_to_dwarf[i]] = v[i];
                e->regs.pc = e->regs.dwarf_regs[DWARF_PC];
#else
                for (unsigned i = 0; i < NDWARF; i++)
                        e->regs.dwarf_regs[i] = v[i];
                e->regs.pc = v[n - 1];
#endif
                e->regs.ndwarf_regs = NDWARF;
                e->regs.sp = e->regs.dwarf_regs[DWARF_SP];
                e->regs.fp = e->regs.dwarf_regs[DWARF_FP];
        } else
                e->regs.err = -ENODATA;         /* a kernel thread: no user registers */
        {
                uint64_t size = take_u64(&c), dyn;
                const uint8_t *data = c.p;

                if (size) {
                        if (c.bad || size > (size_t) (c.end - c.p))
                                return -EBADMSG;
                        c.p += size;
                        dyn = take_u64(&c);
                        e->regs.stack = (uint8_t *) data;
                        e->regs.stack_len = (size_t) MIN(dyn, size);
                        e->regs.stack_start = e->regs.sp;
                }
        }
        return c.bad ? -EBADMSG : 0;
}

static int parse_record(struct diag_perf *p, const struct perf_event_header *h, struct diag_perf_event *e) {
        struct cursor c = { .p = (const uint8_t *) (h + 1), .end = (const uint8_t *) h + h->size };
        uint32_t a, b;

        memset(e, 0, sizeof *e);
        switch (h->type) {
        case PERF_RECORD_SAMPLE:
                return parse_sample(p, h, e);
        case PERF_RECORD_COMM:
                e->kind = DIAG_PERF_COMM;
                take_u32x2(&c, &a, &b);
                e->pid = (pid_t) a;
                e->tid = (pid_t) b;
                e->comm = take_string(&c, h);
                e->exec = h->misc & PERF_RECORD_MISC_COMM_EXEC;
                break;
        case PERF_RECORD_FORK:
        case PERF_RECORD_EXIT:
                e->kind = h->type == PERF_RECORD_FORK ? DIAG_PERF_FORK : DIAG_PERF_EXIT;
                take_u32x2(&c, &a, &b);
                e->pid = (pid_t) a;
                e->ppid = (pid_t) b;
                take_u32x2(&c, &a, &b);
                e->tid = (pid_t) a;
                e->ptid = (pid_t) b;
                e->time_ns = take_u64(&c);
                break;
        case PERF_RECORD_MMAP:
        case PERF_RECORD_MMAP2:
                e->kind = DIAG_PERF_MMAP;
                take_u32x2(&c, &a, &b);
                e->pid = (pid_t) a;
                e->tid = (pid_t) b;
                e->addr = take_u64(&c);
                e->len = take_u64(&c);
                e->pgoff = take_u64(&c);
                if (h->type == PERF_RECORD_MMAP2) {
                        /* maj, min, ino, ino_generation (or build-id), prot, flags */
                        for (int i = 0; i < 4; i++)
                                (void) take_u64(&c);
                }
                e->filename = take_string(&c, h);
                break;
        case PERF_RECORD_LOST:
                e->kind = DIAG_PERF_LOST;
                (void) take_u64(&c);    /* id */
                e->lost = take_u64(&c);
                break;
        case PERF_RECORD_LOST_SAMPLES:
                e->kind = DIAG_PERF_LOST;
                e->lost = take_u64(&c);
                break;
        default:
                return 1;               /* not one we hand on */
        }
        if (c.bad)
                return -EBADMSG;
        take_sample_id(h, e);
        if (e->kind == DIAG_PERF_LOST)
                p->lost += e->lost;
        return 0;
}

/* Hand every complete record in r to cb, oldest first, then free their space. */
static int drain_ring(struct diag_perf *p, struct ring *r,
                      int (*cb)(void *userdata, const struct diag_perf_event *e), void *userdata) {
        struct perf_event_mmap_page *meta = r->base;
        const uint8_t *data = (const uint8_t *) r->base + meta->data_offset;
        uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
        uint64_t tail = meta->data_tail;
        size_t mask = r->data_len - 1;
        int n = 0, ret = 0;

        if (meta->data_offset == 0)
                data = (const uint8_t *) r->base + sysconf(_SC_PAGESIZE);
        while (tail + sizeof(struct perf_event_header) <= head) {
                struct perf_event_header hdr;
                const struct perf_event_header *h;
                size_t off = tail & mask;
                struct diag_perf_event e;
                int k;

                if (off + sizeof hdr <= r->data_len)
                        memcpy(&hdr, data + off, sizeof hdr);
                else {
                        size_t first = r->data_len - off;
                        memcpy(&hdr, data + off, first);
                        memcpy((uint8_t *) &hdr + first, data, sizeof hdr - first);
                }
                if (hdr.size < sizeof hdr || tail + hdr.size > head)
                        break;
                if (off + hdr.size <= r->data_len)
                        h = (const struct perf_event_header *) (data + off);
                else {
                        /* the record wraps around the end: make it whole in a buffer */
                        size_t first = r->data_len - off;
                        if (r->copy_len < hdr.size) {
                                uint8_t *nb = realloc(r->copy, 65536);
                                if (!nb) {
                                        ret = -ENOMEM;
                                        break;
                                }
                                r->copy = nb;
                                r->copy_len = 65536;
                        }
                        memcpy(r->copy, data + off, first);
                        memcpy(r->copy + first, data, hdr.size - first);
                        h = (const struct perf_event_header *) r->copy;
                }
                k = parse_record(p, h, &e);
                if (k == 0) {
                        n++;
                        k = cb(userdata, &e);
                        if (k < 0) {
                                ret = k;
                                tail += hdr.size;
                                break;
                        }
                }
                tail += hdr.size;
        }
        __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
        return ret < 0 ? ret : n;
}

int diag_perf_poll(struct diag_perf *p, int timeout_ms,
                   int (*cb)(void *userdata, const struct diag_perf_event *e), void *userdata) {
        struct pollfd pfd[256];
        size_t npfd = 0;
        int total = 0;

        for (size_t i = 0; i < p->nrings && npfd < ELEMENTSOF(pfd); i++)
                if (p->rings[i].fd >= 0)
                        pfd[npfd++] = (struct pollfd) { .fd = p->rings[i].fd, .events = POLLIN };
        if (timeout_ms != 0 && npfd > 0) {
                bool ready = false;
                /* data below the watermark does not wake poll(): look first */
                for (size_t i = 0; i < p->nrings; i++) {
                        struct perf_event_mmap_page *m = p->rings[i].base;
                        if (m && __atomic_load_n(&m->data_head, __ATOMIC_ACQUIRE) != m->data_tail)
                                ready = true;
                }
                if (!ready && poll(pfd, npfd, timeout_ms) < 0 && errno != EINTR)
                        return negative_errno();
        }
        for (size_t i = 0; i < p->nrings; i++) {
                int r;
                if (!p->rings[i].base)
                        continue;
                r = drain_ring(p, &p->rings[i], cb, userdata);
                if (r < 0)
                        return r;
                total += r;
        }
        return total;
}

/* ---- unwinding samples ---- */

struct ksym {
        uint64_t addr;
        char *name;
};

struct pid_unwinder {
        pid_t pid;
        struct diag_unwinder *u;
        bool stale;                     /* exec'd or mapped new code since it was made */
        bool borrowed;                  /* u is the parent's (a child gone before we looked) */
        pid_t parent;                   /* for a child forked during the window, until it execs */
};

struct diag_perf_unwind {
        struct pid_unwinder *procs;
        size_t nprocs, allocprocs;
        size_t last;                    /* the last one used: samples come in runs */
        /* replaced unwinders: frames handed out still point at their strings */
        struct diag_unwinder **old;
        size_t nold, allocold;
        /* /proc/kallsyms, text symbols sorted by address */
        bool ksyms_loaded, ksyms_zero;
        struct ksym *ksyms;
        size_t nksyms;
        char *kbuf;
};

int diag_perf_unwind_new(struct diag_perf_unwind **ret) {
        struct diag_perf_unwind *w = calloc(1, sizeof *w);

        if (!w)
                return -ENOMEM;
        *ret = w;
        return 0;
}

struct diag_perf_unwind *diag_perf_unwind_free(struct diag_perf_unwind *w) {
        if (!w)
                return NULL;
        for (size_t i = 0; i < w->nprocs; i++)
                if (!w->procs[i].borrowed)
                        diag_unwinder_free(w->procs[i].u);
        free(w->procs);
        for (size_t i = 0; i < w->nold; i++)
                diag_unwinder_free(w->old[i]);
        free(w->old);
        free(w->ksyms);
        free(w->kbuf);
        free(w);
        return NULL;
}

static int ksym_cmp(const void *a, const void *b) {
        const struct ksym *x = a, *y = b;
        return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* One line of /proc/kallsyms, "ffffffff81000000 T _stext [module]": a text
 * symbol goes to the table, its name into the names buffer (an offset until the
 * buffer stops moving). */
static int ksym_line(struct diag_perf_unwind *w, char *line, size_t *alloc, size_t *nnames, size_t *allocnames,
                     bool *nonzero, bool *sorted) {
        char *type, *name, *stop;
        unsigned long long addr = strtoull(line, &type, 16);
        size_t len;

        if (type == line || type[0] != ' ' || type[1] == 0 || !strchr("tTwW", type[1]) || type[2] != ' ')
                return 0;
        name = type + 3;
        for (stop = name; *stop && *stop != ' ' && *stop != '\t'; stop++)
                ;
        len = (size_t) (stop - name);
        if (addr)
                *nonzero = true;
        if (w->nksyms > 0 && addr < w->ksyms[w->nksyms - 1].addr)
                *sorted = false;
        if (DIAG_GROW(w->ksyms, *alloc, w->nksyms + 1) < 0 || DIAG_GROW(w->kbuf, *allocnames, *nnames + len + 1) < 0)
                return -ENOMEM;
        memcpy(w->kbuf + *nnames, name, len);
        w->kbuf[*nnames + len] = 0;
        w->ksyms[w->nksyms++] = (struct ksym) { .addr = addr, .name = (char *) (uintptr_t) *nnames };
        *nnames += len + 1;
        return 0;
}

/* Read in blocks and keep only the names of text symbols: the file is about 5 MB
 * of text the kernel formats on every read, most of it not needed. Without the
 * privilege to see addresses the kernel shows zeros, and frames then carry the
 * address only. */
static void ksyms_load(struct diag_perf_unwind *w) {
        _cleanup_close_ int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t have = 0, alloc = 0, nnames = 0, allocnames = 0;
        const size_t bufsize = 256 << 10;
        bool nonzero = false, sorted = true;

        w->ksyms_loaded = true;
        if (fd < 0 || !(buf = malloc(bufsize + 1)))
                return;
        for (;;) {
                ssize_t k = read(fd, buf + have, bufsize - have);
                char *line = buf, *eol;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                have += (size_t) k;
                while ((eol = memchr(line, '\n', have - (size_t) (line - buf)))) {
                        *eol = 0;
                        if (ksym_line(w, line, &alloc, &nnames, &allocnames, &nonzero, &sorted) < 0)
                                goto done;
                        line = eol + 1;
                }
                have -= (size_t) (line - buf);
                memmove(buf, line, have);
                if (have == bufsize)
                        have = 0;       /* no line is that long: drop it */
        }
done:
        for (size_t i = 0; i < w->nksyms; i++)
                w->ksyms[i].name = w->kbuf + (uintptr_t) w->ksyms[i].name;
        w->ksyms_zero = !nonzero;
        if (w->ksyms_zero) {
                w->nksyms = 0;
                return;
        }
        /* the core kernel comes sorted; modules' symbols follow in load order */
        if (!sorted)
                qsort(w->ksyms, w->nksyms, sizeof *w->ksyms, ksym_cmp);
}

static const struct ksym *ksym_find(struct diag_perf_unwind *w, uint64_t addr) {
        size_t lo = 0, hi;

        if (!w->ksyms_loaded)
                ksyms_load(w);
        hi = w->nksyms;
        /* the last symbol at or below addr */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (w->ksyms[mid].addr <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo > 0 ? &w->ksyms[lo - 1] : NULL;
}

static struct pid_unwinder *proc_of(struct diag_perf_unwind *w, pid_t pid) {
        if (w->last < w->nprocs && w->procs[w->last].pid == pid)
                return &w->procs[w->last];
        for (size_t i = 0; i < w->nprocs; i++)
                if (w->procs[i].pid == pid) {
                        w->last = i;
                        return &w->procs[i];
                }
        return NULL;
}

struct diag_unwinder *diag_perf_unwind_of(struct diag_perf_unwind *w, pid_t pid) {
        struct pid_unwinder *p = proc_of(w, pid);
        return p ? p->u : NULL;
}

static struct pid_unwinder *proc_add(struct diag_perf_unwind *w, pid_t pid) {
        if (DIAG_GROW(w->procs, w->allocprocs, w->nprocs + 1) < 0)
                return NULL;
        w->procs[w->nprocs] = (struct pid_unwinder) { .pid = pid };
        w->last = w->nprocs;
        return &w->procs[w->nprocs++];
}

void diag_perf_unwind_note(struct diag_perf_unwind *w, const struct diag_perf_event *e) {
        struct pid_unwinder *p = proc_of(w, e->pid);

        /* A child runs its parent's code until it execs: when it is gone before its
         * first sample is unwound (a short-lived child), the parent's unwinder serves. */
        if (e->kind == DIAG_PERF_FORK && e->pid != e->ppid && !p && (p = proc_add(w, e->pid)))
                p->parent = e->ppid;
        if (!p)
                return;
        if (e->kind == DIAG_PERF_COMM && e->exec) {
                p->stale = true;
                p->parent = 0;
        }
        /* new code in a file (dlopen): only when no module already holds it; the
         * anonymous kind (a JIT) has no file to read CFI or symbols from */
        else if (e->kind == DIAG_PERF_MMAP && p->u && e->filename && e->filename[0] == '/' &&
                 strncmp(e->filename, "//", 2) != 0 && !diag_unwinder_covers(p->u, e->addr))
                p->stale = true;
}

/* The unwinder of pid, made (again) when needed. NULL with the process gone and
 * never seen (nor its parent, for a child that did not exec). */
static struct diag_unwinder *unwinder_for(struct diag_perf_unwind *w, pid_t pid, int *ret_err, unsigned depth) {
        struct pid_unwinder *p = proc_of(w, pid);
        struct diag_unwinder *u = NULL;
        size_t idx;
        int r;

        if (p && p->u && !p->stale)
                return p->u;
        if (!p && !(p = proc_add(w, pid))) {
                *ret_err = -ENOMEM;
                return NULL;
        }
        idx = (size_t) (p - w->procs);
        r = diag_unwinder_new(pid, &u);
        if (r == 0 && !diag_unwinder_has_modules(u)) {
                /* exiting: its memory is already released, its maps empty */
                u = diag_unwinder_free(u);
                r = -ESRCH;
        }
        p = &w->procs[idx];
        if (r < 0) {
                *ret_err = r;
                p->stale = false;       /* gone: what we have is the best there is */
                if (!p->u && p->parent > 0 && depth < 8) {
                        pid_t parent = p->parent;
                        struct diag_unwinder *pu = unwinder_for(w, parent, ret_err, depth + 1);
                        p = &w->procs[idx];     /* the array may have moved */
                        p->u = pu;
                        p->borrowed = pu != NULL;
                }
                return p->u;
        }
        if (p->u && !p->borrowed) {
                if (DIAG_GROW(w->old, w->allocold, w->nold + 1) < 0) {
                        diag_unwinder_free(u);
                        *ret_err = -ENOMEM;
                        return p->u;
                }
                w->old[w->nold++] = p->u;
        }
        p->u = u;
        p->borrowed = false;
        p->stale = false;
        return u;
}

int diag_perf_unwind_sample(struct diag_perf_unwind *w, const struct diag_perf_event *e,
                            size_t max_frames, bool inlines, struct diag_stack *ret) {
        struct diag_unwinder *u;
        size_t alloc = 0, k;
        int r = 0;

        memset(ret, 0, sizeof *ret);
        if (e->kind != DIAG_PERF_SAMPLE)
                return -EINVAL;
        if (max_frames == 0)
                max_frames = 64;
        for (size_t i = 0; i < e->nkernel; i++) {
                uint64_t pc = e->kernel_chain[i];
                const struct ksym *sym = ksym_find(w, i == 0 ? pc : pc - 1);
                struct diag_frame f = { .pc = pc, .activation = i == 0, .module = -1, .kernel = true };

                if (ret->n >= max_frames) {
                        ret->truncated = true;
                        return 0;
                }
                if (sym) {
                        f.func = sym->name;
                        f.func_off = pc - sym->addr;
                }
                if (DIAG_GROW(ret->frames, alloc, ret->n + 1) < 0) {
                        diag_stack_clear(ret);
                        return -ENOMEM;
                }
                ret->frames[ret->n++] = f;
        }
        if (e->regs.err || e->pid <= 0 || e->regs.ndwarf_regs == 0)
                return 0;       /* a kernel thread, or idle: no user part */
        u = unwinder_for(w, e->pid, &r, 0);
        if (!u) {
                diag_stack_clear(ret);
                return r < 0 ? r : -ESRCH;
        }
        k = ret->n;
        r = diag_unwind_copy(u, &e->regs, max_frames, inlines, ret);
        if (r < 0) {
                diag_stack_clear(ret);
                return r;
        }
        /* The kernel could not copy the stack (it was not resident when sampled):
         * the unwind ends quietly after the first frame. Say why it is short. */
        if (e->regs.stack_len == 0 && !ret->err && !ret->truncated && ret->n - k <= 1) {
                ret->err = -ENODATA;
                ret->err_msg = strdup("no user stack copy in the sample");
        }
        return 0;
}
