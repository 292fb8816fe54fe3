#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The retry loop of real software: sqlite3 A holds the database in BEGIN
EXCLUSIVE, sqlite3 B inserts with `.timeout 60000`, so its busy handler sleeps
between fcntl(F_SETLK) tries and /proc/locks shows no waiter. diag-locks must
report B's likely wait for A's lock (inferred, with its evidence), diag-chain
must follow B into A instead of "sleeping by choice". Skipped (77) without
sqlite3; lockfix's retry cases (locks-retry, chain-locks) cover the shape."""
import time

import diagtest as dt
import locktest as lt

chk = dt.Checker("locks-sqlite")


def main():
    dt.setup(__doc__, "diag_chain", "chainfix", "diag_locks", "lockfix")
    with lt.Procs() as ps:
        db, inode, a, b = lt.sqlite_busy(ps)
        chk.eq(lt.waiter_count(inode), 0, "sqlite3: /proc/locks shows no waiter")
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
        chk.eq(r.rc, 0, "diag-locks: exit status\n%s" % r.describe())
        chk.check(found is not None, "diag-locks: no inferred waiter pid %d:\n%s" % (b, r.out))
        if found:
            l, w = found
            chk.eq((l.get("kind"), l.get("path"), l.get("holder_pid"), l.get("holder_comm")),
                   ("POSIX", db, a, "sqlite3"), "diag-locks: the lock and its holder")
            ev = w.get("evidence") or ""
            for s in ("likely waits for POSIX WRITE on %s held by pid %d (sqlite3)" % (db, a), "has %s open" % db):
                chk.check(s in ev, "diag-locks: evidence %r lacks %r" % (ev, s))
        ok = False
        for _ in range(5):
            r = dt.diag_chain("-J", str(b))
            ch = dt.chain_with_start(r.json(), b) or {}
            hops = [(n, e) for n, e in dt.chain_path(ch) if e and n.get("pid") == a]
            hops = hops or [(n, dt.chain_edge_into(ch, n.get("id"))) for n in ch.get("nodes", [])
                            if n.get("pid") == a]
            ok = any("likely waited for (inferred: pid %d sleeps in" % b in ((e or {}).get("resource") or "")
                     for _, e in hops)
            if ok:
                break
            time.sleep(0.05)
        chk.check(ok, "diag-chain: B's chain does not reach A through the inferred lock hop:\n%s" % r.out)
    chk.finish()


if __name__ == "__main__":
    main()
