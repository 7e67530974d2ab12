/* json_writer: the one place JSON text is escaped, for report.json and the diagnosis.
 *
 * Strings from the outside world (a target's thread names, its output, file names) are not
 * always UTF-8; JSON text must be. A byte that does not start a valid UTF-8 sequence becomes
 * U+FFFD, so no input can make a report unreadable. Numbers are written locale-proof. */
#ifndef CONNFAULT_JSON_WRITER_H
#define CONNFAULT_JSON_WRITER_H

#include <stddef.h>
#include <stdio.h>

/* Length of the valid UTF-8 sequence at s (1-4) with its code point in *cp, or 0 if the bytes
 * there are not one (overlong forms, surrogates and code points past U+10FFFF are invalid). */
size_t cf_utf8_sequence(const unsigned char *s, size_t len, unsigned long *cp);

/* snprintf with fmt (one double conversion), but always with a decimal point: printf follows
 * LC_NUMERIC, and "3,2" is neither JSON nor a JUnit time. */
void cf_format_double(char *buf, size_t len, const char *fmt, double v);

void json_put_string(FILE *out, const char *text);         /* "..." escaped, U+FFFD for bad bytes */
void json_put_string_or_null(FILE *out, const char *text); /* null for NULL or "" */
void json_put_double(FILE *out, double v); /* shortest round trip; null if not finite */

#endif
