# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack names the file a blocked system call is on, with its device and mount, and
never touches it: chainfix dstate mounts a FUSE file system that stops answering and its
thread O reads a file there, in uninterruptible sleep (D). `diag-stack O` answers within
seconds and shows `read(N, ...) on MNT/f (DEV fuse... mounted at MNT)`; -J has the device
(as /proc/self/mountinfo gives it), the mount point, the fs type and may_hang. A thread
asleep (S) in read on a pipe shows `on pipe:[INODE]`. The FUSE part needs root and
/dev/fuse (else skipped)."""
import os
import re
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

ANSWER_WITHIN = 15      # seconds (ASan builds included); longer counts as a hang


def mountinfo_of(mnt):
    """(MAJ:MIN, fstype) of the mount at mnt, from our own mountinfo."""
    for line in (dt.read_file("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4]) if len(f) > 4 else None
        if point == mnt:
            return f[2], right.split()[0]
    return None, None


def main():
    dt.setup(__doc__, "chainfix")
    dt.need_path("diag_stack")
    chk = dt.Checker("stack-dstate")
    check_pipe(chk)
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")
    dt.need_path("chainfix")
    dt.set_subreaper()
    fx = dt.KVFixture("chainfix", ["--case", "dstate"], ready_timeout=20, term_timeout=10, pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        f = fx.fact("chain")
        mnt, conn = f["mnt"], f.get("conn") or None
        chk.check(dt.mounted_at(mnt), "fixture's mount %s is in /proc/self/mounts" % mnt)
        pid, tid = dt.pid_tid(f["O"])
        sc = dt.proc_syscall(pid, tid)
        fd = int(sc[1], 16) if len(sc) > 1 else -1
        check(chk, pid, tid, fd, os.path.join(mnt, "f"), mnt)
    finally:
        dt.close_fuse(chk, fx, mnt, conn)
        dt.reap_orphans()
    chk.finish()


def check_pipe(chk):
    with dt.Fixture(["--roles", "pipe"]) as fx:
        t = fx.roles["pipe_reader"][0]
        fd = int(t["fd"])
        link = os.readlink("/proc/%d/fd/%d" % (fx.pid, fd))
        r = dt.diag_stack(fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
        line = next((l for l in r.out.splitlines() if l.strip().startswith("%d " % t["tid"])), "")
        chk.check(re.search(r"read\(%d, [^)]*\) on %s  \[" % (fd, re.escape(link)), line),
                  "pipe reader line %r names fd %d as %s" % (line, fd, link))


def answered(chk, r):
    return chk.check(r.rc != "timeout" and r.elapsed < ANSWER_WITHIN,
                     "HANG: `%s` did not answer within %ss on a hung FUSE mount (took %.1fs)\n%s"
                     % (r.cmd(), ANSWER_WITHIN, r.elapsed, r.describe()))


def check(chk, h, tid, hfd, path, mnt):
    chk.eq(dt.task_state(h, tid), "D", "O %d state before" % tid)
    dev, fstype = mountinfo_of(mnt)

    r = dt.diag_stack(tid, timeout=ANSWER_WITHIN + 5)
    if answered(chk, r):
        chk.check(r.rc in (0, 4), "exit status of `%s`\n%s" % (r.cmd(), r.describe()))
        line = next((l for l in r.out.splitlines() if l.strip().startswith("%d " % tid)), "")
        want = "on %s (" % path
        chk.check(re.search(r"read\(%d, [^)]*\) on " % hfd, line) and want in line,
                  "O's line names fd %d as %r:\n%r" % (hfd, want, line))
        chk.check(("%s mounted at %s)" % (fstype, mnt)) in line,
                  "O's line %r names the mount (%s at %s)" % (line, fstype, mnt))

    r = dt.diag_stack("-J", tid, timeout=ANSWER_WITHIN + 5)
    if answered(chk, r):
        doc = r.json(chk)
        proc = dt.process_of(doc or {}, h)
        ent = dt.threads_of(proc).get(tid) if proc else None
        t = ent[0][0] if ent else {}
        f = (t.get("syscall") or {}).get("file") or {}
        chk.eq(f.get("fd"), hfd, "syscall.file.fd")
        chk.eq(f.get("name"), path, "syscall.file.name")
        chk.eq(f.get("mount_point"), mnt, "syscall.file.mount_point")
        chk.eq(f.get("fstype"), fstype, "syscall.file.fstype")
        chk.eq(f.get("device"), dev, "syscall.file.device (mountinfo's MAJ:MIN)")
        chk.eq(f.get("may_hang"), True, "syscall.file.may_hang on FUSE")

    r = dt.diag_stack("-o", "TID,STATE,FILE", "-n", "-r", tid, timeout=ANSWER_WITHIN + 5)
    if answered(chk, r):
        chk.check(path in r.out, "FILE column names %s:\n%s" % (path, r.out))
    chk.eq(dt.task_state(h, tid), "D", "O %d state after" % tid)


if __name__ == "__main__":
    main()
