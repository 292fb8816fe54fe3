# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record's IO counters against real IO: a `dd oflag=direct` writer and a `dd
iflag=direct` reader of a file in a directory on a real disk (not tmpfs), each in
a cgroup of its own throttled to a steady rate (v1 blkio.throttle, v2 io.max), the
recorder at -i 1s. The test reads each dd's /proc/PID/io every 10 ms meanwhile.
Over a window of several intervals, from the recorder's own timestamps (the
instant each interval was read), the recorded write_bytes delta of the writer and
read_bytes delta of the reader, and the io_wbytes / io_rbytes deltas of their
cgroups, must each be within 10 % of what dd moved in that window (its /proc/PID/io
at the same instants); the other direction of each cgroup near zero. Needs root,
the io controller (v2) or blkio (v1) and a block device under TMPDIR or /var/tmp."""
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402
import test_snap_io as si  # noqa: E402
import test_snap_thrash as tt  # noqa: E402

MIB = 1 << 20
WRITE_BPS = si.WRITE_BPS
READ_BPS = si.READ_BPS
RUN_S = 12
RECORD_S = 8.5
MIN_WINDOW = 4          # intervals
TOL = 0.10


def instant(iv):
    """When the interval was read (monotonic s): its start plus half its reading."""
    return rt.mono_of_boot(iv["boottime_ns"] + (iv.get("took_us") or 0) * 500)


def window(ivs, samplers):
    """(first, last) intervals inside every sampler's span, MIN_WINDOW or more
    apart, or None."""
    lo = max(s.samples[0][0] for s in samplers if s.samples)
    hi = min(s.samples[-1][0] for s in samplers if s.samples)
    inside = [iv for iv in ivs if lo <= instant(iv) <= hi]
    if len(inside) <= MIN_WINDOW:
        return None
    return inside[0], inside[-1]


def row_of(iv, table, match):
    return next((r for r in iv.get(table) or [] if match(r)), None)


def check_delta(chk, got, want, what):
    dt.log("%s: recorded %.2f MiB, dd moved %.2f MiB in the window" % (what, (got or 0) / MIB, want / MIB))
    chk.check(got is not None and want > 0 and abs(got - want) <= TOL * want,
              "%s: recorded %r not within %d %% of dd's %d over the same window" % (what, got, TOL * 100, want))


def scenario(chk, tmp):
    dt.need_program("dd")
    base = st.disk_dir()
    dev, disk = st.disk_of(base)
    work = tempfile.mkdtemp(prefix="diag-record-io.", dir=base)
    rec_dir = os.path.join(tmp, "rec")
    try:
        src, dst = os.path.join(work, "in"), os.path.join(work, "out")
        tt.write_uncached(src, READ_BPS * RUN_S)
        with st.TestCgroup("record-io-w", io=True) as wcg, st.TestCgroup("record-io-r", io=True) as rcg:
            wcg.limit_io(dev, wbps=WRITE_BPS)
            rcg.limit_io(dev, rbps=READ_BPS)
            count = str(RUN_S * WRITE_BPS // (256 << 10))
            w = si.DD(["if=/dev/zero", "of=" + dst, "bs=" + si.BS, "count=" + count, "oflag=direct"], wcg)
            r = si.DD(["if=" + src, "of=/dev/null", "bs=" + si.BS, "iflag=direct"], rcg)
            rec = rt.Recorder(rec_dir, "-i", "1s", "--flush", "1s")
            try:
                time.sleep(1.5)         # past the first throttle slice
                with si.io_sampler(w.pid, "write_bytes") as ws, si.io_sampler(r.pid, "read_bytes") as rs:
                    rec.start()
                    chk.check(rec.wait_started(), "the recorder started\n%s" % rt.log_tail(rec))
                    time.sleep(RECORD_S)
                    chk.eq(rec.stop(), 0, "the recorder's exit status on SIGTERM\n%s" % rec.output())
                chk.check(w.p.poll() is None and r.p.poll() is None, "both dd still ran after the recording")
            finally:
                rec.close()
                w.close()
                r.close()
            check(chk, rec_dir, w, r, wcg, rcg, ws, rs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(chk, rec_dir, w, r, wcg, rcg, ws, rs):
    res, ivs = rt.dump(rec_dir)
    chk.eq(res.rc, 0, "show --dump exit status\n%s" % res.describe())
    ivs = [iv for iv in ivs if "unparsed" not in iv]
    span = window(ivs, [ws, rs])
    if not chk.check(span, "%d or more intervals within the test's readings of dd (%d intervals)"
                     % (MIN_WINDOW, len(ivs))):
        return
    a, b = span
    ta, tb = instant(a), instant(b)
    dt.log("window: intervals %d-%d, %.3f s (recorder's clock), took_us %d and %d"
           % (a["seq"], b["seq"], (b["boottime_ns"] - a["boottime_ns"]) / 1e9, a.get("took_us"), b.get("took_us")))
    for dd, key, samp, cg, ckey, other, rate in ((w, "write_bytes", ws, wcg, "io_wbytes", "io_rbytes", WRITE_BPS),
                                                 (r, "read_bytes", rs, rcg, "io_rbytes", "io_wbytes", READ_BPS)):
        what = "%s dd %d" % ("writer" if dd is w else "reader", dd.pid)
        va, vb = rt.value_at(samp.samples, ta), rt.value_at(samp.samples, tb)
        if not chk.check(va is not None and vb is not None, "%s: the test read dd's io around both intervals" % what):
            continue
        want = vb - va
        dt.log("%s: %.2f MiB/s in the window, throttled to %.2f" % (what, want / (tb - ta) / MIB, rate / MIB))
        pa = row_of(a, "proc", lambda x: x.get("pid") == dd.pid)
        pb = row_of(b, "proc", lambda x: x.get("pid") == dd.pid)
        if chk.check(pa and pb and pa.get(key) is not None and pb.get(key) is not None,
                     "%s: its row with %s in both intervals" % (what, key)):
            check_delta(chk, pb[key] - pa[key], want, "%s: %s" % (what, key))
        ver = "v%d" % cg.version("io")
        ca = row_of(a, "cgroup", lambda x: x.get("path") == cg.path and x.get("version") == ver and x.get(ckey) is not None)
        cb = row_of(b, "cgroup", lambda x: x.get("path") == cg.path and x.get("version") == ver and x.get(ckey) is not None)
        if chk.check(ca and cb, "%s: its cgroup %s (%s) with %s in both intervals" % (what, cg.path, ver, ckey)):
            check_delta(chk, cb[ckey] - ca[ckey], want, "%s: cgroup %s" % (what, ckey))
            moved = (cb.get(other) or 0) - (ca.get(other) or 0)
            chk.check(moved <= 0.05 * want, "%s: cgroup %s near zero: %d" % (what, other, moved))


if __name__ == "__main__":
    rt.run_test(__doc__, "record-io", scenario)
