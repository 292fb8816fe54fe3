# SPDX-License-Identifier: GPL-2.0-or-later
"""DESIGN rule 1: diag-stack SIGKILLed at any instant of its capture leaves the target
running: no thread stopped ('t'/'T') or traced, heartbeat ticking, within 1 s."""
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

RUNS = 30
EXTRA_RUNS = 30  # aimed at the attach window when too few kills landed inside it
IDLE = 200


def calibrate(tool, pid, chk):
    """Run diag-stack to the end, polling the main thread's TracerPid: returns
    (run time, first and last instant it was seen attached, relative to the start)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        p = subprocess.Popen([tool, "-J", str(pid)], stdout=out, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=dt.tool_env(), start_new_session=True,
                             cwd="/")
        first = last = None
        try:
            while p.poll() is None:
                if dt.tracer_pid(pid, pid):
                    now = time.monotonic() - t0
                    first = now if first is None else first
                    last = now
                if time.monotonic() - t0 > 60:
                    dt.kill_group(p)
        finally:
            if p.poll() is None:
                dt.kill_group(p)
            err = p.communicate()[1].decode(errors="replace")
        chk.eq(p.returncode, 0, "calibration run exit status (%s)" % err.strip()[:500])
        return time.monotonic() - t0, first, last


def main():
    dt.setup(__doc__)
    tool = dt.need_path("diag_stack")
    chk = dt.Checker("stack-kill")
    seed = os.environ.get("DIAG_TEST_SEED") or str(random.randrange(1 << 30))
    rnd = random.Random(seed)
    dt.log("seed %s (set DIAG_TEST_SEED to replay)" % seed)
    with dt.Fixture(["--roles", "idle,heartbeat,sleep", "--idle", IDLE]) as fx:
        runs = [calibrate(tool, fx.pid, chk) for _ in range(2)]
        full = min(r[0] for r in runs)
        seen = [r for r in runs if r[1] is not None]
        if seen:
            win = (max(0.0, min(r[1] for r in seen) - 0.01), max(r[2] for r in seen) + 0.01)
        else:
            win = (0.0, full)
        dt.log("a full run takes %.3f s; target seen attached in [%.3f, %.3f] s"
               % (full, win[0], win[1]))
        # A third of the kills anywhere in a run, the rest inside the attach window.
        delays = [full * (i + rnd.random()) / (RUNS // 3) for i in range(RUNS // 3)]
        n = RUNS - len(delays)
        delays += [win[0] + (win[1] - win[0]) * (i + rnd.random()) / n for i in range(n)]
        rnd.shuffle(delays)

        inside = 0
        i = 0
        while i < len(delays):
            delay = delays[i]
            attached = kill_once(tool, fx, chk, i, delay)
            if attached is None:
                break
            inside += attached
            i += 1
            if i == len(delays) and inside < 5 and len(delays) < RUNS + EXTRA_RUNS:
                delays += [rnd.uniform(*win) for _ in range(EXTRA_RUNS)]
        dt.log("%d of %d kills landed while the target was attached" % (inside, i))
        if not chk.failures and inside == 0:
            dt.harness_error("no kill landed while diag-stack was attached: the test proved nothing")
    chk.finish()


def kill_once(tool, fx, chk, i, delay):
    """Start diag-stack, SIGKILL it after `delay` s, check the target within 1 s.
    Returns whether it was attached at the kill, or None after a failure."""
    p = subprocess.Popen([tool, "-J", str(fx.pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=dt.tool_env(), start_new_session=True, cwd="/")
    try:
        time.sleep(delay)
        hb0 = fx.heartbeat()
        attached = bool(dt.tracer_pid(fx.pid, fx.pid))
        killed_at = time.monotonic()
        dt.kill_group(p)
    finally:
        if p.poll() is None:
            dt.kill_group(p)
        p.wait()
    what = "kill %d after %.1f ms (%s)" % (i, delay * 1000, "attached" if attached else "not attached")
    deadline = killed_at + 1.0
    bad = dt.stopped_or_traced(fx.pid)
    while bad and time.monotonic() < deadline:
        time.sleep(0.005)
        bad = dt.stopped_or_traced(fx.pid)
    ok = chk.check(not bad, "%s: 1 s later still %d problems: %s" % (what, len(bad), bad[:5]))
    ticking = False
    hb_deadline = max(deadline, time.monotonic() + 0.05)
    while time.monotonic() < hb_deadline:
        hb = fx.heartbeat()
        if hb is not None and hb0 is not None and hb >= hb0 + 2:
            ticking = True
            break
        time.sleep(0.005)
    ok &= chk.check(ticking, "%s: heartbeat stuck at %s (was %s at the kill)" % (what, fx.heartbeat(), hb0))
    ok &= chk.check(fx.proc.poll() is None, "%s: fixture died (%s)" % (what, fx.proc.poll()))
    return attached if ok else None


if __name__ == "__main__":
    main()
