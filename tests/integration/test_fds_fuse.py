# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-fds never hangs (DESIGN rule 2): with a FUSE file system that stopped answering
and a holder process blocked reading a file on it, `diag-fds -p HOLDER`, the whole-system
scan, -J and the fdinfo/lock columns all answer within a few seconds and list the holder's
fd with its path. And with a FUSE server that reads requests and never answers (a stat
on it cannot be killed), `diag-fds FILE | cat` ends: the child stuck on FILE holds none
of the tool's descriptors, and stderr names it once. Needs root and /dev/fuse (else
skipped)."""
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

ANSWER_WITHIN = 5       # seconds; longer counts as a hang


def main():
    dt.setup_fds(__doc__)
    dt.need_path("diag_fds")
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")
    chk = dt.Checker("fds-fuse")
    fx = dt.KVFixture("fusehang", ready_timeout=20, term_timeout=10, pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        fu = fx.fact("fuse")
        mnt, conn = fu["mnt"], fu.get("conn")
        chk.check(dt.mounted_at(mnt), "fixture's mount %s is in /proc/self/mounts" % mnt)
        # Prove the mount is hung: a plain stat of the file does not come back.
        s = dt.run(["stat", fu["path"]], timeout=1)
        if s.rc != "timeout":
            dt.harness_error("the FUSE mount is not hung: `%s` returned %s" % (s.cmd(), s.rc))
        check_tool(chk, fu)
        chk.check(fx.proc.poll() is None, "fusehang still running after the diag-fds runs")
    finally:
        dt.close_fuse(chk, fx, mnt, conn, point_removed=True)
    # A server that read the requests and never answers: a stat on it cannot be killed.
    fx = dt.KVFixture("fusehang", ["--no-read", "--swallow"], ready_timeout=20, term_timeout=10,
                      pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        fu = fx.fact("fuse")
        mnt, conn = fu["mnt"], fu.get("conn")
        check_pipeline(chk, fu)
    finally:
        dt.close_fuse(chk, fx, mnt, conn, point_removed=True)
    chk.finish()


def answered(chk, r):
    """True when the run came back in time and did not crash."""
    ok = chk.check(r.rc != "timeout" and r.elapsed < ANSWER_WITHIN,
                   "HANG: `%s` did not answer within %ss on a hung FUSE mount (took %.1fs, exit %s)\n%s"
                   % (r.cmd(), ANSWER_WITHIN, r.elapsed, r.rc, r.err[-2000:]))
    chk.check("Sanitizer" not in r.err and "runtime error" not in r.err,
              "`%s`: sanitizer report:\n%s" % (r.cmd(), r.err[-3000:]))
    return ok


def check_tool(chk, fu):
    h, hfd, path = fu["holder_pid"], fu["holder_fd"], fu["path"]
    limit = ANSWER_WITHIN + 5   # the harness kills the run after this; a run past ANSWER_WITHIN fails

    # -p HOLDER, default columns: the holder's fd with its path
    r = dt.diag_fds("-p", h, timeout=limit)
    if answered(chk, r):
        chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        row = [l for l in r.out.splitlines() if l.split()[:1] == [str(h)] and l.split()[2:3] == [str(hfd)]]
        chk.check(row and path in row[0], "`%s` lists fd %d with path %s:\n%s" % (r.cmd(), hfd, path, r.out))

    # the whole system
    r = dt.diag_fds(timeout=limit)
    if answered(chk, r):
        chk.eq(r.rc, dt.fds_status(0), "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        chk.check(any(l.split()[:1] == [str(h)] and path in l for l in r.out.splitlines()),
                  "`%s` lists the holder's fd on %s" % (r.cmd(), path))

    # -J -p HOLDER: path, type, the blocked read
    r = dt.diag_fds("-J", "-p", h, timeout=limit)
    if answered(chk, r):
        chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        e = dt.fds_entry(r.json(chk), h, hfd)
        if chk.check(e, "`%s` has fd %d of %d" % (r.cmd(), hfd, h)):
            chk.eq(e.get("name"), path, "name of the holder's fd")
            chk.eq(e.get("link"), path, "link of the holder's fd")
            chk.eq(e.get("type"), "REG", "type of the holder's fd")
            chk.eq(str(e.get("mode"))[:1], "r", "access of the holder's fd")
            chk.check(fu["holder_tid"] in (e.get("blocked_tids") or []),
                      "holder's fd blocked_tids %r contain %d (blocked in read)" % (e.get("blocked_tids"), fu["holder_tid"]))

    # whole system JSON, and the columns that read fdinfo and locks
    for args in (["-J"], ["-p", h, "-o", "+POS,FLAGS,LOCKS,INODE,DEV,BLOCKED"], ["--summary"],
                 ["--inode", 2, "-J"]):     # 2: the FUSE file's inode number
        r = dt.diag_fds(*args, timeout=limit)
        if answered(chk, r):
            chk.check(r.rc in (0, 1, 4), "exit status of `%s`: %s (stderr: %s)" % (r.cmd(), r.rc, r.err.strip()))
            if "-J" in args:
                doc = r.json(chk)
                chk.check(dt.fds_entry(doc, h, hfd), "`%s` has fd %d of %d" % (r.cmd(), hfd, h))

    # FILE on the dead mount: "who has this file open" is asked exactly when its file
    # system hangs. The tool may fail to resolve the name, but must not hang on it.
    r = dt.diag_fds(path, timeout=ANSWER_WITHIN + 1)
    if answered(chk, r):
        chk.check(r.rc in (0, 1, 4), "exit status of `%s`: %s (stderr: %s)" % (r.cmd(), r.rc, r.err.strip()))
        if r.rc in (0, 4):
            chk.check(any(l.split()[:1] == [str(h)] for l in r.out.splitlines()),
                      "`%s` lists the holder %d:\n%s" % (r.cmd(), h, r.out))


def stuck_children(exe):
    """Processes running the diag-fds binary (stat children left behind by a run)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % pid) == exe:
                    out.append(int(pid))
            except OSError:
                pass
    return out


def check_pipeline(chk, fu):
    """`diag-fds FILE | cat` on the dead mount ends: the child that stats FILE holds
    none of the tool's descriptors (a reader of the pipe would wait for it), and a
    child left stuck is named once on stderr."""
    exe = os.path.realpath(dt.need_path("diag_fds"))
    before = set(stuck_children(exe))
    for i in range(2):
        r = dt.run_bounded(["sh", "-c", '"$0" "$1" | cat', exe, fu["path"]], timeout=ANSWER_WITHIN + 3)
        if not answered(chk, r):
            continue
        chk.check(r.rc in (0, 1, 4), "exit status of `%s`: %s (stderr: %s)" % (r.cmd(), r.rc, r.err.strip()))
        left = set(stuck_children(exe)) - before
        before |= left
        named = [l for l in r.err_lines() if "stuck" in l]
        if left:
            chk.check(len(named) == 1 and all(str(p) in named[0] for p in left),
                      "run %d left child %s stuck: stderr names it once:\n%s" % (i + 1, sorted(left), r.err))
        else:
            chk.check(not named, "run %d left no child but stderr says one is stuck:\n%s" % (i + 1, r.err))


if __name__ == "__main__":
    main()
