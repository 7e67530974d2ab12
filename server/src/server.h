/* server: the context that owns everything (config, loop, listener, connections), and
 * the main loop with its graceful stop. No globals: every module gets this struct. */
#ifndef CONNFAULT_SERVER_H
#define CONNFAULT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event_loop.h"
#include "listener.h"

struct conn;

/* An intrusive doubly linked list of connections (oldest first). */
struct conn_list {
    struct conn *head, *tail;
};

struct server {
    struct server_config cfg;
    struct event_loop loop;
    struct listener listener;
    struct event_source signal_src;
    int signal_fd;
    struct conn_list all;  /* every open connection */
    struct conn_list idle; /* waiting for a request: the first to go when fds run out */
    struct conn *closed;   /* closed this turn, freed after it (see event_loop.h) */
    unsigned nconns;
    char *scratch;                    /* one read buffer for all connections (single thread) */
    struct response *spare_responses; /* freed responses kept for reuse (see conn.c) */
    unsigned nspare_responses;
    size_t in_cap; /* size of scratch and of a connection's own input buffer */
    char date[40]; /* cached Date header value */
    long long date_second;
    bool stopping;
    uint64_t stop_deadline_ms;
};

int server_init(struct server *srv, const struct server_config *cfg, char *err, size_t errlen);
/* Runs until SIGTERM/SIGINT and the graceful stop are done. 0, or -errno. */
int server_run(struct server *srv);
void server_free(struct server *srv);

const char *server_date(struct server *srv);

__attribute__((format(printf, 3, 4))) void server_log(const struct server *srv, int level,
                                                      const char *fmt, ...);

#endif
