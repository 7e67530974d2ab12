/* sockdiag: the TCP sockets of the caller's network namespace (their states, addresses and
 * queues), through NETLINK_SOCK_DIAG (inet_diag dump of AF_INET and AF_INET6), with
 * /proc/net/tcp and /proc/net/tcp6 as the fallback where netlink is refused. */
#ifndef CONNFAULT_SOCKDIAG_H
#define CONNFAULT_SOCKDIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCP_STATE_MAX 12 /* states 1..11 as in <netinet/tcp.h> TCP_ESTABLISHED..TCP_CLOSING */

struct tcp_states {
    unsigned count[TCP_STATE_MAX]; /* by state number */
    unsigned matched;              /* inodes found in a TCP table */
    unsigned listening;            /* of which in LISTEN */
};

/* One end of a TCP socket. */
struct sockdiag_endpoint {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order: 4 bytes used for AF_INET */
    unsigned port;    /* host byte order */
};

/* One row of a TCP table. For LISTEN sockets rqueue is the accept-queue length and wqueue the
 * backlog limit (netlink only: /proc/net/tcp does not show the backlog, so there wqueue_known is
 * false). Otherwise rqueue counts bytes received and not yet read, wqueue bytes sent and not
 * yet acknowledged. */
struct sockdiag_sock {
    uint64_t inode; /* 0 for TIME_WAIT, SYN_RECV and orphaned sockets */
    int state;
    struct sockdiag_endpoint local;
    struct sockdiag_endpoint peer;
    unsigned rqueue;
    unsigned wqueue;
    bool wqueue_known;
    /* ms since the last segment with an ACK from the peer (tcp_info's last_ack_recv): for a
     * socket whose peer vanished, how long the server has held it without news; -1 unknown
     * (from /proc, or a TIME_WAIT or request row, which carry no tcp_info) */
    int64_t silent_ms;
};

/* Every TCP socket some fd holds (inode != 0), sorted by inode, each inode once. *rows is
 * malloc'd (NULL when *n is 0); the caller frees it. Returns 0 or -errno. */
int sockdiag_tcp_table(struct sockdiag_sock **rows, size_t *n);

/* sockdiag_tcp_table and also the rows no fd holds (inode 0: TIME_WAIT, and orphans: closed by
 * their process, still sending their FIN), first in the table: every socket of the netns,
 * for sockdiag_table_find_pair. sockdiag_table_find works on it as on sockdiag_tcp_table's. */
int sockdiag_tcp_table_all(struct sockdiag_sock **rows, size_t *n);

/* The row of the table with this local and peer end (an IPv4-mapped IPv6 address equals its
 * IPv4 one), or NULL: the other end of a connection, looked up from one end. */
const struct sockdiag_sock *sockdiag_table_find_pair(const struct sockdiag_sock *rows, size_t n,
                                                     const struct sockdiag_endpoint *local,
                                                     const struct sockdiag_endpoint *peer);

/* A loopback address (127.0.0.0/8, ::1, or 127.x mapped into IPv6): its other end, if it still
 * exists, is in the same netns's tables. */
bool sockdiag_endpoint_is_loopback(const struct sockdiag_endpoint *end);

/* The row of inode in a table from sockdiag_tcp_table, or NULL. */
const struct sockdiag_sock *sockdiag_table_find(const struct sockdiag_sock *rows, size_t n,
                                                uint64_t inode);

/* "127.0.0.1:8080" or "[::1]:8080" into buf (cut short if size is too small). */
void sockdiag_format_endpoint(const struct sockdiag_endpoint *end, char *buf, size_t size);

/* Count the TCP states of the sockets whose inodes are given (sorted or not).
 * Sockets that are in no TCP table (e.g. reset and not yet closed, or UNIX sockets)
 * are not counted. Returns 0 or -errno. */
int sockdiag_tcp_states(const uint64_t *inodes, size_t n, struct tcp_states *out);

/* "ESTABLISHED", "CLOSE_WAIT", ...; "UNKNOWN" outside 1..11. */
const char *tcp_state_name(int state);

/* Listen-queue figures of a listening socket on port (any address): queued connections
 * waiting for accept() and the backlog limit. -ENOENT if none listens there. */
int sockdiag_listen_queue(int port, unsigned *queued, unsigned *backlog);

#endif
