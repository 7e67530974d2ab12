/* cleanup: remove what an earlier connfault left behind when it was killed (SIGKILL leaves
 * no chance to clean up): target processes still running (where no PID namespace could hold
 * them), its temporary directory, and any nftables table it owned in this network namespace.
 * Everything the harness makes carries its owner's pid (in the name: connfault-PID.XXXXXX,
 * connfault_PID; in a target's environment: CONNFAULT_OWNER=PID), so leftovers are those whose
 * owner is gone. */
#ifndef CONNFAULT_CLEANUP_H
#define CONNFAULT_CLEANUP_H

#include <stdio.h>

/* End or remove stale leftovers; describe each on out (NULL: silently). Returns how many. */
int cleanup_stale(FILE *out);

#endif
