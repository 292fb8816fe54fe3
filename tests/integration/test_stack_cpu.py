# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack's CPU column is the rate over a short window before the stop (top's %CPU),
not the lifetime average: a spinning thread shows > 50 %, an idle one < 5 %, and a thread
that spun for half a second and now sleeps shows a high lifetime share but no rate."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def oncpu_ns(pid, tid):
    s = dt.read_file("/proc/%d/task/%d/schedstat" % (pid, tid))
    return int(s.split()[0]) if s else None


def thread_entry(proc, tid):
    ent = dt.threads_of(proc).get(tid)
    return ent[0][0] if ent else None


def main():
    dt.setup(__doc__)
    chk = dt.Checker("stack-cpu")
    with dt.Fixture(["--roles", "spin,sleep,burst"]) as fx:
        spin, sleep, burst = fx.tid("spinner"), fx.tid("sleeper"), fx.tid("burst")
        time.sleep(0.3)

        # The spinner's real rate over the tool's run, as an oracle on a loaded machine:
        # with the other CPU busy it may get less than a whole CPU.
        n0, t0 = oncpu_ns(fx.pid, spin), time.monotonic()
        r = dt.diag_stack("-J", fx.pid)
        n1, t1 = oncpu_ns(fx.pid, spin), time.monotonic()
        oracle = (n1 - n0) / ((t1 - t0) * 1e9) * 100 if n0 is not None and n1 is not None else None
        chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        doc = r.json(chk)
        proc = dt.process_of(doc, fx.pid) if doc else None
        if chk.check(proc is not None, "process %d in output" % fx.pid):
            chk.eq(doc.get("schema"), "diag-stack/2", "schema")
            w = proc.get("cpu_window_ms")
            chk.check(isinstance(w, int) and 90 <= w <= 5000, "cpu_window_ms %r in [90, 5000]" % w)
            ts = thread_entry(proc, spin)
            tl = thread_entry(proc, sleep)
            tb = thread_entry(proc, burst)
            if chk.check(ts and tl and tb, "spinner, sleeper and burst threads in output"):
                want = 50.0 if oracle is None or oracle >= 70 else oracle * 0.5
                rate = ts.get("cpu_rate_pct")
                chk.check(isinstance(rate, (int, float)) and want < rate <= 100,
                          "spinner cpu_rate_pct %r in (%.0f, 100] (oracle over the run: %s)"
                          % (rate, want, "%.0f%%" % oracle if oracle is not None else "?"))
                rate = tl.get("cpu_rate_pct")
                chk.check(isinstance(rate, (int, float)) and 0 <= rate < 5,
                          "sleeper cpu_rate_pct %r in [0, 5)" % rate)
                rate = tb.get("cpu_rate_pct")
                chk.check(isinstance(rate, (int, float)) and 0 <= rate < 5,
                          "burst (now asleep) cpu_rate_pct %r in [0, 5)" % rate)
                life = tb.get("cpu_lifetime_pct")
                chk.check(isinstance(life, (int, float)) and life > 10,
                          "burst cpu_lifetime_pct %r > 10 (it spun 0.5 s of CPU)" % life)
                chk.check("cpu_pct" not in ts, "no ambiguous cpu_pct field: %r" % sorted(ts))
                total = proc.get("cpu_rate_pct")
                parts = [e[0][0].get("cpu_rate_pct") or 0 for e in dt.threads_of(proc).values()]
                chk.check(isinstance(total, (int, float)) and abs(total - sum(parts)) < 1,
                          "process cpu_rate_pct %r is the sum of its threads' %r" % (total, sum(parts)))

        # Text: the spinner's line names the window; the header carries the process rate.
        r = dt.diag_stack(fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
        line = next((l for l in r.out.splitlines() if l.strip().startswith("%d " % spin)), "")
        chk.check(re.search(r"cpu \d+\.\d% \(0\.1s\)", line), "spinner line %r shows `cpu N%% (0.1s)`" % line)
        head = r.out.splitlines()[0] if r.out else ""
        chk.check(re.search(r"threads, cpu \d+\.\d% \(0\.1s\)", head), "header %r shows the process rate" % head)

        # --cpu-window 0: no rate measured; the lifetime average is labelled as such.
        r = dt.diag_stack("--cpu-window", "0", fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
        line = next((l for l in r.out.splitlines() if l.strip().startswith("%d " % burst)), "")
        chk.check(re.search(r"cpu \d+\.\d% \(lifetime\)", line), "burst line %r says `(lifetime)`" % line)
        r = dt.diag_stack("--cpu-window", "0", "-J", fx.pid)
        proc = dt.process_of(r.json(chk) or {}, fx.pid)
        chk.check(proc is not None and proc.get("cpu_rate_pct") is None and proc.get("cpu_window_ms") is None,
                  "--cpu-window 0: no rate in JSON")

        # Table: CPU is the rate, CPULIFE the lifetime share.
        r = dt.diag_stack("-r", "-n", "-o", "TID,CPU,CPULIFE", fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        rows = {int(l.split()[0]): l.split()[1:] for l in r.out.splitlines() if l.strip()}
        row = rows.get(burst, [])
        chk.check(len(row) == 2 and float(row[0]) < 5 and float(row[1]) > 10,
                  "burst row CPU < 5 and CPULIFE > 10: %r" % row)
        fx.check_unharmed(chk, "after diag-stack")
    chk.finish()


if __name__ == "__main__":
    main()
