#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Compare diag-stack with eu-stack and gdb on a process with many idle threads.

For each thread count, start bench/pausemeter (N idle threads blocked in read(), plus a
meter thread that spins and watches the clock), then run every tool R times against it,
round-robin, and measure:

  wall      the tool's wall time, fork to reap (median and min)
  RSS       the tool's peak resident set (ru_maxrss from wait4)
  gap       the longest gap the meter thread saw in its clock reads during the run: the
            longest time the target's meter thread did not run (stopped or preempted)
  stopped   the time the meter thread was stopped during the run, neither running nor
            waiting for a CPU (window - cpu time - run_delay from schedstat)
  self      diag-stack's own stopped_us (-J), first interrupt to last detach
  baseline  the meter's longest gap over the same interval with no tool running

Each tool's output is checked (every idle thread's stack reaches pm_idle) so that a tool
that fails is not timed as a fast one. See bench/README.md.
"""

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDLE_FN = "pm_idle"
TARGETS_PAUSE_MS = {50: 20.0, 1000: 100.0}   # diag-stack's pause targets from the issue


def rel(path):
    """A path as shown in reports: relative to the repository when inside it."""
    p = os.path.abspath(path)
    return os.path.relpath(p, REPO) if p.startswith(REPO + os.sep) else path


class BenchError(Exception):
    pass


class Target:
    """A running pausemeter, driven through its stdin/stdout control protocol."""

    def __init__(self, exe, nthreads, meter_cpu):
        argv = [exe]
        if meter_cpu is not None:
            argv += ["--meter-cpu", str(meter_cpu)]
        argv.append(str(nthreads))
        self.nthreads = nthreads
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.pid = None
        self.buf = b""
        try:
            self._start(nthreads)
        except BaseException:
            self.close()
            raise

    def _start(self, nthreads):
        line = self._readline(10)
        m = re.fullmatch(r"PID (\d+)", line)
        if not m:
            raise BenchError(f"pausemeter: expected 'PID <pid>', got {line!r}")
        self.pid = int(m.group(1))
        # Thread creation for 1,000 threads can take a moment on a loaded box.
        if self._readline(60) != "READY":
            raise BenchError("pausemeter did not print READY")
        ntasks = len(os.listdir(f"/proc/{self.pid}/task"))
        if ntasks != nthreads + 2:
            raise BenchError(f"pausemeter has {ntasks} threads, expected {nthreads + 2}")

    def _readline(self, timeout):
        # Lines are read from the raw fd: a buffered reader would hide lines from select().
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise BenchError("pausemeter did not answer in time")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise BenchError(f"pausemeter exited (status {self.proc.poll()})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()

    def window(self):
        """End the meter's current window and start a new one; return the ended one's stats."""
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        line = self._readline(30)
        f = line.split()
        stats = {f[i]: int(f[i + 1]) for i in range(0, len(f) - 1, 2)}
        if "maxgap_us" not in stats:
            raise BenchError(f"pausemeter: unexpected answer {line!r}")
        return stats

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the tools: command line and a check that the output really holds the stacks ----

def check_diag_stack(out, n):
    try:
        doc = json.loads(out)
        p = doc["processes"][0]
    except (ValueError, KeyError, IndexError) as e:
        return None, f"no JSON document ({e})"
    if not p.get("stopped"):
        return None, "target not stopped (no user stacks)"
    if p.get("threads_total") != n + 2:
        return None, f"threads_total {p.get('threads_total')}, expected {n + 2}"
    idle = sum(g.get("count", 0) for g in p.get("groups", [])
               if any(f.get("function") == IDLE_FN for f in g.get("frames", [])))
    if idle != n:
        return None, f"{idle} threads unwound to {IDLE_FN}, expected {n}"
    return p.get("stopped_us"), None


def check_eu_stack(out, n):
    tids = len(re.findall(r"^TID \d+:", out, re.M))
    idle = len(re.findall(rf"^#\d+\s+0x[0-9a-f]+\s+{IDLE_FN}\b", out, re.M))
    if tids != n + 2:
        return None, f"{tids} threads listed, expected {n + 2}"
    if idle != n:
        return None, f"{idle} stacks reach {IDLE_FN}, expected {n}"
    return None, None


def check_gdb(out, n):
    threads = len(re.findall(r"^Thread \d+ \(", out, re.M))
    idle = len(re.findall(rf"^#\d+\s+.*\b{IDLE_FN} \(", out, re.M))
    if threads != n + 2:
        return None, f"{threads} threads listed, expected {n + 2}"
    if idle != n:
        return None, f"{idle} stacks reach {IDLE_FN}, expected {n}"
    return None, None


def tools_from_args(args):
    tools = []
    if not os.access(args.diag_stack, os.X_OK):
        raise BenchError(f"{rel(args.diag_stack)} not found: build it "
                         "(meson setup build-bench -Dbuildtype=release && ninja -C build-bench)")
    tools.append(("diag-stack", lambda pid: [args.diag_stack, "-J", str(pid)], check_diag_stack))
    # without the CPU-rate window (100 ms of waiting before the stop by default)
    tools.append(("diag-stack --cpu-window 0", lambda pid: [args.diag_stack, "-J", "--cpu-window", "0", str(pid)],
                  check_diag_stack))
    notes = []
    eu = shutil.which(args.eu_stack)
    if eu:
        tools.append(("eu-stack", lambda pid: [eu, "-p", str(pid)], check_eu_stack))
        # the same work diag-stack does by default: inlined frames and source lines
        tools.append(("eu-stack -i -s", lambda pid: [eu, "-i", "-s", "-p", str(pid)], check_eu_stack))
    else:
        notes.append(f"eu-stack ({args.eu_stack}) is not installed: skipped "
                     "(Debian: apt-get install elfutils)")
    gdb = shutil.which(args.gdb)
    if gdb:
        tools.append(("gdb", lambda pid: [gdb, "-batch", "-p", str(pid),
                                          "-ex", "thread apply all bt"], check_gdb))
    else:
        notes.append(f"gdb ({args.gdb}) is not installed: skipped (Debian: apt-get install gdb)")
    return tools, notes


# ---- running one tool ----

live_children = set()


def kill_live_children():
    """Kill and reap the tools still running (after an exception or a signal)."""
    for pid in list(live_children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        live_children.discard(pid)


def on_term(sig, frame):
    raise SystemExit(128 + sig)     # unwinds through the finally blocks that clean up


def run_tool(argv, tool_cpus, timeout):
    """Run argv to completion; return (wall_s, maxrss_kib, status, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        def pre():
            if tool_cpus:
                os.sched_setaffinity(0, tool_cpus)
        # No debuginfod: no tool downloads anything while it is timed.
        env = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
        env["LC_ALL"] = "C"
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             preexec_fn=pre, env=env)
        live_children.add(p.pid)
        timer = threading.Timer(timeout, lambda: os.kill(p.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        t1 = time.monotonic()
        live_children.discard(p.pid)
        p.returncode = os.waitstatus_to_exitcode(status)   # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return (t1 - t0, ru.ru_maxrss, p.returncode,
                out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def failure(name, status, why, out, err):
    """Describe a failed run for the table; keep its output for a look afterwards."""
    fd, path = tempfile.mkstemp(prefix=f"stack-bench-{name}-", suffix=".out")
    with os.fdopen(fd, "w") as f:
        f.write(out)
        f.write("\n---- stderr ----\n")
        f.write(err)
    print(f"stack-bench: {name} failed ({why}); its output is in {path}", file=sys.stderr)
    return f"exit {status}: {why}; stderr: {err.strip()[:200]!r}"


def bench_one_count(n, tools, args, meter_cpu, tool_cpus):
    res = {name: {"wall": [], "rss": [], "gap": [], "stopped": [], "self": [], "base": [],
                  "fail": None} for name, _, _ in tools}
    target = Target(args.pausemeter, n, meter_cpu)
    try:
        # One untimed run of each tool first: page cache, debuginfo files, symbol tables.
        for name, cmd, check in tools:
            _, _, status, out, err = run_tool(cmd(target.pid), tool_cpus, args.timeout)
            _, why = check(out, n)
            if why:
                res[name]["fail"] = failure(name, status, why, out, err)
        for _ in range(args.runs):
            for name, cmd, check in tools:          # round-robin: background noise is shared
                r = res[name]
                if r["fail"]:
                    continue
                target.window()
                wall, rss, status, out, err = run_tool(cmd(target.pid), tool_cpus, args.timeout)
                m = target.window()
                selfus, why = check(out, n)
                if why:
                    r["fail"] = failure(name, status, why, out, err)
                    continue
                # Baseline: the same interval again, with nothing running against the target.
                time.sleep(wall)
                b = target.window()
                r["wall"].append(wall)
                r["rss"].append(rss)
                r["gap"].append(m["maxgap_us"])
                r["stopped"].append(m.get("stopped_us", -1))
                r["base"].append(b["maxgap_us"])
                if selfus is not None:
                    r["self"].append(selfus)
    finally:
        kill_live_children()    # a tool still running keeps the target stopped
        target.close()
    return res


# ---- report ----

def med(v):
    return statistics.median(v) if v else None


def fmt_s(s):
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def fmt_ms(us):
    return f"{us / 1000:.1f} ms" if us >= 100 else f"{us / 1000:.2f} ms"


def ratios(value, name, ref):
    """'(0.3x eu-stack, 0.1x gdb)' for the reference tools other than this one."""
    parts = []
    for other in ("eu-stack", "gdb"):
        o = ref.get(other)
        if other == name or o is None or o <= 0:
            continue
        x = value / o
        parts.append(f"{x:.0f}x {other}" if x >= 10 else f"{x:.2g}x {other}")
    return f" ({', '.join(parts)})" if parts else ""


def table(n, res, runs):
    ref_wall = {k: med(v["wall"]) for k, v in res.items() if not v["fail"]}
    ref_rss = {k: med(v["rss"]) for k, v in res.items() if not v["fail"]}
    ref_gap = {k: med(v["gap"]) for k, v in res.items() if not v["fail"]}
    lines = [
        f"#### {n} idle threads ({n + 2} in all), {runs} runs per tool",
        "",
        "| tool | wall, median (min) | peak RSS | target's longest gap, median "
        "| target stopped (meter), median | self-reported stop, median "
        "| baseline gap, median |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res.items():
        if r["fail"]:
            lines.append(f"| {name} | FAILED: {r['fail']} | | | | | |")
            continue
        w, rss, gap = med(r["wall"]), med(r["rss"]), med(r["gap"])
        st = [x for x in r["stopped"] if x >= 0]
        lines.append(
            f"| {name} | {fmt_s(w)} (min {fmt_s(min(r['wall']))}){ratios(w, name, ref_wall)} "
            f"| {rss / 1024:.1f} MiB{ratios(rss, name, ref_rss)} "
            f"| {fmt_ms(gap)}{ratios(gap, name, ref_gap)} "
            f"| {fmt_ms(med(st)) if st else 'n/a'} "
            f"| {fmt_ms(med(r['self'])) + ' (max ' + fmt_ms(max(r['self'])) + ')' if r['self'] else '-'} "
            f"| {fmt_ms(med(r['base']))} |")
    return lines


def verdicts(n, res):
    r = res.get("diag-stack")
    if not r or r["fail"]:
        return [f"- {n} threads: diag-stack failed, no verdict"]
    out = []
    goal = TARGETS_PAUSE_MS.get(n)
    if goal is not None:
        selfms = med(r["self"]) / 1000
        gapms = med(r["gap"]) / 1000
        worst = max(r["self"]) / 1000
        ok = "met" if selfms <= goal else "MISSED"
        out.append(f"- {n} threads, pause <= {goal:g} ms: {ok} (self-reported median "
                   f"{selfms:.1f} ms, worst {worst:.1f} ms; meter's longest gap median "
                   f"{gapms:.1f} ms)")
    eu = res.get("eu-stack")
    for name in ("diag-stack", "diag-stack --cpu-window 0"):
        r = res.get(name)
        if eu and not eu["fail"] and r and not r["fail"]:
            w, e = med(r["wall"]), med(eu["wall"])
            ok = "met" if w <= e else "MISSED"
            out.append(f"- {n} threads, wall <= eu-stack: {ok} ({name} {w:.3f} s, "
                       f"eu-stack {e:.3f} s median, {w / e:.2f}x)")
    return out


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return (f"{os.cpu_count()} CPUs ({model}), kernel {platform.release()}, "
            f"load average at start {load}")


def emit(out, markdown):
    """The results on stdout, and in the file markdown names, if any."""
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if markdown:
        with open(markdown, "w") as f:
            f.write(text)


def pin_plan(no_pin):
    """(meter CPU, tool CPUs): the last allowed CPU for the target's meter thread, the
    others for the tools; (None, None) with --no-pin or a single CPU."""
    if no_pin or (os.cpu_count() or 1) < 2:
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[-1], set(allowed[:-1])


def header_lines(meter_cpu, tool_cpus, notes):
    """The lines a results file starts with: machine, pinning, notes."""
    out = [f"Machine: {machine()}.", ""]
    if meter_cpu is not None:
        out += [f"Meter thread pinned to CPU {meter_cpu}, tools to CPU "
                f"{','.join(map(str, sorted(tool_cpus)))}.", ""]
    return out + [f"Note: {x}" for x in notes] + ([""] if notes else [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"),
                    help="meson build directory with a release build (default: build-bench)")
    ap.add_argument("--diag-stack", help="diag-stack binary (default: BUILD/tools/diag-stack/diag-stack)")
    ap.add_argument("--pausemeter", help="pausemeter binary (default: BUILD/bench/pausemeter)")
    ap.add_argument("--eu-stack", default="eu-stack", help="eu-stack command (default: eu-stack)")
    ap.add_argument("--gdb", default="gdb", help="gdb command (default: gdb)")
    ap.add_argument("-r", "--runs", type=int, default=5, help="timed runs per tool (default 5)")
    ap.add_argument("-n", "--threads", default="50,1000",
                    help="comma-separated idle thread counts (default 50,1000)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds before a tool run is killed")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin the meter to the last CPU and the tools to the others")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables to FILE")
    args = ap.parse_args()
    args.diag_stack = args.diag_stack or os.path.join(args.build, "tools", "diag-stack", "diag-stack")
    args.pausemeter = args.pausemeter or os.path.join(args.build, "bench", "pausemeter")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    try:
        counts = [int(x) for x in args.threads.split(",")]
    except ValueError:
        ap.error("--threads: a comma-separated list of numbers")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    meter_cpu, tool_cpus = pin_plan(args.no_pin)

    out = []
    try:
        if not os.access(args.pausemeter, os.X_OK):
            raise BenchError(f"{rel(args.pausemeter)} not found: build it (ninja -C BUILD)")
        tools, notes = tools_from_args(args)
        out += header_lines(meter_cpu, tool_cpus, notes)
        verdict = []
        for n in counts:
            print(f"... {n} threads", file=sys.stderr, flush=True)
            res = bench_one_count(n, tools, args, meter_cpu, tool_cpus)
            out += table(n, res, args.runs) + [""]
            verdict += verdicts(n, res)
        out += ["diag-stack against the targets:", ""] + verdict
    except BenchError as e:
        print(f"stack-bench: {e}", file=sys.stderr)
        return 1
    finally:
        kill_live_children()
    emit(out, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
