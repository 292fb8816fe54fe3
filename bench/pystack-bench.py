#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Compare diag-stack's Python frames with gdb's py-bt on a CPython service.

The target is tests/fixtures/pysvc.py under Debian's /usr/bin/python3.11 (four
threads: a spinner, a worker in Condition.wait, a sleeper in time.sleep, the main
thread reading stdin). Each tool runs R times, round-robin, after one untimed run:

  diag-stack          diag-stack -J PID (native and Python frames)
  diag-stack-nopy     diag-stack -J --no-python PID (native frames only)
  gdb-py-bt           gdb -p PID -batch -ex "thread apply all py-bt"
                      (needs python3.11-dbg for the py-bt command)

and for each run it measures:

  wall      the tool's wall time, fork to reap
  traced    how long the target had a tracer (TracerPid in /proc/PID/status, polled
            every 1 ms): while traced, gdb keeps every thread stopped; diag-stack
            stops them for a part of it
  self      diag-stack's own stopped_us (-J): first interrupt to last thread resumed
  py        of that pause, the time diag-stack spent reading the Python frames
            (python_us in its JSON)

Every tool's output is checked (the spinner's Python frame, Spinner.spin at its
line in spinmod.py) so that a tool that fails is not timed as a fast one.
The pause with and without --no-python is shown too, but on a two-CPU machine with a
spinning target its run-to-run spread is larger than the Python reads: py is the
figure for what they cost. See bench/README.md.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYSVC = os.path.join(REPO, "tests", "fixtures", "pysvc.py")
SPINMOD = os.path.join(REPO, "tests", "fixtures", "spinmod.py")
PYTHON = "/usr/bin/python3.11"


class BenchError(Exception):
    pass


def spin_line():
    with open(SPINMOD) as f:
        for n, line in enumerate(f, 1):
            if "# MARK: spin" in line:
                return n
    raise BenchError("no MARK: spin in spinmod.py")


def tracer_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TraceWatch(threading.Thread):
    """Polls the target's TracerPid while a tool runs: the total time it was traced."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop, self.traced_s = pid, threading.Event(), 0.0

    def run(self):
        since = None
        while not self.stop.is_set():
            now = time.monotonic()
            if tracer_of(self.pid):
                since = since or now
            elif since:
                self.traced_s += now - since
                since = None
            time.sleep(0.001)
        if since:
            self.traced_s += time.monotonic() - since


def run_tool(argv, pid, timeout):
    env = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
    env["LC_ALL"] = "C"
    watch = TraceWatch(pid)
    watch.start()
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(argv)}` took more than {timeout} s")
    finally:
        wall = time.monotonic() - t0
        watch.stop.set()
        watch.join()
    return wall, watch.traced_s, p


def check_diag_stack(p, pid, line, python):
    if p.returncode != 0:
        return None, f"exit {p.returncode}: {p.stderr.strip()[:200]}"
    proc = next((x for x in json.loads(p.stdout).get("processes", []) if x.get("pid") == pid), {})
    frames = [(f.get("function"), os.path.basename(f.get("file") or ""), f.get("line"))
              for g in proc.get("groups", []) for f in g.get("frames", []) if f.get("python")]
    if python and ("Spinner.spin", "spinmod.py", line) not in frames:
        return None, f"no Spinner.spin (spinmod.py:{line}) frame"
    if not python and frames:
        return None, "Python frames with --no-python"
    return (proc.get("stopped_us"), proc.get("python_us")), None


def check_gdb(p, pid, line, python):
    if f'spinmod.py", line {line}, in spin' not in p.stdout:
        return None, f"no spinmod.py line {line} in py-bt: {(p.stdout + p.stderr).strip()[-300:]!r}"
    return (None, None), None


def start_target():
    p = subprocess.Popen([PYTHON, PYSVC], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = p.stdout.readline().strip()
    m = re.fullmatch(r"READY pid=(\d+)", ready)
    if not m:
        p.kill()
        raise BenchError(f"pysvc.py: expected READY, got {ready!r}")
    for _ in range(4):
        p.stdout.readline()
    return p


def med(v):
    return statistics.median(v) if v else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"),
                    help="the build directory with tools/diag-stack/diag-stack (default build-bench)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each tool (default 5)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds one tool run may take")
    ap.add_argument("--no-gdb", action="store_true", help="diag-stack only")
    ap.add_argument("--markdown", help="also write the report to this file")
    args = ap.parse_args()

    diag_stack = os.path.join(args.build, "tools", "diag-stack", "diag-stack")
    if not os.access(diag_stack, os.X_OK):
        sys.exit(f"pystack-bench: no {diag_stack}: build it first (see bench/README.md)")
    if not os.access(PYTHON, os.X_OK):
        sys.exit(f"pystack-bench: {PYTHON} is not installed")
    tools = [("diag-stack", [diag_stack, "-J"], check_diag_stack, True),
             ("diag-stack-nopy", [diag_stack, "-J", "--no-python"], check_diag_stack, False)]
    if not args.no_gdb:
        if subprocess.run(["which", "gdb"], capture_output=True).returncode != 0:
            sys.exit("pystack-bench: gdb is not installed (or pass --no-gdb)")
        tools.append(("gdb-py-bt", ["gdb", "-p", "{pid}", "-batch", "-ex", "thread apply all py-bt"], check_gdb, True))

    line = spin_line()
    res = {name: {"wall": [], "traced": [], "self": [], "py": []} for name, _, _, _ in tools}
    target = start_target()
    try:
        pid = target.pid
        for rnd in range(args.runs + 1):
            for name, argv, check, python in tools:
                argv = [a.replace("{pid}", str(pid)) for a in argv] + ([] if name.startswith("gdb") else [str(pid)])
                wall, traced, p = run_tool(argv, pid, args.timeout)
                (stopped_us, python_us), why = check(p, pid, line, python)
                if why:
                    raise BenchError(f"{name} failed: {why}")
                if rnd == 0:
                    continue        # untimed: page cache, debuginfo, symbol tables
                res[name]["wall"].append(wall)
                res[name]["traced"].append(traced)
                if stopped_us is not None:
                    res[name]["self"].append(stopped_us / 1000.0)
                if python_us is not None:
                    res[name]["py"].append(python_us / 1000.0)
    finally:
        target.kill()
        target.wait()

    out = []
    out.append(f"# pystack-bench: {platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
               f"{PYTHON} on pysvc.py (4 threads), {args.runs} runs each, medians")
    out.append("")
    out.append("| tool | wall (s) | target traced (ms) | diag-stack's own pause (ms) | of it, Python reads (ms) |")
    out.append("| --- | ---: | ---: | ---: | ---: |")
    for name, _, _, _ in tools:
        r = res[name]
        selfp = f"{med(r['self']):.2f}" if r["self"] else "-"
        pyp = f"{med(r['py']):.3f}" if r["py"] else "-"
        out.append(f"| {name} | {med(r['wall']):.3f} | {med(r['traced']) * 1000:.1f} | {selfp} | {pyp} |")
    out.append("")
    ds, nopy = res["diag-stack"], res["diag-stack-nopy"]
    out.append(f"Python frames cost in the pause: {med(ds['py']):.3f} ms read while stopped "
               f"(max {max(ds['py']):.3f} ms); pause with them {med(ds['self']):.2f} ms, "
               f"with --no-python {med(nopy['self']):.2f} ms (medians)")
    out.append(f"Python frames cost in wall time: {med(ds['wall']) - med(nopy['wall']):+.3f} s")
    if "gdb-py-bt" in res:
        g = res["gdb-py-bt"]
        out.append(f"gdb py-bt / diag-stack: wall x{med(g['wall']) / med(ds['wall']):.1f}, "
                   f"target traced x{med(g['traced']) / max(med(ds['traced']), 1e-6):.0f}")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"pystack-bench: {e}")
