#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain against the by-hand path (strace, lsof, ss) on the built-in demo.

Builds a population of about 350 processes (sleepers, pipe pairs whose writer
sleeps, flock holders with waiters) plus the demo scenario (demo/diag-demo-worker:
a worker holding a flock on a session file, waiting in poll() on a loopback
backend that never answers, and three workers waiting for the lock). Then, R runs
each, round-robin:

  diag-chain WAITER_PID        the one chain an on-call engineer asks about
  diag-chain --all             every chain on the host
  the by-hand path: strace -p WAITER (until its first syscall line, 1 s at most),
  lsof -nP -p WAITER, lsof -nP SESSION_FILE, lsof -nP -p HOLDER, ss -tnpi

While each diag-chain run is in flight, /proc/PID/status of the waiter and the
holder is polled: TracerPid must stay 0 and the state never t/T (nothing stopped).
The strace step is polled the same way as a control: it must be seen.

Python 3 standard library only. Run as root. See bench/README.md.
"""
import argparse
import ctypes
import fcntl
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)
started = []            # pids we must kill
tmpdirs = []


def die_with_parent():
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def fork_child(fn, *a):
    pid = os.fork()
    if pid == 0:
        try:
            die_with_parent()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            fn(*a)
        finally:
            os._exit(0)
    started.append(pid)
    return pid


def sleep_forever():
    while True:
        time.sleep(100000)


def pipe_writer(wfd):
    sleep_forever()     # holds the write end, never writes


def pipe_reader(rfd):
    os.read(rfd, 1)
    sleep_forever()


def flock_holder(path, ready_w):
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(ready_w, b"x")
    os.close(ready_w)
    sleep_forever()


def flock_waiter(path):
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    sleep_forever()


def build_population(nprocs, workdir):
    """nprocs processes, one thread each: 10% flock groups (holder + 3 waiters),
    35% pipe pairs, the rest sleepers. Returns counts."""
    ngroups = max(1, nprocs // 40)
    npairs = max(1, nprocs * 35 // 200)
    nsleep = max(0, nprocs - 4 * ngroups - 2 * npairs)
    for g in range(ngroups):
        path = os.path.join(workdir, "lock%d" % g)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        r, w = os.pipe()
        fork_child(flock_holder, path, w)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        for _ in range(3):
            fork_child(flock_waiter, path)
    for _ in range(npairs):
        r, w = os.pipe()
        fork_child(pipe_writer, w)
        fork_child(pipe_reader, r)
        os.close(r)
        os.close(w)
    for _ in range(nsleep):
        fork_child(sleep_forever)
    return {"flock_groups": ngroups, "pipe_pairs": npairs, "sleepers": nsleep,
            "total": 4 * ngroups + 2 * npairs + nsleep}


def state_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def wait_blocked(pids, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(state_of(p) in ("S", "D") for p in pids):
            return True
        time.sleep(0.05)
    return False


def start_demo(exe):
    p = subprocess.Popen([exe], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         preexec_fn=die_with_parent, text=True)
    started.append(p.pid)
    info = {"waiters": []}
    end = time.monotonic() + 10
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        k, _, v = line.strip().partition(" ")
        if k == "READY":
            return p, info
        if k == "waiter":
            info["waiters"].append(int(v))
        elif k in ("holder", "PID"):
            info[k.lower()] = int(v)
        elif k == "backend":
            info["backend"] = int(v.split()[0])
        elif k == "session":
            info["session"] = v
    raise SystemExit("chain-bench: the demo did not start")


class Poller(threading.Thread):
    """Polls TracerPid and state of some pids until stopped."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.polls, self.traced, self.stopped_seen = pids, 0, 0, 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for pid in self.pids:
                try:
                    with open("/proc/%d/status" % pid) as f:
                        st = f.read()
                except OSError:
                    continue
                self.polls += 1
                m = re.search(r"^TracerPid:\s+(\d+)", st, re.M)
                if m and m.group(1) != "0":
                    self.traced += 1
                m = re.search(r"^State:\s+(\S)", st, re.M)
                if m and m.group(1) in "tT":
                    self.stopped_seen += 1
            time.sleep(0.0002)

    def stop(self):
        self.halt.set()
        self.join()


def run_measured(launcher, argv, outpath, timeout):
    """Run argv through `fdpop --run` (so ru_maxrss is the command's own); returns
    (status, wall_s, maxrss_kb)."""
    env = dict(os.environ, LC_ALL="C")
    env.pop("DEBUGINFOD_URLS", None)
    with open(outpath, "w") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        p = subprocess.Popen([launcher, "--run"] + argv, stdout=out, stderr=err, env=env,
                             stdin=subprocess.DEVNULL)
        started.append(p.pid)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None, timeout, 0
        wall = time.monotonic() - t0
        err.seek(0)
        m = re.search(r"fdpop-run: status (-?\d+) maxrss_kb (\d+) wall_us (\d+)", err.read())
    if not m:
        return p.returncode, wall, 0
    return int(m.group(1)), int(m.group(3)) / 1e6, int(m.group(2))


def strace_first_line(waiter, timeout=1.0):
    """Time from spawning `strace -p WAITER` to its first system call line."""
    t0 = time.monotonic()
    p = subprocess.Popen(["strace", "-p", str(waiter)], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    started.append(p.pid)
    buf, got = b"", None
    end = t0 + timeout
    while time.monotonic() < end and got is None:
        r, _, _ = select.select([p.stderr], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        chunk = os.read(p.stderr.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        for line in buf.decode(errors="replace").splitlines():
            if re.match(r"^[a-z_0-9]+\(", line):
                got = time.monotonic() - t0
                break
    p.send_signal(signal.SIGTERM)      # strace detaches on SIGTERM
    p.wait()
    return got if got is not None else timeout, got is not None, buf.decode(errors="replace")


def fmt_s(v):
    return "%.3f s" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("-n", "--procs", type=int, default=350)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--lockpop", action="store_true",
                    help="also one run of each diag-chain command with bench/lockpop's population "
                         "(350 processes, 3000 threads) in place of the simple one")
    ap.add_argument("--markdown")
    a = ap.parse_args()

    chain = os.path.join(a.build, "tools/diag-chain/diag-chain")
    demo_exe = os.path.join(a.build, "demo/diag-demo-worker")
    launcher = os.path.join(a.build, "bench/fdpop")
    lockpop = os.path.join(a.build, "bench/lockpop")
    for f in (chain, demo_exe, launcher):
        if not os.access(f, os.X_OK):
            raise SystemExit("chain-bench: %s not built (ninja -C %s)" % (f, a.build))
    for t in ("strace", "lsof", "ss"):
        if not shutil.which(t):
            raise SystemExit("chain-bench: %s not installed" % t)
    if os.geteuid() != 0:
        print("chain-bench: not root: some processes will be out of sight", file=sys.stderr)

    demo_pid = []

    def cleanup(*_):
        # the demo removes its session directory on SIGTERM (not on SIGKILL)
        for pid in demo_pid:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except OSError:
                pass
        for pid in reversed(started):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in started:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        for d in tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: (cleanup(), os._exit(1)))

    lines = []

    def say(s=""):
        print(s)
        lines.append(s)

    try:
        work = tempfile.mkdtemp(prefix="chain-bench.")
        tmpdirs.append(work)
        pop = build_population(a.procs, work)
        demo, info = start_demo(demo_exe)
        demo_pid.append(demo.pid)
        waiter, holder, backend = info["waiters"][0], info["holder"], info["backend"]
        if not wait_blocked(started[:-1] + [waiter, holder]):
            print("chain-bench: the population did not settle", file=sys.stderr)
        nproc_host = sum(1 for d in os.listdir("/proc") if d.isdigit())
        # lsof stat()s every mount point first: a hung FUSE or NFS mount makes it wait
        # (its own timeout is 15 s per stat), which is not its cost on a healthy host
        with open("/proc/mounts") as f:
            fuse = [l.split()[1] for l in f if l.split()[2].startswith(("fuse", "nfs"))]

        want_verdict = "root: pid %d (demo-backend)" % backend
        want_lock = "FLOCK WRITE %s" % info["session"]
        tools = {
            "diag-chain WAITER": [chain, str(waiter)],
            "diag-chain --all": [chain, "--all"],
        }
        peers = {
            "lsof -nP -p WAITER": ["lsof", "-nP", "-p", str(waiter)],
            "lsof -nP SESSION_FILE": ["lsof", "-nP", info["session"]],
            "lsof -nP -p HOLDER": ["lsof", "-nP", "-p", str(holder)],
            "ss -tnpi": ["ss", "-tnpi"],
        }
        res = {k: [] for k in list(tools) + ["strace -p WAITER (first line)"] + list(peers)}
        rss = {k: 0 for k in res}
        polls = {k: [0, 0, 0] for k in list(tools) + ["strace -p WAITER (first line)"]}
        outdir = tempfile.mkdtemp(prefix="chain-bench-out.")
        tmpdirs.append(outdir)
        failures = []

        def check(name, status, out):
            text = open(out).read()
            if name == "diag-chain WAITER":
                return status == 5 and want_verdict in text and want_lock in text
            return status in (3, 5) and want_verdict in text and want_lock in text

        for rnd in range(a.runs + 1):          # round 0: warm-up, not counted
            for name, argv in tools.items():
                out = os.path.join(outdir, re.sub(r"\W+", "_", name) + ".txt")
                pl = Poller([waiter, holder])
                pl.start()
                st, wall, kb = run_measured(launcher, argv, out, a.timeout)
                pl.stop()
                if not check(name, st, out):
                    failures.append("%s: status %s, verdict %s (output kept in %s)"
                                    % (name, st, "missing", out))
                    if outdir in tmpdirs:
                        tmpdirs.remove(outdir)     # keep the evidence
                if rnd:
                    res[name].append(wall)
                    rss[name] = max(rss[name], kb)
                p = polls[name]
                p[0] += pl.polls
                p[1] += pl.traced
                p[2] += pl.stopped_seen
            pl = Poller([waiter, holder])
            pl.start()
            wall, ok, txt = strace_first_line(waiter)
            pl.stop()
            if not ok:
                failures.append("strace -p: no syscall line within 1 s: %r" % txt[:200])
            if rnd:
                res["strace -p WAITER (first line)"].append(wall)
            p = polls["strace -p WAITER (first line)"]
            p[0] += pl.polls
            p[1] += pl.traced
            p[2] += pl.stopped_seen
            for name, argv in peers.items():
                out = os.path.join(outdir, "peer.txt")
                st, wall, kb = run_measured(launcher, argv, out, a.timeout)
                if rnd:
                    res[name].append(wall)
                    rss[name] = max(rss[name], kb)

        med = {k: statistics.median(v) for k, v in res.items() if v}
        peer_names = ["strace -p WAITER (first line)"] + list(peers)
        peer_sum = sum(med[k] for k in peer_names)
        one = med["diag-chain WAITER"]

        say("### diag-chain vs the by-hand path, %d runs each" % a.runs)
        say()
        say("Population: %d processes built by the script (%d flock holders with 3 waiters each, "
            "%d pipe pairs, %d sleepers) plus the demo (%d processes); %d processes on the host "
            "in all." % (pop["total"], pop["flock_groups"], pop["pipe_pairs"], pop["sleepers"],
                         2 + len(info["waiters"]) + 1, nproc_host))
        say()
        if fuse:
            say("Note: FUSE or NFS mounts present during the run (%s): lsof stat()s every mount "
                "point and waits on one that hangs." % ", ".join(fuse))
            say()
        say("| command | wall, median (min) | peak RSS | diag-chain WAITER vs it |")
        say("|---|---|---|---|")
        for k in list(tools) + peer_names:
            v = res[k]
            say("| `%s` | %s (min %s) | %s | %s |" % (
                k, fmt_s(med[k]), fmt_s(min(v)),
                "%.1f MiB" % (rss[k] / 1024) if rss[k] else "-",
                "%.2fx" % (one / med[k]) if k != "diag-chain WAITER" else "-"))
        say("| by-hand path, sum of the 5 steps | %s | - | %.2fx |" % (fmt_s(peer_sum), one / peer_sum))
        say()
        say("Target never stopped (polls of /proc/PID/status of the waiter and the holder "
            "during the runs, warm-up included):")
        say()
        say("| during | polls | TracerPid != 0 seen | state t/T seen |")
        say("|---|---|---|---|")
        for k, (n, t, s) in polls.items():
            say("| `%s` | %d | %d | %d |" % (k, n, t, s))
        say()
        say("Targets: one chain < 100 ms: %s (median %.0f ms); --all < 1 s: %s (median %.3f s); "
            "no stop: %s." % (
                "met" if one < 0.1 else "MISSED", one * 1000,
                "met" if med["diag-chain --all"] < 1 else "MISSED", med["diag-chain --all"],
                "met" if not any(polls[k][1] or polls[k][2] for k in tools) else "MISSED"))
        if failures:
            say()
            say("Failures:")
            for f in failures[:10]:
                say("- " + f)

        if a.lockpop:
            if not os.access(lockpop, os.X_OK):
                raise SystemExit("chain-bench: %s not built" % lockpop)
            for pid in started[:]:
                if pid not in (demo.pid,) and pid not in info["waiters"] + [holder, backend]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                    except OSError:
                        pass
                    started.remove(pid)
            lp = subprocess.Popen([lockpop], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            started.append(lp.pid)
            while True:
                line = lp.stdout.readline()
                if not line or line.startswith("READY"):
                    break
            time.sleep(1)
            kids = subprocess.run(["pgrep", "-P", str(lp.pid)], capture_output=True, text=True).stdout.split()
            nthr = sum(len(os.listdir("/proc/%s/task" % k)) for k in kids if os.path.isdir("/proc/%s/task" % k))
            say()
            say("### Stress: bench/lockpop's population (%d processes, %d threads), one run each" % (len(kids), nthr))
            say()
            say("| command | wall | peak RSS | status | output lines | chains shown |")
            say("|---|---|---|---|---|---|")
            for name, argv in [("diag-chain WAITER", [chain, str(waiter)]),
                               ("diag-chain LOCKPOP_WORKER", [chain, kids[9] if len(kids) > 9 else kids[0]]),
                               ("diag-chain --all", [chain, "--all"])]:
                out = os.path.join(outdir, "stress.txt")
                st, wall, kb = run_measured(launcher, argv, out, a.timeout + 10)
                text = open(out).read() if os.path.exists(out) else ""
                say("| `%s` | %s | %.1f MiB | %s | %d | %d |" % (
                    name, fmt_s(wall) if st is not None else "> %.0f s (killed)" % a.timeout,
                    kb / 1024, st, text.count("\n"), text.count("\nroot:") + text.startswith("root:")))
            lp.stdin.close()
            lp.wait(timeout=10)
    finally:
        cleanup()
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
