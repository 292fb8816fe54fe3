# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain speaks of targets it cannot follow as every tool does (diag/target.h):
a zombie (one line naming the parent that has not reaped it), a kernel thread, a pid
that does not exist, and (as another user) a process it is not permitted to read, each
exit status 1 with that one line on standard error. With -J a run where nothing could
be followed prints the error object {"error": {message, reason, pid, status}} on
standard output; a run where some targets could be followed lists the others under
"failed", each with its "error", and exits 1."""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

EXIT_FAILURE = 1


def one_line(chk, res, what, *needles):
    lines = res.err_lines()
    chk.check(len(lines) == 1, "%s: want one line on stderr\n%s" % (what, res.describe()))
    for n in needles:
        chk.check(n in res.err, "%s: stderr does not say %r\n%s" % (what, n, res.describe()))
    chk.eq(res.rc, EXIT_FAILURE, "%s: exit status" % what)


def json_error(chk, res, what, reason, pid):
    doc = res.json(chk) or {}
    e = doc.get("error") or {}
    chk.eq((e.get("reason"), e.get("pid"), e.get("status")), (reason, pid, EXIT_FAILURE),
           "%s -J: error object (reason, pid, status)\n%s" % (what, res.describe()))
    chk.check(e.get("message") and e["message"] in res.err, "%s -J: the message is the stderr line" % what)
    chk.eq(res.rc, EXIT_FAILURE, "%s -J: exit status" % what)


def zombie():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    deadline = time.monotonic() + 5
    while dt.task_state(pid, pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def case_zombie(chk, exe):
    z = zombie()
    try:
        what = "zombie"
        res = dt.run([exe, str(z)])
        one_line(chk, res, what, "pid %d" % z, "zombie", "parent %d " % os.getpid())
        chk.check("exited" not in res.out, "%s: nothing on stdout\n%s" % (what, res.describe()))
        json_error(chk, dt.run([exe, "-J", str(z)]), what, "zombie", z)
        # with a target that can be followed: that one's chain, the zombie under "failed"
        sl = subprocess.Popen(["sleep", "60"])
        try:
            deadline = time.monotonic() + 5
            while dt.task_state(sl.pid, sl.pid) != "S" and time.monotonic() < deadline:
                time.sleep(0.01)
            res = dt.run([exe, "-J", str(sl.pid), str(z)])
            doc = res.json(chk) or {}
            chk.check(dt.chain_with_start(doc, sl.pid) is not None, "mixed -J: the sleep's chain\n%s" % res.describe())
            failed = doc.get("failed") or []
            chk.eq([(f.get("pid"), (f.get("error") or {}).get("reason")) for f in failed], [(z, "zombie")],
                   "mixed -J: the failed entries")
            chk.eq(res.rc, EXIT_FAILURE, "mixed -J: exit status")
        finally:
            sl.kill()
            sl.wait()
    finally:
        os.waitpid(z, 0)


def case_kernel(chk, exe):
    k = next((p for p in (2, 3) if dt.is_kernel_thread(p)), None)
    if k is None:
        dt.log("SKIP (part): no kernel thread visible")
        return
    res = dt.run([exe, str(k)])
    one_line(chk, res, "kernel thread", "pid %d" % k, "is a kernel thread")
    json_error(chk, dt.run([exe, "-J", str(k)]), "kernel thread", "kernel-thread", k)


def case_gone(chk, exe):
    p = subprocess.Popen(["true"])
    p.wait()
    res = dt.run([exe, str(p.pid)])
    one_line(chk, res, "gone", "pid %d: no such process" % p.pid)
    json_error(chk, dt.run([exe, "-J", str(p.pid)]), "gone", "gone", p.pid)


def case_not_permitted(chk, exe):
    """pid 1 as a user that may not read it: "not permitted", never "not in a system call"."""
    if os.geteuid() == 0:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            dt.log("SKIP (part): no user nobody to run as")
            return
        d = tempfile.mkdtemp(prefix="chain-targets-")
        try:
            os.chmod(d, 0o755)
            copy = os.path.join(d, "diag-chain")
            shutil.copy2(exe, copy)
            os.chmod(copy, 0o755)

            def drop():
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            res = dt.run([copy, "1"], preexec=drop)
            resj = dt.run([copy, "-J", "1"], preexec=drop)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    else:
        st = os.stat("/proc/1")
        if st.st_uid == os.geteuid():
            dt.log("SKIP (part): pid 1 is ours")
            return
        res, resj = dt.run([exe, "1"]), dt.run([exe, "-J", "1"])
    one_line(chk, res, "pid 1 unreadable", "not permitted", "pid 1")
    chk.check("not in a system call" not in res.out + res.err, "pid 1: says 'not in a system call'\n%s" % res.describe())
    json_error(chk, resj, "pid 1 unreadable", "not-permitted", 1)


def main():
    dt.setup_chain(__doc__)
    exe = dt.need_path("diag_chain")
    chk = dt.Checker("chain-targets")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    case_zombie(chk, exe)
    case_kernel(chk, exe)
    case_gone(chk, exe)
    case_not_permitted(chk, exe)
    chk.finish()


if __name__ == "__main__":
    main()
