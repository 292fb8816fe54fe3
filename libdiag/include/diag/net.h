/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * Sockets from sock_diag netlink: one dump per family (inet_diag for TCP/UDP over
 * IPv4/IPv6 with INET_DIAG_INFO, unix_diag with peer, queue lengths, VFS inode and
 * name), joined to fds by inode. Netlink knows inodes, never pids. Sockets are per
 * network namespace: dumps run in the namespace of a given /proc/PID/ns/net.
 */

struct diag_tcp_info {
        uint8_t state, ca_state, retransmits, probes, backoff;
        uint32_t rto_us, rtt_us, rttvar_us;
        uint32_t unacked, sacked, lost, retrans, total_retrans;
        uint32_t last_data_sent_ms, last_data_recv_ms, last_ack_recv_ms;
        uint32_t snd_cwnd;
        uint64_t bytes_acked, bytes_received;   /* 0 if the kernel's tcp_info lacks them */
};

struct diag_sock {
        uint64_t inode;
        int family;                     /* AF_INET, AF_INET6, AF_UNIX */
        int protocol;                   /* IPPROTO_TCP / IPPROTO_UDP for inet; 0 for unix */
        int type;                       /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
        int state;                      /* TCP_* values (unix sockets use TCP_LISTEN/ESTABLISHED/CLOSE too) */
        struct sockaddr_storage local, remote;  /* inet only */
        uint32_t rqueue, wqueue;        /* receive / send queue (listening: accept backlog / max) */
        uid_t uid;                      /* (uid_t) -1 if unknown (unix sockets before Linux 5.3) */
        /* unix */
        char *path;                     /* bound name; abstract names start with '@'; NULL if unbound */
        uint64_t peer_inode;            /* UNIX_DIAG_PEER, 0 if none */
        uint64_t vfs_inode;             /* inode of the socket file for path-bound sockets */
        /* tcp */
        bool have_tcp_info;
        struct diag_tcp_info tcp;
};

struct diag_sock_peer_key;

struct diag_socktab {
        size_t n;
        struct diag_sock *socks;        /* sorted by inode */
        /* private to net.c: connected inet sockets sorted by address tuple, built by
         * the dump for diag_socktab_inet_peer(); NULL in a table built by hand */
        struct diag_sock_peer_key *peer_index;
        size_t peer_n;
};

enum {
        DIAG_NET_TCP  = 1 << 0,
        DIAG_NET_UDP  = 1 << 1,
        DIAG_NET_UNIX = 1 << 2,
        DIAG_NET_ALL  = 0x7,
};

/* Dump the current network namespace. -EPROTONOSUPPORT if sock_diag is missing. */
int diag_net_dump(unsigned what, struct diag_socktab **ret);
/* Dump the namespace of /proc/PID/ns/net (entered from a short-lived thread, so the
 * caller's namespace never changes). -EPERM without CAP_SYS_ADMIN. */
int diag_net_dump_pid_ns(pid_t pid, unsigned what, struct diag_socktab **ret);
/* Inode of /proc/PID/ns/net ("net:[N]"), for grouping processes by namespace. */
int diag_net_ns_of(pid_t pid, uint64_t *ret);

struct diag_socktab *diag_socktab_free(struct diag_socktab *t);
static inline void diag_socktab_freep(struct diag_socktab **t) { diag_socktab_free(*t); }
const struct diag_sock *diag_socktab_find(const struct diag_socktab *t, uint64_t inode);
/* The other end of a loopback TCP/UDP connection: the socket whose local and
 * remote addresses are s's reversed. NULL if not on this host (or not found). */
const struct diag_sock *diag_socktab_inet_peer(const struct diag_socktab *t, const struct diag_sock *s);

/* "10.0.0.9:6379", "[::1]:8080", "*:22" (INADDR_ANY) into buf; returns buf. */
char *diag_sockaddr_format(const struct sockaddr_storage *ss, char *buf, size_t size);
/* "ESTABLISHED", "LISTEN", "CLOSE_WAIT", ... (TCP state numbering). */
const char *diag_tcp_state_name(int state);
/* "tcp", "tcp6", "udp", "udp6" for inet (the 6 from the socket's family, so a dual-stack
 * socket serving IPv4 peers is still "tcp6"); for unix by type: "unix" (SOCK_STREAM),
 * "unix-dgram", "unix-seqpacket"; "unknown" otherwise. Static strings. */
const char *diag_sock_proto_name(const struct diag_sock *s);
