/* http_response: an incremental, allocation-free HTTP/1.x response framer.
 *
 * It only finds where a response ends (status line, headers, body by HEAD / 1xx / 204 / 304,
 * Content-Length, chunked with trailers, or until the connection closes); it keeps no body.
 * Feed it bytes in pieces of any size, down to one byte at a time. Used by the fault clients
 * of the engine (to count responses) and by the probes (to validate one response).
 */
#ifndef CONNFAULT_HTTP_RESPONSE_H
#define CONNFAULT_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest header line kept for inspection; longer lines are still framed, only truncated. */
#define HTTP_RESPONSE_LINE_MAX 256
/* A response head larger than this is treated as garbage, so a client never reads forever. */
#define HTTP_RESPONSE_HEAD_MAX (64 * 1024)

enum http_response_step {
    HTTP_STEP_STATUS_LINE,
    HTTP_STEP_HEADERS,
    HTTP_STEP_BODY,       /* Content-Length body */
    HTTP_STEP_CHUNK_SIZE, /* chunk-size line, extensions included */
    HTTP_STEP_CHUNK_DATA,
    HTTP_STEP_CHUNK_DATA_END, /* the CRLF after a chunk's data */
    HTTP_STEP_TRAILERS,
    HTTP_STEP_UNTIL_EOF, /* no length given: the body ends when the server closes */
    HTTP_STEP_DONE,
    HTTP_STEP_INVALID,
};

enum http_response_status {
    HTTP_RESPONSE_INCOMPLETE, /* every byte consumed, the response goes on */
    HTTP_RESPONSE_COMPLETE,   /* a whole response ends after *consumed bytes */
    HTTP_RESPONSE_INVALID,    /* not an HTTP response; see error */
};

struct http_response {
    enum http_response_step step;
    bool head_request;          /* answers a HEAD: never a body */
    int status;                 /* 0 until the status line is read */
    char reason[64];            /* reason phrase, C-escaped, cut short with "..." */
    bool chunked;               /* final transfer coding is chunked */
    bool has_transfer_encoding; /* any Transfer-Encoding overrides Content-Length */
    bool has_content_length;
    uint64_t content_length;
    uint64_t body_bytes; /* payload bytes seen so far (chunk data for chunked) */
    uint64_t chunk_left;
    bool chunk_size_digits, chunk_size_ext;
    uint64_t head_bytes;  /* bytes of status line and headers */
    uint64_t total_bytes; /* every byte consumed for this response */
    const char *error;    /* static text, set with HTTP_STEP_INVALID */
    size_t line_len;      /* bytes kept in line (the line may be longer) */
    char line[HTTP_RESPONSE_LINE_MAX];
};

void http_response_init(struct http_response *r, bool head_request);

/* Consume bytes of the response. Stops right after the last byte of a complete response
 * (the rest belongs to the next, pipelined one: call http_response_init() and feed it). */
enum http_response_status http_response_feed(struct http_response *r, const char *data, size_t len,
                                             size_t *consumed);

/* The connection closed: COMPLETE if the body was close-delimited, else INCOMPLETE
 * (truncated), or INVALID if it already was. */
enum http_response_status http_response_finish(struct http_response *r);

/* Where the framer is, for messages: "the status line", "the headers", "the body", ... */
const char *http_response_step_name(const struct http_response *r);

/* True when the request bytes begin with "HEAD " (its responses carry no body). */
bool http_request_is_head(const char *request, size_t len);

/* True when the bytes look like an HTTP/1.x request: a method token of capital letters, a
 * space, and " HTTP/1." somewhere after it. Other requests are read until EOF. */
bool http_request_is_http(const char *request, size_t len);

#endif
