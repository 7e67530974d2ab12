/* listener: the listening socket and the accept loop.
 *
 * The listener is level-triggered and each wakeup accepts up to ACCEPT_BATCH connections:
 * a flood of new connections cannot starve the ones already open, and whatever is left in
 * the backlog is reported again by epoll on the next turn. (Edge-triggered with one accept
 * per event is the bug behind the first field report: the backlog is never drained.)
 *
 * Running out of file descriptors (EMFILE/ENFILE) is where servers spin or stall: with a
 * level-triggered listener, returning without accepting makes epoll report it again at
 * once (100% CPU), and removing it for good stops the server. We do, in order:
 *  1. Evict the connection that has been idle longest (no request in progress; oldest
 *     first, like nginx's reusable connections): its fd is the one the new client needs.
 *     Only one idle for at least the grace (--evict-grace; for a client that never sent a
 *     byte, counted from its handshake) may go: a connection accepted a moment ago has
 *     sent nothing yet either, but its request is usually on the way. If the oldest is
 *     that fresh, stop watching the listener until it may go (at most the grace): the new
 *     client waits in the backlog, then is served, instead of being refused or costing
 *     another client its connection.
 *  2. If nothing is idle, use the reserve fd: an fd opened on /dev/null at start and held
 *     back for this moment (the libuv/libev trick). Close it, accept the waiting
 *     connection, answer 503 and close it, then open the reserve again. The client learns
 *     at once that we are full, instead of waiting in a backlog that does not move.
 *  3. If even that fails (the reserve could not be reopened), stop watching the listener
 *     for LISTENER_PAUSE_MS and try again then: no busy loop, no permanent stall.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cf_list.h"
#include "log.h"

#define ACCEPT_BATCH      128
#define LISTENER_PAUSE_MS 100

static const char busy_response[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                    "Server: connfault\r\nContent-Type: text/plain\r\n"
                                    "Content-Length: 24\r\nConnection: close\r\n\r\n"
                                    "503 Service Unavailable\n";

/* Best effort: one non-blocking send of a canned 503, then close. */
static void listener_refuse(int fd)
{
    ssize_t ignored = send(fd, busy_response, sizeof(busy_response) - 1, MSG_NOSIGNAL);
    (void)ignored;
    close(fd);
}

/* Stop watching the listener until resume_ms (loop time; at least the next millisecond,
 * so a deadline already reached cannot make a busy loop). */
static void listener_pause_until(struct listener *lst, uint64_t resume_ms)
{
    if (lst->paused)
        return;
    event_loop_del(lst->loop, lst->fd);
    lst->paused = true;
    if (resume_ms <= lst->loop->now_ms)
        resume_ms = lst->loop->now_ms + 1;
    loop_timer_arm(lst->loop, &lst->resume_timer, resume_ms);
}

static void listener_pause(struct listener *lst)
{
    listener_pause_until(lst, lst->loop->now_ms + LISTENER_PAUSE_MS);
}

static void listener_on_resume(struct loop_timer *timer)
{
    struct listener *lst = container_of(timer, struct listener, resume_timer);
    if (!lst->paused || lst->fd < 0)
        return;
    lst->paused = false;
    if (event_loop_add(lst->loop, lst->fd, lst->opts.events, &lst->src) < 0)
        listener_pause(lst);
}

/* Out of fds: steps 1 to 3 above. Returns true if the caller may try accept() again now. */
bool listener_make_room(struct listener *lst)
{
    uint64_t retry_ms = 0;
    int rc = lst->opts.evict_idle(lst, &retry_ms);
    if (rc == 0)
        return true;
    if (rc == -EAGAIN) {
        log_at(lst->opts.verbosity, 2, "out of file descriptors: pausing accept for %llu ms",
               (unsigned long long)(retry_ms - lst->loop->now_ms));
        listener_pause_until(lst, retry_ms);
        return false;
    }
    if (lst->reserve_fd >= 0) {
        close(lst->reserve_fd);
        int fd = accept4(lst->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            listener_refuse(fd);
        lst->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && lst->reserve_fd >= 0)
            return true;
    }
    log_at(lst->opts.verbosity, 1, "out of file descriptors: pausing accept for %d ms",
           LISTENER_PAUSE_MS);
    listener_pause(lst);
    return false;
}

void listener_accept_batch(struct listener *lst)
{
    for (int i = 0; i < ACCEPT_BATCH && !lst->paused; i++) {
        int fd = accept4(lst->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
                return; /* backlog drained */
            case EINTR:
            case ECONNABORTED: /* the client gave up while queued: next one */
            case EPROTO:
                continue;
            case EMFILE:
            case ENFILE:
                if (!lst->opts.out_of_fds(lst))
                    return;
                continue;
            default: /* ENOBUFS, ENOMEM: the kernel is short; back off instead of spinning */
                log_at(lst->opts.verbosity, 0, "accept: %s", strerror(errno));
                listener_pause(lst);
                return;
            }
        }
        if (lst->opts.full(lst)) {
            listener_refuse(fd);
            continue;
        }
        lst->opts.take(lst, fd);
    }
}

static void listener_on_event(struct event_source *src, uint32_t events)
{
    struct listener *lst = container_of(src, struct listener, src);
    (void)events;
    lst->opts.accept(lst);
}

/* Options set on the listener are inherited by every accepted socket on Linux, which
 * saves two setsockopt calls per connection. */
static int listener_socket_options(int fd, const struct listener_opts *opts)
{
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return -errno;
    if (opts->tcp_nodelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        return -errno;
    /* A peer that vanished (cable pulled: no FIN, no RST) while we had data in flight is
     * given up after this long, instead of after ~15 minutes of retransmissions. */
    unsigned user_timeout = (unsigned)opts->tcp_user_timeout_ms;
    if (user_timeout &&
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout)) < 0)
        return -errno;
    return 0;
}

int listener_open(struct listener *lst, struct event_loop *loop, const struct listener_opts *opts,
                  char *err, size_t errlen)
{
    memset(lst, 0, sizeof(*lst));
    lst->opts = *opts;
    lst->loop = loop;
    lst->src.on_event = listener_on_event;
    loop_timer_init(&lst->resume_timer, listener_on_resume);
    lst->reserve_fd = -1;

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opts->port)};
    if (inet_pton(AF_INET, opts->bind_addr, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "--bind: '%s' is not an IPv4 address", opts->bind_addr);
        return -EINVAL;
    }
    lst->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lst->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -errno;
    }
    int rc = listener_socket_options(lst->fd, opts);
    if (rc < 0) {
        snprintf(err, errlen, "setsockopt: %s", strerror(-rc));
        goto fail;
    }
    if (bind(lst->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(lst->fd, SOMAXCONN) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot listen on %s:%d: %s", opts->bind_addr, opts->port,
                 strerror(errno));
        goto fail;
    }
    socklen_t len = sizeof(addr);
    getsockname(lst->fd, (struct sockaddr *)&addr, &len);
    lst->port = ntohs(addr.sin_port);
    lst->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    rc = event_loop_add(loop, lst->fd, opts->events, &lst->src);
    if (rc < 0) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(-rc));
        goto fail;
    }
    return 0;
fail:
    listener_close(lst);
    return rc;
}

void listener_close(struct listener *lst)
{
    if (lst->fd >= 0) {
        close(lst->fd); /* also leaves the epoll set */
        lst->fd = -1;
    }
    if (lst->reserve_fd >= 0) {
        close(lst->reserve_fd);
        lst->reserve_fd = -1;
    }
    if (lst->loop)
        loop_timer_cancel(lst->loop, &lst->resume_timer);
}
