/* escape: C-style escapes in flags and scenario files ("PING\r\n", "\x00\xff"). */
#ifndef CONNFAULT_ESCAPE_H
#define CONNFAULT_ESCAPE_H

#include <stddef.h>

/* Decode \r \n \t \0 \\ \" \' \xHH in in[0..len) into out (at most cap bytes).
 * Returns the decoded length, or -1 with a message in err naming the offending escape
 * and its 1-based column. */
long escape_decode(const char *in, size_t len, char *out, size_t cap, char *err, size_t errlen);

#endif
