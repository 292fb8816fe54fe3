#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The retry loop of real software: sqlite3 A holds the database in BEGIN
EXCLUSIVE, sqlite3 B inserts with `.timeout 60000`, so its busy handler sleeps
between fcntl(F_SETLK) tries and /proc/locks shows no waiter. diag-locks must
report B's likely wait for A's lock (inferred, with its evidence), diag-chain
must follow B into A instead of "sleeping by choice". And the writer that waits
for a reader: A in "BEGIN; SELECT" holds SHARED (a READ range), B holds its own
SHARED range for reading and sleeps until it can write it. Skipped (77) without
sqlite3; lockfix's retry cases (locks-retry, chain-locks) cover the shape."""
import time

import diagtest as dt
import locktest as lt

chk = dt.Checker("locks-sqlite")


def case(ps, what, begin, mode, own):
    db, inode, a, b = lt.sqlite_busy(ps, begin)
    chk.eq(lt.waiter_count(inode), 0, "%s: /proc/locks shows no waiter" % what)
    found = None
    for _ in range(5):
        r = dt.diag_locks("-J", "-p", "%d,%d" % (a, b))
        for l in (r.json() or {}).get("file_locks", []):
            for w in l.get("waiters", []):
                if w.get("inferred") and w.get("pid") == b:
                    found = (l, w)
        if found:
            break
        time.sleep(0.05)
    chk.eq(r.rc, 0, "%s diag-locks: exit status\n%s" % (what, r.describe()))
    chk.check(found is not None, "%s diag-locks: no inferred waiter pid %d:\n%s" % (what, b, r.out))
    if found:
        l, w = found
        chk.eq((l.get("kind"), l.get("mode"), l.get("path"), l.get("holder_pid"), l.get("holder_comm")),
               ("POSIX", mode, db, a, "sqlite3"), "%s diag-locks: the lock and its holder" % what)
        ev = w.get("evidence") or ""
        for s in ("likely waits for POSIX %s on %s held by pid %d (sqlite3)" % (mode, db, a), "has %s open" % db, own):
            chk.check(s in ev, "%s diag-locks: evidence %r lacks %r" % (what, ev, s))
    ok = False
    for _ in range(5):
        r = dt.diag_chain("-J", str(b))
        ch = dt.chain_with_start(r.json(), b) or {}
        hops = [(n, dt.chain_edge_into(ch, n.get("id"))) for n in ch.get("nodes", []) if n.get("pid") == a]
        ok = any("likely waited for (inferred: pid %d sleeps in" % b in ((e or {}).get("resource") or "")
                 for _, e in hops)
        if ok:
            break
        time.sleep(0.05)
    chk.check(ok, "%s diag-chain: B's chain does not reach A through the inferred lock hop:\n%s" % (what, r.out))


def main():
    dt.setup(__doc__, "diag_chain", "chainfix", "diag_locks", "lockfix")
    with lt.Procs() as ps:
        case(ps, "exclusive", "BEGIN EXCLUSIVE; INSERT INTO t VALUES(1);", "WRITE", "which it does not lock")
    with lt.Procs() as ps:
        case(ps, "reader", "BEGIN; SELECT * FROM t;", "READ", "holds the same range only for reading")
    chk.finish()


if __name__ == "__main__":
    main()
