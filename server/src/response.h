/* response: what the server answers, and how its bytes are produced.
 *
 * A response is a short head (status line, headers, and any small body or chunk framing)
 * kept in the connection, followed by body bytes that are never copied: they are slices of
 * one read-only pattern buffer (byte i of every body is 'a' + i % 26), handed to sendmsg()
 * as a second iovec. So a 16 MiB response costs the same memory as a 28-byte one.
 */
#ifndef CONNFAULT_RESPONSE_H
#define CONNFAULT_RESPONSE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "http_parser.h"

#define RESPONSE_HEAD_MAX    512
#define RESPONSE_CHUNK_BYTES 16384
#define RESPONSE_SMALL_BODY  "hello from connfault-server\n"

struct response {
    char head[RESPONSE_HEAD_MAX]; /* bytes to send before the next body slice */
    uint16_t head_len, head_sent;
    uint64_t body_left;  /* pattern bytes of the body not yet sent */
    uint64_t body_pos;   /* offset of the next pattern byte */
    uint64_t chunk_left; /* pattern bytes before the next framing (whole body if not chunked) */
    bool chunked;
    bool last_chunk_queued;
    bool close_after; /* the connection closes once this response is sent */
    int status;
    struct response *next_free; /* in the server's list of spare responses */
};

/* Route a parsed request. close_after is set when the request or the server wants the
 * connection closed afterwards (force_close: the server is shutting down). */
void response_for_request(struct response *resp, const struct http_request *req, const char *date,
                          bool force_close);
/* An error answer (400, 408, 431, 501, 503, 505 ...) followed by closing the connection. */
void response_error(struct response *resp, int status, const char *date);

/* What to send next: fills up to 2 iovecs, returns how many (0 when done). */
int response_iov(const struct response *resp, struct iovec iov[2]);
/* n bytes of what response_iov() offered were sent. */
void response_advance(struct response *resp, size_t n);

/* "Sun, 22 Nov 2026 12:00:00 GMT" for the Date header, for the given wall-clock second. */
void response_format_date(char *buf, size_t len, long long unix_seconds);

#endif
