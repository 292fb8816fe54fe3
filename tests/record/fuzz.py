#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Fuzzing of diag-record's readers (tests/record/fuzz-rec.c: the store's segment
reader and the codec's decoder), two ways, on a seed corpus made here with
bench/recgen (a short recording of this host: its segment files, and the payloads of
its first frames):

--replay EXE: the target built by meson (with the build's sanitizers) runs once on
  every seed, and on each seed cut short and with bytes flipped.
--libfuzzer: the target built with clang -fsanitize=fuzzer,address,undefined and run
  for --seconds from that corpus. Skipped (77) without clang. A crash fails the test;
  its input is kept in --workdir for replay."""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fuzzlib  # noqa: E402


log = fuzzlib.log


def seeds(recgen, root):
    """The seed corpus in root/seeds (made afresh)."""
    out = os.path.join(root, "seeds")
    rec = os.path.join(root, "rec")
    for d in (out, rec):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    r = subprocess.run([recgen, rec, "--hours", "0.05", "--interval", "1", "--procs", "60", "--flush", "5",
                        "--raw-dir", out], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("FAIL: recgen: %s" % r.stderr.strip())
    for f in sorted(os.listdir(rec)):
        if f.startswith("seg-"):
            with open(os.path.join(rec, f), "rb") as src, open(os.path.join(out, "segment-" + f), "wb") as dst:
                dst.write(b"\0" + src.read())
    shutil.rmtree(rec, ignore_errors=True)
    return out


def replay(exe, recgen):
    tmp = tempfile.mkdtemp(prefix="diag-record-fuzz-")
    rnd = random.Random(int(os.environ.get("DIAG_TEST_SEED", "0")) or None)
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    log("seed %d (DIAG_TEST_SEED=%d repeats it)" % (seed, seed))
    try:
        s = seeds(recgen, tmp)
        files = [os.path.join(s, f) for f in sorted(os.listdir(s))]
        more = []
        for f in files:
            data = open(f, "rb").read()
            for i in range(6):
                cut = rnd.randrange(1, max(2, len(data)))
                p = "%s.cut%d" % (f, i)
                with open(p, "wb") as g:
                    g.write(data[:cut])
                more.append(p)
            for i in range(6):
                b = bytearray(data)
                for _ in range(rnd.randrange(1, 16)):
                    off = rnd.randrange(1, len(b)) if len(b) > 1 else 0
                    b[off] ^= 1 << rnd.randrange(8)
                p = "%s.flip%d" % (f, i)
                with open(p, "wb") as g:
                    g.write(b)
                more.append(p)
        if fuzzlib.replay(exe, files + more):
            return 1
        log("fuzz-replay: the target ran on %d inputs" % (len(files) + len(more)))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def libfuzzer(src, build, recgen, seconds, workdir, clang):
    os.makedirs(workdir, exist_ok=True)
    s = seeds(recgen, workdir) if clang else None
    libs = [os.path.join(src, "libdiag", f) for f in ("recstore.c", "rec-codec.c", "rec-model.c", "util.c")]
    r = fuzzlib.libfuzzer(clang, "fuzz-rec", [os.path.join(src, "tests", "record", "fuzz-rec.c")] + libs,
                          [os.path.join(src, "libdiag", "include"), build], ["-lzstd"], workdir, s, seconds, 300000)
    if r == 0:
        log("libFuzzer: no crash in %d s" % seconds)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replay")
    ap.add_argument("--recgen", required=True)
    ap.add_argument("--libfuzzer", action="store_true")
    ap.add_argument("--src")
    ap.add_argument("--build")
    ap.add_argument("--workdir")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clang", default=shutil.which("clang"))
    a = ap.parse_args()
    if a.replay:
        return replay(a.replay, a.recgen)
    return libfuzzer(a.src, a.build, a.recgen, a.seconds, a.workdir, a.clang)


if __name__ == "__main__":
    sys.exit(main())
