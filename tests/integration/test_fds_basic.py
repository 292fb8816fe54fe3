# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-fds -J -p PIDS on the fdfix fixture: every case (tcp, unix, pipe, epoll, flock,
posix, ofd, deleted, eventfd) checked against what the fixture printed about itself and
/proc; sockets checked against ss, fd numbers and types against lsof."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

# diag-fds type -> lsof TYPE values that agree with it
LSOF_TYPES = {
    "SOCK": {"IPv4", "IPv6", "unix", "sock"},
    "FIFO": {"FIFO"},
    "REG": {"REG"},
    "DIR": {"DIR"},
    "CHR": {"CHR"},
    "eventpoll": {"a_inode"},
    "eventfd": {"a_inode"},
}
LSOF_ACCESS = {"u": "rw", "r": "r-", "w": "-w"}


def proc_link_type(link):
    """The type diag-fds must report, from the /proc/PID/fd/N link text."""
    if link.startswith("socket:"):
        return "SOCK"
    if link.startswith("pipe:"):
        return "FIFO"
    if link == "anon_inode:[eventpoll]":
        return "eventpoll"
    if link == "anon_inode:[eventfd]":
        return "eventfd"
    if link.startswith("/dev/"):
        return "CHR"
    if link.startswith("/"):
        return "REG"
    return None


class Ctx:
    def __init__(self, chk, fx, doc, cmd):
        self.chk, self.fx, self.doc, self.cmd = chk, fx, doc, cmd

    def fd(self, pid, fd, what):
        e = dt.fds_entry(self.doc, pid, fd)
        self.chk.check(e is not None, "%s: pid %d fd %d missing from `%s`" % (what, pid, fd, self.cmd))
        return e or {}

    def sock(self, e):
        return e.get("socket") or {}


def main():
    dt.setup_fds(__doc__)
    chk = dt.Checker("fds-basic")
    with dt.fdfix() as fx:
        pids = fx.pids()
        r = dt.diag_fds("-J", "-p", ",".join(map(str, pids)), timeout=30)
        chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
        chk.check("Sanitizer" not in r.err and "runtime error" not in r.err, "sanitizer report:\n" + r.err[-3000:])
        doc = r.json(chk)
        if doc is not None:
            c = Ctx(chk, fx, doc, r.cmd())
            check_doc(c, pids)
            check_tcp(c)
            check_unix(c)
            check_pipe(c)
            check_epoll(c)
            check_flock(c)
            check_fcntl_lock(c, "posix", ("POSIX",))
            check_fcntl_lock(c, "ofd", ("OFDLCK", "OFD"))
            check_deleted(c)
            check_eventfd(c)
            oracle_ss(c)
            oracle_lsof(c, pids)
    chk.finish()


def check_doc(c, pids):
    chk, doc = c.chk, c.doc
    chk.eq(doc.get("schema"), "diag-fds/1", "schema")
    shown = sorted(p.get("pid") for p in doc.get("processes", []))
    chk.eq(shown, pids, "processes shown for -p")
    v = doc.get("vanished") or {}
    chk.check(isinstance(v.get("processes"), int) and isinstance(v.get("fds"), int), "vanished %r" % v)
    # Processes the test cannot read (another user namespace's, a more privileged
    # supervisor) may exist on the machine: only the type is checked.
    chk.check(isinstance(doc.get("denied"), int) and doc.get("denied") >= 0, "denied %r" % doc.get("denied"))
    for pid in pids:
        proc = dt.fds_process(doc, pid) or {}
        chk.eq(proc.get("comm"), "fdfix", "comm of %d" % pid)
        soft, hard = nofile_limits(pid)
        chk.eq(proc.get("nofile_soft"), soft, "nofile_soft of %d vs /proc/%d/limits" % (pid, pid))
        chk.eq(proc.get("nofile_hard"), hard, "nofile_hard of %d vs /proc/%d/limits" % (pid, pid))
        want = {}
        for n in os.listdir("/proc/%d/fd" % pid):
            try:
                want[int(n)] = os.readlink("/proc/%d/fd/%s" % (pid, n))
            except OSError:
                pass
        got = {f.get("fd"): f for f in proc.get("fds", [])}
        chk.eq(sorted(got), sorted(want), "fd numbers of %d vs /proc/%d/fd" % (pid, pid))
        for n, link in want.items():
            f = got.get(n)
            if not f:
                continue
            chk.eq(f.get("link"), link, "link of %d fd %d" % (pid, n))
            t = proc_link_type(link)
            if t:
                chk.eq(f.get("type"), t, "type of %d fd %d (%s)" % (pid, n, link))
            chk.check(re.fullmatch(r"[r-][w-][-WRwr][-*]", str(f.get("mode"))),
                      "mode %r of %d fd %d has the documented form" % (f.get("mode"), pid, n))


def nofile_limits(pid):
    s = dt.read_file("/proc/%d/limits" % pid) or ""
    m = re.search(r"^Max open files\s+(\S+)\s+(\S+)", s, re.M)
    if not m:
        return None, None
    conv = lambda x: None if x == "unlimited" else int(x)  # noqa: E731
    return conv(m.group(1)), conv(m.group(2))


def check_tcp(c):
    t = c.fx.fact("tcp")
    if not t:
        return
    chk = c.chk
    port, cport = t["port"], t["client_port"]
    lst = c.fd(t["listener_pid"], t["listen_fd"], "tcp listener")
    ls = c.sock(lst)
    chk.eq(lst.get("type"), "SOCK", "tcp listener type")
    chk.eq(ls.get("proto"), "tcp", "tcp listener proto")
    chk.eq(ls.get("state"), "LISTEN", "tcp listener state")
    chk.eq(ls.get("local"), "127.0.0.1:%d" % port, "tcp listener local")
    chk.eq(ls.get("remote"), None, "tcp listener remote")

    srv = c.fd(t["server_pid"], t["server_fd"], "tcp server end")
    # recvq: the fixture saw 5 bytes queued before READY; allow a short settle.
    deadline = time.monotonic() + 2
    while c.sock(srv).get("recvq") != t["unread"] and time.monotonic() < deadline:
        time.sleep(0.1)
        r = dt.diag_fds("-J", "-p", t["server_pid"], timeout=30)
        srv = dt.fds_entry(r.json(), t["server_pid"], t["server_fd"]) or srv
    ss_ = c.sock(srv)
    chk.eq(ss_.get("state"), "ESTABLISHED", "tcp server state")
    chk.eq(ss_.get("local"), "127.0.0.1:%d" % port, "tcp server local")
    chk.eq(ss_.get("remote"), "127.0.0.1:%d" % cport, "tcp server remote")
    chk.eq(ss_.get("recvq"), t["unread"], "tcp server recvq (bytes the fixture never read)")
    ti = ss_.get("tcp_info")
    chk.check(isinstance(ti, dict) and isinstance(ti.get("rtt_us"), int) and ti.get("rtt_us") > 0,
              "tcp server tcp_info with rtt_us > 0: %r" % ti)
    chk.check((t["client_pid"], t["client_fd"]) in dt.endpoint_set(srv),
              "tcp server endpoints %r contain the client %d fd %d"
              % (srv.get("endpoints"), t["client_pid"], t["client_fd"]))
    chk.check("%d" % port in str(srv.get("name")) and "%d" % cport in str(srv.get("name")),
              "tcp server name %r shows both ports" % srv.get("name"))

    cli = c.fd(t["client_pid"], t["client_fd"], "tcp client end")
    cs = c.sock(cli)
    chk.eq(cs.get("state"), "ESTABLISHED", "tcp client state")
    chk.eq(cs.get("local"), "127.0.0.1:%d" % cport, "tcp client local")
    chk.eq(cs.get("remote"), "127.0.0.1:%d" % port, "tcp client remote")
    chk.eq(cs.get("recvq"), 0, "tcp client recvq")
    chk.check((t["server_pid"], t["server_fd"]) in dt.endpoint_set(cli),
              "tcp client endpoints %r contain the server %d fd %d"
              % (cli.get("endpoints"), t["server_pid"], t["server_fd"]))
    for e in (srv, cli):
        chk.eq(str(e.get("mode"))[:2], "rw", "tcp socket fd %s access" % e.get("fd"))


def check_unix(c):
    chk = c.chk
    u = c.fx.fact("unix")
    if u:
        a = c.fd(u["pid_a"], u["fd_a"], "unix pair end a")
        b = c.fd(u["pid_b"], u["fd_b"], "unix pair end b")
        chk.eq(a.get("type"), "SOCK", "unix pair type")
        chk.check(str(c.sock(a).get("proto", "")).startswith("unix"), "unix pair proto %r" % c.sock(a).get("proto"))
        chk.eq(dt.endpoint_set(a), {(u["pid_b"], u["fd_b"])}, "unix pair a endpoints")
        chk.eq(dt.endpoint_set(b), {(u["pid_a"], u["fd_a"])}, "unix pair b endpoints")
        chk.eq(c.sock(a).get("peer_inode"), b.get("inode"), "unix pair a peer_inode == b's inode")
        chk.eq(c.sock(b).get("peer_inode"), a.get("inode"), "unix pair b peer_inode == a's inode")
    up = c.fx.fact("unixpath")
    if up:
        e = c.fd(up["pid"], up["fd"], "path-bound unix socket")
        chk.eq(c.sock(e).get("path"), up["path"], "unix listener path")
        chk.eq(c.sock(e).get("state"), "LISTEN", "unix listener state")
        chk.check(up["path"] in str(e.get("name")), "unix listener name %r shows its path" % e.get("name"))


def check_pipe(c):
    p = c.fx.fact("pipe")
    if not p:
        return
    chk = c.chk
    w = c.fd(p["writer_pid"], p["writer_fd"], "pipe writer")
    r = c.fd(p["reader_pid"], p["reader_fd"], "pipe reader")
    for e, what in ((w, "writer"), (r, "reader")):
        chk.eq(e.get("type"), "FIFO", "pipe %s type" % what)
    chk.eq(w.get("inode"), r.get("inode"), "pipe ends share the inode")
    chk.eq(str(w.get("mode"))[:2], "-w", "pipe writer access")
    chk.eq(str(r.get("mode"))[:2], "r-", "pipe reader access")
    chk.eq(str(r.get("mode"))[3:4], "*", "pipe reader mode %r marks the blocked read" % r.get("mode"))
    chk.check(p["reader_tid"] in (r.get("blocked_tids") or []),
              "pipe reader blocked_tids %r contain %d" % (r.get("blocked_tids"), p["reader_tid"]))
    chk.eq(str(w.get("mode"))[3:4], "-", "pipe writer mode %r: nobody blocked" % w.get("mode"))
    chk.eq(dt.endpoint_set(w), {(p["reader_pid"], p["reader_fd"])}, "pipe writer endpoints")
    chk.eq(dt.endpoint_set(r), {(p["writer_pid"], p["writer_fd"])}, "pipe reader endpoints")
    acc = {(e.get("pid"), e.get("fd")): e.get("access") for e in w.get("endpoints", []) + r.get("endpoints", [])}
    chk.eq(acc.get((p["reader_pid"], p["reader_fd"])), "r-", "access of the reader as an endpoint")
    chk.eq(acc.get((p["writer_pid"], p["writer_fd"])), "-w", "access of the writer as an endpoint")


def check_epoll(c):
    ep, wt = c.fx.fact("epoll"), c.fx.fact("epoll_waiter")
    if not ep:
        return
    chk = c.chk
    e = c.fd(ep["pid"], ep["epfd"], "epoll fd")
    chk.eq(e.get("type"), "eventpoll", "epoll fd type")
    chk.eq(sorted(e.get("epoll_fds") or []), sorted(dt.int_list(ep["watched"])), "epoll_fds vs watched")
    chk.check(str(e.get("name", "")).startswith("eventpoll: 3 fds"), "epoll name %r" % e.get("name"))
    chk.check(wt["tid"] in (e.get("blocked_tids") or []),
              "epoll blocked_tids %r contain the waiter %d" % (e.get("blocked_tids"), wt["tid"]))
    chk.eq(str(e.get("mode"))[3:4], "*", "epoll fd mode %r marks the blocked epoll_wait" % e.get("mode"))
    for n in dt.int_list(ep["watched"]):
        w = c.fd(ep["pid"], n, "watched fd")
        chk.check(wt["tid"] not in (w.get("blocked_tids") or []),
                  "watched fd %d does not claim the epoll waiter (blocked_tids %r)" % (n, w.get("blocked_tids")))


def lock_of(e, kinds, waiting):
    for l in e.get("locks") or []:
        if l.get("kind") in kinds and bool(l.get("waiting")) == waiting:
            return l
    return None


def check_flock(c):
    f = c.fx.fact("flock")
    if not f:
        return
    chk = c.chk
    waiters, wfds = dt.int_list(f["waiters"]), dt.int_list(f["waiter_fds"])
    h = c.fd(f["holder_pid"], f["holder_fd"], "flock holder")
    chk.eq(h.get("type"), "REG", "flock file type")
    chk.eq(h.get("name"), f["path"], "flock file name")
    chk.eq(str(h.get("mode"))[2:3], "W", "flock holder mode %r shows the held write lock" % h.get("mode"))
    l = lock_of(h, ("FLOCK",), False)
    if chk.check(l, "flock holder locks %r have a held FLOCK" % h.get("locks")):
        chk.eq(l.get("mode"), "WRITE", "flock held mode")
        chk.eq(sorted(l.get("waiters") or []), sorted(waiters), "flock waiters")
    for pid, fd in zip(waiters, wfds):
        w = c.fd(pid, fd, "flock waiter")
        chk.eq(str(w.get("mode"))[2:4], "w*", "flock waiter %d mode %r: waits, blocked" % (pid, w.get("mode")))
        chk.check(pid in (w.get("blocked_tids") or []), "flock waiter %d blocked_tids %r" % (pid, w.get("blocked_tids")))
        wl = lock_of(w, ("FLOCK",), True)
        if chk.check(wl, "flock waiter %d locks %r have a waiting FLOCK" % (pid, w.get("locks"))):
            chk.eq(wl.get("holder_pid"), f["holder_pid"], "flock waiter %d holder_pid" % pid)
            chk.eq(wl.get("mode"), "WRITE", "flock waiter %d mode" % pid)


def check_fcntl_lock(c, case, kinds):
    f = c.fx.fact(case)
    if not f:
        return
    chk = c.chk
    h = c.fd(f["holder_pid"], f["holder_fd"], "%s holder" % case)
    chk.eq(h.get("name"), f["path"], "%s file name" % case)
    chk.eq(str(h.get("mode"))[2:3], "W", "%s holder mode %r shows the held write lock" % (case, h.get("mode")))
    l = lock_of(h, kinds, False)
    if chk.check(l, "%s holder locks %r have a held %s lock" % (case, h.get("locks"), kinds[0])):
        chk.eq(l.get("mode"), "WRITE", "%s held mode" % case)
        chk.eq((l.get("start"), l.get("end")), (0, None), "%s held range 0-EOF" % case)
        chk.eq(l.get("waiters"), [f["waiter_pid"]], "%s held lock waiters" % case)
        chk.check("-1" not in str(l.get("text")), "%s lock text %r names no pid -1" % (case, l.get("text")))
    w = c.fd(f["waiter_pid"], f["waiter_fd"], "%s waiter" % case)
    chk.eq(str(w.get("mode"))[2:4], "w*", "%s waiter mode %r: waits, blocked" % (case, w.get("mode")))
    chk.check(f["waiter_pid"] in (w.get("blocked_tids") or []),
              "%s waiter blocked_tids %r" % (case, w.get("blocked_tids")))
    wl = lock_of(w, kinds, True)
    if chk.check(wl, "%s waiter locks %r have a waiting %s lock" % (case, w.get("locks"), kinds[0])):
        chk.eq(wl.get("holder_pid"), f["holder_pid"], "%s waiter holder_pid" % case)
    chk.check(lock_of(w, kinds, False) is None, "%s waiter is not shown as a holder: %r" % (case, w.get("locks")))


def check_deleted(c):
    d = c.fx.fact("deleted")
    if not d:
        return
    e = c.fd(d["pid"], d["fd"], "deleted file")
    c.chk.eq(e.get("deleted"), True, "deleted flag")
    c.chk.eq(e.get("type"), "REG", "deleted file type")
    c.chk.check(str(e.get("name", "")).startswith(d["path"]), "deleted file name %r" % e.get("name"))


def check_eventfd(c):
    ev = c.fx.fact("eventfd")
    if not ev:
        return
    a = c.fd(ev["pid_a"], ev["fd_a"], "eventfd a")
    b = c.fd(ev["pid_b"], ev["fd_b"], "eventfd b")
    for e in (a, b):
        c.chk.eq(e.get("type"), "eventfd", "eventfd type")
    c.chk.eq(dt.endpoint_set(a), {(ev["pid_b"], ev["fd_b"])}, "eventfd a endpoints")
    c.chk.eq(dt.endpoint_set(b), {(ev["pid_a"], ev["fd_a"])}, "eventfd b endpoints")


# ---------------------------------------------------------------- oracles

SS_USER = re.compile(r'\("[^"]*",pid=(\d+),fd=(\d+)\)')


def oracle_ss(c):
    if not dt.which("ss"):
        dt.log("oracle: ss not installed, socket cross-check skipped")
        return
    chk, t = c.chk, c.fx.fact("tcp")
    if t:
        o = dt.run(["ss", "-tanpi", "( sport = :%d or dport = :%d )" % (t["port"], t["port"])], timeout=20)
        if o.rc != 0:
            dt.log("oracle: `%s` failed (%s), tcp cross-check skipped" % (o.cmd(), o.rc))
        else:
            rows = {}
            for line in o.out.splitlines():
                f = line.split()
                if len(f) >= 5 and f[0] in ("LISTEN", "ESTAB"):
                    for pid, fd in SS_USER.findall(line):
                        rows[(int(pid), int(fd))] = (f[0], int(f[1]), f[3], f[4])
            want = {
                (t["listener_pid"], t["listen_fd"]): ("LISTEN", None, "127.0.0.1:%d" % t["port"], None),
                (t["server_pid"], t["server_fd"]): ("ESTAB", None, "127.0.0.1:%d" % t["port"],
                                                    "127.0.0.1:%d" % t["client_port"]),
                (t["client_pid"], t["client_fd"]): ("ESTAB", None, "127.0.0.1:%d" % t["client_port"],
                                                    "127.0.0.1:%d" % t["port"]),
            }
            for key, (state, _, local, peer) in want.items():
                got = rows.get(key)
                if not chk.check(got, "ss -tanpi: no socket for pid %d fd %d\n%s" % (key[0], key[1], o.out)):
                    continue
                chk.eq((got[0], got[2]), (state, local), "ss state/local of pid %d fd %d" % key)
                e = dt.fds_entry(c.doc, *key) or {}
                s = e.get("socket") or {}
                chk.eq(s.get("state"), {"ESTAB": "ESTABLISHED"}.get(got[0], got[0]),
                       "diag-fds state vs ss for pid %d fd %d" % key)
                chk.eq(s.get("local"), got[2], "diag-fds local vs ss for pid %d fd %d" % key)
                if state == "ESTAB":
                    chk.eq(s.get("remote"), got[3], "diag-fds remote vs ss for pid %d fd %d" % key)
                    chk.eq(s.get("recvq"), got[1], "diag-fds recvq vs ss Recv-Q for pid %d fd %d" % key)
    u, up = c.fx.fact("unix"), c.fx.fact("unixpath")
    if u or up:
        o = dt.run(["ss", "-xanp"], timeout=20)
        if o.rc != 0:
            dt.log("oracle: `%s` failed (%s), unix cross-check skipped" % (o.cmd(), o.rc))
            return
        rows = {}
        for line in o.out.splitlines():
            f = line.split()
            # Netid State Recv-Q Send-Q LocalAddr LocalPort(inode) PeerAddr PeerPort(inode) users
            if len(f) >= 8 and f[0].startswith("u_"):
                for pid, fd in SS_USER.findall(line):
                    rows[(int(pid), int(fd))] = {"state": f[1], "path": f[4], "inode": int(f[5]), "peer": int(f[7])}
        pairs = []
        if u:
            pairs += [(u["pid_a"], u["fd_a"]), (u["pid_b"], u["fd_b"])]
        if up:
            pairs.append((up["pid"], up["fd"]))
        for key in pairs:
            got = rows.get(key)
            if not chk.check(got, "ss -xanp: no socket for pid %d fd %d" % key):
                continue
            e = dt.fds_entry(c.doc, *key) or {}
            s = e.get("socket") or {}
            chk.eq(e.get("inode"), got["inode"], "diag-fds inode vs ss for pid %d fd %d" % key)
            chk.eq(s.get("peer_inode") or 0, got["peer"], "diag-fds peer_inode vs ss for pid %d fd %d" % key)
            if got["path"] != "*":
                chk.eq(s.get("path"), got["path"], "diag-fds unix path vs ss for pid %d fd %d" % key)
            chk.eq(s.get("state"), {"ESTAB": "ESTABLISHED"}.get(got["state"], got["state"]),
                   "diag-fds unix state vs ss for pid %d fd %d" % key)


def oracle_lsof(c, pids):
    if not dt.which("lsof"):
        dt.log("oracle: lsof not installed, fd cross-check skipped")
        return
    o = dt.run(["lsof", "-nP", "-w", "-p", ",".join(map(str, pids))], timeout=30)
    if o.rc not in (0, 1) or not o.out:
        dt.log("oracle: `%s` failed (%s), fd cross-check skipped" % (o.cmd(), o.rc))
        return
    seen = {}
    for line in o.out.splitlines()[1:]:
        f = line.split()
        if len(f) < 5:
            continue
        m = re.fullmatch(r"(\d+)([urw ]?)[a-zA-Z ]?", f[3])
        if not m or not f[1].isdigit():
            continue
        seen[(int(f[1]), int(m.group(1)))] = (m.group(2), f[4])
    for pid in pids:
        proc = dt.fds_process(c.doc, pid) or {}
        got = {f.get("fd"): f for f in proc.get("fds", [])}
        lfds = sorted(fd for (p, fd) in seen if p == pid)
        c.chk.eq(sorted(got), lfds, "fd numbers of %d vs lsof" % pid)
        for fd in lfds:
            acc, typ = seen[(pid, fd)]
            e = got.get(fd)
            if not e:
                continue
            ok = LSOF_TYPES.get(e.get("type"))
            if ok is not None:
                c.chk.check(typ in ok, "type of %d fd %d: diag-fds %s, lsof %s" % (pid, fd, e.get("type"), typ))
            if acc in LSOF_ACCESS:
                c.chk.eq(str(e.get("mode"))[:2], LSOF_ACCESS[acc], "access of %d fd %d vs lsof '%s'" % (pid, fd, acc))


if __name__ == "__main__":
    main()
