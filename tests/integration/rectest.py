# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the diag-record tests (python3 stdlib only): the recorder run in the
background and stopped for sure, and a recording read back as it was recorded
(`diag-record show --dump`: one JSON object per interval, every table and column by
the names of docs/diag-record-format.md, null where a value could not be read)."""
import json
import os
import signal
import subprocess
import time

import diagtest as dt


def setup(description, *more):
    """dt.setup() with the paths the diag-record tests take."""
    return dt.setup(description, "diag_record", "diag_snap", *more)


def tool():
    return dt.need_path("diag_record")


def show(*args, timeout=60, env=None):
    """diag-record show ARGS (text), bounded."""
    return dt.run([tool(), "show"] + [str(a) for a in args], timeout=timeout, env=env)


def dump(directory, *args, timeout=120, env=None):
    """(Result, [interval dicts]) of `show --dump DIR`; lines that do not parse are
    reported by the caller through the Result (r.out)."""
    r = dt.run([tool(), "show", "--dump"] + [str(a) for a in args] + [str(directory)], timeout=timeout, env=env)
    out = []
    for line in r.out.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"unparsed": line})
    return r, out


class Recorder:
    """`diag-record ARGS` in the background (its own session, stdout and stderr to a
    file), stopped with SIGTERM (then SIGKILL) on close; never left running."""

    def __init__(self, directory, *args, env=None, preexec=None, log=None):
        self.dir = str(directory)
        self.argv = [tool(), "-D", self.dir] + [str(a) for a in args]
        self.env, self.preexec = env, preexec
        self.log = log or (self.dir.rstrip("/") + ".log")
        self.proc = None
        self.rc = None

    def __enter__(self):
        return self.start()

    def start(self):
        with open(self.log, "w") as logf:
            kw = {}
            if self.preexec:
                kw["preexec_fn"] = self.preexec
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         env=self.env or dt.tool_env(), cwd="/", start_new_session=True, **kw)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def intervals_written(self):
        """Segment bytes on disk now (0 when none)."""
        try:
            return sum(os.path.getsize(os.path.join(self.dir, f)) for f in os.listdir(self.dir)
                       if f.startswith("seg-"))
        except OSError:
            return 0

    def wait_started(self, timeout=10):
        """Until the first segment file exists (the first interval is flushed at the
        first --flush or trigger; its file is created at start)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                return False
            try:
                if any(f.startswith("seg-") for f in os.listdir(self.dir)):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, sig=None, timeout=15):
        """Stop it (SIGTERM unless sig); its exit status (negative: the signal that ended it)."""
        sig = signal.SIGTERM if sig is None else sig    # the method signal() hides the module here
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                dt.kill_group(self.proc)
                self.proc.wait()
        self.rc = self.proc.returncode
        return self.rc

    def output(self):
        return dt.read_file(self.log) or ""

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            dt.kill_group(self.proc)
            self.proc.wait()


def procs_of(intervals, pid):
    """[(interval, row)] of the process rows with that pid, in time order."""
    out = []
    for iv in intervals:
        for row in iv.get("proc") or []:
            if row.get("pid") == pid:
                out.append((iv, row))
    return out


def events(intervals, kind=None):
    """Every event row (with the interval's time as "interval_ns"), of that kind or all."""
    out = []
    for iv in intervals:
        for e in iv.get("event") or []:
            if kind is None or e.get("kind") == kind:
                out.append(dict(e, interval_ns=iv.get("time_ns")))
    return out


# ---------------------------------------------------------------- scenarios around the recorder

def wait_for(pred, timeout, step=0.05):
    """pred()'s first true value within timeout s, else None."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v or None
        time.sleep(step)


def boottime_ns():
    """CLOCK_BOOTTIME, the clock of an interval's boottime_ns and of the schedule."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def mono_of_boot(t_boot_ns):
    """An interval's boottime_ns as time.monotonic() seconds, the clock of
    snaptest.Sampler (the two differ by the time suspended, fixed during a test)."""
    return time.monotonic() - (boottime_ns() - t_boot_ns) / 1e9


def value_at(samples, t):
    """The value of snaptest.Sampler samples [(time, value)] at time t, linearly
    between the samples around it; None outside them."""
    for (ta, va), (tb, vb) in zip(samples, samples[1:]):
        if ta <= t <= tb:
            return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)
    return None


def cmd_count(iv, needle):
    """Process rows of interval iv whose command line contains needle."""
    return sum(1 for r in iv.get("proc") or [] if needle in (r.get("cmd") or ""))


def cgroup_rows(intervals, path, version=None):
    """[(interval, row)] of the cgroup rows with that path (and version: "v1", "v2")."""
    out = []
    for iv in intervals:
        for row in iv.get("cgroup") or []:
            if row.get("path") == path and version in (None, row.get("version")):
                out.append((iv, row))
    return out


def bundles(snap_dir):
    """Names of the finished bundles in snap_dir (renamed into place, with
    index.json; not diag-snap's temporary .NAME.tmp-XXXXXX), sorted."""
    try:
        return sorted(n for n in os.listdir(snap_dir) if not n.startswith(".")
                      and os.path.isfile(os.path.join(snap_dir, n, "index.json")))
    except OSError:
        return []


def log_tail(rec, n=20):
    """The recorder's last n lines of stderr, for a failure message."""
    return "\n".join(rec.output().splitlines()[-n:])


class PressureGroup:
    """A cgroup of the test's own in the cgroup v2 hierarchy (no controller needed),
    for a PSI trigger on its cpu.pressure: only what the test puts in it stalls
    there, whatever else loads the machine. `with PressureGroup("name") as g`;
    every process in it is killed and it is removed on exit. Skips (77) without
    root or without a cgroup v2 mount offering cpu.pressure."""

    def __init__(self, name):
        import snaptest
        dt.need_root("making a cgroup")
        root = snaptest._mounts().get("cgroup2")
        if not root or not os.path.exists(os.path.join(root, "cpu.pressure")):
            dt.skip("no cgroup v2 hierarchy with PSI (cpu.pressure) on this machine")
        self.dir = os.path.join(root, "diag-test-%s-%d" % (name, os.getpid()))

    def __enter__(self):
        try:
            os.mkdir(self.dir, 0o755)
        except OSError as e:
            dt.skip("cannot make the cgroup %s: %s" % (self.dir, e))
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def add(self, pid):
        with open(os.path.join(self.dir, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def preexec(self):
        def run():
            self.add(os.getpid())
            dt._child_setup()
        return run

    def pids(self):
        return [int(p) for p in (dt.read_file(os.path.join(self.dir, "cgroup.procs")) or "").split()]

    def close(self):
        deadline = time.monotonic() + 20
        while os.path.isdir(self.dir):
            for p in self.pids():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            dt.reap_orphans()
            try:
                os.rmdir(self.dir)
            except OSError as e:
                if time.monotonic() > deadline:
                    dt.log("cgroup %s not removed: %s" % (self.dir, e))
                    break
                time.sleep(0.1)


def busy_loops(n, preexec=None):
    """n shell busy loops, each in its own session (killed by the caller with
    stop_all())."""
    return [subprocess.Popen(["sh", "-c", "while :; do :; done"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                             start_new_session=True, preexec_fn=preexec or dt._child_setup)
            for _ in range(n)]


def stop_all(procs):
    """SIGKILL each Popen's process group and reap it."""
    for p in procs:
        dt.kill_group(p)
    for p in procs:
        p.wait()


def run_test(description, name, scenario, *more):
    """A diag-record test's main: the paths (diag_record, diag_snap, the Python
    fixtures forkpool and rereader, and `more`), the test as subreaper,
    scenario(chk, tmp) in a temporary directory under /tmp that is removed after,
    then no process of the run left."""
    import shutil
    import tempfile
    import snaptest
    setup(description, *sorted({"forkpool", "rereader"} | set(more)))
    tool()
    dt.set_subreaper()
    chk = dt.Checker(name)
    tmp = tempfile.mkdtemp(prefix="diag-%s." % name, dir="/tmp")
    try:
        scenario(chk, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    snaptest.no_children_left(chk, "after every run", wait=5.0)
    chk.finish()


def children(pid):
    """Pids of the processes whose parent is pid (a recorder's diag-snap)."""
    out = []
    for d in os.listdir("/proc"):
        st = dt.task_stat(int(d), int(d)) if d.isdigit() else None
        if st and int(st[2][0]) == pid:
            out.append(int(d))
    return out


# ---- robustness: kills, damage, a full disk, reused pids, no privileges, children

def temp_dir(what):
    """A fresh directory under /tmp (the caller removes it)."""
    import tempfile
    return tempfile.mkdtemp(prefix="diag-record-%s." % what, dir="/tmp")


def meminfo_total():
    """MemTotal of /proc/meminfo in bytes (what host.mem_total records)."""
    for line in (dt.read_file("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def sanitizer_report(text):
    """The first line of an ASan/UBSan/LSan report in text, or None."""
    for line in (text or "").splitlines():
        if ("ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line or
                "runtime error:" in line or "SUMMARY: UndefinedBehaviorSanitizer" in line):
            return line.strip()
    return None


def runs_of(intervals):
    """The dump split into the recorder's runs (interval seq starts at 0 in each run):
    [[interval, ...], ...] in order."""
    out = []
    prev = None
    for iv in intervals:
        s = iv.get("seq")
        if not out or s is None or prev is None or s <= prev:
            out.append([])
        out[-1].append(iv)
        prev = s
    return out


def seq_holes(run):
    """Missing seq numbers between a run's first and last interval."""
    seqs = sorted(iv["seq"] for iv in run if isinstance(iv.get("seq"), int))
    if not seqs:
        return []
    have = set(seqs)
    return [s for s in range(seqs[0], seqs[-1] + 1) if s not in have]


def segment_files(directory):
    """The segment files of a recording, oldest first (names)."""
    try:
        return sorted(f for f in os.listdir(directory) if f.startswith("seg-") and f.endswith(".drec"))
    except OSError:
        return []


def children_of(pid):
    """[(pid, comm, argv)] of the processes whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = dt.task_stat(int(d), int(d))
        if st and int(st[2][0]) == pid:
            argv = (dt.read_file("/proc/%s/cmdline" % d) or "").split("\0")
            out.append((int(d), st[0], [a for a in argv if a]))
    return out


def procs_running(exe_name):
    """Pids of live processes (not zombies) whose argv[0] ends with exe_name."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        argv = (dt.read_file("/proc/%s/cmdline" % d) or "").split("\0")
        if argv and argv[0] and os.path.basename(argv[0]) == exe_name and dt.task_state(int(d), int(d)) not in (None, "Z"):
            out.append(int(d))
    return out


def same_interval(a, b):
    """Two dumped intervals equal as recorded (whole JSON objects)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def dump_checked(chk, what, directory, timeout=120):
    """dump(), checked: exit 0 or 4, no sanitizer report, every stdout line an interval
    (the lines the views print for warnings and gaps, "warning ..." and "gap ...", aside).
    (Result, [intervals])."""
    r, ivs = dump(directory, timeout=timeout)
    chk.check(r.rc in (0, 4), "%s: show --dump exits 0 or 4\n%s" % (what, r.describe()))
    rep = sanitizer_report(r.err)
    chk.check(rep is None, "%s: show --dump: sanitizer report: %s" % (what, rep))
    bad = [iv["unparsed"] for iv in ivs if "unparsed" in iv and not iv["unparsed"].startswith(("warning ", "gap "))]
    chk.check(not bad, "%s: lines of --dump that are not JSON: %r" % (what, bad[:2]))
    return r, [iv for iv in ivs if "unparsed" not in iv]
