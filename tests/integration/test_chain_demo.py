# SPDX-License-Identifier: GPL-2.0-or-later
"""`diag demo` (the dispatcher) starts the built-in hung worker pool, runs diag-chain
on a stuck worker and stops the pool: it exits 0, its output shows the flock the
workers pile up on ("FLOCK WRITE"), the backend that never answers ("demo-backend")
and a "root:" verdict; no process of the demo is left behind, nor its session
directory."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


DEMO_COMMS = ("diag-demo-worke", "demo-worker", "demo-backend")


def leftovers():
    """Demo processes reparented to us (the subreaper) after diag exited."""
    out = []
    for p in os.listdir("/proc"):
        st = dt.task_stat(int(p), int(p)) if p.isdigit() else None
        if st and st[0] in DEMO_COMMS and st[2][0] == str(os.getpid()):
            out.append(int(p))
    return out


def main():
    dt.setup_chain(__doc__)
    diag = dt.need_path("diag")
    dt.set_subreaper()
    chk = dt.Checker("chain-demo")
    try:
        res = dt.run([diag, "demo"], timeout=60)
        chk.eq(res.rc, 0, "`diag demo` exit status\n%s" % res.describe())
        for s in ("FLOCK WRITE", "demo-backend", "$ diag chain "):
            chk.check(s in res.out, "`diag demo` output lacks %r\n%s" % (s, res.describe()))
        roots = [l for l in res.out.splitlines() if l.startswith("root: ")]
        chk.check(len(roots) == 1, "`diag demo`: want one 'root: ' line\n%s" % res.describe())
        chk.check(roots and "demo-backend" in roots[0] and "FLOCK WRITE" in roots[0],
                  "`diag demo`: the verdict names the backend and the held flock: %r" % roots)
        m = re.search(r"FLOCK WRITE (/\S+)/sess_\w+", res.out)
        if chk.check(m, "`diag demo`: no session file path in the output"):
            chk.check(not os.path.exists(m.group(1)), "`diag demo` left its session directory %s" % m.group(1))
        # Nothing of the demo is left: its workers were our (subreaped) descendants.
        deadline = time.monotonic() + 3
        while True:
            dt.reap_orphans()
            left = leftovers()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        chk.check(not left, "`diag demo` left demo processes behind: %s" % left)
    finally:
        dt.reap_orphans()
    chk.finish()


if __name__ == "__main__":
    main()
