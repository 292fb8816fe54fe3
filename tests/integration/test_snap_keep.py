# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap's retention and diag-snap without privileges.

--keep N removes the oldest bundles diag-snap wrote in DIR's parent directory so N
remain (the new one among them), and nothing else: not a directory that is not a
bundle, not one whose index.json another tool wrote, not a file, not a symlink to a
bundle elsewhere nor what it points to. --keep-size SIZE removes the oldest bundles
until the rest fit in SIZE, never the new one and never anything else.

As user nobody (a copy of the binary in a directory nobody may enter): a bundle is
written, 0700/0600, owned by nobody; what nobody cannot read is named in the index's
missing entries (other users' processes' io, smaps_rollup...), exit status 4."""
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402

NOBODY = 65534
TIMEOUT = "3s"


def make_bundle(chk, path):
    r = st.snap("-o", path, "--timeout", TIMEOUT)
    chk.check(r.rc in st.BUNDLE_RC, "bundle %s written\n%s" % (os.path.basename(path), r.describe()))
    time.sleep(1.1)     # distinct times, whether retention goes by mtime or by the index's time


def check_keep(chk, tmp):
    parent = os.path.join(tmp, "snaps")
    os.mkdir(parent)
    elsewhere = os.path.join(tmp, "elsewhere")
    os.mkdir(elsewhere)
    make_bundle(chk, os.path.join(elsewhere, "linked"))
    os.symlink(os.path.join(elsewhere, "linked"), os.path.join(parent, "a-link"))
    # Not bundles, made before any bundle (oldest by every clock).
    os.mkdir(os.path.join(parent, "notes"))
    with open(os.path.join(parent, "notes", "x.txt"), "w") as f:
        f.write("mine\n")
    os.mkdir(os.path.join(parent, "other-tool"))
    with open(os.path.join(parent, "other-tool", "index.json"), "w") as f:
        f.write('{"tool": "something-else", "files": []}\n')
    with open(os.path.join(parent, "plain-file"), "w") as f:
        f.write("x\n")
    others = ["a-link", "notes", "other-tool", "plain-file"]
    for n in ("b1", "b2", "b3"):
        make_bundle(chk, os.path.join(parent, n))
    r = st.snap("--keep", "2", "-o", os.path.join(parent, "b4"), "--timeout", TIMEOUT)
    chk.check(r.rc in st.BUNDLE_RC, "--keep 2: exit 0 or 4\n%s" % r.describe())
    names = sorted(os.listdir(parent))
    chk.eq(names, sorted(others + ["b3", "b4"]), "--keep 2: the two newest bundles and every non-bundle remain")
    chk.check(os.path.isfile(os.path.join(elsewhere, "linked", "index.json")),
              "--keep 2: the bundle a symlink points to is untouched")
    chk.check(os.path.isfile(os.path.join(parent, "notes", "x.txt")), "--keep 2: a plain directory's file untouched")
    st.check_bundle(chk, os.path.join(parent, "b4"), "--keep 2: the new bundle")

    time.sleep(1.1)
    r = st.snap("--keep-size", "1", "-o", os.path.join(parent, "b5"), "--timeout", TIMEOUT)
    chk.check(r.rc in st.BUNDLE_RC, "--keep-size 1: exit 0 or 4\n%s" % r.describe())
    names = sorted(os.listdir(parent))
    chk.eq(names, sorted(others + ["b5"]), "--keep-size 1: only the new bundle and every non-bundle remain")
    chk.eq(st.leftovers(parent), [], "retention: no temporary directory left")


def check_nobody(chk, tmp):
    setpriv = st.as_root_with("setpriv", "the run as nobody")
    if not setpriv:
        return
    home = os.path.join(tmp, "nobody")
    os.mkdir(home)
    os.chmod(tmp, 0o755)
    os.chown(home, NOBODY, NOBODY)
    tool = os.path.join(home, "diag-snap")
    shutil.copy(dt.need_path("diag_snap"), tool)
    os.chmod(tool, 0o755)
    as_nobody = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
    r = dt.run(as_nobody + [tool, "--version"])
    if r.rc != 0:
        dt.log("user %d cannot run a copy of diag-snap (%s): not checked" % (NOBODY, r.err.strip()[:200]))
        return
    out = os.path.join(home, "b")
    r = dt.run(as_nobody + [tool, "-o", out, "--timeout", TIMEOUT], timeout=60, cwd=home)
    idx = st.check_bundle(chk, out, "as nobody")
    chk.eq(r.rc, 4 if st.partial(idx) else 0, "as nobody: exit status\n%s" % r.describe())
    built = [n for n, e in st.index_parts(idx).items() if e.get("kind") == "part" and e.get("status") != "not-built"]
    if not built:
        dt.log("as nobody: none of diag-snap's own parts is built: what nobody cannot read not checked")
        idx = None
    if os.path.isdir(out):
        chk.eq(os.lstat(out).st_uid, NOBODY, "as nobody: the bundle is owned by nobody")
    if idx is not None:
        missing = idx.get("missing") or []
        chk.check(missing, "as nobody: the index names what could not be read: %r" % missing)
        for m in missing if isinstance(missing, list) else []:
            chk.check(isinstance(m, dict) and any(m.get(k) for k in ("why", "reason")),
                      "as nobody: a missing entry says why: %r" % m)
        summary = dt.read_file(os.path.join(out, "summary.txt")) or ""
        chk.check("missing" in summary.lower(), "as nobody: summary.txt says what is missing:\n%s" % summary[:2000])
        parts = st.index_parts(idx)
        for p in ("host", "procs"):
            if p in parts and parts[p].get("status") != "not-built":
                chk.eq(parts[p].get("status"), "ok", "as nobody: part %s still runs (/proc is readable)" % p)


def main():
    st.run_checks(__doc__, "snap-keep", check_keep, check_nobody)


if __name__ == "__main__":
    main()
