# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-core when things go wrong: a full disk (a 16 MiB tmpfs), the target exiting or
killed mid-dump, no such process, invalid process ids, an existing output file or a
symlink in its place, a missing directory, no permission, usage errors; a kernel
thread, a zombie, a process already traced, two diag-core racing on one process.
Each time: the documented exit status, one clear line in the words every tool uses
(with -J, the error object on stdout too), never "fork not used" for a process that
was not stopped, never "try as root" to root, no core file (not even a hidden one)
left behind, and the target as it was. Also -o DIR/ and -o with an existing
directory: DIR/core.PID."""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

TMPFS_MIB = 16
HEAP_MIB = 64
TRY_HELP = "Try 'diag-core --help'"
GONE_WORDS = ("exit", "does not exist", "no such process", "gone", "vanish", "died", "killed")
skipped = []


def main():
    dt.setup_core(__doc__)
    chk = dt.Checker("core-errors")
    tmp = tempfile.mkdtemp(prefix="diagtest-core-")
    try:
        usage_errors(chk, tmp)
        no_such_pid(chk, tmp)
        not_dumpable(chk, tmp)
        with dt.CoreFixture(["--heap", HEAP_MIB, "--threads", 4, "--children", 1]) as fx:
            before = fx.snapshot()
            output_dir(chk, fx, before, tmp)
            already_traced(chk, fx, before, tmp)
            racing(chk, fx, before, tmp)
            existing_file(chk, fx, before, tmp)
            symlinks(chk, fx, before, tmp)
            missing_dir(chk, fx, before, tmp)
            not_permitted(chk, fx, before)
            disk_full(chk, fx, before)
        target_exits(chk, tmp)
        target_killed(chk, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for c in _cleanups:
            shutil.rmtree(c, ignore_errors=True)
    if skipped and not chk.failures:
        dt.log("%s: %d checks passed" % (chk.name, chk.count))
        dt.skip("; ".join(skipped))
    chk.finish()


def core_tool():
    return dt.need_path("diag_core")


def one_line(chk, r, what, *needles):
    """stderr is one line (ignoring blank ones) naming each needle (any case)."""
    lines = r.err_lines()
    ok = chk.eq(len(lines), 1, "%s: lines on stderr (%r)" % (what, lines))
    low = r.err.lower()
    for n in needles:
        alts = n if isinstance(n, tuple) else (n,)
        ok &= chk.check(any(a.lower() in low for a in alts), "%s: stderr does not say %s: %r" % (what, alts, r.err))
    return ok


def no_leftovers(chk, what, target, keep=()):
    """Within 5 s, nothing a dump of target may leave (dt.dump_leftovers)."""
    deadline = time.monotonic() + 5
    while True:
        left = dt.dump_leftovers(target, keep)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    chk.check(not left, "%s: processes left behind: %s" % (what, [(p, (dt.read_file("/proc/%d/cmdline" % p) or "")
                                                                   .replace("\0", " ")[:80]) for p in left]))


def usage_errors(chk, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    me = str(os.getpid())
    cases = [
        ("bad option", ["--bogus", me], [TRY_HELP]),
        ("no process", [], [TRY_HELP]),
        ("two processes", [me, me], [TRY_HELP]),
        ("bad method", ["--method", "magic", me], ["magic"]),
        ("bad filter", ["--filter", "xyz", me], ["xyz"]),
        ("-o - with -J", ["-o", "-", "-J", me], [("-J", "json")]),
    ]
    for bad in ("abc", "0", "12x", "", "99999999999", "1.5"):
        cases.append(("invalid pid %r" % bad, [bad], [repr(bad)[1:-1] or "'"]))
    for what, args, needles in cases:
        r = dt.run([core_tool()] + args, timeout=60, cwd=d)
        chk.eq(r.rc, 2, "%s: exit status of `%s`\n%s" % (what, r.cmd(), r.describe()))
        chk.eq(r.out, "", "%s: stdout" % what)
        low = r.err.lower()
        for n in needles:
            alts = n if isinstance(n, tuple) else (n,)
            chk.check(any(a.lower() in low for a in alts), "%s: stderr does not mention %s: %r" % (what, alts, r.err))
    chk.eq(os.listdir(d), [], "usage errors: files written in the working directory")


def free_pid():
    pid_max = int((dt.read_file("/proc/sys/kernel/pid_max") or "32768").strip())
    for p in range(pid_max - 1, 300, -1):
        if not os.path.exists("/proc/%d" % p):
            return p
    dt.harness_error("no free pid")


def no_such_pid(chk, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    pid = free_pid()
    what = "no such process %d" % pid
    r = dt.run([core_tool(), str(pid)], timeout=60, cwd=d)
    chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
    one_line(chk, r, what, str(pid), ("does not exist", "no such process"))
    chk.eq(os.listdir(d), [], "%s: files in the working directory" % what)


def existing_file(chk, fx, before, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    path = os.path.join(d, "core.%d" % fx.pid)
    with open(path, "w") as f:
        f.write("an earlier core, to keep\n")
    os.utime(path, (1000000000, 1000000000))
    st0 = os.stat(path)
    for what, argv, cwd in (("existing file (-o)", [core_tool(), "-o", os.path.join(d, "core"), fx.pid], "/"),
                            ("existing file (default name)", [core_tool(), fx.pid], d)):
        r = dt.run(argv, timeout=120, cwd=cwd)
        chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
        one_line(chk, r, what, "core.%d" % fx.pid, "exists")
        st = os.stat(path)
        chk.eq((st.st_ino, st.st_size, st.st_mtime), (st0.st_ino, st0.st_size, st0.st_mtime),
               "%s: the file's inode, size, mtime" % what)
        chk.eq(dt.read_file(path), "an earlier core, to keep\n", "%s: the file's contents" % what)
        chk.eq(os.listdir(d), ["core.%d" % fx.pid], "%s: files in the directory" % what)
        fx.check_unharmed(chk, before, what)


def symlinks(chk, fx, before, tmp):
    """A symlink at the core's name is never followed: not to a missing file (which
    would be created), nor to an existing one (which would be overwritten)."""
    d = tempfile.mkdtemp(dir=tmp)
    elsewhere = tempfile.mkdtemp(dir=tmp)
    link = os.path.join(d, "core.%d" % fx.pid)
    missing = os.path.join(elsewhere, "victim")
    victim = os.path.join(elsewhere, "precious")
    with open(victim, "w") as f:
        f.write("precious\n")
    for what, target in (("symlink to a missing file", missing), ("symlink to an existing file", victim)):
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
        r = dt.diag_core("-o", os.path.join(d, "core"), fx.pid)
        chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
        one_line(chk, r, what, "core.%d" % fx.pid)
        chk.check(os.path.islink(link) and os.readlink(link) == target, "%s: the link was changed" % what)
        chk.eq(sorted(os.listdir(elsewhere)), ["precious"], "%s: files where the link points" % what)
        chk.eq(dt.read_file(victim), "precious\n", "%s: the linked file's contents" % what)
        chk.eq(os.listdir(d), ["core.%d" % fx.pid], "%s: files in the directory" % what)
        fx.check_unharmed(chk, before, what)


def missing_dir(chk, fx, before, tmp):
    what = "output directory missing"
    prefix = os.path.join(tmp, "no-such-dir", "core")
    r = dt.diag_core("-o", prefix, fx.pid)
    chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
    one_line(chk, r, what, os.path.dirname(prefix))
    chk.check(not os.path.exists(os.path.dirname(prefix)), "%s: the directory was created" % what)
    fx.check_unharmed(chk, before, what)


def not_permitted(chk, fx, before):
    """As an unprivileged user, against a process of root's: no permission, said once."""
    what = "not permitted"
    if os.geteuid() != 0:
        skipped.append("%s: needs root to run diag-core as another user" % what)
        return
    d = tempfile.mkdtemp(prefix="diagtest-core-nobody-")
    os.chmod(d, 0o1777)
    try:
        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        r = dt.run([runnable_copy(chk, d), "-o", os.path.join(d, "core"), fx.pid], timeout=120, preexec=drop)
        chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
        one_line(chk, r, what, str(fx.pid), ("not permitted", "permission"))
        chk.eq(os.listdir(d), [], "%s: files in the directory" % what)
        fx.check_unharmed(chk, before, what)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def runnable_copy(chk, d):
    """A copy of diag-core that another user can run wherever the build tree is (a
    clone under /root, mode 0700, is out of its reach): a fresh directory and the
    binary, both 0755. diag-core links libdiag statically: its shared libraries
    must be the system's (checked with ldd where there is one)."""
    bindir = tempfile.mkdtemp(prefix="diagtest-core-bin-")
    os.chmod(bindir, 0o755)
    copy = os.path.join(bindir, "diag-core")
    shutil.copy(core_tool(), copy)
    os.chmod(copy, 0o755)
    _cleanups.append(bindir)
    ldd = dt.which("ldd")
    if ldd:
        r = dt.run([ldd, copy], timeout=60)
        libs = [l.split("=>")[-1].split("(")[0].strip() for l in r.out.splitlines() if "=>" in l]
        own = [l for l in libs if l and os.path.realpath(l).startswith(os.path.dirname(os.path.realpath(core_tool()))
                                                                      .rsplit("/tools/", 1)[0] + "/")]
        chk.check(not own, "diag-core needs shared libraries of the build tree: %s" % own)
    return copy


_cleanups = []


def not_dumpable(chk, tmp):
    """A kernel thread, a zombie, no such process: one line each, exit 1, with -J the
    error object; never a word of fork or of root."""
    d = tempfile.mkdtemp(dir=tmp)
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while dt.task_state(zombie, zombie) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        me = os.getpid()
        cases = [("kernel thread", 2, r"^diag-core: pid 2 \(kthreadd\) is a kernel thread: it has no user space to dump$",
                  "kernel-thread"),
                 ("zombie", zombie, r"^diag-core: pid %d \(\S+\) has exited: a zombie its parent %d \(\S+\) has not "
                  r"reaped$" % (zombie, me), "zombie"),
                 ("no such process", free_pid(), r"^diag-core: pid \d+: no such process$", "gone")]
        for what, pid, pattern, reason in cases:
            for json_opt in ([], ["-J"]):
                w = "%s%s" % (what, " -J" if json_opt else "")
                r = dt.run([core_tool()] + json_opt + ["-o", os.path.join(d, "core"), pid], timeout=60)
                chk.eq(r.rc, 1, "%s: exit status\n%s" % (w, r.describe()))
                chk.check(len(r.err_lines()) == 1 and re.match(pattern, r.err_lines()[0]),
                          "%s: stderr %r does not match %r" % (w, r.err, pattern))
                if json_opt:
                    doc = r.json(chk) or {}
                    e = doc.get("error") or {}
                    chk.eq((e.get("reason"), e.get("pid"), e.get("status")), (reason, pid, 1), "%s: -J error" % w)
                    chk.eq(e.get("message"), r.err_lines()[0][len("diag-core: "):] if r.err_lines() else None,
                           "%s: -J error message" % w)
                else:
                    chk.eq(r.out, "", "%s: stdout" % w)
        chk.eq(os.listdir(d), [], "not dumpable: files in the directory")
    finally:
        os.waitpid(zombie, 0)


def output_dir(chk, fx, before, tmp):
    """-o DIR/ and -o DIR (an existing directory) write DIR/core.PID."""
    for what, how in (("-o DIR/", lambda d: d + "/"), ("-o DIR, an existing directory", lambda d: d)):
        d = tempfile.mkdtemp(dir=tmp)
        r = dt.diag_core("-q", "-o", how(d), fx.pid)
        chk.eq(r.rc, 0, "%s: exit status\n%s" % (what, r.describe()))
        chk.eq(os.listdir(d), ["core.%d" % fx.pid], "%s: files in the directory" % what)
        fx.check_unharmed(chk, before, what)
        shutil.rmtree(d, ignore_errors=True)


def already_traced(chk, fx, before, tmp):
    """A process a debugger holds (here: this test, with PTRACE_SEIZE): who holds it,
    in one line; no word of fork, nothing stopped."""
    what = "already traced"
    d = tempfile.mkdtemp(dir=tmp)
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        if dt._libc.ptrace(0x4206, sleeper.pid, None, None) != 0:      # PTRACE_SEIZE
            chk.fail("%s: the test could not seize sleep %d" % (what, sleeper.pid))
            return
        for json_opt in ([], ["-J"]):
            r = dt.run([core_tool()] + json_opt + ["-o", os.path.join(d, "core"), sleeper.pid], timeout=60)
            w = what + (" -J" if json_opt else "")
            chk.eq(r.rc, 1, "%s: exit status\n%s" % (w, r.describe()))
            pattern = r"^diag-core: pid %d \(sleep\) is already traced by pid %d \(\S+\)$" % (sleeper.pid, os.getpid())
            chk.check(len(r.err_lines()) == 1 and re.match(pattern, r.err_lines()[0]),
                      "%s: stderr %r does not match %r" % (w, r.err, pattern))
            if json_opt:
                chk.eq(((r.json(chk) or {}).get("error") or {}).get("reason"), "traced", "%s: -J reason" % w)
        chk.eq(os.listdir(d), [], "%s: files in the directory" % what)
    finally:
        sleeper.kill()
        sleeper.wait()


def racing(chk, fx, before, tmp):
    """Two diag-core started together on one process: each either writes its core
    or says who holds the process; never "not permitted"."""
    what = "two diag-core racing"
    outcomes = []
    for i in range(8):
        d = tempfile.mkdtemp(dir=tmp)
        ps = [subprocess.Popen([core_tool(), "-q", "-o", os.path.join(d, "c%d" % k), str(fx.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               env=dt.tool_env(), start_new_session=True, text=True, cwd="/") for k in range(2)]
        for k, p in enumerate(ps):
            err = p.communicate(timeout=180)[1]
            w = "%s, round %d, run %d" % (what, i, k)
            outcomes.append(p.returncode)
            if p.returncode in (0, 4):
                # (4: a thread of the target was in D state in the other's fork)
                chk.check("not permitted" not in err and "fork not used" not in err,
                          "%s: exit %d, stderr %r" % (w, p.returncode, err))
                chk.check(os.path.exists(os.path.join(d, "c%d.%d" % (k, fx.pid))), "%s: exit 0 and no core" % w)
                continue
            chk.eq(p.returncode, 1, "%s: exit status (%r)" % (w, err))
            pattern = r"^diag-core: pid %d \(corefix\) is already traced by (pid \d+ \(diag-core\)|another process)$" \
                % fx.pid
            lines = [l for l in err.splitlines() if l.strip()]
            chk.check(len(lines) == 1 and re.match(pattern, lines[0]), "%s: stderr %r does not match %r"
                      % (w, err, pattern))
        shutil.rmtree(d, ignore_errors=True)
    dt.log("%s: exit statuses %s" % (what, outcomes))
    fx.check_unharmed(chk, before, what)


def disk_full(chk, fx, before):
    what = "disk full (%d MiB tmpfs, %d MiB heap)" % (TMPFS_MIB, HEAP_MIB)
    if os.geteuid() != 0:
        skipped.append("%s: needs root to mount a tmpfs" % what)
        return
    mnt = tempfile.mkdtemp(prefix="diagtest-core-full-")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"diagtest-core", mnt.encode(), b"tmpfs", 0, b"size=%dm,mode=0700" % TMPFS_MIB) != 0:
        os.rmdir(mnt)
        skipped.append("%s: mount tmpfs: %s" % (what, os.strerror(ctypes.get_errno())))
        return
    try:
        free0 = os.statvfs(mnt).f_bfree
        r = dt.diag_core("-o", os.path.join(mnt, "core"), fx.pid)
        chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
        one_line(chk, r, what, ("no space left on device", "disk full", "device full"))
        chk.eq(os.listdir(mnt), [], "%s: files left on the file system" % what)
        chk.eq(os.statvfs(mnt).f_bfree, free0, "%s: free blocks after the run (an unlinked file still held?)" % what)
        fx.check_unharmed(chk, before, what)
        no_leftovers(chk, what, fx.pid, keep=before["children"]["children"])
    finally:
        if dt.mounted_at(mnt):
            libc.umount2(mnt.encode(), 2)
        os.rmdir(mnt)


def target_exits(chk, tmp):
    """The target exits on its own while the core is written: either the core holds
    the image from before (exit 0, complete) or there is none (exit 1, said why)."""
    for exit_after in (150, 400):
        what = "target exits %d ms after it is ready" % exit_after
        d = tempfile.mkdtemp(dir=tmp)
        with dt.CoreFixture(["--heap", 256, "--threads", 4, "--children", 1, "--exit-after", exit_after]) as fx:
            t0 = time.monotonic()
            p = subprocess.Popen([core_tool(), "-J", "-o", os.path.join(d, "core"), str(fx.pid)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 env=dt.tool_env(), start_new_session=True, text=True, cwd="/")
            exited = None
            while p.poll() is None and time.monotonic() - t0 < 180:
                if exited is None and fx.proc.poll() is not None:
                    exited = time.monotonic() - t0
                time.sleep(0.002)
            if p.poll() is None:
                dt.kill_group(p)
            out, err = p.communicate()
            done = time.monotonic() - t0
            fx.proc.wait(timeout=30)
            exited = exited if exited is not None else done
            dt.log("%s: it exited at %.0f ms, diag-core ended at %.0f ms with status %s"
                   % (what, exited * 1000, done * 1000, p.returncode))
            core = os.path.join(d, "core.%d" % fx.pid)
            if p.returncode == 0:
                chk.eq(os.listdir(d), [os.path.basename(core)], "%s: exit 0: files in the directory" % what)
                ec = dt.ElfCore(core) if os.path.exists(core) else None
                if chk.check(ec and ec.error is None, "%s: exit 0 but no well-formed core (%s)"
                             % (what, ec and ec.error)):
                    dt.check_heap_words(chk, ec, fx, what)
                    chk.eq(len(ec.prstatus_pids()), len(fx.tids()) + 1, "%s: threads in the core (with the exiter)"
                           % what)
            else:
                r = dt.Result(p.args, p.returncode, out, err, done)
                chk.eq(p.returncode, 1, "%s: exit status\n%s" % (what, r.describe()))
                one_line(chk, r, what, str(fx.pid), GONE_WORDS)
                chk.eq(os.listdir(d), [], "%s: files in the directory" % what)
            no_leftovers(chk, what, fx.pid)


def written(pid):
    """Bytes process pid has written so far (wchar of /proc/PID/io), 0 if unknown."""
    for line in (dt.read_file("/proc/%d/io" % pid) or "").splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def target_killed(chk, tmp):
    """--method stop, the target SIGKILLed while it is stopped and its memory copied
    (once diag-core has written a quarter, half, three quarters of the heap): exit 1,
    said why, no file."""
    judged = 0
    for frac in (0.25, 0.5, 0.75):
        what = "target killed after %d%% of the heap was written (--method stop)" % (frac * 100)
        d = tempfile.mkdtemp(dir=tmp)
        with dt.CoreFixture(["--heap", 512, "--threads", 4, "--children", 1]) as fx:
            argv = [core_tool(), "-o", os.path.join(d, "core"), "--method", "stop", str(fx.pid)]
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 env=dt.tool_env(), start_new_session=True, text=True, cwd="/")
            t0 = time.monotonic()
            while p.poll() is None and written(p.pid) < fx.info["heap"]["size"] * frac and time.monotonic() - t0 < 60:
                time.sleep(0.0005)
            in_stop = p.poll() is None and bool(dt.traced(fx.pid))
            dt.kill_group(fx.proc)
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                dt.kill_group(p)
                out, err = p.communicate()
                err += "\n[killed after 120 s]"
            fx.proc.wait(timeout=30)
            dt.log("%s: killed %s; diag-core exit %s"
                   % (what, "while traced" if in_stop else "NOT while traced", p.returncode))
            if not in_stop:
                continue        # diag-core was done first: nothing to judge
            judged += 1
            r = dt.Result(p.args, p.returncode, out, err, time.monotonic() - t0)
            chk.eq(p.returncode, 1, "%s: exit status\n%s" % (what, r.describe()))
            one_line(chk, r, what, str(fx.pid), GONE_WORDS)
            chk.eq(os.listdir(d), [], "%s: files in the directory" % what)
            no_leftovers(chk, what, fx.pid)
    if not judged:
        dt.harness_error("the target was never killed while diag-core had it stopped: the case proved nothing")


if __name__ == "__main__":
    main()
