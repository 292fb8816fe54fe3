#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Debuginfo status per module: found, missing, and a separate .debug file whose
build-id does not match the binary (the rebuilt-binary trap): diag-stack must
say "mismatch", name both build-ids, and not use its line data."""
import os
import shutil
import subprocess
import tempfile
import time

import diagtest as dt

SRC = r'''
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void mm_wait_here(void) { pause(); }
int main(void) { printf("PID %d\nREADY\n", (int) getpid()); fflush(stdout); VARIANT; mm_wait_here(); return 0; }
'''


def build(tmp, name, variant):
    src = os.path.join(tmp, name + ".c")
    with open(src, "w") as f:
        f.write(SRC.replace("VARIANT", variant))
    out = os.path.join(tmp, name)
    subprocess.run(["cc", "-g", "-O1", "-Wl,--build-id", src, "-o", out], check=True)
    return out


def start(path):
    p = subprocess.Popen([path], stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = p.stdout.readline()
    if not line.startswith("PID"):
        p.kill()
        dt.harness_error("mismatch fixture did not start: %r" % line)
    p.stdout.readline()
    time.sleep(0.05)
    return p


def module(doc, pid, basename):
    proc = dt.process_of(doc, pid)
    for m in (proc or {}).get("modules", []):
        if os.path.basename(m.get("path") or "") == basename:
            return m
    return None


def main():
    dt.setup(__doc__)
    dt.need_program("cc")
    dt.need_program("objcopy")
    chk = dt.Checker("stack-debuginfo")
    tmp = tempfile.mkdtemp(prefix="diagtest-dbg-")
    procs = []
    try:
        # 1. Split debuginfo that matches: found, with file:line.
        good = build(tmp, "good", "(void)0")
        subprocess.run(["objcopy", "--only-keep-debug", good, good + ".debug"], check=True)
        subprocess.run(["objcopy", "--strip-debug", "--add-gnu-debuglink=" + good + ".debug", good], check=True)
        # 2. The binary was rebuilt; the old .debug file stayed: mismatch.
        old = build(tmp, "old", "(void)0")
        subprocess.run(["objcopy", "--only-keep-debug", old, os.path.join(tmp, "rebuilt.debug")], check=True)
        rebuilt = build(tmp, "rebuilt", "(void)write(1, \"\", 0)")
        subprocess.run(["objcopy", "--strip-debug", "--add-gnu-debuglink=" + os.path.join(tmp, "rebuilt.debug"), rebuilt], check=True)
        # 3. Stripped, no debug file anywhere: missing.
        bare = build(tmp, "bare", "(void)0")
        subprocess.run(["objcopy", "--strip-debug", bare], check=True)

        for name, want in (("good", "found"), ("rebuilt", "mismatch"), ("bare", "missing")):
            p = start(os.path.join(tmp, name))
            procs.append(p)
            res = dt.diag_stack("-J", "--no-kernel", p.pid)
            doc = res.json(chk)
            chk.eq(res.rc, 0, "%s: exit status (%s)" % (name, res.describe()))
            m = module(doc, p.pid, name)
            if not chk.check(m is not None, "%s: module not listed" % name):
                continue
            chk.eq(m.get("debuginfo"), want, "%s: debuginfo status" % name)
            proc = dt.process_of(doc, p.pid)
            frames = [f for g in proc["groups"] for f in g["frames"] if f.get("function") == "mm_wait_here"]
            chk.check(frames, "%s: mm_wait_here frame missing" % name)
            if want == "found":
                chk.check(frames and frames[0].get("line"), "%s: file:line expected from the .debug file" % name)
            else:
                chk.check(frames and frames[0].get("line") is None, "%s: no file:line expected" % name)
            if want == "mismatch":
                note = m.get("note") or ""
                chk.check(m.get("build_id") and m["build_id"] in note, "mismatch note names the binary's build-id: %r" % note)
                chk.check(os.path.join(tmp, "rebuilt.debug") in note, "mismatch note names the debug file: %r" % note)
                text = dt.diag_stack("--no-kernel", p.pid)
                chk.check("debuginfo MISMATCH" in text.out, "text output warns of the mismatch:\n" + text.out)
        chk.finish()
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
