#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump never hangs on a path the user names (DESIGN rule 2): with a FUSE file
system that stopped answering (the fusehang fixture), `shmdump PATH | cat`,
--check, -J and --save from a file on it all end within a few seconds, with exit 1
and one line saying the file did not answer (and naming a helper left stuck, if
one was); -J prints the error object; --save leaves no file; no shmdump process
is left behind but a helper the line names. Needs root and /dev/fuse (else
skipped)."""
import os
import re
import tempfile

import shmtest as st
from shmtest import dt

ANSWER_WITHIN = 8       # seconds (shmdump gives a file 4 s); longer counts as a hang

chk = dt.Checker("shm-fuse")


def shmdump_pids(path):
    """shmdump processes whose command line names path (the runs of this test and
    what they forked: another test of the suite may run a shmdump of its own)."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit() and (dt.read_file("/proc/%s/comm" % d) or "").strip() == "shmdump" and \
           path in (dt.read_file("/proc/%s/cmdline" % d) or "").split("\0"):
            out.add(int(d))
    return out


def answered(r, what):
    ok = chk.check(r.rc not in ("timeout", "unkillable") and r.elapsed < ANSWER_WITHIN,
                   "HANG: %s did not answer within %ss on a hung FUSE mount (took %.1fs, exit %s)\n%s"
                   % (what, ANSWER_WITHIN, r.elapsed, r.rc, r.err[-2000:]))
    chk.check("Sanitizer" not in r.err and "runtime error" not in r.err, "%s: sanitizer report:\n%s" % (what, r.err))
    return ok


def one_line(r, what, path):
    lines = r.err_lines()
    ok = chk.check(len(lines) == 1 and path in lines[0] and "no answer within" in lines[0],
                   "%s: want one stderr line saying %s did not answer, got %r" % (what, path, lines))
    m = re.search(r"helper process (\d+) is left stuck", lines[0]) if ok else None
    return int(m.group(1)) if m else None


def check_runs(path, tmp):
    sh = dt.which("sh")
    before = shmdump_pids(path)
    stuck = set()
    # the pipeline: cat ends only when every holder of the pipe has closed it
    r = dt.run_bounded([sh, "-c", '"$0" "$1" | cat', dt.need_path("shmdump"), path], timeout=ANSWER_WITHIN + 5)
    if answered(r, "`shmdump PATH | cat`"):
        stuck.add(one_line(r, "shmdump PATH | cat", path))

    for args in (["--check", path], ["--nodes", "0-3", path], ["-J", "--check", path]):
        r = dt.run_bounded([dt.need_path("shmdump")] + args, timeout=ANSWER_WITHIN + 5)
        what = "`shmdump %s`" % " ".join(args)
        if answered(r, what):
            chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
            stuck.add(one_line(r, what, path))
            if "-J" in args:
                e = (r.json(chk) or {}).get("error") or {}
                chk.eq((e.get("reason"), e.get("status")), ("timeout", 1), "%s: the error object %r" % (what, e))
                chk.check(path in (e.get("message") or ""), "%s: the error message names the file: %r" % (what, e))

    out = os.path.join(tmp, "saved")
    r = dt.run_bounded([dt.need_path("shmdump"), "--save", out, path], timeout=ANSWER_WITHIN + 5)
    if answered(r, "`shmdump --save OUT PATH`"):
        chk.eq(r.rc, 1, "--save from the hung file: exit status\n%s" % r.describe())
        stuck.add(one_line(r, "--save", path))
    chk.eq(os.listdir(tmp), [], "--save from the hung file left files in the output directory")

    left = shmdump_pids(path) - before - stuck
    chk.eq(sorted(left), [], "shmdump processes left behind (not named as stuck helpers)")


def main():
    st.setup(__doc__, "fusehang")
    dt.need_path("shmdump")
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")
    fx = dt.KVFixture("fusehang", ["--no-read"], ready_timeout=20, term_timeout=10, pdeathsig=dt.signal.SIGTERM)
    mnt = conn = None
    tmp = tempfile.mkdtemp(prefix="shmdump-fuse-")
    try:
        fx.__enter__()
        fu = fx.fact("fuse")
        mnt, conn = fu["mnt"], fu.get("conn")
        s = dt.run(["stat", fu["path"]], timeout=1)
        if s.rc != "timeout":
            dt.harness_error("the FUSE mount is not hung: `%s` returned %s" % (s.cmd(), s.rc))
        check_runs(fu["path"], tmp)
        chk.check(fx.proc.poll() is None, "fusehang still running after the shmdump runs")
    finally:
        dt.close_fuse(chk, fx, mnt, conn)
        dt.shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


main()
