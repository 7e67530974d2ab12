/* http_parser: a small, allocation-free, incremental HTTP/1.x request parser.
 *
 * The caller keeps the bytes received so far in its own buffer and calls
 * http_parse_request() again after every read, passing how many of those bytes were
 * already looked at (prev_len) so the search for the end of the header block resumes
 * where it stopped: byte-by-byte input costs O(n), not O(n^2).
 *
 * The result says "complete", "incomplete: read more", or which error status to answer.
 * Every pointer in struct http_request points into the caller's buffer; nothing is copied.
 */
#ifndef CONNFAULT_HTTP_PARSER_H
#define CONNFAULT_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

enum http_parse_result {
    HTTP_PARSE_INCOMPLETE = -1,       /* need more bytes; nothing wrong so far */
    HTTP_PARSE_OK = 0,                /* a whole request head was parsed */
    HTTP_PARSE_BAD_REQUEST = 400,     /* malformed */
    HTTP_PARSE_TOO_LARGE = 431,       /* head longer than the limit, or too many headers */
    HTTP_PARSE_NOT_IMPLEMENTED = 501, /* Transfer-Encoding on a request, unknown method token */
    HTTP_PARSE_BAD_VERSION = 505,     /* HTTP/2.0, HTTP/3.7 ... (HTTP/1.0 and 1.1 are served) */
};

enum http_method {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_OTHER, /* a registered method we do not serve (POST, PUT, ...): answer 405 */
};

struct http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing blanks removed */
    size_t value_len;
};

struct http_request {
    enum http_method method;
    const char *method_str;
    size_t method_len;
    const char *target; /* request-target as sent, e.g. "/bytes/10?x=1" */
    size_t target_len;
    int minor_version; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    size_t head_len;         /* bytes of the head, up to and including the blank line */
    bool keep_alive;         /* after Connection: close / keep-alive and the version default */
    uint64_t content_length; /* body bytes that follow the head (0 if none) */
};

/* Parse the request head at buf[0..len). prev_len: how many bytes of buf an earlier call
 * already saw (0 on the first call). max_head_len: limit on the head, in bytes; a head that
 * cannot end within it is HTTP_PARSE_TOO_LARGE as soon as that is known.
 * On HTTP_PARSE_OK, *req is filled and req->head_len tells where the body/next request starts.
 * On any other result *req is unspecified. Never reads outside buf[0..len). */
enum http_parse_result http_parse_request(const char *buf, size_t len, size_t prev_len,
                                          size_t max_head_len, struct http_request *req);

/* Case-insensitive lookup of a header by name; NULL if absent. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

/* Reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know. */
const char *http_status_reason(int status);

#endif
