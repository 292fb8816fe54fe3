#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-locks on futex locks: each lockfix case is run, diag-locks -J -p names the
lock (kind, symbol), its owner, the waiters, and a deadlock only where there is
one. The fixture prints the truth; gdb reads the owner from the mutex as an
oracle. Nothing is stopped without --stacks: the targets' context switches do
not move while diag-locks runs."""
import os
import re
import subprocess

import diagtest as dt

chk = dt.Checker("locks-futex")


def run_json(fx, pids, what, *extra, want_rc=0):
    """diag-locks -J -p PIDS; checks the exit status, that nothing was touched."""
    return dt.locks_run_json(chk, fx, pids, what, *extra, want_rc=want_rc, strict=True)


def one_lock(doc, what, **kw):
    ls = dt.locks_futex(doc, **kw)
    if not chk.eq(len(ls), 1, "%s: number of futex_locks entries matching %r" % (what, kw)):
        dt.log("  entries: %r" % [(l.get("kind"), l.get("name"), l.get("futex"), dt.waiter_tids(l))
                                  for l in (doc or {}).get("futex_locks", [])])
    return ls[0] if ls else None


def check_waiters(lock, what, tids, waits_for, pids=None):
    chk.eq(dt.waiter_tids(lock), sorted(tids), "%s: waiter tids" % what)
    for w in (lock or {}).get("waiters", []):
        want = waits_for.get(w.get("tid")) if isinstance(waits_for, dict) else waits_for
        chk.eq(w.get("waits_for"), want, "%s: waits_for of waiter %s" % (what, w.get("tid")))
        if pids:
            chk.eq(w.get("pid"), pids.get(w.get("tid")), "%s: pid of waiter %s" % (what, w.get("tid")))


def check_owner(lock, what, tid, pid, conf=None):
    if not lock:
        return
    chk.eq(lock.get("owner_tid"), tid, "%s: owner_tid" % what)
    chk.eq(lock.get("owner_pid"), pid, "%s: owner_pid" % what)
    chk.eq(lock.get("owner_died"), False, "%s: owner_died" % what)
    chk.eq(lock.get("owner_gone"), False, "%s: owner_gone" % what)
    chk.check(isinstance(lock.get("owner"), dict), "%s: owner object missing: %r" % (what, lock.get("owner")))
    if conf:
        chk.eq(lock.get("confidence"), conf, "%s: confidence" % what)


def check_no_owner(lock, what):
    if not lock:
        return
    for k in ("owner_tid", "owner_pid", "owner"):
        chk.eq(lock.get(k), None, "%s: %s (nobody owns it)" % (what, k))
    chk.eq(lock.get("owner_died"), False, "%s: owner_died" % what)
    chk.eq(lock.get("owner_gone"), False, "%s: owner_gone" % what)


def gdb_values(pid, exprs):
    """{expr: int} read by gdb from the live process (it stops it briefly)."""
    gdb = dt.which("gdb")
    if not gdb:
        return None
    argv = [gdb, "-nx", "-batch", "-p", str(pid)]
    for e in exprs:
        argv += ["-ex", "p %s" % e]
    r = dt.run(argv, timeout=60)
    vals = [int(v) for v in re.findall(r"^\$\d+ = (-?\d+)", r.out, re.M)]
    if len(vals) != len(exprs):
        chk.fail("gdb oracle failed:\n" + r.describe())
        return None
    return dict(zip(exprs, vals))


def check_deadlock_entry(entry, what, tid, holds, waits):
    chk.check(holds in (entry.get("holds") or ""), "%s: tid %d holds %r, want it to name %s" %
              (what, tid, entry.get("holds"), holds))
    chk.check(waits in (entry.get("waits_for") or ""), "%s: tid %d waits_for %r, want it to name %s" %
              (what, tid, entry.get("waits_for"), waits))


# ---------------------------------------------------------------- cases

def case_abba():
    with dt.lockfix("abba") as fx:
        f = fx.fact("abba")
        pid, t1, t2 = f["pid"], f["t1"], f["t2"]
        r, doc = run_json(fx, [pid], "abba", want_rc=3)
        m1 = one_lock(doc, "abba m1", name="lockfix_m1")
        m2 = one_lock(doc, "abba m2", name="lockfix_m2")
        for lock, nm, owner, waiter, addr in ((m1, "m1", t1, t2, f["m1"]), (m2, "m2", t2, t1, f["m2"])):
            if not lock:
                continue
            chk.eq(lock.get("kind"), "mutex", "abba %s: kind" % nm)
            chk.eq(lock.get("address"), addr, "abba %s: address" % nm)
            chk.eq(lock.get("shared"), False, "abba %s: shared" % nm)
            check_owner(lock, "abba " + nm, owner, pid)
            chk.check(lock.get("confidence") in ("likely", "certain"), "abba %s: confidence %r" % (nm, lock.get("confidence")))
            check_waiters(lock, "abba " + nm, [waiter], "lock", {waiter: pid})
            chk.check((lock.get("owner") or {}).get("syscall", "").startswith("futex"),
                      "abba %s: owner's syscall %r, want futex" % (nm, (lock.get("owner") or {}).get("syscall")))
        dls = (doc or {}).get("deadlocks", [])
        if chk.eq(len(dls), 1, "abba: number of deadlocks"):
            c = dls[0]
            chk.eq(sorted((e.get("pid"), e.get("tid")) for e in c), sorted([(pid, t1), (pid, t2)]), "abba: cycle members")
            for e in c:
                if e.get("tid") == t1:
                    check_deadlock_entry(e, "abba cycle", t1, "lockfix_m1", "lockfix_m2")
                elif e.get("tid") == t2:
                    check_deadlock_entry(e, "abba cycle", t2, "lockfix_m2", "lockfix_m1")

        # --cycles-only: the cycle alone, still exit 3
        r2, doc2 = run_json(fx, [pid], "abba --cycles-only", "--cycles-only", want_rc=3)
        if doc2 is not None:
            chk.eq(len(doc2.get("deadlocks", [])), 1, "abba --cycles-only: deadlocks")
            chk.eq(doc2.get("futex_locks"), [], "abba --cycles-only -J: futex_locks")
            chk.eq(doc2.get("file_locks"), [], "abba --cycles-only -J: file_locks")

        # text: a DEADLOCK: line naming both threads and both mutexes
        r3 = dt.diag_locks("-p", str(pid))
        chk.eq(r3.rc, 3, "abba text: exit status")
        dl = [l for l in r3.out.splitlines() if l.startswith("DEADLOCK:")]
        if chk.eq(len(dl), 1, "abba text: DEADLOCK: lines\n" + r3.out):
            for s in (str(t1), str(t2), "lockfix_m1", "lockfix_m2"):
                chk.check(s in dl[0], "abba text: %r not in %r" % (s, dl[0]))
        r4 = dt.diag_locks("--cycles-only", "-p", str(pid))
        chk.eq(r4.rc, 3, "abba text --cycles-only: exit status")
        lines = [l for l in r4.out.splitlines() if l.strip()]
        chk.check(len(lines) == 1 and lines[0].startswith("DEADLOCK:"),
                  "abba text --cycles-only: want exactly the DEADLOCK: line, got %r" % lines)

        vals = gdb_values(pid, ["lockfix_m1.__data.__owner", "lockfix_m2.__data.__owner"])
        if vals is not None:
            chk.eq(vals["lockfix_m1.__data.__owner"], t1, "abba: gdb oracle m1 owner")
            chk.eq(vals["lockfix_m2.__data.__owner"], t2, "abba: gdb oracle m2 owner")
            for l, k in ((m1, "lockfix_m1.__data.__owner"), (m2, "lockfix_m2.__data.__owner")):
                if l:
                    chk.eq(l.get("owner_tid"), vals[k], "abba: reported owner vs gdb %s" % k)
        else:
            dt.log("gdb absent: oracle skipped")


def case_pi():
    with dt.lockfix("pi_read") as fx:
        f = fx.fact("pi")
        pid, owner, waiters = f["pid"], f["owner"], dt.int_list(f["waiters"])
        r, doc = run_json(fx, [pid], "pi")
        lock = one_lock(doc, "pi", name="lockfix_pi")
        if lock:
            chk.eq(lock.get("kind"), "PI mutex", "pi: kind")
            chk.eq(lock.get("address"), f["mutex"], "pi: address")
            check_owner(lock, "pi", owner, pid, conf="certain")
            chk.eq((lock.get("word") or 0) & 0x3fffffff, owner, "pi: lock word's tid")
            check_waiters(lock, "pi", waiters, "lock", {w: pid for w in waiters})
            sc = (lock.get("owner") or {}).get("syscall", "")
            chk.check(sc.startswith("read("), "pi: owner's syscall %r, want read()" % sc)
            chk.eq((lock.get("owner") or {}).get("state"), "S", "pi: owner's state")
        chk.eq((doc or {}).get("deadlocks"), [], "pi: deadlocks")

        # -p with the process and thread ids: still one lock, attributed to the process
        r2 = dt.diag_locks("-J", "-p", ",".join(str(p) for p in [pid] + waiters))
        d2 = r2.json(chk)
        ls = dt.locks_futex(d2, name="lockfix_pi")
        chk.eq(len(ls), 1, "pi: `%s` lists lockfix_pi %d times (pids %s): a thread id given to -p is "
               "scanned as a process of its own" % (r2.cmd(), len(ls), [l.get("pid") for l in ls]))
        for l in ls:
            chk.eq(l.get("pid"), pid, "pi: `%s`: lock's pid" % r2.cmd())

        vals = gdb_values(pid, ["lockfix_pi.__data.__owner"])
        if vals is not None and lock:
            chk.eq(lock.get("owner_tid"), vals["lockfix_pi.__data.__owner"], "pi: reported owner vs gdb")

        # --stacks: the owner's stack is shown, and then the target runs on unharmed
        sc_before = dt.proc_syscall(pid, owner)[:1]
        r3 = dt.diag_locks("--stacks", "-p", str(pid))
        chk.eq(r3.rc, 0, "pi --stacks: exit status\n" + r3.describe())
        m = re.search(r"owner %d's stack:\n((?:\s+#\d+ .*\n?)+)" % owner, r3.out)
        if chk.check(m, "pi --stacks: no stack lines for owner %d:\n%s" % (owner, r3.describe())):
            chk.check("pi_owner_thread" in m.group(1) or "block_in_read" in m.group(1),
                      "pi --stacks: owner's stack does not show pi_owner_thread:\n" + m.group(1))
        fx_ok_after_stop(fx, pid, owner, sc_before, "pi --stacks")


def fx_ok_after_stop(fx, pid, tid, sc_before, what):
    import time
    deadline = time.monotonic() + 1.0
    bad = dt.stopped_or_traced(pid)
    while bad and time.monotonic() < deadline:
        time.sleep(0.01)
        bad = dt.stopped_or_traced(pid)
    chk.check(not bad, "%s: left stopped/traced: %s" % (what, bad))
    chk.check(fx.proc.poll() is None, "%s: fixture died" % what)
    sc = dt.proc_syscall(pid, tid)[:1]
    chk.eq(sc, sc_before, "%s: owner %d's system call after the stop" % (what, tid))
    chk.eq(dt.task_state(pid, tid), "S", "%s: owner %d's state after the stop" % (what, tid))


def case_robust():
    with dt.lockfix("robust_shm") as fx:
        rb, dead = fx.fact("robust"), fx.fact("robust_dead")
        pid, c2, c3, c4 = rb["pid"], rb["c2"], rb["c3"], dead["waiters"]
        chk.eq(rb["eownerdead"], 1, "robust: fixture saw EOWNERDEAD")
        r, doc = run_json(fx, [pid, c2, c3, c4], "robust")
        lock = one_lock(doc, "robust", waiter_tid=c3)
        if lock:
            chk.eq(lock.get("kind"), "robust mutex", "robust: kind")
            chk.eq(lock.get("shared"), True, "robust: shared")
            chk.check("lockfix-robust" in (lock.get("name") or ""), "robust: name %r" % lock.get("name"))
            chk.eq(lock.get("owner_tid"), rb["owner"], "robust: owner_tid (the new owner after EOWNERDEAD)")
            chk.eq(lock.get("owner_pid"), rb["owner"], "robust: owner_pid")
            chk.eq(lock.get("owner_died"), bool(rb["owner_dead"]), "robust: owner_died")
            chk.eq(lock.get("owner_gone"), False, "robust: owner_gone")
            check_waiters(lock, "robust", [c3], "lock", {c3: c3})
        lock = one_lock(doc, "robust_dead", waiter_tid=c4)
        if lock:
            chk.eq(lock.get("kind"), "mutex", "robust_dead: kind")
            chk.eq(lock.get("shared"), True, "robust_dead: shared")
            chk.eq(lock.get("owner_tid"), dead["owner"], "robust_dead: owner_tid (the killed process)")
            chk.eq(lock.get("owner_died"), True, "robust_dead: owner_died")
            chk.eq(lock.get("owner_gone"), True, "robust_dead: owner_gone")
            chk.eq(lock.get("owner"), None, "robust_dead: owner object of a dead owner")
            check_waiters(lock, "robust_dead", [c4], "lock", {c4: c4})
        chk.eq((doc or {}).get("deadlocks"), [], "robust: deadlocks")


def case_shm():
    with dt.lockfix("shm_mutex") as fx:
        f = fx.fact("shm")
        pid, holder, waiters = f["pid"], f["holder"], dt.int_list(f["waiters"])
        r, doc = run_json(fx, [pid, holder] + waiters, "shm")
        ls = [l for l in (doc or {}).get("futex_locks", []) if set(dt.waiter_tids(l)) & set(waiters)]
        if chk.eq(len(ls), 1, "shm: one lock across the processes, got %r" %
                  [(l.get("pid"), l.get("futex"), dt.waiter_tids(l)) for l in ls]) and ls:
            lock = ls[0]
            chk.eq(lock.get("kind"), "mutex", "shm: kind")
            chk.eq(lock.get("shared"), True, "shm: shared")
            chk.eq(lock.get("offset"), 0, "shm: offset in the memfd")
            chk.check("lockfix-shm" in (lock.get("name") or ""), "shm: name %r" % lock.get("name"))
            check_owner(lock, "shm", holder, holder)
            check_waiters(lock, "shm", waiters, "lock", {w: w for w in waiters})
        chk.eq((doc or {}).get("deadlocks"), [], "shm: deadlocks")


def case_rwlock_w():
    with dt.lockfix("rwlock_w") as fx:
        f = fx.fact("rwlock")
        pid, writer = f["pid"], f["writer"]
        rdr, wtr = f["reader_waiting"], f["writer_waiting"]
        r, doc = run_json(fx, [pid], "rwlock_w")
        ls = dt.locks_futex(doc, name="lockfix_rw")
        chk.eq(len(ls), 1, "rwlock_w: lockfix_rw is one lock, listed %d times (futex words %s)" %
               (len(ls), [l.get("futex") for l in ls]))
        allw = sorted(t for l in ls for t in dt.waiter_tids(l))
        chk.eq(allw, sorted([rdr, wtr]), "rwlock_w: waiters of lockfix_rw")
        for l in ls:
            chk.eq(l.get("kind"), "rwlock", "rwlock_w: kind")
            chk.eq(l.get("address"), f["rw"], "rwlock_w: address")
            check_owner(l, "rwlock_w", writer, pid)
            check_waiters(l, "rwlock_w", dt.waiter_tids(l), {rdr: "read", wtr: "write"})
        chk.eq((doc or {}).get("deadlocks"), [], "rwlock_w: deadlocks")
        vals = gdb_values(pid, ["lockfix_rw.__data.__cur_writer"])
        if vals is not None:
            chk.eq(vals["lockfix_rw.__data.__cur_writer"], writer, "rwlock_w: gdb oracle __cur_writer")


def case_rwlock_r():
    with dt.lockfix("rwlock_r") as fx:
        f = fx.fact("rwlock_r")
        pid, wtr = f["pid"], f["writer_waiting"]
        r, doc = run_json(fx, [pid], "rwlock_r")
        lock = one_lock(doc, "rwlock_r", waiter_tid=wtr)
        if lock:
            chk.eq(lock.get("kind"), "rwlock", "rwlock_r: kind")
            chk.check("lockfix_rw" in (lock.get("name") or ""), "rwlock_r: name %r, want lockfix_rw" % lock.get("name"))
            chk.eq(lock.get("address"), f["rw"], "rwlock_r: address")
            chk.eq(lock.get("readers"), f["readers"], "rwlock_r: readers")
            check_no_owner(lock, "rwlock_r (held by readers)")
            check_waiters(lock, "rwlock_r", [wtr], "write")
        chk.eq((doc or {}).get("deadlocks"), [], "rwlock_r: deadlocks")


def case_no_owner(case, key, kind, var, waits):
    with dt.lockfix(case) as fx:
        f = fx.fact(key)
        pid, waiters = f["pid"], dt.int_list(f["waiters"])
        r, doc = run_json(fx, [pid], case)
        lock = one_lock(doc, case, name=var)
        if lock:
            chk.eq(lock.get("kind"), kind, "%s: kind" % case)
            check_no_owner(lock, case)
            check_waiters(lock, case, waiters, waits, {w: pid for w in waiters})
        chk.eq((doc or {}).get("deadlocks"), [], "%s: deadlocks" % case)
        # text: no invented owner
        r2 = dt.diag_locks("-p", str(pid))
        chk.eq(r2.rc, 0, "%s text: exit status" % case)
        chk.check("owner tid" not in r2.out, "%s text: an owner was invented:\n%s" % (case, r2.out))


def main():
    dt.setup_locks(__doc__)
    dt.need_path("diag_locks")
    dt.need_path("lockfix")
    case_abba()
    case_pi()
    case_robust()
    case_shm()
    case_rwlock_w()
    case_rwlock_r()
    case_no_owner("condvar", "condvar", "condition variable", "lockfix_cv", "signal")
    case_no_owner("sem", "sem", "semaphore", "lockfix_sem", "post")
    case_no_owner("barrier", "barrier", "barrier", "lockfix_barrier", "others")
    chk.finish()


if __name__ == "__main__":
    main()
