# SPDX-License-Identifier: GPL-2.0-or-later
"""The dispatcher: `diag stack ...` runs diag-stack; `diag` lists the verbs; an unknown
verb is a usage error."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def group_tids(proc):
    return sorted(tuple(sorted(g.get("tids") or [])) for g in (proc or {}).get("groups", []))


def main():
    dt.setup(__doc__)
    diag = dt.need_path("diag")
    stack = dt.need_path("diag_stack")
    env = dt.tool_env()
    # In the build tree the tools are in sibling directories: let diag find diag-stack.
    env["PATH"] = os.path.dirname(stack) + os.pathsep + env.get("PATH", "")
    chk = dt.Checker("diag-dispatch")

    r = dt.run([diag], env=env)
    chk.eq(r.rc, 0, "`diag` alone: exit status (%s)" % r.err.strip())
    chk.check(any(l.split()[:1] == ["stack"] for l in r.out.splitlines()),
              "`diag` lists the verb stack:\n%s" % r.out)
    r = dt.run([diag, "nosuchverb"], env=env)
    chk.eq(r.rc, 2, "`diag nosuchverb`: exit status")
    chk.check(r.err.strip(), "`diag nosuchverb`: says something on stderr")
    r = dt.run([diag, "stack", "--help"], env=env)
    chk.check(r.rc == 0 and "diag-stack" in r.out, "`diag stack --help`: %s" % r.describe())
    r = dt.run([diag, "stack", "--no-such-option"], env=env)
    chk.eq(r.rc, 2, "`diag stack --no-such-option`: exit status passed through")

    with dt.Fixture(["--roles", "pipe,sleep,idle", "--idle", 3]) as fx:
        a = dt.run([diag, "stack", "-J", fx.pid], env=env)
        b = dt.run([stack, "-J", fx.pid], env=env)
        chk.eq(a.rc, b.rc, "`diag stack` vs `diag-stack`: exit status")
        pa, pb = dt.process_of(a.json(chk), fx.pid), dt.process_of(b.json(chk), fx.pid)
        chk.check(pa is not None and pb is not None, "both outputs show the process")
        if pa and pb:
            chk.eq(sorted(dt.threads_of(pa)), fx.tids(), "`diag stack` tids")
            chk.eq(group_tids(pa), group_tids(pb), "`diag stack` vs `diag-stack`: groups")
            chk.eq({k: v for k, v in pa.items() if k in ("pid", "comm", "exe", "threads_total")},
                   {k: v for k, v in pb.items() if k in ("pid", "comm", "exe", "threads_total")},
                   "`diag stack` vs `diag-stack`: process fields")
        r = dt.run([diag, "stack", "-t", fx.tid("sleeper"), fx.pid], env=env)
        chk.check(r.rc == 0 and "fix_sleeper" in r.out, "`diag stack -t SLEEPER PID`: %s" % r.describe())
    chk.finish()


if __name__ == "__main__":
    main()
