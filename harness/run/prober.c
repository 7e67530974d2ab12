/* prober: probes between and through the faults (see prober.h). */
#include "prober.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

/* How long past its own timeout a probe may take to report (the engine's slices). */
#define PROBER_DRAIN_SLACK_MS 500

/* release = end, a probe started while the fault clients held every fd: counted by outcome. */
static void prober_record_held(struct scenario_samples *s, const struct probe_result *cur)
{
    s->while_held.probes++;
    if (cur->ok)
        s->while_held.ok++;
    else if (cur->status == 503)
        s->while_held.status_503++;
    else if (cur->timed_out)
        s->while_held.timed_out++;
    else if (s->while_held.other++ == 0)
        snprintf(s->while_held.first_other, sizeof(s->while_held.first_other), "%s", cur->error);
}

/* release = end, a probe started after the release: has the server recovered? */
static void prober_note_recovery(struct prober *p, uint64_t started_ms)
{
    struct scenario_samples *s = p->samples;
    if (s->recovered_s >= 0)
        return;
    if (p->cur.ok)
        s->recovered_s = (double)(started_ms - p->release_ms) / 1000.0;
    else
        s->failed_before_recovery++;
}

static void prober_record(struct prober *p, uint64_t now)
{
    struct scenario_samples *s = p->samples;
    uint64_t started_ms = now - p->cur.latency_us / 1000;
    if (s->release_end && p->faults_start_ms && (!p->release_ms || started_ms < p->release_ms)) {
        prober_record_held(s, &p->cur);
        return;
    }
    if (s->release_end && p->release_ms)
        prober_note_recovery(p, started_ms);
    if (s->nlatencies == p->capacity) {
        size_t cap = p->capacity ? p->capacity * 2 : 64;
        uint64_t *grown = realloc(s->latencies_us, cap * sizeof(*grown));
        if (!grown)
            return;
        s->latencies_us = grown;
        p->capacity = cap;
    }
    s->latencies_us[s->nlatencies++] = p->cur.latency_us;
    s->probes++;
    if (p->cur.ok) {
        s->probes_ok++;
    } else if (s->probes - s->probes_ok == 1) {
        snprintf(s->first_failure, sizeof(s->first_failure), "%s", p->cur.error);
        s->first_failure_at_s =
            p->faults_start_ms ? ((double)started_ms - (double)p->faults_start_ms) / 1000.0 : -0.0;
    }
}

uint64_t prober_next_interval(struct prober *p, uint64_t now)
{
    if (!p->backoff_from_ms || now < p->backoff_from_ms || !p->cur.ok) {
        p->backoff_ms = p->interval_ms;
        return p->interval_ms;
    }
    uint64_t next = p->backoff_ms ? p->backoff_ms * 2 : p->interval_ms * 2;
    p->backoff_ms = next < PROBER_MAX_BACKOFF_MS ? next : PROBER_MAX_BACKOFF_MS;
    if (p->backoff_ms < p->interval_ms)
        p->backoff_ms = p->interval_ms; /* --probe-interval above the cap: never faster */
    return p->backoff_ms;
}

void prober_tick(struct prober *p, struct engine *e, uint64_t now)
{
    if (p->active && p->cur.done) {
        prober_record(p, now);
        p->active = false;
        p->next_at_ms = now + prober_next_interval(p, now);
    }
    if (!p->active && now >= p->next_at_ms) {
        memset(&p->cur, 0, sizeof(p->cur));
        if (engine_probe(e, p->request, p->request_len, p->expect, p->expect_len, p->timeout_ms,
                         &p->cur) == 0)
            p->active = true;
    }
}

void prober_drain(struct prober *p, struct engine *e)
{
    uint64_t deadline = engine_now_ms() + p->timeout_ms + PROBER_DRAIN_SLACK_MS;
    while (p->active && !p->cur.done && engine_now_ms() < deadline)
        engine_run(e, engine_now_ms() + RUN_SLICE_MS);
    if (p->active && p->cur.done)
        prober_record(p, engine_now_ms());
    p->active = false;
}

bool prober_once(struct prober *p, struct engine *e)
{
    p->next_at_ms = 0;
    prober_tick(p, e, engine_now_ms());
    prober_drain(p, e);
    return p->cur.done && p->cur.ok;
}
