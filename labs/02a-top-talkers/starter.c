/* Lab 02a — count per source address and find the top talkers.
 *
 * Task: count every IPv4 packet under its source address in the map `talkers` (key: the source
 * address as it is in the packet, value: packets). Pass every packet. Frames that are not IPv4
 * (ARP, IPv6) are not counted. Keep the map as it is declared here.
 */
#include "parsing_helpers.h"

BPF_HASH(talkers, __be32, u64, 1024);

int lab02_talkers(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;

	/* TODO: find the IPv4 header, then add 1 to talkers[iph->saddr] */
	return XDP_PASS;
}
