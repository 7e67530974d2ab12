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
    uint64_t holding;     /* currently held open (END_HOLD, or cut off at the deadline) */
    uint64_t dropped;     /* vanished: packets dropped, socket discarded without FIN/RST */
};

struct probe_result {
    bool done;
    bool ok;             /* a complete, valid response within the deadline */
    uint64_t latency_us; /* connect to last byte (or to the failure) */
    char error[160];     /* why not ok: "connect: Connection refused", "timeout after 2000 ms
                            waiting for response headers", "status 503", ... */
};

/* Returns NULL with a message in err on failure (epoll_create, memory). */
struct engine *engine_new(const struct engine_config *cfg, char *err, size_t errlen);

/* Schedule every client of the group, starting group->start_ms from now. The group must
 * stay valid while the engine runs. Returns the group's index, or -errno. */
int engine_add_group(struct engine *e, const struct client_group *group);

/* Process events and timers until the monotonic clock reaches until_ms (engine_now_ms()
 * time base). Returns 0, or -errno on an internal error (never for a client's error). */
int engine_run(struct engine *e, uint64_t until_ms);

/* True when every client of every group has reached its end action or was cut off. */
bool engine_groups_done(const struct engine *e);

/* The fault phase is over: clients not yet started are not started; clients still busy
 * stop where they are and hold their socket (never closed by the harness: the server must
 * release them). */
void engine_cut_off(struct engine *e);

/* A cable pull: every fault client (not the probes) is discarded at once, with a reset that
 * must not reach the target (the caller has dropped their hosts' packets first); no new ones
 * start. */
void engine_vanish_all(struct engine *e);

void engine_group_stats(const struct engine *e, size_t group_index, struct engine_group_stats *out);

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

/* Start a probe: connect, send request, read one response and validate it: with
 * expect == NULL an HTTP response with status 200 and its whole body (Content-Length,
 * chunked, or until close); otherwise the reply must start with expect[0..expect_len).
 * *out is filled in when the probe ends (out->done); it must stay valid until then or
 * until engine_free(). Returns 0 or -errno. */
int engine_probe(struct engine *e, const char *request, size_t request_len, const char *expect,
                 size_t expect_len, uint64_t timeout_ms, struct probe_result *out);

/* Close every socket (held ones too, with a reset so nothing lingers) and free all. */
void engine_free(struct engine *e);

/* CLOCK_MONOTONIC in milliseconds: the time base of engine_run(). */
uint64_t engine_now_ms(void);

#endif
