/* bug_modes: the wrong ways, all chosen here and kept apart from the right ones.
 *
 * Each --bug NAME reproduces a failure seen in the field, in as little code as possible,
 * so the harness can show it catches it. The listener and the connection pool take their
 * behaviour from option structs (listener_opts, conn_opts) that the server fills with the
 * correct values and functions; bug_modes_apply then changes what the chosen mode needs.
 * Nothing else in the server tests which mode is on. Adding a mode: a value below, a row
 * of the catalogue at the end of bug_modes.c (name, the symptom --help shows, the function
 * that changes the options), and a test in tests/test_server_bugs.c. */
#ifndef CONNFAULT_BUG_MODES_H
#define CONNFAULT_BUG_MODES_H

#include <stddef.h>
#include <stdio.h>

struct conn_opts;
struct listener_opts;

enum bug_mode {
    BUG_NONE,
    BUG_ACCEPT_ONCE,
    BUG_BLOCKING,
    BUG_LEAK_ON_ERROR,
    BUG_SIGPIPE,
    BUG_EMFILE_SPIN,
    BUG_NO_TIMEOUTS,
    BUG_HALF_CLOSE_DROP,
    BUG_TIMER_FLUSH,
    BUG_MODE_COUNT /* not a mode: new ones go above */
};

/* The mode named name (as given to --bug). 0, or -EINVAL for an unknown name. */
int bug_mode_parse(const char *name, enum bug_mode *bug);
/* The name of bug; "none" for BUG_NONE. */
const char *bug_mode_name(enum bug_mode bug);
/* For --help: one line per mode, its name and the symptom it produces. */
void bug_modes_usage(FILE *out);
/* Every name, comma separated (for error messages), cut to fit len. */
void bug_modes_list(char *buf, size_t len);

/* Turns the correct options into those of bug. BUG_NONE leaves them as they are. */
void bug_modes_apply(enum bug_mode bug, struct listener_opts *lo, struct conn_opts *co);

#endif
