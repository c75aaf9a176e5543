/* xdp_icmp_echo.c — answer ping (IPv4 and IPv6) from XDP, before the kernel sees the request.
 *
 * Teaches: turning a request into its reply in place, and keeping checksums right cheaply.
 * An echo reply is the request with (1) the MAC addresses swapped, (2) the IP addresses swapped,
 * (3) the ICMP type changed from echo request to echo reply, (4) a fresh TTL (IPv6: hop limit).
 * Swapping leaves every checksum valid (sums do not depend on order); the type change alters one
 * 16-bit word (type, code) of the ICMP message, so the ICMP checksum is updated incrementally with
 * csum_replace2() (RFC 1624) instead of being summed again over the whole payload. The ICMPv6
 * checksum also covers the IPv6 addresses (a pseudo-header), but they were only swapped, so the same
 * one-word update suffices.
 *
 * The TTL. The reply crosses every router the request crossed, the other way, and each takes one
 * off. What is left of the request's TTL says nothing about that: a request that arrived with TTL 1
 * would make a reply that the first router drops. The reply gets REPLY_TTL, 64: what Linux gives
 * the packets it sends itself (net.ipv4.ip_default_ttl, net.ipv6.conf.*.hop_limit), so the reply
 * leaves as the server's kernel would have sent it. The IPv4 header checksum covers the TTL, which
 * shares a 16-bit word with the protocol: csum_replace2() on that word. IPv6 has no header checksum,
 * and the pseudo-header of the ICMPv6 checksum holds the addresses, the length and the next
 * header, not the hop limit: nothing more to update.
 *
 * Only for this host: a request for another address (one this host would route on, or one that
 * reached it by mistake) is not its to answer. Python writes the host's addresses into the one
 * entry of `host_addrs`; until it does, the entry is zeros and nothing is answered.
 *
 * Not answered (passed to the kernel): requests for other addresses, frames sent to a multicast or
 * broadcast MAC address (the reply's source would be that group address), IPv4 fragments,
 * anything not parsed cleanly. `echo_replies` counts the replies sent: slot 0 for IPv4, slot 1
 * for IPv6.
 *
 * In the lab: attach xdp_pass.c (native) to the client too, so that the veth driver delivers the
 * replies sent with XDP_TX (see xdp_macswap_tx.c).
 */
#include "parsing_helpers.h"

#define REPLY_TTL 64

struct host_addrs {
	__be32 ipv4;               /* network byte order, as iph->daddr holds it */
	struct in6_addr ipv6;
};

BPF_ARRAY(host_addrs, struct host_addrs, 1);
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

static __always_inline int same_ipv6(struct in6_addr *a, struct in6_addr *b)
{
	return a->in6_u.u6_addr32[0] == b->in6_u.u6_addr32[0] &&
	       a->in6_u.u6_addr32[1] == b->in6_u.u6_addr32[1] &&
	       a->in6_u.u6_addr32[2] == b->in6_u.u6_addr32[2] &&
	       a->in6_u.u6_addr32[3] == b->in6_u.u6_addr32[3];
}

int xdp_icmp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct in6_addr unset = {};
	struct host_addrs *host;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct icmphdr *icmph;
	struct icmp6hdr *icmp6h;
	__be16 old, *ttl_protocol;
	u32 zero = 0;
	int proto;

	host = host_addrs.lookup(&zero);
	if (!host)
		return XDP_PASS;
	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto < 0 || (eth->h_dest[0] & 1))          /* group bit: multicast or broadcast MAC */
		return XDP_PASS;

	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_ICMP || ip_is_fragment(iph))
			return XDP_PASS;
		if (!host->ipv4 || iph->daddr != host->ipv4)
			return XDP_PASS;
		if (parse_icmphdr(&nh, data_end, &icmph) != ICMP_ECHO || icmph->code != 0)
			return XDP_PASS;
		swap_src_dst_mac(eth);
		swap_src_dst_ipv4(iph);
		ttl_protocol = (__be16 *)&iph->ttl;
		old = *ttl_protocol;
		iph->ttl = REPLY_TTL;
		csum_replace2(&iph->check, old, *ttl_protocol);
		old = icmp_type_code(icmph);
		icmph->type = ICMP_ECHOREPLY;
		csum_replace2(&icmph->checksum, old, icmp_type_code(icmph));
		count_reply(0);
		return XDP_TX;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ip6hdr(&nh, data_end, &ip6h) != IPPROTO_ICMPV6)
			return XDP_PASS;
		if (same_ipv6(&host->ipv6, &unset) || !same_ipv6(&ip6h->daddr, &host->ipv6))
			return XDP_PASS;
		if (parse_icmp6hdr(&nh, data_end, &icmp6h) != ICMPV6_ECHO_REQUEST || icmp6h->icmp6_code != 0)
			return XDP_PASS;
		swap_src_dst_mac(eth);
		swap_src_dst_ipv6(ip6h);
		ip6h->hop_limit = REPLY_TTL;    /* no header checksum; not in the ICMPv6 pseudo-header */
		old = icmp_type_code(icmp6h);
		icmp6h->icmp6_type = ICMPV6_ECHO_REPLY;
		csum_replace2(&icmp6h->icmp6_cksum, old, icmp_type_code(icmp6h));
		count_reply(1);
		return XDP_TX;
	}
	return XDP_PASS;
}
