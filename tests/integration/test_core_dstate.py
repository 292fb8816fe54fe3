# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-core on a process with a thread in uninterruptible sleep (D), reading a file of
a FUSE file system that stopped answering: no ptrace stop reaches that thread. With
either method diag-core must answer in bounded time with exit 4 (core written, a
thread's registers incomplete), say so on stderr, and write a core in which gdb shows
every thread, the D thread included, with its fixture function; the process is left
as it was, and when the file system is aborted the reader wakes and runs on, not
stopped. Then a thread in D state inside a page fault on a mapping of that file: fork
could wait for the mmap lock it may hold, so diag-core uses --method stop and says so,
and reads no page of the FUSE mapping that is not in memory (that read would hang
diag-core itself). Last, single-threaded processes that no stop reaches: fusehang's
reader of a file on its hung mount, `stat` of a name on it, and a vfork parent
(posix_spawn of a program on it: the child waits in execve, the parent for the
child). Those still waiting interruptibly for the FUSE server (S) must not be
interrupted either: the server would be told and the thread left in D for ever.
diag-core writes a core without stopping them (-J method "none"), exit 4, says so
on stderr and in the core's DIAGKIT note, leaves each in the state and wait channel
it found, and gdb shows the thread at the pc of /proc/PID/syscall. Needs root and /dev/fuse (else skipped)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

ANSWER_WITHIN = 30      # seconds (ASan builds included); longer counts as a hang
EXIT_PARTIAL = 4
TIMEOUT_S = 3
TIMEOUT_SLACK = 10      # the time to give up cleanly, and ASan


def main():
    dt.setup_core(__doc__)
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")
    if not dt.which("gdb"):
        dt.skip("gdb is not installed")
    chk = dt.Checker("core-dstate")
    tmp = tempfile.mkdtemp(prefix="diagtest-core-")
    fx = dt.CoreFixture(["--heap", 16, "--threads", 3, "--children", 1, "--dstate"])
    mnt = conn = None
    try:
        fx.__enter__()
        mnt, conn = fx.info["dstate"]["mnt"], fx.info["dstate"]["conn"] or None
        before = check(chk, fx, tmp)
        # The file system gives up (its server dies, and with it the connection):
        # the reader's read fails and it runs on.
        abort(fx)
        dt.force_unmount(mnt, conn)
        reader = fx.info["dstate"]["tid"]
        deadline = time.monotonic() + 5
        while dt.task_state(fx.pid, reader) == "D" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        chk.check(dt.task_state(fx.pid, reader) not in ("D", "t", "T"),
                  "the reader %d, woken by the abort, is in state %s" % (reader, dt.task_state(fx.pid, reader)))
        bad = dt.stopped_or_traced(fx.pid)
        chk.check(not bad, "after the abort, threads are stopped or traced: %s" % bad)
        chk.check(fx.alive(), "the fixture died after the abort (%s)" % fx.proc.poll())
        server = fx.info["dstate"]["server"]
        want = (sorted(before["children"]["children"]), [server])    # the server: killed, not reaped
        deadline = time.monotonic() + 5
        while True:
            left = dt.dump_leftovers(fx.pid, fx.info["children"] + [server])
            kids = dt.children_of(fx.pid)
            if (not left and kids == want) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        chk.eq(kids, want, "children of the fixture once the file system was aborted (children, zombies)")
        chk.check(not left, "processes of the dumps left once the file system was aborted: %s"
                  % [(p, (dt.read_file("/proc/%d/cmdline" % p) or "").replace("\0", " ")[:60]) for p in left])
    finally:
        close(chk, fx, mnt, conn)
    fault_case(chk, tmp)
    single_thread_cases(chk, tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


def close(chk, fx, mnt, conn):
    if mnt and dt.mounted_at(mnt):
        abort(fx)
        dt.force_unmount(mnt, conn)
    fx.close()
    if mnt:
        chk.check(not dt.mounted_at(mnt), "the fixture's FUSE mount %s is left" % mnt)


def fault_case(chk, tmp):
    """The D thread is in a page fault on the FUSE file's mapping."""
    fx = dt.CoreFixture(["--heap", 16, "--threads", 3, "--children", 1, "--dstate-fault"])
    mnt = conn = None
    try:
        fx.__enter__()
        mnt, conn = fx.info["dstate"]["mnt"], fx.info["dstate"]["conn"] or None
        reader = fx.info["dstate"]["tid"]
        chk.check(fx.info["dstate"]["fault"], "the fixture's reader is not in a page fault")
        before = fx.snapshot()
        what = "thread %d in D state in a page fault" % reader
        d = tempfile.mkdtemp(dir=tmp)
        r = dt.diag_core("-J", "-o", os.path.join(d, "core"), fx.pid, timeout=ANSWER_WITHIN)
        fx.check_unharmed(chk, before, what)
        if not chk.eq(r.rc, EXIT_PARTIAL, "%s: exit status\n%s" % (what, r.describe())):
            return
        doc = r.json(chk) or {}
        chk.eq(doc.get("method"), "stop", "%s: -J method" % what)
        chk.check("page-fault" in (doc.get("fallback") or "") and str(reader) in doc.get("fallback", ""),
                  "%s: -J fallback does not name the thread and the page fault: %r" % (what, doc.get("fallback")))
        chk.check("fork not used" in r.err, "%s: stderr does not say fork was not used: %r" % (what, r.err))
        chk.eq(dt.task_state(fx.pid, reader), "D", "%s: the reader's state after" % what)
        core = os.path.join(d, "core.%d" % fx.pid)
        # Not gdb: it would open the FUSE file named in NT_FILE, and hang.
        ec = dt.ElfCore(core)
        if chk.check(ec.error is None, "%s: the core is not well formed: %s" % (what, ec.error)):
            chk.eq(ec.prstatus_pids(), fx.tids(), "%s: pr_pid of the NT_PRSTATUS notes" % what)
            dt.check_heap_words(chk, ec, fx, what)
    finally:
        close(chk, fx, mnt, conn)


def single_thread_cases(chk, tmp):
    """Single-threaded processes in D state: nothing can be stopped."""
    fh = os.path.join(os.path.dirname(dt.need_path("corefix")), "fusehang")
    if not chk.check(os.access(fh, os.X_OK), "fusehang is not built next to corefix (%s)" % fh):
        return
    dt.paths.fusehang = fh
    fx = dt.KVFixture("fusehang", args=["--dir", tmp], ready_timeout=20, term_timeout=10, pdeathsig=signal.SIGTERM)
    procs, mnt, conn = [], None, None
    try:
        fx.__enter__()
        fuse = fx.fact("fuse")
        mnt, conn = fuse["mnt"], fuse.get("conn")
        quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, cwd="/")
        # A name the server never looks up: stat waits for ever.
        procs.append(subprocess.Popen([dt.which("stat") or "stat", os.path.join(mnt, "never")], **quiet))
        # posix_spawn is clone(CLONE_VM | CLONE_VFORK): the parent waits until the
        # child's execve, which waits for the lookup of the program on the mount.
        procs.append(subprocess.Popen([sys.executable, "-c", "import os, sys; os.posix_spawn(sys.argv[1], "
                                       "[sys.argv[1]], {})", os.path.join(mnt, "prog")], **quiet))
        cases = [("the reader of a file on the hung mount", fuse["holder_pid"]),
                 ("stat of a name on the hung mount", procs[0].pid),
                 ("a vfork parent", procs[1].pid)]
        for what, pid in cases:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (len(dt.task_ids(pid)) == 1 and
                                                       dt.task_state(pid, pid) in ("S", "D") and
                                                       dt.proc_syscall(pid, pid)[:1] not in ([], ["running"])):
                time.sleep(0.02)
            if what == "a vfork parent":
                chk.check(dt.children_of(pid)[0], "%s: the spawned child is not there" % what)
            unstoppable(chk, what, pid, tmp)
    finally:
        for p in procs:
            dt.kill_group(p)
            p.wait()
        fx.close()
        if mnt and dt.mounted_at(mnt):
            dt.force_unmount(mnt, conn)


def unstoppable(chk, what, pid, tmp):
    exe = os.readlink("/proc/%d/exe" % pid)
    # A FUSE request still waits interruptibly (S): an interrupt would reach the
    # server and leave the thread in an uninterruptible wait (D) for ever. Whatever
    # the state, diag-core must leave it as it found it.
    state0, wchan0 = dt.task_state(pid, pid), dt.read_file("/proc/%d/wchan" % pid)
    for method in ("fork", "stop"):
        w = "%s (pid %d), --method %s" % (what, pid, method)
        d = tempfile.mkdtemp(dir=tmp)
        r = dt.diag_core("-J", "--method", method, "-o", os.path.join(d, "core"), pid, timeout=ANSWER_WITHIN)
        core = os.path.join(d, "core.%d" % pid)
        if not chk.eq(r.rc, EXIT_PARTIAL, "%s: exit status\n%s" % (w, r.describe())):
            continue
        doc = r.json(chk) or {}
        chk.eq((doc.get("method"), doc.get("threads"), doc.get("threads_partial")), ("none", 1, 1),
               "%s: -J method, threads, threads_partial" % w)
        chk.check("not stopped" in r.err and ("uninterruptible sleep" in r.err or "interrupt would end" in r.err),
                  "%s: stderr does not say the process was not stopped and why: %r" % (w, r.err))
        chk.check("fork not used" not in r.err and "deadlock" not in r.err.lower(),
                  "%s: stderr speaks of a fork or an errno: %r" % (w, r.err))
        chk.eq((dt.task_state(pid, pid), dt.read_file("/proc/%d/wchan" % pid)), (state0, wchan0),
               "%s: state and wait channel after (before: %s %s)" % (w, state0, wchan0))
        chk.check(not dt.stopped_or_traced(pid), "%s: left stopped or traced: %s" % (w, dt.stopped_or_traced(pid)))
        ec = dt.ElfCore(core)
        if not chk.check(ec.error is None, "%s: the core is not well formed: %s" % (w, ec.error)):
            continue
        chk.eq(ec.prstatus_pids(), [pid], "%s: pr_pid of the NT_PRSTATUS notes" % w)
        text = b"".join(desc for name, _, desc in ec.notes if name == "DIAGKIT").decode(errors="replace")
        chk.check("uninterruptible" in text and ("thread %d" % pid) in text,
                  "%s: the core's DIAGKIT note does not say what is missing: %r" % (w, text))
        sc = dt.proc_syscall(pid, pid)
        pc = int(sc[-1], 16) if len(sc) >= 3 else None
        g = dt.gdb_command(exe, ["info threads", "bt", "info registers rip"], core=core, timeout=120)
        chk.check(("LWP %d" % pid) in g.out, "%s: gdb info threads does not show LWP %d\n%s" % (w, pid, g.describe()))
        m = [l for l in g.out.splitlines() if l.startswith("rip")]
        chk.check(pc is not None and m and int(m[0].split()[1], 16) == pc,
                  "%s: gdb's rip %s, /proc/%d/syscall pc %s" % (w, m[:1], pid, hex(pc) if pc else pc))
        # (gdb leaves the address out of frame #0 when the pc starts a source line)
        chk.check("#0  " in g.out and "#1  " in g.out,
                  "%s: gdb's bt does not unwind from the pc %s\n%s" % (w, hex(pc) if pc else pc, g.out[-2000:]))


def abort(fx):
    """Kill the FUSE server: its /dev/fuse is the connection's last, so the kernel
    aborts the connection (fusectl may not be mounted)."""
    try:
        os.kill(fx.info["dstate"]["server"], signal.SIGKILL)
    except ProcessLookupError:
        pass


def check(chk, fx, tmp):
    reader = fx.info["dstate"]["tid"]
    chk.eq(dt.task_state(fx.pid, reader), "D", "the reader %d's state before" % reader)
    before = fx.snapshot()
    for method in ("stop", "fork"):
        what = "--method %s, thread %d in D state" % (method, reader)
        d = tempfile.mkdtemp(dir=tmp)
        r = dt.diag_core("-J", "--method", method, "-o", os.path.join(d, "core"), fx.pid, timeout=ANSWER_WITHIN)
        core = os.path.join(d, "core.%d" % fx.pid)
        if not chk.eq(r.rc, EXIT_PARTIAL, "%s: exit status\n%s" % (what, r.describe())):
            fx.check_unharmed(chk, before, what)
            continue
        chk.check(any(s in r.err for s in ("uninterruptible", "D state", str(reader))),
                  "%s: stderr does not name the thread or its state: %r" % (what, r.err))
        doc = r.json(chk) or {}
        chk.eq(doc.get("threads"), len(fx.tids()), "%s: -J threads" % what)
        chk.eq(os.listdir(d), [os.path.basename(core)], "%s: files in the directory" % what)
        fx.check_unharmed(chk, before, what)
        chk.eq(dt.task_state(fx.pid, reader), "D", "%s: the reader's state after" % what)
        if os.path.exists(core):
            dt.gdb_check_core(chk, fx, core, what)
    # --timeout bounds the whole run, whatever the target does.
    what = "--timeout %d, thread %d in D state" % (TIMEOUT_S, reader)
    d = tempfile.mkdtemp(dir=tmp)
    r = dt.diag_core("-J", "--timeout", TIMEOUT_S, "-o", os.path.join(d, "core"), fx.pid, timeout=ANSWER_WITHIN)
    chk.check(r.rc in (1, EXIT_PARTIAL), "%s: exit status %s, want 1 (no core) or 4\n%s" % (what, r.rc, r.describe()))
    chk.check(r.elapsed <= TIMEOUT_S + TIMEOUT_SLACK, "%s: took %.1f s" % (what, r.elapsed))
    if r.rc == 1:
        chk.eq(os.listdir(d), [], "%s: exit 1: files in the directory" % what)
        chk.check(r.err.strip() and "time" in r.err.lower(), "%s: stderr does not say it timed out: %r" % (what, r.err))
    fx.check_unharmed(chk, before, what)
    return before


if __name__ == "__main__":
    main()
