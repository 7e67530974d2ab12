/* report: the ways of writing a run's results (result.h) out: human lines on a FILE, JUnit
 * XML, JSON, TAP. Writers only format; they decide nothing. */
#ifndef CONNFAULT_REPORT_H
#define CONNFAULT_REPORT_H

#include "result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Human output. One line per scenario as it finishes; totals and seed at the end.
 * color: use ANSI colors (caller decides: a terminal and NO_COLOR unset). */
void report_print_scenario(FILE *out, const struct scenario_result *r, bool verbose, bool color);
void report_print_totals(FILE *out, const struct run_report *rep, bool color);

/* 0, or -errno with a message in err. Files are written to a temporary name and renamed. */
int report_write_junit(const char *path, const struct run_report *rep, char *err, size_t errlen);
int report_write_json(const char *path, const struct run_report *rep, char *err, size_t errlen);
/* TAP version 13 (for prove): "1..N", then per scenario "ok N - NAME" (pass), "ok N - NAME #
 * SKIP REASON" (skip) or "not ok N - NAME" (fail and error) followed by a YAML block: message,
 * severity (fail|error), the failed checks with their summaries and numbers, reason,
 * diagnosis, capture, groups. A last comment line has the totals and the seed. */
int report_write_tap(const char *path, const struct run_report *rep, char *err, size_t errlen);

#endif
