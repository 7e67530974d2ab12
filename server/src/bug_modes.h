/* bug_modes: the wrong ways, all chosen here and kept apart from the right ones.
 *
 * Each --bug NAME reproduces a failure seen in the field, in as little code as possible,
 * so the harness can show it catches it. The listener and the connection pool take their
 * behaviour from option structs (listener_opts, conn_opts) that the server fills with the
 * correct values and functions; bug_modes_apply then changes what the chosen mode needs.
 * Nothing else in the server tests which mode is on: adding one means a value, its
 * bug_modes_apply case (and, if a whole code path differs, a function here), and a test in
 * tests/test_server_bugs.c. */
#ifndef CONNFAULT_BUG_MODES_H
#define CONNFAULT_BUG_MODES_H

#include "config.h"

struct conn_opts;
struct listener_opts;

/* Turns the correct options into those of bug. BUG_NONE leaves them as they are. */
void bug_modes_apply(enum bug_mode bug, struct listener_opts *lo, struct conn_opts *co);

#endif
