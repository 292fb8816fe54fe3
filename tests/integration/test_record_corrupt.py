# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record show on damaged recordings: a recording of three runs (three segment
files, -i 1s --flush 1s), then mutated copies (seeded, printed): truncations at random
offsets, random byte flips (1 to 20 bytes), zeroed ranges, a segment header smashed,
a segment file removed, an extra file of garbage named like a segment. `show` and
`show --dump` end with exit 0 or 4 within their timeout (never a signal, never a
sanitizer report), and every interval --dump prints is one of the original dump's
with the same values (whole JSON objects): damage may lose intervals, never change
them.

REC_CORRUPT_SEED=N repeats a run; REC_CORRUPT_ROUNDS=N changes the number of copies."""
import os
import random
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import snaptest as st  # noqa: E402

RUNS = 3
RUN_S = 3.5
# Each copy is read twice (show and show --dump); the ASan build takes about
# 0.1 s a read here: 120 copies stay well inside a minute.
ROUNDS = 120
BUDGET_S = 35.0
SHOW_TIMEOUT = 20
SEG_HDR_LEN = 140


def key(iv):
    return (iv.get("seq"), iv.get("time_ns"))


def mutate(rnd, d):
    """Damage the copy d one way; a description of what was done."""
    segs = rt.segment_files(d)
    name = rnd.choice(segs)
    path = os.path.join(d, name)
    size = os.path.getsize(path)
    kind = rnd.choice(["truncate", "truncate", "flip", "flip", "flip", "zero", "zero", "header", "remove", "extra"])
    if kind == "truncate":
        at = rnd.randrange(0, size)
        os.truncate(path, at)
        return "%s truncated at %d of %d" % (name, at, size)
    if kind in ("flip", "zero", "header"):
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            if kind == "flip":
                offs = sorted(rnd.randrange(size) for _ in range(rnd.randint(1, 20)))
                for o in offs:
                    data[o] ^= rnd.randint(1, 255)
                what = "%s: bytes flipped at %s" % (name, offs)
            elif kind == "zero":
                a = rnd.randrange(size)
                n = rnd.randint(1, min(4096, size - a))
                data[a:a + n] = bytes(n)
                what = "%s: bytes %d..%d zeroed" % (name, a, a + n)
            else:
                a = rnd.randrange(0, SEG_HDR_LEN - 8)
                n = rnd.randint(1, SEG_HDR_LEN - a)
                data[a:a + n] = bytes(rnd.randrange(256) for _ in range(n))
                what = "%s: segment header bytes %d..%d smashed" % (name, a, a + n)
            f.seek(0)
            f.write(data)
        return what
    if kind == "remove":
        os.unlink(path)
        return "%s removed" % name
    # a file of garbage named like a segment: after the last, or between two
    last = int(segs[-1][4:-5], 16)
    num = rnd.choice([last + 1, last + 7, max(0, int(segs[0][4:-5], 16) - 1)])
    gname = "seg-%016x.drec" % num
    gpath = os.path.join(d, gname)
    if os.path.exists(gpath):
        gname = "seg-%016x.drec" % (last + 100)
        gpath = os.path.join(d, gname)
    n = rnd.randint(0, 20000)
    head = rnd.choice([b"", b"DIAGREC1", b"DRF1"])
    with open(gpath, "wb") as f:
        f.write(head + bytes(rnd.randrange(256) for _ in range(n)))
    return "garbage file %s (%d bytes, starting %r)" % (gname, n + len(head), head)


def main():
    rt.setup(__doc__)
    rt.tool()
    dt.set_subreaper()
    chk = dt.Checker("record-corrupt")
    seed = int(os.environ.get("REC_CORRUPT_SEED") or time.time_ns() % (1 << 32))
    rounds = int(os.environ.get("REC_CORRUPT_ROUNDS") or ROUNDS)
    dt.log("seed %d (REC_CORRUPT_SEED=%d repeats it), %d copies" % (seed, seed, rounds))
    rnd = random.Random(seed)
    tmp = rt.temp_dir("corrupt")
    try:
        src = os.path.join(tmp, "rec")
        for i in range(RUNS):
            with rt.Recorder(src, "-i", "1s", "--flush", "1s", "--duration", "%dms" % (RUN_S * 1000), "-q",
                             log=os.path.join(tmp, "rec%d.log" % i)) as rec:
                try:
                    rec.proc.wait(timeout=RUN_S + 20)
                except Exception:
                    pass
                rc = rec.stop()
            chk.eq(rc, 0, "run %d of the recorder (--duration) exits 0\n%s" % (i, rec.output()))
        r, base = rt.dump_checked(chk, "the undamaged recording", src)
        chk.eq(r.rc, 0, "the undamaged recording: show --dump's exit status")
        chk.check(len(base) >= RUNS * 3, "the undamaged recording has %d intervals" % len(base))
        chk.eq(len(set(map(key, base))), len(base), "intervals of the undamaged recording are told apart by (seq, time)")
        chk.check(len(rt.segment_files(src)) >= 2, "segments: %r" % rt.segment_files(src))
        by_key = {key(iv): iv for iv in base}
        if chk.failures:
            chk.finish()
        start = time.monotonic()
        done = 0
        for i in range(rounds):
            if time.monotonic() - start > BUDGET_S:
                dt.log("time budget of %.0f s reached after %d copies" % (BUDGET_S, i))
                break
            d = os.path.join(tmp, "m%d" % i)
            shutil.copytree(src, d)
            what = "copy %d: %s" % (i, mutate(rnd, d))
            t = rt.show(d, timeout=SHOW_TIMEOUT)
            chk.check(t.rc in (0, 4), "%s: show exits 0 or 4\n%s" % (what, t.describe()))
            rep = rt.sanitizer_report(t.err)
            chk.check(rep is None, "%s: show: sanitizer report: %s\n%s" % (what, rep, t.err[-3000:]))
            r, got = rt.dump_checked(chk, what, d, timeout=SHOW_TIMEOUT)
            wrong = [key(iv) for iv in got if key(iv) not in by_key or not rt.same_interval(iv, by_key[key(iv)])]
            chk.check(not wrong, "%s: --dump printed intervals that are not the original's: %r" % (what, wrong[:5]))
            if wrong:
                iv = next(x for x in got if key(x) == wrong[0])
                orig = by_key.get(key(iv))
                if orig:
                    diff = sorted(k for k in set(iv) | set(orig) if iv.get(k) != orig.get(k))
                    dt.log("  first one differs in %r" % diff)
            shutil.rmtree(d, ignore_errors=True)
            done += 1
        dt.log("%d damaged copies read in %.1f s" % (done, time.monotonic() - start))
        st.no_children_left(chk, "record-corrupt")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
