# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack on targets it cannot show: no such process, a zombie, a kernel thread.
Each must exit 1 with exactly one line on stderr in the shared vocabulary (diag/target.h),
never telling root to run as root; with -J the same line also comes as the error object
on stdout ({"error": {"message", "reason", "pid", "status": 1}}); with a good pid next to
a bad one, exit 4, the good one shown and the bad one's entry carrying "error"."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def check_one_line_error(chk, r, pattern, what, reason=None, pid=None):
    chk.eq(r.rc, 1, "%s: exit status of `%s` (stderr %r)" % (what, r.cmd(), r.err))
    lines = r.err_lines()
    chk.eq(len(lines), 1, "%s: stderr lines %r" % (what, lines))
    if lines:
        chk.check(lines[0].startswith("diag-stack: "), "%s: stderr %r starts with 'diag-stack: '" % (what, lines[0]))
        if pattern:
            chk.check(re.search(pattern, lines[0], re.I), "%s: stderr %r matches /%s/" % (what, lines[0], pattern))
        if os.geteuid() == 0:
            chk.check(not re.search(r"(run|try) as root", lines[0]), "%s: root told to run as root: %r"
                      % (what, lines[0]))
    if "-J" in r.argv:
        err = (r.json(chk) or {}).get("error") or {}
        chk.eq((err.get("reason"), err.get("pid"), err.get("status")), (reason, pid, 1),
               "%s: -J error object %r" % (what, err))
        chk.eq("diag-stack: %s" % err.get("message"), lines[0] if lines else None,
               "%s: -J error message is the stderr line" % what)
    else:
        chk.eq(r.out, "", "%s: nothing on stdout without -J" % what)


def free_pid():
    pid_max = int(dt.read_file("/proc/sys/kernel/pid_max") or "32768")
    for pid in range(pid_max - 1, pid_max - 1000, -1):
        if not os.path.exists("/proc/%d" % pid):
            return pid
    dt.harness_error("no free pid found")


def kernel_thread():
    if dt.is_kernel_thread(2):
        return 2
    for d in os.listdir("/proc"):
        if d.isdigit() and dt.is_kernel_thread(int(d)):
            return int(d)
    return None


def main():
    dt.setup(__doc__)
    dt.set_subreaper()
    chk = dt.Checker("stack-errors")

    pid = free_pid()
    r = dt.diag_stack(pid)
    check_one_line_error(chk, r, r"^diag-stack: pid %d: no such process$" % pid, "nonexistent pid")
    r = dt.diag_stack("-J", pid)
    check_one_line_error(chk, r, r"^diag-stack: pid %d: no such process$" % pid, "nonexistent pid -J", "gone", pid)

    zombie = None
    try:
        with dt.Fixture(["--roles", "zombie"]) as fx:
            zombie = int(fx.tid("zombie"))
            chk.eq(dt.task_state(zombie, zombie), "Z", "fixture's child is a zombie")
            line = (r"^diag-stack: pid %d \(stackfix\) has exited: a zombie its parent %d \(stackfix\) "
                    r"has not reaped$" % (zombie, fx.pid))
            r = dt.diag_stack(zombie)
            check_one_line_error(chk, r, line, "zombie")
            r = dt.diag_stack("-J", zombie)
            check_one_line_error(chk, r, line, "zombie -J", "zombie", zombie)
            # The live parent next to it is still shown: one bad pid does not spoil the run.
            r = dt.diag_stack("-J", fx.pid)
            chk.eq(r.rc, 0, "fixture with a zombie child: exit status (%s)" % r.err.strip())
            # Both: the partial status, the good one shown, the bad one's entry says why.
            r = dt.diag_stack("-J", fx.pid, zombie)
            chk.eq(r.rc, 4, "a good pid and a zombie: exit status (%s)" % r.err.strip())
            chk.check(len(r.err_lines()) == 1 and re.search(line, r.err_lines()[0]),
                      "a good pid and a zombie: the one stderr line %r" % r.err_lines())
            procs = {p.get("pid"): p for p in (r.json(chk) or {}).get("processes", [])}
            chk.check(procs.get(fx.pid, {}).get("groups") and procs.get(fx.pid, {}).get("error", 1) is None,
                      "the good pid is shown, with error null")
            e = procs.get(zombie, {}).get("error") or {}
            chk.eq(e.get("reason"), "zombie", "the zombie's entry: error.reason")
    finally:
        dt.reap_orphans()

    kt = kernel_thread()
    if kt is None:
        dt.log("no kernel thread visible in this pid namespace: kernel-thread case not run")
    else:
        line = r"^diag-stack: pid %d \(.+\) is a kernel thread: it has no user space to show the stacks of$" % kt
        r = dt.diag_stack(kt)
        check_one_line_error(chk, r, line, "kernel thread %d" % kt)
        r = dt.diag_stack("-J", kt)
        check_one_line_error(chk, r, line, "kernel thread %d -J" % kt, "kernel-thread", kt)
        r = dt.diag_stack("-J", "-o", "TID,STATE", kt)
        check_one_line_error(chk, r, line, "kernel thread %d -J table" % kt, "kernel-thread", kt)

    chk.finish()


if __name__ == "__main__":
    main()
