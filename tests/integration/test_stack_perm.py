# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack run as an unprivileged user (nobody) on a root-owned process: exit 1 with
one line saying permission is missing; the target is untouched."""
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
                chk.check(re.search(r"permission|not permitted", lines[0], re.I),
                          "stderr %r mentions permission" % lines[0])
        fx.check_unharmed(chk, "after unprivileged runs")
    chk.finish()


if __name__ == "__main__":
    main()
