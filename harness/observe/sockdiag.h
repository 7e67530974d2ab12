/* sockdiag: TCP states of a set of sockets (by inode), through NETLINK_SOCK_DIAG
 * (inet_diag dump of AF_INET and AF_INET6 in the caller's network namespace), with
 * /proc/net/tcp and /proc/net/tcp6 as the fallback where netlink is refused. */
#ifndef CONNFAULT_SOCKDIAG_H
#define CONNFAULT_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

#define TCP_STATE_MAX 12 /* states 1..11 as in <netinet/tcp.h> TCP_ESTABLISHED..TCP_CLOSING */

struct tcp_states {
    unsigned count[TCP_STATE_MAX]; /* by state number */
    unsigned matched;              /* inodes found in a TCP table */
    unsigned listening;            /* of which in LISTEN */
};

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
