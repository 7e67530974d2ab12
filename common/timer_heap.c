/* timer_heap: binary min-heap of intrusive timer nodes, ordered by deadline_ms.
 *
 * Every node remembers its own array index, so cancel and re-arm find it in
 * O(1) and repair the heap in O(log n) instead of searching for it. Sifting
 * moves a "hole" rather than swapping, writing each displaced node once.
 */
#include "timer_heap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#define TIMER_HEAP_INITIAL_CAP 16

void timer_node_init(struct timer_node *node)
{
    node->deadline_ms = 0;
    node->heap_index = TIMER_NOT_ARMED;
}

int timer_heap_init(struct timer_heap *heap)
{
    heap->nodes = malloc(TIMER_HEAP_INITIAL_CAP * sizeof(*heap->nodes));
    if (heap->nodes == NULL)
        return -ENOMEM;
    heap->len = 0;
    heap->cap = TIMER_HEAP_INITIAL_CAP;
    return 0;
}

void timer_heap_free(struct timer_heap *heap)
{
    /* Nodes outlive the heap; leaving them "armed" with a stale index would let a
     * later cancel index into freed memory. */
    for (size_t i = 0; i < heap->len; i++)
        heap->nodes[i]->heap_index = TIMER_NOT_ARMED;
    free(heap->nodes);
    heap->nodes = NULL;
    heap->len = 0;
    heap->cap = 0;
}

static void timer_heap_place(struct timer_heap *heap, size_t index, struct timer_node *node)
{
    heap->nodes[index] = node;
    node->heap_index = index;
}

static void timer_heap_sift_up(struct timer_heap *heap, size_t index)
{
    struct timer_node *node = heap->nodes[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (heap->nodes[parent]->deadline_ms <= node->deadline_ms)
            break;
        timer_heap_place(heap, index, heap->nodes[parent]);
        index = parent;
    }
    timer_heap_place(heap, index, node);
}

static void timer_heap_sift_down(struct timer_heap *heap, size_t index)
{
    struct timer_node *node = heap->nodes[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= heap->len)
            break;
        if (child + 1 < heap->len &&
            heap->nodes[child + 1]->deadline_ms < heap->nodes[child]->deadline_ms)
            child++;
        if (node->deadline_ms <= heap->nodes[child]->deadline_ms)
            break;
        timer_heap_place(heap, index, heap->nodes[child]);
        index = child;
    }
    timer_heap_place(heap, index, node);
}

/* Grows the array to exactly new_cap. On failure the heap is untouched (realloc keeps the
 * old block). */
static int timer_heap_resize(struct timer_heap *heap, size_t new_cap)
{
    if (new_cap > SIZE_MAX / sizeof(*heap->nodes))
        return -ENOMEM; /* the byte count would overflow */
    struct timer_node **nodes = realloc(heap->nodes, new_cap * sizeof(*nodes));
    if (nodes == NULL)
        return -ENOMEM;
    heap->nodes = nodes;
    heap->cap = new_cap;
    return 0;
}

static int timer_heap_grow(struct timer_heap *heap)
{
    if (heap->cap > SIZE_MAX / 2)
        return -ENOMEM;
    return timer_heap_resize(heap, heap->cap ? heap->cap * 2 : TIMER_HEAP_INITIAL_CAP);
}

int timer_heap_reserve(struct timer_heap *heap, size_t n)
{
    return n <= heap->cap ? 0 : timer_heap_resize(heap, n);
}

int timer_heap_arm(struct timer_heap *heap, struct timer_node *node, uint64_t deadline_ms)
{
    if (timer_node_armed(node)) {
        assert(node->heap_index < heap->len && heap->nodes[node->heap_index] == node);
        uint64_t old_deadline = node->deadline_ms;
        node->deadline_ms = deadline_ms;
        if (deadline_ms < old_deadline)
            timer_heap_sift_up(heap, node->heap_index);
        else
            timer_heap_sift_down(heap, node->heap_index);
        return 0;
    }
    if (heap->len == heap->cap) {
        int err = timer_heap_grow(heap);
        if (err < 0)
            return err;
    }
    node->deadline_ms = deadline_ms;
    timer_heap_place(heap, heap->len++, node);
    timer_heap_sift_up(heap, node->heap_index);
    return 0;
}

void timer_heap_cancel(struct timer_heap *heap, struct timer_node *node)
{
    if (!timer_node_armed(node))
        return;
    size_t index = node->heap_index;
    assert(index < heap->len && heap->nodes[index] == node);
    node->heap_index = TIMER_NOT_ARMED;
    struct timer_node *last = heap->nodes[--heap->len];
    if (index == heap->len)
        return;
    /* The last node fills the hole; it may belong above or below it, and at most
     * one of these two sifts moves it. */
    timer_heap_place(heap, index, last);
    timer_heap_sift_up(heap, index);
    timer_heap_sift_down(heap, last->heap_index);
}

struct timer_node *timer_heap_peek(const struct timer_heap *heap)
{
    return heap->len > 0 ? heap->nodes[0] : NULL;
}

struct timer_node *timer_heap_pop_expired(struct timer_heap *heap, uint64_t now_ms)
{
    struct timer_node *earliest = timer_heap_peek(heap);
    if (earliest == NULL || earliest->deadline_ms > now_ms)
        return NULL;
    timer_heap_cancel(heap, earliest);
    return earliest;
}
