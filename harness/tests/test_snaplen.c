/* test_snaplen: captures as users have them. Client data cut by a snap length is filled
 * (HTTP request heads completed to a valid request of the same length, other bytes zeros),
 * a file cut mid-packet gives its whole packets, and --strict keeps the refusal.
 *
 * Two halves: small captures built here, one cut at a time, checked byte for byte; and the
 * fixtures in harness/tests/data/snaplen/ (tcpdump -s 96 / -s 128 of python and curl clients
 * against the reference server, see make.sh there), whose filled requests the reference
 * server must answer with 200s, through the library and through `connfault replay`. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcap_flows.h"
#include "support.h"

#define DATA_DIR CONNFAULT_SOURCE_DIR "/harness/tests/data/snaplen"

static char errbuf[512];

/* ---- captures built here ---------------------------------------------------------------- */

/* A pcap in memory: Ethernet, 10.0.0.1:PORT -> 10.0.0.2:80, a handshake, then client
 * packets; PORT is 40000, and others for more connections (mc_connect). */
struct minicap {
    uint8_t *buf;
    size_t len;
    uint32_t seq;     /* the client's next sequence number */
    uint32_t packets; /* timestamps: one millisecond apart */
    uint16_t port;    /* the client's */
};

static void mc_put(struct minicap *m, const void *p, size_t n)
{
    m->buf = ts_nonnull(realloc(m->buf, m->len + n));
    memcpy(m->buf + m->len, p, n);
    m->len += n;
}

static void be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
    be16(p, (uint16_t)(v >> 16));
    be16(p + 2, (uint16_t)v);
}

/* One frame; captured < 0: all of it, else that many payload bytes. */
static void mc_packet(struct minicap *m, bool to_server, uint8_t flags, uint32_t seq,
                      const char *payload, size_t n, int captured)
{
    uint8_t f[54 + 4096] = {0};
    uint32_t rec[4] = {m->packets / 1000, (m->packets % 1000) * 1000, 0, (uint32_t)(54 + n)};

    ck_assert_uint_le(n, 4096);
    be16(f + 12, 0x0800);
    f[14] = 0x45;
    be16(f + 16, (uint16_t)(40 + n));
    f[22] = 64;
    f[23] = IPPROTO_TCP;
    be32(f + 26 + (to_server ? 0 : 4), 0x0a000001);
    be32(f + 26 + (to_server ? 4 : 0), 0x0a000002);
    be16(f + 34 + (to_server ? 0 : 2), m->port);
    be16(f + 34 + (to_server ? 2 : 0), 80);
    be32(f + 38, seq);
    be32(f + 42, to_server ? 5001 : m->seq);
    f[46] = 0x50;
    f[47] = flags;
    be16(f + 48, 65535);
    if (n > 0) /* payload may be NULL for a bare SYN, FIN or ACK */
        memcpy(f + 54, payload, n);
    rec[2] = captured < 0 ? rec[3] : (uint32_t)(54 + captured);
    mc_put(m, rec, sizeof(rec));
    mc_put(m, f, rec[2]);
    m->packets++;
}

/* A new connection from port: the handshake. */
static void mc_connect(struct minicap *m, uint16_t port)
{
    m->port = port;
    m->seq = 1000;
    mc_packet(m, true, 0x02, m->seq++, NULL, 0, -1); /* SYN */
    mc_packet(m, false, 0x12, 5000, NULL, 0, -1);    /* SYN-ACK */
}

static void mc_open(struct minicap *m)
{
    const uint32_t hdr[6] = {0xa1b2c3d4, 2 | 4 << 16, 0, 0, 65535, 1 /* Ethernet */};

    memset(m, 0, sizeof(*m));
    mc_put(m, hdr, sizeof(hdr));
    mc_connect(m, 40000);
}

/* A client packet of text, of which captured bytes are in the capture (< 0: all). */
static void mc_send(struct minicap *m, const char *text, int captured)
{
    mc_packet(m, true, 0x18, m->seq, text, strlen(text), captured);
    m->seq += (uint32_t)strlen(text);
}

static int mc_read(struct minicap *m, bool strict, struct replay_set *s)
{
    struct pcap_flows_limits lim = {.strict = strict};
    int rc = pcap_flows_read_memory(m->buf, m->len, &lim, s, errbuf, sizeof(errbuf));

    free(m->buf);
    m->buf = NULL;
    return rc;
}

/* The one flow of a capture of one packet, text cut after captured bytes. */
static void read_one_cut(const char *text, int captured, struct replay_set *s)
{
    struct minicap m;

    mc_open(&m);
    mc_send(&m, text, captured);
    ck_assert_msg(mc_read(&m, false, s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s->nflows, 1);
    ck_assert_uint_eq(s->flows[0].data_len, strlen(text)); /* the original length, always */
    ck_assert_uint_eq(s->flows[0].cut_bytes, strlen(text) - (size_t)captured);
    ck_assert_uint_eq(s->flows[0].cut_packets, 1);
}

/* The flow's stream is want, and want is a whole head (its last four bytes end it). */
static void expect_head(const struct replay_set *s, const char *want_start, const char *want_end)
{
    const struct replay_flow *f = &s->flows[0];
    size_t ne = strlen(want_end);
    const char *d = (const char *)f->data;

    ck_assert_msg(f->data_len >= strlen(want_start) &&
                      memcmp(d, want_start, strlen(want_start)) == 0,
                  "stream is '%.*s'", (int)f->data_len, d);
    ck_assert_msg(f->data_len >= ne && memcmp(d + f->data_len - ne, want_end, ne) == 0,
                  "stream is '%.*s'", (int)f->data_len, d);
    ck_assert_uint_eq(f->cut_head_bytes, f->cut_bytes);
    ck_assert_uint_eq(f->cut_heads, 1);
    ck_assert_ptr_nonnull(s->warnings);
    ck_assert_msg(strstr(s->warnings, "in packet(s) 3 (") != NULL, "%s", s->warnings);
}

static const char head[] = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n"
                           "User-Agent: a-client-with-a-long-name/1.0\r\n\r\n";

#define ACCEPT_TEXT "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
#define ESCAPE_TEXT                                                                                \
    "GET /a%20b HTTP/1.1\r\nHost: h\r\nAccept: text/html,application/xhtml+xml\r\n\r\n"

/* Where the cut falls (text, head if NULL, cut after captured bytes), what finishes it. */
static const struct line_case {
    const char *text;
    int captured;
    const char *start, *end;
} line_cases[] = {
    {NULL, 2, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: xx", "xx\r\n\r\n"},
    {NULL, 4, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: xx", "xx\r\n\r\n"},
    {NULL, 12, "GET /index.h HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: x", "x\r\n\r\n"},
    {NULL, 19, "GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: ", "x\r\n\r\n"},
    {NULL, 25, "GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: ", "x\r\n\r\n"},
    {NULL, 28, "GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: ", "x\r\n\r\n"},
    {NULL, 31, "GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: ", "x\r\n\r\n"},
    {NULL, 35, "GET /index.html HTTP/1.1\r\nHost: exa\r\nX-Connfault-Pad: x", "x\r\n\r\n"},
    /* at a line start: the next line is the padding */
    {NULL, 45, "GET /index.html HTTP/1.1\r\nHost: example.com\r\nX-Connfault-Pad: x", "x\r\n\r\n"},
    {NULL, 53, "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Age: x\r\nX-Connfault-Pad:",
     "x\r\n\r\n"},
    /* 1 to 3 bytes of padding: trailing spaces on the last header line (OWS), 4: "X:" */
    {ACCEPT_TEXT, 33, "GET / HTTP/1.1\r\nHost: h\r\nAccept:  ", "Accept:    \r\n\r\n"},
    {ACCEPT_TEXT, 29, "GET / HTTP/1.1\r\nHost: h\r\nAcce: x\r\nX:", "X:\r\n\r\n"},
    /* a target cut in a %XX escape: made a whole one */
    {ESCAPE_TEXT, 7, "GET /a%25 HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: ", "\r\n\r\n"},
    {ESCAPE_TEXT, 8, "GET /a%20 HTTP/1.1\r\nHost: localhost\r\nX-Connfault-Pad: ", "\r\n\r\n"},
};

START_TEST(request_heads_are_completed)
{
    const struct line_case *c = &line_cases[_i];
    struct replay_set s;

    read_one_cut(c->text ? c->text : head, c->captured, &s);
    expect_head(&s, c->start, c->end);
    replay_set_free(&s);
}
END_TEST

/* A head cut in its Content-Length: the line is renamed (its value may be cut short) and the
 * body that follows gets a Content-Length of its real length; the next request is intact. */
START_TEST(body_after_a_cut_head_gets_its_length)
{
    static const char post[] = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n"
                               "X-Something-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    static const char next[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct minicap m;
    struct replay_set s;

    mc_open(&m);
    mc_send(&m, post, 49); /* ...Content-Length: 1 */
    mc_send(&m, "0123456789", -1);
    mc_send(&m, next, -1);
    ck_assert_msg(mc_read(&m, false, &s) == 0, "%s", errbuf);
    const char *d = (const char *)s.flows[0].data;
    size_t n = strlen(post);
    ck_assert_uint_eq(s.flows[0].data_len, n + 10 + strlen(next));
    static const char want[] = "POST /upload HTTP/1.1\r\nHost: h\r\nX-ntent-Length: 1\r\n"
                               "Content-Length: 10\r\nX-Connfault-Pad: ";
    ck_assert_msg(memcmp(d, want, strlen(want)) == 0, "%.*s", (int)n, d);
    ck_assert_msg(memcmp(d + n - 4, "\r\n\r\n0123456789", 14) == 0, "%.*s", (int)n + 10, d);
    ck_assert_int_eq(memcmp(d + n + 10, next, strlen(next)), 0);
    replay_set_free(&s);
}
END_TEST

/* Where the cut is not in a request head, or the head cannot be completed: zeros. */
START_TEST(elsewhere_zeros)
{
    static const char body[] = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n"
                               "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    static const char tls[] = "\x16\x03\x01\x02\x10\x01\x02\x03\x04 random bytes here";
    static const char cr[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    /* cut after a header line's CR, 2 bytes to pad: no room for spaces before a CRLF */
    static const char crlf[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\nxy";
    const char *texts[] = {body, tls, cr, crlf};
    const int captured[] = {(int)strlen(body) - 30, 5, (int)strlen(cr) - 1, 24};
    struct replay_set s;

    for (int i = 0; i < 4; i++) {
        read_one_cut(texts[i], captured[i], &s);
        const struct replay_flow *f = &s.flows[0];
        ck_assert_uint_eq(f->cut_head_bytes, 0);
        for (uint64_t b = (uint64_t)captured[i]; b < f->data_len; b++)
            ck_assert_msg(f->data[b] == 0, "case %d: byte %llu is %d", i, (unsigned long long)b,
                          f->data[b]);
        ck_assert_msg(strstr(s.warnings, "0 filled by completing 0 HTTP request head(s)") != NULL,
                      "%s", s.warnings);
        replay_set_free(&s);
    }
}
END_TEST

START_TEST(strict_refuses_and_truncated_files_are_read)
{
    struct minicap m;
    struct replay_set s;

    mc_open(&m);
    mc_send(&m, head, 10);
    ck_assert_int_eq(mc_read(&m, true, &s), -EINVAL);
    ck_assert_msg(strstr(errbuf, "packet 3: client data cut off by the capture's snap length") ==
                      errbuf,
                  "%s", errbuf);

    for (int strict = 0; strict < 2; strict++) {
        mc_open(&m);
        mc_send(&m, head, -1);
        mc_send(&m, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", -1);
        m.len -= 5; /* the file ends in the middle of packet 4 */
        int rc = mc_read(&m, strict, &s);
        if (strict) {
            ck_assert_int_eq(rc, -EINVAL);
            ck_assert_msg(strstr(errbuf, "packet 4: truncated dump file") == errbuf, "%s", errbuf);
            continue;
        }
        ck_assert_msg(rc == 0, "%s", errbuf);
        ck_assert_uint_eq(s.packets, 3);
        ck_assert_uint_eq(s.truncated_packet, 4);
        ck_assert_uint_eq(s.flows[0].data_len, strlen(head));
        ck_assert_msg(strstr(s.warnings, "packet 4: the file ends in the middle of it") ==
                          s.warnings,
                      "%s", s.warnings);
        replay_set_free(&s);
    }
}
END_TEST

/* A cut packet sent again (cut again, or whole): the first copy's fill stands, counted once. */
START_TEST(retransmitted_cut_counts_once)
{
    for (int whole = 0; whole < 2; whole++) {
        struct minicap m;
        struct replay_set s;
        mc_open(&m);
        mc_send(&m, head, 20);
        mc_packet(&m, true, 0x18, 1001, head, strlen(head), whole ? -1 : 40);
        ck_assert_msg(mc_read(&m, false, &s) == 0, "%s", errbuf);
        ck_assert_uint_eq(s.flows[0].cut_packets, 1);
        ck_assert_uint_eq(s.flows[0].cut_bytes, strlen(head) - 20);
        ck_assert_uint_eq(s.flows[0].cut_heads, 1);
        ck_assert_uint_eq(s.flows[0].nsegs, 1);
        replay_set_free(&s);
    }
}
END_TEST

/* Many cut connections: ten warnings of their own, then one line that sums up the rest. */
START_TEST(many_cut_connections_are_summed_up)
{
    struct minicap m;
    struct replay_set s;
    unsigned lines = 0;

    mc_open(&m);
    mc_send(&m, head, 30);
    for (uint16_t i = 1; i < 12; i++) {
        mc_connect(&m, (uint16_t)(40000 + i));
        mc_send(&m, head, 30);
    }
    ck_assert_msg(mc_read(&m, false, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.nflows, 12);
    for (const char *p = s.warnings; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    ck_assert_uint_eq(lines, 11);
    ck_assert_msg(strstr(s.warnings, "connection 10 (10.0.0.1:40009 -> 10.0.0.2:80): 60 client "
                                     "bytes") != NULL &&
                      strstr(s.warnings, "connection 11 (") == NULL,
                  "%s", s.warnings);
    ck_assert_msg(strstr(s.warnings, "12 connections in all had client bytes cut off by the "
                                     "snap length (the first 10 are above; --dump lists every "
                                     "one): 720 bytes, 720 filled") != NULL,
                  "%s", s.warnings);
    replay_set_free(&s);
}
END_TEST

/* ---- the fixtures ----------------------------------------------------------------------- */

static const struct fixture {
    const char *name;
    size_t nflows;
    unsigned requests[2];       /* per flow */
    unsigned long long cut[2];  /* client bytes the snap length cut, per flow */
    const char *strict_message; /* what --strict says */
} fixtures[] = {
    {"python-s96", 2, {3, 1}, {245, 98}, "client data cut off by the capture's snap length"},
    {"python-s128", 2, {3, 1}, {149, 66}, "client data cut off by the capture's snap length"},
    {"curl-s96", 2, {2, 1}, {150, 95}, "client data cut off by the capture's snap length"},
    {"curl-s128", 2, {2, 1}, {86, 63}, "client data cut off by the capture's snap length"},
    {"curl-s128-cut", 2, {2, 1}, {86, 63}, "packet 22: truncated dump file"},
};

static void fixture_path(char *buf, size_t len, const struct fixture *fx)
{
    snprintf(buf, len, "%s/%s.pcap", DATA_DIR, fx->name);
}

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int connect_to(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    close(fd);
    return -1;
}

/* The reference server on a free port, answering by the time this returns. It dies with the
 * test's process (PR_SET_PDEATHSIG), also when a failed assertion ends that. */
static uint16_t start_server(pid_t *server)
{
    pid_t parent = getpid();
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    char port[8];
    int fd = socket(AF_INET, SOCK_STREAM, 0), c = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
    *server = fork();
    ck_assert_int_ge(*server, 0);
    if (*server == 0) {
        int null = open("/dev/null", O_WRONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (null >= 0)
            dup2(null, STDOUT_FILENO); /* its "listening on" line */
        if (getppid() == parent)
            execl(CONNFAULT_SERVER_BIN, CONNFAULT_SERVER_BIN, "--port", port, "-q", (char *)NULL);
        _exit(127);
    }
    for (long long end = now_ms() + 10000; c < 0 && now_ms() < end;) {
        c = connect_to(ntohs(a.sin_port));
        if (c < 0)
            poll(NULL, 0, 20); /* until it listens: bounded by the deadline */
    }
    ck_assert_msg(c >= 0, "the reference server did not listen on port %s in 10 s", port);
    close(c);
    return ntohs(a.sin_port);
}

static void stop_server(pid_t server)
{
    int status;

    kill(server, SIGKILL);
    ck_assert_int_eq(waitpid(server, &status, 0), server);
}

static unsigned count(const char *hay, size_t n, const char *needle)
{
    unsigned k = 0;
    size_t nl = strlen(needle);

    for (size_t i = 0; i + nl <= n; i++)
        k += memcmp(hay + i, needle, nl) == 0;
    return k;
}

/* Send a flow's stream as the replay would (its bytes, in one go) and read the answers into
 * buf until want response heads have ended (bodies here are letters: no blank line in them)
 * or 10 s pass. Returns the bytes read; buf is NUL-terminated. */
static size_t converse(uint16_t port, const struct replay_flow *f, unsigned want, char *buf,
                       size_t cap)
{
    size_t n = 0;
    int fd = connect_to(port);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, f->data, f->data_len, MSG_NOSIGNAL), (ssize_t)f->data_len);
    for (long long end = now_ms() + 10000; count(buf, n, "\r\n\r\n") < want && now_ms() < end;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return n;
}

/* The responses to a flow's want requests, and the 200s among them in *ok. */
static unsigned ask(uint16_t port, const struct replay_flow *f, unsigned want, unsigned *ok)
{
    static char buf[65536];
    size_t n = converse(port, f, want, buf, sizeof(buf));

    *ok = count(buf, n, "HTTP/1.1 200 OK\r\n");
    return count(buf, n, "HTTP/1.");
}

/* Through the library: the flows, their fill, and the reference server's answers. */
START_TEST(fixtures_answered_with_200s)
{
    const struct fixture *fx = &fixtures[_i];
    char path[512];
    struct replay_set s;
    pid_t server;
    uint16_t port = start_server(&server);

    fixture_path(path, sizeof(path), fx);
    ck_assert_msg(pcap_flows_read_file(path, NULL, &s, errbuf, sizeof(errbuf)) == 0, "%s: %s",
                  fx->name, errbuf);
    ck_assert_uint_eq(s.nflows, fx->nflows);
    for (size_t i = 0; i < s.nflows; i++) {
        const struct replay_flow *f = &s.flows[i];
        unsigned ok, got;
        ck_assert_uint_eq(f->cut_bytes, fx->cut[i]);
        ck_assert_uint_eq(f->cut_head_bytes, fx->cut[i]); /* every cut was in a head */
        ck_assert_uint_eq(f->cut_heads, fx->requests[i]);
        got = ask(port, f, fx->requests[i], &ok);
        ck_assert_msg(got == fx->requests[i] && ok == got,
                      "%s flow %zu: %u responses, %u of them 200, for %u requests:\n%.*s", fx->name,
                      i + 1, got, ok, fx->requests[i], (int)f->data_len, (const char *)f->data);
    }
    replay_set_free(&s);
    stop_server(server);
}
END_TEST

/* Through the CLI: --dump shows the fill, replay passes, --strict refuses as before. */
START_TEST(fixtures_through_the_cli)
{
    const struct fixture *fx = &fixtures[_i];
    char path[512], want[160];
    struct ts_proc p;

    fixture_path(path, sizeof(path), fx);
    ck_assert_int_eq(ts_run(&p, TS_ARGV(CONNFAULT_BIN, "replay", "--dump", path), NULL), 0);
    ck_assert_msg(p.status == 0, "%s: status %d\n%s", fx->name, p.status, p.err);
    for (size_t i = 0; i < fx->nflows; i++) {
        snprintf(want, sizeof(want),
                 "(%llu bytes in %u packets cut by the snap length: %llu "
                 "filled completing %u request heads, 0 zeros)",
                 fx->cut[i], fx->requests[i], fx->cut[i], fx->requests[i]);
        ck_assert_msg(strstr(p.out, want) != NULL, "%s: no '%s' in\n%s", fx->name, want, p.out);
    }
    ck_assert_msg(strstr(p.err, "warning: connection 1 (127.0.0.1:") != NULL, "%s", p.err);
    ts_proc_free(&p);

    ck_assert_int_eq(ts_run(&p, TS_ARGV(CONNFAULT_BIN, "replay", "--strict", path), NULL), 0);
    ck_assert_msg(p.status == 2 && strstr(p.err, fx->strict_message) != NULL,
                  "%s --strict: status %d\n%s", fx->name, p.status, p.err);
    ts_proc_free(&p);

    ck_assert_int_eq(ts_run(&p, TS_ARGV(CONNFAULT_BIN, "replay", "--speed", "max", path),
                            &(struct ts_run_opts){.timeout_ms = 120000}),
                     0);
    ck_assert_msg(p.status == 0 && strstr(p.out, "1 passed, 0 failed") != NULL,
                  "%s: status %d\n%s\n%s", fx->name, p.status, p.out, p.err);
    ts_proc_free(&p);
}
END_TEST

/* The status code of the server's answer to a stream (0: none within 10 s). */
static int status_of(uint16_t port, const struct replay_flow *f)
{
    char buf[4096];
    int code = 0;

    converse(port, f, 1, buf, sizeof(buf));
    sscanf(buf, "HTTP/1.%*c %d", &code);
    return code;
}

/* Every cut point of a few real request heads: each one completed is a request the reference
 * server takes (200, or 404 for a target cut short), never a 400; only a few cut points (too
 * little room at the end: 2 of each head's 49-104) are left as zeros. */
START_TEST(every_cut_point_gives_a_valid_request)
{
    static const char *const heads[] = {
        "GET /bytes/10 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n"
        "Accept: */*\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: identity\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.0\r\nUser-Agent: Python-urllib/3.11\r\n\r\n",
    };
    pid_t server;
    uint16_t port = start_server(&server);

    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        unsigned zeros = 0;
        for (int cap = 1; cap < (int)strlen(heads[h]); cap++) {
            struct replay_set s;
            read_one_cut(heads[h], cap, &s);
            const struct replay_flow *f = &s.flows[0];
            if (f->cut_head_bytes == 0) {
                zeros++;
            } else {
                int code = status_of(port, f);
                ck_assert_msg(code == 200 || code == 404, "head %zu cut at %d: %d for\n%.*s", h,
                              cap, code, (int)f->data_len, (const char *)f->data);
            }
            replay_set_free(&s);
        }
        ck_assert_msg(zeros <= 2, "head %zu: %u cut points left as zeros", h, zeros);
    }
    stop_server(server);
}
END_TEST

static Suite *snaplen_suite(void)
{
    Suite *s = suite_create("snaplen");
    TCase *fill = tcase_create("fill");
    TCase *fix = tcase_create("fixtures");
    int nfix = (int)(sizeof(fixtures) / sizeof(fixtures[0]));

    tcase_add_loop_test(fill, request_heads_are_completed, 0,
                        (int)(sizeof(line_cases) / sizeof(line_cases[0])));
    tcase_add_test(fill, body_after_a_cut_head_gets_its_length);
    tcase_add_test(fill, elsewhere_zeros);
    tcase_add_test(fill, strict_refuses_and_truncated_files_are_read);
    tcase_add_test(fill, many_cut_connections_are_summed_up);
    tcase_add_test(fill, retransmitted_cut_counts_once);
    tcase_add_loop_test(fix, fixtures_answered_with_200s, 0, nfix);
    tcase_add_test(fix, every_cut_point_gives_a_valid_request);
    tcase_add_loop_test(fix, fixtures_through_the_cli, 0, nfix);
    tcase_set_timeout(fix, 300);
    suite_add_tcase(s, fill);
    suite_add_tcase(s, fix);
    return s;
}

int main(void)
{
    return ts_run_suite(snaplen_suite());
}
