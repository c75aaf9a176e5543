/* Bug: every IPv6 extension header is taken as 8 bytes long: its length field is ignored. */
#include "parsing_helpers.h"

int lab03_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	struct icmp6hdr *icmp6h;
	int proto, i;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	proto = parse_ip6hdr(&nh, data_end, &ip6h);
#pragma unroll
	for (i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {
		struct ip6_ext_hdr *ext = nh.pos;

		if (!ipv6_is_ext_hdr(proto))
			break;
		if ((void *)(ext + 1) > data_end)
			return XDP_PASS;
		if (proto == IPPROTO_FRAGMENT) {
			__be16 *frag_off = (void *)ext + 2;

			if ((void *)(frag_off + 1) > data_end || (*frag_off & bpf_htons(0xfff8)))
				return XDP_PASS;
		}
		proto = ext->nexthdr;
		nh.pos += 8;
	}
	if (proto != IPPROTO_ICMPV6)
		return XDP_PASS;
	if (parse_icmp6hdr(&nh, data_end, &icmp6h) != ICMPV6_ECHO_REQUEST)
		return XDP_PASS;
	if (bpf_ntohs(icmp6h->icmp6_sequence) & 1)
		return XDP_DROP;
	return XDP_PASS;
}
