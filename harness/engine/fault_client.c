/* fault_client: a scenario's client groups (see engine_core.h for the client kinds).
 *
 * 1. scheduling: when a group may start its next client (start_ms, concurrency, rate)
 * 2. the fault client state machine:
 *      CONNECTING -> SENDING (reading too, unless READ_NONE) -> READING -> PAUSING
 *      -> end action (CLOSED, or HELD); any state -> CLOSED on the server's EOF/RST
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "engine_core.h"
#include "http_response.h"

#define SEND_IOV_MAX 64

struct group {
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
    struct engine_timer timer; /* next start attempt */
    struct engine_group_timing timing;
    struct engine_group_stats stats;
    struct engine_group_evidence ev; /* bytes_* filled in by engine_group_evidence */
    uint64_t *received;              /* bytes read by each client, by index (spec->count) */
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
    struct engine_client base; /* first: the engine's view of it */
    enum client_state state;
    struct group *group;
    unsigned index;
    bool send_blocked, send_done, read_done, framer_broken;
    uint64_t send_len, sent; /* offsets in the stream: request x pipeline [+ tail forever] */
    uint64_t read_limit, received;
    uint64_t hold_ms;
    unsigned responses, responses_expected; /* expected 0: read until EOF */
    struct http_response framer;
    int status;            /* of its first response; -1 until known */
    uint64_t connected_ms; /* engine time it connected */
    bool request_counted, short_counted, mid_response, peeked;
    bool expect_counted; /* in ev.expect_met, expect_eof, expect_reset or expect_cut */
};

/* ---- seeded draws ----------------------------------------------------------------------- */

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

/* ---- 1. scheduling ---------------------------------------------------------------------- */

static void group_arm(struct group *g, uint64_t due_ms)
{
    if (!engine_timer_armed(&g->timer) || g->timer.node.deadline_ms > due_ms)
        engine_timer_arm(g->engine, &g->timer, due_ms);
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

/* Out of fds (ours or the system's): a failed attempt; retry the same client later instead
 * of spinning, and keep its seeded numbers. */
static void group_start_failed(struct group *g, int err)
{
    struct engine *e = g->engine;

    g->stats.started++;
    g->stats.connect_failed++;
    if (!engine_is_resource_shortage(err))
        engine_fail(e, err);
    group_arm(g, e->now_ms + START_RETRY_MS);
}

/* Start as many clients as start_ms, concurrency and rate allow now. */
static void group_pump(struct group *g)
{
    struct engine *e = g->engine;
    unsigned burst = 0;

    if (!engine_starting(e))
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
            group_start_failed(g, rc);
            return;
        }
        g->next_client++;
        if (g->spec->rate > 0)
            g->tokens -= 1.0;
    }
}

static void group_on_timer(struct engine_timer *t)
{
    group_pump(container_of(t, struct group, timer));
}

/* A client reached its end (closed or holding): its slot lets the next one start. */
static void group_release_slot(struct group *g)
{
    g->active--;
    if (engine_starting(g->engine) && g->next_client < g->spec->count)
        group_arm(g, g->engine->now_ms);
}

/* ---- evidence (struct engine_group_evidence) ------------------------------------------- */

/* The status of a client's first response, once: 0 when the answer is not HTTP. */
static void group_count_status(struct group *g, int status)
{
    struct engine_group_evidence *ev = &g->ev;

    for (size_t i = 0; i < ev->nstatuses; i++) {
        if (ev->statuses[i].status == status) {
            ev->statuses[i].clients++;
            return;
        }
    }
    if (ev->nstatuses == ENGINE_STATUS_MAX) {
        ev->status_other++;
        return;
    }
    ev->statuses[ev->nstatuses++] = (struct engine_status_count){.status = status, .clients = 1};
}

static void group_keep_first_bytes(struct group *g, const char *data, size_t len)
{
    if (g->ev.first_len > 0 || len == 0)
        return;
    g->ev.first_len = len < ENGINE_FIRST_BYTES ? len : ENGINE_FIRST_BYTES;
    memcpy(g->ev.first_bytes, data, g->ev.first_len);
}

static bool status_is_2xx(int status)
{
    return status >= 200 && status <= 299;
}

/* ---- 2. fault clients ------------------------------------------------------------------- */

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

    if (c->state == CLIENT_CONNECTING)
        events = EPOLLOUT;
    if (c->state == CLIENT_SENDING && c->send_blocked && client_spec(c)->send != SEND_TRICKLE)
        events |= EPOLLOUT; /* a trickle just tries again at its next tick */
    if ((c->state == CLIENT_SENDING || c->state == CLIENT_READING) && client_reads(c))
        events |= EPOLLIN;
    engine_client_watch(&c->base, events);
}

/* Close the socket (with an RST if reset) and park the client for the sweep. */
static void client_close(struct client *c, bool reset)
{
    bool had_slot = c->state != CLIENT_HELD;

    engine_client_close(&c->base, reset);
    c->state = CLIENT_CLOSED;
    if (had_slot)
        group_release_slot(c->group);
}

/* Keep the fd open, do no more I/O on it, and give back the concurrency slot. */
static void client_hold(struct client *c)
{
    engine_timer_cancel(c->base.engine, &c->base.timer);
    c->state = CLIENT_HELD;
    client_update_watch(c);
    c->group->stats.holding++;
    group_release_slot(c->group);
}

/* END_DROP: every packet of this connection is dropped from now on; the socket is kept
 * (tcp_conn_vanish says why). Without a sandbox it is held like END_HOLD. */
static void client_vanish(struct client *c)
{
    client_hold(c);
    if (engine_client_vanish(&c->base, &c->group->stats) &&
        (client_spec(c)->read != READ_BYTES || c->mid_response))
        c->group->ev.drop_applied++;
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

/* Wait hold_ms before the end action; with no wait, act now (not after the event batch:
 * a server would meanwhile push more data at a client that is about to go). */
static void client_pause(struct client *c)
{
    struct engine *e = c->base.engine;

    if (c->hold_ms == 0) {
        client_end_action(c);
        return;
    }
    c->state = CLIENT_PAUSING;
    client_update_watch(c);
    engine_timer_arm(e, &c->base.timer, e->now_ms + c->hold_ms);
}

/* The server closed or reset it: before its request was all sent? While it trickled, after
 * letting it trickle for a while (a header timeout, not a refusal)? */
static void client_count_send_cut(struct client *c)
{
    struct engine *e = c->base.engine;

    if (!c->request_counted && c->sent > 0)
        c->group->ev.send_cut++;
    if (c->state == CLIENT_SENDING && client_spec(c)->send == SEND_TRICKLE &&
        e->now_ms - c->connected_ms >= ENGINE_TRICKLE_TIMED_OUT_MS)
        c->group->ev.trickle_timed_out++;
}

/* expect = ...: a whole response just read; the expectation met with it? */
static void client_count_expect_met(struct client *c)
{
    unsigned expected = client_spec(c)->expect_responses;

    if (expected == 0 || c->expect_counted || c->responses < expected)
        return;
    c->expect_counted = true;
    c->group->ev.expect_met++;
}

enum expect_lost { LOST_EOF, LOST_RESET, LOST_CUT };

/* expect = ...: a client that sent its request and was still owed responses when the server
 * let go of it (EOF: with the bytes it had read; reset) or the fault phase ended (cut). */
static void client_count_expect_lost(struct client *c, enum expect_lost how)
{
    struct engine_group_evidence *ev = &c->group->ev;

    if (client_spec(c)->expect_responses == 0 || c->expect_counted || !c->request_counted ||
        !c->group->request_is_http)
        return;
    c->expect_counted = true;
    if (how == LOST_RESET) {
        ev->expect_reset++;
        ev->expect_reset_unread += c->received == 0;
        return;
    }
    if (how == LOST_CUT) {
        ev->expect_cut++;
        return;
    }
    if (ev->expect_eof++ == 0 || c->received < ev->expect_eof_bytes_min)
        ev->expect_eof_bytes_min = c->received;
    if (c->received > ev->expect_eof_bytes_max)
        ev->expect_eof_bytes_max = c->received;
}

/* ECONNRESET, EPIPE, or rarer ones (ETIMEDOUT): all mean the server let go. */
static void client_peer_error(struct client *c)
{
    client_count_expect_lost(c, LOST_RESET);
    client_count_send_cut(c);
    c->group->stats.peer_reset++;
    client_close(c, false);
}

/* READ_BYTES, its N bytes just read: in the middle of a 2xx response, as designed? */
static void client_count_mid_response(struct client *c)
{
    unsigned expected = c->responses_expected ? c->responses_expected : 1;

    if (c->group->request_is_http &&
        (!status_is_2xx(c->status) || c->framer_broken || c->responses >= expected))
        return;
    c->mid_response = true;
    c->group->ev.read_to_limit++;
}

/* After a read or the end of the send: is the script's read part done? */
static void client_check_read_done(struct client *c)
{
    const struct client_group *s = client_spec(c);

    if (s->read == READ_NONE) {
        c->read_done = true;
    } else if (s->read == READ_BYTES && c->received >= c->read_limit && !c->read_done) {
        c->read_done = true;
        client_count_mid_response(c);
    } else if (s->read == READ_ALL && c->send_done && c->responses_expected > 0 &&
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
    /* An error here shows up on the next read. */
    if (s->end == END_HALF_CLOSE && shutdown(c->base.conn.fd, SHUT_WR) == 0)
        c->group->ev.shut_wr++;
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

/* Its request (before a trickle's tail; a partial send's N bytes) all sent: counted once. */
static void client_count_sent(struct client *c)
{
    uint64_t request = client_request_total(c);

    if (c->send_len < request)
        request = c->send_len;
    if (!c->request_counted && request > 0 && c->sent >= request) {
        c->request_counted = true;
        c->group->ev.request_sent++;
    }
}

/* Send up to max bytes. Returns 0 (progress made, or the socket buffer is full) or -errno. */
static int client_send_some(struct client *c, uint64_t max)
{
    while (c->sent < c->send_len && max > 0) {
        struct iovec iov[SEND_IOV_MAX];
        size_t iovcnt = client_stream_iov(c, max, iov);
        ssize_t n = tcp_conn_sendv(&c->base.conn, iov, iovcnt);

        if (n == -EAGAIN) {
            c->send_blocked = true;
            return 0;
        }
        if (n < 0)
            return (int)n;
        c->send_blocked = false;
        c->sent += (uint64_t)n;
        c->group->stats.bytes_sent += (uint64_t)n;
        client_count_sent(c);
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
    struct engine *e = c->base.engine;
    int rc = client_send_some(c, s->trickle_bytes ? s->trickle_bytes : 1);

    if (rc < 0) {
        client_peer_error(c);
    } else if (c->sent == c->send_len) {
        client_send_finished(c);
    } else {
        unsigned interval = s->trickle_interval_ms ? s->trickle_interval_ms : 1;
        engine_timer_arm(e, &c->base.timer, e->now_ms + interval);
    }
}

static void client_connected(struct engine_client *base)
{
    struct client *c = container_of(base, struct client, base);

    engine_timer_cancel(c->base.engine, &c->base.timer);
    c->connected_ms = c->base.engine->now_ms;
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

static void client_connect_failed(struct engine_client *base, int err)
{
    struct client *c = container_of(base, struct client, base);

    (void)err; /* refused, reset or timed out: all count the same */
    c->group->stats.connect_failed++;
    client_close(c, false);
}

/* Count the whole responses in data (pipelined ones back to back). */
static void client_frame(struct client *c, const char *data, size_t len)
{
    while (len > 0 && !c->framer_broken) {
        size_t used;
        enum http_response_status st = http_response_feed(&c->framer, data, len, &used);

        data += used;
        len -= used;
        if (c->status < 0 && (c->framer.status > 0 || st == HTTP_RESPONSE_INVALID)) {
            c->status = st == HTTP_RESPONSE_INVALID ? 0 : c->framer.status;
            group_count_status(c->group, c->status);
        }
        if (st == HTTP_RESPONSE_COMPLETE) {
            c->responses++;
            client_count_expect_met(c);
            if (client_spec(c)->read == READ_ALL)
                c->group->stats.responses++;
            http_response_init(&c->framer, c->group->request_is_head);
        } else if (st == HTTP_RESPONSE_INVALID) {
            c->framer_broken = true; /* not HTTP after all: read on until EOF */
        }
    }
}

static void client_on_eof(struct engine_client *base)
{
    struct client *c = container_of(base, struct client, base);
    bool script_done = false;

    if (client_spec(c)->read == READ_ALL && c->send_done) {
        if (c->group->request_is_http && !c->framer_broken &&
            http_response_finish(&c->framer) == HTTP_RESPONSE_COMPLETE) {
            c->responses++; /* a body delimited by the close */
            c->group->stats.responses++;
            client_count_expect_met(c);
        }
        script_done = c->responses_expected == 0 || c->responses >= c->responses_expected;
    }
    if (script_done) {
        c->read_done = true;
        client_pause(c);
    } else {
        client_count_expect_lost(c, LOST_EOF);
        client_count_send_cut(c);
        c->group->stats.peer_closed++;
        client_close(c, false);
    }
}

static size_t client_read_want(const struct engine_client *base, size_t room)
{
    const struct client *c = container_of(base, struct client, base);

    if (!client_reads(c))
        return 0;
    if (client_spec(c)->read == READ_BYTES && c->read_limit - c->received < room)
        return (size_t)(c->read_limit - c->received);
    return room;
}

static void client_on_data(struct engine_client *base, const char *data, size_t len)
{
    struct client *c = container_of(base, struct client, base);

    struct group *g = c->group;

    c->received += len;
    g->stats.bytes_received += len;
    g->received[c->index] = c->received;
    group_keep_first_bytes(g, data, len);
    if (g->request_is_http)
        client_frame(c, data, len);
    if (client_spec(c)->read == READ_BYTES && g->request_is_http && !c->short_counted &&
        c->received < c->read_limit && c->responses_expected > 0 &&
        c->responses >= c->responses_expected) {
        c->short_counted = true; /* it waits for bytes that will never come */
        g->ev.short_response++;
    }
    client_check_read_done(c);
}

static void client_on_recv_error(struct engine_client *base, int err)
{
    (void)err;
    client_peer_error(container_of(base, struct client, base));
}

static void client_on_event(struct engine_client *base, uint32_t events)
{
    const uint32_t trouble = EPOLLERR | EPOLLHUP;
    struct client *c = container_of(base, struct client, base);

    switch (c->state) {
    case CLIENT_CONNECTING:
        engine_client_connect_event(base);
        break;
    case CLIENT_SENDING:
        if (client_reads(c) && (events & (EPOLLIN | trouble)))
            engine_client_read(&c->base);
        /* A trickle never flushes on EPOLLOUT: it sends at its own pace. */
        if (c->state == CLIENT_SENDING && c->send_blocked && client_spec(c)->send != SEND_TRICKLE &&
            (events & (EPOLLOUT | trouble)))
            client_send_pending(c);
        break;
    case CLIENT_READING:
        engine_client_read(&c->base);
        break;
    case CLIENT_PAUSING:
    case CLIENT_HELD:
    case CLIENT_CLOSED:
        break; /* not in the epoll set */
    }
}

static void client_on_timer(struct engine_client *base)
{
    struct client *c = container_of(base, struct client, base);

    switch (c->state) {
    case CLIENT_CONNECTING:
        client_connect_failed(base, -ETIMEDOUT); /* CONNECT_TIMEOUT_MS without an answer */
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

static void client_cut_off(struct engine_client *base)
{
    struct client *c = container_of(base, struct client, base);

    if (c->state == CLIENT_SENDING && client_spec(c)->send == SEND_TRICKLE)
        c->group->ev.trickling_at_cut++;
    if (c->state == CLIENT_SENDING || c->state == CLIENT_READING)
        client_count_expect_lost(c, LOST_CUT);
    if (c->state != CLIENT_HELD)
        client_hold(c);
}

/* A cable pull: gone with a reset the target never sees. Vanished ones are counted already. */
static void client_vanish_now(struct engine_client *base)
{
    struct client *c = container_of(base, struct client, base);
    bool reads_http = client_spec(c)->read != READ_NONE && c->group->request_is_http;

    if (c->state != CLIENT_CONNECTING && !base->conn.vanished &&
        (!reads_http || status_is_2xx(c->status)))
        c->group->ev.open_at_pull++;
    engine_client_count_pulled(base, c->state == CLIENT_HELD, &c->group->stats);
    client_close(c, true);
}

static void client_free(struct engine_client *base)
{
    free(base);
}

static const struct engine_client_ops fault_client_ops = {
    .on_event = client_on_event,
    .on_timer = client_on_timer,
    .cut_off = client_cut_off,
    .vanish = client_vanish_now,
    .free = client_free,
    .reset_at_free = true,
    .read_want = client_read_want,
    .on_data = client_on_data,
    .on_eof = client_on_eof,
    .on_recv_error = client_on_recv_error,
    .on_connected = client_connected,
    .on_connect_failed = client_connect_failed,
};

static void client_init(struct client *c, struct group *g)
{
    const struct client_group *s = g->spec;
    uint64_t seed = g->engine->cfg.seed;
    uint64_t request_total, partial;

    c->state = CLIENT_CONNECTING;
    c->group = g;
    c->index = g->next_client;
    c->status = -1;
    http_response_init(&c->framer, g->request_is_head);
    request_total = client_request_total(c);
    partial = engine_draw(seed, g->index, c->index, ENGINE_DRAW_SEND_BYTES, s->send_bytes);
    c->read_limit = engine_draw(seed, g->index, c->index, ENGINE_DRAW_READ_BYTES, s->read_bytes);
    c->hold_ms = engine_draw(seed, g->index, c->index, ENGINE_DRAW_HOLD_MS, s->hold_ms);
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

static void group_count_start(struct group *g)
{
    uint64_t now = g->engine->now_ms;

    g->stats.started++;
    if (++g->active > g->timing.max_active)
        g->timing.max_active = g->active;
    if (g->timing.first_start_ms == 0)
        g->timing.first_start_ms = now;
    g->timing.last_start_ms = now;
}

/* Open a socket and begin connecting client g->next_client. Returns 0 when the client was
 * started (even if its connect failed at once), -errno when it could not be (no fd). */
/* A client that closes as soon as its request is out (read = none, no hold, end = close):
 * its request and FIN go in one segment, so the server reads both in one go and answers a
 * client already gone, the fault meant. Sent apart, a fast server answered before the FIN now
 * and then: the client's close() then found the answer unread and sent an RST instead
 * (ECONNRESET, not EPIPE: a --bug sigpipe server survived 1 run of 16 with one client). */
static bool client_closes_at_once(const struct client *c)
{
    const struct client_group *s = client_spec(c);
    return s->send != SEND_NONE && s->send != SEND_TRICKLE && s->read == READ_NONE &&
           c->hold_ms == 0 && s->end == END_CLOSE;
}

static int client_start(struct group *g)
{
    struct engine *e = g->engine;
    struct tcp_conn_options opt = {.rcvbuf = g->spec->rcvbuf, .source = g->spec->host};
    struct client *c;
    void *mem;
    int rc = engine_client_open(e, sizeof(*c), &fault_client_ops, &mem);

    if (rc < 0)
        return rc;
    c = mem;
    client_init(c, g);
    group_count_start(g);
    opt.fin_with_data = client_closes_at_once(c);
    if (!opt.source.s_addr)
        opt.source = e->cfg.source;
    engine_client_connect(&c->base, &opt, CONNECT_TIMEOUT_MS);
    return 0;
}

/* ---- the groups' part of the engine API ------------------------------------------------- */

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
    if (engine_timer_reserve(e) < 0)
        return -ENOMEM;
    g = calloc(1, sizeof(*g));
    if (g)
        g->received = calloc(group->count ? group->count : 1, sizeof(*g->received));
    if (!g || !g->received) {
        free(g);
        return -ENOMEM;
    }
    e->now_ms = engine_now_ms();
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
    engine_timer_init(&g->timer, group_on_timer);
    e->timer_owners++;
    e->groups[e->ngroups++] = g;
    if (group->count > 0 && engine_starting(e))
        group_arm(g, g->start_at_ms);
    return (int)g->index;
}

void engine_group_stats(const struct engine *e, size_t group_index, struct engine_group_stats *out)
{
    if (group_index < e->ngroups)
        *out = e->groups[group_index]->stats;
    else
        memset(out, 0, sizeof(*out));
}

/* Min, median and max of the bytes read by the clients started (none: all 0). */
static void group_bytes_spread(const struct group *g, struct engine_group_evidence *out)
{
    engine_bytes_spread(g->received, g->next_client, &out->bytes_min, &out->bytes_median,
                        &out->bytes_max);
}

void engine_group_evidence(const struct engine *e, size_t group_index,
                           struct engine_group_evidence *out)
{
    memset(out, 0, sizeof(*out));
    if (group_index >= e->ngroups)
        return;
    *out = e->groups[group_index]->ev;
    group_bytes_spread(e->groups[group_index], out);
}

/* A client that never reads looks at its receive queue without taking anything. */
static void client_peek_unread(struct client *c, char *buf, size_t cap)
{
    struct group *g = c->group;
    ssize_t n = recv(c->base.conn.fd, buf, cap, MSG_PEEK | MSG_DONTWAIT);
    bool ok = !g->request_is_http;

    if (n <= 0)
        return; /* nothing yet (or an error): it may look again later */
    c->peeked = true;
    g->ev.unread_any++;
    group_keep_first_bytes(g, buf, (size_t)n);
    if (g->request_is_http) {
        struct http_response r;
        size_t used;
        enum http_response_status st;

        http_response_init(&r, g->request_is_head);
        st = http_response_feed(&r, buf, (size_t)n, &used);
        if (c->status < 0 && (r.status > 0 || st == HTTP_RESPONSE_INVALID)) {
            c->status = st == HTTP_RESPONSE_INVALID ? 0 : r.status;
            group_count_status(g, c->status);
        }
        ok = status_is_2xx(c->status);
    }
    if (ok)
        g->ev.unread_2xx++;
}

void engine_peek_unread(struct engine *e)
{
    struct cf_list *pos, *tmp;

    cf_list_for_each_safe(pos, tmp, &e->live)
    {
        struct engine_client *base = container_of(pos, struct engine_client, link);
        struct client *c = container_of(base, struct client, base);

        if (base->ops != &fault_client_ops || c->peeked || base->conn.fd < 0 ||
            base->conn.vanished || client_spec(c)->read != READ_NONE ||
            c->state == CLIENT_CONNECTING || c->state == CLIENT_CLOSED)
            continue;
        client_peek_unread(c, e->buf, 512);
    }
}

void engine_group_timing(const struct engine *e, size_t group_index,
                         struct engine_group_timing *out)
{
    if (group_index < e->ngroups)
        *out = e->groups[group_index]->timing;
    else
        memset(out, 0, sizeof(*out));
}

/* The fault client behind an engine client, or NULL for another kind. */
static struct client *fault_client_of(struct cf_list *pos)
{
    struct engine_client *base = container_of(pos, struct engine_client, link);

    return base->ops == &fault_client_ops ? container_of(base, struct client, base) : NULL;
}

/* A trickle with a tail sends for ever: its script has no end to wait for. */
static bool client_trickles_on(const struct client *c)
{
    return c->state == CLIENT_SENDING && client_spec(c)->send == SEND_TRICKLE &&
           c->send_len == UINT64_MAX;
}

static bool client_in_script(const struct client *c)
{
    return (c->state == CLIENT_CONNECTING || c->state == CLIENT_SENDING ||
            c->state == CLIENT_READING || c->state == CLIENT_PAUSING) &&
           !client_trickles_on(c);
}

bool engine_scripts_done(const struct engine *e)
{
    struct cf_list *pos, *tmp;

    cf_list_for_each_safe(pos, tmp, &e->live)
    {
        const struct client *c = fault_client_of(pos);
        if (c && client_in_script(c))
            return false;
    }
    return true;
}

void engine_close_unfinished(struct engine *e)
{
    struct cf_list *pos, *tmp;

    e->now_ms = engine_now_ms();
    cf_list_for_each_safe(pos, tmp, &e->live)
    {
        struct client *c = fault_client_of(pos);
        if (!c || !client_in_script(c))
            continue;
        if (c->state == CLIENT_PAUSING) {
            client_end_action(c); /* its fault is done; only its wait is cut short */
            continue;
        }
        client_count_expect_lost(c, LOST_CUT);
        c->group->ev.not_exercised++;
        client_close(c, true);
    }
}

uint64_t engine_release_held(struct engine *e)
{
    struct cf_list *pos, *tmp;
    uint64_t n = 0;

    cf_list_for_each_safe(pos, tmp, &e->live)
    {
        struct client *c = fault_client_of(pos);
        if (!c || c->state != CLIENT_HELD || c->base.conn.vanished)
            continue;
        c->group->stats.holding--;
        c->group->stats.released++;
        client_close(c, false); /* a held client has no slot to give back */
        n++;
    }
    return n;
}

bool fault_groups_done(const struct engine *e)
{
    for (size_t i = 0; i < e->ngroups; i++) {
        const struct group *g = e->groups[i];
        if ((g->next_client < g->spec->count && engine_starting(e)) || g->active > 0)
            return false;
    }
    return true;
}

void fault_groups_cut_off(struct engine *e)
{
    for (size_t i = 0; i < e->ngroups; i++)
        engine_timer_cancel(e, &e->groups[i]->timer);
}

void fault_groups_free(struct engine *e)
{
    for (size_t i = 0; i < e->ngroups; i++) {
        free(e->groups[i]->received);
        free(e->groups[i]);
    }
    free(e->groups);
}
