/* Tests for timer_heap: ordering, expiry against "now", re-arm, cancel, growth,
 * and the heap invariant after every step of a randomized sequence checked
 * against a simple model. */
#include "timer_heap.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Fixed-seed xorshift64 so every run exercises the same sequence. */
static uint64_t test_rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Parent <= child everywhere, and every node knows where it sits. Returns the
 * first bad index, or SIZE_MAX. Plain C on purpose: each ck_assert writes to
 * Check's pipe, too slow to call per element after every step of a long
 * randomized run. */
static size_t heap_first_violation(const struct timer_heap *heap)
{
    for (size_t i = 0; i < heap->len; i++) {
        const struct timer_node *node = heap->nodes[i];
        if (node == NULL || node->heap_index != i)
            return i;
        if (i > 0 && heap->nodes[(i - 1) / 2]->deadline_ms > node->deadline_ms)
            return i;
    }
    return SIZE_MAX;
}

static void assert_heap_valid(const struct timer_heap *heap)
{
    ck_assert_uint_le(heap->len, heap->cap);
    size_t bad = heap_first_violation(heap);
    ck_assert_msg(bad == SIZE_MAX, "heap invariant broken at index %zu of %zu", bad, heap->len);
}

static struct timer_node *make_nodes(size_t count)
{
    struct timer_node *nodes = calloc(count, sizeof(*nodes));
    ck_assert_ptr_nonnull(nodes);
    for (size_t i = 0; i < count; i++)
        timer_node_init(&nodes[i]);
    return nodes;
}

START_TEST(test_empty_heap)
{
    struct timer_heap heap;
    struct timer_node node;
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    timer_node_init(&node);
    ck_assert(!timer_node_armed(&node));
    ck_assert_ptr_null(timer_heap_peek(&heap));
    ck_assert_ptr_null(timer_heap_pop_expired(&heap, UINT64_MAX));
    timer_heap_cancel(&heap, &node);
    ck_assert_uint_eq(heap.len, 0);
    assert_heap_valid(&heap);
    timer_heap_free(&heap);
}
END_TEST

START_TEST(test_pop_expired_respects_now)
{
    struct timer_heap heap;
    struct timer_node early, late;
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    timer_node_init(&early);
    timer_node_init(&late);
    ck_assert_int_eq(timer_heap_arm(&heap, &late, 200), 0);
    ck_assert_int_eq(timer_heap_arm(&heap, &early, 100), 0);
    ck_assert(timer_node_armed(&early));
    ck_assert_ptr_eq(timer_heap_peek(&heap), &early);

    ck_assert_ptr_null(timer_heap_pop_expired(&heap, 99));
    ck_assert_ptr_eq(timer_heap_pop_expired(&heap, 100), &early); /* deadline == now expires */
    ck_assert(!timer_node_armed(&early));
    ck_assert_ptr_null(timer_heap_pop_expired(&heap, 199));
    ck_assert_ptr_eq(timer_heap_peek(&heap), &late); /* peek does not remove */
    ck_assert_ptr_eq(timer_heap_pop_expired(&heap, 1000), &late);
    ck_assert(!timer_node_armed(&late));
    ck_assert_ptr_null(timer_heap_pop_expired(&heap, UINT64_MAX));
    timer_heap_free(&heap);
}
END_TEST

START_TEST(test_many_random_deadlines_pop_in_order)
{
    enum { COUNT = 10000 };
    struct timer_heap heap;
    struct timer_node *nodes = make_nodes(COUNT);
    char *popped = calloc(COUNT, 1);
    uint64_t rng = 0x9e3779b97f4a7c15u;
    ck_assert_ptr_nonnull(popped);
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    for (size_t i = 0; i < COUNT; i++) /* small range: plenty of ties */
        ck_assert_int_eq(timer_heap_arm(&heap, &nodes[i], test_rng_next(&rng) % 5000), 0);
    assert_heap_valid(&heap);
    ck_assert_uint_eq(heap.len, COUNT);

    uint64_t previous = 0;
    struct timer_node *node;
    size_t popped_count = 0;
    while ((node = timer_heap_pop_expired(&heap, UINT64_MAX)) != NULL) {
        size_t which = (size_t)(node - nodes);
        ck_assert_uint_lt(which, COUNT);
        ck_assert(!popped[which]);
        popped[which] = 1;
        ck_assert(!timer_node_armed(node));
        ck_assert_uint_ge(node->deadline_ms, previous);
        previous = node->deadline_ms;
        popped_count++;
    }
    ck_assert_uint_eq(popped_count, COUNT);
    ck_assert_uint_eq(heap.len, 0);
    timer_heap_free(&heap);
    free(popped);
    free(nodes);
}
END_TEST

START_TEST(test_rearm_moves_earlier_and_later)
{
    enum { COUNT = 20 };
    struct timer_heap heap;
    struct timer_node *nodes = make_nodes(COUNT);
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    for (size_t i = 0; i < COUNT; i++)
        ck_assert_int_eq(timer_heap_arm(&heap, &nodes[i], 100 + 10 * i), 0);

    /* The latest node jumps to the front. */
    ck_assert_int_eq(timer_heap_arm(&heap, &nodes[COUNT - 1], 5), 0);
    assert_heap_valid(&heap);
    ck_assert_uint_eq(heap.len, COUNT); /* moved, not added twice */
    ck_assert_ptr_eq(timer_heap_peek(&heap), &nodes[COUNT - 1]);

    /* The root goes to the back, and the next earliest takes its place. */
    ck_assert_int_eq(timer_heap_arm(&heap, &nodes[COUNT - 1], 10000), 0);
    assert_heap_valid(&heap);
    ck_assert_ptr_eq(timer_heap_peek(&heap), &nodes[0]);
    ck_assert_int_eq(timer_heap_arm(&heap, &nodes[0], 9000), 0);
    assert_heap_valid(&heap);
    ck_assert_uint_eq(heap.len, COUNT);
    ck_assert_ptr_eq(timer_heap_peek(&heap), &nodes[1]);

    for (size_t i = 1; i < COUNT - 1; i++)
        ck_assert_ptr_eq(timer_heap_pop_expired(&heap, UINT64_MAX), &nodes[i]);
    ck_assert_ptr_eq(timer_heap_pop_expired(&heap, UINT64_MAX), &nodes[0]);
    ck_assert_ptr_eq(timer_heap_pop_expired(&heap, UINT64_MAX), &nodes[COUNT - 1]);
    ck_assert_ptr_null(timer_heap_pop_expired(&heap, UINT64_MAX));
    timer_heap_free(&heap);
    free(nodes);
}
END_TEST

START_TEST(test_cancel_root_middle_last_and_unarmed)
{
    enum { COUNT = 15 };
    struct timer_heap heap;
    struct timer_node *nodes = make_nodes(COUNT);
    struct timer_node unarmed;
    char cancelled[COUNT] = {0};
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    timer_node_init(&unarmed);
    /* Reverse order so the array is not simply sorted and sifting has work to do.
     */
    for (size_t i = 0; i < COUNT; i++)
        ck_assert_int_eq(timer_heap_arm(&heap, &nodes[i], 1000 - 10 * i), 0);
    assert_heap_valid(&heap);

    struct timer_node *targets[3];
    targets[0] = heap.nodes[0];                /* root */
    targets[1] = heap.nodes[heap.len / 2 - 1]; /* a middle node with children */
    for (size_t t = 0; t < 2; t++) {
        timer_heap_cancel(&heap, targets[t]);
        ck_assert(!timer_node_armed(targets[t]));
        assert_heap_valid(&heap);
    }
    targets[2] = heap.nodes[heap.len - 1]; /* last slot: nothing has to move */
    timer_heap_cancel(&heap, targets[2]);
    ck_assert(!timer_node_armed(targets[2]));
    assert_heap_valid(&heap);
    ck_assert_uint_eq(heap.len, COUNT - 3);

    timer_heap_cancel(&heap, &unarmed);   /* never armed: no-op */
    timer_heap_cancel(&heap, targets[0]); /* already cancelled: no-op */
    assert_heap_valid(&heap);
    ck_assert_uint_eq(heap.len, COUNT - 3);

    for (size_t t = 0; t < 3; t++)
        cancelled[targets[t] - nodes] = 1;
    uint64_t previous = 0;
    struct timer_node *node;
    size_t popped_count = 0;
    while ((node = timer_heap_pop_expired(&heap, UINT64_MAX)) != NULL) {
        ck_assert(!cancelled[node - nodes]);
        ck_assert_uint_ge(node->deadline_ms, previous);
        previous = node->deadline_ms;
        popped_count++;
    }
    ck_assert_uint_eq(popped_count, COUNT - 3);
    timer_heap_free(&heap);
    free(nodes);
}
END_TEST

/* A model: which nodes are armed, and the smallest deadline among them. */
static int model_earliest(const struct timer_node *nodes, size_t count, uint64_t *deadline)
{
    int found = 0;
    for (size_t i = 0; i < count; i++) {
        if (timer_node_armed(&nodes[i]) && (!found || nodes[i].deadline_ms < *deadline)) {
            *deadline = nodes[i].deadline_ms;
            found = 1;
        }
    }
    return found;
}

START_TEST(test_randomized_mixed_operations_keep_invariant)
{
    enum { COUNT = 300, STEPS = 20000 };
    struct timer_heap heap;
    struct timer_node *nodes = make_nodes(COUNT);
    uint64_t rng = 12345;
    uint64_t now = 0;
    size_t armed_count = 0;
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    for (size_t step = 0; step < STEPS; step++) {
        struct timer_node *node = &nodes[test_rng_next(&rng) % COUNT];
        uint64_t roll = test_rng_next(&rng) % 10;
        if (roll < 5) {
            armed_count += !timer_node_armed(node);
            uint64_t deadline = now + test_rng_next(&rng) % 1000;
            ck_assert_int_eq(timer_heap_arm(&heap, node, deadline), 0);
            ck_assert(timer_node_armed(node));
            ck_assert_uint_eq(node->deadline_ms, deadline);
        } else if (roll < 8) {
            armed_count -= timer_node_armed(node);
            timer_heap_cancel(&heap, node);
            ck_assert(!timer_node_armed(node));
        } else {
            now += test_rng_next(&rng) % 50;
            uint64_t earliest = 0;
            int any = model_earliest(nodes, COUNT, &earliest);
            struct timer_node *popped = timer_heap_pop_expired(&heap, now);
            if (any && earliest <= now) {
                ck_assert_ptr_nonnull(popped);
                ck_assert_uint_eq(popped->deadline_ms, earliest);
                ck_assert(!timer_node_armed(popped));
                armed_count--;
            } else {
                ck_assert_ptr_null(popped);
            }
        }
        assert_heap_valid(&heap);
        ck_assert_uint_eq(heap.len, armed_count);
    }
    timer_heap_free(&heap);
    free(nodes);
}
END_TEST

START_TEST(test_growth_past_initial_capacity)
{
    enum { COUNT = 1000 };
    struct timer_heap heap;
    struct timer_node *nodes = make_nodes(COUNT);
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    size_t initial_cap = heap.cap;
    ck_assert_uint_lt(initial_cap, COUNT);
    for (size_t i = 0; i < COUNT; i++) {
        ck_assert_int_eq(timer_heap_arm(&heap, &nodes[i], COUNT - i), 0);
        assert_heap_valid(&heap);
        ck_assert_ptr_eq(timer_heap_peek(&heap), &nodes[i]);
        if (i == initial_cap) /* the first growth doubles */
            ck_assert_uint_eq(heap.cap, 2 * initial_cap);
    }
    ck_assert_uint_ge(heap.cap, COUNT);
    ck_assert_uint_eq(heap.len, COUNT);
    timer_heap_free(&heap);
    free(nodes);
}
END_TEST

/* White-box: pretend the array is already as large as memory allows, so
 * doubling must fail before realloc is even tried. The heap and the node must
 * be left exactly as they were. */
START_TEST(test_arm_failure_leaves_heap_unchanged)
{
    struct timer_heap heap;
    struct timer_node node;
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    timer_node_init(&node);
    struct timer_heap saved = heap;
    heap.cap = heap.len = SIZE_MAX / sizeof(*heap.nodes);
    struct timer_heap full = heap;

    ck_assert_int_eq(timer_heap_arm(&heap, &node, 42), -ENOMEM);
    ck_assert(!timer_node_armed(&node));
    ck_assert_ptr_eq(heap.nodes, full.nodes);
    ck_assert_uint_eq(heap.len, full.len);
    ck_assert_uint_eq(heap.cap, full.cap);
    heap = saved;
    timer_heap_free(&heap);
}
END_TEST

/* Reserved room means arming never reallocates: the array stays where it is. */
START_TEST(test_reserve_then_arm_does_not_reallocate)
{
    struct timer_heap heap;
    struct timer_node nodes[100];
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    ck_assert_int_eq(timer_heap_reserve(&heap, 100), 0);
    ck_assert_uint_ge(heap.cap, 100);
    struct timer_node **array = heap.nodes;
    for (size_t i = 0; i < 100; i++) {
        timer_node_init(&nodes[i]);
        ck_assert_int_eq(timer_heap_arm(&heap, &nodes[i], 1000 - i), 0);
    }
    ck_assert_ptr_eq(heap.nodes, array);
    ck_assert_uint_eq(timer_heap_peek(&heap)->deadline_ms, 901);
    ck_assert_int_eq(timer_heap_reserve(&heap, 10), 0); /* smaller: a no-op */
    ck_assert_ptr_eq(heap.nodes, array);
    timer_heap_free(&heap);
}
END_TEST

START_TEST(test_free_disarms_remaining_nodes)
{
    struct timer_heap heap;
    struct timer_node node;
    ck_assert_int_eq(timer_heap_init(&heap), 0);
    timer_node_init(&node);
    ck_assert_int_eq(timer_heap_arm(&heap, &node, 7), 0);
    timer_heap_free(&heap);
    ck_assert(!timer_node_armed(&node));
    ck_assert_ptr_null(heap.nodes);
}
END_TEST

static Suite *timer_heap_suite(void)
{
    Suite *suite = suite_create("timer_heap");
    TCase *tcase = tcase_create("core");
    tcase_add_test(tcase, test_empty_heap);
    tcase_add_test(tcase, test_pop_expired_respects_now);
    tcase_add_test(tcase, test_many_random_deadlines_pop_in_order);
    tcase_add_test(tcase, test_rearm_moves_earlier_and_later);
    tcase_add_test(tcase, test_cancel_root_middle_last_and_unarmed);
    tcase_add_test(tcase, test_randomized_mixed_operations_keep_invariant);
    tcase_add_test(tcase, test_growth_past_initial_capacity);
    tcase_add_test(tcase, test_arm_failure_leaves_heap_unchanged);
    tcase_add_test(tcase, test_reserve_then_arm_does_not_reallocate);
    tcase_add_test(tcase, test_free_disarms_remaining_nodes);
    suite_add_tcase(suite, tcase);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(timer_heap_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
