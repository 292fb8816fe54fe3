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
        """Stop it (SIGTERM unless sig); its exit status (negative: the signal that
        ended it)."""
        sig = sig or signal.SIGTERM
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
