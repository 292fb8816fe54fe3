# SPDX-License-Identifier: GPL-2.0-or-later
"""The decompressed-debuginfo cache: Debian's libc debug file (libc6-dbg) has compressed
DWARF sections that libdw inflated on every run. With DIAGKIT_CACHE_DIR set, the first
diag-stack run writes CACHE/debuginfo/BUILDID-SIZE-MTIME.debug (folders 0700, file 0600,
no compressed section left, same build-id); later runs use it and print the same frames
(file:line included) as a run without the cache; a damaged copy is replaced; "off" writes
nothing. Skipped without libc's compressed debug file."""
import os
import stat
import struct
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

SHF_COMPRESSED = 0x800


def compressed_sections(path):
    """The number of sections flagged SHF_COMPRESSED (ELF64 little-endian), None if not ELF."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3a)
    n = 0
    for i in range(shnum):
        flags, = struct.unpack_from("<Q", data, shoff + i * shentsize + 8)
        n += bool(flags & SHF_COMPRESSED)
    return n


def run(env_dir, pid):
    env = dt.tool_env()
    env["DIAGKIT_CACHE_DIR"] = env_dir
    return dt.run([dt.need_path("diag_stack"), "-J", "--cpu-window", "0", str(pid)], env=env)


def libc_frames(chk, r, pid):
    doc = r.json(chk) or {}
    proc = dt.process_of(doc, pid) or {}
    mods = {m.get("path"): m for m in proc.get("modules", [])}
    libc = next((m for p, m in mods.items() if p and "/libc.so" in p), {})
    frames = sorted(set((str(f.get("function")), str(f.get("file")), str(f.get("line")))
                        for g in proc.get("groups", []) for f in g.get("frames", [])
                        if f.get("module") and "/libc.so" in f["module"]))
    return libc, frames


def main():
    dt.setup(__doc__)
    chk = dt.Checker("stack-debugcache")
    tmp = tempfile.mkdtemp(prefix="diagtest-cache-")
    cache = os.path.join(tmp, "c")
    try:
        with dt.Fixture(["--roles", "pipe,sleep,mutex"]) as fx:
            r0 = run("off", fx.pid)
            chk.eq(r0.rc, 0, "exit status of the run without the cache (stderr: %s)" % r0.err.strip())
            libc, want = libc_frames(chk, r0, fx.pid)
            dbg = libc.get("debug_file") or ""
            if libc.get("debuginfo") != "found" or "/.build-id/" not in dbg:
                dt.skip("no libc debug file under /usr/lib/debug/.build-id (install libc6-dbg)")
            if not compressed_sections(dbg):
                dt.skip("%s has no compressed section: nothing to cache" % dbg)
            chk.check(not os.path.exists(cache), "DIAGKIT_CACHE_DIR=off wrote nothing")

            r1 = run(cache, fx.pid)
            chk.eq(r1.rc, 0, "exit status of the first cached run (stderr: %s)" % r1.err.strip())
            d = os.path.join(cache, "debuginfo")
            for p in (cache, d):
                m = os.stat(p).st_mode if os.path.isdir(p) else None
                chk.check(m is not None and stat.S_IMODE(m) == 0o700, "%s is a 0700 folder (%s)"
                          % (p, oct(m) if m else "missing"))
            files = os.listdir(d) if os.path.isdir(d) else []
            bid = libc.get("build_id") or "?"
            mine = [f for f in files if f.startswith(bid + "-") and f.endswith(".debug")]
            if chk.check(len(mine) == 1, "one cached copy of libc's debug file named by its build-id: %r" % files):
                path = os.path.join(d, mine[0])
                st = os.stat(path)
                chk.eq(stat.S_IMODE(st.st_mode), 0o600, "mode of the cached copy")
                chk.eq(compressed_sections(path), 0, "compressed sections left in the cached copy")
                _, got = libc_frames(chk, r1, fx.pid)
                chk.eq(got, want, "libc frames (function, file, line) with the cache being made")
                lc, _ = libc_frames(chk, r1, fx.pid)
                chk.eq(lc.get("debug_file"), dbg, "debug_file still names the debug file")

                r2 = run(cache, fx.pid)
                _, got = libc_frames(chk, r2, fx.pid)
                chk.eq(got, want, "libc frames from the cached copy")
                chk.eq(os.stat(path).st_ino, st.st_ino, "the second run used the copy, did not write another")

                with open(path, "r+b") as f:     # a damaged copy
                    f.truncate(4096)
                r3 = run(cache, fx.pid)
                _, got = libc_frames(chk, r3, fx.pid)
                chk.eq(got, want, "libc frames after the copy was damaged")
                chk.check(os.path.exists(path) and compressed_sections(path) == 0 and os.path.getsize(path) > 4096,
                          "the damaged copy was replaced")
    finally:
        dt.run(["rm", "-rf", tmp])
    chk.finish()


if __name__ == "__main__":
    main()
