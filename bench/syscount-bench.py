#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What counting system calls costs the counted process: libdiag's syscount next
to strace -c and perf trace -s.

The target is the sysloop fixture: `GO N` makes it call write() N times on
/dev/null and answer with the loop's duration. Its rate of calls is measured
unmonitored and under each counter:

  diag            libdiag syscount on the target (bench/syscount-attach PID)
  diag -L         the same with DIAG_SYSCOUNT_NO_LATENCY (counts and errors only)
  diag, host      syscount on every process (syscount-attach --all)
  diag, other     syscount on another (idle) process: what every process of the
                  host pays while someone else is counted
  strace -c       strace -c -f -p PID
  perf trace -s   perf trace -s -p PID (skipped when perf is not installed)

Each counter gets one untimed warm-up run, then R timed runs, round-robin. A run
only counts if the counter saw the calls: syscount exactly N write() calls,
strace and perf at least N. See bench/README.md.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYS_WRITE = {"x86_64": 1, "aarch64": 64}.get(platform.machine())


class BenchError(Exception):
    pass


def pin(cpu):
    """preexec_fn: run on one CPU (None: anywhere)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class Loop:
    def __init__(self, path, cpu):
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  preexec_fn=pin(cpu))
        line = self.p.stdout.readline()
        m = re.match(r"READY pid=(\d+)", line)
        if not m:
            raise BenchError("sysloop did not start: %r" % line)
        self.pid = int(m.group(1))

    def go(self, n):
        """(wall ns, CPU ns of the looping thread) of a loop of n write() calls."""
        self.p.stdin.write("GO %d\n" % n)
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        m = re.match(r"DONE %d writes=%d errors=0 ns=(\d+) cpu_ns=(\d+)" % (n, n), line)
        if not m:
            raise BenchError("sysloop answered %r" % line)
        return int(m.group(1)), int(m.group(2))

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


class Monitor:
    """A counter running on the target: start, wait until it counts, stop, check."""

    def __init__(self, argv, cpu, ready, stop):
        self.argv, self.ready, self.stop = argv, ready, stop
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, preexec_fn=pin(cpu), start_new_session=True)
        if ready == "stdout":           # syscount-attach: "READY"
            line = self.p.stdout.readline()
            if line.strip() != "READY":
                self.fail("did not start: %r %s" % (line, self.p.stderr.read().strip()[:300]))
        elif ready == "stderr":         # strace: "Process N attached"
            while True:
                line = self.p.stderr.readline()
                if not line:
                    self.fail("did not attach")
                if "attached" in line:
                    break
        else:                           # perf trace says nothing: give it time
            time.sleep(ready)
            if self.p.poll() is not None:
                self.fail("exited: %s" % self.p.stderr.read().strip()[:300])

    def fail(self, why):
        if self.p.poll() is None:
            self.p.kill()
        raise BenchError("%s %s" % (" ".join(self.argv[:2]), why))

    def finish(self, timeout):
        if self.stop != "stdin":        # communicate() closes stdin: syscount-attach stops there
            self.p.send_signal(signal.SIGINT)
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        return out, err


def check_diag(out, err, pid, n):
    calls = [int(w[3]) for w in (l.split() for l in out.splitlines())
             if w and w[0] == "COUNT" and int(w[1]) == pid and int(w[2]) == SYS_WRITE]
    if calls != [n]:
        return "syscount saw %s write() calls of pid %d, not %d" % (calls or "no", pid, n)
    if not re.search(r"^LOST 0$", out, re.M):
        return "syscount lost returns"
    return None


def check_diag_other(out, err, pid, n):
    if re.search(r"^COUNT %d " % pid, out, re.M):
        return "syscount counted pid %d, which it was not asked to count" % pid
    return None


def check_strace(out, err, pid, n):
    m = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?write$", err, re.M)
    if not m or int(m.group(1)) < n:
        return "strace -c did not report %d write() calls" % n
    return None


def check_perf(out, err, pid, n):
    m = re.search(r"^\s*write\s+(\d+)\s", err + out, re.M)
    if not m or int(m.group(1)) < n * 0.9:
        return "perf trace -s reported %s write() calls, not %d" % (m.group(1) if m else "no", n)
    if int(m.group(1)) < n:             # it drops events when its reader falls behind
        return "note: perf trace -s reported %s of %d write() calls" % (m.group(1), n)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--sysloop", help="default BUILD/tests/fixtures/sysloop")
    ap.add_argument("--attach", help="default BUILD/bench/syscount-attach")
    ap.add_argument("--strace", default=shutil.which("strace"))
    ap.add_argument("--perf", default=shutil.which("perf"))
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("-n", "--calls", type=int, default=300000,
                    help="write() calls per run unmonitored and under syscount (a tenth under strace and perf)")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--pin", action="store_true",
                    help="run the target on the last CPU and the counters on the first (ptrace tools then "
                         "wait for a busy CPU at every stop)")
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args()

    if SYS_WRITE is None:
        sys.exit("syscount-bench: unknown architecture %s" % platform.machine())
    sysloop = args.sysloop or os.path.join(args.build, "tests", "fixtures", "sysloop")
    attach = args.attach or os.path.join(args.build, "bench", "syscount-attach")
    for f in (sysloop, attach):
        if not os.access(f, os.X_OK):
            sys.exit("syscount-bench: %s not built (see bench/README.md)" % f)
    ncpu = os.cpu_count() or 1
    tcpu, mcpu = (ncpu - 1, 0) if args.pin and ncpu >= 2 else (None, None)

    loop = Loop(sysloop, tcpu)
    idle = subprocess.Popen(["sleep", "1000000"])      # the "other" process
    fast, slow = args.calls, max(args.calls // 10, 1000)
    modes = [
        ("unmonitored", fast, None),
        ("diag syscount", fast, lambda: Monitor([attach, str(loop.pid)], mcpu, "stdout", "stdin"), check_diag),
        ("diag syscount, no latency", fast,
         lambda: Monitor([attach, "--no-latency", str(loop.pid)], mcpu, "stdout", "stdin"), check_diag),
        ("diag syscount, whole host", fast, lambda: Monitor([attach, "--all"], mcpu, "stdout", "stdin"), check_diag),
        ("diag syscount on another process", fast,
         lambda: Monitor([attach, str(idle.pid)], mcpu, "stdout", "stdin"), check_diag_other),
    ]
    notes = []
    if args.strace:
        modes.append(("strace -c -f -p", slow,
                      lambda: Monitor([args.strace, "-c", "-f", "-p", str(loop.pid)], mcpu, "stderr", "sigint"),
                      check_strace))
    else:
        notes.append("strace not installed: not measured")
    if args.perf:
        modes.append(("perf trace -s -p", slow,
                      lambda: Monitor([args.perf, "trace", "-s", "-p", str(loop.pid)], mcpu, 3.0, "sigint"),
                      check_perf))
    else:
        notes.append("perf not installed (Debian: linux-perf): not measured")
    per_call = {m[0]: [] for m in modes}
    cpu_call = {m[0]: [] for m in modes}
    failed = {}
    try:
        for rnd in range(args.runs + 1):
            for mode in modes:
                name, n = mode[0], mode[1]
                if name in failed:
                    continue
                try:
                    mon = mode[2]() if mode[2] else None
                    ns, cpu = loop.go(n)
                    if mon:
                        out, err = mon.finish(args.timeout)
                        bad = mode[3](out, err, idle.pid if "another" in name else loop.pid, n)
                        if bad and bad.startswith("note: "):
                            if rnd > 0:
                                notes.append("run %d: %s" % (rnd, bad[6:]))
                        elif bad:
                            raise BenchError(bad)
                except BenchError as e:
                    failed[name] = str(e)
                    print("%s: FAILED: %s" % (name, e), file=sys.stderr)
                    continue
                if rnd > 0:
                    per_call[name].append(ns / n)
                    cpu_call[name].append(cpu / n)
                print("run %d %-34s %8.3f us/call, CPU %6.3f us/call" % (rnd, name, ns / n / 1000, cpu / n / 1000),
                      file=sys.stderr)
    finally:
        loop.close()
        idle.kill()
        idle.wait()

    base = statistics.median(per_call["unmonitored"]) if per_call["unmonitored"] else None
    cbase = statistics.median(cpu_call["unmonitored"]) if cpu_call["unmonitored"] else None
    lines = ["| counter | calls per run | wall µs per call, median (min–max) | rate vs unmonitored "
             "| target's CPU µs per call, median (min–max) | CPU added per call |",
             "|---|---:|---:|---:|---:|---:|"]
    for mode in modes:
        name, n = mode[0], mode[1]
        v, c = per_call[name], cpu_call[name]
        if name in failed or not v:
            lines.append("| %s | %d | failed: %s | | | |" % (name, n, failed.get(name, "no runs")))
            continue
        med, cmed = statistics.median(v), statistics.median(c)
        lines.append("| %s | %d | %.3f (%.3f–%.3f) | %.3f | %.3f (%.3f–%.3f) | %s |" % (
            name, n, med / 1000, min(v) / 1000, max(v) / 1000, base / med if base else 0,
            cmed / 1000, min(c) / 1000, max(c) / 1000,
            "%+.0f ns (%+.0f %%)" % (cmed - cbase, 100 * (cmed - cbase) / cbase) if cbase and name != "unmonitored"
            else ""))
    text = "\n".join(lines)
    info = "%s, %d CPUs, kernel %s, %s; %d runs per counter%s" % (
        platform.node(), ncpu, platform.release(), platform.machine(), args.runs,
        "" if tcpu is None else ", target on CPU %d, counters on CPU %d" % (tcpu, mcpu))
    print(info)
    print(text)
    for n in notes:
        print("note: " + n)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(info + "\n\n" + text + "\n" + "".join("\nnote: %s\n" % n for n in notes))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit("syscount-bench: %s" % e)
