/* server: setup, the main loop, and the graceful stop on SIGTERM/SIGINT.
 *
 * Signals arrive through a signalfd in the same epoll set, so stopping is an ordinary
 * event handled between two turns, never code running inside a signal handler. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bug_modes.h"
#include "cf_list.h"
#include "log.h"

static void server_begin_stop(struct server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    srv->stop_deadline_ms = srv->loop.now_ms + srv->cfg.shutdown_timeout_ms;
    log_at(srv->cfg.verbosity, 1, "stopping: %u connection(s) open, %llu ms to finish",
           srv->conns.nconns, (unsigned long long)srv->cfg.shutdown_timeout_ms);
    listener_close(&srv->listener);
    conn_pool_shutdown(&srv->conns, srv->stop_deadline_ms);
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

/* ---- the listener's side of the connection pool --------------------------------------- */

static bool server_full(struct listener *lst)
{
    return conn_pool_full(&container_of(lst, struct server, listener)->conns);
}

static void server_take(struct listener *lst, int fd)
{
    struct conn_pool *pool = &container_of(lst, struct server, listener)->conns;
    pool->opts.serve(pool, fd);
}

static int server_evict_idle(struct listener *lst, uint64_t *retry_ms)
{
    return conn_pool_evict_idle(&container_of(lst, struct server, listener)->conns, retry_ms);
}

/* The correct behaviour for cfg, then the bug mode's changes (bug_modes.c: the one place
 * where bug modes are chosen). */
static void server_options(const struct server_config *cfg, struct listener_opts *lo,
                           struct conn_opts *co)
{
    *lo = (struct listener_opts){
        .bind_addr = cfg->bind_addr,
        .port = cfg->port,
        .tcp_nodelay = true,
        .tcp_user_timeout_ms = cfg->tcp_user_timeout_ms,
        .events = EPOLLIN,
        .verbosity = cfg->verbosity,
        .accept = listener_accept_batch,
        .out_of_fds = listener_make_room,
        .full = server_full,
        .take = server_take,
        .evict_idle = server_evict_idle,
    };
    *co = (struct conn_opts){
        .max_conns = cfg->max_conns,
        .max_header_bytes = cfg->max_header_bytes,
        .header_timeout_ms = cfg->header_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .send_timeout_ms = cfg->send_timeout_ms,
        .evict_grace_ms = cfg->evict_grace_ms,
        .send_flags = MSG_NOSIGNAL,
        .ignore_sigpipe = true,
        .verbosity = cfg->verbosity,
        .serve = conn_accepted,
        .close_fd = conn_close_fd,
    };
    bug_modes_apply(cfg->bug, lo, co);
}

int server_init(struct server *srv, const struct server_config *cfg, char *err, size_t errlen)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = *cfg;
    srv->signal_fd = -1;
    srv->listener.fd = srv->listener.reserve_fd = -1;
    struct listener_opts lo;
    struct conn_opts co;
    server_options(&srv->cfg, &lo, &co);
    int rc = event_loop_init(&srv->loop);
    if (rc < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(-rc));
        srv->loop.epfd = -1;
        return rc;
    }
    if (conn_pool_init(&srv->conns, &srv->loop, &co) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = server_watch_signals(srv);
    if (rc < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(-rc));
        return rc;
    }
    return listener_open(&srv->listener, &srv->loop, &lo, err, errlen);
}

int server_run(struct server *srv)
{
    for (;;) {
        int rc = event_loop_turn(&srv->loop, srv->stopping ? 50 : -1);
        conn_pool_free_closed(&srv->conns);
        if (rc < 0) {
            log_at(srv->cfg.verbosity, 0, "epoll_wait: %s", strerror(-rc));
            return rc;
        }
        if (srv->stopping && (srv->conns.nconns == 0 || srv->loop.now_ms >= srv->stop_deadline_ms))
            return 0;
    }
}

void server_free(struct server *srv)
{
    conn_pool_free(&srv->conns);
    listener_close(&srv->listener);
    if (srv->signal_fd >= 0)
        close(srv->signal_fd);
    event_loop_free(&srv->loop);
}
