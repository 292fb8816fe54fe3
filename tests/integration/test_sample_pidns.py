# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample on processes in another pid namespace (as in a container): a C spinner
(spinfix) and the CPython service (pysvc.py), each PID 1 of its own namespace, sampled
from the host by their host pids. The threads are reported by their host tids (the
fixtures print their namespace tids; /proc/PID/task/TID/status NSpid maps them), the
on-CPU stacks unwind, and the Python frames are found although CPython records the
namespace tid of each thread."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

PYTHON = "/usr/bin/python3.11"


class NsTarget:
    """argv as PID 1 of a new pid namespace; pid is its pid seen from here; lines are
    what it printed up to and including the line that starts with `ready`."""

    def __init__(self, unshare, argv, ready, nlines=1):
        self.p, self.pid = dt.start_in_pidns(unshare, argv)
        self.lines = []
        if not self.pid:
            self.close()
            dt.harness_error("%s did not start in a pid namespace" % argv)
        while len(self.lines) < nlines:
            line = self.p.stdout.readline().decode(errors="replace")
            if not line:
                self.close()
                dt.harness_error("%s ended before it was ready (%r)" % (argv, self.lines))
            self.lines.append(line.strip())

    def host_tid(self, nstid):
        """The host tid of the thread whose innermost NSpid is nstid."""
        for tid in dt.task_ids(self.pid):
            st = dt.read_file("/proc/%d/task/%d/status" % (self.pid, tid)) or ""
            m = re.search(r"^NSpid:\s+(.*)$", st, re.M)
            if m and int(m.group(1).split()[-1]) == nstid:
                return tid
        return None

    def close(self):
        dt.kill_group(self.p)
        self.p.wait()


def marker_line(path, mark):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if "MARK: " + mark in line:
                return i
    dt.harness_error("no MARK: %s in %s" % (mark, path))


def sample(chk, pid, what):
    r = dt.run([dt.need_path("diag_sample"), "-J", "-d", "2s", str(pid)], timeout=60)
    chk.eq(r.rc, 0, "%s: exit status\n%s" % (what, r.describe()))
    doc = r.json(chk) or {}
    procs = [p for p in doc.get("processes", []) if p.get("pid") == pid]
    chk.eq(len(procs), 1, "%s: the process by its host pid in the report" % what)
    return procs[0] if procs else {}


def check_spinfix(chk, unshare):
    tgt = NsTarget(unshare, [dt.need_path("spinfix")], "READY")
    try:
        m = re.match(r"READY pid=(\d+) tid=(\d+)", tgt.lines[0])
        chk.check(m, "spinfix: READY line %r" % tgt.lines[0])
        if not m:
            return
        chk.eq(int(m.group(1)), 1, "spinfix is PID 1 of its namespace")
        spinner = tgt.host_tid(int(m.group(2)))
        chk.check(spinner and spinner != int(m.group(2)), "spinner's host tid %s differs from its namespace tid %s"
                  % (spinner, m.group(2)))
        p = sample(chk, tgt.pid, "spinfix in a pid namespace")
        tids = sorted(t.get("tid") for t in p.get("threads", []))
        chk.eq(tids, sorted(dt.task_ids(tgt.pid)), "spinfix: threads by host tid, as /proc lists them")
        v = (p.get("verdict") or {})
        chk.eq(v.get("kind"), "busy-loop", "spinfix: verdict kind (%r)" % v.get("text"))
        chk.check("tid %d " % spinner in (v.get("text") or ""), "spinfix: the verdict names host tid %d: %r"
                  % (spinner, v.get("text")))
        leafs = {}
        for s in p.get("stacks", []):
            user = [f for f in s.get("frames", []) if not f.get("kernel")]
            if user:
                leafs[user[0].get("function")] = leafs.get(user[0].get("function"), 0) + s.get("samples", 0)
                names = [f.get("function") for f in user]
                chk.check("spin_loop" in names and "spin_thread" in names,
                          "spinfix: a sampled stack unwinds through spin_loop and spin_thread: %s" % names)
        chk.check(set(leafs) & {"spin_a", "spin_b"}, "spinfix: samples in spin_a/spin_b (leaf functions %s)" % leafs)
    finally:
        tgt.close()


def check_pysvc(chk, unshare):
    if not os.access(PYTHON, os.X_OK):
        dt.log("note: %s is not installed: the Python part is not run" % PYTHON)
        return
    script = dt.paths.pysvc
    if not script or not os.path.exists(script):
        dt.harness_error("pysvc not given (%r)" % script)
    tgt = NsTarget(unshare, [PYTHON, script], "READY", nlines=5)
    try:
        ns = {}
        for line in tgt.lines:
            m = re.match(r"THREAD (\S+) tid=(\d+)", line)
            if m:
                ns[m.group(1)] = int(m.group(2))
        chk.check("spinner" in ns and "worker" in ns, "pysvc printed its threads: %r" % tgt.lines)
        if "spinner" not in ns or "worker" not in ns:
            return
        spinner, worker = tgt.host_tid(ns["spinner"]), tgt.host_tid(ns["worker"])
        chk.check(spinner and worker, "pysvc: host tids of spinner and worker (%s, %s)" % (spinner, worker))
        p = sample(chk, tgt.pid, "pysvc in a pid namespace")
        chk.check((p.get("python") or "").startswith("3.11"), "pysvc: Python version read: %r" % p.get("python"))
        line = marker_line(os.path.join(os.path.dirname(script), "spinmod.py"), "spin")
        v = (p.get("verdict") or {}).get("text") or ""
        chk.check("tid %d " % spinner in v, "pysvc: the verdict names the spinner's host tid %d: %r" % (spinner, v))
        chk.check("Spinner.spin (spinmod.py:%d)" % line in v, "pysvc: the verdict names Spinner.spin (spinmod.py:%d): %r"
                  % (line, v))
        w = [t for t in p.get("threads", []) if t.get("tid") == worker]
        waits = [x.get("what") for x in (w[0].get("waits", []) if w else [])]
        chk.check(any("Condition.wait" in (x or "") for x in waits),
                  "pysvc: the worker (host tid %d) waits in Condition.wait: %r" % (worker, waits))
    finally:
        tgt.close()


def main():
    dt.setup(__doc__, "diag_sample", "cpufix", "sysloop", "pysvc", "spinfix")
    dt.need_root("to make pid namespaces and sample their processes")
    unshare = dt.which("unshare")
    if not unshare:
        dt.skip("unshare (util-linux) is not installed")
    r = dt.run([unshare, "--fork", "--pid", "--mount-proc", "true"], timeout=30)
    if r.rc != 0:
        dt.skip("no pid namespace can be made here (%s)" % (r.err.strip().splitlines() or ["?"])[-1])
    chk = dt.Checker("sample-pidns")
    check_spinfix(chk, unshare)
    check_pysvc(chk, unshare)
    chk.finish()


if __name__ == "__main__":
    main()
