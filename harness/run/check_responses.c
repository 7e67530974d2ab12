/* check_responses: the `responses` check (checks.h): did every fault client that reached its
 * fault get what its group's `expect` says it must receive? */
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "engine.h"
#include "http_response.h"
#include "scenario.h"

/* One group's numbers, its expectation and its clients in words. */
struct expect_tally {
    uint64_t clients, got, eof, reset, cut, other;
    char expected[48], who[160]; /* room for a 63-byte group name and a 23-byte fault */
};

static void tally_group(const struct client_group *g, const struct group_evidence *ge,
                        const struct engine_group_evidence *ev, struct expect_tally *t)
{
    memset(t, 0, sizeof(*t));
    t->clients = ge->reached;
    t->got = ev->expect_met < ge->reached ? ev->expect_met : ge->reached;
    t->eof = ev->expect_eof;
    t->reset = ev->expect_reset;
    t->cut = ev->expect_cut;
    uint64_t known = t->got + t->eof + t->reset + t->cut;
    t->other = known < t->clients ? t->clients - known : 0;
    if (g->expect_responses == 1)
        snprintf(t->expected, sizeof(t->expected), "the whole response");
    else
        snprintf(t->expected, sizeof(t->expected), "their first %u responses whole",
                 g->expect_responses);
    if (strcmp(ge->fault, "half-close") == 0)
        snprintf(t->who, sizeof(t->who), "half-closed clients (group %s)", ge->name);
    else
        snprintf(t->who, sizeof(t->who), "clients of group %s that reached their fault (%s)",
                 ge->name, ge->fault);
}

/* " (20 got EOF after 0 bytes, 3 were reset)": what became of those that did not get it. */
static void missed_text(const struct expect_tally *t, const struct engine_group_evidence *ev,
                        char *out, size_t cap)
{
    char part[4][96];
    size_t n = 0;
    if (t->eof && ev->expect_eof_bytes_min == ev->expect_eof_bytes_max)
        snprintf(part[n++], sizeof(part[0]), "%llu got EOF after %llu bytes",
                 (unsigned long long)t->eof, (unsigned long long)ev->expect_eof_bytes_min);
    else if (t->eof)
        snprintf(part[n++], sizeof(part[0]), "%llu got EOF after %llu to %llu bytes",
                 (unsigned long long)t->eof, (unsigned long long)ev->expect_eof_bytes_min,
                 (unsigned long long)ev->expect_eof_bytes_max);
    if (t->reset)
        snprintf(part[n++], sizeof(part[0]), "%llu were reset", (unsigned long long)t->reset);
    if (t->cut)
        snprintf(part[n++], sizeof(part[0]), "%llu still waiting when the fault phase ended",
                 (unsigned long long)t->cut);
    if (t->other)
        snprintf(part[n++], sizeof(part[0]), "%llu stopped reading first (their script)",
                 (unsigned long long)t->other);
    out[0] = '\0';
    for (size_t i = 0, used = 0; i < n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s%s", i ? ", " : " (", part[i],
                         i + 1 == n ? ")" : "");
        used += w > 0 ? (size_t)w : 0;
    }
}

static void add_totals(struct check_result *c, const struct expect_tally *sum, uint64_t eof_min,
                       uint64_t eof_max)
{
    check_add_int(c, "clients", (int64_t)sum->clients);
    check_add_int(c, "got", (int64_t)sum->got);
    check_add_int(c, "eof", (int64_t)sum->eof);
    if (sum->eof) {
        check_add_int(c, "eof_bytes_min", (int64_t)eof_min);
        check_add_int(c, "eof_bytes_max", (int64_t)eof_max);
    }
    check_add_int(c, "reset", (int64_t)sum->reset);
    check_add_int(c, "still_waiting", (int64_t)sum->cut);
    check_add_int(c, "stopped_reading", (int64_t)sum->other);
}

/* One group's sentence, appended to the summary; its numbers into the totals. */
static void judge_group(const struct client_group *g, const struct group_evidence *ge,
                        const struct engine_group_evidence *ev, struct expect_tally *sum,
                        char *text, size_t cap)
{
    struct expect_tally t;
    char missed[400];
    size_t used = strlen(text);
    tally_group(g, ge, ev, &t);
    missed_text(&t, ev, missed, sizeof(missed));
    snprintf(text + used, cap - used, "%s%llu of %llu %s got %s%s", used ? "; " : "",
             (unsigned long long)t.got, (unsigned long long)t.clients, t.who, t.expected, missed);
    sum->clients += t.clients;
    sum->got += t.got;
    sum->eof += t.eof;
    sum->reset += t.reset;
    sum->cut += t.cut;
    sum->other += t.other;
}

/* Why a group with `expect` cannot be judged, or NULL when it can. */
static const char *unjudged(const struct client_group *g, const struct group_evidence *ge)
{
    if (!http_request_is_http(g->request, g->request_len))
        return "its request is not HTTP (--request-raw): its responses cannot be framed";
    if (ge->reached == 0)
        return "no client reached its fault";
    return NULL;
}

static void fail_verdict(struct scenario_result *res, const char *summary)
{
    size_t used = strlen(res->reason);
    res->verdict = VERDICT_FAIL;
    if (used + 3 < sizeof(res->reason))
        snprintf(res->reason + used, sizeof(res->reason) - used, "%s%s", used ? "; " : "", summary);
}

void check_responses(const struct scenario *sc, const struct engine_group_evidence *ev,
                     struct scenario_result *res)
{
    struct expect_tally sum = {0};
    char text[300] = "", why[160] = "";
    uint64_t eof_min = UINT64_MAX, eof_max = 0;
    bool any = false;
    for (size_t i = 0; i < res->ngroups && i < sc->ngroups; i++) {
        const struct client_group *g = &sc->groups[i];
        const char *skip = g->expect_responses ? unjudged(g, &res->groups[i]) : NULL;
        any |= g->expect_responses > 0;
        if (skip && !why[0])
            snprintf(why, sizeof(why), "group %s: %s", g->name, skip);
        if (!g->expect_responses || skip)
            continue;
        judge_group(g, &res->groups[i], &ev[i], &sum, text, sizeof(text));
        if (ev[i].expect_eof && ev[i].expect_eof_bytes_min < eof_min)
            eof_min = ev[i].expect_eof_bytes_min;
        if (ev[i].expect_eof_bytes_max > eof_max)
            eof_max = ev[i].expect_eof_bytes_max;
    }
    if (!any || res->nchecks == REPORT_MAX_CHECKS)
        return; /* no group expects anything: the check is not listed */
    struct check_result *c = &res->checks[res->nchecks++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "responses");
    if (!text[0]) {
        c->status = CHECK_NOT_CHECKED;
        snprintf(c->summary, sizeof(c->summary), "responses: not checked: %s", why);
        check_add_str(c, "not_checked", why);
        return;
    }
    add_totals(c, &sum, eof_min, eof_max);
    c->status = sum.got == sum.clients ? CHECK_OK : CHECK_FAILED;
    snprintf(c->summary, sizeof(c->summary), "responses: %s%s%s%s", text,
             why[0] ? " (not judged: " : "", why, why[0] ? ")" : "");
    if (c->status == CHECK_FAILED)
        fail_verdict(res, c->summary);
}
