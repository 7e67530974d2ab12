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
    uint64_t clients, got, eof, reset, reset_unread, cut, other;
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
    t->reset_unread = ev->expect_reset_unread < t->reset ? ev->expect_reset_unread : t->reset;
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
    sum->reset_unread += t.reset_unread;
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

/* Resets before any byte that the kernel of the target's netns provably sent itself: each
 * SYN cookie that failed to check was answered with a reset by the listener, for a connection
 * the server never accepted (a listen backlog overflowed). Never more than the counter rose,
 * never more than there were such resets; none when the counters are unknown. */
uint64_t check_kernel_resets(uint64_t reset_unread, const struct kernel_counts *k)
{
    if (!k || !k->known || !k->own_netns)
        return 0;
    return reset_unread < k->rise.syncookies_failed ? reset_unread : k->rise.syncookies_failed;
}

/* "; 3 resets before any byte excused: the kernel's, SyncookiesFailed +3 with
 * ListenOverflows +41 (listen backlog 5)", and its numbers. */
static void excuse_text(struct check_result *c, const struct expect_tally *sum,
                        const struct kernel_counts *k, uint64_t excused, char *out, size_t cap)
{
    out[0] = '\0';
    if (sum->reset_unread == 0)
        return;
    check_add_int(c, "reset_before_any_byte", (int64_t)sum->reset_unread);
    check_add_int(c, "excused_resets", (int64_t)excused);
    if (!k || !k->known) {
        snprintf(out, cap,
                 "; %llu reset%s before any byte, none excused (the kernel's counters "
                 "could not be read)",
                 (unsigned long long)sum->reset_unread, sum->reset_unread == 1 ? "" : "s");
        return;
    }
    if (!k->own_netns) {
        snprintf(out, cap,
                 "; %llu reset%s before any byte, none excused: the target is not in connfault's "
                 "own network namespace, so the kernel's counters are not its alone",
                 (unsigned long long)sum->reset_unread, sum->reset_unread == 1 ? "" : "s");
        return;
    }
    check_add_int(c, "syncookies_failed", (int64_t)k->rise.syncookies_failed);
    check_add_int(c, "listen_overflows", (int64_t)k->rise.listen_overflows);
    char backlog[32] = "";
    if (k->backlog)
        snprintf(backlog, sizeof(backlog), " (listen backlog %u)", k->backlog);
    if (excused == 0) {
        snprintf(out, cap,
                 "; %llu reset%s before any byte, none excused: SyncookiesFailed +0 (the kernel "
                 "reset none itself), ListenOverflows +%llu%s",
                 (unsigned long long)sum->reset_unread, sum->reset_unread == 1 ? "" : "s",
                 (unsigned long long)k->rise.listen_overflows, backlog);
        return;
    }
    char of[48] = "";
    if (excused < sum->reset_unread)
        snprintf(of, sizeof(of), " (of %llu)", (unsigned long long)sum->reset_unread);
    snprintf(out, cap,
             "; %llu reset%s before any byte%s excused: the kernel's, SyncookiesFailed +%llu with "
             "ListenOverflows +%llu%s",
             (unsigned long long)excused, excused == 1 ? "" : "s", of,
             (unsigned long long)k->rise.syncookies_failed,
             (unsigned long long)k->rise.listen_overflows, backlog);
}

static void fail_verdict(struct scenario_result *res, const char *summary)
{
    size_t used = strlen(res->reason);
    res->verdict = VERDICT_FAIL;
    if (used + 3 < sizeof(res->reason))
        snprintf(res->reason + used, sizeof(res->reason) - used, "%s%s", used ? "; " : "", summary);
}

void check_responses(const struct scenario *sc, const struct engine_group_evidence *ev,
                     const struct kernel_counts *kernel, struct scenario_result *res)
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
    uint64_t excused = check_kernel_resets(sum.reset_unread, kernel);
    char excuse[200];
    excuse_text(c, &sum, kernel, excused, excuse, sizeof(excuse));
    c->status = sum.got + excused >= sum.clients ? CHECK_OK : CHECK_FAILED;
    int n = snprintf(c->summary, sizeof(c->summary), "responses: %s%s%s%s", text,
                     why[0] ? " (not judged: " : "", why, why[0] ? ")" : "");
    if (n >= 0 && (size_t)n < sizeof(c->summary)) /* the excuse after it, as far as it fits */
        snprintf(c->summary + n, sizeof(c->summary) - (size_t)n, "%s", excuse);
    if (c->status == CHECK_FAILED)
        fail_verdict(res, c->summary);
}
