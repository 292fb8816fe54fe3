#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump --watch on live channels: a writer and a reader process moving messages
(the rates against the writer's own sequence numbers and its configured rate),
a reader that stopped while the writer fills the ring and then fails to send
("reader stuck for ... while writer blocked"), an idle empty ring, and SIGINT."""
import json
import signal
import subprocess
import time

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-watch")


def watch_lines(name, interval, count, *extra):
    r = st.shmdump("-J", "--watch", interval, "--count", count, *extra, name, timeout=60)
    chk.eq(r.rc, 0, "watch %s: exit status\n%s" % (name, r.describe()))
    out = []
    for l in r.out.splitlines():
        try:
            out.append(json.loads(l))
        except ValueError:
            chk.fail("watch %s: not a JSON line: %r" % (name, l))
    chk.eq(len(out), count, "watch %s: lines" % name)
    return out


def moving():
    rate = 400
    with st.Writer("--sysv", hex(st.unique_key(0)), "--case", "empty", "--live", "--rate", rate,
                   "--min", 10, "--max", 500, "--reader-proc") as w:
        name = "key:%s" % w.fact("SEGMENT")["key"]
        time.sleep(0.3)
        ls = watch_lines(name, "400ms", 5)
        for i, l in enumerate(ls):
            what = "moving, line %d" % i
            chk.eq(l.get("segment"), name, "%s: segment" % what)
            chk.eq(l.get("reader_moving"), True, "%s: reader moving (%s)" % (what, l.get("state")))
            chk.eq(l.get("state"), "reader moving", "%s: state" % what)
            wr, rd = l.get("write_msgs_per_s", 0), l.get("read_msgs_per_s", 0)
            chk.check(0.2 * rate <= wr <= 1.3 * rate, "%s: write %.0f msg/s, the writer sends at most %d" % (what, wr, rate))
            chk.check(abs(wr - rd) <= 0.25 * wr + 10, "%s: read %.0f msg/s vs write %.0f" % (what, rd, wr))
            chk.check(l.get("write_bytes_per_s", 0) >= 10 * wr * 0.9, "%s: bytes/s below 10 bytes a message" % what)
            if i:
                # every send takes a sequence number: the header's own count of messages
                dseq = l.get("operation_seq", 0) - ls[i - 1].get("operation_seq", 0)
                sent = wr * l.get("interval_ms", 0) / 1000.0
                chk.check(abs(dseq - sent) <= 0.1 * dseq + 3, "%s: %.1f blocks counted, %d sequence numbers taken" % (what, sent, dseq))
        r = st.shmdump("--watch", "200ms", "--count", 2, name)
        chk.check(r.rc == 0 and all("reader moving" in l and "msg/s" in l for l in r.out.splitlines())
                  and len(r.out.splitlines()) == 2, "text watch: %s" % r.describe())


def stuck():
    with st.Writer("--posix", st.unique_name(1), "--size", 65536, "--case", "empty", "--live", "--rate", 2000,
                   "--min", 10, "--max", 100, "--reader", "stop") as w:
        name = "/dev/shm" + w.fact("SEGMENT")["name"]
        time.sleep(0.5)    # the ring fills in about 0.1 s
        ls = watch_lines(name, "500ms", 4)
        prev = None
        for i, l in enumerate(ls):
            what = "stuck, line %d" % i
            chk.eq(l.get("reader_moving"), False, "%s: reader moving" % what)
            chk.eq(l.get("writer_blocked"), True, "%s: writer blocked" % what)
            chk.check(l.get("fill_pct", 0) > 99, "%s: fill %s" % (what, l.get("fill_pct")))
            chk.eq(l.get("write_msgs_per_s"), 0, "%s: nothing written" % what)
            chk.check(str(l.get("state", "")).startswith("reader stuck for ") and
                      l.get("state", "").endswith(" while writer blocked"), "%s: state %r" % (what, l.get("state")))
            if prev is not None:
                d = (l.get("reader_stuck_ms") or 0) - (prev.get("reader_stuck_ms") or 0)
                chk.check(400 <= d <= 1500, "%s: stuck time grew by %d ms in a 500 ms interval" % (what, d))
            prev = l
        r = st.shmdump("--watch", "300ms", "--count", 2, name)
        last = (r.out.splitlines() or [""])[-1]
        chk.check(r.rc == 0 and "reader stuck for" in last and "while writer blocked" in last, "text watch stuck: %s" % r.describe())


def idle_and_sigint():
    with st.Writer("--sysv", hex(st.unique_key(2)), "--case", "empty") as w:
        name = "key:%s" % w.fact("SEGMENT")["key"]
        ls = watch_lines(name, "100ms", 2)
        chk.eq([l.get("state") for l in ls], ["ring empty, reader waiting"] * 2, "idle: state")
        chk.eq([l.get("reader_stuck_ms") for l in ls], [None, None], "idle: reader_stuck_ms")
        p = subprocess.Popen([dt.need_path("shmdump"), "--watch", "100ms", name], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dt.tool_env())
        time.sleep(0.6)
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=5)
            chk.eq(p.returncode, 0, "SIGINT: exit status (%s)" % err)
            chk.check(len(out.splitlines()) >= 2, "SIGINT: lines before it: %r" % out)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            chk.fail("--watch did not stop on SIGINT")


def main():
    st.setup(__doc__)
    try:
        moving()
        stuck()
        idle_and_sigint()
    finally:
        st.remove_everything()
    chk.finish()


main()
