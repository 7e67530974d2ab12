/* The consumer project's "server": the installed reference server under another name. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    (void)argc;
    argv[0] = REFERENCE_SERVER;
    execv(REFERENCE_SERVER, argv);
    perror("myserver: exec " REFERENCE_SERVER);
    return 127;
}
