/* prober: the probes that ask the target, all through a scenario, whether it still answers.
 * One probe at a time; each one's latency and outcome go into the scenario's samples. */
#ifndef CONNFAULT_PROBER_H
#define CONNFAULT_PROBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checks.h"
#include "engine.h"

struct prober {
    const char *request, *expect; /* what every probe sends, and the reply prefix (or NULL) */
    size_t request_len, expect_len;
    uint64_t timeout_ms, interval_ms;
    struct probe_result cur;
    bool active;
    uint64_t next_at_ms;
    uint64_t faults_start_ms; /* 0 before the faults start */
    /* release = end (samples->release_end): when the fault clients were let go; 0 before. A
     * probe started before it goes to samples->while_held. */
    uint64_t release_ms;
    /* From this time on (the settling phase; 0: never), each answered probe doubles the
     * interval to the next, up to PROBER_MAX_BACKOFF_MS, and a failed one brings it back to
     * interval_ms: a long grace must not itself become a flood of connections (inetd's
     * 256-spawns-a-minute limit), yet a hang that starts late is still seen within seconds. */
    uint64_t backoff_from_ms;
    uint64_t backoff_ms; /* the interval now in force while backing off */
    struct scenario_samples *samples;
    size_t capacity; /* of samples->latencies_us */
};

#define PROBER_MAX_BACKOFF_MS 4000

/* The wait before the next probe, after p->cur ended at now (see backoff_from_ms). */
uint64_t prober_next_interval(struct prober *p, uint64_t now);

/* Finish the running probe if done; start the next one when it is due. */
void prober_tick(struct prober *p, struct engine *e, uint64_t now);

/* Let the running probe finish (bounded by its own timeout), and record it. */
void prober_drain(struct prober *p, struct engine *e);

/* One probe, start to end: for the first probe and the final one. True if it was answered. */
bool prober_once(struct prober *p, struct engine *e);

#endif
