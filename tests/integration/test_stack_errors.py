# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack on targets it cannot show: no such process, a zombie, a kernel thread.
Each must exit 1 with exactly one line on stderr starting "diag-stack: "."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def check_one_line_error(chk, r, pattern, what):
    chk.eq(r.rc, 1, "%s: exit status of `%s` (stderr %r)" % (what, r.cmd(), r.err))
    lines = r.err_lines()
    chk.eq(len(lines), 1, "%s: stderr lines %r" % (what, lines))
    if lines:
        chk.check(lines[0].startswith("diag-stack: "), "%s: stderr %r starts with 'diag-stack: '" % (what, lines[0]))
        if pattern:
            chk.check(re.search(pattern, lines[0], re.I), "%s: stderr %r matches /%s/" % (what, lines[0], pattern))


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
    for args in (["-J", pid], [pid]):
        r = dt.diag_stack(*args)
        check_one_line_error(chk, r, r"%d|no such process" % pid, "nonexistent pid")
        if "-J" not in args:
            chk.eq(r.out, "", "nonexistent pid: stdout")

    zombie = None
    try:
        with dt.Fixture(["--roles", "zombie"]) as fx:
            zombie = int(fx.tid("zombie"))
            chk.eq(dt.task_state(zombie, zombie), "Z", "fixture's child is a zombie")
            r = dt.diag_stack(zombie)
            check_one_line_error(chk, r, r"zombie", "zombie")
            r = dt.diag_stack("-J", zombie)
            check_one_line_error(chk, r, r"zombie", "zombie -J")
            # The live parent next to it is still shown: one bad pid does not spoil the run.
            r = dt.diag_stack("-J", fx.pid)
            chk.eq(r.rc, 0, "fixture with a zombie child: exit status (%s)" % r.err.strip())
    finally:
        dt.reap_orphans()

    kt = kernel_thread()
    if kt is None:
        dt.log("no kernel thread visible in this pid namespace: kernel-thread case not run")
    else:
        r = dt.diag_stack(kt)
        check_one_line_error(chk, r, r"kernel thread", "kernel thread %d" % kt)

    chk.finish()


if __name__ == "__main__":
    main()
