# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared helpers for the diagkit integration tests (python3 stdlib only).

Tests are run by meson as
    python3 tests/integration/test_X.py --diag-stack PATH --diag PATH --stackfix PATH
and exit 0 (pass), 1 (fail), 77 (skipped, reason printed) or 99 (harness error).
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

EXIT_SKIP = 77
EXIT_HARNESS = 99

# Environment for the tools and oracles: no network look-ups for debug info, C locale.
_TOOL_ENV = dict(os.environ)
_TOOL_ENV.pop("DEBUGINFOD_URLS", None)
_TOOL_ENV["LC_ALL"] = "C"

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

paths = argparse.Namespace(diag_stack=None, diag=None, stackfix=None)
_cleanups = []


def _terminated(signum, frame):
    # meson sends SIGTERM on timeout: unwind so the finally blocks kill the fixtures.
    raise SystemExit("test interrupted by signal %d" % signum)


def _excepthook(etype, value, tb):
    # A bug in the test itself is a harness error (99), not a failure of the tool.
    import traceback
    traceback.print_exception(etype, value, tb, file=sys.stdout)
    sys.stdout.flush()
    os._exit(EXIT_HARNESS)


def setup(description):
    """Parse the paths meson passes, install signal handling; returns the namespace."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--diag-stack", dest="diag_stack")
    ap.add_argument("--diag")
    ap.add_argument("--stackfix")
    ns = ap.parse_args()
    for k in ("diag_stack", "diag", "stackfix"):
        v = getattr(ns, k) or os.environ.get(k.upper())
        setattr(paths, k, os.path.abspath(v) if v else None)
    sys.excepthook = _excepthook
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    return paths


def need_path(what):
    p = getattr(paths, what)
    if not p or not os.access(p, os.X_OK):
        harness_error("%s not given or not executable (%r)" % (what, p))
    return p


def log(msg):
    print(msg, flush=True)


def skip(reason):
    log("SKIP: " + reason)
    sys.exit(EXIT_SKIP)


def harness_error(msg):
    log("HARNESS ERROR: " + msg)
    sys.exit(EXIT_HARNESS)


def need_program(name):
    p = shutil.which(name)
    if not p:
        skip("%s is not installed" % name)
    return p


def need_root(why):
    if os.geteuid() != 0:
        skip("needs root: " + why)


class Checker:
    """Collects failed checks so one run reports all of them."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.count = 0

    def check(self, cond, msg):
        self.count += 1
        if not cond:
            self.failures.append(msg)
            log("FAIL: " + msg)
        return bool(cond)

    def eq(self, got, want, msg):
        return self.check(got == want, "%s: got %r, want %r" % (msg, got, want))

    def fail(self, msg):
        return self.check(False, msg)

    def finish(self):
        if self.failures:
            log("%s: %d of %d checks failed" % (self.name, len(self.failures), self.count))
            sys.exit(1)
        log("%s: all %d checks passed" % (self.name, self.count))
        sys.exit(0)


def _child_setup():
    # The child dies with the test even if the test is SIGKILLed; own process group.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def set_subreaper():
    """Orphans (e.g. the fixture's zombie child) are reparented to us, not to init."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Result:
    def __init__(self, argv, rc, out, err, elapsed):
        self.argv, self.rc, self.out, self.err, self.elapsed = argv, rc, out, err, elapsed

    def cmd(self):
        return " ".join(self.argv)

    def describe(self):
        return "`%s` exit %s\n--- stdout (first 2000 chars)\n%s\n--- stderr\n%s" % (
            self.cmd(), self.rc, self.out[:2000], self.err[:4000])

    def err_lines(self):
        return [l for l in self.err.splitlines() if l.strip()]

    def json(self, checker=None):
        try:
            return json.loads(self.out)
        except ValueError as e:
            if checker:
                checker.fail("output of `%s` is not JSON (%s)\n%s" % (self.cmd(), e, self.describe()))
            return None


def run(argv, timeout=60, env=None, preexec=None, cwd="/"):
    """Run a command in its own process group; kill the group on timeout.

    The working directory is / by default, not the build directory meson runs tests
    in: the fixture's DWARF names its source relative to the build directory, and a
    tool must resolve that through DW_AT_comp_dir, not through its own cwd."""
    argv = [str(a) for a in argv]
    start = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env or _TOOL_ENV, cwd=cwd,
                         start_new_session=True, text=True, errors="replace",
                         preexec_fn=preexec or _child_setup)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, err = p.communicate()
        err += "\n[test harness: killed after %ss timeout]" % timeout
        return Result(argv, "timeout", out, err, time.monotonic() - start)
    finally:
        if p.poll() is None:
            kill_group(p)
            p.wait()
    return Result(argv, p.returncode, out, err, time.monotonic() - start)


def diag_stack(*args, timeout=60):
    return run([need_path("diag_stack")] + list(args), timeout=timeout)


def tool_env():
    return dict(_TOOL_ENV)


# ---------------------------------------------------------------- /proc helpers

def read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def task_stat(pid, tid):
    """(comm, state, fields after state) of /proc/PID/task/TID/stat, or None."""
    s = read_file("/proc/%d/task/%d/stat" % (pid, tid))
    if s is None:
        return None
    l, r = s.index("("), s.rindex(")")
    rest = s[r + 2:].split()
    return s[l + 1:r], rest[0], rest[1:]


def task_state(pid, tid):
    st = task_stat(pid, tid)
    return st[1] if st else None


def task_ids(pid):
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except OSError:
        return []


def tracer_pid(pid, tid):
    s = read_file("/proc/%d/task/%d/status" % (pid, tid)) or ""
    m = re.search(r"^TracerPid:\s*(\d+)", s, re.M)
    return int(m.group(1)) if m else None


def proc_syscall(pid, tid):
    return (read_file("/proc/%d/task/%d/syscall" % (pid, tid)) or "").split()


def stopped_or_traced(pid):
    """Threads of pid that are stopped ('t'/'T') or have a tracer: list of strings."""
    bad = []
    for tid in task_ids(pid):
        st = task_state(pid, tid)
        tp = tracer_pid(pid, tid)
        if st in ("t", "T"):
            bad.append("tid %d in state %s" % (tid, st))
        if tp:
            bad.append("tid %d has TracerPid %d" % (tid, tp))
    return bad


def describe_threads(pid):
    """State, syscall, wchan and tracer of every thread, for failure messages."""
    out = []
    for tid in task_ids(pid):
        st = task_stat(pid, tid)
        out.append("  %d %s %s wchan=%s tracer=%s syscall=%s" % (
            tid, st[0] if st else "?", st[1] if st else "?",
            (read_file("/proc/%d/task/%d/wchan" % (pid, tid)) or "?").strip(),
            tracer_pid(pid, tid), " ".join(proc_syscall(pid, tid)[:2])))
    return "threads of %d:\n%s" % (pid, "\n".join(out))


PF_KTHREAD = 0x00200000


def is_kernel_thread(pid):
    st = task_stat(pid, pid)
    return bool(st) and (int(st[2][5]) & PF_KTHREAD) != 0


# ---------------------------------------------------------------- the fixture

class Fixture:
    """stackfix started in its own process group, parsed up to READY.

    roles: dict role -> list of dicts {"tid": int, other key=value fields as str}
    """

    def __init__(self, args=(), ready_timeout=30):
        self.args = [str(a) for a in args]
        self.ready_timeout = ready_timeout
        self.tmpdir = tempfile.mkdtemp(prefix="diagtest-")
        self.heartbeat_file = os.path.join(self.tmpdir, "heartbeat")
        self.proc = None
        self.pid = None
        self.roles = {}
        self.lines = []

    def __enter__(self):
        argv = [need_path("stackfix")] + self.args
        if "--heartbeat" not in self.args:
            argv += ["--heartbeat", self.heartbeat_file]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_child_setup)
        try:
            self._read_until_ready(argv)
        except BaseException:
            self.close()
            raise
        return self

    def _read_until_ready(self, argv):
        # Raw reads on the pipe: a buffered reader could hold READY while select() waits.
        import selectors
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + self.ready_timeout
        buf = b""
        try:
            while True:
                while b"\n" not in buf:
                    left = deadline - time.monotonic()
                    if left <= 0 or not sel.select(timeout=left):
                        log(describe_threads(self.proc.pid))
                        harness_error("fixture `%s` not READY after %ss; got %r"
                                      % (" ".join(argv), self.ready_timeout, self.lines))
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        harness_error("fixture `%s` exited (%s) before READY; got %r"
                                      % (" ".join(argv), self.proc.wait(), self.lines))
                    buf += chunk
                line, buf = buf.split(b"\n", 1)
                if self._parse_line(line.decode().strip()):
                    break
        finally:
            sel.close()
        self.ready_time = time.monotonic()

    def _parse_line(self, line):
        """Record one line of the fixture's protocol; True at READY."""
        self.lines.append(line)
        if line == "READY":
            return True
        words = line.split()
        if not words:
            return False
        if words[0] == "PID":
            self.pid = int(words[1])
            return False
        ent = {"tid": int(words[1])}
        for w in words[2:]:
            k, _, v = w.partition("=")
            ent[k] = v
        self.roles.setdefault(words[0], []).append(ent)
        return False

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.proc and self.proc.poll() is None:
            kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def tid(self, role):
        return self.roles[role][0]["tid"]

    def tids(self, role=None):
        if role:
            return [e["tid"] for e in self.roles.get(role, [])]
        return sorted(e["tid"] for r, l in self.roles.items() if r != "zombie" for e in l)

    def heartbeat(self):
        """Current heartbeat count, or None if unreadable."""
        for _ in range(5):
            s = read_file(self.heartbeat_file)
            if s and s.strip().isdigit():
                return int(s)
            time.sleep(0.001)
        return None

    def heartbeat_advances(self, ticks=2, timeout=1.0):
        """True if the heartbeat counter grows by `ticks` within `timeout` s."""
        start = self.heartbeat()
        if start is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.heartbeat()
            if c is not None and c >= start + ticks:
                return True
            time.sleep(0.005)
        return False

    def check_unharmed(self, chk, what):
        """DESIGN rule 1: after the tool ran, nothing stopped or traced, heartbeat ticks."""
        deadline = time.monotonic() + 1.0
        bad = stopped_or_traced(self.pid)
        while bad and time.monotonic() < deadline:
            time.sleep(0.01)
            bad = stopped_or_traced(self.pid)
        chk.check(not bad, "%s: fixture left stopped/traced: %s" % (what, bad[:10]))
        if "heartbeat" in self.roles:
            chk.check(self.heartbeat_advances(), "%s: fixture heartbeat does not tick" % what)
        chk.check(self.proc.poll() is None, "%s: fixture died (status %s)" % (what, self.proc.poll()))


# ---------------------------------------------------------------- diag-stack JSON

def process_of(doc, pid):
    for p in (doc or {}).get("processes", []):
        if p.get("pid") == pid:
            return p
    return None


def threads_of(proc):
    """tid -> (thread dict, group dict) for every thread shown in a process."""
    out = {}
    for g in (proc or {}).get("groups", []):
        for t in g.get("threads", []):
            out.setdefault(t.get("tid"), []).append((t, g))
    return out


def frame_functions(group):
    return [f.get("function") for f in group.get("frames", [])]


def fix_functions(names):
    return [n for n in names if n and n.startswith("fix_")]


def syscall_arg(sc, i):
    try:
        return int(sc["args"][i], 16)
    except (TypeError, KeyError, IndexError, ValueError):
        return None


def which(name):
    return shutil.which(name)
