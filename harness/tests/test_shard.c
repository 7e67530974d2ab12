/* Shards (--shard I/N) and `connfault list --json`: what a CI matrix spreads over machines.
 * For N from 1 to 5 the N shards of the built-in suite are disjoint, their union is the suite,
 * and each is the same on every call and whatever order the names came in; the command line
 * shows the same shards, refuses bad values naming the flag, and lists the suite as JSON. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "support.h"

#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif

#define MAX_SHARDS 5
#define RUN_MS     20000

static char *strdup_or_die(const char *s)
{
    return ts_nonnull(strdup(s));
}

/* The built-in suite's files, as catalogue_builtin gives them. */
static int suite(char ***paths)
{
    int n = catalogue_builtin(paths);
    ck_assert_msg(n > MAX_SHARDS, "only %d built-in scenarios", n);
    return n;
}

/* A copy of paths[0..n) in reverse order: a shard must not depend on the order given. */
static char **reversed_copy(char **paths, int n)
{
    char **copy = ts_nonnull(calloc((size_t)n, sizeof(*copy)));
    for (int i = 0; i < n; i++)
        copy[i] = strdup_or_die(paths[n - 1 - i]);
    return copy;
}

static int index_of(char **paths, int n, const char *path)
{
    for (int i = 0; i < n; i++)
        if (strcmp(paths[i], path) == 0)
            return i;
    return -1;
}

/* Shard index of count, computed on the suite in the order given and reversed. */
static int shard_of(char **all, int n, unsigned index, unsigned count, bool reverse, char ***out)
{
    char **copy = reverse ? reversed_copy(all, n) : NULL;
    if (!copy) {
        copy = ts_nonnull(calloc((size_t)n, sizeof(*copy)));
        for (int i = 0; i < n; i++)
            copy[i] = strdup_or_die(all[i]);
    }
    const struct catalogue_shard shard = {index, count};
    int kept = catalogue_shard_select(copy, n, &shard);
    ck_assert_int_ge(kept, 0);
    *out = copy;
    return kept;
}

START_TEST(shards_partition_the_suite)
{
    char **all;
    int n = suite(&all);
    for (unsigned count = 1; count <= MAX_SHARDS; count++) {
        int *owner = ts_nonnull(calloc((size_t)n, sizeof(*owner)));
        for (unsigned index = 1; index <= count; index++) {
            char **a, **b;
            int na = shard_of(all, n, index, count, false, &a);
            int nb = shard_of(all, n, index, count, true, &b);
            ck_assert_msg(na == nb, "shard %u/%u: %d or %d scenarios", index, count, na, nb);
            /* Balanced: ranks are dealt out one by one. */
            ck_assert_int_le(na, (n + (int)count - 1) / (int)count);
            ck_assert_int_ge(na, n / (int)count);
            for (int i = 0; i < na; i++) {
                ck_assert_msg(index_of(b, nb, a[i]) >= 0, "%u/%u: %s only in one order", index,
                              count, a[i]);
                int at = index_of(all, n, a[i]);
                ck_assert_int_ge(at, 0);
                ck_assert_msg(owner[at] == 0, "%s in shards %d and %u of %u", a[i], owner[at],
                              index, count);
                owner[at] = (int)index;
            }
            catalogue_free(a, na);
            catalogue_free(b, nb);
        }
        for (int i = 0; i < n; i++)
            ck_assert_msg(owner[i] != 0, "%s in no shard of %u", all[i], count);
        free(owner);
    }
    catalogue_free(all, n);
}
END_TEST

START_TEST(more_shards_than_scenarios_leaves_some_empty)
{
    char *two[] = {strdup_or_die("/x/b.ini"), strdup_or_die("/y/a.ini")};
    const struct catalogue_shard third = {3, 3};
    ck_assert_int_eq(catalogue_shard_select(two, 2, &third), 0);
    char *again[] = {strdup_or_die("/x/b.ini"), strdup_or_die("/y/a.ini")};
    const struct catalogue_shard first = {1, 3};
    ck_assert_int_eq(catalogue_shard_select(again, 2, &first), 1);
    ck_assert_str_eq(again[0], "/y/a.ini"); /* ranked by name, not by path */
    free(again[0]);
}
END_TEST

/* ---- the command line --------------------------------------------------------------------- */

static struct ts_proc run_connfault(const char *const *argv)
{
    struct ts_proc p;
    const struct ts_run_opts opts = {.timeout_ms = RUN_MS};
    ck_assert_int_eq(ts_run(&p, argv, &opts), 0);
    ck_assert_msg(!p.timed_out, "%s %s: still running after %d ms", argv[1], argv[2], RUN_MS);
    return p;
}

/* The first word of every line: `connfault list`'s names. */
static size_t names_of(char *text, char **names, size_t cap)
{
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ck_assert_uint_lt(n, cap);
        line[strcspn(line, " ")] = '\0';
        names[n++] = line;
    }
    return n;
}

START_TEST(list_shows_each_shard_once)
{
    struct ts_proc whole = run_connfault(TS_ARGV(CONNFAULT_BIN, "list"));
    ck_assert_int_eq(whole.status, 0);
    char *all[256];
    size_t n = names_of(whole.out, all, 256);
    int seen[256] = {0};
    for (unsigned index = 1; index <= 3; index++) {
        char arg[16];
        snprintf(arg, sizeof(arg), "%u/3", index);
        struct ts_proc p = run_connfault(TS_ARGV(CONNFAULT_BIN, "list", "--shard", arg));
        ck_assert_msg(p.status == 0, "list --shard %s: %d: %s", arg, p.status, p.err);
        char *names[256];
        size_t k = names_of(p.out, names, 256);
        for (size_t i = 0; i < k; i++) {
            size_t at = 0;
            while (at < n && strcmp(all[at], names[i]) != 0)
                at++;
            ck_assert_msg(at < n, "%s: not in the list", names[i]);
            seen[at]++;
        }
        ts_proc_free(&p);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(seen[i] == 1, "%s in %d shards of 3", all[i], seen[i]);
    ts_proc_free(&whole);
}
END_TEST

static const char *const bad_shards[] = {"0/3",  "4/3",  "x/y", "1/0", "1/3x",
                                         "-1/3", "1/ 3", "",    "2"};

START_TEST(bad_shard_is_a_usage_error_naming_the_flag)
{
    for (int cmd = 0; cmd < 2; cmd++) {
        struct ts_proc p =
            run_connfault(TS_ARGV(CONNFAULT_BIN, cmd ? "run" : "list", "--shard", bad_shards[_i]));
        ck_assert_msg(p.status == 2, "--shard '%s': exit status %d", bad_shards[_i], p.status);
        ck_assert_msg(strstr(p.err, "--shard: invalid value"), "said: %s", p.err);
        ts_proc_free(&p);
    }
}
END_TEST

/* An empty shard runs nothing and passes: a matrix wider than the suite stays green. */
START_TEST(run_of_an_empty_shard_passes)
{
    struct ts_proc p =
        run_connfault(TS_ARGV(CONNFAULT_BIN, "run", "--shard", "2/2", "connect-close"));
    ck_assert_msg(p.status == 0, "exit status %d: %s", p.status, p.err);
    ck_assert_ptr_nonnull(strstr(p.err, "shard 2/2 has no scenarios"));
    ck_assert_ptr_nonnull(strstr(p.out, "0 passed, 0 failed"));
    ts_proc_free(&p);
}
END_TEST

static void check_json_entry(const struct ts_json *e)
{
    const char *name = ts_json_str(e, "name");
    ck_assert_ptr_nonnull(name);
    ck_assert_ptr_nonnull(ts_json_str(e, "description"));
    const char *path = ts_json_str(e, "path");
    ck_assert_msg(path && strstr(path, name) && strstr(path, ".ini"), "%s: path %s", name, path);
    int sandbox = ts_json_bool(e, "sandbox");
    ck_assert_int_ge(sandbox, 0);
    const char *priv = ts_json_str(e, "privileges");
    ck_assert_str_eq(priv, sandbox ? "root or user namespaces" : "none");
    const char *secs = ts_json_num(e, "expected_duration_s");
    ck_assert_msg(secs && strtod(secs, NULL) >= 5, "%s: expected_duration_s %s", name, secs);
}

START_TEST(list_json_names_every_builtin_scenario)
{
    struct ts_proc p = run_connfault(TS_ARGV(CONNFAULT_BIN, "list", "--json"));
    ck_assert_msg(p.status == 0, "list --json: %d: %s", p.status, p.err);
    char error[128];
    struct ts_json *root = ts_json_parse(p.out, error, sizeof(error));
    ck_assert_msg(root != NULL, "not JSON: %s:\n%s", error, p.out);
    ck_assert_int_eq(ts_json_type(root), TS_JSON_ARRAY);
    char **all;
    int n = suite(&all);
    ck_assert_uint_eq(ts_json_count(root), (size_t)n);
    bool some_sandbox = false;
    for (int i = 0; i < n; i++) {
        const struct ts_json *e = ts_json_at(root, (size_t)i);
        check_json_entry(e);
        ck_assert_str_eq(ts_json_str(e, "path"), all[i]);
        some_sandbox |= ts_json_bool(e, "sandbox") == 1;
    }
    ck_assert_msg(some_sandbox, "no scenario needs the sandbox: drop-* do");
    catalogue_free(all, n);
    ts_json_free(root);
    ts_proc_free(&p);

    /* A shard's JSON is that shard. */
    p = run_connfault(TS_ARGV(CONNFAULT_BIN, "list", "--json", "--shard", "1/5"));
    root = ts_json_parse(p.out, error, sizeof(error));
    ck_assert_msg(root != NULL, "not JSON: %s:\n%s", error, p.out);
    ck_assert_uint_eq(ts_json_count(root), (size_t)(n + 4) / 5);
    ts_json_free(root);
    ts_proc_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shard");
    TCase *library = tcase_create("catalogue_shard_select");
    tcase_add_test(library, shards_partition_the_suite);
    tcase_add_test(library, more_shards_than_scenarios_leaves_some_empty);
    suite_add_tcase(s, library);
    /* Each runs connfault: bounded by RUN_MS per call. */
    TCase *cli = tcase_create("command line");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, list_shows_each_shard_once);
    tcase_add_loop_test(cli, bad_shard_is_a_usage_error_naming_the_flag, 0,
                        (int)(sizeof(bad_shards) / sizeof(bad_shards[0])));
    tcase_add_test(cli, run_of_an_empty_shard_passes);
    tcase_add_test(cli, list_json_names_every_builtin_scenario);
    suite_add_tcase(s, cli);
    return ts_run_suite(s);
}
