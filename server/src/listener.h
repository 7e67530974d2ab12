/* listener: the listening socket and the accept loop, including what to do when the
 * process runs out of file descriptors. */
#ifndef CONNFAULT_LISTENER_H
#define CONNFAULT_LISTENER_H

#include <stdbool.h>

#include "event_loop.h"

struct server;

struct listener {
    struct event_source src;
    struct server *srv;
    int fd;
    int port;       /* the port actually bound */
    int reserve_fd; /* an fd held back for EMFILE: see listener.c */
    bool paused;
    struct loop_timer resume_timer;
};

int listener_open(struct listener *lst, struct server *srv, char *err, size_t errlen);
void listener_close(struct listener *lst);

#endif
