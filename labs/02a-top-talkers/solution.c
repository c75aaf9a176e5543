/* Lab 02a — count per source address: a solution.
 *
 * talkers[source address] += 1 for every IPv4 packet. The first packet from an address inserts
 * its entry (lookup_or_try_init: lookup, insert with BPF_NOEXIST, lookup again); later ones add
 * to it atomically, because two CPUs may count packets from the same address at once. When the
 * map is full, new addresses are not counted and the packet still passes.
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
	__be32 source;
	u64 zero = 0, *packets;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_PASS;

	source = iph->saddr;
	packets = talkers.lookup_or_try_init(&source, &zero);
	if (packets)
		__sync_fetch_and_add(packets, 1);
	return XDP_PASS;
}
