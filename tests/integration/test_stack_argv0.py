# SPDX-License-Identifier: GPL-2.0-or-later
"""A program started through a symlink of another name (Debian's redis-server is a link
to redis-check-rdb): diag-stack titles the process with the file /proc/PID/exe names and
the name it was started as, and the main executable's frames go by that name, not the
file's. -J has argv0 next to exe. Started under its own name, nothing is added."""
import os
import re
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def main():
    dt.setup(__doc__)
    chk = dt.Checker("stack-argv0")
    real = dt.need_path("stackfix")
    tmp = tempfile.mkdtemp(prefix="diagtest-argv0-")
    link = os.path.join(tmp, "myservice")
    os.symlink(real, link)
    try:
        dt.paths.stackfix = link
        with dt.Fixture(["--roles", "pipe"]) as fx:
            r = dt.diag_stack(fx.pid)
            chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
            head = r.out.splitlines()[0] if r.out else ""
            chk.check(head.startswith("PID %d (myservice) %s (started as %s) " % (fx.pid, real, link)),
                      "header names the file and the name it was started as: %r" % head)
            frames = [l for l in r.out.splitlines() if re.match(r"\s+#\d+ ", l) and "fix_pipe_reader" in l]
            chk.check(frames and all("(myservice)" in l for l in frames),
                      "the executable's frames go by the started name: %r" % frames)
            chk.check("(stackfix)" not in r.out, "no frame is titled with the file's name:\n%s" % r.out[:3000])
            doc = dt.diag_stack("-J", fx.pid).json(chk)
            proc = dt.process_of(doc or {}, fx.pid) or {}
            chk.eq(proc.get("argv0"), link, "JSON argv0")
            chk.eq(proc.get("exe"), real, "JSON exe (the resolved file)")
        dt.paths.stackfix = real
        with dt.Fixture(["--roles", "pipe"]) as fx:
            r = dt.diag_stack(fx.pid)
            head = r.out.splitlines()[0] if r.out else ""
            chk.check(head and "started as" not in head, "own name: no 'started as' in %r" % head)
    finally:
        dt.paths.stackfix = real
        os.unlink(link)
        os.rmdir(tmp)
    chk.finish()


if __name__ == "__main__":
    main()
