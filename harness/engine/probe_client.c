/* probe_client: probes (see engine_core.h for the client kinds): connect, send a request,
 * read one response and validate it, all within one timeout.
 *   CONNECTING -> SENDING (reading too: the server may answer early) -> READING -> FINISHED
 * A probe's failure is never an engine error: it finishes with a message saying why.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "cf_time.h"
#include "engine_core.h"
#include "http_response.h"

enum probe_state { PROBE_CONNECTING, PROBE_SENDING, PROBE_READING, PROBE_FINISHED };

struct probe {
    struct engine_client base; /* first: the engine's view of it */
    enum probe_state state;
    char *request, *expect;
    size_t request_len, sent, expect_len;
    uint64_t received, timeout_ms, started_us;
    struct http_response framer;
    struct probe_result *out;
};

static struct probe *probe_of(struct engine_client *base)
{
    return container_of(base, struct probe, base);
}

__attribute__((format(printf, 3, 4))) static void probe_finish(struct probe *p, bool ok,
                                                               const char *fmt, ...)
{
    va_list ap;

    p->out->done = true;
    p->out->ok = ok;
    p->out->latency_us = cf_now_us() - p->started_us;
    p->out->error[0] = '\0';
    p->out->status = p->expect ? 0 : p->framer.status;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(p->out->error, sizeof(p->out->error), fmt, ap);
        va_end(ap);
    }
    p->state = PROBE_FINISHED;
    engine_client_close(&p->base, false); /* freed at the next sweep */
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

static void probe_on_timeout(struct engine_client *base)
{
    struct probe *p = probe_of(base);
    char where[112];

    p->out->timed_out = true;
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

static void probe_on_eof(struct engine_client *base)
{
    struct probe *p = probe_of(base);
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

/* With an expected prefix: compare the new bytes (data[0] is at received - len). */
static void probe_check_prefix(struct probe *p, const char *data, size_t len)
{
    uint64_t at = p->received - len;

    for (size_t i = 0; i < len && at + i < p->expect_len; i++)
        if (data[i] != p->expect[at + i]) {
            probe_finish(p, false, "reply differs from the expected bytes at byte %llu",
                         (unsigned long long)(at + i));
            return;
        }
    if (p->received >= p->expect_len)
        probe_finish(p, true, NULL);
}

/* Check new reply bytes; finishes the probe once the verdict is known. */
static void probe_check(struct probe *p, const char *data, size_t len)
{
    struct http_response *r = &p->framer;
    enum http_response_status st;
    size_t used;

    if (p->expect) {
        probe_check_prefix(p, data, len);
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

static size_t probe_read_want(const struct engine_client *base, size_t room)
{
    return container_of(base, struct probe, base)->state == PROBE_FINISHED ? 0 : room;
}

static void probe_on_data(struct engine_client *base, const char *data, size_t len)
{
    struct probe *p = probe_of(base);

    p->received += len;
    probe_check(p, data, len);
}

static void probe_on_recv_error(struct engine_client *base, int err)
{
    probe_finish(probe_of(base), false, "recv: %s", strerror(-err));
}

static void probe_send(struct probe *p)
{
    int rc = tcp_conn_send_rest(&p->base.conn, p->request, p->request_len, &p->sent);

    if (rc == -EAGAIN) {
        engine_client_watch(&p->base, EPOLLIN | EPOLLOUT);
        return;
    }
    if (rc < 0) {
        engine_client_read(&p->base); /* the server may have answered (413, 503) before it closed */
        if (p->state != PROBE_FINISHED)
            probe_finish(p, false, "send: %s", strerror(-rc));
        return;
    }
    p->state = PROBE_READING;
    if (p->expect && p->expect_len == 0)
        probe_finish(p, true, NULL); /* nothing to wait for */
    else
        engine_client_watch(&p->base, EPOLLIN);
}

static void probe_on_event(struct engine_client *base, uint32_t events)
{
    struct probe *p = probe_of(base);

    switch (p->state) {
    case PROBE_CONNECTING:
        engine_client_connect_event(base);
        break;
    case PROBE_SENDING:
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            engine_client_read(&p->base);
        if (p->state == PROBE_SENDING)
            probe_send(p);
        break;
    case PROBE_READING:
        engine_client_read(&p->base);
        break;
    case PROBE_FINISHED:
        break;
    }
}

static void probe_connected(struct engine_client *base)
{
    struct probe *p = probe_of(base);

    p->state = PROBE_SENDING;
    probe_send(p);
}

static void probe_connect_failed(struct engine_client *base, int err)
{
    probe_finish(probe_of(base), false, "connect: %s", strerror(-err));
}

static void probe_free(struct engine_client *base)
{
    struct probe *p = probe_of(base);

    free(p->request);
    free(p->expect);
    free(p);
}

static const struct engine_client_ops probe_ops = {
    .on_event = probe_on_event,
    .on_timer = probe_on_timeout,
    .free = probe_free, /* no cut_off or vanish: probes go on through both */
    .reset_at_free = false,
    .read_want = probe_read_want,
    .on_data = probe_on_data,
    .on_eof = probe_on_eof,
    .on_recv_error = probe_on_recv_error,
    .on_connected = probe_connected,
    .on_connect_failed = probe_connect_failed,
};

/* Socket and connect; failures finish the probe with a message, never an engine error. */
static void probe_connect(struct probe *p)
{
    struct engine *e = p->base.engine;
    const struct tcp_conn_options opt = {.rcvbuf = 0}; /* from any address: not a fault */
    int rc = tcp_conn_open(&p->base.conn, e->epfd);

    if (rc < 0) {
        probe_finish(p, false, "socket: %s", strerror(-rc));
        return;
    }
    engine_timer_arm(e, &p->base.timer, e->now_ms + p->timeout_ms);
    engine_client_connect(&p->base, &opt, 0);
}

/* Copies of the caller's buffers, which need not outlive engine_probe(). 0 or -ENOMEM. */
static int probe_copy_request(struct probe *p, const char *request, size_t request_len,
                              const char *expect, size_t expect_len)
{
    p->request = malloc(request_len ? request_len : 1);
    p->expect = expect ? malloc(expect_len ? expect_len : 1) : NULL;
    if (!p->request || (expect && !p->expect))
        return -ENOMEM;
    memcpy(p->request, request, request_len);
    if (expect)
        memcpy(p->expect, expect, expect_len);
    p->request_len = request_len;
    p->expect_len = expect_len;
    return 0;
}

int engine_probe(struct engine *e, const char *request, size_t request_len, const char *expect,
                 size_t expect_len, uint64_t timeout_ms, struct probe_result *out)
{
    struct probe *p;

    memset(out, 0, sizeof(*out));
    p = engine_client_new(e, sizeof(*p), &probe_ops);
    if (!p)
        return -ENOMEM;
    if (probe_copy_request(p, request, request_len, expect, expect_len) < 0) {
        engine_client_discard(&p->base);
        return -ENOMEM;
    }
    p->state = PROBE_CONNECTING;
    p->timeout_ms = timeout_ms;
    p->out = out;
    http_response_init(&p->framer, http_request_is_head(request, request_len));
    e->now_ms = engine_now_ms();
    p->started_us = cf_now_us();
    probe_connect(p);
    return 0;
}
