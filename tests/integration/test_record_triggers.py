# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record's triggers, each firing a diag-snap bundle. One recorder (-i 1s,
--cooldown 60s, --keep-snaps 2) with a PSI trigger on the cpu.pressure of a cgroup
v2 of the test's own, psi:cpu:some>5% at the default window (the kernel may make
it 2s without CAP_SYS_RESOURCE, and the recorder says so): the cgroup, not the
host, so that only the test's load counts on a machine busy with other work. Twice
as many busy loops as CPUs are started in it: the trigger must fire within 5 s
(within 9 s when the kernel checks it only in its 2 s averaging pass, as it does
for a trigger set without CAP_SYS_RESOURCE: up to a pass before the first look,
and on a loaded machine the window's growth may be seen a pass or two late),
its event (kind "trigger", text naming the spec) giving a bundle that is complete
(index.json, diag-snap's layout); held for several windows more, it must not fire
again within the cooldown. SIGUSR1 makes a bundle by hand (text naming SIGUSR1),
complete within 6 s of the signal; after a third bundle only the 2 newest are
kept. A trigger the kernel refuses (a PSI trigger on a cgroup that does not exist)
makes the recorder exit 1 with one line saying why; bad specs exit 2."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402

FIRE_S = 5.0            # the PSI trigger fires within this of the pressure starting
FIRE_AVGS_S = 9.0       # the same when the kernel checks it in its 2 s averaging pass
BUNDLE_S = 6.0          # a bundle (diag-snap --timeout 3s) is complete within this
PSI_BUNDLE_S = 15.0     # the same with the CPUs held busy by the pressure
HOLD_S = 6.0            # pressure held after the first firing: several 2 s windows
KEEP = 2


def fired_lines(rec, spec):
    """The recorder's stderr lines saying that trigger fired."""
    return [l for l in rec.output().splitlines() if l.startswith("diag-record: trigger %s:" % spec) and "window" not in l]


def wait_bundle(snap_dir, before, timeout):
    """The name of a bundle that was not in `before` once complete, or None."""
    new = rt.wait_for(lambda: [n for n in rt.bundles(snap_dir) if n not in before], timeout)
    return new[0] if new else None


def wait_snap_done(chk, rec, what):
    """Until the recorder's diag-snap has exited (its retention pass comes after the
    bundle is in place): a trigger meanwhile is recorded without a snapshot."""
    t = time.monotonic()
    done = rt.wait_for(lambda: not rt.children(rec.pid), 15)
    dt.log("%s: diag-snap exited %.2f s after the bundle was in place" % (what, time.monotonic() - t))
    chk.check(done, "%s: the recorder's diag-snap exited" % what)


def refused_and_bad(chk, tmp):
    tool = rt.tool()
    missing = "/sys/fs/cgroup/diag-test-no-such-cgroup-%d" % os.getpid()
    spec = "psi:cpu:some>5%@" + missing
    r = dt.run([tool, "-D", os.path.join(tmp, "refused"), "-i", "1s", "--duration", "3s", "--on", spec], timeout=20)
    lines = r.err_lines()
    dt.log("refused: exit %s, stderr %r" % (r.rc, lines))
    chk.eq(r.rc, 1, "a PSI trigger on a missing cgroup: exit status\n%s" % r.describe())
    chk.check(len(lines) == 1 and spec in lines[0] and missing in lines[0],
              "a PSI trigger on a missing cgroup: one line naming the trigger and the cgroup: %r" % lines)
    for bad in ("psi:cpu:bogus>5%", "psi:cpu:some>500%", "count:x", "nonsense>1", "rss:worker>lots", "psi:disk:some>5%"):
        r = dt.run([tool, "-D", os.path.join(tmp, "bad"), "-i", "1s", "--duration", "2s", "--on", bad], timeout=20)
        lines = r.err_lines()
        chk.eq(r.rc, 2, "bad trigger %r: exit status\n%s" % (bad, r.describe()))
        chk.check(lines and bad in lines[0], "bad trigger %r: the error names it: %r" % (bad, lines[:1]))
    chk.check(not os.path.exists(os.path.join(tmp, "bad", "seg-0000000000000000.drec")),
              "a bad trigger records nothing")


def scenario(chk, tmp):
    t0 = time.monotonic()
    refused_and_bad(chk, tmp)
    dt.log("refused and bad triggers: %.1f s" % (time.monotonic() - t0))
    rec_dir, snap_dir = os.path.join(tmp, "rec"), os.path.join(tmp, "snaps")
    ncpu = os.cpu_count() or 1
    with rt.PressureGroup("record-psi") as g:
        spec = "psi:cpu:some>5%@" + g.dir
        rec = rt.Recorder(rec_dir, "-i", "1s", "--flush", "1s", "--on", spec, "--snap-dir", snap_dir,
                          "--cooldown", "60s", "--keep-snaps", KEEP)
        loops = []
        try:
            rec.start()
            if not chk.check(rec.wait_started(), "the recorder started\n%s" % rt.log_tail(rec)):
                return
            time.sleep(2.5)         # a window or more with the cgroup idle
            chk.eq(fired_lines(rec, spec), [], "no PSI firing while the cgroup is idle")
            t_press = time.time_ns()
            m0 = time.monotonic()
            loops = rt.busy_loops(2 * ncpu, g.preexec())
            psi_name = wait_bundle(snap_dir, [], FIRE_AVGS_S + PSI_BUNDLE_S)
            psi_took = time.monotonic() - m0
            if chk.check(psi_name, "the PSI trigger gave a bundle\n%s" % rt.log_tail(rec)):
                st.check_bundle(chk, os.path.join(snap_dir, psi_name), "psi bundle")
            time.sleep(HOLD_S)
            wait_snap_done(chk, rec, "psi")
            rt.stop_all(loops)
            loops = []
            dt.log("the recorder said: %r" % [l for l in rec.output().splitlines() if "window" in l])

            # SIGUSR1, timed
            before = rt.bundles(snap_dir)
            t_sig = time.monotonic()
            rec.signal(signal.SIGUSR1)
            usr1_name = wait_bundle(snap_dir, before, BUNDLE_S + 10)
            took = time.monotonic() - t_sig
            dt.log("SIGUSR1: bundle %s complete after %.2f s" % (usr1_name, took))
            if chk.check(usr1_name, "SIGUSR1 gave a bundle\n%s" % rt.log_tail(rec)):
                chk.check(took <= BUNDLE_S, "the SIGUSR1 bundle was complete %.2f s after the signal" % took)
                st.check_bundle(chk, os.path.join(snap_dir, usr1_name), "SIGUSR1 bundle")
            wait_snap_done(chk, rec, "SIGUSR1")
            # a third bundle: the oldest goes
            before = rt.bundles(snap_dir)
            rec.signal(signal.SIGUSR1)
            third = wait_bundle(snap_dir, before, BUNDLE_S + 10)
            chk.check(third, "a second SIGUSR1 gave a bundle (no cooldown by hand)")
            time.sleep(0.5)
            left = rt.bundles(snap_dir)
            dt.log("--keep-snaps %d: bundles left %s" % (KEEP, left))
            chk.eq(len(left), KEEP, "--keep-snaps %d: bundles kept" % KEEP)
            chk.check(third in left and usr1_name in left, "the newest bundles are kept: %s" % left)
            chk.eq(sorted(n for n in os.listdir(snap_dir) if n not in left), [], "nothing else in the snapshot directory")
            chk.eq(rec.stop(), 0, "the recorder's exit status on SIGTERM\n%s" % rec.output())
        finally:
            rt.stop_all(loops)
            rec.close()

    # the events as recorded
    t0 = time.monotonic()
    r, ivs = rt.dump(rec_dir)
    dt.log("show --dump: %.1f s, %d intervals" % (time.monotonic() - t0, len(ivs)))
    chk.eq(r.rc, 0, "show --dump exit status\n%s" % r.describe())
    trig = rt.events([iv for iv in ivs if "unparsed" not in iv], "trigger")
    evs = [e for e in trig if (e.get("text") or "").startswith(spec + ":")]
    dt.log("psi: %d busy loops from %d; bundle %s complete after %.2f s; events %s"
           % (2 * ncpu, t_press, psi_name, psi_took, [(e.get("time_ns"), e.get("text"), e.get("path")) for e in evs]))
    if chk.eq(len(evs), 1, "the PSI trigger fired once within the cooldown (pressure held %.0f s more)" % HOLD_S):
        e = evs[0]
        delay = (e["time_ns"] - t_press) / 1e9
        # the recorder says when the kernel made the window 2 s: an unprivileged trigger
        avgs = any("without CAP_SYS_RESOURCE" in l for l in rec.output().splitlines())
        bound = FIRE_AVGS_S if avgs else FIRE_S
        dt.log("psi: fired %.2f s after the pressure started (%s trigger, at most %.0f s)"
               % (delay, "an unprivileged" if avgs else "a privileged", bound))
        chk.check(0 <= delay <= bound, "the PSI trigger fired %.2f s after the pressure started (at most %.0f s)"
                  % (delay, bound))
        chk.eq(e.get("path"), os.path.join(snap_dir, psi_name or "?"), "the PSI event's bundle path")
        chk.check(psi_took <= delay + PSI_BUNDLE_S, "the PSI bundle was complete %.2f s after the pressure, %.2f s after"
                  " the firing (at most %.0f s: the busy loops hold both CPUs)" % (psi_took, psi_took - delay, PSI_BUNDLE_S))
    evs = [e for e in trig if "SIGUSR1" in (e.get("text") or "")]
    if chk.eq(len(evs), 2, "two SIGUSR1 trigger events"):
        chk.eq([e.get("path") for e in evs], [os.path.join(snap_dir, n or "?") for n in (usr1_name, third)],
               "the SIGUSR1 events' bundle paths")
    chk.eq(len(trig), 3, "three trigger events in all: %r" % [e.get("text") for e in trig])


if __name__ == "__main__":
    rt.run_test(__doc__, "record-triggers", scenario)
