/* procs: what a test sees of processes from /proc (see support.h). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

int ts_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

bool ts_harness_tmpdir_left(const char *base, pid_t pid)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "connfault-%d.", (int)pid);
    DIR *d = opendir(base);
    bool found = false;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        found |= strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return found;
}
