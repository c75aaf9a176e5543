/* Lab 04a — rewrite destination ports: a solution.
 *
 * The UDP checksum covers the UDP header, so changing the port changes one 16-bit word the sum
 * covered: csum_replace2() updates the checksum from the old and new word (RFC 1624) instead of
 * summing the datagram again. The port is not in the pseudo-header, so nothing else changes.
 * Over IPv4 a checksum of 0 means "none computed" and stays 0 (a computed 0 is sent as 0xffff);
 * over IPv6 the checksum is mandatory. Later IPv4 fragments carry no UDP header.
 */
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
		csum_replace2(&udph->check, from, to);
		if (!udph->check)
			udph->check = CSUM_MANGLED_0;
	}
	return XDP_PASS;
}
