/* connfault-server speaks HTTP/1.1 correctly: every endpoint, framing (Content-Length, chunked,
 * HEAD), connection reuse and closing rules, error statuses, limits, flags and signals. Each test
 * starts the real binary on a free loopback port. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "support_server.h"

#define TEST_TIMEOUT_S 20

static const char greeting[] = "hello from connfault-server\n";

static void fixture_teardown(void)
{
    test_server_stop_all();
}

static void start_server(struct test_server *server, const char *const *args)
{
    int rc = test_server_start(server, args, 0);
    ck_assert_msg(rc == 0, "server did not start: %s", strerror(-rc));
}

static void connect_client(struct test_client *client, const struct test_server *server)
{
    int rc = test_client_connect(client, server->port, TEST_PROMPT_MS);
    ck_assert_msg(rc == 0, "connect: %s", strerror(-rc));
}

static void send_text(struct test_client *client, const char *text)
{
    int rc = test_client_send(client, text, TEST_PROMPT_MS);
    ck_assert_msg(rc == 0, "send: %s", strerror(-rc));
}

/* Read one response and check its status. */
static void expect_response(struct test_client *client, bool head_request, int status,
                            struct test_response *response)
{
    int rc = test_client_read_response(client, head_request, TEST_PROMPT_MS, response);
    ck_assert_msg(rc == 0, "reading the response: %s", strerror(-rc));
    ck_assert_msg(response->status == status, "status %d, expected %d; head:\n%s", response->status,
                  status, response->head);
}

/* A pattern body of exactly len bytes. */
static void expect_pattern_body(const struct test_response *response, size_t len)
{
    ck_assert_uint_eq(response->body_len, len);
    ck_assert_msg(response->body_has_pattern, "body does not follow 'a' + i %% 26");
}

static void expect_closed(struct test_client *client)
{
    size_t extra = 0;
    int rc = test_client_wait_closed(client, TEST_PROMPT_MS, &extra);
    ck_assert_msg(rc == 0, "the server kept the connection open: %s", strerror(-rc));
    ck_assert_msg(extra == 0, "%zu unexpected bytes after the response", extra);
}

static void expect_open_and_silent(struct test_client *client)
{
    ck_assert_int_eq(test_socket_drain(client->fd), 0);
}

START_TEST(root_returns_greeting)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_response response;
    int rc = test_http_get(server.port, "/", TEST_PROMPT_MS, &response);
    ck_assert_msg(rc == 0, "GET /: %s", strerror(-rc));
    ck_assert_int_eq(response.status, 200);
    ck_assert_int_eq(response.content_length, 28);
    ck_assert_uint_eq(response.body_len, 28);
    ck_assert_str_eq(response.body_start, greeting);
    char type[64];
    ck_assert(test_response_header(&response, "Content-Type", type, sizeof type));
    ck_assert_msg(strncmp(type, "text/plain", 10) == 0, "Content-Type: %s", type);
}
END_TEST

START_TEST(bytes_endpoint_sizes_and_pattern)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    static const size_t sizes[] = {0, 1, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char request[128];
        snprintf(request, sizeof request, "GET /bytes/%zu HTTP/1.1\r\nHost: t\r\n\r\n", sizes[i]);
        send_text(&client, request);
        struct test_response response;
        expect_response(&client, false, 200, &response);
        ck_assert_int_eq(response.content_length, (long long)sizes[i]);
        expect_pattern_body(&response, sizes[i]);
    }
    /* Query strings are ignored. */
    send_text(&client, "GET /bytes/30?x=1&y=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    struct test_response response;
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 30);
    test_client_close(&client);
}
END_TEST

START_TEST(chunked_endpoint_sizes_and_pattern)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    static const size_t sizes[] = {0, 1, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char request[128];
        snprintf(request, sizeof request, "GET /chunked/%zu HTTP/1.1\r\nHost: t\r\n\r\n", sizes[i]);
        send_text(&client, request);
        struct test_response response;
        expect_response(&client, false, 200, &response);
        ck_assert_msg(response.chunked, "no Transfer-Encoding: chunked; head:\n%s", response.head);
        ck_assert_int_eq(response.content_length, -1);
        expect_pattern_body(&response, sizes[i]);
    }
    test_client_close(&client);
}
END_TEST

START_TEST(big_bin_is_one_mebibyte)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_response response;
    int rc = test_http_get(server.port, "/big.bin", TEST_PROMPT_MS, &response);
    ck_assert_msg(rc == 0, "GET /big.bin: %s", strerror(-rc));
    ck_assert_int_eq(response.status, 200);
    ck_assert_int_eq(response.content_length, 1048576);
    expect_pattern_body(&response, 1048576);
    char type[64];
    ck_assert(test_response_header(&response, "Content-Type", type, sizeof type));
    ck_assert_str_eq(type, "application/octet-stream");
}
END_TEST

START_TEST(head_has_length_but_no_body)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "HEAD /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\n");
    struct test_response response;
    expect_response(&client, true, 200, &response);
    ck_assert_int_eq(response.content_length, 1000);
    /* A body sent by mistake would be parsed as the start of the next response.
     */
    send_text(&client, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&client, false, 200, &response);
    ck_assert_str_eq(response.body_start, greeting);
    expect_open_and_silent(&client);
    test_client_close(&client);
}
END_TEST

START_TEST(keep_alive_serves_several_requests)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    for (int i = 1; i <= 5; i++) {
        char request[128];
        snprintf(request, sizeof request, "GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n", i * 1000);
        send_text(&client, request);
        struct test_response response;
        expect_response(&client, false, 200, &response);
        ck_assert_msg(!response.connection_close, "request %d: Connection: close", i);
        expect_pattern_body(&response, (size_t)i * 1000);
    }
    expect_open_and_silent(&client);
    test_client_close(&client);
}
END_TEST

START_TEST(http10_without_keep_alive_closes)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "GET /bytes/10 HTTP/1.0\r\n\r\n");
    struct test_response response;
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 10);
    expect_closed(&client);
    test_client_close(&client);
}
END_TEST

START_TEST(connection_close_closes_after_response)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "GET /bytes/10 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    struct test_response response;
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 10);
    expect_closed(&client);
    test_client_close(&client);
}
END_TEST

START_TEST(pipelined_requests_answered_in_order)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    /* Distinct sizes so a reordered or repeated answer is caught. */
    char requests[2048] = "";
    for (int i = 1; i <= 10; i++) {
        char request[128];
        snprintf(request, sizeof request, "GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n", i * 7);
        strcat(requests, request);
    }
    send_text(&client, requests);
    for (int i = 1; i <= 10; i++) {
        struct test_response response;
        expect_response(&client, false, 200, &response);
        ck_assert_msg(response.content_length == i * 7, "response %d has length %lld", i,
                      response.content_length);
        expect_pattern_body(&response, (size_t)i * 7);
    }
    expect_open_and_silent(&client);
    test_client_close(&client);
}
END_TEST

START_TEST(request_fed_byte_by_byte)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    static const char request[] = "GET /bytes/26 HTTP/1.1\r\nHost: t\r\nX-Pad: 12345\r\n\r\n";
    for (size_t i = 0; i + 1 < sizeof request; i++) {
        int rc = test_socket_send_all(client.fd, &request[i], 1, TEST_PROMPT_MS);
        ck_assert_msg(rc == 0, "send: %s", strerror(-rc));
        if (i + 2 < sizeof request) {
            /* Give each byte its own segment, and check the server does not answer an incomplete
             * head. */
            struct pollfd pfd = {.fd = client.fd, .events = POLLIN};
            ck_assert_msg(poll(&pfd, 1, 2) == 0, "data or EOF after only %zu bytes", i + 1);
        }
    }
    struct test_response response;
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 26);
    test_client_close(&client);
}
END_TEST

/* Send one request; expect status and then the connection closed by the server.
 */
static void expect_error_and_close(const char *const *args, const char *request, int status)
{
    struct test_server server;
    start_server(&server, args);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, request);
    struct test_response response;
    expect_response(&client, false, status, &response);
    ck_assert_msg(response.connection_close, "no Connection: close; head:\n%s", response.head);
    size_t extra = 0;
    int rc = test_client_wait_closed(&client, TEST_PROMPT_MS, &extra);
    ck_assert_msg(rc == 0, "connection left open after %d", status);
    test_client_close(&client);
}

START_TEST(malformed_request_gets_400)
{
    expect_error_and_close(NULL, "GET / HTTP/1.1\r\nHost t\r\n\r\n", 400);
}
END_TEST

START_TEST(garbage_request_line_gets_400)
{
    expect_error_and_close(NULL, "\x01\x02\x03 nonsense\r\n\r\n", 400);
}
END_TEST

START_TEST(head_over_limit_gets_431)
{
    char request[4096];
    char padding[2001];
    memset(padding, 'x', sizeof padding - 1);
    padding[sizeof padding - 1] = '\0';
    snprintf(request, sizeof request, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", padding);
    expect_error_and_close(TEST_ARGS("--max-header-bytes", "1024"), request, 431);
}
END_TEST

START_TEST(unknown_method_gets_501)
{
    expect_error_and_close(NULL, "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501);
}
END_TEST

START_TEST(http2_version_gets_505)
{
    expect_error_and_close(NULL, "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
}
END_TEST

START_TEST(post_gets_405_with_allow)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    struct test_response response;
    expect_response(&client, false, 405, &response);
    char allow[128];
    ck_assert_msg(test_response_header(&response, "Allow", allow, sizeof allow),
                  "no Allow header; head:\n%s", response.head);
    ck_assert_msg(strstr(allow, "GET") && strstr(allow, "HEAD"), "Allow: %s", allow);
    test_client_close(&client);
}
END_TEST

START_TEST(post_body_is_skipped_before_next_request)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    /* The 5 body bytes must not be taken for the start of the next request. */
    send_text(&client, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                       "GET /bytes/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    struct test_response response;
    expect_response(&client, false, 405, &response);
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 7);
    test_client_close(&client);
}
END_TEST

START_TEST(http10_keep_alive_header_keeps_connection)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    for (int i = 0; i < 2; i++) {
        send_text(&client, "GET /bytes/10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        struct test_response response;
        expect_response(&client, false, 200, &response);
        ck_assert_int_eq(response.content_length, 10);
        expect_pattern_body(&response, 10);
    }
    expect_open_and_silent(&client);
    test_client_close(&client);
}
END_TEST

START_TEST(unknown_path_gets_404_and_keeps_connection)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "GET /no/such/thing HTTP/1.1\r\nHost: t\r\n\r\n");
    struct test_response response;
    expect_response(&client, false, 404, &response);
    send_text(&client, "GET /bytes/5 HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 5);
    test_client_close(&client);
}
END_TEST

START_TEST(half_close_still_gets_whole_response)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(shutdown(client.fd, SHUT_WR), 0);
    struct test_response response;
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 1048576);
    expect_closed(&client);
    test_client_close(&client);
}
END_TEST

/* Connect and complete one request, so the server has surely registered the connection. */
static void open_served_client(struct test_client *client, const struct test_server *server)
{
    connect_client(client, server);
    send_text(client, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    struct test_response response;
    expect_response(client, false, 200, &response);
}

START_TEST(max_conns_sheds_with_503_then_recovers)
{
    struct test_server server;
    start_server(&server, TEST_ARGS("--max-conns", "2"));
    struct test_client first, second, third;
    open_served_client(&first, &server);
    open_served_client(&second, &server);

    connect_client(&third, &server);
    /* The server may answer before reading anything; the request may then meet a closed socket,
     * which is fine. */
    test_client_send(&third, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", TEST_PROMPT_MS);
    struct test_response response;
    expect_response(&third, false, 503, &response);
    ck_assert_int_eq(test_client_wait_closed(&third, TEST_PROMPT_MS, NULL), 0);
    test_client_close(&third);

    test_client_close(&first);
    test_client_close(&second);
    /* The server notices the two closes asynchronously: retry until served, bounded. */
    long deadline = test_now_ms() + TEST_PROMPT_MS;
    int rc;
    do {
        rc = test_http_get(server.port, "/", TEST_PROMPT_MS, &response);
    } while ((rc != 0 || response.status == 503) && test_now_ms() < deadline);
    ck_assert_msg(rc == 0 && response.status == 200, "after the first two closed: rc %d status %d",
                  rc, response.status);
}
END_TEST

/* Run the binary with args; expect exit status 2 and a message on stderr. */
static void expect_usage_error(const char *const *args)
{
    int status = 0;
    char message[1024];
    int rc = test_server_run_to_exit(args, TEST_PROMPT_MS, &status, message, sizeof message);
    ck_assert_msg(rc == 0, "%s: did not exit in time", args[0]);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: wait status 0x%x", args[0],
                  status);
    ck_assert_msg(strlen(message) > 0, "%s: exit 2 without a message on stderr", args[0]);
}

START_TEST(bad_flags_exit_2_with_message)
{
    expect_usage_error(TEST_ARGS("--no-such-flag"));
    expect_usage_error(TEST_ARGS("--port", "not-a-number"));
    expect_usage_error(TEST_ARGS("--port", "70000"));
    expect_usage_error(TEST_ARGS("--bug", "no-such-bug"));
    expect_usage_error(TEST_ARGS("--header-timeout", "soon"));
    expect_usage_error(TEST_ARGS("--max-conns"));
}
END_TEST

static void expect_clean_exit_on(int signal_number)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_response response;
    ck_assert_int_eq(test_http_get(server.port, "/", TEST_PROMPT_MS, &response), 0);
    pid_t pid = server.pid;
    ck_assert_int_eq(kill(pid, signal_number), 0);
    int status = 0;
    int rc = test_server_wait_exit(&server, TEST_PROMPT_MS, &status);
    ck_assert_msg(rc == 0, "no exit within %d ms of signal %d", TEST_PROMPT_MS, signal_number);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "signal %d: wait status 0x%x",
                  signal_number, status);
}

START_TEST(sigterm_exits_0)
{
    expect_clean_exit_on(SIGTERM);
}
END_TEST

START_TEST(sigint_exits_0)
{
    expect_clean_exit_on(SIGINT);
}
END_TEST

START_TEST(sigterm_finishes_in_flight_response)
{
    struct test_server server;
    start_server(&server, NULL);
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    /* 16 MiB cannot sit in socket buffers: once the first byte is here, the server is
     * mid-response. */
    struct pollfd started = {.fd = client.fd, .events = POLLIN};
    ck_assert_int_eq(poll(&started, 1, TEST_PROMPT_MS), 1);
    ck_assert_int_eq(kill(server.pid, SIGTERM), 0);
    struct test_response response;
    expect_response(&client, false, 200, &response);
    expect_pattern_body(&response, 16777216);
    expect_closed(&client);
    test_client_close(&client);
    int status = 0;
    ck_assert_int_eq(test_server_wait_exit(&server, TEST_PROMPT_MS, &status), 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status 0x%x", status);
}
END_TEST

START_TEST(sigterm_gives_up_on_stalled_client_at_shutdown_timeout)
{
    struct test_server server;
    start_server(&server, TEST_ARGS("--shutdown-timeout", "0.5", "--send-timeout", "60"));
    struct test_client client;
    connect_client(&client, &server);
    send_text(&client, "GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    struct pollfd started = {.fd = client.fd, .events = POLLIN};
    ck_assert_int_eq(poll(&started, 1, TEST_PROMPT_MS), 1);
    /* The client never reads: without the shutdown timeout the server would wait for the
     * 60 s send timeout. */
    ck_assert_int_eq(kill(server.pid, SIGTERM), 0);
    int status = 0;
    int rc = test_server_wait_exit(&server, TEST_PROMPT_MS, &status);
    ck_assert_msg(rc == 0, "still running %d ms after SIGTERM with a stalled client",
                  TEST_PROMPT_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status 0x%x", status);
    test_client_close(&client);
}
END_TEST

START_TEST(port_0_picks_a_free_port)
{
    /* test_server_start always passes --port 0: a started server is this test. Two at once must get
     * different ports and both serve. */
    struct test_server one, two;
    start_server(&one, NULL);
    start_server(&two, NULL);
    ck_assert_int_gt(one.port, 0);
    ck_assert_int_ne(one.port, two.port);
    struct test_response response;
    ck_assert_int_eq(test_http_get(one.port, "/", TEST_PROMPT_MS, &response), 0);
    ck_assert_int_eq(response.status, 200);
    ck_assert_int_eq(test_http_get(two.port, "/", TEST_PROMPT_MS, &response), 0);
    ck_assert_int_eq(response.status, 200);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *suite = suite_create("server_http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, NULL, fixture_teardown);
    tcase_set_timeout(tc, TEST_TIMEOUT_S);
    tcase_add_test(tc, root_returns_greeting);
    tcase_add_test(tc, bytes_endpoint_sizes_and_pattern);
    tcase_add_test(tc, chunked_endpoint_sizes_and_pattern);
    tcase_add_test(tc, big_bin_is_one_mebibyte);
    tcase_add_test(tc, head_has_length_but_no_body);
    tcase_add_test(tc, keep_alive_serves_several_requests);
    tcase_add_test(tc, http10_without_keep_alive_closes);
    tcase_add_test(tc, connection_close_closes_after_response);
    tcase_add_test(tc, pipelined_requests_answered_in_order);
    tcase_add_test(tc, request_fed_byte_by_byte);
    tcase_add_test(tc, malformed_request_gets_400);
    tcase_add_test(tc, garbage_request_line_gets_400);
    tcase_add_test(tc, head_over_limit_gets_431);
    tcase_add_test(tc, unknown_method_gets_501);
    tcase_add_test(tc, http2_version_gets_505);
    tcase_add_test(tc, post_gets_405_with_allow);
    tcase_add_test(tc, post_body_is_skipped_before_next_request);
    tcase_add_test(tc, http10_keep_alive_header_keeps_connection);
    tcase_add_test(tc, unknown_path_gets_404_and_keeps_connection);
    tcase_add_test(tc, half_close_still_gets_whole_response);
    tcase_add_test(tc, max_conns_sheds_with_503_then_recovers);
    tcase_add_test(tc, bad_flags_exit_2_with_message);
    tcase_add_test(tc, sigterm_exits_0);
    tcase_add_test(tc, sigint_exits_0);
    tcase_add_test(tc, sigterm_finishes_in_flight_response);
    tcase_add_test(tc, sigterm_gives_up_on_stalled_client_at_shutdown_timeout);
    tcase_add_test(tc, port_0_picks_a_free_port);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    test_support_init();
    SRunner *runner = srunner_create(http_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    test_support_finish();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
