/* catalogue: finding, naming and listing scenario files (see catalogue.h). */
#include "catalogue.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_writer.h"
#include "scenario.h"

#ifndef CONNFAULT_SOURCE_SCENARIO_DIR
#define CONNFAULT_SOURCE_SCENARIO_DIR "scenarios"
#endif
#ifndef CONNFAULT_INSTALL_SCENARIO_DIR
#define CONNFAULT_INSTALL_SCENARIO_DIR "/usr/local/share/connfault/scenarios"
#endif

#define SCENARIO_SUFFIX ".ini"

bool catalogue_is_path(const char *name)
{
    return strchr(name, '/') != NULL || strstr(name, SCENARIO_SUFFIX) != NULL;
}

static bool is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* <dir of this executable>/../share/connfault/scenarios: an installation moved elsewhere, or
 * installed with `cmake --install --prefix` other than the configured one. */
static const char *scenario_dir_next_to_executable(void)
{
    static char dir[PATH_MAX];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    snprintf(dir, sizeof(dir), "%.4000s/../share/connfault/scenarios", self);
    return is_directory(dir) ? dir : NULL;
}

const char *scenario_builtin_dir(void)
{
    const char *env = getenv("CONNFAULT_SCENARIO_DIR");
    if (env != NULL && env[0] != '\0')
        return env;
    if (is_directory(CONNFAULT_SOURCE_SCENARIO_DIR))
        return CONNFAULT_SOURCE_SCENARIO_DIR;
    const char *next_to_us = scenario_dir_next_to_executable();
    return next_to_us ? next_to_us : CONNFAULT_INSTALL_SCENARIO_DIR;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_scenario_file(const char *name)
{
    size_t len = strlen(name), slen = strlen(SCENARIO_SUFFIX);
    return len > slen && strcmp(name + len - slen, SCENARIO_SUFFIX) == 0;
}

/* "DIR/NAME" in a new string, or NULL. */
static char *join(const char *dir, const char *name, const char *suffix)
{
    size_t len = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s/%s%s", dir, name, suffix);
    return path;
}

int catalogue_builtin(char ***out)
{
    return catalogue_files(scenario_builtin_dir(), out);
}

int catalogue_files(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **paths = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_scenario_file(de->d_name))
            continue;
        char **grown = realloc(paths, (size_t)(n + 1) * sizeof(*paths));
        if (!grown)
            break;
        paths = grown;
        if (!(paths[n] = join(dir, de->d_name, "")))
            break;
        n++;
    }
    closedir(d);
    qsort(paths, (size_t)n, sizeof(*paths), compare_names);
    *out = paths;
    return n;
}

void catalogue_free(char **paths, int n)
{
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* One name's file: a path as given, a built-in name only if its file is there. */
static char *resolve_one(const char *name, char *err, size_t errlen)
{
    char *path = catalogue_is_path(name) ? strdup(name)
                                         : join(scenario_builtin_dir(), name, SCENARIO_SUFFIX);
    if (!path) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!catalogue_is_path(name) && access(path, R_OK) != 0) {
        snprintf(err, errlen,
                 "unknown scenario '%s' (`connfault list` shows the built-in ones; give a path "
                 "for a file of your own)",
                 name);
        free(path);
        return NULL;
    }
    return path;
}

int catalogue_resolve(char **names, int nnames, char ***out, char *err, size_t errlen)
{
    if (nnames == 0) {
        int n = catalogue_builtin(out);
        if (n <= 0) {
            snprintf(err, errlen, "no built-in scenarios in %s", scenario_builtin_dir());
            return -1;
        }
        return n;
    }
    char **paths = calloc((size_t)nnames, sizeof(*paths));
    if (!paths) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < nnames; i++) {
        if (!(paths[i] = resolve_one(names[i], err, errlen))) {
            catalogue_free(paths, i);
            return -1;
        }
    }
    *out = paths;
    return nnames;
}

/* A scenario's name: its file's base name. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int compare_by_name(const void *a, const void *b)
{
    const char *pa = *(char *const *)a, *pb = *(char *const *)b;
    int c = strcmp(base_name(pa), base_name(pb));
    return c ? c : strcmp(pa, pb);
}

/* Is path (one of paths[0..n)) in the shard? Its rank by name decides. */
static bool in_shard(char *const *sorted, int n, const char *path,
                     const struct catalogue_shard *shard)
{
    for (int k = 0; k < n; k++)
        if (sorted[k] == path)
            return (unsigned)k % shard->count == shard->index - 1;
    return false;
}

int catalogue_shard_select(char **paths, int n, const struct catalogue_shard *shard)
{
    if (!shard || shard->count == 0 || n <= 0)
        return n;
    /* Ranked on a copy of the pointers, so the kept ones stay in the order given. */
    char **sorted = malloc((size_t)n * sizeof(*sorted));
    if (!sorted)
        return -1;
    memcpy(sorted, paths, (size_t)n * sizeof(*sorted));
    qsort(sorted, (size_t)n, sizeof(*sorted), compare_by_name);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (in_shard(sorted, n, paths[i], shard))
            paths[kept++] = paths[i];
        else
            free(paths[i]);
    }
    free(sorted);
    return kept;
}

static void list_one(FILE *out, const struct scenario *sc, const struct catalogue_list_opts *opts,
                     bool first)
{
    if (!opts->json) {
        fprintf(out, "%-20s %s\n", sc->name, sc->description ? sc->description : "");
        return;
    }
    fputs(first ? "\n  {\"name\": " : ",\n  {\"name\": ", out);
    json_put_string(out, sc->name);
    fputs(", \"description\": ", out);
    json_put_string(out, sc->description ? sc->description : "");
    fputs(", \"path\": ", out);
    json_put_string(out, sc->path);
    fprintf(out, ", \"sandbox\": %s, \"privileges\": \"%s\", \"expected_duration_s\": ",
            sc->needs_sandbox ? "true" : "false",
            sc->needs_sandbox ? "root or user namespaces" : "none");
    json_put_double(out, (double)((uint64_t)sc->duration_ms + opts->grace_ms) / 1000.0);
    fputc('}', out);
}

int catalogue_list_some(FILE *out, FILE *errs, const char *prog,
                        const struct catalogue_list_opts *opts)
{
    char **paths = NULL;
    int total = catalogue_builtin(&paths);
    if (total <= 0) {
        fprintf(errs, "%s: no built-in scenarios in %s\n", prog, scenario_builtin_dir());
        return -1;
    }
    int n = catalogue_shard_select(paths, total, &opts->shard);
    if (n < 0) {
        catalogue_free(paths, total);
        fprintf(errs, "%s: out of memory\n", prog);
        return -1;
    }
    /* Placeholders need some value to expand to; a listing shows only names. */
    struct scenario_vars vars = {
        .host = "127.0.0.1", .probe_path = "/", .large_path = "/bytes/1048576"};
    int status = 0, listed = 0;
    if (opts->json)
        fputc('[', out);
    for (int i = 0; i < n; i++) {
        struct scenario sc;
        char err[512];
        if (scenario_load(paths[i], &vars, &sc, err, sizeof(err)) < 0) {
            fprintf(errs, "%s: %s\n", prog, err);
            status = -1;
            continue;
        }
        list_one(out, &sc, opts, listed++ == 0);
        scenario_free(&sc);
    }
    if (opts->json)
        fputs(listed ? "\n]\n" : "]\n", out);
    catalogue_free(paths, n);
    return status;
}
