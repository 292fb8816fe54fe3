# SPDX-License-Identifier: GPL-2.0-or-later
"""bash completion: every command is registered; options come from the tool's --help,
pids (with their comm) for pid operands, columns after -o from -H, key:/id: names and
/dev/shm files for shmdump, the verbs for diag (and then the verb's tool)."""
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402

COMMANDS = ["diag", "diag-stack", "diag-fds", "diag-locks", "diag-chain", "diag-core", "diag-sample", "diag-snap",
            "diag-record", "diag-top", "shmdump"]
TOOLS = {"diag_stack": "diag-stack", "diag_fds": "diag-fds", "diag_locks": "diag-locks",
         "diag_chain": "diag-chain", "diag_core": "diag-core", "diag_sample": "diag-sample", "diag_snap": "diag-snap",
         "diag_record": "diag-record", "diag_top": "diag-top", "shmdump": "shmdump"}

_RUN = r'''
source "$0" || exit 99
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
if [[ -n ${DIAGTEST_LINE-} ]]; then
        COMP_LINE=$DIAGTEST_LINE
        COMP_POINT=${#COMP_LINE}
fi
case ${COMP_WORDS[0]##*/} in
diag) _diag ;;
diag-record) _diag_record ;;
*) _diagkit ;;
esac
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(script, words, line=None, bash="bash"):
    """COMPREPLY for the command line `words` (the last one being completed), as
    bash would ask it; with line, COMP_LINE is that text (words split at ':' as
    bash splits them, the line as typed). Returns (candidates, Result)."""
    env = dt.tool_env()
    env.pop("DIAGTEST_LINE", None)
    if line is not None:
        env["DIAGTEST_LINE"] = line
    r = dt.run([bash, "-c", _RUN, script] + list(words), env=env)
    return [c for c in r.out.split("\n") if c], r


def registered(script, bash="bash"):
    """Commands the script registers a completion function for: {name: function}."""
    r = dt.run([bash, "-c", 'source "$0" && complete -p', script])
    out = {}
    for line in r.out.splitlines():
        f = line.split()
        if "-F" in f:
            out[f[-1]] = f[f.index("-F") + 1]
    return out


def columns(tool):
    r = dt.run([tool, "-H"])
    return [l.split()[0] for l in r.out.splitlines() if l.strip()]


def check_tools(chk, script, tools, what=""):
    """Options of every tool, from its --help."""
    for name, path in tools.items():
        got, r = complete(script, [path, "--"])
        for opt in ("--help", "--version"):
            chk.check(opt in got, "%s%s --<TAB> offers %s: %s\n%s" % (what, name, opt, got, r.err))
        helptext = dt.run([path, "--help"]).out
        if "--json" in helptext:
            got, r = complete(script, [path, "--j"])
            chk.check("--json" in got and all(c.startswith("--j") for c in got),
                      "%s%s --j<TAB> offers --json (and only --j...): %s" % (what, name, got))


def check_pid(chk, script, stack, fx):
    comm = (dt.read_file("/proc/%d/comm" % fx.pid) or "").strip()
    got, r = complete(script, [stack, ""])
    chk.check("%d %s" % (fx.pid, comm) in got,
              "diag-stack <TAB> offers the fixture's pid with its comm (%d %s): %d candidates, first %s\n%s"
              % (fx.pid, comm, len(got), got[:5], r.err))
    got, r = complete(script, [stack, str(fx.pid)])
    chk.check(str(fx.pid) in got or "%d %s" % (fx.pid, comm) in got,
              "diag-stack %d<TAB> offers %d: %s" % (fx.pid, fx.pid, got[:5]))
    chk.check(all(c.split()[0].startswith(str(fx.pid)) for c in got),
              "diag-stack %d<TAB> offers only pids starting so: %s" % (fx.pid, got[:5]))


def check_shm(chk, script, shmdump, diag):
    key = 0x5c000000 | (os.getpid() & 0xffffff)
    posix = "/dev/shm/diagtest-completion-%d" % os.getpid()
    seg = dt.SysvSegment(key)
    with seg as shmid:
        if not chk.check(shmid is not None, "a SysV segment for shmdump's names: %s" % seg.error):
            return
        try:
            with open(posix, "wb") as f:
                f.write(bytes(4096))
            want = ["key:%#x" % key, "id:%d" % shmid, posix]
            got, r = complete(script, [shmdump, ""])
            for w in want:
                chk.check(w in got, "shmdump <TAB> offers %s: %s\n%s" % (w, got, r.err))
            # bash splits key:0x5c... at the colon: the rest of the word is completed
            typed = "key:%#x" % (key >> 8)
            got, r = complete(script, [shmdump, "key", ":", typed[4:]], line="%s %s" % (shmdump, typed))
            chk.eq(got, ["%#x" % key], "shmdump %s<TAB> (after the colon)" % typed)
            got, r = complete(script, [shmdump, "id", ":", ""], line="%s id:" % shmdump)
            chk.check(str(shmid) in got, "shmdump id:<TAB> offers %d: %s" % (shmid, got))
            got, r = complete(script, [diag, "shm", ""])
            chk.check(all(w in got for w in want), "diag shm <TAB> offers %s: %s" % (want, got))
        finally:
            try:
                os.unlink(posix)
            except OSError:
                pass

def check_all(chk, script, tools, diag, fx=None, what=""):
    """Everything the completion promises, for the tools at these paths."""
    check_tools(chk, script, tools, what)
    fds = tools["diag-fds"]
    cols = columns(fds)
    got, r = complete(script, [fds, "-o", ""])
    chk.check(cols and sorted(got) == sorted(cols),
              "%sdiag-fds -o <TAB> offers the columns of -H %s: %s\n%s" % (what, cols, got, r.err))
    if cols:
        got, r = complete(script, [fds, "-o", "%s,%s" % (cols[0], cols[1][:1])])
        chk.check("%s,%s" % (cols[0], cols[1]) in got,
                  "%sdiag-fds -o %s,%s<TAB> offers %s,%s: %s" % (what, cols[0], cols[1][:1], cols[0], cols[1], got))
    got, r = complete(script, [tools["diag-core"], "-o", "/"])
    chk.check(got and not set(got) & set(cols) and all(c.startswith("/") for c in got),
              "%sdiag-core -o /<TAB> offers files (its -o is a file name): %s" % (what, got[:5]))
    got, r = complete(script, [diag, ""])
    for verb in ("stack", "fds", "locks", "chain", "core", "shm", "demo"):
        chk.check(verb in got, "%sdiag <TAB> offers %s: %s\n%s" % (what, verb, got, r.err))
    got, r = complete(script, [diag, "stack", "--j"])
    chk.check("--json" in got and all(c.startswith("--j") for c in got),
              "%sdiag stack --j<TAB> offers --json: %s" % (what, got))
    if fx:
        check_pid(chk, script, tools["diag-stack"], fx)
        check_shm(chk, script, tools["shmdump"], diag)


def check_record(chk, script, rec, diag):
    """diag-record: "show" first, then the recorder's options or show's, as --help says."""
    got, r = complete(script, [rec, ""])
    chk.check("show" in got, "diag-record <TAB> offers show: %s %s" % (got, r.err))
    got, r = complete(script, [rec, "--inter"])
    chk.eq(got, ["--interval"], "diag-record --inter<TAB> (%s)" % r.err)
    got, r = complete(script, [rec, "show", "--a"])
    chk.eq(got, ["--at"], "diag-record show --a<TAB> (%s)" % r.err)
    got, r = complete(script, [rec, "show", "--fo"])
    chk.eq(got, ["--follow"], "diag-record show --fo<TAB> (%s)" % r.err)
    got, r = complete(script, [diag, "record", "show", "--svg", "/"])
    chk.check(got and all(g.startswith("/") for g in got), "diag record show --svg /<TAB> completes files: %s" % got)


def check_top(chk, script, top, diag):
    """diag-top: options from --help, pids after -p, files after -r, no operand."""
    got, r = complete(script, [top, "--del"])
    chk.eq(got, ["--delay"], "diag-top --del<TAB> (%s)" % r.err)
    got, r = complete(script, [top, "-p", str(os.getpid())[:-1]])
    chk.check(any(g.split()[0] == str(os.getpid()) for g in got if g),
              "diag-top -p <TAB> offers pids, this one among them: %s" % got[:10])
    got, r = complete(script, [diag, "top", "-r", "/"])
    chk.check(got and all(g.startswith("/") for g in got), "diag top -r /<TAB> completes files: %s" % got)
    got, r = complete(script, [top, ""])
    chk.check(got and all(g.startswith("-") for g in got), "diag-top <TAB> offers options only: %s" % got[:10])


def main():
    dt.setup(__doc__, "diag_fds", "diag_locks", "diag_chain", "diag_core", "diag_sample", "diag_snap", "diag_record",
             "diag_top", "shmdump", "completion")
    bash = dt.need_program("bash")
    script = dt.paths.completion
    if not script or not os.path.exists(script):
        dt.harness_error("--completion not given or missing (%r)" % script)
    tools = {name: dt.need_path(key) for key, name in TOOLS.items()}
    diag = dt.need_path("diag")
    chk = dt.Checker("completion")

    reg = registered(script, bash)
    for c in COMMANDS:
        chk.check(c in reg, "the script registers a completion for %s: %s" % (c, reg))
    r = subprocess.run([bash, "-n", script], capture_output=True, text=True)
    chk.eq(r.returncode, 0, "bash -n %s: %s" % (script, r.stderr))

    check_record(chk, script, tools["diag-record"], diag)
    check_top(chk, script, tools["diag-top"], diag)
    with dt.Fixture(["--roles", "sleep,idle", "--idle", 1]) as fx:
        check_all(chk, script, tools, diag, fx)
    chk.finish()


if __name__ == "__main__":
    main()
