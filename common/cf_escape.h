/* cf_escape: the one escaper for text a target (or any peer) chose: its output in a set-up
 * error, its thread and process names, the reason phrase of its status line, the first bytes
 * of its responses, the text of a diagnosis. A byte a terminal could act on never reaches it:
 * \r \n \t \\ by name, \xHH for every other byte below 0x20, 0x7f and up (UTF-8 included:
 * unambiguous, and the raw bytes are kept where a format can carry them, as in JSON). */
#ifndef CONNFAULT_CF_ESCAPE_H
#define CONNFAULT_CF_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

enum cf_escape_flags {
    CF_ESCAPE_KEEP_NEWLINES = 1, /* multi-line text: '\n' stays a line break */
    CF_ESCAPE_QUOTE = 2,         /* also \' (bytes shown inside '...') */
    CF_ESCAPE_DQUOTE = 4,        /* also \" (bytes shown inside "...") */
};

/* data[0..len) escaped into out (cap bytes, NUL-terminated), cut short with "..." when it does
 * not fit. Returns the length written. */
size_t cf_escape(const char *data, size_t len, char *out, size_t cap, unsigned flags);

/* The same for a NUL-terminated string, in place in buf (cap bytes). */
void cf_escape_in_place(char *buf, size_t cap, unsigned flags);

/* The same, malloc'd, without a size limit; NULL without memory. */
char *cf_escape_dup(const char *text, unsigned flags);

#endif
