#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap against the incident checklist run by hand, on a host of 500 processes.

Starts bench/lockpop (--procs N --threads T: N processes, T threads in all, most
asleep, some blocked on mutexes and on an flock: the stuck chains diag-snap's tool
parts follow), then runs, round-robin, R timed runs of:

  diag-snap      diag-snap -o DIR --timeout 5s (a new bundle each run)
  checklist      a shell script running one after another: uptime; dmesg;
                 vmstat 1 2; free; ps auxf; top -bn1; pidstat 1 1; iostat -x 1 1;
                 ss -tanp; lsof -nP (each output to a file; pidstat and iostat
                 only when sysstat is installed, as said in the table)

Each run is started by `fdpop --run` (bench/fdpop.c), timed from before the fork to
after wait4, and its peak RSS is wait4's ru_maxrss: the largest single process of the run, the command or any child it
waited for (diag-snap's parts run in children of their own, each counted). Its exit
status and output size are recorded: the bundle's total bytes and files, the
checklist's bytes. Prints a Markdown table (also to --markdown FILE), with the issue's
targets: the bundle in <= 2 s wall, <= 50 MiB RSS, <= 5 MiB.
Python 3 standard library only. Run it as root, so that every command sees every process.
"""
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
ROOT = os.path.dirname(HERE)
MIB = 1024 * 1024

CHECKLIST = [
    ("uptime", "uptime"),
    ("dmesg", "dmesg"),
    ("vmstat", "vmstat 1 2"),
    ("free", "free"),
    ("ps", "ps auxf"),
    ("top", "top -bn1"),
    ("pidstat", "pidstat 1 1"),
    ("iostat", "iostat -x 1 1"),
    ("ss", "ss -tanp"),
    ("lsof", "lsof -nP"),
]


class BenchError(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build-bench", help="meson build directory (default build-bench)")
    p.add_argument("--diag-snap", help="diag-snap binary (default BUILD/tools/diag-snap/diag-snap)")
    p.add_argument("--lockpop", help="lockpop binary (default BUILD/bench/lockpop)")
    p.add_argument("--fdpop", help="fdpop binary, the measuring launcher (default BUILD/bench/fdpop)")
    p.add_argument("-r", "--runs", type=int, default=5, help="timed runs of each (default 5)")
    p.add_argument("-n", "--procs", type=int, default=500, help="lockpop processes (default 500)")
    p.add_argument("-t", "--threads", type=int, default=3000, help="threads in all (default 3000)")
    p.add_argument("--snap-timeout", default="5s", help="diag-snap --timeout (default 5s)")
    p.add_argument("--keep", help="keep the bundles and the checklist's output in this directory")
    p.add_argument("--markdown", help="also write the table to this file")
    return p.parse_args()


def resolve(given, build, *rel):
    """The binary given on the command line, else BUILD/REL; must be executable."""
    cands = [given] if given else [os.path.join(build, *rel), os.path.join(ROOT, build, *rel)]
    for c in cands:
        if os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise BenchError("%s not found or not executable (build it: ninja -C %s)" % (cands[0], build))


class Pop:
    """A running lockpop; ends when its stdin closes (it kills its children)."""

    def __init__(self, argv, timeout=120):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise BenchError("lockpop exited before READY (status %s)" % self.p.wait())
            if line.split()[:1] == ["READY"]:
                break
            if time.monotonic() > deadline:
                self.close()
                raise BenchError("lockpop not READY in %d s" % timeout)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def population():
    """(processes, threads) of the whole host now."""
    procs = threads = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                threads += len(os.listdir("/proc/%s/task" % d))
                procs += 1
            except OSError:
                pass
    return procs, threads


def timed(launcher, argv, cwd, timeout=120):
    """(seconds, peak RSS bytes, exit status) of argv, run through `fdpop --run`
    (ru_maxrss survives execve: forked from this Python process, a command would be
    charged its resident set; fdpop's is a few hundred KiB)."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.run([launcher, "--run"] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=err, cwd=cwd, timeout=timeout)
        err.seek(0)
        text = err.read().decode(errors="replace")
    m = re.search(r"^fdpop-run: status (\d+) maxrss_kb (\d+) wall_us (\d+)$", text, re.M)
    if not m:
        raise BenchError("no measurement from fdpop --run (exit %s): %s" % (p.returncode, text.strip()[-300:]))
    return int(m.group(3)) / 1e6, int(m.group(2)) * 1024, int(m.group(1))


def tree_size(path):
    total = files = 0
    for d, _, names in os.walk(path):
        for n in names:
            total += os.lstat(os.path.join(d, n)).st_size
            files += 1
    return total, files


def checklist_script(path, outdir):
    """The checklist as a shell script; returns the commands left out (not installed)."""
    lines = ["#!/bin/sh", "# the incident checklist, one command after another", "cd %s || exit 1" % outdir]
    absent = []
    for name, cmd in CHECKLIST:
        if not shutil.which(cmd.split()[0]):
            absent.append(name)
            continue
        lines.append("%s > %s.out 2>&1" % (cmd, name))
    lines.append("exit 0")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o700)
    return absent


def fmt_row(name, runs, size, note):
    secs = [r[0] for r in runs]
    rss = max(r[1] for r in runs)
    rcs = sorted({r[2] for r in runs})
    return "| %s | %.2f | %.2f–%.2f | %.1f | %s | %s | %s |" % (
        name, statistics.median(secs), min(secs), max(secs), rss / MIB, size, ",".join(map(str, rcs)), note)


def main():
    args = parse_args()
    if os.geteuid() != 0:
        print("snap-bench: not root: diag-snap and the checklist see only this user's processes", file=sys.stderr)
    snap = resolve(args.diag_snap, args.build, "tools", "diag-snap", "diag-snap")
    lockpop = resolve(args.lockpop, args.build, "bench", "lockpop")
    launcher = resolve(args.fdpop, args.build, "bench", "fdpop")
    work = args.keep or tempfile.mkdtemp(prefix="snap-bench.")
    os.makedirs(work, exist_ok=True)
    pop = Pop([lockpop, "--procs", str(args.procs), "--threads", str(args.threads)])
    try:
        host = population()
        outdir = os.path.join(work, "checklist")
        os.makedirs(outdir, exist_ok=True)
        script = os.path.join(work, "checklist.sh")
        absent = checklist_script(script, outdir)
        snaps, checks, bundle = [], [], []
        for i in range(args.runs):
            b = os.path.join(work, "bundle-%d" % i)
            snaps.append(timed(launcher, [snap, "-o", b, "--timeout", args.snap_timeout], work))
            if os.path.isdir(b):
                bundle.append(tree_size(b))
            checks.append(timed(launcher, ["/bin/sh", script], work))
        check_bytes = tree_size(outdir)[0]
    finally:
        pop.close()
    if bundle:
        size = "%.2f MiB in %d files" % (max(s for s, _ in bundle) / MIB, max(n for _, n in bundle))
    else:
        size = "no bundle written"
    head = ("diag-snap vs the checklist by hand: host of %d processes, %d threads (lockpop --procs %d --threads %d); "
            "%d runs each, round-robin; %d CPUs" % (host[0], host[1], args.procs, args.threads, args.runs,
                                                   os.cpu_count()))
    out = [head, "",
           "| command | wall median (s) | wall min–max (s) | peak RSS (MiB) | output | exit | note |",
           "|---|---|---|---|---|---|---|",
           fmt_row("diag-snap -o DIR --timeout %s" % args.snap_timeout, snaps, size, "targets ≤ 2 s, ≤ 50 MiB, ≤ 5 MiB"),
           fmt_row("checklist script", checks, "%.2f MiB" % (check_bytes / MIB),
                   "without %s (not installed)" % ", ".join(absent) if absent else "all ten commands")]
    text = "\n".join(out) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit("snap-bench: %s" % e)
