# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the diag-top tests (python3 stdlib only): diag-top driven as a person
would, in a detached tmux session of a given size on a private server (tmux -L),
keys sent with send-keys and the screen read with capture-pane; the pane's tty
settings (stty -a) before diag-top starts and after it ends; the raw bytes it wrote
(pipe-pane); the tmux server always killed, whatever happens.

The pane runs a small shell: it waits until the test has read the tty's settings,
runs diag-top, prints "[diag-top exit N]" and stays (so the tty can be read after)."""
import atexit
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import diagtest as dt

COLUMNS = ("PID", "USER", "S", "CPU%", "RSS", "GROW/m", "MAJFLT/s", "READ/s", "WRITE/s", "THR",
           "BLOCKED", "WAIT", "COMMAND")
EXIT_RE = re.compile(r"\[diag-top exit (\d+)\]")

_screens = []
_serial = [0]


PATHS = ("diag_top", "diag_chain", "diag_record", "diag_snap", "demo_worker", "spinfix", "fusehang", "forkpool", "chainfix")


def setup(description, *more):
    """dt.setup() with every path the diag-top tests are given (each uses some);
    skips (77) without tmux."""
    ns = dt.setup(description, *sorted(set(PATHS) | set(more)))
    dt.need_program("tmux")
    dt.need_path("diag_top")
    return ns


def tool():
    return dt.need_path("diag_top")


def _kill_all():
    for s in list(_screens):
        s.close()


atexit.register(_kill_all)


class Screen:
    """diag-top ARGS in a tmux pane of width x height.

    env: variables for diag-top (TERM, LANG, LC_ALL...); term: tmux's default-terminal
    (what TERM the pane gets unless env sets it)."""

    def __init__(self, args=(), width=80, height=24, env=None, term="xterm-256color", argv=None):
        self.argv = argv or [tool()] + [str(a) for a in args]
        self.width, self.height = width, height
        self.term = term
        self.env = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        self.env.update(env or {})
        self.tmp = tempfile.mkdtemp(prefix="diag-top-test.", dir="/tmp")
        _serial[0] += 1
        self.sock = "diagtop%d-%d" % (os.getpid(), _serial[0])
        self.go = os.path.join(self.tmp, "go")
        self.raw_path = os.path.join(self.tmp, "raw")
        self.started = False
        self.tty = None
        self.stty_before = None
        self.shell_pid = None

    # ---- tmux itself
    def tmux(self, *args, check=True, timeout=10):
        argv = ["tmux", "-L", self.sock, "-f", os.path.join(self.tmp, "tmux.conf")] + [str(a) for a in args]
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
        env.pop("TMUX", None)
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        if check and p.returncode != 0:
            dt.harness_error("`%s` failed (%d): %s" % (" ".join(argv), p.returncode,
                                                       p.stderr.decode("utf-8", "replace")))
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self, run=True):
        """Start the session (diag-top waits); the tty's settings read; then diag-top
        runs (unless run=False: call go())."""
        with open(os.path.join(self.tmp, "tmux.conf"), "w") as f:
            f.write("set -g default-terminal %s\nset -g status off\nset -g history-limit 100\n"
                    "set -g exit-empty on\nset -g remain-on-exit off\nset -g escape-time 10\n"
                    % shlex.quote(self.term))
        envs = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(self.env.items()))
        script = ("trap : INT; while [ ! -e %s ]; do sleep 0.02; done; env %s %s; echo \"[diag-top exit $?]\"; "
                  "exec sleep 100000" % (shlex.quote(self.go), envs, " ".join(shlex.quote(a) for a in self.argv)))
        _screens.append(self)
        self.tmux("new-session", "-d", "-s", "top", "-x", self.width, "-y", self.height, "sh", "-c", script)
        self.started = True
        self.tmux("resize-window", "-t", "top", "-x", self.width, "-y", self.height, check=False)
        info = self.tmux("display-message", "-p", "-t", "top", "#{pane_tty} #{pane_pid}").split()
        self.tty, self.shell_pid = info[0], int(info[1])
        self.tmux("pipe-pane", "-o", "-t", "top", "cat >> %s" % shlex.quote(self.raw_path))
        self.stty_before = self.stty()
        if run:
            self.go_now()
        return self

    def go_now(self):
        open(self.go, "w").close()

    def close(self):
        if self.started:
            self.tmux("kill-server", check=False)
            self.started = False
        if self in _screens:
            _screens.remove(self)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- driving it
    def keys(self, *keys, literal=False, pause=0.15):
        """send-keys (tmux key names: Enter, Escape, Up, NPage, C-c, F10...), or text with literal."""
        if literal:
            self.tmux("send-keys", "-t", "top", "-l", *keys)
        else:
            self.tmux("send-keys", "-t", "top", *keys)
        if pause:
            time.sleep(pause)

    def text(self, s, pause=0.15):
        self.keys(s, literal=True, pause=pause)

    def mouse(self, button, x, y, release=True):
        """A mouse event at the cell x, y (from 0) as a terminal sends it: button 0 is the
        left one (pressed, then released), 64 and 65 the wheel up and down. In the encoding
        of the TERM diag-top runs with (its terminfo kmous): SGR (1006) or the X10 bytes."""
        term = self.env.get("TERM", self.term)
        p = subprocess.run(["infocmp", "-1", term], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
        m = re.search(r"kmous=([^,]*),", p.stdout.decode("utf-8", "replace"))
        if not m:
            dt.harness_error("no kmous in the terminfo of %s: no mouse to send" % term)
        if m.group(1) == r"\E[<":
            seq = [b"\x1b[<%d;%d;%dM" % (button, x + 1, y + 1)]
            if release:
                seq.append(b"\x1b[<%d;%d;%dm" % (button, x + 1, y + 1))
        else:
            seq = [b"\x1b[M" + bytes([32 + button, 33 + x, 33 + y])]
            if release:
                seq.append(b"\x1b[M" + bytes([32 + 3, 33 + x, 33 + y]))
        for b in seq:
            self.tmux("send-keys", "-t", "top", "-H", *["%02x" % c for c in b])
        time.sleep(0.15)

    def capture(self):
        """The pane's text now (capture-pane -p), one string per row."""
        return self.tmux("capture-pane", "-p", "-t", "top").split("\n")[:self.height]

    def capture_bytes(self):
        argv = ["tmux", "-L", self.sock, "-f", os.path.join(self.tmp, "tmux.conf"), "capture-pane", "-p", "-t", "top"]
        return subprocess.run(argv, stdout=subprocess.PIPE, timeout=10).stdout

    def raw(self):
        """Every byte diag-top (and the pane's shell) wrote to the terminal so far."""
        try:
            with open(self.raw_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def screen(self):
        return "\n".join(self.capture())

    def wait_for(self, pattern, timeout=10.0, flags=re.M):
        """The first match of pattern (a regex) in the screen within timeout s, else None."""
        rx = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.screen())
            if m or time.monotonic() > end:
                return m
            time.sleep(0.1)

    def wait_until(self, pred, timeout=10.0):
        """pred(lines) true within timeout s: the lines, else None."""
        end = time.monotonic() + timeout
        while True:
            lines = self.capture()
            if pred(lines):
                return lines
            if time.monotonic() > end:
                return None
            time.sleep(0.1)

    def resize(self, width, height):
        self.width, self.height = width, height
        self.tmux("resize-window", "-t", "top", "-x", width, "-y", height)

    def stty(self):
        """`stty -a` of the pane's tty, or None."""
        try:
            with open(self.tty, "rb") as f:
                p = subprocess.run(["stty", "-a"], stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5)
        except OSError:
            return None
        return p.stdout.decode() if p.returncode == 0 else None

    def exited(self, timeout=5.0):
        """diag-top's exit status once the pane's shell printed it, else None."""
        m = self.wait_for(EXIT_RE, timeout)
        return int(m.group(1)) if m else None

    def pid(self, timeout=5.0):
        """diag-top's pid (the pane shell's child), or None."""
        end = time.monotonic() + timeout
        while True:
            for c in children_of(self.shell_pid):
                if os.path.realpath(exe_of(c) or "") == os.path.realpath(self.argv[0]):
                    return c
            if time.monotonic() > end:
                return None
            time.sleep(0.05)

    def describe(self):
        return "--- screen (%dx%d)\n%s\n---" % (self.width, self.height, self.screen())


# ---------------------------------------------------------------- reading the screen

def header_line(lines):
    """(index, line) of the column line (PID ... COMMAND or the first columns), or (None, None)."""
    for i, l in enumerate(lines):
        w = l.split()
        if len(w) >= 3 and w[0] == "PID" and ("USER" in w or "S" in w or "COMMAND" in w):
            return i, l
    return None, None


def pane_lines(lines):
    """The drill-down pane's lines: what follows the process list's rows (all the lines
    when no list is shown: a full-screen pane). The list's WAIT and COMMAND columns are
    left out, so that a pattern looked for in the pane cannot match them."""
    hi, _ = header_line(lines)
    if hi is None:
        return list(lines)
    i = hi + 1
    while i < len(lines) and (not lines[i].strip() or _row_start(lines[i].split()[0])):
        i += 1
    return list(lines[i:])


def _row_start(first):
    """Does a line whose first word is this belong to the process list (a pid, a group's
    xN, a tree's branch)?"""
    return first.isdigit() or re.match(r"^x\d+$", first) is not None or first.startswith(("-", "|", "`"))


def parse_rows(lines):
    """The process rows under the column line: dicts with the columns shown (their
    text), "line" (the row as shown), "pid" (int or None) and "count" (a group's xN).
    Each word before WAIT goes to the column whose name it overlaps most (else the
    nearest: values are aligned under their names, a cell may hold two words as
    BLOCKED's "4.0s D"); WAIT and COMMAND are cut at the column line's positions."""
    hi, head = header_line(lines)
    if hi is None:
        return []
    spans = [(m.group(0), m.start(), m.end()) for m in re.finditer(r"\S+", head)]
    wait_at = next((a for n, a, _ in spans if n == "WAIT"), -1)
    cmd_at = next((a for n, a, _ in spans if n == "COMMAND"), -1)
    cols = [x for x in spans if x[0] not in ("WAIT", "COMMAND")]
    out = []
    for l in lines[hi + 1:]:
        if not l.strip():
            continue
        if not _row_start(l.split()[0]):
            break           # the list ended (a pane, a footer)
        row = {"line": l}
        cut = [x for x in (wait_at, cmd_at) if x > 0]
        left = l[:min(cut)] if cut else l
        cells = {}
        for m in re.finditer(r"\S+", left):
            a, b = m.start(), m.end()

            def score(c):
                ov = min(b, c[2]) - max(a, c[1])
                return (ov, -min(abs(a - c[2]), abs(b - c[1]), abs(b - c[2])))
            name = max(cols, key=score)[0] if cols else None
            if name:
                cells.setdefault(name, []).append(m.group(0))
        for k, v in cells.items():
            row[k] = " ".join(v)
        if wait_at > 0:
            row["WAIT"] = l[wait_at:cmd_at if cmd_at > wait_at else None].strip()
        if cmd_at > 0:
            row["COMMAND"] = l[cmd_at:].strip()
        m = re.match(r"\s*(\d+)\b", l)
        row["pid"] = int(m.group(1)) if m else None
        m = re.search(r"(?:^|\s)x(\d+)(?:\s|$)", l)
        row["count"] = int(m.group(1)) if m else 1
        out.append(row)
    return out


def row_of(lines, pid):
    for r in parse_rows(lines):
        if r["pid"] == pid:
            return r
    return None


def header_text(lines):
    """The lines above the column line."""
    hi, _ = header_line(lines)
    return "\n".join(lines[:hi] if hi is not None else lines)


def parse_bytes(s):
    """"812K", "1.2M", "3.4G", "512" (bytes, 1024-based) -> float; None for "-" or junk."""
    m = re.match(r"^(-?[\d.]+)([KMGTP]?)i?B?$", (s or "").strip())
    if not m:
        return None
    return float(m.group(1)) * 1024 ** " KMGTP".index(m.group(2) or " ")


def parse_ms(s):
    """"4.0s", "2m03s", "1h02m", "3d04h", "850ms" -> milliseconds; None for "-" or junk."""
    s = (s or "").split()[0] if (s or "").split() else ""     # BLOCKED may add the state: "4.0s D"
    units = {"d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}
    parts = re.findall(r"([\d.]+)(ms|d|h|m|s)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        return None
    return sum(float(a) * units[b] for a, b in parts)


# ---------------------------------------------------------------- processes

def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = dt.task_stat(int(d), int(d))
            if st and int(st[2][0]) == pid:
                out.append(int(d))
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        c = children_of(todo.pop())
        out += c
        todo += c
    return out


def start_time(pid):
    st = dt.task_stat(pid, pid)
    return int(st[2][18]) if st else None


def alive(pid, start):
    """pid still names the process that started at `start` (and is not a zombie)."""
    st = dt.task_stat(pid, pid)
    return bool(st) and int(st[2][18]) == start and st[1] != "Z"


def procs_running(exe):
    """Pids whose /proc/PID/exe is exe."""
    real = os.path.realpath(exe)
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and os.path.realpath(exe_of(int(d)) or "/") == real:
            out.append(int(d))
    return out


def vmrss(pid):
    s = dt.read_file("/proc/%d/status" % pid) or ""
    m = re.search(r"^VmRSS:\s*(\d+) kB", s, re.M)
    return int(m.group(1)) * 1024 if m else None


def pss(pid):
    s = dt.read_file("/proc/%d/smaps_rollup" % pid) or ""
    m = re.search(r"^Pss:\s*(\d+) kB", s, re.M)
    return int(m.group(1)) * 1024 if m else None


def cmdline(pid):
    s = dt.read_file("/proc/%d/cmdline" % pid)
    return s.rstrip("\0").replace("\0", " ") if s else None


def timings(path):
    """The --timings FILE's JSON lines: (refreshes, keys)."""
    refresh, keys = [], []
    for line in (dt.read_file(path) or "").splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        (keys if "key" in d else refresh).append(d)
    return refresh, keys


class Spinner:
    """spinfix (a thread spinning): READY pid= tid=; ended by closing stdin."""

    def __init__(self):
        self.proc = subprocess.Popen([dt.need_path("spinfix")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True, preexec_fn=dt._child_setup, cwd="/")
        line = self.proc.stdout.readline().decode()
        m = re.match(r"READY pid=(\d+) tid=(\d+)", line)
        if not m:
            self.close()
            dt.harness_error("spinfix did not say READY: %r" % line)
        self.pid, self.tid = int(m.group(1)), int(m.group(2))

    def close(self):
        if self.proc.poll() is None:
            dt.kill_group(self.proc)
            self.proc.wait()


class Demo:
    """The demo's hung worker pool (diag-demo-worker): pid, backend, port, holder,
    waiters, session; SIGTERM (the pool's own cleanup), then SIGKILL to its group."""

    def __init__(self, ready_timeout=30):
        self.proc = subprocess.Popen([dt.need_path("demo_worker")], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=dt._child_setup, cwd="/")
        self.waiters = []
        self.pid = self.backend = self.port = self.holder = self.session = None
        end = time.monotonic() + ready_timeout
        while time.monotonic() < end:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            w = line.split()
            if w == ["READY"]:
                return
            if w[0] == "PID":
                self.pid = int(w[1])
            elif w[0] == "session":
                self.session = w[1]
            elif w[0] == "backend":
                self.backend, self.port = int(w[1]), int(w[2].split("=")[1])
            elif w[0] == "holder":
                self.holder = int(w[1])
            elif w[0] == "waiter":
                self.waiters.append(int(w[1]))
        self.close()
        dt.harness_error("diag-demo-worker did not say READY")

    def close(self):
        if self.proc.poll() is None:
            dt.kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        dt.kill_group(self.proc)
        self.proc.wait()
