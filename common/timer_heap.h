/* timer_heap: a binary min-heap of deadlines with O(log n) insert, update and removal.
 *
 * Intrusive: the caller embeds a struct timer_node in its own object (a connection) and
 * gets the object back with container_of. The heap only stores pointers, so arming,
 * re-arming and cancelling never allocate except when the array has to grow.
 * Why a heap and not a scan: with 10,000 connections, finding expired ones must not
 * touch all 10,000 on every tick.
 */
#ifndef CONNFAULT_TIMER_HEAP_H
#define CONNFAULT_TIMER_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define TIMER_NOT_ARMED SIZE_MAX

struct timer_node {
    uint64_t deadline_ms;
    size_t heap_index; /* position in the heap, or TIMER_NOT_ARMED */
};

struct timer_heap {
    struct timer_node **nodes;
    size_t len;
    size_t cap;
};

void timer_node_init(struct timer_node *node); /* marks it not armed */
static inline int timer_node_armed(const struct timer_node *node)
{
    return node->heap_index != TIMER_NOT_ARMED;
}

int timer_heap_init(struct timer_heap *heap); /* 0, or -ENOMEM */
/* Make room for n armed nodes in all, so that arming up to n never fails (or allocates) in
 * the middle of an event. 0, or -ENOMEM. */
int timer_heap_reserve(struct timer_heap *heap, size_t n);
void timer_heap_free(struct timer_heap *heap); /* frees the array, not the nodes */
/* Arm the node with this deadline, or move it if already armed. 0, or -ENOMEM. */
int timer_heap_arm(struct timer_heap *heap, struct timer_node *node, uint64_t deadline_ms);
void timer_heap_cancel(struct timer_heap *heap, struct timer_node *node); /* no-op if not armed */
struct timer_node *timer_heap_peek(const struct timer_heap *heap);        /* earliest, or NULL */
/* Remove and return the earliest node if its deadline is <= now_ms, else NULL. */
struct timer_node *timer_heap_pop_expired(struct timer_heap *heap, uint64_t now_ms);

#endif
