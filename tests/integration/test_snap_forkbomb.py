# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap on a fork explosion: forkpool.py (a Python parent holding 200 MiB hands
tasks to a ProcessPoolExecutor of 10 forked workers, each dirtying 16 MiB of its copy)
in a memory cgroup of its own with a limit the pool nearly fills. A bundle taken while
every worker lives must have the pool as one group by command line, with as many
members as the fixture and /proc count, its PSS and its private / shared split within
10 % of /proc/PID/smaps_rollup summed by the test around the run, and a summary line
naming the group, its parent and its cgroup. Then every worker dirties 64 MiB more:
the kernel's OOM killer ends some (SIGKILL, as the fixture, their parent, sees), the
broken pool ends the rest; a bundle taken after must name each killed pid in its OOM
history as the kernel log (/dev/kmsg, read by the test) does, count the cgroup's
kills, and keep only the survivors in the group. Needs root and a memory controller."""
import errno
import os
import re
import signal
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402

WORKERS = 10
DATA_MIB = 200
DIRTY_MIB = 16
GROW_MIB = 64
# the pool holds about DATA_MIB + WORKERS * (DIRTY_MIB + 2) MiB: most of this
LIMIT = 448 << 20
TOL = 0.10
MIB = float(1 << 20)


def cmdline(pid):
    t = dt.read_file("/proc/%d/cmdline" % pid)
    return " ".join(t.split("\0")).strip() if t else None


def members(cmd):
    """Pids of processes whose command line is cmd (/proc, as diag-snap groups them)."""
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and cmdline(int(p)) == cmd)


def pss_split(pids):
    """(PSS, private, shared = PSS - private) bytes summed over pids from smaps_rollup."""
    pss = priv = 0
    for p in pids:
        r = st.smaps_rollup(p) or {}
        pss += r.get("Pss", 0) * 1024
        priv += (r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) * 1024
    return pss, priv, pss - priv


def kmsg_oom_kills():
    """[(pid, comm)] of the "Killed process" records still in the kernel log, oldest
    first (read without consuming it)."""
    out = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        dt.log("/dev/kmsg: %s" % e)
        return None
    try:
        while True:
            try:
                rec = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:
                    continue
                raise
            text = rec.partition(";")[2].split("\n")[0]
            if "Killed process " in text:
                w = text.split("Killed process ", 1)[1].split()
                out.append((int(w[0]), w[1].strip("(),")))
    finally:
        os.close(fd)
    return out


def during(chk, tmp, fx, cg, parent, workers):
    cmd = cmdline(parent)
    before_pids = members(cmd)
    before = pss_split(before_pids)
    b = st.take(chk, tmp, "during")
    after_pids = members(cmd)
    after = pss_split(after_pids)
    chk.eq(before_pids, after_pids, "during: the pool's processes (/proc) did not change while diag-snap ran")
    chk.eq(sorted([parent] + workers), after_pids, "during: the fixture's pids are those /proc has with its command line")
    if not b:
        return
    g = b.group_of(parent)
    if not chk.check(g, "during: a group in processes.json holds the parent %d" % parent):
        return
    chk.eq(g.get("command"), cmd, "during: the group's command line")
    chk.eq(g.get("count"), WORKERS + 1, "during: the group counts the workers and their parent (fixture: %d workers)"
           % len(workers))
    chk.eq(g.get("count"), len(after_pids), "during: the group's count against /proc's")
    chk.eq(sorted(g.get("pids", [])), after_pids, "during: the group's pids")
    chk.eq(g.get("parent"), parent, "during: the group's common parent")
    chk.eq(g.get("memory_cgroup"), cg.path, "during: the group's memory cgroup")
    chk.eq(g.get("memory_limit"), LIMIT, "during: the limit of the group's memory cgroup")
    for key, x, y in zip(("pss_bytes", "private_bytes", "shared_bytes"), before, after):
        got, want = g.get(key), (x + y) / 2
        dt.log("during: group %s %.1f MiB, smaps_rollup summed %.1f MiB (before %.1f, after %.1f)"
               % (key, (got or 0) / MIB, want / MIB, x / MIB, y / MIB))
        chk.check(got is not None and abs(got - want) <= TOL * want,
                  "during: group %s %r not within %d %% of smaps_rollup's %d" % (key, got, TOL * 100, want))
    # each worker's own copy: what it dirtied is private to it, the list stays shared
    for w in fx.facts.get("WORKER", []):
        p = b.process(w["pid"])
        if chk.check(p and "private_bytes" in p, "during: worker %d in processes.json with its PSS" % w["pid"]):
            chk.check(p["private_bytes"] >= w["dirtied_bytes"],
                      "during: worker %d private %d bytes, it dirtied %d" % (w["pid"], p["private_bytes"], w["dirtied_bytes"]))
            chk.check(p["shared_bytes"] >= (DATA_MIB - DIRTY_MIB) * (1 << 20) * 0.9,
                      "during: worker %d shares %d bytes of the parent's list" % (w["pid"], p["shared_bytes"]))
    # groups.txt: COUNT PSS PRIVATE SHARED FIRST LAST PARENT COMMAND, one line per group
    rows = [l.split(None, 7) for l in b.text("groups.txt").splitlines()[1:]]
    rows = [r for r in rows if len(r) == 8 and r[6] == str(parent) and r[7] == cmd]
    if chk.check(len(rows) == 1, "during: groups.txt has one line for the pool (parent %d)" % parent):
        chk.eq(int(rows[0][0]), len(after_pids), "during: groups.txt's count of the pool")
        dt.log("during: groups.txt: %s" % " ".join(rows[0]))
    lines = b.findings('%d processes "' % len(after_pids))
    lines = [l for l in lines if "(parent %d)" % parent in l]
    dt.log("during: summary line: %r" % lines)
    if chk.check(len(lines) == 1, "during: one summary line for the group of %d (parent %d)\n%s"
                 % (len(after_pids), parent, b.summary)):
        chk.check(cg.path in lines[0], "during: the group's line names its memory cgroup: %r" % lines[0])
        chk.check(re.search(r"hold \S+ private \(PSS \S+, \d+ % of the \S+ limit", lines[0]),
                  "during: the group's line gives its private memory, its PSS and its share of the limit: %r" % lines[0])
    row = b.cgroup(cg.path)
    if chk.check(row, "during: cgroups.json has the fixture's cgroup %s" % cg.path):
        chk.eq(row.get("procs"), len(after_pids), "during: processes in the cgroup")
        chk.eq(row.get("memory_limit"), LIMIT, "during: the cgroup's memory limit")


def after(chk, tmp, fx, cg, parent, workers, killed, kmsg_before):
    b = st.take(chk, tmp, "after")
    left = members(cmdline(parent))
    chk.eq(left, [parent], "after: only the parent is left (/proc)")
    if not b:
        return
    g = b.group_of(parent)
    if chk.check(g, "after: a group holds the parent"):
        chk.eq(g.get("count"), len(left), "after: the group counts what /proc has")
    chk.eq([w for w in workers if b.process(w)], [], "after: no worker in processes.json")
    events = b.oom.get("events", [])
    named = {e.get("pid"): e for e in events if e.get("killed")}
    kmsg = [k[0] for k in (kmsg_oom_kills() or []) if k[0] in workers and k not in kmsg_before]
    dt.log("after: SIGKILLed (the fixture saw) %s; the kernel log says %s; oom.json names %s"
           % (killed, kmsg, sorted(p for p in named if p in workers)))
    chk.eq(sorted(kmsg), sorted(killed), "after: the kernel log's victims are the workers that died of SIGKILL")
    for pid in killed:
        e = named.get(pid)
        if chk.check(e, "after: oom.json names killed worker %d" % pid):
            chk.eq(e.get("comm"), "python3.11", "after: the command of OOM victim %d" % pid)
            chk.check(e.get("memcg_oom"), "after: the kill of %d was a memory cgroup's" % pid)
            chk.eq(e.get("constraint"), "CONSTRAINT_MEMCG", "after: the constraint of the kill of %d" % pid)
            chk.check(str(e.get("task_memcg", "")).endswith(cg.path),
                      "after: the victim %d's memory cgroup %r is the fixture's %s" % (pid, e.get("task_memcg"), cg.path))
            chk.check(e.get("anon_rss_kb", 0) * 1024 >= DIRTY_MIB << 20, "after: anon-rss of %d: %r" % (pid, e))
        chk.check(any(l.split()[2:3] == [str(pid)] for l in b.text("oom.txt").splitlines()),
                  "after: oom.txt has a line for %d" % pid)
    spared = [w for w in workers if w not in killed]
    chk.eq([p for p in spared if p in named], [], "after: workers ended by SIGTERM are not OOM victims")
    chk.check((b.oom.get("vmstat_oom_kill") or 0) >= len(killed), "after: /proc/vmstat oom_kill counts the kills")
    if killed:
        last = kmsg[-1] if kmsg else killed[-1]
        lines = b.findings("OOM killer:")
        chk.check(any("pid %d" % last in l for l in lines), "after: the summary's OOM line names the last victim %d: %r"
                  % (last, lines))
        lines = b.findings("cgroup %s: " % cg.path)
        chk.check(any("%d OOM kills" % len(killed) in l for l in lines),
                  "after: the summary counts the cgroup's %d OOM kills: %r" % (len(killed), lines))
    row = b.cgroup(cg.path)
    if chk.check(row, "after: cgroups.json has %s" % cg.path):
        chk.eq(row.get("oom_kill"), len(killed), "after: the cgroup's oom_kill counter")


def main():
    st.setup(__doc__)
    python = dt.need_debian_python()
    dt.need_path("diag_snap")
    script = dt.paths.forkpool or st.fixture_script("forkpool.py")
    dt.set_subreaper()
    chk = dt.Checker("snap-forkbomb")
    with tempfile.TemporaryDirectory(prefix="diag-snap-forkbomb.") as tmp, \
            st.TestCgroup("forkbomb", memory=LIMIT) as cg:
        kmsg_before = kmsg_oom_kills() or []
        fx = st.PyFixture(python, script, ["--workers", WORKERS, "--mib", DATA_MIB, "--dirty-mib", DIRTY_MIB,
                                           "--grow-mib", GROW_MIB], cgroup=cg, ready_timeout=120, term_timeout=5)
        with fx:
            parent = fx.fact("PARENT")["pid"]
            workers = sorted(w["pid"] for w in fx.facts.get("WORKER", []))
            chk.eq(len(set(workers)), WORKERS, "the fixture has %d workers, one task each" % WORKERS)
            chk.eq(cg.pids(), sorted([parent] + workers), "the pool is in the test's cgroup")
            during(chk, tmp, fx, cg, parent, workers)
            os.kill(parent, signal.SIGUSR1)
            gone = {}
            for words in fx.read_lines("DONE", timeout=120):
                if words and words[0] == "GONE":
                    e = st.kv(words)
                    gone[e["pid"]] = e["exitcode"]
            chk.eq(sorted(gone), workers, "every worker is gone after growing past the limit")
            killed = sorted(p for p, c in gone.items() if c == -signal.SIGKILL)
            dt.log("workers' exit codes: %s" % gone)
            if chk.check(killed, "the OOM killer ended some worker (exit codes %s)" % gone):
                after(chk, tmp, fx, cg, parent, workers, killed, kmsg_before)
        st.no_children_left(chk, "after the fixture", wait=5.0)
    chk.finish()


if __name__ == "__main__":
    main()
