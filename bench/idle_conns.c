/* idle_conns: open N idle keep-alive connections to a local HTTP server and hold them.
 *
 * Used by bench/server-vs-nginx to measure what an idle connection costs a server. With
 * -r each connection first sends one "GET /" and reads the whole response, so the server
 * has gone through a request and back to waiting: an idle keep-alive connection, which is
 * what real servers hold by the thousand (a bare connect would only measure the accept
 * path, and some servers defer work until the first byte).
 *
 * Protocol, for a script driving it through pipes:
 *   stdout: "open K" once every connection is set up (or failed, or the setup deadline
 *           passed), then one "open K" per line received on stdin. K counts connections
 *           still open: one the server closes is no longer counted.
 *   stdin:  closed (EOF) -> close everything and exit. SIGINT/SIGTERM/SIGHUP do the same.
 * Exit status: 0 if all N connections were set up, 1 if some were not, 2 on bad usage.
 *
 * Connections are opened at most WINDOW at a time so the server's listen backlog (nginx's
 * default is 511) never overflows: a dropped SYN is retried only after a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cf_time.h"

#define IDLE_WINDOW        256
#define IDLE_RESPONSE_MAX  2048 /* a small response: head and body together */
#define IDLE_EVENTS_BATCH  256
#define IDLE_FD_HEADROOM   64 /* stdin/out/err, epoll, signalfd, and some slack */
#define IDLE_TOKEN_STDIN   UINT32_MAX
#define IDLE_TOKEN_SIGNALS (UINT32_MAX - 1)

enum idle_state { IDLE_CONNECTING, IDLE_READING, IDLE_HELD, IDLE_DONE };

struct idle_conn {
    int fd;
    enum idle_state state;
    uint16_t got;   /* response bytes received so far */
    char *response; /* only while reading it */
};

struct idle_options {
    struct sockaddr_in addr;
    uint32_t count;
    bool send_request;
    double setup_timeout_s;
};

struct idle_ctx {
    struct idle_options opt;
    struct idle_conn *conns;
    int epfd;
    int signal_fd;
    uint32_t next_to_start;
    uint32_t in_flight; /* started, not yet held or failed */
    uint32_t open;      /* held and not closed by the server */
    uint32_t failed;
    bool stop;
    char first_error[160];
};

static const char idle_request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static void idle_usage(FILE *out)
{
    fprintf(out, "usage: idle_conns -p PORT [-n COUNT] [-r] [-a ADDR] [-t SECONDS]\n"
                 "  -p PORT     server port on ADDR (default address 127.0.0.1)\n"
                 "  -n COUNT    connections to open and hold (default 10000)\n"
                 "  -r          on each, send one GET / and read the response before idling\n"
                 "  -t SECONDS  give up setting up connections after this long (default 60)\n"
                 "Prints \"open K\" when set up and for every line read on stdin; exits when\n"
                 "stdin is closed or on SIGINT/SIGTERM.\n");
}

static int idle_parse_args(struct idle_options *opt, int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    long port = -1;
    opt->count = 10000;
    opt->send_request = false;
    opt->setup_timeout_s = 60;
    int ch;
    while ((ch = getopt(argc, argv, "p:n:ra:t:h")) != -1) {
        switch (ch) {
        case 'p':
            port = strtol(optarg, NULL, 10);
            break;
        case 'n':
            opt->count = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            opt->send_request = true;
            break;
        case 'a':
            addr = optarg;
            break;
        case 't':
            opt->setup_timeout_s = strtod(optarg, NULL);
            break;
        case 'h':
            idle_usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (port <= 0 || port > 65535 || opt->count == 0 || opt->setup_timeout_s <= 0)
        return -1;
    memset(&opt->addr, 0, sizeof(opt->addr));
    opt->addr.sin_family = AF_INET;
    opt->addr.sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, addr, &opt->addr.sin_addr) == 1 ? 0 : -1;
}

/* One fd per connection: raise the soft limit, and the hard one too if we may (root). */
static int idle_raise_fd_limit(uint32_t count)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)count + IDLE_FD_HEADROOM;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_max < want)
        rl.rlim_max = want;
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

static void idle_note_error(struct idle_ctx *ctx, const char *what, int err)
{
    if (ctx->first_error[0] == '\0')
        snprintf(ctx->first_error, sizeof(ctx->first_error), "%s: %s", what, strerror(err));
}

static int idle_watch(struct idle_ctx *ctx, int op, int fd, uint32_t events, uint32_t token)
{
    struct epoll_event ev = {.events = events, .data.u32 = token};
    return epoll_ctl(ctx->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

/* A connection that never made it to the held state. */
static void idle_conn_fail(struct idle_ctx *ctx, struct idle_conn *c, const char *what, int err)
{
    idle_note_error(ctx, what, err);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->response);
    c->response = NULL;
    c->state = IDLE_DONE;
    ctx->in_flight--;
    ctx->failed++;
}

static void idle_conn_hold(struct idle_ctx *ctx, struct idle_conn *c, uint32_t token)
{
    free(c->response);
    c->response = NULL;
    /* From now on any event means the server closed it (or sent something unasked). */
    if (idle_watch(ctx, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, token) < 0) {
        idle_conn_fail(ctx, c, "epoll_ctl", errno);
        return;
    }
    c->state = IDLE_HELD;
    ctx->in_flight--;
    ctx->open++;
}

static void idle_start_one(struct idle_ctx *ctx, uint32_t token)
{
    struct idle_conn *c = &ctx->conns[token];
    ctx->in_flight++;
    c->state = IDLE_CONNECTING;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        idle_conn_fail(ctx, c, "socket", errno);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&ctx->opt.addr, sizeof(ctx->opt.addr)) < 0 &&
        errno != EINPROGRESS) {
        idle_conn_fail(ctx, c, "connect", errno);
        return;
    }
    if (idle_watch(ctx, EPOLL_CTL_ADD, c->fd, EPOLLOUT, token) < 0)
        idle_conn_fail(ctx, c, "epoll_ctl", errno);
}

static void idle_start_more(struct idle_ctx *ctx)
{
    while (ctx->in_flight < IDLE_WINDOW && ctx->next_to_start < ctx->opt.count)
        idle_start_one(ctx, ctx->next_to_start++);
}

static void idle_on_connected(struct idle_ctx *ctx, struct idle_conn *c, uint32_t token)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        idle_conn_fail(ctx, c, "connect", err);
        return;
    }
    if (!ctx->opt.send_request) {
        idle_conn_hold(ctx, c, token);
        return;
    }
    /* A fresh socket's send buffer always takes a 40-byte request whole. */
    ssize_t n = send(c->fd, idle_request, sizeof(idle_request) - 1, MSG_NOSIGNAL);
    if (n != (ssize_t)sizeof(idle_request) - 1) {
        idle_conn_fail(ctx, c, "send", n < 0 ? errno : EAGAIN);
        return;
    }
    c->response = malloc(IDLE_RESPONSE_MAX + 1);
    if (!c->response) {
        idle_conn_fail(ctx, c, "malloc", ENOMEM);
        return;
    }
    c->got = 0;
    c->state = IDLE_READING;
    if (idle_watch(ctx, EPOLL_CTL_MOD, c->fd, EPOLLIN, token) < 0)
        idle_conn_fail(ctx, c, "epoll_ctl", errno);
}

/* Length of the whole response once its head is in, 0 while it is not, -1 if it is not a
 * small 200 response with a Content-Length (which would not leave the connection idle). */
static long idle_response_length(const char *buf)
{
    const char *end = strstr(buf, "\r\n\r\n");
    if (!end)
        return 0;
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
        return -1;
    for (const char *line = strstr(buf, "\r\n"); line && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            return (long)(end + 4 - buf) + strtol(line + 17, NULL, 10);
    }
    return -1;
}

static void idle_on_response_bytes(struct idle_ctx *ctx, struct idle_conn *c, uint32_t token)
{
    ssize_t n = recv(c->fd, c->response + c->got, IDLE_RESPONSE_MAX - c->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        idle_conn_fail(ctx, c, "reading the response", n == 0 ? ECONNRESET : errno);
        return;
    }
    c->got = (uint16_t)(c->got + n);
    c->response[c->got] = '\0';
    long want = idle_response_length(c->response);
    if (want < 0 || want > IDLE_RESPONSE_MAX) {
        idle_conn_fail(ctx, c, "response is not a small 200 with Content-Length", EPROTO);
        return;
    }
    if (want > 0 && c->got >= want)
        idle_conn_hold(ctx, c, token);
}

/* A held connection became readable: the server closed it (or sent bytes nobody asked for,
 * which are dropped). */
static void idle_on_held_event(struct idle_ctx *ctx, struct idle_conn *c)
{
    char sink[512];
    ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    close(c->fd);
    c->fd = -1;
    c->state = IDLE_DONE;
    ctx->open--;
}

static void idle_report(const struct idle_ctx *ctx)
{
    printf("open %u\n", ctx->open);
    fflush(stdout);
}

/* Every line on stdin asks for a report; EOF means stop. */
static void idle_on_stdin(struct idle_ctx *ctx)
{
    char buf[256];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        ctx->stop = true;
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            idle_report(ctx);
    }
}

static void idle_dispatch(struct idle_ctx *ctx, uint32_t token)
{
    if (token == IDLE_TOKEN_SIGNALS) {
        ctx->stop = true;
        return;
    }
    if (token == IDLE_TOKEN_STDIN) {
        idle_on_stdin(ctx);
        return;
    }
    struct idle_conn *c = &ctx->conns[token];
    switch (c->state) {
    case IDLE_CONNECTING:
        idle_on_connected(ctx, c, token);
        break;
    case IDLE_READING:
        idle_on_response_bytes(ctx, c, token);
        break;
    case IDLE_HELD:
        idle_on_held_event(ctx, c);
        break;
    case IDLE_DONE:
        break;
    }
}

static int idle_wait(struct idle_ctx *ctx, int timeout_ms)
{
    struct epoll_event events[IDLE_EVENTS_BATCH];
    int n = epoll_wait(ctx->epfd, events, IDLE_EVENTS_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n && !ctx->stop; i++)
        idle_dispatch(ctx, events[i].data.u32);
    return 0;
}

static void idle_set_up(struct idle_ctx *ctx)
{
    double deadline = cf_now_seconds() + ctx->opt.setup_timeout_s;
    idle_start_more(ctx);
    while (!ctx->stop && ctx->in_flight > 0) {
        double left = deadline - cf_now_seconds();
        if (left <= 0) {
            idle_note_error(ctx, "setup", ETIMEDOUT);
            break;
        }
        if (idle_wait(ctx, (int)(left * 1000) + 1) < 0)
            break;
        idle_start_more(ctx);
    }
}

static void idle_hold(struct idle_ctx *ctx)
{
    /* A regular file or /dev/null cannot be polled: treat it as already closed. */
    if (idle_watch(ctx, EPOLL_CTL_ADD, STDIN_FILENO, EPOLLIN, IDLE_TOKEN_STDIN) < 0)
        ctx->stop = true;
    while (!ctx->stop) {
        if (idle_wait(ctx, -1) < 0)
            break;
    }
}

static int idle_init(struct idle_ctx *ctx)
{
    ctx->conns = calloc(ctx->opt.count, sizeof(*ctx->conns));
    ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!ctx->conns || ctx->epfd < 0)
        return -ENOMEM;
    for (uint32_t i = 0; i < ctx->opt.count; i++)
        ctx->conns[i].fd = -1;
    /* Signals as events, so stopping never happens in the middle of a handler. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN); /* a reader of stdout that went away must not kill us */
    ctx->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (ctx->signal_fd < 0)
        return -errno;
    return idle_watch(ctx, EPOLL_CTL_ADD, ctx->signal_fd, EPOLLIN, IDLE_TOKEN_SIGNALS);
}

static void idle_free(struct idle_ctx *ctx)
{
    for (uint32_t i = 0; ctx->conns && i < ctx->opt.count; i++) {
        if (ctx->conns[i].fd >= 0)
            close(ctx->conns[i].fd);
        free(ctx->conns[i].response);
    }
    free(ctx->conns);
    if (ctx->epfd >= 0)
        close(ctx->epfd);
    if (ctx->signal_fd >= 0)
        close(ctx->signal_fd);
}

int main(int argc, char **argv)
{
    struct idle_ctx ctx = {.epfd = -1, .signal_fd = -1};
    if (idle_parse_args(&ctx.opt, argc, argv) < 0) {
        idle_usage(stderr);
        return 2;
    }
    int rc = idle_raise_fd_limit(ctx.opt.count);
    if (rc < 0) {
        fprintf(stderr, "idle_conns: cannot raise RLIMIT_NOFILE to %u: %s\n",
                ctx.opt.count + IDLE_FD_HEADROOM, strerror(-rc));
        return 1;
    }
    rc = idle_init(&ctx);
    if (rc < 0) {
        fprintf(stderr, "idle_conns: %s\n", strerror(-rc));
        idle_free(&ctx);
        return 1;
    }
    idle_set_up(&ctx);
    bool complete = ctx.open == ctx.opt.count;
    if (!complete)
        fprintf(stderr, "idle_conns: %u of %u connections set up (%u failed; first error: %s)\n",
                ctx.open, ctx.opt.count, ctx.failed, ctx.first_error[0] ? ctx.first_error : "none");
    idle_report(&ctx);
    idle_hold(&ctx);
    idle_free(&ctx);
    return complete ? 0 : 1;
}
