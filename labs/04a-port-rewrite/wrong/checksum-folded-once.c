/* Bug: the one's complement sum is folded once: the carry that folding itself makes is not added back. */
#include "parsing_helpers.h"

int lab04_rewrite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;
	__be16 from = bpf_htons(7000), to = bpf_htons(7001);
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP || ip_is_later_fragment(iph))
			return XDP_PASS;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (skip_ip6hdrext(&nh, data_end, proto) != IPPROTO_UDP)
			return XDP_PASS;
	} else {
		return XDP_PASS;
	}
	if (parse_udphdr(&nh, data_end, &udph) < 0 || udph->dest != from)
		return XDP_PASS;

	udph->dest = to;
	if (udph->check) {
		u32 sum = (u16)~udph->check;

		sum += (u16)~from;
		sum += to;
		sum = (sum & 0xffff) + (sum >> 16);       /* once: another carry may be left */
		udph->check = ~(u16)sum;
		if (!udph->check)
			udph->check = CSUM_MANGLED_0;
	}
	return XDP_PASS;
}
