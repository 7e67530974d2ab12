/* engine: see engine.h. One level-triggered epoll loop and one timer heap drive every fault
 * client and probe; nothing ever blocks.
 *
 * Layout of this file:
 *   1. plumbing: clock, seeded draws, epoll interest
 *   2. scheduling: when a group may start its next client (start_ms, concurrency, rate)
 *   3. the fault client state machine:
 *        CONNECTING -> SENDING (reading too, unless READ_NONE) -> READING -> PAUSING
 *        -> end action (CLOSED, or HELD); any state -> CLOSED on the server's EOF/RST
 *   3b. replay clients (a capture's flows, pcap_flows.h): CONNECTING -> RUNNING (segments
 *        sent at their captured times, reading) -> the captured end (CLOSED, or HELD)
 *   4. probes: connect, send, read and validate one response
 *   5. the loop and the public API
 *
 * Closed clients and finished probes are not freed on the spot but parked on a list that is
 * swept after each batch of events, so no handler can ever touch freed memory.
 */
#include "engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client_timers.h"
#include "engine_internal.h"
#include "http_response.h"
#include "pcap_flows.h"

#define CONNECT_TIMEOUT_MS 5000 /* a SYN neither accepted nor refused: the backlog is full */
#define START_RETRY_MS     100  /* after EMFILE & co.: give fds time to come back, no spin */
#define START_BURST        256  /* clients one group starts per pass, so events keep flowing */
#define READS_PER_EVENT    4    /* recv() calls per event; level-triggered epoll brings us back */
#define EVENT_BATCH        256
#define SEND_IOV_MAX       64
#define READ_BUF_SIZE      65536

enum owner_kind { OWNER_GROUP, OWNER_CLIENT, OWNER_PROBE, OWNER_REPLAY, OWNER_REPLAY_SCHEDULER };

struct group {
    enum owner_kind kind; /* first member: timers and epoll dispatch on it */
    struct engine *engine;
    const struct client_group *spec;
    size_t index;
    bool request_is_http, request_is_head;
    unsigned concurrency;
    unsigned next_client; /* index of the next client to start */
    unsigned active;      /* clients holding a concurrency slot */
    uint64_t start_at_ms;
    double tokens, token_cap; /* rate limiting: a token bucket */
    uint64_t tokens_at_ms;
    struct client_timer timer; /* next start attempt */
    struct engine_group_timing timing;
    struct engine_group_stats stats;
};

enum client_state {
    CLIENT_CONNECTING,
    CLIENT_SENDING, /* reading as well, unless READ_NONE: a server may answer early */
    CLIENT_READING,
    CLIENT_PAUSING, /* hold_ms before the end action */
    CLIENT_HELD,    /* END_HOLD / END_DROP, or cut off: fd open, no more I/O */
    CLIENT_CLOSED,  /* fd closed; freed at the next sweep */
};

struct client {
    enum owner_kind kind;
    enum client_state state;
    struct group *group;
    struct client *prev, *next; /* engine's live or closed list */
    struct client_timer timer;
    int fd;
    unsigned index;
    uint32_t watched; /* epoll events registered; 0 = not in the epoll set */
    bool send_blocked, send_done, read_done, framer_broken;
    bool vanished; /* END_DROP done: silenced by the sandbox, socket kept (see client_vanish) */
    uint64_t send_len, sent; /* offsets in the stream: request x pipeline [+ tail forever] */
    uint64_t read_limit, received;
    uint64_t hold_ms;
    unsigned responses, responses_expected; /* expected 0: read until EOF */
    struct http_response framer;
};

enum replay_state { REPLAY_CONNECTING, REPLAY_RUNNING, REPLAY_HELD, REPLAY_CLOSED };

struct replay;

struct replay_client {
    enum owner_kind kind;
    enum replay_state state;
    struct replay *replay;
    const struct replay_flow *flow;
    struct replay_client *prev, *next; /* the replay's live or closed list */
    struct client_timer timer;
    int fd;
    uint32_t watched;
    uint64_t start_ms; /* when it connected (or was due to): its segments' time base */
    size_t seg;        /* next segment to send */
    uint32_t seg_sent; /* bytes of it sent so far */
    uint64_t received;
    bool send_blocked, eof, ended;
};

/* The replayed capture: starts its flows in capture order at their times. */
struct replay {
    enum owner_kind kind;
    struct engine *engine;
    const struct replay_flow *flows;
    size_t n, next; /* next: the next flow to start */
    double speed;
    unsigned active; /* clients connecting or running (not held, not closed) */
    uint64_t base_ms;
    struct client_timer timer;
    struct replay_client *live, *closed;
    struct engine_group_stats stats;
};

enum probe_state { PROBE_CONNECTING, PROBE_SENDING, PROBE_READING, PROBE_FINISHED };

struct probe {
    enum owner_kind kind;
    enum probe_state state;
    struct engine *engine;
    struct probe *prev, *next;
    struct client_timer timer;
    int fd;
    uint32_t watched;
    char *request, *expect;
    size_t request_len, sent, expect_len;
    uint64_t received, timeout_ms, started_us;
    struct http_response framer;
    struct probe_result *out;
};

struct engine {
    struct engine_config cfg;
    int epfd;
    uint64_t now_ms; /* refreshed once per loop step; timers are armed relative to it */
    struct client_timers timers;
    size_t timer_owners; /* groups + clients + probes alive: the heap's reserved size */
    struct group **groups;
    size_t ngroups, groups_cap;
    struct client *live_clients, *closed_clients;
    struct probe *probes, *finished_probes;
    struct replay *replay; /* or NULL */
    bool cut_off;
    int error; /* first internal error, returned by engine_run() */
    char buf[READ_BUF_SIZE];
};

/* ---- 1. plumbing ------------------------------------------------------------------------ */

uint64_t engine_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t engine_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t engine_draw(uint64_t seed, size_t group, uint64_t client, enum engine_draw_what what,
                     struct range r)
{
    uint64_t h = splitmix64(seed);

    h = splitmix64(h ^ (uint64_t)group);
    h = splitmix64(h ^ client);
    h = splitmix64(h ^ (uint64_t)what);
    if (r.hi <= r.lo)
        return r.lo;
    if (r.hi - r.lo == UINT64_MAX)
        return h;
    return r.lo + h % (r.hi - r.lo + 1);
}

static void engine_fail(struct engine *e, int err)
{
    if (e->error == 0)
        e->error = err;
}

/* Register exactly `events` for fd (0 removes it: a socket with no interest must leave the
 * set, or its EPOLLHUP would be reported again and again). */
static int engine_watch(struct engine *e, int fd, uint32_t *watched, uint32_t events, void *owner)
{
    struct epoll_event ev = {.events = events, .data.ptr = owner};
    int op = events == 0 ? EPOLL_CTL_DEL : *watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;

    if (events == *watched)
        return 0;
    if (epoll_ctl(e->epfd, op, fd, &ev) < 0)
        return -errno;
    *watched = events;
    return 0;
}

static void list_unlink_client(struct client **head, struct client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_push_client(struct client **head, struct client *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

/* ---- 2. scheduling ---------------------------------------------------------------------- */

static void group_arm(struct group *g, uint64_t due_ms)
{
    struct client_timers *t = &g->engine->timers;

    if (!client_timer_armed(&g->timer) || g->timer.due_ms > due_ms)
        client_timers_arm(t, &g->timer, due_ms);
}

/* Rate limiting: tokens refill at `rate` per second, at most token_cap (50 ms worth) saved up,
 * so starts after a stall do not come in one big burst. */
static bool group_take_token(struct group *g, uint64_t now)
{
    double rate = g->spec->rate;
    uint64_t wait_ms;

    if (rate <= 0)
        return true;
    g->tokens += (double)(now - g->tokens_at_ms) * rate / 1000.0;
    if (g->tokens > g->token_cap)
        g->tokens = g->token_cap;
    g->tokens_at_ms = now;
    if (g->tokens >= 1.0)
        return true;
    wait_ms = (uint64_t)((1.0 - g->tokens) * 1000.0 / rate) + 1;
    group_arm(g, now + wait_ms);
    return false;
}

static int client_start(struct group *g);

static bool is_resource_shortage(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

/* Start as many clients as start_ms, concurrency and rate allow now. */
static void group_pump(struct group *g)
{
    struct engine *e = g->engine;
    unsigned burst = 0;

    if (e->cut_off)
        return;
    if (e->now_ms < g->start_at_ms) {
        group_arm(g, g->start_at_ms);
        return;
    }
    while (g->next_client < g->spec->count && g->active < g->concurrency) {
        int rc;

        if (!group_take_token(g, e->now_ms))
            return;
        if (burst++ == START_BURST) {
            group_arm(g, e->now_ms + 1);
            return;
        }
        rc = client_start(g);
        if (rc < 0) {
            /* Out of fds (ours or the system's): a failed attempt; retry the same client
             * later instead of spinning, and keep its seeded numbers. */
            g->stats.started++;
            g->stats.connect_failed++;
            if (!is_resource_shortage(rc))
                engine_fail(e, rc);
            group_arm(g, e->now_ms + START_RETRY_MS);
            return;
        }
        g->next_client++;
        if (g->spec->rate > 0)
            g->tokens -= 1.0;
    }
}

/* A client reached its end (closed or holding): its slot lets the next one start. */
static void group_release_slot(struct group *g)
{
    g->active--;
    if (!g->engine->cut_off && g->next_client < g->spec->count)
        group_arm(g, g->engine->now_ms);
}

/* ---- 3. fault clients ------------------------------------------------------------------- */

static const struct client_group *client_spec(const struct client *c)
{
    return c->group->spec;
}

static uint64_t client_request_total(const struct client *c)
{
    const struct client_group *s = client_spec(c);

    return (uint64_t)s->request_len * (s->pipeline ? s->pipeline : 1);
}

static bool client_reads(const struct client *c)
{
    return client_spec(c)->read != READ_NONE && !c->read_done;
}

static void client_update_watch(struct client *c)
{
    uint32_t events = 0;
    int rc;

    if (c->state == CLIENT_CONNECTING)
        events = EPOLLOUT;
    if (c->state == CLIENT_SENDING && c->send_blocked && client_spec(c)->send != SEND_TRICKLE)
        events |= EPOLLOUT; /* a trickle just tries again at its next tick */
    if ((c->state == CLIENT_SENDING || c->state == CLIENT_READING) && client_reads(c))
        events |= EPOLLIN;
    rc = engine_watch(c->group->engine, c->fd, &c->watched, events, c);
    if (rc < 0)
        engine_fail(c->group->engine, rc);
}

/* Close the socket (with an RST if reset) and park the client for the sweep. */
static void client_close(struct client *c, bool reset)
{
    struct engine *e = c->group->engine;
    bool had_slot = c->state != CLIENT_HELD;

    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    client_timers_cancel(&e->timers, &c->timer);
    close(c->fd); /* also leaves the epoll set: the fd is never dup()ed */
    c->fd = -1;
    c->watched = 0;
    c->state = CLIENT_CLOSED;
    list_unlink_client(&e->live_clients, c);
    list_push_client(&e->closed_clients, c);
    if (had_slot)
        group_release_slot(c->group);
}

/* Keep the fd open, do no more I/O on it, and give back the concurrency slot. */
static void client_hold(struct client *c)
{
    struct engine *e = c->group->engine;

    client_timers_cancel(&e->timers, &c->timer);
    c->state = CLIENT_HELD;
    client_update_watch(c);
    c->group->stats.holding++;
    group_release_slot(c->group);
}

/* END_DROP: every packet of this connection is dropped from now on; then the socket goes
 * with a reset that never arrives. Without a sandbox it is held like END_HOLD. */
static void client_vanish(struct client *c)
{
    const struct engine *e = c->group->engine;
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    if (!e->cfg.drop || getsockname(c->fd, (struct sockaddr *)&local, &len) < 0 ||
        e->cfg.drop(e->cfg.drop_ctx, &local) < 0) {
        client_hold(c);
        return;
    }
    /* Keep the silenced socket instead of closing it: closed, its port could be taken by a new
     * client while the server still sends to the old connection (and the new one would be
     * dropped too). It goes at engine_free, its reset dropped like the rest. */
    client_hold(c);
    c->group->stats.holding--;
    c->group->stats.dropped++;
    c->vanished = true;
}

static void client_end_action(struct client *c)
{
    c->group->stats.ended++;
    switch (client_spec(c)->end) {
    case END_CLOSE:
    case END_HALF_CLOSE: /* already shut down for writing after the send */
        client_close(c, false);
        break;
    case END_RESET:
        client_close(c, true);
        break;
    case END_HOLD:
        client_hold(c);
        break;
    case END_DROP:
        client_vanish(c);
        break;
    }
}

static void client_end_action(struct client *c);

/* Wait hold_ms before the end action; with no wait, act now (not after the event batch:
 * a server would meanwhile push more data at a client that is about to go). */
static void client_pause(struct client *c)
{
    struct engine *e = c->group->engine;

    if (c->hold_ms == 0) {
        client_end_action(c);
        return;
    }
    c->state = CLIENT_PAUSING;
    client_update_watch(c);
    client_timers_arm(&e->timers, &c->timer, e->now_ms + c->hold_ms);
}

/* ECONNRESET, EPIPE, or rarer ones (ETIMEDOUT): all mean the server let go. */
static void client_peer_error(struct client *c)
{
    c->group->stats.peer_reset++;
    client_close(c, false);
}

/* After a read or the end of the send: is the script's read part done? */
static void client_check_read_done(struct client *c)
{
    const struct client_group *s = client_spec(c);

    if (s->read == READ_NONE)
        c->read_done = true;
    else if (s->read == READ_BYTES && c->received >= c->read_limit)
        c->read_done = true;
    else if (s->read == READ_ALL && c->send_done && c->responses_expected > 0 &&
             c->responses >= c->responses_expected)
        c->read_done = true;
    if (c->read_done && c->send_done)
        client_pause(c);
    else
        client_update_watch(c);
}

static void client_send_finished(struct client *c)
{
    const struct client_group *s = client_spec(c);

    c->send_done = true;
    c->send_blocked = false;
    c->state = CLIENT_READING;
    if (s->end == END_HALF_CLOSE)
        shutdown(c->fd, SHUT_WR); /* an error here shows up on the next read */
    /* One response per request copy begun: a cut request may still get a 400 or 408. */
    if (c->group->request_is_http && s->request_len > 0)
        c->responses_expected = (unsigned)((c->sent + s->request_len - 1) / s->request_len);
    client_check_read_done(c);
}

/* The byte stream a client sends: the request `pipeline` times, then (trickle only) the
 * tail over and over. Fills iov with up to max bytes from offset c->sent. */
static size_t client_stream_iov(const struct client *c, uint64_t max, struct iovec *iov)
{
    const struct client_group *s = client_spec(c);
    uint64_t request_total = client_request_total(c);
    uint64_t off = c->sent;
    uint64_t left = c->send_len - c->sent;
    size_t n = 0;

    if (left > max)
        left = max;
    while (left > 0 && n < SEND_IOV_MAX) {
        const char *base = s->request;
        uint64_t piece = s->request_len, within;
        uint64_t take;

        if (off < request_total) {
            within = off % piece;
        } else {
            base = s->trickle_tail;
            piece = s->trickle_tail_len;
            within = (off - request_total) % piece;
        }
        take = piece - within < left ? piece - within : left;
        iov[n].iov_base = (void *)(base + within);
        iov[n].iov_len = (size_t)take;
        n++;
        off += take;
        left -= take;
    }
    return n;
}

/* Send up to max bytes. Returns 0 (progress made, or the socket buffer is full) or -errno. */
static int client_send_some(struct client *c, uint64_t max)
{
    while (c->sent < c->send_len && max > 0) {
        struct iovec iov[SEND_IOV_MAX];
        struct msghdr msg = {.msg_iov = iov};
        ssize_t n;

        msg.msg_iovlen = client_stream_iov(c, max, iov);
        n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->send_blocked = true;
            return 0;
        }
        if (n < 0)
            return -errno;
        c->send_blocked = false;
        c->sent += (uint64_t)n;
        c->group->stats.bytes_sent += (uint64_t)n;
        max -= (uint64_t)n;
    }
    return 0;
}

/* WHOLE / PARTIAL: as much as the socket takes, then wait for EPOLLOUT. */
static void client_send_pending(struct client *c)
{
    int rc = client_send_some(c, UINT64_MAX);

    if (rc < 0)
        client_peer_error(c);
    else if (c->sent == c->send_len)
        client_send_finished(c);
    else
        client_update_watch(c);
}

/* TRICKLE: one piece per tick; a full socket buffer just skips the tick's piece. */
static void client_trickle_tick(struct client *c)
{
    const struct client_group *s = client_spec(c);
    struct engine *e = c->group->engine;
    int rc = client_send_some(c, s->trickle_bytes ? s->trickle_bytes : 1);

    if (rc < 0) {
        client_peer_error(c);
    } else if (c->sent == c->send_len) {
        client_send_finished(c);
    } else {
        unsigned interval = s->trickle_interval_ms ? s->trickle_interval_ms : 1;
        client_timers_arm(&e->timers, &c->timer, e->now_ms + interval);
    }
}

static void client_connected(struct client *c)
{
    struct engine *e = c->group->engine;

    client_timers_cancel(&e->timers, &c->timer);
    c->group->stats.connected++;
    c->state = CLIENT_SENDING;
    switch (client_spec(c)->send) {
    case SEND_NONE:
        client_send_finished(c);
        break;
    case SEND_TRICKLE:
        client_update_watch(c);
        client_trickle_tick(c);
        break;
    case SEND_WHOLE:
    case SEND_PARTIAL:
        client_send_pending(c);
        break;
    }
}

static void client_on_connect_event(struct client *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        client_connected(c);
    } else {
        c->group->stats.connect_failed++;
        client_close(c, false);
    }
}

/* Count the whole responses in data (pipelined ones back to back). */
static void client_frame(struct client *c, const char *data, size_t len)
{
    while (len > 0 && !c->framer_broken) {
        size_t used;
        enum http_response_status st = http_response_feed(&c->framer, data, len, &used);

        data += used;
        len -= used;
        if (st == HTTP_RESPONSE_COMPLETE) {
            c->responses++;
            c->group->stats.responses++;
            http_response_init(&c->framer, c->group->request_is_head);
        } else if (st == HTTP_RESPONSE_INVALID) {
            c->framer_broken = true; /* not HTTP after all: read on until EOF */
        }
    }
}

static void client_on_eof(struct client *c)
{
    bool script_done = false;

    if (client_spec(c)->read == READ_ALL && c->send_done) {
        if (c->group->request_is_http && !c->framer_broken &&
            http_response_finish(&c->framer) == HTTP_RESPONSE_COMPLETE) {
            c->responses++; /* a body delimited by the close */
            c->group->stats.responses++;
        }
        script_done = c->responses_expected == 0 || c->responses >= c->responses_expected;
    }
    if (script_done) {
        c->read_done = true;
        client_pause(c);
    } else {
        c->group->stats.peer_closed++;
        client_close(c, false);
    }
}

static void client_on_readable(struct client *c)
{
    struct engine *e = c->group->engine;
    const struct client_group *s = client_spec(c);

    for (int i = 0; i < READS_PER_EVENT && client_reads(c); i++) {
        size_t want = sizeof(e->buf);
        ssize_t n;

        if (s->read == READ_BYTES && c->read_limit - c->received < want)
            want = (size_t)(c->read_limit - c->received);
        n = recv(c->fd, e->buf, want, 0);
        if (n == 0) {
            client_on_eof(c);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            client_peer_error(c);
            return;
        }
        c->received += (uint64_t)n;
        c->group->stats.bytes_received += (uint64_t)n;
        if (s->read == READ_ALL && c->group->request_is_http)
            client_frame(c, e->buf, (size_t)n);
        client_check_read_done(c);
    }
}

static void client_on_event(struct client *c, uint32_t events)
{
    const uint32_t trouble = EPOLLERR | EPOLLHUP;

    switch (c->state) {
    case CLIENT_CONNECTING:
        client_on_connect_event(c);
        break;
    case CLIENT_SENDING:
        if (client_reads(c) && (events & (EPOLLIN | trouble)))
            client_on_readable(c);
        /* A trickle never flushes on EPOLLOUT: it sends at its own pace. */
        if (c->state == CLIENT_SENDING && c->send_blocked && client_spec(c)->send != SEND_TRICKLE &&
            (events & (EPOLLOUT | trouble)))
            client_send_pending(c);
        break;
    case CLIENT_READING:
        client_on_readable(c);
        break;
    case CLIENT_PAUSING:
    case CLIENT_HELD:
    case CLIENT_CLOSED:
        break; /* not in the epoll set */
    }
}

static void client_on_timer(struct client *c)
{
    switch (c->state) {
    case CLIENT_CONNECTING:
        c->group->stats.connect_failed++; /* CONNECT_TIMEOUT_MS without an answer */
        client_close(c, false);
        break;
    case CLIENT_SENDING:
        client_trickle_tick(c);
        break;
    case CLIENT_PAUSING:
        client_end_action(c);
        break;
    default:
        break;
    }
}

static int client_socket_setup(const struct engine *e, int fd, int rcvbuf, struct in_addr host)
{
    int one = 1;

    /* One send() = one segment where possible: trickles and partial sends stay exact. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        return -errno;
    /* Before connect(), so the window scale offered in the SYN matches the small buffer. */
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
        return -errno;
    struct in_addr source = host.s_addr ? host : e->cfg.source;
    if (source.s_addr != htonl(INADDR_ANY)) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = source};
        /* Pick the port at connect() time: lets many sources share the port space. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0)
            return -errno;
    }
    return 0;
}

static void client_init(struct client *c, struct group *g, int fd)
{
    const struct client_group *s = g->spec;
    struct engine *e = g->engine;
    uint64_t request_total, partial;

    c->kind = OWNER_CLIENT;
    c->state = CLIENT_CONNECTING;
    c->group = g;
    c->fd = fd;
    c->index = g->next_client;
    client_timer_init(&c->timer, c);
    http_response_init(&c->framer, g->request_is_head);
    request_total = client_request_total(c);
    partial = engine_draw(e->cfg.seed, g->index, c->index, ENGINE_DRAW_SEND_BYTES, s->send_bytes);
    c->read_limit =
        engine_draw(e->cfg.seed, g->index, c->index, ENGINE_DRAW_READ_BYTES, s->read_bytes);
    c->hold_ms = engine_draw(e->cfg.seed, g->index, c->index, ENGINE_DRAW_HOLD_MS, s->hold_ms);
    switch (s->send) {
    case SEND_WHOLE:
        c->send_len = request_total;
        break;
    case SEND_PARTIAL:
        c->send_len = partial < request_total ? partial : request_total;
        break;
    case SEND_TRICKLE:
        c->send_len = s->trickle_tail && s->trickle_tail_len > 0 ? UINT64_MAX : request_total;
        break;
    case SEND_NONE:
        c->send_len = 0;
        break;
    }
}

/* Open a socket and begin connecting client g->next_client. Returns 0 when the client was
 * started (even if its connect failed at once), -errno when it could not be (no fd). */
static int client_start(struct group *g)
{
    struct engine *e = g->engine;
    struct client *c;
    int fd, rc;

    if (client_timers_reserve(&e->timers, e->timer_owners + 1) < 0)
        return -ENOMEM;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        free(c);
        return rc;
    }
    client_init(c, g, fd);
    e->timer_owners++;
    list_push_client(&e->live_clients, c);
    g->stats.started++;
    if (++g->active > g->timing.max_active)
        g->timing.max_active = g->active;
    if (g->timing.first_start_ms == 0)
        g->timing.first_start_ms = e->now_ms;
    g->timing.last_start_ms = e->now_ms;

    rc = client_socket_setup(e, fd, g->spec->rcvbuf, g->spec->host);
    if (rc == 0 && connect(fd, (const struct sockaddr *)&e->cfg.target, sizeof(e->cfg.target)) < 0)
        rc = -errno;
    if (rc == 0) {
        client_connected(c);
    } else if (rc == -EINPROGRESS) {
        client_update_watch(c);
        client_timers_arm(&e->timers, &c->timer, e->now_ms + CONNECT_TIMEOUT_MS);
    } else {
        g->stats.connect_failed++;
        client_close(c, false);
    }
    return 0;
}

/* ---- 3b. replay clients ----------------------------------------------------------------- */

/* A replayed flow waits this long past its captured end for the server bytes it had received
 * by then (a different server may send less, or be stuck), then ends anyway. */
#define REPLAY_END_WAIT_MS 2000

static uint64_t replay_scaled_ms(const struct replay *r, uint64_t us)
{
    if (r->speed <= 0)
        return 0;
    return (uint64_t)((double)us / 1000.0 / r->speed);
}

static bool replay_reads(const struct replay_client *c)
{
    const struct replay_flow *f = c->flow;

    if (c->state != REPLAY_RUNNING || c->eof)
        return false;
    /* a client that stopped reading takes what it took in the capture, no more */
    return f->end != FLOW_END_STOP_READING || c->received < f->server_bytes_before_end;
}

static void replay_update_watch(struct replay_client *c)
{
    struct engine *e = c->replay->engine;
    uint32_t events = 0;
    int rc;

    if (c->state == REPLAY_CONNECTING || (c->state == REPLAY_RUNNING && c->send_blocked))
        events |= EPOLLOUT;
    if (replay_reads(c))
        events |= EPOLLIN;
    rc = engine_watch(e, c->fd, &c->watched, events, c);
    if (rc < 0)
        engine_fail(e, rc);
}

static void replay_list_unlink(struct replay_client **head, struct replay_client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void replay_list_push(struct replay_client **head, struct replay_client *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void replay_pump(struct replay *r);

/* A client is done with its part (closed or holding): the replay may be over. */
static void replay_release(struct replay_client *c)
{
    c->replay->active--;
}

static void replay_close(struct replay_client *c, bool reset)
{
    struct replay *r = c->replay;
    bool active = c->state != REPLAY_HELD;

    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    client_timers_cancel(&r->engine->timers, &c->timer);
    close(c->fd);
    c->fd = -1;
    c->watched = 0;
    if (c->state == REPLAY_HELD)
        r->stats.holding--;
    c->state = REPLAY_CLOSED;
    replay_list_unlink(&r->live, c);
    replay_list_push(&r->closed, c);
    if (active)
        replay_release(c);
}

static void replay_hold(struct replay_client *c)
{
    struct replay *r = c->replay;

    client_timers_cancel(&r->engine->timers, &c->timer);
    c->state = REPLAY_HELD;
    replay_update_watch(c);
    r->stats.holding++;
    replay_release(c);
}

static void replay_peer_error(struct replay_client *c)
{
    c->replay->stats.peer_reset++;
    if (c->flow->end == FLOW_END_BY_SERVER && c->seg == c->flow->nsegs)
        c->replay->stats.ended++; /* the server ended it, as in the capture */
    replay_close(c, false);
}

/* Close with a FIN: take what is already there first, as the client had, or close() would
 * send an RST for the unread bytes. */
static void replay_close_gently(struct replay_client *c)
{
    struct engine *e = c->replay->engine;

    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = recv(c->fd, e->buf, sizeof(e->buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        c->received += (uint64_t)n;
        c->replay->stats.bytes_received += (uint64_t)n;
    }
    replay_close(c, false);
}

static void replay_end_action(struct replay_client *c)
{
    struct replay *r = c->replay;
    const struct engine *e = r->engine;
    struct sockaddr_in local;
    socklen_t len = sizeof(local);

    r->stats.ended++;
    c->ended = true;
    switch (c->flow->end) {
    case FLOW_END_CLOSE:
        replay_close_gently(c);
        break;
    case FLOW_END_HALF_CLOSE: /* then read until the server closes */
        shutdown(c->fd, SHUT_WR);
        client_timers_cancel(&r->engine->timers, &c->timer);
        if (c->eof)
            replay_close(c, false);
        break;
    case FLOW_END_RESET:
        replay_close(c, true);
        break;
    case FLOW_END_STOP_READING:
        replay_hold(c);
        break;
    case FLOW_END_SILENT:
        if (!e->cfg.drop || getsockname(c->fd, (struct sockaddr *)&local, &len) < 0 ||
            e->cfg.drop(e->cfg.drop_ctx, &local) < 0) {
            replay_hold(c);
            break;
        }
        r->stats.dropped++;
        replay_close(c, true);
        break;
    case FLOW_END_BY_SERVER:
        break; /* not reached: these wait for the server (replay_advance) */
    }
}

/* Send the rest of the current segment in one send(). 0, or -errno from the server's side. */
static int replay_send_segment(struct replay_client *c)
{
    const struct flow_segment *s = &c->flow->segs[c->seg];

    while (c->seg_sent < s->len) {
        ssize_t n = send(c->fd, c->flow->data + s->offset + c->seg_sent, s->len - c->seg_sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->send_blocked = true;
            return 0;
        }
        if (n < 0)
            return -errno;
        c->send_blocked = false;
        c->seg_sent += (uint32_t)n;
        c->replay->stats.bytes_sent += (uint64_t)n;
    }
    c->seg++;
    c->seg_sent = 0;
    return 0;
}

/* Do whatever is due: the next segments, then the end. Arms the timer for what comes next. */
static void replay_advance(struct replay_client *c)
{
    struct replay *r = c->replay;
    struct engine *e = r->engine;
    const struct replay_flow *f = c->flow;
    uint64_t due;

    while (c->state == REPLAY_RUNNING && c->seg < f->nsegs && !c->send_blocked) {
        due = c->start_ms + replay_scaled_ms(r, f->segs[c->seg].time_us);
        if (e->now_ms < due) {
            client_timers_arm(&e->timers, &c->timer, due);
            break;
        }
        if (replay_send_segment(c) < 0) {
            replay_peer_error(c);
            return;
        }
    }
    if (c->state == REPLAY_RUNNING && c->seg == f->nsegs && !c->ended &&
        f->end != FLOW_END_BY_SERVER) {
        bool got_enough = c->eof || c->received >= f->server_bytes_before_end;
        due = c->start_ms + replay_scaled_ms(r, f->end_us);
        if (e->now_ms < due)
            client_timers_arm(&e->timers, &c->timer, due);
        else if (!got_enough && e->now_ms < due + REPLAY_END_WAIT_MS)
            client_timers_arm(&e->timers, &c->timer, due + REPLAY_END_WAIT_MS);
        else
            replay_end_action(c);
    }
    if (c->state == REPLAY_RUNNING)
        replay_update_watch(c);
}

static void replay_on_eof(struct replay_client *c)
{
    c->eof = true;
    if (c->flow->end == FLOW_END_BY_SERVER && c->seg == c->flow->nsegs) {
        c->replay->stats.ended++;
        replay_close(c, false);
    } else if (c->ended) { /* half-closed, and now the server is done too */
        replay_close(c, false);
    } else {
        c->replay->stats.peer_closed += c->flow->end != FLOW_END_BY_SERVER;
        replay_advance(c);
    }
}

static void replay_read(struct replay_client *c)
{
    struct engine *e = c->replay->engine;
    const struct replay_flow *f = c->flow;

    for (int i = 0; i < READS_PER_EVENT && replay_reads(c); i++) {
        size_t want = sizeof(e->buf);
        ssize_t n;

        if (f->end == FLOW_END_STOP_READING && f->server_bytes_before_end - c->received < want)
            want = (size_t)(f->server_bytes_before_end - c->received);
        n = recv(c->fd, e->buf, want, 0);
        if (n == 0) {
            replay_on_eof(c);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            replay_peer_error(c);
            return;
        }
        c->received += (uint64_t)n;
        c->replay->stats.bytes_received += (uint64_t)n;
    }
    replay_advance(c);
}

static void replay_connected(struct replay_client *c)
{
    struct replay *r = c->replay;

    client_timers_cancel(&r->engine->timers, &c->timer);
    r->stats.connected++;
    c->state = REPLAY_RUNNING;
    replay_advance(c);
}

static void replay_on_event(struct replay_client *c, uint32_t events)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (c->state == REPLAY_CONNECTING) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0) {
            replay_connected(c);
            return;
        }
        c->replay->stats.connect_failed++;
        replay_close(c, false);
        return;
    }
    if (c->state != REPLAY_RUNNING)
        return;
    if (replay_reads(c) && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        replay_read(c);
    } else if (events & (EPOLLERR | EPOLLHUP)) { /* not reading: find out what happened */
        if (c->eof || (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0))
            replay_peer_error(c);
        else
            replay_on_eof(c);
        return;
    }
    if (c->state == REPLAY_RUNNING && c->send_blocked && (events & EPOLLOUT)) {
        c->send_blocked = false;
        replay_advance(c);
    }
}

static void replay_on_timer(struct replay_client *c)
{
    if (c->state == REPLAY_CONNECTING) {
        c->replay->stats.connect_failed++; /* CONNECT_TIMEOUT_MS without an answer */
        replay_close(c, false);
    } else if (c->state == REPLAY_RUNNING) {
        replay_advance(c);
    }
}

/* Open a socket for flow r->next and begin connecting. -errno when no fd could be had. */
static int replay_start(struct replay *r)
{
    struct engine *e = r->engine;
    const struct replay_flow *f = &r->flows[r->next];
    struct replay_client *c;
    int fd, rc, rcvbuf = 0;

    if (client_timers_reserve(&e->timers, e->timer_owners + 1) < 0)
        return -ENOMEM;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        free(c);
        return rc;
    }
    c->kind = OWNER_REPLAY;
    c->state = REPLAY_CONNECTING;
    c->replay = r;
    c->flow = f;
    c->fd = fd;
    c->start_ms = r->base_ms + replay_scaled_ms(r, f->start_us);
    client_timer_init(&c->timer, c);
    e->timer_owners++;
    replay_list_push(&r->live, c);
    r->active++;
    r->stats.started++;
    /* A client that stopped reading had a window of this size when it closed: the same
     * receive buffer lets the server fill it as far as it did then. */
    if (f->end == FLOW_END_STOP_READING && f->client_window > 0)
        rcvbuf = f->client_window < INT32_MAX / 2 ? (int)f->client_window : INT32_MAX / 2;
    rc = client_socket_setup(e, fd, rcvbuf, (struct in_addr){0});
    if (rc == 0 && connect(fd, (const struct sockaddr *)&e->cfg.target, sizeof(e->cfg.target)) < 0)
        rc = -errno;
    if (rc == 0) {
        replay_connected(c);
    } else if (rc == -EINPROGRESS) {
        replay_update_watch(c);
        client_timers_arm(&e->timers, &c->timer, e->now_ms + CONNECT_TIMEOUT_MS);
    } else {
        r->stats.connect_failed++;
        replay_close(c, false);
    }
    return 0;
}

/* Start every flow whose time has come; arm the timer for the next one. */
static void replay_pump(struct replay *r)
{
    struct engine *e = r->engine;
    unsigned burst = 0;

    while (!e->cut_off && r->next < r->n) {
        uint64_t due = r->base_ms + replay_scaled_ms(r, r->flows[r->next].start_us);
        int rc;

        if (e->now_ms < due || burst++ == START_BURST) {
            client_timers_arm(&e->timers, &r->timer, due > e->now_ms ? due : e->now_ms + 1);
            return;
        }
        rc = replay_start(r);
        if (rc < 0) { /* out of fds: try the same flow again a bit later */
            if (!is_resource_shortage(rc))
                engine_fail(e, rc);
            client_timers_arm(&e->timers, &r->timer, e->now_ms + START_RETRY_MS);
            return;
        }
        r->next++;
    }
}

static void replay_free(struct replay *r)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    if (!r)
        return;
    while (r->live) {
        struct replay_client *c = r->live;
        r->live = c->next;
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
        free(c);
    }
    while (r->closed) {
        struct replay_client *c = r->closed;
        r->closed = c->next;
        free(c);
    }
    free(r);
}

/* ---- 4. probes -------------------------------------------------------------------------- */

static void probe_update_watch(struct probe *p, uint32_t events)
{
    int rc = engine_watch(p->engine, p->fd, &p->watched, events, p);

    if (rc < 0)
        engine_fail(p->engine, rc);
}

__attribute__((format(printf, 3, 4))) static void probe_finish(struct probe *p, bool ok,
                                                               const char *fmt, ...)
{
    struct engine *e = p->engine;
    va_list ap;

    p->out->done = true;
    p->out->ok = ok;
    p->out->latency_us = engine_now_us() - p->started_us;
    p->out->error[0] = '\0';
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(p->out->error, sizeof(p->out->error), fmt, ap);
        va_end(ap);
    }
    client_timers_cancel(&e->timers, &p->timer);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->state = PROBE_FINISHED;
    /* move from the active list to the finished one, freed at the next sweep */
    if (p->prev)
        p->prev->next = p->next;
    else
        e->probes = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = NULL;
    p->next = e->finished_probes;
    if (p->next)
        p->next->prev = p;
    e->finished_probes = p;
}

static void probe_fail_status(struct probe *p)
{
    if (p->framer.reason[0])
        probe_finish(p, false, "status %d %s", p->framer.status, p->framer.reason);
    else
        probe_finish(p, false, "status %d", p->framer.status);
}

/* Where a probe was when it ran out of time or the server closed, in words. */
static void probe_describe_wait(const struct probe *p, char *buf, size_t len)
{
    const struct http_response *r = &p->framer;

    if (p->expect)
        snprintf(buf, len, "the reply (%llu of %zu expected bytes received)",
                 (unsigned long long)p->received, p->expect_len);
    else if (r->step == HTTP_STEP_BODY)
        snprintf(buf, len, "the body (%llu of %llu bytes received)",
                 (unsigned long long)r->body_bytes, (unsigned long long)r->content_length);
    else
        snprintf(buf, len, "%s (%llu bytes received)", http_response_step_name(r),
                 (unsigned long long)p->received);
}

static void probe_on_timeout(struct probe *p)
{
    char where[112];

    if (p->state == PROBE_CONNECTING) {
        probe_finish(p, false, "timeout after %llu ms connecting",
                     (unsigned long long)p->timeout_ms);
    } else if (p->state == PROBE_SENDING && p->received == 0) {
        probe_finish(p, false, "timeout after %llu ms sending the request (%zu of %zu bytes)",
                     (unsigned long long)p->timeout_ms, p->sent, p->request_len);
    } else {
        probe_describe_wait(p, where, sizeof(where));
        probe_finish(p, false, "timeout after %llu ms waiting for %s",
                     (unsigned long long)p->timeout_ms, where);
    }
}

static void probe_on_eof(struct probe *p)
{
    const struct http_response *r = &p->framer;
    char where[112];

    if (p->expect) {
        probe_finish(p, false, "closed after %llu of %zu expected bytes",
                     (unsigned long long)p->received, p->expect_len);
    } else if (http_response_finish(&p->framer) == HTTP_RESPONSE_COMPLETE) {
        if (r->status == 200)
            probe_finish(p, true, NULL);
        else
            probe_fail_status(p);
    } else if (r->step == HTTP_STEP_BODY) {
        probe_finish(p, false, "closed after %llu of %llu body bytes",
                     (unsigned long long)r->body_bytes, (unsigned long long)r->content_length);
    } else {
        probe_describe_wait(p, where, sizeof(where));
        probe_finish(p, false, "closed while waiting for %s", where);
    }
}

/* Check new reply bytes; finishes the probe once the verdict is known. */
static void probe_check(struct probe *p, const char *data, size_t len)
{
    struct http_response *r = &p->framer;
    enum http_response_status st;
    size_t used;

    if (p->expect) {
        uint64_t at = p->received - len; /* offset of data[0] in the reply */
        for (size_t i = 0; i < len && at + i < p->expect_len; i++)
            if (data[i] != p->expect[at + i]) {
                probe_finish(p, false, "reply differs from the expected bytes at byte %llu",
                             (unsigned long long)(at + i));
                return;
            }
        if (p->received >= p->expect_len)
            probe_finish(p, true, NULL);
        return;
    }
    st = http_response_feed(r, data, len, &used);
    if (st == HTTP_RESPONSE_INVALID)
        probe_finish(p, false, "malformed response: %s", r->error);
    else if (r->step > HTTP_STEP_HEADERS && r->status != 200)
        probe_fail_status(p); /* known once the head is complete: no need for the body */
    else if (st == HTTP_RESPONSE_COMPLETE)
        probe_finish(p, true, NULL);
}

static void probe_read(struct probe *p)
{
    struct engine *e = p->engine;

    for (int i = 0; i < READS_PER_EVENT && p->state != PROBE_FINISHED; i++) {
        ssize_t n = recv(p->fd, e->buf, sizeof(e->buf), 0);

        if (n == 0) {
            probe_on_eof(p);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else if (n < 0) {
            probe_finish(p, false, "recv: %s", strerror(errno));
        } else {
            p->received += (uint64_t)n;
            probe_check(p, e->buf, (size_t)n);
        }
    }
}

static void probe_send(struct probe *p)
{
    while (p->sent < p->request_len) {
        ssize_t n = send(p->fd, p->request + p->sent, p->request_len - p->sent, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            probe_update_watch(p, EPOLLIN | EPOLLOUT);
            return;
        }
        if (n < 0) {
            int err = errno;
            probe_read(p); /* the server may have answered (413, 503) before it closed */
            if (p->state != PROBE_FINISHED)
                probe_finish(p, false, "send: %s", strerror(err));
            return;
        }
        p->sent += (size_t)n;
    }
    p->state = PROBE_READING;
    if (p->expect && p->expect_len == 0)
        probe_finish(p, true, NULL); /* nothing to wait for */
    else
        probe_update_watch(p, EPOLLIN);
}

static void probe_on_event(struct probe *p, uint32_t events)
{
    int err = 0;
    socklen_t len = sizeof(err);

    switch (p->state) {
    case PROBE_CONNECTING:
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            probe_finish(p, false, "connect: %s", strerror(err));
            return;
        }
        p->state = PROBE_SENDING;
        probe_send(p);
        break;
    case PROBE_SENDING:
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            probe_read(p);
        if (p->state == PROBE_SENDING)
            probe_send(p);
        break;
    case PROBE_READING:
        probe_read(p);
        break;
    case PROBE_FINISHED:
        break;
    }
}

/* Socket and connect; failures finish the probe with a message, never an engine error. */
static void probe_connect(struct probe *p)
{
    struct engine *e = p->engine;
    int one = 1;

    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        probe_finish(p, false, "socket: %s", strerror(errno));
        return;
    }
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    client_timers_arm(&e->timers, &p->timer, e->now_ms + p->timeout_ms);
    if (connect(p->fd, (const struct sockaddr *)&e->cfg.target, sizeof(e->cfg.target)) == 0) {
        p->state = PROBE_SENDING;
        probe_send(p);
    } else if (errno == EINPROGRESS) {
        probe_update_watch(p, EPOLLOUT);
    } else {
        probe_finish(p, false, "connect: %s", strerror(errno));
    }
}

static void probe_free(struct probe *p)
{
    if (p->fd >= 0)
        close(p->fd);
    free(p->request);
    free(p->expect);
    free(p);
}

int engine_probe(struct engine *e, const char *request, size_t request_len, const char *expect,
                 size_t expect_len, uint64_t timeout_ms, struct probe_result *out)
{
    struct probe *p;

    memset(out, 0, sizeof(*out));
    if (client_timers_reserve(&e->timers, e->timer_owners + 1) < 0)
        return -ENOMEM;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    /* Copies: the caller's buffers need not outlive this call. */
    p->request = malloc(request_len ? request_len : 1);
    p->expect = expect ? malloc(expect_len ? expect_len : 1) : NULL;
    if (!p->request || (expect && !p->expect)) {
        p->fd = -1;
        probe_free(p);
        return -ENOMEM;
    }
    memcpy(p->request, request, request_len);
    if (expect)
        memcpy(p->expect, expect, expect_len);
    p->kind = OWNER_PROBE;
    p->state = PROBE_CONNECTING;
    p->engine = e;
    p->request_len = request_len;
    p->expect_len = expect_len;
    p->timeout_ms = timeout_ms;
    p->out = out;
    client_timer_init(&p->timer, p);
    http_response_init(&p->framer, http_request_is_head(request, request_len));
    e->timer_owners++;
    p->next = e->probes;
    if (p->next)
        p->next->prev = p;
    e->probes = p;
    e->now_ms = engine_now_ms();
    p->started_us = engine_now_us();
    probe_connect(p);
    return 0;
}

/* ---- 5. the loop and the public API ----------------------------------------------------- */

struct engine *engine_new(const struct engine_config *cfg, char *err, size_t errlen)
{
    struct engine *e = calloc(1, sizeof(*e));

    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    e->now_ms = engine_now_ms();
    client_timers_init(&e->timers);
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        free(e);
        return NULL;
    }
    return e;
}

int engine_add_group(struct engine *e, const struct client_group *group)
{
    struct group *g;

    if (e->ngroups == e->groups_cap) {
        size_t cap = e->groups_cap ? e->groups_cap * 2 : 8;
        struct group **groups = realloc(e->groups, cap * sizeof(*groups));
        if (!groups)
            return -ENOMEM;
        e->groups = groups;
        e->groups_cap = cap;
    }
    if (client_timers_reserve(&e->timers, e->timer_owners + 1) < 0)
        return -ENOMEM;
    g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    e->now_ms = engine_now_ms();
    g->kind = OWNER_GROUP;
    g->engine = e;
    g->spec = group;
    g->index = e->ngroups;
    g->request_is_http = http_request_is_http(group->request, group->request_len);
    g->request_is_head = http_request_is_head(group->request, group->request_len);
    g->concurrency = group->concurrency ? group->concurrency : group->count;
    g->start_at_ms = e->now_ms + group->start_ms;
    g->tokens = 1.0;
    g->token_cap = group->rate / 20.0 > 1.0 ? group->rate / 20.0 : 1.0;
    g->tokens_at_ms = g->start_at_ms;
    client_timer_init(&g->timer, g);
    e->timer_owners++;
    e->groups[e->ngroups++] = g;
    if (group->count > 0 && !e->cut_off)
        group_arm(g, g->start_at_ms);
    return (int)g->index;
}

static void engine_fire_timers(struct engine *e)
{
    struct client_timer *tm;

    while ((tm = client_timers_pop_due(&e->timers, e->now_ms))) {
        switch (*(enum owner_kind *)tm->owner) {
        case OWNER_GROUP:
            group_pump(tm->owner);
            break;
        case OWNER_CLIENT:
            client_on_timer(tm->owner);
            break;
        case OWNER_PROBE:
            probe_on_timeout(tm->owner);
            break;
        case OWNER_REPLAY:
            replay_on_timer(tm->owner);
            break;
        case OWNER_REPLAY_SCHEDULER:
            replay_pump(tm->owner);
            break;
        }
    }
}

/* Free what handlers closed during the last step (see the top of the file). */
static void engine_sweep(struct engine *e)
{
    while (e->closed_clients) {
        struct client *c = e->closed_clients;
        e->closed_clients = c->next;
        free(c);
        e->timer_owners--;
    }
    while (e->finished_probes) {
        struct probe *p = e->finished_probes;
        e->finished_probes = p->next;
        probe_free(p);
        e->timer_owners--;
    }
    while (e->replay && e->replay->closed) {
        struct replay_client *c = e->replay->closed;
        e->replay->closed = c->next;
        free(c);
        e->timer_owners--;
    }
}

static int engine_wait_ms(const struct engine *e, uint64_t until_ms)
{
    const struct client_timer *next = client_timers_peek(&e->timers);
    uint64_t wake = until_ms;

    if (next && next->due_ms < wake)
        wake = next->due_ms;
    if (wake <= e->now_ms)
        return 0;
    return wake - e->now_ms > 60000 ? 60000 : (int)(wake - e->now_ms);
}

int engine_run(struct engine *e, uint64_t until_ms)
{
    struct epoll_event events[EVENT_BATCH];
    int rc;

    do {
        int n;

        e->now_ms = engine_now_ms();
        engine_fire_timers(e);
        engine_sweep(e);
        if (e->error)
            break;
        n = epoll_wait(e->epfd, events, EVENT_BATCH, engine_wait_ms(e, until_ms));
        if (n < 0 && errno != EINTR)
            return -errno;
        e->now_ms = engine_now_ms();
        for (int i = 0; i < n; i++) {
            enum owner_kind kind = *(enum owner_kind *)events[i].data.ptr;
            if (kind == OWNER_CLIENT)
                client_on_event(events[i].data.ptr, events[i].events);
            else if (kind == OWNER_PROBE)
                probe_on_event(events[i].data.ptr, events[i].events);
            else if (kind == OWNER_REPLAY)
                replay_on_event(events[i].data.ptr, events[i].events);
        }
        engine_fire_timers(e);
        engine_sweep(e);
    } while (!e->error && e->now_ms < until_ms);
    rc = e->error;
    e->error = 0;
    return rc;
}

bool engine_groups_done(const struct engine *e)
{
    if (e->cut_off)
        return true;
    for (size_t i = 0; i < e->ngroups; i++) {
        const struct group *g = e->groups[i];
        if (g->next_client < g->spec->count || g->active > 0)
            return false;
    }
    return !e->replay || (e->replay->next == e->replay->n && e->replay->active == 0);
}

void engine_cut_off(struct engine *e)
{
    e->cut_off = true;
    for (size_t i = 0; i < e->ngroups; i++)
        client_timers_cancel(&e->timers, &e->groups[i]->timer);
    for (struct client *c = e->live_clients; c; c = c->next)
        if (c->state != CLIENT_HELD)
            client_hold(c);
    if (e->replay) {
        client_timers_cancel(&e->timers, &e->replay->timer);
        for (struct replay_client *c = e->replay->live; c; c = c->next)
            if (c->state != REPLAY_HELD)
                replay_hold(c);
    }
}

void engine_vanish_all(struct engine *e)
{
    e->cut_off = true;
    while (e->live_clients) {
        struct client *c = e->live_clients;
        if (c->vanished) { /* dropped already, and counted */
            client_close(c, true);
            continue;
        }
        if (c->state == CLIENT_HELD)
            c->group->stats.holding--;
        else
            c->group->stats.ended++;
        c->group->stats.dropped++;
        client_close(c, true);
    }
    while (e->replay && e->replay->live) {
        struct replay_client *c = e->replay->live;
        if (c->state != REPLAY_HELD)
            e->replay->stats.ended++;
        e->replay->stats.dropped++;
        replay_close(c, true);
    }
}

void engine_group_stats(const struct engine *e, size_t group_index, struct engine_group_stats *out)
{
    if (group_index < e->ngroups)
        *out = e->groups[group_index]->stats;
    else
        memset(out, 0, sizeof(*out));
}

int engine_add_replay(struct engine *e, const struct replay_flow *flows, size_t n, double speed)
{
    struct replay *r;

    if (e->replay)
        return -EBUSY;
    if (client_timers_reserve(&e->timers, e->timer_owners + 1) < 0)
        return -ENOMEM;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    e->now_ms = engine_now_ms();
    r->kind = OWNER_REPLAY_SCHEDULER;
    r->engine = e;
    r->flows = flows;
    r->n = n;
    r->speed = speed;
    r->base_ms = e->now_ms;
    client_timer_init(&r->timer, r);
    e->timer_owners++;
    e->replay = r;
    if (n > 0 && !e->cut_off)
        client_timers_arm(&e->timers, &r->timer, e->now_ms);
    return 0;
}

void engine_replay_stats(const struct engine *e, struct engine_group_stats *out)
{
    if (e->replay)
        *out = e->replay->stats;
    else
        memset(out, 0, sizeof(*out));
}

void engine_group_timing(const struct engine *e, size_t group_index,
                         struct engine_group_timing *out)
{
    if (group_index < e->ngroups)
        *out = e->groups[group_index]->timing;
    else
        memset(out, 0, sizeof(*out));
}

void engine_free(struct engine *e)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    if (!e)
        return;
    /* An RST for every socket still open: nothing lingers in TIME_WAIT or FIN_WAIT. */
    while (e->live_clients) {
        struct client *c = e->live_clients;
        e->live_clients = c->next;
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
        free(c);
    }
    while (e->probes) {
        struct probe *p = e->probes;
        e->probes = p->next;
        probe_free(p);
    }
    engine_sweep(e);
    replay_free(e->replay);
    for (size_t i = 0; i < e->ngroups; i++)
        free(e->groups[i]);
    free(e->groups);
    client_timers_free(&e->timers);
    close(e->epfd);
    free(e);
}
