/* replay_client: the client side of a capture's flows (struct replay_flow, pcap_flows.h),
 * replayed on their captured times (see engine_core.h for the client kinds).
 *
 * The replay starts its flows in capture order at their times. A replay client:
 *   CONNECTING -> RUNNING (segments sent at their captured times, reading) -> the captured
 *   end: CLOSED, or HELD (stopped reading, or vanished: silenced and kept like a fault
 *   client's END_DROP)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "engine_core.h"
#include "pcap_flows.h"

/* A replayed flow waits this long past its captured end for the server bytes it had received
 * by then (a different server may send less, or be stuck), then ends anyway. */
#define REPLAY_END_WAIT_MS 2000

enum replay_state { REPLAY_CONNECTING, REPLAY_RUNNING, REPLAY_HELD, REPLAY_CLOSED };

struct replay {
    struct engine *engine;
    const struct replay_flow *flows;
    size_t n, next; /* next: the next flow to start */
    double speed;
    unsigned active; /* clients connecting or running (not held, not closed) */
    unsigned open;   /* clients with a socket (held ones too): evidence.peak_open */
    uint64_t base_ms;
    struct engine_timer timer; /* the next flow's start */
    struct engine_group_stats stats;
    struct engine_replay_evidence evidence;
    uint64_t *received; /* bytes each flow read from the server, by flow index */
};

struct replay_client {
    struct engine_client base; /* first: the engine's view of it */
    enum replay_state state;
    struct replay *replay;
    const struct replay_flow *flow;
    uint64_t start_ms; /* when it connected (or was due to): its segments' time base */
    size_t seg;        /* next segment to send */
    size_t seg_sent;   /* bytes of it sent so far */
    uint64_t received;
    bool send_blocked, eof, ended;
    bool as_captured; /* counted in evidence.as_captured */
};

static uint64_t replay_scaled_ms(const struct replay *r, uint64_t us)
{
    return replay_speed_ms(r->speed, us);
}

static struct replay_client *replay_client_of(struct engine_client *base)
{
    return container_of(base, struct replay_client, base);
}

static bool replay_reads(const struct replay_client *c)
{
    const struct replay_flow *f = c->flow;

    if (c->state != REPLAY_RUNNING || c->eof)
        return false;
    /* a client that stopped reading takes what it took in the capture, no more */
    return f->end != FLOW_END_STOP_READING || c->received < f->server_bytes_before_end;
}

static void replay_count_received(struct replay_client *c, uint64_t n)
{
    struct replay *r = c->replay;
    c->received += n;
    r->stats.bytes_received += n;
    r->received[c->flow - r->flows] += n;
}

static void replay_update_watch(struct replay_client *c)
{
    uint32_t events = 0;

    if (c->state == REPLAY_CONNECTING || (c->state == REPLAY_RUNNING && c->send_blocked))
        events |= EPOLLOUT;
    if (replay_reads(c))
        events |= EPOLLIN;
    engine_client_watch(&c->base, events);
}

static void replay_close(struct replay_client *c, bool reset)
{
    struct replay *r = c->replay;

    if (c->state != REPLAY_HELD)
        r->active--; /* done with its part: the replay may be over */
    r->open--;
    engine_client_close(&c->base, reset);
    c->state = REPLAY_CLOSED;
}

static void replay_hold(struct replay_client *c)
{
    engine_timer_cancel(c->base.engine, &c->base.timer);
    c->state = REPLAY_HELD;
    replay_update_watch(c);
    c->replay->stats.holding++;
    c->replay->active--;
}

/* A flow the server ended in the capture, ended by the server here too, after it had sent its
 * first segment (the server saw what its client did; a timeout may come a segment sooner), or
 * still waiting for that end at the cut-off with every segment sent. */
static void replay_server_ended(struct replay_client *c)
{
    if (c->flow->end != FLOW_END_BY_SERVER || c->as_captured || (c->seg == 0 && c->flow->nsegs))
        return;
    c->as_captured = true;
    c->replay->evidence.as_captured++;
}

static void replay_peer_error(struct replay_client *c)
{
    c->replay->stats.peer_reset++;
    replay_server_ended(c);
    if (c->flow->end == FLOW_END_BY_SERVER && c->seg == c->flow->nsegs)
        c->replay->stats.ended++; /* the server ended it, as in the capture */
    replay_close(c, false);
}

/* Close with a FIN: take what is already there first, as the client had, or close() would
 * send an RST for the unread bytes. */
static void replay_close_gently(struct replay_client *c)
{
    struct engine *e = c->base.engine;

    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = tcp_conn_recv(&c->base.conn, e->buf, sizeof(e->buf));
        if (n <= 0)
            break;
        replay_count_received(c, (uint64_t)n);
    }
    replay_close(c, false);
}

/* FLOW_END_SILENT: vanish like a fault client's END_DROP (the fd is kept, see
 * tcp_conn_vanish); without a sandbox, held. */
static void replay_vanish(struct replay_client *c)
{
    replay_hold(c);
    engine_client_vanish(&c->base, &c->replay->stats);
}

static void replay_end_action(struct replay_client *c)
{
    struct engine_replay_evidence *ev = &c->replay->evidence;
    c->replay->stats.ended++;
    c->ended = true;
    if (c->received >= c->flow->server_bytes_before_end) {
        c->as_captured = true;
        ev->as_captured++;
    } else {
        ev->short_of_bytes++;
    }
    switch (c->flow->end) {
    case FLOW_END_CLOSE:
        replay_close_gently(c);
        break;
    case FLOW_END_HALF_CLOSE: /* then read until the server closes */
        shutdown(c->base.conn.fd, SHUT_WR);
        engine_timer_cancel(c->base.engine, &c->base.timer);
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
        replay_vanish(c);
        break;
    case FLOW_END_BY_SERVER:
        break; /* not reached: these wait for the server (replay_advance) */
    }
}

/* Send the rest of the current segment in one send(). 0, or -errno from the server's side. */
static int replay_send_segment(struct replay_client *c)
{
    const struct flow_segment *s = &c->flow->segs[c->seg];
    size_t before = c->seg_sent;
    int rc = tcp_conn_send_rest(&c->base.conn, c->flow->data + s->offset, s->len, &c->seg_sent);

    c->replay->stats.bytes_sent += c->seg_sent - before;
    c->send_blocked = rc == -EAGAIN;
    if (rc < 0)
        return rc == -EAGAIN ? 0 : rc;
    c->seg++;
    c->seg_sent = 0;
    c->replay->evidence.sent_all += c->seg == c->flow->nsegs;
    return 0;
}

/* All segments sent: end as captured once its time has come and the server sent what it had
 * by then (or REPLAY_END_WAIT_MS later anyway). */
static void replay_maybe_end(struct replay_client *c)
{
    struct engine *e = c->base.engine;
    const struct replay_flow *f = c->flow;
    bool got_enough = c->eof || c->received >= f->server_bytes_before_end;
    uint64_t due = c->start_ms + replay_scaled_ms(c->replay, f->end_us);

    if (e->now_ms < due)
        engine_timer_arm(e, &c->base.timer, due);
    else if (!got_enough && e->now_ms < due + REPLAY_END_WAIT_MS)
        engine_timer_arm(e, &c->base.timer, due + REPLAY_END_WAIT_MS);
    else
        replay_end_action(c);
}

/* Do whatever is due: the next segments, then the end. Arms the timer for what comes next. */
static void replay_advance(struct replay_client *c)
{
    struct engine *e = c->base.engine;
    const struct replay_flow *f = c->flow;

    while (c->state == REPLAY_RUNNING && c->seg < f->nsegs && !c->send_blocked) {
        uint64_t due = c->start_ms + replay_scaled_ms(c->replay, f->segs[c->seg].time_us);
        if (e->now_ms < due) {
            engine_timer_arm(e, &c->base.timer, due);
            break;
        }
        if (replay_send_segment(c) < 0) {
            replay_peer_error(c);
            return;
        }
    }
    if (c->state == REPLAY_RUNNING && c->seg == f->nsegs && !c->ended &&
        f->end != FLOW_END_BY_SERVER)
        replay_maybe_end(c);
    if (c->state == REPLAY_RUNNING)
        replay_update_watch(c);
}

static void replay_on_eof(struct engine_client *base)
{
    struct replay_client *c = replay_client_of(base);

    c->eof = true;
    replay_server_ended(c);
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

static size_t replay_read_want(const struct engine_client *base, size_t room)
{
    const struct replay_client *c = container_of(base, struct replay_client, base);
    const struct replay_flow *f = c->flow;

    if (!replay_reads(c))
        return 0;
    if (f->end == FLOW_END_STOP_READING && f->server_bytes_before_end - c->received < room)
        return (size_t)(f->server_bytes_before_end - c->received);
    return room;
}

static void replay_on_data(struct engine_client *base, const char *data, size_t len)
{
    struct replay_client *c = replay_client_of(base);

    (void)data; /* what the server says is not checked, only taken */
    replay_count_received(c, len);
}

static void replay_on_recv_error(struct engine_client *base, int err)
{
    (void)err;
    replay_peer_error(replay_client_of(base));
}

static void replay_read(struct replay_client *c)
{
    if (engine_client_read(&c->base))
        replay_advance(c);
}

static void replay_connected(struct engine_client *base)
{
    struct replay_client *c = replay_client_of(base);

    engine_timer_cancel(c->base.engine, &c->base.timer);
    c->replay->stats.connected++;
    c->replay->evidence.sent_all += c->flow->nsegs == 0; /* nothing to send */
    c->state = REPLAY_RUNNING;
    replay_advance(c);
}

static void replay_connect_failed(struct engine_client *base, int err)
{
    struct replay_client *c = replay_client_of(base);

    (void)err; /* refused, reset or timed out: all count the same */
    c->replay->stats.connect_failed++;
    replay_close(c, false);
}

static void replay_on_event(struct engine_client *base, uint32_t events)
{
    struct replay_client *c = replay_client_of(base);

    if (c->state == REPLAY_CONNECTING) {
        engine_client_connect_event(base);
        return;
    }
    if (c->state != REPLAY_RUNNING)
        return;
    if (replay_reads(c) && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        replay_read(c);
    } else if (events & (EPOLLERR | EPOLLHUP)) { /* not reading: find out what happened */
        if (c->eof || tcp_conn_error(&c->base.conn) < 0)
            replay_peer_error(c);
        else
            replay_on_eof(&c->base);
        return;
    }
    if (c->state == REPLAY_RUNNING && c->send_blocked && (events & EPOLLOUT)) {
        c->send_blocked = false;
        replay_advance(c);
    }
}

static void replay_on_timer(struct engine_client *base)
{
    struct replay_client *c = replay_client_of(base);

    if (c->state == REPLAY_CONNECTING)
        replay_connect_failed(base, -ETIMEDOUT); /* CONNECT_TIMEOUT_MS without an answer */
    else if (c->state == REPLAY_RUNNING)
        replay_advance(c);
}

static void replay_client_cut_off(struct engine_client *base)
{
    struct replay_client *c = replay_client_of(base);

    /* Its bytes all sent and still waiting for the server to end it when judged: the captured
     * client's part happened; this server's timeout is longer (nginx's 60 s header timeout
     * for a capture made against a 1 s one), which the checks judge. */
    if (c->state == REPLAY_RUNNING && c->seg == c->flow->nsegs)
        replay_server_ended(c);
    if (c->state != REPLAY_HELD)
        replay_hold(c);
}

/* A cable pull: gone with a reset the target never sees. Vanished ones are counted already. */
static void replay_client_vanish_now(struct engine_client *base)
{
    struct replay_client *c = replay_client_of(base);

    engine_client_count_pulled(base, c->state == REPLAY_HELD, &c->replay->stats);
    replay_close(c, true);
}

static void replay_client_free(struct engine_client *base)
{
    free(replay_client_of(base));
}

static const struct engine_client_ops replay_client_ops = {
    .on_event = replay_on_event,
    .on_timer = replay_on_timer,
    .cut_off = replay_client_cut_off,
    .vanish = replay_client_vanish_now,
    .free = replay_client_free,
    .reset_at_free = true,
    .read_want = replay_read_want,
    .on_data = replay_on_data,
    .on_eof = replay_on_eof,
    .on_recv_error = replay_on_recv_error,
    .on_connected = replay_connected,
    .on_connect_failed = replay_connect_failed,
};

static void replay_client_init(struct replay_client *c, struct replay *r)
{
    c->state = REPLAY_CONNECTING;
    c->replay = r;
    c->flow = &r->flows[r->next];
    c->start_ms = r->base_ms + replay_scaled_ms(r, c->flow->start_us);
    r->active++;
    if (++r->open > r->evidence.peak_open)
        r->evidence.peak_open = r->open;
    r->stats.started++;
}

/* Open a socket for flow r->next and begin connecting. -errno when no fd could be had. */
static int replay_start(struct replay *r)
{
    struct engine *e = r->engine;
    const struct replay_flow *f = &r->flows[r->next];
    struct tcp_conn_options opt = {.source = e->cfg.source};
    struct replay_client *c;
    void *mem;
    int rc = engine_client_open(e, sizeof(*c), &replay_client_ops, &mem);

    if (rc < 0)
        return rc;
    c = mem;
    replay_client_init(c, r);
    /* A client that stopped reading had a window of this size when it closed: the same
     * receive buffer lets the server fill it as far as it did then. */
    if (f->end == FLOW_END_STOP_READING && f->client_window > 0)
        opt.rcvbuf = f->client_window < INT32_MAX / 2 ? (int)f->client_window : INT32_MAX / 2;
    engine_client_connect(&c->base, &opt, CONNECT_TIMEOUT_MS);
    return 0;
}

/* Start every flow whose time has come; arm the timer for the next one. */
static void replay_pump(struct replay *r)
{
    struct engine *e = r->engine;
    unsigned burst = 0;

    while (engine_starting(e) && r->next < r->n) {
        uint64_t due = r->base_ms + replay_scaled_ms(r, r->flows[r->next].start_us);
        int rc;

        if (e->now_ms < due || burst++ == START_BURST) {
            engine_timer_arm(e, &r->timer, due > e->now_ms ? due : e->now_ms + 1);
            return;
        }
        rc = replay_start(r);
        if (rc < 0) { /* out of fds: try the same flow again a bit later */
            if (!engine_is_resource_shortage(rc))
                engine_fail(e, rc);
            engine_timer_arm(e, &r->timer, e->now_ms + START_RETRY_MS);
            return;
        }
        r->next++;
    }
}

static void replay_on_pump_timer(struct engine_timer *t)
{
    replay_pump(container_of(t, struct replay, timer));
}

/* ---- the replay's part of the engine API ------------------------------------------------ */

int engine_add_replay(struct engine *e, const struct replay_flow *flows, size_t n, double speed)
{
    struct replay *r;

    if (e->replay)
        return -EBUSY;
    if (engine_timer_reserve(e) < 0)
        return -ENOMEM;
    r = calloc(1, sizeof(*r));
    if (r)
        r->received = calloc(n ? n : 1, sizeof(*r->received));
    if (!r || !r->received) {
        free(r);
        return -ENOMEM;
    }
    e->now_ms = engine_now_ms();
    r->engine = e;
    r->flows = flows;
    r->n = n;
    r->speed = speed;
    r->base_ms = e->now_ms;
    engine_timer_init(&r->timer, replay_on_pump_timer);
    e->timer_owners++;
    e->replay = r;
    if (n > 0 && engine_starting(e))
        engine_timer_arm(e, &r->timer, e->now_ms);
    return 0;
}

void engine_replay_stats(const struct engine *e, struct engine_group_stats *out)
{
    if (e->replay)
        *out = e->replay->stats;
    else
        memset(out, 0, sizeof(*out));
}

void engine_replay_evidence(const struct engine *e, struct engine_replay_evidence *out)
{
    memset(out, 0, sizeof(*out));
    if (!e->replay)
        return;
    *out = e->replay->evidence;
    engine_bytes_spread(e->replay->received, e->replay->next, &out->bytes_min, &out->bytes_median,
                        &out->bytes_max);
}

bool replay_done(const struct replay *r)
{
    return r->next == r->n && r->active == 0;
}

void replay_cut_off(struct replay *r)
{
    struct cf_list *pos, *tmp;

    engine_timer_cancel(r->engine, &r->timer);
    cf_list_for_each_safe(pos, tmp, &r->engine->live)
    {
        struct engine_client *base = container_of(pos, struct engine_client, link);
        if (base->ops == &replay_client_ops)
            replay_client_cut_off(base);
    }
}

void replay_free(struct replay *r)
{
    if (r)
        free(r->received);
    free(r);
}
