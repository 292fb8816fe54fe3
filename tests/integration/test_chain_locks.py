#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain through file locks: a lock whose locker exited is followed into the
live process holding its open file description (flock(1) killed under its
`sleep`; lockfix's orphan cases), and a thread sleeping in a retry loop around a
non-blocking lock call is followed, as an inferred hop with its evidence, into
the holder instead of ending at "sleeping by choice"; a loop through that hop is
a possible deadlock, never a proven one (no exit 3)."""
import time

import diagtest as dt
import locktest as lt

chk = dt.Checker("chain-locks")
EXIT_DEADLOCK = 3


def chain_of(what, start, rc=None, tries=5, want=None):
    """diag-chain -J START; again while want(chain) is false (a retrier may be on
    a CPU between two tries at the instant it is read)."""
    for _ in range(tries):
        r = dt.diag_chain("-J", str(start))
        ch = dt.chain_with_start(r.json(), start)
        if ch and (want is None or want(ch)):
            break
        time.sleep(0.05)
    if rc is not None:
        chk.eq(r.rc, rc, "%s: exit status\n%s" % (what, r.describe()))
    chk.check(r.rc != EXIT_DEADLOCK, "%s: exit 3 (deadlock)\n%s" % (what, r.describe()))
    ch = dt.chain_json(chk, r, what, start)
    return r, ch or {}


def hop_into(ch, pid):
    """The (node, edge) of the first thread node of pid below the start."""
    for n, e in dt.chain_path(ch):
        if e and n.get("pid") == pid:
            return n, e
    for n in ch.get("nodes", []):
        if n.get("pid") == pid and n.get("id") != 0:
            return n, dt.chain_edge_into(ch, n.get("id"))
    return None, None


def check_orphan(what, waiter, holder, locker, path, end):
    r, ch = chain_of(what, waiter, rc=5)
    n, e = hop_into(ch, holder)
    chk.check(n is not None, "%s: the chain does not reach the holder %d:\n%s" % (what, holder, dt.chain_summary(r.json())))
    if n:
        chk.eq(e.get("kind"), "file-lock", "%s: edge kind into the holder" % what)
        res = e.get("resource") or ""
        chk.check(path in res, "%s: resource %r does not name %s" % (what, res, path))
        if locker:
            chk.check("inherited from pid %d (exited)" % locker in res,
                      "%s: resource %r does not say the locker %d exited" % (what, res, locker))
    chk.check(not any(x.get("end") == "gone" for x in ch.get("nodes", [])),
              "%s: the chain ends at a gone process:\n%s" % (what, dt.chain_summary(r.json())))
    if end:
        root = dt.chain_node(ch, ch.get("root"))
        chk.eq((root or {}).get("end"), end, "%s: end of the root node" % what)


def case_flock1():
    with lt.Procs() as ps:
        path, inode, locker, sleeper, waiter = lt.flock_orphan(ps)
        check_orphan("flock(1)", waiter, sleeper, locker, path, "sleeping")


def case_orphan(case, flock):
    with dt.lockfix(case) as fx:
        f = fx.fact("orphan")
        check_orphan(case, f["waiter"], f["holder"], f["locker"] if flock else None, f["path"], None)


def inferred_hop(ch, holder):
    n, e = hop_into(ch, holder)
    return n if e and "likely waited for" in (e.get("resource") or "") else None


def case_retry(case, kind):
    with dt.lockfix(case) as fx:
        f = fx.fact("retry")
        path, holder, retrier, bystander = f["path"], f["holder"], f["retrier"], f["bystander"]
        r, ch = chain_of(case, retrier, want=lambda c: inferred_hop(c, holder))
        n, e = hop_into(ch, holder)
        chk.check(n is not None, "%s: the retrier's chain does not reach the holder %d:\n%s"
                  % (case, holder, dt.chain_summary(r.json())))
        if n:
            res = e.get("resource") or ""
            chk.eq(e.get("kind"), "file-lock", "%s: edge kind" % case)
            for s in ("%s WRITE %s, likely waited for (inferred: " % (kind, path), "pid %d sleeps in " % retrier,
                      "which it does not lock", "pid %d (lockfix) holds a %s WRITE lock" % (holder, kind)):
                chk.check(s in res, "%s: resource %r lacks %r" % (case, res, s))
            chk.eq(n.get("end"), "sleeping", "%s: the holder sleeps (and is not itself a likely waiter)" % case)
        start = dt.chain_node(ch, 0) or {}
        chk.check("sleeping by choice" not in (start.get("end_text") or ""), "%s: the retrier 'sleeps by choice'" % case)
        # the bystander (in read(), the file open): no inference
        r = dt.diag_chain("-J", str(bystander))
        chk.check("likely waited for" not in r.out, "%s: the bystander's chain has an inferred lock hop:\n%s"
                  % (case, r.out))


def case_cycle():
    with dt.lockfix("retry_cycle") as fx:
        f = fx.fact("retry_cycle")
        a, b = f["a"], f["b"]
        r, ch = chain_of("retry_cycle", b, want=lambda c: inferred_hop(c, b))
        chk.eq(ch.get("deadlock"), False, "retry_cycle: deadlock flag")
        ends = [n.get("end_text") or "" for n in ch.get("nodes", [])]
        chk.check(any("possible deadlock" in t for t in ends), "retry_cycle: no 'possible deadlock' in %r" % ends)
        chk.check(not any(n.get("end") == "deadlock" for n in ch.get("nodes", [])), "retry_cycle: a deadlock end")
        for _ in range(5):      # as chain_of: a retrier may be caught on a CPU
            r = dt.diag_chain(str(b))
            if "possible deadlock" in r.out:
                break
            time.sleep(0.05)
        chk.check("possible deadlock" in r.out, "retry_cycle text: no 'possible deadlock':\n%s" % r.out)


def main():
    dt.setup(__doc__, "diag_chain", "chainfix", "diag_locks", "lockfix")
    case_flock1()
    case_orphan("orphan_flock", True)
    case_orphan("orphan_ofd", False)
    case_retry("retry_flock", "FLOCK")
    case_retry("retry_posix", "POSIX")
    case_cycle()
    chk.finish()


if __name__ == "__main__":
    main()
