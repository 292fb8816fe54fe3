# SPDX-License-Identifier: GPL-2.0-or-later
"""Do no harm: diag-core SIGKILLed at any instant of a dump, with either method, leaves
the target running (no thread stopped or traced, heartbeat ticking), its memory
unchanged, its children as they were (none added, no zombie, no SIGCHLD), no
process of the dump behind (copy of the image, guard), and no core file: none under
its name unless complete, no hidden temporary one."""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

HEAP_MIB = 256
RUNS_PER_METHOD = 18
MIN_ATTACHED = 3            # kills per method that must land while the target is stopped
EXTRA_RUNS = 24             # aimed at the stop when too few landed in it
LEFTOVER_WAIT = 5.0


def main():
    dt.setup_core(__doc__)
    chk = dt.Checker("core-kill")
    seed = os.environ.get("DIAG_TEST_SEED") or str(random.randrange(1 << 30))
    rnd = random.Random(seed)
    dt.log("seed %s (set DIAG_TEST_SEED to replay)" % seed)
    tmp = tempfile.mkdtemp(prefix="diagtest-core-")
    try:
        with dt.CoreFixture(["--heap", HEAP_MIB, "--threads", 6, "--children", 2]) as fx:
            before = fx.snapshot()
            for method in ("fork", "stop"):
                kill_series(chk, fx, before, tmp, method, rnd)
                if not fx.alive():
                    break
                before = fx.snapshot()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


def start(fx, d, method):
    return subprocess.Popen([dt.need_path("diag_core"), "-q", "--method", method, "-o", os.path.join(d, "core"),
                             str(fx.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=dt.tool_env(), start_new_session=True, cwd="/")


def calibrate(chk, fx, tmp, method):
    """A whole run, the main thread's TracerPid polled: (run time, first and last
    instant it was seen traced, from the start)."""
    d = tempfile.mkdtemp(dir=tmp)
    t0 = time.monotonic()
    p = start(fx, d, method)
    first = last = None
    while p.poll() is None and time.monotonic() - t0 < 300:
        if dt.traced(fx.pid):
            now = time.monotonic() - t0
            first = now if first is None else first
            last = now
        time.sleep(0.0005)      # a busy poll would slow the run it measures
    if p.poll() is None:
        dt.kill_group(p)
    err = p.communicate()[1].decode(errors="replace")
    chk.eq(p.returncode, 0, "--method %s: calibration run exit status (%s)" % (method, err.strip()[:500]))
    shutil.rmtree(d, ignore_errors=True)
    return time.monotonic() - t0, first, last


def kill_series(chk, fx, before, tmp, method, rnd):
    runs = [calibrate(chk, fx, tmp, method) for _ in range(2)]
    full = min(r[0] for r in runs)
    seen = [r for r in runs if r[1] is not None]
    win = (min(r[1] for r in seen), max(r[2] for r in seen)) if seen else (0.0, full / 10)
    dt.log("--method %s: a whole run takes %.3f s; target seen traced in [%.3f, %.3f] s"
           % (method, full, win[0], win[1]))
    # Half from the very start to just after the stop, the rest over the whole run.
    early = RUNS_PER_METHOD // 2
    delays = [(win[1] + 0.005) * (i + rnd.random()) / early for i in range(early)]
    n = RUNS_PER_METHOD - early
    delays += [full * (i + rnd.random()) / n for i in range(n)]
    rnd.shuffle(delays)
    delays = [(d, False) for d in delays]
    tally = {"attached": 0, "complete": 0, "max_gap_us": 0}
    i = 0
    while i < len(delays):
        if not kill_once(chk, fx, before, tmp, method, i, delays[i][0], tally, on_trace=delays[i][1]):
            if not fx.alive():
                return
            before = fx.snapshot()      # judge the next kills on their own
        i += 1
        if i == len(delays) and tally["attached"] < MIN_ATTACHED and len(delays) < RUNS_PER_METHOD + EXTRA_RUNS:
            # Too few landed in the stop (its start varies from run to run on a
            # loaded machine): half aimed by time again, half the instant the
            # target is seen traced, so that they land in it however it moved.
            delays += [(rnd.uniform(max(0.0, win[0] - 0.002), win[1] + 0.002), False)
                       for _ in range(EXTRA_RUNS // 2)]
            delays += [(full * 3 + 1.0, True) for _ in range(EXTRA_RUNS - EXTRA_RUNS // 2)]
    dt.log("--method %s: %d kills, %d while the target was traced, %d after the core was complete; "
           "longest heartbeat gap %d us" % (method, i, tally["attached"], tally["complete"], tally["max_gap_us"]))
    if tally["attached"] == 0:
        dt.harness_error("--method %s: no kill landed while the target was traced: the test proved nothing" % method)


def kill_once(chk, fx, before, tmp, method, i, delay, tally, on_trace=False):
    """Kill diag-core after delay s, or with on_trace the instant the target is seen
    traced (delay is then the most to wait for that)."""
    d = tempfile.mkdtemp(dir=tmp)
    fx.command("gap")   # a new gap window
    p = start(fx, d, method)
    t0 = time.monotonic()
    try:
        if on_trace:
            while not dt.traced(fx.pid) and p.poll() is None and time.monotonic() - t0 < delay:
                time.sleep(0.0002)
            delay = time.monotonic() - t0
        else:
            time.sleep(delay)
        attached = bool(dt.traced(fx.pid))
        done = p.poll() is not None
        os.kill(p.pid, signal.SIGKILL)      # diag-core itself, as an operator would
    except ProcessLookupError:
        done = True
    finally:
        p.wait()
        p.stderr.close()
    what = "--method %s kill %d after %.1f ms (%s)" % (method, i, delay * 1000,
                                                      "target traced" if attached else
                                                      "already done" if done else "target not traced")
    tally["attached"] += attached
    ok = fx.check_unharmed(chk, before, what)
    gap = fx.command("gap") or {}
    tally["max_gap_us"] = max(tally["max_gap_us"], gap.get("gap_us", 0))
    ok &= no_leftovers(chk, fx, before, what)
    files = sorted(os.listdir(d))
    core = "core.%d" % fx.pid
    if files == [core]:
        tally["complete"] += 1
        ok &= complete_core(chk, fx, os.path.join(d, core), what)
    else:
        ok &= chk.eq(files, [], "%s: files left in the output directory" % what)
    shutil.rmtree(d, ignore_errors=True)
    return ok


def no_leftovers(chk, fx, before, what):
    """Within LEFTOVER_WAIT s: no diag-core process for the fixture (a guard), no
    process in its process group but itself and its children (a copy of the image)."""
    keep = set(before["children"]["children"])
    deadline = time.monotonic() + LEFTOVER_WAIT
    while True:
        left = dt.dump_leftovers(fx.pid, keep)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    desc = [(p, (dt.read_file("/proc/%d/cmdline" % p) or "").replace("\0", " ")[:60],
             (dt.read_file("/proc/%d/stat" % p) or "").split(")")[-1][:20]) for p in left]
    ok = chk.check(not left, "%s: processes left %.0f s after the kill (pid, command, state ppid ...): %s"
                   % (what, LEFTOVER_WAIT, desc))
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)      # so that the next run starts clean
        except ProcessLookupError:
            pass
    return ok


def complete_core(chk, fx, path, what):
    """A core found under its name after a kill must be whole."""
    ec = dt.ElfCore(path)
    ok = chk.check(ec.error is None, "%s: a core was left and is not well formed: %s" % (what, ec.error))
    ok &= chk.eq(ec.prstatus_pids(), fx.tids(), "%s: a core was left: its threads" % what)
    return ok and dt.check_heap_words(chk, ec, fx, "%s: a core was left" % what)


if __name__ == "__main__":
    main()
