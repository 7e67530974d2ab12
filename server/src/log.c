/* log: connfault-server's log on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

void log_at(int verbosity, int level, const char *fmt, ...)
{
    if (level > verbosity)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("connfault-server: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
