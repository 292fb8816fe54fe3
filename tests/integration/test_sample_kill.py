# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample killed (SIGKILL), ended (SIGTERM, SIGINT) or suspended and resumed
(SIGSTOP, SIGCONT) at random instants of its window, many times over: the target
never stops (no reading of any of its threads in state t/T, before, during or after),
nothing is left in the tool's process group, and the output files are either absent
or complete (created through O_TMPFILE and linked at the end: never a partial file,
never a temporary one left behind). Ended by SIGTERM or SIGINT, the tool still
reports, with "interrupted": true."""
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import sampletest as st  # noqa: E402

RUNS = 24
WINDOW_S = 1.0


def group_left(pgid):
    """Pids whose process group is pgid (the tool's own group), zombies aside."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        s = dt.read_file("/proc/%s/stat" % d)
        if not s:
            continue
        f = s[s.rindex(")") + 2:].split()
        if int(f[2]) == pgid and f[0] != "Z":
            out.append(int(d))
    return out


def check_files(chk, tmp, what):
    names = sorted(os.listdir(tmp))
    chk.check(set(names) <= {"k.folded", "k.svg"}, "%s: only the output files in the directory: %r" % (what, names))
    p = os.path.join(tmp, "k.folded")
    if os.path.exists(p):
        with open(p) as f:
            text = f.read()
        try:
            st.folded_lines(text)
            ok = text == "" or text.endswith("\n")
        except ValueError:
            ok = False
        chk.check(ok, "%s: the --folded file left is complete: %r" % (what, text[-200:]))
    p = os.path.join(tmp, "k.svg")
    if os.path.exists(p):
        try:
            ET.parse(p)
            ok = True
        except ET.ParseError:
            ok = False
        chk.check(ok, "%s: the --svg file left is well-formed XML" % what)
    return names


def main():
    st.setup(__doc__)
    dt.need_path("diag_sample")
    chk = dt.Checker("sample-kill")
    rnd = random.Random(int(os.environ.get("DIAG_TEST_SEED", time.time())))
    plans = ["KILL", "TERM", "INT", "STOP"] * (RUNS // 4)
    rnd.shuffle(plans)
    counts = {}
    with st.cpufix("threads", "2") as fx:
        stop = threading.Event()
        bad, poller = st.states_seen(fx.pid, stop)
        try:
            for i, plan in enumerate(plans):
                tmp = tempfile.mkdtemp(prefix="diag-sample-kill-")
                try:
                    what = "run %d (%s)" % (i, plan)
                    p = st.start_sample("-J", "-d", "%gs" % WINDOW_S, "--folded", os.path.join(tmp, "k.folded"),
                                        "--svg", os.path.join(tmp, "k.svg"), fx.pid)
                    at = rnd.uniform(0.0, WINDOW_S * 1.1)
                    time.sleep(at)
                    if plan == "STOP":
                        os.kill(p.pid, signal.SIGSTOP)
                        time.sleep(rnd.uniform(0.2, 1.5))
                        chk.check(fx.alive() and not dt.stopped_or_traced(fx.pid),
                                  "%s: the target runs while the tool is stopped" % what)
                        os.kill(p.pid, signal.SIGCONT)
                    else:
                        try:
                            os.kill(p.pid, getattr(signal, "SIG" + plan))
                        except ProcessLookupError:
                            pass
                    r = st.finish_sample(p, timeout=30)
                    ended = r.rc not in (-signal.SIGKILL, "timeout")
                    counts[(plan, ended)] = counts.get((plan, ended), 0) + 1
                    if plan == "KILL":
                        chk.check(r.rc in (-signal.SIGKILL, 0, 4), "%s at %.2f s: exit status %r" % (what, at, r.rc))
                    elif r.rc == -getattr(signal, "SIG" + plan) and not r.out:
                        # before its handler is set (the start: options, the targets)
                        # the signal's default action ends the tool; nothing written
                        counts[(plan, "before the handler")] = counts.get((plan, "before the handler"), 0) + 1
                    else:
                        chk.check(r.rc in (0, 4), "%s at %.2f s: exit status %r\n%s" % (what, at, r.rc, r.err[-1000:]))
                    if r.rc in (0, 4):
                        doc = r.json(chk)
                        if plan in ("TERM", "INT") and doc and doc.get("duration_s", 9) < WINDOW_S - 0.1:
                            chk.eq(doc.get("interrupted"), True, "%s: an early end is flagged interrupted" % what)
                        names = check_files(chk, tmp, what)
                        chk.eq(names, ["k.folded", "k.svg"], "%s: a finished run wrote both files" % what)
                    else:
                        check_files(chk, tmp, what)
                    left = group_left(p.pid)
                    chk.check(not left, "%s: processes left in the tool's group: %r" % (what, left))
                    chk.check(fx.alive(), "%s: the target still runs" % what)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            time.sleep(0.2)
            stop.set()
            poller.join()
        chk.check(not bad, "the target's threads were seen stopped: %r" % bad[:10])
        for tid in dt.task_ids(fx.pid):
            chk.check(dt.task_state(fx.pid, tid) in ("R", "S"), "thread %d state %r is R or S"
                      % (tid, dt.task_state(fx.pid, tid)))
        # the spinners still spin: their CPU time grows
        t = fx.tid("spin-0")
        a = st.oncpu_ns(fx.pid, t)
        time.sleep(0.3)
        b = st.oncpu_ns(fx.pid, t)
        chk.check(a is not None and b is not None and b - a > 1e6, "spin-0 still runs: %r -> %r ns" % (a, b))
    dt.log("runs by signal and whether the tool finished: %r" % sorted(counts.items(), key=str))
    chk.finish()


if __name__ == "__main__":
    main()
