/* tcp_conn: see tcp_conn.h. */
#include "tcp_conn.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int tcp_conn_open(struct tcp_conn *c, int epfd)
{
    c->epfd = epfd;
    c->watched = 0;
    c->vanished = false;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return c->fd < 0 ? -errno : 0;
}

static int tcp_conn_setup(const struct tcp_conn *c, const struct tcp_conn_options *opt)
{
    int one = 1;

    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        return -errno;
    /* (TCP_CORK overrides TCP_NODELAY while set; close() sends what it held, FIN included) */
    if (opt->fin_with_data && setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)) < 0)
        return -errno;
    if (opt->rcvbuf > 0 &&
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &opt->rcvbuf, sizeof(opt->rcvbuf)) < 0)
        return -errno;
    if (opt->source.s_addr != htonl(INADDR_ANY)) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = opt->source};
        /* Pick the port at connect() time: lets many sources share the port space. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0)
            return -errno;
    }
    return 0;
}

int tcp_conn_connect(struct tcp_conn *c, const struct sockaddr_in *target,
                     const struct tcp_conn_options *opt)
{
    int rc = tcp_conn_setup(c, opt);

    if (rc < 0)
        return rc;
    if (connect(c->fd, (const struct sockaddr *)target, sizeof(*target)) < 0)
        return -errno;
    return 0;
}

int tcp_conn_error(const struct tcp_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

int tcp_conn_watch(struct tcp_conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    int op = events == 0 ? EPOLL_CTL_DEL : c->watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;

    if (events == c->watched)
        return 0;
    if (epoll_ctl(c->epfd, op, c->fd, &ev) < 0)
        return -errno;
    c->watched = events;
    return 0;
}

/* After a send or recv returned n: true to try again (EINTR), else n becomes the result:
 * bytes (or 0 for EOF), -EAGAIN when the socket is not ready, or -errno. */
static bool tcp_conn_retry(ssize_t *n)
{
    if (*n >= 0)
        return false;
    if (errno == EINTR)
        return true;
    *n = errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return false;
}

ssize_t tcp_conn_sendv(struct tcp_conn *c, const struct iovec *iov, size_t iovcnt)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt};
    ssize_t n;

    do
        n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    while (tcp_conn_retry(&n));
    return n;
}

int tcp_conn_send_rest(struct tcp_conn *c, const void *data, size_t len, size_t *done)
{
    while (*done < len) {
        struct iovec iov = {.iov_base = (char *)data + *done, .iov_len = len - *done};
        ssize_t n = tcp_conn_sendv(c, &iov, 1);
        if (n < 0)
            return (int)n;
        *done += (size_t)n;
    }
    return 0;
}

ssize_t tcp_conn_recv(struct tcp_conn *c, void *buf, size_t len)
{
    ssize_t n;

    do
        n = recv(c->fd, buf, len, 0);
    while (tcp_conn_retry(&n));
    return n;
}

int tcp_conn_hold(struct tcp_conn *c)
{
    return tcp_conn_watch(c, 0);
}

int tcp_conn_vanish(struct tcp_conn *c, int (*drop)(void *ctx, const struct sockaddr_in *local),
                    void *ctx)
{
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    int rc;

    if (!drop)
        return -ENOSYS;
    if (getsockname(c->fd, (struct sockaddr *)&local, &len) < 0)
        return -errno;
    rc = drop(ctx, &local);
    if (rc < 0)
        return rc;
    c->vanished = true;
    return tcp_conn_hold(c);
}

void tcp_conn_close(struct tcp_conn *c, bool reset)
{
    if (c->fd < 0)
        return;
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    c->fd = -1;
    c->watched = 0;
}
