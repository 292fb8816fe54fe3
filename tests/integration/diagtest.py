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


def setup(description, *more):
    """Parse the paths meson passes, install signal handling; returns the namespace.

    Takes --diag-stack, --diag and --stackfix, and an option for each name in `more`
    ("diag_fds": --diag-fds); each path also from the environment (DIAG_FDS)."""
    ap = argparse.ArgumentParser(description=description)
    keys = ("diag_stack", "diag", "stackfix") + more
    for k in keys:
        ap.add_argument("--" + k.replace("_", "-"), dest=k)
    ns = ap.parse_args()
    for k in keys:
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


def traced(pid):
    """The tracer of some thread of pid, 0 if none is traced. Threads asleep in a call
    an interrupt would end are never attached: the main thread's TracerPid alone
    does not tell whether a tool holds the process."""
    for t in task_ids(pid):
        tp = tracer_pid(pid, t)
        if tp:
            return tp
    return 0


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

class _LineFixture:
    """A fixture process started in its own process group whose stdout is read line
    by line up to READY (each line before it goes to _parse_line()). One that exits
    77 before READY (after `SKIP reason`) skips the test. On close: SIGTERM to the
    group, then SIGKILL after `term_timeout` seconds, and SIGKILL to the group for
    children that outlived it."""

    cwd = None

    def __init__(self, exe_key, args, ready_timeout, term_timeout, preexec):
        self.exe_key = exe_key
        self.args = [str(a) for a in args]
        self.ready_timeout = ready_timeout
        self.term_timeout = term_timeout
        self.preexec = preexec
        self.proc = None
        self.lines = []

    def _argv(self):
        return [need_path(self.exe_key)] + self.args

    def __enter__(self):
        argv = self._argv()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=self.preexec, cwd=self.cwd)
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
                        rc = self.proc.wait()
                        if rc == EXIT_SKIP:
                            reason = " ".join(l[5:] for l in self.lines if l.startswith("SKIP "))
                            self.close()
                            skip("fixture %s: %s" % (os.path.basename(argv[0]), reason or "skipped"))
                        harness_error("fixture `%s` exited (%s) before READY; got %r"
                                      % (" ".join(argv), rc, self.lines))
                    buf += chunk
                line, buf = buf.split(b"\n", 1)
                line = line.decode(errors="replace").strip()
                self.lines.append(line)
                if line == "READY":
                    break
                words = line.split()
                if words and words[0] != "SKIP":
                    self._parse_line(words)
        finally:
            sel.close()
        self.ready_time = time.monotonic()

    def _parse_line(self, words):
        raise NotImplementedError

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.proc and self.proc.poll() is None:
            kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.term_timeout)
            except subprocess.TimeoutExpired:
                log("fixture %d did not exit on SIGTERM within %ss: killed"
                    % (self.proc.pid, self.term_timeout))
                kill_group(self.proc)
                self.proc.wait()
        if self.proc:
            kill_group(self.proc)
            self.proc.stdout.close()


class Fixture(_LineFixture):
    """stackfix started in its own process group, parsed up to READY.

    roles: dict role -> list of dicts {"tid": int, other key=value fields as str}
    """

    def __init__(self, args=(), ready_timeout=30):
        super().__init__("stackfix", args, ready_timeout, term_timeout=2, preexec=_child_setup)
        self.tmpdir = tempfile.mkdtemp(prefix="diagtest-")
        self.heartbeat_file = os.path.join(self.tmpdir, "heartbeat")
        self.pid = None
        self.roles = {}

    def _argv(self):
        argv = super()._argv()
        if "--heartbeat" not in self.args:
            argv += ["--heartbeat", self.heartbeat_file]
        return argv

    def _parse_line(self, words):
        if words[0] == "PID":
            self.pid = int(words[1])
            return
        ent = {"tid": int(words[1])}
        for w in words[2:]:
            k, _, v = w.partition("=")
            ent[k] = v
        self.roles.setdefault(words[0], []).append(ent)

    def close(self):
        super().close()
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


# ---------------------------------------------------------------- diag-fds tests

def setup_fds(description):
    """setup() for the diag-fds tests: also --diag-fds, --fdfix and --fusehang."""
    return setup(description, "diag_fds", "fdfix", "fusehang")


def diag_fds(*args, timeout=60):
    return run_bounded([need_path("diag_fds")] + list(args), timeout=timeout)


def run_bounded(argv, timeout=60, kill_wait=10):
    """run(), but a run that times out is described (state, wchan, syscall of each of
    its threads, taken before the kill) in the result's stderr, and the wait after the
    kill is bounded too: a process that cannot be killed (D state on a dead mount)
    gives rc "unkillable" instead of hanging the test."""
    argv = [str(a) for a in argv]
    start = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=_TOOL_ENV, cwd="/",
                         start_new_session=True, text=True, errors="replace",
                         preexec_fn=_child_setup)
    try:
        out, err = p.communicate(timeout=timeout)
        return Result(argv, p.returncode, out, err, time.monotonic() - start)
    except subprocess.TimeoutExpired:
        where = describe_threads(p.pid)
        kill_group(p)
        try:
            out, err = p.communicate(timeout=kill_wait)
            rc = "timeout"
        except subprocess.TimeoutExpired:
            out, err, rc = "", "", "unkillable"
        err = (err or "") + "\n[test harness: killed after %ss timeout]\n%s" % (timeout, where)
        return Result(argv, rc, out or "", err, time.monotonic() - start)
    finally:
        if p.poll() is None:
            kill_group(p)


def _kv_value(v):
    return int(v) if re.fullmatch(r"-?\d+", v) else v


def _pdeathsig_term():
    # A fixture that must clean up after itself (a FUSE mount) gets SIGTERM, not
    # SIGKILL, when the test dies.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class KVFixture(_LineFixture):
    """A fixture that prints `KEY k=v k=v ...` lines, then READY (or `SKIP reason` and
    exits 77), and stays until SIGTERM. Started in its own process group.

    facts: dict KEY -> list of dicts (values that look like integers are ints).
    On close: SIGTERM to the group, then SIGKILL after `term_timeout` seconds.
    """

    cwd = "/"

    def __init__(self, exe_key, args=(), ready_timeout=30, term_timeout=5, pdeathsig=signal.SIGKILL):
        super().__init__(exe_key, args, ready_timeout, term_timeout,
                         _pdeathsig_term if pdeathsig == signal.SIGTERM else _child_setup)
        self.facts = {}

    def _parse_line(self, words):
        ent = {}
        for w in words[1:]:
            k, _, v = w.partition("=")
            ent[k] = _kv_value(v)
        self.facts.setdefault(words[0], []).append(ent)

    @property
    def pid(self):
        return self.proc.pid

    def fact(self, key):
        """The first `key` line's dict, or None."""
        l = self.facts.get(key)
        return l[0] if l else None

    def pids(self):
        """Every pid the fixture printed (fields named *pid*, and waiters=)."""
        out = {self.proc.pid}
        for ents in self.facts.values():
            for e in ents:
                for k, v in e.items():
                    if isinstance(v, int) and "pid" in k and v > 0:
                        out.add(v)
                    elif k == "waiters":
                        out.update(int_list(v))
        return sorted(out)


def int_list(v):
    """'1,2,3' or 7 -> [1, 2, 3] / [7]."""
    if isinstance(v, int):
        return [v]
    return [int(x) for x in str(v).split(",") if x.strip()]


def fdfix(args=(), ready_timeout=30):
    return KVFixture("fdfix", args, ready_timeout=ready_timeout)


def fds_process(doc, pid):
    """The diag-fds -J process entry of pid, or None."""
    for p in (doc or {}).get("processes", []):
        if p.get("pid") == pid:
            return p
    return None


def fds_entry(doc, pid, fd):
    """The diag-fds -J fd entry (pid, fd), or None."""
    p = fds_process(doc, pid)
    for f in (p or {}).get("fds", []):
        if f.get("fd") == fd:
            return f
    return None


def endpoint_set(entry):
    """{(pid, fd)} of an fd entry's endpoints."""
    return {(e.get("pid"), e.get("fd")) for e in (entry or {}).get("endpoints", [])}


def mounted_at(path):
    """True if something is mounted on path (per /proc/self/mounts; octal escapes decoded)."""
    for line in (read_file("/proc/self/mounts") or "").splitlines():
        f = line.split()
        if len(f) > 1 and re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[1]) == path:
            return True
    return False


def force_unmount(path, conn=None):
    """Abort a FUSE connection (if given) and lazily unmount path; True if gone."""
    if conn:
        try:
            with open("/sys/fs/fuse/connections/%s/abort" % conn, "w") as f:
                f.write("1")
        except OSError:
            pass
    if mounted_at(path):
        MNT_DETACH = 2
        if _libc.umount2(path.encode(), MNT_DETACH) != 0:
            log("umount2(%s, MNT_DETACH): %s" % (path, os.strerror(ctypes.get_errno())))
    try:
        os.rmdir(path)
    except OSError:
        pass
    return not mounted_at(path)


def close_fuse(chk, fx, mnt, conn, strict=False, point_removed=False):
    """Stop a FUSE fixture (fusehang, chainfix's dstate case) and check that no mount
    of it outlives the test, forcing the unmount if it did. strict: the fixture
    itself must have unmounted; point_removed: and removed its mount point."""
    fx.close()
    if not mnt:
        return
    left = mounted_at(mnt)
    if left:
        log("the fixture left %s mounted: forcing the unmount" % mnt)
        force_unmount(mnt, conn)
    chk.check(not mounted_at(mnt), "FUSE mount %s is gone after the test" % mnt)
    if strict:
        chk.check(not left, "the fixture left %s mounted" % mnt)
    if point_removed:
        chk.check(not os.path.lexists(mnt), "mount point %s removed" % mnt)


# ---------------------------------------------------------------- diag-locks tests

def setup_locks(description):
    """setup() for the diag-locks tests: also --diag-locks and --lockfix."""
    return setup(description, "diag_locks", "lockfix")


def diag_locks(*args, timeout=60):
    return run([need_path("diag_locks")] + list(args), timeout=timeout)


def locks_run_json(chk, fx, pids, what, *extra, want_rc=0, strict=False):
    """diag-locks -J -p PIDS [EXTRA]; checks its exit status, that the fixture lives
    and that no thread of pids was woken or stopped. strict: also that none is left
    stopped or traced, the schema and threads_seen. Returns (result, doc)."""
    before = wait_asleep(pids)
    r = diag_locks("-J", "-p", ",".join(str(p) for p in pids), *extra)
    after = ctxt_switches(pids)
    chk.eq(r.rc, want_rc, "%s: exit status of `%s`" % (what, r.cmd()))
    woken = sorted(t for t in before if t in after and after[t] != before[t])
    chk.check(not woken, "%s: threads %s were woken or stopped by `%s`%s"
              % (what, woken, r.cmd(), " (no --stacks)" if strict else ""))
    if strict:
        for p in pids:
            bad = stopped_or_traced(p)
            chk.check(not bad, "%s: pid %d left stopped/traced: %s" % (what, p, bad))
    chk.check(fx.proc.poll() is None, "%s: fixture died" % what)
    doc = r.json(chk)
    if strict and doc is not None:
        chk.eq(doc.get("schema"), "diag-locks/1", "%s: schema" % what)
        chk.check(doc.get("threads_seen", 0) >= 1, "%s: threads_seen %r" % (what, doc.get("threads_seen")))
    if r.rc != want_rc or doc is None:
        log(r.describe())
    return r, doc


def lockfix(case, ready_timeout=30):
    """lockfix --case CASE as a KVFixture (facts keyed by the case's line names)."""
    return KVFixture("lockfix", ["--case", case], ready_timeout=ready_timeout)


def ctxt_switches(pids):
    """{tid: voluntary + nonvoluntary context switches} of every thread of pids. A
    thread asleep in a system call does not switch unless something wakes or stops
    it (a ptrace interrupt does): equal snapshots mean nobody touched the threads."""
    out = {}
    for pid in pids:
        for tid in task_ids(pid):
            s = read_file("/proc/%d/task/%d/status" % (pid, tid)) or ""
            n = [int(v) for v in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s*(\d+)", s, re.M)]
            if len(n) == 2:
                out[tid] = sum(n)
    return out


def proc_locks_on(inode):
    """/proc/locks entries on inode: list of (is_waiter, kind, mode, pid)."""
    out = []
    for line in (read_file("/proc/locks") or "").splitlines():
        f = line.split()
        waiter = len(f) > 1 and f[1] == "->"
        if waiter:
            f = f[:1] + f[2:]
        if len(f) < 8:
            continue
        ids = f[5].split(":")
        if len(ids) == 3 and ids[2] == str(inode):
            out.append((waiter, f[1], f[3], int(f[4])))
    return out


def locks_futex(doc, name=None, kind=None, waiter_tid=None):
    """futex_locks entries of a diag-locks -J document, filtered."""
    out = []
    for l in (doc or {}).get("futex_locks", []):
        if name is not None and name not in (l.get("name") or ""):
            continue
        if kind is not None and l.get("kind") != kind:
            continue
        if waiter_tid is not None and waiter_tid not in [w.get("tid") for w in l.get("waiters", [])]:
            continue
        out.append(l)
    return out


def waiter_tids(lock):
    return sorted(w.get("tid") for w in (lock or {}).get("waiters", []))


def wait_asleep(pids, timeout=5.0):
    """Wait until every thread of pids sleeps in a system call and its context-switch
    count holds still (a fixture's main thread may still be on its way from READY to
    its final wait); returns the ctxt_switches() snapshot, or {} on timeout."""
    deadline = time.monotonic() + timeout
    prev = None
    while time.monotonic() < deadline:
        cur = ctxt_switches(pids)
        asleep = all(task_state(p, t) == "S" and proc_syscall(p, t)[:1] not in ([], ["running"])
                     for p in pids for t in task_ids(p))
        if asleep and cur == prev:
            return cur
        prev = cur if asleep else None
        time.sleep(0.02)
    return {}


# ---------------------------------------------------------------- diag-chain tests

def setup_chain(description):
    """setup() for the diag-chain tests: also --diag-chain and --chainfix."""
    return setup(description, "diag_chain", "chainfix")


def diag_chain(*args, timeout=60):
    return run([need_path("diag_chain")] + list(args), timeout=timeout)


def chainfix(case, ready_timeout=30, pdeathsig=signal.SIGKILL):
    """chainfix --case CASE as a KVFixture: facts "chain" or "cycle" (values pid:tid
    stay strings: see pid_tid())."""
    return KVFixture("chainfix", ["--case", case], ready_timeout=ready_timeout, pdeathsig=pdeathsig)


def pid_tid(v):
    """'pid:tid' -> (pid, tid); a bare pid p -> (p, p)."""
    if isinstance(v, int):
        return v, v
    p, _, t = str(v).partition(":")
    return int(p), int(t or p)


def chain_with_start(doc, tid):
    """The diag-chain -J chain whose start threads include tid, or None."""
    for ch in (doc or {}).get("chains", []):
        if tid in [t.get("tid") for t in ch.get("threads", [])]:
            return ch
    return None


def chain_node(chain, node_id):
    for n in (chain or {}).get("nodes", []):
        if n.get("id") == node_id:
            return n
    return None


def chain_edge_into(chain, node_id):
    for e in (chain or {}).get("edges", []):
        if e.get("to") == node_id:
            return e
    return None


def chain_path(chain, node_id=None):
    """[(node, edge into it)] from node 0 down to node_id (default: the root node);
    the start's edge is None. [] if the node is unknown."""
    if node_id is None:
        node_id = (chain or {}).get("root")
    out, seen = [], set()
    while node_id is not None and node_id not in seen:
        seen.add(node_id)
        n = chain_node(chain, node_id)
        if n is None:
            return []
        e = chain_edge_into(chain, node_id)
        out.append((n, e))
        node_id = e.get("from") if e else None
    return list(reversed(out))


def chain_children(chain, node_id):
    """[(node, edge)] of the nodes right below node_id."""
    return [(chain_node(chain, e.get("to")), e) for e in (chain or {}).get("edges", []) if e.get("from") == node_id]


def chain_threads(chain):
    """[(pid, tid)] of every thread node, in node order."""
    return [(n.get("pid"), n.get("tid")) for n in (chain or {}).get("nodes", []) if n.get("kind") == "thread"]


def _stopped_or_traced_now(pids):
    bad = []
    for pid in pids:
        for tid in task_ids(pid):
            s = read_file("/proc/%d/task/%d/status" % (pid, tid)) or ""
            st = re.search(r"^State:\s*(\S)", s, re.M)
            tp = re.search(r"^TracerPid:\s*(\d+)", s, re.M)
            if st and st.group(1) in ("t", "T"):
                bad.append("tid %d in state %s" % (tid, st.group(1)))
            if tp and int(tp.group(1)):
                bad.append("tid %d has TracerPid %s" % (tid, tp.group(1)))
    return bad


def run_watched(argv, pids, timeout=60):
    """Run argv while a thread samples every thread of pids, as often as it can.
    Returns (Result, problems): problems lists each stop ('t'/'T') or tracer seen,
    during the run or just after it."""
    import threading
    problems, done = [], threading.Event()

    def sample():
        while not done.is_set():
            for b in _stopped_or_traced_now(pids):
                if b not in problems:
                    problems.append(b)
            time.sleep(0.0005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        res = run(argv, timeout=timeout)
    finally:
        done.set()
        t.join()
    for b in _stopped_or_traced_now(pids):
        if b not in problems:
            problems.append(b + " (after the run)")
    return res, problems


def group_pids(pgid):
    """Every process in process group pgid (a fixture and the children it forked)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = task_stat(int(d), int(d))
        if st and len(st[2]) > 1 and st[2][1] == str(pgid):
            out.append(int(d))
    return sorted(out)


def diag_chain_checked(chk, fx, what, *args, rc=5, blocked=(), timeout=60):
    """diag-chain ARGS against a running chainfix fx, watched: no thread of the
    fixture's process group is stopped or traced while it runs, the exit status is
    rc, and the blocked threads [(pid, tid)] were not even woken (their context
    switch counts hold still). Returns the Result."""
    pids = sorted({p for p, _ in blocked})
    before = ctxt_switches(pids)
    res, problems = run_watched([need_path("diag_chain")] + [str(a) for a in args], group_pids(fx.pid),
                                timeout=timeout)
    chk.check(not problems, "%s: a target was stopped or traced while diag-chain ran: %s" % (what, problems[:8]))
    chk.check(res.rc == rc, "%s: exit status %s, want %s\n%s" % (what, res.rc, rc, res.describe()))
    after = ctxt_switches(pids)
    woken = [t for _, t in blocked if t in before and after.get(t) != before[t]]
    chk.check(not woken, "%s: blocked threads %s were woken up (context switches changed)" % (what, woken))
    chk.check(fx.proc.poll() is None, "%s: the fixture died (%s)" % (what, fx.proc.poll()))
    return res


def chain_json(chk, res, what, start_tid):
    """The chain of a diag-chain -J Result that starts at start_tid (schema checked)."""
    doc = res.json(chk)
    if doc is None:
        return None
    chk.eq(doc.get("schema"), "diag-chain/1", "%s: schema" % what)
    ch = chain_with_start(doc, start_tid)
    chk.check(ch is not None, "%s: no chain starts at tid %d\n%s" % (what, start_tid, res.describe()))
    return ch


def chain_expect_path(chk, ch, what, threads, kinds, end, endpoint=False):
    """The path from the start to the root node: thread nodes (pid, tid) in order (a
    tid of None matches any thread of pid), the edge kinds along it, and the root's
    end kind; endpoint: the root is an endpoint node after the last thread."""
    path = chain_path(ch)
    desc = "%s: path %s" % (what, [(n.get("kind"), n.get("pid"), n.get("tid"), e.get("kind") if e else None,
                                    n.get("end")) for n, e in path])
    tnodes = [n for n, _ in path if n.get("kind") == "thread"]
    got = [(n.get("pid"), n.get("tid")) for n in tnodes]
    ok = len(got) == len(threads) and all(g[0] == w[0] and (w[1] is None or g[1] == w[1])
                                          for g, w in zip(got, threads))
    chk.check(ok, "%s; want threads %s" % (desc, threads))
    chk.eq([e.get("kind") for _, e in path[1:]], kinds, "%s; edge kinds" % desc)
    if path:
        root = path[-1][0]
        chk.eq(root.get("end"), end, "%s; end of the root node" % desc)
        chk.eq(root.get("kind"), "endpoint" if endpoint else "thread", "%s; kind of the root node" % desc)
        chk.eq(root.get("id"), ch.get("root"), "%s; root id" % desc)
        for n, _ in path[:-1]:
            chk.eq(n.get("end"), "none", "%s; node %s on the way is not an end" % (desc, n.get("id")))
    return path


def chain_verdict_has(chk, ch, what, *needles):
    """The verdict starts with "root: " and mentions every needle; returns it."""
    v = (ch or {}).get("verdict") or ""
    chk.check(v.startswith("root: "), "%s: verdict %r does not start with 'root: '" % (what, v))
    for s in needles:
        chk.check(s in v, "%s: verdict %r does not mention %r" % (what, v, s))
    return v


def chain_text_root(chk, fx, what, start, rc, *needles, blocked=()):
    """Text output of `diag-chain START`: a "root: " line mentioning every needle."""
    res = diag_chain_checked(chk, fx, what + " (text)", start, rc=rc, blocked=blocked)
    roots = [l for l in res.out.splitlines() if l.startswith("root: ")]
    chk.check(len(roots) >= 1, "%s (text): no 'root: ' line\n%s" % (what, res.describe()))
    for s in needles:
        chk.check(any(s in l for l in roots), "%s (text): root line does not mention %r: %r" % (what, s, roots))


def chain_summary(doc):
    """One line per chain of a diag-chain -J document, for failure messages: start
    tids, then (pid, tid, end) of each node."""
    return "\n".join("starts %s: %s" % ([t.get("tid") for t in ch.get("threads", [])],
                                        [(n.get("pid"), n.get("tid"), n.get("end")) for n in ch.get("nodes", [])])
                     for ch in (doc or {}).get("chains", []))


def chain_story(doc, tid):
    """Where thread tid's wait chain is in a diag-chain document: a chain starting at
    tid, or else (--all folds a chain into an earlier one that passes through its
    start, e.g. a test harness waiting for its children) the node of tid, followed,
    in another chain. Returns (chain, the nodes from tid's node down in depth-first
    order, a "seen" node replaced by the subtree it refers to), or (None, [])."""
    for ch in sorted((doc or {}).get("chains", []), key=lambda c: chain_with_start({"chains": [c]}, tid) is None):
        nodes = ch.get("nodes", [])
        first = {}
        for n in nodes:
            if n.get("kind") == "thread" and n.get("end") not in ("seen", "deadlock", "capped", "gone"):
                first.setdefault(n.get("tid"), n)
        if tid not in first:
            continue
        out, done = [], set()

        def visit(n):
            if n.get("end") == "seen" and n.get("tid") in first:
                n = first[n.get("tid")]
            if n.get("id") in done:
                return
            done.add(n.get("id"))
            out.append(n)
            for m, _ in chain_children(ch, n.get("id")):
                if m is not None:
                    visit(m)
        visit(first[tid])
        return ch, out
    return None, []


# ---------------------------------------------------------------- diag-core tests

def setup_core(description):
    """setup() for the diag-core tests: also --diag-core and --corefix."""
    return setup(description, "diag_core", "corefix")


def diag_core(*args, timeout=180):
    return run_bounded([need_path("diag_core")] + list(args), timeout=timeout)


def corefix_word(off):
    """What corefix's heap holds at byte offset off (a multiple of 8): splitmix64 of
    the offset, low bit set (see tests/fixtures/corefix.c)."""
    m = (1 << 64) - 1
    z = (off + 0x9e3779b97f4a7c15) & m
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & m
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & m
    return (z ^ (z >> 31)) | 1


class CoreFixture:
    """corefix in its own process group: its JSON line is `info`, commands go to its
    stdin (command()). On close, SIGKILL to the group (its children die with it)."""

    def __init__(self, args=(), ready_timeout=120):
        self.args = [str(a) for a in args]
        self.ready_timeout = ready_timeout
        self.proc = None
        self.buf = b""
        self.info = {}

    def __enter__(self):
        argv = [need_path("corefix")] + self.args
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True, preexec_fn=_child_setup, cwd="/")
        try:
            line = self._readline(self.ready_timeout)
            if line is None:
                rc = self.proc.wait()
                if rc == EXIT_SKIP:
                    skip("fixture corefix skipped")
                harness_error("fixture `%s` exited (%s) before its ready line" % (" ".join(argv), rc))
            if line.startswith("SKIP "):
                self.proc.wait()
                skip("fixture corefix: " + line[5:])
            self.info = json.loads(line)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _readline(self, timeout):
        import selectors
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    harness_error("corefix %d did not answer within %ss" % (self.proc.pid, timeout))
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def close(self):
        if self.proc:
            kill_group(self.proc)
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass

    @property
    def pid(self):
        return self.info["pid"]

    def alive(self):
        return self.proc.poll() is None

    def tids(self):
        return sorted(t["tid"] for t in self.info["threads"])

    def function_of(self, tid):
        return {t["tid"]: t["function"] for t in self.info["threads"]}.get(tid)

    def role_tids(self, *roles):
        return sorted(t["tid"] for t in self.info["threads"] if t["role"] in roles)

    def command(self, cmd, timeout=120):
        """Send one command, return its JSON answer (None if the fixture is gone)."""
        try:
            self.proc.stdin.write(cmd.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return None
        line = self._readline(timeout)
        return json.loads(line) if line else None

    def snapshot(self):
        """What must not change across a dump: memory hashes, children, SIGCHLDs;
        and the code (for a message saying where it changed)."""
        return {"checksum": self.command("checksum"), "children": self.command("children"),
                "code": code_image(self.pid)}

    def beats_advance(self, ticks=5, timeout=2.0):
        """True if the heartbeat ticks `ticks` times within `timeout` s."""
        first = self.command("gap")
        deadline = time.monotonic() + timeout
        while first and time.monotonic() < deadline:
            time.sleep(0.05)
            cur = self.command("gap")
            if cur and cur["beats"] >= first["beats"] + ticks:
                return True
        return False

    def check_unharmed(self, chk, before, what, settle=3.0):
        """Do no harm: within `settle` s, no thread stopped or traced and no extra or
        zombie child; then the heartbeat ticks and memory, children and the SIGCHLD
        count are as in `before` (a snapshot())."""
        ok = chk.check(self.alive(), "%s: the fixture died (%s)" % (what, self.proc.poll()))
        if not ok:
            return False
        deadline = time.monotonic() + settle
        while True:
            bad = stopped_or_traced(self.pid)
            kids = children_of(self.pid)
            want = sorted(before["children"]["children"])
            if (not bad and kids == (want, [])) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        ok &= chk.check(not bad, "%s: fixture left stopped/traced: %s" % (what, bad[:10]))
        ok &= chk.eq(kids, (want, []), "%s: children of the fixture in /proc (children, zombies)" % what)
        ok &= chk.check(self.beats_advance(), "%s: the fixture's heartbeat does not tick" % what)
        now = self.snapshot()
        ok &= chk.eq(now["checksum"], before["checksum"], "%s: memory hashes of the fixture%s"
                     % (what, code_changes(before["code"], now["code"])))
        ok &= chk.eq(now["children"], before["children"], "%s: the fixture's own view of its children" % what)
        return ok


def children_of(pid):
    """(sorted children of pid from /proc/PID/task/*/children, those in state Z)."""
    kids = []
    for tid in task_ids(pid):
        kids += [int(x) for x in (read_file("/proc/%d/task/%d/children" % (pid, tid)) or "").split()]
    return sorted(kids), sorted(k for k in kids if task_state(k, k) == "Z")


def disk_usage(path):
    return os.stat(path).st_blocks * 512


def data_in_range(path, start, end):
    """Bytes of path in [start, end) that are data, not holes (SEEK_DATA/SEEK_HOLE)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        total, pos = 0, start
        while pos < end:
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break       # ENXIO: no data after pos
            if d >= end:
                break
            h = min(os.lseek(fd, d, os.SEEK_HOLE), end)
            total += h - d
            pos = h
        return total
    finally:
        os.close(fd)


class ElfCore:
    """A minimal reader of an x86-64 ELF core (struct only): program headers, notes,
    memory by address. `error` says why the file is not a well-formed core."""

    PT_LOAD, PT_NOTE = 1, 4

    def __init__(self, path):
        import struct
        self.path = path
        self.size = os.path.getsize(path)
        self.loads, self.notes, self.error = [], [], None
        with open(path, "rb") as f:
            eh = f.read(64)
            if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
                self.error = "not an ELF64 little-endian file"
                return
            e_type, = struct.unpack_from("<H", eh, 16)
            phoff, = struct.unpack_from("<Q", eh, 32)
            phentsize, phnum = struct.unpack_from("<HH", eh, 54)
            if e_type != 4:
                self.error = "e_type %d, not ET_CORE" % e_type
                return
            f.seek(phoff)
            ph = f.read(phentsize * phnum)
            for i in range(phnum):
                p_type, p_flags, off, vaddr, _, filesz, memsz, _ = struct.unpack_from("<IIQQQQQQ", ph, i * phentsize)
                if off + filesz > self.size:
                    self.error = "segment %d ends at %d, past the end of the file (%d)" % (i, off + filesz, self.size)
                if p_type == self.PT_LOAD:
                    self.loads.append((vaddr, memsz, off, filesz, p_flags))
                elif p_type == self.PT_NOTE:
                    f.seek(off)
                    self._parse_notes(f.read(filesz), struct)

    def _parse_notes(self, data, struct):
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            pos += 12
            name = data[pos:pos + namesz].rstrip(b"\0").decode(errors="replace")
            pos += (namesz + 3) & ~3
            desc = data[pos:pos + descsz]
            pos += (descsz + 3) & ~3
            self.notes.append((name, ntype, desc))

    def prstatus_pids(self):
        """pr_pid of every NT_PRSTATUS (offset 32 in struct elf_prstatus)."""
        import struct
        return sorted(struct.unpack_from("<i", d, 32)[0] for _, t, d in self.notes if t == 1 and len(d) >= 36)

    def load_at(self, addr):
        for seg in self.loads:
            if seg[0] <= addr < seg[0] + seg[1]:
                return seg
        return None

    def read(self, addr, n):
        """n bytes at addr from the file, or None if the core has no data there."""
        seg = self.load_at(addr)
        if not seg or addr + n > seg[0] + seg[3]:
            return None
        with open(self.path, "rb") as f:
            f.seek(seg[2] + addr - seg[0])
            return f.read(n)

    def u64(self, addr):
        b = self.read(addr, 8)
        return int.from_bytes(b, "little") if b and len(b) == 8 else None


def check_heap_words(chk, core, fx, what, count=32, rnd=None):
    """count words of the fixture's heap (first, last, random) read from an ElfCore
    equal corefix_word(offset). Returns True if all did."""
    import random
    rnd = rnd or random.Random(fx.pid)
    base, size = fx.info["heap"]["addr"], fx.info["heap"]["size"]
    offs = [0, size - 8] + [rnd.randrange(size // 8) * 8 for _ in range(count - 2)]
    bad = [(hex(base + o), core.u64(base + o), corefix_word(o)) for o in offs
           if core.u64(base + o) != corefix_word(o)]
    return chk.check(not bad, "%s: heap words in the core differ (addr, got, want): %s" % (what, bad[:5]))


def _maps(pid):
    out = []
    for line in (read_file("/proc/%d/maps" % pid) or "").splitlines():
        f = line.split(None, 5)
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        out.append({"lo": lo, "hi": hi, "perms": f[1], "inode": int(f[4]), "path": f[5] if len(f) > 5 else ""})
    return out


def _smaps_fields(pid):
    """{start address: {field: kB or VmFlags list}} from /proc/PID/smaps."""
    out, cur = {}, None
    for line in (read_file("/proc/%d/smaps" % pid) or "").splitlines():
        m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
        if m:
            cur = out.setdefault(int(m.group(1), 16), {})
            continue
        k, _, v = line.partition(":")
        if cur is None:
            continue
        if k == "VmFlags":
            cur[k] = v.split()
        elif v.strip().endswith("kB"):
            cur[k] = int(v.split()[0])
    return out


def resident_nonzero(pid, page=4096):
    """Bytes of the process's memory that a core with the default coredump_filter
    (0x33) must hold as data: pages present (or swapped) and not all zero, in the
    mappings the kernel dumps: anonymous ones, and file-backed private ones the
    process wrote to (all of such a mapping, as the kernel dumps them whole); not
    MADV_DONTDUMP, I/O or shared file mappings. Read from pagemap and
    /proc/PID/mem. Returns (bytes, {path or "[anon]": bytes})."""
    zero = bytes(page)
    smaps = _smaps_fields(pid)
    total, per = 0, {}
    with open("/proc/%d/pagemap" % pid, "rb") as pm, open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for m in _maps(pid):
            sm = smaps.get(m["lo"], {})
            flags = sm.get("VmFlags", [])
            if "dd" in flags or "io" in flags or m["perms"][0] != "r" or m["path"] in ("[vvar]", "[vsyscall]"):
                continue
            shared = m["perms"][3] == "s"
            anon = m["inode"] == 0
            if not anon and (shared or sm.get("Anonymous", 0) == 0):
                continue
            n = 0
            if not anon:
                n = m["hi"] - m["lo"]            # dumped whole, file pages included
            else:
                pm.seek(m["lo"] // page * 8)
                ents = pm.read((m["hi"] - m["lo"]) // page * 8)
                addr = m["lo"]
                for i in range(0, len(ents), 8):
                    e = int.from_bytes(ents[i:i + 8], "little")
                    if e >> 62:                   # present or swapped
                        try:
                            mem.seek(addr)
                            data = mem.read(page)
                        except OSError:
                            data = zero
                        if data != zero:
                            n += page
                    addr += page
            key = m["path"] or "[anon]"
            per[key] = per.get(key, 0) + n
            total += n
    return total, per


def gdb_command(target, cmds, core=None, timeout=180):
    """gdb -batch on a core (target = the executable) or attached to pid target."""
    argv = [which("gdb"), "-nx", "-batch", "-iex", "set debuginfod enabled off", "-ex", "set pagination off",
            "-ex", "set width 0"]
    for c in cmds:
        argv += ["-ex", c]
    argv += [target, core] if core else ["-p", target]
    return run(argv, timeout=timeout)


GDB_REG = re.compile(r"^(rip|rsp)\s+(0x[0-9a-f]+)")
GDB_WORD = re.compile(r"^(0x[0-9a-f]+)(?: <[^>]*>)?:\s+(0x[0-9a-f]+)\s*$")
GDB_NOMEM = re.compile(r"Cannot access memory at address (0x[0-9a-f]+)")


def gdb_registers(text):
    """{lwp: {"rip": int, "rsp": int}} from `thread apply all info registers rip rsp`."""
    from test_stack_oracle import GDB_THREAD
    out, cur = {}, None
    for line in text.splitlines():
        m = GDB_THREAD.match(line)
        if m:
            cur = out.setdefault(int(m.group(1)), {})
            continue
        m = GDB_REG.match(line)
        if m and cur is not None:
            cur[m.group(1)] = int(m.group(2), 16)
    return out


def gdb_words(text):
    """{address: value or None (Cannot access memory)} from `x/gx ADDR` lines."""
    out = {}
    for line in text.splitlines():
        m = GDB_WORD.match(line.strip())
        if m:
            out[int(m.group(1), 16)] = int(m.group(2), 16)
            continue
        m = GDB_NOMEM.search(line)
        if m:
            out[int(m.group(1), 16)] = None
    return out


def backtraces(text, tool="gdb"):
    """{lwp: [function, ...]} from gdb's `thread apply all bt` or eu-stack's output
    (the parser of test_stack_oracle)."""
    import test_stack_oracle as so
    if tool == "gdb":
        return so.parse_bt(text, so.GDB_THREAD, so.GDB_FRAME)
    return so.parse_bt(text, so.EU_THREAD, so.EU_FRAME)


def corefix_functions(names):
    return [n for n in names if n and n.startswith("corefix_")]


def readelf_notes(core):
    """Note type names as `eu-readelf -n` lists them, counted: {"PRSTATUS": n, ...}."""
    r = run([which("eu-readelf"), "-n", core], timeout=120)
    out = {}
    for line in r.out.splitlines():
        m = re.match(r"^\s+(CORE|LINUX)\s+\d+\s+(\S+)\s*$", line)
        if m:
            out[m.group(2)] = out.get(m.group(2), 0) + 1
    return out, r


def readelf_loads(core):
    """[(vaddr, filesz, memsz)] of the PT_LOAD headers `eu-readelf -l` lists."""
    r = run([which("eu-readelf"), "-l", core], timeout=120)
    out = []
    for line in r.out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and len(f) >= 6:
            out.append((int(f[2], 16), int(f[4], 16), int(f[5], 16)))
    return out, r


def cpu_has_xsave():
    return " xsave" in (read_file("/proc/cpuinfo") or "")



def gdb_check_core(chk, fx, core, what, heap_words=8, addrs=()):
    """gdb on a core of corefix fx: every thread of the fixture, each with its
    fixture function in its backtrace; corefix_marker and heap_words heap words
    (first, last, random) as the fixture holds them. Returns {address: value or
    None} of x/gx at addrs (other words the caller checks)."""
    import random
    rnd = random.Random(fx.pid)
    heap = fx.info["heap"]
    offs = ([0, heap["size"] - 8] + [rnd.randrange(heap["size"] // 8) * 8 for _ in range(heap_words - 2)]
            if heap_words else [])
    cmds = ["thread apply all bt", "print/x corefix_marker"]
    cmds += ["x/gx %#x" % (heap["addr"] + o) for o in offs] + ["x/gx %#x" % a for a in addrs]
    g = gdb_command(need_path("corefix"), cmds, core=core)
    chk.check(g.rc == 0, "%s: gdb exit %s\n%s" % (what, g.rc, g.describe()[-3000:]))
    bt = backtraces(g.out)
    chk.eq(sorted(bt), fx.tids(), "%s: gdb: LWPs in the core" % what)
    for tid in fx.tids():
        chk.eq(corefix_functions(bt.get(tid, [])), [fx.function_of(tid)],
               "%s: gdb: fixture functions of thread %d (frames %s)" % (what, tid, bt.get(tid)))
    want = "$1 = %#x" % fx.info["marker"]["value"]
    chk.check(want in g.out, "%s: gdb: print/x corefix_marker: want %r\n%s" % (what, want, g.describe()[-2000:]))
    words = gdb_words(g.out + g.err)
    bad = [(hex(o), words.get(heap["addr"] + o)) for o in offs if words.get(heap["addr"] + o) != corefix_word(o)]
    chk.check(not bad, "%s: gdb: heap words (offset, got) differ from the fixture's: %s" % (what, bad[:5]))
    return {a: words.get(a, "missing") for a in addrs}


def code_image(pid):
    """{(start, path): bytes} of every readable executable mapping, via /proc/PID/mem."""
    out = {}
    try:
        with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
            for m in _maps(pid):
                if m["perms"][0] == "r" and m["perms"][2] == "x":
                    try:
                        mem.seek(m["lo"])
                        out[(m["lo"], m["path"])] = mem.read(m["hi"] - m["lo"])
                    except OSError:
                        pass
    except OSError:
        pass
    return out


def code_changes(before, now):
    """'' or '; code changed: ...' naming each changed range of a code_image()."""
    out = []
    for k in sorted(set(before) | set(now)):
        a, b = before.get(k), now.get(k)
        if a == b:
            continue
        if a is None or b is None or len(a) != len(b):
            out.append("mapping %#x %s %s" % (k[0], k[1], "appeared" if a is None else "gone or resized"))
            continue
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        out.append("%s+%#x..%#x (mapping at %#x): was %s, now %s" % (
            os.path.basename(k[1]) or "[anon]", diff[0], diff[-1] + 1, k[0],
            a[diff[0]:diff[-1] + 1][:32].hex(), b[diff[0]:diff[-1] + 1][:32].hex()))
    return "; code changed: " + "; ".join(out) if out else ""


def dump_leftovers(target, keep=()):
    """Processes a dump of pid target may leave behind: diag-core processes for it
    (their last argument is the pid: a guard keeps diag-core's command line), and
    processes of target's process group besides target and keep (copies of its
    image forked inside it). Pids, sorted."""
    left = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in keep or int(d) == target:
            continue
        argv = (read_file("/proc/%s/cmdline" % d) or "").split("\0")[:-1]
        st = task_stat(int(d), int(d))
        if argv and os.path.basename(argv[0]) == "diag-core" and argv[-1] == str(target):
            left.append(int(d))
        elif st and len(st[2]) > 1 and st[2][1] == str(target) and st[1] != "Z":
            left.append(int(d))
    return sorted(left)


# ---------------------------------------------------------------- shared memory

class SysvSegment:
    """A System V shared memory segment of `size` bytes with key `key`, created
    (mode 0600) for the test and removed on exit: `with SysvSegment(key) as shmid`.
    shmid is None when shmget failed (self.error says why)."""
    IPC_CREAT, IPC_RMID = 0o1000, 0

    def __init__(self, key, size=4096):
        self.key, self.size, self.shmid, self.error = key, size, None, None
        self._libc = ctypes.CDLL(None, use_errno=True)

    def __enter__(self):
        shmid = self._libc.shmget(self.key, self.size, self.IPC_CREAT | 0o600)
        if shmid < 0:
            self.error = "shmget: " + os.strerror(ctypes.get_errno())
        else:
            self.shmid = shmid
        return self.shmid

    def __exit__(self, *exc):
        if self.shmid is not None:
            self._libc.shmctl(self.shmid, self.IPC_RMID, None)
        return False


# ---------------------------------------------------------------- diag-fds: partial results

def fds_unreadable():
    """Pids (kernel threads and zombies aside) whose /proc/PID/fd this process may not list: a
    whole-system diag-fds run cannot show their fds and exits 4 (partial)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            # listing may be allowed where reading the links is not (a process
            # that is not dumpable): try both, as diag-fds does
            for n in os.listdir("/proc/%s/fd" % p)[:1]:
                os.readlink("/proc/%s/fd/%s" % (p, n))
        except PermissionError:
            st = task_stat(int(p), int(p))
            if st and st[1] not in "ZX" and not is_kernel_thread(int(p)):
                out.append(int(p))
        except OSError:
            pass
    return out


def fds_status(complete):
    """The exit status of a whole-system diag-fds run (no -p) that would exit
    `complete` (0 shown, 1 nothing matched) if it could read every process: 4 when
    some process cannot be read here (and says so on stderr)."""
    return 4 if complete in (0, 1) and fds_unreadable() else complete


# ---------------------------------------------------------------- the stop window (guard.h)

WINDOW_MARK = b"diag-test-window: "


def window_env(hold_ms, fd):
    """Environment for a tool that marks its stop window on fd and holds it open
    hold_ms once the target is stopped (DIAG_TEST_WINDOW_HOLD_MS, diag-stack(1))."""
    env = tool_env()
    env["DIAG_TEST_WINDOW_HOLD_MS"] = str(hold_ms)
    env["DIAG_TEST_WINDOW_FD"] = str(fd)
    return env


def window_marks(fd, buf, timeout):
    """Marker lines read from fd until one arrives or timeout, as word lists
    (["stopped", PID, "watchdog", WPID], ["release", PID]): (lines, rest of buf)."""
    import select
    lines = []
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(WINDOW_MARK):
                lines.append(line[len(WINDOW_MARK):].decode(errors="replace").split())
        if lines or not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            return lines, buf
        chunk = os.read(fd, 4096)
        if not chunk:
            return lines, buf
        buf += chunk


# ---------------------------------------------------------------- CPython targets

PYSVC = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pysvc.py"))
SPINMOD = os.path.join(os.path.dirname(PYSVC), "spinmod.py")


def pysvc_markers():
    """{"spin": line, ...} from the "# MARK: name" comments of pysvc.py and spinmod.py."""
    out = {}
    for path in (PYSVC, SPINMOD):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                m = re.search(r"# MARK: (\S+)", line)
                if m:
                    out[m.group(1)] = n
    return out


def start_pysvc(python):
    """Start pysvc.py under python: (Popen with stdin/stdout pipes, {thread name: tid})."""
    p = subprocess.Popen([python, PYSVC], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                         start_new_session=True)
    ready = p.stdout.readline().strip()
    if not ready.startswith("READY pid="):
        kill_group(p)
        harness_error("pysvc.py did not start under %s: %r" % (python, ready))
    tids = {}
    for line in iter(p.stdout.readline, "END\n"):
        m = re.match(r"THREAD (\S+) tid=(\d+)", line.strip())
        if not m:
            kill_group(p)
            harness_error("pysvc.py did not list its threads: %r" % line)   # also at its end ("")
        tids[m.group(1)] = int(m.group(2))
    return p, tids


def pysvc_dump(p):
    """The fixture's own view: {tid: [[qualname, file, line], ...]} innermost first."""
    p.stdin.write("dump\n")
    p.stdin.flush()
    line = p.stdout.readline().strip()
    if not line.startswith("DUMP "):
        harness_error("pysvc.py did not dump its frames: %r" % line)
    return {int(k): [(q, os.path.realpath(f), n) for q, f, n in v] for k, v in json.loads(line[5:]).items()}


DEBIAN_PYTHON = "/usr/bin/python3.11"


def need_debian_python():
    """Debian's CPython (python3.11), or skip."""
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        skip("%s is not installed" % DEBIAN_PYTHON)
    return DEBIAN_PYTHON


def start_in_pidns(unshare, argv, timeout=120):
    """argv as PID 1 of a new pid namespace (unshare --fork --pid --mount-proc,
    killed with unshare); returns (the unshare Popen, argv's pid as seen from
    here), the pid None if it did not start."""
    p = subprocess.Popen([unshare, "--fork", "--pid", "--mount-proc", "--kill-child", "--"] + argv,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, cwd="/")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        kids = (read_file("/proc/%d/task/%d/children" % (p.pid, p.pid)) or "").split()
        if kids:
            return p, int(kids[0])
        time.sleep(0.01)
    return p, None
