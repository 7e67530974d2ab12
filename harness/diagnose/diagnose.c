/* diagnose: the entry point. Runs the steps of a diagnosis (diagnose_internal.h describes them
 * and the files that do them) within the budget, and the small helpers they share. */
#include "diagnose.h"
#include "diagnose_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_time.h"
#include "procfs.h"

uint64_t diag_remaining_ms(const struct diag_ctx *ctx)
{
    uint64_t now = cf_now_ms();
    return now < ctx->deadline_ms ? ctx->deadline_ms - now : 0;
}

void diag_note(struct diag_ctx *ctx, const char *fmt, ...)
{
    if (ctx->nnotes == DIAG_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->notes[ctx->nnotes], sizeof(ctx->notes[0]), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < ctx->nnotes; i++) {
        if (strcmp(ctx->notes[i], ctx->notes[ctx->nnotes]) == 0)
            return; /* the same note for another thread */
    }
    ctx->nnotes++;
}

ssize_t diag_read_file(const char *path, char *buf, size_t size)
{
    ssize_t len = procfs_read_file(path, buf, size);
    while (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    return len;
}

void diag_copy(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

const char *diag_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

enum diag_rendering { DIAG_RENDER_SUMMARY, DIAG_RENDER_TEXT, DIAG_RENDER_JSON };

static char *diag_render(const struct diag_ctx *ctx, uint64_t elapsed_ms, const char *summary,
                         enum diag_rendering which)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL)
        return NULL;
    if (which == DIAG_RENDER_SUMMARY)
        diag_put_summary(out, ctx);
    else if (which == DIAG_RENDER_TEXT)
        diag_render_text(out, ctx, elapsed_ms);
    else
        diag_render_json(out, ctx, elapsed_ms, summary);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void diag_ctx_free(struct diag_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++)
            free(ctx->procs[i].threads[j].frames);
        free(ctx->procs[i].threads);
    }
    free(ctx->procs);
    free(ctx->socks);
}

int diagnose_target(pid_t root, const struct diagnose_options *opt, struct diagnosis *out)
{
    memset(out, 0, sizeof(*out));
    struct diag_ctx ctx = {.opt = opt, .root = root, .start_ms = cf_now_ms()};
    unsigned budget = opt->budget_ms ? opt->budget_ms : DIAGNOSE_DEFAULT_BUDGET_MS;
    ctx.deadline_ms = ctx.start_ms + budget;

    int rc = diag_scan(&ctx);
    if (rc < 0) {
        diag_ctx_free(&ctx);
        return rc;
    }
    if (opt->sample_syscalls)
        diag_sample(&ctx);
    diag_run_helper(&ctx);
    diag_pick_headline(&ctx);
    diag_analyse(&ctx);

    uint64_t elapsed = cf_now_ms() - ctx.start_ms;
    out->summary = diag_render(&ctx, elapsed, NULL, DIAG_RENDER_SUMMARY);
    out->text = diag_render(&ctx, elapsed, NULL, DIAG_RENDER_TEXT);
    out->json = out->summary ? diag_render(&ctx, elapsed, out->summary, DIAG_RENDER_JSON) : NULL;
    diag_ctx_free(&ctx);
    if (out->summary == NULL || out->text == NULL || out->json == NULL) {
        diagnosis_free(out);
        return -ENOMEM;
    }
    return 0;
}

void diagnosis_free(struct diagnosis *d)
{
    free(d->text);
    free(d->json);
    free(d->summary);
    d->text = d->json = d->summary = NULL;
}
