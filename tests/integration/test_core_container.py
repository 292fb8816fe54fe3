# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-core on the first process of a pid namespace (a container's init), which
adopts every orphan in it and may never reap: the copy of the image must not become
a child of the target. Two shapes, each run to completion and SIGKILLed at random
instants of the dump: corefix as PID 1 (256 MiB heap, a child of its own, it never
reaps and counts the SIGCHLDs it gets), and `sh -c 'sleep & exec sleep'` as PID 1.
After each run the target's children and zombies are as they were, no thread is
stopped or traced, and corefix got no SIGCHLD. Needs pid namespaces (unshare),
else skipped."""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

KILLS = 12
SETTLE = 5.0            # seconds for a killed run's leftovers to be reaped


def can_unshare():
    unshare = dt.which("unshare")
    if not unshare:
        return None, "unshare (util-linux) is not installed"
    r = dt.run([unshare, "--fork", "--pid", "--mount-proc", "true"], timeout=30)
    if r.rc != 0:
        return None, "no pid namespace can be made here (%s)" % (r.err.strip().splitlines() or ["?"])[-1]
    return unshare, None


class NsTarget:
    """argv run as PID 1 of a new pid namespace; pid is its pid as seen from here."""

    def __init__(self, unshare, argv, ready=None):
        self.p, self.pid = dt.start_in_pidns(unshare, argv)
        if not self.pid:
            self.close()
            dt.harness_error("%s did not start in a pid namespace" % argv)
        self.info = None
        if ready:
            line = self.p.stdout.readline().decode(errors="replace")
            if line.startswith("SKIP "):
                self.close()
                dt.skip("fixture corefix: " + line[5:].strip())
            self.info = json.loads(line)

    def command(self, cmd):
        self.p.stdin.write(cmd.encode() + b"\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline().decode(errors="replace"))

    def close(self):
        dt.kill_group(self.p)
        self.p.wait()


def settled(tgt, before, timeout=SETTLE):
    """The target's (children, zombies) once back to `before`, or after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        kids = dt.children_of(tgt.pid)
        bad = dt.stopped_or_traced(tgt.pid)
        if (kids == before and not bad) or time.monotonic() > deadline:
            return kids, bad
        time.sleep(0.02)


def check_after(chk, tgt, before, what, sigchld):
    kids, bad = settled(tgt, before)
    chk.eq(kids, before, "%s: children of the target (children, zombies)" % what)
    chk.check(not bad, "%s: target left stopped or traced: %s" % (what, bad))
    chk.check(os.path.exists("/proc/%d" % tgt.pid), "%s: the target died" % what)
    if sigchld is not None:
        chk.eq(tgt.command("children")["sigchld"], sigchld, "%s: SIGCHLDs the target got" % what)
    for k in set(kids[0]) - set(before[0]):     # so that the next run starts clean
        try:
            os.kill(k, 9)
        except ProcessLookupError:
            pass


def shape(chk, tgt, name, tmp, rnd):
    sigchld = tgt.command("children")["sigchld"] if tgt.info else None
    before = dt.children_of(tgt.pid)
    chk.check(before[0] and not before[1], "%s: the target's children before: %s" % (name, before))
    d = tempfile.mkdtemp(dir=tmp)
    t0 = time.monotonic()
    r = dt.diag_core("-J", "-o", os.path.join(d, "core"), tgt.pid, timeout=300)
    full = time.monotonic() - t0
    what = "%s, a whole run" % name
    chk.eq(r.rc, 0, "%s: exit status\n%s" % (what, r.describe()))
    doc = r.json(chk) or {}
    chk.eq(doc.get("method"), "fork", "%s: -J method" % what)
    check_after(chk, tgt, before, what, sigchld)
    shutil.rmtree(d, ignore_errors=True)
    # Half at random in the first 60 ms, as the report had it, half over the whole run.
    delays = [rnd.uniform(0, 0.06) for _ in range(KILLS // 2)] + \
             [rnd.uniform(0, full) for _ in range(KILLS - KILLS // 2)]
    for i, delay in enumerate(delays):
        d = tempfile.mkdtemp(dir=tmp)
        p = subprocess.Popen([dt.need_path("diag_core"), "-q", "-o", os.path.join(d, "core"), str(tgt.pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                             env=dt.tool_env(), start_new_session=True, cwd="/")
        time.sleep(delay)
        p.kill()
        p.wait()
        check_after(chk, tgt, before, "%s, kill %d after %.1f ms" % (name, i, delay * 1000), sigchld)
        shutil.rmtree(d, ignore_errors=True)


def main():
    dt.setup_core(__doc__)
    dt.need_root("making pid namespaces and tracing their processes")
    unshare, why = can_unshare()
    if not unshare:
        dt.skip(why)
    chk = dt.Checker("core-container")
    seed = os.environ.get("DIAG_TEST_SEED") or str(random.randrange(1 << 30))
    dt.log("seed %s (set DIAG_TEST_SEED to replay)" % seed)
    rnd = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="diagtest-core-")
    try:
        tgt = NsTarget(unshare, [dt.need_path("corefix"), "--heap", "256", "--threads", "2", "--children", "1"],
                       ready=True)
        try:
            shape(chk, tgt, "corefix as PID 1", tmp, rnd)
        finally:
            tgt.close()
        tgt = NsTarget(unshare, ["sh", "-c", "sleep 3000 & exec sleep 3000"])
        try:
            deadline = time.monotonic() + 10
            while not dt.children_of(tgt.pid)[0] and time.monotonic() < deadline:
                time.sleep(0.01)
            shape(chk, tgt, "sleep as PID 1, never reaping", tmp, rnd)
        finally:
            tgt.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
