/* bug_modes: faithful reproductions of two field reports. Do not copy these patterns. */
#include "bug_modes.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "http_parser.h"
#include "response.h"
#include "server.h"

/* The listener is registered with EPOLLET, and each event accepts exactly one connection.
 * Epoll reports an edge when the backlog goes from empty to non-empty, so when 100
 * clients connect at once there is one event and one accept: 99 stay queued. Every later
 * connection makes a new edge and accepts the OLDEST queued one, whose client may have
 * given up long ago (its request is read, the response hits EPIPE), while the new client
 * waits behind the rest. And when "too many connections" are open it returns without
 * accepting at all, so the edge is lost and the backlog only grows. */
void bug_accept_once(struct server *srv, int listen_fd)
{
    if (srv->nconns >= srv->cfg.max_conns) {
        server_log(srv, 1, "too many connections");
        return;
    }
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        conn_accepted(srv, fd);
}

static int blocking_send_all(int fd, struct response *resp)
{
    struct iovec iov[2];
    int n;
    while ((n = response_iov(resp, iov)) > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL); /* blocks while the peer's window is shut */
        if (w < 0)
            return -1;
        response_advance(resp, (size_t)w);
    }
    return 0;
}

/* A blocking socket with no SO_RCVTIMEO/SO_SNDTIMEO, served to the end before returning to
 * the loop: recv() waits for as long as the client takes to send its head (a slowloris:
 * forever), send() for as long as the client takes to read (a peer that vanished: until
 * TCP gives up, ~15 minutes; one that keeps its window shut: forever). Meanwhile nothing
 * else is accepted or served. */
void bug_serve_blocking(struct server *srv, int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    size_t cap = srv->in_cap;
    char *buf = malloc(cap);
    size_t len = 0;
    while (buf) {
        struct http_request req;
        enum http_parse_result r = http_parse_request(buf, len, 0, srv->cfg.max_header_bytes, &req);
        if (r == HTTP_PARSE_INCOMPLETE) {
            ssize_t n = len < cap ? recv(fd, buf + len, cap - len, 0) : 0;
            if (n <= 0)
                break;
            len += (size_t)n;
            continue;
        }
        struct response resp;
        if (r != HTTP_PARSE_OK)
            response_error(&resp, (int)r, server_date(srv));
        else
            response_for_request(&resp, &req, server_date(srv), false);
        if (blocking_send_all(fd, &resp) < 0 || resp.close_after)
            break;
        size_t used = req.head_len + (size_t)req.content_length;
        if (used > len)
            break; /* a body we did not wait for: good enough for a bug mode */
        memmove(buf, buf + used, len - used);
        len -= used;
    }
    free(buf);
    close(fd);
}
