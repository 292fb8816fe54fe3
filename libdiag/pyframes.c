/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <gelf.h>

#include "diag/mem.h"
#include "diag/pyframes.h"
#include "diag/util.h"

#define MAX_INTERPRETERS 64
#define MAX_THREADS 4096
#define MAX_FRAMES 1024
#define MAX_NAME 1024                   /* characters of a qualname or file name */
#define MAX_LINETABLE (1u << 20)
#define CODE_CACHE_SLOTS 1024           /* at first; power of two */
#define TSTATE_MEMO 4096                /* direct-mapped by tid */

/* From CPython 3.11's and 3.12's Include/internal/pycore_*.h, checked by
 * test-pyoffsets against each: first what the two share, then each one's own. */
#define OFFSETS_311_312 \
        .major = 3, .runtime_interpreters_head = 40, .interp_next = 0, .tstate_next = 8, .tstate_cframe = 56, \
        .object_type = 8, .code_filename = 112, .code_qualname = 128, .code_linetable = 136, \
        .var_size = 16, .bytes_sval = 32, .unicode_length = 16, .unicode_state = 32

static const struct diag_pyoffsets offsets_311 = {
        OFFSETS_311_312, .minor = 11,
        .runtime_tstate_current = 576,
        .interp_threads_head = 16,
        .tstate_native_thread_id = 160,
        .cframe_current_frame = 8,
        .frame_code = 32, .frame_previous = 48, .frame_prev_instr = 56, .frame_is_entry = 68, .frame_owner = 69,
        .owner_cstack = -1,
        .code_firstlineno = 72, .code_adaptive = 184,
        .unicode_ascii_size = 48, .unicode_compact_size = 72,
};

static const struct diag_pyoffsets offsets_312 = {
        OFFSETS_311_312, .minor = 12,
        .interp_threads_head = 72,
        .interp_gil = 384, .gil_locked = 16, .gil_holder = 8,
        .tstate_native_thread_id = 144,
        .cframe_current_frame = 0,
        .frame_code = 0, .frame_previous = 8, .frame_prev_instr = 56, .frame_owner = 70,
        .owner_cstack = 3,
        .code_firstlineno = 68, .code_adaptive = 192,
        .unicode_ascii_size = 40, .unicode_compact_size = 56,
};

const struct diag_pyoffsets *diag_pyoffsets_get(unsigned major, unsigned minor) {
        if (major == 3 && minor == 11)
                return &offsets_311;
        if (major == 3 && minor == 12)
                return &offsets_312;
        return NULL;
}

/* Where 3.13's _Py_DebugOffsets keeps each field (every one a uint64_t): its
 * layout from 3.13's Include/internal/pycore_runtime.h, checked by test-pyoffsets. */
enum {
        DBG_VERSION = 8,
        DBG_FREE_THREADED = 16,
        DBG_RUNTIME_INTERPRETERS_HEAD = 40,
        DBG_INTERP_NEXT = 64,
        DBG_INTERP_THREADS_HEAD = 72,
        DBG_INTERP_GIL_LOCKED = 136,
        DBG_INTERP_GIL_HOLDER = 144,
        DBG_TSTATE_NEXT = 168,
        DBG_TSTATE_CURRENT_FRAME = 184,
        DBG_TSTATE_NATIVE_THREAD_ID = 200,
        DBG_FRAME_PREVIOUS = 232,
        DBG_FRAME_EXECUTABLE = 240,
        DBG_FRAME_INSTR_PTR = 248,
        DBG_FRAME_OWNER = 264,
        DBG_CODE_FILENAME = 280,
        DBG_CODE_QUALNAME = 296,
        DBG_CODE_LINETABLE = 304,
        DBG_CODE_FIRSTLINENO = 312,
        DBG_CODE_ADAPTIVE = 344,
        DBG_OBJECT_TYPE = 360,
        DBG_BYTES_SIZE = 520,
        DBG_BYTES_SVAL = 528,
        DBG_UNICODE_STATE = 544,
        DBG_UNICODE_LENGTH = 552,
        DBG_UNICODE_ASCII_SIZE = 560,
};

int diag_pyoffsets_from_debug(const void *buf, size_t len, struct diag_pyoffsets *ret) {
        const uint8_t *b = buf;
        uint64_t version, v;
        size_t *dst;
        static const struct { size_t at, field; } map[] = {
#define F(at, field) { at, offsetof(struct diag_pyoffsets, field) }
                F(DBG_RUNTIME_INTERPRETERS_HEAD, runtime_interpreters_head),
                F(DBG_INTERP_NEXT, interp_next),
                F(DBG_INTERP_THREADS_HEAD, interp_threads_head),
                F(DBG_INTERP_GIL_LOCKED, gil_locked),
                F(DBG_INTERP_GIL_HOLDER, gil_holder),
                F(DBG_TSTATE_NEXT, tstate_next),
                F(DBG_TSTATE_CURRENT_FRAME, cframe_current_frame),
                F(DBG_TSTATE_NATIVE_THREAD_ID, tstate_native_thread_id),
                F(DBG_FRAME_PREVIOUS, frame_previous),
                F(DBG_FRAME_EXECUTABLE, frame_code),
                F(DBG_FRAME_INSTR_PTR, frame_prev_instr),
                F(DBG_FRAME_OWNER, frame_owner),
                F(DBG_CODE_FILENAME, code_filename),
                F(DBG_CODE_QUALNAME, code_qualname),
                F(DBG_CODE_LINETABLE, code_linetable),
                F(DBG_CODE_FIRSTLINENO, code_firstlineno),
                F(DBG_CODE_ADAPTIVE, code_adaptive),
                F(DBG_OBJECT_TYPE, object_type),
                F(DBG_BYTES_SIZE, var_size),
                F(DBG_BYTES_SVAL, bytes_sval),
                F(DBG_UNICODE_STATE, unicode_state),
                F(DBG_UNICODE_LENGTH, unicode_length),
                F(DBG_UNICODE_ASCII_SIZE, unicode_ascii_size),
#undef F
        };

        if (len < DIAG_PY_DEBUG_OFFSETS_313_SIZE)
                return -EINVAL;
        if (memcmp(b, "xdebugpy", 8) != 0)
                return -EBADMSG;
        memcpy(&version, b + DBG_VERSION, sizeof version);
        if ((version >> 24) != 3 || ((version >> 16) & 0xff) != 13)
                return -EPROTONOSUPPORT;
        memcpy(&v, b + DBG_FREE_THREADED, sizeof v);
        if (v)
                return -EPROTONOSUPPORT;
        *ret = (struct diag_pyoffsets) { .major = 3, .minor = 13, .owner_cstack = 3 };
        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                memcpy(&v, b + map[i].at, sizeof v);
                if (v > 65536)          /* no structure read here is that big */
                        return -EBADMSG;
                dst = (size_t *) ((char *) ret + map[i].field);
                *dst = (size_t) v;
        }
        /* PyCompactUnicodeObject: PyASCIIObject, utf8_length, utf8 (3.13's unicodeobject.h) */
        ret->unicode_compact_size = ret->unicode_ascii_size + 16;
        return 0;
}

struct code {
        uint64_t addr;                  /* 0: empty slot */
        char *qualname, *filename;
        int firstline;
        uint8_t *linetable;
        size_t linetable_len;
};

struct diag_pyreader {
        pid_t pid;
        char *version;
        const struct diag_pyoffsets *off;
        struct diag_pyoffsets debug_off;        /* 3.13: read from the target */
        uint64_t runtime;               /* &_PyRuntime in the target */
        uint64_t code_type;             /* &PyCode_Type, 0 if not found */
        struct code *codes;             /* open addressing; entries are never dropped: frames
                                         * handed out point to their strings */
        size_t ncodes, slots;
        struct tstate_memo {            /* where each thread's state was last found */
                pid_t tid;              /* as the target's namespace knows it */
                uint64_t interp, ts;
        } memo[TSTATE_MEMO];
};

/* ---- finding _PyRuntime ---- */

struct pysyms {
        uint64_t runtime, code_type, version_addr;
};

/* Look up the dynamic symbols of one mapped file; addresses are file vaddrs. */
static int elf_pysyms(int fd, struct pysyms *ret, uint64_t *ret_lowest_vaddr) {
        Elf *elf;
        Elf_Scn *scn = NULL;
        GElf_Ehdr eh;
        size_t nph;
        uint64_t lowest = UINT64_MAX;
        int r = -ENOENT;

        if (elf_version(EV_CURRENT) == EV_NONE)
                return -EINVAL;
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!elf)
                return -EINVAL;
        if (!gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &nph) < 0) {
                elf_end(elf);
                return -EINVAL;
        }
        for (size_t i = 0; i < nph; i++) {
                GElf_Phdr ph;
                if (gelf_getphdr(elf, (int) i, &ph) && ph.p_type == PT_LOAD && ph.p_offset == 0)
                        lowest = MIN(lowest, ph.p_vaddr);
        }
        *ret = (struct pysyms) { 0 };
        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *data;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || sh.sh_entsize == 0)
                        continue;
                data = elf_getdata(scn, NULL);
                if (!data)
                        continue;
                for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
                        GElf_Sym sym;
                        const char *name;

                        if (!gelf_getsym(data, (int) i, &sym) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
                                continue;
                        name = elf_strptr(elf, sh.sh_link, sym.st_name);
                        if (!name)
                                continue;
                        if (strcmp(name, "_PyRuntime") == 0)
                                ret->runtime = sym.st_value;
                        else if (strcmp(name, "PyCode_Type") == 0)
                                ret->code_type = sym.st_value;
                        else if (strcmp(name, "Py_Version") == 0)
                                ret->version_addr = sym.st_value;
                }
        }
        if (ret->runtime)
                r = 0;
        *ret_lowest_vaddr = lowest == UINT64_MAX ? 0 : lowest;
        elf_end(elf);
        return r;
}

static bool python_file(const char *path) {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        return strncmp(b, "python", 6) == 0 || strncmp(b, "libpython", 9) == 0;
}

/* "3.11" from ".../python3.11" or ".../libpython3.11.so.1.0". */
static bool version_from_name(const char *path, unsigned *ret_major, unsigned *ret_minor) {
        const char *b = strrchr(path, '/');
        unsigned ma, mi;

        b = b ? b + 1 : path;
        if (strncmp(b, "lib", 3) == 0)
                b += 3;
        if (sscanf(b, "python%u.%u", &ma, &mi) != 2)
                return false;
        *ret_major = ma;
        *ret_minor = mi;
        return true;
}

static char *format_version(unsigned long hex) {
        unsigned major = (hex >> 24) & 0xff, minor = (hex >> 16) & 0xff, micro = (hex >> 8) & 0xff;
        unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;
        const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : NULL;
        char *s;

        if (lv ? asprintf(&s, "%u.%u.%u%s%u", major, minor, micro, lv, serial) < 0
               : asprintf(&s, "%u.%u.%u", major, minor, micro) < 0)
                return NULL;
        return s;
}

/* Find _PyRuntime in the python executable or libpython mapped in pid. */
static int find_runtime(pid_t pid, struct pysyms *ret, char **ret_version, unsigned *ret_major, unsigned *ret_minor) {
        _cleanup_(diag_maps_freep) struct diag_maps *maps = NULL;
        const char *tried = NULL;
        int r;

        r = diag_maps_read(pid, &maps);
        if (r < 0)
                return r;
        for (size_t i = 0; i < maps->n; i++) {
                const struct diag_map *m = &maps->maps[i];
                _cleanup_close_ int fd = -1;
                struct pysyms s;
                uint64_t lowest, base;
                char path[128];
                unsigned long hex = 0;
                unsigned major = 0, minor = 0;

                if (m->offset != 0 || m->path[0] != '/' || !python_file(m->path))
                        continue;
                if (tried && strcmp(tried, m->path) == 0)
                        continue;
                tried = m->path;
                /* The file the target has mapped, even from another mount namespace. */
                snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start, m->end);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (elf_pysyms(fd, &s, &lowest) < 0)
                        continue;
                base = m->start - (lowest & ~(uint64_t) 0xfff);
                ret->runtime = base + s.runtime;
                ret->code_type = s.code_type ? base + s.code_type : 0;
                ret->version_addr = s.version_addr ? base + s.version_addr : 0;
                /* The running version: Py_Version (3.11+) holds PY_VERSION_HEX. */
                if (ret->version_addr &&
                    diag_mem_read(pid, ret->version_addr, &hex, sizeof hex) == (ssize_t) sizeof hex &&
                    (hex >> 24) == 3) {
                        major = 3;
                        minor = (hex >> 16) & 0xff;
                        *ret_version = format_version(hex);
                } else if (version_from_name(m->path, &major, &minor)) {
                        if (asprintf(ret_version, "%u.%u", major, minor) < 0)
                                *ret_version = NULL;
                }
                *ret_major = major;
                *ret_minor = minor;
                return 0;
        }
        return -ENOENT;
}

int diag_pyreader_new(pid_t pid, struct diag_pyreader **ret, char **ret_version) {
        struct diag_pyreader *rd;
        struct pysyms s = { 0 };
        _cleanup_free_ char *version = NULL;
        unsigned major = 0, minor = 0;
        uint8_t debug[DIAG_PY_DEBUG_OFFSETS_313_SIZE];
        struct diag_pyoffsets dbg = { 0 };
        ssize_t k;
        int r;

        *ret = NULL;
        if (ret_version)
                *ret_version = NULL;
        r = find_runtime(pid, &s, &version, &major, &minor);
        if (r < 0)
                return r;
        if (ret_version && version)
                *ret_version = strdup(version);
        /* Can we read it at all? 3.13 carries its own offsets there. */
        k = diag_mem_read(pid, s.runtime, debug, sizeof debug);
        if (k < 0)
                return (int) k;
        if (k != (ssize_t) sizeof debug)
                return -EFAULT;
        r = major == 3 && minor >= 13 ? diag_pyoffsets_from_debug(debug, sizeof debug, &dbg) : -EPROTONOSUPPORT;
        if (r < 0 && !diag_pyoffsets_get(major, minor))
                return r == -EBADMSG ? -EPROTONOSUPPORT : r;
        rd = calloc(1, sizeof *rd);
        if (!rd)
                return -ENOMEM;
        rd->debug_off = dbg;
        rd->codes = calloc(CODE_CACHE_SLOTS, sizeof *rd->codes);
        if (!rd->codes) {
                free(rd);
                return -ENOMEM;
        }
        rd->slots = CODE_CACHE_SLOTS;
        rd->pid = pid;
        rd->off = dbg.major ? &rd->debug_off : diag_pyoffsets_get(major, minor);
        rd->runtime = s.runtime;
        rd->code_type = s.code_type;
        rd->version = TAKE_PTR(version);
        *ret = rd;
        return 0;
}

static void code_clear(struct code *c) {
        free(c->qualname);
        free(c->filename);
        free(c->linetable);
        *c = (struct code) { 0 };
}

static void codes_flush(struct diag_pyreader *r) {
        for (size_t i = 0; i < r->slots; i++)
                if (r->codes[i].addr)
                        code_clear(&r->codes[i]);
        r->ncodes = 0;
}

struct diag_pyreader *diag_pyreader_free(struct diag_pyreader *r) {
        if (!r)
                return NULL;
        codes_flush(r);
        free(r->codes);
        free(r->version);
        free(r);
        return NULL;
}

const char *diag_pyreader_version(const struct diag_pyreader *r) {
        return r ? r->version : NULL;
}

/* ---- reads ---- */

static int read_exact(const struct diag_pyreader *r, uint64_t addr, void *buf, size_t len) {
        ssize_t k;

        if (addr == 0)
                return -EFAULT;
        k = diag_mem_read(r->pid, addr, buf, len);
        if (k < 0)
                return (int) k;
        return (size_t) k == len ? 0 : -EFAULT;
}

static int read_ptr(const struct diag_pyreader *r, uint64_t addr, uint64_t *ret) {
        return read_exact(r, addr, ret, sizeof *ret);
}

static uint64_t get_u64(const uint8_t *buf, size_t off) {
        uint64_t v;
        memcpy(&v, buf + off, sizeof v);
        return v;
}

static void put_utf8(char **p, uint32_t c) {
        uint8_t *s = (uint8_t *) *p;

        if (c < 0x80) {
                *s++ = (uint8_t) c;
        } else if (c < 0x800) {
                *s++ = (uint8_t) (0xc0 | (c >> 6));
                *s++ = (uint8_t) (0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
                *s++ = (uint8_t) (0xe0 | (c >> 12));
                *s++ = (uint8_t) (0x80 | ((c >> 6) & 0x3f));
                *s++ = (uint8_t) (0x80 | (c & 0x3f));
        } else if (c < 0x110000) {
                *s++ = (uint8_t) (0xf0 | (c >> 18));
                *s++ = (uint8_t) (0x80 | ((c >> 12) & 0x3f));
                *s++ = (uint8_t) (0x80 | ((c >> 6) & 0x3f));
                *s++ = (uint8_t) (0x80 | (c & 0x3f));
        } else {
                *s++ = '?';
        }
        *p = (char *) s;
}

/* A str object as UTF-8: compact ASCII, UCS1, UCS2 and UCS4 (code objects' names
 * are always compact). Longer strings are cut at MAX_NAME characters. */
static int read_unicode(const struct diag_pyreader *r, uint64_t addr, char **ret) {
        const struct diag_pyoffsets *o = r->off;
        uint8_t hdr[128];
        uint64_t len;
        uint32_t state;
        unsigned kind;
        bool compact, ascii;
        size_t data_off, nbytes;
        _cleanup_free_ uint8_t *data = NULL;
        char *s, *p;
        int k;

        if (o->unicode_compact_size > sizeof hdr)
                return -EINVAL;
        k = read_exact(r, addr, hdr, o->unicode_ascii_size);
        if (k < 0)
                return k;
        len = get_u64(hdr, o->unicode_length);
        memcpy(&state, hdr + o->unicode_state, sizeof state);
        kind = (state >> 2) & 7;
        compact = (state >> 5) & 1;
        ascii = (state >> 6) & 1;
        if (!compact || (kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1) || len > (1u << 30))
                return -EBADMSG;
        len = MIN(len, (uint64_t) MAX_NAME);
        data_off = ascii ? o->unicode_ascii_size : o->unicode_compact_size;
        nbytes = (size_t) len * kind;
        data = malloc(nbytes + 1);
        s = malloc((size_t) len * 4 + 1);
        if (!data || !s) {
                free(s);
                return -ENOMEM;
        }
        k = nbytes ? read_exact(r, addr + data_off, data, nbytes) : 0;
        if (k < 0) {
                free(s);
                return k;
        }
        p = s;
        for (size_t i = 0; i < len; i++) {
                uint32_t c;
                if (kind == 1) {
                        c = data[i];
                } else if (kind == 2) {
                        uint16_t v;
                        memcpy(&v, data + 2 * i, 2);
                        c = v;
                } else {
                        memcpy(&c, data + 4 * i, 4);
                }
                if (c == 0)
                        c = '?';
                put_utf8(&p, c);
        }
        *p = 0;
        *ret = s;
        return 0;
}

static int read_bytes(const struct diag_pyreader *r, uint64_t addr, uint8_t **ret, size_t *ret_len) {
        uint64_t size;
        uint8_t *b;
        int k;

        k = read_exact(r, addr + r->off->var_size, &size, sizeof size);
        if (k < 0)
                return k;
        if (size > MAX_LINETABLE)
                return -EBADMSG;
        b = malloc(size ? size : 1);
        if (!b)
                return -ENOMEM;
        k = size ? read_exact(r, addr + r->off->bytes_sval, b, size) : 0;
        if (k < 0) {
                free(b);
                return k;
        }
        *ret = b;
        *ret_len = size;
        return 0;
}

static size_t code_slot(const struct diag_pyreader *r, uint64_t addr) {
        return (size_t) ((addr >> 4) * 0x9e3779b97f4a7c15ull >> 32) & (r->slots - 1);
}

/* Twice the slots, the entries moved (their strings stay where they are). */
static int codes_grow(struct diag_pyreader *r) {
        struct code *old = r->codes, *nc;
        size_t oslots = r->slots;

        nc = calloc(oslots * 2, sizeof *nc);
        if (!nc)
                return -ENOMEM;
        r->codes = nc;
        r->slots = oslots * 2;
        for (size_t j = 0; j < oslots; j++) {
                size_t i;
                if (!old[j].addr)
                        continue;
                for (i = code_slot(r, old[j].addr); nc[i].addr; i = (i + 1) & (r->slots - 1))
                        ;
                nc[i] = old[j];
        }
        free(old);
        return 0;
}

/* The code object at addr, from the cache or read now. */
static int code_get(struct diag_pyreader *r, uint64_t addr, const struct code **ret) {
        const struct diag_pyoffsets *o = r->off;
        size_t i = code_slot(r, addr);
        uint8_t hdr[256];
        struct code c = { .addr = addr };
        int32_t firstline;
        int k;

        for (size_t n = 0; n < r->slots; n++, i = (i + 1) & (r->slots - 1)) {
                if (r->codes[i].addr == addr) {
                        *ret = &r->codes[i];
                        return 0;
                }
                if (!r->codes[i].addr)
                        break;
        }
        if (o->code_adaptive > sizeof hdr)
                return -EINVAL;
        k = read_exact(r, addr, hdr, o->code_adaptive);
        if (k < 0)
                return k;
        /* A frame read while its thread runs may point at anything by now. */
        if (r->code_type && get_u64(hdr, o->object_type) != r->code_type)
                return -EAGAIN;
        memcpy(&firstline, hdr + o->code_firstlineno, sizeof firstline);
        c.firstline = firstline;
        k = read_unicode(r, get_u64(hdr, o->code_qualname), &c.qualname);
        if (k >= 0)
                k = read_unicode(r, get_u64(hdr, o->code_filename), &c.filename);
        if (k >= 0)
                k = read_bytes(r, get_u64(hdr, o->code_linetable), &c.linetable, &c.linetable_len);
        if (k < 0) {
                code_clear(&c);
                return k == -EBADMSG || k == -EFAULT ? -EAGAIN : k;
        }
        /* At most 3/4 full, so that probe chains stay short. */
        if (r->ncodes + 1 > r->slots / 4 * 3 && codes_grow(r) < 0) {
                code_clear(&c);
                return -ENOMEM;
        }
        i = code_slot(r, addr);
        while (r->codes[i].addr)
                i = (i + 1) & (r->slots - 1);
        r->codes[i] = c;
        r->ncodes++;
        *ret = &r->codes[i];
        return 0;
}

/* ---- the 3.11 location table ---- */

struct lt_cursor {
        const uint8_t *p, *end;
};

static bool lt_byte(struct lt_cursor *c, unsigned *ret) {
        if (c->p >= c->end)
                return false;
        *ret = *c->p++;
        return true;
}

static bool lt_varint(struct lt_cursor *c, unsigned *ret) {
        unsigned b, v, shift = 6;

        if (!lt_byte(c, &b))
                return false;
        v = b & 63;
        while (b & 64) {
                if (!lt_byte(c, &b) || shift > 24)
                        return false;
                v |= (b & 63) << shift;
                shift += 6;
        }
        *ret = v;
        return true;
}

static bool lt_svarint(struct lt_cursor *c, int *ret) {
        unsigned u;

        if (!lt_varint(c, &u))
                return false;
        *ret = (u & 1) ? -(int) (u >> 1) : (int) (u >> 1);
        return true;
}

int diag_py_linetable_line(const uint8_t *table, size_t len, int firstline, int lasti) {
        struct lt_cursor c = { table, table + len };
        int line = firstline, addr = 0;

        if (lasti < 0)
                return firstline;
        while (c.p < c.end) {
                unsigned first = *c.p++, code, skip = 0, u;
                int delta = 0, length;
                bool noline = false;

                if (!(first & 0x80))
                        return -1;      /* not at an entry start: a table we do not understand */
                code = (first >> 3) & 15;
                length = (int) (first & 7) + 1;
                switch (code) {
                case 15:                /* no location */
                        noline = true;
                        break;
                case 14:                /* long form: line delta, end line delta, column, end column */
                        if (!lt_svarint(&c, &delta) || !lt_varint(&c, &u) || !lt_varint(&c, &u) || !lt_varint(&c, &u))
                                return -1;
                        break;
                case 13:                /* no column */
                        if (!lt_svarint(&c, &delta))
                                return -1;
                        break;
                case 10: case 11: case 12:      /* one line: delta in the code, two column bytes */
                        delta = (int) code - 10;
                        skip = 2;
                        break;
                default:                /* short form: same line, one column byte */
                        skip = 1;
                        break;
                }
                if ((size_t) (c.end - c.p) < skip)
                        return -1;
                c.p += skip;
                line += delta;
                if (lasti < addr + length)
                        return noline ? -1 : line;
                addr += length;
        }
        return -1;
}

/* ---- threads and frames ---- */

/* The tid as the target's namespace knows it (the last NSpid field), for matching
 * PyThreadState.native_thread_id; tid itself when not in a child namespace. */
static pid_t ns_tid(pid_t pid, pid_t tid) {
        char path[64], buf[4096];
        const char *l;
        ssize_t n;
        long long v = tid, t;
        char *end;

        snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
        n = diag_read_small_at(AT_FDCWD, path, buf, sizeof buf);
        if (n <= 0)
                return tid;
        l = strstr(buf, "\nNSpid:");
        if (!l)
                return tid;
        l += 7;
        for (;;) {
                while (*l == ' ' || *l == '\t')
                        l++;
                if (*l < '0' || *l > '9')
                        break;
                t = strtoll(l, &end, 10);
                v = t;
                l = end;
        }
        return (pid_t) v;
}

void diag_pythread_clear(struct diag_pythread *t) {
        if (!t)
                return;
        free(t->frames);
        *t = (struct diag_pythread) { 0 };
}

static int find_tstate(struct diag_pyreader *r, pid_t want, uint64_t *ret_interp, uint64_t *ret) {
        const struct diag_pyoffsets *o = r->off;
        struct tstate_memo *m = &r->memo[(unsigned) want % TSTATE_MEMO];
        uint64_t interp, seen, found = 0, found_interp = 0;
        int k;

        /* A thread state stays put for its thread's life: one read confirms it. */
        if (m->tid == want && m->ts && read_ptr(r, m->ts + o->tstate_native_thread_id, &seen) == 0 &&
            (pid_t) seen == want) {
                *ret_interp = m->interp;
                *ret = m->ts;
                return 0;
        }

        k = read_ptr(r, r->runtime + o->runtime_interpreters_head, &interp);
        if (k < 0)
                return k;
        for (unsigned ni = 0; interp && ni < MAX_INTERPRETERS; ni++) {
                uint64_t ts;

                k = read_ptr(r, interp + o->interp_threads_head, &ts);
                if (k < 0)
                        return -EAGAIN;
                for (unsigned nt = 0; ts && nt < MAX_THREADS; nt++) {
                        uint64_t id, next;

                        if (read_ptr(r, ts + o->tstate_native_thread_id, &id) < 0 ||
                            read_ptr(r, ts + o->tstate_next, &next) < 0)
                                return -EAGAIN;
                        /* One walk notes every thread: the next lookups are one read each. */
                        r->memo[(unsigned) id % TSTATE_MEMO] =
                                (struct tstate_memo) { .tid = (pid_t) id, .interp = interp, .ts = ts };
                        if ((pid_t) id == want && !found) {
                                found = ts;
                                found_interp = interp;
                        }
                        ts = next;
                }
                if (read_ptr(r, interp + o->interp_next, &interp) < 0)
                        return -EAGAIN;
        }
        if (!found)
                return -ENOENT;
        *ret_interp = found_interp;
        *ret = found;
        return 0;
}

/* Whether ts holds the GIL now: 3.11 names the holder in the runtime, 3.12+ in the
 * interpreter's GIL (last holder, while locked). */
static bool holds_gil(const struct diag_pyreader *r, uint64_t interp, uint64_t ts) {
        const struct diag_pyoffsets *o = r->off;
        uint64_t holder, gil = interp;
        int32_t locked;

        if (o->runtime_tstate_current)
                return read_ptr(r, r->runtime + o->runtime_tstate_current, &holder) == 0 && holder == ts;
        if (!o->gil_locked || !o->gil_holder)
                return false;
        if (o->interp_gil && read_ptr(r, interp + o->interp_gil, &gil) < 0)
                return false;
        if (read_exact(r, gil + o->gil_locked, &locked, sizeof locked) < 0 || !locked)
                return false;
        return read_ptr(r, gil + o->gil_holder, &holder) == 0 && holder == ts;
}

int diag_pyreader_thread(struct diag_pyreader *r, pid_t tid, struct diag_pythread *ret) {
        const struct diag_pyoffsets *o = r->off;
        _cleanup_free_ struct diag_pyframe *frames = NULL;
        size_t n = 0, alloc = 0, steps = 0;
        size_t flen = MAX(MAX(o->frame_owner, o->frame_is_entry) + 1,
                          MAX(MAX(o->frame_code, o->frame_previous), o->frame_prev_instr) + 8);
        uint64_t ts = 0, interp = 0, cframe, frame;
        int k;

        *ret = (struct diag_pythread) { .tid = tid };
        k = find_tstate(r, ns_tid(r->pid, tid), &interp, &ts);
        if (k == -ENOENT)
                return 0;               /* a thread that never ran Python */
        if (k < 0)
                return k;
        ret->holds_gil = holds_gil(r, interp, ts);
        if (!o->tstate_cframe)
                cframe = ts;            /* 3.13: current_frame is in the thread state */
        else if (read_ptr(r, ts + o->tstate_cframe, &cframe) < 0)
                return -EAGAIN;
        if (!cframe)
                return 0;
        if (read_ptr(r, cframe + o->cframe_current_frame, &frame) < 0)
                return -EAGAIN;
        while (frame) {
                uint8_t buf[128];
                const struct code *c;
                uint64_t code, prev, instr;
                int lasti;

                if (n >= MAX_FRAMES || ++steps > 2 * MAX_FRAMES)
                        break;
                if (flen > sizeof buf)
                        return -EINVAL;
                if (read_exact(r, frame, buf, flen) < 0)
                        return -EAGAIN;
                code = get_u64(buf, o->frame_code);
                prev = get_u64(buf, o->frame_previous);
                instr = get_u64(buf, o->frame_prev_instr);
                if (prev == frame)
                        return -EAGAIN;
                /* 3.12+: the eval loop's entry shim, owned by the C stack; the
                 * Python frame inside it is an entry frame. */
                if (o->owner_cstack >= 0 && buf[o->frame_owner] == (uint8_t) o->owner_cstack) {
                        if (n > 0)
                                frames[n - 1].entry = true;
                        frame = prev;
                        continue;
                }
                k = code_get(r, code, &c);
                if (k < 0)
                        return k;
                if (diag_grow((void **) &frames, &alloc, n + 1, sizeof *frames) < 0)
                        return -ENOMEM;
                lasti = instr >= code + o->code_adaptive ? (int) MIN((instr - code - o->code_adaptive) / 2, (uint64_t) INT32_MAX) : -1;
                frames[n++] = (struct diag_pyframe) {
                        .qualname = c->qualname,
                        .filename = c->filename,
                        .firstline = c->firstline,
                        .line = MAX(0, diag_py_linetable_line(c->linetable, c->linetable_len, c->firstline, lasti)),
                        .entry = o->frame_is_entry && buf[o->frame_is_entry] != 0,
                };
                frame = prev;
        }
        ret->n = n;
        ret->frames = TAKE_PTR(frames);
        return 0;
}

/* ---- splicing into a native stack ---- */

static bool is_eval_frame(const struct diag_frame *f) {
        return !f->python && !f->inlined && f->func && strcmp(f->func, "_PyEval_EvalFrameDefault") == 0;
}

int diag_py_splice(const struct diag_stack *native, const struct diag_pythread *py, struct diag_stack *out) {
        struct diag_frame *fr;
        size_t n = 0, pi = 0;

        *out = (struct diag_stack) { 0 };
        fr = calloc(native->n + py->n + 1, sizeof *fr);
        if (!fr)
                return -ENOMEM;
        for (size_t i = 0; i < native->n; i++) {
                const struct diag_frame *f = &native->frames[i];

                /* The frames inlined into the eval loop (an int add, the call of
                 * the next C function) were called by the Python code it runs: the
                 * Python frames go between them and the physical eval-loop frame. */
                if (!f->inlined && is_eval_frame(f)) {
                        while (pi < py->n) {
                                const struct diag_pyframe *p = &py->frames[pi++];
                                fr[n++] = (struct diag_frame) {
                                        .module = -1,
                                        .func = (char *) p->qualname,
                                        .file = (char *) p->filename,
                                        .line = p->line,
                                        .python = true,
                                };
                                if (p->entry)
                                        break;
                        }
                }
                fr[n++] = *f;
        }
        for (; pi < py->n; pi++)
                fr[n++] = (struct diag_frame) {
                        .module = -1,
                        .func = (char *) py->frames[pi].qualname,
                        .file = (char *) py->frames[pi].filename,
                        .line = py->frames[pi].line,
                        .python = true,
                };
        out->n = n;
        out->frames = fr;
        out->err = native->err;
        out->err_msg = native->err_msg;
        out->truncated = native->truncated;
        return 0;
}
