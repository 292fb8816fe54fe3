# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack's Python frames on Debian's /usr/bin/python3.11 running pysvc.py, and
on python3.12 and python3.13 too when they run from PATH: every thread shows its
Python frames (qualified name, file, line) spliced above the eval loop frame that
runs them. Lines come from the fixture's marker comments; the oracle is the
fixture's own sys._current_frames() dump, taken while the threads sit where
diag-stack saw them. --no-python leaves them out. Skipped without python3.11."""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

PYTHON = dt.DEBIAN_PYTHON
PYSVC, SPINMOD = dt.PYSVC, os.path.realpath(dt.SPINMOD)


def py_frames(frames):
    return [(f.get("function"), f.get("file"), f.get("line")) for f in frames if f.get("python")]


def frames_of_tid(proc, tid):
    for g in proc.get("groups", []):
        if tid in g.get("tids", []):
            return g.get("frames", [])
    return []


def interpreter(path):
    """(version, threading.py) of an interpreter that runs, else None."""
    try:
        out = subprocess.run([path, "-c", "import sys, threading; print('%d.%d' % sys.version_info[:2]); "
                              "print(threading.__file__)"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    return (lines[0], os.path.realpath(lines[1])) if out.returncode == 0 and len(lines) == 2 else None


def main():
    dt.setup(__doc__)
    chk, mk = dt.Checker("stack-pyframes"), dt.pysvc_markers()
    dt.need_debian_python()
    pythons = [PYTHON] + [shutil.which(n) for n in ("python3.12", "python3.13") if shutil.which(n)]
    for path in pythons:
        info = interpreter(path)
        if info:
            dt.log("%s: CPython %s" % (path, info[0]))
            check_one(chk, mk, path, info[0], info[1])
        elif path == PYTHON:
            dt.harness_error("%s does not run" % PYTHON)
    check_pidns(chk, mk)
    chk.finish()


def ns_tid(pid, tid):
    """tid as the innermost pid namespace of pid knows it (NSpid's last field)."""
    for line in (dt.read_file("/proc/%d/task/%d/status" % (pid, tid)) or "").splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return None


def check_pidns(chk, mk):
    """pysvc.py as PID 1 of its own pid namespace: the interpreter knows its threads
    by their namespace tids, diag-stack by the host's."""
    unshare = dt.which("unshare")
    if not unshare or dt.run([unshare, "--fork", "--pid", "--mount-proc", "true"], timeout=30).rc != 0:
        dt.log("no pid namespace can be made here: that part is not checked")
        return
    p = subprocess.Popen([unshare, "--fork", "--pid", "--mount-proc", "--kill-child", "--", PYTHON, PYSVC],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True, cwd="/")
    try:
        ready = p.stdout.readline().strip()
        chk.eq(ready, "READY pid=1", "in a pid namespace pysvc.py is PID 1")
        ns = {}
        for line in iter(p.stdout.readline, "END\n"):
            m = re.match(r"THREAD (\S+) tid=(\d+)", line.strip())
            if not m:
                break
            ns[int(m.group(2))] = m.group(1)
        kids = (dt.read_file("/proc/%d/task/%d/children" % (p.pid, p.pid)) or "").split()
        if not kids:
            dt.harness_error("no child of unshare")
        pid = int(kids[0])
        names = {}
        for t in os.listdir("/proc/%d/task" % pid):
            names[ns.get(ns_tid(pid, int(t)))] = int(t)
        chk.check(all(n in names for n in ("spinner", "sleeper")), "host tids of the namespace's threads: %r" % names)
        r = dt.diag_stack("-J", pid)
        proc = dt.process_of(r.json(chk) or {}, pid) or {}
        for name, want in (("spinner", ("Spinner.spin", SPINMOD, mk["spin"])),
                           ("sleeper", ("nap_forever", PYSVC, mk["sleep"]))):
            got = py_frames(frames_of_tid(proc, names.get(name, -1)))
            chk.eq(got[:1], [want], "pid namespace, %s thread: innermost Python frame" % name)
    finally:
        dt.kill_group(p)
        p.wait()


def check_one(chk, mk, python, version, threading_py):
    p, tids = dt.start_pysvc(python)
    try:
        r = dt.diag_stack("-J", p.pid)
        chk.eq(r.rc, 0, "exit status of `%s`\n%s" % (r.cmd(), r.err[-2000:]))
        proc = dt.process_of(r.json(chk) or {}, p.pid) or {}
        chk.check(str(proc.get("python") or "").startswith(version + "."),
                  "the process says which Python runs: %r" % proc.get("python"))

        want = {
            "spinner": [("Spinner.spin", SPINMOD, mk["spin"]), ("spin", PYSVC, mk["spin-call"])],
            "worker": [("Condition.wait", threading_py, None), ("wait_for_job", PYSVC, mk["wait"])],
            "sleeper": [("nap_forever", PYSVC, mk["sleep"])],
            "main": [("main", PYSVC, mk["main"]), ("<module>", PYSVC, None)],
            "gate": [("Condition.wait", threading_py, None), ("Semaphore.acquire", threading_py, None),
                     ("gatekeeper", PYSVC, mk["gate"])],
            "pool": [("Condition.wait", threading_py, None),
                     ("Queue.get", os.path.join(os.path.dirname(threading_py), "queue.py"), None),
                     ("pool_worker", PYSVC, mk["pool"])],
        }
        boot = ["Thread.run", "Thread._bootstrap_inner", "Thread._bootstrap"]
        ours = {}
        for name, tid in tids.items():
            frames = frames_of_tid(proc, tid)
            got = py_frames(frames)
            ours[name] = got
            w = want[name.split("-")[0]]
            chk.check(len(got) >= len(w), "%s thread %s (%d): Python frames %r, want at least %r" % (version, name, tid, got, w))
            for (gf, gfile, gline), (wf, wfile, wline) in zip(got, w):
                chk.eq(gf, wf, "%s thread %s: qualname" % (version, name))
                chk.eq(gfile, wfile, "%s thread %s: file of %s" % (version, name, wf))
                if wline is not None:
                    chk.eq(gline, wline, "%s thread %s: line of %s" % (version, name, wf))
            if name != "main":
                chk.eq([g[0] for g in got[-3:]], boot, "%s thread %s: the outermost Python frames" % (version, name))
            # Each run of Python frames sits right above an eval loop frame (its
            # inlined frames first), unless the native unwind stopped early.
            i = 0
            while i < len(frames):
                if not frames[i].get("python"):
                    i += 1
                    continue
                while i < len(frames) and frames[i].get("python"):
                    i += 1
                while i < len(frames) and frames[i].get("inlined"):
                    i += 1
                if i < len(frames):
                    chk.eq(frames[i].get("function"), "_PyEval_EvalFrameDefault",
                           "%s thread %s: the native frame below a run of Python frames" % (version, name))

        # The oracle: the interpreter's own view of the same threads.
        theirs = dt.pysvc_dump(p)
        for name in ("spinner", "worker", "sleeper"):
            chk.eq(ours[name], theirs.get(tids[name]), "%s thread %s: our Python frames against sys._current_frames()" % (version, name))

        r = dt.diag_stack(p.pid)
        chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
        chk.check(re.search(r"\[python\] +in Spinner\.spin \(%s:%d\)" % (re.escape(SPINMOD), mk["spin"]), r.out),
                  "text output shows the spinner's Python frame:\n%s" % r.out[:3000])
        chk.check(re.search(r"Python %s\.\d+" % re.escape(version), r.out.splitlines()[0] if r.out else ""),
                  "text header names the Python version: %r" % r.out[:200])

        r = dt.diag_stack("-J", "--no-python", p.pid)
        proc = dt.process_of(r.json(chk) or {}, p.pid) or {}
        chk.eq(proc.get("python"), None, "--no-python: no Python version")
        chk.check(not any(f.get("python") for g in proc.get("groups", []) for f in g.get("frames", [])),
                  "--no-python: no Python frames")
    finally:
        dt.kill_group(p)
        p.wait()


if __name__ == "__main__":
    main()
