#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump on channels in every state shmwriter makes (empty, partly full, wrapped,
full, a writer crashed mid-block, an overwritten block, bad hashes), in SysV and
POSIX segments and files, with the header aligned or packed and heads padded to
16 or 8 bytes: the summary and --check against what the writer says it
wrote, and against an independent decoder of the segment's bytes (read with
shmat through ctypes, or from the file); --nodes against the same bytes."""
import os
import tempfile

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-cases")
CASES = ["empty", "partial", "wrapped", "full", "crashed", "overwritten", "badhash"]


def segment_bytes(w):
    seg = w.fact("SEGMENT")
    if seg["kind"] == "sysv":
        return st.sysv_bytes(seg["id"], seg["size"])
    path = "/dev/shm" + seg["name"] if seg["kind"] == "posix" else seg["name"]
    with open(path, "rb") as f:
        return f.read()


def name_of(w, how):
    seg = w.fact("SEGMENT")
    if seg["kind"] == "sysv":
        return "key:%s" % seg["key"] if how == 0 else "key:%d" % int(seg["key"], 16) if how == 1 else "id:%d" % seg["id"]
    return "/dev/shm" + seg["name"] if seg["kind"] == "posix" else seg["name"]


def one_case(case, kind, n, tmp, layout=()):
    what = "%s/%s%s" % (case, kind, "".join(" " + x for x in layout))
    packed = "--packed" in layout
    align = int(layout[layout.index("--align") + 1]) if "--align" in layout else 16
    where = {"sysv": ["--sysv", hex(st.unique_key(n))], "posix": ["--posix", st.unique_name(n)],
             "file": ["--file", os.path.join(tmp, "ch-%s-%d" % (case, n))]}[kind]
    extra = ["--seq-start", "4023547700"] if case == "overwritten" else []
    with st.Writer(*where, "--case", case, "--msgs", 300, "--size", 1 << 20, *extra, *layout) as w:
        ch, bl = w.fact("CHANNEL"), w.fact("BLOCKS")
        want_anom = w.anomalies()
        r = st.shmdump("-J", "--check", name_of(w, n % 3))
        want_rc = 3 if want_anom else 0
        chk.check(r.rc == want_rc, "%s: exit %s, want %s\n%s" % (what, r.rc, want_rc, r.describe()))
        d = st.decoded(st.doc_of(chk, r, what))
        s = (d.get("channel") or {}).get("summary") or {}
        io = (d.get("channel") or {}).get("io") or {}
        k = d.get("check") or {}
        chk.eq(d.get("format"), "libatbus", "%s: format" % what)
        chk.eq((s.get("layout"), s.get("align_size")), ("packed" if packed else "aligned", align), "%s: layout" % what)
        chk.eq(s.get("node_count"), ch["nodes"], "%s: node count" % what)
        chk.eq(io.get("read_cur"), ch["read"], "%s: read cursor" % what)
        chk.eq(io.get("write_cur"), ch["write"], "%s: write cursor" % what)
        chk.eq(io.get("operation_seq"), ch["seq"], "%s: operation sequence" % what)
        chk.eq(s.get("used_nodes"), ch["used"], "%s: used nodes" % what)
        chk.eq(s.get("free_nodes"), ch["nodes"] - 1 - ch["used"], "%s: free nodes" % what)
        chk.eq(d.get("channel", {}).get("configure", {}).get("protect_node_count"), ch["protect"], "%s: protect" % what)
        chk.eq(k.get("good_blocks"), bl["count"], "%s: good blocks" % what)
        chk.eq(k.get("bytes"), bl["bytes"], "%s: bytes in good blocks" % what)
        if not want_anom and bl["count"]:
            chk.eq((k.get("first_seq"), k.get("last_seq")), (bl["first_seq"], bl["last_seq"]), "%s: seq range" % what)
        got_anom = sorted((a.get("kind"), a.get("node")) for a in k.get("anomalies", []))
        chk.eq(got_anom, want_anom, "%s: anomalies (kind, node)" % what)
        chk.eq(k.get("anomaly_count"), len(want_anom), "%s: anomaly count" % what)
        if case == "full":
            chk.check(s.get("writable_nodes", 99) < 1 and s.get("fill_pct", 0) > 99.9,
                      "%s: a full ring has nothing writable: %s" % (what, s))
        if case == "wrapped":
            chk.check(ch["write"] < ch["read"], "%s: the fixture's ring is not wrapped: %s" % (what, ch))

        # the independent decoder on the segment's own bytes
        buf = segment_bytes(w)
        h = st.decode(buf, packed=packed, align=align)
        chk.eq((h["node_count"], h["read_cur"], h["write_cur"], h["used"]),
               (s.get("node_count"), io.get("read_cur"), io.get("write_cur"), s.get("used_nodes")),
               "%s: independent decoder's header" % what)
        if not want_anom:
            chk.eq(len(h["blocks"]), k.get("good_blocks"), "%s: independent decoder's block count" % what)
            chk.eq(sum(b[2] for b in h["blocks"]), k.get("bytes"), "%s: independent decoder's bytes" % what)
            chk.check(all(b[3] for b in h["blocks"]), "%s: independent decoder finds a bad hash" % what)
        if case == "badhash":
            bad = sorted(b[0] for b in h["blocks"] if not b[3])
            chk.eq(bad, sorted(n for kind_, n in want_anom), "%s: bad hashes by the independent decoder" % what)

        # --nodes over the first live blocks: flags, seq, length, hash as the bytes say
        if h["blocks"]:
            first = h["blocks"][0][0]
            last = min(first + 7, h["node_count"] - 1)
            r2 = st.shmdump("-J", "--nodes", "%d-%d" % (first, last), name_of(w, 2))
            chk.eq(r2.rc, 0, "%s --nodes: exit status\n%s" % (what, r2.describe()))
            nodes = st.decoded(st.doc_of(chk, r2, what + " --nodes")).get("nodes") or []
            chk.eq([x.get("index") for x in nodes], list(range(first, last + 1)), "%s --nodes: indexes" % what)
            starts = {b[0]: b for b in h["blocks"]}
            for x in nodes:
                i = x.get("index")
                flag, seq = st.struct.unpack_from("<II", buf, h["area_head"] + max(8, align) * i)
                chk.eq((x.get("seq"), x.get("start"), x.get("written")), (seq, bool(flag & 2), bool(flag & 1)),
                       "%s --nodes %s: seq/start/written" % (what, i))
                if i in starts:
                    chk.eq(x.get("length"), starts[i][2], "%s --nodes %s: length" % (what, i))
                    chk.eq(x.get("hash_ok"), starts[i][3], "%s --nodes %s: hash_ok" % (what, i))
                    off = h["area_data"] + h["node_size"] * i + max(16, align)
                    chk.eq(x.get("data"), buf[off:off + min(16, starts[i][2])].hex(), "%s --nodes %s: data" % (what, i))
            # the table form of the same, raw
            r3 = st.shmdump("--nodes", "%d-%d" % (first, last), "-o", "INDEX,SEQ,START", "-r", "-n", name_of(w, 2))
            rows = [l.split() for l in r3.out.splitlines() if l.strip()]
            chk.eq(rows, [[str(x.get("index")), str(x.get("seq")), "true" if x.get("start") else "false"] for x in nodes],
                   "%s --nodes -o -r -n rows" % what)

        # the text report says what -J says
        r4 = st.shmdump("--check", name_of(w, 0))
        chk.eq(r4.rc, want_rc, "%s text: exit status" % what)
        chk.check("channel used nodes: %d " % ch["used"] in r4.out, "%s text: used nodes line\n%s" % (what, r4.out[:1500]))
        chk.check(("OK: 0 anomalies" if not want_anom else "FAILED: %d anomal" % len(want_anom)) in r4.out,
                  "%s text: verdict line\n%s" % (what, r4.out[-800:]))
        for a in k.get("anomalies", []):
            chk.check(a.get("text", "?") in r4.out, "%s text: anomaly line %r missing" % (what, a.get("text")))


def main():
    st.setup(__doc__)
    tmp = tempfile.mkdtemp(prefix="shmdump-test-")
    try:
        n = 0
        for case in CASES:
            for kind in ("sysv", "posix", "file"):
                one_case(case, kind, n, tmp)
                n += 1
        # the header as packed builds wrote it, and the align size of old builds
        for case in CASES:
            for layout in (("--packed",), ("--align", "8"), ("--packed", "--align", "8")):
                one_case(case, "file", n, tmp, layout)
                n += 1
    finally:
        st.remove_everything()
        dt.shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


main()
