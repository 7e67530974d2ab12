/* result: what a run found, as data: verdicts, checks with their numbers, the run's totals.
 *
 * The checks, the capture and the diagnosis fill it in; the writers in report.h only format
 * it. Kept apart from the writers so that producing a result never depends on printing one. */
#ifndef CONNFAULT_RESULT_H
#define CONNFAULT_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ERROR: the harness could not exercise the scenario as written against this target (too few
 * of a group's clients reached their fault); decided only when no check failed. */
enum verdict { VERDICT_PASS, VERDICT_FAIL, VERDICT_SKIP, VERDICT_ERROR };

enum check_status {
    CHECK_OK,
    CHECK_FAILED,
    CHECK_NOT_CHECKED, /* could not be made (no access, target gone...): never counted as a pass */
};

enum field_type { FIELD_INT, FIELD_DOUBLE, FIELD_STR };

/* One number (or short string) behind a check, e.g. fds_baseline=12. Keys are JSON-safe. */
struct report_field {
    char key[32];
    enum field_type type;
    int64_t i;
    double d;
    char s[128];
};

#define REPORT_MAX_FIELDS 24

struct check_result {
    char name[16]; /* accepting, alive, fds, sockets, cpu, memory */
    enum check_status status;
    char summary[512]; /* one line with the numbers, for humans and JUnit */
    struct report_field fields[REPORT_MAX_FIELDS];
    size_t nfields;
};

#define REPORT_MAX_CHECKS 8

#define REPORT_MAX_STATUSES 8

struct status_count {
    int status;       /* of a client's first response; 0: the answer was not HTTP */
    uint64_t clients; /* how many clients got it */
};

/* What one client group did, and whether its fault happened (REPORTS.md lists the criteria). */
struct group_evidence {
    char name[64];
    char fault[24];      /* the fault it is meant to cause: "abort-after-bytes", "never-read"... */
    char criterion[200]; /* what counted as reaching it, in words with the scenario's numbers */
    uint64_t planned, started, connected, request_sent;
    struct status_count statuses[REPORT_MAX_STATUSES];
    size_t nstatuses;
    uint64_t status_other;                       /* clients whose status did not fit in statuses */
    uint64_t bytes_min, bytes_median, bytes_max; /* bytes read, over the clients started */
    uint64_t reached;                            /* clients that reached the fault */
    uint64_t connect_failed, peer_closed, peer_reset;
    uint64_t not_exercised; /* still connecting or reading at the cap after the duration:
                               closed by the harness, its fault never happened */
    char first_bytes[160];  /* the first bytes a client of the group got, C-escaped; or "" */
    /* a replay's entry only (0 otherwise): most connections open at once, in the replay and
     * in the capture (first to last packet of each flow) */
    uint64_t peak_open, capture_peak_open;
};

#define REPORT_MAX_GROUPS 16

/* A scenario with rlimit_nofile (fd-exhaustion): did the target reach the point where it could
 * take no more clients (run/exhaustion.h)? Sampled during the fault phase. */
enum exhaustion_how {
    EXHAUSTION_NOT_MEASURED, /* no rlimit_nofile, or no sample (the target gone at once) */
    EXHAUSTION_OUT_OF_FDS,   /* (a) one process's fds within a few of its RLIMIT_NOFILE */
    EXHAUSTION_STOPPED,      /* (b) its fds flat while connections waited in its accept queue */
    EXHAUSTION_NOT_REACHED,  /* neither: the fault did not happen */
};

struct exhaustion_evidence {
    enum exhaustion_how how;
    unsigned fds_peak, fds_limit; /* most fds one process held; its RLIMIT_NOFILE */
    unsigned tree_fds_peak;       /* most fds the whole tree held (each socket once) */
    unsigned processes_peak;
    double peak_at_s;             /* since the faults started, when fds_peak was reached */
    unsigned queue_peak, backlog; /* accept queue: most waiting; the backlog (0: unknown) */
    double plateau_s;             /* fds flat with connections waiting, up to the end of
                                     the fault phase; 0: not so at its end */
    bool queue_full;              /* the queue was full during that plateau */
    double fault_phase_s;         /* how long the fault phase was sampled */
    char summary[400];            /* the fact in words; with a cause and fix when not reached */
};

/* "out-of-fds", "stopped-accepting", "not-reached" ("" when not measured) */
const char *exhaustion_how_name(enum exhaustion_how how);

struct scenario_result {
    char name[64];
    enum verdict verdict;
    char reason[512]; /* why it failed (failed checks, short) or was skipped */
    double duration_s;
    struct check_result checks[REPORT_MAX_CHECKS];
    size_t nchecks;
    /* what the clients did, for the report */
    uint64_t clients_started, clients_connected, clients_failed_connect, clients_completed;
    /* per client group, in scenario order (the first REPORT_MAX_GROUPS); none for a replay */
    struct group_evidence groups[REPORT_MAX_GROUPS];
    size_t ngroups;
    char capture_path[4096]; /* empty if none */
    /* packets written to the capture, and lost by it (pcap_stats: ring full, interface) */
    uint64_t capture_packets, capture_dropped;
    char *diagnosis;         /* where a stuck target is stuck: multi-line text, or NULL; owned */
    char *diagnosis_summary; /* the same in one line (JUnit, totals), or NULL; owned */
    char *diagnosis_json;    /* the same as one JSON object (written as is), or NULL; owned */
    struct exhaustion_evidence exhaustion;
};

struct run_report {
    uint64_t seed;
    char target_kind[16];   /* "reference", "cmd" or "pid" */
    char target_desc[1024]; /* the command line, or "pid 1234" */
    char host[64];
    int port;
    struct scenario_result *scenarios; /* owned */
    size_t nscenarios;
    double duration_s;
};

/* Field helpers: append a number to a check (silently ignored past REPORT_MAX_FIELDS). */
void check_add_int(struct check_result *c, const char *key, int64_t v);
void check_add_double(struct check_result *c, const char *key, double v);
void check_add_str(struct check_result *c, const char *key, const char *v);

const char *verdict_name(enum verdict v);           /* "pass", "fail", "skip", "error" */
const char *check_status_name(enum check_status s); /* "ok", "failed", "not_checked" */

/* Bytes as C escapes (\r \n \t \\ \' \xHH for the rest of the unprintable) into out, cut
 * with "..." when out is too small; always terminated. (cf_escape with CF_ESCAPE_QUOTE.) */
void result_escape_bytes(const char *data, size_t len, char *out, size_t cap);

/* Frees what the scenarios own (diagnoses) and the scenario array. */
void run_report_free(struct run_report *rep);

#endif
