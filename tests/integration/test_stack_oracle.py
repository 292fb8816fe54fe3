# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack against independent unwinders: for every fixture thread, the sequence of
fix_* functions in diag-stack's frames equals the one gdb (and eu-stack) shows."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

GDB_THREAD = re.compile(r"^Thread \d+ \(.*?LWP (\d+)")
GDB_FRAME = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(")
EU_THREAD = re.compile(r"^TID (\d+):")
EU_FRAME = re.compile(r"^#\d+\s+0x[0-9a-f]+\s+(\S+)")


def parse_bt(text, thread_re, frame_re):
    out, cur = {}, None
    for line in text.splitlines():
        m = thread_re.match(line)
        if m:
            cur = out.setdefault(int(m.group(1)), [])
            continue
        m = frame_re.match(line)
        if m and cur is not None:
            cur.append(m.group(1))
    return out


def main():
    dt.setup(__doc__)
    gdb, eu = dt.which("gdb"), dt.which("eu-stack")
    if not gdb and not eu:
        dt.skip("neither gdb nor eu-stack is installed")
    chk = dt.Checker("stack-oracle")
    # No churn role: its threads differ between two captures. The spinner's pc differs
    # too, but not its fix_* function.
    with dt.Fixture(["--roles", "mutex,pipe,sleep,recurse,inlined,spin,idle,heartbeat",
                     "--depth", 25, "--idle", 3]) as fx:
        r = dt.diag_stack("-J", "--frames", 200, fx.pid)
        chk.eq(r.rc, 0, "exit status of `%s` (%s)" % (r.cmd(), r.err.strip()))
        proc = dt.process_of(r.json(chk), fx.pid)
        if proc is None:
            chk.finish()
        ours = {tid: dt.fix_functions(dt.frame_functions(ent[0][1]))
                for tid, ent in dt.threads_of(proc).items()}
        fx.check_unharmed(chk, "after diag-stack")

        # The oracles stop the target for longer: run them after diag-stack.
        oracles = []
        if gdb:
            o = dt.run([gdb, "-nx", "-batch", "-iex", "set debuginfod enabled off",
                        "-ex", "set pagination off", "-ex", "thread apply all bt",
                        "-p", fx.pid], timeout=60)
            oracles.append(("gdb", o, parse_bt(o.out, GDB_THREAD, GDB_FRAME)))
        if eu:
            o = dt.run([eu, "-i", "-p", fx.pid], timeout=60)
            oracles.append(("eu-stack", o, parse_bt(o.out, EU_THREAD, EU_FRAME)))
        for name, o, bt in oracles:
            if not chk.check(bt, "%s produced no backtrace: %s" % (name, o.describe())):
                continue
            for tid in fx.tids():
                if tid not in bt:
                    chk.fail("%s shows no thread %d" % (name, tid))
                    continue
                want = dt.fix_functions(bt[tid])
                chk.check(want, "%s: no fix_* frame for thread %d: %s" % (name, tid, bt[tid]))
                chk.eq(ours.get(tid), want, "thread %d: fix_* frames of diag-stack vs %s" % (tid, name))
        fx.check_unharmed(chk, "after the oracles")
    chk.finish()


if __name__ == "__main__":
    main()
