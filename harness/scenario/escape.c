/* escape: decoding of C-style escapes. */
#include "escape.h"

#include "cf_ascii.h"

#include <stdio.h>

size_t escape_decode_one(const char *s, size_t len, char *out)
{
    if (len < 2 || s[0] != '\\')
        return 0;
    switch (s[1]) {
    case 'r':
        *out = '\r';
        return 2;
    case 'n':
        *out = '\n';
        return 2;
    case 't':
        *out = '\t';
        return 2;
    case '0':
        *out = '\0';
        return 2;
    case '\\':
    case '"':
    case '\'':
        *out = s[1];
        return 2;
    case 'x': {
        int hi = len > 2 ? cf_hex_value(s[2]) : -1;
        int lo = len > 3 ? cf_hex_value(s[3]) : -1;
        if (hi < 0 || lo < 0)
            return 0;
        *out = (char)(hi * 16 + lo);
        return 4;
    }
    default:
        return 0;
    }
}

long escape_decode(const char *in, size_t len, char *out, size_t cap, char *err, size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = in[i];
        size_t used = 1;
        if (c == '\\') {
            used = escape_decode_one(in + i, len - i, &c);
            if (used == 0) {
                if (i + 1 >= len)
                    snprintf(err, errlen, "column %zu: a lone backslash at the end", i + 1);
                else if (in[i + 1] == 'x')
                    snprintf(err, errlen, "column %zu: \\x needs two hex digits", i + 1);
                else
                    snprintf(err, errlen, "column %zu: unknown escape \\%c", i + 1, in[i + 1]);
                return -1;
            }
        }
        if (o == cap) {
            snprintf(err, errlen, "longer than %zu bytes", cap);
            return -1;
        }
        out[o++] = c;
        i += used;
    }
    return (long)o;
}
