/* Bug: when `talkers` is full the program returns early, so the packet is not counted in `stats` either. */
#include "parsing_helpers.h"

#define BLOCKED_PORT 9
#define PROTO_SLOTS 32

struct proto_stats {
	u64 packets[PROTO_SLOTS];   /* packets[p]: packets of IP protocol p, for p < PROTO_SLOTS */
};

BPF_ARRAY(stats, struct proto_stats, 1);
BPF_HASH(talkers, u32, u64, 1024);       /* IPv4 source address → packets */

int lab08_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	struct udphdr *udph;
	struct proto_stats *s;
	u32 zero = 0, src;
	u64 none = 0, *n;

	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl < 5)
		return XDP_PASS;

	if (iph->protocol == IPPROTO_UDP) {
		udph = (void *)iph + iph->ihl * 4;
		if ((void *)(udph + 1) > data_end)          /* fix 1 */
			return XDP_PASS;
		if (udph->dest == bpf_htons(BLOCKED_PORT))
			return XDP_DROP;
	}

	src = iph->saddr;
	n = talkers.lookup_or_try_init(&src, &none);
	if (!n)                                         /* fix 2 */
		return XDP_PASS;
	*n += 1;

	s = stats.lookup(&zero);
	if (s && iph->protocol < PROTO_SLOTS)          /* fix 3 */
		s->packets[iph->protocol] += 1;
	return XDP_PASS;
}
