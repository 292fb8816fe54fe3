# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-core's options, each checked in the core with gdb and eu-readelf: --method
stop, the fall-back to it when the process cannot fork (a seccomp filter), a core
streamed with -o - through a pipe, --stacks-only (small, every thread's backtrace),
--max-size, the coredump_filter rules (the process's own filter, --shared/--no-shared,
--filter, MADV_DONTDUMP never), and the -J summary against the file; the summary line
on stderr, and none with -q; the progress line on a terminal, none with --no-progress
or off a terminal."""
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

BIG_HEAP_MIB = 256
STACKS_ONLY_MAX = 16 << 20
MAX_SIZE = 32 << 20
NOTES_SLACK = 2 << 20       # notes and page rounding beyond the --max-size cap


class Dumper:
    """Runs diag-core into a fresh directory per dump and checks what every dump must
    hold: exit status, one file named PREFIX.PID (mode 0600), nothing else left, the
    fixture unharmed."""

    def __init__(self, chk, fx, tmp):
        self.chk, self.fx, self.tmp = chk, fx, tmp
        self.before = fx.snapshot()

    def dump(self, what, *args, rcs=(0,)):
        d = tempfile.mkdtemp(dir=self.tmp)
        r = dt.diag_core("-o", os.path.join(d, "core"), *args, self.fx.pid)
        core = os.path.join(d, "core.%d" % self.fx.pid)
        ok = self.chk.check(r.rc in rcs, "%s: exit status %s, want %s\n%s" % (what, r.rc, rcs, r.describe()))
        self.fx.check_unharmed(self.chk, self.before, what)
        if not ok:
            return r, None
        self.chk.eq(os.listdir(d), [os.path.basename(core)], "%s: files in the output directory" % what)
        if not os.path.exists(core):
            return r, None
        self.chk.eq(os.stat(core).st_mode & 0o777, 0o600, "%s: mode of the core" % what)
        return r, core


def main():
    dt.setup_core(__doc__)
    for prog in ("gdb", "eu-readelf"):
        if not dt.which(prog):
            dt.skip("%s is not installed" % prog)
    chk = dt.Checker("core-options")
    tmp = tempfile.mkdtemp(prefix="diagtest-core-")
    try:
        with dt.CoreFixture(["--heap", 16, "--threads", 5, "--children", 1, "--dontdump", "--shared"]) as fx:
            dm = Dumper(chk, fx, tmp)
            method_stop(chk, fx, dm)
            stream(chk, fx, tmp, dm.before)
            json_summary(chk, fx, dm)
            summary_lines(chk, fx, dm)
            coredump_filter(chk, fx, dm)
        with dt.CoreFixture(["--heap", 16, "--threads", 5, "--children", 1, "--no-fork"]) as fx:
            fork_forbidden(chk, fx, Dumper(chk, fx, tmp))
        with dt.CoreFixture(["--heap", BIG_HEAP_MIB, "--threads", 5, "--children", 1]) as fx:
            dm = Dumper(chk, fx, tmp)
            stacks_only(chk, fx, dm)
            max_size(chk, fx, dm)
            progress(chk, fx, tmp, dm.before)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


def method_stop(chk, fx, dm):
    r, core = dm.dump("--method stop", "-J", "--method", "stop")
    if not core:
        return
    doc = r.json(chk) or {}
    chk.eq(doc.get("method"), "stop", "--method stop: -J method")
    chk.eq(doc.get("fallback"), None, "--method stop: -J fallback")
    dt.gdb_check_core(chk, fx, core, "--method stop")
    notes, _ = dt.readelf_notes(core)
    chk.eq(notes.get("PRSTATUS"), len(fx.tids()), "--method stop: PRSTATUS notes")


def fork_forbidden(chk, fx, dm):
    """A process whose seccomp filter makes fork fail: the stop method, said on stderr
    and in -J, and a good core."""
    what = "fork forbidden by seccomp"
    r, core = dm.dump(what, "-J")
    if not core:
        return
    doc = r.json(chk) or {}
    chk.eq(doc.get("method"), "stop", "%s: -J method" % what)
    chk.check(isinstance(doc.get("fallback"), str) and doc["fallback"],
              "%s: -J fallback %r, want the reason" % (what, doc.get("fallback")))
    chk.check(any("fork" in l for l in r.err_lines()), "%s: stderr does not say fork was not used: %r"
              % (what, r.err))
    dt.gdb_check_core(chk, fx, core, what)


def stream(chk, fx, tmp, before):
    """diag-core -o - PID | cat > FILE: a core gdb reads, nothing written besides."""
    what = "-o - | cat"
    d = os.path.join(tmp, "stream")
    os.mkdir(d)
    path = os.path.join(d, "streamed.core")
    with open(path, "wb") as out:
        p1 = subprocess.Popen([dt.need_path("diag_core"), "-o", "-", str(fx.pid)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=d, env=dt.tool_env(),
                              start_new_session=True)
        p2 = subprocess.Popen(["cat"], stdin=p1.stdout, stdout=out, cwd=d)
        p1.stdout.close()
        try:
            err = p1.communicate(timeout=180)[1].decode(errors="replace")
            p2.wait(timeout=60)
        finally:
            for p in (p1, p2):
                if p.poll() is None:
                    p.kill()
                    p.wait()
    chk.eq(p1.returncode, 0, "%s: exit status of diag-core (stderr %r)" % (what, err[-1000:]))
    chk.eq(sorted(os.listdir(d)), ["streamed.core"], "%s: files in the working directory" % what)
    fx.check_unharmed(chk, before, what)
    if p1.returncode != 0:
        return
    ec = dt.ElfCore(path)
    chk.check(ec.error is None, "%s: the streamed core is not well formed: %s" % (what, ec.error))
    dt.check_heap_words(chk, ec, fx, what)
    dt.gdb_check_core(chk, fx, path, what)


def json_summary(chk, fx, dm):
    """-J against the file: threads = NT_PRSTATUS notes, segments = PT_LOADs, bytes =
    the data in the PT_LOAD ranges, and the rest of the schema."""
    what = "-J"
    r, core = dm.dump(what, "-J")
    if not core:
        return
    chk.eq(len(r.out.splitlines()), 1, "%s: one line on stdout" % what)
    doc = r.json(chk) or {}
    notes, _ = dt.readelf_notes(core)
    loads, _ = dt.readelf_loads(core)
    ec = dt.ElfCore(core)
    chk.eq(doc.get("pid"), fx.pid, "%s: pid" % what)
    chk.check(str(doc.get("file", "")).endswith("core.%d" % fx.pid) and os.path.samefile(doc.get("file"), core),
              "%s: file %r is not the core %s" % (what, doc.get("file"), core))
    chk.eq(doc.get("threads"), notes.get("PRSTATUS"), "%s: threads vs eu-readelf -n PRSTATUS notes" % what)
    chk.eq(doc.get("threads"), len(fx.tids()), "%s: threads vs the fixture's" % what)
    chk.eq(doc.get("segments"), len(loads), "%s: segments vs eu-readelf -l PT_LOADs" % what)
    chk.eq(doc.get("method"), "fork", "%s: method" % what)
    chk.check("fallback" in doc and doc.get("fallback") is None, "%s: fallback %r" % (what, doc.get("fallback")))
    data = sum(dt.data_in_range(core, off, off + fs) for _, _, off, fs, _ in ec.loads)
    b = doc.get("bytes")
    chk.check(isinstance(b, int) and abs(b - data) <= data * 0.01 + (1 << 20),
              "%s: bytes %r vs %d bytes of data in the PT_LOAD ranges of the file" % (what, b, data))
    pause, el = doc.get("pause_ms"), doc.get("elapsed_ms")
    chk.check(isinstance(pause, (int, float)) and isinstance(el, (int, float)) and 0 < pause <= el,
              "%s: pause_ms %r, elapsed_ms %r: want 0 < pause <= elapsed" % (what, pause, el))


def summary_lines(chk, fx, dm):
    r, core = dm.dump("summary line")
    if core:
        lines = r.err_lines()
        chk.check(len(lines) == 1 and os.path.basename(core) in lines[0],
                  "summary line: want one line on stderr naming %s, got %r" % (core, lines))
        chk.eq(r.out, "", "summary line: stdout")
    r, core = dm.dump("-q", "-q")
    if core:
        chk.eq((r.out, r.err), ("", ""), "-q: stdout and stderr")


def coredump_filter(chk, fx, dm):
    """The shared marker is dumped by the default filter (0x33) and not with
    --no-shared; the MADV_DONTDUMP marker never; the process's own
    /proc/PID/coredump_filter is the default."""
    sh, dd = fx.info["shared"], fx.info["dontdump"]
    addrs = (sh["addr"], dd["addr"])
    filt = "/proc/%d/coredump_filter" % fx.pid
    orig = (dt.read_file(filt) or "").strip()

    def case(what, args, shared_in):
        r, core = dm.dump(what, *args)
        if not core:
            return
        w = dt.gdb_check_core(chk, fx, core, what, heap_words=4, addrs=addrs)
        if shared_in:
            chk.eq(w[sh["addr"]], sh["value"], "%s: shared marker in the core" % what)
        else:
            chk.check(w[sh["addr"]] in (None, 0), "%s: shared marker %r in the core, want none" % (what, w[sh["addr"]]))
        chk.check(w[dd["addr"]] in (None, 0), "%s: MADV_DONTDUMP marker %r in the core" % (what, w[dd["addr"]]))
        ec = dt.ElfCore(core)
        for name, reg, dumped in (("shared", sh, shared_in), ("dontdump", dd, False)):
            seg = ec.load_at(reg["addr"])
            if chk.check(seg is not None, "%s: no PT_LOAD for the %s page" % (what, name)):
                chk.eq((seg[0], seg[1]), (reg["addr"], reg["size"]), "%s: PT_LOAD of the %s page" % (what, name))
                if not dumped:
                    chk.eq(seg[3], 0, "%s: p_filesz of the %s page's PT_LOAD (not dumped)" % (what, name))

    chk.eq(orig, "00000033", "the fixture's coredump_filter (the default)")
    case("default filter", [], True)
    case("--no-shared", ["--no-shared"], False)
    case("--filter 31", ["--filter", "31"], False)
    try:
        with open(filt, "w") as f:
            f.write("0x31")
        case("process filter 0x31", [], False)
        case("process filter 0x31, --shared", ["--shared"], True)
        case("process filter 0x31, --filter 33", ["--filter", "33"], True)
    finally:
        with open(filt, "w") as f:
            f.write("0x" + orig)


def stacks_only(chk, fx, dm):
    what = "--stacks-only"
    r, core = dm.dump(what, "-J", "--stacks-only")
    if not core:
        return
    used, size = dt.disk_usage(core), os.path.getsize(core)
    dt.log("%s: %d bytes on disk, %d apparent, heap %d MiB" % (what, used, size, BIG_HEAP_MIB))
    chk.check(used < STACKS_ONLY_MAX, "%s: %d bytes on disk, want < %d" % (what, used, STACKS_ONLY_MAX))
    chk.check(size < STACKS_ONLY_MAX, "%s: apparent size %d, want < %d" % (what, size, STACKS_ONLY_MAX))
    # A few hundred KiB copied during the stop take less than a fork of the big
    # heap: no fork, and nothing said about it (it is no fallback).
    doc = r.json(chk) or {}
    chk.eq((doc.get("method"), doc.get("fallback"), doc.get("fork_ms")), ("stop", None, 0.0),
           "%s: -J method, fallback, fork_ms" % what)
    chk.check("fork not used" not in r.err, "%s: stderr speaks of a fallback: %r" % (what, r.err))
    stacks_readable(chk, fx, core, what)


def stacks_readable(chk, fx, core, what):
    """gdb shows every thread's backtrace down to its fixture function."""
    g = dt.gdb_command(dt.need_path("corefix"), ["thread apply all bt"], core=core)
    bt = dt.backtraces(g.out)
    chk.eq(sorted(bt), fx.tids(), "%s: gdb: LWPs\n%s" % (what, g.describe()[-2000:]))
    for tid in fx.tids():
        chk.eq(dt.corefix_functions(bt.get(tid, [])), [fx.function_of(tid)],
               "%s: gdb: fixture functions of thread %d (frames %s)" % (what, tid, bt.get(tid)))


def max_size(chk, fx, dm):
    what = "--max-size %dM" % (MAX_SIZE >> 20)
    r, core = dm.dump(what, "-J", "--max-size", "%dM" % (MAX_SIZE >> 20), rcs=(0, 4))
    if not core:
        return
    doc = r.json(chk) or {}
    used = dt.disk_usage(core)
    dt.log("%s: %d bytes on disk, -J bytes %s" % (what, used, doc.get("bytes")))
    chk.check(isinstance(doc.get("bytes"), int) and doc["bytes"] <= MAX_SIZE,
              "%s: -J bytes %r over the cap" % (what, doc.get("bytes")))
    chk.check(used <= MAX_SIZE + NOTES_SLACK, "%s: %d bytes on disk, over the cap + %d" % (what, used, NOTES_SLACK))
    ec = dt.ElfCore(core)
    chk.check(ec.error is None, "%s: the core is not well formed: %s" % (what, ec.error))
    stacks_readable(chk, fx, core, what)
    # A cap above what there is to write leaves nothing out.
    what = "--max-size %dM" % (BIG_HEAP_MIB + 64)
    r, core = dm.dump(what, "-J", "--max-size", "%dM" % (BIG_HEAP_MIB + 64))
    if core:
        dt.gdb_check_core(chk, fx, core, what, heap_words=32)



def on_terminal(fx, tmp, *args):
    """diag-core with stderr on a pseudo-terminal: (exit status, what it wrote there)."""
    d = tempfile.mkdtemp(dir=tmp)
    master, slave = pty.openpty()
    p = subprocess.Popen([dt.need_path("diag_core"), "-o", os.path.join(d, "core")] + list(args) + [str(fx.pid)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=dt.tool_env(),
                         cwd="/")
    os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:         # EIO: the other side is closed
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    rc = p.wait(timeout=120)
    shutil.rmtree(d, ignore_errors=True)
    return rc, got.decode(errors="replace")


def progress(chk, fx, tmp, before):
    """On a terminal: a progress line redrawn in place (percent, done of total, rate,
    time left), cleared before the summary; none with --no-progress, none with -q."""
    rc, text = on_terminal(fx, tmp)
    chk.eq(rc, 0, "progress: exit status on a terminal (%r)" % text[-300:])
    lines = re.findall(r"\r(diag-core: +\d+% [^\r]*)", text)
    chk.check(lines, "progress: no progress line on the terminal: %r" % text[:300])
    for line in lines:
        chk.check(re.search(r"\d+% \S+ of \S+ +\S+/s +\S+ left", line),
                  "progress: line without percent, sizes, rate and time left: %r" % line)
    chk.check("\r\x1b[K" in text and text.rindex("\r\x1b[K") < text.rindex("diag-core: /"),
              "progress: the line is not cleared before the summary: %r" % text[-300:])
    for what, args in (("--no-progress", ["--no-progress"]), ("-q", ["-q"])):
        rc, text = on_terminal(fx, tmp, *args)
        chk.eq(rc, 0, "%s: exit status on a terminal" % what)
        chk.check("%" not in text and "\r" not in text.replace("\r\n", "\n"),
                  "%s: a progress line on the terminal: %r" % (what, text[:300]))
    fx.check_unharmed(chk, before, "progress")

if __name__ == "__main__":
    main()
