/* Tests for http_parser.
 *
 * Every input is copied so that its last byte is the last byte before a PROT_NONE page:
 * a parser that reads even one byte too far crashes the test (Check runs each test in its
 * own process and reports the signal). Inputs fed incrementally are re-placed for each
 * prefix, so the guard sits right after the prefix the parser was given.
 */
#include "http_parser.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEFAULT_MAX_HEAD 8192
#define GUARD_CAPACITY   (64 * 1024)

/* ---- guard page buffer -------------------------------------------------------------- */

struct guarded_buf {
    char *map;
    size_t map_len;
    char *guard; /* first byte of the PROT_NONE page */
    size_t capacity;
};

static void guarded_init(struct guarded_buf *g, size_t capacity)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_len = (capacity + page - 1) / page * page;

    g->map_len = data_len + page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g->map, MAP_FAILED);
    g->guard = g->map + data_len;
    g->capacity = data_len;
    ck_assert_int_eq(mprotect(g->guard, page, PROT_NONE), 0);
}

static void guarded_free(struct guarded_buf *g)
{
    munmap(g->map, g->map_len);
}

/* Copies data so that it ends exactly at the guard page; returns where it starts. */
static const char *guarded_place(struct guarded_buf *g, const char *data, size_t len)
{
    char *dst = g->guard - len;

    ck_assert_uint_le(len, g->capacity);
    memmove(dst, data, len);
    return dst;
}

/* ---- helpers ------------------------------------------------------------------------ */

/* A request parsed from some buffer, with pointers turned into offsets so that results
 * from buffers at different addresses can be compared. */
struct parse_outcome {
    enum http_parse_result result;
    size_t used; /* bytes given to the call that returned result */
    struct http_request req;
    const char *buf;
};

static void assert_inside(const char *p, size_t n, const char *buf, size_t len)
{
    ck_assert_ptr_ne(p, NULL);
    ck_assert(p >= buf && p + n <= buf + len);
}

static void assert_request_sane(const struct parse_outcome *o)
{
    const struct http_request *r = &o->req;

    ck_assert_uint_le(r->head_len, o->used);
    assert_inside(r->method_str, r->method_len, o->buf, r->head_len);
    assert_inside(r->target, r->target_len, o->buf, r->head_len);
    for (size_t i = 0; i < r->num_headers; i++) {
        assert_inside(r->headers[i].name, r->headers[i].name_len, o->buf, r->head_len);
        assert_inside(r->headers[i].value, r->headers[i].value_len, o->buf, r->head_len);
    }
}

static void assert_same_span(const char *pa, size_t na, const char *bufa, const char *pb, size_t nb,
                             const char *bufb)
{
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(pa - bufa, pb - bufb);
}

static void assert_same_outcome(const struct parse_outcome *a, const struct parse_outcome *b)
{
    ck_assert_int_eq(a->result, b->result);
    if (a->result != HTTP_PARSE_OK) {
        return;
    }
    assert_request_sane(a);
    assert_request_sane(b);
    ck_assert_int_eq(a->req.method, b->req.method);
    assert_same_span(a->req.method_str, a->req.method_len, a->buf, b->req.method_str,
                     b->req.method_len, b->buf);
    assert_same_span(a->req.target, a->req.target_len, a->buf, b->req.target, b->req.target_len,
                     b->buf);
    ck_assert_int_eq(a->req.minor_version, b->req.minor_version);
    ck_assert_uint_eq(a->req.num_headers, b->req.num_headers);
    for (size_t i = 0; i < a->req.num_headers; i++) {
        const struct http_header *ha = &a->req.headers[i];
        const struct http_header *hb = &b->req.headers[i];

        assert_same_span(ha->name, ha->name_len, a->buf, hb->name, hb->name_len, b->buf);
        assert_same_span(ha->value, ha->value_len, a->buf, hb->value, hb->value_len, b->buf);
    }
    ck_assert_uint_eq(a->req.head_len, b->req.head_len);
    ck_assert_int_eq(a->req.keep_alive, b->req.keep_alive);
    ck_assert_uint_eq(a->req.content_length, b->req.content_length);
}

/* Parses input[0..len) in one call, placed against the guard page. */
static void parse_whole(struct guarded_buf *g, const char *input, size_t len, size_t max_head,
                        struct parse_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->buf = guarded_place(g, input, len);
    out->used = len;
    out->result = http_parse_request(out->buf, len, 0, max_head, &out->req);
}

/* Feeds input one byte more per call (each prefix against the guard page, prev_len =
 * previous length) and stops at the first result that is not INCOMPLETE. */
static void parse_bytewise(struct guarded_buf *g, const char *input, size_t len, size_t max_head,
                           struct parse_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->result = HTTP_PARSE_INCOMPLETE;
    for (size_t n = 1; n <= len && out->result == HTTP_PARSE_INCOMPLETE; n++) {
        out->buf = guarded_place(g, input, n);
        out->used = n;
        out->result = http_parse_request(out->buf, n, n - 1, max_head, &out->req);
    }
}

/* Whole and byte-by-byte parsing agree; returns the whole outcome for further checks. */
static void parse_both_ways(struct guarded_buf *g, const char *input, size_t len, size_t max_head,
                            struct parse_outcome *whole)
{
    struct parse_outcome bytewise;

    parse_bytewise(g, input, len, max_head, &bytewise);
    parse_whole(g, input, len, max_head, whole);
    assert_same_outcome(whole, &bytewise);
}

/* A valid single head: INCOMPLETE until its last byte, then OK, same as whole. */
static void parse_valid(struct guarded_buf *g, const char *input, struct parse_outcome *whole)
{
    size_t len = strlen(input);
    struct parse_outcome bytewise;

    parse_bytewise(g, input, len, DEFAULT_MAX_HEAD, &bytewise);
    ck_assert_msg(bytewise.result == HTTP_PARSE_OK && bytewise.used == len,
                  "bytewise: result %d after %zu of %zu bytes", bytewise.result, bytewise.used,
                  len);
    parse_whole(g, input, len, DEFAULT_MAX_HEAD, whole);
    ck_assert_int_eq(whole->result, HTTP_PARSE_OK);
    ck_assert_uint_eq(whole->req.head_len, len);
    assert_same_outcome(whole, &bytewise);
}

static bool span_is(const char *p, size_t n, const char *expected)
{
    return n == strlen(expected) && memcmp(p, expected, n) == 0;
}

#define ck_assert_span(p, n, expected)                                                             \
    ck_assert_msg(span_is((p), (n), (expected)), "got \"%.*s\", expected \"%s\"", (int)(n), (p),   \
                  (expected))

/* ---- the guard page itself ---------------------------------------------------------- */

/* Without this, a broken guard would make every other test pass vacuously. write()
 * reports EFAULT for an unreadable source instead of raising a signal. */
START_TEST(test_guard_page_is_unreadable)
{
    struct guarded_buf g;
    int fds[2];
    const char *p;

    guarded_init(&g, 16);
    ck_assert_int_eq(pipe(fds), 0);
    p = guarded_place(&g, "ab", 2);
    ck_assert_int_eq(write(fds[1], p + 1, 1), 1);
    errno = 0;
    ck_assert_int_eq(write(fds[1], p + 2, 1), -1);
    ck_assert_int_eq(errno, EFAULT);
    close(fds[0]);
    close(fds[1]);
    guarded_free(&g);
}
END_TEST

/* ---- valid requests ----------------------------------------------------------------- */

static const char *const valid_requests[] = {
    "GET / HTTP/1.1\r\nHost: example\r\n\r\n",
    "HEAD /bytes/10?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1.0\r\nAccept: */*\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.0\n\n",
    "GET / HTTP/1.1\nHost: a\nX-Y: z\n\n",
    "GET / HTTP/1.1\r\nHost: a\n\r\n",
    "GET / HTTP/1.1\nHost: a\r\n\n",
    "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "\n\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
    "GET / HTTP/1.1\r\nHost:\r\nX-Empty:\r\nX-Tab:\tv\tw\t\r\n\r\n",
    "GET / HTTP/1.1\r\nhOsT: a\r\ncontent-length: 0\r\nCONNECTION: Close\r\n\r\n",
    "GET /!$&'()*+,;=:@-._~%20 HTTP/1.1\r\nHost: a\r\nX-Tchar!#$%&'*+-.^_`|~: v\r\n\r\n",
};

START_TEST(test_valid_bytewise_equals_whole)
{
    struct guarded_buf g;
    struct parse_outcome whole;

    guarded_init(&g, GUARD_CAPACITY);
    parse_valid(&g, valid_requests[_i], &whole);
    guarded_free(&g);
}
END_TEST

START_TEST(test_valid_fields)
{
    static const char input[] = "GET /bytes/10?x=1 HTTP/1.1\r\n"
                                "Host: example.test\r\n"
                                "X-Spaces: \t  a  b \t \r\n"
                                "X-Empty:\r\n"
                                "\r\n";
    struct guarded_buf g;
    struct parse_outcome o;
    const struct http_request *r = &o.req;

    guarded_init(&g, GUARD_CAPACITY);
    parse_valid(&g, input, &o);
    ck_assert_int_eq(r->method, HTTP_METHOD_GET);
    ck_assert_span(r->method_str, r->method_len, "GET");
    ck_assert_span(r->target, r->target_len, "/bytes/10?x=1");
    ck_assert_int_eq(r->minor_version, 1);
    ck_assert_uint_eq(r->num_headers, 3);
    ck_assert_span(r->headers[0].name, r->headers[0].name_len, "Host");
    ck_assert_span(r->headers[0].value, r->headers[0].value_len, "example.test");
    ck_assert_span(r->headers[1].value, r->headers[1].value_len, "a  b");
    ck_assert_uint_eq(r->headers[2].value_len, 0);
    ck_assert_uint_eq(r->head_len, sizeof(input) - 1);
    ck_assert(r->keep_alive);
    ck_assert_uint_eq(r->content_length, 0);
    guarded_free(&g);
}
END_TEST

START_TEST(test_methods)
{
    static const struct {
        const char *input;
        enum http_method method;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_GET},
        {"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_HEAD},
        {"POST / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER},
        {"PUT / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER},
        {"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER},
        {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER},
        {"PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER},
        {"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER},
        {"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER},
    };
    struct guarded_buf g;
    struct parse_outcome o;

    guarded_init(&g, GUARD_CAPACITY);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_valid(&g, cases[i].input, &o);
        ck_assert_msg(o.req.method == cases[i].method, "%s", cases[i].input);
    }
    guarded_free(&g);
}
END_TEST

START_TEST(test_leading_empty_lines_count_in_head_len)
{
    static const char input[] = "\r\n\nGET / HTTP/1.0\r\n\r\n";
    struct guarded_buf g;
    struct parse_outcome o;

    guarded_init(&g, GUARD_CAPACITY);
    parse_valid(&g, input, &o);
    ck_assert_int_eq(o.req.method_str - o.buf, 3);
    ck_assert_uint_eq(o.req.head_len, sizeof(input) - 1);
    guarded_free(&g);
}
END_TEST

/* ---- incremental feeding ------------------------------------------------------------ */

/* Two calls, split at every offset: the second resumes from the first's length. */
START_TEST(test_every_two_chunk_split_equals_whole)
{
    static const char input[] = "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    size_t len = sizeof(input) - 1;
    struct guarded_buf g;
    struct parse_outcome whole;
    struct parse_outcome split;

    guarded_init(&g, GUARD_CAPACITY);
    parse_whole(&g, input, len, DEFAULT_MAX_HEAD, &whole);
    ck_assert_int_eq(whole.result, HTTP_PARSE_OK);
    for (size_t cut = 1; cut < len; cut++) {
        memset(&split, 0, sizeof(split));
        split.buf = guarded_place(&g, input, cut);
        ck_assert_int_eq(http_parse_request(split.buf, cut, 0, DEFAULT_MAX_HEAD, &split.req),
                         HTTP_PARSE_INCOMPLETE);
        split.buf = guarded_place(&g, input, len);
        split.used = len;
        split.result = http_parse_request(split.buf, len, cut, DEFAULT_MAX_HEAD, &split.req);
        assert_same_outcome(&whole, &split);
    }
    guarded_free(&g);
}
END_TEST

/* prev_len larger than len or than the limit must not make the parser skip bytes. */
START_TEST(test_prev_len_is_clamped)
{
    static const char input[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = sizeof(input) - 1;
    struct guarded_buf g;
    struct http_request req;
    const char *buf;

    guarded_init(&g, GUARD_CAPACITY);
    buf = guarded_place(&g, input, len);
    ck_assert_int_eq(http_parse_request(buf, len, len + 100, DEFAULT_MAX_HEAD, &req),
                     HTTP_PARSE_OK);
    ck_assert_uint_eq(req.head_len, len);
    ck_assert_int_eq(http_parse_request(buf, len, len, len, &req), HTTP_PARSE_OK);
    ck_assert_int_eq(http_parse_request(buf, 0, 0, DEFAULT_MAX_HEAD, &req), HTTP_PARSE_INCOMPLETE);
    guarded_free(&g);
}
END_TEST

START_TEST(test_pipelined_requests)
{
    static const char input[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                                "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                                "\r\n" /* the stray CRLF some clients send after a body */
                                "HEAD /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                "GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    static const struct {
        const char *target;
        enum http_method method;
        bool keep_alive;
        uint64_t content_length;
    } expected[] = {
        {"/a", HTTP_METHOD_GET, true, 0},
        {"/b", HTTP_METHOD_OTHER, true, 5},
        {"/c", HTTP_METHOD_HEAD, true, 0},
        {"/d", HTTP_METHOD_GET, false, 0},
    };
    size_t len = sizeof(input) - 1;
    struct guarded_buf g;
    struct http_request req;
    const char *buf;
    size_t offset = 0;

    guarded_init(&g, GUARD_CAPACITY);
    buf = guarded_place(&g, input, len);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        ck_assert_int_eq(http_parse_request(buf + offset, len - offset, 0, DEFAULT_MAX_HEAD, &req),
                         HTTP_PARSE_OK);
        ck_assert_span(req.target, req.target_len, expected[i].target);
        ck_assert_int_eq(req.method, expected[i].method);
        ck_assert_int_eq(req.keep_alive, expected[i].keep_alive);
        ck_assert_uint_eq(req.content_length, expected[i].content_length);
        offset += req.head_len + req.content_length;
    }
    ck_assert_uint_eq(offset, len);
    guarded_free(&g);
}
END_TEST

/* ---- size limits -------------------------------------------------------------------- */

/* "GET / HTTP/1.1\r\nHost: a\r\nX: aaa...\r\n\r\n", exactly total bytes long. */
static char *make_head(size_t total)
{
    static const char prefix[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    static const char suffix[] = "\r\n\r\n";
    size_t fixed = sizeof(prefix) - 1 + sizeof(suffix) - 1;
    char *head = malloc(total + 1);

    ck_assert_ptr_nonnull(head);
    ck_assert_uint_gt(total, fixed);
    memcpy(head, prefix, sizeof(prefix) - 1);
    memset(head + sizeof(prefix) - 1, 'a', total - fixed);
    memcpy(head + total - (sizeof(suffix) - 1), suffix, sizeof(suffix));
    return head;
}

START_TEST(test_head_exactly_at_limit_is_ok)
{
    size_t max = 1024;
    char *head = make_head(max);
    struct guarded_buf g;
    struct parse_outcome o;

    guarded_init(&g, GUARD_CAPACITY);
    parse_both_ways(&g, head, max, max, &o);
    ck_assert_int_eq(o.result, HTTP_PARSE_OK);
    ck_assert_uint_eq(o.req.head_len, max);
    ck_assert_uint_eq(o.used, max);
    free(head);
    guarded_free(&g);
}
END_TEST

/* More bytes than the limit in the buffer is fine if the head ends within it. */
START_TEST(test_head_at_limit_followed_by_more_is_ok)
{
    size_t max = 1024;
    char *head = make_head(max);
    char *input = malloc(2 * max);
    struct guarded_buf g;
    struct parse_outcome o;

    ck_assert_ptr_nonnull(input);
    memcpy(input, head, max);
    memcpy(input + max, head, max);
    guarded_init(&g, GUARD_CAPACITY);
    parse_both_ways(&g, input, 2 * max, max, &o);
    ck_assert_int_eq(o.result, HTTP_PARSE_OK);
    ck_assert_uint_eq(o.req.head_len, max);
    free(head);
    free(input);
    guarded_free(&g);
}
END_TEST

START_TEST(test_head_one_byte_over_limit_is_431)
{
    size_t max = 1024;
    char *head = make_head(max + 1);
    struct guarded_buf g;
    struct parse_outcome o;

    guarded_init(&g, GUARD_CAPACITY);
    parse_both_ways(&g, head, max + 1, max, &o);
    ck_assert_int_eq(o.result, HTTP_PARSE_TOO_LARGE);
    free(head);
    guarded_free(&g);
}
END_TEST

/* 431 as soon as the limit is passed, without waiting for the end of the head. */
START_TEST(test_431_reported_before_head_ends)
{
    size_t max = 1024;
    size_t total = 3 * max;
    char *head = make_head(total);
    struct guarded_buf g;
    struct parse_outcome o;
    const char *buf;

    guarded_init(&g, GUARD_CAPACITY);
    buf = guarded_place(&g, head, max);
    ck_assert_int_eq(http_parse_request(buf, max, 0, max, &o.req), HTTP_PARSE_INCOMPLETE);
    buf = guarded_place(&g, head, max + 1);
    ck_assert_int_eq(http_parse_request(buf, max + 1, max, max, &o.req), HTTP_PARSE_TOO_LARGE);
    parse_bytewise(&g, head, total, max, &o);
    ck_assert_int_eq(o.result, HTTP_PARSE_TOO_LARGE);
    ck_assert_uint_eq(o.used, max + 1);
    /* The same with the default limit. */
    free(head);
    head = make_head(2 * DEFAULT_MAX_HEAD);
    parse_bytewise(&g, head, 2 * DEFAULT_MAX_HEAD, DEFAULT_MAX_HEAD, &o);
    ck_assert_int_eq(o.result, HTTP_PARSE_TOO_LARGE);
    ck_assert_uint_eq(o.used, DEFAULT_MAX_HEAD + 1);
    free(head);
    guarded_free(&g);
}
END_TEST

/* Bytes past the limit are never judged: whatever they hold, the answer is 431, and the
 * same whether the input arrives whole or byte by byte. Checking the request's first byte
 * even when it lies past the limit would answer 400 whole but 431 byte by byte (the fuzz
 * target catches that mistake within a minute when it is planted). */
START_TEST(test_limit_wins_over_bad_bytes_past_it)
{
    static const struct {
        const char *input;
        size_t len;
        size_t max;
    } cases[] = {
        {"\r\n\x16", 3, 1},                          /* bad first byte after the limit */
        {"\r\n\r\n\x16", 5, 3},                      /* ... after skipped empty lines */
        {"GET / HTTP/1.1\r\nX\x01\r\n\r\n", 22, 17}, /* control char past the limit */
        {"GET / HTTP/1.1\r\nX\r\r\n\r\n", 22, 17},   /* bare CR judged past the limit */
    };
    struct guarded_buf g;
    struct parse_outcome o;

    guarded_init(&g, GUARD_CAPACITY);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_both_ways(&g, cases[i].input, cases[i].len, cases[i].max, &o);
        ck_assert_msg(o.result == HTTP_PARSE_TOO_LARGE, "case %zu: got %d", i, o.result);
        parse_whole(&g, cases[i].input, cases[i].len, DEFAULT_MAX_HEAD, &o);
        ck_assert_msg(o.result == HTTP_PARSE_BAD_REQUEST, "case %zu, default limit: got %d", i,
                      o.result);
    }
    guarded_free(&g);
}
END_TEST

/* A head of n headers: Host plus n - 1 others. */
static char *make_head_with_headers(size_t n)
{
    size_t cap = 64 + n * 32;
    char *head = malloc(cap);
    size_t len;

    ck_assert_ptr_nonnull(head);
    len = (size_t)snprintf(head, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 1; i < n; i++) {
        len += (size_t)snprintf(head + len, cap - len, "X-Header-%zu: %zu\r\n", i, i);
    }
    snprintf(head + len, cap - len, "\r\n");
    return head;
}

START_TEST(test_max_headers_ok_one_more_is_431)
{
    char *head = make_head_with_headers(HTTP_MAX_HEADERS);
    struct guarded_buf g;
    struct parse_outcome o;

    guarded_init(&g, GUARD_CAPACITY);
    parse_valid(&g, head, &o);
    ck_assert_uint_eq(o.req.num_headers, HTTP_MAX_HEADERS);
    free(head);
    head = make_head_with_headers(HTTP_MAX_HEADERS + 1);
    parse_both_ways(&g, head, strlen(head), DEFAULT_MAX_HEAD, &o);
    ck_assert_int_eq(o.result, HTTP_PARSE_TOO_LARGE);
    free(head);
    guarded_free(&g);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------- */

struct error_case {
    const char *name;
    const char *input;
    size_t len;
    enum http_parse_result expected;
};

#define ERROR_CASE(name, literal, expected)                                                        \
    {                                                                                              \
        name, literal, sizeof(literal) - 1, expected                                               \
    }
#define H11 " HTTP/1.1\r\nHost: a\r\n"

static const struct error_case error_cases[] = {
    /* request line */
    ERROR_CASE("bare CR in request line", "GET / HTTP/1.1\rHost: a\r\n\r\n",
               HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("CR CR LF", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("two spaces after method", "GET  /" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("two spaces after target", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
               HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("tab as separator", "GET\t/" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("no version", "GET /\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("method only", "GET\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("leading space", " GET /" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("method with non-tchar", "GE(T /" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("method glued to target", "GET/" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("absolute-form target", "GET http://a/" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("relative target", "GET a" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("two asterisks", "OPTIONS **" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("space inside target", "GET /a b" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("control char in target", "GET /\x01" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("tab in target", "GET /\t" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("DEL in target", "GET /\x7f" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("NUL in target", "GET /\0" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("version 1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("version 11", "GET / HTTP/11\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("version 1", "GET / HTTP/1\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("version letters", "GET / HTTP/a.b\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("version 10.0", "GET / HTTP/10.0\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
               HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("too many leading empty lines", "\r\n\r\n\r\n\r\n\r\nGET /" H11 "\r\n",
               HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("leading bare CR", "\rGET /" H11 "\r\n", HTTP_PARSE_BAD_REQUEST),
    /* header lines */
    ERROR_CASE("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("no colon", "GET /" H11 "NoColon\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("empty name", "GET /" H11 ": v\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("non-tchar in name", "GET /" H11 "X(Y): v\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("obs-fold SP", "GET /" H11 "X: a\r\n b\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("obs-fold HTAB", "GET /" H11 "X: a\r\n\tb\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("space before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
               HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("control char in value", "GET /" H11 "X: a\x01z\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("DEL in value", "GET /" H11 "X: a\x7fz\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("NUL in value", "GET /" H11 "X: a\0z\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("bare CR in value", "GET /" H11 "X: a\rz\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("CR CR LF ends head", "GET /" H11 "\r\r\n", HTTP_PARSE_BAD_REQUEST),
    /* whole-head rules */
    ERROR_CASE("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("two Hosts", "GET /" H11 "host: b\r\n\r\n", HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("two Hosts in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
               HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("TE and CL", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
               HTTP_PARSE_BAD_REQUEST),
    ERROR_CASE("CL and TE", "POST /" H11 "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
               HTTP_PARSE_BAD_REQUEST),
    /* 501 */
    ERROR_CASE("unknown method", "BREW /pot" H11 "\r\n", HTTP_PARSE_NOT_IMPLEMENTED),
    ERROR_CASE("lowercase get", "get /" H11 "\r\n", HTTP_PARSE_NOT_IMPLEMENTED),
    ERROR_CASE("tchar method", "M-SEARCH!~ *" H11 "\r\n", HTTP_PARSE_NOT_IMPLEMENTED),
    ERROR_CASE("Transfer-Encoding", "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n",
               HTTP_PARSE_NOT_IMPLEMENTED),
    ERROR_CASE("Transfer-Encoding list", "POST /" H11 "transfer-encoding: gzip, chunked\r\n\r\n",
               HTTP_PARSE_NOT_IMPLEMENTED),
    /* 505 */
    ERROR_CASE("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_VERSION),
    ERROR_CASE("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", HTTP_PARSE_BAD_VERSION),
    ERROR_CASE("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_VERSION),
    ERROR_CASE("HTTP/3.7", "GET / HTTP/3.7\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_VERSION),
    ERROR_CASE("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_PARSE_BAD_VERSION),
    ERROR_CASE("505 before 501", "BREW / HTTP/9.9\r\n\r\n", HTTP_PARSE_BAD_VERSION),
};

START_TEST(test_error_cases)
{
    const struct error_case *c = &error_cases[_i];
    struct guarded_buf g;
    struct parse_outcome whole;
    struct parse_outcome bytewise;

    guarded_init(&g, GUARD_CAPACITY);
    parse_whole(&g, c->input, c->len, DEFAULT_MAX_HEAD, &whole);
    ck_assert_msg(whole.result == c->expected, "%s: got %d, expected %d", c->name, whole.result,
                  c->expected);
    parse_bytewise(&g, c->input, c->len, DEFAULT_MAX_HEAD, &bytewise);
    ck_assert_msg(bytewise.result == c->expected, "%s (bytewise): got %d, expected %d", c->name,
                  bytewise.result, c->expected);
    guarded_free(&g);
}
END_TEST

/* Bytes no head may contain are refused when they arrive, not when the head ends. */
START_TEST(test_errors_reported_early)
{
    static const struct {
        const char *input;
        size_t len;
    } prefixes[] = {
        {"\x16", 1},                       /* TLS handshake record */
        {"\0", 1},                         /* binary */
        {"GET /\rX", 7},                   /* bare CR */
        {"GET /\0", 6},                    /* NUL */
        {"GET / HTTP/1.1\r\nX: \x1b", 20}, /* ESC in a value */
        {"\r\n\r\n\r\n\r\n\r\n", 10},      /* more leading empty lines than skipped */
    };
    struct guarded_buf g;
    struct http_request req;

    guarded_init(&g, GUARD_CAPACITY);
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        const char *buf = guarded_place(&g, prefixes[i].input, prefixes[i].len);

        ck_assert_msg(http_parse_request(buf, prefixes[i].len, 0, DEFAULT_MAX_HEAD, &req) ==
                          HTTP_PARSE_BAD_REQUEST,
                      "prefix %zu", i);
    }
    guarded_free(&g);
}
END_TEST

/* ---- Connection and Content-Length -------------------------------------------------- */

START_TEST(test_keep_alive_rules)
{
    static const struct {
        const char *input;
        bool keep_alive;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive ,\tClose \r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: ,,\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-Connection: close\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: foo ,  keep-alive \r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false},
    };
    struct guarded_buf g;
    struct parse_outcome o;

    guarded_init(&g, GUARD_CAPACITY);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_valid(&g, cases[i].input, &o);
        ck_assert_msg(o.req.keep_alive == cases[i].keep_alive, "%s", cases[i].input);
    }
    guarded_free(&g);
}
END_TEST

START_TEST(test_content_length_values)
{
    static const struct {
        const char *headers;
        enum http_parse_result result;
        uint64_t value;
    } cases[] = {
        {"Content-Length: 0\r\n", HTTP_PARSE_OK, 0},
        {"Content-Length: 007\r\n", HTTP_PARSE_OK, 7},
        {"Content-Length:  42 \t\r\n", HTTP_PARSE_OK, 42},
        {"content-length: 18446744073709551615\r\n", HTTP_PARSE_OK, UINT64_MAX},
        {"Content-Length: 5\r\nContent-Length: 5\r\n", HTTP_PARSE_OK, 5},
        {"Content-Length: 5\r\nCONTENT-LENGTH: 005\r\n", HTTP_PARSE_OK, 5},
        {"Content-Length: 18446744073709551616\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: 99999999999999999999999\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: 5\r\nContent-Length: 6\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: 5\r\nContent-Length: x\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: -1\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: +1\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: 1 2\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: 5, 5\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: 0x10\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length: 1e3\r\n", HTTP_PARSE_BAD_REQUEST, 0},
        {"Content-Length:\r\n", HTTP_PARSE_BAD_REQUEST, 0},
    };
    struct guarded_buf g;
    struct parse_outcome o;
    char input[256];

    guarded_init(&g, GUARD_CAPACITY);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(input, sizeof(input), "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n", cases[i].headers);
        parse_both_ways(&g, input, strlen(input), DEFAULT_MAX_HEAD, &o);
        ck_assert_msg(o.result == cases[i].result, "%s: got %d", cases[i].headers, o.result);
        if (o.result == HTTP_PARSE_OK) {
            ck_assert_msg(o.req.content_length == cases[i].value, "%s", cases[i].headers);
        }
    }
    guarded_free(&g);
}
END_TEST

/* ---- lookups ------------------------------------------------------------------------ */

START_TEST(test_find_header)
{
    static const char input[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Thing: 1\r\nx-thing: 2\r\n\r\n";
    struct guarded_buf g;
    struct parse_outcome o;
    const struct http_header *h;

    guarded_init(&g, GUARD_CAPACITY);
    parse_valid(&g, input, &o);
    h = http_find_header(&o.req, "HOST");
    ck_assert_ptr_nonnull(h);
    ck_assert_span(h->value, h->value_len, "a");
    h = http_find_header(&o.req, "x-THING");
    ck_assert_ptr_nonnull(h);
    ck_assert_span(h->value, h->value_len, "1"); /* the first one */
    ck_assert_ptr_null(http_find_header(&o.req, "Hos"));
    ck_assert_ptr_null(http_find_header(&o.req, "Hostx"));
    ck_assert_ptr_null(http_find_header(&o.req, ""));
    guarded_free(&g);
}
END_TEST

START_TEST(test_status_reason)
{
    ck_assert_str_eq(http_status_reason(200), "OK");
    ck_assert_str_eq(http_status_reason(400), "Bad Request");
    ck_assert_str_eq(http_status_reason(404), "Not Found");
    ck_assert_str_eq(http_status_reason(405), "Method Not Allowed");
    ck_assert_str_eq(http_status_reason(408), "Request Timeout");
    ck_assert_str_eq(http_status_reason(413), "Content Too Large");
    ck_assert_str_eq(http_status_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_status_reason(500), "Internal Server Error");
    ck_assert_str_eq(http_status_reason(501), "Not Implemented");
    ck_assert_str_eq(http_status_reason(503), "Service Unavailable");
    ck_assert_str_eq(http_status_reason(505), "HTTP Version Not Supported");
    ck_assert_str_eq(http_status_reason(299), "Unknown");
    ck_assert_str_eq(http_status_reason(-1), "Unknown");
}
END_TEST

static Suite *http_parser_suite(void)
{
    Suite *s = suite_create("http_parser");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_guard_page_is_unreadable);
    tcase_add_loop_test(tc, test_valid_bytewise_equals_whole, 0,
                        (int)(sizeof(valid_requests) / sizeof(valid_requests[0])));
    tcase_add_test(tc, test_valid_fields);
    tcase_add_test(tc, test_methods);
    tcase_add_test(tc, test_leading_empty_lines_count_in_head_len);
    tcase_add_test(tc, test_every_two_chunk_split_equals_whole);
    tcase_add_test(tc, test_prev_len_is_clamped);
    tcase_add_test(tc, test_pipelined_requests);
    tcase_add_test(tc, test_head_exactly_at_limit_is_ok);
    tcase_add_test(tc, test_head_at_limit_followed_by_more_is_ok);
    tcase_add_test(tc, test_head_one_byte_over_limit_is_431);
    tcase_add_test(tc, test_431_reported_before_head_ends);
    tcase_add_test(tc, test_limit_wins_over_bad_bytes_past_it);
    tcase_add_test(tc, test_max_headers_ok_one_more_is_431);
    tcase_add_loop_test(tc, test_error_cases, 0,
                        (int)(sizeof(error_cases) / sizeof(error_cases[0])));
    tcase_add_test(tc, test_errors_reported_early);
    tcase_add_test(tc, test_keep_alive_rules);
    tcase_add_test(tc, test_content_length_values);
    tcase_add_test(tc, test_find_header);
    tcase_add_test(tc, test_status_reason);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_parser_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
