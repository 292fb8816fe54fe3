# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record's D-state threads against /proc: chainfix --case dstate leaves one
thread of a multi-threaded process in D (a read of a page of a FUSE file whose server
never answers; another thread waits for a mutex it holds). The recorder at -i 1s for
about 4 s: every interval has that thread (tid, its process's pid, its name) with the
wait channel /proc/PID/task/TID/wchan shows, and no thread the kernel does not show in
D at that time; the waiting thread (S) is not listed. Needs root and /dev/fuse."""
import os
import signal
import sys
import shutil
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402


def main():
    rt.setup(__doc__, "chainfix")
    dt.need_root("mounting the FUSE file system of chainfix")
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    chk = dt.Checker("record-dstate")
    tmp = tempfile.mkdtemp(prefix="diag-record-dstate-")
    try:
        with dt.KVFixture("chainfix", ["--case", "dstate"], ready_timeout=20, term_timeout=10,
                          pdeathsig=signal.SIGTERM) as fx:
            fu = fx.fact("chain")
            pid, tid = dt.pid_tid(fu["O"])
            _, waiter = dt.pid_tid(fu["W"])
            if dt.task_state(pid, tid) != "D":
                dt.skip("chainfix's reader waits in state %s here, not D" % dt.task_state(pid, tid))
            wchan = (dt.read_file("/proc/%d/task/%d/wchan" % (pid, tid)) or "").strip()
            comm = (dt.read_file("/proc/%d/task/%d/comm" % (pid, tid)) or "").strip()
            rec_dir = os.path.join(tmp, "rec")
            with rt.Recorder(rec_dir, "-q", "-i", "1s", "--flush", "1s", "--duration", "4s") as rec:
                rec.proc.wait(timeout=30)
            chk.eq(rec.proc.returncode, 0, "the recorder ran its 4 s (%s)" % rec.output()[-500:])
            still = dt.task_state(pid, tid) == "D"
            r, ivs = rt.dump(rec_dir)
            chk.eq(r.rc, 0, "show --dump: %s" % r.describe())
            chk.check(len(ivs) >= 3, "at least 3 intervals: %d" % len(ivs))
            for iv in ivs:
                rows = iv.get("dstate") or []
                mine = [x for x in rows if x.get("tid") == tid]
                if still:
                    chk.check(len(mine) == 1, "interval %s lists thread %d in D once: %s" % (iv.get("seq"), tid, rows))
                for x in mine:
                    chk.eq(x.get("pid"), pid, "the D thread's process")
                    chk.eq(x.get("comm"), comm, "the D thread's name")
                    if wchan and wchan != "0":
                        chk.eq(x.get("wchan"), wchan, "the D thread's wait channel, as /proc shows it")
                chk.check(not [x for x in rows if x.get("tid") == waiter],
                          "the mutex waiter (%d, not in D) is not listed: %s" % (waiter, rows))
            dt.log("thread %d of %d in D on %s: listed in %d of %d intervals" % (
                tid, pid, wchan, sum(1 for iv in ivs if any(x.get("tid") == tid for x in iv.get("dstate") or [])),
                len(ivs)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
