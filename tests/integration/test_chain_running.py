# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain PID leads with the threads on a CPU: chainfix spinner runs one thread in
a busy loop while the others wait on a condition variable and in nanosleep(). The
first chain of `diag-chain -J PID` starts at the spinning thread, with its CPU rate
over a short window (cpu_window_pct, over cpu_window_ms, as top shows it) above 50%
(on a host so busy that the spinner itself gets less, at least a third of what it got
while diag-chain ran), ending "on-cpu"; the idle waits come after it. The text output
names the spinner first, with "% CPU over the last N ms". Where it spins comes from perf
samples of its instruction pointer over the same window (frame 0 chainfix_spin_thread),
where perf events are allowed. And chainfix busy_holder (a
thread waits for a mutex whose holder spins): the waiter's story comes first, ends at
the holder "on-cpu" with its rate. Nothing is stopped."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

EXIT_STUCK = 5


def cpu_ns(pid, tid):
    s = dt.read_file("/proc/%d/task/%d/schedstat" % (pid, tid))
    return int(s.split()[0]) if s else None


def run_measured(chk, fx, pid, spin, what, *args):
    """diag-chain ARGS, watched; also the spinner's own CPU rate (percent) while it ran."""
    c0, t0 = cpu_ns(pid, spin), time.monotonic()
    res, problems = dt.run_watched([dt.need_path("diag_chain")] + [str(a) for a in args], dt.group_pids(fx.pid))
    c1, t1 = cpu_ns(pid, spin), time.monotonic()
    chk.check(not problems, "%s: a target was stopped or traced: %s" % (what, problems[:8]))
    chk.eq(res.rc, EXIT_STUCK, "%s: exit status\n%s" % (what, res.describe()))
    got = (c1 - c0) / ((t1 - t0) * 1e9) * 100 if c0 is not None and c1 is not None else 0
    return res, got


def want_rate(chk, what, pct, measured):
    floor = 50.0 if measured >= 80.0 else measured / 3
    chk.check(isinstance(pct, (int, float)) and pct > floor,
              "%s: the spinner's CPU rate %r, want > %.0f (it had %.0f%% while diag-chain ran)"
              % (what, pct, floor, measured))


def perf_sampling_allowed():
    """May this test's user sample another process's threads with perf events?"""
    try:
        level = int((dt.read_file("/proc/sys/kernel/perf_event_paranoid") or "3").strip())
    except ValueError:
        level = 3
    return os.geteuid() == 0 or level <= 2


def check_where(chk, what, node, func):
    """A running thread's frame 0 is the function it spins in, from perf samples that
    do not stop it (where perf events are allowed)."""
    if not node.get("pc_samples"):
        if perf_sampling_allowed() and os.path.exists("/proc/sys/kernel/perf_event_paranoid"):
            chk.fail("%s: no pc samples of the running thread, though perf events are allowed here: %r"
                     % (what, node))
        else:
            dt.log("SKIP (part): %s: perf events are not allowed here" % what)
        return
    fn = [f.get("function") for f in node.get("frames", [])]
    chk.check(fn[:1] == [func], "%s: the running thread's sampled frame %s is %s" % (what, fn, func))
    chk.check(0 < node.get("pc_hits", 0) <= node["pc_samples"],
              "%s: pc_hits %r of pc_samples %r" % (what, node.get("pc_hits"), node.get("pc_samples")))


def main():
    dt.setup_chain(__doc__)
    dt.need_path("diag_chain")
    dt.need_path("chainfix")
    chk = dt.Checker("chain-running")
    with dt.chainfix("spinner") as fx:
        f = fx.fact("chain")
        pid, _ = dt.pid_tid(f["R"])
        spin = f["spin"]
        idle = dt.int_list(f["idle"])
        what = "spinner -J"
        res, measured = run_measured(chk, fx, pid, spin, what, "-J", pid)
        doc = res.json(chk)
        chains = (doc or {}).get("chains", [])
        chk.check(len(chains) >= 2, "%s: %d chains, want the spinner and the idle waits\n%s"
                  % (what, len(chains), res.describe()))
        if chains:
            first = chains[0]
            chk.eq([t.get("tid") for t in first.get("threads", [])], [spin], "%s: the first chain's start" % what)
            n0 = dt.chain_node(first, 0) or {}
            chk.eq(n0.get("end"), "on-cpu", "%s: the spinner's end" % what)
            want_rate(chk, what, n0.get("cpu_window_pct"), measured)
            chk.check(isinstance(n0.get("cpu_window_ms"), int) and 80 <= n0["cpu_window_ms"] <= 1000,
                      "%s: cpu_window_ms %r" % (what, n0.get("cpu_window_ms")))
            check_where(chk, what, n0, "chainfix_spin_thread")
            rest = [t.get("tid") for ch in chains[1:] for t in ch.get("threads", [])]
            chk.check(set(idle) <= set(rest), "%s: the idle threads %s follow the spinner (got %s)" % (what, idle, rest))
        what = "spinner (text)"
        res, measured = run_measured(chk, fx, pid, spin, what, pid)
        lines = res.out.splitlines()
        chk.check(lines and ("tid %d " % spin) in lines[0] and "CPU over the last" in lines[0],
                  "%s: the first line names the spinner and its CPU rate\n%s" % (what, res.describe()))
        if lines:
            m = re.search(r"(\d+)% CPU over the last (\d+) ms", lines[0])
            want_rate(chk, what, float(m.group(1)) if m else None, measured)
        idle_at = [i for i, l in enumerate(lines) if "condition variable" in l or "sleeping by choice" in l]
        chk.check(idle_at and idle_at[0] > 0, "%s: idle waits come after the spinner\n%s" % (what, res.describe()))
    case_busy_holder(chk)
    chk.finish()


def case_busy_holder(chk):
    """A thread waits for a mutex whose holder spins: that story comes first (before the
    main thread's pause()), ends at the holder on the CPU, with the holder's rate."""
    with dt.chainfix("busy_holder") as fx:
        f = fx.fact("chain")
        (pid, w), (_, o) = dt.pid_tid(f["W"]), dt.pid_tid(f["O"])
        what = "busy_holder -J"
        res, measured = run_measured(chk, fx, pid, o, what, "-J", pid)
        chains = (res.json(chk) or {}).get("chains", [])
        chk.check(chains, "%s: no chains\n%s" % (what, res.describe()))
        if chains:
            path = dt.chain_expect_path(chk, chains[0], what, [(pid, w), (pid, o)], ["futex"], "on-cpu")
            if len(path) == 2:
                want_rate(chk, what, path[1][0].get("cpu_window_pct"), measured)
                check_where(chk, what, path[1][0], "chainfix_busy_owner")
                chk.check("chainfix_m" in (path[1][1].get("resource") or ""),
                          "%s: the edge names chainfix_m: %r" % (what, path[1][1].get("resource")))
            dt.chain_verdict_has(chk, chains[0], what, "tid %d " % o, "chainfix_m", "running on a CPU")


if __name__ == "__main__":
    main()
