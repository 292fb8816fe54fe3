#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-locks on file locks: flock, POSIX and OFD chains (holder and waiters, with
/proc/locks and lsof as oracles), a flock deadlock cycle, a POSIX cycle the kernel
refused (no deadlock may be invented), a cycle across a futex and a file lock,
and the command line (-o/-r/-n table, -H, --help, bad option, missing pid)."""
import os
import re

import diagtest as dt

chk = dt.Checker("locks-file")


def run_json(fx, pids, what, *extra, want_rc=0):
    return dt.locks_run_json(chk, fx, pids, what, *extra, want_rc=want_rc)


def file_lock(doc, path, what):
    ls = [l for l in (doc or {}).get("file_locks", []) if l.get("path") == path]
    if not chk.eq(len(ls), 1, "%s: file_locks entries on %s" % (what, path)):
        dt.log("  file_locks: %r" % (doc or {}).get("file_locks"))
    return ls[0] if ls else None


def lsof_holder_fds(path, pid):
    """fds of pid on path that lsof marks with a write lock, or None without lsof."""
    lsof = dt.which("lsof")
    if not lsof:
        return None
    r = dt.run([lsof, "-n", "-w", "-F", "pfl", "--", path], timeout=30)
    fds, cur, fd = [], None, None
    for line in r.out.splitlines():
        if line.startswith("p"):
            cur = int(line[1:])
        elif line.startswith("f"):
            fd = line[1:]
        elif line.startswith("l") and cur == pid and line[1:].strip() in ("W", "w"):
            fds.append(int(fd))
    return fds


def case_chain(case, key, kind):
    with dt.lockfix(case) as fx:
        f = fx.fact(key)
        pid, holder, waiters, path = f["pid"], f["holder"], dt.int_list(f["waiters"]), f["path"]
        r, doc = run_json(fx, [pid, holder] + waiters, case)
        l = file_lock(doc, path, case)
        if not l:
            return
        chk.eq(l.get("kind"), kind, "%s: kind" % case)
        chk.eq(l.get("mode"), "WRITE", "%s: mode" % case)
        chk.eq(l.get("inode"), f["inode"], "%s: inode" % case)
        chk.eq(l.get("holder_pid"), holder, "%s: holder_pid" % case)
        chk.eq(l.get("holder_comm"), "lockfix", "%s: holder_comm" % case)
        chk.eq(l.get("start"), 0, "%s: start" % case)
        chk.eq(l.get("end"), None, "%s: end (EOF)" % case)
        fd = l.get("holder_fd")
        link = os.readlink("/proc/%d/fd/%d" % (holder, fd)) if isinstance(fd, int) else None
        chk.eq(link, path, "%s: holder_fd %r is the holder's fd on the file" % (case, fd))
        ws = l.get("waiters", [])
        chk.eq(sorted(w.get("pid") or 0 for w in ws), sorted(waiters), "%s: waiter pids" % case)
        chk.eq(sorted(w.get("tid") or 0 for w in ws), sorted(waiters), "%s: waiter tids" % case)
        for w in ws:
            chk.eq(w.get("mode"), "WRITE", "%s: waiter mode" % case)
            chk.eq(w.get("comm"), "lockfix", "%s: waiter %s comm" % (case, w.get("pid")))
        chk.eq((doc or {}).get("deadlocks"), [], "%s: deadlocks" % case)

        # oracle: /proc/locks (OFD locks show pid -1 there, so only their count)
        pl = dt.proc_locks_on(f["inode"])
        held = [p for (wt, k, m, p) in pl if not wt]
        waiting = [p for (wt, k, m, p) in pl if wt]
        if kind == "OFDLCK":
            chk.eq(held, [-1], "%s: /proc/locks holder pid" % case)
            chk.eq(len(waiting), len(ws), "%s: waiters in /proc/locks vs diag-locks" % case)
            fdinfo = dt.read_file("/proc/%d/fdinfo/%d" % (holder, fd)) if isinstance(fd, int) else ""
            chk.check(re.search(r"^lock:.*OFDLCK.*WRITE", fdinfo or "", re.M),
                      "%s: holder's fdinfo %s has no OFD lock:\n%s" % (case, fd, fdinfo))
        else:
            chk.eq(held, [l.get("holder_pid")], "%s: /proc/locks holder vs diag-locks" % case)
            chk.eq(sorted(waiting), sorted(w.get("pid") for w in ws), "%s: /proc/locks waiters vs diag-locks" % case)
            fds = lsof_holder_fds(path, holder)
            if fds is not None:
                chk.eq(fds, [fd], "%s: lsof's locked fd of the holder vs holder_fd" % case)

        # text and table renderings of the same
        r2 = dt.diag_locks("-p", ",".join(str(p) for p in [pid, holder] + waiters))
        chk.eq(r2.rc, 0, "%s text: exit status" % case)
        chk.check("held by pid %d" % holder in r2.out, "%s text: no 'held by pid %d':\n%s" % (case, holder, r2.out))
        for w in waiters:
            chk.check("waiter pid %d" % w in r2.out, "%s text: no 'waiter pid %d':\n%s" % (case, w, r2.out))
        r3 = dt.diag_locks("-o", "TYPE,LOCK,PID,TID,WAITS,OWNER,CONFIDENCE", "-r", "-n", "-p",
                           ",".join(str(p) for p in [pid, holder] + waiters))
        chk.eq(r3.rc, 0, "%s table: exit status" % case)
        rows = sorted(l.split() for l in r3.out.splitlines() if l.strip())
        want = sorted([kind, path, str(w), str(w), "WRITE", str(holder), "certain"] for w in waiters)
        chk.eq(rows, want, "%s: -o ... -r -n rows" % case)


def case_flock_cycle():
    with dt.lockfix("flock_cycle") as fx:
        f = fx.fact("flock_cycle")
        a, b = f["a"], f["b"]
        r, doc = run_json(fx, [f["pid"], a, b], "flock_cycle", want_rc=3)
        dls = (doc or {}).get("deadlocks", [])
        if chk.eq(len(dls), 1, "flock_cycle: deadlocks"):
            c = dls[0]
            chk.eq(sorted(e.get("pid") for e in c), sorted([a, b]), "flock_cycle: processes in the cycle")
            for e in c:
                h, w = (f["f1"], f["f2"]) if e.get("pid") == a else (f["f2"], f["f1"])
                chk.check((e.get("holds") or "").endswith(" " + h), "flock_cycle: pid %s holds %r, want %s" %
                          (e.get("pid"), e.get("holds"), h))
                chk.check((e.get("waits_for") or "").endswith(" " + w), "flock_cycle: pid %s waits_for %r, want %s" %
                          (e.get("pid"), e.get("waits_for"), w))
                chk.check((e.get("waits_for") or "").startswith("FLOCK"), "flock_cycle: edge kind %r" % e.get("waits_for"))
        r2 = dt.diag_locks("--cycles-only", "-p", ",".join(str(p) for p in (a, b)))
        chk.eq(r2.rc, 3, "flock_cycle --cycles-only: exit status")
        chk.check(r2.out.startswith("DEADLOCK:"), "flock_cycle --cycles-only text:\n" + r2.out)


def case_posix_cycle():
    with dt.lockfix("posix_cycle") as fx:
        f = fx.fact("posix_cycle")
        a, b = f["a"], f["b"]
        refused = f["edeadlk"] == 1
        dt.log("posix_cycle: the kernel %s b's F_SETLKW (EDEADLK)" % ("refused" if refused else "did not refuse"))
        r, doc = run_json(fx, [f["pid"], a, b], "posix_cycle", want_rc=0 if refused else 3)
        if refused:
            chk.eq((doc or {}).get("deadlocks"), [], "posix_cycle: deadlock invented")
            l = file_lock(doc, f["f2"], "posix_cycle")
            if l:
                chk.eq(l.get("holder_pid"), b, "posix_cycle: f2 holder")
                chk.eq([w.get("pid") for w in l.get("waiters", [])], [a], "posix_cycle: f2 waiters")
            chk.eq([l for l in (doc or {}).get("file_locks", []) if l.get("path") == f["f1"]], [],
                   "posix_cycle: f1 has no waiter (b was refused)")


def case_mixed_cycle():
    with dt.lockfix("mixed_cycle") as fx:
        f = fx.fact("mixed_cycle")
        a, t1, b = f["a"], f["t1"], f["b"]
        r, doc = run_json(fx, [f["pid"], a, b], "mixed_cycle", want_rc=3)
        dls = (doc or {}).get("deadlocks", [])
        if chk.eq(len(dls), 1, "mixed_cycle: deadlocks"):
            c = dls[0]
            chk.eq(sorted((e.get("pid"), e.get("tid")) for e in c), sorted([(a, t1), (b, b)]),
                   "mixed_cycle: (pid, tid) in the cycle")
            fut = [e for e in c if (e.get("waits_for") or "").startswith("mutex")]
            fil = [e for e in c if (e.get("waits_for") or "").startswith("FLOCK")]
            chk.check(len(fut) == 1 and len(fil) == 1, "mixed_cycle: want one futex edge and one file-lock edge: %r" % c)
            for e in c:
                if e.get("tid") == t1:
                    chk.check((e.get("waits_for") or "").endswith(f["f"]), "mixed_cycle: t1 waits_for %r" % e.get("waits_for"))
                    chk.check((e.get("holds") or "").startswith("mutex"), "mixed_cycle: t1 holds %r" % e.get("holds"))
                if e.get("pid") == b:
                    chk.check((e.get("waits_for") or "").startswith("mutex"), "mixed_cycle: b waits_for %r" % e.get("waits_for"))
                    chk.check((e.get("holds") or "").endswith(f["f"]), "mixed_cycle: b holds %r" % e.get("holds"))
        ls = dt.locks_futex(doc, waiter_tid=b)
        if chk.eq(len(ls), 1, "mixed_cycle: the shared mutex b waits for"):
            chk.eq(ls[0].get("owner_tid"), t1, "mixed_cycle: mutex owner_tid")
            chk.eq(ls[0].get("owner_pid"), a, "mixed_cycle: mutex owner_pid")
            chk.eq(ls[0].get("shared"), True, "mixed_cycle: mutex shared")
        l = file_lock(doc, f["f"], "mixed_cycle")
        if l:
            chk.eq(l.get("holder_pid"), b, "mixed_cycle: file holder")
            chk.eq([(w.get("pid"), w.get("tid")) for w in l.get("waiters", [])], [(a, t1)], "mixed_cycle: file waiter")


def case_cli():
    r = dt.diag_locks("--help")
    chk.eq(r.rc, 0, "--help: exit status")
    for s in ("Usage", "--cycles-only", "--stacks", "--pid", "Exit status", "Examples"):
        chk.check(s in r.out, "--help: %r missing" % s)
    chk.eq(r.err, "", "--help: stderr")

    r = dt.diag_locks("-H")
    chk.eq(r.rc, 0, "-H: exit status")
    names = [l.split()[0] for l in r.out.splitlines() if l.strip()]
    for c in ("TYPE", "LOCK", "PID", "TID", "COMM", "BLOCKED", "WAITS", "OWNER", "OWNER_COMM", "OWNER_STATE",
              "OWNER_SYSCALL", "CONFIDENCE", "EVIDENCE", "WHERE"):
        chk.check(c in names, "-H: column %s missing:\n%s" % (c, r.out))

    r = dt.diag_locks("--no-such-option")
    chk.eq(r.rc, 2, "bad option: exit status")
    chk.check("--help" in r.err, "bad option: no hint to --help in stderr: %r" % r.err)
    chk.eq(r.out, "", "bad option: stdout")

    r = dt.diag_locks("-o", "NO_SUCH_COLUMN")
    chk.eq(r.rc, 2, "unknown column: exit status")

    # a pid that does not exist: one that just exited
    import subprocess
    p = subprocess.Popen(["true"])
    p.wait()
    gone = p.pid
    if not os.path.exists("/proc/%d" % gone):
        r = dt.diag_locks("-p", str(gone))
        chk.eq(r.rc, 1, "-p %d (no such process): exit status\n%s" % (gone, r.describe()))
        chk.check(str(gone) in r.err, "-p %d: stderr does not name the pid: %r" % (gone, r.err))
        chk.eq(r.out, "", "-p missing pid: stdout")


def main():
    dt.setup_locks(__doc__)
    dt.need_path("diag_locks")
    dt.need_path("lockfix")
    case_chain("flock_chain", "flock", "FLOCK")
    case_chain("posix_chain", "posix", "POSIX")
    case_chain("ofd_chain", "ofd", "OFDLCK")
    case_flock_cycle()
    case_posix_cycle()
    case_mixed_cycle()
    case_cli()
    chk.finish()


if __name__ == "__main__":
    main()
