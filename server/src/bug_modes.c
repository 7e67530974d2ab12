/* bug_modes: faithful reproductions of field reports. Do not copy these patterns. */
#include "bug_modes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "http_parser.h"
#include "listener.h"
#include "log.h"
#include "response.h"

/* --bug accept-once: the edge-triggered listener of the first field report.
 *
 * The listener is registered with EPOLLET, and each event accepts exactly one connection.
 * Epoll reports an edge when the backlog goes from empty to non-empty, so when 100
 * clients connect at once there is one event and one accept: 99 stay queued. Every later
 * connection makes a new edge and accepts the OLDEST queued one, whose client may have
 * given up long ago (its request is read, the response hits EPIPE), while the new client
 * waits behind the rest. And when "too many connections" are open it returns without
 * accepting at all, so the edge is lost and the backlog only grows. */
static void bug_accept_once(struct listener *lst)
{
    if (lst->opts.full(lst)) {
        log_at(lst->opts.verbosity, 1, "too many connections");
        return;
    }
    int fd = accept4(lst->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        lst->opts.take(lst, fd);
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

/* --bug blocking: the embedded server of the second field report.
 *
 * A blocking socket with no SO_RCVTIMEO/SO_SNDTIMEO, served to the end before returning to
 * the loop: recv() waits for as long as the client takes to send its head (a slowloris:
 * forever), send() for as long as the client takes to read (a peer that vanished: until
 * TCP gives up, ~15 minutes; one that keeps its window shut: forever). Meanwhile nothing
 * else is accepted or served. */
static void bug_serve_blocking(struct conn_pool *pool, int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    size_t cap = pool->in_cap;
    char *buf = malloc(cap);
    size_t len = 0;
    while (buf) {
        struct http_request req;
        enum http_parse_result r =
            http_parse_request(buf, len, 0, pool->opts.max_header_bytes, &req);
        if (r == HTTP_PARSE_INCOMPLETE) {
            ssize_t n = len < cap ? recv(fd, buf + len, cap - len, 0) : 0;
            if (n <= 0)
                break;
            len += (size_t)n;
            continue;
        }
        struct response resp;
        if (r != HTTP_PARSE_OK)
            response_error(&resp, (int)r, conn_pool_date(pool));
        else
            response_for_request(&resp, &req, conn_pool_date(pool), false);
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

/* --bug leak-on-error: the server "forgets" close() when the peer went away. The fd stays
 * open (taken out of epoll so it does not spin), the socket stays in CLOSE_WAIT. */
static void bug_forget_close(struct conn_pool *pool, int fd, enum close_reason why)
{
    if (why == CLOSE_PEER_EOF || why == CLOSE_PEER_RESET || why == CLOSE_PEER_GONE)
        event_loop_del(pool->loop, fd);
    else
        close(fd);
}

/* --bug emfile-spin: out of fds, do nothing. The level-triggered listener is still
 * readable, so epoll wakes us again at once: 100% CPU, nothing accepted. */
static bool bug_emfile_do_nothing(struct listener *lst)
{
    (void)lst;
    return false;
}

/* --bug half-close-drop: "read() returned 0, the client is gone". The server looks at the
 * client's FIN (EPOLLRDHUP) before its data, and closes without answering the request that
 * came before the FIN, as servers do that treat EOF as the end of the client rather than of
 * its requests. Each new socket is watched here until its request is in; one whose client is
 * still sending goes on to the correct path (conn_accepted) with its bytes unread. The first
 * look at a socket that has only data waits HALF_CLOSE_LOOK_MS, a busy server's delay: a
 * client that shuts down right after its request has done so by then, so the symptom does
 * not depend on who wins a race. */
#define HALF_CLOSE_LOOK_MS 10

struct half_close_watch {
    struct event_source src;
    struct loop_timer timer;
    struct conn_pool *pool;
    int fd;
};

static void half_close_done(struct half_close_watch *w, bool drop)
{
    loop_timer_cancel(w->pool->loop, &w->timer);
    event_loop_del(w->pool->loop, w->fd);
    if (drop) {
        /* read it all (the request, then 0: "gone"), so the close is a FIN, not a reset */
        char buf[4096];
        while (recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            continue;
        close(w->fd); /* the request is never answered */
    } else
        conn_accepted(w->pool, w->fd);
    free(w); /* no later event of this batch names it: its fd has left the epoll set */
}

static void half_close_look(struct loop_timer *timer)
{
    struct half_close_watch *w = container_of(timer, struct half_close_watch, timer);
    struct pollfd p = {.fd = w->fd, .events = POLLIN | POLLRDHUP};
    half_close_done(w, poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

static void half_close_event(struct event_source *src, uint32_t events)
{
    struct half_close_watch *w = container_of(src, struct half_close_watch, src);
    struct event_loop *loop = w->pool->loop;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        half_close_done(w, true);
    else if (!timer_node_armed(&w->timer.node) &&
             loop_timer_arm(loop, &w->timer, loop->now_ms + HALF_CLOSE_LOOK_MS) < 0)
        half_close_done(w, false); /* no memory for the timer: serve it right */
}

static void bug_serve_half_close_drop(struct conn_pool *pool, int fd)
{
    struct half_close_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        close(fd);
        return;
    }
    *w = (struct half_close_watch){.src.on_event = half_close_event, .pool = pool, .fd = fd};
    loop_timer_init(&w->timer, half_close_look);
    /* edge-triggered: data that waits unread does not wake us again, a FIN does */
    if (event_loop_add(pool->loop, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, &w->src) < 0) {
        free(w);
        conn_accepted(pool, fd);
    }
}

/* --bug timer-flush: GoAhead 2.x's websDone(), reached from its own request timer.
 *
 * Clients are served as they should be until the server's own send timer (--send-timeout:
 * no byte of output taken for that long; GoAhead's request timer is 60 s) gives up on a
 * connection. Then, before closing, it flushes what is left of the response on the socket
 * switched to blocking, with no send timeout and no TCP_USER_TIMEOUT. A client that stopped
 * reading, or vanished (a pulled cable), takes none of it: send() waits until TCP gives up,
 * ~15 minutes of retransmissions for a vanished peer and for ever for one that keeps its
 * window shut, and meanwhile nothing else is accepted or served. So the server answers for
 * as long as its timer, then hangs. The rest of the response is not at hand here: filler of
 * TIMER_FLUSH_REST bytes, more than a socket's send buffer holds, stands for it. */
#define TIMER_FLUSH_REST  (8u << 20)
#define TIMER_FLUSH_CHUNK 65536u

static void bug_flush_on_timer(struct conn_pool *pool, int fd, enum close_reason why)
{
    static const char filler[TIMER_FLUSH_CHUNK];
    if (why == CLOSE_SEND_TIMEOUT) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        for (size_t left = TIMER_FLUSH_REST; left > 0;) {
            ssize_t w = send(fd, filler, left < sizeof(filler) ? left : sizeof(filler),
                             pool->opts.send_flags);
            if (w <= 0)
                break;
            left -= (size_t)w;
        }
    }
    close(fd);
}

/* ---- what each mode changes ----------------------------------------------------------- */

static void apply_accept_once(struct listener_opts *lo, struct conn_opts *co)
{
    (void)co;
    lo->events = EPOLLIN | EPOLLET;
    lo->accept = bug_accept_once;
}

static void apply_blocking(struct listener_opts *lo, struct conn_opts *co)
{
    lo->tcp_nodelay = false; /* the listener sets no options for its sockets to inherit */
    lo->tcp_user_timeout_ms = 0;
    co->serve = bug_serve_blocking;
}

static void apply_leak_on_error(struct listener_opts *lo, struct conn_opts *co)
{
    (void)lo;
    co->close_fd = bug_forget_close;
}

/* --bug sigpipe: a send to a client that went away raises SIGPIPE, which kills us. */
static void apply_sigpipe(struct listener_opts *lo, struct conn_opts *co)
{
    (void)lo;
    co->send_flags = 0;
    co->ignore_sigpipe = false;
}

static void apply_emfile_spin(struct listener_opts *lo, struct conn_opts *co)
{
    (void)co;
    lo->out_of_fds = bug_emfile_do_nothing;
}

/* --bug no-timeouts: nothing ever times out, so vanished or stalled clients keep their fds. */
static void apply_no_timeouts(struct listener_opts *lo, struct conn_opts *co)
{
    co->header_timeout_ms = co->idle_timeout_ms = co->send_timeout_ms = 0;
    lo->tcp_user_timeout_ms = 0;
}

static void apply_timer_flush(struct listener_opts *lo, struct conn_opts *co)
{
    lo->tcp_user_timeout_ms = 0; /* as GoAhead: only the kernel's retransmissions give up */
    co->close_fd = bug_flush_on_timer;
}

static void apply_half_close_drop(struct listener_opts *lo, struct conn_opts *co)
{
    (void)lo;
    co->serve = bug_serve_half_close_drop;
}

/* ---- the catalogue ---------------------------------------------------------------------
 * Symptoms are printed by --help after a 21-column name; continuation lines are indented to
 * match. The man page (connfault-server.1) says the same in its BUG MODES section. */

struct bug_info {
    enum bug_mode bug;
    const char *name;
    const char *symptom;
    void (*apply)(struct listener_opts *lo, struct conn_opts *co);
};

static const struct bug_info bug_table[] = {
    {BUG_ACCEPT_ONCE, "accept-once",
     "edge-triggered listener accepts one connection per event (and returns early when \"too\n"
     "                     many connections\"): dead connections pile up in the backlog and new\n"
     "                     clients are never served (field report: epoll server stops after "
     "EPIPE)",
     apply_accept_once},
    {BUG_BLOCKING, "blocking",
     "blocking client sockets, no timeouts, each client served to the end in the event\n"
     "                     handler: one silent or slow client stops the whole server (field "
     "report:\n"
     "                     hang on cable pull)",
     apply_blocking},
    {BUG_LEAK_ON_ERROR, "leak-on-error",
     "forgets close() on EPIPE/ECONNRESET/EOF: fds leak, sockets pile up in CLOSE_WAIT",
     apply_leak_on_error},
    {BUG_SIGPIPE, "sigpipe",
     "write() without MSG_NOSIGNAL, SIGPIPE not ignored: a client that goes away mid-response\n"
     "                     kills the server",
     apply_sigpipe},
    {BUG_EMFILE_SPIN, "emfile-spin",
     "level-triggered listener returns on EMFILE without accepting: 100% CPU while out of\n"
     "                     fds, nothing accepted",
     apply_emfile_spin},
    {BUG_NO_TIMEOUTS, "no-timeouts",
     "header, idle and send timeouts and TCP_USER_TIMEOUT off: vanished or stalled clients\n"
     "                     hold fds forever",
     apply_no_timeouts},
    {BUG_HALF_CLOSE_DROP, "half-close-drop",
     "closes a client that shut down its sending side (FIN after the request) without\n"
     "                     answering: half-closed clients get EOF and no response",
     apply_half_close_drop},
    {BUG_TIMER_FLUSH, "timer-flush",
     "when its send timer gives up on a client, flushes the rest of the response on the\n"
     "                     socket made blocking: a client that stopped reading or vanished\n"
     "                     hangs the server once the timer fires (GoAhead's websDone, 60 s)",
     apply_timer_flush},
};

#define BUG_TABLE_LEN (sizeof(bug_table) / sizeof(bug_table[0]))

static const struct bug_info *bug_info_of(enum bug_mode bug)
{
    for (size_t i = 0; i < BUG_TABLE_LEN; i++)
        if (bug_table[i].bug == bug)
            return &bug_table[i];
    return NULL;
}

int bug_mode_parse(const char *name, enum bug_mode *bug)
{
    for (size_t i = 0; i < BUG_TABLE_LEN; i++) {
        if (strcmp(name, bug_table[i].name) == 0) {
            *bug = bug_table[i].bug;
            return 0;
        }
    }
    return -EINVAL;
}

const char *bug_mode_name(enum bug_mode bug)
{
    const struct bug_info *info = bug_info_of(bug);
    return info ? info->name : "none";
}

void bug_modes_usage(FILE *out)
{
    for (size_t i = 0; i < BUG_TABLE_LEN; i++)
        fprintf(out, "  %-18s %s\n", bug_table[i].name, bug_table[i].symptom);
}

void bug_modes_list(char *buf, size_t len)
{
    size_t used = 0;
    if (len > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < BUG_TABLE_LEN && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", bug_table[i].name);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

void bug_modes_apply(enum bug_mode bug, struct listener_opts *lo, struct conn_opts *co)
{
    const struct bug_info *info = bug_info_of(bug);
    if (info)
        info->apply(lo, co);
}
