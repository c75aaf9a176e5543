/* xdp_icmp_echo.c — answer ping (IPv4 and IPv6) from XDP, before the kernel sees the request.
 *
 * Teaches: turning a request into its reply in place, and keeping checksums right cheaply.
 * An echo reply is the request with (1) the MAC addresses swapped, (2) the IP addresses swapped,
 * (3) the ICMP type changed from echo request to echo reply. Swapping leaves every checksum valid
 * (sums do not depend on order); the type change alters one 16-bit word (type, code) of the
 * ICMP message, so the ICMP checksum is updated incrementally with csum_replace2() (RFC 1624)
 * instead of being summed again over the whole payload. The ICMPv6 checksum also covers the IPv6
 * addresses (a pseudo-header), but they were only swapped, so the same one-word update suffices.
 *
 * The TTL (hop limit) stays as the request had it: no router is crossed between the two.
 *
 * Not answered (passed to the kernel): requests sent to a multicast or broadcast address (the
 * reply's source would be that group address), IPv4 fragments, anything not parsed cleanly.
 * `echo_replies` counts the replies sent: slot 0 for IPv4, slot 1 for IPv6.
 *
 * In the lab: attach xdp_pass.c (native) to the client too, so that the veth driver delivers the
 * replies sent with XDP_TX (see xdp_macswap_tx.c).
 */
#include "parsing_helpers.h"

BPF_PERCPU_ARRAY(echo_replies, u64, 2);

static __always_inline void count_reply(u32 slot)
{
	u64 *n = echo_replies.lookup(&slot);

	if (n)
		*n += 1;
}

/* The first 16-bit word of an ICMP or ICMPv6 header: type and code, as the checksum sees them. */
static __always_inline __be16 icmp_type_code(void *icmp)
{
	return *(__be16 *)icmp;
}

int xdp_icmp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct icmphdr *icmph;
	struct icmp6hdr *icmp6h;
	__be16 old;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto < 0 || (eth->h_dest[0] & 1))          /* group bit: multicast or broadcast MAC */
		return XDP_PASS;

	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_ICMP || ip_is_fragment(iph))
			return XDP_PASS;
		if (parse_icmphdr(&nh, data_end, &icmph) != ICMP_ECHO || icmph->code != 0)
			return XDP_PASS;
		swap_src_dst_mac(eth);
		swap_src_dst_ipv4(iph);
		old = icmp_type_code(icmph);
		icmph->type = ICMP_ECHOREPLY;
		csum_replace2(&icmph->checksum, old, icmp_type_code(icmph));
		count_reply(0);
		return XDP_TX;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ip6hdr(&nh, data_end, &ip6h) != IPPROTO_ICMPV6)
			return XDP_PASS;
		if (ip6h->daddr.in6_u.u6_addr8[0] == 0xff)      /* ff00::/8 is multicast */
			return XDP_PASS;
		if (parse_icmp6hdr(&nh, data_end, &icmp6h) != ICMPV6_ECHO_REQUEST || icmp6h->icmp6_code != 0)
			return XDP_PASS;
		swap_src_dst_mac(eth);
		swap_src_dst_ipv6(ip6h);
		old = icmp_type_code(icmp6h);
		icmp6h->icmp6_type = ICMPV6_ECHO_REPLY;
		csum_replace2(&icmp6h->icmp6_cksum, old, icmp_type_code(icmp6h));
		count_reply(1);
		return XDP_TX;
	}
	return XDP_PASS;
}
