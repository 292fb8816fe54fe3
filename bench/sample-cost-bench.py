#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Two of diag-sample's targets, each against the tools used today, in the same run.

syscalls: a loop of one-byte write()s to /dev/null (tests/fixtures/sysloop, `GO N`),
  timed by the loop itself (wall and the thread's own CPU time) while nothing, then
  diag-sample (default settings: perf samples, /proc readings and exact system call
  counts), diag-sample --no-syscalls, strace -c -f -p and perf trace -s -p watch it.
  Also checks that diag-sample's count of write() equals the calls made.
report: 50 threads spinning (tests/fixtures/cpufix threads 50) sampled for 5 s at 99 Hz;
  the time diag-sample takes from the end of the window to its report (report_ms in
  -J, and the wall time beyond the window), against `perf report` on a `perf record
  -F 99 --call-graph dwarf` of the same 5 s.

Run as root, from the source tree, on a release build:
  meson setup build-bench -Dbuildtype=release -Dman=disabled && ninja -C build-bench
  python3 bench/sample-cost-bench.py [--build build-bench] [-r RUNS] [--markdown FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ATTACH_S = 1.5          # time given a tool to attach before the loop starts


def med(xs):
    return statistics.median(xs) if xs else float("nan")


class Line:
    """A fixture speaking lines on stdin/stdout."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.ready = self.p.stdout.readline()
        m = re.search(r"READY pid=(\d+)", self.ready)
        while not m:
            line = self.p.stdout.readline()
            if not line:
                sys.exit("fixture %s did not start" % argv)
            m = re.search(r"READY pid=(\d+)", line)
        self.pid = int(m.group(1))

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline()

    def close(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()


def start_tool(argv, out):
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)


def stop_tool(p, timeout=120):
    try:
        os.killpg(p.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
    return err


def syscalls(a, tools, rows):
    sysloop = os.path.join(a.build, "tests", "fixtures", "sysloop")
    methods = [("unmonitored", None, a.calls),
               ("diag-sample", [tools["diag-sample"], "-J", "-d", "10m"], a.calls),
               ("diag-sample --no-syscalls", [tools["diag-sample"], "-J", "--no-syscalls", "-d", "10m"], a.calls)]
    if tools["strace"]:
        methods.append(("strace -c -f -p", [tools["strace"], "-c", "-f", "-o", "/dev/null", "-p"], a.slow_calls))
    if tools["perf"]:
        methods.append(("perf trace -s -p", [tools["perf"], "trace", "-s", "-o", "/dev/null", "-p"], a.slow_calls))
    res = {m[0]: {"wall": [], "cpu": [], "exact": []} for m in methods}
    fx = Line([sysloop])
    try:
        fx.ask("GO 100000")             # warm
        for _ in range(a.runs):
            for name, argv, n in methods:
                tool = None
                with tempfile.TemporaryFile(mode="w+") as out:
                    if argv:
                        tool = start_tool(argv + [str(fx.pid)], out)
                        time.sleep(ATTACH_S)
                    line = fx.ask("GO %d" % n)
                    m = re.search(r"writes=(\d+) errors=(\d+) ns=(\d+) cpu_ns=(\d+)", line)
                    if tool:
                        err = stop_tool(tool)
                    if not m:
                        sys.exit("sysloop said %r" % line)
                    res[name]["wall"].append(int(m.group(3)) / n)
                    res[name]["cpu"].append(int(m.group(4)) / n)
                    if name == "diag-sample":
                        out.seek(0)
                        try:
                            doc = json.load(out)
                        except ValueError:
                            sys.exit("diag-sample gave no JSON: %s" % err)
                        calls = [s.get("calls") for p in doc.get("processes", []) if p.get("pid") == fx.pid
                                 for s in (p.get("syscalls") or []) if s.get("name") == "write"]
                        res[name]["exact"].append(calls == [n])
    finally:
        fx.close()
    base_wall, base_cpu = med(res["unmonitored"]["wall"]), med(res["unmonitored"]["cpu"])
    rows.append("### A loop of write() to /dev/null (sysloop), %d runs each, round-robin\n" % a.runs)
    rows.append("| watched by | calls per run | wall ns per call | rate vs unmonitored | target CPU ns per call | CPU added | write() count exact |")
    rows.append("|---|---:|---:|---:|---:|---:|---|")
    for name, _, n in methods:
        w, c = med(res[name]["wall"]), med(res[name]["cpu"])
        ex = res[name]["exact"]
        rows.append("| %s | %d | %.0f | %.3f | %.0f | %s | %s |" % (
            name, n, w, base_wall / w, c, "" if name == "unmonitored" else "%+.0f %%" % (100 * (c / base_cpu - 1)),
            ("%d of %d runs" % (sum(ex), len(ex))) if ex else ""))
    rows.append("")


def report(a, tools, rows):
    cpufix = os.path.join(a.build, "tests", "fixtures", "cpufix")
    res = {"diag-sample report_ms": [], "diag-sample wall beyond the window": [], "diag-sample samples": [],
           "perf report": [], "perf samples": []}
    for _ in range(a.runs):
        fx = Line([cpufix, "threads", str(a.threads)])
        try:
            t0 = time.monotonic()
            r = subprocess.run([tools["diag-sample"], "-J", "-d", "5s", str(fx.pid)], capture_output=True, text=True)
            wall = time.monotonic() - t0
            doc = json.loads(r.stdout)
            res["diag-sample report_ms"].append(doc["report_ms"])
            res["diag-sample wall beyond the window"].append(1000 * (wall - doc["duration_s"]))
            res["diag-sample samples"].append(sum(p["oncpu_samples"] for p in doc["processes"]))
            if tools["perf"]:
                with tempfile.TemporaryDirectory() as d:
                    data = os.path.join(d, "perf.data")
                    subprocess.run([tools["perf"], "record", "-q", "-F", "99", "--call-graph", "dwarf", "-o", data,
                                    "-p", str(fx.pid), "--", "sleep", "5"], capture_output=True)
                    t0 = time.monotonic()
                    r = subprocess.run([tools["perf"], "report", "--stdio", "-i", data], capture_output=True, text=True)
                    res["perf report"].append(1000 * (time.monotonic() - t0))
                    m = re.search(r"Samples: (\d+)K? ", r.stdout)
                    if m:
                        res["perf samples"].append(int(m.group(1)) * (1000 if "K " in m.group(0) else 1))
        finally:
            fx.close()
    rows.append("### From the end of a 5 s window to the report: %d spinning threads at 99 Hz, %d runs\n"
                % (a.threads, a.runs))
    rows.append("| measure | median | min | max |")
    rows.append("|---|---:|---:|---:|")
    for k, v in res.items():
        if v:
            rows.append("| %s | %.1f | %.1f | %.1f |" % (k, med(v), min(v), max(v)))
    if res["perf report"]:
        rows.append("\nperf report / diag-sample report_ms: %.1f" % (med(res["perf report"]) / med(res["diag-sample report_ms"])))
    rows.append("")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2000000, help="write()s per run, unmonitored and diag-sample")
    ap.add_argument("--slow-calls", type=int, default=20000, help="write()s per run under strace and perf trace")
    ap.add_argument("--threads", type=int, default=50)
    ap.add_argument("--only", choices=("syscalls", "report"))
    ap.add_argument("--markdown")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: system call counting and perf need it")
    tools = {"diag-sample": os.path.join(a.build, "tools", "diag-sample", "diag-sample"),
             "strace": shutil.which("strace"), "perf": shutil.which("perf")}
    rows = []
    if a.only != "report":
        syscalls(a, tools, rows)
    if a.only != "syscalls":
        report(a, tools, rows)
    text = "\n".join(rows)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
