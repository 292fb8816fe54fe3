# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by the file-lock tests of diag-locks and diag-chain: real
programs that hold or retry a lock (flock(1), sqlite3), and oracles read from
/proc (which pid /proc/locks names, which fds' fdinfo carries the lock)."""
import os
import re
import signal
import subprocess
import tempfile
import time

import diagtest as dt


def fdinfo_lock_fds(pid, inode):
    """fds of pid whose fdinfo has a held "lock:" line on inode."""
    out = []
    try:
        fds = os.listdir("/proc/%d/fdinfo" % pid)
    except OSError:
        return out
    for fd in fds:
        text = dt.read_file("/proc/%d/fdinfo/%s" % (pid, fd)) or ""
        if re.search(r"^lock:.*:%d " % inode, text, re.M):
            out.append(int(fd))
    return sorted(out)


def held_pids(inode):
    """pids /proc/locks gives the held (not waiting) locks on inode."""
    return [p for (w, k, m, p) in dt.proc_locks_on(inode) if not w]


def waiter_count(inode):
    return len([1 for (w, k, m, p) in dt.proc_locks_on(inode) if w])


def wait_for(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    dt.harness_error("timed out waiting for " + what)


def sleeping(pid):
    """pid's main thread sleeps in nanosleep or clock_nanosleep (x86_64: 35, 230; aarch64: 101, 115)."""
    sc = dt.proc_syscall(pid, pid)
    return dt.task_state(pid, pid) == "S" and sc[:1] in (["35"], ["230"], ["101"], ["115"])


def children(pid):
    return [int(x) for x in (dt.read_file("/proc/%d/task/%d/children" % (pid, pid)) or "").split()]


class Procs:
    """Processes a test starts; each is killed (and reaped) on exit."""

    def __init__(self):
        self.procs, self.pids, self.tmp = [], [], tempfile.mkdtemp(prefix="diag-locktest-")

    def __enter__(self):
        return self

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", **kw)
        self.procs.append(p)
        return p

    def also_kill(self, pid):
        self.pids.append(pid)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def __exit__(self, *exc):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for p in self.procs:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)


def flock_orphan(ps):
    """`flock PATH sleep 600`, then flock killed (left a zombie, as a shell that
    has not reaped it yet): the lock lives on in the open file description that
    sleep inherited; then `flock PATH true` waits for it. Returns (path, inode,
    flock pid, sleep pid, waiter pid)."""
    flock = dt.which("flock")
    if not flock:
        dt.skip("flock(1) is not installed")
    path = ps.path("lk")
    open(path, "w").close()
    inode = os.stat(path).st_ino
    locker = ps.start([flock, path, "sleep", "600"])
    wait_for(lambda: locker.pid in held_pids(inode), "flock to take the lock")
    sleeper = wait_for(lambda: children(locker.pid), "flock to start sleep")[0]
    ps.also_kill(sleeper)
    wait_for(lambda: sleeping(sleeper), "sleep to sleep")
    os.kill(locker.pid, signal.SIGKILL)
    wait_for(lambda: dt.task_state(locker.pid, locker.pid) == "Z", "flock to exit")
    waiter = ps.start([flock, path, "true"])
    wait_for(lambda: waiter_count(inode) >= 1, "the second flock to wait")
    return path, inode, locker.pid, sleeper, waiter.pid


def sqlite_busy(ps, begin="BEGIN EXCLUSIVE; INSERT INTO t VALUES(1);"):
    """sqlite3 A in BEGIN EXCLUSIVE (its stdin kept open), sqlite3 B inserting with
    .timeout 60000: B's busy handler sleeps between F_SETLK tries. With begin
    "BEGIN; SELECT ...;" A is a reader holding SHARED, and B the writer that waits
    for it holding its own SHARED range for reading. Skips (77) without sqlite3.
    Returns (db path, inode, A pid, B pid)."""
    sq = dt.which("sqlite3")
    if not sq:
        dt.skip("sqlite3 is not installed (apt-get install sqlite3)")
    db = ps.path("x%d.db" % len(ps.procs))
    subprocess.run([sq, db, "CREATE TABLE t(a); INSERT INTO t VALUES(0);"], check=True, timeout=30)
    inode = os.stat(db).st_ino
    a = ps.start([sq, db], stdin=subprocess.PIPE)
    a.stdin.write(begin.encode() + b"\n")
    a.stdin.flush()
    wait_for(lambda: a.pid in held_pids(inode), "sqlite3 A to lock the database")
    b = ps.start([sq, "-cmd", ".timeout 60000", db, "INSERT INTO t VALUES(2);"])
    wait_for(lambda: sleeping(b.pid), "sqlite3 B to sleep in its busy handler")
    return db, inode, a.pid, b.pid
