# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-fds on the whole system (no -p): exit 0 and valid JSON with the fdfix fixture's
processes and fds in it; and while short-lived processes (with pipes, sockets and files
open) come and go during the scan, ten runs never crash or fail (DESIGN rule 3)."""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

RUNS = 10
CHURNERS = 2

# Forks children that open a few fds and exit after 0-3 ms, forever; reaps them.
CHURN = r"""
import os, random, socket, time
rnd = random.Random()
live = 0
while True:
    pid = os.fork()
    if pid == 0:
        r, w = os.pipe()
        s = socket.socketpair()
        f = open("/dev/null")
        time.sleep(rnd.uniform(0, 0.003))
        os._exit(0)
    live += 1
    while live > 8:
        os.wait()
        live -= 1
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            live -= 1
    except ChildProcessError:
        live = 0
"""


def main():
    dt.setup_fds(__doc__)
    chk = dt.Checker("fds-system")
    with dt.fdfix() as fx:
        check_whole_system(chk, fx)
        churn(chk, fx)
    chk.finish()


def clean(chk, r, what):
    chk.check("Sanitizer" not in r.err and "runtime error" not in r.err,
              "%s: sanitizer report:\n%s" % (what, r.err[-3000:]))


def check_whole_system(chk, fx):
    r = dt.diag_fds("-J", timeout=30)
    dt.log("whole system `%s`: exit %s in %.2fs" % (r.cmd(), r.rc, r.elapsed))
    clean(chk, r, r.cmd())
    chk.eq(r.rc, dt.fds_status(0), "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
    doc = r.json(chk)
    if doc is None:
        return
    chk.eq(doc.get("schema"), "diag-fds/1", "schema")
    shown = {p.get("pid") for p in doc.get("processes", [])}
    chk.check(len(shown) == len(doc.get("processes", [])), "each process once")
    for pid in fx.pids():
        if not chk.check(pid in shown, "fixture process %d in `%s`" % (pid, r.cmd())):
            continue
        want = sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))
        got = sorted(f.get("fd") for f in dt.fds_process(doc, pid).get("fds", []))
        chk.eq(got, want, "fds of %d in the whole-system scan vs /proc/%d/fd" % (pid, pid))
    # Cross-process facts hold in the whole-system view too.
    p = fx.fact("pipe")
    w = dt.fds_entry(doc, p["writer_pid"], p["writer_fd"])
    chk.eq(dt.endpoint_set(w), {(p["reader_pid"], p["reader_fd"])}, "pipe writer endpoints (whole system)")
    t = fx.fact("tcp")
    s = dt.fds_entry(doc, t["server_pid"], t["server_fd"]) or {}
    chk.eq((s.get("socket") or {}).get("recvq"), 5, "tcp server recvq (whole system)")
    f = fx.fact("flock")
    h = dt.fds_entry(doc, f["holder_pid"], f["holder_fd"]) or {}
    chk.eq(str(h.get("mode"))[2:3], "W", "flock holder mode (whole system)")
    # No process appears that does not exist (kernel threads have no fds: absent or empty).
    v = doc.get("vanished") or {}
    chk.check(isinstance(v.get("processes"), int) and v["processes"] >= 0, "vanished.processes %r" % v)
    # The table form as well.
    r = dt.diag_fds("-r", "-n", "-o", "PID,FD", timeout=30)
    clean(chk, r, r.cmd())
    chk.eq(r.rc, dt.fds_status(0), "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
    rows = {tuple(l.split()) for l in r.out.splitlines()}
    chk.check((str(fx.pid), str(t["server_fd"])) in rows, "`%s` lists the fixture's fds" % r.cmd())


def churn(chk, fx):
    procs = [subprocess.Popen([sys.executable, "-c", CHURN], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, start_new_session=True,
                              preexec_fn=dt._child_setup) for _ in range(CHURNERS)]
    vanished = 0
    try:
        time.sleep(0.2)
        deadline = time.monotonic() + 60
        for i in range(RUNS):
            if time.monotonic() > deadline:
                chk.fail("churn: runs 0-%d took more than 60s together" % (i - 1))
                break
            args = [["-J"], [], ["-J", "-o", "PID,FD,LOCKS"], ["--summary"], ["-r", "-n", "-o", "+LOCKS,BLOCKED"]][i % 5]
            r = dt.diag_fds(*args, timeout=20)
            what = "churn run %d `%s`" % (i, r.cmd())
            dt.log("%s: exit %s in %.2fs" % (what, r.rc, r.elapsed))
            clean(chk, r, what)
            chk.eq(r.rc, dt.fds_status(0), "%s: exit status (stderr: %s)" % (what, r.err.strip()[-3000:]))
            if "-J" in args and "--summary" not in args:
                doc = r.json(chk)
                if doc is not None:
                    chk.check(dt.fds_process(doc, fx.pid) is not None, "%s: fixture process shown" % what)
                    v = (doc.get("vanished") or {})
                    chk.check(isinstance(v.get("processes"), int) and isinstance(v.get("fds"), int),
                              "%s: vanished %r" % (what, v))
                    vanished += v.get("processes") or 0
            for p in procs:
                if p.poll() is not None:
                    dt.harness_error("churn helper exited (%s)" % p.returncode)
    finally:
        for p in procs:
            dt.kill_group(p)
            p.wait()
    dt.log("churn: %d runs, %d processes vanished during the scans" % (RUNS, vanished))


if __name__ == "__main__":
    main()
