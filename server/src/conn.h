/* conn: client connections (read, parse, answer, write, time out, close) and the pool that
 * owns them.
 *
 * The pool knows nothing of the server around it: its owner gives it the event loop and a
 * struct conn_opts, hands it accepted sockets through opts.serve, and calls
 * conn_pool_free_closed after every loop turn. */
#ifndef CONNFAULT_CONN_H
#define CONNFAULT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_list.h"
#include "event_loop.h"

struct conn;
struct conn_pool;
struct response;

enum close_reason {
    CLOSE_DONE,           /* response sent, Connection: close or the request asked for it */
    CLOSE_PEER_EOF,       /* the client closed (FIN) with no request pending */
    CLOSE_PEER_RESET,     /* ECONNRESET */
    CLOSE_PEER_GONE,      /* EPIPE */
    CLOSE_PEER_TIMED_OUT, /* ETIMEDOUT: TCP_USER_TIMEOUT or retransmissions gave up */
    CLOSE_HEADER_TIMEOUT,
    CLOSE_IDLE_TIMEOUT,
    CLOSE_SEND_TIMEOUT,
    CLOSE_EVICTED, /* idle, closed to make room when fds ran out */
    CLOSE_SHUTDOWN,
    CLOSE_ERROR, /* any other error */
};

/* What the pool does. The owner fills it from the configuration with the correct behaviour
 * (the values and functions named below); bug_modes_apply may then swap in a wrong one. */
struct conn_opts {
    unsigned max_conns; /* conn_pool_full at this many open connections */
    unsigned max_header_bytes;
    uint64_t header_timeout_ms; /* each timeout: 0 turns it off */
    uint64_t idle_timeout_ms;
    uint64_t send_timeout_ms;
    /* An idle connection is evicted (conn_pool_evict_idle) only once it has been idle this
     * long: one just accepted, or just answered, may have its request on the way. */
    uint64_t evict_grace_ms;
    int send_flags;      /* MSG_NOSIGNAL: a client that goes away costs an EPIPE... */
    bool ignore_sigpipe; /* ...and conn_pool_init ignores SIGPIPE, never the process */
    int verbosity;
    /* Takes over an accepted, non-blocking socket (closes it on failure): conn_accepted. */
    void (*serve)(struct conn_pool *pool, int fd);
    /* Lets go of the fd of a connection being closed: conn_close_fd. */
    void (*close_fd)(struct conn_pool *pool, int fd, enum close_reason why);
};

struct conn_pool {
    struct conn_opts opts;
    struct event_loop *loop;
    struct cf_list all;  /* every open connection, oldest first */
    struct cf_list idle; /* waiting for a request: the first to go when fds run out */
    struct conn *closed; /* closed this turn, freed after it (see event_loop.h) */
    unsigned nconns;
    char *scratch;                    /* one read buffer for all connections (single thread) */
    size_t in_cap;                    /* size of scratch and of a connection's own buffer */
    struct response *spare_responses; /* freed responses kept for reuse (see conn.c) */
    unsigned nspare_responses;
    char date[40]; /* cached Date header value */
    long long date_second;
    bool stopping; /* conn_pool_shutdown was called */
    uint64_t stop_deadline_ms;
};

/* 0, or -ENOMEM. Keeps loop and a copy of opts. conn_pool_free is safe after a failure, and
 * on a zeroed pool that was never initialised. */
int conn_pool_init(struct conn_pool *pool, struct event_loop *loop, const struct conn_opts *opts);
/* Closes every connection (CLOSE_SHUTDOWN) and frees everything. */
void conn_pool_free(struct conn_pool *pool);
/* Frees the connections closed during the last turn; call it between turns. */
void conn_pool_free_closed(struct conn_pool *pool);

bool conn_pool_full(const struct conn_pool *pool);
/* Frees an fd when they ran out: closes the connection idle longest (CLOSE_EVICTED) if it
 * has been idle for at least opts.evict_grace_ms (one that never sent a byte: since its
 * handshake, backlog wait included). One whose bytes turn out to have arrived is served
 * instead, and the next one considered. 0 if an fd was freed; -EAGAIN if the one idle
 * longest is younger than the grace, with *retry_ms the loop time at which it will not be;
 * -ENOENT if none is idle. */
int conn_pool_evict_idle(struct conn_pool *pool, uint64_t *retry_ms);
/* Stop: idle connections close now, busy ones after their current response, and none
 * lives past deadline_ms. */
void conn_pool_shutdown(struct conn_pool *pool, uint64_t deadline_ms);
/* The Date header value for now, formatted at most once a second. */
const char *conn_pool_date(struct conn_pool *pool);

/* The correct opts.serve: a connection served by the event loop. */
void conn_accepted(struct conn_pool *pool, int fd);
/* The correct opts.close_fd: close(2). */
void conn_close_fd(struct conn_pool *pool, int fd, enum close_reason why);

const char *close_reason_name(enum close_reason why);

#endif
