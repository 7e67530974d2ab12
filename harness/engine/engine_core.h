/* engine_core: what the engine loop (engine.c) and its three client kinds share; private to
 * engine/ (the tests see engine_internal.h only).
 *
 * Every client is a struct engine_client at the start of its kind's own struct: a tcp_conn
 * (the socket layer), one timer, and an ops table through which the loop dispatches its
 * epoll events, its timer and the engine-wide actions (cut off, vanish, free). The kinds:
 *   fault_client.c   a scenario's client groups: scheduling and the scripted fault clients
 *   replay_client.c  a capture's flows, replayed on their captured times
 *   probe_client.c   probes: one request, one validated response
 * A client kind is added by writing one such file with its ops table.
 *
 * Closed clients are not freed on the spot but moved to the closed list, swept after each
 * batch of events, so no handler can ever touch freed memory.
 */
#ifndef CONNFAULT_ENGINE_CORE_H
#define CONNFAULT_ENGINE_CORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_list.h"
#include "engine.h"
#include "engine_internal.h"
#include "tcp_conn.h"
#include "timer_heap.h"

/* START_BURST: a probe whose connect completes during a flood sends its request only once
 * the pass ends. 256 connects took 130 ms on a loaded 2-core machine: a probe then sent its
 * request 300 ms after its handshake, and a server out of fds rightly evicted it as one of
 * the flood's silent clients (fd-exhaustion, bench/flake --busy). */
#define CONNECT_TIMEOUT_MS 5000  /* a SYN neither accepted nor refused: the backlog is full */
#define START_RETRY_MS     100   /* after EMFILE & co.: give fds time to come back, no spin */
#define START_BURST        32    /* clients started per pass, so events keep flowing */
#define READS_PER_EVENT    4     /* recv() calls per event; level-triggered epoll brings us back */
#define READ_BUF_SIZE      65536 /* the engine's one receive buffer, shared by all clients */

/* A deadline in the engine's heap. When due, fire(t) runs; container_of gets the owner. */
struct engine_timer {
    struct timer_node node;
    void (*fire)(struct engine_timer *t);
};

struct engine_client;

/* What a client kind does. Only cut_off and vanish may be NULL. */
struct engine_client_ops {
    void (*on_event)(struct engine_client *c, uint32_t events); /* its socket's epoll events */
    void (*on_timer)(struct engine_client *c);                  /* its timer is due */
    void (*cut_off)(struct engine_client *c); /* engine_cut_off: stop and hold; NULL: runs on */
    void (*vanish)(struct engine_client *c);  /* engine_vanish_all; NULL: stays */
    void (*free)(struct engine_client *c);    /* free its memory (the socket is closed) */
    bool reset_at_free; /* engine_free closes it with an RST (held sockets), else a FIN */
    /* engine_client_read: how many bytes it takes now, at most room (0: it is not reading);
     * what arrived; the server's EOF; a receive error (-errno: the server let go). */
    size_t (*read_want)(const struct engine_client *c, size_t room);
    void (*on_data)(struct engine_client *c, const char *data, size_t len);
    void (*on_eof)(struct engine_client *c);
    void (*on_recv_error)(struct engine_client *c, int err);
    /* engine_client_connect and engine_client_connect_event: the connect's outcome. */
    void (*on_connected)(struct engine_client *c);
    void (*on_connect_failed)(struct engine_client *c, int err); /* -errno */
};

struct engine_client {
    const struct engine_client_ops *ops;
    struct engine *engine;
    struct tcp_conn conn;
    struct engine_timer timer;
    struct cf_list link;   /* on the engine's live list, then its closed list */
    uint64_t connected_ms; /* e->now_ms when its connect succeeded; 0 before (engine_peers) */
};

struct group;  /* fault_client.c */
struct replay; /* replay_client.c */

struct engine {
    struct engine_config cfg;
    int epfd;
    uint64_t now_ms; /* refreshed once per loop step; timers are armed relative to it */
    struct timer_heap timers;
    size_t timer_owners; /* groups + clients + probes + the replay: the heap's reserved size */
    struct group **groups;
    size_t ngroups, groups_cap;
    struct cf_list live, closed; /* engine_clients of every kind */
    struct replay *replay;       /* or NULL */
    bool cut_off;
    bool stopped; /* engine_stop_starting: nothing starts any more (cut_off implies it) */
    /* clients engine_vanish_all closed (a cable pull): the server's sockets to them are held
     * after the peer vanished, not leaked (peers.c) */
    struct engine_peer *pulled;
    size_t npulled, pulled_cap;
    int error; /* first internal error, returned by engine_run() */
    char buf[READ_BUF_SIZE];
};

/* ---- engine.c: services for the client kinds ---- */

/* Out of fds or memory (ours or the system's) when starting a client: worth a retry later,
 * not an engine error. */
static inline bool engine_is_resource_shortage(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

/* Remember the first internal error (epoll_ctl failing, memory); engine_run returns it. */
void engine_fail(struct engine *e, int err);

void engine_timer_init(struct engine_timer *t, void (*fire)(struct engine_timer *t));
/* Room in the heap for one more timer owner (before creating it). 0, or -ENOMEM. */
int engine_timer_reserve(struct engine *e);
/* Arm (or move) t to due_ms. Never fails: every owner reserved its slot. */
void engine_timer_arm(struct engine *e, struct engine_timer *t, uint64_t due_ms);
void engine_timer_cancel(struct engine *e, struct engine_timer *t);
static inline bool engine_timer_armed(const struct engine_timer *t)
{
    return timer_node_armed(&t->node);
}

/* A zeroed client of `size` bytes (its kind's struct, engine_client first) on the live list,
 * its socket not open yet (conn.fd -1: tcp_conn_open(&c->conn, e->epfd) opens it). NULL when
 * out of memory. */
void *engine_client_new(struct engine *e, size_t size, const struct engine_client_ops *ops);
/* Undo engine_client_new for a client whose socket never opened: unlinked and freed. */
void engine_client_discard(struct engine_client *c);
/* engine_client_new and tcp_conn_open in one: 0 with the client in *out, or -ENOMEM, or
 * socket()'s -errno (EMFILE & co.: nothing is left behind). */
int engine_client_open(struct engine *e, size_t size, const struct engine_client_ops *ops,
                       void **out);
/* Begin connecting to the target. Connected at once or failed at once: on_connected or
 * on_connect_failed now; else it is watched for EPOLLOUT (see engine_client_connect_event),
 * its timer armed timeout_ms from now unless 0. */
void engine_client_connect(struct engine_client *c, const struct tcp_conn_options *opt,
                           uint64_t timeout_ms);
/* Its socket's first event while connecting: on_connected, or on_connect_failed (SO_ERROR). */
void engine_client_connect_event(struct engine_client *c);
/* Watch exactly `events` on its socket; a failure is an engine error. */
void engine_client_watch(struct engine_client *c, uint32_t events);
/* END_DROP, or a replayed silent ending, for a client its kind just held: silence it through
 * cfg.drop and keep its fd (tcp_conn_vanish says why), counted in st as dropped instead of
 * holding. False when there is no sandbox or the drop failed: it stays held. */
bool engine_client_vanish(struct engine_client *c, struct engine_group_stats *st);
/* engine_vanish_all, for a client about to go with a reset: count it in st as dropped (if it
 * was not already: a vanished one), no longer holding (held) or as ended (busy). */
void engine_client_count_pulled(const struct engine_client *c, bool held,
                                struct engine_group_stats *st);
/* Up to READS_PER_EVENT reads into the engine's buffer while read_want says so (level-
 * triggered epoll brings it back for the rest), handed to on_data, on_eof, on_recv_error.
 * True when it stopped with the socket drained or the reads done; false after on_eof or
 * on_recv_error. */
bool engine_client_read(struct engine_client *c);
/* Cancel its timer, close its socket (RST if reset) and move it to the closed list. */
void engine_client_close(struct engine_client *c, bool reset);

/* Min, median and max of n byte counts (n 0: all 0), for the evidence of clients or flows. */
void engine_bytes_spread(const uint64_t *received, size_t n, uint64_t *min, uint64_t *median,
                         uint64_t *max);

/* ---- peers.c ---- */

/* Before engine_vanish_all closes c: remember it as pulled, if it was connected and open and
 * is a fault or replay client. Out of memory: it is not remembered (its server socket would
 * then read as leaked, never as held: the harsher word). */
void engine_peer_note_pulled(struct engine *e, const struct engine_client *c);

/* ---- the client kinds ---- */

bool fault_groups_done(const struct engine *e);
void fault_groups_cut_off(struct engine *e);
/* No new client or flow may start (engine_stop_starting or engine_cut_off). */
static inline bool engine_starting(const struct engine *e)
{
    return !e->cut_off && !e->stopped;
}
void fault_groups_free(struct engine *e);

bool replay_done(const struct replay *r);
/* No more flows start, and every replay client still busy stops and holds. */
void replay_cut_off(struct replay *r);
void replay_free(struct replay *r);

#endif
