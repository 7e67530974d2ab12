/* config: connfault-server's settings and their command line. */
#ifndef CONNFAULT_CONFIG_H
#define CONNFAULT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bug_modes.h"

struct server_config {
    char bind_addr[64];
    int port; /* 0: the kernel picks one */
    unsigned max_conns;
    unsigned max_header_bytes;
    /* Timeouts in milliseconds; 0 disables one. */
    uint64_t header_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t send_timeout_ms;
    uint64_t tcp_user_timeout_ms;
    uint64_t shutdown_timeout_ms;
    /* Out of fds, a connection may be evicted once idle this long. */
    uint64_t evict_grace_ms;
    enum bug_mode bug; /* BUG_NONE, or the --bug mode: see bug_modes.h */
    int verbosity;     /* 0 quiet, 1 normal, 2 verbose */
};

enum config_result {
    CONFIG_OK,
    CONFIG_EXIT_OK, /* --help or --version was printed */
    CONFIG_ERROR,   /* message in err */
};

void config_defaults(struct server_config *cfg);
enum config_result config_parse_args(struct server_config *cfg, int argc, char **argv, FILE *out,
                                     char *err, size_t errlen);

#endif
