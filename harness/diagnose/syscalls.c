/* syscalls: the names and argument kinds of the system calls a diagnosis shows, and the names
 * of the errors they fail with. */
#include "diagnose_internal.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
static const struct diag_syscall_info diag_syscalls[] = {
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
#else
/* Other architectures: numbers only (the table above is x86_64's). */
static const struct diag_syscall_info diag_syscalls[] = {{-1, NULL, ""}};
#endif

const struct diag_syscall_info *diag_syscall_lookup(long nr)
{
    for (size_t i = 0; i < sizeof(diag_syscalls) / sizeof(diag_syscalls[0]); i++) {
        if (diag_syscalls[i].nr == nr && diag_syscalls[i].name != NULL)
            return &diag_syscalls[i];
    }
    return NULL;
}

/* "recvfrom", or "syscall_999" in buf. */
const char *diag_syscall_name(long nr, char *buf, size_t size)
{
    const struct diag_syscall_info *info = diag_syscall_lookup(nr);
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
