# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap's IO rates against real IO: a `dd oflag=direct` writer and a `dd
iflag=direct` reader of a file in a directory on a real disk (not tmpfs), each in a
cgroup of its own throttled to a steady rate (v1 blkio.throttle, v2 io.max). While a
bundle is taken, the test reads each dd's /proc/PID/io every 10 ms and asks dd for
its own count (SIGUSR1) before and after. The bundle's read and write bytes/s of each
dd (processes.json) and of each cgroup (cgroups.json, from blkio / io.stat) must be
within 10 % of the oracle's rate over a span as long as diag-snap's window within
the run, and of dd's own figure; the other direction of each is near zero. Needs
root, the io controller (v2) or blkio (v1) and a block device under TMPDIR or
/var/tmp."""
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402

MIB = 1 << 20
WRITE_BPS = 16 * MIB
READ_BPS = 24 * MIB
BS = "256K"
RUN_S = 14                      # longer than warm-up, the bundle and the reports
INPUT = READ_BPS * RUN_S
TOL = 0.10
DD_COPIED = re.compile(r"^(\d+) bytes .* copied, ([\d.]+) s,")


class DD:
    """dd ARGS in cgroup cg, stderr read for the reports it prints on SIGUSR1."""

    def __init__(self, args, cg):
        self.p = subprocess.Popen(["dd"] + args, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dt.tool_env(),
                                  preexec_fn=cg.preexec(dt._child_setup), start_new_session=True)
        self.buf = b""

    @property
    def pid(self):
        return self.p.pid

    def report(self, timeout=5.0):
        """(bytes copied, dd's seconds) from a SIGUSR1 report, or None."""
        os.kill(self.p.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        fd = self.p.stderr.fileno()
        while time.monotonic() < deadline:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                m = DD_COPIED.match(line.decode(errors="replace"))
                if m:
                    return int(m.group(1)), float(m.group(2))
            if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self.buf += chunk
        return None

    def close(self):
        dt.kill_group(self.p)
        self.p.wait()
        self.p.stderr.close()


def io_sampler(pid, key):
    return st.Sampler(lambda: (st.proc_io(pid) or {}).get(key))


def dd_rate(before, after):
    if not before or not after or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def check_dd(chk, got, rates, dd_bps, what):
    """got against dd's own rate over the whole run of diag-snap. A throttled flow moves
    in slices (100 ms on a rotational disk), so a 1 s window sees more or less than the
    average: the spread the oracle saw over such windows is allowed on top of TOL."""
    if not chk.check(dd_bps, "%s: dd reported its count before and after" % what) or not rates:
        return
    mid = sorted(rates)[len(rates) // 2]
    tol = TOL + (max(rates) - min(rates)) / 2 / mid
    dt.log("%s: dd says %.2f MiB/s, the bundle %.2f MiB/s (allowed %.1f %%)" % (what, dd_bps / MIB, got / MIB, tol * 100))
    chk.check(abs(got - dd_bps) <= tol * dd_bps, "%s: %r not within %.1f %% of dd's own %.0f" % (what, got, tol * 100, dd_bps))


def check_process(chk, b, dd, key, other, samp, dd_bps, what):
    p = b.process(dd.pid)
    if not chk.check(p and key in p, "%s: dd %d in processes.json with %s: %r" % (what, dd.pid, key, p)):
        return None
    window = b.procs.get("window_ms", 1000) / 1000.0
    rates = samp.rates(window, b.t0, b.t1)
    st.check_rate(chk, p[key], rates, TOL, "%s: %s of dd %d (processes.json, /proc/PID/io)" % (what, key, dd.pid))
    check_dd(chk, p[key], rates, dd_bps, "%s: %s of dd %d" % (what, key, dd.pid))
    chk.check(p.get(other, 0) <= 0.01 * p[key], "%s: %s of dd %d is near zero: %r" % (what, other, dd.pid, p.get(other)))
    return p[key]


def check_cgroup(chk, b, cg, dev, key, other, samp, dd_bps, what):
    row = b.cgroup(cg.path)
    if not chk.check(row and row.get(key) is not None, "%s: cgroups.json has %s with %s: %r" % (what, cg.path, key, row)):
        return
    window = b.cgroups.get("window_ms", 1000) / 1000.0
    rates = samp.rates(window, b.t0, b.t1)
    st.check_rate(chk, row[key], rates, TOL, "%s: %s of cgroup %s (cgroups.json, its dd's /proc/PID/io)"
                  % (what, key, cg.path))
    check_dd(chk, row[key], rates, dd_bps, "%s: %s of cgroup %s" % (what, key, cg.path))
    chk.check((row.get(other) or 0) <= 0.05 * row[key], "%s: cgroup %s %s is near zero: %r"
              % (what, cg.path, other, row.get(other)))
    devs = {d.get("dev"): d for d in row.get("devices") or []}
    if chk.check(dev in devs, "%s: cgroup %s lists the disk %s: %r" % (what, cg.path, dev, sorted(devs))):
        chk.check(abs(devs[dev].get(key, 0) - row[key]) <= 0.01 * row[key] + 1,
                  "%s: the disk %s carries the cgroup's %s: %r" % (what, dev, key, devs[dev]))


def scenario(chk, tmp):
    dt.need_program("dd")
    base = st.disk_dir()
    dev, disk = st.disk_of(base)
    work = tempfile.mkdtemp(prefix="diag-snap-io.", dir=base)
    try:
        src, dst = os.path.join(work, "in"), os.path.join(work, "out")
        with open(src, "wb") as f:
            block = os.urandom(MIB)
            for _ in range(INPUT // MIB):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        with st.TestCgroup("io-writer", io=True) as wcg, st.TestCgroup("io-reader", io=True) as rcg:
            wcg.limit_io(dev, wbps=WRITE_BPS)
            rcg.limit_io(dev, rbps=READ_BPS)
            count = str(RUN_S * WRITE_BPS // (256 << 10))
            w = DD(["if=/dev/zero", "of=" + dst, "bs=" + BS, "count=" + count, "oflag=direct"], wcg)
            r = DD(["if=" + src, "of=/dev/null", "bs=" + BS, "iflag=direct"], rcg)
            try:
                time.sleep(1.5)         # past the first throttle slice
                with io_sampler(w.pid, "write_bytes") as ws, io_sampler(r.pid, "read_bytes") as rs:
                    w0, r0 = w.report(), r.report()
                    b = st.take(chk, tmp, "io")
                    w1, r1 = w.report(), r.report()
                chk.check(w.p.poll() is None and r.p.poll() is None, "both dd still ran after the bundle")
                wbps, rbps = dd_rate(w0, w1), dd_rate(r0, r1)
                if b:
                    check_process(chk, b, w, "write_bytes_per_s", "read_bytes_per_s", ws, wbps, "writer")
                    check_process(chk, b, r, "read_bytes_per_s", "write_bytes_per_s", rs, rbps, "reader")
                    check_cgroup(chk, b, wcg, dev, "write_bytes_per_s", "read_bytes_per_s", ws, wbps, "writer")
                    check_cgroup(chk, b, rcg, dev, "read_bytes_per_s", "write_bytes_per_s", rs, rbps, "reader")
                    host = st.load_json(os.path.join(b.path, "host.json")) or {}
                    d = next((x for x in host.get("disks", []) if x.get("name") == disk), None)
                    if chk.check(d, "host.json lists the disk %s" % disk):
                        dt.log("disk %s: %.2f MiB/s read, %.2f MiB/s written (all of the machine)"
                               % (disk, d.get("read_bytes_per_s", 0) / MIB, d.get("write_bytes_per_s", 0) / MIB))
                        chk.check(d.get("read_bytes_per_s", 0) >= READ_BPS * 0.8,
                                  "the disk's reads hold the reader's: %r" % d)
            finally:
                w.close()
                r.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    st.run_checks(__doc__, "snap-io", scenario)
