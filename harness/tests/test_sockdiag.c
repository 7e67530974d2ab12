/* Tests for sockdiag: real loopback sockets in known TCP states, checked through both sources
 * (netlink and /proc/net/tcp), plus the /proc parser on canned text. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_time.h"
#include "sockdiag.h"
#include "sockdiag_internal.h"
#include "support.h"

#define CLIENTS     5
#define BACKLOG     7
#define DEADLINE_MS 5000

static const enum sockdiag_source sources[] = {SOCKDIAG_SOURCE_AUTO, SOCKDIAG_SOURCE_NETLINK,
                                               SOCKDIAG_SOURCE_PROC};

static uint64_t inode_of(int fd)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    return (uint64_t)st.st_ino;
}

/* A TCP socket bound to 127.0.0.1 on a kernel-chosen port, not listening. */
static int bound_socket_open(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static int listener_open(int backlog, int *port)
{
    int fd = bound_socket_open(port);
    ck_assert_int_eq(listen(fd, backlog), 0);
    return fd;
}

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

/* A listener with one connection, accepted: returns the accepted socket. */
static int connection_open(int *listener, int *client, int *port)
{
    *listener = listener_open(BACKLOG, port);
    *client = client_connect(*port);
    int accepted = accept4(*listener, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(accepted, 0);
    return accepted;
}

/* The handshake's last step reaches the listener asynchronously (in softirq), so the queue is
 * polled until it shows every client, within a deadline. The retries also ride out a table walk
 * that misses the row while other processes churn sockets. */
struct queue_watch {
    enum sockdiag_source source;
    int port, rc;
    unsigned want, queued, *backlog;
};

static bool queue_reached(void *arg)
{
    struct queue_watch *w = arg;
    w->rc = sockdiag_listen_queue_from(w->source, w->port, &w->queued, w->backlog);
    return w->rc == 0 && w->queued == w->want;
}

static void wait_listen_queue(enum sockdiag_source source, int port, unsigned want,
                              unsigned *backlog)
{
    struct queue_watch w = {.source = source, .port = port, .want = want, .backlog = backlog};
    ts_wait_until(queue_reached, &w, DEADLINE_MS, 1);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_uint_eq(w.queued, want);
}

/* Waits until `want` of the sockets are in `state` and `matched` are found at all. Besides
 * waiting for the FIN to be processed, this rides out the kernel's table walks, which are not
 * snapshots: a row can be missed while other processes on the machine open and close sockets. */
struct states_watch {
    enum sockdiag_source source;
    const uint64_t *inodes;
    size_t n;
    int state;
    unsigned want, matched;
    struct tcp_states *out;
};

static bool states_reached(void *arg)
{
    struct states_watch *w = arg;
    ck_assert_int_eq(sockdiag_tcp_states_from(w->source, w->inodes, w->n, w->out), 0);
    return w->out->count[w->state] == w->want && w->out->matched == w->matched;
}

static void wait_states(enum sockdiag_source source, const uint64_t *inodes, size_t n, int state,
                        unsigned want, unsigned matched, struct tcp_states *out)
{
    struct states_watch w = {source, inodes, n, state, want, matched, out};
    ts_wait_until(states_reached, &w, DEADLINE_MS, 1);
    ck_assert_msg(out->count[state] == want, "%s: %u, want %u", tcp_state_name(state),
                  out->count[state], want);
    ck_assert_uint_eq(out->matched, matched);
}

START_TEST(test_listen_queue_counts_unaccepted)
{
    int port;
    int listener = listener_open(BACKLOG, &port);
    int clients[CLIENTS];
    unsigned backlog;

    wait_listen_queue(SOCKDIAG_SOURCE_AUTO, port, 0, &backlog);
    ck_assert_uint_eq(backlog, BACKLOG);

    for (int i = 0; i < CLIENTS; i++)
        clients[i] = client_connect(port);
    for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
        wait_listen_queue(sources[s], port, CLIENTS, &backlog);
        /* /proc/net/tcp has no backlog column: 0 means unknown. */
        ck_assert_uint_eq(backlog, sources[s] == SOCKDIAG_SOURCE_PROC ? 0 : BACKLOG);
    }

    for (int i = 0; i < CLIENTS; i++)
        close(clients[i]);
    close(listener);
}
END_TEST

START_TEST(test_accepted_sockets_go_to_close_wait)
{
    int port;
    int listener = listener_open(BACKLOG, &port);
    int clients[CLIENTS], accepted[CLIENTS];
    uint64_t inodes[CLIENTS + 1];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = client_connect(port);
    for (int i = 0; i < CLIENTS; i++) {
        accepted[i] = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(accepted[i], 0);
        inodes[CLIENTS - 1 - i] = inode_of(accepted[i]); /* reversed: input need not be sorted */
    }
    inodes[CLIENTS] = inode_of(listener);

    struct tcp_states states;
    for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
        wait_states(sources[s], inodes, CLIENTS + 1, TCP_ESTABLISHED, CLIENTS, CLIENTS + 1,
                    &states);
        ck_assert_uint_eq(states.count[TCP_LISTEN], 1);
        ck_assert_uint_eq(states.listening, 1);
    }

    /* The clients close: their FIN leaves the accepted sockets in CLOSE_WAIT, the state a server
     * that never closes its side piles up. */
    for (int i = 0; i < CLIENTS; i++)
        close(clients[i]);
    for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
        wait_states(sources[s], inodes, CLIENTS, TCP_CLOSE_WAIT, CLIENTS, CLIENTS, &states);
        ck_assert_uint_eq(states.count[TCP_ESTABLISHED], 0);
        ck_assert_uint_eq(states.listening, 0);
    }
    /* An inode given twice is still one socket. */
    uint64_t repeated[CLIENTS + 1];
    memcpy(repeated, inodes, CLIENTS * sizeof(inodes[0]));
    repeated[CLIENTS] = inodes[0];
    wait_states(SOCKDIAG_SOURCE_AUTO, repeated, CLIENTS + 1, TCP_CLOSE_WAIT, CLIENTS, CLIENTS,
                &states);

    for (int i = 0; i < CLIENTS; i++)
        close(accepted[i]);
    close(listener);
}
END_TEST

/* "127.0.0.1:PORT" of a socket's own end (getsockname) or its peer's. */
static void endpoint_text(int fd, bool peer, char *buf, size_t size)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int rc = peer ? getpeername(fd, (struct sockaddr *)&addr, &len)
                  : getsockname(fd, (struct sockaddr *)&addr, &len);
    ck_assert_int_eq(rc, 0);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    snprintf(buf, size, "%s:%u", host, ntohs(addr.sin_port));
}

/* Polls the table until the accepted socket shows the 5 unread bytes (the table walk is not a
 * snapshot, and the bytes travel through softirq), then returns its row. */
static struct sockdiag_sock wait_row(enum sockdiag_source source, uint64_t inode, unsigned rqueue,
                                     struct sockdiag_sock *listener_row, uint64_t listener_inode)
{
    uint64_t deadline = cf_now_ms() + DEADLINE_MS;
    for (;;) {
        struct sockdiag_sock *rows;
        size_t n;
        ck_assert_int_eq(sockdiag_tcp_table_from(source, &rows, &n), 0);
        const struct sockdiag_sock *row = sockdiag_table_find(rows, n, inode);
        const struct sockdiag_sock *listener = sockdiag_table_find(rows, n, listener_inode);
        for (size_t i = 1; i < n; i++)
            ck_assert_uint_lt(rows[i - 1].inode, rows[i].inode);
        bool both = row != NULL && listener != NULL;
        struct sockdiag_sock found = row ? *row : (struct sockdiag_sock){0};
        if (listener != NULL)
            *listener_row = *listener;
        free(rows); /* row and listener point into it */
        if ((both && found.rqueue == rqueue) || cf_now_ms() > deadline) {
            ck_assert_msg(both, "rows not found");
            return found;
        }
        poll(NULL, 0, 1);
    }
}

START_TEST(test_table_rows_carry_addresses_and_queues)
{
    int port, listener, client;
    int accepted = connection_open(&listener, &client, &port);
    ck_assert_int_eq(send(client, "hello", 5, 0), 5);
    char local[64], peer[64], text[64];
    endpoint_text(accepted, false, local, sizeof(local));
    endpoint_text(accepted, true, peer, sizeof(peer));
    for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
        struct sockdiag_sock listen_row = {0};
        struct sockdiag_sock row =
            wait_row(sources[s], inode_of(accepted), 5, &listen_row, inode_of(listener));
        ck_assert_int_eq(row.state, TCP_ESTABLISHED);
        ck_assert_uint_eq(row.rqueue, 5);
        sockdiag_format_endpoint(&row.local, text, sizeof(text));
        ck_assert_str_eq(text, local);
        sockdiag_format_endpoint(&row.peer, text, sizeof(text));
        ck_assert_str_eq(text, peer);
        ck_assert_int_eq(listen_row.state, TCP_LISTEN);
        ck_assert_uint_eq(listen_row.local.port, (unsigned)port);
        ck_assert_uint_eq(listen_row.wqueue_known ? listen_row.wqueue : BACKLOG, BACKLOG);
    }
    ck_assert_ptr_null(sockdiag_table_find(NULL, 0, 1));
    close(client);
    close(accepted);
    close(listener);
}
END_TEST

START_TEST(test_sockets_outside_tcp_tables_not_counted)
{
    int pair[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    int port;
    int unbound = socket(AF_INET, SOCK_STREAM, 0); /* a TCP socket in no table yet */
    int bound = bound_socket_open(&port);
    ck_assert_int_ge(unbound, 0);
    uint64_t inodes[] = {inode_of(pair[0]), inode_of(pair[1]), inode_of(unbound), inode_of(bound),
                         inode_of(pair[0])};

    struct tcp_states states;
    for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
        ck_assert_int_eq(sockdiag_tcp_states_from(sources[s], inodes, 5, &states), 0);
        ck_assert_uint_eq(states.matched, 0);
    }
    memset(&states, 0xff, sizeof(states));
    ck_assert_int_eq(sockdiag_tcp_states(NULL, 0, &states), 0);
    ck_assert_uint_eq(states.matched, 0);
    ck_assert_uint_eq(states.count[TCP_ESTABLISHED], 0);

    close(pair[0]);
    close(pair[1]);
    close(unbound);
    close(bound);
}
END_TEST

START_TEST(test_listen_queue_without_listener)
{
    int port;
    int bound = bound_socket_open(&port); /* holds the port so nobody listens on it */
    unsigned queued = 99, backlog = 99;
    for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++)
        ck_assert_int_eq(sockdiag_listen_queue_from(sources[s], port, &queued, &backlog), -ENOENT);
    ck_assert_int_eq(sockdiag_listen_queue(0, &queued, &backlog), -EINVAL);
    ck_assert_int_eq(sockdiag_listen_queue(65536, &queued, &backlog), -EINVAL);
    close(bound);
}
END_TEST

/* The IPv6 table is searched too: a listener on [::1] (no traffic is sent). */
START_TEST(test_listen_queue_ipv6)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        if (fd >= 0)
            close(fd);
        return; /* no IPv6 here: nothing to check */
    }
    ck_assert_int_eq(listen(fd, 3), 0);
    socklen_t len = sizeof(addr);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    int port = ntohs(addr.sin6_port);

    unsigned backlog;
    wait_listen_queue(SOCKDIAG_SOURCE_NETLINK, port, 0, &backlog);
    ck_assert_uint_eq(backlog, 3);
    wait_listen_queue(SOCKDIAG_SOURCE_PROC, port, 0, &backlog);

    uint64_t inode = inode_of(fd);
    struct tcp_states states;
    for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
        wait_states(sources[s], &inode, 1, TCP_LISTEN, 1, 1, &states);
        ck_assert_uint_eq(states.listening, 1);
    }
    close(fd);
}
END_TEST

START_TEST(test_state_names)
{
    ck_assert_str_eq(tcp_state_name(TCP_ESTABLISHED), "ESTABLISHED");
    ck_assert_str_eq(tcp_state_name(TCP_CLOSE_WAIT), "CLOSE_WAIT");
    ck_assert_str_eq(tcp_state_name(TCP_LISTEN), "LISTEN");
    ck_assert_str_eq(tcp_state_name(TCP_CLOSING), "CLOSING");
    ck_assert_str_eq(tcp_state_name(0), "UNKNOWN");
    ck_assert_str_eq(tcp_state_name(12), "UNKNOWN");
    ck_assert_str_eq(tcp_state_name(-1), "UNKNOWN");
}
END_TEST

/* Makes socket(AF_NETLINK, ...) fail with EACCES in this process, as some sandboxes do. Runs only
 * in a throwaway child: a seccomp filter cannot be removed. */
static int refuse_netlink_sockets(void)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
}

/* Exit codes of the child below: which check failed. */
enum { FALLBACK_OK, FALLBACK_NO_SECCOMP, FALLBACK_NETLINK_WORKS, FALLBACK_STATES, FALLBACK_QUEUE };

static int fallback_child(const uint64_t *inodes, size_t n, int port)
{
    if (refuse_netlink_sockets() != 0)
        return FALLBACK_NO_SECCOMP;
    struct tcp_states states;
    if (sockdiag_tcp_states_from(SOCKDIAG_SOURCE_NETLINK, inodes, n, &states) != -EACCES)
        return FALLBACK_NETLINK_WORKS;
    /* A few tries: a /proc walk can miss a row while other processes churn sockets. */
    bool states_ok = false;
    for (int try = 0; try < 100 && !states_ok; try++) {
        states_ok = sockdiag_tcp_states(inodes, n, &states) == 0 && states.matched == n &&
                    states.count[TCP_ESTABLISHED] == n - 1 && states.listening == 1;
    }
    if (!states_ok)
        return FALLBACK_STATES;
    unsigned queued, backlog;
    bool queue_ok = false;
    for (int try = 0; try < 100 && !queue_ok; try++) {
        queue_ok =
            sockdiag_listen_queue(port, &queued, &backlog) == 0 && queued == 0 && backlog == 0;
    }
    if (!queue_ok)
        return FALLBACK_QUEUE;
    return FALLBACK_OK;
}

START_TEST(test_falls_back_to_proc_without_netlink)
{
    int port, listener, client;
    int accepted = connection_open(&listener, &client, &port);
    uint64_t inodes[] = {inode_of(listener), inode_of(client), inode_of(accepted)};

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fallback_child(inodes, 3, port));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == FALLBACK_OK,
                  "fallback child: status %d", status);

    close(client);
    close(accepted);
    close(listener);
}
END_TEST

/* Rows as Linux prints them: a listener with 3 queued, an ESTABLISHED and a CLOSE_WAIT connection,
 * a TIME_WAIT (no inode) and an IPv6 listener. */
static const char canned_table[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
    "retrnsmt   uid  "
    "timeout inode\n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 "
    "00000000  1000        "
    "0 4242 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 "
    "00000000  1000        "
    "0 4243 1 0000000000000000 20 4 30 10 -1\n"
    "   2: 0100007F:1F90 0100007F:C351 08 00000000:0000000A 00:00000000 "
    "00000000  1000        "
    "0 4244 1 0000000000000000 20 4 30 10 -1\n"
    "   3: 0100007F:1F90 0100007F:C352 06 00000000:00000000 03:00001770 "
    "00000000     0        "
    "0 0 3 0000000000000000\n"
    "   0: 00000000000000000000000001000000:0050 "
    "00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 99999 1 "
    "0000000000000000 100 0 0 "
    "10 0\n"
    "garbage line\n";

struct collected {
    struct sockdiag_sock rows[8];
    size_t n;
};

static void collect_row(const struct sockdiag_sock *sock, void *ctx)
{
    struct collected *all = ctx;
    ck_assert_uint_lt(all->n, 8);
    all->rows[all->n++] = *sock;
}

static void assert_row(const struct sockdiag_sock *row, uint64_t inode, int state, unsigned port,
                       unsigned rqueue)
{
    ck_assert_uint_eq(row->inode, inode);
    ck_assert_int_eq(row->state, state);
    ck_assert_uint_eq(row->local.port, port);
    ck_assert_uint_eq(row->rqueue, rqueue);
    ck_assert(!row->wqueue_known);
}

static void assert_endpoint(const struct sockdiag_endpoint *end, const char *want)
{
    char text[64];
    sockdiag_format_endpoint(end, text, sizeof(text));
    ck_assert_str_eq(text, want);
}

START_TEST(test_proc_parser_on_canned_table)
{
    FILE *table = fmemopen((void *)canned_table, sizeof(canned_table) - 1, "r");
    ck_assert_ptr_nonnull(table);
    struct collected all = {0};
    ck_assert_int_eq(sockdiag_proc_scan(table, collect_row, &all), 0);
    fclose(table);

    ck_assert_uint_eq(all.n, 5);
    assert_row(&all.rows[0], 4242, TCP_LISTEN, 8080, 3);
    assert_row(&all.rows[1], 4243, TCP_ESTABLISHED, 8080, 0);
    assert_row(&all.rows[2], 4244, TCP_CLOSE_WAIT, 8080, 10);
    assert_row(&all.rows[3], 0, TCP_TIME_WAIT, 8080, 0);
    assert_row(&all.rows[4], 99999, TCP_LISTEN, 80, 0);
    assert_endpoint(&all.rows[1].local, "127.0.0.1:8080");
    assert_endpoint(&all.rows[1].peer, "127.0.0.1:50000");
    assert_endpoint(&all.rows[4].local, "[::1]:80");
    assert_endpoint(&all.rows[4].peer, "[::]:0");

    struct sockdiag_sock row;
    ck_assert(!sockdiag_proc_parse_line("", &row));
    ck_assert(!sockdiag_proc_parse_line("  sl  local_address rem_address   st\n", &row));
    ck_assert(!sockdiag_proc_parse_line("   0: 0100007F:1F90 00000000:0000 0A\n", &row));
}
END_TEST

static Suite *sockdiag_suite(void)
{
    Suite *suite = suite_create("sockdiag");
    TCase *tc = tcase_create("loopback");
    tcase_set_timeout(tc, 60); /* sanitizer builds are slow; waits have their own deadline */
    tcase_add_test(tc, test_listen_queue_counts_unaccepted);
    tcase_add_test(tc, test_accepted_sockets_go_to_close_wait);
    tcase_add_test(tc, test_sockets_outside_tcp_tables_not_counted);
    tcase_add_test(tc, test_listen_queue_without_listener);
    tcase_add_test(tc, test_listen_queue_ipv6);
    tcase_add_test(tc, test_falls_back_to_proc_without_netlink);
    tcase_add_test(tc, test_table_rows_carry_addresses_and_queues);
    suite_add_tcase(suite, tc);

    TCase *parsing = tcase_create("parsing");
    tcase_add_test(parsing, test_state_names);
    tcase_add_test(parsing, test_proc_parser_on_canned_table);
    suite_add_tcase(suite, parsing);
    return suite;
}

int main(void)
{
    return ts_run_suite(sockdiag_suite());
}
