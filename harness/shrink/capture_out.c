/* capture_out: what `connfault shrink CAPTURE` writes: flows.txt (the flows and segments
 * kept), minimal.ini and repro.c (the kept flows as scenario clients, where a scenario client
 * can do what the flow did), minimal.pcap (a failing run of the kept flows, recorded). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_time.h"
#include "shrink_internal.h"

/* A flow's segments sent further apart than this (at the replay's pace) are not one request
 * sent at once, which is all a scenario client can send without trickling. */
#define SEND_SPREAD_MS 10
#define REQUEST_MAX    (1u << 20) /* scenarios/README.md: a request is at most 1 MiB */

static uint64_t scaled_ms(const struct replay_set *set, uint64_t us)
{
    return replay_speed_ms(set->speed, us);
}

/* Why flow f cannot be a scenario client (in why), or false. */
static bool inexpressible(const struct replay_set *set, const struct replay_flow *f, char *why,
                          size_t len)
{
    uint64_t first = f->nsegs ? scaled_ms(set, f->segs[0].time_us) : 0;
    uint64_t spread = f->nsegs ? scaled_ms(set, f->segs[f->nsegs - 1].time_us) - first : 0;
    if (f->end == FLOW_END_BY_SERVER)
        snprintf(why, len, "the server ended it (a scenario client ends its connection itself)");
    else if (f->data_len > REQUEST_MAX)
        snprintf(why, len, "it sent %llu bytes (a scenario request is at most 1 MiB)",
                 (unsigned long long)f->data_len);
    else if (first > SEND_SPREAD_MS || spread > SEND_SPREAD_MS)
        snprintf(why, len,
                 "at this pace it sends its first bytes %llu ms after connecting and the rest "
                 "over %llu ms more (a scenario client sends its request at once, or trickles "
                 "it evenly)",
                 (unsigned long long)first, (unsigned long long)spread);
    else
        return false;
    return true;
}

/* Flow f as client group g (count 1). 0, or -1 (no memory). */
static int flow_group(const struct replay_set *set, const struct replay_flow *f, size_t number,
                      struct client_group *g)
{
    static const enum end_mode ends[] = {[FLOW_END_CLOSE] = END_CLOSE,
                                         [FLOW_END_HALF_CLOSE] = END_HALF_CLOSE,
                                         [FLOW_END_RESET] = END_RESET,
                                         [FLOW_END_STOP_READING] = END_HOLD,
                                         [FLOW_END_SILENT] = END_DROP};
    memset(g, 0, sizeof(*g));
    snprintf(g->name, sizeof(g->name), "flow%zu", number);
    g->count = g->concurrency = g->pipeline = 1;
    g->start_ms = (unsigned)scaled_ms(set, f->start_us);
    g->send = f->data_len ? SEND_WHOLE : SEND_NONE;
    if (f->data_len && !(g->request = malloc(f->data_len)))
        return -1;
    if (f->data_len)
        memcpy(g->request, f->data, f->data_len);
    g->request_len = f->data_len;
    g->end = ends[f->end];
    uint64_t in = f->server_bytes_before_end;
    g->read = g->end == END_HALF_CLOSE ? READ_ALL : in ? READ_BYTES : READ_NONE;
    g->read_bytes = (struct range){in, in};
    uint64_t sent = f->nsegs ? f->segs[f->nsegs - 1].time_us : 0;
    uint64_t hold = g->read == READ_NONE && f->end_us > sent ? scaled_ms(set, f->end_us - sent) : 0;
    g->hold_ms = (struct range){hold, hold};
    if (f->end == FLOW_END_STOP_READING && f->client_window > 0)
        g->rcvbuf = (int)(f->client_window < (64u << 20) ? f->client_window : (64u << 20));
    return 0;
}

static bool same_client(const struct client_group *a, const struct client_group *b)
{
    return a->start_ms == b->start_ms && a->send == b->send && a->end == b->end &&
           a->read == b->read && a->read_bytes.lo == b->read_bytes.lo &&
           a->hold_ms.lo == b->hold_ms.lo && a->rcvbuf == b->rcvbuf &&
           a->request_len == b->request_len &&
           (a->request_len == 0 || memcmp(a->request, b->request, a->request_len) == 0);
}

/* g joins an identical group of out (one more client of it, all at once), else is a new one. */
static void add_group(struct scenario *out, struct client_group *g)
{
    for (size_t i = 0; i < out->ngroups; i++) {
        if (same_client(&out->groups[i], g)) {
            out->groups[i].count++;
            out->groups[i].concurrency++;
            free(g->request);
            return;
        }
    }
    out->groups[out->ngroups++] = *g;
    out->needs_sandbox |= g->end == END_DROP;
    unsigned after = g->start_ms + 1000; /* every start is before the end of the fault phase */
    out->duration_ms = after > out->duration_ms ? after : out->duration_ms;
}

int shrink_cut_scenario(const struct shrink_cut *cut, struct scenario *out, char *why, size_t len)
{
    const struct replay_set *set = &cut->set;
    char no[256];
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < set->nflows; i++) {
        if (inexpressible(set, &set->flows[i], no, sizeof(no))) {
            snprintf(why, len, "flow %zu: %s", cut->orig[i] + 1, no);
            return -1;
        }
    }
    snprintf(out->name, sizeof(out->name), "%s", set->name);
    snprintf(out->path, sizeof(out->path), "%s", set->name);
    out->groups = calloc(set->nflows ? set->nflows : 1, sizeof(*out->groups));
    for (size_t i = 0; out->groups && i < set->nflows; i++) {
        struct client_group g;
        if (flow_group(set, &set->flows[i], cut->orig[i] + 1, &g) < 0) {
            scenario_free(out);
            break;
        }
        add_group(out, &g);
    }
    if (!out->groups)
        snprintf(why, len, "out of memory");
    return out->groups ? 0 : -1;
}
