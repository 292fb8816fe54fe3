# SPDX-License-Identifier: GPL-2.0-or-later
"""`meson install --destdir` puts every program, man page, completion and document
where it belongs, and what it installs works from there: diag finds its tools, the
completion completes the installed tools.

With --release (a build set up with build-release.ini) it also checks that the
installed programs are stripped (no .symtab), except the demo worker, whose
functions `diag demo` names."""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import test_completion as tc  # noqa: E402

PROGRAMS = ["diag", "diag-stack", "diag-fds", "diag-locks", "diag-chain", "diag-core", "diag-snap", "diag-record", "diag-top",
            "shmdump"]


def section_names(path):
    """Names of the ELF file's sections (64-bit little-endian, as built here)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            return None
        shoff, = struct.unpack_from("<Q", ident, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ident, 0x3a)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        heads = [struct.unpack_from("<IIQQQQ", table, i * shentsize) for i in range(shnum)]
        _, _, _, _, stroff, strsize = heads[shstrndx]
        f.seek(stroff)
        strtab = f.read(strsize)
    return [strtab[h[0]:strtab.index(b"\0", h[0])].decode() for h in heads]


def build_options(build):
    with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
        return {o["name"]: o["value"] for o in json.load(f)}


def completions_dir(opts):
    """Where meson.build puts the completion: the option, bash-completion's
    completionsdir under the prefix, or DATADIR/bash-completion/completions."""
    if opts.get("bashcompletiondir"):
        return opts["bashcompletiondir"]
    pc = shutil.which("pkg-config")
    if pc:
        r = subprocess.run([pc, "--define-variable=prefix=" + opts["prefix"],
                            "--variable=completionsdir", "bash-completion"],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    return os.path.join(opts["datadir"], "bash-completion", "completions")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meson", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--release", action="store_true")
    args = ap.parse_args()
    chk = dt.Checker("install")

    opts = build_options(args.build)
    prefix = opts["prefix"]

    def dest(destdir, d, *rest):
        return os.path.join(destdir, os.path.join(prefix, d).lstrip("/"), *rest)

    destdir = tempfile.mkdtemp(prefix="diagtest-install-")
    try:
        r = dt.run([args.meson, "install", "-C", args.build, "--no-rebuild", "--quiet",
                    "--destdir", destdir], timeout=300)
        if not chk.check(r.rc == 0, "meson install: %s" % r.describe()):
            chk.finish()
        bindir = dest(destdir, opts["bindir"])
        for p in PROGRAMS:
            path = os.path.join(bindir, p)
            chk.check(os.access(path, os.X_OK), "%s installed, executable, in %s" % (p, bindir))
        worker = dest(destdir, opts["libexecdir"], "diagkit", "diag-demo-worker")
        chk.check(os.access(worker, os.X_OK), "diag-demo-worker installed in %s" % worker)

        scdoc = shutil.which("scdoc") and opts.get("man") != "disabled"
        if scdoc:
            man1 = dest(destdir, opts["mandir"], "man1")
            for p in PROGRAMS:
                page = os.path.join(man1, p + ".1")
                chk.check(os.path.isfile(page) and b".TH" in open(page, "rb").read(),
                          "man page %s installed" % page)
        else:
            dt.log("scdoc not found or man pages disabled: man pages not checked")

        compdir = dest(destdir, completions_dir(opts))
        if opts.get("bashcompletiondir") != "no":
            for p in PROGRAMS:
                path = os.path.join(compdir, p)
                chk.check(os.path.isfile(path) and "complete -F" in (dt.read_file(path) or ""),
                          "completion for %s installed as %s (a file or a link to one)" % (p, path))

        docdir = dest(destdir, opts["datadir"], "doc", "diagkit")
        want = ["README.md"]
        want += [d for d in os.listdir(os.path.join(args.source, "docs")) if d.endswith(".md")]
        want += [os.path.join("examples", e) for e in os.listdir(os.path.join(args.source, "docs", "examples"))]
        for d in sorted(want):
            chk.check(os.path.isfile(os.path.join(docdir, d)), "%s installed in %s" % (d, docdir))

        # diag-snap's timer and service, the service running the installed diag-snap
        with open(os.path.join(args.build, "meson-info", "intro-installed.json")) as f:
            units = [v for v in json.load(f).values() if v.endswith("/diag-snap.service")]
        chk.check(units, "diag-snap.service is installed")
        for u in units:
            path = os.path.join(destdir, u.lstrip("/"))
            text = dt.read_file(path) or ""
            chk.check(os.path.join(prefix, opts["bindir"], "diag-snap") in text,
                      "%s runs the installed diag-snap: %r" % (path, text))
            chk.check(os.path.isfile(os.path.join(os.path.dirname(path), "diag-snap.timer")),
                      "diag-snap.timer installed next to %s" % path)

        # diag-record's service, running the installed recorder
        with open(os.path.join(args.build, "meson-info", "intro-installed.json")) as f:
            units = [v for v in json.load(f).values() if v.endswith("/diag-record.service")]
        chk.check(units, "diag-record.service is installed")
        for u in units:
            text = dt.read_file(os.path.join(destdir, u.lstrip("/"))) or ""
            chk.check(os.path.join(prefix, opts["bindir"], "diag-record") in text and "Restart=always" in text,
                      "%s runs the installed diag-record, Restart=always: %r" % (u, text))

        # What was installed works from where it is.
        r = dt.run([os.path.join(bindir, "diag")])
        verbs = [l.split()[0] for l in r.out.splitlines() if l.startswith(" ") and l.split()]
        for v in ("stack", "fds", "locks", "chain", "core", "shm"):
            chk.check(v in verbs, "installed diag lists %s (its tools found next to it): %s" % (v, r.describe()))
        if os.path.isfile(os.path.join(compdir, "diag")) and shutil.which("bash"):
            tools = {p: os.path.join(bindir, p) for p in PROGRAMS if p != "diag"}
            tc.check_all(chk, os.path.join(compdir, "diag"), tools, os.path.join(bindir, "diag"),
                         what="installed: ")

        programs = [os.path.join(bindir, p) for p in PROGRAMS]
        if args.release:
            for p in programs:
                secs = section_names(p)
                chk.check(secs is not None and ".symtab" not in secs and ".debug_info" not in secs,
                          "%s is stripped (sections: %s)" % (p, secs))
            secs = section_names(worker)
            chk.check(secs and ".symtab" in secs, "the demo worker keeps its symbols (sections: %s)" % secs)
        elif not opts.get("strip"):
            secs = section_names(programs[1])
            chk.check(secs and ".symtab" in secs,
                      "strip is off: %s keeps its symbols (sections: %s)" % (programs[1], secs))
    finally:
        shutil.rmtree(destdir, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
