# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top's 'g' (fold by command line) on a fork explosion that grows: forkpool.py
(a Python parent and its ProcessPoolExecutor of forked workers, all with the same
command line, run through a link of a name of the test's own) started three times,
one after the other, with diag-top at -d 1, filtered to that name and folded. After
each start the one group row's xN grows and equals the number of processes with
that command line in /proc; its total PSS is within 5% of the sum of the members'
Pss in /proc/PID/smaps_rollup."""
import os
import re
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402
import toptest as tt  # noqa: E402

WORKERS = 3
STARTS = 3


def members(cmd):
    """Pids whose command line is cmd (not zombies)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and tt.cmdline(int(d)) == cmd and dt.task_state(int(d), int(d)) not in ("Z", None):
            out.append(int(d))
    return sorted(out)


def group_pss(row):
    """The group row's total PSS: in its RSS column (as the help screen says), or a
    size after "PSS" on the row; None when neither."""
    m = re.search(r"PSS[\s:=]*([\d.]+[KMGT]?)", row["line"])
    return tt.parse_bytes(m.group(1) if m else row.get("RSS"))


def main():
    tt.setup(__doc__, "forkpool")
    python = dt.need_debian_python()
    dt.set_subreaper()
    chk = dt.Checker("top-group")
    tmp = tempfile.mkdtemp(prefix="diag-top-group.", dir="/tmp")
    fixtures = []
    try:
        run(chk, python, tmp, fixtures)
    finally:
        for fx in fixtures:
            fx.close()
        shutil.rmtree(tmp, ignore_errors=True)
        dt.reap_orphans()
    chk.finish()


def run(chk, python, tmp, fixtures):
    name = "toppool%d.py" % os.getpid()
    script = os.path.join(tmp, name)
    os.symlink(os.path.realpath(dt.paths.forkpool or st.fixture_script("forkpool.py")), script)
    args = ["--workers", WORKERS, "--mib", 8, "--dirty-mib", 2, "--timeout", 300]
    cmd = " ".join([python, script] + [str(a) for a in args])
    with tt.Screen(["-d", "1"], width=200, height=50) as s:
        if not chk.check(s.wait_until(lambda l: tt.header_line(l)[0] is not None, 15),
                         "the column line appears\n" + s.describe()):
            return
        s.text("/")
        s.text(name)
        s.keys("Enter")
        s.keys("g")
        counts = []
        for i in range(STARTS):
            fx = st.PyFixture(python, script, args, ready_timeout=120, term_timeout=5)
            fixtures.append(fx)
            fx.__enter__()
            want = members(cmd)
            time.sleep(2.2)     # a refresh begun after READY: the workers done dirtying their pages
            chk.eq(len(want), (i + 1) * (WORKERS + 1), "start %d: processes with the pool's command line" % (i + 1))

            def grouped(lines):
                rows = tt.parse_rows(lines)
                return len(rows) == 1 and rows[0]["count"] == len(want)
            lines = s.wait_until(grouped, 10) or s.capture()
            rows = tt.parse_rows(lines)
            if not chk.check(len(rows) == 1, "start %d: folded and filtered, one row (got %d)\n%s"
                             % (i + 1, len(rows), s.describe())):
                continue
            now = members(cmd)
            chk.eq(rows[0]["count"], len(now), "start %d: the group row's count against /proc" % (i + 1))
            counts.append(rows[0]["count"])
            pss = group_pss(rows[0])
            total = sum(tt.pss(p) or 0 for p in now)
            chk.check(pss is not None and abs(pss - total) <= 0.05 * total,
                      "start %d: the group's total PSS %r within 5%% of the members' smaps_rollup sum %d\n%s"
                      % (i + 1, pss, total, rows[0]["line"]))
        chk.check(len(counts) == STARTS and all(a < b for a, b in zip(counts, counts[1:])),
                  "the group row's count grows between refreshes: %s" % counts)
        # unfolded again: one row a member
        s.keys("g")
        lines = s.wait_until(lambda l: len(tt.parse_rows(l)) == len(members(cmd)), 5) or s.capture()
        chk.eq(sorted(r["pid"] for r in tt.parse_rows(lines)), members(cmd), "'g' again: one row a process")
        s.keys("q")
        chk.eq(s.exited(), 0, "diag-top's exit status after q")


if __name__ == "__main__":
    main()
