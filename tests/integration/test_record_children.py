# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record's own process life: (a) SIGUSR1 starts a diag-snap child, the recorder
is SIGKILLed right after (small random delays): within 3 s no process of the
snapshot is left (they die with the recorder: diag-snap is sent SIGTERM; on a loaded
machine a part in progress may take up to its --timeout more, which it must say) and the snapshot directory holds no
bundle that looks complete without its index.json, nor a temporary one; (b) SIGSTOP
for 3 s, then SIGCONT: it goes on, the dump shows the gap (two consecutive intervals
about 3 s apart) and nothing bunched (no two intervals within 0.5 s); (c) SIGTERM:
exit 0 and the last intervals written (--flush 10s: the last interval within 1.5 s
of the signal); (d) a second recorder on the same directory exits 1 with one line
naming the first one's pid.

REC_CHILDREN_SEED=N repeats the delays of (a)."""
import os
import random
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402

KILL_ROUNDS = 4
STOP_S = 3.0
# 3 s, or the snapshot's own --timeout on top when it says it had its SIGTERM
SNAP_GRACE_S = 7.0


def snap_pids(snap_dir):
    """Live diag-snap processes writing into snap_dir."""
    out = []
    for pid in rt.procs_running("diag-snap"):
        argv = (dt.read_file("/proc/%d/cmdline" % pid) or "").split("\0")
        if any(a.startswith(snap_dir) for a in argv):
            out.append(pid)
    return out


def kill_during_snapshot(chk, rnd, tmp):
    seen = 0
    for i in range(KILL_ROUNDS):
        d = os.path.join(tmp, "k%d" % i)
        snaps = os.path.join(tmp, "snaps%d" % i)
        delay = rnd.uniform(0.0, 0.6)
        what = "(a) round %d: SIGUSR1, SIGKILL %.3f s later" % (i, delay)
        with rt.Recorder(d, "-i", "1s", "--flush", "1s", "--snap-dir", snaps,
                         log=os.path.join(tmp, "k%d.log" % i)) as rec:
            if not chk.check(rec.wait_started(), "%s: the recorder started\n%s" % (what, rec.output())):
                continue
            rec.signal(signal.SIGUSR1)
            end = time.monotonic() + delay
            child = False
            while True:
                child = child or any(c[1] == "diag-snap" or any("diag-snap" in a for a in c[2][:1])
                                     for c in rt.children_of(rec.pid))
                if time.monotonic() >= end:
                    break
                time.sleep(0.01)
            rc = rec.stop(signal.SIGKILL)
        seen += child
        dt.log("%s: diag-snap child seen: %s" % (what, child))
        chk.eq(rc, -signal.SIGKILL, "%s: the recorder's end" % what)
        t_kill = time.monotonic()
        gone = rt.wait_for(lambda: not snap_pids(snaps), 3.0)
        if not gone:
            # It was sent SIGTERM (it says so when it ends): a part of it in progress may
            # still take up to the snapshot's --timeout (3 s) on a loaded machine.
            desc = [(p, dt.task_state(p, p), (dt.read_file("/proc/%d/stat" % p) or "").split(")")[-1].split()[1:2])
                    for p in snap_pids(snaps)]
            gone = rt.wait_for(lambda: not snap_pids(snaps), 15.0)
            took = time.monotonic() - t_kill
            signalled = "interrupted by signal 15" in rec.output()
            dt.log("%s: diag-snap (pid, state, ppid) %r still there 3 s after the recorder's death, gone after "
                   "%.1f s; it says it was sent SIGTERM: %s" % (what, desc, took, signalled))
            chk.check(gone and signalled and took <= SNAP_GRACE_S,
                      "%s: diag-snap processes left after the recorder's death: %r (gone after %.1f s, "
                      "said it had SIGTERM: %s)" % (what, desc, took, signalled))
        st.no_children_left(chk, what, wait=3.0)
        if os.path.isdir(snaps):
            for name in os.listdir(snaps):
                p = os.path.join(snaps, name)
                if not os.path.isdir(p):
                    continue
                if st.TMP_RE.match(name) or ".tmp-" in name:
                    chk.fail("%s: a temporary bundle %s left (diag-snap was sent SIGTERM: it cleans up)" % (what, name))
                else:
                    chk.check(os.path.exists(os.path.join(p, "index.json")),
                              "%s: %s looks like a bundle but has no index.json: %r" % (what, name, os.listdir(p)))
    chk.check(seen >= 1, "(a): a diag-snap child was running at the kill in %d of %d rounds" % (seen, KILL_ROUNDS))


def stop_cont_term(chk, tmp):
    d = os.path.join(tmp, "s")
    with rt.Recorder(d, "-i", "1s", "--flush", "10s", log=os.path.join(tmp, "s.log")) as rec:
        time.sleep(2.5)
        # (d) a second recorder on the same directory
        r = dt.run([rt.tool(), "-D", d, "-i", "1s"], timeout=15)
        chk.eq(r.rc, 1, "(d) a second recorder's exit status\n%s" % r.describe())
        lines = [l for l in (r.err + r.out).splitlines() if l.strip()]
        chk.check(len(lines) == 1 and str(rec.pid) in lines[0],
                  "(d) one line naming the first recorder's pid %d: %r" % (rec.pid, lines))
        # (b) a stop of STOP_S
        rec.signal(signal.SIGSTOP)
        t_stop = time.time()
        time.sleep(STOP_S)
        rec.signal(signal.SIGCONT)
        t_cont = time.time()
        time.sleep(3.3)
        alive = rec.alive()
        t_term = time.time()
        rc = rec.stop(signal.SIGTERM)
    chk.check(alive, "(b) the recorder goes on after SIGCONT\n%s" % rec.output())
    chk.eq(rc, 0, "(c) exit status after SIGTERM\n%s" % rec.output())
    r, ivs = rt.dump_checked(chk, "(b)", d)
    times = [iv["time_ns"] / 1e9 for iv in ivs]
    if not chk.check(len(times) >= 6, "(b) intervals recorded: %d" % len(times)):
        return
    gaps = [b - a for a, b in zip(times, times[1:])]
    dt.log("interval gaps: %s (stop %.2f, cont %.2f, term %.2f)"
           % (["%.2f" % g for g in gaps], t_stop - times[0], t_cont - times[0], t_term - times[0]))
    chk.check(any(STOP_S - 0.6 <= g <= STOP_S + 1.2 for g in gaps),
              "(b) two consecutive intervals about %.0f s apart (the stop): gaps %s" % (STOP_S, ["%.2f" % g for g in gaps]))
    chk.check(min(gaps) >= 0.5, "(b) no two intervals within 0.5 s (bunched after the stop): gaps %s"
              % ["%.2f" % g for g in gaps])
    after = [t for t in times if t > t_cont]
    chk.check(len(after) >= 2, "(b) intervals after SIGCONT: %d" % len(after))
    chk.check(times[-1] >= t_term - 1.5, "(c) the last interval %.2f s before SIGTERM (at most 1.5)" % (t_term - times[-1]))


def main():
    rt.setup(__doc__)
    rt.tool()
    dt.need_path("diag_snap")
    dt.set_subreaper()
    chk = dt.Checker("record-children")
    seed = int(os.environ.get("REC_CHILDREN_SEED") or time.time_ns() % (1 << 32))
    dt.log("seed %d (REC_CHILDREN_SEED=%d repeats it)" % (seed, seed))
    rnd = random.Random(seed)
    tmp = rt.temp_dir("children")
    try:
        kill_during_snapshot(chk, rnd, tmp)
        stop_cont_term(chk, tmp)
        st.no_children_left(chk, "record-children")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
