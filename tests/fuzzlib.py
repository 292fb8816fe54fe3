# SPDX-License-Identifier: GPL-2.0-or-later
"""What the fuzz drivers (tests/shm/fuzz.py, tests/record/fuzz.py) share: running a
replay target on a list of inputs, and building a libFuzzer target with clang and
running it for a while from a seed corpus."""
import os
import subprocess


def log(msg):
    print(msg, flush=True)


def replay(exe, inputs):
    """Run the meson-built replay target once on every input; 0 or 1."""
    r = subprocess.run([exe] + inputs, capture_output=True, text=True)
    log("%s: %s" % (os.path.basename(exe), r.stdout.strip()))
    if r.returncode != 0:
        log(r.stderr[-4000:])
        log("FAIL: %s exit %d" % (exe, r.returncode))
        return 1
    return 0


def libfuzzer(clang, name, sources, includes, ldflags, workdir, seeds, seconds, max_len):
    """Build name from sources with -fsanitize=fuzzer,address,undefined and run it for
    seconds from seeds (a directory); 0 no crash, 1 a crash or a build failure (the
    crashing input kept in workdir), 77 no clang or no libFuzzer runtime."""
    if not clang:
        log("SKIP: clang is not installed (scripts/install-deps installs it): no libFuzzer run")
        return 77
    exe = os.path.join(workdir, name)
    cmd = [clang, "-g", "-O1", "-std=gnu11", "-D_GNU_SOURCE", "-fsanitize=fuzzer,address,undefined",
           "-fno-sanitize-recover=undefined"] + ["-I" + i for i in includes] + sources + ldflags + ["-o", exe]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        if "fuzzer" in r.stderr and ("unsupported" in r.stderr or "cannot find" in r.stderr):
            log("SKIP: %s has no libFuzzer runtime: %s" % (clang, r.stderr.strip()[-300:]))
            return 77
        log("FAIL: building %s:\n%s" % (name, r.stderr[-3000:]))
        return 1
    corpus = os.path.join(workdir, "corpus-" + name)
    os.makedirs(corpus, exist_ok=True)
    art = os.path.join(workdir, "crash-%s-" % name)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    r = subprocess.run([exe, "-max_total_time=%d" % seconds, "-timeout=10", "-rss_limit_mb=2048",
                        "-max_len=%d" % max_len, "-artifact_prefix=" + art, "-print_final_stats=1", corpus, seeds],
                       capture_output=True, text=True, env=env, cwd=workdir)
    stats = [l for l in r.stderr.splitlines() if l.startswith("stat::number_of_executed_units") or "DONE" in l]
    log("%s: %ds, exit %d, %s" % (name, seconds, r.returncode, "; ".join(stats)))
    if r.returncode != 0:
        log(r.stderr[-6000:])
        log("FAIL: %s found a crash; input kept as %s*" % (name, art))
        return 1
    return 0
