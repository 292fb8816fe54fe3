#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-locks puts the answer first: a pool of threads idle on a condition
variable and a semaphore (no owner by design) is folded into one summary line
after the contended mutex, listed in full with -v, kept whole in -J. And the
targets it cannot work on (-p a zombie, a kernel thread, a gone pid; a thread
id names its process) in the shared vocabulary: one line, exit 1, with -J the
error object; exit 4 when other targets were shown; a process it may not read
is said without telling root to run as root."""
import json
import os
import re
import time

import diagtest as dt

chk = dt.Checker("locks-output")


def case_idle_pool():
    with dt.lockfix("idle_pool") as fx:
        f = fx.fact("pool")
        pid, idle = f["pid"], dt.int_list(f["idle"])
        r = dt.diag_locks("-p", str(pid))
        chk.eq(r.rc, 0, "idle_pool: exit status\n%s" % r.describe())
        lines = r.out.splitlines()
        chk.check(lines and lines[0].startswith("mutex lockfix_m1 in pid %d" % pid),
                  "idle_pool: the contended mutex is not first:\n%s" % r.out)
        summary = [l for l in lines if "idle on" in l]
        chk.check(len(summary) == 1 and summary[0].startswith("5 threads idle on a condition variable, 1 on a semaphore"),
                  "idle_pool: summary line %r\n%s" % (summary, r.out))
        chk.check(not any("condition variable lockfix_cv" in l or "semaphore lockfix_sem" in l for l in lines),
                  "idle_pool: idle waits listed without -v:\n%s" % r.out)
        chk.check(len(lines) <= 5, "idle_pool: %d lines, want the mutex tree and one summary line:\n%s"
                  % (len(lines), r.out))
        # -v: every idle wait, after the mutex
        r = dt.diag_locks("-v", "-p", str(pid))
        lines = r.out.splitlines()
        cv = [i for i, l in enumerate(lines) if l.startswith("condition variable lockfix_cv")]
        chk.check(len(cv) == 1 and all(str(t) in lines[cv[0]] for t in idle) and cv[0] > 0,
                  "idle_pool -v: the condition variable line with tids %s after the mutex:\n%s" % (idle, r.out))
        chk.check(any(l.startswith("semaphore lockfix_sem") for l in lines), "idle_pool -v: no semaphore line:\n" + r.out)
        # -J: every entry, idle marked
        r = dt.diag_locks("-J", "-p", str(pid))
        doc = r.json(chk) or {}
        kinds = {l.get("kind"): l for l in doc.get("futex_locks", [])}
        cvl = kinds.get("condition variable") or {}
        chk.eq(sorted(w.get("tid") for w in cvl.get("waiters", [])), sorted(idle), "idle_pool -J: condvar waiters")
        chk.eq(cvl.get("idle"), True, "idle_pool -J: condvar idle")
        chk.eq((kinds.get("semaphore") or {}).get("idle"), True, "idle_pool -J: semaphore idle")
        chk.eq((kinds.get("mutex") or {}).get("idle"), False, "idle_pool -J: mutex idle")
        # a thread id names its process
        by_pid, by_tid = dt.diag_locks("-p", str(pid)), dt.diag_locks("-p", str(f["waiter"]))
        chk.eq((by_tid.rc, by_tid.out.splitlines()[:1]), (0, by_pid.out.splitlines()[:1]), "idle_pool: -p TID is -p PID")


def expect_failure(what, pid, pattern, reason):
    r = dt.diag_locks("-p", str(pid))
    chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
    errs = r.err_lines()
    chk.check(len(errs) == 1 and re.search(pattern, errs[0]), "%s: stderr %r, want one line matching %r"
              % (what, errs, pattern))
    chk.check("run as root" not in r.err or os.geteuid() != 0, "%s: root told to run as root" % what)
    r = dt.diag_locks("-J", "-p", str(pid))
    chk.eq(r.rc, 1, "%s -J: exit status" % what)
    doc = r.json(chk) or {}
    e = doc.get("error") or {}
    chk.eq((e.get("reason"), e.get("pid"), e.get("status")), (reason, pid, 1), "%s -J: error object %r" % (what, doc))


def gone_pid():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def case_targets():
    # a zombie: exited, not reaped by us (its parent)
    z = os.fork()
    if z == 0:
        os._exit(0)
    deadline = time.monotonic() + 5
    while dt.task_state(z, z) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        expect_failure("zombie", z, r"pid %d \(python3?\) has exited: a zombie its parent %d" % (z, os.getpid()), "zombie")
    finally:
        os.waitpid(z, 0)
    if dt.is_kernel_thread(2):
        expect_failure("kernel thread", 2, r"pid 2 \(kthreadd\) is a kernel thread", "kernel-thread")
    else:
        dt.log("pid 2 is not a kernel thread here: that case not run")
    g = gone_pid()
    expect_failure("gone", g, r"pid %d: no such process" % g, "gone")
    # one bad target among good ones: the rest shown, exit 4, the error in -J
    r = dt.diag_locks("-J", "-p", "%d,%d" % (g, os.getpid()))
    chk.eq(r.rc, 4, "gone + live: exit status\n%s" % r.describe())
    doc = r.json(chk) or {}
    chk.eq([(e.get("pid"), (e.get("error") or {}).get("reason")) for e in doc.get("errors", [])], [(g, "gone")],
           "gone + live: errors")
    chk.eq(doc.get("schema"), "diag-locks/1", "gone + live: the document is still there")


def unreadable_pid():
    """A process whose syscall file this user may not read (as root: one a security
    module protects), or None."""
    for d in sorted(os.listdir("/proc"), key=lambda x: int(x) if x.isdigit() else 0):
        if not d.isdigit() or dt.is_kernel_thread(int(d)):
            continue
        try:
            with open("/proc/%s/syscall" % d) as f:
                f.read()
        except PermissionError:
            return int(d)
        except OSError:
            pass
    return None


def case_not_permitted():
    pid = unreadable_pid()
    if pid is None:
        dt.log("no process here is unreadable to this user: the not-permitted case not run")
        return
    what = "not permitted (pid %d)" % pid
    expect_failure(what, pid, r"not permitted to read the lock waits of pid %d" % pid, "not-permitted")
    # the whole-system scan says it in one line, without telling root to run as root
    r = dt.diag_locks()
    lines = [l for l in r.err_lines() if "not readable" in l]
    chk.check(len(lines) == 1, "%s: whole system: want one 'not readable' line, got %r" % (what, r.err_lines()))
    if os.geteuid() == 0:
        chk.check(not any("run as root" in l for l in r.err_lines()), "%s: root told to run as root: %r"
                  % (what, r.err_lines()))


def main():
    dt.setup_locks(__doc__)
    case_idle_pool()
    case_targets()
    case_not_permitted()
    chk.finish()


if __name__ == "__main__":
    main()
