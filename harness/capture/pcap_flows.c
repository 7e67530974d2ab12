/* pcap_flows: see pcap_flows.h.
 *
 * The file is read twice. The first pass checks every packet (so a corrupt file fails before
 * any work is done) and learns which endpoints received SYNs: those are servers, also for
 * flows of the same capture that began before it. The second pass builds the flows.
 *
 * Layout of this file:
 *   1. packets: link layer, IPv4/IPv6, TCP headers -> struct tcp_packet
 *   2. sequence numbers and the client stream (coverage intervals, first transmissions)
 *   3. flows: the table, per-packet bookkeeping, how each one ended
 *   4. the two passes and the public API
 */
#include "pcap_flows.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define MAX_LISTENERS     1024   /* endpoints remembered as servers from SYNs (pass 1) */
#define MAX_IPV6_HEADERS  16     /* extension headers followed before giving up */
#define HOLE_PIECE        65536  /* a gap in the stream is replayed in pieces of this size */
#define UNANSWERED_PROBES 2      /* server packets after the client's last one: it vanished */
#define PROBE_SLACK_US    500000 /* see flow_vanished() */

/* ---- 1. packets ------------------------------------------------------------------------- */

struct tcp_packet {
    int family;
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t window;
    int wscale;             /* window scale option (SYN only), -1 if absent */
    const uint8_t *payload; /* payload_captured bytes of it are in the packet */
    uint32_t payload_len;   /* on the wire */
    uint32_t payload_captured;
};

enum parse_result { PARSE_TCP, PARSE_SKIP, PARSE_BAD };

struct parse_ctx {
    const uint8_t *p;
    size_t caplen, len; /* captured and original frame length */
    char *why;
    size_t whylen;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

__attribute__((format(printf, 2, 3))) static enum parse_result bad(struct parse_ctx *c,
                                                                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
    return PARSE_BAD;
}

/* Not enough captured bytes for a header: cut by the snap length, or a corrupt record. */
static enum parse_result short_header(struct parse_ctx *c, const char *what, size_t need,
                                      size_t have)
{
    if (c->caplen < c->len)
        return bad(c,
                   "%s cut off by the capture's snap length (%zu of %zu bytes captured; "
                   "capture with -s 0)",
                   what, c->caplen, c->len);
    return bad(c, "truncated %s (%zu of %zu bytes)", what, have, need);
}

static enum parse_result parse_tcp(struct parse_ctx *c, size_t off, size_t l4_wire,
                                   struct tcp_packet *t)
{
    size_t have = c->caplen > off ? c->caplen - off : 0;
    const uint8_t *h = c->p + off;
    size_t hlen;

    if (have < 20)
        return short_header(c, "TCP header", 20, have);
    hlen = (size_t)(h[12] >> 4) * 4;
    if (hlen < 20 || hlen > l4_wire)
        return bad(c, "corrupt TCP header (data offset %zu, segment of %zu bytes)", hlen, l4_wire);
    if (have < hlen)
        return short_header(c, "TCP options", hlen, have);
    t->sport = rd16(h);
    t->dport = rd16(h + 2);
    t->seq = rd32(h + 4);
    t->ack = rd32(h + 8);
    t->flags = h[13];
    t->window = rd16(h + 14);
    t->wscale = -1;
    for (size_t i = 20; i < hlen;) { /* options: only the window scale matters here */
        uint8_t kind = h[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hlen || h[i + 1] < 2)
            break;
        if (kind == 3 && h[i + 1] == 3 && i + 2 < hlen)
            t->wscale = h[i + 2] > 14 ? 14 : h[i + 2];
        i += h[i + 1];
    }
    t->payload = h + hlen;
    t->payload_len = (uint32_t)(l4_wire - hlen);
    t->payload_captured = (uint32_t)(have - hlen < t->payload_len ? have - hlen : t->payload_len);
    return PARSE_TCP;
}

static enum parse_result parse_ipv4(struct parse_ctx *c, size_t off, struct tcp_packet *t)
{
    size_t have = c->caplen > off ? c->caplen - off : 0;
    size_t wire = c->len > off ? c->len - off : 0;
    const uint8_t *h = c->p + off;
    size_t ihl, total;

    if (have < 20)
        return short_header(c, "IPv4 header", 20, have);
    if (h[0] >> 4 != 4)
        return bad(c, "IPv4 packet with IP version %d", h[0] >> 4);
    ihl = (size_t)(h[0] & 0x0f) * 4;
    total = rd16(h + 2);
    if (total == 0) /* TSO/GSO: the sending host's capture shows the length as 0 */
        total = wire;
    if (ihl < 20 || total < ihl)
        return bad(c, "corrupt IPv4 header (header %zu bytes, total length %zu)", ihl, total);
    if (total > wire)
        return bad(c, "IPv4 total length %zu, but the frame holds only %zu bytes", total, wire);
    if (have < ihl)
        return short_header(c, "IPv4 options", ihl, have);
    if ((rd16(h + 6) & 0x3fff) != 0) /* more fragments, or an offset: cannot be reassembled */
        return PARSE_SKIP;
    if (h[9] != IPPROTO_TCP)
        return PARSE_SKIP;
    t->family = AF_INET;
    memset(t->src, 0, sizeof(t->src));
    memset(t->dst, 0, sizeof(t->dst));
    memcpy(t->src, h + 12, 4);
    memcpy(t->dst, h + 16, 4);
    return parse_tcp(c, off + ihl, total - ihl, t);
}

static enum parse_result parse_ipv6(struct parse_ctx *c, size_t off, struct tcp_packet *t)
{
    size_t have = c->caplen > off ? c->caplen - off : 0;
    size_t wire = c->len > off ? c->len - off : 0;
    const uint8_t *h = c->p + off;
    size_t payload, pos = 40;
    uint8_t next;

    if (have < 40)
        return short_header(c, "IPv6 header", 40, have);
    if (h[0] >> 4 != 6)
        return bad(c, "IPv6 packet with IP version %d", h[0] >> 4);
    payload = rd16(h + 4);
    if (payload == 0) /* a jumbogram, or TSO as above */
        payload = wire - 40;
    if (40 + payload > wire)
        return bad(c, "IPv6 payload length %zu, but the frame holds only %zu bytes", payload,
                   wire - 40);
    next = h[6];
    for (int i = 0; next != IPPROTO_TCP; i++) {
        size_t ext;
        if (i == MAX_IPV6_HEADERS || next == IPPROTO_NONE || next == IPPROTO_ESP)
            return PARSE_SKIP;
        if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
            next != IPPROTO_FRAGMENT && next != IPPROTO_AH)
            return PARSE_SKIP; /* UDP, ICMPv6, ... */
        if (have < pos + 8)
            return short_header(c, "IPv6 extension header", pos + 8, have);
        if (next == IPPROTO_FRAGMENT) {
            if ((rd16(h + pos + 2) & 0xfff9) != 0) /* offset or more-fragments flag */
                return PARSE_SKIP;
            ext = 8;
        } else if (next == IPPROTO_AH) {
            ext = ((size_t)h[pos + 1] + 2) * 4;
        } else {
            ext = ((size_t)h[pos + 1] + 1) * 8;
        }
        if (pos + ext > 40 + payload)
            return bad(c, "IPv6 extension header runs past the payload (%zu > %zu bytes)",
                       pos + ext - 40, payload);
        next = h[pos];
        pos += ext;
    }
    t->family = AF_INET6;
    memcpy(t->src, h + 8, 16);
    memcpy(t->dst, h + 24, 16);
    return parse_tcp(c, off + pos, 40 + payload - pos, t);
}

/* An address family number in a DLT_NULL/DLT_LOOP header: 4, 6, or 0 (something else). */
static int bsd_af_version(uint32_t af)
{
    if (af == 2)
        return 4;
    if (af == 10 || af == 24 || af == 28 || af == 30) /* Linux, NetBSD/OpenBSD, FreeBSD, macOS */
        return 6;
    return 0;
}

static int ethertype_version(uint16_t type)
{
    return type == 0x0800 ? 4 : type == 0x86dd ? 6 : 0;
}

/* Where the IP header starts, and its version (0: not IP, skip). */
static enum parse_result parse_link(struct parse_ctx *c, int linktype, size_t *off, int *version)
{
    const uint8_t *p = c->p;
    size_t n = c->caplen;

    switch (linktype) {
    case DLT_EN10MB: {
        size_t pos = 12;
        uint16_t type;
        if (n < 14)
            return short_header(c, "Ethernet header", 14, n);
        type = rd16(p + pos);
        while (type == 0x8100 || type == 0x88a8) { /* VLAN tags */
            pos += 4;
            if (n < pos + 2)
                return short_header(c, "VLAN tag", pos + 2, n);
            type = rd16(p + pos);
        }
        *off = pos + 2;
        *version = ethertype_version(type);
        return PARSE_TCP;
    }
    case DLT_LINUX_SLL:
        if (n < 16)
            return short_header(c, "Linux cooked header", 16, n);
        *off = 16;
        *version = ethertype_version(rd16(p + 14));
        return PARSE_TCP;
    case DLT_LINUX_SLL2:
        if (n < 20)
            return short_header(c, "Linux cooked v2 header", 20, n);
        *off = 20;
        *version = ethertype_version(rd16(p));
        return PARSE_TCP;
    case DLT_NULL:
    case DLT_LOOP: {
        uint32_t be, le;
        if (n < 4)
            return short_header(c, "loopback header", 4, n);
        be = rd32(p);
        le = (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
        *off = 4;
        /* DLT_NULL is in the capturing host's byte order, which the file does not say. */
        *version = bsd_af_version(be);
        if (*version == 0 && linktype == DLT_NULL)
            *version = bsd_af_version(le);
        return PARSE_TCP;
    }
    default: /* raw IP: DLT_RAW, LINKTYPE_RAW, DLT_IPV4, DLT_IPV6 */
        if (n < 1)
            return short_header(c, "IP header", 1, n);
        *off = 0;
        *version = p[0] >> 4;
        return PARSE_TCP;
    }
}

static bool linktype_supported(int linktype)
{
    switch (linktype) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        return true;
    default:
        return linktype == 12 || linktype == 14 || linktype == 101; /* DLT_RAW's other numbers */
    }
}

static enum parse_result parse_packet(struct parse_ctx *c, int linktype, struct tcp_packet *t)
{
    size_t off = 0;
    int version = 0;
    enum parse_result r = parse_link(c, linktype, &off, &version);

    if (r != PARSE_TCP)
        return r;
    if (version == 4)
        return parse_ipv4(c, off, t);
    if (version == 6)
        return parse_ipv6(c, off, t);
    return PARSE_SKIP;
}

/* ---- 2. sequence numbers and the client stream ------------------------------------------ */

/* One direction's sequence numbers as 64-bit offsets from the first one seen, so that
 * wrap-around and segments from before the first one (out of order, mid-connection) work. */
struct seq_space {
    bool anchored;
    uint32_t anchor;
    int64_t ref; /* the highest offset so far: the next one is unwrapped near it */
};

static int64_t seq_offset(struct seq_space *s, uint32_t seq)
{
    int64_t off;

    if (!s->anchored) {
        s->anchored = true;
        s->anchor = seq;
        s->ref = 0;
        return 0;
    }
    off = s->ref + (int32_t)(seq - (uint32_t)(s->anchor + (uint32_t)s->ref));
    if (off > s->ref)
        s->ref = off;
    return off;
}

struct interval {
    int64_t start, end;
};

struct seg_rec {
    int64_t off;
    uint32_t len;
    uint64_t time_us;
};

/* The client's bytes by stream offset: a buffer for [origin, origin + cap), the intervals
 * received so far (sorted, disjoint, not adjacent), and the first transmission of each
 * byte range. */
struct stream_build {
    uint8_t *buf;
    int64_t origin;
    size_t cap;
    struct interval *cov;
    size_t ncov, cov_cap;
    struct seg_rec *recs;
    size_t nrecs, recs_cap;
};

static void stream_free(struct stream_build *s)
{
    free(s->buf);
    free(s->cov);
    free(s->recs);
    memset(s, 0, sizeof(*s));
}

static int grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 8;
    void *p;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    p = realloc(*arr, n * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

/* Make the buffer span [lo, hi) (it may grow at either end). New bytes are zero. */
static int stream_reserve(struct stream_build *s, int64_t lo, int64_t hi)
{
    int64_t cur_lo = s->buf ? s->origin : lo, cur_hi = s->buf ? s->origin + (int64_t)s->cap : lo;
    int64_t new_lo = lo < cur_lo ? lo : cur_lo, new_hi = hi > cur_hi ? hi : cur_hi;
    size_t need = (size_t)(new_hi - new_lo), front = (size_t)(cur_lo - new_lo), cap;
    uint8_t *buf;

    if (s->buf && new_lo == cur_lo && new_hi <= cur_hi)
        return 0;
    cap = s->cap ? s->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (front == 0) {
        buf = realloc(s->buf, cap);
        if (!buf)
            return -ENOMEM;
        memset(buf + s->cap, 0, cap - s->cap);
    } else { /* bytes from before the first ones seen: shift them back */
        buf = calloc(1, cap);
        if (!buf)
            return -ENOMEM;
        if (s->buf)
            memcpy(buf + front, s->buf, s->cap);
        free(s->buf);
    }
    s->buf = buf;
    s->cap = cap;
    s->origin = new_lo;
    return 0;
}

/* Index of the first interval whose end is >= off (adjacent ones merge). */
static size_t stream_find(const struct stream_build *s, int64_t off)
{
    size_t lo = 0, hi = s->ncov;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->cov[mid].end < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int stream_record(struct stream_build *s, int64_t off, int64_t end, const uint8_t *data,
                         int64_t data_off, uint64_t time_us)
{
    if (grow_array((void **)&s->recs, &s->recs_cap, s->nrecs + 1, sizeof(*s->recs)) < 0)
        return -ENOMEM;
    s->recs[s->nrecs++] = (struct seg_rec){off, (uint32_t)(end - off), time_us};
    memcpy(s->buf + (off - s->origin), data + (off - data_off), (size_t)(end - off));
    return 0;
}

/* Add bytes [off, off + len): the parts not seen before are recorded as first sent now.
 * *new_bytes is how many were new. */
static int stream_add(struct stream_build *s, int64_t off, const uint8_t *data, uint32_t len,
                      uint64_t time_us, uint64_t *new_bytes)
{
    int64_t end = off + len, pos = off;
    size_t i = stream_find(s, off), j;
    int rc = stream_reserve(s, off, end);

    *new_bytes = 0;
    if (rc < 0)
        return rc;
    for (j = i; j < s->ncov && s->cov[j].start <= end; j++) {
        if (s->cov[j].start > pos) {
            if (stream_record(s, pos, s->cov[j].start, data, off, time_us) < 0)
                return -ENOMEM;
            *new_bytes += (uint64_t)(s->cov[j].start - pos);
        }
        if (s->cov[j].end > pos)
            pos = s->cov[j].end;
    }
    if (pos < end) {
        if (stream_record(s, pos, end, data, off, time_us) < 0)
            return -ENOMEM;
        *new_bytes += (uint64_t)(end - pos);
    }
    /* intervals i..j-1 touch [off, end): replace them by their union */
    struct interval merged = {off, end};
    if (j > i) {
        merged.start = s->cov[i].start < off ? s->cov[i].start : off;
        merged.end = s->cov[j - 1].end > end ? s->cov[j - 1].end : end;
    } else if (grow_array((void **)&s->cov, &s->cov_cap, s->ncov + 1, sizeof(*s->cov)) < 0) {
        return -ENOMEM;
    }
    size_t removed = j - i;
    if (removed != 1)
        memmove(s->cov + i + 1, s->cov + j, (s->ncov - j) * sizeof(*s->cov));
    s->ncov = s->ncov - removed + 1;
    s->cov[i] = merged;
    return 0;
}

static int compare_recs(const void *a, const void *b)
{
    const struct seg_rec *x = a, *y = b;

    return x->off < y->off ? -1 : x->off > y->off;
}

static int flow_add_segment(struct replay_flow *f, size_t *cap, uint64_t offset, uint64_t len,
                            uint64_t time_us)
{
    if (grow_array((void **)&f->segs, cap, f->nsegs + 1, sizeof(*f->segs)) < 0)
        return -ENOMEM;
    f->segs[f->nsegs++] = (struct flow_segment){offset, (uint32_t)len, time_us};
    return 0;
}

/* The stream from base on, as the flow's data and segments (gaps filled, in order). */
static int stream_finish(struct stream_build *s, int64_t base, struct replay_flow *f)
{
    int64_t hi = s->ncov ? s->cov[s->ncov - 1].end : base, pos = base;
    size_t cap = 0;

    if (hi <= base)
        return 0;
    qsort(s->recs, s->nrecs, sizeof(*s->recs), compare_recs);
    for (size_t i = 0; i < s->nrecs; i++) {
        struct seg_rec r = s->recs[i];
        if (r.off + r.len <= base)
            continue;
        if (r.off < base) {
            r.len -= (uint32_t)(base - r.off);
            r.off = base;
        }
        while (pos < r.off) { /* never captured: zeros, sent when the next bytes were */
            int64_t piece = r.off - pos > HOLE_PIECE ? HOLE_PIECE : r.off - pos;
            if (flow_add_segment(f, &cap, (uint64_t)(pos - base), (uint64_t)piece, r.time_us) < 0)
                return -ENOMEM;
            f->missing_bytes += (uint64_t)piece;
            pos += piece;
        }
        if (flow_add_segment(f, &cap, (uint64_t)(r.off - base), r.len, r.time_us) < 0)
            return -ENOMEM;
        pos = r.off + r.len;
    }
    if (stream_reserve(s, base, hi) < 0) /* lost bytes right after the SYN: zeros */
        return -ENOMEM;
    f->data_len = (uint64_t)(hi - base);
    f->data = malloc((size_t)f->data_len);
    if (!f->data)
        return -ENOMEM;
    memcpy(f->data, s->buf + (base - s->origin), (size_t)f->data_len);
    return 0;
}

/* ---- 2b. client bytes cut by the snap length --------------------------------------------- */

#define PAD_HEADER   "X-Connfault-Pad: "
#define SHORT_PAD    "X:"
#define ADDED_HOST   "localhost"
#define MAX_ADDITION 256 /* the longest completion, before the padding */

/* The part of a client packet the snap length cut: zeros in the stream until filled. */
struct cut_rec {
    int64_t off; /* stream offset, as seq_offset() gives it */
    uint32_t len;
    bool whole; /* every byte of it was new to the stream (else it is left as zeros) */
    uint64_t packet;
};

static int compare_cuts(const void *a, const void *b)
{
    const struct cut_rec *x = a, *y = b;

    return x->off < y->off ? -1 : x->off > y->off;
}

/* What the complete lines of a request head say. */
struct head_facts {
    bool v11, host, has_length, chunked;
    uint64_t length;
};

/* Where the stream's HTTP requests are: the next one starts at pos. http turns false when
 * the stream stops looking like HTTP/1.x requests; every cut after that is zeros. */
struct http_scan {
    uint8_t *d;
    uint64_t n, pos;
    bool http;
    const struct flow_segment *segs;
    size_t nsegs;
};

/* A completion being written: text, and whether its last line is a header line. */
struct addition {
    char text[MAX_ADDITION];
    size_t n;
    bool ends_header;
};

static const char *const http_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                           "OPTIONS", "CONNECT", "TRACE", "PATCH"};

static bool name_is(const uint8_t *p, size_t n, const char *lower)
{
    if (strlen(lower) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]) != lower[i])
            return false;
    return true;
}

static bool is_tchar(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A known method that begins with p[0..n), or NULL. */
static const char *method_completing(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
        if (n < strlen(http_methods[i]) && memcmp(http_methods[i], p, n) == 0)
            return http_methods[i];
    return NULL;
}

/* Do the n bytes at p begin a request line ("METHOD SP", or a known method's start)? */
static bool http_request_start(const uint8_t *p, uint64_t n)
{
    size_t i = 0;

    for (; i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z'; i++)
        ;
    if (i == 0)
        return false;
    if (i < n)
        return p[i] == ' ';
    return method_completing(p, (size_t)i) != NULL;
}

/* The offset just after the "\r\n\r\n" ending the head that starts at from, if it lies
 * before to; else 0. */
static uint64_t http_head_end(const uint8_t *d, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i + 4 <= to; i++)
        if (d[i] == '\r' && memcmp(d + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

static void head_line_fact(const uint8_t *p, size_t n, struct head_facts *hf)
{
    const uint8_t *colon = memchr(p, ':', n);
    size_t name = colon ? (size_t)(colon - p) : n, i = name + 1;

    if (!colon)
        return;
    if (name_is(p, name, "host"))
        hf->host = true;
    else if (name_is(p, name, "transfer-encoding"))
        hf->chunked = true;
    if (!name_is(p, name, "content-length"))
        return;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    hf->has_length = i < n && p[i] >= '0' && p[i] <= '9';
    for (hf->length = 0; i < n && p[i] >= '0' && p[i] <= '9' && hf->length < (1ULL << 40); i++)
        hf->length = hf->length * 10 + (uint64_t)(p[i] - '0');
}

/* The facts of the complete lines (each ending in CRLF) of the n bytes at p. */
static void head_facts(const uint8_t *p, uint64_t n, struct head_facts *hf)
{
    uint64_t line = 0;

    memset(hf, 0, sizeof(*hf));
    for (uint64_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\r' || p[i + 1] != '\n')
            continue;
        if (line == 0)
            hf->v11 = i >= 8 && memcmp(p + i - 8, "HTTP/1.1", 8) == 0;
        else
            head_line_fact(p + line, (size_t)(i - line), hf);
        line = i + 2;
    }
}

__attribute__((format(printf, 2, 3))) static void add_text(struct addition *a, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(a->text + a->n, sizeof(a->text) - a->n, fmt, ap);
    va_end(ap);
    a->n = n < 0 || (size_t)n >= sizeof(a->text) - a->n ? sizeof(a->text) : a->n + (size_t)n;
}

/* Finish a request line cut after its n bytes at p. false: not HTTP/1.x. */
static bool finish_request_line(const uint8_t *p, size_t n, struct addition *a, bool *v11)
{
    const uint8_t *sp1 = memchr(p, ' ', n), *sp2;
    const char *method;

    *v11 = true;
    if (!sp1) {
        method = method_completing(p, n);
        if (method)
            add_text(a, "%s / HTTP/1.1\r\n", method + n);
        return method != NULL;
    }
    sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p));
    if (!sp2) { /* in the target: what was captured of it stays, a cut %XX made whole */
        const char *more = sp1 + 1 == p + n ? "/" : p[n - 1] == '%' ? "25" : "";
        if (sp1 + 2 < p + n && p[n - 2] == '%')
            more = "0";
        add_text(a, "%s HTTP/1.1\r\n", more);
        return true;
    }
    size_t vn = n - (size_t)(sp2 + 1 - p);
    const uint8_t *v = sp2 + 1;
    if (vn == 9 && v[8] == '\r' &&
        (memcmp(v, "HTTP/1.1", 8) == 0 || memcmp(v, "HTTP/1.0", 8) == 0)) {
        *v11 = v[7] == '1';
        add_text(a, "\n");
        return true;
    }
    if (vn == 8 && memcmp(v, "HTTP/1.0", 8) == 0) {
        *v11 = false;
        add_text(a, "\r\n");
        return true;
    }
    if (vn <= 8 && memcmp("HTTP/1.1", v, vn) == 0) {
        add_text(a, "%s\r\n", &"HTTP/1.1"[vn]);
        return true;
    }
    return false;
}

/* Finish a header line cut after its n bytes at p (which may be renamed, see the header).
 * false: not a header line. */
static bool finish_header_line(uint8_t *p, size_t n, struct addition *a, struct head_facts *hf)
{
    const uint8_t *colon = memchr(p, ':', n);
    size_t name = colon ? (size_t)(colon - p) : n, value = name + 1;

    if (n == 0)
        return true; /* cut at the start of a line */
    if (name == 0)
        return false;
    for (size_t i = 0; i < name; i++)
        if (!is_tchar(p[i]))
            return false;
    a->ends_header = true;
    /* its value may be cut short, or still to come: not a length to trust */
    if (name_is(p, name, "content-length") || name_is(p, name, "transfer-encoding"))
        memcpy(p, "X-", 2);
    if (!colon) { /* in the name: Host is finished as Host, any other name as itself */
        if (n <= 4 && strncasecmp("host", (const char *)p, n) == 0) {
            add_text(a, "%s: " ADDED_HOST "\r\n", &"host"[n]);
            hf->host = true;
        } else {
            add_text(a, ": x\r\n");
        }
        return true;
    }
    if (name_is(p, name, "host")) {
        hf->host = true;
        while (value < n && (p[value] == ' ' || p[value] == '\t'))
            value++;
        if (value >= n)
            add_text(a, " " ADDED_HOST);
    }
    if (p[n - 1] == '\r')
        add_text(a, "\n");
    else
        add_text(a, "\r\n");
    return true;
}

/* Where the next request starts at or after from (a segment that begins like one), else the
 * end of the stream: the bytes before it are a body. */
static uint64_t next_request_at(const struct http_scan *s, uint64_t from)
{
    for (size_t i = 0; i < s->nsegs; i++) {
        uint64_t off = s->segs[i].offset, n = s->segs[i].len;
        if (off >= from && http_request_start(s->d + off, n < 8 ? n : 8))
            return off;
    }
    return s->n;
}

/* The padding that makes the addition exactly room bytes, then the blank line. false: it
 * cannot be made to fit. */
static bool pad_addition(struct addition *a, size_t room)
{
    size_t pad;

    if (a->n >= sizeof(a->text) || a->n + 2 > room)
        return false;
    pad = room - a->n - 2;
    if (pad > 0 && pad < strlen(SHORT_PAD) + 2) { /* 1-3 bytes: trailing spaces (OWS) */
        /* the spaces go before the CRLF of a header line written here (not a captured CR) */
        if (!a->ends_header || a->n < 2 || memcmp(a->text + a->n - 2, "\r\n", 2) != 0 ||
            a->n + pad > sizeof(a->text))
            return false;
        memmove(a->text + a->n - 2 + pad, a->text + a->n - 2, 2);
        memset(a->text + a->n - 2, ' ', pad);
        a->n += pad;
    }
    return true;
}

/* Write the addition and its padding (see pad_addition) at d, room bytes in all. */
static void write_addition(uint8_t *d, const struct addition *a, size_t room)
{
    size_t pad = room - a->n - 2;
    const char *name = pad >= strlen(PAD_HEADER) + 2 ? PAD_HEADER : SHORT_PAD;

    memcpy(d, a->text, a->n);
    d += a->n;
    if (pad > 0) {
        memcpy(d, name, strlen(name));
        memset(d + strlen(name), 'x', pad - strlen(name) - 2);
        memcpy(d + pad - 2, "\r\n", 2);
        d += pad;
    }
    memcpy(d, "\r\n", 2);
}

/* The head that starts at s->pos is cut at a, len bytes not captured: complete it there (see
 * the top of pcap_flows.h). Returns the bytes it filled (len), or 0 (they stay zeros). */
static uint64_t http_complete_head(struct http_scan *s, uint64_t a, uint32_t len)
{
    struct addition add = {.n = 0};
    struct head_facts hf;
    uint64_t line = a, body;
    bool ok;

    while (line > s->pos && s->d[line - 1] != '\n')
        line--;
    head_facts(s->d + s->pos, line - s->pos, &hf);
    if (line == s->pos)
        ok = finish_request_line(s->d + line, (size_t)(a - line), &add, &hf.v11);
    else
        ok = finish_header_line(s->d + line, (size_t)(a - line), &add, &hf);
    if (ok && hf.v11 && !hf.host) {
        add_text(&add, "Host: " ADDED_HOST "\r\n");
        add.ends_header = true;
    }
    body = next_request_at(s, a + len) - (a + len);
    if (ok && !hf.has_length && !hf.chunked && body > 0) {
        add_text(&add, "Content-Length: %llu\r\n", (unsigned long long)body);
        add.ends_header = true;
    }
    if (!ok || hf.chunked || !pad_addition(&add, len)) {
        s->http = false;
        return 0;
    }
    write_addition(s->d + a, &add, len);
    s->pos = a + len + (hf.has_length ? hf.length : body);
    return len;
}

/* Fill the cut at a (len bytes) if it falls in a request head. Returns the bytes filled. */
static uint64_t http_fill_cut(struct http_scan *s, uint64_t a, uint32_t len)
{
    while (s->http && s->pos < a) {
        struct head_facts hf;
        uint64_t end;
        if (!http_request_start(s->d + s->pos, a - s->pos)) {
            s->http = false;
            break;
        }
        end = http_head_end(s->d, s->pos, a);
        if (end == 0)
            return http_complete_head(s, a, len);
        head_facts(s->d + s->pos, end - s->pos, &hf);
        if (hf.chunked)
            s->http = false;
        s->pos = end + hf.length;
    }
    return 0;
}

/* Fill the cuts of a finished flow whose stream starts at base. */
static void fill_cuts(struct replay_flow *f, struct cut_rec *cuts, size_t ncuts, int64_t base)
{
    struct http_scan s = {f->data, f->data_len, 0, true, f->segs, f->nsegs};

    qsort(cuts, ncuts, sizeof(*cuts), compare_cuts);
    for (size_t i = 0; i < ncuts; i++) {
        int64_t a = cuts[i].off - base;
        uint64_t filled;
        if (a < 0 || (uint64_t)a + cuts[i].len > f->data_len)
            continue;
        f->cut_packets++;
        f->cut_bytes += cuts[i].len;
        filled = cuts[i].whole ? http_fill_cut(&s, (uint64_t)a, cuts[i].len) : 0;
        f->cut_head_bytes += filled;
        f->cut_heads += filled > 0;
    }
}

/* ---- 3. flows --------------------------------------------------------------------------- */

struct endpoint {
    int family;
    uint8_t addr[16];
    uint16_t port;
};

struct flow_build {
    struct replay_flow out;
    uint64_t first_ts, last_ts;  /* capture timestamps, microseconds */
    struct seq_space cseq, sseq; /* client and server sequence spaces */
    bool client_syn, server_syn;
    uint32_t client_isn;
    int64_t client_isn_off, server_isn_off;
    int client_wscale, server_wscale;
    uint32_t max_window; /* the client's window field, unscaled, after its SYN */
    struct stream_build stream;
    bool server_data;
    int64_t server_lo, server_hi; /* lowest seq / highest end seen from the server */
    int64_t server_fin_off;       /* the sequence number of the server's FIN */
    bool have_ack;
    int64_t ack_lo, ack_hi; /* client ACKs, in the server's sequence space */
    /* how it ended */
    bool client_fin, client_rst, server_fin, server_rst, acked_after_fin;
    uint64_t client_fin_us, client_rst_us, server_end_us, zero_since_us, client_last_us;
    int64_t ack_at_fin, ack_at_rst, ack_at_zero;
    bool zero_window;
    unsigned server_after_client; /* server packets since the client's last packet */
    struct cut_rec *cuts;         /* client data the snap length cut */
    size_t ncuts, cuts_cap;
};

struct reader {
    const struct pcap_flows_limits *lim;
    int linktype;
    uint64_t packet;            /* 1-based number of the packet being read */
    uint64_t first_ts, last_ts; /* of the whole capture */
    bool have_first;
    uint64_t tcp_packets, skipped;
    struct endpoint listeners[MAX_LISTENERS];
    size_t nlisteners;
    struct flow_build *flows;
    size_t nflows, flows_cap;
    size_t *table; /* flow index + 1 of the latest flow for a 4-tuple; 0 = empty */
    size_t table_cap;
    uint64_t total_bytes;
    int snaplen;                        /* the file's */
    uint64_t truncated_packet;          /* the file ends in the middle of it; 0: it does not */
    size_t cut_flows;                   /* flows with client data the snap length cut */
    uint64_t cut_bytes, cut_head_bytes; /* theirs, in all */
    char *warnings;                     /* see replay_set.warnings */
    size_t warnings_len, warnings_cap;
    int rc; /* the first error: 0 or a negative errno */
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int reader_error(struct reader *r, int rc,
                                                              const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    r->rc = rc;
    if (r->packet > 0)
        n = snprintf(r->err, r->errlen, "packet %llu: ", (unsigned long long)r->packet);
    if (n < 0 || (size_t)n >= r->errlen)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

/* Add a line to the warnings. Out of memory, it is left out: the replay goes on. */
__attribute__((format(printf, 2, 3))) static void reader_warn(struct reader *r, const char *fmt,
                                                              ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 ||
        grow_array((void **)&r->warnings, &r->warnings_cap, r->warnings_len + (size_t)n + 2, 1) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(r->warnings + r->warnings_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->warnings_len += (size_t)n;
    r->warnings[r->warnings_len++] = '\n';
    r->warnings[r->warnings_len] = '\0';
}

static size_t addr_len(int family)
{
    return family == AF_INET ? 4 : 16;
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL; /* FNV-1a */
    return h;
}

static uint64_t flow_hash(int family, const uint8_t *caddr, uint16_t cport, const uint8_t *saddr,
                          uint16_t sport)
{
    uint8_t ports[4] = {(uint8_t)(cport >> 8), (uint8_t)cport, (uint8_t)(sport >> 8),
                        (uint8_t)sport};
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)family;

    h = hash_bytes(h, caddr, addr_len(family));
    h = hash_bytes(h, saddr, addr_len(family));
    return hash_bytes(h, ports, sizeof(ports));
}

static bool flow_matches(const struct replay_flow *f, int family, const uint8_t *caddr,
                         uint16_t cport, const uint8_t *saddr, uint16_t sport)
{
    return f->family == family && f->client_port == cport && f->server_port == sport &&
           memcmp(f->client_addr, caddr, addr_len(family)) == 0 &&
           memcmp(f->server_addr, saddr, addr_len(family)) == 0;
}

/* The slot of a 4-tuple in the table: its flow, or the empty slot where it goes. */
static size_t *table_slot(struct reader *r, int family, const uint8_t *caddr, uint16_t cport,
                          const uint8_t *saddr, uint16_t sport)
{
    size_t mask = r->table_cap - 1;
    size_t i = (size_t)flow_hash(family, caddr, cport, saddr, sport) & mask;

    while (r->table[i] != 0 &&
           !flow_matches(&r->flows[r->table[i] - 1].out, family, caddr, cport, saddr, sport))
        i = (i + 1) & mask;
    return &r->table[i];
}

/* Keep the table at most half full. */
static int table_grow(struct reader *r)
{
    size_t cap = r->table_cap ? r->table_cap * 2 : 1024;
    size_t *old = r->table, old_cap = r->table_cap;

    if (r->table_cap && r->nflows * 2 < r->table_cap)
        return 0;
    r->table = calloc(cap, sizeof(*r->table));
    if (!r->table) {
        r->table = old;
        return -ENOMEM;
    }
    r->table_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] == 0)
            continue;
        const struct replay_flow *f = &r->flows[old[i] - 1].out;
        *table_slot(r, f->family, f->client_addr, f->client_port, f->server_addr, f->server_port) =
            old[i];
    }
    free(old);
    return 0;
}

static bool is_listener(const struct reader *r, int family, const uint8_t *addr, uint16_t port)
{
    for (size_t i = 0; i < r->nlisteners; i++) {
        const struct endpoint *e = &r->listeners[i];
        if (e->family == family && e->port == port && memcmp(e->addr, addr, addr_len(family)) == 0)
            return true;
    }
    return false;
}

/* Pass 1: remember endpoints that received a SYN (or answered one). */
static void note_listener(struct reader *r, const struct tcp_packet *t)
{
    bool syn = (t->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
    bool synack = (t->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK);
    const uint8_t *addr = syn ? t->dst : t->src;
    uint16_t port = syn ? t->dport : t->sport;

    if ((!syn && !synack) || r->nlisteners == MAX_LISTENERS ||
        is_listener(r, t->family, addr, port))
        return;
    struct endpoint *e = &r->listeners[r->nlisteners++];
    e->family = t->family;
    memcpy(e->addr, addr, sizeof(e->addr));
    e->port = port;
}

/* Is the packet's destination the server? 1 yes, 0 no (its source is), -1 neither (another
 * port than the one given). */
static int packet_to_server(const struct reader *r, const struct tcp_packet *t)
{
    bool dst_listens, src_listens;

    if (r->lim->server_port)
        return t->dport == r->lim->server_port ? 1 : t->sport == r->lim->server_port ? 0 : -1;
    if ((t->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
        return 1;
    if ((t->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
        return 0;
    dst_listens = is_listener(r, t->family, t->dst, t->dport);
    src_listens = is_listener(r, t->family, t->src, t->sport);
    if (dst_listens != src_listens)
        return dst_listens;
    return t->dport <= t->sport;
}

static struct flow_build *flow_new(struct reader *r, const struct tcp_packet *t, bool to_server,
                                   uint64_t ts)
{
    struct flow_build *b;

    if (r->nflows == r->lim->max_flows) {
        reader_error(r, -E2BIG, "more than %zu TCP connections (the limit)", r->lim->max_flows);
        return NULL;
    }
    if (table_grow(r) < 0 ||
        grow_array((void **)&r->flows, &r->flows_cap, r->nflows + 1, sizeof(*r->flows)) < 0) {
        reader_error(r, -ENOMEM, "out of memory");
        return NULL;
    }
    b = &r->flows[r->nflows++];
    memset(b, 0, sizeof(*b));
    b->out.family = t->family;
    memcpy(b->out.client_addr, to_server ? t->src : t->dst, 16);
    memcpy(b->out.server_addr, to_server ? t->dst : t->src, 16);
    b->out.client_port = to_server ? t->sport : t->dport;
    b->out.server_port = to_server ? t->dport : t->sport;
    b->out.start_us = ts > r->first_ts ? ts - r->first_ts : 0;
    b->first_ts = b->last_ts = ts;
    b->client_wscale = b->server_wscale = -1;
    return b;
}

/* The flow a packet belongs to; a new one for a new connection on a reused 4-tuple. */
static struct flow_build *flow_for(struct reader *r, const struct tcp_packet *t, bool to_server,
                                   uint64_t ts)
{
    const uint8_t *caddr = to_server ? t->src : t->dst, *saddr = to_server ? t->dst : t->src;
    uint16_t cport = to_server ? t->sport : t->dport, sport = to_server ? t->dport : t->sport;
    size_t *slot;
    struct flow_build *b;

    if (r->table_cap == 0 && table_grow(r) < 0) {
        reader_error(r, -ENOMEM, "out of memory");
        return NULL;
    }
    slot = table_slot(r, t->family, caddr, cport, saddr, sport);
    if (*slot != 0) {
        b = &r->flows[*slot - 1];
        /* A SYN with another initial sequence number: the 4-tuple is used again. */
        bool new_syn = to_server && (t->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN &&
                       !(b->client_syn && b->client_isn == t->seq);
        if (!new_syn)
            return b;
    }
    b = flow_new(r, t, to_server, ts);
    if (!b)
        return NULL;
    /* flow_new may have moved the table and the flows: look the slot up again */
    *table_slot(r, t->family, caddr, cport, saddr, sport) = r->nflows;
    return b;
}

static uint64_t flow_time(const struct flow_build *b, uint64_t ts)
{
    return ts > b->first_ts ? ts - b->first_ts : 0;
}

/* Client data the snap length cut: what was captured then zeros, as one segment (filled by
 * fill_cuts() once the stream is whole), and a record of the cut if its bytes were new. */
static int client_cut_data(struct flow_build *b, const struct tcp_packet *t, int64_t off,
                           uint64_t now)
{
    uint32_t lost = t->payload_len - t->payload_captured;
    uint8_t *whole = calloc(1, t->payload_len);
    uint64_t added;
    size_t nrecs = b->stream.nrecs;

    if (!whole)
        return -ENOMEM;
    memcpy(whole, t->payload, t->payload_captured);
    int rc = stream_add(&b->stream, off, whole, t->payload_len, now, &added);
    free(whole);
    if (rc < 0 || b->stream.nrecs == nrecs)
        return rc; /* nothing new: all of it was seen before */
    /* the cut part is new if the last new piece ends where the packet does and covers it */
    const struct seg_rec *last = &b->stream.recs[b->stream.nrecs - 1];
    bool fresh =
        last->off + last->len == off + t->payload_len && last->off <= off + t->payload_captured;
    if (!fresh && last->off + last->len <= off + t->payload_captured)
        return 0;
    if (grow_array((void **)&b->cuts, &b->cuts_cap, b->ncuts + 1, sizeof(*b->cuts)) < 0)
        return -ENOMEM;
    b->cuts[b->ncuts++] = (struct cut_rec){off + t->payload_captured, lost, fresh, 0};
    return 0;
}

/* The client's data at stream offset off: kept whole, within the reader's limits. */
static int client_data(struct reader *r, struct flow_build *b, const struct tcp_packet *t,
                       int64_t off, uint64_t now)
{
    uint64_t added;
    bool cut = t->payload_captured < t->payload_len;
    int rc;
    if (cut && r->lim->strict)
        return reader_error(r, -EINVAL,
                            "client data cut off by the capture's snap length (%u of %u "
                            "bytes captured): replay needs every byte the client sent "
                            "(capture with -s 0)",
                            t->payload_captured, t->payload_len);
    int64_t lo = b->stream.ncov ? b->stream.cov[0].start : off;
    int64_t hi = b->stream.ncov ? b->stream.cov[b->stream.ncov - 1].end : off;
    lo = off < lo ? off : lo;
    hi = off + t->payload_len > hi ? off + t->payload_len : hi;
    if ((uint64_t)(hi - lo) > r->lim->max_flow_bytes)
        return reader_error(r, -E2BIG,
                            "a connection's client stream spans more than %llu "
                            "bytes (the limit)",
                            (unsigned long long)r->lim->max_flow_bytes);
    size_t before = b->stream.cap, ncuts = b->ncuts;
    rc = cut ? client_cut_data(b, t, off, now)
             : stream_add(&b->stream, off, t->payload, t->payload_len, now, &added);
    if (rc < 0)
        return reader_error(r, -ENOMEM, "out of memory");
    if (b->ncuts > ncuts)
        b->cuts[ncuts].packet = r->packet;
    r->total_bytes += b->stream.cap - before;
    if (r->total_bytes > r->lim->max_total_bytes)
        return reader_error(r, -E2BIG,
                            "the client streams take more than %llu bytes (the "
                            "limit)",
                            (unsigned long long)r->lim->max_total_bytes);
    return 0;
}

/* What the client's acknowledgements and windows say of how it read the server's data. */
static void client_acks_and_window(struct flow_build *b, const struct tcp_packet *t, uint64_t now)
{
    if ((t->flags & TCP_ACK) && !(t->flags & TCP_RST)) {
        int64_t ack = seq_offset(&b->sseq, t->ack);
        if (b->server_fin && ack > b->server_fin_off) /* acknowledging the FIN: not data */
            ack = b->server_fin_off;
        if (b->client_fin && b->have_ack && ack > b->ack_at_fin)
            b->acked_after_fin = true;
        if (!b->have_ack || ack < b->ack_lo)
            b->ack_lo = ack;
        if (!b->have_ack || ack > b->ack_hi)
            b->ack_hi = ack;
        b->have_ack = true;
    }
    if (!(t->flags & (TCP_SYN | TCP_RST))) {
        if (t->window > b->max_window)
            b->max_window = t->window;
        if (t->window == 0 && !b->zero_window) {
            b->zero_since_us = now;
            b->ack_at_zero = b->ack_hi;
        }
        b->zero_window = t->window == 0;
    }
}

static int client_packet(struct reader *r, struct flow_build *b, const struct tcp_packet *t,
                         uint64_t ts)
{
    uint64_t now = flow_time(b, ts);
    int64_t off = seq_offset(&b->cseq, t->seq);

    if (t->flags & TCP_SYN) {
        if (!b->client_syn) {
            b->client_syn = true;
            b->client_isn = t->seq;
            b->client_isn_off = off;
            b->client_wscale = t->wscale;
        }
        off += 1; /* data on a SYN (TCP Fast Open) follows the SYN's own number */
    }
    if (t->payload_len > 0) {
        int rc = client_data(r, b, t, off, now);
        if (rc < 0)
            return rc;
    }
    client_acks_and_window(b, t, now);
    if ((t->flags & TCP_FIN) && !b->client_fin && !b->client_rst) {
        b->client_fin = true;
        b->client_fin_us = now;
        b->ack_at_fin = b->ack_hi;
    }
    if ((t->flags & TCP_RST) && !b->client_rst) {
        b->client_rst = true;
        b->client_rst_us = now;
        b->ack_at_rst = b->ack_hi;
    }
    b->client_last_us = now;
    b->server_after_client = 0;
    return 0;
}

static void server_packet(struct flow_build *b, const struct tcp_packet *t, uint64_t ts)
{
    int64_t off = seq_offset(&b->sseq, t->seq);
    uint64_t now = flow_time(b, ts);

    if (t->flags & TCP_SYN) {
        if (!b->server_syn) {
            b->server_syn = true;
            b->server_isn_off = off;
            b->server_wscale = t->wscale;
        }
        off += 1;
    }
    if (t->payload_len > 0 || (t->flags & TCP_FIN)) { /* a FIN marks where the data ends */
        int64_t end = off + t->payload_len;
        if (!b->server_data || off < b->server_lo)
            b->server_lo = off;
        if (!b->server_data || end > b->server_hi)
            b->server_hi = end;
        b->server_data = true;
    }
    if ((t->flags & (TCP_FIN | TCP_RST)) && !b->server_fin && !b->server_rst)
        b->server_end_us = now;
    if ((t->flags & TCP_FIN) && !b->server_fin)
        b->server_fin_off = off + t->payload_len;
    b->server_fin |= (t->flags & TCP_FIN) != 0;
    b->server_rst |= (t->flags & TCP_RST) != 0;
    b->server_after_client++;
}

static int reader_tcp_packet(struct reader *r, const struct tcp_packet *t,
                             const struct pcap_pkthdr *h, uint64_t ts)
{
    int to_server = packet_to_server(r, t);
    struct flow_build *b;

    if (to_server < 0) {
        r->skipped++;
        return 0;
    }
    b = flow_for(r, t, to_server, ts);
    if (!b)
        return r->rc;
    b->last_ts = ts;
    if (to_server) {
        b->out.frames_to_server++;
        b->out.frame_bytes_to_server += h->len;
        return client_packet(r, b, t, ts);
    }
    b->out.frames_to_client++;
    b->out.frame_bytes_to_client += h->len;
    server_packet(b, t, ts);
    return 0;
}

static uint64_t clamp_bytes(int64_t v)
{
    return v > 0 ? (uint64_t)v : 0;
}

/* A client whose window is closed gets zero-window probes from the server, at intervals
 * that at most double (plus the minimum RTO). If the flow went quiet in both directions for
 * longer than the next probe would have taken while the capture went on, the probes were not
 * delivered: the client vanished (a drop before the capture point looks exactly like this). */
static bool flow_vanished(const struct flow_build *b, uint64_t capture_end_ts)
{
    uint64_t quiet = capture_end_ts > b->last_ts ? capture_end_ts - b->last_ts : 0;
    uint64_t at_zero = b->client_last_us - b->zero_since_us;

    return b->server_after_client >= UNANSWERED_PROBES || quiet > 2 * at_zero + PROBE_SLACK_US;
}

/* How the client ended it (see enum flow_end), when, and what it had received by then. */
static void flow_classify(struct flow_build *b, int64_t server_base, uint64_t capture_end_ts)
{
    struct replay_flow *f = &b->out;
    int64_t ack = b->ack_hi;

    if (b->client_rst && (!b->client_fin || b->client_rst_us < b->client_fin_us)) {
        f->end = FLOW_END_RESET;
        f->end_us = b->client_rst_us;
        ack = b->ack_at_rst;
    } else if (b->client_fin) {
        f->end = b->acked_after_fin && !b->client_rst ? FLOW_END_HALF_CLOSE : FLOW_END_CLOSE;
        f->end_us = b->client_fin_us;
        ack = b->ack_at_fin;
    } else if (b->zero_window && !flow_vanished(b, capture_end_ts)) {
        f->end = FLOW_END_STOP_READING;
        f->end_us = b->zero_since_us;
        ack = b->ack_at_zero;
    } else if (b->server_fin || b->server_rst) {
        f->end = FLOW_END_BY_SERVER;
        f->end_us = b->server_end_us;
    } else {
        f->end = FLOW_END_SILENT;
        f->end_us = b->client_last_us;
    }
    f->server_bytes_before_end = b->have_ack ? clamp_bytes(ack - server_base) : 0;
}

static void format_endpoint(char *buf, size_t len, int family, const uint8_t *addr, uint16_t port);

#define LISTED_CUTS      6  /* packets named in a warning, the rest counted */
#define LISTED_CUT_FLOWS 10 /* connections with a warning of their own, the rest summed up */

/* Fill what the snap length cut from the flow's stream (which starts at base), and say so. */
static void flow_fill_cuts(struct reader *r, struct flow_build *b, int64_t base)
{
    struct replay_flow *f = &b->out;
    char client[64], server[64], list[LISTED_CUTS * 48 + 32];
    size_t n = 0;

    if (b->ncuts == 0)
        return;
    fill_cuts(f, b->cuts, b->ncuts, base);
    r->cut_bytes += f->cut_bytes;
    r->cut_head_bytes += f->cut_head_bytes;
    if (++r->cut_flows > LISTED_CUT_FLOWS)
        return;
    for (size_t i = 0; i < b->ncuts && i < LISTED_CUTS && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%llu (%u bytes)", i ? ", " : "",
                              (unsigned long long)b->cuts[i].packet, b->cuts[i].len);
    if (b->ncuts > LISTED_CUTS && n < sizeof(list))
        snprintf(list + n, sizeof(list) - n, " and %zu more", b->ncuts - LISTED_CUTS);
    format_endpoint(client, sizeof(client), f->family, f->client_addr, f->client_port);
    format_endpoint(server, sizeof(server), f->family, f->server_addr, f->server_port);
    reader_warn(r,
                "connection %zu (%s -> %s): %llu client bytes cut off by the capture's snap "
                "length (%d bytes) in packet(s) %s: %llu filled by completing %llu HTTP request "
                "head(s) (an X-Connfault-Pad header keeps each request's length), %llu sent as "
                "zeros",
                (size_t)(b - r->flows) + 1, client, server, (unsigned long long)f->cut_bytes,
                r->snaplen, list, (unsigned long long)f->cut_head_bytes,
                (unsigned long long)f->cut_heads,
                (unsigned long long)(f->cut_bytes - f->cut_head_bytes));
}

static int flow_finish(struct reader *r, struct flow_build *b)
{
    struct replay_flow *f = &b->out;
    int64_t client_base, server_base, server_hi;

    f->saw_syn = b->client_syn;
    f->duration_us = flow_time(b, b->last_ts);
    client_base = b->client_syn    ? b->client_isn_off + 1
                  : b->stream.ncov ? b->stream.cov[0].start
                                   : 0;
    if (b->stream.ncov &&
        b->stream.cov[b->stream.ncov - 1].end - client_base > (int64_t)r->lim->max_flow_bytes)
        return reader_error(r, -E2BIG,
                            "connection %zu: its client stream spans more than %llu "
                            "bytes from the SYN (the limit)",
                            (size_t)(b - r->flows) + 1, (unsigned long long)r->lim->max_flow_bytes);
    if (stream_finish(&b->stream, client_base, f) < 0)
        return reader_error(r, -ENOMEM, "out of memory");
    flow_fill_cuts(r, b, client_base);
    /* The server's stream starts after its SYN; mid-connection, at the lowest byte seen or
     * acknowledged. Its FIN counts one sequence number: not a byte. */
    server_base = b->server_syn ? b->server_isn_off + 1 : INT64_MAX;
    if (!b->server_syn && b->server_data)
        server_base = b->server_lo;
    if (!b->server_syn && b->have_ack && b->ack_lo < server_base)
        server_base = b->ack_lo;
    if (server_base == INT64_MAX)
        server_base = 0;
    server_hi = b->server_data ? b->server_hi : server_base;
    if (b->have_ack && b->ack_hi > server_hi)
        server_hi = b->ack_hi;
    f->server_bytes = clamp_bytes(server_hi - server_base);
    flow_classify(b, server_base, r->last_ts);
    if (f->server_bytes_before_end > f->server_bytes)
        f->server_bytes_before_end = f->server_bytes;
    /* Window scaling applies only when both sides offered it in the handshake. */
    if (b->client_syn && b->server_syn && b->max_window > 0)
        f->client_window = b->client_wscale >= 0 && b->server_wscale >= 0
                               ? b->max_window << b->client_wscale
                               : b->max_window;
    return 0;
}

/* ---- 4. the two passes and the public API ----------------------------------------------- */

struct source {
    const char *path; /* a file, or: */
    const void *data;
    size_t len;
};

static pcap_t *source_open(const struct source *src, char *errbuf)
{
    FILE *fp;
    pcap_t *p;

    if (src->path)
        return pcap_open_offline(src->path, errbuf);
    fp = fmemopen((void *)src->data, src->len, "rb");
    if (!fp) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "fmemopen: %s", strerror(errno));
        return NULL;
    }
    p = pcap_fopen_offline(fp, errbuf);
    if (!p)
        fclose(fp);
    return p;
}

static uint64_t packet_time(const struct pcap_pkthdr *h)
{
    return (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
}

/* Read every packet; pass 1 checks them and notes listeners, pass 2 builds the flows. */
static int reader_pass(struct reader *r, pcap_t *p, int pass)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc;

    r->packet = 0;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        struct tcp_packet t;
        char why[256];
        struct parse_ctx c = {data, h->caplen, h->len, why, sizeof(why)};
        uint64_t ts = packet_time(h);
        enum parse_result res;

        r->packet++;
        if (!r->have_first) {
            r->first_ts = ts;
            r->have_first = true;
        }
        r->last_ts = ts > r->last_ts ? ts : r->last_ts;
        if (h->caplen > h->len)
            return reader_error(r, -EINVAL,
                                "corrupt record: %u bytes captured of a %u-byte "
                                "packet",
                                h->caplen, h->len);
        res = parse_packet(&c, r->linktype, &t);
        if (res == PARSE_BAD)
            return reader_error(r, -EINVAL, "%s", why);
        if (res == PARSE_SKIP) {
            r->skipped += pass == 2;
            continue;
        }
        if (pass == 1) {
            r->tcp_packets++;
            note_listener(r, &t);
        } else if (reader_tcp_packet(r, &t, h, ts) < 0) {
            return r->rc;
        }
    }
    if (rc == PCAP_ERROR) {
        r->packet++;
        /* cut in the middle of a packet: its whole predecessors are read (unless strict) */
        if (r->lim->strict || r->packet == 1 || !strstr(pcap_geterr(p), "truncated"))
            return reader_error(r, -EINVAL, "%s", pcap_geterr(p));
        if (pass == 1)
            reader_warn(r,
                        "packet %llu: the file ends in the middle of it (%s): the %llu whole "
                        "packets before it are replayed, this one is not",
                        (unsigned long long)r->packet, pcap_geterr(p),
                        (unsigned long long)r->packet - 1);
        r->truncated_packet = r->packet;
        r->packet--;
    }
    return 0;
}

static void reader_free(struct reader *r)
{
    for (size_t i = 0; i < r->nflows; i++) {
        stream_free(&r->flows[i].stream);
        free(r->flows[i].cuts);
        free(r->flows[i].out.data);
        free(r->flows[i].out.segs);
    }
    free(r->flows);
    free(r->table);
    free(r->warnings);
    r->warnings = NULL;
    r->flows = NULL;
    r->table = NULL;
    r->nflows = 0;
}

static void set_name(struct replay_set *out, const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    char *dot;

    snprintf(out->name, sizeof(out->name), "%s", base ? base + 1 : path ? path : "capture");
    dot = strrchr(out->name, '.');
    if (dot && dot != out->name &&
        (strcmp(dot, ".pcap") == 0 || strcmp(dot, ".pcapng") == 0 || strcmp(dot, ".cap") == 0))
        *dot = '\0';
}

/* Pass 2 over a second handle, then hand the flows over to out. */
static int reader_build(struct reader *r, const struct source *src, struct replay_set *out)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = source_open(src, errbuf);
    int rc;

    if (!p) {
        snprintf(r->err, r->errlen, "cannot reopen the capture: %s", errbuf);
        return -EINVAL;
    }
    r->have_first = false;
    rc = reader_pass(r, p, 2);
    pcap_close(p);
    if (rc < 0)
        return rc;
    r->packet = 0; /* errors from here on are about the whole capture */
    if (r->nflows == 0)
        return reader_error(r, -EINVAL, "no TCP connection with port %u among the %llu packets",
                            r->lim->server_port, (unsigned long long)out->packets);
    out->flows = calloc(r->nflows, sizeof(*out->flows));
    if (!out->flows)
        return reader_error(r, -ENOMEM, "out of memory");
    for (size_t i = 0; i < r->nflows; i++) {
        struct flow_build *b = &r->flows[i];
        rc = flow_finish(r, b);
        if (rc < 0)
            return rc;
        stream_free(&b->stream);
        out->flows[i] = b->out;
        out->nflows = i + 1; /* replay_set_free() frees what was moved, if a later one fails */
        memset(&b->out, 0, sizeof(b->out));
    }
    if (r->cut_flows > LISTED_CUT_FLOWS)
        reader_warn(r,
                    "%zu connections in all had client bytes cut off by the snap length (the "
                    "first %d are above; --dump lists every one): %llu bytes, %llu filled by "
                    "completing HTTP request heads, %llu sent as zeros",
                    r->cut_flows, LISTED_CUT_FLOWS, (unsigned long long)r->cut_bytes,
                    (unsigned long long)r->cut_head_bytes,
                    (unsigned long long)(r->cut_bytes - r->cut_head_bytes));
    out->skipped_packets = r->skipped;
    out->truncated_packet = r->truncated_packet;
    out->warnings = r->warnings;
    r->warnings = NULL;
    return 0;
}

static int pcap_flows_read(const struct source *src, const struct pcap_flows_limits *lim,
                           struct replay_set *out, char *err, size_t errlen)
{
    struct pcap_flows_limits l = lim ? *lim : (struct pcap_flows_limits){0};
    struct reader r = {.lim = &l, .err = err, .errlen = errlen};
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p;
    int rc;

    memset(out, 0, sizeof(*out));
    out->speed = 1.0;
    set_name(out, src->path);
    l.max_flows = l.max_flows ? l.max_flows : PCAP_FLOWS_DEFAULT_MAX_FLOWS;
    l.max_flow_bytes = l.max_flow_bytes ? l.max_flow_bytes : PCAP_FLOWS_DEFAULT_MAX_FLOW_BYTES;
    l.max_total_bytes = l.max_total_bytes ? l.max_total_bytes : PCAP_FLOWS_DEFAULT_MAX_TOTAL_BYTES;
    p = source_open(src, errbuf);
    if (!p) {
        /* libpcap says why in words only: tell a missing file from a bad one */
        bool missing = src->path && strstr(errbuf, "No such file");
        bool denied = src->path && strstr(errbuf, "Permission denied");
        if (missing || denied)
            snprintf(err, errlen, "%s", errbuf);
        else
            snprintf(err, errlen, "not a readable pcap or pcapng file: %s", errbuf);
        return missing ? -ENOENT : denied ? -EACCES : -EINVAL;
    }
    r.linktype = pcap_datalink(p);
    r.snaplen = pcap_snapshot(p);
    out->linktype = r.linktype;
    if (!linktype_supported(r.linktype)) {
        const char *name = pcap_datalink_val_to_name(r.linktype);
        snprintf(err, errlen,
                 "unsupported link type %d (%s): connfault reads Ethernet, Linux cooked (SLL, "
                 "SLL2), loopback (NULL, LOOP) and raw IP captures",
                 r.linktype, name ? name : "unknown");
        pcap_close(p);
        return -EINVAL;
    }
    rc = reader_pass(&r, p, 1);
    out->packets = r.packet;
    out->duration_us = r.last_ts > r.first_ts ? r.last_ts - r.first_ts : 0;
    pcap_close(p);
    if (rc == 0 && (r.packet == 0 || r.tcp_packets == 0)) {
        r.packet = 0; /* about the whole file, not one packet */
        rc = r.tcp_packets == 0 && out->packets > 0
                 ? reader_error(&r, -EINVAL, "no TCP packets among the %llu packets",
                                (unsigned long long)out->packets)
                 : reader_error(&r, -EINVAL, "the capture holds no packets");
    }
    if (rc == 0)
        rc = reader_build(&r, src, out);
    reader_free(&r);
    if (rc < 0)
        replay_set_free(out);
    return rc;
}

int pcap_flows_read_file(const char *path, const struct pcap_flows_limits *lim,
                         struct replay_set *out, char *err, size_t errlen)
{
    struct source src = {.path = path};

    return pcap_flows_read(&src, lim, out, err, errlen);
}

int pcap_flows_read_memory(const void *data, size_t len, const struct pcap_flows_limits *lim,
                           struct replay_set *out, char *err, size_t errlen)
{
    struct source src = {.data = data, .len = len};

    if (len == 0) {
        memset(out, 0, sizeof(*out));
        snprintf(err, errlen, "not a readable pcap or pcapng file: empty");
        return -EINVAL;
    }
    return pcap_flows_read(&src, lim, out, err, errlen);
}

void replay_set_free(struct replay_set *set)
{
    for (size_t i = 0; i < set->nflows; i++) {
        free(set->flows[i].data);
        free(set->flows[i].segs);
    }
    free(set->flows);
    free(set->warnings);
    set->flows = NULL;
    set->warnings = NULL;
    set->nflows = 0;
}

const char *flow_end_name(enum flow_end end)
{
    switch (end) {
    case FLOW_END_CLOSE:
        return "close";
    case FLOW_END_HALF_CLOSE:
        return "half-close";
    case FLOW_END_RESET:
        return "reset";
    case FLOW_END_STOP_READING:
        return "stop-reading";
    case FLOW_END_BY_SERVER:
        return "by-server";
    case FLOW_END_SILENT:
        return "silent";
    }
    return "?";
}

static void format_endpoint(char *buf, size_t len, int family, const uint8_t *addr, uint16_t port)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    inet_ntop(family, addr, ip, sizeof(ip));
    snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

void pcap_flows_print(FILE *out, const struct replay_set *set)
{
    const char *link = pcap_datalink_val_to_name(set->linktype);

    fprintf(out,
            "%s: %llu packets (%llu not TCP or not on the server port), %zu TCP "
            "connections, %.6f s, link type %s\n",
            set->name, (unsigned long long)set->packets, (unsigned long long)set->skipped_packets,
            set->nflows, (double)set->duration_us / 1e6, link ? link : "?");
    if (set->truncated_packet)
        fprintf(out, "the file ends in the middle of packet %llu: the packets before it are read\n",
                (unsigned long long)set->truncated_packet);
    fprintf(out, "frames and bytes are counted as tshark -z conv,tcp does (whole frames, "
                 "retransmissions included); data is the payload stream each way\n");
    for (size_t i = 0; i < set->nflows; i++) {
        const struct replay_flow *f = &set->flows[i];
        char client[64], server[64];
        format_endpoint(client, sizeof(client), f->family, f->client_addr, f->client_port);
        format_endpoint(server, sizeof(server), f->family, f->server_addr, f->server_port);
        fprintf(out,
                "%4zu  %s -> %s  frames %llu -> / %llu <-  bytes %llu -> / %llu <-  start %.6f "
                "duration %.6f  data %llu -> / %llu <-  segments %zu  end %s at %.6f (after "
                "%llu bytes in)%s",
                i + 1, client, server, (unsigned long long)f->frames_to_server,
                (unsigned long long)f->frames_to_client,
                (unsigned long long)f->frame_bytes_to_server,
                (unsigned long long)f->frame_bytes_to_client, (double)f->start_us / 1e6,
                (double)f->duration_us / 1e6, (unsigned long long)f->data_len,
                (unsigned long long)f->server_bytes, f->nsegs, flow_end_name(f->end),
                (double)f->end_us / 1e6, (unsigned long long)f->server_bytes_before_end,
                f->saw_syn ? "" : "  (began before the capture)");
        if (f->missing_bytes)
            fprintf(out, "  (%llu bytes never captured: replayed as zeros)",
                    (unsigned long long)f->missing_bytes);
        if (f->cut_bytes)
            fprintf(out,
                    "  (%llu bytes in %llu packets cut by the snap length: %llu filled "
                    "completing %llu request heads, %llu zeros)",
                    (unsigned long long)f->cut_bytes, (unsigned long long)f->cut_packets,
                    (unsigned long long)f->cut_head_bytes, (unsigned long long)f->cut_heads,
                    (unsigned long long)(f->cut_bytes - f->cut_head_bytes));
        fputc('\n', out);
    }
}
