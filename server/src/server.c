/* server: setup, the main loop, and the graceful stop on SIGTERM/SIGINT.
 *
 * Signals arrive through a signalfd in the same epoll set, so stopping is an ordinary
 * event handled between two turns, never code running inside a signal handler. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cf_list.h"
#include "conn.h"

#define MIN_INPUT_BUFFER 16384

void server_log(const struct server *srv, int level, const char *fmt, ...)
{
    if (level > srv->cfg.verbosity)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("connfault-server: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *server_date(struct server *srv)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec != srv->date_second) {
        srv->date_second = now.tv_sec;
        response_format_date(srv->date, sizeof(srv->date), now.tv_sec);
    }
    return srv->date;
}

static void server_free_closed(struct server *srv)
{
    while (srv->closed) {
        struct conn *c = srv->closed;
        srv->closed = c->next_closed;
        conn_free(c);
    }
}

static void server_begin_stop(struct server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    srv->stop_deadline_ms = srv->loop.now_ms + srv->cfg.shutdown_timeout_ms;
    server_log(srv, 1, "stopping: %u connection(s) open, %llu ms to finish", srv->nconns,
               (unsigned long long)srv->cfg.shutdown_timeout_ms);
    listener_close(&srv->listener);
    for (struct conn *c = srv->all.head, *next; c; c = next) {
        next = c->next;
        conn_begin_shutdown(c);
    }
}

static void server_on_signal(struct event_source *src, uint32_t events)
{
    struct server *srv = container_of(src, struct server, signal_src);
    struct signalfd_siginfo info;
    (void)events;
    while (read(srv->signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info))
        server_begin_stop(srv);
}

static int server_watch_signals(struct server *srv)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    srv->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (srv->signal_fd < 0)
        return -errno;
    srv->signal_src.on_event = server_on_signal;
    return event_loop_add(&srv->loop, srv->signal_fd, EPOLLIN, &srv->signal_src);
}

int server_init(struct server *srv, const struct server_config *cfg, char *err, size_t errlen)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = *cfg;
    srv->signal_fd = -1;
    srv->listener.fd = srv->listener.reserve_fd = -1;
    srv->date_second = -1;
    srv->in_cap =
        cfg->max_header_bytes + 1 > MIN_INPUT_BUFFER ? cfg->max_header_bytes + 1 : MIN_INPUT_BUFFER;
    int rc = event_loop_init(&srv->loop);
    if (rc < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(-rc));
        srv->loop.epfd = -1;
        return rc;
    }
    srv->scratch = malloc(srv->in_cap);
    if (!srv->scratch) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = server_watch_signals(srv);
    if (rc < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(-rc));
        return rc;
    }
    return listener_open(&srv->listener, srv, err, errlen);
}

int server_run(struct server *srv)
{
    for (;;) {
        int rc = event_loop_turn(&srv->loop, srv->stopping ? 50 : -1);
        server_free_closed(srv);
        if (rc < 0) {
            server_log(srv, 0, "epoll_wait: %s", strerror(-rc));
            return rc;
        }
        if (srv->stopping && (srv->nconns == 0 || srv->loop.now_ms >= srv->stop_deadline_ms))
            return 0;
    }
}

void server_free(struct server *srv)
{
    while (srv->all.head)
        conn_close(srv->all.head, CLOSE_SHUTDOWN);
    server_free_closed(srv);
    listener_close(&srv->listener);
    if (srv->signal_fd >= 0)
        close(srv->signal_fd);
    event_loop_free(&srv->loop);
    free(srv->scratch);
    while (srv->spare_responses) {
        struct response *r = srv->spare_responses;
        srv->spare_responses = r->next_free;
        free(r);
    }
}
