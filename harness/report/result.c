/* result: see result.h. */
#include "result.h"

#include "cf_escape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- check fields ---- */

static struct report_field *check_next_field(struct check_result *c, const char *key,
                                             enum field_type type)
{
    if (c->nfields >= REPORT_MAX_FIELDS)
        return NULL;
    struct report_field *f = &c->fields[c->nfields++];
    memset(f, 0, sizeof(*f));
    snprintf(f->key, sizeof(f->key), "%s", key);
    f->type = type;
    return f;
}

void check_add_int(struct check_result *c, const char *key, int64_t v)
{
    struct report_field *f = check_next_field(c, key, FIELD_INT);
    if (f != NULL)
        f->i = v;
}

void check_add_double(struct check_result *c, const char *key, double v)
{
    struct report_field *f = check_next_field(c, key, FIELD_DOUBLE);
    if (f != NULL)
        f->d = v;
}

void check_add_str(struct check_result *c, const char *key, const char *v)
{
    struct report_field *f = check_next_field(c, key, FIELD_STR);
    if (f != NULL)
        snprintf(f->s, sizeof(f->s), "%s", v ? v : "");
}

const char *verdict_name(enum verdict v)
{
    switch (v) {
    case VERDICT_PASS:
        return "pass";
    case VERDICT_FAIL:
        return "fail";
    case VERDICT_SKIP:
        return "skip";
    case VERDICT_ERROR:
        return "error";
    }
    return "unknown";
}

const char *check_status_name(enum check_status s)
{
    switch (s) {
    case CHECK_OK:
        return "ok";
    case CHECK_FAILED:
        return "failed";
    case CHECK_NOT_CHECKED:
        return "not_checked";
    }
    return "unknown";
}

const char *exhaustion_how_name(enum exhaustion_how how)
{
    switch (how) {
    case EXHAUSTION_NOT_MEASURED:
        return "";
    case EXHAUSTION_OUT_OF_FDS:
        return "out-of-fds";
    case EXHAUSTION_STOPPED:
        return "stopped-accepting";
    case EXHAUSTION_NOT_REACHED:
        return "not-reached";
    }
    return "";
}

void result_escape_bytes(const char *data, size_t len, char *out, size_t cap)
{
    cf_escape(data, len, out, cap, CF_ESCAPE_QUOTE);
}

void run_report_free(struct run_report *rep)
{
    if (rep == NULL)
        return;
    for (size_t i = 0; i < rep->nscenarios; i++) {
        free(rep->scenarios[i].diagnosis);
        free(rep->scenarios[i].diagnosis_summary);
        free(rep->scenarios[i].diagnosis_json);
    }
    free(rep->scenarios);
    rep->scenarios = NULL;
    rep->nscenarios = 0;
}
