/* diagnose internals: the model a diagnosis fills in, the helper's record format, and the
 * functions the files of diagnose/ share. For diagnose/ itself and its tests only; run/ sees
 * diagnose.h alone.
 *
 * A diagnosis runs in four steps, each bounded by the budget (diagnose.c drives them):
 *   1. /proc scan (scan.c, fds.c): for each thread of the tree, its state, wchan and
 *      /proc/.../syscall; fd arguments of that system call described (TCP sockets through
 *      observe/sockdiag, epoll sets through fdinfo, pipes, files).
 *   2. optional sampling (sample.c): /proc/.../syscall read every few ms, and CPU time.
 *      /proc says "running" for a thread that is on a CPU, so this shows where sleepy threads
 *      wait but not what a spinning thread does; hence step 3.
 *   3. a forked ptrace helper (tracer.c, with unwind.c for the stacks): seizes the threads,
 *      counts the system calls of the busy ones, stops them, walks their stacks and detaches.
 *      It writes its findings as records (below) to a pipe, which the parent reads
 *      (tracer_read.c), so whatever it found before being killed at the deadline is kept.
 *   4. analysis (analyse.c: the notes) and rendering (render_text.c: the summary and the text
 *      report; render_json.c: the JSON object).
 *
 * The helper's records. One record per line; fields are separated by tabs; no field holds a
 * tab, CR or newline (they are written as spaces). The first field is the record type, the
 * second a decimal thread id (tid) or process id (pid). A line without its newline (the
 * helper was killed while writing it) is dropped, and so are unknown types and records
 * about a thread or process the parent does not know.
 *   F tid pc inlined line function file module   one stack frame, innermost first: pc in hex,
 *                                                inlined 0/1 (an inlined call sharing the pc of
 *                                                the next frame), line 0 when unknown, then
 *                                                the three strings, possibly empty (module is a
 *                                                file's basename); at most DIAG_MAX_FRAMES
 *   U tid message                                why unwinding stopped early
 *   S tid nr count [errno:count]...              a system call counted on a busy thread: its
 *                                                number and count, then up to DIAG_MAX_ERRNOS
 *                                                errno values it failed with, with counts
 *   W pid window_ms                              how long the busy threads were counted
 *   T tid stopped                                1: the thread reached a ptrace stop and was
 *                                                detached; 0: it never stopped in time
 *   P pid message                                why the process could not be traced (or its
 *                                                stacks read); the parent keeps the first */
#ifndef CONNFAULT_DIAGNOSE_INTERNAL_H
#define CONNFAULT_DIAGNOSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "diagnose.h"
#include "sockdiag.h"

#define DIAG_MAX_PROCS         32 /* processes described in detail; the rest are counted */
#define DIAG_MAX_THREADS       64 /* threads per process */
#define DIAG_MAX_FRAMES        48
#define DIAG_MAX_FD_ARGS       2  /* sendfile and splice have two */
#define DIAG_MAX_WATCHES       16 /* fds listed per epoll instance */
#define DIAG_MAX_COUNTS        12 /* distinct system calls counted per thread */
#define DIAG_MAX_ERRNOS        3  /* distinct errors counted per system call */
#define DIAG_MAX_NOTES         24
#define DIAG_SAMPLE_WINDOW_MS  300
#define DIAG_SAMPLE_PERIOD_MS  5
#define DIAG_TRACE_WINDOW_MS   300
#define DIAG_STOP_WAIT_MS      500 /* how long a thread may take to reach a ptrace stop */
#define DIAG_RENDER_RESERVE_MS 50  /* kept out of the helper's share of the budget */
#define DIAG_REAP_WAIT_MS      500
#define DIAG_TCP_LISTEN        10         /* TCP_LISTEN in <netinet/tcp.h> */
#define DIAG_EPOLLET           (1u << 31) /* EPOLLET, as /proc/PID/fdinfo shows the event mask */

/* The record types of the helper's output (see above). */
enum diag_record {
    DIAG_RECORD_FRAME = 'F',
    DIAG_RECORD_UNWIND_STOPPED = 'U',
    DIAG_RECORD_SYSCALL_COUNT = 'S',
    DIAG_RECORD_WINDOW = 'W',
    DIAG_RECORD_STOPPED = 'T',
    DIAG_RECORD_PTRACE_ERROR = 'P',
};

/* ---- the model ------------------------------------------------------------------------------ */

/* Whose numbers a thread's system calls are: a 32-bit program on x86_64 makes i386 calls. */
enum diag_abi { DIAG_ABI_X86_64, DIAG_ABI_I386 };

enum diag_fd_kind {
    DIAG_FD_UNKNOWN,
    DIAG_FD_TCP,
    DIAG_FD_TCP_LISTEN,
    DIAG_FD_SOCKET, /* a socket in no TCP table: UNIX, UDP, netlink, or a reset TCP socket */
    DIAG_FD_EPOLL,
    DIAG_FD_PIPE,
    DIAG_FD_FILE,
    DIAG_FD_ANON,
};

/* A TCP socket as the report shows it. */
struct diag_sock {
    int state;
    unsigned rq, wq; /* for LISTEN: queued connections and the backlog */
    char local[64], peer[64];
};

struct diag_watch {
    int fd;
    uint32_t events;
    bool listener;
    unsigned queued; /* of a listener */
    char what[200];
};

struct diag_fd {
    int fd;
    enum diag_fd_kind kind;
    char target[256]; /* readlink of /proc/PID/fd/N */
    struct diag_sock sock;
    struct diag_watch watches[DIAG_MAX_WATCHES];
    size_t nwatches, watches_total;
    char text[600]; /* "TCP 127.0.0.1:8080 <- 127.0.0.2:40312 ESTABLISHED, rq 0 sq 0" */
};

struct diag_errno_count {
    int err;
    unsigned count;
};

struct diag_count {
    long nr; /* DIAG_NR_RUNNING and DIAG_NR_USER in /proc samples */
    unsigned count;
    struct diag_errno_count errors[DIAG_MAX_ERRNOS];
};

#define DIAG_NR_RUNNING (-2L)
#define DIAG_NR_USER    (-1L)

struct diag_frame {
    uint64_t pc;
    bool inlined; /* an inlined call: pc is shared with the next frame */
    int line;     /* 0: unknown */
    char function[128];
    char file[256];
    char module[96];
};

enum diag_syscall_state {
    DIAG_SC_UNKNOWN, /* not readable */
    DIAG_SC_RUNNING, /* on a CPU (or runnable): /proc cannot say */
    DIAG_SC_USER,    /* blocked, but not in a system call (page fault, stopped in user code) */
    DIAG_SC_IN,
};

struct diag_thread {
    pid_t tid;
    enum diag_abi abi; /* its process's */
    char comm[32];
    char state;
    char wchan[64];
    enum diag_syscall_state sc;
    int sc_error; /* errno when DIAG_SC_UNKNOWN */
    long nr;
    uint64_t args[6];
    struct diag_fd fd_args[DIAG_MAX_FD_ARGS];
    size_t nfd_args;

    /* sampling */
    bool cpu_known;
    uint64_t cpu_ns_start;
    double cpu_pct;
    unsigned samples, samples_running;
    struct diag_count sampled[DIAG_MAX_COUNTS];
    size_t nsampled;
    bool busy;

    /* from the ptrace helper */
    bool stopped_for_trace;
    bool not_stopped; /* seized, but never reached a stop in time */
    struct diag_count traced[DIAG_MAX_COUNTS];
    size_t ntraced;
    struct diag_frame *frames;
    size_t nframes;
    char unwind_error[160];
};

struct diag_process {
    pid_t pid, ppid;
    enum diag_abi abi;
    char exe[256];
    char exe_base[96];
    struct diag_thread *threads;
    size_t nthreads, threads_total;
    bool fds_known, limit_known;
    int fds_error;
    unsigned nfds;
    uint64_t fd_soft, fd_hard;
    char ptrace_error[200]; /* why the helper could not trace it */
    unsigned trace_window_ms;
};

struct diag_ctx {
    const struct diagnose_options *opt;
    pid_t root;
    uint64_t start_ms, deadline_ms;
    struct diag_process *procs;
    size_t nprocs, procs_total;

    struct sockdiag_sock *socks; /* the TCP table, sorted by inode, loaded on first use */
    size_t nsocks;
    bool socks_loaded;
    int socks_error;

    bool listen_known;
    unsigned listen_queued, listen_backlog;

    bool head_known; /* the thread the summary speaks of (headline.c) */
    size_t head_proc, head_thread;

    unsigned sample_window_ms;
    bool traced_any; /* the helper counted system calls */
    bool ptrace_ok;  /* the helper seized at least one thread */
    bool helper_ran;
    char notes[DIAG_MAX_NOTES][320];
    size_t nnotes;
};

/* ---- diagnose.c: small shared helpers -------------------------------------------------------- */

uint64_t diag_remaining_ms(const struct diag_ctx *ctx);

/* Adds a note to the report (a repeat of an earlier one is dropped). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void diag_note(struct diag_ctx *ctx, const char *fmt, ...);

/* A small /proc file, NUL-terminated, trailing newlines removed: its length or -errno. */
ssize_t diag_read_file(const char *path, char *buf, size_t size);

void diag_copy(char *dst, size_t size, const char *src); /* cut short if needed */
const char *diag_basename(const char *path);

/* ---- syscalls.c: the system call table ------------------------------------------------------- */

/* args: one letter per argument, saying how to show it: f fd, i int, u size or count, x flags
 * (hex), p pointer, t timeout in ms (int, -1 = forever). */
struct diag_syscall_info {
    int nr;
    const char *name;
    const char *args;
};

/* NULL if not in the table of abi */
const struct diag_syscall_info *diag_syscall_lookup(enum diag_abi abi, long nr);
/* "recvfrom", "syscall_999" */
const char *diag_syscall_name(enum diag_abi abi, long nr, char *buf, size_t size);
/* The ABI an ELF header (the first len bytes of the executable) says its system calls use. */
enum diag_abi diag_abi_of_elf(const unsigned char *hdr, size_t len);
bool diag_syscall_waits_for_child(enum diag_abi abi, long nr); /* wait4, rt_sigsuspend... */
const char *diag_errno_name(int err, char *buf, size_t size);  /* "EMFILE", "ERESTARTSYS" */

/* ---- counts.c: system call counts ------------------------------------------------------------ */

/* The slot of nr in counts (n used, DIAG_MAX_COUNTS at most), added if new; NULL when full. */
struct diag_count *diag_count_slot(struct diag_count *counts, size_t *n, long nr);
void diag_count_error(struct diag_count *c, int err, unsigned times);
unsigned diag_count_errors(const struct diag_count *c, int err);
void diag_sort_counts(struct diag_count *counts, size_t n); /* most frequent first */

/* The traced counts of all threads, summed into sum (DIAG_MAX_COUNTS), most frequent first;
 * *window_ms is the longest trace window. Returns the number of counts. */
size_t diag_total_counts(const struct diag_ctx *ctx, struct diag_count *sum, unsigned *window_ms);

/* ---- scan.c, fds.c, sample.c: what /proc shows ----------------------------------------------- */

int diag_scan(struct diag_ctx *ctx); /* 0, -ESRCH, -ENOMEM */
void diag_thread_path(char *buf, size_t size, pid_t pid, pid_t tid, const char *file);
void diag_read_syscall(pid_t pid, struct diag_thread *t);
const char *diag_state_name(char state); /* 'S' -> "sleeping" */

/* Describes fd of pid into out (with the fds an epoll instance watches if with_watches). */
void diag_describe_fd(struct diag_ctx *ctx, pid_t pid, int fd, struct diag_fd *out,
                      bool with_watches);

void diag_sample(struct diag_ctx *ctx);

/* ---- tracer.c, unwind.c, tracer_read.c: the ptrace helper ------------------------------------ */

/* Runs the helper in a forked child and reads its records into ctx, within the budget. */
void diag_run_helper(struct diag_ctx *ctx);

/* The helper's body, in the forked child: writes records to out_fd until deadline. */
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void diag_tracer_main(struct diag_ctx *ctx, int out_fd, pid_t parent, uint64_t deadline);

/* Reads the helper's records (buf, NUL-terminated, modified in place) into ctx. */
void diag_read_records(struct diag_ctx *ctx, char *buf);

/* Where the stack walk reports: each frame, innermost first; why a thread's walk stopped. */
struct diag_unwind_sink {
    void (*frame)(void *sink_ctx, pid_t tid, const struct diag_frame *frame);
    void (*stopped)(void *sink_ctx, pid_t tid, const char *why);
    void *sink_ctx;
};

/* Walks the stacks of threads tids of pid (all ptrace-stopped by the caller; at most
 * DIAG_MAX_FRAMES frames each). 0, or -1 with why the process could not be read in err. */
int diag_unwind(pid_t pid, const pid_t *tids, size_t n, const struct diag_unwind_sink *sink,
                char *err, size_t errlen);

/* ---- analyse.c, render_text.c, render_json.c ------------------------------------------------- */

void diag_analyse(struct diag_ctx *ctx);
void diag_pick_headline(struct diag_ctx *ctx); /* headline.c; before diag_analyse's notes */
void diag_put_summary(FILE *out, const struct diag_ctx *ctx); /* one line, no newline */
void diag_render_text(FILE *out, const struct diag_ctx *ctx, uint64_t elapsed_ms);
void diag_render_json(FILE *out, const struct diag_ctx *ctx, uint64_t elapsed_ms,
                      const char *summary);

#endif
