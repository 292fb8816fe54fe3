# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap does no harm to its own run and does not count it as an incident. A shell
script starts diag-snap two seconds after it began waiting for it (so the shell is
blocked in wait4 for longer than the stuck threshold), beside a pipe reader whose
writer answers after a few seconds (a short wait, not a stuck chain). In the bundle:
no stacks/ file and no chain node is of the test, the shell, diag-snap or any child of
diag-snap; every chain listed starts at a thread blocked at least the documented 1 s;
and a real stuck chain (chainfix flock_cycle: two processes each waiting for the
other's flock, blocked for more than the threshold) is listed, as a deadlock, and its
processes are stacked. Needs root (to read every process's system call)."""
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402

STUCK_MIN_MS = 1000     # docs/diag-snap-thresholds.md, "stuck"
MAX_STACKS = 8          # diag-snap(1): at most 8 stacks
TOOLS = {"diag-chain", "diag-locks", "diag-fds", "shmdump", "diag-stack", "diag-sample", "diag-core", "diag-snap"}

SCRIPT = """#!/bin/sh
# A pipe reader whose writer answers in 4 s: blocked, but not for long when looked at.
sh -c 'sleep 4; echo done' | cat > /dev/null &
echo "SHELL $$"
# The shell waits (wait4) from now on; diag-snap starts 2 s later as its child.
( sleep 2; exec "$1" -o "$2" --timeout 5s ) &
echo "SNAP $!"
wait $!
echo "RC $?"
wait
"""


def ancestors(pid):
    """pid and its parents, up to pid 1."""
    out = []
    while pid > 0 and len(out) < 64:
        out.append(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def descendants(procs, root):
    """Pids below root in processes.json (pid -> ppid)."""
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        for q, pp in procs.items():
            if pp == p and q not in out:
                out.add(q)
                todo.append(q)
    return out


def main():
    st.setup(__doc__)
    snap = dt.need_path("diag_snap")
    dt.need_path("chainfix")
    dt.need_root("diag-snap reads every process's system call and stacks stuck ones")
    dt.set_subreaper()
    chk = dt.Checker("snap-self")
    with tempfile.TemporaryDirectory(prefix="diag-snap-self.") as tmp, \
            dt.KVFixture("chainfix", ["--case", "flock_cycle"], ready_timeout=20) as fx:
        cyc = fx.fact("cycle")
        p1, p2 = cyc["P1"], cyc["P2"]
        script = os.path.join(tmp, "run.sh")
        with open(script, "w") as f:
            f.write(SCRIPT)
        os.chmod(script, 0o700)
        out = os.path.join(tmp, "bundle")
        # the fixture's waits are older than the threshold by the time diag-chain runs
        time.sleep(STUCK_MIN_MS / 1000.0)
        r = dt.run(["/bin/sh", script, snap, out], timeout=60)
        facts = dict(l.split(None, 1) for l in r.out.splitlines() if " " in l)
        chk.check(facts.get("RC") in ("0", "4"), "diag-snap wrote a bundle (exit 0 or 4)\n%s" % r.describe())
        idx = st.check_bundle(chk, out, "self")
        if idx is None:
            chk.finish()
        shell, snap_pid = int(facts["SHELL"]), int(facts["SNAP"])

        procs_doc = st.load_json(os.path.join(out, "processes.json")) or {}
        procs = {p["pid"]: p["ppid"] for p in procs_doc.get("processes", [])}
        comms = {p["pid"]: p.get("command", "") for p in procs_doc.get("processes", [])}
        own = {shell, snap_pid} | set(ancestors(os.getpid())) | descendants(procs, snap_pid)
        chk.check(len(descendants(procs, snap_pid)) >= 1,
                  "processes.json shows diag-snap's children (ppid %d): the lineage check has something to check"
                  % snap_pid)
        dt.log("own run: shell %d, diag-snap %d, %d children; ancestors %s"
               % (shell, snap_pid, len(descendants(procs, snap_pid)), ancestors(os.getpid())))

        # no stack of the own run
        stacks = sorted(int(n[:-5]) for n in os.listdir(os.path.join(out, "stacks"))
                        if n.endswith(".json")) if os.path.isdir(os.path.join(out, "stacks")) else []
        for pid in stacks:
            chk.check(pid not in own, "stacks/%d.json is not of diag-snap's own run (%s)"
                      % (pid, comms.get(pid, "?")))
        chk.check(len(stacks) <= MAX_STACKS, "at most %d stacks: %s" % (MAX_STACKS, stacks))

        # no chain of the own run; every chain stuck at least the threshold
        chains = (st.load_json(os.path.join(out, "chains.json")) or {}).get("chains")
        if not chk.check(isinstance(chains, list), "chains.json has a chains list"):
            chk.finish()
        cycle = None
        for c in chains:
            pids = {n.get("pid") for n in c.get("nodes", []) if n.get("kind") == "thread"}
            pids |= {t.get("pid") for t in c.get("threads", [])}
            for pid in pids & own:
                chk.fail("a chain goes through diag-snap's own run: pid %s (%s), verdict %r"
                         % (pid, comms.get(pid, "?"), c.get("verdict")))
            for n in c.get("nodes", []):
                chk.check(n.get("kind") != "thread" or os.path.basename(str(comms.get(n.get("pid"), "")).split(" ")[0])
                          not in TOOLS or n.get("pid") in (p1, p2),
                          "a chain node is a diagkit tool: %r" % n)
            start = c["nodes"][0]
            chk.check(start.get("blocked_ms") is not None and start["blocked_ms"] >= STUCK_MIN_MS,
                      "chain of pid %s starts at a thread blocked >= %d ms: %r"
                      % (start.get("pid"), STUCK_MIN_MS, start.get("blocked_ms")))
            if {p1, p2} <= pids and c.get("deadlock"):
                cycle = c
        chk.check(cycle is not None, "the flock cycle of pids %d and %d is listed as a deadlock" % (p1, p2))

        # the stuck chain's processes are stacked (unless chains ranked before it
        # used up the budget: deadlocks rank first, so only another deadlock can)
        if len(stacks) < MAX_STACKS:
            parts = {pt.get("name"): pt for pt in (st.load_json(os.path.join(out, "index.json")) or {}).get("parts", [])}
            for pid in (p1, p2):
                # or its diag-stack ran out of its budget on a loaded machine: then the
                # index must say so (a part killed at its deadline leaves no file)
                part = parts.get("diag-stack %d" % pid) or {}
                chk.check(pid in stacks or part.get("status") == "timed-out",
                          "the deadlocked pid %d is stacked, or its diag-stack timed out per the index "
                          "(stacks: %s; its part: %s)" % (pid, stacks, part))
        else:
            chk.check(p1 in stacks or p2 in stacks,
                      "the deadlock is stacked (all %d stacks taken: %s)" % (MAX_STACKS, stacks))
        for pid in stacks:
            doc = st.load_json(os.path.join(out, "stacks", "%d.json" % pid))
            chk.check(doc is not None, "stacks/%d.json parses" % pid)
        summary = dt.read_file(os.path.join(out, "summary.txt")) or ""
        chk.check("deadlock" in summary, "summary.txt names the deadlock:\n%s" % summary)
        # the front page names the root: the first chain's verdict, which is the cycle
        line = next((l for l in summary.splitlines() if "wait chains:" in l), "")
        first = (chains[0].get("verdict") if chains and isinstance(chains[0], dict) else None) or "?"
        chk.check(first in line, "summary.txt's chain line %r holds the first chain's verdict %r" % (line, first))
        chk.check(str(p1) in line and str(p2) in line,
                  "summary.txt's chain line %r names both processes of the cycle, %d and %d" % (line, p1, p2))
    chk.finish()


if __name__ == "__main__":
    main()
