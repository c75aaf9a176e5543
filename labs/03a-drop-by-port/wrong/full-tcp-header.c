/* Bug: TCP is read with parse_tcphdr(), which asks for the whole TCP header (20 bytes and its options): a first fragment holding 8 bytes of it passes, and the kernel puts the segment to port 23 together behind it. */
#include "parsing_helpers.h"

int lab01_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;
	struct tcphdr *tcph;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0 || ip_is_later_fragment(iph))
			return XDP_PASS;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		proto = skip_ip6hdrext(&nh, data_end, proto);
		if (proto == IP6_EXT_TOO_LONG)
			return XDP_DROP;   /* a seventh extension header */
	} else if (proto_is_vlan(proto)) {
		return XDP_DROP;           /* a third VLAN tag */
	} else {
		return XDP_PASS;
	}

	if (proto == IPPROTO_UDP) {
		if (parse_udphdr(&nh, data_end, &udph) >= 0 && udph->dest == bpf_htons(53))
			return XDP_DROP;
	} else if (proto == IPPROTO_TCP) {
		if (parse_tcphdr(&nh, data_end, &tcph) >= 0 && tcph->dest == bpf_htons(23))
			return XDP_DROP;
	}
	return XDP_PASS;
}
