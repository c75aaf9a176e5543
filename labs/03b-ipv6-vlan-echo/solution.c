/* Lab 03b — parse IPv6 and VLAN, drop every other ICMPv6 echo request: a solution.
 *
 * parse_ethhdr() steps over up to two VLAN tags and returns the ethertype behind them;
 * skip_ip6hdrext() steps over extension headers to the upper-layer protocol. The echo's
 * sequence number is in network byte order; its lowest bit says odd or even.
 */
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

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IPV6))
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
