/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dwarf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include "diag/sym.h"
#include "diag/util.h"
#include "unwind-internal.h"

struct load_seg {
        uint64_t offset, filesz, memsz, vaddr;
};

/* What one address of a file resolved to: symbols and CFI are asked again and
 * again for the same few return addresses when many threads wait alike. */
struct addr_memo {
        uint64_t vaddr;                 /* 0: empty slot */
        const char *name;
        uint64_t off;
        int64_t cfa_off;
        signed char cfa_state;          /* 0 not looked up, 1 sp-based, -1 not */
        bool name_done;
};

struct symfile {
        struct addr_memo *memo;
        size_t nmemo, amemo;
        unsigned dev_major, dev_minor;
        uint64_t inode;
        char *path;
        bool failed;
        Dwfl *dwfl;                     /* one per file: ET_EXEC files would overlap in a shared one */
        Dwfl_Module *mod;
        struct load_seg *segs;
        size_t nsegs;
};

struct diag_symcache {
        struct symfile *files;
        size_t n, alloc;
};

static char *debuginfo_path;
static const Dwfl_Callbacks offline_callbacks = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = diag_find_debuginfo,
        .section_address = dwfl_offline_section_address,
        .debuginfo_path = &debuginfo_path,
};

int diag_symcache_new(struct diag_symcache **ret) {
        *ret = calloc(1, sizeof **ret);
        return *ret ? 0 : -ENOMEM;
}

struct diag_symcache *diag_symcache_free(struct diag_symcache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n; i++) {
                if (c->files[i].dwfl)
                        dwfl_end(c->files[i].dwfl);
                free(c->files[i].path);
                free(c->files[i].segs);
                free(c->files[i].memo);
        }
        free(c->files);
        free(c);
        return NULL;
}

static int load_file(struct symfile *f) {
        Dwarf_Addr bias;
        Elf *elf;
        size_t nph;

        f->dwfl = dwfl_begin(&offline_callbacks);
        if (!f->dwfl)
                return -ENOMEM;
        dwfl_report_begin(f->dwfl);
        f->mod = dwfl_report_elf(f->dwfl, f->path, f->path, -1, 0, false);
        dwfl_report_end(f->dwfl, NULL, NULL);
        if (!f->mod)
                return -ENOENT;
        elf = dwfl_module_getelf(f->mod, &bias);
        if (!elf || elf_getphdrnum(elf, &nph) < 0)
                return -EINVAL;
        f->segs = calloc(nph ? nph : 1, sizeof *f->segs);
        if (!f->segs)
                return -ENOMEM;
        for (size_t i = 0; i < nph; i++) {
                GElf_Phdr ph;
                if (gelf_getphdr(elf, (int) i, &ph) && ph.p_type == PT_LOAD)
                        f->segs[f->nsegs++] = (struct load_seg) { ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_vaddr + bias };
        }
        return 0;
}

/* The file behind a mapping, loaded on first use. A file deleted (or replaced
 * by a rebuild) since it was mapped is still there behind the process's
 * map_files link. */
static struct symfile *file_of(struct diag_symcache *c, const struct diag_map *m, pid_t pid) {
        struct symfile *f;

        if (!m->path || m->path[0] != '/' || !m->inode)
                return NULL;
        for (size_t i = 0; i < c->n; i++)
                if (c->files[i].inode == m->inode && c->files[i].dev_major == m->dev_major &&
                    c->files[i].dev_minor == m->dev_minor)
                        return c->files[i].failed ? NULL : &c->files[i];
        if (DIAG_GROW(c->files, c->alloc, c->n + 1) < 0)
                return NULL;
        f = &c->files[c->n++];
        *f = (struct symfile) { .dev_major = m->dev_major, .dev_minor = m->dev_minor, .inode = m->inode };
        {
                size_t l = strlen(m->path);
                if (l > 10 && strcmp(m->path + l - 10, " (deleted)") == 0 && pid > 0) {
                        if (asprintf(&f->path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start, m->end) < 0)
                                f->path = NULL;
                } else
                        f->path = strdup(m->path);
        }
        if (!f->path || load_file(f) < 0) {
                f->failed = true;
                return NULL;
        }
        return f;
}

/* Process address -> the file's own (link-time) address. fm is a mapping of
 * the file; it gives the load bias, and the address may lie past the file's
 * pages (.bss, in the anonymous mapping that follows). */
static bool to_file_vaddr(const struct symfile *f, const struct diag_map *fm, uint64_t addr, uint64_t *ret) {
        uint64_t bias = 0, v;
        bool have_bias = false;

        for (size_t i = 0; i < f->nsegs; i++) {
                const struct load_seg *sg = &f->segs[i];
                /* mappings start at page boundaries: compare pages */
                uint64_t seg_page = sg->offset & ~(uint64_t) 0xfff;
                if (fm->offset >= seg_page && fm->offset < sg->offset + MAX(sg->filesz, (uint64_t) 1)) {
                        bias = fm->start - (sg->vaddr - (sg->offset - fm->offset));
                        have_bias = true;
                        break;
                }
        }
        if (!have_bias)
                return false;
        v = addr - bias;
        for (size_t i = 0; i < f->nsegs; i++)
                if (v >= f->segs[i].vaddr && v < f->segs[i].vaddr + f->segs[i].memsz) {
                        *ret = v;
                        return true;
                }
        return false;
}

static struct addr_memo *memo_slot(struct symfile *f, uint64_t v) {
        size_t mask;

        if (v == 0)
                return NULL;
        if (f->nmemo * 2 >= f->amemo) {
                size_t na = f->amemo ? f->amemo * 2 : 256;
                struct addr_memo *nm = calloc(na, sizeof *nm);
                if (!nm)
                        return NULL;
                for (size_t i = 0; i < f->amemo; i++)
                        if (f->memo[i].vaddr) {
                                size_t h = (size_t) (f->memo[i].vaddr * 0x9e3779b97f4a7c15ULL >> 17) & (na - 1);
                                while (nm[h].vaddr)
                                        h = (h + 1) & (na - 1);
                                nm[h] = f->memo[i];
                        }
                free(f->memo);
                f->memo = nm;
                f->amemo = na;
        }
        mask = f->amemo - 1;
        for (size_t h = (size_t) (v * 0x9e3779b97f4a7c15ULL >> 17) & mask;; h = (h + 1) & mask) {
                if (f->memo[h].vaddr == v)
                        return &f->memo[h];
                if (!f->memo[h].vaddr) {
                        f->memo[h] = (struct addr_memo) { .vaddr = v };
                        f->nmemo++;
                        return &f->memo[h];
                }
        }
}

/* Symbol at a file address, remembered. */
static const char *memo_name(struct symfile *f, uint64_t v, uint64_t *ret_off) {
        struct addr_memo *m = memo_slot(f, v);
        GElf_Off off = 0;
        GElf_Sym sym;
        const char *name;

        if (m && m->name_done) {
                *ret_off = m->off;
                return m->name;
        }
        name = dwfl_module_addrinfo(f->mod, v, &off, &sym, NULL, NULL, NULL);
        if (m) {
                m->name = name;
                m->off = off;
                m->name_done = true;
        }
        *ret_off = off;
        return name;
}

static int resolve(struct diag_symcache *c, pid_t pid, const struct diag_maps *maps, uint64_t addr,
                   struct symfile **ret_f, const struct diag_map **ret_m, uint64_t *ret_vaddr) {
        const struct diag_map *m = diag_maps_find(maps, addr);
        struct symfile *f;

        if (!m)
                return -ENOENT;
        /* .bss beyond the file's last page: the file mapping just below */
        if (!m->inode && m > maps->maps && m[-1].inode && m[-1].end == m->start)
                m = &m[-1];
        f = file_of(c, m, pid);
        if (!f || !to_file_vaddr(f, m, addr, ret_vaddr))
                return -ENOENT;
        *ret_f = f;
        *ret_m = m;
        return 0;
}

int diag_symcache_lookup(struct diag_symcache *c, const struct diag_maps *maps, uint64_t addr,
                         const char **ret_func, uint64_t *ret_off, const char **ret_module) {
        struct symfile *f;
        const struct diag_map *m;
        uint64_t v;
        uint64_t off = 0;
        const char *name;

        if (resolve(c, maps->pid, maps, addr, &f, &m, &v) < 0)
                return -ENOENT;
        if (ret_module)
                *ret_module = f->path;
        name = memo_name(f, v, &off);
        if (!name)
                return -ENOENT;
        *ret_func = name;
        if (ret_off)
                *ret_off = off;
        return 0;
}

int diag_symcache_data_symbol(struct diag_symcache *c, const struct diag_maps *maps, uint64_t addr,
                              const char **ret_name, uint64_t *ret_off, const char **ret_module) {
        /* the same lookup: dwfl's symbol search covers data objects too */
        return diag_symcache_lookup(c, maps, addr, ret_name, ret_off, ret_module);
}

#if defined(__x86_64__)
#define REG_SP 7

/* CFA of the frame at file address v, when it is sp + constant. */
static bool cfa_from_sp(struct symfile *f, uint64_t v, int64_t *ret_off) {
        Dwarf_Addr bias;
        Dwarf_CFI *cfi = dwfl_module_eh_cfi(f->mod, &bias);
        Dwarf_Frame *frame = NULL;
        Dwarf_Op *ops;
        size_t nops;
        bool ok = false;

        if (!cfi || dwarf_cfi_addrframe(cfi, v - bias, &frame) != 0)
                return false;
        if (dwarf_frame_cfa(frame, &ops, &nops) == 0 && nops == 1 && ops[0].atom == DW_OP_bregx &&
            ops[0].number == REG_SP) {
                *ret_off = (int64_t) ops[0].number2;
                ok = true;
        } else if (dwarf_frame_cfa(frame, &ops, &nops) == 0 && nops == 1 &&
                   ops[0].atom == DW_OP_breg0 + REG_SP) {
                *ret_off = (int64_t) ops[0].number;
                ok = true;
        }
        free(frame);
        return ok;
}
#endif

size_t diag_symcache_peek(struct diag_symcache *c, pid_t pid, const struct diag_maps *maps,
                          uint64_t sp, uint64_t pc, struct diag_peek_frame *frames, size_t max) {
        size_t n = 0;

        while (n < max && pc) {
                struct diag_peek_frame *fr = &frames[n++];
                struct symfile *f = NULL;
                const struct diag_map *m = NULL;
                uint64_t v = 0;

                *fr = (struct diag_peek_frame) { .pc = pc };
                /* a return address points after the call: look up the call itself */
                if (resolve(c, pid, maps, n == 1 ? pc : pc - 1, &f, &m, &v) < 0) {
                        if (n > 1)
                                n--;    /* past the outermost frame: not a frame */
                        break;
                }
                fr->module = f->path;
                {
                        uint64_t off = 0;
                        fr->func = memo_name(f, v, &off);
                        fr->off = n == 1 ? off : off + 1;
                }
#if defined(__x86_64__)
                {
                        int64_t cfa_off = 0;
                        uint64_t cfa, ra;
                        struct addr_memo *mm = memo_slot(f, v);
                        if (mm && mm->cfa_state == 0) {
                                mm->cfa_state = cfa_from_sp(f, v, &mm->cfa_off) ? 1 : -1;
                        }
                        if (mm ? mm->cfa_state < 0 : !cfa_from_sp(f, v, &cfa_off))
                                break;
                        if (mm)
                                cfa_off = mm->cfa_off;
                        cfa = sp + (uint64_t) cfa_off;
                        if (diag_mem_read(pid, cfa - 8, &ra, sizeof ra) != (ssize_t) sizeof ra)
                                break;
                        sp = cfa;
                        pc = ra;
                }
#else
                break;
#endif
        }
        return n;
}
