#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What a stack or core tool does to threads asleep in calls a stop would change.

Starts tests/fixtures/stackfix with the roles whose call a ptrace stop ends early
(rcvtimeo: recv on a socket with SO_RCVTIMEO; sigtimed: sigtimedwait; pipewrite: a
1 MiB write into a full pipe; epoll: epoll_wait) and a mutex waiter (futex, which
restarts unseen), each thread writing "ROLE RET ERRNO" to a file whenever its call
returns. Then runs every tool R times, round-robin, against one fixture per tool, and
counts per tool and role how many calls returned early (EINTR or a short count), whether
the fixture still runs with no thread left stopped, whether the tool's output names the
fixture's thread functions, and the tool's wall time (median).

Tools: diag-stack -J, diag-core, eu-stack, gdb -batch "thread apply all bt", gcore
(the last three from PATH, skipped with a note when not installed). Run as root.
Python 3 standard library only. See bench/README.md.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ("rcvtimeo", "sigtimed", "pipewrite", "epoll")
FUNCTIONS = ("fix_rcvtimeo", "fix_sigtimed", "fix_pipe_writer", "fix_epoll")


class Fixture:
    def __init__(self, exe, harm):
        self.harm = harm
        self.p = subprocess.Popen([exe, "--roles", ",".join(ROLES) + ",mutex", "--harm", harm],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self.facts = {}
        deadline = time.monotonic() + 20
        for line in self.p.stdout:
            line = line.strip()
            if line == "READY":
                break
            k, _, v = line.partition(" ")
            self.facts[k] = v
            if time.monotonic() > deadline:
                raise SystemExit("harm-bench: stackfix did not get ready")
        self.pid = int(self.facts["PID"])

    def stopped_threads(self):
        out = []
        for tid in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/stat" % (self.pid, tid)) as f:
                    if f.read().rpartition(")")[2].split()[0] in ("T", "t"):
                        out.append(int(tid))
            except OSError:
                pass
        return out

    def harms(self):
        counts = dict.fromkeys(ROLES, 0)
        try:
            with open(self.harm) as f:
                for line in f:
                    role = line.split()[0]
                    counts[role] = counts.get(role, 0) + 1
        except FileNotFoundError:
            pass
        return counts

    def close(self):
        """SIGTERM (stackfix exits 0 on it), SIGKILL if it is still there after 10 s."""
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
            if self.p.poll() is None:
                self.p.send_signal(sig)
            try:
                self.p.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def tools(args, tmp):
    t, notes = [], []
    b = args.build
    t.append(("diag-stack", lambda pid: [os.path.join(b, "tools/diag-stack/diag-stack"), "-J", str(pid)], True))
    t.append(("diag-core", lambda pid: [os.path.join(b, "tools/diag-core/diag-core"), "-q", "--no-progress",
                                        "-o", os.path.join(tmp, "core.diag"), str(pid)], False))
    for name, argv, names in (
            ("eu-stack", lambda pid, e=None: ["eu-stack", "-p", str(pid)], True),
            ("gdb", lambda pid: ["gdb", "-batch", "-p", str(pid), "-ex", "thread apply all bt"], True),
            ("gcore", lambda pid: ["gcore", "-o", os.path.join(tmp, "core.gcore"), str(pid)], False)):
        if shutil.which(argv(0)[0]):
            t.append((name, argv, names))
        else:
            notes.append("%s is not installed: skipped" % name)
    return t, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("harm-bench: run as root (every tool attaches to a process it did not start)")
    exe = os.path.join(args.build, "tests/fixtures/stackfix")
    if not os.access(exe, os.X_OK):
        raise SystemExit("harm-bench: %s is not built" % exe)
    tmp = tempfile.mkdtemp(prefix="harm-bench.")
    env = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
    env["LC_ALL"] = "C"
    rows = []
    try:
        ts, notes = tools(args, tmp)
        fixtures = {name: Fixture(exe, os.path.join(tmp, "harm-" + name)) for name, _, _ in ts}
        res = {name: {"wall": [], "named": True, "failed": 0} for name, _, _ in ts}
        for _ in range(args.runs):
            for name, argv, names in ts:
                fx = fixtures[name]
                t0 = time.monotonic()
                try:
                    r = subprocess.run(argv(fx.pid), stdin=subprocess.DEVNULL, capture_output=True,
                                       text=True, errors="replace", timeout=120, env=env)
                    ok = r.returncode in (0, 4)
                    out = r.stdout
                except subprocess.TimeoutExpired:
                    ok, out = False, ""
                res[name]["wall"].append(time.monotonic() - t0)
                res[name]["failed"] += 0 if ok else 1
                if names:
                    res[name]["named"] &= all(f in out for f in FUNCTIONS)
                for f in os.listdir(tmp):
                    if f.startswith("core."):
                        os.unlink(os.path.join(tmp, f))
        time.sleep(0.5)     # a call ended early returns within microseconds; wait anyway
        for name, _, names in ts:
            fx = fixtures[name]
            h = fx.harms()
            alive = fx.p.poll() is None
            stopped = fx.stopped_threads() if alive else []
            rows.append((name, h, sum(h.values()), alive and not stopped,
                         ("yes" if res[name]["named"] else "no") if names else "-",
                         statistics.median(res[name]["wall"]), res[name]["failed"]))
            fx.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = {r[0]: r[5] for r in rows}
    lines = ["%d runs of each tool against its own stackfix (%s and a mutex waiter)." % (args.runs, ", ".join(ROLES)),
             "",
             "| tool | " + " | ".join(ROLES) + " | calls ended early | target runs, none stopped | "
             "stacks name the 4 functions | wall median (s) | wall vs diagkit | failed runs |",
             "|---|" + "---|" * (len(ROLES) + 6)]
    for name, h, total, fine, named, wall, failed in rows:
        ref = base.get("diag-core" if name in ("gcore", "diag-core") else "diag-stack")
        ratio = "%.1fx" % (wall / ref) if ref else "-"
        lines.append("| %s | %s | %d | %s | %s | %.3f | %s | %d |" % (
            name, " | ".join(str(h[r]) for r in ROLES), total, "yes" if fine else "NO", named, wall, ratio, failed))
    lines += [""] + ["- " + n for n in notes]
    text = "\n".join(lines).rstrip() + "\n"
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0 if all(r[2] == 0 and r[3] for r in rows if r[0].startswith("diag-")) else 1


if __name__ == "__main__":
    sys.exit(main())
