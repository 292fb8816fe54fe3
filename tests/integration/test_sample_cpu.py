# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample on a thread that spins in memset (cpufix memset: spin_thread ->
spin_loop -> memset, no system calls): the verdict is a busy loop naming the thread;
the hottest stack is memset (libc's variant) under spin_loop under spin_thread, at
the source lines cpufix.c marks; the thread's on-CPU share agrees with schedstat read
around the run; the threads listed are those of /proc/PID/task; the JSON document has
the fields of diag-sample/1; the text report says the same. A process that sleeps
throughout has no stacks and waits (or is idle)."""
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import sampletest as st  # noqa: E402


def check_hot_stack(chk, proc, mk, what):
    """The top stack: memset, spin_loop at its memset call, spin_thread at its call."""
    stacks = proc.get("stacks") or []
    if not chk.check(stacks, "%s: stacks listed" % what):
        return
    fr = st.user_frames(stacks[0])
    names = [f.get("function") for f in fr]
    if not chk.check(len(fr) >= 3, "%s: the top stack has at least 3 user frames: %r" % (what, names)):
        return
    chk.check(st.MEMSET_RE.match(names[0] or ""), "%s: the top stack's leaf %r is memset (or its libc variant)"
              % (what, names[0]))
    chk.check("libc.so" in (fr[0].get("module") or ""), "%s: memset's module %r is libc" % (what, fr[0].get("module")))
    chk.eq(names[1:3], ["spin_loop", "spin_thread"], "%s: the frames under memset (whole stack %r)" % (what, names))
    for f, mark in ((fr[1], "spin_loop-memset"), (fr[2], "spin_thread-spin_loop")):
        chk.eq((os.path.basename(f.get("file") or ""), f.get("line")), ("cpufix.c", mk[mark]),
               "%s: %s's file and line (the MARK:%s line)" % (what, f.get("function"), mark))
        chk.check((f.get("module") or "").endswith("/cpufix"), "%s: %s's module %r is cpufix"
                  % (what, f.get("function"), f.get("module")))
    # memset's variants at several pcs are several stacks: together nearly all samples
    under = sum(s.get("samples", 0) for s in stacks
                if [f.get("function") for f in st.user_frames(s)][1:3] == ["spin_loop", "spin_thread"])
    chk.check(under >= 0.8 * proc.get("oncpu_samples", 0),
              "%s: stacks through spin_loop <- spin_thread hold %d of %s samples (>= 80 %%)"
              % (what, under, proc.get("oncpu_samples")))


def main():
    st.setup(__doc__)
    dt.need_path("diag_sample")
    chk = dt.Checker("sample-cpu")
    mk = st.markers()
    with st.cpufix("memset") as fx:
        spin = fx.tid("spinner")
        time.sleep(0.2)
        n0, t0 = st.oncpu_ns(fx.pid, spin), time.monotonic()
        r = st.diag_sample("-J", "-d", "2s", "-n", "50", fx.pid)
        n1, t1 = st.oncpu_ns(fx.pid, spin), time.monotonic()
        oracle = (n1 - n0) / ((t1 - t0) * 1e9) * 100 if n0 is not None and n1 is not None else None
        doc = r.json(chk)
        st.check_schema(chk, doc, "-J")
        chk.eq(r.rc, st.expected_status(doc), "exit status of `%s` (missing: %s)\n%s"
               % (r.cmd(), st.missing_parts(doc), r.err[-2000:]))
        chk.check(len(r.err_lines()) == len(st.missing_parts(doc) if doc else []),
                  "one stderr line per missing part: %r" % r.err_lines())
        proc = st.process(doc, fx.pid)
        if chk.check(proc is not None, "process %d in the output" % fx.pid):
            chk.eq(len(doc["processes"]), 1, "one process reported")
            chk.eq(proc.get("comm"), "cpufix", "comm")
            chk.check("cpufix memset" in (proc.get("cmdline") or ""), "cmdline %r" % proc.get("cmdline"))
            chk.check(not proc.get("started") and not proc.get("exited"), "neither started nor exited")
            v = proc.get("verdict") or {}
            chk.eq(v.get("kind"), "busy-loop", "verdict kind (text %r)" % v.get("text"))
            text = v.get("text") or ""
            chk.check(text.startswith("busy loop: tid %d (spinner) on CPU" % spin),
                      "verdict %r names tid %d (spinner)" % (text, spin))
            chk.check("hot: spin_loop (cpufix.c:%d)" % mk["spin_loop-memset"] in text,
                      "verdict %r names spin_loop at cpufix.c:%d" % (text, mk["spin_loop-memset"]))
            chk.check(re.search(r", in (__)?memset\w* \d+ %", text),
                      "verdict %r names memset among the leaf functions" % text)
            if doc.get("mechanisms", {}).get("syscalls"):
                chk.check(re.search(r", 0 syscalls,", text), "verdict %r counts 0 system calls" % text)
                chk.eq([s for s in proc.get("syscalls") or [] if s.get("calls")], [],
                       "system calls counted for a thread that makes none")

            # the threads: those of /proc (an oracle taken after the run; they are stable)
            chk.eq(sorted(t.get("tid") for t in proc.get("threads") or []), dt.task_ids(fx.pid),
                   "threads listed vs /proc/%d/task" % fx.pid)
            ts = st.thread(proc, spin)
            tm = st.thread(proc, fx.pid)
            if chk.check(ts and tm, "spinner and main thread listed"):
                chk.eq(ts.get("name"), "spinner", "spinner's name")
                pct = ts.get("oncpu_pct")
                want = 80.0 if oracle is None else min(80.0, oracle - 15)
                chk.check(isinstance(pct, (int, float)) and want <= pct <= 100,
                          "spinner oncpu_pct %r in [%.0f, 100] (schedstat around the run: %s)"
                          % (pct, want, "%.0f %%" % oracle if oracle is not None else "?"))
                if oracle is not None and isinstance(pct, (int, float)):
                    chk.check(abs(pct - oracle) <= 15, "spinner oncpu_pct %r within 15 of schedstat's %.1f"
                              % (pct, oracle))
                chk.check((ts.get("user_pct") or 0) >= 0.9 * (pct or 0),
                          "spinner user_pct %r: nearly all of its %r" % (ts.get("user_pct"), pct))
                chk.check((ts.get("runnable_pct") or 0) >= 80, "spinner runnable_pct %r >= 80" % ts.get("runnable_pct"))
                chk.check(ts.get("oncpu_samples", 0) >= 0.5 * 99 * 2 * (pct or 0) / 100,
                          "spinner oncpu_samples %r: about 99 Hz over 2 s of its CPU" % ts.get("oncpu_samples"))
                chk.check((tm.get("oncpu_pct") or 0) < 5, "main thread oncpu_pct %r < 5" % tm.get("oncpu_pct"))
                chk.eq(tm.get("oncpu_samples"), 0, "main thread (asleep in poll) oncpu_samples")
                chk.check(any(w.get("syscall") == "poll" or "poll" in (w.get("what") or "")
                              for w in tm.get("waits") or []),
                          "main thread's waits name poll: %r" % tm.get("waits"))
            chk.eq(proc.get("oncpu_samples"), sum(t.get("oncpu_samples", 0) for t in proc.get("threads") or []),
                   "process oncpu_samples is the sum of its threads'")
            check_hot_stack(chk, proc, mk, "-J")
            funcs = proc.get("functions") or []
            # the library-call view: memset about 3 samples for strchr's 1 (cpufix
            # scans a quarter as many bytes as it clears), together nearly all
            n = proc.get("oncpu_samples", 1) or 1
            ms = sum(f.get("samples", 0) for f in funcs if st.MEMSET_RE.match(f.get("function") or ""))
            sc = sum(f.get("samples", 0) for f in funcs if re.match(r"^(__)?strchr(_[a-z0-9_]+)?$", f.get("function") or ""))
            chk.check(ms >= 0.5 * n, "memset self time %d of %d samples (>= 50 %%): %r" % (ms, n, funcs[:5]))
            chk.check(0.1 * n <= sc <= 0.45 * n, "strchr self time %d of %d samples (10 to 45 %%): %r" % (sc, n, funcs[:5]))
            chk.check(ms + sc >= 0.85 * n, "memset and strchr hold %d of %d samples (>= 85 %%)" % (ms + sc, n))
            chk.check(all(f.get("module") == "libc.so.6" for f in funcs[:2]),
                      "memset and strchr are libc's: %r" % funcs[:2])
            mods = {m.get("module"): m.get("samples") for m in proc.get("modules") or []}
            chk.check(any(k and k.startswith("libc.so") for k in mods), "libc.so.6 in modules %r" % mods)
        chk.check(abs((doc or {}).get("duration_s", 0) - 2.0) < 0.5, "duration_s %r about 2" % (doc or {}).get("duration_s"))
        chk.eq((doc or {}).get("requested_duration_s"), 2.0, "requested_duration_s")
        chk.eq((doc or {}).get("frequency_hz"), 99, "frequency_hz")
        chk.eq((doc or {}).get("interrupted"), False, "interrupted")

        # the text report: the verdict first, then the sections
        r = st.diag_sample("-d", "1s", fx.pid)
        chk.check(r.rc in (0, 4), "exit status of `%s`: %s\n%s" % (r.cmd(), r.rc, r.err[-2000:]))
        lines = r.out.splitlines()
        first = lines[0] if lines else ""
        chk.check(first.startswith("pid %d cpufix: busy loop: tid %d (spinner)" % (fx.pid, spin)),
                  "first line %r: pid, comm and the busy loop" % first)
        for sect in ("THREADS", "HOT STACKS", "FUNCTIONS", "MODULES"):
            chk.check(any(l.startswith(sect) for l in lines), "text report has a %s section" % sect)
        row = next((l for l in lines if l.split()[:2] == [str(spin), "spinner"]), "")
        chk.check(row, "THREADS row of the spinner in\n%s" % r.out[:3000])
        # a merged node keeps the line of the first sample that reached it (flame.c):
        # either call of the loop, memset's (most samples) or strchr's
        loop_lines = (mk["spin_loop-memset"], mk["spin_loop-strchr"])
        chk.check(re.search(r"spin_loop\s+cpufix\.c:(%d|%d) \(cpufix\)" % loop_lines, r.out),
                  "HOT STACKS show spin_loop at cpufix.c:%d or :%d (cpufix)\n%s" % (loop_lines + (r.out[:3000],)))
        chk.check(fx.alive(), "the fixture still runs")
        bad = dt.stopped_or_traced(fx.pid)
        chk.check(not bad, "nothing stopped or traced: %s" % bad)

    # a process that never runs: no sample at all, its one thread asleep
    idle = subprocess.Popen(["sleep", "60"], start_new_session=True, preexec_fn=dt._child_setup)
    try:
        time.sleep(0.1)
        r = st.diag_sample("-J", "-d", "500ms", idle.pid)
        doc = r.json(chk)
        st.check_schema(chk, doc, "idle")
        chk.eq(r.rc, st.expected_status(doc), "idle: exit status of `%s`\n%s" % (r.cmd(), r.err[-2000:]))
        proc = st.process(doc, idle.pid) or {}
        chk.eq(proc.get("oncpu_samples"), 0, "idle: oncpu_samples")
        chk.check((proc.get("verdict") or {}).get("kind") in ("waiting", "idle"),
                  "idle: verdict %r" % proc.get("verdict"))
        chk.eq(proc.get("stacks"), [], "idle: no stacks")
    finally:
        idle.kill()
        idle.wait()
    chk.finish()


if __name__ == "__main__":
    main()
