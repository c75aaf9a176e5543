/* Bug: the total length is compared with ihl * 4 in network byte order (no bpf_ntohs). */
#include "parsing_helpers.h"

#define DROP_PORT 9

/* Why a frame was dropped. 0 is no reason: an event with reason 0 was never filled in. */
enum drop_reason {
	REASON_PORT = 1,          /* UDP over IPv4 to DROP_PORT */
	REASON_BAD_HEADER = 2,    /* an IPv4 header that cannot be trusted */
};

/* One event per dropped frame: 24 bytes, no padding. verdict, reason, frame_len and the ports
 * are numbers in host byte order; the addresses are as in the packet (network byte order). */
struct verdict_event {
	u32 verdict;     /* XDP_DROP: only drops are reported */
	u32 reason;      /* REASON_PORT or REASON_BAD_HEADER */
	u32 frame_len;   /* the whole frame, ctx->data_end - ctx->data: VLAN tags, padding and all */
	__be32 saddr;    /* IPv4 source as in the packet; 0 for a bad header */
	__be32 daddr;    /* IPv4 destination as in the packet; 0 for a bad header */
	u16 sport;       /* UDP source port (bpf_ntohs); 0 for a bad header */
	u16 dport;       /* UDP destination port (bpf_ntohs); 0 for a bad header */
};

BPF_RINGBUF_OUTPUT(verdicts, 8);          /* 8 pages, shared by all CPUs */
BPF_ARRAY(verdicts_lost, u64, 1);         /* events that found the ring full */

static __always_inline int report(struct xdp_md *ctx, int verdict, u32 reason,
				  struct iphdr *iph, struct udphdr *udph)
{
	struct verdict_event e = {};
	u32 zero = 0;

	e.verdict = verdict;
	e.reason = reason;
	e.frame_len = ctx->data_end - ctx->data;
	if (iph) {
		e.saddr = iph->saddr;
		e.daddr = iph->daddr;
	}
	if (udph) {
		e.sport = bpf_ntohs(udph->source);
		e.dport = bpf_ntohs(udph->dest);
	}
	if (verdicts.ringbuf_output(&e, sizeof(e), 0))
		verdicts_lost.atomic_increment(zero);
	return verdict;
}

int lab06a_verdicts(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0 || iph->tot_len < iph->ihl * 4)
		return report(ctx, XDP_DROP, REASON_BAD_HEADER, NULL, NULL);
	if (iph->protocol != IPPROTO_UDP || ip_is_later_fragment(iph))
		return XDP_PASS;
	if (parse_udphdr(&nh, data_end, &udph) < 0 || udph->dest != bpf_htons(DROP_PORT))
		return XDP_PASS;
	return report(ctx, XDP_DROP, REASON_PORT, iph, udph);
}
