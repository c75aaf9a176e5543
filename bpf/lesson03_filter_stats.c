/* lesson03_filter_stats.c — xdp_filter.c, counting what it decides.
 *
 * Teaches: proving a filter. It makes the same decisions as xdp_filter.c (drop UDP/TCP to
 * DROP_PORT and ping; pass the rest and what the kernel drops itself; drop what would get round
 * the filter: a third VLAN tag, a seventh IPv6 extension header, a datagram with no room for its
 * ports) and counts every decision by what the packet was: `decisions` maps {action, IP version,
 * protocol, destination port} to a packet count, so a lesson can check that exactly the packets
 * it meant to drop were dropped. The counts are per CPU (BPF_PERCPU_HASH): each CPU adds to its
 * own copy, without atomic instructions.
 * Build options as for xdp_filter.c: cflags=["-DDROP_PORT=5353", "-DDROP_ICMP=0"].
 */
#include "parsing_helpers.h"

#ifndef DROP_PORT
#define DROP_PORT 53
#endif
#ifndef DROP_ICMP
#define DROP_ICMP 1
#endif

struct decision {
	__u32 action;     /* XDP_DROP or XDP_PASS */
	__u8 ipver;       /* 4, 6, or 0 for frames that are not IP */
	__u8 proto;       /* IPPROTO_UDP, ...; 0 when not found */
	__be16 dport;     /* UDP/TCP destination port; 0 for other protocols, or if not read */
};

BPF_PERCPU_HASH(decisions, struct decision, u64, 256);

/* xdp_filter.c's decision, noting in `d` what it found on the way. */
static __always_inline int decide(struct xdp_md *ctx, struct decision *d)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct icmphdr *icmph;
	struct icmp6hdr *icmp6h;
	void *ip_end;
	__be16 *ports;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		d->ipver = 4;
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0 || ip_is_later_fragment(iph))
			return XDP_PASS;
		d->proto = proto;
		ip_end = (void *)iph + bpf_ntohs(iph->tot_len);
		if (proto == IPPROTO_ICMP && DROP_ICMP &&
		    parse_icmphdr(&nh, data_end, &icmph) == ICMP_ECHO)
			return XDP_DROP;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		d->ipver = 6;
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (proto < 0)
			return XDP_PASS;
		ip_end = (void *)(ip6h + 1) + bpf_ntohs(ip6h->payload_len);
		proto = skip_ip6hdrext(&nh, data_end, proto);
		if (proto == IP6_EXT_TOO_LONG)
			return XDP_DROP;
		if (proto < 0)
			return XDP_PASS;
		d->proto = proto;
		if (proto == IPPROTO_ICMPV6 && DROP_ICMP &&
		    parse_icmp6hdr(&nh, data_end, &icmp6h) == ICMPV6_ECHO_REQUEST)
			return XDP_DROP;
	} else if (proto_is_vlan(proto)) {
		return XDP_DROP;
	} else {
		return XDP_PASS;
	}

	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return XDP_PASS;
	ports = nh.pos;
	if ((void *)(ports + 2) > ip_end)
		return XDP_DROP;
	if ((void *)(ports + 2) > data_end)
		return XDP_PASS;
	d->dport = ports[1];
	if (ports[1] == bpf_htons(DROP_PORT))
		return XDP_DROP;
	return XDP_PASS;
}

int lesson03_filter_stats(struct xdp_md *ctx)
{
	struct decision d = {};
	u64 zero = 0, *count;

	d.action = decide(ctx, &d);
	count = decisions.lookup_or_try_init(&d, &zero);     /* inserted at 0 if new */
	if (count)
		*count += 1;        /* this CPU's copy: no other CPU writes it, no atomic needed */
	return d.action;
}
