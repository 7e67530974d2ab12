/* http_parser: an allocation-free, incremental HTTP/1.x request head parser.
 *
 * How a call works (see http_parser.h for the contract):
 *   1. Skip a few empty lines before the request line (RFC 9112 2.2).
 *   2. Look at the first byte of the request line: binary garbage (a TLS ClientHello, say)
 *      is refused at once instead of after max_head_len bytes or a timeout.
 *   3. Scan for the blank line that ends the head, resuming near prev_len so that feeding
 *      one byte at a time costs O(n) in total. The scan also refuses bytes no head may
 *      contain (control characters, a CR not followed by LF) as soon as they arrive.
 *   4. Only once the whole head is present, parse it line by line, then apply the rules
 *      that need every header (Host, Content-Length, Transfer-Encoding, Connection).
 *
 * Only the first max_head_len bytes are ever examined. That, and deciding everything else
 * only on a complete head, makes the result independent of how the bytes were split
 * across calls: the fuzz target checks exactly that.
 *
 * Errors are reported in the order they are found reading the head from its start: the
 * request line (400, then 505 for the version, then 501 for the method), each header line
 * (400, or 431 on header number HTTP_MAX_HEADERS + 1), then the whole-head rules.
 */
#include "http_parser.h"

#include <string.h>

/* RFC 9112 2.2 asks servers to ignore at least one empty line before a request line (old
 * clients send a CRLF after a POST body). A small fixed cap keeps the skip O(1) per call;
 * a client sending more than this is refused with 400. */
#define HTTP_MAX_LEADING_EMPTY_LINES 4

/* The longest terminator, "\n\r\n", looks this many bytes past its first byte. */
#define HTTP_TERMINATOR_LOOKAHEAD 3

/* tchar from RFC 9110 5.6.2: the bytes of a method or a header name. */
static bool http_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool http_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool http_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char http_ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ASCII only on purpose: the result must not depend on the process locale. */
static bool http_token_equals(const char *s, size_t len, const char *lower_literal)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (lower_literal[i] == '\0' || http_ascii_lower(s[i]) != lower_literal[i]) {
            return false;
        }
    }
    return lower_literal[i] == '\0';
}

/* Offset of the first byte after up to HTTP_MAX_LEADING_EMPTY_LINES empty lines. */
static size_t http_skip_empty_lines(const char *buf, size_t len, size_t *lines_skipped)
{
    size_t pos = 0;
    size_t lines = 0;

    while (lines < HTTP_MAX_LEADING_EMPTY_LINES && pos < len) {
        if (buf[pos] == '\n') {
            pos += 1;
        } else if (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n') {
            pos += 2;
        } else {
            break;
        }
        lines++;
    }
    *lines_skipped = lines;
    return pos;
}

/* Can buf[start] begin a request line? A lone CR as the last byte may still become the
 * CRLF of a skipped empty line, so it gets the benefit of the doubt. */
static bool http_request_start_plausible(const char *buf, size_t len, size_t start,
                                         size_t lines_skipped)
{
    unsigned char c = (unsigned char)buf[start];

    if (http_is_tchar(c)) {
        return true;
    }
    return c == '\r' && start + 1 == len && lines_skipped < HTTP_MAX_LEADING_EMPTY_LINES;
}

/* Scans buf[from..limit) for the empty line that ends the head. On HTTP_PARSE_OK,
 * *head_len is the offset just past it. A byte is judged only when the bytes it needs to
 * be judged are below limit, so a later call with more bytes reaches the same verdict. */
static enum http_parse_result http_find_head_end(const char *buf, size_t limit, size_t from,
                                                 size_t *head_len)
{
    for (size_t i = from; i < limit; i++) {
        unsigned char c = (unsigned char)buf[i];

        if (c == '\n') {
            if (i + 1 < limit && buf[i + 1] == '\n') {
                *head_len = i + 2;
                return HTTP_PARSE_OK;
            }
            if (i + 2 < limit && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
                *head_len = i + 3;
                return HTTP_PARSE_OK;
            }
        } else if (c == '\r') {
            if (i + 1 < limit && buf[i + 1] != '\n') {
                return HTTP_PARSE_BAD_REQUEST; /* bare CR */
            }
        } else if (c != '\t' && http_is_ctl(c)) {
            return HTTP_PARSE_BAD_REQUEST;
        }
    }
    return HTTP_PARSE_INCOMPLETE;
}

struct http_line_reader {
    const char *pos;
    const char *end;
};

/* The next line without its CRLF or LF; false when no LF is left. */
static bool http_next_line(struct http_line_reader *reader, const char **line, size_t *line_len)
{
    const char *lf = memchr(reader->pos, '\n', (size_t)(reader->end - reader->pos));
    size_t n;

    if (lf == NULL) {
        return false;
    }
    n = (size_t)(lf - reader->pos);
    if (n > 0 && lf[-1] == '\r') {
        n--;
    }
    *line = reader->pos;
    *line_len = n;
    reader->pos = lf + 1;
    return true;
}

/* "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3). */
static enum http_parse_result http_parse_version(const char *v, size_t len, int *minor_version)
{
    if (len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9') {
        return HTTP_PARSE_BAD_REQUEST;
    }
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
        return HTTP_PARSE_BAD_VERSION;
    }
    *minor_version = v[7] - '0';
    return HTTP_PARSE_OK;
}

/* origin-form ("/path?query") or asterisk-form ("*"); no CTL or SP anywhere. */
static bool http_target_valid(const char *target, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (http_is_ctl((unsigned char)target[i])) {
            return false;
        }
    }
    return target[0] == '/' || (len == 1 && target[0] == '*');
}

/* Method names are case-sensitive (RFC 9110 9.1): "get" is an unknown method. */
static enum http_parse_result http_classify_method(const char *m, size_t len,
                                                   enum http_method *method)
{
    static const char *const registered[] = {"POST",  "PUT",   "DELETE", "OPTIONS",
                                             "PATCH", "TRACE", "CONNECT"};

    if (len == 3 && memcmp(m, "GET", 3) == 0) {
        *method = HTTP_METHOD_GET;
        return HTTP_PARSE_OK;
    }
    if (len == 4 && memcmp(m, "HEAD", 4) == 0) {
        *method = HTTP_METHOD_HEAD;
        return HTTP_PARSE_OK;
    }
    for (size_t i = 0; i < sizeof(registered) / sizeof(registered[0]); i++) {
        if (strlen(registered[i]) == len && memcmp(m, registered[i], len) == 0) {
            *method = HTTP_METHOD_OTHER;
            return HTTP_PARSE_OK;
        }
    }
    return HTTP_PARSE_NOT_IMPLEMENTED;
}

/* method SP request-target SP HTTP-version, with exactly one SP between the parts. */
static enum http_parse_result http_parse_request_line(const char *line, size_t len,
                                                      struct http_request *req)
{
    size_t pos = 0;
    size_t target_start;
    enum http_parse_result result;

    while (pos < len && http_is_tchar((unsigned char)line[pos])) {
        pos++;
    }
    if (pos == 0 || pos == len || line[pos] != ' ') {
        return HTTP_PARSE_BAD_REQUEST;
    }
    req->method_str = line;
    req->method_len = pos;

    target_start = ++pos;
    while (pos < len && line[pos] != ' ') {
        pos++;
    }
    if (pos == target_start || pos == len ||
        !http_target_valid(line + target_start, pos - target_start)) {
        return HTTP_PARSE_BAD_REQUEST;
    }
    req->target = line + target_start;
    req->target_len = pos - target_start;

    pos++;
    result = http_parse_version(line + pos, len - pos, &req->minor_version);
    if (result != HTTP_PARSE_OK) {
        return result;
    }
    return http_classify_method(req->method_str, req->method_len, &req->method);
}

/* field-name ":" OWS field-value OWS. No whitespace before the colon (RFC 9112 5.1) and
 * no obsolete line folding (RFC 9112 5.2): both have been used for request smuggling. */
static enum http_parse_result http_parse_header_line(const char *line, size_t len,
                                                     struct http_header *header)
{
    size_t pos = 0;
    const char *value;
    const char *value_end = line + len;

    if (http_is_blank(line[0])) {
        return HTTP_PARSE_BAD_REQUEST; /* obs-fold */
    }
    while (pos < len && http_is_tchar((unsigned char)line[pos])) {
        pos++;
    }
    if (pos == 0 || pos == len || line[pos] != ':') {
        return HTTP_PARSE_BAD_REQUEST;
    }
    value = line + pos + 1;
    while (value < value_end && http_is_blank(*value)) {
        value++;
    }
    while (value_end > value && http_is_blank(value_end[-1])) {
        value_end--;
    }
    /* http_find_head_end refused these already, unless a caller overstated prev_len; the
     * check is cheap and keeps this function correct on its own. */
    for (const char *p = value; p < value_end; p++) {
        if (*p != '\t' && http_is_ctl((unsigned char)*p)) {
            return HTTP_PARSE_BAD_REQUEST;
        }
    }
    header->name = line;
    header->name_len = pos;
    header->value = value;
    header->value_len = (size_t)(value_end - value);
    return HTTP_PARSE_OK;
}

/* Request line, then header lines up to the empty line that ends the head. */
static enum http_parse_result http_parse_lines(const char *head, size_t len,
                                               struct http_request *req)
{
    struct http_line_reader reader = {head, head + len};
    const char *line;
    size_t line_len;
    enum http_parse_result result;

    /* The head was found to end with an empty line, so no http_next_line() below fails
     * unless there is a bug; they are checked rather than trusted. */
    if (!http_next_line(&reader, &line, &line_len)) {
        return HTTP_PARSE_BAD_REQUEST;
    }
    result = http_parse_request_line(line, line_len, req);
    if (result != HTTP_PARSE_OK) {
        return result;
    }
    req->num_headers = 0;
    for (;;) {
        if (!http_next_line(&reader, &line, &line_len)) {
            return HTTP_PARSE_BAD_REQUEST;
        }
        if (line_len == 0) {
            return HTTP_PARSE_OK;
        }
        if (req->num_headers == HTTP_MAX_HEADERS) {
            return HTTP_PARSE_TOO_LARGE;
        }
        result = http_parse_header_line(line, line_len, &req->headers[req->num_headers]);
        if (result != HTTP_PARSE_OK) {
            return result;
        }
        req->num_headers++;
    }
}

/* 1*DIGIT that fits in a uint64_t; no sign, no blanks, no list ("5, 5"). */
static bool http_parse_content_length(const char *s, size_t len, uint64_t *value)
{
    uint64_t v = 0;

    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned digit = (unsigned)(s[i] - '0');

        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - digit) / 10) {
            return false;
        }
        v = v * 10 + digit;
    }
    *value = v;
    return true;
}

/* Connection is a comma-separated list of case-insensitive tokens (RFC 9110 7.6.1). */
static void http_scan_connection(const char *v, size_t len, bool *has_close, bool *has_keep_alive)
{
    size_t pos = 0;

    while (pos < len) {
        size_t start = pos;
        size_t end;

        while (pos < len && v[pos] != ',') {
            pos++;
        }
        end = pos;
        while (start < end && http_is_blank(v[start])) {
            start++;
        }
        while (end > start && http_is_blank(v[end - 1])) {
            end--;
        }
        if (http_token_equals(v + start, end - start, "close")) {
            *has_close = true;
        } else if (http_token_equals(v + start, end - start, "keep-alive")) {
            *has_keep_alive = true;
        }
        pos++; /* past the comma */
    }
}

/* What the headers say about framing and the connection, gathered in one pass. */
struct http_head_facts {
    size_t host_count;
    bool has_content_length;
    bool has_transfer_encoding;
    bool has_close;
    bool has_keep_alive;
    uint64_t content_length;
};

static enum http_parse_result http_gather_facts(const struct http_request *req,
                                                struct http_head_facts *facts)
{
    memset(facts, 0, sizeof(*facts));
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        uint64_t length;

        if (http_token_equals(h->name, h->name_len, "host")) {
            facts->host_count++;
        } else if (http_token_equals(h->name, h->name_len, "content-length")) {
            /* Disagreeing lengths are a classic request smuggling vector (RFC 9112 6.3). */
            if (!http_parse_content_length(h->value, h->value_len, &length) ||
                (facts->has_content_length && length != facts->content_length)) {
                return HTTP_PARSE_BAD_REQUEST;
            }
            facts->has_content_length = true;
            facts->content_length = length;
        } else if (http_token_equals(h->name, h->name_len, "transfer-encoding")) {
            facts->has_transfer_encoding = true;
        } else if (http_token_equals(h->name, h->name_len, "connection")) {
            http_scan_connection(h->value, h->value_len, &facts->has_close, &facts->has_keep_alive);
        }
    }
    return HTTP_PARSE_OK;
}

static enum http_parse_result http_apply_header_rules(struct http_request *req)
{
    struct http_head_facts facts;
    enum http_parse_result result = http_gather_facts(req, &facts);

    if (result != HTTP_PARSE_OK) {
        return result;
    }
    /* RFC 9112 3.2: HTTP/1.1 requires exactly one Host; nobody may send two. */
    if (facts.host_count > 1 || (facts.host_count == 0 && req->minor_version == 1)) {
        return HTTP_PARSE_BAD_REQUEST;
    }
    if (facts.has_transfer_encoding) {
        /* Both at once is refused outright (RFC 9112 6.1); TE alone is a body we do not
         * accept. */
        return facts.has_content_length ? HTTP_PARSE_BAD_REQUEST : HTTP_PARSE_NOT_IMPLEMENTED;
    }
    req->content_length = facts.content_length;
    if (req->minor_version == 1) {
        req->keep_alive = !facts.has_close;
    } else {
        req->keep_alive = facts.has_keep_alive && !facts.has_close;
    }
    return HTTP_PARSE_OK;
}

enum http_parse_result http_parse_request(const char *buf, size_t len, size_t prev_len,
                                          size_t max_head_len, struct http_request *req)
{
    size_t lines_skipped;
    size_t start = http_skip_empty_lines(buf, len, &lines_skipped);
    size_t limit = len < max_head_len ? len : max_head_len;
    size_t seen = prev_len < limit ? prev_len : limit;
    size_t from = seen > HTTP_TERMINATOR_LOOKAHEAD ? seen - HTTP_TERMINATOR_LOOKAHEAD : 0;
    size_t head_len = 0;
    enum http_parse_result result;

    /* Bytes past max_head_len are never judged: whatever they hold, the answer is 431. */
    if (start < limit && !http_request_start_plausible(buf, len, start, lines_skipped)) {
        return HTTP_PARSE_BAD_REQUEST;
    }
    result = http_find_head_end(buf, limit, from > start ? from : start, &head_len);
    if (result == HTTP_PARSE_INCOMPLETE) {
        return len > max_head_len ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;
    }
    if (result != HTTP_PARSE_OK) {
        return result;
    }
    result = http_parse_lines(buf + start, head_len - start, req);
    if (result != HTTP_PARSE_OK) {
        return result;
    }
    req->head_len = head_len;
    return http_apply_header_rules(req);
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    size_t name_len = strlen(name);

    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];

        if (h->name_len != name_len) {
            continue;
        }
        size_t j = 0;
        while (j < name_len && http_ascii_lower(h->name[j]) == http_ascii_lower(name[j])) {
            j++;
        }
        if (j == name_len) {
            return h;
        }
    }
    return NULL;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
