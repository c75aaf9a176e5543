/* Bug: the ethertype is never looked at: ARP and IPv6 frames are read as if they held an IPv4 header. */
#include "parsing_helpers.h"

BPF_HASH(talkers, __be32, u64, 1024);

int lab02_talkers(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__be32 source;
	u64 zero = 0, *packets;

	if (parse_ethhdr(&nh, data_end, &eth) < 0)
		return XDP_PASS;
	iph = nh.pos;
	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;

	source = iph->saddr;
	packets = talkers.lookup_or_try_init(&source, &zero);
	if (packets)
		__sync_fetch_and_add(packets, 1);
	return XDP_PASS;
}
