/* xdp_filter.c — a packet filter: drop DNS (UDP and TCP to one port) and ping.
 *
 * Teaches: walking the headers with parsing_helpers.h — Ethernet, up to two VLAN tags, IPv4 (with
 * options) or IPv6 (with extension headers), then UDP/TCP/ICMP — and deciding on what is found,
 * and on what cannot be read.
 *
 * Dropped:
 *   - UDP and TCP to port DROP_PORT (53, DNS, unless compiled with cflags=["-DDROP_PORT=5353"]);
 *   - ICMP and ICMPv6 echo requests (ping), unless compiled with -DDROP_ICMP=0. Only echo
 *     requests: other ICMP messages report errors the sender needs (path MTU discovery learns a
 *     path's MTU from "fragmentation needed", RFC 1191; IPv6 from "packet too big"), and IPv6
 *     finds its neighbours (its ARP) with ICMPv6.
 * Passed: everything else.
 *
 * What the filter cannot read it must still decide on: pass it (fail open) or drop it (fail
 * closed). Passing costs nothing when the kernel drops the packet anyway, and opens a way round
 * the filter when the kernel would deliver it; dropping costs whatever legitimate packets look
 * like that. So:
 *   - passed: headers cut short or malformed, which the kernel checks and drops itself; and later
 *     IP fragments, which hold no ports (the first fragment, which does, was judged on them).
 *   - dropped: a third VLAN tag, which parse_ethhdr() does not look behind (the kernel strips
 *     priority tags, VLAN 0, and delivers what is inside); a seventh IPv6 extension header, which
 *     skip_ip6hdrext() does not step over (six is as many as RFC 8200's order has; the kernel
 *     takes any number); and a UDP or TCP datagram whose IP length leaves no room for the ports
 *     (malformed, or a first fragment no honest sender makes: every fragment but the last carries
 *     a multiple of 8 bytes; the kernel drops both too).
 * The ports are the first 4 bytes of a UDP or TCP header, and only those 4 must be present: a
 * filter that waited for the whole 20-byte TCP header would pass a first fragment holding 8 bytes
 * of it, unread, and the kernel would reassemble the datagram behind it (RFC 1858's tiny-fragment
 * attack). RFC 1858's remedy is to drop a TCP first fragment shorter than the bytes the filter
 * reads (its "tmin"; 16 for a filter that reads the TCP flags), not every one shorter than a whole
 * TCP header: this filter reads 4, so a first fragment with 4 to 19 bytes of TCP holds all it
 * decides on and is judged on its ports, and one with fewer is dropped (the room-for-the-ports
 * check below). IPv4 and IPv6 are treated alike: the datagram's end comes from its own length
 * field, a later fragment passes, a first one is judged on its ports. RFC 1858 also drops TCP
 * fragments at offset 1: they can rewrite the TCP flags (byte 13) of the first. This filter reads
 * no flags, and only a fragment at offset 0 can hold the ports: a first fragment, judged on its
 * own ports.
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
	struct icmphdr *icmph;
	struct icmp6hdr *icmp6h;
	void *ip_end;              /* where the IP datagram ends, by its own length field */
	__be16 *ports;             /* source port, destination port */
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0 || ip_is_later_fragment(iph))
			return XDP_PASS;
		ip_end = (void *)iph + bpf_ntohs(iph->tot_len);
		if (proto == IPPROTO_ICMP && DROP_ICMP &&
		    parse_icmphdr(&nh, data_end, &icmph) == ICMP_ECHO)
			return XDP_DROP;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (proto < 0)
			return XDP_PASS;
		ip_end = (void *)(ip6h + 1) + bpf_ntohs(ip6h->payload_len);
		proto = skip_ip6hdrext(&nh, data_end, proto);
		if (proto == IP6_EXT_TOO_LONG)
			return XDP_DROP;
		if (proto == IPPROTO_ICMPV6 && DROP_ICMP &&
		    parse_icmp6hdr(&nh, data_end, &icmp6h) == ICMPV6_ECHO_REQUEST)
			return XDP_DROP;
	} else if (proto_is_vlan(proto)) {
		return XDP_DROP;                 /* a third VLAN tag */
	} else {
		return XDP_PASS;                 /* ARP, too short, ... */
	}

	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return XDP_PASS;
	ports = nh.pos;
	if ((void *)(ports + 2) > ip_end)
		return XDP_DROP;                 /* no room for the ports in this datagram */
	if ((void *)(ports + 2) > data_end)
		return XDP_PASS;                 /* the frame is cut short: the kernel drops it */
	if (ports[1] == bpf_htons(DROP_PORT))
		return XDP_DROP;
	return XDP_PASS;
}
