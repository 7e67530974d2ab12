/* conn: the life of one client connection, and the pool of them all.
 *
 * States: READING (waiting for, or receiving, a request head) and WRITING (a response is
 * being sent). Epoll is level-triggered: READING asks for EPOLLIN, WRITING for EPOLLOUT
 * only, so a client that pipelines requests without reading the answers is not read from
 * until it reads: its cost stays one input buffer and one response state (backpressure).
 * Errors (RST, EPIPE, ETIMEDOUT) are reported by epoll whatever we ask for, and surface as
 * the result of the next recv or send, which decides how the connection is closed.
 *
 * One timer per connection, whose deadline depends on the state: the whole-head deadline
 * (from the connection or from the first byte of a keep-alive request: a trickle never
 * extends it), the keep-alive idle deadline, or the send-progress deadline (no byte taken
 * by the kernel for send_timeout). Deadlines that move later (send progress) are not
 * re-armed on every write: when the timer fires, the real deadline is computed again and
 * the timer re-armed if it is still ahead.
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_parser.h"
#include "log.h"
#include "response.h"

/* Bytes a connection may write in one turn before letting others run: one sendmsg of the
 * body pattern (PATTERN_SPAN). With 1 MiB, 50 clients downloading 16 MiB over loopback
 * (large send buffers) made a turn copy ~50 MiB, and a GET / waited behind it: 145 ms at
 * worst on a loaded 2-core machine, 489 ms once, against 42 ms with 256 KiB (cable-pull
 * under bench/flake --busy, 30 runs each). */
#define WRITE_BUDGET_PER_TURN (256u * 1024)
/* A request body (allowed, ignored) larger than this is answered with 413 and closed. */
#define MAX_DISCARDED_BODY (1u << 20)
#define MIN_INPUT_BUFFER   16384

enum conn_state { CONN_READING, CONN_WRITING, CONN_CLOSED };

struct conn {
    struct event_source src;
    struct loop_timer timer;
    struct conn_pool *pool;
    struct cf_list node;      /* in pool->all */
    struct cf_list idle_node; /* in pool->idle while idle, else unlinked */
    struct conn *next_closed; /* in pool->closed */
    int fd;
    enum conn_state state;
    uint32_t interest;      /* epoll events asked for */
    bool request_started;   /* bytes of the next request have arrived */
    uint32_t requests;      /* answered so far */
    uint64_t since_ms;      /* start of the running deadline */
    uint64_t idle_since_ms; /* when it last joined pool->idle */
    char *in;               /* bytes kept between reads (partial or pipelined requests) */
    uint32_t in_len;
    uint32_t in_parsed;    /* of those, already scanned by the parser */
    uint64_t discard_left; /* request body bytes still to skip */
    struct response *resp; /* while answering; NULL when idle, so idle connections stay small */
};

static void conn_on_event(struct event_source *src, uint32_t events);
static void conn_on_timer(struct loop_timer *timer);
static void conn_close(struct conn *c, enum close_reason why);

/* Idle: waiting for a request and holding nothing but the socket. Appended when it becomes
 * idle, so the list is in idle_since_ms order, oldest first: eviction under fd pressure
 * takes the connection that has waited longest. */
static void conn_set_idle(struct conn *c, bool idle)
{
    if (idle == cf_list_linked(&c->idle_node))
        return;
    if (idle) {
        c->idle_since_ms = c->pool->loop->now_ms;
        cf_list_push_back(&c->pool->idle, &c->idle_node);
    } else {
        cf_list_remove(&c->idle_node);
    }
}

/* ---- timers --------------------------------------------------------------------------- */

static uint64_t conn_deadline(const struct conn *c, enum close_reason *why)
{
    const struct conn_pool *pool = c->pool;
    uint64_t timeout;
    if (c->state == CONN_WRITING) {
        *why = CLOSE_SEND_TIMEOUT;
        timeout = pool->opts.send_timeout_ms;
    } else if (c->request_started || c->requests == 0 || c->discard_left > 0) {
        *why = CLOSE_HEADER_TIMEOUT;
        timeout = pool->opts.header_timeout_ms;
    } else {
        *why = CLOSE_IDLE_TIMEOUT;
        timeout = pool->opts.idle_timeout_ms;
    }
    if (pool->stopping && pool->stop_deadline_ms < c->since_ms + timeout)
        return pool->stop_deadline_ms;
    return timeout ? c->since_ms + timeout : 0;
}

static void conn_update_timer(struct conn *c)
{
    enum close_reason why;
    uint64_t deadline = conn_deadline(c, &why);
    struct event_loop *loop = c->pool->loop;
    if (deadline == 0)
        loop_timer_cancel(loop, &c->timer);
    else if (!timer_node_armed(&c->timer.node) || deadline < c->timer.node.deadline_ms)
        loop_timer_arm(loop, &c->timer, deadline);
}

static void conn_on_timer(struct loop_timer *timer)
{
    struct conn *c = container_of(timer, struct conn, timer);
    enum close_reason why;
    uint64_t deadline = conn_deadline(c, &why);
    if (deadline == 0)
        return;
    if (deadline > c->pool->loop->now_ms) {
        loop_timer_arm(c->pool->loop, &c->timer, deadline);
        return;
    }
    conn_close(c, c->pool->stopping ? CLOSE_SHUTDOWN : why);
}

/* ---- response state ------------------------------------------------------------------
 * A response's state (with its head buffer) is attached to a connection only while it is
 * being answered: 10,000 idle keep-alive connections then cost ~200 bytes each instead of
 * ~700. Spare ones are kept on a short free list, so a busy keep-alive connection does not
 * call malloc for every request. */

#define MAX_SPARE_RESPONSES 256

static struct response *conn_take_response(struct conn *c)
{
    struct conn_pool *pool = c->pool;
    if (!c->resp && pool->spare_responses) {
        c->resp = pool->spare_responses;
        pool->spare_responses = c->resp->next_free;
        pool->nspare_responses--;
    } else if (!c->resp) {
        c->resp = malloc(sizeof(*c->resp));
    }
    return c->resp;
}

static void conn_release_response(struct conn *c)
{
    struct conn_pool *pool = c->pool;
    if (!c->resp)
        return;
    if (pool->nspare_responses < MAX_SPARE_RESPONSES) {
        c->resp->next_free = pool->spare_responses;
        pool->spare_responses = c->resp;
        pool->nspare_responses++;
    } else {
        free(c->resp);
    }
    c->resp = NULL;
}

/* ---- setup and teardown --------------------------------------------------------------- */

static int conn_set_interest(struct conn *c, uint32_t events)
{
    if (c->interest == events)
        return 0;
    int rc = c->interest == 0 ? event_loop_add(c->pool->loop, c->fd, events, &c->src)
                              : event_loop_mod(c->pool->loop, c->fd, events, &c->src);
    if (rc == 0)
        c->interest = events;
    return rc;
}

static void conn_on_readable(struct conn *c);

void conn_accepted(struct conn_pool *pool, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        log_at(pool->opts.verbosity, 0, "out of memory for a new connection");
        return;
    }
    c->src.on_event = conn_on_event;
    loop_timer_init(&c->timer, conn_on_timer);
    cf_list_init(&c->idle_node);
    c->pool = pool;
    c->fd = fd;
    c->state = CONN_READING;
    c->since_ms = pool->loop->now_ms;
    cf_list_push_back(&pool->all, &c->node);
    pool->nconns++;
    conn_set_idle(c, true);
    log_at(pool->opts.verbosity, 2, "fd %d: accepted (%u open)", fd, pool->nconns);
    /* The request has often arrived by the time we accept: answer it now, and join the
     * epoll set only if we have to wait (saves an epoll_ctl and a loop turn per
     * short-lived connection). */
    conn_on_readable(c);
    if (c->state == CONN_READING && conn_set_interest(c, EPOLLIN) < 0) {
        log_at(pool->opts.verbosity, 0, "epoll_ctl(ADD): %s", strerror(errno));
        conn_close(c, CLOSE_ERROR);
        return;
    }
    if (c->state != CONN_CLOSED)
        conn_update_timer(c);
}

void conn_close_fd(struct conn_pool *pool, int fd, enum close_reason why)
{
    (void)pool;
    (void)why;
    close(fd); /* also leaves the epoll set */
}

static void conn_close(struct conn *c, enum close_reason why)
{
    struct conn_pool *pool = c->pool;
    if (c->state == CONN_CLOSED)
        return;
    log_at(pool->opts.verbosity, 2, "fd %d: closed (%s)", c->fd, close_reason_name(why));
    if (why == CLOSE_SEND_TIMEOUT || why == CLOSE_PEER_TIMED_OUT) {
        /* The peer is not taking data: a plain close would leave the unsent bytes (and an
         * orphaned socket) in the kernel, retrying for minutes. A reset frees it now. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    pool->opts.close_fd(pool, c->fd, why);
    c->fd = -1;
    c->state = CONN_CLOSED;
    conn_release_response(c);
    loop_timer_cancel(pool->loop, &c->timer);
    conn_set_idle(c, false);
    cf_list_remove(&c->node);
    pool->nconns--;
    /* Freed after this turn: a later event of the same epoll batch may still name it. */
    c->next_closed = pool->closed;
    pool->closed = c;
}

/* ---- writing -------------------------------------------------------------------------- */

static enum close_reason close_reason_for_errno(int err)
{
    switch (err) {
    case ECONNRESET:
        return CLOSE_PEER_RESET;
    case EPIPE:
        return CLOSE_PEER_GONE;
    case ETIMEDOUT:
        return CLOSE_PEER_TIMED_OUT;
    default:
        return CLOSE_ERROR;
    }
}

static ssize_t conn_send(struct conn *c, struct iovec *iov, int iovcnt)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
    return sendmsg(c->fd, &msg, c->pool->opts.send_flags);
}

enum write_result { WRITE_DONE, WRITE_BLOCKED, WRITE_CLOSED };

/* Send as much of the response as the kernel takes, within this turn's budget. */
static enum write_result conn_write(struct conn *c)
{
    size_t budget = WRITE_BUDGET_PER_TURN;
    struct iovec iov[2];
    int n;
    while ((n = response_iov(c->resp, iov)) > 0) {
        if (budget == 0)
            return WRITE_BLOCKED; /* level-triggered EPOLLOUT brings us back next turn */
        ssize_t w = conn_send(c, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return WRITE_BLOCKED;
            conn_close(c, close_reason_for_errno(errno));
            return WRITE_CLOSED;
        }
        response_advance(c->resp, (size_t)w);
        c->since_ms = c->pool->loop->now_ms; /* progress: the send deadline starts over */
        budget = (size_t)w >= budget ? 0 : budget - (size_t)w;
    }
    return WRITE_DONE;
}

/* ---- reading and parsing -------------------------------------------------------------- */

/* Start answering: write what we can now, and wait for EPOLLOUT for the rest. */
static enum write_result conn_respond(struct conn *c)
{
    c->state = CONN_WRITING;
    c->request_started = false;
    c->since_ms = c->pool->loop->now_ms;
    enum write_result r = conn_write(c);
    if (r == WRITE_BLOCKED) {
        if (conn_set_interest(c, EPOLLOUT) < 0) {
            conn_close(c, CLOSE_ERROR);
            return WRITE_CLOSED;
        }
        conn_update_timer(c);
    }
    return r;
}

/* The response was sent: close, or go back to reading the next request. */
static bool conn_response_finished(struct conn *c)
{
    c->requests++;
    bool close_after = c->resp->close_after;
    conn_release_response(c);
    if (close_after) {
        conn_close(c, CLOSE_DONE);
        return false;
    }
    c->state = CONN_READING;
    c->since_ms = c->pool->loop->now_ms;
    return true;
}

/* Parse and answer the requests in buf[0..len). Returns how many bytes were used, or -1
 * if the connection was closed. Stops at an incomplete request or a blocked write. */
static ssize_t conn_process(struct conn *c, const char *buf, size_t len)
{
    size_t off = 0;
    while (c->state == CONN_READING) {
        if (c->discard_left > 0) {
            size_t skip = len - off < c->discard_left ? len - off : (size_t)c->discard_left;
            off += skip;
            c->discard_left -= skip;
            if (c->discard_left > 0)
                break;
        }
        if (off == len)
            break;
        if (!c->request_started) {
            c->request_started = true;
            if (c->requests > 0)
                c->since_ms = c->pool->loop->now_ms; /* head deadline starts at its first byte */
        }
        struct http_request req;
        size_t prev = c->in_parsed > off ? c->in_parsed - off : 0;
        enum http_parse_result r =
            http_parse_request(buf + off, len - off, prev, c->pool->opts.max_header_bytes, &req);
        if (r == HTTP_PARSE_INCOMPLETE) {
            c->in_parsed = (uint32_t)len;
            break;
        }
        c->in_parsed = 0;
        struct response *resp = conn_take_response(c);
        if (!resp) {
            conn_close(c, CLOSE_ERROR);
            return -1;
        }
        if (r != HTTP_PARSE_OK) {
            response_error(resp, (int)r, conn_pool_date(c->pool));
            off = len; /* what follows a malformed head cannot be trusted */
        } else if (req.content_length > MAX_DISCARDED_BODY) {
            response_error(resp, 413, conn_pool_date(c->pool));
            off = len;
        } else {
            off += req.head_len;
            c->discard_left = req.content_length;
            response_for_request(resp, &req, conn_pool_date(c->pool), c->pool->stopping);
        }
        enum write_result w = conn_respond(c);
        if (w == WRITE_CLOSED || (w == WRITE_DONE && !conn_response_finished(c)))
            return -1;
    }
    return (ssize_t)off;
}

/* Keep the unused tail of buf for the next turn, in the connection's own buffer. */
static int conn_keep_input(struct conn *c, const char *buf, size_t used, size_t len)
{
    size_t left = len - used;
    if (left == 0) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_parsed = 0;
        return 0;
    }
    if (!c->in) {
        c->in = malloc(c->pool->in_cap);
        if (!c->in)
            return -ENOMEM;
    }
    memmove(c->in, buf + used, left);
    c->in_parsed = c->in_parsed > used ? c->in_parsed - (uint32_t)used : 0;
    c->in_len = (uint32_t)left;
    return 0;
}

/* Requests already buffered (pipelined) after a response finished. */
static void conn_process_buffered(struct conn *c)
{
    if (!c->in)
        return;
    ssize_t used = conn_process(c, c->in, c->in_len);
    if (used >= 0 && conn_keep_input(c, c->in, (size_t)used, c->in_len) < 0)
        conn_close(c, CLOSE_ERROR);
}

static void conn_on_readable(struct conn *c)
{
    struct conn_pool *pool = c->pool;
    /* Most requests arrive whole and are answered at once: read them into the shared
     * scratch buffer, and give the connection a buffer of its own only for leftovers. */
    char *buf = c->in ? c->in : pool->scratch;
    size_t len = c->in ? c->in_len : 0;
    ssize_t n = recv(c->fd, buf + len, pool->in_cap - len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_close(c, close_reason_for_errno(errno));
        return;
    }
    if (n == 0) {
        /* FIN. Anything complete was answered already; a half request never will be. */
        conn_close(c, CLOSE_PEER_EOF);
        return;
    }
    conn_set_idle(c, false);
    len += (size_t)n;
    ssize_t used = conn_process(c, buf, len);
    if (used < 0)
        return;
    if (conn_keep_input(c, buf, (size_t)used, len) < 0) {
        conn_close(c, CLOSE_ERROR);
        return;
    }
    if (c->state == CONN_READING) {
        conn_set_idle(c, c->in == NULL && c->discard_left == 0 && !c->request_started);
        conn_update_timer(c);
    }
}

static void conn_on_writable(struct conn *c)
{
    enum write_result r = conn_write(c);
    if (r != WRITE_DONE)
        return;
    if (!conn_response_finished(c))
        return;
    if (conn_set_interest(c, EPOLLIN) < 0) {
        conn_close(c, CLOSE_ERROR);
        return;
    }
    conn_process_buffered(c);
    if (c->state == CONN_READING) {
        conn_set_idle(c, c->in == NULL && c->discard_left == 0);
        conn_update_timer(c);
    }
}

static void conn_on_event(struct event_source *src, uint32_t events)
{
    struct conn *c = container_of(src, struct conn, src);
    (void)events; /* errors and hang-ups show up as the result of recv or send */
    if (c->state == CONN_READING)
        conn_on_readable(c);
    else if (c->state == CONN_WRITING)
        conn_on_writable(c);
    /* CONN_CLOSED: a stale event from the batch in which it was closed; ignore it. */
}

/* Stop: idle connections close now, busy ones after their current response. */
static void conn_begin_shutdown(struct conn *c)
{
    if (c->state == CONN_READING && cf_list_linked(&c->idle_node)) {
        conn_close(c, CLOSE_SHUTDOWN);
        return;
    }
    if (c->state == CONN_WRITING)
        c->resp->close_after = true;
    conn_update_timer(c);
}

/* ---- the pool ------------------------------------------------------------------------- */

int conn_pool_init(struct conn_pool *pool, struct event_loop *loop, const struct conn_opts *opts)
{
    memset(pool, 0, sizeof(*pool));
    pool->opts = *opts;
    pool->loop = loop;
    cf_list_init(&pool->all);
    cf_list_init(&pool->idle);
    pool->date_second = -1;
    pool->in_cap = opts->max_header_bytes + 1 > MIN_INPUT_BUFFER ? opts->max_header_bytes + 1
                                                                 : MIN_INPUT_BUFFER;
    if (opts->ignore_sigpipe)
        signal(SIGPIPE, SIG_IGN);
    pool->scratch = malloc(pool->in_cap);
    return pool->scratch ? 0 : -ENOMEM;
}

void conn_pool_free_closed(struct conn_pool *pool)
{
    while (pool->closed) {
        struct conn *c = pool->closed;
        pool->closed = c->next_closed;
        free(c->in);
        free(c);
    }
}

void conn_pool_free(struct conn_pool *pool)
{
    if (!pool->loop)
        return; /* never initialised */
    struct cf_list *node;
    while ((node = cf_list_first(&pool->all)) != NULL)
        conn_close(container_of(node, struct conn, node), CLOSE_SHUTDOWN);
    conn_pool_free_closed(pool);
    free(pool->scratch);
    while (pool->spare_responses) {
        struct response *r = pool->spare_responses;
        pool->spare_responses = r->next_free;
        free(r);
    }
    pool->loop = NULL;
}

bool conn_pool_full(const struct conn_pool *pool)
{
    return pool->nconns >= pool->opts.max_conns;
}

/* How long c has been idle: since it joined pool->idle, by the loop's clock. But one that
 * never sent a byte has been idle since its handshake, which may be well before we
 * accepted it (it waited in the backlog through a flood); TCP_INFO's time since the last
 * data received counts from the handshake while none came. Asked only when it matters. */
static uint64_t conn_idle_ms(const struct conn *c)
{
    const struct conn_pool *pool = c->pool;
    uint64_t idle = pool->loop->now_ms - c->idle_since_ms;
    struct tcp_info info;
    socklen_t len = sizeof(info);
    if (c->requests == 0 && idle < pool->opts.evict_grace_ms &&
        getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
        info.tcpi_last_data_recv > idle)
        idle = info.tcpi_last_data_recv;
    return idle;
}

int conn_pool_evict_idle(struct conn_pool *pool, uint64_t *retry_ms)
{
    struct cf_list *node;
    while ((node = cf_list_first(&pool->idle)) != NULL) {
        struct conn *c = container_of(node, struct conn, idle_node);
        uint64_t idle = conn_idle_ms(c);
        if (idle < pool->opts.evict_grace_ms) {
            /* Just connected (or just answered): it looks idle, but its request is usually
             * on the way, and in a flood the clients queued behind it would bring it to the
             * front within one accept batch. The caller waits out the grace instead. (The
             * list is in loop-clock order, so a later one may be older by the kernel's
             * count: waiting is the safe side, and lasts at most the grace.) */
            *retry_ms = pool->loop->now_ms + (pool->opts.evict_grace_ms - idle);
            return -EAGAIN;
        }
        /* Its request (or FIN) may have arrived during this turn, its event not yet
         * handled: serve it rather than close it. */
        conn_on_readable(c);
        if (c->state == CONN_CLOSED)
            return 0;
        if (cf_list_first(&pool->idle) == node) {
            conn_close(c, CLOSE_EVICTED);
            return 0;
        }
        /* It had a request: no longer idle, or idle again at the back of the list. */
    }
    return -ENOENT;
}

void conn_pool_shutdown(struct conn_pool *pool, uint64_t deadline_ms)
{
    pool->stopping = true;
    pool->stop_deadline_ms = deadline_ms;
    struct cf_list *node, *next;
    cf_list_for_each_safe(node, next, &pool->all)
        conn_begin_shutdown(container_of(node, struct conn, node));
}

const char *conn_pool_date(struct conn_pool *pool)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec != pool->date_second) {
        pool->date_second = now.tv_sec;
        response_format_date(pool->date, sizeof(pool->date), now.tv_sec);
    }
    return pool->date;
}

const char *close_reason_name(enum close_reason why)
{
    static const char *const names[] = {
        [CLOSE_DONE] = "done",
        [CLOSE_PEER_EOF] = "peer closed",
        [CLOSE_PEER_RESET] = "peer reset",
        [CLOSE_PEER_GONE] = "peer gone (EPIPE)",
        [CLOSE_PEER_TIMED_OUT] = "peer timed out",
        [CLOSE_HEADER_TIMEOUT] = "header timeout",
        [CLOSE_IDLE_TIMEOUT] = "idle timeout",
        [CLOSE_SEND_TIMEOUT] = "send timeout",
        [CLOSE_EVICTED] = "evicted (out of fds)",
        [CLOSE_SHUTDOWN] = "shutdown",
        [CLOSE_ERROR] = "error",
    };
    return names[why];
}
