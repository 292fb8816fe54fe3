# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-record show --svg: an executable writes the SVG chart of a known synthetic
recording (test-rec-show --svg PATH: an OOM kill, a trigger, a gap, a command line
whose count rises to 60). The SVG must be standalone (no script, nothing external),
parse as XML (and pass xmllint), lay its panels and lines out inside the plot, and load
in headless Chromium with the same elements. Skipped without Chromium.

  python3 test_record_svg.py --rec-show build/tests/unit/test-rec-show"""
import os
import shutil
import sys
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

SVG_NS = "{http://www.w3.org/2000/svg}"
X0, PW = 80.0, 1090.0


def points(poly):
    out = []
    for p in (poly.get("points") or "").split():
        x, y = p.split(",")
        out.append((float(x), float(y)))
    return out


def check_tree(chk, root, what):
    chk.eq(root.tag, SVG_NS + "svg", "%s: root element" % what)
    chk.eq(len(list(root.iter(SVG_NS + "script"))), 0, "%s: no script" % what)
    for el in root.iter():
        for k, v in el.attrib.items():
            chk.check("href" not in k and "url(" not in v, "%s: no external reference (%s=%r)" % (what, k, v))
    panels = [r for r in root.iter(SVG_NS + "rect") if r.get("class") == "panel"]
    chk.eq(len(panels), 4, "%s: panels" % what)
    boxes = [(float(r.get("y")), float(r.get("y")) + float(r.get("height"))) for r in panels]
    polys = list(root.iter(SVG_NS + "polyline"))
    chk.check(len(polys) >= 8, "%s: polylines drawn (%d)" % (what, len(polys)))
    for poly in polys:
        pts = points(poly)
        inside = all(X0 - 0.05 <= x <= X0 + PW + 0.05 and any(a - 0.05 <= y <= b + 0.05 for a, b in boxes)
                     for x, y in pts)
        chk.check(pts and inside, "%s: %s polyline inside its panel" % (what, poly.get("class")))
    procs = [p for p in polys if p.get("class") == "procs"]
    if chk.check(procs, "%s: process count lines" % what):
        # the rising command line: its last point is higher (smaller y) than its first
        rising = [p for p in procs if points(p)[-1][1] < points(p)[0][1] - 50]
        chk.check(rising, "%s: one process count line rises" % what)
    legends = [t.text for g in root.iter(SVG_NS + "g") if g.get("class") == "legend" for t in g.iter(SVG_NS + "text")]
    chk.check("worker --fork" in legends, "%s: the rising command line in the legend (%r)" % (what, legends))
    ooms = [ln for ln in root.iter(SVG_NS + "line") if ln.get("class") == "oom"]
    trig = [ln for ln in root.iter(SVG_NS + "line") if ln.get("class") == "trigger"]
    gaps = [r for r in root.iter(SVG_NS + "rect") if r.get("class") == "gap"]
    chk.eq(len(ooms), 1, "%s: one OOM line" % what)
    chk.eq(len(trig), 1, "%s: one trigger line" % what)
    chk.eq(len(gaps), 1, "%s: one gap" % what)
    if ooms:
        chk.eq(ooms[0].get("stroke"), "red", "%s: the OOM line is red" % what)
        t = ooms[0].find(SVG_NS + "title")
        chk.check(t is not None and "pid 250 (hog)" in (t.text or ""), "%s: the OOM line's tooltip names it" % what)
    if trig:
        chk.eq(trig[0].get("stroke"), "orange", "%s: the trigger line is orange" % what)
        t = trig[0].find(SVG_NS + "title")
        chk.check(t is not None and "snap-1" in (t.text or ""), "%s: the trigger's tooltip names its snapshot" % what)
    if ooms and trig and gaps:
        xo, xt = float(ooms[0].get("x1")), float(trig[0].get("x1"))
        xg = float(gaps[0].get("x"))
        chk.check(xo < xg < xt, "%s: OOM, then the gap, then the trigger along x (%r %r %r)" % (what, xo, xg, xt))
    ticks = [t.text for t in root.iter(SVG_NS + "text") if t.get("class") == "xlabel"]
    chk.check(len(ticks) >= 3, "%s: labelled time ticks (%r)" % (what, ticks))


def main():
    dt.setup(__doc__, "rec_show")
    chk = dt.Checker("record-svg")
    tmp = tempfile.mkdtemp(prefix="diagtest-recsvg-")
    try:
        path = os.path.join(tmp, "chart.svg")
        r = dt.run([dt.need_path("rec_show"), "--svg", path])
        if not chk.eq(r.rc, 0, "writing the SVG: %s" % r.describe()[-1500:]):
            chk.finish()
        chk.eq(sorted(os.listdir(tmp)), ["chart.svg"], "no temporary file left")
        with open(path, "rb") as f:
            data = f.read()
        try:
            check_tree(chk, ET.fromstring(data), "file")
        except ET.ParseError as e:
            chk.fail("the SVG does not parse: %s" % e)
        lint = shutil.which("xmllint")
        if lint is not None:
            r = dt.run([lint, "--noout", path])
            chk.eq(r.rc, 0, "xmllint: %s" % r.err.strip())
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            if chk.failures:
                chk.finish()
            dt.skip("chromium is not installed (the SVG is not loaded in a browser)")
        argv = [browser, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-extensions", "--disable-sync",
                "--user-data-dir=" + os.path.join(tmp, "profile"), "--dump-dom", "file://" + urllib.parse.quote(path)]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")
        env = dt.tool_env()
        env["HOME"] = tmp
        r = dt.run(argv, timeout=90, env=env)
        if chk.check(r.rc == 0 and r.out.strip(), "chromium: %s" % r.describe()[-1500:]):
            try:
                check_tree(chk, ET.fromstring(r.out), "chromium")
            except ET.ParseError as e:
                chk.fail("the DOM chromium dumped does not parse: %s\n%s" % (e, r.out[:1500]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
