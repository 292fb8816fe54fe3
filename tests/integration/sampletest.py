# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the diag-sample tests (python3 stdlib only): the fixtures that print
`READY pid=P` (cpufix, sysloop, pysvc.py), the source markers of cpufix.c, the
diag-sample/1 JSON document's shape, and what the tool's exit status must be."""
import os
import re
import selectors
import signal
import subprocess
import threading
import time

import diagtest as dt

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES_DIR = os.path.join(TESTS_DIR, "fixtures")
CPUFIX_SRC = os.path.join(FIXTURES_DIR, "cpufix.c")
PYTHON311 = "/usr/bin/python3.11"

# memset as libc names it: the IFUNC, or the variant it resolved to on this CPU
# (__memset_avx2_unaligned_erms, __memset_evex_unaligned_erms, __memset_sse2_unaligned...).
MEMSET_RE = re.compile(r"^(__)?memset(_[a-z0-9_]+)?$")

VERDICT_KINDS = ("busy-loop", "syscall-storm", "waiting", "idle", "mixed", "exited")


def setup(description):
    """dt.setup() with the paths the diag-sample tests take."""
    return dt.setup(description, "diag_sample", "cpufix", "sysloop", "pysvc")


def diag_sample(*args, timeout=60):
    return dt.run_bounded([dt.need_path("diag_sample")] + [str(a) for a in args], timeout=timeout)


def start_sample(*args):
    """diag-sample started in its own process group (stdout, stderr piped): Popen."""
    argv = [dt.need_path("diag_sample")] + [str(a) for a in args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=dt.tool_env(), cwd="/", start_new_session=True, text=True, errors="replace",
                            preexec_fn=dt._child_setup)


def finish_sample(p, timeout=60):
    """Wait for a start_sample() process: a dt.Result."""
    start = time.monotonic()
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        dt.kill_group(p)
        out, err = p.communicate()
        rc = "timeout"
    return dt.Result(p.args, rc, out, err, time.monotonic() - start)


def markers(path=CPUFIX_SRC):
    """{name: line} of the `MARK:name` comments of a source file."""
    out = {}
    with open(path) as f:
        for i, line in enumerate(f, 1):
            m = re.search(r"MARK:\s*([A-Za-z0-9_.-]+)", line)
            if m:
                out[m.group(1)] = i
    return out


class LineProc:
    """A fixture process in its own process group that prints `KEY k=v ...` lines and
    `READY pid=P`. Lines before READY are parsed into facts; later ones are read with
    wait_line(). stdin is a pipe (send()) or /dev/null. With reap, a thread waits for
    the process as soon as it exits (so that it does not linger as a zombie). On
    close: SIGTERM to the group, SIGKILL after term_timeout, SIGKILL to the group."""

    def __init__(self, argv, stdin=False, ready_timeout=30, term_timeout=3, reap=False, cwd="/"):
        self.argv = [str(a) for a in argv]
        self.facts = {}
        self.lines = []
        self.buf = b""
        self.term_timeout = term_timeout
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=dt._child_setup, cwd=cwd)
        self.pid = self.proc.pid
        self.exit_status = None
        if reap:
            threading.Thread(target=self._reaper, daemon=True).start()
        try:
            line = self.wait_line(lambda w: w[0] in ("READY", "SKIP"), ready_timeout)
            if line is None:
                dt.log(dt.describe_threads(self.pid))
                dt.harness_error("fixture `%s` not READY after %ss; got %r" % (" ".join(self.argv), ready_timeout,
                                                                               self.lines))
            if line[0] == "SKIP":
                self.close()
                dt.skip("fixture %s: %s" % (os.path.basename(self.argv[0]), " ".join(line[1:])))
            self.ready = self._kv(line[1:])
        except BaseException:
            self.close()
            raise

    def _reaper(self):
        self.exit_status = self.proc.wait()

    @staticmethod
    def _kv(words):
        ent = {}
        for w in words:
            k, _, v = w.partition("=")
            ent[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
        return ent

    def wait_line(self, pred=None, timeout=10):
        """The next line (as words) for which pred(words) holds, reading up to timeout s;
        every line read is recorded in lines and facts. None on timeout or EOF."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                while b"\n" in self.buf:
                    raw, self.buf = self.buf.split(b"\n", 1)
                    words = raw.decode(errors="replace").split()
                    if not words:
                        continue
                    self.lines.append(" ".join(words))
                    self.facts.setdefault(words[0], []).append(self._kv(words[1:]))
                    if pred is None or pred(words):
                        return words
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
        finally:
            sel.close()

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def threads(self):
        """{name: tid} of the THREAD lines read so far."""
        return {e.get("name"): e.get("tid") for e in self.facts.get("THREAD", [])}

    def tid(self, name):
        return self.threads()[name]

    def alive(self):
        return self.proc.poll() is None if self.exit_status is None else False

    def close(self):
        if self.proc.poll() is None:
            dt.kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.term_timeout)
            except subprocess.TimeoutExpired:
                dt.log("fixture %d did not exit on SIGTERM within %ss: killed" % (self.pid, self.term_timeout))
        dt.kill_group(self.proc)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdout, self.proc.stdin):
            if f:
                try:
                    f.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def cpufix(*args, **kw):
    return LineProc([dt.need_path("cpufix")] + list(args), **kw)


# ---------------------------------------------------------------- /proc oracles

def oncpu_ns(pid, tid):
    """The thread's time on a CPU so far (schedstat), ns, or None."""
    s = dt.read_file("/proc/%d/task/%d/schedstat" % (pid, tid))
    return int(s.split()[0]) if s else None


class CpuOracle:
    """CPU time of threads over an interval from schedstat: start() before the tool
    runs, stop() after; pct(tid) is the share of the interval on a CPU, samples(tid,
    hz) the samples perf should have taken at hz. A thread born in between counts
    from 0; one gone by stop() has no figure (None)."""

    def __init__(self, pid):
        self.pid = pid
        self.t0 = self.t1 = None
        self.a, self.b = {}, {}

    def start(self):
        self.a = {t: oncpu_ns(self.pid, t) for t in dt.task_ids(self.pid)}
        self.t0 = time.monotonic()
        return self

    def stop(self):
        self.t1 = time.monotonic()
        self.b = {t: oncpu_ns(self.pid, t) for t in dt.task_ids(self.pid)}
        return self

    def cpu_s(self, tid, end_ns=None):
        b = end_ns if end_ns is not None else self.b.get(tid)
        if b is None:
            return None
        return (b - (self.a.get(tid) or 0)) / 1e9

    def pct(self, tid, end_ns=None, window=None):
        c = self.cpu_s(tid, end_ns)
        w = window or (self.t1 - self.t0)
        return None if c is None or w <= 0 else 100.0 * c / w

    def samples(self, tid, hz, end_ns=None):
        c = self.cpu_s(tid, end_ns)
        return None if c is None else c * hz


def near(got, want, rel=0.35, slack=5):
    """got within rel of want, or within slack of it (few samples)."""
    return got is not None and want is not None and abs(got - want) <= max(rel * want, slack)


def states_seen(pid, stop, every=0.002):
    """Poll the state of every thread of pid until stop (a threading.Event) is set:
    returns a list that fills with (tid, state) of each reading that found a thread
    stopped or traced (t, T). Runs in a thread; join with the returned thread."""
    bad = []

    def poll():
        while not stop.is_set():
            for tid in dt.task_ids(pid):
                st = dt.task_state(pid, tid)
                if st in ("t", "T"):
                    bad.append((tid, st))
            time.sleep(every)
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    return bad, th


# ---------------------------------------------------------------- the JSON document

def process(doc, pid):
    for p in (doc or {}).get("processes") or []:
        if p.get("pid") == pid:
            return p
    return None


def thread(proc, tid):
    for t in (proc or {}).get("threads") or []:
        if t.get("tid") == tid:
            return t
    return None


def user_frames(stack):
    return [f for f in stack.get("frames") or [] if not f.get("kernel")]


def expected_status(doc):
    """0, or 4 when the document lists a missing part (one not caused by the test:
    no BPF here, no kernel frames...)."""
    return 4 if (doc or {}).get("missing") else 0


def missing_parts(doc):
    return [m.get("part") for m in (doc or {}).get("missing") or []]


_NUM = (int, float)


def check_schema(chk, doc, what):
    """The fields diag-sample -J writes (schema diag-sample/1), with their types."""
    def typed(obj, key, types, where, nullable=False):
        if not isinstance(obj, dict) or key not in obj:
            return chk.fail("%s: %s.%s is absent" % (what, where, key))
        v = obj[key]
        ok = (v is None and nullable) or ((not isinstance(v, bool) or bool in types) and isinstance(v, types))
        return chk.check(ok, "%s: %s.%s is %r, want %s%s" % (
            what, where, key, v, "/".join(t.__name__ for t in types), " or null" if nullable else ""))

    if not chk.check(isinstance(doc, dict), "%s: a JSON object" % what):
        return
    chk.eq(doc.get("schema"), "diag-sample/1", "%s: schema" % what)
    chk.eq(doc.get("tool"), "diag-sample", "%s: tool" % what)
    typed(doc, "version", (str,), "doc")
    for k in ("duration_s", "requested_duration_s", "report_ms"):
        typed(doc, k, _NUM, "doc")
    typed(doc, "frequency_hz", (int,), "doc")
    typed(doc, "interrupted", (bool,), "doc")
    typed(doc, "lost_samples", (int,), "doc")
    if typed(doc, "mechanisms", (dict,), "doc"):
        for k in ("oncpu", "syscalls", "offcpu"):
            typed(doc["mechanisms"], k, (str,), "mechanisms", nullable=True)
    if typed(doc, "missing", (list,), "doc"):
        for m in doc["missing"]:
            typed(m, "part", (str,), "missing[]")
            typed(m, "reason", (str,), "missing[]")
    if not typed(doc, "processes", (list,), "doc"):
        return
    for p in doc["processes"]:
        w = "process %s" % p.get("pid")
        typed(p, "pid", (int,), w)
        typed(p, "comm", (str,), w)
        typed(p, "cmdline", (str,), w, nullable=True)
        typed(p, "python", (str,), w, nullable=True)
        for k in ("started", "exited"):
            typed(p, k, (bool,), w)
        if typed(p, "verdict", (dict,), w):
            chk.check(p["verdict"].get("kind") in VERDICT_KINDS, "%s: verdict.kind %r in %s"
                      % (what, p["verdict"].get("kind"), VERDICT_KINDS))
            typed(p["verdict"], "text", (str,), w + " verdict")
        typed(p, "window_s", _NUM, w)
        typed(p, "oncpu_samples", (int,), w)
        typed(p, "proc_samples", (int,), w)
        for t in p.get("threads") or []:
            tw = "%s thread %s" % (w, t.get("tid"))
            typed(t, "tid", (int,), tw)
            typed(t, "name", (str,), tw)
            for k in ("started", "exited"):
                typed(t, k, (bool,), tw)
            for k in ("oncpu_pct", "user_pct", "sys_pct"):
                if typed(t, k, _NUM, tw):
                    chk.check(0 <= t[k] <= 100, "%s: %s.%s %r in [0, 100]" % (what, tw, k, t[k]))
            typed(t, "runnable_pct", _NUM, tw, nullable=True)
            typed(t, "oncpu_samples", (int,), tw)
            typed(t, "proc_samples", (int,), tw)
            if typed(t, "waits", (list,), tw):
                for wc in t["waits"]:
                    typed(wc, "what", (str,), tw + " wait")
                    typed(wc, "state", (str,), tw + " wait")
                    typed(wc, "pct", _NUM, tw + " wait")
                    for k in ("syscall", "wchan", "function"):
                        typed(wc, k, (str,), tw + " wait", nullable=True)
        typed(p, "threads", (list,), w)
        if typed(p, "stacks", (list,), w):
            for s in p["stacks"]:
                typed(s, "samples", (int,), w + " stack")
                typed(s, "pct", _NUM, w + " stack")
                typed(s, "tids", (list,), w + " stack")
                if typed(s, "frames", (list,), w + " stack"):
                    for f in s["frames"]:
                        fw = w + " frame"
                        typed(f, "function", (str,), fw)
                        for k in ("module", "file"):
                            typed(f, k, (str,), fw, nullable=True)
                        typed(f, "line", (int,), fw, nullable=True)
                        if f.get("python"):
                            chk.check(f.get("pc", 0) is None, "%s: a Python frame's pc %r is null"
                                      % (what, f.get("pc", "<absent>")))
                        elif typed(f, "pc", (str,), fw):
                            chk.check(re.fullmatch(r"0x[0-9a-f]+", f["pc"]), "%s: pc %r is 0x hex" % (what, f["pc"]))
                        for k in ("inlined", "python", "kernel"):
                            typed(f, k, (bool,), fw)
        if p.get("syscalls") is not None and typed(p, "syscalls", (list,), w):
            for s in p["syscalls"]:
                typed(s, "name", (str,), w + " syscall", nullable=True)
                for k in ("nr", "calls", "errors"):
                    typed(s, k, (int,), w + " syscall")
                for k in ("total_us", "max_us", "pct_time"):
                    typed(s, k, _NUM, w + " syscall")
        for key, name in (("functions", "function"), ("modules", "module")):
            if typed(p, key, (list,), w):
                for e in p[key]:
                    typed(e, name, (str,), "%s %s" % (w, key))
                    typed(e, "samples", (int,), "%s %s" % (w, key))
                    typed(e, "pct", _NUM, "%s %s" % (w, key))


def folded_lines(text):
    """[(frames list, count)] of collapsed stacks; raises ValueError on a bad line."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            raise ValueError("not a collapsed stack line: %r" % line)
        out.append((stack.split(";"), int(n)))
    return out
