# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain ends a chain at a remote TCP peer, with tcp_info: chainfix remote puts
the peer in a new network namespace behind a veth pair (10.200.0.1/30 here, .2
there); the peer accepted and never answers. H holds flock LOCK_EX on a session file,
sent 5 bytes to the peer and waits in poll(); W waits for the flock. Seen from here
the peer's socket is in another namespace, so `diag-chain W` must give W -file-lock->
H -socket-> a "remote" endpoint with tcp_info, and the verdict "root: pid H ... has
held FLOCK WRITE <session> for ... while waiting in poll() on 10.200.0.2:PORT, which
has sent nothing for ...". --all shows that chain once (H's shorter one folded into
it). Nothing is stopped or woken. The namespace and the veth are always removed. Needs root, iproute2 and network namespaces (else skipped)."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

EXIT_STUCK = 5


def link_exists(name):
    return os.path.exists("/sys/class/net/%s" % name)


def main():
    dt.setup_chain(__doc__)
    dt.need_path("diag_chain")
    dt.need_path("chainfix")
    dt.need_root("a network namespace and a veth pair")
    ip = dt.need_program("ip")
    if dt.run(["unshare", "--net", "true"], timeout=10).rc != 0:
        dt.skip("`unshare --net` does not work here")
    dt.set_subreaper()
    chk = dt.Checker("chain-remote")
    fx = dt.chainfix("remote", ready_timeout=20)
    veth = session = peer = None
    try:
        fx.__enter__()
        f = fx.fact("chain")
        veth, session, peer = f["veth"], f["session"], f["peer_pid"]
        check(chk, fx, f)
    finally:
        fx.close()
        dt.reap_orphans()
        if veth:
            left = link_exists(veth)
            if left:
                dt.run([ip, "link", "del", veth], timeout=10)
            chk.check(not left, "the fixture left the veth %s" % veth)
        if peer:
            chk.check(not os.path.exists("/proc/%d" % peer),
                      "the peer (pid %d, in the namespace) is still there" % peer)
        if session:
            chk.check(not os.path.exists(session), "the fixture left its session file %s" % session)
    chk.finish()


def check(chk, fx, f):
    (w, _), (h, _) = dt.pid_tid(f["W"]), dt.pid_tid(f["H"])
    port, session, peer = f["port"], f["session"], f["peer_pid"]
    blocked = [(w, w), (h, h), (peer, peer)]
    remote = "10.200.0.2:%d" % port
    what = "remote"
    res = dt.diag_chain_checked(chk, fx, what, "-J", w, blocked=blocked)
    ch = dt.chain_json(chk, res, what, w)
    if ch:
        path = dt.chain_expect_path(chk, ch, what, [(w, w), (h, h)], ["file-lock", "socket"], "remote",
                                    endpoint=True)
        if len(path) == 3:
            chk.check("FLOCK WRITE" in (path[1][1].get("resource") or "") and session in path[1][1]["resource"],
                      "%s: file-lock edge resource %r names FLOCK WRITE %s"
                      % (what, path[1][1].get("resource"), session))
            chk.check((path[1][0].get("syscall") or "").startswith("poll("),
                      "%s: H's syscall %r" % (what, path[1][0].get("syscall")))
            so = path[2][0].get("socket") or {}
            chk.eq(so.get("remote"), remote, "%s: socket remote" % what)
            chk.check(str(so.get("local", "")).startswith("10.200.0.1:"),
                      "%s: socket local %r" % (what, so.get("local")))
            chk.eq(so.get("state"), "ESTABLISHED", "%s: socket state" % what)
            chk.check(isinstance(so.get("last_data_recv_ms"), int) and isinstance(so.get("rtt_us"), int),
                      "%s: no tcp_info in the socket %s" % (what, so))
            chk.check("remote peer" in (path[2][0].get("end_text") or ""),
                      "%s: end_text %r" % (what, path[2][0].get("end_text")))
        v = dt.chain_verdict_has(chk, ch, what)
        # "... has held FLOCK WRITE S for T while waiting in poll() on R, which has sent nothing for T2"
        # or "... holds FLOCK WRITE S and has been blocked for T, waiting in poll() on R, ..."
        want = (r"^root: pid %d \(cf-holder\) tid %d (has held|holds) FLOCK WRITE %s .*waiting in poll\(\) on "
                r"%s, which has sent nothing for \S+" % (h, h, re.escape(session), re.escape(remote)))
        chk.check(re.search(want, v), "%s: verdict %r does not match %r" % (what, v, want))
    res = dt.diag_chain_checked(chk, fx, what + " (text)", w, blocked=blocked)
    roots = [l for l in res.out.splitlines() if l.startswith("root: ")]
    chk.check(len(roots) == 1 and "FLOCK WRITE" in roots[0] and remote in roots[0],
              "%s (text): root line\n%s" % (what, res.describe()))
    # --all: the chain is a story (it ends at a remote peer), with W among its starts
    res, problems = dt.run_watched([dt.need_path("diag_chain"), "--all", "-J"], dt.group_pids(fx.pid))
    chk.check(not problems, "--all: a target was stopped or traced: %s" % problems[:8])
    chk.check(res.rc in (3, 5), "--all: exit status %s\n%s" % (res.rc, res.describe()))
    doc = res.json(chk)
    ch, story = dt.chain_story(doc, w)
    chk.check([(n.get("kind"), n.get("pid"), n.get("end")) for n in story]
              == [("thread", w, "none"), ("thread", h, "none"), ("endpoint", None, "remote")],
              "--all: W's (tid %d) chain, to H and the remote peer, is not there; chains:\n%s"
              % (w, dt.chain_summary(doc)))
    # H's own chain (H -> remote) is part of W's story, though H has waited longer:
    # folded into it, not shown again.
    chk.check(not dt.chain_with_start(doc, h),
              "--all: H (tid %d), whom W's chain passes through, starts a chain of its own as well; chains:\n%s"
              % (h, dt.chain_summary(doc)))


if __name__ == "__main__":
    main()
