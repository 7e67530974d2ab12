/* json_writer: see json_writer.h. */
#include "json_writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t cf_utf8_sequence(const unsigned char *s, size_t len, unsigned long *cp)
{
    unsigned char c = s[0];
    size_t need;
    unsigned long min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        need = 2, min = 0x80, *cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        need = 3, min = 0x800, *cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        need = 4, min = 0x10000, *cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return need;
}

void cf_format_double(char *buf, size_t len, const char *fmt, double v)
{
    snprintf(buf, len, fmt, v);
    for (char *p = buf; *p; p++)
        if (*p == ',')
            *p = '.';
}

void json_put_string(FILE *out, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t n = cf_utf8_sequence(s + i, len - i, &cp);
        if (n == 0) {
            fputs("\\ufffd", out); /* JSON text must be Unicode: a stray byte has no meaning */
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (char)cp);
        else if (cp == '\n')
            fputs("\\n", out);
        else if (cp < 0x20 || cp == 0x7f)
            fprintf(out, "\\u%04lx", cp);
        else
            fwrite(s + i, 1, n, out);
        i += n;
    }
    fputc('"', out);
}

void json_put_string_or_null(FILE *out, const char *text)
{
    if (text == NULL || text[0] == '\0')
        fputs("null", out);
    else
        json_put_string(out, text);
}

void json_put_double(FILE *out, double v)
{
    char buf[64];
    if (!isfinite(v)) {
        fputs("null", out);
        return;
    }
    /* the shortest of %.15g and %.17g that reads back as the same double: 3.2, not
     * 3.2000000000000002 */
    cf_format_double(buf, sizeof(buf), "%.15g", v);
    if (strtod(buf, NULL) != v)
        cf_format_double(buf, sizeof(buf), "%.17g", v);
    fputs(buf, out);
}
