/* Temp dirs and whole files for the harness tests: see support.h for the contract. */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *ts_nonnull(void *p)
{
    if (!p)
        abort();
    return p;
}

int ts_tmpdir_create(char *path, size_t path_cap, const char *name)
{
    int n = snprintf(path, path_cap, "/tmp/%s.XXXXXX", name);
    if (n < 0 || (size_t)n >= path_cap)
        return -ENAMETOOLONG;
    return mkdtemp(path) ? 0 : -errno;
}

static int ts_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = type == FTW_DP ? rmdir(path) : unlink(path);
    return rc < 0 && errno != ENOENT ? -errno : 0;
}

int ts_tmpdir_remove(const char *path)
{
    if (strncmp(path, "/tmp/", 5) != 0 || path[5] == '\0' || strstr(path, "/.."))
        return -EINVAL;
    int rc = nftw(path, ts_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc < 0)
        return -errno;
    return rc; /* 0, or the first -errno from ts_remove_entry */
}

char *ts_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, used = 0, n;
    char *buf = ts_nonnull(malloc(cap));
    while ((n = fread(buf + used, 1, cap - used - 1, f)) > 0) {
        used += n;
        if (cap - used - 1 == 0) {
            cap *= 2;
            buf = ts_nonnull(realloc(buf, cap));
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}

int ts_write_file(const char *path, const char *text)
{
    return ts_write_bytes(path, text, strlen(text));
}

int ts_write_bytes(const char *path, const void *data, size_t len)
{
    const char *text = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        done += (size_t)n;
    }
    return close(fd) < 0 ? -errno : 0;
}

int ts_www_dir_create(char *path, size_t path_cap, const char *name)
{
    char sub[512];
    int rc = ts_tmpdir_create(path, path_cap, name);
    const char *const dirs[] = {"www", "tmp"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", path, dirs[i]);
        rc = mkdir(sub, 0755) < 0 ? -errno : 0;
    }
    snprintf(sub, sizeof(sub), "%s/www/index.html", path);
    return rc < 0 ? rc : ts_write_file(sub, "<html><body>connfault</body></html>\n");
}
