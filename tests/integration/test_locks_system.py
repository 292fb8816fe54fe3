#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-locks over the whole system (no -p) while lockfix cases run: the exit
status is right, the fixture's locks and cycles are in the output, nothing of the
fixture was woken or stopped, and the scan finishes in time (printed; fails
above 5 s). Other processes on the host may hold or wait for locks too: only
the fixture's entries are checked exactly."""
import diagtest as dt

chk = dt.Checker("locks-system")
LIMIT_S = 5.0


def whole_system(fx, pids, what):
    before = dt.wait_asleep(pids)
    r = dt.diag_locks("-J")
    after = dt.ctxt_switches(pids)
    dt.log("%s: `%s` took %.2f s (exit %s)" % (what, r.cmd(), r.elapsed, r.rc))
    chk.check(r.elapsed < LIMIT_S, "%s: whole-system scan took %.2f s (limit %.1f s)" % (what, r.elapsed, LIMIT_S))
    woken = sorted(t for t in before if t in after and after[t] != before[t])
    chk.check(not woken, "%s: fixture threads %s were woken or stopped" % (what, woken))
    chk.check(fx.proc.poll() is None, "%s: fixture died" % what)
    doc = r.json(chk)
    if doc is None:
        dt.log(r.describe())
    elif doc.get("threads_seen", 0) < len(before):
        chk.fail("%s: threads_seen %r < the fixture's %d threads" % (what, doc.get("threads_seen"), len(before)))
    return r, doc


def ours(cycle, pids):
    return any(e.get("pid") in pids for e in cycle)


def main():
    dt.setup_locks(__doc__)
    dt.need_path("diag_locks")
    dt.need_path("lockfix")

    # a deadlock: exit 3, and the cycle is the fixture's
    with dt.lockfix("abba") as fx:
        f = fx.fact("abba")
        pid, t1, t2 = f["pid"], f["t1"], f["t2"]
        r, doc = whole_system(fx, [pid], "abba")
        chk.eq(r.rc, 3, "abba: exit status of the whole-system scan")
        mine = [c for c in (doc or {}).get("deadlocks", []) if ours(c, [pid])]
        if chk.eq(len(mine), 1, "abba: the fixture's deadlocks"):
            chk.eq(sorted(e.get("tid") for e in mine[0]), sorted([t1, t2]), "abba: cycle tids")
        for var, owner, waiter in (("lockfix_m1", t1, t2), ("lockfix_m2", t2, t1)):
            ls = [l for l in dt.locks_futex(doc, name=var) if l.get("pid") == pid]
            if chk.eq(len(ls), 1, "abba: %s entries of pid %d" % (var, pid)):
                chk.eq(ls[0].get("owner_tid"), owner, "abba: %s owner" % var)
                chk.eq(dt.waiter_tids(ls[0]), [waiter], "abba: %s waiters" % var)

    # a cycle across processes, a futex and a file lock
    with dt.lockfix("mixed_cycle") as fx:
        f = fx.fact("mixed_cycle")
        pids = [f["pid"], f["a"], f["b"]]
        r, doc = whole_system(fx, pids, "mixed_cycle")
        chk.eq(r.rc, 3, "mixed_cycle: exit status")
        mine = [c for c in (doc or {}).get("deadlocks", []) if ours(c, pids)]
        if chk.eq(len(mine), 1, "mixed_cycle: the fixture's deadlocks"):
            chk.eq(sorted((e.get("pid"), e.get("tid")) for e in mine[0]), sorted([(f["a"], f["t1"]), (f["b"], f["b"])]),
                   "mixed_cycle: cycle members")

    # no deadlock of ours: exit 0 unless some other process on the host is deadlocked
    with dt.lockfix("flock_chain") as fx:
        f = fx.fact("flock")
        waiters = dt.int_list(f["waiters"])
        pids = [f["pid"], f["holder"]] + waiters
        r, doc = whole_system(fx, pids, "flock_chain")
        others = [c for c in (doc or {}).get("deadlocks", []) if not ours(c, pids)]
        chk.eq(r.rc, 3 if others else 0, "flock_chain: exit status (other deadlocks on the host: %d)" % len(others))
        chk.eq([c for c in (doc or {}).get("deadlocks", []) if ours(c, pids)], [], "flock_chain: deadlock invented")
        ls = [l for l in (doc or {}).get("file_locks", []) if l.get("path") == f["path"]]
        if chk.eq(len(ls), 1, "flock_chain: entries on %s" % f["path"]):
            chk.eq(ls[0].get("holder_pid"), f["holder"], "flock_chain: holder")
            chk.eq(sorted(w.get("pid") for w in ls[0].get("waiters", [])), sorted(waiters), "flock_chain: waiters")
    chk.finish()


if __name__ == "__main__":
    main()
