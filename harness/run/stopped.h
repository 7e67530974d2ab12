/* stopped: a run that stops before its last scenario (a set-up error, an interrupt) still
 * says so in its reports, as entries with their reason. CI reads the testcases: a run cut
 * short would otherwise look like a shorter run with nothing wrong (JUnit tests="0"). */
#ifndef CONNFAULT_STOPPED_H
#define CONNFAULT_STOPPED_H

#include <stddef.h>

struct run_report;
struct scenario;

/* The name of the entry that stands for the run itself (not one of its scenarios). */
#define STOPPED_SETUP_NAME "set-up"

/* What became of a scenario after the one the run stopped in: with --jobs others were running,
 * or had even finished, when it stopped. NULL where a function takes a list of them: none
 * was run (one at a time). */
enum stopped_fate {
    STOPPED_NOT_RUN,  /* never started */
    STOPPED_FINISHED, /* its verdict came back: it stands, as it is in rep->scenarios[i] */
    STOPPED_CUT,      /* stopped before its verdict: its partial result is in rep->scenarios[i] */
};

/* A set-up error (err) stopped the run before list[next] (during it when it had started; next
 * == n: after the last): one `error` entry named "set-up" with err and the scenarios not run;
 * then, with fate (indexed as list), each scenario after next that finished (its verdict) or was
 * stopped by it (`error`). 0, or -1 out of memory (the report then has no entry). */
int stopped_setup_error(struct run_report *rep, const char *err, const struct scenario *list, int n,
                        int next, const enum stopped_fate *fate);

/* An interrupt (SIGINT, SIGTERM) stopped the run during list[next] (next < 0: before the first,
 * in the pre-flight). The scenario interrupted, whose partial result is rep->scenarios
 * [rep->nscenarios] (what was measured so far: its clients' evidence), becomes an `error`
 * (no verdict); before any scenario, a "set-up" entry in error says so. Every scenario not
 * run is `skip`, "not run: interrupted"; with fate (--jobs), one that finished keeps its verdict
 * and one the interrupt cut short is in `error` too. 0, or -1 out of memory. */
int stopped_interrupted(struct run_report *rep, const struct scenario *list, int n, int next,
                        const enum stopped_fate *fate);

#endif
