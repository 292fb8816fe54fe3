# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the diag-snap tests (python3 stdlib only): running the tool, the
bundle's layout as the tool documents it (docs/diag-snap-json.md), what a temporary
directory of an unfinished bundle looks like, and the children a run may leave."""
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import time

import diagtest as dt

# A bundle is written (possibly with some part failed, timed out or missing): 0 or 4.
BUNDLE_RC = (0, 4)
# The temporary directory a bundle is built in, next to DIR: ".DIR.tmp-XXXXXX".
TMP_RE = re.compile(r"^\..*\.tmp-[A-Za-z0-9]{6}$")
DEFAULT_RE = re.compile(r"^diag-snap\.[^/]+\.\d{8}-\d{6}$")


def setup(description, *more):
    """dt.setup() with the paths the diag-snap tests take."""
    return dt.setup(description, "diag_snap", "fusehang", "chainfix", "forkpool", "rereader", *more)


def snap(*args, timeout=30, env=None, cwd="/"):
    """diag-snap ARGS, text output, bounded (a run that does not end is described)."""
    if env is None and cwd == "/":
        return dt.run_bounded([dt.need_path("diag_snap")] + list(args), timeout=timeout)
    return dt.run([dt.need_path("diag_snap")] + list(args), timeout=timeout, env=env, cwd=cwd)


def snap_bytes(args, timeout=30, env=None):
    """diag-snap ARGS with stdout read as bytes: (rc, stdout bytes, stderr text, seconds)."""
    argv = [dt.need_path("diag_snap")] + [str(a) for a in args]
    start = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, env=env or dt.tool_env(),
                           cwd="/", timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", e.stderr or b""
    return rc, out, err.decode(errors="replace"), time.monotonic() - start


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _keyed(value, names):
    """A list of objects named by one of `names`, or an object keyed by name, as
    {name: object}."""
    if isinstance(value, dict):
        return {k: (v if isinstance(v, dict) else {}) for k, v in value.items()}
    out = {}
    for e in value if isinstance(value, list) else []:
        name = next((e.get(n) for n in names if isinstance(e, dict) and e.get(n)), None)
        if name:
            out[name] = e
    return out


def index_files(idx):
    """{relative path: entry} of the files index.json lists under "files" (objects
    naming the file by "path" or "file", or an object keyed by path)."""
    return _keyed((idx or {}).get("files"), ("path", "file", "name"))


def index_parts(idx):
    """{part name: entry} of index.json's "parts" (objects named by "name" or "part",
    or an object keyed by name)."""
    return _keyed((idx or {}).get("parts"), ("name", "part"))


def as_root_with(name, what):
    """The path of program `name` when the test runs as root and it is installed;
    otherwise None, after saying that `what` is not checked."""
    if os.geteuid() != 0:
        dt.log("%s: not root, not checked" % what)
        return None
    p = shutil.which(name)
    if not p:
        dt.log("%s: %s not installed, not checked" % (what, name))
    return p


def need_fuse():
    """Skip unless /dev/fuse exists and the test runs as root (to mount fusehang)."""
    dt.need_path("fusehang")
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")


def walk(root):
    """(relative path, lstat) of everything under root, root itself excluded."""
    out = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out.append((os.path.relpath(p, root), os.lstat(p)))
    return out


def check_bundle(chk, path, what):
    """The layout every bundle has: DIR 0700, subdirectories 0700, regular files 0600
    and nothing else; index.json (tool diag-snap) and summary.txt; every file in the
    index present with its size; every file present listed; each .json parses.
    Returns the parsed index (or None)."""
    st = os.lstat(path) if os.path.lexists(path) else None
    if not chk.check(st and stat.S_ISDIR(st.st_mode), "%s: the bundle %s is a directory" % (what, path)):
        return None
    chk.eq(oct(stat.S_IMODE(st.st_mode)), oct(0o700), "%s: mode of the bundle directory" % what)
    for rel, s in walk(path):
        if stat.S_ISDIR(s.st_mode):
            chk.eq(oct(stat.S_IMODE(s.st_mode)), oct(0o700), "%s: mode of directory %s" % (what, rel))
        elif stat.S_ISREG(s.st_mode):
            chk.eq(oct(stat.S_IMODE(s.st_mode)), oct(0o600), "%s: mode of file %s" % (what, rel))
        else:
            chk.fail("%s: %s in the bundle is neither a directory nor a regular file (mode %o)"
                     % (what, rel, s.st_mode))
    idx = load_json(os.path.join(path, "index.json"))
    if not chk.check(isinstance(idx, dict), "%s: index.json is a JSON object" % what):
        return None
    chk.eq(idx.get("tool"), "diag-snap", "%s: index.json names the tool (the mark retention goes by)" % what)
    chk.check(os.path.isfile(os.path.join(path, "summary.txt")), "%s: summary.txt exists" % what)
    files = index_files(idx)
    chk.check(files, "%s: index.json lists the files" % what)
    parts = index_parts(idx)
    chk.check(parts, "%s: index.json lists the parts" % what)
    for name, e in parts.items():
        chk.check(e.get("status") in ("ok", "failed", "timed-out", "not-built", "skipped"),
                  "%s: part %s has a status: %r" % (what, name, e))
    # A file written by a part that failed or ran out of time may be cut short (the
    # index says so); one written by a tool has the tool's own JSON, which may name no
    # schema. Every other JSON file parses and its schema is in the index.
    cut = {e.get("output") for e in parts.values() if e.get("status") not in ("ok", None)}
    by_tool = {e.get("output") for e in parts.values() if e.get("kind") == "tool"}
    present = {rel: s for rel, s in walk(path) if stat.S_ISREG(s.st_mode)}
    for rel, e in files.items():
        if not chk.check(rel in present, "%s: %s listed in the index exists" % (what, rel)):
            continue
        if "bytes" in e and rel != "index.json":
            chk.eq(e["bytes"], present[rel].st_size, "%s: bytes of %s in the index" % (what, rel))
        if rel.endswith(".json") and rel not in cut:
            chk.check(load_json(os.path.join(path, rel)) is not None, "%s: %s parses as JSON" % (what, rel))
            if rel not in by_tool:
                chk.check(e.get("schema"), "%s: the index gives the schema of %s: %r" % (what, rel, e))
    for rel in present:
        if rel != "index.json":
            chk.check(rel in files, "%s: %s is listed in index.json" % (what, rel))
    return idx


def partial(idx):
    """True when the index says some part failed or timed out, or something is
    missing: the exit status is then 4."""
    bad = [n for n, e in index_parts(idx).items() if e.get("status") in ("failed", "timed-out")]
    return bool(bad or (idx or {}).get("missing"))


def leftovers(parent):
    """Names in parent that look like a bundle's temporary directory."""
    try:
        return sorted(n for n in os.listdir(parent) if TMP_RE.match(n) or ".tmp-" in n)
    except OSError:
        return []


def own_children(exclude=()):
    """Processes whose parent is this test (it is the subreaper: orphans of a killed
    run come here): [(pid, comm)]."""
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in exclude:
            continue
        st = dt.task_stat(int(d), int(d))
        if st and int(st[2][0]) == me:
            out.append((int(d), st[0]))
    return out


def no_children_left(chk, what, exclude=(), wait=2.0):
    """After a run: no process of it is left (children reparented to the test, which is
    a subreaper, are reaped; one still running after `wait` s is a failure)."""
    deadline = time.monotonic() + wait
    while True:
        dt.reap_orphans()
        left = [c for c in own_children(exclude) if dt.task_state(c[0], c[0]) != "Z"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    chk.check(not left, "%s: processes left behind: %r" % (what, left))
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    dt.reap_orphans()


def tar_members(data):
    """The members of a tar stream: {name: (TarInfo, bytes or None)}; raises on a bad stream."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf.getmembers():
            body = tf.extractfile(m).read() if m.isfile() else None
            out[m.name.rstrip("/")] = (m, body)
    return out


def strip_top(name):
    """A tar member's path inside the bundle (the stream may put it under a top directory)."""
    parts = name.split("/", 1)
    return parts[1] if len(parts) == 2 else ""


def run_checks(description, name, *checks):
    """A diag-snap test's main: the paths, the test as subreaper, then each
    check(chk, tmp) in one temporary directory, then no process of any run left."""
    setup(description)
    dt.need_path("diag_snap")
    dt.set_subreaper()
    chk = dt.Checker(name)
    with tempfile.TemporaryDirectory(prefix="diag-%s." % name) as tmp:
        for check in checks:
            check(chk, tmp)
        no_children_left(chk, "after every run")
    chk.finish()


# ---------------------------------------------------------------- scenarios in a cgroup

def _mounts():
    """{"cgroup2": mount point or None, v1 controller: its first mount point}."""
    out = {"cgroup2": None}
    for line in (dt.read_file("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if len(f) < 5 or len(r) < 3 or "\\" in f[4]:
            continue
        if r[0] == "cgroup2" and not out["cgroup2"]:
            out["cgroup2"] = f[4]
        elif r[0] == "cgroup":
            for o in r[2].split(","):
                out.setdefault(o, f[4])
    return out


def cgroup_controller(ctrl):
    """Where controller ctrl ("memory" or "io") can be used: (2, cgroup2 mount) when
    the cgroup2 root offers it, else (1, its v1 mount; blkio for io); None if neither."""
    m = _mounts()
    v2 = m["cgroup2"]
    if v2 and ctrl in (dt.read_file(os.path.join(v2, "cgroup.controllers")) or "").split():
        return 2, v2
    v1 = m.get("blkio" if ctrl == "io" else ctrl)
    return (1, v1) if v1 else None


def disk_of(path):
    """(MAJ:MIN of the whole disk under path's file system, its /sys/block name), or
    None when path is not on a block device (tmpfs, overlay, a network file system)."""
    st = os.stat(path)
    dev = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    sysdev = "/sys/dev/block/" + dev
    if not os.path.exists(sysdev):
        return None
    real = os.path.realpath(sysdev)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
        dev = (dt.read_file(os.path.join(real, "dev")) or "").strip()
    return dev, os.path.basename(real)


def disk_dir(base=None):
    """A directory on a real disk for the test's files (TMPDIR, then /var/tmp), or
    skip: the scenario needs the page cache and the block layer, not tmpfs."""
    for d in ([base] if base else []) + [tempfile.gettempdir(), "/var/tmp"]:
        if d and os.path.isdir(d) and disk_of(d):
            return d
    dt.skip("no directory on a block device (TMPDIR and /var/tmp are not)")


class TestCgroup:
    """A cgroup of the test's own, made at the root of each hierarchy it needs (v2, or
    v1's memory and blkio), for the memory controller (with `memory` bytes as its
    limit and no swap) and, with io=True, the IO one: `with TestCgroup(...) as cg`.
    On exit, whatever the outcome, every process in it is killed and it is removed.
    Skips (77) when not root or the controllers are not there."""

    def __init__(self, name, memory=None, io=False):
        dt.need_root("making a cgroup")
        self.name = "diag-test-%s-%d" % (name, os.getpid())
        self.memory, self.io = memory, io
        self.ctrl = {}
        for c in ["memory"] + (["io"] if io else []):
            where = cgroup_controller(c)
            if not where:
                dt.skip("no %s controller (cgroup v2 or v1) on this machine" % c)
            self.ctrl[c] = (where[0], os.path.join(where[1], self.name))
        self.dirs = sorted({d for _, d in self.ctrl.values()})

    @property
    def path(self):
        """The cgroup's path as /proc/PID/cgroup and diag-snap show it."""
        return "/" + self.name

    def version(self, ctrl="memory"):
        return self.ctrl[ctrl][0]

    def file(self, ctrl, name):
        """The path of the controller's file (v1 names where v1 is used)."""
        return os.path.join(self.ctrl[ctrl][1], name)

    def read(self, ctrl, name):
        return dt.read_file(self.file(ctrl, name))

    def write(self, ctrl, name, value):
        with open(self.file(ctrl, name), "w") as f:
            f.write(str(value))

    def __enter__(self):
        try:
            for ver, d in self.ctrl.values():
                if ver == 2:
                    root = os.path.dirname(d)
                    want = [c for c in self.ctrl if c not in (dt.read_file(os.path.join(root, "cgroup.subtree_control")) or "").split()]
                    for c in want:
                        with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                            f.write("+" + c)
            for d in self.dirs:
                os.mkdir(d, 0o755)
            if self.memory:
                if self.version() == 2:
                    self.write("memory", "memory.max", self.memory)
                    if os.path.exists(self.file("memory", "memory.swap.max")):
                        self.write("memory", "memory.swap.max", 0)
                else:
                    self.write("memory", "memory.limit_in_bytes", self.memory)
                    if os.path.exists(self.file("memory", "memory.memsw.limit_in_bytes")):
                        self.write("memory", "memory.memsw.limit_in_bytes", self.memory)
        except OSError as e:
            self.close()
            dt.skip("cannot make the test's cgroup %s: %s" % (self.name, e))
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def add(self, pid):
        for d in self.dirs:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def preexec(self, then=None):
        """A preexec_fn that moves the new process into the cgroup, then runs `then`."""
        def run():
            self.add(os.getpid())
            if then:
                then()
        return run

    def pids(self):
        out = set()
        for d in self.dirs:
            out.update(int(p) for p in (dt.read_file(os.path.join(d, "cgroup.procs")) or "").split())
        return sorted(out)

    def limit_io(self, dev, rbps=None, wbps=None):
        """Throttle the cgroup's reads and writes on disk dev (MAJ:MIN) to bytes/s."""
        if self.version("io") == 2:
            self.write("io", "io.max", "%s%s%s" % (dev, " rbps=%d" % rbps if rbps else "", " wbps=%d" % wbps if wbps else ""))
            return
        if rbps:
            self.write("io", "blkio.throttle.read_bps_device", "%s %d" % (dev, rbps))
        if wbps:
            self.write("io", "blkio.throttle.write_bps_device", "%s %d" % (dev, wbps))

    def close(self):
        deadline = time.monotonic() + 20
        while self.pids() and time.monotonic() < deadline:
            for p in self.pids():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            dt.reap_orphans()
            time.sleep(0.05)
        for d in self.dirs:
            while os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError as e:
                    if time.monotonic() > deadline:
                        dt.log("cgroup %s not removed: %s" % (d, e))
                        break
                    time.sleep(0.1)


class PyFixture(dt.KVFixture):
    """A Python fixture of tests/fixtures (KEY k=v lines, READY) run by `python`
    (Debian's, by path) with the script's path first; preexec as KVFixture's, and
    `cgroup` (a TestCgroup) joined before the script starts."""

    def __init__(self, python, script, args=(), cgroup=None, **kw):
        super().__init__("python", args, **kw)
        self.python, self.script = python, script
        if cgroup:
            self.preexec = cgroup.preexec(self.preexec)

    def _argv(self):
        return [self.python, self.script] + self.args

    def read_lines(self, until, timeout):
        """Lines the fixture prints after READY, up to and with the first starting with
        `until` (or its exit, or the timeout): lists of words."""
        import selectors
        out, buf = [], b""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout.fileno(), selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    words = line.decode(errors="replace").split()
                    out.append(words)
                    if words and words[0] == until:
                        return out
        finally:
            sel.close()
        return out


def fixture_script(name):
    """The path of a Python fixture in tests/fixtures."""
    return os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", name))


def kv(words):
    """{k: int or str} of a `KEY k=v ...` line's words."""
    out = {}
    for w in words[1:]:
        k, _, v = w.partition("=")
        out[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    return out


class Sampler:
    """A thread reading fn() (a number, or None when gone) every `interval` s while
    it runs: .samples is [(monotonic time, value)]. `with Sampler(fn) as s:`."""

    def __init__(self, fn, interval=0.01):
        import threading
        self.fn, self.interval, self.samples = fn, interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = self.fn()
            if v is not None:
                self.samples.append((time.monotonic(), v))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def rates(self, window_s, start=None, end=None):
        """The rate (change per second) over every span of window_s s between two
        samples, within [start, end]: what a reader taking its two readings window_s
        apart at some instant in there could have seen."""
        s = [x for x in self.samples if (start is None or x[0] >= start) and (end is None or x[0] <= end)]
        out, j = [], 0
        for i in range(len(s)):
            while j < len(s) and s[j][0] - s[i][0] < window_s:
                j += 1
            if j < len(s):
                out.append((s[j][1] - s[i][1]) / (s[j][0] - s[i][0]))
        return out


def check_rate(chk, got, rates, tol, what):
    """got within tol (0.1: 10 %) of the oracle's rates over every window diag-snap's
    could have been: between min(rates) * (1 - tol) and max(rates) * (1 + tol)."""
    if not chk.check(rates, "%s: the oracle has no sample spanning the window" % what):
        return
    lo, hi = min(rates), max(rates)
    mid = sorted(rates)[len(rates) // 2]
    dt.log("%s: bundle %.1f, oracle %.1f (windows %.1f-%.1f)" % (what, got if got is not None else -1, mid, lo, hi))
    chk.check(got is not None and lo * (1 - tol) <= got <= hi * (1 + tol),
              "%s: %r not within %d %% of the oracle's %.1f-%.1f over the same span" % (what, got, tol * 100, lo, hi))


def proc_io(pid):
    """{"read_bytes": n, "write_bytes": n, ...} of /proc/PID/io, or None."""
    t = dt.read_file("/proc/%d/io" % pid)
    if not t:
        return None
    return {k: int(v) for k, _, v in (l.partition(": ") for l in t.splitlines()) if v.isdigit()}


def smaps_rollup(pid):
    """{field: kB} of /proc/PID/smaps_rollup, or None."""
    t = dt.read_file("/proc/%d/smaps_rollup" % pid)
    if not t:
        return None
    out = {}
    for l in t.splitlines()[1:]:
        k, _, v = l.partition(":")
        if v.strip().endswith("kB"):
            out[k] = int(v.split()[0])
    return out


def take(chk, tmp, name, *args, timeout_s=5):
    """A bundle of diag-snap ARGS into tmp/name: checked (exit status, layout), with
    when it ran. Returns a Bundle (its files loaded) or None."""
    out = os.path.join(tmp, name)
    t0 = time.monotonic()
    r = snap("-o", out, "--timeout", "%ds" % timeout_s, *args, timeout=timeout_s + 30)
    t1 = time.monotonic()
    chk.check(r.rc in BUNDLE_RC, "%s: diag-snap exit 0 or 4\n%s" % (name, r.describe()))
    idx = check_bundle(chk, out, name)
    return Bundle(out, idx, t0, t1) if idx is not None else None


class Bundle:
    """A bundle on disk: its index, summary and JSON files, and the monotonic times
    around the run that made it."""

    def __init__(self, path, idx, t0, t1):
        self.path, self.idx, self.t0, self.t1 = path, idx, t0, t1
        self.summary = dt.read_file(os.path.join(path, "summary.txt")) or ""
        self.procs = load_json(os.path.join(path, "processes.json")) or {}
        self.cgroups = load_json(os.path.join(path, "cgroups.json")) or {}
        self.oom = load_json(os.path.join(path, "oom.json")) or {}

    def text(self, name):
        return dt.read_file(os.path.join(self.path, name)) or ""

    def process(self, pid):
        return next((p for p in self.procs.get("processes", []) if p.get("pid") == pid), None)

    def group_of(self, pid):
        return next((g for g in self.procs.get("groups", []) if pid in g.get("pids", [])), None)

    def cgroup(self, path, version=None):
        """The cgroups.json row of path (the row of that version when given)."""
        return next((c for c in self.cgroups.get("cgroups", [])
                     if c.get("path") == path and version in (None, c.get("version"))), None)

    def findings(self, needle):
        """summary.txt's finding lines that contain needle."""
        return [l for l in self.summary.splitlines() if needle in l and l.split(" ", 1)[0] in
                ("crit", "warn", "notice", "info")]
