/* server: the context that owns everything (config, loop, listener, connection pool), and
 * the main loop with its graceful stop. No globals: the listener and the pool get what they
 * need through their option structs, filled here from the config (bug modes applied). */
#ifndef CONNFAULT_SERVER_H
#define CONNFAULT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "event_loop.h"
#include "listener.h"

struct server {
    struct server_config cfg;
    struct event_loop loop;
    struct listener listener;
    struct conn_pool conns;
    struct event_source signal_src;
    int signal_fd;
    bool stopping;
    uint64_t stop_deadline_ms;
};

int server_init(struct server *srv, const struct server_config *cfg, char *err, size_t errlen);
/* Runs until SIGTERM/SIGINT and the graceful stop are done. 0, or -errno. */
int server_run(struct server *srv);
/* Safe after server_init failed. */
void server_free(struct server *srv);

#endif
