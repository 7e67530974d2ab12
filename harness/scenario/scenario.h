/* scenario: the in-memory form of a fault scenario file (format: scenarios/README.md).
 *
 * A scenario is one or more client groups. Every client of a group runs the same script:
 *   connect -> send (whole / partial / trickle / nothing) -> [half-close] -> read (all / none / N)
 *   -> wait hold_ms -> end (close / reset / half-close / hold / drop)
 * Numbers given as "A-B" are drawn per client from the run's seed.
 */
#ifndef CONNFAULT_SCENARIO_H
#define CONNFAULT_SCENARIO_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum send_mode {
    SEND_WHOLE,   /* the request in one send (pipeline copies back to back) */
    SEND_PARTIAL, /* only the first send_bytes bytes of it */
    SEND_TRICKLE, /* trickle_bytes every trickle_interval_ms; then trickle_tail forever, if set */
    SEND_NONE,    /* connect and send nothing */
};

enum read_mode {
    READ_ALL,   /* until one whole response per request sent (HTTP framing), or EOF */
    READ_NONE,  /* never read */
    READ_BYTES, /* read read_bytes bytes of response (or until EOF), then end */
};

enum end_mode {
    END_CLOSE,      /* close(): FIN, or RST if unread data is queued (Linux) */
    END_RESET,      /* SO_LINGER {1,0} then close(): RST */
    END_HALF_CLOSE, /* shutdown(SHUT_WR) right after sending, read as told, then close */
    END_HOLD,       /* keep the socket open, stop reading, until the scenario ends */
    END_DROP,       /* vanish without FIN or RST (needs the network sandbox) */
};

struct replay_set; /* pcap_flows.h */

struct range {
    uint64_t lo, hi; /* inclusive; lo == hi for an exact number */
};

struct client_group {
    char name[64];
    int line; /* line of the [clients ...] header in the file */
    unsigned count;
    unsigned concurrency; /* at most this many open at once; 0 = count */
    double rate;          /* new connections per second; 0 = as fast as concurrency allows */
    unsigned start_ms;    /* delay from the start of the fault phase */
    char *request;        /* bytes of one request (already expanded); owned */
    size_t request_len;
    unsigned pipeline; /* copies of the request sent back to back (>= 1) */
    enum send_mode send;
    struct range send_bytes;      /* SEND_PARTIAL */
    unsigned trickle_bytes;       /* SEND_TRICKLE */
    unsigned trickle_interval_ms; /* SEND_TRICKLE */
    char *trickle_tail;           /* SEND_TRICKLE: repeated after the request; NULL = stop */
    size_t trickle_tail_len;
    enum read_mode read;
    struct range read_bytes; /* READ_BYTES */
    struct range hold_ms;    /* pause before the end action */
    enum end_mode end;
    /* `expect`: each client that reaches its fault must read this many whole responses
     * (status line, headers, body per Content-Length, chunked end or close) to the requests
     * it sent, in order; judged by the `responses` check. 0 = no expectation. */
    unsigned expect_responses;
    int rcvbuf;          /* SO_RCVBUF before connect; 0 = kernel default */
    struct in_addr host; /* client host (loopback address); 0 = the engine's default */
};

/* One entry of the bug catalogue (the `catches` key): run against connfault-server --bug BUG,
 * the scenario fails, and CHECK is among the checks that fail. The self-test runs every pair;
 * README.md and the man pages list them, and a test holds them to it. */
struct scenario_catch {
    char bug[32];   /* a --bug mode: 1 to 31 lowercase letters, digits or '-' */
    char check[16]; /* a check of the harness: accepting, alive, fds, sockets, cpu, memory,
                       responses */
};

/* The command line's paths a scenario's requests ask for (struct scenario.paths), so that a
 * run can check, before the first scenario, that the target has them (run/preflight.h). */
enum scenario_path {
    SCENARIO_PATH_PROBE = 1u << 0, /* {probe_path}, request = probe */
    SCENARIO_PATH_LARGE = 1u << 1, /* {large_path}, request = large */
    SCENARIO_PATH_HUGE = 1u << 2,  /* {huge_path}, request = huge */
};
#define SCENARIO_LARGE_MIN (1ull << 20)  /* bytes a {large_path} response must have at least */
#define SCENARIO_HUGE_MIN  (16ull << 20) /* {huge_path}: more than the socket buffers hold */

/* What ends the fault phase as designed (`bound`): the groups' counts (a client not started
 * in time did not get its fault), or the duration (counts are caps, as in a soak). */
enum scenario_bound { SCENARIO_BOUND_COUNT, SCENARIO_BOUND_DURATION };

/* When the harness lets go of the clients that hold (`release`): never before the verdict
 * (the server must release them itself), or at the end of the fault phase (the fault is the
 * holding itself, as in fd-exhaustion: the server must then serve again within the grace). */
enum scenario_release { SCENARIO_RELEASE_JUDGED, SCENARIO_RELEASE_END };

struct scenario {
    char name[64];
    char *description;    /* one line, for `connfault list`; owned */
    char path[4096];      /* file it came from */
    unsigned duration_ms; /* no client starts after it; those started finish (up to a cap) */
    enum scenario_bound bound;
    enum scenario_release release;
    unsigned rlimit_nofile; /* lower the started target's RLIMIT_NOFILE to this; 0 = leave it */
    bool needs_sandbox;     /* some group ends with END_DROP, or cable_pull is set */
    unsigned cable_pull_ms; /* into the fault phase: every client host goes dark; 0 = never */
    char *probe_raw;        /* this scenario's probe bytes (non-HTTP servers), or NULL; owned */
    size_t probe_raw_len;
    char *probe_expect; /* the reply must start with these bytes, or NULL; owned */
    size_t probe_expect_len;
    struct client_group *groups; /* owned */
    size_t ngroups;
    struct scenario_catch *catches; /* what it exists to catch, in file order, or NULL; owned */
    size_t ncatches;
    /* enum scenario_path bits: the paths its fault clients request (in a group that sends a
     * whole request or trickles one, not --request-raw / --probe-raw bytes) or its probe_raw
     * names. The probes' own GET --probe-path is not counted: that is the run's. */
    unsigned paths;
    /* `connfault replay`: the captured flows to replay as the fault clients (with or without
     * groups), or NULL; not owned, not touched by scenario_free. */
    const struct replay_set *replay;
};

/* What {placeholders} and request shorthands expand to (from the command line). */
struct scenario_vars {
    const char *host;        /* Host header value, e.g. "127.0.0.1:8080" */
    const char *probe_path;  /* default "/" */
    const char *large_path;  /* at least SCENARIO_LARGE_MIN bytes; default "/bytes/1048576" */
    const char *huge_path;   /* at least SCENARIO_HUGE_MIN bytes; default "/bytes/16777216" */
    const char *request_raw; /* --request-raw bytes replacing `request = large|huge`, or NULL */
    size_t request_raw_len;
    const char *probe_raw; /* --probe-raw bytes replacing `request = probe`, or NULL */
    size_t probe_raw_len;
};

/* Parse a scenario file. On error returns -1 and writes "FILE:LINE: message" to err.
 * The scenario's name is the file's base name without ".ini". */
int scenario_load(const char *path, const struct scenario_vars *vars, struct scenario *out,
                  char *err, size_t errlen);
void scenario_free(struct scenario *sc);

/* Write sc as a scenario file that scenario_load (given the same vars) reads back as the same
 * scenario, but for its name, catches and file lines: requests as request_raw, with {host} and
 * a request line's path placeholder put back where the bytes hold vars' values. header (or
 * NULL): comment lines first, one per line of it. 0, or -EIO when out failed
 * (scenario_write.c). */
int scenario_write(FILE *out, const struct scenario *sc, const struct scenario_vars *vars,
                   const char *header);

/* The keys a scenario file may give under [scenario] (clients false) or [clients NAME]: the
 * name of the i-th, or NULL past the last (so docs and tests can be checked against them). */
const char *scenario_key_name(bool clients, size_t i);

#endif
