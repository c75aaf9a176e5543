/* lesson04_port_rewrite.c — send UDP datagrams for one port to another, checksum kept right.
 *
 * Teaches: rewriting a header field in place and updating the checksum that covers it.
 *
 * UDP datagrams to FROM_PORT (53) leave with destination port TO_PORT (5353), over IPv4 and IPv6;
 * everything else passes untouched. Change the ports with cflags=["-DFROM_PORT=..", "-DTO_PORT=.."].
 *
 * The UDP checksum covers the UDP header, so the new port would make the old checksum wrong and
 * the receiving kernel would drop the datagram. Adding up the whole datagram again would cost a
 * pass over the payload; RFC 1624 instead computes the new checksum from the old one and the one
 * 16-bit word that changed: HC' = ~(~HC + ~m + m')  (csum_replace2() in parsing_helpers.h).
 * The port is not in the pseudo-header (that holds addresses, protocol and length), so nothing
 * else changes. Over IPv4 a UDP checksum of 0 means "the sender computed none" and must stay 0,
 * and a computed 0 is sent as 0xffff (RFC 768); over IPv6 the checksum is mandatory (RFC 8200).
 *
 * `rewritten` counts the datagrams changed: slot 0 for IPv4, slot 1 for IPv6.
 */
#include "parsing_helpers.h"

#ifndef FROM_PORT
#define FROM_PORT 53
#endif
#ifndef TO_PORT
#define TO_PORT 5353
#endif

BPF_PERCPU_ARRAY(rewritten, u64, 2);

int lesson04_port_rewrite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;
	__be16 old_port, new_port = bpf_htons(TO_PORT);
	u32 slot;
	u64 *n;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP || ip_is_later_fragment(iph))
			return XDP_PASS;
		slot = 0;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (skip_ip6hdrext(&nh, data_end, proto) != IPPROTO_UDP)
			return XDP_PASS;
		slot = 1;
	} else {
		return XDP_PASS;
	}
	if (parse_udphdr(&nh, data_end, &udph) < 0 || udph->dest != bpf_htons(FROM_PORT))
		return XDP_PASS;

	old_port = udph->dest;
	udph->dest = new_port;
	if (udph->check) {                              /* 0: no checksum (IPv4 only) */
		csum_replace2(&udph->check, old_port, new_port);
		if (!udph->check)
			udph->check = CSUM_MANGLED_0;
	}
	n = rewritten.lookup(&slot);
	if (n)
		*n += 1;
	return XDP_PASS;
}
