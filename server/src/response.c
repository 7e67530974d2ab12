/* response: routes and the byte producer for responses. */
#include "response.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PATTERN_SPAN       (256 * 1024)
#define MAX_GENERATED_BODY (1ull << 40)

/* Read-only after its first use; every body is a series of slices of it. */
static const char *body_pattern(void)
{
    static char pattern[PATTERN_SPAN + 26];
    static int filled;
    if (!filled) {
        for (size_t i = 0; i < sizeof(pattern); i++)
            pattern[i] = (char)('a' + i % 26);
        filled = 1;
    }
    return pattern;
}

void response_format_date(char *buf, size_t len, long long unix_seconds)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Append to the head; a response head is built from fixed strings and numbers and always
 * fits, but a truncated one is never sent half-formatted: it is simply not extended. */
__attribute__((format(printf, 2, 3))) static void head_printf(struct response *resp,
                                                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = RESPONSE_HEAD_MAX - resp->head_len;
    int n = vsnprintf(resp->head + resp->head_len, room, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < room)
        resp->head_len = (uint16_t)(resp->head_len + n);
}

static void response_reset(struct response *resp, int status)
{
    resp->head_len = resp->head_sent = 0;
    resp->body_left = resp->body_pos = resp->chunk_left = 0;
    resp->chunked = resp->last_chunk_queued = false;
    resp->close_after = false;
    resp->status = status;
}

/* Status line and the headers every response carries. */
static void response_start(struct response *resp, int status, const char *date,
                           const char *content_type)
{
    response_reset(resp, status);
    head_printf(resp, "HTTP/1.1 %d %s\r\nServer: connfault\r\nDate: %s\r\nContent-Type: %s\r\n",
                status, http_status_reason(status), date, content_type);
}

static void response_end_head(struct response *resp, bool keep_alive_10)
{
    if (resp->close_after)
        head_printf(resp, "Connection: close\r\n");
    else if (keep_alive_10)
        head_printf(resp, "Connection: keep-alive\r\n");
    head_printf(resp, "\r\n");
}

/* Queue the framing that follows a finished chunk: its CRLF, then the next size line or
 * the last chunk. */
static void response_next_chunk(struct response *resp, bool first)
{
    if (!first)
        head_printf(resp, "\r\n");
    if (resp->body_left > 0) {
        resp->chunk_left =
            resp->body_left < RESPONSE_CHUNK_BYTES ? resp->body_left : RESPONSE_CHUNK_BYTES;
        head_printf(resp, "%llx\r\n", (unsigned long long)resp->chunk_left);
    } else {
        head_printf(resp, "0\r\n\r\n");
        resp->last_chunk_queued = true;
    }
}

void response_error(struct response *resp, int status, const char *date)
{
    response_start(resp, status, date, "text/plain");
    const char *reason = http_status_reason(status);
    head_printf(resp, "Content-Length: %zu\r\n", strlen(reason) + 5);
    resp->close_after = true;
    response_end_head(resp, false);
    head_printf(resp, "%d %s\n", status, reason);
}

/* "/bytes/123" -> 123 when path starts with prefix and the rest is digits. */
static int parse_size_path(const char *path, size_t len, const char *prefix, uint64_t *size)
{
    size_t plen = strlen(prefix);
    if (len <= plen || memcmp(path, prefix, plen) != 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = plen; i < len; i++) {
        if (path[i] < '0' || path[i] > '9' || v > MAX_GENERATED_BODY / 10)
            return -1;
        v = v * 10 + (uint64_t)(path[i] - '0');
    }
    if (v > MAX_GENERATED_BODY)
        return -1;
    *size = v;
    return 0;
}

static bool path_is(const char *path, size_t len, const char *literal)
{
    return len == strlen(literal) && memcmp(path, literal, len) == 0;
}

void response_for_request(struct response *resp, const struct http_request *req, const char *date,
                          bool force_close)
{
    if (req->method == HTTP_METHOD_OTHER) {
        response_start(resp, 405, date, "text/plain");
        head_printf(resp, "Allow: GET, HEAD\r\nContent-Length: 23\r\n");
        resp->close_after = force_close || !req->keep_alive;
        response_end_head(resp, req->keep_alive && req->minor_version == 0);
        head_printf(resp, "405 Method Not Allowed\n");
        return;
    }

    const char *path = req->target;
    size_t len = req->target_len;
    const char *query = memchr(path, '?', len);
    if (query)
        len = (size_t)(query - path);

    uint64_t size = 0;
    bool chunked = false;
    const char *type = "application/octet-stream";
    const char *small = NULL;
    if (path_is(path, len, "/")) {
        small = RESPONSE_SMALL_BODY;
        type = "text/plain";
    } else if (path_is(path, len, "/big.bin")) {
        size = 1u << 20;
    } else if (path_is(path, len, "/huge.bin")) {
        size = 16u << 20;
    } else if (parse_size_path(path, len, "/bytes/", &size) == 0) {
    } else if (parse_size_path(path, len, "/chunked/", &size) == 0) {
        chunked = req->minor_version >= 1; /* HTTP/1.0 knows no chunking: Content-Length */
    } else {
        response_start(resp, 404, date, "text/plain");
        head_printf(resp, "Content-Length: 14\r\n");
        resp->close_after = force_close || !req->keep_alive;
        response_end_head(resp, req->keep_alive && req->minor_version == 0);
        head_printf(resp, "404 Not Found\n");
        return;
    }

    response_start(resp, 200, date, type);
    bool head_only = req->method == HTTP_METHOD_HEAD;
    if (chunked)
        head_printf(resp, "Transfer-Encoding: chunked\r\n");
    else
        head_printf(resp, "Content-Length: %llu\r\n",
                    (unsigned long long)(small ? strlen(small) : size));
    resp->close_after = force_close || !req->keep_alive;
    response_end_head(resp, req->keep_alive && req->minor_version == 0);
    if (head_only)
        return;
    if (small) {
        head_printf(resp, "%s", small);
        return;
    }
    resp->body_left = size;
    resp->chunked = chunked;
    if (chunked)
        response_next_chunk(resp, true);
    else
        resp->chunk_left = size;
}

int response_iov(const struct response *resp, struct iovec iov[2])
{
    int n = 0;
    if (resp->head_sent < resp->head_len) {
        iov[n].iov_base = (char *)resp->head + resp->head_sent;
        iov[n].iov_len = (size_t)(resp->head_len - resp->head_sent);
        n++;
    }
    if (resp->chunk_left > 0) {
        iov[n].iov_base = (char *)body_pattern() + resp->body_pos % 26;
        iov[n].iov_len = resp->chunk_left < PATTERN_SPAN ? (size_t)resp->chunk_left : PATTERN_SPAN;
        n++;
    }
    return n;
}

void response_advance(struct response *resp, size_t n)
{
    size_t head_part = (size_t)(resp->head_len - resp->head_sent);
    if (head_part > n)
        head_part = n;
    resp->head_sent = (uint16_t)(resp->head_sent + head_part);
    n -= head_part;
    resp->chunk_left -= n;
    resp->body_left -= n;
    resp->body_pos += n;
    if (resp->head_sent == resp->head_len && resp->chunk_left == 0 && resp->chunked &&
        !resp->last_chunk_queued) {
        resp->head_len = resp->head_sent = 0;
        response_next_chunk(resp, false);
    }
}

