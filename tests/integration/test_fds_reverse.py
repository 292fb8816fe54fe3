# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-fds reverse lookups and options on the fdfix fixture: FILE (who has it open or
locked), --port, --inode, --socket local|remote, a FILE nobody has open (exit 1), --summary
against /proc/PID/limits, -o, -H, -r -n, --help and bad usage (exit 2)."""
import os
import re
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

MANY = 100
ALL_COLUMNS = ["PID", "COMM", "UID", "FD", "MODE", "TYPE", "NAME", "ENDPOINT", "LOCKS", "POS", "FLAGS",
               "INODE", "DEV", "PROTO", "STATE", "LOCAL", "REMOTE", "RECVQ", "SENDQ", "RTT", "RETRANS",
               "UNACKED", "LASTRCV", "LASTSND", "BLOCKED"]


def rows(r):
    """{(pid, fd)} from `-r -n -o PID,FD` output."""
    out = set()
    for line in r.out.splitlines():
        f = line.split()
        if len(f) == 2 and f[0].isdigit() and f[1].isdigit():
            out.add((int(f[0]), int(f[1])))
    return out


def json_rows(doc):
    return {(p.get("pid"), f.get("fd")) for p in (doc or {}).get("processes", []) for f in p.get("fds", [])}


def clean(chk, r):
    chk.check("Sanitizer" not in r.err and "runtime error" not in r.err,
              "`%s`: sanitizer report:\n%s" % (r.cmd(), r.err[-3000:]))


def lookup(chk, fx, what, args, want, exact_pids=None):
    """Run a reverse lookup in table (-r -n -o PID,FD) and JSON form; compare the rows
    with want. Rows of processes outside exact_pids (other tests' processes that happen
    to match) are only logged."""
    keep = set(exact_pids or fx.pids())
    for form in (["-r", "-n", "-o", "PID,FD"], ["-J"]):
        r = dt.diag_fds(*(form + args), timeout=30)
        clean(chk, r)
        chk.eq(r.rc, dt.fds_status(0), "%s: exit status of `%s` (stderr: %s)" % (what, r.cmd(), r.err.strip()))
        got = json_rows(r.json(chk)) if "-J" in form else rows(r)
        extra = {x for x in got if x[0] not in keep}
        if extra:
            dt.log("%s: `%s` also lists other processes: %s" % (what, r.cmd(), sorted(extra)))
        chk.eq(sorted(got - extra), sorted(want), "%s: rows of `%s`" % (what, r.cmd()))


def main():
    dt.setup_fds(__doc__)
    chk = dt.Checker("fds-reverse")
    with dt.fdfix(["--cases", "tcp,pipe,flock,many", "--many", MANY]) as fx:
        t, p, f, m = fx.fact("tcp"), fx.fact("pipe"), fx.fact("flock"), fx.fact("many")
        a = fx.pid
        waiters, wfds = dt.int_list(f["waiters"]), dt.int_list(f["waiter_fds"])

        # FILE: exactly the holder and the two waiters.
        lookup(chk, fx, "FILE", [f["path"]],
               {(f["holder_pid"], f["holder_fd"])} | set(zip(waiters, wfds)))
        # The default table names the file on every row.
        r = dt.diag_fds(f["path"])
        clean(chk, r)
        chk.eq(r.rc, dt.fds_status(0), "exit status of `%s`" % r.cmd())
        lines = r.out.splitlines()
        chk.check(lines and lines[0].split()[:3] == ["PID", "COMM", "FD"] and "NAME" in lines[0].split(),
                  "`%s` header %r: PID COMM FD ... NAME" % (r.cmd(), lines[:1]))
        chk.eq(len(lines), 4, "`%s`: header and 3 rows\n%s" % (r.cmd(), r.out))
        chk.check(all(f["path"] in l for l in lines[1:]), "`%s`: every row names the file\n%s" % (r.cmd(), r.out))

        # --port: the listener, the accepted end and the client.
        tcp_all = {(t["listener_pid"], t["listen_fd"]), (t["server_pid"], t["server_fd"]),
                   (t["client_pid"], t["client_fd"])}
        lookup(chk, fx, "--port", ["--port", t["port"]], tcp_all)
        lookup(chk, fx, "--port client", ["--port", t["client_port"]],
               {(t["server_pid"], t["server_fd"]), (t["client_pid"], t["client_fd"])})
        # --socket local/remote ADDR:PORT
        lookup(chk, fx, "--socket local", ["--socket", "local", "127.0.0.1:%d" % t["port"]],
               {(t["listener_pid"], t["listen_fd"]), (t["server_pid"], t["server_fd"])})
        lookup(chk, fx, "--socket remote", ["--socket", "remote", "127.0.0.1:%d" % t["port"]],
               {(t["client_pid"], t["client_fd"])})
        # --inode of the pipe: both ends.
        ino = os.stat("/proc/%d/fd/%d" % (p["writer_pid"], p["writer_fd"])).st_ino
        lookup(chk, fx, "--inode", ["--inode", ino],
               {(p["writer_pid"], p["writer_fd"]), (p["reader_pid"], p["reader_fd"])})
        # --inode of the listening socket
        sino = os.stat("/proc/%d/fd/%d" % (t["listener_pid"], t["listen_fd"])).st_ino
        lookup(chk, fx, "--inode socket", ["--inode", sino], {(t["listener_pid"], t["listen_fd"])})

        check_nomatch(chk, t)
        check_summary(chk, a, m)
        check_table_options(chk, fx, a)
    check_usage(chk)
    chk.finish()


def check_nomatch(chk, t):
    # A file nobody has open: exit 1, no rows (table or JSON).
    fd, name = tempfile.mkstemp(prefix="diagtest-nobody-")
    os.close(fd)
    try:
        r = dt.diag_fds("-n", name)
        clean(chk, r)
        chk.eq(r.rc, dt.fds_status(1), "exit status of `%s` (nothing has it open)" % r.cmd())
        chk.eq(r.out.strip(), "", "rows of `%s`" % r.cmd())
        r = dt.diag_fds("-J", name)
        chk.eq(r.rc, dt.fds_status(1), "exit status of `%s`" % r.cmd())
        doc = r.json(chk)
        chk.eq((doc or {}).get("processes"), [], "processes of `%s`" % r.cmd())
    finally:
        os.unlink(name)
    # A file that does not exist: exit 1 and a message.
    r = dt.diag_fds("/nonexistent/diagtest-no-such-file")
    chk.eq(r.rc, 1, "exit status of `%s`" % r.cmd())
    chk.check(r.err.strip() and "no-such-file" in r.err, "`%s` says why: %r" % (r.cmd(), r.err))
    # A port nobody uses (the fixture's listener is bound; pick one unused next to it).
    free = unused_port()
    if free:
        r = dt.diag_fds("-n", "--port", free)
        chk.eq(r.rc, dt.fds_status(1), "exit status of `%s` (no socket on it)" % r.cmd())
        chk.eq(r.out.strip(), "", "rows of `%s`" % r.cmd())
    # A process that does not exist: exit 1, named on stderr.
    gone = reaped_pid()
    r = dt.diag_fds("-p", gone)
    chk.eq(r.rc, 1, "exit status of `%s` (no such process)" % r.cmd())
    chk.check(str(gone) in r.err, "`%s` names the pid on stderr: %r" % (r.cmd(), r.err))


def unused_port():
    import socket
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    finally:
        s.close()
    # Nothing else should have that port now; double-check through /proc/net.
    for f in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"):
        if (":%04X " % port) in (dt.read_file(f) or ""):
            return None
    return port


def reaped_pid():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def check_summary(chk, pid, m):
    soft = None
    s = dt.read_file("/proc/%d/limits" % pid) or ""
    mm = re.search(r"^Max open files\s+(\S+)", s, re.M)
    if mm and mm.group(1).isdigit():
        soft = int(mm.group(1))
    nfds = len(os.listdir("/proc/%d/fd" % pid))
    r = dt.diag_fds("--summary", "-p", pid, "-r", "-n", "-o", "PID,FDS,LIMIT,CHR")
    clean(chk, r)
    chk.eq(r.rc, 0, "exit status of `%s` (stderr: %s)" % (r.cmd(), r.err.strip()))
    f = r.out.split()
    if chk.eq(len(f), 4, "`%s`: one row of 4 fields: %r" % (r.cmd(), r.out)):
        chk.eq(int(f[0]), pid, "--summary PID")
        chk.check(int(f[1]) >= m["count"], "--summary FDS %s >= %d" % (f[1], m["count"]))
        chk.eq(int(f[1]), nfds, "--summary FDS vs /proc/%d/fd" % pid)
        chk.eq(int(f[2]), soft, "--summary LIMIT vs soft 'Max open files' of /proc/%d/limits" % pid)
        chk.check(int(f[3]) >= m["count"], "--summary CHR %s >= %d (/dev/null fds)" % (f[3], m["count"]))
    r = dt.diag_fds("--summary", "-J", "-p", pid)
    chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
    doc = r.json(chk) or {}
    ps = doc.get("processes", [])
    if chk.eq(len(ps), 1, "`%s`: one process" % r.cmd()):
        chk.eq(ps[0].get("pid"), pid, "--summary -J pid")
        chk.eq(ps[0].get("fds"), nfds, "--summary -J fds")
        chk.eq(ps[0].get("limit"), soft, "--summary -J limit")
    # Default --summary table: header then the row.
    r = dt.diag_fds("--summary", "-p", pid)
    lines = r.out.splitlines()
    chk.check(r.rc == 0 and len(lines) == 2 and lines[0].split()[:4] == ["PID", "COMM", "FDS", "LIMIT"],
              "`%s` exit %s, header and one row:\n%s" % (r.cmd(), r.rc, r.out))


def check_table_options(chk, fx, pid):
    nfds = sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))
    # -o selection, -r raw, -n no header
    r = dt.diag_fds("-p", pid, "-o", "FD,TYPE", "-r", "-n")
    clean(chk, r)
    chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
    lines = r.out.splitlines()
    chk.check(all(len(l.split(" ")) == 2 for l in lines), "`%s`: two space-separated fields per row:\n%s"
              % (r.cmd(), r.out[:1000]))
    chk.eq(sorted(int(l.split()[0]) for l in lines if l.split() and l.split()[0].isdigit()), nfds,
           "`%s` fds vs /proc/%d/fd" % (r.cmd(), pid))
    # with a header
    r = dt.diag_fds("-p", pid, "-o", "FD,TYPE,INODE")
    lines = r.out.splitlines()
    chk.check(lines and lines[0].split() == ["FD", "TYPE", "INODE"], "`%s` header %r" % (r.cmd(), lines[:1]))
    chk.eq(len(lines), len(nfds) + 1, "`%s`: header and one row per fd" % r.cmd())
    # -o +LIST appends to the default columns
    r = dt.diag_fds("-p", pid)
    default = (r.out.splitlines() or [""])[0].split()
    r = dt.diag_fds("-p", pid, "-o", "+STATE,RECVQ")
    lines = r.out.splitlines()
    chk.check(default and lines and lines[0].split() == default + ["STATE", "RECVQ"],
              "`%s` header %r: the default columns %r then STATE RECVQ" % (r.cmd(), lines[:1], default))
    # -r keeps one line per row even with multi-line cells (ENDPOINT)
    r = dt.diag_fds("-p", pid, "-r", "-n")
    chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
    chk.eq(len(r.out.splitlines()), len(nfds), "`%s`: one line per fd" % r.cmd())
    # -H lists every documented column, and exits 0
    r = dt.diag_fds("-H")
    chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
    listed = [l.split()[0] for l in r.out.splitlines() if l.strip()]
    chk.eq(listed, ALL_COLUMNS, "`%s` columns" % r.cmd())
    r = dt.diag_fds("-H", "--summary")
    chk.eq(r.rc, 0, "exit status of `%s`" % r.cmd())
    chk.check("FDS" in r.out and "LIMIT" in r.out, "`%s` lists FDS and LIMIT" % r.cmd())
    # -o LOCKS,BLOCKED on the fixture: the flock holder row shows its waiters
    f = fx.fact("flock")
    r = dt.diag_fds("-p", pid, "-o", "FD,LOCKS", "-r", "-n")
    row = [l for l in r.out.splitlines() if l.split() and l.split()[0] == str(f["holder_fd"])]
    chk.check(row and all(str(w) in row[0] for w in dt.int_list(f["waiters"])),
              "`%s`: holder row names the waiters: %r" % (r.cmd(), row))
    # -c NAME: only fdfix processes, the fixture's among them
    r = dt.diag_fds("-c", "fdfix", "-J")
    doc = r.json(chk) or {}
    comms = {p.get("comm") for p in doc.get("processes", [])}
    chk.eq(comms, {"fdfix"}, "`%s` comms" % r.cmd())
    shown = {p.get("pid") for p in doc.get("processes", [])}
    chk.check(set(fx.pids()) <= shown, "`%s` shows the fixture's processes %s (got %s)"
              % (r.cmd(), fx.pids(), sorted(shown)))


def check_usage(chk):
    r = dt.diag_fds("--help")
    chk.eq(r.rc, 0, "exit status of --help")
    chk.check("Usage:" in r.out and "Examples:" in r.out and "--port" in r.out,
              "--help prints usage with examples to stdout")
    chk.eq(r.err, "", "--help stderr")
    for args in (["--bogus"], ["--port", "abc"], ["--port", "70000"], ["--inode", "0"], ["--inode", "x"],
                 ["-o", "NOPE"], ["--socket", "sideways", "1.2.3.4:5"], ["-p", "abc"], ["-p"],
                 ["/", "/"]):
        r = dt.diag_fds(*args)
        clean(chk, r)
        chk.eq(r.rc, 2, "exit status of `%s` (bad usage; stderr %r)" % (r.cmd(), r.err.strip()))
        chk.eq(r.out, "", "stdout of `%s`" % r.cmd())
        chk.check("--help" in r.err, "`%s` points at --help: %r" % (r.cmd(), r.err.strip()))


if __name__ == "__main__":
    main()
