/* preflight: one GET per path the scenarios use, before the first scenario (preflight.h). */
#include "preflight.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cf_escape.h"
#include "engine.h"
#include "http_response.h"
#include "run_internal.h"
#include "scenario.h"
#include "tcp_conn.h"

#define PREFLIGHT_READ_CHUNK 16384
#define PREFLIGHT_SHOWN      40 /* bytes of a non-HTTP answer quoted in the message */

/* One GET and what came back. */
struct exchange {
    struct tcp_conn c;
    int epfd;
    uint64_t deadline_ms;
    volatile sig_atomic_t *interrupted;
    struct http_response r;
    char first[PREFLIGHT_SHOWN]; /* the answer's first bytes, for a message */
    size_t first_len;
    uint64_t bytes; /* of the answer, head included */
    bool eof;
};

/* Wait for events on the exchange's socket: 1 ready, 0 deadline passed, -EINTR interrupted. */
static int exchange_wait(struct exchange *x, uint32_t events)
{
    struct epoll_event ev;
    if (tcp_conn_watch(&x->c, events) < 0)
        return 0;
    for (;;) {
        if (*x->interrupted)
            return -EINTR;
        uint64_t now = engine_now_ms();
        if (now >= x->deadline_ms)
            return 0;
        uint64_t left = x->deadline_ms - now;
        int rc = epoll_wait(x->epfd, &ev, 1, left < 100 ? (int)left : 100);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 0;
    }
}

/* Connect from `from` and send the request. 0, -EINTR, or -errno (-ETIMEDOUT). */
static int exchange_send(struct exchange *x, const struct sockaddr_in *to, struct in_addr from,
                         const char *req, size_t len)
{
    struct tcp_conn_options opt = {.source = from};
    int rc = tcp_conn_open(&x->c, x->epfd);
    if (rc == 0)
        rc = tcp_conn_connect(&x->c, to, &opt);
    if (rc == -EINPROGRESS) {
        int w = exchange_wait(x, EPOLLOUT);
        rc = w < 0 ? w : w == 0 ? -ETIMEDOUT : tcp_conn_error(&x->c);
    }
    size_t done = 0;
    while (rc == 0 && (rc = tcp_conn_send_rest(&x->c, req, len, &done)) == -EAGAIN) {
        int w = exchange_wait(x, EPOLLOUT);
        rc = w < 0 ? w : w == 0 ? -ETIMEDOUT : 0;
    }
    return rc;
}

/* Enough seen to judge: an answer other than 2xx, or a 2xx with the body needed. */
static bool exchange_enough(const struct exchange *x, uint64_t min_bytes)
{
    const struct http_response *r = &x->r;
    if (r->step == HTTP_STEP_INVALID || r->step == HTTP_STEP_DONE)
        return true;
    if (r->status < 200) /* no status line yet, or an interim 1xx */
        return false;
    if (r->status > 299) /* its reason phrase came with the status line */
        return true;
    return r->step != HTTP_STEP_HEADERS && r->body_bytes >= min_bytes;
}

/* Feed bytes to the framer; an interim 1xx answer is skipped. */
static void exchange_feed(struct exchange *x, const char *buf, size_t len)
{
    size_t n = len;
    if (x->first_len < sizeof(x->first)) {
        size_t k = sizeof(x->first) - x->first_len < len ? sizeof(x->first) - x->first_len : len;
        memcpy(x->first + x->first_len, buf, k);
        x->first_len += k;
    }
    x->bytes += len;
    while (n > 0) {
        size_t used = 0;
        enum http_response_status st = http_response_feed(&x->r, buf, n, &used);
        if (st != HTTP_RESPONSE_COMPLETE || x->r.status >= 200)
            return;
        http_response_init(&x->r, false); /* 100 Continue and friends: the answer follows */
        buf += used;
        n -= used;
    }
}

/* Read until exchange_enough, EOF or the deadline. 0, -EINTR, -ETIMEDOUT or -errno. */
static int exchange_read(struct exchange *x, uint64_t min_bytes)
{
    char buf[PREFLIGHT_READ_CHUNK];
    http_response_init(&x->r, false);
    while (!exchange_enough(x, min_bytes)) {
        ssize_t got = tcp_conn_recv(&x->c, buf, sizeof(buf));
        if (got == 0) {
            x->eof = true;
            http_response_finish(&x->r);
            return 0;
        }
        if (got > 0) {
            exchange_feed(x, buf, (size_t)got);
            continue;
        }
        if (got != -EAGAIN)
            return (int)got;
        int w = exchange_wait(x, EPOLLIN);
        if (w <= 0)
            return w < 0 ? w : -ETIMEDOUT;
    }
    return 0;
}

/* "1 MiB", "16 MiB", or "1000 bytes". */
static const char *size_text(uint64_t n, char *buf, size_t len)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(buf, len, "%llu MiB", (unsigned long long)(n >> 20));
    else
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    return buf;
}

/* The answer's first bytes, escaped, for quotes: "-DENIED Redis is running in pro...". */
static const char *first_bytes(const struct exchange *x, char *buf, size_t len)
{
    cf_escape(x->first, x->first_len, buf, len, CF_ESCAPE_DQUOTE);
    return buf;
}

/* What is wrong with the answer, in out ("" when it is as needed). True when the path is to
 * blame (the fix is another path), false when the connection is. */
static bool answer_fault(const struct exchange *x, int rc, const struct preflight_need *need,
                         char *out, size_t len)
{
    const struct http_response *r = &x->r;
    char shown[4 * PREFLIGHT_SHOWN + 4];
    out[0] = '\0';
    if (rc == -ETIMEDOUT && x->bytes == 0)
        snprintf(out, len, "no answer within %d s", PREFLIGHT_TIMEOUT_MS / 1000);
    else if (rc < 0 && x->bytes == 0)
        snprintf(out, len, "%s, connecting from " RUN_FAULT_CLIENT_HOST, strerror(-rc));
    else if (x->bytes == 0)
        snprintf(out, len,
                 "the connection from " RUN_FAULT_CLIENT_HOST " (the fault clients' "
                 "host) was closed with no answer: does the server refuse that host?");
    else if (r->step == HTTP_STEP_INVALID || r->status == 0)
        snprintf(out, len, "not an HTTP answer: \"%s\"", first_bytes(x, shown, sizeof(shown)));
    else if (r->status > 299)
        snprintf(out, len, "answered %d %s", r->status, r->reason);
    else if (r->step == HTTP_STEP_STATUS_LINE || r->step == HTTP_STEP_HEADERS)
        snprintf(out, len, "%d but the headers did not end (%s)", r->status,
                 rc == -ETIMEDOUT ? "the time allowed ran out"
                 : x->eof         ? "connection closed"
                                  : strerror(-rc));
    else if (r->body_bytes < need->min_bytes)
        snprintf(out, len, "%d but only %llu bytes%s", r->status, (unsigned long long)r->body_bytes,
                 rc == -ETIMEDOUT ? " when the time allowed ran out" : "");
    return out[0] && r->status >= 200;
}

/* "FLAG PATH: what (who needs what: the fix)" in err; false (err untouched) when the answer
 * is as needed. */
static bool describe_fault(const struct exchange *x, int rc, const struct preflight_need *need,
                           char *err, size_t errlen)
{
    char what[512], size[32];
    bool path_fault = answer_fault(x, rc, need, what, sizeof(what));
    const char *s = need->plural ? "" : "s";
    if (!what[0])
        return false;
    if (!path_fault)
        snprintf(err, errlen, "%s %s: %s (%s need%s it)", need->flag, need->path, what, need->users,
                 s);
    else if (need->min_bytes)
        snprintf(err, errlen,
                 "%s %s: %s (%s need%s a response of at least %s: give %s a path that has one)",
                 need->flag, need->path, what, need->users, s,
                 size_text(need->min_bytes, size, sizeof(size)), need->flag);
    else
        snprintf(err, errlen, "%s %s: %s (%s need%s a 2xx answer: give %s a path that has one)",
                 need->flag, need->path, what, need->users, s, need->flag);
    return true;
}

int preflight_check(const struct sockaddr_in *to, struct in_addr from, const char *host,
                    const struct preflight_need *need, volatile sig_atomic_t *interrupted,
                    FILE *note, char *err, size_t errlen)
{
    struct exchange x = {.c = {.fd = -1},
                         .epfd = epoll_create1(EPOLL_CLOEXEC),
                         .deadline_ms = engine_now_ms() + PREFLIGHT_TIMEOUT_MS,
                         .interrupted = interrupted};
    char req[4096];
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", need->path, host);
    int rc = x.epfd < 0 ? -errno : len < 0 || (size_t)len >= sizeof(req) ? -E2BIG : 0;
    if (rc == 0)
        rc = exchange_send(&x, to, from, req, (size_t)len);
    if (rc == 0 || rc == -ECONNRESET || rc == -EPIPE) /* an answer may still be there */
        rc = exchange_read(&x, need->min_bytes);
    tcp_conn_close(&x.c, false);
    if (x.epfd >= 0)
        close(x.epfd);
    if (rc == -EINTR) {
        snprintf(err, errlen, "interrupted during the pre-flight");
        return RUN_INTERRUPTED;
    }
    if (describe_fault(&x, rc, need, err, errlen))
        return RUN_SETUP_ERROR;
    if (note)
        fprintf(note, "connfault: pre-flight: %s %s from %s: %d, %llu bytes of body read: ok\n",
                need->flag, need->path, inet_ntoa(from), x.r.status,
                (unsigned long long)x.r.body_bytes);
    return 0;
}

/* The paths a run may need, in enum scenario_path's order, and who needs each. */
struct needs {
    struct preflight_need need[3];
    char users[3][256];
    unsigned count[3];
    unsigned scenarios; /* that will run (not skipped for want of the sandbox) */
};

static void needs_add(struct needs *nd, size_t j, const char *name)
{
    char *u = nd->users[j];
    size_t used = strlen(u), room = sizeof(nd->users[j]) - used;
    if (used + strlen(name) + sizeof(", , ...") < sizeof(nd->users[j]))
        snprintf(u + used, room, "%s%s", used ? ", " : "", name);
    else if (used < 3 || strcmp(u + used - 3, "...") != 0)
        snprintf(u + used, room, ", ...");
    nd->count[j]++;
}

static void needs_collect(struct needs *nd, const struct run_env *env, const struct scenario *list,
                          int n)
{
    static const unsigned bits[3] = {SCENARIO_PATH_PROBE, SCENARIO_PATH_LARGE, SCENARIO_PATH_HUGE};
    const struct run_options *o = env->opt;
    memset(nd, 0, sizeof(*nd));
    nd->need[0] = (struct preflight_need){.flag = "--probe-path", .path = o->probe_path};
    nd->need[1] = (struct preflight_need){
        .flag = "--large-path", .path = o->large_path, .min_bytes = SCENARIO_LARGE_MIN};
    nd->need[2] = (struct preflight_need){
        .flag = "--huge-path", .path = o->huge_path, .min_bytes = SCENARIO_HUGE_MIN};
    for (int i = 0; i < n; i++) {
        if (list[i].needs_sandbox && env->no_sandbox)
            continue; /* skipped: it asks for nothing */
        nd->scenarios++;
        /* the probes GET --probe-path, unless the scenario gives its own bytes */
        unsigned paths = list[i].paths | (list[i].probe_raw ? 0 : SCENARIO_PATH_PROBE);
        for (size_t j = 0; j < 3; j++)
            if (paths & bits[j])
                needs_add(nd, j, list[i].name);
    }
    for (size_t j = 0; j < 3; j++) {
        bool every = nd->count[j] == nd->scenarios && nd->scenarios > 3;
        nd->need[j].users = every ? "every scenario" : nd->users[j];
        nd->need[j].plural = !every && nd->count[j] > 1;
    }
}

/* Start the target for the pre-flight alone (a scenario starts its own, fresh). */
static int preflight_start(struct run_env *env, struct target *t, char *log, size_t loglen,
                           char *err, size_t errlen)
{
    char why[400];
    snprintf(log, loglen, "%s/preflight.log", env->tmpdir);
    int rc = run_start_target(env, t, 0, log, why, sizeof(why));
    if (rc < 0)
        snprintf(err, errlen, "pre-flight: %s", why);
    return rc;
}

int run_env_preflight(struct run_env *env, const struct scenario *list, int n, FILE *note,
                      char *err, size_t errlen)
{
    const struct run_options *o = env->opt;
    if (o->probe_raw || o->request_raw) {
        if (note)
            fprintf(note,
                    "connfault: pre-flight skipped: %s, the target is not spoken to in HTTP\n",
                    o->probe_raw ? "--probe-raw" : "--request-raw");
        return 0;
    }
    struct needs nd;
    needs_collect(&nd, env, list, n);
    if (nd.count[0] + nd.count[1] + nd.count[2] == 0)
        return 0;
    struct target started = {0}, *t = o->target_pid ? &env->attached : &started;
    char log[512];
    int rc = o->target_pid ? 0 : preflight_start(env, t, log, sizeof(log), err, errlen);
    struct in_addr from;
    inet_pton(AF_INET, RUN_FAULT_CLIENT_HOST, &from);
    for (size_t j = 0; rc == 0 && j < 3; j++)
        if (nd.count[j])
            rc = preflight_check(&t->addr, from, env->host_header, &nd.need[j], o->interrupted,
                                 note, err, errlen);
    if (!o->target_pid)
        run_stop_target(t);
    return rc == 0 || rc == RUN_INTERRUPTED ? rc : RUN_SETUP_ERROR;
}
