#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-locks on lock waits /proc/locks does not show: a process sleeping in a
loop around a non-blocking lock call (flock(LOCK_NB), fcntl(F_SETLK): the shape of
sqlite's busy handler) on a file another process holds. It must be reported as a
likely wait, marked inferred, with its evidence; a bystander that has the file
open but sits in read(), and the holder itself (asleep, holding the lock), must
not be. A cycle through such an inference is a possible deadlock, not exit 3."""
import os
import time

import diagtest as dt
import locktest as lt

chk = dt.Checker("locks-retry")


def fd_on(pid, path):
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == path:
                return int(fd)
        except OSError:
            pass
    return None


def run_until(args, found, tries=5):
    """diag-locks ARGS, again while found(result) is false (the sleeper may be
    between two tries, on a CPU, at the instant it is read)."""
    for _ in range(tries):
        r = dt.diag_locks(*args)
        if found(r):
            break
        time.sleep(0.05)
    return r


def inferred_waiters(doc, path):
    out = []
    for l in (doc or {}).get("file_locks", []):
        if l.get("path") == path:
            out += [(l, w) for w in l.get("waiters", []) if w.get("inferred")]
    return out


def case_retry(case, kind):
    with dt.lockfix(case) as fx:
        f = fx.fact("retry")
        path, holder, retrier, bystander = f["path"], f["holder"], f["retrier"], f["bystander"]
        pids = ",".join(str(p) for p in (holder, retrier, bystander))
        chk.eq(lt.waiter_count(f["inode"]), 0, "%s: /proc/locks shows no waiter (the wait is invisible there)" % case)
        r = run_until(["-J", "-p", pids], lambda r: inferred_waiters(r.json(), path))
        chk.eq(r.rc, 0, "%s: exit status\n%s" % (case, r.describe()))
        iw = inferred_waiters(r.json(chk), path)
        chk.eq([w.get("pid") for _, w in iw], [retrier], "%s: inferred waiters\n%s" % (case, r.out))
        if iw:
            l, w = iw[0]
            chk.eq(l.get("kind"), kind, "%s: kind" % case)
            chk.eq(l.get("holder_pid"), holder, "%s: holder_pid" % case)
            chk.eq(w.get("tid"), retrier, "%s: the sleeping thread" % case)
            chk.eq(w.get("mode"), None, "%s: mode of an inferred wait (not known)" % case)
            ev = w.get("evidence") or ""
            fd = fd_on(retrier, path)
            for s in ("likely waits for %s WRITE on %s held by pid %d (lockfix)" % (kind, path, holder),
                      "it sleeps in ", "has %s open (fd %d), which it does not lock" % (path, fd)):
                chk.check(s in ev, "%s: evidence %r lacks %r" % (case, ev, s))
            others = [x.get("pid") for x in l.get("waiters", []) if x.get("pid") in (holder, bystander)]
            chk.eq(others, [], "%s: the holder or the bystander is listed as a waiter" % case)
        # text: the inferred line, labelled
        r = run_until(["-p", pids], lambda r: "[inferred]" in r.out)
        lines = [l for l in r.out.splitlines() if "[inferred]" in l]
        chk.check(len(lines) == 1 and "pid %d" % retrier in lines[0] and "likely waits for" in lines[0],
                  "%s text: want one [inferred] line for pid %d:\n%s" % (case, retrier, r.out))
        # table: CONFIDENCE likely
        r = run_until(["-r", "-o", "TYPE,PID,CONFIDENCE", "-p", pids], lambda r: "likely" in r.out)
        chk.check("%s %d likely" % (kind, retrier) in r.out, "%s table: no '%s %d likely' row:\n%s"
                  % (case, kind, retrier, r.out))
        # the bystander alone: nothing to say
        r = dt.diag_locks("-p", str(bystander))
        chk.check(r.rc == 0 and r.out.startswith("No thread is waiting"), "%s: bystander alone:\n%s" % (case, r.describe()))


def case_cycle():
    with dt.lockfix("retry_cycle") as fx:
        f = fx.fact("retry_cycle")
        a, b = f["a"], f["b"]
        pids = "%d,%d" % (a, b)
        r = run_until(["-J", "-p", pids], lambda r: (r.json() or {}).get("possible_deadlocks"))
        chk.eq(r.rc, 0, "retry_cycle: exit status (a possible deadlock is not 3)\n%s" % r.describe())
        doc = r.json(chk) or {}
        chk.eq(doc.get("deadlocks"), [], "retry_cycle: proven deadlocks")
        pd = doc.get("possible_deadlocks") or []
        chk.eq(len(pd), 1, "retry_cycle: possible deadlocks %r" % pd)
        if pd:
            chk.eq(sorted(e.get("pid") for e in pd[0]), sorted([a, b]), "retry_cycle: the cycle's processes")
            chk.eq([e.get("pid") for e in pd[0] if e.get("inferred")], [a], "retry_cycle: the inferred hop is a's")
        r = run_until(["-p", pids], lambda r: "POSSIBLE DEADLOCK" in r.out)
        chk.eq(r.rc, 0, "retry_cycle text: exit status")
        chk.check(r.out.startswith("POSSIBLE DEADLOCK"), "retry_cycle text: first line\n%s" % r.out)
        chk.check(not any(l.startswith("DEADLOCK:") for l in r.out.splitlines()),
                  "retry_cycle text: called a deadlock\n%s" % r.out)
        r = run_until(["--cycles-only", "-p", pids], lambda r: "POSSIBLE DEADLOCK" in r.out)
        chk.eq(r.rc, 0, "retry_cycle --cycles-only: exit status")


def main():
    dt.setup_locks(__doc__)
    case_retry("retry_flock", "FLOCK")
    case_retry("retry_posix", "POSIX")
    case_cycle()
    chk.finish()


if __name__ == "__main__":
    main()
