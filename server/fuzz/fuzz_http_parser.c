/* libFuzzer target for http_parser.
 *
 * For each input and for two head limits (the server default, and a small one derived from
 * the input so the 431 paths get exercised), it checks that:
 *   - an OK result describes a head inside the buffer and within the limit, every
 *     pointer lies inside that head, and http_find_header finds each header by its name;
 *   - INCOMPLETE is only returned while the input still fits in the limit;
 *   - feeding the input in three chunks at data-derived offsets (each prefix in its own
 *     exactly-sized heap copy, so ASan catches a read past it), and byte by byte for short
 *     inputs, gives the same result and the same request as parsing it whole;
 *   - an OK head parsed on its own gives the same request, and one byte less of it is
 *     INCOMPLETE.
 *
 * Build and run: see README.md next to this file.
 */
#include "http_parser.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_DEFAULT_MAX_HEAD 8192
#define FUZZ_BYTEWISE_MAX_LEN 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() vanishes under NDEBUG; a fuzz invariant must not. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct fuzz_outcome {
    enum http_parse_result result;
    const char *buf;
    struct http_request req;
};

static void fuzz_check_span(const char *p, size_t n, const char *buf, size_t head_len)
{
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(p >= buf && n <= head_len && (size_t)(p - buf) <= head_len - n);
}

/* Looking up each header's own name finds that header or an earlier one of the same name. */
static void fuzz_check_find_header(const struct http_request *r)
{
    char name[64];

    for (size_t i = 0; i < r->num_headers; i++) {
        const struct http_header *found;

        if (r->headers[i].name_len >= sizeof(name)) {
            continue;
        }
        memcpy(name, r->headers[i].name, r->headers[i].name_len);
        name[r->headers[i].name_len] = '\0';
        found = http_find_header(r, name);
        FUZZ_CHECK(found >= r->headers && found <= &r->headers[i]);
        FUZZ_CHECK(found->name_len == r->headers[i].name_len);
    }
}

static void fuzz_check_ok(const struct fuzz_outcome *o, size_t len, size_t max_head)
{
    const struct http_request *r = &o->req;

    FUZZ_CHECK(r->head_len > 0 && r->head_len <= len && r->head_len <= max_head);
    FUZZ_CHECK(r->method == HTTP_METHOD_GET || r->method == HTTP_METHOD_HEAD ||
               r->method == HTTP_METHOD_OTHER);
    FUZZ_CHECK(r->minor_version == 0 || r->minor_version == 1);
    FUZZ_CHECK(r->num_headers <= HTTP_MAX_HEADERS);
    fuzz_check_span(r->method_str, r->method_len, o->buf, r->head_len);
    fuzz_check_span(r->target, r->target_len, o->buf, r->head_len);
    FUZZ_CHECK(r->method_len > 0 && r->target_len > 0);
    for (size_t i = 0; i < r->num_headers; i++) {
        fuzz_check_span(r->headers[i].name, r->headers[i].name_len, o->buf, r->head_len);
        fuzz_check_span(r->headers[i].value, r->headers[i].value_len, o->buf, r->head_len);
    }
    fuzz_check_find_header(r);
}

static void fuzz_check_span_same(const char *pa, size_t na, const char *bufa, const char *pb,
                                 size_t nb, const char *bufb)
{
    FUZZ_CHECK(na == nb && pa - bufa == pb - bufb);
}

static void fuzz_check_same(const struct fuzz_outcome *a, const struct fuzz_outcome *b)
{
    FUZZ_CHECK(a->result == b->result);
    if (a->result != HTTP_PARSE_OK) {
        return;
    }
    FUZZ_CHECK(a->req.method == b->req.method);
    FUZZ_CHECK(a->req.minor_version == b->req.minor_version);
    FUZZ_CHECK(a->req.head_len == b->req.head_len);
    FUZZ_CHECK(a->req.keep_alive == b->req.keep_alive);
    FUZZ_CHECK(a->req.content_length == b->req.content_length);
    FUZZ_CHECK(a->req.num_headers == b->req.num_headers);
    fuzz_check_span_same(a->req.method_str, a->req.method_len, a->buf, b->req.method_str,
                         b->req.method_len, b->buf);
    fuzz_check_span_same(a->req.target, a->req.target_len, a->buf, b->req.target, b->req.target_len,
                         b->buf);
    for (size_t i = 0; i < a->req.num_headers; i++) {
        const struct http_header *ha = &a->req.headers[i];
        const struct http_header *hb = &b->req.headers[i];

        fuzz_check_span_same(ha->name, ha->name_len, a->buf, hb->name, hb->name_len, b->buf);
        fuzz_check_span_same(ha->value, ha->value_len, a->buf, hb->value, hb->value_len, b->buf);
    }
}

/* Parses data[0..len) from an exactly-sized heap copy, so any over-read trips ASan. */
static enum http_parse_result fuzz_parse_copy(const uint8_t *data, size_t len, size_t prev_len,
                                              size_t max_head, struct fuzz_outcome *out,
                                              char **copy)
{
    free(*copy);
    *copy = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(*copy != NULL);
    memcpy(*copy, data, len);
    out->buf = *copy;
    out->result = http_parse_request(out->buf, len, prev_len, max_head, &out->req);
    return out->result;
}

/* Three calls at data-derived lengths cut1 <= cut2 <= size, stopping at the first
 * result that is not INCOMPLETE, as a server would. */
static void fuzz_check_chunked(const uint8_t *data, size_t size, size_t max_head,
                               const struct fuzz_outcome *whole)
{
    size_t seed = size > 0 ? (size_t)data[size - 1] * 131 + data[size / 2] : 0;
    size_t cut1 = size > 0 ? seed % (size + 1) : 0;
    size_t cut2 = cut1 + (size > cut1 ? (seed / 7) % (size - cut1 + 1) : 0);
    size_t cuts[3] = {cut1, cut2, size};
    struct fuzz_outcome part = {.result = HTTP_PARSE_INCOMPLETE};
    char *copy = NULL;
    size_t prev = 0;

    for (size_t i = 0; i < 3 && part.result == HTTP_PARSE_INCOMPLETE; i++) {
        fuzz_parse_copy(data, cuts[i], prev, max_head, &part, &copy);
        prev = cuts[i];
    }
    fuzz_check_same(whole, &part);
    free(copy);
}

/* One byte more per call on the libFuzzer buffer itself (no copies: kept cheap). */
static void fuzz_check_bytewise(const uint8_t *data, size_t size, size_t max_head,
                                const struct fuzz_outcome *whole)
{
    struct fuzz_outcome part = {.result = HTTP_PARSE_INCOMPLETE, .buf = (const char *)data};

    for (size_t n = 1; n <= size && part.result == HTTP_PARSE_INCOMPLETE; n++) {
        part.result = http_parse_request(part.buf, n, n - 1, max_head, &part.req);
    }
    fuzz_check_same(whole, &part);
}

/* The head alone parses to the same request; without its last byte it is incomplete. */
static void fuzz_check_head_alone(const uint8_t *data, size_t max_head,
                                  const struct fuzz_outcome *whole)
{
    struct fuzz_outcome alone;
    char *copy = NULL;
    size_t head_len = whole->req.head_len;

    fuzz_parse_copy(data, head_len, 0, max_head, &alone, &copy);
    fuzz_check_same(whole, &alone);
    FUZZ_CHECK(fuzz_parse_copy(data, head_len - 1, 0, max_head, &alone, &copy) ==
               HTTP_PARSE_INCOMPLETE);
    free(copy);
}

static void fuzz_one_limit(const uint8_t *data, size_t size, size_t max_head)
{
    struct fuzz_outcome whole;
    char *copy = NULL;

    switch (fuzz_parse_copy(data, size, 0, max_head, &whole, &copy)) {
    case HTTP_PARSE_OK:
        fuzz_check_ok(&whole, size, max_head);
        fuzz_check_head_alone(data, max_head, &whole);
        break;
    case HTTP_PARSE_INCOMPLETE:
        FUZZ_CHECK(size <= max_head);
        break;
    case HTTP_PARSE_BAD_REQUEST:
    case HTTP_PARSE_TOO_LARGE:
    case HTTP_PARSE_NOT_IMPLEMENTED:
    case HTTP_PARSE_BAD_VERSION:
        break;
    default:
        FUZZ_CHECK(!"unknown result");
    }
    fuzz_check_chunked(data, size, max_head, &whole);
    if (size <= FUZZ_BYTEWISE_MAX_LEN) {
        fuzz_check_bytewise(data, size, max_head, &whole);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A limit somewhere inside the input, so "ends exactly at / just past the limit"
     * cases come up often. */
    size_t small_limit = size > 0 ? ((size_t)data[0] * 3 + size) % (size + 2) : 0;

    fuzz_one_limit(data, size, FUZZ_DEFAULT_MAX_HEAD);
    fuzz_one_limit(data, size, small_limit);
    if (size > 0) {
        (void)http_status_reason(data[0] * 3);
    }
    return 0;
}
