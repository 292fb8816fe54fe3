# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap smoke test: a bundle is made (directory 0700, files 0600, renamed from
its temporary name), index.json parses and lists every file with its size, summary.txt
exists and --show prints it; -o - gives a tar stream of the same bundle; an existing
DIR is never replaced; a reader closing the stream early or SIGTERM leave nothing behind."""
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

STATUSES = {"ok", "failed", "timed-out", "not-built", "skipped"}


def check_bundle(c, d):
    st = os.lstat(d)
    c.check(stat.S_ISDIR(st.st_mode), "%s is a directory" % d)
    c.eq(stat.S_IMODE(st.st_mode), 0o700, "mode of the bundle directory")
    files = {}
    for root, dirs, names in os.walk(d):
        for n in dirs:
            m = stat.S_IMODE(os.lstat(os.path.join(root, n)).st_mode)
            c.eq(m, 0o700, "mode of directory %s" % n)
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, d)
            st = os.lstat(p)
            c.check(stat.S_ISREG(st.st_mode), "%s is a regular file" % rel)
            c.eq(stat.S_IMODE(st.st_mode), 0o600, "mode of %s" % rel)
            files[rel] = st.st_size
    c.check("summary.txt" in files, "summary.txt in the bundle")
    c.check("index.json" in files, "index.json in the bundle")
    with open(os.path.join(d, "index.json")) as f:
        index = json.load(f)
    c.eq(index.get("schema"), "diag-snap/1", "index schema")
    c.eq(index.get("tool"), "diag-snap", "index tool")
    c.check(index.get("host"), "index names the host")
    listed = {e["name"]: e["bytes"] for e in index.get("files", [])}
    c.eq(sorted(listed), sorted(files), "index lists exactly the files of the bundle")
    for name, size in files.items():
        if name in listed:
            c.eq(listed[name], size, "size of %s in the index" % name)
    names = [p["name"] for p in index.get("parts", [])]
    for part in ("host", "procs", "cgroups", "oom", "dstate", "diag-chain", "diag-locks",
                 "diag-fds", "shmdump"):
        c.check(part in names, "part %s in the index" % part)
    for p in index.get("parts", []):
        c.check(p.get("status") in STATUSES, "status of %s: %r" % (p.get("name"), p.get("status")))
        if p.get("status") == "ok" and p.get("output"):
            c.check(p["output"] in files, "output %s of %s in the bundle" % (p["output"], p["name"]))
    with open(os.path.join(d, "summary.txt")) as f:
        summary = f.read()
    c.check(summary.startswith("diag-snap "), "summary.txt starts with its header")
    return index, summary


def main():
    paths = dt.setup(__doc__, "diag_snap")
    snap = dt.need_path("diag_snap")
    c = dt.Checker("snap-basic")
    with tempfile.TemporaryDirectory(prefix="snap-basic.") as tmp:
        out = os.path.join(tmp, "b1")
        r = dt.run([snap, "-o", out], timeout=30)
        c.check(r.rc in (0, 4), "diag-snap -o DIR exits 0 or 4: %s" % r.describe())
        c.check(r.elapsed < 8, "the bundle within --timeout 5s and a margin (%.1f s)" % r.elapsed)
        if os.path.isdir(out):
            index, summary = check_bundle(c, out)
            left = [n for n in os.listdir(tmp) if n.startswith(".")]
            c.eq(left, [], "no temporary directory left")
            r2 = dt.run([snap, "--show", out], timeout=10)
            c.eq(r2.rc, 0, "--show exits 0")
            c.eq(r2.out, summary, "--show prints summary.txt")
        else:
            c.fail("no bundle at %s" % out)

        r = dt.run([snap, "-o", out], timeout=30)
        c.eq(r.rc, 1, "an existing DIR: exit 1")
        c.check("exists" in r.err, "an existing DIR is said: %r" % r.err)
        os.symlink("/nonexistent", os.path.join(tmp, "link"))
        r = dt.run([snap, "-o", os.path.join(tmp, "link")], timeout=30)
        c.eq(r.rc, 1, "a symlink in the place of DIR: exit 1")
        c.check(os.path.islink(os.path.join(tmp, "link")), "the symlink is left alone")

        tarpath = os.path.join(tmp, "b.tar")
        with open(tarpath, "wb") as f:
            p = subprocess.run([snap, "-o", "-"], stdout=f, stderr=subprocess.PIPE, timeout=30,
                               env=dt.tool_env(), cwd=tmp)
        c.check(p.returncode in (0, 4), "diag-snap -o - exits 0 or 4: %d %r" % (p.returncode, p.stderr))
        with tarfile.open(tarpath) as t:
            members = t.getmembers()
            names = [m.name.split("/", 1)[1] for m in members if "/" in m.name.strip("/")]
            c.check("index.json" in names and "summary.txt" in names, "the tar holds index.json and summary.txt")
            top = {m.name.split("/")[0] for m in members}
            c.eq(len(top), 1, "one directory at the top of the tar")
            idx = [m for m in members if m.name.endswith("/index.json")]
            if idx:
                json.load(io.TextIOWrapper(t.extractfile(idx[0])))
        c.eq([n for n in os.listdir(tmp) if n.startswith(".")], [], "no temporary directory left after -o -")
        r2 = dt.run([snap, "--show", tarpath], timeout=10)
        c.eq(r2.rc, 0, "--show of the tar exits 0")
        c.check(r2.out.startswith("diag-snap "), "--show of the tar prints its summary")

        # a reader that goes away after the first block: exit 1, one line, nothing left
        env = dict(dt.tool_env(), TMPDIR=tmp)
        p = subprocess.Popen([snap, "-o", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp)
        p.stdout.read(512)
        p.stdout.close()
        err = p.stderr.read().decode(errors="replace")
        rc = p.wait(timeout=30)
        c.eq(rc, 1, "-o - into a pipe closed early: exit 1 (%r)" % err)
        c.eq(len([l for l in err.splitlines() if l.strip()]), 1, "one line says so: %r" % err)
        c.eq([n for n in os.listdir(tmp) if n.startswith(".")], [], "no temporary directory left after EPIPE")

        # SIGTERM while the parts run: exit 1, no bundle, no temporary directory, no child
        p = subprocess.Popen([snap, "-o", os.path.join(tmp, "term")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=tmp)
        time.sleep(0.5)
        p.terminate()
        rc = p.wait(timeout=30)
        c.eq(rc, 1, "SIGTERM: exit 1")
        c.check(not os.path.exists(os.path.join(tmp, "term")), "SIGTERM: no bundle")
        c.eq([n for n in os.listdir(tmp) if n.startswith(".")], [], "SIGTERM: no temporary directory left")
        # a child left running would still hold its output file in the bundle open
        time.sleep(0.2)
        kids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                fds = os.listdir("/proc/%s/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%s/fd/%s" % (pid, fd)).startswith(tmp + "/."):
                        kids.append(pid)
                        break
                except OSError:
                    pass
        c.eq(kids, [], "SIGTERM: no child of diag-snap left")

        r = dt.run([snap, "--bogus"], timeout=10)
        c.eq(r.rc, 2, "a bad option: exit 2")
    c.finish()


if __name__ == "__main__":
    main()
