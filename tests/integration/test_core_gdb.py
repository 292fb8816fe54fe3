# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-core against independent readers of cores: gdb on the core shows the threads
(count, LWP ids), fixture functions and registers gdb sees attached to the live
process, and reads the fixture's marker and heap; eu-stack --core agrees;
eu-readelf -n lists the notes of a kernel core; the file is private and sparse; the
process is left as it was (memory, children, no zombie, not stopped)."""
import os
import random
import shutil
import stat
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

HEAP_MIB = 64
SPARSE_MIB = 512
# Beyond the resident data: notes, page rounding, what the process touches meanwhile.
DISK_SLACK = 2 << 20
BLOCKED_ROLES = ("main", "sleeper", "reader", "waiter")


def main():
    dt.setup_core(__doc__)
    gdb, eu_stack, eu_readelf = dt.which("gdb"), dt.which("eu-stack"), dt.which("eu-readelf")
    if not gdb:
        dt.skip("gdb is not installed")
    if not eu_stack or not eu_readelf:
        dt.skip("eu-stack or eu-readelf (elfutils) is not installed")
    chk = dt.Checker("core-gdb")
    rnd = random.Random(os.environ.get("DIAG_TEST_SEED") or 1)
    tmp = tempfile.mkdtemp(prefix="diagtest-core-")
    try:
        with dt.CoreFixture(["--heap", HEAP_MIB, "--sparse", SPARSE_MIB, "--threads", 6, "--children", 2,
                             "--dontdump", "--shared"]) as fx:
            run_checks(chk, fx, tmp, rnd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


def run_checks(chk, fx, tmp, rnd):
    exe = dt.need_path("corefix")
    before = fx.snapshot()
    chk.eq(before["children"]["zombies"], [], "the fixture has no zombie before the dump")
    resident, per_map = dt.resident_nonzero(fx.pid)
    r = dt.diag_core("-J", "-o", os.path.join(tmp, "core"), fx.pid)
    core = os.path.join(tmp, "core.%d" % fx.pid)
    if not chk.eq(r.rc, 0, "exit status of `%s`\n%s" % (r.cmd(), r.describe())):
        return
    fx.check_unharmed(chk, before, "after diag-core")
    if not chk.check(os.path.isfile(core), "no %s after exit 0; directory has %s" % (core, os.listdir(tmp))):
        return
    chk.eq(sorted(os.listdir(tmp)), [os.path.basename(core)], "files in the output directory")
    st = os.stat(core)
    chk.eq(stat.S_IMODE(st.st_mode), 0o600, "mode of the core")
    chk.eq(st.st_uid, os.geteuid(), "owner of the core")
    doc = r.json(chk) or {}
    tids = fx.tids()
    chk.eq(sorted(dt.task_ids(fx.pid)), tids, "the fixture's threads in /proc are the ones it printed")

    # -- the file as a core: our own reader first (layout), then the oracles
    ec = dt.ElfCore(core)
    chk.check(ec.error is None, "the core is not well formed: %s" % ec.error)
    chk.eq(ec.prstatus_pids(), tids, "pr_pid of the NT_PRSTATUS notes")
    dt.check_heap_words(chk, ec, fx, "ELF reader")

    # -- disk: no more than the resident non-zero data, and the sparse region is free
    used = dt.disk_usage(core)
    limit = resident * 1.05 + DISK_SLACK
    dt.log("core: %d bytes on disk, %d apparent; the process's resident non-zero data: %d; pause %s ms"
           % (used, st.st_size, resident, doc.get("pause_ms")))
    chk.check(used <= limit, "disk usage %d > resident non-zero data %d x 1.05 + %d (per mapping: %s)"
              % (used, resident, DISK_SLACK, sorted(per_map.items(), key=lambda kv: -kv[1])[:6]))
    chk.check(used >= fx.info["heap"]["size"], "disk usage %d is less than the heap (%d)"
              % (used, fx.info["heap"]["size"]))
    sp = fx.info["sparse"]
    seg = ec.load_at(sp["addr"])
    if chk.check(seg is not None, "no PT_LOAD for the sparse region at %#x" % sp["addr"]):
        vaddr, memsz, off, filesz, _ = seg
        chk.eq((vaddr, memsz), (sp["addr"], sp["size"]), "PT_LOAD of the sparse region (vaddr, memsz)")
        data = dt.data_in_range(core, off, off + filesz)
        chk.eq(data, 0, "bytes of disk data in the sparse region's segment (%d MiB, every 16th page "
               "written with zeros)" % (sp["size"] >> 20))

    # -- every mapping of the process has its PT_LOAD
    loads = {(v, m) for v, m, _, _, _ in ec.loads}
    missing = [(hex(m["lo"]), m["path"]) for m in dt._maps(fx.pid)
               if (m["lo"], m["hi"] - m["lo"]) not in loads and m["path"] != "[vsyscall]"]
    chk.check(not missing, "mappings without a PT_LOAD of the same range: %s" % missing[:8])

    # -- gdb: the core against the live process
    heap = fx.info["heap"]
    offs = [0, 8, heap["size"] - 8] + [rnd.randrange(heap["size"] // 8) * 8 for _ in range(5)]
    sparse_addrs = [sp["addr"], sp["addr"] + sp["stride"], sp["addr"] + 4096, sp["addr"] + sp["size"] - 8]
    cmds = ["thread apply all bt", "thread apply all info registers rip rsp", "print/x corefix_marker"]
    cmds += ["x/gx %#x" % (heap["addr"] + o) for o in offs] + ["x/gx %#x" % a for a in sparse_addrs]
    g_core = dt.gdb_command(exe, cmds, core=core)
    g_live = dt.gdb_command(str(fx.pid), cmds)
    fx.check_unharmed(chk, before, "after gdb attached")
    check_gdb(chk, fx, g_core, g_live, offs, sparse_addrs)

    # -- eu-stack on the core
    e = dt.run([dt.which("eu-stack"), "--core", core, "-e", exe], timeout=120)
    ebt = dt.backtraces(e.out, "eu-stack")
    chk.eq(sorted(ebt), tids, "eu-stack --core: thread ids\n%s" % e.describe()[:3000])
    for tid in tids:
        chk.eq(dt.corefix_functions(ebt.get(tid, [])), [fx.function_of(tid)],
               "eu-stack --core: fixture functions of thread %d" % tid)

    # -- eu-readelf: the notes of a kernel core
    notes, rn = dt.readelf_notes(core)
    n = len(tids)
    want = {"PRSTATUS": n, "FPREGSET": n, "PRPSINFO": 1, "AUXV": 1, "FILE": 1}
    if dt.cpu_has_xsave():
        want["X86_XSTATE"] = n
    for k, v in want.items():
        chk.eq(notes.get(k, 0), v, "eu-readelf -n: %s notes" % k)
    # the kernel writes one (the dumping thread's); gdb's gcore one per thread
    chk.check(notes.get("SIGINFO", 0) >= 1, "eu-readelf -n: no SIGINFO note")
    chk.check(rn.rc == 0 and not rn.err.strip(), "eu-readelf -n complains: %s" % rn.describe()[-1500:])
    loads_re, rl = dt.readelf_loads(core)
    chk.eq(len(loads_re), len(ec.loads), "PT_LOAD count, eu-readelf -l vs the ELF reader")
    chk.eq(doc.get("threads"), n, "-J threads")
    chk.eq(doc.get("segments"), len(loads_re), "-J segments vs eu-readelf -l PT_LOADs")
    chk.eq(doc.get("method"), "fork", "-J method")
    chk.eq(doc.get("fallback"), None, "-J fallback")
    chk.eq(doc.get("registers_mended"), False, "-J registers_mended (rt_sigreturn put every register back)")


def check_gdb(chk, fx, g_core, g_live, offs, sparse_addrs):
    tids = fx.tids()
    for name, g in (("core", g_core), ("live", g_live)):
        chk.check(g.rc == 0, "gdb (%s) exit %s\n%s" % (name, g.rc, g.describe()[-3000:]))
    bt_core, bt_live = dt.backtraces(g_core.out), dt.backtraces(g_live.out)
    chk.eq(sorted(bt_core), tids, "gdb core: LWPs (count %d vs %d)" % (len(bt_core), len(tids)))
    chk.eq(sorted(bt_live), tids, "gdb live: LWPs")
    for tid in tids:
        want = [fx.function_of(tid)]
        live = dt.corefix_functions(bt_live.get(tid, []))
        core = dt.corefix_functions(bt_core.get(tid, []))
        chk.eq(live, want, "gdb live: fixture functions of thread %d (all frames %s)" % (tid, bt_live.get(tid)))
        chk.eq(core, live, "gdb: fixture functions of thread %d, core vs live (core frames %s)"
               % (tid, bt_core.get(tid)))
    # A thread asleep in a system call is where it was: same pc and stack pointer.
    reg_core, reg_live = dt.gdb_registers(g_core.out), dt.gdb_registers(g_live.out)
    for tid in fx.role_tids(*BLOCKED_ROLES):
        chk.check(reg_core.get(tid) and len(reg_core[tid]) == 2, "gdb core: no rip/rsp for thread %d" % tid)
        chk.eq(reg_core.get(tid), reg_live.get(tid), "rip and rsp of blocked thread %d, core vs live" % tid)
    want = "$1 = %#x" % fx.info["marker"]["value"]
    chk.check(want in g_core.out, "gdb core: print/x corefix_marker: want %r in\n%s" % (want, g_core.out[-2000:]))
    chk.check("Core was generated by `%s" % dt.need_path("corefix") in g_core.out,
              "gdb core: no 'Core was generated by `corefix...' line (NT_PRPSINFO)")
    heap = fx.info["heap"]["addr"]
    words_core, words_live = dt.gdb_words(g_core.out + g_core.err), dt.gdb_words(g_live.out + g_live.err)
    for o in offs:
        chk.eq(words_core.get(heap + o), dt.corefix_word(o), "gdb core: heap word at offset %#x" % o)
        chk.eq(words_live.get(heap + o), dt.corefix_word(o), "gdb live: heap word at offset %#x" % o)
    for a in sparse_addrs:
        chk.eq(words_core.get(a), 0, "gdb core: word at %#x of the sparse region (zero, not missing)" % a)
    bad = [l for l in (g_core.out + g_core.err).splitlines()
           if any(s in l for s in ("general-purpose registers", "core file may not match", "Cannot access memory",
                                   "Couldn't", "unable to", "Unable to", "Error while", "is truncated"))]
    chk.check(not bad, "gdb core complains: %s" % bad[:6])


if __name__ == "__main__":
    main()
