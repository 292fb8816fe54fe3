#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump --save never leaves a partial copy under the final name, and stops on
Ctrl-C: a large segment (a /dev/shm file of random bytes, big enough for the save
to take a while) is saved once whole (byte-identical, mode 0600), then saves are
killed at random instants inside the calibrated save window with SIGINT, SIGTERM,
SIGHUP (exit 128+signal, one line on stderr), SIGQUIT and SIGKILL: afterwards no
file under the final name and nothing else in the directory, unless the save had
completed (then the file is whole). Some kills must land before the end."""
import os
import random
import resource
import signal
import stat
import subprocess
import tempfile
import time

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-save")
SIZE = 96 << 20
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGKILL]
ROUNDS = 3      # per signal


def no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # as a user's shell starts it: a test run as a background job would pass
    # SIGINT and SIGQUIT on ignored
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    os.setsid()


def save(src, out, kill_after=None, sig=None):
    """Run shmdump --save; with kill_after, send sig that many seconds after the
    start. Returns (returncode, stderr, elapsed, killed_while_running)."""
    p = subprocess.Popen([dt.need_path("shmdump"), "--save", out, src], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dt.tool_env(), cwd="/",
                         preexec_fn=no_core)
    start = time.monotonic()
    landed = False
    try:
        if kill_after is not None:
            time.sleep(kill_after)
            landed = p.poll() is None
            if landed:
                os.kill(p.pid, sig)
        err = p.communicate(timeout=120)[1].decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err, time.monotonic() - start, landed


def main():
    st.setup(__doc__)
    dt.need_path("shmdump")
    name = "/dev/shm" + st.unique_name(0)
    st._made.append(("posix", st.unique_name(0)))
    tmp = tempfile.mkdtemp(prefix="shmdump-save-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    try:
        with open(name, "wb") as f:
            for _ in range(SIZE >> 20):
                f.write(os.urandom(1 << 20))
        with open(name, "rb") as f:
            want = f.read()

        # a save that completes: byte-identical, 0600; it gives the window
        out = os.path.join(tmp, "whole")
        rc, err, took, _ = save(name, out)
        chk.eq(rc, 0, "a whole save: exit status (%s)" % err.strip())
        if chk.check(os.path.exists(out), "a whole save wrote nothing"):
            chk.eq(stat.S_IMODE(os.lstat(out).st_mode), 0o600, "the copy's mode")
            with open(out, "rb") as f:
                chk.check(f.read() == want, "the copy differs from the segment")
            os.unlink(out)
        dt.log("a whole save of %d MiB took %.2fs" % (SIZE >> 20, took))

        landed = 0
        for sig in SIGNALS:
            for i in range(ROUNDS):
                out = os.path.join(tmp, "copy-%s-%d" % (sig.name, i))
                at = random.uniform(0.05, 0.8) * took
                rc, err, ended, hit = save(name, out, at, sig)
                what = "%s at %.3fs of %.2fs" % (sig.name, at, took)
                if hit and rc == 0:
                    # it may have been committing; it must not have gone on long after
                    chk.check(ended - at < 0.5, "%s: the signal was ignored: the save went on for %.2fs and exited 0"
                              % (what, ended - at))
                if not hit or rc == 0:
                    # finished before the signal: a whole copy, or nothing
                    chk.eq(rc, 0, "%s: the save ended before the signal, exit status" % what)
                    if os.path.exists(out):
                        with open(out, "rb") as f:
                            chk.check(f.read() == want, "%s: a completed copy differs" % what)
                        os.unlink(out)
                    continue
                landed += 1
                want_rc = 128 + sig if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) else -sig
                chk.eq(rc, want_rc, "%s: exit status (stderr %r)" % (what, err))
                if want_rc > 0:
                    lines = [l for l in err.splitlines() if l.strip()]
                    chk.check(len(lines) == 1 and "nothing saved" in lines[0], "%s: stderr %r" % (what, lines))
                if want_rc < 0 and os.path.isfile(out) and not os.path.islink(out):
                    # SIGKILL or SIGQUIT after the link (while the process was still
                    # tidying up): the copy under the name must then be whole
                    with open(out, "rb") as f:
                        chk.check(f.read() == want, "%s: a file is left under the final name %s, and it "
                                  "differs from the segment (%d bytes)" % (what, out, os.path.getsize(out)))
                    os.unlink(out)
                    landed -= 1
                chk.check(not os.path.lexists(out), "%s: a file is left under the final name %s (%d bytes)"
                          % (what, out, os.path.getsize(out) if os.path.exists(out) else -1))
                chk.eq(os.listdir(tmp), [], "%s: files left in the directory" % what)
                for f in os.listdir(tmp):
                    os.unlink(os.path.join(tmp, f))
        chk.check(landed >= len(SIGNALS), "only %d of %d signals landed while the save ran: the test proved little"
                  % (landed, len(SIGNALS) * ROUNDS))
    finally:
        st.remove_everything()
        dt.shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


main()
