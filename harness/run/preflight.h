/* preflight: before the first scenario, check that the target has the paths the scenarios
 * ask for, so that no scenario "passes" against a 404 where its fault never happened.
 *
 * One GET per path, from the fault clients' host (127.0.0.2, bound as they are: a server that
 * refuses that host is seen here), for each of --probe-path (a 2xx), --large-path (a 2xx of at
 * least SCENARIO_LARGE_MIN bytes) and --huge-path (SCENARIO_HUGE_MIN) that a scenario of the
 * run uses. The body is counted up to the threshold, then the connection is closed. A target
 * the harness starts is started for the pre-flight alone, then stopped. Targets spoken to in
 * raw bytes (--probe-raw, --request-raw: not HTTP) are not checked. */
#ifndef CONNFAULT_PREFLIGHT_H
#define CONNFAULT_PREFLIGHT_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "run.h"

#define PREFLIGHT_TIMEOUT_MS 10000 /* per path: connect, answer, and the body up to its need */

/* What one path must answer, and who needs it (for the message). */
struct preflight_need {
    const char *flag;   /* "--huge-path" */
    const char *path;   /* "/bytes/16777216" */
    uint64_t min_bytes; /* of body; 0: any 2xx */
    const char *users;  /* "zero-window, drop-mid-response, cable-pull" */
    bool plural;        /* users is more than one scenario */
};

/* One GET of need->path from `from` to `to` (Host: host). 0 when it answered as needed, else
 * RUN_SETUP_ERROR with a message naming the flag, the answer and the fix in err, or
 * RUN_INTERRUPTED when *interrupted was set. note (or NULL) gets one line of what was seen. */
int preflight_check(const struct sockaddr_in *to, struct in_addr from, const char *host,
                    const struct preflight_need *need, volatile sig_atomic_t *interrupted,
                    FILE *note, char *err, size_t errlen);

#endif
