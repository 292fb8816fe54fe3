# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top on the demo's hung worker pool (build/demo/diag-demo-worker: a holder
of the flock on sess_42 polling a backend that never answers, three workers piled
up on the flock). Filtered to the workers ('/' demo-worker), at 200x50: every
waiter's WAIT names the holder's pid and the backend's port, the holder's names the
port, as diag-chain says of the same processes (-J); the header counts stuck chains
(at least one, once the workers have waited 5 s). Nothing of the pool is stopped or traced while diag-top runs."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import toptest as tt  # noqa: E402


def chain_facts(chk, pid):
    """diag-chain -J PID: every pid of its chain and every port named in it."""
    res = dt.run([dt.need_path("diag_chain"), "-J", pid], timeout=30)
    chk.check(res.rc in (0, 3, 5), "diag-chain -J %d exit status\n%s" % (pid, res.describe()))
    text = res.out
    pids = {int(x) for x in re.findall(r'"pid":\s*(\d+)', text)}
    ports = {int(x) for x in re.findall(r"127\.0\.0\.1:(\d+)", text)}
    ports |= {int(x) for x in re.findall(r'"port":\s*(\d+)', text)}
    return pids, ports


def stuck_count(head):
    """The header's stuck-chain count: "stuck N" / "stuck chains: N"."""
    m = re.search(r"\bstuck(?: chains)?:?\s+(\d+)", head, re.I)
    return int(m.group(1)) if m else None


def main():
    tt.setup(__doc__, "diag_chain", "demo_worker")
    dt.set_subreaper()
    chk = dt.Checker("top-demo")
    demo = tt.Demo()
    try:
        run(chk, demo)
    finally:
        demo.close()
        dt.reap_orphans()
    chk.finish()


def run(chk, demo):
    holder, waiters, port = demo.holder, demo.waiters, demo.port
    hp, hports = chain_facts(chk, waiters[0])
    chk.check(holder in hp and port in hports,
              "oracle: diag-chain on waiter %d names the holder %d and port %d (pids %s, ports %s)"
              % (waiters[0], holder, port, sorted(hp), sorted(hports)))
    pool = [demo.pid, demo.backend, holder] + waiters
    with tt.Screen(["-d", "1"], width=200, height=50) as s:
        if not chk.check(s.wait_until(lambda l: tt.header_line(l)[0] is not None, 15),
                         "the column line appears\n" + s.describe()):
            return
        s.text("/")
        s.text("demo-worker")
        s.keys("Enter")
        want = set([holder] + waiters)

        def shown(lines):
            rows = {r["pid"]: r for r in tt.parse_rows(lines)}
            return want <= set(rows) and all(port_in(rows[p].get("WAIT", ""), port) for p in want)
        lines = s.wait_until(shown, 15) or s.capture()
        rows = {r["pid"]: r for r in tt.parse_rows(lines)}
        chk.check(want <= set(rows), "filtered to demo-worker: the holder %d and waiters %s are listed\n%s"
                  % (holder, waiters, s.describe()))
        for w in waiters:
            wt = rows.get(w, {}).get("WAIT", "")
            _, ports = chain_facts(chk, w)
            chk.check(re.search(r"\b%d\b" % holder, wt) and port_in(wt, port),
                      "waiter %d: WAIT %r names the holder %d and port %d" % (w, wt, holder, port))
            chk.check(port in ports, "waiter %d: diag-chain names the port %d too (%s)" % (w, port, sorted(ports)))
            chk.check("sess_42" in wt or "flock" in wt.lower(), "waiter %d: WAIT %r says the flock" % (w, wt))
        ht = rows.get(holder, {}).get("WAIT", "")
        chk.check(port_in(ht, port), "holder %d: WAIT %r names the port %d" % (holder, ht, port))
        # stuck: the workers blocked 5 s or more behind the holder (the pool may be younger)
        lines = s.wait_until(lambda l: (stuck_count(tt.header_text(l)) or 0) >= 1, 15) or s.capture()
        head = tt.header_text(lines)
        n = stuck_count(head)
        chk.check(n is not None and n >= 1, "the header counts stuck chains (>= 1) once the workers waited 5 s: %r\n%s"
                  % (n, head))
        bad = [p for p in pool if dt.stopped_or_traced(p)]
        chk.check(not bad, "processes of the pool stopped or traced while diag-top ran: %s" % bad)
        s.keys("q")
        chk.eq(s.exited(), 0, "diag-top's exit status after q")


def port_in(text, port):
    return re.search(r"[:\s]%d\b" % port, text or "") is not None


if __name__ == "__main__":
    main()
