#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Compare diag-core with gcore (gdb) on live processes: time, the target's pause, disk.

For each target (tests/fixtures/corefix: a heap filled with data, threads blocked in
known functions, and a meter thread that spins on the clock), run each tool R times,
round-robin, and measure:

  wall      the tool's wall time, fork to reap (median and min)
  gap       the longest gap the target's meter thread saw in its clock reads during
            the run: the longest time it did not run (stopped or preempted)
  stopped   the time the meter thread was stopped during the run, neither running
            nor waiting for a CPU (window - cpu time - run_delay from schedstat)
  self      diag-core's own pause_ms (-J); gcore reports none
  disk      the core's st_blocks * 512; apparent: its st_size
  resident  the target's resident non-zero data in the mappings a core holds

Each core is checked (one NT_PRSTATUS per thread, heap words equal to the fixture's
pattern) so that a tool that fails is not timed as a fast one. See bench/README.md.
"""

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import diagtest as dt  # noqa: E402  (the corefix driver, the ELF core reader, /proc helpers)


def _stack_bench():
    """bench/stack-bench.py as a module: its tool runner (wall time, wait4, pinning,
    timeout), the clean-up of tools still running, formats and the machine line."""
    spec = importlib.util.spec_from_file_location("stack_bench", os.path.join(REPO, "bench", "stack-bench.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sb = _stack_bench()
med, fmt_s, rel = sb.med, sb.fmt_s, sb.rel

SCENARIOS = {
    "big": ("2 GiB mapped, 1 GiB resident, 10 threads",
            ["--heap", "1024", "--sparse", "1024", "--threads", "10", "--spinners", "0", "--meter"]),
    "threads": ("1,000 threads, 64 MiB heap",
                ["--threads", "1000", "--heap", "64", "--spinners", "0", "--meter"]),
    # diag-core --stacks-only against gcore's whole core: how long each stops the process
    "stacks": ("diag-core --stacks-only, 512 MiB heap, 4 threads (gcore: its whole core)",
               ["--heap", "512", "--threads", "4", "--spinners", "0", "--meter"]),
}
STACKS_ONLY = {"stacks"}      # scenarios where diag-core runs with --stacks-only
PAUSE_TARGET_MS = 100.0
SPEEDUP_TARGET = 5.0
DISK_SLACK = 0.05


class BenchError(Exception):
    pass


def check_core(path, fx, rnd, heap=True):
    """None if path is a core of fx with every thread and (heap) the heap's data, else why."""
    if not os.path.exists(path):
        return "no core file %s" % path
    ec = dt.ElfCore(path)
    if ec.error:
        return "not a well-formed core: %s" % ec.error
    want = dt.task_ids(fx.pid)
    if ec.prstatus_pids() != want:
        return "NT_PRSTATUS for %d threads, the process has %d" % (len(ec.prstatus_pids()), len(want))
    if not heap:
        return None
    base, size = fx.info["heap"]["addr"], fx.info["heap"]["size"]
    for off in [0, size - 8] + [rnd.randrange(size // 8) * 8 for _ in range(62)]:
        got = ec.u64(base + off)
        if got != dt.corefix_word(off):
            return "heap word at offset %#x: %s, want %#x" % (off, got if got is None else hex(got),
                                                               dt.corefix_word(off))
    return None


def tools(args):
    out = []
    if not os.access(args.diag_core, os.X_OK):
        raise BenchError(f"{rel(args.diag_core)} not found: build it (meson setup build-corebench "
                         "-Dbuildtype=release -Dman=disabled && ninja -C build-corebench)")
    out.append(("diag-core", lambda pid, prefix: [args.diag_core, "-J", "-o", prefix, str(pid)]))
    notes = []
    gcore = shutil.which(args.gcore)
    if gcore:
        out.append(("gcore", lambda pid, prefix: [gcore, "-o", prefix, str(pid)]))
    else:
        notes.append(f"gcore ({args.gcore}) is not installed: skipped (Debian: apt-get install gdb)")
    return out, notes


def write_floor(outdir, nbytes):
    """Seconds to write nbytes of non-zero data to a new file in outdir, 4 MiB per
    write(2), one thread: what writing the core's data costs at the least here."""
    buf = b"\x5a" * (4 << 20)
    path = os.path.join(outdir, "floor")
    t0 = time.monotonic()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        left = nbytes
        while left > 0:
            left -= os.write(fd, buf[:min(left, len(buf))])
    finally:
        os.close(fd)
    t = time.monotonic() - t0
    os.unlink(path)
    os.sync()
    return t


def bench_scenario(key, tool_list, args, meter_cpu, tool_cpus, outdir, metered=True):
    """metered: the target's meter thread spins (pinned to meter_cpu, the tools to
    tool_cpus) and the pause is measured; else the target is idle, nothing is
    pinned, and wall time is what counts."""
    title, fxargs = SCENARIOS[key]
    if not metered:
        fxargs = [a for a in fxargs if a != "--meter"]
        meter_cpu = tool_cpus = None
    if meter_cpu is not None:
        fxargs = fxargs + ["--meter-cpu", str(meter_cpu)]
    res = {name: {"wall": [], "gap": [], "stopped": [], "self": [], "disk": [], "size": [], "fail": None}
           for name, _ in tool_list}
    res["write floor"] = {"wall": [], "fail": None}
    rnd = random.Random(1)
    with dt.CoreFixture(fxargs, ready_timeout=300) as fx:
        status = dt.read_file("/proc/%d/status" % fx.pid) or ""
        info = {"threads": len(dt.task_ids(fx.pid)),
                "vmsize": int(status.split("VmSize:")[1].split()[0]) << 10,
                "rss": int(status.split("VmRSS:")[1].split()[0]) << 10}
        info["resident_nonzero"] = dt.resident_nonzero(fx.pid)[0]

        def one(name, cmd, timed):
            r = res[name]
            prefix = os.path.join(outdir, name)
            core = f"{prefix}.{fx.pid}"
            fx.command("gap")
            stacks = key in STACKS_ONLY and name == "diag-core"
            argv = cmd(fx.pid, prefix)
            if stacks:
                argv = argv[:1] + ["--stacks-only"] + argv[1:]
            wall, _, status, out, err = sb.run_tool(argv, tool_cpus, args.timeout)
            m = fx.command("gap")
            why = None if status == 0 else f"exit {status}: {err.strip()[-300:]!r}"
            why = why or check_core(core, fx, rnd, heap=not stacks)
            selfms = None
            if not why and name == "diag-core":
                try:
                    selfms = json.loads(out)["pause_ms"]
                except (ValueError, KeyError) as e:
                    why = f"no -J summary ({e})"
            if why:
                r["fail"] = why
            elif timed:
                st = os.stat(core)
                r["wall"].append(wall)
                if metered:
                    r["gap"].append(m["meter_gap_us"])
                    r["stopped"].append(m["meter_stopped_us"])
                r["disk"].append(st.st_blocks * 512)
                r["size"].append(st.st_size)
                if selfms is not None:
                    r["self"].append(selfms)
            if os.path.exists(core):
                os.unlink(core)
            os.sync()       # the next run does not pay for this one's writeback

        for name, cmd in tool_list:             # warm-up: page cache, gdb's symbol tables
            print(f"... {key}: warm-up {name}", file=sys.stderr, flush=True)
            one(name, cmd, False)
        for i in range(args.runs):
            for name, cmd in tool_list:         # round-robin: background noise is shared
                if res[name]["fail"]:
                    continue
                print(f"... {key}: run {i + 1} {name}", file=sys.stderr, flush=True)
                one(name, cmd, True)
            if not metered:
                res["write floor"]["wall"].append(write_floor(outdir, info["resident_nonzero"]))
    if metered:
        del res["write floor"]
    return title, info, res


# ---- report ----

def fmt_ms(ms):
    return sb.fmt_ms(ms * 1000)


def fmt_b(n):
    for unit, k in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << k:
            return f"{n / (1 << k):.2f} {unit}"
    return f"{n} B"


def table(key, title, info, res, runs):
    lines = [f"### {title} (`corefix {' '.join(SCENARIOS[key][1])}`), {runs} runs per tool", "",
             f"Target: {info['threads']} threads, {fmt_b(info['vmsize'])} mapped, {fmt_b(info['rss'])} resident, "
             f"{fmt_b(info['resident_nonzero'])} resident non-zero data in the mappings a core holds.", "",
             "| tool | wall, median (min) | target's longest gap (meter), median | target stopped (meter), median "
             "| self-reported pause, median (max) | disk used, median | apparent size | disk / resident non-zero |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        if r["fail"]:
            lines.append(f"| {name} | FAILED: {r['fail']} | | | | | | |")
            continue
        st = [x for x in r["stopped"] if x >= 0]
        lines.append(
            f"| {name} | {fmt_s(med(r['wall']))} (min {fmt_s(min(r['wall']))}) "
            f"| {fmt_ms(med(r['gap']) / 1000)} | {fmt_ms(med(st) / 1000) if st else 'n/a'} "
            f"| {fmt_ms(med(r['self'])) + ' (max ' + fmt_ms(max(r['self'])) + ')' if r['self'] else '-'} "
            f"| {fmt_b(med(r['disk']))} | {fmt_b(med(r['size']))} "
            f"| {med(r['disk']) / info['resident_nonzero']:.3f} |")
    return lines


def wall_table(key, title, res, runs):
    lines = [f"Wall time, target idle (no meter thread), nothing pinned, {runs} runs per tool:", "",
             "| tool | wall, median (min) | disk used, median |", "|---|---|---|"]
    for name, r in res.items():
        if r["fail"]:
            lines.append(f"| {name} | FAILED: {r['fail']} | |")
            continue
        disk = fmt_b(med(r["disk"])) if r.get("disk") else "(the same data, one stream)"
        lines.append(f"| {name} | {fmt_s(med(r['wall']))} (min {fmt_s(min(r['wall']))}) | {disk} |")
    return lines


def verdicts(key, info, res, wall_res):
    d, g = res.get("diag-core"), res.get("gcore")
    if not d or d["fail"]:
        return [f"- {key}: diag-core failed, no verdict"]
    out = []
    selfms, gapms = med(d["self"]), med(d["gap"]) / 1000
    worst = max(max(d["self"]), max(d["gap"]) / 1000)
    ok = "met" if selfms <= PAUSE_TARGET_MS and gapms <= PAUSE_TARGET_MS else "MISSED"
    out.append(f"- {key}, pause <= {PAUSE_TARGET_MS:g} ms: {ok} (self-reported median {selfms:.1f} ms, "
               f"meter's longest gap median {gapms:.1f} ms, worst of either {worst:.1f} ms)")
    wd, wg, wf = wall_res.get("diag-core"), wall_res.get("gcore"), wall_res.get("write floor")
    if wd and wg and not wd["fail"] and not wg["fail"]:
        x = med(wg["wall"]) / med(wd["wall"])
        ok = "met" if x >= SPEEDUP_TARGET else "MISSED"
        floor = (f"; writing the same data in one stream takes {fmt_s(med(wf['wall']))}, so "
                 f"{SPEEDUP_TARGET:g}x would need {fmt_s(med(wg['wall']) / SPEEDUP_TARGET)}"
                 if wf and wf["wall"] else "")
        out.append(f"- {key}, >= {SPEEDUP_TARGET:g}x faster than gcore (target idle): {ok} ({x:.1f}x: "
                   f"diag-core {fmt_s(med(wd['wall']))}, gcore {fmt_s(med(wg['wall']))} median{floor})")
    if g and not g["fail"]:
        x = med(g["wall"]) / med(d["wall"])
        out.append(f"- {key}, wall vs gcore with the meter spinning, tools pinned to one CPU: {x:.1f}x "
                   f"(diag-core {fmt_s(med(d['wall']))}, gcore {fmt_s(med(g['wall']))} median)")
        out.append(f"- {key}, pause vs gcore: {med(g['gap']) / max(med(d['gap']), 1):.0f}x shorter "
                   f"(meter's longest gap {gapms:.1f} ms vs {med(g['gap']) / 1000:.1f} ms)")
    limit = info["resident_nonzero"] * (1 + DISK_SLACK)
    disk = med(d["disk"])
    ok = "met" if disk <= limit else "MISSED"
    out.append(f"- {key}, disk <= resident non-zero data + {DISK_SLACK:.0%}: {ok} ({fmt_b(disk)} vs "
               f"{fmt_b(info['resident_nonzero'])}, {disk / info['resident_nonzero']:.3f}x"
               + (f"; gcore {fmt_b(med(g['disk']))}, {med(g['disk']) / info['resident_nonzero']:.2f}x)"
                  if g and not g["fail"] else ")"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-corebench"),
                    help="meson build directory with a release build (default: build-corebench)")
    ap.add_argument("--diag-core", help="diag-core binary (default: BUILD/tools/diag-core/diag-core)")
    ap.add_argument("--corefix", help="corefix binary (default: BUILD/tests/fixtures/corefix)")
    ap.add_argument("--gcore", default="gcore", help="gcore command (default: gcore)")
    ap.add_argument("-r", "--runs", type=int, default=3, help="timed runs per tool (default 3)")
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append",
                    help="run only this target (again for more); default all")
    ap.add_argument("--dir", help="where the cores are written (default: a new directory in $TMPDIR); "
                    "it needs room for gcore's core of the big target, about 2.2 GB")
    ap.add_argument("--timeout", type=float, default=600, help="seconds before a tool run is killed")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin the meter to the last CPU and the tools to the others")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables to FILE")
    args = ap.parse_args()
    args.diag_core = args.diag_core or os.path.join(args.build, "tools", "diag-core", "diag-core")
    args.corefix = args.corefix or os.path.join(args.build, "tests", "fixtures", "corefix")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    dt.paths.corefix = os.path.abspath(args.corefix)

    signal.signal(signal.SIGTERM, sb.on_term)
    signal.signal(signal.SIGHUP, sb.on_term)
    meter_cpu, tool_cpus = sb.pin_plan(args.no_pin)

    outdir = tempfile.mkdtemp(prefix="core-bench-", dir=args.dir)
    out = []
    try:
        if not os.access(args.corefix, os.X_OK):
            raise BenchError(f"{rel(args.corefix)} not found: build it (ninja -C BUILD)")
        tool_list, notes = tools(args)
        out += sb.header_lines(meter_cpu, tool_cpus, notes)
        verdict = []
        for key in args.only or list(SCENARIOS):
            title, info, res = bench_scenario(key, tool_list, args, meter_cpu, tool_cpus, outdir)
            out += table(key, title, info, res, args.runs) + [""]
            _, _, wall_res = bench_scenario(key, tool_list, args, meter_cpu, tool_cpus, outdir, metered=False)
            out += wall_table(key, title, wall_res, args.runs) + [""]
            verdict += verdicts(key, info, res, wall_res)
        out += ["diag-core against the targets:", ""] + verdict
    except BenchError as e:
        print(f"core-bench: {e}", file=sys.stderr)
        return 1
    finally:
        sb.kill_live_children()
        shutil.rmtree(outdir, ignore_errors=True)
    sb.emit(out, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
