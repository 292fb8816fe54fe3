# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record on a full disk (root: a tmpfs of 1 MiB as -D, filled up by a file; -i 1s
--flush 1s --queue-size 64K, and --max-size 4M, more than the disk holds): a churn of
short-lived processes with long unique command lines makes its records large, so the
queue overflows in seconds. While full the recorder stays alive and on its schedule,
and says on stderr that records were dropped; once the tmpfs is grown to 64 MiB the
queued records are written: the dump has a "drops" event with a count > 0 and
intervals after the refill; nothing half-written is read as values (show exits 0 or
4, host mem_total is /proc/meminfo's, seq numbers only grow). The tmpfs is unmounted
at the end, also on failure."""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402

# ~100 new processes a second, each with 200 random characters of command line.
CHURN = r"""
import os, random, time
rnd = random.Random(os.getpid())
alpha = "abcdefghijklmnopqrstuvwxyz0123456789"
while True:
    for _ in range(10):
        name = "churn-" + "".join(rnd.choice(alpha) for _ in range(200))
        try:
            os.posix_spawn("/bin/sleep", [name, "1.5"], {})
        except OSError:
            pass
    time.sleep(0.1)
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
"""


def sh(*argv):
    return subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=30)


def fill(mnt, leave):
    """A file taking all of mnt's free space but `leave` bytes."""
    v = os.statvfs(mnt)
    free = v.f_bavail * v.f_frsize
    n = max(0, free - leave)
    with open(os.path.join(mnt, "filler"), "wb") as f:
        try:
            f.write(b"\0" * n)
        except OSError:
            pass
    return n


def main():
    rt.setup(__doc__)
    rt.tool()
    dt.need_root("to mount a small tmpfs")
    dt.set_subreaper()
    chk = dt.Checker("record-diskfull")
    tmp = rt.temp_dir("diskfull")
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    r = sh("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mnt)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        dt.skip("cannot mount a tmpfs: %s" % r.stdout.strip())
    churn = None
    mem_total = rt.meminfo_total()
    try:
        churn = subprocess.Popen([sys.executable, "-c", CHURN], stdin=subprocess.DEVNULL, start_new_session=True,
                                 preexec_fn=dt._child_setup)
        rec = rt.Recorder(mnt, "-i", "1s", "--flush", "1s", "--queue-size", "64K", "--max-size", "4M",
                          log=os.path.join(tmp, "rec.log"))
        with rec:
            chk.check(rec.wait_started(), "the recorder started\n%s" % rec.output())
            filled = fill(mnt, 4096)
            t_full = time.time()
            dt.log("filler of %d bytes: %d bytes free" % (filled, os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize))
            said = rt.wait_for(lambda: "dropped" in rec.output() or not rec.alive(), 30.0, 0.2)
            t_said = time.time()
            dt.log("stderr said records were dropped after %.1f s" % (t_said - t_full))
            chk.check(said and rec.alive(), "the recorder says records were dropped and stays alive (%.1f s after "
                      "the disk was full)\n%s" % (t_said - t_full, rec.output()))
            time.sleep(2.0)
            chk.check(rec.alive(), "the recorder is alive on the full disk\n%s" % rec.output())
            r = sh("mount", "-o", "remount,size=64m", mnt)
            chk.eq(r.returncode, 0, "tmpfs grown to 64 MiB: %s" % r.stdout)
            t_refill = time.time()
            time.sleep(3.5)
            alive = rec.alive()
            t_term = time.time()
            rc = rec.stop()
        out = rec.output()
        chk.check(alive, "the recorder ran through\n%s" % out)
        chk.eq(rc, 0, "exit status after SIGTERM\n%s" % out)
        chk.check(rt.sanitizer_report(out) is None, "sanitizer report: %s" % rt.sanitizer_report(out))
        churn.kill()
        churn.wait()
        dt.log("recorder's stderr:\n" + "\n".join(l for l in out.splitlines() if l.strip())[-3000:])
        r, ivs = rt.dump_checked(chk, "the recording", mnt)
        drops = rt.events(ivs, "drops")
        chk.check(drops and all((e.get("count") or 0) > 0 for e in drops),
                  "a drops event with a count > 0: %r" % [(e.get("count"), e.get("text")) for e in drops])
        chk.check(drops and all("No space left on device" in (e.get("text") or "") for e in drops),
                  "the drops events say why: %r" % [e.get("text") for e in drops])
        chk.check("dropped" in out and "(Success)" not in out, "stderr says why records were dropped")
        after = [iv for iv in ivs if iv["time_ns"] / 1e9 > t_refill + 0.2]
        chk.check(len(after) >= 2, "intervals after the refill: %d" % len(after))
        seqs = [iv["seq"] for iv in ivs]
        chk.check(all(b > a for a, b in zip(seqs, seqs[1:])), "seq numbers only grow: %r" % seqs)
        wrong = [iv["seq"] for iv in ivs if (iv.get("host") or {}).get("mem_total") != mem_total]
        chk.check(not wrong, "host mem_total is /proc/meminfo's in every interval: not in %r" % wrong)
        times = [iv["time_ns"] / 1e9 for iv in ivs]
        chk.check(all(t_full - 10 < t < t_term + 0.5 for t in times), "interval times within the run")
        gaps = [b - a for a, b in zip(times, times[1:])]
        chk.check(min(gaps or [1]) >= 0.5, "no intervals bunched: gaps %r" % ["%.2f" % g for g in gaps])
        late = [(iv["seq"], iv["late_us"]) for iv in ivs if iv["late_us"] > 500000]
        chk.check(not late, "the schedule kept on the full disk (no interval more than 0.5 s late): %r" % late)
        # while full, the queue kept the newest records: those around the refill are there
        kept = [t for t in times if t_said - 1.0 <= t <= t_refill + 1.0]
        chk.check(len(kept) >= 1, "intervals of the last seconds before the refill were kept in the queue "
                  "and written: %r" % ["%.1f" % (t - t_refill) for t in times])
        st.no_children_left(chk, "record-diskfull", exclude=())
    finally:
        if churn is not None and churn.poll() is None:
            dt.kill_group(churn)
            churn.wait()
        for _ in range(20):
            if sh("umount", mnt).returncode == 0 or not os.path.ismount(mnt):
                break
            time.sleep(0.2)
        if os.path.ismount(mnt):
            sh("umount", "-l", mnt)
        shutil.rmtree(tmp, ignore_errors=True)
        dt.reap_orphans()
    chk.finish()


if __name__ == "__main__":
    main()
