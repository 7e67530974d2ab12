/* Tests for diagnose: the reference server is started in each of its bug modes, driven into
 * its failure by real loopback clients, and the diagnosis must name what a person debugging it
 * needs: the system call, the fd and its peer, the function and line, the EMFILE loop, the
 * stuck listen queue. Every wait polls a condition against a deadline. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diagnose.h"
#include "diagnose_internal.h"
#include "cf_time.h"
#include "procfs.h"
#include "sockdiag.h"
#include "support.h"

#ifndef CONNFAULT_SERVER_BIN
#error "CONNFAULT_SERVER_BIN must name the reference server binary"
#endif

#define WAIT_MS        10000 /* for conditions that take milliseconds when all is well */
#define POLL_PERIOD_MS 5
#define BUDGET_MS      3000
#define NR_RECVFROM    45
#define NR_SENDMSG     46
#define NR_EPOLL_WAIT  232
#define NR_PAUSE       34

struct server {
    struct ts_proc proc;
    pid_t pid;
    int port;
};

/* What a wait looks at (ts_wait_until's argument): the server, what it should reach, and
 * what was seen. */
struct watch {
    pid_t pid;
    long nr;           /* in_syscall */
    char state;        /* in_state */
    unsigned fd_limit; /* at_fd_limit */
    struct fd_counts fds;
    int port; /* listen_queue_filled */
    unsigned queued, backlog;
};

static bool watch_until(bool (*cond)(void *), struct watch *w)
{
    return ts_wait_until(cond, w, WAIT_MS, POLL_PERIOD_MS);
}

/* ---- the server ---------------------------------------------------------------------------- */

/* Starts the server (with RLIMIT_NOFILE nofile unless 0) and reads its port from its ready
 * line. It holds no fd of the test's, so its fd count is its own. */
static void server_start(struct server *s, const char *bug, rlim_t nofile)
{
    const struct ts_run_opts opts = {.discard_stderr = true, .nofile = nofile};
    int rc =
        bug ? ts_server_start(&s->proc,
                              TS_ARGV(CONNFAULT_SERVER_BIN, "--port", "0", "--quiet", "--bug", bug),
                              &opts, &s->port)
            : ts_server_start(&s->proc, TS_ARGV(CONNFAULT_SERVER_BIN, "--port", "0", "--quiet"),
                              &opts, &s->port);
    ck_assert_msg(rc == 0, "server did not start (%s): \"%s\"", strerror(-rc), s->proc.out);
    s->pid = s->proc.pid;
}

static void server_stop(struct server *s)
{
    ts_proc_free(&s->proc);
}

/* The first number of /proc/PID/syscall, -1 for "running" or unreadable. */
static long current_syscall(pid_t pid)
{
    char path[64], text[128] = "";
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    bool ok = fgets(text, sizeof(text), f) != NULL;
    fclose(f);
    char *end;
    long nr = ok ? strtol(text, &end, 10) : -1;
    return ok && end != text ? nr : -1;
}

static bool in_syscall(void *arg)
{
    struct watch *w = arg;
    return current_syscall(w->pid) == w->nr;
}

static bool wait_syscall(pid_t pid, long nr)
{
    return watch_until(in_syscall, &(struct watch){.pid = pid, .nr = nr});
}

static char state_of(pid_t pid)
{
    char state = '?';
    procfs_state(pid, &state);
    return state;
}

static bool in_state(void *arg)
{
    struct watch *w = arg;
    return state_of(w->pid) == w->state;
}

static bool wait_state(pid_t pid, char want)
{
    return watch_until(in_state, &(struct watch){.pid = pid, .state = want});
}

/* Holding fd_limit fds (or its fds unreadable: the caller's assertion says so). */
static bool at_fd_limit(void *arg)
{
    struct watch *w = arg;
    return procfs_fd_counts(w->pid, &w->fds) != 0 || w->fds.total >= w->fd_limit;
}

/* Back in epoll_wait with connections waiting in its listen queue. */
static bool listen_queue_filled(void *arg)
{
    struct watch *w = arg;
    return current_syscall(w->pid) == NR_EPOLL_WAIT &&
           sockdiag_listen_queue(w->port, &w->queued, &w->backlog) == 0 && w->queued > 0;
}

/* ---- clients --------------------------------------------------------------------------------- */

static int client_connect(const char *from, int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0)
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    if (from != NULL) {
        inet_pton(AF_INET, from, &addr.sin_addr);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    }
    addr.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void client_send(int fd, const char *text)
{
    ck_assert_int_eq(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

static void client_reset(int fd)
{
    struct linger hard = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    close(fd);
}

/* "127.0.0.2:40312": the client's address as the server sees it. */
static void client_name(int fd, char *buf, size_t size)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    snprintf(buf, size, "%s:%u", host, ntohs(addr.sin_port));
}

/* GET / must be answered with the hello body within the deadline. */
static bool server_serves(int port)
{
    int fd = client_connect(NULL, port, 0);
    client_send(fd, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    char reply[1024];
    size_t len = 0;
    uint64_t deadline = cf_now_ms() + WAIT_MS;
    while (len < sizeof(reply) - 1 && cf_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t got = recv(fd, reply + len, sizeof(reply) - 1 - len, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    reply[len] = '\0';
    close(fd);
    return strncmp(reply, "HTTP/1.1 200", 12) == 0 &&
           strstr(reply, "hello from connfault-server\n") != NULL;
}

/* ---- diagnosis helpers ------------------------------------------------------------------------
 */

static void diagnose_ok(pid_t pid, int port, bool sample, unsigned budget, struct diagnosis *d)
{
    struct diagnose_options opt = {.port = port, .sample_syscalls = sample, .budget_ms = budget};
    int rc = diagnose_target(pid, &opt, d);
    ck_assert_msg(rc == 0, "diagnose_target: %s", strerror(-rc));
    ck_assert_ptr_nonnull(d->summary);
    ck_assert_ptr_nonnull(d->text);
    ck_assert_ptr_nonnull(d->json);
    if (getenv("CONNFAULT_TEST_VERBOSE") != NULL)
        fprintf(stderr, "%s\n", d->text);
}

/* Check passes failure messages through a pipe with a size limit: the report goes to stderr,
 * the message stays short. */
static void fail_with_report(const struct diagnosis *d, const char *what)
{
    fprintf(stderr, "%s\n%s\n", d->text, d->json);
    ck_abort_msg("expected %s (the report is on stderr)", what);
}

static void assert_contains(const struct diagnosis *d, const char *where, const char *what)
{
    if (strstr(where, what) == NULL)
        fail_with_report(d, what);
}

/* The number after key in text ("sq 123"), or -1. */
static long number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* No exited child left unreaped: the diagnosis reaped its helper. */
static void assert_no_zombies(void)
{
    int status;
    ck_assert_int_eq(waitpid(-1, &status, WNOHANG), 0);
}

/* ---- the JSON report (diagnose/render_json.c) ------------------------------------------------ */

/* d->json parsed by the strict parser: valid JSON text, hence valid UTF-8 with no raw control
 * character (RFC 8259), or the test fails with the report. */
static struct ts_json *json_of(const struct diagnosis *d)
{
    char error[256];
    struct ts_json *root = ts_json_parse(d->json, error, sizeof(error));
    if (root == NULL) {
        fprintf(stderr, "%s\n", error);
        fail_with_report(d, "valid JSON text");
    }
    return root;
}

static void expect(const struct diagnosis *d, bool ok, const char *what)
{
    if (!ok)
        fail_with_report(d, what);
}

/* The i-th thread over all the report's processes, or NULL past the last. */
static const struct ts_json *thread_at(const struct ts_json *root, size_t i)
{
    const struct ts_json *procs = ts_json_get(root, "processes");
    for (size_t p = 0; p < ts_json_count(procs); p++) {
        const struct ts_json *threads = ts_json_get(ts_json_at(procs, p), "threads");
        if (i < ts_json_count(threads))
            return ts_json_at(threads, i);
        i -= ts_json_count(threads);
    }
    return NULL;
}

static bool str_is(const char *s, const char *want)
{
    return s != NULL && strcmp(s, want) == 0;
}

/* An item of array whose member key is the string value. */
static bool has_item(const struct ts_json *array, const char *key, const char *value)
{
    for (size_t i = 0; i < ts_json_count(array); i++)
        if (str_is(ts_json_str(ts_json_at(array, i), key), value))
            return true;
    return false;
}

/* A thread whose member key is the string value. */
static bool has_thread(const struct ts_json *root, const char *key, const char *value)
{
    for (size_t i = 0; thread_at(root, i); i++)
        if (str_is(ts_json_str(thread_at(root, i), key), value))
            return true;
    return false;
}

/* A thread with function in its backtrace. */
static bool has_frame(const struct ts_json *root, const char *function)
{
    for (size_t i = 0; thread_at(root, i); i++)
        if (has_item(ts_json_get(thread_at(root, i), "backtrace"), "function", function))
            return true;
    return false;
}

/* The diagnosis shows function in a thread's backtrace. */
static void expect_frame(const struct diagnosis *d, const char *function)
{
    struct ts_json *json = json_of(d);
    bool found = has_frame(json, function);
    ts_json_free(json);
    char what[128];
    snprintf(what, sizeof(what), "%s in a backtrace", function);
    if (!found)
        fail_with_report(d, what);
}

/* A thread in system call name on an fd whose peer is peer (any fd when peer is NULL). */
static bool has_syscall(const struct ts_json *root, const char *name, const char *peer)
{
    for (size_t i = 0; thread_at(root, i); i++) {
        const struct ts_json *sc = ts_json_get(thread_at(root, i), "syscall");
        if (str_is(ts_json_str(sc, "name"), name) &&
            (!peer || has_item(ts_json_get(sc, "fds"), "peer", peer)))
            return true;
    }
    return false;
}

/* A note containing text. */
static bool has_note(const struct ts_json *root, const char *text)
{
    const struct ts_json *notes = ts_json_get(root, "notes");
    for (size_t i = 0; i < ts_json_count(notes); i++) {
        const struct ts_json *note = ts_json_at(notes, i);
        if (ts_json_type(note) == TS_JSON_STRING && strstr(note->text, text))
            return true;
    }
    return false;
}

/* A number member as a long, -1 when missing. */
static long num_of(const struct ts_json *object, const char *key)
{
    const char *text = ts_json_num(object, key);
    return text ? strtol(text, NULL, 10) : -1;
}

/* ---- tests ----------------------------------------------------------------------------------- */

START_TEST(test_blocking_read_names_call_fd_peer_and_line)
{
    struct server s;
    server_start(&s, "blocking", 0);
    int client = client_connect("127.0.0.2", s.port, 0);
    client_send(client, "GET / HTTP/1.1\r\nHost: slow\r\n"); /* a head that never ends */
    char peer[64], want[128];
    client_name(client, peer, sizeof(peer));
    ck_assert_msg(wait_syscall(s.pid, NR_RECVFROM), "server never blocked in recvfrom");

    struct diagnosis d;
    diagnose_ok(s.pid, s.port, false, BUDGET_MS, &d);
    assert_contains(&d, d.summary, "blocked in recvfrom(fd ");
    snprintf(want, sizeof(want), "<- %s ESTABLISHED", peer);
    assert_contains(&d, d.summary, want);
    assert_contains(&d, d.summary, " at bug_serve_blocking (bug_modes.c:");
    ck_assert_int_gt(number_after(d.summary, "bug_modes.c:"), 0);

    /* The fd named is the server's socket of this very connection. */
    long fd = number_after(d.summary, "recvfrom(fd ");
    char path[64], link[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%ld", (int)s.pid, fd);
    ssize_t len = readlink(path, link, sizeof(link) - 1);
    ck_assert_int_gt(len, 0);
    link[len] = '\0';
    ck_assert_msg(strncmp(link, "socket:[", 8) == 0, "fd %ld is %s", fd, link);

    struct ts_json *json = json_of(&d);
    expect(&d, has_syscall(json, "recvfrom", peer), "a thread in recvfrom on the client's fd");
    expect(&d, has_frame(json, "bug_serve_blocking"), "bug_serve_blocking in a backtrace");
    ts_json_free(json);

    /* Left as it was: still blocked in the same read. */
    ck_assert(wait_syscall(s.pid, NR_RECVFROM));
    ck_assert_int_eq(state_of(s.pid), 'S');
    assert_no_zombies();
    diagnosis_free(&d);
    close(client);
    server_stop(&s);
}
END_TEST

START_TEST(test_blocking_send_names_call_and_send_queue)
{
    struct server s;
    server_start(&s, "blocking", 0);
    int client = client_connect(NULL, s.port, 4096);
    client_send(client, "GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n"); /* and never read */
    ck_assert_msg(wait_syscall(s.pid, NR_SENDMSG), "server never blocked in sendmsg");

    struct diagnosis d;
    diagnose_ok(s.pid, s.port, false, BUDGET_MS, &d);
    bool named = strstr(d.summary, "blocked in sendmsg(fd ") != NULL ||
                 strstr(d.summary, "blocked in sendto(fd ") != NULL ||
                 strstr(d.summary, "blocked in writev(fd ") != NULL;
    if (!named)
        fail_with_report(&d, "a blocking sendmsg, sendto or writev");
    if (number_after(d.summary, " sq ") <= 0)
        fail_with_report(&d, "a non-empty send queue");
    assert_contains(&d, d.summary, "ESTABLISHED");
    assert_contains(&d, d.summary, "bug_modes.c:");
    assert_no_zombies();
    diagnosis_free(&d);
    close(client);
    server_stop(&s);
}
END_TEST

/* The name of the i-th entry of the top-level "syscall_samples" list (most frequent first). */
static const char *sample_name(const struct ts_json *root, size_t i)
{
    const char *name = ts_json_str(ts_json_at(ts_json_get(root, "syscall_samples"), i), "name");
    return name ? name : "";
}

/* A sampled system call (all threads summed) that failed with errno. */
static bool has_sample_errno(const struct ts_json *root, const char *errno_name)
{
    const struct ts_json *samples = ts_json_get(root, "syscall_samples");
    for (size_t i = 0; i < ts_json_count(samples); i++)
        if (has_item(ts_json_get(ts_json_at(samples, i), "errors"), "errno", errno_name))
            return true;
    return false;
}

/* Every thread's CPU use is known (a number, not null). */
static bool cpu_known(const struct ts_json *root)
{
    for (size_t i = 0; thread_at(root, i); i++)
        if (ts_json_type(ts_json_get(thread_at(root, i), "cpu_pct")) != TS_JSON_NUMBER)
            return false;
    return true;
}

START_TEST(test_emfile_spin_shows_accept4_emfile_loop)
{
    enum { CLIENTS = 100, LIMIT = 64 };
    struct server s;
    server_start(&s, "emfile-spin", LIMIT);
    int clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = client_connect(NULL, s.port, 0);
    struct watch w = {.pid = s.pid, .fd_limit = LIMIT};
    watch_until(at_fd_limit, &w);
    ck_assert_int_eq(w.fds.total, LIMIT);

    struct diagnosis d;
    diagnose_ok(s.pid, s.port, true, BUDGET_MS, &d);
    struct ts_json *json = json_of(&d);
    const char *first = sample_name(json, 0), *second = sample_name(json, 1);
    bool dominating = (strcmp(first, "accept4") == 0 && strcmp(second, "epoll_wait") == 0) ||
                      (strcmp(first, "epoll_wait") == 0 && strcmp(second, "accept4") == 0);
    if (!dominating)
        fail_with_report(&d, "accept4 and epoll_wait as the two most frequent system calls");
    assert_contains(&d, d.summary, "busy at ");
    assert_contains(&d, d.summary, "% CPU");
    assert_contains(&d, d.summary, "accept4 x");
    assert_contains(&d, d.summary, "EMFILE");
    expect(&d, has_sample_errno(json, "EMFILE"), "a sampled call failing with EMFILE");
    expect(&d, has_note(json, "its RLIMIT_NOFILE is 64: accept() and open() fail with EMFILE"),
           "a note on RLIMIT_NOFILE");
    expect(&d, has_note(json, "accept4 fails with EMFILE"), "a note on the accept4 loop");
    expect(&d, cpu_known(json), "the CPU use");
    ts_json_free(json);
    assert_no_zombies();
    diagnosis_free(&d);
    for (int i = 0; i < CLIENTS; i++)
        close(clients[i]);
    server_stop(&s);
}
END_TEST

START_TEST(test_accept_once_shows_backlog_while_sleeping)
{
    enum { BURST = 50 };
    struct server s;
    server_start(&s, "accept-once", 0);
    ck_assert_int_eq(kill(s.pid, SIGSTOP), 0);
    ck_assert(wait_state(s.pid, 'T'));
    for (int i = 0; i < BURST; i++) {
        int fd = client_connect(NULL, s.port, 0);
        client_send(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        client_reset(fd);
    }
    ck_assert_int_eq(kill(s.pid, SIGCONT), 0);
    ck_assert(wait_syscall(s.pid, NR_EPOLL_WAIT));
    int late = client_connect(NULL, s.port, 0);
    struct watch w = {.pid = s.pid, .port = s.port};
    watch_until(listen_queue_filled, &w);
    ck_assert_uint_gt(w.queued, 0);

    struct diagnosis d;
    diagnose_ok(s.pid, s.port, false, BUDGET_MS, &d);
    assert_contains(&d, d.summary, "blocked in epoll_wait(fd ");
    assert_contains(&d, d.summary, "edge-triggered");
    assert_contains(&d, d.summary, "waiting in the listen queue");
    struct ts_json *json = json_of(&d);
    const struct ts_json *lq = ts_json_get(json, "listen_queue");
    expect(&d, ts_json_type(lq) == TS_JSON_OBJECT, "a listen_queue object");
    ck_assert_int_gt(num_of(lq, "queued"), 0);
    ck_assert_int_gt(num_of(lq, "backlog"), 0);
    ts_json_free(json);
    assert_no_zombies();
    diagnosis_free(&d);
    close(late);
    server_stop(&s);
}
END_TEST

START_TEST(test_healthy_server_within_budget_and_still_serving)
{
    struct server s;
    server_start(&s, NULL, 0);
    ck_assert(wait_syscall(s.pid, NR_EPOLL_WAIT));
    uint64_t start = cf_now_ms();
    struct diagnosis d;
    diagnose_ok(s.pid, s.port, true, BUDGET_MS, &d);
    uint64_t elapsed = cf_now_ms() - start;
    /* The budget is a contract, not a performance figure: a bound, with room for slow CI. */
    ck_assert_msg(elapsed <= BUDGET_MS, "took %llu ms", (unsigned long long)elapsed);
    assert_contains(&d, d.summary, "epoll_wait");
    expect_frame(&d, "main");
    ck_assert_int_ne(state_of(s.pid), 'T'); /* not left stopped */
    ck_assert_int_ne(state_of(s.pid), 't');
    ck_assert(server_serves(s.port));
    ck_assert(server_serves(s.port));
    assert_no_zombies();
    diagnosis_free(&d);
    server_stop(&s);
}
END_TEST

START_TEST(test_stopped_target_stays_stopped)
{
    struct server s;
    server_start(&s, NULL, 0);
    ck_assert(wait_syscall(s.pid, NR_EPOLL_WAIT));
    ck_assert_int_eq(kill(s.pid, SIGSTOP), 0);
    ck_assert(wait_state(s.pid, 'T'));
    struct diagnosis d;
    diagnose_ok(s.pid, s.port, true, BUDGET_MS, &d);
    assert_contains(&d, d.summary, "stopped");
    expect_frame(&d, "main");
    ck_assert_int_eq(state_of(s.pid), 'T'); /* not resumed by the detach */
    ck_assert_int_eq(kill(s.pid, SIGCONT), 0);
    ck_assert(server_serves(s.port));
    diagnosis_free(&d);
    server_stop(&s);
}
END_TEST

/* Budget far too small for the ptrace helper's work: the diagnosis still ends on time. */
START_TEST(test_tiny_budget_is_respected)
{
    enum { CLIENTS = 80, LIMIT = 32 };
    struct server s;
    server_start(&s, "emfile-spin", LIMIT);
    int clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = client_connect(NULL, s.port, 0);
    uint64_t start = cf_now_ms();
    struct diagnosis d;
    diagnose_ok(s.pid, s.port, true, 150, &d);
    uint64_t elapsed = cf_now_ms() - start;
    ck_assert_msg(elapsed <= 150 + 600, "took %llu ms", (unsigned long long)elapsed);
    ck_assert_int_ne(state_of(s.pid), 't');
    ck_assert_int_ne(state_of(s.pid), 'T');
    assert_no_zombies();
    diagnosis_free(&d);
    for (int i = 0; i < CLIENTS; i++)
        close(clients[i]);
    server_stop(&s);
}
END_TEST

struct nobody_args {
    pid_t pid;
    int port;
};

/* In a child: a diagnosis as user nobody, its JSON on stdout. */
static int diagnose_as_nobody(void *arg)
{
    const struct nobody_args *a = arg;
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0)
        return 2;
    struct diagnose_options opt = {.port = a->port, .sample_syscalls = true, .budget_ms = 2000};
    struct diagnosis d;
    if (diagnose_target(a->pid, &opt, &d) != 0)
        return 3;
    size_t len = strlen(d.json);
    bool ok = write(STDOUT_FILENO, d.json, len) == (ssize_t)len;
    diagnosis_free(&d);
    return ok ? 0 : 4;
}

START_TEST(test_without_ptrace_rights_says_so)
{
    if (geteuid() != 0) {
        fputs("test_without_ptrace_rights_says_so: needs root to drop to nobody; skipped\n",
              stderr);
        return;
    }
    struct server s;
    server_start(&s, NULL, 0);
    ck_assert(wait_syscall(s.pid, NR_EPOLL_WAIT));
    /* No rights on the root-owned server: the diagnosis runs in a child as user nobody. */
    struct nobody_args args = {s.pid, s.port};
    const struct ts_run_opts opts = {.timeout_ms = WAIT_MS};
    struct ts_proc child;
    ck_assert_int_eq(ts_proc_call(&child, diagnose_as_nobody, &args, &opts), 0);
    ck_assert_int_eq(ts_proc_finish(&child), 0);
    ck_assert_msg(child.status == 0, "child status %d%s", child.status,
                  child.timed_out ? " (timed out)" : "");
    char error[256];
    struct ts_json *json = ts_json_parse(child.out, error, sizeof(error));
    ck_assert_msg(json != NULL, "%s: %.400s", error, child.out);
    ck_assert_msg(has_note(json, "no ptrace access to pid"), "%.400s", child.out);
    ck_assert_msg(ts_json_bool(json, "ptrace") == 0, "%.400s", child.out);
    ck_assert_msg(has_thread(json, "state", "S"), "%.400s", child.out); /* /proc still seen */
    ck_assert_msg(ts_json_type(ts_json_get(json, "listen_queue")) == TS_JSON_OBJECT, "%.400s",
                  child.out);
    ts_json_free(json);
    ts_proc_free(&child);
    ck_assert(server_serves(s.port));
    server_stop(&s);
}
END_TEST

START_TEST(test_missing_target)
{
    struct diagnose_options opt = {.budget_ms = 500};
    struct diagnosis d;
    /* pid_max is at most 2^22: this pid never exists. */
    ck_assert_int_eq(diagnose_target((pid_t)(1 << 23), &opt, &d), -ESRCH);
    ck_assert_ptr_null(d.summary);
}
END_TEST

/* In a child: named with bytes that are not UTF-8, then waits in pause() to be killed. */
static int badly_named_pause(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "bad\xff\xfe\"x\xc3");
    while (pause() < 0) /* named first: once in pause(), the name is set */
        ;
    return 0;
}

/* A process may name its threads with any bytes: a name that is not UTF-8 still gives valid
 * JSON, with U+FFFD for the bad bytes. */
START_TEST(test_thread_name_not_utf8_gives_valid_json)
{
    struct ts_proc named;
    ck_assert_int_eq(ts_proc_call(&named, badly_named_pause, NULL, NULL), 0);
    ck_assert(wait_syscall(named.pid, NR_PAUSE));

    struct diagnosis d;
    diagnose_ok(named.pid, 0, false, BUDGET_MS, &d);
    struct ts_json *json = json_of(&d); /* strict: valid UTF-8, no raw control character */
    expect(&d, has_thread(json, "comm", "bad\uFFFD\uFFFD\"x\uFFFD"), "U+FFFD for the bad bytes");
    ts_json_free(json);
    diagnosis_free(&d);
    ts_proc_free(&named);
}
END_TEST

static int control_named_pause(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "evil\x1b[2J\x07\r\nX"); /* X: a trailing \n is cut */
    while (pause() < 0)
        ;
    return 0;
}

/* A thread named with a terminal's escape sequence: the text report and the summary show it
 * escaped (no byte a terminal acts on), the JSON keeps the bytes as \u escapes. */
START_TEST(test_thread_name_with_control_bytes_is_escaped)
{
    struct ts_proc named;
    ck_assert_int_eq(ts_proc_call(&named, control_named_pause, NULL, NULL), 0);
    ck_assert(wait_syscall(named.pid, NR_PAUSE));

    struct diagnosis d;
    diagnose_ok(named.pid, 0, false, BUDGET_MS, &d);
    assert_contains(&d, d.text, "(evil\\x1b[2J\\x07\\r\\nX)");
    for (const char *c = d.text; *c; c++)
        expect(&d, *c == '\n' || ((unsigned char)*c >= 0x20 && *c != 0x7f), "no raw control byte");
    for (const char *c = d.summary; *c; c++)
        expect(&d, (unsigned char)*c >= 0x20 && *c != 0x7f, "a summary without control bytes");
    struct ts_json *json = json_of(&d);
    expect(&d, has_thread(json, "comm", "evil\x1b[2J\x07\r\nX"), "the exact name in JSON");
    ts_json_free(json);
    diagnosis_free(&d);
    ts_proc_free(&named);
}
END_TEST

/* The helper's records (diagnose_internal.h) as the parent reads them: every type, a string
 * field with spaces, errno counts, and a last line cut short by a kill, which is dropped. */
START_TEST(test_helper_records_read_into_the_model)
{
    struct diagnose_options opt = {0};
    struct diag_thread thread = {.tid = 101};
    struct diag_process proc = {.pid = 100, .threads = &thread, .nthreads = 1, .threads_total = 1};
    struct diag_ctx ctx = {.opt = &opt, .procs = &proc, .nprocs = 1, .procs_total = 1};
    char records[] = "F\t101\t7f00\t1\t12\tinner fn\tsrc/a.c\tlibx.so\n"
                     "F\t101\t7f10\t0\t0\tmain\t\tprog\n"
                     "S\t101\t43\t5\t24:4\n"
                     "S\t101\t232\t9\n"
                     "W\t100\t300\n"
                     "T\t101\t1\n"
                     "P\t100\tfirst reason\n"
                     "P\t100\tsecond reason\n"
                     "U\t999\tabout a thread nobody knows\n"
                     "Q\t101\tunknown type\n"
                     "U\t101\tcut sh";
    diag_read_records(&ctx, records);

    ck_assert_uint_eq(thread.nframes, 2);
    ck_assert_uint_eq(thread.frames[0].pc, 0x7f00);
    ck_assert(thread.frames[0].inlined);
    ck_assert_int_eq(thread.frames[0].line, 12);
    ck_assert_str_eq(thread.frames[0].function, "inner fn");
    ck_assert_str_eq(thread.frames[0].file, "src/a.c");
    ck_assert_str_eq(thread.frames[0].module, "libx.so");
    ck_assert_str_eq(thread.frames[1].file, "");
    ck_assert_uint_eq(thread.ntraced, 2);
    ck_assert_int_eq(thread.traced[0].nr, 232); /* most frequent first */
    ck_assert_uint_eq(thread.traced[1].count, 5);
    ck_assert_uint_eq(diag_count_errors(&thread.traced[1], EMFILE), 4);
    ck_assert(ctx.traced_any);
    ck_assert_uint_eq(proc.trace_window_ms, 300);
    ck_assert(thread.stopped_for_trace && !thread.not_stopped && ctx.ptrace_ok);
    ck_assert_str_eq(proc.ptrace_error, "first reason");
    ck_assert_str_eq(thread.unwind_error, ""); /* the cut-off line */
    free(thread.frames);
}
END_TEST

static Suite *diagnose_suite(void)
{
    Suite *s = suite_create("diagnose");
    TCase *tc = tcase_create("bug modes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_blocking_read_names_call_fd_peer_and_line);
    tcase_add_test(tc, test_blocking_send_names_call_and_send_queue);
    tcase_add_test(tc, test_emfile_spin_shows_accept4_emfile_loop);
    tcase_add_test(tc, test_accept_once_shows_backlog_while_sleeping);
    suite_add_tcase(s, tc);

    TCase *safety = tcase_create("safety");
    tcase_set_timeout(safety, 60);
    tcase_add_test(safety, test_healthy_server_within_budget_and_still_serving);
    tcase_add_test(safety, test_stopped_target_stays_stopped);
    tcase_add_test(safety, test_tiny_budget_is_respected);
    tcase_add_test(safety, test_without_ptrace_rights_says_so);
    tcase_add_test(safety, test_missing_target);
    tcase_add_test(safety, test_thread_name_not_utf8_gives_valid_json);
    tcase_add_test(safety, test_thread_name_with_control_bytes_is_escaped);
    suite_add_tcase(s, safety);

    TCase *records = tcase_create("records");
    tcase_add_test(records, test_helper_records_read_into_the_model);
    suite_add_tcase(s, records);
    return s;
}

int main(void)
{
    return ts_run_suite(diagnose_suite());
}
