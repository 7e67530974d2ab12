/* cf_escape: see cf_escape.h. */
#include "cf_escape.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One byte as its escape (at most 4 characters) into e; returns its length. */
static size_t cf_escape_one(unsigned char b, char *e, unsigned flags)
{
    static const char named[] = "\r\n\t\\\'\"";
    static const char letter[] = "rnt\\'\"";
    bool kept = (b == '\n' && (flags & CF_ESCAPE_KEEP_NEWLINES)) ||
                (b == '\'' && !(flags & CF_ESCAPE_QUOTE)) ||
                (b == '"' && !(flags & CF_ESCAPE_DQUOTE));
    const char *hit = b && !kept ? strchr(named, b) : NULL;
    if (hit) {
        e[0] = '\\';
        e[1] = letter[hit - named];
        return 2;
    }
    if (!kept && (b < 0x20 || b >= 0x7f)) {
        static const char hex[] = "0123456789abcdef";
        e[0] = '\\', e[1] = 'x', e[2] = hex[b >> 4], e[3] = hex[b & 15];
        return 4;
    }
    e[0] = (char)b;
    return 1;
}

size_t cf_escape(const char *data, size_t len, char *out, size_t cap, unsigned flags)
{
    size_t used = 0;
    if (cap < 4) { /* no room for anything but the cut mark */
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char e[4];
        size_t n = cf_escape_one((unsigned char)data[i], e, flags);
        if (used + n + 4 > cap) { /* keeps room for "..." and the terminator */
            memcpy(out + used, "...", 3);
            used += 3;
            break;
        }
        memcpy(out + used, e, n);
        used += n;
    }
    out[used] = '\0';
    return used;
}

char *cf_escape_dup(const char *text, unsigned flags)
{
    size_t len = strlen(text), cap = len * 4 + 4;
    char *out = malloc(cap);
    if (out != NULL)
        cf_escape(text, len, out, cap, flags);
    return out;
}

void cf_escape_in_place(char *buf, size_t cap, unsigned flags)
{
    char *copy = strdup(buf);
    if (copy == NULL) {
        for (char *c = buf; *c; c++) /* no memory: still nothing for a terminal to act on */
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                *c = '?';
        return;
    }
    cf_escape(copy, strlen(copy), buf, cap, flags);
    free(copy);
}
