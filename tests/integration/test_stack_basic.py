# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack -J on the stackfix fixture: every field checked against what the fixture
printed about itself and against /proc."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

DEPTH = 12
IDLE = 4

# role -> fix_* function that must be in that thread's frames
ROLE_FUNCTION = {
    "main": "fix_main_wait",
    "mutex_holder": "fix_mutex_holder",
    "mutex_waiter": "fix_mutex_waiter",
    "pipe_reader": "fix_pipe_reader",
    "sleeper": "fix_sleeper",
    "recurse": "fix_recurse",
    "inlined": "fix_inlined_outer",
    "spinner": "fix_spin",
    "idle": "fix_idle",
    "heartbeat": "fix_heartbeat",
}
BLOCKED_ROLES = ("main", "mutex_holder", "mutex_waiter", "pipe_reader", "sleeper",
                 "recurse", "inlined", "idle")


def main():
    dt.setup(__doc__)
    chk = dt.Checker("stack-basic")
    with dt.Fixture(["--depth", DEPTH, "--idle", IDLE]) as fx:
        # Let the blocked threads age so blocked_ms and the CPU shares have something to show.
        time.sleep(0.5)
        t_before = time.monotonic()
        r = dt.diag_stack("-J", fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        doc = r.json(chk)
        if doc is not None:
            check_doc(chk, fx, doc, time.monotonic() - t_before)
        fx.check_unharmed(chk, "after `%s`" % r.cmd())
    chk.finish()


def check_doc(chk, fx, doc, elapsed):
    chk.eq(doc.get("schema"), "diag-stack/2", "schema")
    chk.eq(len(doc.get("processes", [])), 1, "number of processes")
    proc = dt.process_of(doc, fx.pid)
    if not chk.check(proc is not None, "process %d in output" % fx.pid):
        return
    chk.eq(proc.get("comm"), "stackfix", "process comm")
    chk.check(str(proc.get("exe", "")).endswith("stackfix"), "exe %r ends with stackfix" % proc.get("exe"))
    chk.eq(proc.get("threads_total"), len(dt.task_ids(fx.pid)), "threads_total vs /proc/PID/task")
    chk.eq(proc.get("stopped"), True, "stopped")
    us = proc.get("stopped_us")
    chk.check(isinstance(us, int) and 0 < us < 1000000, "stopped_us %r not in (0, 1s)" % us)
    chk.eq(proc.get("vanished"), 0, "vanished")

    threads = dt.threads_of(proc)
    for tid in fx.tids():
        chk.eq(len(threads.get(tid, [])), 1, "times tid %d appears" % tid)
    extra = sorted(set(threads) - set(fx.tids()))
    chk.eq(extra, [], "tids shown that the fixture did not print")

    for g in proc.get("groups", []):
        ttids = [t.get("tid") for t in g.get("threads", [])]
        chk.eq(g.get("tids"), ttids, "group tids vs its threads")
        chk.eq(g.get("count"), len(ttids), "group count")
        frames = g.get("frames", [])
        chk.eq([f.get("index") for f in frames], list(range(len(frames))), "frame indexes of group %s" % ttids)
        for f in frames:
            chk.check(re.fullmatch(r"0x[0-9a-f]+", str(f.get("pc"))), "frame pc %r is hex" % f.get("pc"))
            fn = f.get("function")
            if fn and fn.startswith("fix_"):
                chk.check(str(f.get("module", "")).endswith("stackfix"),
                          "module of %s is %r" % (fn, f.get("module")))
                chk.check(str(f.get("file", "")).endswith("stackfix.c"),
                          "file of %s is %r" % (fn, f.get("file")))
                chk.check(isinstance(f.get("line"), int) and f["line"] > 0,
                          "line of %s is %r" % (fn, f.get("line")))
                # An inlined instance has no symbol of its own: its offset may be null.
                chk.check((f.get("inlined") and f.get("offset") is None)
                          or (isinstance(f.get("offset"), int) and f["offset"] >= 0),
                          "offset of %s is %r" % (fn, f.get("offset")))
    sizes = [(-g.get("count", 0), min(g.get("tids") or [0])) for g in proc.get("groups", [])]
    chk.eq(sizes, sorted(sizes), "groups ordered by size then lowest tid")

    def thread(role):
        ent = threads.get(fx.tid(role))
        return ent[0] if ent else (None, None)

    # States match /proc for threads that stay in one state.
    for role in BLOCKED_ROLES:
        for tid in fx.tids(role):
            t, _ = threads.get(tid, [(None, None)])[0]
            if t is None:
                continue
            chk.eq(t.get("state"), dt.task_state(fx.pid, tid), "state of %s %d vs /proc" % (role, tid))
            chk.eq(t.get("running"), False, "running of %s %d" % (role, tid))
            chk.check(t.get("syscall") is not None, "%s %d has a syscall" % (role, tid))
            chk.eq(t.get("comm"), "stackfix", "comm of %s" % role)
            chk.eq(t.get("error"), None, "error of %s" % role)

    # Functions of each role.
    for role, fn in ROLE_FUNCTION.items():
        for tid in fx.tids(role):
            t, g = threads.get(tid, [(None, None)])[0]
            if g is None:
                continue
            names = dt.frame_functions(g)
            chk.check(fn in names, "%s %d: %s not in frames %s" % (role, tid, fn, names))

    t, g = thread("mutex_waiter")
    if t:
        sc = t.get("syscall") or {}
        chk.eq(sc.get("name"), "futex", "mutex_waiter syscall")
        chk.eq(dt.syscall_arg(sc, 0), int(fx.roles["mutex_waiter"][0]["mutex"], 16),
               "mutex_waiter futex address vs printed mutex")
        chk.check(str(sc.get("text", "")).startswith("futex(0x"), "futex text %r" % sc.get("text"))
        chk.check("fix_mutex_waiter" in dt.frame_functions(g), "fix_mutex_waiter in waiter frames")

    for role in ("pipe_reader", "mutex_holder"):
        t, _ = thread(role)
        if t:
            sc = t.get("syscall") or {}
            fd = int(fx.roles[role][0]["fd"])
            chk.eq(sc.get("name"), "read", "%s syscall" % role)
            chk.eq(dt.syscall_arg(sc, 0), fd, "%s read fd" % role)
            chk.check(re.match(r"read\(%d\b" % fd, str(sc.get("text", ""))),
                      "%s syscall text %r starts with read(%d" % (role, sc.get("text"), fd))
            chk.check(sc.get("nr") == int(dt.proc_syscall(fx.pid, fx.tid(role))[0]),
                      "%s syscall nr %r vs /proc" % (role, sc.get("nr")))

    t, _ = thread("pipe_reader")
    if t:
        wchan = (dt.read_file("/proc/%d/task/%d/wchan" % (fx.pid, fx.tid("pipe_reader"))) or "").strip()
        if wchan and wchan != "0":
            chk.eq(t.get("wchan"), wchan, "pipe_reader wchan vs /proc")
        kproc = dt.read_file("/proc/%d/task/%d/stack" % (fx.pid, fx.tid("pipe_reader")))
        if kproc:
            ks = t.get("kernel_stack")
            if chk.check(isinstance(ks, list) and ks, "pipe_reader kernel_stack %r (root)" % ks):
                want = kproc.split()[1].split("+")[0]
                chk.eq(ks[0].split("+")[0], want, "pipe_reader innermost kernel function")

    t, _ = thread("sleeper")
    if t:
        sc = t.get("syscall") or {}
        chk.check(sc.get("name") in ("nanosleep", "clock_nanosleep"),
                  "sleeper syscall %r is (clock_)nanosleep" % sc.get("name"))
        b = t.get("blocked_ms")
        age_ms = (time.monotonic() - fx.ready_time) * 1000
        chk.check(isinstance(b, (int, float)) and 300 <= b <= age_ms + 1000,
                  "sleeper blocked_ms %r not in [300, %d]" % (b, age_ms + 1000))
        for k in ("cpu_rate_pct", "cpu_lifetime_pct"):
            chk.check(isinstance(t.get(k), (int, float)) and t[k] < 5, "sleeper %s %r < 5" % (k, t.get(k)))

    t, g = thread("spinner")
    if t:
        chk.check(t.get("running") is True or t.get("state") == "R",
                  "spinner running %r / state %r" % (t.get("running"), t.get("state")))
        if t.get("running"):
            chk.eq(t.get("syscall"), None, "syscall of a running thread")
            chk.eq(t.get("blocked_ms"), None, "blocked_ms of a running thread")
        for k in ("cpu_rate_pct", "cpu_lifetime_pct"):
            chk.check(isinstance(t.get(k), (int, float)) and t[k] > 10, "spinner %s %r > 10" % (k, t.get(k)))
        names = dt.frame_functions(g)
        chk.check(names[:1] == ["fix_spin"], "spinner innermost frame %r is fix_spin" % names[:1])

    t, g = thread("recurse")
    if g:
        n = dt.frame_functions(g).count("fix_recurse")
        chk.check(n >= DEPTH, "fix_recurse appears %d times, want >= %d" % (n, DEPTH))
        chk.check("fix_recurse_thread" in dt.frame_functions(g), "fix_recurse_thread in recurse frames")
        chk.eq(g.get("truncated"), False, "recurse truncated (depth %d < 64 frames)" % DEPTH)

    idle = set(fx.tids("idle"))
    groups = [g for g in proc.get("groups", []) if idle & set(g.get("tids") or [])]
    if chk.eq(len(groups), 1, "number of groups holding the idle threads"):
        chk.eq(set(groups[0].get("tids")), idle, "idle group tids")
        chk.eq(groups[0].get("count"), IDLE, "idle group count")
        chk.check(groups[0] is proc["groups"][0], "idle group (largest) comes first")

    t, g = thread("inlined")
    if g:
        frames = g.get("frames", [])
        ok = False
        for i, f in enumerate(frames[:-1]):
            if f.get("function") == "fix_inlined_inner":
                nxt = frames[i + 1]
                chk.eq(f.get("inlined"), True, "fix_inlined_inner inlined")
                chk.eq(nxt.get("function"), "fix_inlined_outer", "frame after fix_inlined_inner")
                chk.eq(nxt.get("inlined"), False, "fix_inlined_outer inlined")
                chk.eq(f.get("pc"), nxt.get("pc"), "inlined frame shares the pc of its physical frame")
                ok = True
        chk.check(ok, "inlined thread: fix_inlined_inner not in frames %s" % dt.frame_functions(g))

    mods = {m.get("path"): m for m in proc.get("modules", [])}
    fixmods = [m for p, m in mods.items() if p and p.endswith("/stackfix")]
    if chk.check(fixmods, "stackfix in modules %s" % list(mods)):
        chk.eq(fixmods[0].get("debuginfo"), "found", "stackfix debuginfo")
        chk.check(re.fullmatch(r"[0-9a-f]{16,}", str(fixmods[0].get("build_id"))),
                  "stackfix build_id %r" % fixmods[0].get("build_id"))
    used = {f.get("module") for g in proc.get("groups", []) for f in g.get("frames", [])}
    chk.eq(set(mods) - used, set(), "modules listed that appear in no frame")


if __name__ == "__main__":
    main()
