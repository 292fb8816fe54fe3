# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record keeps its schedule where it is hardest: inside a memory cgroup whose
page cache thrashes. rereader.py re-reads a 256 MiB file (written, synced and
dropped from the page cache first) in a cgroup limited to 64 MiB, so every pass
faults the file in from disk; the recorder runs IN THE SAME CGROUP (-i 1s, about
20 s). At least 95 % of its intervals must be on time (late_us under 0.5 s), none
missing (consecutive realtime steps under 1.5 s), and the host's major-fault rate
it recorded must be high (the thrash is real; the figure is printed). With atop
installed, `atop -w FILE 1` runs in the same cgroup over the same time and the
number of samples it wrote is printed for comparison (not checked). Needs root and
a memory controller."""
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
import test_snap_thrash as tt  # noqa: E402

RECORD_S = 20
LATE_US = 500000
ON_TIME = 0.95
MIN_MAJFLT_PER_S = 1000


def atop_samples(atop, path):
    """Samples in an atop raw file (one CPU line each in parseable output), or None."""
    r = dt.run([atop, "-r", path, "-P", "CPU"], timeout=60)
    if r.rc != 0:
        dt.log("atop -r: %s" % r.describe())
        return None
    return sum(1 for l in r.out.splitlines() if l.startswith("CPU "))


def scenario(chk, tmp):
    python = dt.need_debian_python()
    script = dt.paths.rereader or st.fixture_script("rereader.py")
    atop = dt.which("atop")
    work = tempfile_dir()
    rec_dir = os.path.join(tmp, "rec")
    atop_file = os.path.join(tmp, "atop.raw")
    try:
        data = os.path.join(work, "data")
        tt.write_uncached(data, tt.FILE)
        with st.TestCgroup("record-thrash", memory=tt.LIMIT) as cg:
            fx = st.PyFixture(python, script, [data, "--seconds", 300], cgroup=cg, ready_timeout=120, term_timeout=5)
            rec = rt.Recorder(rec_dir, "-i", "1s", "--flush", "1s", preexec=cg.preexec(dt._child_setup))
            at = None
            with fx:
                pid = fx.fact("READER")["pid"]
                m0 = tt.cg_majflt(cg)
                t0 = time.monotonic()
                try:
                    rec.start()
                    if atop:
                        at = subprocess.Popen([atop, "-w", atop_file, "1"], stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                              start_new_session=True, preexec_fn=cg.preexec(dt._child_setup))
                    chk.check(rec.wait_started(), "the recorder started\n%s" % rt.log_tail(rec))
                    chk.eq(sorted(cg.pids()), sorted([pid, rec.pid] + ([at.pid] if at else [])),
                           "the reader, the recorder%s in the test's cgroup" % (" and atop" if at else ""))
                    time.sleep(RECORD_S)
                    chk.check(fx.proc.poll() is None, "the reader still runs")
                    chk.eq(rec.stop(), 0, "the recorder's exit status on SIGTERM\n%s" % rec.output())
                    dt.log("the recorder said: %r" % rec.output().splitlines())
                finally:
                    rec.close()
                    if at:
                        dt.kill_group(at, 15)
                        try:
                            at.wait(timeout=5)
                        except subprocess.TimeoutExpired:
                            dt.kill_group(at)
                            at.wait()
                cg_rate = (tt.cg_majflt(cg) - m0) / (time.monotonic() - t0)
                limit = cg.read("memory", "memory.max" if cg.version() == 2 else "memory.limit_in_bytes")
            check(chk, rec_dir, cg_rate, limit)
            if at:
                n = atop_samples(atop, atop_file)
                dt.log("atop -w FILE 1 in the same cgroup for the same %d s wrote %s samples" % (RECORD_S, n))
    finally:
        for n in os.listdir(work):
            os.unlink(os.path.join(work, n))
        os.rmdir(work)


def tempfile_dir():
    import tempfile
    return tempfile.mkdtemp(prefix="diag-record-thrash.", dir=st.disk_dir())


def check(chk, rec_dir, cg_rate, limit):
    r, ivs = rt.dump(rec_dir)
    chk.eq(r.rc, 0, "show --dump exit status\n%s" % r.describe())
    ivs = [iv for iv in ivs if "unparsed" not in iv]
    late = [iv.get("late_us") for iv in ivs]
    took = [iv.get("took_us") for iv in ivs]
    times = [iv.get("time_ns") or 0 for iv in ivs]
    steps = [(b - a) / 1e9 for a, b in zip(times, times[1:])]
    dt.log("%d intervals; late_us %s; took_us %s" % (len(ivs), late, took))
    dt.log("steps (s): %s" % ", ".join("%.3f" % s for s in steps))
    if not chk.check(len(ivs) >= RECORD_S - 2, "about %d intervals in %d s: %d" % (RECORD_S, RECORD_S, len(ivs))):
        return
    on_time = sum(1 for x in late if isinstance(x, int) and x < LATE_US)
    dt.log("on time: %d of %d intervals (%.1f %%); worst late %.3f s, worst took %.3f s"
           % (on_time, len(ivs), 100.0 * on_time / len(ivs), max(late) / 1e6, max(took) / 1e6))
    chk.check(on_time >= ON_TIME * len(ivs), "at least %d %% of intervals on time (late_us < %d): %d of %d"
              % (ON_TIME * 100, LATE_US, on_time, len(ivs)))
    missing = [(i, s) for i, s in enumerate(steps) if not 0.5 < s < 1.5]
    chk.check(not missing, "no interval missing or bunched (steps under 1.5 s): %s" % missing)
    chk.eq([iv.get("seq") for iv in ivs], list(range(len(ivs))), "the intervals' sequence numbers")
    h0, h1 = ivs[0].get("host") or {}, ivs[-1].get("host") or {}
    span = (times[-1] - times[0]) / 1e9
    rate = ((h1.get("pgmajfault") or 0) - (h0.get("pgmajfault") or 0)) / span if span > 0 else 0
    dt.log("the host's major faults: %.0f/s recorded (the cgroup's memory.stat: %.0f/s); limit %s"
           % (rate, cg_rate, (limit or "").strip()))
    chk.check(rate >= MIN_MAJFLT_PER_S, "the host's pgmajfault rate %.0f/s is high (at least %d/s): the thrash is real"
              % (rate, MIN_MAJFLT_PER_S))
    chk.check(cg_rate >= 0.5 * MIN_MAJFLT_PER_S, "the cgroup thrashed: %.0f major faults/s" % cg_rate)
    chk.check(re.match(r"^\d+$", (limit or "").strip()), "the cgroup has its limit: %r" % limit)


if __name__ == "__main__":
    rt.run_test(__doc__, "record-thrash", scenario)
