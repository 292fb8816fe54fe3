# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-fds says what it could not read and uses the shared vocabulary for targets:
- as an unprivileged user (nobody, running a copy of the binary from a world-readable
  directory): `diag-fds FILE` on a file only root's process has open, and `diag-fds`
  alone, say once on stderr how many processes could not be read and why, and exit 4;
  `-p ROOTPID` is "not permitted ... owned by uid 0", exit 1, and with -J the error object;
- `-p TID` (a thread id) shows the thread's process;
- `-p` of a zombie or of a kernel thread: the shared message, exit 1, the other targets
  still shown; with -J the error object (one target) or an entry with "error" (several);
- as root, the unreadable-process line never tells root to run as root.
Needs root to become nobody (else those cases are skipped, exit 77 if all are)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

NOBODY = 65534
DENIED_RE = re.compile(r"(\d+) process(?:es)? could not be read")


def main():
    dt.setup_fds(__doc__)
    chk = dt.Checker("fds-perm")
    with dt.fdfix(["--cases", "epoll"]) as fx:
        check_tid(chk, fx)
        zombie = make_zombie()
        try:
            check_zombie(chk, fx, zombie)
        finally:
            os.waitpid(zombie, 0)
        check_kernel_thread(chk, fx)
    check_root_words(chk)
    if not check_unprivileged(chk) and chk.count == 0:
        dt.skip("cannot run diag-fds as user nobody")
    chk.finish()


def clean(chk, r):
    chk.check("Sanitizer" not in r.err and "runtime error" not in r.err, "`%s`: sanitizer report:\n%s"
              % (r.cmd(), r.err[-3000:]))


def fd_list(pid):
    return sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))


def check_tid(chk, fx):
    e = fx.fact("epoll_waiter")
    pid, tid = e["pid"], e["tid"]
    if tid == pid:
        dt.harness_error("fdfix's epoll waiter is the main thread")
    r = dt.diag_fds("-J", "-p", tid)
    clean(chk, r)
    chk.eq(r.rc, 0, "`%s` (a thread id): exit status (stderr: %s)" % (r.cmd(), r.err.strip()))
    doc = r.json(chk) or {}
    procs = doc.get("processes", [])
    chk.eq([p.get("pid") for p in procs], [pid], "`%s`: the thread's process %d" % (r.cmd(), pid))
    if procs:
        chk.eq(sorted(f.get("fd") for f in procs[0].get("fds", [])), fd_list(pid),
               "`%s`: fds of %d vs /proc" % (r.cmd(), pid))
    r = dt.diag_fds("-p", tid, "-o", "PID,FD", "-n")
    chk.eq(r.rc, 0, "`%s`: exit status (stderr: %s)" % (r.cmd(), r.err.strip()))
    chk.eq(sorted(int(l.split()[1]) for l in r.out.splitlines() if l.split()), fd_list(pid),
           "`%s`: fds of %d" % (r.cmd(), pid))


def make_zombie():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    for _ in range(500):
        if dt.task_state(pid, pid) == "Z":
            return pid
        time.sleep(0.01)
    dt.harness_error("child %d did not become a zombie" % pid)


def one_line(chk, r, what, pattern):
    lines = [l for l in r.err_lines() if re.search(pattern, l)]
    chk.eq(len(lines), 1, "%s: one stderr line matching %r:\n%s" % (what, pattern, r.err))


def check_zombie(chk, fx, z):
    me = os.getpid()
    msg = r"pid %d \(.*\) has exited: a zombie its parent %d \(.*\) has not reaped" % (z, me)
    r = dt.diag_fds("-p", z)
    clean(chk, r)
    chk.eq(r.rc, 1, "`%s` (a zombie): exit status" % r.cmd())
    one_line(chk, r, r.cmd(), msg)
    chk.eq(r.out.strip(), "", "`%s`: no rows" % r.cmd())
    # with another target: that one is still shown
    r = dt.diag_fds("-p", "%d,%d" % (z, fx.pid), "-o", "PID,FD", "-n")
    chk.eq(r.rc, 1, "`%s`: exit status" % r.cmd())
    one_line(chk, r, r.cmd(), msg)
    chk.eq(sorted(int(l.split()[1]) for l in r.out.splitlines() if l.split()), fd_list(fx.pid),
           "`%s`: the live target's fds are shown" % r.cmd())
    # -J, one target: the error object
    r = dt.diag_fds("-J", "-p", z)
    chk.eq(r.rc, 1, "`%s`: exit status" % r.cmd())
    doc = r.json(chk) or {}
    err = doc.get("error") or {}
    chk.eq((err.get("reason"), err.get("pid"), err.get("status")), ("zombie", z, 1), "`%s`: error object" % r.cmd())
    chk.check(re.search(msg, err.get("message") or "") is not None, "`%s`: error message %r" % (r.cmd(), err))
    # -J, two targets: the document, the zombie's entry carries the error
    r = dt.diag_fds("-J", "-p", "%d,%d" % (z, fx.pid))
    chk.eq(r.rc, 1, "`%s`: exit status" % r.cmd())
    doc = r.json(chk) or {}
    zp, lp = dt.fds_process(doc, z), dt.fds_process(doc, fx.pid)
    chk.eq(((zp or {}).get("error") or {}).get("reason"), "zombie", "`%s`: the zombie's entry has the error" % r.cmd())
    chk.check(lp is not None and "error" not in lp and lp.get("fds"), "`%s`: the live target with its fds" % r.cmd())


def check_kernel_thread(chk, fx):
    if not os.path.exists("/proc/2") or not dt.is_kernel_thread(2):
        dt.log("pid 2 is not a kernel thread here: kernel-thread case skipped")
        return
    r = dt.diag_fds("-p", "2,%d" % fx.pid, "-o", "PID,FD", "-n")
    clean(chk, r)
    chk.eq(r.rc, 1, "`%s` (a kernel thread): exit status" % r.cmd())
    one_line(chk, r, r.cmd(), r"pid 2 \(.*\) is a kernel thread: it has no user space")
    chk.check(any(l.split()[:1] == [str(fx.pid)] for l in r.out.splitlines()), "`%s`: fixture still shown" % r.cmd())
    r = dt.diag_fds("-J", "-p", 2)
    chk.eq(r.rc, 1, "`%s`: exit status" % r.cmd())
    err = (r.json(chk) or {}).get("error") or {}
    chk.eq(err.get("reason"), "kernel-thread", "`%s`: error reason" % r.cmd())


def check_root_words(chk):
    if os.geteuid() != 0:
        return
    r = dt.diag_fds("-o", "PID,FD", "-n", timeout=60)
    clean(chk, r)
    want = dt.fds_status(0)
    chk.check(r.rc in (0, 4), "`%s` as root: exit status %s (stderr %s)" % (r.cmd(), r.rc, r.err.strip()))
    if want == 4 and r.rc == 4:
        one_line(chk, r, "`%s` as root" % r.cmd(), DENIED_RE.pattern)
    chk.check("run as root" not in r.err and "try as root" not in r.err,
              "`%s` as root tells root to run as root: %r" % (r.cmd(), r.err))


def not_nobodys():
    """Processes user nobody cannot read: not its own, not kernel threads or zombies."""
    n = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            uid = os.stat("/proc/" + p).st_uid
        except OSError:
            continue
        st = dt.task_stat(int(p), int(p))
        if uid != NOBODY and st and st[1] not in "ZX" and not dt.is_kernel_thread(int(p)):
            n += 1
    return n


def check_unprivileged(chk):
    """Returns False when the cases could not be run (not root, or nobody cannot run it)."""
    if os.geteuid() != 0:
        dt.log("not root: the unprivileged-user cases are skipped")
        return False
    d = tempfile.mkdtemp(prefix="diagtest-fds-nobody-")
    holder = None
    try:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "diag-fds")
        shutil.copy(dt.need_path("diag_fds"), exe)
        os.chmod(exe, 0o755)
        path = os.path.join(d, "held")
        with open(path, "w") as f:
            f.write("x")
        os.chmod(path, 0o644)
        with open(path) as f:
            holder = subprocess.Popen(["sleep", "120"], stdin=f, start_new_session=True,
                                      preexec_fn=dt._child_setup)

        def drop():
            dt._child_setup()
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

        env = dict(dt.tool_env(), ASAN_OPTIONS="detect_leaks=0")    # LSan's ptrace of itself

        def run(*args):
            return dt.run([exe] + [str(a) for a in args], timeout=60, preexec=drop, env=env)

        r = run("--version")
        if r.rc != 0:
            dt.log("user nobody cannot run %s (%s): unprivileged cases skipped\n%s" % (exe, r.rc, r.err))
            return False
        oracle = not_nobodys()

        # FILE held by root's process only: exit 4, the count said once
        r = run(path)
        clean(chk, r)
        chk.eq(r.rc, 4, "as nobody, `diag-fds FILE` held by root's process: exit status (stderr %r)" % r.err)
        check_denied_line(chk, r, "as nobody, `diag-fds FILE`", oracle)
        # the whole system: own processes shown, the rest said
        r = run("-o", "PID,FD")
        clean(chk, r)
        chk.eq(r.rc, 4, "as nobody, `diag-fds`: exit status (stderr %r)" % r.err)
        check_denied_line(chk, r, "as nobody, `diag-fds`", oracle)
        chk.check(len(r.out.splitlines()) > 1, "as nobody, `diag-fds` shows its own processes")
        r = run("-J")
        chk.eq(r.rc, 4, "as nobody, `diag-fds -J`: exit status")
        chk.check(((r.json(chk) or {}).get("denied") or 0) > 0, "as nobody, -J denied > 0")
        # -p a root process: not permitted, exit 1; -J the error object
        hp = holder.pid
        r = run("-p", hp)
        chk.eq(r.rc, 1, "as nobody, `diag-fds -p %d` (root's): exit status" % hp)
        one_line(chk, r, "as nobody, -p root's process",
                 r"not permitted to read the fds of pid %d \(sleep\), owned by uid 0" % hp)
        r = run("-J", "-p", hp)
        chk.eq(r.rc, 1, "as nobody, `diag-fds -J -p %d`: exit status" % hp)
        err = (r.json(chk) or {}).get("error") or {}
        chk.eq((err.get("reason"), err.get("pid")), ("not-permitted", hp), "as nobody, -J -p root's: error object")
        return True
    finally:
        if holder:
            holder.kill()
            holder.wait()
        shutil.rmtree(d, ignore_errors=True)


def check_denied_line(chk, r, what, oracle):
    lines = [l for l in r.err_lines() if DENIED_RE.search(l)]
    if not chk.eq(len(lines), 1, "%s: one line on stderr saying how many processes could not be read:\n%s"
                  % (what, r.err)):
        return
    n = int(DENIED_RE.search(lines[0]).group(1))
    chk.check(abs(n - oracle) <= max(5, oracle // 5),
              "%s: %d processes said unreadable, /proc says about %d: %r" % (what, n, oracle, lines[0]))
    chk.check("not permitted" in lines[0], "%s: says why (not permitted): %r" % (what, lines[0]))


if __name__ == "__main__":
    main()
