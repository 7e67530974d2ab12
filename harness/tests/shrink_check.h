/* What the two shrink tests (test_shrink, test_shrink_capture) ask of the files a shrink
 * writes: commands that must run to the end, and a repro.c that compiles and tells the buggy
 * server from the correct one. Static: each test includes it once, after check.h and
 * support.h, with CONNFAULT_SERVER_BIN defined. */
#ifndef CONNFAULT_TESTS_SHRINK_CHECK_H
#define CONNFAULT_TESTS_SHRINK_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* argv run to its exit within timeout_ms (a timeout fails the test); its status in p. */
static void run_ok(struct ts_proc *p, const char *const *argv, int timeout_ms)
{
    const struct ts_run_opts o = {.timeout_ms = timeout_ms};
    ck_assert_int_eq(ts_run(p, argv, &o), 0);
    ck_assert_msg(!p->timed_out, "%s timed out:\n%s%s", argv[0], p->out, p->err);
}

/* The reference server, with --bug bug unless NULL, on a free port (into port). */
static int start_server(struct ts_proc *server, const char *bug, char *port, size_t len)
{
    int port_n = 0;
    const struct ts_run_opts so = {.timeout_ms = 120000, .discard_stderr = true};
    int rc =
        bug ? ts_server_start(server, TS_ARGV(CONNFAULT_SERVER_BIN, "--port", "0", "--bug", bug),
                              &so, &port_n)
            : ts_server_start(server, TS_ARGV(CONNFAULT_SERVER_BIN, "--port", "0"), &so, &port_n);
    snprintf(port, len, "%d", port_n);
    return rc;
}

/* dir/repro.c compiles with -Wall -Werror, exits 1 against --bug BUG and 0 against the
 * correct server, saying so in one line; with_pid: it is given the server's pid (the fds
 * check). */
static void check_repro(const char *dir, const char *bug, bool with_pid)
{
    char src[600], bin[600], port[16], pid[16];
    struct ts_proc p, server;
    snprintf(src, sizeof(src), "%s/repro.c", dir);
    snprintf(bin, sizeof(bin), "%s/repro", dir);
    run_ok(&p, TS_ARGV("cc", "-Wall", "-Werror", "-o", bin, src), 60000);
    ck_assert_msg(p.status == 0, "repro.c does not compile:\n%s%s", p.out, p.err);
    ts_proc_free(&p);
    for (int correct = 0; correct < 2; correct++) {
        int rc = start_server(&server, correct ? NULL : bug, port, sizeof(port));
        ck_assert_msg(rc == 0, "server did not start: %d", rc);
        snprintf(pid, sizeof(pid), "%d", (int)server.pid);
        if (with_pid)
            run_ok(&p, TS_ARGV(bin, "127.0.0.1", port, pid), 90000);
        else
            run_ok(&p, TS_ARGV(bin, "127.0.0.1", port), 90000);
        ck_assert_msg(p.status == (correct ? 0 : 1), "repro against %s: status %d: %s%s",
                      correct ? "the correct server" : bug, p.status, p.out, p.err);
        ck_assert_msg(strchr(p.out, '\n') == p.out + strlen(p.out) - 1, "not one line: %s", p.out);
        ts_proc_free(&p);
        ts_proc_free(&server);
    }
}

#endif
