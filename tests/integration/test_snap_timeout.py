# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-snap keeps its --timeout on a FUSE mount that stopped answering: chainfix
dstate (a thread in D state reading a file there, another waiting for the mutex it
holds: a stuck chain whose end is the hung mount), then fusehang (a holder blocked
reading a file there) and fusehang --swallow (a server that takes every request and
answers none, so a stat there cannot end). The bundle is written within the timeout
and a margin, every part has a status (a part that ran out of time says why), the
D-state thread is in dstate.json, and no process of the run is left behind (the test
is a subreaper). Needs root and /dev/fuse."""
import json
import os
import signal
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import snaptest as st  # noqa: E402

TIMEOUT_S = 3
MARGIN_S = 1.5      # exit, rename and the children's reaping after the deadline


def bundle_text(path):
    """Every file of the bundle as one string (to find a tid and a path in)."""
    out = []
    for rel, s in st.walk(path):
        p = os.path.join(path, rel)
        if os.path.isfile(p):
            out.append(dt.read_file(p) or "")
    return "\n".join(out)


def run_case(chk, tmp, exe_key, fx_args, what):
    fx = dt.KVFixture(exe_key, fx_args, ready_timeout=20, term_timeout=10, pdeathsig=signal.SIGTERM)
    mnt = conn = None
    try:
        fx.__enter__()
        if exe_key == "chainfix":
            fu = fx.fact("chain")
            holder, tid = dt.pid_tid(fu["O"])
            dstate = True
        else:
            fu = fx.fact("fuse")
            holder, tid = fu["holder_pid"], fu["holder_tid"]
            # its reader may wait interruptibly (S): listed only if in D before and after
            dstate = dt.task_state(holder, tid) == "D"
        mnt, conn = fu["mnt"], fu.get("conn") or None
        out = os.path.join(tmp, what)
        r = st.snap("-o", out, "--timeout", "%ds" % TIMEOUT_S, str(holder), timeout=TIMEOUT_S + 20)
        chk.check(r.rc in st.BUNDLE_RC, "%s: exit 0 or 4\n%s" % (what, r.describe()))
        chk.check(r.elapsed <= TIMEOUT_S + MARGIN_S, "%s: the bundle within --timeout %ds (+%.1f s): took %.2f s"
                  % (what, TIMEOUT_S, MARGIN_S, r.elapsed))
        idx = st.check_bundle(chk, out, what)
        dstate = dstate and dt.task_state(holder, tid) == "D"
        if idx is not None:
            parts = st.index_parts(idx)
            for n, e in parts.items():
                if e.get("status") == "timed-out":
                    chk.check(e.get("why") or e.get("reason"), "%s: timed-out part %s says why: %r" % (what, n, e))
            dl = parts.get("dstate", {})
            if dl.get("status") == "ok" and dstate:
                text = bundle_text(out)
                chk.check(str(tid) in text, "%s: the holder's thread %d is in the bundle" % (what, tid))
                ds = [rel for rel, _ in st.walk(out) if rel.startswith("dstate") and rel.endswith(".json")]
                found = False
                for rel in ds:
                    found = found or ('"tid": %d' % tid) in json.dumps(st.load_json(os.path.join(out, rel)))
                chk.check(found, "%s: the D-state listing (%r) has tid %d" % (what, ds, tid))
            else:
                dt.log("%s: the dstate part is %r, the reader in state %s: the listing not checked"
                       % (what, dl.get("status"), dt.task_state(holder, tid)))
        st.no_children_left(chk, what, exclude=fx.pids(), wait=3.0)
        chk.check(fx.proc.poll() is None, "%s: fusehang still runs" % what)
    finally:
        dt.close_fuse(chk, fx, mnt, conn, point_removed=True)


def main():
    st.setup(__doc__)
    dt.need_path("diag_snap")
    st.need_fuse()
    dt.need_path("chainfix")
    dt.set_subreaper()
    chk = dt.Checker("snap-timeout")
    with tempfile.TemporaryDirectory(prefix="diag-snap-timeout.") as tmp:
        run_case(chk, tmp, "chainfix", ["--case", "dstate"], "chain-into-dstate")
        run_case(chk, tmp, "fusehang", [], "hung-reader")
        run_case(chk, tmp, "fusehang", ["--swallow"], "swallowing-server")
    chk.finish()


if __name__ == "__main__":
    main()
