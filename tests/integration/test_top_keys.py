# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top's keys, in tmux at 200x50, on spinfix (a thread spinning) and the demo's
hung worker pool (-p those pids, -d 1):
  P puts the spinner first; N lists by pid; I inverts that;
  / demo-backend shows the backend alone, Esc clears the filter;
  t lists the pool's parent before its children, indented;
  Enter on spinfix: its threads (every tid of /proc/PID/task); c on a waiter: the
  chain (the holder's pid); f on the holder: its fds (the backend's port, the
  session file); l: its locks (the session file's flock); m: its memory map (the
  heap); p on spinfix: a 2 s sample (spin_a); Esc closes the pane;
  s asks before stopping ("Continue? [y/N]"): n runs no diag-stack and the holder
  is never stopped (/proc, polled); y then shows the stack (handle_request), and
  s on another row does not ask again;
  h: the help screen says there is no kill or renice key.
q ends it with status 0."""
import os
import re
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import toptest as tt  # noqa: E402


class Watch:
    """Polls, every 5 ms: the states of pids' threads (stopped or traced) and any
    diag-stack that diag-top (pid top) started. Another test of the suite may run
    a diag-stack of its own beside this one: only diag-top's children count."""

    def __init__(self, pids, top):
        self.pids, self.top, self.stopped, self.stacks = pids, top, [], set()
        self.done = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.done.is_set():
            for p in self.pids:
                bad = dt.stopped_or_traced(p)
                if bad:
                    self.stopped.append((p, bad))
            for d in os.listdir("/proc"):
                if d.isdigit():
                    st = dt.task_stat(int(d), int(d))
                    if st and st[0] == "diag-stack" and int(st[2][0]) == self.top:
                        self.stacks.add(int(d))
            time.sleep(0.005)

    def stop(self):
        self.done.set()
        self.t.join()


def main():
    tt.setup(__doc__, "spinfix", "demo_worker", "diag_chain")
    dt.set_subreaper()
    chk = dt.Checker("top-keys")
    spin = tt.Spinner()
    demo = None
    try:
        demo = tt.Demo()
        run(chk, spin, demo)
    finally:
        spin.close()
        if demo:
            demo.close()
        dt.reap_orphans()
    chk.finish()


def pids_shown(s):
    return [r["pid"] for r in tt.parse_rows(s.capture())]


def select(s, order, pid):
    """With the list sorted by pid (order), move the selection onto pid."""
    s.keys("Home")
    for _ in range(order.index(pid)):
        s.keys("Down", pause=0.05)
    time.sleep(0.2)


def pane_shows(s, rx, timeout=10):
    """Until the pane (not the list above it, whose WAIT column names the same locks
    and ports) matches rx."""
    return s.wait_until(lambda l: re.search(rx, "\n".join(tt.pane_lines(l))), timeout)


def run(chk, spin, demo):
    pool = sorted([demo.pid, demo.backend, demo.holder] + demo.waiters)
    order = sorted(pool + [spin.pid])
    with tt.Screen(["-d", "1", "-p", ",".join(str(p) for p in order)], width=200, height=50) as s:
        if not chk.check(s.wait_until(lambda l: set(order) <= {r["pid"] for r in tt.parse_rows(l)}, 15),
                         "every process of -p is listed\n" + s.describe()):
            return
        time.sleep(2.2)     # two refreshes: CPU% known
        s.keys("P")
        lines = s.wait_until(lambda l: tt.parse_rows(l) and tt.parse_rows(l)[0]["pid"] == spin.pid, 5) or s.capture()
        chk.eq(tt.parse_rows(lines)[0]["pid"] if tt.parse_rows(lines) else None, spin.pid,
               "P: the spinner first\n" + s.describe())
        s.keys("N")
        lines = s.wait_until(lambda l: [r["pid"] for r in tt.parse_rows(l)] == order, 5)
        chk.check(lines, "N: by pid %s\n%s" % (order, s.describe()))
        s.keys("I")
        lines = s.wait_until(lambda l: [r["pid"] for r in tt.parse_rows(l)] == order[::-1], 5)
        chk.check(lines, "I: by pid inverted\n%s" % s.describe())
        s.keys("I")
        s.wait_until(lambda l: [r["pid"] for r in tt.parse_rows(l)] == order, 5)
        # filter
        s.text("/")
        s.text("demo-backend")
        s.keys("Enter")
        lines = s.wait_until(lambda l: [r["pid"] for r in tt.parse_rows(l)] == [demo.backend], 5)
        chk.check(lines, "/demo-backend: the backend %d alone\n%s" % (demo.backend, s.describe()))
        s.text("/")
        s.keys("Escape")
        lines = s.wait_until(lambda l: [r["pid"] for r in tt.parse_rows(l)] == order, 5)
        chk.check(lines, "/ then Esc: the filter cleared\n%s" % s.describe())
        check_mouse(chk, s, demo)
        check_tree(chk, s, demo)
        check_drills(chk, s, spin, demo, order)
        check_stacks(chk, s, demo, order, pool)
        s.keys("h")
        m = s.wait_for(r"(?is)kill.*renice|renice.*kill", 5)
        chk.check(m, "h: the help screen mentions that there is no kill/renice key\n%s" % s.describe())
        s.keys("Escape")
        s.keys("q")
        if s.exited(3) is None:
            s.keys("q")
        chk.eq(s.exited(), 0, "diag-top's exit status after q")


def row_y(s, pid):
    """The screen line of pid's row, or None."""
    lines = s.capture()
    row = tt.row_of(lines, pid)
    return lines.index(row["line"]) if row else None


def check_mouse(chk, s, demo):
    """A click selects the row under it: a drill-down then opens on that process. The
    wheel moves the selection."""
    w = demo.waiters[0]
    for pid, key, rx, what in ((w, "c", r"(?s)sess_42.*\b%d\b|\b%d\b.*sess_42" % (demo.holder, demo.holder),
                                "the chain names the flock and the holder %d" % demo.holder),
                               (demo.holder, "f", r"(?s):%d\b.*sess_42|sess_42.*:%d\b" % (demo.port, demo.port),
                                "its fds name the port %d" % demo.port)):
        y = row_y(s, pid)
        if not chk.check(y is not None, "the row of %d is on screen\n%s" % (pid, s.describe())):
            return
        s.mouse(0, 3, y)
        s.keys(key)
        chk.check(pane_shows(s, rx, 15), "click on %d, then %s: %s\n%s" % (pid, key, what, s.describe()))
        s.keys("Escape")
        s.wait_until(lambda l: row_y(s, demo.holder) is not None, 5)
    # the selection is on the holder: the wheel down moves it 3 rows, up back
    rows = [r["pid"] for r in tt.parse_rows(s.capture())]
    i = rows.index(demo.holder) if demo.holder in rows else -1
    if i >= 0 and i + 3 < len(rows):
        y = row_y(s, demo.holder)
        s.mouse(65, 3, y, release=False)
        s.keys("c")
        below = rows[i + 3]
        chk.check(pane_shows(s, r"\bpid %d\b|\b%d\b" % (below, below), 15),
                  "wheel down from %d: the chain pane is about %d\n%s" % (demo.holder, below, s.describe()))
        s.keys("Escape")


def check_tree(chk, s, demo):
    s.keys("t")
    kids = {demo.backend, demo.holder} | set(demo.waiters)

    def treed(lines):
        pids = [r["pid"] for r in tt.parse_rows(lines)]
        return demo.pid in pids and kids <= set(pids) and all(pids.index(demo.pid) < pids.index(k) for k in kids)
    lines = s.wait_until(treed, 5)
    if chk.check(lines, "t: the pool's parent %d before its children\n%s" % (demo.pid, s.describe())):
        _, head = tt.header_line(lines)
        at = head.find("COMMAND")
        rows = {r["pid"]: r["line"] for r in tt.parse_rows(lines)}
        lead = {p: len(l[at:]) - len(l[at:].lstrip(" |`-+\\\u2514\u2500\u251c\u2502")) for p, l in rows.items()}
        chk.check(all(lead[k] > lead[demo.pid] for k in kids),
                  "t: the children's COMMAND indented past the parent's: %s\n%s"
                  % ({p: lead[p] for p in kids | {demo.pid}}, s.describe()))
    s.keys("t")
    s.keys("N")


def check_drills(chk, s, spin, demo, order):
    tids = dt.task_ids(spin.pid)
    select(s, order, spin.pid)
    s.keys("Enter")
    lines = s.wait_until(lambda l: all(re.search(r"\b%d\b" % t, "\n".join(l)) for t in tids[1:]), 10)
    chk.check(lines and len(tids) >= 2, "Enter on spinfix: its threads %s listed\n%s" % (tids, s.describe()))
    s.keys("Escape")
    s.keys("p")
    chk.check(pane_shows(s, r"spin_a|spin_loop", 15), "p on spinfix: the 2 s sample names spin_a\n%s" % s.describe())
    s.keys("Escape")
    w = demo.waiters[0]
    select(s, order, w)
    s.keys("c")
    chk.check(pane_shows(s, r"(?s)sess_42.*\b%d\b|\b%d\b.*sess_42" % (demo.holder, demo.holder), 15),
              "c on waiter %d: the chain names the flock and the holder %d\n%s" % (w, demo.holder, s.describe()))
    s.keys("Escape")
    select(s, order, demo.holder)
    s.keys("f")
    chk.check(pane_shows(s, r"(?s):%d\b.*sess_42|sess_42.*:%d\b" % (demo.port, demo.port), 15),
              "f on the holder: its fds name the port %d and the session file\n%s" % (demo.port, s.describe()))
    # the pane's status line says the tool ended, well before its 10 s timeout
    chk.check(pane_shows(s, r"diag-fds %d: done in" % demo.holder, 8),
              "f on the holder: the pane says diag-fds is done\n%s" % s.describe())
    s.keys("Escape")
    s.keys("l")
    chk.check(pane_shows(s, r"(?is)flock.*sess_42|sess_42.*flock", 15),
              "l on the holder: its locks name the session file's flock\n%s" % s.describe())
    s.keys("Escape")
    s.keys("m")
    chk.check(pane_shows(s, r"heap", 10), "m on the holder: the memory map has the heap\n%s" % s.describe())
    s.keys("Escape")
    chk.check(s.wait_until(lambda l: set(order) <= {r["pid"] for r in tt.parse_rows(l)}, 5),
              "Esc closes the pane: the list is back\n%s" % s.describe())


def check_stacks(chk, s, demo, order, pool):
    top = s.pid()
    if not chk.check(top, "diag-top's pid is found\n%s" % s.describe()):
        return
    watch = Watch(pool, top)
    try:
        select(s, order, demo.holder)
        s.keys("s")
        asked = pane_shows(s, r"Continue\? \[y/N\]", 5)
        chk.check(asked, "s asks before stopping\n%s" % s.describe())
        s.keys("n")
        time.sleep(2)
        chk.check(not re.search(r"handle_request|fetch_session_data", s.screen()),
                  "s then n: no stack shown\n%s" % s.describe())
        chk.check(not watch.stacks, "s then n: diag-stack ran (pids %s)" % sorted(watch.stacks))
        chk.check(not watch.stopped, "s then n: the pool was stopped or traced: %s" % watch.stopped[:4])
    finally:
        watch.stop()
    s.keys("Escape")
    s.keys("s")
    if pane_shows(s, r"Continue\? \[y/N\]", 3):
        s.keys("y")
    chk.check(pane_shows(s, r"handle_request|fetch_session_data", 20),
              "s then y: the holder's stack (handle_request)\n%s" % s.describe())
    s.keys("Escape")
    select(s, order, demo.waiters[0])
    s.keys("s")
    time.sleep(1)
    chk.check(not re.search(r"Continue\? \[y/N\]", s.screen()),
              "s asks once per session: not again\n%s" % s.describe())
    chk.check(pane_shows(s, r"handle_request", 20), "s on a waiter: its stack\n%s" % s.describe())
    s.keys("Escape")


if __name__ == "__main__":
    main()
