# SPDX-License-Identifier: GPL-2.0-or-later
"""The tools that stop a target (diag-stack, diag-core, diag-chain --stacks) must not
change what a sleeping thread gets back from the kernel. A ptrace interrupt wakes a
thread asleep in a system call as a signal would: most calls restart unseen, but
recv on a socket with SO_RCVTIMEO, sigtimedwait and epoll_wait fail with EINTR, a pipe write
that filled the pipe returns a short count, and a read on FUSE tells the server
and turns into an uninterruptible wait (D) until it answers, which may be never.

stackfix's rcvtimeo, sigtimed, pipewrite and epoll threads (and its main thread, in
sigwaitinfo) note any return of their call in a file: after each tool ran several
times the file must not exist. diag-stack -J shows each of them not stopped, with
the reason, and a stack read while it slept that reaches its fix_* function; the
mutex waiter (futex, which restarts unseen) is still stopped and shown as such.
Then fusehang's reader, asleep (S) in request_wait_answer: after each tool its state
and wait channel are those it had, and diag-stack shows it not stopped because of
the FUSE server, with its read() frame. Needs root (the FUSE part also /dev/fuse)."""
import os
import signal
import sys
import tempfile
import shutil

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

RUNS = 3
ROLES = {"rcvtimeo": "fix_rcvtimeo", "sigtimed": "fix_sigtimed", "pipewrite": "fix_pipe_writer",
         "epoll": "fix_epoll", "main": "fix_main_wait"}


def main():
    dt.setup(__doc__, "diag_core", "diag_chain")
    dt.need_root("stopping and reading processes it did not start itself, and mounting FUSE")
    chk = dt.Checker("stack-noharm")
    tmp = tempfile.mkdtemp(prefix="diagtest-noharm-")
    try:
        early_ending_calls(chk, tmp)
        fuse_reader(chk, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


def run_tools(chk, pid, tmp, what):
    """Every tool that may stop pid, RUNS times each. Returns the last diag-stack -J."""
    doc = None
    for i in range(RUNS):
        r = dt.diag_stack("-J", pid)
        chk.check(r.rc in (0, 4), "%s: diag-stack -J run %d: exit status %s\n%s" % (what, i, r.rc, r.describe()))
        doc = r.json(chk) or doc
        r = dt.diag_chain("--stacks", str(pid))
        chk.check(r.rc != "timeout" and r.rc in range(0, 8),
                  "%s: diag-chain --stacks run %d: exit status %s\n%s" % (what, i, r.rc, r.describe()))
        d = tempfile.mkdtemp(dir=tmp)
        r = dt.diag_core("-o", os.path.join(d, "core"), pid, timeout=60)
        chk.check(r.rc in (0, 4), "%s: diag-core run %d: exit status %s\n%s" % (what, i, r.rc, r.describe()))
        shutil.rmtree(d, ignore_errors=True)
    return doc


def early_ending_calls(chk, tmp):
    harm = os.path.join(tmp, "harm")
    with dt.Fixture(["--roles", "rcvtimeo,sigtimed,pipewrite,epoll,mutex,heartbeat", "--harm", harm]) as fx:
        doc = run_tools(chk, fx.pid, tmp, "stackfix")
        fx.check_unharmed(chk, "after the tools")
        # a return would come within microseconds of the interrupt; give it time anyway
        dt.time.sleep(0.3)
        chk.check(not os.path.exists(harm), "calls that should still sleep returned (role, result, errno): %r"
                  % (dt.read_file(harm) or "").splitlines())
        threads = dt.threads_of(dt.process_of(doc, fx.pid))
        tids = {role: fx.tid(role) for role in ROLES if role != "main"}
        tids["main"] = fx.pid
        for role, fn in sorted(ROLES.items()):
            t, g = (threads.get(tids[role]) or [({}, {})])[0]
            what = "%s thread %d" % (role, tids[role])
            chk.eq(t.get("stopped"), False, "%s: -J stopped" % what)
            chk.check("interrupt" in (t.get("not_stopped") or ""),
                      "%s: -J not_stopped does not say why: %r" % (what, t.get("not_stopped")))
            chk.check(t.get("error") is None, "%s: -J error %r" % (what, t.get("error")))
            chk.check(fn in dt.frame_functions(g), "%s: %s not among the frames read while it slept: %s"
                      % (what, fn, dt.frame_functions(g)))
        t, g = (threads.get(fx.tid("mutex_waiter")) or [({}, {})])[0]
        chk.eq((t.get("stopped"), t.get("not_stopped")), (True, None), "mutex waiter (futex): -J stopped, not_stopped")
        chk.check("fix_mutex_waiter" in dt.frame_functions(g), "mutex waiter: frames %s" % dt.frame_functions(g))


def fuse_reader(chk, tmp):
    if not os.path.exists("/dev/fuse"):
        dt.log("SKIP the FUSE part: /dev/fuse does not exist")
        return
    fh = os.path.join(os.path.dirname(dt.need_path("stackfix")), "fusehang")
    if not chk.check(os.access(fh, os.X_OK), "fusehang is not built next to stackfix (%s)" % fh):
        return
    dt.paths.fusehang = fh
    dt.set_subreaper()
    fx = dt.KVFixture("fusehang", args=["--dir", tmp], ready_timeout=20, term_timeout=10, pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        fuse = fx.fact("fuse")
        mnt, conn = fuse["mnt"], fuse.get("conn")
        pid = int(fuse["holder_pid"])
        deadline = dt.time.monotonic() + 10
        while dt.read_file("/proc/%d/wchan" % pid) != "request_wait_answer" and dt.time.monotonic() < deadline:
            dt.time.sleep(0.02)
        before = (dt.task_state(pid, pid), dt.read_file("/proc/%d/wchan" % pid))
        chk.eq(before, ("S", "request_wait_answer"), "fusehang's reader before the tools: state, wait channel")
        doc = run_tools(chk, pid, tmp, "fusehang's reader")
        chk.eq((dt.task_state(pid, pid), dt.read_file("/proc/%d/wchan" % pid)), before,
               "fusehang's reader after the tools: state, wait channel")
        chk.check(not dt.stopped_or_traced(pid), "fusehang's reader left stopped or traced")
        t, g = (dt.threads_of(dt.process_of(doc, pid)).get(pid) or [({}, {})])[0]
        chk.eq(t.get("stopped"), False, "fusehang's reader: -J stopped")
        chk.check("FUSE" in (t.get("not_stopped") or ""), "fusehang's reader: -J not_stopped %r" % t.get("not_stopped"))
        chk.check("read" in dt.frame_functions(g), "fusehang's reader: read() not among the frames %s"
                  % dt.frame_functions(g))
    finally:
        dt.close_fuse(chk, fx, mnt, conn)
        dt.reap_orphans()


if __name__ == "__main__":
    main()
