/* A target's own bytes are shown escaped wherever connfault quotes them (issue 12): its last
 * output in a set-up error, and the reason phrase of its status line. A target may print
 * terminal escape sequences (colours, a screen clear, a window title); none may reach the
 * user's terminal as such. The second target is this binary itself, run as
 * `test_target_text serve PORT`: it answers every request with a status line whose reason
 * phrase holds ESC sequences. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

#ifndef CONNFAULT_BIN
#error "CONNFAULT_BIN must name the connfault binary"
#endif

static char self_path[4096];

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
        return -1;
    return fd;
}

/* Holds port under a name with an escape sequence in it, and prints when it listens. */
static int hold(int port)
{
    prctl(PR_SET_NAME, "hold\x1b[2J");
    if (listen_on(port) < 0)
        return 1;
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    for (;;)
        pause();
}

static int serve(int port)
{
    int fd = listen_on(port);
    if (fd < 0)
        return 1;
    static const char reply[] = "HTTP/1.1 500 \x1b[31mbad\x1b[0m\x1b]0;title\x07\r\n"
                                "Content-Length: 0\r\nConnection: close\r\n\r\n";
    for (;;) {
        int c = accept(fd, NULL, NULL);
        char buf[4096];
        if (c < 0 || recv(c, buf, sizeof(buf), 0) < 0) {
            if (c >= 0)
                close(c);
            continue;
        }
        send(c, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
        close(c);
    }
}

/* connfault run with target_cmd on connect-close (on port, unless NULL): its output (stdout
 * and stderr) must hold want and no ESC or BEL byte. */
static void expect_escaped(const char *target_cmd, const char *port, const char *want)
{
    struct ts_proc p;
    const struct ts_run_opts opts = {.timeout_ms = 60000, .merge_stderr = true};
    ck_assert_int_eq(ts_run(&p,
                            TS_ARGV(CONNFAULT_BIN, "run", "--no-capture", "--port",
                                    port ? port : "0", "--target-cmd", target_cmd, "connect-close"),
                            &opts),
                     0);
    ck_assert_msg(p.status == 2, "exit status %d, expected 2 (set-up error):\n%s", p.status, p.out);
    ck_assert_msg(strstr(p.out, want) != NULL, "expected \"%s\" in:\n%s", want, p.out);
    ck_assert_msg(strchr(p.out, '\x1b') == NULL && strchr(p.out, '\x07') == NULL,
                  "a raw ESC or BEL reached the output");
    ts_proc_free(&p);
}

START_TEST(setup_error_quotes_the_targets_output_escaped)
{
    /* (--port: the command has no {port}, and it never listens anyway) */
    expect_escaped("printf '\\033[31mboom\\033[0m \"quoted\"\\n'; exit 3", "45999",
                   "(last output: \"\\x1b[31mboom\\x1b[0m \\\"quoted\\\"\")");
}
END_TEST

START_TEST(reason_phrase_is_escaped)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "%s serve {port}", self_path);
    expect_escaped(cmd, NULL, "answered 500 \\x1b[31mbad\\x1b[0m\\x1b]0;title\\x07");
}
END_TEST

/* Another process holds the port: the refusal names it by its comm, escaped. */
START_TEST(port_holder_name_is_escaped)
{
    struct ts_proc holder;
    char port_text[16];
    int port = 0;
    const struct ts_run_opts opts = {.discard_stderr = true};
    int fd = listen_on(0); /* a free port, the kernel's pick */
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    port = ntohs(a.sin_port);
    snprintf(port_text, sizeof(port_text), "%d", port);
    ck_assert_int_eq(ts_server_start(&holder, TS_ARGV(self_path, "hold", port_text), &opts, &port),
                     0);
    expect_escaped("true", port_text, "(hold\\x1b[2J)");
    ts_proc_free(&holder);
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("target_text");
    TCase *tc = tcase_create("escaped");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, setup_error_quotes_the_targets_output_escaped);
    tcase_add_test(tc, reason_phrase_is_escaped);
    tcase_add_test(tc, port_holder_name_is_escaped);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return serve(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "hold") == 0)
        return hold(atoi(argv[2]));
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    if (len <= 0)
        return EXIT_FAILURE;
    self_path[len] = '\0';
    return ts_run_suite(text_suite());
}
