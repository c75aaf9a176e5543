/* Bug: the count is set to 1 on every packet (update) instead of being added to. */
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
	u64 one = 1;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_PASS;

	source = iph->saddr;
	talkers.update(&source, &one);
	return XDP_PASS;
}
