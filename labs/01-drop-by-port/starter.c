/* Lab 01 — drop by protocol and port.
 *
 * Task: drop UDP datagrams to port 53 (DNS) and TCP segments to port 23 (telnet), over IPv4 and
 * IPv6. Pass everything else: other ports, ping, ARP, and whatever you cannot parse.
 *
 * The helpers of parsing_helpers.h walk the headers for you (parse_ethhdr, parse_iphdr,
 * parse_ip6hdr, skip_ip6hdrext, parse_udphdr, parse_tcphdr); each returns -1 when the packet is
 * too short.
 */
#include "parsing_helpers.h"

int lab01_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		/* TODO: proto is now IPPROTO_UDP, IPPROTO_TCP, ...: look at the destination port */
	}
	/* TODO: IPv6 too */
	return XDP_PASS;
}
