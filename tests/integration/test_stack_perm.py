# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack run as an unprivileged user (nobody) on a root-owned process: exit 1 with
the one line of the shared vocabulary ("not permitted to show the stacks of pid N (comm),
owned by uid 0: run as root or as its owner"); with -J also the error object on stdout
(reason "not-permitted", status 1); the target is untouched."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

NOBODY = 65534


def main():
    dt.setup(__doc__)
    dt.need_root("to run diag-stack as another user against a root-owned process")
    setpriv = dt.need_program("setpriv")
    tool = dt.need_path("diag_stack")
    as_nobody = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--",
                 tool]
    r = dt.run(as_nobody + ["--version"])
    if r.rc != 0:
        dt.skip("user %d cannot run %s (%s)" % (NOBODY, tool, r.err.strip()[:200]))
    chk = dt.Checker("stack-perm")
    with dt.Fixture(["--roles", "pipe,sleep,heartbeat"]) as fx:
        for extra in ([], ["-J"]):
            r = dt.run(as_nobody + extra + [str(fx.pid)])
            chk.eq(r.rc, 1, "`%s`: exit status (stderr %r)" % (r.cmd(), r.err))
            lines = r.err_lines()
            chk.eq(len(lines), 1, "not permitted: stderr lines %r" % lines)
            if lines:
                chk.check(lines[0].startswith("diag-stack: "), "stderr %r starts with 'diag-stack: '" % lines[0])
                want = ("diag-stack: not permitted to show the stacks of pid %d (stackfix), owned by uid 0: "
                         "run as root or as its owner" % fx.pid)
                chk.eq(lines[0], want, "not permitted: the stderr line")
            if extra:
                err = (r.json(chk) or {}).get("error") or {}
                chk.eq((err.get("reason"), err.get("pid"), err.get("status")), ("not-permitted", fx.pid, 1),
                       "-J error object %r" % err)
                chk.eq("diag-stack: " + str(err.get("message")), lines[0] if lines else None,
                       "-J error message is the stderr line")
        fx.check_unharmed(chk, "after unprivileged runs")
    chk.finish()


if __name__ == "__main__":
    main()
