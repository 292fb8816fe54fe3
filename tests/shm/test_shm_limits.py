#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump reads only what it needs, and says what is wrong: a file holding just the
magic is "too short" (with the size a header needs), not "no magic"; a 4 GiB
sparse file whose header is bad is judged from its header alone (small peak RSS,
a fraction of a second), and a good channel followed by 4 GiB of sparse bytes is
checked reading only the bytes its header claims. With -J a run that fails as a
whole prints the error object on stdout; processes it cannot read are said in the
shared words (gone, zombie, kernel thread), never "run as root" to root."""
import os
import subprocess
import tempfile
import time

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-limits")
BIG = 4 << 30
RSS_LIMIT_KB = 96 << 10         # an ASan build's own footprint is ~30 MB; the file is 4 GiB


def measured(*args):
    """Run shmdump; (rc, stdout, stderr, seconds, peak RSS in KiB) of that process alone."""
    start = time.monotonic()
    p = subprocess.Popen([dt.need_path("shmdump")] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dt.tool_env(), cwd="/")
    out, err = p.stdout.read(), p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - start, ru.ru_maxrss


def short_and_sparse(tmp):
    p = os.path.join(tmp, "magic-only")
    with open(p, "wb") as f:
        f.write(b"ATBUSMEM")
    r = st.shmdump(p)
    chk.eq(r.rc, 5, "magic only: exit status\n%s" % r.describe())
    lines = r.err_lines()
    chk.check(len(lines) == 1 and "8 bytes: too short" in lines[0] and "210 bytes" in lines[0]
              and "no ATBUSMEM magic" not in lines[0], "magic only: want one line saying it is too short: %r" % lines)

    # 4 GiB, sparse, a header of version 0
    p = os.path.join(tmp, "sparse")
    with open(p, "wb") as f:
        f.write(b"ATBUSMEM" + b"\0" * 8)
        f.truncate(BIG)
    for args in ([p], ["--check", p], ["-J", "--check", p]):
        rc, out, err, took, rss = measured(*args)
        what = "4 GiB sparse, version 0: shmdump %s" % " ".join(args[:-1])
        chk.eq(rc, 5, "%s: exit status (%s)" % (what, err.strip()))
        chk.check("channel version 0" in err, "%s: stderr %r" % (what, err))
        chk.check(rss < RSS_LIMIT_KB, "%s: peak RSS %d KiB (limit %d): it read more than the header" % (what, rss, RSS_LIMIT_KB))
        chk.check(took < 5, "%s: took %.1fs" % (what, took))
        dt.log("%s: %.2fs, peak RSS %d KiB" % (what, took, rss))

    # a good channel, then 4 GiB of sparse bytes it does not claim
    p = os.path.join(tmp, "padded")
    w = st.writer_exit("--file", p, "--case", "wrapped")
    if True:
        blocks = w.fact("BLOCKS")["count"]
        with open(p, "r+b") as f:
            f.truncate(BIG)
        rc, out, err, took, rss = measured("-J", "--check", p)
        chk.eq(rc, 0, "a channel padded to 4 GiB: exit status (%s)" % err.strip())
        d = st.decoded(st.doc_of(chk, dt.Result(["shmdump"], rc, out, err, took), "padded"))
        chk.eq((d.get("check") or {}).get("good_blocks"), blocks, "a channel padded to 4 GiB: good blocks")
        chk.eq((d.get("segment") or {}).get("size"), BIG, "a channel padded to 4 GiB: the segment's size")
        chk.check(rss < RSS_LIMIT_KB, "a channel padded to 4 GiB: peak RSS %d KiB (limit %d)" % (rss, RSS_LIMIT_KB))
        dt.log("a channel padded to 4 GiB, --check: %.2fs, peak RSS %d KiB" % (took, rss))


def json_errors_and_words(tmp):
    def error_object(r, what, reason):
        chk.eq(r.rc, 1, "%s: exit status\n%s" % (what, r.describe()))
        e = (r.json(chk) or {}).get("error") or {}
        chk.eq((e.get("reason"), e.get("status")), (reason, 1), "%s: error object %r" % (what, e))
        lines = r.err_lines()
        chk.check(len(lines) == 1 and e.get("message") and e.get("message") in lines[0],
                  "%s: the stderr line %r and the message %r" % (what, lines, e.get("message")))
        return e

    error_object(st.shmdump("-J", os.path.join(tmp, "nothing")), "-J on a missing file", "error")
    e = error_object(st.shmdump("-J", "pid:999999999"), "-J pid:GONE", "gone")
    chk.eq(e.get("pid"), 999999999, "-J pid:GONE: pid")
    r = st.shmdump("pid:2")
    chk.check(r.rc == 1 and "kernel thread" in r.err and "as root" not in r.err, "pid:2: %s" % r.describe())
    error_object(st.shmdump("-J", "pid:2"), "-J pid:2", "kernel-thread")
    z = os.fork()
    if z == 0:
        os._exit(0)
    try:
        time.sleep(0.2)
        r = st.shmdump("pid:%d" % z)
        chk.check(r.rc == 1 and "zombie" in r.err and str(os.getpid()) in r.err, "pid:ZOMBIE: %s" % r.describe())
        error_object(st.shmdump("-J", "pid:%d" % z), "-J pid:ZOMBIE", "zombie")
    finally:
        os.waitpid(z, 0)


def main():
    st.setup(__doc__)
    tmp = tempfile.mkdtemp(prefix="shmdump-limits-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    try:
        short_and_sparse(tmp)
        json_errors_and_words(tmp)
    finally:
        st.remove_everything()
        dt.shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


main()
