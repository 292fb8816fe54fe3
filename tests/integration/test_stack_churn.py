# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-stack on a process whose threads come and go during the capture (DESIGN rule 3):
never a crash or sanitizer report, exit 0 or 4, valid output, target unharmed; and on a
process that exits during the capture: exit 0, 1 or 4, no crash."""
import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

RUNS = 12
PROCESS_EXITS = 6


def main():
    dt.setup(__doc__)
    chk = dt.Checker("stack-churn")
    with dt.Fixture(["--roles", "churn,idle,heartbeat,pipe", "--idle", 20]) as fx:
        stable = set(fx.tids())
        for i in range(RUNS):
            args = [["-J"], ["-J", "--no-group"], [], ["-o", "TID,FUNC,FRAMES", "-n"]][i % 4]
            r = dt.diag_stack(*(args + [fx.pid]), timeout=30)
            chk.check(r.rc in (0, 4), "run %d: `%s` exit %r, want 0 or 4\n%s" % (i, r.cmd(), r.rc, r.err[-3000:]))
            chk.check("Sanitizer" not in r.err and "runtime error" not in r.err,
                      "run %d: sanitizer report:\n%s" % (i, r.err[-3000:]))
            if "-J" in args:
                doc = r.json(chk)
                proc = dt.process_of(doc, fx.pid)
                if chk.check(proc is not None, "run %d: process in output" % i):
                    shown = set(dt.threads_of(proc))
                    chk.check(stable <= shown, "run %d: stable threads missing: %s" % (i, sorted(stable - shown)))
                    v = proc.get("vanished")
                    chk.check(isinstance(v, int) and v >= 0, "run %d: vanished %r" % (i, v))
                    for tid, ent in dt.threads_of(proc).items():
                        t = ent[0][0]
                        if tid not in stable and t.get("error"):
                            chk.check(isinstance(t["error"], str), "run %d: error %r is a string" % (i, t["error"]))
        fx.check_unharmed(chk, "after churn runs")

    # The whole process exits during the capture: an answer or a clean error, no crash.
    rnd = random.Random(os.environ.get("DIAG_TEST_SEED"))
    for i in range(PROCESS_EXITS):
        with dt.Fixture(["--roles", "idle,sleep", "--idle", 50]) as fx:
            p = subprocess.Popen([dt.need_path("diag_stack"), "-J", str(fx.pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, env=dt.tool_env(),
                                 start_new_session=True, cwd="/")
            try:
                time.sleep(rnd.uniform(0, 0.15))
                dt.kill_group(fx.proc)
                fx.proc.wait()
                err = p.communicate(timeout=30)[1].decode(errors="replace")
            except subprocess.TimeoutExpired:
                err = "[timed out]"
            finally:
                if p.poll() is None:
                    dt.kill_group(p)
                p.wait()
            chk.check(p.returncode in (0, 1, 4),
                      "process exit %d: diag-stack exit %r, want 0, 1 or 4\n%s" % (i, p.returncode, err[-3000:]))
            chk.check("Sanitizer" not in err and "runtime error" not in err,
                      "process exit %d: sanitizer report:\n%s" % (i, err[-3000:]))
    chk.finish()


if __name__ == "__main__":
    main()
