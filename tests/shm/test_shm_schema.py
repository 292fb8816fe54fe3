#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump -J against its documentation (docs/shmdump-json.md): every object of
the list, of a decoded and checked channel with an anomaly, and of a --watch line
has exactly the keys of the documented examples, and every key the tables of the
document name appears in the output."""
import json
import os
import re

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-schema")
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "shmdump-json.md")


def same_shape(got, want, path):
    """Dicts: the same keys, recursively; lists: each element like the example's first."""
    if isinstance(want, dict):
        if not chk.check(isinstance(got, dict), "%s: want an object, got %r" % (path, got)):
            return
        chk.eq(sorted(got), sorted(want), "%s: keys" % path)
        for k in want:
            if k in got and got[k] is not None and want[k] is not None:
                same_shape(got[k], want[k], path + "." + k)
    elif isinstance(want, list) and want and isinstance(want[0], dict):
        if chk.check(isinstance(got, list), "%s: want an array" % path):
            for i, g in enumerate(got[:5]):
                same_shape(g, want[0], "%s[%d]" % (path, i))


def main():
    st.setup(__doc__)
    text = dt.read_file(DOC)
    if text is None:
        dt.harness_error("no %s" % DOC)
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    want_list, want_dec, want_watch = blocks[0], blocks[1], blocks[2]
    try:
        with st.Writer("--sysv", hex(st.unique_key(0)), "--case", "overwritten", "--reader-proc") as w:
            name = "key:%s" % w.fact("SEGMENT")["key"]
            doc = st.doc_of(chk, st.shmdump("-J"), "list")
            mine = [s for s in doc.get("segments", []) if s.get("name") == name]
            chk.eq(len(mine), 1, "list: the writer's segment")
            same_shape({**doc, "segments": mine, "mqueues": doc.get("mqueues") or want_list["mqueues"]}, want_list, "list")
            r = st.shmdump("-J", "--check", name)
            chk.eq(r.rc, 3, "decode: exit status")
            same_shape(st.doc_of(chk, r, "decode"), want_dec, "decode")
            r = st.shmdump("-J", "--watch", "100ms", "--count", 1, name)
            same_shape(json.loads(r.out.splitlines()[0]) if r.out else {}, want_watch, "watch")
            # every field the document's tables name is in some output
            seen = set()

            def keys(o):
                if isinstance(o, dict):
                    for k, v in o.items():
                        seen.add(k)
                        keys(v)
                elif isinstance(o, list):
                    for v in o:
                        keys(v)
            for argv in (["-J"], ["-J", "--check", "--nodes", "0-3", name],
                         ["-J", "--struct", "fixture_channel_header", "--debug-file", dt.need_path("shmwriter"), name]):
                keys(st.shmdump(*argv).json(chk))
            keys(json.loads(r.out.splitlines()[0]) if r.out else {})
            named = set(re.findall(r"^\| `([a-z_]+)`", text, re.M))
            for row in re.findall(r"^\| `([a-z_]+)`, `([a-z_]+)`(?:, `([a-z_]+)`)*", text, re.M):
                named.update(x for x in row if x)
            kinds = set(re.findall(r"^  \| `([a-z_]+)` \|", text, re.M))      # anomaly kinds, not keys
            missing = sorted(named - kinds - seen)
            chk.eq(missing, [], "fields the document names that no output has")
    finally:
        st.remove_everything()
    chk.finish()


main()
