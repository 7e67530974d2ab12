/* sockdiag: TCP sockets (states, addresses, queues), read from the kernel's socket tables.
 *
 * Netlink inet_diag is the primary source: one dump gives every TCP socket of the network
 * namespace in binary, including the backlog of listeners. /proc/net/tcp{,6} is the fallback
 * for sandboxes that refuse NETLINK_SOCK_DIAG. Both sources feed the same visitor, so the
 * counting logic exists once. */
#include "sockdiag.h"
#include "sockdiag_internal.h"
#include "sort_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bits 1..11: every real TCP state. The kernel's pseudo-states (NEW_SYN_RECV requests,
 * BOUND_INACTIVE) are left out: they never carry an inode and are not in /proc/net/tcp. */
#define SOCKDIAG_ALL_STATES (((1u << TCP_STATE_MAX) - 1) & ~1u)
#define SOCKDIAG_LISTEN     10 /* TCP_LISTEN */

/* The kernel never puts more than 32 KiB into one netlink dump message (it sizes them by our
 * receive buffer, capped at 32 KiB), so this buffer never truncates. */
#define SOCKDIAG_RECV_BUF 32768

const char *tcp_state_name(int state)
{
    static const char *const names[TCP_STATE_MAX] = {
        [1] = "ESTABLISHED", [2] = "SYN_SENT",  [3] = "SYN_RECV", [4] = "FIN_WAIT1",
        [5] = "FIN_WAIT2",   [6] = "TIME_WAIT", [7] = "CLOSE",    [8] = "CLOSE_WAIT",
        [9] = "LAST_ACK",    [10] = "LISTEN",   [11] = "CLOSING",
    };
    if (state < 1 || state >= TCP_STATE_MAX)
        return "UNKNOWN";
    return names[state];
}

static void sockdiag_endpoint_set(struct sockdiag_endpoint *end, int family, const uint32_t *addr,
                                  uint16_t port_be)
{
    end->family = family;
    memset(end->addr, 0, sizeof(end->addr));
    memcpy(end->addr, addr, family == AF_INET6 ? 16 : 4);
    end->port = ntohs(port_be);
}

/* tcp_info's last_ack_recv from the message's attributes (INET_DIAG_INFO), or -1. */
static int64_t sockdiag_silent_ms(const struct nlmsghdr *h)
{
    size_t head = NLMSG_LENGTH(sizeof(struct inet_diag_msg));
    if (h->nlmsg_len <= NLMSG_ALIGN(head))
        return -1;
    int len = (int)(h->nlmsg_len - NLMSG_ALIGN(head));
    const struct rtattr *a = (const struct rtattr *)((const char *)h + NLMSG_ALIGN(head));
    size_t need = offsetof(struct tcp_info, tcpi_last_ack_recv) + sizeof(uint32_t);
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != INET_DIAG_INFO || RTA_PAYLOAD(a) < need)
            continue;
        uint32_t ms;
        memcpy(&ms, (const char *)RTA_DATA(a) + offsetof(struct tcp_info, tcpi_last_ack_recv),
               sizeof(ms));
        return ms;
    }
    return -1;
}

static void sockdiag_from_inet_diag(const struct inet_diag_msg *msg, struct sockdiag_sock *sock)
{
    sock->inode = msg->idiag_inode;
    sock->state = msg->idiag_state;
    sockdiag_endpoint_set(&sock->local, msg->idiag_family, msg->id.idiag_src, msg->id.idiag_sport);
    sockdiag_endpoint_set(&sock->peer, msg->idiag_family, msg->id.idiag_dst, msg->id.idiag_dport);
    sock->rqueue = msg->idiag_rqueue;
    sock->wqueue = msg->idiag_wqueue;
    sock->wqueue_known = true;
}

void sockdiag_format_endpoint(const struct sockdiag_endpoint *end, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (inet_ntop(end->family, end->addr, host, sizeof(host)) == NULL)
        snprintf(host, sizeof(host), "?");
    if (end->family == AF_INET6)
        snprintf(buf, size, "[%s]:%u", host, end->port);
    else
        snprintf(buf, size, "%s:%u", host, end->port);
}

/* Handles one buffer of replies. Returns 1 when the dump is done, 0 for "more
 * to come", or -errno from the kernel. */
static int sockdiag_netlink_consume(const void *buf, size_t len, uint32_t seq,
                                    sockdiag_visit_fn visit, void *ctx)
{
    for (const struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != seq)
            continue;
        if (h->nlmsg_type == NLMSG_DONE) {
            /* Since Linux 4.x DONE carries the dump's final status. */
            const int *status = NLMSG_DATA(h);
            if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *status < 0)
                return *status;
            return 1;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *err = NLMSG_DATA(h);
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*err)))
                return -EPROTO;
            return err->error < 0 ? err->error : -EPROTO;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
            h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
            continue;
        struct sockdiag_sock sock;
        sockdiag_from_inet_diag(NLMSG_DATA(h), &sock);
        sock.silent_ms = sockdiag_silent_ms(h);
        visit(&sock, ctx);
    }
    return 0;
}

static int sockdiag_netlink_dump(int nl, int family, uint32_t states, sockdiag_visit_fn visit,
                                 void *ctx)
{
    uint32_t seq = (uint32_t)family;
    struct {
        struct nlmsghdr header;
        struct inet_diag_req_v2 request;
    } query = {
        .header = {.nlmsg_len = sizeof(query),
                   .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                   .nlmsg_seq = seq},
        .request = {.sdiag_family = (uint8_t)family,
                    .sdiag_protocol = IPPROTO_TCP,
                    .idiag_ext = 1u << (INET_DIAG_INFO - 1), /* tcp_info: silent_ms */
                    .idiag_states = states},
    };
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(nl, &query, sizeof(query), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;

    /* Aligned for the nlmsghdr casts done by NLMSG_NEXT. */
    _Alignas(struct nlmsghdr) char buf[SOCKDIAG_RECV_BUF];
    for (;;) {
        ssize_t len = recv(nl, buf, sizeof(buf), 0);
        if (len < 0 && errno == EINTR)
            continue;
        if (len < 0)
            return -errno;
        if (len == 0)
            return -EPROTO;
        int rc = sockdiag_netlink_consume(buf, (size_t)len, seq, visit, ctx);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
}

static int sockdiag_walk_netlink(uint32_t states, sockdiag_visit_fn visit, void *ctx)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -errno;
    int rc = sockdiag_netlink_dump(nl, AF_INET, states, visit, ctx);
    if (rc == 0)
        rc = sockdiag_netlink_dump(nl, AF_INET6, states, visit, ctx);
    close(nl);
    return rc;
}

/* An address as /proc/net/tcp{,6} prints it: the 32-bit words of the address in network
 * byte order, each printed as a host-order number in 8 hex digits (8 digits for IPv4, 32 for
 * IPv6). */
static bool sockdiag_proc_parse_endpoint(const char *hex, unsigned port,
                                         struct sockdiag_endpoint *end)
{
    size_t len = strlen(hex);
    if (len != 8 && len != 32)
        return false;
    *end = (struct sockdiag_endpoint){.family = len == 8 ? AF_INET : AF_INET6, .port = port};
    for (size_t i = 0; i < len / 8; i++) {
        char word_hex[9];
        memcpy(word_hex, hex + 8 * i, 8);
        word_hex[8] = '\0';
        uint32_t word = (uint32_t)strtoul(word_hex, NULL, 16);
        memcpy(end->addr + 4 * i, &word, sizeof(word));
    }
    return true;
}

bool sockdiag_proc_parse_line(const char *line, struct sockdiag_sock *out)
{
    /* A row, with its fields: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
     *   "12: 0100007F:1F90 0100007F:A1B2 08 00000000:00000001 00:00000000 00000000  1000
     *        0 123456 1 ..."
     * Addresses are 8 hex digits in tcp, 32 in tcp6; ports and the state are hex. */
    char local[33], peer[33];
    unsigned local_port, peer_port, state, tx_queue, rx_queue;
    uint64_t inode;
    int fields = sscanf(line,
                        " %*d: %32[0-9A-Fa-f]:%x %32[0-9A-Fa-f]:%x %x %x:%x %*x:%*x %*x %*u %*d"
                        " %" SCNu64,
                        local, &local_port, peer, &peer_port, &state, &tx_queue, &rx_queue, &inode);
    if (fields != 8)
        return false;
    *out = (struct sockdiag_sock){
        .inode = inode,
        .state = (int)state,
        .rqueue = rx_queue, /* for LISTEN: the accept-queue length */
        .wqueue = tx_queue, /* for LISTEN: not the backlog, which /proc does not show */
        .wqueue_known = false,
        .silent_ms = -1,
    };
    return sockdiag_proc_parse_endpoint(local, local_port, &out->local) &&
           sockdiag_proc_parse_endpoint(peer, peer_port, &out->peer);
}

int sockdiag_proc_scan(FILE *table, sockdiag_visit_fn visit, void *ctx)
{
    char line[512]; /* rows are ~150 characters */
    while (fgets(line, sizeof(line), table) != NULL) {
        struct sockdiag_sock sock;
        if (sockdiag_proc_parse_line(line, &sock))
            visit(&sock, ctx);
    }
    return ferror(table) ? -EIO : 0;
}

static int sockdiag_walk_proc(sockdiag_visit_fn visit, void *ctx)
{
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        FILE *table = fopen(tables[i], "re");
        if (table == NULL) {
            if (errno == ENOENT)
                continue; /* kernel without IPv6 */
            return -errno;
        }
        int rc = sockdiag_proc_scan(table, visit, ctx);
        fclose(table);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Runs visit over every TCP socket from source. In AUTO mode any netlink failure (socket refused by
 * a sandbox, inet_diag not available) falls back to /proc, after reset(ctx) has dropped what a
 * partial netlink walk may have counted. */
static int sockdiag_walk(enum sockdiag_source source, uint32_t states, sockdiag_visit_fn visit,
                         void (*reset)(void *ctx), void *ctx)
{
    if (source == SOCKDIAG_SOURCE_PROC)
        return sockdiag_walk_proc(visit, ctx);
    int rc = sockdiag_walk_netlink(states, visit, ctx);
    if (rc < 0 && source == SOCKDIAG_SOURCE_AUTO) {
        reset(ctx);
        rc = sockdiag_walk_proc(visit, ctx);
    }
    return rc;
}

/* Neither source is a snapshot: both walk the kernel's hash tables in several reads, and
 * sockets created or closed meanwhile can make a row appear twice. seen[i] makes sure each
 * inode counts once. */
struct sockdiag_state_count {
    const uint64_t *sorted_inodes; /* without repeats */
    bool *seen;
    size_t n;
    struct tcp_states *out;
};

static void sockdiag_count_state(const struct sockdiag_sock *sock, void *ctx)
{
    struct sockdiag_state_count *count = ctx;
    if (sock->inode == 0 || sock->state < 1 || sock->state >= TCP_STATE_MAX)
        return;
    const uint64_t *found =
        bsearch(&sock->inode, count->sorted_inodes, count->n, sizeof(uint64_t), cf_compare_u64);
    if (found == NULL || count->seen[found - count->sorted_inodes])
        return;
    count->seen[found - count->sorted_inodes] = true;
    count->out->count[sock->state]++;
    count->out->matched++;
    if (sock->state == SOCKDIAG_LISTEN)
        count->out->listening++;
}

static void sockdiag_reset_state_count(void *ctx)
{
    struct sockdiag_state_count *count = ctx;
    memset(count->out, 0, sizeof(*count->out));
    memset(count->seen, 0, count->n * sizeof(*count->seen));
}

int sockdiag_tcp_states_from(enum sockdiag_source source, const uint64_t *inodes, size_t n,
                             struct tcp_states *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return 0;

    /* One copy per call, sorted so each table row costs a binary search. */
    uint64_t *sorted = malloc(n * sizeof(*sorted));
    bool *seen = calloc(n, sizeof(*seen));
    if (sorted == NULL || seen == NULL) {
        free(sorted);
        free(seen);
        return -ENOMEM;
    }
    memcpy(sorted, inodes, n * sizeof(*sorted));
    n = cf_sort_unique_u64(sorted, n);

    struct sockdiag_state_count count = {.sorted_inodes = sorted, .seen = seen, .n = n, .out = out};
    int rc = sockdiag_walk(source, SOCKDIAG_ALL_STATES, sockdiag_count_state,
                           sockdiag_reset_state_count, &count);
    free(sorted);
    free(seen);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int sockdiag_tcp_states(const uint64_t *inodes, size_t n, struct tcp_states *out)
{
    return sockdiag_tcp_states_from(SOCKDIAG_SOURCE_AUTO, inodes, n, out);
}

/* The rows of a whole table, for sockdiag_tcp_table. */
struct sockdiag_rows {
    struct sockdiag_sock *rows;
    size_t n, cap;
    bool out_of_memory;
    bool all; /* the rows no fd holds (inode 0) too */
};

static void sockdiag_collect_row(const struct sockdiag_sock *sock, void *ctx)
{
    struct sockdiag_rows *all = ctx;
    if ((sock->inode == 0 && !all->all) || all->out_of_memory)
        return; /* TIME_WAIT and request sockets belong to no fd */
    if (all->n == all->cap) {
        size_t cap = all->cap ? 2 * all->cap : 256;
        struct sockdiag_sock *bigger = realloc(all->rows, cap * sizeof(*bigger));
        if (bigger == NULL) {
            all->out_of_memory = true;
            return;
        }
        all->rows = bigger;
        all->cap = cap;
    }
    all->rows[all->n++] = *sock;
}

static void sockdiag_reset_rows(void *ctx)
{
    struct sockdiag_rows *all = ctx;
    all->n = 0;
    all->out_of_memory = false;
}

static int sockdiag_compare_row(const void *a, const void *b)
{
    return cf_compare_u64(&((const struct sockdiag_sock *)a)->inode,
                          &((const struct sockdiag_sock *)b)->inode);
}

/* Sorts by inode and drops repeats (a row read twice while the table changed; the rows of
 * inode 0 are different sockets, all kept). */
static size_t sockdiag_sort_rows(struct sockdiag_sock *rows, size_t n)
{
    if (n == 0)
        return 0;
    qsort(rows, n, sizeof(*rows), sockdiag_compare_row);
    size_t kept = 1;
    for (size_t i = 1; i < n; i++) {
        if (rows[i].inode == 0 || rows[i].inode != rows[kept - 1].inode)
            rows[kept++] = rows[i];
    }
    return kept;
}

static int sockdiag_table_collect(enum sockdiag_source source, bool with_orphans,
                                  struct sockdiag_sock **rows, size_t *n)
{
    struct sockdiag_rows all = {.all = with_orphans};
    int rc =
        sockdiag_walk(source, SOCKDIAG_ALL_STATES, sockdiag_collect_row, sockdiag_reset_rows, &all);
    if (rc == 0 && all.out_of_memory)
        rc = -ENOMEM;
    if (rc < 0) {
        free(all.rows);
        all = (struct sockdiag_rows){0};
    }
    *rows = all.rows;
    *n = sockdiag_sort_rows(all.rows, all.n);
    return rc;
}

int sockdiag_tcp_table_from(enum sockdiag_source source, struct sockdiag_sock **rows, size_t *n)
{
    return sockdiag_table_collect(source, false, rows, n);
}

int sockdiag_tcp_table_all_from(enum sockdiag_source source, struct sockdiag_sock **rows, size_t *n)
{
    return sockdiag_table_collect(source, true, rows, n);
}

int sockdiag_tcp_table_all(struct sockdiag_sock **rows, size_t *n)
{
    return sockdiag_tcp_table_all_from(SOCKDIAG_SOURCE_AUTO, rows, n);
}

/* An IPv4 end as IPv4, a mapped IPv6 one too (a server on [::] sees its IPv4 peers so). */
static struct sockdiag_endpoint sockdiag_endpoint_plain(const struct sockdiag_endpoint *end)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockdiag_endpoint out = *end;
    if (end->family == AF_INET6 && memcmp(end->addr, mapped, sizeof(mapped)) == 0) {
        out.family = AF_INET;
        memset(out.addr, 0, sizeof(out.addr));
        memcpy(out.addr, end->addr + 12, 4);
    }
    return out;
}

static bool sockdiag_endpoint_same(const struct sockdiag_endpoint *a,
                                   const struct sockdiag_endpoint *b)
{
    struct sockdiag_endpoint x = sockdiag_endpoint_plain(a), y = sockdiag_endpoint_plain(b);
    size_t len = x.family == AF_INET6 ? 16 : 4;
    return x.family == y.family && x.port == y.port && memcmp(x.addr, y.addr, len) == 0;
}

const struct sockdiag_sock *sockdiag_table_find_pair(const struct sockdiag_sock *rows, size_t n,
                                                     const struct sockdiag_endpoint *local,
                                                     const struct sockdiag_endpoint *peer)
{
    /* linear: called for the few leftovers no fault client explains, on one table */
    for (size_t i = 0; i < n; i++)
        if (sockdiag_endpoint_same(&rows[i].local, local) &&
            sockdiag_endpoint_same(&rows[i].peer, peer))
            return &rows[i];
    return NULL;
}

bool sockdiag_endpoint_is_loopback(const struct sockdiag_endpoint *end)
{
    static const uint8_t one[16] = {[15] = 1};
    struct sockdiag_endpoint e = sockdiag_endpoint_plain(end);
    if (e.family == AF_INET)
        return e.addr[0] == 127;
    return e.family == AF_INET6 && memcmp(e.addr, one, sizeof(one)) == 0;
}

int sockdiag_tcp_table(struct sockdiag_sock **rows, size_t *n)
{
    return sockdiag_tcp_table_from(SOCKDIAG_SOURCE_AUTO, rows, n);
}

const struct sockdiag_sock *sockdiag_table_find(const struct sockdiag_sock *rows, size_t n,
                                                uint64_t inode)
{
    if (n == 0)
        return NULL;
    struct sockdiag_sock key = {.inode = inode};
    return bsearch(&key, rows, n, sizeof(key), sockdiag_compare_row);
}

struct sockdiag_listener {
    unsigned port;
    bool found;
    unsigned queued;
    unsigned backlog;
};

/* Takes the first listener on the port. IPv4 is walked first, which is the one that matters to a
 * harness that only connects to 127.0.0.0/8. */
static void sockdiag_find_listener(const struct sockdiag_sock *sock, void *ctx)
{
    struct sockdiag_listener *listener = ctx;
    if (listener->found || sock->state != SOCKDIAG_LISTEN || sock->local.port != listener->port)
        return;
    listener->found = true;
    listener->queued = sock->rqueue;
    listener->backlog = sock->wqueue_known ? sock->wqueue : 0; /* 0: unknown (from /proc) */
}

static void sockdiag_reset_listener(void *ctx)
{
    struct sockdiag_listener *listener = ctx;
    listener->found = false;
}

int sockdiag_listen_queue_from(enum sockdiag_source source, int port, unsigned *queued,
                               unsigned *backlog)
{
    *queued = 0;
    *backlog = 0;
    if (port <= 0 || port > 65535)
        return -EINVAL;
    struct sockdiag_listener listener = {.port = (unsigned)port};
    int rc = sockdiag_walk(source, 1u << SOCKDIAG_LISTEN, sockdiag_find_listener,
                           sockdiag_reset_listener, &listener);
    if (rc < 0)
        return rc;
    if (!listener.found)
        return -ENOENT;
    *queued = listener.queued;
    *backlog = listener.backlog;
    return 0;
}

int sockdiag_listen_queue(int port, unsigned *queued, unsigned *backlog)
{
    return sockdiag_listen_queue_from(SOCKDIAG_SOURCE_AUTO, port, queued, backlog);
}
