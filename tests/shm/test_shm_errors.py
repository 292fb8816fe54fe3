#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump on bad input and at its edges: corrupt headers (one precise line, exit
5, no crash), files that are no channel, truncated copies, segments that do not
exist; --save (0600, never over an existing file or through a symlink, nothing
left behind when the write fails; the copy decodes like the live segment); the
strictly read-only promise checked with strace (every shmat SHM_RDONLY, no
segment created, no file opened for writing but --save's) and with the bytes of
the segment before and after; the command line (--help, bad options)."""
import os
import re
import stat
import tempfile

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-errors")

BAD = [
    ("bad-nodecount", "not a libatbus channel: node count 9e18 exceeds segment"),
    ("bad-magic", "not a libatbus channel: no ATBUSMEM magic"),
    ("bad-version", "not a libatbus channel: channel version 3"),
    ("bad-cursor", "not a libatbus channel: read cursor 3847 outside the 3840 nodes"),
]


def one_error_line(r, what, needle, rc):
    chk.eq(r.rc, rc, "%s: exit status\n%s" % (what, r.describe()))
    lines = r.err_lines()
    chk.check(len(lines) == 1 and needle in lines[0], "%s: want one stderr line with %r, got %r" % (what, needle, lines))
    chk.check("runtime error" not in r.err and "Sanitizer" not in r.err, "%s: sanitizer report\n%s" % (what, r.err))


def bad_headers(tmp):
    for i, (case, needle) in enumerate(BAD):
        with st.Writer("--sysv", hex(st.unique_key(i)), "--case", case) as w:
            r = st.shmdump("--check", "key:%s" % w.fact("SEGMENT")["key"])
            one_error_line(r, case, needle, 5)
            r = st.shmdump("-J", "key:%s" % w.fact("SEGMENT")["key"])
            chk.eq(r.rc, 5, "%s -J: exit status" % case)
            d = st.decoded(st.doc_of(chk, r, case + " -J"))
            chk.check(needle.split(": ", 1)[1] in (d.get("error") or ""), "%s -J: error %r" % (case, d.get("error")))
            chk.eq(d.get("channel"), None, "%s -J: no channel" % case)
            # the listing still lists it, and says libatbus by its magic only when it has one
            doc = st.doc_of(chk, st.shmdump("-J"), case + " list")
            s = [x for x in doc.get("segments", []) if x.get("id") == w.fact("SEGMENT")["id"]]
            chk.eq([x.get("format") for x in s], [None if case == "bad-magic" else "libatbus"], "%s: listed format" % case)

    # files that are no channel: empty, small, random, a directory, not there
    empty = os.path.join(tmp, "empty")
    open(empty, "wb").close()
    small = os.path.join(tmp, "small")
    with open(small, "wb") as f:
        f.write(b"ATBUSMEM" + b"\0" * 50)
    rnd = os.path.join(tmp, "random")
    with open(rnd, "wb") as f:
        f.write(os.urandom(1 << 20))
    one_error_line(st.shmdump(empty), "empty file", "not a libatbus channel", 5)
    one_error_line(st.shmdump(small), "58-byte file", "not a libatbus channel", 5)
    one_error_line(st.shmdump("--check", rnd), "random file", "not a libatbus channel", 5)
    one_error_line(st.shmdump("--format", "libatbus", rnd), "random file as libatbus", "not a libatbus channel", 5)
    one_error_line(st.shmdump(tmp), "a directory", "not a regular file", 1)
    one_error_line(st.shmdump(os.path.join(tmp, "nothing")), "no such file", "No such file", 1)
    one_error_line(st.shmdump("key:0x7ffffff1"), "no such key", "no SysV segment with key", 1)
    one_error_line(st.shmdump("id:2147483000"), "no such id", "no SysV segment with id", 1)
    one_error_line(st.shmdump("pid:999999999"), "no such pid", "no such process", 1)
    one_error_line(st.shmdump("pid:%d" % os.getpid()), "a pid without shared memory", "maps no shared memory", 1)

    # a truncated copy of a good channel: the header no longer fits
    with st.Writer("--file", os.path.join(tmp, "good"), "--case", "wrapped") as w:
        with open(os.path.join(tmp, "good"), "rb") as f:
            data = f.read()
    for cut in (len(data) // 2, 4096 + 100, 300, 100):
        p = os.path.join(tmp, "cut-%d" % cut)
        with open(p, "wb") as f:
            f.write(data[:cut])
        one_error_line(st.shmdump("--check", p), "copy cut at %d" % cut, "not a libatbus channel", 5)
    # every byte of the header flipped, one at a time: a line or a decode, never a crash
    p = os.path.join(tmp, "flip")
    crashes = []
    for off in range(0, 216, 3):
        b = bytearray(data)
        b[off] ^= 0xff
        with open(p, "wb") as f:
            f.write(b)
        r = st.shmdump("--check", "-J", p)
        if r.rc not in (0, 3, 5) or "Sanitizer" in r.err or "runtime error" in r.err:
            crashes.append((off, r.rc, r.err[-300:]))
    chk.eq(crashes, [], "header bytes flipped: exit status other than 0, 3, 5")


def save_and_readonly(tmp):
    key = st.unique_key(8)
    with st.Writer("--sysv", hex(key), "--case", "badhash", "--reader-proc") as w:
        name = "key:%s" % w.fact("SEGMENT")["key"]
        shmid = w.fact("SEGMENT")["id"]
        size = w.fact("SEGMENT")["size"]
        before = st.sysv_bytes(shmid, size)
        rec = st.sysv_by_key(key)

        copy = os.path.join(tmp, "copy.shm")
        r = st.shmdump("--save", copy, name)
        chk.eq(r.rc, 0, "--save: exit status\n%s" % r.describe())
        if chk.check(os.path.exists(copy), "--save wrote nothing"):
            m = os.lstat(copy)
            chk.eq(stat.S_IMODE(m.st_mode), 0o600, "--save: mode")
            with open(copy, "rb") as f:
                chk.check(f.read() == before, "--save: the copy differs from the segment")
        # the copy decodes like the live segment
        live = st.decoded(st.doc_of(chk, st.shmdump("-J", "--check", name), "live"))
        saved = st.decoded(st.doc_of(chk, st.shmdump("-J", "--check", copy), "copy"))
        chk.eq(saved.get("channel"), live.get("channel"), "--save: the copy's channel vs the live one")
        chk.eq(saved.get("check"), live.get("check"), "--save: the copy's check vs the live one")
        chk.eq(saved.get("segment", {}).get("kind"), "file", "--save: the copy is a file")

        # a link to the copy is followed; a link in /dev/shm (anyone may make one) is not
        ln = os.path.join(tmp, "copy-link")
        os.symlink(copy, ln)
        r = st.shmdump("-J", "--check", ln)
        chk.eq(st.decoded(st.doc_of(chk, r, "link to the copy")).get("check"), live.get("check"), "a link to the copy")
        shmln = "/dev/shm/shmdump-test-link-%d" % os.getpid()
        st._made.append(("posix", shmln[len("/dev/shm"):]))
        os.symlink(copy, shmln)
        one_error_line(st.shmdump(shmln), "a symlink in /dev/shm", "Too many levels of symbolic links", 1)
        os.unlink(shmln)

        # never over an existing file, never through a symlink
        with open(copy, "rb") as f:
            old = f.read()
        r = st.shmdump("--save", copy, name)
        chk.check(r.rc == 1 and "File exists" in r.err, "--save over a file: %s" % r.describe())
        with open(copy, "rb") as f:
            chk.check(f.read() == old, "--save changed an existing file")
        target = os.path.join(tmp, "target")
        open(target, "wb").close()
        link = os.path.join(tmp, "link")
        os.symlink(target, link)
        r = st.shmdump("--save", link, name)
        chk.eq(r.rc, 1, "--save through a symlink: exit status")
        chk.eq(os.path.getsize(target), 0, "--save wrote through a symlink")
        # a failed write leaves nothing: a tmpfs too small for the segment
        small = None
        if os.geteuid() == 0:
            small = os.path.join(tmp, "smallfs")
            os.mkdir(small)
            if dt.run(["mount", "-t", "tmpfs", "-o", "size=64k", "none", small]).rc == 0:
                out = os.path.join(small, "copy")
                r = st.shmdump("--save", out, name)
                chk.check(r.rc == 1 and "No space left" in r.err, "--save to a full fs: %s" % r.describe())
                chk.check(not os.path.exists(out), "--save left a half-written file behind")
                dt.run(["umount", small])
            else:
                small = None
        if small is None:
            dt.log("SKIP part: --save to a full file system needs root to mount a small tmpfs")

        # read-only: strace sees only SHM_RDONLY attaches, no segment made, no file
        # opened for writing; the bytes and the kernel's record stay as they were
        strace = dt.which("strace")
        if strace:
            env = dt.tool_env()
            env["ASAN_OPTIONS"] = "detect_leaks=0"     # LeakSanitizer does not work under ptrace
            r = dt.run([strace, "-f", "-qq", "-e", "trace=shmget,shmat,shmctl,open,openat,mmap,ftruncate",
                        dt.need_path("shmdump"), "--check", name], env=env)
            chk.eq(r.rc, 3, "strace shmdump --check: exit status\n%s" % r.describe())
            calls = r.err
            chk.check(re.search(r"shmat\(%d, NULL, SHM_RDONLY\)" % shmid, calls), "strace: no read-only shmat:\n%s" % calls[-2000:])
            bad = [l for l in calls.splitlines() if re.search(r"shmat\(.*\)", l) and "SHM_RDONLY" not in l]
            bad += [l for l in calls.splitlines() if "shmget(" in l or "ftruncate(" in l]
            bad += [l for l in calls.splitlines() if re.search(r"shmctl\(\d+, (IPC_RMID|IPC_SET|SHM_LOCK)", l)]
            bad += [l for l in calls.splitlines() if re.search(r"open(at)?\(.*O_(WRONLY|RDWR)", l) and "/dev/null" not in l]
            chk.eq(bad, [], "strace: calls that could change a segment")
        else:
            dt.log("SKIP part: strace is not installed")
        after = st.sysv_bytes(shmid, size)
        chk.check(after == before, "the segment's bytes changed while shmdump read it")
        rec2 = st.sysv_by_key(key)
        chk.eq((rec2["shmid"], rec2["perms"], rec2["size"], rec2["ctime"], rec2["uid"]),
               (rec["shmid"], rec["perms"], rec["size"], rec["ctime"], rec["uid"]), "the segment's record changed")
        chk.eq(rec2["nattch"], 2, "nattch after shmdump detached")


def command_line():
    r = st.shmdump("--help")
    chk.check(r.rc == 0 and r.out.startswith("Usage:") and not r.err, "--help: %s" % r.describe())
    man = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "man", "shmdump.1.scd")
    text = dt.read_file(man)
    if chk.check(text is not None, "man page %s missing" % man):
        for opt in sorted(set(re.findall(r"--[a-z][a-z-]+", r.out))):
            chk.check(opt.replace("-", "\\-") in text or opt in text, "--help has %s, the man page does not" % opt)
        for opt in sorted(set(re.findall(r"\*(--[a-z][a-z\\-]+)\*", text))):
            chk.check(opt.replace("\\", "") in r.out, "the man page has %s, --help does not" % opt.replace("\\", ""))
        for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COLUMNS", "OUTPUT", "EXAMPLES", "OVERHEAD",
                    "EXIT STATUS", "SEE ALSO"):
            chk.check(re.search(r"^# %s$" % sec, text, re.M), "man page: no section %s" % sec)
    for args, needle in ((["--bogus"], "unrecognized option"), (["--nodes", "x-y", "a"], "invalid node range"),
                         (["--watch=zz", "a"], "invalid interval"), (["--check"], "needs a SEGMENT"),
                         (["--struct", "T", "a"], "go together"), (["--count", "3", "a"], "goes with --watch"),
                         (["key:zz"], "invalid segment name"), (["--format", "aeron", "a"], "unknown format"),
                         (["--watch", "--check", "a"], "--watch goes with")):
        r = st.shmdump(*args)
        chk.check(r.rc == 2 and needle in r.err and "Try 'shmdump --help'" in r.err,
                  "%s: want exit 2, %r and Try: %s" % (args, needle, r.describe()))
        chk.eq(r.out, "", "%s: nothing on stdout" % args)
    r = st.shmdump("-V")
    chk.check(r.rc == 0 and "shmdump" in r.out, "-V: " + r.describe())


def main():
    st.setup(__doc__)
    tmp = tempfile.mkdtemp(prefix="shmdump-test-")
    try:
        command_line()
        bad_headers(tmp)
        save_and_readonly(tmp)
    finally:
        st.remove_everything()
        for d in (os.path.join(tmp, "smallfs"),):
            if os.path.ismount(d):
                dt.run(["umount", "-l", d])
        dt.shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


main()
