#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Fuzzing of shmdump's decoders (tests/shm/fuzz/fuzz-*.c), two ways:

--replay EXE...: the targets built by meson (with the build's sanitizers) run once
  on a seed corpus made here: channels in every state shmwriter makes, corrupt
  headers, /proc texts. Needs no clang.
--libfuzzer: the targets built with clang -fsanitize=fuzzer,address,undefined and
  run for --seconds each from that corpus. Skipped (77) without clang. A crash
  fails the test; its input is kept in --workdir for replay.

bench/shm-bench.py --fuzz SECONDS runs the second way for longer."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fuzzlib  # noqa: E402

TARGETS = ["atbus", "proctext", "struct"]
CASES = ["empty", "partial", "wrapped", "full", "crashed", "overwritten", "badhash",
         "bad-nodecount", "bad-magic", "bad-version", "bad-cursor"]


log = fuzzlib.log


def seeds(shmwriter, root):
    """A seed corpus per target under root; returns {target: dir}."""
    out = {t: os.path.join(root, "seeds-" + t) for t in TARGETS}
    for d in out.values():
        shutil.rmtree(d, ignore_errors=True)     # made afresh; the corpus dirs grow from run to run
        os.makedirs(d)
    for c in CASES:
        for tag, layout in (("", []), ("-packed", ["--packed"]), ("-align8", ["--align", "8"])):
            p = os.path.join(out["atbus"], c + tag)
            r = subprocess.run([shmwriter, "--file", p, "--size", "65536", "--case", c, "--msgs", "40",
                                "--max", "700", "--exit"] + layout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
            if r.returncode != 0:
                sys.exit("shmwriter --case %s %s failed: %s" % (c, layout, r.stderr))
    texts = {
        "sysvipc": open("/proc/sysvipc/shm").read() if os.path.exists("/proc/sysvipc/shm") else "key shmid perms size\n",
        "sysvipc-one": "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n"
                       "     12345          7  1666               1048576   100   101      2     0     0     0     0 1700000000          0 1700000001                  8192                     0\n",
        "mqueue": "QSIZE:129        NOTIFY:2     SIGNO:0     NOTIFY_PID:4242 \n",
        "maps-sysv": "/SYSV00003039 (deleted)",
        "maps-memfd": "/memfd:ring (deleted)",
    }
    for name, text in texts.items():
        with open(os.path.join(out["proctext"], name), "w") as f:
            f.write(text)
    with open(os.path.join(out["struct"], "header"), "wb") as f:
        f.write(bytes(range(256)))
    with open(os.path.join(out["struct"], "short"), "wb") as f:
        f.write(b"HDR")
    return out


def replay(exes, shmwriter):
    tmp = tempfile.mkdtemp(prefix="shmdump-fuzz-")
    try:
        s = seeds(shmwriter, tmp)
        for exe in exes:
            t = os.path.basename(exe).replace("fuzz-replay-", "")
            files = [os.path.join(s[t], f) for f in sorted(os.listdir(s[t]))]
            # and each seed cut short, and with its header bytes flipped
            more = []
            for f in files[:40]:
                data = open(f, "rb").read()
                for i, cut in enumerate((len(data) // 3, 217, 100, 1)):
                    p = "%s.cut%d" % (f, i)
                    with open(p, "wb") as g:
                        g.write(data[:cut])
                    more.append(p)
                b = bytearray(data)
                for off in range(0, min(len(b), 216), 8):
                    b[off] ^= 0xa5
                p = f + ".flip"
                with open(p, "wb") as g:
                    g.write(b)
                more.append(p)
            if fuzzlib.replay(exe, files + more):
                return 1
        log("fuzz-replay: every target ran on every seed")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def libfuzzer(src, build, shmwriter, seconds, workdir, clang):
    os.makedirs(workdir, exist_ok=True)
    s = seeds(shmwriter, workdir) if clang else None
    inc = [os.path.join(src, "libdiag", "include"), build]
    libs = [os.path.join(src, "libdiag", f) for f in ("shm.c", "util.c", "mem.c", "bounded.c")]
    fuzzdir = os.path.join(src, "tests", "shm", "fuzz")
    failed = 0
    for t in TARGETS:
        r = fuzzlib.libfuzzer(clang, "fuzz-" + t, [os.path.join(fuzzdir, "fuzz-%s.c" % t),
                                                   os.path.join(fuzzdir, "fuzz-stubs.c")] + libs,
                              inc, ["-ldw", "-lelf"], workdir, s[t] if s else None, seconds, 70000)
        if r == 77:
            return 77
        failed |= r
    if not failed:
        log("libFuzzer: no crash in %d s per target" % seconds)
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replay", nargs="*")
    ap.add_argument("--libfuzzer", action="store_true")
    ap.add_argument("--src")
    ap.add_argument("--build")
    ap.add_argument("--shmwriter", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workdir")
    ap.add_argument("--clang", default=shutil.which("clang"))
    a = ap.parse_args()
    if a.replay:
        sys.exit(replay(a.replay, a.shmwriter))
    if a.libfuzzer:
        sys.exit(libfuzzer(a.src, a.build, a.shmwriter, a.seconds, a.workdir or tempfile.mkdtemp(prefix="shmdump-fuzz-"),
                           a.clang))
    ap.error("--replay or --libfuzzer")


main()
