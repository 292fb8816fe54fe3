# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap killed at random instants (SIGINT, SIGTERM, SIGHUP at any point of its
run, SIGKILL too): DIR exists only as a whole bundle (index.json and summary.txt
there); a caught signal leaves no temporary directory, SIGKILL at most one that is
named as one (".DIR.tmp-XXXXXX", never DIR); no process of the run is left (the test
is a subreaper: orphans come to it); the target named on the command line (whose
stack diag-stack reads) is never left stopped or traced. A bundle's signal ends it
with exit status 1 or death by the signal."""
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
import snaptest as st  # noqa: E402

ROUNDS = 16
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)


def main():
    st.setup(__doc__)
    exe = dt.need_path("diag_snap")
    dt.set_subreaper()
    chk = dt.Checker("snap-kill")
    rnd = random.Random(int(os.environ.get("SNAP_KILL_SEED", time.time())))
    target = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL, start_new_session=True,
                              preexec_fn=dt._child_setup)
    try:
        with tempfile.TemporaryDirectory(prefix="diag-snap-kill.") as tmp:
            # One whole run first: how long a bundle takes here.
            r = st.snap("-o", os.path.join(tmp, "whole"), "--timeout", "3s", str(target.pid))
            chk.check(r.rc in st.BUNDLE_RC, "an undisturbed run: exit 0 or 4\n%s" % r.describe())
            span = max(0.2, min(r.elapsed, 5.0))
            for i in range(ROUNDS):
                sig = SIGNALS[i % len(SIGNALS)]
                at = rnd.uniform(0.0, span * 1.1)
                out = os.path.join(tmp, "b%d" % i)
                what = "round %d: %s after %.3f s" % (i, signal.Signals(sig).name, at)
                p = subprocess.Popen([exe, "-o", out, "--timeout", "3s", str(target.pid)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=dt.tool_env(), cwd="/")
                time.sleep(at)
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass
                try:
                    rc = p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    rc = p.wait()
                    chk.fail("%s: diag-snap did not end within 15 s of the signal" % what)
                err = p.stderr.read().decode(errors="replace")
                p.stderr.close()
                if os.path.lexists(out):
                    # it finished before the signal landed (or the signal came after the rename)
                    st.check_bundle(chk, out, what + " (a bundle was written)")
                else:
                    chk.check(rc in (1, -sig, 128 + sig) or rc in st.BUNDLE_RC,
                              "%s: no bundle, exit status %r (stderr %r)" % (what, rc, err[-500:]))
                left = st.leftovers(tmp)
                if sig == signal.SIGKILL:
                    chk.check(len(left) <= 1, "%s: at most one temporary directory: %r" % (what, left))
                    for n in left:
                        chk.check(not os.path.exists(os.path.join(tmp, n, "index.json")) or
                                  n.startswith("."), "%s: a leftover %s named as temporary" % (what, n))
                        dt.log("%s: SIGKILL left %s (expected: nothing can remove it)" % (what, n))
                        subprocess.run(["rm", "-rf", "--", os.path.join(tmp, n)])
                else:
                    chk.eq(left, [], "%s: no temporary directory left" % what)
                chk.check(sorted(n for n in os.listdir(tmp) if n.startswith("b")) ==
                          sorted("b%d" % j for j in range(i + 1) if os.path.isdir(os.path.join(tmp, "b%d" % j))),
                          "%s: nothing but bundles and their temporaries next to DIR: %r" % (what, os.listdir(tmp)))
                st.no_children_left(chk, what, exclude=(target.pid,), wait=5.0)
                bad = dt.stopped_or_traced(target.pid)
                chk.eq(bad, [], "%s: the target is not left stopped or traced" % what)
                chk.check(target.poll() is None, "%s: the target still runs" % what)
    finally:
        target.kill()
        target.wait()
    chk.finish()


if __name__ == "__main__":
    main()
