#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record against atop, on a host of about 1,000 processes: overhead, size, trigger
latency and reading a day back.

Four parts (--only picks some):

  overhead  The host is brought to --procs processes in all (bench/lockpop: idle
            processes, --threads threads in all, some blocked on mutexes and an flock)
            plus churn: --churn short-lived processes started per second, each running
            a small shell loop (a few ms of CPU) and then `sleep 1`. Then
            `diag-record -i 1s -D DIR` and `atop -w FILE 1` are started AT ONCE and run
            side by side over the same --minutes (default 3) on the same population.
            After a 5 s warm-up, each one's CPU time is read from /proc/PID/stat
            (utime + stime + cutime + cstime, so children it reaped count; children still
            running at the end are added) at the start and at the end of the window:
            CPU % of one CPU = CPU seconds / window seconds. Just before the end, VmHWM and
            VmRSS from /proc/PID/status. Both are stopped with SIGTERM (diag-record writes
            what it holds). Targets (issue): diag-record <= 1 % of one CPU and <= 0.5x
            atop's, VmHWM and VmRSS <= 20 MiB.
  size      From the same run: the recording's bytes (its seg-*.drec files) and atop's raw
            file, each divided by the samples it holds (diag-record: intervals of
            `show --dump`; atop: CPU lines of `atop -r FILE -P CPU`) and multiplied by
            3,600 (1 s interval): bytes per hour EXTRAPOLATED from the measured minutes.
            Target: <= 0.5x atop's. Also from the dump: the recorder's own sample cost
            per interval (took_us: median, p99, max), how late intervals started
            (late_us) and the processes each interval holds; for atop, the processes of
            each sample (PRG lines) and its CPU per sample.
  trigger   With the population still there, --trigger-runs times: a new recorder
            `diag-record -i 1s -D DIR --on psi:io:some>P%@CG` (P = --psi-pct, default
            20; CG a cgroup v2 directory made for the run, so that other IO on the host
            neither fires it nor hides the generator's stall; system-wide when none can
            be made; the default window of 1 s, or what the kernel took: the recorder's
            log says when it armed 2 s instead, and the table reports what was armed).
            After 3 s of quiet, an IO pressure generator starts in CG (4 x `dd
            oflag=direct,dsync` of 1 MiB blocks into a temporary directory). Times,
            from the generator's start (realtime, just before the first dd is spawned):
            the threshold crossed (CG's io.pressure 'some' total, polled every ~10 ms,
            grown by P % of the armed window), the trigger event's time_ns in the dump,
            and a bare poll() of this script on the same trigger armed on the same file
            (when the kernel itself signals); snapshot completion = mtime of the
            snapshot's index.json - the event's time. Events before the generator
            started are counted as early. Targets: fired <= 1 s after the threshold is
            crossed, snapshot complete <= 3 s after firing.
  show      bench/recgen writes 24 h at 5 s of --gen-procs processes (17,280
            intervals); `diag-record show DIR` is timed --show-runs times (median; the
            text views of this build may be stubs: then the figure is the reading and
            decoding of the whole recording) and `show --dump DIR > /dev/null` once.
            atop has no way to write 24 h of samples other than running for 24 h, so
            its side is `atop -r FILE > /dev/null` and `atop -r FILE -P ALL >
            /dev/null` over the raw file of the overhead part, timed per sample and
            EXTRAPOLATED to 17,280 samples, next to `show --dump` of that part's own
            recording per interval. Target: show of 24 h <= 2 s.

Wall times: time.monotonic() around the process, from fork to wait. Run it as root
(atop and the recorder see every process; the PSI trigger needs write access to
/proc/pressure/io). Every process it starts is stopped at the end, on an error or on
Ctrl-C; atop is checked to be gone. Python 3 standard library only.
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
GEN_INTERVALS = 24 * 3600 // 5


def _load(name):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), os.path.join(HERE, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# the binaries found in the build tree, the host's process count, the error type: as snap-bench does
_snap = _load("snap-bench")
BenchError, resolve, population = _snap.BenchError, _snap.resolve, _snap.population


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=3, help="overhead window in minutes (default 3)")
    p.add_argument("--build", default="build-bench", help="meson build directory (default build-bench)")
    p.add_argument("--diag-record", help="diag-record binary (default BUILD/tools/diag-record/diag-record)")
    p.add_argument("--lockpop", help="lockpop binary (default BUILD/bench/lockpop)")
    p.add_argument("--recgen", help="recgen binary (default BUILD/bench/recgen)")
    p.add_argument("--atop", default="atop", help="atop command (default: atop on PATH)")
    p.add_argument("-n", "--procs", type=int, default=1000, help="processes on the host in all (default 1000)")
    p.add_argument("-t", "--threads", type=int, default=3000, help="lockpop's threads in all (default 3000)")
    p.add_argument("--churn", type=float, default=5, help="short-lived processes started per second (default 5)")
    p.add_argument("--trigger-runs", type=int, default=3, help="trigger latency runs (default 3)")
    p.add_argument("--psi-pct", type=int, default=20, help="the trigger's threshold: psi:io:some>P%% (default 20)")
    p.add_argument("--show-runs", type=int, default=3, help="timed runs of show (default 3)")
    p.add_argument("--gen-procs", type=int, default=1000, help="processes of recgen's recording (default 1000)")
    p.add_argument("--no-dump", action="store_true", help="do not time show --dump of the 24 h recording "
                   "(minutes of JSON)")
    p.add_argument("--only", default="overhead,trigger,show",
                   help="parts to run, comma-separated: overhead (with size), trigger, show (default all)")
    p.add_argument("--keep", help="keep the recordings, atop's file and the logs in this directory")
    p.add_argument("--markdown", help="also write the tables to this file")
    return p.parse_args()


# ---- processes we start, all stopped for sure ----

STARTED = []


def spawn(argv, log=None, **kw):
    out = open(log, "w") if log else subprocess.DEVNULL
    try:
        p = subprocess.Popen(argv, stdin=kw.pop("stdin", subprocess.DEVNULL), stdout=out,
                             stderr=subprocess.STDOUT if log else subprocess.DEVNULL, start_new_session=True, **kw)
    finally:
        if log:
            out.close()
    STARTED.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=20):
    """Signal p (its own process group), wait; SIGKILL past timeout. Returns its status."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    return p.returncode


def stop_all():
    for p in reversed(STARTED):
        stop(p)


def on_signal(sig, frame):
    raise KeyboardInterrupt


# ---- /proc readings ----

def stat_fields(pid):
    """Fields of /proc/PID/stat after the command, from state on (index 0 = state)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_ticks(pid):
    """utime + stime + cutime + cstime of pid, plus utime + stime of its live children."""
    f = stat_fields(pid)
    ticks = sum(int(x) for x in f[11:15])
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != pid:
            try:
                c = stat_fields(int(d))
            except OSError:
                continue
            if int(c[1]) == pid:
                ticks += int(c[11]) + int(c[12])
    return ticks


def status_kib(pid, *keys):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def dir_bytes(path, prefix=""):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.startswith(prefix))


# ---- the population ----

class Pop:
    """lockpop for the bulk of the processes, and a churn thread starting --churn short
    processes per second (each a shell loop of a few ms, then sleep 1)."""

    def __init__(self, lockpop, procs, threads, churn):
        # snap-bench's lockpop runner: started, READY awaited, ended by closing its stdin
        self.lp = _snap.Pop([lockpop, "--procs", str(procs), "--threads", str(max(threads, procs))], timeout=180)
        STARTED.append(self.lp.p)
        self.churn = churn
        self.started = 0
        self.halt = threading.Event()
        self.th = threading.Thread(target=self._churn, daemon=True)
        self.th.start()

    def _churn(self):
        live = []
        script = "n=0; while [ $n -lt 1500 ]; do n=$((n+1)); done; exec sleep 1"
        period = 1.0 / self.churn if self.churn > 0 else None
        nxt = time.monotonic()
        while not self.halt.is_set():
            if period:
                live.append(subprocess.Popen(["/bin/sh", "-c", script], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                self.started += 1
                nxt += period
            live = [p for p in live if p.poll() is None]
            self.halt.wait(max(0.0, nxt - time.monotonic()) if period else 1)
        for p in live:
            p.kill()
            p.wait()

    def close(self):
        self.halt.set()
        self.th.join(timeout=10)
        self.lp.close()


# ---- reading recordings back ----

def dump(rec, directory):
    """[interval dicts] of `diag-record show --dump DIR`."""
    p = subprocess.run([rec, "show", "--dump", directory], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600)
    if p.returncode not in (0, 4):
        raise BenchError("show --dump %s: exit %d: %s" % (directory, p.returncode, p.stderr.decode()[-300:]))
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def atop_samples(atop, raw):
    """[processes per sample] of atop's raw file: PRG lines whose is-process flag (the
    sixth field from the end) is y; atop lists every thread too, with n."""
    p = subprocess.run([atop, "-r", raw, "-P", "PRG"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=600, text=True)
    per, cur = [], None
    for line in p.stdout.splitlines():
        f = line.split()
        if f[:1] == ["PRG"] and len(f) > 6 and f[-6] == "y":
            cur = (cur or 0) + 1
        elif line == "SEP":
            if cur is not None:
                per.append(cur)
            cur = 0
    if cur:
        per.append(cur)
    return per


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1))))] if xs else 0


def timed(argv, out=subprocess.DEVNULL, timeout=900):
    t = time.monotonic()
    p = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, timeout=timeout)
    return time.monotonic() - t, p.returncode, p.stderr.decode(errors="replace")


# ---- the parts ----

def part_overhead(args, rec, atop, work, notes):
    recdir = os.path.join(work, "rec-overhead")
    raw = os.path.join(work, "atop.raw")
    r = spawn([rec, "-i", "1s", "-D", recdir], log=os.path.join(work, "rec-overhead.log"))
    a = spawn([atop, "-w", raw, "1"], log=os.path.join(work, "atop.log"))
    time.sleep(5)
    for p, name in ((r, "diag-record"), (a, "atop")):
        if p.poll() is not None:
            raise BenchError("%s exited at start (status %s); see its log in %s" % (name, p.returncode, work))
    window = args.minutes * 60
    t0 = time.monotonic()
    c0 = {"rec": cpu_ticks(r.pid), "atop": cpu_ticks(a.pid)}
    pops = []
    while time.monotonic() - t0 < window - 2:
        pops.append(population())
        time.sleep(min(10, max(0.1, window - 2 - (time.monotonic() - t0))))
    mem = {"rec": status_kib(r.pid, "VmHWM", "VmRSS"), "atop": status_kib(a.pid, "VmHWM", "VmRSS")}
    while time.monotonic() - t0 < window:
        time.sleep(0.05)
    c1 = {"rec": cpu_ticks(r.pid), "atop": cpu_ticks(a.pid)}
    secs = time.monotonic() - t0
    st_r, st_a = stop(r), stop(a)
    if st_r != 0:
        notes.append("diag-record exited with status %s at SIGTERM" % st_r)
    if st_a not in (0, 15, -signal.SIGTERM):      # atop exits 15 on SIGTERM
        notes.append("atop exited with status %s at SIGTERM" % st_a)
    cpu = {k: (c1[k] - c0[k]) / CLK_TCK for k in c0}
    ivs = dump(rec, recdir)
    per_atop = atop_samples(atop, raw)
    res = {
        "secs": secs, "cpu": cpu, "mem": mem,
        "procs": statistics.median(p for p, _ in pops), "threads": statistics.median(t for _, t in pops),
        "procs_range": (min(p for p, _ in pops), max(p for p, _ in pops)),
        "rec_bytes": dir_bytes(recdir, "seg-"), "atop_bytes": os.path.getsize(raw),
        "rec_intervals": len(ivs), "atop_samples": len(per_atop),
        "took": [iv["took_us"] for iv in ivs], "late": [iv["late_us"] for iv in ivs],
        "rec_procs": statistics.median(len(iv.get("proc") or []) for iv in ivs) if ivs else 0,
        "atop_procs": statistics.median(per_atop) if per_atop else 0,
        "recdir": recdir, "raw": raw,
    }
    return res


def armed_window(log):
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if "armed with" in line:
                    m = re.search(r"armed with (\S+)", line)
                    return m.group(1) if m else line.strip()
    except OSError:
        pass
    return "1s (the default, as given)"


def index_mtime(snapdir):
    """mtime_ns of the newest snap-*/index.json, or None."""
    best = None
    try:
        for d in os.listdir(snapdir):
            try:
                m = os.stat(os.path.join(snapdir, d, "index.json")).st_mtime_ns
            except OSError:
                continue
            best = m if best is None else max(best, m)
    except OSError:
        pass
    return best


def cgroup2_root():
    """Where the cgroup v2 hierarchy is mounted (unified or hybrid), or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split()[:1] == ["cgroup2"]:
                    return left.split()[4]
    except OSError:
        pass
    return None


def part_trigger(args, rec, work, notes):
    """The trigger watches a cgroup v2 directory of its own holding only the generator, so
    that other IO on the host neither fires it early nor hides the generator's stall;
    system-wide (/proc/pressure/io) when no cgroup v2 directory can be made."""
    cg = None
    root = cgroup2_root()
    if root:
        cg = os.path.join(root, "record-bench.%d" % os.getpid())
        try:
            os.mkdir(cg)
        except OSError as e:
            notes.append("no cgroup v2 directory for the trigger (%s): system-wide PSI, other IO counts" % e)
            cg = None
    spec = "psi:io:some>%d%%" % args.psi_pct + ("@" + cg if cg else "")
    try:
        return spec, trigger_runs(args, rec, work, spec, cg)
    finally:
        if cg:
            for _ in range(50):
                try:
                    os.rmdir(cg)
                    break
                except OSError:
                    time.sleep(0.1)


def psi_some_total(path):
    """The 'some' total (µs) of a pressure file, or None."""
    try:
        with open(path) as f:
            m = re.search(r"^some .*total=(\d+)", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def run_window_us(armed):
    m = re.match(r"(\d+(?:\.\d+)?)(ms|s)", armed)
    return int(float(m.group(1)) * (1e6 if m.group(2) == "s" else 1e3)) if m else 2000000


class BarePsi:
    """The same PSI trigger armed directly on the cgroup's io.pressure and polled by a
    thread of this script: when the kernel itself signals, for comparison."""

    def __init__(self, cg, pct, window_us):
        import select
        self.fired = None
        self.fd = os.open(os.path.join(cg, "io.pressure"), os.O_RDWR | os.O_NONBLOCK)
        os.write(self.fd, b"some %d %d\0" % (window_us * pct // 100, window_us))
        self.poll = select.poll()
        self.poll.register(self.fd, select.POLLPRI)
        self.halt = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.halt and self.fired is None:
            if self.poll.poll(100):
                self.fired = time.time_ns()

    def close(self):
        self.halt = True
        self.th.join(timeout=5)
        os.close(self.fd)
        return self.fired


def trigger_runs(args, rec, work, spec, cg):
    runs = []
    for i in range(args.trigger_runs):
        recdir = os.path.join(work, "rec-trigger-%d" % i)
        snapdir = os.path.join(recdir, "snaps")
        log = os.path.join(work, "rec-trigger-%d.log" % i)
        gendir = tempfile.mkdtemp(prefix="iogen.", dir=work)
        r = spawn([rec, "-i", "1s", "-D", recdir, "--on", spec], log=log)
        time.sleep(3)
        if r.poll() is not None:
            raise BenchError("diag-record --on %s exited (status %s): %s" % (spec, r.returncode, open(log).read()[-300:]))
        bare = BarePsi(cg, args.psi_pct, run_window_us(armed_window(log))) if cg else None
        gens = []
        t0 = time.time_ns()
        for k in range(4):
            dd = "exec dd if=/dev/zero of=%s/f%d bs=1M count=100000 oflag=direct,dsync status=none" % (gendir, k)
            if cg:
                dd = "echo $$ > %s/cgroup.procs && %s" % (cg, dd)
            gens.append(spawn(["/bin/sh", "-c", dd]))
        deadline = time.monotonic() + 20
        fired_seen = False
        stall = []
        while time.monotonic() < deadline:
            if cg:
                stall.append((time.time_ns(), psi_some_total(os.path.join(cg, "io.pressure"))))
            if not fired_seen and os.path.isdir(snapdir) and os.listdir(snapdir):
                fired_seen = True
                for g in gens:
                    stop(g)
                deadline = min(deadline, time.monotonic() + 8)
            if fired_seen and index_mtime(snapdir):
                break
            time.sleep(0.01)
        for g in gens:
            stop(g)
        time.sleep(1)
        stop(r)
        bare_ns = bare.close() if bare else None
        shutil.rmtree(gendir, ignore_errors=True)
        evs = [e for iv in dump(rec, recdir) for e in (iv.get("event") or []) if e.get("kind") == "trigger"]
        early = [e for e in evs if e["time_ns"] < t0]
        late = [e for e in evs if e["time_ns"] >= t0]
        run = {"armed": armed_window(log), "early": len(early), "latency": None, "complete": None, "text": "",
               "crossed": None, "after_cross": None,
               "bare": (bare_ns - t0) / 1e9 if bare_ns else None}
        # when the stall since the generator started first reached the trigger's stall
        # time (P % of the armed window): the threshold crossed, to within the polling
        m = re.match(r"(\d+(?:\.\d+)?)(ms|s)", run["armed"])
        if m and stall and stall[0][1] is not None:
            need = float(m.group(1)) * (1e3 if m.group(2) == "s" else 1) * 1e3 * args.psi_pct / 100
            base = stall[0][1]
            for t, tot in stall:
                if tot is not None and tot - base >= need:
                    run["crossed"] = (t - t0) / 1e9
                    break
        if late:
            e = late[0]
            run["latency"] = (e["time_ns"] - t0) / 1e9
            if run["crossed"] is not None:
                run["after_cross"] = run["latency"] - run["crossed"]
            run["text"] = e.get("text", "")
            m = None
            if e.get("path"):
                try:
                    m = os.stat(os.path.join(e["path"], "index.json")).st_mtime_ns
                except OSError:
                    m = None
            if m is not None:
                run["complete"] = (m - e["time_ns"]) / 1e9
        runs.append(run)
    return runs


def part_show(args, rec, recgen, atop, work, over, notes):
    gendir = os.path.join(work, "rec-24h")
    t = time.monotonic()
    p = subprocess.run([recgen, gendir, "--hours", "24", "--interval", "5", "--procs", str(args.gen_procs)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
    gen_secs = time.monotonic() - t
    if p.returncode != 0:
        raise BenchError("recgen failed (%d): %s" % (p.returncode, p.stderr.decode()[-300:]))
    res = {"gen_secs": gen_secs, "gen_bytes": dir_bytes(gendir, "seg-"), "show": [], "show_rc": set()}
    for _ in range(args.show_runs):
        s, rc, err = timed([rec, "show", gendir])
        res["show"].append(s)
        res["show_rc"].add(rc)
    with tempfile.TemporaryFile() as f:
        s, rc, err = timed([rec, "show", gendir], out=f)
        f.seek(0)
        head = f.read(4096).decode(errors="replace")
    res["stub"] = head.startswith("iv ") or "stub" in head.lower()
    if not args.no_dump:
        s, rc, err = timed([rec, "show", "--dump", gendir])
        res["dump"] = (s, rc)
    if over:
        n_rec, n_atop = over["rec_intervals"], over["atop_samples"]
        res["small"] = {
            "dump": timed([rec, "show", "--dump", over["recdir"]])[0], "dump_n": n_rec,
            "show": timed([rec, "show", over["recdir"]])[0],
            "atop_r": timed([atop, "-r", over["raw"]])[0], "atop_P": timed([atop, "-r", over["raw"], "-P", "ALL"])[0],
            "atop_n": n_atop,
        }
    return res


# ---- the tables ----

def fmt_ratio(a, b):
    return "%.2fx" % (a / b) if b else "–"


def tables(args, over, trig, show, notes):
    out = []
    if over:
        o = over
        wmin = o["secs"] / 60
        rc, ac = o["cpu"]["rec"], o["cpu"]["atop"]
        rp, ap = 100 * rc / o["secs"], 100 * ac / o["secs"]
        out += ["### Overhead at a 1 s interval (both at once, over the same %.1f minutes)" % wmin, "",
                "Host: %d processes, %d threads (median of the window; %d–%d), %.1f short-lived processes "
                "started per second; %d CPUs. diag-record and atop ran side by side on the same population."
                % (o["procs"], o["threads"], o["procs_range"][0], o["procs_range"][1], args.churn, os.cpu_count()),
                "",
                "| figure | diag-record -i 1s | atop -w FILE 1 | ratio | target |",
                "|---|---|---|---|---|",
                "| CPU time over the window (s) | %.2f | %.2f | %s | |" % (rc, ac, fmt_ratio(rc, ac)),
                "| CPU, %% of one CPU | %.2f | %.2f | %s | ≤ 1 %%, ≤ 0.5x |" % (rp, ap, fmt_ratio(rp, ap)),
                "| CPU per second = per sample (ms) | %.2f | %.2f | %s | |" % (
                    1000 * rc / o["secs"], 1000 * ac / o["secs"], fmt_ratio(rc, ac)),
                "| VmHWM (MiB) | %.1f | %.1f | %s | ≤ 20 MiB |" % (
                    o["mem"]["rec"]["VmHWM"] / 1024, o["mem"]["atop"]["VmHWM"] / 1024,
                    fmt_ratio(o["mem"]["rec"]["VmHWM"], o["mem"]["atop"]["VmHWM"])),
                "| VmRSS at the end (MiB) | %.1f | %.1f | %s | ≤ 20 MiB |" % (
                    o["mem"]["rec"]["VmRSS"] / 1024, o["mem"]["atop"]["VmRSS"] / 1024,
                    fmt_ratio(o["mem"]["rec"]["VmRSS"], o["mem"]["atop"]["VmRSS"])),
                "| samples written | %d | %d | | |" % (o["rec_intervals"], o["atop_samples"]),
                "| processes per sample (median) | %d | %d | | |" % (o["rec_procs"], o["atop_procs"]),
                "| file bytes | %d | %d | %s | |" % (o["rec_bytes"], o["atop_bytes"], fmt_ratio(o["rec_bytes"], o["atop_bytes"])),
                "| bytes per hour at 1 s (extrapolated, MiB) | %.1f | %.1f | %s | ≤ 0.5x |" % (
                    o["rec_bytes"] / max(1, o["rec_intervals"]) * 3600 / MIB,
                    o["atop_bytes"] / max(1, o["atop_samples"]) * 3600 / MIB,
                    fmt_ratio(o["rec_bytes"] / max(1, o["rec_intervals"]), o["atop_bytes"] / max(1, o["atop_samples"]))),
                "",
                "CPU: utime + stime (+ children's) from /proc/PID/stat between 5 s after start and the end of the "
                "window. Bytes per hour: each file's bytes per sample written, times 3,600: extrapolated from "
                "the measured minutes, not measured over an hour.",
                "",
                "diag-record's own sample cost per interval (took_us of the dump, %d intervals): median %.1f ms, "
                "p99 %.1f ms, max %.1f ms; start late by (late_us) median %.2f ms, max %.1f ms. atop's CPU per "
                "sample in the same run: %.1f ms."
                % (len(o["took"]), statistics.median(o["took"]) / 1000, pct(o["took"], 99) / 1000, max(o["took"]) / 1000,
                   statistics.median(o["late"]) / 1000, max(o["late"]) / 1000, 1000 * ac / o["secs"]), ""]
    if trig:
        spec, runs = trig
        out += ["### Trigger latency (`--on '%s'`, IO pressure from 4 x dd oflag=direct,dsync in that cgroup)"
                % spec, "",
                "| run | armed window | threshold crossed after the start (s) | fired after the start (s) "
                "| fired after the crossing (s) | bare poll() on the same trigger, after the start (s) "
                "| snapshot complete after firing (s) | early firings |",
                "|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(runs):
            out.append("| %d | %s | %s | %s | %s | %s | %s | %d |" % (
                i + 1, r["armed"], "%.2f" % r["crossed"] if r["crossed"] is not None else "–",
                "%.2f" % r["latency"] if r["latency"] is not None else "did not fire",
                "%.2f" % r["after_cross"] if r["after_cross"] is not None else "–",
                "%.2f" % r["bare"] if r["bare"] is not None else "–",
                "%.2f" % r["complete"] if r["complete"] is not None else "no index.json", r["early"]))
        lat = [r["latency"] for r in runs if r["latency"] is not None]
        aft = [r["after_cross"] for r in runs if r["after_cross"] is not None]
        com = [r["complete"] for r in runs if r["complete"] is not None]
        if lat:
            out += ["", "Median: fired %.2f s after the generator started, %s s after the threshold was crossed "
                    "(target ≤ 1 s); snapshot complete %s s after firing (target ≤ 3 s). The start is taken just "
                    "before the first dd is spawned; the crossing is when the cgroup's io.pressure 'some' total, "
                    "polled every ~10 ms, had grown by %d %% of the armed window since the start; the firing is the "
                    "trigger event's time_ns in the recording; completion is the mtime of the snapshot's "
                    "index.json. atop has no triggers."
                    % (statistics.median(lat), "%.2f" % statistics.median(aft) if aft else "–",
                       "%.2f" % statistics.median(com) if com else "–", args.psi_pct)]
        out.append("")
    if show:
        s = show
        out += ["### Reading a day back: 24 h at 5 s, %d processes (bench/recgen)" % args.gen_procs, "",
                "recgen wrote %d intervals, %.1f MiB, in %.1f s." % (GEN_INTERVALS, s["gen_bytes"] / MIB, s["gen_secs"]),
                "", "| command | wall (s) | note |", "|---|---|---|",
                "| diag-record show DIR | %.2f (median of %d; %.2f–%.2f) | exit %s; %s; target ≤ 2 s |" % (
                    statistics.median(s["show"]), len(s["show"]), min(s["show"]), max(s["show"]),
                    ",".join(map(str, sorted(s["show_rc"]))),
                    "the text views were not in this build (stubs): reading and decoding only" if s["stub"]
                    else "with the views")]
        if "dump" in s:
            out.append("| diag-record show --dump DIR > /dev/null | %.2f | exit %d; every row as JSON |" % s["dump"])
        if "small" in s:
            m = s["small"]
            per_d = m["dump"] / max(1, m["dump_n"])
            per_s = m["show"] / max(1, m["dump_n"])
            per_r = m["atop_r"] / max(1, m["atop_n"])
            per_p = m["atop_P"] / max(1, m["atop_n"])
            out += ["", "Over the overhead part's own files (the same minutes and population, 1 s interval), per "
                    "sample, and extrapolated to %d samples (24 h at 5 s):" % GEN_INTERVALS, "",
                    "| command | samples | wall (s) | per sample (ms) | x %d (s, extrapolated) |" % GEN_INTERVALS,
                    "|---|---|---|---|---|",
                    "| diag-record show DIR | %d | %.2f | %.2f | %.1f |" % (m["dump_n"], m["show"], 1000 * per_s,
                                                                        per_s * GEN_INTERVALS),
                    "| diag-record show --dump DIR | %d | %.2f | %.2f | %.1f |" % (m["dump_n"], m["dump"], 1000 * per_d,
                                                                               per_d * GEN_INTERVALS),
                    "| atop -r FILE > /dev/null | %d | %.2f | %.2f | %.1f |" % (m["atop_n"], m["atop_r"], 1000 * per_r,
                                                                            per_r * GEN_INTERVALS),
                    "| atop -r FILE -P ALL > /dev/null | %d | %.2f | %.2f | %.1f |" % (
                        m["atop_n"], m["atop_P"], 1000 * per_p, per_p * GEN_INTERVALS),
                    "", "atop cannot write 24 h of samples without running for 24 h, so its figures for a day are "
                    "extrapolated from the minutes recorded here (a recording at 1 s holds more change per sample "
                    "than one at 5 s would)."]
        out.append("")
    if notes:
        out += ["Notes: " + "; ".join(notes) + ".", ""]
    return out


def main():
    args = parse_args()
    parts = set(x.strip() for x in args.only.split(",") if x.strip())
    if parts - {"overhead", "trigger", "show"}:
        raise BenchError("--only: unknown part %s" % ",".join(sorted(parts - {"overhead", "trigger", "show"})))
    if os.geteuid() != 0:
        print("record-bench: not root: atop and diag-record see only this user's processes, and the PSI "
              "trigger may be refused", file=sys.stderr)
    rec = resolve(args.diag_record, args.build, "tools", "diag-record", "diag-record")
    lockpop = resolve(args.lockpop, args.build, "bench", "lockpop")
    recgen = resolve(args.recgen, args.build, "bench", "recgen") if "show" in parts else None
    atop = shutil.which(args.atop)
    if not atop:
        raise BenchError("%s not found (apt-get install atop)" % args.atop)
    work = args.keep or tempfile.mkdtemp(prefix="record-bench.", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    notes, over, trig, show, pop = [], None, None, None, None
    try:
        if parts & {"overhead", "trigger"}:
            have = population()[0]
            want = max(1, args.procs - have - int(args.churn * 1.5))
            pop = Pop(lockpop, want, args.threads, args.churn)
        if "overhead" in parts:
            over = part_overhead(args, rec, atop, work, notes)
        if "trigger" in parts:
            trig = part_trigger(args, rec, work, notes)
        if pop:
            pop.close()
            pop = None
        if "show" in parts:
            show = part_show(args, rec, recgen, atop, work, over, notes)
    finally:
        if pop:
            pop.close()
        stop_all()
        left = subprocess.run(["pgrep", "-x", "atop"], stdout=subprocess.PIPE, text=True).stdout.split()
        if left:
            print("record-bench: atop processes still running (not ours?): %s" % " ".join(left), file=sys.stderr)
    head = ("diag-record vs atop: %s; %d CPUs; %s" % (
        ", ".join(sorted(parts)), os.cpu_count(), os.uname().release))
    text = "\n".join([head, ""] + tables(args, over, trig, show, notes))
    for f in [sys.stdout] + ([open(args.markdown, "w")] if args.markdown else []):
        f.write(text + "\n")
        f.flush()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    why = None
    try:
        main()
    except BenchError as e:
        why = str(e)
    except KeyboardInterrupt:
        why = "interrupted"
    finally:
        stop_all()
    if why:
        sys.exit("record-bench: " + why)
