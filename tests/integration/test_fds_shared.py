# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-fds on a shared pipe and socket: 200 workers that inherited one pipe as stdout
and stderr and one unix socket (a prefork server and its logger). ENDPOINT stays bounded:
about one line per fd, a shared end summarized with its holder count ("fdworker x200");
--all-endpoints gives the full list; -J gives the count and a bounded sample, or every
endpoint with --all-endpoints. Every count is checked against readlink of /proc/PID/fd."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

WORKERS = 200
JSON_SAMPLE_MAX = 8


def main():
    dt.setup_fds(__doc__)
    chk = dt.Checker("fds-shared")
    with dt.fdfix(["--cases", "many", "--many", "0", "--shared", str(WORKERS)]) as fx:
        sh = fx.fact("shared")
        if sh is None:
            dt.harness_error("fdfix printed no 'shared' line")
        workers = dt.int_list(sh["pids"])
        chk.eq(len(workers), WORKERS, "workers started")
        truth = proc_truth(fx.pid, workers, sh)
        check_table(chk, fx, sh, workers, truth)
        check_all(chk, fx, sh, workers, truth)
        check_json(chk, fx, sh, workers, truth)
    chk.finish()


def links(pid):
    out = {}
    for n in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(n)] = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            pass
    return out


def proc_truth(fixture, workers, sh):
    """From /proc: the pipe and socket links, and every (pid, fd) holding the pipe."""
    fl = links(fixture)
    pipe = fl[sh["pipe_r_fd"]]
    wsock = links(workers[0])[sh["worker_sock_fd"]]
    holders = set()
    for pid in [fixture] + workers:
        for fd, l in links(pid).items():
            if l == pipe:
                holders.add((pid, fd))
    sock_holders = {(pid, fd) for pid in workers for fd, l in links(pid).items() if l == wsock}
    return {"pipe": pipe, "pipe_holders": holders, "sock_holders": sock_holders}


def scope(fx, workers):
    return ",".join(str(p) for p in [fx.pid] + workers)


def run_ok(chk, *args):
    r = dt.diag_fds(*args, timeout=60)
    dt.log("`%s`: exit %s in %.2fs, %d lines" % (r.cmd()[:120], r.rc, r.elapsed, len(r.out.splitlines())))
    chk.check("Sanitizer" not in r.err and "runtime error" not in r.err, "sanitizer report:\n%s" % r.err[-3000:])
    chk.eq(r.rc, 0, "exit status of `%s...` (stderr: %s)" % (r.cmd()[:100], r.err.strip()[:500]))
    return r


def rows_by_fd(out):
    """{(pid, fd): [endpoint lines]} from `-o PID,FD,ENDPOINT` (rows are printed in
    chunks whose widths may differ: fields, not columns; a line that does not start
    with two numbers continues the ENDPOINT cell above)."""
    rows, cur = {}, None
    for line in out.splitlines()[1:]:
        f = line.split(None, 2)
        if len(f) >= 2 and f[0].isdigit() and f[1].isdigit():
            cur = (int(f[0]), int(f[1]))
            rows[cur] = [f[2].strip()] if len(f) > 2 else []
        elif cur is not None and line.strip():
            rows[cur].append(line.strip())
    return rows


def check_table(chk, fx, sh, workers, truth):
    r = run_ok(chk, "-p", scope(fx, workers))
    nfds = sum(len(links(p)) for p in [fx.pid] + workers)
    nlines = len(r.out.splitlines())
    # one header, one line per fd; an fd with a few endpoints may take up to 4
    chk.check(nlines <= nfds + 1 + 8,
              "%d lines for %d fds: ENDPOINT is not bounded (first lines:\n%s)"
              % (nlines, nfds, "\n".join(r.out.splitlines()[:12])))
    r = run_ok(chk, "-p", scope(fx, workers), "-o", "PID,FD,ENDPOINT")
    rows = rows_by_fd(r.out)
    npipe = len(truth["pipe_holders"])
    w = workers[0]
    for fd in (1, 2):
        ep = rows.get((w, fd))
        if not chk.check(ep is not None, "worker %d fd %d in the table" % (w, fd)):
            continue
        chk.eq(len(ep), 1, "worker %d fd %d: ENDPOINT is one summary line" % (w, fd))
        text = " ".join(ep)
        # the other holders: every worker (this one holds the other of fds 1/2) and the fixture
        chk.check(re.search(r"\bfdworker x%d\b" % WORKERS, text) is not None,
                  "worker fd %d summary names the %d workers: %r" % (fd, WORKERS, text))
        chk.check(re.search(r"\bfdfix %d\b" % fx.pid, text) is not None,
                  "worker fd %d summary names the reader fdfix %d: %r" % (fd, fx.pid, text))
    ep = rows.get((fx.pid, sh["pipe_r_fd"]))
    if chk.check(ep is not None, "the pipe's read end in the table"):
        chk.eq(ep, ["fdworker x%d" % len({p for p, _ in truth["pipe_holders"]} - {fx.pid})],
               "read end ENDPOINT summary (%d writer fds in /proc)" % (npipe - 1))
    ep = rows.get((fx.pid, sh["sock_fd"]))
    if chk.check(ep is not None, "the socket's peer in the table"):
        chk.eq(ep, ["fdworker x%d" % len(truth["sock_holders"])], "socket peer ENDPOINT summary")
    # a worker's socket has one endpoint: listed as before
    ep = rows.get((w, sh["worker_sock_fd"]))
    if chk.check(ep is not None, "worker socket in the table"):
        chk.eq(ep, ["%d,fdfix,%d" % (fx.pid, sh["sock_fd"])], "worker socket ENDPOINT (one holder, listed)")


def check_all(chk, fx, sh, workers, truth):
    r = run_ok(chk, "-p", str(fx.pid), "--all-endpoints", "-o", "PID,FD,ENDPOINT")
    rows = rows_by_fd(r.out)
    ep = rows.get((fx.pid, sh["pipe_r_fd"]), [])
    got = set()
    for e in ep:
        m = re.fullmatch(r"(\d+),fdworker,(\d+)", e)
        if chk.check(m is not None, "--all-endpoints entry %r is PID,COMM,FD" % e) and m:
            got.add((int(m.group(1)), int(m.group(2))))
    want = truth["pipe_holders"] - {(fx.pid, sh["pipe_r_fd"])}
    chk.check(got == want, "--all-endpoints lists every writer of the pipe (as /proc says): %d listed, "
              "%d in /proc, %d missing, %d extra" % (len(got), len(want), len(want - got), len(got - want)))


def check_json(chk, fx, sh, workers, truth):
    others = truth["pipe_holders"] - {(fx.pid, sh["pipe_r_fd"])}
    for extra, full in (((), False), (("--all-endpoints",), True)):
        r = run_ok(chk, "-J", "-p", str(fx.pid), *extra)
        doc = r.json(chk)
        if doc is None:
            continue
        e = dt.fds_entry(doc, fx.pid, sh["pipe_r_fd"])
        if not chk.check(e is not None, "pipe read end in -J %s" % " ".join(extra)):
            continue
        chk.eq(e.get("endpoints_total"), len(others), "-J endpoints_total %s (from /proc)" % " ".join(extra))
        eps = dt.endpoint_set(e)
        chk.check(eps <= others, "-J endpoints are real holders")
        if full:
            chk.check(eps == others, "-J --all-endpoints: every holder (%d of %d)" % (len(eps & others), len(others)))
        else:
            chk.check(0 < len(e.get("endpoints", [])) <= JSON_SAMPLE_MAX,
                      "-J endpoints is a bounded sample (%d entries)" % len(e.get("endpoints", [])))
        s = dt.fds_entry(doc, fx.pid, sh["sock_fd"])
        if chk.check(s is not None, "socket peer in -J"):
            chk.eq(s.get("endpoints_total"), len(truth["sock_holders"]), "-J socket endpoints_total")


if __name__ == "__main__":
    main()
