# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain ends a chain at a thread in uninterruptible sleep (D) and never hangs on
it: chainfix dstate mounts a FUSE file system that stops answering; thread O holds
mutex chainfix_m and reads a file on it (D, in the page cache), thread W waits for
the mutex. `diag-chain W` (JSON, text, --all) answers within seconds: W -futex-> O,
O's end "uninterruptible" with its wchan and what the fd of its read() is (the file,
its device, mount point and type, as /proc/PID/fd, fdinfo's mnt_id and mountinfo
say), a verdict naming O, the mutex and the file; nothing
is stopped or woken. The mount is always taken down (MNT_DETACH, connection
aborted). Needs root and /dev/fuse (else skipped)."""
import os
import re
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

ANSWER_WITHIN = 15      # seconds (ASan builds included); longer counts as a hang
EXIT_STUCK = 5


def main():
    dt.setup_chain(__doc__)
    dt.need_path("diag_chain")
    dt.need_path("chainfix")
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")
    dt.set_subreaper()
    chk = dt.Checker("chain-dstate")
    fx = dt.KVFixture("chainfix", ["--case", "dstate"], ready_timeout=20, term_timeout=10, pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        f = fx.fact("chain")
        mnt, conn = f["mnt"], f.get("conn") or None
        chk.check(dt.mounted_at(mnt), "the fixture's mount %s is in /proc/self/mounts" % mnt)
        check(chk, fx, f, mnt)
    finally:
        dt.close_fuse(chk, fx, mnt, conn, strict=True, point_removed=True)
        dt.reap_orphans()
    chk.finish()


def check_fd(chk, what, pid, tid, n, mnt):
    """O's node names the fd its read() is on as /proc says: the link, fdinfo's
    mnt_id, and that mount's device, mount point and type in mountinfo."""
    sc = dt.proc_syscall(pid, tid)
    fdnum = int(sc[1], 16) if len(sc) > 1 else -1
    link = os.readlink("/proc/%d/fd/%d" % (pid, fdnum))
    fdinfo = dt.read_file("/proc/%d/fdinfo/%d" % (pid, fdnum)) or ""
    m = re.search(r"^mnt_id:\s*(\d+)", fdinfo, re.M)
    mnt_id = int(m.group(1)) if m else None
    mi = None
    for line in (dt.read_file("/proc/%d/mountinfo" % pid) or "").splitlines():
        w = line.split()
        if w and int(w[0]) == mnt_id:
            mi = (w[2], w[4], w[w.index("-") + 1])
    fd = n.get("fd") or {}
    chk.eq((fd.get("fd"), fd.get("path"), fd.get("mnt_id")), (fdnum, link, mnt_id),
           "%s: O's fd (number, path, mnt_id) against /proc" % what)
    chk.eq((fd.get("device"), fd.get("mount_point"), fd.get("fstype")), mi,
           "%s: O's fd (device, mount point, type) against mountinfo" % what)
    chk.eq(fd.get("mount_point"), mnt, "%s: O's fd is on the fixture's mount" % what)
    chk.check(fd.get("may_hang") is True, "%s: a FUSE mount may hang: %r" % (what, fd.get("may_hang")))
    chk.check(link in (n.get("end_text") or "") and mnt in (n.get("end_text") or ""),
              "%s: O's end_text %r names the file and the mount" % (what, n.get("end_text")))


def check(chk, fx, f, mnt):
    (a, w), (_, o) = dt.pid_tid(f["W"]), dt.pid_tid(f["O"])
    blocked = [(a, w), (a, o)]
    chk.eq(dt.task_state(a, o), "D", "O (tid %d) state before" % o)
    what = "dstate"
    res = dt.diag_chain_checked(chk, fx, what, "-J", w, blocked=blocked, timeout=ANSWER_WITHIN)
    ch = dt.chain_json(chk, res, what, w)
    if ch:
        path = dt.chain_expect_path(chk, ch, what, [(a, w), (a, o)], ["futex"], "uninterruptible")
        if len(path) == 2:
            n = path[1][0]
            chk.eq(n.get("state"), "D", "%s: O's state" % what)
            chk.check(n.get("wchan") and n["wchan"] in (n.get("end_text") or ""),
                      "%s: O's end_text %r names its wchan %r" % (what, n.get("end_text"), n.get("wchan")))
            chk.check((n.get("syscall") or "").startswith("read("), "%s: O's syscall %r" % (what, n.get("syscall")))
            chk.check("chainfix_m" in (path[1][1].get("resource") or ""),
                      "%s: futex edge resource %r" % (what, path[1][1].get("resource")))
            fn = [fr.get("function") for fr in n.get("frames", [])]
            chk.check("chainfix_fuse_reader" in fn, "%s: O's frames %s name chainfix_fuse_reader" % (what, fn))
            check_fd(chk, what, a, o, n, mnt)
        dt.chain_verdict_has(chk, ch, what, "tid %d " % o, "uninterruptible", "chainfix_m", "%s/f" % mnt)
    res = dt.diag_chain_checked(chk, fx, what + " (text)", w, blocked=blocked, timeout=ANSWER_WITHIN)
    roots = [l for l in res.out.splitlines() if l.startswith("root: ")]
    chk.check(len(roots) == 1 and "uninterruptible" in roots[0], "%s (text): root line\n%s" % (what, res.describe()))
    chk.check(roots and "%s/f (" % mnt in roots[0] and "mounted at %s" % mnt in roots[0],
              "%s (text): the root line names the file and its mount\n%s" % (what, res.describe()))
    chk.check("kernel " in res.out, "%s (text): as root, the kernel stack of the D thread is shown\n%s"
              % (what, res.describe()))
    # The whole host, with a hung FUSE mount on it.
    res, problems = dt.run_watched([dt.need_path("diag_chain"), "--all", "-J"], dt.group_pids(fx.pid),
                                   timeout=ANSWER_WITHIN)
    chk.check(not problems, "--all: a target was stopped or traced: %s" % problems[:8])
    chk.check(res.rc in (3, 5), "--all: exit status %s\n%s" % (res.rc, res.describe()))
    doc = res.json(chk)
    ch, story = dt.chain_story(doc, w)
    chk.check([(n.get("tid"), n.get("end")) for n in story] == [(w, "none"), (o, "uninterruptible")],
              "--all: W's (tid %d) chain, to O uninterruptible, is not there; chains:\n%s" % (w, dt.chain_summary(doc)))
    chk.eq(dt.task_state(a, o), "D", "O (tid %d) state after" % o)


if __name__ == "__main__":
    main()
