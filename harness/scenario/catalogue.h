/* catalogue: where scenarios come from. The built-in ones are the *.ini files of
 * scenario_builtin_dir(); a name on the command line is either one of them ("slowloris") or
 * a path to a file of the user's own (it contains a '/' or ".ini"). */
#ifndef CONNFAULT_CATALOGUE_H
#define CONNFAULT_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Directory holding the built-in scenarios: $CONNFAULT_SCENARIO_DIR, else the source tree's
 * scenarios/ (set at build time), else the installed share directory. */
const char *scenario_builtin_dir(void);

/* Is this name a file path rather than a built-in name? */
bool catalogue_is_path(const char *name);

/* The built-in scenario files, sorted by path. Returns the count (*out owned by the caller,
 * free with catalogue_free), or -errno when the directory cannot be read. */
int catalogue_builtin(char ***out);

/* The same for the scenario files (*.ini) of any directory (catalogue_builtin is this for
 * scenario_builtin_dir()): for tests holding a given tree's files to something. */
int catalogue_files(const char *dir, char ***out);

/* The files the names stand for, in order (none = every built-in one). Returns the count
 * (*out: free with catalogue_free), or -1 with a message for the user in err (an unknown
 * built-in name, no built-in scenarios, no memory). Files given by path are not opened. */
int catalogue_resolve(char **names, int nnames, char ***out, char *err, size_t errlen);

void catalogue_free(char **paths, int n);

/* ---- shards: one CI job's slice of a suite ----------------------------------------------
 * Shard index (1-based) of count: the scenarios are ranked by name (the file's base name;
 * ties by path), and the one ranked k (from 0) belongs to shard k % count + 1. So every
 * scenario is in exactly one shard, and a shard is the same on any machine and on every call,
 * whatever order the names came in. count 0 means no sharding. */
struct catalogue_shard {
    unsigned index, count;
};

/* Keep the paths of the shard, in their given order, and free the others. Returns the new
 * count (0 when the shard is empty: more shards than scenarios). */
int catalogue_shard_select(char **paths, int n, const struct catalogue_shard *shard);

/* `connfault list --shard I/N --json`. */
struct catalogue_list_opts {
    struct catalogue_shard shard;
    bool json;         /* a JSON array of objects, see catalogue_list_some */
    unsigned grace_ms; /* run's grace, for expected_duration_s */
};

/* `connfault list`: the built-in scenarios of a shard, one line each ("NAME  description") on
 * out. A file that does not load is named on errs as "PROG: FILE:LINE: message" and skipped;
 * returns 0, or -1 if any file failed to load or there are none. With json, out gets one array of
 * {"name", "description", "path", "sandbox" (needs silent drops: a network namespace),
 * "privileges" ("none", or "root or user namespaces" for the sandbox),
 * "expected_duration_s" (the fault phase plus grace_ms: an estimate)}. */
int catalogue_list_some(FILE *out, FILE *errs, const char *prog,
                        const struct catalogue_list_opts *opts);

#endif
