/* Every --bug mode of connfault-server really shows its symptom, and the same steps against the
 * correct server do not. Each scenario below runs once with the bug and once without; it returns
 * what it observed and the two tests assert opposite outcomes, so neither the bug nor the fix can
 * pass by accident. The first tests check the catalogue itself (bug_modes.c). */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bug_modes.h"
#include "conn.h"
#include "listener.h"
#include "support_server.h"

#define TEST_TIMEOUT_S 20

static void fixture_teardown(void)
{
    test_server_stop_all();
}

/* Start the server, with --bug bug_name unless it is NULL, plus extra (a NULL-terminated list or
 * NULL). */
static void start_server(struct test_server *server, const char *bug_name, const char *const *extra,
                         long nofile_limit)
{
    const char *args[16];
    size_t n = 0;
    if (bug_name) {
        args[n++] = "--bug";
        args[n++] = bug_name;
    }
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof args / sizeof args[0]; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    int rc = test_server_start(server, args, nofile_limit);
    ck_assert_msg(rc == 0, "server (bug %s) did not start: %s", bug_name ? bug_name : "none",
                  strerror(-rc));
}

/* Whether a new client gets a 200 for GET / within timeout_ms. A dead server also serves
 * nobody, but that is not the symptom under test: it must still be running. */
static bool served_within(struct test_server *server, int timeout_ms)
{
    struct test_response response;
    bool served =
        test_http_get(server->port, "/", timeout_ms, &response) == 0 && response.status == 200;
    ck_assert_msg(test_server_wait_exit(server, 0, NULL) == -ETIMEDOUT, "the server died");
    return served;
}

static void close_all(int *fds, int count)
{
    for (int i = 0; i < count; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

/* ---- the catalogue ---- */

/* The correct options, as server.c sets them (values are placeholders where modes do not care). */
static void correct_options(struct listener_opts *lo, struct conn_opts *co)
{
    memset(lo, 0, sizeof(*lo)); /* padding too: the test compares bytes */
    memset(co, 0, sizeof(*co));
    lo->tcp_nodelay = true;
    lo->tcp_user_timeout_ms = 10000;
    lo->events = EPOLLIN;
    lo->accept = listener_accept_batch;
    lo->out_of_fds = listener_make_room;
    co->header_timeout_ms = co->idle_timeout_ms = co->send_timeout_ms = 10000;
    co->send_flags = MSG_NOSIGNAL;
    co->ignore_sigpipe = true;
    co->serve = conn_accepted;
    co->close_fd = conn_close_fd;
}

START_TEST(every_bug_mode_has_a_name_and_changes_the_options)
{
    struct listener_opts lo_ok, lo;
    struct conn_opts co_ok, co;
    correct_options(&lo_ok, &co_ok);
    for (int bug = BUG_NONE; bug < BUG_MODE_COUNT; bug++) {
        memcpy(&lo, &lo_ok, sizeof(lo));
        memcpy(&co, &co_ok, sizeof(co));
        bug_modes_apply((enum bug_mode)bug, &lo, &co);
        bool changed = memcmp(&lo, &lo_ok, sizeof(lo)) != 0 || memcmp(&co, &co_ok, sizeof(co)) != 0;
        ck_assert_msg(changed == (bug != BUG_NONE), "mode %d (%s) %s the options", bug,
                      bug_mode_name((enum bug_mode)bug), changed ? "changes" : "does not change");
        if (bug == BUG_NONE)
            continue;
        enum bug_mode parsed = BUG_NONE;
        ck_assert_int_eq(bug_mode_parse(bug_mode_name((enum bug_mode)bug), &parsed), 0);
        ck_assert_int_eq(parsed, bug);
    }
}
END_TEST

START_TEST(unknown_bug_mode_is_refused_with_the_list)
{
    enum bug_mode parsed = BUG_SIGPIPE;
    ck_assert_int_eq(bug_mode_parse("none", &parsed), -EINVAL);
    ck_assert_int_eq(bug_mode_parse("", &parsed), -EINVAL);
    ck_assert_int_eq(parsed, BUG_SIGPIPE);
    ck_assert_str_eq(bug_mode_name(BUG_NONE), "none");
    char names[128];
    bug_modes_list(names, sizeof(names));
    ck_assert_str_eq(names, "accept-once, blocking, leak-on-error, sigpipe, emfile-spin, "
                            "no-timeouts, half-close-drop, timer-flush");
    bug_modes_list(names, 10); /* cut, still a string */
    ck_assert_uint_eq(strlen(names), 9);
}
END_TEST

/* ---- accept-once: a backlog that never drains ---- */

/* Queue 100 clients that connect, send and reset while the server cannot run (SIGSTOP makes "busy"
 * deterministic), let it run again, then try a new client. */
static bool accept_once_scenario(const char *bug_name)
{
    struct test_server server;
    start_server(&server, bug_name, NULL, 0);
    ck_assert_int_eq(kill(server.pid, SIGSTOP), 0);
    ck_assert_int_eq(test_proc_wait_state(server.pid, 'T', TEST_PROMPT_MS), 0);

    int burst[100];
    int connected = test_socket_connect_many(server.port, burst, 100, 2000);
    ck_assert_msg(connected >= 10, "only %d clients got into the backlog", connected);
    static const char request[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < 100; i++) {
        if (burst[i] >= 0) {
            test_socket_send_all(burst[i], request, strlen(request), TEST_PROMPT_MS);
            test_socket_reset(burst[i]);
        }
    }
    ck_assert_int_eq(kill(server.pid, SIGCONT), 0);
    return served_within(&server, 1500);
}

START_TEST(accept_once_bug_starves_new_clients)
{
    ck_assert_msg(!accept_once_scenario("accept-once"),
                  "with --bug accept-once a new client was served after the burst");
}
END_TEST

START_TEST(accept_once_correct_server_serves_after_burst)
{
    ck_assert_msg(accept_once_scenario(NULL), "no answer within 1.5 s after the reset burst");
}
END_TEST

/* ---- blocking: one silent client stops everyone ---- */

static bool blocking_scenario(const char *bug_name)
{
    struct test_server server;
    start_server(&server, bug_name, NULL, 0);
    int baseline = test_proc_fd_count(server.pid);
    int slow = test_socket_connect(server.port, TEST_PROMPT_MS);
    ck_assert_msg(slow >= 0, "connect: %s", strerror(-slow));
    static const char partial[] = "GET / HTTP/1.1\r\nX-Slow: ";
    ck_assert_int_eq(test_socket_send_all(slow, partial, strlen(partial), TEST_PROMPT_MS), 0);
    /* Accepted: from here a blocking server sits in read() on it. */
    ck_assert_int_eq(test_proc_wait_fd_count(server.pid, baseline + 1, TEST_PROMPT_MS),
                     baseline + 1);
    bool served = served_within(&server, 1000);
    close(slow);
    return served;
}

START_TEST(blocking_bug_one_slow_client_stops_the_server)
{
    ck_assert_msg(!blocking_scenario("blocking"),
                  "with --bug blocking a client was served past a slowloris");
}
END_TEST

START_TEST(blocking_correct_server_serves_past_slow_client)
{
    ck_assert_msg(blocking_scenario(NULL), "not served within 1 s while a slowloris is connected");
}
END_TEST

/* ---- leak-on-error: fds and CLOSE_WAIT sockets pile up ---- */

/* 20 clients reset in the middle of /big.bin; returns the fds still held above the baseline after
 * giving the server 1.5 s to clean up. */
static int leak_on_reset_scenario(const char *bug_name)
{
    struct test_server server;
    start_server(&server, bug_name, NULL, 0);
    int baseline = test_proc_fd_count(server.pid);
    static const char request[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < 20; i++) {
        int fd = test_socket_connect(server.port, TEST_PROMPT_MS);
        ck_assert_msg(fd >= 0, "connect: %s", strerror(-fd));
        ck_assert_int_eq(test_socket_send_all(fd, request, strlen(request), TEST_PROMPT_MS), 0);
        ck_assert_int_gt(test_socket_read_at_least(fd, 16384, TEST_PROMPT_MS), 0);
        test_socket_reset(fd);
    }
    ck_assert(served_within(&server, TEST_PROMPT_MS));
    return test_proc_wait_fd_count(server.pid, baseline, 1500) - baseline;
}

START_TEST(leak_on_error_bug_keeps_fds_of_reset_clients)
{
    int leaked = leak_on_reset_scenario("leak-on-error");
    ck_assert_msg(leaked >= 20, "with --bug leak-on-error only %d fds leaked from 20 resets",
                  leaked);
}
END_TEST

START_TEST(leak_on_error_correct_server_closes_reset_clients)
{
    int leaked = leak_on_reset_scenario(NULL);
    ck_assert_msg(leaked == 0, "%d fds still open 1.5 s after 20 resets", leaked);
}
END_TEST

/* Wait until pid holds expected sockets in tcp_state; the last count seen. */
static int wait_tcp_state_count(pid_t pid, int tcp_state, int expected, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    int count;
    while ((count = test_proc_tcp_state_count(pid, tcp_state)) != expected &&
           test_now_ms() < deadline) {
        poll(NULL, 0, 10);
    }
    return count;
}

/* 10 clients complete a keep-alive request then close (FIN); returns the server's sockets left in
 * CLOSE_WAIT after giving it 1.5 s. */
static int leak_on_fin_scenario(const char *bug_name)
{
    struct test_server server;
    start_server(&server, bug_name, NULL, 0);
    for (int i = 0; i < 10; i++) {
        struct test_client client;
        ck_assert_int_eq(test_client_connect(&client, server.port, TEST_PROMPT_MS), 0);
        ck_assert_int_eq(
            test_client_send(&client, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", TEST_PROMPT_MS), 0);
        struct test_response response;
        ck_assert_int_eq(test_client_read_response(&client, false, TEST_PROMPT_MS, &response), 0);
        ck_assert_int_eq(response.status, 200);
        test_client_close(&client); /* nothing unread: a FIN, not a reset */
    }
    return wait_tcp_state_count(server.pid, TCP_CLOSE_WAIT, 0, 1500);
}

START_TEST(leak_on_error_bug_leaves_close_wait_sockets)
{
    int close_wait = leak_on_fin_scenario("leak-on-error");
    ck_assert_msg(close_wait >= 10, "with --bug leak-on-error %d of 10 sockets in CLOSE_WAIT",
                  close_wait);
}
END_TEST

START_TEST(leak_on_error_correct_server_leaves_no_close_wait)
{
    int close_wait = leak_on_fin_scenario(NULL);
    ck_assert_msg(close_wait == 0, "%d sockets in CLOSE_WAIT 1.5 s after the clients closed",
                  close_wait);
}
END_TEST

/* ---- sigpipe: a client that leaves early kills the server ---- */

/* Clients ask for /big.bin and close at once: their FIN, then the RST their kernel answers the
 * first bytes with, make the server's next write() fail with EPIPE. Returns the wait status if the
 * server died within about 2 s, -1 if it is still alive. */
static int sigpipe_scenario(const char *bug_name, struct test_server *server)
{
    start_server(server, bug_name, NULL, 0);
    static const char request[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    int status = 0;
    for (int i = 0; i < 10; i++) {
        int fd = test_socket_connect(server->port, TEST_PROMPT_MS);
        if (fd < 0) {
            break; /* the listener died with the server */
        }
        test_socket_send_all(fd, request, strlen(request), TEST_PROMPT_MS);
        close(fd);
        if (test_server_wait_exit(server, 50, &status) == 0) {
            return status;
        }
    }
    return test_server_wait_exit(server, 1500, &status) == 0 ? status : -1;
}

START_TEST(sigpipe_bug_kills_the_server)
{
    struct test_server server;
    int status = sigpipe_scenario("sigpipe", &server);
    ck_assert_msg(status >= 0, "with --bug sigpipe the server survived early closes");
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE,
                  "the server ended, but with wait status 0x%x, not SIGPIPE", status);
}
END_TEST

START_TEST(sigpipe_correct_server_survives_early_closes)
{
    struct test_server server;
    int status = sigpipe_scenario(NULL, &server);
    ck_assert_msg(status < 0, "the server ended with wait status 0x%x", status);
    ck_assert(served_within(&server, TEST_PROMPT_MS));
}
END_TEST

/* ---- emfile-spin: out of fds, the loop spins ---- */

/* With 64 fds and 100 idle clients: the percent of 1 s the server spends running or waiting to run
 * (a busy loop scores ~100 even when other work shares the cores). */
static int emfile_scenario(const char *bug_name)
{
    struct test_server server;
    start_server(&server, bug_name, NULL, 64);
    int idle[100];
    test_socket_connect_many(server.port, idle, 100, 2000);
    int fds = test_proc_wait_fd_count_at_least(server.pid, 60, TEST_PROMPT_MS);
    ck_assert_msg(fds >= 60, "server reached only %d fds of 64", fds);
    int demand = test_proc_cpu_demand_during(server.pid, 1000);
    close_all(idle, 100);
    ck_assert_int_ge(demand, 0);
    return demand;
}

START_TEST(emfile_spin_bug_burns_a_core)
{
    int demand = emfile_scenario("emfile-spin");
    ck_assert_msg(demand > 50, "with --bug emfile-spin CPU demand only %d%% out of fds", demand);
}
END_TEST

START_TEST(emfile_correct_server_stays_idle)
{
    int demand = emfile_scenario(NULL);
    ck_assert_msg(demand < 30, "CPU demand %d%% out of fds", demand);
}
END_TEST

/* ---- no-timeouts: silent clients hold their fds forever ---- */

/* A client that connects and sends nothing, against --header-timeout 0.5: whether the server closed
 * it within 2 s. */
static bool no_timeouts_scenario(const char *bug_name)
{
    struct test_server server;
    start_server(&server, bug_name, TEST_ARGS("--header-timeout", "0.5"), 0);
    int fd = test_socket_connect(server.port, TEST_PROMPT_MS);
    ck_assert_msg(fd >= 0, "connect: %s", strerror(-fd));
    bool closed = test_socket_wait_closed(fd, 2000, NULL) == 0;
    close(fd);
    return closed;
}

START_TEST(no_timeouts_bug_keeps_silent_client)
{
    ck_assert_msg(!no_timeouts_scenario("no-timeouts"),
                  "with --bug no-timeouts a silent client was closed");
}
END_TEST

START_TEST(no_timeouts_correct_server_closes_silent_client)
{
    ck_assert_msg(no_timeouts_scenario(NULL),
                  "silent client still open 2 s into --header-timeout 0.5");
}
END_TEST

/* ---- half-close-drop: a request followed by the client's FIN is never answered ---- */

/* A client that sends GET / and shutdown(SHUT_WR) while the server is stopped (SIGSTOP: the server
 * finds the request and the FIN already there, as a busy server would), then reads one response:
 * returns test_client_read_response's result (0: a whole response; -ENODATA: EOF before any
 * byte). A client that does not half-close must be served either way. */
static int half_close_scenario(const char *bug_name)
{
    struct test_server server;
    struct test_client client;
    struct test_response response;
    start_server(&server, bug_name, NULL, 0);
    ck_assert_int_eq(kill(server.pid, SIGSTOP), 0);
    ck_assert_int_eq(test_proc_wait_state(server.pid, 'T', TEST_PROMPT_MS), 0);
    ck_assert_int_eq(test_client_connect(&client, server.port, TEST_PROMPT_MS), 0);
    ck_assert_int_eq(test_client_send(&client, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", TEST_PROMPT_MS),
                     0);
    ck_assert_int_eq(shutdown(client.fd, SHUT_WR), 0);
    ck_assert_int_eq(kill(server.pid, SIGCONT), 0);
    int rc = test_client_read_response(&client, false, 2000, &response);
    ck_assert_msg(rc != 0 || response.status == 200, "status %d", response.status);
    test_client_close(&client);
    ck_assert_msg(served_within(&server, 1000), "a client that did not half-close was not served");
    return rc;
}

START_TEST(half_close_drop_bug_closes_without_answering)
{
    int rc = half_close_scenario("half-close-drop");
    ck_assert_msg(rc == -ENODATA, "with --bug half-close-drop the half-closed client got %s",
                  rc == 0 ? "its response" : strerror(-rc));
}
END_TEST

START_TEST(half_close_correct_server_answers_half_closed_client)
{
    int rc = half_close_scenario(NULL);
    ck_assert_msg(rc == 0, "the half-closed client got no whole response: %s", strerror(-rc));
}
END_TEST

/* ---- timer-flush: served until the server's own timer fires, then hung ---- */

/* The timer, shortened (GoAhead's is 60 s): --send-timeout 3. */
#define TIMER_FLUSH_TIMER_MS 3000

/* A client that asks for 16 MiB with a small receive window and reads none of it: the
 * server's send queue fills and no byte moves, so its send timer fires. */
static int stalled_client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int small = 4096;
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static const char req[] = "GET /bytes/16777216 HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(test_socket_send_all(fd, req, strlen(req), TEST_PROMPT_MS), 0);
    return fd;
}

/* Whether a new client is served after the stalled client's timer fired. Before it, both
 * servers must serve. The timer's end is seen from outside: the correct server closes the
 * stalled connection (its fd goes); the bug's sits in send() on it, so the wait for that runs
 * out, well past the timer. */
static bool timer_flush_scenario(const char *bug_name)
{
    struct test_server server;
    start_server(&server, bug_name, TEST_ARGS("--send-timeout", "3"), 0);
    int baseline = test_proc_fd_count(server.pid);
    int stalled = stalled_client(server.port);
    ck_assert_int_eq(test_proc_wait_fd_count(server.pid, baseline + 1, TEST_PROMPT_MS),
                     baseline + 1);
    ck_assert_msg(served_within(&server, 1000), "not served before the stalled client's timer");
    test_proc_wait_fd_count(server.pid, baseline, 2 * TIMER_FLUSH_TIMER_MS);
    bool served = served_within(&server, 1000);
    close(stalled);
    return served;
}

START_TEST(timer_flush_bug_hangs_once_its_timer_fires)
{
    ck_assert_msg(!timer_flush_scenario("timer-flush"),
                  "with --bug timer-flush a client was served after the send timer fired");
}
END_TEST

START_TEST(timer_flush_correct_server_serves_after_its_timer)
{
    ck_assert_msg(timer_flush_scenario(NULL),
                  "not served after the stalled client's send timeout closed it");
}
END_TEST

static Suite *bugs_suite(void)
{
    Suite *suite = suite_create("server_bugs");
    TCase *catalogue = tcase_create("catalogue");
    tcase_add_test(catalogue, every_bug_mode_has_a_name_and_changes_the_options);
    tcase_add_test(catalogue, unknown_bug_mode_is_refused_with_the_list);
    suite_add_tcase(suite, catalogue);
    TCase *tc = tcase_create("bugs");
    tcase_add_checked_fixture(tc, NULL, fixture_teardown);
    tcase_set_timeout(tc, TEST_TIMEOUT_S);
    tcase_add_test(tc, accept_once_bug_starves_new_clients);
    tcase_add_test(tc, accept_once_correct_server_serves_after_burst);
    tcase_add_test(tc, blocking_bug_one_slow_client_stops_the_server);
    tcase_add_test(tc, blocking_correct_server_serves_past_slow_client);
    tcase_add_test(tc, leak_on_error_bug_keeps_fds_of_reset_clients);
    tcase_add_test(tc, leak_on_error_correct_server_closes_reset_clients);
    tcase_add_test(tc, leak_on_error_bug_leaves_close_wait_sockets);
    tcase_add_test(tc, leak_on_error_correct_server_leaves_no_close_wait);
    tcase_add_test(tc, sigpipe_bug_kills_the_server);
    tcase_add_test(tc, sigpipe_correct_server_survives_early_closes);
    tcase_add_test(tc, emfile_spin_bug_burns_a_core);
    tcase_add_test(tc, emfile_correct_server_stays_idle);
    tcase_add_test(tc, no_timeouts_bug_keeps_silent_client);
    tcase_add_test(tc, no_timeouts_correct_server_closes_silent_client);
    tcase_add_test(tc, half_close_drop_bug_closes_without_answering);
    tcase_add_test(tc, half_close_correct_server_answers_half_closed_client);
    tcase_add_test(tc, timer_flush_bug_hangs_once_its_timer_fires);
    tcase_add_test(tc, timer_flush_correct_server_serves_after_its_timer);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    test_support_init();
    SRunner *runner = srunner_create(bugs_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    test_support_finish();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
