/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <elfutils/libdwelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "diag/debugcache.h"
#include "diag/util.h"

static char cache_dir[PATH_MAX];
static int cache_state;         /* 0 not looked up, 1 usable, -1 none */

/* mkdir -p with 0700 for what we create; the last component must end up ours
 * and private (not a symlink, owned by us, no group/other bits). */
static int make_private_dir(const char *path) {
        char buf[PATH_MAX];
        struct stat st;

        if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                                return negative_errno();
                        *p = '/';
                }
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        if (lstat(buf, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
                return -EPERM;
        return 0;
}

const char *diag_debugcache_dir(void) {
        const char *env, *home;
        char base[PATH_MAX];

        if (cache_state)
                return cache_state > 0 ? cache_dir : "";
        cache_state = -1;
        env = getenv("DIAGKIT_CACHE_DIR");
        if (env && strcmp(env, "off") == 0)
                return "";
        if (env && env[0] == '/')
                snprintf(base, sizeof base, "%s", env);
        else if (geteuid() == 0)
                snprintf(base, sizeof base, "/var/cache/diagkit");
        else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/')
                snprintf(base, sizeof base, "%s/diagkit", env);
        else if ((home = getenv("HOME")) && home[0] == '/')
                snprintf(base, sizeof base, "%s/.cache/diagkit", home);
        else
                return "";
        if (snprintf(cache_dir, sizeof cache_dir, "%s/debuginfo", base) >= (int) sizeof cache_dir ||
            make_private_dir(base) < 0 || make_private_dir(cache_dir) < 0)
                return "";
        cache_state = 1;
        return cache_dir;
}

static bool has_compressed_sections(Elf *elf) {
        Elf_Scn *scn = NULL;
        size_t shstrndx;

        if (elf_getshdrstrndx(elf, &shstrndx) < 0)
                return false;
        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                const char *name;
                if (!gelf_getshdr(scn, &sh))
                        continue;
                name = elf_strptr(elf, shstrndx, sh.sh_name);
                if ((sh.sh_flags & SHF_COMPRESSED) || (name && strncmp(name, ".zdebug", 7) == 0))
                        return true;
        }
        return false;
}

static bool build_id_is(Elf *elf, const char *want) {
        const void *bits;
        ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);
        char hex[2 * 64 + 1];

        if (len <= 0 || len > 64)
                return false;
        for (ssize_t i = 0; i < len; i++)
                snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *) bits)[i]);
        return strcmp(hex, want) == 0;
}

/* Copy src into the unnamed file dst, then decompress its sections in place. */
static int write_decompressed(int src, int dst) {
        struct stat st;
        Elf *elf;
        Elf_Scn *scn = NULL;
        size_t shstrndx;
        char buf[1 << 16];
        ssize_t k;
        int r = 0;

        if (fstat(src, &st) < 0)
                return negative_errno();
        for (off_t off = 0; (k = pread(src, buf, sizeof buf, off)) != 0; off += k)
                if (k < 0 || write(dst, buf, (size_t) k) != k)
                        return k < 0 ? negative_errno() : -EIO;
        elf = elf_begin(dst, ELF_C_RDWR, NULL);
        if (!elf)
                return -EINVAL;
        if (elf_getshdrstrndx(elf, &shstrndx) < 0)
                r = -EINVAL;
        while (r == 0 && (scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                const char *name;
                if (!gelf_getshdr(scn, &sh))
                        continue;
                name = elf_strptr(elf, shstrndx, sh.sh_name);
                if (sh.sh_flags & SHF_COMPRESSED) {
                        if (elf_compress(scn, 0, 0) < 0)
                                r = -EINVAL;
                } else if (name && strncmp(name, ".zdebug", 7) == 0) {
                        /* old GNU style; libdw reads .zdebug_X uncompressed as well */
                        if (elf_compress_gnu(scn, 0, 0) < 0)
                                r = -EINVAL;
                }
        }
        if (r == 0 && elf_update(elf, ELF_C_WRITE) < 0)
                r = -EIO;
        elf_end(elf);
        return r;
}

struct cfile { char name[NAME_MAX + 1]; off_t size; time_t mtime; };

/* Remove the oldest files until the folder holds at most max - room bytes. */
static void trim(int dfd, uint64_t room) {
        DIR *d;
        struct dirent *de;
        struct cfile *f = NULL;
        size_t n = 0, alloc = 0;
        uint64_t total = 0;
        int dup_fd = dup(dfd);

        if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
                if (dup_fd >= 0)
                        close(dup_fd);
                return;
        }
        while ((de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode) || DIAG_GROW(f, alloc, n + 1) < 0)
                        continue;
                snprintf(f[n].name, sizeof f[n].name, "%s", de->d_name);
                f[n].size = st.st_size;
                f[n].mtime = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
                total += (uint64_t) st.st_size;
                n++;
        }
        closedir(d);
        while (total + room > DIAG_DEBUGCACHE_MAX && n > 0) {
                size_t old = 0;
                for (size_t i = 1; i < n; i++)
                        if (f[i].mtime < f[old].mtime)
                                old = i;
                if (unlinkat(dfd, f[old].name, 0) == 0)
                        total -= (uint64_t) f[old].size;
                f[old] = f[--n];
        }
        free(f);
}

/* Whole: the section headers and every section's bytes are inside the file. */
static bool elf_whole(Elf *elf, off_t size) {
        Elf_Scn *scn = NULL;
        size_t shstrndx, n = 0;
        GElf_Ehdr eh;

        if (!gelf_getehdr(elf, &eh) || elf_getshdrstrndx(elf, &shstrndx) < 0 ||
            eh.e_shoff + (uint64_t) eh.e_shnum * eh.e_shentsize > (uint64_t) size)
                return false;
        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                if (!gelf_getshdr(scn, &sh))
                        return false;
                if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > (uint64_t) size)
                        return false;
                n++;
        }
        return n > 0;
}

static int open_checked(int dfd, const char *name, const char *build_id) {
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        Elf *elf;
        bool ok;

        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
                close(fd);
                return -EPERM;
        }
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        ok = elf && elf_whole(elf, st.st_size) && build_id_is(elf, build_id) && !has_compressed_sections(elf);
        elf_end(elf);
        if (!ok) {
                close(fd);
                (void) unlinkat(dfd, name, 0);
                return -ESTALE;
        }
        return fd;
}

int diag_debugcache_open(int fd, const char *build_id, char **ret_path) {
        const char *dir = diag_debugcache_dir();
        _cleanup_close_ int dfd = -1, tmp = -1;
        char name[NAME_MAX + 1], proc[64];
        struct stat st;
        Elf *elf;
        bool compressed;
        int r;

        if (!dir[0])
                return -ENOENT;
        if (elf_version(EV_CURRENT) == EV_NONE)
                return -EINVAL;
        if (!build_id || !build_id[0] || strspn(build_id, "0123456789abcdef") != strlen(build_id) ||
            strlen(build_id) > 128)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        snprintf(name, sizeof name, "%s-%jd-%jd.%09ld.debug", build_id, (intmax_t) st.st_size,
                 (intmax_t) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return negative_errno();
        r = open_checked(dfd, name, build_id);
        if (r >= 0 || (r != -ENOENT && r != -ESTALE))
                goto found;

        /* Not cached: worth it only when something is compressed. */
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        compressed = elf && has_compressed_sections(elf) && build_id_is(elf, build_id);
        elf_end(elf);
        if (!compressed)
                return -ENOTSUP;
        trim(dfd, (uint64_t) st.st_size * 4);
        tmp = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (tmp < 0)
                return negative_errno();
        r = write_decompressed(fd, tmp);
        if (r < 0)
                return r;
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", tmp);
        if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
                return negative_errno();
        r = open_checked(dfd, name, build_id);
found:
        if (r >= 0 && ret_path && asprintf(ret_path, "%s/%s", dir, name) < 0)
                *ret_path = NULL;
        return r;
}
