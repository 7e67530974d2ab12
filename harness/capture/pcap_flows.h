/* pcap_flows: read a capture (pcap or pcapng) and rebuild what every TCP client sent, so
 * `connfault replay` can send it again over real sockets.
 *
 * For each TCP connection (a "flow") the reader keeps the client->server byte stream as the
 * server's application saw it (retransmissions and overlaps counted once, out-of-order
 * segments put in place, captures that begin mid-connection handled), the segments in which
 * those bytes were first sent and when, how much the server sent back, and how the client
 * ended the connection. Link types: Ethernet (with VLAN tags), Linux cooked v1 and v2,
 * BSD loopback (DLT_NULL, DLT_LOOP), raw IP. IPv4 and IPv6 (extension headers skipped).
 *
 * Which side is the server: the port given, else the side that received SYNs (in any flow
 * of the capture), else the lower port (well-known ports are low, ephemeral ones high).
 *
 * Captures as users have them (unless pcap_flows_limits.strict, which refuses them):
 *   - client data cut by the snap length (tcpdump -s 96): the bytes not captured are filled.
 *     Where a cut falls inside an HTTP/1.x request head, the head is completed so the request
 *     stays valid and keeps its length: the current line finished (a request line gets its
 *     target and " HTTP/1.1"), a Host header when HTTP/1.1 lacks one, a Content-Length when
 *     client bytes follow that do not start a request (a body), then an `X-Connfault-Pad: xxx`
 *     header and the blank line, ending exactly where the packet ended (1-3 bytes of padding
 *     are trailing spaces on the last header line, 4-18 an `X:` header; a head that cannot
 *     be completed in the room left stays zeros, and so does the rest of that stream). A
 *     cut Content-Length or Transfer-Encoding line is renamed X-ntent-Length /
 *     X-ansfer-Encoding (its value may be cut short). Elsewhere (bodies, non-HTTP) the bytes are
 * zeros, as `tcprewrite
 *     --fixlen=pad` does. A full copy of cut bytes (a retransmission) does not replace them.
 *   - a file that ends in the middle of a packet: the whole packets before it are read.
 * Each is reported in replay_set.warnings, naming the packets and the byte counts (the first
 * ten connections with cuts one by one, then a line that sums up all of them).
 *
 * Bad input (a corrupt file, one cut in its first packet, malformed packets, no TCP at all, an
 * unknown link type) is an error whose message names the packet number (1-based, as Wireshark
 * counts). Memory is bounded by pcap_flows_limits; going past a limit is an error too. */
#ifndef CONNFAULT_PCAP_FLOWS_H
#define CONNFAULT_PCAP_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How the client ended the connection, as the capture shows it. */
enum flow_end {
    FLOW_END_CLOSE,        /* FIN from the client (an RST after it is its kernel answering data
                              that arrived after close()) */
    FLOW_END_HALF_CLOSE,   /* FIN, then it kept acknowledging the server's data (shutdown) */
    FLOW_END_RESET,        /* RST from the client, before any FIN */
    FLOW_END_STOP_READING, /* it advertised a zero window and stayed there, still answering */
    FLOW_END_BY_SERVER,    /* the server closed or reset it; the client did nothing itself */
    FLOW_END_SILENT,       /* nothing: the capture ends with the flow open, or the client went
                              silent while the server kept sending */
};

/* Bytes [offset, offset + len) of the client stream, first sent time_us after the flow's
 * first packet. Segments are in stream order and cover the stream without gaps. */
struct flow_segment {
    uint64_t offset;
    uint32_t len;
    uint64_t time_us;
};

struct replay_flow {
    int family; /* AF_INET or AF_INET6 */
    uint8_t client_addr[16], server_addr[16];
    uint16_t client_port, server_port;
    uint64_t start_us;    /* first packet, after the capture's first packet */
    uint64_t duration_us; /* first to last packet of the flow */
    bool saw_syn;         /* the client's SYN is in the capture (else: began mid-connection) */
    unsigned char *data;  /* the client->server stream; owned */
    uint64_t data_len;
    struct flow_segment *segs; /* owned */
    size_t nsegs;
    uint64_t missing_bytes;  /* never captured (packets lost by the capture): sent as zeros */
    uint64_t cut_packets;    /* client packets cut by the snap length */
    uint64_t cut_bytes;      /* their bytes not captured, filled (see the top of this file) */
    uint64_t cut_head_bytes; /* of those, filled by completing HTTP request heads */
    uint64_t cut_heads;      /* how many request heads were completed */
    uint64_t server_bytes;   /* server->client stream length */
    enum flow_end end;
    uint64_t end_us;                  /* when the flow ended that way, after its first packet */
    uint64_t server_bytes_before_end; /* what the client had acknowledged by then */
    uint32_t client_window;           /* its largest advertised window in bytes, 0 = unknown */
    /* As tshark -z conv,tcp counts them: frames, and whole frame bytes, each way. */
    uint64_t frames_to_server, frames_to_client;
    uint64_t frame_bytes_to_server, frame_bytes_to_client;
};

struct replay_set {
    char name[64];             /* the file's base name without .pcap/.pcapng */
    struct replay_flow *flows; /* owned; in the order of their first packet */
    size_t nflows;
    uint64_t packets;          /* every packet in the file */
    uint64_t skipped_packets;  /* not TCP, not IP, IP fragments */
    uint64_t duration_us;      /* first to last packet of the file */
    int linktype;              /* DLT_* */
    double speed;              /* replay: 1 = the capture's pace, 2 = twice as fast, 0 = no waits
                                  (set by the caller; the reader sets 1) */
    uint64_t truncated_packet; /* the packet the file ends in the middle of (not read), or 0 */
    char *warnings; /* owned: what was filled or left out, lines ending in '\n'; NULL: none */
};

/* A capture time (us) as milliseconds of a replay at speed (0: no waits, so 0 ms): the one
 * place the pace is applied (engine, run, shrink). */
static inline uint64_t replay_speed_ms(double speed, uint64_t us)
{
    return speed > 0 ? (uint64_t)((double)us / 1000.0 / speed) : 0;
}

struct pcap_flows_limits {
    uint16_t server_port;     /* 0: find the server side (see the top of this file) */
    size_t max_flows;         /* 0: PCAP_FLOWS_DEFAULT_MAX_FLOWS */
    uint64_t max_flow_bytes;  /* client bytes per flow; 0: PCAP_FLOWS_DEFAULT_MAX_FLOW_BYTES */
    uint64_t max_total_bytes; /* client bytes, all flows; 0: PCAP_FLOWS_DEFAULT_MAX_TOTAL_BYTES */
    bool strict; /* refuse client data cut by the snap length and a file cut mid-packet */
};

#define PCAP_FLOWS_DEFAULT_MAX_FLOWS       20000
#define PCAP_FLOWS_DEFAULT_MAX_FLOW_BYTES  (64ULL << 20)
#define PCAP_FLOWS_DEFAULT_MAX_TOTAL_BYTES (512ULL << 20)

/* Read a capture file. 0, or a negative errno with a message in err: -ENOENT/-EACCES (cannot
 * open), -EINVAL (bad input), -E2BIG (a limit), -ENOMEM. lim may be NULL (defaults). */
int pcap_flows_read_file(const char *path, const struct pcap_flows_limits *lim,
                         struct replay_set *out, char *err, size_t errlen);

/* The same for a capture held in memory (tests, fuzzing). */
int pcap_flows_read_memory(const void *data, size_t len, const struct pcap_flows_limits *lim,
                           struct replay_set *out, char *err, size_t errlen);

void replay_set_free(struct replay_set *set);

/* "close", "half-close", "reset", "stop-reading", "by-server", "silent". */
const char *flow_end_name(enum flow_end end);

/* `connfault replay --dump`: what was understood, one line per flow, and totals. */
void pcap_flows_print(FILE *out, const struct replay_set *set);

#endif
