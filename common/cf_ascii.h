/* cf_ascii: character tests that must not follow the locale (<ctype.h> does). */
#ifndef CONNFAULT_CF_ASCII_H
#define CONNFAULT_CF_ASCII_H

#include <stdbool.h>

static inline bool cf_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The value of a hexadecimal digit, or -1. */
static inline int cf_hex_value(char c)
{
    if (cf_is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
