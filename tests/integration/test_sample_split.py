# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-sample on a thread that splits its time 3:1 between two functions (cpufix
split: split_heavy and split_light): their self times are in that ratio, within
loose bounds; --folded writes collapsed stacks rooted at "cpufix-PID;tid-TID-NAME"
whose counts sum to the JSON's on-CPU samples; --svg writes a well-formed SVG; both
files are created 0600 and never replace an existing file."""
import os
import re
import shutil
import stat
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import sampletest as st  # noqa: E402


def main():
    st.setup(__doc__)
    dt.need_path("diag_sample")
    chk = dt.Checker("sample-split")
    mk = st.markers()
    tmp = tempfile.mkdtemp(prefix="diag-sample-split-")
    try:
        with st.cpufix("split") as fx:
            tid = fx.tid("splitter")
            folded, svg = os.path.join(tmp, "s.folded"), os.path.join(tmp, "s.svg")
            cpu = st.CpuOracle(fx.pid).start()
            r = st.diag_sample("-J", "-d", "3s", "-F", "199", "--folded", folded, "--svg", svg, fx.pid)
            cpu.stop()
            doc = r.json(chk)
            st.check_schema(chk, doc, "-J --folded --svg")
            chk.eq(r.rc, st.expected_status(doc), "exit status of `%s`\n%s" % (r.cmd(), r.err[-2000:]))
            proc = st.process(doc, fx.pid) or {}
            total = proc.get("oncpu_samples", 0)
            want = cpu.samples(tid, 199)
            chk.check(st.near(total, want), "on-CPU samples %d: 199 Hz of the %.2f s the splitter ran (schedstat)"
                      % (total, cpu.cpu_s(tid) or 0))
            funcs = {f.get("function"): f.get("samples", 0) for f in proc.get("functions") or []}
            heavy, light = funcs.get("split_heavy", 0), funcs.get("split_light", 0)
            chk.check(heavy + light >= 0.9 * total, "split_heavy + split_light %d of %d samples (>= 90 %%): %r"
                      % (heavy + light, total, funcs))
            ratio = heavy / light if light else float("inf")
            chk.check(2.0 <= ratio <= 4.5, "split_heavy/split_light = %d/%d = %.2f in [2, 4.5] (3 units of work to 1)"
                      % (heavy, light, ratio))
            text = (proc.get("verdict") or {}).get("text") or ""
            chk.check("split_heavy" in text and "split_light" in text,
                      "the verdict %r names both leaf functions (each above 10 %%)" % text)
            # the lines of each function's loop: the leaf frames' lines
            lines = {}
            for s in proc.get("stacks") or []:
                fr = st.user_frames(s)
                if fr and fr[0].get("function") in ("split_heavy", "split_light"):
                    lines.setdefault(fr[0]["function"], set()).add(fr[0].get("line"))
                    if len(fr) > 1:
                        want = mk["split_loop-heavy" if fr[0]["function"] == "split_heavy" else "split_loop-light"]
                        chk.eq((fr[1].get("function"), fr[1].get("line")), ("split_loop", want),
                               "the frame under %s (its call site)" % fr[0]["function"])
            for fn, mark in (("split_heavy", "split_heavy-loop"), ("split_light", "split_light-loop")):
                got = lines.get(fn, set())
                # the loop is two or three lines of source: its multiply line or the
                # for line above it
                chk.check(got and got <= {mk[mark] - 1, mk[mark], mk[mark] + 1},
                          "%s's leaf lines %r around the MARK:%s line %d" % (fn, sorted(got, key=str), mark, mk[mark]))

            # the collapsed stacks
            if chk.check(os.path.isfile(folded), "--folded %s written" % folded):
                chk.eq(stat.S_IMODE(os.stat(folded).st_mode), 0o600, "--folded file mode")
                with open(folded) as f:
                    text = f.read()
                try:
                    fl = st.folded_lines(text)
                except ValueError as e:
                    fl = []
                    chk.fail("--folded: %s" % e)
                root = "cpufix-%d" % fx.pid
                troot = "tid-%d-splitter" % tid
                bad = [" ".join(s[:3]) for s, _ in fl if s[:2] != [root, troot]]
                chk.check(fl and not bad, "every folded line starts %s;%s (not: %r)" % (root, troot, bad[:5]))
                chk.eq(sum(n for _, n in fl), total, "the folded counts sum to the JSON's oncpu_samples")
                # a sample taken in the kernel has kernel frames above the user leaf
                inf = {fn: sum(n for s, n in fl if fn in s) for fn in ("split_heavy", "split_light")}
                chk.eq((inf["split_heavy"], inf["split_light"]), (heavy, light),
                       "folded samples through split_heavy, split_light vs the JSON's self times")
                chk.check(all(s[2:4] != [] for s, _ in fl), "folded stacks have frames under the roots")
                chk.check(any(s[-3:] == ["split_thread", "split_loop", "split_heavy"] for s, _ in fl),
                          "a folded stack ends split_thread;split_loop;split_heavy: %r"
                          % [";".join(s[-3:]) for s, _ in fl[:5]])

            # the flame graph
            if chk.check(os.path.isfile(svg), "--svg %s written" % svg):
                chk.eq(stat.S_IMODE(os.stat(svg).st_mode), 0o600, "--svg file mode")
                try:
                    tree = ET.parse(svg)
                    chk.check(tree.getroot().tag.endswith("svg"), "the SVG's root element %r" % tree.getroot().tag)
                    body = ET.tostring(tree.getroot(), encoding="unicode")
                    chk.check("split_heavy" in body and "split_light" in body, "the SVG names both functions")
                except ET.ParseError as e:
                    chk.fail("--svg is not well-formed XML: %s" % e)
            chk.eq(sorted(os.listdir(tmp)), ["s.folded", "s.svg"], "files in the output directory")

            # never replaces: both files exist now
            with open(folded, "rb") as f:
                before = f.read()
            r = st.diag_sample("-d", "300ms", "--folded", folded, fx.pid)
            chk.eq(r.rc, 1, "exit status with an existing --folded file (%s)" % r.err.strip())
            chk.check(any(folded in l for l in r.err_lines()), "stderr names %s: %r" % (folded, r.err_lines()))
            with open(folded, "rb") as f:
                chk.check(f.read() == before, "the existing --folded file is unchanged")

            # --folded -: the collapsed stacks on stdout
            r = st.diag_sample("-d", "500ms", "--folded", "-", fx.pid)
            chk.check(r.rc in (0, 4), "exit status of `%s`: %s" % (r.cmd(), r.rc))
            # stdout is the collapsed stacks and nothing else (no text report)
            pre = "cpufix-%d;" % fx.pid
            fl = r.out.splitlines()
            chk.check(fl and all(l.startswith(pre) and re.fullmatch(r"\S.* \d+", l) for l in fl),
                      "--folded -: only collapsed stacks on stdout\n%s" % r.out[-2000:])
            chk.check(fx.alive(), "the fixture still runs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
