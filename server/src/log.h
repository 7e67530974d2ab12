/* log: connfault-server's log on stderr. No global state: each module is given the
 * verbosity in its options and passes it in. */
#ifndef CONNFAULT_LOG_H
#define CONNFAULT_LOG_H

/* Prints "connfault-server: MESSAGE" and a newline to stderr when level <= verbosity
 * (0 errors, 1 normal, 2 every connection event). */
__attribute__((format(printf, 3, 4))) void log_at(int verbosity, int level, const char *fmt, ...);

#endif
