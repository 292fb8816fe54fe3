#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-fds against lsof and lsfd on a whole system holding many fds.

Starts bench/fdpop (PROCS processes holding FDS descriptors each: files, pipes, unix
socketpairs, loopback TCP connections, eventfds, an epoll fd), then runs, round-robin,
R timed runs of each command below, system-wide:

  diag-fds            default table (every default column: MODE, TYPE, NAME, ENDPOINT)
  diag-fds -J         the whole JSON document
  lsof -nP            no DNS or port-name lookups
  lsfd                default columns
  readlink floor      fdpop --floor readlink: readlinkat of every /proc/*/fd/* and nothing else
  fdinfo floor        fdpop --floor fdinfo: the same, plus a read of every fdinfo file

With --shared, the population also has the shape of a prefork server: every process
inherited one pipe as stdout and stderr and one unix socket, all with fdpop at the other
end (`fdpop --shared`), so that each of those fds has every other process as an endpoint.

Each command is started by `fdpop --run`, which records its wall time (from before the
fork to after wait4) and its peak RSS (ru_maxrss of wait4). Its output goes to a file,
which the script checks lists the population's fds, so that a broken run is not timed as
a fast one. Prints a Markdown table (also to --markdown FILE).
Python 3 standard library only. Run it as root, so that every tool sees every process.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Failed(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build-bench",
                   help="meson build directory (default build-bench)")
    p.add_argument("--diag-fds", help="diag-fds binary (default BUILD/tools/diag-fds/diag-fds)")
    p.add_argument("--fdpop", help="fdpop binary (default BUILD/bench/fdpop)")
    p.add_argument("--lsof", default="lsof", help="lsof command (default: lsof on PATH)")
    p.add_argument("--lsfd", default="lsfd", help="lsfd command (default: lsfd on PATH)")
    p.add_argument("-r", "--runs", type=int, default=5, help="timed runs per tool (default 5)")
    p.add_argument("-n", "--procs", type=int, default=350, help="fdpop processes (default 350)")
    p.add_argument("-m", "--fds", type=int, default=57, help="fds per fdpop process (default 57)")
    p.add_argument("--shared", action="store_true",
                   help="every process shares one stdout pipe and one unix socket (fdpop --shared)")
    p.add_argument("--timeout", type=float, default=120, help="kill a tool run after S seconds (default 120)")
    p.add_argument("--markdown", help="also write the tables to this file")
    return p.parse_args()


def resolve(path, default):
    path = path or default
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(ROOT, path)
    if not os.access(path, os.X_OK):
        sys.exit(f"fds-bench: {path} not found or not executable (build it: ninja -C BUILD)")
    return os.path.abspath(path)


def sanitizer_processes():
    """Processes with an ASan-sized address space (terabytes of shadow reservation):
    lsof walks every mapping and can take minutes on them."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        m = re.search(r"^VmSize:\s+(\d+) kB", status, re.M)
        name = re.search(r"^Name:\s+(.*)$", status, re.M)
        if m and int(m.group(1)) > 1 << 32:     # > 4 TiB
            found.append((int(pid), name.group(1) if name else "?"))
    return found


# ---- output checks: each returns the number of the population's fds the output shows

def check_diag_table(text, pids):
    # "  PID COMM  FD MODE ...": ENDPOINT continuation lines hold one word only
    n = 0
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0].isdigit() and int(f[0]) in pids and f[1] == "fdpop" and f[2].isdigit():
            n += 1
    if "fdpop," not in text:
        raise Failed("no ENDPOINT names an fdpop process")
    return n


def check_diag_json(text, pids):
    doc = json.loads(text)
    n, eps = 0, 0
    for p in doc["processes"]:
        if p["pid"] in pids:
            n += len(p["fds"])
            eps += sum(len(fd["endpoints"]) for fd in p["fds"])
    if eps == 0:
        raise Failed("no endpoints among the fdpop processes' fds")
    return n


def check_lsof(text, pids):
    # COMMAND PID USER FD TYPE ...; FD like "3u", "12r"; txt/mem/cwd rows do not count
    n = 0
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and f[1].isdigit() and int(f[1]) in pids and re.fullmatch(r"\d+[rwu]?", f[3]):
            n += 1
    return n


def check_lsfd(text, pids):
    # COMMAND PID USER ASSOC MODE TYPE ...; ASSOC is the fd number for fds
    n = 0
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and f[1].isdigit() and int(f[1]) in pids and f[3].isdigit():
            n += 1
    return n


def check_floor(text, pids):
    m = re.search(r"fds (\d+)", text)
    if not m:
        raise Failed("no 'fds N' line")
    return int(m.group(1))


def run_once(tool, launcher, tmpdir, timeout):
    """One run, through `fdpop --run` (see fdpop.c: ru_maxrss survives execve, so a
    command forked straight from this Python process would be charged its RSS)."""
    out_path = os.path.join(tmpdir, "out")
    err_path = os.path.join(tmpdir, "err")
    env = dict(os.environ, LC_ALL="C")
    env.pop("DIAG_FDS_COLUMNS", None)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([launcher, "--run"] + tool["cmd"], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise Failed(f"timed out after {timeout:.0f} s")
    with open(out_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    with open(err_path, "rb") as f:
        errtext = f.read().decode("utf-8", "replace")
    m = re.search(r"^fdpop-run: status (\d+) maxrss_kb (\d+) wall_us (\d+)$", errtext, re.M)
    if not m:
        raise Failed(f"no measurement from fdpop --run: {errtext.strip()[:300]}")
    status, rss, wall = int(m.group(1)), int(m.group(2)), int(m.group(3)) / 1e6
    # diag-fds: 4 = shown, some data missing (other network namespaces)
    if status not in tool.get("ok_status", (0,)):
        raise Failed(f"exit status {status}: {errtext[:m.start()].strip()[:300]}")
    return wall, rss, text, errtext


def fmt_ratio(a, b):
    if not b:
        return "-"
    r = a / b
    return f"{r:.2g}x" if r < 10 else f"{r:.0f}x"


def main():
    a = parse_args()
    diag = resolve(a.diag_fds, os.path.join(a.build, "tools/diag-fds/diag-fds"))
    fdpop = resolve(a.fdpop, os.path.join(a.build, "bench/fdpop"))
    notes = []
    if os.geteuid() != 0:
        notes.append("not run as root: the tools only see this user's processes")
    asan = sanitizer_processes()
    if asan:
        notes.append("processes with a sanitizer-sized address space were running (lsof reads their "
                     "maps): " + ", ".join(f"{p} ({c})" for p, c in asan))

    tools = [
        {"name": "diag-fds", "cmd": [diag], "check": check_diag_table, "ok_status": (0, 4)},
        {"name": "diag-fds -J", "cmd": [diag, "-J"], "check": check_diag_json, "ok_status": (0, 4)},
    ]
    for name, cmd, check in ((a.lsof, [a.lsof, "-nP"], check_lsof), (a.lsfd, [a.lsfd], check_lsfd)):
        if shutil.which(cmd[0]):
            # lsof exits 1 when some file could not be read; its output is still complete
            tools.append({"name": " ".join([os.path.basename(cmd[0])] + cmd[1:]), "cmd": cmd,
                          "check": check, "ok_status": (0, 1)})
        else:
            notes.append(f"{cmd[0]} not installed: skipped")
    tools += [
        {"name": "readlink floor", "cmd": [fdpop, "--floor", "readlink"], "check": check_floor},
        {"name": "fdinfo floor", "cmd": [fdpop, "--floor", "fdinfo"], "check": check_floor},
    ]

    tmpdir = tempfile.mkdtemp(prefix="fds-bench.")
    pop = None

    def stop(signum, frame):
        raise KeyboardInterrupt

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, stop)
    try:
        pop = subprocess.Popen([fdpop, "-n", str(a.procs), "-m", str(a.fds)] + (["--shared"] if a.shared else []),
                               stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        line = pop.stdout.readline()
        ready = pop.stdout.readline().split()
        if not line.startswith("PID") or not ready or ready[0] != "READY":
            raise Failed(f"fdpop did not start: {line!r} {ready!r}")
        kids = set()
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        st = f.read()
                except OSError:
                    continue
                if int(st.rsplit(")", 1)[1].split()[1]) == pop.pid:
                    kids.add(int(pid))
        expect = int(ready[2])
        if len(kids) != int(ready[1]):
            raise Failed(f"fdpop said {ready[1]} processes, /proc shows {len(kids)}")
        total_fds = sum(len(os.listdir(f"/proc/{p}/fd")) for p in os.listdir("/proc") if p.isdigit()
                        and os.path.isdir(f"/proc/{p}/fd") and os.access(f"/proc/{p}/fd", os.R_OK))
        nprocs = sum(1 for p in os.listdir("/proc") if p.isdigit())
        print(f"fdpop: {len(kids)} processes, {expect} fds; system: {nprocs} processes, "
              f"about {total_fds} fds", file=sys.stderr)

        results = {t["name"]: {"wall": [], "rss": [], "seen": None, "failed": None, "lines": 0} for t in tools}

        def one(t, timed):
            r = results[t["name"]]
            if r["failed"]:
                return
            try:
                wall, rss, text, err = run_once(t, fdpop, tmpdir, a.timeout)
                seen = t["check"](text, kids)
                if seen < expect:
                    raise Failed(f"output shows {seen} of the population's {expect} fds")
            except (Failed, ValueError, KeyError) as e:
                r["failed"] = str(e)
                keep = tempfile.NamedTemporaryFile(prefix="fds-bench-failed.", delete=False)
                with open(os.path.join(tmpdir, "out"), "rb") as f:
                    shutil.copyfileobj(f, keep)
                keep.close()
                print(f"fds-bench: {t['name']} FAILED: {e} (output kept in {keep.name})", file=sys.stderr)
                return
            r["seen"] = seen
            r["lines"] = text.count("\n")
            if timed:
                r["wall"].append(wall)
                r["rss"].append(rss)

        for t in tools:               # warm-up: page cache, dentries
            one(t, False)
        for i in range(a.runs):
            for t in tools:
                one(t, True)
            print(f"round {i + 1}/{a.runs} done", file=sys.stderr)
    finally:
        if pop:
            try:
                os.killpg(pop.pid, signal.SIGTERM)
                pop.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(pop.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pop.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)

    med = {n: statistics.median(r["wall"]) for n, r in results.items() if r["wall"]}
    rss = {n: max(r["rss"]) for n, r in results.items() if r["rss"]}
    lsof = next((t["name"] for t in tools if t["name"].startswith("lsof")), None)
    lsfd = next((t["name"] for t in tools if t["name"].startswith("lsfd")), None)
    floor = "readlink floor"
    lines = [
        f"{len(kids)} fdpop processes, {expect} of their fds; {nprocs} processes and about "
        f"{total_fds} fds on the system; {a.runs} timed runs per tool, round-robin"
        + ("; every fdpop process shares one stdout pipe and one unix socket (--shared)." if a.shared else "."),
        "",
        "| tool | wall, median (min) | vs lsof -nP | vs lsfd | vs readlink floor | peak RSS (max) | RSS vs lsof -nP | population fds seen | output lines |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tools:
        n = t["name"]
        r = results[n]
        if r["failed"]:
            lines.append(f"| {n} | FAILED: {r['failed']} | | | | | | | |")
            continue
        lines.append(
            f"| {n} | {med[n]:.3f} s ({min(r['wall']):.3f} s) | {fmt_ratio(med[n], med.get(lsof))} | "
            f"{fmt_ratio(med[n], med.get(lsfd))} | {fmt_ratio(med[n], med.get(floor))} | "
            f"{rss[n] / 1024:.1f} MiB | {fmt_ratio(rss[n], rss.get(lsof))} | {r['seen']} | {r['lines']} |")
    lines.append("")
    d = "diag-fds"
    if d in med:
        targets = []
        if lsof in med:
            ok = med[lsof] / med[d] >= 5
            targets.append(f"- diag-fds >= 5x faster than lsof -nP: {'met' if ok else 'MISSED'} "
                           f"({med[lsof] / med[d]:.1f}x: {med[d]:.3f} s vs {med[lsof]:.3f} s)")
        if floor in med:
            ok = med[d] <= 1.5 * med[floor]
            targets.append(f"- diag-fds within 1.5x of the readlink floor: {'met' if ok else 'MISSED'} "
                           f"({med[d] / med[floor]:.2f}x: {med[d]:.3f} s vs {med[floor]:.3f} s)")
        if lsof in rss:
            ok = rss[d] < rss[lsof]
            targets.append(f"- diag-fds peak RSS below lsof's: {'met' if ok else 'MISSED'} "
                           f"({rss[d] / 1024:.1f} MiB vs {rss[lsof] / 1024:.1f} MiB)")
        lines += ["Targets:", ""] + targets + [""]
    if notes:
        lines += ["Notes:", ""] + [f"- {x}" for x in notes] + [""]
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Failed as e:
        sys.exit(f"fds-bench: {e}")
