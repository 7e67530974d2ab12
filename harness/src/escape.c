/* escape: decoding of C-style escapes. */
#include "escape.h"

#include <stdio.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long escape_decode(const char *in, size_t len, char *out, size_t cap, char *err, size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\\') {
            if (i + 1 >= len) {
                snprintf(err, errlen, "column %zu: a lone backslash at the end", i + 1);
                return -1;
            }
            char e = in[++i];
            switch (e) {
            case 'r':
                c = '\r';
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case '0':
                c = '\0';
                break;
            case '\\':
            case '"':
            case '\'':
                c = e;
                break;
            case 'x': {
                int hi = i + 1 < len ? hex_value(in[i + 1]) : -1;
                int lo = i + 2 < len ? hex_value(in[i + 2]) : -1;
                if (hi < 0 || lo < 0) {
                    snprintf(err, errlen, "column %zu: \\x needs two hex digits", i);
                    return -1;
                }
                c = (char)(hi * 16 + lo);
                i += 2;
                break;
            }
            default:
                snprintf(err, errlen, "column %zu: unknown escape \\%c", i, e);
                return -1;
            }
        }
        if (o == cap) {
            snprintf(err, errlen, "longer than %zu bytes", cap);
            return -1;
        }
        out[o++] = c;
    }
    return (long)o;
}
