/* The diagnosis is taken at the decisive moment (issue 12): when a probe first fails, while the
 * target is stuck, and again for a later hang after an earlier one recovered; a spin is
 * diagnosed while it spins, and each failing check gets its own. The target is this binary
 * itself, run as `test_diagnose_moment MODE PORT`: a small HTTP server whose timeline counts
 * from the first connection of a fault client (127.0.0.2).
 *   two-hangs  sleeps in first_hang() from +1 s to +5 s, serves, sleeps in second_hang()
 *              from +7 s to +11 s, serves again: by judgement a diagnosis would show its
 *              poll loop.
 *   blip       a thread spins in spin_blip() from +2.3 s to +5.8 s (the faults end at +2 s:
 *              the CPU windows of the settle phase), then from +6.5 s the server sleeps
 *              in late_hang() for good. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "run.h"
#include "support.h"

#define MAX_CONNS      64
#define FIRST_HANG_AT  1000 /* ms after the first fault connection */
#define SECOND_HANG_AT 7000
#define HANG_MS        4000
#define BLIP_AT        2300
#define BLIP_MS        3500
#define LATE_HANG_AT   6500

/* ---- the target ---------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps until ms from now, through the interruptions a tracer causes: in poll(NULL, 0, ms),
 * or in nanosleep. The second hang sleeps in another system call than the first and than the
 * serving loop's poll, so that /proc alone tells which one a diagnosis caught (under load
 * the ptrace helper may overrun its budget and bring no backtrace). */
__attribute__((noipa)) static void sleep_for(uint64_t ms, bool nano)
{
    uint64_t end = now_ms() + ms;
    for (uint64_t now = now_ms(); now < end; now = now_ms()) {
        struct timespec ts = {.tv_sec = (time_t)((end - now) / 1000),
                              .tv_nsec = (long)((end - now) % 1000) * 1000000};
        if (nano)
            nanosleep(&ts, NULL);
        else
            poll(NULL, 0, (int)(end - now));
    }
}

/* noipa: neither inlined nor folded into one function (they are alike); the write after the
 * sleep keeps each frame on the stack (no tail call). */
static volatile int hang_number;

__attribute__((noipa)) static void first_hang(void)
{
    sleep_for(HANG_MS, false);
    hang_number = 1;
}

__attribute__((noipa)) static void second_hang(void)
{
    sleep_for(HANG_MS, true);
    hang_number = 2;
}

__attribute__((noipa)) static void late_hang(void)
{
    for (;;)
        sleep_for(HANG_MS, true);
}

__attribute__((noipa)) static void *spin_blip(void *arg)
{
    (void)arg;
    uint64_t end = now_ms() + BLIP_MS;
    while (now_ms() < end) /* clock_gettime is a vDSO call: no system call, all CPU */
        hang_number++;
    return NULL;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
        return -1;
    return fd;
}

/* Reads what came; answers and closes at the end of a request's headers, closes at EOF. */
static bool serve_conn(int fd)
{
    char buf[4096];
    ssize_t got = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (got > 0) {
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") == NULL)
            return true; /* a trickling client: its headers never end */
        static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: "
                                    "close\r\n\r\nok\n";
        send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
    }
    close(fd);
    return false;
}

static uint64_t accept_one(int listener, struct pollfd *conns, size_t *n, uint64_t faults_at)
{
    struct sockaddr_in peer;
    socklen_t len = sizeof(peer);
    int fd = accept4(listener, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
    if (fd < 0)
        return faults_at;
    if (*n == MAX_CONNS) {
        close(fd);
        return faults_at;
    }
    conns[(*n)++] = (struct pollfd){.fd = fd, .events = POLLIN};
    if (!faults_at && peer.sin_addr.s_addr == inet_addr("127.0.0.2"))
        return now_ms();
    return faults_at;
}

static bool blip_mode;

static void blip_when_due(uint64_t since, int *steps)
{
    pthread_t spinner;
    if (*steps == 0 && since >= BLIP_AT) {
        *steps = 1;
        if (pthread_create(&spinner, NULL, spin_blip, NULL) == 0)
            pthread_detach(spinner);
    } else if (*steps == 1 && since >= LATE_HANG_AT) {
        *steps = 2;
        late_hang();
    }
}

static void hang_when_due(uint64_t faults_at, int *hangs)
{
    uint64_t since = faults_at ? now_ms() - faults_at : 0;
    if (faults_at && blip_mode) {
        blip_when_due(since, hangs);
        return;
    }
    if (faults_at && *hangs == 0 && since >= FIRST_HANG_AT) {
        *hangs = 1;
        first_hang();
    } else if (faults_at && *hangs == 1 && since >= SECOND_HANG_AT) {
        *hangs = 2;
        second_hang();
    }
}

static int serve(int port)
{
    struct pollfd conns[MAX_CONNS + 1];
    conns[0] = (struct pollfd){.fd = listen_on(port), .events = POLLIN};
    if (conns[0].fd < 0)
        return 1;
    size_t n = 0;
    uint64_t faults_at = 0;
    int hangs = 0;
    for (;;) {
        hang_when_due(faults_at, &hangs);
        if (poll(conns, n + 1, 100) <= 0)
            continue;
        for (size_t i = n; i >= 1; i--) {
            if (conns[i].revents && !serve_conn(conns[i].fd))
                conns[i] = conns[n--];
        }
        if (conns[0].revents & POLLIN)
            faults_at = accept_one(conns[0].fd, conns + 1, &n, faults_at);
    }
}

/* ---- the test ------------------------------------------------------------------------------- */

static volatile sig_atomic_t never_interrupted;
static char self_path[4096];

/* One trickling client from 127.0.0.2 for 13 s: the faults phase spans both hangs. */
/* One trickling client from 127.0.0.2 for the scenario's duration; the harness holds it to the
 * end, so settling lasts the whole grace. */
static const char scenario_format[] = "[scenario]\n"
                                      "description = a target that hangs late\n"
                                      "duration = %s\n"
                                      "[clients slow]\n"
                                      "count = 1\n"
                                      "request_raw = \"GET / HTTP/1.1\\r\\nHost: {host}\\r\\n\"\n"
                                      "send = trickle\n"
                                      "trickle_bytes = 1\n"
                                      "trickle_interval = 500ms\n"
                                      "trickle_tail = \"X-a: b\\r\\n\"\n"
                                      "read = none\n";

/* The scenario files' dir, made once by the parent (an unchecked fixture): removed even when a
 * test fails. */
static char dir[256];

static void dir_create(void)
{
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "diagmoment"), 0);
}

static void dir_remove(void)
{
    ts_tmpdir_remove(dir);
}

/* One run of the scenario (lasting duration) against this binary in mode, into rep. */
static void run_against(const char *mode, const char *duration, uint64_t grace_ms,
                        struct run_report *rep)
{
    char path[512], command[4200], text[1024];
    snprintf(path, sizeof(path), "%s/late-hang-%s.ini", dir, mode);
    snprintf(text, sizeof(text), scenario_format, duration);
    ck_assert_int_eq(ts_write_file(path, text), 0);
    snprintf(command, sizeof(command), "%s %s {port}", self_path, mode);

    struct run_options o;
    run_options_defaults(&o, &never_interrupted);
    o.target_cmd = command;
    o.probe_timeout_ms = 1000;
    o.grace_ms = grace_ms;
    o.verbosity = 0;
    char *names[] = {path};
    run_collect(&o, names, 1, rep);
    ck_assert_uint_eq(rep->nscenarios, 1);
}

/* The hang's diagnosis (the text's first) names the function that hangs, unless the ptrace
 * helper overran its budget (a loaded machine): then the note says so, and the system call
 * (from /proc, always there) is what tells the hangs apart. */
static void expect_hang_stack(const char *text, const char *function)
{
    const char *spin = strstr(text + 1, "diagnosis of pid"); /* a second one: the spin's */
    size_t len = spin ? (size_t)(spin - text) : strlen(text);
    bool overran = memmem(text, len, "overran the budget", 18) != NULL;
    ck_assert_msg(overran || memmem(text, len, function, strlen(function)) != NULL,
                  "no %s in the hang's diagnosis:\n%s", function, text);
}

static const struct check_result *find_check(const struct scenario_result *r, const char *name)
{
    for (size_t i = 0; i < r->nchecks; i++)
        if (strcmp(r->checks[i].name, name) == 0)
            return &r->checks[i];
    return NULL;
}

START_TEST(late_hang_is_diagnosed_at_its_first_failed_probe)
{
    struct run_report rep;
    run_against("two-hangs", "13s", 5000, &rep);
    const struct scenario_result *r = &rep.scenarios[0];
    const struct check_result *acc = find_check(r, "accepting");
    ck_assert_msg(acc && acc->status == CHECK_FAILED, "accepting did not fail: %s", r->reason);
    ck_assert_msg(r->diagnosis != NULL, "no diagnosis: %s", r->reason);
    /* The newest hang's stack, taken while it hung; not the first hang's, not the poll loop
     * it is back in by judgement. */
    ck_assert_msg(strstr(r->diagnosis_summary, "blocked in clock_nanosleep") != NULL, "%s",
                  r->diagnosis);
    expect_hang_stack(r->diagnosis, "second_hang");
    ck_assert_msg(strstr(r->diagnosis, "first_hang") == NULL, "%s", r->diagnosis);
    ck_assert_msg(strstr(r->diagnosis, "when probe") != NULL, "%s", r->diagnosis);
    ck_assert_msg(strstr(r->diagnosis_json, "\"taken\":\"+") != NULL, "%s", r->diagnosis_json);
    run_report_free(&rep);
}
END_TEST

/* A CPU blip in the settle phase, then a hang: the hang is diagnosed at its first failed
 * probe (before, the blip's diagnosis was the only one, and the hang was reported with the
 * spinning thread's stack). If the blip also fails `cpu` (how long a spin must last to fail
 * it is the cpu check's business), the spin's diagnosis comes with it, after the hang's. */
START_TEST(hang_after_a_cpu_blip_gets_its_own_diagnosis)
{
    struct run_report rep;
    run_against("blip", "2s", 12000, &rep);
    const struct scenario_result *r = &rep.scenarios[0];
    const struct check_result *acc = find_check(r, "accepting"), *cpu = find_check(r, "cpu");
    ck_assert_msg(acc && acc->status == CHECK_FAILED, "accepting did not fail: %s", r->reason);
    ck_assert_msg(r->diagnosis != NULL, "no diagnosis: %s", r->reason);
    ck_assert_msg(strstr(r->diagnosis_summary, "blocked in clock_nanosleep") != NULL, "%s",
                  r->diagnosis);
    expect_hang_stack(r->diagnosis, "late_hang");
    const char *spin = strstr(r->diagnosis, "while CPU was");
    if (cpu && cpu->status == CHECK_FAILED) { /* the spin's, after the hang's: a busy thread */
        ck_assert_msg(spin != NULL && strstr(spin, "  busy at ") != NULL, "%s", r->diagnosis);
    } else {
        ck_assert_msg(spin == NULL, "a spin diagnosis without a failed cpu: %s", r->diagnosis);
    }
    run_report_free(&rep);
}
END_TEST

static Suite *moment_suite(void)
{
    Suite *s = suite_create("diagnose_moment");
    TCase *tc = tcase_create("moment");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_test(tc, late_hang_is_diagnosed_at_its_first_failed_probe);
    tcase_add_test(tc, hang_after_a_cpu_blip_gets_its_own_diagnosis);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3 && (strcmp(argv[1], "two-hangs") == 0 || strcmp(argv[1], "blip") == 0)) {
        blip_mode = strcmp(argv[1], "blip") == 0;
        return serve(atoi(argv[2]));
    }
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    if (len <= 0)
        return EXIT_FAILURE;
    self_path[len] = '\0';
    return ts_run_suite(moment_suite());
}
