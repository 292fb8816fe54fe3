# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack on Debian's /usr/bin/python3.11 with its debuginfo (python3.11-dbg): the
DWARF is rewritten by dwz, where libdw 0.188's dwarf_getscopes() lost the inlined frames
and leaked its array (an ASan build exited 1 with a LeakSanitizer report). Now: exit 0,
no sanitizer report, and the interpreter's inlined calls are shown. Skipped without
python3.11 or its debuginfo."""
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

PYTHON = "/usr/bin/python3.11"


def main():
    dt.setup(__doc__)
    dt.need_path("diag_stack")
    if not os.access(PYTHON, os.X_OK):
        dt.skip("%s is not installed" % PYTHON)
    chk = dt.Checker("stack-python")
    p = subprocess.Popen([PYTHON, "-c", "import sys, time; print('READY', flush=True); time.sleep(600)"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        if p.stdout.readline().strip() != "READY":
            dt.harness_error("%s did not start" % PYTHON)
        r = dt.diag_stack("-J", p.pid)
        doc = r.json(chk)
        proc = dt.process_of(doc or {}, p.pid) or {}
        mods = {m.get("path"): m for m in proc.get("modules", [])}
        py = mods.get(PYTHON) or {}
        if py.get("debuginfo") != "found":
            dt.skip("no debuginfo for %s (install python3.11-dbg): the DWARF path is not reached" % PYTHON)
        for args in (("-J",), ()):
            r = dt.diag_stack(*(args + (p.pid,)))
            chk.eq(r.rc, 0, "exit status of `%s`\n%s" % (r.cmd(), r.err[-3000:]))
            chk.check("Sanitizer" not in r.err and "leak" not in r.err,
                      "`%s`: sanitizer report:\n%s" % (r.cmd(), r.err[-3000:]))
        g = (proc.get("groups") or [{}])[0]
        inl = [f.get("function") for f in g.get("frames", []) if f.get("inlined") and f.get("module") == PYTHON]
        chk.check(inl, "the interpreter's inlined calls are shown (dwarf_getscopes lost them): %r"
                  % [f.get("function") for f in g.get("frames", [])])
    finally:
        os.killpg(p.pid, 9)
        p.wait()
    chk.finish()


if __name__ == "__main__":
    main()
