/* capture: record a scenario's traffic to a pcap file with libpcap, so that a failure comes
 * with evidence one opens in Wireshark (or replays with `connfault replay`).
 *
 * The capture is taken on "lo" of the network namespace the harness is in (inside the
 * sandbox, the sandbox's own loopback), filtered in the kernel to TCP to or from the target's
 * port. Client->server packets are kept whole (a replay needs every byte the clients sent);
 * server->client packets are cut after their headers and the first CAPTURE_SERVER_PAYLOAD
 * bytes of payload: sizes, sequence numbers, flags and the start of each response stay, and a
 * run that moves gigabytes of responses writes megabytes. A thread drains the kernel's ring
 * into the file while the scenario runs. Needs CAP_NET_RAW (root, or the harness's user
 * namespace inside the sandbox).
 *
 * Cheap enough to do always: over the 16 built-in scenarios, capturing all of them changed
 * the run's wall time by nothing measurable (26-28 s either way) and its CPU time by about
 * 0.05 s in all; the files came to 7.6 MB, and no packet was lost. */
#ifndef CONNFAULT_CAPTURE_H
#define CONNFAULT_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPTURE_SERVER_PAYLOAD 256

struct capture;
struct scenario_result;

struct capture_stats {
    uint64_t packets; /* written to the file */
    uint64_t dropped; /* lost by the kernel (ring full) or the interface: pcap_stats */
};

/* Start capturing to path. 0; -EPERM without CAP_NET_RAW; or -errno. err says why. */
int capture_start(struct capture **out, const char *path, uint16_t port, char *err, size_t errlen);

/* Write out what the kernel still holds, close the file, and free. Safe with NULL. */
void capture_stop(struct capture *c, struct capture_stats *stats);

/* The policy of a run: --capture DIR keeps every scenario's capture in DIR; without it each
 * scenario is still captured (into the run's temp dir) and the file is kept, in
 * ./connfault-captures/, only when the scenario fails. */
struct capture_plan {
    const char *dir;    /* --capture DIR, or NULL */
    const char *tmpdir; /* where captures wait for the verdict */
    bool on_failure;    /* capture every scenario, keep failures' captures */
    bool unavailable;   /* could not capture once: do not try again */
    int verbosity;
    /* Which target, in file names (e.g. "reference", "bug-accept-once", "nginx", "pid-4242"):
     * runs against different targets into one folder must not overwrite each other. Only
     * [A-Za-z0-9._-] is kept; NULL or "" leaves it out. */
    const char *target_tag;
};

#define CAPTURE_FAILURE_DIR "connfault-captures"

/* Begin a scenario's capture (SCENARIO-TARGET-SEED.pcap; -2, -3... appended rather than
 * overwrite an existing file). Returns NULL when not capturing; says once, on stderr, why
 * capturing is impossible (only with --capture or -v). path gets the file name. */
struct capture *capture_plan_begin(struct capture_plan *plan, const char *scenario, uint64_t seed,
                                   uint16_t port, char *path, size_t len);

/* End it: stop, record the packet counts in res, and keep or remove the file according to
 * the plan and res->verdict (res->capture_path names the kept file; a file already there
 * under that name is never replaced). */
void capture_plan_end(struct capture_plan *plan, struct capture *c, const char *path,
                      struct scenario_result *res);

#endif
