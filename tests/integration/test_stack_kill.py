# SPDX-License-Identifier: GPL-2.0-or-later
"""DESIGN rule 1: diag-stack SIGKILLed at any instant of its capture leaves the target
running: no thread stopped ('t'/'T') or traced, heartbeat ticking, within 1 s, and
no process of the tool (its watchdog) behind. Most kills are aimed inside the stop
window, which the tool marks and holds open for the test (DIAG_TEST_WINDOW_HOLD_MS),
so they land there on a loaded machine too."""
import os
import random
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

RUNS = 30
AIMED = 20                  # of the RUNS, kills aimed inside the stop window
MIN_LANDED = 12             # aimed kills that must land while the target is stopped
HOLD_MS = 100               # DIAG_TEST_WINDOW_HOLD_MS: the window held open this long
IDLE = 200


def full_run_time(tool, pid, chk):
    """Run diag-stack (holding its window as the aimed runs do) to the end: seconds."""
    env = dt.window_env(HOLD_MS, 2)
    t0 = time.monotonic()
    p = subprocess.run([tool, "-J", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd="/", timeout=60)
    chk.eq(p.returncode, 0, "calibration run exit status (%s)" % p.stderr.decode(errors="replace").strip()[:500])
    return time.monotonic() - t0


def main():
    dt.setup(__doc__)
    dt.set_subreaper()
    tool = dt.need_path("diag_stack")
    chk = dt.Checker("stack-kill")
    seed = os.environ.get("DIAG_TEST_SEED") or str(random.randrange(1 << 30))
    rnd = random.Random(seed)
    dt.log("seed %s (set DIAG_TEST_SEED to replay)" % seed)
    with dt.Fixture(["--roles", "idle,heartbeat,sleep", "--idle", IDLE]) as fx:
        full = full_run_time(tool, fx.pid, chk)
        dt.log("a full run takes %.3f s" % full)
        # Most kills aimed inside the stop window (the tool marks it and holds it
        # open HOLD_MS: see DIAG_TEST_WINDOW_HOLD_MS in diag-stack(1)), the rest
        # anywhere in a run.
        plan = [True] * AIMED + [False] * (RUNS - AIMED)
        rnd.shuffle(plan)
        inside = 0
        for i, aimed in enumerate(plan):
            landed = kill_once(tool, fx, chk, i, aimed, rnd, full)
            if landed is None:
                break
            inside += landed
        dt.log("%d of %d aimed kills landed while the target was stopped" % (inside, AIMED))
        if not chk.failures and inside < MIN_LANDED:
            dt.harness_error("only %d kills landed while diag-stack held the target stopped: the test "
                             "proved too little" % inside)
    chk.finish()


def kill_once(tool, fx, chk, i, aimed, rnd, full):
    """Start diag-stack, SIGKILL it inside its stop window (aimed) or at a random
    instant, check the target within 1 s. Returns whether the kill landed while the
    target was stopped, or None after a failure."""
    rfd, wfd = os.pipe()
    env = dt.window_env(HOLD_MS, wfd)
    p = subprocess.Popen([tool, "-J", str(fx.pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, pass_fds=(wfd,),
                         env=env, start_new_session=True, cwd="/")
    os.close(wfd)
    landed = False
    watchdogs = []
    try:
        if aimed:
            words, buf = dt.window_marks(rfd, b"", 60)
            if not words or words[0][0] != "stopped":
                chk.fail("kill %d: diag-stack never marked its stop window" % i)
                return None
            watchdogs = [words[0][3]]
            delay = rnd.uniform(0, HOLD_MS * 0.4 / 1000)
        else:
            delay = rnd.uniform(0, full)
        time.sleep(delay)
        hb0 = fx.heartbeat()
        attached = bool(dt.traced(fx.pid))
        killed_at = time.monotonic()
        dt.kill_group(p)
        if aimed:
            words, buf = dt.window_marks(rfd, buf, 0)
            landed = attached and not any(w[0] == "release" for w in words)
    finally:
        if p.poll() is None:
            dt.kill_group(p)
        p.wait()
        os.close(rfd)
    what = "kill %d %s after %.1f ms (%s)" % (i, "in the window" if aimed else "into the run", delay * 1000,
                                            "target stopped" if landed else
                                            "attached" if attached else "not attached")
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
    # The tool's watchdog goes with it (it comes to us, the subreaper, to be reaped).
    for w in watchdogs:
        st = dt.task_state(int(w), int(w))
        while st not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.005)
            st = dt.task_state(int(w), int(w))
        ok &= chk.check(st in (None, "Z"), "%s: the tool's child %s outlived it (state %s)" % (what, w, st))
    dt.reap_orphans()
    return landed if ok else None


if __name__ == "__main__":
    main()
