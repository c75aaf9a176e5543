/* Lab 07a — count without collisions.
 *
 * Task: count the UDP datagrams over IPv4 to each destination port below SLOTS in port_stats
 * (slot: the port, value: packets and bytes, the bytes of the whole frame). Pass every frame.
 * The counts must stay exact when frames arrive on every CPU at once, with no atomic instruction
 * and no bpf_map_update_elem() per packet: port_stats is declared here as an array every CPU
 * shares, so change its declaration to the right kind of map (keep its name, value and size).
 */
#include "parsing_helpers.h"

#define SLOTS 1024               /* ports 0 to 1023 have a slot; higher ones are not counted */

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_ARRAY(port_stats, struct datarec, SLOTS);

int lab07_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;

	/* TODO: find the UDP header, then add to port_stats[its destination port] */
	return XDP_PASS;
}
