# SPDX-License-Identifier: GPL-2.0-or-later
"""diag-top -r: a recording the test makes with diag-record (-i 1s, about 9 s, with
--snap-dir; SIGUSR1 to the recorder midway: a trigger event) while a process grows
its RSS by 8 MiB every second; then diag-top -r DIR --at TIME, filtered to that
process, at 200x50. --at lands on the last interval at or before TIME; ] and [ step
one interval: each time the header shows the interval's time (HH:MM:SS, local) and
the process's RSS equals what `diag-record show --dump DIR` recorded for it then
(within the display's rounding: a neighbouring interval is 8 MiB away); o jumps
to the trigger's event, O back."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagtest as dt  # noqa: E402
import rectest as rt  # noqa: E402
import toptest as tt  # noqa: E402

STEP = 8 << 20
GROWER = r"""
import sys, time
blocks = []
print("READY", flush=True)
for i in range(int(sys.argv[1])):
    b = bytearray(%d)
    for off in range(0, len(b), 4096):
        b[off] = 1
    blocks.append(b)
    time.sleep(1)
time.sleep(3600)
""" % STEP


def hms(t_ns):
    return time.strftime("%H:%M:%S", time.localtime(t_ns // 10**9))


def main():
    tt.setup(__doc__, "diag_record", "diag_snap")
    dt.set_subreaper()
    chk = dt.Checker("top-replay")
    tmp = tempfile.mkdtemp(prefix="diag-top-replay.", dir="/tmp")
    try:
        run(chk, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        dt.reap_orphans()
    chk.finish()


def record(chk, tmp):
    """(grower pid, its marker, intervals)."""
    marker = "topgrow%d" % os.getpid()
    script = os.path.join(tmp, marker + ".py")
    with open(script, "w") as f:
        f.write(GROWER)
    rec = rt.Recorder(os.path.join(tmp, "rec"), "-i", "1s", "--flush", "1s", "--snap-dir", os.path.join(tmp, "snaps"),
                      "--cooldown", "1s")
    grower = None
    try:
        rec.start()
        if not chk.check(rec.wait_started(), "the recorder started\n%s" % rec.output()):
            return None, None, []
        grower = subprocess.Popen([sys.executable, script, "14"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  start_new_session=True, preexec_fn=dt._child_setup)
        grower.stdout.readline()
        time.sleep(4.2)
        rec.signal(signal.SIGUSR1)
        time.sleep(5.2)
        chk.eq(rec.stop(), 0, "the recorder's exit status\n%s" % rec.output())
        pid = grower.pid
    finally:
        rec.close()
        if grower:
            dt.kill_group(grower)
            grower.wait()
    r, ivs = rt.dump(os.path.join(tmp, "rec"))
    chk.check(r.rc == 0 and len(ivs) >= 8, "show --dump: %d intervals\n%s" % (len(ivs), r.describe()))
    return pid, marker, ivs


def rss_of(iv, pid):
    for row in iv.get("proc") or []:
        if row.get("pid") == pid:
            return row.get("rss")
    return None


def check_at(chk, s, what, iv, pid):
    """The screen shows interval iv: its time in the header, pid's recorded RSS."""
    want_t, want_rss = hms(iv["time_ns"]), rss_of(iv, pid)

    def there(lines):
        r = tt.row_of(lines, pid)
        got = tt.parse_bytes(r.get("RSS")) if r else None
        return want_t in tt.header_text(lines) and got is not None and close(got, want_rss)
    lines = s.wait_until(there, 5) or s.capture()
    chk.check(want_t in tt.header_text(lines), "%s: the header shows %s\n%s" % (what, want_t, s.describe()))
    r = tt.row_of(lines, pid) or {}
    got = tt.parse_bytes(r.get("RSS"))
    chk.check(got is not None and want_rss is not None and close(got, want_rss),
              "%s: RSS shown %r, recorded %r\n%s" % (what, r.get("RSS"), want_rss, s.describe()))


def close(got, want):
    return want is not None and abs(got - want) <= max(0.06 * 2**20, 0.01 * want)


def run(chk, tmp):
    pid, marker, ivs = record(chk, tmp)
    ivs = [iv for iv in ivs if rss_of(iv, pid) is not None]
    if not chk.check(len(ivs) >= 6, "the grower is in %d intervals" % len(ivs)):
        return
    # an instant in whole seconds that lands on interval i (at or after it, before the next)
    pick = None
    for i in range(1, len(ivs) - 2):
        at = -(-ivs[i]["time_ns"] // 10**9)
        if at * 10**9 < ivs[i + 1]["time_ns"]:
            pick = i
            break
    if pick is None:
        dt.harness_error("no interval to land on with --at @EPOCH")
    rec_dir = os.path.join(tmp, "rec")
    timings = os.path.join(tmp, "timings")
    with tt.Screen(["-r", rec_dir, "--at", "@%d" % at, "--timings", timings], width=200, height=50) as s:
        if not chk.check(s.wait_until(lambda l: tt.header_line(l)[0] is not None, 15),
                         "-r: the column line appears\n" + s.describe()):
            return
        s.text("/")
        s.text(marker)
        s.keys("Enter")
        check_at(chk, s, "--at @%d" % at, ivs[pick], pid)
        s.keys("]")
        check_at(chk, s, "] from --at", ivs[pick + 1], pid)
        s.keys("]")
        check_at(chk, s, "] again", ivs[pick + 2], pid)
        s.keys("[")
        check_at(chk, s, "[", ivs[pick + 1], pid)
        s.keys("[")
        s.keys("[")
        check_at(chk, s, "[ twice", ivs[pick - 1], pid)
        trig = [e for e in rt.events(ivs) if e.get("kind") == "trigger"]
        if chk.check(trig, "the recording has the SIGUSR1 trigger's event: %s" % rt.events(ivs)):
            s.keys("Home")
            s.keys("o")
            t = trig[0]
            want = {hms(t["interval_ns"])} | ({hms(t["time_ns"])} if t.get("time_ns") else set())
            m = s.wait_until(lambda l: any(w in tt.header_text(l) for w in want), 5)
            chk.check(m, "o: jumps to the trigger at %s\n%s" % (sorted(want), s.describe()))
        s.keys("q")
        chk.eq(s.exited(), 0, "diag-top -r: exit status after q")
    _, keys = tt.timings(timings) if os.path.exists(timings) else ([], [])
    chk.check(keys, "--timings: one line per key")


if __name__ == "__main__":
    main()
