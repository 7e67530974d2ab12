/* Tests for the incremental HTTP response framer: every response is fed whole, byte by byte
 * and split at every offset, and must frame the same way each time. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_response.h"
#include "support.h"

/* Feed data in pieces of `piece` bytes until the framer reports something other than
 * INCOMPLETE or the data runs out. *consumed is the total used. */
static enum http_response_status feed_in_pieces(struct http_response *r, const char *data,
                                                size_t len, size_t piece, size_t *consumed)
{
    enum http_response_status st = HTTP_RESPONSE_INCOMPLETE;
    size_t off = 0;

    while (off < len && st == HTTP_RESPONSE_INCOMPLETE) {
        size_t n = len - off < piece ? len - off : piece;
        size_t used = 0;
        st = http_response_feed(r, data + off, n, &used);
        ck_assert_uint_le(used, n);
        off += used;
        if (st == HTTP_RESPONSE_INCOMPLETE)
            ck_assert_uint_eq(used, n); /* INCOMPLETE always takes everything */
    }
    *consumed = off;
    return st;
}

/* The response must complete exactly at its last byte, whatever the piece size. */
static void assert_frames(const char *resp, bool head, int status, uint64_t body)
{
    size_t len = strlen(resp);

    for (size_t piece = 1; piece <= len; piece++) {
        struct http_response r;
        size_t used;
        http_response_init(&r, head);
        ck_assert_int_eq(feed_in_pieces(&r, resp, len, piece, &used), HTTP_RESPONSE_COMPLETE);
        ck_assert_uint_eq(used, len);
        ck_assert_int_eq(r.status, status);
        ck_assert_uint_eq(r.body_bytes, body);
        ck_assert_uint_eq(r.total_bytes, len);
    }
}

/* Split in two at every offset, and one byte short of the end stays INCOMPLETE. */
static void assert_frames_split(const char *resp, bool head)
{
    size_t len = strlen(resp);

    for (size_t cut = 0; cut <= len; cut++) {
        struct http_response r;
        size_t used1 = 0, used2 = 0;
        enum http_response_status st;
        http_response_init(&r, head);
        st = http_response_feed(&r, resp, cut, &used1);
        if (cut < len) {
            ck_assert_int_eq(st, HTTP_RESPONSE_INCOMPLETE);
            st = http_response_feed(&r, resp + cut, len - cut, &used2);
        }
        ck_assert_int_eq(st, HTTP_RESPONSE_COMPLETE);
        ck_assert_uint_eq(used1 + used2, len);
    }
}

START_TEST(content_length_byte_by_byte)
{
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
    struct http_response r;
    size_t used;

    assert_frames(resp, false, 200, 5);
    assert_frames_split(resp, false);
    http_response_init(&r, false);
    ck_assert_int_eq(feed_in_pieces(&r, resp, strlen(resp) - 1, 1, &used),
                     HTTP_RESPONSE_INCOMPLETE);
    ck_assert_int_eq(r.step, HTTP_STEP_BODY);
    ck_assert_str_eq(r.reason, "OK");
    ck_assert_str_eq(http_response_step_name(&r), "the body");
}
END_TEST

START_TEST(chunked_with_extensions_and_trailers)
{
    const char *resp = "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
                       "5\r\nhello\r\n"
                       "1A;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                       "0\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n";

    assert_frames(resp, false, 200, 5 + 26);
    assert_frames_split(resp, false);
}
END_TEST

START_TEST(chunked_without_trailers_and_bare_lf)
{
    assert_frames("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", false, 200, 3);
    assert_frames("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", false,
                  200, 0);
}
END_TEST

START_TEST(pipelined_responses_stop_at_each_end)
{
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
                      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    const size_t first = strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab");
    struct http_response r;
    size_t used;

    http_response_init(&r, false);
    ck_assert_int_eq(http_response_feed(&r, two, strlen(two), &used), HTTP_RESPONSE_COMPLETE);
    ck_assert_uint_eq(used, first);
    /* Feeding a finished response changes nothing. */
    ck_assert_int_eq(http_response_feed(&r, two + used, 3, &used), HTTP_RESPONSE_COMPLETE);
    ck_assert_uint_eq(used, 0);
    http_response_init(&r, false);
    ck_assert_int_eq(http_response_feed(&r, two + first, strlen(two) - first, &used),
                     HTTP_RESPONSE_COMPLETE);
    ck_assert_uint_eq(used, strlen(two) - first);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.reason, "Not Found");
}
END_TEST

START_TEST(no_body_for_head_204_304)
{
    assert_frames("HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\n", true, 200, 0);
    assert_frames("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false, 204, 0);
    assert_frames("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, 304, 0);
    assert_frames("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, 0);
}
END_TEST

START_TEST(interim_100_continue_then_final)
{
    const char *resp = "HTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";

    assert_frames(resp, false, 200, 3);
    assert_frames_split(resp, false);
}
END_TEST

START_TEST(close_delimited_body)
{
    const char *resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body";
    struct http_response r;
    size_t used;

    http_response_init(&r, false);
    ck_assert_int_eq(feed_in_pieces(&r, resp, strlen(resp), 1, &used), HTTP_RESPONSE_INCOMPLETE);
    ck_assert_int_eq(r.step, HTTP_STEP_UNTIL_EOF);
    ck_assert_uint_eq(r.body_bytes, 9);
    ck_assert_int_eq(http_response_finish(&r), HTTP_RESPONSE_COMPLETE);

    /* A transfer coding other than chunked also ends at close, Content-Length or not. */
    resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\nabcdef";
    http_response_init(&r, false);
    ck_assert_int_eq(feed_in_pieces(&r, resp, strlen(resp), 1, &used), HTTP_RESPONSE_INCOMPLETE);
    ck_assert_int_eq(r.step, HTTP_STEP_UNTIL_EOF);
}
END_TEST

START_TEST(transfer_encoding_chunked_overrides_content_length)
{
    assert_frames("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "2\r\nab\r\n0\r\n\r\n",
                  false, 200, 2);
}
END_TEST

START_TEST(truncated_responses_are_incomplete_at_eof)
{
    const char *cases[] = {
        "",
        "HTTP/1.1 200",
        "HTTP/1.1 200 OK\r\nContent-Len",
        "HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
    };
    const int steps[] = {HTTP_STEP_STATUS_LINE, HTTP_STEP_STATUS_LINE, HTTP_STEP_HEADERS,
                         HTTP_STEP_BODY,        HTTP_STEP_CHUNK_DATA,  HTTP_STEP_TRAILERS};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_response r;
        size_t used;
        http_response_init(&r, false);
        ck_assert_int_eq(feed_in_pieces(&r, cases[i], strlen(cases[i]), 1, &used),
                         HTTP_RESPONSE_INCOMPLETE);
        ck_assert_int_eq(r.step, steps[i]);
        ck_assert_int_eq(http_response_finish(&r), HTTP_RESPONSE_INCOMPLETE);
    }
}
END_TEST

START_TEST(invalid_responses)
{
    const char *cases[] = {
        "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/1.1 2x0 OK\r\n",
        "HTTP/1.1 200OK\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_response r;
        size_t used;
        http_response_init(&r, false);
        ck_assert_msg(feed_in_pieces(&r, cases[i], strlen(cases[i]), 1, &used) ==
                          HTTP_RESPONSE_INVALID,
                      "case %zu not rejected", i);
        ck_assert_ptr_nonnull(r.error);
        ck_assert_int_eq(http_response_finish(&r), HTTP_RESPONSE_INVALID);
    }
}
END_TEST

START_TEST(same_content_length_twice_is_fine)
{
    assert_frames("HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length:  1 \r\n\r\nx", false,
                  200, 1);
}
END_TEST

START_TEST(long_lines_are_framed_and_huge_heads_rejected)
{
    size_t big = 70 * 1024;
    char *resp = malloc(big + 128);
    struct http_response r;
    size_t used, len;

    /* A 1000-byte header line: truncated for inspection, framed correctly. */
    len = (size_t)sprintf(resp, "HTTP/1.1 200 OK\r\nX-Long: ");
    memset(resp + len, 'v', 1000);
    len += 1000;
    len += (size_t)sprintf(resp + len, "\r\nContent-Length: 2\r\n\r\nok");
    for (size_t piece = 1; piece < 2000; piece += 97) {
        http_response_init(&r, false);
        ck_assert_int_eq(feed_in_pieces(&r, resp, len, piece, &used), HTTP_RESPONSE_COMPLETE);
        ck_assert_uint_eq(used, len);
    }

    /* A head that never ends is garbage, not something to read forever. */
    len = (size_t)sprintf(resp, "HTTP/1.1 200 OK\r\n");
    while (len < big) {
        memcpy(resp + len, "X-Filler: 0123456789\r\n", 22);
        len += 22;
    }
    http_response_init(&r, false);
    ck_assert_int_eq(feed_in_pieces(&r, resp, len, 4096, &used), HTTP_RESPONSE_INVALID);
    free(resp);
}
END_TEST

START_TEST(request_classification)
{
    ck_assert(http_request_is_http("GET / HTTP/1.1\r\n\r\n", 18));
    ck_assert(http_request_is_http("BREW /pot HTTP/1.0\r\n", 20));
    ck_assert(!http_request_is_http("get / HTTP/1.1\r\n", 16));
    ck_assert(!http_request_is_http("GET / HTTP/2.0\r\n", 16));
    ck_assert(!http_request_is_http("\x16\x03\x01\x02\x00", 5));
    ck_assert(!http_request_is_http("GET", 3));
    ck_assert(!http_request_is_http("", 0));
    ck_assert(http_request_is_head("HEAD / HTTP/1.1\r\n", 17));
    ck_assert(!http_request_is_head("HEADER", 6));
    ck_assert(!http_request_is_head("GET / HTTP/1.1\r\n", 16));
}
END_TEST

static Suite *http_response_suite(void)
{
    Suite *s = suite_create("http_response");
    TCase *tc = tcase_create("framing");

    tcase_add_test(tc, content_length_byte_by_byte);
    tcase_add_test(tc, chunked_with_extensions_and_trailers);
    tcase_add_test(tc, chunked_without_trailers_and_bare_lf);
    tcase_add_test(tc, pipelined_responses_stop_at_each_end);
    tcase_add_test(tc, no_body_for_head_204_304);
    tcase_add_test(tc, interim_100_continue_then_final);
    tcase_add_test(tc, close_delimited_body);
    tcase_add_test(tc, transfer_encoding_chunked_overrides_content_length);
    tcase_add_test(tc, truncated_responses_are_incomplete_at_eof);
    tcase_add_test(tc, invalid_responses);
    tcase_add_test(tc, same_content_length_twice_is_fine);
    tcase_add_test(tc, long_lines_are_framed_and_huge_heads_rejected);
    tcase_add_test(tc, request_classification);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ts_run_suite(http_response_suite());
}
