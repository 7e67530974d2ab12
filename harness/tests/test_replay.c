/* Capture and replay.
 *
 * 1. pcap_flows on captures crafted here packet by packet (pcap_open_dead + pcap_dump_fopen
 *    into memory), for every link type it reads: stream rebuilding (retransmissions, overlaps,
 *    out of order, holes, mid-connection starts, sequence wrap-around, IPv6 extension
 *    headers), which side is the server, how each flow ended, and bad input (each error names
 *    the packet).
 * 2. `connfault replay` of the shipped captures (captures/) against the reference server:
 *    each passes on the correct server and fails the bug mode it was made to show, on the
 *    check that catches it; `--dump` and `run --capture` end to end. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pcap_flows.h"
#include "support.h"

#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif
#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif
#ifndef CONNFAULT_SOURCE_DIR
#define CONNFAULT_SOURCE_DIR "."
#endif

#define SYN 0x02
#define FIN 0x01
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

#define ZERO_WINDOW (-1)

/* ---- crafting captures ------------------------------------------------------------------ */

struct pkt {
    int family;
    const char *src, *dst;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    int win; /* 0: 65535; ZERO_WINDOW: a closed window */
    const char *data;
    size_t len;
    uint64_t t_us;
    int wscale;       /* -1: no option */
    bool ext_headers; /* IPv6: a hop-by-hop and a destination options header */
};

struct capfile {
    int linktype;
    pcap_t *dead;
    pcap_dumper_t *dumper;
    FILE *f;
    char *buf;
    size_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static size_t build_link(int linktype, int family, uint8_t *out)
{
    uint16_t ethertype = family == AF_INET ? 0x0800 : 0x86dd;
    uint32_t af = family == AF_INET ? 2 : 10;

    switch (linktype) {
    case DLT_EN10MB:
        memset(out, 0, 12);
        put16(out + 12, ethertype);
        return 14;
    case DLT_LINUX_SLL:
        memset(out, 0, 14);
        put16(out + 14, ethertype);
        return 16;
    case DLT_LINUX_SLL2:
        memset(out, 0, 20);
        put16(out, ethertype);
        return 20;
    case DLT_NULL: /* the capturing host's byte order: here little-endian */
        out[0] = (uint8_t)af;
        out[1] = out[2] = out[3] = 0;
        return 4;
    case DLT_LOOP:
        put32(out, family == AF_INET ? 2 : 24);
        return 4;
    default: /* DLT_RAW */
        return 0;
    }
}

static size_t build_frame(int linktype, const struct pkt *p, uint8_t *out)
{
    size_t off = build_link(linktype, p->family, out);
    size_t tcp_len = (p->wscale >= 0 ? 24 : 20) + p->len, ip_len;
    uint8_t *ip = out + off, *tcp;

    if (p->family == AF_INET) {
        ip_len = 20;
        memset(ip, 0, 20);
        ip[0] = 0x45;
        put16(ip + 2, (uint16_t)(20 + tcp_len));
        put16(ip + 6, 0x4000); /* DF */
        ip[8] = 64;
        ip[9] = IPPROTO_TCP;
        inet_pton(AF_INET, p->src, ip + 12);
        inet_pton(AF_INET, p->dst, ip + 16);
    } else {
        size_t ext = p->ext_headers ? 16 : 0;
        ip_len = 40 + ext;
        memset(ip, 0, ip_len);
        ip[0] = 0x60;
        put16(ip + 4, (uint16_t)(ext + tcp_len));
        ip[6] = p->ext_headers ? IPPROTO_HOPOPTS : IPPROTO_TCP;
        ip[7] = 64;
        inet_pton(AF_INET6, p->src, ip + 8);
        inet_pton(AF_INET6, p->dst, ip + 24);
        if (p->ext_headers) {
            ip[40] = IPPROTO_DSTOPTS; /* hop-by-hop: 8 bytes, then destination options */
            ip[48] = IPPROTO_TCP;
        }
    }
    tcp = ip + ip_len;
    memset(tcp, 0, tcp_len - p->len);
    put16(tcp, p->sport);
    put16(tcp + 2, p->dport);
    put32(tcp + 4, p->seq);
    put32(tcp + 8, p->ack);
    tcp[12] = (uint8_t)((p->wscale >= 0 ? 6 : 5) << 4);
    tcp[13] = p->flags;
    put16(tcp + 14, (uint16_t)p->win);
    if (p->wscale >= 0) {
        tcp[20] = 1; /* NOP */
        tcp[21] = 3;
        tcp[22] = 3;
        tcp[23] = (uint8_t)p->wscale;
    }
    if (p->len > 0)
        memcpy(tcp + tcp_len - p->len, p->data, p->len);
    return off + ip_len + tcp_len;
}

static void cap_open(struct capfile *c, int linktype)
{
    memset(c, 0, sizeof(*c));
    c->linktype = linktype;
    c->dead = pcap_open_dead(linktype, 262144);
    ck_assert_ptr_nonnull(c->dead);
    c->f = open_memstream(&c->buf, &c->len);
    ck_assert_ptr_nonnull(c->f);
    c->dumper = pcap_dump_fopen(c->dead, c->f);
    ck_assert_ptr_nonnull(c->dumper);
}

static void cap_raw(struct capfile *c, const uint8_t *frame, size_t caplen, size_t len,
                    uint64_t t_us)
{
    struct pcap_pkthdr h = {.caplen = (bpf_u_int32)caplen, .len = (bpf_u_int32)len};

    h.ts.tv_sec = (time_t)(1700000000 + t_us / 1000000);
    h.ts.tv_usec = (suseconds_t)(t_us % 1000000);
    pcap_dump((u_char *)c->dumper, &h, frame);
}

static void cap_add(struct capfile *c, struct pkt p)
{
    uint8_t frame[70000];
    size_t n;

    if (!p.family)
        p.family = AF_INET;
    if (p.win == 0 && !(p.flags & RST))
        p.win = 65535;
    else if (p.win == ZERO_WINDOW)
        p.win = 0;
    n = build_frame(c->linktype, &p, frame);
    cap_raw(c, frame, n, n, p.t_us);
}

static void cap_close(struct capfile *c)
{
    pcap_dump_close(c->dumper); /* closes the memstream: buf and len are final */
    pcap_close(c->dead);
}

static char errbuf[512];

static int cap_read(struct capfile *c, const struct pcap_flows_limits *lim, struct replay_set *set)
{
    int rc;

    cap_close(c);
    rc = pcap_flows_read_memory(c->buf, c->len, lim, set, errbuf, sizeof(errbuf));
    free(c->buf);
    return rc;
}

#define CLIENT "10.0.0.1"
#define SERVER "10.0.0.2"
#define C6     "2001:db8::1"
#define S6     "2001:db8::2"

/* Client ISN 1000, server ISN 5000: a handshake, one client packet per payload given, the
 * server's 100-byte answer, then the client's FIN. */
static void cap_simple_flow(struct capfile *c, int family, bool ext)
{
    const char *cs = family == AF_INET ? CLIENT : C6, *ss = family == AF_INET ? SERVER : S6;
    char answer[100];

    memset(answer, 'r', sizeof(answer));
    cap_add(c, (struct pkt){family, cs, ss, 40000, 8080, 1000, 0, SYN, 0, NULL, 0, 0, 7, ext});
    cap_add(c, (struct pkt){family, ss, cs, 8080, 40000, 5000, 1001, SYN | ACK, 0, NULL, 0, 10, 7,
                            ext});
    cap_add(c, (struct pkt){family, cs, ss, 40000, 8080, 1001, 5001, ACK, 0, NULL, 0, 20, -1, ext});
    cap_add(c, (struct pkt){family, cs, ss, 40000, 8080, 1001, 5001, ACK | PSH, 0, "hello ", 6,
                            1000, -1, ext});
    cap_add(c, (struct pkt){family, cs, ss, 40000, 8080, 1007, 5001, ACK | PSH, 0, "world", 5, 2000,
                            -1, ext});
    cap_add(c, (struct pkt){family, ss, cs, 8080, 40000, 5001, 1012, ACK | PSH, 0, answer, 100,
                            3000, -1, ext});
    cap_add(c, (struct pkt){family, cs, ss, 40000, 8080, 1012, 5101, ACK | FIN, 0, NULL, 0, 4000,
                            -1, ext});
}

static void check_simple_flow(const struct replay_set *s, int family)
{
    const struct replay_flow *f;

    ck_assert_uint_eq(s->nflows, 1);
    f = &s->flows[0];
    ck_assert_int_eq(f->family, family);
    ck_assert_uint_eq(f->client_port, 40000);
    ck_assert_uint_eq(f->server_port, 8080);
    ck_assert(f->saw_syn);
    ck_assert_uint_eq(f->data_len, 11);
    ck_assert_mem_eq(f->data, "hello world", 11);
    ck_assert_uint_eq(f->nsegs, 2);
    ck_assert_uint_eq(f->segs[0].offset, 0);
    ck_assert_uint_eq(f->segs[0].len, 6);
    ck_assert_uint_eq(f->segs[0].time_us, 1000);
    ck_assert_uint_eq(f->segs[1].offset, 6);
    ck_assert_uint_eq(f->segs[1].time_us, 2000);
    ck_assert_uint_eq(f->server_bytes, 100);
    ck_assert_int_eq(f->end, FLOW_END_CLOSE);
    ck_assert_uint_eq(f->end_us, 4000);
    ck_assert_uint_eq(f->server_bytes_before_end, 100);
    ck_assert_uint_eq(f->frames_to_server, 5);
    ck_assert_uint_eq(f->frames_to_client, 2);
    ck_assert_uint_eq(f->duration_us, 4000);
}

static const int linktypes[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2,
                                DLT_NULL,   DLT_LOOP,      DLT_RAW};

START_TEST(reads_every_link_type)
{
    struct capfile c;
    struct replay_set s;
    int family = _i % 2 == 0 ? AF_INET : AF_INET6;

    cap_open(&c, linktypes[_i / 2]);
    cap_simple_flow(&c, family, family == AF_INET6);
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    check_simple_flow(&s, family);
    replay_set_free(&s);
}
END_TEST

/* Sends seq-relative pieces of "abcdefghijklmnopqrst" from the client (ISN 0). */
static void cap_piece(struct capfile *c, size_t from, size_t to, uint64_t t_us)
{
    static const char text[] = "abcdefghijklmnopqrst";

    cap_add(c, (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, (uint32_t)(1 + from), 1, ACK, 0,
                            text + from, to - from, t_us, -1, false});
}

START_TEST(retransmission_overlap_out_of_order)
{
    struct capfile c;
    struct replay_set s;
    const struct replay_flow *f;

    cap_open(&c, DLT_EN10MB);
    cap_add(&c,
            (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 0, 0, SYN, 0, NULL, 0, 0, -1, false});
    cap_piece(&c, 0, 5, 100);
    cap_piece(&c, 10, 15, 200); /* before 5-10: out of order */
    cap_piece(&c, 5, 10, 300);
    cap_piece(&c, 0, 5, 400);   /* retransmission */
    cap_piece(&c, 3, 12, 500);  /* overlaps three pieces, nothing new */
    cap_piece(&c, 12, 20, 600); /* overlaps one, 5 new bytes */
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    f = &s.flows[0];
    ck_assert_uint_eq(f->data_len, 20);
    ck_assert_mem_eq(f->data, "abcdefghijklmnopqrst", 20);
    ck_assert_uint_eq(f->missing_bytes, 0);
    ck_assert_uint_eq(f->nsegs, 4); /* in stream order, each at its first transmission */
    ck_assert_uint_eq(f->segs[0].offset, 0);
    ck_assert_uint_eq(f->segs[0].time_us, 100);
    ck_assert_uint_eq(f->segs[1].offset, 5);
    ck_assert_uint_eq(f->segs[1].time_us, 300);
    ck_assert_uint_eq(f->segs[2].offset, 10);
    ck_assert_uint_eq(f->segs[2].time_us, 200);
    ck_assert_uint_eq(f->segs[3].offset, 15);
    ck_assert_uint_eq(f->segs[3].len, 5);
    ck_assert_uint_eq(f->segs[3].time_us, 600);
    ck_assert_uint_eq(f->frames_to_server, 7);
    replay_set_free(&s);
}
END_TEST

START_TEST(hole_is_replayed_as_zeros)
{
    struct capfile c;
    struct replay_set s;
    const struct replay_flow *f;

    cap_open(&c, DLT_EN10MB);
    cap_add(&c,
            (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 0, 0, SYN, 0, NULL, 0, 0, -1, false});
    cap_piece(&c, 0, 5, 100);
    cap_piece(&c, 10, 15, 200); /* 5-10 never captured */
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    f = &s.flows[0];
    ck_assert_uint_eq(f->data_len, 15);
    ck_assert_uint_eq(f->missing_bytes, 5);
    ck_assert_mem_eq(f->data + 5, "\0\0\0\0\0", 5);
    ck_assert_mem_eq(f->data + 10, "klmno", 5);
    ck_assert_uint_eq(f->nsegs, 3);
    ck_assert_uint_eq(f->segs[1].offset, 5);
    ck_assert_uint_eq(f->segs[1].len, 5);
    replay_set_free(&s);
}
END_TEST

/* No SYN, and sequence numbers that wrap around 2^32 in the middle of the data. */
START_TEST(mid_connection_start_and_wrap)
{
    struct capfile c;
    struct replay_set s;
    const struct replay_flow *f;
    uint32_t base = 0xfffffffa;

    cap_open(&c, DLT_EN10MB);
    /* out of order from the start: the second piece comes first */
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 51000, 443, base + 4, 7, ACK, 0, "efgh", 4,
                             100, -1, false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 51000, 443, base, 7, ACK, 0, "abcd", 4, 200,
                             -1, false});
    cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 443, 51000, 7, base + 8, ACK, 0, "xyz", 3,
                             300, -1, false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 51000, 443, base + 8, 10, ACK, 0, "ijkl", 4,
                             400, -1, false});
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.nflows, 1);
    f = &s.flows[0];
    ck_assert(!f->saw_syn);
    ck_assert_uint_eq(f->server_port, 443); /* the lower port */
    ck_assert_uint_eq(f->data_len, 12);
    ck_assert_mem_eq(f->data, "abcdefghijkl", 12);
    ck_assert_uint_eq(f->nsegs, 3);
    ck_assert_uint_eq(f->segs[0].time_us, 100); /* "abcd" came second, 100 us after "efgh" */
    ck_assert_uint_eq(f->segs[1].time_us, 0);
    ck_assert_uint_eq(f->segs[2].offset, 8);
    ck_assert_uint_eq(f->server_bytes, 3);
    ck_assert_int_eq(f->end, FLOW_END_SILENT); /* the capture ends with it open */
    replay_set_free(&s);
}
END_TEST

/* A mid-connection flow between port 2000 and 50000: the lower port would say 2000, but
 * another flow's SYN shows 50000 is the one listening. */
START_TEST(server_side_from_other_flows)
{
    struct capfile c;
    struct replay_set s;

    cap_open(&c, DLT_EN10MB);
    cap_add(&c,
            (struct pkt){AF_INET, SERVER, CLIENT, 50000, 2000, 1, 1, ACK, 0, "x", 1, 0, -1, false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 1000, 50000, 9, 0, SYN, 0, NULL, 0, 10, -1,
                             false});
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.nflows, 2);
    ck_assert_uint_eq(s.flows[0].server_port, 50000);
    ck_assert_uint_eq(s.flows[0].client_port, 2000);
    ck_assert_uint_eq(s.flows[0].server_bytes, 1);
    ck_assert_uint_eq(s.flows[1].server_port, 50000);
    replay_set_free(&s);

    /* --server-port decides, and packets on other ports are left out */
    struct pcap_flows_limits lim = {.server_port = 2000};
    cap_open(&c, DLT_EN10MB);
    cap_add(&c,
            (struct pkt){AF_INET, SERVER, CLIENT, 50000, 2000, 1, 1, ACK, 0, "x", 1, 0, -1, false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 1000, 50000, 9, 0, SYN, 0, NULL, 0, 10, -1,
                             false});
    ck_assert_msg(cap_read(&c, &lim, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.nflows, 1);
    ck_assert_uint_eq(s.flows[0].server_port, 2000);
    ck_assert_uint_eq(s.flows[0].data_len, 1);
    ck_assert_uint_eq(s.skipped_packets, 1);
    replay_set_free(&s);
}
END_TEST

START_TEST(port_reuse_is_a_new_flow)
{
    struct capfile c;
    struct replay_set s;

    cap_open(&c, DLT_EN10MB);
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 100, 0, SYN, 0, NULL, 0, 0, -1,
                             false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 100, 0, SYN, 0, NULL, 0, 5, -1,
                             false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 101, 0, RST, 0, NULL, 0, 9, -1,
                             false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 900, 0, SYN, 0, NULL, 0, 20, -1,
                             false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 901, 1, ACK, 0, "q", 1, 30, -1,
                             false});
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.nflows, 2);
    ck_assert_int_eq(s.flows[0].end, FLOW_END_RESET);
    ck_assert_uint_eq(s.flows[0].frames_to_server, 3); /* the retransmitted SYN stays */
    ck_assert_uint_eq(s.flows[1].data_len, 1);
    ck_assert_uint_eq(s.flows[1].start_us, 20);
    replay_set_free(&s);
}
END_TEST

/* Enough flows to make the flow table grow (it starts with 1024 slots, at most half full). */
START_TEST(many_flows)
{
    struct capfile c;
    struct replay_set s;

    cap_open(&c, DLT_EN10MB);
    for (uint16_t port = 1; port <= 1500; port++)
        cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, (uint16_t)(10000 + port), 80, port, 0,
                                 SYN, 0, NULL, 0, port, -1, false});
    for (uint16_t port = 1; port <= 1500; port++) /* each finds its own flow again */
        cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, (uint16_t)(10000 + port), 80,
                                 (uint32_t)port + 1, 1, ACK, 0, "z", 1, 2000 + port, -1, false});
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.nflows, 1500);
    for (size_t i = 0; i < s.nflows; i++) {
        ck_assert_uint_eq(s.flows[i].client_port, 10001 + i);
        ck_assert_uint_eq(s.flows[i].data_len, 1);
        ck_assert_uint_eq(s.flows[i].frames_to_server, 2);
    }
    replay_set_free(&s);
}
END_TEST

/* An 802.1Q tag between the Ethernet header and IPv4. */
START_TEST(vlan_tagged_ethernet)
{
    struct capfile c;
    struct replay_set s;
    uint8_t frame[256], tagged[260];
    size_t n;

    cap_open(&c, DLT_EN10MB);
    n = build_frame(
        DLT_EN10MB,
        &(struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 1, 1, ACK, 0, "vlan", 4, 0, -1, false},
        frame);
    memcpy(tagged, frame, 12);
    put16(tagged + 12, 0x8100);
    put16(tagged + 14, 42); /* VLAN 42 */
    memcpy(tagged + 16, frame + 12, n - 12);
    cap_raw(&c, tagged, n + 4, n + 4, 0);
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.flows[0].data_len, 4);
    ck_assert_mem_eq(s.flows[0].data, "vlan", 4);
    replay_set_free(&s);
}
END_TEST

/* One flow per port, each ending another way; returns the set. */
static void read_endings(struct replay_set *s)
{
    struct capfile c;
    char big[1000];

    memset(big, 'b', sizeof(big));
    cap_open(&c, DLT_EN10MB);
    for (uint16_t port = 1; port <= 7; port++) {
        uint64_t t = port * 100000;
        cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, port, 80, 0, 0, SYN, 0, NULL, 0, t, 2,
                                 false});
        cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, port, 0, 1, SYN | ACK, 0, NULL, 0,
                                 t + 1, 2, false});
        cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, port, 80, 1, 1, ACK, 0, "GET", 3, t + 2,
                                 -1, false});
        cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, port, 1, 4, ACK, 0, big, 1000, t + 3,
                                 -1, false});
    }
    /* 1: reset */
    cap_add(&c,
            (struct pkt){AF_INET, CLIENT, SERVER, 1, 80, 4, 0, RST, 0, NULL, 0, 100010, -1, false});
    /* 2: FIN, then an RST for data after close(): a close */
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 2, 80, 4, 1001, FIN | ACK, 0, NULL, 0, 200010,
                             -1, false});
    cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, 2, 1001, 5, ACK, 0, big, 10, 200011, -1,
                             false});
    cap_add(&c,
            (struct pkt){AF_INET, CLIENT, SERVER, 2, 80, 5, 0, RST, 0, NULL, 0, 200012, -1, false});
    /* 3: FIN, then it goes on acknowledging data: a half-close */
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 3, 80, 4, 1001, FIN | ACK, 0, NULL, 0, 300010,
                             -1, false});
    cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, 3, 1001, 5, ACK, 0, big, 10, 300011, -1,
                             false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 3, 80, 5, 1011, ACK, 0, NULL, 0, 300012, -1,
                             false});
    /* 4: window closes and stays closed, still answering the server's probes */
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 4, 80, 4, 1001, ACK, ZERO_WINDOW, NULL, 0,
                             400010, -1, false});
    cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, 4, 1000, 4, ACK, 0, NULL, 0, 400020, -1,
                             false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 4, 80, 4, 1001, ACK, ZERO_WINDOW, NULL, 0,
                             400021, -1, false});
    /* 5: window closes, then the server's probes go unanswered: it vanished */
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 5, 80, 4, 1001, ACK, ZERO_WINDOW, NULL, 0,
                             500010, -1, false});
    cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, 5, 1000, 4, ACK, 0, NULL, 0, 500020, -1,
                             false});
    cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, 5, 1000, 4, ACK, 0, NULL, 0, 500040, -1,
                             false});
    /* 6: the server closes; the client does nothing */
    cap_add(&c, (struct pkt){AF_INET, SERVER, CLIENT, 80, 6, 1001, 4, FIN | ACK, 0, NULL, 0, 600010,
                             -1, false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 6, 80, 4, 1002, ACK, 0, NULL, 0, 600011, -1,
                             false});
    /* 7: nothing at all: silent */
    ck_assert_msg(cap_read(&c, NULL, s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s->nflows, 7);
}

START_TEST(how_flows_end)
{
    struct replay_set s;

    read_endings(&s);
    ck_assert_int_eq(s.flows[0].end, FLOW_END_RESET);
    ck_assert_uint_eq(s.flows[0].end_us, 10);
    ck_assert_int_eq(s.flows[1].end, FLOW_END_CLOSE);
    ck_assert_uint_eq(s.flows[1].server_bytes_before_end, 1000);
    ck_assert_int_eq(s.flows[2].end, FLOW_END_HALF_CLOSE);
    ck_assert_uint_eq(s.flows[2].server_bytes, 1010);
    ck_assert_int_eq(s.flows[3].end, FLOW_END_STOP_READING);
    ck_assert_uint_eq(s.flows[3].end_us, 10);
    ck_assert_uint_eq(s.flows[3].server_bytes_before_end, 1000);
    ck_assert_uint_eq(s.flows[3].client_window, 65535u << 2); /* scaled: both sent wscale 2 */
    ck_assert_int_eq(s.flows[4].end, FLOW_END_SILENT);
    ck_assert_int_eq(s.flows[5].end, FLOW_END_BY_SERVER);
    ck_assert_uint_eq(s.flows[5].server_bytes, 1000); /* the FIN is not a byte */
    ck_assert_int_eq(s.flows[6].end, FLOW_END_SILENT);
    ck_assert_uint_eq(s.flows[6].end_us, 2);
    replay_set_free(&s);
}
END_TEST

START_TEST(dump_names_flows_and_endings)
{
    struct replay_set s;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    read_endings(&s);
    pcap_flows_print(f, &s);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "7 TCP connections"));
    ck_assert_ptr_nonnull(strstr(text, "10.0.0.1:3 -> 10.0.0.2:80"));
    ck_assert_ptr_nonnull(strstr(text, "end half-close"));
    ck_assert_ptr_nonnull(strstr(text, "end stop-reading"));
    ck_assert_ptr_nonnull(strstr(text, "end by-server"));
    free(text);
    replay_set_free(&s);
}
END_TEST

/* ---- bad input -------------------------------------------------------------------------- */

static void expect_error(struct capfile *c, int rc, const char *needle)
{
    struct replay_set s;
    int got = cap_read(c, NULL, &s);

    ck_assert_msg(got == rc, "rc %d, expected %d (%s)", got, rc, errbuf);
    ck_assert_msg(strstr(errbuf, needle) != NULL, "'%s' not in '%s'", needle, errbuf);
    ck_assert_ptr_null(s.flows);
}

START_TEST(empty_inputs)
{
    struct capfile c;
    struct replay_set s;

    ck_assert_int_eq(pcap_flows_read_memory("", 0, NULL, &s, errbuf, sizeof(errbuf)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(errbuf, "not a readable pcap"));
    ck_assert_int_eq(pcap_flows_read_memory("garbage!", 8, NULL, &s, errbuf, sizeof(errbuf)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(errbuf, "not a readable pcap"));
    cap_open(&c, DLT_EN10MB); /* a header and no packet */
    expect_error(&c, -EINVAL, "no packets");
    ck_assert_int_eq(pcap_flows_read_file("/nonexistent/x.pcap", NULL, &s, errbuf, sizeof(errbuf)),
                     -ENOENT);
}
END_TEST

START_TEST(truncated_file_names_the_packet)
{
    struct capfile c;
    struct replay_set s;
    char *copy;
    int rc;

    cap_open(&c, DLT_EN10MB);
    cap_simple_flow(&c, AF_INET, false);
    cap_close(&c);
    /* cut in the middle of the last packet (the 7th) */
    copy = malloc(c.len);
    memcpy(copy, c.buf, c.len);
    rc = pcap_flows_read_memory(copy, c.len - 10, &(struct pcap_flows_limits){.strict = true}, &s,
                                errbuf, sizeof(errbuf));
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_msg(strstr(errbuf, "packet 7: ") == errbuf, "%s", errbuf);
    ck_assert_ptr_nonnull(strstr(errbuf, "truncated"));
    /* a record header that claims 1 GiB: packet 1 */
    for (int i = 0; i < 4; i++) /* caplen, in the writing host's (little-endian) order */
        copy[24 + 8 + i] = (char)(i == 3 ? 0x40 : 0);
    rc = pcap_flows_read_memory(copy, c.len, NULL, &s, errbuf, sizeof(errbuf));
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_msg(strstr(errbuf, "packet 1: ") == errbuf, "%s", errbuf);
    free(copy);
    free(c.buf);
}
END_TEST

START_TEST(non_tcp_and_non_ip_only)
{
    struct capfile c;
    uint8_t frame[128];
    size_t n;

    cap_open(&c, DLT_EN10MB);
    n = build_frame(DLT_EN10MB,
                    &(struct pkt){AF_INET, CLIENT, SERVER, 1, 2, 0, 0, 0, 0, "u", 1, 0, -1, false},
                    frame);
    frame[14 + 9] = IPPROTO_UDP;
    cap_raw(&c, frame, n, n, 0);
    memset(frame, 0, 60);
    put16(frame + 12, 0x0806); /* ARP */
    cap_raw(&c, frame, 60, 60, 1);
    expect_error(&c, -EINVAL, "no TCP packets among the 2 packets");
}
END_TEST

START_TEST(unknown_link_type)
{
    struct capfile c;
    uint8_t frame[64] = {0};

    cap_open(&c, DLT_IEEE802_11);
    cap_raw(&c, frame, sizeof(frame), sizeof(frame), 0);
    expect_error(&c, -EINVAL, "unsupported link type 105");
}
END_TEST

START_TEST(malformed_packet_is_named)
{
    struct capfile c;
    uint8_t frame[128];
    size_t n;

    cap_open(&c, DLT_EN10MB);
    cap_simple_flow(&c, AF_INET, false);
    n = build_frame(DLT_EN10MB,
                    &(struct pkt){AF_INET, CLIENT, SERVER, 1, 2, 0, 0, 0, 0, "u", 1, 0, -1, false},
                    frame);
    put16(frame + 14 + 2, 500); /* IPv4 total length beyond the frame */
    cap_raw(&c, frame, n, n, 5000);
    expect_error(&c, -EINVAL, "packet 8: IPv4 total length 500");

    cap_open(&c, DLT_EN10MB);
    n = build_frame(DLT_EN10MB,
                    &(struct pkt){AF_INET, CLIENT, SERVER, 1, 2, 0, 0, 0, 0, "u", 1, 0, -1, false},
                    frame);
    frame[14 + 20 + 12] = 0x30; /* TCP data offset 12 bytes */
    cap_raw(&c, frame, n, n, 0);
    expect_error(&c, -EINVAL, "packet 1: corrupt TCP header");
}
END_TEST

START_TEST(snap_length_cut_client_data)
{
    struct capfile c;
    struct replay_set s;
    uint8_t frame[2000];
    char data[1000];
    size_t n;

    memset(data, 'd', sizeof(data));
    cap_open(&c, DLT_EN10MB);
    n = build_frame(DLT_EN10MB,
                    &(struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 0, 0, ACK, 0, data,
                                  sizeof(data), 0, -1, false},
                    frame);
    cap_raw(&c, frame, 96, n, 0);
    ck_assert_int_eq(cap_read(&c, &(struct pcap_flows_limits){.strict = true}, &s), -EINVAL);
    ck_assert_ptr_nonnull(
        strstr(errbuf, "packet 1: client data cut off by the capture's snap length"));

    /* the server's data may be cut: only its length matters */
    cap_open(&c, DLT_EN10MB);
    n = build_frame(DLT_EN10MB,
                    &(struct pkt){AF_INET, SERVER, CLIENT, 80, 40000, 0, 0, ACK, 0, data,
                                  sizeof(data), 0, -1, false},
                    frame);
    cap_raw(&c, frame, 96, n, 0);
    ck_assert_msg(cap_read(&c, NULL, &s) == 0, "%s", errbuf);
    ck_assert_uint_eq(s.flows[0].server_bytes, 1000);
    replay_set_free(&s);
}
END_TEST

START_TEST(limits_are_errors)
{
    struct capfile c;
    struct pcap_flows_limits lim = {.max_flows = 2};
    struct replay_set s;

    cap_open(&c, DLT_EN10MB);
    for (uint16_t port = 1; port <= 3; port++)
        cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, port, 80, 0, 0, SYN, 0, NULL, 0, port, -1,
                                 false});
    ck_assert_int_eq(cap_read(&c, &lim, &s), -E2BIG);
    ck_assert_msg(strstr(errbuf, "packet 3: more than 2 TCP connections") != NULL, "%s", errbuf);

    lim = (struct pcap_flows_limits){.max_flow_bytes = 10};
    cap_open(&c, DLT_EN10MB);
    cap_add(&c,
            (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 0, 0, SYN, 0, NULL, 0, 0, -1, false});
    cap_piece(&c, 0, 5, 100);
    cap_piece(&c, 5, 15, 200);
    ck_assert_int_eq(cap_read(&c, &lim, &s), -E2BIG);
    ck_assert_msg(strstr(errbuf, "packet 3: ") == errbuf, "%s", errbuf);

    /* Found by the fuzzer: a limit hit while finishing the second flow leaked the first. The
     * second's bytes start 100 bytes after its SYN: the stream spans 105 bytes. */
    lim = (struct pcap_flows_limits){.max_flow_bytes = 50};
    cap_open(&c, DLT_EN10MB);
    cap_add(&c,
            (struct pkt){AF_INET, CLIENT, SERVER, 40000, 80, 0, 0, SYN, 0, NULL, 0, 0, -1, false});
    cap_piece(&c, 0, 5, 100);
    cap_add(&c,
            (struct pkt){AF_INET, CLIENT, SERVER, 40001, 80, 0, 0, SYN, 0, NULL, 0, 0, -1, false});
    cap_add(&c, (struct pkt){AF_INET, CLIENT, SERVER, 40001, 80, 101, 1, ACK, 0, "12345", 5, 200,
                             -1, false});
    ck_assert_int_eq(cap_read(&c, &lim, &s), -E2BIG);
    ck_assert_msg(strstr(errbuf, "connection 2: its client stream spans more than 50") != NULL,
                  "%s", errbuf);
    ck_assert_ptr_null(s.flows);
}
END_TEST

/* ---- connfault replay, end to end ------------------------------------------------------- */

static struct ts_proc res; /* the last run's */

/* Run argv in dir (or here) with a deadline; its status and output in res. */
static void run(const char *const *argv, const char *dir, int timeout_ms)
{
    if (res.out)
        ts_proc_free(&res);
    const struct ts_run_opts opts = {.timeout_ms = timeout_ms, .dir = dir};
    ck_assert_int_eq(ts_run(&res, argv, &opts), 0);
    ck_assert_msg(!res.timed_out, "%s did not finish within %d ms", argv[1], timeout_ms);
}

/* The report's checks, scenarios and verdicts (harness/REPORTS.md, "JSON"). */
static bool report_has_verdict(const struct ts_json *report, const char *verdict)
{
    const struct ts_json *scenarios = ts_json_get(report, "scenarios");
    for (size_t i = 0; i < ts_json_count(scenarios); i++) {
        const char *v = ts_json_str(ts_json_at(scenarios, i), "verdict");
        if (v && strcmp(v, verdict) == 0)
            return true;
    }
    return false;
}

/* A check of any scenario with this status, and this name unless name is NULL. */
static bool report_has_check(const struct ts_json *report, const char *status, const char *name)
{
    const struct ts_json *scenarios = ts_json_get(report, "scenarios");
    for (size_t i = 0; i < ts_json_count(scenarios); i++) {
        const struct ts_json *checks = ts_json_get(ts_json_at(scenarios, i), "checks");
        for (size_t k = 0; k < ts_json_count(checks); k++) {
            const struct ts_json *check = ts_json_at(checks, k);
            const char *st = ts_json_str(check, "status"), *nm = ts_json_str(check, "name");
            if (st && strcmp(st, status) == 0 && (!name || (nm && strcmp(nm, name) == 0)))
                return true;
        }
    }
    return false;
}

/* A scenario whose kept capture's path contains path. */
static bool report_has_capture(const struct ts_json *report, const char *path)
{
    const struct ts_json *scenarios = ts_json_get(report, "scenarios");
    for (size_t i = 0; i < ts_json_count(scenarios); i++) {
        const char *capture = ts_json_str(ts_json_at(scenarios, i), "capture");
        if (capture && strstr(capture, path))
            return true;
    }
    return false;
}

struct replay_case {
    const char *capture, *bug, *check;
};

/* captures/README.md: how each was made, and what it shows. */
static const struct replay_case replay_cases[] = {
    {"burst-abort", "accept-once", "accepting"},    {"cable-pull", "blocking", "accepting"},
    {"drop-mid-response", "blocking", "accepting"}, {"rst-mid-response", "leak-on-error", "fds"},
    {"slowloris", "blocking", "accepting"},
};

/* Replay captures/NAME.pcap (against the correct server when bug is NULL); the verdict and
 * the JSON report (parsed; its text in *text) come back. Failing scenarios keep their
 * capture in dir. */
static struct ts_json *replay(const char *name, const char *bug, const char *dir, char **text)
{
    char capture[512], json[512], error[256];

    snprintf(capture, sizeof(capture), "%s/captures/%s.pcap", CONNFAULT_SOURCE_DIR, name);
    snprintf(json, sizeof(json), "%s/report.json", dir);
    /* A bug mode that holds fds holds them for ever: a short grace of its own (the default,
     * 75 s, would only make the wait longer); the correct server's wait ends when all is back. */
    if (bug)
        run(TS_ARGV(CONNFAULT_BIN, "replay", "--seed", "11", "--grace", "5", "--json", json,
                    "--bug", bug, capture),
            dir, 120000);
    else
        run(TS_ARGV(CONNFAULT_BIN, "replay", "--seed", "11", "--json", json, capture), dir, 120000);
    *text = ts_slurp(json, NULL);
    ck_assert_msg(*text != NULL, "no report; status %d\nstdout:\n%s\nstderr:\n%s", res.status,
                  res.out, res.err);
    struct ts_json *report = ts_json_parse(*text, error, sizeof(error));
    ck_assert_msg(report != NULL, "report.json: %s\n%s", error, *text);
    return report;
}

START_TEST(replay_passes_on_the_correct_server)
{
    const struct replay_case *rc = &replay_cases[_i];
    char dir[64], *text;

    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-replay"), 0);
    struct ts_json *report = replay(rc->capture, NULL, dir, &text);
    if (report_has_verdict(report, "skip")) { /* silent flows need the sandbox */
        fprintf(stderr, "%s: skipped: %s\n", rc->capture, res.out);
    } else {
        ck_assert_msg(res.status == 0, "%s: status %d\nstdout:\n%s\nstderr:\n%s", rc->capture,
                      res.status, res.out, res.err);
        ck_assert_msg(report_has_verdict(report, "pass"), "%s", text);
        ck_assert_msg(!report_has_check(report, "failed", NULL), "%s", text);
        /* evidence that the replay happened: every flow reached its captured end */
        const struct ts_json *g =
            ts_json_at(ts_json_get(ts_json_at(ts_json_get(report, "scenarios"), 0), "groups"), 0);
        ck_assert_msg(g && strcmp(ts_json_str(g, "name"), "replay") == 0, "%s", text);
        const char *reached = ts_json_num(g, "reached"), *planned = ts_json_num(g, "planned");
        ck_assert_msg(reached && planned && strcmp(reached, planned) == 0 && atoi(planned) > 0,
                      "%s", text);
        /* and how many were open at once, here and in the capture (a burst that came apart
         * shows there: not judged, the numbers are for the reader) */
        const char *peak = ts_json_num(g, "peak_open"), *was = ts_json_num(g, "capture_peak_open");
        ck_assert_msg(peak && was && atoi(peak) > 0 && atoi(was) > 0, "%s", text);
    }
    ts_json_free(report);
    free(text);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(replay_fails_the_bug)
{
    const struct replay_case *rc = &replay_cases[_i];
    char dir[64], kept[600], *text;

    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-replay"), 0);
    struct ts_json *report = replay(rc->capture, rc->bug, dir, &text);
    if (report_has_verdict(report, "skip")) {
        fprintf(stderr, "%s: skipped: %s\n", rc->capture, res.out);
    } else {
        ck_assert_msg(res.status == 1, "%s --bug %s: status %d\nstdout:\n%s\nstderr:\n%s",
                      rc->capture, rc->bug, res.status, res.out, res.err);
        ck_assert_msg(report_has_check(report, "failed", rc->check),
                      "%s --bug %s: %s did not fail:\n%s", rc->capture, rc->bug, rc->check, text);
        /* With CAP_NET_RAW the failing replay's own traffic is kept, and the report says where. */
        snprintf(kept, sizeof(kept), "connfault-captures/%s-bug-%s-11.pcap", rc->capture, rc->bug);
        if (!report_has_capture(report, kept) && geteuid() == 0)
            ck_abort_msg("no capture kept:\n%s", text);
    }
    ts_json_free(report);
    free(text);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
}
END_TEST

/* Replay captures/NAME.pcap against --target-cmd cmd with a 1 s grace; its JSON report
 * (parsed; its text in *text, written in dir). */
static struct ts_json *replay_against(const char *name, const char *cmd, const char *dir,
                                      char **text)
{
    char capture[512], json[128], error[256];
    snprintf(capture, sizeof(capture), "%s/captures/%s.pcap", CONNFAULT_SOURCE_DIR, name);
    snprintf(json, sizeof(json), "%s/report.json", dir);
    run(TS_ARGV(CONNFAULT_BIN, "replay", "--no-capture", "--grace", "1", "--json", json,
                "--target-cmd", cmd, capture),
        NULL, 120000);
    *text = ts_slurp(json, NULL);
    ck_assert_msg(*text, "no report; status %d\n%s%s", res.status, res.out, res.err);
    struct ts_json *report = ts_json_parse(*text, error, sizeof(error));
    ck_assert_msg(report, "%s: %s", error, *text);
    return report;
}

/* A server that answers the captured requests with less than the captured server sent (here
 * a 404 for the 1 MiB the rst-mid-response clients reset in the middle of): the resets were not
 * mid-response, so the replay is an error that says why, never a pass. */
START_TEST(replay_against_a_server_that_sends_less_is_an_error)
{
    char dir[64], cmd[256], *text;
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-replay-404"), 0);
    snprintf(cmd, sizeof(cmd), "python3 -m http.server --bind 127.0.0.1 --directory %s {port}",
             dir);
    struct ts_json *report = replay_against("rst-mid-response", cmd, dir, &text);
    ck_assert_msg(res.status == 2 && report_has_verdict(report, "error"), "status %d:\n%s%s",
                  res.status, res.out, text);
    ck_assert_msg(strstr(res.out, "fewer of the server's bytes than their captured clients"), "%s",
                  res.out);
    ts_json_free(report);
    free(text);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
}
END_TEST

/* slowloris.pcap's trickling flows were ended by a server with a 1 s header timeout; against
 * one whose timeout is 30 s they are still open, every byte sent, when judged: their client's
 * part happened (counted: 20 of 20 flows, not only its 10 probes'), and the checks judge the
 * rest (a 1 s grace: held by live clients). */
START_TEST(replay_flows_a_slower_server_has_not_ended_yet_are_reached)
{
    char dir[64], cmd[512], *text;
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-replay-slow"), 0);
    snprintf(cmd, sizeof(cmd), "%s --port {port} --header-timeout 30 --quiet",
             CONNFAULT_SERVER_BIN);
    struct ts_json *report = replay_against("slowloris", cmd, dir, &text);
    const struct ts_json *g =
        ts_json_at(ts_json_get(ts_json_at(ts_json_get(report, "scenarios"), 0), "groups"), 0);
    const char *reached = ts_json_num(g, "reached");
    ck_assert_msg(reached && strcmp(reached, "20") == 0, "%.3000s", text);
    ck_assert_msg(strstr(res.out, "held by live clients"), "%.2000s", res.out);
    ts_json_free(report);
    free(text);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(replay_dump_and_errors)
{
    char capture[512], dir[64], bad[128];

    snprintf(capture, sizeof(capture), "%s/captures/rst-mid-response.pcap", CONNFAULT_SOURCE_DIR);
    run(TS_ARGV(CONNFAULT_BIN, "replay", "--dump", capture), NULL, 30000);
    ck_assert_msg(res.status == 0, "status %d: %s", res.status, res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "TCP connections"));
    ck_assert_ptr_nonnull(strstr(res.out, "end reset"));

    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-replay-bad"), 0);
    snprintf(bad, sizeof(bad), "%s/bad.pcap", dir);
    ck_assert_int_eq(ts_write_file(bad, "not a capture at all"), 0);
    run(TS_ARGV(CONNFAULT_BIN, "replay", bad), NULL, 30000);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "not a readable pcap or pcapng file"));

    run(TS_ARGV(CONNFAULT_BIN, "replay", "--speed", "fast", capture), NULL, 30000);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--speed: invalid value 'fast'"));
}
END_TEST

/* `run --capture DIR`: the scenario's traffic, readable by the replayer. */
START_TEST(run_capture_writes_a_pcap)
{
    char dir[64], path[600];
    struct replay_set s;

    if (geteuid() != 0) {
        fprintf(stderr, "run_capture_writes_a_pcap: not root (no CAP_NET_RAW): skipped\n");
        return;
    }
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-capture"), 0);
    run(TS_ARGV(CONNFAULT_BIN, "run", "--seed", "5", "--capture", dir, "connect-close"), NULL,
        60000);
    ck_assert_msg(res.status == 0, "status %d\n%s\n%s", res.status, res.out, res.err);
    snprintf(path, sizeof(path), "%s/connect-close-reference-5.pcap", dir);
    ck_assert_msg(pcap_flows_read_file(path, NULL, &s, errbuf, sizeof(errbuf)) == 0, "%s", errbuf);
    ck_assert_uint_gt(s.nflows, 10); /* the scenario's clients and the probes */
    ck_assert_ptr_null(strstr(res.out, "lost by the capture"));
    replay_set_free(&s);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
}
END_TEST

static TCase *flows_case(void)
{
    TCase *flows = tcase_create("pcap_flows");
    tcase_add_loop_test(flows, reads_every_link_type, 0,
                        (int)(2 * sizeof(linktypes) / sizeof(linktypes[0])));
    tcase_add_test(flows, retransmission_overlap_out_of_order);
    tcase_add_test(flows, hole_is_replayed_as_zeros);
    tcase_add_test(flows, mid_connection_start_and_wrap);
    tcase_add_test(flows, server_side_from_other_flows);
    tcase_add_test(flows, port_reuse_is_a_new_flow);
    tcase_add_test(flows, many_flows);
    tcase_add_test(flows, vlan_tagged_ethernet);
    tcase_add_test(flows, how_flows_end);
    tcase_add_test(flows, dump_names_flows_and_endings);
    return flows;
}

static TCase *bad_case(void)
{
    TCase *bad = tcase_create("bad_input");
    tcase_add_test(bad, empty_inputs);
    tcase_add_test(bad, truncated_file_names_the_packet);
    tcase_add_test(bad, non_tcp_and_non_ip_only);
    tcase_add_test(bad, unknown_link_type);
    tcase_add_test(bad, malformed_packet_is_named);
    tcase_add_test(bad, snap_length_cut_client_data);
    tcase_add_test(bad, limits_are_errors);
    return bad;
}

/* The replays of captures/, against the correct server or under their bug modes. */
static TCase *replays_case(const char *name, const TTest *test)
{
    TCase *live = tcase_create(name);
    tcase_set_timeout(live, 300);
    tcase_add_loop_test(live, test, 0, (int)(sizeof(replay_cases) / sizeof(replay_cases[0])));
    return live;
}

/* part NULL: every test case; "offline" the capture reader, its bad input and the two short
 * live tests; "correct" or "bugs" one half of the replays (each replay mostly waits: ctest
 * runs the three parts side by side). NULL for an unknown part. */
static Suite *replay_suite(const char *part)
{
    bool all = part == NULL, offline = all || strcmp(part, "offline") == 0;
    bool correct = all || strcmp(part, "correct") == 0, bugs = all || strcmp(part, "bugs") == 0;
    if (!offline && !correct && !bugs)
        return NULL;
    Suite *s = suite_create("replay");
    if (offline) {
        suite_add_tcase(s, flows_case());
        suite_add_tcase(s, bad_case());
        TCase *live = tcase_create("replay");
        tcase_set_timeout(live, 300);
        tcase_add_test(live, replay_dump_and_errors);
        tcase_add_test(live, replay_against_a_server_that_sends_less_is_an_error);
        tcase_add_test(live, replay_flows_a_slower_server_has_not_ended_yet_are_reached);
        tcase_add_test(live, run_capture_writes_a_pcap);
        suite_add_tcase(s, live);
    }
    if (correct)
        suite_add_tcase(s, replays_case("replay correct", replay_passes_on_the_correct_server));
    if (bugs)
        suite_add_tcase(s, replays_case("replay bugs", replay_fails_the_bug));
    return s;
}

/* argv[1], if given: the part to run (replay_suite). */
int main(int argc, char **argv)
{
    Suite *s = replay_suite(argc > 1 ? argv[1] : NULL);
    if (s == NULL) {
        fprintf(stderr, "test_replay: unknown part '%s' (offline, correct or bugs)\n", argv[1]);
        return 2;
    }
    return ts_run_suite(s);
}
