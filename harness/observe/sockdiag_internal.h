/* sockdiag internals, exposed for the tests: the two sources of TCP socket tables (netlink
 * inet_diag and /proc/net/tcp{,6}) behind one visitor interface, and the /proc/net/tcp line parser.
 * Not for use outside sockdiag.c and its test. */
#ifndef CONNFAULT_SOCKDIAG_INTERNAL_H
#define CONNFAULT_SOCKDIAG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sockdiag.h"

typedef void (*sockdiag_visit_fn)(const struct sockdiag_sock *sock, void *ctx);

enum sockdiag_source {
    SOCKDIAG_SOURCE_AUTO, /* netlink, or /proc when netlink fails */
    SOCKDIAG_SOURCE_NETLINK,
    SOCKDIAG_SOURCE_PROC,
};

/* The public functions with the source forced. */
int sockdiag_tcp_states_from(enum sockdiag_source source, const uint64_t *inodes, size_t n,
                             struct tcp_states *out);
int sockdiag_tcp_table_from(enum sockdiag_source source, struct sockdiag_sock **rows, size_t *n);
int sockdiag_tcp_table_all_from(enum sockdiag_source source, struct sockdiag_sock **rows,
                                size_t *n);
int sockdiag_listen_queue_from(enum sockdiag_source source, int port, unsigned *queued,
                               unsigned *backlog);

/* Parses one line of /proc/net/tcp or /proc/net/tcp6. false for the header line and anything else
 * that is not a socket row. */
bool sockdiag_proc_parse_line(const char *line, struct sockdiag_sock *out);

/* Visits every socket row of an opened /proc/net/tcp{,6}-formatted stream. */
int sockdiag_proc_scan(FILE *table, sockdiag_visit_fn visit, void *ctx);

#endif
