# SPDX-License-Identifier: GPL-2.0-or-later
"""The dispatcher: `diag stack ...` runs diag-stack, `diag shm ...` and `diag shmdump ...`
run shmdump; `diag` lists the verbs; an unknown verb is a usage error; `diag demo
--help` describes the demo without starting it."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def group_tids(proc):
    return sorted(tuple(sorted(g.get("tids") or [])) for g in (proc or {}).get("groups", []))


def check_shm(chk, diag, shmdump, env):
    """shmdump is a verb like the others, by two names: `diag shm`, `diag shmdump`."""
    r = dt.run([diag], env=env)
    line = [l for l in r.out.splitlines() if l.split()[:1] == ["shm"]]
    chk.check(line and len(line[0].split()) > 2,
              "`diag` lists the verb shm with a description:\n%s" % r.out)
    want = dt.run([shmdump, "--help"], env=env)
    for verb in ("shm", "shmdump"):
        r = dt.run([diag, verb, "--help"], env=env)
        chk.check(r.rc == 0 and r.out == want.out and want.out,
                  "`diag %s --help` is shmdump's help: %s" % (verb, r.describe()))
        r = dt.run([diag, verb, "--no-such-option"], env=env)
        chk.check(r.rc == 2 and r.err.startswith("shmdump:"),
                  "`diag %s --no-such-option`: shmdump's usage error (exit 2, "
                  "'shmdump:' on stderr): %s" % (verb, r.describe()))

    # a real segment, listed and decoded through the dispatcher as by shmdump
    key = 0x5d000000 | (os.getpid() & 0xffffff)
    seg = dt.SysvSegment(key)
    with seg as shmid:
        if shmid is None:
            dt.log("%s: the segment part is not checked" % seg.error)
            return
        cols = ["-J", "-o", "NAME,ID,KEY,SIZE"]
        a = dt.run([diag, "shm"] + cols, env=env)
        b = dt.run([shmdump] + cols, env=env)
        name = "key:%#x" % key
        segs = [s for s in ((a.json(chk) or {}).get("segments") or []) if s.get("id") == shmid]
        chk.check(a.rc in (0, 4) and segs and segs[0].get("name") == name and segs[0].get("size") == 4096,
                  "`diag shm -J` lists segment %s (id %d, 4096 bytes): %s" % (name, shmid, a.describe()))
        chk.eq(a.rc, b.rc, "`diag shm` vs `shmdump`: exit status")
        for verb in ("shm", "shmdump"):
            r = dt.run([diag, verb, "-J", "id:%d" % shmid], env=env)
            s = dt.run([shmdump, "-J", "id:%d" % shmid], env=env)
            chk.check(r.rc == s.rc and r.json(chk) == s.json(chk),
                      "`diag %s -J id:%d` is shmdump's document:\n%s\n--- shmdump:\n%s"
                      % (verb, shmid, r.describe(), s.describe()))

def check_demo_args(chk, diag, env):
    """`diag demo --help` describes the demo and starts nothing; an argument is a usage error."""
    r = dt.run([diag, "demo", "--help"], env=env, timeout=10)
    chk.check(r.rc == 0 and "diag demo" in r.out and "$ diag chain" not in r.out,
              "`diag demo --help` prints the demo's usage and runs nothing: %s" % r.describe())
    r = dt.run([diag, "demo", "extra"], env=env, timeout=10)
    chk.check(r.rc == 2 and "no arguments" in r.err and "$ diag chain" not in r.out,
              "`diag demo extra`: a usage error (exit 2): %s" % r.describe())


def main():
    dt.setup(__doc__, "shmdump")
    diag = dt.need_path("diag")
    stack = dt.need_path("diag_stack")
    shmdump = dt.need_path("shmdump")
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
    check_shm(chk, diag, shmdump, env)
    check_demo_args(chk, diag, env)

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
