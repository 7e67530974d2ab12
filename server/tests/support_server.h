/* support_server: what the connfault-server integration tests share.
 *
 * - start the real server binary (CONNFAULT_SERVER_BIN) on a free loopback port, stop it and
 *   collect its exit status, with every wait bounded;
 * - drive it as a client through nonblocking sockets and read whole HTTP responses (Content-Length,
 *   chunked or until EOF), checking the 'a' + i % 26 body pattern;
 * - look at it from outside through /proc: open fds, sockets in a TCP state, CPU ticks, RSS.
 *
 * Functions return 0 (or a count) on success and a negative errno on failure; they never print and
 * never abort, so a test can assert on the value and show it in the message. Every function that
 * waits takes a timeout in milliseconds and gives up with -ETIMEDOUT.
 */
#ifndef CONNFAULT_SUPPORT_SERVER_H
#define CONNFAULT_SUPPORT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifndef CONNFAULT_SERVER_BIN
#error "CONNFAULT_SERVER_BIN must name the connfault-server binary"
#endif

/* Bound for a wait on something that should happen promptly (a response, an fd being closed).
 * Generous so a loaded CI machine does not fail a correct server. */
#define TEST_PROMPT_MS 5000

/* NULL-terminated argument list for test_server_start: TEST_ARGS("--max-conns", "2"). */
#define TEST_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- the server process ---- */

struct test_server {
    pid_t pid; /* 0 once stopped and reaped */
    int port;  /* from its "listening on ADDR:PORT" line */
    /* Read end of its stdout, held open so a late write cannot raise SIGPIPE. */
    int stdout_fd;
};

/* Call first in main() and last before returning: ignore SIGPIPE in the tests, adopt servers
 * orphaned by a test process that Check killed on timeout, and reap them at the end. */
void test_support_init(void);
void test_support_finish(void);

/* Start the server with --bind 127.0.0.1 --port 0 followed by args (NULL or TEST_ARGS(...)), in its
 * own process group, with RLIMIT_NOFILE nofile_limit if > 0, and wait up to TEST_PROMPT_MS for its
 * "listening on" line. The server dies with the calling process. */
int test_server_start(struct test_server *server, const char *const *args, long nofile_limit);

/* SIGTERM, wait up to timeout_ms for the exit, then SIGKILL. *wait_status (may be NULL) gets the
 * waitpid status. Returns 0 if it exited by itself, -ETIMEDOUT if it had to be killed. */
int test_server_stop(struct test_server *server, int timeout_ms, int *wait_status);

/* Wait up to timeout_ms for the server to exit on its own (no signal sent). 0 and the status once
 * it has exited and been reaped; -ETIMEDOUT if it is still running. */
int test_server_wait_exit(struct test_server *server, int timeout_ms, int *wait_status);

/* Stop every server this process started and has not stopped: for a fixture teardown. (A failed
 * test skips its teardown; see test_support_init for what happens then.) */
void test_server_stop_all(void);

/* Run the server with exactly these args (after the binary name) until it exits, with stderr
 * captured into stderr_text (NUL-terminated, truncated to stderr_cap). For bad flags. */
int test_server_run_to_exit(const char *const *args, int timeout_ms, int *wait_status,
                            char *stderr_text, size_t stderr_cap);

/* ---- raw loopback sockets (nonblocking, close-on-exec) ---- */

/* Connect to 127.0.0.1:port; the connected fd, or a negative errno. */
int test_socket_connect(int port, int timeout_ms);

/* Start count connects at once, then wait for all of them against one deadline. Sockets that failed
 * or were still pending at the deadline are closed and their slot set to -1. Returns how many
 * connected. */
int test_socket_connect_many(int port, int *fds, int count, int timeout_ms);

int test_socket_send_all(int fd, const void *data, size_t len, int timeout_ms);

/* Abort the connection: SO_LINGER 0 then close() sends RST instead of FIN. */
void test_socket_reset(int fd);

/* Read and discard until the peer closes. 0 when it did (FIN or RST), -ETIMEDOUT if the connection
 * is still open. *discarded (may be NULL) gets the number of bytes thrown away. */
int test_socket_wait_closed(int fd, int timeout_ms, size_t *discarded);

/* Read and discard until at least min_bytes arrived. The byte count, or -ETIMEDOUT, -ENODATA (EOF
 * first) or the socket error. */
long test_socket_read_at_least(int fd, size_t min_bytes, int timeout_ms);

/* The local port of a connected socket, or a negative errno. */
int test_socket_local_port(int fd);

/* Read and discard whatever has already arrived, without waiting. Returns the byte count, or -errno
 * / -ENODATA (EOF) when the connection is gone. */
long test_socket_drain(int fd);

/* ---- HTTP client on one connection (keeps unread bytes for pipelined responses) ---- */

#define TEST_RESPONSE_HEAD_MAX  8192
#define TEST_RESPONSE_BODY_KEEP 512

struct test_client {
    int fd;            /* -1 when closed */
    size_t start, end; /* received, not yet parsed: buf[start..end) */
    char buf[16384];
};

struct test_response {
    int status;
    char head[TEST_RESPONSE_HEAD_MAX]; /* status line and headers, NUL-terminated */
    long long content_length;          /* -1 when absent */
    bool chunked;
    bool connection_close;
    size_t body_len;
    bool body_has_pattern;                    /* body byte i == 'a' + i % 26 for every i */
    char body_start[TEST_RESPONSE_BODY_KEEP]; /* the first bytes, NUL-terminated */
};

int test_client_connect(struct test_client *client, int port, int timeout_ms);
int test_client_send(struct test_client *client, const char *text, int timeout_ms);

/* Read one whole response. head_request: the request was HEAD, so no body follows. 0 on success;
 * -ENODATA if the connection closed before any byte of it; -EPROTO if it was malformed or cut
 * short; -ETIMEDOUT; or the socket error (-ECONNRESET...). */
int test_client_read_response(struct test_client *client, bool head_request, int timeout_ms,
                              struct test_response *response);

int test_client_wait_closed(struct test_client *client, int timeout_ms, size_t *discarded);
void test_client_close(struct test_client *client);

/* One request on a fresh connection: connect, send "GET path HTTP/1.1", read the response, close.
 * The whole exchange must fit in timeout_ms. */
int test_http_get(int port, const char *path, int timeout_ms, struct test_response *response);

/* Value of header name (case-insensitive) copied into value; false if absent.
 */
bool test_response_header(const struct test_response *response, const char *name, char *value,
                          size_t value_cap);

/* ---- the server seen from /proc ---- */

long test_now_ms(void);
int test_proc_fd_count(pid_t pid);

/* Wait until the fd count equals expected (or, for _at_least, reaches minimum). Returns the last
 * count seen, so an assertion on it shows how far off the server was. */
int test_proc_wait_fd_count(pid_t pid, int expected, int timeout_ms);
int test_proc_wait_fd_count_at_least(pid_t pid, int minimum, int timeout_ms);

/* Sockets of pid in tcp_state (TCP_CLOSE_WAIT, TCP_ESTABLISHED... from netinet/tcp.h). */
int test_proc_tcp_state_count(pid_t pid, int tcp_state);

/* Connections waiting in the accept queue of pid's IPv4 listening socket on port: completed by the
 * kernel, not yet accept()ed (the rx_queue of a LISTEN row of /proc/PID/net/tcp). -ENOENT if pid
 * does not listen on port. The _wait_ form waits for it to be empty and returns the last count. */
int test_proc_accept_queue(pid_t pid, int port);
int test_proc_wait_accept_queue_empty(pid_t pid, int port, int timeout_ms);

long test_proc_cpu_ticks(pid_t pid); /* utime + stime, in sysconf(_SC_CLK_TCK) units */
long test_proc_rss_kib(pid_t pid);

/* Wait until /proc/PID/stat shows state ('T': stopped, 'S': sleeping...). 0 or -ETIMEDOUT. */
int test_proc_wait_state(pid_t pid, char state, int timeout_ms);

/* CPU ticks pid used during the next window_ms (the caller is idle meanwhile).
 */
long test_proc_cpu_ticks_during(pid_t pid, int window_ms);

/* Percent of the next window_ms that pid spent running OR runnable and waiting for a CPU
 * (/proc/PID/schedstat). Unlike ticks, a spinning process scores ~100 even on a machine whose cores
 * are busy with other work; an idle one scores ~0. Falls back to ticks without schedstat. */
int test_proc_cpu_demand_during(pid_t pid, int window_ms);

/* ---- a private network namespace, for dropping packets without touching the host ---- */

/* Move the calling process into a new network namespace with lo up. Everything it starts afterwards
 * (the server) lives there; the namespace vanishes when they all exit. */
int test_netns_enter_private(void);

/* nft: drop every outgoing TCP segment to port (in the current namespace). */
int test_netns_drop_tcp_to_port(int port);

#endif
