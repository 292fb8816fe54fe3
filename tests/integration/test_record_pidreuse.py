# SPDX-License-Identifier: GPL-2.0-or-later
"""A pid reused within one recording (root: /proc/sys/kernel/ns_last_pid): program A
(sleep with a distinctive argv[0]) runs, exits, and program B with another command
line is started with A's pid P; the recorder (-i 1s) runs throughout. The dump has
rows of pid P with two start values, A's (the one /proc said) with A's command line
only, B's with B's only: never a row that mixes them (a command line is stored once
per process, and a process is pid and start)."""
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

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
LIFE_S = 2.5
TRIES = 20


def start(name):
    return subprocess.Popen(["bash", "-c", "exec -a %s sleep %s" % (name, LIFE_S)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=dt._child_setup)


def starttime(pid):
    st_ = dt.task_stat(pid, pid)
    return int(st_[2][18]) if st_ else None


def wait_exec(p, name, timeout=5.0):
    """Until the process runs `name` (bash has exec'd): its start time, or None."""
    ok = rt.wait_for(lambda: (dt.read_file("/proc/%d/cmdline" % p.pid) or "").startswith(name + "\0"), timeout, 0.005)
    return starttime(p.pid) if ok else None


def main():
    rt.setup(__doc__)
    rt.tool()
    dt.need_root("to set the next pid (%s)" % NS_LAST_PID)
    try:
        with open(NS_LAST_PID, "w"):
            pass
    except OSError as e:
        dt.skip("%s is not writable: %s" % (NS_LAST_PID, e))
    dt.set_subreaper()
    chk = dt.Checker("record-pidreuse")
    tag = "%d-%d" % (os.getpid(), time.time_ns() % 1000000)
    name_a, name_b = "recpidreuse-A-" + tag, "recpidreuse-B-" + tag
    tmp = rt.temp_dir("pidreuse")
    procs = []
    try:
        d = os.path.join(tmp, "rec")
        with rt.Recorder(d, "-i", "1s", "--flush", "1s", log=os.path.join(tmp, "rec.log")) as rec:
            time.sleep(1.2)
            a = start(name_a)
            procs.append(a)
            start_a = wait_exec(a, name_a)
            pid = a.pid
            a.wait()
            b, start_b = None, None
            for i in range(TRIES):
                with open(NS_LAST_PID, "w") as f:
                    f.write(str(pid - 1))
                p = start(name_b)
                procs.append(p)
                if p.pid == pid:
                    b = p
                    break
                p.kill()
                p.wait()
            if b is None:
                rec.stop()
                dt.skip("the pid %d was not given to B in %d tries (other processes forked first)" % (pid, TRIES))
            start_b = wait_exec(b, name_b)
            dt.log("pid %d: A (%s) start %r, B (%s) start %r" % (pid, name_a, start_a, name_b, start_b))
            b.wait()
            time.sleep(1.2)
            rc = rec.stop()
        chk.eq(rc, 0, "the recorder's exit status after SIGTERM\n%s" % rec.output())
        if not chk.check(start_a is not None and start_b is not None and start_a != start_b,
                         "A and B ran with their own start times (%r, %r)" % (start_a, start_b)):
            chk.finish()
        r, ivs = rt.dump_checked(chk, "the recording", d)
        rows = rt.procs_of(ivs, pid)
        starts = sorted({row.get("start") for _, row in rows})
        dt.log("rows of pid %d: %r" % (pid, [(iv["seq"], row.get("start"), row.get("cmd")) for iv, row in rows]))
        chk.eq(starts, sorted([start_a, start_b]), "start values of the rows of pid %d" % pid)
        for who, s, name, other in (("A", start_a, name_a, name_b), ("B", start_b, name_b, name_a)):
            mine = [(iv["seq"], row.get("cmd")) for iv, row in rows if row.get("start") == s]
            chk.check(len(mine) >= 1, "%s (start %d) recorded in at least one interval" % (who, s))
            wrong = [(seq, cmd) for seq, cmd in mine if not (cmd or "").startswith(name + " ")]
            chk.check(not wrong, "rows of %s (pid %d, start %d) with another command line than %s's: %r"
                      % (who, pid, s, who, wrong))
            mixed = [(seq, cmd) for seq, cmd in mine if other in (cmd or "")]
            chk.check(not mixed, "rows of %s with the other's command line: %r" % (who, mixed))
        both = [iv["seq"] for iv in ivs if len([r_ for r_ in iv.get("proc") or [] if r_.get("pid") == pid]) > 1]
        chk.check(not both, "intervals with two rows of pid %d: %r" % (pid, both))
        st.no_children_left(chk, "record-pidreuse")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
