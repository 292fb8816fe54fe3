# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap on page-cache thrash: rereader.py (Debian's python3.11) maps a 256 MiB
file on a real disk with MADV_RANDOM and reads every page again and again, in a
memory cgroup of its own limited to 64 MiB, so that every pass faults the file in
from disk (the file is written, synced and dropped from the page cache first). The
test reads the reader's majflt (/proc/PID/stat) and the cgroup's pgmajfault
(memory.stat) every 10 ms around the bundle. The bundle's major faults/s of the
process (processes.json, top.txt) and of the cgroup (cgroups.json) must be within
25 % of the oracle's rates over spans as long as diag-snap's window within the run,
the cgroup at its limit; summary.txt must call the cgroup's state page-cache thrash
and name the process for its major faults. Needs root and a memory controller."""
import os
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402

MIB = 1 << 20
LIMIT = 64 * MIB
FILE = 256 * MIB
TOL = 0.25


def majflt(pid):
    s = dt.task_stat(pid, pid)
    return int(s[2][8]) if s else None      # field 12, majflt


def cg_majflt(cg):
    for line in (cg.read("memory", "memory.stat") or "").splitlines():
        k, _, v = line.partition(" ")
        if k == "pgmajfault":
            return int(v)
    return None


def write_uncached(path, size):
    """size bytes of random data at path, on disk and out of the page cache."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        block = os.urandom(MIB)
        for _ in range(size // MIB):
            os.write(fd, block)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def scenario(chk, tmp):
    python = dt.need_debian_python()
    script = dt.paths.rereader or st.fixture_script("rereader.py")
    work = tempfile.mkdtemp(prefix="diag-snap-thrash.", dir=st.disk_dir())
    try:
        data = os.path.join(work, "data")
        write_uncached(data, FILE)
        with st.TestCgroup("thrash", memory=LIMIT) as cg:
            fx = st.PyFixture(python, script, [data, "--seconds", 300], cgroup=cg, ready_timeout=120, term_timeout=5)
            with fx:
                pid = fx.fact("READER")["pid"]
                chk.eq(cg.pids(), [pid], "the reader is in the test's cgroup")
                with st.Sampler(lambda: majflt(pid)) as ps, st.Sampler(lambda: cg_majflt(cg)) as cs:
                    b = st.take(chk, tmp, "thrash")
                chk.check(fx.proc.poll() is None, "the reader still runs after the bundle")
                if b:
                    check(chk, b, cg, pid, ps, cs)
    finally:
        for n in os.listdir(work):
            os.unlink(os.path.join(work, n))
        os.rmdir(work)


def check(chk, b, cg, pid, ps, cs):
    p = b.process(pid)
    if chk.check(p and "major_faults_per_s" in p, "processes.json has the reader %d with its major faults/s" % pid):
        rates = ps.rates(b.procs.get("window_ms", 1000) / 1000.0, b.t0, b.t1)
        st.check_rate(chk, p["major_faults_per_s"], rates, TOL, "major faults/s of the reader %d (/proc/PID/stat)" % pid)
    top = b.text("top.txt").split("Top 20 by major faults/s")
    chk.check(len(top) == 2 and any(l.split()[:1] == [str(pid)] for l in top[1].splitlines()[2:7]),
              "top.txt: the reader %d among the first 5 by major faults/s" % pid)
    row = b.cgroup(cg.path)
    if chk.check(row, "cgroups.json has the reader's cgroup %s" % cg.path):
        rates = cs.rates(b.cgroups.get("window_ms", 1000) / 1000.0, b.t0, b.t1)
        st.check_rate(chk, row.get("pgmajfault_per_s"), rates, TOL,
                      "major faults/s of cgroup %s (memory.stat pgmajfault)" % cg.path)
        chk.eq(row.get("memory_limit"), LIMIT, "the cgroup's memory limit")
        dt.log("cgroup %s: memory %s of %s (%s %%)" % (cg.path, row.get("memory_current"), row.get("memory_limit"),
                                                       row.get("memory_pct")))
        chk.check((row.get("memory_pct") or 0) > 90, "the cgroup is at its limit: %r %%" % row.get("memory_pct"))
    lines = b.findings("cgroup %s:" % cg.path)
    dt.log("summary: %r" % lines)
    chk.check(any("page-cache thrash" in l for l in lines),
              "summary.txt calls cgroup %s's state page-cache thrash: %r\n%s" % (cg.path, lines, b.summary))
    lines = b.findings("pid %d " % pid)
    dt.log("summary: %r" % lines)
    chk.check(any("major faults/s" in l for l in lines), "summary.txt names the reader %d for its major faults: %r"
              % (pid, lines))


if __name__ == "__main__":
    st.run_checks(__doc__, "snap-thrash", scenario)
