/* cf_escape: the one escaper for a target's text. Every byte a terminal could act on is
 * escaped, nothing is lost, and a cut is marked. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cf_escape.h"

START_TEST(control_bytes_are_escaped)
{
    char out[128];
    const char in[] = "\x1b[31mred\x1b[0m\r\n\t\\ it's \x7f\xc3\xa9";
    cf_escape(in, sizeof(in) - 1, out, sizeof(out), 0);
    ck_assert_str_eq(out, "\\x1b[31mred\\x1b[0m\\r\\n\\t\\\\ it's \\x7f\\xc3\\xa9");
    cf_escape(in, sizeof(in) - 1, out, sizeof(out), CF_ESCAPE_QUOTE);
    ck_assert_ptr_nonnull(strstr(out, "it\\'s"));
    cf_escape("say \"hi\"", 8, out, sizeof(out), CF_ESCAPE_DQUOTE);
    ck_assert_str_eq(out, "say \\\"hi\\\"");
    const char nul[] = {'a', '\0', 'b'};
    cf_escape(nul, sizeof(nul), out, sizeof(out), 0);
    ck_assert_str_eq(out, "a\\x00b");
}
END_TEST

START_TEST(newlines_kept_in_multi_line_text)
{
    char *out = cf_escape_dup("line one\n  \x1b]0;title\x07\nend", CF_ESCAPE_KEEP_NEWLINES);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, "line one\n  \\x1b]0;title\\x07\nend");
    free(out);
}
END_TEST

START_TEST(cut_short_with_a_mark)
{
    char out[12];
    size_t n = cf_escape("\x01\x02\x03\x04", 4, out, sizeof(out), 0);
    ck_assert_str_eq(out, "\\x01\\x02..."); /* never half an escape */
    ck_assert_uint_eq(n, strlen(out));
    char tiny[3] = "xx";
    ck_assert_uint_eq(cf_escape("abc", 3, tiny, sizeof(tiny), 0), 0);
    ck_assert_str_eq(tiny, "");
    char buf[16] = "a\x1b"
                   "b";
    cf_escape_in_place(buf, sizeof(buf), 0);
    ck_assert_str_eq(buf, "a\\x1bb");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cf_escape");
    TCase *tc = tcase_create("escape");
    tcase_add_test(tc, control_bytes_are_escaped);
    tcase_add_test(tc, newlines_kept_in_multi_line_text);
    tcase_add_test(tc, cut_short_with_a_mark);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
