/* connfault-server: entry point. Parses flags, starts the server, reports readiness. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "server.h"

int main(int argc, char **argv)
{
    struct server_config cfg;
    char err[256];
    config_defaults(&cfg);
    switch (config_parse_args(&cfg, argc, argv, stdout, err, sizeof(err))) {
    case CONFIG_EXIT_OK:
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "connfault-server: %s\n", err);
        return 2;
    case CONFIG_OK:
        break;
    }
    static struct server srv; /* large (buffers are separate), kept off the stack */
    if (server_init(&srv, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "connfault-server: %s\n", err);
        server_free(&srv);
        return 1;
    }
    printf("listening on %s:%d\n", cfg.bind_addr, srv.listener.port);
    fflush(stdout);
    if (cfg.bug != BUG_NONE)
        fprintf(stderr, "connfault-server: running with --bug %s (a deliberate failure mode)\n",
                bug_mode_name(cfg.bug));
    int rc = server_run(&srv);
    server_free(&srv);
    return rc < 0 ? 1 : 0;
}
