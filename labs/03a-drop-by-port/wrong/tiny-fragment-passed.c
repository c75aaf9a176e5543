/* Bug: an IPv4 first fragment too short to hold a whole TCP header is passed as if malformed, but the kernel puts it together with the fragments after it: TCP to port 23 gets through in tiny fragments (RFC 1858). */
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
	int proto, first_fragment = 0;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0 || ip_is_later_fragment(iph))
			return XDP_PASS;
		first_fragment = ip_is_fragment(iph);
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
	/* a first fragment without a whole TCP header is broken: leave it to the kernel */
	if (proto == IPPROTO_TCP && first_fragment && nh.pos + sizeof(struct tcphdr) > data_end)
		return XDP_PASS;
	if (proto == IPPROTO_TCP && ports[1] == bpf_htons(23))
		return XDP_DROP;
	return XDP_PASS;
}
