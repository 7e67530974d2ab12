/* evidence: did each client group's fault happen? (phases.h)
 *
 * The engine counts facts per group (struct engine_group_evidence); here each group gets the
 * fault its script is meant to cause, the counter that says a client reached it, and, when
 * fewer than half of the group's clients did, the verdict `error` with the cause and the fix
 * read from the same facts. A failed check always stands: a server that crashed fails. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcap_flows.h"
#include "sort_util.h"
#include "phases.h"

enum fault_kind {
    FAULT_CABLE_PULL,
    FAULT_TRICKLE,
    FAULT_HALF_CLOSE,
    FAULT_DROP,
    FAULT_ABORT_AFTER_BYTES,
    FAULT_CONNECT,
    FAULT_SEND_THEN_END,
    FAULT_NEVER_READ,
    FAULT_REQUEST,
    FAULT_AFTER_RESPONSE,
};

/* Each kind's name and what counts as reaching it (REPORTS.md has the same list). */
static const struct {
    const char *name, *criterion;
} fault_kinds[] = {
    [FAULT_CABLE_PULL] = {"cable-pull", "connected and open when the cable was pulled (reading "
                                        "HTTP: a 2xx status line read)"},
    [FAULT_TRICKLE] = {"trickle", "still connected and trickling when judged, or closed by "
                                  "the server while trickling, 500 ms or more after "
                                  "connecting (a timeout)"},
    [FAULT_HALF_CLOSE] = {"half-close", "request sent and shutdown(SHUT_WR) done"},
    [FAULT_DROP] = {"silent-drop", "drop rule added after it connected (read = N: after N bytes "
                                   "of a 2xx response, the response not complete)"},
    [FAULT_ABORT_AFTER_BYTES] = {"abort-after-bytes",
                                 "read its N bytes (headers included) of a 2xx response, the "
                                 "response not complete"},
    [FAULT_CONNECT] = {"connect", "connected"},
    [FAULT_SEND_THEN_END] = {"send-then-end", "request sent"},
    [FAULT_NEVER_READ] = {"never-read",
                          "request sent, and a 2xx response (any byte: not HTTP) "
                          "waiting unread in its receive queue (end of faults or judging)"},
    [FAULT_REQUEST] = {"request", "request sent, or cut short by the server after its first "
                                  "bytes"},
    [FAULT_AFTER_RESPONSE] = {"after-response", "its responses read whole, then its end "
                                                "action done"},
};

static enum fault_kind fault_of(const struct scenario *sc, const struct client_group *g)
{
    if (sc->cable_pull_ms)
        return FAULT_CABLE_PULL;
    if (g->send == SEND_TRICKLE)
        return FAULT_TRICKLE;
    if (g->end == END_HALF_CLOSE)
        return FAULT_HALF_CLOSE;
    if (g->end == END_DROP)
        return FAULT_DROP;
    if (g->read == READ_BYTES)
        return FAULT_ABORT_AFTER_BYTES;
    if (g->send == SEND_NONE)
        return FAULT_CONNECT;
    if (g->read == READ_NONE)
        return g->end == END_HOLD ? FAULT_NEVER_READ : FAULT_SEND_THEN_END;
    return g->end == END_CLOSE ? FAULT_REQUEST : FAULT_AFTER_RESPONSE;
}

static uint64_t fault_reached(enum fault_kind k, const struct engine_group_stats *st,
                              const struct engine_group_evidence *ev)
{
    switch (k) {
    case FAULT_CABLE_PULL:
        return ev->open_at_pull;
    case FAULT_TRICKLE:
        return ev->trickling_at_cut + ev->trickle_timed_out;
    case FAULT_HALF_CLOSE:
        return ev->shut_wr;
    case FAULT_DROP:
        return ev->drop_applied;
    case FAULT_ABORT_AFTER_BYTES:
        return ev->read_to_limit;
    case FAULT_CONNECT:
        return st->connected;
    case FAULT_SEND_THEN_END:
        return ev->request_sent;
    case FAULT_NEVER_READ:
        return ev->unread_2xx;
    case FAULT_REQUEST:
        return ev->request_sent + ev->send_cut;
    case FAULT_AFTER_RESPONSE:
        return st->ended;
    }
    return 0;
}

/* The criterion with the group's N, when it has one. */
static void criterion_text(enum fault_kind k, const struct client_group *g, char *out, size_t cap)
{
    const char *text = fault_kinds[k].criterion;
    const char *n = strstr(text, "N bytes");
    if (g->read != READ_BYTES || !n) {
        snprintf(out, cap, "%s", text);
        return;
    }
    char range[48];
    if (g->read_bytes.hi > g->read_bytes.lo)
        snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)g->read_bytes.lo,
                 (unsigned long long)g->read_bytes.hi);
    else
        snprintf(range, sizeof(range), "%llu", (unsigned long long)g->read_bytes.lo);
    snprintf(out, cap, "%.*s%s%s", (int)(n - text), text, range, n + 1);
}

/* What the engine counted of any group, fault clients or replayed flows. */
static void copy_stats(const struct engine_group_stats *st, struct group_evidence *out)
{
    out->started = st->started;
    out->connected = st->connected;
    out->connect_failed = st->connect_failed;
    out->peer_closed = st->peer_closed;
    out->peer_reset = st->peer_reset;
}

static void copy_group(const struct scenario *sc, size_t i, const struct engine_group_stats *st,
                       const struct engine_group_evidence *ev, struct group_evidence *out)
{
    const struct client_group *g = &sc->groups[i];
    enum fault_kind k = fault_of(sc, g);
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", g->name);
    snprintf(out->fault, sizeof(out->fault), "%s", fault_kinds[k].name);
    criterion_text(k, g, out->criterion, sizeof(out->criterion));
    out->planned = g->count;
    copy_stats(st, out);
    out->request_sent = ev->request_sent;
    for (size_t j = 0; j < ev->nstatuses && j < REPORT_MAX_STATUSES; j++)
        out->statuses[out->nstatuses++] = (struct status_count){.status = ev->statuses[j].status,
                                                                .clients = ev->statuses[j].clients};
    out->status_other = ev->status_other;
    out->bytes_min = ev->bytes_min;
    out->bytes_median = ev->bytes_median;
    out->bytes_max = ev->bytes_max;
    out->reached = fault_reached(k, st, ev);
    out->not_exercised = ev->not_exercised;
    result_escape_bytes(ev->first_bytes, ev->first_len, out->first_bytes, sizeof(out->first_bytes));
}

/* Most flows of the capture open at once (first to last packet of each): a sweep over their
 * starts and ends in time order. 0 when out of memory. */
static uint64_t capture_peak_open(const struct replay_set *set)
{
    size_t n = set->nflows;
    uint64_t *starts = malloc((n ? n : 1) * sizeof(*starts));
    uint64_t *ends = malloc((n ? n : 1) * sizeof(*ends));
    uint64_t open = 0, peak = 0;
    for (size_t i = 0; starts && ends && i < n; i++) {
        starts[i] = set->flows[i].start_us;
        ends[i] = set->flows[i].start_us + set->flows[i].duration_us;
    }
    if (starts && ends) {
        qsort(starts, n, sizeof(*starts), cf_compare_u64);
        qsort(ends, n, sizeof(*ends), cf_compare_u64);
        for (size_t i = 0, j = 0; i < n;) {
            if (starts[i] <= ends[j]) { /* a flow that starts as another ends overlaps it */
                peak = ++open > peak ? open : peak;
                i++;
            } else {
                open--;
                j++;
            }
        }
    }
    free(starts);
    free(ends);
    return peak;
}

/* A replay's flows, as one more entry of the evidence (named "replay"): a flow reached its
 * fault when it did what the captured client did at its end, after its bytes (closed, reset,
 * half-closed, stopped reading, vanished), or the server ended it as in the capture. */
static void copy_replay(const struct scenario *sc, const struct engine_group_stats *st,
                        const struct engine_replay_evidence *ev, struct group_evidence *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "replay");
    snprintf(out->fault, sizeof(out->fault), "captured-end");
    snprintf(out->criterion, sizeof(out->criterion),
             "ended as in the capture, holding the server bytes its client held by then "
             "(closed, reset, half-closed, stopped reading, vanished); or ended by the server, "
             "or still waiting for it when judged");
    out->planned = sc->replay->nflows;
    copy_stats(st, out);
    out->request_sent = ev->sent_all;
    out->bytes_min = ev->bytes_min;
    out->bytes_median = ev->bytes_median;
    out->bytes_max = ev->bytes_max;
    out->reached = ev->as_captured;
    out->peak_open = ev->peak_open;
    out->capture_peak_open = capture_peak_open(sc->replay);
}

void evidence_collect(struct scenario_run *r)
{
    struct engine_group_evidence ev[REPORT_MAX_GROUPS];
    engine_peek_unread(r->e);
    r->res->ngroups = 0;
    for (size_t i = 0; i < r->sc->ngroups && i < REPORT_MAX_GROUPS; i++) {
        struct engine_group_stats st;
        engine_group_stats(r->e, i, &st);
        engine_group_evidence(r->e, i, &ev[i]);
        copy_group(r->sc, i, &st, &ev[i], &r->res->groups[r->res->ngroups++]);
    }
    if (r->sc->replay && r->res->ngroups < REPORT_MAX_GROUPS) {
        struct engine_group_stats st;
        struct engine_replay_evidence flows;
        engine_replay_stats(r->e, &st);
        engine_replay_evidence(r->e, &flows);
        copy_replay(r->sc, &st, &flows, &r->res->groups[r->res->ngroups++]);
    }
    check_responses(r->sc, ev, &r->s.kernel, r->res);
    exhaust_judge(&r->exhaust, &r->s.kernel, (double)r->sc->duration_ms / 1000.0,
                  r->res->clients_connected, &r->res->exhaustion);
}

/* ---- the cause of an error, and its fix ---- */

static bool needs_2xx(enum fault_kind k)
{
    return k == FAULT_ABORT_AFTER_BYTES || k == FAULT_NEVER_READ || k == FAULT_DROP ||
           k == FAULT_CABLE_PULL;
}

/* The request line ("GET /x HTTP/1.1" -> "GET /x"), escaped, and its target. */
static void request_words(const struct client_group *g, char *line, size_t cap, char *target,
                          size_t tcap)
{
    size_t len = strcspn(g->request, "\r\n");
    const char *v = memmem(g->request, len, " HTTP/", 6);
    if (v)
        len = (size_t)(v - g->request);
    result_escape_bytes(g->request, len < 120 ? len : 120, line, cap);
    const char *sp = memchr(g->request, ' ', len);
    size_t tlen = sp ? len - (size_t)(sp + 1 - g->request) : 0;
    snprintf(target, tcap, "%.*s", (int)tlen, sp ? sp + 1 : "");
}

/* Which flag (or the scenario file) names the path a group asks for. */
static void path_source(struct scenario_run *r, const struct client_group *g, const char *target,
                        char *out, size_t cap)
{
    const struct run_options *o = r->env->opt;
    if (o->large_path && strcmp(target, o->large_path) == 0)
        snprintf(out, cap, "--large-path");
    else if (o->probe_path && strcmp(target, o->probe_path) == 0)
        snprintf(out, cap, "--probe-path");
    else
        snprintf(out, cap, "the scenario's path (%.200s:%d)", r->sc->path, g->line);
}

/* The most frequent status that is not 2xx, and how many clients got a 2xx or another. */
static const struct status_count *worst_status(const struct group_evidence *ge, uint64_t *known)
{
    const struct status_count *worst = NULL;
    *known = ge->status_other;
    for (size_t i = 0; i < ge->nstatuses; i++) {
        const struct status_count *sc = &ge->statuses[i];
        *known += sc->clients;
        if ((sc->status < 200 || sc->status > 299) && (!worst || sc->clients > worst->clients))
            worst = sc;
    }
    return worst;
}

static bool cause_status(struct scenario_run *r, const struct client_group *g,
                         const struct group_evidence *ge, char *out, size_t cap)
{
    uint64_t known;
    const struct status_count *worst = worst_status(ge, &known);
    if (!worst || worst->clients * 2 < known)
        return false;
    char line[160], target[128], flag[256];
    request_words(g, line, sizeof(line), target, sizeof(target));
    if (worst->status == 0) {
        snprintf(out, cap,
                 "%.100s got an answer that is not HTTP for %llu of %llu clients (first bytes: "
                 "'%.100s'): is the target an HTTP server? For another protocol give --request-raw",
                 line, (unsigned long long)worst->clients, (unsigned long long)ge->started,
                 ge->first_bytes);
        return true;
    }
    path_source(r, g, target, flag, sizeof(flag));
    snprintf(out, cap,
             "%.100s answered %d for %llu of %llu clients: give %.150s a resource the server has",
             line, worst->status, (unsigned long long)worst->clients,
             (unsigned long long)ge->started, flag);
    return true;
}

static bool cause_short(struct scenario_run *r, const struct client_group *g,
                        const struct engine_group_evidence *ev, const struct group_evidence *ge,
                        char *out, size_t cap)
{
    if (g->read != READ_BYTES || ev->short_response * 2 < ge->started)
        return false;
    char line[160], target[128], flag[256];
    request_words(g, line, sizeof(line), target, sizeof(target));
    path_source(r, g, target, flag, sizeof(flag));
    snprintf(
        out, cap,
        "%.100s was answered whole in fewer than the %llu bytes read for %llu of %llu clients: "
        "give %.150s a larger resource",
        line, (unsigned long long)g->read_bytes.hi, (unsigned long long)ev->short_response,
        (unsigned long long)ge->started, flag);
    return true;
}

/* Where a group's clients come from: its own host, or the fault clients' (127.k.0.2 in job k:
 * both moved for the job). */
static void group_source(const struct scenario_run *r, const struct client_group *g, char *out)
{
    inet_ntop(AF_INET, g->host.s_addr ? &g->host : &r->env->fault_host, out, INET_ADDRSTRLEN);
}

/* The server let them go (EOF or reset) before their fault. */
static bool cause_closed(const struct scenario_run *r, const struct client_group *g,
                         enum fault_kind k, const struct group_evidence *ge, char *out, size_t cap)
{
    char host[INET_ADDRSTRLEN];
    group_source(r, g, host);
    uint64_t gone = ge->peer_closed + ge->peer_reset;
    if (gone * 2 < ge->connected || gone == 0)
        return false;
    char first[200] = "";
    if (ge->first_bytes[0])
        snprintf(first, sizeof(first), " (first bytes: '%.160s')", ge->first_bytes);
    if (k == FAULT_TRICKLE) {
        snprintf(out, cap,
                 "%llu of %llu trickling clients were closed by the server within %d ms of "
                 "connecting%s: the server refuses or drops clients from %s (fault clients "
                 "come from there)",
                 (unsigned long long)gone, (unsigned long long)ge->connected,
                 ENGINE_TRICKLE_TIMED_OUT_MS, first, host);
        return true;
    }
    snprintf(out, cap,
             "%llu of %llu fault clients got EOF (%llu) or a reset (%llu) before their fault%s: "
             "the server refuses or drops clients from %s (fault clients come from there)",
             (unsigned long long)gone, (unsigned long long)ge->connected,
             (unsigned long long)ge->peer_closed, (unsigned long long)ge->peer_reset, first, host);
    return true;
}

/* ---- raw reads that wait for more than the server sends ---- */

/* A group that reads (read = N, read = all) the response to the --request-raw bytes: those
 * cannot be framed, so its clients read until their N bytes or an EOF. */
static bool raw_reader(const struct scenario_run *r, const struct client_group *g)
{
    const struct run_options *o = r->env->opt;
    return (g->read == READ_BYTES || g->read == READ_ALL) && o->request_raw &&
           g->request_len == o->request_raw_len &&
           memcmp(g->request, o->request_raw, o->request_raw_len) == 0;
}

/* Its clients still open when judged: neither ended nor let go by the server. Such a client
 * waits for bytes (or an EOF) the server never sends, while the server, its answer given,
 * waits for the next request: the client holds the connection, not the server. */
static uint64_t raw_waiting(const struct scenario_run *r, size_t i)
{
    if (i >= r->sc->ngroups || !raw_reader(r, &r->sc->groups[i]))
        return 0;
    struct engine_group_stats st;
    engine_group_stats(r->e, i, &st);
    uint64_t gone = st.ended + st.peer_closed + st.peer_reset + st.dropped;
    return st.connected > gone ? st.connected - gone : 0;
}

/* "read = 65536 but the server sent 7 bytes ('+PONG\r\n') ...": for a raw group whose clients
 * all read less than their N (or, read = all, most of them still wait). */
/* What the server sent a raw group, and that it then waited (or closed): the cause, with its
 * fix. */
static void raw_short_text(const struct client_group *g, const struct group_evidence *ge,
                           uint64_t waiting, char *out, size_t cap)
{
    char sent[64], want[64], then[96];
    if (ge->bytes_min == ge->bytes_max)
        snprintf(sent, sizeof(sent), "%llu bytes", (unsigned long long)ge->bytes_max);
    else
        snprintf(sent, sizeof(sent), "%llu to %llu bytes", (unsigned long long)ge->bytes_min,
                 (unsigned long long)ge->bytes_max);
    if (g->read == READ_BYTES && g->read_bytes.hi > g->read_bytes.lo)
        snprintf(want, sizeof(want), "read = %llu-%llu", (unsigned long long)g->read_bytes.lo,
                 (unsigned long long)g->read_bytes.hi);
    else if (g->read == READ_BYTES)
        snprintf(want, sizeof(want), "read = %llu", (unsigned long long)g->read_bytes.lo);
    else
        snprintf(want, sizeof(want), "read = all");
    if (waiting)
        snprintf(then, sizeof(then), "then waited (%llu of %llu clients still waiting when judged)",
                 (unsigned long long)waiting, (unsigned long long)ge->connected);
    else
        snprintf(then, sizeof(then), "no more (%llu closed, %llu reset by the server)",
                 (unsigned long long)ge->peer_closed, (unsigned long long)ge->peer_reset);
    snprintf(out, cap,
             "%.40s but the server sent %.40s ('%.60s') and %s: the fault never happened; %s", want,
             sent, ge->first_bytes, then,
             g->read == READ_BYTES ? "make the request's response larger or lower read"
                                   : "give a request the server answers and then closes, or "
                                     "read = N");
}

/* A raw group whose clients all read less than their N (or, read = all, most still wait). */
static bool cause_raw_short(struct scenario_run *r, size_t i, char *out, size_t cap)
{
    const struct client_group *g = &r->sc->groups[i];
    const struct group_evidence *ge = &r->res->groups[i];
    uint64_t waiting = raw_waiting(r, i);
    bool short_read = g->read == READ_BYTES && ge->bytes_max < g->read_bytes.lo;
    if (!raw_reader(r, g) || (g->read == READ_BYTES ? !short_read : waiting * 2 < ge->connected))
        return false;
    raw_short_text(g, ge, waiting, out, cap);
    return true;
}

/* Why a replay's flows did not reach their captured ends. */
static void replay_cause(const struct scenario_run *r, const struct group_evidence *ge, char *out,
                         size_t cap)
{
    struct engine_replay_evidence ev;
    engine_replay_evidence(r->e, &ev);
    uint64_t short_of_bytes = ev.short_of_bytes;
    char addr[INET_ADDRSTRLEN], from[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &r->t->addr.sin_addr, addr, sizeof(addr));
    inet_ntop(AF_INET, &r->env->fault_host, from, sizeof(from));
    if (ge->started * 2 < ge->planned)
        snprintf(out, cap,
                 "only %llu of %llu flows started within the replay (%.1fs): the capture is "
                 "longer than the replay may last",
                 (unsigned long long)ge->started, (unsigned long long)ge->planned,
                 r->sc->duration_ms / 1000.0);
    else if (ge->connected * 2 < ge->started)
        snprintf(out, cap,
                 "only %llu of %llu flows connected to %s:%d from %s (%llu refused or timed "
                 "out): the server must accept connections from every loopback address, in "
                 "time, and no rule may drop them",
                 (unsigned long long)ge->connected, (unsigned long long)ge->started, addr,
                 ntohs(r->t->addr.sin_port), from, (unsigned long long)ge->connect_failed);
    else if (short_of_bytes * 2 >= ge->connected)
        snprintf(out, cap,
                 "%llu of the %llu connected flows ended with fewer of the server's bytes than "
                 "their captured clients had by then: this server answered the captured "
                 "requests with less (a 404 for a large response?); the replay sends the "
                 "capture's bytes as they are: replay it against a server that serves the "
                 "capture's paths",
                 (unsigned long long)short_of_bytes, (unsigned long long)ge->connected);
    else
        snprintf(out, cap,
                 "the server closed %llu and reset %llu of the %llu connected flows before "
                 "they reached their captured ends: it does not answer them as the captured "
                 "server did (another port, path or protocol?)",
                 (unsigned long long)ge->peer_closed, (unsigned long long)ge->peer_reset,
                 (unsigned long long)ge->connected);
}

static void group_cause(struct scenario_run *r, size_t i, const struct engine_group_evidence *ev,
                        char *out, size_t cap)
{
    if (i >= r->sc->ngroups) { /* the replay's entry (copy_replay) */
        replay_cause(r, &r->res->groups[i], out, cap);
        return;
    }
    const struct client_group *g = &r->sc->groups[i];
    const struct group_evidence *ge = &r->res->groups[i];
    enum fault_kind k = fault_of(r->sc, g);
    char addr[INET_ADDRSTRLEN], from[INET_ADDRSTRLEN];
    group_source(r, g, from);
    /* A raw group waiting for bytes the server never sends explains the rest too: its
     * clients never finish, so the others of a limited concurrency never start. */
    if (cause_raw_short(r, i, out, cap))
        return;
    if (ge->connected * 2 < ge->started) {
        inet_ntop(AF_INET, &r->t->addr.sin_addr, addr, sizeof(addr));
        snprintf(out, cap,
                 "only %llu of %llu clients connected to %s:%d from %s (%llu refused or timed "
                 "out, the rest still connecting when the fault phase ended): the server must "
                 "accept connections from every loopback address, in time, and no rule may drop "
                 "them",
                 (unsigned long long)ge->connected, (unsigned long long)ge->started, addr,
                 ntohs(r->t->addr.sin_port), from, (unsigned long long)ge->connect_failed);
        return;
    }
    /* What the server did to those that connected comes before how many started: a refused
     * client ends at once, yet on a loaded machine the harness may still have started fewer
     * than half (redis in protected mode, -DENIED, beside other tests under ASan). */
    if ((needs_2xx(k) && cause_status(r, g, ge, out, cap)) || cause_short(r, g, ev, ge, out, cap) ||
        cause_closed(r, g, k, ge, out, cap))
        return;
    if (r->sc->bound == SCENARIO_BOUND_COUNT && ge->started * 2 < ge->planned) {
        snprintf(out, cap,
                 "only %llu of %llu clients started within the fault phase (%.1fs): the server "
                 "accepts too slowly for the scenario's duration; give a longer one (or, if the "
                 "counts are caps, as in a soak, say bound = duration)",
                 (unsigned long long)ge->started, (unsigned long long)ge->planned,
                 r->sc->duration_ms / 1000.0);
    } else {
        snprintf(out, cap, "%s", "no single cause found in the evidence (see its numbers)");
    }
}

static int64_t field_int(const struct check_result *c, const char *key)
{
    for (size_t i = 0; i < c->nfields; i++)
        if (strcmp(c->fields[i].key, key) == 0)
            return c->fields[i].i;
    return 0;
}

/* The only failed check is fds, and every fd it counts left over is a socket held by a live
 * client of a raw group still waiting for bytes the server never sent: that is the scenario
 * meeting this target, not the server holding them. Then fds is not checked (the numbers
 * stay), and the verdict is error with each waiting group's cause. */
static bool raw_wait_not_the_server(struct scenario_run *r)
{
    struct scenario_result *res = r->res;
    struct check_result *fds = NULL;
    for (size_t i = 0; i < res->nchecks; i++)
        if (res->checks[i].status == CHECK_FAILED) {
            if (fds || strcmp(res->checks[i].name, "fds") != 0)
                return false;
            fds = &res->checks[i];
        }
    uint64_t waiting = 0;
    for (size_t i = 0; i < res->ngroups; i++)
        waiting += raw_waiting(r, i);
    int64_t held = fds ? field_int(fds, "held_live") : 0;
    if (held <= 0 || (uint64_t)held > waiting || field_int(fds, "leaked") ||
        field_int(fds, "held_vanished") || field_int(fds, "other_open"))
        return false;
    fds->status = CHECK_NOT_CHECKED;
    size_t len = strlen(fds->summary);
    snprintf(fds->summary + len, sizeof(fds->summary) - len,
             "; not the server's doing: the %lld held are connfault's own clients still waiting "
             "for bytes the server never sent",
             (long long)held);
    res->verdict = VERDICT_ERROR;
    res->reason[0] = '\0';
    char cause[400];
    for (size_t i = 0, used = 0; i < res->ngroups && used < sizeof(res->reason); i++) {
        uint64_t w = raw_waiting(r, i);
        if (w == 0)
            continue;
        raw_short_text(&r->sc->groups[i], &res->groups[i], w, cause, sizeof(cause));
        int n = snprintf(res->reason + used, sizeof(res->reason) - used, "%sgroup %s: %s",
                         used ? "; " : "", res->groups[i].name, cause);
        used = n < 0 ? sizeof(res->reason) : used + (size_t)n;
    }
    return true;
}

/* A scenario with rlimit_nofile passes only if the target ran out of what it can take
 * (exhaustion.h): else `error`, its cause after the groups' (if any). */
static void exhaustion_judge(struct scenario_run *r)
{
    struct scenario_result *res = r->res;
    const struct exhaustion_evidence *x = &res->exhaustion;
    if (!r->sc->rlimit_nofile || (res->verdict != VERDICT_PASS && res->verdict != VERDICT_ERROR))
        return;
    if (x->how == EXHAUSTION_OUT_OF_FDS || x->how == EXHAUSTION_STOPPED)
        return;
    const char *cause = x->how == EXHAUSTION_NOT_REACHED
                            ? x->summary
                            : "the target's fds could not be read during the fault phase";
    size_t used = res->verdict == VERDICT_ERROR ? strlen(res->reason) : 0;
    snprintf(res->reason + used, sizeof(res->reason) - used,
             "%snot exhausted (rlimit_nofile = %u): %s", used ? "; " : "", r->sc->rlimit_nofile,
             cause);
    res->verdict = VERDICT_ERROR;
}

/* Each group that fewer than half of its clients reached: `error`, with the cause. */
static void evidence_judge_groups(struct scenario_run *r)
{
    struct scenario_result *res = r->res;
    size_t used = 0;
    char cause[400], last[400] = "";
    for (size_t i = 0; i < res->ngroups; i++) {
        const struct group_evidence *ge = &res->groups[i];
        /* bound = duration: the counts are caps; judge the clients the duration let start
         * (none at all is still an error) */
        uint64_t meant =
            r->sc->bound == SCENARIO_BOUND_DURATION ? (ge->started ? ge->started : 1) : ge->planned;
        if (ge->reached * 2 >= meant)
            continue;
        struct engine_group_evidence ev = {0};
        if (i < r->sc->ngroups)
            engine_group_evidence(r->e, i, &ev);
        group_cause(r, i, &ev, cause, sizeof(cause));
        bool same = strcmp(cause, last) == 0;
        snprintf(last, sizeof(last), "%s", cause);
        res->verdict = VERDICT_ERROR;
        int n = snprintf(res->reason + used, sizeof(res->reason) - used,
                         "%sgroup %s reached its fault (%s) in %llu of %llu %s: %s",
                         used ? "; " : "", ge->name, ge->fault, (unsigned long long)ge->reached,
                         (unsigned long long)ge->planned, i < r->sc->ngroups ? "clients" : "flows",
                         same ? "the same cause" : cause);
        if (n < 0 || (size_t)n >= sizeof(res->reason) - used)
            break;
        used += (size_t)n;
    }
}

void evidence_judge(struct scenario_run *r)
{
    struct scenario_result *res = r->res;
    if (res->verdict == VERDICT_FAIL && raw_wait_not_the_server(r))
        return;
    if (res->verdict == VERDICT_PASS)
        evidence_judge_groups(r);
    exhaustion_judge(r); /* a failed check stands; a skip has its reason */
}
