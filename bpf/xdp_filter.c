/* xdp_filter.c — a packet filter: drop DNS (UDP and TCP to one port) and ping.
 *
 * Teaches: walking the headers with parsing_helpers.h — Ethernet, up to two VLAN tags, IPv4 (with
 * options) or IPv6 (with extension headers), then UDP/TCP/ICMP — and deciding on what is found.
 *
 * Dropped:
 *   - UDP and TCP to port DROP_PORT (53, DNS, unless compiled with cflags=["-DDROP_PORT=5353"]);
 *   - ICMP (IPv4 protocol 1) and ICMPv6 echo requests, unless compiled with -DDROP_ICMP=0.
 *     Only *echo requests* of ICMPv6: IPv6 finds its neighbours (its ARP) with ICMPv6, and
 *     dropping all of it would cut the host off IPv6 entirely.
 * Passed: everything else, including what the filter cannot parse (truncated or malformed
 * headers, later IP fragments that carry no ports): a filter should drop only what it has
 * positively recognised, and leave the rest to the kernel, which checks and drops malformed
 * packets itself.
 */
#include "parsing_helpers.h"

#ifndef DROP_PORT
#define DROP_PORT 53
#endif
#ifndef DROP_ICMP
#define DROP_ICMP 1
#endif

int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;
	struct tcphdr *tcph;
	struct icmp6hdr *icmp6h;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0 || ip_is_later_fragment(iph))
			return XDP_PASS;
		if (proto == IPPROTO_ICMP && DROP_ICMP)
			return XDP_DROP;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (proto < 0)
			return XDP_PASS;
		proto = skip_ip6hdrext(&nh, data_end, proto);
		if (proto == IPPROTO_ICMPV6 && DROP_ICMP &&
		    parse_icmp6hdr(&nh, data_end, &icmp6h) == ICMPV6_ECHO_REQUEST)
			return XDP_DROP;
	} else {
		return XDP_PASS;                 /* ARP, too short, more than two VLAN tags, ... */
	}

	if (proto == IPPROTO_UDP) {
		if (parse_udphdr(&nh, data_end, &udph) >= 0 && udph->dest == bpf_htons(DROP_PORT))
			return XDP_DROP;
	} else if (proto == IPPROTO_TCP) {
		if (parse_tcphdr(&nh, data_end, &tcph) >= 0 && tcph->dest == bpf_htons(DROP_PORT))
			return XDP_DROP;
	}
	return XDP_PASS;
}
