# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample on a CPython 3.11 service (pysvc.py under /usr/bin/python3.11): the
verdict is a busy loop in the spinner thread naming the Python function
Spinner.spin at its `while` line in spinmod.py; the stacks hold that Python frame
above the interpreter's, with pysvc.py's spin below it; the threads that wait name
their innermost Python function (the sleeper: nap_forever at its time.sleep line).
Skipped without /usr/bin/python3.11."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import sampletest as st  # noqa: E402


def main():
    st.setup(__doc__)
    dt.need_path("diag_sample")
    if not os.access(st.PYTHON311, os.X_OK):
        dt.skip("%s is not installed" % st.PYTHON311)
    pysvc = dt.paths.pysvc or os.path.join(st.FIXTURES_DIR, "pysvc.py")
    if not os.path.isfile(pysvc):
        dt.harness_error("pysvc.py not found (%r)" % pysvc)
    spinmod = os.path.join(os.path.dirname(pysvc), "spinmod.py")
    mk_spin = st.markers(spinmod)
    mk_svc = st.markers(pysvc)
    chk = dt.Checker("sample-python")
    # stdin a pipe: the main thread reads commands from it (and exits at its end)
    with st.LineProc([st.PYTHON311, pysvc], stdin=True) as fx:
        tids = {}
        while len(tids) < 4:
            w = fx.wait_line(lambda w: w[0] == "THREAD", timeout=10)
            if not w:
                dt.harness_error("pysvc.py did not list its threads: %r" % fx.lines)
            tids[w[1]] = int(w[2].partition("=")[2])
        spin = tids["spinner"]
        cpu = st.CpuOracle(fx.pid).start()
        r = st.diag_sample("-J", "-d", "2s", fx.pid)
        cpu.stop()
        doc = r.json(chk)
        st.check_schema(chk, doc, "pysvc")
        chk.eq(r.rc, st.expected_status(doc), "exit status of `%s`\n%s" % (r.cmd(), r.err[-2000:]))
        proc = st.process(doc, fx.pid)
        if chk.check(proc, "process %d reported" % fx.pid):
            chk.check((proc.get("python") or "").startswith("3.11"), "python version %r" % proc.get("python"))
            v = proc.get("verdict") or {}
            text = v.get("text") or ""
            chk.eq(v.get("kind"), "busy-loop", "verdict kind (%r)" % text)
            # CPython 3.11 does not name its threads for the system: "python3.11"
            chk.check(text.startswith("busy loop: tid %d (" % spin), "verdict %r names tid %d" % (text, spin))
            want = "hot: Spinner.spin (spinmod.py:%d)" % mk_spin["spin"]
            chk.check(want in text, "verdict %r names %r" % (text, want))

            stacks = proc.get("stacks") or []
            top = stacks[0] if stacks else {}
            fr = st.user_frames(top)
            py = [f for f in fr if f.get("python")]
            names = [(f.get("function"), os.path.basename(f.get("file") or ""), f.get("line")) for f in py]
            chk.check(names[:2] == [("Spinner.spin", "spinmod.py", mk_spin["spin"]),
                                    ("spin", "pysvc.py", mk_svc["spin-call"])],
                      "the top stack's Python frames %r: Spinner.spin at spinmod.py:%d, spin at pysvc.py:%d"
                      % (names, mk_spin["spin"], mk_svc["spin-call"]))
            native = [f.get("function") for f in fr]
            i = native.index("Spinner.spin") if "Spinner.spin" in native else -1
            chk.check(i >= 0 and any(n and "EvalFrame" in n for n in native[i + 1:]),
                      "the interpreter's eval loop is below Spinner.spin: %r" % native)
            chk.check(top.get("tids") == [spin], "the top stack is the spinner's: %r" % top.get("tids"))

            # where the others wait: their innermost Python function
            sl = st.thread(proc, tids["sleeper"]) or {}
            fns = [w.get("function") for w in sl.get("waits") or []]
            want = "nap_forever (pysvc.py:%d)" % mk_svc["sleep"]
            chk.check(want in fns, "the sleeper's waits %r name %r" % (fns, want))
            wk = st.thread(proc, tids["worker"]) or {}
            fns = [w.get("function") or "" for w in wk.get("waits") or []]
            chk.check(any("wait" in f and "threading.py" in f for f in fns),
                      "the worker's waits %r name Condition.wait in threading.py" % fns)
            ts = st.thread(proc, spin) or {}
            chk.check(st.near(ts.get("oncpu_pct"), cpu.pct(spin), rel=0.25, slack=10),
                      "spinner oncpu_pct %r vs schedstat's %.1f" % (ts.get("oncpu_pct"), cpu.pct(spin) or -1))

        # --no-python: native frames only, no Python version read
        r = st.diag_sample("-J", "-d", "1s", "--no-python", fx.pid)
        proc = st.process(r.json(chk), fx.pid) or {}
        chk.check(proc.get("python") is None, "--no-python: python %r" % proc.get("python"))
        chk.check(not any(f.get("python") for s in proc.get("stacks") or [] for f in s.get("frames") or []),
                  "--no-python: no Python frame")
        chk.check(fx.alive(), "pysvc.py still runs")
    chk.finish()


if __name__ == "__main__":
    main()
