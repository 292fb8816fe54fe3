/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <time.h>

#include "diag/core.h"
#include "diag/guard.h"
#include "diag/inject.h"
#include "diag/mem.h"
#include "diag/proc.h"
#include "diag/ptrace.h"
#include "diag/util.h"

#define PAGE 4096ULL
#define RED_ZONE 128
#define CHUNK (4U << 20)                /* bytes read per system call */
#define SMALL_DATA (1U << 20)           /* "small writable data" for --stacks-only */
#define REGSET_MAX (64 * 1024)
#define PM_WINDOW 65536
#define PARALLEL_MIN (64ULL << 20)      /* less is copied on one thread */
#define COPIERS_MAX 4                   /* threads copying memory besides the caller */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)

/* Register sets written after NT_PRSTATUS, per thread, as the kernel does. */
struct regset_kind {
        unsigned type;
        const char *name;
};
#if defined(__x86_64__)
#define CORE_MACHINE EM_X86_64
static const struct regset_kind regsets[] = {
        { NT_PRFPREG, "CORE" },
        { NT_X86_XSTATE, "LINUX" },
};
#elif defined(__aarch64__)
#define CORE_MACHINE EM_AARCH64
static const struct regset_kind regsets[] = {
        { NT_PRFPREG, "CORE" },
        { NT_ARM_TLS, "LINUX" },
        { NT_ARM_HW_BREAK, "LINUX" },
        { NT_ARM_HW_WATCH, "LINUX" },
        { NT_ARM_SYSTEM_CALL, "LINUX" },
        { NT_ARM_SVE, "LINUX" },
        { NT_ARM_PAC_MASK, "LINUX" },
};
#endif
#define NREGSETS ELEMENTSOF(regsets)

struct thread_regs {
        pid_t tid;
        bool partial;                   /* not stopped: pc, sp, syscall from /proc */
        long long syscall_nr;           /* of a partial thread */
        char why[96];                   /* of a partial thread: why it was not stopped */
        /* From /proc/PID/task/TID/{stat,status}, read while memory is copied. */
        struct timeval utime, stime, cutime, cstime;
        unsigned long sigpend, sighold;
        struct user_regs_struct regs;
        uint8_t *set[NREGSETS];
        size_t setlen[NREGSETS];
};

enum dump { D_NONE, D_HEADER, D_ALL };
enum how { R_PAGEMAP, R_ALL, R_FILE };

struct region {
        uint64_t start, end, pgoff;
        char perms[5];
        char *path;
        uint64_t inode;
        uint64_t rss, anon;
        bool dd, io, ht, wf;
        bool remote;                    /* its file is on NFS, FUSE and the like: a page not
                                         * in memory could make a read wait for ever */
        enum dump dump;
        enum how how;
        int prio;
        pid_t src;                      /* where its bytes are read */
        uint64_t estimate, filesz, offset;
};

struct notes {
        uint8_t *p;
        size_t len, alloc;
};

/* One reader-writer of memory: its buffer, its /proc/PID/mem, what it wrote. */
struct copier {
        uint8_t *buf;
        int fd, err;
        pid_t pid;
        uint64_t bytes, unreadable;
        bool main;                      /* the calling thread: reports progress */
};

/* A range of memory to copy, once the layout is known (parallel copies). */
struct copy_job {
        pid_t src;
        uint64_t addr, len, off;
};

struct out {
        int fd;
        bool seekable;
        uint64_t pos;                   /* stream: bytes written so far */
};

struct core {
        pid_t pid;
        const struct diag_core_opts *o;
        struct diag_core_result *res;
        struct out out;
        unsigned long filter;
        const struct diag_maps *maps;   /* the target's, from before the stop */
        bool use_fork;
        struct diag_gadgets gadgets;
        struct diag_fork fork;
        bool forked;
        bool fork_clean;                /* forked, and the fork path ended with nothing left behind */
        struct thread_regs *tr;
        size_t ntr;
        struct region *rg;
        size_t nrg, arg;
        uint64_t total_est, last_progress_ns;
        _Atomic uint64_t done;
        struct copier main;
        struct copy_job *jobs;          /* non-NULL: copy_range queues, workers copy */
        size_t njobs, ajobs;
        _Atomic size_t next_job;
        _Atomic int job_err;
        int pagemap_fd, guard_fd;
        uint64_t *pm;                   /* a window of PM_WINDOW pagemap entries */
        uint64_t pm_base;
        size_t pm_n;
        pthread_t info_thread;
        bool info_started;
        char pf[40][24];                /* /proc/PID/stat after the name */
        struct notes proc_notes;        /* PRPSINFO, SIGINFO, AUXV */
        pid_t pagemap_pid;
        struct diag_remote_devs remote; /* the process's NFS, FUSE... mounts */
        struct region *pre;             /* --stacks-only: the regions from smaps before the stop */
        size_t npre;
        int err;
};

/* ---- output ---------------------------------------------------------------- */

static int out_write(struct out *o, uint64_t off, const void *buf, size_t len) {
        static const uint8_t zeros[PAGE];
        const uint8_t *p = buf;

        if (!o->seekable) {
                if (off < o->pos)
                        return -EINVAL;
                while (o->pos < off) {
                        size_t k = (size_t) MIN(off - o->pos, (uint64_t) sizeof zeros);
                        ssize_t n = write(o->fd, zeros, k);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        o->pos += (uint64_t) n;
                }
        }
        while (len > 0) {
                ssize_t n = o->seekable ? pwrite(o->fd, p, len, (off_t) off) : write(o->fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
                off += (uint64_t) n;
                if (!o->seekable)
                        o->pos += (uint64_t) n;
        }
        return 0;
}

static int out_finish(struct out *o, uint64_t size) {
        if (o->seekable)
                return ftruncate(o->fd, (off_t) size) < 0 ? negative_errno() : 0;
        return out_write(o, size, NULL, 0);
}

/* ---- reading the target ----------------------------------------------------- */

static bool page_is_zero(const uint8_t *p) {
        const uint64_t *w = (const uint64_t *) p;
        for (size_t i = 0; i < PAGE / 8; i += 8)
                if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
                        return false;
        return true;
}

static int progress(struct core *k, struct copier *c, uint64_t bytes) {
        uint64_t now;

        k->done += bytes;
        if (!k->o->progress || !c->main)
                return 0;
        now = diag_now_ns(CLOCK_MONOTONIC);
        if (now - k->last_progress_ns < 100000000ULL)
                return 0;
        k->last_progress_ns = now;
        return k->o->progress(k->o->userdata, k->done, k->total_est) ? -ECANCELED : 0;
}

/* Write the non-zero pages of buf (len bytes of memory at file offset off). */
static int emit(struct core *k, struct copier *c, uint64_t off, const uint8_t *buf, size_t len) {
        size_t i = 0;

        while (i < len) {
                size_t j;
                int r;

                while (i < len && page_is_zero(buf + i))
                        i += PAGE;
                if (i >= len)
                        break;
                for (j = i; j < len && !page_is_zero(buf + j); j += PAGE)
                        ;
                /* (--max-size copies on one thread: the budget is counted here) */
                if (k->o->max_size && k->res->bytes + c->bytes + (j - i) > k->o->max_size) {
                        k->res->capped++;
                        return 0;
                }
                r = out_write(&k->out, off + i, buf + i, j - i);
                if (r < 0)
                        return r;
                c->bytes += j - i;
                i = j;
        }
        return progress(k, c, len);
}

/* Memory is read through /proc/PID/mem, not process_vm_readv: that one pins the
 * pages, and pinning a page the forked child shares with the target makes the
 * kernel copy it first (so that the pin stays coherent) — a second copy of the
 * whole image, and four times slower. A plain read takes no pin. */
static ssize_t mem_pread(struct copier *c, pid_t src, uint64_t addr, void *buf, size_t len) {
        size_t done = 0;

        if (c->pid != src) {
                char path[64];
                if (c->fd >= 0)
                        close(c->fd);
                snprintf(path, sizeof path, "/proc/%d/mem", src);
                c->fd = open(path, O_RDONLY | O_CLOEXEC);
                c->pid = src;
                if (c->fd < 0)
                        c->err = errno == ENOENT ? -ESRCH : negative_errno();
        }
        if (c->fd < 0)
                return c->err;
        while (done < len) {
                ssize_t n = pread(c->fd, (uint8_t *) buf + done, len - done, (off_t) (addr + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0)
                        return -ESRCH;  /* end of file: its memory is gone (exited, or killed) */
                if (n < 0 && done == 0)
                        return negative_errno();
                if (n < 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

/* Read [addr, addr+len) of src and emit it at file offset off; pages that cannot
 * be read are holes (counted). */
static int copy_now(struct core *k, struct copier *c, pid_t src, uint64_t addr, uint64_t len, uint64_t off) {
        while (len > 0) {
                size_t n = (size_t) MIN(len, (uint64_t) CHUNK);
                ssize_t got = mem_pread(c, src, addr, c->buf, n);
                int r;

                if (got == -ESRCH)
                        return -ESRCH;
                if (got < (ssize_t) n) {
                        /* A hole in the middle (a page that went away, a guard): go page by page. */
                        size_t ok = got > 0 ? (size_t) got & ~(PAGE - 1) : 0;
                        for (size_t p = ok; p < n; p += PAGE) {
                                ssize_t one = mem_pread(c, src, addr + p, c->buf + p, PAGE);
                                if (one == -ESRCH)
                                        return -ESRCH;
                                if (one != (ssize_t) PAGE) {
                                        memset(c->buf + p, 0, PAGE);
                                        c->unreadable++;
                                }
                        }
                }
                r = emit(k, c, off, c->buf, n);
                if (r < 0)
                        return r;
                addr += n;
                off += n;
                len -= n;
        }
        return 0;
}

/* Copy a range of a region: at once, or, when the copy is shared out among
 * threads, queued in pieces of CHUNK. */
static int copy_range(struct core *k, const struct region *g, uint64_t addr, uint64_t len) {
        uint64_t off = g->offset + (addr - g->start);

        if (!k->jobs)
                return copy_now(k, &k->main, g->src, addr, len, off);
        for (uint64_t d = 0; d < len; d += CHUNK) {
                if (DIAG_GROW(k->jobs, k->ajobs, k->njobs + 1) < 0)
                        return -ENOMEM;
                k->jobs[k->njobs++] = (struct copy_job) { g->src, addr + d, MIN((uint64_t) CHUNK, len - d), off + d };
        }
        return 0;
}

static int copier_init(struct copier *c, bool main) {
        *c = (struct copier) { .fd = -1, .main = main };
        c->buf = malloc(CHUNK);
        return c->buf ? 0 : -ENOMEM;
}

static void copier_done(struct copier *c) {
        free(c->buf);
        c->buf = NULL;
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

static int run_jobs_on(struct core *k, struct copier *c) {
        for (;;) {
                size_t i = k->next_job++;
                int r;

                if (i >= k->njobs || k->job_err)
                        return 0;
                r = copy_now(k, c, k->jobs[i].src, k->jobs[i].addr, k->jobs[i].len, k->jobs[i].off);
                if (r < 0) {
                        int none = 0;
                        atomic_compare_exchange_strong(&k->job_err, &none, r);
                        return r;
                }
        }
}

struct worker_arg {
        struct core *k;
        struct copier c;
        pthread_t t;
        bool started;
};

static void *worker_main(void *userdata) {
        struct worker_arg *w = userdata;
        (void) run_jobs_on(w->k, &w->c);
        return NULL;
}

/* The queued copies, by every worker and the calling thread. Reading the copy's
 * memory and writing the file each keep a CPU busy: on two, two copiers take
 * about half the time of one. */
static int run_jobs(struct core *k, unsigned nworkers) {
        struct worker_arg w[COPIERS_MAX] = {};
        int r;

        for (unsigned i = 0; i < nworkers; i++) {
                w[i].k = k;
                if (copier_init(&w[i].c, false) < 0)
                        break;
                w[i].started = pthread_create(&w[i].t, NULL, worker_main, &w[i]) == 0;
                if (!w[i].started)
                        copier_done(&w[i].c);
        }
        (void) run_jobs_on(k, &k->main);
        for (unsigned i = 0; i < nworkers; i++)
                if (w[i].started) {
                        (void) pthread_join(w[i].t, NULL);
                        k->main.bytes += w[i].c.bytes;
                        k->main.unreadable += w[i].c.unreadable;
                        copier_done(&w[i].c);
                }
        r = k->job_err;
        free(k->jobs);
        k->jobs = NULL;
        k->njobs = k->ajobs = 0;
        return r;
}

/* Entries of src's pagemap from addr on: a window of them is read at once, since
 * thousands of small mappings (thread stacks and their guards) lie close. */
static size_t pagemap_at(struct core *k, pid_t src, uint64_t addr, uint64_t end, const uint64_t **ret) {
        uint64_t page = addr / PAGE;

        if (k->pagemap_pid != src) {
                char path[64];
                if (k->pagemap_fd >= 0)
                        close(k->pagemap_fd);
                snprintf(path, sizeof path, "/proc/%d/pagemap", src);
                k->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
                k->pagemap_pid = src;
                k->pm_n = 0;
        }
        if (!k->pm)
                k->pm = malloc(PM_WINDOW * sizeof *k->pm);
        if (k->pagemap_fd < 0 || !k->pm)
                return 0;
        if (page < k->pm_base || page >= k->pm_base + k->pm_n) {
                /* --stacks-only skips most of the memory: a window past this
                 * mapping would walk the page tables of what is skipped (7 ms
                 * for a 512 MiB heap next to a thread stack). */
                size_t want = k->o->stacks_only ? (size_t) MIN((uint64_t) PM_WINDOW, (end - addr + PAGE - 1) / PAGE)
                                                : PM_WINDOW;
                ssize_t n = pread(k->pagemap_fd, k->pm, want * sizeof *k->pm, (off_t) (page * 8));
                k->pm_base = page;
                k->pm_n = n > 0 ? (size_t) n / 8 : 0;
        }
        *ret = k->pm + (page - k->pm_base);
        return (size_t) MIN(k->pm_base + k->pm_n - page, (end - addr) / PAGE);
}

/* A page of src is in its page tables (reading it faults nothing in). */
static bool page_present(struct core *k, pid_t src, uint64_t addr) {
        const uint64_t *e;
        return pagemap_at(k, src, addr, addr + PAGE, &e) > 0 && (e[0] & PM_PRESENT);
}

/* Private anonymous memory: only pages present or swapped out (pagemap). A
 * mapping of a file on a remote file system the same way: a page not in
 * memory is left out (counted), not read through a server that may not answer. */
static int copy_pagemap(struct core *k, const struct region *g) {
        uint64_t end = g->start + g->filesz;

        for (uint64_t a = g->start; a < end;) {
                const uint64_t *entries;
                size_t got = pagemap_at(k, g->src, a, end, &entries);

                if (got == 0)
                        return copy_range(k, g, a, end - a);
                for (size_t i = 0; i < got;) {
                        size_t j;
                        int r;

                        if (!(entries[i] & (PM_PRESENT | PM_SWAPPED))) {
                                if (g->remote)
                                        k->res->remote_skipped++;
                                i++;
                                continue;
                        }
                        for (j = i; j < got && (entries[j] & (PM_PRESENT | PM_SWAPPED)); j++)
                                ;
                        r = copy_range(k, g, a + i * PAGE, (j - i) * PAGE);
                        if (r < 0)
                                return r;
                        i = j;
                }
                a += got * PAGE;
        }
        return 0;
}

/* Shared memory: the data ranges of the object behind it (SEEK_DATA), read from
 * the object, so holes are neither read nor allocated. */
static int copy_file(struct core *k, const struct region *g) {
        char path[96];
        _cleanup_close_ int fd = -1;
        off_t base = (off_t) (g->pgoff * PAGE), end = base + (off_t) g->filesz;

        snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, g->src, g->start, g->end);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return copy_pagemap(k, g);
        for (off_t pos = base; pos < end;) {
                off_t d = lseek(fd, pos, SEEK_DATA), h;
                if (d < 0 || d >= end)
                        break;
                h = lseek(fd, d, SEEK_HOLE);
                if (h < 0 || h > end)
                        h = end;
                d &= ~(off_t) (PAGE - 1);
                for (off_t p = d; p < h;) {
                        size_t n = (size_t) MIN((uint64_t) (h - p), (uint64_t) CHUNK);
                        ssize_t got = pread(fd, k->main.buf, n, p);
                        int r;
                        if (got <= 0)
                                break;
                        n = ((size_t) got + PAGE - 1) & ~(PAGE - 1);
                        if (n > (size_t) got)
                                memset(k->main.buf + got, 0, n - (size_t) got);
                        r = emit(k, &k->main, g->offset + (uint64_t) (p - base), k->main.buf, n);
                        if (r < 0)
                                return r;
                        p += (off_t) n;
                }
                pos = h;
        }
        return 0;
}

/* ---- which mappings, how ---------------------------------------------------- */

static bool has_flag(const char *vmflags, const char *f) {
        for (const char *p = vmflags; (p = strstr(p, f)); p += 2)
                if ((p == vmflags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || p[2] == 0))
                        return true;
        return false;
}

static uint64_t smaps_kb(const char *line, const char *key) {
        unsigned long long v = 0;
        size_t kl = strlen(key);
        char num[32];
        size_t i = 0;

        if (strncmp(line, key, kl) != 0)
                return UINT64_MAX;
        line += kl;
        while (*line == ' ')
                line++;
        while (line[i] >= '0' && line[i] <= '9' && i < sizeof num - 1) {
                num[i] = line[i];
                i++;
        }
        num[i] = 0;
        if (diag_parse_ull(num, 10, &v) < 0)
                return 0;
        return v * 1024;
}

static int region_add(struct core *k, const struct diag_map *m, pid_t src) {
        struct region *g;

        if (DIAG_GROW(k->rg, k->arg, k->nrg + 1) < 0)
                return -ENOMEM;
        g = &k->rg[k->nrg++];
        *g = (struct region) { .start = m->start, .end = m->end, .pgoff = m->offset / PAGE,
                               .inode = m->inode, .src = src };
        memcpy(g->perms, m->perms, sizeof g->perms);
        g->remote = m->path[0] == '/' && diag_remote_devs_has(&k->remote, m->dev_major, m->dev_minor);
        g->path = strdup(m->path);
        return g->path ? 0 : -ENOMEM;
}

/* The regions of src from its smaps (VmFlags, Rss, Anonymous). */
static int regions_from_smaps(struct core *k, pid_t src) {
        char path[64];
        _cleanup_free_ char *text = NULL;
        size_t len;
        char *line, *save = NULL;
        struct region *g = NULL;
        int r;

        snprintf(path, sizeof path, "/proc/%d/smaps", src);
        r = diag_read_file_at(AT_FDCWD, path, (size_t) 1 << 30, &text, &len);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                uint64_t v;

                if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
                        struct diag_map m;
                        if (diag_maps_parse_line(line, &m) < 0) {
                                g = NULL;
                                continue;
                        }
                        r = region_add(k, &m, src);
                        free(m.path);
                        if (r < 0)
                                return r;
                        g = &k->rg[k->nrg - 1];
                } else if (!g)
                        continue;
                else if ((v = smaps_kb(line, "Rss:")) != UINT64_MAX)
                        g->rss = v;
                else if ((v = smaps_kb(line, "Anonymous:")) != UINT64_MAX)
                        g->anon = v;
                else if (strncmp(line, "VmFlags:", 8) == 0) {
                        g->dd = has_flag(line + 8, "dd");
                        g->io = has_flag(line + 8, "io");
                        g->ht = has_flag(line + 8, "ht");
                        g->wf = has_flag(line + 8, "wf");
                }
        }
        return 0;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool holds_thread_sp(const struct core *k, const struct region *g, uint64_t *ret_low) {
        uint64_t low = UINT64_MAX;
        for (size_t i = 0; i < k->ntr; i++) {
                uint64_t sp = k->tr[i].regs.
#if defined(__x86_64__)
                        rsp;
#else
                        sp;
#endif
                if (sp > g->start && sp <= g->end && sp < low)
                        low = sp;
        }
        if (ret_low)
                *ret_low = low;
        return low != UINT64_MAX;
}

/* The kernel's choice (fs/binfmt_elf.c vma_dump_size), from what /proc shows. */
static void classify(struct core *k, struct region *g) {
        unsigned long f = k->filter;
        bool shared = g->perms[3] == 's';
        bool file = g->path[0] == '/';
        bool special = g->path[0] == '[';
        uint64_t size = g->end - g->start;

        g->dump = D_NONE;
        g->how = R_ALL;
        g->prio = 2;
        /* A fork copies no page table entries of a mapping that is only the file:
         * what of it is in memory shows in the target's page tables, not the copy's. */
        if (g->remote && g->anon == 0)
                g->src = k->pid;
        if (strcmp(g->path, "[vdso]") == 0) {
                g->dump = D_ALL;
                g->prio = 1;
                return;
        }
        if (g->dd || g->io || strncmp(g->path, "[vvar", 5) == 0 || strcmp(g->path, "[vsyscall]") == 0)
                return;
        if (g->perms[0] != 'r')
                return;                 /* PROT_NONE guards and the like hold nothing readable */
        if (g->ht) {
                if (f & (shared ? DIAG_CORE_HUGE_SHARED : DIAG_CORE_HUGE_PRIVATE)) {
                        g->dump = D_ALL;
                        g->how = R_PAGEMAP;
                        g->prio = 3;
                }
                return;
        }
        if (shared) {
                bool anon = !file || ends_with(g->path, " (deleted)") || strncmp(g->path, "/dev/zero", 9) == 0 ||
                            strncmp(g->path, "/SYSV", 5) == 0 || strncmp(g->path, "/memfd:", 7) == 0;
                if (f & (anon ? DIAG_CORE_ANON_SHARED : DIAG_CORE_FILE_SHARED)) {
                        g->dump = D_ALL;
                        g->how = g->remote ? R_PAGEMAP : R_FILE;        /* no open() on a remote mount */
                        g->prio = 3;
                }
                return;
        }
        if (!file) {
                /* Anonymous private memory ([heap], [stack], [anon:...], no name). */
                if (f & DIAG_CORE_ANON_PRIVATE) {
                        g->dump = D_ALL;
                        g->how = R_PAGEMAP;
                        g->prio = holds_thread_sp(k, g, NULL) ? 0 : (g->perms[1] == 'w' && size <= SMALL_DATA ? 1 : 2);
                }
                (void) special;
                return;
        }
        if ((g->anon > 0 && (f & DIAG_CORE_ANON_PRIVATE)) || (f & DIAG_CORE_FILE_PRIVATE)) {
                g->dump = D_ALL;
                if (g->remote)
                        g->how = R_PAGEMAP;
                g->prio = g->perms[1] == 'w' && size <= SMALL_DATA ? 1 : 2;
                return;
        }
        if ((f & DIAG_CORE_ELF_HEADERS) && g->pgoff == 0 && (!g->remote || page_present(k, g->src, g->start))) {
                uint8_t magic[SELFMAG];
                if (diag_mem_read(g->src, g->start, magic, sizeof magic) == (ssize_t) sizeof magic &&
                    memcmp(magic, ELFMAG, SELFMAG) == 0) {
                        g->dump = D_HEADER;
                        g->prio = 1;
                }
        }
}

/* Split each thread stack at its lowest stack pointer (less the red zone): the
 * part below is dead memory, and becomes a segment without contents. For
 * --stacks-only and --max-size, where every byte counts. */
static int split_stacks(struct core *k) {
        for (size_t i = 0; i < k->nrg; i++) {
                struct region *g = &k->rg[i], lowpart;
                uint64_t low, from;

                if (g->dump != D_ALL || !holds_thread_sp(k, g, &low))
                        continue;
                from = (low - RED_ZONE) & ~(PAGE - 1);
                if (from <= g->start)
                        continue;
                if (DIAG_GROW(k->rg, k->arg, k->nrg + 1) < 0)
                        return -ENOMEM;
                g = &k->rg[i];
                lowpart = *g;
                lowpart.end = from;
                lowpart.dump = D_NONE;
                lowpart.path = strdup(g->path);
                if (!lowpart.path)
                        return -ENOMEM;
                g->pgoff += (from - g->start) / PAGE;
                g->start = from;
                memmove(&k->rg[i + 1], &k->rg[i], (k->nrg - i) * sizeof *k->rg);
                k->rg[i] = lowpart;
                k->nrg++;
                i++;
        }
        return 0;
}

/* --stacks-only: besides the stacks, only small written data, the vDSO and
 * ELF headers. */
static void stacks_only(struct core *k) {
        for (size_t i = 0; i < k->nrg; i++) {
                struct region *g = &k->rg[i];

                if (g->dump != D_ALL || strcmp(g->path, "[vdso]") == 0 || holds_thread_sp(k, g, NULL))
                        continue;
                /* Written private data: .data, .bss, and the RELRO part made
                 * read-only after relocation, where DT_DEBUG and the GOT point gdb
                 * to the list of loaded libraries. */
                if (!(g->perms[3] == 'p' && (g->perms[1] == 'w' || g->anon > 0) && g->end - g->start <= SMALL_DATA))
                        g->dump = D_NONE;
        }
}

/* --stacks-only, before the stop: about how many bytes the core will hold.
 * Thread registers are not known yet, so every stack mapping counts whole
 * (its resident part: "[stack]", or writable memory right above a guard
 * page), with the small written data and the headers stacks_only() keeps. */
static int stacks_only_estimate(struct core *k, uint64_t *ret) {
        uint64_t est = 0;
        int r;

        r = regions_from_smaps(k, k->pid);
        for (size_t i = 0; r >= 0 && i < k->nrg; i++) {
                struct region *g = &k->rg[i];
                uint64_t size = g->end - g->start;
                bool stack;

                classify(k, g);
                if (g->dump == D_HEADER) {
                        est += PAGE;
                        continue;
                }
                if (g->dump != D_ALL)
                        continue;
                stack = strcmp(g->path, "[stack]") == 0 ||
                        (g->perms[1] == 'w' && i > 0 && k->rg[i - 1].end == g->start &&
                         strncmp(k->rg[i - 1].perms, "---", 3) == 0);
                if (stack || strcmp(g->path, "[vdso]") == 0 ||
                    (g->perms[3] == 'p' && (g->perms[1] == 'w' || g->anon > 0) && size <= SMALL_DATA))
                        est += MIN(g->rss, size);
        }
        /* Kept for the stop: what smaps says of each mapping (see
         * regions_while_stopped). */
        k->pre = TAKE_PTR(k->rg);
        k->npre = k->nrg;
        k->nrg = k->arg = 0;
        *ret = est;
        return r < 0 ? r : 0;
}

/* The regions of the stopped process from its maps, a fraction of a
 * millisecond, not its smaps: those of a process of 500 MiB take tens of
 * milliseconds to read, longer than the copy of a small core. What smaps said
 * before the stop (Rss, Anonymous, VmFlags) is taken for every mapping that is
 * still the same; one that is new is read as if all resident. */
static int regions_while_stopped(struct core *k) {
        _cleanup_(diag_maps_freep) struct diag_maps *maps = NULL;
        size_t j = 0;
        int r;

        r = diag_maps_read(k->pid, &maps);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        for (size_t i = 0; i < maps->n; i++) {
                const struct diag_map *m = &maps->maps[i];
                struct region *g;

                r = region_add(k, m, k->pid);
                if (r < 0)
                        return r;
                g = &k->rg[k->nrg - 1];
                while (j < k->npre && k->pre[j].end <= m->start)
                        j++;
                if (j < k->npre && k->pre[j].start == m->start && k->pre[j].end == m->end &&
                    k->pre[j].inode == m->inode && memcmp(k->pre[j].perms, m->perms, 4) == 0) {
                        g->rss = k->pre[j].rss;
                        g->anon = k->pre[j].anon;
                        g->dd = k->pre[j].dd;
                        g->io = k->pre[j].io;
                        g->ht = k->pre[j].ht;
                        g->wf = k->pre[j].wf;
                } else
                        g->rss = g->end - g->start;
        }
        return 0;
}

/* Whether copying est bytes while the process is stopped takes less than a
 * fork of it would keep it stopped: the copy at about 1 GiB/s, the fork's page
 * table copy at about 25 ms per GiB resident (see diag-core(1), OVERHEAD),
 * each after about 1 ms of fixed cost. */
static bool stop_copy_faster(pid_t pid, uint64_t est) {
        unsigned long long rss_kb = 0;

        if (diag_task_status_field(pid, 0, "VmRSS", 10, &rss_kb) < 0)
                return false;
        return est / 1024 <= rss_kb / 40;
}

static int cmp_start(const void *a, const void *b) {
        const struct region *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_prio(const void *a, const void *b) {
        const struct region *x = *(const struct region * const *) a, *y = *(const struct region * const *) b;
        if (x->prio != y->prio)
                return x->prio < y->prio ? -1 : 1;
        return x->estimate < y->estimate ? -1 : x->estimate > y->estimate;
}

static int plan(struct core *k) {
        uint64_t budget = k->o->max_size;

        for (size_t i = 0; i < k->nrg; i++)
                classify(k, &k->rg[i]);
        if ((k->o->stacks_only || budget) && split_stacks(k) < 0)
                return -ENOMEM;
        if (k->o->stacks_only)
                stacks_only(k);
        k->total_est = 0;
        for (size_t i = 0; i < k->nrg; i++) {
                struct region *g = &k->rg[i];
                uint64_t size = g->end - g->start;
                g->estimate = g->dump == D_HEADER ? PAGE
                            : g->dump == D_NONE ? 0
                            : g->how == R_PAGEMAP ? MIN(g->rss, size) : size;
        }
        if (budget) {
                /* Registers are in the notes, always; then stacks, small data, the
                 * rest, shared memory last; smaller first within a class. */
                _cleanup_free_ struct region **order = calloc(k->nrg ? k->nrg : 1, sizeof *order);
                uint64_t used = 0;
                if (!order)
                        return -ENOMEM;
                for (size_t i = 0; i < k->nrg; i++)
                        order[i] = &k->rg[i];
                qsort(order, k->nrg, sizeof *order, cmp_prio);
                for (size_t i = 0; i < k->nrg; i++) {
                        struct region *g = order[i];
                        if (g->dump == D_NONE)
                                continue;
                        if (used + g->estimate > budget) {
                                g->dump = D_NONE;
                                g->estimate = 0;
                                k->res->capped++;
                                continue;
                        }
                        used += g->estimate;
                }
        }
        for (size_t i = 0; i < k->nrg; i++)
                k->total_est += k->rg[i].estimate;
        return 0;
}

/* ---- notes ------------------------------------------------------------------ */

static int note_add(struct notes *n, const char *name, unsigned type, const void *desc, size_t dlen) {
        Elf64_Nhdr h = { .n_namesz = (Elf64_Word) strlen(name) + 1, .n_descsz = (Elf64_Word) dlen, .n_type = type };
        size_t nl = (h.n_namesz + 3) & ~3U, dl = (dlen + 3) & ~(size_t) 3;
        size_t need = n->len + sizeof h + nl + dl;

        if (DIAG_GROW(n->p, n->alloc, need) < 0)
                return -ENOMEM;
        memset(n->p + n->len, 0, need - n->len);
        memcpy(n->p + n->len, &h, sizeof h);
        memcpy(n->p + n->len + sizeof h, name, h.n_namesz);
        if (dlen)
                memcpy(n->p + n->len + sizeof h + nl, desc, dlen);
        n->len = need;
        return 0;
}

/* Fields of /proc/PID[/task/TID]/stat after the command name (field 3 = [0]). */
static int read_stat_fields(pid_t pid, pid_t tid, char fields[][24], size_t nf, char *comm, size_t commlen) {
        char path[64], buf[2048];
        const char *p, *e;
        ssize_t n;
        size_t i = 0;

        if (tid)
                snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
        else
                snprintf(path, sizeof path, "/proc/%d/stat", pid);
        n = diag_read_small_at(AT_FDCWD, path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        p = strchr(buf, '(');
        e = strrchr(buf, ')');
        if (!p || !e || e < p)
                return -EINVAL;
        if (comm) {
                size_t l = MIN((size_t) (e - p - 1), commlen - 1);
                memcpy(comm, p + 1, l);
                comm[l] = 0;
        }
        for (p = e + 2; *p && i < nf; i++) {
                size_t l = strcspn(p, " \n");
                memset(fields[i], 0, 24);
                memcpy(fields[i], p, MIN(l, (size_t) 23));
                p += l;
                while (*p == ' ')
                        p++;
        }
        for (; i < nf; i++)
                strcpy(fields[i], "0");
        return 0;
}

static long long field_ll(const char *s) {
        long long v = 0;
        (void) diag_parse_ll(s, 10, LLONG_MIN, LLONG_MAX, &v);
        return v;
}

static struct timeval ticks_tv(const char *s) {
        long long t = field_ll(s), hz = sysconf(_SC_CLK_TCK);
        if (hz <= 0)
                hz = 100;
        return (struct timeval) { .tv_sec = t / hz, .tv_usec = (t % hz) * 1000000 / hz };
}

static void *read_thread_infos(void *userdata) {
        struct core *k = userdata;

        for (size_t i = 0; i < k->ntr; i++) {
                struct thread_regs *t = &k->tr[i];
                char tf[20][24], path[64], status[4096];
                unsigned long long v;

                if (read_stat_fields(k->pid, t->tid, tf, ELEMENTSOF(tf), NULL, 0) == 0) {
                        t->utime = ticks_tv(tf[11]);
                        t->stime = ticks_tv(tf[12]);
                        t->cutime = ticks_tv(tf[13]);
                        t->cstime = ticks_tv(tf[14]);
                }
                snprintf(path, sizeof path, "/proc/%d/task/%d/status", k->pid, t->tid);
                if (diag_read_small_at(AT_FDCWD, path, status, sizeof status) > 0) {
                        if (diag_status_field(status, "SigPnd", 16, &v) == 0)
                                t->sigpend = v;
                        if (diag_status_field(status, "SigBlk", 16, &v) == 0)
                                t->sighold = v;
                }
        }
        return NULL;
}

/* Thousands of threads mean thousands of /proc reads: on a thread of their own,
 * while the memory map is read. */
static void infos_start(struct core *k) {
        k->info_started = pthread_create(&k->info_thread, NULL, read_thread_infos, k) == 0;
        if (!k->info_started)
                (void) read_thread_infos(k);
}

static void infos_join(struct core *k) {
        if (k->info_started)
                (void) pthread_join(k->info_thread, NULL);
        k->info_started = false;
}

static int note_prstatus(struct core *k, struct notes *n, const struct thread_regs *t, char pf[][24]) {
        struct elf_prstatus ps = {};

        ps.pr_pid = t->tid;
        ps.pr_ppid = (pid_t) field_ll(pf[1]);
        ps.pr_pgrp = (pid_t) field_ll(pf[2]);
        ps.pr_sid = (pid_t) field_ll(pf[3]);
        ps.pr_utime = t->utime;
        ps.pr_stime = t->stime;
        ps.pr_cutime = t->cutime;
        ps.pr_cstime = t->cstime;
        ps.pr_sigpend = t->sigpend;
        ps.pr_sighold = t->sighold;
        _Static_assert(sizeof ps.pr_reg == sizeof t->regs, "elf_gregset_t is user_regs_struct");
        memcpy(&ps.pr_reg, &t->regs, sizeof t->regs);
        ps.pr_fpvalid = t->setlen[0] > 0;
        return note_add(n, "CORE", NT_PRSTATUS, &ps, sizeof ps);
}

/* PRPSINFO, SIGINFO, AUXV: read before the stop, so that a process that exits
 * while its image is written (the forked copy holds it) still gets them. */
static int note_process(struct core *k, struct notes *n, char pf[][24], const char *comm) {
        struct elf_prpsinfo pi = {};
        siginfo_t si = {};
        char path[64], status[4096];
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r;

        pi.pr_sname = pf[0][0];
        pi.pr_state = (char) (strchr("RSDTZW", pf[0][0]) ? strchr("RSDTZW", pf[0][0]) - "RSDTZW" : 0);
        pi.pr_zomb = pf[0][0] == 'Z';
        pi.pr_nice = (char) field_ll(pf[16]);
        pi.pr_flag = (unsigned long) field_ll(pf[6]);
        pi.pr_pid = k->pid;
        pi.pr_ppid = (pid_t) field_ll(pf[1]);
        pi.pr_pgrp = (pid_t) field_ll(pf[2]);
        pi.pr_sid = (pid_t) field_ll(pf[3]);
        snprintf(path, sizeof path, "/proc/%d/status", k->pid);
        if (diag_read_small_at(AT_FDCWD, path, status, sizeof status) > 0) {
                unsigned long long v;
                if (diag_status_field(status, "Uid", 10, &v) == 0)
                        pi.pr_uid = (unsigned) v;
                if (diag_status_field(status, "Gid", 10, &v) == 0)
                        pi.pr_gid = (unsigned) v;
        }
        snprintf(pi.pr_fname, sizeof pi.pr_fname, "%s", comm);
        snprintf(path, sizeof path, "/proc/%d/cmdline", k->pid);
        if (diag_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len) == 0) {
                size_t l = MIN(len, sizeof pi.pr_psargs - 1);
                for (size_t i = 0; i < l; i++)
                        pi.pr_psargs[i] = buf[i] ? buf[i] : ' ';
                while (l > 0 && pi.pr_psargs[l - 1] == ' ')
                        pi.pr_psargs[--l] = 0;
        }
        free(TAKE_PTR(buf));
        r = note_add(n, "CORE", NT_PRPSINFO, &pi, sizeof pi);
        if (r < 0)
                return r;

        /* No signal killed it: say SIGSTOP from the kernel, as gcore does. */
        si.si_signo = SIGSTOP;
        si.si_code = SI_KERNEL;
        r = note_add(n, "CORE", NT_SIGINFO, &si, sizeof si);
        if (r < 0)
                return r;

        snprintf(path, sizeof path, "/proc/%d/auxv", k->pid);
        if (diag_read_file_at(AT_FDCWD, path, 1 << 16, &buf, &len) == 0) {
                r = note_add(n, "CORE", NT_AUXV, buf, len);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* NT_FILE: count, page size, (start, end, offset in pages) each, then names. */
static int note_files(struct core *k, struct notes *n) {
        int r;
        {
                size_t count = 0, names = 0, off;
                _cleanup_free_ uint8_t *d = NULL;
                for (size_t i = 0; i < k->nrg; i++)
                        if (k->rg[i].path[0] == '/') {
                                count++;
                                names += strlen(k->rg[i].path) + 1;
                        }
                d = calloc(1, 16 + count * 24 + names);
                if (!d)
                        return -ENOMEM;
                memcpy(d, &(uint64_t) { count }, 8);
                memcpy(d + 8, &(uint64_t) { PAGE }, 8);
                off = 16;
                for (size_t i = 0; i < k->nrg; i++)
                        if (k->rg[i].path[0] == '/') {
                                const uint64_t tri[3] = { k->rg[i].start, k->rg[i].end, k->rg[i].pgoff };
                                memcpy(d + off, tri, sizeof tri);
                                off += sizeof tri;
                        }
                for (size_t i = 0; i < k->nrg; i++)
                        if (k->rg[i].path[0] == '/') {
                                size_t l = strlen(k->rg[i].path) + 1;
                                memcpy(d + off, k->rg[i].path, l);
                                off += l;
                        }
                r = note_add(n, "CORE", NT_FILE, d, off);
        }
        return r;
}

/* What the core lacks, in words, for whoever opens it: a note of its own
 * ("DIAGKIT", a type no reader of Linux cores gives a meaning to), one line per
 * thread whose registers could not be taken. */
#define NT_DIAGKIT_MISSING 0x44494147U  /* "DIAG" */

static int note_missing(struct core *k, struct notes *n) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;

        if (!k->res->threads_partial)
                return 0;
        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        if (k->res->not_stopped)
                fprintf(f, "process %d was not stopped: every thread was in uninterruptible sleep (D) or in a "
                        "wait an interrupt would end; its memory was read while it slept\n", k->pid);
        for (size_t i = 0; i < k->ntr; i++)
                if (k->tr[i].partial)
                        fprintf(f, "thread %d: not stopped: %s (system call %lld); only the program "
                                "counter, stack pointer and system call number and arguments are known (from "
                                "/proc/%d/task/%d/syscall), the other registers and the FPU state are not\n",
                                k->tr[i].tid, k->tr[i].why, (long long) k->tr[i].syscall_nr, k->pid, k->tr[i].tid);
        if (fclose(f) != 0)
                return -ENOMEM;
        return note_add(n, "DIAGKIT", NT_DIAGKIT_MISSING, text, len + 1);
}

static int build_notes(struct core *k, struct notes *n) {
        int r;

        for (size_t i = 0; i < k->ntr; i++) {
                const struct thread_regs *t = &k->tr[i];
                r = note_prstatus(k, n, t, k->pf);
                if (r < 0)
                        return r;
                if (i == 0) {
                        /* After the first thread's NT_PRSTATUS, as the kernel writes them. */
                        if (DIAG_GROW(n->p, n->alloc, n->len + k->proc_notes.len) < 0)
                                return -ENOMEM;
                        memcpy(n->p + n->len, k->proc_notes.p, k->proc_notes.len);
                        n->len += k->proc_notes.len;
                        r = note_files(k, n);
                        if (r < 0)
                                return r;
                }
                for (size_t s = 0; s < NREGSETS; s++)
                        if (t->setlen[s]) {
                                r = note_add(n, regsets[s].name, regsets[s].type, t->set[s], t->setlen[s]);
                                if (r < 0)
                                        return r;
                        }
        }
        return note_missing(k, n);
}

/* ---- the ELF file ----------------------------------------------------------- */

static int xlate(void *dst, const void *src, size_t size, Elf_Type type) {
        Elf_Data d = { .d_buf = dst, .d_size = size, .d_type = type, .d_version = EV_CURRENT };
        Elf_Data s = { .d_buf = (void *) src, .d_size = size, .d_type = type, .d_version = EV_CURRENT };
        return elf64_xlatetof(&d, &s, ELFDATA2LSB) ? 0 : -EINVAL;
}

static int write_core(struct core *k) {
        unsigned nworkers = 0;
        struct notes n = {};
        size_t nph = 1, hdr;
        bool xnum;
        uint64_t off;
        _cleanup_free_ uint8_t *head = NULL;
        Elf64_Ehdr eh = {};
        int r;

        infos_join(k);
        r = build_notes(k, &n);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < k->nrg; i++)
                nph++;
        xnum = nph >= PN_XNUM;
        hdr = sizeof(Elf64_Ehdr) + nph * sizeof(Elf64_Phdr) + (xnum ? sizeof(Elf64_Shdr) : 0);
        off = (hdr + n.len + PAGE - 1) & ~(PAGE - 1);
        for (size_t i = 0; i < k->nrg; i++) {
                struct region *g = &k->rg[i];
                g->filesz = g->dump == D_ALL ? g->end - g->start : g->dump == D_HEADER ? PAGE : 0;
                g->offset = off;
                off += g->filesz;
        }
        k->res->file_size = off;
        k->res->segments = (unsigned) k->nrg;

        head = calloc(1, hdr + n.len);
        if (!head) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
        eh.e_type = ET_CORE;
        eh.e_machine = CORE_MACHINE;
        eh.e_version = EV_CURRENT;
        eh.e_phoff = sizeof(Elf64_Ehdr);
        eh.e_ehsize = sizeof(Elf64_Ehdr);
        eh.e_phentsize = sizeof(Elf64_Phdr);
        eh.e_phnum = xnum ? PN_XNUM : (Elf64_Half) nph;
        if (xnum) {
                /* More than 65534 headers: the count lives in section header 0. */
                Elf64_Shdr sh = { .sh_info = (Elf64_Word) nph };
                eh.e_shoff = sizeof(Elf64_Ehdr) + nph * sizeof(Elf64_Phdr);
                eh.e_shentsize = sizeof(Elf64_Shdr);
                eh.e_shnum = 1;
                r = xlate(head + eh.e_shoff, &sh, sizeof sh, ELF_T_SHDR);
                if (r < 0)
                        goto out;
        }
        r = xlate(head, &eh, sizeof eh, ELF_T_EHDR);
        if (r < 0)
                goto out;
        {
                _cleanup_free_ Elf64_Phdr *ph = calloc(nph, sizeof *ph);
                if (!ph) {
                        r = -ENOMEM;
                        goto out;
                }
                ph[0] = (Elf64_Phdr) { .p_type = PT_NOTE, .p_offset = hdr, .p_filesz = n.len, .p_align = 4 };
                for (size_t i = 0; i < k->nrg; i++) {
                        const struct region *g = &k->rg[i];
                        ph[i + 1] = (Elf64_Phdr) {
                                .p_type = PT_LOAD, .p_offset = g->offset, .p_vaddr = g->start,
                                .p_filesz = g->filesz, .p_memsz = g->end - g->start, .p_align = PAGE,
                                .p_flags = (g->perms[0] == 'r' ? PF_R : 0) | (g->perms[1] == 'w' ? PF_W : 0) |
                                           (g->perms[2] == 'x' ? PF_X : 0),
                        };
                }
                r = xlate(head + sizeof eh, ph, nph * sizeof *ph, ELF_T_PHDR);
                if (r < 0)
                        goto out;
        }
        memcpy(head + hdr, n.p, n.len);
        r = out_write(&k->out, 0, head, hdr + n.len);
        if (r < 0)
                goto out;

        /* A file can be written anywhere at once: the copies are shared out among
         * threads. A stream is written in order, and --max-size counts as it goes. */
        if (k->out.seekable && !k->o->max_size && k->total_est >= PARALLEL_MIN) {
                long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                nworkers = (unsigned) MIN(ncpu > 1 ? ncpu - 1 : 0, (long) COPIERS_MAX);
                if (nworkers && DIAG_GROW(k->jobs, k->ajobs, 64) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        for (size_t i = 0; i < k->nrg; i++) {
                const struct region *g = &k->rg[i];
                if (g->dump == D_NONE)
                        continue;
                if (g->dump == D_HEADER)
                        r = copy_range(k, g, g->start, PAGE);
                else if (g->how == R_PAGEMAP)
                        r = copy_pagemap(k, g);
                else if (g->how == R_FILE)
                        r = copy_file(k, g);
                else
                        r = copy_range(k, g, g->start, g->filesz);
                if (r < 0)
                        goto out;
        }
        if (k->jobs) {
                r = run_jobs(k, nworkers);
                if (r < 0)
                        goto out;
        }
        r = out_finish(&k->out, off);
out:
        k->res->bytes += k->main.bytes;
        k->res->unreadable += k->main.unreadable;
        k->main.bytes = k->main.unreadable = 0;
        free(n.p);
        return r;
}

#if defined(__x86_64__)
/* gdb (13 and older, and any gdb when the core has no layout note) places the
 * XSAVE components at Intel's offsets, and wants the size they imply. Where the
 * CPU's own offsets differ (AMD places AVX-512 state right after AVX), move each
 * component to where gdb looks, as gcore writes it. */
static int xstate_for_gdb(uint8_t **set, size_t *len) {
        static const struct { unsigned bit; uint32_t off; } at[] = {
                { 2, 576 }, { 3, 960 }, { 4, 1024 }, { 5, 1088 }, { 6, 1152 }, { 7, 1664 }, { 9, 2688 },
        };
        uint64_t xcr0;
        size_t want;
        uint8_t *out;

        if (*len < 576)
                return 0;
        memcpy(&xcr0, *set + 464, 8);
        want = xcr0 & (1U << 9) ? 2696 : xcr0 & 0xe0 ? 2688 : xcr0 & 0x18 ? 1088 : xcr0 & 4 ? 832 : 576;
        if (want == *len)
                return 0;
        out = calloc(1, want);
        if (!out)
                return -ENOMEM;
        memcpy(out, *set, 576);
        for (size_t i = 0; i < ELEMENTSOF(at); i++) {
                uint32_t off, size;
                if ((xcr0 & (1ULL << at[i].bit)) && diag_xsave_component(at[i].bit, &off, &size) &&
                    (size_t) off + size <= *len && (size_t) at[i].off + size <= want)
                        memcpy(out + at[i].off, *set + off, size);
        }
        free(*set);
        *set = out;
        *len = want;
        return 0;
}
#endif

/* ---- the stop --------------------------------------------------------------- */

static int read_thread_regs(struct core *k, const struct diag_capture *c) {
        k->tr = calloc(c->n ? c->n : 1, sizeof *k->tr);
        if (!k->tr)
                return -ENOMEM;
        /* The main thread first: its NT_PRSTATUS names the process for gdb. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < c->n; i++) {
                        const struct diag_thread_capture *ct = &c->threads[i];
                        struct thread_regs *t;
                        struct iovec iov;

                        if ((pass == 0) != (ct->tid == c->pid) || ct->err == -ESRCH)
                                continue;
                        t = &k->tr[k->ntr];
                        t->tid = ct->tid;
                        iov = (struct iovec) { &t->regs, sizeof t->regs };
                        if (ct->err || ptrace(PTRACE_GETREGSET, ct->tid, (void *) NT_PRSTATUS, &iov) < 0) {
                                /* Not stopped (D state, or a wait an interrupt would
                                 * end): what /proc knows of it. */
                                uint64_t a[9];
                                char path[64], buf[256];
                                ssize_t n;
                                snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", c->pid, ct->tid);
                                n = diag_read_small_at(AT_FDCWD, path, buf, sizeof buf);
                                if (n <= 0 && ct->err)
                                        continue;
                                memset(a, 0, sizeof a);
                                if (n > 0)
                                        (void) sscanf(buf, "%" SCNi64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64
                                                      " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64,
                                                      (int64_t *) &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7], &a[8]);
                                memset(&t->regs, 0, sizeof t->regs);
#if defined(__x86_64__)
                                t->regs.orig_rax = a[0];
                                t->regs.rdi = a[1]; t->regs.rsi = a[2]; t->regs.rdx = a[3];
                                t->regs.r10 = a[4]; t->regs.r8 = a[5]; t->regs.r9 = a[6];
                                t->regs.rsp = a[7]; t->regs.rip = a[8];
                                t->regs.cs = 0x33; t->regs.ss = 0x2b;
#else
                                t->regs.regs[8] = a[0];
                                for (int r = 0; r < 6; r++)
                                        t->regs.regs[r] = a[1 + r];
                                t->regs.sp = a[7]; t->regs.pc = a[8];
#endif
                                t->partial = true;
                                snprintf(t->why, sizeof t->why, "%s",
                                         ct->not_stopped[0] ? ct->not_stopped : "in uninterruptible sleep (D)");
                                t->syscall_nr = n > 0 ? (long long) (int64_t) a[0] : -1;
                                k->res->threads_partial++;
                                k->ntr++;
                                continue;
                        }
                        for (size_t s = 0; s < NREGSETS; s++) {
                                uint8_t buf[REGSET_MAX];
                                iov = (struct iovec) { buf, sizeof buf };
                                if (ptrace(PTRACE_GETREGSET, ct->tid, (void *) (uintptr_t) regsets[s].type, &iov) < 0 ||
                                    iov.iov_len == 0)
                                        continue;
                                t->set[s] = malloc(iov.iov_len);
                                if (!t->set[s])
                                        return -ENOMEM;
                                memcpy(t->set[s], buf, iov.iov_len);
                                t->setlen[s] = iov.iov_len;
#if defined(__x86_64__)
                                if (regsets[s].type == NT_X86_XSTATE && xstate_for_gdb(&t->set[s], &t->setlen[s]) < 0)
                                        return -ENOMEM;
#endif
                        }
                        k->ntr++;
                }
        k->res->threads = (unsigned) k->ntr;
        return 0;
}


/* The memory image is in src (the target, or the forked child): plan, write. */
static int dump_from(struct core *k, pid_t src) {
        int r;

        if (!k->info_started)
                infos_start(k);
        r = src == k->pid && k->pre ? regions_while_stopped(k) : regions_from_smaps(k, src);
        if (r < 0) {
                infos_join(k);
                return r;
        }
        if (src != k->pid) {
                /* What the child did not inherit: wipe-on-fork memory reads as
                 * zeros there, don't-fork memory is absent. Both from the target. */
                for (size_t i = 0, n = k->nrg; i < n; i++)
                        if (k->rg[i].wf)
                                k->rg[i].src = k->pid;
                size_t n = k->nrg, j = 0;
                bool added = false;
                /* Both lists are in address order: one walk. */
                for (size_t i = 0; i < k->maps->n; i++) {
                        const struct diag_map *m = &k->maps->maps[i];
                        while (j < n && k->rg[j].end <= m->start)
                                j++;
                        if (j < n && k->rg[j].start < m->end)
                                continue;
                        if ((r = region_add(k, m, k->pid)) < 0)
                                return r;
                        added = true;
                }
                if (added)
                        qsort(k->rg, k->nrg, sizeof *k->rg, cmp_start);
        }
        r = plan(k);
        if (r < 0)
                return r;
        r = copier_init(&k->main, true);
        if (r < 0)
                return r;
        return write_core(k);
}

static int hook_stopped(void *userdata, const struct diag_capture *c) {
        struct core *k = userdata;
        const char *why = NULL;
        int r;

        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC);

        k->res->stopped = true;
        r = read_thread_regs(k, c);
        k->res->regs_ns = diag_now_ns(CLOCK_MONOTONIC) - t0;
        if (r < 0)
                return r;
        if (k->use_fork) {
                r = diag_inject_fork(c, k->maps, &k->gadgets, &k->fork, &why);
                if (r == 0) {
                        k->fork.guard_fd = k->guard_fd;
                        k->forked = true;
                        k->res->method = DIAG_CORE_FORK;
                        k->res->fork_ns = k->fork.fork_ns;
                        return 0;
                }
                k->res->fallback = why;
        }
        k->res->method = DIAG_CORE_STOP;
        /* Stopped for the whole copy, by choice: as long as the copy takes. */
        diag_guard_window_unbounded();
        t0 = diag_now_ns(CLOCK_MONOTONIC);
        r = dump_from(k, k->pid);
        k->res->write_ns = diag_now_ns(CLOCK_MONOTONIC) - t0;
        k->err = r;
        return r;
}

static int hook_released(void *userdata, const struct diag_capture *c) {
        struct core *k = userdata;
        int r;

        if (!k->forked)
                return k->err;
        uint64_t t0 = diag_now_ns(CLOCK_MONOTONIC), t1, t2;
        int prepared;

        infos_start(k);
        r = diag_inject_fork_prepare_child(&k->fork);
        prepared = r;
        t1 = diag_now_ns(CLOCK_MONOTONIC);
        if (r == 0)
                r = dump_from(k, k->fork.child);
        t2 = diag_now_ns(CLOCK_MONOTONIC);
        k->res->handover_ns = t1 - t0;
        k->res->write_ns = t2 - t1;
        {
                int e = diag_inject_fork_end(&k->fork);
                k->fork_clean = prepared == 0 && e == 0 && !k->fork.reap_error;
                k->res->end_ns = diag_now_ns(CLOCK_MONOTONIC) - t2;
                k->res->mended = k->fork.mended;
                if (k->fork.reap_error < 0)
                        e = k->fork.reap_error;
                if (e < 0)
                        k->res->reap_error = e == -ETIMEDOUT ? "no thread of the target stopped to reap it"
                                                             : "the reap failed";
        }
        k->err = r;
        return r;
}

/* Every thread of pid is in uninterruptible sleep (D): no ptrace stop will
 * reach it until it returns to user space, which may be never (a dead NFS or
 * FUSE server, a vfork parent). Nothing else. */
static bool all_threads_dstate(pid_t pid, pid_t **ret_tids, size_t *ret_n) {
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        if (diag_proc_list_tids(pid, &tids, &n) < 0 || n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char state = '?';
                if (diag_task_read_state(pid, tids[i], &state) < 0 || state != 'D')
                        return false;
        }
        *ret_tids = TAKE_PTR(tids);
        *ret_n = n;
        return true;
}

/* The core of a process that cannot be stopped (all_threads_dstate, or every
 * thread peeked): what /proc gives of each thread (pc, sp, system call and
 * arguments), and its memory read while it sleeps, which needs no stop. Pages
 * of files on a remote mount that are not in memory are not read, as always. */
static int dump_unstopped_capture(struct core *k, const struct diag_capture *c) {
        int r;

        k->res->not_stopped = true;
        k->res->method = DIAG_CORE_STOP;
        k->res->fallback = NULL;
        r = read_thread_regs(k, c);
        if (r < 0)
                return r;
        if (k->ntr == 0)
                return -ESRCH;
        return dump_from(k, k->pid);
}

static int dump_unstopped(struct core *k, pid_t *tids, size_t n) {
        _cleanup_free_ struct diag_thread_capture *th = calloc(n, sizeof *th);
        struct diag_capture c = { .pid = k->pid, .n = n, .threads = th };

        if (!th)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                th[i] = (struct diag_thread_capture) { .tid = tids[i], .err = -EDEADLK, .syscall_nr = -1 };
        return dump_unstopped_capture(k, &c);
}

int diag_core_write(pid_t pid, const struct diag_core_opts *o, int fd, struct diag_core_result *ret) {
        _cleanup_(diag_maps_freep) struct diag_maps *maps = NULL;
        _cleanup_(diag_capture_freep) struct diag_capture *c = NULL;
        struct core k = { .pid = pid, .o = o, .res = ret, .out = { .fd = fd }, .pagemap_fd = -1,
                       .main = { .fd = -1 }, .guard_fd = -1 };
        struct diag_capture_opts co = {};
        struct stat st;
        char path[64], buf[32];
        int r;

        *ret = (struct diag_core_result) {};
        if (elf_version(EV_CURRENT) == EV_NONE)
                return -ELIBBAD;
        k.out.seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) >= 0;
        if (o->filter_set)
                k.filter = o->filter;
        else {
                unsigned long long v = 0x33;
                snprintf(path, sizeof path, "/proc/%d/coredump_filter", pid);
                if (diag_read_small_at(AT_FDCWD, path, buf, sizeof buf) > 0) {
                        diag_strip(buf);
                        (void) diag_parse_ull(buf, 16, &v);
                }
                k.filter = (unsigned long) v;
        }
        k.filter = (k.filter | o->filter_add) & ~o->filter_remove;

        r = diag_maps_read(pid, &maps);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        k.maps = maps;
        r = diag_proc_read_remote_devs(pid, &k.remote);
        if (r < 0)
                return r;
        {
                char comm[64] = "";
                r = read_stat_fields(pid, 0, k.pf, ELEMENTSOF(k.pf), comm, sizeof comm);
                if (r == 0)
                        r = note_process(&k, &k.proc_notes, k.pf, comm);
                if (r < 0) {
                        free(k.proc_notes.p);
                        return r == -ENOENT ? -ESRCH : r;
                }
        }
        if (o->stacks_only) {
                uint64_t est = 0;
                /* A small core: copied during the stop when that is shorter
                 * than the fork. */
                if (stacks_only_estimate(&k, &est) == 0 && o->method == DIAG_CORE_FORK &&
                    stop_copy_faster(pid, est)) {
                        k.res->stop_chosen = true;
                        k.res->estimate = est;
                }
        }
        if (o->method == DIAG_CORE_FORK && !k.res->stop_chosen) {
                k.res->fallback = diag_inject_fork_unsuitable(pid);
                /* While it runs: the search reads part of its code. */
                if (!k.res->fallback && diag_inject_find_gadgets(pid, maps, &k.remote, &k.gadgets) < 0)
                        k.res->fallback = "no 'syscall; ret' and rt_sigreturn code found in its C library";
                k.use_fork = !k.res->fallback;
        }
        if (k.use_fork)
                k.guard_fd = diag_inject_guard_start(pid);
        co.no_stacks = true;
        co.timeout_ms = o->timeout_ms;
        co.stopped = hook_stopped;
        co.released = hook_released;
        co.userdata = &k;
        r = diag_capture_take(pid, &co, &c);
        if (r < 0 && !k.res->stopped && r != -EPERM && r != -EBUSY) {
                _cleanup_free_ pid_t *tids = NULL;
                size_t n = 0;
                if (all_threads_dstate(pid, &tids, &n))
                        r = dump_unstopped(&k, tids, n);
        } else if (r == 0 && !k.res->stopped) {
                /* Every thread was peeked, none stopped (each asleep in a call an
                 * interrupt would end): the same core as for D state, from the
                 * capture's reasons. */
                r = dump_unstopped_capture(&k, c);
        }
        infos_join(&k);
        /* Whatever a failed or cut-short fork left (a zombie, a thread still in
         * the call), the guard reaps once we have let go of the target. */
        diag_inject_guard_stop(k.guard_fd, !k.fork.ran || k.fork_clean, k.fork.unfinished);
        if (c)
                ret->pause_ns = c->pause_ns;
        if (r == 0 && k.err < 0)
                r = k.err;
        for (size_t i = 0; i < k.ntr; i++)
                for (size_t s = 0; s < NREGSETS; s++)
                        free(k.tr[i].set[s]);
        free(k.tr);
        for (size_t i = 0; i < k.nrg; i++)
                free(k.rg[i].path);
        free(k.rg);
        for (size_t i = 0; i < k.npre; i++)
                free(k.pre[i].path);
        free(k.pre);
        free(k.jobs);
        diag_remote_devs_done(&k.remote);
        free(k.pm);
        free(k.proc_notes.p);
        if (k.pagemap_fd >= 0)
                close(k.pagemap_fd);
        copier_done(&k.main);
        return r;
}
