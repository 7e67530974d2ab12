/* The consumer project's "server": the installed reference server under another name, with
 * the short timeouts connfault gives it when it starts it itself (harness/run/env.c), so that
 * every built-in scenario settles within connfault's default grace. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static const char *timeouts[] = {"--header-timeout",   "1", "--idle-timeout",     "2",
                                     "--send-timeout",     "1", "--tcp-user-timeout", "2",
                                     "--shutdown-timeout", "1"};
    enum { NTIMEOUTS = sizeof(timeouts) / sizeof(timeouts[0]), MAXARGS = 64 };
    char *args[MAXARGS + NTIMEOUTS + 2];
    int n = 0;
    args[n++] = REFERENCE_SERVER;
    for (int i = 1; i < argc && i <= MAXARGS; i++)
        args[n++] = argv[i];
    for (int i = 0; i < NTIMEOUTS; i++)
        args[n++] = (char *)timeouts[i];
    args[n] = NULL;
    execv(REFERENCE_SERVER, args);
    perror("myserver: exec " REFERENCE_SERVER);
    return 127;
}
