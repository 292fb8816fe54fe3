# SPDX-License-Identifier: GPL-2.0-or-later
"""The flame graph SVG: flame-demo turns known collapsed stacks into an SVG, which must
parse as XML, lay frames out in proportion to their samples, escape hostile names, and
behave in a browser: headless Chromium loads it with #zoom=NAME and #search=REGEX, and
the DOM it dumps must show the zoom (widths) and the search (marked frames, matched
share). Skipped without Chromium."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

SVG_NS = "{http://www.w3.org/2000/svg}"
X0, WIDTH = 10.0, 1180.0

HOSTILE = '<script>alert("x")</script> &amp & \'q\' >'
BAD_UTF8 = b"bad\xff\xfe\x01name"
BAD_UTF8_SHOWN = "bad\ufffd\ufffd\ufffdname"

# (frames, count): "_[k]" kernel, "_[p]" Python, "_[r]" a root; "\t" starts a detail
STACKS = [
    (["app-1_[r]", "main\tapp.c:10 (app)", "parse", "lex"], 2000),
    (["app-1_[r]", "main\tapp.c:10 (app)", "parse"], 1000),
    (["app-1_[r]", "main\tapp.c:10 (app)", "compute", "hot_loop"], 2500),
    (["app-1_[r]", "main\tapp.c:10 (app)", "compute", "py_eval_[p]", "handler_[p]\thandler.py:7 [python]"], 1500),
    (["app-1_[r]", "main\tapp.c:10 (app)", "compute", "sys_write_[k]"], 500),
    (["app-1_[r]", "main\tapp.c:10 (app)", HOSTILE], 400),
    (["app-1_[r]", "main\tapp.c:10 (app)", BAD_UTF8], 100),
    (["app-1_[r]", "idle"], 1000),
    # 0.05 % of the whole: not drawn, counted on the root
    (["app-1_[r]", "main\tapp.c:10 (app)", "tiny"], 5),
]
TOTAL = sum(c for _, c in STACKS)


def stacks_input():
    out = b""
    for frames, count in STACKS:
        parts = [f if isinstance(f, bytes) else f.encode() for f in frames]
        out += b";".join(parts) + b" %d\n" % count
    return out


def shown(frame):
    """A frame's name as the graph shows it."""
    if isinstance(frame, bytes):
        return BAD_UTF8_SHOWN if frame == BAD_UTF8 else frame.decode()
    name = frame.split("\t")[0]
    return re.sub(r"_\[[kpr]\]$", "", name)


def expected_totals():
    """path tuple -> total samples, for every prefix."""
    totals = {(): TOTAL}
    for frames, count in STACKS:
        path = ()
        for f in frames:
            path += (shown(f),)
            totals[path] = totals.get(path, 0) + count
    return totals


def demo(*args):
    p = subprocess.run([dt.need_path("flame_demo")] + list(args), input=stacks_input(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p


def frames_of(root):
    """[{name, s, n, d, cls, x, w, fill, text, title}] from an SVG document."""
    out = []
    for g in root.iter(SVG_NS + "g"):
        cls = g.get("class", "").split()
        if "f" not in cls:
            continue
        rect, text, title = g.find(SVG_NS + "rect"), g.find(SVG_NS + "text"), g.find(SVG_NS + "title")
        out.append({
            "name": title.text.split("\n")[0], "title": title.text, "cls": cls,
            "s": int(g.get("data-s")), "n": int(g.get("data-n")), "d": int(g.get("data-d")),
            "x": float(rect.get("x")), "w": float(rect.get("width")), "fill": rect.get("fill"),
            "text": text.text or "", "g": g,
        })
    return out


def by_name(frames, name):
    return [f for f in frames if f["name"] == name]


def rgb(fill):
    m = re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", fill or "")
    return tuple(int(v) for v in m.groups()) if m else None


def check_static(chk, svg_bytes):
    try:
        root = ET.fromstring(svg_bytes)
    except ET.ParseError as e:
        chk.fail("the SVG does not parse: %s" % e)
        return None
    chk.eq(root.tag, SVG_NS + "svg", "root element")
    chk.eq(root.get("width"), "1200", "width")
    chk.eq(root.get("data-total"), str(TOTAL), "data-total")
    text = svg_bytes.decode("utf-8", errors="strict")
    chk.check("http://" not in text.replace("http://www.w3.org/", ""), "no address other than XML namespaces")
    chk.check(len(list(root.iter(SVG_NS + "script"))) == 1, "exactly one script element")
    chk.check(root.find(SVG_NS + "style") is not None, "inline style")
    chk.check('alert("x")</script>' not in text, "the hostile name is escaped")
    chk.check("\x01" not in text, "no control characters")
    title = root.find(SVG_NS + "text[@id='title']")
    chk.eq(title is not None and title.text, "flame <test> & co", "title")
    sub = root.find(SVG_NS + "text[@id='subtitle']")
    chk.eq(sub is not None and sub.text, "%d samples" % TOTAL, "subtitle")

    frames = frames_of(root)
    totals = expected_totals()
    drawn = {p: n for p, n in totals.items() if n * 1000 >= TOTAL}
    chk.eq(len(frames), len(drawn), "number of frames drawn (those of 0.1 % or more)")
    rootg = [f for f in frames if f["d"] == 0]
    if chk.check(len(rootg) == 1, "one root frame"):
        chk.eq(rootg[0]["g"].get("data-omitted-frames"), "1", "omitted frames counted on the root")
        chk.eq(rootg[0]["g"].get("data-omitted-samples"), "5", "omitted samples counted on the root")
        chk.check("under 0.1 % not drawn" in rootg[0]["title"], "the root's title says what is left out")
    chk.check(not by_name(frames, "tiny"), "the 0.05 % frame is not drawn")
    names = {f["name"] for f in frames}
    for want in ("app-1", "main", "parse", "lex", "hot_loop", "handler", "sys_write", "idle", HOSTILE, BAD_UTF8_SHOWN):
        chk.check(want in names, "frame %r drawn" % want)
    for f in frames:
        want_w = f["n"] / TOTAL * WIDTH
        chk.check(abs(f["w"] - want_w) < 0.02, "width of %r: %.2f, want %.2f" % (f["name"], f["w"], want_w))
        want_x = X0 + f["s"] / TOTAL * WIDTH
        chk.check(abs(f["x"] - want_x) < 0.02, "x of %r: %.2f, want %.2f" % (f["name"], f["x"], want_x))
        # the label fits its frame (7.2 px a character), or is cut with ".."
        label = f["text"]
        chk.check(len(label) * 7.2 <= f["w"] - 6 + 0.01, "label %r fits in %.1f px" % (label, f["w"]))
        chk.check(label == "" or label == f["name"] or (label.endswith("..") and f["name"].startswith(label[:-2])),
                  "label %r of %r" % (label, f["name"]))
        chk.check(re.search(r"\n%d samples?, [\d.]+ %%" % f["n"], f["title"]) is not None,
                  "title of %r says its samples: %r" % (f["name"], f["title"]))
    for name, n in (("main", TOTAL - 1000), ("compute", 4500), ("lex", 2000), ("idle", 1000)):
        got = by_name(frames, name)
        chk.check(len(got) == 1 and got[0]["n"] == n, "%s: %d samples (%r)" % (name, n, [g["n"] for g in got]))
    main = by_name(frames, "main")
    if main:
        chk.check("app.c:10 (app)" in main[0]["title"], "detail in main's title")
        pct = "%.2f %%" % (100.0 * (TOTAL - 1000) / TOTAL)
        chk.check(pct in main[0]["title"], "%s in main's title: %r" % (pct, main[0]["title"]))
    # children sit on their parent, inside its span, one row up
    for f in frames:
        if f["d"] == 0:
            continue
        parents = [p for p in frames if p["d"] == f["d"] - 1 and p["s"] <= f["s"] and f["s"] + f["n"] <= p["s"] + p["n"]]
        chk.check(len(parents) == 1, "%r has its parent under it" % f["name"])
    # colours by kind
    for f in frames:
        c = rgb(f["fill"])
        if not chk.check(c is not None, "fill of %r is rgb(): %r" % (f["name"], f["fill"])):
            continue
        r, g, b = c
        if "root" in f["cls"]:
            chk.check(r == g == b, "%r (a root) is grey: %r" % (f["name"], c))
        elif "python" in f["cls"]:
            chk.check(b > r and g > r, "%r (Python) is blue-green: %r" % (f["name"], c))
        elif "kernel" in f["cls"]:
            chk.check(r > g > b and g >= 120, "%r (kernel) is orange: %r" % (f["name"], c))
        else:
            chk.check(r >= 200 and g <= 120 and b <= 70, "%r (native) is warm: %r" % (f["name"], c))
    kinds = {f["name"]: [c for c in f["cls"] if c != "f"] for f in frames}
    chk.eq(kinds.get("handler"), ["python"], "handler's kind")
    chk.eq(kinds.get("sys_write"), ["kernel"], "sys_write's kind")
    chk.eq(kinds.get("app-1"), ["root"], "app-1's kind")
    chk.eq(kinds.get("lex"), ["native"], "lex's kind")
    return frames


def check_folded(chk):
    p = demo("--folded")
    if not chk.eq(p.returncode, 0, "flame-demo --folded exit status (stderr %r)" % p.stderr):
        return
    got = {}
    for line in p.stdout.decode("utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        got[stack] = got.get(stack, 0) + int(count)
    want = {}
    for frames, count in STACKS:
        key = ";".join(shown(f) for f in frames)
        want[key] = want.get(key, 0) + count
    chk.eq(got, want, "collapsed stacks read back")
    chk.eq(sum(got.values()), TOTAL, "collapsed counts add up to the total")


class Browser:
    def __init__(self, chromium, tmp):
        self.chromium, self.tmp = chromium, tmp
        self.runs = 0

    def dump(self, chk, path, fragment):
        """The DOM after load of file://PATH#FRAGMENT, parsed; None on failure."""
        self.runs += 1
        profile = os.path.join(self.tmp, "profile-%d" % self.runs)
        url = "file://" + urllib.parse.quote(path) + ("#" + fragment if fragment else "")
        argv = [self.chromium, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-extensions", "--disable-sync",
                "--user-data-dir=" + profile, "--dump-dom", url]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")
        env = dt.tool_env()
        env["HOME"] = self.tmp
        r = dt.run(argv, timeout=90, env=env)
        if not chk.check(r.rc == 0 and r.out.strip(), "chromium on %s: %s" % (fragment or "(no hash)", r.describe()[-1500:])):
            return None
        try:
            return ET.fromstring(r.out)
        except ET.ParseError as e:
            chk.fail("the DOM chromium dumped for #%s does not parse: %s\n%s" % (fragment, e, r.out[:1500]))
            return None


def matched_figures(chk, root, what):
    m = root.find(SVG_NS + "text[@id='matched']")
    if not chk.check(m is not None, "%s: a matched line" % what):
        return None, None
    text = m.text or ""
    mm = re.fullmatch(r"Matched: ([\d.]+) % \((\d+) of (\d+) samples; 1 small frame not searched\)", text)
    if not chk.check(mm is not None, "%s: matched line %r" % (what, text)):
        return None, None
    chk.eq(int(mm.group(3)), TOTAL, "%s: total in the matched line" % what)
    chk.eq(m.get("data-samples"), mm.group(2), "%s: data-samples" % what)
    return float(mm.group(1)), int(mm.group(2))


def check_browser(chk, browser, path):
    # no hash: the script ran and left the layout as written
    root = browser.dump(chk, path, "")
    if root is None:
        return
    chk.eq(root.get("data-ready"), "1", "the script ran to its end")
    frames = frames_of(root)
    chk.check(all("hidden" not in f["cls"] and "match" not in f["cls"] for f in frames), "nothing hidden or marked at load")
    for f in frames:
        chk.check(abs(f["w"] - f["n"] / TOTAL * WIDTH) < 0.02, "no zoom: width of %r" % f["name"])

    # zoom into compute: it and its parents span the width, its children scale, the rest hides
    root = browser.dump(chk, path, "zoom=compute")
    if root is not None:
        chk.eq(root.get("data-zoom"), "compute", "zoomed frame")
        frames = frames_of(root)
        compute = by_name(frames, "compute")
        if chk.check(len(compute) == 1, "compute in the zoomed DOM"):
            z = compute[0]
            chk.check(abs(z["w"] - WIDTH) < 0.02 and abs(z["x"] - X0) < 0.02, "compute spans the width: %r" % z["w"])
            for f in frames:
                inside = f["d"] >= z["d"] and z["s"] <= f["s"] and f["s"] + f["n"] <= z["s"] + z["n"]
                above = f["d"] < z["d"] and f["s"] <= z["s"] and z["s"] + z["n"] <= f["s"] + f["n"]
                if inside:
                    want_w = f["n"] / z["n"] * WIDTH
                    want_x = X0 + (f["s"] - z["s"]) / z["n"] * WIDTH
                    chk.check(abs(f["w"] - want_w) < 0.02 and abs(f["x"] - want_x) < 0.02,
                              "zoomed: %r at %.2f+%.2f, want %.2f+%.2f" % (f["name"], f["x"], f["w"], want_x, want_w))
                    chk.check("hidden" not in f["cls"], "zoomed: %r shown" % f["name"])
                elif above:
                    chk.check("parent" in f["cls"] and abs(f["w"] - WIDTH) < 0.02, "zoomed: %r (below) spans the width" % f["name"])
                else:
                    chk.check("hidden" in f["cls"], "zoomed: %r hidden" % f["name"])
            hot = by_name(frames, "hot_loop")
            chk.check(hot and abs(hot[0]["w"] - 2500 / 4500 * WIDTH) < 0.02, "hot_loop widened to 2500/4500 of the width")
            chk.check(hot and hot[0]["text"] == "hot_loop", "hot_loop labelled after the zoom")
        reset = root.find(SVG_NS + "text[@id='reset']")
        chk.check(reset is not None and "hidden" not in reset.get("class", ""), "reset zoom offered")

    # zoom by a hostile name, given URL-encoded
    root = browser.dump(chk, path, "zoom=" + urllib.parse.quote(HOSTILE, safe=""))
    if root is not None:
        chk.eq(root.get("data-zoom"), HOSTILE, "zoom on the hostile name")
        h = by_name(frames_of(root), HOSTILE)
        chk.check(h and abs(h[0]["w"] - WIDTH) < 0.02, "the hostile frame spans the width")
        chk.eq(len(list(root.iter(SVG_NS + "script"))), 1, "still one script element in the DOM")

    # search: marked frames and the matched share; nested matches count once
    for regex, want_names, want_samples in (
            ("^(lex|hot_loop)$", {"lex", "hot_loop"}, 4500),
            ("parse|lex", {"parse", "lex"}, 3000),
            ("^(handler|sys_)", {"handler", "sys_write"}, 2000),
            ("<script>", {HOSTILE}, 400),
            ("nothing-matches-this", set(), 0)):
        root = browser.dump(chk, path, "search=" + urllib.parse.quote(regex, safe=""))
        if root is None:
            continue
        frames = frames_of(root)
        marked = {f["name"] for f in frames if "match" in f["cls"]}
        chk.eq(marked, want_names, "search %r: marked frames" % regex)
        pct, samples = matched_figures(chk, root, "search %r" % regex)
        if samples is not None:
            chk.eq(samples, want_samples, "search %r: matched samples" % regex)
            chk.check(abs(pct - 100.0 * want_samples / TOTAL) <= 0.0051,
                      "search %r: matched %.2f %%, want %.4f" % (regex, pct, 100.0 * want_samples / TOTAL))
        inp = root.find(".//{http://www.w3.org/1999/xhtml}input")
        chk.check(inp is not None and inp.get("value") == regex, "search %r: shown in the search box" % regex)

    # both at once, and a bad regex
    root = browser.dump(chk, path, "zoom=parse&search=" + urllib.parse.quote("^lex$"))
    if root is not None:
        chk.eq(root.get("data-zoom"), "parse", "zoom and search: zoomed")
        frames = frames_of(root)
        lex = by_name(frames, "lex")
        chk.check(lex and "match" in lex[0]["cls"] and abs(lex[0]["w"] - 2000 / 3000 * WIDTH) < 0.02,
                  "zoom and search: lex marked and widened")
        chk.eq(matched_figures(chk, root, "zoom and search")[1], 2000, "zoom and search: matched samples")
    root = browser.dump(chk, path, "search=" + urllib.parse.quote("(unclosed"))
    if root is not None:
        m = root.find(SVG_NS + "text[@id='matched']")
        chk.check(m is not None and "Invalid" in (m.text or ""), "a bad regex is reported")
        chk.check(not any("match" in f["cls"] for f in frames_of(root)), "a bad regex marks nothing")


def main():
    dt.setup(__doc__, "flame_demo")
    chk = dt.Checker("flame-svg")
    p = demo("--title", "flame <test> & co", "--subtitle", "%d samples" % TOTAL)
    if not chk.eq(p.returncode, 0, "flame-demo exit status (stderr %r)" % p.stderr):
        chk.finish()
    check_static(chk, p.stdout)
    check_folded(chk)
    tmp = tempfile.mkdtemp(prefix="diagtest-flame-")
    try:
        path = os.path.join(tmp, "flame.svg")
        with open(path, "wb") as f:
            f.write(p.stdout)
        xmllint = shutil.which("xmllint")
        if xmllint:
            r = dt.run([xmllint, "--noout", path])
            chk.eq(r.rc, 0, "xmllint --noout: %s" % r.err.strip())
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            chk.finish() if chk.failures else dt.skip("chromium is not installed (the SVG's script is not tested)")
        check_browser(chk, Browser(chromium, tmp), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


if __name__ == "__main__":
    main()
