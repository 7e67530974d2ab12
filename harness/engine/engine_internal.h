/* engine_internal: engine details exposed for its tests only (not part of the harness API). */
#ifndef CONNFAULT_ENGINE_INTERNAL_H
#define CONNFAULT_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "scenario.h"

/* Which number of a client is drawn: each has its own stream, so adding a draw later does not
 * change the others. */
enum engine_draw_what {
    ENGINE_DRAW_SEND_BYTES = 1,
    ENGINE_DRAW_READ_BYTES = 2,
    ENGINE_DRAW_HOLD_MS = 3,
};

/* A number in [r.lo, r.hi] that depends only on its arguments (splitmix64), never on the
 * order in which events happened. A range with hi < lo gives lo. */
uint64_t engine_draw(uint64_t seed, size_t group, uint64_t client, enum engine_draw_what what,
                     struct range r);

/* What the engine itself saw of a group's scheduling. */
struct engine_group_timing {
    uint64_t first_start_ms, last_start_ms; /* engine_now_ms() of the first and last start */
    unsigned max_active;                    /* most clients holding a concurrency slot at once */
};

void engine_group_timing(const struct engine *e, size_t group_index,
                         struct engine_group_timing *out);

#endif
