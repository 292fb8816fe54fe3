# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record through a fork explosion: forkpool.py (a Python parent holding
200 MiB hands tasks to a ProcessPoolExecutor of 10 forked workers) in a memory
cgroup of its own with a limit the pool nearly fills, the recorder (outside it) at
-i 1s with `--on 'count:poolPID\\.py --workers>5'` (the fixture run
through a link of that name, so other runs of it on the machine do not count) and `--on oom`, a 30 s
cooldown and its bundles in the test's directory. The pool is started after the
recorder, then every worker grows past the limit and the kernel's OOM killer ends
some (the fixture, their parent, sees SIGKILL; the kernel log, /dev/kmsg, names
them). The recording must have: the count trigger's event (text naming the spec)
with a finished bundle at its path; the oom trigger's event naming a victim, its
bundle too; an "oom-kill" event for each victim the kernel log names, and no
other pid of the pool; the number of processes with the pool's command line rising
from none to 11 over the intervals; the cgroup's row (its path, v1 or v2) with the
limit as mem_limit and mem_oom_kill rising by the number of kills. Needs root and
a memory controller."""
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402
import test_snap_forkbomb as sf  # noqa: E402

WORKERS = sf.WORKERS
LIMIT = sf.LIMIT
COUNT_N = 5
BUNDLE_S = 10.0


def scenario(chk, tmp):
    python = dt.need_debian_python()
    # run through a link of a name of its own: other runs of the fixture on the machine do not count
    script = os.path.join(tmp, "pool%d.py" % os.getpid())
    os.symlink(os.path.realpath(dt.paths.forkpool or st.fixture_script("forkpool.py")), script)
    mark = "pool%d.py --workers" % os.getpid()
    spec = "count:pool%d\\.py --workers>%d" % (os.getpid(), COUNT_N)
    rec_dir, snap_dir = os.path.join(tmp, "rec"), os.path.join(tmp, "snaps")
    with st.TestCgroup("record-forkbomb", memory=LIMIT) as cg:
        kmsg_before = sf.kmsg_oom_kills()
        if kmsg_before is None:
            dt.skip("/dev/kmsg cannot be read")
        rec = rt.Recorder(rec_dir, "-i", "1s", "--flush", "1s", "--on", spec, "--on", "oom",
                          "--snap-dir", snap_dir, "--cooldown", "30s", "--keep-snaps", 10)
        fx = st.PyFixture(python, script, ["--workers", WORKERS, "--mib", sf.DATA_MIB, "--dirty-mib", sf.DIRTY_MIB,
                                           "--grow-mib", sf.GROW_MIB], cgroup=cg, ready_timeout=120, term_timeout=5)
        try:
            rec.start()
            if not chk.check(rec.wait_started(), "the recorder started\n%s" % rt.log_tail(rec)):
                return
            time.sleep(1.5)         # an interval or two before the pool
            with fx:
                parent = fx.fact("PARENT")["pid"]
                workers = sorted(w["pid"] for w in fx.facts.get("WORKER", []))
                chk.eq(len(set(workers)), WORKERS, "the fixture has %d workers" % WORKERS)
                chk.eq(cg.pids(), sorted([parent] + workers), "the pool is in the test's cgroup")
                first = rt.wait_for(lambda: rt.bundles(snap_dir), BUNDLE_S + 3)
                chk.check(first, "the count trigger gave a bundle while the pool ran\n%s" % rt.log_tail(rec))
                # its diag-snap ends after the bundle is in place: the oom trigger's must not find it running
                rt.wait_for(lambda: not rt.children(rec.pid), 15)
                os.kill(parent, signal.SIGUSR1)
                gone = {}
                for words in fx.read_lines("DONE", timeout=120):
                    if words and words[0] == "GONE":
                        e = st.kv(words)
                        gone[e["pid"]] = e["exitcode"]
                killed = sorted(p for p, c in gone.items() if c == -signal.SIGKILL)
                dt.log("workers' exit codes: %s" % gone)
                chk.eq(sorted(gone), workers, "every worker is gone after growing past the limit")
                second = rt.wait_for(lambda: [n for n in rt.bundles(snap_dir) if n not in (first or [])], BUNDLE_S)
                chk.check(second, "the oom trigger gave a bundle\n%s" % rt.log_tail(rec))
                time.sleep(2.5)     # the cgroup's counters in two more intervals
            chk.eq(rec.stop(), 0, "the recorder's exit status on SIGTERM\n%s" % rec.output())
        finally:
            rec.close()
        kmsg = [k[0] for k in (sf.kmsg_oom_kills() or []) if k[0] in workers and k not in kmsg_before]
        check(chk, rec_dir, cg, parent, workers, killed, kmsg, spec, mark)


def check(chk, rec_dir, cg, parent, workers, killed, kmsg, spec, mark):
    snap_dir = os.path.join(os.path.dirname(rec_dir), "snaps")
    r, ivs = rt.dump(rec_dir)
    chk.eq(r.rc, 0, "show --dump exit status\n%s" % r.describe())
    ivs = [iv for iv in ivs if "unparsed" not in iv]
    trig = rt.events(ivs, "trigger")
    dt.log("trigger events: %s" % [(e.get("text"), e.get("path")) for e in trig])
    if not chk.check(killed, "the OOM killer ended some worker"):
        return

    count = [e for e in trig if (e.get("text") or "").startswith(spec + ":")]
    if chk.eq(len(count), 1, "the count trigger fired once (30 s cooldown)"):
        e = count[0]
        m = re.search(r"\b(\d+) processes match", e.get("text") or "")
        chk.check(m and COUNT_N < int(m.group(1)) <= WORKERS + 1,
                  "the count trigger's text says more than %d processes match: %r" % (COUNT_N, e.get("text")))
        chk.check(e.get("pid") in [parent] + workers, "the count event names a process of the pool: %r" % e.get("pid"))
        chk.check((e.get("path") or "").startswith(snap_dir + "/"), "the count event's bundle is in --snap-dir: %r"
                  % e.get("path"))
        st.check_bundle(chk, e.get("path") or "?", "count bundle")

    chk.check(all((e.get("text") or "").count(e.get("text", "").split(": ")[0]) == 1 for e in trig),
              "each trigger's text names its spec once: %r" % [e.get("text") for e in trig])
    ooms = [e for e in trig if (e.get("text") or "").startswith("oom:")]
    if chk.check(ooms, "the oom trigger fired"):
        e = ooms[0]
        named = [p for p in killed if re.search(r"\bpid %d\b" % p, e.get("text") or "")]
        foreign = re.search(r"\bpid (\d+)\b", e.get("text") or "")
        if not named and foreign and int(foreign.group(1)) not in [parent] + workers:
            # the trigger is the host's: an OOM kill elsewhere on the machine came first
            dt.log("the oom trigger fired first for another OOM kill on the machine: %r" % e.get("text"))
        else:
            chk.check(named, "the oom trigger's text names a victim %s: %r" % (killed, e.get("text")))
            chk.eq(len(ooms), 1, "the oom trigger fired once (30 s cooldown)")
        st.check_bundle(chk, e.get("path") or "?", "oom bundle")

    kills = rt.events(ivs, "oom-kill")
    dt.log("oom-kill events: %s" % [(e.get("pid"), e.get("comm"), e.get("rss"), e.get("path")) for e in kills])
    dt.log("SIGKILLed (the fixture saw) %s; the kernel log says %s" % (killed, kmsg))
    chk.eq(sorted(kmsg), killed, "the kernel log's victims are the workers that died of SIGKILL")
    pool_kills = sorted(e.get("pid") for e in kills if e.get("pid") in [parent] + workers)
    chk.eq(pool_kills, sorted(kmsg), "an oom-kill event for each victim the kernel log names, no other")
    for e in kills:
        if e.get("pid") in killed:
            chk.eq(e.get("comm"), "python3.11", "the oom-kill event's comm of %d" % e.get("pid"))
            chk.eq(e.get("path"), cg.path, "the oom-kill event's memory cgroup of %d" % e.get("pid"))
            chk.check((e.get("rss") or 0) >= sf.DIRTY_MIB << 20, "the oom-kill event's rss of %d: %r"
                      % (e.get("pid"), e.get("rss")))

    counts = [rt.cmd_count(iv, mark) for iv in ivs]
    dt.log("processes with the pool's command line per interval: %s" % counts)
    peak = counts.index(max(counts)) if counts else 0
    chk.eq(counts[0] if counts else None, 0, "no pool process in the first interval")
    chk.eq(max(counts or [0]), WORKERS + 1, "the count peaks at the pool's size")
    chk.check(all(a <= b for a, b in zip(counts[:peak], counts[1:peak + 1])), "the count rises up to its peak: %s" % counts)
    chk.eq(counts[-1] if counts else None, 1, "only the parent is left in the last interval")

    rows = rt.cgroup_rows(ivs, cg.path, "v%d" % cg.version())
    if not chk.check(len(rows) >= len(ivs) - 2, "the cgroup %s is in every interval: %d rows, %d intervals"
                     % (cg.path, len(rows), len(ivs))):
        return
    lims = sorted({row.get("mem_limit") for _, row in rows})
    chk.eq(lims, [LIMIT], "the cgroup's mem_limit")
    ok = [row.get("mem_oom_kill") for _, row in rows]
    dt.log("cgroup %s mem_oom_kill per interval: %s; mem_current %s" % (cg.path, ok, [row.get("mem_current") for _, row in rows]))
    chk.check(all(isinstance(x, int) for x in ok), "mem_oom_kill read in every interval: %s" % ok)
    if all(isinstance(x, int) for x in ok):
        chk.eq(ok[-1] - ok[0], len(killed), "mem_oom_kill rises by the number of kills")
        chk.check(all(a <= b for a, b in zip(ok, ok[1:])), "mem_oom_kill never decreases: %s" % ok)


if __name__ == "__main__":
    rt.run_test(__doc__, "record-forkbomb", scenario)
