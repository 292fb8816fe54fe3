# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top on a process with a thread in D state: chainfix --case dstate mounts a
FUSE file system that stops answering; its thread O reads a page of a file on it (D,
the page locked by a read that is never answered). With diag-top at -d 1 filtered to
that process (-p): its BLOCKED (the longest of its threads') grows from one refresh
to the next by about the time between them and is at least the time since O
blocked, less a second; the header's count of D-state threads includes it (at
least 1, and not below the number of threads /proc showed in D both before and
after a refresh, less 2). The mount is always taken down. Needs root and /dev/fuse
(else skipped)."""
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import toptest as tt  # noqa: E402


def dstate_count(head):
    """The header's D-state thread count: "D-state threads: 3" (batch), "D 3" (screen)."""
    for rx in (r"\bD-state(?: threads)?:?\s+(\d+)", r"(?:^|\s)D:?\s+(\d+)\b"):
        m = re.search(rx, head)
        if m:
            return int(m.group(1))
    return None


def proc_dstate_threads():
    """The threads in D state now: a set of (pid, tid)."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            for t in dt.task_ids(int(d)):
                if dt.task_state(int(d), t) == "D":
                    out.add((int(d), t))
    return out


def main():
    tt.setup(__doc__)
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")
    dt.need_path("chainfix")
    dt.set_subreaper()
    chk = dt.Checker("top-dstate")
    fx = dt.KVFixture("chainfix", ["--case", "dstate"], ready_timeout=20, term_timeout=10,
                      pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        f = fx.fact("chain")
        mnt, conn = f["mnt"], f.get("conn") or None
        (pid, _), (_, o) = dt.pid_tid(f["W"]), dt.pid_tid(f["O"])
        run(chk, fx, pid, o)
    finally:
        dt.close_fuse(chk, fx, mnt, conn, point_removed=True)
        dt.reap_orphans()
    chk.finish()


def run(chk, fx, holder, o):
    blocked_since = fx.ready_time
    if not rt_wait(lambda: dt.task_state(holder, o) == "D", 5):
        dt.harness_error("thread %d of %d is not in D state: %s" % (o, holder, dt.task_state(holder, o)))
    with tt.Screen(["-d", "1", "-p", holder], width=160, height=30) as s:
        def blocked_shown(lines):
            r = tt.row_of(lines, holder)
            return r and tt.parse_ms(r.get("BLOCKED")) is not None
        lines = s.wait_until(blocked_shown, 15) or s.capture()
        # The threads in D before and after a refresh (-d 1) were in D at that
        # refresh, barring a wake and a new wait in between: the header counts at
        # least those. Other tests of the suite may put threads in D and take them
        # out meanwhile, so the count of any single instant is no oracle.
        before = proc_dstate_threads()
        time.sleep(1.5)
        lines = s.capture()
        now = proc_dstate_threads() & before
        t1 = time.monotonic()
        r1 = tt.row_of(lines, holder)
        if not chk.check(r1, "process %d is listed with a BLOCKED\n%s" % (holder, s.describe())):
            return
        b1 = tt.parse_ms(r1.get("BLOCKED"))
        low = (t1 - blocked_since) * 1000 - 1500
        chk.check(b1 is not None and b1 >= low, "BLOCKED %r (%s) at least the time since O blocked (%d ms)"
                  % (b1, r1.get("BLOCKED"), low))
        head = tt.header_text(lines)
        n = dstate_count(head)
        chk.check(n is not None and n >= 1 and n >= len(now) - 2,
                  "the header's D-state count %r includes O (/proc had %d in D before and after)\n%s"
                  % (n, len(now), head))
        time.sleep(3.2)

        def grown(lines):
            r = tt.row_of(lines, holder)
            b = tt.parse_ms(r.get("BLOCKED")) if r else None
            return b is not None and b1 is not None and b >= b1 + 2000
        lines = s.wait_until(grown, 5) or s.capture()
        t2 = time.monotonic()
        r2 = tt.row_of(lines, holder) or {}
        b2 = tt.parse_ms(r2.get("BLOCKED"))
        chk.check(b2 is not None and b1 is not None and b1 + 2000 <= b2 <= b1 + (t2 - t1) * 1000 + 2500,
                  "BLOCKED grows between refreshes by about the time between them: %r then %r, %.1f s apart\n%s"
                  % (r1.get("BLOCKED"), r2.get("BLOCKED"), t2 - t1, s.describe()))
        n2 = dstate_count(tt.header_text(lines))
        chk.check(n2 is not None and n2 >= 1, "the header's D-state count later: %r" % n2)
        chk.eq(dt.task_state(holder, o), "D", "thread %d is still in D (diag-top woke nothing)" % o)
        s.keys("q")
        chk.eq(s.exited(), 0, "diag-top's exit status after q")


def rt_wait(pred, timeout):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


if __name__ == "__main__":
    main()
