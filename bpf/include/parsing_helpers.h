/* parsing_helpers.h — walking packet headers safely in XDP, and rewriting them.
 *
 * Include it from any xdplab program:   #include "parsing_helpers.h"
 * (lab.load compiles with -I bpf/include; bcc already includes its helpers and uapi/linux/bpf.h;
 * a libbpf program gets the installed UAPI headers and libbpf's <bpf/bpf_endian.h> from here).
 *
 * THE CURSOR. A parser takes a `struct hdr_cursor` pointing at the header to read, checks that the
 * whole header lies inside the packet, moves the cursor past it and returns what comes next:
 *
 *     struct hdr_cursor nh = { .pos = data };
 *     int proto = parse_ethhdr(&nh, data_end, &eth);    // ethertype, or -1
 *     if (proto == bpf_htons(ETH_P_IP))
 *         proto = parse_iphdr(&nh, data_end, &iph);     // IPPROTO_..., or -1
 *
 * Every parser returns -1 when the packet is too short or the header is malformed; then the output
 * pointer was not set and the cursor has not moved (except in skip_ip6hdrext(), which may have
 * stepped over some extension headers first, and tells why it stopped: see IP6_EXT_*).
 *
 * WHY EVERY READ IS CHECKED AGAINST data_end. An XDP program reads the packet straight from the
 * driver's buffer. Before the program runs at all, the kernel's verifier must prove that no
 * instruction can read or write outside that buffer. It does so by tracking, for every packet
 * pointer, how far past ctx->data it may point, and by learning from comparisons with
 * ctx->data_end: after `if (p + 8 > data_end) return ...;` it knows that the 8 bytes at p exist.
 * A read without such a check is rejected at load time ("invalid access to packet") — even one
 * that could never go wrong in practice. So each parser checks `cursor + size > data_end` before it
 * touches a field, and checks again after a length read from the packet itself (IPv4 IHL, TCP data
 * offset, IPv6 extension header length), because that length is chosen by whoever sent the packet.
 *
 * NETWORK BYTE ORDER. Multi-byte fields on the wire are big-endian; x86 and most ARM CPUs are
 * little-endian. Ethertypes and ports are therefore compared after converting the constant once,
 * at compile time: `eth->h_proto == bpf_htons(ETH_P_IP)`, `udp->dest == bpf_htons(53)`.
 * parse_ethhdr() returns the ethertype in network byte order for this reason; IP protocol
 * numbers and ICMP types are single bytes and have no byte order.
 */
#ifndef XDPLAB_PARSING_HELPERS_H
#define XDPLAB_PARSING_HELPERS_H

#ifdef BCC_SEC          /* bcc: its helpers came first, the UAPI headers of its kernel tree */
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/in6.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/ipv6.h>
#include <uapi/linux/icmp.h>
#include <uapi/linux/icmpv6.h>
#include <uapi/linux/udp.h>
#include <uapi/linux/tcp.h>
#else                   /* clang and libbpf: the installed UAPI headers, libbpf's bpf_htons() */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#endif

#ifndef XDP_ACTION_MAX
#define XDP_ACTION_MAX (XDP_REDIRECT + 1)   /* XDP_ABORTED .. XDP_REDIRECT: 5 actions */
#endif

/* Where the next header to parse starts. */
struct hdr_cursor {
	void *pos;
};

/* ---------------------------------------------------------------------------------------------
 * Ethernet and VLAN
 * ------------------------------------------------------------------------------------------- */

/* A VLAN tag (802.1Q, or 802.1ad for the outer tag of QinQ) sits between the MAC addresses and the
 * real ethertype: 2 bytes of priority/DEI/VLAN ID, then the ethertype of what follows. */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#define VLAN_VID_MASK 0x0fff

/* A NIC with VLAN offload on (ethtool -k: rx-vlan-offload) strips the outer tag before XDP runs
 * and keeps it beside the frame instead; the lab's veths leave tags in the frame. */

/* How many VLAN tags parse_ethhdr() looks through: 2 covers QinQ. */
#ifndef VLAN_MAX_DEPTH
#define VLAN_MAX_DEPTH 2
#endif

/* The VLAN IDs found by parse_ethhdr_vlan(), outermost first (host byte order). */
struct collect_vlans {
	__u16 id[VLAN_MAX_DEPTH];
	int count;
};

static __always_inline int proto_is_vlan(__be16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

/* Parse the Ethernet header and up to VLAN_MAX_DEPTH VLAN tags. Returns the ethertype of the
 * payload in network byte order (compare with bpf_htons(ETH_P_IP)), or -1. With more tags than
 * VLAN_MAX_DEPTH it returns a VLAN ethertype, which a program simply does not recognise.
 * `vlans` may be NULL; if given, it receives the VLAN IDs.
 *
 * Why a bounded loop with #pragma unroll: the verifier must prove that the program ends, and a loop
 * whose exit depends only on packet contents ("while the next header is a VLAN tag") gives it no
 * bound; a constant bound does. `#pragma unroll` has clang copy the body VLAN_MAX_DEPTH times, so
 * the verifier sees straight-line code without a backward jump: cheap to verify, and accepted by
 * every kernel (before 5.3 the verifier rejected all loops). */
static __always_inline int parse_ethhdr_vlan(struct hdr_cursor *nh, void *data_end,
					     struct ethhdr **ethhdr, struct collect_vlans *vlans)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__be16 h_proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -1;
	vlh = (void *)(eth + 1);
	h_proto = eth->h_proto;
	if (vlans)
		vlans->count = 0;

#pragma unroll
	for (i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		if ((void *)(vlh + 1) > data_end)
			return -1;
		h_proto = vlh->h_vlan_encapsulated_proto;
		if (vlans) {
			vlans->id[i] = bpf_ntohs(vlh->h_vlan_TCI) & VLAN_VID_MASK;
			vlans->count = i + 1;
		}
		vlh++;
	}

	nh->pos = vlh;
	*ethhdr = eth;
	return h_proto;
}

static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end, struct ethhdr **ethhdr)
{
	return parse_ethhdr_vlan(nh, data_end, ethhdr, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * IPv4 and IPv6
 * ------------------------------------------------------------------------------------------- */

#ifndef IP_MF
#define IP_MF     0x2000   /* "more fragments" flag of iphdr.frag_off (host byte order) */
#endif
#ifndef IP_OFFSET
#define IP_OFFSET 0x1fff   /* fragment offset, in units of 8 bytes */
#endif

/* Parse an IPv4 header, options included: the header is ihl * 4 bytes (20 to 60). Returns the
 * protocol of the payload (IPPROTO_UDP, ...), or -1. The length comes from the packet, so it is
 * checked twice: it must be at least the fixed 20 bytes, and all of it must be inside the packet. */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end, struct iphdr **iphdr)
{
	struct iphdr *iph = nh->pos;
	int hdrsize;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4)
		return -1;
	hdrsize = iph->ihl * 4;
	if (hdrsize < (int)sizeof(*iph))
		return -1;
	if (nh->pos + hdrsize > data_end)
		return -1;

	nh->pos += hdrsize;
	*iphdr = iph;
	return iph->protocol;
}

/* Only the first fragment of a fragmented datagram carries the UDP/TCP/ICMP header; in the others
 * the bytes after the IP header are the middle of the payload. Check before reading ports. */
static __always_inline int ip_is_fragment(struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

static __always_inline int ip_is_later_fragment(struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(IP_OFFSET)) != 0;
}

/* Parse the fixed 40-byte IPv6 header. Returns its next-header field, or -1. That can be an
 * extension header rather than UDP/TCP/ICMPv6: see skip_ip6hdrext(). */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end, struct ipv6hdr **ip6hdr)
{
	struct ipv6hdr *ip6h = nh->pos;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;

	nh->pos = ip6h + 1;
	*ip6hdr = ip6h;
	return ip6h->nexthdr;
}

/* The start of every IPv6 extension header we step over. */
struct ip6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

/* Six: RFC 8200 (section 4.1) has each of the extension headers it defines occur at most once,
 * the destination options header at most twice (hop-by-hop, destination options, routing,
 * fragment, AH, destination options). A receiver must still take any number, and Linux does. */
#ifndef IPV6_EXT_MAX_CHAIN
#define IPV6_EXT_MAX_CHAIN 6
#endif

/* Why skip_ip6hdrext() found no upper-layer header. All are negative, so `proto < 0` still means
 * "none here"; a program that treats them differently (a filter may) can tell them apart. */
#define IP6_EXT_TRUNCATED      -1   /* the packet ends inside an extension header */
#define IP6_EXT_LATER_FRAGMENT -2   /* not the first fragment: its data is the middle of the payload */
#define IP6_EXT_TOO_LONG       -3   /* more than IPV6_EXT_MAX_CHAIN extension headers */

/* IANA's "IPv6 Extension Header Types" that the uapi headers do not all name. */
#ifndef IPPROTO_MH
#define IPPROTO_MH    135   /* Mobility (RFC 6275) */
#endif
#ifndef IPPROTO_HIP
#define IPPROTO_HIP   139   /* Host Identity Protocol (RFC 7401) */
#endif
#ifndef IPPROTO_SHIM6
#define IPPROTO_SHIM6 140   /* Shim6 (RFC 5533) */
#endif
#define IPPROTO_IPV6_EXP1 253   /* for experiments and testing (RFC 3692, RFC 4727) */
#define IPPROTO_IPV6_EXP2 254

/* The extension headers skip_ip6hdrext() steps over: IANA's list, less ESP (50). Each but two
 * starts with (next header, length in 8-byte units not counting the first 8), the layout RFC 8200
 * (section 4.8) asks of every new one: hop-by-hop (0), routing (43), destination options (60),
 * Mobility (135), HIP (139), Shim6 (140), 253 and 254. The fragment header (44) is always 8 bytes;
 * AH (51, RFC 4302) counts its length in 4-byte units, the first 8 bytes not counted.
 * ESP (50) is on IANA's list too, but only its SPI and sequence number are in the clear: what
 * follows, the next-header field included, is encrypted. So ESP is where the walk ends: it comes
 * back as the upper-layer protocol, IPPROTO_ESP, as IPPROTO_NONE (59: nothing follows) does. */
static __always_inline int ipv6_is_ext_hdr(int nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_AH:
	case IPPROTO_DSTOPTS:
	case IPPROTO_MH:
	case IPPROTO_HIP:
	case IPPROTO_SHIM6:
	case IPPROTO_IPV6_EXP1:
	case IPPROTO_IPV6_EXP2:
		return 1;
	default:
		return 0;
	}
}

/* Step over IPv6 extension headers (those ipv6_is_ext_hdr() names) to the upper-layer header.
 * `nexthdr` is what parse_ip6hdr() returned. Returns the upper-layer protocol (IPPROTO_UDP, ...,
 * or IPPROTO_ESP, whose payload cannot be read), or a negative IP6_EXT_* reason: truncated (-1),
 * a non-first fragment, which has no upper-layer header (-2), or more than IPV6_EXT_MAX_CHAIN
 * extension headers (-3); -1 passed in comes back as it is. Bounded and unrolled like the VLAN
 * loop. A header's length comes from the packet: the next round's bounds check (or the caller's
 * parser) checks that it lies inside. */
static __always_inline int skip_ip6hdrext(struct hdr_cursor *nh, void *data_end, int nexthdr)
{
	int i;

#pragma unroll
	for (i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {
		struct ip6_ext_hdr *hdr = nh->pos;

		if (!ipv6_is_ext_hdr(nexthdr))
			return nexthdr;                 /* upper-layer header (or the -1 passed in) */
		if ((void *)(hdr + 1) > data_end)
			return IP6_EXT_TRUNCATED;
		if (nexthdr == IPPROTO_FRAGMENT) {
			__be16 *frag_off = (void *)hdr + 2;

			if ((void *)(frag_off + 1) > data_end)
				return IP6_EXT_TRUNCATED;
			if (*frag_off & bpf_htons(0xfff8))  /* offset != 0: not the first fragment */
				return IP6_EXT_LATER_FRAGMENT;
			nh->pos += 8;                   /* fixed size; its second byte is reserved */
		} else if (nexthdr == IPPROTO_AH) {
			nh->pos += (hdr->hdrlen + 2) * 4;   /* 4-byte units, the first 8 bytes not counted */
		} else {
			nh->pos += (hdr->hdrlen + 1) * 8;   /* 8-byte units, the first 8 bytes not counted */
		}
		nexthdr = hdr->nexthdr;
	}
	return ipv6_is_ext_hdr(nexthdr) ? IP6_EXT_TOO_LONG : nexthdr;
}

/* ---------------------------------------------------------------------------------------------
 * ICMP, ICMPv6, UDP, TCP
 * ------------------------------------------------------------------------------------------- */

/* Parse the 8-byte ICMP header (type, code, checksum, and for echo: id, sequence). Returns the
 * ICMP type (ICMP_ECHO, ...), or -1. */
static __always_inline int parse_icmphdr(struct hdr_cursor *nh, void *data_end, struct icmphdr **icmphdr)
{
	struct icmphdr *icmph = nh->pos;

	if ((void *)(icmph + 1) > data_end)
		return -1;
	nh->pos = icmph + 1;
	*icmphdr = icmph;
	return icmph->type;
}

/* Parse the 8-byte ICMPv6 header. Returns the ICMPv6 type (ICMPV6_ECHO_REQUEST, ...), or -1. */
static __always_inline int parse_icmp6hdr(struct hdr_cursor *nh, void *data_end, struct icmp6hdr **icmp6hdr)
{
	struct icmp6hdr *icmp6h = nh->pos;

	if ((void *)(icmp6h + 1) > data_end)
		return -1;
	nh->pos = icmp6h + 1;
	*icmp6hdr = icmp6h;
	return icmp6h->icmp6_type;
}

/* Parse the 8-byte UDP header. Returns the payload length the header claims (its length field
 * minus 8), or -1. The payload itself may still be shorter than that: check before reading it. */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end, struct udphdr **udphdr)
{
	struct udphdr *udph = nh->pos;
	int len;

	if ((void *)(udph + 1) > data_end)
		return -1;
	len = (int)bpf_ntohs(udph->len) - (int)sizeof(*udph);
	if (len < 0)
		return -1;
	nh->pos = udph + 1;
	*udphdr = udph;
	return len;
}

/* Parse a TCP header, options included: the header is doff * 4 bytes (20 to 60). Returns that
 * length, or -1. */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end, struct tcphdr **tcphdr)
{
	struct tcphdr *tcph = nh->pos;
	int len;

	if ((void *)(tcph + 1) > data_end)
		return -1;
	len = tcph->doff * 4;
	if (len < (int)sizeof(*tcph))
		return -1;
	if (nh->pos + len > data_end)
		return -1;
	nh->pos += len;
	*tcphdr = tcph;
	return len;
}

/* ---------------------------------------------------------------------------------------------
 * Rewriting: addresses and checksums
 * ------------------------------------------------------------------------------------------- */

/* Swap source and destination MAC: the first step of sending a frame back where it came from. */
static __always_inline void swap_src_dst_mac(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

/* Swapping the two addresses leaves every checksum valid: the IPv4 header checksum, and the
 * UDP/TCP/ICMPv6 pseudo-header checksums, are sums, and a sum does not depend on the order. */
static __always_inline void swap_src_dst_ipv4(struct iphdr *iph)
{
	__be32 tmp = iph->saddr;

	iph->saddr = iph->daddr;
	iph->daddr = tmp;
}

static __always_inline void swap_src_dst_ipv6(struct ipv6hdr *ip6h)
{
	struct in6_addr tmp = ip6h->saddr;

	ip6h->saddr = ip6h->daddr;
	ip6h->daddr = tmp;
}

/* Internet checksums (RFC 1071) are the one's complement of the one's complement sum of the data
 * taken as 16-bit words. A program that changes a few words need not re-add the whole packet: RFC
 * 1624 gives the new checksum from the old one, HC' = ~(~HC + ~m + m'), for each 16-bit word that
 * changed from m to m'. One's complement addition gives the same result whatever the byte order,
 * as long as every word is in the same one, so these helpers work on the raw big-endian fields.
 * (The kernel helper bpf_csum_diff() computes the same kind of difference over larger blocks.) */

/* Fold a 32-bit sum of 16-bit words into 16 bits, adding the carries back in (end-around carry). */
static __always_inline __u16 csum_fold_helper(__u32 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return (__u16)csum;
}

/* The checksum at *sum covered the 16-bit word `from`, which now holds `to`: update it. */
static __always_inline void csum_replace2(__sum16 *sum, __be16 from, __be16 to)
{
	__u32 csum = (__u16)~*sum;

	csum += (__u16)~from;
	csum += to;
	*sum = ~csum_fold_helper(csum);
}

/* The same for a 32-bit field (an IPv4 address): two 16-bit words changed. */
static __always_inline void csum_replace4(__sum16 *sum, __be32 from, __be32 to)
{
	__u32 csum = (__u16)~*sum;

	csum += (~from >> 16) + (~from & 0xffff);
	csum += (to >> 16) + (to & 0xffff);
	*sum = ~csum_fold_helper(csum);
}

/* Changing an IPv4 address also changes the UDP/TCP checksum, which covers a pseudo-header holding
 * both addresses. UDP over IPv4 is special: checksum 0 means "none computed", so it must stay 0;
 * and a computed checksum of 0 is sent as 0xffff (the other zero of one's complement). */
#define CSUM_MANGLED_0 ((__sum16)0xffff)

static __always_inline void udp_csum_replace4(struct udphdr *udph, __be32 from, __be32 to)
{
	if (!udph->check)
		return;
	csum_replace4(&udph->check, from, to);
	if (!udph->check)
		udph->check = CSUM_MANGLED_0;
}

/* Decrement the TTL as a router does, keeping the header checksum right. The TTL shares a 16-bit
 * word with the protocol byte, so the word (ttl, protocol) is what changes. Returns the new TTL. */
static __always_inline int ip_decrease_ttl(struct iphdr *iph)
{
	__be16 *word = (__be16 *)&iph->ttl;
	__be16 old = *word;

	iph->ttl--;
	csum_replace2(&iph->check, old, *word);
	return iph->ttl;
}

#endif /* XDPLAB_PARSING_HELPERS_H */
