# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain stops at an idle event loop: a client waits for a reply on a connection
whose server is asleep in epoll_wait() with that connection in its interest set (the
server owes no reply yet: a blocking command). The chain is the client, then the
server's polling thread, ending "idle"; the verdict says the server is idle waiting
with the connection in its epoll set; the server's helper threads (condition
variable waiters) and its self-pipe are not followed.

Scenes: chainfix idle_server (an event loop, three helper threads, a self-pipe);
and, when redis-server and redis-cli are installed, `redis-cli BLPOP nokey 0` against
a private redis-server (that part is skipped without them)."""
import os
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

EXIT_STUCK = 5
MAX_TEXT_LINES = 6      # client line, its frame, the hop to the server, its frame, its end, root


def check_idle(chk, res_json, res_text, what, client, server, fd, extra_tids=()):
    """client, server: (pid, tid); fd: the server's fd of the connection."""
    ch = dt.chain_json(chk, res_json, what, client[1])
    if ch:
        path = dt.chain_expect_path(chk, ch, what, [client, server], ["socket"], "idle")
        if len(path) == 2:
            end = path[1][0].get("end_text") or ""
            chk.check("epoll_wait" in end and "fd %d " % fd in end and "interest set" in end,
                      "%s: the server's end %r names epoll_wait, fd %d and its interest set" % (what, end, fd))
        tids = {t for _, t in dt.chain_threads(ch)}
        chk.eq(tids, {client[1], server[1]}, "%s: the threads in the chain (helpers %s must not appear)"
               % (what, sorted(extra_tids)))
        chk.check(len(ch.get("nodes", [])) <= 3, "%s: %d nodes, want at most 3\n%s"
                  % (what, len(ch.get("nodes", [])), res_json.describe()))
        dt.chain_verdict_has(chk, ch, what, "pid %d " % server[0], "idle", "epoll", "interest set",
                             "owes no reply")
    lines = res_text.out.splitlines()
    chk.check(len(lines) <= MAX_TEXT_LINES, "%s (text): %d lines, want at most %d\n%s"
              % (what, len(lines), MAX_TEXT_LINES, res_text.describe()))
    roots = [l for l in lines if l.startswith("root: ")]
    chk.check(len(roots) == 1 and "idle in epoll_wait" in roots[0] and "pid %d " % server[0] in roots[0],
              "%s (text): the root line names the idle server\n%s" % (what, res_text.describe()))
    for t in extra_tids:
        chk.check("tid %d " % t not in res_text.out, "%s (text): helper tid %d appears\n%s"
                  % (what, t, res_text.describe()))


def case_fixture(chk):
    with dt.chainfix("idle_server") as fx:
        f = fx.fact("chain")
        client, server = dt.pid_tid(f["K"]), dt.pid_tid(f["S"])
        helpers = dt.int_list(f["helpers"])
        blocked = [client, server] + [(server[0], t) for t in helpers]
        what = "idle_server"
        rj = dt.diag_chain_checked(chk, fx, what, "-J", client[1], rc=EXIT_STUCK, blocked=blocked)
        rt = dt.diag_chain_checked(chk, fx, what + " (text)", client[1], rc=EXIT_STUCK, blocked=blocked)
        check_idle(chk, rj, rt, what, client, server, f["conn_fd"], helpers)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    return None


def fd_of_peer(pid, client_pid):
    """The fd of pid on the TCP connection client_pid made (matched by inode of the
    peer's port in /proc/net/tcp)."""
    def sock_inodes(p):
        out = {}
        for fd in os.listdir("/proc/%d/fd" % p):
            try:
                l = os.readlink("/proc/%d/fd/%s" % (p, fd))
            except OSError:
                continue
            if l.startswith("socket:["):
                out[int(l[8:-1])] = int(fd)
        return out
    rows = {}
    for line in (dt.read_file("/proc/net/tcp") or "").splitlines()[1:]:
        w = line.split()
        rows[int(w[9])] = (w[1], w[2])
    cl = sock_inodes(client_pid)
    srv = sock_inodes(pid)
    for ino in cl:
        if ino not in rows:
            continue
        local, remote = rows[ino]
        for sino, sfd in srv.items():
            if rows.get(sino) == (remote, local):
                return sfd
    return None


def case_redis(chk):
    srv_exe, cli_exe = shutil.which("redis-server"), shutil.which("redis-cli")
    if not srv_exe or not cli_exe:
        dt.log("SKIP (part): redis-server or redis-cli is not installed")
        return
    port = free_port()
    srv = subprocess.Popen([srv_exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                            "--daemonize", "no", "--dir", "/tmp", "--logfile", ""],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cli = None
    try:
        ok = wait_for(lambda: subprocess.run([cli_exe, "-p", str(port), "PING"], capture_output=True,
                                             timeout=5).stdout.strip() == b"PONG", 10)
        if not ok:
            chk.fail("redis-server on port %d did not answer PING" % port)
            return
        cli = subprocess.Popen([cli_exe, "-p", str(port), "BLPOP", "nokey", "0"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        ok = wait_for(lambda: dt.task_state(cli.pid, cli.pid) == "S" and
                      (dt.proc_syscall(cli.pid, cli.pid) or ["?"])[0] in ("0", "45"), 10)
        chk.check(ok, "redis-cli BLPOP did not block in read/recvfrom")
        # the server's event loop: the thread in epoll_wait
        main = srv.pid
        ok = wait_for(lambda: dt.task_state(main, main) == "S", 10)
        fd = fd_of_peer(srv.pid, cli.pid)
        chk.check(fd is not None, "the server's fd of the redis-cli connection not found")
        helpers = [t for t in dt.task_ids(srv.pid) if t != main]
        what = "redis BLPOP"
        # redis wakes ten times a second (serverCron): a run that caught its loop
        # thread on the CPU sees a running server, not an idle one (a known limit:
        # diag-chain(1) LIMITS). Take the runs again then, a few times at most.
        for _ in range(5):
            wait_for(lambda: dt.task_state(main, main) == "S", 10)
            rj = dt.run([dt.need_path("diag_chain"), "-J", str(cli.pid)], timeout=60)
            rt = dt.run([dt.need_path("diag_chain"), str(cli.pid)], timeout=60)
            if '"redis-server" R' not in rt.out and '"redis-server" R' not in rj.out:
                break
            dt.log("%s: redis-server's loop was running during a run: again" % what)
        chk.eq(rj.rc, EXIT_STUCK, "%s: exit status\n%s" % (what, rj.describe()))
        check_idle(chk, rj, rt, what, (cli.pid, cli.pid), (srv.pid, main), fd if fd is not None else -1, helpers)
    finally:
        for p in (cli, srv):
            if p is not None:
                p.kill()
                p.wait()


def main():
    dt.setup_chain(__doc__)
    dt.need_path("diag_chain")
    dt.need_path("chainfix")
    chk = dt.Checker("chain-idle")
    case_fixture(chk)
    case_redis(chk)
    chk.finish()


if __name__ == "__main__":
    main()
