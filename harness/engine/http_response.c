/* http_response: see http_response.h. A byte-level state machine in the spirit of
 * picohttpparser's chunked decoder: lines (status, headers, trailers) are collected into a
 * small fixed buffer, bodies are only counted. Lenient where servers commonly are (bare LF,
 * empty lines before the status line), strict where framing depends on it (Content-Length,
 * chunk sizes). */
#include "http_response.h"

#include "cf_ascii.h"
#include "cf_escape.h"

#include <string.h>
#include <strings.h>

void http_response_init(struct http_response *r, bool head_request)
{
    memset(r, 0, sizeof(*r));
    r->step = HTTP_STEP_STATUS_LINE;
    r->head_request = head_request;
}

static enum http_response_status http_response_fail(struct http_response *r, const char *why)
{
    r->step = HTTP_STEP_INVALID;
    r->error = why;
    return HTTP_RESPONSE_INVALID;
}

/* "HTTP/1.1 200 OK": version, a space, three digits, then an optional reason phrase. */
static enum http_response_status http_response_status_line(struct http_response *r)
{
    const char *s = r->line;
    size_t n = r->line_len;

    if (n == 0)
        return HTTP_RESPONSE_INCOMPLETE; /* stray empty line before the status line */
    if (n < 12 || memcmp(s, "HTTP/", 5) != 0 || !cf_is_digit(s[5]) || s[6] != '.' ||
        !cf_is_digit(s[7]) || s[8] != ' ')
        return http_response_fail(r, "bad status line");
    if (!cf_is_digit(s[9]) || !cf_is_digit(s[10]) || !cf_is_digit(s[11]) ||
        (n > 12 && s[12] != ' '))
        return http_response_fail(r, "bad status code");
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (n > 13) /* the server's words, for messages: escaped (cf_escape.h) */
        cf_escape(s + 13, n - 13, r->reason, sizeof(r->reason), 0);
    r->step = HTTP_STEP_HEADERS;
    return HTTP_RESPONSE_INCOMPLETE;
}

static bool header_name_is(const char *name, size_t name_len, const char *want)
{
    return name_len == strlen(want) && strncasecmp(name, want, name_len) == 0;
}

static enum http_response_status http_response_content_length(struct http_response *r,
                                                              const char *value, size_t len)
{
    uint64_t n = 0;

    if (len == 0)
        return http_response_fail(r, "empty Content-Length");
    for (size_t i = 0; i < len; i++) {
        if (!cf_is_digit(value[i]) || n > (UINT64_MAX - 9) / 10)
            return http_response_fail(r, "bad Content-Length");
        n = n * 10 + (uint64_t)(value[i] - '0');
    }
    /* Two different lengths make the framing ambiguous (request smuggling territory). */
    if (r->has_content_length && r->content_length != n)
        return http_response_fail(r, "conflicting Content-Length");
    r->has_content_length = true;
    r->content_length = n;
    return HTTP_RESPONSE_INCOMPLETE;
}

/* Only the final transfer coding decides the framing: "gzip, chunked" is chunked. */
static void http_response_transfer_encoding(struct http_response *r, const char *value, size_t len)
{
    const char *last = value;

    for (size_t i = 0; i < len; i++)
        if (value[i] == ',')
            last = value + i + 1;
    len -= (size_t)(last - value);
    while (len > 0 && (*last == ' ' || *last == '\t')) {
        last++;
        len--;
    }
    r->chunked = len == 7 && strncasecmp(last, "chunked", 7) == 0;
}

static enum http_response_status http_response_end_of_head(struct http_response *r)
{
    int s = r->status;

    if (s >= 100 && s < 200 && s != 101) {
        /* Interim response (100 Continue): the real one follows on the same connection. */
        bool head_request = r->head_request;
        uint64_t total = r->total_bytes;
        http_response_init(r, head_request);
        r->total_bytes = total;
        return HTTP_RESPONSE_INCOMPLETE;
    }
    if (r->head_request || s == 101 || s == 204 || s == 304) {
        r->step = HTTP_STEP_DONE;
        return HTTP_RESPONSE_COMPLETE;
    }
    if (r->chunked) {
        r->step = HTTP_STEP_CHUNK_SIZE;
    } else if (r->has_content_length && !r->has_transfer_encoding) {
        r->step = r->content_length == 0 ? HTTP_STEP_DONE : HTTP_STEP_BODY;
    } else {
        r->step = HTTP_STEP_UNTIL_EOF;
    }
    return r->step == HTTP_STEP_DONE ? HTTP_RESPONSE_COMPLETE : HTTP_RESPONSE_INCOMPLETE;
}

static enum http_response_status http_response_header_line(struct http_response *r, bool truncated)
{
    const char *s = r->line;
    const char *colon;
    size_t name_len, value_len;
    const char *value;

    if (r->line_len == 0)
        return http_response_end_of_head(r);
    if (s[0] == ' ' || s[0] == '\t')
        return HTTP_RESPONSE_INCOMPLETE; /* obsolete line folding: nothing we look at */
    colon = memchr(s, ':', r->line_len);
    if (!colon)
        return truncated ? HTTP_RESPONSE_INCOMPLETE : http_response_fail(r, "header without ':'");
    name_len = (size_t)(colon - s);
    value = colon + 1;
    value_len = r->line_len - name_len - 1;
    while (value_len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        value_len--;
    }
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;

    if (header_name_is(s, name_len, "content-length")) {
        if (truncated)
            return http_response_fail(r, "bad Content-Length");
        return http_response_content_length(r, value, value_len);
    }
    if (header_name_is(s, name_len, "transfer-encoding")) {
        /* Any transfer coding overrides Content-Length; a non-chunked one ends at close. */
        r->has_transfer_encoding = true;
        http_response_transfer_encoding(r, value, value_len);
    }
    return HTTP_RESPONSE_INCOMPLETE;
}

/* A whole line (status, header or trailer) is in r->line, without its line ending. */
static enum http_response_status http_response_line(struct http_response *r, bool truncated)
{
    if (r->line_len > 0 && r->line[r->line_len - 1] == '\r')
        r->line_len--;
    switch (r->step) {
    case HTTP_STEP_STATUS_LINE:
        return http_response_status_line(r);
    case HTTP_STEP_HEADERS:
        return http_response_header_line(r, truncated);
    case HTTP_STEP_TRAILERS:
        if (r->line_len > 0)
            return HTTP_RESPONSE_INCOMPLETE; /* a trailer field: ignored */
        r->step = HTTP_STEP_DONE;
        return HTTP_RESPONSE_COMPLETE;
    default:
        return http_response_fail(r, "internal: line in a body step");
    }
}

/* Status line, header or trailer bytes up to and including the next LF. Returns the bytes
 * used; a completed line is processed and its result left in *status. */
static size_t http_response_take_line(struct http_response *r, const char *data, size_t len,
                                      enum http_response_status *status)
{
    const char *lf = memchr(data, '\n', len);
    size_t used = lf ? (size_t)(lf - data) + 1 : len;
    size_t text = lf ? used - 1 : used;
    size_t room = sizeof(r->line) - 1 - r->line_len;
    bool truncated = text > room;

    memcpy(r->line + r->line_len, data, truncated ? room : text);
    r->line_len += truncated ? room : text;
    r->line[r->line_len] = '\0';
    if (r->step != HTTP_STEP_TRAILERS)
        r->head_bytes += used;
    *status = HTTP_RESPONSE_INCOMPLETE;
    if (r->head_bytes > HTTP_RESPONSE_HEAD_MAX) {
        *status = http_response_fail(r, "response head too large");
        return used;
    }
    if (lf) {
        /* A line truncated in this call or an earlier one fills the buffer exactly. */
        truncated = truncated || r->line_len == sizeof(r->line) - 1;
        *status = http_response_line(r, truncated);
        r->line_len = 0;
    }
    return used;
}

/* One byte of a chunk-size line: hex digits, then extensions (";name=value") until LF. */
static enum http_response_status http_response_chunk_size_byte(struct http_response *r, char c)
{
    int v = cf_hex_value(c);

    if (c == '\n') {
        if (!r->chunk_size_digits)
            return http_response_fail(r, "empty chunk size");
        r->step = r->chunk_left == 0 ? HTTP_STEP_TRAILERS : HTTP_STEP_CHUNK_DATA;
        r->chunk_size_digits = false;
        r->chunk_size_ext = false;
    } else if (r->chunk_size_ext) {
        /* extension bytes and the CR before LF: skipped */
    } else if (v >= 0) {
        if (r->chunk_left > (UINT64_MAX >> 4))
            return http_response_fail(r, "chunk size too large");
        r->chunk_left = r->chunk_left * 16 + (uint64_t)v;
        r->chunk_size_digits = true;
    } else if (r->chunk_size_digits && (c == ';' || c == ' ' || c == '\t' || c == '\r')) {
        r->chunk_size_ext = true;
    } else {
        return http_response_fail(r, "bad chunk size");
    }
    return HTTP_RESPONSE_INCOMPLETE;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

enum http_response_status http_response_feed(struct http_response *r, const char *data, size_t len,
                                             size_t *consumed)
{
    enum http_response_status status = HTTP_RESPONSE_INCOMPLETE;
    size_t i = 0;

    if (r->step == HTTP_STEP_DONE || r->step == HTTP_STEP_INVALID) {
        *consumed = 0;
        return r->step == HTTP_STEP_DONE ? HTTP_RESPONSE_COMPLETE : HTTP_RESPONSE_INVALID;
    }
    while (i < len && status == HTTP_RESPONSE_INCOMPLETE) {
        size_t used = 0;

        switch (r->step) {
        case HTTP_STEP_STATUS_LINE:
        case HTTP_STEP_HEADERS:
        case HTTP_STEP_TRAILERS:
            used = http_response_take_line(r, data + i, len - i, &status);
            break;
        case HTTP_STEP_BODY:
            used = (size_t)min_u64(len - i, r->content_length - r->body_bytes);
            r->body_bytes += used;
            if (r->body_bytes == r->content_length) {
                r->step = HTTP_STEP_DONE;
                status = HTTP_RESPONSE_COMPLETE;
            }
            break;
        case HTTP_STEP_CHUNK_SIZE:
            used = 1;
            status = http_response_chunk_size_byte(r, data[i]);
            break;
        case HTTP_STEP_CHUNK_DATA:
            used = (size_t)min_u64(len - i, r->chunk_left);
            r->chunk_left -= used;
            r->body_bytes += used;
            if (r->chunk_left == 0)
                r->step = HTTP_STEP_CHUNK_DATA_END;
            break;
        case HTTP_STEP_CHUNK_DATA_END:
            used = 1;
            if (data[i] == '\n')
                r->step = HTTP_STEP_CHUNK_SIZE;
            else if (data[i] != '\r')
                status = http_response_fail(r, "no CRLF after chunk data");
            break;
        case HTTP_STEP_UNTIL_EOF:
            used = len - i;
            r->body_bytes += used;
            break;
        case HTTP_STEP_DONE:
        case HTTP_STEP_INVALID:
            status = http_response_fail(r, "internal: fed past the end");
            break;
        }
        i += used;
        r->total_bytes += used;
    }
    *consumed = i;
    return status;
}

enum http_response_status http_response_finish(struct http_response *r)
{
    switch (r->step) {
    case HTTP_STEP_UNTIL_EOF:
        r->step = HTTP_STEP_DONE;
        return HTTP_RESPONSE_COMPLETE;
    case HTTP_STEP_DONE:
        return HTTP_RESPONSE_COMPLETE;
    case HTTP_STEP_INVALID:
        return HTTP_RESPONSE_INVALID;
    default:
        return HTTP_RESPONSE_INCOMPLETE;
    }
}

const char *http_response_step_name(const struct http_response *r)
{
    switch (r->step) {
    case HTTP_STEP_STATUS_LINE:
        return "the status line";
    case HTTP_STEP_HEADERS:
        return "the headers";
    case HTTP_STEP_BODY:
    case HTTP_STEP_UNTIL_EOF:
        return "the body";
    case HTTP_STEP_CHUNK_SIZE:
    case HTTP_STEP_CHUNK_DATA:
    case HTTP_STEP_CHUNK_DATA_END:
        return "the chunked body";
    case HTTP_STEP_TRAILERS:
        return "the trailers";
    case HTTP_STEP_DONE:
        return "nothing (complete)";
    case HTTP_STEP_INVALID:
        break;
    }
    return "nothing (invalid)";
}

bool http_request_is_head(const char *request, size_t len)
{
    return len >= 5 && memcmp(request, "HEAD ", 5) == 0;
}

bool http_request_is_http(const char *request, size_t len)
{
    size_t i = 0;

    while (i < len && request[i] >= 'A' && request[i] <= 'Z')
        i++;
    if (i == 0 || i == len || request[i] != ' ')
        return false;
    return memmem(request + i, len - i, " HTTP/1.", 8) != NULL;
}
