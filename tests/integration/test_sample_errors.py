# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample's errors: a pid that is gone (one line "pid N: no such process", exit
1; with -J an error object with reason "gone"), a kernel thread (exit 1), bad usage
(exit 2 with "Try 'diag-sample --help'": -d 0, -F 0, -F 1001, --max-frames 0, 1025
or not a number, -n 0, no pid, -a with a pid, two graphs on stdout, -J with a graph
on stdout), an output file in a missing directory (exit 1, one line naming it, no
file); one of two pids gone (exit 1, the other reported)."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import sampletest as st  # noqa: E402


def vanished_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def main():
    st.setup(__doc__)
    dt.need_path("diag_sample")
    chk = dt.Checker("sample-errors")

    # a pid that is gone
    pid = vanished_pid()
    r = st.diag_sample(pid, timeout=30)
    chk.eq(r.rc, 1, "gone pid: exit status of `%s`" % r.cmd())
    chk.eq(r.err_lines(), ["diag-sample: pid %d: no such process" % pid], "gone pid: stderr")
    chk.eq(r.out, "", "gone pid: nothing on stdout")
    r = st.diag_sample("-J", pid, timeout=30)
    chk.eq(r.rc, 1, "gone pid: exit status of `%s`" % r.cmd())
    err = (r.json(chk) or {}).get("error") or {}
    chk.eq((err.get("reason"), err.get("pid"), err.get("status")), ("gone", pid, 1),
           "gone pid: -J error object's reason, pid, status (%r)" % err)
    chk.check("no such process" in (err.get("message") or ""), "gone pid: -J message %r" % err.get("message"))
    chk.eq(len(r.err_lines()), 1, "gone pid, -J: one line on stderr: %r" % r.err_lines())

    # a kernel thread
    if dt.is_kernel_thread(2):
        r = st.diag_sample("-d", "200ms", 2, timeout=30)
        chk.eq(r.rc, 1, "kernel thread: exit status of `%s`" % r.cmd())
        chk.check(len(r.err_lines()) == 1 and "pid 2" in r.err_lines()[0],
                  "kernel thread: one stderr line naming pid 2: %r" % r.err_lines())

    # bad usage
    with st.cpufix("memset") as fx:
        for args in (["-d", "0"], ["-d", "0s"], ["-d", "soon"], ["-F", "0"], ["-F", "1001"], ["-F", "x"],
                     ["--max-frames", "0"], ["--max-frames", "1025"], ["--max-frames", "many"], ["-n", "0"],
                     ["--no-such-option"], ["-a"], ["--folded", "-", "--svg", "-"],
                     ["-J", "--folded", "-"], ["-J", "--svg", "-"], ["notapid"]):
            argv = args + ([fx.pid] if args not in (["-a"], ["notapid"]) else [])
            if args == ["-a"]:
                argv = ["-a", fx.pid]
            r = st.diag_sample(*argv, timeout=30)
            chk.eq(r.rc, 2, "usage: exit status of `%s` (stderr %r)" % (r.cmd(), r.err_lines()))
            chk.check(any("Try 'diag-sample --help'" in l for l in r.err_lines()),
                      "usage: `%s` says how to get help: %r" % (r.cmd(), r.err_lines()))
            chk.eq(r.out, "", "usage: nothing on stdout from `%s`" % r.cmd())
        r = st.diag_sample(timeout=30)
        chk.eq(r.rc, 2, "no pid: exit status of `%s`" % r.cmd())
        chk.check(any("Try 'diag-sample --help'" in l for l in r.err_lines()), "no pid: help hint %r" % r.err_lines())
        r = st.diag_sample("--help", timeout=30)
        chk.eq(r.rc, 0, "--help: exit status")
        chk.check(r.out.startswith("Usage:") and r.err == "", "--help on stdout, nothing on stderr")

        # an output file in a directory that does not exist
        tmp = tempfile.mkdtemp(prefix="diag-sample-errors-")
        try:
            for opt in ("--folded", "--svg"):
                path = os.path.join(tmp, "missing", "out")
                r = st.diag_sample("-d", "300ms", opt, path, fx.pid, timeout=30)
                chk.eq(r.rc, 1, "%s in a missing directory: exit status of `%s`" % (opt, r.cmd()))
                mine = [l for l in r.err_lines() if path in l]
                chk.check(len(mine) == 1 and "No such file or directory" in mine[0],
                          "%s in a missing directory: one stderr line naming %s and why: %r" % (opt, path, r.err_lines()))
                chk.check(r.out.startswith("pid %d cpufix:" % fx.pid), "%s: the report is still printed" % opt)
                chk.eq(os.listdir(tmp), [], "%s in a missing directory: nothing created" % opt)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

        # one of two pids gone: the other is sampled, the run fails
        r = st.diag_sample("-J", "-d", "300ms", fx.pid, pid, timeout=30)
        chk.eq(r.rc, 1, "one pid gone: exit status of `%s`" % r.cmd())
        chk.check(any(l == "diag-sample: pid %d: no such process" % pid for l in r.err_lines()),
                  "one pid gone: stderr names it: %r" % r.err_lines())
        doc = r.json(chk)
        chk.eq([p.get("pid") for p in (doc or {}).get("processes") or []], [fx.pid], "one pid gone: the other reported")
        chk.check(fx.alive(), "the fixture still runs")
    chk.finish()


if __name__ == "__main__":
    main()
