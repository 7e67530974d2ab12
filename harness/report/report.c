/* report: human lines, JUnit XML, JSON and TAP for a run's results.
 *
 * The writers only format what they are given. Strings in a report can hold anything a server
 * or a command line produced (control characters, invalid UTF-8), so every string goes out
 * through an escaper for its format: sanitized for a terminal, XML 1.0 legal characters for
 * JUnit, \u escapes for JSON, and for TAP '\#' on a test line and YAML double-quoted
 * escapes in its diagnostics. Files are written under PATH.tmp and renamed, so a reader
 * (a CI step) never sees half a report.
 */
#include "report.h"

#include "json_writer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COLOR_GREEN  "\033[32m"
#define COLOR_RED    "\033[31m"
#define COLOR_YELLOW "\033[33m"
#define COLOR_BOLD   "\033[1m"
#define COLOR_RESET  "\033[0m"

/* ---- human output ---- */

/* Text for a terminal: control characters (a server's error text could hold escape
 * sequences) become '?'. */
static void put_sanitized(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static const char *verdict_color(enum verdict v)
{
    return v == VERDICT_PASS                         ? COLOR_GREEN
           : v == VERDICT_FAIL || v == VERDICT_ERROR ? COLOR_RED
                                                     : COLOR_YELLOW;
}

/* One client group's evidence in one line: "group readers: abort-after-bytes reached by
 * 198/200; 200 started, 200 connected, 200 sent; status 200 x198, 404 x2; read 1024..65536 B
 * (median 30000)". */
static void format_group(const struct group_evidence *g, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "group %s: %s reached by %llu/%llu; %llu started, %llu connected, %llu sent",
                     g->name, g->fault, (unsigned long long)g->reached,
                     (unsigned long long)g->planned, (unsigned long long)g->started,
                     (unsigned long long)g->connected, (unsigned long long)g->request_sent);
    size_t used = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
    for (size_t i = 0; i < g->nstatuses && used < cap; i++) {
        n = snprintf(out + used, cap - used, "%s%d x%llu", i ? ", " : "; status ",
                     g->statuses[i].status, (unsigned long long)g->statuses[i].clients);
        used = n > 0 && (size_t)n < cap - used ? used + (size_t)n : cap - 1;
    }
    if (used < cap - 1) {
        n = snprintf(out + used, cap - used, "; read %llu..%llu B (median %llu)",
                     (unsigned long long)g->bytes_min, (unsigned long long)g->bytes_max,
                     (unsigned long long)g->bytes_median);
        used = n > 0 && (size_t)n < cap - used ? used + (size_t)n : cap - 1;
    }
    if (g->capture_peak_open && used < cap - 1) {
        n = snprintf(out + used, cap - used, "; at most %llu open at once (the capture: %llu)",
                     (unsigned long long)g->peak_open, (unsigned long long)g->capture_peak_open);
        used = n > 0 && (size_t)n < cap - used ? used + (size_t)n : cap - 1;
    }
    if (g->not_exercised && used < cap - 1)
        snprintf(out + used, cap - used, "; %llu not exercised (unfinished at the cap)",
                 (unsigned long long)g->not_exercised);
}

/* The summaries of the checks with the given status, joined by "; ". */
static size_t print_summaries(FILE *out, const struct scenario_result *r, enum check_status status,
                              const char *const *only, size_t nonly)
{
    size_t printed = 0;
    for (size_t i = 0; i < r->nchecks; i++) {
        const struct check_result *c = &r->checks[i];
        bool wanted = nonly == 0;
        for (size_t j = 0; j < nonly; j++)
            wanted = wanted || strcmp(c->name, only[j]) == 0;
        if (c->status != status || !wanted)
            continue;
        fputs(printed++ ? "; " : "", out);
        put_sanitized(out, c->summary);
    }
    return printed;
}

static void print_indented(FILE *out, const char *label, const char *text)
{
    /* continuation lines line up under the first line's text */
    int indent = 4 + (int)strlen(label);
    fprintf(out, "    %s", label);
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        char buf[1024];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), line);
        if (line != text)
            fprintf(out, "%*s", indent, "");
        put_sanitized(out, buf);
        fputc('\n', out);
        line += len + (line[len] == '\n');
    }
}

static size_t count_status(const struct scenario_result *r, enum check_status status)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nchecks; i++)
        n += r->checks[i].status == status;
    return n;
}

/* "exhausted: " or "not exhausted: " (then the cause and fix). */
static const char *exhaustion_label(const struct exhaustion_evidence *x)
{
    return x->how == EXHAUSTION_NOT_REACHED ? "not exhausted: " : "exhausted: ";
}

/* PASS shows the two headline numbers (did it keep serving, did it leak fds), FAIL the failed
 * checks, SKIP the reason. */
static void print_scenario_detail(FILE *out, const struct scenario_result *r)
{
    static const char *const headline[] = {"accepting", "fds"};
    if (r->verdict == VERDICT_SKIP || r->verdict == VERDICT_ERROR) {
        put_sanitized(out, r->reason);
    } else if (r->verdict == VERDICT_FAIL) {
        if (print_summaries(out, r, CHECK_FAILED, NULL, 0) == 0)
            put_sanitized(out, r->reason);
    } else {
        print_summaries(out, r, CHECK_OK, headline, 2);
        if (r->exhaustion.how == EXHAUSTION_OUT_OF_FDS || r->exhaustion.how == EXHAUSTION_STOPPED) {
            fputs("; exhausted: ", out); /* what shows the fault happened */
            put_sanitized(out, r->exhaustion.summary);
        }
        size_t unchecked = count_status(r, CHECK_NOT_CHECKED);
        if (unchecked > 0)
            fprintf(out, " (%zu not checked)", unchecked);
    }
}

void report_print_scenario(FILE *out, const struct scenario_result *r, bool verbose, bool color)
{
    const char *word = r->verdict == VERDICT_PASS    ? "PASS"
                       : r->verdict == VERDICT_FAIL  ? "FAIL"
                       : r->verdict == VERDICT_ERROR ? "ERROR"
                                                     : "SKIP";
    if (color)
        fprintf(out, "%s%s%s  ", verdict_color(r->verdict), word, COLOR_RESET);
    else
        fprintf(out, "%s  ", word);
    put_sanitized(out, r->name);
    fprintf(out, "%*s %5.1fs  ", (int)(strlen(r->name) < 20 ? 20 - strlen(r->name) : 0), "",
            r->duration_s);
    print_scenario_detail(out, r);
    fputc('\n', out);
    /* What the clients did: every group with -v or for an error; for a failure, the groups
     * whose fault did not happen (the failure may not be about the scenario's fault). */
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct group_evidence *g = &r->groups[i];
        bool missed = g->reached * 2 < g->planned;
        if (verbose || r->verdict == VERDICT_ERROR || (r->verdict == VERDICT_FAIL && missed)) {
            char line[512];
            format_group(g, line, sizeof(line));
            print_indented(out, "", line);
        }
    }
    /* with -v; and for a failure when the fault did not happen (as the groups above) */
    if ((verbose && r->exhaustion.how != EXHAUSTION_NOT_MEASURED) ||
        (r->verdict == VERDICT_FAIL && r->exhaustion.how == EXHAUSTION_NOT_REACHED))
        print_indented(out, exhaustion_label(&r->exhaustion), r->exhaustion.summary);
    if (verbose) {
        for (size_t i = 0; i < r->nchecks; i++) {
            const struct check_result *c = &r->checks[i];
            const char *label = c->status == CHECK_OK       ? "ok      "
                                : c->status == CHECK_FAILED ? "FAILED  "
                                                            : "not checked: ";
            print_indented(out, label, c->summary);
        }
    }
    if ((verbose || r->verdict == VERDICT_FAIL) && r->capture_path[0] != '\0')
        print_indented(out, "capture: ", r->capture_path);
    if (r->capture_dropped > 0) { /* an incomplete capture must not pass for the whole story */
        char lost[96];
        snprintf(lost, sizeof(lost), "%llu of %llu packets lost by the capture",
                 (unsigned long long)r->capture_dropped,
                 (unsigned long long)(r->capture_packets + r->capture_dropped));
        print_indented(out, "capture: ", lost);
    }
    if ((verbose || r->verdict == VERDICT_FAIL) && r->diagnosis != NULL)
        print_indented(out, "", r->diagnosis);
}

struct report_totals {
    size_t passed, failed, skipped, errored;
};

static struct report_totals report_count(const struct run_report *rep)
{
    struct report_totals t = {0, 0, 0, 0};
    for (size_t i = 0; i < rep->nscenarios; i++) {
        switch (rep->scenarios[i].verdict) {
        case VERDICT_PASS:
            t.passed++;
            break;
        case VERDICT_FAIL:
            t.failed++;
            break;
        case VERDICT_SKIP:
            t.skipped++;
            break;
        case VERDICT_ERROR:
            t.errored++;
            break;
        }
    }
    return t;
}

/* The totals line is read by CI log parsers: its text is fixed, color only wraps it, and
 * errors (when there are any) are appended, so "N passed, N failed" keeps its place. */
void report_print_totals(FILE *out, const struct run_report *rep, bool color)
{
    struct report_totals t = report_count(rep);
    if (color)
        fputs(t.failed || t.errored ? COLOR_BOLD COLOR_RED : COLOR_BOLD COLOR_GREEN, out);
    fprintf(out, "connfault: %zu passed, %zu failed, %zu skipped", t.passed, t.failed, t.skipped);
    if (t.errored)
        fprintf(out, ", %zu errored", t.errored);
    if (color)
        fputs(COLOR_RESET, out);
    fprintf(out, "\nseed %llu, %.1fs\n", (unsigned long long)rep->seed, rep->duration_s);
}

/* ---- JUnit XML ---- */

/* XML 1.0 allows tab, newline, carriage return and nothing else below 0x20; invalid UTF-8
 * makes the whole document unreadable. Both become U+FFFD. In attributes, tab/newline/CR are
 * written as character references so attribute normalization keeps them. */
static void xml_put_escaped(FILE *out, const char *text, bool attribute)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t n = cf_utf8_sequence(s + i, len - i, &cp);
        if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xfffe ||
            cp == 0xffff) {
            fputs("\xEF\xBF\xBD", out);
            i += n ? n : 1;
            continue;
        }
        if (cp == '&')
            fputs("&amp;", out);
        else if (cp == '<')
            fputs("&lt;", out);
        else if (cp == '>')
            fputs("&gt;", out);
        else if (cp == '"')
            fputs("&quot;", out);
        else if (cp == '\'')
            fputs("&apos;", out);
        else if (attribute && cp < 0x20)
            fprintf(out, "&#%lu;", cp);
        else
            fwrite(s + i, 1, n, out);
        i += n;
    }
}

static void xml_put_time_attr(FILE *out, double seconds)
{
    char buf[64];
    cf_format_double(buf, sizeof(buf), "%.3f", isfinite(seconds) && seconds >= 0 ? seconds : 0);
    fprintf(out, " time=\"%s\"", buf);
}

/* The failure message: every failed check's summary (or the reason if none failed). */
static void junit_failure_message(FILE *out, const struct scenario_result *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nchecks; i++) {
        if (r->checks[i].status != CHECK_FAILED)
            continue;
        fputs(n++ ? "; " : "", out);
        xml_put_escaped(out, r->checks[i].summary, true);
    }
    if (n == 0)
        xml_put_escaped(out, r->reason, true);
}

/* Every group's evidence line, and the first bytes a client of it got. */
static void junit_groups(FILE *out, const struct scenario_result *r)
{
    for (size_t i = 0; i < r->ngroups; i++) {
        char line[512];
        format_group(&r->groups[i], line, sizeof(line));
        xml_put_escaped(out, line, false);
        fputc('\n', out);
        if (r->groups[i].first_bytes[0] != '\0') {
            fputs("  first bytes: ", out);
            xml_put_escaped(out, r->groups[i].first_bytes, false);
            fputc('\n', out);
        }
    }
}

/* Not exercised: the reason (cause and fix) as the message, the groups' evidence below. */
static void junit_error(FILE *out, const struct scenario_result *r)
{
    fputs("      <error type=\"connfault\" message=\"", out);
    xml_put_escaped(out, r->reason, true);
    fputs("\">", out);
    if (r->ngroups == 0) { /* a set-up error, an interrupt: the body says it too */
        xml_put_escaped(out, r->reason, false);
        fputc('\n', out);
    }
    junit_groups(out, r);
    fputs("</error>\n", out);
}

static void junit_testcase(FILE *out, const struct scenario_result *r)
{
    fputs("    <testcase classname=\"connfault\" name=\"", out);
    xml_put_escaped(out, r->name, true);
    fputc('"', out);
    xml_put_time_attr(out, r->duration_s);
    fputs(">\n", out);
    if (r->verdict == VERDICT_FAIL) {
        fputs("      <failure type=\"connfault\" message=\"", out);
        junit_failure_message(out, r);
        fputs("\">", out);
        for (size_t i = 0; i < r->nchecks; i++) {
            if (r->checks[i].status != CHECK_FAILED)
                continue;
            fputs("FAILED ", out);
            xml_put_escaped(out, r->checks[i].summary, false);
            fputc('\n', out);
        }
        if (r->reason[0] != '\0') {
            fputs("reason: ", out);
            xml_put_escaped(out, r->reason, false);
            fputc('\n', out);
        }
        if (r->diagnosis != NULL) {
            fputc('\n', out);
            xml_put_escaped(out, r->diagnosis, false);
            fputc('\n', out);
        }
        if (r->capture_path[0] != '\0') {
            fputs("capture: ", out);
            xml_put_escaped(out, r->capture_path, false);
            fputc('\n', out);
        }
        junit_groups(out, r);
        fputs("</failure>\n", out);
    } else if (r->verdict == VERDICT_ERROR) {
        junit_error(out, r);
    } else if (r->verdict == VERDICT_SKIP) {
        fputs("      <skipped message=\"", out);
        xml_put_escaped(out, r->reason, true);
        fputs("\"/>\n", out);
    }
    fputs("      <system-out>", out);
    for (size_t i = 0; i < r->nchecks; i++) {
        fprintf(out, "%s: ", check_status_name(r->checks[i].status));
        xml_put_escaped(out, r->checks[i].summary, false);
        fputc('\n', out);
    }
    if (r->exhaustion.how != EXHAUSTION_NOT_MEASURED) {
        fputs(exhaustion_label(&r->exhaustion), out);
        xml_put_escaped(out, r->exhaustion.summary, false);
        fputc('\n', out);
    }
    fputs("</system-out>\n    </testcase>\n", out);
}

static void junit_property(FILE *out, const char *name, const char *value)
{
    fprintf(out, "      <property name=\"%s\" value=\"", name);
    xml_put_escaped(out, value, true);
    fputs("\"/>\n", out);
}

static void junit_write(FILE *out, const struct run_report *rep)
{
    struct report_totals t = report_count(rep);
    char buf[64];
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fprintf(out,
            "<testsuites name=\"connfault\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
            "skipped=\"%zu\"",
            rep->nscenarios, t.failed, t.errored, t.skipped);
    xml_put_time_attr(out, rep->duration_s);
    fputs(">\n", out);
    fprintf(out,
            "  <testsuite name=\"connfault\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
            "skipped=\"%zu\"",
            rep->nscenarios, t.failed, t.errored, t.skipped);
    xml_put_time_attr(out, rep->duration_s);
    fputs(">\n    <properties>\n", out);
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rep->seed);
    junit_property(out, "seed", buf);
    junit_property(out, "target_kind", rep->target_kind);
    junit_property(out, "target", rep->target_desc);
    snprintf(buf, sizeof(buf), "%d", rep->port);
    junit_property(out, "host", rep->host);
    junit_property(out, "port", buf);
    fputs("    </properties>\n", out);
    for (size_t i = 0; i < rep->nscenarios; i++)
        junit_testcase(out, &rep->scenarios[i]);
    fputs("  </testsuite>\n</testsuites>\n", out);
}

/* ---- JSON ---- */

static void json_put_field(FILE *out, const struct report_field *f)
{
    static const char *const reserved[] = {"name", "status", "ok", "summary"};
    const char *prefix = "";
    for (size_t i = 0; i < 4; i++)
        if (strcmp(f->key, reserved[i]) == 0)
            prefix = "field_"; /* never write a key twice in one object */
    char key[64];
    snprintf(key, sizeof(key), "%s%s", prefix, f->key);
    fputc(',', out);
    json_put_string(out, key);
    fputc(':', out);
    switch (f->type) {
    case FIELD_INT:
        fprintf(out, "%lld", (long long)f->i);
        break;
    case FIELD_DOUBLE:
        json_put_double(out, f->d);
        break;
    case FIELD_STR:
        json_put_string(out, f->s);
        break;
    }
}

static void json_put_check(FILE *out, const struct check_result *c)
{
    fputs("{\"name\":", out);
    json_put_string(out, c->name);
    fprintf(out, ",\"status\":\"%s\",\"ok\":%s,\"summary\":", check_status_name(c->status),
            c->status == CHECK_OK       ? "true"
            : c->status == CHECK_FAILED ? "false"
                                        : "null");
    json_put_string(out, c->summary);
    for (size_t i = 0; i < c->nfields && i < REPORT_MAX_FIELDS; i++)
        json_put_field(out, &c->fields[i]);
    fputc('}', out);
}

static void json_put_statuses(FILE *out, const struct group_evidence *g)
{
    fputs(",\"statuses\":{", out);
    for (size_t i = 0; i < g->nstatuses && i < REPORT_MAX_STATUSES; i++) {
        if (g->statuses[i].status == 0)
            fprintf(out, "%s\"not_http\":%llu", i ? "," : "",
                    (unsigned long long)g->statuses[i].clients);
        else
            fprintf(out, "%s\"%d\":%llu", i ? "," : "", g->statuses[i].status,
                    (unsigned long long)g->statuses[i].clients);
    }
    if (g->status_other)
        fprintf(out, "%s\"other\":%llu", g->nstatuses ? "," : "",
                (unsigned long long)g->status_other);
    fputc('}', out);
}

static void json_put_group(FILE *out, const struct group_evidence *g)
{
    static const char *const keys[] = {"{\"name\":", ",\"fault\":", ",\"criterion\":"};
    const char *const values[] = {g->name, g->fault, g->criterion};
    for (size_t i = 0; i < 3; i++) {
        fputs(keys[i], out);
        json_put_string(out, values[i]);
    }
    fprintf(out,
            ",\"planned\":%llu,\"started\":%llu,\"connected\":%llu,\"request_sent\":%llu,"
            "\"reached\":%llu",
            (unsigned long long)g->planned, (unsigned long long)g->started,
            (unsigned long long)g->connected, (unsigned long long)g->request_sent,
            (unsigned long long)g->reached);
    json_put_statuses(out, g);
    fprintf(out,
            ",\"bytes_read\":{\"min\":%llu,\"median\":%llu,\"max\":%llu},"
            "\"connect_failed\":%llu,\"peer_closed\":%llu,\"peer_reset\":%llu,"
            "\"not_exercised\":%llu,\"peak_open\":%llu,\"capture_peak_open\":%llu,"
            "\"first_bytes\":",
            (unsigned long long)g->bytes_min, (unsigned long long)g->bytes_median,
            (unsigned long long)g->bytes_max, (unsigned long long)g->connect_failed,
            (unsigned long long)g->peer_closed, (unsigned long long)g->peer_reset,
            (unsigned long long)g->not_exercised, (unsigned long long)g->peak_open,
            (unsigned long long)g->capture_peak_open);
    json_put_string(out, g->first_bytes);
    fputc('}', out);
}

/* null for a scenario without rlimit_nofile (or none sampled). */
static void json_put_exhaustion(FILE *out, const struct exhaustion_evidence *x)
{
    if (x->how == EXHAUSTION_NOT_MEASURED) {
        fputs(",\"exhaustion\":null", out);
        return;
    }
    fputs(",\"exhaustion\":{\"how\":", out);
    json_put_string(out, exhaustion_how_name(x->how));
    fprintf(out,
            ",\"fds_peak\":%u,\"fds_limit\":%u,\"tree_fds_peak\":%u,\"processes_peak\":%u,"
            "\"queue_peak\":%u,\"backlog\":%u,\"queue_full\":%s",
            x->fds_peak, x->fds_limit, x->tree_fds_peak, x->processes_peak, x->queue_peak,
            x->backlog, x->queue_full ? "true" : "false");
    const char *const keys[] = {",\"peak_at_s\":", ",\"plateau_s\":", ",\"fault_phase_s\":"};
    const double values[] = {x->peak_at_s, x->plateau_s, x->fault_phase_s};
    for (size_t i = 0; i < 3; i++) {
        fputs(keys[i], out);
        json_put_double(out, values[i]);
    }
    fputs(",\"summary\":", out);
    json_put_string(out, x->summary);
    fputc('}', out);
}

static void json_put_scenario(FILE *out, const struct scenario_result *r)
{
    fputs("{\"name\":", out);
    json_put_string(out, r->name);
    fprintf(out, ",\"verdict\":\"%s\",\"reason\":", verdict_name(r->verdict));
    json_put_string(out, r->reason);
    fputs(",\"duration_s\":", out);
    json_put_double(out, r->duration_s);
    fprintf(out,
            ",\"clients\":{\"started\":%llu,\"connected\":%llu,\"failed_connect\":%llu,"
            "\"completed\":%llu}",
            (unsigned long long)r->clients_started, (unsigned long long)r->clients_connected,
            (unsigned long long)r->clients_failed_connect,
            (unsigned long long)r->clients_completed);
    fputs(",\"groups\":[", out);
    for (size_t i = 0; i < r->ngroups && i < REPORT_MAX_GROUPS; i++) {
        fputs(i ? ",\n      " : "\n      ", out);
        json_put_group(out, &r->groups[i]);
    }
    fputs(r->ngroups ? "\n    ]" : "]", out);
    json_put_exhaustion(out, &r->exhaustion);
    fputs(",\"capture\":", out);
    if (r->capture_path[0] != '\0')
        json_put_string(out, r->capture_path);
    else
        fputs("null", out);
    fprintf(out, ",\"capture_packets\":%llu,\"capture_dropped\":%llu",
            (unsigned long long)r->capture_packets, (unsigned long long)r->capture_dropped);
    fputs(",\"diagnosis\":", out);
    if (r->diagnosis != NULL) {
        fputs("{\"summary\":", out);
        json_put_string(out, r->diagnosis_summary ? r->diagnosis_summary : "");
        fputs(",\"text\":", out);
        json_put_string(out, r->diagnosis);
        fputs(",\"detail\":", out);
        fputs(r->diagnosis_json ? r->diagnosis_json : "null", out);
        fputc('}', out);
    } else {
        fputs("null", out);
    }
    fputs(",\"checks\":[", out);
    for (size_t i = 0; i < r->nchecks && i < REPORT_MAX_CHECKS; i++) {
        fputs(i ? ",\n      " : "\n      ", out);
        json_put_check(out, &r->checks[i]);
    }
    fputs(r->nchecks ? "\n    ]}" : "]}", out);
}

static void json_write(FILE *out, const struct run_report *rep)
{
    fprintf(out, "{\"seed\":%llu,\n \"target\":{\"kind\":", (unsigned long long)rep->seed);
    json_put_string(out, rep->target_kind);
    fputs(",\"description\":", out);
    json_put_string(out, rep->target_desc);
    fputs(",\"host\":", out);
    json_put_string(out, rep->host);
    fprintf(out, ",\"port\":%d},\n \"duration_s\":", rep->port);
    json_put_double(out, rep->duration_s);
    fputs(",\n \"scenarios\":[", out);
    for (size_t i = 0; i < rep->nscenarios; i++) {
        fputs(i ? ",\n    " : "\n    ", out);
        json_put_scenario(out, &rep->scenarios[i]);
    }
    fputs(rep->nscenarios ? "\n ]}\n" : "]}\n", out);
}

/* ---- TAP version 13 ---- */

/* Calls put for every character of text with its code point and bytes: invalid UTF-8 comes as
 * U+FFFD, so a TAP file is UTF-8 whatever a server wrote. */
typedef void (*tap_put_char_fn)(FILE *out, unsigned long cp, const unsigned char *bytes, size_t n);

static void tap_put_each(FILE *out, const char *text, tap_put_char_fn put)
{
    static const unsigned char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t n = cf_utf8_sequence(s + i, len - i, &cp);
        if (n == 0)
            put(out, 0xfffd, replacement, 3);
        else
            put(out, cp, s + i, n);
        i += n ? n : 1;
    }
}

/* A directive's explanation (a skip's reason) on a test line: it runs to the end of the line
 * and is read as is, so only what would end or garble the line (newlines, tabs, other control
 * characters) changes, to '?'. */
static void tap_put_reason_char(FILE *out, unsigned long cp, const unsigned char *bytes, size_t n)
{
    if (cp < 0x20 || cp == 0x7f)
        fputc('?', out);
    else
        fwrite(bytes, 1, n, out);
}

/* A description (a scenario's name): as a reason, and '#' (which would start a directive:
 * "# SKIP") and '\' are escaped with '\', as TAP 13 says. */
static void tap_put_desc_char(FILE *out, unsigned long cp, const unsigned char *bytes, size_t n)
{
    if (cp == '#' || cp == '\\')
        fprintf(out, "\\%c", (int)cp);
    else
        tap_put_reason_char(out, cp, bytes, n);
}

/* Inside a YAML double-quoted scalar (what TAP::Parser's YAMLish reader reads back): '"' and
 * '\' escaped, newline and tab as \n and \t, other control characters as \xNN. */
static void tap_put_yaml_char(FILE *out, unsigned long cp, const unsigned char *bytes, size_t n)
{
    if (cp == '"' || cp == '\\')
        fprintf(out, "\\%c", (int)cp);
    else if (cp == '\n')
        fputs("\\n", out);
    else if (cp == '\t')
        fputs("\\t", out);
    else if (cp < 0x20 || cp == 0x7f)
        fprintf(out, "\\x%02lx", cp);
    else
        fwrite(bytes, 1, n, out);
}

static void tap_put_yaml_string(FILE *out, const char *text)
{
    fputc('"', out);
    tap_put_each(out, text, tap_put_yaml_char);
    fputc('"', out);
}

static void tap_put_yaml_key(FILE *out, const char *indent, const char *key, const char *text)
{
    fprintf(out, "%s%s: ", indent, key);
    tap_put_yaml_string(out, text);
    fputc('\n', out);
}

/* A check's numbers as a YAML map under "data:" (a NaN or infinity is ~, null). Keys are
 * identifiers chosen by the program, quoted anyway so no key can break the block. */
static void tap_put_fields(FILE *out, const struct check_result *c)
{
    if (c->nfields == 0)
        return;
    fputs("      data:\n", out);
    for (size_t i = 0; i < c->nfields && i < REPORT_MAX_FIELDS; i++) {
        const struct report_field *f = &c->fields[i];
        fputs("        ", out);
        tap_put_yaml_string(out, f->key);
        fputs(": ", out);
        if (f->type == FIELD_INT) {
            fprintf(out, "%lld\n", (long long)f->i);
        } else if (f->type == FIELD_DOUBLE) {
            if (isfinite(f->d))
                json_put_double(out, f->d); /* a JSON number is a YAML number */
            else
                fputc('~', out);
            fputc('\n', out);
        } else {
            tap_put_yaml_string(out, f->s);
            fputc('\n', out);
        }
    }
}

/* The failed checks, each with its summary and numbers. */
static void tap_put_failed_checks(FILE *out, const struct scenario_result *r)
{
    if (count_status(r, CHECK_FAILED) == 0)
        return;
    fputs("  failed:\n", out);
    for (size_t i = 0; i < r->nchecks && i < REPORT_MAX_CHECKS; i++) {
        const struct check_result *c = &r->checks[i];
        if (c->status != CHECK_FAILED)
            continue;
        fputs("    - check: ", out);
        tap_put_yaml_string(out, c->name);
        fputc('\n', out);
        tap_put_yaml_key(out, "      ", "summary", c->summary);
        tap_put_fields(out, c);
    }
}

/* The message: every failed check's summary (or the reason if none failed), as JUnit's. */
static void tap_put_message(FILE *out, const struct scenario_result *r)
{
    char msg[2048] = "";
    size_t used = 0;
    for (size_t i = 0; i < r->nchecks && used < sizeof(msg) - 1; i++) {
        if (r->checks[i].status != CHECK_FAILED)
            continue;
        int n = snprintf(msg + used, sizeof(msg) - used, "%s%s", used ? "; " : "",
                         r->checks[i].summary);
        used = n > 0 && (size_t)n < sizeof(msg) - used ? used + (size_t)n : sizeof(msg) - 1;
    }
    tap_put_yaml_key(out, "  ", "message", used ? msg : r->reason);
}

/* The YAML block of a scenario that failed or is in error (TAP has no error: it is a "not
 * ok" whose severity says so): message, severity, the failed checks with their numbers, the
 * reason, diagnosis, capture and every group's evidence. */
static void tap_put_diagnostics(FILE *out, const struct scenario_result *r)
{
    char duration[64];
    cf_format_double(duration, sizeof(duration), "%.3f",
                     isfinite(r->duration_s) && r->duration_s >= 0 ? r->duration_s : 0);
    fputs("  ---\n", out);
    tap_put_message(out, r);
    fprintf(out, "  severity: %s\n  duration_s: %s\n",
            r->verdict == VERDICT_ERROR ? "error" : "fail", duration);
    tap_put_failed_checks(out, r);
    if (r->reason[0] != '\0')
        tap_put_yaml_key(out, "  ", "reason", r->reason);
    if (r->exhaustion.how != EXHAUSTION_NOT_MEASURED)
        tap_put_yaml_key(out, "  ", "exhaustion", r->exhaustion.summary);
    if (r->diagnosis != NULL)
        tap_put_yaml_key(out, "  ", "diagnosis", r->diagnosis);
    if (r->capture_path[0] != '\0')
        tap_put_yaml_key(out, "  ", "capture", r->capture_path);
    if (r->ngroups > 0)
        fputs("  groups:\n", out);
    for (size_t i = 0; i < r->ngroups && i < REPORT_MAX_GROUPS; i++) {
        char line[512];
        format_group(&r->groups[i], line, sizeof(line));
        fputs("    - ", out);
        tap_put_yaml_string(out, line);
        fputc('\n', out);
    }
    fputs("  ...\n", out);
}

static void tap_write(FILE *out, const struct run_report *rep)
{
    struct report_totals t = report_count(rep);
    fprintf(out, "TAP version 13\n1..%zu\n", rep->nscenarios);
    for (size_t i = 0; i < rep->nscenarios; i++) {
        const struct scenario_result *r = &rep->scenarios[i];
        bool ok = r->verdict == VERDICT_PASS || r->verdict == VERDICT_SKIP;
        fprintf(out, "%s %zu - ", ok ? "ok" : "not ok", i + 1);
        tap_put_each(out, r->name, tap_put_desc_char);
        if (r->verdict == VERDICT_SKIP) {
            fputs(" # SKIP ", out);
            tap_put_each(out, r->reason, tap_put_reason_char);
        }
        fputc('\n', out);
        if (!ok)
            tap_put_diagnostics(out, r);
    }
    /* the totals line of the human output, and the seed that replays the run */
    fprintf(out, "# connfault: %zu passed, %zu failed, %zu skipped, %zu errored; seed %llu\n",
            t.passed, t.failed, t.skipped, t.errored, (unsigned long long)rep->seed);
}

/* ---- files ---- */

static int report_fail(char *err, size_t errlen, int errnum, const char *what, const char *path)
{
    if (errlen > 0)
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errnum));
    return -errnum;
}

/* Writes PATH.tmp with the writer, then renames it over PATH. */
static int report_write_file(const char *path, void (*writer)(FILE *, const struct run_report *),
                             const struct run_report *rep, char *err, size_t errlen)
{
    char tmp[4096 + 8];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return report_fail(err, errlen, ENAMETOOLONG, "writing", path);
    FILE *out = fopen(tmp, "w");
    if (out == NULL)
        return report_fail(err, errlen, errno, "creating", tmp);
    errno = 0;
    writer(out, rep);
    int werr = ferror(out) ? (errno ? errno : EIO) : 0;
    if (fclose(out) != 0 && werr == 0)
        werr = errno ? errno : EIO;
    if (werr == 0 && rename(tmp, path) != 0)
        werr = errno;
    if (werr != 0) {
        unlink(tmp);
        return report_fail(err, errlen, werr, "writing", path);
    }
    return 0;
}

int report_write_junit(const char *path, const struct run_report *rep, char *err, size_t errlen)
{
    return report_write_file(path, junit_write, rep, err, errlen);
}

int report_write_json(const char *path, const struct run_report *rep, char *err, size_t errlen)
{
    return report_write_file(path, json_write, rep, err, errlen);
}

int report_write_tap(const char *path, const struct run_report *rep, char *err, size_t errlen)
{
    return report_write_file(path, tap_write, rep, err, errlen);
}
