/* Bug: one 802.1Q tag is stepped over by hand: QinQ (an 802.1ad tag outside) is missed. */
#include "parsing_helpers.h"

int lab03_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	struct icmp6hdr *icmp6h;
	int proto;

	__be16 type;

	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	type = eth->h_proto;
	nh.pos = eth + 1;
	if (type == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vlh = nh.pos;

		if ((void *)(vlh + 1) > data_end)
			return XDP_PASS;
		type = vlh->h_vlan_encapsulated_proto;
		nh.pos = vlh + 1;
	}
	if (type != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	proto = parse_ip6hdr(&nh, data_end, &ip6h);
	if (skip_ip6hdrext(&nh, data_end, proto) != IPPROTO_ICMPV6)
		return XDP_PASS;
	if (parse_icmp6hdr(&nh, data_end, &icmp6h) != ICMPV6_ECHO_REQUEST)
		return XDP_PASS;
	if (bpf_ntohs(icmp6h->icmp6_sequence) & 1)
		return XDP_DROP;
	return XDP_PASS;
}
