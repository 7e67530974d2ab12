/* client_timers: a binary min-heap of deadlines for the engine (one timer per client, group
 * or probe). Timers are embedded in their owners and remember their heap slot, so arming,
 * re-arming and cancelling are O(log n) without searching. The heap's memory is reserved
 * up front (client_timers_reserve) so that arming never fails in the middle of an event. */
#ifndef CONNFAULT_CLIENT_TIMERS_H
#define CONNFAULT_CLIENT_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLIENT_TIMER_IDLE ((size_t)-1)

struct client_timer {
    uint64_t due_ms;
    size_t slot; /* index in the heap, CLIENT_TIMER_IDLE when not armed */
    void *owner; /* what to wake up; the engine dispatches on it */
};

struct client_timers {
    struct client_timer **heap;
    size_t len, cap;
};

void client_timers_init(struct client_timers *t);
void client_timers_free(struct client_timers *t);

/* Make room for n armed timers in total. Returns 0 or -ENOMEM. */
int client_timers_reserve(struct client_timers *t, size_t n);

void client_timer_init(struct client_timer *tm, void *owner);
static inline bool client_timer_armed(const struct client_timer *tm)
{
    return tm->slot != CLIENT_TIMER_IDLE;
}

/* Arm (or move) tm to due_ms. The heap must have room (reserve). */
void client_timers_arm(struct client_timers *t, struct client_timer *tm, uint64_t due_ms);
void client_timers_cancel(struct client_timers *t, struct client_timer *tm);

/* The earliest timer, or NULL. */
struct client_timer *client_timers_peek(const struct client_timers *t);

/* Remove and return the earliest timer if it is due at now_ms, else NULL. */
struct client_timer *client_timers_pop_due(struct client_timers *t, uint64_t now_ms);

#endif
