#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""CPU cost per sample: libdiag's sampling + unwinding against perf record + perf report.

Start tests/fixtures/spinfix (a thread spinning in spin_a / spin_b, 70/30, built without
frame pointers), then, round-robin, R times each:

  ours    bench/perfsample PID HZ SECONDS: diag/perf.h with 16 KiB user stack copies
          and kernel callchains, every sample unwound from its copy and symbolized
          (inlines, file:line) as it arrives, as diag-sample does
  perf    perf record -e cpu-clock -F HZ --call-graph dwarf,16384 -p PID -- sleep
          SECONDS, then perf report --stdio -n --no-children --sort sym on that file
          (the unwinding and symbolizing happen in the report)

and measure each process's CPU time (user + system, from wait4), divided by the
samples it took or reported. Each side's leaf shares of spin_a and spin_b are printed
beside it, so that a side that unwinds wrongly is seen. Root (or a low
perf_event_paranoid) is needed; perf is /usr/bin/perf (Debian's linux-perf).
See bench/README.md.
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchError(Exception):
    pass


def run_measured(argv, stdout=subprocess.PIPE):
    """Run argv; its CPU seconds (user + system, itself and its reaped children), wall
    seconds, exit status and stdout."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    out = b""
    if stdout is subprocess.PIPE:
        out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    return ru.ru_utime + ru.ru_stime, wall, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def shares(leaves):
    a, b = leaves.get("spin_a", 0), leaves.get("spin_b", 0)
    return (a / (a + b)) if a + b else float("nan")


def run_ours(exe, pid, hz, secs):
    cpu, wall, rc, out, err = run_measured([exe, str(pid), str(hz), str(secs)])
    if rc == 77:
        raise BenchError("perfsample: " + err.strip())
    if rc != 0:
        raise BenchError(f"perfsample failed ({rc}): {err.strip()}")
    r = json.loads(out)
    return {"cpu": cpu, "samples": r["samples"], "lost": r["lost"], "share_a": shares(r["leaves"]),
            "unwind_median_us": r["unwind_median_ns"] / 1e3, "unwind_s": r["unwind_us"] / 1e6,
            "full": r["full"]}


REPORT_LINE = re.compile(r"^\s+([\d.]+)%\s+(\d+)\s+\[[.k]\]\s+(\S+)")


def run_perf(perf, pid, hz, secs, tmp):
    data = os.path.join(tmp, "perf.data")
    rec_cpu, _, rc, _, err = run_measured(
        [perf, "record", "-q", "-e", "cpu-clock", "-F", str(hz), "--call-graph", "dwarf,16384",
         "-p", str(pid), "-o", data, "--", "sleep", str(secs)])
    if rc != 0:
        raise BenchError(f"perf record failed ({rc}): {err.strip()[-300:]}")
    rep_cpu, _, rc, out, err = run_measured(
        [perf, "report", "-i", data, "--stdio", "-n", "--no-children", "--sort", "sym"])
    if rc != 0:
        raise BenchError(f"perf report failed ({rc}): {err.strip()[-300:]}")
    samples, leaves = 0, {}
    for line in out.splitlines():
        m = REPORT_LINE.match(line)
        if m:
            samples += int(m.group(2))
            leaves[m.group(3)] = leaves.get(m.group(3), 0) + int(m.group(2))
    if samples == 0:
        raise BenchError("perf report listed no samples")
    os.unlink(data)
    return {"record_cpu": rec_cpu, "report_cpu": rep_cpu, "cpu": rec_cpu + rep_cpu, "samples": samples,
            "share_a": shares(leaves)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"),
                    help="meson build directory (release build), default build-bench")
    ap.add_argument("--perf", default="/usr/bin/perf")
    ap.add_argument("--hz", type=int, default=499)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="spinning threads in the target (1 or more)")
    args = ap.parse_args()

    spinfix = os.path.join(args.build, "tests", "fixtures", "spinfix")
    perfsample = os.path.join(args.build, "bench", "perfsample")
    for exe in (spinfix, perfsample):
        if not os.access(exe, os.X_OK):
            print(f"{exe}: not built (meson setup {args.build} -Dbuildtype=release; ninja -C {args.build})",
                  file=sys.stderr)
            return 2
    if not shutil.which(args.perf):
        print(f"SKIP {args.perf} not found (Debian: linux-perf)")
        return 77

    target = subprocess.Popen([spinfix], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    ours, theirs = [], []
    try:
        m = re.fullmatch(r"READY pid=(\d+) tid=(\d+)", target.stdout.readline().strip())
        if not m:
            raise BenchError("spinfix did not start")
        pid = int(m.group(1))
        for _ in range(args.threads - 1):
            target.stdin.write("thread\n")
            target.stdin.flush()
            target.stdout.readline()
        print(f"target spinfix pid {pid}, {args.threads} spinning thread(s), {os.cpu_count()} CPUs; "
              f"{args.hz} Hz for {args.seconds} s, {args.runs} runs each, round-robin", flush=True)
        with tempfile.TemporaryDirectory(prefix="perf-bench-") as tmp:
            for i in range(args.runs):
                ours.append(run_ours(perfsample, pid, args.hz, args.seconds))
                theirs.append(run_perf(args.perf, pid, args.hz, args.seconds, tmp))
                o, t = ours[-1], theirs[-1]
                print(f"run {i + 1}: ours {o['samples']} samples {o['cpu'] * 1e3:.0f} ms CPU; "
                      f"perf {t['samples']} samples, record {t['record_cpu'] * 1e3:.0f} ms + "
                      f"report {t['report_cpu'] * 1e3:.0f} ms CPU", flush=True)
    except BenchError as e:
        print(f"perf-bench: {e}", file=sys.stderr)
        return 77 if "not permitted" in str(e) else 1
    finally:
        target.stdin.close()
        try:
            target.wait(5)
        except subprocess.TimeoutExpired:
            target.kill()
            target.wait()

    def per_sample(runs, key="cpu"):
        return statistics.median(r[key] / r["samples"] * 1e6 for r in runs)

    o_us = per_sample(ours)
    rec_us = per_sample(theirs, "record_cpu")
    rep_us = per_sample(theirs, "report_cpu")
    t_us = per_sample(theirs)
    unw_mean = statistics.median(r["unwind_s"] / r["samples"] * 1e6 for r in ours)
    unw_med = statistics.median(r["unwind_median_us"] for r in ours)
    print()
    print("CPU per sample (median over runs)       µs/sample   vs ours")
    print(f"  ours: sample + unwind + symbolize     {o_us:9.1f}     1.00")
    print(f"    of which unwinding, mean            {unw_mean:9.1f}")
    print(f"    of which unwinding, median sample   {unw_med:9.1f}")
    print(f"  perf record                           {rec_us:9.1f}   {rec_us / o_us:6.2f}")
    print(f"  perf report                           {rep_us:9.1f}   {rep_us / o_us:6.2f}")
    print(f"  perf record + report                  {t_us:9.1f}   {t_us / o_us:6.2f}")
    print(f"samples per run: ours {statistics.median(r['samples'] for r in ours):.0f} "
          f"(lost {sum(r['lost'] for r in ours)}, stacks of 3+ frames without error "
          f"{sum(r['full'] for r in ours)} of {sum(r['samples'] for r in ours)}), "
          f"perf {statistics.median(r['samples'] for r in theirs):.0f}")
    print(f"spin_a share of spin_a+spin_b leaves (expected ~0.70): ours "
          f"{statistics.median(r['share_a'] for r in ours):.2f}, perf "
          f"{statistics.median(r['share_a'] for r in theirs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
