/* event_loop: a tiny epoll + timer loop (in the spirit of redis ae.c).
 *
 * An fd is registered with a struct event_source, whose callback gets the epoll events.
 * Timers are struct loop_timer, kept in a min-heap, fired after the I/O events of each
 * turn. Objects that may be closed while a batch of events is being dispatched must not
 * be freed until the batch is over (see conn.h: the server calls conn_pool_free_closed
 * after each turn), so a later event of the same batch never touches freed memory or a
 * reused fd.
 */
#ifndef CONNFAULT_EVENT_LOOP_H
#define CONNFAULT_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "timer_heap.h"

struct event_source {
    void (*on_event)(struct event_source *src, uint32_t events);
};

struct loop_timer {
    struct timer_node node;
    void (*on_timer)(struct loop_timer *timer);
};

#define EVENT_LOOP_BATCH 256

struct event_loop {
    int epfd;
    struct timer_heap timers;
    uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed once per turn */
};

int event_loop_init(struct event_loop *loop); /* 0 or -errno */
void event_loop_free(struct event_loop *loop);

int event_loop_add(struct event_loop *loop, int fd, uint32_t events, struct event_source *src);
int event_loop_mod(struct event_loop *loop, int fd, uint32_t events, struct event_source *src);
int event_loop_del(struct event_loop *loop, int fd);

void loop_timer_init(struct loop_timer *timer, void (*on_timer)(struct loop_timer *));
int loop_timer_arm(struct event_loop *loop, struct loop_timer *timer, uint64_t deadline_ms);
void loop_timer_cancel(struct event_loop *loop, struct loop_timer *timer);

/* One turn: wait for I/O (no longer than the earliest timer, nor max_wait_ms if >= 0),
 * dispatch the events, then fire the expired timers. Returns the number of events
 * dispatched, or -errno (EINTR is not an error: 0). */
int event_loop_turn(struct event_loop *loop, int max_wait_ms);

#endif
