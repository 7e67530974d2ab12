/* The built-in scenarios as the catalogue tests see them: every *.ini of a directory loaded,
 * in name order, each with its `catches` pairs (scenarios/README.md, "The bug catalogue").
 * Shared by test_selftest.c (runs the pairs) and test_catalogue_docs.c (holds the docs to
 * them). Header-only: the tests link the harness libraries, not each other. The files are
 * found by the scenario library's own catalogue (catalogue.h). */
#ifndef CONNFAULT_TEST_BUILTIN_CATALOGUE_H
#define CONNFAULT_TEST_BUILTIN_CATALOGUE_H

#include "catalogue.h"
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builtin_catalogue {
    struct scenario *sc; /* sorted by name */
    size_t n;
};

/* Loads every *.ini of dir (catalogue_files). Returns 0, or -1 with "FILE:LINE: message" (or
 * the directory's error) in err; what was loaded is kept either way, for
 * builtin_catalogue_free. */
static inline int builtin_catalogue_load(const char *dir, struct builtin_catalogue *cat, char *err,
                                         size_t errlen)
{
    char **paths = NULL;
    int n = catalogue_files(dir, &paths);
    cat->n = 0;
    cat->sc = n > 0 ? calloc((size_t)n, sizeof(*cat->sc)) : NULL;
    if (n <= 0 || cat->sc == NULL) {
        snprintf(err, errlen, "%s: %s", dir, n < 0 ? strerror(-n) : "no scenario files");
        catalogue_free(paths, n > 0 ? n : 0);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (scenario_load(paths[i], NULL, &cat->sc[cat->n], err, errlen) == 0)
            cat->n++;
        else
            rc = -1;
    }
    catalogue_free(paths, n);
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
