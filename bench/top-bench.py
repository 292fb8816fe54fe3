#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top against htop, on a host of about 1,000 sleeping processes, and stepping
through a day's recording.

Two parts (--only picks one):

  live    bench/lockpop brings the host to --procs idle processes (--threads threads in
          all, some blocked on mutexes and an flock: rows with something to WAIT for).
          diag-top (--timings FILE) and Debian's htop (-d 20: the same 2 s) are started at
          once, each in a tmux session of its own of 200x50 (a private server, TERM
          xterm-256color, htop with a HOME of its own so no htoprc is touched), and run
          side by side over the same --seconds (default 60) after a 5 s warm-up. CPU
          seconds of each from /proc/PID/stat (utime + stime + cutime + cstime) at the
          start and the end of the window; ratio diag-top / htop (target <= 1). From
          diag-top's --timings lines of the window: scan + rows + wait + draw per refresh,
          median and p95 (target <= 30 ms), and wait_us alone, the WAIT of the rows on
          screen (target <= 10 ms for 40 visible rows). The chain walks behind WAIT run
          on a thread of their own: their batches (walk_us, each counted once) are
          reported beside, with the time from start to the first WAIT on screen.
  replay  bench/recgen writes 24 h at 5 s of --gen-procs processes (17,280 intervals);
          diag-top -r DIR --timings FILE in tmux at 200x50; --keys (default 50) each of
          ] [ } { and of T jumps to a random instant of the day (typed "@EPOCH", Enter),
          each key sent once the one before is answered (its timings line written).
          Per key: median and worst of the "us" of its timings lines (target <= 50 ms).

Prints a table and then the same results as markdown on stdout (--markdown FILE: also
into FILE). Build it first: ninja -C BUILD (diag-top, bench/lockpop, bench/recgen); a
release build (-Dwerror=true, optimized, no sanitizers) gives the numbers that count."""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build-rel", help="meson build directory (default build-rel)")
    p.add_argument("--diag-top", help="diag-top binary (default BUILD/tools/diag-top/diag-top)")
    p.add_argument("--lockpop", help="lockpop binary (default BUILD/bench/lockpop)")
    p.add_argument("--recgen", help="recgen binary (default BUILD/bench/recgen)")
    p.add_argument("--htop", default="/usr/bin/htop", help="htop binary (default /usr/bin/htop)")
    p.add_argument("-n", "--procs", type=int, default=1000, help="lockpop processes (default 1000)")
    p.add_argument("-t", "--threads", type=int, default=3000, help="lockpop's threads in all (default 3000)")
    p.add_argument("--seconds", type=float, default=60, help="the live window (default 60)")
    p.add_argument("--gen-procs", type=int, default=1000, help="processes of recgen's recording (default 1000)")
    p.add_argument("--keys", type=int, default=50, help="replay: presses of each key (default 50)")
    p.add_argument("--only", default="live,replay", help="parts to run, comma-separated (default live,replay)")
    p.add_argument("--keep", help="keep the timings files and the recording in this directory")
    p.add_argument("--markdown", help="also write the markdown to this file")
    return p.parse_args()


def resolve(given, build, *rel):
    cands = [given] if given else [os.path.join(build, *rel), os.path.join(ROOT, build, *rel)]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise BenchError("%s not found or not executable (build it: ninja -C %s)" % (cands[0], build))


def population():
    procs = threads = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                threads += len(os.listdir("/proc/%s/task" % d))
                procs += 1
            except OSError:
                pass
    return procs, threads


def cpu_seconds(pid):
    """utime + stime + cutime + cstime of pid, seconds; None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    w = s[s.rindex(")") + 2:].split()
    return sum(int(x) for x in w[11:15]) / CLK_TCK


def pct(vals, p):
    if not vals:
        return None
    v = sorted(vals)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


# ---- a program in a tmux session of its own (a private server, always killed)

SESSIONS = []


class Tmux:
    def __init__(self, name, argv, width=200, height=50, env=None):
        self.sock = "diagtopbench%d-%s" % (os.getpid(), name)
        self.conf = tempfile.NamedTemporaryFile("w", prefix="diag-top-bench.", suffix=".conf", delete=False)
        self.conf.write("set -g default-terminal xterm-256color\nset -g status off\nset -g escape-time 10\n")
        self.conf.close()
        SESSIONS.append(self)
        e = {"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        e.update(env or {})
        cmd = ["env"] + ["%s=%s" % kv for kv in sorted(e.items())] + list(argv)
        self.run("new-session", "-d", "-s", "b", "-x", width, "-y", height, *cmd)
        self.pid = int(self.run("display-message", "-p", "-t", "b", "#{pane_pid}").strip())
        # the pane runs env, which execs the program: same pid

    def run(self, *args, check=True):
        p = subprocess.run(["tmux", "-L", self.sock, "-f", self.conf.name] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        if check and p.returncode:
            raise BenchError("tmux %s: %s" % (args[0], p.stderr.decode().strip()))
        return p.stdout.decode()

    def keys(self, *k, literal=False):
        self.run("send-keys", "-t", "b", *(["-l"] if literal else []), *k)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "b", check=False)

    def close(self):
        self.run("kill-server", check=False)
        try:
            os.unlink(self.conf.name)
        except OSError:
            pass
        if self in SESSIONS:
            SESSIONS.remove(self)


def close_all():
    for s in list(SESSIONS):
        s.close()


def timings(path):
    refresh, keys = [], []
    try:
        with open(path) as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                (keys if "key" in d else refresh).append(d)
    except OSError:
        pass
    return refresh, keys


# ---- part 1: live, beside htop

def lockpop_start(lockpop, procs, threads):
    p = subprocess.Popen([lockpop, "--procs", str(procs), "--threads", str(threads)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while True:
        line = p.stdout.readline()
        if not line:
            raise BenchError("lockpop exited before READY (status %s)" % p.wait())
        if line.split()[:1] == ["READY"]:
            return p
        if time.monotonic() > deadline:
            lockpop_stop(p)
            raise BenchError("lockpop not READY in 180 s")


def lockpop_stop(p):
    if p.poll() is None:
        p.stdin.close()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def part_live(args, top, work):
    lockpop = resolve(args.lockpop, args.build, "bench", "lockpop")
    if not os.access(args.htop, os.X_OK):
        raise BenchError("%s not found (apt-get install -y htop)" % args.htop)
    htop_ver = subprocess.run([args.htop, "--version"], stdout=subprocess.PIPE, text=True).stdout.split("\n")[0]
    pop = lockpop_start(lockpop, args.procs, args.threads)
    tfile = os.path.join(work, "live-timings.jsonl")
    res = {"htop_version": htop_ver}
    try:
        res["population"] = population()
        home = os.path.join(work, "htop-home")
        os.makedirs(home, exist_ok=True)
        started = time.monotonic()
        a = Tmux("top", [top, "--timings", tfile])
        b = Tmux("htop", [args.htop, "-d", "20"], env={"HOME": home, "XDG_CONFIG_HOME": home})
        # the first WAIT on screen (the walking thread's first answers), within the warm-up
        res["first_wait"] = None
        while time.monotonic() - started < 5:
            scr = a.screen()
            if "\u2190" in scr or " <- " in scr:
                res["first_wait"] = time.monotonic() - started
                break
            time.sleep(0.02)
        time.sleep(max(0.0, 5 - (time.monotonic() - started)))
        t0 = time.monotonic()
        c0 = (cpu_seconds(a.pid), cpu_seconds(b.pid))
        n0 = len(timings(tfile)[0])
        time.sleep(args.seconds)
        c1 = (cpu_seconds(a.pid), cpu_seconds(b.pid))
        t1 = time.monotonic()
        res["screen"] = a.screen()
        a.close()
        b.close()
        if None in c0 + c1:
            raise BenchError("diag-top or htop ended during the window:\n%s" % res["screen"])
        res["window"] = t1 - t0
        res["top_cpu"], res["htop_cpu"] = c1[0] - c0[0], c1[1] - c0[1]
        refresh = timings(tfile)[0][n0:]
        if not refresh:
            raise BenchError("diag-top wrote no --timings refresh lines to %s" % tfile)
        res["refreshes"] = len(refresh)
        total = [(r.get("scan_us", 0) + r.get("rows_us", 0) + r.get("wait_us", 0) + r.get("draw_us", 0)) / 1000
                 for r in refresh]
        wait = [r.get("wait_us", 0) / 1000 for r in refresh]
        res["total_med"], res["total_p95"], res["total_max"] = statistics.median(total), pct(total, 95), max(total)
        res["wait_med"], res["wait_p95"] = statistics.median(wait), pct(wait, 95)
        res["rows_on_screen"] = statistics.median([r.get("rows_on_screen", 0) for r in refresh])
        res["nprocs"] = statistics.median([r.get("nprocs", 0) for r in refresh])
        for k in ("scan_us", "rows_us", "draw_us"):
            res[k] = statistics.median([r.get(k, 0) / 1000 for r in refresh])
        # the walking thread's batches (scan of fds and sockets + walks), each once
        walks = [refresh[i]["walk_us"] / 1000 for i in range(1, len(refresh))
                 if refresh[i].get("walks", 0) > refresh[i - 1].get("walks", 0)]
        res["walks"] = len(walks)
        res["walk_med"] = statistics.median(walks) if walks else None
        res["walk_max"] = max(walks) if walks else None
    finally:
        close_all()
        lockpop_stop(pop)
    return res


# ---- part 2: replaying a day

def answered(tfile, n_before, timeout=5.0):
    """Until the timings file holds more than n_before key lines: their count."""
    end = time.monotonic() + timeout
    while True:
        n = len(timings(tfile)[1])
        if n > n_before or time.monotonic() > end:
            return n
        time.sleep(0.005)


def part_replay(args, top, work):
    recgen = resolve(args.recgen, args.build, "bench", "recgen")
    gendir = os.path.join(work, "rec-24h")
    t = time.monotonic()
    gen_end = time.time()
    p = subprocess.run([recgen, gendir, "--hours", "24", "--interval", "5", "--procs", str(args.gen_procs)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
    if p.returncode != 0:
        raise BenchError("recgen failed (%d): %s" % (p.returncode, p.stderr.decode()[-300:]))
    res = {"gen_secs": time.monotonic() - t}
    tfile = os.path.join(work, "replay-timings.jsonl")
    s = Tmux("replay", [top, "-r", gendir, "--timings", tfile])
    try:
        t = time.monotonic()
        while "COMMAND" not in s.screen() and not any(timings(tfile)):
            if time.monotonic() - t > 120:
                raise BenchError("diag-top -r drew nothing in 120 s:\n%s" % s.screen())
            time.sleep(0.05)
        res["open_secs"] = time.monotonic() - t
        rnd = random.Random(17)
        seq = []
        for k in ("]", "[", "}", "{"):
            seq += [k] * args.keys
        seq += ["T"] * args.keys
        n = len(timings(tfile)[1])
        sent = {}
        for k in seq:
            if k == "T":
                s.keys("T")
                n = answered(tfile, n, 1.0)
                at = int(gen_end - 24 * 3600 + 120 + rnd.random() * (24 * 3600 - 240))
                s.keys("@%d" % at, literal=True)
                s.keys("Enter")
            else:
                s.keys(k, literal=True)
            sent[k] = sent.get(k, 0) + 1
            n = answered(tfile, n)
        res["screen"] = s.screen()
    finally:
        s.close()
    keys = timings(tfile)[1]
    per = {}
    for d in keys:
        per.setdefault(str(d.get("key")), []).append(d.get("us", 0) / 1000)
    res["keys"] = {k: (len(v), statistics.median(v), max(v)) for k, v in sorted(per.items())}
    res["sent"] = sent
    return res


# ---- the tables

def verdict(v, limit):
    return "ok" if v is not None and v <= limit else "OVER"


def report(args, live, replay, top):
    out = ["## diag-top", "", "diag-top: `%s`; host: %d CPUs, %s." % (top, os.cpu_count() or 0, os.uname().release), ""]
    if live:
        procs, threads = live["population"]
        ratio = live["top_cpu"] / live["htop_cpu"] if live["htop_cpu"] else float("inf")
        out += ["### Live, 2 s refresh, %d processes (%d threads) on the host, 200x50" % (procs, threads), "",
                "Both side by side over the same %.0f s (%s, -d 20)." % (live["window"], live["htop_version"]), "",
                "| measure | value | target | |", "|---|---:|---:|---|",
                "| diag-top CPU, s | %.2f | | |" % live["top_cpu"],
                "| htop CPU, s | %.2f | | |" % live["htop_cpu"],
                "| diag-top / htop | %.2fx | <= 1x | %s |" % (ratio, verdict(ratio, 1.0)),
                "| refresh (scan+rows+wait+draw), median ms | %.1f | <= 30 | %s |"
                % (live["total_med"], verdict(live["total_med"], 30)),
                "| refresh, p95 ms | %.1f | <= 30 | %s |" % (live["total_p95"], verdict(live["total_p95"], 30)),
                "| refresh, worst ms | %.1f | | |" % live["total_max"],
                "| scan / rows / draw, median ms | %.1f / %.1f / %.1f | | |"
                % (live["scan_us"], live["rows_us"], live["draw_us"]),
                "| WAIT of the rows on screen, median ms | %.1f | <= 10 | %s |"
                % (live["wait_med"], verdict(live["wait_med"], 10)),
                "| WAIT, p95 ms | %.1f | <= 10 | %s |" % (live["wait_p95"], verdict(live["wait_p95"], 10)),
                "| walks on the walking thread (not in a refresh): batches, median ms, worst ms | %s | | |"
                % ("%d, %.1f, %.1f" % (live["walks"], live["walk_med"], live["walk_max"]) if live["walks"] else "0"),
                "| first WAIT on screen after start, s | %s | | |"
                % ("%.2f" % live["first_wait"] if live["first_wait"] is not None else "not within 5 s"),
                "| rows on screen (median) | %d | 40 | |" % live["rows_on_screen"],
                "| processes in a frame (median) | %d | | |" % live["nprocs"],
                "| refreshes in the window | %d | | |" % live["refreshes"], ""]
    if replay:
        out += ["### Replay: 24 h at 5 s, %d processes (bench/recgen)" % args.gen_procs, "",
                "recgen: %.1f s; diag-top -r drew its first screen after %.2f s." % (replay["gen_secs"],
                                                                                 replay["open_secs"]), "",
                "| key | presses | median ms | worst ms | target | |", "|---|---:|---:|---:|---:|---|"]
        names = {"]": "`]` interval", "[": "`[` interval back", "}": "`}` minute", "{": "`{` minute back",
                 "^M": "`T` jump (its Enter)", "Enter": "`T` jump (its Enter)"}
        for k, (n, med, worst) in replay["keys"].items():
            if k in names:      # the keys typed into T's prompt are left out
                out.append("| %s | %d | %.1f | %.1f | <= 50 | %s |" % (names[k], n, med, worst, verdict(worst, 50)))
        out += ["", "T jumps: T, then `@EPOCH` (a random instant of the day) typed and Enter; the Enter's time is the jump."]
    return "\n".join(out) + "\n"


def main():
    args = parse_args()
    parts = set(args.only.split(","))
    if not shutil.which("tmux"):
        raise BenchError("tmux is not installed")
    top = resolve(args.diag_top, args.build, "tools", "diag-top", "diag-top")
    work = args.keep or tempfile.mkdtemp(prefix="diag-top-bench.")
    os.makedirs(work, exist_ok=True)
    live = replay = None
    try:
        if "live" in parts:
            live = part_live(args, top, work)
            print("live: diag-top %.2f s CPU, htop %.2f s; refresh median %.1f ms p95 %.1f ms; WAIT median %.1f ms"
                  % (live["top_cpu"], live["htop_cpu"], live["total_med"], live["total_p95"], live["wait_med"]),
                  file=sys.stderr)
        if "replay" in parts:
            replay = part_replay(args, top, work)
    finally:
        close_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    md = report(args, live, replay, top)
    sys.stdout.write(md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        close_all()
        print("top-bench: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        close_all()
        sys.exit(130)
