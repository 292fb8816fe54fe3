# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the diag-snap tests (python3 stdlib only): running the tool, the
bundle's layout as the tool documents it (docs/diag-snap-json.md), what a temporary
directory of an unfinished bundle looks like, and the children a run may leave."""
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import time

import diagtest as dt

# A bundle is written (possibly with some part failed, timed out or missing): 0 or 4.
BUNDLE_RC = (0, 4)
# The temporary directory a bundle is built in, next to DIR: ".DIR.tmp-XXXXXX".
TMP_RE = re.compile(r"^\..*\.tmp-[A-Za-z0-9]{6}$")
DEFAULT_RE = re.compile(r"^diag-snap\.[^/]+\.\d{8}-\d{6}$")


def setup(description, *more):
    """dt.setup() with the paths the diag-snap tests take."""
    return dt.setup(description, "diag_snap", "fusehang", "chainfix", *more)


def snap(*args, timeout=30, env=None, cwd="/"):
    """diag-snap ARGS, text output, bounded (a run that does not end is described)."""
    if env is None and cwd == "/":
        return dt.run_bounded([dt.need_path("diag_snap")] + list(args), timeout=timeout)
    return dt.run([dt.need_path("diag_snap")] + list(args), timeout=timeout, env=env, cwd=cwd)


def snap_bytes(args, timeout=30, env=None):
    """diag-snap ARGS with stdout read as bytes: (rc, stdout bytes, stderr text, seconds)."""
    argv = [dt.need_path("diag_snap")] + [str(a) for a in args]
    start = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, env=env or dt.tool_env(),
                           cwd="/", timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", e.stderr or b""
    return rc, out, err.decode(errors="replace"), time.monotonic() - start


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _keyed(value, names):
    """A list of objects named by one of `names`, or an object keyed by name, as
    {name: object}."""
    if isinstance(value, dict):
        return {k: (v if isinstance(v, dict) else {}) for k, v in value.items()}
    out = {}
    for e in value if isinstance(value, list) else []:
        name = next((e.get(n) for n in names if isinstance(e, dict) and e.get(n)), None)
        if name:
            out[name] = e
    return out


def index_files(idx):
    """{relative path: entry} of the files index.json lists under "files" (objects
    naming the file by "path" or "file", or an object keyed by path)."""
    return _keyed((idx or {}).get("files"), ("path", "file", "name"))


def index_parts(idx):
    """{part name: entry} of index.json's "parts" (objects named by "name" or "part",
    or an object keyed by name)."""
    return _keyed((idx or {}).get("parts"), ("name", "part"))


def as_root_with(name, what):
    """The path of program `name` when the test runs as root and it is installed;
    otherwise None, after saying that `what` is not checked."""
    if os.geteuid() != 0:
        dt.log("%s: not root, not checked" % what)
        return None
    p = shutil.which(name)
    if not p:
        dt.log("%s: %s not installed, not checked" % (what, name))
    return p


def need_fuse():
    """Skip unless /dev/fuse exists and the test runs as root (to mount fusehang)."""
    dt.need_path("fusehang")
    if not os.path.exists("/dev/fuse"):
        dt.skip("/dev/fuse does not exist")
    dt.need_root("mounting a FUSE file system")


def walk(root):
    """(relative path, lstat) of everything under root, root itself excluded."""
    out = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out.append((os.path.relpath(p, root), os.lstat(p)))
    return out


def check_bundle(chk, path, what):
    """The layout every bundle has: DIR 0700, subdirectories 0700, regular files 0600
    and nothing else; index.json (tool diag-snap) and summary.txt; every file in the
    index present with its size; every file present listed; each .json parses.
    Returns the parsed index (or None)."""
    st = os.lstat(path) if os.path.lexists(path) else None
    if not chk.check(st and stat.S_ISDIR(st.st_mode), "%s: the bundle %s is a directory" % (what, path)):
        return None
    chk.eq(oct(stat.S_IMODE(st.st_mode)), oct(0o700), "%s: mode of the bundle directory" % what)
    for rel, s in walk(path):
        if stat.S_ISDIR(s.st_mode):
            chk.eq(oct(stat.S_IMODE(s.st_mode)), oct(0o700), "%s: mode of directory %s" % (what, rel))
        elif stat.S_ISREG(s.st_mode):
            chk.eq(oct(stat.S_IMODE(s.st_mode)), oct(0o600), "%s: mode of file %s" % (what, rel))
        else:
            chk.fail("%s: %s in the bundle is neither a directory nor a regular file (mode %o)"
                     % (what, rel, s.st_mode))
    idx = load_json(os.path.join(path, "index.json"))
    if not chk.check(isinstance(idx, dict), "%s: index.json is a JSON object" % what):
        return None
    chk.eq(idx.get("tool"), "diag-snap", "%s: index.json names the tool (the mark retention goes by)" % what)
    chk.check(os.path.isfile(os.path.join(path, "summary.txt")), "%s: summary.txt exists" % what)
    files = index_files(idx)
    chk.check(files, "%s: index.json lists the files" % what)
    parts = index_parts(idx)
    chk.check(parts, "%s: index.json lists the parts" % what)
    for name, e in parts.items():
        chk.check(e.get("status") in ("ok", "failed", "timed-out", "not-built", "skipped"),
                  "%s: part %s has a status: %r" % (what, name, e))
    # A file written by a part that failed or ran out of time may be cut short (the
    # index says so); one written by a tool has the tool's own JSON, which may name no
    # schema. Every other JSON file parses and its schema is in the index.
    cut = {e.get("output") for e in parts.values() if e.get("status") not in ("ok", None)}
    by_tool = {e.get("output") for e in parts.values() if e.get("kind") == "tool"}
    present = {rel: s for rel, s in walk(path) if stat.S_ISREG(s.st_mode)}
    for rel, e in files.items():
        if not chk.check(rel in present, "%s: %s listed in the index exists" % (what, rel)):
            continue
        if "bytes" in e and rel != "index.json":
            chk.eq(e["bytes"], present[rel].st_size, "%s: bytes of %s in the index" % (what, rel))
        if rel.endswith(".json") and rel not in cut:
            chk.check(load_json(os.path.join(path, rel)) is not None, "%s: %s parses as JSON" % (what, rel))
            if rel not in by_tool:
                chk.check(e.get("schema"), "%s: the index gives the schema of %s: %r" % (what, rel, e))
    for rel in present:
        if rel != "index.json":
            chk.check(rel in files, "%s: %s is listed in index.json" % (what, rel))
    return idx


def partial(idx):
    """True when the index says some part failed or timed out, or something is
    missing: the exit status is then 4."""
    bad = [n for n, e in index_parts(idx).items() if e.get("status") in ("failed", "timed-out")]
    return bool(bad or (idx or {}).get("missing"))


def leftovers(parent):
    """Names in parent that look like a bundle's temporary directory."""
    try:
        return sorted(n for n in os.listdir(parent) if TMP_RE.match(n) or ".tmp-" in n)
    except OSError:
        return []


def own_children(exclude=()):
    """Processes whose parent is this test (it is the subreaper: orphans of a killed
    run come here): [(pid, comm)]."""
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in exclude:
            continue
        st = dt.task_stat(int(d), int(d))
        if st and int(st[2][0]) == me:
            out.append((int(d), st[0]))
    return out


def no_children_left(chk, what, exclude=(), wait=2.0):
    """After a run: no process of it is left (children reparented to the test, which is
    a subreaper, are reaped; one still running after `wait` s is a failure)."""
    deadline = time.monotonic() + wait
    while True:
        dt.reap_orphans()
        left = [c for c in own_children(exclude) if dt.task_state(c[0], c[0]) != "Z"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    chk.check(not left, "%s: processes left behind: %r" % (what, left))
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    dt.reap_orphans()


def tar_members(data):
    """The members of a tar stream: {name: (TarInfo, bytes or None)}; raises on a bad stream."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf.getmembers():
            body = tf.extractfile(m).read() if m.isfile() else None
            out[m.name.rstrip("/")] = (m, body)
    return out


def strip_top(name):
    """A tar member's path inside the bundle (the stream may put it under a top directory)."""
    parts = name.split("/", 1)
    return parts[1] if len(parts) == 2 else ""


def run_checks(description, name, *checks):
    """A diag-snap test's main: the paths, the test as subreaper, then each
    check(chk, tmp) in one temporary directory, then no process of any run left."""
    setup(description)
    dt.need_path("diag_snap")
    dt.set_subreaper()
    chk = dt.Checker(name)
    with tempfile.TemporaryDirectory(prefix="diag-%s." % name) as tmp:
        for check in checks:
            check(chk, tmp)
        no_children_left(chk, "after every run")
    chk.finish()
