/* replay: the scenario that replays a capture's flows, as `connfault replay` runs it and as
 * `connfault shrink CAPTURE` tries subsets of it (run.h). */
#include <stdio.h>
#include <string.h>

#include "pcap_flows.h"
#include "run.h"
#include "scenario.h"

/* A replay's fault phase lasts the capture's span (at the replay speed), at most this long, */
#define REPLAY_MAX_SPAN_MS 3600000u
/* and then this long for the last flows to end (they wait for the server's bytes: up to 2 s
 * past each flow's end). */
#define REPLAY_END_SLACK_MS 5000u

void run_replay_scenario(struct scenario *sc, const struct replay_set *set)
{
    uint64_t span_ms = replay_speed_ms(set->speed, set->duration_us);
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->name, sizeof(sc->name), "%s", set->name);
    sc->duration_ms = (unsigned)(span_ms < REPLAY_MAX_SPAN_MS ? span_ms : REPLAY_MAX_SPAN_MS) +
                      REPLAY_END_SLACK_MS;
    for (size_t i = 0; i < set->nflows; i++)
        sc->needs_sandbox |= set->flows[i].end == FLOW_END_SILENT;
    sc->replay = set;
}
