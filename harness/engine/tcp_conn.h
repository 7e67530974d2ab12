/* tcp_conn: the one TCP connection layer under every engine client (fault, replay, probe).
 *
 * A tcp_conn is a non-blocking client socket and its epoll interest. It knows nothing of
 * scripts, captures or HTTP: it connects with options, sends and receives with EINTR retried
 * and EAGAIN reported as -EAGAIN, reads SO_ERROR, holds (no more I/O, fd kept), vanishes
 * (silenced by a drop rule, fd kept) and closes with or without a reset. The epoll events of
 * a watched conn carry the conn's own address in data.ptr.
 *
 * Errors are negative errno values. No call ever blocks.
 */
#ifndef CONNFAULT_TCP_CONN_H
#define CONNFAULT_TCP_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tcp_conn {
    int epfd;         /* the epoll set it is watched in */
    int fd;           /* -1 before tcp_conn_open and after tcp_conn_close */
    uint32_t watched; /* epoll events registered; 0 = not in the set */
    bool vanished;    /* silenced by tcp_conn_vanish: fd kept, never used again */
};

struct tcp_conn_options {
    int rcvbuf; /* > 0: SO_RCVBUF before connect(), so the SYN's window scale matches it */
    struct in_addr source; /* bind to it (port picked at connect); INADDR_ANY: kernel picks */
    bool fin_with_data;    /* TCP_CORK: the last bytes sent wait for close(), whose FIN goes
                              in their segment (a client that closes as soon as it sent) */
};

/* Open a non-blocking socket (fd -1 on failure). 0, or -errno (EMFILE & co.). */
int tcp_conn_open(struct tcp_conn *c, int epfd);

/* Set TCP_NODELAY (one send() = one segment, so trickles and partial sends stay exact) and
 * opt, then connect to target. 0 when connected at once, -EINPROGRESS while connecting
 * (watch EPOLLOUT, then tcp_conn_error), any other -errno when it failed (the fd stays open:
 * the caller closes it). */
int tcp_conn_connect(struct tcp_conn *c, const struct sockaddr_in *target,
                     const struct tcp_conn_options *opt);

/* The socket's pending error (SO_ERROR, cleared by reading): 0, or -errno. */
int tcp_conn_error(const struct tcp_conn *c);

/* Register exactly `events` (0 removes the fd: a socket with no interest must leave the set,
 * or its EPOLLHUP would be reported again and again). 0, or -errno. */
int tcp_conn_watch(struct tcp_conn *c, uint32_t events);

/* One send of iov (MSG_NOSIGNAL): bytes sent, -EAGAIN when the socket buffer is full, or
 * -errno (EPIPE, ECONNRESET: the peer let go). */
ssize_t tcp_conn_sendv(struct tcp_conn *c, const struct iovec *iov, size_t iovcnt);

/* Send data[*done, len) until it is all gone or the buffer is full, advancing *done.
 * 0 when all sent, -EAGAIN when blocked, or -errno. */
int tcp_conn_send_rest(struct tcp_conn *c, const void *data, size_t len, size_t *done);

/* One recv: bytes read, 0 at EOF, -EAGAIN when there is nothing, or -errno. */
ssize_t tcp_conn_recv(struct tcp_conn *c, void *buf, size_t len);

/* Keep the fd open but do no more I/O on it: it leaves the epoll set. 0, or -errno. */
int tcp_conn_hold(struct tcp_conn *c);

/* Make the connection vanish: drop(ctx, local address) makes every packet of it disappear;
 * then it is held, and marked vanished. The fd is kept, not closed: closed, its port could be
 * taken by a new connection while the server still sends to the old one (and the new one
 * would be dropped too). It goes at tcp_conn_close, its reset dropped like the rest.
 * 0 when vanished; -ENOSYS without drop; getsockname's or drop's error (nothing changed). */
int tcp_conn_vanish(struct tcp_conn *c, int (*drop)(void *ctx, const struct sockaddr_in *local),
                    void *ctx);

/* Close the fd (which also leaves the epoll set: it is never dup()ed), with an RST instead
 * of a FIN when reset. A no-op when not open. */
void tcp_conn_close(struct tcp_conn *c, bool reset);

#endif
