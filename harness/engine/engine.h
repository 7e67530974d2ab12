/* engine: one epoll loop that drives thousands of scripted fault clients at once, plus
 * probe clients, without a thread or process per client.
 *
 * The caller adds client groups (struct client_group, from a scenario) and probes, then
 * calls engine_run() in slices; between slices it samples the target. Each client's random
 * numbers (ranges in the group) come from the seed, the group index and the client index,
 * so the same seed gives the same offsets and timings.
 */
#ifndef CONNFAULT_ENGINE_H
#define CONNFAULT_ENGINE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

struct engine;

struct engine_config {
    struct sockaddr_in target; /* the server under test (loopback) */
    struct in_addr source;     /* bind fault clients to this address; INADDR_ANY = kernel picks */
    uint64_t seed;
    /* END_DROP, and a replayed flow that ends silently: make this client connection vanish
     * (drop all its packets). Its socket is then kept, unused, until engine_vanish_all() or
     * engine_free() (closed, its port could go to a new client that would be dropped too).
     * 0 on success. NULL: such clients are held like END_HOLD. */
    int (*drop)(void *ctx, const struct sockaddr_in *client);
    void *drop_ctx;
};

struct engine_group_stats {
    uint64_t started; /* connect() issued */
    uint64_t connected;
    uint64_t connect_failed; /* refused, timed out, or reset before connecting */
    uint64_t bytes_sent, bytes_received;
    uint64_t responses;   /* whole responses read (READ_ALL) */
    uint64_t peer_closed; /* EOF from the server before the script was done */
    uint64_t peer_reset;  /* ECONNRESET/EPIPE from the server */
    uint64_t ended;       /* reached its end action (close, reset, half-close done, hold, drop) */
    uint64_t holding;     /* currently held open (END_HOLD, or cut off: engine_cut_off) */
    uint64_t released;    /* held, then closed by engine_release_held */
    uint64_t dropped;     /* vanished: packets dropped, socket discarded without FIN/RST */
};

/* The facts behind "did this group's fault happen", counted per client (each client at most
 * once per counter). Which counter is the group's criterion is the run's business
 * (run/evidence.c): the engine only counts. */
#define ENGINE_STATUS_MAX  8  /* distinct status codes kept; more go to status_other */
#define ENGINE_FIRST_BYTES 64 /* raw bytes kept of the first thing a client of the group got */
/* A server that closes a trickling client this long after it connected timed it out (it let it
 * trickle); sooner, it refused it (e.g. an error at once, like redis in protected mode). */
#define ENGINE_TRICKLE_TIMED_OUT_MS 500

struct engine_status_count {
    int status;       /* of a client's first response; 0: the answer was not HTTP */
    uint64_t clients; /* how many clients got it */
};

struct engine_group_evidence {
    uint64_t request_sent;      /* every byte of its request sent (pipeline copies included; a
                                   trickle: before its tail; a partial send: its N bytes) */
    uint64_t shut_wr;           /* END_HALF_CLOSE: shutdown(SHUT_WR) succeeded after the request */
    uint64_t read_to_limit;     /* READ_BYTES: read its N bytes (headers included) and, for an HTTP
                                   request, the response is 2xx and not complete (of a pipeline: not
                                   every response complete) at that moment */
    uint64_t short_response;    /* READ_BYTES, HTTP: every response complete before N bytes */
    uint64_t send_cut;          /* the server closed or reset it before its request was all sent
                                   (at least one byte was) */
    uint64_t trickling_at_cut;  /* SEND_TRICKLE: still connected and trickling at engine_cut_off
                                   (the run calls it when judging: trickles go on till then) */
    uint64_t trickle_timed_out; /* SEND_TRICKLE: closed or reset by the server while trickling,
                                   ENGINE_TRICKLE_TIMED_OUT_MS or more after connecting */
    uint64_t open_at_pull; /* connected and open at engine_vanish_all (a client that reads HTTP:
                              with a 2xx status line read) */
    uint64_t drop_applied; /* END_DROP: its drop rule added (after connecting; READ_BYTES: only
                              counted after read_to_limit) */
    uint64_t unread_any;   /* READ_NONE, open at engine_peek_unread: >= 1 byte waiting unread */
    uint64_t unread_2xx;   /* the same, and a 2xx status line (any bytes: a non-HTTP request) */
    /* expect = ... (client_group.expect_responses > 0, an HTTP request): */
    uint64_t expect_met;    /* read that many whole responses (any status) */
    uint64_t expect_eof;    /* not met, request sent: EOF from the server first */
    uint64_t expect_reset;  /* not met, request sent: reset (ECONNRESET, EPIPE) by the server */
    uint64_t expect_cut;    /* not met, request sent: still waiting when its script was cut
                               (engine_close_unfinished, engine_cut_off) */
    uint64_t not_exercised; /* closed by engine_close_unfinished: still connecting, sending or
                               reading at the cap, so its fault never happened */
    uint64_t expect_eof_bytes_min, expect_eof_bytes_max; /* bytes the expect_eof clients read */
    /* of expect_reset, those reset before reading any byte (as the kernel resets connections
     * the server never accepted: run/check_responses.c) */
    uint64_t expect_reset_unread;
    struct engine_status_count statuses[ENGINE_STATUS_MAX];
    size_t nstatuses;
    uint64_t status_other;                       /* clients whose status did not fit in statuses */
    uint64_t bytes_min, bytes_median, bytes_max; /* bytes read, over the clients started */
    char first_bytes[ENGINE_FIRST_BYTES];        /* raw; the first a client of the group got */
    size_t first_len;
};

struct probe_result {
    bool done;
    bool ok;             /* a complete, valid response within the deadline */
    uint64_t latency_us; /* connect to last byte (or to the failure) */
    char error[160];     /* why not ok: "connect: Connection refused", "timeout after 2000 ms
                            waiting for response headers", "status 503", ... */
    int status;          /* the HTTP status of its response head; 0: none read (or raw) */
    bool timed_out;      /* not ok because its deadline passed (connecting, or waiting) */
};

/* Returns NULL with a message in err on failure (epoll_create, memory). */
struct engine *engine_new(const struct engine_config *cfg, char *err, size_t errlen);

/* Schedule every client of the group, starting group->start_ms from now. The group must
 * stay valid while the engine runs. Returns the group's index, or -errno. */
int engine_add_group(struct engine *e, const struct client_group *group);

/* Process events and timers until the monotonic clock reaches until_ms (engine_now_ms()
 * time base). Returns 0, or -errno on an internal error (never for a client's error). */
int engine_run(struct engine *e, uint64_t until_ms);

/* True when every client of every group has reached its end action or was cut off (clients
 * not started after engine_stop_starting do not count). */
bool engine_groups_done(const struct engine *e);

/* The fault phase's duration is over: no fault client or replayed flow starts any more;
 * replay clients stop where they are and hold their socket; fault clients already started run
 * on to the end of their script (see engine_scripts_done, engine_close_unfinished). */
void engine_stop_starting(struct engine *e);

/* True when no started fault client is still in the part of its script that takes time
 * (connecting, sending its request, reading, pausing before its end action): each has
 * ended, holds, vanished, or trickles a tail (which never ends by itself: it trickles on
 * until engine_cut_off). */
bool engine_scripts_done(const struct engine *e);

/* The cap after the duration is reached: a fault client still connecting, sending (not a
 * trickle) or reading is closed with a reset and counted not_exercised (its fault never
 * happened: the harness ended it, not the server); a pausing one does its end action now.
 * Trickles trickle on and held clients stay held. */
void engine_close_unfinished(struct engine *e);

/* Let go of every held fault client (END_HOLD, and those engine_cut_off held): closed with
 * a FIN (a reset when data waits unread: the kernel's rule), as a client that is done would (a
 * scenario's `release = end`: the server must then serve again). Vanished ones stay (their packets
 * are dropped). Returns how many. */
uint64_t engine_release_held(struct engine *e);

/* Judging: clients not yet started are not started; clients still busy (a trickle) stop
 * where they are and hold their socket (never closed by the harness before the verdict: the
 * server must release them). */
void engine_cut_off(struct engine *e);

/* A cable pull: every fault client (not the probes) is discarded at once, with a reset that
 * must not reach the target (the caller has dropped their hosts' packets first); no new ones
 * start. */
void engine_vanish_all(struct engine *e);

void engine_group_stats(const struct engine *e, size_t group_index, struct engine_group_stats *out);

/* What the group's clients did so far, as evidence (see struct engine_group_evidence). */
void engine_group_evidence(const struct engine *e, size_t group_index,
                           struct engine_group_evidence *out);

/* Before judging: every open fault client that never reads looks (MSG_PEEK: nothing is
 * consumed, the window stays as it is) at what waits in its receive queue, for unread_any,
 * unread_2xx, its status and the first bytes. A client counts once: after it saw a byte, it
 * looks no more (so calling this at the end of the faults and again when judging is right). */
void engine_peek_unread(struct engine *e);

/* Replay the client side of captured connections (struct replay_flow, pcap_flows.h): each
 * flow connects at its time in the capture, sends every captured segment in one send() at its
 * time, reads what the server sends, and ends as the capture shows (close, half-close, reset,
 * stop reading and hold, vanish through cfg.drop, or follow the server's close). Times are
 * divided by speed; speed <= 0 replays without waiting. Clients come from cfg.source. The
 * flows must stay valid while the engine runs. One replay per engine: 0, -EBUSY, -ENOMEM. */
struct replay_flow;
int engine_add_replay(struct engine *e, const struct replay_flow *flows, size_t n, double speed);

/* What the replay clients did so far (all zero without a replay). */
void engine_replay_stats(const struct engine *e, struct engine_group_stats *out);

/* The facts behind "did the replay happen as captured" (run/evidence.c), counted per flow. */
struct engine_replay_evidence {
    uint64_t as_captured;    /* reached its captured end as the capture's client did: a flow the
                                client ended, its end action done holding at least the server
                                bytes the captured client held by then; a flow the server
                                ended, ended by the server (EOF or reset) after its first
                                segment, or still open at the cut-off, every segment sent */
    uint64_t short_of_bytes; /* a flow the client ended, ended with fewer server bytes than
                                captured (after waiting for them): the server sent less */
    uint64_t sent_all;       /* every captured segment sent */
    uint64_t peak_open;      /* most flows with a socket at once (a burst: as many as the
                                capture's, or the burst did not happen) */
    uint64_t bytes_min, bytes_median, bytes_max; /* bytes read, over the flows started */
};
void engine_replay_evidence(const struct engine *e, struct engine_replay_evidence *out);

/* Start a probe: connect, send request, read one response and validate it: with
 * expect == NULL an HTTP response with status 200 and its whole body (Content-Length,
 * chunked, or until close); otherwise the reply must start with expect[0..expect_len).
 * *out is filled in when the probe ends (out->done); it must stay valid until then or
 * until engine_free(). Returns 0 or -errno. */
int engine_probe(struct engine *e, const char *request, size_t request_len, const char *expect,
                 size_t expect_len, uint64_t timeout_ms, struct probe_result *out);

/* What the engine knows of the fault and replay clients a server socket may be talking to, for
 * telling a socket the server holds from one it leaked (run/measure.c). One row per client that
 * connected and is still open (LIVE: stalling, holding, or cut off; its fd is the harness's),
 * that vanished (END_DROP or a replayed silent end: fd kept, packets dropped), or that was
 * pulled (engine_vanish_all: closed with a reset the target never saw). A client that closed
 * or reset its connection itself, and a probe, has no row: a server socket whose peer has no
 * row was let go by its peer. */
enum engine_peer_state {
    ENGINE_PEER_LIVE = 1, /* connected and open: the server may still be waiting on it */
    ENGINE_PEER_VANISHED, /* silently gone: no FIN or RST ever reaches the server */
};
struct engine_peer {
    struct in_addr addr; /* the client's local address and port (the server socket's peer) */
    unsigned port;       /* host byte order */
    enum engine_peer_state state;
    uint64_t connected_ms; /* engine_now_ms() when it connected */
};

/* A snapshot of those rows, sorted by address and port, in *out (malloc'd, NULL when *n is 0;
 * the caller frees it). Read-only for the engine. 0, or -ENOMEM. */
int engine_peers(const struct engine *e, struct engine_peer **out, size_t *n);

/* The row of the client at addr:port (port in host byte order) in a snapshot, or NULL. */
const struct engine_peer *engine_peer_find(const struct engine_peer *peers, size_t n,
                                           struct in_addr addr, unsigned port);

/* Close every socket (held ones too, with a reset so nothing lingers) and free all. */
void engine_free(struct engine *e);

/* CLOCK_MONOTONIC in milliseconds: the time base of engine_run(). */
uint64_t engine_now_ms(void);

#endif
