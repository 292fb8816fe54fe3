# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack on a process already traced by another tracer (strace): exit 4, stderr
names the tracer, /proc information (syscalls) still shown, the tracer undisturbed."""
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def main():
    dt.setup(__doc__)
    strace = dt.need_program("strace")
    chk = dt.Checker("stack-traced")
    with dt.Fixture(["--roles", "pipe,sleep,heartbeat"]) as fx:
        tracer = subprocess.Popen([strace, "-f", "-qq", "-e", "trace=none", "-o", os.devnull,
                                   "-p", str(fx.pid)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                tps = [dt.tracer_pid(fx.pid, t) for t in dt.task_ids(fx.pid)]
                if tps and all(tp == tracer.pid for tp in tps):
                    break
                time.sleep(0.02)
            else:
                dt.harness_error("strace did not attach to every thread of %d" % fx.pid)

            r = dt.diag_stack("-J", fx.pid)
            chk.eq(r.rc, 4, "traced target: exit status (stderr %r)" % r.err)
            chk.check("strace" in r.err or re.search(r"\b%d\b" % tracer.pid, r.err),
                      "stderr names the tracer (strace, pid %d): %r" % (tracer.pid, r.err))
            doc = r.json(chk)
            proc = dt.process_of(doc, fx.pid)
            if chk.check(proc is not None, "traced process still in the JSON output"):
                chk.eq(proc.get("stopped"), False, "traced: stopped")
                chk.check(proc.get("missing"), "traced: 'missing' says why (%r)" % proc.get("missing"))
                th = dt.threads_of(proc)
                chk.eq(sorted(th), fx.tids(), "traced: every thread still listed")
                t = th.get(fx.tid("pipe_reader"))
                if t:
                    sc = t[0][0].get("syscall") or {}
                    chk.eq(sc.get("name"), "read", "traced: pipe_reader syscall from /proc")
                    chk.eq(dt.syscall_arg(sc, 0), int(fx.roles["pipe_reader"][0]["fd"]), "traced: read fd")
                    chk.eq(t[0][1].get("frames"), [], "traced: no user frames")
            r = dt.diag_stack(fx.pid)
            chk.eq(r.rc, 4, "traced target, text mode: exit status")
            chk.check(re.search(r"read\(%s" % fx.roles["pipe_reader"][0]["fd"], r.out),
                      "traced, text: pipe_reader's read( shown: %s" % r.describe())

            # The other tracer still owns every thread and the target is not stopped.
            tps = [dt.tracer_pid(fx.pid, t) for t in dt.task_ids(fx.pid)]
            chk.check(all(tp == tracer.pid for tp in tps), "tracer still attached everywhere: %s" % tps)
            chk.check(tracer.poll() is None, "strace still running")
            chk.check(fx.heartbeat_advances(), "heartbeat ticks while traced")
        finally:
            if tracer.poll() is None:
                tracer.send_signal(signal.SIGTERM)  # strace detaches cleanly on SIGTERM
                try:
                    tracer.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    dt.kill_group(tracer)
                    tracer.wait()
            tracer.stderr.close()
        fx.check_unharmed(chk, "after strace detached")
    chk.finish()


if __name__ == "__main__":
    main()
