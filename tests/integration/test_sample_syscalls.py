# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample's system call counts are exact: sysloop makes N writes to /dev/null
and E writes to fd -1 when told (stdin `GO N E`) and says how many it made (`DONE N
writes=W errors=E`, one writev); the tool counts W + E calls of write, E of them
failed, and one writev. A storm of writes is named
as one. strace -c, attached at the same time, counts the same writes. Skipped when
system call counting is not permitted here (BPF)."""
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import sampletest as st  # noqa: E402


def counting(tool_pid, timeout=20):
    """Wait until the tool holds its perf events (opened after the BPF counting is
    attached): True, or False if it exited or did not get there in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fds = os.listdir("/proc/%d/fd" % tool_pid)
        except OSError:
            return False                        # it exited
        links = []
        for fd in fds:
            try:
                links.append(os.readlink("/proc/%d/fd/%s" % (tool_pid, fd)))
            except OSError:
                pass                            # closed since the listing
        if any("perf_event" in l for l in links):
            time.sleep(0.2)
            return True
        time.sleep(0.01)
    return False


def go(fx, n, e, timeout=30):
    """Send GO N E; the DONE line's facts."""
    fx.send("GO %d %d" % (n, e))
    words = fx.wait_line(lambda w: w[0] == "DONE", timeout=timeout)
    if not words:
        dt.harness_error("sysloop did not answer GO %d %d: %r" % (n, e, fx.lines))
    return fx._kv(words[2:])


def by_name(proc):
    return {s.get("name"): s for s in (proc or {}).get("syscalls") or []}


def strace_counts(text):
    """{syscall: (calls, errors)} from strace -c's table."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and re.fullmatch(r"\d+\.\d+", f[0]) and f[-1] != "total":
            calls = int(f[3])
            errors = int(f[4]) if len(f) == 6 else 0
            out[f[-1]] = (calls, errors)
    return out


def main():
    st.setup(__doc__)
    dt.need_path("diag_sample")
    exe = dt.need_path("sysloop")
    chk = dt.Checker("sample-syscalls")
    with st.LineProc([exe], stdin=True) as fx:
        # exact counts
        p = st.start_sample("-J", "-d", "3s", fx.pid)
        if not counting(p.pid):
            r = st.finish_sample(p)
            dt.harness_error("diag-sample did not start counting\n%s" % r.describe())
        done = go(fx, 20000, 37)
        r = st.finish_sample(p)
        doc = r.json(chk)
        if doc and not (doc.get("mechanisms") or {}).get("syscalls"):
            why = [m.get("reason") for m in doc.get("missing") or [] if m.get("part") == "syscalls"]
            dt.skip("system call counting is not available here: %s" % (why or r.err.strip()))
        st.check_schema(chk, doc, "sysloop")
        chk.eq(r.rc, st.expected_status(doc), "exit status of `%s`\n%s" % (r.cmd(), r.err[-2000:]))
        chk.eq((done.get("writes"), done.get("errors")), (20000, 37), "sysloop made what it was told")
        proc = st.process(doc, fx.pid)
        sc = by_name(proc)
        w = sc.get("write") or {}
        # W writes to /dev/null and E to fd -1 (EBADF); the DONE line is one writev
        want = done.get("writes", 0) + done.get("errors", 0)
        chk.eq(w.get("calls"), want, "write calls counted (sysloop's %s to /dev/null and %s failing)"
               % (done.get("writes"), done.get("errors")))
        chk.eq(w.get("errors"), done.get("errors"), "write errors counted")
        errs = sum(s.get("errors", 0) for s in sc.values())
        chk.eq(errs, done.get("errors"), "errors counted, all calls (%r)"
               % {k: v.get("errors") for k, v in sc.items() if v.get("errors")})
        chk.eq((sc.get("writev") or {}).get("calls"), 1, "writev calls (the one DONE line)")
        for s in sc.values():
            chk.check(s.get("max_us", 0) <= s.get("total_us", 0) + 0.1 and s.get("calls", 0) > 0,
                      "syscall %r: max_us <= total_us, calls > 0" % s)
        text = (proc or {}).get("verdict", {}).get("text") or ""
        chk.check(text, "a verdict: %r" % text)

        # a storm: writes as fast as it can for most of the window
        p = st.start_sample("-J", "-d", "2s", fx.pid)
        if counting(p.pid):
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < 1.5:
                n += go(fx, 100000, 0).get("writes", 0)
            r = st.finish_sample(p)
            doc = r.json(chk)
            proc = st.process(doc, fx.pid) or {}
            v = proc.get("verdict") or {}
            rate = n / ((doc or {}).get("duration_s") or 2)
            if rate >= 20000:
                chk.eq(v.get("kind"), "syscall-storm", "%.0f writes/s: verdict kind (text %r)" % (rate, v.get("text")))
                chk.check("write" in (v.get("text") or ""), "the storm's verdict %r names write" % v.get("text"))
                # and the fd it writes to, as /proc shows it (samples taken inside
                # write() carry its arguments in the user registers)
                devnull = []
                for fd in os.listdir("/proc/%d/fd" % fx.pid):
                    try:
                        if int(fd) > 2 and os.readlink("/proc/%d/fd/%s" % (fx.pid, fd)) == "/dev/null":
                            devnull.append(int(fd))
                    except OSError:
                        pass
                if os.uname().machine == "x86_64":
                    chk.check(any("write(fd %d, /dev/null)" % fd in (v.get("text") or "") for fd in devnull),
                              "the storm's verdict %r names the fd written (one of %s, /dev/null)" % (v.get("text"), devnull))
            else:
                dt.log("only %.0f writes/s here: the storm verdict is not checked" % rate)
        else:
            r = st.finish_sample(p)
            chk.fail("diag-sample did not start counting (storm)\n%s" % r.describe())

        # strace -c as an oracle, attached at the same time
        strace = dt.which("strace")
        if strace:
            p = st.start_sample("-J", "-d", "4s", fx.pid)
            s = subprocess.Popen([strace, "-c", "-f", "-qq", "-e", "trace=write", "-p", str(fx.pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                deadline = time.monotonic() + 5
                while dt.tracer_pid(fx.pid, fx.pid) != s.pid and time.monotonic() < deadline:
                    time.sleep(0.01)
                ok = counting(p.pid)
                done = go(fx, 3000, 0)
                time.sleep(0.1)
            finally:
                s.send_signal(signal.SIGINT)
                _, serr = s.communicate(timeout=20)
            r = st.finish_sample(p)
            if ok and dt.tracer_pid(fx.pid, fx.pid) in (0, None):
                doc = r.json(chk)
                w = by_name(st.process(doc, fx.pid)).get("write") or {}
                sw = strace_counts(serr).get("write", (None, None))
                chk.eq(w.get("calls"), sw[0], "write calls: diag-sample vs strace -c (sysloop says %s)\n%s"
                       % (done.get("writes"), serr[-1500:]))
            else:
                chk.fail("strace oracle: the tool did not start counting, or strace is still attached")
        chk.check(fx.alive(), "sysloop still runs")
    chk.finish()


if __name__ == "__main__":
    main()
