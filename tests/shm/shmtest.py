# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the shmdump integration tests (python3 stdlib only), on top of the
shared harness in tests/integration/diagtest.py: the shmwriter fixture, segment
names that do not collide between parallel tests, removal of every segment a test
made (even when it fails), and oracles that do not go through shmdump: the
kernel's /proc/sysvipc/shm, ipcs, /proc/PID/maps, the segment's bytes read with
shmat(2) through ctypes, and a small independent decoder with its own
MurmurHash3."""
import ctypes
import os
import re
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import diagtest as dt  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmdt.argtypes = [ctypes.c_void_p]
IPC_RMID = 0
SHM_RDONLY = 0o10000

_made = []      # ("sysv", key) / ("posix", name) / ("file", path)


def setup(description, *more):
    return dt.setup(description, "shmdump", "shmwriter", *more)


def shmdump(*args, timeout=60, env=None):
    return dt.run([dt.need_path("shmdump")] + [str(a) for a in args], timeout=timeout, env=env)


def unique_key(n):
    """A SysV key of this test process (tests run in parallel)."""
    return 0x5D000000 | ((os.getpid() & 0xffff) << 4) | (n & 0xf)


def unique_name(n):
    return "/shmdump-test-%d-%d" % (os.getpid(), n)


def remove_everything():
    """Remove every segment this test made that is still there."""
    for kind, what in _made:
        if kind == "sysv":
            for s in sysvipc():
                if s["key"] == what:
                    _libc.shmctl(s["shmid"], IPC_RMID, None)
        elif kind == "posix":
            try:
                os.unlink("/dev/shm" + what)
            except OSError:
                pass
        else:
            try:
                os.unlink(what)
            except OSError:
                pass


class Writer(dt.KVFixture):
    """shmwriter with its facts (SEGMENT, CHANNEL, BLOCKS, ANOMALY, ATTACHED)."""

    def __init__(self, *args, ready_timeout=60):
        args = [str(a) for a in args]
        for i, a in enumerate(args[:-1]):
            if a == "--sysv":
                _made.append(("sysv", int(args[i + 1], 0)))
            elif a == "--posix":
                _made.append(("posix", args[i + 1]))
            elif a == "--file":
                _made.append(("file", args[i + 1]))
        # SIGTERM, not SIGKILL, if the test dies: the writer removes its segment then
        super().__init__("shmwriter", args, ready_timeout=ready_timeout, term_timeout=5, pdeathsig=dt.signal.SIGTERM)

    def anomalies(self):
        return sorted((a["kind"], a["node"]) for a in self.facts.get("ANOMALY", []))

    def role_pid(self, role):
        for a in self.facts.get("ATTACHED", []):
            if a["role"] == role:
                return a["pid"]
        return None


def writer_exit(*args):
    """Run shmwriter --exit: the segment stays, nobody attached. Returns its facts."""
    w = Writer(*(list(args) + ["--exit"]))
    with w:
        w.proc.wait(timeout=60)
    return w


# ---------------------------------------------------------------- oracles

def sysvipc():
    """/proc/sysvipc/shm as a list of dicts of ints (perms octal)."""
    text = dt.read_file("/proc/sysvipc/shm") or ""
    lines = text.splitlines()
    if not lines:
        return []
    names = lines[0].split()
    out = []
    for l in lines[1:]:
        w = l.split()
        if len(w) != len(names):
            continue
        d = {n: int(v, 8 if n == "perms" else 10) for n, v in zip(names, w)}
        out.append(d)
    return out


def sysv_by_key(key):
    for s in sysvipc():
        if s["key"] == key or s["key"] & 0xffffffff == key:
            return s
    return None


def ipcs_m():
    """`ipcs -m`: {shmid: (key, owner, perms, bytes, nattch)}."""
    r = dt.run(["ipcs", "-m"])
    out = {}
    for l in r.out.splitlines():
        w = l.split()
        if len(w) >= 6 and w[0].startswith("0x"):
            out[int(w[1])] = (int(w[0], 16), w[2], int(w[3], 8), int(w[4]), int(w[5]))
    return out


def maps_shared(pid):
    """Shared mappings of pid from /proc/PID/maps: [(start, end, perms, inode, path)]."""
    out = []
    for l in (dt.read_file("/proc/%d/maps" % pid) or "").splitlines():
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)", l)
        if m and m.group(3)[3] == "s":
            out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3), int(m.group(4)), m.group(5)))
    return out


def sysv_bytes(shmid, size):
    """The segment's bytes, attached read-only through ctypes (not through shmdump)."""
    addr = _libc.shmat(shmid, None, SHM_RDONLY)
    if addr in (None, ctypes.c_void_p(-1).value):
        dt.harness_error("shmat(%d) failed: errno %d" % (shmid, ctypes.get_errno()))
    try:
        return ctypes.string_at(addr, size)
    finally:
        _libc.shmdt(ctypes.c_void_p(addr))


def murmur3_32(data, seed=0):
    """MurmurHash3 x86_32, written from the algorithm, independent of libdiag's."""
    c1, c2, m = 0xcc9e2d51, 0x1b873593, 0xffffffff
    h = seed
    n = len(data) // 4
    for k, in struct.iter_unpack("<I", data[:n * 4]):
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
        h = ((h << 13) | (h >> 19)) & m
        h = (h * 5 + 0xe6546b64) & m
    tail = data[n * 4:]
    k = 0
    for i, b in enumerate(tail):
        k |= b << (8 * i)
    if tail:
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85ebca6b) & m
    h ^= h >> 13
    h = (h * 0xc2b2ae35) & m
    h ^= h >> 16
    return h


HEADER = struct.Struct("<16sHHH2xQQQQQQI4xQQQQQQQQQ8Q")
HEADER_PACKED = struct.Struct("<16sHHHQQQQQQIQQQQQQQQQ8Q")     # builds with __attribute__((packed))
FIELDS = ("magic version align host node_size bin_power node_count read_cur write_cur first_failed "
          "operation_seq protect_nodes protect_mem send_timeout retry_times receiver area_channel area_head "
          "area_data area_end s0 s1 s2 s3 s4 s5 s6 s7").split()


def decode(buf, packed=False, align=16):
    """Header fields and the live blocks [(index, seq, size, hash_ok)] of a well-formed
    channel, read by a decoder of its own (the layout: libatbus channel_mem.cpp), with
    the header packed or not and node and block heads padded to align."""
    h = dict(zip(FIELDS, (HEADER_PACKED if packed else HEADER).unpack_from(buf, 0)))
    n, ns = h["node_count"], h["node_size"]
    hd, da, end = h["area_head"], h["area_data"], h["area_end"]
    nh, bh = -(-8 // align) * align, -(-16 // align) * align
    i, blocks = h["read_cur"], []
    while i != h["write_cur"]:
        flag, seq = struct.unpack_from("<II", buf, hd + nh * i)
        if flag != 3:
            i = (i + 1) % n
            continue
        size, stored = struct.unpack_from("<QQ", buf, da + ns * i)
        start = da + ns * i + bh
        avail = end - start
        payload = buf[start:start + size] if size <= avail else buf[start:end] + buf[da:da + size - avail]
        blocks.append((i, seq, size, murmur3_32(payload) == stored))
        i = (i + (size + bh + ns - 1) // ns) % n
    h["used"] = (h["write_cur"] + n - h["read_cur"]) % n
    h["blocks"] = blocks
    return h


def doc_of(chk, res, what):
    doc = res.json(chk)
    if doc is not None:
        chk.eq(doc.get("schema"), "shmdump/1", "%s: schema" % what)
    return doc or {}


def decoded(doc, i=0):
    d = (doc or {}).get("decoded") or [{}]
    return d[i] if i < len(d) else {}
