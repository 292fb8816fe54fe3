#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Compare diag-sample with perf record + perf report, ltrace -c and strace -c on a
spinning target, and measure what each costs the target.

Targets (each reports its own loop iterations on stdin `COUNT`):
  cpufix    tests/fixtures/cpufix memset: one thread spinning in spin_loop -> memset
  python    a CPython thread spinning in a Python loop (run by /usr/bin/python3.11)

For each target, round-robin R times: a baseline window with no tool, then each
method over the same window D:
  diag-sample   diag-sample -J -d D PID
  perf          perf record -F 99 --call-graph dwarf -p PID -o F -- sleep D, then
                perf report -i F --stdio (the two times are added)
  ltrace -c     ltrace -c -p PID, ended with SIGINT after D
  strace -c     strace -c -f -p PID, ended with SIGINT after D
and measure:
  wall          the method's wall time, fork to reap (perf: record + report)
  CPU           the method's user + system time (rusage of wait4)
  throughput    the target's iterations per second while the method ran, over the
                baseline's: 100 % is no slowdown; and per second of the target's own
                CPU time (other load on the machine left out)
See bench/README.md.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import sampletest as st  # noqa: E402  (the fixture driver of the diag-sample tests)

PY_TARGET = r"""
import os, sys, threading, time
count = 0
def step(x):
    return (x * 31 + 7) % 1000003
def spin():
    global count
    x = 1
    while True:
        x = step(x)
        count += 1
threading.Thread(target=spin, name="spinner", daemon=True).start()
t0 = time.monotonic()
print("READY pid=%d" % os.getpid(), flush=True)
for line in sys.stdin:
    if line.strip() == "COUNT":
        print("COUNT iters=%d ms=%d" % (count, (time.monotonic() - t0) * 1000), flush=True)
"""


class BenchError(Exception):
    pass


class Target:
    """A target that prints READY pid=P and answers COUNT on stdin (sampletest's
    LineProc, the diag-sample tests' fixture driver)."""

    def __init__(self, argv, cpu):
        self.lp = st.LineProc(argv, stdin=True)
        self.proc = self.lp.proc
        self.pid = self.lp.pid
        try:
            time.sleep(0.3)                     # the spinner is up
            if cpu is not None:
                for tid in os.listdir("/proc/%d/task" % self.pid):
                    os.sched_setaffinity(int(tid), {cpu})
        except BaseException:
            self.close()
            raise

    def count(self):
        """(iterations so far, ms since READY, CPU ns of all its threads so far)."""
        self.lp.send("COUNT")
        w = self.lp.wait_line(lambda w: w[0] == "COUNT", timeout=30)
        if not w:
            raise BenchError("the target did not answer COUNT (status %s)" % self.proc.poll())
        kv = st.LineProc._kv(w[1:])
        cpu = 0
        for tid in os.listdir("/proc/%d/task" % self.pid):
            cpu += st.oncpu_ns(self.pid, int(tid)) or 0
        return kv["iters"], kv["ms"], cpu

    def close(self):
        self.lp.close()


def tool_env():
    env = dict(os.environ)
    env.pop("DEBUGINFOD_URLS", None)
    env["LC_ALL"] = "C"
    return env


def spawn(argv, out, cpus):
    def pre():
        os.setsid()
        if cpus:
            os.sched_setaffinity(0, cpus)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                            env=tool_env(), preexec_fn=pre)


def reap(p, timeout):
    """wait4 with a timeout: (status, cpu seconds, stderr)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            err = p.stderr.read().decode(errors="replace")
            p.stderr.close()
            return p.returncode, ru.ru_utime + ru.ru_stime, err
        if time.monotonic() > deadline:
            os.killpg(p.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.01)


def run_method(name, target, dur, cmds, tmp, cpus, timeout):
    """One timed run: {wall, cpu, rate, status, err}."""
    c0 = target.count()
    t0 = time.monotonic()
    cpu = 0.0
    err = ""
    status = 0
    outf = os.path.join(tmp, "out")
    if name == "diag-sample":
        with open(outf, "w") as out:
            status, cpu, err = reap(spawn([cmds["diag-sample"], "-J", "-d", "%gs" % dur, str(target.pid)], out, cpus),
                                    timeout)
        c1 = target.count()
    elif name == "perf":
        data = os.path.join(tmp, "perf.data")
        with open(outf, "w") as out:
            status, cpu, err = reap(spawn([cmds["perf"], "record", "-q", "-F", "99", "--call-graph", "dwarf", "-p",
                                           str(target.pid), "-o", data, "--", "sleep", "%g" % dur], out, cpus), timeout)
            c1 = target.count()
            if status == 0:
                status, cpu2, err2 = reap(spawn([cmds["perf"], "report", "-i", data, "--stdio"], out, cpus), timeout)
                cpu += cpu2
                err += err2
        try:
            os.unlink(data)
        except OSError:
            pass
    else:
        tool = name.split()[0]
        argv = [cmds[tool], "-c", "-p", str(target.pid)] if tool == "ltrace" else \
            [cmds[tool], "-c", "-f", "-p", str(target.pid)]
        with open(outf, "w") as out:
            p = spawn(argv, out, cpus)
            time.sleep(dur)
            c1 = target.count()
            p.send_signal(signal.SIGINT)
            status, cpu, err = reap(p, timeout)
    wall = time.monotonic() - t0
    with open(outf) as f:
        out = f.read()
    return dict(rates(c0, c1), wall=wall, cpu=cpu, status=status, err=err, out=out)


def rates(c0, c1):
    """Iterations per second of wall time, and per second of the target's CPU time
    (the second leaves out the time other load kept it from a CPU, and a stopped
    target's time, keeping what a tool costs it on the CPU)."""
    it = c1[0] - c0[0]
    return {"rate": it / max(1, c1[1] - c0[1]) * 1000, "rate_cpu": it / max(1, c1[2] - c0[2]) * 1e9}


def accepted(name, res, target_kind):
    """Whether the run produced what it is for; a reason when not."""
    if name == "diag-sample":
        if res["status"] not in (0, 4):
            return "exit %s: %s" % (res["status"], res["err"].strip()[:200])
        if '"busy-loop"' not in res["out"]:
            return "no busy-loop verdict"
        if target_kind == "cpufix" and "spin_loop" not in res["out"]:
            return "spin_loop not in its stacks"
        return None
    if name == "perf":
        if res["status"] != 0:
            return "exit %s: %s" % (res["status"], res["err"].strip()[:200])
        if target_kind == "cpufix" and "spin_loop" not in res["out"]:
            return "spin_loop not in perf report"
        return None
    if res["status"] not in (0, 130, -2):
        return "exit %s: %s" % (res["status"], res["err"].strip()[:200])
    return None


def fmt(v, unit=""):
    return "-" if v is None else ("%.2f%s" % (v, unit) if v < 10 else "%.1f%s" % (v, unit))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--diag-sample")
    ap.add_argument("--cpufix")
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--perf", default="perf")
    ap.add_argument("--ltrace", default="ltrace")
    ap.add_argument("--strace", default="strace")
    ap.add_argument("-d", "--duration", type=float, default=5.0)
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("--only", choices=("cpufix", "python"))
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--markdown")
    a = ap.parse_args()

    build = a.build if os.path.isabs(a.build) else os.path.join(REPO, a.build)
    cmds = {
        "diag-sample": a.diag_sample or os.path.join(build, "tools", "diag-sample", "diag-sample"),
        "perf": shutil_which(a.perf), "ltrace": shutil_which(a.ltrace), "strace": shutil_which(a.strace),
    }
    cpufix = a.cpufix or os.path.join(build, "tests", "fixtures", "cpufix")
    for k in ("diag-sample",):
        if not os.access(cmds[k], os.X_OK):
            sys.exit("%s not found at %s (build it, or --%s)" % (k, cmds[k], k))
    methods = ["diag-sample"] + [m for m, t in (("perf", "perf"), ("ltrace -c", "ltrace"), ("strace -c", "strace"))
                                 if cmds[t]]
    notes = ["%s is not installed: skipped" % t for t in ("perf", "ltrace", "strace") if not cmds[t]]
    ncpu = len(os.sched_getaffinity(0))
    tcpu = None if a.no_pin or ncpu < 2 else max(os.sched_getaffinity(0))
    tcpus = None if tcpu is None else os.sched_getaffinity(0) - {tcpu}
    targets = []
    if a.only in (None, "cpufix"):
        targets.append(("cpufix", "cpufix memset (C, spin_loop -> memset)", [cpufix, "memset"]))
    if a.only in (None, "python"):
        if os.access(a.python, os.X_OK):
            targets.append(("python", "CPython %s, one thread in a Python loop" % os.path.basename(a.python),
                            [a.python, "-c", PY_TARGET]))
        else:
            notes.append("%s not found: the Python target is skipped" % a.python)

    md = []
    md.append("Machine: %d CPUs, kernel %s; window %g s, %d runs per method, round-robin%s."
              % (os.cpu_count(), os.uname().release, a.duration, a.runs,
                 "" if tcpu is None else "; target pinned to CPU %d, tools to the others" % tcpu))
    with tempfile.TemporaryDirectory(prefix="sample-bench-") as tmp:
        for kind, title, argv in targets:
            res = {m: [] for m in ["baseline"] + methods}
            failed = {}
            t = Target(argv, tcpu)
            try:
                for r in range(a.runs):
                    c0 = t.count()
                    time.sleep(a.duration)
                    c1 = t.count()
                    res["baseline"].append(rates(c0, c1))
                    for m in methods:
                        if m in failed:
                            continue
                        try:
                            x = run_method(m, t, a.duration, cmds, tmp, tcpus, a.timeout)
                            why = accepted(m, x, kind)
                            time.sleep(0.3)
                            if t.proc.poll() is not None:
                                raise BenchError("died")
                        except (BenchError, BrokenPipeError):
                            rc = t.proc.wait()
                            why = "the target died (%s)" % ("signal %s" % signal.Signals(-rc).name if rc < 0
                                                            else "exit %d" % rc)
                            t.close()
                            t = Target(argv, tcpu)
                            time.sleep(a.duration)      # the new target settles
                        if why:
                            failed[m] = why
                            print("%s on %s: FAILED: %s" % (m, kind, why), file=sys.stderr)
                            continue
                        res[m].append(x)
                        print("%s on %s, run %d: wall %.2f s, cpu %.2f s, target %.0f it/s"
                              % (m, kind, r + 1, x["wall"], x["cpu"], x["rate"]), file=sys.stderr)
            finally:
                t.close()
            base = statistics.median(x["rate"] for x in res["baseline"])
            base_cpu = statistics.median(x["rate_cpu"] for x in res["baseline"])
            ds = res.get("diag-sample") or []
            ds_cpu = statistics.median(x["cpu"] for x in ds) if ds else None
            ds_wall = statistics.median(x["wall"] for x in ds) if ds else None
            md.append("")
            md.append("### %s" % title)
            md.append("")
            md.append("Baseline: %.0f iterations per second, %.0f per second of the target's CPU time "
                      "(medians of %d windows of %g s)." % (base, base_cpu, len(res["baseline"]), a.duration))
            md.append("")
            md.append("| method | wall, median | CPU (user+sys), median | vs diag-sample CPU | "
                      "target throughput, median | target slowdown | per CPU second of the target |")
            md.append("|---|---|---|---|---|---|---|")
            for m in methods:
                if m in failed:
                    md.append("| %s | FAILED: %s | | | | | |" % (m, failed[m]))
                    continue
                xs = res[m]
                wall = statistics.median(x["wall"] for x in xs)
                cpu = statistics.median(x["cpu"] for x in xs)
                rate = statistics.median(x["rate"] for x in xs)
                rcpu = statistics.median(x["rate_cpu"] for x in xs)
                md.append("| %s | %s s%s | %s s | %s | %.1f %% of baseline | %s | %.1f %% of baseline |" % (
                    m, fmt(wall), "" if m == "diag-sample" or not ds_wall else " (%.2fx)" % (wall / ds_wall),
                    fmt(cpu), "-" if m == "diag-sample" or not ds_cpu else "%.2fx" % (cpu / ds_cpu),
                    100.0 * rate / base if base else 0,
                    "%.2fx" % (base / rate) if rate > 0 else "stopped", 100.0 * rcpu / base_cpu if base_cpu else 0))
    for n in notes:
        md.append("")
        md.append("Note: " + n)
    text = "\n".join(md) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)


def shutil_which(cmd):
    import shutil
    return shutil.which(cmd)


if __name__ == "__main__":
    main()
