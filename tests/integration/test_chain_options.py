# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain options on one real chain (chainfix mutex_tcp_pipe_sleep: W -futex-> O
-socket-> B -pipe-> C sleeping): --depth caps the walk, --min-blocked filters, --all
finds the chain with the waiter among its threads and folds the chains of the threads
it passes through, a PID means each blocked thread of it and a TID just that thread,
--stacks shows frames and leaves the targets running in the same system calls; bad
--text writes the text of the same walk into a new file, --time-limit cuts the walk and
says so, --exclude-lineage stops before the lineage given; bad usage exits 2, a pid
that does not exist exits 1. Nothing is stopped without --stacks."""
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

EXIT_DEADLOCK = 3
EXIT_STUCK = 5
RESTART_SYSCALL = {"x86_64": "219", "aarch64": "128"}


def free_pid():
    """A pid no process or thread has now."""
    pid_max = int((dt.read_file("/proc/sys/kernel/pid_max") or "32768").strip())
    used = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            used.add(int(d))
            used.update(dt.task_ids(int(d)))
    for p in range(pid_max - 1, 300, -1):
        if p not in used and not os.path.exists("/proc/%d" % p):
            return p
    dt.harness_error("no free pid")


def starts(doc):
    """Every start tid of every chain of a diag-chain -J document."""
    return [t.get("tid") for ch in (doc or {}).get("chains", []) for t in ch.get("threads", [])]


def main():
    dt.setup_chain(__doc__)
    dt.need_path("diag_chain")
    dt.need_path("chainfix")
    dt.set_subreaper()
    chk = dt.Checker("chain-options")
    try:
        with dt.chainfix("mutex_tcp_pipe_sleep") as fx:
            run(chk, fx)
        usage(chk)
    finally:
        dt.reap_orphans()
    chk.finish()


def run(chk, fx):
    f = fx.fact("chain")
    (a, w), (_, o) = dt.pid_tid(f["W"]), dt.pid_tid(f["O"])
    b, c = f["B"], f["C"]
    blocked = [(a, w), (a, o), (b, b), (c, c)]
    full = [(a, w), (a, o), (b, b), (c, c)]

    # --depth 2: W (0), O (1), then B at depth 2 is where the walk stops.
    what = "--depth 2"
    res = dt.diag_chain_checked(chk, fx, what, "-J", "--depth", "2", w, blocked=blocked)
    ch = dt.chain_json(chk, res, what, w)
    if ch:
        chk.eq(ch.get("capped"), True, "%s: capped" % what)
        capped = [n for n in ch.get("nodes", []) if n.get("end") == "capped"]
        chk.check(len(capped) == 1 and capped[0].get("pid") == b and "depth" in (capped[0].get("end_text") or ""),
                  "%s: one node ends 'capped' at B (pid %d), saying why: %s" % (what, b, capped))
        chk.eq(dt.chain_threads(ch), [(a, w), (a, o), (b, b)], "%s: thread nodes" % what)
        # Capped or not, a stuck chain gets a verdict: the farthest point reached.
        chk.check(ch.get("root") is not None and (ch.get("verdict") or "").startswith("root: ")
                  and "pid %d " % b in (ch.get("verdict") or ""),
                  "%s: root %r, verdict %r: want a 'root: ' verdict naming B (pid %d), where the walk stopped"
                  % (what, ch.get("root"), ch.get("verdict"), b))
    res = dt.diag_chain_checked(chk, fx, what + " (text)", "--depth", "2", w, blocked=blocked)
    chk.check("capped" in res.out, "%s (text): says the walk was capped\n%s" % (what, res.describe()))
    chk.check(any(l.startswith("root: ") for l in res.out.splitlines()),
              "%s (text): no 'root: ' line\n%s" % (what, res.describe()))
    # --depth 12 (the default, given): the whole chain
    res = dt.diag_chain_checked(chk, fx, "--depth 12", "-J", "--depth", "12", w, blocked=blocked)
    ch = dt.chain_json(chk, res, "--depth 12", w)
    if ch:
        chk.eq(dt.chain_threads(ch), full, "--depth 12: thread nodes")
        chk.eq(ch.get("capped"), False, "--depth 12: capped")

    # --min-blocked: 1h filters the chain out (exit 0), 1ms keeps it.
    res = dt.diag_chain_checked(chk, fx, "--min-blocked 1h", "-J", "--min-blocked", "1h", w, rc=0, blocked=blocked)
    doc = res.json(chk)
    chk.eq((doc or {}).get("chains"), [], "--min-blocked 1h: chains")
    res = dt.diag_chain_checked(chk, fx, "-m 1h (text)", "-m", "1h", w, rc=0, blocked=blocked)
    chk.check("No blocked thread" in res.out, "-m 1h (text): says nothing matched\n%s" % res.describe())
    res = dt.diag_chain_checked(chk, fx, "-m 1ms", "-J", "-m", "1ms", w, blocked=blocked)
    ch = dt.chain_json(chk, res, "-m 1ms", w)
    chk.eq(dt.chain_threads(ch), full, "-m 1ms: thread nodes")

    # --all: the whole host. Other chains may be there (a deadlock: exit 3); ours is
    # among them, with W as a start, and the chains of O and B (which W's passes
    # through and which started later) are folded into it.
    res, problems = dt.run_watched([dt.need_path("diag_chain"), "--all", "-J"], dt.group_pids(fx.pid))
    chk.check(not problems, "--all: a target was stopped or traced: %s" % problems[:8])
    chk.check(res.rc in (EXIT_DEADLOCK, EXIT_STUCK), "--all: exit status %s\n%s" % (res.rc, res.describe()))
    doc = res.json(chk)
    ch, story = dt.chain_story(doc, w)
    chk.check([(n.get("pid"), n.get("tid")) for n in story] == full and story[-1].get("end") == "sleeping",
              "--all: W's (tid %d) chain W, O, B, C sleeping is not there; chains:\n%s" % (w, dt.chain_summary(doc)))
    if ch and dt.chain_with_start(doc, w):
        chk.check(str(c) in (ch.get("verdict") or ""), "--all: W's verdict %r names C" % ch.get("verdict"))
    st = starts(doc)
    chk.check(o not in st and b not in st,
              "--all: O (%d) or B (%d) starts a chain of its own, not folded into W's: starts %s" % (o, b, st))
    chk.check(c not in st, "--all: C (%d), merely asleep, starts a chain: %s" % (c, st))

    # A PID: each blocked thread of it (main in pause(), O, W); O's chain folds into W's.
    res = dt.diag_chain_checked(chk, fx, "PID", "-J", a, blocked=blocked)
    doc = res.json(chk)
    ch = dt.chain_with_start(doc, w)
    chk.check(ch is not None and dt.chain_threads(ch) == full, "PID %d: W's chain %s" % (a, dt.chain_threads(ch)))
    st = starts(doc)
    chk.check(o not in st, "PID %d: O's chain is not folded into W's: starts %s" % (a, st))
    main_ch = dt.chain_with_start(doc, a)
    chk.check(main_ch is not None and len(main_ch.get("nodes", [])) == 1
              and main_ch["nodes"][0].get("end") == "sleeping",
              "PID %d: the main thread's chain (pause(): sleeping) %s" % (a, main_ch))
    # A TID: just that thread.
    res = dt.diag_chain_checked(chk, fx, "TID", "-J", o, blocked=blocked)
    doc = res.json(chk)
    chk.eq(starts(doc), [o], "TID %d: start threads" % o)
    ch = dt.chain_with_start(doc, o)
    chk.eq(dt.chain_threads(ch), full[1:], "TID %d: thread nodes" % o)

    # --ascii: the tree drawn with ASCII
    res = dt.diag_chain_checked(chk, fx, "--ascii", "--ascii", w, blocked=blocked)
    chk.check("`-" in res.out and not any(ch_ in res.out for ch_ in "├└│─"),
              "--ascii: tree not drawn in ASCII\n%s" % res.describe())

    # --stacks: each thread's stack, stopped for an instant; afterwards all run on
    # and wait where they waited.
    sc_before = {t: dt.proc_syscall(p, t)[:1] for p, t in blocked}
    res = dt.run([dt.need_path("diag_chain"), "--stacks", w])
    chk.eq(res.rc, EXIT_STUCK, "--stacks: exit status\n%s" % res.describe())
    for fn in ("chainfix_waiter_thread", "chainfix_owner_thread", "chainfix_backend_read", "chainfix_sleep_forever"):
        chk.check(fn in res.out, "--stacks: no frame of %s\n%s" % (fn, res.describe()))
    chk.check(any(l.lstrip("│├└─|`- ").startswith("#0 ") for l in res.out.splitlines()),
              "--stacks: no '#0' frame lines\n%s" % res.describe())
    deadline = time.monotonic() + 2
    while True:
        bad = [x for p in dt.group_pids(fx.pid) for x in dt.stopped_or_traced(p)]
        moved = {t: dt.proc_syscall(p, t)[:1] for p, t in blocked}
        if (not bad and moved == sc_before) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    chk.check(not bad, "--stacks: targets left stopped or traced: %s" % bad[:8])
    # An interrupted sleep goes on as restart_syscall: the same wait, resumed.
    restart = RESTART_SYSCALL.get(os.uname().machine)
    moved_same = {t: (sc_before[t] if v == [restart] and t == c else v) for t, v in moved.items()}
    chk.eq(moved_same, sc_before, "--stacks: the threads' system calls afterwards")
    chk.check(fx.proc.poll() is None and all(os.path.exists("/proc/%d" % p) for p in (a, b, c)),
              "--stacks: a process of the scene died")
    # The same chain and root afterwards, though C's sleep now shows as restart_syscall.
    res = dt.diag_chain_checked(chk, fx, "after --stacks", "-J", w)
    ch = dt.chain_json(chk, res, "after --stacks", w)
    chk.eq(dt.chain_threads(ch), full, "after --stacks: thread nodes")
    root = dt.chain_node(ch, (ch or {}).get("root"))
    chk.check(root is not None and root.get("pid") == c and root.get("end") == "sleeping",
              "after --stacks: the root is C (pid %d) asleep, got %s: %s (a nanosleep interrupted by a "
              "ptrace stop resumes as restart_syscall)" % (c, (root or {}).get("end"), (root or {}).get("end_text")))

    # --text FILE: one walk, the JSON on stdout and the text in FILE, the same chain;
    # an existing FILE is never replaced (exit 1, nothing written).
    with tempfile.TemporaryDirectory(prefix="chain-text.") as tmp:
        txt = os.path.join(tmp, "chains.txt")
        res = dt.diag_chain("-J", "--text", txt, w)
        chk.check(dt.chain_with_start(res.json(chk), w) is not None, "--text: the JSON on stdout\n%s" % res.describe())
        text = dt.read_file(txt) or ""
        chk.check(("tid %d" % w) in text and "root:" in text, "--text: the text in the file: %r" % text[:300])
        chk.eq(oct(os.stat(txt).st_mode & 0o777), oct(0o600), "--text: the file's mode")
        res = dt.diag_chain("-J", "--text", txt, w)
        chk.eq(res.rc, 1, "--text onto an existing file: exit status\n%s" % res.describe())
        chk.eq(dt.read_file(txt), text, "--text: the existing file is left as it was")
    # --time-limit: a limit already past when the walk starts follows nothing and says so
    res = dt.diag_chain("-J", "--time-limit", "1ms", w)
    doc = res.json(chk) or {}
    inc = doc.get("incomplete") or {}
    chk.check(inc.get("reason") == "time-limit" and inc.get("threads_followed") == 0 and inc.get("threads", 0) >= 1,
              "--time-limit 1ms: 'incomplete' says none of the blocked threads was followed: %r" % inc)
    chk.check("time limit" in res.err, "--time-limit 1ms: said on stderr\n%s" % res.describe())
    # --exclude-lineage: B's lineage (B itself among it) is not followed into
    res = dt.diag_chain("-J", "--exclude-lineage", b, w)
    ch = dt.chain_with_start(res.json(chk), w)
    chk.check(ch is not None and b not in [n.get("pid") for n in ch.get("nodes", []) if n.get("kind") == "thread"],
              "--exclude-lineage %d: the chain stops before B\n%s" % (b, res.describe()))

    # A pid that does not exist, alone and next to a real one: exit 1, said on stderr;
    # the real one is still shown.
    gone = free_pid()
    res = dt.diag_chain(gone)
    chk.eq(res.rc, 1, "nonexistent pid %d: exit status\n%s" % (gone, res.describe()))
    chk.check(str(gone) in res.err, "nonexistent pid %d: not named on stderr\n%s" % (gone, res.describe()))
    res = dt.diag_chain("-J", w, gone)
    chk.eq(res.rc, 1, "W and nonexistent pid %d: exit status\n%s" % (gone, res.describe()))
    chk.check(dt.chain_with_start(res.json(chk), w) is not None,
              "W and nonexistent pid %d: W's chain is still shown\n%s" % (gone, res.describe()))


def usage(chk):
    for args in ([], ["--depth", "0", "1"], ["--depth", "101", "1"], ["--depth", "x", "1"], ["--fanout", "0", "1"],
                 ["--fanout", "65", "1"], ["-m", "bogus", "1"], ["--min-blocked", "-5s", "1"], ["--all", "1"],
                 ["--bogus", "1"], ["notapid"], ["1", "--depth"], ["--time-limit", "x", "1"],
                 ["--exclude-lineage", "x", "1"], ["--text", "/dev/null", "--stacks", "1"]):
        res = dt.diag_chain(*args)
        chk.eq(res.rc, 2, "usage error %s: exit status\n%s" % (args, res.describe()))
        chk.check(res.err.strip() and not res.out.strip(),
                  "usage error %s: want a message on stderr only\n%s" % (args, res.describe()))
    res = dt.diag_chain("--help")
    chk.check(res.rc == 0 and "Usage" in res.out and "--min-blocked" in res.out, "--help\n%s" % res.describe())


if __name__ == "__main__":
    main()
