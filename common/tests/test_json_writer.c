/* json_writer: every input gives valid JSON text; numbers read back exactly. */
#include "json_writer.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What json_put_string writes for text, in a static buffer. */
static const char *as_json(void (*put)(FILE *, const char *), const char *text)
{
    static char buf[256];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    ck_assert_ptr_nonnull(f);
    put(f, text);
    fclose(f);
    return buf;
}

START_TEST(test_escapes_quotes_backslashes_and_controls)
{
    ck_assert_str_eq(as_json(json_put_string, "a\"b\\c"), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(as_json(json_put_string, "x\ny\tz\x7f"), "\"x\\ny\\u0009z\\u007f\"");
}
END_TEST

START_TEST(test_valid_utf8_passes_invalid_becomes_replacement)
{
    ck_assert_str_eq(as_json(json_put_string, "caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    /* a lone continuation byte, an overlong '/', a surrogate, a cut 3-byte sequence */
    ck_assert_str_eq(as_json(json_put_string, "\x80"), "\"\\ufffd\"");
    ck_assert_str_eq(as_json(json_put_string, "\xc0\xaf"), "\"\\ufffd\\ufffd\"");
    ck_assert_str_eq(as_json(json_put_string, "\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
    ck_assert_str_eq(as_json(json_put_string, "ok\xe2\x82"), "\"ok\\ufffd\\ufffd\"");
}
END_TEST

START_TEST(test_string_or_null)
{
    ck_assert_str_eq(as_json(json_put_string_or_null, NULL), "null");
    ck_assert_str_eq(as_json(json_put_string_or_null, ""), "null");
    ck_assert_str_eq(as_json(json_put_string_or_null, "x"), "\"x\"");
}
END_TEST

START_TEST(test_doubles_round_trip_shortest)
{
    char buf[64];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    json_put_double(f, 3.2);
    fputc(' ', f);
    json_put_double(f, 0.1 + 0.2);
    fputc(' ', f);
    json_put_double(f, 1.0 / 0.0);
    fclose(f);
    ck_assert_str_eq(buf, "3.2 0.30000000000000004 null");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_writer");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_escapes_quotes_backslashes_and_controls);
    tcase_add_test(tc, test_valid_utf8_passes_invalid_becomes_replacement);
    tcase_add_test(tc, test_string_or_null);
    tcase_add_test(tc, test_doubles_round_trip_shortest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
