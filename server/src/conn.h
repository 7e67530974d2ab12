/* conn: one client connection: read, parse, answer, write, time out, close. */
#ifndef CONNFAULT_CONN_H
#define CONNFAULT_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "event_loop.h"
#include "response.h"

struct server;

enum conn_state { CONN_READING, CONN_WRITING, CONN_CLOSED };

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

struct conn {
    struct event_source src;
    struct loop_timer timer;
    struct server *srv;
    struct conn *prev, *next;           /* in srv->all */
    struct conn *idle_prev, *idle_next; /* in srv->idle, while idle */
    struct conn *next_closed;           /* in srv->closed */
    int fd;
    enum conn_state state;
    uint32_t interest; /* epoll events asked for */
    bool idle_listed;
    bool request_started; /* bytes of the next request have arrived */
    uint32_t requests;    /* answered so far */
    uint64_t since_ms;    /* start of the running deadline */
    char *in;             /* bytes kept between reads (partial or pipelined requests) */
    uint32_t in_len;
    uint32_t in_parsed;    /* of those, already scanned by the parser */
    uint64_t discard_left; /* request body bytes still to skip */
    struct response *resp; /* while answering; NULL when idle, so idle connections stay small */
};

/* Take over an accepted, non-blocking socket. Closes fd on failure. */
void conn_accepted(struct server *srv, int fd);
void conn_close(struct conn *c, enum close_reason why);
void conn_free(struct conn *c);
/* Stop: idle connections close now, busy ones after their current response. */
void conn_begin_shutdown(struct conn *c);
const char *close_reason_name(enum close_reason why);

#endif
