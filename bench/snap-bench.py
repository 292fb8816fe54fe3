#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap against the incident checklist run by hand, on a host of 500 processes.

Starts bench/lockpop (--procs N --threads T: N processes, T threads in all, most
asleep, some blocked on mutexes and on an flock: the stuck chains diag-snap's tool
parts follow), then runs, round-robin, R timed runs of:

  diag-snap      diag-snap -o DIR --timeout 5s (a new bundle each run)
  checklist      a shell script running one after another: uptime; dmesg;
                 vmstat 1 2; free; ps auxf; top -bn1; pidstat 1 1; iostat -x 1 1;
                 ss -tanp; lsof -nP (each output to a file; pidstat and iostat
                 only when sysstat is installed, as said in the table)

Each run is started by `fdpop --run` (bench/fdpop.c), timed from before the fork to
after wait4, and its peak RSS is wait4's ru_maxrss: the largest single process of the run, the command or any child it
waited for (diag-snap's parts run in children of their own, each counted). Its exit
status and output size are recorded: the bundle's total bytes and files, the
checklist's bytes. Prints a Markdown table (also to --markdown FILE), with the issue's
targets: the bundle in <= 2 s wall, <= 50 MiB RSS, <= 5 MiB; then, fact by fact, what
each checklist command printed in the last round and whether the bundle of that round
holds it (yes / partial / no, with where or why: compare()).
Python 3 standard library only. Run it as root, so that every command sees every process.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MIB = 1024 * 1024

CHECKLIST = [
    ("uptime", "uptime"),
    ("dmesg", "dmesg"),
    ("vmstat", "vmstat 1 2"),
    ("free", "free"),
    ("ps", "ps auxf"),
    ("top", "top -bn1"),
    ("pidstat", "pidstat 1 1"),
    ("iostat", "iostat -x 1 1"),
    ("ss", "ss -tanp"),
    ("lsof", "lsof -nP"),
]


class BenchError(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build-bench", help="meson build directory (default build-bench)")
    p.add_argument("--diag-snap", help="diag-snap binary (default BUILD/tools/diag-snap/diag-snap)")
    p.add_argument("--lockpop", help="lockpop binary (default BUILD/bench/lockpop)")
    p.add_argument("--fdpop", help="fdpop binary, the measuring launcher (default BUILD/bench/fdpop)")
    p.add_argument("-r", "--runs", type=int, default=5, help="timed runs of each (default 5)")
    p.add_argument("-n", "--procs", type=int, default=500, help="lockpop processes (default 500)")
    p.add_argument("-t", "--threads", type=int, default=3000, help="threads in all (default 3000)")
    p.add_argument("--snap-timeout", default="5s", help="diag-snap --timeout (default 5s)")
    p.add_argument("--keep", help="keep the bundles and the checklist's output in this directory")
    p.add_argument("--markdown", help="also write the table to this file")
    return p.parse_args()


def resolve(given, build, *rel):
    """The binary given on the command line, else BUILD/REL; must be executable."""
    cands = [given] if given else [os.path.join(build, *rel), os.path.join(ROOT, build, *rel)]
    for c in cands:
        if os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise BenchError("%s not found or not executable (build it: ninja -C %s)" % (cands[0], build))


class Pop:
    """A running lockpop; ends when its stdin closes (it kills its children)."""

    def __init__(self, argv, timeout=120):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise BenchError("lockpop exited before READY (status %s)" % self.p.wait())
            if line.split()[:1] == ["READY"]:
                break
            if time.monotonic() > deadline:
                self.close()
                raise BenchError("lockpop not READY in %d s" % timeout)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def population():
    """(processes, threads) of the whole host now."""
    procs = threads = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                threads += len(os.listdir("/proc/%s/task" % d))
                procs += 1
            except OSError:
                pass
    return procs, threads


def timed(launcher, argv, cwd, timeout=120):
    """(seconds, peak RSS bytes, exit status) of argv, run through `fdpop --run`
    (ru_maxrss survives execve: forked from this Python process, a command would be
    charged its resident set; fdpop's is a few hundred KiB)."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.run([launcher, "--run"] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=err, cwd=cwd, timeout=timeout)
        err.seek(0)
        text = err.read().decode(errors="replace")
    m = re.search(r"^fdpop-run: status (\d+) maxrss_kb (\d+) wall_us (\d+)$", text, re.M)
    if not m:
        raise BenchError("no measurement from fdpop --run (exit %s): %s" % (p.returncode, text.strip()[-300:]))
    return int(m.group(3)) / 1e6, int(m.group(2)) * 1024, int(m.group(1))


def tree_size(path):
    total = files = 0
    for d, _, names in os.walk(path):
        for n in names:
            total += os.lstat(os.path.join(d, n)).st_size
            files += 1
    return total, files


def checklist_script(path, outdir):
    """The checklist as a shell script; returns the commands left out (not installed)."""
    lines = ["#!/bin/sh", "# the incident checklist, one command after another", "cd %s || exit 1" % outdir]
    absent = []
    for name, cmd in CHECKLIST:
        if not shutil.which(cmd.split()[0]):
            absent.append(name)
            continue
        lines.append("%s > %s.out 2>&1" % (cmd, name))
    lines.append("exit 0")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o700)
    return absent


def fmt_row(name, runs, size, note):
    secs = [r[0] for r in runs]
    rss = max(r[1] for r in runs)
    rcs = sorted({r[2] for r in runs})
    return "| %s | %.2f | %.2f–%.2f | %.1f | %s | %s | %s |" % (
        name, statistics.median(secs), min(secs), max(secs), rss / MIB, size, ",".join(map(str, rcs)), note)


# ---- the point-by-point comparison: what each checklist command prints, and where
# (or whether) the bundle holds it. Each check reads the command's output and the
# bundle taken just before it in the same round; figures that move between the two
# (load, memory, rates) are compared within a tolerance.

def _read(path, as_json=False):
    """A file's text ("" if unreadable), or its JSON (None if unreadable or not JSON)."""
    try:
        with open(path, errors="replace") as f:
            return json.load(f) if as_json else f.read()
    except (OSError, ValueError):
        return None if as_json else ""


def _json(path):
    return _read(path, as_json=True)


def _near(a, b, rel=0.2, absolute=0.0):
    return abs(a - b) <= max(abs(b) * rel, absolute)


def _started_before(pid, bundle):
    """Is pid still running, started before the bundle was?"""
    try:
        with open("/proc/stat") as f:
            btime = int(re.search(r"^btime (\d+)", f.read(), re.M).group(1))
        with open("/proc/%d/stat" % pid) as f:
            start = btime + int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError, IndexError):
        return False
    return start < (_json(os.path.join(bundle, "index.json")) or {}).get("time_unix", 0)


def _bundle_text(bundle):
    out = []
    for d, _, names in os.walk(bundle):
        for n in names:
            out.append(_read(os.path.join(d, n)))
    return "\n".join(out)


def compare(outdir, bundle):
    """[(command, fact, verdict, reason)], verdict yes / partial / no."""
    rows = []
    host = _json(os.path.join(bundle, "host.json")) or {}
    procs_doc = _json(os.path.join(bundle, "processes.json")) or {}
    procs = {p["pid"]: p for p in procs_doc.get("processes", [])}
    oom = _json(os.path.join(bundle, "oom.json")) or {}
    fds = {p["pid"]: p for p in (_json(os.path.join(bundle, "fds-summary.json")) or {}).get("processes", [])}
    mem = host.get("meminfo_bytes", {})
    text = _bundle_text(bundle)

    def row(cmd, fact, ok, reason):
        rows.append((cmd, fact, ok if isinstance(ok, str) else ("yes" if ok else "no"), reason))

    # uptime
    up = _read(os.path.join(outdir, "uptime.out"))
    m = re.search(r"load average: ([\d.]+), ([\d.]+), ([\d.]+)", up)
    la = host.get("loadavg") or []
    if m and len(la) == 3:
        ok = all(_near(float(m.group(i + 1)), la[i], 0.5, 1.0) for i in range(3))
        row("uptime", "load averages 1/5/15 min", ok, "host.json loadavg %s vs %s" % (la, list(m.groups())))
    row("uptime", "time since boot", "uptime_s" in host, "host.json uptime_s")
    row("uptime", "logged-in users", "no", "not collected (not in the issue's contents)")

    # dmesg
    dm = _read(os.path.join(outdir, "dmesg.out"))
    killed = {int(p) for p in re.findall(r"Killed process (\d+)", dm)}
    have = {e.get("pid") for e in oom.get("events", [])}
    row("dmesg", "OOM kills (%d in the log)" % len(killed), killed <= have,
        "oom.json events name %d of them" % len(killed & have))
    other = [l for l in dm.splitlines() if l and "oom" not in l.lower() and "killed process" not in l.lower()]
    row("dmesg", "the rest of the kernel log (%d lines)" % len(other), "partial",
        "only hung-task warnings and I/O errors are summarized (oom.txt, kernel.txt); the log itself is not copied")

    # vmstat 1 2 (the second line: the last second)
    vm = [l.split() for l in _read(os.path.join(outdir, "vmstat.out")).splitlines() if l.strip()[:1].isdigit()]
    if vm:
        v = vm[-1]
        row("vmstat", "memory free/buff/cache, swap used", _near(int(v[3]) * 1024, mem.get("MemFree", 0), 0.1),
            "host.json meminfo_bytes (free %s KiB vs %d)" % (v[3], mem.get("MemFree", 0) // 1024))
        row("vmstat", "swap in/out, blocks in/out per second", all(k in host.get("vmstat", {}) for k in
            ("pswpin", "pswpout", "pgpgin", "pgpgout")), "host.json vmstat pswpin/pswpout/pgpgin/pgpgout per_s")
        row("vmstat", "CPU us/sy/id/wa/st", "cpu_pct" in host, "host.json cpu_pct (the bundle's own second)")
        row("vmstat", "processes runnable (r) / blocked (b)", "partial",
            "process states in processes.json and D-state threads in dstate.json; no runnable-thread count")
        row("vmstat", "interrupts and context switches per second", "no", "not collected")

    # free
    fr = _read(os.path.join(outdir, "free.out"))
    m = re.search(r"Mem:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", fr)
    if m:
        row("free", "total memory", int(m.group(1)) * 1024 == mem.get("MemTotal"), "host.json MemTotal")
        row("free", "available", _near(int(m.group(6)) * 1024, mem.get("MemAvailable", 0), 0.1), "host.json MemAvailable")
        row("free", "shared, buff/cache, swap", all(k in mem for k in ("Shmem", "Buffers", "Cached", "SwapTotal")),
            "host.json Shmem, Buffers, Cached, SwapTotal/SwapFree")

    # ps auxf
    ps = _read(os.path.join(outdir, "ps.out")).splitlines()[1:]
    pids = {int(l.split()[1]) for l in ps if len(l.split()) > 10 and l.split()[1].isdigit()}
    lost = sorted(p for p in pids if p not in procs and _started_before(p, bundle))
    row("ps auxf", "every process (%d)" % len(pids), not lost,
        "in processes.json: %d; absent though started before the bundle and still running: %d (the rest "
        "started or ended between the two)" % (len(pids & set(procs)), len(lost)))
    row("ps auxf", "user, state, %CPU, RSS, start, command", all(k in next(iter(procs.values()), {}) for k in
        ("user", "state", "cpu_pct", "rss_bytes", "start", "command")), "processes.json (CPU over the bundle's second, "
        "not ps's lifetime average)")
    row("ps auxf", "the tree (f)", os.path.exists(os.path.join(bundle, "tree.txt")), "tree.txt")
    row("ps auxf", "VSZ, TTY, cumulative CPU time", "no", "not collected (RSS, PSS and CPU % over the window are)")

    # top -bn1
    row("top", "header: load, tasks, CPU, memory, swap", bool(la and mem and "cpu_pct" in host), "host.json")
    row("top", "per process PID, USER, S, %CPU, %MEM, RES, COMMAND", bool(procs), "processes.json (RES as rss_bytes)")
    row("top", "PR, NI, VIRT, SHR, TIME+", "partial", "SHR as shared_bytes (smaps_rollup); priority, nice, VIRT "
        "and cumulative CPU time are not collected")

    # pidstat 1 1
    pl = [l.split() for l in _read(os.path.join(outdir, "pidstat.out")).splitlines() if l.startswith("Average:")]
    pl = [l for l in pl if len(l) >= 9 and l[2].isdigit()]
    if pl:
        busy = [(int(l[2]), float(l[7])) for l in pl if float(l[7]) >= 5]
        row("pidstat", "%%CPU per process over 1 s (%d above 5 %%)" % len(busy),
            "partial", "processes.json cpu_pct over the bundle's own second (another second than pidstat's); "
            "top.txt ranks them; no user/system split")
    else:
        row("pidstat", "%CPU per process over 1 s", "no", "pidstat not run (sysstat not installed)")

    # iostat -x 1 1 (one report: averages since boot)
    io = _read(os.path.join(outdir, "iostat.out"))
    devs, in_devs = [], False
    for l in io.splitlines():
        if l.startswith("Device"):
            in_devs = True
        elif in_devs and l.strip():
            devs.append(l.split()[0])
    disks = {d.get("name"): d for d in host.get("disks", [])}
    if io:
        row("iostat", "per-disk r/s, w/s, rkB/s, wkB/s, r_await, w_await, %%util (%s)" % ",".join(devs),
            all(d in disks for d in devs), "host.json disks: over the bundle's second (iostat -x 1 1 prints the averages "
            "since boot), plus read_ios_total/write_ios_total")
        row("iostat", "merges (rrqm, wrqm), request sizes, queue size", "partial",
            "in_flight only; merges and request sizes not collected")
    # ss -tanp
    ss = [l.split() for l in _read(os.path.join(outdir, "ss.out")).splitlines()[1:] if l.strip()]
    conns = [l for l in ss if len(l) >= 5 and l[0] not in ("LISTEN",)]
    found = [l for l in conns if l[3] in text and l[4] in text]
    listen = [l for l in ss if l and l[0] == "LISTEN"]
    row("ss -tanp", "each TCP connection (%d) with its process" % len(conns),
        "yes" if conns and len(found) == len(conns) else ("partial" if found else "no"),
        "%d of them in the bundle (sockets appear only in chains.json, when a stuck chain goes through them); "
        "fds-summary.json counts sockets per process; host.json has the TCP counters" % len(found))
    row("ss -tanp", "listening sockets (%d)" % len(listen), "no" if listen else "yes",
        "not listed, only counted per process in fds-summary.json")
    # lsof -nP
    ls = [l.split() for l in _read(os.path.join(outdir, "lsof.out")).splitlines()[1:]]
    lp = [int(l[1]) for l in ls if len(l) > 1 and l[1].isdigit()]
    cov = len(set(lp) & set(fds))
    row("lsof -nP", "open files of %d processes" % len(set(lp)), "partial",
        "fds-summary.json counts fds per process and type (%d of those processes); names, offsets, maps are not "
        "listed (diag-fds PID does)" % cov)
    return rows


def compare_table(rows):
    out = ["| command | fact | in the bundle | where / why |", "|---|---|---|---|"]
    for cmd, fact, ok, why in rows:
        out.append("| %s | %s | %s | %s |" % (cmd, fact, ok, why.replace("|", "/")))
    return out


def main():
    args = parse_args()
    if os.geteuid() != 0:
        print("snap-bench: not root: diag-snap and the checklist see only this user's processes", file=sys.stderr)
    snap = resolve(args.diag_snap, args.build, "tools", "diag-snap", "diag-snap")
    lockpop = resolve(args.lockpop, args.build, "bench", "lockpop")
    launcher = resolve(args.fdpop, args.build, "bench", "fdpop")
    work = args.keep or tempfile.mkdtemp(prefix="snap-bench.")
    os.makedirs(work, exist_ok=True)
    pop = Pop([lockpop, "--procs", str(args.procs), "--threads", str(args.threads)])
    try:
        host = population()
        outdir = os.path.join(work, "checklist")
        os.makedirs(outdir, exist_ok=True)
        script = os.path.join(work, "checklist.sh")
        absent = checklist_script(script, outdir)
        snaps, checks, bundle = [], [], []
        for i in range(args.runs):
            b = os.path.join(work, "bundle-%d" % i)
            snaps.append(timed(launcher, [snap, "-o", b, "--timeout", args.snap_timeout], work))
            if os.path.isdir(b):
                bundle.append(tree_size(b))
            checks.append(timed(launcher, ["/bin/sh", script], work))
        check_bytes = tree_size(outdir)[0]
        # while lockpop runs: a process of ps that is still there must be in the bundle
        last = os.path.join(work, "bundle-%d" % (args.runs - 1))
        rows = compare(outdir, last) if os.path.isdir(last) else None
    finally:
        pop.close()
    if bundle:
        size = "%.2f MiB in %d files" % (max(s for s, _ in bundle) / MIB, max(n for _, n in bundle))
    else:
        size = "no bundle written"
    head = ("diag-snap vs the checklist by hand: host of %d processes, %d threads (lockpop --procs %d --threads %d); "
            "%d runs each, round-robin; %d CPUs" % (host[0], host[1], args.procs, args.threads, args.runs,
                                                   os.cpu_count()))
    out = [head, "",
           "| command | wall median (s) | wall min–max (s) | peak RSS (MiB) | output | exit | note |",
           "|---|---|---|---|---|---|---|",
           fmt_row("diag-snap -o DIR --timeout %s" % args.snap_timeout, snaps, size, "targets ≤ 2 s, ≤ 50 MiB, ≤ 5 MiB"),
           fmt_row("checklist script", checks, "%.2f MiB" % (check_bytes / MIB),
                   "without %s (not installed)" % ", ".join(absent) if absent else "all ten commands")]
    if rows:
        out += ["", "What the checklist prints, fact by fact, against the bundle of the same round "
                "(%d yes, %d partial, %d no):" % tuple(sum(r[2] == v for r in rows) for v in ("yes", "partial", "no")),
                ""] + compare_table(rows)
    text = "\n".join(out) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit("snap-bench: %s" % e)
