#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump --struct TYPE --debug-file BINARY: the writer's own header struct, laid
out from its DWARF over a live segment, against the decoder's view of the same
segment and against the layout read by Python's struct module; a short copy, a
type that is not there, a binary without DWARF."""
import os
import tempfile

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-struct")


def main():
    st.setup(__doc__)
    writer = dt.need_path("shmwriter")
    tmp = tempfile.mkdtemp(prefix="shmdump-test-")
    try:
        with st.Writer("--sysv", hex(st.unique_key(0)), "--case", "wrapped") as w:
            name = "key:%s" % w.fact("SEGMENT")["key"]
            r = st.shmdump("-J", "--struct", "fixture_channel_header", "--debug-file", writer, name)
            chk.eq(r.rc, 0, "--struct -J: exit status\n%s" % r.describe())
            s = st.decoded(st.doc_of(chk, r, "--struct")).get("struct") or {}
            chk.eq(s.get("type"), "struct fixture_channel_header", "type")
            chk.eq(s.get("size"), st.HEADER.size, "size vs the layout of channel_mem.cpp")
            f = {x.get("name"): x for x in s.get("fields", [])}
            buf = st.sysv_bytes(w.fact("SEGMENT")["id"], 4096)
            h = dict(zip(st.FIELDS, st.HEADER.unpack_from(buf, 0)))
            ch = w.fact("CHANNEL")
            want = {"node_count": ch["nodes"], "read_cur": ch["read"], "write_cur": ch["write"],
                    "operation_seq": ch["seq"], "conf.protect_node_count": ch["protect"],
                    "node_size": 256, "node_size_bin_power": 8, "channel_version": 2,
                    "area_head_offset": h["area_head"], "area_data_offset": h["area_data"],
                    "area_end_offset": h["area_end"]}
            for k, v in want.items():
                chk.eq((f.get(k) or {}).get("value"), str(v), "field %s" % k)
            chk.eq((f.get("node_magic") or {}).get("value"), '"ATBUSMEM"', "node_magic")
            chk.eq((f.get("node_magic") or {}).get("type"), "char[16]", "node_magic type")
            offs = [x.get("offset") for x in s.get("fields", [])]
            chk.eq(offs[:12], [0, 16, 18, 20, 24, 32, 40, 48, 56, 64, 72, 80], "offsets of the first fields")
            chk.eq(len(s.get("fields", [])), 28, "fields (conf flattened)")
            dec = st.decoded(st.doc_of(chk, st.shmdump("-J", name), "decode")).get("channel") or {}
            chk.eq((f.get("area_data_offset") or {}).get("value"), str(h["area_data"]), "area_data_offset")
            chk.eq((f.get("write_cur") or {}).get("value"), str(dec.get("io", {}).get("write_cur")),
                   "write_cur vs the decoder")

            r = st.shmdump("--struct", "fixture_channel_header", "--debug-file", writer, name)
            chk.check(r.rc == 0 and "node_count = %d" % ch["nodes"] in r.out and
                      "conf.protect_node_count = %d" % ch["protect"] in r.out, "--struct text:\n" + r.describe())

            short = os.path.join(tmp, "short")
            with open(short, "wb") as fh:
                fh.write(buf[:60])
            r = st.shmdump("-J", "--struct", "fixture_channel_header", "--debug-file", writer, short)
            chk.eq(r.rc, 0, "--struct on 60 bytes: exit status\n%s" % r.describe())
            fs = (st.decoded(st.doc_of(chk, r, "short")).get("struct") or {}).get("fields", [])
            chk.eq([x.get("value") is not None for x in fs][:10], [True] * 8 + [False] * 2, "values inside 60 bytes only (read_cur ends at 56)")
            chk.check("shorter than" in r.err, "--struct on 60 bytes: no warning: %r" % r.err)

            r = st.shmdump("--struct", "no_such_struct", "--debug-file", writer, name)
            chk.check(r.rc == 1 and "no struct, class, union or typedef 'no_such_struct'" in r.err, r.describe())
            stripped = os.path.join(tmp, "stripped")
            if dt.run(["objcopy", "--strip-debug", writer, stripped]).rc == 0:
                r = st.shmdump("--struct", "fixture_channel_header", "--debug-file", stripped, name)
                chk.check(r.rc == 1 and "no DWARF" in r.err, "stripped binary: " + r.describe())
            r = st.shmdump("--struct", "x", "--debug-file", os.path.join(tmp, "none"), name)
            chk.check(r.rc == 1 and "none" in r.err, "missing binary: " + r.describe())
    finally:
        st.remove_everything()
        dt.shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


main()
