/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/*
 * A cache of decompressed debug files. Debian's separate debug files
 * (libc6-dbg and the like, under /usr/lib/debug/.build-id) have compressed
 * DWARF sections (SHF_COMPRESSED, zlib) that libdw inflates on every run: most
 * of diag-stack's time on a process with libc's debuginfo. The first run
 * writes a copy with the sections decompressed; later runs open that copy.
 *
 * Where: $DIAGKIT_CACHE_DIR if set ("off" disables the cache), else
 * /var/cache/diagkit for root, else $XDG_CACHE_HOME/diagkit or
 * ~/.cache/diagkit; files in its debuginfo/ folder. Folders 0700, files 0600,
 * written as an unnamed temporary and linked under the final name only when
 * complete. A cached copy is named by the build-id and the source's size and
 * mtime, so a changed source is not served a stale copy; its build-id is
 * checked again when opened. The folder is kept under DIAG_DEBUGCACHE_MAX
 * bytes, oldest first out.
 */

#define DIAG_DEBUGCACHE_MAX (1024ULL << 20)

/* For the debug file open on fd (path for messages), with build-id
 * build_id_hex: an fd of its decompressed copy, made now if needed, or
 * -ENOTSUP (nothing compressed in it), -ENOENT (no usable cache folder), or
 * another negative errno. fd is not closed. */
int diag_debugcache_open(int fd, const char *build_id_hex, char **ret_path);

/* The cache folder in use ("" when none), for messages and tests. */
const char *diag_debugcache_dir(void);
