/* Tests for the fault-client engine, against a tiny server run in a forked child on
 * 127.0.0.1. The child serves in one of a few fixed ways (ts_mode) and reports what it saw
 * (bytes, EOFs, resets, simultaneous connections...) through a pipe whenever asked.
 * Every wait is a loop with a deadline; nothing sleeps blindly. */
#include "support.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_segs_in (glibc's lacks it) */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "engine_internal.h"
#include "pcap_flows.h"

#define DEADLINE_MS 10000

/* ---- the test server (child process) ---------------------------------------------------- */

enum ts_mode {
    TS_SILENT,    /* read and count, never answer */
    TS_HTTP,      /* answer each request: Content-Length and chunked responses in turn */
    TS_AFTER_EOF, /* answer only once the client half-closed, then close */
    TS_503,       /* answer 503 and close */
    TS_TRUNCATED, /* 5 of 28 promised body bytes, then close */
    TS_RESET,     /* RST as soon as anything arrives */
    TS_FLOOD,     /* write to every connection until the kernel says EAGAIN */
};

struct ts_report {
    unsigned accepted, open_now, max_open, eofs, resets, requests;
    uint64_t bytes_in;
    unsigned conns_measured; /* closed connections, for the per-connection byte counts */
    uint64_t min_conn_bytes, max_conn_bytes;
    unsigned first_conn_reads; /* recv() calls that returned data on the first connection */
    size_t first_conn_len;
    char first_conn_data[512];
    struct in_addr first_peer;
    uint64_t flood_bytes;
    unsigned flood_blocked; /* connections whose send hit EAGAIN */
};

#define TS_MAX_CONNS 64

struct ts_conn {
    int fd;
    bool first, blocked, close_after_write;
    uint64_t bytes;
    unsigned crlf_matched, requests;
    char head[32]; /* start of the current request: method and path */
    size_t head_len;
    char out[8192];
    size_t out_len, out_off;
};

struct ts_child {
    enum ts_mode mode;
    struct ts_report rep;
    struct ts_conn conns[TS_MAX_CONNS];
    size_t nconns;
};

static const char ts_cl_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
static const char ts_chunked_response[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          "5\r\nhello\r\n3;x=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
static const char ts_head_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
static const char ts_503_response[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n";
static const char ts_truncated_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\nhello";

static void ts_queue(struct ts_conn *c, const char *data)
{
    size_t len = strlen(data);

    if (c->out_len + len <= sizeof(c->out)) {
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
    }
}

static void ts_close(struct ts_child *ts, size_t i, bool reset)
{
    struct ts_conn *c = &ts->conns[i];

    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    ts->rep.open_now--;
    ts->rep.conns_measured++;
    if (c->bytes < ts->rep.min_conn_bytes)
        ts->rep.min_conn_bytes = c->bytes;
    if (c->bytes > ts->rep.max_conn_bytes)
        ts->rep.max_conn_bytes = c->bytes;
    ts->conns[i] = ts->conns[--ts->nconns];
}

/* Write what is queued; returns false if the connection was closed. */
static bool ts_flush(struct ts_child *ts, size_t i)
{
    struct ts_conn *c = &ts->conns[i];

    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n < 0) {
            ts_close(ts, i, false);
            return false;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    if (c->close_after_write) {
        ts_close(ts, i, false);
        return false;
    }
    return true;
}

static void ts_flood(struct ts_child *ts, struct ts_conn *c)
{
    static const char chunk[16384];

    for (;;) {
        ssize_t n = send(c->fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN && !c->blocked) {
                c->blocked = true;
                ts->rep.flood_blocked++;
            }
            return;
        }
        ts->rep.flood_bytes += (uint64_t)n;
    }
}

static void ts_on_request(struct ts_child *ts, struct ts_conn *c)
{
    c->requests++;
    ts->rep.requests++;
    switch (ts->mode) {
    case TS_HTTP:
        if (c->head_len >= 5 && memcmp(c->head, "HEAD ", 5) == 0)
            ts_queue(c, ts_head_response);
        else if (memmem(c->head, c->head_len, "/chunked", 8) || c->requests % 2 == 0)
            ts_queue(c, ts_chunked_response);
        else
            ts_queue(c, ts_cl_response);
        break;
    case TS_503:
        ts_queue(c, ts_503_response);
        c->close_after_write = true;
        break;
    case TS_TRUNCATED:
        ts_queue(c, ts_truncated_response);
        c->close_after_write = true;
        break;
    default:
        break;
    }
    c->head_len = 0;
}

/* Count request heads (each ends with CRLFCRLF) in new bytes. */
static void ts_scan(struct ts_child *ts, struct ts_conn *c, const char *data, size_t len)
{
    static const char end[] = "\r\n\r\n";

    for (size_t k = 0; k < len; k++) {
        if (c->head_len < sizeof(c->head))
            c->head[c->head_len++] = data[k];
        if (data[k] == end[c->crlf_matched])
            c->crlf_matched++;
        else
            c->crlf_matched = data[k] == '\r' ? 1 : 0;
        if (c->crlf_matched == 4) {
            c->crlf_matched = 0;
            ts_on_request(ts, c);
        }
    }
}

static void ts_readable(struct ts_child *ts, size_t i)
{
    struct ts_conn *c = &ts->conns[i];
    char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

    if (n < 0 && errno == EAGAIN)
        return;
    if (n < 0) {
        ts->rep.resets++;
        ts_close(ts, i, false);
        return;
    }
    if (n == 0) {
        ts->rep.eofs++;
        if (ts->mode == TS_AFTER_EOF) {
            for (unsigned k = 0; k < c->requests; k++)
                ts_queue(c, ts_cl_response);
            c->close_after_write = true;
            ts_flush(ts, i);
        } else {
            ts_close(ts, i, false);
        }
        return;
    }
    c->bytes += (uint64_t)n;
    ts->rep.bytes_in += (uint64_t)n;
    if (c->first) {
        size_t room = sizeof(ts->rep.first_conn_data) - ts->rep.first_conn_len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(ts->rep.first_conn_data + ts->rep.first_conn_len, buf, take);
        ts->rep.first_conn_len += take;
        ts->rep.first_conn_reads++;
    }
    if (ts->mode == TS_RESET) {
        ts_close(ts, i, true);
        return;
    }
    ts_scan(ts, c, buf, (size_t)n);
    ts_flush(ts, i);
}

static void ts_accept(struct ts_child *ts, int listen_fd)
{
    while (ts->nconns < TS_MAX_CONNS) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK);
        struct ts_conn *c;

        if (fd < 0)
            return;
        c = &ts->conns[ts->nconns++];
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->first = ts->rep.accepted == 0;
        if (c->first)
            ts->rep.first_peer = peer.sin_addr;
        ts->rep.accepted++;
        if (++ts->rep.open_now > ts->rep.max_open)
            ts->rep.max_open = ts->rep.open_now;
        if (ts->mode == TS_FLOOD)
            ts_flood(ts, c);
    }
}

static void ts_report_send(int fd, const struct ts_report *rep)
{
    if (write(fd, rep, sizeof(*rep)) != (ssize_t)sizeof(*rep))
        _exit(3);
}

/* The child's loop. Connections are served before new ones are accepted, so a close and
 * the next connect seen in one poll() round are counted in that order. */
static void ts_child_run(enum ts_mode mode, int listen_fd, int ctl_fd, int report_fd)
{
    static struct ts_child ts;
    struct pollfd pfd[2 + TS_MAX_CONNS];

    ts.mode = mode;
    ts.rep.min_conn_bytes = UINT64_MAX;
    for (;;) {
        size_t n = ts.nconns;
        char cmd;

        pfd[0] = (struct pollfd){.fd = ctl_fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
        for (size_t i = 0; i < n; i++) {
            struct ts_conn *c = &ts.conns[i];
            bool wants_out = c->out_len > c->out_off || (mode == TS_FLOOD);
            pfd[2 + i] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            if (wants_out)
                pfd[2 + i].events |= POLLOUT;
        }
        if (poll(pfd, 2 + n, -1) < 0)
            continue;
        if (pfd[0].revents) {
            if (read(ctl_fd, &cmd, 1) <= 0) {
                ts_report_send(report_fd, &ts.rep);
                _exit(0);
            }
            ts_report_send(report_fd, &ts.rep);
        }
        /* Backwards: closing swaps the last connection in, which is already handled. */
        for (size_t i = n; i-- > 0;) {
            short ev = pfd[2 + i].revents;
            if ((ev & POLLOUT) && mode == TS_FLOOD)
                ts_flood(&ts, &ts.conns[i]);
            if ((ev & POLLOUT) && !ts_flush(&ts, i))
                continue;
            if (ev & (POLLIN | POLLHUP | POLLERR))
                ts_readable(&ts, i);
        }
        if (pfd[1].revents & POLLIN)
            ts_accept(&ts, listen_fd);
    }
}

/* ---- the test server (parent side) ------------------------------------------------------ */

struct test_server {
    pid_t pid;
    uint16_t port;
    int ctl_fd, report_fd;
};

static uint16_t listen_on_loopback(int *fd_out, int sndbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    if (sndbuf > 0) /* inherited by accepted sockets */
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 128), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *fd_out = fd;
    return ntohs(sa.sin_port);
}

static void ts_start(struct test_server *ts, enum ts_mode mode)
{
    int listen_fd, ctl[2], report[2];

    ts->port = listen_on_loopback(&listen_fd, mode == TS_FLOOD ? 4096 : 0);
    ck_assert_int_eq(pipe2(ctl, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
    ts->pid = fork();
    ck_assert_int_ge(ts->pid, 0);
    if (ts->pid == 0) {
        close(ctl[1]);
        close(report[0]);
        ts_child_run(mode, listen_fd, ctl[0], report[1]);
        _exit(0);
    }
    close(listen_fd);
    close(ctl[0]);
    close(report[1]);
    ts->ctl_fd = ctl[1];
    ts->report_fd = report[0];
}

static void ts_read_report(struct test_server *ts, struct ts_report *rep)
{
    size_t got = 0;
    struct pollfd pfd = {.fd = ts->report_fd, .events = POLLIN};

    while (got < sizeof(*rep)) {
        ssize_t n;
        ck_assert_msg(poll(&pfd, 1, DEADLINE_MS) == 1, "test server did not report");
        n = read(ts->report_fd, (char *)rep + got, sizeof(*rep) - got);
        ck_assert_msg(n > 0, "test server died");
        got += (size_t)n;
    }
}

static void ts_snapshot(struct test_server *ts, struct ts_report *rep)
{
    ck_assert_int_eq(write(ts->ctl_fd, "r", 1), 1);
    ts_read_report(ts, rep);
}

static void ts_stop(struct test_server *ts, struct ts_report *rep)
{
    int status;

    close(ts->ctl_fd);
    ts_read_report(ts, rep);
    close(ts->report_fd);
    ck_assert_int_eq(waitpid(ts->pid, &status, 0), ts->pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- engine helpers --------------------------------------------------------------------- */

static struct engine *engine_with(uint16_t port, struct engine_config cfg)
{
    char err[128];
    struct engine *e;

    cfg.target.sin_family = AF_INET;
    cfg.target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg.target.sin_port = htons(port);
    cfg.source.s_addr = htonl(INADDR_ANY);
    e = engine_new(&cfg, err, sizeof(err));
    ck_assert_msg(e != NULL, "%s", err);
    return e;
}

static struct engine *engine_for(uint16_t port, uint64_t seed)
{
    return engine_with(port, (struct engine_config){.seed = seed});
}

static struct client_group group_of(const char *request, unsigned count)
{
    struct client_group g;

    memset(&g, 0, sizeof(g));
    snprintf(g.name, sizeof(g.name), "test");
    g.count = count;
    g.request = (char *)request;
    g.request_len = strlen(request);
    g.pipeline = 1;
    g.send = SEND_WHOLE;
    g.read = READ_NONE;
    g.end = END_CLOSE;
    return g;
}

static void run_for(struct engine *e, uint64_t ms)
{
    uint64_t until = engine_now_ms() + ms;

    while (engine_now_ms() < until)
        ck_assert_int_eq(engine_run(e, until), 0);
}

static void run_until_done(struct engine *e)
{
    uint64_t deadline = engine_now_ms() + DEADLINE_MS;

    while (!engine_groups_done(e)) {
        ck_assert_msg(engine_now_ms() < deadline, "clients did not finish in time");
        ck_assert_int_eq(engine_run(e, engine_now_ms() + 20), 0);
    }
}

static void run_until_probe(struct engine *e, const struct probe_result *res)
{
    uint64_t deadline = engine_now_ms() + DEADLINE_MS;

    while (!res->done) {
        ck_assert_msg(engine_now_ms() < deadline, "probe did not finish in time");
        ck_assert_int_eq(engine_run(e, engine_now_ms() + 20), 0);
    }
}

/* Run the engine until the server's report satisfies cond (an expression over rep). */
#define RUN_UNTIL_SERVER(e, ts, rep, cond)                                                         \
    do {                                                                                           \
        uint64_t deadline_ = engine_now_ms() + DEADLINE_MS;                                        \
        for (;;) {                                                                                 \
            ts_snapshot((ts), &(rep));                                                             \
            if (cond)                                                                              \
                break;                                                                             \
            ck_assert_msg(engine_now_ms() < deadline_, "server never saw: %s", #cond);             \
            if (e)                                                                                 \
                ck_assert_int_eq(engine_run((e), engine_now_ms() + 10), 0);                        \
            else                                                                                   \
                poll(NULL, 0, 10);                                                                 \
        }                                                                                          \
    } while (0)

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static const char http_get[] = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/* ---- fault client tests ----------------------------------------------------------------- */

START_TEST(whole_read_all_pipelined_counts_every_response)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(http_get, 4);
    struct engine_group_stats st;

    ts_start(&ts, TS_HTTP);
    e = engine_for(ts.port, 1);
    g.pipeline = 3; /* CL, chunked with trailers, CL: the server alternates */
    g.read = READ_ALL;
    ck_assert_int_eq(engine_add_group(e, &g), 0);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.started, 4);
    ck_assert_uint_eq(st.connected, 4);
    ck_assert_uint_eq(st.responses, 12);
    ck_assert_uint_eq(st.ended, 4);
    ck_assert_uint_eq(st.peer_closed + st.peer_reset + st.connect_failed, 0);
    ck_assert_uint_eq(st.bytes_sent, 4 * 3 * strlen(http_get));
    ck_assert_uint_eq(st.bytes_received,
                      4 * (2 * strlen(ts_cl_response) + strlen(ts_chunked_response)));
    RUN_UNTIL_SERVER(e, &ts, rep, rep.eofs == 4);
    engine_free(e);
    ts_stop(&ts, &rep);
    ck_assert_uint_eq(rep.requests, 12);
    ck_assert_uint_eq(rep.resets, 0);
}
END_TEST

START_TEST(head_responses_have_no_body)
{
    static const char head[] = "HEAD / HTTP/1.1\r\nHost: test\r\n\r\n";
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(head, 2);
    struct engine_group_stats st;

    ts_start(&ts, TS_HTTP);
    e = engine_for(ts.port, 1);
    g.pipeline = 2;
    g.read = READ_ALL;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.responses, 4);
    ck_assert_uint_eq(st.ended, 2);
    ck_assert_uint_eq(st.peer_closed, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

START_TEST(partial_sends_exactly_n_bytes)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(http_get, 5);
    struct engine_group_stats st;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.send = SEND_PARTIAL;
    g.send_bytes = (struct range){10, 10};
    g.hold_ms = (struct range){30, 30};
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.bytes_sent, 50);
    ck_assert_uint_eq(st.ended, 5);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.conns_measured == 5);
    ck_assert_uint_eq(rep.min_conn_bytes, 10);
    ck_assert_uint_eq(rep.max_conn_bytes, 10);
    ck_assert_uint_eq(rep.eofs, 5);
    ck_assert_uint_eq(rep.requests, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

START_TEST(trickle_sends_in_order_then_repeats_the_tail)
{
    static const char request[] = "GET / HTTP/1.1\r\n";
    static const char tail[] = "X-a: b\r\n";
    const size_t req_len = strlen(request), tail_len = strlen(tail);
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(request, 1);
    struct engine_group_stats st, later;
    struct engine_group_evidence ev;
    uint64_t deadline;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.send = SEND_TRICKLE;
    g.trickle_bytes = 4;
    g.trickle_interval_ms = 40;
    g.trickle_tail = (char *)tail;
    g.trickle_tail_len = tail_len;
    engine_add_group(e, &g);
    /* The first tick sends trickle_bytes and no more; the next one is 40 ms away. */
    deadline = engine_now_ms() + DEADLINE_MS;
    do {
        ck_assert(engine_now_ms() < deadline);
        ck_assert_int_eq(engine_run(e, engine_now_ms() + 1), 0);
        engine_group_stats(e, 0, &st);
    } while (st.bytes_sent == 0);
    ck_assert_uint_eq(st.bytes_sent, 4);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.bytes_in >= req_len + 4 * tail_len);
    ck_assert(!engine_groups_done(e)); /* a tail goes on forever */

    /* Byte order: the request, then the tail over and over. */
    for (size_t i = 0; i < rep.first_conn_len; i++) {
        char want = i < req_len ? request[i] : tail[(i - req_len) % tail_len];
        ck_assert_msg(rep.first_conn_data[i] == want, "byte %zu out of order", i);
    }
    /* It came in pieces, not in one go. */
    ck_assert_uint_ge(rep.first_conn_reads, 4);

    engine_cut_off(e);
    ck_assert(engine_groups_done(e));
    engine_group_evidence(e, 0, &ev);
    ck_assert_uint_eq(ev.trickling_at_cut, 1); /* the evidence that it trickled to the end */
    ck_assert_uint_eq(ev.request_sent, 1);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.holding, 1);
    ck_assert_uint_eq(st.ended, 0);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.bytes_in == st.bytes_sent);
    run_for(e, 50); /* a cut-off trickle sends nothing more */
    engine_group_stats(e, 0, &later);
    ck_assert_uint_eq(later.bytes_sent, st.bytes_sent);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

START_TEST(read_none_closes_the_receive_window)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("x", 1);
    struct engine_group_stats st;

    ts_start(&ts, TS_FLOOD);
    e = engine_for(ts.port, 1);
    /* Busy sending forever (a trickle with a tail), so only READ_NONE keeps it from reading. */
    g.send = SEND_TRICKLE;
    g.trickle_bytes = 1;
    g.trickle_interval_ms = 20;
    g.trickle_tail = "y";
    g.trickle_tail_len = 1;
    g.rcvbuf = 4096;
    engine_add_group(e, &g);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.flood_blocked == 1);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_eq(st.bytes_received, 0);
    ck_assert_uint_gt(st.bytes_sent, 0);
    /* Only the two socket buffers' worth got through, not an endless stream. */
    ck_assert_uint_lt(rep.flood_bytes, 4u << 20);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

/* One client of g against a listener of our own, run to its end; then the server's side,
 * accepted only now: the segments it received (TCP_INFO), and that its request and EOF are
 * there. */
static uint32_t segments_in_of_one(struct client_group g)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    struct engine *e = engine_for(ntohs(sa.sin_port), 1);
    engine_add_group(e, &g);
    run_until_done(e);
    engine_free(e);
    int fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    char buf[64];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, DEADLINE_MS), 1);
    ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), (int)g.request_len);
    ck_assert_int_eq(poll(&pfd, 1, DEADLINE_MS), 1);
    ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), 0); /* the FIN */
    struct tcp_info info;
    len = sizeof(info);
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
    close(fd);
    close(lfd);
    return info.tcpi_segs_in;
}

/* A client that closes as soon as its request is out sends request and FIN in one segment
 * (the server answers a client already gone, every time); one that waits first, in two. */
START_TEST(closing_at_once_sends_the_fin_with_the_request)
{
    struct client_group g = group_of("GET / HTTP/1.1\r\n\r\n", 1);
    uint32_t together = segments_in_of_one(g);
    g.hold_ms = (struct range){20, 20};
    uint32_t apart = segments_in_of_one(g);
    ck_assert_uint_eq(together + 1, apart);
}
END_TEST

static void check_end_action(enum end_mode end, unsigned want_eofs, unsigned want_resets)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("PING\r\n", 3);
    struct engine_group_stats st;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.end = end;
    g.hold_ms = (struct range){20, 20};
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.ended, 3);
    ck_assert_uint_eq(st.holding, 0);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.eofs + rep.resets == 3);
    ck_assert_uint_eq(rep.eofs, want_eofs);
    ck_assert_uint_eq(rep.resets, want_resets);
    ck_assert_uint_eq(rep.bytes_in, 3 * 6);
    engine_free(e);
    ts_stop(&ts, &rep);
}

START_TEST(reset_end_gives_econnreset)
{
    check_end_action(END_RESET, 0, 3);
}
END_TEST

START_TEST(close_end_gives_eof)
{
    check_end_action(END_CLOSE, 3, 0);
}
END_TEST

START_TEST(half_close_then_whole_response)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(http_get, 3);
    struct engine_group_stats st;

    struct engine_group_evidence ev;

    ts_start(&ts, TS_AFTER_EOF); /* answers only after it read EOF */
    e = engine_for(ts.port, 1);
    g.pipeline = 2;
    g.read = READ_ALL;
    g.end = END_HALF_CLOSE;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.responses, 6);
    ck_assert_uint_eq(st.ended, 3);
    ck_assert_uint_eq(st.peer_closed + st.peer_reset, 0);
    engine_group_evidence(e, 0, &ev);
    ck_assert_uint_eq(ev.shut_wr, 3);
    ck_assert_uint_eq(ev.request_sent, 3);
    ck_assert_uint_eq(ev.nstatuses, 1); /* one status per client: its first response's */
    ck_assert_int_eq(ev.statuses[0].status, 200);
    ck_assert_uint_eq(ev.statuses[0].clients, 3);
    engine_free(e);
    ts_stop(&ts, &rep);
    ck_assert_uint_eq(rep.eofs, 3);
    ck_assert_uint_eq(rep.requests, 6);
}
END_TEST

START_TEST(read_all_of_a_non_http_request_ends_at_eof)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("PING\r\n", 2);
    struct engine_group_stats st;

    ts_start(&ts, TS_AFTER_EOF); /* no request head seen: closes without a word */
    e = engine_for(ts.port, 1);
    g.read = READ_ALL;
    g.end = END_HALF_CLOSE;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.ended, 2); /* EOF was the script's end, not an early close */
    ck_assert_uint_eq(st.peer_closed + st.peer_reset + st.responses, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

START_TEST(hold_keeps_the_socket_until_engine_free)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("x", 4);
    struct engine_group_stats st;
    int fds_before = count_open_fds();

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.end = END_HOLD;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.holding, 4);
    ck_assert_uint_eq(st.ended, 4);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.bytes_in == 4);
    run_for(e, 50);
    ts_snapshot(&ts, &rep);
    ck_assert_uint_eq(rep.open_now, 4);
    ck_assert_uint_eq(rep.eofs + rep.resets, 0);
    engine_free(e);
    /* Held sockets go with an RST: nothing left in TIME_WAIT on our side. */
    RUN_UNTIL_SERVER(NULL, &ts, rep, rep.resets == 4);
    ts_stop(&ts, &rep);
    ck_assert_int_eq(count_open_fds(), fds_before);
}
END_TEST

START_TEST(drop_is_held_for_now)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("x", 2);
    struct engine_group_stats st;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.end = END_DROP;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.holding, 2);
    ck_assert_uint_eq(st.ended, 2);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

/* A stand-in for the sandbox's drop rule: records the call, drops nothing (so the resets a
 * vanished socket sends at last still reach the test server and can be counted). */
struct drop_log {
    unsigned calls;
    struct sockaddr_in last;
};

static int drop_record(void *ctx, const struct sockaddr_in *client)
{
    struct drop_log *log = ctx;

    log->calls++;
    log->last = *client;
    return 0;
}

static struct engine *engine_with_drop(uint16_t port, struct drop_log *log)
{
    return engine_with(port,
                       (struct engine_config){.seed = 1, .drop = drop_record, .drop_ctx = log});
}

/* A vanished connection keeps its fd after the drop rule: the server sees neither FIN nor
 * RST until the harness lets go (engine_vanish_all or engine_free). */
static void expect_vanished_and_kept(struct engine *e, struct test_server *ts, unsigned n)
{
    struct ts_report rep;

    RUN_UNTIL_SERVER(e, ts, rep, rep.bytes_in == n);
    run_for(e, 50);
    ts_snapshot(ts, &rep);
    ck_assert_uint_eq(rep.open_now, n);
    ck_assert_uint_eq(rep.eofs + rep.resets, 0);
}

START_TEST(drop_vanishes_and_keeps_the_socket)
{
    struct test_server ts;
    struct ts_report rep;
    struct drop_log log = {0};
    struct engine *e;
    struct client_group g = group_of("x", 2);
    struct engine_group_stats st;
    int fds_before = count_open_fds();

    ts_start(&ts, TS_SILENT);
    e = engine_with_drop(ts.port, &log);
    g.end = END_DROP;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(log.calls, 2);
    ck_assert_uint_eq(st.ended, 2);
    ck_assert_uint_eq(st.dropped, 2);
    ck_assert_uint_eq(st.holding, 0);
    expect_vanished_and_kept(e, &ts, 2);
    engine_vanish_all(e); /* counted once, not again */
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.dropped, 2);
    ck_assert_uint_eq(st.holding, 0);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.resets == 2);
    engine_free(e);
    ts_stop(&ts, &rep);
    ck_assert_int_eq(count_open_fds(), fds_before);
}
END_TEST

/* Regression: a replayed flow that ends silently used to close its socket (with a reset) right
 * after adding the drop rule, so a new connection could take its port and be dropped too. It
 * now vanishes as a fault client's END_DROP does: the fd is kept until engine_free. */
START_TEST(replay_silent_end_keeps_the_socket)
{
    static unsigned char data[] = "x";
    static struct flow_segment seg = {.offset = 0, .len = 1, .time_us = 0};
    struct replay_flow flow = {.family = AF_INET,
                               .data = data,
                               .data_len = 1,
                               .segs = &seg,
                               .nsegs = 1,
                               .end = FLOW_END_SILENT};
    struct test_server ts;
    struct ts_report rep;
    struct drop_log log = {0};
    struct engine *e;
    struct engine_group_stats st;
    int fds_before = count_open_fds();

    ts_start(&ts, TS_SILENT);
    e = engine_with_drop(ts.port, &log);
    ck_assert_int_eq(engine_add_replay(e, &flow, 1, 0), 0);
    run_until_done(e);
    engine_replay_stats(e, &st);
    ck_assert_uint_eq(log.calls, 1);
    ck_assert_uint_eq(ntohl(log.last.sin_addr.s_addr), INADDR_LOOPBACK);
    ck_assert_uint_eq(st.ended, 1);
    ck_assert_uint_eq(st.dropped, 1);
    ck_assert_uint_eq(st.holding, 0);
    expect_vanished_and_kept(e, &ts, 1);
    engine_cut_off(e); /* a vanished flow is not held again */
    engine_replay_stats(e, &st);
    ck_assert_uint_eq(st.holding, 0);
    engine_free(e);
    RUN_UNTIL_SERVER(NULL, &ts, rep, rep.resets == 1);
    ts_stop(&ts, &rep);
    ck_assert_int_eq(count_open_fds(), fds_before);
}
END_TEST

START_TEST(cut_off_turns_busy_clients_into_holders)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group waiting = group_of(http_get, 3);
    struct client_group trickling = group_of(http_get, 2);
    struct client_group queued = group_of("x", 10);
    struct engine_group_stats st;
    int fds_before = count_open_fds();

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    waiting.read = READ_ALL; /* the silent server never answers */
    trickling.send = SEND_TRICKLE;
    trickling.trickle_bytes = 1;
    trickling.trickle_interval_ms = 10;
    trickling.trickle_tail = "a";
    trickling.trickle_tail_len = 1;
    queued.concurrency = 1;
    queued.hold_ms = (struct range){60000, 60000};
    engine_add_group(e, &waiting);
    engine_add_group(e, &trickling);
    engine_add_group(e, &queued);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.accepted == 6);
    ck_assert(!engine_groups_done(e));

    engine_cut_off(e);
    ck_assert(engine_groups_done(e));
    for (size_t i = 0; i < 3; i++) {
        engine_group_stats(e, i, &st);
        ck_assert_uint_eq(st.holding, i == 0 ? 3 : i == 1 ? 2 : 1);
        ck_assert_uint_eq(st.ended, 0);
    }
    run_for(e, 100);
    engine_group_stats(e, 2, &st);
    ck_assert_uint_eq(st.started, 1); /* the other nine never start */
    ts_snapshot(&ts, &rep);
    ck_assert_uint_eq(rep.open_now, 6);
    ck_assert_uint_eq(rep.eofs + rep.resets, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
    ck_assert_int_eq(count_open_fds(), fds_before);
}
END_TEST

/* ---- the end of the fault phase is no guillotine (issue 11) ---- */

/* A listener on 127.0.0.1 with a backlog of 1, in this process: the test accepts from it
 * when it chooses (a server slower than its clients). */
static int slow_listener(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Accept one waiting client if there is one, read its request head (the engine runs
 * meanwhile), answer it whole and close. True when one was served. */
static bool slow_serve_one(int listener, struct engine *e)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n"
                                 "\r\nhello";
    char head[512];
    size_t used = 0;
    uint64_t deadline = engine_now_ms() + DEADLINE_MS;
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return false;
    while (!memmem(head, used, "\r\n\r\n", 4)) {
        ck_assert_msg(engine_now_ms() < deadline, "no request head on an accepted connection");
        ssize_t n = recv(fd, head + used, sizeof(head) - used, 0);
        ck_assert(n != 0 && used < sizeof(head));
        if (n > 0)
            used += (size_t)n;
        else
            ck_assert_int_eq(engine_run(e, engine_now_ms() + 5), 0);
    }
    ck_assert_int_eq(send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL), sizeof(answer) - 1);
    close(fd);
    return true;
}

/* Behind a backlog of 1, most clients are still connecting when the duration ends. They are
 * not frozen into held connections (which the judge would then blame on the server): each
 * finishes its script as the slow server gets to it. */
START_TEST(clients_still_connecting_finish_their_script)
{
    uint16_t port;
    int listener = slow_listener(&port);
    struct engine *e = engine_for(port, 1);
    struct client_group g = group_of(http_get, 4);
    struct engine_group_stats st;
    struct engine_group_evidence ev;
    unsigned served = 0;

    g.read = READ_ALL;
    engine_add_group(e, &g);
    run_for(e, 50);
    engine_stop_starting(e); /* the duration is over */
    ck_assert(!engine_scripts_done(e));
    uint64_t deadline = engine_now_ms() + 3 * DEADLINE_MS;
    while (!engine_scripts_done(e)) {
        ck_assert_msg(engine_now_ms() < deadline, "%u of 4 served", served);
        if (slow_serve_one(listener, e))
            served++;
        ck_assert_int_eq(engine_run(e, engine_now_ms() + 10), 0);
    }
    engine_group_stats(e, 0, &st);
    engine_group_evidence(e, 0, &ev);
    ck_assert_uint_eq(served, 4);
    ck_assert_uint_eq(st.started, 4);
    ck_assert_uint_eq(st.responses, 4);
    ck_assert_uint_eq(st.ended, 4);
    ck_assert_uint_eq(st.holding, 0);
    ck_assert_uint_eq(ev.not_exercised, 0);
    engine_free(e);
    close(listener);
}
END_TEST

/* At the cap, clients the server never accepted (connecting, or connected in its accept
 * queue) are closed and counted not exercised: the engine reports no peer for them, so no
 * socket of the server can be said to be held by them. */
START_TEST(unfinished_clients_are_closed_at_the_cap_not_held)
{
    uint16_t port;
    int listener = slow_listener(&port);
    struct engine *e = engine_for(port, 1);
    struct client_group g = group_of(http_get, 4);
    struct engine_group_stats st;
    struct engine_group_evidence ev;
    struct engine_peer *peers;
    size_t npeers;

    g.read = READ_ALL;
    engine_add_group(e, &g);
    run_for(e, 100);
    engine_stop_starting(e);
    run_for(e, 50);
    ck_assert(!engine_scripts_done(e));
    engine_close_unfinished(e);
    ck_assert(engine_scripts_done(e));
    engine_group_stats(e, 0, &st);
    engine_group_evidence(e, 0, &ev);
    ck_assert_uint_eq(ev.not_exercised, 4);
    ck_assert_uint_eq(st.holding, 0);
    ck_assert_uint_eq(st.ended, 0);
    ck_assert_int_eq(engine_peers(e, &peers, &npeers), 0);
    ck_assert_uint_eq(npeers, 0);
    free(peers);
    engine_free(e);
    close(listener);
}
END_TEST

/* A trickle with a tail has no end to wait for: the duration's end does not stop it, it
 * trickles on until the cut-off when judging, and is counted as trickling then. */
START_TEST(a_trickle_trickles_on_until_judged)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("GET / HTTP/1.1\r\n", 1);
    struct engine_group_stats at_stop, later;
    struct engine_group_evidence ev;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.send = SEND_TRICKLE;
    g.trickle_bytes = 1;
    g.trickle_interval_ms = 5;
    g.trickle_tail = "X-a: b\r\n";
    g.trickle_tail_len = strlen(g.trickle_tail);
    g.end = END_HOLD;
    engine_add_group(e, &g);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.bytes_in >= 4);
    engine_stop_starting(e);
    ck_assert(engine_scripts_done(e)); /* nothing to wait for */
    engine_group_stats(e, 0, &at_stop);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.bytes_in >= at_stop.bytes_sent + 4);
    engine_group_stats(e, 0, &later);
    ck_assert_uint_gt(later.bytes_sent, at_stop.bytes_sent); /* still trickling */
    engine_group_evidence(e, 0, &ev);
    ck_assert_uint_eq(ev.trickling_at_cut, 0);
    engine_cut_off(e); /* judging */
    engine_group_evidence(e, 0, &ev);
    ck_assert_uint_eq(ev.trickling_at_cut, 1);
    ck_assert_uint_eq(ev.not_exercised, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

/* release = end: held clients are let go with a FIN (the server sees EOF); counted. */
START_TEST(release_held_closes_held_clients)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(http_get, 3);
    struct engine_group_stats st;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.end = END_HOLD;
    engine_add_group(e, &g);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.accepted == 3 && rep.bytes_in == 3 * strlen(http_get));
    run_until_done(e);
    ck_assert_uint_eq(engine_release_held(e), 3);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.holding, 0);
    ck_assert_uint_eq(st.released, 3);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.eofs == 3);
    ck_assert_uint_eq(rep.resets, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

START_TEST(concurrency_is_never_exceeded)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("hi", 12);
    struct engine_group_stats st;
    struct engine_group_timing timing;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 7);
    g.concurrency = 3;
    g.hold_ms = (struct range){10, 30};
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    engine_group_timing(e, 0, &timing);
    ck_assert_uint_eq(st.ended, 12);
    ck_assert_uint_eq(timing.max_active, 3);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.conns_measured == 12);
    ck_assert_uint_le(rep.max_open, 3);
    ck_assert_uint_eq(rep.accepted, 12);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

START_TEST(rate_spaces_the_starts)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of("hi", 10);
    struct engine_group_stats st;
    struct engine_group_timing timing;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    g.rate = 50; /* one start per 20 ms: 10 starts span at least 180 ms */
    g.start_ms = 30;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    engine_group_timing(e, 0, &timing);
    ck_assert_uint_eq(st.started, 10);
    /* Clock granularity is 1 ms; allow a little of it. */
    ck_assert_uint_ge(timing.last_start_ms - timing.first_start_ms, 170);
    engine_free(e);
    ts_stop(&ts, &rep);
    ck_assert_uint_eq(rep.accepted, 10);
}
END_TEST

START_TEST(draws_depend_only_on_their_inputs)
{
    struct range r = {100, 1000000000};
    uint64_t a = engine_draw(42, 1, 7, ENGINE_DRAW_HOLD_MS, r);
    unsigned distinct = 0;

    ck_assert_uint_eq(engine_draw(42, 1, 7, ENGINE_DRAW_HOLD_MS, r), a);
    ck_assert_uint_ne(engine_draw(43, 1, 7, ENGINE_DRAW_HOLD_MS, r), a);
    ck_assert_uint_ne(engine_draw(42, 2, 7, ENGINE_DRAW_HOLD_MS, r), a);
    ck_assert_uint_ne(engine_draw(42, 1, 8, ENGINE_DRAW_HOLD_MS, r), a);
    ck_assert_uint_ne(engine_draw(42, 1, 7, ENGINE_DRAW_SEND_BYTES, r), a);
    for (uint64_t c = 0; c < 1000; c++) {
        uint64_t v = engine_draw(42, 0, c, ENGINE_DRAW_READ_BYTES, (struct range){3, 5});
        ck_assert(v >= 3 && v <= 5);
        distinct |= 1u << (v - 3);
    }
    ck_assert_uint_eq(distinct, 7); /* every value of a small range turns up */
    ck_assert_uint_eq(engine_draw(1, 0, 0, ENGINE_DRAW_HOLD_MS, (struct range){9, 9}), 9);
    ck_assert_uint_eq(engine_draw(1, 0, 0, ENGINE_DRAW_HOLD_MS, (struct range){9, 2}), 9);
}
END_TEST

static uint64_t partial_run_bytes(uint64_t seed, struct range send_bytes)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(http_get, 8);
    struct engine_group_stats st;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, seed);
    g.send = SEND_PARTIAL;
    g.send_bytes = send_bytes;
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.conns_measured == 8);
    ck_assert_uint_eq(rep.bytes_in, st.bytes_sent);
    engine_free(e);
    ts_stop(&ts, &rep);
    return st.bytes_sent;
}

START_TEST(same_seed_same_numbers_in_a_run)
{
    struct range r = {1, 25};
    uint64_t want = 0;

    for (uint64_t c = 0; c < 8; c++)
        want += engine_draw(42, 0, c, ENGINE_DRAW_SEND_BYTES, r);
    ck_assert_uint_eq(partial_run_bytes(42, r), want);
    ck_assert_uint_eq(partial_run_bytes(42, r), want);
}
END_TEST

START_TEST(server_close_and_reset_are_counted)
{
    static char big[256 * 1024];
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group truncated = group_of(http_get, 2);
    struct engine_group_stats st;

    ts_start(&ts, TS_TRUNCATED);
    e = engine_for(ts.port, 1);
    truncated.read = READ_ALL;
    engine_add_group(e, &truncated);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.peer_closed, 2);
    ck_assert_uint_eq(st.ended + st.responses, 0);
    engine_free(e);
    ts_stop(&ts, &rep);

    /* A server that resets while a big request is being written: EPIPE/ECONNRESET, and
     * no SIGPIPE (the default action would kill this process). */
    signal(SIGPIPE, SIG_DFL);
    memset(big, 'a', sizeof(big) - 1);
    ts_start(&ts, TS_RESET);
    e = engine_for(ts.port, 1);
    struct client_group resetting = group_of(big, 3);
    resetting.read = READ_ALL; /* not HTTP: reads until EOF, so the RST is seen either way */
    engine_add_group(e, &resetting);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.peer_reset, 3);
    ck_assert_uint_eq(st.ended, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

START_TEST(refused_connects_are_counted)
{
    int fd;
    uint16_t port = listen_on_loopback(&fd, 0);
    struct engine *e;
    struct client_group g = group_of("x", 3);
    struct engine_group_stats st;

    close(fd); /* nothing listens there any more */
    e = engine_for(port, 1);
    engine_add_group(e, &g);
    run_until_done(e);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(st.started, 3);
    ck_assert_uint_eq(st.connect_failed, 3);
    ck_assert_uint_eq(st.connected, 0);
    engine_free(e);
}
END_TEST

START_TEST(connect_that_never_completes_times_out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct client_group g = group_of("x", 3);
    struct engine_group_stats st;
    struct engine *e;

    /* Backlog 0 and never accept(): one connection fits, later SYNs are dropped. */
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 0), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    e = engine_for(ntohs(sa.sin_port), 1);
    g.end = END_HOLD;
    engine_add_group(e, &g);
    run_until_done(e); /* needs the 5 s connect timeout */
    engine_group_stats(e, 0, &st);
    ck_assert_uint_ge(st.connected, 1);
    ck_assert_uint_ge(st.connect_failed, 1);
    ck_assert_uint_eq(st.connected + st.connect_failed, 3);
    engine_free(e);
    close(fd);
}
END_TEST

START_TEST(source_address_is_bound)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine_config cfg = {.seed = 1};
    struct client_group g = group_of("x", 1);
    struct engine *e;
    char err[128];

    ts_start(&ts, TS_SILENT);
    cfg.target.sin_family = AF_INET;
    cfg.target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg.target.sin_port = htons(ts.port);
    cfg.source.s_addr = htonl(0x7f000002); /* 127.0.0.2 */
    e = engine_new(&cfg, err, sizeof(err));
    ck_assert_ptr_nonnull(e);
    engine_add_group(e, &g);
    run_until_done(e);
    ts_stop(&ts, &rep);
    ck_assert_uint_eq(rep.accepted, 1);
    ck_assert_uint_eq(ntohl(rep.first_peer.s_addr), 0x7f000002);
    engine_free(e);
}
END_TEST

/* The descriptor limit that leaves exactly `free_slots` numbers free below it (holes count:
 * the kernel hands out the lowest free number first). */
static rlim_t limit_leaving(int free_slots)
{
    int fd = 0;

    for (;; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && --free_slots == 0)
            return (rlim_t)fd + 1;
}

START_TEST(out_of_fds_is_retried_without_spinning)
{
    struct test_server ts;
    struct ts_report rep;
    struct rlimit old, low;
    struct engine *e;
    struct client_group g = group_of("x", 10);
    struct engine_group_stats st;
    bool done;

    ts_start(&ts, TS_SILENT);
    e = engine_for(ts.port, 1);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = limit_leaving(4);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    g.end = END_HOLD;
    engine_add_group(e, &g);
    run_for(e, 500);
    engine_group_stats(e, 0, &st);
    done = engine_groups_done(e);
    engine_cut_off(e);
    engine_free(e);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0); /* before any assertion can fail */
    ts_stop(&ts, &rep);

    ck_assert_uint_eq(st.holding, 4);
    ck_assert_uint_ge(st.connect_failed, 1);
    ck_assert_uint_eq(st.started - st.connect_failed, st.holding);
    /* One retry per 100 ms, not a busy loop: about 5 failed attempts in 500 ms. */
    ck_assert_uint_le(st.connect_failed, 15);
    ck_assert(!done);
    ck_assert_uint_eq(rep.accepted, st.holding);
}
END_TEST

/* ---- probes ----------------------------------------------------------------------------- */

START_TEST(probe_ok_with_length_chunked_and_prefix)
{
    static const char chunked[] = "GET /chunked HTTP/1.1\r\nHost: test\r\n\r\n";
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct probe_result a, b, c;
    int fds_before = count_open_fds();

    ts_start(&ts, TS_HTTP);
    e = engine_for(ts.port, 1);
    ck_assert_int_eq(engine_probe(e, http_get, strlen(http_get), NULL, 0, 2000, &a), 0);
    ck_assert_int_eq(engine_probe(e, chunked, strlen(chunked), NULL, 0, 2000, &b), 0);
    ck_assert_int_eq(engine_probe(e, http_get, strlen(http_get), "HTTP/1.1 200", 12, 2000, &c), 0);
    run_until_probe(e, &a);
    run_until_probe(e, &b);
    run_until_probe(e, &c);
    ck_assert_msg(a.ok, "%s", a.error);
    ck_assert_msg(b.ok, "%s", b.error);
    ck_assert_msg(c.ok, "%s", c.error);
    ck_assert_str_eq(a.error, "");
    ck_assert_uint_gt(a.latency_us, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
    ck_assert_uint_eq(rep.requests, 3);
    ck_assert_int_eq(count_open_fds(), fds_before);
}
END_TEST

START_TEST(probe_refused)
{
    int fd;
    uint16_t port = listen_on_loopback(&fd, 0);
    struct engine *e;
    struct probe_result res;

    close(fd);
    e = engine_for(port, 1);
    ck_assert_int_eq(engine_probe(e, http_get, strlen(http_get), NULL, 0, 2000, &res), 0);
    run_until_probe(e, &res);
    ck_assert(!res.ok);
    ck_assert_str_eq(res.error, "connect: Connection refused");
    engine_free(e);
}
END_TEST

static void check_probe_error(enum ts_mode mode, const char *expect, const char *want_error)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct probe_result res;

    ts_start(&ts, mode);
    e = engine_for(ts.port, 1);
    ck_assert_int_eq(
        engine_probe(e, http_get, strlen(http_get), expect, expect ? strlen(expect) : 0, 300, &res),
        0);
    run_until_probe(e, &res);
    ck_assert(!res.ok);
    ck_assert_str_eq(res.error, want_error);
    engine_free(e);
    ts_stop(&ts, &rep);
}

START_TEST(probe_timeout_names_the_step)
{
    check_probe_error(TS_SILENT, NULL,
                      "timeout after 300 ms waiting for the status line (0 bytes received)");
}
END_TEST

START_TEST(probe_503)
{
    check_probe_error(TS_503, NULL, "status 503 Service Unavailable");
}
END_TEST

START_TEST(probe_truncated_body)
{
    check_probe_error(TS_TRUNCATED, NULL, "closed after 5 of 28 body bytes");
}
END_TEST

START_TEST(probe_prefix_mismatch)
{
    check_probe_error(TS_HTTP, "SSH-2.0", "reply differs from the expected bytes at byte 0");
}
END_TEST

/* ---- evidence --------------------------------------------------------------------------- */

/* count clients that read N bytes of what the server in mode answers, run to their end:
 * the group's evidence. */
static void evidence_of_reading(enum ts_mode mode, unsigned count, uint64_t n,
                                struct engine_group_evidence *ev)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(http_get, count);

    ts_start(&ts, mode);
    e = engine_for(ts.port, 1);
    g.read = READ_BYTES;
    g.read_bytes = (struct range){n, n};
    engine_add_group(e, &g);
    run_until_done(e); /* the server closes after answering */
    engine_group_evidence(e, 0, ev);
    engine_free(e);
    ts_stop(&ts, &rep);
}

/* A client that wants N bytes of a response that is whole (and not 2xx) before N: the
 * statuses, the short responses and the first bytes say so; none read to its limit. */
START_TEST(evidence_of_a_503_shorter_than_n)
{
    struct engine_group_evidence ev;
    const size_t len = strlen(ts_503_response);

    evidence_of_reading(TS_503, 4, 1000, &ev);
    ck_assert_uint_eq(ev.request_sent, 4);
    ck_assert_uint_eq(ev.read_to_limit, 0);
    ck_assert_uint_eq(ev.short_response, 4);
    ck_assert_uint_eq(ev.nstatuses, 1);
    ck_assert_int_eq(ev.statuses[0].status, 503);
    ck_assert_uint_eq(ev.statuses[0].clients, 4);
    ck_assert_uint_eq(ev.bytes_min, len);
    ck_assert_uint_eq(ev.bytes_median, len);
    ck_assert_uint_eq(ev.bytes_max, len);
    ck_assert_uint_eq(ev.first_len, len < ENGINE_FIRST_BYTES ? len : ENGINE_FIRST_BYTES);
    ck_assert_mem_eq(ev.first_bytes, ts_503_response, ev.first_len);
}
END_TEST

/* N bytes of a 2xx response whose body goes on past them: read to its limit, mid-response
 * (the server: 200, Content-Length 28, 5 body bytes; N: the status line and some headers). */
START_TEST(evidence_of_n_bytes_mid_response)
{
    struct engine_group_evidence ev;

    evidence_of_reading(TS_TRUNCATED, 3, 30, &ev);
    ck_assert_uint_eq(ev.read_to_limit, 3);
    ck_assert_uint_eq(ev.short_response, 0);
    ck_assert_int_eq(ev.statuses[0].status, 200);
    ck_assert_uint_eq(ev.bytes_min, 30);
    ck_assert_uint_eq(ev.bytes_max, 30);
}
END_TEST

/* A client that never reads peeks at the waiting response at judging, once, without taking
 * it: the status counts and the unread 2xx say the window had something to hold. */
START_TEST(evidence_never_read_peeks_without_reading)
{
    struct test_server ts;
    struct ts_report rep;
    struct engine *e;
    struct client_group g = group_of(http_get, 2);
    struct engine_group_evidence ev;
    struct engine_group_stats st;

    ts_start(&ts, TS_HTTP);
    e = engine_for(ts.port, 1);
    g.end = END_HOLD;
    engine_add_group(e, &g);
    RUN_UNTIL_SERVER(e, &ts, rep, rep.requests == 2 && rep.open_now == 2);
    run_until_done(e);
    engine_peek_unread(e);
    engine_peek_unread(e); /* each client looks once */
    engine_group_evidence(e, 0, &ev);
    engine_group_stats(e, 0, &st);
    ck_assert_uint_eq(ev.request_sent, 2);
    ck_assert_uint_eq(ev.unread_any, 2);
    ck_assert_uint_eq(ev.unread_2xx, 2);
    ck_assert_int_eq(ev.statuses[0].status, 200);
    ck_assert_uint_eq(ev.statuses[0].clients, 2);
    ck_assert_uint_eq(st.bytes_received, 0); /* peeked, not read */
    ck_assert_uint_eq(ev.bytes_max, 0);
    engine_free(e);
    ts_stop(&ts, &rep);
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *clients = tcase_create("clients");
    TCase *probes = tcase_create("probes");

    tcase_set_timeout(clients, 60);
    tcase_set_timeout(probes, 60);
    tcase_add_test(clients, whole_read_all_pipelined_counts_every_response);
    tcase_add_test(clients, head_responses_have_no_body);
    tcase_add_test(clients, partial_sends_exactly_n_bytes);
    tcase_add_test(clients, trickle_sends_in_order_then_repeats_the_tail);
    tcase_add_test(clients, read_none_closes_the_receive_window);
    tcase_add_test(clients, closing_at_once_sends_the_fin_with_the_request);
    tcase_add_test(clients, reset_end_gives_econnreset);
    tcase_add_test(clients, close_end_gives_eof);
    tcase_add_test(clients, half_close_then_whole_response);
    tcase_add_test(clients, read_all_of_a_non_http_request_ends_at_eof);
    tcase_add_test(clients, hold_keeps_the_socket_until_engine_free);
    tcase_add_test(clients, drop_is_held_for_now);
    tcase_add_test(clients, drop_vanishes_and_keeps_the_socket);
    tcase_add_test(clients, replay_silent_end_keeps_the_socket);
    tcase_add_test(clients, cut_off_turns_busy_clients_into_holders);
    tcase_add_test(clients, concurrency_is_never_exceeded);
    tcase_add_test(clients, rate_spaces_the_starts);
    tcase_add_test(clients, draws_depend_only_on_their_inputs);
    tcase_add_test(clients, same_seed_same_numbers_in_a_run);
    tcase_add_test(clients, server_close_and_reset_are_counted);
    tcase_add_test(clients, refused_connects_are_counted);
    tcase_add_test(clients, connect_that_never_completes_times_out);
    tcase_add_test(clients, source_address_is_bound);
    tcase_add_test(clients, out_of_fds_is_retried_without_spinning);
    tcase_add_test(clients, evidence_of_a_503_shorter_than_n);
    tcase_add_test(clients, evidence_of_n_bytes_mid_response);
    tcase_add_test(clients, evidence_never_read_peeks_without_reading);
    tcase_add_test(clients, clients_still_connecting_finish_their_script);
    tcase_add_test(clients, unfinished_clients_are_closed_at_the_cap_not_held);
    tcase_add_test(clients, a_trickle_trickles_on_until_judged);
    tcase_add_test(clients, release_held_closes_held_clients);
    tcase_add_test(probes, probe_ok_with_length_chunked_and_prefix);
    tcase_add_test(probes, probe_refused);
    tcase_add_test(probes, probe_timeout_names_the_step);
    tcase_add_test(probes, probe_503);
    tcase_add_test(probes, probe_truncated_body);
    tcase_add_test(probes, probe_prefix_mismatch);
    suite_add_tcase(s, clients);
    suite_add_tcase(s, probes);
    return s;
}

int main(void)
{
    return ts_run_suite(engine_suite());
}
