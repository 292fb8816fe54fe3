# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record SIGKILLed at random instants (-i 1s --flush 1s), on fresh directories
and on directories continued by a later run: after each kill `show --dump` ends with
exit 0 or 4 (never a crash or a sanitizer report); the run's intervals are all there
up to the last flush before the kill (at least up to kill - flush - interval -
slack), their seq numbers have no hole, every value is sane (host mem_total is
/proc/meminfo's, times within the run, the recorder's own process row present);
earlier runs of a continued directory are kept as they were. The segment files grow
at least every --flush. Then the newest segment of a recording is cut at random byte
offsets (in copies): `show` exits 4 and says "torn tail", `show --dump` gives exactly
the intervals of the frames before the cut one, with the values of the whole dump.

The seed is printed; REC_KILL_SEED=N repeats a run."""
import os
import random
import shutil
import signal
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402

ROUNDS = 8
CUTS = 10
INTERVAL_S = 1.0
FLUSH_S = 1.0
# Scheduling, the ASan build and a busy CPU: how far the last record may be behind
# the last flush that the promise allows.
SLACK_S = 0.8
SEG_HDR_LEN_OFF = 10
FRAME_MAGIC = b"DRF1"
FRAME_HDR = 64


def frames_of(path):
    """[(start, end, nintervals)] of the whole frames of a segment file (the torn tail,
    if any, left out): the layout of docs/diag-record-format.md."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12:
        return []
    off = struct.unpack_from("<H", data, SEG_HDR_LEN_OFF)[0]
    out = []
    while off + FRAME_HDR <= len(data) and data[off:off + 4] == FRAME_MAGIC:
        n = struct.unpack_from("<I", data, off + 12)[0]
        zlen = struct.unpack_from("<I", data, off + 52)[0]
        end = off + FRAME_HDR + zlen
        if end > len(data):
            break
        out.append((off, end, n))
        off = end
    return out


def check_run(chk, what, run, rec_pid, t_start, t_kill, mem_total):
    """One run of the recorder, started at t_start, SIGKILLed at t_kill (realtime s)."""
    if not run:
        chk.fail("%s: no interval of this run in the dump" % what)
        return
    holes = rt.seq_holes(run)
    chk.check(not holes, "%s: seq numbers missing before the last one: %r" % (what, holes[:10]))
    chk.eq(run[0].get("seq"), 0, "%s: the run's first interval's seq" % what)
    times = [iv["time_ns"] / 1e9 for iv in run]
    chk.check(all(b > a for a, b in zip(times, times[1:])), "%s: interval times increase" % what)
    chk.check(t_start - 0.5 <= times[0] and times[-1] <= t_kill + 0.1,
              "%s: interval times %.3f..%.3f within the run %.3f..%.3f" % (what, times[0], times[-1], t_start, t_kill))
    need = t_kill - FLUSH_S - INTERVAL_S - SLACK_S
    chk.check(times[-1] >= need or need < times[0],
              "%s: the last interval kept is at kill%+.3f s: every interval up to the last flush "
              "(kill - %.1f - %.1f - %.1f s) should be there" % (what, times[-1] - t_kill, FLUSH_S, INTERVAL_S, SLACK_S))
    wrong = [(iv["seq"], (iv.get("host") or {}).get("mem_total")) for iv in run
             if (iv.get("host") or {}).get("mem_total") != mem_total]
    chk.check(not wrong, "%s: host mem_total is not /proc/meminfo's %d: %r" % (what, mem_total, wrong[:5]))
    chk.check(all(iv.get("interval_ms") == 1000 for iv in run), "%s: interval_ms 1000 in every interval" % what)
    own = rt.procs_of(run, rec_pid)
    chk.check(len(own) == len(run), "%s: the recorder's own row (pid %d) in %d of %d intervals"
              % (what, rec_pid, len(own), len(run)))


def flush_gaps(rec, seconds):
    """Times (monotonic s) at which the segment bytes grew, watched for `seconds`."""
    out, last = [], rec.intervals_written()
    end = time.monotonic() + seconds
    while time.monotonic() < end and rec.alive():
        n = rec.intervals_written()
        if n != last:
            out.append(time.monotonic())
            last = n
        time.sleep(0.01)
    return out


def kill_rounds(chk, rnd, tmp, mem_total):
    dirs = []       # [path, dump of the runs so far]
    for i in range(ROUNDS):
        if dirs and rnd.random() < 0.5:
            entry = rnd.choice(dirs)
            how = "continued %s" % os.path.basename(entry[0])
        else:
            entry = [os.path.join(tmp, "rec%d" % i), []]
            dirs.append(entry)
            how = "fresh"
        at = rnd.uniform(1.5, 4.0)
        if i == 0:
            at += 3.0       # long enough to see the flushes' cadence
        what = "round %d (%s, SIGKILL after %.3f s)" % (i, how, at)
        dt.log(what)
        rec = rt.Recorder(entry[0], "-i", "1s", "--flush", "1s", log=os.path.join(tmp, "rec%d.log" % i))
        t_start = time.time()
        with rec:
            if i == 0:
                # the promise of --flush: the segment grows at least every FLUSH_S
                grew = flush_gaps(rec, at)
                gaps = [b - a for a, b in zip(grew, grew[1:])]
                chk.check(len(grew) >= 2 and max(gaps) <= FLUSH_S + 0.6,
                          "%s: segment bytes grew at +%s s after the first write: gaps of up to %.2f s "
                          "with --flush %.0fs" % (what, ["%.2f" % (g - grew[0]) for g in grew],
                                                  max(gaps or [0]), FLUSH_S))
            else:
                time.sleep(max(0.0, t_start + at - time.time()))
            alive = rec.alive()
            t_kill = time.time()
            rc = rec.stop(signal.SIGKILL)
        chk.check(alive, "%s: the recorder was running until the kill (exit %r)\n%s" % (what, rc, rec.output()))
        chk.eq(rc, -signal.SIGKILL, "%s: the recorder's end" % what)
        r, ivs = rt.dump_checked(chk, what, entry[0])
        runs = rt.runs_of(ivs)
        before = entry[1]
        chk.eq(len(runs), len(before) + 1, "%s: runs in the dump (earlier ones kept, this one added)" % what)
        for k, old in enumerate(before):
            same = k < len(runs) and len(runs[k]) == len(old) and all(
                rt.same_interval(a, b) for a, b in zip(runs[k], old))
            chk.check(same, "%s: the earlier run %d is kept as it was (%d intervals before, %d now)"
                      % (what, k, len(old), len(runs[k]) if k < len(runs) else 0))
        if len(runs) == len(before) + 1:
            check_run(chk, what, runs[-1], rec.pid, t_start, t_kill, mem_total)
        entry[1] = runs
    return [d for d, _ in dirs]


def cut_rounds(chk, rnd, tmp, src):
    r, base = rt.dump_checked(chk, "the whole recording", src)
    segs = [s for s in rt.segment_files(src) if frames_of(os.path.join(src, s))]
    if not segs:
        chk.fail("no segment with a whole frame in %s" % src)
        return
    newest = segs[-1]
    frames = frames_of(os.path.join(src, newest))
    total_new = sum(n for _, _, n in frames)
    dt.log("cutting %s: %d frames, %d intervals (of %d)" % (newest, len(frames), total_new, len(base)))
    for i in range(CUTS):
        j = rnd.randrange(len(frames))
        start, end, _ = frames[j]
        at = rnd.randrange(start + 1, end)
        what = "cut %d: %s cut at byte %d (inside frame %d of %d, bytes %d..%d)" % (i, newest, at, j, len(frames), start, end)
        dst = os.path.join(tmp, "cut%d" % i)
        shutil.copytree(src, dst)
        os.truncate(os.path.join(dst, newest), at)
        lost = sum(n for _, _, n in frames[j:])
        want = base[:len(base) - lost]
        # nothing left before the cut: "no readable record" (1) is the answer then
        rcs = (4,) if want else (1, 4)
        t = rt.show(dst)
        chk.check(t.rc in rcs, "%s: show's exit status %r, want %r\n%s" % (what, t.rc, rcs, t.describe()))
        chk.check(any("torn tail" in l for l in t.err_lines()), "%s: show's stderr says torn tail\n%s" % (what, t.err))
        chk.check(rt.sanitizer_report(t.err) is None, "%s: show: %s" % (what, rt.sanitizer_report(t.err)))
        if want:
            r, got = rt.dump_checked(chk, what, dst)
            chk.eq(r.rc, 4, "%s: show --dump's exit status" % what)
        else:
            r, got = rt.dump(dst)
            chk.check(r.rc in rcs, "%s: show --dump's exit status %r, want %r" % (what, r.rc, rcs))
            got = [iv for iv in got if "unparsed" not in iv]
        chk.check(any("torn tail" in l for l in r.err_lines()), "%s: --dump's stderr says torn tail\n%s" % (what, r.err))
        keys = [(iv.get("seq"), iv.get("time_ns")) for iv in got]
        wkeys = [(iv.get("seq"), iv.get("time_ns")) for iv in want]
        chk.check(keys == wkeys, "%s: intervals (seq, time) %r..., want %r... (%d vs %d)"
                  % (what, keys[-3:], wkeys[-3:], len(keys), len(wkeys)))
        diff = [a.get("seq") for a, b in zip(got, want) if not rt.same_interval(a, b)]
        chk.check(not diff, "%s: intervals with values other than the whole dump's: seq %r" % (what, diff[:10]))
        shutil.rmtree(dst, ignore_errors=True)


def main():
    rt.setup(__doc__)
    rt.tool()
    dt.set_subreaper()
    chk = dt.Checker("record-kill")
    seed = int(os.environ.get("REC_KILL_SEED") or time.time_ns() % (1 << 32))
    dt.log("seed %d (REC_KILL_SEED=%d repeats it)" % (seed, seed))
    rnd = random.Random(seed)
    mem_total = rt.meminfo_total()
    tmp = rt.temp_dir("kill")
    try:
        dirs = kill_rounds(chk, rnd, tmp, mem_total)
        # the recording with the most frames in its newest segment is cut
        best = max(dirs, key=lambda d: len(frames_of(os.path.join(d, (rt.segment_files(d) or ["-"])[-1]))
                                          if rt.segment_files(d) else 0))
        cut_rounds(chk, rnd, tmp, best)
        st.no_children_left(chk, "record-kill")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
