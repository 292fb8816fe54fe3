#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump against what people use today on a shared-memory channel, in one run:

  * a 16 MiB libatbus channel with the ring full (61,665 nodes), written by
    tests/shm/shmwriter into a SysV segment, a reader process attached;
  * shmdump --check (decode and verify every block, hashes included), --no-hash,
    the summary alone, on the live segment and on a --save copy; its own -v
    figures (copy, decode and check) besides the wall time of the process;
  * the peers: a Python one-off decoder (header, block walk, MurmurHash3 in pure
    Python: what an engineer writes during an incident), xxd and od of the copy
    (reading the bytes by eye), ipcs -m and lsipc against the shmdump listing.

Each command has one untimed warm-up run, then --runs timed runs, round-robin so
that noise falls on all alike. Prints a Markdown table (--markdown FILE writes it
too). --fuzz SECONDS instead runs each libFuzzer target that long (needs clang).
Python 3 standard library only."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "shm"))

PYDECODER = r"""
import sys
sys.path.insert(0, %r)
import shmtest
buf = open(sys.argv[1], "rb").read()
h = shmtest.decode(buf)
bad = sum(1 for b in h["blocks"] if not b[3])
print("nodes", h["node_count"], "used", h["used"], "blocks", len(h["blocks"]), "bad", bad)
"""


def run_once(argv, env=None):
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return (time.perf_counter() - t) * 1000.0, r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("-r", "--runs", type=int, default=10)
    ap.add_argument("--size", type=int, default=16 << 20)
    ap.add_argument("--markdown")
    ap.add_argument("--fuzz", type=int, metavar="SECONDS")
    a = ap.parse_args()
    shmdump = os.path.join(a.build, "shmdump", "shmdump")
    writer = os.path.join(a.build, "tests", "shm", "shmwriter")
    for p in (shmdump, writer):
        if not os.access(p, os.X_OK):
            sys.exit("%s not built: meson setup %s -Dbuildtype=release -Dman=disabled && ninja -C %s" % (p, a.build, a.build))
    if a.fuzz:
        r = subprocess.run([sys.executable, os.path.join(SRC, "tests", "shm", "fuzz.py"), "--libfuzzer",
                            "--seconds", str(a.fuzz), "--src", SRC, "--build", a.build, "--shmwriter", writer,
                            "--workdir", tempfile.mkdtemp(prefix="shm-fuzz-")])
        sys.exit(r.returncode)

    key = 0x5E000000 | (os.getpid() & 0xffff)
    tmp = tempfile.mkdtemp(prefix="shm-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    w = subprocess.Popen([writer, "--sysv", hex(key), "--size", str(a.size), "--case", "full", "--reader-proc"],
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    facts = {}
    try:
        for line in w.stdout:
            words = line.split()
            if words and words[0] == "READY":
                break
            if words:
                facts[words[0]] = dict(x.split("=", 1) for x in words[1:] if "=" in x)
        name = "key:0x%08x" % key
        copy = os.path.join(tmp, "copy.shm")
        subprocess.run([shmdump, "--save", copy, name], check=True, stderr=subprocess.DEVNULL)
        pyfile = os.path.join(tmp, "decode.py")
        with open(pyfile, "w") as f:
            f.write(PYDECODER % os.path.join(SRC, "tests", "shm"))
        cmds = [
            ("shmdump --check (live SysV segment)", [shmdump, "-v", "--check", name]),
            ("shmdump --check --no-hash (live)", [shmdump, "-v", "--check", "--no-hash", name]),
            ("shmdump summary only (live)", [shmdump, name]),
            ("shmdump --check (saved copy)", [shmdump, "-v", "--check", copy]),
            ("python one-off decoder + hashes (copy)", [sys.executable, pyfile, copy]),
            ("xxd (copy)", ["xxd", copy]),
            ("od -A x -t x1z (copy)", ["od", "-A", "x", "-t", "x1z", copy]),
            ("shmdump (list every segment)", [shmdump]),
            ("ipcs -m", ["ipcs", "-m"]),
            ("lsipc -m", ["lsipc", "-m"]),
        ]
        cmds = [(label, argv) for label, argv in cmds if shutil.which(argv[0]) or os.path.exists(argv[0])]
        times = {label: [] for label, _ in cmds}
        inner = {label: [] for label, _ in cmds}
        outs = {}
        for label, argv in cmds:      # warm-up
            _, r = run_once(argv)
            outs[label] = r
        for _ in range(a.runs):
            for label, argv in cmds:
                ms, r = run_once(argv)
                times[label].append(ms)
                m = re.search(r"in ([\d.]+) ms, decoded and checked \d+ nodes in ([\d.]+) ms", r.stderr)
                if m:
                    inner[label].append((float(m.group(1)), float(m.group(2))))
    finally:
        os.killpg(w.pid, 15)
        w.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    ch = facts.get("CHANNEL", {})
    base = statistics.median(times[cmds[0][0]])
    lines = ["Channel: %s bytes, %s nodes, %s used (ring full), %s blocks; %d runs each, median (min-max) wall ms." %
             (a.size, ch.get("nodes"), ch.get("used"), facts.get("BLOCKS", {}).get("count"), a.runs), "",
             "| command | wall ms | ratio to shmdump --check | shmdump's own: attach or copy / decode+check ms |",
             "|---|---|---|---|"]
    for label, _ in cmds:
        t = times[label]
        inn = inner[label]
        own = "%.1f / %.1f" % (statistics.median(x[0] for x in inn), statistics.median(x[1] for x in inn)) if inn else ""
        lines.append("| %s | %.1f (%.1f-%.1f) | %.2f | %s |" % (label, statistics.median(t), min(t), max(t),
                                                                statistics.median(t) / base, own))
    py = outs.get("python one-off decoder + hashes (copy)")
    if py is not None:
        lines += ["", "Python decoder said: %s" % py.stdout.strip()]
    ck = outs.get(cmds[0][0])
    lines += ["shmdump said: %s" % " ".join(l for l in ck.stdout.splitlines() if l.startswith(("Check:", "OK", "FAILED")))]
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")


main()
