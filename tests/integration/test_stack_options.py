# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack options: grouping, thread selection, frame cap, --no-stop, --no-kernel,
--no-inline, table mode, help and usage errors, and a few text-output smoke checks."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

COLUMNS = ["TID", "COMM", "STATE", "CPU", "SYSCALL", "WCHAN", "BLOCKED", "FUNC", "FRAMES", "PID", "KSTACK"]


def shown_tids(proc):
    return sorted(dt.threads_of(proc))


def main():
    dt.setup(__doc__)
    chk = dt.Checker("stack-options")
    roles = "mutex,pipe,sleep,recurse,inlined,idle,heartbeat"
    with dt.Fixture(["--roles", roles, "--idle", 3, "--depth", 20]) as fx:
        pid = fx.pid
        all_tids = fx.tids()

        def json_run(*args, want_rc=0):
            r = dt.diag_stack(*args)
            chk.eq(r.rc, want_rc, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
            doc = r.json(chk)
            proc = dt.process_of(doc, pid)
            if doc is not None:
                chk.check(proc is not None, "`%s`: process %d in output" % (r.cmd(), pid))
            return proc

        # --no-group: one group per thread.
        proc = json_run("-J", "--no-group", pid)
        if proc:
            groups = proc.get("groups", [])
            chk.eq(len(groups), len(all_tids), "--no-group: number of groups")
            chk.check(all(g.get("count") == 1 and len(g.get("tids", [])) == 1 for g in groups),
                      "--no-group: every group has one thread")
            chk.eq(shown_tids(proc), all_tids, "--no-group: tids")

        # -t: only the listed threads.
        reader, sleeper = fx.tid("pipe_reader"), fx.tid("sleeper")
        proc = json_run("-J", "-t", reader, pid)
        if proc:
            chk.eq(shown_tids(proc), [reader], "-t %d: tids shown" % reader)
            chk.eq(proc.get("threads_total"), len(all_tids), "-t: threads_total still counts all")
        proc = json_run("-J", "--tid=%d,%d" % (reader, sleeper), pid)
        if proc:
            chk.eq(shown_tids(proc), sorted([reader, sleeper]), "--tid %d,%d: tids shown" % (reader, sleeper))

        # A TID given positionally resolves to its process and shows that thread.
        proc = json_run("-J", sleeper)
        if proc:
            chk.check(sleeper in shown_tids(proc), "positional TID %d shown (got %s)" % (sleeper, shown_tids(proc)))
            chk.eq(proc.get("pid"), pid, "positional TID: process pid")

        # --frames 5: capped, truncated set where the stack was deeper.
        proc = json_run("-J", "--frames", "5", pid)
        if proc:
            for g in proc.get("groups", []):
                n = len(g.get("frames", []))
                chk.check(n <= 5, "--frames 5: group %s has %d frames" % (g.get("tids"), n))
            rec = dt.threads_of(proc).get(fx.tid("recurse"))
            if chk.check(rec, "--frames 5: recurse thread shown"):
                g = rec[0][1]
                chk.eq(len(g.get("frames", [])), 5, "--frames 5: recurse frames")
                chk.eq(g.get("truncated"), True, "--frames 5: recurse truncated")

        # Without a cap the recursion is deeper than 5 and not truncated at 64+.
        proc = json_run("-J", "--frames", "200", "-t", fx.tid("recurse"), pid)
        if proc:
            g = proc["groups"][0] if proc.get("groups") else {}
            chk.check(dt.frame_functions(g).count("fix_recurse") >= 20, "--frames 200: 20 fix_recurse frames")
            chk.eq(g.get("truncated"), False, "--frames 200: truncated")

        # --no-stop: /proc only.
        proc = json_run("-J", "--no-stop", pid)
        if proc:
            chk.eq(proc.get("stopped"), False, "--no-stop: stopped")
            chk.check(all(not g.get("frames") for g in proc.get("groups", [])), "--no-stop: no frames")
            chk.eq(shown_tids(proc), all_tids, "--no-stop: tids")
            t = dt.threads_of(proc).get(reader)
            if t:
                sc = t[0][0].get("syscall") or {}
                chk.eq(sc.get("name"), "read", "--no-stop: pipe_reader syscall")
                chk.eq(dt.syscall_arg(sc, 0), int(fx.roles["pipe_reader"][0]["fd"]), "--no-stop: read fd")
        fx.check_unharmed(chk, "--no-stop")

        # --no-kernel: kernel stacks not read.
        proc = json_run("-J", "--no-kernel", pid)
        if proc:
            ks = [ent[0][0].get("kernel_stack") for ent in dt.threads_of(proc).values()]
            chk.check(all(k is None for k in ks), "--no-kernel: kernel_stack null everywhere")

        # --no-inline: no inlined frames, the outer function remains.
        proc = json_run("-J", "--no-inline", "-t", fx.tid("inlined"), pid)
        if proc and proc.get("groups"):
            frames = proc["groups"][0].get("frames", [])
            chk.check(not any(f.get("inlined") for f in frames), "--no-inline: an inlined frame")
            names = [f.get("function") for f in frames]
            chk.check("fix_inlined_outer" in names and "fix_inlined_inner" not in names,
                      "--no-inline: frames %s" % names)

        # --stack-size accepts a size with a suffix.
        proc = json_run("-J", "--stack-size", "1M", "-t", fx.tid("recurse"), pid)
        if proc and proc.get("groups"):
            chk.check("fix_recurse_thread" in dt.frame_functions(proc["groups"][0]),
                      "--stack-size 1M: recursion fully unwound")

        # Table mode.
        r = dt.diag_stack("-o", "TID,SYSCALL", "-r", "-n", pid)
        chk.eq(r.rc, 0, "exit status of `%s` (%s)" % (r.cmd(), r.err.strip()))
        rows = [l.split(None, 1) for l in r.out.splitlines() if l.strip()]
        chk.eq(len(rows), len(all_tids), "table: one row per thread:\n%s" % r.out)
        got = sorted(int(x[0]) for x in rows if x and x[0].isdigit())
        chk.eq(got, all_tids, "table: tids")
        for x in rows:
            if x and x[0] == str(reader):
                chk.check(len(x) > 1 and x[1].startswith("read"), "table: pipe_reader SYSCALL %r" % x[1:])
        r = dt.diag_stack("-o", "TID,FUNC", "-r", "-n", "-t", fx.tid("sleeper"), pid)
        chk.check(r.rc == 0 and r.out.split()[:1] == [str(sleeper)], "table -t: row %r" % r.out)
        r = dt.diag_stack("-o", "TID,STATE,FUNC,PID", pid)
        lines = r.out.splitlines()
        chk.check(r.rc == 0 and lines and re.match(r"\s*TID\s+STATE\s+FUNC\s+PID\s*$", lines[0]),
                  "table header: %s" % r.describe())
        chk.eq(len(lines), len(all_tids) + 1, "table with header: rows")
        # FRAMES and KSTACK are multi-line cells: count rows by their leading TID.
        r = dt.diag_stack("-o", "TID,FRAMES", pid)
        rows = [l for l in r.out.splitlines()[1:] if re.match(r"\s*\d+\s", l)]  # TID is right-aligned
        chk.eq(sorted(int(l.split()[0]) for l in rows), all_tids, "-o TID,FRAMES: one row per thread")
        chk.check(re.search(r"^\s+fix_pipe_reader\s*$", r.out, re.M) or
                  re.search(r"^%d\s.*fix_pipe_reader" % reader, r.out, re.M),
                  "-o TID,FRAMES: fix_pipe_reader listed:\n%s" % r.out[:2000])
        # Raw mode keeps one line per row (newlines in cells are escaped).
        r = dt.diag_stack("--output-all", "-r", "-n", pid)
        got = []
        for l in r.out.splitlines():
            ids = [int(x) for x in l.split()[:2] if x.isdigit()]  # PID and TID, in some order
            got.append(max(ids) if ids and pid in ids else (ids[0] if ids else None))
        chk.check(r.rc == 0 and sorted(got, key=str) == sorted(all_tids, key=str),
                  "--output-all -r -n: one line per thread: %s" % r.describe())
        r = dt.diag_stack("-H")
        chk.eq(r.rc, 0, "-H exit status")
        listed = [l.split()[0] for l in r.out.splitlines() if l.strip()]
        for c in COLUMNS:
            chk.check(c in listed, "-H: column %s listed" % c)
        r = dt.diag_stack("-o", "TID,NOSUCHCOLUMN", pid)
        chk.check(r.rc in (1, 2) and r.err.strip(), "unknown column: %s" % r.describe())

        # Text output smoke checks (pattern only: addresses and tids vary).
        r = dt.diag_stack(pid)
        chk.eq(r.rc, 0, "exit status of `%s` (%s)" % (r.cmd(), r.err.strip()))
        out = r.out
        frame_re = re.compile(r"^\s+#\d+\s+0x[0-9a-f]+ in \S+", re.M)
        chk.check(frame_re.search(out), "text: frame lines like '  #0  0x... in func'")
        chk.check(re.search(r"^\s+#\d+\s+0x[0-9a-f]+ in fix_pipe_reader\+0x[0-9a-f]+ \(stackfix\) \S*stackfix\.c:\d+",
                            out, re.M),
                  "text: fix_pipe_reader frame with offset, module and file:line")
        chk.check([l for l in out.splitlines() if "fix_inlined_inner" in l and "[inlined]" in l],
                  "text: [inlined] marker on the fix_inlined_inner frame")
        chk.check(not [l for l in out.splitlines() if "fix_inlined_outer" in l and "[inlined]" in l],
                  "text: no [inlined] marker on the fix_inlined_outer frame")
        chk.check(re.search(r"^.*\b%d\b.*\"stackfix\".*\bS\b.*read\(" % reader, out, re.M),
                  "text: pipe_reader line with tid, \"comm\", state and read(")
        chk.check(re.search(r"^.*\b%d\b.*\"stackfix\".*futex\(" % fx.tid("mutex_waiter"), out, re.M),
                  "text: mutex_waiter line with futex(")
        idle = fx.tids("idle")
        header = [l for l in out.splitlines()
                  if all(re.search(r"\b%d\b" % t, l) for t in idle)
                  or "%d-%d" % (min(idle), max(idle)) in l]
        chk.check(header, "text: a group header listing the idle tids %s" % idle)
        if len(chk.failures) and not frame_re.search(out):
            dt.log("text output was:\n" + out[:3000])
        # stackfix.c line of the read() in fix_pipe_reader, as the fixture's source has it.
        r = dt.diag_stack("--source", "-t", reader, pid)
        after = r.out.split("fix_pipe_reader", 1)[-1].split("\n")
        chk.check(r.rc == 0 and len(after) > 1 and "read(a->fd, buf, sizeof(buf))" in after[1],
                  "--source: the line under the fix_pipe_reader frame is its source line "
                  "(tool run from cwd /): %s" % r.describe())
        fx.check_unharmed(chk, "after option runs")

    # Help, version, usage errors: no target needed.
    r = dt.diag_stack("--help")
    chk.eq(r.rc, 0, "--help exit status")
    chk.check("diag-stack" in r.out and "--no-stop" in r.out, "--help text on stdout: %r" % r.out[:200])
    chk.eq(r.err, "", "--help stderr")
    r = dt.diag_stack("-h")
    chk.eq(r.rc, 0, "-h exit status")
    r = dt.diag_stack("--version")
    chk.check(r.rc == 0 and re.search(r"\d+\.\d+", r.out), "--version: %s" % r.describe())
    for args in (["--no-such-option", "1"], [], ["--frames", "abc", "1"], ["--frames"],
                 ["-t"], ["--stack-size", "lots", "1"], ["notapid"]):
        r = dt.diag_stack(*args)
        chk.eq(r.rc, 2, "exit status of `%s`" % r.cmd())
        chk.check("Try 'diag-stack --help'" in r.err, "`%s` stderr: %r" % (r.cmd(), r.err))
        chk.eq(r.out, "", "`%s` stdout" % r.cmd())
    chk.finish()


if __name__ == "__main__":
    main()
