/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/unix_diag.h>

#include "diag/net.h"
#include "diag/util.h"

/* The kernel never builds a dump skb larger than 32 KiB; twice that leaves room, and
 * MSG_TRUNC still catches a kernel that changes its mind. */
#define RECV_BUF_SIZE (64 * 1024)
#define RECV_TIMEOUT_SEC 2

/* Connected inet sockets keyed by (protocol, local, remote), IPv4 stored as
 * v4-mapped IPv6 so a v4 client and the dual-stack v6 socket that accepted it meet. */
#define PEER_TUPLE_SIZE (1 + 16 + 2 + 16 + 2)

struct diag_sock_peer_key {
        uint8_t tuple[PEER_TUPLE_SIZE];
        size_t idx;                     /* into socks */
};

struct sock_vec {
        struct diag_sock *v;
        size_t n, alloc;
};

static void sock_vec_done(struct sock_vec *vec) {
        for (size_t i = 0; i < vec->n; i++)
                free(vec->v[i].path);
        free(vec->v);
        *vec = (struct sock_vec) {};
}

static struct diag_sock *sock_vec_push(struct sock_vec *vec) {
        if (DIAG_GROW(vec->v, vec->alloc, vec->n + 1) < 0)
                return NULL;
        /* diag_grow zeroes new room, but a slot may be reused after a failed parse */
        memset(&vec->v[vec->n], 0, sizeof vec->v[vec->n]);
        return &vec->v[vec->n++];
}

static int open_diag_socket(void) {
        struct timeval tv = { .tv_sec = RECV_TIMEOUT_SEC };
        _cleanup_close_ int fd = -1;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return negative_errno();
        /* A dump that stalls must not hang the tool (DESIGN: every wait has a timeout). */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

static int send_request(int fd, uint32_t seq, void *req, size_t reqlen) {
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        struct nlmsghdr nlh = {
                .nlmsg_len = (uint32_t) NLMSG_LENGTH(reqlen),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                .nlmsg_seq = seq,
        };
        struct iovec iov[2] = {
                { .iov_base = &nlh, .iov_len = NLMSG_HDRLEN },
                { .iov_base = req, .iov_len = reqlen },
        };
        struct msghdr msg = {
                .msg_name = &kernel,
                .msg_namelen = sizeof kernel,
                .msg_iov = iov,
                .msg_iovlen = ELEMENTSOF(iov),
        };
        ssize_t k;

        do
                k = sendmsg(fd, &msg, 0);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return errno == EAGAIN ? -ETIMEDOUT : negative_errno();
        if ((size_t) k != NLMSG_HDRLEN + reqlen)
                return -EIO;
        return 0;
}

/* Walk the netlink attributes in [p, p + len); calls back with the type (flags
 * masked) and the payload, which may be unaligned: callbacks memcpy out of it. */
typedef int (*attr_cb)(struct diag_sock *s, int type, const uint8_t *data, size_t len);

static int parse_attrs(struct diag_sock *s, const uint8_t *p, size_t len, attr_cb cb) {
        while (len >= NLA_HDRLEN) {
                struct nlattr a;
                size_t step;
                int r;

                memcpy(&a, p, sizeof a);
                if (a.nla_len < NLA_HDRLEN || a.nla_len > len)
                        return -EBADMSG;
                r = cb(s, a.nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
                if (r < 0)
                        return r;
                step = NLA_ALIGN(a.nla_len);
                if (step >= len)
                        break;
                p += step;
                len -= step;
        }
        return 0;
}

static void set_inet_addr(struct sockaddr_storage *ss, int family, const __be32 addr[4],
                          __be16 port, uint32_t ifindex) {
        if (family == AF_INET) {
                struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = port };
                memcpy(&sin.sin_addr, addr, sizeof sin.sin_addr);
                memcpy(ss, &sin, sizeof sin);
        } else {
                struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = port };
                memcpy(&sin6.sin6_addr, addr, sizeof sin6.sin6_addr);
                /* only meaningful (and only reported stably) for link-local addresses */
                if (IN6_IS_ADDR_LINKLOCAL(&sin6.sin6_addr))
                        sin6.sin6_scope_id = ifindex;
                memcpy(ss, &sin6, sizeof sin6);
        }
}

static int inet_attr(struct diag_sock *s, int type, const uint8_t *data, size_t len) {
        struct tcp_info ti = {};

        if (type != INET_DIAG_INFO || s->protocol != IPPROTO_TCP)
                return 0;
        /* The running kernel's tcp_info may be shorter (older) or longer (newer) than
         * the one we were built with; fields it lacks stay 0. */
        memcpy(&ti, data, MIN(len, sizeof ti));
        s->have_tcp_info = true;
        s->tcp = (struct diag_tcp_info) {
                .state = ti.tcpi_state,
                .ca_state = ti.tcpi_ca_state,
                .retransmits = ti.tcpi_retransmits,
                .probes = ti.tcpi_probes,
                .backoff = ti.tcpi_backoff,
                .rto_us = ti.tcpi_rto,
                .rtt_us = ti.tcpi_rtt,
                .rttvar_us = ti.tcpi_rttvar,
                .unacked = ti.tcpi_unacked,
                .sacked = ti.tcpi_sacked,
                .lost = ti.tcpi_lost,
                .retrans = ti.tcpi_retrans,
                .total_retrans = ti.tcpi_total_retrans,
                .last_data_sent_ms = ti.tcpi_last_data_sent,
                .last_data_recv_ms = ti.tcpi_last_data_recv,
                .last_ack_recv_ms = ti.tcpi_last_ack_recv,
                .snd_cwnd = ti.tcpi_snd_cwnd,
                .bytes_acked = ti.tcpi_bytes_acked,
                .bytes_received = ti.tcpi_bytes_received,
        };
        return 0;
}

static int parse_inet(const uint8_t *p, size_t len, int protocol, struct sock_vec *vec) {
        struct inet_diag_msg m;
        struct diag_sock *s;
        int r;

        if (len < sizeof m)
                return -EBADMSG;
        memcpy(&m, p, sizeof m);
        if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6)
                return 0;
        s = sock_vec_push(vec);
        if (!s)
                return -ENOMEM;
        s->inode = m.idiag_inode;
        s->family = m.idiag_family;
        s->protocol = protocol;
        s->type = protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
        s->state = m.idiag_state;
        set_inet_addr(&s->local, s->family, m.id.idiag_src, m.id.idiag_sport, m.id.idiag_if);
        set_inet_addr(&s->remote, s->family, m.id.idiag_dst, m.id.idiag_dport, m.id.idiag_if);
        s->rqueue = m.idiag_rqueue;
        s->wqueue = m.idiag_wqueue;
        s->uid = m.idiag_uid;
        if (len > NLMSG_ALIGN(sizeof m)) {
                r = parse_attrs(s, p + NLMSG_ALIGN(sizeof m), len - NLMSG_ALIGN(sizeof m), inet_attr);
                if (r < 0) {
                        vec->n--;
                        return r;
                }
        }
        return 0;
}

/* sun_path as the kernel keeps it: a filesystem path (NUL-terminated, or not when
 * it fills sun_path) or an abstract name, which starts with NUL and may hold more
 * NULs; shown as '@' + name with every NUL as '@', the way ss and lsof do. */
static int unix_name(const uint8_t *data, size_t len, char **ret) {
        char *name;

        if (len == 0)
                return 0;
        if (data[0] == 0) {
                name = malloc(len + 1);
                if (!name)
                        return -ENOMEM;
                for (size_t i = 0; i < len; i++)
                        name[i] = data[i] ? (char) data[i] : '@';
                name[len] = 0;
        } else {
                name = strndup((const char *) data, strnlen((const char *) data, len));
                if (!name)
                        return -ENOMEM;
        }
        free(*ret);
        *ret = name;
        return 0;
}

static int unix_attr(struct diag_sock *s, int type, const uint8_t *data, size_t len) {
        switch (type) {
        case UNIX_DIAG_NAME:
                return unix_name(data, len, &s->path);
        case UNIX_DIAG_VFS: {
                struct unix_diag_vfs vfs;
                if (len >= sizeof vfs) {
                        memcpy(&vfs, data, sizeof vfs);
                        s->vfs_inode = vfs.udiag_vfs_ino;
                }
                break;
        }
        case UNIX_DIAG_PEER: {
                uint32_t peer;
                if (len >= sizeof peer) {
                        memcpy(&peer, data, sizeof peer);
                        s->peer_inode = peer;
                }
                break;
        }
        case UNIX_DIAG_RQLEN: {
                struct unix_diag_rqlen q;
                if (len >= sizeof q) {
                        memcpy(&q, data, sizeof q);
                        s->rqueue = q.udiag_rqueue;
                        s->wqueue = q.udiag_wqueue;
                }
                break;
        }
        case UNIX_DIAG_UID: {
                uint32_t uid;
                if (len >= sizeof uid) {
                        memcpy(&uid, data, sizeof uid);
                        s->uid = uid;
                }
                break;
        }
        }
        return 0;
}

static int parse_unix(const uint8_t *p, size_t len, struct sock_vec *vec) {
        struct unix_diag_msg m;
        struct diag_sock *s;
        int r;

        if (len < sizeof m)
                return -EBADMSG;
        memcpy(&m, p, sizeof m);
        if (m.udiag_family != AF_UNIX)
                return 0;
        s = sock_vec_push(vec);
        if (!s)
                return -ENOMEM;
        s->inode = m.udiag_ino;
        s->family = AF_UNIX;
        s->type = m.udiag_type;
        s->state = m.udiag_state;
        /* UNIX_DIAG_UID needs Linux 5.3; do not pretend root owns older kernels' sockets */
        s->uid = (uid_t) -1;
        if (len > NLMSG_ALIGN(sizeof m)) {
                r = parse_attrs(s, p + NLMSG_ALIGN(sizeof m), len - NLMSG_ALIGN(sizeof m), unix_attr);
                if (r < 0) {
                        free(s->path);
                        vec->n--;
                        return r;
                }
        }
        return 0;
}

/* Send one dump request and read replies until its NLMSG_DONE. protocol is
 * IPPROTO_TCP/IPPROTO_UDP for inet dumps, 0 for unix. */
static int dump_one(int fd, uint32_t seq, void *req, size_t reqlen, int protocol,
                    uint8_t *buf, struct sock_vec *vec) {
        int r = send_request(fd, seq, req, reqlen);

        if (r < 0)
                return r;
        for (;;) {
                struct sockaddr_nl from = {};
                struct iovec iov = { .iov_base = buf, .iov_len = RECV_BUF_SIZE };
                struct msghdr msg = {
                        .msg_name = &from,
                        .msg_namelen = sizeof from,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                };
                size_t off = 0, got;
                ssize_t k = recvmsg(fd, &msg, 0);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return -ETIMEDOUT;
                        return negative_errno();
                }
                if (k == 0)
                        return -EIO;
                if (msg.msg_flags & MSG_TRUNC)
                        return -EMSGSIZE;
                /* only the kernel (port 0) speaks for sock_diag */
                if (from.nl_pid != 0)
                        continue;
                got = (size_t) k;
                while (got - off >= NLMSG_HDRLEN) {
                        struct nlmsghdr h;
                        const uint8_t *payload;
                        size_t plen;

                        memcpy(&h, buf + off, sizeof h);
                        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > got - off)
                                return -EBADMSG;
                        payload = buf + off + NLMSG_HDRLEN;
                        plen = h.nlmsg_len - NLMSG_HDRLEN;
                        off += MIN((size_t) NLMSG_ALIGN(h.nlmsg_len), got - off);

                        /* a late reply to an earlier request that timed out */
                        if (h.nlmsg_seq != seq)
                                continue;
                        if (h.nlmsg_type == NLMSG_DONE) {
                                int err = 0;
                                /* a dump that failed midway says so in DONE's payload */
                                if (plen >= sizeof err)
                                        memcpy(&err, payload, sizeof err);
                                return err < 0 ? err : 0;
                        }
                        if (h.nlmsg_type == NLMSG_ERROR) {
                                int err;
                                if (plen < sizeof err)
                                        return -EBADMSG;
                                memcpy(&err, payload, sizeof err);
                                if (err == 0)           /* an ACK: the dump goes on */
                                        continue;
                                return err < 0 ? err : -EBADMSG;
                        }
                        if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY)
                                continue;
                        r = protocol ? parse_inet(payload, plen, protocol, vec)
                                     : parse_unix(payload, plen, vec);
                        if (r < 0)
                                return r;
                }
        }
}

/* IPv4 as v4-mapped IPv6, port in network order: memcmp() then orders and matches. */
static void put_endpoint(uint8_t *p, const struct sockaddr_storage *ss) {
        if (ss->ss_family == AF_INET) {
                struct sockaddr_in sin;
                memcpy(&sin, ss, sizeof sin);
                memset(p, 0, 10);
                p[10] = p[11] = 0xff;
                memcpy(p + 12, &sin.sin_addr, 4);
                memcpy(p + 16, &sin.sin_port, 2);
        } else {
                struct sockaddr_in6 sin6;
                memcpy(&sin6, ss, sizeof sin6);
                memcpy(p, &sin6.sin6_addr, 16);
                memcpy(p + 16, &sin6.sin6_port, 2);
        }
}

static bool is_inet(const struct diag_sock *s) {
        return (s->family == AF_INET || s->family == AF_INET6) &&
               (s->protocol == IPPROTO_TCP || s->protocol == IPPROTO_UDP);
}

static in_port_t port_of(const struct sockaddr_storage *ss) {
        struct sockaddr_in6 sin6;
        struct sockaddr_in sin;

        if (ss->ss_family == AF_INET) {
                memcpy(&sin, ss, sizeof sin);
                return sin.sin_port;
        }
        if (ss->ss_family == AF_INET6) {
                memcpy(&sin6, ss, sizeof sin6);
                return sin6.sin6_port;
        }
        return 0;
}

static void make_tuple(uint8_t *t, int protocol, const struct sockaddr_storage *local,
                       const struct sockaddr_storage *remote) {
        t[0] = (uint8_t) protocol;
        put_endpoint(t + 1, local);
        put_endpoint(t + 1 + 18, remote);
}

static int peer_key_cmp(const void *a, const void *b) {
        const struct diag_sock_peer_key *x = a, *y = b;
        int c = memcmp(x->tuple, y->tuple, PEER_TUPLE_SIZE);

        if (c)
                return c;
        return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Only connected sockets can be someone's peer: s's remote is never a wildcard. */
static int build_peer_index(struct diag_socktab *t) {
        struct diag_sock_peer_key *keys;
        size_t n = 0;

        for (size_t i = 0; i < t->n; i++)
                if (is_inet(&t->socks[i]) && port_of(&t->socks[i].remote) != 0)
                        n++;
        if (n == 0)
                return 0;
        keys = calloc(n, sizeof *keys);
        if (!keys)
                return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < t->n; i++) {
                const struct diag_sock *s = &t->socks[i];
                if (!is_inet(s) || port_of(&s->remote) == 0)
                        continue;
                make_tuple(keys[n].tuple, s->protocol, &s->local, &s->remote);
                keys[n].idx = i;
                n++;
        }
        qsort(keys, n, sizeof *keys, peer_key_cmp);
        t->peer_index = keys;
        t->peer_n = n;
        return 0;
}

static int inode_order_cmp(const void *a, const void *b, void *userdata) {
        const struct diag_sock *socks = userdata;
        size_t x = *(const size_t *) a, y = *(const size_t *) b;

        if (socks[x].inode != socks[y].inode)
                return socks[x].inode < socks[y].inode ? -1 : 1;
        /* equal inodes keep dump order, so the first one seen is the one kept */
        return x < y ? -1 : x > y;
}

static int make_table(struct sock_vec *vec, struct diag_socktab **ret) {
        _cleanup_free_ size_t *order = NULL;
        _cleanup_free_ struct diag_sock *socks = NULL;
        struct diag_socktab *t;
        size_t n = 0;
        int r;

        if (vec->n > 0) {
                order = malloc(vec->n * sizeof *order);
                socks = malloc(vec->n * sizeof *socks);
                if (!order || !socks)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < vec->n; i++)
                order[i] = i;
        if (vec->n > 1)
                qsort_r(order, vec->n, sizeof *order, inode_order_cmp, vec->v);
        for (size_t i = 0; i < vec->n; i++) {
                struct diag_sock *s = &vec->v[order[i]];
                /* inode 0 (TIME_WAIT, request sockets) are distinct sockets, keep all */
                if (n > 0 && s->inode != 0 && socks[n - 1].inode == s->inode) {
                        free(s->path);
                        s->path = NULL;
                        continue;
                }
                socks[n++] = *s;
                s->path = NULL;         /* moved */
        }
        t = calloc(1, sizeof *t);
        if (!t) {
                for (size_t i = 0; i < n; i++)
                        free(socks[i].path);
                return -ENOMEM;
        }
        t->n = n;
        t->socks = TAKE_PTR(socks);
        r = build_peer_index(t);
        if (r < 0) {
                diag_socktab_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int diag_net_dump(unsigned what, struct diag_socktab **ret) {
        static const struct {
                unsigned what;
                uint8_t family, protocol;
        } inet_dumps[] = {
                { DIAG_NET_TCP, AF_INET,  IPPROTO_TCP },
                { DIAG_NET_TCP, AF_INET6, IPPROTO_TCP },
                { DIAG_NET_UDP, AF_INET,  IPPROTO_UDP },
                { DIAG_NET_UDP, AF_INET6, IPPROTO_UDP },
        };
        _cleanup_(sock_vec_done) struct sock_vec vec = {};
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int fd = -1;
        uint32_t seq = 0;
        int r;

        if (!ret)
                return -EINVAL;
        fd = open_diag_socket();
        if (fd < 0)
                return fd;
        buf = malloc(RECV_BUF_SIZE);
        if (!buf)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(inet_dumps); i++) {
                struct inet_diag_req_v2 req = {
                        .sdiag_family = inet_dumps[i].family,
                        .sdiag_protocol = inet_dumps[i].protocol,
                        .idiag_states = ~0u,
                        /* tcp_info rides along for TCP only; UDP has none */
                        .idiag_ext = inet_dumps[i].protocol == IPPROTO_TCP ?
                                     1 << (INET_DIAG_INFO - 1) : 0,
                };

                if (!(what & inet_dumps[i].what))
                        continue;
                r = dump_one(fd, ++seq, &req, sizeof req, inet_dumps[i].protocol, buf, &vec);
                /* ENOENT: no diag module for this family/protocol (udp_diag not
                 * built, IPv6 disabled); that part of the table is just empty */
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        if (what & DIAG_NET_UNIX) {
                struct unix_diag_req req = {
                        .sdiag_family = AF_UNIX,
                        .udiag_states = ~0u,
                        .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
                                      UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID,
                };

                r = dump_one(fd, ++seq, &req, sizeof req, 0, buf, &vec);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return make_table(&vec, ret);
}

struct ns_dump {
        int nsfd;
        unsigned what;
        struct diag_socktab *tab;
        int r;
};

static void *ns_dump_thread(void *userdata) {
        struct ns_dump *d = userdata;

        /* setns(CLONE_NEWNET) moves only this thread; it dies right after, so no
         * other code ever runs in the target's namespace by accident. */
        if (setns(d->nsfd, CLONE_NEWNET) < 0) {
                d->r = negative_errno();
                return NULL;
        }
        d->r = diag_net_dump(d->what, &d->tab);
        return NULL;
}

static int open_ns(pid_t pid) {
        char path[64];
        int fd;

        snprintf(path, sizeof path, "/proc/%d/ns/net", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        return fd;
}

int diag_net_dump_pid_ns(pid_t pid, unsigned what, struct diag_socktab **ret) {
        struct ns_dump d = { .what = what };
        _cleanup_close_ int fd = -1;
        struct stat target, self;
        sigset_t all, old;
        pthread_t th;
        int r;

        if (pid <= 0 || !ret)
                return -EINVAL;
        fd = open_ns(pid);
        if (fd < 0)
                return fd;
        if (fstat(fd, &target) < 0)
                return negative_errno();
        /* thread-self: the calling thread's namespace may differ from the main thread's */
        if (stat("/proc/thread-self/ns/net", &self) < 0)
                return negative_errno();
        if (target.st_dev == self.st_dev && target.st_ino == self.st_ino)
                return diag_net_dump(what, ret);

        d.nsfd = fd;
        /* The helper starts with every signal blocked, so the process's handlers
         * keep running on the caller's threads, in the caller's namespace. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&th, NULL, ns_dump_thread, &d);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0)
                return -r;
        r = pthread_join(th, NULL);
        if (r != 0)
                return -r;
        if (d.r < 0)
                return d.r;
        *ret = d.tab;
        return 0;
}

int diag_net_ns_of(pid_t pid, uint64_t *ret) {
        char path[64], link[64];
        unsigned long long v;
        ssize_t k;
        int r;

        if (pid <= 0 || !ret)
                return -EINVAL;
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int) pid);
        k = readlink(path, link, sizeof link - 1);
        if (k < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        link[k] = 0;
        if (k < 7 || strncmp(link, "net:[", 5) != 0 || link[k - 1] != ']')
                return -EINVAL;
        link[k - 1] = 0;
        r = diag_parse_ull(link + 5, 10, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

struct diag_socktab *diag_socktab_free(struct diag_socktab *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n; i++)
                free(t->socks[i].path);
        free(t->socks);
        free(t->peer_index);
        free(t);
        return NULL;
}

/* O(log n); inode 0 is not an identity (TIME_WAIT and request sockets have it). */
const struct diag_sock *diag_socktab_find(const struct diag_socktab *t, uint64_t inode) {
        size_t lo = 0, hi;

        if (!t || inode == 0)
                return NULL;
        hi = t->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (t->socks[mid].inode < inode)
                        lo = mid + 1;
                else if (t->socks[mid].inode > inode)
                        hi = mid;
                else
                        return &t->socks[mid];
        }
        return NULL;
}

/* Of several sockets with the same tuple (a live one and a TIME_WAIT leftover),
 * prefer one with an inode, since that one can lead to a process. */
static const struct diag_sock *better_peer(const struct diag_sock *best, const struct diag_sock *c) {
        if (!best || (best->inode == 0 && c->inode != 0))
                return c;
        return best;
}

/* O(log n) with the index the dump builds; O(n) for a table built by hand. */
const struct diag_sock *diag_socktab_inet_peer(const struct diag_socktab *t, const struct diag_sock *s) {
        uint8_t want[PEER_TUPLE_SIZE];
        const struct diag_sock *best = NULL;

        if (!t || !s || !is_inet(s) || port_of(&s->remote) == 0)
                return NULL;
        make_tuple(want, s->protocol, &s->remote, &s->local);

        if (t->peer_index) {
                size_t lo = 0, hi = t->peer_n;
                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        if (memcmp(t->peer_index[mid].tuple, want, PEER_TUPLE_SIZE) < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                for (; lo < t->peer_n && memcmp(t->peer_index[lo].tuple, want, PEER_TUPLE_SIZE) == 0; lo++)
                        best = better_peer(best, &t->socks[t->peer_index[lo].idx]);
                return best;
        }
        for (size_t i = 0; i < t->n; i++) {
                uint8_t have[PEER_TUPLE_SIZE];
                const struct diag_sock *c = &t->socks[i];
                if (!is_inet(c))
                        continue;
                make_tuple(have, c->protocol, &c->local, &c->remote);
                if (memcmp(have, want, PEER_TUPLE_SIZE) == 0)
                        best = better_peer(best, c);
        }
        return best;
}

char *diag_sockaddr_format(const struct sockaddr_storage *ss, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN];

        if (!buf || size == 0)
                return buf;
        if (ss && ss->ss_family == AF_INET) {
                struct sockaddr_in sin;
                memcpy(&sin, ss, sizeof sin);
                if (sin.sin_addr.s_addr == htonl(INADDR_ANY))
                        snprintf(buf, size, "*:%u", ntohs(sin.sin_port));
                else if (inet_ntop(AF_INET, &sin.sin_addr, host, sizeof host))
                        snprintf(buf, size, "%s:%u", host, ntohs(sin.sin_port));
                else
                        snprintf(buf, size, "?");
        } else if (ss && ss->ss_family == AF_INET6) {
                struct sockaddr_in6 sin6;
                memcpy(&sin6, ss, sizeof sin6);
                if (IN6_IS_ADDR_UNSPECIFIED(&sin6.sin6_addr))
                        snprintf(buf, size, "*:%u", ntohs(sin6.sin6_port));
                else if (inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof host))
                        snprintf(buf, size, "[%s]:%u", host, ntohs(sin6.sin6_port));
                else
                        snprintf(buf, size, "?");
        } else
                snprintf(buf, size, "-");
        return buf;
}

const char *diag_tcp_state_name(int state) {
        /* TCP state numbering as in the kernel's include/net/tcp_states.h */
        static const char *const names[] = {
                [1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV",
                [4] = "FIN_WAIT1", [5] = "FIN_WAIT2", [6] = "TIME_WAIT",
                [7] = "CLOSE", [8] = "CLOSE_WAIT", [9] = "LAST_ACK",
                [10] = "LISTEN", [11] = "CLOSING", [12] = "NEW_SYN_RECV",
        };

        if (state <= 0 || (size_t) state >= ELEMENTSOF(names) || !names[state])
                return "UNKNOWN";
        return names[state];
}

const char *diag_sock_proto_name(const struct diag_sock *s) {
        if (!s)
                return "unknown";
        if (s->family == AF_UNIX) {
                switch (s->type) {
                case SOCK_STREAM:       return "unix";
                case SOCK_DGRAM:        return "unix-dgram";
                case SOCK_SEQPACKET:    return "unix-seqpacket";
                default:                return "unknown";
                }
        }
        if (s->family != AF_INET && s->family != AF_INET6)
                return "unknown";
        if (s->protocol == IPPROTO_TCP)
                return s->family == AF_INET6 ? "tcp6" : "tcp";
        if (s->protocol == IPPROTO_UDP)
                return s->family == AF_INET6 ? "udp6" : "udp";
        return "unknown";
}
