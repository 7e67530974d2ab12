/* bug_modes: the wrong ways, kept apart from the right ones.
 *
 * Each --bug NAME reproduces a failure seen in the field, in as little code as possible,
 * so the harness can show it catches it. Bugs that are one changed line live at that line
 * behind `cfg.bug == ...` (sigpipe in conn_send and main, leak-on-error in conn_close,
 * emfile-spin in listener_out_of_fds, no-timeouts in config_parse_args); the two that are
 * whole different code paths live here. */
#ifndef CONNFAULT_BUG_MODES_H
#define CONNFAULT_BUG_MODES_H

struct server;

/* --bug accept-once: the edge-triggered listener of the first field report. */
void bug_accept_once(struct server *srv, int listen_fd);

/* --bug blocking: the embedded server of the second field report. */
void bug_serve_blocking(struct server *srv, int fd);

#endif
