# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record against the host as /proc shows it: the recorder runs at -i 1s
--flush 1s for about 5 s while a Python fixture holds 64 MiB it touched; the
recording read back (show --dump) must have one interval a second (as many as the
run lasted, give or take one, realtime increasing, none missing, most on time);
the fixture's row with the pid, parent, uid, name and command line of /proc and its
RSS within 10 % of /proc/PID/statm; MemTotal of /proc/meminfo; a plausible load and
process count, the rows per interval near the number of /proc's pids; the D-state
table; the recorder's "start" event. --openmetrics FILE: each interval's file (read
over and over during the run) is whole, ends with `# EOF`, every line a comment or
a sample, diagkit_memory_total_bytes is MemTotal; it is replaced by rename, and no
temporary file is left beside it."""
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402

RUN_S = 5.0
HOLD_MIB = 64
TOL = 0.10
FIXTURE = ("import os, sys, signal; b = bytearray(%d << 20); "
           "[b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; "
           "print(os.getpid(), flush=True); signal.pause()" % HOLD_MIB)
SAMPLE_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                       r'-?([0-9.eE+-]+|NaN|\+Inf|-Inf)$')


def meminfo(key):
    for line in (dt.read_file("/proc/meminfo") or "").splitlines():
        k, _, v = line.partition(":")
        if k == key:
            return int(v.split()[0]) * 1024
    return None


def nr_pids():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def proc_cmdline(pid):
    t = dt.read_file("/proc/%d/cmdline" % pid) or ""
    return " ".join(t.rstrip("\0").split("\0"))


def status_uid(pid):
    m = re.search(r"^Uid:\s*(\d+)", dt.read_file("/proc/%d/status" % pid) or "", re.M)
    return int(m.group(1)) if m else None


class PromWatch:
    """Reads the OpenMetrics file as often as it can (a snaptest.Sampler): every
    read whole (ends with # EOF), and how often the file read was another one (a
    rename puts a new inode in place each interval)."""

    def __init__(self, path):
        self.path, self.reads, self.torn, self.inode, self.changes = path, 0, [], None, 0

    def read(self):
        try:
            with open(self.path) as f:
                ino = os.fstat(f.fileno()).st_ino
                self.changes += self.inode is not None and ino != self.inode
                self.inode = ino
                text = f.read()
        except OSError:
            return None
        self.reads += 1
        if not text.endswith("# EOF\n") and len(self.torn) < 5:
            self.torn.append(text[-200:])
        return None


def scenario(chk, tmp):
    rec_dir = os.path.join(tmp, "rec")
    prom_dir = os.path.join(tmp, "metrics")
    os.mkdir(prom_dir)
    prom = os.path.join(prom_dir, "diagkit.prom")
    python = dt.need_program("python3")
    fx = subprocess.Popen([python, "-c", FIXTURE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          cwd="/", start_new_session=True, preexec_fn=dt._child_setup)
    rec = rt.Recorder(rec_dir, "-i", "1s", "--flush", "1s", "--openmetrics", prom)
    try:
        pid = int(fx.stdout.readline().decode().strip() or 0)
        chk.eq(pid, fx.pid, "the fixture printed its pid")
        truth = {"ppid": os.getpid(), "uid": status_uid(pid), "comm": (dt.read_file("/proc/%d/comm" % pid) or "").strip(),
                 "cmd": proc_cmdline(pid)}
        statm = [int(x) for x in (dt.read_file("/proc/%d/statm" % pid) or "0 0").split()[:2]]
        resident = statm[1] * os.sysconf("SC_PAGE_SIZE")
        t0 = time.monotonic()
        rec.start()
        chk.check(rec.wait_started(), "the recorder started\n%s" % rt.log_tail(rec))
        counts = []
        pw = PromWatch(prom)
        with st.Sampler(pw.read, interval=0.005):
            while time.monotonic() - t0 < RUN_S:
                counts.append(nr_pids())
                time.sleep(0.2)
        loadavg = float((dt.read_file("/proc/loadavg") or "0").split()[0])
        rc = rec.stop()
        elapsed = time.monotonic() - t0
        chk.eq(rc, 0, "the recorder's exit status on SIGTERM\n%s" % rec.output())
    finally:
        rec.close()
        dt.kill_group(fx)
        fx.wait()
        fx.stdout.close()

    r, ivs = rt.dump(rec_dir)
    chk.eq(r.rc, 0, "show --dump exit status\n%s" % r.describe())
    chk.check(ivs and all("unparsed" not in iv for iv in ivs), "every line of show --dump parses")
    ivs = [iv for iv in ivs if "unparsed" not in iv]
    dt.log("%d intervals over %.2f s; late_us %s; took_us %s" % (len(ivs), elapsed, [iv.get("late_us") for iv in ivs],
                                                                   [iv.get("took_us") for iv in ivs]))
    if not chk.check(len(ivs) >= 3, "at least 3 intervals recorded in %.1f s: %d" % (elapsed, len(ivs))):
        return
    chk.check(abs(len(ivs) - elapsed) <= 1.0 + 0.01,
              "one interval a second: %d intervals in a run of %.2f s" % (len(ivs), elapsed))
    chk.eq([iv.get("seq") for iv in ivs], list(range(len(ivs))), "the intervals' sequence numbers")
    chk.check(all(iv.get("interval_ms") == 1000 for iv in ivs), "interval_ms is 1000 in each")
    times = [iv.get("time_ns") or 0 for iv in ivs]
    steps = [(b - a) / 1e9 for a, b in zip(times, times[1:])]
    dt.log("steps between intervals (s): %s" % ", ".join("%.3f" % s for s in steps))
    chk.check(all(0.5 < s < 1.5 for s in steps), "realtime increases by about 1 s each interval: %s" % steps)
    now_ns = time.time_ns()
    chk.check(abs(times[-1] - now_ns) < 60e9, "the last interval's realtime %d is now (%d)" % (times[-1], now_ns))
    late = [iv.get("late_us") for iv in ivs]
    chk.check(all(isinstance(x, int) and x >= 0 for x in late), "late_us is a count of microseconds: %s" % late)
    on_time = sum(1 for x in late if isinstance(x, int) and x < 100000)
    chk.check(on_time >= 0.8 * len(ivs), "most intervals start within 100 ms of their time: %s" % late)

    # the fixture
    rows = rt.procs_of(ivs, pid)
    chk.check(len(rows) >= len(ivs) - 1, "the fixture %d is in every interval it lived through: %d of %d"
              % (pid, len(rows), len(ivs)))
    if rows:
        row = rows[-1][1]
        for k, v in truth.items():
            chk.eq(row.get(k), v, "the fixture's %s" % k)
        rss = [rw.get("rss") for _, rw in rows]
        dt.log("fixture rss: %s; /proc/%d/statm resident %d" % (rss, pid, resident))
        chk.check(all(x is not None and abs(x - resident) <= TOL * resident for x in rss),
                  "the fixture's rss %s within %d %% of statm's %d" % (rss, TOL * 100, resident))
        chk.check(all(x is not None and x >= HOLD_MIB << 20 for x in rss), "rss holds the %d MiB touched" % HOLD_MIB)
        chk.check(all(rw.get("start") == rows[0][1].get("start") for _, rw in rows), "the start time stays the same")

    # the host
    mem_total = meminfo("MemTotal")
    ncpu = os.cpu_count()
    for iv in ivs:
        h = iv.get("host") or {}
        if not chk.eq(h.get("mem_total"), mem_total, "interval %s: mem_total against /proc/meminfo" % iv.get("seq")):
            break
    h = ivs[-1].get("host") or {}
    dt.log("host: load1 %r (loadavg now %.2f), nr_procs %r, ncpu %r; /proc pids during the run %s"
           % (h.get("load1"), loadavg, h.get("nr_procs"), h.get("ncpu"), counts))
    chk.eq(h.get("ncpu"), ncpu, "ncpu")
    load1 = (h.get("load1") or -1) / 1000.0
    chk.check(0 <= load1 and abs(load1 - loadavg) <= 1.0 + 0.3 * loadavg,
              "load1 %.2f (x1000 in the record) against /proc/loadavg's %.2f" % (load1, loadavg))
    lo, hi = min(counts), max(counts)
    for iv in ivs[1:]:
        n = len(iv.get("proc") or [])
        np_ = (iv.get("host") or {}).get("nr_procs")
        ok = chk.check(lo * 0.85 - 5 <= n <= hi * 1.15 + 5,
                       "interval %s: %d process rows, /proc had %d-%d pids" % (iv.get("seq"), n, lo, hi))
        ok = chk.check(np_ is not None and lo * 0.85 - 5 <= np_ <= hi * 1.15 + 5,
                       "interval %s: nr_procs %r, /proc had %d-%d pids" % (iv.get("seq"), np_, lo, hi)) and ok
        if not ok:
            break
    chk.check(all(isinstance(iv.get("dstate"), list) for iv in ivs), "every interval has its D-state table")
    chk.check(all(isinstance(iv.get("cgroup"), list) and iv["cgroup"] for iv in ivs), "every interval has cgroups")
    starts = rt.events(ivs, "start")
    if chk.eq(len(starts), 1, "one start event"):
        chk.eq(starts[0].get("pid"), rec.pid, "the start event names the recorder's pid")
        chk.eq(starts[0].get("interval_ns"), ivs[0].get("time_ns"), "the start event is in the first interval")

    # OpenMetrics
    dt.log("openmetrics: %d reads during the run, the file replaced %d times, torn %d"
           % (pw.reads, pw.changes, len(pw.torn)))
    chk.check(pw.reads > 10, "the OpenMetrics file was read during the run (%d reads)" % pw.reads)
    chk.check(not pw.torn, "no read of the OpenMetrics file saw it cut short: %r" % pw.torn)
    chk.check(pw.changes >= len(ivs) - 3, "a new file (renamed into place) each interval: replaced %d times, %d intervals"
              % (pw.changes, len(ivs)))
    chk.eq(sorted(os.listdir(prom_dir)), ["diagkit.prom"], "only the OpenMetrics file in its directory (no .tmp)")
    text = dt.read_file(prom) or ""
    lines = text.splitlines()
    chk.check(lines and lines[-1] == "# EOF", "the OpenMetrics file ends with # EOF: %r" % lines[-1:])
    bad = [l for l in lines if not l.startswith("#") and not SAMPLE_RE.match(l)]
    chk.check(not bad, "every line is a comment or `name{labels} value`: %r" % bad[:5])
    chk.eq(text.count("# EOF"), 1, "one # EOF")
    vals = {l.split()[0]: l.split()[1] for l in lines if l.startswith("diagkit_memory_total_bytes ")}
    chk.eq(vals.get("diagkit_memory_total_bytes"), str(mem_total), "diagkit_memory_total_bytes is MemTotal in bytes")


if __name__ == "__main__":
    rt.run_test(__doc__, "record-basic", scenario)
