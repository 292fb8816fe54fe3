# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top and the terminal, in tmux:
  - 80x24, then resize-window to 40x10: each time the header and the column line are
    there, every row of the list starts with a pid, the column line holds only
    column names (the last maybe cut), nothing is wider than the pane; at 30x8 it
    says "terminal too small", and back at 80x24 the list returns;
  - TERM=dumb, and LANG=C LC_ALL=C: no byte above 127 in what diag-top wrote to the
    terminal (pipe-pane) nor on the screen; with TERM=dumb (no cursor addressing) it
    prints text frames, header, column line and rows, until "q" and Enter (exit 0);
  - q, and Ctrl-C (with a drill-down's child running), restore the terminal: `stty
    -a` of the pane's tty the same before diag-top and after it;
  - Ctrl-C, and SIGHUP (the pane killed, as a lost ssh session), leave no diag-top
    process and no child of it."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import toptest as tt  # noqa: E402


def main():
    tt.setup(__doc__)
    dt.set_subreaper()
    chk = dt.Checker("top-term")
    try:
        sizes(chk)
        ascii_only(chk, "TERM=dumb", {"TERM": "dumb"}, dumb=True)
        ascii_only(chk, "LANG=C", {"LANG": "C", "LC_ALL": "C"})
        ascii_only(chk, "--ascii --no-color", {}, args=["--ascii", "--no-color"])
        interrupted(chk)
        hangup(chk)
    finally:
        dt.reap_orphans()
    chk.finish()


def layout_ok(chk, s, what):
    lines = s.wait_until(lambda l: tt.header_line(l)[0] not in (None, 0) and tt.parse_rows(l), 10)
    if not chk.check(lines, "%s: a header above the column line and rows under it\n%s" % (what, s.describe())):
        return
    wide = [l for l in lines if len(l) > s.width]
    chk.check(not wide, "%s: lines wider than %d: %r" % (what, s.width, wide))
    chk.eq(len(lines), s.height, "%s: rows captured" % what)
    hi, head = tt.header_line(lines)
    words = head.split()
    chk.check(all(w in tt.COLUMNS for w in words[:-1]) and any(c.startswith(words[-1]) for c in tt.COLUMNS),
              "%s: the column line holds column names only: %r" % (what, head))
    chk.check(sum(1 for l in lines if tt.header_line([l])[0] is not None) == 1,
              "%s: one column line\n%s" % (what, s.describe()))
    chk.check(lines[0].strip(), "%s: the header's first line is drawn\n%s" % (what, s.describe()))
    bad = [r["line"] for r in tt.parse_rows(lines) if r["pid"] is None]
    chk.check(not bad, "%s: rows without a pid: %r" % (what, bad))


def restored(chk, s, what):
    after = s.stty()
    chk.check(after is not None and after == s.stty_before,
              "%s: stty -a before and after differ\n--- before\n%s\n--- after\n%s" % (what, s.stty_before, after))


def sizes(chk):
    with tt.Screen(["-d", "1"], width=80, height=24) as s:
        layout_ok(chk, s, "80x24")
        s.resize(40, 10)
        time.sleep(1.5)
        layout_ok(chk, s, "40x10 after resize")
        s.resize(30, 8)
        chk.check(s.wait_for(r"(?i)too small", 5), "30x8: says the terminal is too small\n%s" % s.describe())
        s.resize(80, 24)
        time.sleep(1.5)
        layout_ok(chk, s, "80x24 again")
        s.keys("q")
        chk.eq(s.exited(), 0, "80x24: exit status after q")
        restored(chk, s, "q")


def ascii_only(chk, what, env, dumb=False, args=()):
    with tt.Screen(["-d", "1"] + list(args), width=100, height=30, env=env) as s:
        shown = s.wait_until(lambda l: tt.header_line(l)[0] is not None, 8)
        rc = s.exited(0.1)
        if dumb:
            chk.check(shown and rc is None, "%s: frames are printed\n%s" % (what, s.describe()))
            rows = tt.parse_rows(s.capture())
            chk.check(rows and all(r["pid"] is not None for r in rows), "%s: rows with pids under the column line: %r"
                      % (what, rows[:3]))
            s.keys("q", "Enter")
            chk.eq(s.exited(), 0, "%s: exit status after q Enter" % what)
        else:
            chk.check(shown and rc is None, "%s: the list is shown\n%s" % (what, s.describe()))
            s.keys("h")
            time.sleep(0.5)
            s.keys("Escape")
            s.keys("q")
            chk.eq(s.exited(), 0, "%s: exit status after q" % what)
        raw = s.raw()
        high = sorted({b for b in raw if b > 127})
        chk.check(raw and not high, "%s: bytes above 127 written to the terminal: %s (%d bytes in all)"
                  % (what, [hex(b) for b in high[:8]], len(raw)))
        cap = s.capture_bytes()
        chk.check(not [b for b in cap if b > 127], "%s: characters beyond ASCII on the screen\n%s"
                  % (what, cap.decode("utf-8", "replace")))
        restored(chk, s, what)


def child_running(s, top):
    """Press p (a 2 s sample of the selected row) and wait for diag-top's child:
    [(pid, start)] of its descendants."""
    s.keys("p", pause=0)
    end = time.monotonic() + 2
    while time.monotonic() < end:
        d = tt.descendants(top)
        if d:
            return [(p, tt.start_time(p)) for p in d]
        time.sleep(0.02)
    return []


def gone(chk, what, top, kids):
    start = tt.start_time(top)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        dt.reap_orphans()
        left = [p for p, st in kids if tt.alive(p, st)]
        if (start is None or not tt.alive(top, start)) and not left:
            break
        time.sleep(0.05)
    chk.check(start is None or not tt.alive(top, start), "%s: diag-top %d still runs" % (what, top))
    left = [p for p, st in kids if tt.alive(p, st)]
    chk.check(not left, "%s: diag-top's children left: %s" % (what, left))
    dt.log("%s: diag-top's children while it ran: %s" % (what, kids))


def interrupted(chk):
    with tt.Screen(["-d", "1"], width=100, height=30) as s:
        s.wait_until(lambda l: tt.parse_rows(l), 10)
        top = s.pid()
        if not chk.check(top, "Ctrl-C: diag-top's pid\n%s" % s.describe()):
            return
        kids = child_running(s, top)
        s.keys("C-c", pause=0)
        rc = s.exited(5)
        chk.check(rc in (0, 130), "Ctrl-C: diag-top ends (status %r)\n%s" % (rc, s.describe()))
        gone(chk, "Ctrl-C", top, kids)
        restored(chk, s, "Ctrl-C")


def hangup(chk):
    with tt.Screen(["-d", "1"], width=100, height=30) as s:
        s.wait_until(lambda l: tt.parse_rows(l), 10)
        top = s.pid()
        if not chk.check(top, "SIGHUP: diag-top's pid\n%s" % s.describe()):
            return
        kids = child_running(s, top)
        s.tmux("kill-pane", "-t", "top", check=False)
        gone(chk, "SIGHUP (pane killed)", top, kids)


if __name__ == "__main__":
    main()
