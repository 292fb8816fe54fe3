# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap's bundle: a new directory 0700 with files 0600, index.json listing every
file with its size and schema and every part with its status, summary.txt; the default
name diag-snap.HOST.YYYYMMDD-HHMMSS in the current directory; an existing DIR or a
symlink in its place is never replaced or followed (exit 1, one line, nothing
written); --show prints summary.txt of a bundle and of a tar made by -o -; -J prints
index and summary as one JSON document and still writes the bundle; -o - through a
pipe read fully is a ustar stream Python's tarfile parses, holding the same files,
and through a pipe closed early exits 1 with one line and leaves no temporary
directory; a full file system (a 1 MiB tmpfs in a private mount namespace) exits 1
with one line and leaves nothing behind."""
import json
import os
import socket
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402

TIMEOUT = "4s"


def one_line(chk, r_err, what):
    lines = [l for l in r_err.splitlines() if l.strip()]
    chk.eq(len(lines), 1, "%s: one line on stderr: %r" % (what, lines))
    return lines[0] if lines else ""


def check_layout(chk, tmp):
    out = os.path.join(tmp, "b1")
    r = st.snap("-o", out, "--timeout", TIMEOUT)
    chk.check(r.rc in st.BUNDLE_RC, "-o DIR: exit 0 or 4\n%s" % r.describe())
    idx = st.check_bundle(chk, out, "-o DIR")
    chk.eq(st.leftovers(tmp), [], "-o DIR: no temporary directory left next to DIR")
    if idx is not None:
        parts = st.index_parts(idx)
        for p in ("host", "procs", "cgroups", "oom", "dstate"):
            chk.check(p in parts, "index.json has part %s (its status, even when not built): %r" % (p, sorted(parts)))
        chk.eq(r.rc, 4 if st.partial(idx) else 0,
               "-o DIR: exit status 4 exactly when a part failed or timed out or something is missing: %r"
               % [(n, e.get("status")) for n, e in parts.items()])


def check_default_name(chk, tmp):
    cwd = os.path.join(tmp, "cwd")
    os.mkdir(cwd)
    r = st.snap("--timeout", TIMEOUT, cwd=cwd)
    chk.check(r.rc in st.BUNDLE_RC, "default DIR: exit 0 or 4\n%s" % r.describe())
    names = os.listdir(cwd)
    chk.eq(len(names), 1, "default DIR: one new entry in the current directory: %r" % names)
    if names:
        chk.check(st.DEFAULT_RE.match(names[0]), "default DIR name %r is diag-snap.HOST.YYYYMMDD-HHMMSS" % names[0])
        chk.check(names[0].startswith("diag-snap.%s." % socket.gethostname().split(".")[0]),
                  "default DIR name %r has this host's name %r" % (names[0], socket.gethostname()))
        st.check_bundle(chk, os.path.join(cwd, names[0]), "default DIR")


def check_no_replace(chk, tmp):
    # an existing directory with a file in it
    d = os.path.join(tmp, "exists")
    os.mkdir(d)
    with open(os.path.join(d, "keep"), "w") as f:
        f.write("mine\n")
    r = st.snap("-o", d, "--timeout", TIMEOUT)
    chk.eq(r.rc, 1, "existing DIR: exit 1\n%s" % r.describe())
    one_line(chk, r.err, "existing DIR")
    chk.eq(sorted(os.listdir(d)), ["keep"], "existing DIR: its contents untouched")
    # an existing empty directory: still never replaced (rename would replace it)
    e = os.path.join(tmp, "empty")
    os.mkdir(e)
    r = st.snap("-o", e, "--timeout", TIMEOUT)
    chk.eq(r.rc, 1, "existing empty DIR: exit 1\n%s" % r.describe())
    chk.eq(os.listdir(e), [], "existing empty DIR: still empty")
    # an existing file
    fpath = os.path.join(tmp, "afile")
    with open(fpath, "w") as f:
        f.write("x")
    r = st.snap("-o", fpath, "--timeout", TIMEOUT)
    chk.eq(r.rc, 1, "existing file as DIR: exit 1\n%s" % r.describe())
    chk.check(os.path.isfile(fpath) and open(fpath).read() == "x", "existing file as DIR: untouched")
    # a symlink to a directory, and a dangling symlink
    target = os.path.join(tmp, "target")
    os.mkdir(target)
    for name, dest in (("link", target), ("dangling", os.path.join(tmp, "nowhere"))):
        l = os.path.join(tmp, name)
        os.symlink(dest, l)
        r = st.snap("-o", l, "--timeout", TIMEOUT)
        chk.eq(r.rc, 1, "symlink %s as DIR: exit 1\n%s" % (name, r.describe()))
        one_line(chk, r.err, "symlink %s as DIR" % name)
        chk.check(os.path.islink(l) and os.readlink(l) == dest, "symlink %s as DIR: the link untouched" % name)
        chk.check(not os.path.exists(os.path.join(tmp, "nowhere")),
                  "symlink %s as DIR: nothing created where it points" % name)
    chk.eq(os.listdir(target), [], "symlink as DIR: nothing written into the directory it points to")
    chk.eq(st.leftovers(tmp), [], "refused runs: no temporary directory left")


def check_show_and_json(chk, tmp):
    bundle = os.path.join(tmp, "b1")     # check_layout's
    if not os.path.isdir(bundle):
        chk.fail("--show: no bundle to show")
        return
    r = st.snap("--show", bundle)
    chk.eq(r.rc, 0, "--show BUNDLE: exit 0\n%s" % r.describe())
    summary = dt.read_file(os.path.join(bundle, "summary.txt"))
    chk.eq(r.out, summary, "--show BUNDLE prints summary.txt")
    r = st.snap("--show", os.path.join(tmp, "no-such-bundle"))
    chk.eq(r.rc, 1, "--show of a missing bundle: exit 1\n%s" % r.describe())
    one_line(chk, r.err, "--show of a missing bundle")
    chk.eq(r.out, "", "--show of a missing bundle: nothing on stdout")

    out = os.path.join(tmp, "bj")
    r = st.snap("-J", "-o", out, "--timeout", TIMEOUT)
    chk.check(r.rc in st.BUNDLE_RC, "-J: exit 0 or 4\n%s" % r.describe())
    doc = r.json(chk)
    idx = st.check_bundle(chk, out, "-J")
    if isinstance(doc, dict) and idx is not None:
        got = doc.get("index", doc)
        same = all(got.get(k) == v for k, v in idx.items() if k != "files")
        chk.check(same, "-J: stdout holds index.json's content\n%s\n---\n%s"
                  % (json.dumps(idx)[:1500], json.dumps(doc)[:1500]))
        chk.check("summary" in doc or "findings" in doc,
                  "-J: stdout holds the summary (findings): keys %r" % sorted(doc))
    elif doc is not None:
        chk.fail("-J: stdout is one JSON object: %r" % type(doc))


def check_stdout_tar(chk, tmp):
    tmpdir = os.path.join(tmp, "tmpdir")
    os.mkdir(tmpdir)
    env = dt.tool_env()
    env["TMPDIR"] = tmpdir
    rc, out, err, secs = st.snap_bytes(["-o", "-", "--timeout", TIMEOUT], env=env)
    chk.check(rc in st.BUNDLE_RC, "-o -: exit 0 or 4: %r\n%s" % (rc, err[-2000:]))
    chk.eq(len(out) % 512, 0, "-o -: the tar stream is whole 512-byte records")
    try:
        mem = st.tar_members(out)
    except Exception as e:  # tarfile raises several kinds
        chk.fail("-o -: Python's tarfile cannot read the stream: %s (%d bytes)" % (e, len(out)))
        mem = {}
    if mem:
        with open(os.path.join(tmp, "out.tar"), "wb") as f:
            f.write(out)
        tops = {n.split("/")[0] for n in mem}
        chk.eq(len(tops), 1, "-o -: every member under one top directory (the bundle's name): %r" % sorted(tops))
        inner = {st.strip_top(n): v for n, v in mem.items()}
        idx_m = inner.get("index.json")
        idx = json.loads(idx_m[1]) if idx_m and idx_m[1] is not None else None
        chk.check(isinstance(idx, dict) and idx.get("tool") == "diag-snap", "-o -: index.json in the stream")
        chk.check("summary.txt" in inner, "-o -: summary.txt in the stream")
        for name, (m, body) in inner.items():
            chk.check(m.isdir() or m.isfile(), "-o -: %s is a directory or a regular file" % name)
            chk.eq(oct(m.mode & 0o7777), oct(0o700 if m.isdir() else 0o600), "-o -: mode of %s" % name)
        cut = {e.get("output") for e in st.index_parts(idx).values() if e.get("status") != "ok"}
        for rel, e in st.index_files(idx).items():
            if not chk.check(rel in inner, "-o -: %s listed in the index is in the stream" % rel):
                continue
            if "bytes" in e and rel != "index.json":
                chk.eq(len(inner[rel][1] or b""), e["bytes"], "-o -: size of %s" % rel)
            if rel.endswith(".json") and rel not in cut:
                try:
                    json.loads(inner[rel][1])
                except (ValueError, TypeError) as ex:
                    chk.fail("-o -: %s does not parse: %s" % (rel, ex))
        r = st.snap("--show", os.path.join(tmp, "out.tar"))
        chk.eq(r.rc, 0, "--show TAR: exit 0\n%s" % r.describe())
        want = (inner.get("summary.txt") or (None, b""))[1] or b""
        chk.eq(r.out, want.decode(errors="replace"), "--show TAR prints the stream's summary.txt")
    chk.eq(os.listdir(tmpdir), [], "-o -: the temporary directory under $TMPDIR removed")

    # A pipe that closes after the first record: exit 1, one line, no temporary directory.
    p = subprocess.Popen([dt.need_path("diag_snap"), "-o", "-", "--timeout", TIMEOUT], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd="/",
                         start_new_session=True)
    first = p.stdout.read(512)
    p.stdout.close()
    try:
        err = p.stderr.read().decode(errors="replace")
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        dt.kill_group(p)
        rc, err = "timeout", ""
    chk.eq(len(first), 512, "-o - closed early: the first record came")
    chk.eq(rc, 1, "-o - into a pipe closed early: exit 1 (stderr %r)" % err)
    one_line(chk, err, "-o - into a pipe closed early")
    chk.eq(os.listdir(tmpdir), [], "-o - into a pipe closed early: the temporary directory removed")


def check_full_fs(chk, tmp):
    unshare = st.as_root_with("unshare", "full file system")
    if not unshare:
        return
    mnt = tempfile.mkdtemp(prefix="small.", dir=tmp)
    # Mounted only in a private mount namespace: the host never sees it. The tmpfs is
    # filled to about 64 KiB of free space, so no bundle of this machine fits.
    script = ('set -e; mount --make-rprivate / ; mount -t tmpfs -o size=1m,mode=0755 snaptest "$1"; '
              'dd if=/dev/zero of="$1/fill" bs=1k count=960 status=none; '
              'set +e; "$2" -o "$1/b" --timeout %s; echo "rc=$?"; ls -a "$1"' % TIMEOUT)
    probe = dt.run([unshare, "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /mnt && echo ok"])
    if probe.rc != 0 or "ok" not in probe.out:
        dt.log("full file system: cannot mount a tmpfs in a private mount namespace (%s): not checked"
               % probe.err.strip()[:200])
        return
    r = dt.run([unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", mnt, dt.need_path("diag_snap")],
               timeout=60)
    lines = r.out.splitlines()
    rcl = [l for l in lines if l.startswith("rc=")]
    chk.eq(rcl[:1], ["rc=1"], "full file system: exit 1\n%s" % r.describe())
    names = sorted(l for l in lines if not l.startswith("rc=") and l not in (".", ".."))
    chk.eq(names, ["fill"], "full file system: nothing left on it (no bundle, no temporary directory)")
    one_line(chk, r.err, "full file system")
    chk.eq(os.listdir(mnt), [], "full file system: the tmpfs was never visible outside its namespace")


def main():
    st.run_checks(__doc__, "snap-bundle", check_layout, check_default_name, check_no_replace,
                  check_show_and_json, check_stdout_tar, check_full_fs)


if __name__ == "__main__":
    main()
