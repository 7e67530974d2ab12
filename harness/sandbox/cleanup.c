/* cleanup: stale temporary directories and nftables tables of dead connfault processes. */
#include "cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool owner_is_gone(const char *pid_text)
{
    char *end;
    long pid = strtol(pid_text, &end, 10);
    if (end == pid_text || pid <= 0 || pid > 4194304)
        return false; /* not one of ours: leave it */
    return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void remove_tree_of_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%.3800s/%s", dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int cleanup_tmpdirs(FILE *out)
{
    const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    DIR *d = opendir(base);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "connfault-", 10) != 0 || !owner_is_gone(de->d_name + 10))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%.3800s/%s", base, de->d_name);
        remove_tree_of_files(path);
        if (out)
            fprintf(out, "connfault: removed %s (its connfault is gone)\n", path);
        removed++;
    }
    closedir(d);
    return removed;
}

/* Tables named connfault_PID in this network namespace (only ever there if an attached run
 * was killed; the sandbox's own tables vanish with its namespace). Needs CAP_NET_ADMIN. */
static int cleanup_nft_tables(FILE *out)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft)
        return 0;
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    int removed = 0;
    if (nft_run_cmd_from_buffer(nft, "list tables") == 0) {
        char *list = strdup(nft_ctx_get_output_buffer(nft));
        for (char *line = list ? strtok(list, "\n") : NULL; line; line = strtok(NULL, "\n")) {
            char family[16], name[64];
            if (sscanf(line, "table %15s %63s", family, name) != 2 ||
                strncmp(name, "connfault_", 10) != 0 || !owner_is_gone(name + 10))
                continue;
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "delete table %s %s", family, name);
            if (nft_run_cmd_from_buffer(nft, cmd) == 0) {
                if (out)
                    fprintf(out, "connfault: removed nftables table %s %s\n", family, name);
                removed++;
            }
        }
        free(list);
    }
    nft_ctx_free(nft);
    return removed;
}

/* The same name as TARGET_OWNER_ENV in observe/target_internal.h (this library does not link
 * that one): every target a connfault starts has CONNFAULT_OWNER=<its pid> in its environment. */
#define OWNER_ENV "CONNFAULT_OWNER="

/* The owner named in pid's environment ("" when none): a NUL-separated list of NAME=value. */
static void target_owner(const char *pid, char *owner, size_t len)
{
    char path[300], env[65536];
    owner[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%s/environ", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    size_t n = fread(env, 1, sizeof(env) - 1, f);
    fclose(f);
    env[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(env + i) + 1)
        if (strncmp(env + i, OWNER_ENV, strlen(OWNER_ENV)) == 0)
            snprintf(owner, len, "%s", env + i + strlen(OWNER_ENV));
}

/* Targets whose connfault is gone (possible only where it could not give them a PID
 * namespace that dies with it): each is killed and named. */
static int cleanup_targets(FILE *out)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int ended = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char owner[32], comm[64] = "?", path[300];
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        target_owner(de->d_name, owner, sizeof(owner));
        if (!owner[0] || !owner_is_gone(owner) || kill(pid, SIGKILL) < 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
        FILE *f = fopen(path, "re");
        if (f && fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        if (f)
            fclose(f);
        if (out)
            fprintf(out, "connfault: ended pid %d (%s), a target of connfault %s (gone)\n",
                    (int)pid, comm, owner);
        ended++;
    }
    closedir(d);
    return ended;
}

int cleanup_stale(FILE *out)
{
    int removed = cleanup_targets(out);
    removed += cleanup_tmpdirs(out);
    if (geteuid() == 0)
        removed += cleanup_nft_tables(out);
    return removed;
}
