/* listener: the listening socket and the accept loop, including what to do when the
 * process runs out of file descriptors.
 *
 * The listener knows nothing of connections: its owner says, through the callbacks of
 * struct listener_opts, whether there is room, takes each accepted socket, and closes an
 * idle connection when an fd is needed. The owner embeds the struct listener and finds
 * itself again with container_of. */
#ifndef CONNFAULT_LISTENER_H
#define CONNFAULT_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_loop.h"

struct listener;

/* What the listener does. The owner fills it with the correct behaviour (the values and
 * functions named below); bug_modes_apply may then swap in a wrong one. */
struct listener_opts {
    const char *bind_addr;        /* IPv4, read by listener_open only */
    int port;                     /* 0: the kernel picks one */
    bool tcp_nodelay;             /* true; inherited by accepted sockets, like the next one */
    uint64_t tcp_user_timeout_ms; /* 0: not set */
    uint32_t events;              /* epoll events to watch the listener with: EPOLLIN */
    int verbosity;
    /* The listener is readable: listener_accept_batch. */
    void (*accept)(struct listener *lst);
    /* accept() failed with EMFILE/ENFILE: listener_make_room. True if accept may be tried
     * again at once. */
    bool (*out_of_fds)(struct listener *lst);
    /* The owner's side. */
    bool (*full)(struct listener *lst);         /* no room for one more connection */
    void (*take)(struct listener *lst, int fd); /* serve this accepted non-blocking socket */
    /* Free an fd by closing an idle connection: 0 if one was closed; -EAGAIN if idle ones
     * exist but none may go before *retry_ms (loop time); -ENOENT if none is idle. */
    int (*evict_idle)(struct listener *lst, uint64_t *retry_ms);
};

struct listener {
    struct listener_opts opts;
    struct event_source src;
    struct event_loop *loop;
    int fd;
    int port;       /* the port actually bound */
    int reserve_fd; /* an fd held back for EMFILE: see listener.c */
    bool paused;
    struct loop_timer resume_timer;
};

/* Binds, listens and joins loop. 0, or -errno with err set; the listener is closed then.
 * Before it is opened, a listener with fd and reserve_fd at -1 and loop NULL may be closed. */
int listener_open(struct listener *lst, struct event_loop *loop, const struct listener_opts *opts,
                  char *err, size_t errlen);
void listener_close(struct listener *lst);

/* The correct opts.accept and opts.out_of_fds. */
void listener_accept_batch(struct listener *lst);
bool listener_make_room(struct listener *lst);

#endif
