# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-chain on the blocked threads of pysvc.py under Debian's /usr/bin/python3.11:
a thread whose first frame outside libc is in the interpreter says where it is in
Python, "in Qualname (file.py:line)", with the line the fixture itself reports
(its marker comments and sys._current_frames()). Skipped without python3.11."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402


def main():
    dt.setup_chain(__doc__)
    python = dt.need_debian_python()
    chk, mk = dt.Checker("chain-python"), dt.pysvc_markers()
    p, tids = dt.start_pysvc(python)
    try:
        theirs = dt.pysvc_dump(p)
        wait_line = theirs[tids["worker"]][0][2]
        want = {
            "worker": "in Condition.wait (threading.py:%d)" % wait_line,
            "sleeper": "in nap_forever (pysvc.py:%d)" % mk["sleep"],
            "main": "in main (pysvc.py:%d)" % mk["main"],
        }
        for name, text in want.items():
            r = dt.diag_chain(tids[name])
            chk.check(r.rc in (0, 5), "exit status of `%s`: %s\n%s" % (r.cmd(), r.rc, r.err[-2000:]))
            chk.check(re.search(r"[├└]─ " + re.escape(text) + "\n", r.out),
                      "%s thread: `%s` says %r:\n%s" % (name, r.cmd(), text, r.out[:2000]))
    finally:
        dt.kill_group(p)
        p.wait()
    chk.finish()


if __name__ == "__main__":
    main()
