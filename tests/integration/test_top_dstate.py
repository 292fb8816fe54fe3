# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top on a process in D state: fusehang mounts a FUSE file system that stops
answering and its holder reads a file on it (D, waiting for an answer that never
comes). With diag-top at -d 1 filtered to the holder (-p): its S is D, its BLOCKED
grows from one refresh to the next by about the time between them and is at least
the time since the holder blocked, less a second; the header's count of D-state
threads includes it (at least 1, and not below the count /proc gives at the same
moment less the threads that left D). The mount is always taken down. Needs root
and /dev/fuse (else skipped)."""
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
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            for t in dt.task_ids(int(d)):
                if dt.task_state(int(d), t) == "D":
                    n += 1
    return n


def main():
    tt.setup(__doc__, "fusehang")
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")
    dt.need_path("fusehang")
    dt.set_subreaper()
    chk = dt.Checker("top-dstate")
    fx = dt.KVFixture("fusehang", ready_timeout=20, term_timeout=10, pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        fu = fx.fact("fuse")
        mnt, conn = fu["mnt"], fu.get("conn")
        run(chk, fx, fu["holder_pid"])
    finally:
        dt.close_fuse(chk, fx, mnt, conn, point_removed=True)
        dt.reap_orphans()
    chk.finish()


def run(chk, fx, holder):
    blocked_since = fx.ready_time
    if not rt_wait(lambda: dt.task_state(holder, holder) == "D", 5):
        dt.harness_error("the holder %d is not in D state: %s" % (holder, dt.task_state(holder, holder)))
    with tt.Screen(["-d", "1", "-p", holder], width=160, height=30) as s:
        def blocked_shown(lines):
            r = tt.row_of(lines, holder)
            return r and tt.parse_ms(r.get("BLOCKED")) is not None
        lines = s.wait_until(blocked_shown, 15) or s.capture()
        t1 = time.monotonic()
        r1 = tt.row_of(lines, holder)
        if not chk.check(r1, "the holder %d is listed with a BLOCKED\n%s" % (holder, s.describe())):
            return
        b1 = tt.parse_ms(r1.get("BLOCKED"))
        chk.eq(r1.get("S"), "D", "the holder's S")
        low = (t1 - blocked_since) * 1000 - 1500
        chk.check(b1 is not None and b1 >= low, "BLOCKED %r (%s) at least the time since the holder blocked (%d ms)"
                  % (b1, r1.get("BLOCKED"), low))
        head = tt.header_text(lines)
        n = dstate_count(head)
        now = proc_dstate_threads()
        chk.check(n is not None and n >= 1 and n >= now - 2,
                  "the header's D-state count %r includes the holder (/proc has %d now)\n%s" % (n, now, head))
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
        chk.eq(dt.task_state(holder, holder), "D", "the holder is still in D (diag-top woke nothing)")
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
