/* Lab 03a — drop by protocol and port.
 *
 * Task: drop UDP datagrams to port 53 (DNS) and TCP segments to port 23 (telnet), over IPv4 and
 * IPv6, judged on the destination port; pass everything else: other ports, ping, ARP.
 * What you cannot read, decide as lesson 03's filter does:
 *   - the ports are the first 4 bytes of the UDP or TCP header: ask for those 4 only (a first
 *     fragment may hold just 8 bytes of a TCP header, and is judged on its ports);
 *   - a later fragment holds no ports: pass it, and a frame cut short (the kernel drops it);
 *   - behind a third VLAN tag or a seventh IPv6 extension header, which the helpers do not look
 *     through, the kernel would still deliver DNS: drop such frames, whatever they hold.
 *
 * The helpers of parsing_helpers.h walk the headers for you (parse_ethhdr, parse_iphdr,
 * parse_ip6hdr, skip_ip6hdrext); each returns a negative number when it cannot go on.
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
