/* syscalls: the names and argument kinds of the system calls a diagnosis shows, for each ABI a
 * target may use (a 32-bit program on x86_64 makes i386 system calls: /proc/PID/syscall and
 * ptrace give i386 numbers), and the names of the errors they fail with. */
#include "diagnose_internal.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
static const struct diag_syscall_info diag_syscalls_x86_64[] = {
    {0, "read", "fpu"},
    {1, "write", "fpu"},
    {2, "open", "pxx"},
    {3, "close", "f"},
    {4, "stat", "pp"},
    {5, "fstat", "fp"},
    {7, "poll", "put"},
    {8, "lseek", "fix"},
    {9, "mmap", "puxxfu"},
    {10, "mprotect", "pux"},
    {11, "munmap", "pu"},
    {12, "brk", "p"},
    {13, "rt_sigaction", "ippu"},
    {14, "rt_sigprocmask", "ippu"},
    {16, "ioctl", "fxp"},
    {17, "pread64", "fpuu"},
    {18, "pwrite64", "fpuu"},
    {19, "readv", "fpi"},
    {20, "writev", "fpi"},
    {21, "access", "px"},
    {22, "pipe", "p"},
    {23, "select", "ipppp"},
    {24, "sched_yield", ""},
    {28, "madvise", "pux"},
    {32, "dup", "f"},
    {33, "dup2", "ff"},
    {34, "pause", ""},
    {35, "nanosleep", "pp"},
    {39, "getpid", ""},
    {40, "sendfile", "ffpu"},
    {41, "socket", "iii"},
    {42, "connect", "fpu"},
    {43, "accept", "fpp"},
    {44, "sendto", "fpuxpu"},
    {45, "recvfrom", "fpuxpp"},
    {46, "sendmsg", "fpx"},
    {47, "recvmsg", "fpx"},
    {48, "shutdown", "fi"},
    {49, "bind", "fpu"},
    {50, "listen", "fi"},
    {51, "getsockname", "fpp"},
    {52, "getpeername", "fpp"},
    {54, "setsockopt", "fiipu"},
    {55, "getsockopt", "fiipp"},
    {56, "clone", "xppxp"},
    {57, "fork", ""},
    {59, "execve", "ppp"},
    {60, "exit", "i"},
    {61, "wait4", "ipxp"},
    {62, "kill", "ii"},
    {72, "fcntl", "fix"},
    {73, "flock", "fx"},
    {74, "fsync", "f"},
    {75, "fdatasync", "f"},
    {77, "ftruncate", "fu"},
    {78, "getdents", "fpu"},
    {89, "readlink", "ppu"},
    {96, "gettimeofday", "pp"},
    {97, "getrlimit", "ip"},
    {128, "rt_sigtimedwait", "pppu"},
    {130, "rt_sigsuspend", "pu"},
    {202, "futex", "pxipp"},
    {213, "epoll_create", "i"},
    {217, "getdents64", "fpu"},
    {228, "clock_gettime", "ip"},
    {230, "clock_nanosleep", "ixpp"},
    {231, "exit_group", "i"},
    {232, "epoll_wait", "fpit"},
    {233, "epoll_ctl", "fifp"},
    {247, "waitid", "iipxp"},
    {257, "openat", "fpxx"},
    {262, "newfstatat", "fppx"},
    {270, "pselect6", "ipppp"},
    {271, "ppoll", "pupp"},
    {275, "splice", "fpfpux"},
    {281, "epoll_pwait", "fpitpu"},
    {282, "signalfd", "fpu"},
    {283, "timerfd_create", "ix"},
    {284, "eventfd", "u"},
    {286, "timerfd_settime", "fxpp"},
    {288, "accept4", "fppx"},
    {289, "signalfd4", "fpux"},
    {290, "eventfd2", "ux"},
    {291, "epoll_create1", "x"},
    {292, "dup3", "ffx"},
    {293, "pipe2", "px"},
    {299, "recvmmsg", "fpuxp"},
    {302, "prlimit64", "iipp"},
    {307, "sendmmsg", "fpux"},
    {318, "getrandom", "pux"},
    {426, "io_uring_enter", "fuuxp"},
    {435, "clone3", "pu"},
    {441, "epoll_pwait2", "fpippu"},
};

/* The same calls as i386 numbers them (asm/unistd_32.h), with the i386-only ones a 32-bit
 * server sleeps in: waitpid, sigsuspend, socketcall, _newselect and the *_time64 calls. */
static const struct diag_syscall_info diag_syscalls_i386[] = {
    {1, "exit", "i"},
    {2, "fork", ""},
    {3, "read", "fpu"},
    {4, "write", "fpu"},
    {5, "open", "pxx"},
    {6, "close", "f"},
    {7, "waitpid", "ipx"},
    {11, "execve", "ppp"},
    {19, "lseek", "fix"},
    {20, "getpid", ""},
    {29, "pause", ""},
    {33, "access", "px"},
    {37, "kill", "ii"},
    {41, "dup", "f"},
    {42, "pipe", "p"},
    {45, "brk", "p"},
    {54, "ioctl", "fxp"},
    {55, "fcntl", "fix"},
    {63, "dup2", "ff"},
    {67, "sigaction", "ipp"},
    {72, "sigsuspend", "x"},
    {76, "getrlimit", "ip"},
    {78, "gettimeofday", "pp"},
    {82, "select", "p"},
    {85, "readlink", "ppu"},
    {90, "mmap", "p"},
    {91, "munmap", "pu"},
    {93, "ftruncate", "fu"},
    {102, "socketcall", "ip"},
    {106, "stat", "pp"},
    {108, "fstat", "fp"},
    {114, "wait4", "ipxp"},
    {118, "fsync", "f"},
    {120, "clone", "xppxp"},
    {125, "mprotect", "pux"},
    {140, "_llseek", "fuupi"},
    {141, "getdents", "fpu"},
    {142, "_newselect", "ipppp"},
    {143, "flock", "fx"},
    {145, "readv", "fpi"},
    {146, "writev", "fpi"},
    {148, "fdatasync", "f"},
    {158, "sched_yield", ""},
    {162, "nanosleep", "pp"},
    {168, "poll", "put"},
    {174, "rt_sigaction", "ippu"},
    {175, "rt_sigprocmask", "ippu"},
    {177, "rt_sigtimedwait", "pppu"},
    {179, "rt_sigsuspend", "pu"},
    {180, "pread64", "fpuu"},
    {181, "pwrite64", "fpuu"},
    {187, "sendfile", "ffpu"},
    {192, "mmap2", "puxxfu"},
    {195, "stat64", "pp"},
    {197, "fstat64", "fp"},
    {219, "madvise", "pux"},
    {220, "getdents64", "fpu"},
    {221, "fcntl64", "fix"},
    {239, "sendfile64", "ffpu"},
    {240, "futex", "pxipp"},
    {252, "exit_group", "i"},
    {254, "epoll_create", "i"},
    {255, "epoll_ctl", "fifp"},
    {256, "epoll_wait", "fpit"},
    {265, "clock_gettime", "ip"},
    {267, "clock_nanosleep", "ixpp"},
    {284, "waitid", "iipxp"},
    {295, "openat", "fpxx"},
    {300, "fstatat64", "fppx"},
    {308, "pselect6", "ipppp"},
    {309, "ppoll", "pupp"},
    {313, "splice", "fpfpux"},
    {319, "epoll_pwait", "fpitpu"},
    {321, "signalfd", "fpu"},
    {322, "timerfd_create", "ix"},
    {323, "eventfd", "u"},
    {325, "timerfd_settime", "fxpp"},
    {327, "signalfd4", "fpux"},
    {328, "eventfd2", "ux"},
    {329, "epoll_create1", "x"},
    {330, "dup3", "ffx"},
    {331, "pipe2", "px"},
    {337, "recvmmsg", "fpuxp"},
    {340, "prlimit64", "iipp"},
    {345, "sendmmsg", "fpux"},
    {355, "getrandom", "pux"},
    {359, "socket", "iii"},
    {361, "bind", "fpu"},
    {362, "connect", "fpu"},
    {363, "listen", "fi"},
    {364, "accept4", "fppx"},
    {365, "getsockopt", "fiipp"},
    {366, "setsockopt", "fiipu"},
    {367, "getsockname", "fpp"},
    {368, "getpeername", "fpp"},
    {369, "sendto", "fpuxpu"},
    {370, "sendmsg", "fpx"},
    {371, "recvfrom", "fpuxpp"},
    {372, "recvmsg", "fpx"},
    {373, "shutdown", "fi"},
    {407, "clock_nanosleep_time64", "ixpp"},
    {413, "pselect6_time64", "ipppp"},
    {414, "ppoll_time64", "pupp"},
    {417, "recvmmsg_time64", "fpuxp"},
    {421, "rt_sigtimedwait_time64", "pppu"},
    {422, "futex_time64", "pxipp"},
    {426, "io_uring_enter", "fuuxp"},
    {435, "clone3", "pu"},
    {441, "epoll_pwait2", "fpippu"},
};
#define DIAG_TABLE(t)                                                                              \
    {                                                                                              \
        t, sizeof(t) / sizeof((t)[0])                                                              \
    }
#else
/* Other architectures: numbers only (the tables above are x86_64's and i386's). */
static const struct diag_syscall_info diag_syscalls_none[] = {{-1, NULL, ""}};
#define diag_syscalls_x86_64 diag_syscalls_none
#define diag_syscalls_i386   diag_syscalls_none
#define DIAG_TABLE(t)                                                                              \
    {                                                                                              \
        t, 1                                                                                       \
    }
#endif

static const struct {
    const struct diag_syscall_info *rows;
    size_t n;
} diag_tables[] = {
    [DIAG_ABI_X86_64] = DIAG_TABLE(diag_syscalls_x86_64),
    [DIAG_ABI_I386] = DIAG_TABLE(diag_syscalls_i386),
};

const struct diag_syscall_info *diag_syscall_lookup(enum diag_abi abi, long nr)
{
    for (size_t i = 0; i < diag_tables[abi].n; i++) {
        const struct diag_syscall_info *row = &diag_tables[abi].rows[i];
        if (row->nr == nr && row->name != NULL)
            return row;
    }
    return NULL;
}

/* "recvfrom", or "syscall_999" in buf. */
const char *diag_syscall_name(enum diag_abi abi, long nr, char *buf, size_t size)
{
    const struct diag_syscall_info *info = diag_syscall_lookup(abi, nr);
    if (info != NULL)
        return info->name;
    snprintf(buf, size, "syscall_%ld", nr);
    return buf;
}

/* Error names, including the kernel's restart codes that ptrace shows at syscall exit. */
const char *diag_errno_name(int err, char *buf, size_t size)
{
    switch (err) {
    case 512:
        return "ERESTARTSYS";
    case 513:
        return "ERESTARTNOINTR";
    case 514:
        return "ERESTARTNOHAND";
    case 516:
        return "ERESTART_RESTARTBLOCK";
    default:
        break;
    }
    const char *name = strerrorname_np(err);
    if (name != NULL)
        return name;
    snprintf(buf, size, "errno %d", err);
    return buf;
}

/* An ELF header's ABI: i386 for ELFCLASS32 with e_machine EM_386 (3); else x86_64 (an x32
 * program's system calls are x86_64's with bit 30 set: shown as numbers). */
enum diag_abi diag_abi_of_elf(const unsigned char *hdr, size_t len)
{
    if (len < 20 || memcmp(hdr, "\177ELF", 4) != 0 || hdr[4] != 1 /* ELFCLASS32 */)
        return DIAG_ABI_X86_64;
    unsigned lo = hdr[18], hi = hdr[19];
    unsigned machine = hdr[5] == 2 /* big-endian */ ? lo << 8 | hi : hi << 8 | lo;
    return machine == 3 ? DIAG_ABI_I386 : DIAG_ABI_X86_64;
}

/* Is nr a call that waits for a child or a signal (what a wrapper or a master process does)? */
bool diag_syscall_waits_for_child(enum diag_abi abi, long nr)
{
    static const char *const waits[] = {
        "wait4",         "waitid", "waitpid",         "sigsuspend",
        "rt_sigsuspend", "pause",  "rt_sigtimedwait", "rt_sigtimedwait_time64"};
    const struct diag_syscall_info *info = diag_syscall_lookup(abi, nr);
    for (size_t i = 0; info != NULL && i < sizeof(waits) / sizeof(waits[0]); i++)
        if (strcmp(info->name, waits[i]) == 0)
            return true;
    return false;
}
