/* record: minimal.pcap, the traffic of one failing run of the minimal input: one more run with
 * a capture (run.h's capture_dir), kept only when that run fails the check too. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shrink_internal.h"

#define RECORD_TRIES 3

int shrink_record(struct shrink_state *st, const struct scenario *sc, const char *dir,
                  const char *path)
{
    char err[512];
    if (sc->needs_sandbox) {
        fprintf(stderr,
                "connfault shrink: %s: not recorded (a silent drop needs the sandbox of "
                "a run of its own)\n",
                path);
        return -1;
    }
    struct run_options o = *st->opt;
    o.capture_dir = dir;
    o.capture_failures = false;
    struct run_env *env = run_env_new(&o, err, sizeof(err)), *saved = st->env;
    if (!env) {
        fprintf(stderr, "connfault shrink: %s: %s\n", path, err);
        return -1;
    }
    st->env = env;
    bool fails = false;
    for (int i = 0; i < RECORD_TRIES && !fails && st->stop == 0; i++) {
        st->last_capture[0] = '\0';
        fails = shrink_trial_runs(st, sc, 1);
        if (!fails && st->last_capture[0])
            remove(st->last_capture);
    }
    st->env = saved;
    run_env_free(env);
    if (!fails || !st->last_capture[0] || rename(st->last_capture, path) < 0) {
        fprintf(stderr, "connfault shrink: %s: not recorded: %s\n", path,
                !fails                 ? "no run of it failed"
                : !st->last_capture[0] ? "no capture was made"
                                       : strerror(errno));
        return -1;
    }
    return 0;
}
