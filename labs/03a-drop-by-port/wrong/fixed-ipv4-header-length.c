/* Bug: the IPv4 header is taken as always 20 bytes long, so options shift the ports. */
#include "parsing_helpers.h"

int lab01_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	__be16 *ports;             /* source port, destination port */
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		iph = nh.pos;
		if ((void *)(iph + 1) > data_end || ip_is_later_fragment(iph))
			return XDP_PASS;
		proto = iph->protocol;
		nh.pos = iph + 1;
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

	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return XDP_PASS;
	ports = nh.pos;
	if ((void *)(ports + 2) > data_end)
		return XDP_PASS;
	if (proto == IPPROTO_UDP && ports[1] == bpf_htons(53))
		return XDP_DROP;
	if (proto == IPPROTO_TCP && ports[1] == bpf_htons(23))
		return XDP_DROP;
	return XDP_PASS;
}
