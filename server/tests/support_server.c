/* support_server: spawn connfault-server, talk HTTP to it, watch it through /proc. See
 * support_server.h for the contract; this file holds the mechanics.
 */
#include "support_server.h"

#include "cf_time.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_INTERVAL_MS 10
#define MAX_SERVER_ARGS  64

/* ---------------------------------------------------------------- time */

long test_now_ms(void)
{
    return (long)cf_now_ms();
}

static int ms_left(long deadline_ms)
{
    long left = deadline_ms - test_now_ms();
    return left > 0 ? (int)left : 0;
}

static void pause_ms(int ms)
{
    poll(NULL, 0, ms);
}

/* ---------------------------------------------------------------- process registry */

/* The servers this process started and has not stopped, for test_server_stop_all: Check's fixture
 * teardown takes no argument, so this list has to live at file scope. */
struct started_server {
    pid_t pid;
    int stdout_fd;
};

static struct started_server started_servers[16];

static void registry_add(const struct test_server *server)
{
    for (size_t i = 0; i < sizeof started_servers / sizeof started_servers[0]; i++) {
        if (started_servers[i].pid == 0) {
            started_servers[i].pid = server->pid;
            started_servers[i].stdout_fd = server->stdout_fd;
            return;
        }
    }
}

static void registry_remove(pid_t pid)
{
    for (size_t i = 0; i < sizeof started_servers / sizeof started_servers[0]; i++) {
        if (started_servers[i].pid == pid) {
            started_servers[i].pid = 0;
        }
    }
}

void test_support_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* Check ends a failed or timed-out test's process without running the teardown (it uses _exit,
     * or SIGKILL). Its servers then get SIGKILL through PR_SET_PDEATHSIG and, with this process as
     * their subreaper, test_support_finish reaps them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
}

void test_support_finish(void)
{
    long deadline = test_now_ms() + 2000;
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid > 0) {
            continue;
        }
        if (pid < 0 || ms_left(deadline) == 0) {
            return; /* ECHILD: nobody left */
        }
        pause_ms(POLL_INTERVAL_MS);
    }
}

/* ---------------------------------------------------------------- spawning */

static int wait_child(pid_t pid, int timeout_ms, int *wait_status)
{
    long deadline = test_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            if (wait_status) {
                *wait_status = status;
            }
            return 0;
        }
        if (done < 0 && errno != EINTR) {
            return -errno;
        }
        if (ms_left(deadline) == 0) {
            return -ETIMEDOUT;
        }
        pause_ms(POLL_INTERVAL_MS < ms_left(deadline) ? POLL_INTERVAL_MS : ms_left(deadline));
    }
}

static void kill_and_reap(pid_t pid, int *wait_status)
{
    kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (wait_status) {
        *wait_status = status;
    }
}

static void redirect_or_exit(int from_fd, int to_fd)
{
    if (from_fd != to_fd && dup2(from_fd, to_fd) < 0) {
        _exit(126);
    }
}

/* In the forked child: make the environment the server should see, then exec it.
 * stdout_fd/stderr_fd < 0 mean /dev/null. Never returns. */
static void exec_server_child(pid_t parent, const char *const *argv, long nofile_limit,
                              int stdout_fd, int stderr_fd)
{
    setpgid(0, 0);
    /* Die with the test process, whatever way it ends. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127);
    }
    /* The tests ignore SIGPIPE; an ignored disposition survives exec and would hide the sigpipe
     * bug. Give the server the defaults a shell would. */
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (nofile_limit > 0) {
        struct rlimit limit = {.rlim_cur = (rlim_t)nofile_limit, .rlim_max = (rlim_t)nofile_limit};
        if (setrlimit(RLIMIT_NOFILE, &limit) < 0) {
            _exit(126);
        }
    }
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0) {
        _exit(126);
    }
    redirect_or_exit(null_fd, STDIN_FILENO);
    redirect_or_exit(stdout_fd >= 0 ? stdout_fd : null_fd, STDOUT_FILENO);
    redirect_or_exit(stderr_fd >= 0 ? stderr_fd : null_fd, STDERR_FILENO);
    /* The server's fd count is part of what the tests measure: inherit nothing else. */
    close_range(3, ~0U, 0);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

/* Server logs are noise in a passing run; CONNFAULT_TEST_SERVER_LOG=1 shows them. */
static int server_stderr_fd(void)
{
    const char *show = getenv("CONNFAULT_TEST_SERVER_LOG");
    return show && strcmp(show, "1") == 0 ? STDERR_FILENO : -1;
}

static int build_argv(const char **argv, size_t cap, const char *const *prefix,
                      const char *const *args)
{
    size_t n = 0;
    argv[n++] = CONNFAULT_SERVER_BIN;
    const char *const *lists[] = {prefix, args};
    for (size_t list = 0; list < 2; list++) {
        for (size_t i = 0; lists[list] && lists[list][i]; i++) {
            if (n + 1 >= cap) {
                return -E2BIG;
            }
            argv[n++] = lists[list][i];
        }
    }
    argv[n] = NULL;
    return 0;
}

/* Read up to the first '\n' from fd into line, within timeout_ms. -ENODATA if the writer closed
 * first. */
static int read_first_line(int fd, char *line, size_t cap, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    size_t len = 0;
    while (len + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, ms_left(deadline));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            return ready < 0 ? -errno : -ETIMEDOUT;
        }
        ssize_t got = read(fd, line + len, 1); /* one byte: leave the rest in the pipe */
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            return got < 0 ? -errno : -ENODATA;
        }
        if (line[len] == '\n') {
            line[len] = '\0';
            return 0;
        }
        len++;
    }
    return -E2BIG;
}

/* "listening on 127.0.0.1:PORT" -> PORT, or -EPROTO. */
static int parse_listening_line(const char *line)
{
    static const char prefix[] = "listening on ";
    if (strncmp(line, prefix, sizeof prefix - 1) != 0) {
        return -EPROTO;
    }
    const char *colon = strrchr(line, ':');
    if (!colon) {
        return -EPROTO;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end != '\0' && *end != '\r') || port <= 0 || port > 65535) {
        return -EPROTO;
    }
    return (int)port;
}

int test_server_start(struct test_server *server, const char *const *args, long nofile_limit)
{
    const char *argv[MAX_SERVER_ARGS];
    int rc =
        build_argv(argv, MAX_SERVER_ARGS, TEST_ARGS("--bind", "127.0.0.1", "--port", "0"), args);
    if (rc < 0) {
        return rc;
    }
    int out_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) < 0) {
        return -errno;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(out_pipe[0]);
        close(out_pipe[1]);
        return rc;
    }
    if (pid == 0) {
        exec_server_child(parent, argv, nofile_limit, out_pipe[1], server_stderr_fd());
    }
    close(out_pipe[1]);
    server->pid = pid;
    server->port = 0;
    server->stdout_fd = out_pipe[0];
    registry_add(server);

    char line[256];
    rc = read_first_line(server->stdout_fd, line, sizeof line, TEST_PROMPT_MS);
    if (rc == 0) {
        rc = parse_listening_line(line);
    }
    if (rc < 0) {
        test_server_stop(server, 0, NULL);
        return rc;
    }
    server->port = rc;
    return 0;
}

static void forget_server(struct test_server *server)
{
    registry_remove(server->pid);
    if (server->stdout_fd >= 0) {
        close(server->stdout_fd);
    }
    server->pid = 0;
    server->stdout_fd = -1;
}

int test_server_wait_exit(struct test_server *server, int timeout_ms, int *wait_status)
{
    if (server->pid <= 0) {
        return -ECHILD;
    }
    int rc = wait_child(server->pid, timeout_ms, wait_status);
    if (rc == 0) {
        forget_server(server);
    }
    return rc;
}

int test_server_stop(struct test_server *server, int timeout_ms, int *wait_status)
{
    if (server->pid <= 0) {
        return -ECHILD;
    }
    kill(server->pid, SIGTERM);
    int rc = wait_child(server->pid, timeout_ms, wait_status);
    if (rc == -ETIMEDOUT) {
        kill_and_reap(server->pid, wait_status);
    }
    forget_server(server);
    return rc;
}

void test_server_stop_all(void)
{
    for (size_t i = 0; i < sizeof started_servers / sizeof started_servers[0]; i++) {
        if (started_servers[i].pid > 0) {
            struct test_server server = {.pid = started_servers[i].pid,
                                         .stdout_fd = started_servers[i].stdout_fd};
            test_server_stop(&server, 2000, NULL);
        }
    }
}

int test_server_run_to_exit(const char *const *args, int timeout_ms, int *wait_status,
                            char *stderr_text, size_t stderr_cap)
{
    const char *argv[MAX_SERVER_ARGS];
    int rc = build_argv(argv, MAX_SERVER_ARGS, NULL, args);
    if (rc < 0) {
        return rc;
    }
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) < 0) {
        return -errno;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(err_pipe[0]);
        close(err_pipe[1]);
        return rc;
    }
    if (pid == 0) {
        exec_server_child(parent, argv, 0, -1, err_pipe[1]);
    }
    close(err_pipe[1]);

    /* Collect stderr until EOF (the server exited) or the deadline. */
    long deadline = test_now_ms() + timeout_ms;
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {.fd = err_pipe[0], .events = POLLIN};
        int ready = poll(&pfd, 1, ms_left(deadline));
        if (ready <= 0) {
            break;
        }
        char chunk[512];
        ssize_t got = read(err_pipe[0], chunk, sizeof chunk);
        if (got <= 0) {
            break;
        }
        size_t keep = (size_t)got;
        if (stderr_cap > 0 && len + keep > stderr_cap - 1) {
            keep = stderr_cap - 1 - len;
        }
        memcpy(stderr_text + len, chunk, keep);
        len += keep;
    }
    if (stderr_cap > 0) {
        stderr_text[len] = '\0';
    }
    close(err_pipe[0]);
    rc = wait_child(pid, ms_left(deadline), wait_status);
    if (rc == -ETIMEDOUT) {
        kill_and_reap(pid, wait_status);
    }
    return rc;
}

/* ---------------------------------------------------------------- raw sockets */

static int wait_fd_event(int fd, short events, long deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int ready = poll(&pfd, 1, ms_left(deadline));
        if (ready > 0) {
            return 0;
        }
        if (ready == 0) {
            return -ETIMEDOUT;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

/* Start a nonblocking connect; the fd, or a negative errno. */
static int start_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Wait for a started connect to finish: 0, or a negative errno (the fd stays open). */
static int finish_connect(int fd, long deadline)
{
    int rc = wait_fd_event(fd, POLLOUT, deadline);
    if (rc < 0) {
        return rc;
    }
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0) {
        return -errno;
    }
    return -error;
}

int test_socket_connect(int port, int timeout_ms)
{
    int fd = start_connect(port);
    if (fd < 0) {
        return fd;
    }
    int rc = finish_connect(fd, test_now_ms() + timeout_ms);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int test_socket_connect_many(int port, int *fds, int count, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    for (int i = 0; i < count; i++) {
        fds[i] = start_connect(port);
    }
    int connected = 0;
    for (int i = 0; i < count; i++) {
        if (fds[i] >= 0 && finish_connect(fds[i], deadline) < 0) {
            close(fds[i]);
            fds[i] = -1;
        }
        connected += fds[i] >= 0;
    }
    return connected;
}

int test_socket_send_all(int fd, const void *data, size_t len, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    const char *next = data;
    while (len > 0) {
        ssize_t sent = send(fd, next, len, MSG_NOSIGNAL);
        if (sent > 0) {
            next += sent;
            len -= (size_t)sent;
            continue;
        }
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && errno != EAGAIN) {
            return -errno;
        }
        int rc = wait_fd_event(fd, POLLOUT, deadline);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

void test_socket_reset(int fd)
{
    struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    close(fd);
}

long test_socket_drain(int fd)
{
    long total = 0;
    for (;;) {
        char sink[16384];
        ssize_t got = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (got > 0) {
            total += got;
            continue;
        }
        if (got == 0) {
            return -ENODATA;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN ? total : -errno;
    }
}

long test_socket_read_at_least(int fd, size_t min_bytes, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    size_t total = 0;
    while (total < min_bytes) {
        long got = test_socket_drain(fd);
        if (got < 0) {
            return got;
        }
        total += (size_t)got;
        if (total >= min_bytes) {
            break;
        }
        int rc = wait_fd_event(fd, POLLIN, deadline);
        if (rc < 0) {
            return rc;
        }
    }
    return (long)total;
}

int test_socket_local_port(int fd)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        return -errno;
    }
    return ntohs(addr.sin_port);
}

int test_socket_wait_closed(int fd, int timeout_ms, size_t *discarded)
{
    long deadline = test_now_ms() + timeout_ms;
    size_t total = 0;
    int rc;
    for (;;) {
        long got = test_socket_drain(fd);
        if (got < 0) {
            rc = 0; /* EOF or a reset: either way the server closed it */
            break;
        }
        total += (size_t)got;
        rc = wait_fd_event(fd, POLLIN, deadline);
        if (rc < 0) {
            break;
        }
    }
    if (discarded) {
        *discarded = total;
    }
    return rc;
}

/* ---------------------------------------------------------------- HTTP client */

int test_client_connect(struct test_client *client, int port, int timeout_ms)
{
    client->start = client->end = 0;
    client->fd = test_socket_connect(port, timeout_ms);
    return client->fd < 0 ? client->fd : 0;
}

int test_client_send(struct test_client *client, const char *text, int timeout_ms)
{
    return test_socket_send_all(client->fd, text, strlen(text), timeout_ms);
}

void test_client_close(struct test_client *client)
{
    if (client->fd >= 0) {
        close(client->fd);
    }
    client->fd = -1;
}

int test_client_wait_closed(struct test_client *client, int timeout_ms, size_t *discarded)
{
    size_t buffered = client->end - client->start;
    client->start = client->end = 0;
    int rc = test_socket_wait_closed(client->fd, timeout_ms, discarded);
    if (discarded) {
        *discarded += buffered;
    }
    return rc;
}

/* Receive more bytes into the buffer. >0: bytes added; -ENODATA: EOF; -ETIMEDOUT; -errno. */
static int client_fill(struct test_client *client, long deadline)
{
    if (client->start > 0) {
        memmove(client->buf, client->buf + client->start, client->end - client->start);
        client->end -= client->start;
        client->start = 0;
    }
    if (client->end == sizeof client->buf) {
        return -ENOBUFS;
    }
    for (;;) {
        ssize_t got = recv(client->fd, client->buf + client->end, sizeof client->buf - client->end,
                           MSG_DONTWAIT);
        if (got > 0) {
            client->end += (size_t)got;
            return (int)got;
        }
        if (got == 0) {
            return -ENODATA;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN) {
            return -errno;
        }
        int rc = wait_fd_event(client->fd, POLLIN, deadline);
        if (rc < 0) {
            return rc;
        }
    }
}

/* A cut-off response is a protocol error, unlike an EOF before the first byte. */
static int truncated(int rc)
{
    return rc == -ENODATA ? -EPROTO : rc;
}

static const char *find_bytes(const char *hay, size_t hay_len, const char *needle)
{
    size_t needle_len = strlen(needle);
    for (size_t i = 0; i + needle_len <= hay_len; i++) {
        if (memcmp(hay + i, needle, needle_len) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

/* Copy one CRLF-terminated line (without the CRLF) into line. */
static int client_read_line(struct test_client *client, long deadline, char *line, size_t cap)
{
    for (;;) {
        const char *data = client->buf + client->start;
        const char *eol = find_bytes(data, client->end - client->start, "\r\n");
        if (eol) {
            size_t len = (size_t)(eol - data);
            if (len >= cap) {
                return -EPROTO;
            }
            memcpy(line, data, len);
            line[len] = '\0';
            client->start += len + 2;
            return 0;
        }
        int rc = client_fill(client, deadline);
        if (rc < 0) {
            return truncated(rc);
        }
    }
}

static void body_feed(struct test_response *response, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        size_t index = response->body_len + i;
        if (data[i] != (char)('a' + index % 26)) {
            response->body_has_pattern = false;
        }
        if (index + 1 < sizeof response->body_start) {
            response->body_start[index] = data[i];
            response->body_start[index + 1] = '\0';
        }
    }
    response->body_len += len;
}

/* Consume exactly len body bytes, or until EOF when until_eof. */
static int client_read_body(struct test_client *client, long deadline, unsigned long long len,
                            bool until_eof, struct test_response *response)
{
    while (until_eof || len > 0) {
        if (client->end == client->start) {
            int rc = client_fill(client, deadline);
            if (rc == -ENODATA && until_eof) {
                return 0;
            }
            if (rc < 0) {
                return truncated(rc);
            }
        }
        size_t avail = client->end - client->start;
        size_t take = (!until_eof && len < avail) ? (size_t)len : avail;
        body_feed(response, client->buf + client->start, take);
        client->start += take;
        len -= until_eof ? 0 : take;
    }
    return 0;
}

static int client_read_chunked_body(struct test_client *client, long deadline,
                                    struct test_response *response)
{
    char line[256];
    for (;;) {
        int rc = client_read_line(client, deadline, line, sizeof line);
        if (rc < 0) {
            return rc;
        }
        char *end;
        errno = 0;
        unsigned long long size = strtoull(line, &end, 16);
        if (end == line || errno != 0 || (*end != '\0' && *end != ';' && *end != ' ')) {
            return -EPROTO;
        }
        if (size == 0) {
            break;
        }
        rc = client_read_body(client, deadline, size, false, response);
        if (rc == 0) {
            rc = client_read_line(client, deadline, line, sizeof line);
        }
        if (rc < 0) {
            return rc;
        }
        if (line[0] != '\0') {
            return -EPROTO; /* chunk data longer than its size */
        }
    }
    /* Trailer fields, up to the empty line. */
    do {
        int rc = client_read_line(client, deadline, line, sizeof line);
        if (rc < 0) {
            return rc;
        }
    } while (line[0] != '\0');
    return 0;
}

bool test_response_header(const struct test_response *response, const char *name, char *value,
                          size_t value_cap)
{
    size_t name_len = strlen(name);
    const char *line = strstr(response->head, "\r\n");
    while (line) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *start = line + name_len + 1;
            while (*start == ' ' || *start == '\t') {
                start++;
            }
            const char *end = strstr(start, "\r\n");
            size_t len = end ? (size_t)(end - start) : strlen(start);
            while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t')) {
                len--;
            }
            if (value_cap > 0) {
                size_t copy = len < value_cap - 1 ? len : value_cap - 1;
                memcpy(value, start, copy);
                value[copy] = '\0';
            }
            return true;
        }
        line = strstr(line, "\r\n");
    }
    return false;
}

static bool header_has_token(const struct test_response *response, const char *name,
                             const char *token)
{
    char value[256];
    if (!test_response_header(response, name, value, sizeof value)) {
        return false;
    }
    for (char *c = value; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    return strstr(value, token) != NULL;
}

/* Wait for the blank line ending the head, copy the head out and parse status and framing. */
static int client_read_head(struct test_client *client, long deadline,
                            struct test_response *response)
{
    bool got_any = client->end > client->start;
    const char *blank;
    while (!(
        blank = find_bytes(client->buf + client->start, client->end - client->start, "\r\n\r\n"))) {
        int rc = client_fill(client, deadline);
        if (rc < 0) {
            return got_any ? truncated(rc) : rc;
        }
        got_any = true;
    }
    size_t head_len = (size_t)(blank - (client->buf + client->start)) + 2;
    if (head_len >= sizeof response->head) {
        return -EPROTO;
    }
    memcpy(response->head, client->buf + client->start, head_len);
    response->head[head_len] = '\0';
    client->start += head_len + 2;

    int minor;
    if (sscanf(response->head, "HTTP/1.%d %3d", &minor, &response->status) != 2 ||
        response->status < 100 || response->status > 999) {
        return -EPROTO;
    }
    char value[64];
    if (test_response_header(response, "Content-Length", value, sizeof value)) {
        char *end;
        response->content_length = strtoll(value, &end, 10);
        if (end == value || *end != '\0' || response->content_length < 0) {
            return -EPROTO;
        }
    }
    response->chunked = header_has_token(response, "Transfer-Encoding", "chunked");
    response->connection_close = header_has_token(response, "Connection", "close");
    return 0;
}

int test_client_read_response(struct test_client *client, bool head_request, int timeout_ms,
                              struct test_response *response)
{
    long deadline = test_now_ms() + timeout_ms;
    memset(response, 0, sizeof *response);
    response->content_length = -1;
    response->body_has_pattern = true;

    int rc = client_read_head(client, deadline, response);
    if (rc < 0) {
        return rc;
    }
    int status = response->status;
    if (head_request || status / 100 == 1 || status == 204 || status == 304) {
        return 0;
    }
    if (response->chunked) {
        return client_read_chunked_body(client, deadline, response);
    }
    if (response->content_length >= 0) {
        return client_read_body(client, deadline, (unsigned long long)response->content_length,
                                false, response);
    }
    return client_read_body(client, deadline, 0, true, response);
}

int test_http_get(int port, const char *path, int timeout_ms, struct test_response *response)
{
    long deadline = test_now_ms() + timeout_ms;
    struct test_client client;
    int rc = test_client_connect(&client, port, timeout_ms);
    if (rc < 0) {
        return rc;
    }
    char request[512];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
    rc = test_client_send(&client, request, ms_left(deadline));
    if (rc == 0) {
        rc = test_client_read_response(&client, false, ms_left(deadline), response);
    }
    test_client_close(&client);
    return rc;
}

/* ---------------------------------------------------------------- /proc */

int test_proc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (!dir) {
        return -errno;
    }
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        count += entry->d_name[0] != '.';
    }
    closedir(dir);
    return count;
}

int test_proc_wait_fd_count(pid_t pid, int expected, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    int count;
    while ((count = test_proc_fd_count(pid)) != expected && count >= 0 && ms_left(deadline) > 0) {
        pause_ms(POLL_INTERVAL_MS);
    }
    return count;
}

int test_proc_wait_fd_count_at_least(pid_t pid, int minimum, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    int count;
    while ((count = test_proc_fd_count(pid)) < minimum && count >= 0 && ms_left(deadline) > 0) {
        pause_ms(POLL_INTERVAL_MS);
    }
    return count;
}

/* Socket inodes of pid, from the "socket:[INODE]" links in /proc/PID/fd. */
static int proc_socket_inodes(pid_t pid, unsigned long *inodes, int cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (!dir) {
        return -errno;
    }
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) && count < cap) {
        char target[64];
        ssize_t len = readlinkat(dirfd(dir), entry->d_name, target, sizeof target - 1);
        if (len <= 0) {
            continue;
        }
        target[len] = '\0';
        if (sscanf(target, "socket:[%lu]", &inodes[count]) == 1) {
            count++;
        }
    }
    closedir(dir);
    return count;
}

/* Count rows of a /proc/PID/net/tcp{,6} table in state whose inode is one of inodes. */
static int count_tcp_rows(const char *table, int tcp_state, const unsigned long *inodes, int n)
{
    FILE *file = fopen(table, "r");
    if (!file) {
        return 0; /* no IPv6 in this kernel: nothing to count */
    }
    char line[512];
    int count = 0;
    if (!fgets(line, sizeof line, file)) { /* column titles */
        fclose(file);
        return 0;
    }
    while (fgets(line, sizeof line, file)) {
        unsigned state;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %lu", &state, &inode) != 2) {
            continue;
        }
        for (int i = 0; i < n && (int)state == tcp_state; i++) {
            if (inodes[i] == inode) {
                count++;
                break;
            }
        }
    }
    fclose(file);
    return count;
}

int test_proc_tcp_state_count(pid_t pid, int tcp_state)
{
    unsigned long inodes[4096];
    int n = proc_socket_inodes(pid, inodes, 4096);
    if (n < 0) {
        return n;
    }
    char table[64];
    snprintf(table, sizeof table, "/proc/%d/net/tcp", (int)pid);
    int count = count_tcp_rows(table, tcp_state, inodes, n);
    snprintf(table, sizeof table, "/proc/%d/net/tcp6", (int)pid);
    return count + count_tcp_rows(table, tcp_state, inodes, n);
}

int test_proc_accept_queue(pid_t pid, int port)
{
    char table[64];
    snprintf(table, sizeof table, "/proc/%d/net/tcp", (int)pid);
    FILE *file = fopen(table, "r");
    if (!file) {
        return -errno;
    }
    char line[512];
    int queued = -ENOENT;
    while (fgets(line, sizeof line, file)) {
        unsigned local_port, state;
        unsigned long rx_queue;
        /* sl local(ADDR:PORT) rem st tx:rx; the column titles do not parse */
        if (sscanf(line, "%*s %*[0-9A-Fa-f]:%x %*s %x %*x:%lx", &local_port, &state, &rx_queue) ==
                3 &&
            state == TCP_LISTEN && (int)local_port == port) {
            queued = (int)rx_queue;
            break;
        }
    }
    fclose(file);
    return queued;
}

int test_proc_wait_accept_queue_empty(pid_t pid, int port, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    int queued;
    while ((queued = test_proc_accept_queue(pid, port)) > 0 && ms_left(deadline) > 0) {
        pause_ms(POLL_INTERVAL_MS);
    }
    return queued;
}

long test_proc_cpu_ticks(pid_t pid)
{
    char path[64], stat[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file) {
        return -errno;
    }
    size_t len = fread(stat, 1, sizeof stat - 1, file);
    fclose(file);
    stat[len] = '\0';
    /* The command name may hold spaces and parentheses: fields restart after the last ')'. From
     * there: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14)
     * stime(15). */
    const char *rest = strrchr(stat, ')');
    unsigned long utime, stime;
    if (!rest || sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                        &stime) != 2) {
        return -EPROTO;
    }
    return (long)(utime + stime);
}

static char proc_state(pid_t pid)
{
    char path[64], stat[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file) {
        return '\0';
    }
    size_t len = fread(stat, 1, sizeof stat - 1, file);
    fclose(file);
    stat[len] = '\0';
    const char *rest = strrchr(stat, ')');
    return rest && rest[1] == ' ' ? rest[2] : '\0';
}

int test_proc_wait_state(pid_t pid, char state, int timeout_ms)
{
    long deadline = test_now_ms() + timeout_ms;
    while (proc_state(pid) != state) {
        if (ms_left(deadline) == 0) {
            return -ETIMEDOUT;
        }
        pause_ms(POLL_INTERVAL_MS);
    }
    return 0;
}

long test_proc_cpu_ticks_during(pid_t pid, int window_ms)
{
    long before = test_proc_cpu_ticks(pid);
    if (before < 0) {
        return before;
    }
    pause_ms(window_ms); /* a measurement window, not a synchronisation */
    long after = test_proc_cpu_ticks(pid);
    return after < 0 ? after : after - before;
}

/* Nanoseconds on a CPU plus nanoseconds waiting in a run queue. */
static long long proc_sched_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file) {
        return -errno;
    }
    unsigned long long running, waiting;
    int fields = fscanf(file, "%llu %llu", &running, &waiting);
    fclose(file);
    return fields == 2 ? (long long)(running + waiting) : -EPROTO;
}

int test_proc_cpu_demand_during(pid_t pid, int window_ms)
{
    long long before = proc_sched_ns(pid);
    if (before < 0) {
        long ticks = test_proc_cpu_ticks_during(pid, window_ms);
        return ticks < 0 ? (int)ticks
                         : (int)(ticks * 1000 * 100 / sysconf(_SC_CLK_TCK) / window_ms);
    }
    long started = test_now_ms();
    pause_ms(window_ms); /* a measurement window, not a synchronisation */
    long long after = proc_sched_ns(pid);
    long elapsed_ms = test_now_ms() - started;
    if (after < 0) {
        return (int)after;
    }
    return (int)((after - before) / 10000 / (elapsed_ms > 0 ? elapsed_ms : 1));
}

long test_proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file) {
        return -errno;
    }
    long rss = -EPROTO;
    while (fgets(line, sizeof line, file)) {
        if (sscanf(line, "VmRSS: %ld", &rss) == 1) {
            break;
        }
    }
    fclose(file);
    return rss;
}

/* ---------------------------------------------------------------- network namespace */

int test_netns_enter_private(void)
{
    if (unshare(CLONE_NEWNET) < 0) {
        return -errno;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct ifreq request;
    memset(&request, 0, sizeof request);
    snprintf(request.ifr_name, sizeof request.ifr_name, "lo");
    int rc = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &request) < 0) {
        rc = -errno;
    } else {
        request.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &request) < 0) {
            rc = -errno;
        }
    }
    close(fd);
    return rc;
}

/* Run a command (PATH lookup), output discarded; 0 if it exited 0 within timeout_ms. */
static int run_quiet(const char *const *argv, int timeout_ms)
{
    pid_t pid = fork();
    if (pid < 0) {
        return -errno;
    }
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            dup2(null_fd, STDIN_FILENO);
            dup2(null_fd, STDOUT_FILENO);
            dup2(null_fd, STDERR_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    int rc = wait_child(pid, timeout_ms, &status);
    if (rc == -ETIMEDOUT) {
        kill_and_reap(pid, &status);
    }
    if (rc < 0) {
        return rc;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        return -ENOENT;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int test_netns_drop_tcp_to_port(int port)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    int rc = run_quiet(TEST_ARGS("nft", "add", "table", "inet", "cftest"), TEST_PROMPT_MS);
    if (rc == 0) {
        rc = run_quiet(TEST_ARGS("nft", "add", "chain", "inet", "cftest", "out",
                                 "{ type filter hook output priority 0 ; }"),
                       TEST_PROMPT_MS);
    }
    if (rc == 0) {
        rc = run_quiet(TEST_ARGS("nft", "add", "rule", "inet", "cftest", "out", "tcp", "dport",
                                 port_text, "drop"),
                       TEST_PROMPT_MS);
    }
    return rc;
}
