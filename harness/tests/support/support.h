/* support.h: what the harness tests share (harness/tests/support/, linked into every test).
 *
 *   ts_run, ts_proc_*, ts_server_start
 *                          run a command (or a function in a child) with a bounded timeout,
 *                          capturing stdout, stderr and its exit status; start a server and
 *                          read its port from its ready line (spawn.c)
 *   ts_tmpdir_*, ts_slurp, ts_write_file, ts_write_bytes
 *                          temp dirs under /tmp removed recursively, whole files (files.c)
 *   ts_json_*              a strict JSON parser building a tree to query (json_check.c)
 *   ts_yaml_*              a YAML parser for the block-style subset CI files use (yaml_check.c)
 *   ts_wait_until          poll a condition until it holds or a deadline passes (wait.c)
 *   ts_fd_count, ts_harness_tmpdir_left
 *                          a process's open fds; the temp dir a killed connfault left (procs.c)
 *   ts_run_suite           a test program's main: run its Check suite (suite.c)
 *
 * Nothing here prints or calls Check's asserts (ts_run_suite only runs the suite): functions return
 * a value (0, a pointer, a count) or a negative errno / NULL with an error message, and the test
 * asserts on it, so a failure shows in the test's own words. Only an allocation failure aborts: no
 * test recovers from that. Include it as "support.h"; harness/CMakeLists.txt adds the include path.
 *
 * A typical test:
 *
 *     struct ts_proc p;
 *     ck_assert_int_eq(ts_run(&p, TS_ARGV(CONNFAULT_BIN, "run", "--help"), NULL), 0);
 *     ck_assert_msg(p.status == 0, "status %d:\n%s%s", p.status, p.out, p.err);
 *     ts_proc_free(&p);
 */
#ifndef CONNFAULT_TEST_SUPPORT_H
#define CONNFAULT_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* p, or abort() when it is NULL: for allocations in tests and in this library. */
void *ts_nonnull(void *p);

/* ---- running a command ------------------------------------------------------------------ */

/* A NULL-terminated argument vector: TS_ARGV("nft", "list", "tables"). */
#define TS_ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

#define TS_RUN_TIMEOUT_MS 30000      /* when ts_run_opts.timeout_ms is 0 */
#define TS_OUTPUT_MAX     (16 << 20) /* bytes kept per stream; the rest is read and dropped */

struct ts_run_opts {
    int timeout_ms;         /* 0: TS_RUN_TIMEOUT_MS */
    const char *dir;        /* working directory of the command; NULL: the caller's */
    const char *const *env; /* "NAME=value" entries added to its environment; NULL: none */
    bool merge_stderr;      /* stderr into out, interleaved as written; err stays "" */
    bool discard_stderr;    /* stderr to /dev/null (a server left running whose stderr nobody
                               reads must not block on a full pipe); err stays "" */
    rlim_t nofile;          /* RLIMIT_NOFILE (soft and hard) of the child; 0: the test's */
};

struct ts_proc {
    pid_t pid;       /* the command (also its process group id); 0 once reaped */
    int status;      /* exit status, or 128 + the signal that killed it; -1 until reaped */
    bool timed_out;  /* the deadline passed and its whole process group was killed */
    char *out, *err; /* captured so far, NUL-terminated; "" rather than NULL */
    size_t out_len, err_len;
    /* private to spawn.c */
    int out_fd, err_fd, pidfd;
    long long deadline_ms;
};

/* Start argv (argv[0] looked up in PATH unless it has a '/') with stdin from /dev/null, in a
 * process group of its own so that a timeout also kills what it started. It inherits no fd of
 * the test's but 0, 1 and 2 (so counting its fds counts its own), and is killed if the test
 * process dies first (a failed assertion ends a test without its clean-up). The deadline
 * counts from here. 0, or a negative errno (nothing is left to free then). An exec failure
 * (or a failed opts->nofile) is exit status 127, a bad opts->dir 126. */
int ts_proc_start(struct ts_proc *proc, const char *const *argv, const struct ts_run_opts *opts);

/* The same for code of the test's own: a forked child runs fn(arg) with stdout and stderr
 * captured and exits with its return value (0 to 255). opts->dir and opts->env are not
 * applied, and the child keeps the test's fds. */
int ts_proc_call(struct ts_proc *proc, int (*fn)(void *), void *arg,
                 const struct ts_run_opts *opts);

/* Read the started command's output until its stdout contains text ("listening on"), for at
 * most timeout_ms. 0; -ETIMEDOUT; -EPIPE if stdout was closed (it exited) without text. What
 * was read is in proc->out either way. */
int ts_proc_wait_out(struct ts_proc *proc, const char *text, int timeout_ms);

/* Capture output until the command exits or the deadline passes (then SIGKILL to its process
 * group, and timed_out), reap it and set status. Output still buffered in the pipes when it
 * exits is read; output of children it left running is not waited for. 0 or a negative errno. */
int ts_proc_finish(struct ts_proc *proc);

#define TS_SERVER_READY_MS 10000 /* how long ts_server_start waits for the ready line */

/* Start a server that prints "listening on ADDR:PORT" as the first line of its stdout when it
 * is ready (connfault-server's contract; pass "--port", "0") and wait for that line, for at
 * most TS_SERVER_READY_MS. 0 with the port in *port; a negative errno otherwise (-ETIMEDOUT,
 * -EPIPE: it exited, -EPROTO: another first line), the server then still running or reaped
 * in proc for its output: ts_proc_free it either way, which also stops it. */
int ts_server_start(struct ts_proc *proc, const char *const *argv, const struct ts_run_opts *opts,
                    int *port);

/* ts_proc_start then ts_proc_finish. opts may be NULL (defaults). */
int ts_run(struct ts_proc *proc, const char *const *argv, const struct ts_run_opts *opts);

/* Free out and err (kills and reaps the command first if it is still running). */
void ts_proc_free(struct ts_proc *proc);

/* ---- files -------------------------------------------------------------------------------- */

/* Create a fresh directory /tmp/NAME.XXXXXX (mode 0700) and write its path to path. 0 or a
 * negative errno. */
int ts_tmpdir_create(char *path, size_t path_cap, const char *name);

/* Remove path and everything under it, without following symbolic links. Refuses (-EINVAL)
 * anything not under /tmp/, so a bad path in a test cannot remove real files. 0 or -errno. */
int ts_tmpdir_remove(const char *path);

/* ts_tmpdir_create, then what a real server started by a test serves and writes: www/ with
 * index.html (the probes' page) and an empty tmp/. 0 or a negative errno. */
int ts_www_dir_create(char *path, size_t path_cap, const char *name);

/* The whole file, NUL-terminated (malloc'd; free it), its length in *len if len is not NULL;
 * NULL with errno set if it cannot be read. */
char *ts_slurp(const char *path, size_t *len);

/* Create or truncate path (mode 0644) and write text. 0 or a negative errno. */
int ts_write_file(const char *path, const char *text);
/* The same for len bytes of data (NUL bytes and all). */
int ts_write_bytes(const char *path, const void *data, size_t len);

/* ---- JSON: strict RFC 8259 ---------------------------------------------------------------- */

enum ts_json_type {
    TS_JSON_MISSING, /* what ts_json_type() says of NULL: a key or index that is not there */
    TS_JSON_NULL,
    TS_JSON_BOOL,
    TS_JSON_NUMBER,
    TS_JSON_STRING,
    TS_JSON_ARRAY,
    TS_JSON_OBJECT,
};

struct ts_json {
    enum ts_json_type type;
    bool boolean;
    char *text;             /* a number as written (digits kept exact), or a decoded string */
    size_t n;               /* items of an array or members of an object */
    struct ts_json **items; /* array items, or object member values */
    char **keys;            /* object member names (decoded), parallel to items */
};

/* Parse a whole document. Rejects what a strict parser would: trailing text, bad escapes,
 * lone surrogates, raw control characters, invalid UTF-8, a key twice in one object, leading
 * zeros, nesting deeper than 32. NULL with "offset N: what" in error on failure. */
struct ts_json *ts_json_parse(const char *text, char *error, size_t error_cap);
void ts_json_free(struct ts_json *json);

/* Queries: each takes NULL (a missing parent) and returns NULL or a neutral value for it, so
 * they chain: ts_json_str(ts_json_at(ts_json_get(root, "scenarios"), 0), "name"). */
enum ts_json_type ts_json_type(const struct ts_json *json);
const struct ts_json *ts_json_get(const struct ts_json *object, const char *key);
const struct ts_json *ts_json_at(const struct ts_json *array, size_t index);
size_t ts_json_count(const struct ts_json *json); /* items or members; 0 for the rest */
const char *ts_json_str(const struct ts_json *object, const char *key); /* NULL: no string */
const char *ts_json_num(const struct ts_json *object, const char *key); /* NULL: no number */
int ts_json_bool(const struct ts_json *object, const char *key);        /* 1, 0, -1: none */

/* ---- waiting -------------------------------------------------------------------------------- */

/* Call cond(arg) until it returns true, every period_ms (a bare sleep between two looks, never
 * instead of one), for at most timeout_ms. true once it held; false if the deadline passed
 * first (cond is called once more at the deadline). cond may record what it saw in arg. */
bool ts_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms, int period_ms);

/* ---- processes ---------------------------------------------------------------------------- */

/* The entries of /proc/PID/fd (0 when it cannot be read: gone). */
int ts_fd_count(pid_t pid);
/* Whether base holds the temp dir of connfault process pid (connfault-PID.XXXXXX), as a
 * SIGKILL leaves it until `connfault cleanup`. */
bool ts_harness_tmpdir_left(const char *base, pid_t pid);

/* ---- the test program ------------------------------------------------------------------- */

typedef struct Suite Suite; /* check.h's */

/* Run every test of suite (Check's CK_NORMAL output; CK_RUN_CASE and the other CK_*
 * variables apply) and free it. EXIT_SUCCESS if none failed, else EXIT_FAILURE: main's
 * return value. */
int ts_run_suite(Suite *suite);

/* In a test: fail it, naming the package to install (ci/setup installs every server the
 * tests start), when the program at path cannot be run. A missing server is never a skip. */
void ts_need_program(const char *path, const char *package);

/* ---- YAML: the block-style subset CI files are written in ---------------------------------- */

/* Mappings, sequences, plain and quoted scalars, | and > block scalars, [a, b] lists and
 * comments are read; anchors, tags, flow mappings, document markers, tabs in indentation, bad
 * indentation, duplicate keys and ": " in a plain scalar are rejected rather than guessed at,
 * so a file it accepts means the same to GitHub's and GitLab's parsers. (Written instead of
 * linking libyaml so the project needs no extra package for a test.) */

enum ts_yaml_kind { TS_YAML_SCALAR, TS_YAML_MAP, TS_YAML_SEQ };

struct ts_yaml {
    enum ts_yaml_kind kind;
    int line;                /* 1-based, for messages */
    char *scalar;            /* TS_YAML_SCALAR; "" for an empty value */
    size_t n;                /* entries of a map, items of a sequence */
    char **keys;             /* TS_YAML_MAP */
    struct ts_yaml **values; /* map values or sequence items */
};

/* Parse text (not modified; the tree holds copies). NULL with "line N: what" in error. */
struct ts_yaml *ts_yaml_parse(const char *text, char *error, size_t error_cap);
void ts_yaml_free(struct ts_yaml *node);

/* The value of key in a map; NULL if map is NULL, not a map, or has no such key. */
const struct ts_yaml *ts_yaml_get(const struct ts_yaml *map, const char *key);
/* The same when the value is a scalar; NULL otherwise. */
const char *ts_yaml_get_scalar(const struct ts_yaml *map, const char *key);

#endif
