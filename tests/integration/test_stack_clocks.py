# SPDX-License-Identifier: GPL-2.0-or-later
"""Any stop resets the kernel's blocked-for clock (se.exec_start) of the threads it stops:
diag-stack reads the blocked times before its stop, shows those, and says in one line that
the stop reset the clocks, so that a second run's short times are not a surprise. A thread
blocked for N s in read() on a pipe: the first run shows >= N s and the note; -J has
blocked_clocks_reset; a --no-stop run says nothing about it."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

N = 2.0
NOTE = "The stop reset the kernel's blocked-for clock of"


def blocked_s(out, tid):
    line = next((l for l in out.splitlines() if l.strip().startswith("%d " % tid)), "")
    m = re.search(r"blocked (\d+(?:\.\d+)?)(ms|s)\b", line)
    if not m:
        return None, line
    v = float(m.group(1))
    return (v / 1000 if m.group(2) == "ms" else v), line


def main():
    dt.setup(__doc__)
    chk = dt.Checker("stack-clocks")
    with dt.Fixture(["--roles", "pipe"]) as fx:
        tid = fx.tid("pipe_reader")
        time.sleep(max(0.0, N - (time.monotonic() - fx.ready_time)) + 0.2)

        r = dt.diag_stack("--no-stop", fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
        chk.check(NOTE not in r.out, "--no-stop stops nothing and says nothing of a reset:\n%s" % r.out)

        r = dt.diag_stack(fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        b, line = blocked_s(r.out, tid)
        chk.check(b is not None and b >= N, "first run: pipe reader blocked %r >= %.0fs (read before the stop): %r"
                  % (b, N, line))
        notes = [l for l in r.out.splitlines() if l.startswith(NOTE)]
        chk.check(len(notes) == 1 and "later readings" in notes[0],
                  "one line says the stop reset the clocks:\n%s" % r.out)

        r = dt.diag_stack(fx.pid)
        b2, line = blocked_s(r.out, tid)
        chk.check(b2 is not None and b2 < N, "second run: the clock was reset by the first stop (%r < %.0fs): %r"
                  % (b2, N, line))

        r = dt.diag_stack("-J", fx.pid)
        proc = dt.process_of(r.json(chk) or {}, fx.pid)
        n = proc.get("blocked_clocks_reset") if proc else None
        chk.check(isinstance(n, int) and n >= 1, "-J blocked_clocks_reset %r >= 1" % n)

        r = dt.diag_stack("-o", "TID,BLOCKED,FUNC", fx.pid)
        chk.check("reset the kernel's blocked-for clock" in r.err, "table mode says it on stderr:\n%s" % r.err)
    chk.finish()


if __name__ == "__main__":
    main()
