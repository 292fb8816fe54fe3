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


def wait_for(cond, timeout, step=0.05):
    """Poll cond() until true or timeout s: its last value."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


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
