/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sock_diag checked against sockets this process makes itself: it knows their
 * inodes (fstat), ports (getsockname), queue contents and peers. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <linux/netlink.h>

#include "diag/net.h"
#include "diag/util.h"
#include "tap.h"

static uint64_t inode_of(int fd) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return 0;
        return st.st_ino;
}

static in_port_t port_of(const struct sockaddr_storage *ss) {
        if (ss->ss_family == AF_INET)
                return ntohs(((const struct sockaddr_in *) ss)->sin_port);
        if (ss->ss_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
        return 0;
}

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void test_format(void) {
        struct sockaddr_storage ss = {};
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
        char buf[64], tiny[6];

        sin->sin_family = AF_INET;
        sin->sin_port = htons(9400);
        inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "127.0.0.1:9400");
        inet_pton(AF_INET, "10.0.0.9", &sin->sin_addr);
        sin->sin_port = htons(6379);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "10.0.0.9:6379");
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons(22);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "*:22");
        sin->sin_port = htons(65535);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "*:65535");
        /* truncation stays inside the buffer and terminated */
        inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
        CHECK_STR(diag_sockaddr_format(&ss, tiny, sizeof tiny), "127.0");

        memset(&ss, 0, sizeof ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(8080);
        sin6->sin6_addr = in6addr_loopback;
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "[::1]:8080");
        sin6->sin6_addr = in6addr_any;
        sin6->sin6_port = htons(443);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "*:443");
        inet_pton(AF_INET6, "::ffff:1.2.3.4", &sin6->sin6_addr);
        sin6->sin6_port = htons(80);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "[::ffff:1.2.3.4]:80");
        inet_pton(AF_INET6, "2001:db8::42", &sin6->sin6_addr);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "[2001:db8::42]:80");

        memset(&ss, 0, sizeof ss);
        CHECK_STR(diag_sockaddr_format(&ss, buf, sizeof buf), "-");
        CHECK_STR(diag_sockaddr_format(NULL, buf, sizeof buf), "-");
}

static void test_names(void) {
        static const char *const want[] = {
                "UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
                "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
                "NEW_SYN_RECV", "UNKNOWN",
        };
        struct diag_sock s = {};

        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                CHECK_STR(diag_tcp_state_name((int) i), want[i]);
        CHECK_STR(diag_tcp_state_name(-1), "UNKNOWN");
        CHECK_STR(diag_tcp_state_name(255), "UNKNOWN");
        CHECK_STR(diag_tcp_state_name(TCP_LISTEN), "LISTEN");
        CHECK_STR(diag_tcp_state_name(TCP_CLOSE_WAIT), "CLOSE_WAIT");

        s.family = AF_INET; s.protocol = IPPROTO_TCP;
        CHECK_STR(diag_sock_proto_name(&s), "tcp");
        s.family = AF_INET6;
        CHECK_STR(diag_sock_proto_name(&s), "tcp6");
        s.protocol = IPPROTO_UDP;
        CHECK_STR(diag_sock_proto_name(&s), "udp6");
        s.family = AF_INET;
        CHECK_STR(diag_sock_proto_name(&s), "udp");
        s = (struct diag_sock) { .family = AF_UNIX, .type = SOCK_STREAM };
        CHECK_STR(diag_sock_proto_name(&s), "unix");
        s.type = SOCK_DGRAM;
        CHECK_STR(diag_sock_proto_name(&s), "unix-dgram");
        s.type = SOCK_SEQPACKET;
        CHECK_STR(diag_sock_proto_name(&s), "unix-seqpacket");
        s.family = AF_NETLINK;
        CHECK_STR(diag_sock_proto_name(&s), "unknown");
}

static void set_v4(struct sockaddr_storage *ss, const char *addr, uint16_t port) {
        struct sockaddr_in *sin = (struct sockaddr_in *) ss;
        memset(ss, 0, sizeof *ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        inet_pton(AF_INET, addr, &sin->sin_addr);
}

static void set_v6(struct sockaddr_storage *ss, const char *addr, uint16_t port) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
        memset(ss, 0, sizeof *ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        inet_pton(AF_INET6, addr, &sin6->sin6_addr);
}

/* A table built by hand has no peer index: the lookups take the linear path. */
static void test_table_by_hand(void) {
        struct diag_sock socks[5] = {
                { .inode = 0, .family = AF_INET, .protocol = IPPROTO_TCP, .state = TCP_TIME_WAIT },
                { .inode = 100, .family = AF_INET, .protocol = IPPROTO_TCP, .state = TCP_ESTABLISHED },
                { .inode = 200, .family = AF_INET, .protocol = IPPROTO_TCP, .state = TCP_ESTABLISHED },
                { .inode = 300, .family = AF_INET6, .protocol = IPPROTO_TCP, .state = TCP_ESTABLISHED },
                { .inode = 400, .family = AF_INET, .protocol = IPPROTO_UDP },
        };
        struct diag_socktab t = { .n = ELEMENTSOF(socks), .socks = socks };

        set_v4(&socks[0].local, "127.0.0.1", 5000);     /* TIME_WAIT leftover, same tuple as 100 */
        set_v4(&socks[0].remote, "127.0.0.1", 40000);
        set_v4(&socks[1].local, "127.0.0.1", 40000);
        set_v4(&socks[1].remote, "127.0.0.1", 5000);
        set_v4(&socks[2].local, "127.0.0.1", 5000);
        set_v4(&socks[2].remote, "127.0.0.1", 40000);
        /* dual-stack server end of a v4 client: v4-mapped addresses */
        set_v6(&socks[3].local, "::ffff:127.0.0.1", 6000);
        set_v6(&socks[3].remote, "::ffff:127.0.0.1", 41000);
        set_v4(&socks[4].local, "127.0.0.1", 5000);     /* UDP: same ports, other protocol */
        set_v4(&socks[4].remote, "127.0.0.1", 40000);

        CHECK(diag_socktab_find(&t, 100) == &socks[1]);
        CHECK(diag_socktab_find(&t, 400) == &socks[4]);
        CHECK(diag_socktab_find(&t, 0) == NULL);
        CHECK(diag_socktab_find(&t, 250) == NULL);
        CHECK(diag_socktab_find(&t, 500) == NULL);
        CHECK(diag_socktab_inet_peer(&t, &socks[1]) == &socks[2]);
        CHECK(diag_socktab_inet_peer(&t, &socks[2]) == &socks[1]);
        CHECK(diag_socktab_inet_peer(&t, &socks[4]) == NULL);

        struct diag_sock client = { .inode = 500, .family = AF_INET, .protocol = IPPROTO_TCP };
        set_v4(&client.local, "127.0.0.1", 41000);
        set_v4(&client.remote, "127.0.0.1", 6000);
        CHECK(diag_socktab_inet_peer(&t, &client) == &socks[3]);
}

struct tcp_trio {
        int lfd, cfd, sfd;
        uint64_t lino, cino, sino;
        in_port_t lport, cport;
};

static int make_trio(int family, struct tcp_trio *ret) {
        struct sockaddr_storage ss = {};
        socklen_t len;
        struct tcp_trio tr = { .lfd = -1, .cfd = -1, .sfd = -1 };

        if (family == AF_INET)
                set_v4(&ss, "127.0.0.1", 0);
        else
                set_v6(&ss, "::1", 0);
        len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        tr.lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (tr.lfd < 0 || bind(tr.lfd, (struct sockaddr *) &ss, len) < 0 || listen(tr.lfd, 8) < 0)
                goto fail;
        if (getsockname(tr.lfd, (struct sockaddr *) &ss, &len) < 0)
                goto fail;
        tr.lport = port_of(&ss);
        tr.cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (tr.cfd < 0 || connect(tr.cfd, (struct sockaddr *) &ss, len) < 0)
                goto fail;
        tr.sfd = accept4(tr.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (tr.sfd < 0)
                goto fail;
        len = sizeof ss;
        if (getsockname(tr.cfd, (struct sockaddr *) &ss, &len) < 0)
                goto fail;
        tr.cport = port_of(&ss);
        if (write(tr.cfd, "hello", 5) != 5)
                goto fail;
        tr.lino = inode_of(tr.lfd);
        tr.cino = inode_of(tr.cfd);
        tr.sino = inode_of(tr.sfd);
        *ret = tr;
        return 0;
fail:
        if (tr.lfd >= 0) close(tr.lfd);
        if (tr.cfd >= 0) close(tr.cfd);
        if (tr.sfd >= 0) close(tr.sfd);
        return -1;
}

static void close_trio(struct tcp_trio *tr) {
        close(tr->lfd);
        close(tr->cfd);
        close(tr->sfd);
}

static void check_trio(const struct diag_socktab *t, int family, const struct tcp_trio *tr) {
        const struct diag_sock *l = diag_socktab_find(t, tr->lino);
        const struct diag_sock *c = diag_socktab_find(t, tr->cino);
        const struct diag_sock *s = diag_socktab_find(t, tr->sino);
        const char *proto = family == AF_INET ? "tcp" : "tcp6";
        char buf[64], want[64];

        CHECK(l && c && s);
        if (!l || !c || !s)
                return;
        CHECK_INT(l->family, family);
        CHECK_INT(l->protocol, IPPROTO_TCP);
        CHECK_INT(l->type, SOCK_STREAM);
        CHECK_INT(l->state, TCP_LISTEN);
        CHECK_INT(port_of(&l->local), tr->lport);
        CHECK_INT(l->uid, getuid());
        CHECK_STR(diag_sock_proto_name(l), proto);
        CHECK_STR(diag_tcp_state_name(l->state), "LISTEN");
        snprintf(want, sizeof want, family == AF_INET ? "127.0.0.1:%u" : "[::1]:%u", tr->lport);
        CHECK_STR(diag_sockaddr_format(&l->local, buf, sizeof buf), want);
        CHECK(diag_socktab_inet_peer(t, l) == NULL);

        CHECK_INT(c->state, TCP_ESTABLISHED);
        CHECK_INT(port_of(&c->remote), tr->lport);
        CHECK_INT(port_of(&c->local), tr->cport);
        CHECK_STR(diag_sockaddr_format(&c->remote, buf, sizeof buf), want);
        CHECK(c->have_tcp_info);
        CHECK_INT(c->tcp.state, TCP_ESTABLISHED);
        CHECK(c->tcp.last_data_sent_ms < 10000);
        CHECK(c->tcp.rto_us >= 1000);           /* at least the kernel's minimum RTO, in µs */
        CHECK(c->tcp.snd_cwnd > 0);
        CHECK(c->tcp.bytes_acked >= 5);         /* dump_until_queued() waited for the ack */

        CHECK_INT(s->state, TCP_ESTABLISHED);
        CHECK_INT(s->rqueue, 5);
        CHECK_INT(port_of(&s->local), tr->lport);
        CHECK_INT(port_of(&s->remote), tr->cport);
        CHECK(s->have_tcp_info);
        CHECK_INT(s->tcp.bytes_received, 5);

        CHECK(diag_socktab_inet_peer(t, c) == s);
        CHECK(diag_socktab_inet_peer(t, s) == c);
}

/* Loopback delivery is synchronous in practice, but give the queues a moment
 * rather than flake: dump until the server end holds the 5 bytes and the client
 * has its ack (for bytes_acked); the last try is returned as it is. */
static struct diag_socktab *dump_until_queued(uint64_t cino, uint64_t sino) {
        for (int i = 0;; i++) {
                struct diag_socktab *t = NULL;
                const struct diag_sock *c, *s;
                int r = diag_net_dump(DIAG_NET_ALL, &t);

                CHECK_INT(r, 0);
                if (r < 0)
                        return NULL;
                c = diag_socktab_find(t, cino);
                s = diag_socktab_find(t, sino);
                if (i == 49 || (c && s && s->rqueue == 5 && c->have_tcp_info && c->tcp.unacked == 0))
                        return t;
                diag_socktab_free(t);
                sleep_ms(20);
        }
}

static void test_tcp(int family) {
        struct tcp_trio tr;
        struct diag_socktab *t;

        if (make_trio(family, &tr) < 0) {
                if (family == AF_INET6) {
                        printf("# IPv6 loopback unavailable (%m): skipping the tcp6 checks\n");
                        return;
                }
                CHECK(!"tcp trio on 127.0.0.1");
                return;
        }
        CHECK(tr.lino != 0 && tr.cino != 0 && tr.sino != 0);
        t = dump_until_queued(tr.cino, tr.sino);
        CHECK(t != NULL);
        if (t)
                check_trio(t, family, &tr);
        diag_socktab_free(t);

        /* a TCP-only dump has no unix or UDP sockets, and still these */
        t = NULL;
        CHECK_INT(diag_net_dump(DIAG_NET_TCP, &t), 0);
        if (t) {
                bool only_tcp = true;
                for (size_t i = 0; i < t->n; i++)
                        if (t->socks[i].protocol != IPPROTO_TCP)
                                only_tcp = false;
                CHECK(only_tcp);
                CHECK(diag_socktab_find(t, tr.cino) != NULL);
        }
        diag_socktab_free(t);
        close_trio(&tr);
}

static void test_table_sorted(const struct diag_socktab *t) {
        bool sorted = true;

        for (size_t i = 1; i < t->n; i++)
                if (t->socks[i].inode < t->socks[i - 1].inode ||
                    (t->socks[i].inode != 0 && t->socks[i].inode == t->socks[i - 1].inode))
                        sorted = false;
        CHECK(sorted);
}

static int bind_unix(int fd, const char *name, bool abstract) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        size_t l = strlen(name);

        if (l + 2 > sizeof sun.sun_path)
                return -1;
        if (abstract) {
                memcpy(sun.sun_path + 1, name, l);
                return bind(fd, (struct sockaddr *) &sun, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + l));
        }
        memcpy(sun.sun_path, name, l + 1);
        return bind(fd, (struct sockaddr *) &sun, sizeof sun);
}

static void test_udp_unix(void) {
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof(struct sockaddr_in);
        int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int pair[2] = { -1, -1 }, dpair[2] = { -1, -1 };
        int named = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int abstract = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const char *tmp = getenv("TMPDIR");
        char dir[256], path[300], aname[64], want[80];
        struct diag_socktab *t = NULL;
        const struct diag_sock *s, *a, *b;
        struct stat st;
        in_port_t uport = 0;

        snprintf(dir, sizeof dir, "%s/test-net.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof path, "%s/sock", dir);
        snprintf(aname, sizeof aname, "diagkit-test-net-%d", (int) getpid());

        set_v4(&ss, "127.0.0.1", 0);
        CHECK(udp >= 0 && bind(udp, (struct sockaddr *) &ss, len) == 0);
        if (getsockname(udp, (struct sockaddr *) &ss, &len) == 0)
                uport = port_of(&ss);
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, dpair) == 0);
        CHECK(named >= 0 && bind_unix(named, path, false) == 0 && listen(named, 4) == 0);
        CHECK(abstract >= 0 && bind_unix(abstract, aname, true) == 0);
        CHECK(write(pair[0], "abc", 3) == 3);

        CHECK_INT(diag_net_dump(DIAG_NET_ALL, &t), 0);
        if (!t)
                goto out;
        test_table_sorted(t);

        s = diag_socktab_find(t, inode_of(udp));
        CHECK(s != NULL);
        if (s) {
                CHECK_INT(s->family, AF_INET);
                CHECK_INT(s->protocol, IPPROTO_UDP);
                CHECK_INT(s->type, SOCK_DGRAM);
                CHECK_INT(port_of(&s->local), uport);
                CHECK_STR(diag_sock_proto_name(s), "udp");
                CHECK(!s->have_tcp_info);
        }

        a = diag_socktab_find(t, inode_of(pair[0]));
        b = diag_socktab_find(t, inode_of(pair[1]));
        CHECK(a && b);
        if (a && b) {
                CHECK_INT(a->family, AF_UNIX);
                CHECK_INT(a->type, SOCK_STREAM);
                CHECK_INT(a->protocol, 0);
                CHECK_INT(a->state, TCP_ESTABLISHED);
                CHECK_INT(a->peer_inode, b->inode);
                CHECK_INT(b->peer_inode, a->inode);
                CHECK(a->path == NULL);
                CHECK_INT(b->rqueue, 3);
                CHECK_INT(a->uid, getuid());
                CHECK_STR(diag_sock_proto_name(a), "unix");
                CHECK(diag_socktab_inet_peer(t, a) == NULL);
        }
        a = diag_socktab_find(t, inode_of(dpair[0]));
        b = diag_socktab_find(t, inode_of(dpair[1]));
        CHECK(a && b);
        if (a && b) {
                CHECK_STR(diag_sock_proto_name(a), "unix-seqpacket");
                CHECK_INT(a->peer_inode, b->inode);
        }

        s = diag_socktab_find(t, inode_of(named));
        CHECK(s != NULL);
        if (s) {
                CHECK_STR(s->path, path);
                CHECK_INT(s->state, TCP_LISTEN);
                CHECK(stat(path, &st) == 0 && s->vfs_inode == st.st_ino);
                CHECK_INT(s->peer_inode, 0);
        }
        s = diag_socktab_find(t, inode_of(abstract));
        CHECK(s != NULL);
        if (s) {
                snprintf(want, sizeof want, "@%s", aname);
                CHECK_STR(s->path, want);
                CHECK_STR(diag_sock_proto_name(s), "unix-dgram");
                CHECK_INT(s->vfs_inode, 0);
        }
        diag_socktab_free(t);

        /* a unix-only dump */
        t = NULL;
        CHECK_INT(diag_net_dump(DIAG_NET_UNIX, &t), 0);
        if (t) {
                CHECK(diag_socktab_find(t, inode_of(udp)) == NULL);
                CHECK(diag_socktab_find(t, inode_of(named)) != NULL);
        }
        diag_socktab_free(t);
out:
        close(udp);
        close(pair[0]);
        close(pair[1]);
        close(dpair[0]);
        close(dpair[1]);
        close(named);
        close(abstract);
        unlink(path);
        rmdir(dir);
}

/* Enough sockets that the dump spans several recv() buffers. */
static void test_many(void) {
        enum { NPAIRS = 300 };
        int fds[NPAIRS][2];
        size_t made = 0, found = 0;
        struct diag_socktab *t = NULL;

        for (; made < NPAIRS; made++)
                if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds[made]) < 0)
                        break;
        if (made < NPAIRS)
                printf("# only %zu socketpairs (%m)\n", made);
        CHECK_INT(diag_net_dump(DIAG_NET_UNIX, &t), 0);
        if (t) {
                for (size_t i = 0; i < made; i++) {
                        const struct diag_sock *a = diag_socktab_find(t, inode_of(fds[i][0]));
                        if (a && a->peer_inode == inode_of(fds[i][1]))
                                found++;
                }
                CHECK(t->n >= 2 * made);
                test_table_sorted(t);
        }
        CHECK_INT(found, made);
        diag_socktab_free(t);
        for (size_t i = 0; i < made; i++) {
                close(fds[i][0]);
                close(fds[i][1]);
        }
}

static void test_own_ns(void) {
        struct stat st;
        uint64_t ns = 0;
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int pair[2];
        struct diag_socktab *t = NULL;

        CHECK_INT(diag_net_ns_of(getpid(), &ns), 0);
        CHECK(stat("/proc/self/ns/net", &st) == 0 && st.st_ino == ns);
        CHECK_INT(diag_net_ns_of(-1, &ns), -EINVAL);

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
        CHECK_INT(diag_net_dump_pid_ns(getpid(), DIAG_NET_ALL, &t), 0);
        if (t) {
                const struct diag_sock *s = diag_socktab_find(t, inode_of(pair[0]));
                CHECK(s && s->peer_inode == inode_of(pair[1]));
                test_table_sorted(t);
        }
        diag_socktab_free(t);
        close(pair[0]);
        close(pair[1]);
        close(lfd);
}

/* A listener in a fresh network namespace: visible through the child's
 * /proc/PID/ns/net, invisible to a plain dump of ours. */
static void test_other_ns(void) {
        int ready[2], hold[2];
        pid_t pid;
        char buf[64] = {};
        unsigned long long ino = 0;
        struct pollfd pfd;
        ssize_t k;
        uint64_t ns_self = 0, ns_child = 0;
        struct diag_socktab *t = NULL;
        const struct diag_sock *s;

        if (geteuid() != 0) {
                printf("# not root: skipping the other-namespace checks\n");
                return;
        }
        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
                CHECK(!"pipe");
                return;
        }
        pid = fork();
        if (pid < 0) {
                CHECK(!"fork");
                return;
        }
        if (pid == 0) {
                struct ifreq ifr = {};
                struct sockaddr_storage ss;
                socklen_t len = sizeof(struct sockaddr_in);
                int fd, lfd;
                char c;

                close(ready[0]);
                close(hold[1]);
                alarm(30);      /* never outlive a parent that forgot us */
                if (unshare(CLONE_NEWNET) < 0) {
                        dprintf(ready[1], "skip unshare: %m\n");
                        _exit(0);
                }
                fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                strncpy(ifr.ifr_name, "lo", sizeof ifr.ifr_name - 1);
                if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                        _exit(2);
                ifr.ifr_flags |= IFF_UP;
                if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                        _exit(3);
                set_v4(&ss, "127.0.0.1", 0);
                lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (lfd < 0 || bind(lfd, (struct sockaddr *) &ss, len) < 0 || listen(lfd, 4) < 0)
                        _exit(4);
                dprintf(ready[1], "ready %llu\n", (unsigned long long) inode_of(lfd));
                while (read(hold[0], &c, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        pfd = (struct pollfd) { .fd = ready[0], .events = POLLIN };
        if (poll(&pfd, 1, 10000) == 1 && (k = read(ready[0], buf, sizeof buf - 1)) > 0) {
                buf[k] = 0;
                if (strncmp(buf, "skip", 4) == 0) {
                        printf("# %s", buf);
                        goto out;
                }
                CHECK(sscanf(buf, "ready %llu", &ino) == 1 && ino != 0);
        } else
                CHECK(!"child reported ready");
        if (ino == 0)
                goto out;

        CHECK_INT(diag_net_ns_of(getpid(), &ns_self), 0);
        CHECK_INT(diag_net_ns_of(pid, &ns_child), 0);
        CHECK(ns_self != ns_child);

        CHECK_INT(diag_net_dump_pid_ns(pid, DIAG_NET_ALL, &t), 0);
        s = t ? diag_socktab_find(t, ino) : NULL;
        CHECK(s != NULL);
        if (s) {
                char a[64];
                CHECK_INT(s->state, TCP_LISTEN);
                CHECK(strncmp(diag_sockaddr_format(&s->local, a, sizeof a), "127.0.0.1:", 10) == 0);
        }
        diag_socktab_free(t);
        t = NULL;
        CHECK_INT(diag_net_dump(DIAG_NET_ALL, &t), 0);
        CHECK(t && diag_socktab_find(t, ino) == NULL);
        diag_socktab_free(t);

        /* and our own namespace is untouched by the helper thread */
        CHECK_INT(diag_net_ns_of(getpid(), &ns_child), 0);
        CHECK_INT(ns_child, ns_self);
        {
                struct stat st;
                CHECK(stat("/proc/thread-self/ns/net", &st) == 0 && st.st_ino == ns_self);
        }
out:
        close(hold[1]);
        close(ready[0]);
        {
                int status = 0;
                CHECK(waitpid(pid, &status, 0) == pid);
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        CHECK_INT(diag_net_dump_pid_ns(pid, DIAG_NET_ALL, &t), -ESRCH);
}

int main(void) {
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

        test_format();
        test_names();
        test_table_by_hand();
        if (fd < 0) {
                printf("# sock_diag netlink unavailable (%m): skipping the live checks\n");
                if (errno == EPROTONOSUPPORT) {
                        TAP_DONE();
                        return 77;
                }
                CHECK(!"sock_diag socket");
                return TAP_DONE();
        }
        close(fd);

        test_tcp(AF_INET);
        test_tcp(AF_INET6);
        test_udp_unix();
        test_many();
        test_own_ns();
        test_other_ns();
        return TAP_DONE();
}
