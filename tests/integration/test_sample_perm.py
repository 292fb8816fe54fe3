# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample without privileges (user nobody): on a process of its own it still
samples the on-CPU stacks (perf events on one's own processes are allowed up to
kernel.perf_event_paranoid 2) and reads the waits, and says in one line each what is
missing and why: the system call counts (BPF needs root or CAP_BPF + CAP_PERFMON) and
the kernel frames (paranoid above 1); exit status 4, the rest of the report printed.
On a root-owned process: the states and CPU shares that /proc shows anyone, and one
line saying the stacks need root or the owner. The tool and
the fixture are copied where nobody can run them (the build tree may be under a
directory only root can enter)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

NOBODY = 65534


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Spinner:
    """spinfix run as argv (under setpriv for another user); pid and spinner tid."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
                                  cwd="/")
        line = self.p.stdout.readline().decode(errors="replace")
        m = re.match(r"READY pid=(\d+) tid=(\d+)", line)
        if not m:
            self.close()
            dt.harness_error("spinfix did not start: %r" % line)
        self.pid, self.tid = int(m.group(1)), int(m.group(2))

    def close(self):
        dt.kill_group(self.p)
        self.p.wait()


def main():
    dt.setup(__doc__, "diag_sample", "cpufix", "sysloop", "pysvc", "spinfix")
    dt.need_root("to run diag-sample as another user")
    setpriv = dt.need_program("setpriv")
    paranoid = read_int("/proc/sys/kernel/perf_event_paranoid")
    if paranoid is None or paranoid > 2:
        dt.skip("kernel.perf_event_paranoid is %s: an unprivileged user may not sample even its own processes"
                % paranoid)
    chk = dt.Checker("sample-perm")
    with tempfile.TemporaryDirectory(prefix="diag-sample-perm.") as tmp:
        os.chmod(tmp, 0o755)
        tool = os.path.join(tmp, "diag-sample")
        spin = os.path.join(tmp, "spinfix")
        shutil.copy(dt.need_path("diag_sample"), tool)
        shutil.copy(dt.need_path("spinfix"), spin)
        os.chmod(tool, 0o755)
        os.chmod(spin, 0o755)
        as_nobody = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
        r = dt.run(as_nobody + [tool, "--version"])
        if r.rc != 0:
            dt.skip("user %d cannot run a copy of diag-sample (%s)" % (NOBODY, r.err.strip()[:200]))

        # A process of its own: the report with its stacks, the missing parts named.
        own = Spinner(as_nobody + [spin])
        try:
            r = dt.run(as_nobody + [tool, "-J", "-d", "2s", str(own.pid)], timeout=60)
            chk.eq(r.rc, 4, "own process: exit status 4, a part missing\n%s" % r.describe())
            doc = r.json(chk) or {}
            missing = {m.get("part"): m.get("reason") for m in doc.get("missing", [])}
            chk.check("syscalls" in missing, "own process: the system call counts are a missing part: %r" % missing)
            lines = r.err_lines()
            for part, reason in missing.items():
                chk.check(any(reason in ln for ln in lines), "own process: stderr says %r (%s): %r" % (reason, part, lines))
            chk.eq(len(lines), len(missing), "own process: one stderr line per missing part: %r" % lines)
            if "syscalls" in missing:
                chk.check(re.search(r"root|CAP_BPF", missing["syscalls"]),
                          "own process: the syscalls line says what it needs: %r" % missing["syscalls"])
            if paranoid > 1:
                chk.check("kernel" in missing, "own process: paranoid %d: kernel frames missing: %r" % (paranoid, missing))
            procs = [p for p in doc.get("processes", []) if p.get("pid") == own.pid]
            p = procs[0] if procs else {}
            chk.check(p.get("oncpu_samples", 0) > 0, "own process: on-CPU samples taken: %r" % p.get("oncpu_samples"))
            names = {f.get("function") for s in p.get("stacks", []) for f in s.get("frames", [])}
            chk.check({"spin_a", "spin_b"} & names and "spin_loop" in names,
                      "own process: stacks through spin_loop into spin_a/spin_b: %s" % sorted(n for n in names if n)[:20])
            chk.eq(p.get("syscalls"), None, "own process: no syscalls table without counting")
            chk.check(doc.get("mechanisms", {}).get("syscalls") is None, "own process: no syscalls mechanism")
            kern = [f for s in p.get("stacks", []) for f in s.get("frames", []) if f.get("kernel")]
            if paranoid > 1:
                chk.eq(kern, [], "own process: no kernel frames when not permitted")
            main_t = [t for t in p.get("threads", []) if t.get("tid") == own.pid]
            waits = [w.get("what") for w in (main_t[0].get("waits", []) if main_t else [])]
            chk.check(any((w or "").startswith("read(fd 0") for w in waits),
                      "own process: the main thread's wait (read of stdin) is read from /proc: %r" % waits)
            # the text report: the same lines on stderr, the verdict first on stdout
            r = dt.run(as_nobody + [tool, "-d", "1s", str(own.pid)], timeout=60)
            chk.eq(r.rc, 4, "own process, text: exit status\n%s" % r.describe())
            first = (r.out.splitlines() or [""])[0]
            chk.check(first.startswith("pid %d spinfix: busy loop: tid %d " % (own.pid, own.tid)),
                      "own process, text: the verdict line first: %r" % first)
        finally:
            own.close()

        # A root-owned process: what /proc shows anyone (states, CPU time), and why
        # the stacks and the system calls are missing.
        root = Spinner([spin])
        try:
            r = dt.run(as_nobody + [tool, "-J", "-d", "1s", str(root.pid)], timeout=60)
            chk.eq(r.rc, 4, "root's process: exit status 4, parts missing\n%s" % r.describe())
            doc = r.json(chk) or {}
            missing = {m.get("part"): m.get("reason") for m in doc.get("missing", [])}
            chk.check("owned by uid 0" in (missing.get("oncpu") or ""),
                      "root's process: the on-CPU stacks are missing because of its owner: %r" % missing)
            chk.check("syscalls" in missing, "root's process: no system call counts: %r" % missing)
            chk.eq(len(r.err_lines()), len(missing), "root's process: one stderr line per missing part: %r" % r.err_lines())
            procs = [p for p in doc.get("processes", []) if p.get("pid") == root.pid]
            p = procs[0] if procs else {}
            chk.eq(p.get("stacks"), [], "root's process: no stacks")
            spinner = [t for t in p.get("threads", []) if t.get("tid") == root.tid]
            chk.check(spinner and spinner[0].get("oncpu_pct", 0) + spinner[0].get("runnable_pct", 0) > 50,
                      "root's process: the spinner's CPU share is read from /proc: %r" % spinner)
            st = dt.task_state(root.pid, root.tid)
            chk.check(st in ("R", "S"), "root's process: spinner still running (state %r)" % st)
        finally:
            root.close()
    chk.finish()


if __name__ == "__main__":
    main()
