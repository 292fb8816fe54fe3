/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dwarf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <libelf.h>

#include "diag/mem.h"
#include "diag/debugcache.h"
#include "diag/unwind.h"
#include "diag/util.h"
#include "unwind-internal.h"

/*
 * libdw's Dwfl does both halves: CFI unwinding through our own thread callbacks
 * (registers and stack bytes come from the capture, not from a live ptrace
 * session) and symbolization (symtab, DWARF scopes for inlines, line tables).
 */

struct diag_unwinder {
        pid_t pid;
        Dwfl *dwfl;
        bool attached;
        const struct diag_capture *cap;
        size_t cur;                     /* thread being unwound */
        /* diag_unwind_copy(): a one-thread capture refilled per sample, and reads
         * never go to the live process */
        bool copy_only;
        struct diag_capture one;
        struct diag_thread_capture one_thread;
        struct diag_module *mods;
        size_t nmods, allocmods;
        Dwfl_Module **modkeys;          /* parallel to mods */
        /* Symbolized frames by (pc, activation): threads of one process share
         * most of their pcs, and symbolizing is most of the cost. */
        struct symcache *cache;
        size_t ncache, nslots_cache;
        struct diag_frame *pool;        /* cached frames, strings owned here */
        size_t npool, allocpool;
};

struct symcache {
        uint64_t key;                   /* pc << 1 | activation; 0 = empty */
        size_t first, n;                /* range in pool */
};

static char *debuginfo_path = NULL;

static void hex_build_id(const unsigned char *bits, int len, char out[41]);

/*
 * Without DEBUGINFOD_URLS, does any place the standard search looks at hold a
 * file? When none does, that search ends in libdw 0.188's debuginfod fallback,
 * which loads libdebuginfod, libcurl and TLS libraries for nothing (about a
 * tenth of a run's CPU time, for the vdso alone). The places: by build-id, and
 * by debuglink next to the file, in its .debug/ and under /usr/lib/debug.
 */
static bool worth_searching(const char *file_name, const char *debuglink, const char *build_id) {
        const char *urls = getenv("DEBUGINFOD_URLS"), *slash;
        char path[4096 + 512];

        if (urls && urls[0])
                return true;
        if (build_id) {
                snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%.2s/%s.debug", build_id, build_id + 2);
                if (access(path, F_OK) == 0)
                        return true;
        }
        if (!debuglink || !file_name || file_name[0] != '/' || !(slash = strrchr(file_name, '/')))
                return false;
        {
                int dl = (int) (slash - file_name);
                snprintf(path, sizeof path, "%.*s/%s", dl, file_name, debuglink);
                if (access(path, F_OK) == 0 && strcmp(path, file_name) != 0)
                        return true;
                snprintf(path, sizeof path, "%.*s/.debug/%s", dl, file_name, debuglink);
                if (access(path, F_OK) == 0)
                        return true;
                snprintf(path, sizeof path, "/usr/lib/debug%.*s/%s", dl, file_name, debuglink);
                if (access(path, F_OK) == 0)
                        return true;
        }
        return false;
}

/* A debug file with compressed sections (Debian's, under /usr/lib/debug/.build-id)
 * is opened through its decompressed copy (see diag/debugcache.h). This comes
 * before the standard search: that one keeps the ELF handle of the file it
 * found, so an fd returned after it would not be used. The name stays the
 * debug file's: libdw looks for a dwz file next to it. */
int diag_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                        const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                        char **debuginfo_file_name) {
        const unsigned char *bits;
        GElf_Addr vaddr;
        char id[41], path[128];
        int len = dwfl_module_build_id(mod, &bits, &vaddr);

        if (len > 1 && len <= 20) {
                _cleanup_close_ int fd = -1;
                int cfd;

                hex_build_id(bits, len, id);
                snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0 && (cfd = diag_debugcache_open(fd, id, NULL)) >= 0) {
                        *debuginfo_file_name = strdup(path);
                        return cfd;
                }
        }
        if (!worth_searching(file_name, debuglink_file, len > 1 && len <= 20 ? id : NULL))
                return -1;
        return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                            debuglink_crc, debuginfo_file_name);
}

static const Dwfl_Callbacks proc_callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = diag_find_debuginfo,
        .debuginfo_path = &debuginfo_path,
};

const char *diag_debuginfo_name(enum diag_debuginfo d) {
        switch (d) {
        case DIAG_DEBUG_FOUND: return "found";
        case DIAG_DEBUG_MISSING: return "missing";
        case DIAG_DEBUG_MISMATCH: return "mismatch";
        default: return "unknown";
        }
}

int diag_unwinder_new(pid_t pid, struct diag_unwinder **ret) {
        struct diag_unwinder *u;
        int r;

        u = calloc(1, sizeof *u);
        if (!u)
                return -ENOMEM;
        u->pid = pid;
        u->dwfl = dwfl_begin(&proc_callbacks);
        if (!u->dwfl) {
                free(u);
                return -ENOMEM;
        }
        dwfl_report_begin(u->dwfl);
        r = dwfl_linux_proc_report(u->dwfl, pid);
        dwfl_report_end(u->dwfl, NULL, NULL);
        if (r != 0) {
                diag_unwinder_free(u);
                return r > 0 ? (r == ENOENT ? -ESRCH : -r) : -EIO;
        }
        *ret = u;
        return 0;
}

struct diag_unwinder *diag_unwinder_free(struct diag_unwinder *u) {
        if (!u)
                return NULL;
        for (size_t i = 0; i < u->nmods; i++) {
                free(u->mods[i].path);
                free(u->mods[i].debug_path);
                free(u->mods[i].debug_note);
        }
        free(u->mods);
        free(u->modkeys);
        for (size_t i = 0; i < u->npool; i++) {
                free(u->pool[i].func);
                free(u->pool[i].file);
        }
        free(u->pool);
        free(u->cache);
        if (u->dwfl)
                dwfl_end(u->dwfl);
        free(u);
        return NULL;
}

/* ---- thread callbacks: everything comes from the capture ----
 * A thread's thread_arg is its capture entry; next_thread uses it as the cursor. */

/* Stopped, or read while it slept (pc and sp only). */
static bool has_regs(const struct diag_thread_capture *t) {
        return !t->err || t->peeked;
}

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **thread_argp) {
        struct diag_unwinder *u = arg;
        const struct diag_thread_capture *prev = *thread_argp;
        size_t i = prev ? (size_t) (prev - u->cap->threads) + 1 : 0;

        while (i < u->cap->n && !has_regs(&u->cap->threads[i]))
                i++;
        if (i >= u->cap->n)
                return 0;
        *thread_argp = (void *) &u->cap->threads[i];
        return u->cap->threads[i].tid;
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp) {
        struct diag_unwinder *u = arg;

        for (size_t i = 0; i < u->cap->n; i++)
                if (u->cap->threads[i].tid == tid && has_regs(&u->cap->threads[i])) {
                        *thread_argp = (void *) &u->cap->threads[i];
                        return true;
                }
        return false;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg) {
        struct diag_unwinder *u = arg;
        const struct diag_thread_capture *t = &u->cap->threads[u->cur];
        uint64_t v;

        if (addr >= t->stack_start && addr + sizeof v <= t->stack_start + t->stack_len) {
                memcpy(&v, t->stack + (addr - t->stack_start), sizeof v);
                *result = v;
                return true;
        }
        if (u->copy_only)
                return false;
        /* Outside the copy (a frame deeper than --stack-size, another mapping):
         * read the live process. Rare, and such memory seldom changes under us. */
        if (diag_mem_read(u->pid, addr, &v, sizeof v) != (ssize_t) sizeof v)
                return false;
        *result = v;
        return true;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *thread_arg) {
        const struct diag_thread_capture *t = thread_arg;

        if (t->peeked) {
                /* Only the stack pointer is known: the walk goes as far as the
                 * frames' CFA rules need nothing else (no frame pointer). */
#if defined(__x86_64__)
                const int sp_reg = 7;
#else
                const int sp_reg = 31;
#endif
                Dwarf_Word sp = t->sp;
                if (!dwfl_thread_state_registers(thread, sp_reg, 1, &sp))
                        return false;
                dwfl_thread_state_register_pc(thread, t->pc);
                return true;
        }
        if (!dwfl_thread_state_registers(thread, 0, t->ndwarf_regs, t->dwarf_regs))
                return false;
        dwfl_thread_state_register_pc(thread, t->pc);
        return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
        .next_thread = cb_next_thread,
        .get_thread = cb_get_thread,
        .memory_read = cb_memory_read,
        .set_initial_registers = cb_set_initial_registers,
};

/* ---- modules and their debuginfo ---- */

static void hex_build_id(const unsigned char *bits, int len, char out[41]) {
        int n = MIN(len, 20);
        for (int i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", bits[i]);
        out[2 * n] = 0;
}

static int file_build_id(const char *path, char out[41]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        Elf *elf;
        const void *bits;
        ssize_t len;

        out[0] = 0;
        if (fd < 0)
                return negative_errno();
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!elf)
                return -EINVAL;
        len = dwelf_elf_gnu_build_id(elf, &bits);
        if (len > 0)
                hex_build_id(bits, (int) len, out);
        elf_end(elf);
        return len > 0 ? 0 : -ENODATA;
}

/* No DWARF was found for the module. Was there a separate debug file that
 * dwfl_standard_find_debuginfo rejected because its build-id differs? Look where
 * debuggers look: by debuglink next to the file, in .debug/, and under
 * /usr/lib/debug mirroring the file's directory; and /usr/lib/debug/PATH.debug. */
static void check_debug_mismatch(Dwfl_Module *mod, struct diag_module *m) {
        Dwarf_Addr bias;
        Elf *elf = dwfl_module_getelf(mod, &bias);
        const char *link = NULL;
        GElf_Word crc;
        char dir[4096], cand[4][4096 + 512];
        size_t ncand = 0;
        const char *slash;

        if (!m->path || m->path[0] != '/' || !m->build_id[0])
                return;
        slash = strrchr(m->path, '/');
        snprintf(dir, sizeof dir, "%.*s", (int) (slash - m->path), m->path);
        if (elf)
                link = dwelf_elf_gnu_debuglink(elf, &crc);
        if (link) {
                snprintf(cand[ncand++], sizeof cand[0], "%s/%s", dir, link);
                snprintf(cand[ncand++], sizeof cand[0], "%s/.debug/%s", dir, link);
                snprintf(cand[ncand++], sizeof cand[0], "/usr/lib/debug%s/%s", dir, link);
        }
        snprintf(cand[ncand++], sizeof cand[0], "/usr/lib/debug%s.debug", m->path);
        for (size_t i = 0; i < ncand; i++) {
                char id[41];
                struct stat st;

                if (strcmp(cand[i], m->path) == 0 || stat(cand[i], &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (file_build_id(cand[i], id) < 0 || strcmp(id, m->build_id) == 0)
                        continue;
                m->debuginfo = DIAG_DEBUG_MISMATCH;
                free(m->debug_path);
                m->debug_path = strdup(cand[i]);
                free(m->debug_note);
                if (asprintf(&m->debug_note, "%s has build-id %s, the module has %s", cand[i],
                             id[0] ? id : "(none)", m->build_id) < 0)
                        m->debug_note = NULL;
                return;
        }
}

static int module_index(struct diag_unwinder *u, Dwfl_Module *mod) {
        struct diag_module *m;
        const char *name, *mainfile = NULL, *debugfile = NULL;
        Dwarf_Addr start, end, bias, vaddr;
        const unsigned char *bits;
        int len;

        if (!mod)
                return -1;
        for (size_t i = 0; i < u->nmods; i++)
                if (u->modkeys[i] == mod)
                        return (int) i;
        if (DIAG_GROW(u->mods, u->allocmods, u->nmods + 1) < 0)
                return -1;
        {
                Dwfl_Module **nk = realloc(u->modkeys, u->allocmods * sizeof *nk);
                if (!nk)
                        return -1;
                u->modkeys = nk;
        }
        m = &u->mods[u->nmods];
        memset(m, 0, sizeof *m);
        u->modkeys[u->nmods] = mod;

        name = dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, NULL, NULL);
        m->start = start;
        m->end = end;
        /* getdwarf loads the ELF file first: only then is its build-id known */
        m->debuginfo = dwfl_module_getdwarf(mod, &bias) ? DIAG_DEBUG_FOUND : DIAG_DEBUG_MISSING;
        len = dwfl_module_build_id(mod, &bits, &vaddr);
        if (len > 0)
                hex_build_id(bits, len, m->build_id);
        (void) dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &mainfile, &debugfile);
        m->path = strdup(mainfile ? mainfile : (name ? name : "?"));
        if (m->debuginfo == DIAG_DEBUG_FOUND)
                m->debug_path = strdup(debugfile ? debugfile : (mainfile ? mainfile : ""));
        else
                check_debug_mismatch(mod, m);
        return (int) u->nmods++;
}

size_t diag_unwinder_n_modules(const struct diag_unwinder *u) {
        return u->nmods;
}

const struct diag_module *diag_unwinder_module(const struct diag_unwinder *u, size_t i) {
        return i < u->nmods ? &u->mods[i] : NULL;
}

/* ---- symbolization ---- */

static int frames_push(struct diag_stack *s, size_t *alloc, const struct diag_frame *f) {
        if (DIAG_GROW(s->frames, *alloc, s->n + 1) < 0)
                return -ENOMEM;
        s->frames[s->n++] = *f;
        return 0;
}

static const char *die_name(Dwarf_Die *die) {
        Dwarf_Attribute a;
        const char *n;

        /* Inlined instances name their function through DW_AT_abstract_origin. */
        n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
        return n;
}

static const char *call_file(Dwarf_Die *cudie, Dwarf_Die *die) {
        Dwarf_Attribute a;
        Dwarf_Word idx;
        Dwarf_Files *files;
        size_t nfiles;

        if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &idx) != 0)
                return NULL;
        if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0 || idx >= nfiles)
                return NULL;
        return dwarf_filesrc(files, idx, NULL, NULL);
}

static int call_line(Dwarf_Die *die) {
        Dwarf_Attribute a;
        Dwarf_Word line;

        if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &line) != 0)
                return 0;
        return (int) line;
}

static char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* DWARF names sources relative to the compilation directory when the compiler
 * was given a relative path ("../src/x.c"): join them with DW_AT_comp_dir, and
 * fold "dir/.." so the path reads as what it is. */
static char *source_path(Dwarf_Die *cu, const char *file) {
        Dwarf_Attribute a;
        const char *dir;
        char *joined, *out;
        size_t n = 0;

        if (!file)
                return NULL;
        /* a relative comp_dir (distribution builds use "./nptl") helps no one */
        if (file[0] == '/' || !cu || !(dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a))) || dir[0] != '/')
                return strdup(file);
        if (asprintf(&joined, "%s/%s", dir, file) < 0)
                return NULL;
        out = malloc(strlen(joined) + 2);
        if (!out) {
                free(joined);
                return NULL;
        }
        for (char *save = NULL, *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (strcmp(c, ".") == 0)
                        continue;
                if (strcmp(c, "..") == 0) {
                        while (n > 0 && out[n - 1] != '/')
                                n--;
                        if (n > 0)
                                n--;
                        continue;
                }
                out[n++] = '/';
                memcpy(out + n, c, strlen(c));
                n += strlen(c);
        }
        if (n == 0)
                out[n++] = '/';
        out[n] = 0;
        free(joined);
        return out;
}

#define MAX_SCOPES 256

/*
 * The DIEs under the CU that contain pc, outermost first: the function, the
 * inlined calls and blocks within it. This is what dwarf_getscopes() gives
 * (innermost first) without its second search, for the scopes around the
 * abstract definition of an inlined function, which is not needed here:
 * die_name() follows DW_AT_abstract_origin itself. That search is also where
 * libdw 0.188 goes wrong: when it does not find the definition (DWARF
 * rewritten by dwz, as Debian's python3.11 debuginfo is, keeps it in a partial
 * unit), dwarf_getscopes() returns 0 scopes and never frees the array it made
 * (a leak in libdw, no pointer reaches the caller), and the inlined frames
 * are lost.
 */
static int pc_scopes(Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die *ret, int max) {
        Dwarf_Die die = *cudie, child;
        int n = 0;

        while (n < max && dwarf_child(&die, &child) == 0) {
                bool found = false;
                do {
                        /* dwarf_haspc fails for DIEs without addresses: not a match */
                        if (dwarf_haspc(&child, pc) > 0) {
                                found = true;
                                break;
                        }
                } while (dwarf_siblingof(&child, &child) == 0);
                if (!found)
                        break;
                ret[n++] = child;
                die = child;
        }
        return n;
}

/* Push the frames for one physical pc: inlined calls innermost first, then the
 * function the code physically belongs to. */
static int symbolize_pc(struct diag_unwinder *u, struct diag_stack *s, size_t *alloc,
                        uint64_t pc, bool activation, bool inlines) {
        Dwarf_Addr lookup = activation ? pc : pc - 1;
        Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, lookup);
        struct diag_frame phys = { .pc = pc, .activation = activation, .module = -1 };
        const char *file = NULL;
        Dwarf_Die *file_cu = NULL;
        int line = 0;
        int r;

        if (mod) {
                GElf_Off off = 0;
                GElf_Sym sym;
                const char *name;
                Dwfl_Line *ln;

                phys.module = module_index(u, mod);
                name = dwfl_module_addrinfo(mod, lookup, &off, &sym, NULL, NULL, NULL);
                if (name) {
                        phys.func = strdup(name);
                        phys.func_off = activation ? off : off + 1;
                }
                ln = dwfl_module_getsrc(mod, lookup);
                if (ln) {
                        file = dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL);
                        file_cu = dwfl_linecu(ln);
                }
        }

        if (mod && inlines) {
                Dwarf_Addr bias;
                Dwarf_Die *cudie = dwfl_module_addrdie(mod, lookup, &bias);
                Dwarf_Die scopes[MAX_SCOPES];
                int n = cudie ? pc_scopes(cudie, lookup - bias, scopes, MAX_SCOPES) : 0;

                for (int i = n - 1; i >= 0; i--) {
                        int tag = dwarf_tag(&scopes[i]);
                        if (tag == DW_TAG_inlined_subroutine) {
                                struct diag_frame f = {
                                        .pc = pc, .activation = activation, .module = phys.module,
                                        .inlined = true,
                                        .func = strdup_or_null(die_name(&scopes[i])),
                                        .file = source_path(file_cu, file), .line = line,
                                };
                                r = frames_push(s, alloc, &f);
                                if (r < 0)
                                        return r;
                                /* the caller is at this inlined call's call site */
                                file = call_file(cudie, &scopes[i]);
                                file_cu = cudie;
                                line = call_line(&scopes[i]);
                        } else if (tag == DW_TAG_subprogram) {
                                if (!phys.func)
                                        phys.func = strdup_or_null(die_name(&scopes[i]));
                                break;
                        }
                }
        }
        phys.file = source_path(file_cu, file);
        phys.line = line;
        return frames_push(s, alloc, &phys);
}

static struct symcache *cache_slot(struct diag_unwinder *u, uint64_t key) {
        size_t mask = u->nslots_cache - 1;
        for (size_t h = (size_t) (key * 0x9e3779b97f4a7c15ULL >> 20) & mask;; h = (h + 1) & mask)
                if (u->cache[h].key == key || u->cache[h].key == 0)
                        return &u->cache[h];
}

static int cache_grow(struct diag_unwinder *u) {
        struct symcache *old = u->cache;
        size_t oldn = u->nslots_cache, n = oldn ? oldn * 2 : 1024;

        u->cache = calloc(n, sizeof *u->cache);
        if (!u->cache) {
                u->cache = old;
                return -ENOMEM;
        }
        u->nslots_cache = n;
        for (size_t i = 0; i < oldn; i++)
                if (old[i].key)
                        *cache_slot(u, old[i].key) = old[i];
        free(old);
        return 0;
}

/* Append the frames for pc to s, symbolizing once per distinct pc. Frame strings
 * stay owned by the unwinder. */
static int symbolize_cached(struct diag_unwinder *u, struct diag_stack *s, size_t *alloc,
                            uint64_t pc, bool activation, bool inlines) {
        uint64_t key = pc << 1 | (activation ? 1 : 0);
        struct symcache *c;
        int r;

        if (key == 0)
                key = 2;        /* pc 0 never resolves anyway; keep 0 as "empty" */
        if (u->ncache * 2 >= u->nslots_cache && cache_grow(u) < 0)
                return -ENOMEM;
        c = cache_slot(u, key);
        if (c->key == 0) {
                struct diag_stack tmp = { .frames = u->pool, .n = u->npool };
                size_t first = u->npool;

                r = symbolize_pc(u, &tmp, &u->allocpool, pc, activation, inlines);
                u->pool = tmp.frames;
                u->npool = tmp.n;
                if (r < 0)
                        return r;
                c = cache_slot(u, key);
                *c = (struct symcache) { .key = key, .first = first, .n = u->npool - first };
                u->ncache++;
        }
        if (DIAG_GROW(s->frames, *alloc, s->n + c->n) < 0)
                return -ENOMEM;
        memcpy(s->frames + s->n, u->pool + c->first, c->n * sizeof *s->frames);
        s->n += c->n;
        return 0;
}

struct walk {
        struct diag_unwinder *u;
        struct diag_stack *s;
        size_t alloc;
        size_t max_frames;
        bool inlines;
        int err;
};

static int frame_cb(Dwfl_Frame *state, void *arg) {
        struct walk *w = arg;
        Dwarf_Addr pc;
        bool activation;
        int r;

        if (!dwfl_frame_pc(state, &pc, &activation))
                return DWARF_CB_ABORT;
        /* max_frames counts every frame shown, inlined ones included */
        if (w->s->n >= w->max_frames) {
                w->s->truncated = true;
                return DWARF_CB_ABORT;
        }
        r = symbolize_cached(w->u, w->s, &w->alloc, pc, activation, w->inlines);
        if (r < 0) {
                w->err = r;
                return DWARF_CB_ABORT;
        }
        if (w->s->n > w->max_frames) {
                w->s->n = w->max_frames;
                w->s->truncated = true;
                return DWARF_CB_ABORT;
        }
        return DWARF_CB_OK;
}

int diag_unwind(struct diag_unwinder *u, const struct diag_capture *c, size_t thread_idx,
                size_t max_frames, bool inlines, struct diag_stack *ret) {
        const struct diag_thread_capture *t = &c->threads[thread_idx];
        struct walk w = { .u = u, .s = ret, .max_frames = max_frames ? max_frames : 64, .inlines = inlines };
        int r;

        memset(ret, 0, sizeof *ret);
        if (!has_regs(t))
                return t->err;
        if (!u->attached) {
                u->cap = c;
                if (!dwfl_attach_state(u->dwfl, NULL, c->pid, &thread_callbacks, u)) {
                        ret->err = -EIO;
                        ret->err_msg = strdup_or_null(dwfl_errmsg(-1));
                        return -EIO;
                }
                u->attached = true;
        }
        if (u->cap != c)
                return -EINVAL;
        u->cur = thread_idx;
        r = dwfl_getthread_frames(u->dwfl, t->tid, frame_cb, &w);
        if (w.err < 0)
                return w.err;
        if (r == -1 && !ret->truncated) {
                /* Ran out of CFI, or hit unreadable memory, before the outermost frame. */
                ret->err = -ENODATA;
                ret->err_msg = strdup_or_null(dwfl_errmsg(-1));
        }
        return 0;
}

int diag_unwind_copy(struct diag_unwinder *u, const struct diag_thread_capture *t,
                     size_t max_frames, bool inlines, struct diag_stack *ret) {
        struct walk w = { .u = u, .s = ret, .alloc = ret->n, .max_frames = max_frames ? max_frames : 64,
                          .inlines = inlines };
        int r;

        if (t->err)
                return t->err;
        if (u->attached && !u->copy_only)
                return -EINVAL;
        u->one_thread = *t;
        if (!u->attached) {
                u->copy_only = true;
                u->one = (struct diag_capture) { .pid = u->pid, .n = 1, .threads = &u->one_thread };
                u->cap = &u->one;
                if (!dwfl_attach_state(u->dwfl, NULL, u->pid, &thread_callbacks, u)) {
                        ret->err = -EIO;
                        free(ret->err_msg);
                        ret->err_msg = strdup_or_null(dwfl_errmsg(-1));
                        return -EIO;
                }
                u->attached = true;
        }
        u->cur = 0;
        if (ret->n >= w.max_frames) {
                ret->truncated = true;
                return 0;
        }
        r = dwfl_getthread_frames(u->dwfl, t->tid, frame_cb, &w);
        if (w.err < 0)
                return w.err;
        if (r == -1 && !ret->truncated) {
                ret->err = -ENODATA;
                free(ret->err_msg);
                ret->err_msg = strdup_or_null(dwfl_errmsg(-1));
        }
        return 0;
}

bool diag_unwinder_covers(struct diag_unwinder *u, uint64_t addr) {
        return dwfl_addrmodule(u->dwfl, addr) != NULL;
}

static int any_module_cb(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start, void *arg) {
        *(bool *) arg = true;
        return DWARF_CB_ABORT;
}

bool diag_unwinder_has_modules(struct diag_unwinder *u) {
        bool any = false;

        (void) dwfl_getmodules(u->dwfl, any_module_cb, &any, 0);
        return any;
}

void diag_stack_clear(struct diag_stack *s) {
        if (!s)
                return;
        free(s->frames);        /* the strings belong to the unwinder's cache */
        free(s->err_msg);
        memset(s, 0, sizeof *s);
}

bool diag_stack_equal(const struct diag_stack *a, const struct diag_stack *b) {
        if (a->n != b->n || (a->err != 0) != (b->err != 0))
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (a->frames[i].pc != b->frames[i].pc || a->frames[i].inlined != b->frames[i].inlined)
                        return false;
        return true;
}

int diag_unwinder_symbolize(struct diag_unwinder *u, uint64_t addr, char **ret_func,
                            uint64_t *ret_off, int *ret_module) {
        Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, addr);
        GElf_Off off = 0;
        GElf_Sym sym;
        const char *name;

        if (!mod)
                return -ENOENT;
        name = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
        if (ret_module)
                *ret_module = module_index(u, mod);
        if (ret_func)
                *ret_func = strdup_or_null(name);
        if (ret_off)
                *ret_off = off;
        return 0;
}

void diag_strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

int diag_unwind_thread_lines(pid_t pid, pid_t tid, size_t max_frames, char ***ret) {
        _cleanup_(diag_maps_freep) struct diag_maps *maps = NULL;
        _cleanup_(diag_unwinder_freep) struct diag_unwinder *u = NULL;
        _cleanup_(diag_capture_freep) struct diag_capture *c = NULL;
        struct diag_capture_opts o = { .tids = &tid, .ntids = 1, .stack_max = 64 * 1024 };
        struct diag_stack s = {};
        char **v;
        int r;

        if ((r = diag_maps_read(pid, &maps)) < 0 || (r = diag_unwinder_new(pid, &u)) < 0)
                return r;
        o.maps = maps;
        r = diag_capture_take(pid, &o, &c);
        if (r < 0)
                return r;
        if (c->n == 0 || c->threads[0].err)
                return c->n ? c->threads[0].err : -ESRCH;
        r = diag_unwind(u, c, 0, max_frames, true, &s);
        if (r < 0)
                return r;
        v = calloc(s.n + 1, sizeof *v);
        if (!v) {
                diag_stack_clear(&s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s.n; i++) {
                const struct diag_frame *f = &s.frames[i];
                const struct diag_module *m = f->module >= 0 ? diag_unwinder_module(u, (size_t) f->module) : NULL;
                const char *mod = m && m->path ? (strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path) : "?";
                char line[32];

                snprintf(line, sizeof line, ":%d", f->line);
                if (asprintf(&v[i], "%s%s%s (%s)%s%s%s", f->func ? f->func : "??", f->inlined ? " [inlined]" : "",
                             "", mod, f->file ? " " : "", f->file ? f->file : "", f->file ? line : "") < 0)
                        v[i] = NULL;
        }
        diag_stack_clear(&s);
        *ret = v;
        return 0;
}
