/* escape: C-style escapes in flags and scenario files ("PING\r\n", "\x00\xff"). */
#ifndef CONNFAULT_ESCAPE_H
#define CONNFAULT_ESCAPE_H

#include <stddef.h>

/* One escape at s[0] == '\\' (len bytes available): the byte it stands for in *out and
 * the characters it used (2, or 4 for \xHH), or 0 if it is not a valid escape. */
size_t escape_decode_one(const char *s, size_t len, char *out);

/* Decode \r \n \t \0 \\ \" \' \xHH in in[0..len) into out (at most cap bytes).
 * Returns the decoded length, or -1 with a message in err naming the offending escape
 * and its 1-based column. */
long escape_decode(const char *in, size_t len, char *out, size_t cap, char *err, size_t errlen);

#endif
