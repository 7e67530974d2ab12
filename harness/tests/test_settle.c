/* The wait after the faults does not end while connections still wait in the target's listen
 * queue: each becomes an fd once accepted, so fds at the baseline between two accepts are not
 * back. (lighttpd, accepting one by one the 900 clients fd-exhaustion had released, was judged
 * back between two accepts and the final count then caught one: "1 socket leaked".)
 *
 * The target is this binary, run as `test_settle slow-accept PORT`: an HTTP server that
 * accepts one connection every SLOW_ACCEPT_MS and closes it at its EOF (or answers its request
 * 200 and closes). 300 idle clients held for 1 s and then released leave about 200 closed
 * connections in its queue, which it takes about 2 s to accept: the fds are at the baseline
 * all along (each accepted one closes within microseconds), and "back" must wait for them. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#ifndef CONNFAULT_BIN
#error "CONNFAULT_BIN must name the connfault binary"
#endif

#define SLOW_ACCEPT_MS 10
#define MAX_CONNS      1024
#define RUN_MS         120000

static char self_path[4096];
static char dir[128]; /* made and removed by the fixture: gone on a failed assertion too */

static void dir_create(void)
{
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-settle"), 0);
}

static void dir_remove(void)
{
    ts_tmpdir_remove(dir);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The slow-accepting server: one accept per SLOW_ACCEPT_MS, an answer to any request. */
static int slow_accept(int port)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1024) < 0)
        return 1;
    static struct pollfd pfd[MAX_CONNS + 1];
    size_t n = 0;
    uint64_t next_accept = 0;
    static const char reply[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    for (;;) {
        uint64_t now = now_ms();
        bool may_accept = now >= next_accept && n < MAX_CONNS;
        pfd[n] = (struct pollfd){.fd = ls, .events = may_accept ? POLLIN : 0};
        int wait = may_accept ? -1 : (int)(next_accept - now);
        if (poll(pfd, n + 1, wait) < 0 && errno != EINTR)
            return 1;
        if (pfd[n].revents & POLLIN) {
            int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0)
                pfd[n++] = (struct pollfd){.fd = c, .events = POLLIN};
            next_accept = now_ms() + SLOW_ACCEPT_MS;
        }
        for (size_t i = 0; i < n;) {
            char buf[4096];
            ssize_t got = pfd[i].revents ? recv(pfd[i].fd, buf, sizeof(buf), 0) : -1;
            if (got < 0 && (!pfd[i].revents || errno == EAGAIN)) {
                i++;
                continue;
            }
            if (got > 0)
                send(pfd[i].fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
            close(pfd[i].fd);
            pfd[i] = pfd[--n];
        }
    }
}

START_TEST(fds_are_not_back_while_connections_wait_in_the_queue)
{
    char ini[256], json[256], cmd[4200];
    snprintf(ini, sizeof(ini), "%s/queued.ini", dir);
    snprintf(json, sizeof(json), "%s/r.json", dir);
    ck_assert_int_eq(ts_write_file(ini, "[scenario]\n"
                                        "description = idle clients queued, then released\n"
                                        "duration = 1s\n"
                                        "release = end\n"
                                        "[clients idle]\n"
                                        "count = 300\n"
                                        "concurrency = 300\n"
                                        "send = none\n"
                                        "read = none\n"
                                        "end = hold\n"),
                     0);
    snprintf(cmd, sizeof(cmd), "%s slow-accept {port}", self_path);
    struct ts_proc p;
    const struct ts_run_opts opts = {.timeout_ms = RUN_MS, .merge_stderr = true};
    ck_assert_int_eq(ts_run(&p,
                            TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "1", "--no-capture", "--grace",
                                    "20", "--target-cmd", cmd, "--json", json, ini),
                            &opts),
                     0);
    char *text = ts_slurp(json, NULL);
    ck_assert_msg(text, "no JSON report (status %d):\n%s", p.status, p.out);
    char error[128];
    struct ts_json *root = ts_json_parse(text, error, sizeof(error));
    ck_assert_msg(root, "JSON: %s", error);
    const struct ts_json *sc = ts_json_at(ts_json_get(root, "scenarios"), 0);
    const struct ts_json *checks = ts_json_get(sc, "checks"), *fds = NULL;
    for (size_t i = 0; i < ts_json_count(checks); i++)
        if (strcmp(ts_json_str(ts_json_at(checks, i), "name"), "fds") == 0)
            fds = ts_json_at(checks, i);
    ck_assert_msg(fds, "no fds check:\n%s", p.out);
    ck_assert_msg(strcmp(ts_json_str(fds, "status"), "ok") == 0, "fds: %s\n%s",
                  ts_json_str(fds, "summary"), p.out);
    /* about 200 queued at one accept per 10 ms: back no sooner than after most were accepted */
    double settled = atof(ts_json_num(fds, "settled_s"));
    ck_assert_msg(settled >= 1.0,
                  "fds back %.3fs after the faults, with connections still queued:\n%s", settled,
                  p.out);
    ts_json_free(root);
    free(text);
    ts_proc_free(&p);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "slow-accept") == 0)
        return slow_accept(atoi(argv[2]));
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    if (len <= 0)
        return EXIT_FAILURE;
    self_path[len] = '\0';
    Suite *s = suite_create("settle");
    TCase *tc = tcase_create("settle");
    tcase_set_timeout(tc, RUN_MS / 1000 + 10);
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_test(tc, fds_are_not_back_while_connections_wait_in_the_queue);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
