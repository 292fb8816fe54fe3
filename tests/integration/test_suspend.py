# SPDX-License-Identifier: GPL-2.0-or-later
"""DESIGN rule 1: a tool suspended while it holds its target stopped (SIGSTOP to the
tool, or SIGTSTP to its process group as Ctrl-Z sends) must not keep the target
stopped. diag-stack and diag-core (--method fork and stop) are suspended at random
instants inside the stop window (held open HOLD_MS with DIAG_TEST_WINDOW_HOLD_MS)
and a few anywhere in the run, and kept suspended for SUSPEND_S. The target
(beatfix: four threads waking every 1 ms, recording their longest gap) must not
pause as long as the suspension, nor be stopped or traced while it lasts; the
watchdog must continue a SIGSTOPped tool within PAUSE_BOUND_MS; the tool, continued, must end
with its normal output and status; its watchdog must be gone with it. A tool that runs but
is stuck with its window open past the limit is killed by its watchdog, and the target runs."""
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

HOLD_MS = 150               # the tool holds its window open this long once the target is stopped
PAUSE_BOUND_MS = 250        # SIGSTOP to the watchdog's SIGCONT, at most: diag-stack(1), diag-core(1)
SUSPEND_S = 1.5             # how long the tool is left suspended: the target must not pause as long
AIMED = 5                   # suspensions aimed inside the window, per tool, method and signal
ANYWHERE = 1                # and at a random instant of the run
MIN_LANDED = 0.6            # fraction of the aimed ones that must land inside the window
STUCK_HOLD_MS = 8000        # a tool stuck (running) with its window open this long...
STUCK_MAX_MS = 300          # ...is killed by its watchdog after this (DIAG_TEST_WINDOW_MAX_MS)


class BeatFixture(dt._LineFixture):
    """beatfix: PID, beat TIDs, READY; the shared file gives ticks and the longest gap."""

    def __init__(self):
        self.tmpdir = tempfile.mkdtemp(prefix="diagtest-")
        self.file = os.path.join(self.tmpdir, "beat")
        super().__init__("beatfix", ["--threads", 4, self.file], 30, 2, None)
        self.pid = None

    def _parse_line(self, words):
        if words[0] == "PID":
            self.pid = int(words[1])

    def _words(self):
        with open(self.file, "rb") as f:
            return struct.unpack("=QQQ", f.read(24))

    def reset_gap(self):
        with open(self.file, "r+b") as f:
            f.seek(16)
            f.write(struct.pack("=Q", 0))

    def max_gap_ms(self):
        """The longest pause so far, counting the one going on now (a stopped
        target records its gap only once it runs again)."""
        _, last, gap = self._words()
        return max(gap, time.monotonic_ns() - last) / 1e6

    def ticks(self):
        return self._words()[0]

    def close(self):
        super().close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def children(pid):
    out = []
    for tid in dt.task_ids(pid):
        s = dt.read_file("/proc/%d/task/%d/children" % (pid, tid)) or ""
        out += [int(w) for w in s.split()]
    return out


def comm(pid):
    return (dt.read_file("/proc/%d/comm" % pid) or "").strip()


def proc_state(pid):
    st = dt.task_stat(pid, pid)
    return st[1] if st else None


def gone_or_zombie(pid):
    return proc_state(pid) in (None, "Z")


class Case:
    def __init__(self, tool, method, sig, aimed):
        self.tool, self.method, self.sig, self.aimed = tool, method, sig, aimed

    def name(self):
        return "%s%s %s %s" % (self.tool, " --method " + self.method if self.method else "",
                               "SIGSTOP" if self.sig == signal.SIGSTOP else "SIGTSTP to the group",
                               "aimed" if self.aimed else "anywhere")


def argv(case, fx, outdir):
    if case.tool == "diag-stack":
        return [dt.need_path("diag_stack"), "-J", str(fx.pid)]
    return [dt.need_path("diag_core"), "-q", "--method", case.method, "-o",
            os.path.join(outdir, "core"), str(fx.pid)]


def run_once(chk, fx, case, i, rnd, full_s):
    """One suspension. Returns True if it landed inside the stop window, False if not,
    None after a failure."""
    what = "%s #%d" % (case.name(), i)
    outdir = tempfile.mkdtemp(prefix="diagtest-suspend-")
    rfd, wfd = os.pipe()
    env = dt.window_env(HOLD_MS, wfd)

    def preexec():
        # A process group of its own in our session, as a shell makes for a job:
        # not orphaned, so SIGTSTP stops it as Ctrl-Z does.
        os.setpgid(0, 0)
        dt._child_setup()

    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    fx.reset_gap()
    p = subprocess.Popen(argv(case, fx, outdir), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                         env=env, cwd="/", pass_fds=(wfd,), preexec_fn=preexec)
    os.close(wfd)
    landed = False
    watchdogs = set()
    try:
        if case.aimed:
            marks, buf = dt.window_marks(rfd, b"", 60)
            if not marks or marks[0][0] != "stopped":
                p.wait(timeout=60)
                chk.fail("%s: the tool never marked its stop window (exit %s, stderr %r)"
                         % (what, p.returncode, read_all(err)[-300:]))
                return None
            watchdogs.add(int(marks[0][3]))
            time.sleep(rnd.uniform(0, HOLD_MS * 0.4 / 1000))
        else:
            time.sleep(rnd.uniform(0, full_s))
        attached = bool(dt.traced(fx.pid))
        sent_ns = time.monotonic_ns()
        signal_tool(p, case.sig)
        sent = time.monotonic()
        if case.aimed:
            more, buf = dt.window_marks(rfd, buf, 0)
            landed = attached and not any(w[0] == "release" for w in more)
        watchdogs.update(c for c in children(p.pid) if comm(c) == "diag-guard")
        for w in watchdogs:
            # Out of the tool's process group: Ctrl-Z does not stop it with the tool.
            try:
                chk.check(comm(w) == "diag-guard" and os.getpgid(w) == w and os.getpgid(w) != p.pid,
                          "%s: watchdog %d: comm %r, process group %d" % (what, w, comm(w), os.getpgid(w)))
            except ProcessLookupError:
                chk.fail("%s: watchdog %d gone while the tool runs" % (what, w))
        # Suspended for SUSPEND_S: the target must run meanwhile.
        stopped_seen = False
        while time.monotonic() < sent + SUSPEND_S:
            stopped_seen |= proc_state(p.pid) == "T"
            time.sleep(0.01)
        bad = dt.stopped_or_traced(fx.pid)
        chk.check(not bad, "%s: target stopped or traced while the tool is suspended: %s" % (what, bad[:5]))
        gap = fx.max_gap_ms()
        # Not held for the suspension (the tool's own pause, held HOLD_MS here, is
        # longer on a loaded machine, diag-core --method stop most).
        chk.check(gap < SUSPEND_S * 1000, "%s: the target paused %.1f ms, as long as the tool was suspended "
                  "(landed in the window: %s)" % (what, gap, landed))
        reaction = None
        if landed and case.sig == signal.SIGSTOP:
            # The watchdog continued the tool within the bound, and said when.
            while True:
                more, buf = dt.window_marks(rfd, buf, 0)
                if not more:
                    break
                for m in more:
                    if m[0] == "release" and len(m) >= 4 and m[2] == "continued":
                        reaction = (int(m[3]) - sent_ns) / 1e6
            if chk.check(reaction is not None, "%s: the watchdog did not continue the tool" % what):
                chk.check(reaction < PAUSE_BOUND_MS, "%s: the watchdog continued the tool %.1f ms after "
                          "the SIGSTOP (bound %d ms)" % (what, reaction, PAUSE_BOUND_MS))
        tool_state = proc_state(p.pid)
        if p.poll() is None:
            # The user's suspension is honoured (after the window, with the target running).
            chk.check(stopped_seen or tool_state == "T", "%s: the tool never stopped (state %s)"
                      % (what, tool_state))
        signal_tool(p, signal.SIGCONT if case.sig == signal.SIGSTOP else -signal.SIGCONT)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            chk.fail("%s: the tool did not finish within 60 s once continued" % what)
            return None
        e = read_all(err)
        if p.returncode == -signal.SIGKILL:
            # Killed by its watchdog: allowed, if the target is fine (checked below).
            dt.log("%s: the tool was killed by its watchdog" % what)
        else:
            # beatfix's main thread sleeps in sigwaitinfo, which an interrupt would end
            # with EINTR: diag-core leaves it running and says its registers are partial
            # (exit 4); nothing else may be missing.
            partial_only = p.returncode == 4 and all("not stopped" in l for l in e.splitlines() if l.strip())
            chk.check(p.returncode == 0 or partial_only, "%s: exit status %s (stderr %r)" % (what, p.returncode, e[-500:]))
            check_output(chk, case, what, fx, out, outdir)
        # The watchdog is reaped by the tool (normal exit) or gone with it.
        for w in watchdogs:
            deadline = time.monotonic() + 1.0
            while not gone_or_zombie(w) and time.monotonic() < deadline:
                time.sleep(0.01)
            if p.returncode == 0:
                chk.check(proc_state(w) is None, "%s: watchdog %d left behind (state %s)" % (what, w, proc_state(w)))
            else:
                chk.check(gone_or_zombie(w), "%s: watchdog %d outlived the killed tool" % (what, w))
        dt.reap_orphans()
        bad = dt.stopped_or_traced(fx.pid)
        deadline = time.monotonic() + 1.0
        while bad and time.monotonic() < deadline:
            time.sleep(0.01)
            bad = dt.stopped_or_traced(fx.pid)
        chk.check(not bad, "%s: target left stopped or traced: %s" % (what, bad[:5]))
        chk.eq(dt.traced(fx.pid), 0, "%s: TracerPid of the target at the end" % what)
        t0 = fx.ticks()
        deadline = time.monotonic() + 1.0
        while fx.ticks() < t0 + 8 and time.monotonic() < deadline:
            time.sleep(0.005)
        chk.check(fx.ticks() >= t0 + 8, "%s: the target's heartbeat does not tick" % what)
        chk.check(fx.proc.poll() is None, "%s: target died (%s)" % (what, fx.proc.poll()))
        dt.log("%s: %s, target's longest pause %.1f ms,%s tool exit %s"
               % (what, "landed in the window" if landed else "outside the window", gap,
                  " continued after %.1f ms," % reaction if reaction is not None else "", p.returncode))
        return landed
    finally:
        if p.poll() is None:
            dt.kill_group(p)
            dt.kill_group(p, signal.SIGCONT)
            p.wait()
        os.close(rfd)
        out.close()
        err.close()
        shutil.rmtree(outdir, ignore_errors=True)


def stuck_window(chk, fx, case):
    """A tool that is running but stuck with its target stopped (its window held
    open far past the limit, DIAG_TEST_WINDOW_MAX_MS) is killed by its watchdog,
    and the kernel lets the target run, long before the hold would have ended."""
    what = "%s stuck in its window" % case.tool
    outdir = tempfile.mkdtemp(prefix="diagtest-suspend-")
    env = dt.window_env(STUCK_HOLD_MS, 2)
    env["DIAG_TEST_WINDOW_MAX_MS"] = str(STUCK_MAX_MS)
    fx.reset_gap()
    t0 = time.monotonic()
    p = subprocess.Popen(argv(case, fx, outdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, env=env, cwd="/", preexec_fn=dt._child_setup)
    try:
        rc = p.wait(timeout=STUCK_HOLD_MS / 1000 + 60)
        took = time.monotonic() - t0
        chk.eq(rc, -signal.SIGKILL, "%s: the tool's end (killed by its watchdog)" % what)
        chk.check(took < STUCK_HOLD_MS / 1000 * 0.75,
                  "%s: the tool ended after %.1f s, the hold was %.1f s" % (what, took, STUCK_HOLD_MS / 1000))
        deadline = time.monotonic() + 2.0
        while dt.stopped_or_traced(fx.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        chk.check(not dt.stopped_or_traced(fx.pid), "%s: target left stopped or traced" % what)
        chk.eq(dt.traced(fx.pid), 0, "%s: TracerPid of the target at the end" % what)
        gap = fx.max_gap_ms()
        chk.check(gap < STUCK_HOLD_MS * 0.75, "%s: the target paused %.0f ms" % (what, gap))
        dt.reap_orphans()
        dt.log("%s: killed after %.2f s, target's longest pause %.0f ms" % (what, took, gap))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(outdir, ignore_errors=True)


def signal_tool(p, sig):
    """SIGSTOP/SIGCONT to the tool, SIGTSTP (or -SIGCONT) to its process group;
    nothing once it has ended."""
    if p.poll() is not None:
        return
    try:
        if sig == signal.SIGTSTP or sig == -signal.SIGCONT:
            os.killpg(p.pid, abs(sig))
        else:
            os.kill(p.pid, sig)
    except ProcessLookupError:
        pass


def read_all(f):
    f.seek(0)
    return f.read().decode(errors="replace")


def check_output(chk, case, what, fx, out, outdir):
    if case.tool == "diag-stack":
        try:
            doc = json.loads(read_all(out))
        except ValueError as e:
            chk.fail("%s: output is not JSON (%s)" % (what, e))
            return
        proc = dt.process_of(doc, fx.pid)
        chk.check(proc and dt.threads_of(proc), "%s: no threads of %d in the output" % (what, fx.pid))
    else:
        core = os.path.join(outdir, "core.%d" % fx.pid)
        chk.check(os.path.exists(core) and os.path.getsize(core) > 0, "%s: no core written" % what)


def full_run_time(case, fx):
    outdir = tempfile.mkdtemp(prefix="diagtest-suspend-")
    t0 = time.monotonic()
    subprocess.run(argv(case, fx, outdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL, env=dt.window_env(HOLD_MS, 2), cwd="/", timeout=120)
    shutil.rmtree(outdir, ignore_errors=True)
    return time.monotonic() - t0


def main():
    dt.setup(__doc__, "diag_core", "beatfix")
    dt.set_subreaper()
    chk = dt.Checker("suspend")
    seed = os.environ.get("DIAG_TEST_SEED") or str(random.randrange(1 << 30))
    rnd = random.Random(seed)
    dt.log("seed %s (set DIAG_TEST_SEED to replay)" % seed)
    tools = [("diag-stack", None)]
    if dt.paths.diag_core:
        tools += [("diag-core", "fork"), ("diag-core", "stop")]
    else:
        dt.log("diag-core not given: only diag-stack is suspended")
    with BeatFixture() as fx:
        for tool, method in tools:
            if method != "stop":        # a stop that lasts its copy lifts the limit
                stuck_window(chk, fx, Case(tool, method, None, False))
            full = full_run_time(Case(tool, method, None, False), fx)
            for sig in (signal.SIGSTOP, signal.SIGTSTP):
                cases = [Case(tool, method, sig, True)] * AIMED + [Case(tool, method, sig, False)] * ANYWHERE
                rnd.shuffle(cases)
                landed = 0
                for i, case in enumerate(cases):
                    r = run_once(chk, fx, case, i, rnd, full)
                    if r is None:
                        break
                    landed += r
                name = Case(tool, method, sig, True).name()
                dt.log("%s: %d of %d aimed suspensions landed inside the stop window" % (name, landed, AIMED))
                if not chk.failures and landed < MIN_LANDED * AIMED:
                    dt.harness_error("%s: only %d of %d suspensions landed inside the window: the test "
                                     "proved too little" % (name, landed, AIMED))
    chk.finish()


if __name__ == "__main__":
    main()
