/* prober: probes back off while the target settles (a long grace must not become a flood of
 * connections), and come back to their pace as soon as one fails. */
#include "prober.h"

#include "support.h"

#include <check.h>
#include <stdlib.h>

static uint64_t after(struct prober *p, bool ok, uint64_t now)
{
    p->cur.ok = ok;
    return prober_next_interval(p, now);
}

START_TEST(test_steady_pace_before_settling)
{
    struct prober p = {.interval_ms = 250, .backoff_from_ms = 0};
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(after(&p, true, 1000 + i), 250);
    p.backoff_from_ms = 5000;
    ck_assert_uint_eq(after(&p, true, 4999), 250); /* not yet settling */
}
END_TEST

START_TEST(test_backs_off_to_the_cap_while_answered_and_resets_on_failure)
{
    struct prober p = {.interval_ms = 250, .backoff_from_ms = 100};
    const uint64_t expected[] = {
        500, 1000, 2000, 4000, PROBER_MAX_BACKOFF_MS, PROBER_MAX_BACKOFF_MS};
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        ck_assert_uint_eq(after(&p, true, 200 + i), expected[i]);
    ck_assert_uint_eq(after(&p, false, 300), 250); /* a failure: look closely again */
    ck_assert_uint_eq(after(&p, true, 400), 500);
}
END_TEST

START_TEST(test_never_faster_than_the_asked_interval)
{
    struct prober p = {.interval_ms = 10000, .backoff_from_ms = 1};
    ck_assert_uint_eq(after(&p, true, 2), 10000);
    ck_assert_uint_eq(after(&p, true, 3), 10000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prober");
    TCase *tc = tcase_create("backoff");
    tcase_add_test(tc, test_steady_pace_before_settling);
    tcase_add_test(tc, test_backs_off_to_the_cap_while_answered_and_resets_on_failure);
    tcase_add_test(tc, test_never_faster_than_the_asked_interval);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
