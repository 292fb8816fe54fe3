# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain follows real wait chains (chainfix) and names the root: for each scene,
`diag-chain -J START` gives the node path the fixture built (pids and tids in order),
the edge kinds, the end of the root node and a verdict naming the right pids and
resources; the exit status is 5 for a stuck chain and 3 for a deadlock; the text
output ends in a "root:" line. Nothing is stopped or traced while it runs (no
--stacks), and the blocked threads do not even wake up.

Scenes: mutex -> loopback TCP -> pipe -> sleep, and the same after a stop turned
the timed mutex wait and the poll into restart_syscall; rwlock -> sleep; POSIX/OFD and flock
cycles; waitpid -> child in pause(); epoll_wait fanning out to a listener, a unix
peer and a pipe writer; a connection nobody accepted."""
import os
import platform
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

EXIT_DEADLOCK = 3
EXIT_STUCK = 5


def run_chain(chk, fx, what, *args, rc=EXIT_STUCK, blocked=()):
    return dt.diag_chain_checked(chk, fx, what, *args, rc=rc, blocked=blocked)


# ---------------------------------------------------------------- scenes

def case_mutex(chk):
    with dt.chainfix("mutex_tcp_pipe_sleep") as fx:
        f = fx.fact("chain")
        (a, w), (a2, o) = dt.pid_tid(f["W"]), dt.pid_tid(f["O"])
        b, c, port = f["B"], f["C"], f["port"]
        blocked = [(a, w), (a, o), (b, b), (c, c)]
        what = "mutex_tcp_pipe_sleep"
        res = run_chain(chk, fx, what, "-J", w, blocked=blocked)
        ch = dt.chain_json(chk, res, what, w)
        if ch:
            chk.eq([(t.get("pid"), t.get("tid")) for t in ch.get("threads", [])], [(a, w)], "%s: start threads" % what)
            chk.eq((ch.get("deadlock"), ch.get("capped")), (False, False), "%s: deadlock, capped" % what)
            chk.check(isinstance(ch.get("blocked_ms"), int) and ch["blocked_ms"] >= 0,
                      "%s: blocked_ms %r" % (what, ch.get("blocked_ms")))
            path = dt.chain_expect_path(chk, ch, what, [(a, w), (a2, o), (b, b), (c, c)],
                                        ["futex", "socket", "pipe"], "sleeping")
            if len(path) == 4:
                chk.check("chainfix_m" in (path[1][1].get("resource") or ""),
                          "%s: futex edge resource %r names chainfix_m" % (what, path[1][1].get("resource")))
                chk.check(":%d" % port in (path[2][1].get("resource") or ""),
                          "%s: socket edge resource %r names port %d" % (what, path[2][1].get("resource"), port))
                chk.check("pipe:" in (path[3][1].get("resource") or ""),
                          "%s: pipe edge resource %r names the pipe" % (what, path[3][1].get("resource")))
                chk.check((path[1][0].get("syscall") or "").startswith("recv"),
                          "%s: O's syscall %r" % (what, path[1][0].get("syscall")))
                chk.check((path[2][0].get("syscall") or "").startswith("read("),
                          "%s: B's syscall %r" % (what, path[2][0].get("syscall")))
                chk.check("nanosleep" in (path[3][0].get("end_text") or ""),
                          "%s: C's end_text %r" % (what, path[3][0].get("end_text")))
                fn = [fr.get("function") for fr in path[0][0].get("frames", [])]
                chk.check("chainfix_waiter_thread" in fn, "%s: W's frames %s name chainfix_waiter_thread" % (what, fn))
            dt.chain_verdict_has(chk, ch, what, "pid %d " % c, "tid %d " % o, "chainfix_m")
        dt.chain_text_root(chk, fx, what, w, EXIT_STUCK, "pid %d " % c, "chainfix_m", blocked=blocked)


# restart_syscall's number, where the kernel resumes poll and timed futex waits through it
RESTART_SYSCALL = {"x86_64": 219, "aarch64": 128}


def syscall_nr(pid, tid):
    try:
        with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_states(pid, tids, states, what, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        now = {t: dt.task_state(pid, t) for t in tids}
        if all(s in states for s in now.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: threads %s not in %s after %ds" % (what, now, states, timeout))
        time.sleep(0.01)


def case_resumed(chk):
    """SIGSTOP and SIGCONT wake W (pthread_mutex_timedlock) and O (poll): both
    resume in restart_syscall, whose registers still hold the call's arguments.
    The chain goes on through them as before the stop."""
    nr = RESTART_SYSCALL.get(platform.machine())
    if nr is None:
        print("resumed: skipped, restart_syscall's number on %s not known here" % platform.machine())
        return
    with dt.chainfix("resumed") as fx:
        f = fx.fact("chain")
        (a, w), (_, o) = dt.pid_tid(f["W"]), dt.pid_tid(f["O"])
        b, c = f["B"], f["C"]
        what = "resumed"
        os.kill(a, signal.SIGSTOP)
        try:
            wait_states(a, (w, o), ("T",), what)
        finally:
            os.kill(a, signal.SIGCONT)
        wait_states(a, (w, o), ("S",), what)
        calls = {t: syscall_nr(a, t) for t in (w, o)}
        # the /proc oracle: the stop did turn the timed wait into restart_syscall
        chk.eq(calls[w], nr, "%s: W's syscall number after the stop (/proc/%d/task/%d/syscall)" % (what, a, w))
        blocked = [(a, w), (a, o), (b, b), (c, c)]
        res = run_chain(chk, fx, what, "-J", w, blocked=blocked)
        ch = dt.chain_json(chk, res, what, w)
        if ch:
            path = dt.chain_expect_path(chk, ch, what, [(a, w), (a, o), (b, b), (c, c)],
                                        ["futex", "socket", "pipe"], "sleeping")
            if len(path) == 4:
                chk.check("chainfix_m" in (path[1][1].get("resource") or ""),
                          "%s: futex edge resource %r names chainfix_m" % (what, path[1][1].get("resource")))
                wsc, osc = path[0][0].get("syscall") or "", path[1][0].get("syscall") or ""
                chk.check(wsc.startswith("futex(") and wsc.endswith(", resumed after a stop"),
                          "%s: W's syscall %r: the futex wait, resumed after a stop" % (what, wsc))
                if calls[o] == nr:      # poll (ppoll, where poll is not, restarts as itself)
                    chk.check(osc.startswith("poll(") and osc.endswith(", resumed after a stop"),
                              "%s: O's syscall %r: the poll, resumed after a stop" % (what, osc))
            dt.chain_verdict_has(chk, ch, what, "pid %d " % c, "tid %d " % o, "chainfix_m")


def case_rwlock(chk):
    with dt.chainfix("rwlock") as fx:
        f = fx.fact("chain")
        (r, w), (_, h) = dt.pid_tid(f["W"]), dt.pid_tid(f["H"])
        what = "rwlock"
        res = run_chain(chk, fx, what, "-J", w, blocked=[(r, w), (r, h)])
        ch = dt.chain_json(chk, res, what, w)
        if ch:
            path = dt.chain_expect_path(chk, ch, what, [(r, w), (r, h)], ["futex"], "sleeping")
            if len(path) == 2:
                chk.check("chainfix_rw" in (path[1][1].get("resource") or ""),
                          "%s: futex edge resource %r names chainfix_rw" % (what, path[1][1].get("resource")))
            dt.chain_verdict_has(chk, ch, what, "tid %d " % h, "chainfix_rw")


def case_cycle(chk, case, lock_word):
    with dt.chainfix(case) as fx:
        f = fx.fact("cycle")
        p1, p2 = f["P1"], f["P2"]
        blocked = [(p1, p1), (p2, p2)]
        res = run_chain(chk, fx, case, "-J", p1, rc=EXIT_DEADLOCK, blocked=blocked)
        ch = dt.chain_json(chk, res, case, p1)
        if ch:
            chk.eq(ch.get("deadlock"), True, "%s: deadlock" % case)
            path = dt.chain_expect_path(chk, ch, case, [(p1, p1), (p2, p2), (p1, p1)], ["file-lock", "file-lock"],
                                        "deadlock")
            if len(path) == 3:
                r1, r2 = path[1][1].get("resource") or "", path[2][1].get("resource") or ""
                chk.check(f["file2"] in r1 and lock_word in r1,
                          "%s: first edge resource %r names %s and %s" % (case, r1, lock_word, f["file2"]))
                chk.check(f["file1"] in r2, "%s: second edge resource %r names %s" % (case, r2, f["file1"]))
            dt.chain_verdict_has(chk, ch, case, "deadlock", "pid %d " % p1, "pid %d " % p2)
        # Both ends given: one story, the cycle, whichever end it starts from.
        res = run_chain(chk, fx, case + " (both pids)", "-J", p1, p2, rc=EXIT_DEADLOCK, blocked=blocked)
        doc = res.json(chk)
        if doc is not None:
            cyc = [c for c in doc.get("chains", []) if c.get("deadlock")]
            chk.check(len(cyc) == 1, "%s (both pids): %d deadlock chains, want 1 (the other folded in)\n%s"
                      % (case, len(cyc), res.describe()))
            for c in cyc:
                chk.check({p1, p2} <= {p for p, _ in dt.chain_threads(c)},
                          "%s (both pids): cycle %s holds both pids" % (case, dt.chain_threads(c)))
        dt.chain_text_root(chk, fx, case, p2, EXIT_DEADLOCK, "deadlock", blocked=blocked)


def case_child(chk):
    with dt.chainfix("child") as fx:
        f = fx.fact("chain")
        p, k = dt.pid_tid(f["P"])[0], f["K"]
        what = "child"
        res = run_chain(chk, fx, what, "-J", p, blocked=[(p, p), (k, k)])
        ch = dt.chain_json(chk, res, what, p)
        if ch:
            path = dt.chain_expect_path(chk, ch, what, [(p, p), (k, k)], ["child"], "sleeping")
            if len(path) == 2:
                chk.check(str(k) in (path[1][1].get("resource") or ""),
                          "%s: child edge resource %r names pid %d" % (what, path[1][1].get("resource"), k))
                chk.check("pause" in (path[1][0].get("end_text") or ""),
                          "%s: K's end_text %r" % (what, path[1][0].get("end_text")))
            dt.chain_verdict_has(chk, ch, what, "pid %d " % k)


def case_epoll(chk):
    with dt.chainfix("epoll_server") as fx:
        f = fx.fact("chain")
        e, u, q = dt.pid_tid(f["E"])[0], f["U"], f["Q"]
        what = "epoll_server"
        blocked = [(e, e), (u, u), (q, q)]
        res = run_chain(chk, fx, what, "-J", e, blocked=blocked)
        ch = dt.chain_json(chk, res, what, e)
        if ch:
            kids = dt.chain_children(ch, 0)
            desc = "%s: below the start: %s" % (what, [(n.get("kind"), n.get("pid"), e_.get("kind"), n.get("end"),
                                                        e_.get("resource")) for n, e_ in kids])
            chk.eq(sorted(e_.get("kind") for _, e_ in kids), ["pipe", "socket", "socket"], desc + "; edge kinds")
            by_pid = {n.get("pid"): (n, e_) for n, e_ in kids if n.get("kind") == "thread"}
            chk.check(u in by_pid and by_pid[u][1].get("kind") == "socket" and by_pid[u][0].get("end") == "sleeping",
                      desc + "; want unix peer %d via socket, sleeping" % u)
            chk.check(q in by_pid and by_pid[q][1].get("kind") == "pipe" and by_pid[q][0].get("end") == "sleeping",
                      desc + "; want pipe writer %d via pipe, sleeping" % q)
            lis = [n for n, e_ in kids if n.get("kind") == "endpoint"]
            chk.check(len(lis) == 1 and ":%d" % f["port"] in ((lis[0].get("socket") or {}).get("text") or "")
                      and "listening" in (lis[0].get("end_text") or ""),
                      desc + "; want the listener on port %d as an endpoint" % f["port"])
            chk.eq(ch.get("capped"), False, "%s: capped" % what)
            dt.chain_verdict_has(chk, ch, what)
            chk.check(re.search(r"root: pid (%d|%d) " % (u, q), ch.get("verdict") or ""),
                      "%s: verdict %r names the unix peer or the pipe writer" % (what, ch.get("verdict")))
        # --fanout 1: one branch followed, the rest one capped endpoint
        res = run_chain(chk, fx, what + " --fanout 1", "-J", "--fanout", "1", e, blocked=blocked)
        ch = dt.chain_json(chk, res, what + " --fanout 1", e)
        if ch:
            kids = dt.chain_children(ch, 0)
            capped = [n for n, _ in kids if n.get("end") == "capped"]
            chk.eq(ch.get("capped"), True, "%s --fanout 1: capped" % what)
            chk.eq(len(kids), 2, "%s --fanout 1: nodes below the start (one followed, one capped)" % what)
            chk.check(len(capped) == 1 and "2 more" in (capped[0].get("end_text") or ""),
                      "%s --fanout 1: capped node %s says 2 more fds" % (what, capped))


def case_unaccepted(chk):
    with dt.chainfix("unaccepted") as fx:
        f = fx.fact("chain")
        k, l, port = dt.pid_tid(f["K"])[0], f["L"], f["port"]
        what = "unaccepted"
        res = run_chain(chk, fx, what, "-J", k, blocked=[(k, k), (l, l)])
        ch = dt.chain_json(chk, res, what, k)
        if ch:
            path = dt.chain_expect_path(chk, ch, what, [(k, k)], ["socket"], "no-peer", endpoint=True)
            if len(path) == 2:
                end = path[1][0]
                et = end.get("end_text") or ""
                chk.check("backlog" in et and "pid %d " % l in et,
                          "%s: end_text %r mentions the backlog of pid %d" % (what, et, l))
                so = end.get("socket") or {}
                chk.eq(so.get("state"), "ESTABLISHED", "%s: client socket state" % what)
                chk.check(str(so.get("remote", "")).endswith(":%d" % port),
                          "%s: client socket remote %r is port %d" % (what, so.get("remote"), port))
            dt.chain_verdict_has(chk, ch, what, "pid %d " % k, "backlog", "pid %d " % l)


def main():
    dt.setup_chain(__doc__)
    dt.need_path("diag_chain")
    dt.need_path("chainfix")
    dt.set_subreaper()
    chk = dt.Checker("chain-cases")
    try:
        case_mutex(chk)
        case_resumed(chk)
        case_rwlock(chk)
        case_cycle(chk, "posix_cycle", "OFD")
        case_cycle(chk, "flock_cycle", "FLOCK")
        case_child(chk)
        case_epoll(chk)
        case_unaccepted(chk)
    finally:
        dt.reap_orphans()
    chk.finish()


if __name__ == "__main__":
    main()
