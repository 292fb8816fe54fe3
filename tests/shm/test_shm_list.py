#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""shmdump with no argument and with pid:PID, against real segments held by real
processes: SysV (a writer and a reader process attached, and one nobody is
attached to), POSIX, memfd and anonymous shared mappings, and a POSIX message
queue. Oracles: /proc/sysvipc/shm, ipcs -m, os.stat of /dev/shm, /proc/PID/maps
of every process, the queue's own file in the mqueue file system. The listing
must not change the kernel's record of the segments (lpid, atime)."""
import ctypes
import os
import re
import tempfile

import shmtest as st
from shmtest import dt

chk = dt.Checker("shm-list")


def list_json(what):
    r = st.shmdump("-J")
    chk.check(r.rc in (0, 4), "%s: exit status %s\n%s" % (what, r.rc, r.describe()))
    if r.rc == 4:
        chk.check("not readable" in r.err, "%s: exit 4 without saying why: %r" % (what, r.err))
        if os.geteuid() == 0:
            chk.check("as root" not in r.err.replace("even to root", ""), "%s: tells root to run as root: %r" % (what, r.err))
    return st.doc_of(chk, r, what)


def seg(doc, name):
    for s in doc.get("segments", []):
        if s.get("name") == name:
            return s
    return None


def mappers(pred):
    """{pid} of every process with a shared mapping for which pred(inode, path) holds."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            for (_, _, _, ino, path) in st.maps_shared(int(d)):
                if pred(ino, path):
                    out.add(int(d))
    return out


def check_sysv(doc, w, nobody=False, before=None):
    """before: the kernel's record taken before the listing. A segment nobody maps
    is attached by the listing itself to read its format: its atime and dtime are
    the listing's own by the time the test reads them, the document has those the
    kernel's table held when shmdump read it."""
    f = w.fact("SEGMENT")
    key = int(f["key"], 16)
    name = "key:0x%08x" % key
    s = seg(doc, name)
    if not chk.check(s is not None, "%s: not listed" % name):
        return
    k = st.sysv_by_key(key)
    chk.eq(s.get("kind"), "sysv", "%s: kind" % name)
    chk.eq(s.get("id"), k["shmid"], "%s: id vs /proc/sysvipc/shm" % name)
    chk.eq(s.get("id"), f["id"], "%s: id vs the writer" % name)
    for field in ("size", "cpid", "nattch", "uid", "perms", "atime", "dtime", "ctime"):
        ref = before if before and field in ("atime", "dtime") else k
        chk.eq(s.get(field), ref[field], "%s: %s vs /proc/sysvipc/shm" % (name, field))
    ip = st.ipcs_m().get(f["id"])
    if chk.check(ip is not None, "%s: not in ipcs -m" % name):
        chk.eq((ip[0], ip[2], ip[3], ip[4]), (key, s.get("perms"), s.get("size"), s.get("nattch")),
               "%s: key, perms, bytes, nattch vs ipcs -m" % name)
    att = {a.get("pid") for a in s.get("attached", [])}
    want = mappers(lambda ino, path: ino == f["id"] and path.startswith("/SYSV%08x" % key))
    chk.eq(att, want, "%s: attached pids vs every /proc/PID/maps" % name)
    if nobody:
        chk.eq(att, set(), "%s: attached" % name)
        chk.eq(s.get("nattch"), 0, "%s: nattch" % name)
    else:
        chk.eq(att, {w.role_pid("writer"), w.role_pid("reader")}, "%s: attached vs the writer's processes" % name)
        chk.eq(len(s.get("attached", [])), s.get("nattch"), "%s: one mapping per attach" % name)
        chk.check(all(a.get("comm") == "shmwriter" for a in s.get("attached", [])), "%s: comm %r" % (name, s.get("attached")))
    chk.eq(s.get("format"), "libatbus", "%s: format" % name)


def private_and_removed():
    """An IPC_PRIVATE segment removed while attached: named by id, status dest."""
    with st.Writer("--sysv", "0", "--rmid", "--case", "partial") as w:
        shmid = w.fact("SEGMENT")["id"]
        k = [x for x in st.sysvipc() if x["shmid"] == shmid]
        chk.check(k and k[0]["perms"] & 0o1000, "the kernel does not show the segment as removed: %s" % k)
        doc = list_json("list with a private removed segment")
        s = seg(doc, "id:%d" % shmid)
        if chk.check(s is not None, "id:%d not listed by id" % shmid):
            chk.eq((s.get("key"), s.get("status"), s.get("perms")), ("0x00000000", "dest", 0o600), "private segment")
            chk.eq([a.get("pid") for a in s.get("attached", [])], [w.pid], "private segment: attached")
        ip = dt.run(["ipcs", "-m"]).out
        chk.check(re.search(r"^0x00000000 %d .*dest" % shmid, ip, re.M), "ipcs -m does not say dest:\n%s" % ip)
        r = st.shmdump("-o", "NAME,STATUS", "-r", "-n")
        chk.check("id:%d dest" % shmid in r.out.splitlines(), "-o NAME,STATUS: %s" % r.out)
        r = st.shmdump("-J", "--check", "id:%d" % shmid)
        chk.eq(r.rc, 0, "decoding a removed segment by id\n%s" % r.describe())
        chk.eq(st.decoded(st.doc_of(chk, r, "id:%d" % shmid)).get("check", {}).get("good_blocks"),
               w.fact("BLOCKS")["count"], "removed segment: good blocks")


def namespaces_work(argv, what):
    """Whether this machine lets us make the namespace a case needs: not in a chroot,
    nor in a container without the privilege. Where it cannot, that case is skipped
    and the reason said; where it can, the case runs and its checks count."""
    r = dt.run(argv, timeout=30)
    if r.rc != 0:
        dt.log("SKIP part: %s: `%s` fails here (exit %s: %s): no such namespace can be made (a chroot, or a "
               "container without the privilege)" % (what, r.cmd(), r.rc, (r.err.strip() or "no message")[:200]))
        return False
    return True


class ForeignWriter(st.Writer):
    """shmwriter in an IPC namespace of its own: its SysV segment is not in ours."""

    def _argv(self):
        return ["unshare", "--ipc"] + super()._argv()


def other_namespace():
    if os.geteuid() != 0 or not dt.which("unshare"):
        dt.log("SKIP part: a writer in another IPC namespace needs root and unshare")
        return
    if not namespaces_work(["unshare", "--ipc", "true"], "a writer in another IPC namespace"):
        return
    key = st.unique_key(5)
    with ForeignWriter("--sysv", hex(key), "--case", "partial", "--msgs", 60) as w:
        pid, shmid = w.role_pid("writer"), w.fact("SEGMENT")["id"]
        ns = int(os.readlink("/proc/%d/ns/ipc" % pid).split("[")[1].rstrip("]"))
        chk.check(ns != int(os.readlink("/proc/self/ns/ipc").split("[")[1].rstrip("]")), "unshare made no namespace")
        chk.check(st.sysv_by_key(key) is None, "the other namespace's segment is in our /proc/sysvipc/shm")
        doc = list_json("list with another IPC namespace")
        name = "ipc:%d:id:%d" % (ns, shmid)
        s = seg(doc, name)
        if chk.check(s is not None, "%s not listed: %s" % (name, [x.get("name") for x in doc.get("segments", [])])):
            chk.eq((s.get("kind"), s.get("key"), s.get("id"), s.get("ipc_ns"), s.get("cpid"), s.get("nattch")),
                   ("sysv", "0x%08x" % key, shmid, ns, None, None), "%s: fields" % name)
            chk.eq([a.get("pid") for a in s.get("attached", [])], [pid], "%s: attached" % name)
            chk.eq(s.get("format"), "libatbus", "%s: format, read through the process" % name)
        wrong = [x.get("name") for x in doc.get("segments", []) if x is not s and
                 pid in [a.get("pid") for a in x.get("attached", [])]]
        chk.eq(wrong, [], "segments of our namespace said to be mapped by the other namespace's writer")
        r = st.shmdump("-J", "--check", name)
        chk.eq(r.rc, 0, "%s: decode exit status\n%s" % (name, r.describe()))
        chk.eq((st.decoded(st.doc_of(chk, r, name)).get("check") or {}).get("good_blocks"), w.fact("BLOCKS")["count"],
               "%s: good blocks" % name)


class MountNsWriter(st.Writer):
    """shmwriter in a mount namespace with a /dev/shm of its own."""

    def _argv(self):
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs none /dev/shm && exec "$0" "$@"'] + super()._argv()


def other_dev_shm():
    """A POSIX segment in another /dev/shm, and a decoy of the same name in ours."""
    if os.geteuid() != 0 or not dt.which("unshare"):
        dt.log("SKIP part: a writer with another /dev/shm needs root and unshare")
        return
    if not namespaces_work(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs none /dev/shm"], "a writer with another /dev/shm"):
        return
    name = st.unique_name(6)
    decoy = "/dev/shm" + name
    st._made.append(("posix", name))
    with open(decoy, "wb") as f:
        f.write(b"not the channel" * 100)
    with MountNsWriter("--posix", name, "--case", "partial", "--msgs", 70) as w:
        pid = w.role_pid("writer")
        doc = list_json("list with another /dev/shm")
        ours = seg(doc, decoy)
        chk.check(ours is not None and ours.get("attached") == [] and ours.get("format") is None,
                  "our decoy %s: %s" % (decoy, ours))
        theirs = [x for x in doc.get("segments", []) if pid in [a.get("pid") for a in x.get("attached", [])]]
        if chk.eq(len(theirs), 1, "the other /dev/shm's segment listed once"):
            chk.eq((theirs[0].get("kind"), theirs[0].get("name"), theirs[0].get("format")),
                   ("posix", "%s (pid %d's /dev/shm)" % (decoy, pid), "libatbus"), "the other /dev/shm's segment")
        r = st.shmdump("-J", "--check", "pid:%d" % pid)
        d = st.decoded(st.doc_of(chk, r, "pid:%d" % pid))
        chk.check(r.rc == 0 and d.get("segment", {}).get("pid") == pid, "pid:%d read through the process: %s" % (pid, r.describe()))
        chk.eq((d.get("check") or {}).get("good_blocks"), w.fact("BLOCKS")["count"], "pid:%d: good blocks, not the decoy" % pid)


def check_mqueue(tmp):
    mq = None
    for l in (dt.read_file("/proc/self/mounts") or "").splitlines():
        w = l.split()
        if len(w) > 2 and w[2] == "mqueue":
            mq = w[1]
            break
    mounted = None
    if mq is None:
        if os.geteuid() != 0:
            dt.log("SKIP part: no mqueue file system mounted, and mounting one needs root")
            return
        mounted = os.path.join(tmp, "mq")
        os.mkdir(mounted)
        r = dt.run(["mount", "-t", "mqueue", "none", mounted])
        if r.rc != 0:
            dt.log("SKIP part: cannot mount an mqueue file system: %s" % r.err.strip())
            return
        mq = mounted
    libc = ctypes.CDLL(None, use_errno=True)
    name = ("/shmdump-test-mq-%d" % os.getpid()).encode()
    try:
        libc.mq_open.restype = ctypes.c_int
        fd = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None)
        if fd < 0:
            dt.log("SKIP part: mq_open failed, errno %d" % ctypes.get_errno())
            return
        msg = b"twenty-three bytes long"
        chk.eq(libc.mq_send(fd, msg, len(msg), 0), 0, "mq_send")
        doc = list_json("list with a message queue")
        qs = [q for q in doc.get("mqueues", []) if q.get("name") == name.decode()]
        if chk.eq(len(qs), 1, "queue %s listed" % name.decode()):
            text = dt.read_file(os.path.join(mq, name.decode()[1:])) or ""
            chk.eq(qs[0].get("qsize"), int(text.split("QSIZE:")[1].split()[0]), "qsize vs the queue's file")
            chk.eq(qs[0].get("qsize"), len(msg), "qsize vs what was sent")
            chk.eq(qs[0].get("notify_pid"), 0, "notify_pid")
            chk.eq(doc.get("mqueue_dir"), mq, "mqueue_dir")
        r = st.shmdump()
        chk.check("POSIX message queues" in r.out and name.decode() in r.out, "text list has no queue:\n%s" % r.out)
        libc.close(fd)
    finally:
        libc.mq_unlink(name)
        if mounted:
            dt.run(["umount", mounted])


def main():
    st.setup(__doc__)
    tmp = tempfile.mkdtemp(prefix="shmdump-test-")
    try:
        with st.Writer("--sysv", hex(st.unique_key(0)), "--case", "wrapped", "--reader-proc") as a, \
             st.Writer("--posix", st.unique_name(1), "--case", "partial") as b, \
             st.Writer("--memfd", "shmdump-test-ring", "--case", "partial", "--msgs", 50) as c, \
             st.Writer("--anon", "--case", "full", "--size", 262144) as d:
            e = st.writer_exit("--sysv", hex(st.unique_key(2)), "--case", "partial")
            before = st.sysv_by_key(int(a.fact("SEGMENT")["key"], 16))
            e_before = st.sysv_by_key(int(e.fact("SEGMENT")["key"], 16))
            doc = list_json("list")
            after = st.sysv_by_key(int(a.fact("SEGMENT")["key"], 16))
            chk.eq((after["lpid"], after["atime"], after["nattch"]), (before["lpid"], before["atime"], before["nattch"]),
                   "the listing changed the kernel's record of an attached segment")
            check_sysv(doc, a)
            check_sysv(doc, e, nobody=True, before=e_before)

            name = "/dev/shm" + b.fact("SEGMENT")["name"]
            s = seg(doc, name)
            if chk.check(s is not None, "%s: not listed" % name):
                stt = os.stat(name)
                chk.eq((s.get("kind"), s.get("size"), s.get("inode"), s.get("uid"), s.get("perms")),
                       ("posix", stt.st_size, stt.st_ino, stt.st_uid, stt.st_mode & 0o7777), "%s vs os.stat" % name)
                chk.eq({x.get("pid") for x in s.get("attached", [])},
                       mappers(lambda ino, path: ino == stt.st_ino and path == name), "%s: attached vs maps" % name)
                chk.eq(s.get("format"), "libatbus", "%s: format" % name)

            for fx, kind, label in ((c, "memfd", "memfd:shmdump-test-ring"), (d, "anon", None)):
                segs = [x for x in doc.get("segments", []) if x.get("kind") == kind and
                        fx.pid in [a_.get("pid") for a_ in x.get("attached", [])]]
                if chk.eq(len(segs), 1, "%s segment of pid %d listed" % (kind, fx.pid)):
                    x = segs[0]
                    if label:
                        chk.eq(x.get("name"), label, "memfd name")
                    chk.eq(x.get("size"), fx.fact("SEGMENT")["size"], "%s size" % kind)
                    chk.eq(x.get("format"), "libatbus", "%s format (read through the process)" % kind)
                    maps = [m for m in st.maps_shared(fx.pid) if m[0] == int(fx.fact("SEGMENT")["addr"], 16)]
                    chk.eq([(a_.get("start"), a_.get("perms")) for a_ in x.get("attached", [])],
                           [(hex(m[0]), m[2]) for m in maps], "%s: mapping address and perms vs maps" % kind)
                    # and by the name the list gives it
                    r = st.shmdump("-J", "--check", x.get("name"))
                    dd = st.decoded(st.doc_of(chk, r, x.get("name")))
                    chk.check(r.rc == 0 and dd.get("segment", {}).get("pid") == fx.pid,
                              "%s by name: %s" % (x.get("name"), r.describe()))
                    chk.eq((dd.get("check") or {}).get("good_blocks"), fx.fact("BLOCKS")["count"],
                           "%s by name: good blocks" % x.get("name"))
                # pid:PID decodes what the process maps, through its memory
                r = st.shmdump("-J", "--check", "pid:%d" % fx.pid)
                chk.eq(r.rc, 0, "pid:%d (%s): exit status\n%s" % (fx.pid, kind, r.describe()))
                dd = st.decoded(st.doc_of(chk, r, "pid:%d" % fx.pid))
                chk.eq((dd.get("channel") or {}).get("summary", {}).get("used_nodes"), fx.fact("CHANNEL")["used"],
                       "pid:%d (%s): used nodes" % (fx.pid, kind))
                chk.eq((dd.get("check") or {}).get("good_blocks"), fx.fact("BLOCKS")["count"],
                       "pid:%d (%s): good blocks" % (fx.pid, kind))

            # pid:PID of the SysV reader: its one segment, by key
            r = st.shmdump("-J", "pid:%d" % a.role_pid("reader"))
            names = [x.get("segment", {}).get("name") for x in st.doc_of(chk, r, "pid:reader").get("decoded", [])]
            chk.eq(names, ["key:%s" % a.fact("SEGMENT")["key"]], "pid:reader: segments")

            # the table form
            r = st.shmdump("-o", "KIND,NAME,ID,NATTCH", "-r", "-n")
            want = "sysv key:%s %d %d" % (a.fact("SEGMENT")["key"], a.fact("SEGMENT")["id"], 2)
            chk.check(want in r.out.splitlines(), "-o -r -n: no line %r in\n%s" % (want, r.out))
            r = st.shmdump("-o", "NAME,ATTACHED", "-J")
            rows = [x for x in (r.json(chk) or {}).get("segments", []) if x.get("name") == "key:%s" % a.fact("SEGMENT")["key"]]
            if chk.eq(len(rows), 1, "-o -J: row of the SysV segment"):
                chk.eq(len(rows[0].get("attached") or []), 2, "-o ATTACHED -J: one array element per mapping")
            r = st.shmdump("-H")
            chk.check(r.rc == 0 and "ATTACHED" in r.out and "FORMAT" in r.out, "-H:\n" + r.describe())
            r = st.shmdump("-H", "-J")
            chk.check(r.rc == 0 and "NAME" in [c_.get("id") for c_ in (r.json(chk) or {}).get("columns", [])], "-H -J")
            r = st.shmdump("memfd:no-such-ring-here")
            chk.check(r.rc == 1 and "no process maps memfd:no-such-ring-here" in r.err, "memfd: not there: " + r.describe())
            r = st.shmdump("-o", "NOPE")
            chk.check(r.rc == 2 and "unknown column" in r.err, "-o NOPE: " + r.describe())

            private_and_removed()
            other_namespace()
            other_dev_shm()
            check_mqueue(tmp)
    finally:
        st.remove_everything()
        dt.shutil.rmtree(tmp, ignore_errors=True)
    chk.finish()


main()
