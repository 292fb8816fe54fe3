# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record without privileges (root drops to the user nobody): into a directory
nobody owns, for about 3 s, then SIGTERM: exit 0, no sanitizer report, the recording
has intervals with processes (its own among them), the IO counters of other users'
processes are null (their /proc/PID/io cannot be read), its own are read; its stderr
has no kernel-log error, only the start and end lines and warnings that it could not
lower its oom_score_adj or lock its memory. `show --dump` works as nobody and reads
the same intervals as root. -D at a directory nobody cannot write: exit 1 and one
clear line naming it."""
import grp
import os
import pwd
import re
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402

ALLOWED = [
    re.compile(r"^diag-record: recording into .* every "),
    re.compile(r"^diag-record: \d+ intervals, \d+ late$"),
    re.compile(r"^diag-record: cannot set oom_score_adj to -?\d+: (Permission denied|Operation not permitted)$"),
    re.compile(r"^diag-record: cannot lock the recorder's memory: "),
]


def nobody_ids():
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        dt.skip("no user nobody")
    for g in ("nogroup", "nobody"):
        try:
            return uid, grp.getgrnam(g).gr_gid
        except KeyError:
            pass
    dt.skip("no group nogroup or nobody")


def main():
    rt.setup(__doc__)
    rt.tool()
    dt.need_root("to run the recorder as the user nobody")
    dt.set_subreaper()
    uid, gid = nobody_ids()
    chk = dt.Checker("record-notroot")

    def drop():
        dt._child_setup()
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    def drop_child():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    # LSan stops its own threads with ptrace, which an unprivileged process may not do here
    env = dict(dt.tool_env(), ASAN_OPTIONS="detect_leaks=0", HOME="/nonexistent")
    tmp = rt.temp_dir("notroot")
    try:
        os.chmod(tmp, 0o755)
        d = os.path.join(tmp, "rec")
        os.mkdir(d, 0o700)
        os.chown(d, uid, gid)
        # a copy nobody may run: the build may lie under a directory only root enters
        exe = os.path.join(tmp, "diag-record")
        shutil.copy(rt.tool(), exe)
        os.chmod(exe, 0o755)
        v = dt.run([exe, "--version"], env=env, preexec=drop, timeout=20)
        if v.rc != 0:
            dt.skip("user nobody cannot run a copy of diag-record: %s" % v.describe())
        rec = rt.Recorder(d, "-i", "1s", "--flush", "1s", env=env, preexec=drop_child,
                          log=os.path.join(tmp, "rec.log"))
        rec.argv[0] = exe
        with rec:
            time.sleep(3.3)
            alive = rec.alive()
            rc = rec.stop(signal.SIGTERM)
        out = rec.output()
        chk.check(alive, "the recorder ran as nobody for 3 s\n%s" % out)
        chk.eq(rc, 0, "exit status after SIGTERM\n%s" % out)
        chk.check(rt.sanitizer_report(out) is None, "sanitizer report: %s" % rt.sanitizer_report(out))
        lines = [l for l in out.splitlines() if l.strip()]
        odd = [l for l in lines if not any(p.match(l) for p in ALLOWED)]
        chk.check(not odd, "stderr lines other than the start and end lines and the oom_score_adj and mlock "
                           "warnings: %r" % odd)
        chk.check(not [l for l in lines if "kmsg" in l or "kernel log" in l], "a kernel-log error: %r" % lines)

        r, ivs = rt.dump_checked(chk, "as root", d)
        chk.check(len(ivs) >= 2, "intervals recorded as nobody: %d" % len(ivs))
        own = rt.procs_of(ivs, rec.pid)
        chk.check(len(own) == len(ivs), "its own process row in %d of %d intervals" % (len(own), len(ivs)))
        chk.check(all(row.get("uid") == uid for _, row in own), "its own row's uid is nobody's (%d): %r"
                  % (uid, sorted({row.get("uid") for _, row in own})))
        others = [(iv["seq"], row) for iv in ivs for row in iv.get("proc") or [] if row.get("uid") != uid]
        chk.check(len(others) > 0, "rows of other users' processes recorded")
        readable = [(s, row["pid"], row.get("comm"), row.get("read_bytes"), row.get("write_bytes"))
                    for s, row in others if row.get("read_bytes") is not None or row.get("write_bytes") is not None]
        chk.check(not readable, "IO counters of other users' processes are null (not readable as nobody): "
                                "(seq, pid, comm, read, write) %r" % readable[:5])
        chk.check(any(row.get("read_bytes") is not None for _, row in own),
                  "its own IO counters are read: %r" % [row.get("read_bytes") for _, row in own])
        chk.check(all(len(iv.get("proc") or []) > 1 for iv in ivs), "every interval has processes")

        # show as nobody
        nb = dt.run([exe, "show", "--dump", d], env=env, preexec=drop, timeout=60)
        chk.eq(nb.rc, 0, "show --dump as nobody\n%s" % nb.describe())
        chk.check(rt.sanitizer_report(nb.err) is None, "show as nobody: %s" % rt.sanitizer_report(nb.err))
        nlines = [l for l in nb.out.splitlines() if l.startswith("{")]
        chk.eq(len(nlines), len(ivs), "intervals read by show --dump as nobody and as root")

        # a directory nobody cannot write: created by root, 0755
        ro = os.path.join(tmp, "rootonly")
        os.mkdir(ro, 0o755)
        for target, why in ((os.path.join(ro, "rec"), "inside a directory of root's"),
                            (ro, "a directory of root's")):
            r = dt.run([exe, "-D", target, "-i", "1s"], env=env, preexec=drop, timeout=20)
            lines = [l for l in (r.err + r.out).splitlines() if l.strip()]
            chk.eq(r.rc, 1, "-D %s (%s) as nobody: exit status\n%s" % (target, why, r.describe()))
            chk.check(len(lines) == 1 and target in lines[0] and "ermission denied" in lines[0],
                      "-D %s (%s) as nobody: one line naming it and the reason: %r" % (target, why, lines))
        chk.eq(os.listdir(ro), [], "nothing created in the directory nobody cannot write")
        st.no_children_left(chk, "record-notroot")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
