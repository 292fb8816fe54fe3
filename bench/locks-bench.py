#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Time diag-locks on a population of blocked threads, next to the way it is done by hand.

Two scenarios, each built by bench/lockpop:

  system  N processes with T threads in all, most idle (condition variable or read()),
          every K-th process with a mutex held by a thread stuck in read() and two
          waiters, and F processes waiting in flock() on a file lockpop holds.
          Timed: `diag-locks -J` (whole system) and `lslocks` (file locks only).
  one     one process of 1000 threads, 500 of them waiting on 10 mutexes whose holders
          are stuck in read(). Timed: `diag-locks -J -p PID` and
          `gdb -batch -p PID -ex 'thread apply all bt'` (stacks only: which thread holds
          which mutex is still left to a human reading 1000 backtraces).

Each tool gets one untimed warm-up run, then R timed runs, round-robin. Wall time is
fork to reap; peak RSS is the tool's own, from GNU time. A run only counts if the output holds
what lockpop set up (see check_* below). See bench/README.md.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = "/usr/bin/time"                          # GNU time, for the peak RSS
TARGETS_MS = {"system": 200.0, "one": 50.0}     # diag-locks wall-time targets from the issue


class BenchError(Exception):
    pass


class Pop:
    """A running lockpop; ends when its stdin closes (it kills its children)."""

    def __init__(self, argv, timeout):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, start_new_session=True)
        self.info = {}
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                self.close()
                raise BenchError("lockpop did not get READY in %d s" % timeout)
            line = self.p.stdout.readline()
            if not line:
                self.close()
                raise BenchError("lockpop exited before READY (status %s)" % self.p.wait())
            w = line.split()
            if w[0] == "READY":
                break
            if w[0] in ("PID", "TARGET"):
                self.info[w[0].lower()] = int(w[1])
            elif w[0] == "EXPECT":
                kv = dict(zip(w[1::2], w[2::2]))
                self.info["mutexes"] = int(kv["mutexes"])
                self.info["waiters"] = int(kv["waiters"])
                self.info["flock_waiters"] = int(kv["flock_waiters"])
                self.info["lockfile"] = kv["lockfile"]

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(timeout=10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def run_tool(argv, timeout):
    """(wall s, maxrss KiB, status, stdout, stderr) of one run, fork to reap.

    The tool runs under GNU time, which reports its peak RSS: the ru_maxrss that
    wait4 gives for a child forked from Python keeps Python's own high-water mark
    across the exec, and would hide small tools under the interpreter's size."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r") as rss:
        argv = [TIME, "-f", "%M", "-o", rss.name] + argv
        env = dict(os.environ, LC_ALL="C")
        env.pop("DEBUGINFOD_URLS", None)
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, ru = wait4_timeout(p, timeout)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)     # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        try:
            maxrss = int(rss.read().strip().splitlines()[-1])
        except (ValueError, IndexError):
            maxrss = 0
        return wall, maxrss, p.returncode, out.read().decode(errors="replace"), \
            err.read().decode(errors="replace")


def wait4_timeout(p, timeout):
    """os.wait4 of p, killing it after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            return pid, status, ru
        if time.monotonic() > deadline:
            p.kill()
            return os.wait4(p.pid, 0)
        time.sleep(0.002)


# ---- output checks: the run found what lockpop set up ----

def check_diag_system(out, info):
    d = json.loads(out)
    muts = [l for l in d["futex_locks"] if l["name"] == "lp_lock"]
    good = [l for l in muts if l["owner"] and l["owner"]["syscall"].startswith("read(")
            and len(l["waiters"]) == 2 and l["confidence"] in ("likely", "certain")]
    if len(good) != info["mutexes"]:
        return "%d of %d lp_lock mutexes with their owner in read() and 2 waiters" % (len(good), info["mutexes"])
    fl = [g for g in d["file_locks"] if g["path"] == info["lockfile"]]
    if len(fl) != 1 or fl[0]["holder_pid"] != info["pid"] or len(fl[0]["waiters"]) != info["flock_waiters"]:
        return "the flock on the lockfile, its holder or its %d waiters not found" % info["flock_waiters"]
    return None


def check_diag_one(out, info):
    d = json.loads(out)
    muts = [l for l in d["futex_locks"] if l["name"].startswith("lp_locks")]
    owned = [l for l in muts if l["owner"] and l["owner"]["syscall"].startswith("read(")]
    nw = sum(len(l["waiters"]) for l in owned)
    if len(owned) != info["mutexes"] or nw != info["waiters"]:
        return "%d of %d mutexes with owner in read(), %d of %d waiters" % (len(owned), info["mutexes"], nw,
                                                                            info["waiters"])
    return None


def check_lslocks(out, info):
    lines = [l for l in out.splitlines() if info["lockfile"] in l]
    holder = [l for l in lines if re.search(r"\b%d\b" % info["pid"], l)]
    if not holder:
        return "lockpop's flock on the lockfile not listed"
    return None


def check_gdb(out, info):
    threads = len(re.findall(r"^Thread \d+ ", out, re.M))
    waiters = len(re.findall(r" in lp_waiter ", out))
    if threads != info["threads"] or waiters != info["waiters"]:
        return "%d of %d threads, %d of %d frames in lp_waiter" % (threads, info["threads"], waiters, info["waiters"])
    return None


def fmt_s(x):
    return "%.3f s" % x if x >= 0.1 else "%.1f ms" % (x * 1000)


def bench(name, pop_argv, tools, args, nthreads):
    print("== %s: %s" % (name, " ".join(pop_argv)), file=sys.stderr)
    pop = Pop(pop_argv, args.timeout * 4)
    info = dict(pop.info, threads=nthreads)
    res = {t[0]: {"wall": [], "rss": [], "failed": None} for t in tools}
    try:
        for rnd in range(args.runs + 1):
            for label, argv_fn, check in tools:
                r = res[label]
                if r["failed"]:
                    continue
                argv = argv_fn(info)
                wall, rss, status, out, err = run_tool(argv, args.timeout)
                bad = None
                ok_status = (0, 3) if label.startswith("diag-locks") else (0,)   # 3: a deadlock was found
                if status not in ok_status:
                    bad = "exit status %d: %s" % (status, err.strip()[:200])
                else:
                    try:
                        bad = check(out, info)
                    except (ValueError, KeyError) as e:
                        bad = "unreadable output (%s)" % e
                if bad:
                    fd, path = tempfile.mkstemp(prefix="locks-bench-", suffix=".out")
                    with os.fdopen(fd, "w") as f:
                        f.write(out + "\n--- stderr ---\n" + err)
                    r["failed"] = "%s (output kept in %s)" % (bad, path)
                    print("%s: FAILED: %s" % (label, r["failed"]), file=sys.stderr)
                    continue
                if rnd == 0:
                    continue            # warm-up
                r["wall"].append(wall)
                r["rss"].append(rss / 1024.0)
    finally:
        pop.close()
    return info, res


def table(title, tools, res, ref):
    lines = ["### %s" % title, "",
             "| command | wall, median (min) | peak RSS, median | ratio to %s (wall / RSS) |" % ref,
             "|---|---|---|---|"]
    rw = statistics.median(res[ref]["wall"]) if res[ref]["wall"] else None
    rr = statistics.median(res[ref]["rss"]) if res[ref]["rss"] else None
    for label, argv_fn, _ in tools:
        r = res[label]
        if r["failed"] or not r["wall"]:
            lines.append("| `%s` | FAILED: %s | - | - |" % (label, r["failed"] or "not run"))
            continue
        w, m, s = statistics.median(r["wall"]), min(r["wall"]), statistics.median(r["rss"])
        ratio = "%.2fx / %.2fx" % (w / rw, s / rr) if rw and rr and label != ref else "-"
        lines.append("| `%s` | %s (min %s) | %.1f MiB | %s |" % (label, fmt_s(w), fmt_s(m), s, ratio))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--diag-locks")
    ap.add_argument("--lockpop")
    ap.add_argument("--gdb", default="gdb")
    ap.add_argument("--lslocks", default="lslocks")
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("--procs", type=int, default=350)
    ap.add_argument("--threads", type=int, default=3000)
    ap.add_argument("--one-threads", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--only", choices=["system", "one"])
    ap.add_argument("--markdown")
    args = ap.parse_args()

    dl = args.diag_locks or os.path.join(args.build, "tools", "diag-locks", "diag-locks")
    lp = args.lockpop or os.path.join(args.build, "bench", "lockpop")
    for f in (dl, lp, TIME):
        if not os.access(f, os.X_OK):
            sys.exit("locks-bench: %s not built (see bench/README.md)" % f)

    out = ["Machine: %s, %d CPUs, kernel %s; %s" % (platform.machine(), os.cpu_count(), platform.release(),
                                                    time.strftime("%Y-%m-%d")),
           "Load average at start: %.2f" % os.getloadavg()[0], ""]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    signal.signal(signal.SIGHUP, lambda *a: sys.exit(1))
    try:
        if args.only in (None, "system"):
            tools = [("diag-locks -J", lambda i: [dl, "-J"], check_diag_system)]
            if shutil.which(args.lslocks):
                tools.append(("lslocks", lambda i: [args.lslocks], check_lslocks))
            else:
                print("lslocks not found: skipped", file=sys.stderr)
            info, res = bench("system", [lp, "--procs", str(args.procs), "--threads", str(args.threads)],
                              tools, args, args.threads)
            out += table("Whole system: %d lockpop processes, %d threads, %d contended mutexes, %d flock waiters; %d runs"
                         % (args.procs, args.threads, info["mutexes"], info["flock_waiters"], args.runs),
                         tools, res, "diag-locks -J")
            out.append("")
        if args.only in (None, "one"):
            tools = [("diag-locks -J -p PID", lambda i: [dl, "-J", "-p", str(i["target"])], check_diag_one)]
            if shutil.which(args.gdb):
                tools.append(("gdb -batch -p PID -ex 'thread apply all bt'",
                              lambda i: [args.gdb, "-batch", "-p", str(i["target"]), "-ex", "thread apply all bt"],
                              check_gdb))
            else:
                print("gdb not found: skipped", file=sys.stderr)
            info, res = bench("one", [lp, "--one", "--threads", str(args.one_threads)], tools, args,
                              args.one_threads)
            out += table("One process: %d threads, %d waiting on %d mutexes; %d runs"
                         % (args.one_threads, info["waiters"], info["mutexes"], args.runs),
                         tools, res, "diag-locks -J -p PID")
            out.append("")
    except BenchError as e:
        sys.exit("locks-bench: %s" % e)
    text = "\n".join(out)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
