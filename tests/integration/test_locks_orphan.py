#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-locks on file locks whose locker exited: a flock or OFD lock belongs to the
open file description, so when the process that took it exits the lock lives on
in the processes that inherited the description, while /proc/locks keeps naming
the dead pid. flock(1) killed under its `sleep` (left a zombie), and lockfix's
orphan cases (the locker reaped: gone). Oracles: /proc/locks and fdinfo."""
import os

import diagtest as dt
import locktest as lt

chk = dt.Checker("locks-orphan")


def file_lock(doc, path, what):
    ls = [l for l in (doc or {}).get("file_locks", []) if l.get("path") == path]
    chk.eq(len(ls), 1, "%s: file_locks entries on %s (%r)" % (what, path, (doc or {}).get("file_locks")))
    return ls[0] if ls else {}


def check_entry(what, l, inode, locker, holder, waiter, flock):
    chk.eq(l.get("holder_pid"), holder, "%s: holder_pid (the live holder, not the dead locker)" % what)
    chk.eq([h.get("pid") for h in l.get("holders", [])], [holder], "%s: holders" % what)
    fds = lt.fdinfo_lock_fds(holder, inode)
    chk.check(l.get("holder_fd") in fds, "%s: holder_fd %r is not among the holder's fds whose fdinfo has the lock %r"
              % (what, l.get("holder_fd"), fds))
    chk.eq([w.get("pid") for w in l.get("waiters", [])], [waiter], "%s: waiters" % what)
    if flock:
        # the oracle: /proc/locks names the locker, which is no longer alive
        chk.eq(lt.held_pids(inode), [locker], "%s: /proc/locks names the locker" % what)
        chk.eq(l.get("locker_pid"), locker, "%s: locker_pid" % what)
        chk.eq(l.get("locker_exited"), True, "%s: locker_exited" % what)
    else:
        chk.eq(lt.held_pids(inode), [-1], "%s: /proc/locks gives OFD locks pid -1" % what)
        chk.eq(l.get("locker_pid"), None, "%s: locker_pid of an OFD lock" % what)


def text_check(what, waiter, needles):
    r = dt.diag_locks("-p", str(waiter))
    chk.eq(r.rc, 0, "%s text: exit status\n%s" % (what, r.describe()))
    for s in needles:
        chk.check(s in r.out, "%s text: no %r in:\n%s" % (what, s, r.out))
    chk.check("(fd -1)" not in r.out, "%s text: a holder without an fd:\n%s" % (what, r.out))


def case_flock1():
    with lt.Procs() as ps:
        path, inode, locker, sleeper, waiter = lt.flock_orphan(ps)
        r = dt.diag_locks("-J", "-p", str(waiter))
        chk.eq(r.rc, 0, "flock(1): exit status\n%s" % r.describe())
        l = file_lock(r.json(chk), path, "flock(1)")
        check_entry("flock(1)", l, inode, locker, sleeper, waiter, True)
        chk.eq(l.get("holder_comm"), "sleep", "flock(1): holder_comm")
        text_check("flock(1)", waiter, ['held by pid %d "sleep"' % sleeper,
                                        "the locker pid %d (flock) exited" % locker])
        # the holder alone, -a: the lock it holds with nobody waiting is still its
        r = dt.diag_locks("-J", "-a", "-p", str(sleeper))
        l = file_lock(r.json(chk), path, "flock(1) -a -p sleep")
        chk.eq(l.get("holder_pid"), sleeper, "flock(1) -a -p sleep: holder_pid")


def case_lockfix(case, flock):
    with dt.lockfix(case) as fx:
        f = fx.fact("orphan")
        holder, waiter, locker, inode = f["holder"], f["waiter"], f["locker"], f["inode"]
        chk.check(not os.path.exists("/proc/%d" % locker), "%s: the locker %d still exists" % (case, locker))
        r, doc = dt.locks_run_json(chk, fx, [holder, waiter], case)
        check_entry(case, file_lock(doc, f["path"], case), inode, locker, holder, waiter, flock)
        needles = ['held by pid %d "lockfix"' % holder]
        if flock:
            needles.append("the locker pid %d exited" % locker)
        text_check(case, waiter, needles)


def main():
    dt.setup_locks(__doc__)
    case_flock1()
    case_lockfix("orphan_flock", True)
    case_lockfix("orphan_ofd", False)
    chk.finish()


if __name__ == "__main__":
    main()
