/* Bug: the checksum is updated with the ports in host byte order (7000, 7001), not as they are in the packet. */
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
		csum_replace2(&udph->check, 7000, 7001);
		if (!udph->check)
			udph->check = CSUM_MANGLED_0;
	}
	return XDP_PASS;
}
