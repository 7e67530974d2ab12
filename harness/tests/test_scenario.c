/* Tests for the scenario parser: a file with every key parses to the exact struct, every
 * kind of mistake gives its exact "FILE:LINE: message", and the built-in scenarios load. */
#include "catalogue.h"
#include "scenario.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#ifndef CONNFAULT_SOURCE_DIR
#define CONNFAULT_SOURCE_DIR "."
#endif

/* One temporary directory per test case, made and removed by the parent (an unchecked
 * fixture), so files are cleaned up even when a forked test fails half way. */
static char test_dir[64];

static void temp_dir_create(void)
{
    int rc = ts_tmpdir_create(test_dir, sizeof(test_dir), "connfault-scenario");
    if (rc < 0) {
        fprintf(stderr, "temp dir: %s\n", strerror(-rc));
        exit(1);
    }
}

static void temp_dir_remove(void)
{
    ts_tmpdir_remove(test_dir);
}

/* Writes len bytes of content to test_dir/name; returns the path (static buffer). */
static const char *write_file_bytes(const char *name, const char *content, size_t len)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    ck_assert_int_eq(ts_write_bytes(path, content, len), 0);
    return path;
}

static const char *write_file(const char *name, const char *content)
{
    return write_file_bytes(name, content, strlen(content));
}

static void load_ok(const char *content, const struct scenario_vars *vars, struct scenario *sc)
{
    char err[512] = "";
    const char *path = write_file("ok.ini", content);
    int rc = scenario_load(path, vars, sc, err, sizeof(err));
    ck_assert_msg(rc == 0, "unexpected error: %s", err);
}

/* Expects loading content to fail with exactly "PATH" + suffix (suffix: ":LINE: message"). */
static void load_fails(const char *content, const char *suffix)
{
    char err[512] = "", expected[1024];
    struct scenario sc;
    const char *path = write_file("e.ini", content);
    snprintf(expected, sizeof(expected), "%s%s", path, suffix);
    ck_assert_int_eq(scenario_load(path, NULL, &sc, err, sizeof(err)), -1);
    ck_assert_str_eq(err, expected);
    ck_assert_ptr_null(sc.groups); /* nothing left to free */
    ck_assert_ptr_null(sc.description);
}

static void assert_bytes(const char *got, size_t got_len, const char *want, size_t want_len)
{
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_msg(memcmp(got, want, want_len) == 0, "bytes differ: got \"%.*s\"", (int)got_len,
                  got);
}

#define ASSERT_STR_BYTES(got, got_len, lit) assert_bytes(got, got_len, lit, sizeof(lit) - 1)

START_TEST(test_every_key)
{
    struct scenario sc;
    struct scenario_vars vars = {.host = "h:8", .probe_path = "/p", .large_path = "/L"};
    load_ok("# comment\n"
            "; another comment\n"
            "[scenario]\n"
            "description = Every key.   # inline comment\n"
            "duration = 1.5s\n"
            "rlimit_nofile = 256\n"
            "probe_raw = \"PING {host}\\r\\n\"\n"
            "probe_expect = \"+PONG\"\n"
            "\n"
            "[clients a]        # header comment\n"
            "count = 10\n"
            "concurrency = 4\n"
            "rate = 12.5\n"
            "start = 100ms\n"
            "request_raw = \"GET /x HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n\" ; comment\n"
            "request_pad = 3\n"
            "pipeline = 2\n"
            "send = partial\n"
            "send_bytes = 10-40\n"
            "read = 1024-65536\n"
            "hold = 1-2s\n"
            "end = reset\n"
            "rcvbuf = 4096\n"
            "[clients b-2.x]\n"
            "count = 3\n"
            "request = POST /q?a=1\n"
            "send = trickle\n"
            "trickle_bytes = 2\n"
            "trickle_interval = 50ms\n"
            "trickle_tail = \"X-a: {probe_path}\\r\\n\"\n"
            "read = none\n"
            "end = drop\n",
            &vars, &sc);
    ck_assert_str_eq(sc.name, "ok");
    ck_assert_str_eq(sc.description, "Every key.");
    ck_assert_str_eq(sc.path + strlen(sc.path) - 7, "/ok.ini");
    ck_assert_uint_eq(sc.duration_ms, 1500);
    ck_assert_uint_eq(sc.rlimit_nofile, 256);
    ck_assert_uint_eq(sc.probe_raw_len, 10);
    ck_assert_mem_eq(sc.probe_raw, "PING h:8\r\n", 10);
    ck_assert_uint_eq(sc.probe_expect_len, 5);
    ck_assert_mem_eq(sc.probe_expect, "+PONG", 5);
    ck_assert(sc.needs_sandbox);
    ck_assert_uint_eq(sc.ngroups, 2);

    const struct client_group *a = &sc.groups[0];
    ck_assert_str_eq(a->name, "a");
    ck_assert_int_eq(a->line, 10);
    ck_assert_uint_eq(a->count, 10);
    ck_assert_uint_eq(a->concurrency, 4);
    ck_assert(a->rate == 12.5);
    ck_assert_uint_eq(a->start_ms, 100);
    ASSERT_STR_BYTES(a->request, a->request_len,
                     "GET /x HTTP/1.1\r\nHost: h:8\r\nX-Pad: AAA\r\n\r\n");
    ck_assert_uint_eq(a->pipeline, 2);
    ck_assert_int_eq(a->send, SEND_PARTIAL);
    ck_assert_uint_eq(a->send_bytes.lo, 10);
    ck_assert_uint_eq(a->send_bytes.hi, 40);
    ck_assert_ptr_null(a->trickle_tail);
    ck_assert_int_eq(a->read, READ_BYTES);
    ck_assert_uint_eq(a->read_bytes.lo, 1024);
    ck_assert_uint_eq(a->read_bytes.hi, 65536);
    ck_assert_uint_eq(a->hold_ms.lo, 1000);
    ck_assert_uint_eq(a->hold_ms.hi, 2000);
    ck_assert_int_eq(a->end, END_RESET);
    ck_assert_int_eq(a->rcvbuf, 4096);

    const struct client_group *b = &sc.groups[1];
    ck_assert_str_eq(b->name, "b-2.x");
    ck_assert_int_eq(b->line, 24);
    ck_assert_uint_eq(b->count, 3);
    ck_assert_uint_eq(b->concurrency, 3);
    ck_assert(b->rate == 0);
    ASSERT_STR_BYTES(b->request, b->request_len, "POST /q?a=1 HTTP/1.1\r\nHost: h:8\r\n\r\n");
    ck_assert_uint_eq(b->pipeline, 1);
    ck_assert_int_eq(b->send, SEND_TRICKLE);
    ck_assert_uint_eq(b->trickle_bytes, 2);
    ck_assert_uint_eq(b->trickle_interval_ms, 50);
    ASSERT_STR_BYTES(b->trickle_tail, b->trickle_tail_len, "X-a: /p\r\n");
    ck_assert_int_eq(b->read, READ_NONE);
    ck_assert_int_eq(b->end, END_DROP);
    ck_assert_int_eq(b->rcvbuf, 0);
    scenario_free(&sc);
    ck_assert_ptr_null(sc.groups);
    scenario_free(&sc); /* freeing twice is harmless */
}
END_TEST

START_TEST(test_defaults)
{
    struct scenario sc;
    load_ok("[clients x]\ncount = 5\n", NULL, &sc);
    ck_assert_str_eq(sc.description, "");
    ck_assert_uint_eq(sc.duration_ms, 5000);
    ck_assert_uint_eq(sc.rlimit_nofile, 0);
    ck_assert(!sc.needs_sandbox);
    const struct client_group *g = &sc.groups[0];
    ck_assert_int_eq(g->line, 1);
    ck_assert_uint_eq(g->concurrency, 5);
    ck_assert_uint_eq(g->start_ms, 0);
    ASSERT_STR_BYTES(g->request, g->request_len,
                     "GET /bytes/1048576 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    ck_assert_uint_eq(g->pipeline, 1);
    ck_assert_int_eq(g->send, SEND_WHOLE);
    ck_assert_uint_eq(g->trickle_bytes, 1);
    ck_assert_uint_eq(g->trickle_interval_ms, 200);
    ck_assert_int_eq(g->read, READ_ALL);
    ck_assert_uint_eq(g->hold_ms.lo, 0);
    ck_assert_uint_eq(g->hold_ms.hi, 0);
    ck_assert_int_eq(g->end, END_CLOSE);
    scenario_free(&sc);

    /* concurrency above count is clamped; a huge count gets the concurrency limit */
    load_ok("[clients x]\ncount = 5\nconcurrency = 50\n[clients y]\ncount = 1000000\n", NULL, &sc);
    ck_assert_uint_eq(sc.groups[0].concurrency, 5);
    ck_assert_uint_eq(sc.groups[1].concurrency, 100000);
    scenario_free(&sc);
}
END_TEST

START_TEST(test_request_shorthands)
{
    struct scenario sc;
    struct scenario_vars vars = {.host = "example:1", .probe_path = "/health"};
    load_ok("[clients a]\ncount = 1\nrequest = large\n"
            "[clients b]\ncount = 1\nrequest = probe\n"
            "[clients c]\ncount = 1\nrequest = GET {large_path}?from={host}\n",
            &vars, &sc);
    ASSERT_STR_BYTES(sc.groups[0].request, sc.groups[0].request_len,
                     "GET /bytes/1048576 HTTP/1.1\r\nHost: example:1\r\n\r\n");
    ASSERT_STR_BYTES(sc.groups[1].request, sc.groups[1].request_len,
                     "GET /health HTTP/1.1\r\nHost: example:1\r\n\r\n");
    ASSERT_STR_BYTES(sc.groups[2].request, sc.groups[2].request_len,
                     "GET /bytes/1048576?from=example:1 HTTP/1.1\r\nHost: example:1\r\n\r\n");
    scenario_free(&sc);

    /* --request-raw / --probe-raw replace the shorthands verbatim, NUL bytes and all */
    vars.request_raw = "RAW\0{host}";
    vars.request_raw_len = 10;
    vars.probe_raw = "PROBE";
    vars.probe_raw_len = 5;
    load_ok("[clients a]\ncount = 1\n[clients b]\ncount = 1\nrequest = probe\n", &vars, &sc);
    assert_bytes(sc.groups[0].request, sc.groups[0].request_len, "RAW\0{host}", 10);
    ASSERT_STR_BYTES(sc.groups[1].request, sc.groups[1].request_len, "PROBE");
    scenario_free(&sc);
}
END_TEST

/* {huge_path} and `request = huge`; which paths a scenario asks for (run/preflight.c checks
 * them before the first scenario): not those of groups whose request is never answered. */
START_TEST(test_paths_used)
{
    struct scenario sc;
    struct scenario_vars vars = {.huge_path = "/H"};
    load_ok("[clients a]\ncount = 1\nrequest = huge\n"
            "[clients b]\ncount = 1\nrequest = GET {huge_path}?{large_path}\n",
            &vars, &sc);
    ck_assert_uint_eq(sc.paths, SCENARIO_PATH_HUGE | SCENARIO_PATH_LARGE);
    const char *want[] = {"GET /H HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                          "GET /H?/bytes/1048576 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"};
    for (size_t i = 0; i < 2; i++)
        assert_bytes(sc.groups[i].request, sc.groups[i].request_len, want[i], strlen(want[i]));
    scenario_free(&sc);

    load_ok("[clients a]\ncount = 1\n", NULL, &sc); /* request = large by default */
    ck_assert_uint_eq(sc.paths, SCENARIO_PATH_LARGE);
    scenario_free(&sc);

    load_ok("[scenario]\nprobe_raw = \"GET {probe_path}\"\n"
            "[clients none]\ncount = 1\nsend = none\nread = none\n"
            "[clients part]\ncount = 1\nrequest = huge\nsend = partial\nsend_bytes = 3\n"
            "[clients endless]\ncount = 1\nrequest = large\nsend = trickle\n"
            "trickle_tail = \"X\"\n",
            NULL, &sc);
    ck_assert_uint_eq(sc.paths, SCENARIO_PATH_PROBE);
    scenario_free(&sc);

    /* bytes from the command line replace the shorthands: they ask for no path */
    vars.request_raw = "PING\r\n";
    vars.request_raw_len = 6;
    load_ok("[clients a]\ncount = 1\nrequest = huge\n", &vars, &sc);
    ASSERT_STR_BYTES(sc.groups[0].request, sc.groups[0].request_len, "PING\r\n");
    ck_assert_uint_eq(sc.paths, 0);
    scenario_free(&sc);
}
END_TEST

START_TEST(test_escapes_and_comments)
{
    struct scenario sc;
    load_ok("[scenario]\n"
            "description = \"quoted # not a comment ; either\"  # a comment\n"
            "[clients a]\n"
            "count = 1\n"
            "request_raw = \"\\x00\\x41\\xfF\\r\\n\\t\\\\\\\"\\x7b{host}\\0\\'\"\n"
            "[clients b]\n"
            "count = 1\n"
            "request_raw = a;b#c \\n ; comment\n"
            "[clients c]\n"
            "count = 1\n"
            "request = GET /a\\b   # bare values keep backslashes\n",
            NULL, &sc);
    ck_assert_str_eq(sc.description, "quoted # not a comment ; either");
    ASSERT_STR_BYTES(sc.groups[0].request, sc.groups[0].request_len,
                     "\0A\xff\r\n\t\\\"{127.0.0.1\0'");
    ASSERT_STR_BYTES(sc.groups[1].request, sc.groups[1].request_len, "a;b#c \\n");
    ASSERT_STR_BYTES(sc.groups[2].request, sc.groups[2].request_len,
                     "GET /a\\b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    scenario_free(&sc);
}
END_TEST

START_TEST(test_placeholders_only_where_expanded)
{
    struct scenario sc;
    load_ok("[scenario]\ndescription = {not_a_placeholder}\n"
            "[clients a]\ncount = 1\nrequest_raw = \"{probe_path}|{large_path}|{host}\"\n",
            NULL, &sc);
    ck_assert_str_eq(sc.description, "{not_a_placeholder}");
    ASSERT_STR_BYTES(sc.groups[0].request, sc.groups[0].request_len, "/|/bytes/1048576|127.0.0.1");
    scenario_free(&sc);
}
END_TEST

START_TEST(test_ranges_and_durations)
{
    struct scenario sc;
    load_ok("[scenario]\nduration = 10s\n"
            "[clients a]\ncount = 1\nsend = partial\nsend_bytes = 5\nread = 7\nhold = 0\n"
            "start = 0\n"
            "[clients b]\ncount = 1\nsend = partial\nsend_bytes = 10 - 40\nread = 1-1\n"
            "hold = 100-300ms\nstart = 9999ms\n"
            "[clients c]\ncount = 1\nhold = 1s-2.25s\ntrickle_interval = 1ms\nsend = trickle\n"
            "[clients d]\ncount = 1\nhold = 1.5s\nrequest = GET /\nsend = partial\n"
            "send_bytes = 10-1000\n",
            NULL, &sc);
    const struct client_group *g = sc.groups;
    ck_assert_uint_eq(g[0].send_bytes.lo, 5);
    ck_assert_uint_eq(g[0].send_bytes.hi, 5);
    ck_assert_uint_eq(g[0].read_bytes.lo, 7);
    ck_assert_uint_eq(g[0].read_bytes.hi, 7);
    ck_assert_uint_eq(g[1].send_bytes.lo, 10);
    ck_assert_uint_eq(g[1].send_bytes.hi, 40);
    ck_assert_uint_eq(g[1].hold_ms.lo, 100);
    ck_assert_uint_eq(g[1].hold_ms.hi, 300);
    ck_assert_uint_eq(g[1].start_ms, 9999);
    ck_assert_uint_eq(g[2].hold_ms.lo, 1000);
    ck_assert_uint_eq(g[2].hold_ms.hi, 2250);
    ck_assert_uint_eq(g[2].trickle_interval_ms, 1);
    ck_assert_uint_eq(g[3].hold_ms.lo, 1500);
    ck_assert_uint_eq(g[3].hold_ms.hi, 1500);
    /* a partial send longer than the request is clamped to the request (35 bytes) */
    ck_assert_uint_eq(g[3].request_len, 35);
    ck_assert_uint_eq(g[3].send_bytes.lo, 10);
    ck_assert_uint_eq(g[3].send_bytes.hi, 35);
    scenario_free(&sc);
}
END_TEST

START_TEST(test_request_pad)
{
    struct scenario sc;
    load_ok("[clients a]\ncount = 1\nrequest = GET /\nrequest_pad = 5\n"
            "[clients b]\ncount = 1\nrequest_raw = \"GET / HTTP/1.1\\r\\n\"\nrequest_pad = 1\n"
            "[clients c]\ncount = 1\nrequest = GET /\nrequest_pad = 65536\n",
            NULL, &sc);
    ASSERT_STR_BYTES(sc.groups[0].request, sc.groups[0].request_len,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: AAAAA\r\n\r\n");
    ASSERT_STR_BYTES(sc.groups[1].request, sc.groups[1].request_len,
                     "GET / HTTP/1.1\r\nX-Pad: A\r\n");
    ck_assert_uint_eq(sc.groups[2].request_len, 35 + 65536 + 9);
    scenario_free(&sc);
}
END_TEST

START_TEST(test_file_formats)
{
    struct scenario sc;
    /* CRLF line ends, a UTF-8 byte order mark, indented keys (never glued to the previous
     * value as a continuation line), "key: value" */
    load_ok("\xEF\xBB\xBF[scenario]\r\ndescription = crlf\r\n[clients a]\r\n  count = 2\r\n"
            "    end = reset\r\nread: none\r\n",
            NULL, &sc);
    ck_assert_str_eq(sc.description, "crlf");
    ck_assert_uint_eq(sc.groups[0].count, 2);
    ck_assert_int_eq(sc.groups[0].end, END_RESET);
    ck_assert_int_eq(sc.groups[0].read, READ_NONE);
    scenario_free(&sc);
}
END_TEST

START_TEST(test_catches)
{
    struct scenario sc;
    load_ok("[scenario]\ncatches = accept-once:accepting,blocking:accepting ,  no-timeouts:fds  "
            "# comment\n[clients a]\ncount = 1\n",
            NULL, &sc);
    ck_assert_uint_eq(sc.ncatches, 3);
    ck_assert_str_eq(sc.catches[0].bug, "accept-once");
    ck_assert_str_eq(sc.catches[0].check, "accepting");
    ck_assert_str_eq(sc.catches[1].bug, "blocking");
    ck_assert_str_eq(sc.catches[1].check, "accepting");
    ck_assert_str_eq(sc.catches[2].bug, "no-timeouts");
    ck_assert_str_eq(sc.catches[2].check, "fds");
    scenario_free(&sc);
    ck_assert_ptr_null(sc.catches);

    load_ok("[clients a]\ncount = 1\n", NULL, &sc);
    ck_assert_ptr_null(sc.catches);
    ck_assert_uint_eq(sc.ncatches, 0);
    scenario_free(&sc);
}
END_TEST

struct error_case {
    const char *content;
    const char *suffix; /* expected error after the file name */
};

static const struct error_case error_cases[] = {
    {"[scenari]\n", ":1: unknown section [scenari]; expected [scenario] or [clients NAME]"},
    {"[clients a]\ncount = 1\ncolor = red\n",
     ":3: color: unknown key in [clients a]; see scenarios/README.md"},
    {"[scenario]\nnmae = x\n", ":2: nmae: unknown key in [scenario]; see scenarios/README.md"},
    {"[clients a]\ncount = 1\ncount = 2\n",
     ":3: count: given twice in this section (first at line 2)"},
    {"[clients a]\ncount = 1\n\n[clients a]\ncount = 1\n",
     ":4: [clients a]: duplicate group name (first at line 1)"},
    {"[scenario]\n[scenario]\n[clients a]\ncount = 1\n", ":2: [scenario]: given twice"},
    {"[clients a]\ncount = 12x\n",
     ":2: count: expected a whole number from 1 to 1000000; got \"12x\""},
    {"[clients a]\ncount = 0\n", ":2: count: expected a whole number from 1 to 1000000; got \"0\""},
    {"[clients a]\ncount = 1000001\n",
     ":2: count: expected a whole number from 1 to 1000000; got \"1000001\""},
    {"[clients a]\ncount = 99999999999999999999999\n",
     ":2: count: expected a whole number from 1 to 1000000; got \"99999999999999999999999\""},
    {"[clients a]\ncount =\n", ":2: count: expected a whole number from 1 to 1000000; got \"\""},
    {"[clients a]\ncount = 1\nconcurrency = 0\n",
     ":3: concurrency: expected a whole number from 1 to 100000; got \"0\""},
    {"[clients a]\ncount = 1\nread = 500-100\n",
     ":3: read: range \"500-100\" is backwards: expected A-B with A <= B"},
    {"[clients a]\ncount = 1\nhold = 300-100ms\n",
     ":3: hold: range \"300-100ms\" is backwards: expected A-B with A <= B"},
    {"[clients a]\ncount = 1\nhold = 5\n",
     ":3: hold: expected a duration or range like 250ms, 1s or 100-300ms; got \"5\""},
    {"[clients a]\ncount = 1\nread = 0\n",
     ":3: read: expected N or A-B with whole numbers from 1 to 1099511627776; got \"0\""},
    {"[clients a]\ncount = 1\nread = some\n",
     ":3: read: expected all, none, N or A-B (bytes); got \"some\""},
    {"[clients a]\nsend = whole\n[clients b]\ncount = 1\n",
     ":1: [clients a]: missing count = N (required)"},
    {"[scenario]\ndescription = x\n\n[clients a]\nend = close\n",
     ":4: [clients a]: missing count = N (required)"},
    {"[clients a]\ncount = 1\nrequest_raw = \"a\\qb\"\n",
     ":3: request_raw: bad escape \"\\q\"; expected \\r, \\n, \\t, \\0, \\\\, \\\", \\' or "
     "\\xHH"},
    {"[clients a]\ncount = 1\nrequest_raw = \"a\\x4\"\n",
     ":3: request_raw: bad escape \"\\x\": expected two hex digits"},
    {"[clients a]\ncount = 1\nrequest_raw = \"abc\n",
     ":3: request_raw: unterminated quoted string (no closing \")"},
    {"[clients a]\ncount = 1\nrequest_raw = \"abc\\\"\n",
     ":3: request_raw: unterminated quoted string (no closing \")"},
    {"[clients a]\ncount = 1\nrequest_raw = \"abc\" def\n",
     ":3: request_raw: unexpected text after the closing quote: \"def\""},
    {"count = 1\n[clients a]\ncount = 1\n",
     ":1: count: key outside any section; put it under [scenario] or [clients NAME]"},
    {"[scenario]\ndescription = x\n",
     ": no [clients NAME] section: a scenario needs at least one group"},
    {"", ": no [clients NAME] section: a scenario needs at least one group"},
    {"[clients a]\ncount = 1\nsend_bytes = 10-40\n",
     ":3: send_bytes: only used with send = partial (send is whole)"},
    {"[clients a]\ncount = 1\nsend = partial\n",
     ":3: send: partial needs send_bytes = N or A-B (how much of the request)"},
    {"[clients a]\ncount = 1\nsend = none\ntrickle_interval = 1s\n",
     ":4: trickle_interval: only used with send = trickle (send is none)"},
    {"[clients a]\ncount = 1\nsend = none\nrequest = probe\n",
     ":4: request: unused because send = none (line 3)"},
    {"[clients a]\ncount = 1\nrequest = probe\nrequest_raw = \"x\"\n",
     ":4: request_raw: conflicts with request (line 3); give one of them"},
    {"[clients a]\ncount = 1\nsend = trickle\ntrickle_tail = \"X: y\\r\\n\"\nend = half-close\n",
     ":5: end: half-close never happens: trickle_tail (line 4) keeps sending"},
    {"[clients a]\ncount = 1\nsend = trickle\ntrickle_tail = \"\"\n", ":4: trickle_tail: empty"},
    {"[clients a]\ncount = 1\nend = rest\n",
     ":3: end: expected one of close, reset, half-close, hold, drop; got \"rest\""},
    {"[clients a]\ncount = 1\nsend = all\n",
     ":3: send: expected one of whole, partial, trickle, none; got \"all\""},
    {"[scenario]\nduration = 5\n",
     ":2: duration: expected a duration from 1ms to 3600s, like 250ms or 1.5s; got \"5\""},
    {"[scenario]\nduration = 0ms\n",
     ":2: duration: expected a duration from 1ms to 3600s, like 250ms or 1.5s; got \"0ms\""},
    {"[scenario]\nduration = 2s\n[clients a]\ncount = 1\nstart = 2s\n",
     ":5: start: 2000ms is not before the end of the fault phase (duration = 2000ms)"},
    {"[scenario]\nprobe_expect = \"+OK\"\n[clients a]\ncount = 1\n",
     ":2: probe_expect: goes with probe_raw (the bytes the probe sends)"},
    {"[scenario]\nrlimit_nofile = 4\n",
     ":2: rlimit_nofile: expected a whole number from 8 to 1048576; got \"4\""},
    {"[scenario]\ndescription = \"two\\nlines\"\n", ":2: description: must be one line of text"},
    {"[clients a]\ncount = 1\nrate = -1\n",
     ":3: rate: expected connections per second from 0 to 1000000 (0 = no limit); got \"-1\""},
    {"[clients a]\ncount = 1\nrate = nan\n",
     ":3: rate: expected connections per second from 0 to 1000000 (0 = no limit); got \"nan\""},
    {"[clients a]\ncount = 1\nrequest = GET {hots}\n",
     ":3: request: unknown placeholder \"{hots}\"; expected {host}, {probe_path}, "
     "{large_path} or {huge_path} (write \\x7b for a literal \"{\")"},
    {"[clients a]\ncount = 1\nrequest_raw = \"{host\"\n",
     ":3: request_raw: unknown placeholder \"{host\"; expected {host}, {probe_path}, "
     "{large_path} or {huge_path} (write \\x7b for a literal \"{\")"},
    {"[clients a]\ncount = 1\nrequest = GET\n",
     ":3: request: expected large, huge, probe or METHOD PATH (like GET /index.html); for "
     "anything else use request_raw; got \"GET\""},
    {"[clients a]\ncount = 1\nrequest = GET / HTTP/1.1\n",
     ":3: request: expected large, huge, probe or METHOD PATH (like GET /index.html); for "
     "anything else use request_raw; got \"GET / HTTP/1.1\""},
    {"[clients a]\ncount 5\n",
     ":2: expected \"key = value\", \"[section]\" or a comment; got \"count 5\""},
    {"[clients a]\n= 5\n", ":2: expected \"key = value\", \"[section]\" or a comment; got \"= 5\""},
    {"[clients a\ncount = 1\n", ":1: expected \"]\" to close the section header"},
    {"[scenario] x\n", ":1: unexpected text after the section header: \"x\""},
    {"[clients]\ncount = 1\n", ":1: [clients]: expected a group name, like [clients readers]"},
    {"[clients a b]\ncount = 1\n",
     ":1: [clients a b]: a group name is 1 to 40 letters, digits, '_', '.' or '-'"},
    {"[clients a]\ncount = 1\nrequest_pad = 1048576\n",
     ":3: request_pad: the padded request would be longer than 1048576 bytes"},
    {"[clients a]\ncount = 1\npipeline = 1001\n",
     ":3: pipeline: expected a whole number from 1 to 1000; got \"1001\""},
    {"[scenario]\ncatches = accept-once\n",
     ":2: catches: expected BUG:CHECK, like accept-once:accepting; got \"accept-once\""},
    {"[scenario]\ncatches = sigpipe:alive,\n",
     ":2: catches: expected BUG:CHECK, like accept-once:accepting; got \"\""},
    {"[scenario]\ncatches = sigpipe : alive\n",
     ":2: catches: bug mode \"sigpipe \" is not 1 to 31 lowercase letters, digits or '-'"},
    {"[scenario]\ncatches = Accept-Once:accepting\n",
     ":2: catches: bug mode \"Accept-Once\" is not 1 to 31 lowercase letters, digits or '-'"},
    {"[scenario]\ncatches = blocking:acepting\n",
     ":2: catches: unknown check \"acepting\"; expected accepting, alive, fds, sockets, cpu, "
     "memory or responses"},
    {"[scenario]\ncatches = blocking:fds, no-timeouts:fds, blocking:fds\n",
     ":2: catches: blocking:fds given twice"},
    {"[clients a]\ncount = 1\ncatches = blocking:fds\n",
     ":3: catches: belongs in [scenario], not in [clients a]"},
    {"[scenario]\ncount = 3\n", ":2: count: belongs in [clients NAME], not in [scenario]"},
    {"[clients a]\nconut = 1\n",
     ":2: conut: unknown key in [clients a] (did you mean count?); see scenarios/README.md"},
    {"[clients a]\ncount = 1\nrcvbu = 1\n",
     ":3: rcvbu: unknown key in [clients a] (did you mean rcvbuf?); see scenarios/README.md"},
    {"[clients a]\ncount = 1\nhosts = 127.0.0.2\n",
     ":3: hosts: unknown key in [clients a] (did you mean host?); see scenarios/README.md"},
    {"[scenario]\ndurration = 1s\n",
     ":2: durration: unknown key in [scenario] (did you mean duration?); see scenarios/README.md"},
    {"[scenario]\ndescriptoin = x\n",
     ":2: descriptoin: unknown key in [scenario] (did you mean description?); see "
     "scenarios/README.md"},
    {"[clients a]\ncount = 1\nsnd = whole\n",
     ":3: snd: unknown key in [clients a] (did you mean send?); see scenarios/README.md"},
    {"[clients a]\ncount = 1\nsent = whole\n",
     ":3: sent: unknown key in [clients a] (did you mean send?); see scenarios/README.md"},
    {"[clients a]\ncount = 1\nsend_bits = 1\n",
     ":3: send_bits: unknown key in [clients a]; see scenarios/README.md"},
};

START_TEST(test_error_messages)
{
    load_fails(error_cases[_i].content, error_cases[_i].suffix);
}
END_TEST

START_TEST(test_error_line_too_long)
{
    size_t len = 20000;
    char *content = malloc(len + 64);
    ck_assert_ptr_nonnull(content);
    int n = sprintf(content, "[clients a]\ncount = 1\ndescription = ");
    memset(content + n, 'x', len - (size_t)n);
    strcpy(content + len, "\n");
    load_fails(content, ":3: line too long (19978 characters; at most 16384)");
    free(content);

    /* just under the limit is fine: a 16000-byte quoted request */
    content = malloc(16100);
    ck_assert_ptr_nonnull(content);
    n = sprintf(content, "[clients a]\ncount = 1\nrequest_raw = \"");
    memset(content + n, 'y', 16000);
    strcpy(content + n + 16000, "\"\n");
    struct scenario sc;
    load_ok(content, NULL, &sc);
    ck_assert_uint_eq(sc.groups[0].request_len, 16000);
    scenario_free(&sc);
    free(content);
}
END_TEST

START_TEST(test_error_nul_byte)
{
    char err[512];
    struct scenario sc;
    static const char content[] = "[clients a]\ncount = 1\x00\n";
    const char *path = write_file_bytes("nul.ini", content, sizeof(content) - 1);
    ck_assert_int_eq(scenario_load(path, NULL, &sc, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":2: NUL byte in line"));
}
END_TEST

START_TEST(test_error_file_access)
{
    char err[512], expected[600], path[256];
    struct scenario sc;
    snprintf(path, sizeof(path), "%s/missing.ini", test_dir);
    ck_assert_int_eq(scenario_load(path, NULL, &sc, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected), "%s: No such file or directory", path);
    ck_assert_str_eq(err, expected);

    snprintf(path, sizeof(path), "%s/dir.ini", test_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(scenario_load(path, NULL, &sc, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected), "%s: Is a directory", path);
    ck_assert_str_eq(err, expected);

    if (geteuid() == 0) {
        printf("test_error_file_access: running as root, permission check skipped\n");
        return;
    }
    const char *p = write_file("secret.ini", "[clients a]\ncount = 1\n");
    ck_assert_int_eq(chmod(p, 0), 0);
    ck_assert_int_eq(scenario_load(p, NULL, &sc, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected), "%s: Permission denied", p);
    ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(test_error_small_buffer)
{
    char err[8];
    struct scenario sc;
    const char *path = write_file("x.ini", "[nope]\n");
    ck_assert_int_eq(scenario_load(path, NULL, &sc, err, sizeof(err)), -1);
    ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
    ck_assert_int_eq(scenario_load(path, NULL, &sc, NULL, 0), -1);
}
END_TEST

START_TEST(test_builtin_dir)
{
    ck_assert_int_eq(setenv("CONNFAULT_SCENARIO_DIR", "/somewhere/else", 1), 0);
    ck_assert_str_eq(scenario_builtin_dir(), "/somewhere/else");
    ck_assert_int_eq(unsetenv("CONNFAULT_SCENARIO_DIR"), 0);
    ck_assert_str_eq(scenario_builtin_dir(), CONNFAULT_SOURCE_DIR "/scenarios");
}
END_TEST

START_TEST(test_builtin_scenarios_load)
{
    const char *dir = CONNFAULT_SOURCE_DIR "/scenarios";
    struct scenario_vars vars = {.host = "127.0.0.1:9", .probe_path = "/", .large_path = "/big"};
    char **paths = NULL;
    int loaded = catalogue_files(dir, &paths);
    ck_assert_int_ge(loaded, 0);
    for (int i = 0; i < loaded; i++) {
        const char *path = paths[i];
        char err[512] = "";
        struct scenario sc;
        ck_assert_msg(scenario_load(path, &vars, &sc, err, sizeof(err)) == 0, "%s", err);
        ck_assert_msg(sc.description[0] != '\0', "%s: no description", path);
        ck_assert_uint_ge(sc.ngroups, 1);
        scenario_free(&sc);
        ck_assert_msg(scenario_load(path, NULL, &sc, err, sizeof(err)) == 0, "%s", err);
        scenario_free(&sc);
        /* every built-in starts with its explanatory comment block */
        char *text = ts_slurp(path, NULL);
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(text[0] == '#', "%s: no comment block at the top", path);
        free(text);
    }
    catalogue_free(paths, loaded);
    ck_assert_int_ge(loaded, 12);
}
END_TEST

static Suite *scenario_suite(void)
{
    Suite *s = suite_create("scenario");
    TCase *tc = tcase_create("parse");
    tcase_add_unchecked_fixture(tc, temp_dir_create, temp_dir_remove);
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_request_shorthands);
    tcase_add_test(tc, test_paths_used);
    tcase_add_test(tc, test_escapes_and_comments);
    tcase_add_test(tc, test_placeholders_only_where_expanded);
    tcase_add_test(tc, test_ranges_and_durations);
    tcase_add_test(tc, test_request_pad);
    tcase_add_test(tc, test_file_formats);
    tcase_add_test(tc, test_catches);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_unchecked_fixture(tc, temp_dir_create, temp_dir_remove);
    tcase_add_loop_test(tc, test_error_messages, 0,
                        (int)(sizeof(error_cases) / sizeof(error_cases[0])));
    tcase_add_test(tc, test_error_line_too_long);
    tcase_add_test(tc, test_error_nul_byte);
    tcase_add_test(tc, test_error_file_access);
    tcase_add_test(tc, test_error_small_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("builtin");
    tcase_add_test(tc, test_builtin_dir);
    tcase_add_test(tc, test_builtin_scenarios_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ts_run_suite(scenario_suite());
}
