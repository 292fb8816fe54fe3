# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top's batch mode on spinfix (a thread spinning) and the demo's worker pool:
  -b -n 2 -d 1 -p PIDS: two text frames, each a header and a column line with every
  pid under it; in the second the spinner's CPU% is over 30 and every RSS is within
  5% (or the display's rounding) of /proc's VmRSS;
  -J -n 2 -d 1 (every process): two JSON lines with the documented keys, every pid
  of the fixtures among the rows with its comm and command line, the spinner's
  cpu_pct over 30 in the second, rss within 5% of VmRSS, time_ns about now;
  -b -n 5 | head -1: diag-top exits 0 and says nothing on stderr (EPIPE is no error)."""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import toptest as tt  # noqa: E402

ROW_KEYS = {"pid", "user", "state", "cpu_pct", "rss", "rss_growth_per_min", "majflt_s", "read_bps", "write_bps",
            "threads", "blocked_ms", "wait", "count", "pss", "cmd", "comm"}
FRAME_KEYS = {"time", "time_ns", "interval_ms", "header", "rows"}


def main():
    tt.setup(__doc__, "spinfix", "demo_worker")
    dt.set_subreaper()
    chk = dt.Checker("top-batch")
    spin = tt.Spinner()
    demo = None
    try:
        demo = tt.Demo()
        pids = sorted([spin.pid, demo.pid, demo.backend, demo.holder] + demo.waiters)
        text(chk, spin, pids)
        jsonl(chk, spin, pids)
        epipe(chk)
    finally:
        spin.close()
        if demo:
            demo.close()
        dt.reap_orphans()
    chk.finish()


def rss_close(got, want):
    return got is not None and want is not None and abs(got - want) <= max(0.05 * want, 0.06 * 2**20)


def text(chk, spin, pids):
    res = dt.run([tt.tool(), "-b", "-n", 2, "-d", 1, "-p", ",".join(map(str, pids))], timeout=30)
    chk.eq(res.rc, 0, "-b -n 2: exit status\n%s" % res.describe())
    chk.check(not res.err.strip(), "-b -n 2: stderr is empty\n%s" % res.describe())
    lines = res.out.splitlines()
    heads = [i for i, l in enumerate(lines) if tt.header_line([l])[0] is not None]
    if not chk.eq(len(heads), 2, "-b -n 2: column lines (frames)\n%s" % res.describe()):
        return
    chk.check(heads[0] > 0 and lines[0].strip(), "-b: a header before the first column line")
    frames = [tt.parse_rows(lines[h:heads[k + 1] if k + 1 < len(heads) else None]) for k, h in enumerate(heads)]
    for k, rows in enumerate(frames):
        chk.eq(sorted(r["pid"] for r in rows), pids, "-b frame %d: the rows' pids" % (k + 1))
    rows = {r["pid"]: r for r in frames[1]}
    cpu = rows.get(spin.pid, {}).get("CPU%")
    try:
        cpu = float(cpu)
    except (TypeError, ValueError):
        cpu = None
    chk.check(cpu is not None and cpu > 30, "-b frame 2: the spinner's CPU%% %r > 30" % cpu)
    for p in pids:
        got, want = tt.parse_bytes(rows.get(p, {}).get("RSS")), tt.vmrss(p)
        chk.check(rss_close(got, want), "-b frame 2: pid %d RSS %r, /proc VmRSS %r" % (p, rows.get(p, {}).get("RSS"), want))


def jsonl(chk, spin, pids):
    before = time.time_ns()
    res = dt.run([tt.tool(), "-b", "-J", "-n", 2, "-d", 1], timeout=60)
    chk.eq(res.rc, 0, "-J -n 2: exit status\n%s" % res.describe())
    chk.check(not res.err.strip(), "-J -n 2: stderr is empty\n%s" % res.describe()[-2000:])
    frames = []
    for l in res.out.splitlines():
        try:
            frames.append(json.loads(l))
        except ValueError:
            chk.fail("-J: a line is not JSON: %r" % l[:200])
    if not chk.eq(len(frames), 2, "-J -n 2: frames"):
        return
    for k, f in enumerate(frames):
        chk.check(FRAME_KEYS <= set(f), "-J frame %d: keys %s lack %s" % (k + 1, sorted(f), sorted(FRAME_KEYS - set(f))))
        chk.check(isinstance(f.get("header"), dict) and f["header"], "-J frame %d: a header object" % (k + 1))
        chk.check(abs((f.get("time_ns") or 0) - before) < 30 * 10**9, "-J frame %d: time_ns %r is about now"
                  % (k + 1, f.get("time_ns")))
        rows = {r.get("pid"): r for r in f.get("rows") or []}
        chk.check(set(pids) <= set(rows), "-J frame %d: fixtures' pids missing: %s" % (k + 1, sorted(set(pids) - set(rows))))
        bad = [r for r in f.get("rows") or [] if not ROW_KEYS <= set(r)]
        chk.check(not bad, "-J frame %d: rows lack keys %s" % (k + 1, sorted(ROW_KEYS - set(bad[0])) if bad else ""))
        for p in pids:
            r = rows.get(p) or {}
            chk.eq((r.get("comm"), r.get("cmd")), (dt.task_stat(p, p)[0], tt.cmdline(p)),
                   "-J frame %d: pid %d comm and cmd against /proc" % (k + 1, p))
    rows = {r.get("pid"): r for r in frames[1].get("rows") or []}
    chk.check(frames[1].get("interval_ms") and 700 <= frames[1]["interval_ms"] <= 2000,
              "-J frame 2: interval_ms %r about -d 1" % frames[1].get("interval_ms"))
    cpu = (rows.get(spin.pid) or {}).get("cpu_pct")
    chk.check(isinstance(cpu, (int, float)) and cpu > 30, "-J frame 2: the spinner's cpu_pct %r > 30" % cpu)
    for p in pids:
        got, want = (rows.get(p) or {}).get("rss"), tt.vmrss(p)
        chk.check(rss_close(got, want), "-J frame 2: pid %d rss %r, /proc VmRSS %r" % (p, got, want))


def epipe(chk):
    argv = ["bash", "-c", "set -o pipefail; '%s' -b -n 5 -d 1 | head -1" % tt.tool()]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=dt.tool_env())
    chk.eq(p.returncode, 0, "-b | head -1: diag-top's exit status (pipefail)\n%s" % p.stderr.decode()[-1000:])
    chk.check(not p.stderr.strip(), "-b | head -1: nothing on stderr: %r" % p.stderr.decode()[-500:])
    chk.eq(len(p.stdout.decode().splitlines()), 1, "-b | head -1: one line out")


if __name__ == "__main__":
    main()
