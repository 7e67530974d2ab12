/* libFuzzer target for harness/src/pcap_flows.c: the capture reader (pcap and pcapng through
 * libpcap, from memory via fmemopen), the link/IP/TCP header parsers and the stream
 * rebuilder. Every input either fails with a message, or gives flows that keep the
 * invariants below; a broken one prints "invariant failed: ..." and aborts so libFuzzer
 * keeps the input. The last input byte picks the limits, so the limit paths come up too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcap_flows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void invariant(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

static void check_flow(const struct replay_flow *f)
{
    uint64_t pos = 0;

    /* the segments cover the stream in order, without gaps or overlaps */
    for (size_t i = 0; i < f->nsegs; i++) {
        invariant(f->segs[i].offset == pos, "segments are contiguous");
        invariant(f->segs[i].len > 0, "no empty segment");
        pos += f->segs[i].len;
    }
    invariant(pos == f->data_len, "segments cover the stream");
    invariant(f->missing_bytes <= f->data_len, "missing bytes within the stream");
    invariant(f->data_len == 0 || f->data != NULL, "data present");
    invariant(f->server_bytes_before_end <= f->server_bytes, "received within sent");
    invariant(f->end <= FLOW_END_SILENT, "a known ending");
    invariant(f->frames_to_server + f->frames_to_client > 0, "a flow has packets");
    invariant(f->family == 2 || f->family == 10, "IPv4 or IPv6");
    volatile uint8_t sum = 0; /* touch every byte: ASan checks the buffer's size */
    for (uint64_t i = 0; i < f->data_len; i++)
        sum ^= f->data[i];
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pcap_flows_limits lim = {0};
    struct replay_set set;
    char err[512];
    uint8_t knob = size > 0 ? data[size - 1] : 0;
    int rc;

    if (knob & 1) /* small limits, one kind at a time so that each can be reached */
        lim.max_flows = 1 + knob % 8;
    else if (knob & 4)
        lim.max_flow_bytes = 1 + (uint64_t)knob * 16;
    else if (knob & 8)
        lim.max_total_bytes = 1 + (uint64_t)knob * 256;
    if (knob & 2)
        lim.server_port = (uint16_t)(knob % 4 == 2 ? 80 : 443);
    err[0] = '\0';
    rc = pcap_flows_read_memory(data, size, &lim, &set, err, sizeof(err));
    if (rc < 0) {
        invariant(err[0] != '\0', "an error has a message");
        invariant(set.flows == NULL && set.nflows == 0, "no flows after an error");
        return 0;
    }
    invariant(set.nflows > 0, "success means at least one flow");
    for (size_t i = 0; i < set.nflows; i++)
        check_flow(&set.flows[i]);
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        pcap_flows_print(devnull, &set);
        fclose(devnull);
    }
    replay_set_free(&set);
    return 0;
}
