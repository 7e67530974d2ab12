/* cut: a part of a capture as a replay set of its own (flows, their bytes and segments
 * copied), for `connfault shrink CAPTURE` to try, keep and write out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shrink_internal.h"

/* dst: src with only segments segs[0..n) (all when segs is NULL), in order, their bytes
 * packed; each keeps its time. 0, or -1 (no memory). */
static int copy_flow(struct replay_flow *dst, const struct replay_flow *src, const size_t *segs,
                     size_t n)
{
    if (!segs)
        n = src->nsegs;
    *dst = *src;
    dst->segs = calloc(n ? n : 1, sizeof(*dst->segs));
    uint64_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += src->segs[segs ? segs[i] : i].len;
    dst->data = malloc(len ? len : 1);
    if (!dst->segs || !dst->data) {
        free(dst->segs);
        free(dst->data);
        return -1;
    }
    len = 0;
    for (size_t i = 0; i < n; i++) {
        const struct flow_segment *s = &src->segs[segs ? segs[i] : i];
        memcpy(dst->data + len, src->data + s->offset, s->len);
        dst->segs[i] = (struct flow_segment){.offset = len, .len = s->len, .time_us = s->time_us};
        len += s->len;
    }
    dst->nsegs = n;
    dst->data_len = len;
    return 0;
}

/* The first flow starts at 0, the set lasts until the last one's end. */
static void rebase(struct replay_set *set)
{
    uint64_t first = UINT64_MAX, last = 0;
    for (size_t i = 0; i < set->nflows; i++)
        first = set->flows[i].start_us < first ? set->flows[i].start_us : first;
    for (size_t i = 0; i < set->nflows; i++) {
        set->flows[i].start_us -= first;
        uint64_t end = set->flows[i].start_us + set->flows[i].duration_us;
        last = end > last ? end : last;
    }
    set->duration_us = last;
}

int shrink_cut_make(const struct shrink_cut *from, const size_t *flows, size_t n, size_t seg_flow,
                    const size_t *segs, size_t nsegs, struct shrink_cut *out)
{
    memset(out, 0, sizeof(*out));
    out->set = from->set;
    out->set.warnings = NULL;
    out->set.nflows = 0;
    out->set.flows = calloc(n ? n : 1, sizeof(*out->set.flows));
    out->orig = calloc(n ? n : 1, sizeof(*out->orig));
    if (!out->set.flows || !out->orig) {
        shrink_cut_free(out);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t fi = flows ? flows[i] : i;
        bool cut_segs = fi == seg_flow;
        if (copy_flow(&out->set.flows[i], &from->set.flows[fi], cut_segs ? segs : NULL,
                      cut_segs ? nsegs : 0) < 0) {
            shrink_cut_free(out);
            return -1;
        }
        out->set.nflows = i + 1;
        out->orig[i] = from->orig[fi];
    }
    rebase(&out->set);
    return 0;
}

int shrink_cut_from(const struct replay_set *set, struct shrink_cut *out)
{
    struct shrink_cut all = {.set = *set, .orig = calloc(set->nflows + 1, sizeof(size_t))};
    if (!all.orig)
        return -1;
    for (size_t i = 0; i < set->nflows; i++)
        all.orig[i] = i;
    int rc = shrink_cut_make(&all, NULL, set->nflows, SIZE_MAX, NULL, 0, out);
    free(all.orig);
    return rc;
}

void shrink_cut_free(struct shrink_cut *cut)
{
    if (cut->set.flows)
        replay_set_free(&cut->set);
    free(cut->orig);
    cut->orig = NULL;
}

unsigned long long shrink_set_segments(const struct replay_set *set)
{
    unsigned long long n = 0;
    for (size_t i = 0; i < set->nflows; i++)
        n += set->flows[i].nsegs;
    return n;
}

void shrink_cut_describe(const struct shrink_cut *cut, char *out, size_t len)
{
    char speed[32];
    if (cut->set.speed > 0)
        snprintf(speed, sizeof(speed), "%g", cut->set.speed);
    else
        snprintf(speed, sizeof(speed), "max");
    snprintf(out, len, "%zu flow(s), %llu segment(s), speed %s", cut->set.nflows,
             shrink_set_segments(&cut->set), speed);
}
