# SPDX-License-Identifier: GPL-2.0-or-later
"""Threads and processes come and go during diag-sample's window:
- a thread the target starts during the window, and a child process it forks, are
  sampled and reported as started (cpufix forker);
- a thread that exits during the window is still reported, with its samples, marked
  exited, and the run is not partial for it (cpufix threadexit);
- the target exiting during the window ends the run with exit status 4 and one line
  on stderr naming the pid and that it exited; the JSON marks it exited (cpufix exit)."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import sampletest as st  # noqa: E402


def forker(chk):
    with st.cpufix("forker", "1000") as fx:
        cpu = st.CpuOracle(fx.pid).start()
        p = st.start_sample("-J", "-d", "3s", fx.pid)
        late = fx.wait_line(lambda w: w[0] == "THREAD", timeout=5)
        child = fx.wait_line(lambda w: w[0] == "CHILD", timeout=5)
        r = st.finish_sample(p)
        cpu.stop()
        if not late or not child:
            dt.harness_error("cpufix forker did not start its thread and child: %r" % fx.lines)
        late_tid = fx.tid("late")
        child_pid = fx.facts["CHILD"][0]["pid"]
        child_cpu = st.oncpu_ns(child_pid, child_pid)
        doc = r.json(chk)
        st.check_schema(chk, doc, "forker")
        chk.eq(r.rc, st.expected_status(doc), "forker: exit status of `%s` (missing %s)\n%s"
               % (r.cmd(), st.missing_parts(doc), r.err[-2000:]))
        chk.check("exited" not in st.missing_parts(doc), "forker: nothing reported as exited")
        proc = st.process(doc, fx.pid)
        t = st.thread(proc, late_tid)
        if chk.check(t, "forker: the thread started during the window (tid %d) is listed: %r"
                     % (late_tid, [x.get("tid") for x in (proc or {}).get("threads") or []])):
            chk.eq((t.get("started"), t.get("exited")), (True, False), "forker: late thread started, exited")
            chk.eq(t.get("name"), "late", "forker: late thread's name")
            # born in the window: all its CPU time is in the window
            chk.check(st.near(t.get("oncpu_samples"), cpu.samples(late_tid, 99)),
                      "forker: late thread's oncpu_samples %r: 99 Hz of its %.2f s on a CPU (schedstat)"
                      % (t.get("oncpu_samples"), cpu.cpu_s(late_tid) or -1))
            want = cpu.pct(late_tid, window=(doc or {}).get("duration_s"))
            chk.check(st.near(t.get("oncpu_pct"), want, rel=0.25, slack=5),
                      "forker: late thread's oncpu_pct %r vs schedstat's %.1f" % (t.get("oncpu_pct"), want or -1))
        main = st.thread(proc, fx.pid)
        chk.check(main and not main.get("started"), "forker: the main thread is listed, not as started")
        c = st.process(doc, child_pid)
        if chk.check(c, "forker: the child process %d forked during the window is reported: %r"
                     % (child_pid, [x.get("pid") for x in (doc or {}).get("processes") or []])):
            chk.eq((c.get("started"), c.get("exited")), (True, False), "forker: child process started, exited")
            want = child_cpu / 1e9 * 99 if child_cpu is not None else None
            chk.check(st.near(c.get("oncpu_samples"), want), "forker: child's oncpu_samples %r: 99 Hz of its %.2f s"
                      % (c.get("oncpu_samples"), (child_cpu or 0) / 1e9))
            names = [[f.get("function") for f in st.user_frames(s)][1:2] for s in c.get("stacks") or []]
            chk.check(["spin_loop"] in names, "forker: the child's stacks go through spin_loop: %r" % names)
        chk.check(fx.alive(), "forker: the fixture still runs")


def threadexit(chk):
    with st.cpufix("threadexit", "1000") as fx:
        spin = fx.tid("spinner")
        cpu = st.CpuOracle(fx.pid).start()
        r = st.diag_sample("-J", "-d", "3s", fx.pid)
        gone = fx.wait_line(lambda w: w[0] == "EXITED", timeout=3)
        if not gone:
            dt.harness_error("threadexit: the fixture's spinner did not exit: %r" % fx.lines)
        end_ns = fx._kv(gone[1:]).get("cpu_ns")
        doc = r.json(chk)
        st.check_schema(chk, doc, "threadexit")
        chk.eq(r.rc, st.expected_status(doc), "threadexit: exit status of `%s` (missing %s)\n%s"
               % (r.cmd(), st.missing_parts(doc), r.err[-2000:]))
        chk.check("exited" not in st.missing_parts(doc), "threadexit: a thread's exit is not a missing part: %r"
                  % (doc or {}).get("missing"))
        chk.check(not any("exit" in l for l in r.err_lines()), "threadexit: nothing on stderr about an exit: %r"
                  % r.err_lines())
        proc = st.process(doc, fx.pid)
        chk.check(proc and not proc.get("exited"), "threadexit: the process is not marked exited")
        t = st.thread(proc, spin)
        if chk.check(t, "threadexit: the exited spinner %d is still listed" % spin):
            chk.eq((t.get("started"), t.get("exited")), (False, True), "threadexit: spinner started, exited")
            chk.check(st.near(t.get("oncpu_samples"), cpu.samples(spin, 99, end_ns)),
                      "threadexit: spinner's oncpu_samples %r: 99 Hz of its %.2f s on a CPU until it exited"
                      % (t.get("oncpu_samples"), cpu.cpu_s(spin, end_ns) or -1))
            want = cpu.pct(spin, end_ns, window=(doc or {}).get("duration_s"))
            chk.check(st.near(t.get("oncpu_pct"), want, rel=0.3, slack=5),
                      "threadexit: spinner's oncpu_pct %r vs %.1f (its CPU time until it exited, over the window)"
                      % (t.get("oncpu_pct"), want or -1))
        chk.check(abs((doc or {}).get("duration_s", 0) - 3) < 0.5, "threadexit: the window ran to its end (%r s)"
                  % (doc or {}).get("duration_s"))
        chk.check(fx.alive(), "threadexit: the fixture still runs")


def process_exit(chk, reap):
    what = "exit (%s)" % ("reaped at once" if reap else "a zombie until the test ends")
    with st.cpufix("exit", "1000", reap=reap) as fx:
        r = st.diag_sample("-J", "-d", "4s", fx.pid)
        doc = r.json(chk)
        st.check_schema(chk, doc, what)
        chk.eq(r.rc, 4, "%s: exit status of `%s`" % (what, r.cmd()))
        mine = [l for l in r.err_lines() if "pid %d" % fx.pid in l]
        chk.check(len(mine) == 1 and "exit" in mine[0], "%s: one stderr line names pid %d and its exit: %r"
                  % (what, fx.pid, r.err_lines()))
        chk.check(len(r.err_lines()) == len(st.missing_parts(doc)), "%s: one stderr line per missing part: %r"
                  % (what, r.err_lines()))
        chk.check("exited" in st.missing_parts(doc), "%s: 'exited' among the missing parts %r"
                  % (what, st.missing_parts(doc)))
        proc = st.process(doc, fx.pid)
        if chk.check(proc, "%s: the process is reported" % what):
            chk.eq(proc.get("exited"), True, "%s: exited" % what)
            chk.eq((proc.get("verdict") or {}).get("kind"), "exited", "%s: verdict kind" % what)
            text = (proc.get("verdict") or {}).get("text") or ""
            chk.check(text.startswith("exited ") and "busy loop" in text,
                      "%s: the verdict %r says it exited, then what it did before" % (what, text))
            chk.check(0.5 <= proc.get("window_s", 0) <= 2.0, "%s: window_s %r: the time until it exited (1 s)"
                      % (what, proc.get("window_s")))
            chk.check(proc.get("oncpu_samples", 0) >= 1, "%s: oncpu_samples %r before the exit"
                      % (what, proc.get("oncpu_samples")))
        # the window ends when every named process is gone
        chk.check((doc or {}).get("duration_s", 9) < 3, "%s: the window ended early (duration_s %r)"
                  % (what, (doc or {}).get("duration_s")))


def main():
    st.setup(__doc__)
    dt.need_path("diag_sample")
    chk = dt.Checker("sample-lifecycle")
    forker(chk)
    threadexit(chk)
    process_exit(chk, reap=True)
    # its parent has not reaped it: every thread is a zombie, the process has exited all the same
    process_exit(chk, reap=False)
    chk.finish()


if __name__ == "__main__":
    main()
