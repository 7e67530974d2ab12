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
#include "json_writer.h"
#include "procfs.h"
#include "sockdiag.h"

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
    pid_t pid;
    int port;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One polling period between two looks at a condition. */
static void pause_period(void)
{
    poll(NULL, 0, POLL_PERIOD_MS);
}

/* ---- the server ---------------------------------------------------------------------------- */

static void server_exec(int out_fd, const char *bug, rlim_t nofile)
{
    /* A failed assertion skips server_stop: the server must not outlive its test. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(120);
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDERR_FILENO) < 0)
        _exit(121);
    close_range(3, ~0u, 0); /* the server's fd count must be its own */
    if (nofile > 0) {
        struct rlimit lim = {nofile, nofile};
        if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
            _exit(122);
    }
    if (bug != NULL)
        execl(CONNFAULT_SERVER_BIN, "connfault-server", "--port", "0", "--quiet", "--bug", bug,
              (char *)NULL);
    else
        execl(CONNFAULT_SERVER_BIN, "connfault-server", "--port", "0", "--quiet", (char *)NULL);
    _exit(123);
}

/* Starts the server and reads its "listening on 127.0.0.1:PORT" line. */
static void server_start(struct server *s, const char *bug, rlim_t nofile)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0)
        server_exec(fds[1], bug, nofile);
    close(fds[1]);
    char line[256] = "";
    size_t len = 0;
    uint64_t deadline = now_ms() + WAIT_MS;
    while (strchr(line, '\n') == NULL && len < sizeof(line) - 1 && now_ms() < deadline) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t got = read(fds[0], line + len, sizeof(line) - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        line[len] = '\0';
    }
    close(fds[0]);
    ck_assert_msg(sscanf(line, "listening on 127.0.0.1:%d", &s->port) == 1,
                  "server did not start: \"%s\"", line);
}

static void server_stop(struct server *s)
{
    kill(s->pid, SIGKILL);
    uint64_t deadline = now_ms() + WAIT_MS;
    int status;
    while (waitpid(s->pid, &status, WNOHANG) == 0 && now_ms() < deadline)
        pause_period();
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

static bool wait_syscall(pid_t pid, long nr)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    while (current_syscall(pid) != nr) {
        if (now_ms() >= deadline)
            return false;
        pause_period();
    }
    return true;
}

static char state_of(pid_t pid)
{
    char state = '?';
    procfs_state(pid, &state);
    return state;
}

static bool wait_state(pid_t pid, char want)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    while (state_of(pid) != want) {
        if (now_ms() >= deadline)
            return false;
        pause_period();
    }
    return true;
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
    uint64_t deadline = now_ms() + WAIT_MS;
    while (len < sizeof(reply) - 1 && now_ms() < deadline) {
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

    snprintf(want, sizeof(want), "\"peer\":\"%s\"", peer);
    assert_contains(&d, d.json, want);
    assert_contains(&d, d.json, "\"function\":\"bug_serve_blocking\"");
    assert_contains(&d, d.json, "\"name\":\"recvfrom\"");

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

/* Names of the first two entries of the top-level "syscall_samples" list. */
static void top_two_syscalls(const char *json, char *first, char *second, size_t size)
{
    first[0] = second[0] = '\0';
    const char *p = strstr(json, "\"listen_queue\":"); /* the top-level list follows it */
    p = p ? strstr(p, "\"syscall_samples\":[") : NULL;
    for (int i = 0; p != NULL && i < 2; i++) {
        p = strstr(p, "{\"name\":\"");
        if (p == NULL)
            break;
        p += 9;
        size_t len = strcspn(p, "\"");
        char *out = i == 0 ? first : second;
        snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), p);
    }
}

START_TEST(test_emfile_spin_shows_accept4_emfile_loop)
{
    enum { CLIENTS = 100, LIMIT = 64 };
    struct server s;
    server_start(&s, "emfile-spin", LIMIT);
    int clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = client_connect(NULL, s.port, 0);
    uint64_t deadline = now_ms() + WAIT_MS;
    struct fd_counts fds = {0};
    while (procfs_fd_counts(s.pid, &fds) == 0 && fds.total < LIMIT && now_ms() < deadline)
        pause_period();
    ck_assert_int_eq(fds.total, LIMIT);

    struct diagnosis d;
    diagnose_ok(s.pid, s.port, true, BUDGET_MS, &d);
    char first[32], second[32];
    top_two_syscalls(d.json, first, second, sizeof(first));
    bool dominating = (strcmp(first, "accept4") == 0 && strcmp(second, "epoll_wait") == 0) ||
                      (strcmp(first, "epoll_wait") == 0 && strcmp(second, "accept4") == 0);
    if (!dominating)
        fail_with_report(&d, "accept4 and epoll_wait as the two most frequent system calls");
    assert_contains(&d, d.summary, "busy at ");
    assert_contains(&d, d.summary, "% CPU");
    assert_contains(&d, d.summary, "accept4 x");
    assert_contains(&d, d.summary, "EMFILE");
    assert_contains(&d, d.json, "{\"errno\":\"EMFILE\"");
    assert_contains(&d, d.json, "its RLIMIT_NOFILE is 64: accept() and open() fail with EMFILE");
    assert_contains(&d, d.json, "accept4 fails with EMFILE");
    if (strstr(d.json, "\"cpu_pct\":null") != NULL)
        fail_with_report(&d, "the CPU use");
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
    unsigned queued = 0, backlog = 0;
    uint64_t deadline = now_ms() + WAIT_MS;
    while (now_ms() < deadline) {
        if (current_syscall(s.pid) == NR_EPOLL_WAIT &&
            sockdiag_listen_queue(s.port, &queued, &backlog) == 0 && queued > 0)
            break;
        pause_period();
    }
    ck_assert_uint_gt(queued, 0);

    struct diagnosis d;
    diagnose_ok(s.pid, s.port, false, BUDGET_MS, &d);
    assert_contains(&d, d.summary, "blocked in epoll_wait(fd ");
    assert_contains(&d, d.summary, "edge-triggered");
    assert_contains(&d, d.summary, "waiting in the listen queue");
    const char *lq = strstr(d.json, "\"listen_queue\":{");
    ck_assert_ptr_nonnull(lq);
    ck_assert_int_gt(number_after(lq, "\"queued\":"), 0);
    ck_assert_int_gt(number_after(lq, "\"backlog\":"), 0);
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
    uint64_t start = now_ms();
    struct diagnosis d;
    diagnose_ok(s.pid, s.port, true, BUDGET_MS, &d);
    uint64_t elapsed = now_ms() - start;
    /* The budget is a contract, not a performance figure: a bound, with room for slow CI. */
    ck_assert_msg(elapsed <= BUDGET_MS, "took %llu ms", (unsigned long long)elapsed);
    assert_contains(&d, d.summary, "epoll_wait");
    assert_contains(&d, d.json, "\"function\":\"main\"");
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
    assert_contains(&d, d.json, "\"function\":\"main\"");
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
    uint64_t start = now_ms();
    struct diagnosis d;
    diagnose_ok(s.pid, s.port, true, 150, &d);
    uint64_t elapsed = now_ms() - start;
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

/* Runs a diagnosis as user nobody (no rights on the root-owned server) in a child process and
 * returns its JSON. */
static char *diagnose_as_nobody(pid_t pid, int port)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(fds[0]);
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(2);
        struct diagnose_options opt = {.port = port, .sample_syscalls = true, .budget_ms = 2000};
        struct diagnosis d;
        if (diagnose_target(pid, &opt, &d) != 0)
            _exit(3);
        size_t len = strlen(d.json);
        bool ok = write(fds[1], d.json, len) == (ssize_t)len;
        diagnosis_free(&d);
        _exit(ok ? 0 : 4);
    }
    close(fds[1]);
    size_t cap = 1 << 20, len = 0;
    char *json = calloc(1, cap);
    ck_assert_ptr_nonnull(json);
    uint64_t deadline = now_ms() + WAIT_MS;
    while (len < cap - 1 && now_ms() < deadline) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t got = read(fds[0], json + len, cap - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fds[0]);
    int status = -1;
    while (waitpid(child, &status, WNOHANG) == 0 && now_ms() < deadline)
        pause_period();
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    return json;
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
    char *json = diagnose_as_nobody(s.pid, s.port);
    ck_assert_msg(strstr(json, "no ptrace access to pid") != NULL, "%.400s", json);
    ck_assert_msg(strstr(json, "\"ptrace\":false") != NULL, "%.400s", json);
    ck_assert_msg(strstr(json, "\"state\":\"S\"") != NULL, "%.400s", json); /* /proc still seen */
    ck_assert_msg(strstr(json, "\"listen_queue\":{") != NULL, "%.400s", json);
    free(json);
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

/* JSON text must be UTF-8 (RFC 8259): every byte sequence of d->json is a valid one, and no
 * control character appears raw. */
static void assert_json_is_utf8(const struct diagnosis *d)
{
    const unsigned char *s = (const unsigned char *)d->json;
    size_t len = strlen(d->json);
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t n = cf_utf8_sequence(s + i, len - i, &cp);
        if (n == 0 || cp < 0x20)
            fail_with_report(d, "valid UTF-8 JSON text");
        i += n;
    }
}

/* A process may name its threads with any bytes: a name that is not UTF-8 still gives valid
 * JSON, with U+FFFD for the bad bytes. */
START_TEST(test_thread_name_not_utf8_gives_valid_json)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        prctl(PR_SET_NAME, "bad\xff\xfe\"x\xc3");
        for (;;)
            pause(); /* named first: once in pause(), the name is set */
    }
    ck_assert(wait_syscall(pid, NR_PAUSE));

    struct diagnosis d;
    diagnose_ok(pid, 0, false, BUDGET_MS, &d);
    assert_json_is_utf8(&d);
    assert_contains(&d, d.json, "\"comm\":\"bad\\ufffd\\ufffd\\\"x\\ufffd\"");
    diagnosis_free(&d);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
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
    suite_add_tcase(s, safety);

    TCase *records = tcase_create("records");
    tcase_add_test(records, test_helper_records_read_into_the_model);
    suite_add_tcase(s, records);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(diagnose_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
