/* The diagnosis speaks of the right process (issue 12): its summary (the headline) is about
 * the thread that serves, never a process that only waits for its children. Debian's nginx
 * (a master in rt_sigsuspend, a worker on the listener), busybox httpd (a child per
 * connection) and a shell wrapper around the reference server. And the system call names of
 * 32-bit (i386) targets. Every wait polls a condition against a deadline. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diagnose.h"
#include "diagnose_internal.h"
#include "procfs.h"
#include "sockdiag.h"
#include "support.h"

#ifndef CONNFAULT_SERVER_BIN
#error "CONNFAULT_SERVER_BIN must name the reference server binary"
#endif

#define WAIT_MS        10000
#define POLL_PERIOD_MS 10
#define NGINX          "/usr/sbin/nginx"
#define BUSYBOX        "/usr/bin/busybox"

/* ---- helpers --------------------------------------------------------------------------------- */

/* A port nobody listens on now (the kernel's pick for an ephemeral bind). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The wait's condition: the tree of root has nprocs processes (the last one, in tree order,
 * in *last), and something listens on port with nothing queued (seen by sock_diag: a test
 * connection would wake the server, and add a process to a server with one per connection). */
struct tree_watch {
    pid_t root, last;
    size_t nprocs;
    int port;
};

static bool tree_ready(void *arg)
{
    struct tree_watch *w = arg;
    pid_t pids[8];
    size_t n = 0;
    if (procfs_tree(w->root, pids, 8, &n) != 0 || n != w->nprocs)
        return false;
    w->last = pids[n - 1];
    unsigned queued, backlog;
    return sockdiag_listen_queue(w->port, &queued, &backlog) == 0 && queued == 0;
}

/* Blocked in a system call named name (by the x86_64 table: the tests run 64-bit servers). */
struct call_watch {
    pid_t pid;
    const char *name;
};

static bool in_call(void *arg)
{
    struct call_watch *w = arg;
    char path[64], text[128] = "", buf[32];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)w->pid);
    if (procfs_read_file(path, text, sizeof(text)) <= 0)
        return false;
    return strcmp(diag_syscall_name(DIAG_ABI_X86_64, atol(text), buf, sizeof(buf)), w->name) == 0;
}

static void diagnose_ok(pid_t pid, int port, struct diagnosis *d)
{
    struct diagnose_options opt = {.port = port, .budget_ms = 3000};
    int rc = diagnose_target(pid, &opt, d);
    ck_assert_msg(rc == 0, "diagnose_target: %s", strerror(-rc));
    if (getenv("CONNFAULT_TEST_VERBOSE") != NULL)
        fprintf(stderr, "%s\n", d->text);
}

/* The headline's pid, from the JSON detail; the report on stderr when it is not want. */
static void expect_headline(const struct diagnosis *d, pid_t want, const char *summary_has)
{
    char error[256];
    struct ts_json *root = ts_json_parse(d->json, error, sizeof(error));
    ck_assert_msg(root, "JSON: %s", error);
    const char *pid = ts_json_num(ts_json_get(root, "headline"), "pid");
    bool ok = pid && atol(pid) == (long)want && strstr(d->summary, summary_has) != NULL;
    ts_json_free(root);
    if (!ok) {
        fprintf(stderr, "%s\n", d->text);
        ck_abort_msg("headline: expected pid %d and \"%s\" in: %s", (int)want, summary_has,
                     d->summary);
    }
}

static void wait_in_call(pid_t pid, const char *name)
{
    struct call_watch w = {.pid = pid, .name = name};
    ck_assert_msg(ts_wait_until(in_call, &w, WAIT_MS, POLL_PERIOD_MS), "pid %d never in %s",
                  (int)pid, name);
}

/* Diagnose root: the headline must be pid head, its summary hold summary_has, the report's
 * text (its notes) text_has. */
static void expect_diagnosis(pid_t root, int port, pid_t head, const char *summary_has,
                             const char *text_has)
{
    struct diagnosis d;
    diagnose_ok(root, port, &d);
    expect_headline(&d, head, summary_has);
    ck_assert_msg(strstr(d.text, text_has), "expected \"%s\" in:\n%s", text_has, d.text);
    diagnosis_free(&d);
}

/* A temp dir with www/index.html and tmp/ (nginx's temp paths). Made once by the parent (an
 * unchecked fixture), so that it is removed even when a test fails. */
static char dir[256];

static void site_create(void)
{
    char path[512];
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "diagheadline"), 0);
    snprintf(path, sizeof(path), "%s/www", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/tmp", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/www/index.html", dir);
    ck_assert_int_eq(ts_write_file(path, "hello\n"), 0);
}

/* The process groups the tests started (each server leads its own): if a test dies before it
 * stops its server, the server's leader gets the test's death signal but not its children
 * (nginx's worker, busybox's child, the wrapped server), so the parent ends them here. */
static void group_remember(pid_t leader)
{
    char path[512], line[32];
    snprintf(path, sizeof(path), "%s/groups", dir);
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    snprintf(line, sizeof(line), "%d\n", (int)leader);
    fputs(line, f);
    fclose(f);
}

static void site_remove(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/groups", dir);
    FILE *f = fopen(path, "r");
    int leader;
    while (f != NULL && fscanf(f, "%d", &leader) == 1)
        kill(-leader, SIGKILL); /* ESRCH when the test stopped them: nothing left */
    if (f != NULL)
        fclose(f);
    ts_tmpdir_remove(dir);
}

/* ---- nginx: master and worker ------------------------------------------------------------- */

/* data/real/nginx.conf (the real-server tests' template) with @DIR@ and @PORT@ filled in. */
static void nginx_conf(int port)
{
    char path[512], port_text[16];
    snprintf(path, sizeof(path), "%s/harness/tests/data/real/nginx.conf", CONNFAULT_SOURCE_DIR);
    char *text = ts_slurp(path, NULL);
    ck_assert_ptr_nonnull(text);
    snprintf(port_text, sizeof(port_text), "%d", port);
    size_t cap = strlen(text) * 4 + 4096, o = 0;
    char *out = ts_nonnull(malloc(cap));
    for (const char *s = text; *s;) {
        const char *with = strncmp(s, "@DIR@", 5) == 0    ? dir
                           : strncmp(s, "@PORT@", 6) == 0 ? port_text
                                                          : NULL;
        if (with == NULL) {
            out[o++] = *s++;
            continue;
        }
        o += (size_t)snprintf(out + o, cap - o, "%s", with);
        s += s[1] == 'D' ? 5 : 6;
    }
    out[o] = '\0';
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    ck_assert_int_eq(ts_write_file(path, out), 0);
    free(out);
    free(text);
}

START_TEST(nginx_headline_is_the_worker_not_the_master)
{
    ck_assert_msg(access(NGINX, X_OK) == 0, "nginx is not installed: run ci/setup");
    char prefix[300], conf[300];
    int port = free_port();
    nginx_conf(port);
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
    struct ts_proc nginx;
    const struct ts_run_opts opts = {.discard_stderr = true, .timeout_ms = 120000};
    ck_assert_int_eq(
        ts_proc_start(&nginx, TS_ARGV(NGINX, "-e", "stderr", "-p", prefix, "-c", conf), &opts), 0);
    group_remember(nginx.pid);
    struct tree_watch w = {.root = nginx.pid, .nprocs = 2, .port = port};
    ck_assert_msg(ts_wait_until(tree_ready, &w, WAIT_MS, POLL_PERIOD_MS),
                  "nginx did not start a worker listening on %d", port);
    wait_in_call(w.last, "epoll_wait");
    expect_diagnosis(nginx.pid, port, w.last, "epoll_wait",
                     "only waits for its children (in rt_sigsuspend)");
    ts_proc_free(&nginx);
}
END_TEST

/* ---- busybox httpd: a child per connection -------------------------------------------------- */

START_TEST(busybox_headline_is_the_child_holding_the_stuck_client)
{
    ck_assert_msg(access(BUSYBOX, X_OK) == 0, "busybox is not installed: run ci/setup");
    char www[300], listen_on[64];
    snprintf(www, sizeof(www), "%s/www", dir);
    int port = free_port();
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
    struct ts_proc bb;
    const struct ts_run_opts opts = {.discard_stderr = true, .timeout_ms = 120000};
    ck_assert_int_eq(
        ts_proc_start(&bb, TS_ARGV(BUSYBOX, "httpd", "-f", "-p", listen_on, "-h", www), &opts), 0);
    group_remember(bb.pid);
    struct tree_watch w = {.root = bb.pid, .nprocs = 1, .port = port};
    ck_assert(ts_wait_until(tree_ready, &w, WAIT_MS, POLL_PERIOD_MS));

    /* A client whose headers never end: its child reads (alarm(60) would end it). */
    int client = client_connect(port);
    ck_assert_int_ge(client, 0);
    const char head[] = "GET / HTTP/1.1\r\nHost: t\r\n";
    ck_assert_int_eq(send(client, head, sizeof(head) - 1, 0), (ssize_t)sizeof(head) - 1);
    w.nprocs = 2;
    ck_assert(ts_wait_until(tree_ready, &w, WAIT_MS, POLL_PERIOD_MS));
    wait_in_call(w.last, "read");
    expect_diagnosis(bb.pid, port, w.last, "blocked in read(fd 0 = TCP", "a descendant of pid");
    close(client);
    ts_proc_free(&bb);
}
END_TEST

/* ---- a shell that waits for the server ------------------------------------------------------ */

START_TEST(shell_wrapper_is_not_the_headline)
{
    struct ts_proc sh;
    int port = 0;
    const struct ts_run_opts opts = {.discard_stderr = true, .timeout_ms = 120000};
    /* "; exit $?" keeps dash from exec'ing: it waits in wait4 for timeout(1), which waits in
     * rt_sigsuspend for the server: two waiters to pass over. --foreground keeps them all in
     * the shell's process group, which ts_proc_free kills; and should the test die first (only
     * the shell gets its death signal), timeout(1) ends the server within a minute. */
    int rc = ts_server_start(&sh,
                             TS_ARGV("/bin/sh", "-c",
                                     "timeout --foreground 60 " CONNFAULT_SERVER_BIN
                                     " --port 0 --quiet; exit $?"),
                             &opts, &port);
    ck_assert_int_eq(rc, 0);
    group_remember(sh.pid);
    struct tree_watch w = {.root = sh.pid, .nprocs = 3, .port = port};
    ck_assert(ts_wait_until(tree_ready, &w, WAIT_MS, POLL_PERIOD_MS));
    wait_in_call(sh.pid, "wait4");
    wait_in_call(w.last, "epoll_wait");
    expect_diagnosis(sh.pid, port, w.last, "epoll_wait", "only waits for its children (in wait4)");
    ts_proc_free(&sh);
}
END_TEST

/* ---- i386 system call names ------------------------------------------------------------------ */

/* The table lookup by ABI. Not tested on a live 32-bit process: this kernel (and CI's) may
 * run without IA32 emulation; the ABI comes from the executable's ELF header, tested below. */
START_TEST(i386_numbers_have_i386_names)
{
    char buf[32];
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 3, buf, sizeof(buf)), "read");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 29, buf, sizeof(buf)), "pause");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 102, buf, sizeof(buf)), "socketcall");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 256, buf, sizeof(buf)), "epoll_wait");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 364, buf, sizeof(buf)), "accept4");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 371, buf, sizeof(buf)), "recvfrom");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 407, buf, sizeof(buf)),
                     "clock_nanosleep_time64");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_I386, 9999, buf, sizeof(buf)), "syscall_9999");
    /* the same numbers mean other calls on x86_64 */
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_X86_64, 3, buf, sizeof(buf)), "close");
    ck_assert_str_eq(diag_syscall_name(DIAG_ABI_X86_64, 45, buf, sizeof(buf)), "recvfrom");
    ck_assert_str_eq(diag_syscall_lookup(DIAG_ABI_I386, 256)->args, "fpit");
    ck_assert(diag_syscall_waits_for_child(DIAG_ABI_I386, 7));    /* waitpid */
    ck_assert(diag_syscall_waits_for_child(DIAG_ABI_X86_64, 61)); /* wait4 */
    ck_assert(!diag_syscall_waits_for_child(DIAG_ABI_X86_64, 7)); /* poll */
}
END_TEST

START_TEST(elf_header_says_the_abi)
{
    unsigned char hdr[20] = {0x7f, 'E', 'L', 'F', 1 /* 32-bit */, 1 /* little-endian */};
    hdr[18] = 3; /* EM_386 */
    ck_assert_int_eq(diag_abi_of_elf(hdr, sizeof(hdr)), DIAG_ABI_I386);
    ck_assert_int_eq(diag_abi_of_elf(hdr, 10), DIAG_ABI_X86_64); /* cut short */
    hdr[18] = 62;                                                /* EM_X86_64: x32 */
    ck_assert_int_eq(diag_abi_of_elf(hdr, sizeof(hdr)), DIAG_ABI_X86_64);
    hdr[4] = 2, hdr[18] = 62; /* 64-bit */
    ck_assert_int_eq(diag_abi_of_elf(hdr, sizeof(hdr)), DIAG_ABI_X86_64);
    memcpy(hdr, "#!/bin", 6);
    ck_assert_int_eq(diag_abi_of_elf(hdr, sizeof(hdr)), DIAG_ABI_X86_64);
}
END_TEST

static Suite *headline_suite(void)
{
    Suite *s = suite_create("diagnose_headline");
    TCase *servers = tcase_create("servers");
    tcase_set_timeout(servers, 60);
    tcase_add_unchecked_fixture(servers, site_create, site_remove);
    tcase_add_test(servers, nginx_headline_is_the_worker_not_the_master);
    tcase_add_test(servers, busybox_headline_is_the_child_holding_the_stuck_client);
    tcase_add_test(servers, shell_wrapper_is_not_the_headline);
    suite_add_tcase(s, servers);
    TCase *abi = tcase_create("abi");
    tcase_add_test(abi, i386_numbers_have_i386_names);
    tcase_add_test(abi, elf_header_says_the_abi);
    suite_add_tcase(s, abi);
    return s;
}

int main(void)
{
    return ts_run_suite(headline_suite());
}
