/* client_timers: see client_timers.h. The classic array heap: parent of i is (i - 1) / 2. */
#include "client_timers.h"

#include <errno.h>
#include <stdlib.h>

void client_timers_init(struct client_timers *t)
{
    t->heap = NULL;
    t->len = 0;
    t->cap = 0;
}

/* Owners may already be freed: their timers are not touched. */
void client_timers_free(struct client_timers *t)
{
    free(t->heap);
    client_timers_init(t);
}

int client_timers_reserve(struct client_timers *t, size_t n)
{
    size_t cap = t->cap ? t->cap : 64;
    struct client_timer **heap;

    if (n <= t->cap)
        return 0;
    while (cap < n)
        cap *= 2;
    heap = realloc(t->heap, cap * sizeof(*heap));
    if (!heap)
        return -ENOMEM;
    t->heap = heap;
    t->cap = cap;
    return 0;
}

void client_timer_init(struct client_timer *tm, void *owner)
{
    tm->due_ms = 0;
    tm->slot = CLIENT_TIMER_IDLE;
    tm->owner = owner;
}

static void client_timers_place(struct client_timers *t, size_t slot, struct client_timer *tm)
{
    t->heap[slot] = tm;
    tm->slot = slot;
}

static void client_timers_sift_up(struct client_timers *t, size_t slot)
{
    struct client_timer *tm = t->heap[slot];

    while (slot > 0) {
        size_t parent = (slot - 1) / 2;
        if (t->heap[parent]->due_ms <= tm->due_ms)
            break;
        client_timers_place(t, slot, t->heap[parent]);
        slot = parent;
    }
    client_timers_place(t, slot, tm);
}

static void client_timers_sift_down(struct client_timers *t, size_t slot)
{
    struct client_timer *tm = t->heap[slot];

    for (;;) {
        size_t child = 2 * slot + 1;
        if (child >= t->len)
            break;
        if (child + 1 < t->len && t->heap[child + 1]->due_ms < t->heap[child]->due_ms)
            child++;
        if (tm->due_ms <= t->heap[child]->due_ms)
            break;
        client_timers_place(t, slot, t->heap[child]);
        slot = child;
    }
    client_timers_place(t, slot, tm);
}

void client_timers_arm(struct client_timers *t, struct client_timer *tm, uint64_t due_ms)
{
    if (client_timer_armed(tm)) {
        uint64_t old = tm->due_ms;
        tm->due_ms = due_ms;
        if (due_ms < old)
            client_timers_sift_up(t, tm->slot);
        else
            client_timers_sift_down(t, tm->slot);
        return;
    }
    if (t->len == t->cap && client_timers_reserve(t, t->len + 1) < 0)
        abort(); /* a caller skipped client_timers_reserve(): a bug, not a runtime condition */
    tm->due_ms = due_ms;
    client_timers_place(t, t->len++, tm);
    client_timers_sift_up(t, tm->slot);
}

void client_timers_cancel(struct client_timers *t, struct client_timer *tm)
{
    size_t slot = tm->slot;
    struct client_timer *last;

    if (!client_timer_armed(tm))
        return;
    tm->slot = CLIENT_TIMER_IDLE;
    last = t->heap[--t->len];
    if (last == tm)
        return;
    client_timers_place(t, slot, last);
    /* The moved timer may belong above or below its new slot. */
    client_timers_sift_up(t, slot);
    client_timers_sift_down(t, last->slot);
}

struct client_timer *client_timers_peek(const struct client_timers *t)
{
    return t->len ? t->heap[0] : NULL;
}

struct client_timer *client_timers_pop_due(struct client_timers *t, uint64_t now_ms)
{
    struct client_timer *tm = client_timers_peek(t);

    if (!tm || tm->due_ms > now_ms)
        return NULL;
    client_timers_cancel(t, tm);
    return tm;
}
