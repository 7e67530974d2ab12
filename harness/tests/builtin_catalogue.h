/* The built-in scenarios as the catalogue tests see them: every *.ini of a directory loaded,
 * in name order, each with its `catches` pairs (scenarios/README.md, "The bug catalogue").
 * Shared by test_selftest.c (runs the pairs) and test_catalogue_docs.c (holds the docs to
 * them). Header-only: the tests link the harness libraries, not each other. */
#ifndef CONNFAULT_TEST_BUILTIN_CATALOGUE_H
#define CONNFAULT_TEST_BUILTIN_CATALOGUE_H

#include "scenario.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builtin_catalogue {
    struct scenario *sc; /* sorted by name */
    size_t n;
};

static inline int builtin_catalogue_is_ini(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 4 && strcmp(e->d_name + n - 4, ".ini") == 0;
}

/* Loads every *.ini of dir. Returns 0, or -1 with "FILE:LINE: message" (or the directory's
 * error) in err; what was loaded is kept either way, for builtin_catalogue_free. */
static inline int builtin_catalogue_load(const char *dir, struct builtin_catalogue *cat, char *err,
                                         size_t errlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, builtin_catalogue_is_ini, alphasort);
    cat->n = 0;
    cat->sc = n > 0 ? calloc((size_t)n, sizeof(*cat->sc)) : NULL;
    if (n <= 0 || cat->sc == NULL) {
        snprintf(err, errlen, "%s: %s", dir, n < 0 ? strerror(errno) : "no scenario files");
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(n >= 0 ? names : NULL);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (rc == 0 && scenario_load(path, NULL, &cat->sc[cat->n], err, errlen) == 0)
            cat->n++;
        else
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

static inline void builtin_catalogue_free(struct builtin_catalogue *cat)
{
    for (size_t i = 0; i < cat->n; i++)
        scenario_free(&cat->sc[i]);
    free(cat->sc);
    cat->sc = NULL;
    cat->n = 0;
}

#endif
